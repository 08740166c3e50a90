//! Resource `istio_mesh_service`: the Kubernetes Service that gives Pods and VMs of one app a
//! single stable hostname, with an optional wait until enough of them really serve.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::watcher;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::common::{
    Operation, TimeoutsModel, managed_entries, non_empty, parse_import_id, report,
    validate_annotations, validate_labels, validate_namespace,
};
use crate::cluster::KubeError;
use crate::cluster::apply::server_side_apply;
use crate::cluster::wait::wait_until_deleted;
use crate::istio::crd::WorkloadEntry;
use crate::istio::entry_health;
use crate::provider::ProviderHandle;
use crate::tfplug::{
    AttributePath, Ctx, Diagnostics, Plan, Resource, Schema, UnknownAs, Value, decode, encode,
};
use crate::validation;

const DEFAULT_NAMESPACE: &str = "default";
const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Port-name prefixes from which Istio infers the protocol (`<protocol>[-<suffix>]`).
const ISTIO_PROTOCOL_PREFIXES: [&str; 11] = [
    "grpc", "grpc-web", "http", "http2", "https", "mongo", "mysql", "redis", "tcp", "tls", "udp",
];

/// A Kubernetes Service that selects Pods and WorkloadEntries (VMs) alike by label, so clients
/// call `<name>.<namespace>.svc.<cluster_domain>` and are balanced across both, and Istio
/// routing (DestinationRule, VirtualService) applies to VMs too. With a `wait` block,
/// create and update return only when enough endpoints serve: ready Pod addresses plus healthy
/// VMs — the natural place for a module to wait until VMs it just created joined the mesh.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct MeshServiceModel {
    /// `<namespace>/<name>`.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub id: Option<String>,
    /// Name of the Service (a DNS-1123 label). Changing it replaces the Service.
    #[schemars(extend("x-tf" = {"requires_replace": true}))]
    #[serde(deserialize_with = "crate::tfplug::null_as_default")]
    pub name: String,
    /// Namespace of the Service. Default `default`. Changing it replaces the Service.
    #[schemars(extend("x-tf" = {"optional_computed": true, "requires_replace": true}))]
    pub namespace: Option<String>,
    /// Labels of the Service. Keys other tools add are ignored.
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations of the Service. Keys other tools add are ignored.
    pub annotations: Option<BTreeMap<String, String>>,
    /// Labels that select the Pods and WorkloadEntries behind the Service (e.g. the
    /// WorkloadGroup's `metadata.labels`). Must not be empty.
    #[serde(deserialize_with = "crate::tfplug::null_as_default")]
    pub selector: BTreeMap<String, String>,
    /// Ports of the Service.
    #[schemars(extend("x-tf" = {"block": "list", "min_items": 1}))]
    pub ports: Vec<PortModel>,
    /// `ClusterIP` (default), `NodePort` or `LoadBalancer`.
    #[serde(rename = "type")]
    pub service_type: Option<String>,
    /// `None` (default) or `ClientIP`.
    pub session_affinity: Option<String>,
    /// DNS domain of the cluster, used for `hostname`. Default `cluster.local`.
    pub cluster_domain: Option<String>,
    /// Wait on create and update until enough endpoints serve.
    #[schemars(extend("x-tf" = {"block": "single"}))]
    pub wait: Option<WaitModel>,
    /// Take ownership of fields another field manager owns instead of failing with a conflict.
    pub force_conflicts: Option<bool>,
    #[schemars(extend("x-tf" = {"block": "single"}))]
    pub timeouts: Option<TimeoutsModel>,
    /// Virtual IP Kubernetes assigned to the Service.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub cluster_ip: Option<String>,
    /// Stable name clients use: `<name>.<namespace>.svc.<cluster_domain>`.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub hostname: Option<String>,
    /// Endpoints behind the Service at the last refresh.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub endpoints: Option<EndpointSummary>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct PortModel {
    /// Port name; Istio infers the protocol from prefixes like `http-`, `grpc-`, `tcp-`
    /// unless `app_protocol` is set. Required when there is more than one port.
    pub name: Option<String>,
    /// Port the Service listens on (1–65535).
    #[serde(deserialize_with = "crate::tfplug::null_as_default")]
    pub port: i64,
    /// Port (number) or port name on the Pods and VMs; default `port`.
    pub target_port: Option<String>,
    /// `TCP` (default), `UDP` or `SCTP`.
    pub protocol: Option<String>,
    /// Application protocol (e.g. `http`, `grpc`), used by Istio instead of the port name.
    pub app_protocol: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct WaitModel {
    /// How many endpoints must serve: ready Pod addresses plus healthy VMs. A VM counts as
    /// istiod counts it: a health-checked WorkloadEntry (its group has a probe) once istiod
    /// reports `Healthy=True`, any other entry as soon as it exists.
    #[serde(deserialize_with = "crate::tfplug::null_as_default")]
    pub min_healthy_endpoints: i64,
    /// How long to wait, e.g. `5m` (default).
    pub timeout: Option<String>,
}

