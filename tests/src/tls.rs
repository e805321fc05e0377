//! Certificates as the tests see them: the fingerprint of a workload certificate as
//! `x-forwarded-client-cert` spells it (`Hash=`, lowercase hex SHA-256 of the DER leaf), and a
//! direct mutual-TLS handshake with a proxy's inbound listener to learn which certificate it
//! presents right now (after a rotation, for example).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::net::TcpStream;

/// Lowercase hex SHA-256 of a DER certificate.
pub fn der_hash(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn leaf_chain(identity_dir: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let path = identity_dir.join("cert-chain.pem");
    let chain = CertificateDer::pem_file_iter(&path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(!chain.is_empty(), "{} has no certificate", path.display());
    Ok(chain)
}

/// The `Hash=` a proxy puts in `x-forwarded-client-cert` for the certificate in
/// `identity_dir` (a `weft ca issue` directory).
pub fn cert_hash(identity_dir: &Path) -> anyhow::Result<String> {
    Ok(der_hash(leaf_chain(identity_dir)?[0].as_ref()))
}

/// Handshakes with the mTLS listener at `addr`, presenting the identity in `identity_dir`, and
/// returns [`der_hash`] of the certificate the server presented. The server certificate is not
/// verified: the caller compares the hash with the one it expects.
pub async fn server_cert_hash(addr: SocketAddr, identity_dir: &Path) -> anyhow::Result<String> {
    let chain = leaf_chain(identity_dir)?;
    let key_path = identity_dir.join("key.pem");
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .with_context(|| format!("reading {}", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(AnyServer(provider.signature_verification_algorithms));
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let handshake = async {
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::try_from("outbound_.9080_._.probe")?.to_owned();
        anyhow::Ok(connector.connect(name, tcp).await?)
    };
    let tls = tokio::time::timeout(Duration::from_secs(10), handshake)
        .await
        .context("TLS handshake timed out")?
        .with_context(|| format!("TLS handshake with {addr} failed"))?;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .context("the server presented no certificate")?;
    Ok(der_hash(leaf.as_ref()))
}

/// Accepts any server certificate (signatures are still checked): a probe, not a client.
#[derive(Debug)]
struct AnyServer(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
