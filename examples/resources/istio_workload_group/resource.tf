# The seed's group: every VM of the "product" service is registered from it.
resource "istio_workload_group" "product" {
  name      = "product-vm"
  namespace = "default"

  metadata {
    labels = { app = "product" }
  }

  template {
    service_account = "default"
    ports           = { http = 8080 }
  }

  probe {
    period_seconds    = 5
    failure_threshold = 3
    http_get {
      path = "/ready"
      port = 8080
    }
  }
}
