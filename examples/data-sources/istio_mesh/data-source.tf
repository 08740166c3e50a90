data "istio_mesh" "this" {}

output "trust_domain" {
  value = data.istio_mesh.this.trust_domain
}
