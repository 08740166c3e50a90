//! The VM bootstrap bundle: the five files `istioctl x workload entry configure` writes
//! (`mesh.yaml`, `cluster.env`, `root-cert.pem`, `istio-token`, `hosts`, `istioctl/pkg/workload/workload.go`), rendered
//! from data the caller has already read from the cluster.
//!
//! Where istioctl's output is deterministic we reproduce it byte for byte. Where it is not
//! (`ISTIO_INBOUND_PORTS` follows Go map order) we sort. What we add beyond istioctl, and why:
//! - `ISTIO_META_WORKLOAD_ENTRY=<name>` in manual mode, so istiod attaches the VM's health to the
//!   entry we created (`pilot/pkg/autoregistration/controller.go` (`isHealthCheckedWorkloadEntry`), Istio ≥ 1.19);
//! - `discoveryAddress` + `ISTIOD_SAN` + `CA_ADDR` instead of a hosts line when istiod is reached
//!   through a DNS name (`istioctl/pkg/workload/workload.go` (`createHosts`) "Alternative to /etc/hosts"); istioctl cannot do this (its `TODO`);
//! - `CA_ADDR` and `ISTIO_SYSTEM_NAMESPACE` wherever `istio-start.sh`'s default CA address would
//!   be wrong (see [`start_script_overrides`]);
//! - registration labels and `istio-locality` in `ISTIO_METAJSON_LABELS`, so the provider can find
//!   the auto-registered entry and istiod sets its locality (`pilot/pkg/autoregistration/controller.go` (`workloadEntryFromGroup`)).
//!
//! Two documented differences from istioctl: the mesh config's `defaultConfig` is carried over
//! as written (istioctl round-trips it through the ProxyConfig proto, which drops zero values and
//! unknown fields — the agent reads both forms the same way), and mesh.yaml never folds long lines.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::crd::{ReadinessProbe, WorkloadGroupSpec};
use super::install::{is_revisioned, istiod_addr, istiod_host, mesh_configmap_name};
use super::{IstioError, MESH_CONFIG_KEY, PROXY_CONFIG_ANNOTATION, goyaml, shell};

/// Label the agent reads its own locality from (`pilot/pkg/autoregistration/controller.go` (`workloadEntryFromGroup`)); istiod drops it from an auto-registered
/// entry's labels and sets `spec.locality` instead, so `/` in the value is harmless.
const LOCALITY_LABEL: &str = "istio-locality";
pub(crate) const CANONICAL_NAME_LABEL: &str = "service.istio.io/canonical-name";
pub(crate) const CANONICAL_REVISION_LABEL: &str = "service.istio.io/canonical-revision";

/// What the caller read from the cluster and chose for this VM.
#[derive(Clone, Debug, PartialEq)]
pub struct BundleInputs {
    pub group_name: String,
    pub group_namespace: String,
    /// `metadata.annotations` of the WorkloadGroup object; its `proxy.istio.io/config` is applied
    /// before the one in `spec.metadata.annotations` (`istioctl/pkg/workload/workload.go` (`createMeshConfig`) step 3).
    pub group_annotations: BTreeMap<String, String>,
    pub group_spec: WorkloadGroupSpec,
    /// Namespace of the control plane (`-i`, default `istio-system`).
    pub istio_namespace: String,
    /// Control-plane revision; `""` and `"default"` both mean "not revisioned" (`istioctl/pkg/workload/workload.go` (entry configure flags)).
    pub revision: String,
    /// `ISTIO_META_CLUSTER_ID`; see [`injector_values`](super::injector_values) for istioctl's default.
    pub cluster_id: String,
    /// Value of key `mesh` of ConfigMap [`mesh_configmap_name`] in `istio_namespace`.
    pub mesh_config_yaml: String,
    /// `root-cert.pem` of ConfigMap `istio-ca-root-cert` in the group's namespace (`istioctl/pkg/workload/workload.go` (`createCertsTokens`, root-cert.pem)).
    pub root_cert: String,
    /// TokenRequest token for [`service_account`] with audience `istio-ca` (`istioctl/pkg/workload/workload.go` (`createCertsTokens`, istio-token)).
    pub token: String,
    pub istiod: IstiodReach,
    /// `--internalIP` / `--externalIP`; the type makes them mutually exclusive as istioctl does.
    pub workload_ip: Option<WorkloadIp>,
    /// `--capture-dns` (istioctl's default is true, `pkg/dns/client` (DNS proxy)).
    pub capture_dns: bool,
    pub mode: RegistrationMode,
    /// Overrides `template.network` as the VM's `ISTIO_META_NETWORK` (`samples/multicluster/` and the `--network`/`--externalIP` handling in `istioctl/pkg/workload/workload.go`).
    pub network: Option<String>,
    /// `region/zone/subzone` of the VM, sent as label `istio-locality` (see module docs).
    pub locality: Option<String>,
    /// Extra proxy labels (`ISTIO_METAJSON_LABELS`); istiod copies them onto an auto-registered
    /// entry with the highest precedence (`pilot/pkg/autoregistration/controller.go` (`workloadEntryFromGroup`)), which is how the provider finds that entry.
    pub extra_labels: BTreeMap<String, String>,
}

