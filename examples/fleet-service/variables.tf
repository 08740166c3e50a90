variable "name" {
  type        = string
  description = "Name of the Service (a DNS-1123 label)."
}

variable "namespace" {
  type        = string
  default     = "default"
  description = "Namespace of the Service: the fleet's namespace."
}

variable "selector" {
  type        = map(string)
  description = "Labels that select the fleet's VMs: the fleet module's `selector` output."
}

variable "port" {
  type        = number
  default     = 8080
  description = "Port the Service listens on and the VMs serve on (HTTP)."
}

variable "min_healthy_endpoints" {
  type        = number
  description = "How many healthy endpoints (VMs and Pods) the apply waits for."
}

variable "timeout" {
  type        = string
  default     = "10m"
  description = "How long the apply waits for them (VMs boot, connect and pass their probe)."
}
