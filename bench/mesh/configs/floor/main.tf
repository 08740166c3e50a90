# Floor: Terraform's own cost. The tfplug test provider (no cluster, one small JSON file per
# object) with as many resources as A has (n registrations + group + Service).
terraform {
  required_providers {
    tfplugtest = { source = "tfplug/tfplugtest" }
  }
}

variable "n" { type = number }
variable "namespace" { type = string }
variable "kubeconfig" { type = string }
variable "bundle_dir" { type = string }

resource "tfplugtest_blob" "b" {
  count   = var.n + 2
  name    = "b${count.index}"
  content = "content of blob ${count.index}"
}