/// What serves behind the Service, per kind.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct EndpointSummary {
    /// Ready Pod addresses (from EndpointSlices).
    pub pods_ready: i64,
    /// Pod addresses that are not ready.
    pub pods_not_ready: i64,
    /// WorkloadEntries that are `Healthy=True` or not health-checked.
    pub vms_healthy: i64,
    /// Health-checked WorkloadEntries not (yet) reported healthy.
    pub vms_unhealthy: i64,
    /// `pods_ready + vms_healthy`.
    pub healthy: i64,
    /// One line per unhealthy VM: `<entry>: <istiod's message>`.
    pub unhealthy_vms: Vec<String>,
}

pub struct MeshServiceResource {
    handle: Arc<ProviderHandle>,
}

impl MeshServiceResource {
    pub fn new(handle: Arc<ProviderHandle>) -> Self {
        MeshServiceResource { handle }
    }
}

#[async_trait]
impl Resource for MeshServiceResource {
    fn type_name(&self) -> &'static str {
        "istio_mesh_service"
    }

    fn schema(&self) -> Schema {
        Schema::from_model::<MeshServiceModel>(0)
    }

    async fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        super::common::validate_config::<MeshServiceModel>(config, diags, |model, diags| {
            validate_model(model, config, diags)
        });
    }

    async fn plan(&self, _ctx: &Ctx, plan: &mut Plan, _diags: &mut Diagnostics) {
        if plan.planned.is_null() {
            return;
        }
        super::common::plan_default(plan, "namespace", Value::string(DEFAULT_NAMESPACE));
        let planned = plan.planned.clone();
        let text = |name: &str| {
            planned
                .get_attr(name)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let hostname = match (text("name"), text("namespace")) {
            (Some(name), Some(namespace)) => {
                let domain = match planned.get_attr("cluster_domain") {
                    Some(Value::String(domain)) => Some(domain.clone()),
                    Some(Value::Null) | None => Some(DEFAULT_CLUSTER_DOMAIN.to_string()),
                    _ => None,
                };
                domain.map(|d| Value::string(format!("{name}.{namespace}.svc.{d}")))
            }
            _ => None,
        };
        plan.planned
            .set_attr("hostname", hostname.unwrap_or(Value::Unknown));
        if plan.is_create() {
            let id = match (text("namespace"), text("name")) {
                (Some(ns), Some(name)) => Value::string(format!("{ns}/{name}")),
                _ => Value::Unknown,
            };
            plan.planned.set_attr("id", id);
        } else if plan.prior.as_ref() != Some(&plan.planned) {
            // An update re-counts the endpoints.
            plan.planned.set_attr("endpoints", Value::Unknown);
        }
    }

    async fn create(&self, ctx: &Ctx, planned: Value, diags: &mut Diagnostics) -> Option<Value> {
        let mut model = decode::<MeshServiceModel>(&planned, UnknownAs::Null, diags)?;
        let configured = self.handle.configured(diags).await?;
        let namespace = namespace_of(&model);
        let api: Api<Service> = Api::namespaced(configured.client.clone(), &namespace);
        match api.get_opt(&model.name).await {
            Ok(Some(_)) => {
                diags.error(
                    "Service already exists",
                    format!(
                        "{namespace}/{0} already exists. Import it (`terraform import <address> {namespace}/{0}`) or choose another name.",
                        model.name
                    ),
                    AttributePath::new("name"),
                );
                return None;
            }
            Ok(None) => {}
            Err(error) => return report(diags, "Cannot create Service", error.into()),
        }
        let applied = match server_side_apply(
            &api,
            &model.name,
            &service_from_model(&model),
            &configured.field_manager,
            model.force_conflicts.unwrap_or(false),
        )
        .await
        {
            Ok(applied) => applied,
            Err(error) => return report(diags, "Cannot create Service", error),
        };
        set_computed(&mut model, &applied);
        let waited = self
            .wait_and_summarise(&mut model, &configured.client, ctx, Operation::Create)
            .await;
        self.state_after_wait(&model, waited, diags)
    }

    async fn read(&self, _ctx: &Ctx, state: Value, diags: &mut Diagnostics) -> Option<Value> {
        let prior = decode::<MeshServiceModel>(&state, UnknownAs::Null, diags)?;
        let configured = self.handle.configured(diags).await?;
        let namespace = namespace_of(&prior);
        let api: Api<Service> = Api::namespaced(configured.client.clone(), &namespace);
        let live = match api.get_opt(&prior.name).await {
            Ok(Some(live)) => live,
            Ok(None) => return None,
            Err(error) => {
                report::<()>(diags, "Cannot read Service", error.into());
                return Some(state);
            }
        };
        let mut refreshed = refresh(&prior, &live);
        match summarise(
            &configured.client,
            &namespace,
            &refreshed.name,
            &refreshed.selector,
        )
        .await
        {
            Ok(summary) => refreshed.endpoints = Some(summary),
            Err(error) => report::<()>(diags, "Cannot count endpoints", error).unwrap_or(()),
        }
        encode(&refreshed, &self.schema(), diags)
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: Value,
        planned: Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let mut model = decode::<MeshServiceModel>(&planned, UnknownAs::Null, diags)?;
        let configured = self.handle.configured(diags).await?;
        let api: Api<Service> = Api::namespaced(configured.client.clone(), &namespace_of(&model));
        let applied = match server_side_apply(
            &api,
            &model.name,
            &service_from_model(&model),
            &configured.field_manager,
            model.force_conflicts.unwrap_or(false),
        )
        .await
        {
            Ok(applied) => applied,
            Err(error) => {
                report::<()>(diags, "Cannot update Service", error);
                return Some(prior);
            }
        };
        set_computed(&mut model, &applied);
        let waited = self
            .wait_and_summarise(&mut model, &configured.client, ctx, Operation::Update)
            .await;
        self.state_after_wait(&model, waited, diags)
    }

    async fn delete(&self, ctx: &Ctx, prior: Value, diags: &mut Diagnostics) {
        let Some(model) = decode::<MeshServiceModel>(&prior, UnknownAs::Null, diags) else {
            return;
        };
        let Some(configured) = self.handle.configured(diags).await else {
            return;
        };
        let api: Api<Service> = Api::namespaced(configured.client.clone(), &namespace_of(&model));
        let uid = match api.get_opt(&model.name).await {
            Ok(Some(service)) => service.metadata.uid.unwrap_or_default(),
            Ok(None) => return,
            Err(error) => {
                return report::<()>(diags, "Cannot delete Service", error.into()).unwrap_or(());
            }
        };
        if let Err(error) = api.delete(&model.name, &DeleteParams::default()).await {
            if !matches!(&error, kube::Error::Api(status) if status.code == 404) {
                return report::<()>(diags, "Cannot delete Service", error.into()).unwrap_or(());
            }
        }
        let timeout = TimeoutsModel::get(&model.timeouts, Operation::Delete, DEFAULT_TIMEOUT);
        if let Err(error) = wait_until_deleted(
            &api,
            &model.name,
            &uid,
            timeout,
            &ctx.cancelled,
            &format!("Service {} to be deleted", model.name),
        )
        .await
        {
            report::<()>(diags, "Cannot delete Service", error);
        }
    }

    async fn import(&self, _ctx: &Ctx, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        let (namespace, name) = parse_import_id(id, diags)?;
        let configured = self.handle.configured(diags).await?;
        let api: Api<Service> = Api::namespaced(configured.client.clone(), &namespace);
        let live = match api.get_opt(&name).await {
            Ok(Some(live)) => live,
            Ok(None) => {
                diags.root_error(
                    "Cannot import Service",
                    format!("Service {namespace}/{name} does not exist."),
                );
                return None;
            }
            Err(error) => return report(diags, "Cannot import Service", error.into()),
        };
        let mut model = model_from_live(&live);
        model.endpoints = summarise(&configured.client, &namespace, &name, &model.selector)
            .await
            .ok();
        encode(&model, &self.schema(), diags)
    }
}

