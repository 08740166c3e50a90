//! Resource `istio_mesh_service`: the Kubernetes Service that gives Pods and VMs of one app a
//! single stable hostname, with an optional wait until enough of them really serve.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    ApplyModel, Operation, TimeoutsModel, keep_state, namespace_or_default, parse_import_id,
    refuse_existing, require_namespace,
};
use super::error::{OrReport, ResourceError};
use crate::cluster::wait::Deadline;
use crate::provider_data::ProviderHandle;
use crate::tfplug::{Ctx, Diagnostics, Plan, Resource, Schema, UnknownAs, Value, decode, encode};
use crate::validation;
use cluster::Services;
use convert::{model_from_live, refresh, set_computed};
use endpoints::describe;

mod cluster;
mod convert;
mod endpoints;
mod plan;
mod validate;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Summary of a `wait` that ended before enough endpoints served.
const NOT_ENOUGH: &str = "Not enough healthy endpoints";

/// A Kubernetes Service that selects Pods and WorkloadEntries (VMs) alike by label, so clients
/// call `<name>.<namespace>.svc.<cluster_domain>` and are balanced across both, and Istio
/// routing (DestinationRule, VirtualService) applies to VMs too. With a `wait` block,
/// create and update return only when enough endpoints serve: ready Pod addresses plus healthy
/// VMs — the natural place for a module to wait until VMs it just created joined the mesh.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct MeshServiceModel {
    /// Name of the Service (a DNS-1123 label). Changing it replaces the Service.
    #[schemars(extend("x-tf" = {"requires_replace": true}))]
    #[serde(deserialize_with = "crate::tfplug::null_as_default")]
    pub name: String,
    /// Namespace of the Service. Default `default`. Changing it replaces the Service.
    #[schemars(extend("x-tf" = {"optional_computed": true, "requires_replace": true}))]
    pub namespace: Option<String>,
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
    /// Labels of the Service. Keys other tools add are ignored.
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations of the Service. Keys other tools add are ignored.
    pub annotations: Option<BTreeMap<String, String>>,
    /// Wait on create and update until enough endpoints serve.
    #[schemars(extend("x-tf" = {"block": "single"}))]
    pub wait: Option<WaitModel>,
    #[serde(flatten)]
    pub apply: ApplyModel,
    /// `<namespace>/<name>`.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub id: Option<String>,
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
        validate::config(config, diags);
    }

    async fn plan(&self, _ctx: &Ctx, plan: &mut Plan, _diags: &mut Diagnostics) {
        plan::refine(plan);
    }

    async fn create(&self, ctx: &Ctx, planned: Value, diags: &mut Diagnostics) -> Option<Value> {
        const FAILED: &str = "Cannot create Service";
        let mut model = decode::<MeshServiceModel>(&planned, UnknownAs::Null, diags)?;
        let configured = self.handle.configured(diags).await?;
        let services = Services::new(&configured, namespace_of(&model));
        require_namespace(&configured, &services.namespace)
            .await
            .or_report(FAILED, diags)?;
        if services
            .exists(&model.name)
            .await
            .or_report(FAILED, diags)?
        {
            return refuse_existing("Service", &services.namespace, &model.name, diags);
        }
        let applied = services
            .apply(&model, &configured.field_manager)
            .await
            .or_report(FAILED, diags)?;
        set_computed(&mut model, &applied);
        let waited = wait_and_count(&services, &mut model, ctx, Operation::Create).await;
        keep_state(&model, &self.schema(), waited, NOT_ENOUGH, diags)
    }

    async fn read(&self, _ctx: &Ctx, state: Value, diags: &mut Diagnostics) -> Option<Value> {
        let prior = decode::<MeshServiceModel>(&state, UnknownAs::Null, diags)?;
        let configured = self.handle.configured(diags).await?;
        let services = Services::new(&configured, namespace_of(&prior));
        let live = match services.get(&prior.name).await {
            Ok(Some(live)) => live,
            Ok(None) => return None,
            Err(error) => {
                error.report("Cannot read Service", diags);
                return Some(state);
            }
        };
        let mut refreshed = refresh(&prior, &live);
        let counted = services
            .count_endpoints(&refreshed.name, &refreshed.selector)
            .await;
        match counted {
            Ok(summary) => refreshed.endpoints = Some(summary),
            Err(error) => error.report("Cannot count endpoints", diags),
        }
        encode(&refreshed, &self.schema(), diags)
    }

    async fn update(
        &self,
        ctx: &Ctx,
        state: Value,
        planned: Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let mut model = decode::<MeshServiceModel>(&planned, UnknownAs::Null, diags)?;
        let configured = self.handle.configured(diags).await?;
        let services = Services::new(&configured, namespace_of(&model));
        let Some(applied) = services
            .apply(&model, &configured.field_manager)
            .await
            .or_report("Cannot update Service", diags)
        else {
            return Some(state);
        };
        set_computed(&mut model, &applied);
        let waited = wait_and_count(&services, &mut model, ctx, Operation::Update).await;
        keep_state(&model, &self.schema(), waited, NOT_ENOUGH, diags)
    }

    async fn delete(&self, ctx: &Ctx, prior: Value, diags: &mut Diagnostics) {
        let Some(model) = decode::<MeshServiceModel>(&prior, UnknownAs::Null, diags) else {
            return;
        };
        let Some(configured) = self.handle.configured(diags).await else {
            return;
        };
        let services = Services::new(&configured, namespace_of(&model));
        let timeout = TimeoutsModel::get(&model.apply.timeouts, Operation::Delete, DEFAULT_TIMEOUT);
        if let Err(error) = services
            .delete(&model.name, Deadline::new(timeout, &ctx.cancelled))
            .await
        {
            error.report("Cannot delete Service", diags);
        }
    }

    async fn import(&self, _ctx: &Ctx, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        const FAILED: &str = "Cannot import Service";
        let (namespace, name) = parse_import_id(id, diags)?;
        let configured = self.handle.configured(diags).await?;
        let services = Services::new(&configured, namespace);
        let Some(live) = services.get(&name).await.or_report(FAILED, diags)? else {
            let missing = format!("Service {}/{name} does not exist.", services.namespace);
            ResourceError::missing(None, missing).report(FAILED, diags);
            return None;
        };
        let mut model = model_from_live(&live);
        model.endpoints = services.count_endpoints(&name, &model.selector).await.ok();
        encode(&model, &self.schema(), diags)
    }
}

