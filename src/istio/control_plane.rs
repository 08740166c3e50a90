//! Facts about an installed control plane that the provider derives from what the cluster
//! shows: which cluster ID istiod runs with, and which revision an unset `revision` means.

use std::collections::BTreeMap;

use super::install::{injector_values, is_revisioned};
use super::{DEFAULT_ISTIO_NAMESPACE, IstioError};

/// istiod's cluster ID when nothing sets one: `constants.DefaultClusterName` in
/// `pkg/config/constants/constants.go`, also the chart default
/// (`manifests/charts/istio-control/istio-discovery/templates/deployment.yaml`:
/// `CLUSTER_ID: {{ .Values.global.multiCluster.clusterName | default "Kubernetes" }}`).
pub const DEFAULT_CLUSTER_ID: &str = "Kubernetes";
/// The env var of istiod's `discovery` container that holds its cluster ID.
pub const CLUSTER_ID_ENV: &str = "CLUSTER_ID";
/// Name of istiod's container in the chart's Deployment.
pub const ISTIOD_CONTAINER: &str = "discovery";
/// Label that names the revision a revision tag points at (`label.IoIstioRev`).
pub const REVISION_LABEL: &str = "istio.io/rev";
/// Revision tags are MutatingWebhookConfigurations `istio-revision-tag-<tag>`.
const REVISION_TAG_WEBHOOK_PREFIX: &str = "istio-revision-tag-";
/// The tag istioctl follows when no revision is given.
const DEFAULT_TAG: &str = "default";

/// Where the cluster ID reported by `data.istio_mesh` came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterIdSource {
    /// `CLUSTER_ID` of the istiod Deployment: what istiod really runs with.
    IstiodDeployment,
    /// `global.multiCluster.clusterName` of the injector values (the Deployment was not readable).
    InjectorValues,
    /// Neither is set: istiod's built-in default `Kubernetes`.
    Default,
}

impl ClusterIdSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterIdSource::IstiodDeployment => "istiod_deployment",
            ClusterIdSource::InjectorValues => "injector_values",
            ClusterIdSource::Default => "default",
        }
    }
}

/// The cluster ID istiod runs with: its Deployment's `CLUSTER_ID` when readable and literal,
/// else the injector's clusterName, else `Kubernetes`.
pub fn istiod_cluster_id(
    deployment_cluster_id: Option<&str>,
    injector_cluster_name: Option<&str>,
) -> (String, ClusterIdSource) {
    if let Some(id) = deployment_cluster_id.filter(|id| !id.is_empty()) {
        return (id.to_string(), ClusterIdSource::IstiodDeployment);
    }
    if let Some(name) = injector_cluster_name.filter(|name| !name.is_empty()) {
        return (name.to_string(), ClusterIdSource::InjectorValues);
    }
    (DEFAULT_CLUSTER_ID.to_string(), ClusterIdSource::Default)
}

/// `ISTIO_META_CLUSTER_ID` of a VM when the user gives none, as `istioctl x workload entry
/// configure` picks it (`istioctl/pkg/workload/workload.go`: the injector's clusterName
/// `if clusterName != ""`, else the empty `--clusterID` default). Empty is fine: istiod then
/// takes the VM for a proxy of its own cluster.
pub fn vm_cluster_id(values_json: Option<&str>, revision: &str) -> Result<String, IstioError> {
    Ok(values_json
        .map(|values| injector_values(values, revision))
        .transpose()?
        .and_then(|values| values.cluster_id)
        .unwrap_or_default())
}

/// The literal value of `CLUSTER_ID` in the env of istiod's `discovery` container; `None` when
/// absent or taken from elsewhere (`valueFrom`).
pub fn cluster_id_from_env(env: &[(String, Option<String>)]) -> Option<String> {
    env.iter()
        .find(|(name, _)| name == CLUSTER_ID_ENV)
        .and_then(|(_, value)| value.clone())
        .filter(|v| !v.is_empty())
}

/// `istiod` or `istiod-<rev>`: the Deployment (and Service) of a revision.
pub fn istiod_deployment_name(revision: &str) -> String {
    if is_revisioned(revision) {
        format!("istiod-{revision}")
    } else {
        "istiod".to_string()
    }
}

