//! The one error type of `crate::istio`. Each variant names the object (ConfigMap, annotation,
//! WorkloadGroup) the bad input came from, so a Terraform diagnostic can point the user at it.

/// Everything that can go wrong while rendering Istio objects or the VM bundle.
#[derive(Debug, thiserror::Error)]
pub enum IstioError {
    /// The `mesh` key of the `istio[-<rev>]` ConfigMap is not YAML or not a mesh config.
    #[error("ConfigMap {namespace}/{configmap} key {key:?}: {message}")]
    MeshConfig {
        namespace: String,
        configmap: String,
        key: &'static str,
        message: String,
    },
    /// A `proxy.istio.io/config` annotation on the WorkloadGroup is not a YAML ProxyConfig.
    #[error("WorkloadGroup {namespace}/{name} annotation {annotation:?} in {location}: {message}")]
    ProxyConfigAnnotation {
        namespace: String,
        name: String,
        annotation: &'static str,
        /// `metadata.annotations` or `spec.metadata.annotations`
        location: &'static str,
        message: String,
    },
    /// The `values` key of the `istio-sidecar-injector[-<rev>]` ConfigMap is not JSON.
    #[error("ConfigMap {configmap} key \"values\": {message}")]
    InjectorValues { configmap: String, message: String },
    /// An input the caller gave cannot produce a correct bundle or entry.
    #[error("{field}: {message}")]
    InvalidInput {
        field: &'static str,
        message: String,
    },
    /// Converting a typed object to or from a `DynamicObject` failed.
    #[error("converting {kind} for {api_version}: {source}")]
    Dynamic {
        kind: &'static str,
        api_version: String,
        #[source]
        source: serde_json::Error,
    },
}

impl IstioError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        IstioError::InvalidInput {
            field,
            message: message.into(),
        }
    }
}
