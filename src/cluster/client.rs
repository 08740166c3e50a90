//! Builds a `kube::Client` from the provider configuration, with the same surface and the
//! same environment variables as the hashicorp/kubernetes provider, so existing modules can
//! pass their settings through unchanged.

use std::collections::HashMap;
use std::path::PathBuf;

use base64::Engine;
use kube::Config;
use kube::config::{
    AuthInfo, Cluster, Context, ExecConfig, KubeConfigOptions, Kubeconfig, NamedAuthInfo,
    NamedCluster, NamedContext,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::KubeError;

/// Connection settings after provider attributes and `KUBE_*` environment variables are merged.
/// Attributes win over environment variables, as in the kubernetes provider.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConnectionSettings {
    pub config_paths: Vec<String>,
    pub config_context: Option<String>,
    pub config_context_auth_info: Option<String>,
    pub config_context_cluster: Option<String>,
    pub host: Option<String>,
    pub token: Option<String>,
    pub cluster_ca_certificate: Option<String>,
    pub client_certificate: Option<String>,
    pub client_key: Option<String>,
    pub insecure: Option<bool>,
    pub tls_server_name: Option<String>,
    pub proxy_url: Option<String>,
    pub exec: Option<ExecSettings>,
}

/// The `exec` credential plugin (for example `aws eks get-token`).
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct ExecSettings {
    pub api_version: String,
    pub command: String,
    pub args: Vec<String>,
    pub env: HashMap<String, String>,
}

// Secrets never reach logs: Debug prints which settings are present, not their values.
impl std::fmt::Debug for ConnectionSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionSettings")
            .field("config_paths", &self.config_paths)
            .field("config_context", &self.config_context)
            .field("config_context_auth_info", &self.config_context_auth_info)
            .field("config_context_cluster", &self.config_context_cluster)
            .field("host", &self.host)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field(
                "cluster_ca_certificate",
                &self.cluster_ca_certificate.is_some(),
            )
            .field("client_certificate", &self.client_certificate.is_some())
            .field(
                "client_key",
                &self.client_key.as_ref().map(|_| "<redacted>"),
            )
            .field("insecure", &self.insecure)
            .field("tls_server_name", &self.tls_server_name)
            .field(
                "proxy_url",
                &self.proxy_url.as_deref().map(without_credentials),
            )
            .field("exec", &self.exec.as_ref().map(|e| &e.command))
            .finish()
    }
}

impl ConnectionSettings {
    /// Fills every unset setting from its `KUBE_*` environment variable.
    pub fn with_environment(mut self, env: &dyn Fn(&str) -> Option<String>) -> Self {
        if self.config_paths.is_empty() {
            if let Some(paths) = env("KUBE_CONFIG_PATHS") {
                self.config_paths = std::env::split_paths(&paths)
                    .map(|p| p.to_string_lossy().into_owned())
                    .filter(|p| !p.is_empty())
                    .collect();
            } else if let Some(path) = env("KUBE_CONFIG_PATH") {
                self.config_paths = vec![path];
            }
        }
        fill(&mut self.config_context, env("KUBE_CTX"));
        fill(
            &mut self.config_context_auth_info,
            env("KUBE_CTX_AUTH_INFO"),
        );
        fill(&mut self.config_context_cluster, env("KUBE_CTX_CLUSTER"));
        fill(&mut self.host, env("KUBE_HOST"));
        fill(&mut self.token, env("KUBE_TOKEN"));
        fill(
            &mut self.cluster_ca_certificate,
            env("KUBE_CLUSTER_CA_CERT_DATA"),
        );
        fill(&mut self.client_certificate, env("KUBE_CLIENT_CERT_DATA"));
        fill(&mut self.client_key, env("KUBE_CLIENT_KEY_DATA"));
        fill(&mut self.tls_server_name, env("KUBE_TLS_SERVER_NAME"));
        fill(&mut self.proxy_url, env("KUBE_PROXY_URL"));
        if self.insecure.is_none() {
            self.insecure = env("KUBE_INSECURE").map(|v| v == "true" || v == "1");
        }
        self
    }

    fn has_explicit_credentials(&self) -> bool {
        self.host.is_some()
            || self.token.is_some()
            || self.client_certificate.is_some()
            || self.exec.is_some()
    }

