//! Typed `WorkloadGroup` and `WorkloadEntry` (`networking.istio.io`), field names exactly as in
//! Istio's CRDs (`manifests/charts/base/files/crd-all.gen.yaml`, `acceptance-tests/tools/istio/go.mod`).
//!
//! Every optional field is skipped when unset or empty, so a server-side apply built from these
//! types claims only the fields we actually set. Numbers follow proto3: Istio treats 0 as unset,
//! but we keep `Option` so that what the user wrote is what we send.
//!
//! The spec is the same in `v1`, `v1beta1` and `v1alpha3` (one proto, `acceptance-tests/tools/istio/go.mod`). The derived types use
//! `v1`; for a cluster that does not serve `v1`, address the same objects through
//! [`IstioApiVersion::api_resource`] with a `DynamicObject` ([`to_dynamic`] / [`from_dynamic`]).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use kube::core::{ApiResource, DynamicObject};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{HEALTHY_CONDITION, IstioError, NETWORKING_GROUP};

/// `WorkloadGroup.spec`: the template every VM of one service is registered from.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "networking.istio.io",
    version = "v1",
    kind = "WorkloadGroup",
    plural = "workloadgroups",
    shortname = "wg",
    namespaced,
    status = "IstioStatus",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadGroupSpec {
    /// Labels and annotations copied onto every WorkloadEntry of the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<WorkloadGroupObjectMeta>,
    /// WorkloadEntry fields shared by every member (required by the CRD, so always sent).
    #[serde(default)]
    pub template: WorkloadEntrySpec,
    /// Readiness probe the VM's agent runs; it travels to the VM only through mesh.yaml (`istioctl/pkg/workload/workload.go` (`createMeshConfig`)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ReadinessProbe>,
}

impl WorkloadGroup {
    /// The object's `kind`.
    pub const KIND: &'static str = "WorkloadGroup";
}

/// `WorkloadGroup.spec.metadata`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadGroupObjectMeta {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// `WorkloadEntry.spec`, also used as `WorkloadGroup.spec.template`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "networking.istio.io",
    version = "v1",
    kind = "WorkloadEntry",
    plural = "workloadentries",
    shortname = "we",
    namespaced,
    status = "IstioStatus",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadEntrySpec {
    /// IP or DNS name of the endpoint, without port.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// Port name → port number.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ports: BTreeMap<String, u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Network (L3 domain) of the endpoint; see `samples/multicluster/` and the `--network`/`--externalIP` handling in `istioctl/pkg/workload/workload.go`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub network: String,
    /// `region/zone/subzone`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub locality: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_account: String,
}

impl WorkloadEntry {
    /// The object's `kind`.
    pub const KIND: &'static str = "WorkloadEntry";
}

/// `WorkloadGroup.spec.probe` (Istio's `ReadinessProbe`). The CRD allows at most one handler.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessProbe {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpHealthCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpHealthCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecHealthCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcHealthCheck>,
}

impl ReadinessProbe {
    /// How many of `httpGet`, `tcpSocket`, `exec`, `grpc` are set; the CRD accepts 0 or 1.
    pub fn handler_count(&self) -> usize {
        [
            self.http_get.is_some(),
            self.tcp_socket.is_some(),
            self.exec.is_some(),
            self.grpc.is_some(),
        ]
        .into_iter()
        .filter(|set| *set)
        .count()
    }
}

/// `probe.httpGet`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpHealthCheck {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// Required by the CRD.
    pub port: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// `HTTP` or `HTTPS` (the CRD also accepts empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scheme: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_headers: Vec<HttpHeader>,
}

/// One `probe.httpGet.httpHeaders` item.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct HttpHeader {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// `probe.tcpSocket`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct TcpHealthCheck {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// Required by the CRD.
    pub port: u32,
}

/// `probe.exec`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ExecHealthCheck {
    /// Required by the CRD (sent even when empty so the server reports the error).
    #[serde(default)]
    pub command: Vec<String>,
}

/// `probe.grpc`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct GrpcHealthCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service: String,
}

/// `status` of both kinds (Istio's `IstioStatus`). The CRD preserves unknown fields here.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IstioStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<IstioCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<IntOrString>,
    /// Analyzer messages; kept untyped because nothing here interprets them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_messages: Vec<serde_json::Value>,
}

