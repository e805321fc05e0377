//! The control-plane client: a proxy in control-plane mode gets its certificate and its config
//! from `weft control` instead of from files.
//!
//! Two loops run side by side, each retrying with [`Backoff`] while the control plane is
//! unreachable:
//! - [`certs`]: makes a key pair locally, has the CA sign a CSR (the bootstrap token proves who
//!   the proxy is for the first certificate; renewals go over mTLS with the current one) and
//!   installs the certificate in the in-memory [`IdentityStore`]; renews at half the lifetime
//!   left when it arrived.
//! - [`subscribe`]: once a certificate is installed, opens the `Subscribe` stream over mTLS, says
//!   who the proxy is ([`hello`]), and validates, compiles and applies every snapshot
//!   ([`snapshot`]), answering ACK, or NACK with the validation messages (the last good config
//!   keeps serving). A broken stream is reopened; config and certificate stay as they are.
//!
//! What it knows (address, connected, versions, last NACK, certificate expiry) is in
//! [`PlaneStatus`], served at `/config_dump` and as metrics.

mod backoff;
mod certs;
mod channel;
mod hello;
mod snapshot;
mod status;
mod subscribe;

pub use backoff::Backoff;
pub use hello::{HealthProbe, ProbeKind, ServiceProtocol};
pub use status::{PlaneMetrics, PlaneStatus};

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use tokio::sync::watch;
use weft_api::mesh::CompileOptions;
use weft_identity::verify::ExpectedIdentity;
use weft_identity::{SpiffeId, certs_from_pem};

use super::ActiveConfig;
use crate::listener::http::Workload;
use crate::tls::{IdentityError, IdentityStore};
use channel::Dialer;

/// A bootstrap token. Its `Debug` is redacted, so it never reaches a log or `/config_dump`.
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapToken(String);