/// The MutatingWebhookConfiguration of the `default` revision tag, named as istioctl looks it
/// up (`pkg/revisions/default_watcher.go`): `istio-revision-tag-default`, with `-<namespace>`
/// appended when Istio is not installed in `istio-system`.
pub fn default_tag_webhook_name(istio_namespace: &str) -> String {
    let name = format!("{REVISION_TAG_WEBHOOK_PREFIX}{DEFAULT_TAG}");
    if istio_namespace.is_empty() || istio_namespace == DEFAULT_ISTIO_NAMESPACE {
        name
    } else {
        format!("{name}-{istio_namespace}")
    }
}

/// The revision an unset `revision` means, as istioctl 1.28+ resolves it
/// (`RevisionOrDefault` in `istioctl/pkg/cli/context.go`): the explicit one; else the
/// `istio.io/rev` label of the default tag's webhook; else `default` (an unrevisioned install).
pub fn effective_revision(
    explicit: Option<&str>,
    default_tag_labels: Option<&BTreeMap<String, String>>,
) -> String {
    if let Some(revision) = explicit.filter(|r| !r.is_empty()) {
        return revision.to_string();
    }
    default_tag_labels
        .and_then(|labels| labels.get(REVISION_LABEL))
        .filter(|r| !r.is_empty())
        .cloned()
        .unwrap_or_else(|| DEFAULT_TAG.to_string())
}

/// istiod's switch for auto-registration (`features.WorkloadEntryAutoRegistration` in
/// `pilot/pkg/features/pilot.go`, default true).
pub const AUTOREGISTRATION_ENV: &str = "PILOT_ENABLE_WORKLOAD_ENTRY_AUTOREGISTRATION";
/// istiod's plaintext XDS port: no certificate, no token, so no auto-registration.
pub const PLAINTEXT_XDS_PORT: u16 = 15010;

/// Whether istiod auto-registers VMs, from the value of [`AUTOREGISTRATION_ENV`] in its
/// Deployment (absent or unparsable: the default, true).
pub fn autoregistration_enabled(env_value: Option<&str>) -> bool {
    env_value
        .and_then(super::health::go_parse_bool)
        .unwrap_or(true)
}

/// A discovery address on istiod's plaintext port: the agent would connect without its
/// token, and istiod only auto-registers authenticated proxies.
pub fn is_plaintext_discovery(address: &str) -> bool {
    address
        .rsplit_once(':')
        .is_some_and(|(_, port)| port == PLAINTEXT_XDS_PORT.to_string())
}

/// What to check when a VM did not auto-register: every step between the bundle and the
/// entry istiod creates.
pub fn autoregistration_checklist(istio_namespace: &str, group: &str, namespace: &str) -> String {
    format!(
        "Check: (1) the VM runs the Istio agent through istio-start.sh with this bundle (cluster.env has ISTIO_META_AUTO_REGISTER_GROUP={group}); (2) the VM reaches istiod on port {port} at the address in `hosts` or discoveryAddress (the east-west gateway Service in {istio_namespace} must expose {port}); (3) the agent got a certificate (its log shows no token or CA error; the token is valid at first boot only until it expires); (4) istiod runs with {env} not false; (5) WorkloadGroup {namespace}/{group} and its ServiceAccount exist.",
        port = super::ISTIOD_TLS_PORT,
        env = AUTOREGISTRATION_ENV,
    )
}

/// istiod's env var of extra names for its serving certificate, comma-separated
/// (`features.IstiodServiceCustomHost` in `pilot/pkg/features/pilot.go`); the install sets it
/// through `values.pilot.env.ISTIOD_CUSTOM_HOST`.
pub const ISTIOD_CUSTOM_HOST_ENV: &str = "ISTIOD_CUSTOM_HOST";
/// istiod's switch for its CA (`features.EnableCAServer`, default true).
const ENABLE_CA_SERVER_ENV: &str = "ENABLE_CA_SERVER";
/// Service names istiod always puts on its serving certificate, as `<name>.<namespace>.svc`
/// (`getDNSNames` in `pilot/pkg/bootstrap/server.go`).
const ISTIOD_KNOWN_HOSTS: [&str; 3] = ["istiod", "istiod-remote", "istio-pilot"];

