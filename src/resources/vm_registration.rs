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
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Operation, TimeoutsModel, validate_labels};
use super::workload_group::served_version;
use crate::cluster::KubeError;
use crate::cluster::apply::server_side_apply;
use crate::cluster::wait::wait_for_matching;
use crate::istio::control_plane::{
    AUTOREGISTRATION_ENV, autoregistration_checklist, autoregistration_enabled,
    ingress_service_location, is_plaintext_discovery, vm_cluster_id,
};
use crate::istio::crd::{IstioApiVersion, WorkloadEntry, WorkloadGroup, from_dynamic, to_dynamic};
use crate::istio::health::health_is_reported;
use crate::istio::rules;
use crate::istio::{
    Bundle, BundleInputs, IstiodReach, ManualRegistration, RegistrationMode, WorkloadIp,
    injector_configmap_name, manual_workload_entry, mesh_configmap_name, render_bundle,
    service_account, workload_entry_name,
};
use crate::istio::{entry_health, is_healthy};
use crate::provider::{Configured, ProviderHandle};
use crate::tfplug::{
    AttributePath, Ctx, Diagnostics, Plan, Resource, Schema, UnknownAs, Value, decode, encode,
};
use crate::validation;

/// Label put on everything a registration creates (Secret, manual entry) and, through the
/// bundle, on the entry istiod auto-registers: how the provider finds them again.
pub const REGISTRATION_LABEL: &str = "terraform-provider-istio/registration";
const DEFAULT_TOKEN_DURATION: &str = "1h";
const MINIMUM_TOKEN_SECONDS: u64 = 600;
const DEFAULT_RENEW_BEFORE: &str = "15m";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
const DEFAULT_INGRESS_SERVICE: &str = "istio-eastwestgateway";

/// One virtual machine registered into the mesh from a WorkloadGroup: its bootstrap token,
/// the five bootstrap files (`cluster.env`, `mesh.yaml`, `hosts`, `root-cert.pem`,
/// `istio-token`) as attributes and optionally on disk, its registration (istiod
/// auto-registration or a WorkloadEntry created here) and its health as istiod reports it.
///
/// Deliver the files to the VM with any mechanism (user-data, provisioners) and use
/// `bundle_sha256` as its trigger. The token is renewed by the first plan inside
/// `renew_before` of its expiry. If `wait_for_healthy` times out on create, the registration
/// is saved as tainted (as the kubernetes provider does) and replaced on the next apply.
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
    /// Network of the VM for multi-network meshes; overrides the group's `template.network`.
    /// It is part of the entry name, so it must be lower-case letters, digits, '-' and '.'.
    /// In manual mode a change replaces the entry (the old one is deleted). In auto mode
    /// istiod does not change an existing entry: a change of `network`, `locality` or
    /// `labels` reaches the entry when the VM reconnects with the new bundle (the plan warns).
    pub network: Option<String>,
    /// Locality `region/zone/subzone` of the VM (at most three parts; see `network` for
    /// changes in auto mode).
    pub locality: Option<String>,
    /// Labels of this VM, added to the group's (they win over the group's labels; see
    /// `network` for changes in auto mode).
    pub labels: Option<BTreeMap<String, String>>,
    /// Load-balancing weight of this VM's entry (manual mode), 0–4294967295; 0 means Istio's
    /// default.
    pub weight: Option<i64>,
    /// Cluster ID the VM announces (`ISTIO_META_CLUSTER_ID`). Default, as istioctl picks it:
    /// `global.multiCluster.clusterName` of the `istio-sidecar-injector[-<revision>]` ConfigMap,
    /// or empty when that is empty (Istio's default install), in which case istiod takes the VM
    /// for one of its own cluster.
    #[schemars(extend("x-tf" = {"optional_computed": true}))]
    pub cluster_id: Option<String>,
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
    /// name); istiod's own name is then checked through `ISTIOD_SAN`.
    pub istiod_address: Option<String>,
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

