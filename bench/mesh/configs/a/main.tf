# A: terraform-provider-istio. One WorkloadGroup, var.n VMs registered in manual mode with their
# five bootstrap files written to disk, one Service. Each registration waits until istiod
# (here: meshbench health) reports its entry Healthy=True.
terraform {
  required_providers {
    istio = { source = "terraform-provider-istio/istio" }
  }
}

variable "n" { type = number }
variable "namespace" { type = string }
variable "kubeconfig" { type = string }
variable "bundle_dir" { type = string }

provider "istio" {
  config_path = var.kubeconfig
}

resource "istio_workload_group" "bench" {
  name      = "bench"
  namespace = var.namespace
  metadata {
    labels = { app = "bench" }
  }
  template {
    service_account = "bench"
  }
  probe {
    http_get {
      port = 8080
    }
  }
}

resource "istio_vm_registration" "vm" {
  count            = var.n
  workload_group   = istio_workload_group.bench.id
  mode             = "manual"
  address          = cidrhost("10.10.0.0/16", count.index + 1)
  output_dir       = "${var.bundle_dir}/vm-${count.index}"
  wait_for_healthy = true
}

resource "istio_mesh_service" "bench" {
  name      = "bench"
  namespace = var.namespace
  selector  = { app = "bench" }
  ports {
    name = "http"
    port = 8080
  }
}