/// The names on the serving certificate istiod issues itself (`getDNSNames` in
/// `pilot/pkg/bootstrap/server.go`, used for both its own CA and a Kubernetes signer,
/// `pilot/pkg/bootstrap/certcontroller.go`): every name of `ISTIOD_CUSTOM_HOST`, and
/// `istiod`, `istiod-remote`, `istio-pilot` and, for a revision, `istiod-<revision>`, each as
/// `<name>.<namespace>.svc`. `None` where the env does not tell: a value that is not literal,
/// or `ENABLE_CA_SERVER=false`, where istiod issues no certificate and serves one of the
/// user's (e.g. cert-manager's istio-csr).
pub fn istiod_certificate_names(
    env: &[(String, Option<String>)],
    istio_namespace: &str,
    revision: &str,
) -> Option<Vec<String>> {
    let value = |name: &str| -> Option<Option<&str>> {
        match env.iter().find(|(n, _)| n == name) {
            None => Some(None),
            Some((_, Some(v))) => Some(Some(v.as_str())),
            Some((_, None)) => None,
        }
    };
    let ca_server = value(ENABLE_CA_SERVER_ENV)?;
    if ca_server.and_then(super::health::go_parse_bool) == Some(false) {
        return None;
    }
    let mut names: Vec<String> = value(ISTIOD_CUSTOM_HOST_ENV)?
        .unwrap_or_default()
        .split(',')
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect();
    let mut hosts = ISTIOD_KNOWN_HOSTS.map(str::to_string).to_vec();
    if is_revisioned(revision) {
        hosts.push(format!("istiod-{revision}"));
    }
    names.extend(
        hosts
            .iter()
            .map(|host| format!("{host}.{istio_namespace}.svc")),
    );
    names.sort();
    names.dedup();
    Some(names)
}

/// Why a VM that gets its certificate from istiod at `host` never gets one, or `None` when
/// istiod's certificate carries `host`. The agent checks istiod's certificate against the
/// host it dials for its certificate (`CA_ADDR`, always set by `istio-start.sh`;
/// `pilot/cmd/pilot-agent/options/security.go`, `pilot/pkg/grpc/tls.go`). `names` are the
/// certificate's names ([`istiod_certificate_names`]).
pub fn certificate_name_problem(host: &str, names: &[String]) -> Option<String> {
    let host = host.trim_end_matches('.');
    if names.iter().any(|name| name.eq_ignore_ascii_case(host)) {
        return None;
    }
    Some(format!(
        "istiod's serving certificate carries {}, not {host}. The VM's agent dials {host} for its workload certificate and checks istiod's certificate against that name, so it would never get one. Add the name to istiod's certificate: install istiod with `values.pilot.env.{ISTIOD_CUSTOM_HOST_ENV}` set to {host} (several names are comma-separated), then restart istiod",
        names.join(", ")
    ))
}

