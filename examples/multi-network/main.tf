# Multi-network mesh: the VMs sit on their own network (var.vm_network), which has no
# direct route to the cluster's Pods. They reach istiod, and the rest of the mesh,
# through the cluster's east-west gateway (the Service istio-eastwestgateway in the
# Istio namespace, labelled topology.istio.io/network), which must expose istiod on
# 15012 and 15017 (Istio's samples/multicluster/expose-istiod.yaml does that).
#
# What the provider does with it: the VMs' bundles carry ISTIO_META_NETWORK =
# var.vm_network, and their hosts file maps istiod's name to the gateway's address.

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

variable "vm_network" {
  type        = string
  default     = "vm-network"
  description = "Network of the VMs; differs from the cluster's network."
}

variable "vm_ips" {
  type        = map(string)
  default     = { "vm-1" = "192.0.2.11" }
  description = "VM name => IP address on var.vm_network."
}

provider "istio" {
  config_path = var.kubeconfig
}

# The cluster's own network (global.network of the installation).
data "istio_mesh" "this" {}

module "product" {
  source     = "../fleet"
  service    = "product"
  vms        = var.vm_ips
  network    = var.vm_network
  bundle_dir = "${path.module}/bundle"
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

output "networks" {
  description = "The cluster's network and the VMs'."
  value = {
    cluster = data.istio_mesh.this.network
    vms     = var.vm_network
  }
}

output "vms" {
  value = module.product.vms
}
