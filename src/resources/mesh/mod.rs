//! Data source `istio_mesh`: what the Istio control plane publishes in the cluster (trust
//! domain, cluster ID, network, root certificate, istiod's service name), for use in outputs
//! and in VM delivery resources.

use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::istio::control_plane::istiod_cluster_id;
use crate::istio::istiod_host;
use crate::provider_data::ProviderHandle;
use crate::resources::error::OrReport;
use crate::tfplug::{Ctx, DataSource, Diagnostics, Schema, UnknownAs, Value, decode, encode};

mod cluster;
mod validate;

/// Facts about the Istio control plane the provider is configured for.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
pub struct MeshModel {
    /// Control-plane revision to read; defaults to the provider's `revision`, then to the
    /// revision the `default` revision tag points at (as istioctl 1.28+ does).
    pub revision: Option<String>,
    /// Namespace of the control plane (the provider's `istio_namespace`).
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub istio_namespace: Option<String>,
    /// Trust domain of the mesh (`trustDomain` of the mesh config; `cluster.local` by default).
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub trust_domain: Option<String>,
    /// Cluster ID istiod runs with. Taken from the first source that has one, and
    /// `cluster_id_source` says which: `istiod_deployment` (`CLUSTER_ID` of the
    /// `istiod[-<revision>]` Deployment's `discovery` container), `injector_values`
    /// (`global.multiCluster.clusterName` of the `istio-sidecar-injector[-<revision>]`
    /// ConfigMap, when the Deployment cannot be read), or `default` (`Kubernetes`, istiod's
    /// built-in default on an install that sets neither).
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub cluster_id: Option<String>,
    /// Which source `cluster_id` came from: `istiod_deployment`, `injector_values` or `default`.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub cluster_id_source: Option<String>,
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
        if let Some(model) = decode::<MeshModel>(config, UnknownAs::Null, diags) {
            validate::check(&model, diags);
        }
    }

    async fn read(&self, _ctx: &Ctx, config: Value, diags: &mut Diagnostics) -> Option<Value> {
        let mut model = decode::<MeshModel>(&config, UnknownAs::Error, diags)?;
        let configured = self.handle.configured(diags).await?;
        let explicit = model
            .revision
            .clone()
            .filter(|r| !r.is_empty())
            .or_else(|| configured.revision.clone());
        let namespace = &configured.istio_namespace;
        // As istioctl 1.28+: no revision given means the one the default tag points at.
        let revision = cluster::revision(&configured, explicit.as_deref()).await;
        let asked_for_revision = model.revision.as_deref().is_some_and(|r| !r.is_empty());
        let facts = cluster::read_facts(&configured, &revision)
            .await
            // A control plane missing for this data source's own `revision` is that
            // attribute's fault; otherwise the provider's settings are (the message says so).
            .map_err(|error| {
                if asked_for_revision {
                    error.on("revision")
                } else {
                    error
                }
            })
            .or_report("Cannot read the Istio control plane", diags)?;
        let (cluster_id, source) = istiod_cluster_id(
            facts.deployment_cluster_id.as_deref(),
            facts.injector.cluster_id.as_deref(),
        );
        model.istiod_host = Some(istiod_host(namespace, &revision));
        model.istio_namespace = Some(namespace.clone());
        model.trust_domain = Some(facts.trust_domain);
        model.cluster_id = Some(cluster_id);
        model.cluster_id_source = Some(source.as_str().to_string());
        model.network = facts.injector.network;
        model.root_cert = Some(facts.root_cert);
        model.mesh_config = Some(facts.mesh_config);
        encode(&model, &self.schema(), diags)
    }
}
