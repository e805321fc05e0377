//! Peer certificate verification: webpki chain checks against the trust bundle, then exactly
//! one SPIFFE URI SAN, which becomes the peer's identity. SPIFFE certificates carry no DNS
//! SAN, so the rustls verifiers here replace hostname checks with SPIFFE ID checks.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::extensions::GeneralName;

use crate::spiffe::{SpiffeId, SpiffeIdError};

/// Why a peer certificate was refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the peer presented no certificate")]
    NoCertificate,
    #[error("no usable trust anchor in the trust bundle")]
    NoTrustAnchors,
    #[error("certificate has expired")]
    Expired,
    #[error("certificate is not valid yet")]
    NotYetValid,
    #[error("certificate is not signed by a trusted CA")]
    UntrustedIssuer,
    #[error("certificate is not a parsable X.509 certificate")]
    Malformed,
    #[error("certificate has no SPIFFE URI SAN")]
    NoSpiffeId,
    #[error("certificate has {0} URI SANs; exactly one SPIFFE ID is required")]
    MultipleUriSans(usize),
    #[error("certificate's URI SAN is not a valid SPIFFE ID: {0}")]
    InvalidSpiffeId(#[from] SpiffeIdError),
    #[error("peer identity {got} is not the expected {expected}")]
    UnexpectedIdentity { got: String, expected: String },
    #[error("certificate refused: {0}")]
    Rejected(rustls::Error),
}

impl From<rustls::Error> for VerifyError {
    fn from(err: rustls::Error) -> Self {
        use CertificateError as C;
        match &err {
            rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
                Self::Expired
            }
            rustls::Error::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
                Self::NotYetValid
            }
            rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
                Self::UntrustedIssuer
            }
            rustls::Error::InvalidCertificate(C::BadEncoding) => Self::Malformed,
            _ => Self::Rejected(err),
        }
    }
}

/// Which peer identities a connection accepts (after the chain has been verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedIdentity {
    /// Any SPIFFE ID the trust bundle vouches for.
    Any,
    /// Any SPIFFE ID in this trust domain.
    TrustDomain(String),
    /// One of these IDs (a service account, or a ServiceEntry's `subjectAltNames`).
    OneOf(Vec<SpiffeId>),
}

impl ExpectedIdentity {
    pub fn check(&self, id: &SpiffeId) -> Result<(), VerifyError> {
        let ok = match self {
            Self::Any => true,
            Self::TrustDomain(td) => id.trust_domain() == td,
            Self::OneOf(ids) => ids.contains(id),
        };
        if ok {
            return Ok(());
        }
        let expected = match self {
            Self::Any => "any identity".to_owned(),
            Self::TrustDomain(td) => format!("an identity in trust domain {td}"),
            Self::OneOf(ids) => ids
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" or "),
        };
        Err(VerifyError::UnexpectedIdentity {
            got: id.to_string(),
            expected,
        })
    }
}

impl From<SpiffeId> for ExpectedIdentity {
    fn from(id: SpiffeId) -> Self {
        Self::OneOf(vec![id])
    }
}

/// Verifies a peer's chain (leaf first) against `roots` at `now` and returns its SPIFFE ID.
/// The leaf must be valid for client authentication, as every weft workload certificate is.
pub fn verify_peer(
    chain_der: &[CertificateDer<'_>],
    roots: &[CertificateDer<'_>],
    now: UnixTime,
) -> Result<SpiffeId, VerifyError> {
    let (end_entity, intermediates) = chain_der.split_first().ok_or(VerifyError::NoCertificate)?;
    let verifier = SpiffeClientVerifier::new(root_store(roots)?, ExpectedIdentity::Any)?;
    verifier
        .inner
        .verify_client_cert(end_entity, intermediates, now)?;
    spiffe_id_of(end_entity)
}

/// The SPIFFE ID of a certificate: its only URI SAN. Does not verify the chain.
pub fn spiffe_id_of(cert: &CertificateDer<'_>) -> Result<SpiffeId, VerifyError> {
    let (_, x509) =
        x509_parser::parse_x509_certificate(cert).map_err(|_| VerifyError::Malformed)?;
    let san = x509
        .subject_alternative_name()
        .map_err(|_| VerifyError::Malformed)?;
    let uris: Vec<&str> = san
        .iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        })
        .collect();
    match uris.as_slice() {
        [] => Err(VerifyError::NoSpiffeId),
        [uri] if uri.starts_with("spiffe://") => Ok(SpiffeId::parse(uri)?),
        [_] => Err(VerifyError::NoSpiffeId),
        more => Err(VerifyError::MultipleUriSans(more.len())),
    }
}

/// Builds a root store from DER certificates; an empty or unusable bundle is an error.
pub fn root_store(roots: &[CertificateDer<'_>]) -> Result<Arc<RootCertStore>, VerifyError> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store
            .add(root.clone().into_owned())
            .map_err(|_| VerifyError::NoTrustAnchors)?;
    }
    if store.is_empty() {
        return Err(VerifyError::NoTrustAnchors);
    }
    Ok(Arc::new(store))
}

/// The process's one crypto provider: aws-lc-rs.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn to_rustls(err: VerifyError) -> rustls::Error {
    match err {
        VerifyError::Rejected(inner) => inner,
        other => rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(
            Arc::new(other),
        ))),
    }
}

/// Client side: verifies the server's chain and that its SPIFFE ID is the expected one.
#[derive(Debug)]
pub struct SpiffeServerVerifier {
    roots: Arc<RootCertStore>,
    expected: ExpectedIdentity,
    provider: Arc<CryptoProvider>,
}

impl SpiffeServerVerifier {
    pub fn new(roots: Arc<RootCertStore>, expected: ExpectedIdentity) -> Self {
        Self {
            roots,
            expected,
            provider: provider(),
        }
    }
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        let id = spiffe_id_of(end_entity).map_err(to_rustls)?;
        self.expected.check(&id).map_err(to_rustls)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
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
        verify_tls13_signature(
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

/// Server side: requires a client certificate chaining to the trust bundle with an accepted
/// SPIFFE ID. Read the caller's ID after the handshake with [`spiffe_id_of`] on the leaf.
#[derive(Debug)]
pub struct SpiffeClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    expected: ExpectedIdentity,
}

impl SpiffeClientVerifier {
    pub fn new(roots: Arc<RootCertStore>, expected: ExpectedIdentity) -> Result<Self, VerifyError> {
        let inner = WebPkiClientVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|_| VerifyError::NoTrustAnchors)?;
        Ok(Self { inner, expected })
    }

    /// As [`Self::new`], but a client may also connect without a certificate (the control
    /// plane, where a bootstrap token stands in for the first certificate). A certificate that
    /// is presented must still verify.
    pub fn optional(
        roots: Arc<RootCertStore>,
        expected: ExpectedIdentity,
    ) -> Result<Self, VerifyError> {
        let inner = WebPkiClientVerifier::builder_with_provider(roots, provider())
            .allow_unauthenticated()
            .build()
            .map_err(|_| VerifyError::NoTrustAnchors)?;
        Ok(Self { inner, expected })
    }
}

impl ClientCertVerifier for SpiffeClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let id = spiffe_id_of(end_entity).map_err(to_rustls)?;
        self.expected.check(&id).map_err(to_rustls)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests;