    /// Each error names the attribute that is set (Terraform can show only the source line
    /// of an attribute present in the configuration).
    fn validate(&self) -> Result<(), KubeError> {
        if self.client_certificate.is_some() != self.client_key.is_some() {
            return Err(KubeError::InvalidSetting {
                attribute: if self.client_certificate.is_some() {
                    "client_certificate"
                } else {
                    "client_key"
                },
                message: "`client_certificate` and `client_key` must be set together".into(),
            });
        }
        if self.exec.is_some() && (self.token.is_some() || self.client_certificate.is_some()) {
            return Err(KubeError::InvalidSetting {
                attribute: if self.token.is_some() {
                    "token"
                } else {
                    "client_certificate"
                },
                message: "do not mix an `exec` block with `token` or client certificates; use one kind of credential".into(),
            });
        }
        if let Some(exec) = &self.exec
            && !EXEC_API_VERSIONS.contains(&exec.api_version.as_str())
        {
            return Err(KubeError::InvalidSetting {
                attribute: "exec.api_version",
                message: format!(
                    "{:?} is not an ExecCredential API version; use {}",
                    exec.api_version,
                    EXEC_API_VERSIONS.join(" or ")
                ),
            });
        }
        check_certificates("cluster_ca_certificate", &self.cluster_ca_certificate)?;
        check_certificates("client_certificate", &self.client_certificate)?;
        if let Some(key) = &self.client_key
            && PrivateKeyDer::from_pem_slice(key.as_bytes()).is_err()
        {
            return Err(KubeError::InvalidSetting {
                attribute: "client_key",
                message: "is not a PEM private key (-----BEGIN ... PRIVATE KEY-----)".into(),
            });
        }
        if let Some(host) = &self.host {
            host.parse::<http::Uri>()
                .map_err(|e| KubeError::InvalidSetting {
                    attribute: "host",
                    message: format!("{host:?} is not a URL ({e}); use e.g. https://10.0.0.1:6443"),
                })?;
        }
        if let Some(proxy) = &self.proxy_url {
            let scheme_ok = ["http://", "https://", "socks5://"]
                .iter()
                .any(|s| proxy.starts_with(s));
            if !scheme_ok {
                return Err(KubeError::InvalidSetting {
                    attribute: "proxy_url",
                    message: format!(
                        "{:?} must start with http://, https:// or socks5://",
                        without_credentials(proxy)
                    ),
                });
            }
        }
        Ok(())
    }
}

/// The ExecCredential versions client-go accepts (`v1alpha1` is gone since Kubernetes 1.24).
const EXEC_API_VERSIONS: [&str; 2] = [
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
];

/// A PEM attribute must hold at least one certificate and nothing unreadable, or TLS would
/// fail later with a message that does not name it.
fn check_certificates(attribute: &'static str, pem: &Option<String>) -> Result<(), KubeError> {
    let Some(pem) = pem else { return Ok(()) };
    let parsed: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
    match parsed {
        Ok(certificates) if !certificates.is_empty() => Ok(()),
        Ok(_) => Err(KubeError::InvalidSetting {
            attribute,
            message: "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        }),
        Err(error) => Err(KubeError::InvalidSetting {
            attribute,
            message: format!("is not a readable PEM certificate: {error}"),
        }),
    }
}

/// `config_context_cluster` and `config_context_auth_info` must name entries of the
/// kubeconfig files: otherwise the explicit settings would silently fill an empty one.
fn check_selected_names(
    settings: &ConnectionSettings,
    kubeconfig: &Kubeconfig,
) -> Result<(), KubeError> {
    if let Some(cluster) = &settings.config_context_cluster {
        let names: Vec<&str> = kubeconfig
            .clusters
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        if !names.contains(&cluster.as_str()) {
            return Err(not_in_kubeconfig(
                "config_context_cluster",
                "cluster",
                cluster,
                &names,
            ));
        }
    }
    if let Some(user) = &settings.config_context_auth_info {
        let names: Vec<&str> = kubeconfig
            .auth_infos
            .iter()
            .map(|u| u.name.as_str())
            .collect();
        if !names.contains(&user.as_str()) {
            return Err(not_in_kubeconfig(
                "config_context_auth_info",
                "user",
                user,
                &names,
            ));
        }
    }
    Ok(())
}

fn not_in_kubeconfig(attribute: &'static str, kind: &str, name: &str, names: &[&str]) -> KubeError {
    KubeError::InvalidSetting {
        attribute,
        message: format!(
            "the kubeconfig has no {kind} {name:?}; use one of its {kind}s: {}",
            names.join(", ")
        ),
    }
}

/// A URL with its `user:password@` part replaced, so a proxy's credentials never reach a log
/// line or a diagnostic.
pub fn without_credentials(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let prefix = if scheme.is_empty() {
                String::new()
            } else {
                format!("{scheme}://")
            };
            format!("{prefix}<redacted>@{}", &rest[at + 1..])
        }
        None => url.to_string(),
    }
}

