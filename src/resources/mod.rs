//! One file per Terraform resource or data source. `all` registers them with the provider.

use std::sync::Arc;

use crate::provider::ProviderHandle;
use crate::tfplug::{DataSource, Resource};

pub mod mesh;

pub fn all(_handle: Arc<ProviderHandle>) -> Vec<Arc<dyn Resource>> {
    vec![]
}

pub fn all_data_sources(handle: Arc<ProviderHandle>) -> Vec<Arc<dyn DataSource>> {
    vec![Arc::new(mesh::MeshDataSource::new(handle))]
}
