# Quick start: point the provider at a cluster with Istio and read what the
# control plane publishes. `make demo` runs this against the local control
# plane; it grows with the provider's resources.

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

provider "istio" {
  config_path = var.kubeconfig
}

data "istio_mesh" "this" {}

output "mesh" {
  description = "Trust domain, cluster ID, network and istiod host of the mesh."
  value = {
    trust_domain = data.istio_mesh.this.trust_domain
    cluster_id   = data.istio_mesh.this.cluster_id
    network      = data.istio_mesh.this.network
    istiod_host  = data.istio_mesh.this.istiod_host
  }
}
