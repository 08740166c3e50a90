//! Reads the facts an Istio control plane publishes in Kubernetes, the way istioctl does:
//! the mesh config (`istio[-<rev>]` ConfigMap, key `mesh`), the cluster ID
//! (`istio-sidecar-injector[-<rev>]` ConfigMap, `values` → `global.multiCluster.clusterName`)
//! and the root certificate (`istio-ca-root-cert` ConfigMap, key `root-cert.pem`).

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client};

use crate::istio::control_plane::{
    ISTIOD_CONTAINER, cluster_id_from_env, default_tag_webhook_name, effective_revision,
    istiod_deployment_name,
};

use super::KubeError;

/// Name of a revisioned control-plane object: `base` or `base-<rev>`.
pub fn revisioned(base: &str, revision: Option<&str>) -> String {
    match revision.filter(|r| !r.is_empty() && *r != "default") {
        Some(rev) => format!("{base}-{rev}"),
        None => base.to_string(),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshFacts {
    /// The `mesh` key of the mesh ConfigMap, as YAML text.
    pub mesh_config: String,
    pub trust_domain: String,
    /// None when the injector ConfigMap or its clusterName is absent.
    pub cluster_id: Option<String>,
    /// `global.network` of the injector values, when set.
    pub network: Option<String>,
    pub root_cert: String,
}

pub async fn read_mesh_facts(
    client: &Client,
    istio_namespace: &str,
    revision: Option<&str>,
) -> Result<MeshFacts, KubeError> {
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), istio_namespace);
    let mesh_name = revisioned("istio", revision);
    let mesh_config = config_map_key(&config_maps, &mesh_name, "mesh")
        .await?
        .ok_or_else(|| missing(istio_namespace, &mesh_name, "mesh"))?;
    let injector_name = revisioned("istio-sidecar-injector", revision);
    let injector_values = config_map_key(&config_maps, &injector_name, "values").await?;
    let root_cert = config_map_key(&config_maps, "istio-ca-root-cert", "root-cert.pem")
        .await?
        .ok_or_else(|| missing(istio_namespace, "istio-ca-root-cert", "root-cert.pem"))?;
    Ok(MeshFacts {
        trust_domain: trust_domain(&mesh_config),
        cluster_id: injector_values
            .as_deref()
            .and_then(|v| injector_value(v, &["global", "multiCluster", "clusterName"])),
        network: injector_values
            .as_deref()
            .and_then(|v| injector_value(v, &["global", "network"])),
        mesh_config,
        root_cert,
    })
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

fn missing(namespace: &str, name: &str, key: &str) -> KubeError {
    KubeError::InvalidSetting {
        attribute: "istio_namespace",
        message: format!(
            "ConfigMap {namespace}/{name} with key {key:?} was not found: is Istio installed in {namespace:?} (and with this revision)? Set the provider's `istio_namespace`/`revision` to match the installation"
        ),
    }
}

/// One key of a ConfigMap; `None` when the ConfigMap or the key is absent.
pub async fn config_map_key(
    api: &Api<ConfigMap>,
    name: &str,
    key: &str,
) -> Result<Option<String>, KubeError> {
    let Some(config_map) = api.get_opt(name).await? else {
        return Ok(None);
    };
    Ok(config_map.data.and_then(|mut data| data.remove(key)))
}

/// `trustDomain` of the mesh config; Istio's default is `cluster.local`.
pub fn trust_domain(mesh_config: &str) -> String {
    serde_yaml_ng::from_str::<serde_json::Value>(mesh_config)
        .ok()
        .and_then(|mesh| {
            mesh.get("trustDomain")
                .and_then(|t| t.as_str())
                .map(str::to_string)
        })
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "cluster.local".to_string())
}

/// A string inside the injector's `values` JSON document.
pub fn injector_value(values: &str, path: &[&str]) -> Option<String> {
    let mut node: serde_json::Value = serde_json::from_str(values).ok()?;
    for step in path {
        node = node.get_mut(*step)?.take();
    }
    node.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisioned_names() {
        assert_eq!(revisioned("istio", None), "istio");
        assert_eq!(revisioned("istio", Some("default")), "istio");
        assert_eq!(revisioned("istio", Some("canary")), "istio-canary");
    }

    #[test]
    fn trust_domain_defaults_to_cluster_local() {
        assert_eq!(trust_domain("defaultConfig: {}\n"), "cluster.local");
        assert_eq!(trust_domain("trustDomain: example.org\n"), "example.org");
    }

    #[test]
    fn cluster_name_is_read_from_injector_values() {
        let values = r#"{"global":{"multiCluster":{"clusterName":"cluster1"},"network":"net1"}}"#;
        assert_eq!(
            injector_value(values, &["global", "multiCluster", "clusterName"]).as_deref(),
            Some("cluster1")
        );
        assert_eq!(
            injector_value(values, &["global", "network"]).as_deref(),
            Some("net1")
        );
        assert_eq!(
            injector_value(r#"{"global":{}}"#, &["global", "network"]),
            None
        );
    }
}
