//! The `istio` provider: its configuration (the same connection surface and `KUBE_*`
//! environment variables as the hashicorp/kubernetes provider, plus the Istio control plane to
//! use). What `configure` produces is handed to the resources through `provider_data`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cluster::client::{build_config, new_client};
use crate::cluster::connection::{check_connection, client_error};
use crate::cluster::{ConnectionSettings, ExecSettings, KubeError, Setting};
use crate::istio::{DEFAULT_ISTIO_NAMESPACE, is_revisioned};
use crate::provider_data::{Configured, ProviderHandle, ProviderState};
use crate::resources::common::validate_revision;
use crate::tfplug::{
    AttributePath, Ctx, DataSource, Diagnostics, EphemeralResource, Provider, Resource, Schema,
    UnknownAs, Value, decode,
};

pub const DEFAULT_FIELD_MANAGER: &str = "terraform-provider-istio";

/// Configures how the provider reaches the Kubernetes API server of the mesh's primary cluster
/// and which Istio control plane (namespace, revision) it works with. Connection attributes
/// and their environment variables are those of the hashicorp/kubernetes provider; like it, the
/// provider does not read `KUBECONFIG` unless told to.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
pub struct ProviderModel {
    /// Path to a kubeconfig file. Environment: `KUBE_CONFIG_PATH`.
    pub config_path: Option<String>,
    /// Paths to kubeconfig files, merged in order. Environment: `KUBE_CONFIG_PATHS`.
    pub config_paths: Option<Vec<String>>,
    /// Kubeconfig context to use instead of its current context. Environment: `KUBE_CTX`.
    pub config_context: Option<String>,
    /// Kubeconfig user to use instead of the context's. Environment: `KUBE_CTX_AUTH_INFO`.
    pub config_context_auth_info: Option<String>,
    /// Kubeconfig cluster to use instead of the context's. Environment: `KUBE_CTX_CLUSTER`.
    pub config_context_cluster: Option<String>,
    /// URL of the Kubernetes API server, e.g. `https://10.0.0.1:6443`. Environment: `KUBE_HOST`.
    pub host: Option<String>,
    /// Bearer token for the API server. Environment: `KUBE_TOKEN`.
    #[schemars(extend("x-tf" = {"sensitive": true}))]
    pub token: Option<String>,
    /// PEM-encoded CA bundle that signs the API server's certificate.
    /// Environment: `KUBE_CLUSTER_CA_CERT_DATA`.
    pub cluster_ca_certificate: Option<String>,
    /// PEM-encoded client certificate. Environment: `KUBE_CLIENT_CERT_DATA`.
    pub client_certificate: Option<String>,
    /// PEM-encoded private key of `client_certificate`. Environment: `KUBE_CLIENT_KEY_DATA`.
    #[schemars(extend("x-tf" = {"sensitive": true}))]
    pub client_key: Option<String>,
    /// Skip verification of the API server's certificate (not for production).
    /// Environment: `KUBE_INSECURE`.
    pub insecure: Option<bool>,
    /// Server name to verify the API server's certificate against.
    /// Environment: `KUBE_TLS_SERVER_NAME`.
    pub tls_server_name: Option<String>,
    /// Proxy for API server traffic: `http://`, `https://` or `socks5://`.
    /// Environment: `KUBE_PROXY_URL`.
    pub proxy_url: Option<String>,
    /// Credential plugin run to obtain a token, e.g. `aws eks get-token`. Do not combine with
    /// `token` or client certificates.
    #[schemars(extend("x-tf" = {"block": "single"}))]
    pub exec: Option<ExecModel>,
    /// Namespace of the Istio control plane. Default `istio-system`.
    pub istio_namespace: Option<String>,
    /// Istio revision resources use unless they set their own (e.g. `canary`); empty means the
    /// default revision.
    pub revision: Option<String>,
    /// Field manager for server-side apply. Default `terraform-provider-istio`.
    pub field_manager: Option<String>,
}

/// A Kubernetes client-go credential plugin.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
pub struct ExecModel {
    /// API version of the ExecCredential, e.g. `client.authentication.k8s.io/v1beta1`.
    pub api_version: String,
    /// Command to run.
    pub command: String,
    /// Arguments of the command.
    pub args: Option<Vec<String>>,
    /// Extra environment variables for the command.
    pub env: Option<BTreeMap<String, String>>,
}

