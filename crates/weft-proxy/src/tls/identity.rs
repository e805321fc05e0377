//! The workload identity of a proxy: `cert-chain.pem`, `key.pem` and `root-cert.pem` from the
//! `--identity` directory, checked every second and swapped atomically when they change.
//! Connections keep the identity they were set up with; new handshakes use the new one, so a
//! rotation drops nothing. Files caught half-written fail to parse and are retried on the next
//! tick while the previous identity keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::CertificateDer;
use weft_identity::verify::{ExpectedIdentity, spiffe_id_of};
use weft_identity::{SpiffeId, WorkloadIdentity};

use super::{ALPN_H2, ALPN_HTTP11, ALPN_TCP};

/// How often the identity files are checked for changes.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// Why an identity could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("identity {dir}: {source}")]
    Load {
        dir: PathBuf,
        #[source]
        source: weft_identity::TlsError,
    },
    #[error("identity {dir}: the certificate has no SPIFFE ID: {source}")]
    NoSpiffeId {
        dir: PathBuf,
        #[source]
        source: weft_identity::verify::VerifyError,
    },
}

/// The verified identity of a peer connected with mTLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    pub id: SpiffeId,
    /// Lowercase hex SHA-256 of the peer's leaf certificate (DER), for `x-forwarded-client-cert`.
    pub cert_hash: String,
}

impl PeerIdentity {
    /// The identity of the peer of a finished server handshake, if it presented a certificate.
    pub fn of_connection(conn: &rustls::ServerConnection) -> Option<PeerIdentity> {
        let leaf = conn.peer_certificates()?.first()?;
        Some(PeerIdentity {
            id: spiffe_id_of(leaf).ok()?,
            cert_hash: sha256_hex(leaf),
        })
    }
}

fn sha256_hex(cert: &CertificateDer<'_>) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert.as_ref());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// One loaded identity and the configurations built from it.
pub struct Identity {
    pub id: SpiffeId,
    /// Bumped on every reload: client configurations cached by connectors are rebuilt when it
    /// changes.
    pub generation: u64,
    workload: WorkloadIdentity,
    /// Requires a client certificate from the trust bundle; ALPN `h2` and `http/1.1`.
    pub server: Arc<ServerConfig>,
    /// The PEM text it was loaded from (to notice changes).
    fingerprint: Vec<u8>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("id", &self.id.to_string())
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// A client configuration presenting this identity and accepting servers `expected`
    /// vouches for, offering `alpn`.
    pub fn client_config(
        &self,
        expected: ExpectedIdentity,
        alpn: &[u8],
    ) -> Result<Arc<ClientConfig>, weft_identity::TlsError> {
        let mut config = weft_identity::client_config(&self.workload, expected)?;
        config.alpn_protocols = vec![alpn.to_vec()];
        Ok(Arc::new(config))
    }

    /// The certificate's expiry, seconds since the epoch (for `/config_dump`).
    pub fn trust_domain(&self) -> &str {
        self.id.trust_domain()
    }
}

/// The current identity, reloaded from its directory.
pub struct IdentityStore {
    dir: PathBuf,
    current: ArcSwap<Identity>,
}

impl std::fmt::Debug for IdentityStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityStore")
            .field("dir", &self.dir)
            .field("current", &self.current.load())
            .finish()
    }
}

fn read_fingerprint(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for name in [
        weft_identity::ca::CERT_CHAIN_FILE,
        weft_identity::ca::KEY_FILE,
        weft_identity::ca::TRUST_BUNDLE_FILE,
    ] {
        out.extend(std::fs::read(dir.join(name)).unwrap_or_default());
        out.push(0);
    }
    out
}

fn load(dir: &Path, generation: u64) -> Result<Identity, IdentityError> {
    let fingerprint = read_fingerprint(dir);
    let err = |source| IdentityError::Load {
        dir: dir.to_path_buf(),
        source,
    };
    let workload = WorkloadIdentity::load(dir).map_err(err)?;
    let leaf = workload
        .cert_chain
        .first()
        .ok_or(weft_identity::TlsError::NoCertificate)
        .map_err(err)?;
    let id = spiffe_id_of(leaf).map_err(|source| IdentityError::NoSpiffeId {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut server = weft_identity::server_config(&workload, ExpectedIdentity::Any).map_err(err)?;
    server.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec(), ALPN_TCP.to_vec()];
    Ok(Identity {
        id,
        generation,
        workload,
        server: Arc::new(server),
        fingerprint,
    })
}

impl IdentityStore {
    /// Loads the identity in `dir` (an error when the files are missing or invalid).
    pub fn load(dir: &Path) -> Result<Arc<IdentityStore>, IdentityError> {
        let identity = load(dir, 1)?;
        Ok(Arc::new(IdentityStore {
            dir: dir.to_path_buf(),
            current: ArcSwap::from_pointee(identity),
        }))
    }

    /// The identity to use for the next handshake.
    pub fn current(&self) -> Arc<Identity> {
        self.current.load_full()
    }

    /// Re-reads the files; swaps in the new identity when they changed and parse. Returns
    /// whether the identity changed.
    pub fn reload(&self) -> Result<bool, IdentityError> {
        let current = self.current.load();
        if read_fingerprint(&self.dir) == current.fingerprint {
            return Ok(false);
        }
        let next = load(&self.dir, current.generation + 1)?;
        tracing::info!(id = %next.id, generation = next.generation, "workload identity reloaded");
        self.current.store(Arc::new(next));
        Ok(true)
    }

    /// Reloads every [`RELOAD_INTERVAL`] forever.
    pub async fn watch(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(RELOAD_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            ticker.tick().await;
            let store = self.clone();
            match tokio::task::spawn_blocking(move || store.reload()).await {
                Ok(Ok(_)) => failing = false,
                Ok(Err(err)) => {
                    // Files are often replaced one by one: say it once, keep trying.
                    if !failing {
                        tracing::warn!(%err, "identity files changed but do not load; keeping the current identity");
                    }
                    failing = true;
                }
                Err(join) => tracing::error!(%join, "identity reload task failed"),
            }
        }
    }
}
