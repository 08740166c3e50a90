//! The first call to the API server, and when it fails, why, in words the user can act on:
//! the cause at the bottom of the error chain (a TLS verdict, a refused connection, a failed
//! credential plugin) and the provider setting to change. No secret reaches the message.

use std::error::Error as StdError;

use kube::Client;
use kube::client::AuthError;

use super::client::{ConnectionSettings, without_credentials};
use super::discovery::serves_preferred_version;
use super::{KubeError, Setting};
use crate::istio::crd::IstioApiVersion;

/// One cheap authenticated call, so bad credentials or an unreachable server give a single
/// clear diagnostic on the provider setting to blame instead of an error per resource. The call
/// is the discovery every resource needs anyway (see [`serves_preferred_version`]), so checking
/// the connection costs no request of its own; its answer is returned for the cache.
#[tracing::instrument(level = "debug", skip_all, fields(server = %server))]
pub async fn check_connection(
    client: &Client,
    server: &str,
    settings: &ConnectionSettings,
) -> Result<Option<IstioApiVersion>, KubeError> {
    serves_preferred_version(client)
        .await
        .map_err(|error| diagnose(&error, server, settings))
}

/// A client that could not be created: kube runs the `exec` credential plugin at creation, so
/// its failures are diagnosed like those of the first call.
pub fn client_error(error: kube::Error, server: &str, settings: &ConnectionSettings) -> KubeError {
    match causes(&error)
        .iter()
        .find_map(|e| e.downcast_ref::<AuthError>())
    {
        Some(auth) => credential_error(auth, server.to_string(), settings),
        None => KubeError::Client(error),
    }
}

/// The failed call as a [`KubeError`] that names its cause and the setting to blame.
pub fn diagnose(error: &kube::Error, server: &str, settings: &ConnectionSettings) -> KubeError {
    let server = server.to_string();
    if let kube::Error::Api(status) = error
        && (status.code == 401 || status.code == 403)
    {
        return KubeError::Unauthorized {
            server,
            detail: redact(&status.message, settings),
            setting: credential_setting(settings),
        };
    }
    let chain = causes(error);
    if let Some(auth) = chain.iter().find_map(|e| e.downcast_ref::<AuthError>()) {
        return credential_error(auth, server, settings);
    }
    let reason = redact(&reason(error), settings);
    let (setting, advice) = match chain.iter().find_map(|e| e.downcast_ref::<rustls::Error>()) {
        Some(tls) => tls_advice(tls, settings),
        None => network_advice(settings),
    };
    KubeError::Unreachable {
        server,
        reason,
        advice,
        setting,
    }
}

/// The client could not produce its credentials: the `exec` plugin failed, or a token or
/// key cannot be sent.
fn credential_error(error: &AuthError, server: String, settings: &ConnectionSettings) -> KubeError {
    let reason = match error {
        // Its message carries the plugin's whole output, stdout included, where a token may
        // be: only the exit status and stderr are shown.
        AuthError::AuthExecRun { out, .. } => format!(
            "it exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        other => reason_of(other),
    };
    let reason = redact(&reason, settings);
    match &settings.exec {
        Some(exec) => KubeError::ExecPlugin {
            command: exec.command.clone(),
            reason,
            setting: Setting::Attribute("exec.command"),
        },
        None => KubeError::Unauthorized {
            server,
            detail: reason,
            setting: credential_setting(settings),
        },
    }
}

/// The credential the API server refused: the one the configuration sets.
fn credential_setting(settings: &ConnectionSettings) -> Setting {
    if settings.token.is_some() {
        Setting::Attribute("token")
    } else if settings.exec.is_some() {
        Setting::Attribute("exec.command")
    } else if settings.client_certificate.is_some() {
        Setting::Attribute("client_certificate")
    } else {
        Setting::Kubeconfig
    }
}

/// A failed TLS handshake: a certificate for another name, or one the configured CA did not
/// sign.
fn tls_advice(error: &rustls::Error, settings: &ConnectionSettings) -> (Setting, String) {
    use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
    let wrong_name = matches!(
        error,
        rustls::Error::InvalidCertificate(NotValidForName | NotValidForNameContext { .. })
    );
    match (wrong_name, &settings.tls_server_name) {
        (true, Some(name)) => (
            Setting::Attribute("tls_server_name"),
            format!(
                "the API server's certificate is not valid for `tls_server_name` {name:?}: set it to a name the certificate holds, or remove it"
            ),
        ),
        (true, None) => (
            host_setting(settings),
            "the API server's certificate is not valid for the host name: set `tls_server_name` to a name the certificate holds".into(),
        ),
        (false, _) if settings.cluster_ca_certificate.is_some() => (
            Setting::Attribute("cluster_ca_certificate"),
            "set `cluster_ca_certificate` to the CA certificate that signed the API server's certificate".into(),
        ),
        (false, _) => (
            host_setting(settings),
            "set `cluster_ca_certificate` (or the kubeconfig cluster's certificate-authority) to the CA that signed the API server's certificate".into(),
        ),
    }
}

/// No HTTP answer at all: the proxy, when one is set, else the API server's address.
fn network_advice(settings: &ConnectionSettings) -> (Setting, String) {
    match &settings.proxy_url {
        Some(proxy) => (
            Setting::Attribute("proxy_url"),
            format!(
                "check `proxy_url` ({}): the proxy must accept connections and reach the API server",
                without_credentials(proxy)
            ),
        ),
        None => (
            host_setting(settings),
            "check `host` (or the kubeconfig cluster's server) and that the API server is running"
                .into(),
        ),
    }
}

fn host_setting(settings: &ConnectionSettings) -> Setting {
    if settings.host.is_some() {
        Setting::Attribute("host")
    } else {
        Setting::Kubeconfig
    }
}

/// The error and every cause below it. An `io::Error` that wraps another error reports that
/// error's causes as its own (`source` skips the wrapped error), so the wrapped error is
/// listed explicitly: that is where rustls puts its verdict.
fn causes<'a>(error: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut chain = Vec::new();
    let mut next = Some(error);
    while let Some(current) = next {
        chain.push(current);
        next = match current.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
            None => current.source(),
        };
    }
    chain
}

