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

use super::common::{Operation, TimeoutsModel, keep_state};
use super::error::{OrReport, ResourceError};
use crate::cluster::KubeError;
use crate::cluster::wait::Deadline;
use crate::istio::control_plane::autoregistration_checklist;
use crate::istio::crd::{WorkloadEntry, WorkloadGroup};
use crate::istio::entry_health;
use crate::istio::health::health_is_reported;
use crate::istio::{Bundle, DEFAULT_TOKEN_SECONDS, RegistrationMode, render_bundle};
use crate::provider_data::ProviderHandle;
use crate::tfplug::{
    AttributePath, Ctx, Diagnostics, Plan, Resource, Schema, UnknownAs, Value, decode, encode,
};
use crate::validation;
pub(crate) use bootstrap::{check_settings, group_of_registration, mint_bootstrap};
use cluster::{Group, Registration, registration_id};

mod bootstrap;
mod cluster;
mod files;
mod plan;
mod validate;

/// Label put on the entries of a registration (its manual entry and, through the bundle, the
/// entry istiod auto-registers): how the provider finds them again. Its value is the
/// registration ID, the UID of the token Secret. (Token Secrets made by earlier builds carry it
/// too.)
pub const REGISTRATION_LABEL: &str = "terraform-provider-istio/registration";
/// The token Secret's label saying who made it; import looks among these Secrets.
const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
const MANAGED_BY: &str = "terraform-provider-istio";
/// On the token Secret of an auto registration while its create runs: the time (RFC 3339) by
/// which the create has ended, its timeout plus [`PENDING_SLACK`]. The create removes it when it
/// returns the state; a Secret that still has it afterwards was left by a provider killed
/// mid-create, no state names it, and the next create in the namespace revokes it. (A manual
/// registration needs none: the retry takes over the entry, which names the old Secret.)
const PENDING_ANNOTATION: &str = "terraform-provider-istio/pending-until";
/// Beyond the create's timeout: the requests after the wait, and clocks of two machines apart.
const PENDING_SLACK: Duration = Duration::from_secs(30);
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
/// `renew_before` of its expiry. If `wait_for_healthy` times out on create, or Terraform is
/// interrupted (Ctrl-C) during the wait, the registration is saved as tainted (as the kubernetes
/// provider does) and replaced on the next apply. A manual registration whose VM's entry is held
/// by another registration takes it over and deletes that registration's token Secret (see the
/// troubleshooting guide, "When an apply is interrupted or fails midway").
///
/// Destroy deletes the token Secret (revoking every token bound to it), the manual entry and
/// the files in `output_dir`. It does not stop a VM that already holds a workload certificate:
/// its agent keeps renewing the certificate with the certificate itself (`PROV_CERT`). To evict
/// a VM for good, stop its agent or delete the VM and its certificates, and deny its service
/// account meanwhile (see `docs-src/vm-lifecycle.md`). Import with
/// `<namespace>/<workload-group>/<registration-id>` (the `id`); the first apply after an import
/// re-issues the token.
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
    /// IP address of the VM; required for `manual`. Changing it replaces the registration. In
    /// manual mode it is also written as the VM's `ISTIO_SVC_IP` (unless `internal_ip` or
    /// `external_ip` is set), so the agent announces the entry's address even when it is not
    /// the VM's first interface.
    #[schemars(extend("x-tf" = {"requires_replace": true}))]
    pub address: Option<String>,
    #[serde(flatten)]
    pub settings: BundleSettingsModel,
    /// Load-balancing weight of this VM's entry (manual mode), 0–4294967295; 0 means Istio's
    /// default.
    pub weight: Option<i64>,
    /// Cluster ID the VM announces (`ISTIO_META_CLUSTER_ID`). Default, as istioctl picks it:
    /// `global.multiCluster.clusterName` of the `istio-sidecar-injector[-<revision>]` ConfigMap,
    /// or empty when that is empty (Istio's default install), in which case istiod takes the VM
    /// for one of its own cluster.
    #[schemars(extend("x-tf" = {"optional_computed": true}))]
    pub cluster_id: Option<String>,
    /// Issue the VM's token here and keep it in state (`istio_token`, the `istio-token` file).
    /// Default true. Set false when the VM gets its token from the ephemeral
    /// `istio_vm_bootstrap` (Terraform ≥ 1.10, OpenTofu ≥ 1.11): then no token ever enters this
    /// registration's plan or state, `istio_token` and `token_expires_at` stay null, the bundle
    /// attributes hold an empty `istio-token`, and `output_dir` cannot be used.
    pub issue_token: Option<bool>,
    /// Lifetime of the bootstrap token, e.g. `1h` (default). At least `10m`.
    pub token_duration: Option<String>,
    /// Renew the token when it expires sooner than this (default `15m`): the next plan shows an
    /// update that re-issues it and rewrites the files.
    pub renew_before: Option<String>,
    /// Wait on create and update until istiod reports the VM `Healthy=True`. Use it when the
    /// VM's agent already runs; otherwise wait with `istio_mesh_service` after creating the VM.
    /// Needs a group with a `probe`: without one istiod never reports health, and the plan
    /// fails.
    pub wait_for_healthy: Option<bool>,
    /// Directory to write the five files to (token 0600, others 0644); they are removed on
    /// destroy.
    pub output_dir: Option<String>,
    #[schemars(extend("x-tf" = {"block": "single"}))]
    pub timeouts: Option<TimeoutsModel>,
    #[serde(flatten)]
    pub bundle: BundleModel,
    /// SHA-256 over the five files; changes whenever any file changes.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub bundle_sha256: Option<String>,
    /// Name of the VM's WorkloadEntry; empty until istiod auto-registers the VM.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub workload_entry_name: Option<String>,
    /// Whether istiod sends traffic to the VM, by istiod's own rule: its WorkloadEntry exists
    /// and, when the entry is health-checked (the group has a probe), istiod reports it
    /// `Healthy=True`. A VM of a group without a probe is healthy as soon as its entry exists.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub healthy: Option<bool>,
    /// istiod's message for the last health condition (empty when healthy).
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub health_message: Option<String>,
    /// Secret the token is bound to; deleting it revokes the token.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub token_secret_name: Option<String>,
}

