//! go-plugin "AutoMTLS": a fresh self-signed server certificate, and a client certificate
//! pinned to exactly the one Terraform put in `PLUGIN_CLIENT_CERT`.
//!
//! Terraform's client certificate is self-signed ECDSA P-521/SHA-512 with CA:TRUE. webpki's
//! verifier rejects that as `CaUsedAsEndEntity`, and the ring backend cannot verify P-521, so
//! we compare the certificate byte for byte and verify the handshake signature with aws-lc-rs.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};

use super::Error;

/// Makes aws-lc-rs the process-wide rustls backend, so every TLS user in the process (kube
/// included) can handle Terraform's P-521 certificate. Call early in `main`; repeated calls are
/// harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The server side of AutoMTLS: our certificate (for the handshake line) and the TLS config.
pub struct ServerTls {
    pub certificate_der: Vec<u8>,
    pub config: Arc<ServerConfig>,
}

impl ServerTls {
    pub fn new(client_cert_pem: &str) -> Result<ServerTls, Error> {
        let client_cert = CertificateDer::from_pem_slice(client_cert_pem.as_bytes())
            .map_err(|e| Error::Tls(format!("PLUGIN_CLIENT_CERT is not a PEM certificate: {e}")))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let (certificate, key) = generate_server_certificate()?;
        let verifier = Arc::new(PinnedClientCert {
            expected: client_cert,
            provider: provider.clone(),
        });
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![certificate.clone()], key)
            .map_err(|e| Error::Tls(e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(ServerTls {
            certificate_der: certificate.to_vec(),
            config: Arc::new(config),
        })
    }
}

/// Self-signed, CA:TRUE, SAN localhost, like go-plugin's own: Terraform's client uses it both
/// as the trusted root and as the leaf, with server name "localhost".
fn generate_server_certificate() -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), Error>
{
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let tls_error =
        |e: rcgen::Error| Error::Tls(format!("cannot generate the server certificate: {e}"));
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).map_err(tls_error)?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).map_err(tls_error)?;
    params
        .distinguished_name
        .push(DnType::OrganizationName, "tfplug");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::seconds(30);
    params.not_after = now + time::Duration::days(365 * 30);
    let certificate = params.self_signed(&key).map_err(tls_error)?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((certificate.der().clone(), key_der))
}

#[derive(Debug)]
struct PinnedClientCert {
    expected: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for PinnedClientCert {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    // No CA hints: Go then offers its only certificate, which is the one we pinned.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.expected.as_ref() {
            tracing::debug!("TLS client certificate matches the pinned PLUGIN_CLIENT_CERT");
            Ok(ClientCertVerified::assertion())
        } else {
            tracing::warn!(
                "refusing a TLS client certificate that is not the pinned PLUGIN_CLIENT_CERT"
            );
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
