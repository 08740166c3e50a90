# One VM whose address is known: a WorkloadEntry is created for it and its five
# bootstrap files are written to ./bundle/vm-1 (the token with mode 0600).
resource "istio_vm_registration" "vm_1" {
  workload_group = istio_workload_group.product.id
  mode           = "manual"
  address        = "10.0.0.11"
  labels         = { version = "v1" }
  output_dir     = "${path.module}/bundle/vm-1"
}

# Deliver the bundle with anything that can copy files; bundle_sha256 changes
# whenever a file changes (for example when the token is renewed).
output "vm_1_bundle_sha256" {
  value = istio_vm_registration.vm_1.bundle_sha256
}
