//! Resource `istio_mesh_service`: the Kubernetes Service that gives Pods and VMs of one app a
//! single stable hostname, with an optional wait until enough of them really serve.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Operation, TimeoutsModel, parse_import_id, report};
use crate::cluster::apply::server_side_apply;
use crate::cluster::wait::wait_until_deleted;
use crate::provider_data::ProviderHandle;
use crate::tfplug::{
    AttributePath, Ctx, Diagnostics, Plan, Resource, Schema, UnknownAs, Value, decode, encode,
};
use crate::validation;
use cluster::{summarise, wait_for_endpoints};
use convert::{model_from_live, refresh, service_from_model, set_computed};
use endpoints::describe;
use validate::validate_model;

mod cluster;
mod convert;
mod endpoints;
mod plan;
mod validate;

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
        plan::refine(plan);
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

pub(super) fn namespace_of(model: &MeshServiceModel) -> String {
    model
        .namespace
        .clone()
        .unwrap_or_else(|| DEFAULT_NAMESPACE.into())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(super) fn base() -> MeshServiceModel {
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
}