pub struct IstioProvider {
    handle: Arc<ProviderHandle>,
}

impl IstioProvider {
    pub fn new() -> Self {
        IstioProvider {
            handle: ProviderHandle::new(),
        }
    }

    pub fn handle(&self) -> Arc<ProviderHandle> {
        self.handle.clone()
    }
}

impl Default for IstioProvider {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Provider for IstioProvider {
    fn schema(&self) -> Schema {
        Schema::from_model::<ProviderModel>(0)
    }

    async fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        let Some(model) = decode::<ProviderModel>(config, UnknownAs::Null, diags) else {
            return;
        };
        validate_model(&model, diags);
    }

    async fn configure(
        &self,
        _ctx: &Ctx,
        _terraform_version: &str,
        config: Value,
        diags: &mut Diagnostics,
    ) {
        let unknown = unknown_attributes(&config);
        if !unknown.is_empty() {
            self.handle.set(ProviderState::Unknown(unknown)).await;
            return;
        }
        let Some(model) = decode::<ProviderModel>(&config, UnknownAs::Error, diags) else {
            return;
        };
        // `terraform validate` never configures a provider, so checking the connection here
        // costs offline validation nothing, and every setting's error is reported on the
        // provider block, at the attribute to change, before any resource runs.
        let state = match configure_from_model(&model).await {
            Ok(configured) => ProviderState::Ready(Arc::new(configured)),
            Err(error) => {
                let path = attribute_of(&error, &model);
                diags.error(summary_of(&error), error.to_string(), path.clone());
                ProviderState::Failed(error.to_string(), Some(path))
            }
        };
        self.handle.set(state).await;
    }

    fn resources(&self) -> Vec<Arc<dyn Resource>> {
        crate::resources::all(self.handle.clone())
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource>> {
        crate::resources::all_data_sources(self.handle.clone())
    }

    fn ephemeral_resources(&self) -> Vec<Arc<dyn EphemeralResource>> {
        crate::resources::all_ephemeral_resources(self.handle.clone())
    }
}

fn validate_model(model: &ProviderModel, diags: &mut Diagnostics) {
    if model.config_path.is_some() && model.config_paths.is_some() {
        diags.error(
            "Conflicting kubeconfig settings",
            "Set either `config_path` or `config_paths`, not both.",
            AttributePath::new("config_paths"),
        );
    }
    if let Some(namespace) = &model.istio_namespace
        && let Err(problem) = crate::validation::dns1123_label(namespace)
    {
        diags.error(
            "Invalid istio_namespace",
            problem,
            AttributePath::new("istio_namespace"),
        );
    }
    validate_revision(&model.revision, diags);
    if model.field_manager.as_deref() == Some("") {
        diags.error(
            "Invalid field_manager",
            "The field manager must not be empty.",
            AttributePath::new("field_manager"),
        );
    }
}

fn unknown_attributes(config: &Value) -> Vec<String> {
    match config {
        Value::Object(attributes) => attributes
            .iter()
            .filter(|(_, value)| !value.is_fully_known())
            .map(|(name, _)| format!("`{name}`"))
            .collect(),
        _ => Vec::new(),
    }
}

async fn configure_from_model(model: &ProviderModel) -> Result<Configured, KubeError> {
    let settings = connection_settings(model).with_environment(&|name| std::env::var(name).ok());
    tracing::debug!(?settings, "configuring Kubernetes connection");
    let config = build_config(&settings).await?;
    let server = config.cluster_url.to_string();
    let client = new_client(config).map_err(|error| client_error(error, &server, &settings))?;
    let served = check_connection(&client, &server, &settings).await?;
    let configured = Configured::new(
        client,
        server,
        model
            .istio_namespace
            .clone()
            .unwrap_or_else(|| DEFAULT_ISTIO_NAMESPACE.into()),
        model.revision.clone().filter(|r| is_revisioned(r)),
        model
            .field_manager
            .clone()
            .unwrap_or_else(|| DEFAULT_FIELD_MANAGER.into()),
    );
    configured.cache.knows_served_version(served);
    Ok(configured)
}

fn connection_settings(model: &ProviderModel) -> ConnectionSettings {
    let mut config_paths = model.config_paths.clone().unwrap_or_default();
    config_paths.extend(model.config_path.clone());
    ConnectionSettings {
        config_paths,
        config_context: model.config_context.clone(),
        config_context_auth_info: model.config_context_auth_info.clone(),
        config_context_cluster: model.config_context_cluster.clone(),
        host: model.host.clone(),
        token: model.token.clone(),
        cluster_ca_certificate: model.cluster_ca_certificate.clone(),
        client_certificate: model.client_certificate.clone(),
        client_key: model.client_key.clone(),
        insecure: model.insecure,
        tls_server_name: model.tls_server_name.clone(),
        proxy_url: model.proxy_url.clone(),
        exec: model.exec.as_ref().map(|exec| ExecSettings {
            api_version: exec.api_version.clone(),
            command: exec.command.clone(),
            args: exec.args.clone().unwrap_or_default(),
            env: exec.env.clone().unwrap_or_default().into_iter().collect(),
        }),
    }
}

/// The summary of a configuration error: the API server could not be used, or a setting is
/// wrong before any call (docs/guides/troubleshooting.md explains both).
fn summary_of(error: &KubeError) -> &'static str {
    match error {
        KubeError::Unauthorized { .. }
        | KubeError::Unreachable { .. }
        | KubeError::ExecPlugin { .. }
        | KubeError::Client(_) => "Cannot use the Kubernetes API server",
        _ => "Invalid provider configuration",
    }
}

