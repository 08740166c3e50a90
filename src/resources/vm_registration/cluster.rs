//! Every call of the registration to the API server, one step per method of [`Registration`].
//! Each step's error names the attribute the user can change to fix it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, Preconditions,
};

use super::validate::parse_host_port;
use super::{
    MANAGED_BY, MANAGED_BY_LABEL, PENDING_ANNOTATION, REGISTRATION_LABEL, VmRegistrationModel,
    registration_label, token_lifetime,
};
use crate::cluster::KubeError;
use crate::cluster::apply::server_side_apply;
use crate::cluster::error::{ignore_not_found, is_conflict, is_not_found};
use crate::cluster::mesh;
use crate::cluster::wait::{Deadline, SharedWatch, delete_and_wait};
use crate::istio::control_plane::{
    AUTOREGISTRATION_ENV, autoregistration_enabled, certificate_name_problem,
    ingress_service_location, istiod_certificate_names, vm_cluster_id,
};
use crate::istio::crd::{IstioApiVersion, WorkloadEntry, WorkloadGroup, from_dynamic, to_dynamic};
use crate::istio::liveness::{IstiodLiveness, istiod_liveness};
use crate::istio::{
    BundleInputs, DEFAULT_INGRESS_SERVICE, ISTIOD_TLS_PORT, IstiodReach, ManualRegistration,
    ROOT_CERT_CONFIGMAP, RegistrationMode, TOKEN_AUDIENCE, WorkloadIp, manual_workload_entry,
    mesh_configmap_name, service_account, workload_entry_name,
};
use crate::istio::{IstioError, is_healthy};
use crate::provider_data::Configured;
use crate::resources::common::DEFAULT_NAMESPACE;
use crate::resources::error::ResourceError;

/// How long a refresh waits for the shared watch's first list before it lists by itself.
const SHARED_LIST_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// The registration's WorkloadGroup and the API version it was read at.
pub(super) struct Group {
    pub group: WorkloadGroup,
    pub version: IstioApiVersion,
}

/// A bootstrap token and its expiry (RFC 3339).
pub(super) struct IssuedToken {
    pub token: String,
    pub expires_at: String,
}

/// One registration's view of the cluster: the group's namespace and name, and the revision of
/// the control plane it registers with.
pub(super) struct Registration<'a> {
    configured: &'a Configured,
    namespace: String,
    group_name: String,
    revision: String,
}

