# Flow 1 — an existing VM with a known IP:
#   registration → bundle delivered over SSH (re-delivered whenever it changes)
#   → the Service waits until the VM reports healthy.
# No cycle: the wait lives on istio_mesh_service, after the delivery.

terraform {
  required_providers {
    istio = { source = "terraform-provider-istio/istio", version = "0.1.0" }
    null  = { source = "hashicorp/null" }
  }
}

variable "kubeconfig" { type = string }
variable "vm_ip" { type = string }
variable "ssh_user" { default = "istio" }

provider "istio" {
  config_path = var.kubeconfig
}

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
    http_get {
      port = 8080
    }
  }
}

resource "istio_vm_registration" "vm" {
  workload_group = istio_workload_group.product.id
  mode           = "manual"
  address        = var.vm_ip
  output_dir     = "${path.module}/bundle"
}

resource "null_resource" "deliver_bundle" {
  triggers = { bundle = istio_vm_registration.vm.bundle_sha256 }

  connection {
    host = var.vm_ip
    user = var.ssh_user
  }

  provisioner "file" {
    source      = "${path.module}/bundle/"
    destination = "/tmp/istio-bundle"
  }

  provisioner "remote-exec" {
    inline = [
      "sudo mkdir -p /etc/certs /var/run/secrets/tokens /etc/istio/config",
      "sudo cp /tmp/istio-bundle/root-cert.pem /etc/certs/root-cert.pem",
      "sudo cp /tmp/istio-bundle/istio-token /var/run/secrets/tokens/istio-token",
      "sudo cp /tmp/istio-bundle/cluster.env /var/lib/istio/envoy/cluster.env",
      "sudo cp /tmp/istio-bundle/mesh.yaml /etc/istio/config/mesh",
      "sudo sh -c 'cat /tmp/istio-bundle/hosts >> /etc/hosts'",
      "sudo systemctl restart istio",
      "rm -rf /tmp/istio-bundle",
    ]
  }
}

resource "istio_mesh_service" "product" {
  name      = "product"
  namespace = "default"
  selector  = { app = "product" }
  ports {
    name = "http"
    port = 8080
  }
  wait {
    min_healthy_endpoints = 1
    timeout               = "10m"
  }
  depends_on = [null_resource.deliver_bundle]
}