/// `--ingressService` as istioctl reads it (`createHosts` in `istioctl/pkg/workload/workload.go`):
/// `<service>` in the Istio namespace, or `<service>.<namespace>`.
pub fn ingress_service_location(value: &str, istio_namespace: &str) -> (String, String) {
    match value.split_once('.') {
        Some((service, namespace)) if !namespace.contains('.') => {
            (service.to_string(), namespace.to_string())
        }
        _ => (value.to_string(), istio_namespace.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    /// `getDNSNames` in `pilot/pkg/bootstrap/server.go`.
    #[test]
    fn istiod_certificate_names_follow_istiod() {
        let names = istiod_certificate_names(&env(&[]), "istio-system", "default").unwrap();
        assert_eq!(
            names,
            [
                "istio-pilot.istio-system.svc",
                "istiod-remote.istio-system.svc",
                "istiod.istio-system.svc"
            ]
        );
        let names = istiod_certificate_names(
            &env(&[(ISTIOD_CUSTOM_HOST_ENV, Some("gw.example.com,10.0.0.9"))]),
            "mesh",
            "canary",
        )
        .unwrap();
        for name in [
            "gw.example.com",
            "10.0.0.9",
            "istiod-canary.mesh.svc",
            "istiod.mesh.svc",
        ] {
            assert!(names.contains(&name.to_string()), "{name} in {names:?}");
        }
        assert_eq!(
            istiod_certificate_names(&env(&[(ISTIOD_CUSTOM_HOST_ENV, None)]), "istio-system", ""),
            None,
            "not literal: unknown"
        );
        assert_eq!(
            istiod_certificate_names(
                &env(&[("ENABLE_CA_SERVER", Some("false"))]),
                "istio-system",
                ""
            ),
            None,
            "istiod serves the user's certificate"
        );
    }

    #[test]
    fn a_host_missing_from_istiods_certificate_says_to_set_the_custom_host() {
        let names = istiod_certificate_names(&env(&[]), "istio-system", "").unwrap();
        assert_eq!(
            certificate_name_problem("istiod.istio-system.svc", &names),
            None
        );
        let problem = certificate_name_problem("gw.vm.example", &names).unwrap();
        for needle in [
            "not gw.vm.example",
            "values.pilot.env.ISTIOD_CUSTOM_HOST",
            "istiod.istio-system.svc",
        ] {
            assert!(problem.contains(needle), "{needle} in {problem}");
        }
        let names = istiod_certificate_names(
            &env(&[(ISTIOD_CUSTOM_HOST_ENV, Some("GW.vm.example"))]),
            "istio-system",
            "",
        )
        .unwrap();
        assert_eq!(certificate_name_problem("gw.vm.example.", &names), None);
    }

    #[test]
    fn istiod_cluster_id_prefers_the_deployment_then_the_injector_then_kubernetes() {
        assert_eq!(
            istiod_cluster_id(Some("east"), Some("west")),
            ("east".into(), ClusterIdSource::IstiodDeployment)
        );
        assert_eq!(
            istiod_cluster_id(None, Some("west")),
            ("west".into(), ClusterIdSource::InjectorValues)
        );
        assert_eq!(
            istiod_cluster_id(Some(""), Some("")),
            ("Kubernetes".into(), ClusterIdSource::Default)
        );
        assert_eq!(
            istiod_cluster_id(None, None),
            ("Kubernetes".into(), ClusterIdSource::Default)
        );
    }

    #[test]
    fn an_empty_cluster_name_leaves_the_vm_cluster_id_empty_like_istioctl() {
        let default_install = r#"{"global":{"multiCluster":{"clusterName":""},"network":""}}"#;
        assert_eq!(vm_cluster_id(Some(default_install), "").unwrap(), "");
        assert_eq!(vm_cluster_id(None, "").unwrap(), "");
        let named = r#"{"global":{"multiCluster":{"clusterName":"cluster1"}}}"#;
        assert_eq!(vm_cluster_id(Some(named), "").unwrap(), "cluster1");
        assert!(vm_cluster_id(Some("not json"), "canary").is_err());
    }

    #[test]
    fn cluster_id_env_takes_only_a_literal_value() {
        let env = |pairs: &[(&str, Option<&str>)]| -> Vec<(String, Option<String>)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                .collect()
        };
        assert_eq!(
            cluster_id_from_env(&env(&[
                ("A", Some("x")),
                ("CLUSTER_ID", Some("Kubernetes"))
            ])),
            Some("Kubernetes".into())
        );
        assert_eq!(cluster_id_from_env(&env(&[("CLUSTER_ID", None)])), None);
        assert_eq!(cluster_id_from_env(&env(&[])), None);
    }

    #[test]
    fn unset_revision_follows_the_default_tag() {
        let tag = BTreeMap::from([(REVISION_LABEL.to_string(), "canary".to_string())]);
        assert_eq!(effective_revision(None, Some(&tag)), "canary");
        assert_eq!(effective_revision(Some(""), Some(&tag)), "canary");
        assert_eq!(effective_revision(Some("stable"), Some(&tag)), "stable");
        assert_eq!(effective_revision(None, None), "default");
        assert_eq!(effective_revision(None, Some(&BTreeMap::new())), "default");
    }

    #[test]
    fn autoregistration_pre_checks() {
        assert!(autoregistration_enabled(None));
        assert!(autoregistration_enabled(Some("true")));
        assert!(
            autoregistration_enabled(Some("bogus")),
            "unparsable keeps istiod's default"
        );
        assert!(!autoregistration_enabled(Some("false")));
        assert!(!autoregistration_enabled(Some("0")));
        assert!(is_plaintext_discovery("istiod.istio-system.svc:15010"));
        assert!(!is_plaintext_discovery("istiod.istio-system.svc:15012"));
        assert!(!is_plaintext_discovery("istiod.istio-system.svc"));
        let list = autoregistration_checklist("istio-system", "product-vm", "shop");
        for needle in [
            "ISTIO_META_AUTO_REGISTER_GROUP=product-vm",
            "15012",
            AUTOREGISTRATION_ENV,
            "shop/product-vm",
        ] {
            assert!(list.contains(needle), "{needle} in {list}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(
            default_tag_webhook_name("istio-system"),
            "istio-revision-tag-default"
        );
        assert_eq!(
            default_tag_webhook_name("mesh-cp"),
            "istio-revision-tag-default-mesh-cp"
        );
        assert_eq!(istiod_deployment_name(""), "istiod");
        assert_eq!(istiod_deployment_name("default"), "istiod");
        assert_eq!(istiod_deployment_name("canary"), "istiod-canary");
    }
}