impl MeshServiceResource {
    /// The state to save after apply: a failed wait is an error on `wait`, and the state is
    /// kept so the Service that exists is not lost.
    fn state_after_wait(
        &self,
        model: &MeshServiceModel,
        waited: Result<(), String>,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let state = encode(model, &self.schema(), diags);
        if let Err(error) = waited {
            diags.error(
                "Not enough healthy endpoints",
                error,
                AttributePath::new("wait"),
            );
        }
        state
    }

    /// Waits when asked, then records the endpoint summary; the error text lists what was
    /// found per kind.
    async fn wait_and_summarise(
        &self,
        model: &mut MeshServiceModel,
        client: &kube::Client,
        ctx: &Ctx,
        operation: Operation,
    ) -> Result<(), String> {
        let namespace = namespace_of(model);
        let Some(wait) = model.wait.clone() else {
            model.endpoints = summarise(client, &namespace, &model.name, &model.selector)
                .await
                .ok();
            return Ok(());
        };
        let timeout = wait
            .timeout
            .as_deref()
            .and_then(|t| validation::duration(t).ok())
            .unwrap_or_else(|| TimeoutsModel::get(&model.timeouts, operation, DEFAULT_TIMEOUT));
        let outcome = wait_for_endpoints(
            client,
            &namespace,
            &model.name,
            &model.selector,
            wait.min_healthy_endpoints,
            timeout,
            &ctx.cancelled,
        )
        .await;
        match outcome {
            Ok(summary) => {
                model.endpoints = Some(summary);
                Ok(())
            }
            Err((error, summary)) => {
                let text = describe(&summary, wait.min_healthy_endpoints);
                model.endpoints = Some(summary);
                Err(format!("{error}. {text}"))
            }
        }
    }
}

