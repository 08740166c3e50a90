variable "service" {
  type        = string
  description = "Name of the service the VMs serve: the `app` label and the group `<service>-vm`."
}

variable "namespace" {
  type        = string
  default     = "default"
  description = "Namespace of the WorkloadGroup; the VMs join it."
}

variable "service_account" {
  type        = string
  default     = "default"
  description = "Service account the VMs run as (their certificates' SPIFFE identity)."
}

variable "port" {
  type        = number
  default     = 8080
  description = "Port the VMs' application serves on and is probed on."
}

variable "probe_path" {
  type        = string
  default     = "/ready"
  description = "HTTP path istiod's health probe asks for on each VM."
}

variable "vms" {
  type        = map(string)
  description = "VM name => IP address; an empty address registers the VM automatically when its agent connects."
}

variable "network" {
  type        = string
  default     = null
  description = "Network of the VMs in a multi-network mesh; null when they share the cluster's network."
}

variable "revision" {
  type        = string
  default     = null
  description = "istiod revision the VMs connect to; null means the provider's revision."
}

variable "vm_revisions" {
  type        = map(string)
  default     = {}
  description = "VM name => istiod revision, for VMs that differ from var.revision (e.g. those moved to a canary first)."
}

variable "bundle_dir" {
  type        = string
  default     = null
  description = "If set, each VM's five bootstrap files are written to <bundle_dir>/<vm name>."
}

variable "issue_token" {
  type        = bool
  default     = true
  description = "Keep each VM's token in the registration's state; false when the VMs get their token from the ephemeral istio_vm_bootstrap instead (Terraform >= 1.10, OpenTofu >= 1.11)."
}