impl<'a> Registration<'a> {
    pub fn new(configured: &'a Configured, model: &VmRegistrationModel) -> Self {
        let (namespace, group_name) = model
            .workload_group
            .split_once('/')
            .unwrap_or((DEFAULT_NAMESPACE, &model.workload_group));
        let revision = model
            .settings
            .revision
            .clone()
            .filter(|r| !r.is_empty())
            .or_else(|| configured.revision.clone());
        Registration {
            configured,
            namespace: namespace.to_string(),
            group_name: group_name.to_string(),
            revision: revision.unwrap_or_default(),
        }
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.configured.client.clone(), &self.namespace)
    }

    /// The WorkloadEntries of `registration` (manual, or auto-registered from its bundle), by
    /// its registration label.
    async fn registration_entries(
        &self,
        registration: &str,
    ) -> Result<Vec<WorkloadEntry>, ResourceError> {
        let selector = format!("{REGISTRATION_LABEL}={registration}");
        let listed = self
            .api::<WorkloadEntry>()
            .list(&ListParams::default().labels(&selector))
            .await?;
        Ok(listed.items)
    }

    /// The provider's token Secrets (by the managed-by label) whose UID is `registration`.
    async fn registration_secrets(&self, registration: &str) -> Result<Vec<Secret>, ResourceError> {
        let listed = self
            .api::<Secret>()
            .list(&ListParams::default().labels(&managed_by_selector()))
            .await?;
        let held = |secret: &Secret| registration_id(secret) == registration;
        Ok(listed.items.into_iter().filter(held).collect())
    }

    /// The WorkloadGroup the VM registers from, at the version the cluster serves.
    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %self.namespace, group = %self.group_name))]
    pub async fn group(&self) -> Result<Group, ResourceError> {
        let on_group = |error: ResourceError| error.on("workload_group");
        let cache = &self.configured.cache;
        let version = cache
            .served_version()
            .await
            .map_err(|e| on_group(e.into()))?;
        let object = cache
            .workload_group(version, &self.namespace, &self.group_name)
            .await
            .map_err(|e| on_group(e.into()))?;
        let Some(object) = object else {
            return Err(ResourceError::missing(
                Some("workload_group"),
                format!(
                    "WorkloadGroup {}/{} does not exist; create it first (istio_workload_group)",
                    self.namespace, self.group_name
                ),
            ));
        };
        let group = from_dynamic(object).map_err(|e| on_group(e.into()))?;
        Ok(Group { group, version })
    }

    /// The Secret the VM's tokens are bound to: deleting it revokes them. Its server-assigned
    /// UID is the registration ID (unique, and valid as a label value). Everything it carries is
    /// in the create request: one request. With `pending_until` it carries
    /// [`PENDING_ANNOTATION`] until [`Self::confirm_token_secret`].
    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %self.namespace, group = %self.group_name))]
    pub async fn create_token_secret(
        &self,
        group: &Group,
        pending_until: Option<String>,
    ) -> Result<Secret, ResourceError> {
        let api: Api<Secret> = self.api();
        let mut annotations = BTreeMap::from([(
            "terraform-provider-istio/purpose".to_string(),
            format!(
                "Bootstrap tokens of a VM in WorkloadGroup {} are bound to this Secret; deleting it revokes them.",
                group.group.metadata.name.clone().unwrap_or_default()
            ),
        )]);
        if let Some(until) = pending_until {
            annotations.insert(PENDING_ANNOTATION.into(), until);
        }
        let secret = Secret {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-vm-", self.group_name)),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    MANAGED_BY_LABEL.into(),
                    MANAGED_BY.into(),
                )])),
                annotations: Some(annotations),
                ..Default::default()
            },
            type_: Some("Opaque".into()),
            ..Default::default()
        };
        api.create(&PostParams::default(), &secret)
            .await
            .map_err(|e| ResourceError::from(e).on("workload_group"))
    }

    /// The create is over and its state (complete or tainted) names the Secret: it is no longer
    /// pending, so no later create takes it for abandoned.
    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %self.namespace, group = %self.group_name))]
    pub async fn confirm_token_secret(&self, secret: &Secret) -> Result<(), ResourceError> {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let patch = serde_json::json!({"metadata": {"annotations": {PENDING_ANNOTATION: null}}});
        self.api::<Secret>()
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    /// Revokes the token Secrets of creates that never ended: a provider killed (`kill -9`, a
    /// crash, a lost machine) during a create leaves its Secret pending, and no state names it.
    /// A Secret still pending after its deadline is such a one. The delete is conditional on the
    /// Secret being as listed, so one confirmed meanwhile is kept.
    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %self.namespace))]
    pub async fn revoke_abandoned_secrets(&self) -> Result<(), ResourceError> {
        let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY}");
        let listed = self
            .configured
            .cache
            .secrets(&self.namespace, &selector)
            .await?;
        let now = time::OffsetDateTime::now_utc();
        let api = self.api::<Secret>();
        for secret in listed.iter().filter(|s| abandoned(s, now)) {
            let name = secret.metadata.name.clone().unwrap_or_default();
            tracing::info!(secret = %name, "revoking the token Secret of a create that never ended");
            let unchanged = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: secret.metadata.resource_version.clone(),
                    uid: secret.metadata.uid.clone(),
                }),
                ..DeleteParams::default()
            };
            match api.delete(&name, &unchanged).await {
                Ok(_) => {}
                // Gone already, or confirmed since it was listed: not ours to revoke.
                Err(error) if is_not_found(&error) || is_conflict(&error) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }

    /// The token Secret, `None` when it is gone (or was never recorded).
    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %self.namespace, group = %self.group_name, secret = name))]
    pub async fn secret(&self, name: &str) -> Result<Option<Secret>, ResourceError> {
        if name.is_empty() {
            return Ok(None);
        }
        Ok(self.api::<Secret>().get_opt(name).await?)
    }

    /// Like [`Self::secret`] for a refresh: looked up in one LIST of the provider's Secrets
    /// shared by every registration of the namespace; only a Secret missing there costs a GET.
    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %self.namespace, group = %self.group_name, secret = name))]
    pub async fn secret_exists(&self, name: &str) -> Result<bool, ResourceError> {
        let listed = self
            .configured
            .cache
            .secrets(&self.namespace, &managed_by_selector())
            .await?;
        if listed
            .iter()
            .any(|s| s.metadata.name.as_deref() == Some(name))
        {
            return Ok(true);
        }
        Ok(self.secret(name).await?.is_some())
    }

    /// A token for the group's service account with istiod's audience, bound to `secret`.
    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %self.namespace, group = %self.group_name, lifetime_seconds = token_lifetime(model).as_secs()))]
    pub async fn request_token(
        &self,
        group: &Group,
        secret: &Secret,
        model: &VmRegistrationModel,
    ) -> Result<IssuedToken, ResourceError> {
        let account = service_account(&group.group.spec).to_string();
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: Some(vec![TOKEN_AUDIENCE.to_string()]),
                expiration_seconds: Some(token_lifetime(model).as_secs() as i64),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Secret".into()),
                    name: secret.metadata.name.clone(),
                    uid: secret.metadata.uid.clone(),
                }),
            }),
            ..Default::default()
        };
        let issued = self
            .api::<ServiceAccount>()
            .create_token_request(&account, &PostParams::default(), &request)
            .await
            .map_err(KubeError::from);
        let no_token = || {
            ResourceError::missing(
                Some("token_duration"),
                format!(
                    "the TokenRequest for ServiceAccount {}/{account} returned no token",
                    self.namespace
                ),
            )
        };
        let status = match issued {
            Ok(issued) => issued.status.ok_or_else(no_token)?,
            Err(error) if error.is_not_found() => {
                return Err(ResourceError::missing(
                    Some("workload_group"),
                    format!(
                        "ServiceAccount {}/{account} (the group's template.service_account) does not exist; create it before registering VMs",
                        self.namespace
                    ),
                ));
            }
            Err(error) => return Err(ResourceError::new(Some("token_duration"), error)),
        };
        let token = status
            .token
            .filter(|t| !t.is_empty())
            .ok_or_else(no_token)?;
        let expires_at = status
            .expiration_timestamp
            .map(|t| normalise_rfc3339(&t.0.to_string()))
            .unwrap_or_default();
        Ok(IssuedToken { token, expires_at })
    }

    /// Everything the bundle is rendered from: the group, the mesh config of the revision, the
    /// cluster ID, the root certificate and how the VM reaches istiod.
    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %self.namespace, group = %self.group_name, revision = %self.revision))]
    pub async fn bundle_inputs(
        &self,
        model: &VmRegistrationModel,
        group: &WorkloadGroup,
        registration: &str,
    ) -> Result<BundleInputs, ResourceError> {
        let revision = self.revision().await;
        let mesh_config_yaml = self.mesh_config(&revision).await?;
        let cluster_id = match &model.cluster_id {
            Some(id) => id.clone(),
            None => self.default_cluster_id(&revision).await?,
        };
        let root_cert = self.root_cert().await?;
        let istiod = self.istiod_reach(model).await?;
        let mut extra_labels = model.settings.labels.clone().unwrap_or_default();
        extra_labels.insert(REGISTRATION_LABEL.into(), registration.to_string());
        Ok(BundleInputs {
            group_name: self.group_name.clone(),
            group_namespace: self.namespace.clone(),
            group_annotations: group.metadata.annotations.clone().unwrap_or_default(),
            group_spec: group.spec.clone(),
            istio_namespace: self.configured.istio_namespace.clone(),
            revision,
            cluster_id,
            mesh_config_yaml,
            root_cert,
            token: model.bundle.istio_token.clone().unwrap_or_default(),
            istiod,
            workload_ip: workload_ip(model),
            capture_dns: model.settings.capture_dns.unwrap_or(true),
            mode: self.registration_mode(model, group),
            network: model.settings.network.clone(),
            locality: model.settings.locality.clone(),
            extra_labels,
        })
    }

    /// The revision set on the registration or the provider, else the one the `default`
    /// revision tag points at (istioctl 1.28+'s rule), else the unrevisioned control plane.
    pub async fn revision(&self) -> String {
        let explicit = Some(self.revision.as_str()).filter(|r| !r.is_empty());
        let istio_namespace = &self.configured.istio_namespace;
        self.configured
            .cache
            .revision(istio_namespace, explicit)
            .await
    }

    async fn mesh_config(&self, revision: &str) -> Result<String, ResourceError> {
        let istio_namespace = &self.configured.istio_namespace;
        let mesh_config = self
            .configured
            .cache
            .mesh_config(istio_namespace, revision)
            .await
            .map_err(|e| ResourceError::from(e).on("revision"))?;
        mesh_config.ok_or_else(|| {
            ResourceError::missing(
                Some("revision"),
                format!(
                    "ConfigMap {istio_namespace}/{} does not exist: is Istio (this revision) installed in {istio_namespace}? Check the provider's `istio_namespace` and `revision`",
                    mesh_configmap_name(revision)
                ),
            )
        })
    }

    /// istioctl's default cluster ID: `global.multiCluster.clusterName` of the injector values,
    /// or empty when it is empty or absent (Istio's default install; see `vm_cluster_id`).
    async fn default_cluster_id(&self, revision: &str) -> Result<String, ResourceError> {
        let on_cluster_id = |error: ResourceError| error.on("cluster_id");
        let istio_namespace = &self.configured.istio_namespace;
        let values = self
            .configured
            .cache
            .injector_values(istio_namespace, revision)
            .await
            .map_err(|e| on_cluster_id(e.into()))?;
        vm_cluster_id(values.as_deref(), revision).map_err(|e| on_cluster_id(e.into()))
    }

    /// The root certificate istiod publishes in the group's namespace.
    async fn root_cert(&self) -> Result<String, ResourceError> {
        let root_cert = self
            .configured
            .cache
            .root_cert(&self.namespace)
            .await
            .map_err(|e| ResourceError::from(e).on("workload_group"))?;
        root_cert.ok_or_else(|| {
            ResourceError::missing(
                Some("workload_group"),
                format!(
                    "ConfigMap {}/{ROOT_CERT_CONFIGMAP} is missing: istiod publishes it in every namespace once it runs; check that istiod is up",
                    self.namespace
                ),
            )
        })
    }

    /// `istiod_address`, else `ingress_ip`, else the load-balancer address of the ingress
    /// Service (an IP goes into `hosts`, a host name becomes the discovery address).
    async fn istiod_reach(
        &self,
        model: &VmRegistrationModel,
    ) -> Result<IstiodReach, ResourceError> {
        if let Some((host, port)) = model
            .settings
            .istiod_address
            .as_deref()
            .and_then(parse_host_port)
        {
            return Ok(IstiodReach::DiscoveryAddress { host, port });
        }
        if let Some(ip) = model
            .settings
            .ingress_ip
            .as_deref()
            .and_then(|ip| ip.parse().ok())
        {
            return Ok(IstiodReach::HostsEntry(ip));
        }
        let (service_name, service_namespace) = ingress_service_location(
            model
                .settings
                .ingress_service
                .as_deref()
                .unwrap_or(DEFAULT_INGRESS_SERVICE),
            &self.configured.istio_namespace,
        );
        let service = self
            .configured
            .cache
            .service(&service_namespace, &service_name)
            .await
            .map_err(|e| ResourceError::from(e).on("ingress_service"))?;
        let ports = service
            .as_ref()
            .and_then(|s| s.spec.as_ref())
            .and_then(|spec| spec.ports.as_deref());
        if let Some(ports) = ports
            && !ports.iter().any(|p| p.port == i32::from(ISTIOD_TLS_PORT))
        {
            return Err(ResourceError::missing(
                Some("ingress_service"),
                format!(
                    "Service {service_namespace}/{service_name} does not expose port {ISTIOD_TLS_PORT}: VMs reach istiod's certificate and discovery server through it. Expose istiod on the gateway (Istio's expose-istiod configuration), or set `ingress_ip`/`istiod_address`"
                ),
            ));
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
        let ip = ingress
            .as_ref()
            .and_then(|point| point.ip.as_deref())
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        match (ip, ingress.and_then(|point| point.hostname), external_ip) {
            (Some(ip), _, _) => Ok(IstiodReach::HostsEntry(ip)),
            (None, Some(host), _) => Ok(IstiodReach::DiscoveryAddress {
                host,
                port: ISTIOD_TLS_PORT,
            }),
            (None, None, Some(ip)) => Ok(IstiodReach::HostsEntry(ip)),
            (None, None, None) => Err(ResourceError::missing(
                Some("ingress_service"),
                format!(
                    "Service {service_namespace}/{service_name} has no load-balancer address or external IP for VMs to reach istiod; set `ingress_ip` or `istiod_address`, or expose istiod through an east-west gateway"
                ),
            )),
        }
    }

    /// Auto-registration, or the entry name istiod would give the VM (`manual`).
    pub fn registration_mode(
        &self,
        model: &VmRegistrationModel,
        group: &WorkloadGroup,
    ) -> RegistrationMode {
        if model.mode.as_deref() != Some("manual") {
            return RegistrationMode::Auto;
        }
        let network = model
            .settings
            .network
            .clone()
            .or_else(|| Some(group.spec.template.network.clone()).filter(|n| !n.is_empty()));
        RegistrationMode::Manual {
            entry_name: workload_entry_name(
                &self.group_name,
                model.address.as_deref().unwrap_or_default(),
                network.as_deref(),
            ),
        }
    }

    /// The WorkloadEntry of a manual registration, applied (forcing ownership) from its group;
    /// returns it as the API server stored it.
    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %self.namespace, group = %self.group_name, entry = entry_name))]
    pub async fn apply_manual_entry(
        &self,
        model: &VmRegistrationModel,
        group: &Group,
        entry_name: &str,
        registration: &str,
    ) -> Result<WorkloadEntry, ResourceError> {
        let on_address = |error: ResourceError| error.on("address");
        let entry = manual_entry(model, group, entry_name, registration)
            .map_err(|e| on_address(e.into()))?;
        let object = to_dynamic(&entry, group.version).map_err(|e| on_address(e.into()))?;
        let resource = group.version.api_resource(WorkloadEntry::KIND);
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.configured.client.clone(), &self.namespace, &resource);
        let previous_holder = self
            .entry_holder(&api, entry_name)
            .await
            .map_err(on_address)?
            .filter(|holder| holder != registration);
        let field_manager = &self.configured.field_manager;
        let applied = server_side_apply(&api, entry_name, &object, field_manager, true)
            .await
            .map_err(|e| on_address(e.into()))?;
        if let Some(holder) = previous_holder {
            self.revoke_registration(&holder).await?;
        }
        from_dynamic(applied).map_err(|e| on_address(e.into()))
    }

    /// The registration label of the entry named `entry_name`, as the namespace's shared watch
    /// sees it (no request per registration); a LIST by name when the watch has not listed.
    async fn entry_holder(
        &self,
        api: &Api<DynamicObject>,
        entry_name: &str,
    ) -> Result<Option<String>, ResourceError> {
        if let Some(entries) = self.entries().current(SHARED_LIST_PATIENCE).await {
            let named = entries
                .iter()
                .find(|entry| entry.metadata.name.as_deref() == Some(entry_name));
            return Ok(named.and_then(|entry| registration_of(&entry.metadata).cloned()));
        }
        // A list by name, not a get: examples/rbac grants list on entries, not get.
        let by_name = ListParams::default().fields(&format!("metadata.name={entry_name}"));
        let listed = api.list(&by_name).await?.items;
        Ok(listed
            .iter()
            .find_map(|existing| registration_of(&existing.metadata).cloned()))
    }

    /// One VM, one identity: the registration that held this VM's entry before (one whose
    /// create never reached the state because Terraform or the provider was killed, or one
    /// deleted with its token Secret kept) loses its token Secret, so no second bootstrap
    /// token for the same entry stays valid.
    async fn revoke_registration(&self, registration: &str) -> Result<(), ResourceError> {
        let secrets = self.api::<Secret>();
        for secret in self.registration_secrets(registration).await? {
            let name = secret.metadata.name.unwrap_or_default();
            tracing::info!(secret = %name, "revoking the token Secret of the entry's previous registration");
            ignore_not_found(secrets.delete(&name, &DeleteParams::default()).await)?;
        }
        Ok(())
    }

    /// The entry name contains the network: after a network change the registration's old
    /// entry would stay behind, announcing the VM at a network it left. (A new registration has
    /// no other entries: only an update needs this.)
    pub async fn delete_other_entries(
        &self,
        registration: &str,
        keep: &str,
    ) -> Result<(), ResourceError> {
        let entries = self.api::<WorkloadEntry>();
        for entry in self.registration_entries(registration).await? {
            let name = entry.metadata.name.unwrap_or_default();
            if name != keep {
                ignore_not_found(entries.delete(&name, &DeleteParams::default()).await)?;
            }
        }
        Ok(())
    }

    /// Fills `model` from the cluster for an import: the token Secret (the provider's Secret
    /// whose UID is the registration ID), and for a manual entry
    /// (one without istiod's auto-registration annotation) the mode, address and weight.
    /// False when there is no such Secret.
    pub async fn imported(
        &self,
        model: &mut VmRegistrationModel,
        registration: &str,
    ) -> Result<bool, ResourceError> {
        let secrets = self.registration_secrets(registration).await?;
        let Some(secret) = secrets.into_iter().next() else {
            return Ok(false);
        };
        model.token_secret_name = secret.metadata.name;
        let entry = self.find_entry(registration).await?;
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

    /// Why nobody writes the VM's health when istiod of `revision` is not running: the
    /// evidence from its Leases; `None` when it runs or that cannot be told.
    pub async fn istiod_not_running(&self, revision: &str) -> Option<String> {
        let istio_namespace = &self.configured.istio_namespace;
        let leases = mesh::istiod_leases(&self.configured.client, istio_namespace, revision).await;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        match istiod_liveness(&leases, istio_namespace, now) {
            IstiodLiveness::NotRunning(evidence) => Some(format!(
                "istiod (namespace {istio_namespace}, revision {revision:?}) is not running, so no health was reported: {evidence}. Start istiod (`kubectl -n {istio_namespace} get pods`) and apply again."
            )),
            IstiodLiveness::Running | IstiodLiveness::Unknown => None,
        }
    }

    /// istiod must auto-register at all: `PILOT_ENABLE_WORKLOAD_ENTRY_AUTOREGISTRATION` of its
    /// Deployment, where that can be read.
    pub async fn check_autoregistration(&self, revision: &str) -> Result<(), ResourceError> {
        let istio_namespace = &self.configured.istio_namespace;
        let env = mesh::istiod_env(&self.configured.client, istio_namespace, revision).await;
        let value = env.as_ref().and_then(|env| {
            env.iter()
                .find(|(name, _)| name == AUTOREGISTRATION_ENV)
                .and_then(|(_, value)| value.clone())
        });
        if autoregistration_enabled(value.as_deref()) {
            return Ok(());
        }
        Err(ResourceError::missing(
            Some("mode"),
            format!(
                "istiod ({istio_namespace}, revision {revision:?}) runs with {AUTOREGISTRATION_ENV}={}: it will never create the VM's WorkloadEntry. Enable it on istiod, or use mode = \"manual\"",
                value.unwrap_or_default()
            ),
        ))
    }

    /// Why the VM would never get its certificate, when it dials istiod's CA by a name that
    /// istiod's serving certificate lacks (`istiod_address`, or a gateway that only has a
    /// hostname): the attribute to blame and the message. Judged from the env of istiod's
    /// Deployment; `None` when that cannot be read (istiod not run as a Deployment here, RBAC)
    /// or the VM reaches istiod by its own name. A warning, not an error: istiod may serve a
    /// certificate of the user's that carries the name, which the Deployment does not show.
    pub async fn istiod_certificate_warning(
        &self,
        model: &VmRegistrationModel,
    ) -> Option<(&'static str, String)> {
        let IstiodReach::DiscoveryAddress { host, .. } = self.istiod_reach(model).await.ok()?
        else {
            return None;
        };
        let revision = self.revision().await;
        let istio_namespace = &self.configured.istio_namespace;
        let env = mesh::istiod_env(&self.configured.client, istio_namespace, &revision).await?;
        let names = istiod_certificate_names(&env, istio_namespace, &revision)?;
        let problem = certificate_name_problem(&host, &names)?;
        Some(if model.settings.istiod_address.is_some() {
            (
                "istiod_address",
                format!("`istiod_address` names {host}. {problem}."),
            )
        } else {
            (
                "ingress_service",
                format!(
                    "The gateway Service of `ingress_service` reports only the hostname {host}, by which the VM reaches istiod. {problem}."
                ),
            )
        })
    }

    /// The VM's entry: found by the registration label (auto-registered entries carry it from
    /// the bundle's labels; manual ones from us).
    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %self.namespace, group = %self.group_name, registration))]
    pub async fn find_entry(
        &self,
        registration: &str,
    ) -> Result<Option<WorkloadEntry>, ResourceError> {
        let entries = self.registration_entries(registration).await?;
        Ok(preferred_entry(entries.iter()).cloned())
    }

    /// The VM's entry as the namespace's shared watch sees it (refresh: one LIST and WATCH per
    /// namespace instead of a LIST per registration). Falls back to [`Self::find_entry`] when
    /// the watch has not listed within [`SHARED_LIST_PATIENCE`].
    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %self.namespace, group = %self.group_name))]
    pub async fn observed_entry(
        &self,
        model: &VmRegistrationModel,
    ) -> Result<Option<WorkloadEntry>, ResourceError> {
        let Some(registration) = registration_label(model) else {
            return Ok(None);
        };
        match self.entries().current(SHARED_LIST_PATIENCE).await {
            Some(entries) => {
                Ok(preferred_entry(registered_entries(&entries, registration)).cloned())
            }
            None => self.find_entry(registration).await,
        }
    }

    /// The shared watch of the registrations' entries in the group's namespace.
    fn entries(&self) -> Arc<SharedWatch<WorkloadEntry>> {
        self.configured
            .cache
            .workload_entries(&self.namespace, REGISTRATION_LABEL)
    }

    /// Watches the VM's entry until istiod reports it healthy; on timeout or cancellation the
    /// error comes with the entry as last seen. All waits of a namespace share one watch.
    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %self.namespace, group = %self.group_name, registration, timeout_seconds = deadline.timeout.as_secs()))]
    pub async fn wait_healthy(
        &self,
        registration: &str,
        deadline: Deadline<'_>,
    ) -> Result<WorkloadEntry, (KubeError, Option<WorkloadEntry>)> {
        let what = format!(
            "istiod to report the VM of WorkloadGroup {}/{} healthy",
            self.namespace, self.group_name
        );
        let entry = |entries: &[Arc<WorkloadEntry>]| {
            preferred_entry(registered_entries(entries, registration)).cloned()
        };
        let healthy = |entry: &Option<WorkloadEntry>| entry.as_ref().is_some_and(is_healthy);
        let entries = self.entries();
        match entries.wait_for(entry, healthy, deadline, &what).await {
            Ok(entry) => Ok(entry.expect("a healthy entry exists")),
            Err(failed) => Err(failed),
        }
    }

    /// Entries (manual, or auto-registered ones istiod has not removed yet) and the token
    /// Secret; deleting the Secret revokes every token bound to it.
    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %self.namespace, group = %self.group_name))]
    pub async fn remove(
        &self,
        model: &VmRegistrationModel,
        deadline: Deadline<'_>,
    ) -> Result<(), ResourceError> {
        if let Some(registration) = registration_label(model) {
            let entries = self.api::<WorkloadEntry>();
            for entry in self.registration_entries(registration).await? {
                let name = entry.metadata.name.clone().unwrap_or_default();
                delete_and_wait(&entries, WorkloadEntry::KIND, &name, deadline).await?;
            }
        }
        if let Some(secret) = model.token_secret_name.as_deref().filter(|s| !s.is_empty()) {
            let secrets = self.api::<Secret>();
            ignore_not_found(secrets.delete(secret, &DeleteParams::default()).await)?;
        }
        Ok(())
    }
}