/// Attributes that are derived from the bundle: unknown in a plan that changes the bundle.
const BUNDLE_ATTRIBUTES: [&str; 6] = [
    "cluster_env",
    "mesh_config",
    "hosts",
    "root_cert",
    "bundle_sha256",
    "workload_entry_name",
];
const TOKEN_ATTRIBUTES: [&str; 3] = ["istio_token", "token_expires_at", "bundle_sha256"];
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
        super::common::validate_config::<VmRegistrationModel>(config, diags, |model, diags| {
            validate_model(model, config, diags)
        });
    }

    async fn plan(&self, _ctx: &Ctx, plan: &mut Plan, diags: &mut Diagnostics) {
        if plan.planned.is_null() {
            return;
        }
        super::common::plan_default(plan, "mode", Value::string("auto"));
        self.check_wait_has_probe(&plan.planned, diags).await;
        let Some(prior) = plan.prior.clone() else {
            return;
        };
        let ignored = auto_entry_changes(&prior, &plan.planned);
        if let Some(first) = ignored.first() {
            diags.warning(
                "istiod will not update the VM's WorkloadEntry",
                format!(
                    "In auto mode istiod creates the entry when the VM connects and does not change an existing one (pilot/pkg/autoregistration): the new {} reach the entry only when the VM reconnects with the new bundle. Deliver the new files and restart the VM's istio agent (the entry is re-created on reconnection), or replace the registration.",
                    ignored.join(", ")
                ),
                AttributePath::new(*first),
            );
        }
        let renew = token_due(&prior, &plan.planned);
        let changed = plan.planned != prior
            || entry_missing(&prior)
            || files_outdated(&plan.planned)
            || renew;
        if changed {
            // Anything that changes makes the provider re-render the bundle and re-read health.
            for name in BUNDLE_ATTRIBUTES
                .iter()
                .chain(["healthy", "health_message"].iter())
            {
                plan.planned.set_attr(name, Value::Unknown);
            }
        }
        if renew {
            for name in TOKEN_ATTRIBUTES {
                plan.planned.set_attr(name, Value::Unknown);
            }
        }
    }

    async fn create(&self, ctx: &Ctx, planned: Value, diags: &mut Diagnostics) -> Option<Value> {
        let mut model = decode::<VmRegistrationModel>(&planned, UnknownAs::Null, diags)?;
        let configured = self.handle.configured(diags).await?;
        let registration = Registration::new(&configured, &model);
        let group = match registration.group().await {
            Ok(group) => group,
            Err(error) => return fail(diags, "workload_group", error, None),
        };
        if !check_wait(&model, &group.0, diags) {
            return None;
        }
        let secret = match registration.create_token_secret(&group).await {
            Ok(secret) => secret,
            Err(error) => return fail(diags, "workload_group", error, None),
        };
        model.token_secret_name = secret.metadata.name.clone();
        model.id = Some(format!(
            "{}/{}",
            model.workload_group,
            registration_id(&secret)
        ));
        // From here on the Secret exists: every error returns the state so it is not lost.
        let result = registration
            .issue_and_register(&mut model, &group, &secret, ctx, Operation::Create)
            .await;
        let state = encode(&model, &self.schema(), diags);
        if let Err((attribute, error)) = result {
            fail::<()>(diags, attribute, error, None);
        }
        state
    }

    async fn read(&self, _ctx: &Ctx, state: Value, diags: &mut Diagnostics) -> Option<Value> {
        let mut model = decode::<VmRegistrationModel>(&state, UnknownAs::Null, diags)?;
        let configured = self.handle.configured(diags).await?;
        let registration = Registration::new(&configured, &model);
        match registration
            .secret(model.token_secret_name.as_deref().unwrap_or_default())
            .await
        {
            Ok(Some(_)) => {}
            // Without its Secret the token is revoked: the registration is gone.
            Ok(None) => return None,
            Err(error) => {
                fail::<()>(diags, "", error, None);
                return Some(state);
            }
        }
        // The group, the mesh config or the root certificate may have changed since the last
        // apply: the state holds the bundle the cluster asks for now, so `bundle_sha256`
        // triggers re-delivery.
        let mut rendered = None;
        if let Ok(group) = registration.group().await {
            let registration_label = model
                .id
                .as_deref()
                .and_then(|id| id.rsplit('/').next())
                .unwrap_or_default()
                .to_string();
            match registration
                .bundle_inputs(&model, &group.0, &registration_label)
                .await
                .map(|inputs| render_bundle(&inputs).map(|bundle| (bundle, inputs.mode)))
            {
                Ok(Ok(bundle_and_mode)) => rendered = Some(bundle_and_mode),
                Ok(Err(error)) => {
                    diags.root_warning("Cannot re-render the VM bundle", error.to_string())
                }
                Err((_, error)) => {
                    diags.root_warning("Cannot re-render the VM bundle", error.to_string())
                }
            }
        }
        match registration.find_entry(&model).await {
            Ok(entry) => record_health(&mut model, entry.as_ref()),
            Err(error) => {
                fail::<()>(diags, "", error, None);
                return Some(state);
            }
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
        prior: Value,
        planned: Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let mut model = decode::<VmRegistrationModel>(&planned, UnknownAs::Null, diags)?;
        let prior_model = decode::<VmRegistrationModel>(&prior, UnknownAs::Null, diags)?;
        let configured = self.handle.configured(diags).await?;
        let registration = Registration::new(&configured, &model);
        let group = match registration.group().await {
            Ok(group) => group,
            Err(error) => return fail(diags, "workload_group", error, Some(prior)),
        };
        if !check_wait(&model, &group.0, diags) {
            return Some(prior);
        }
        let secret_name = prior_model.token_secret_name.clone().unwrap_or_default();
        let secret = match registration.secret(&secret_name).await {
            Ok(Some(secret)) => secret,
            Ok(None) => {
                diags.root_error("Token Secret is gone", format!("Secret {secret_name} was deleted outside Terraform; the registration must be replaced (`terraform apply -replace=...`)."));
                return Some(prior);
            }
            Err(error) => return fail(diags, "", error, Some(prior)),
        };
        model.token_secret_name = Some(secret_name);
        model.id = prior_model.id.clone();
        if !planned.get_attr("istio_token").is_some_and(Value::is_known) {
            model.istio_token = None;
        } else {
            model.istio_token = prior_model.istio_token.clone();
            model.token_expires_at = prior_model.token_expires_at.clone();
        }
        let result = registration
            .issue_and_register(&mut model, &group, &secret, ctx, Operation::Update)
            .await;
        let state = encode(&model, &self.schema(), diags);
        if let Err((attribute, error)) = result {
            fail::<()>(diags, attribute, error, None);
        }
        state
    }

    /// `<namespace>/<group>/<registration-id>`: adopts the token Secret (found by its
    /// registration label) and the VM's entry. The token itself cannot be read back, so the
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
                    format!("No token Secret in namespace {namespace} carries the label {REGISTRATION_LABEL}={registration}: the registration does not exist (or its token was revoked)."),
                );
                None
            }
            Err(error) => fail(diags, "", error, None),
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
        if let Err(error) = registration.remove(&model, ctx).await {
            fail::<()>(diags, "", error, None);
        }
        if let Some(dir) = &model.output_dir {
            if let Err(error) = remove_bundle_files(Path::new(dir)) {
                diags.error(
                    "Cannot remove bundle files",
                    error.to_string(),
                    AttributePath::new("output_dir"),
                );
            }
        }
    }
}

impl VmRegistrationResource {
    /// `wait_for_healthy` on a group without a probe could only time out: say so at plan when
    /// the group already exists (create and update check again before writing anything).
    async fn check_wait_has_probe(&self, planned: &Value, diags: &mut Diagnostics) {
        if planned
            .get_attr("wait_for_healthy")
            .and_then(Value::as_bool)
            != Some(true)
        {
            return;
        }
        let Some(Value::String(reference)) = planned.get_attr("workload_group") else {
            return;
        };
        let model = VmRegistrationModel {
            workload_group: reference.clone(),
            ..Default::default()
        };
        let Some(configured) = self.handle.configured(&mut Diagnostics::new()).await else {
            return;
        };
        if let Ok(group) = Registration::new(&configured, &model).group().await
            && let Err(problem) = health_is_reported(&group.0)
        {
            diags.error(
                "wait_for_healthy cannot succeed",
                problem,
                AttributePath::new("wait_for_healthy"),
            );
        }
    }
}

/// The plan-time rule again at apply, before anything is written.
fn check_wait(model: &VmRegistrationModel, group: &WorkloadGroup, diags: &mut Diagnostics) -> bool {
    if !model.wait_for_healthy.unwrap_or(false) {
        return true;
    }
    match health_is_reported(group) {
        Ok(()) => true,
        Err(problem) => {
            diags.error(
                "wait_for_healthy cannot succeed",
                problem,
                AttributePath::new("wait_for_healthy"),
            );
            false
        }
    }
}

fn fail<T>(
    diags: &mut Diagnostics,
    attribute: &str,
    error: KubeError,
    keep: Option<T>,
) -> Option<T> {
    let summary = "VM registration failed";
    if attribute.is_empty() {
        diags.root_error(summary, error.to_string());
    } else {
        diags.error(summary, error.to_string(), AttributePath::new(attribute));
    }
    keep
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

// ---- plan helpers ----------------------------------------------------------------------------

/// A manual registration whose entry was deleted outside Terraform (Read records it as an
/// empty name): the next apply re-creates it.
fn entry_missing(prior: &Value) -> bool {
    prior.get_attr("mode").and_then(Value::as_str) == Some("manual")
        && prior
            .get_attr("workload_entry_name")
            .and_then(Value::as_str)
            == Some("")
}

/// Attributes istiod copies into an auto-registered entry only when it creates it (on the VM's
/// connection, `workloadEntryFromGroup` in `pilot/pkg/autoregistration/controller.go`); a change
/// does not reach an entry that exists until the VM reconnects.
fn auto_entry_changes(prior: &Value, planned: &Value) -> Vec<&'static str> {
    if planned.get_attr("mode").and_then(Value::as_str) == Some("manual") {
        return Vec::new();
    }
    ["network", "locality", "labels"]
        .into_iter()
        .filter(|name| {
            let after = planned.get_attr(name);
            after.is_some_and(Value::is_known) && prior.get_attr(name) != after
        })
        .collect()
}

