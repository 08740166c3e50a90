//! Istio knowledge that needs no cluster and no Terraform: typed CRDs (`crd`), the VM bootstrap
//! bundle that `istioctl x workload entry configure` would write (`bundle`), the WorkloadEntry
//! istiod would build for a VM (`entry`), and the Go-compatible text encoders they need
//! (`goyaml`, `shell`).
//!
//! Every behaviour here mirrors a fact in `shared/reference/istio-vm.md`; the section is cited next
//! to the code that implements it.

pub mod bundle;
pub mod control_plane;
pub mod crd;
pub mod entry;
mod error;
pub mod goyaml;
pub mod health;
pub mod rules;
pub mod shell;

pub use bundle::{
    Bundle, BundleInputs, IstiodReach, RegistrationMode, WorkloadIp,
    cluster_id_from_injector_values, injector_configmap_name, is_revisioned, istiod_addr,
    istiod_host, mesh_configmap_name, render_bundle, service_account,
};
pub use crd::{
    IstioApiVersion, IstioCondition, IstioStatus, ReadinessProbe, WorkloadEntry, WorkloadEntrySpec,
    WorkloadGroup, WorkloadGroupSpec, healthy_condition,
};
pub use entry::{ManualRegistration, manual_workload_entry, workload_entry_name};
pub use error::IstioError;
pub use health::{EntryHealth, entry_health, is_healthy};

/// API group of WorkloadGroup and WorkloadEntry.
pub const NETWORKING_GROUP: &str = "networking.istio.io";

/// Annotation that makes istiod gate the endpoint on the `Healthy` condition (§3.3) and makes a
/// manual entry eligible for health updates (§3.4).
pub const HEALTH_CHECKS_ENABLED_ANNOTATION: &str = "proxy.istio.io/health-checks-enabled";
/// Set by istiod on entries it auto-registered (§2.3). Never set it on a manual entry: istiod
/// would then treat the entry as its own and delete it when the VM disconnects (§2.4).
pub const AUTO_REGISTRATION_GROUP_ANNOTATION: &str = "istio.io/autoRegistrationGroup";
/// The istiod instance that controls an entry (§2.3, §3.3).
pub const WORKLOAD_CONTROLLER_ANNOTATION: &str = "istio.io/workloadController";
/// RFC3339Nano time of the VM's current connection (§2.3).
pub const CONNECTED_AT_ANNOTATION: &str = "istio.io/connectedAt";
/// RFC3339Nano time of the VM's last disconnection (§2.4).
pub const DISCONNECTED_AT_ANNOTATION: &str = "istio.io/disconnectedAt";
/// YAML ProxyConfig overrides on a WorkloadGroup, applied into mesh.yaml (§1.3 step 3).
pub const PROXY_CONFIG_ANNOTATION: &str = "proxy.istio.io/config";
/// Condition type istiod writes from the VM's probe (§3.3).
pub const HEALTHY_CONDITION: &str = "Healthy";

/// ConfigMap (in the WorkloadGroup's namespace) that holds the mesh root certificate (§1.5).
pub const ROOT_CERT_CONFIGMAP: &str = "istio-ca-root-cert";
/// Key of the root certificate in [`ROOT_CERT_CONFIGMAP`] (§1.5).
pub const ROOT_CERT_KEY: &str = "root-cert.pem";
/// Key of the mesh config in the `istio[-<rev>]` ConfigMap (§1.3).
pub const MESH_CONFIG_KEY: &str = "mesh";
/// Key of the Helm values in the `istio-sidecar-injector[-<rev>]` ConfigMap (§1.2 `--clusterID`).
pub const INJECTOR_VALUES_KEY: &str = "values";
/// Audience of the VM's bootstrap token; istiod's TokenReview expects it (§1.6).
pub const TOKEN_AUDIENCE: &str = "istio-ca";
/// istioctl's default `--tokenDuration` in seconds (§1.2).
pub const DEFAULT_TOKEN_SECONDS: i64 = 3600;
/// istioctl's default `--ingressService` (§1.2, §7).
pub const DEFAULT_INGRESS_SERVICE: &str = "istio-eastwestgateway";
/// istioctl's default `-i/--istioNamespace`.
pub const DEFAULT_ISTIO_NAMESPACE: &str = "istio-system";
/// Port of istiod's TLS XDS + CA server (§5 "Ports"); istioctl hard-codes it (`IstiodAddr`).
pub const ISTIOD_TLS_PORT: u16 = 15012;
