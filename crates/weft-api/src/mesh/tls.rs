//! How a proxy secures the connection to an upstream endpoint: a DestinationRule's
//! `trafficPolicy.tls` (subset over port-level over top-level) resolved to one value per
//! cluster, or, when no DestinationRule sets `tls`, Istio's auto mTLS decided per endpoint
//! (mutual TLS to endpoints labelled `security.istio.io/tlsMode: istio`).

use std::path::PathBuf;

use serde::Serialize;

/// The endpoint label that says "this endpoint has a sidecar that accepts Istio mTLS".
pub const TLS_MODE_LABEL: &str = "security.istio.io/tlsMode";

/// A DestinationRule's client TLS settings for one cluster, with Istio's semantics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum UpstreamTls {
    /// `DISABLE`: plaintext, even to endpoints with a sidecar.
    Disable,
    /// `ISTIO_MUTUAL`: the workload's own certificate, the mesh trust bundle, SPIFFE
    /// verification of the server (HTTP/2 between proxies).
    IstioMutual {
        sni: Option<String>,
        /// Overrides the expected server identities (`subjectAltNames`).
        subject_alt_names: Vec<String>,
    },
    /// `SIMPLE`: TLS to a server outside the mesh, verified against `ca_certificates` (or the
    /// system roots when unset), unless `insecure_skip_verify`.
    Simple(TlsFiles),
    /// `MUTUAL`: as `SIMPLE`, presenting `client_certificate`/`private_key`.
    Mutual(TlsFiles),
}

/// Files and checks of `SIMPLE` and `MUTUAL` origination. `credentialName` (a Kubernetes
/// Secret) is not supported in standalone mode and is ignored: certificates come from files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct TlsFiles {
    pub client_certificate: Option<PathBuf>,
    pub private_key: Option<PathBuf>,
    pub ca_certificates: Option<PathBuf>,
    pub sni: Option<String>,
    pub subject_alt_names: Vec<String>,
    pub insecure_skip_verify: bool,
}
