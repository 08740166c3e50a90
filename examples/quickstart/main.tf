# Quick start: one service whose VMs join the mesh.
#   1. a WorkloadGroup (the template of the service's VMs),
#   2. one VM registration — its five bootstrap files are written to ./bundle,
#   3. the Service that gives Pods and VMs one hostname, waiting until a VM serves.
# `make demo` applies this against the local control plane and, like a new VM
# reading its user-data, boots a simulated VM (a real pilot-agent) from ./bundle
# while Terraform waits; the apply finishes when istiod reports the VM healthy.

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

variable "namespace" {
  type        = string
  default     = "default"
  description = "Namespace of the service and its VMs."
}

variable "istio_namespace" {
  type        = string
  default     = "istio-system"
  description = "Namespace Istio's control plane is installed in (istioctl's `values.global.istioNamespace`)."
}

variable "app_port" {
  type        = number
  default     = 8080
  description = "Port the VMs' application listens on (and is probed on)."
}

provider "istio" {
  config_path     = var.kubeconfig
  istio_namespace = var.istio_namespace
}

data "istio_mesh" "this" {}

resource "istio_workload_group" "product" {
  name      = "product-vm"
  namespace = var.namespace

  metadata {
    labels = { app = "product" }
  }

  template {
    service_account = "default"
    ports           = { http = var.app_port }
  }

  probe {
    period_seconds = 2
    http_get {
      path = "/ready"
      port = var.app_port
    }
  }
}

resource "istio_vm_registration" "vm_1" {
  workload_group = istio_workload_group.product.id
  output_dir     = "${path.module}/bundle"
}

resource "istio_mesh_service" "product" {
  name      = "product"
  namespace = var.namespace
  selector  = { app = "product" }

  ports {
    name = "http"
    port = var.app_port
  }

  # Returns once the VM booted from ./bundle is registered and healthy.
  wait {
    min_healthy_endpoints = 1
    timeout               = "5m"
  }

  depends_on = [istio_vm_registration.vm_1]
}

output "mesh" {
  description = "Trust domain, cluster ID, network and istiod host of the mesh."
  value = {
    trust_domain = data.istio_mesh.this.trust_domain
    cluster_id   = data.istio_mesh.this.cluster_id
    network      = data.istio_mesh.this.network
    istiod_host  = data.istio_mesh.this.istiod_host
  }
}

output "vm_1" {
  description = "The VM's registration: its entry, health and bundle."
  value = {
    workload_entry = istio_vm_registration.vm_1.workload_entry_name
    token_expires  = istio_vm_registration.vm_1.token_expires_at
    bundle_sha256  = istio_vm_registration.vm_1.bundle_sha256
    bundle_dir     = "${path.module}/bundle"
  }
}

output "service" {
  description = "One hostname for Pods and VMs, and what serves behind it."
  value = {
    hostname  = istio_mesh_service.product.hostname
    endpoints = istio_mesh_service.product.endpoints
  }
}
