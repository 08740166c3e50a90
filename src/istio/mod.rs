//! Istio knowledge that needs no cluster and no Terraform: typed CRDs (`crd`), the VM bootstrap
//! bundle that `istioctl x workload entry configure` would write (`bundle`), the WorkloadEntry
//! istiod would build for a VM (`entry`), and the Go-compatible text encoders they need
//! (`goyaml`, `shell`).
//!
//! Every behaviour here mirrors a fact in Istio's sources at the pinned version; the section is cited next
//! to the code that implements it.

pub mod bundle;
pub mod control_plane;
pub mod crd;
pub mod entry;
mod error;
pub mod goyaml;
pub mod health;
pub mod install;
pub mod liveness;
pub mod protocol;
pub mod rules;
pub mod service;
pub mod shell;

pub use bundle::{
    Bundle, BundleInputs, IstiodReach, RegistrationMode, WorkloadIp, render_bundle, service_account,
};
pub use crd::{
    IstioApiVersion, IstioCondition, IstioStatus, ReadinessProbe, WorkloadEntry, WorkloadEntrySpec,
    WorkloadGroup, WorkloadGroupSpec, healthy_condition,
};
pub use entry::{ManualRegistration, manual_workload_entry, workload_entry_name};
pub use error::IstioError;
pub use health::{EntryHealth, entry_health, is_healthy};
pub use install::{
    InjectorValues, injector_configmap_name, injector_values, is_revisioned, istiod_addr,
    istiod_host, mesh_configmap_name, trust_domain,
};

/// API group of WorkloadGroup and WorkloadEntry.
pub const NETWORKING_GROUP: &str = "networking.istio.io";

/// Annotation that makes istiod gate the endpoint on the `Healthy` condition (`pilot/pkg/serviceregistry/serviceentry/conversion.go`) and makes a
/// manual entry eligible for health updates (`pilot/pkg/autoregistration/controller.go` (`isHealthCheckedWorkloadEntry`)).
pub const HEALTH_CHECKS_ENABLED_ANNOTATION: &str = "proxy.istio.io/health-checks-enabled";
/// Set by istiod on entries it auto-registered (`pilot/pkg/autoregistration/controller.go` (`workloadEntryFromGroup`)). Never set it on a manual entry: istiod
/// would then treat the entry as its own and delete it when the VM disconnects (`pilot/pkg/autoregistration/controller.go` (disconnect and cleanup)).
pub const AUTO_REGISTRATION_GROUP_ANNOTATION: &str = "istio.io/autoRegistrationGroup";
/// The istiod instance that controls an entry (`pilot/pkg/autoregistration/controller.go` (`workloadEntryFromGroup`), `pilot/pkg/serviceregistry/serviceentry/conversion.go`).
pub const WORKLOAD_CONTROLLER_ANNOTATION: &str = "istio.io/workloadController";
/// RFC3339Nano time of the VM's current connection (`pilot/pkg/autoregistration/controller.go` (`workloadEntryFromGroup`)).
pub const CONNECTED_AT_ANNOTATION: &str = "istio.io/connectedAt";
/// RFC3339Nano time of the VM's last disconnection (`pilot/pkg/autoregistration/controller.go` (disconnect and cleanup)).
pub const DISCONNECTED_AT_ANNOTATION: &str = "istio.io/disconnectedAt";
/// YAML ProxyConfig overrides on a WorkloadGroup, applied into mesh.yaml (`istioctl/pkg/workload/workload.go` (`createMeshConfig`) step 3).
pub const PROXY_CONFIG_ANNOTATION: &str = "proxy.istio.io/config";
/// Condition type istiod writes from the VM's probe (`pilot/pkg/serviceregistry/serviceentry/conversion.go`).
pub const HEALTHY_CONDITION: &str = "Healthy";

/// ConfigMap (in the WorkloadGroup's namespace) that holds the mesh root certificate (`istioctl/pkg/workload/workload.go` (`createCertsTokens`, root-cert.pem)).
pub const ROOT_CERT_CONFIGMAP: &str = "istio-ca-root-cert";
/// Key of the root certificate in [`ROOT_CERT_CONFIGMAP`] (`istioctl/pkg/workload/workload.go` (`createCertsTokens`, root-cert.pem)).
pub const ROOT_CERT_KEY: &str = "root-cert.pem";
/// Key of the mesh config in the `istio[-<rev>]` ConfigMap (`istioctl/pkg/workload/workload.go` (`createMeshConfig`)).
pub const MESH_CONFIG_KEY: &str = "mesh";
/// Key of the Helm values in the `istio-sidecar-injector[-<rev>]` ConfigMap (`istioctl/pkg/workload/workload.go` (entry configure flags) `--clusterID`).
pub const INJECTOR_VALUES_KEY: &str = "values";
/// Audience of the VM's bootstrap token; istiod's TokenReview expects it (`istioctl/pkg/workload/workload.go` (`createCertsTokens`, istio-token)).
pub const TOKEN_AUDIENCE: &str = "istio-ca";
/// istioctl's default `--tokenDuration` in seconds (`istioctl/pkg/workload/workload.go` (entry configure flags)).
pub const DEFAULT_TOKEN_SECONDS: u64 = 3600;
/// istioctl's default `--ingressService` (`istioctl/pkg/workload/workload.go` (entry configure flags), `samples/multicluster/` and the `--network`/`--externalIP` handling in `istioctl/pkg/workload/workload.go`).
pub const DEFAULT_INGRESS_SERVICE: &str = "istio-eastwestgateway";
/// istioctl's default `-i/--istioNamespace`.
pub const DEFAULT_ISTIO_NAMESPACE: &str = "istio-system";
/// Port of istiod's TLS XDS + CA server (`pilot/cmd/pilot-discovery/app/cmd.go` "Ports"); istioctl hard-codes it (`IstiodAddr`).
pub const ISTIOD_TLS_PORT: u16 = 15012;
