# A fleet of VMs of one service, as a module: the WorkloadGroup they share and one
# registration per VM, with for_each over a map of VM name => address. Call it once per
# service; deliver each VM's five bootstrap files (the `bundles` output, or the files
# under bundle_dir/<vm>) with whatever creates or configures the VMs, then wait for the
# VMs with an istio_mesh_service in the calling configuration (the ../fleet-service module).
#
#   module "product" {
#     source  = "./fleet"
#     service = "product"
#     vms     = { "vm-1" = "10.0.0.11", "vm-2" = "10.0.0.12", "vm-3" = "" }
#   }
#
# Adding a key registers one more VM; removing one revokes its token and deletes its
# WorkloadEntry. An empty address means auto-registration: istiod creates the entry
# when the VM's agent first connects (for VMs whose address is not known in advance).

terraform {
  required_providers {
    istio = {
      source  = "terraform-provider-istio/istio"
      version = ">= 0.1.0"
    }
  }
}

resource "istio_workload_group" "this" {
  name      = "${var.service}-vm"
  namespace = var.namespace

  metadata {
    labels = { app = var.service }
  }

  template {
    service_account = var.service_account
    ports           = { http = var.port }
    network         = var.network
  }

  probe {
    http_get {
      path = var.probe_path
      port = var.port
    }
  }
}

resource "istio_vm_registration" "vm" {
  for_each = var.vms

  workload_group = istio_workload_group.this.id
  mode           = each.value == "" ? "auto" : "manual"
  address        = each.value == "" ? null : each.value
  revision       = lookup(var.vm_revisions, each.key, var.revision)
  labels         = { "vm" = each.key }
  issue_token    = var.issue_token
  output_dir     = var.bundle_dir == null ? null : "${var.bundle_dir}/${each.key}"
}