fn fill(slot: &mut Option<String>, value: Option<String>) {
    if slot.is_none() {
        *slot = value.filter(|v| !v.is_empty());
    }
}

/// Resolves the settings into a `kube::Config`: kubeconfig files first, explicit
/// attributes layered over the selected context, in-cluster as the last resort. Makes no
/// network call: credentials are checked by `configure` (`connection::check_connection`), so
/// `terraform validate` works offline.
pub async fn build_config(settings: &ConnectionSettings) -> Result<Config, KubeError> {
    settings.validate()?;
    if settings.config_paths.is_empty() && !settings.has_explicit_credentials() {
        return in_cluster_config();
    }
    let mut kubeconfig = load_kubeconfigs(&settings.config_paths)?;
    if !settings.config_paths.is_empty() {
        check_selected_names(settings, &kubeconfig)?;
    }
    let options = select(settings, &mut kubeconfig);
    overlay_explicit_settings(settings, &mut kubeconfig, &options);
    Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(KubeError::Selection)
}

fn in_cluster_config() -> Result<Config, KubeError> {
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_none() {
        return Err(KubeError::NotConfigured);
    }
    Config::incluster().map_err(KubeError::InCluster)
}

fn load_kubeconfigs(paths: &[String]) -> Result<Kubeconfig, KubeError> {
    let mut merged = Kubeconfig::default();
    for path in paths {
        let expanded = expand_home(path);
        let next = Kubeconfig::read_from(&expanded).map_err(|source| KubeError::Kubeconfig {
            path: path.clone(),
            source,
        })?;
        merged = merged.merge(next).map_err(|source| KubeError::Kubeconfig {
            path: path.clone(),
            source,
        })?;
    }
    Ok(merged)
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Name used for the context, cluster and user synthesised from explicit attributes.
const SYNTHETIC: &str = "terraform-provider-istio";

/// Picks the context/cluster/user to use, creating a synthetic context when the
/// kubeconfig has none (explicit `host` + credentials only).
fn select(settings: &ConnectionSettings, kubeconfig: &mut Kubeconfig) -> KubeConfigOptions {
    let context_name = settings
        .config_context
        .clone()
        .or_else(|| kubeconfig.current_context.clone().filter(|c| !c.is_empty()));
    let context = context_name
        .as_ref()
        .and_then(|name| kubeconfig.contexts.iter().find(|c| &c.name == name))
        .and_then(|c| c.context.clone());
    if context.is_none() && settings.config_context.is_none() {
        add_synthetic_context(kubeconfig);
        return KubeConfigOptions {
            context: Some(SYNTHETIC.into()),
            cluster: settings.config_context_cluster.clone(),
            user: settings.config_context_auth_info.clone(),
        };
    }
    KubeConfigOptions {
        context: context_name,
        cluster: settings
            .config_context_cluster
            .clone()
            .or_else(|| context.as_ref().map(|c| c.cluster.clone())),
        user: settings
            .config_context_auth_info
            .clone()
            .or_else(|| context.as_ref().and_then(|c| c.user.clone())),
    }
}

fn add_synthetic_context(kubeconfig: &mut Kubeconfig) {
    kubeconfig.clusters.push(NamedCluster {
        name: SYNTHETIC.into(),
        cluster: Some(Cluster::default()),
        ..Default::default()
    });
    kubeconfig.auth_infos.push(NamedAuthInfo {
        name: SYNTHETIC.into(),
        auth_info: Some(AuthInfo::default()),
        ..Default::default()
    });
    kubeconfig.contexts.push(NamedContext {
        name: SYNTHETIC.into(),
        context: Some(Context {
            cluster: SYNTHETIC.into(),
            user: Some(SYNTHETIC.into()),
            ..Default::default()
        }),
        ..Default::default()
    });
}

fn overlay_explicit_settings(
    settings: &ConnectionSettings,
    kubeconfig: &mut Kubeconfig,
    options: &KubeConfigOptions,
) {
    let cluster_name = options.cluster.clone().unwrap_or_else(|| SYNTHETIC.into());
    let user_name = options.user.clone().unwrap_or_else(|| SYNTHETIC.into());
    let cluster = named_cluster(kubeconfig, &cluster_name);
    if let Some(host) = &settings.host {
        cluster.server = Some(host.clone());
    }
    if let Some(ca) = &settings.cluster_ca_certificate {
        cluster.certificate_authority = None;
        cluster.certificate_authority_data = Some(base64_pem(ca));
    }
    if let Some(insecure) = settings.insecure {
        cluster.insecure_skip_tls_verify = Some(insecure);
    }
    if let Some(name) = &settings.tls_server_name {
        cluster.tls_server_name = Some(name.clone());
    }
    if let Some(proxy) = &settings.proxy_url {
        cluster.proxy_url = Some(proxy.clone());
    }
    let user = named_auth_info(kubeconfig, &user_name);
    if let Some(token) = &settings.token {
        user.token = Some(token.clone().into());
        user.token_file = None;
    }
    if let (Some(cert), Some(key)) = (&settings.client_certificate, &settings.client_key) {
        user.client_certificate = None;
        user.client_key = None;
        user.client_certificate_data = Some(base64_pem(cert));
        user.client_key_data = Some(base64_pem(key).into());
    }
    if let Some(exec) = &settings.exec {
        user.exec = Some(exec_config(exec));
    }
}

fn named_cluster<'a>(kubeconfig: &'a mut Kubeconfig, name: &str) -> &'a mut Cluster {
    if !kubeconfig.clusters.iter().any(|c| c.name == name) {
        kubeconfig.clusters.push(NamedCluster {
            name: name.into(),
            cluster: Some(Cluster::default()),
            ..Default::default()
        });
    }
    let entry = kubeconfig
        .clusters
        .iter_mut()
        .find(|c| c.name == name)
        .expect("inserted above");
    entry.cluster.get_or_insert_with(Cluster::default)
}

