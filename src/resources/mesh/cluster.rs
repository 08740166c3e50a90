//! Every call of the `istio_mesh` data source to the API server.

use crate::cluster::mesh;
use crate::istio::{InjectorValues, injector_values, mesh_configmap_name, trust_domain};
use crate::istio::{MESH_CONFIG_KEY, ROOT_CERT_CONFIGMAP, ROOT_CERT_KEY};
use crate::provider_data::Configured;
use crate::resources::error::ResourceError;

/// What the control plane of `revision` publishes.
pub(super) struct MeshFacts {
    pub mesh_config: String,
    pub trust_domain: String,
    pub injector: InjectorValues,
    pub root_cert: String,
    /// `CLUSTER_ID` of istiod's Deployment, when readable and literal.
    pub deployment_cluster_id: Option<String>,
}

/// The revision to read: `explicit` when set, else the one the `default` revision tag points
/// at (istioctl 1.28+'s rule, see `cluster::mesh::resolve_revision`).
#[tracing::instrument(level = "debug", skip_all, fields(istio_namespace = %configured.istio_namespace))]
pub(super) async fn revision(configured: &Configured, explicit: Option<&str>) -> String {
    let (client, namespace) = (&configured.client, configured.istio_namespace.as_str());
    mesh::resolve_revision(client, namespace, explicit).await
}

/// The mesh config, the injector values (optional: not every installation has them), the
/// root certificate and istiod's own cluster ID setting, all from the control plane's namespace.
#[tracing::instrument(level = "debug", skip_all, fields(istio_namespace = %configured.istio_namespace, revision))]
pub(super) async fn read_facts(
    configured: &Configured,
    revision: &str,
) -> Result<MeshFacts, ResourceError> {
    let (client, namespace) = (&configured.client, configured.istio_namespace.as_str());
    let mesh_config = mesh::mesh_config(client, namespace, revision)
        .await?
        .ok_or_else(|| missing(namespace, &mesh_configmap_name(revision), MESH_CONFIG_KEY))?;
    // The data source reports what it can: unreadable injector values leave the cluster ID
    // and network null rather than failing the read.
    let injector = mesh::injector_values(client, namespace, revision)
        .await?
        .and_then(|values| injector_values(&values, revision).ok())
        .unwrap_or_default();
    let root_cert = mesh::root_cert(client, namespace)
        .await?
        .ok_or_else(|| missing(namespace, ROOT_CERT_CONFIGMAP, ROOT_CERT_KEY))?;
    let deployment_cluster_id =
        mesh::istiod_deployment_cluster_id(client, namespace, revision).await;
    Ok(MeshFacts {
        trust_domain: trust_domain(&mesh_config),
        mesh_config,
        injector,
        root_cert,
        deployment_cluster_id,
    })
}

fn missing(namespace: &str, name: &str, key: &str) -> ResourceError {
    ResourceError::missing(
        None,
        format!(
            "ConfigMap {namespace}/{name} with key {key:?} was not found: is Istio installed in {namespace:?} (and with this revision)? Set the provider's `istio_namespace`/`revision` to match the installation"
        ),
    )
}
