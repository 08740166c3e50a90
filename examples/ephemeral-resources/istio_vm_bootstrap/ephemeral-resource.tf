# Terraform >= 1.10 / OpenTofu >= 1.11. A registration that keeps no token in its state, and
# the VM's five files with a fresh token for this run only: pass them to write-only
# arguments or provisioners (ephemeral values are refused anywhere they would be stored).
resource "istio_vm_registration" "vm_2" {
  workload_group = istio_workload_group.product.id
  issue_token    = false
  labels         = { version = "v1" }
}

ephemeral "istio_vm_bootstrap" "vm_2" {
  registration = istio_vm_registration.vm_2.id
  labels       = istio_vm_registration.vm_2.labels # the bundle settings of the registration
}

# Copy the files to a VM that already runs; re-run when the bundle changes.
resource "terraform_data" "vm_2_bootstrap" {
  triggers_replace = [istio_vm_registration.vm_2.bundle_sha256]

  connection {
    type = "ssh"
    host = "10.0.0.12"
    user = "admin"
  }

  provisioner "file" {
    content     = ephemeral.istio_vm_bootstrap.vm_2.istio_token
    destination = "/var/run/secrets/tokens/istio-token"
  }
  provisioner "file" {
    content     = ephemeral.istio_vm_bootstrap.vm_2.cluster_env
    destination = "/var/lib/istio/envoy/cluster.env"
  }
  provisioner "file" {
    content     = ephemeral.istio_vm_bootstrap.vm_2.mesh_config
    destination = "/etc/istio/config/mesh"
  }
  provisioner "file" {
    content     = ephemeral.istio_vm_bootstrap.vm_2.root_cert
    destination = "/etc/certs/root-cert.pem"
  }
}