fn namespace_of(model: &MeshServiceModel) -> String {
    model
        .namespace
        .clone()
        .unwrap_or_else(|| DEFAULT_NAMESPACE.into())
}

// ---- validation ----------------------------------------------------------------------------

fn validate_model(model: &MeshServiceModel, config: &Value, diags: &mut Diagnostics) {
    if config.get_attr("name").is_some_and(Value::is_known) {
        if let Err(problem) = validation::dns1123_label(&model.name) {
            diags.error("Invalid name", problem, AttributePath::new("name"));
        }
    }
    if let Some(namespace) = &model.namespace {
        validate_namespace(namespace, AttributePath::new("namespace"), diags);
    }
    validate_labels(&model.labels, AttributePath::new("labels"), diags);
    validate_annotations(&model.annotations, AttributePath::new("annotations"), diags);
    if config
        .get_attr("selector")
        .is_some_and(Value::is_fully_known)
        && model.selector.is_empty()
    {
        diags.error(
            "Empty selector",
            "selector must name at least one label (e.g. app = \"product\"): an empty selector would select nothing for VMs and is reserved for Services without selectors.",
            AttributePath::new("selector"),
        );
    }
    validate_labels(
        &Some(model.selector.clone()),
        AttributePath::new("selector"),
        diags,
    );
    validate_ports(&model.ports, diags);
    if let Some(kind) = model
        .service_type
        .as_deref()
        .filter(|t| !["ClusterIP", "NodePort", "LoadBalancer"].contains(t))
    {
        diags.error(
            "Invalid type",
            format!("type {kind:?} is not supported: use ClusterIP, NodePort or LoadBalancer"),
            AttributePath::new("type"),
        );
    }
    if let Some(affinity) = model
        .session_affinity
        .as_deref()
        .filter(|a| !["None", "ClientIP"].contains(a))
    {
        diags.error(
            "Invalid session_affinity",
            format!("{affinity:?} is not supported: use None or ClientIP"),
            AttributePath::new("session_affinity"),
        );
    }
    if let Some(domain) = &model.cluster_domain {
        if let Err(problem) = validation::dns1123_subdomain(domain) {
            diags.error(
                "Invalid cluster_domain",
                problem,
                AttributePath::new("cluster_domain"),
            );
        }
    }
    if let Some(wait) = &model.wait {
        if wait.min_healthy_endpoints < 1 {
            diags.error(
                "Invalid min_healthy_endpoints",
                "min_healthy_endpoints must be at least 1",
                AttributePath::new("wait").attr("min_healthy_endpoints"),
            );
        }
        if let Some(Err(problem)) = wait.timeout.as_deref().map(validation::duration) {
            diags.error(
                "Invalid timeout",
                problem,
                AttributePath::new("wait").attr("timeout"),
            );
        }
    }
    if let Some(timeouts) = &model.timeouts {
        timeouts.validate(diags);
    }
}

