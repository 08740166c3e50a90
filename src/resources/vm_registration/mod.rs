//! Resource `istio_vm_registration`: one virtual machine joining the mesh. It issues the VM's
//! bootstrap token (bound to a Secret it owns, so destroying the registration revokes the
//! token), renders the five bootstrap files exactly as `istioctl x workload entry configure`
//! would, registers the VM (istiod auto-registration, or a WorkloadEntry it creates), and can
//! wait until istiod reports the VM healthy.
//!
//! Order of cluster writes on create, so nothing is ever lost: the token Secret first (its
//! name goes into the state returned with any later error), then the token, then the entry.
//! A failed create returns what exists; Terraform keeps it as tainted and destroys it on the
//! next apply — the same choice the kubernetes provider makes for a failed wait.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Operation, TimeoutsModel, keep_state, validate_config};
use super::error::{OrReport, ResourceError};
use crate::istio::crd::{WorkloadEntry, healthy_condition};
use crate::istio::{Bundle, DEFAULT_TOKEN_SECONDS, RegistrationMode, render_bundle};
use crate::provider_data::ProviderHandle;
use crate::tfplug::{Ctx, Diagnostics, Plan, Resource, Schema, UnknownAs, Value, decode, encode};
use crate::validation;
use cluster::{Group, Registration, registration_id};

mod cluster;
mod files;
mod plan;
mod validate;

/// Label put on everything a registration creates (Secret, manual entry) and, through the
/// bundle, on the entry istiod auto-registers: how the provider finds them again.
pub const REGISTRATION_LABEL: &str = "terraform-provider-istio/registration";
const MINIMUM_TOKEN_SECONDS: u64 = 600;
const DEFAULT_RENEW_BEFORE: &str = "15m";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Summary of every diagnostic of a failed registration step.
const FAILED: &str = "VM registration failed";

