# Flow 2 — a new VM whose user-data carries the bundle (auto-registration):
#   registration → VM created with the five files in cloud-init
#   → the Service waits until istiod auto-registers the VM and reports it healthy.
# The VM's address is not known before it exists, so mode = "auto": istiod
# creates the WorkloadEntry when the VM's agent connects, and the provider finds
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

provider "istio" {
  config_path = var.kubeconfig
}

resource "istio_workload_group" "product" {
  name      = "product-vm"
  namespace = "default"
  metadata {
    labels = { app = "product" }
  }
  template {
    service_account = "default"
    ports           = { http = 8080 }
  }
  probe {
    http_get {
      port = 8080
    }
  }
}

resource "istio_vm_registration" "vm" {
  workload_group = istio_workload_group.product.id
  mode           = "auto"
}

resource "aws_instance" "product" {
  ami           = var.ami
  instance_type = "t3.small"
  subnet_id     = var.subnet_id

  # The token is sensitive: user-data is readable by whoever can describe the
  # instance, so keep token_duration short (the default 1h) for this flow.
  user_data = <<-CLOUDINIT
    #cloud-config
    write_files:
      - path: /etc/certs/root-cert.pem
        content: ${jsonencode(istio_vm_registration.vm.root_cert)}
      - path: /var/run/secrets/tokens/istio-token
        permissions: "0600"
        content: ${jsonencode(istio_vm_registration.vm.istio_token)}
      - path: /var/lib/istio/envoy/cluster.env
        content: ${jsonencode(istio_vm_registration.vm.cluster_env)}
      - path: /etc/istio/config/mesh
        content: ${jsonencode(istio_vm_registration.vm.mesh_config)}
    runcmd:
      - [sh, -c, "echo '${istio_vm_registration.vm.hosts}' >> /etc/hosts"]
      - [systemctl, enable, --now, istio]
  CLOUDINIT

  # A renewed token changes the bundle; replace the VM only on purpose.
  lifecycle {
    ignore_changes = [user_data]
  }
}

resource "istio_mesh_service" "product" {
  name      = "product"
  namespace = "default"
  selector  = { app = "product" }
  ports {
    name = "http"
    port = 8080
  }
  wait {
    min_healthy_endpoints = 1
    timeout               = "15m"
  }
  depends_on = [aws_instance.product]
}
