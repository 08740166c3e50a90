output "workload_group_id" {
  description = "`<namespace>/<name>` of the fleet's WorkloadGroup."
  value       = istio_workload_group.this.id
}

output "selector" {
  description = "Labels that select the fleet's VMs (for an istio_mesh_service)."
  value       = { app = var.service }
}

output "vms" {
  description = "VM name => registration: entry, health and token expiry."
  value = {
    for name, vm in istio_vm_registration.vm : name => {
      registration   = vm.id
      workload_entry = vm.workload_entry_name
      healthy        = vm.healthy
      health_message = vm.health_message
      token_expires  = vm.token_expires_at
      bundle_sha256  = vm.bundle_sha256
    }
  }
}

output "bundles" {
  description = "VM name => its five bootstrap files and their digest (sensitive: the token is the VM's credential)."
  sensitive   = true
  value = {
    for name, vm in istio_vm_registration.vm : name => {
      sha256      = vm.bundle_sha256
      cluster_env = vm.cluster_env
      mesh_config = vm.mesh_config
      hosts       = vm.hosts
      root_cert   = vm.root_cert
      istio_token = vm.istio_token
    }
  }
}