/// The entries of `registration` among all the registrations' entries of a namespace.
fn registered_entries<'e>(
    entries: &'e [Arc<WorkloadEntry>],
    registration: &'e str,
) -> impl Iterator<Item = &'e WorkloadEntry> + Clone {
    entries
        .iter()
        .map(Arc::as_ref)
        .filter(move |entry| registration_of(&entry.metadata).is_some_and(|r| r == registration))
}

/// The registration an object belongs to: its registration label.
fn registration_of(metadata: &ObjectMeta) -> Option<&String> {
    metadata.labels.as_ref()?.get(REGISTRATION_LABEL)
}

/// `<managed-by label>=<the provider>`: selects the provider's token Secrets (they carry no
/// registration label; a registration's Secret is the one whose UID is its ID).
fn managed_by_selector() -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY}")
}

/// The WorkloadEntry a manual registration applies.
pub(super) fn manual_entry(
    model: &VmRegistrationModel,
    group: &Group,
    entry_name: &str,
    registration: &str,
) -> Result<WorkloadEntry, IstioError> {
    let mut labels = model.settings.labels.clone().unwrap_or_default();
    labels.insert(REGISTRATION_LABEL.into(), registration.to_string());
    let manual = ManualRegistration {
        entry_name: entry_name.to_string(),
        address: model.address.clone().unwrap_or_default(),
        network: model.settings.network.clone(),
        locality: model.settings.locality.clone(),
        weight: model.weight.map(|w| w as u32),
        labels,
        group_api_version: group.version,
    };
    manual_workload_entry(&group.group, &manual)
}

