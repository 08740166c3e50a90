//! Data source `istio_mesh`: what the Istio control plane publishes in the cluster (trust
//! domain, cluster ID, network, root certificate, istiod's service name), for use in outputs
//! and in VM delivery resources.

use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::istio::istiod_host;
use crate::provider_data::ProviderHandle;
use crate::resources::error::OrReport;
use crate::tfplug::{
    AttributePath, Ctx, DataSource, Diagnostics, Schema, UnknownAs, Value, decode, encode,
};

mod cluster;

/// Facts about the Istio control plane the provider is configured for.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
pub struct MeshModel {
    /// Control-plane revision to read; defaults to the provider's `revision`.
    pub revision: Option<String>,
    /// Namespace of the control plane (the provider's `istio_namespace`).
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub istio_namespace: Option<String>,
    /// Trust domain of the mesh (`trustDomain` of the mesh config; `cluster.local` by default).
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub trust_domain: Option<String>,
    /// Cluster ID istiod uses (`global.multiCluster.clusterName` of the injector values); null
    /// when the installation does not publish it.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub cluster_id: Option<String>,
    /// Network of the cluster (`global.network`), null for single-network meshes.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub network: Option<String>,
    /// PEM root certificate of the mesh CA (`istio-ca-root-cert`).
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub root_cert: Option<String>,
    /// The mesh config (`mesh` key of the `istio[-<revision>]` ConfigMap) as YAML.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub mesh_config: Option<String>,
    /// Host name VMs use for istiod: `istiod[-<revision>].<namespace>.svc`.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub istiod_host: Option<String>,
}

pub struct MeshDataSource {
    handle: Arc<ProviderHandle>,
}

impl MeshDataSource {
    pub fn new(handle: Arc<ProviderHandle>) -> Self {
        MeshDataSource { handle }
    }
}

#[async_trait]
impl DataSource for MeshDataSource {
    fn type_name(&self) -> &'static str {
        "istio_mesh"
    }

    fn schema(&self) -> Schema {
        Schema::from_model::<MeshModel>(0)
    }

    async fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        let Some(model) = decode::<MeshModel>(config, UnknownAs::Null, diags) else {
            return;
        };
        if let Some(revision) = model.revision.as_deref().filter(|r| !r.is_empty()) {
            if let Err(problem) = crate::validation::dns1123_label(revision) {
                diags.error("Invalid revision", problem, AttributePath::new("revision"));
            }
        }
    }

    async fn read(&self, _ctx: &Ctx, config: Value, diags: &mut Diagnostics) -> Option<Value> {
        let mut model = decode::<MeshModel>(&config, UnknownAs::Error, diags)?;
        let configured = self.handle.configured(diags).await?;
        let revision = model
            .revision
            .clone()
            .or_else(|| configured.revision.clone());
        let revision = revision.unwrap_or_default();
        let facts = cluster::read_facts(&configured, &revision)
            .await
            .or_report("Cannot read the Istio control plane", diags)?;
        let namespace = &configured.istio_namespace;
        model.istiod_host = Some(istiod_host(namespace, &revision));
        model.istio_namespace = Some(namespace.clone());
        model.trust_domain = Some(facts.trust_domain);
        model.cluster_id = facts.injector.cluster_id;
        model.network = facts.injector.network;
        model.root_cert = Some(facts.root_cert);
        model.mesh_config = Some(facts.mesh_config);
        encode(&model, &self.schema(), diags)
    }
}
