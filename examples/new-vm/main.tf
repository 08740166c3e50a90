# Flow 2 — new VMs whose user-data carries the bundle (auto-registration):
#   registrations (the ../fleet module) → VMs created with the five files in cloud-init
#   → the Service waits until istiod auto-registers the VMs and reports them healthy.
# The VMs' addresses are not known before they exist, so each VM's address is "":
# istiod creates the WorkloadEntry when the VM's agent connects, and the provider finds
# it by the label the bundle carries.

terraform {
  required_providers {
    istio = { source = "terraform-provider-istio/istio", version = "0.1.0" }
    aws   = { source = "hashicorp/aws" }
  }
}

variable "kubeconfig" { type = string }
variable "ami" { type = string }
variable "subnet_id" { type = string }
variable "vm_names" {
  type    = set(string)
  default = ["vm-1", "vm-2"]
}

provider "istio" {
  config_path = var.kubeconfig
}

module "product" {
  source  = "../fleet"
  service = "product"
  vms     = { for name in var.vm_names : name => "" }
}

resource "aws_instance" "product" {
  for_each      = var.vm_names
  ami           = var.ami
  instance_type = "t3.small"
  subnet_id     = var.subnet_id

  # The token is sensitive: user-data is readable by whoever can describe the
  # instance, so keep token_duration short (the default 1h) for this flow.
  user_data = <<-CLOUDINIT
    #cloud-config
    write_files:
      - path: /etc/certs/root-cert.pem
        content: ${jsonencode(module.product.bundles[each.key].root_cert)}
      - path: /var/run/secrets/tokens/istio-token
        permissions: "0600"
        content: ${jsonencode(module.product.bundles[each.key].istio_token)}
      - path: /var/lib/istio/envoy/cluster.env
        content: ${jsonencode(module.product.bundles[each.key].cluster_env)}
      - path: /etc/istio/config/mesh
        content: ${jsonencode(module.product.bundles[each.key].mesh_config)}
    runcmd:
      - [sh, -c, "echo '${module.product.bundles[each.key].hosts}' >> /etc/hosts"]
      - [systemctl, enable, --now, istio]
  CLOUDINIT

  # A renewed token changes the bundle; replace the VM only on purpose.
  lifecycle {
    ignore_changes = [user_data]
  }
}

module "product_service" {
  source                = "../fleet-service"
  name                  = "product"
  selector              = module.product.selector
  min_healthy_endpoints = length(var.vm_names)
  timeout               = "15m"
  depends_on            = [aws_instance.product]
}
