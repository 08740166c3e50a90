//! One folder per Terraform resource or data source (`mod.rs`: model and trait impl; `validate`,
//! `plan`, `cluster`: its plan-time checks, plan refinement and API calls). `all` registers them
//! with the provider.

use std::sync::Arc;

use crate::provider_data::ProviderHandle;
use crate::tfplug::{DataSource, EphemeralResource, Resource};

pub mod common;
pub mod error;
pub mod mesh;
pub mod mesh_service;
pub mod vm_bootstrap;
pub mod vm_registration;
pub mod workload_group;

pub fn all(handle: Arc<ProviderHandle>) -> Vec<Arc<dyn Resource>> {
    vec![
        Arc::new(workload_group::WorkloadGroupResource::new(handle.clone())),
        Arc::new(vm_registration::VmRegistrationResource::new(handle.clone())),
        Arc::new(mesh_service::MeshServiceResource::new(handle)),
    ]
}

pub fn all_data_sources(handle: Arc<ProviderHandle>) -> Vec<Arc<dyn DataSource>> {
    vec![Arc::new(mesh::MeshDataSource::new(handle))]
}

pub fn all_ephemeral_resources(handle: Arc<ProviderHandle>) -> Vec<Arc<dyn EphemeralResource>> {
    vec![Arc::new(vm_bootstrap::VmBootstrapEphemeral::new(handle))]
}
