# Flow 1 — existing VMs with known IPs:
#   registrations (the ../fleet module) → bundles delivered over SSH (re-delivered
#   whenever one changes) → the Service waits until every VM reports healthy.
# No cycle: the wait lives on the Service (../fleet-service), after the delivery.

terraform {
  required_providers {
    istio = { source = "terraform-provider-istio/istio", version = "0.1.0" }
    null  = { source = "hashicorp/null" }
  }
}

variable "kubeconfig" { type = string }
variable "vm_ips" {
  type        = map(string)
  description = "VM name => IP address, e.g. { \"vm-1\" = \"10.0.0.11\" }."
}
variable "ssh_user" { default = "istio" }

provider "istio" {
  config_path = var.kubeconfig
}

module "product" {
  source     = "../fleet"
  service    = "product"
  vms        = var.vm_ips
  bundle_dir = "${path.module}/bundle"
}

resource "null_resource" "deliver_bundle" {
  for_each = var.vm_ips
  triggers = { bundle = module.product.vms[each.key].bundle_sha256 }

  connection {
    host = each.value
    user = var.ssh_user
  }

  provisioner "file" {
    source      = "${path.module}/bundle/${each.key}/"
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

module "product_service" {
  source                = "../fleet-service"
  name                  = "product"
  selector              = module.product.selector
  min_healthy_endpoints = length(var.vm_ips)
  depends_on            = [null_resource.deliver_bundle]
}