impl BootstrapToken {
    pub fn new(token: impl Into<String>) -> BootstrapToken {
        BootstrapToken(token.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BootstrapToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BootstrapToken(<redacted>)")
    }
}

/// How to reach the control plane and who this proxy registers as.
#[derive(Debug, Clone)]
pub struct ControlPlaneOptions {
    /// `host:port` of the control plane's gRPC listener (always TLS).
    pub address: String,
    /// Proves who this proxy is when it asks for its first certificate.
    pub token: BootstrapToken,
    /// PEM roots the control plane's certificate must chain to.
    pub ca_bundle: PathBuf,
    /// The service this workload is an endpoint of.
    pub service: String,
    pub version: String,
    /// The service port clients use (`Host: <service>:<port>`).
    pub service_port: u16,
    pub protocol: ServiceProtocol,
    /// The mesh's trust domain: the control plane must be
    /// `spiffe://<trust domain>/ns/istio-system/sa/weft-control`.
    pub trust_domain: String,
    /// This proxy's unique name in the registry; default `<service>-<version>-<4 hex digits>`.
    pub name: Option<String>,
    /// An active health check of the application, run by the control plane.
    pub health: Option<HealthProbe>,
}

/// Why the control-plane client could not start or an exchange with the control plane failed.
#[derive(Debug, thiserror::Error)]
pub enum PlaneError {
    #[error("--ca-bundle {}: {source}", path.display())]
    ReadCaBundle {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--ca-bundle {}: {source}", path.display())]
    CaBundle {
        path: PathBuf,
        #[source]
        source: weft_identity::TlsError,
    },
    #[error("invalid trust domain {trust_domain:?}: {source}")]
    TrustDomain {
        trust_domain: String,
        #[source]
        source: weft_identity::SpiffeIdError,
    },
    #[error("invalid control-plane address {address:?}: expected HOST:PORT")]
    Address { address: String },
    #[error("cannot connect to the control plane at {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("TLS configuration for the control plane: {0}")]
    Tls(#[from] weft_identity::TlsError),
    /// The status is not this error's `source`: its `Display` repeats everything.
    #[error("the control plane answered {}: {}", .0.code(), .0.message())]
    Rpc(tonic::Status),
    #[error("the control plane did not answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("making a key pair: {0}")]
    Key(#[from] weft_identity::CaError),
    #[error("the issued certificate does not verify against the trust bundle: {0}")]
    Untrusted(#[from] weft_identity::VerifyError),
    #[error("the issued certificate is for {id}, outside the trust domain {trust_domain:?}")]
    ForeignTrustDomain { id: String, trust_domain: String },
    #[error("the issued certificate cannot be used: {0}")]
    Identity(#[from] IdentityError),
}

impl From<tonic::Status> for PlaneError {
    fn from(status: tonic::Status) -> Self {
        PlaneError::Rpc(status)
    }
}

impl PlaneError {
    /// Whether the control plane refused who we are (as opposed to being unreachable).
    fn is_refusal(&self) -> bool {
        matches!(self, PlaneError::Rpc(status)
            if matches!(status.code(), tonic::Code::Unauthenticated | tonic::Code::PermissionDenied))
    }
}

/// `err` and its sources, each said once: `cannot connect ...: transport error: Connection
/// refused (os error 111)`.
fn describe(err: &PlaneError) -> String {
    let mut text = err.to_string();
    let mut source = match err {
        PlaneError::Rpc(status) => std::error::Error::source(status),
        other => std::error::Error::source(other),
    };
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// Reports the failures of one loop: a warning when a failure is new, debug while the same
/// one repeats (the control plane may be down for a long time); always in the status.
#[derive(Debug, Default)]
struct Failures {
    last: Option<String>,
}

impl Failures {
    fn failed(
        &mut self,
        status: &PlaneStatus,
        what: &str,
        err: &PlaneError,
        retry_in: std::time::Duration,
    ) {
        let message = format!("{what}: {}", describe(err));
        if self.last.as_ref() == Some(&message) {
            tracing::debug!(error = %message, ?retry_in, "control plane request failed again; retrying");
        } else {
            tracing::warn!(error = %message, ?retry_in, "control plane request failed; retrying");
        }
        status.failed(&message);
        self.last = Some(message);
    }

    fn succeeded(&mut self) {
        self.last = None;
    }
}

/// The control-plane client of one proxy. Cheap to clone.
#[derive(Clone)]
pub struct ControlPlane {
    inner: Arc<Inner>,
}

impl fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlPlane")
            .field("address", &self.inner.dialer.address())
            .finish_non_exhaustive()
    }
}

struct Inner {
    dialer: Dialer,
    token: BootstrapToken,
    /// The `--ca-bundle` text and certificates: the control plane is verified against them
    /// until a certificate (and the trust bundle that comes with it) is installed.
    bundle_pem: String,
    roots: Vec<CertificateDer<'static>>,
    /// The control plane's SPIFFE ID.
    expected: ExpectedIdentity,
    trust_domain: String,
    /// What the Hello says; `address` is filled in per connection when the inbound listener is
    /// bound to an unspecified address.
    registration: weft_proto::Workload,
    compile: CompileOptions,
    active: Arc<ActiveConfig>,
    status: Arc<PlaneStatus>,
    identity: watch::Sender<Option<Arc<IdentityStore>>>,
    /// True once a snapshot has been applied.
    applied: watch::Sender<bool>,
}

impl ControlPlane {
    /// A client for `opts`, registering `workload` with its inbound listener at `inbound`;
    /// snapshots are compiled with `compile` and swapped into `active`. Reads the CA bundle;
    /// contacts nobody until [`run`](Self::run).
    pub fn new(
        opts: &ControlPlaneOptions,
        workload: &Workload,
        inbound: SocketAddr,
        compile: CompileOptions,
        active: Arc<ActiveConfig>,
        metrics: PlaneMetrics,
    ) -> Result<ControlPlane, PlaneError> {
        let path = opts.ca_bundle.clone();
        let bundle_pem =
            std::fs::read_to_string(&path).map_err(|source| PlaneError::ReadCaBundle {
                path: path.clone(),
                source,
            })?;
        let roots = certs_from_pem(&bundle_pem).map_err(|source| PlaneError::CaBundle {
            path: path.clone(),
            source,
        })?;
        let control_id = SpiffeId::new(
            &opts.trust_domain,
            weft_proto::CONTROL_PLANE_NAMESPACE,
            weft_proto::CONTROL_PLANE_SERVICE_ACCOUNT,
        )
        .map_err(|source| PlaneError::TrustDomain {
            trust_domain: opts.trust_domain.clone(),
            source,
        })?;
        let dialer = Dialer::new(&opts.address)?;
        let registration = hello::registration(opts, workload, inbound);
        let status = Arc::new(PlaneStatus::new(
            dialer.address(),
            &registration.name,
            metrics,
        ));
        Ok(ControlPlane {
            inner: Arc::new(Inner {
                dialer,
                token: opts.token.clone(),
                bundle_pem,
                roots,
                expected: ExpectedIdentity::OneOf(vec![control_id]),
                trust_domain: opts.trust_domain.clone(),
                registration,
                compile,
                active,
                status,
                identity: watch::Sender::new(None),
                applied: watch::Sender::new(false),
            }),
        })
    }

    /// What the client knows, for `/config_dump`.
    pub fn status(&self) -> Arc<PlaneStatus> {
        self.inner.status.clone()
    }

    /// Waits until a certificate is installed and a snapshot applied: the proxy can serve.
    /// Returns the identity store the control plane keeps current.
    pub async fn serving(&self) -> Arc<IdentityStore> {
        // `self` holds both senders, so neither channel can close while this waits.
        let mut applied = self.inner.applied.subscribe();
        let mut identity = self.inner.identity.subscribe();
        if applied.wait_for(|applied| *applied).await.is_ok() {
            let store = identity
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|s| s.clone());
            if let Some(store) = store {
                return store;
            }
        }
        std::future::pending().await
    }

    /// Talks to the control plane until the task is dropped: certificates and config.
    pub async fn run(self) {
        tracing::info!(
            address = %self.inner.dialer.address(),
            name = %self.inner.registration.name,
            "connecting to the control plane"
        );
        tokio::join!(
            certs::maintain(self.inner.clone()),
            subscribe::maintain(self.inner.clone())
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_described_with_their_causes_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = PlaneError::ReadCaBundle {
            path: PathBuf::from("/etc/weft/root-cert.pem"),
            source: io,
        };
        assert_eq!(
            describe(&err),
            "--ca-bundle /etc/weft/root-cert.pem: refused"
        );
        let err = PlaneError::from(tonic::Status::permission_denied("not you"));
        assert_eq!(
            describe(&err),
            format!(
                "the control plane answered {}: not you",
                tonic::Code::PermissionDenied
            )
        );
        assert!(err.is_refusal());
        assert!(!PlaneError::Timeout(std::time::Duration::from_secs(1)).is_refusal());
    }

    #[test]
    fn tokens_are_redacted() {
        let token = BootstrapToken::new("s3cret");
        assert_eq!(format!("{token:?}"), "BootstrapToken(<redacted>)");
        assert_eq!(token.expose(), "s3cret");
    }
}
