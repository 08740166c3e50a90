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
    Unauthorized {
        server: String,
        detail: String,
        setting: Setting,
    },
    #[error("cannot reach the Kubernetes API server {server}: {reason}; {advice}")]
    Unreachable {
        server: String,
        reason: String,
        advice: String,
        setting: Setting,
    },
    #[error(
        "the `exec` credential plugin {command:?} gave no credentials: {reason}; check the `exec` block's `command`, `args` and `env` (the command must print an ExecCredential)"
    )]
    ExecPlugin {
        command: String,
        reason: String,
        setting: Setting,
    },
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
    #[error("the cluster serves no {kind} API ({versions}): install Istio's CRDs first")]
    NotServed {
        kind: &'static str,
        versions: String,
    },
    #[error("timed out after {seconds}s waiting for {what}")]
    Timeout { what: String, seconds: u64 },
    #[error("the watch on {what} failed: {detail}")]
    Watch { what: String, detail: String },
    #[error("cancelled by Terraform while waiting for {0}")]
    Cancelled(String),
}

/// The provider setting a connection error is blamed on, so its diagnostic points there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    /// `config_path` or `config_paths`, whichever the configuration uses: the kubeconfig's
    /// cluster or user is at fault.
    Kubeconfig,
    /// An attribute of the provider block; a nested one as `block.attribute` (`exec.command`).
    Attribute(&'static str),
}

impl KubeError {
    /// The provider setting to change, for errors of the connection settings.
    pub fn setting(&self) -> Option<Setting> {
        match self {
            KubeError::InvalidSetting { attribute, .. } => Some(Setting::Attribute(attribute)),
            KubeError::Kubeconfig { .. } | KubeError::NotConfigured => Some(Setting::Kubeconfig),
            KubeError::Selection(error) => Some(selection_setting(error)),
            KubeError::Client(kube::Error::RustlsTls(error)) => Some(tls_setting(error)),
            KubeError::Unauthorized { setting, .. }
            | KubeError::Unreachable { setting, .. }
            | KubeError::ExecPlugin { setting, .. } => Some(*setting),
            _ => None,
        }
    }

    /// True when the API answered 404: the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, KubeError::Api(error) if is_not_found(error))
    }
}

/// True when the API answered 404: the object (or the API group) does not exist.
pub fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// True when the API answered 409: a field conflict of server-side apply, or a
/// precondition (resourceVersion, UID) that no longer holds.
pub fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

/// The call's result, with "not found" (404) as `Ok(None)`: for deletes of objects that may
/// already be gone.
pub fn ignore_not_found<T>(result: Result<T, kube::Error>) -> Result<Option<T>, KubeError> {
    match result.map_err(KubeError::from) {
        Ok(value) => Ok(Some(value)),
        Err(error) if error.is_not_found() => Ok(None),
        Err(error) => Err(error),
    }
}

impl From<kube::Error> for KubeError {
    fn from(error: kube::Error) -> Self {
        KubeError::Api(error)
    }
}

/// The part of the kubeconfig selection (or the attribute layered over it) that failed.
fn selection_setting(error: &kube::config::KubeconfigError) -> Setting {
    use kube::config::KubeconfigError as E;
    match error {
        E::CurrentContextNotSet | E::LoadContext(_) => Setting::Attribute("config_context"),
        E::LoadClusterOfContext(_) => Setting::Attribute("config_context_cluster"),
        E::MissingClusterUrl | E::ParseClusterUrl(_) => Setting::Attribute("host"),
        E::ParseProxyUrl(_) => Setting::Attribute("proxy_url"),
        E::LoadCertificateAuthority(_) | E::ParseCertificates(_) => {
            Setting::Attribute("cluster_ca_certificate")
        }
        E::LoadClientCertificate(_) => Setting::Attribute("client_certificate"),
        E::LoadClientKey(_) => Setting::Attribute("client_key"),
        _ => Setting::Kubeconfig,
    }
}

/// The TLS material the client could not load.
fn tls_setting(error: &kube::client::RustlsTlsError) -> Setting {
    use kube::client::RustlsTlsError as E;
    match error {
        E::InvalidIdentityPem(_) | E::MissingCertificate => {
            Setting::Attribute("client_certificate")
        }
        E::MissingPrivateKey | E::InvalidPrivateKey(_) | E::UnknownPrivateKeyFormat => {
            Setting::Attribute("client_key")
        }
        E::InvalidServerName(_) => Setting::Attribute("tls_server_name"),
        _ => Setting::Attribute("cluster_ca_certificate"),
    }
}
