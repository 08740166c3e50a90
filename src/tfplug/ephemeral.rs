//! Ephemeral resources (protocol 6.7+, Terraform 1.10+ / OpenTofu 1.11+): values that exist for
//! one Terraform run only (opened when needed, renewed while in use, closed at the end) and are
//! never written to plan or state. They suit credentials such as a VM's bootstrap token: feed
//! the result into write-only attributes or provisioners.

use std::time::SystemTime;

use async_trait::async_trait;

use super::diag::Diagnostics;
use super::resource::Ctx;
use super::schema::Schema;
use super::value::Value;

/// What `open` hands back to Terraform.
#[derive(Clone, Debug)]
pub struct Opened {
    /// The value of the schema's type (configuration plus computed results).
    pub result: Value,
    /// When Terraform should call `renew` if it still uses the result (`None`: never).
    pub renew_at: Option<SystemTime>,
    /// Opaque bytes given back to `renew` and `close` (e.g. the name of what to revoke).
    /// Terraform keeps them in memory only.
    pub private: Vec<u8>,
}

/// What `renew` hands back to Terraform.
#[derive(Clone, Debug, Default)]
pub struct Renewed {
    pub renew_at: Option<SystemTime>,
    /// Replaces the private bytes when `Some`.
    pub private: Option<Vec<u8>>,
}

#[async_trait]
pub trait EphemeralResource: Send + Sync + 'static {
    /// e.g. `istio_vm_bootstrap`.
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;

    /// The configuration may contain unknowns here.
    async fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}

    /// Called with a wholly known configuration. `None` with error diagnostics fails the run.
    async fn open(&self, ctx: &Ctx, config: Value, diags: &mut Diagnostics) -> Option<Opened>;

    /// Called at `renew_at` while Terraform still needs the result. Default: nothing to renew.
    async fn renew(&self, _ctx: &Ctx, _private: Vec<u8>, _diags: &mut Diagnostics) -> Renewed {
        Renewed::default()
    }

    /// Called when Terraform no longer needs the result (e.g. revoke a token).
    async fn close(&self, _ctx: &Ctx, _private: Vec<u8>, _diags: &mut Diagnostics) {}
}