/// Whether an existing manual entry still is what the registration applies: its spec, and every
/// label and annotation it sets (others may add theirs). An entry edited outside Terraform is not.
pub(super) fn entry_is_current(found: &WorkloadEntry, wanted: &WorkloadEntry) -> bool {
    let contains = |found: &Option<BTreeMap<String, String>>,
                    wanted: &Option<BTreeMap<String, String>>| {
        wanted.iter().flatten().all(|(key, value)| {
            found
                .as_ref()
                .and_then(|f| f.get(key))
                .is_some_and(|v| v == value)
        })
    };
    found.spec == wanted.spec
        && contains(&found.metadata.labels, &wanted.metadata.labels)
        && contains(&found.metadata.annotations, &wanted.metadata.annotations)
}

/// After a VM re-connects from a new address istiod may briefly keep two entries: prefer the
/// healthy one.
fn preferred_entry<'e>(
    mut entries: impl Iterator<Item = &'e WorkloadEntry> + Clone,
) -> Option<&'e WorkloadEntry> {
    entries
        .clone()
        .find(|e| is_healthy(e))
        .or_else(|| entries.next())
}

/// A token Secret whose create's deadline ([`PENDING_ANNOTATION`]) has passed.
fn abandoned(secret: &Secret, now: time::OffsetDateTime) -> bool {
    use time::format_description::well_known::Rfc3339;
    secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PENDING_ANNOTATION))
        .and_then(|until| time::OffsetDateTime::parse(until, &Rfc3339).ok())
        .is_some_and(|until| until < now)
}