fn validate_ports(ports: &[PortModel], diags: &mut Diagnostics) {
    let mut names = BTreeSet::new();
    let mut numbers = BTreeSet::new();
    for (index, port) in ports.iter().enumerate() {
        let path = AttributePath::new("ports").index(index as i64);
        if let Err(problem) = validation::port(port.port) {
            diags.error("Invalid port", problem, path.clone().attr("port"));
        }
        let protocol = port.protocol.as_deref().unwrap_or("TCP");
        if !["TCP", "UDP", "SCTP"].contains(&protocol) {
            diags.error(
                "Invalid protocol",
                format!("protocol {protocol:?} is not supported: use TCP, UDP or SCTP"),
                path.clone().attr("protocol"),
            );
        }
        if !numbers.insert((port.port, protocol.to_string())) {
            diags.error(
                "Duplicate port",
                format!("port {} / {protocol} appears more than once", port.port),
                path.clone().attr("port"),
            );
        }
        match port.name.as_deref() {
            Some(name) => {
                if let Err(problem) = validation::dns1123_label(name) {
                    diags.error("Invalid port name", problem, path.clone().attr("name"));
                }
                if !names.insert(name.to_string()) {
                    diags.error(
                        "Duplicate port name",
                        format!("port name {name:?} appears more than once"),
                        path.clone().attr("name"),
                    );
                }
                if port.app_protocol.is_none() && !has_istio_protocol_prefix(name) {
                    diags.warning(
                        "Istio cannot tell this port's protocol",
                        format!("Port name {name:?} has no Istio protocol prefix (http-, grpc-, tcp-, …) and `app_protocol` is unset, so Istio treats the traffic as opaque TCP (or sniffs it). Name it e.g. \"http-{name}\" or set app_protocol."),
                        path.clone().attr("name"),
                    );
                }
            }
            None if ports.len() > 1 => diags.error(
                "Missing port name",
                "Every port needs a name when the Service has more than one port.",
                path.clone().attr("name"),
            ),
            None => {}
        }
        if let Some(target) = port.target_port.as_deref() {
            let valid = match target.parse::<i64>() {
                Ok(number) => validation::port(number).is_ok(),
                Err(_) => validation::dns1123_label(target).is_ok() && target.len() <= 15,
            };
            if !valid {
                diags.error(
                    "Invalid target_port",
                    format!("{target:?} must be a port number 1–65535 or a port name of at most 15 characters"),
                    path.clone().attr("target_port"),
                );
            }
        }
    }
}

fn has_istio_protocol_prefix(name: &str) -> bool {
    ISTIO_PROTOCOL_PREFIXES
        .iter()
        .any(|prefix| name == *prefix || name.starts_with(&format!("{prefix}-")))
}

// ---- model ⇄ Kubernetes ----------------------------------------------------------------------

fn service_from_model(model: &MeshServiceModel) -> Service {
    Service {
        metadata: kube::api::ObjectMeta {
            name: Some(model.name.clone()),
            namespace: Some(namespace_of(model)),
            labels: model.labels.clone().filter(|l| !l.is_empty()),
            annotations: model.annotations.clone().filter(|a| !a.is_empty()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(model.selector.clone()),
            ports: Some(model.ports.iter().map(service_port).collect()),
            type_: model.service_type.clone(),
            session_affinity: model.session_affinity.clone(),
            ..Default::default()
        }),
        status: None,
    }
}

fn service_port(port: &PortModel) -> ServicePort {
    ServicePort {
        name: port.name.clone(),
        port: port.port as i32,
        target_port: port.target_port.as_deref().map(|t| match t.parse::<i32>() {
            Ok(number) => IntOrString::Int(number),
            Err(_) => IntOrString::String(t.to_string()),
        }),
        protocol: port.protocol.clone(),
        app_protocol: port.app_protocol.clone(),
        ..Default::default()
    }
}

/// A port as the API server stores it: defaults made explicit, so a comparison ignores them.
fn normalised_port(port: &PortModel) -> PortModel {
    PortModel {
        name: port.name.clone().filter(|n| !n.is_empty()),
        port: port.port,
        target_port: Some(
            port.target_port
                .clone()
                .unwrap_or_else(|| port.port.to_string()),
        ),
        protocol: Some(port.protocol.clone().unwrap_or_else(|| "TCP".into())),
        app_protocol: port.app_protocol.clone(),
    }
}

fn port_from_live(port: &ServicePort) -> PortModel {
    PortModel {
        name: port.name.clone().filter(|n| !n.is_empty()),
        port: i64::from(port.port),
        target_port: port.target_port.as_ref().map(|t| match t {
            IntOrString::Int(number) => number.to_string(),
            IntOrString::String(name) => name.clone(),
        }),
        protocol: port.protocol.clone(),
        app_protocol: port.app_protocol.clone(),
    }
}