/// Files in `output_dir` that no longer match the bundle in state (deleted, edited, or the
/// bundle was refreshed): the next apply rewrites them.
fn files_outdated(planned: &Value) -> bool {
    let Some(dir) = planned.get_attr("output_dir").and_then(Value::as_str) else {
        return false;
    };
    let files = [
        ("cluster.env", "cluster_env"),
        ("mesh.yaml", "mesh_config"),
        ("hosts", "hosts"),
        ("root-cert.pem", "root_cert"),
        ("istio-token", "istio_token"),
    ];
    files.iter().any(|(file, attribute)| {
        match planned.get_attr(attribute).and_then(Value::as_str) {
            Some(expected) => std::fs::read_to_string(Path::new(dir).join(file))
                .map_or(true, |actual| actual != expected),
            None => false,
        }
    })
}

fn token_due(prior: &Value, planned: &Value) -> bool {
    let renew_before = planned
        .get_attr("renew_before")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_RENEW_BEFORE)
        .to_string();
    let Ok(renew_before) = validation::duration(&renew_before) else {
        return false;
    };
    let Some(expires_at) = prior.get_attr("token_expires_at").and_then(Value::as_str) else {
        return true;
    };
    let Ok(expires_at) =
        time::OffsetDateTime::parse(expires_at, &time::format_description::well_known::Rfc3339)
    else {
        return true;
    };
    let now = time::OffsetDateTime::now_utc();
    expires_at - now < time::Duration::try_from(renew_before).unwrap_or(time::Duration::ZERO)
}

// ---- validation ----------------------------------------------------------------------------

fn validate_model(model: &VmRegistrationModel, config: &Value, diags: &mut Diagnostics) {
    let known = |name: &str| {
        config
            .get_attr(name)
            .is_some_and(|v| !v.is_null() && v.is_known())
    };
    if known("workload_group") {
        validate_group_reference(&model.workload_group, diags);
    }
    let mode = model.mode.as_deref().unwrap_or("auto");
    if known("mode") && mode != "auto" && mode != "manual" {
        diags.error(
            "Invalid mode",
            format!("mode {mode:?} is not supported: use \"auto\" or \"manual\""),
            AttributePath::new("mode"),
        );
    }
    if mode == "manual" && config.get_attr("address").is_some_and(Value::is_null) {
        diags.error(
            "Missing address",
            "mode = \"manual\" needs `address`, the VM's IP: the WorkloadEntry is created with it.",
            AttributePath::new("address"),
        );
    }
    for (name, value) in [
        ("address", &model.address),
        ("internal_ip", &model.internal_ip),
        ("external_ip", &model.external_ip),
        ("ingress_ip", &model.ingress_ip),
    ] {
        if let Some(text) = value.as_deref().filter(|_| known(name)) {
            if text.parse::<IpAddr>().is_err() {
                diags.error(
                    "Invalid IP address",
                    format!("{text:?} is not an IPv4 or IPv6 address"),
                    AttributePath::new(name),
                );
            }
        }
    }
    if known("internal_ip") && known("external_ip") {
        diags.error(
            "Conflicting attributes",
            "Set `internal_ip` or `external_ip`, not both.",
            AttributePath::new("external_ip"),
        );
    }
    if known("ingress_ip") && known("istiod_address") {
        diags.error(
            "Conflicting attributes",
            "Set `ingress_ip` or `istiod_address`, not both.",
            AttributePath::new("istiod_address"),
        );
    }
    if let Some(address) = model
        .istiod_address
        .as_deref()
        .filter(|_| known("istiod_address"))
    {
        match parse_host_port(address) {
            None => diags.error(
                "Invalid istiod_address",
                format!("{address:?} must be host or host:port, e.g. istiod.example.com:15012"),
                AttributePath::new("istiod_address"),
            ),
            Some((host, port)) if is_plaintext_discovery(&format!("{host}:{port}")) => diags.error(
                "Invalid istiod_address",
                format!("{address:?} is istiod's plaintext port: the VM would connect without its token and certificate, so istiod can neither issue it a certificate nor register it. Use the TLS port 15012."),
                AttributePath::new("istiod_address"),
            ),
            Some(_) => {}
        }
    }
    if let Some(service) = model
        .ingress_service
        .as_deref()
        .filter(|_| known("ingress_service"))
    {
        let (name, namespace) = ingress_service_location(service, "istio-system");
        if let Err(problem) =
            validation::dns1123_label(&name).and_then(|()| validation::dns1123_label(&namespace))
        {
            diags.error(
                "Invalid ingress_service",
                format!("{problem}; write <service> or <service>.<namespace>"),
                AttributePath::new("ingress_service"),
            );
        }
    }
    validate_labels(&model.labels, AttributePath::new("labels"), diags);
    if let Some(Err(problem)) = model.weight.map(rules::weight) {
        diags.error("Invalid weight", problem, AttributePath::new("weight"));
    }
    if let Some(Err(problem)) = model
        .network
        .as_deref()
        .filter(|n| !n.is_empty())
        .map(rules::network)
    {
        diags.error("Invalid network", problem, AttributePath::new("network"));
    }
    if let Some(Err(problem)) = model
        .locality
        .as_deref()
        .filter(|l| !l.is_empty())
        .map(rules::locality)
    {
        diags.error("Invalid locality", problem, AttributePath::new("locality"));
    }
    if let Some(revision) = model.revision.as_deref().filter(|r| !r.is_empty()) {
        if let Err(problem) = validation::dns1123_label(revision) {
            diags.error("Invalid revision", problem, AttributePath::new("revision"));
        }
    }
    validate_token_durations(model, diags);
    if let Some(timeouts) = &model.timeouts {
        timeouts.validate(diags);
    }
    if let Some(dir) = model.output_dir.as_deref().filter(|d| d.is_empty()) {
        diags.error(
            "Invalid output_dir",
            format!("{dir:?}: give a directory path, or leave it unset"),
            AttributePath::new("output_dir"),
        );
    }
}

fn validate_group_reference(reference: &str, diags: &mut Diagnostics) {
    match reference.split_once('/') {
        Some((namespace, name)) if validation::dns1123_label(namespace).is_ok() && validation::dns1123_subdomain(name).is_ok() => {}
        _ => diags.error(
            "Invalid workload_group",
            format!("{reference:?} must be <namespace>/<name> of a WorkloadGroup, e.g. istio_workload_group.product.id or \"default/product-vm\""),
            AttributePath::new("workload_group"),
        ),
    }
}

