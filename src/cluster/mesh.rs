//! Reads what an Istio control plane publishes in ConfigMaps, under the names `crate::istio`
//! gives them: the mesh config, the injector values and the root certificate. Each reader
//! returns `None` when the ConfigMap or its key is absent; the caller decides what that means.

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client};

use super::KubeError;
use crate::istio::control_plane::{
    ISTIOD_CONTAINER, cluster_id_from_env, default_tag_webhook_name, effective_revision,
    istiod_deployment_name,
};
use crate::istio::liveness::{IstiodLease, istiod_lease_names};
use crate::istio::{
    INJECTOR_VALUES_KEY, MESH_CONFIG_KEY, ROOT_CERT_CONFIGMAP, ROOT_CERT_KEY,
    injector_configmap_name, mesh_configmap_name,
};

/// The `mesh` key of ConfigMap `istio[-<rev>]` in the control plane's namespace.
pub async fn mesh_config(
    client: &Client,
    istio_namespace: &str,
    revision: &str,
) -> Result<Option<String>, KubeError> {
    let name = mesh_configmap_name(revision);
    config_map_key(client, istio_namespace, &name, MESH_CONFIG_KEY).await
}

/// The `values` key of ConfigMap `istio-sidecar-injector[-<rev>]` in the control plane's
/// namespace.
pub async fn injector_values(
    client: &Client,
    istio_namespace: &str,
    revision: &str,
) -> Result<Option<String>, KubeError> {
    let name = injector_configmap_name(revision);
    config_map_key(client, istio_namespace, &name, INJECTOR_VALUES_KEY).await
}

/// The mesh root certificate istiod publishes in `namespace` (ConfigMap `istio-ca-root-cert`).
pub async fn root_cert(client: &Client, namespace: &str) -> Result<Option<String>, KubeError> {
    config_map_key(client, namespace, ROOT_CERT_CONFIGMAP, ROOT_CERT_KEY).await
}

/// The env of the `discovery` container of istiod's Deployment for `revision`, as
/// `(name, literal value)`. `None` when istiod does not run as a Deployment here or RBAC hides
/// it: callers then fall back to what the ConfigMaps publish, or to istiod's defaults.
pub async fn istiod_env(
    client: &Client,
    istio_namespace: &str,
    revision: &str,
) -> Option<Vec<(String, Option<String>)>> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), istio_namespace);
    let deployment = deployments
        .get_opt(&istiod_deployment_name(revision))
        .await
        .ok()??;
    let containers = deployment.spec?.template.spec?.containers;
    let discovery = containers
        .into_iter()
        .find(|c| c.name == ISTIOD_CONTAINER)?;
    Some(
        discovery
            .env
            .unwrap_or_default()
            .into_iter()
            .map(|var| (var.name, var.value))
            .collect(),
    )
}

/// istiod's per-revision leader-election Leases that exist and are readable (a Lease RBAC
/// hides, or that this Istio does not hold, is left out).
pub async fn istiod_leases(
    client: &Client,
    istio_namespace: &str,
    revision: &str,
) -> Vec<IstiodLease> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), istio_namespace);
    let mut found = Vec::new();
    for name in istiod_lease_names(revision) {
        let Ok(Some(lease)) = leases.get_opt(&name).await else {
            continue;
        };
        let spec = lease.spec.unwrap_or_default();
        found.push(IstiodLease {
            name,
            holder: spec.holder_identity.unwrap_or_default(),
            renewed_at: spec.renew_time.map(|t| t.0.as_second()),
            duration_seconds: spec.lease_duration_seconds,
        });
    }
    found
}

/// `CLUSTER_ID` of istiod's Deployment, when readable and literal.
pub async fn istiod_deployment_cluster_id(
    client: &Client,
    istio_namespace: &str,
    revision: &str,
) -> Option<String> {
    cluster_id_from_env(&istiod_env(client, istio_namespace, revision).await?)
}

/// The revision to use: `explicit` when set, else the one the `default` revision tag points
/// at, else `default` — istioctl 1.28+'s rule (see [`effective_revision`]). A tag webhook that
/// cannot be read (absent, or hidden by RBAC) counts as no tag.
pub async fn resolve_revision(
    client: &Client,
    istio_namespace: &str,
    explicit: Option<&str>,
) -> String {
    if let Some(revision) = explicit.filter(|r| !r.is_empty()) {
        return revision.to_string();
    }
    let webhooks: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let labels: Option<BTreeMap<String, String>> = webhooks
        .get_opt(&default_tag_webhook_name(istio_namespace))
        .await
        .ok()
        .flatten()
        .and_then(|webhook| webhook.metadata.labels);
    effective_revision(None, labels.as_ref())
}

async fn config_map_key(
    client: &Client,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<Option<String>, KubeError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let Some(config_map) = api.get_opt(name).await? else {
        return Ok(None);
    };
    Ok(config_map.data.and_then(|mut data| data.remove(key)))
}