/// How the VM reaches istiod's port 15012.
#[derive(Clone, Debug, PartialEq)]
pub enum IstiodReach {
    /// istioctl's way: `hosts` maps `istiod[-<rev>].<ns>.svc` to this IP (usually the east-west
    /// gateway's load-balancer IP, `istioctl/pkg/workload/workload.go` (`createHosts`), `samples/multicluster/` and the `--network`/`--externalIP` handling in `istioctl/pkg/workload/workload.go`).
    HostsEntry(IpAddr),
    /// A DNS name or IP that forwards to istiod (e.g. a gateway with a hostname): becomes
    /// `discoveryAddress`, with `ISTIOD_SAN` so TLS still checks istiod's own name; no hosts line.
    DiscoveryAddress { host: String, port: u16 },
}

/// istioctl's `--internalIP` / `--externalIP` (`istioctl/pkg/workload/workload.go` (entry configure flags), `istioctl/pkg/workload/workload.go` (`createClusterEnv`)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadIp {
    Internal(IpAddr),
    /// Also sets `REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION=true`, so probes go to localhost
    /// rather than a public IP the VM may not own (istio/istio issues on VM onboarding item 5).
    External(IpAddr),
}

/// How the VM's WorkloadEntry comes to exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistrationMode {
    /// istiod creates `<group>-<ip>[-<network>]` when the VM connects (`pilot/pkg/autoregistration/controller.go`).
    Auto,
    /// The provider creates the entry named here; the VM attaches to it (`pilot/pkg/autoregistration/controller.go` (`isHealthCheckedWorkloadEntry`)).
    Manual { entry_name: String },
}

/// The five files, plus a digest that changes whenever any byte of any file changes.
#[derive(Clone, PartialEq, Eq)]
pub struct Bundle {
    pub cluster_env: String,
    pub mesh_config: String,
    pub hosts: String,
    pub root_cert: String,
    pub istio_token: String,
    /// Lower-case hex SHA-256 over every file, names included (see [`Bundle::files`]).
    pub sha256: String,
}

impl std::fmt::Debug for Bundle {
    // The token is a credential: keep it out of logs and panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("cluster_env", &self.cluster_env)
            .field("mesh_config", &self.mesh_config)
            .field("hosts", &self.hosts)
            .field("root_cert", &self.root_cert)
            .field("istio_token", &"<redacted>")
            .field("sha256", &self.sha256)
            .finish()
    }
}

impl Bundle {
    /// File names istioctl writes, in sorted order (the order the digest uses).
    pub const FILE_NAMES: [&'static str; 5] = [
        "cluster.env",
        "hosts",
        "istio-token",
        "mesh.yaml",
        "root-cert.pem",
    ];