fn validate_token_durations(model: &VmRegistrationModel, diags: &mut Diagnostics) {
    let duration = model.token_duration.as_deref().map(validation::duration);
    match &duration {
        Some(Err(problem)) => diags.error(
            "Invalid token_duration",
            problem.clone(),
            AttributePath::new("token_duration"),
        ),
        Some(Ok(d)) if d.as_secs() < MINIMUM_TOKEN_SECONDS => diags.error(
            "Invalid token_duration",
            format!(
                "{} is shorter than Kubernetes' minimum token lifetime of 10m",
                model.token_duration.as_deref().unwrap_or_default()
            ),
            AttributePath::new("token_duration"),
        ),
        _ => {}
    }
    let token = duration
        .and_then(Result::ok)
        .unwrap_or(Duration::from_secs(3600));
    match model.renew_before.as_deref().map(validation::duration) {
        Some(Err(problem)) => diags.error(
            "Invalid renew_before",
            problem,
            AttributePath::new("renew_before"),
        ),
        Some(Ok(renew)) if renew >= token => diags.error(
            "Invalid renew_before",
            "renew_before must be shorter than token_duration, or every plan would renew the token",
            AttributePath::new("renew_before"),
        ),
        _ => {}
    }
}

fn parse_host_port(address: &str) -> Option<(String, u16)> {
    let (host, port) = match address.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') || host.starts_with('[') => {
            (host.trim_matches(['[', ']']), port.parse().ok()?)
        }
        _ => (address, 15012),
    };
    (!host.is_empty() && port > 0).then(|| (host.to_string(), port))
}

// ---- cluster work ----------------------------------------------------------------------------

/// One registration's view of the cluster.
struct Registration<'a> {
    configured: &'a Configured,
    namespace: String,
    group_name: String,
    revision: Option<String>,
}