/// One `status.conditions` item. istiod writes `type: Healthy`, `status: "True"|"False"`, a
/// `message` only when False, no `reason`, and both times set to now (`pilot/pkg/serviceregistry/serviceentry/conversion.go`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IstioCondition {
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_time: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<IntOrString>,
}

impl IstioCondition {
    /// `status: "True"`, the exact string istiod writes.
    pub fn is_true(&self) -> bool {
        self.status == "True"
    }
}

/// The entry's `Healthy` condition, if istiod has written one. Absent means unknown — and, with
/// `health-checks-enabled`, unhealthy for traffic (`pilot/pkg/serviceregistry/serviceentry/conversion.go`).
pub fn healthy_condition(entry: &WorkloadEntry) -> Option<IstioCondition> {
    entry
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == HEALTHY_CONDITION)
        .cloned()
}

/// A served version of `networking.istio.io` that carries WorkloadGroup/WorkloadEntry.
/// All three versions are served from 1.24 to HEAD (`acceptance-tests/tools/istio/go.mod`); we use `v1` and fall back to `v1beta1`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum IstioApiVersion {
    #[default]
    V1,
    V1beta1,
}

impl IstioApiVersion {
    /// Preference order for discovery: the first one the cluster serves wins.
    pub const PREFERENCE: [IstioApiVersion; 2] = [IstioApiVersion::V1, IstioApiVersion::V1beta1];

    /// `v1` or `v1beta1`.
    pub fn version(self) -> &'static str {
        match self {
            IstioApiVersion::V1 => "v1",
            IstioApiVersion::V1beta1 => "v1beta1",
        }
    }

    /// `networking.istio.io/v1` or `networking.istio.io/v1beta1`.
    pub fn api_version(self) -> String {
        format!("{NETWORKING_GROUP}/{}", self.version())
    }

    /// Parses `v1`/`v1beta1` or the full `networking.istio.io/...` form.
    pub fn parse(s: &str) -> Option<Self> {
        let version = s
            .strip_prefix(NETWORKING_GROUP)
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(s);
        Self::PREFERENCE
            .into_iter()
            .find(|v| v.version() == version)
    }

    /// `ApiResource` of `kind` (`WorkloadGroup` or `WorkloadEntry`, or any `networking.istio.io`
    /// kind with a regular plural) at this version, for `Api::<DynamicObject>::namespaced_with`.
    pub fn api_resource(self, kind: &str) -> ApiResource {
        ApiResource {
            group: NETWORKING_GROUP.to_string(),
            version: self.version().to_string(),
            api_version: self.api_version(),
            kind: kind.to_string(),
            plural: plural_of(kind),
        }
    }
}

/// Plural resource name of an Istio networking kind ("WorkloadEntry" → "workloadentries").
fn plural_of(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    match lower.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{lower}s"),
    }
}

/// Re-expresses a typed object at `version` so it can go through a `DynamicObject` API.
/// Lossless because the spec is identical in every served version (`acceptance-tests/tools/istio/go.mod`).
pub fn to_dynamic<K>(obj: &K, version: IstioApiVersion) -> Result<DynamicObject, IstioError>
where
    K: kube::Resource<DynamicType = ()> + Serialize,
{
    let kind: &'static str = static_kind::<K>();
    let wrap = |source| IstioError::Dynamic {
        kind,
        api_version: version.api_version(),
        source,
    };
    let mut value = serde_json::to_value(obj).map_err(wrap)?;
    value["apiVersion"] = serde_json::Value::String(version.api_version());
    value["kind"] = serde_json::Value::String(kind.to_string());
    serde_json::from_value(value).map_err(wrap)
}

/// Reads a `DynamicObject` of any served version back into the typed object.
pub fn from_dynamic<K>(obj: DynamicObject) -> Result<K, IstioError>
where
    K: kube::Resource<DynamicType = ()> + DeserializeOwned,
{
    let kind: &'static str = static_kind::<K>();
    let api_version = obj
        .types
        .as_ref()
        .map(|t| t.api_version.clone())
        .unwrap_or_default();
    let wrap = |source| IstioError::Dynamic {
        kind,
        api_version: api_version.clone(),
        source,
    };
    let value = serde_json::to_value(obj).map_err(wrap)?;
    serde_json::from_value(value).map_err(wrap)
}