    /// The file holding the VM's bootstrap credential.
    pub const TOKEN_FILE: &'static str = "istio-token";

    /// `(file name, content)` for each file, in [`Bundle::FILE_NAMES`] order.
    pub fn files(&self) -> [(&'static str, &str); 5] {
        [
            ("cluster.env", &self.cluster_env),
            ("hosts", &self.hosts),
            (Self::TOKEN_FILE, &self.istio_token),
            ("mesh.yaml", &self.mesh_config),
            ("root-cert.pem", &self.root_cert),
        ]
    }

    fn digest(files: [(&'static str, &str); 5]) -> String {
        // Length-prefix every part so that moving bytes between files changes the digest.
        let mut hasher = Sha256::new();
        for (name, content) in files {
            for part in [name.as_bytes(), content.as_bytes()] {
                hasher.update((part.len() as u64).to_be_bytes());
                hasher.update(part);
            }
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Renders the bundle istioctl would write for the same group, flags and cluster.
pub fn render_bundle(inputs: &BundleInputs) -> Result<Bundle, IstioError> {
    validate(inputs)?;
    let (trust_domain, mut default_config) = parse_mesh_config(inputs)?;
    if is_revisioned(&inputs.revision)
        && string_field(&default_config, "discoveryAddress").is_empty()
    {
        default_config.insert(
            "discoveryAddress".into(),
            Value::String(istiod_addr(&inputs.istio_namespace, &inputs.revision)),
        );
    }
    apply_proxy_config_annotations(inputs, &mut default_config)?;
    set_readiness_probe(&mut default_config, inputs.group_spec.probe.as_ref());
    let metadata = proxy_metadata(inputs, &default_config, &trust_domain);
    if let IstiodReach::DiscoveryAddress { host, port } = &inputs.istiod {
        default_config.insert(
            "discoveryAddress".into(),
            Value::String(host_port(host, *port)),
        );
    }
    refuse_plaintext_autoregistration(inputs, &default_config)?;
    let status_port = status_port(&default_config);
    let cluster_env = cluster_env(inputs, &metadata, status_port);
    default_config.insert(
        "proxyMetadata".into(),
        Value::Object(
            metadata
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        ),
    );
    let mesh_config = goyaml::to_string(&Value::Object(Map::from_iter([(
        "defaultConfig".to_string(),
        Value::Object(default_config),
    )])));
    let hosts = hosts(inputs);
    let mut bundle = Bundle {
        cluster_env,
        mesh_config,
        hosts,
        root_cert: inputs.root_cert.clone(),
        istio_token: inputs.token.clone(),
        sha256: String::new(),
    };
    bundle.sha256 = Bundle::digest(bundle.files());
    Ok(bundle)
}

/// istiod auto-registers only proxies that authenticate; over the plaintext XDS port the agent
/// sends no token and gets no certificate, so the VM would never register.
fn refuse_plaintext_autoregistration(
    inputs: &BundleInputs,
    default_config: &Map<String, Value>,
) -> Result<(), IstioError> {
    let address = string_field(default_config, "discoveryAddress");
    if inputs.mode == RegistrationMode::Auto
        && super::control_plane::is_plaintext_discovery(&address)
    {
        return Err(IstioError::invalid(
            "discoveryAddress",
            format!(
                "{address} is istiod's plaintext port, over which auto-registration cannot work: set the mesh config's defaultConfig.discoveryAddress to port 15012, or register the VM with mode = \"manual\""
            ),
        ));
    }
    Ok(())
}

/// Inputs that would silently produce a bundle the VM cannot use.
fn validate(inputs: &BundleInputs) -> Result<(), IstioError> {
    if inputs.group_name.is_empty() {
        return Err(IstioError::invalid("group_name", "must not be empty"));
    }
    if inputs.group_namespace.is_empty() {
        return Err(IstioError::invalid("group_namespace", "must not be empty"));
    }
    if inputs.istio_namespace.is_empty() {
        return Err(IstioError::invalid("istio_namespace", "must not be empty"));
    }
    if let RegistrationMode::Manual { entry_name } = &inputs.mode
        && entry_name.is_empty()
    {
        return Err(IstioError::invalid(
            "mode",
            "manual mode needs the WorkloadEntry name",
        ));
    }
    if let IstiodReach::DiscoveryAddress { host, port } = &inputs.istiod
        && (host.is_empty() || *port == 0)
    {
        return Err(IstioError::invalid(
            "istiod",
            "discovery address needs a host and a non-zero port",
        ));
    }
    Ok(())
}

/// `trustDomain` and `defaultConfig` of the mesh config; istioctl starts from an empty
/// MeshConfig, so nothing is defaulted here (`istioctl/pkg/workload/workload.go` (`createMeshConfig`) step 1).
fn parse_mesh_config(inputs: &BundleInputs) -> Result<(String, Map<String, Value>), IstioError> {
    let error = |message: String| IstioError::MeshConfig {
        namespace: inputs.istio_namespace.clone(),
        configmap: mesh_configmap_name(&inputs.revision),
        key: MESH_CONFIG_KEY,
        message,
    };
    let mesh = parse_yaml_object(&inputs.mesh_config_yaml).map_err(&error)?;
    let trust_domain = match mesh.get("trustDomain") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(error(format!("trustDomain must be a string, got {other}"))),
    };
    let default_config = match mesh.get("defaultConfig") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(dc)) => normalize_keys(dc.clone()),
        Some(other) => {
            return Err(error(format!(
                "defaultConfig must be a mapping, got {other}"
            )));
        }
    };
    check_proxy_metadata(&default_config).map_err(&error)?;
    Ok((trust_domain, default_config))
}

/// Parses YAML that must be a mapping (or empty), with proto JSON names normalized.
fn parse_yaml_object(yaml: &str) -> Result<Map<String, Value>, String> {
    let value: Value = serde_yaml_ng::from_str(yaml).map_err(|e| format!("invalid YAML: {e}"))?;
    match value {
        Value::Null => Ok(Map::new()),
        Value::Object(map) => Ok(normalize_keys(map)),
        other => Err(format!("expected a mapping, got {other}")),
    }
}

/// Proto JSON accepts `snake_case` field names as well as `lowerCamelCase`; istioctl's output
/// always uses the camel form. Nulls mean "field not set" to the proto decoder, so drop them.
fn normalize_keys(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (lower_camel(&k), v))
        .collect()
}

/// `proxy_metadata` → `proxyMetadata` (protobuf's json_name rule).
fn lower_camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper_next = false;
    for c in name.chars() {
        if c == '_' {
            upper_next = true;
        } else if upper_next {
            out.extend(c.to_uppercase());
            upper_next = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `proxyMetadata` is `map<string,string>` in the proto; istioctl fails on anything else.
fn check_proxy_metadata(config: &Map<String, Value>) -> Result<(), String> {
    match config.get("proxyMetadata") {
        None => Ok(()),
        Some(Value::Object(md)) => match md.iter().find(|(_, v)| !v.is_string()) {
            None => Ok(()),
            Some((k, v)) => Err(format!(
                "proxyMetadata.{k} must be a string (quote it), got {v}"
            )),
        },
        Some(other) => Err(format!("proxyMetadata must be a mapping, got {other}")),
    }
}

/// Applies `proxy.istio.io/config` from the object's annotations, then from `spec.metadata`:
/// top-level fields replace, `proxyMetadata` entries merge (`istioctl/pkg/workload/workload.go` (`createMeshConfig`) step 3).
fn apply_proxy_config_annotations(
    inputs: &BundleInputs,
    default_config: &mut Map<String, Value>,
) -> Result<(), IstioError> {
    let spec_annotations = inputs.group_spec.metadata.as_ref().map(|m| &m.annotations);
    let sources = [
        ("metadata.annotations", Some(&inputs.group_annotations)),
        ("spec.metadata.annotations", spec_annotations),
    ];
    for (location, annotations) in sources {
        let Some(yaml) = annotations.and_then(|a| a.get(PROXY_CONFIG_ANNOTATION)) else {
            continue;
        };
        let error = |message: String| IstioError::ProxyConfigAnnotation {
            namespace: inputs.group_namespace.clone(),
            name: inputs.group_name.clone(),
            annotation: PROXY_CONFIG_ANNOTATION,
            location,
            message,
        };
        let overlay = parse_yaml_object(yaml).map_err(&error)?;
        check_proxy_metadata(&overlay).map_err(&error)?;
        for (key, value) in overlay {
            match (key.as_str(), value, default_config.get_mut("proxyMetadata")) {
                ("proxyMetadata", Value::Object(add), Some(Value::Object(existing))) => {
                    existing.extend(add)
                }
                (_, value, _) => {
                    default_config.insert(key, value);
                }
            }
        }
    }
    Ok(())
}

/// `defaultConfig.readinessProbe = WorkloadGroup.spec.probe` — including removing one the mesh
/// config had when the group has none (`istioctl/pkg/workload/workload.go` (`createMeshConfig`) step 4).
fn set_readiness_probe(default_config: &mut Map<String, Value>, probe: Option<&ReadinessProbe>) {
    match probe {
        Some(probe) => {
            let mut value = serde_json::to_value(probe).expect("probe is plain data");
            strip_proto_defaults(&mut value);
            default_config.insert("readinessProbe".into(), value);
        }
        None => {
            default_config.remove("readinessProbe");
        }
    }
}

/// Proto JSON omits zero numbers, empty strings and empty lists; istioctl prints the probe that
/// way (`readinessProbe: {httpGet: {port: 8080}}`), so we do too.
fn strip_proto_defaults(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !is_proto_default(v));
            map.values_mut().for_each(strip_proto_defaults);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_proto_defaults),
        _ => {}
    }
}

fn is_proto_default(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Bool(b) => !b,
        Value::Null => true,
        Value::Object(_) => false,
    }
}

