//! terraform-provider-istio: a Terraform provider that brings virtual machines into an Istio mesh.
//!
//! Layout: `tfplug` is the protocol layer (knows nothing of Istio); `provider` is the `istio`
//! provider and its configuration; `cluster` holds Kubernetes plumbing; `istio` typed CRDs and the
//! VM bundle; `resources` one file per Terraform resource; `generated` writes the schema
//! snapshot and the docs from the same models.

pub mod cluster;
pub mod generated;
pub mod istio;
pub mod provider;
pub mod provider_data;
pub mod resources;
pub mod tfplug;
pub mod validation;

/// The provider's source address, as users write it in `required_providers`.
pub const PROVIDER_SOURCE: &str = "registry.terraform.io/terraform-provider-istio/istio";