/// One virtual machine registered into the mesh from a WorkloadGroup: its bootstrap token,
/// the five bootstrap files (`cluster.env`, `mesh.yaml`, `hosts`, `root-cert.pem`,
/// `istio-token`) as attributes and optionally on disk, its registration (istiod
/// auto-registration or a WorkloadEntry created here) and its health as istiod reports it.
///
/// Deliver the files to the VM with any mechanism (user-data, provisioners) and use
/// `bundle_sha256` as its trigger. The token is renewed by the first plan inside
/// `renew_before` of its expiry. If `wait_for_healthy` times out on create, the registration
/// is saved as tainted (as the kubernetes provider does) and replaced on the next apply.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct VmRegistrationModel {
    /// `<namespace>/<workload-group>/<registration-id>`.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub id: Option<String>,
    /// WorkloadGroup the VM registers from, as `<namespace>/<name>` (e.g. the `id` of an
    /// `istio_workload_group`). Changing it replaces the registration.
    #[schemars(extend("x-tf" = {"requires_replace": true}))]
    #[serde(deserialize_with = "crate::tfplug::null_as_default")]
    pub workload_group: String,
    /// `auto` (istiod creates the WorkloadEntry when the VM's agent connects) or `manual` (this
    /// resource creates it; needs `address`). Default `auto`. Changing it replaces the registration.
    #[schemars(extend("x-tf" = {"optional_computed": true, "requires_replace": true}))]
    pub mode: Option<String>,
    /// IP address of the VM; required for `manual`. Changing it replaces the registration.
    #[schemars(extend("x-tf" = {"requires_replace": true}))]
    pub address: Option<String>,
    /// Network of the VM for multi-network meshes; overrides the group's `template.network`.
    pub network: Option<String>,
    /// Locality `region/zone/subzone` of the VM.
    pub locality: Option<String>,
    /// Labels of this VM, added to the group's (they win over the group's labels).
    pub labels: Option<BTreeMap<String, String>>,
    /// Load-balancing weight of this VM's entry (manual mode).
    pub weight: Option<i64>,
    /// Cluster ID the VM announces. Default: `global.multiCluster.clusterName` of the
    /// `istio-sidecar-injector[-<revision>]` ConfigMap, as istioctl reads it.
    #[schemars(extend("x-tf" = {"optional_computed": true}))]
    pub cluster_id: Option<String>,
    /// Control-plane revision; default the provider's `revision`.
    pub revision: Option<String>,
    /// Let the VM's agent capture DNS (`ISTIO_META_DNS_CAPTURE`). Default true.
    pub capture_dns: Option<bool>,
    /// IP the VM's services listen on when it differs from its first interface address
    /// (`ISTIO_SVC_IP`). Conflicts with `external_ip`.
    pub internal_ip: Option<String>,
    /// Public IP of the VM for multi-network meshes; probes are rewritten to it. Conflicts
    /// with `internal_ip`.
    pub external_ip: Option<String>,
    /// Service in the Istio namespace whose load-balancer address the VM uses to reach istiod.
    /// Default `istio-eastwestgateway`. Ignored when `ingress_ip` or `istiod_address` is set.
    pub ingress_service: Option<String>,
    /// IP the VM uses to reach istiod (written to its `hosts` file).
    pub ingress_ip: Option<String>,
    /// `host[:port]` the VM uses to reach istiod instead of a hosts entry (e.g. a gateway DNS
    /// name); istiod's own name is then checked through `ISTIOD_SAN`.
    pub istiod_address: Option<String>,
    /// Lifetime of the bootstrap token, e.g. `1h` (default). At least `10m`.
    pub token_duration: Option<String>,
    /// Renew the token when it expires sooner than this (default `15m`): the next plan shows an
    /// update that re-issues it and rewrites the files.
    pub renew_before: Option<String>,
    /// Wait on create and update until istiod reports the VM `Healthy=True`. Use it when the
    /// VM's agent already runs; otherwise wait with `istio_mesh_service` after creating the VM.
    pub wait_for_healthy: Option<bool>,
    /// Directory to write the five files to (token 0600, others 0644); they are removed on
    /// destroy.
    pub output_dir: Option<String>,
    #[schemars(extend("x-tf" = {"block": "single"}))]
    pub timeouts: Option<TimeoutsModel>,
    /// Contents of `cluster.env`.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub cluster_env: Option<String>,
    /// Contents of `mesh.yaml`.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub mesh_config: Option<String>,
    /// Contents of `hosts` (empty when `istiod_address` or a DNS gateway is used).
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub hosts: Option<String>,
    /// Contents of `root-cert.pem`.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub root_cert: Option<String>,
    /// Contents of `istio-token`: the VM's bootstrap credential.
    #[schemars(extend("x-tf" = {"computed": true, "sensitive": true}))]
    pub istio_token: Option<String>,
    /// RFC 3339 time the token expires.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub token_expires_at: Option<String>,
    /// SHA-256 over the five files; changes whenever any file changes.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub bundle_sha256: Option<String>,
    /// Name of the VM's WorkloadEntry; empty until istiod auto-registers the VM.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub workload_entry_name: Option<String>,
    /// Whether istiod reports the VM `Healthy=True`.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub healthy: Option<bool>,
    /// istiod's message for the last health condition (empty when healthy).
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub health_message: Option<String>,
    /// Secret the token is bound to; deleting it revokes the token.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub token_secret_name: Option<String>,
}

pub struct VmRegistrationResource {
    handle: Arc<ProviderHandle>,
}

impl VmRegistrationResource {
    pub fn new(handle: Arc<ProviderHandle>) -> Self {
        VmRegistrationResource { handle }
    }
}