/// The final `defaultConfig.proxyMetadata`: the mesh config's and annotations' entries, then
/// the keys istioctl sets (`istioctl/pkg/workload/workload.go` (`createMeshConfig`) step 5), then ours (module docs).
fn proxy_metadata(
    inputs: &BundleInputs,
    default_config: &Map<String, Value>,
    trust_domain: &str,
) -> BTreeMap<String, String> {
    let mut md: BTreeMap<String, String> = match default_config.get("proxyMetadata") {
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
        _ => BTreeMap::new(),
    };
    let spec = &inputs.group_spec;
    let mut labels = proxy_labels(inputs);
    let (canonical_name, canonical_revision) = canonical_service(&labels, &inputs.group_name);
    md.insert("CANONICAL_SERVICE".into(), canonical_name.clone());
    md.insert("CANONICAL_REVISION".into(), canonical_revision.clone());
    md.insert("POD_NAMESPACE".into(), inputs.group_namespace.clone());
    md.insert("SERVICE_ACCOUNT".into(), service_account(spec).to_string());
    md.insert("TRUST_DOMAIN".into(), trust_domain.to_string());
    md.insert("ISTIO_META_CLUSTER_ID".into(), inputs.cluster_id.clone());
    md.insert(
        "ISTIO_META_MESH_ID".into(),
        string_field(default_config, "meshId"),
    );
    md.insert("ISTIO_META_NETWORK".into(), network(inputs).to_string());
    if !spec.template.ports.is_empty() {
        md.insert(
            "ISTIO_META_POD_PORTS".into(),
            pod_ports_json(&spec.template.ports),
        );
    }
    md.insert("ISTIO_META_WORKLOAD_NAME".into(), inputs.group_name.clone());
    labels.insert(CANONICAL_NAME_LABEL.into(), canonical_name);
    labels.insert(CANONICAL_REVISION_LABEL.into(), canonical_revision);
    md.insert("ISTIO_METAJSON_LABELS".into(), go_json(&labels));
    if inputs.capture_dns {
        md.insert("ISTIO_META_DNS_CAPTURE".into(), "true".into());
    }
    match &inputs.mode {
        RegistrationMode::Auto => {
            md.insert(
                "ISTIO_META_AUTO_REGISTER_GROUP".into(),
                inputs.group_name.clone(),
            );
        }
        RegistrationMode::Manual { entry_name } => {
            md.insert("ISTIO_META_WORKLOAD_ENTRY".into(), entry_name.clone());
        }
    }
    if let IstiodReach::DiscoveryAddress { .. } = inputs.istiod {
        md.insert(
            "ISTIOD_SAN".into(),
            istiod_host(&inputs.istio_namespace, &inputs.revision),
        );
    }
    md
}

