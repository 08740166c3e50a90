//! Names and published facts of an Istio installation: which ConfigMaps a revision uses, the
//! host name of its istiod, and what its mesh config and injector values say. istioctl reads
//! them the same way in `istioctl/pkg/workload/workload.go` (`isRevisioned`, `IstiodHost`,
//! `IstiodAddr`, `extractClusterIDFromInjectionConfig`).

use serde_json::Value;

use super::{ISTIOD_TLS_PORT, IstioError};

/// Istio's default trust domain (`pkg/config/mesh/mesh.go`, `DefaultMeshConfig`).
pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";

/// `""` and `"default"` both mean the unrevisioned control plane (`isRevisioned`).
pub fn is_revisioned(revision: &str) -> bool {
    !revision.is_empty() && revision != "default"
}

/// `istiod[-<rev>].<ns>.svc` — the name in `hosts` and in istiod's certificate.
pub fn istiod_host(istio_namespace: &str, revision: &str) -> String {
    format!(
        "{}.{istio_namespace}.svc",
        revisioned_name("istiod", revision)
    )
}

/// `istiod[-<rev>].<ns>.svc:15012`.
pub fn istiod_addr(istio_namespace: &str, revision: &str) -> String {
    format!(
        "{}:{ISTIOD_TLS_PORT}",
        istiod_host(istio_namespace, revision)
    )
}

/// `istio` or `istio-<rev>`: the ConfigMap whose `mesh` key feeds mesh.yaml (`createMeshConfig`).
pub fn mesh_configmap_name(revision: &str) -> String {
    revisioned_name("istio", revision)
}

/// `istio-sidecar-injector[-<rev>]`: where istioctl finds the default cluster ID.
pub fn injector_configmap_name(revision: &str) -> String {
    revisioned_name("istio-sidecar-injector", revision)
}

fn revisioned_name(base: &str, revision: &str) -> String {
    if is_revisioned(revision) {
        format!("{base}-{revision}")
    } else {
        base.to_string()
    }
}

/// `trustDomain` of a mesh config (the `mesh` key), or Istio's default when it sets none.
pub fn trust_domain(mesh_config: &str) -> String {
    serde_yaml_ng::from_str::<Value>(mesh_config)
        .ok()
        .and_then(|mesh| {
            mesh.get("trustDomain")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| DEFAULT_TRUST_DOMAIN.to_string())
}

/// What the injector ConfigMap's `values` JSON says about the cluster; each is `None` when
/// absent or empty (istioctl then leaves the cluster ID empty).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InjectorValues {
    /// `global.multiCluster.clusterName`, istioctl's default `--clusterID`.
    pub cluster_id: Option<String>,
    /// `global.network`.
    pub network: Option<String>,
}

/// Parses the `values` key of ConfigMap [`injector_configmap_name`]`(revision)`.
pub fn injector_values(values_json: &str, revision: &str) -> Result<InjectorValues, IstioError> {
    let values: Value =
        serde_json::from_str(values_json).map_err(|e| IstioError::InjectorValues {
            configmap: injector_configmap_name(revision),
            message: e.to_string(),
        })?;
    let text = |pointer: &str| {
        values
            .pointer(pointer)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Ok(InjectorValues {
        cluster_id: text("/global/multiCluster/clusterName"),
        network: text("/global/network"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_revision() {
        assert!(!is_revisioned(""));
        assert!(!is_revisioned("default"));
        assert!(is_revisioned("canary"));
        assert_eq!(istiod_host("istio-system", ""), "istiod.istio-system.svc");
        assert_eq!(
            istiod_host("istio-system", "default"),
            "istiod.istio-system.svc"
        );
        assert_eq!(
            istiod_addr("istio-system", "rev-1"),
            "istiod-rev-1.istio-system.svc:15012"
        );
        assert_eq!(mesh_configmap_name("canary"), "istio-canary");
        assert_eq!(mesh_configmap_name("default"), "istio");
        assert_eq!(injector_configmap_name(""), "istio-sidecar-injector");
        assert_eq!(
            injector_configmap_name("canary"),
            "istio-sidecar-injector-canary"
        );
    }

    #[test]
    fn cluster_id_and_network_come_from_the_global_values() {
        let values = r#"{"global":{"multiCluster":{"clusterName":"east"},"network":"n1"}}"#;
        assert_eq!(
            injector_values(values, "").unwrap(),
            InjectorValues {
                cluster_id: Some("east".into()),
                network: Some("n1".into())
            }
        );
        assert_eq!(
            injector_values(r#"{"global":{"network":""}}"#, "").unwrap(),
            InjectorValues::default()
        );
        let err = injector_values("not json", "canary")
            .unwrap_err()
            .to_string();
        assert!(err.contains("istio-sidecar-injector-canary"), "{err}");
    }

    #[test]
    fn trust_domain_defaults_to_cluster_local() {
        assert_eq!(trust_domain("defaultConfig: {}\n"), "cluster.local");
        assert_eq!(trust_domain("trustDomain: example.org\n"), "example.org");
    }
}
