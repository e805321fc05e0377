//! Client TLS: a DestinationRule's `tls` block as the [`UpstreamTls`] the proxy applies, and the
//! SPIFFE identity of an endpoint's service account (what mTLS expects the server to present).
//!
//! Mapping: `DISABLE` → plaintext, `ISTIO_MUTUAL` → mesh certificates (`sni`,
//! `subjectAltNames`), `SIMPLE`/`MUTUAL` → origination with the named files
//! (`insecureSkipVerify` defaults to false). A block without `mode` counts as not set, so it
//! neither sets nor overrides anything (the proxy falls back to auto mTLS). Istio instead reads
//! it as `DISABLE`, the proto enum's zero value; weft deliberately does not, so that a block
//! carrying only `sni` cannot silently turn mTLS off. Empty strings count as absent fields.
//!
//! Not supported in standalone mode, and ignored: `credentialName` (a Kubernetes Secret; weft
//! reads certificates from files only) and `caCrl`.

use std::path::PathBuf;

use crate::mesh::{TlsFiles, UpstreamTls};
use crate::model::{ClientTlsMode, ClientTlsSettings};

/// `tls` when it sets a mode.
pub(super) fn with_mode(tls: Option<&ClientTlsSettings>) -> Option<&ClientTlsSettings> {
    tls.filter(|t| t.mode.is_some())
}

/// The settings a proxy applies; `None` without a mode.
pub(super) fn upstream_tls(tls: &ClientTlsSettings) -> Option<UpstreamTls> {
    let files = || TlsFiles {
        client_certificate: path(&tls.client_certificate),
        private_key: path(&tls.private_key),
        ca_certificates: path(&tls.ca_certificates),
        sni: text(&tls.sni),
        subject_alt_names: tls.subject_alt_names.clone(),
        insecure_skip_verify: tls.insecure_skip_verify.unwrap_or(false),
    };
    Some(match tls.mode? {
        ClientTlsMode::Disable => UpstreamTls::Disable,
        ClientTlsMode::IstioMutual => UpstreamTls::IstioMutual {
            sni: text(&tls.sni),
            subject_alt_names: tls.subject_alt_names.clone(),
        },
        ClientTlsMode::Simple => UpstreamTls::Simple(files()),
        ClientTlsMode::Mutual => UpstreamTls::Mutual(files()),
    })
}

/// `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`; `None` without a service
/// account.
pub(super) fn spiffe_identity(
    trust_domain: &str,
    namespace: &str,
    service_account: Option<&str>,
) -> Option<String> {
    let sa = service_account.filter(|sa| !sa.is_empty())?;
    Some(format!("spiffe://{trust_domain}/ns/{namespace}/sa/{sa}"))
}

fn text(s: &Option<String>) -> Option<String> {
    s.clone().filter(|s| !s.is_empty())
}

fn path(s: &Option<String>) -> Option<PathBuf> {
    text(s).map(PathBuf::from)
}
