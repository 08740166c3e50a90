# Flow 2 without a token in state (Terraform >= 1.11 for write-only arguments, OpenTofu >= 1.11):
#   registrations that keep no token (../fleet with issue_token = false)
#   → one ephemeral istio_vm_bootstrap per VM: its five files with a fresh token, this run only
#   → the files go into an SSM parameter through its write-only argument `value_wo`
#   → the VM's user-data fetches the parameter at boot and writes the files.
# Neither the token nor the files are stored in plan or state; user-data holds no secret.
# On older CLIs use ../new-vm (the token is then in state, marked sensitive).

terraform {
  required_version = ">= 1.11"
  required_providers {
    istio = { source = "terraform-provider-istio/istio", version = "0.1.0" }
    aws   = { source = "hashicorp/aws", version = ">= 6.0" }
  }
}

variable "kubeconfig" { type = string }
variable "ami" { type = string }
variable "subnet_id" { type = string }
variable "instance_profile" {
  type        = string
  description = "Instance profile allowed to read /istio/vm/* from SSM."
}
variable "vm_names" {
  type    = set(string)
  default = ["vm-1", "vm-2"]
}

provider "istio" {
  config_path = var.kubeconfig
}

module "product" {
  source      = "../fleet"
  service     = "product"
  vms         = { for name in var.vm_names : name => "" }
  issue_token = false
}

ephemeral "istio_vm_bootstrap" "product" {
  for_each     = var.vm_names
  registration = module.product.vms[each.key].registration
  labels       = { "vm" = each.key } # as the fleet's registrations
}

resource "aws_ssm_parameter" "bootstrap" {
  for_each = var.vm_names
  name     = "/istio/vm/product/${each.key}"
  type     = "SecureString"
  # Write-only: sent to AWS, never stored in plan or state.
  value_wo = jsonencode(ephemeral.istio_vm_bootstrap.product[each.key].files)
  # Bump to push a fresh bundle (a new token) to the parameter.
  value_wo_version = 1
}

resource "aws_instance" "product" {
  for_each             = var.vm_names
  ami                  = var.ami
  instance_type        = "t3.small"
  subnet_id            = var.subnet_id
  iam_instance_profile = var.instance_profile

  # No secret in user-data: the VM reads its bundle from the parameter at boot.
  user_data = <<-SCRIPT
    #!/bin/sh
    set -eu
    bundle="$(aws ssm get-parameter --with-decryption --name '${aws_ssm_parameter.bootstrap[each.key].name}' --query Parameter.Value --output text)"
    file() { printf '%s' "$bundle" | jq -r --arg f "$1" '.[$f]' > "$2"; }
    mkdir -p /etc/certs /var/run/secrets/tokens /var/lib/istio/envoy /etc/istio/config
    file root-cert.pem /etc/certs/root-cert.pem
    file istio-token /var/run/secrets/tokens/istio-token && chmod 0600 /var/run/secrets/tokens/istio-token
    file cluster.env /var/lib/istio/envoy/cluster.env
    file mesh.yaml /etc/istio/config/mesh
    file hosts /dev/stdout >> /etc/hosts
    systemctl enable --now istio
  SCRIPT
}

module "product_service" {
  source                = "../fleet-service"
  name                  = "product"
  selector              = module.product.selector
  min_healthy_endpoints = length(var.vm_names)
  timeout               = "15m"
  depends_on            = [aws_instance.product]
}