/// `K::kind` as a `'static str` for error messages (our kinds are compile-time constants).
fn static_kind<K: kube::Resource<DynamicType = ()>>() -> &'static str {
    match K::kind(&()).as_ref() {
        WorkloadGroup::KIND => WorkloadGroup::KIND,
        WorkloadEntry::KIND => WorkloadEntry::KIND,
        _ => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;
    use serde_json::json;

    #[test]
    fn workload_group_serializes_with_istio_field_names_and_skips_unset_fields() {
        let mut wg = WorkloadGroup::new(
            "product-vm",
            WorkloadGroupSpec {
                metadata: Some(WorkloadGroupObjectMeta {
                    labels: BTreeMap::from([("app".into(), "product".into())]),
                    annotations: BTreeMap::new(),
                }),
                template: WorkloadEntrySpec {
                    ports: BTreeMap::from([("http".into(), 8080)]),
                    service_account: "default".into(),
                    weight: Some(3),
                    ..Default::default()
                },
                probe: Some(ReadinessProbe {
                    initial_delay_seconds: Some(5),
                    http_get: Some(HttpHealthCheck {
                        port: 8080,
                        http_headers: vec![HttpHeader {
                            name: "X-A".into(),
                            value: "b".into(),
                        }],
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            },
        );
        wg.metadata.namespace = Some("ns".into());
        let v = serde_json::to_value(&wg).unwrap();
        assert_eq!(v["apiVersion"], "networking.istio.io/v1");
        assert_eq!(v["kind"], "WorkloadGroup");
        assert_eq!(
            v["spec"],
            json!({
                "metadata": {"labels": {"app": "product"}},
                "template": {"ports": {"http": 8080}, "serviceAccount": "default", "weight": 3},
                "probe": {
                    "initialDelaySeconds": 5,
                    "httpGet": {"port": 8080, "httpHeaders": [{"name": "X-A", "value": "b"}]}
                }
            })
        );
        assert!(
            v.get("status").is_none(),
            "status must not be sent by apply"
        );
    }

    #[test]
    fn empty_template_is_still_sent_because_the_crd_requires_it() {
        let wg = WorkloadGroup::new("g", WorkloadGroupSpec::default());
        let v = serde_json::to_value(&wg).unwrap();
        assert_eq!(v["spec"], json!({"template": {}}));
    }

    #[test]
    fn every_probe_field_round_trips_with_camel_case_names() {
        let wire = json!({
            "initialDelaySeconds": 1, "timeoutSeconds": 2, "periodSeconds": 3,
            "successThreshold": 4, "failureThreshold": 5,
            "httpGet": {"path": "/h", "port": 80, "host": "h", "scheme": "HTTPS",
                        "httpHeaders": [{"name": "n", "value": "v"}]},
            "tcpSocket": {"host": "t", "port": 81},
            "exec": {"command": ["a", "b"]},
            "grpc": {"port": 82, "service": "s"}
        });
        let probe: ReadinessProbe = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(probe.failure_threshold, Some(5));
        assert_eq!(probe.http_get.as_ref().unwrap().scheme, "HTTPS");
        assert_eq!(probe.grpc.as_ref().unwrap().port, Some(82));
        assert_eq!(probe.handler_count(), 4);
        assert_eq!(serde_json::to_value(&probe).unwrap(), wire);
    }

    #[test]
    fn workload_entry_spec_round_trips_every_field() {
        let wire = json!({
            "address": "10.0.0.1", "ports": {"http": 8080}, "labels": {"app": "a"},
            "network": "n1", "locality": "r/z/s", "weight": 7, "serviceAccount": "sa"
        });
        let spec: WorkloadEntrySpec = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(spec.service_account, "sa");
        assert_eq!(serde_json::to_value(&spec).unwrap(), wire);
    }

    fn entry_with_conditions(conditions: serde_json::Value) -> WorkloadEntry {
        serde_json::from_value(json!({
            "apiVersion": "networking.istio.io/v1", "kind": "WorkloadEntry",
            "metadata": {"name": "e", "namespace": "ns"},
            "spec": {"address": "10.0.0.1"},
            "status": {"conditions": conditions, "observedGeneration": "3", "unknownField": 1}
        }))
        .unwrap()
    }

    #[test]
    fn healthy_condition_reads_the_condition_istiod_writes() {
        let entry = entry_with_conditions(json!([
            {"type": "Other", "status": "True"},
            {"type": "Healthy", "status": "False", "message": "Get \"http://10.0.0.1:8080/\": refused",
             "lastProbeTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}
        ]));
        let c = healthy_condition(&entry).expect("condition");
        assert_eq!(c.status, "False");
        assert_eq!(
            c.message.as_deref(),
            Some("Get \"http://10.0.0.1:8080/\": refused")
        );
        assert_eq!(c.last_probe_time.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(c.reason, None);

        let entry = entry_with_conditions(json!([]));
        assert_eq!(healthy_condition(&entry), None);
    }

    #[test]
    fn api_resources_address_v1_and_v1beta1() {
        let ar = IstioApiVersion::V1beta1.api_resource("WorkloadEntry");
        assert_eq!(ar.group, "networking.istio.io");
        assert_eq!(ar.version, "v1beta1");
        assert_eq!(ar.api_version, "networking.istio.io/v1beta1");
        assert_eq!(ar.plural, "workloadentries");
        let ar = IstioApiVersion::V1.api_resource("WorkloadGroup");
        assert_eq!(ar.plural, "workloadgroups");
        // The derived types agree with our hand-made ApiResource for v1.
        assert_eq!(ApiResource::erase::<WorkloadGroup>(&()), ar);
        assert_eq!(
            ApiResource::erase::<WorkloadEntry>(&()),
            IstioApiVersion::V1.api_resource("WorkloadEntry")
        );
        assert_eq!(
            IstioApiVersion::parse("networking.istio.io/v1beta1"),
            Some(IstioApiVersion::V1beta1)
        );
        assert_eq!(IstioApiVersion::parse("v1"), Some(IstioApiVersion::V1));
        assert_eq!(IstioApiVersion::parse("v1alpha3"), None);
    }

    #[test]
    fn generated_crds_match_istios_names_and_scope() {
        use kube::CustomResourceExt;
        for (crd, plural, short) in [
            (WorkloadGroup::crd(), "workloadgroups", "wg"),
            (WorkloadEntry::crd(), "workloadentries", "we"),
        ] {
            assert_eq!(crd.spec.group, "networking.istio.io");
            assert_eq!(crd.spec.scope, "Namespaced");
            assert_eq!(crd.spec.names.plural, plural);
            assert_eq!(
                crd.spec.names.short_names.as_deref(),
                Some(&[short.to_string()][..])
            );
            let version = &crd.spec.versions[0];
            assert_eq!(version.name, "v1");
            assert!(
                version
                    .subresources
                    .as_ref()
                    .is_some_and(|s| s.status.is_some())
            );
        }
        let schema = serde_json::to_value(&WorkloadGroup::crd().spec.versions[0].schema).unwrap();
        let spec = &schema["openAPIV3Schema"]["properties"]["spec"]["properties"];
        for field in ["metadata", "template", "probe"] {
            assert!(spec.get(field).is_some(), "spec.{field} in schema");
        }
        let probe = &spec["probe"]["properties"];
        for field in [
            "initialDelaySeconds",
            "httpGet",
            "tcpSocket",
            "exec",
            "grpc",
        ] {
            assert!(probe.get(field).is_some(), "probe.{field} in schema");
        }
    }

    #[test]
    fn dynamic_round_trip_changes_only_the_api_version() {
        let mut wg = WorkloadGroup::new("g", WorkloadGroupSpec::default());
        wg.spec.template.service_account = "sa".into();
        let dynamic = to_dynamic(&wg, IstioApiVersion::V1beta1).unwrap();
        assert_eq!(
            dynamic.types.as_ref().unwrap().api_version,
            "networking.istio.io/v1beta1"
        );
        assert_eq!(dynamic.types.as_ref().unwrap().kind, "WorkloadGroup");
        assert_eq!(dynamic.data["spec"]["template"]["serviceAccount"], "sa");
        let back: WorkloadGroup = from_dynamic(dynamic).unwrap();
        assert_eq!(back, wg);
        assert_eq!(WorkloadGroup::api_version(&()), "networking.istio.io/v1");
    }
}
