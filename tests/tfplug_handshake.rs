//! Starts the test provider binary as Terraform would and checks the go-plugin handshake and
//! AutoMTLS: the pinned client certificate (self-signed P-521, CA:TRUE, like Terraform's) is
//! accepted; no certificate or another certificate is refused; TF_DISABLE_PLUGIN_TLS serves
//! plaintext; a person starting the binary gets an explanation and a non-zero exit.
#![cfg(feature = "tfplug-test-provider")]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

#[path = "support/reattach.rs"]
mod reattach;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const PROVIDER_BIN: &str = env!("CARGO_BIN_EXE_terraform-provider-tfplugtest");
const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const EMPTY_SETTINGS_FRAME: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];

/// A certificate shaped like the one Terraform 1.0.3 passes in PLUGIN_CLIENT_CERT.
struct ClientIdentity {
    pem: String,
    der: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

fn terraform_like_client_cert() -> ClientIdentity {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
    ];
    let cert = params.self_signed(&key).unwrap();
    ClientIdentity {
        pem: cert.pem(),
        der: cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(key.serialize_der()),
    }
}

struct Plugin {
    child: Child,
    socket: String,
    server_cert: Option<CertificateDer<'static>>,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_plugin(envs: &[(&str, &str)]) -> Plugin {
    let mut command = Command::new(PROVIDER_BIN);
    command
        .env_clear()
        .env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .env("TFPLUGTEST_STORE", std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in envs {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("provider starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let fields: Vec<&str> = line.trim_end().split('|').collect();
    assert_eq!(fields.len(), 6, "handshake line {line:?}");
    assert_eq!(&fields[..3], ["1", "6", "unix"], "handshake line {line:?}");
    assert_eq!(fields[4], "grpc");
    let server_cert = (!fields[5].is_empty()).then(|| {
        assert!(
            !fields[5].ends_with('='),
            "certificate must be RawStd base64 (no padding)"
        );
        let der = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(fields[5])
            .unwrap();
        CertificateDer::from(der)
    });
    Plugin {
        child,
        socket: fields[3].to_string(),
        server_cert,
    }
}

/// Terraform trusts exactly the certificate from the handshake line; so does this client.
#[derive(Debug)]
struct PinnedServer(CertificateDer<'static>);

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        assert_eq!(
            end_entity.as_ref(),
            self.0.as_ref(),
            "server presented another certificate"
        );
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms =
            rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms =
            rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn client_config(
    server_cert: &CertificateDer<'static>,
    identity: Option<&ClientIdentity>,
) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer(server_cert.clone())));
    let mut config = match identity {
        Some(id) => builder
            .with_client_auth_cert(
                vec![id.der.clone()],
                PrivateKeyDer::Pkcs8(id.key.clone_key()),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// True when the server answers an HTTP/2 preface with its SETTINGS frame, i.e. the gRPC
/// server is really talking to us.
async fn speaks_http2<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
) -> bool {
    let exchange = async {
        stream.write_all(H2_PREFACE).await?;
        stream.write_all(&EMPTY_SETTINGS_FRAME).await?;
        stream.flush().await?;
        let mut header = [0u8; 9];
        stream.read_exact(&mut header).await?;
        Ok::<_, std::io::Error>(header[3] == 4)
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(5), exchange).await,
        Ok(Ok(true))
    )
}

async fn tls_connect(plugin: &Plugin, identity: Option<&ClientIdentity>) -> bool {
    let server_cert = plugin
        .server_cert
        .as_ref()
        .expect("TLS mode announces a certificate");
    let connector = tokio_rustls::TlsConnector::from(client_config(server_cert, identity));
    let tcp = UnixStream::connect(&plugin.socket).await.unwrap();
    match connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
    {
        // TLS 1.3 clients finish before the server has judged their certificate; the verdict
        // shows on the first read.
        Ok(stream) => speaks_http2(stream).await,
        Err(_) => false,
    }
}

#[tokio::test]
async fn pinned_client_certificate_is_required() {
    let identity = terraform_like_client_cert();
    let plugin = start_plugin(&[("PLUGIN_CLIENT_CERT", &identity.pem)]);

    let cert = plugin
        .server_cert
        .as_ref()
        .expect("server certificate in handshake");
    let (_, parsed) = x509_is_ca_localhost(cert);
    assert!(
        parsed,
        "server certificate must be CA:TRUE with SAN localhost, like go-plugin's"
    );

    assert!(
        tls_connect(&plugin, Some(&identity)).await,
        "pinned certificate refused"
    );
    assert!(
        !tls_connect(&plugin, None).await,
        "connection without a client certificate accepted"
    );
    let stranger = terraform_like_client_cert();
    assert!(
        !tls_connect(&plugin, Some(&stranger)).await,
        "a different client certificate accepted"
    );
    // Still serving after refusals.
    assert!(
        tls_connect(&plugin, Some(&identity)).await,
        "pinned certificate refused after refusals"
    );
    // Plaintext is refused in TLS mode.
    let plain = UnixStream::connect(&plugin.socket).await.unwrap();
    assert!(!speaks_http2(plain).await, "plaintext accepted in TLS mode");
}

/// Minimal DER checks without an X.509 parser: basicConstraints CA:TRUE and the SAN DNS name.
fn x509_is_ca_localhost(cert: &CertificateDer<'_>) -> (Vec<u8>, bool) {
    let der = cert.as_ref().to_vec();
    let basic_constraints_ca = [0x55, 0x1d, 0x13]; // OID 2.5.29.19
    let has_ca = der.windows(3).any(|w| w == basic_constraints_ca)
        && der.windows(3).any(|w| w == [0x01, 0x01, 0xff]);
    let has_localhost = der.windows(9).any(|w| w == b"localhost");
    (der, has_ca && has_localhost)
}

#[tokio::test]
async fn tls_disabled_serves_plaintext() {
    let identity = terraform_like_client_cert();
    let plugin = start_plugin(&[
        ("PLUGIN_CLIENT_CERT", &identity.pem),
        ("TF_DISABLE_PLUGIN_TLS", "1"),
    ]);
    assert!(
        plugin.server_cert.is_none(),
        "no certificate in plaintext mode"
    );
    let stream = UnixStream::connect(&plugin.socket).await.unwrap();
    assert!(speaks_http2(stream).await);
}

#[tokio::test]
async fn no_client_certificate_means_plaintext() {
    let plugin = start_plugin(&[]);
    assert!(plugin.server_cert.is_none());
    let stream = UnixStream::connect(&plugin.socket).await.unwrap();
    assert!(speaks_http2(stream).await);
}

#[test]
fn started_by_a_person_it_explains_itself_and_fails() {
    let output = Command::new(PROVIDER_BIN).env_clear().output().unwrap();
    assert_ne!(output.status.code(), Some(0));
    assert!(
        output.stdout.is_empty(),
        "nothing may be printed as a handshake"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Terraform provider plugin"), "{stderr}");
    assert!(stderr.contains("not meant to be run directly"), "{stderr}");
    assert!(stderr.contains("terraform init"), "{stderr}");

    let wrong = Command::new(PROVIDER_BIN)
        .env_clear()
        .env("TF_PLUGIN_MAGIC_COOKIE", "nope")
        .output()
        .unwrap();
    assert_ne!(wrong.status.code(), Some(0));
}

#[test]
fn terraform_without_protocol_6_is_refused() {
    let output = Command::new(PROVIDER_BIN)
        .env_clear()
        .env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "4,5")
        .output()
        .unwrap();
    assert_ne!(output.status.code(), Some(0));
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("protocol 6"));
}

fn interrupt(pid: u32) {
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Terraform sends SIGINT to the process group on Ctrl-C, possibly right after the handshake:
/// the plugin must already ignore it then (Terraform follows up with StopProvider).
#[tokio::test]
async fn sigint_right_after_the_handshake_does_not_kill_the_plugin() {
    for _ in 0..5 {
        let mut plugin = start_plugin(&[]);
        interrupt(plugin.child.id());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            plugin.child.try_wait().unwrap().is_none(),
            "SIGINT right after the handshake killed the plugin"
        );
        let stream = UnixStream::connect(&plugin.socket).await.unwrap();
        assert!(speaks_http2(stream).await);
    }
}

/// `terraform-provider-istio --debug` serves without Terraform's environment, prints
/// TF_REATTACH_PROVIDERS (as framework providers do) and stops on Ctrl-C.
#[tokio::test]
async fn istio_provider_debug_mode_prints_tf_reattach_providers() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_terraform-provider-istio"))
        .arg("--debug")
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kept open until the end: a developer's terminal stays open too.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (_, parsed) = reattach::reattach_providers(&mut lines);
    let entry = &parsed[terraform_provider_istio::PROVIDER_SOURCE];
    assert_eq!(entry["Protocol"], "grpc");
    assert_eq!(entry["ProtocolVersion"], 6);
    assert_eq!(entry["Pid"], child.id());
    assert_eq!(entry["Addr"]["Network"], "unix");
    let socket = entry["Addr"]["String"].as_str().unwrap();
    let stream = UnixStream::connect(socket).await.unwrap();
    assert!(
        speaks_http2(stream).await,
        "debug server does not serve plaintext gRPC"
    );
    interrupt(child.id());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "Ctrl-C did not stop the debug server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