type StepResult = Result<(), (&'static str, KubeError)>;

impl<'a> Registration<'a> {
    fn new(configured: &'a Configured, model: &VmRegistrationModel) -> Self {
        let (namespace, group_name) = model
            .workload_group
            .split_once('/')
            .unwrap_or(("default", &model.workload_group));
        Registration {
            configured,
            namespace: namespace.to_string(),
            group_name: group_name.to_string(),
            revision: model
                .revision
                .clone()
                .filter(|r| !r.is_empty())
                .or_else(|| configured.revision.clone()),
        }
    }

    fn client(&self) -> Client {
        self.configured.client.clone()
    }

    async fn group(&self) -> Result<(WorkloadGroup, IstioApiVersion), KubeError> {
        let version = served_version(&self.client()).await?;
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client(),
            &self.namespace,
            &version.api_resource("WorkloadGroup"),
        );
        let object = api.get_opt(&self.group_name).await?.ok_or_else(|| {
            KubeError::InvalidSetting {
                attribute: "workload_group",
                message: format!(
                    "WorkloadGroup {}/{} does not exist; create it first (istio_workload_group)",
                    self.namespace, self.group_name
                ),
            }
        })?;
        let group = from_dynamic(object).map_err(|e| KubeError::Watch {
            what: "WorkloadGroup".into(),
            detail: e.to_string(),
        })?;
        Ok((group, version))
    }

    async fn create_token_secret(
        &self,
        (group, _): &(WorkloadGroup, IstioApiVersion),
    ) -> Result<Secret, KubeError> {
        let api: Api<Secret> = Api::namespaced(self.client(), &self.namespace);
        let secret = Secret {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-vm-", self.group_name)),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/managed-by".into(),
                    "terraform-provider-istio".into(),
                )])),
                annotations: Some(BTreeMap::from([(
                    "terraform-provider-istio/purpose".into(),
                    format!(
                        "Bootstrap tokens of a VM in WorkloadGroup {} are bound to this Secret; deleting it revokes them.",
                        group.metadata.name.clone().unwrap_or_default()
                    ),
                )])),
                ..Default::default()
            },
            type_: Some("Opaque".into()),
            ..Default::default()
        };
        let created = api.create(&PostParams::default(), &secret).await?;
        // The registration label carries the server-assigned UID: unique, and valid as a label.
        let mut labelled = created.clone();
        labelled
            .metadata
            .labels
            .get_or_insert_default()
            .insert(REGISTRATION_LABEL.into(), registration_id(&created));
        labelled.metadata.managed_fields = None;
        let name = created.metadata.name.clone().unwrap_or_default();
        Ok(api
            .replace(&name, &PostParams::default(), &labelled)
            .await
            .unwrap_or(created))
    }

    async fn secret(&self, name: &str) -> Result<Option<Secret>, KubeError> {
        if name.is_empty() {
            return Ok(None);
        }
        Ok(Api::<Secret>::namespaced(self.client(), &self.namespace)
            .get_opt(name)
            .await?)
    }

    /// Fills `model` from the cluster for an import: the token Secret, and for a manual entry
    /// (one without istiod's auto-registration annotation) the mode, address and network.
    /// False when no Secret carries the registration label.
    async fn imported(
        &self,
        model: &mut VmRegistrationModel,
        registration: &str,
    ) -> Result<bool, KubeError> {
        let selector = format!("{REGISTRATION_LABEL}={registration}");
        let secrets: Api<Secret> = Api::namespaced(self.client(), &self.namespace);
        let list = secrets
            .list(&kube::api::ListParams::default().labels(&selector))
            .await?;
        let Some(secret) = list.items.into_iter().next() else {
            return Ok(false);
        };
        model.token_secret_name = secret.metadata.name;
        let entry = self.find_entry(model).await?;
        let manual = entry.as_ref().is_some_and(|e| {
            e.metadata
                .annotations
                .as_ref()
                .is_none_or(|a| !a.contains_key(crate::istio::AUTO_REGISTRATION_GROUP_ANNOTATION))
        });
        model.mode = Some(if manual { "manual" } else { "auto" }.into());
        if let Some(entry) = entry.filter(|_| manual) {
            model.address = Some(entry.spec.address.clone()).filter(|a| !a.is_empty());
            model.weight = entry.spec.weight.map(i64::from);
        }
        Ok(true)
    }

    /// Token (when needed), bundle, entry, files and the optional health wait.
    async fn issue_and_register(
        &self,
        model: &mut VmRegistrationModel,
        (group, version): &(WorkloadGroup, IstioApiVersion),
        secret: &Secret,
        ctx: &Ctx,
        operation: Operation,
    ) -> StepResult {
        let registration = registration_id(secret);
        if model.istio_token.is_none() {
            let (token, expires_at) = self
                .request_token(group, secret, model)
                .await
                .map_err(|e| ("token_duration", e))?;
            model.istio_token = Some(token);
            model.token_expires_at = Some(expires_at);
        }
        let inputs = self.bundle_inputs(model, group, &registration).await?;
        if inputs.mode == RegistrationMode::Auto {
            self.check_autoregistration(&inputs.istio_namespace, &inputs.revision)
                .await?;
        }
        let bundle = render_bundle(&inputs).map_err(|e| {
            (
                "workload_group",
                KubeError::InvalidSetting {
                    attribute: "workload_group",
                    message: e.to_string(),
                },
            )
        })?;
        if let RegistrationMode::Manual { entry_name } = &inputs.mode {
            self.apply_manual_entry(model, group, *version, entry_name, &registration)
                .await
                .map_err(|e| ("address", e))?;
            model.workload_entry_name = Some(entry_name.clone());
        }
        // Only now does the entry the bundle names exist.
        record_bundle(model, &bundle);
        if let Some(dir) = &model.output_dir {
            write_bundle_files(Path::new(dir), &bundle).map_err(|e| {
                (
                    "output_dir",
                    KubeError::InvalidSetting {
                        attribute: "output_dir",
                        message: e.to_string(),
                    },
                )
            })?;
        }
        if model.wait_for_healthy.unwrap_or(false) {
            let timeout = TimeoutsModel::get(&model.timeouts, operation, DEFAULT_TIMEOUT);
            let outcome = self.wait_healthy(&registration, timeout, ctx).await;
            let (entry, error) = match outcome {
                Ok(entry) => (Some(entry), None),
                Err((error, last)) => (last, Some(error)),
            };
            record_health(model, entry.as_ref());
            if let Some(error) = error {
                return Err((
                    "wait_for_healthy",
                    health_error(error, model, &self.configured.istio_namespace),
                ));
            }
        } else {
            let entry = self.find_entry(model).await.map_err(|e| ("", e))?;
            record_health(model, entry.as_ref());
        }
        Ok(())
    }

    /// istiod must auto-register at all: `PILOT_ENABLE_WORKLOAD_ENTRY_AUTOREGISTRATION` of its
    /// Deployment, where that can be read.
    async fn check_autoregistration(&self, istio_namespace: &str, revision: &str) -> StepResult {
        let env = crate::cluster::mesh::istiod_env(&self.client(), istio_namespace, revision).await;
        let value = env.as_ref().and_then(|env| {
            env.iter()
                .find(|(name, _)| name == AUTOREGISTRATION_ENV)
                .and_then(|(_, value)| value.clone())
        });
        if autoregistration_enabled(value.as_deref()) {
            return Ok(());
        }
        Err((
            "mode",
            KubeError::InvalidSetting {
                attribute: "mode",
                message: format!(
                    "istiod ({istio_namespace}, revision {revision:?}) runs with {AUTOREGISTRATION_ENV}={}: it will never create the VM's WorkloadEntry. Enable it on istiod, or use mode = \"manual\"",
                    value.unwrap_or_default()
                ),
            },
        ))
    }

    async fn request_token(
        &self,
        group: &WorkloadGroup,
        secret: &Secret,
        model: &VmRegistrationModel,
    ) -> Result<(String, String), KubeError> {
        let account = service_account(&group.spec).to_string();
        let seconds = validation::duration(
            model
                .token_duration
                .as_deref()
                .unwrap_or(DEFAULT_TOKEN_DURATION),
        )
        .map_or(3600, |d| d.as_secs() as i64);
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: Some(vec![crate::istio::TOKEN_AUDIENCE.to_string()]),
                expiration_seconds: Some(seconds),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Secret".into()),
                    name: secret.metadata.name.clone(),
                    uid: secret.metadata.uid.clone(),
                }),
            }),
            ..Default::default()
        };
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client(), &self.namespace);
        let issued = accounts.create_token_request(&account, &PostParams::default(), &request).await.map_err(|error| match error {
            kube::Error::Api(status) if status.code == 404 => KubeError::InvalidSetting {
                attribute: "workload_group",
                message: format!("ServiceAccount {}/{account} (the group's template.service_account) does not exist; create it before registering VMs", self.namespace),
            },
            other => other.into(),
        })?;
        let status = issued.status.ok_or_else(|| KubeError::Watch {
            what: "the TokenRequest".into(),
            detail: "no status returned".into(),
        })?;
        let expires_at = status
            .expiration_timestamp
            .map(|t| t.0.to_string())
            .unwrap_or_default();
        let token = status
            .token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| KubeError::Watch {
                what: "the TokenRequest".into(),
                detail: "no token returned".into(),
            })?;
        Ok((token, normalise_rfc3339(&expires_at)))
    }

    async fn bundle_inputs(
        &self,
        model: &VmRegistrationModel,
        group: &WorkloadGroup,
        registration: &str,
    ) -> Result<BundleInputs, (&'static str, KubeError)> {
        let istio_namespace = self.configured.istio_namespace.clone();
        let revision = crate::cluster::mesh::resolve_revision(
            &self.client(),
            &istio_namespace,
            self.revision.as_deref(),
        )
        .await;
        let config_maps: Api<ConfigMap> = Api::namespaced(self.client(), &istio_namespace);
        let mesh_name = mesh_configmap_name(&revision);
        let mesh_config_yaml = crate::cluster::mesh::config_map_key(
            &config_maps,
            &mesh_name,
            crate::istio::MESH_CONFIG_KEY,
        )
        .await
        .map_err(|e| ("revision", e))?
        .ok_or_else(|| ("revision", missing_config_map(&istio_namespace, &mesh_name)))?;
        let cluster_id = match &model.cluster_id {
            Some(id) => id.clone(),
            None => self.default_cluster_id(&config_maps, &revision).await?,
        };
        let root_cert = crate::cluster::mesh::config_map_key(
            &Api::namespaced(self.client(), &self.namespace),
            crate::istio::ROOT_CERT_CONFIGMAP,
            crate::istio::ROOT_CERT_KEY,
        )
        .await
        .map_err(|e| ("workload_group", e))?
        .ok_or_else(|| ("workload_group", KubeError::InvalidSetting {
            attribute: "workload_group",
            message: format!("ConfigMap {}/istio-ca-root-cert is missing: istiod publishes it in every namespace once it runs; check that istiod is up", self.namespace),
        }))?;
        let istiod = self.istiod_reach(model, &istio_namespace).await?;
        let mode = match model.mode.as_deref() {
            Some("manual") => {
                let network = model.network.clone().or_else(|| {
                    Some(group.spec.template.network.clone()).filter(|n| !n.is_empty())
                });
                RegistrationMode::Manual {
                    entry_name: workload_entry_name(
                        &self.group_name,
                        model.address.as_deref().unwrap_or_default(),
                        network.as_deref(),
                    ),
                }
            }
            _ => RegistrationMode::Auto,
        };
        let mut extra_labels = model.labels.clone().unwrap_or_default();
        extra_labels.insert(REGISTRATION_LABEL.into(), registration.to_string());
        Ok(BundleInputs {
            group_name: self.group_name.clone(),
            group_namespace: self.namespace.clone(),
            group_annotations: group.metadata.annotations.clone().unwrap_or_default(),
            group_spec: group.spec.clone(),
            istio_namespace,
            revision,
            cluster_id,
            mesh_config_yaml,
            root_cert,
            token: model.istio_token.clone().unwrap_or_default(),
            istiod,
            workload_ip: workload_ip(model),
            capture_dns: model.capture_dns.unwrap_or(true),
            mode,
            network: model.network.clone(),
            locality: model.locality.clone(),
            extra_labels,
        })
    }

    /// istioctl's default: the injector's clusterName, or empty (`vm_cluster_id`).
    async fn default_cluster_id(
        &self,
        config_maps: &Api<ConfigMap>,
        revision: &str,
    ) -> Result<String, (&'static str, KubeError)> {
        let values = crate::cluster::mesh::config_map_key(
            config_maps,
            &injector_configmap_name(revision),
            crate::istio::INJECTOR_VALUES_KEY,
        )
        .await
        .map_err(|e| ("cluster_id", e))?;
        vm_cluster_id(values.as_deref(), revision).map_err(|e| {
            (
                "cluster_id",
                KubeError::InvalidSetting {
                    attribute: "cluster_id",
                    message: e.to_string(),
                },
            )
        })
    }

    async fn istiod_reach(
        &self,
        model: &VmRegistrationModel,
        istio_namespace: &str,
    ) -> Result<IstiodReach, (&'static str, KubeError)> {
        if let Some((host, port)) = model.istiod_address.as_deref().and_then(parse_host_port) {
            return Ok(IstiodReach::DiscoveryAddress { host, port });
        }
        if let Some(ip) = model.ingress_ip.as_deref().and_then(|ip| ip.parse().ok()) {
            return Ok(IstiodReach::HostsEntry(ip));
        }
        let (service_name, service_namespace) = ingress_service_location(
            model
                .ingress_service
                .as_deref()
                .unwrap_or(DEFAULT_INGRESS_SERVICE),
            istio_namespace,
        );
        let services: Api<Service> = Api::namespaced(self.client(), &service_namespace);
        let service = services
            .get_opt(&service_name)
            .await
            .map_err(|e| ("ingress_service", e.into()))?;
        if let Some(spec) = service.as_ref().and_then(|s| s.spec.as_ref()) {
            let port = i32::from(crate::istio::ISTIOD_TLS_PORT);
            let ports = spec.ports.as_deref().unwrap_or_default();
            if !ports.iter().any(|p| p.port == port) {
                return Err((
                    "ingress_service",
                    KubeError::InvalidSetting {
                        attribute: "ingress_service",
                        message: format!(
                            "Service {service_namespace}/{service_name} does not expose port {port}: VMs reach istiod's certificate and discovery server through it. Expose istiod on the gateway (Istio's expose-istiod configuration), or set `ingress_ip`/`istiod_address`"
                        ),
                    },
                ));
            }
        }
        // istioctl's fallback when the Service has no load-balancer address.
        let external_ip = service
            .as_ref()
            .and_then(|s| s.spec.as_ref())
            .and_then(|spec| spec.external_ips.as_ref())
            .and_then(|ips| ips.first())
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        let ingress = service
            .and_then(|s| s.status)
            .and_then(|s| s.load_balancer)
            .and_then(|lb| lb.ingress)
            .and_then(|mut list| (!list.is_empty()).then(|| list.remove(0)));
        match ingress {
            Some(point)
                if point
                    .ip
                    .as_deref()
                    .is_some_and(|ip| ip.parse::<IpAddr>().is_ok()) =>
            {
                Ok(IstiodReach::HostsEntry(
                    point.ip.unwrap_or_default().parse().expect("checked above"),
                ))
            }
            Some(point) if point.hostname.is_some() => Ok(IstiodReach::DiscoveryAddress {
                host: point.hostname.unwrap_or_default(),
                port: crate::istio::ISTIOD_TLS_PORT,
            }),
            _ if external_ip.is_some() => Ok(IstiodReach::HostsEntry(
                external_ip.expect("checked by the guard"),
            )),
            _ => Err((
                "ingress_service",
                KubeError::InvalidSetting {
                    attribute: "ingress_service",
                    message: format!(
                        "Service {service_namespace}/{service_name} has no load-balancer address or external IP for VMs to reach istiod; set `ingress_ip` or `istiod_address`, or expose istiod through an east-west gateway"
                    ),
                },
            )),
        }
    }

    async fn apply_manual_entry(
        &self,
        model: &VmRegistrationModel,
        group: &WorkloadGroup,
        version: IstioApiVersion,
        entry_name: &str,
        registration: &str,
    ) -> Result<(), KubeError> {
        let mut labels = model.labels.clone().unwrap_or_default();
        labels.insert(REGISTRATION_LABEL.into(), registration.to_string());
        let manual = ManualRegistration {
            entry_name: entry_name.to_string(),
            address: model.address.clone().unwrap_or_default(),
            network: model.network.clone(),
            locality: model.locality.clone(),
            weight: model.weight.map(|w| w as u32),
            labels,
            group_api_version: version,
        };
        let entry =
            manual_workload_entry(group, &manual).map_err(|e| KubeError::InvalidSetting {
                attribute: "address",
                message: e.to_string(),
            })?;
        let object = to_dynamic(&entry, version).map_err(|e| KubeError::InvalidSetting {
            attribute: "address",
            message: e.to_string(),
        })?;
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client(),
            &self.namespace,
            &version.api_resource("WorkloadEntry"),
        );
        server_side_apply(
            &api,
            entry_name,
            &object,
            &self.configured.field_manager,
            true,
        )
        .await?;
        self.delete_other_entries(registration, entry_name).await
    }

    /// The entry name contains the network: after a network change the registration's old
    /// entry would stay behind, announcing the VM at a network it left.
    async fn delete_other_entries(&self, registration: &str, keep: &str) -> Result<(), KubeError> {
        let selector = format!("{REGISTRATION_LABEL}={registration}");
        let entries = self.entries();
        let list = entries
            .list(&kube::api::ListParams::default().labels(&selector))
            .await?;
        for entry in list.items {
            let name = entry.metadata.name.unwrap_or_default();
            if name != keep {
                ignore_not_found(
                    entries
                        .delete(&name, &DeleteParams::default())
                        .await
                        .map(|_| ()),
                )?;
            }
        }
        Ok(())
    }

    fn entries(&self) -> Api<WorkloadEntry> {
        Api::namespaced(self.client(), &self.namespace)
    }

    /// The VM's entry: found by the registration label (auto-registered entries carry it from
    /// the bundle's labels; manual ones from us).
    async fn find_entry(
        &self,
        model: &VmRegistrationModel,
    ) -> Result<Option<WorkloadEntry>, KubeError> {
        let Some(registration) = model.id.as_deref().and_then(|id| id.rsplit('/').next()) else {
            return Ok(None);
        };
        let selector = format!("{REGISTRATION_LABEL}={registration}");
        let list = self
            .entries()
            .list(&kube::api::ListParams::default().labels(&selector))
            .await?;
        // After a VM re-connects from a new address istiod may briefly keep two entries:
        // prefer the healthy one.
        let healthy = list.items.iter().find(|e| is_healthy(e)).cloned();
        Ok(healthy.or_else(|| list.items.into_iter().next()))
    }

    async fn wait_healthy(
        &self,
        registration: &str,
        timeout: Duration,
        ctx: &Ctx,
    ) -> Result<WorkloadEntry, (KubeError, Option<WorkloadEntry>)> {
        let selector = format!("{REGISTRATION_LABEL}={registration}");
        let what = format!(
            "istiod to report the VM of WorkloadGroup {}/{} healthy",
            self.namespace, self.group_name
        );
        wait_for_matching(
            &self.entries(),
            &selector,
            is_healthy,
            timeout,
            &ctx.cancelled,
            &what,
        )
        .await
    }

    /// Entry (manual) and token Secret; deleting the Secret revokes every token bound to it.
    async fn remove(&self, model: &VmRegistrationModel, ctx: &Ctx) -> Result<(), KubeError> {
        if let Some(registration) = model.id.as_deref().and_then(|id| id.rsplit('/').next()) {
            let selector = format!("{REGISTRATION_LABEL}={registration}");
            let entries = self.entries();
            let list = entries
                .list(&kube::api::ListParams::default().labels(&selector))
                .await?;
            for entry in list.items {
                let name = entry.metadata.name.clone().unwrap_or_default();
                ignore_not_found(
                    entries
                        .delete(&name, &DeleteParams::default())
                        .await
                        .map(|_| ()),
                )?;
                let uid = entry.metadata.uid.clone().unwrap_or_default();
                let timeout =
                    TimeoutsModel::get(&model.timeouts, Operation::Delete, DEFAULT_TIMEOUT);
                crate::cluster::wait::wait_until_deleted(
                    &entries,
                    &name,
                    &uid,
                    timeout,
                    &ctx.cancelled,
                    &format!("WorkloadEntry {name} to be deleted"),
                )
                .await?;
            }
        }
        if let Some(secret) = model.token_secret_name.as_deref().filter(|s| !s.is_empty()) {
            let secrets: Api<Secret> = Api::namespaced(self.client(), &self.namespace);
            ignore_not_found(
                secrets
                    .delete(secret, &DeleteParams::default())
                    .await
                    .map(|_| ()),
            )?;
        }
        Ok(())
    }
}

