//! Resource `istio_workload_group`: the WorkloadGroup every VM of a service is registered from,
//! typed and validated at plan time, applied with server-side apply, refreshed for drift.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    Operation, TimeoutsModel, managed_entries, non_empty, parse_import_id, report,
    validate_annotations, validate_labels, validate_name, validate_namespace,
};
use crate::cluster::KubeError;
use crate::cluster::apply::server_side_apply;
use crate::cluster::wait::wait_until_deleted;
use crate::istio::crd::{
    ExecHealthCheck, GrpcHealthCheck, HttpHeader, HttpHealthCheck, IstioApiVersion, ReadinessProbe,
    TcpHealthCheck, WorkloadEntrySpec, WorkloadGroup, WorkloadGroupObjectMeta, WorkloadGroupSpec,
    from_dynamic, to_dynamic,
};
use crate::istio::rules;
use crate::provider::{Configured, ProviderHandle};
use crate::tfplug::{
    AttributePath, Ctx, Diagnostics, Plan, Resource, Schema, UnknownAs, Value, decode, encode,
};
use crate::validation;

const DEFAULT_NAMESPACE: &str = "default";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// An Istio `WorkloadGroup` (networking.istio.io): the template for the WorkloadEntries of one
/// service's virtual machines — like a Deployment for Pods. VMs registered with
/// `istio_vm_registration` take their labels, ports, service account and health probe from it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct WorkloadGroupModel {
    /// `<namespace>/<name>`.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub id: Option<String>,
    /// Name of the WorkloadGroup (a DNS-1123 subdomain). Changing it replaces the group.
    #[schemars(extend("x-tf" = {"requires_replace": true}))]
    #[serde(deserialize_with = "crate::tfplug::null_as_default")]
    pub name: String,
    /// Namespace of the WorkloadGroup; its VMs join this namespace. Default `default`.
    /// Changing it replaces the group.
    #[schemars(extend("x-tf" = {"optional_computed": true, "requires_replace": true}))]
    pub namespace: Option<String>,
    /// Labels of the WorkloadGroup object itself. Keys other tools add are ignored.
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations of the WorkloadGroup object itself. Keys other tools add are ignored.
    pub annotations: Option<BTreeMap<String, String>>,
    /// Labels and annotations copied onto every WorkloadEntry of the group (`spec.metadata`).
    #[schemars(extend("x-tf" = {"block": "single"}))]
    pub metadata: Option<GroupMetadataModel>,
    /// Fields shared by every WorkloadEntry of the group (`spec.template`).
    #[schemars(extend("x-tf" = {"block": "single"}))]
    pub template: Option<TemplateModel>,
    /// Readiness probe the VM's Istio agent runs; istiod turns its result into the entry's
    /// `Healthy` condition (`spec.probe`).
    #[schemars(extend("x-tf" = {"block": "single"}))]
    pub probe: Option<ProbeModel>,
    /// Take ownership of fields another field manager owns instead of failing with a conflict.
    pub force_conflicts: Option<bool>,
    #[schemars(extend("x-tf" = {"block": "single"}))]
    pub timeouts: Option<TimeoutsModel>,
    /// Kubernetes UID of the WorkloadGroup.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub uid: Option<String>,
    /// API version the cluster serves the group at: `networking.istio.io/v1`, or
    /// `networking.istio.io/v1beta1` on clusters without v1.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub api_version: Option<String>,
}

/// `spec.metadata` of the group.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct GroupMetadataModel {
    /// Labels every WorkloadEntry gets (e.g. `app = "product"` so Services select the VMs).
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations every WorkloadEntry gets.
    pub annotations: Option<BTreeMap<String, String>>,
}

/// `spec.template`: a WorkloadEntry without its per-VM fields.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct TemplateModel {
    /// Address shared by all entries; normally left empty because each VM has its own.
    pub address: Option<String>,
    /// Port name → port number the VMs serve on (e.g. `http = 8080`); at most 128 ports,
    /// names of 1–62 letters, digits and '-'.
    pub ports: Option<BTreeMap<String, i64>>,
    /// Labels of the entries (merged under `metadata.labels`).
    pub labels: Option<BTreeMap<String, String>>,
    /// Network of the VMs, for multi-network meshes (`topology.istio.io/network`). istiod puts
    /// it into the names of the entries it creates, so it must be lower-case letters, digits,
    /// '-' and '.'.
    pub network: Option<String>,
    /// Locality `region/zone/subzone` of the VMs.
    pub locality: Option<String>,
    /// Load-balancing weight of each entry, 0–4294967295 (0 means Istio's default).
    pub weight: Option<i64>,
    /// Service account the VMs run as; their workload certificates carry
    /// `spiffe://<trust-domain>/ns/<namespace>/sa/<service_account>`.
    pub service_account: Option<String>,
}

