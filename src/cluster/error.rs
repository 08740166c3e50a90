use thiserror::Error;

/// Everything that can go wrong between the provider and the Kubernetes API server.
/// Each variant's message says what happened and what to do, because it ends up in a
/// Terraform diagnostic.
#[derive(Debug, Error)]
pub enum KubeError {
    #[error(
        "no Kubernetes connection is configured: set `config_path` (or KUBE_CONFIG_PATH), `host` with credentials, or run inside a cluster"
    )]
    NotConfigured,
    #[error("cannot read kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        source: kube::config::KubeconfigError,
    },
    #[error("the kubeconfig selection is invalid: {0}")]
    Selection(kube::config::KubeconfigError),
    #[error("in-cluster configuration failed: {0}")]
    InCluster(kube::config::InClusterError),
    #[error("invalid `{attribute}`: {message}")]
    InvalidSetting {
        attribute: &'static str,
        message: String,
    },
    #[error("cannot create the Kubernetes client: {0}")]
    Client(kube::Error),
    #[error(
        "the Kubernetes API server {server} rejected the provider's credentials ({detail}); check `token`, `client_certificate`/`client_key`, `exec` or the kubeconfig user"
    )]
    Unauthorized { server: String, detail: String },
    #[error(
        "cannot reach the Kubernetes API server {server}: {detail}; check `host`/the kubeconfig cluster, `insecure`, `cluster_ca_certificate` and `proxy_url`"
    )]
    Unreachable { server: String, detail: String },
    #[error(
        "{kind} {namespace}/{name}: field conflict with field manager(s) {managers}: {detail}. Another tool owns these fields; remove them there, or set `force_conflicts = true` to take ownership"
    )]
    Conflict {
        kind: String,
        namespace: String,
        name: String,
        managers: String,
        detail: String,
    },
    #[error("{0}")]
    Api(kube::Error),
    #[error("timed out after {seconds}s waiting for {what}")]
    Timeout { what: String, seconds: u64 },
    #[error("the watch on {what} failed: {detail}")]
    Watch { what: String, detail: String },
    #[error("cancelled by Terraform while waiting for {0}")]
    Cancelled(String),
}

impl KubeError {
    /// True when the API answered 404: the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, KubeError::Api(kube::Error::Api(status)) if status.code == 404)
    }
}

impl From<kube::Error> for KubeError {
    fn from(error: kube::Error) -> Self {
        KubeError::Api(error)
    }
}