/// Labels the VM presents: `spec.metadata.labels` overridden by `template.labels` (istioctl's
/// order, `istioctl/pkg/workload/workload.go` (`createMeshConfig`)), then our locality and registration labels.
fn proxy_labels(inputs: &BundleInputs) -> BTreeMap<String, String> {
    let spec = &inputs.group_spec;
    let mut labels = spec
        .metadata
        .as_ref()
        .map(|m| m.labels.clone())
        .unwrap_or_default();
    labels.extend(spec.template.labels.clone());
    if let Some(locality) = inputs.locality.as_ref().filter(|l| !l.is_empty()) {
        labels.insert(LOCALITY_LABEL.into(), locality.clone());
    }
    labels.extend(inputs.extra_labels.clone());
    labels
}

/// `labels.CanonicalService`: the first present label of each list, else the group name and
/// `latest` (`istioctl/pkg/workload/workload.go` (`createMeshConfig`)). A present label counts even when its value is empty, as in Istio.
pub(crate) fn canonical_service(
    labels: &BTreeMap<String, String>,
    workload_name: &str,
) -> (String, String) {
    let first = |keys: [&str; 3]| keys.iter().find_map(|k| labels.get(*k)).cloned();
    let name = first([CANONICAL_NAME_LABEL, "app.kubernetes.io/name", "app"]);
    let revision = first([
        CANONICAL_REVISION_LABEL,
        "app.kubernetes.io/version",
        "version",
    ]);
    (
        name.unwrap_or_else(|| workload_name.to_string()),
        revision.unwrap_or_else(|| "latest".to_string()),
    )
}