/// The settings that shape a VM's bundle, shared by `istio_vm_registration` and
/// `istio_vm_bootstrap` (whose attributes say "as the registration's").
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct BundleSettingsModel {
    /// Network of the VM for multi-network meshes; overrides the group's `template.network`.
    /// It is part of the entry name, so it must be lower-case letters, digits, '-' and '.'.
    /// In manual mode a change replaces the entry (the old one is deleted). Without this
    /// attribute, a change of the group's `template.network` replaces the entry at the apply
    /// after the group's (the registration reads the group at refresh; until then its bundle
    /// keeps naming the entry that exists). In auto mode
    /// istiod does not change an existing entry: a change of `network`, `locality` or
    /// `labels` reaches the entry only when istiod creates it again: after the VM's agent stayed
    /// disconnected longer than istiod's `PILOT_WORKLOAD_ENTRY_GRACE_PERIOD` (default 10s), at
    /// its next connection with the new bundle; a quicker restart keeps the old entry (the plan
    /// warns).
    pub network: Option<String>,
    /// Locality `region/zone/subzone` of the VM (at most three parts; see `network` for
    /// changes in auto mode).
    pub locality: Option<String>,
    /// Labels of this VM, added to the group's (they win over the group's labels; see
    /// `network` for changes in auto mode). Istio allows 256 labels on the VM's entry, which
    /// also carries the group's labels, the registration label and the two canonical service
    /// labels; the plan refuses more than fit beside those three.
    pub labels: Option<BTreeMap<String, String>>,
    /// Control-plane revision; default the provider's `revision`. When both are unset, the
    /// revision the `default` revision tag points at (as istioctl 1.28+ does), else the
    /// unrevisioned control plane.
    pub revision: Option<String>,
    /// Let the VM's agent capture DNS (`ISTIO_META_DNS_CAPTURE`). Default true.
    pub capture_dns: Option<bool>,
    /// IP the VM's services listen on when it differs from its first interface address
    /// (`ISTIO_SVC_IP`). Conflicts with `external_ip`.
    pub internal_ip: Option<String>,
    /// Public IP of the VM for multi-network meshes. Written as `ISTIO_SVC_IP` (the address
    /// the agent announces) together with `REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION=true`,
    /// which makes the agent send probes that name no `host` to `localhost` instead of the
    /// VM's address (which it may not own). Probes are not rewritten to this IP. Conflicts
    /// with `internal_ip`.
    pub external_ip: Option<String>,
    /// Service whose address the VM uses to reach istiod, as `<service>` (in the Istio
    /// namespace) or `<service>.<namespace>`, like istioctl's `--ingressService`. Default
    /// `istio-eastwestgateway`. Its first load-balancer IP goes into `hosts`; a load balancer
    /// that reports only a hostname becomes the discovery and CA address; without a load
    /// balancer, its first `spec.externalIPs` is used, as istioctl does. Ignored when
    /// `ingress_ip` or `istiod_address` is set.
    pub ingress_service: Option<String>,
    /// IP the VM uses to reach istiod (written to its `hosts` file).
    pub ingress_ip: Option<String>,
    /// `host[:port]` the VM uses to reach istiod instead of a hosts entry (e.g. a gateway DNS
    /// name). The discovery connection checks istiod's own name (`ISTIOD_SAN`); the CA
    /// connection goes to the same address (`CA_ADDR`, which `istio-start.sh` always sets) and
    /// checks istiod's certificate against this host, so istiod must carry it in
    /// `ISTIOD_CUSTOM_HOST` (`values.pilot.env.ISTIOD_CUSTOM_HOST` of the install); plan and
    /// apply warn when istiod's Deployment shows it does not. Port 15010 (plaintext) is
    /// refused. The same holds for a gateway whose load balancer reports only a hostname.
    pub istiod_address: Option<String>,
}