/// `spec.probe`: exactly one of `http_get`, `tcp_socket`, `exec`, `grpc`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct ProbeModel {
    /// Seconds after the agent starts before the first probe.
    pub initial_delay_seconds: Option<i64>,
    /// Seconds after which one probe times out; 0 or unset means the agent's default, 1
    /// (`pkg/istio-agent/health/health_check.go`).
    pub timeout_seconds: Option<i64>,
    /// Seconds between probes; 0 or unset means the agent's default, 10.
    pub period_seconds: Option<i64>,
    /// Consecutive successes to become healthy; 0 or unset means 1.
    pub success_threshold: Option<i64>,
    /// Consecutive failures to become unhealthy; 0 or unset means 1.
    pub failure_threshold: Option<i64>,
    /// HTTP GET against the VM's application.
    #[schemars(extend("x-tf" = {"block": "single"}))]
    pub http_get: Option<HttpGetModel>,
    /// TCP connect to the VM's application.
    #[schemars(extend("x-tf" = {"block": "single"}))]
    pub tcp_socket: Option<TcpSocketModel>,
    /// Command run on the VM; exit code 0 is healthy.
    #[schemars(extend("x-tf" = {"block": "single"}))]
    pub exec: Option<ExecModel>,
    /// gRPC health check. The CRD lists it, but istiod's validating webhook at the supported
    /// Istio version denies it ("unknown health check method"), so the plan fails with that
    /// reason; use `exec` with a gRPC health client instead.
    #[schemars(extend("x-tf" = {"block": "single"}))]
    pub grpc: Option<GrpcModel>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct HttpGetModel {
    /// Path to request, e.g. `/healthz`.
    pub path: Option<String>,
    /// Port on the VM (1–65535).
    #[serde(deserialize_with = "crate::tfplug::null_as_default")]
    pub port: i64,
    /// Host to connect to; default the VM itself.
    pub host: Option<String>,
    /// `HTTP` (default; also when empty) or `HTTPS`.
    pub scheme: Option<String>,
    /// Extra request headers, name → value.
    pub http_headers: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct TcpSocketModel {
    /// Host to connect to; default the VM itself.
    pub host: Option<String>,
    /// Port on the VM (1–65535).
    #[serde(deserialize_with = "crate::tfplug::null_as_default")]
    pub port: i64,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct ExecModel {
    /// Command and arguments; must not be empty, nor contain an empty string.
    #[serde(deserialize_with = "crate::tfplug::null_as_default")]
    pub command: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct GrpcModel {
    /// Port of the gRPC health service (1–65535).
    pub port: Option<i64>,
    /// Service name sent in the health check request.
    pub service: Option<String>,
}

pub struct WorkloadGroupResource {
    handle: Arc<ProviderHandle>,
}

impl WorkloadGroupResource {
    pub fn new(handle: Arc<ProviderHandle>) -> Self {
        WorkloadGroupResource { handle }
    }
}

#[async_trait]
impl Resource for WorkloadGroupResource {
    fn type_name(&self) -> &'static str {
        "istio_workload_group"
    }

    fn schema(&self) -> Schema {
        Schema::from_model::<WorkloadGroupModel>(0)
    }

    async fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        super::common::validate_config::<WorkloadGroupModel>(config, diags, |model, diags| {
            validate_model(model, diags)
        });
    }

    async fn plan(&self, _ctx: &Ctx, plan: &mut Plan, _diags: &mut Diagnostics) {
        if plan.planned.is_null() {
            return;
        }
        super::common::plan_default(plan, "namespace", Value::string(DEFAULT_NAMESPACE));
        if plan.is_create() {
            let id = match (
                plan.planned.get_attr("namespace"),
                plan.planned.get_attr("name"),
            ) {
                (Some(Value::String(ns)), Some(Value::String(name))) => {
                    Value::string(format!("{ns}/{name}"))
                }
                _ => Value::Unknown,
            };
            plan.planned.set_attr("id", id);
        }
    }

    async fn create(&self, _ctx: &Ctx, planned: Value, diags: &mut Diagnostics) -> Option<Value> {
        let mut model = decode::<WorkloadGroupModel>(&planned, UnknownAs::Null, diags)?;
        let configured = self.handle.configured(diags).await?;
        let namespace = model
            .namespace
            .clone()
            .unwrap_or_else(|| DEFAULT_NAMESPACE.into());
        let version = match served_version(&configured.client).await {
            Ok(version) => version,
            Err(error) => return report(diags, "Cannot create WorkloadGroup", error),
        };
        let api = dynamic_api(&configured.client, &namespace, version);
        match api.get_opt(&model.name).await {
            Ok(Some(_)) => {
                diags.error(
                    "WorkloadGroup already exists",
                    format!(
                        "{namespace}/{} already exists in the cluster. Import it (`terraform import <address> {namespace}/{}`) or choose another name.",
                        model.name, model.name
                    ),
                    AttributePath::new("name"),
                );
                return None;
            }
            Ok(None) => {}
            Err(error) => return report(diags, "Cannot create WorkloadGroup", error.into()),
        }
        let applied = apply(&api, &model, &namespace, version, &configured).await;
        let applied = match applied {
            Ok(applied) => applied,
            Err(error) => return report(diags, "Cannot create WorkloadGroup", error),
        };
        set_computed(&mut model, &applied, &namespace, version);
        encode(&model, &self.schema(), diags)
    }

    async fn read(&self, _ctx: &Ctx, state: Value, diags: &mut Diagnostics) -> Option<Value> {
        let prior = decode::<WorkloadGroupModel>(&state, UnknownAs::Null, diags)?;
        let configured = self.handle.configured(diags).await?;
        let namespace = prior
            .namespace
            .clone()
            .unwrap_or_else(|| DEFAULT_NAMESPACE.into());
        let version = prior
            .api_version
            .as_deref()
            .and_then(IstioApiVersion::parse)
            .unwrap_or_default();
        let live = match fetch(&configured.client, &namespace, &prior.name, version).await {
            Ok(Some(live)) => live,
            Ok(None) => return None,
            Err(error) => {
                report::<()>(diags, "Cannot read WorkloadGroup", error);
                return Some(state);
            }
        };
        let refreshed = refresh(&prior, &live, &namespace, version);
        encode(&refreshed, &self.schema(), diags)
    }

    async fn update(
        &self,
        _ctx: &Ctx,
        prior: Value,
        planned: Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let mut model = decode::<WorkloadGroupModel>(&planned, UnknownAs::Null, diags)?;
        let prior_model = decode::<WorkloadGroupModel>(&prior, UnknownAs::Null, diags)?;
        let configured = self.handle.configured(diags).await?;
        let namespace = model
            .namespace
            .clone()
            .unwrap_or_else(|| DEFAULT_NAMESPACE.into());
        let version = prior_model
            .api_version
            .as_deref()
            .and_then(IstioApiVersion::parse)
            .unwrap_or_default();
        let api = dynamic_api(&configured.client, &namespace, version);
        match apply(&api, &model, &namespace, version, &configured).await {
            Ok(applied) => {
                set_computed(&mut model, &applied, &namespace, version);
                encode(&model, &self.schema(), diags)
            }
            Err(error) => {
                report::<()>(diags, "Cannot update WorkloadGroup", error);
                // Nothing changed in the cluster: keep the prior state.
                Some(prior)
            }
        }
    }

    async fn delete(&self, ctx: &Ctx, prior: Value, diags: &mut Diagnostics) {
        let Some(model) = decode::<WorkloadGroupModel>(&prior, UnknownAs::Null, diags) else {
            return;
        };
        let Some(configured) = self.handle.configured(diags).await else {
            return;
        };
        let namespace = model
            .namespace
            .clone()
            .unwrap_or_else(|| DEFAULT_NAMESPACE.into());
        let version = model
            .api_version
            .as_deref()
            .and_then(IstioApiVersion::parse)
            .unwrap_or_default();
        let api = dynamic_api(&configured.client, &namespace, version);
        let timeout = TimeoutsModel::get(&model.timeouts, Operation::Delete, DEFAULT_TIMEOUT);
        if let Err(error) = delete_and_wait(&api, &model.name, timeout, ctx).await {
            report::<()>(diags, "Cannot delete WorkloadGroup", error);
        }
    }

    async fn import(&self, _ctx: &Ctx, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        let (namespace, name) = parse_import_id(id, diags)?;
        let configured = self.handle.configured(diags).await?;
        let version = match served_version(&configured.client).await {
            Ok(version) => version,
            Err(error) => return report(diags, "Cannot import WorkloadGroup", error),
        };
        let live = match fetch(&configured.client, &namespace, &name, version).await {
            Ok(Some(live)) => live,
            Ok(None) => {
                diags.root_error(
                    "Cannot import WorkloadGroup",
                    format!("WorkloadGroup {namespace}/{name} does not exist."),
                );
                return None;
            }
            Err(error) => return report(diags, "Cannot import WorkloadGroup", error),
        };
        let imported = model_from_live(&live, &namespace, version);
        encode(&imported, &self.schema(), diags)
    }
}

// ---- validation ----------------------------------------------------------------------------

fn validate_model(model: &WorkloadGroupModel, diags: &mut Diagnostics) {
    validate_name(&model.name, AttributePath::new("name"), diags);
    if let Some(namespace) = &model.namespace {
        validate_namespace(namespace, AttributePath::new("namespace"), diags);
    }
    validate_labels(&model.labels, AttributePath::new("labels"), diags);
    validate_annotations(&model.annotations, AttributePath::new("annotations"), diags);
    if let Some(metadata) = &model.metadata {
        let path = AttributePath::new("metadata");
        validate_label_count(&metadata.labels, path.clone().attr("labels"), diags);
        validate_label_count(&metadata.annotations, path.attr("annotations"), diags);
        validate_labels(
            &metadata.labels,
            AttributePath::new("metadata").attr("labels"),
            diags,
        );
        validate_annotations(
            &metadata.annotations,
            AttributePath::new("metadata").attr("annotations"),
            diags,
        );
    }
    if let Some(template) = &model.template {
        validate_template(template, diags);
    }
    if let Some(probe) = &model.probe {
        validate_probe(probe, diags);
    }
    if let Some(timeouts) = &model.timeouts {
        timeouts.validate(diags);
    }
}

fn validate_template(template: &TemplateModel, diags: &mut Diagnostics) {
    let path = AttributePath::new("template");
    let ports = template.ports.as_ref();
    if let Err(problem) = rules::at_most(ports.map_or(0, |p| p.len()), rules::MAX_PORTS, "ports") {
        diags.error("Too many ports", problem, path.clone().attr("ports"));
    }
    for (name, port) in ports.into_iter().flatten() {
        if let Err(problem) = rules::port_name(name) {
            diags.error(
                "Invalid port name",
                problem,
                path.clone().attr("ports").key(name),
            );
        }
        if let Err(problem) = validation::port(*port) {
            diags.error(
                "Invalid port",
                problem,
                path.clone().attr("ports").key(name),
            );
        }
    }
    validate_label_count(&template.labels, path.clone().attr("labels"), diags);
    validate_labels(&template.labels, path.clone().attr("labels"), diags);
    if let Some(Err(problem)) = template.weight.map(rules::weight) {
        diags.error("Invalid weight", problem, path.clone().attr("weight"));
    }
    if let Some(account) = &template.service_account
        && let Err(problem) = validation::dns1123_subdomain(account)
    {
        diags.error(
            "Invalid service account",
            problem,
            path.clone().attr("service_account"),
        );
    }
    if let Some(network) = template.network.as_deref().filter(|n| !n.is_empty())
        && let Err(problem) = rules::network(network)
    {
        diags.error("Invalid network", problem, path.clone().attr("network"));
    }
    if let Some(locality) = template.locality.as_deref().filter(|l| !l.is_empty())
        && let Err(problem) = rules::locality(locality)
    {
        diags.error("Invalid locality", problem, path.clone().attr("locality"));
    }
}

/// The CRD's `maxProperties` on labels and annotations maps.
fn validate_label_count(
    labels: &Option<BTreeMap<String, String>>,
    path: AttributePath,
    diags: &mut Diagnostics,
) {
    let count = labels.as_ref().map_or(0, BTreeMap::len);
    if let Err(problem) = rules::at_most(count, rules::MAX_LABELS, "entries") {
        diags.error("Too many entries", problem, path);
    }
}

fn validate_probe(probe: &ProbeModel, diags: &mut Diagnostics) {
    let path = AttributePath::new("probe");
    for (name, value) in [
        ("initial_delay_seconds", probe.initial_delay_seconds),
        ("timeout_seconds", probe.timeout_seconds),
        ("period_seconds", probe.period_seconds),
        ("success_threshold", probe.success_threshold),
        ("failure_threshold", probe.failure_threshold),
    ] {
        if let Some(Err(problem)) = value.map(rules::probe_number) {
            diags.error(format!("Invalid {name}"), problem, path.clone().attr(name));
        }
    }
    let handlers = [
        probe.http_get.is_some(),
        probe.tcp_socket.is_some(),
        probe.exec.is_some(),
        probe.grpc.is_some(),
    ];
    if handlers.iter().filter(|set| **set).count() != 1 {
        diags.error(
            "Probe needs exactly one handler",
            "Set exactly one of the blocks `http_get`, `tcp_socket` or `exec` inside `probe`.",
            path.clone(),
        );
    }
    if let Some(http) = &probe.http_get {
        let http_path = path.clone().attr("http_get");
        if let Err(problem) = validation::port(http.port) {
            diags.error("Invalid port", problem, http_path.clone().attr("port"));
        }
        if let Some(Err(problem)) = http.scheme.as_deref().map(rules::probe_scheme) {
            diags.error("Invalid scheme", problem, http_path.clone().attr("scheme"));
        }
        for name in http.http_headers.iter().flatten().map(|(k, _)| k) {
            if let Err(problem) = rules::probe_header_name(name) {
                diags.error(
                    "Invalid header name",
                    problem,
                    http_path.clone().attr("http_headers").key(name),
                );
            }
        }
    }
    if let Some(tcp) = &probe.tcp_socket
        && let Err(problem) = validation::port(tcp.port)
    {
        diags.error(
            "Invalid port",
            problem,
            path.clone().attr("tcp_socket").attr("port"),
        );
    }
    if let Some(exec) = &probe.exec
        && let Err(problem) = rules::exec_command(&exec.command)
    {
        diags.error(
            "Invalid command",
            problem,
            path.clone().attr("exec").attr("command"),
        );
    }
    if probe.grpc.is_some() {
        diags.error(
            "gRPC probes are not accepted by Istio",
            rules::GRPC_PROBE_REJECTED,
            path.clone().attr("grpc"),
        );
    }
}

// ---- model ⇄ Kubernetes ----------------------------------------------------------------------

fn spec_from_model(model: &WorkloadGroupModel) -> WorkloadGroupSpec {
    WorkloadGroupSpec {
        metadata: model.metadata.as_ref().map(|m| WorkloadGroupObjectMeta {
            labels: m.labels.clone().unwrap_or_default(),
            annotations: m.annotations.clone().unwrap_or_default(),
        }),
        template: model
            .template
            .as_ref()
            .map(template_spec)
            .unwrap_or_default(),
        probe: model.probe.as_ref().map(probe_spec),
    }
}

fn template_spec(template: &TemplateModel) -> WorkloadEntrySpec {
    WorkloadEntrySpec {
        address: template.address.clone().unwrap_or_default(),
        ports: template
            .ports
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), *v as u32))
            .collect(),
        labels: template.labels.clone().unwrap_or_default(),
        network: template.network.clone().unwrap_or_default(),
        locality: template.locality.clone().unwrap_or_default(),
        weight: template.weight.map(|w| w as u32),
        service_account: template.service_account.clone().unwrap_or_default(),
    }
}

