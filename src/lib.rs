//! terraform-provider-istio: a Terraform provider that brings virtual machines into an Istio mesh.
//!
//! Layout: `tfplug` is the protocol layer (knows nothing of Istio); `provider` is the `istio`
//! provider and its configuration; `kube` holds Kubernetes plumbing; `istio` typed CRDs and the
//! VM bundle; `resources` one file per Terraform resource.

pub mod tfplug;
