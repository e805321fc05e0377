//! rustls configurations for mutual TLS between weft proxies: TLS 1.3 only, ALPN `h2`, the
//! aws-lc-rs provider, and SPIFFE verification of the peer on both sides.

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::ca::{CERT_CHAIN_FILE, IssuedCertificate, KEY_FILE, TRUST_BUNDLE_FILE};
use crate::verify::{
    ExpectedIdentity, SpiffeClientVerifier, SpiffeServerVerifier, VerifyError, provider, root_store,
};

/// ALPN protocol spoken between weft proxies.
pub const ALPN_H2: &[u8] = b"h2";

/// Why a TLS identity or configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("no PEM certificate found in the certificate chain")]
    NoCertificate,
    #[error("no PEM private key found")]
    NoPrivateKey,
    #[error("trust bundle: {0}")]
    TrustBundle(#[from] VerifyError),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A workload's certificate chain (leaf first), its private key and its trust bundle.
pub struct WorkloadIdentity {
    pub cert_chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub roots: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for WorkloadIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadIdentity")
            .field("cert_chain", &self.cert_chain.len())
            .field("roots", &self.roots.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl WorkloadIdentity {
    /// Parses PEM text: certificate chain, private key and trust bundle.
    pub fn from_pem(chain_pem: &str, key_pem: &str, bundle_pem: &str) -> Result<Self, TlsError> {
        let cert_chain = certs_from_pem(chain_pem)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|_| TlsError::NoPrivateKey)?;
        let roots = certs_from_pem(bundle_pem)?;
        Ok(Self {
            cert_chain,
            key,
            roots,
        })
    }

    /// Reads `cert-chain.pem`, `key.pem` and `root-cert.pem` from a directory.
    pub fn load(dir: &Path) -> Result<Self, TlsError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| TlsError::Io { path, source })
        };
        Self::from_pem(
            &read(CERT_CHAIN_FILE)?,
            &read(KEY_FILE)?,
            &read(TRUST_BUNDLE_FILE)?,
        )
    }
}

impl TryFrom<&IssuedCertificate> for WorkloadIdentity {
    type Error = TlsError;

    fn try_from(issued: &IssuedCertificate) -> Result<Self, TlsError> {
        Self::from_pem(
            &issued.cert_chain_pem,
            &issued.key_pem,
            &issued.trust_bundle_pem,
        )
    }
}

/// Parses every certificate in a PEM bundle; at least one is required.
pub fn certs_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::NoCertificate)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    Ok(certs)
}

/// Server side of mTLS: presents `identity` and requires a client certificate that chains to
/// `identity.roots` and carries a SPIFFE ID accepted by `expected_client`.
pub fn server_config(
    identity: &WorkloadIdentity,
    expected_client: ExpectedIdentity,
) -> Result<ServerConfig, TlsError> {
    let verifier = SpiffeClientVerifier::new(root_store(&identity.roots)?, expected_client)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(identity.cert_chain.clone(), identity.key.clone_key())?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

/// The control plane's gRPC server: presents `identity`, ALPN `h2`; a client certificate is
/// optional (bootstrap tokens) but verified against the trust bundle when presented.
pub fn control_server_config(identity: &WorkloadIdentity) -> Result<ServerConfig, TlsError> {
    let verifier =
        SpiffeClientVerifier::optional(root_store(&identity.roots)?, ExpectedIdentity::Any)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(identity.cert_chain.clone(), identity.key.clone_key())?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

/// A client of the control plane that has no certificate yet: verifies the server against the
/// trust bundle (`expected_server`) and presents nothing.
pub fn bootstrap_client_config(
    roots: &[CertificateDer<'static>],
    expected_server: ExpectedIdentity,
) -> Result<ClientConfig, TlsError> {
    let verifier = SpiffeServerVerifier::new(root_store(roots)?, expected_server);
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

/// Client side of mTLS: presents `identity` and requires the server's certificate to chain to
/// `identity.roots` with a SPIFFE ID accepted by `expected_server`. The `ServerName` passed
/// to the connector is only used for SNI; it is not checked against the certificate.
pub fn client_config(
    identity: &WorkloadIdentity,
    expected_server: ExpectedIdentity,
) -> Result<ClientConfig, TlsError> {
    let verifier = SpiffeServerVerifier::new(root_store(&identity.roots)?, expected_server);
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(identity.cert_chain.clone(), identity.key.clone_key())?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}