fn named_auth_info<'a>(kubeconfig: &'a mut Kubeconfig, name: &str) -> &'a mut AuthInfo {
    if !kubeconfig.auth_infos.iter().any(|a| a.name == name) {
        kubeconfig.auth_infos.push(NamedAuthInfo {
            name: name.into(),
            auth_info: Some(AuthInfo::default()),
            ..Default::default()
        });
    }
    let entry = kubeconfig
        .auth_infos
        .iter_mut()
        .find(|a| a.name == name)
        .expect("inserted above");
    entry.auth_info.get_or_insert_with(AuthInfo::default)
}

fn exec_config(exec: &ExecSettings) -> ExecConfig {
    let env = exec
        .env
        .iter()
        .map(|(name, value)| {
            HashMap::from([
                ("name".to_string(), name.clone()),
                ("value".to_string(), value.clone()),
            ])
        })
        .collect();
    ExecConfig {
        api_version: Some(exec.api_version.clone()),
        command: Some(exec.command.clone()),
        args: Some(exec.args.clone()),
        env: Some(env),
        ..Default::default()
    }
}

/// Kubeconfig `*-data` fields hold base64 of the PEM text; the provider attributes hold PEM.
fn base64_pem(pem: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(pem.as_bytes())
}

/// The User-Agent of every request, so the API server's audit log and metrics name the
/// provider (kube-rs sends none of its own).
pub const USER_AGENT: &str = concat!("terraform-provider-istio/", env!("CARGO_PKG_VERSION"));