/// Waits when the model asks, then records the endpoint summary; a failed wait is an error on
/// `wait` that says what was found per kind.
async fn wait_and_count(
    services: &Services,
    model: &mut MeshServiceModel,
    ctx: &Ctx,
    operation: Operation,
) -> Result<(), ResourceError> {
    let Some(wait) = model.wait.clone() else {
        model.endpoints = services
            .count_endpoints(&model.name, &model.selector)
            .await
            .ok();
        return Ok(());
    };
    let timeout = wait
        .timeout
        .as_deref()
        .and_then(|t| validation::duration(t).ok())
        .unwrap_or_else(|| TimeoutsModel::get(&model.apply.timeouts, operation, DEFAULT_TIMEOUT));
    let wanted = wait.min_healthy_endpoints;
    let waited = services
        .wait_for_endpoints(
            &model.name,
            &model.selector,
            wanted,
            Deadline::new(timeout, &ctx.cancelled),
        )
        .await;
    match waited {
        Ok(summary) => {
            model.endpoints = Some(summary);
            Ok(())
        }
        Err((cause, summary)) => {
            let found = describe(&summary, wanted);
            model.endpoints = Some(summary);
            Err(ResourceError::timeout("wait", cause, found))
        }
    }
}

pub(super) fn namespace_of(model: &MeshServiceModel) -> String {
    namespace_or_default(&model.namespace)
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