fn ignore_not_found(result: Result<(), kube::Error>) -> Result<(), KubeError> {
    match result {
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        other => other.map_err(KubeError::from),
    }
}

fn registration_id(secret: &Secret) -> String {
    secret.metadata.uid.clone().unwrap_or_default()
}

/// `ISTIO_SVC_IP` (and the probe rewrite for `external_ip`). In manual mode without either
/// attribute, the entry's `address`: istio-start.sh would otherwise take the first address of
/// `hostname --all-ip-addresses`, which on a VM with several interfaces need not be the address
/// the entry announces.
fn workload_ip(model: &VmRegistrationModel) -> Option<WorkloadIp> {
    if let Some(ip) = model.internal_ip.as_deref().and_then(|ip| ip.parse().ok()) {
        return Some(WorkloadIp::Internal(ip));
    }
    if let Some(ip) = model.external_ip.as_deref().and_then(|ip| ip.parse().ok()) {
        return Some(WorkloadIp::External(ip));
    }
    if model.mode.as_deref() == Some("manual") {
        return model
            .address
            .as_deref()
            .and_then(|ip| ip.parse().ok())
            .map(WorkloadIp::Internal);
    }
    None
}

fn missing_config_map(namespace: &str, name: &str) -> KubeError {
    KubeError::InvalidSetting {
        attribute: "revision",
        message: format!(
            "ConfigMap {namespace}/{name} does not exist: is Istio (this revision) installed in {namespace}? Check the provider's `istio_namespace` and `revision`"
        ),
    }
}

