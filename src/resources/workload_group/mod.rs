//! Resource `istio_workload_group`: the WorkloadGroup every VM of a service is registered from,
//! typed and validated at plan time, applied with server-side apply, refreshed for drift.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    ApplyModel, Operation, TimeoutsModel, namespace_or_default, parse_import_id, refuse_existing,
    require_namespace,
};
use super::error::{OrReport, ResourceError};
use crate::cluster::wait::Deadline;
use crate::istio::crd::{IstioApiVersion, WorkloadGroup};
use crate::provider_data::ProviderHandle;
use crate::tfplug::{Ctx, Diagnostics, Plan, Resource, Schema, UnknownAs, Value, decode, encode};
use cluster::Groups;
use convert::{model_from_live, refresh, set_computed};

mod cluster;
mod convert;
mod plan;
mod validate;

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
    #[serde(flatten)]
    pub apply: ApplyModel,
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
    /// Address shared by all entries; normally left empty because each VM has its own. At
    /// most 256 bytes; a Unix socket (`unix:///path` or `unix://@abstract`, not a directory)
    /// excludes `ports`.
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
    /// Extra request headers, in order. A name may repeat, as in Istio's `HTTPHeader` list.
    #[schemars(extend("x-tf" = {"block": "list"}))]
    #[serde(default)]
    pub http_header: Vec<HttpHeaderModel>,
}

/// One request header of an HTTP probe.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct HttpHeaderModel {
    /// Header name: letters, digits and '-'.
    #[serde(deserialize_with = "crate::tfplug::null_as_default")]
    pub name: String,
    /// Header value; may be empty.
    #[serde(deserialize_with = "crate::tfplug::null_as_default")]
    pub value: String,
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
        validate::config(config, diags);
    }

    async fn plan(&self, _ctx: &Ctx, plan: &mut Plan, _diags: &mut Diagnostics) {
        plan::refine(plan);
    }

    async fn create(&self, _ctx: &Ctx, planned: Value, diags: &mut Diagnostics) -> Option<Value> {
        const FAILED: &str = "Cannot create WorkloadGroup";
        let mut model = decode::<WorkloadGroupModel>(&planned, UnknownAs::Null, diags)?;
        let configured = self.handle.configured(diags).await?;
        let namespace = namespace_or_default(&model.namespace);
        require_namespace(&configured, &namespace)
            .await
            .or_report(FAILED, diags)?;
        let groups = Groups::discover(&configured, namespace)
            .await
            .or_report(FAILED, diags)?;
        if groups.exists(&model.name).await.or_report(FAILED, diags)? {
            return refuse_existing(WorkloadGroup::KIND, &groups.namespace, &model.name, diags);
        }
        let applied = groups
            .apply(&model, &configured.field_manager)
            .await
            .or_report(FAILED, diags)?;
        set_computed(&mut model, &applied, &groups.namespace, groups.version);
        encode(&model, &self.schema(), diags)
    }

    async fn read(&self, _ctx: &Ctx, state: Value, diags: &mut Diagnostics) -> Option<Value> {
        let prior = decode::<WorkloadGroupModel>(&state, UnknownAs::Null, diags)?;
        let configured = self.handle.configured(diags).await?;
        let groups = Groups::at(
            &configured,
            namespace_or_default(&prior.namespace),
            recorded_version(&prior),
        );
        let live = match groups.get(&prior.name).await {
            Ok(Some(live)) => live,
            Ok(None) => return None,
            Err(error) => {
                error.report("Cannot read WorkloadGroup", diags);
                return Some(state);
            }
        };
        let refreshed = refresh(&prior, &live, &groups.namespace, groups.version);
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
        let groups = Groups::at(
            &configured,
            namespace_or_default(&model.namespace),
            recorded_version(&prior_model),
        );
        match groups.apply(&model, &configured.field_manager).await {
            Ok(applied) => {
                set_computed(&mut model, &applied, &groups.namespace, groups.version);
                encode(&model, &self.schema(), diags)
            }
            Err(error) => {
                error.report("Cannot update WorkloadGroup", diags);
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
        let groups = Groups::at(
            &configured,
            namespace_or_default(&model.namespace),
            recorded_version(&model),
        );
        let timeout = TimeoutsModel::get(&model.apply.timeouts, Operation::Delete, DEFAULT_TIMEOUT);
        if let Err(error) = groups
            .delete(&model.name, Deadline::new(timeout, &ctx.cancelled))
            .await
        {
            error.report("Cannot delete WorkloadGroup", diags);
        }
    }

    async fn import(&self, _ctx: &Ctx, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        const FAILED: &str = "Cannot import WorkloadGroup";
        let (namespace, name) = parse_import_id(id, diags)?;
        let configured = self.handle.configured(diags).await?;
        let groups = Groups::discover(&configured, namespace)
            .await
            .or_report(FAILED, diags)?;
        let Some(live) = groups.get(&name).await.or_report(FAILED, diags)? else {
            let missing = format!("WorkloadGroup {}/{name} does not exist.", groups.namespace);
            ResourceError::missing(None, missing).report(FAILED, diags);
            return None;
        };
        let imported = model_from_live(&live, &groups.namespace, groups.version);
        encode(&imported, &self.schema(), diags)
    }
}

/// The API version the state was written at (older states: `v1`).
fn recorded_version(model: &WorkloadGroupModel) -> IstioApiVersion {
    model
        .api_version
        .as_deref()
        .and_then(IstioApiVersion::parse)
        .unwrap_or_default()
}

/// The group the unit tests of every step start from.
#[cfg(test)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tfplug::Type;

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
    fn apply_options_decode_and_encode_as_top_level_attributes() {
        let schema = Schema::from_model::<WorkloadGroupModel>(0);
        let config = Value::from_json(
            &serde_json::json!({"name": "g", "force_conflicts": true, "timeouts": {"delete": "2m"}}),
            &schema.value_type(),
        )
        .unwrap();
        let model = decode::<WorkloadGroupModel>(&config, UnknownAs::Null, &mut Diagnostics::new())
            .unwrap();
        assert_eq!(model.apply.force_conflicts, Some(true));
        assert_eq!(
            model
                .apply
                .timeouts
                .as_ref()
                .and_then(|t| t.delete.as_deref()),
            Some("2m")
        );
        let encoded = encode(&model, &schema, &mut Diagnostics::new()).unwrap();
        assert_eq!(
            encoded.get_attr("force_conflicts"),
            Some(&Value::Bool(true))
        );
    }
}