/// The client for `config`, naming itself with [`USER_AGENT`].
pub fn new_client(mut config: Config) -> Result<kube::Client, kube::Error> {
    let agent = http::HeaderValue::from_static(USER_AGENT);
    config.headers.push((http::header::USER_AGENT, agent));
    kube::Client::try_from(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn attributes_win_over_environment() {
        let settings = ConnectionSettings {
            host: Some("https://attr:6443".into()),
            ..Default::default()
        }
        .with_environment(&env_of(&[
            ("KUBE_HOST", "https://env:6443"),
            ("KUBE_TOKEN", "t"),
        ]));
        assert_eq!(settings.host.as_deref(), Some("https://attr:6443"));
        assert_eq!(settings.token.as_deref(), Some("t"));
    }

    #[test]
    fn config_paths_env_is_split_like_path() {
        let settings = ConnectionSettings::default()
            .with_environment(&env_of(&[("KUBE_CONFIG_PATHS", "/a:/b")]));
        assert_eq!(
            settings.config_paths,
            vec!["/a".to_string(), "/b".to_string()]
        );
    }

    #[test]
    fn debug_output_never_contains_secrets() {
        let settings = ConnectionSettings {
            token: Some("very-secret-token".into()),
            client_key: Some("-----BEGIN EC PRIVATE KEY-----secret".into()),
            ..Default::default()
        };
        let printed = format!("{settings:?}");
        assert!(!printed.contains("very-secret-token"));
        assert!(!printed.contains("PRIVATE KEY"));
    }

    #[test]
    fn certificate_without_key_names_the_attribute_set() {
        let settings = ConnectionSettings {
            client_certificate: Some("pem".into()),
            ..Default::default()
        };
        match settings.validate() {
            Err(KubeError::InvalidSetting { attribute, .. }) => {
                assert_eq!(attribute, "client_certificate")
            }
            other => panic!("expected InvalidSetting, got {other:?}"),
        }
    }

    #[test]
    fn proxy_credentials_never_reach_logs_or_diagnostics() {
        let settings = ConnectionSettings {
            proxy_url: Some("ftp://tfuser:s3cret@proxy.example:3128".into()),
            ..Default::default()
        };
        assert!(!format!("{settings:?}").contains("s3cret"));
        assert!(format!("{settings:?}").contains("<redacted>@proxy.example:3128"));
        let error = settings.validate().unwrap_err().to_string();
        assert!(!error.contains("s3cret"), "{error}");
        assert_eq!(
            without_credentials("http://proxy.example:3128/path@x"),
            "http://proxy.example:3128/path@x"
        );
    }

    #[test]
    fn bad_proxy_scheme_is_rejected() {
        let settings = ConnectionSettings {
            proxy_url: Some("ftp://x".into()),
            ..Default::default()
        };
        assert!(matches!(
            settings.validate(),
            Err(KubeError::InvalidSetting {
                attribute: "proxy_url",
                ..
            })
        ));
    }

    #[tokio::test]
    async fn explicit_host_and_token_build_a_config_without_kubeconfig() {
        let settings = ConnectionSettings {
            host: Some("https://127.0.0.1:6443".into()),
            token: Some("abc".into()),
            insecure: Some(true),
            ..Default::default()
        };
        let config = build_config(&settings).await.expect("config");
        assert_eq!(config.cluster_url.to_string(), "https://127.0.0.1:6443/");
        assert!(config.accept_invalid_certs);
        assert!(config.auth_info.token.is_some());
    }

    #[tokio::test]
    async fn explicit_host_overrides_the_kubeconfig_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters:\n- name: c\n  cluster:\n    server: https://from-file:6443\ncontexts:\n- name: a\n  context:\n    cluster: c\n    user: u\n    namespace: ns1\nusers:\n- name: u\n  user:\n    token: file-token\n",
        )
        .unwrap();
        let settings = ConnectionSettings {
            config_paths: vec![path.to_string_lossy().into()],
            host: Some("https://override:6443".into()),
            ..Default::default()
        };
        let config = build_config(&settings).await.expect("config");
        assert_eq!(config.cluster_url.host(), Some("override"));
        assert_eq!(config.default_namespace, "ns1");
    }

    #[tokio::test]
    async fn missing_kubeconfig_names_the_path() {
        let settings = ConnectionSettings {
            config_paths: vec!["/nonexistent/kubeconfig".into()],
            ..Default::default()
        };
        let error = build_config(&settings).await.unwrap_err();
        assert!(
            error.to_string().contains("/nonexistent/kubeconfig"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn unknown_context_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n",
        )
        .unwrap();
        let settings = ConnectionSettings {
            config_paths: vec![path.to_string_lossy().into()],
            config_context: Some("nope".into()),
            ..Default::default()
        };
        assert!(build_config(&settings).await.is_err());
    }
}