/// The messages of the error chain, each once: "client error (Connect)" alone hides the cause
/// that follows it ("tcp connect error: Connection refused", "invalid peer certificate: ...").
fn reason(error: &kube::Error) -> String {
    match error {
        // Their own message only prefixes the cause's ("ServiceError: ...").
        kube::Error::Service(cause) => reason_of(cause.as_ref()),
        kube::Error::HyperError(cause) => reason_of(cause),
        other => reason_of(other),
    }
}

fn reason_of(error: &(dyn StdError + 'static)) -> String {
    let mut text = String::new();
    for cause in causes(error) {
        let message = cause.to_string();
        if text.contains(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
    }
    text
}

/// `text` with every secret of the settings replaced: a library's message may quote a token,
/// a key or a proxy URL with its password.
fn redact(text: &str, settings: &ConnectionSettings) -> String {
    let proxy_password = settings
        .proxy_url
        .as_deref()
        .filter(|proxy| without_credentials(proxy) != *proxy);
    let secrets = [
        settings.token.as_deref(),
        settings.client_key.as_deref(),
        proxy_password,
    ];
    let mut text = text.to_string();
    for secret in secrets.into_iter().flatten().filter(|s| !s.is_empty()) {
        text = text.replace(secret, "<redacted>");
    }
    if let Some(proxy) = proxy_password
        && let Some(userinfo) = proxy
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('@'))
            .map(|(userinfo, _)| userinfo)
    {
        text = text.replace(userinfo, "<redacted>");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ConnectionSettings {
        ConnectionSettings {
            host: Some("https://127.0.0.1:1".into()),
            token: Some("tok-secret".into()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn the_check_is_the_workload_group_discovery_and_a_404_still_connects() {
        use crate::cluster::mock::{Reply, mock_client, status};
        let served = serde_json::json!({"kind": "APIResourceList", "groupVersion": "networking.istio.io/v1",
            "resources": [{"name": "workloadgroups", "singularName": "workloadgroup", "namespaced": true,
                           "kind": "WorkloadGroup", "verbs": ["get"]}]});
        for (reply, want) in [
            (Reply::Json(200, served), Some(IstioApiVersion::V1)),
            (status(404, "NotFound"), None),
        ] {
            let mut reply = Some(reply);
            let (client, recorded) = mock_client(move |_| reply.take().expect("one request"));
            let found = check_connection(&client, "https://x", &settings()).await;
            assert_eq!(found.expect("connected"), want);
            assert_eq!(recorded.lines(), ["GET /apis/networking.istio.io/v1"]);
        }
        let (client, _) = mock_client(|_| status(401, "Unauthorized"));
        let error = check_connection(&client, "https://x", &settings())
            .await
            .unwrap_err();
        assert!(matches!(error, KubeError::Unauthorized { .. }), "{error}");
    }

    fn io_error_around(inner: rustls::Error) -> kube::Error {
        let io = std::io::Error::other(inner);
        kube::Error::Service(Box::new(io))
    }

    #[test]
    fn a_wrong_ca_is_blamed_on_cluster_ca_certificate_with_the_tls_verdict() {
        let settings = ConnectionSettings {
            cluster_ca_certificate: Some("pem".into()),
            ..settings()
        };
        let error = io_error_around(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ));
        let diagnosed = diagnose(&error, "https://s", &settings);
        assert_eq!(
            diagnosed.setting(),
            Some(Setting::Attribute("cluster_ca_certificate"))
        );
        assert!(
            diagnosed.to_string().contains("UnknownIssuer"),
            "{diagnosed}"
        );
    }

    #[test]
    fn a_wrong_server_name_is_blamed_on_tls_server_name() {
        let settings = ConnectionSettings {
            tls_server_name: Some("wrong.example.com".into()),
            ..settings()
        };
        let error = io_error_around(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName,
        ));
        let diagnosed = diagnose(&error, "https://s", &settings);
        assert_eq!(
            diagnosed.setting(),
            Some(Setting::Attribute("tls_server_name"))
        );
        assert!(
            diagnosed.to_string().contains("wrong.example.com"),
            "{diagnosed}"
        );
    }

    #[test]
    fn a_refused_connection_through_a_proxy_is_blamed_on_proxy_url_without_its_password() {
        let settings = ConnectionSettings {
            proxy_url: Some("http://user:pa55word@127.0.0.1:1".into()),
            ..settings()
        };
        let refused = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connect to http://user:pa55word@127.0.0.1:1 refused",
        );
        let error = kube::Error::Service(Box::new(refused));
        let diagnosed = diagnose(&error, "https://s", &settings);
        assert_eq!(diagnosed.setting(), Some(Setting::Attribute("proxy_url")));
        let message = diagnosed.to_string();
        assert!(!message.contains("pa55word"), "{message}");
        assert!(message.contains("refused"), "{message}");
    }

    #[test]
    fn the_cause_chain_is_spelled_out_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("client error (Connect)")]
        struct Outer(#[source] std::io::Error);
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "tcp refused");
        let error = kube::Error::Service(Box::new(Outer(inner)));
        assert_eq!(reason(&error), "client error (Connect): tcp refused");
    }

    #[test]
    fn secrets_in_library_messages_are_redacted() {
        let text = redact("bad token tok-secret", &settings());
        assert_eq!(text, "bad token <redacted>");
    }
}