/// `ISTIO_META_POD_PORTS`: `[{"name":..,"containerPort":..,"protocol":""}]` sorted by name;
/// `protocol` has no `omitempty` in Istio's `PodPort`, so it is always there.
fn pod_ports_json(ports: &BTreeMap<String, u32>) -> String {
    let items: Vec<String> = ports // BTreeMap iterates sorted by name, as istioctl sorts
        .iter()
        .map(|(name, port)| {
            format!(
                r#"{{"name":{},"containerPort":{port},"protocol":""}}"#,
                go_json(&name.as_str())
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// JSON as Go's `encoding/json` writes it: sorted map keys, no spaces, and `<`, `>`, `&`,
/// U+2028, U+2029 escaped. Those characters only occur inside strings, so replacing is safe.
fn go_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value)
        .expect("strings and maps always serialize")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// `cluster.env`: every proxyMetadata entry plus istioctl's overrides, one `KEY=quoted` line
/// each, lines sorted as strings (`istioctl/pkg/workload/workload.go` (`createClusterEnv`)).
fn cluster_env(
    inputs: &BundleInputs,
    metadata: &BTreeMap<String, String>,
    status_port: i64,
) -> String {
    let spec = &inputs.group_spec;
    let mut env = metadata.clone();
    env.insert(
        "ISTIO_INBOUND_PORTS".into(),
        inbound_ports(&spec.template.ports),
    );
    env.insert("ISTIO_NAMESPACE".into(), inputs.group_namespace.clone());
    env.insert(
        "ISTIO_SERVICE".into(),
        format!("{}.{}", inputs.group_name, inputs.group_namespace),
    );
    env.insert("ISTIO_SERVICE_CIDR".into(), "*".into());
    env.insert(
        "ISTIO_LOCAL_EXCLUDE_PORTS".into(),
        local_exclude_ports(status_port),
    );
    env.insert("SERVICE_ACCOUNT".into(), service_account(spec).to_string());
    start_script_overrides(inputs, &mut env);
    match inputs.workload_ip {
        Some(WorkloadIp::Internal(ip)) => {
            env.insert("ISTIO_SVC_IP".into(), ip.to_string());
        }
        Some(WorkloadIp::External(ip)) => {
            env.insert("ISTIO_SVC_IP".into(), ip.to_string());
            env.insert(
                "REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION".into(),
                "true".into(),
            );
        }
        None => {}
    }
    let mut lines: Vec<String> = env
        .iter()
        .map(|(k, v)| format!("{k}={}", shell::quote(v)))
        .collect();
    // istioctl sorts whole lines, not keys ("FOO1=" sorts before "FOO="); follow it exactly.
    lines.sort();
    lines.join("\n") + "\n"
}

/// A real VM starts through `tools/packaging/common/istio-start.sh`, which sources cluster.env
/// and then exports `ISTIO_SYSTEM_NAMESPACE` (default `istio-system`) and
/// `CA_ADDR=${CA_ADDR:-istiod.${ISTIO_SYSTEM_NAMESPACE}.svc:15012}`. An exported `CA_ADDR` also
/// makes the agent ignore `ISTIOD_SAN` for the CA and check the CA's certificate against
/// `CA_ADDR`'s host (`pilot/cmd/pilot-agent/options/security.go`, `pilot/pkg/grpc/tls.go`).
/// So both keys are written whenever the script's default would be wrong, and only then
/// (istioctl's own file otherwise):
/// - `ISTIO_SYSTEM_NAMESPACE` for a control plane outside `istio-system`;
/// - `CA_ADDR` for a revision (istioctl writes it too), and for a discovery address
///   (`istiod_address`, a gateway with only a hostname), where the VM has no hosts line for
///   istiod's name and must reach the CA where it reaches istiod.
fn start_script_overrides(inputs: &BundleInputs, env: &mut BTreeMap<String, String>) {
    let namespace = &inputs.istio_namespace;
    if namespace != super::DEFAULT_ISTIO_NAMESPACE {
        env.insert("ISTIO_SYSTEM_NAMESPACE".into(), namespace.clone());
    }
    let ca_addr = match &inputs.istiod {
        IstiodReach::HostsEntry(_) => istiod_addr(namespace, &inputs.revision),
        IstiodReach::DiscoveryAddress { host, port } => host_port(host, *port),
    };
    if ca_addr != istiod_addr(namespace, "") {
        env.insert("CA_ADDR".into(), ca_addr);
    }
}

/// `template.ports` values joined by `,` (sorted, where istioctl uses Go map order), or `*`.
fn inbound_ports(ports: &BTreeMap<String, u32>) -> String {
    let mut numbers: Vec<u32> = ports.values().copied().collect();
    numbers.sort_unstable();
    if numbers.is_empty() {
        return "*".to_string();
    }
    numbers
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// SSH, Prometheus and the agent's ports stay reachable even if capture is broken (`istioctl/pkg/workload/workload.go` (`createClusterEnv`)).
fn local_exclude_ports(status_port: i64) -> String {
    let mut ports = "22,15090,15021".to_string();
    match status_port {
        15090 | 15021 => {}
        0 => ports.push_str(",15020"),
        custom => ports.push_str(&format!(",{custom}")),
    }
    ports
}

/// `defaultConfig.statusPort` (0 when unset; proto JSON may carry numbers as strings).
fn status_port(default_config: &Map<String, Value>) -> i64 {
    match default_config.get("statusPort") {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

/// `hosts`: one line mapping istiod's service name to the gateway IP, or empty (`istioctl/pkg/workload/workload.go` (`createHosts`)).
fn hosts(inputs: &BundleInputs) -> String {
    match &inputs.istiod {
        IstiodReach::HostsEntry(ip) => {
            format!(
                "{ip} {}\n",
                istiod_host(&inputs.istio_namespace, &inputs.revision)
            )
        }
        IstiodReach::DiscoveryAddress { .. } => String::new(),
    }
}

/// The VM's network: the registration's, else the group template's.
fn network(inputs: &BundleInputs) -> &str {
    match inputs.network.as_deref() {
        Some(n) if !n.is_empty() => n,
        _ => &inputs.group_spec.template.network,
    }
}

fn string_field(map: &Map<String, Value>, key: &str) -> String {
    map.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// `host:port`, bracketing an IPv6 literal.
fn host_port(host: &str, port: u16) -> String {
    match host.parse::<Ipv6Addr>() {
        Ok(_) => format!("[{host}]:{port}"),
        Err(_) => format!("{host}:{port}"),
    }
}

/// The service account the VM runs as and its token is issued for: `template.serviceAccount`,
/// or `default` when empty (what istioctl does for a group read from a file, `istioctl/pkg/workload/workload.go` (`createMeshConfig`)).
pub fn service_account(spec: &WorkloadGroupSpec) -> &str {
    match spec.template.service_account.as_str() {
        "" => "default",
        sa => sa,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_exclude_ports_follow_the_status_port() {
        assert_eq!(local_exclude_ports(0), "22,15090,15021,15020");
        assert_eq!(local_exclude_ports(15021), "22,15090,15021");
        assert_eq!(local_exclude_ports(15090), "22,15090,15021");
        assert_eq!(local_exclude_ports(16000), "22,15090,15021,16000");
    }

    #[test]
    fn inbound_ports_are_sorted_numerically() {
        let ports = BTreeMap::from([("b".into(), 80), ("a".into(), 8080), ("c".into(), 443)]);
        assert_eq!(inbound_ports(&ports), "80,443,8080");
        assert_eq!(inbound_ports(&BTreeMap::new()), "*");
    }

    #[test]
    fn canonical_service_uses_istio_label_precedence() {
        let l = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            canonical_service(&l(&[]), "wg"),
            ("wg".into(), "latest".into())
        );
        assert_eq!(
            canonical_service(
                &l(&[
                    ("app", "a"),
                    ("app.kubernetes.io/name", "k"),
                    ("version", "v1")
                ]),
                "wg"
            ),
            ("k".into(), "v1".into())
        );
        assert_eq!(
            canonical_service(
                &l(&[
                    ("app", "a"),
                    (CANONICAL_NAME_LABEL, "c"),
                    ("app.kubernetes.io/version", "2")
                ]),
                "wg"
            ),
            ("c".into(), "2".into())
        );
    }

    #[test]
    fn go_json_escapes_html_like_encoding_json() {
        let labels = BTreeMap::from([
            ("b".to_string(), "<&>".to_string()),
            ("a".to_string(), "x".to_string()),
        ]);
        assert_eq!(go_json(&labels), r#"{"a":"x","b":"\u003c\u0026\u003e"}"#);
    }

    #[test]
    fn lower_camel_matches_protobuf_json_names() {
        assert_eq!(lower_camel("proxy_metadata"), "proxyMetadata");
        assert_eq!(lower_camel("discoveryAddress"), "discoveryAddress");
        assert_eq!(lower_camel("status_port"), "statusPort");
    }

    #[test]
    fn host_port_brackets_ipv6() {
        assert_eq!(host_port("gw.example.com", 15012), "gw.example.com:15012");
        assert_eq!(host_port("fd00::1", 15012), "[fd00::1]:15012");
    }
}