fn record_bundle(model: &mut VmRegistrationModel, bundle: &Bundle) {
    model.cluster_env = Some(bundle.cluster_env.clone());
    model.mesh_config = Some(bundle.mesh_config.clone());
    model.hosts = Some(bundle.hosts.clone());
    model.root_cert = Some(bundle.root_cert.clone());
    model.bundle_sha256 = Some(bundle.sha256.clone());
}

fn record_health(model: &mut VmRegistrationModel, entry: Option<&WorkloadEntry>) {
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

fn health_error(error: KubeError, model: &VmRegistrationModel, istio_namespace: &str) -> KubeError {
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
    KubeError::InvalidSetting {
        attribute: "wait_for_healthy",
        message: format!(
            "{error}. Last state: entry {entry:?}, {}. {advice} The registration is kept (tainted) so nothing is lost.",
            model.health_message.clone().unwrap_or_default()
        ),
    }
}

/// `2026-11-29 23:00:00.0 +00:00:00`-style or RFC 3339 input → RFC 3339 in UTC.
fn normalise_rfc3339(text: &str) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| text.to_string())
}

// ---- files -----------------------------------------------------------------------------------

/// Writes each file to a temporary name in the same directory and renames it, so a reader
/// never sees half a file; the token is readable by its owner only.
fn write_bundle_files(dir: &Path, bundle: &Bundle) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    for (name, content) in bundle.files() {
        let mode = if name == "istio-token" { 0o600 } else { 0o644 };
        let mut temporary = tempfile::NamedTempFile::new_in(dir)?;
        temporary.write_all(content.as_bytes())?;
        temporary
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
        temporary.persist(dir.join(name)).map_err(|e| e.error)?;
    }
    Ok(())
}

