# The Service in front of a fleet of VMs (../fleet), waiting until enough of them serve. Call
# it with depends_on on whatever delivers the VMs' files or creates the VMs: the wait can only
# end once the VMs have booted, and nothing then waits on the VMs' side.
#
#   module "product_service" {
#     source                = "../fleet-service"
#     name                  = "product"
#     selector              = module.product.selector
#     min_healthy_endpoints = length(var.vm_ips)
#     depends_on            = [null_resource.deliver_bundle]
#   }
#
# The Service selects Pods and VMs alike: Pods with the same labels serve beside the VMs.

terraform {
  required_providers {
    istio = {
      source  = "terraform-provider-istio/istio"
      version = ">= 0.1.0"
    }
  }
}

resource "istio_mesh_service" "this" {
  name      = var.name
  namespace = var.namespace
  selector  = var.selector
  ports {
    name = "http"
    port = var.port
  }
  wait {
    min_healthy_endpoints = var.min_healthy_endpoints
    timeout               = var.timeout
  }
}
