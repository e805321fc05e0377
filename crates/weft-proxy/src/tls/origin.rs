//! TLS origination (`DestinationRule` `tls.mode: SIMPLE | MUTUAL`): a rustls client
//! configuration from the rule's files.
//!
//! - The server is verified against `caCertificates`, else the system bundle
//!   (`/etc/ssl/certs/ca-certificates.crt`), for the name in `sni`, else the first of
//!   `subjectAltNames`, else the service host. (Istio checks every listed SAN; weft checks the
//!   one name, a documented approximation.)
//! - `insecureSkipVerify: true` accepts any server certificate (signatures are still checked).
//! - `MUTUAL` presents `clientCertificate` and `privateKey`.
//! - ALPN is `h2` when the cluster speaks HTTP/2, else `http/1.1`.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use weft_api::mesh::TlsFiles;

use super::connector::{TlsTarget, server_name};

/// The bundle used when a rule names no `caCertificates` (Debian's path).
pub const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why an origination config could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, OriginError> {
    let err = |message: String| OriginError::File {
        path: path.display().to_string(),
        message,
    };
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate".into()));
    }
    Ok(certs)
}

/// The origination target for `files`; `mutual` presents the client certificate; `host` is
/// the service host (the default name to verify); `http2` selects the ALPN offered.
pub fn origin_target(
    files: &TlsFiles,
    mutual: bool,
    host: &str,
    http2: bool,
) -> Result<TlsTarget, OriginError> {
    let builder =
        ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = if files.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SkipVerify(provider())))
    } else {
        let bundle = files
            .ca_certificates
            .as_deref()
            .unwrap_or(Path::new(SYSTEM_BUNDLE));
        let mut roots = RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(certs(bundle)?);
        if added == 0 {
            return Err(OriginError::File {
                path: bundle.display().to_string(),
                message: "no usable CA certificate".into(),
            });
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match (mutual, &files.client_certificate, &files.private_key) {
        (true, Some(cert), Some(key)) => {
            let chain = certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| OriginError::File {
                path: key.display().to_string(),
                message: e.to_string(),
            })?;
            builder.with_client_auth_cert(chain, key)?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![if http2 {
        super::ALPN_H2.to_vec()
    } else {
        super::ALPN_HTTP11.to_vec()
    }];
    let name = files
        .sni
        .as_deref()
        .or(files.subject_alt_names.first().map(String::as_str))
        .unwrap_or(host);
    Ok(TlsTarget::Origin {
        config: Arc::new(config),
        server_name: server_name(name),
    })
}

/// `insecureSkipVerify`: any certificate, with handshake signatures still verified.
#[derive(Debug)]
struct SkipVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