/// Keeps the prior's spelling of everything the live Service means the same way (defaults
/// filled in by the API server are not drift), takes live values where they really differ.
fn refresh(prior: &MeshServiceModel, live: &Service) -> MeshServiceModel {
    let mut refreshed = prior.clone();
    let spec = live.spec.clone().unwrap_or_default();
    let live_ports: Vec<PortModel> = spec.ports.iter().flatten().map(port_from_live).collect();
    let same_ports = live_ports.iter().map(normalised_port).collect::<Vec<_>>()
        == prior.ports.iter().map(normalised_port).collect::<Vec<_>>();
    if !same_ports {
        refreshed.ports = live_ports;
    }
    refreshed.selector = spec.selector.clone().unwrap_or_default();
    if spec.type_.as_deref().unwrap_or("ClusterIP")
        != prior.service_type.as_deref().unwrap_or("ClusterIP")
    {
        refreshed.service_type = spec.type_.clone();
    }
    if spec.session_affinity.as_deref().unwrap_or("None")
        != prior.session_affinity.as_deref().unwrap_or("None")
    {
        refreshed.session_affinity = spec.session_affinity.clone();
    }
    refreshed.labels = managed_entries(live.metadata.labels.as_ref(), &prior.labels);
    refreshed.annotations = managed_entries(live.metadata.annotations.as_ref(), &prior.annotations);
    set_computed(&mut refreshed, live);
    refreshed
}

fn model_from_live(live: &Service) -> MeshServiceModel {
    let spec = live.spec.clone().unwrap_or_default();
    let mut model = MeshServiceModel {
        name: live.metadata.name.clone().unwrap_or_default(),
        namespace: live.metadata.namespace.clone(),
        labels: non_empty(live.metadata.labels.as_ref()),
        annotations: non_empty(live.metadata.annotations.as_ref())
            .map(|a| {
                a.into_iter()
                    .filter(|(k, _)| !k.starts_with("kubectl.kubernetes.io/"))
                    .collect::<BTreeMap<_, _>>()
            })
            .filter(|a| !a.is_empty()),
        selector: spec.selector.clone().unwrap_or_default(),
        ports: spec
            .ports
            .iter()
            .flatten()
            .map(port_from_live)
            .map(|p| simplify_port(&p))
            .collect(),
        service_type: spec.type_.clone().filter(|t| t != "ClusterIP"),
        session_affinity: spec.session_affinity.clone().filter(|a| a != "None"),
        ..Default::default()
    };
    set_computed(&mut model, live);
    model
}

/// Drops values equal to their defaults, the way a user would write the port.
fn simplify_port(port: &PortModel) -> PortModel {
    PortModel {
        target_port: port
            .target_port
            .clone()
            .filter(|t| *t != port.port.to_string()),
        protocol: port.protocol.clone().filter(|p| p != "TCP"),
        ..port.clone()
    }
}

fn set_computed(model: &mut MeshServiceModel, live: &Service) {
    let namespace = namespace_of(model);
    model.namespace = Some(namespace.clone());
    model.id = Some(format!("{namespace}/{}", model.name));
    model.cluster_ip = live.spec.as_ref().and_then(|s| s.cluster_ip.clone());
    let domain = model
        .cluster_domain
        .clone()
        .unwrap_or_else(|| DEFAULT_CLUSTER_DOMAIN.into());
    model.hostname = Some(format!("{}.{namespace}.svc.{domain}", model.name));
}

// ---- endpoints -------------------------------------------------------------------------------

fn selector_string(selector: &BTreeMap<String, String>) -> String {
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Counts what serves now, with one list of each kind.
async fn summarise(
    client: &kube::Client,
    namespace: &str,
    service: &str,
    selector: &BTreeMap<String, String>,
) -> Result<EndpointSummary, KubeError> {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    let entries: Api<WorkloadEntry> = Api::namespaced(client.clone(), namespace);
    let slices = slices
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={service}")))
        .await?
        .items;
    let entries = match entries
        .list(&ListParams::default().labels(&selector_string(selector)))
        .await
    {
        Ok(list) => list.items,
        // A cluster without Istio's CRDs has no VMs to count.
        Err(kube::Error::Api(status)) if status.code == 404 => Vec::new(),
        Err(other) => return Err(other.into()),
    };
    Ok(count(slices.iter(), entries.iter()))
}

fn count<'a>(
    slices: impl Iterator<Item = &'a EndpointSlice>,
    entries: impl Iterator<Item = &'a WorkloadEntry>,
) -> EndpointSummary {
    let mut summary = EndpointSummary::default();
    for slice in slices {
        for endpoint in slice.endpoints.iter().flatten() {
            let addresses = endpoint.addresses.len() as i64;
            // A WorkloadEntry mirrored into an EndpointSlice would be counted twice; Pods have a targetRef of kind Pod.
            if endpoint
                .target_ref
                .as_ref()
                .and_then(|r| r.kind.as_deref())
                .is_some_and(|kind| kind != "Pod")
            {
                continue;
            }
            if endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .unwrap_or(true)
            {
                summary.pods_ready += addresses;
            } else {
                summary.pods_not_ready += addresses;
            }
        }
    }
    for entry in entries {
        let health = entry_health(entry);
        if health.healthy {
            summary.vms_healthy += 1;
        } else {
            summary.vms_unhealthy += 1;
            let name = entry.metadata.name.clone().unwrap_or_default();
            summary
                .unhealthy_vms
                .push(format!("{name}: {}", health.message));
        }
    }
    summary.healthy = summary.pods_ready + summary.vms_healthy;
    summary
}

