//! What the provider's `configure` hands to every resource and data source: the configured
//! Kubernetes connection and Istio control plane. Like the `ProviderData` that
//! terraform-plugin-framework passes to a resource's `Configure`, resources receive it when the
//! provider registers them and never import the provider itself.

use std::sync::Arc;

use tokio::sync::RwLock;

use crate::cluster::cache::ClusterCache;
use crate::tfplug::{AttributePath, Diagnostics};

/// What every resource needs after configuration.
pub struct Configured {
    pub client: kube::Client,
    pub server: String,
    pub istio_namespace: String,
    pub revision: Option<String>,
    pub field_manager: String,
    /// Reads and watches shared by every resource of this provider process.
    pub cache: ClusterCache,
}

impl Configured {
    pub fn new(
        client: kube::Client,
        server: String,
        istio_namespace: String,
        revision: Option<String>,
        field_manager: String,
    ) -> Self {
        Configured {
            cache: ClusterCache::new(client.clone()),
            client,
            server,
            istio_namespace,
            revision,
            field_manager,
        }
    }
}

/// The outcome of the provider's `configure`.
pub enum ProviderState {
    NotConfigured,
    /// The configuration depends on values Terraform only knows during apply.
    Unknown(Vec<String>),
    Failed(String, Option<AttributePath>),
    Ready(Arc<Configured>),
}

/// Shared between the provider and its resources; set once by `configure`.
pub struct ProviderHandle {
    state: RwLock<ProviderState>,
}

impl ProviderHandle {
    pub fn new() -> Arc<Self> {
        Arc::new(ProviderHandle {
            state: RwLock::new(ProviderState::NotConfigured),
        })
    }

    /// Called by the provider's `configure`.
    pub async fn set(&self, state: ProviderState) {
        *self.state.write().await = state;
    }

    /// The configured connection (`configure` checked it against the API server). Adds a
    /// diagnostic saying what to do when it is not available.
    pub async fn configured(&self, diags: &mut Diagnostics) -> Option<Arc<Configured>> {
        match &*self.state.read().await {
            ProviderState::Ready(configured) => Some(configured.clone()),
            ProviderState::NotConfigured => {
                diags.root_error(
                    "Provider not configured",
                    "Terraform did not configure the istio provider before using it.",
                );
                None
            }
            ProviderState::Unknown(attributes) => {
                diags.root_error(
                    "Provider configuration not known yet",
                    format!(
                        "The istio provider's {} depend(s) on values known only after apply (for example a cluster created in the same run). Create the cluster in a separate apply (`terraform apply -target=...`), or pass known values.",
                        attributes.join(", ")
                    ),
                );
                None
            }
            ProviderState::Failed(message, path) => {
                match path {
                    Some(path) => diags.error(
                        "Invalid provider configuration",
                        message.clone(),
                        path.clone(),
                    ),
                    None => diags.root_error("Invalid provider configuration", message.clone()),
                }
                None
            }
        }
    }
}
