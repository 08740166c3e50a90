# Revisions and canary upgrades of istiod: two control planes run side by side, the
# stable one (var.stable_revision, "" for the default revision) and a canary
# (istiod-<canary_revision>). Every VM connects to the stable revision except those
# listed in var.canary_vms. Moving a VM to the canary re-renders its bundle (the mesh
# config and CA address of istiod-<revision>, its hosts entry): bundle_sha256 changes,
# so re-deliver the bundle and restart the VM's agent. When the canary serves every
# VM, make it the stable revision and uninstall the old one.

terraform {
  required_providers {
    istio = {
      source  = "terraform-provider-istio/istio"
      version = "0.1.0"
    }
  }
}

variable "kubeconfig" {
  type        = string
  description = "Path of the kubeconfig of the cluster where Istio runs."
}

variable "stable_revision" {
  type        = string
  default     = ""
  description = "Revision the VMs use; \"\" is the default revision (istiod)."
}

variable "canary_revision" {
  type        = string
  default     = "canary"
  description = "Revision of the canary istiod (istiod-<revision>)."
}

variable "vm_ips" {
  type        = map(string)
  default     = { "vm-1" = "192.0.2.11", "vm-2" = "192.0.2.12" }
  description = "VM name => IP address."
}

variable "canary_vms" {
  type        = set(string)
  default     = ["vm-2"]
  description = "VMs moved to the canary revision."
}

provider "istio" {
  config_path = var.kubeconfig
  revision    = var.stable_revision
}

# What each revision publishes: its istiod host and mesh config.
data "istio_mesh" "stable" {}

data "istio_mesh" "canary" {
  revision = var.canary_revision
}

module "product" {
  source       = "../fleet"
  service      = "product"
  vms          = var.vm_ips
  vm_revisions = { for name in var.canary_vms : name => var.canary_revision }
  bundle_dir   = "${path.module}/bundle"
}

resource "istio_mesh_service" "product" {
  name     = "product"
  selector = module.product.selector

  ports {
    name = "http"
    port = 8080
  }

  wait {
    min_healthy_endpoints = length(var.vm_ips)
    timeout               = "10m"
  }

  depends_on = [module.product]
}

output "istiod" {
  description = "The istiod each revision's VMs connect to."
  value = {
    stable = data.istio_mesh.stable.istiod_host
    canary = data.istio_mesh.canary.istiod_host
  }
}

output "vms" {
  value = module.product.vms
}