fn remove_bundle_files(dir: &Path) -> std::io::Result<()> {
    for name in Bundle::FILE_NAMES {
        let path: PathBuf = dir.join(name);
        match std::fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: serde_json::Value) -> Value {
        let schema = Schema::from_model::<VmRegistrationModel>(0);
        Value::from_json(&json, &schema.value_type()).unwrap()
    }

    fn errors(json: serde_json::Value) -> Vec<Option<AttributePath>> {
        let value = config(json);
        let model = decode::<VmRegistrationModel>(&value, UnknownAs::Null, &mut Diagnostics::new())
            .unwrap();
        let mut diags = Diagnostics::new();
        validate_model(&model, &value, &mut diags);
        diags.errors().map(|d| d.path.clone()).collect()
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

    #[test]
    fn valid_configurations_pass() {
        assert!(errors(serde_json::json!({"workload_group": "default/product-vm"})).is_empty());
        assert!(errors(serde_json::json!({"workload_group": "default/product-vm", "mode": "manual", "address": "10.0.0.5"})).is_empty());
    }

    #[test]
    fn every_rule_names_its_attribute() {
        let cases = [
            (
                serde_json::json!({"workload_group": "product-vm"}),
                "workload_group",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "mode": "semi"}),
                "mode",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "mode": "manual"}),
                "address",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "address": "10.0.0"}),
                "address",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "internal_ip": "10.0.0.1", "external_ip": "1.2.3.4"}),
                "external_ip",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "ingress_ip": "10.0.0.1", "istiod_address": "x:1"}),
                "istiod_address",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "token_duration": "5m"}),
                "token_duration",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "token_duration": "1h", "renew_before": "2h"}),
                "renew_before",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "weight": -1}),
                "weight",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "network": "Net_1"}),
                "network",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "istiod_address": "istiod.example.com:15010"}),
                "istiod_address",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "locality": "a/b/c/d"}),
                "locality",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "ingress_service": "a.b.c"}),
                "ingress_service",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "labels": {"bad key": "v"}}),
                "labels",
            ),
            (
                serde_json::json!({"workload_group": "default/g", "istiod_address": "host:notaport"}),
                "istiod_address",
            ),
        ];
        for (json, attribute) in cases {
            let found = errors(json.clone());
            assert!(
                found.iter().any(|p| p.as_ref().is_some_and(
                    |p| p.steps.first() == AttributePath::new(attribute).steps.first()
                )),
                "{json} should fail on {attribute}, got {found:?}"
            );
        }
    }

    /// Issue "Field defects" item 5: values Istio (CRD, webhook, istioctl) accepts.
    #[test]
    fn values_istio_accepts_pass() {
        for json in [
            serde_json::json!({"workload_group": "default/g", "mode": "manual", "address": "10.0.0.5", "weight": 0}),
            serde_json::json!({"workload_group": "default/g", "ingress_service": "eastwest.istio-gateways"}),
            serde_json::json!({"workload_group": "default/g", "network": "network-1", "locality": "us-east1/us-east1-b"}),
        ] {
            assert_eq!(errors(json.clone()), vec![], "{json}");
        }
    }

    #[test]
    fn ingress_service_may_name_its_namespace_like_istioctl() {
        assert_eq!(
            ingress_service_location("istio-eastwestgateway", "istio-system"),
            (
                "istio-eastwestgateway".to_string(),
                "istio-system".to_string()
            )
        );
        assert_eq!(
            ingress_service_location("eastwest.gateways", "istio-system"),
            ("eastwest".to_string(), "gateways".to_string())
        );
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
            internal_ip: Some("10.0.0.9".into()),
            ..manual.clone()
        };
        assert_eq!(
            workload_ip(&explicit),
            Some(WorkloadIp::Internal("10.0.0.9".parse().unwrap()))
        );
        let external = VmRegistrationModel {
            external_ip: Some("203.0.113.7".into()),
            ..manual
        };
        assert_eq!(
            workload_ip(&external),
            Some(WorkloadIp::External("203.0.113.7".parse().unwrap()))
        );
        let auto = VmRegistrationModel::default();
        assert_eq!(workload_ip(&auto), None);
    }

    /// Issue "Field defects" item 7: istiod keeps an auto-registered entry as it was created.
    #[test]
    fn auto_mode_changes_istiod_does_not_apply_are_named() {
        let prior = config(serde_json::json!({
            "workload_group": "default/g", "mode": "auto", "network": "n1", "locality": "r1", "labels": {"a": "1"}
        }));
        let planned = config(serde_json::json!({
            "workload_group": "default/g", "mode": "auto", "network": "n2", "locality": "r1", "labels": {"a": "2"}
        }));
        assert_eq!(
            auto_entry_changes(&prior, &planned),
            vec!["network", "labels"]
        );
        assert!(auto_entry_changes(&prior, &prior).is_empty());
        let manual = config(serde_json::json!({
            "workload_group": "default/g", "mode": "manual", "address": "10.0.0.1", "network": "n2"
        }));
        let manual_prior = config(serde_json::json!({
            "workload_group": "default/g", "mode": "manual", "address": "10.0.0.1", "network": "n1"
        }));
        assert!(
            auto_entry_changes(&manual_prior, &manual).is_empty(),
            "manual entries are updated by the provider"
        );
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
        let timeout = KubeError::InvalidSetting {
            attribute: "wait_for_healthy",
            message: "timed out".into(),
        };
        let message = health_error(timeout, &model, "istio-system").to_string();
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

    #[test]
    fn host_port_parsing() {
        assert_eq!(
            parse_host_port("istiod.example.com"),
            Some(("istiod.example.com".into(), 15012))
        );
        assert_eq!(
            parse_host_port("gw.example.com:443"),
            Some(("gw.example.com".into(), 443))
        );
        assert_eq!(parse_host_port("gw:x"), None);
    }

    #[test]
    fn token_renewal_is_due_inside_renew_before() {
        let prior = |expires: time::OffsetDateTime| {
            config(serde_json::json!({
                "workload_group": "default/g",
                "token_expires_at": expires.format(&time::format_description::well_known::Rfc3339).unwrap(),
            }))
        };
        let now = time::OffsetDateTime::now_utc();
        let planned =
            config(serde_json::json!({"workload_group": "default/g", "renew_before": "15m"}));
        assert!(token_due(
            &prior(now + time::Duration::minutes(10)),
            &planned
        ));
        assert!(!token_due(
            &prior(now + time::Duration::minutes(50)),
            &planned
        ));
    }

    #[test]
    fn outdated_files_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let planned = config(serde_json::json!({
            "workload_group": "default/g",
            "output_dir": dir.path().to_string_lossy(),
            "cluster_env": "A=1\n", "mesh_config": "m", "hosts": "", "root_cert": "pem", "istio_token": "t",
        }));
        assert!(files_outdated(&planned), "missing files are outdated");
        for (file, content) in [
            ("cluster.env", "A=1\n"),
            ("mesh.yaml", "m"),
            ("hosts", ""),
            ("root-cert.pem", "pem"),
            ("istio-token", "t"),
        ] {
            std::fs::write(dir.path().join(file), content).unwrap();
        }
        assert!(!files_outdated(&planned));
        std::fs::write(dir.path().join("mesh.yaml"), "edited").unwrap();
        assert!(files_outdated(&planned));
    }

    #[test]
    fn files_are_written_atomically_with_private_token_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let bundle = Bundle {
            cluster_env: "A=1\n".into(),
            mesh_config: "defaultConfig: {}\n".into(),
            hosts: "10.0.0.1 istiod.istio-system.svc\n".into(),
            root_cert: "pem".into(),
            istio_token: "secret-token".into(),
            sha256: "x".into(),
        };
        write_bundle_files(dir.path(), &bundle).unwrap();
        let mode = |name: &str| {
            std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("istio-token"), 0o600);
        assert_eq!(mode("cluster.env"), 0o644);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("istio-token")).unwrap(),
            "secret-token"
        );
        remove_bundle_files(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