#[async_trait]
impl Resource for VmRegistrationResource {
    fn type_name(&self) -> &'static str {
        "istio_vm_registration"
    }

    fn schema(&self) -> Schema {
        Schema::from_model::<VmRegistrationModel>(0)
    }

    async fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        validate_config::<VmRegistrationModel>(config, diags, |model, diags| {
            validate::check(model, config, diags)
        });
    }

    async fn plan(&self, _ctx: &Ctx, plan: &mut Plan, _diags: &mut Diagnostics) {
        plan::refine(plan);
    }

    async fn create(&self, ctx: &Ctx, planned: Value, diags: &mut Diagnostics) -> Option<Value> {
        let mut model = decode::<VmRegistrationModel>(&planned, UnknownAs::Null, diags)?;
        let configured = self.handle.configured(diags).await?;
        let registration = Registration::new(&configured, &model);
        let group = registration.group().await.or_report(FAILED, diags)?;
        let secret = registration
            .create_token_secret(&group)
            .await
            .or_report(FAILED, diags)?;
        model.token_secret_name = secret.metadata.name.clone();
        model.id = Some(format!(
            "{}/{}",
            model.workload_group,
            registration_id(&secret)
        ));
        // From here on the Secret exists: every error returns the state so it is not lost.
        let registered = register(
            &registration,
            &mut model,
            &group,
            &secret,
            ctx,
            Operation::Create,
        )
        .await;
        keep_state(&model, &self.schema(), registered, FAILED, diags)
    }

    async fn read(&self, _ctx: &Ctx, state: Value, diags: &mut Diagnostics) -> Option<Value> {
        let mut model = decode::<VmRegistrationModel>(&state, UnknownAs::Null, diags)?;
        let configured = self.handle.configured(diags).await?;
        let registration = Registration::new(&configured, &model);
        let secret_name = model.token_secret_name.clone().unwrap_or_default();
        match registration.secret(&secret_name).await {
            Ok(Some(_)) => {}
            // Without its Secret the token is revoked: the registration is gone.
            Ok(None) => return None,
            Err(error) => {
                error.report(FAILED, diags);
                return Some(state);
            }
        }
        // The group, the mesh config or the root certificate may have changed since the last
        // apply: the state holds the bundle the cluster asks for now, so `bundle_sha256`
        // triggers re-delivery.
        if let Ok(group) = registration.group().await {
            let label = registration_label(&model).unwrap_or_default().to_string();
            match rerender(&registration, &model, &group, &label).await {
                Ok(bundle) => record_bundle(&mut model, &bundle),
                Err(error) => {
                    diags.root_warning("Cannot re-render the VM bundle", error.to_string())
                }
            }
        }
        match registration.find_entry(&model).await {
            Ok(entry) => record_health(&mut model, entry.as_ref()),
            Err(error) => {
                error.report(FAILED, diags);
                return Some(state);
            }
        }
        encode(&model, &self.schema(), diags)
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior_state: Value,
        planned: Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let mut model = decode::<VmRegistrationModel>(&planned, UnknownAs::Null, diags)?;
        let prior = decode::<VmRegistrationModel>(&prior_state, UnknownAs::Null, diags)?;
        let configured = self.handle.configured(diags).await?;
        let registration = Registration::new(&configured, &model);
        let Some(group) = registration.group().await.or_report(FAILED, diags) else {
            return Some(prior_state);
        };
        let secret_name = prior.token_secret_name.clone().unwrap_or_default();
        let secret = match registration.secret(&secret_name).await {
            Ok(Some(secret)) => secret,
            Ok(None) => {
                let gone = format!(
                    "Secret {secret_name} was deleted outside Terraform; the registration must be replaced (`terraform apply -replace=...`)."
                );
                ResourceError::missing(None, gone).report("Token Secret is gone", diags);
                return Some(prior_state);
            }
            Err(error) => {
                error.report(FAILED, diags);
                return Some(prior_state);
            }
        };
        model.token_secret_name = Some(secret_name);
        model.id = prior.id.clone();
        if planned.get_attr("istio_token").is_some_and(Value::is_known) {
            model.istio_token = prior.istio_token.clone();
            model.token_expires_at = prior.token_expires_at.clone();
        } else {
            model.istio_token = None;
        }
        let registered = register(
            &registration,
            &mut model,
            &group,
            &secret,
            ctx,
            Operation::Update,
        )
        .await;
        keep_state(&model, &self.schema(), registered, FAILED, diags)
    }

    async fn delete(&self, ctx: &Ctx, prior: Value, diags: &mut Diagnostics) {
        let Some(model) = decode::<VmRegistrationModel>(&prior, UnknownAs::Null, diags) else {
            return;
        };
        let Some(configured) = self.handle.configured(diags).await else {
            return;
        };
        let registration = Registration::new(&configured, &model);
        let timeout = TimeoutsModel::get(&model.timeouts, Operation::Delete, DEFAULT_TIMEOUT);
        if let Err(error) = registration.remove(&model, timeout, &ctx.cancelled).await {
            error.report(FAILED, diags);
        }
        if let Some(dir) = &model.output_dir {
            if let Err(error) = files::remove(Path::new(dir)) {
                ResourceError::new(Some("output_dir"), error)
                    .report("Cannot remove bundle files", diags);
            }
        }
    }
}

