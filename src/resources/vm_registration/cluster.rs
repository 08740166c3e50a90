//! Every call of the registration to the API server, one step per method of `Registration`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};

use super::files::write_bundle_files;
use super::validate::parse_host_port;
use super::{
    DEFAULT_INGRESS_SERVICE, DEFAULT_TIMEOUT, DEFAULT_TOKEN_DURATION, REGISTRATION_LABEL,
    VmRegistrationModel, record_bundle, record_health,
};
use crate::cluster::KubeError;
use crate::cluster::apply::server_side_apply;
use crate::cluster::discovery::served_version;
use crate::cluster::wait::wait_for_matching;
use crate::istio::control_plane::{
    AUTOREGISTRATION_ENV, autoregistration_checklist, autoregistration_enabled,
    ingress_service_location, vm_cluster_id,
};
use crate::istio::crd::{IstioApiVersion, WorkloadEntry, WorkloadGroup, from_dynamic, to_dynamic};
use crate::istio::is_healthy;
use crate::istio::{
    BundleInputs, IstiodReach, ManualRegistration, RegistrationMode, WorkloadIp,
    injector_configmap_name, manual_workload_entry, mesh_configmap_name, render_bundle,
    service_account, workload_entry_name,
};
use crate::provider_data::Configured;
use crate::resources::common::{Operation, TimeoutsModel};
use crate::tfplug::Ctx;
use crate::validation;

/// One registration's view of the cluster.
pub(super) struct Registration<'a> {
    configured: &'a Configured,
    namespace: String,
    group_name: String,
    revision: Option<String>,
}

pub(super) type StepResult = Result<(), (&'static str, KubeError)>;

impl<'a> Registration<'a> {
    pub(super) fn new(configured: &'a Configured, model: &VmRegistrationModel) -> Self {
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

    pub(super) fn client(&self) -> Client {
        self.configured.client.clone()
    }

    pub(super) async fn group(&self) -> Result<(WorkloadGroup, IstioApiVersion), KubeError> {
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

    pub(super) async fn create_token_secret(
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

    pub(super) async fn secret(&self, name: &str) -> Result<Option<Secret>, KubeError> {
        if name.is_empty() {
            return Ok(None);
        }
        Ok(Api::<Secret>::namespaced(self.client(), &self.namespace)
            .get_opt(name)
            .await?)
    }

    /// Token (when needed), bundle, entry, files and the optional health wait.
    pub(super) async fn issue_and_register(
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

    /// The entry name contains the network: after a network change the registration's old
    /// entry would stay behind, announcing the VM at a network it left.
    pub(super) async fn delete_other_entries(
        &self,
        registration: &str,
        keep: &str,
    ) -> Result<(), KubeError> {
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

    /// Fills `model` from the cluster for an import: the token Secret, and for a manual entry
    /// (one without istiod's auto-registration annotation) the mode, address and network.
    /// False when no Secret carries the registration label.
    pub(super) async fn imported(
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

    /// istiod must auto-register at all: `PILOT_ENABLE_WORKLOAD_ENTRY_AUTOREGISTRATION` of its
    /// Deployment, where that can be read.
    pub(super) async fn check_autoregistration(
        &self,
        istio_namespace: &str,
        revision: &str,
    ) -> StepResult {
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

    pub(super) async fn request_token(
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

    pub(super) async fn bundle_inputs(
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
    pub(super) async fn default_cluster_id(
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

    pub(super) async fn istiod_reach(
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

    pub(super) async fn apply_manual_entry(
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

    pub(super) fn entries(&self) -> Api<WorkloadEntry> {
        Api::namespaced(self.client(), &self.namespace)
    }

    /// The VM's entry: found by the registration label (auto-registered entries carry it from
    /// the bundle's labels; manual ones from us).
    pub(super) async fn find_entry(
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

    pub(super) async fn wait_healthy(
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
    pub(super) async fn remove(
        &self,
        model: &VmRegistrationModel,
        ctx: &Ctx,
    ) -> Result<(), KubeError> {
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

pub(super) fn registration_id(secret: &Secret) -> String {
    secret.metadata.uid.clone().unwrap_or_default()
}

/// `ISTIO_SVC_IP` (and the probe rewrite for `external_ip`). In manual mode without either
/// attribute, the entry's `address`: istio-start.sh would otherwise take the first address of
/// `hostname --all-ip-addresses`, which on a VM with several interfaces need not be the address
/// the entry announces.
pub(super) fn workload_ip(model: &VmRegistrationModel) -> Option<WorkloadIp> {
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

pub(super) fn health_error(
    error: KubeError,
    model: &VmRegistrationModel,
    istio_namespace: &str,
) -> KubeError {
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