/// The registration's ID: the token Secret's UID.
pub(super) fn registration_id(secret: &Secret) -> String {
    secret.metadata.uid.clone().unwrap_or_default()
}

/// `ISTIO_SVC_IP` (and the probe rewrite for `external_ip`). In manual mode without either
/// attribute, the entry's `address`: istio-start.sh would otherwise take the first address of
/// `hostname --all-ip-addresses`, which on a VM with several interfaces need not be the address
/// the entry announces.
pub(super) fn workload_ip(model: &VmRegistrationModel) -> Option<WorkloadIp> {
    if let Some(ip) = model
        .settings
        .internal_ip
        .as_deref()
        .and_then(|ip| ip.parse().ok())
    {
        return Some(WorkloadIp::Internal(ip));
    }
    if let Some(ip) = model
        .settings
        .external_ip
        .as_deref()
        .and_then(|ip| ip.parse().ok())
    {
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

/// `2026-11-29 23:00:00.0 +00:00:00`-style or RFC 3339 input → RFC 3339 in UTC.
fn normalise_rfc3339(text: &str) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::cluster::mock::{Recorded, Reply, Seen, list, mock_client, status};
    use crate::resources::error::ErrorKind;

    fn registration_with(
        handler: impl FnMut(&Seen) -> Reply + Send + 'static,
    ) -> (Configured, VmRegistrationModel, Recorded) {
        let (client, recorded) = mock_client(handler);
        let configured = Configured::new(
            client,
            "https://mock".into(),
            "istio-system".into(),
            None,
            "terraform-provider-istio".into(),
        );
        let model = VmRegistrationModel {
            workload_group: "shop/product-vm".into(),
            id: Some("shop/product-vm/uid-1".into()),
            token_secret_name: Some("product-vm-vm-x".into()),
            ..Default::default()
        };
        (configured, model, recorded)
    }

    fn group() -> Group {
        let mut group = WorkloadGroup::new("product-vm", Default::default());
        group.metadata.namespace = Some("shop".into());
        Group {
            group,
            version: IstioApiVersion::V1,
        }
    }

    fn secret() -> Secret {
        let mut secret = Secret::default();
        secret.metadata.name = Some("product-vm-vm-x".into());
        secret.metadata.uid = Some("uid-1".into());
        secret
    }

    fn token_response(token: &str) -> Reply {
        Reply::Json(
            201,
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "spec": {"audiences": ["istio-ca"]},
                   "status": {"token": token, "expirationTimestamp": "2026-01-01T00:00:00Z"}}),
        )
    }

    /// The error of a token request the API server answers with `reply`.
    async fn token_request_error(reply: impl Fn() -> Reply + Send + 'static) -> ResourceError {
        let (configured, model, _) = registration_with(move |_| reply());
        let registration = Registration::new(&configured, &model);
        match registration
            .request_token(&group(), &secret(), &model)
            .await
        {
            Ok(issued) => panic!(
                "the token request must fail, got a token until {}",
                issued.expires_at
            ),
            Err(error) => error,
        }
    }

    #[tokio::test]
    async fn the_token_is_bound_to_the_secret_with_istiods_audience() {
        let (configured, model, recorded) = registration_with(|_| token_response("t0k3n"));
        let registration = Registration::new(&configured, &model);
        let issued = registration
            .request_token(&group(), &secret(), &model)
            .await
            .expect("token");
        assert_eq!(issued.token, "t0k3n");
        assert_eq!(issued.expires_at, "2026-01-01T00:00:00Z");
        let request = &recorded.all()[0];
        assert_eq!(
            request.line(),
            "POST /api/v1/namespaces/shop/serviceaccounts/default/token"
        );
        let spec = &request.body["spec"];
        assert_eq!(spec["audiences"], json!(["istio-ca"]));
        assert_eq!(spec["expirationSeconds"], 3600);
        assert_eq!(
            spec["boundObjectRef"],
            json!({"apiVersion": "v1", "kind": "Secret", "name": "product-vm-vm-x", "uid": "uid-1"})
        );
    }

    #[tokio::test]
    async fn the_token_secret_is_made_in_one_request() {
        let (configured, model, recorded) = registration_with(|seen| {
            let mut created = seen.body.clone();
            created["metadata"]["name"] = json!("product-vm-vm-abcde");
            created["metadata"]["uid"] = json!("uid-7");
            Reply::Json(201, created)
        });
        let registration = Registration::new(&configured, &model);
        let secret = registration
            .create_token_secret(&group(), None)
            .await
            .expect("created");
        assert_eq!(registration_id(&secret), "uid-7");
        assert_eq!(
            recorded.lines(),
            ["POST /api/v1/namespaces/shop/secrets"],
            "no follow-up update"
        );
        let metadata = &recorded.all()[0].body["metadata"];
        assert_eq!(metadata["generateName"], "product-vm-vm-");
        assert_eq!(
            metadata["labels"],
            json!({"app.kubernetes.io/managed-by": "terraform-provider-istio"})
        );
    }

    #[tokio::test]
    async fn import_finds_the_secret_by_its_uid() {
        let secret = |name: &str, uid: &str| {
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": name, "namespace": "shop", "uid": uid}})
        };
        let (configured, _, recorded) =
            registration_with(move |seen| match seen.path.ends_with("/secrets") {
                true => list(vec![
                    secret("product-vm-vm-a", "uid-a"),
                    secret("product-vm-vm-b", "uid-b"),
                ]),
                false => list(vec![]),
            });
        let mut model = VmRegistrationModel {
            workload_group: "shop/product-vm".into(),
            id: Some("shop/product-vm/uid-b".into()),
            ..Default::default()
        };
        let registration = Registration::new(&configured, &model);
        assert!(
            registration
                .imported(&mut model, "uid-b")
                .await
                .expect("read")
        );
        assert_eq!(model.token_secret_name.as_deref(), Some("product-vm-vm-b"));
        assert!(
            recorded.all()[0]
                .query
                .contains("app.kubernetes.io%2Fmanaged-by%3Dterraform-provider-istio")
        );
        let mut other = model.clone();
        assert!(
            !registration
                .imported(&mut other, "uid-c")
                .await
                .expect("read")
        );
    }

    #[tokio::test]
    async fn only_secrets_pending_past_their_deadline_are_revoked_and_only_if_unchanged() {
        let secret = |name: &str, pending_until: Option<&str>| {
            let annotations = pending_until.map(|until| json!({PENDING_ANNOTATION: until}));
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"),
                                "resourceVersion": "7", "annotations": annotations}})
        };
        let (configured, model, recorded) = registration_with(move |seen| {
            match (seen.method.as_str(), seen.path.ends_with("/secrets")) {
                ("GET", true) => list(vec![
                    secret("abandoned", Some("2020-01-01T00:00:00Z")),
                    secret("confirmed", None),
                    secret("running", Some("2999-01-01T00:00:00Z")),
                ]),
                _ => Reply::Json(200, json!({"kind": "Status", "status": "Success"})),
            }
        });
        let registration = Registration::new(&configured, &model);
        registration
            .revoke_abandoned_secrets()
            .await
            .expect("swept");
        let deletes: Vec<_> = recorded
            .all()
            .into_iter()
            .filter(|seen| seen.method == "DELETE")
            .collect();
        assert_eq!(deletes.len(), 1, "{:?}", recorded.lines());
        assert_eq!(
            deletes[0].line(),
            "DELETE /api/v1/namespaces/shop/secrets/abandoned"
        );
        assert_eq!(
            deletes[0].body["preconditions"],
            json!({"resourceVersion": "7", "uid": "uid-abandoned"}),
            "a Secret confirmed since the list is kept"
        );
    }

    #[tokio::test]
    async fn a_token_request_without_token_is_missing_not_a_watch_error() {
        let error = token_request_error(|| token_response("")).await;
        assert_eq!(error.attribute, Some("token_duration"));
        assert!(matches!(error.kind, ErrorKind::Missing(_)), "{error}");
        assert!(error.to_string().contains("returned no token"), "{error}");
    }

    #[tokio::test]
    async fn a_missing_service_account_is_blamed_on_the_group() {
        let error = token_request_error(|| status(404, "NotFound")).await;
        assert_eq!(error.attribute, Some("workload_group"));
        assert!(
            error.to_string().contains("ServiceAccount shop/default"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_missing_group_says_to_create_it() {
        let (configured, model, recorded) = registration_with(|seen| match seen.path.as_str() {
            "/apis/networking.istio.io/v1" => Reply::Json(
                200,
                json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "networking.istio.io/v1",
                       "resources": [{"name": "workloadgroups", "singularName": "workloadgroup", "namespaced": true,
                                      "kind": "WorkloadGroup", "verbs": ["get"]}]}),
            ),
            _ => status(404, "NotFound"),
        });
        let registration = Registration::new(&configured, &model);
        let Err(error) = registration.group().await else {
            panic!("a missing group must fail");
        };
        assert_eq!(error.attribute, Some("workload_group"));
        assert!(error.to_string().contains("create it first"), "{error}");
        assert_eq!(
            recorded.lines(),
            [
                "GET /apis/networking.istio.io/v1",
                "GET /apis/networking.istio.io/v1/namespaces/shop/workloadgroups/product-vm"
            ]
        );
    }

    #[tokio::test]
    async fn a_gateway_with_a_host_name_becomes_the_discovery_address() {
        let (configured, model, recorded) = registration_with(|_| {
            Reply::Json(
                200,
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "istio-eastwestgateway"},
                       "status": {"loadBalancer": {"ingress": [{"hostname": "gw.example.com"}]}}}),
            )
        });
        let registration = Registration::new(&configured, &model);
        let reach = registration.istiod_reach(&model).await.expect("reach");
        assert_eq!(
            reach,
            IstiodReach::DiscoveryAddress {
                host: "gw.example.com".into(),
                port: 15012
            }
        );
        assert_eq!(
            recorded.lines(),
            ["GET /api/v1/namespaces/istio-system/services/istio-eastwestgateway"]
        );
    }

    #[tokio::test]
    async fn remove_deletes_each_entry_and_then_the_secret() {
        let entry = json!({"apiVersion": "networking.istio.io/v1", "kind": "WorkloadEntry",
                           "metadata": {"name": "product-vm-10.0.0.5", "namespace": "shop", "uid": "e-uid",
                                        "resourceVersion": "1"},
                           "spec": {"address": "10.0.0.5"}});
        let (configured, model, recorded) = registration_with(move |seen| {
            match (seen.method.as_str(), seen.query.as_str()) {
                ("GET", query) if query.contains("labelSelector") => list(vec![entry.clone()]),
                // As kube-apiserver answers for an entry without finalizers: removed at
                // once, so there is nothing to watch.
                ("DELETE", _) if seen.path.ends_with("/workloadentries/product-vm-10.0.0.5") => {
                    Reply::Json(
                        200,
                        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                   "details": {"name": "product-vm-10.0.0.5", "uid": "e-uid"}}),
                    )
                }
                // The Secret is already gone: not an error.
                ("DELETE", _) => status(404, "NotFound"),
                _ => Reply::Hang,
            }
        });
        let registration = Registration::new(&configured, &model);
        let cancel = CancellationToken::new();
        registration
            .remove(&model, Deadline::new(Duration::from_secs(5), &cancel))
            .await
            .expect("removed");
        let entries = "/apis/networking.istio.io/v1/namespaces/shop/workloadentries";
        assert_eq!(
            recorded.lines(),
            [
                format!("GET {entries}"),
                format!("DELETE {entries}/product-vm-10.0.0.5"),
                "DELETE /api/v1/namespaces/shop/secrets/product-vm-vm-x".to_string(),
            ]
        );
        assert!(
            recorded.all()[0]
                .query
                .contains("terraform-provider-istio%2Fregistration%3Duid-1")
        );
    }

    fn manual_model() -> VmRegistrationModel {
        VmRegistrationModel {
            workload_group: "shop/product-vm".into(),
            mode: Some("manual".into()),
            address: Some("10.0.0.5".into()),
            ..Default::default()
        }
    }

    fn group_with_uid() -> Group {
        let mut group = group();
        group.group.metadata.uid = Some("group-uid".into());
        group
    }

    #[test]
    fn an_entry_edited_outside_terraform_is_not_current() {
        let wanted = manual_entry(
            &manual_model(),
            &group_with_uid(),
            "product-vm-10.0.0.5",
            "uid-1",
        )
        .expect("entry");
        assert!(entry_is_current(&wanted, &wanted));

        let mut moved = wanted.clone();
        moved.spec.address = "10.99.0.1".into();
        assert!(!entry_is_current(&moved, &wanted));

        let mut relabelled = wanted.clone();
        relabelled.metadata.labels = None;
        assert!(!entry_is_current(&relabelled, &wanted));

        // Labels other tools add are theirs.
        let mut extra = wanted.clone();
        extra
            .metadata
            .labels
            .get_or_insert_default()
            .insert("team".into(), "shop".into());
        assert!(entry_is_current(&extra, &wanted));
    }

    #[tokio::test]
    async fn taking_over_an_entry_revokes_its_previous_registration() {
        let held = json!({"apiVersion": "networking.istio.io/v1", "kind": "WorkloadEntry",
                          "metadata": {"name": "product-vm-10.0.0.5", "namespace": "shop", "uid": "e-uid",
                                       "resourceVersion": "1",
                                       "labels": {REGISTRATION_LABEL: "uid-killed"}},
                          "spec": {"address": "10.0.0.5"}});
        let orphan = json!({"apiVersion": "v1", "kind": "Secret",
                            "metadata": {"name": "product-vm-vm-old", "namespace": "shop", "uid": "uid-killed",
                                         "resourceVersion": "1"}});
        let (configured, _, recorded) =
            registration_with(
                move |seen| match (seen.method.as_str(), seen.path.as_str()) {
                    // The namespace's shared watch lists the registrations' entries.
                    ("GET", _) if seen.is_watch() => Reply::Hang,
                    ("GET", path) if path.ends_with("/workloadentries") => list(vec![held.clone()]),
                    ("PATCH", _) => Reply::Json(200, held.clone()),
                    ("GET", path) if path.ends_with("/secrets") => list(vec![orphan.clone()]),
                    ("DELETE", _) => Reply::Json(200, orphan.clone()),
                    ("GET", _) => list(vec![]),
                    _ => Reply::Hang,
                },
            );
        let model = manual_model();
        let registration = Registration::new(&configured, &model);
        registration
            .apply_manual_entry(&model, &group_with_uid(), "product-vm-10.0.0.5", "uid-new")
            .await
            .expect("applied");
        let lines = recorded.lines();
        assert!(
            lines.contains(&"DELETE /api/v1/namespaces/shop/secrets/product-vm-vm-old".to_string()),
            "{lines:?}"
        );
        let secrets_query = recorded
            .all()
            .into_iter()
            .find(|seen| seen.path.ends_with("/secrets"))
            .expect("listed the previous registration's Secrets")
            .query;
        // The provider's Secrets, of which the one whose UID is the previous registration's ID.
        assert!(
            secrets_query.contains("app.kubernetes.io%2Fmanaged-by%3Dterraform-provider-istio")
        );
    }
}