/// The bundle as attributes: the files' contents and the token's expiry, shared by
/// `istio_vm_registration` and `istio_vm_bootstrap`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct BundleModel {
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
}

impl BundleModel {
    /// The four files besides the token, as rendered.
    pub fn record_files(&mut self, bundle: &Bundle) {
        self.cluster_env = Some(bundle.cluster_env.clone());
        self.mesh_config = Some(bundle.mesh_config.clone());
        self.hosts = Some(bundle.hosts.clone());
        self.root_cert = Some(bundle.root_cert.clone());
    }
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
        validate::config(config, diags);
    }

    async fn plan(&self, _ctx: &Ctx, plan: &mut Plan, diags: &mut Diagnostics) {
        plan::refine(plan);
        if plan.planned.is_null() {
            return;
        }
        self.check_group(&plan.planned, diags).await;
        plan::warn_auto_entry_changes(plan, diags);
    }

    async fn create(&self, ctx: &Ctx, planned: Value, diags: &mut Diagnostics) -> Option<Value> {
        let mut model = decode::<VmRegistrationModel>(&planned, UnknownAs::Null, diags)?;
        let configured = self.handle.configured(diags).await?;
        let registration = Registration::new(&configured, &model);
        let group = registration.group().await.or_report(FAILED, diags)?;
        if let Some(error) = group_problem(&model, &group.group) {
            error.report(FAILED, diags);
            return None;
        }
        registration
            .revoke_abandoned_secrets()
            .await
            .or_report(FAILED, diags)?;
        let auto = registration.registration_mode(&model, &group.group) == RegistrationMode::Auto;
        let pending_until = auto.then(|| pending_deadline(&model));
        let secret = registration
            .create_token_secret(&group, pending_until)
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
        // The state returned now (complete or tainted) names the Secret.
        let confirmed = match auto {
            true => registration.confirm_token_secret(&secret).await,
            false => Ok(()),
        };
        keep_state(
            &model,
            &self.schema(),
            registered.and(confirmed),
            FAILED,
            diags,
        )
    }

    async fn read(&self, _ctx: &Ctx, state: Value, diags: &mut Diagnostics) -> Option<Value> {
        let mut model = decode::<VmRegistrationModel>(&state, UnknownAs::Null, diags)?;
        let configured = self.handle.configured(diags).await?;
        let registration = Registration::new(&configured, &model);
        let secret_name = model.token_secret_name.clone().unwrap_or_default();
        match registration.secret_exists(&secret_name).await {
            Ok(true) => {}
            // Without its Secret the token is revoked: the registration is gone.
            Ok(false) => return None,
            Err(error) => {
                error.report(FAILED, diags);
                return Some(state);
            }
        }
        // The group, the mesh config or the root certificate may have changed since the last
        // apply: the state holds the bundle the cluster asks for now, so `bundle_sha256`
        // triggers re-delivery.
        let mut rendered = None;
        let group = registration.group().await.ok();
        let label = registration_label(&model).unwrap_or_default().to_string();
        if let Some(group) = &group {
            match rerender(&registration, &model, group, &label).await {
                Ok(bundle) => {
                    rendered = Some((bundle, registration.registration_mode(&model, &group.group)))
                }
                Err(error) => {
                    diags.root_warning("Cannot re-render the VM bundle", error.to_string())
                }
            }
        }
        let entry = match registration.observed_entry(&model).await {
            Ok(entry) => entry,
            Err(error) => {
                error.report(FAILED, diags);
                return Some(state);
            }
        };
        record_health(&mut model, entry.as_ref());
        if let (Some(entry), Some(group)) = (&entry, &group)
            && manual_entry_edited(&model, entry, group, &label)
        {
            // Shown like a missing entry: the plan updates the registration, which applies it again.
            model.workload_entry_name = Some(String::new());
        }
        match rendered {
            // A manual bundle must never name an entry that does not exist (the network, and
            // with it the entry name, changed): keep the delivered bundle and report the entry
            // missing, so the next apply creates the new entry before it rewrites the files.
            Some((_, RegistrationMode::Manual { entry_name }))
                if model.workload_entry_name.as_deref() != Some(entry_name.as_str()) =>
            {
                model.workload_entry_name = Some(String::new());
            }
            Some((bundle, _)) => record_bundle(&mut model, &bundle),
            None => {}
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
        if let Some(error) = group_problem(&model, &group.group) {
            error.report(FAILED, diags);
            return Some(prior_state);
        }
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
        if !issues_token(&model) {
            model.bundle.istio_token = None;
            model.bundle.token_expires_at = None;
        } else if planned.get_attr("istio_token").is_some_and(Value::is_known) {
            model.bundle.istio_token = prior.bundle.istio_token.clone();
            model.bundle.token_expires_at = prior.bundle.token_expires_at.clone();
        } else {
            model.bundle.istio_token = None;
        }
        let operation = Operation::Update;
        let registered = register(&registration, &mut model, &group, &secret, ctx, operation).await;
        keep_state(&model, &self.schema(), registered, FAILED, diags)
    }

    /// `<namespace>/<group>/<registration-id>`: adopts the token Secret (the
    /// provider's Secret whose UID is the registration ID) and the VM's entry. The token itself cannot be read back, so the
    /// first apply after the import re-issues it (the plan shows the renewal).
    async fn import(&self, _ctx: &Ctx, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        let Some((namespace, group, registration)) = parse_registration_id(id) else {
            diags.root_error(
                "Invalid import ID",
                format!("{id:?} is not of the form <namespace>/<workload-group>/<registration-id> (the `id` of the registration; the registration ID is the UID of its token Secret)."),
            );
            return None;
        };
        let configured = self.handle.configured(diags).await?;
        let mut model = VmRegistrationModel {
            workload_group: format!("{namespace}/{group}"),
            id: Some(id.to_string()),
            ..Default::default()
        };
        let registration_api = Registration::new(&configured, &model);
        match registration_api.imported(&mut model, registration).await {
            Ok(true) => encode(&model, &self.schema(), diags),
            Ok(false) => {
                diags.root_error(
                    "Cannot import VM registration",
                    format!("No token Secret of the provider in namespace {namespace} (label {MANAGED_BY_LABEL}={MANAGED_BY}) has the UID {registration}: the registration does not exist (or its token was revoked)."),
                );
                None
            }
            Err(error) => {
                error.report("Cannot import VM registration", diags);
                None
            }
        }
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
        if let Err(error) = registration
            .remove(&model, Deadline::new(timeout, &ctx.cancelled))
            .await
        {
            error.report(FAILED, diags);
        }
        if let Some(dir) = &model.output_dir
            && let Err(error) = files::remove(Path::new(dir))
        {
            ResourceError::new(Some("output_dir"), error)
                .report("Cannot remove bundle files", diags);
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
    if model.bundle.istio_token.is_none() && issues_token(model) {
        let issued = registration.request_token(group, secret, model).await?;
        model.bundle.istio_token = Some(issued.token);
        model.bundle.token_expires_at = Some(issued.expires_at);
    }
    let inputs = registration.bundle_inputs(model, &group.group, &id).await?;
    if inputs.mode == RegistrationMode::Auto {
        registration
            .check_autoregistration(&inputs.revision)
            .await?;
    }
    let bundle =
        render_bundle(&inputs).map_err(|e| ResourceError::new(Some("workload_group"), e))?;
    let mut manual_entry = None;
    if let RegistrationMode::Manual { entry_name } = &inputs.mode {
        let applied = registration
            .apply_manual_entry(model, group, entry_name, &id)
            .await?;
        if matches!(operation, Operation::Update) {
            registration.delete_other_entries(&id, entry_name).await?;
        }
        model.workload_entry_name = Some(entry_name.clone());
        manual_entry = Some(applied);
    }
    // Only now does the entry the bundle names exist.
    record_bundle(model, &bundle);
    if let Some(dir) = &model.output_dir {
        files::write(Path::new(dir), &bundle)
            .map_err(|e| ResourceError::new(Some("output_dir"), e))?;
    }
    if !model.wait_for_healthy.unwrap_or(false) {
        // A manual entry is what the apply returned; istiod creates an auto one.
        let entry = match manual_entry {
            Some(entry) => Some(entry),
            None => registration.find_entry(&id).await?,
        };
        record_health(model, entry.as_ref());
        return Ok(());
    }
    let timeout = TimeoutsModel::get(&model.timeouts, operation, DEFAULT_TIMEOUT);
    match registration
        .wait_healthy(&id, Deadline::new(timeout, &ctx.cancelled))
        .await
    {
        Ok(entry) => {
            // The instant the wait is over, at INFO: `make bench-mesh` measures the health
            // wait's reaction from it (bench/README.md).
            tracing::info!(
                entry = entry.metadata.name.as_deref().unwrap_or_default(),
                address = %entry.spec.address,
                "istiod reported the VM healthy; the wait is over"
            );
            record_health(model, Some(&entry));
            Ok(())
        }
        Err((cause, last_seen)) => {
            record_health(model, last_seen.as_ref());
            let mut last_state = last_state(model, &inputs.istio_namespace);
            if matches!(cause, KubeError::Timeout { .. })
                && let Some(stopped) = registration.istiod_not_running(&inputs.revision).await
            {
                last_state = format!("{stopped} {last_state}");
            }
            Err(ResourceError::timeout(
                "wait_for_healthy",
                cause,
                last_state,
            ))
        }
    }
}

/// [`PENDING_ANNOTATION`]'s value for a create starting now.
fn pending_deadline(model: &VmRegistrationModel) -> String {
    use time::format_description::well_known::Rfc3339;
    let timeout = TimeoutsModel::get(&model.timeouts, Operation::Create, DEFAULT_TIMEOUT);
    let until = time::OffsetDateTime::now_utc() + timeout + PENDING_SLACK;
    until
        .replace_nanosecond(0)
        .unwrap_or(until)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// A manual entry edited outside Terraform (its address, ports, labels, ...) no longer is what
/// the registration applies.
fn manual_entry_edited(
    model: &VmRegistrationModel,
    found: &WorkloadEntry,
    group: &Group,
    registration: &str,
) -> bool {
    if model.mode.as_deref() != Some("manual") {
        return false;
    }
    let name = found.metadata.name.as_deref().unwrap_or_default();
    match cluster::manual_entry(model, group, name, registration) {
        Ok(wanted) => !cluster::entry_is_current(found, &wanted),
        Err(_) => false,
    }
}

/// What the wait saw last, and what to check: for an auto registration without an entry, every
/// step between the bundle and the entry istiod creates.
fn last_state(model: &VmRegistrationModel, istio_namespace: &str) -> String {
    let entry = model.workload_entry_name.clone().unwrap_or_default();
    let advice = if entry.is_empty() && model.mode.as_deref() != Some("manual") {
        let (namespace, group) = model
            .workload_group
            .split_once('/')
            .unwrap_or(("", &model.workload_group));
        format!(
            "istiod did not auto-register the VM. {}",
            autoregistration_checklist(istio_namespace, group, namespace)
        )
    } else {
        "Check that the VM runs the Istio agent with this bundle and that its probe succeeds."
            .into()
    };
    format!(
        "Last state: entry {entry:?}, {}. {advice} The registration is kept (tainted) so nothing is lost.",
        model.health_message.clone().unwrap_or_default()
    )
}

/// `wait_for_healthy` needs a group with a probe (see `health_is_reported`); checked at plan
/// when the group exists, and again at apply before anything is written.
fn wait_problem(model: &VmRegistrationModel, group: &WorkloadGroup) -> Option<ResourceError> {
    if !model.wait_for_healthy.unwrap_or(false) {
        return None;
    }
    let problem = health_is_reported(group).err()?;
    Some(ResourceError::missing(Some("wait_for_healthy"), problem))
}

/// What in the group keeps this registration from working, checked before anything is written:
/// metadata no WorkloadEntry can carry, or a wait that can only time out.
fn group_problem(model: &VmRegistrationModel, group: &WorkloadGroup) -> Option<ResourceError> {
    validate::inherited_metadata_problem(group)
        .map(|problem| ResourceError::missing(Some("workload_group"), problem))
        .or_else(|| wait_problem(model, group))
}

impl VmRegistrationResource {
    /// Says at plan what in an existing group keeps the registration from working (create and
    /// update check again before writing anything): metadata that no WorkloadEntry can carry
    /// (on `workload_group`), and `wait_for_healthy` on a group without a probe, which could
    /// only time out. A group that does not exist yet (or cannot be read) is checked at apply.
    async fn check_group(&self, planned: &Value, diags: &mut Diagnostics) {
        let Some(Value::String(reference)) = planned.get_attr("workload_group") else {
            return;
        };
        let model = VmRegistrationModel {
            workload_group: reference.clone(),
            wait_for_healthy: planned
                .get_attr("wait_for_healthy")
                .and_then(Value::as_bool),
            ..Default::default()
        };
        let Some(configured) = self.handle.configured(&mut Diagnostics::new()).await else {
            return;
        };
        let Ok(group) = Registration::new(&configured, &model).group().await else {
            return;
        };
        if let Some(problem) = validate::inherited_metadata_problem(&group.group) {
            ResourceError::missing(Some("workload_group"), problem)
                .report("The group's WorkloadEntries cannot be created", diags);
        }
        if let Some(error) = wait_problem(&model, &group.group) {
            error.report("wait_for_healthy cannot succeed", diags);
        }
        self.check_istiod_certificate_name(planned, diags).await;
    }

    /// Says at plan when the VM would ask istiod for its certificate by a name istiod's
    /// certificate lacks; skipped while the attributes that choose the address are unknown.
    /// This covers apply too: Terraform plans each resource again during apply, with the
    /// values known by then (a group created in the same run).
    async fn check_istiod_certificate_name(&self, planned: &Value, diags: &mut Diagnostics) {
        let reach = [
            "workload_group",
            "revision",
            "istiod_address",
            "ingress_ip",
            "ingress_service",
        ];
        if reach
            .iter()
            .any(|name| planned.get_attr(name).is_some_and(|v| !v.is_known()))
        {
            return;
        }
        let Some(model) =
            decode::<VmRegistrationModel>(planned, UnknownAs::Null, &mut Diagnostics::new())
        else {
            return;
        };
        let Some(configured) = self.handle.configured(&mut Diagnostics::new()).await else {
            return;
        };
        if let Some((attribute, message)) = Registration::new(&configured, &model)
            .istiod_certificate_warning(&model)
            .await
        {
            diags.warning(
                "The VM would never get its certificate",
                message,
                AttributePath::new(attribute),
            );
        }
    }
}

/// `<namespace>/<group>/<registration-id>`.
fn parse_registration_id(id: &str) -> Option<(&str, &str, &str)> {
    let mut parts = id.split('/');
    let parts = (parts.next()?, parts.next()?, parts.next()?, parts.next());
    match parts {
        (namespace, group, registration, None)
            if !namespace.is_empty() && !group.is_empty() && !registration.is_empty() =>
        {
            Some((namespace, group, registration))
        }
        _ => None,
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

/// False when the VM's token comes from the ephemeral `istio_vm_bootstrap` instead.
pub(super) fn issues_token(model: &VmRegistrationModel) -> bool {
    model.issue_token.unwrap_or(true)
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
    model.bundle.record_files(bundle);
    model.bundle_sha256 = Some(bundle.sha256.clone());
}

pub(super) fn record_health(model: &mut VmRegistrationModel, entry: Option<&WorkloadEntry>) {
    let manual = model.mode.as_deref() == Some("manual");
    model.workload_entry_name = Some(
        entry
            .and_then(|e| e.metadata.name.clone())
            .unwrap_or_default(),
    );
    let health = match entry {
        Some(entry) => entry_health(entry),
        None => crate::istio::EntryHealth {
            healthy: false,
            message: if manual {
                "the WorkloadEntry does not exist".into()
            } else {
                "the VM has not connected to istiod yet (no auto-registered WorkloadEntry)".into()
            },
        },
    };
    model.healthy = Some(health.healthy);
    model.health_message = Some(health.message);
}

#[cfg(test)]
pub(super) mod tests {
    use super::cluster::workload_ip;
    use super::*;
    use crate::istio::WorkloadIp;

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

    /// Issue "Field defects" item 4: a manual entry's VM announces the entry's address, not
    /// whatever `hostname --all-ip-addresses` lists first (istio-start.sh's default).
    #[test]
    fn manual_mode_pins_istio_svc_ip_to_the_address() {
        let manual = VmRegistrationModel {
            mode: Some("manual".into()),
            address: Some("10.0.0.5".into()),
            ..Default::default()
        };
        assert_eq!(
            workload_ip(&manual),
            Some(WorkloadIp::Internal("10.0.0.5".parse().unwrap()))
        );
        let explicit = VmRegistrationModel {
            settings: BundleSettingsModel {
                internal_ip: Some("10.0.0.9".into()),
                ..Default::default()
            },
            ..manual.clone()
        };
        assert_eq!(
            workload_ip(&explicit),
            Some(WorkloadIp::Internal("10.0.0.9".parse().unwrap()))
        );
        let external = VmRegistrationModel {
            settings: BundleSettingsModel {
                external_ip: Some("203.0.113.7".into()),
                ..Default::default()
            },
            ..manual
        };
        assert_eq!(
            workload_ip(&external),
            Some(WorkloadIp::External("203.0.113.7".parse().unwrap()))
        );
        let auto = VmRegistrationModel::default();
        assert_eq!(workload_ip(&auto), None);
    }

    /// Issue "Field defects" item 9: a wait that ends without an auto-registered entry says
    /// what to check.
    #[test]
    fn a_wait_without_an_entry_names_what_to_check() {
        let mut model = VmRegistrationModel {
            workload_group: "shop/product-vm".into(),
            mode: Some("auto".into()),
            ..Default::default()
        };
        record_health(&mut model, None);
        let message = last_state(&model, "istio-system");
        for needle in [
            "did not auto-register",
            "ISTIO_META_AUTO_REGISTER_GROUP=product-vm",
            "15012",
            "PILOT_ENABLE_WORKLOAD_ENTRY_AUTOREGISTRATION",
            "shop/product-vm",
        ] {
            assert!(message.contains(needle), "{needle} in {message}");
        }
    }

    #[test]
    fn import_ids_have_three_parts() {
        assert_eq!(
            parse_registration_id("shop/product-vm/0b6c-uid"),
            Some(("shop", "product-vm", "0b6c-uid"))
        );
        assert_eq!(parse_registration_id("shop/product-vm"), None);
        assert_eq!(parse_registration_id("shop//uid"), None);
        assert_eq!(parse_registration_id("a/b/c/d"), None);
    }
}