fn describe(summary: &EndpointSummary, wanted: i64) -> String {
    let mut text = format!(
        "Wanted {wanted} healthy endpoint(s), found {}: Pods {} ready / {} not ready (EndpointSlices), VMs {} healthy / {} unhealthy (WorkloadEntries).",
        summary.healthy,
        summary.pods_ready,
        summary.pods_not_ready,
        summary.vms_healthy,
        summary.vms_unhealthy
    );
    for line in &summary.unhealthy_vms {
        text.push_str(&format!("\n  - {line}"));
    }
    text
}

/// Watches EndpointSlices of the Service and WorkloadEntries matching the selector until
/// enough serve; never polls.
async fn wait_for_endpoints(
    client: &kube::Client,
    namespace: &str,
    service: &str,
    selector: &BTreeMap<String, String>,
    wanted: i64,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<EndpointSummary, (KubeError, EndpointSummary)> {
    use futures::StreamExt;
    let slices_api: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    let entries_api: Api<WorkloadEntry> = Api::namespaced(client.clone(), namespace);
    let slice_stream = watcher(
        slices_api,
        watcher::Config::default().labels(&format!("kubernetes.io/service-name={service}")),
    );
    let entry_stream = watcher(
        entries_api,
        watcher::Config::default().labels(&selector_string(selector)),
    );
    let mut slice_stream = std::pin::pin!(slice_stream);
    let mut entry_stream = std::pin::pin!(entry_stream);
    let mut slices: BTreeMap<String, EndpointSlice> = BTreeMap::new();
    let mut entries: BTreeMap<String, WorkloadEntry> = BTreeMap::new();
    let deadline = tokio::time::sleep(timeout);
    let mut deadline = std::pin::pin!(deadline);
    let what = format!("{wanted} healthy endpoint(s) of Service {namespace}/{service}");
    loop {
        let summary = count(slices.values(), entries.values());
        if summary.healthy >= wanted {
            return Ok(summary);
        }
        tokio::select! {
            _ = cancel.cancelled() => return Err((KubeError::Cancelled(what), summary)),
            _ = &mut deadline => return Err((KubeError::Timeout { what, seconds: timeout.as_secs() }, summary)),
            Some(event) = slice_stream.next() => track(&mut slices, event),
            Some(event) = entry_stream.next() => track(&mut entries, event),
        }
    }
}

fn track<K: kube::Resource>(
    objects: &mut BTreeMap<String, K>,
    event: Result<watcher::Event<K>, watcher::Error>,
) {
    let name = |object: &K| object.meta().name.clone().unwrap_or_default();
    match event {
        Ok(watcher::Event::Apply(object)) | Ok(watcher::Event::InitApply(object)) => {
            objects.insert(name(&object), object);
        }
        Ok(watcher::Event::Delete(object)) => {
            objects.remove(&name(&object));
        }
        Ok(watcher::Event::Init) => objects.clear(),
        Ok(watcher::Event::InitDone) => {}
        Err(error) => tracing::debug!(%error, "watch error while counting endpoints"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::istio::HEALTH_CHECKS_ENABLED_ANNOTATION;
    use crate::istio::crd::{IstioCondition, IstioStatus, WorkloadEntrySpec};
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions};

    fn base() -> MeshServiceModel {
        MeshServiceModel {
            name: "product".into(),
            selector: BTreeMap::from([("app".into(), "product".into())]),
            ports: vec![PortModel {
                name: Some("http".into()),
                port: 8080,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn diagnostics(model: &MeshServiceModel) -> Diagnostics {
        let schema = Schema::from_model::<MeshServiceModel>(0);
        let config = encode(model, &schema, &mut Diagnostics::new()).unwrap();
        let mut diags = Diagnostics::new();
        validate_model(model, &config, &mut diags);
        diags
    }

    #[test]
    fn valid_service_has_no_errors_or_warnings() {
        let diags = diagnostics(&base());
        assert!(diags.is_empty(), "{diags:?}");
    }

    #[test]
    fn rules_name_their_attributes() {
        let port = |name: &str, number: i64| PortModel {
            name: Some(name.into()),
            port: number,
            ..Default::default()
        };
        let cases: Vec<(fn(&mut MeshServiceModel), AttributePath)> = vec![
            (|m| m.selector.clear(), AttributePath::new("selector")),
            (
                |m| m.ports[0].port = 0,
                AttributePath::new("ports").index(0).attr("port"),
            ),
            (
                |m| m.ports[0].protocol = Some("ICMP".into()),
                AttributePath::new("ports").index(0).attr("protocol"),
            ),
        ];
        for (break_it, path) in cases {
            let mut m = base();
            break_it(&mut m);
            assert_eq!(diagnostics(&m).errors().next().unwrap().path, Some(path));
        }
        for (extra, path) in [
            (
                port("http", 9090),
                AttributePath::new("ports").index(1).attr("name"),
            ),
            (
                port("grpc", 8080),
                AttributePath::new("ports").index(1).attr("port"),
            ),
        ] {
            let mut m = base();
            m.ports.push(extra);
            assert_eq!(diagnostics(&m).errors().next().unwrap().path, Some(path));
        }
    }

    #[test]
    fn unprefixed_port_name_warns_unless_app_protocol_is_set() {
        let mut m = base();
        m.ports[0].name = Some("web".into());
        let diags = diagnostics(&m);
        assert!(!diags.has_errors());
        assert!(!diags.is_empty(), "expected a warning");
        m.ports[0].app_protocol = Some("http".into());
        assert!(diagnostics(&m).is_empty());
        assert!(
            has_istio_protocol_prefix("http-web")
                && has_istio_protocol_prefix("grpc")
                && !has_istio_protocol_prefix("httpx")
        );
    }

    #[test]
    fn server_defaults_are_not_drift() {
        let prior = base();
        let mut live = service_from_model(&prior);
        let port = &mut live.spec.as_mut().unwrap().ports.as_mut().unwrap()[0];
        port.protocol = Some("TCP".into());
        port.target_port = Some(IntOrString::Int(8080));
        live.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
        live.spec.as_mut().unwrap().session_affinity = Some("None".into());
        let refreshed = refresh(&prior, &live);
        assert_eq!(refreshed.ports, prior.ports);
        assert_eq!(refreshed.service_type, None);
        live.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = 9999;
        assert_eq!(refresh(&prior, &live).ports[0].port, 9999);
    }

    fn entry(name: &str, checked: bool, status: Option<&str>) -> WorkloadEntry {
        let mut e = WorkloadEntry::new(name, WorkloadEntrySpec::default());
        if checked {
            e.metadata.annotations = Some(BTreeMap::from([(
                HEALTH_CHECKS_ENABLED_ANNOTATION.to_string(),
                "true".to_string(),
            )]));
        }
        e.status = status.map(|s| IstioStatus {
            conditions: vec![IstioCondition {
                type_: "Healthy".into(),
                status: s.into(),
                message: Some("probe failed".into()),
                ..Default::default()
            }],
            ..Default::default()
        });
        e
    }

    #[test]
    fn counting_per_kind() {
        let slice = EndpointSlice {
            endpoints: Some(vec![
                Endpoint {
                    addresses: vec!["10.1.0.1".into()],
                    conditions: Some(EndpointConditions {
                        ready: Some(true),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                Endpoint {
                    addresses: vec!["10.1.0.2".into()],
                    conditions: Some(EndpointConditions {
                        ready: Some(false),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let entries = [
            entry("vm-a", true, Some("True")),
            entry("vm-b", true, Some("False")),
            entry("vm-c", true, None),
            entry("vm-d", false, None),
        ];
        let summary = count([&slice].into_iter(), entries.iter());
        assert_eq!((summary.pods_ready, summary.pods_not_ready), (1, 1));
        assert_eq!((summary.vms_healthy, summary.vms_unhealthy), (2, 2));
        assert_eq!(summary.healthy, 3);
        assert!(
            summary
                .unhealthy_vms
                .iter()
                .any(|l| l == "vm-b: probe failed")
        );
        assert!(describe(&summary, 5).contains("Pods 1 ready / 1 not ready"));
    }
}
