//! Reads the facts an Istio control plane publishes in Kubernetes, the way istioctl does:
//! the mesh config (`istio[-<rev>]` ConfigMap, key `mesh`), the cluster ID
//! (`istio-sidecar-injector[-<rev>]` ConfigMap, `values` → `global.multiCluster.clusterName`)
//! and the root certificate (`istio-ca-root-cert` ConfigMap, key `root-cert.pem`).

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client};

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