fn probe_spec(probe: &ProbeModel) -> ReadinessProbe {
    let int = |v: Option<i64>| v.map(|v| v as i32);
    ReadinessProbe {
        initial_delay_seconds: int(probe.initial_delay_seconds),
        timeout_seconds: int(probe.timeout_seconds),
        period_seconds: int(probe.period_seconds),
        success_threshold: int(probe.success_threshold),
        failure_threshold: int(probe.failure_threshold),
        http_get: probe.http_get.as_ref().map(|h| HttpHealthCheck {
            path: h.path.clone().unwrap_or_default(),
            port: h.port as u32,
            host: h.host.clone().unwrap_or_default(),
            scheme: h.scheme.clone().unwrap_or_default(),
            http_headers: h
                .http_headers
                .iter()
                .flatten()
                .map(|(name, value)| HttpHeader {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
        }),
        tcp_socket: probe.tcp_socket.as_ref().map(|t| TcpHealthCheck {
            host: t.host.clone().unwrap_or_default(),
            port: t.port as u32,
        }),
        exec: probe.exec.as_ref().map(|e| ExecHealthCheck {
            command: e.command.clone(),
        }),
        grpc: probe.grpc.as_ref().map(|g| GrpcHealthCheck {
            port: g.port.map(|p| p as u32),
            service: g.service.clone().unwrap_or_default(),
        }),
    }
}

fn empty_to_none(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

fn map_to_option<V: Clone>(map: &BTreeMap<String, V>) -> Option<BTreeMap<String, V>> {
    (!map.is_empty()).then(|| map.clone())
}

/// The Terraform view of a live spec, without reference to any prior state.
fn spec_to_model(
    spec: &WorkloadGroupSpec,
) -> (
    Option<GroupMetadataModel>,
    Option<TemplateModel>,
    Option<ProbeModel>,
) {
    let metadata = spec.metadata.as_ref().map(|m| GroupMetadataModel {
        labels: map_to_option(&m.labels),
        annotations: map_to_option(&m.annotations),
    });
    let t = &spec.template;
    let template = TemplateModel {
        address: empty_to_none(&t.address),
        ports: map_to_option(
            &t.ports
                .iter()
                .map(|(k, v)| (k.clone(), i64::from(*v)))
                .collect(),
        ),
        labels: map_to_option(&t.labels),
        network: empty_to_none(&t.network),
        locality: empty_to_none(&t.locality),
        weight: t.weight.map(i64::from),
        service_account: empty_to_none(&t.service_account),
    };
    let template = (template != TemplateModel::default()).then_some(template);
    let probe = spec.probe.as_ref().map(|p| ProbeModel {
        initial_delay_seconds: p.initial_delay_seconds.map(i64::from),
        timeout_seconds: p.timeout_seconds.map(i64::from),
        period_seconds: p.period_seconds.map(i64::from),
        success_threshold: p.success_threshold.map(i64::from),
        failure_threshold: p.failure_threshold.map(i64::from),
        http_get: p.http_get.as_ref().map(|h| HttpGetModel {
            path: empty_to_none(&h.path),
            port: i64::from(h.port),
            host: empty_to_none(&h.host),
            scheme: empty_to_none(&h.scheme),
            http_headers: map_to_option(
                &h.http_headers
                    .iter()
                    .map(|x| (x.name.clone(), x.value.clone()))
                    .collect(),
            ),
        }),
        tcp_socket: p.tcp_socket.as_ref().map(|t| TcpSocketModel {
            host: empty_to_none(&t.host),
            port: i64::from(t.port),
        }),
        exec: p.exec.as_ref().map(|e| ExecModel {
            command: e.command.clone(),
        }),
        grpc: p.grpc.as_ref().map(|g| GrpcModel {
            port: g.port.map(i64::from),
            service: empty_to_none(&g.service),
        }),
    });
    (metadata, template, probe)
}

/// The model after a refresh: live values, but where the live spec means the same as what
/// the prior state says (e.g. `labels = {}` vs no labels), the prior's spelling is kept so that
/// equivalent forms never show as a diff.
fn refresh(
    prior: &WorkloadGroupModel,
    live: &WorkloadGroup,
    namespace: &str,
    version: IstioApiVersion,
) -> WorkloadGroupModel {
    let mut refreshed = prior.clone();
    if spec_from_model(prior) != live.spec {
        let (metadata, template, probe) = spec_to_model(&live.spec);
        refreshed.metadata = metadata;
        refreshed.template = template;
        refreshed.probe = probe;
    }
    refreshed.labels = managed_entries(live.metadata.labels.as_ref(), &prior.labels);
    refreshed.annotations = managed_entries(live.metadata.annotations.as_ref(), &prior.annotations);
    set_computed(&mut refreshed, live, namespace, version);
    refreshed
}

fn model_from_live(
    live: &WorkloadGroup,
    namespace: &str,
    version: IstioApiVersion,
) -> WorkloadGroupModel {
    let (metadata, template, probe) = spec_to_model(&live.spec);
    let mut model = WorkloadGroupModel {
        name: live.metadata.name.clone().unwrap_or_default(),
        namespace: Some(namespace.to_string()),
        labels: non_empty(live.metadata.labels.as_ref()),
        annotations: non_empty(live.metadata.annotations.as_ref())
            .map(without_system_annotations)
            .filter(|a| !a.is_empty()),
        metadata,
        template,
        probe,
        ..Default::default()
    };
    set_computed(&mut model, live, namespace, version);
    model
}

/// Annotations Kubernetes tools write for themselves are not part of the user's configuration.
fn without_system_annotations(annotations: BTreeMap<String, String>) -> BTreeMap<String, String> {
    annotations
        .into_iter()
        .filter(|(key, _)| !key.starts_with("kubectl.kubernetes.io/"))
        .collect()
}

fn set_computed(
    model: &mut WorkloadGroupModel,
    live: &WorkloadGroup,
    namespace: &str,
    version: IstioApiVersion,
) {
    model.namespace = Some(namespace.to_string());
    model.id = Some(format!("{namespace}/{}", model.name));
    model.uid = live.metadata.uid.clone();
    model.api_version = Some(version.api_version());
}

fn object_from_model(model: &WorkloadGroupModel, namespace: &str) -> WorkloadGroup {
    let mut group = WorkloadGroup::new(&model.name, spec_from_model(model));
    group.metadata.namespace = Some(namespace.to_string());
    group.metadata.labels = model.labels.clone().filter(|l| !l.is_empty());
    group.metadata.annotations = model.annotations.clone().filter(|a| !a.is_empty());
    group
}

// ---- cluster calls ---------------------------------------------------------------------------

fn dynamic_api(client: &Client, namespace: &str, version: IstioApiVersion) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        namespace,
        &version.api_resource("WorkloadGroup"),
    )
}

/// `v1` when the cluster serves it, else `v1beta1` (Istio before 1.22 has no v1).
pub async fn served_version(client: &Client) -> Result<IstioApiVersion, KubeError> {
    for version in IstioApiVersion::PREFERENCE {
        match client
            .list_api_group_resources(&version.api_version())
            .await
        {
            Ok(list) if list.resources.iter().any(|r| r.name == "workloadgroups") => {
                return Ok(version);
            }
            Ok(_) => continue,
            Err(kube::Error::Api(status)) if status.code == 404 => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(KubeError::InvalidSetting {
        attribute: "istio_namespace",
        message: "the cluster serves no WorkloadGroup API (networking.istio.io/v1 or v1beta1): install Istio's CRDs first".into(),
    })
}

async fn apply(
    api: &Api<DynamicObject>,
    model: &WorkloadGroupModel,
    namespace: &str,
    version: IstioApiVersion,
    configured: &Configured,
) -> Result<WorkloadGroup, KubeError> {
    let object = to_dynamic(&object_from_model(model, namespace), version).map_err(|e| {
        KubeError::InvalidSetting {
            attribute: "name",
            message: e.to_string(),
        }
    })?;
    let force = model.force_conflicts.unwrap_or(false);
    let applied = server_side_apply(api, &model.name, &object, &configured.field_manager, force)
        .await
        .map_err(|error| with_kind(error, namespace))?;
    from_dynamic(applied).map_err(|e| KubeError::Watch {
        what: "the applied WorkloadGroup".into(),
        detail: e.to_string(),
    })
}

fn with_kind(error: KubeError, namespace: &str) -> KubeError {
    match error {
        KubeError::Conflict {
            name,
            managers,
            detail,
            ..
        } => KubeError::Conflict {
            kind: "WorkloadGroup".into(),
            namespace: namespace.into(),
            name,
            managers,
            detail,
        },
        other => other,
    }
}

async fn fetch(
    client: &Client,
    namespace: &str,
    name: &str,
    version: IstioApiVersion,
) -> Result<Option<WorkloadGroup>, KubeError> {
    let api = dynamic_api(client, namespace, version);
    match api.get_opt(name).await? {
        Some(object) => from_dynamic(object)
            .map(Some)
            .map_err(|e| KubeError::Watch {
                what: format!("WorkloadGroup {namespace}/{name}"),
                detail: e.to_string(),
            }),
        None => Ok(None),
    }
}

async fn delete_and_wait(
    api: &Api<DynamicObject>,
    name: &str,
    timeout: Duration,
    ctx: &Ctx,
) -> Result<(), KubeError> {
    let uid = match api.get_opt(name).await? {
        Some(object) => object.metadata.uid.unwrap_or_default(),
        None => return Ok(()),
    };
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
        Err(other) => return Err(other.into()),
    }
    wait_until_deleted(
        api,
        name,
        &uid,
        timeout,
        &ctx.cancelled,
        &format!("WorkloadGroup {name} to be deleted"),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tfplug::Type;

    fn seed_group() -> WorkloadGroupModel {
        WorkloadGroupModel {
            name: "product-vm".into(),
            namespace: Some("default".into()),
            metadata: Some(GroupMetadataModel {
                labels: Some(BTreeMap::from([("app".into(), "product".into())])),
                annotations: None,
            }),
            template: Some(TemplateModel {
                service_account: Some("default".into()),
                ..Default::default()
            }),
            probe: Some(ProbeModel {
                http_get: Some(HttpGetModel {
                    port: 8080,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn errors_for(model: &WorkloadGroupModel) -> Vec<(String, Option<AttributePath>)> {
        let mut diags = Diagnostics::new();
        validate_model(model, &mut diags);
        diags
            .errors()
            .map(|d| (d.summary.clone(), d.path.clone()))
            .collect()
    }

    #[test]
    fn seed_group_is_valid() {
        assert!(errors_for(&seed_group()).is_empty());
    }

    #[test]
    fn schema_has_blocks_and_replacement_markers() {
        let schema = Schema::from_model::<WorkloadGroupModel>(0);
        assert!(schema.block.attribute("name").unwrap().requires_replace);
        assert!(
            schema
                .block
                .attribute("namespace")
                .unwrap()
                .requires_replace
        );
        assert!(schema.block.attribute("uid").unwrap().computed);
        let probe = schema.block.block_type("probe").unwrap();
        assert!(probe.block.block_type("http_get").is_some());
        assert_eq!(
            schema.block.attribute("labels").unwrap().r#type,
            Type::map(Type::String)
        );
    }

    #[test]
    fn each_rule_names_its_attribute() {
        let mut bad = seed_group();
        bad.name = "Product_VM".into();
        assert_eq!(errors_for(&bad)[0].1, Some(AttributePath::new("name")));

        let mut bad = seed_group();
        bad.template.as_mut().unwrap().ports = Some(BTreeMap::from([("http".into(), 70000)]));
        assert_eq!(
            errors_for(&bad)[0].1,
            Some(AttributePath::new("template").attr("ports").key("http"))
        );

        let mut bad = seed_group();
        bad.probe.as_mut().unwrap().failure_threshold = Some(-1);
        assert_eq!(
            errors_for(&bad)[0].1,
            Some(AttributePath::new("probe").attr("failure_threshold"))
        );

        let mut bad = seed_group();
        bad.probe.as_mut().unwrap().tcp_socket = Some(TcpSocketModel {
            host: None,
            port: 80,
        });
        assert_eq!(errors_for(&bad)[0].0, "Probe needs exactly one handler");

        let mut bad = seed_group();
        bad.probe
            .as_mut()
            .unwrap()
            .http_get
            .as_mut()
            .unwrap()
            .scheme = Some("FTP".into());
        assert_eq!(
            errors_for(&bad)[0].1,
            Some(AttributePath::new("probe").attr("http_get").attr("scheme"))
        );

        let mut bad = seed_group();
        bad.template.as_mut().unwrap().weight = Some(-1);
        assert_eq!(
            errors_for(&bad)[0].1,
            Some(AttributePath::new("template").attr("weight"))
        );

        let mut bad = seed_group();
        bad.template.as_mut().unwrap().service_account = Some("Bad SA".into());
        assert_eq!(
            errors_for(&bad)[0].1,
            Some(AttributePath::new("template").attr("service_account"))
        );

        let mut bad = seed_group();
        bad.metadata.as_mut().unwrap().labels =
            Some(BTreeMap::from([("app".into(), "bad value".into())]));
        assert_eq!(
            errors_for(&bad)[0].1,
            Some(AttributePath::new("metadata").attr("labels").key("app"))
        );
    }

    /// The accept/reject differences with the pinned Istio (CRD schema + webhook) listed in
    /// issue "Field defects" item 5; each verdict is Istio's, not ours.
    type Change = Box<dyn Fn(&mut WorkloadGroupModel)>;

    #[test]
    fn validation_matches_istio_on_the_listed_cases() {
        let accepted: Vec<(&str, Change)> = vec![
            (
                "probe numbers of 0",
                Box::new(|g| {
                    let p = g.probe.as_mut().unwrap();
                    p.initial_delay_seconds = Some(0);
                    p.timeout_seconds = Some(0);
                    p.period_seconds = Some(0);
                    p.success_threshold = Some(0);
                    p.failure_threshold = Some(0);
                }),
            ),
            (
                "empty scheme",
                Box::new(|g| {
                    g.probe.as_mut().unwrap().http_get.as_mut().unwrap().scheme =
                        Some(String::new());
                }),
            ),
            (
                "weight 0",
                Box::new(|g| g.template.as_mut().unwrap().weight = Some(0)),
            ),
            (
                "upper-case port name",
                Box::new(|g| {
                    g.template.as_mut().unwrap().ports =
                        Some(BTreeMap::from([("HTTP-Web".into(), 8080)]));
                }),
            ),
            (
                "port name of 62 characters",
                Box::new(|g| {
                    g.template.as_mut().unwrap().ports =
                        Some(BTreeMap::from([("p".repeat(62), 8080)]));
                }),
            ),
        ];
        for (case, change) in accepted {
            let mut group = seed_group();
            change(&mut group);
            assert_eq!(errors_for(&group), vec![], "Istio accepts {case}");
        }
        let rejected: Vec<(&str, Change)> = vec![
            (
                "port name of 63 characters",
                Box::new(|g| {
                    g.template.as_mut().unwrap().ports =
                        Some(BTreeMap::from([("p".repeat(63), 8080)]));
                }),
            ),
            (
                "an empty string in exec.command",
                Box::new(|g| {
                    let p = g.probe.as_mut().unwrap();
                    p.http_get = None;
                    p.exec = Some(ExecModel {
                        command: vec!["check".into(), String::new()],
                    });
                }),
            ),
            (
                "257 template labels",
                Box::new(|g| {
                    g.template.as_mut().unwrap().labels = Some(
                        (0..257)
                            .map(|i| (format!("k{i}"), "v".to_string()))
                            .collect(),
                    );
                }),
            ),
            (
                "257 metadata labels",
                Box::new(|g| {
                    g.metadata.as_mut().unwrap().labels = Some(
                        (0..257)
                            .map(|i| (format!("k{i}"), "v".to_string()))
                            .collect(),
                    );
                }),
            ),
            (
                "129 ports",
                Box::new(|g| {
                    g.template.as_mut().unwrap().ports =
                        Some((0..129).map(|i| (format!("p{i}"), 1000 + i)).collect());
                }),
            ),
            (
                "a gRPC probe (the webhook has no case for it)",
                Box::new(|g| {
                    let p = g.probe.as_mut().unwrap();
                    p.http_get = None;
                    p.grpc = Some(GrpcModel {
                        port: Some(9090),
                        service: None,
                    });
                }),
            ),
            (
                "a network istiod cannot put into an entry name",
                Box::new(|g| {
                    g.template.as_mut().unwrap().network = Some("Net_1".into());
                }),
            ),
            (
                "a locality of four parts",
                Box::new(|g| {
                    g.template.as_mut().unwrap().locality = Some("a/b/c/d".into());
                }),
            ),
        ];
        for (case, change) in rejected {
            let mut group = seed_group();
            change(&mut group);
            assert!(!errors_for(&group).is_empty(), "Istio rejects {case}");
        }
    }

    #[test]
    fn model_and_spec_round_trip() {
        let model = seed_group();
        let spec = spec_from_model(&model);
        let (metadata, template, probe) = spec_to_model(&spec);
        assert_eq!(metadata, model.metadata);
        assert_eq!(template, model.template);
        assert_eq!(probe, model.probe);
    }

    #[test]
    fn refresh_keeps_equivalent_spelling_and_shows_real_drift() {
        let mut prior = seed_group();
        prior.template.as_mut().unwrap().labels = Some(BTreeMap::new());
        prior.labels = Some(BTreeMap::new());
        let live = object_from_model(&prior, "default");
        let refreshed = refresh(&prior, &live, "default", IstioApiVersion::V1);
        assert_eq!(refreshed.template, prior.template);
        assert_eq!(refreshed.labels, Some(BTreeMap::new()));

        let mut drifted = live.clone();
        drifted.spec.template.service_account = "other".into();
        let refreshed = refresh(&prior, &drifted, "default", IstioApiVersion::V1);
        assert_eq!(
            refreshed.template.unwrap().service_account.as_deref(),
            Some("other")
        );
    }
}
