# One hostname for Pods and VMs labelled app=product, and a wait until two of
# them really serve (ready Pods plus VMs istiod reports healthy).
resource "istio_mesh_service" "product" {
  name      = "product"
  namespace = "default"
  selector  = { app = "product" }

  ports {
    name = "http"
    port = 8080
  }

  wait {
    min_healthy_endpoints = 2
    timeout               = "10m"
  }
}

output "product_hostname" {
  value = istio_mesh_service.product.hostname # product.default.svc.cluster.local
}