/// Everything after the token Secret exists, on create and update: the token (unless the
/// plan keeps it), the bundle, the manual entry, the files, and health (waited for on request).
async fn register(
    registration: &Registration<'_>,
    model: &mut VmRegistrationModel,
    group: &Group,
    secret: &k8s_openapi::api::core::v1::Secret,
    ctx: &Ctx,
    operation: Operation,
) -> Result<(), ResourceError> {
    let id = registration_id(secret);
    if model.istio_token.is_none() {
        let issued = registration.request_token(group, secret, model).await?;
        model.istio_token = Some(issued.token);
        model.token_expires_at = Some(issued.expires_at);
    }
    let inputs = registration.bundle_inputs(model, &group.group, &id).await?;
    let bundle =
        render_bundle(&inputs).map_err(|e| ResourceError::new(Some("workload_group"), e))?;
    record_bundle(model, &bundle);
    if let RegistrationMode::Manual { entry_name } = &inputs.mode {
        registration
            .apply_manual_entry(model, group, entry_name, &id)
            .await?;
        model.workload_entry_name = Some(entry_name.clone());
    }
    if let Some(dir) = &model.output_dir {
        files::write(Path::new(dir), &bundle)
            .map_err(|e| ResourceError::new(Some("output_dir"), e))?;
    }
    if !model.wait_for_healthy.unwrap_or(false) {
        let entry = registration.find_entry(model).await?;
        record_health(model, entry.as_ref());
        return Ok(());
    }
    let timeout = TimeoutsModel::get(&model.timeouts, operation, DEFAULT_TIMEOUT);
    match registration
        .wait_healthy(&id, timeout, &ctx.cancelled)
        .await
    {
        Ok(entry) => {
            record_health(model, Some(&entry));
            Ok(())
        }
        Err((cause, last_seen)) => {
            record_health(model, last_seen.as_ref());
            let last_state = format!(
                "Last state: entry {:?}, {}. Check that the VM runs the Istio agent with this bundle and that its probe succeeds; the registration is kept (tainted) so nothing is lost.",
                model.workload_entry_name.clone().unwrap_or_default(),
                model.health_message.clone().unwrap_or_default()
            );
            Err(ResourceError::timeout(
                "wait_for_healthy",
                cause,
                last_state,
            ))
        }
    }
}

/// The bundle the cluster asks for now (read refreshes it without writing anything).
async fn rerender(
    registration: &Registration<'_>,
    model: &VmRegistrationModel,
    group: &Group,
    label: &str,
) -> Result<Bundle, ResourceError> {
    let inputs = registration
        .bundle_inputs(model, &group.group, label)
        .await?;
    Ok(render_bundle(&inputs)?)
}

/// The registration label of this registration: the last part of its ID.
pub(super) fn registration_label(model: &VmRegistrationModel) -> Option<&str> {
    model.id.as_deref().and_then(|id| id.rsplit('/').next())
}

/// `token_duration`, or istioctl's default lifetime.
pub(super) fn token_lifetime(model: &VmRegistrationModel) -> Duration {
    model
        .token_duration
        .as_deref()
        .and_then(|text| validation::duration(text).ok())
        .unwrap_or(Duration::from_secs(DEFAULT_TOKEN_SECONDS))
}

pub(super) fn record_bundle(model: &mut VmRegistrationModel, bundle: &Bundle) {
    model.cluster_env = Some(bundle.cluster_env.clone());
    model.mesh_config = Some(bundle.mesh_config.clone());
    model.hosts = Some(bundle.hosts.clone());
    model.root_cert = Some(bundle.root_cert.clone());
    model.bundle_sha256 = Some(bundle.sha256.clone());
}

pub(super) fn record_health(model: &mut VmRegistrationModel, entry: Option<&WorkloadEntry>) {
    let manual = model.mode.as_deref() == Some("manual");
    model.workload_entry_name = Some(
        entry
            .and_then(|e| e.metadata.name.clone())
            .unwrap_or_default(),
    );
    let condition = entry.and_then(healthy_condition);
    model.healthy = Some(condition.as_ref().is_some_and(|c| c.is_true()));
    model.health_message = Some(match (&condition, entry) {
        (Some(c), _) if c.is_true() => String::new(),
        (Some(c), _) => c
            .message
            .clone()
            .unwrap_or_else(|| format!("Healthy={}", c.status)),
        (None, Some(_)) => "istiod has not reported health yet (no Healthy condition)".into(),
        (None, None) if manual => "the WorkloadEntry does not exist".into(),
        (None, None) => {
            "the VM has not connected to istiod yet (no auto-registered WorkloadEntry)".into()
        }
    });
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(super) fn config(json: serde_json::Value) -> Value {
        let schema = Schema::from_model::<VmRegistrationModel>(0);
        Value::from_json(&json, &schema.value_type()).unwrap()
    }

    #[test]
    fn token_is_sensitive_and_group_forces_replacement() {
        let schema = Schema::from_model::<VmRegistrationModel>(0);
        assert!(schema.block.attribute("istio_token").unwrap().sensitive);
        assert!(
            schema
                .block
                .attribute("workload_group")
                .unwrap()
                .requires_replace
        );
        assert!(!schema.block.attribute("cluster_env").unwrap().sensitive);
    }
}
