# B: what a user picks instead of this provider. hashicorp/kubernetes creates the same objects
# (kubernetes_manifest for the WorkloadGroup and each WorkloadEntry, waiting on Healthy=True; a
# TokenRequest per VM; the Service) and hashicorp/local writes each VM's five bootstrap files,
# rendered with Terraform's functions from the same cluster objects A reads.
terraform {
  required_providers {
    kubernetes = { source = "hashicorp/kubernetes", version = "3.2.1" }
    local      = { source = "hashicorp/local", version = "1.4.0" }
  }
}

variable "n" { type = number }
variable "namespace" { type = string }
variable "kubeconfig" { type = string }
variable "bundle_dir" { type = string }

provider "kubernetes" {
  config_path = var.kubeconfig
}

# ---- the inputs istioctl (and A) read -----------------------------------------------------------
data "kubernetes_config_map_v1" "mesh" {
  metadata {
    name      = "istio"
    namespace = "istio-system"
  }
}

data "kubernetes_config_map_v1" "injector" {
  metadata {
    name      = "istio-sidecar-injector"
    namespace = "istio-system"
  }
}

data "kubernetes_config_map_v1" "root_cert" {
  metadata {
    name      = "istio-ca-root-cert"
    namespace = var.namespace
  }
}

data "kubernetes_service_v1" "eastwest" {
  metadata {
    name      = "istio-eastwestgateway"
    namespace = "istio-system"
  }
}

locals {
  labels      = { app = "bench" }
  mesh        = yamldecode(data.kubernetes_config_map_v1.mesh.data["mesh"])
  cluster_id  = jsondecode(data.kubernetes_config_map_v1.injector.data["values"]).global.multiCluster.clusterName
  gateway_ip  = data.kubernetes_service_v1.eastwest.status[0].load_balancer[0].ingress[0].ip
  addresses   = [for i in range(var.n) : cidrhost("10.10.0.0/16", i + 1)]
  entry_names = [for a in local.addresses : "bench-${a}"]
  metajson    = jsonencode(merge(local.labels, { "service.istio.io/canonical-name" = "bench", "service.istio.io/canonical-revision" = "latest" }))
  proxy_metadata = [for name in local.entry_names : {
    CANONICAL_REVISION        = "latest"
    CANONICAL_SERVICE         = "bench"
    ISTIO_META_CLUSTER_ID     = local.cluster_id
    ISTIO_META_DNS_CAPTURE    = "true"
    ISTIO_META_MESH_ID        = ""
    ISTIO_META_NETWORK        = ""
    ISTIO_META_WORKLOAD_ENTRY = name
    ISTIO_META_WORKLOAD_NAME  = "bench"
    ISTIO_METAJSON_LABELS     = local.metajson
    POD_NAMESPACE             = var.namespace
    SERVICE_ACCOUNT           = "bench"
    TRUST_DOMAIN              = lookup(local.mesh, "trustDomain", "cluster.local")
  }]
}

# ---- the objects --------------------------------------------------------------------------------
resource "kubernetes_manifest" "group" {
  manifest = {
    apiVersion = "networking.istio.io/v1"
    kind       = "WorkloadGroup"
    metadata   = { name = "bench", namespace = var.namespace }
    spec = {
      metadata = { labels = local.labels }
      template = { serviceAccount = "bench" }
      probe    = { httpGet = { port = 8080 } }
    }
  }
}

resource "kubernetes_token_request_v1" "vm" {
  count = var.n
  metadata {
    name      = "bench"
    namespace = var.namespace
  }
  spec {
    audiences          = ["istio-ca"]
    expiration_seconds = 3600
  }
}

resource "kubernetes_manifest" "entry" {
  count = var.n
  manifest = {
    apiVersion = "networking.istio.io/v1"
    kind       = "WorkloadEntry"
    metadata = {
      name        = local.entry_names[count.index]
      namespace   = var.namespace
      labels      = local.labels
      annotations = { "proxy.istio.io/health-checks-enabled" = "true" }
    }
    spec = {
      address        = local.addresses[count.index]
      labels         = local.labels
      serviceAccount = "bench"
    }
  }
  depends_on = [kubernetes_manifest.group]
  wait {
    condition {
      type   = "Healthy"
      status = "True"
    }
  }
}

resource "kubernetes_service_v1" "bench" {
  metadata {
    name      = "bench"
    namespace = var.namespace
  }
  spec {
    selector = local.labels
    port {
      name = "http"
      port = 8080
    }
  }
}

# ---- the five bootstrap files of each VM ------------------------------------------------------------
resource "local_file" "cluster_env" {
  count           = var.n
  filename        = "${var.bundle_dir}/vm-${count.index}/cluster.env"
  file_permission = "0644"
  content = join("", [for k, v in merge(local.proxy_metadata[count.index], {
    ISTIO_INBOUND_PORTS       = "*"
    ISTIO_LOCAL_EXCLUDE_PORTS = "22,15090,15021,15020"
    ISTIO_NAMESPACE           = var.namespace
    ISTIO_SERVICE             = "bench.${var.namespace}"
    ISTIO_SERVICE_CIDR        = "*"
  }) : "${k}='${v}'\n"])
}

resource "local_file" "mesh" {
  count           = var.n
  filename        = "${var.bundle_dir}/vm-${count.index}/mesh.yaml"
  file_permission = "0644"
  content = yamlencode({
    defaultConfig = merge(local.mesh.defaultConfig, {
      proxyMetadata  = local.proxy_metadata[count.index]
      readinessProbe = { httpGet = { port = 8080 } }
    })
  })
}

resource "local_file" "hosts" {
  count           = var.n
  filename        = "${var.bundle_dir}/vm-${count.index}/hosts"
  file_permission = "0644"
  content         = "${local.gateway_ip} istiod.istio-system.svc\n"
}

resource "local_file" "root_cert" {
  count           = var.n
  filename        = "${var.bundle_dir}/vm-${count.index}/root-cert.pem"
  file_permission = "0644"
  content         = data.kubernetes_config_map_v1.root_cert.data["root-cert.pem"]
}

resource "local_file" "token" {
  count             = var.n
  filename          = "${var.bundle_dir}/vm-${count.index}/istio-token"
  file_permission   = "0600"
  sensitive_content = kubernetes_token_request_v1.vm[count.index].token
}
