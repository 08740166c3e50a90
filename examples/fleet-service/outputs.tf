output "hostname" {
  description = "Name clients in the mesh use: `<name>.<namespace>.svc.cluster.local`."
  value       = istio_mesh_service.this.hostname
}

output "endpoints" {
  description = "Endpoints behind the Service at the last refresh (Pods and VMs, healthy and not)."
  value       = istio_mesh_service.this.endpoints
}
