//! The provider-level contract.

use std::sync::Arc;

use async_trait::async_trait;

use super::diag::Diagnostics;
use super::ephemeral::EphemeralResource;
use super::resource::{Ctx, DataSource, Resource};
use super::schema::Schema;
use super::value::Value;

#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The `provider "..." {}` block's schema.
    fn schema(&self) -> Schema;

    async fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}

    /// Called once per process before any resource operation. The config may contain unknowns
    /// (e.g. a cluster created in the same apply); report that clearly rather than fail later.
    async fn configure(
        &self,
        ctx: &Ctx,
        terraform_version: &str,
        config: Value,
        diags: &mut Diagnostics,
    );

    fn resources(&self) -> Vec<Arc<dyn Resource>>;

    fn data_sources(&self) -> Vec<Arc<dyn DataSource>> {
        Vec::new()
    }

    /// Ephemeral resources; offered to Terraform 1.10+ / OpenTofu 1.11+ only (older CLIs never
    /// ask for them).
    fn ephemeral_resources(&self) -> Vec<Arc<dyn EphemeralResource>> {
        Vec::new()
    }
}