/// The attribute of the provider block the error is about; the block itself when no
/// attribute is to blame.
fn attribute_of(error: &KubeError, model: &ProviderModel) -> AttributePath {
    match error.setting() {
        Some(Setting::Attribute(dotted)) => {
            let mut names = dotted.split('.');
            let first = names.next().unwrap_or(dotted);
            names.fold(AttributePath::new(first), AttributePath::attr)
        }
        Some(Setting::Kubeconfig) if model.config_paths.is_some() => {
            AttributePath::new("config_paths")
        }
        Some(Setting::Kubeconfig) => AttributePath::new("config_path"),
        None => AttributePath::root(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tfplug::Type;

    #[test]
    fn schema_marks_secrets_sensitive_and_exec_as_block() {
        let schema = IstioProvider::new().schema();
        assert!(schema.block.attribute("token").unwrap().sensitive);
        assert!(schema.block.attribute("client_key").unwrap().sensitive);
        assert!(!schema.block.attribute("host").unwrap().sensitive);
        assert!(schema.block.block_type("exec").is_some());
        assert!(schema.block.attribute("istio_namespace").unwrap().optional);
    }

    #[test]
    fn unknown_attributes_are_named() {
        let config = Value::object([("host", Value::Unknown), ("token", Value::Null)]);
        assert_eq!(unknown_attributes(&config), vec!["`host`".to_string()]);
    }

    #[tokio::test]
    async fn unknown_configuration_gives_a_clear_diagnostic_not_a_crash() {
        let provider = IstioProvider::new();
        let schema = provider.schema();
        let mut config = Value::from_json(&serde_json::json!({}), &schema.value_type()).unwrap();
        config.set_attr("host", Value::Unknown);
        let mut diags = Diagnostics::new();
        provider
            .configure(&Ctx::default(), "1.0.3", config, &mut diags)
            .await;
        assert!(!diags.has_errors());
        let mut diags = Diagnostics::new();
        assert!(provider.handle().configured(&mut diags).await.is_none());
        let error = diags.errors().next().unwrap();
        assert!(error.detail.contains("`host`"), "{}", error.detail);
    }

    #[tokio::test]
    async fn invalid_revision_is_reported_on_its_attribute() {
        let provider = IstioProvider::new();
        let config = Value::from_json(
            &serde_json::json!({"revision": "Bad_Rev"}),
            &provider.schema().value_type(),
        )
        .unwrap();
        let mut diags = Diagnostics::new();
        provider.validate(&config, &mut diags).await;
        assert_eq!(
            diags.errors().next().unwrap().path,
            Some(AttributePath::new("revision"))
        );
        let _ = Type::String;
    }
}
