//! The workload identity of a proxy: its certificate chain, key and trust bundle, swapped
//! atomically when they change. Two sources: the `--identity` directory (`cert-chain.pem`,
//! `key.pem`, `root-cert.pem`, checked every second; files caught half-written fail to parse and
//! are retried on the next tick while the previous identity keeps serving), or PEM text held in
//! memory and replaced by the control-plane client when it rotates the certificate.
//! Connections keep the identity they were set up with; new handshakes use the new one, so a
//! rotation drops nothing.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::CertificateDer;
use weft_identity::verify::{ExpectedIdentity, spiffe_id_of};
use weft_identity::{SpiffeId, WorkloadIdentity};

use super::{ALPN_H2, ALPN_HTTP11, ALPN_TCP};

/// How often the identity files are checked for changes.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// Where an identity comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    /// A directory of `cert-chain.pem`, `key.pem` and `root-cert.pem`, re-read when it changes.
    Dir(PathBuf),
    /// PEM text in memory, replaced with [`IdentityStore::replace_pem`].
    Memory,
}

impl fmt::Display for IdentitySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentitySource::Dir(dir) => write!(f, "{}", dir.display()),
            IdentitySource::Memory => f.write_str("(in memory)"),
        }
    }
}

/// Why an identity could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("identity {origin}: {source}")]
    Load {
        origin: IdentitySource,
        #[source]
        source: weft_identity::TlsError,
    },
    #[error("identity {origin}: the certificate has no SPIFFE ID: {source}")]
    NoSpiffeId {
        origin: IdentitySource,
        #[source]
        source: weft_identity::verify::VerifyError,
    },
    #[error("identity {origin}: the certificate's validity cannot be read")]
    Validity { origin: IdentitySource },
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
    /// The leaf certificate's validity.
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    workload: WorkloadIdentity,
    /// Requires a client certificate from the trust bundle; ALPN `h2` and `http/1.1`.
    pub server: Arc<ServerConfig>,
    /// The files' bytes it was loaded from (to notice changes); empty in memory.
    fingerprint: Vec<u8>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("id", &self.id.to_string())
            .field("generation", &self.generation)
            .field("not_after", &self.not_after)
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

    pub fn trust_domain(&self) -> &str {
        self.id.trust_domain()
    }

    /// The certificate chain, key and trust bundle (to build other TLS configurations, e.g.
    /// the control-plane client's).
    pub fn workload(&self) -> &WorkloadIdentity {
        &self.workload
    }

    /// Whether the certificate has expired at `now`.
    pub fn expired_at(&self, now: SystemTime) -> bool {
        now >= self.not_after
    }
}

/// The current identity, from its directory or from memory.
pub struct IdentityStore {
    source: IdentitySource,
    current: ArcSwap<Identity>,
    /// Serializes replacements (reads never wait for it).
    writer: Mutex<()>,
}

impl fmt::Debug for IdentityStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityStore")
            .field("source", &self.source)
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

/// The validity window of a DER certificate.
pub fn validity(cert: &CertificateDer<'_>) -> Option<(SystemTime, SystemTime)> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let at = |seconds: i64| {
        let seconds = u64::try_from(seconds).ok()?;
        UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
    };
    let validity = parsed.validity();
    Some((
        at(validity.not_before.timestamp())?,
        at(validity.not_after.timestamp())?,
    ))
}

/// Builds an identity from parsed PEM: its SPIFFE ID, validity and server configuration.
fn build(
    workload: WorkloadIdentity,
    source: &IdentitySource,
    generation: u64,
    fingerprint: Vec<u8>,
) -> Result<Identity, IdentityError> {
    let load_err = |err| IdentityError::Load {
        origin: source.clone(),
        source: err,
    };
    let leaf = workload
        .cert_chain
        .first()
        .ok_or(weft_identity::TlsError::NoCertificate)
        .map_err(load_err)?;
    let id = spiffe_id_of(leaf).map_err(|err| IdentityError::NoSpiffeId {
        origin: source.clone(),
        source: err,
    })?;
    let (not_before, not_after) = validity(leaf).ok_or_else(|| IdentityError::Validity {
        origin: source.clone(),
    })?;
    let mut server =
        weft_identity::server_config(&workload, ExpectedIdentity::Any).map_err(load_err)?;
    server.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec(), ALPN_TCP.to_vec()];
    Ok(Identity {
        id,
        generation,
        not_before,
        not_after,
        workload,
        server: Arc::new(server),
        fingerprint,
    })
}

fn load_dir(dir: &Path, generation: u64) -> Result<Identity, IdentityError> {
    let source = IdentitySource::Dir(dir.to_path_buf());
    let fingerprint = read_fingerprint(dir);
    let workload = WorkloadIdentity::load(dir).map_err(|err| IdentityError::Load {
        origin: source.clone(),
        source: err,
    })?;
    build(workload, &source, generation, fingerprint)
}

fn load_pem(
    chain: &str,
    key: &str,
    bundle: &str,
    generation: u64,
) -> Result<Identity, IdentityError> {
    let source = IdentitySource::Memory;
    let workload =
        WorkloadIdentity::from_pem(chain, key, bundle).map_err(|err| IdentityError::Load {
            origin: source.clone(),
            source: err,
        })?;
    // In-memory identities are replaced explicitly, never compared with a fingerprint.
    build(workload, &source, generation, Vec::new())
}

impl IdentityStore {
    /// Loads the identity in `dir` (an error when the files are missing or invalid).
    pub fn load(dir: &Path) -> Result<Arc<IdentityStore>, IdentityError> {
        let identity = load_dir(dir, 1)?;
        Ok(Arc::new(IdentityStore {
            source: IdentitySource::Dir(dir.to_path_buf()),
            current: ArcSwap::from_pointee(identity),
            writer: Mutex::new(()),
        }))
    }

    /// An identity held in memory: a PEM certificate chain (leaf first), its private key and
    /// the trust bundle. Replace it with [`replace_pem`](Self::replace_pem).
    pub fn from_pem(
        chain: &str,
        key: &str,
        bundle: &str,
    ) -> Result<Arc<IdentityStore>, IdentityError> {
        let identity = load_pem(chain, key, bundle, 1)?;
        Ok(Arc::new(IdentityStore {
            source: IdentitySource::Memory,
            current: ArcSwap::from_pointee(identity),
            writer: Mutex::new(()),
        }))
    }

    /// Where this identity comes from.
    pub fn source(&self) -> &IdentitySource {
        &self.source
    }

    /// The identity to use for the next handshake.
    pub fn current(&self) -> Arc<Identity> {
        self.current.load_full()
    }

    /// Swaps in a new certificate chain, key and trust bundle (a rotation), bumping the
    /// generation. Invalid PEM leaves the current identity in place. Connections in flight keep
    /// the identity they were set up with. Returns the new generation.
    pub fn replace_pem(&self, chain: &str, key: &str, bundle: &str) -> Result<u64, IdentityError> {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let generation = self.current.load().generation + 1;
        let next = load_pem(chain, key, bundle, generation)?;
        tracing::info!(id = %next.id, generation, "workload identity replaced");
        self.current.store(Arc::new(next));
        Ok(generation)
    }

    /// Re-reads the files of a directory identity; swaps in the new identity when they changed
    /// and parse. Returns whether the identity changed (never, for an in-memory identity).
    pub fn reload(&self) -> Result<bool, IdentityError> {
        let IdentitySource::Dir(dir) = &self.source else {
            return Ok(false);
        };
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.current.load();
        if read_fingerprint(dir) == current.fingerprint {
            return Ok(false);
        }
        let next = load_dir(dir, current.generation + 1)?;
        tracing::info!(id = %next.id, generation = next.generation, "workload identity reloaded");
        self.current.store(Arc::new(next));
        Ok(true)
    }

    /// Reloads a directory identity every [`RELOAD_INTERVAL`] forever; returns at once for an
    /// in-memory identity (its owner replaces it).
    pub async fn watch(self: Arc<Self>) {
        if self.source == IdentitySource::Memory {
            return;
        }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use weft_identity::{CertificateAuthority, IssuedCertificate, SpiffeId};

    use super::*;

    fn ca() -> CertificateAuthority {
        let dir = tempfile::tempdir().unwrap();
        CertificateAuthority::init(&dir.path().join("ca"), "cluster.local").unwrap()
    }

    fn issue(ca: &CertificateAuthority, sa: &str) -> IssuedCertificate {
        let id = SpiffeId::new("cluster.local", "default", sa).unwrap();
        ca.issue(&id, Duration::from_secs(3600)).unwrap()
    }

    fn store_of(issued: &IssuedCertificate) -> Arc<IdentityStore> {
        IdentityStore::from_pem(
            &issued.cert_chain_pem,
            &issued.key_pem,
            &issued.trust_bundle_pem,
        )
        .unwrap()
    }

    #[test]
    fn from_pem_reads_the_id_and_validity() {
        let ca = ca();
        let issued = issue(&ca, "reviews");
        let store = store_of(&issued);
        let current = store.current();
        assert_eq!(
            current.id.to_string(),
            "spiffe://cluster.local/ns/default/sa/reviews"
        );
        assert_eq!(current.generation, 1);
        assert_eq!(store.source(), &IdentitySource::Memory);
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs(current.not_after), secs(issued.not_after));
        assert_eq!(secs(current.not_before), secs(issued.not_before));
        assert!(!current.expired_at(SystemTime::now()));
        assert!(current.expired_at(issued.not_after + Duration::from_secs(1)));
    }

    #[test]
    fn replace_pem_bumps_the_generation_and_keeps_held_identities() {
        let ca = ca();
        let store = store_of(&issue(&ca, "reviews"));
        let held = store.current();
        let next = issue(&ca, "ratings");
        let generation = store
            .replace_pem(&next.cert_chain_pem, &next.key_pem, &next.trust_bundle_pem)
            .unwrap();
        assert_eq!(generation, 2);
        assert_eq!(store.current().generation, 2);
        assert_eq!(store.current().id.service_account(), "ratings");
        // A connection set up before the swap still holds the old identity.
        assert_eq!(held.id.service_account(), "reviews");
        // Memory identities are never reloaded from disk.
        assert!(!store.reload().unwrap());
    }

    #[test]
    fn invalid_replacement_keeps_the_current_identity() {
        let ca = ca();
        let issued = issue(&ca, "reviews");
        let store = store_of(&issued);
        let other = issue(&ca, "ratings");
        // The new certificate with the old key: rustls refuses the mismatch.
        let err = store
            .replace_pem(
                &other.cert_chain_pem,
                &issued.key_pem,
                &other.trust_bundle_pem,
            )
            .unwrap_err();
        assert!(matches!(err, IdentityError::Load { .. }), "{err}");
        assert!(
            err.to_string().starts_with("identity (in memory): "),
            "{err}"
        );
        let err = store.replace_pem("", "", "").unwrap_err();
        assert!(matches!(err, IdentityError::Load { .. }), "{err}");
        assert_eq!(store.current().generation, 1);
        assert_eq!(store.current().id.service_account(), "reviews");
    }

    #[test]
    fn directory_identities_still_load_and_reload() {
        let ca = ca();
        let dir = tempfile::tempdir().unwrap();
        issue(&ca, "reviews").write_to(dir.path()).unwrap();
        let store = IdentityStore::load(dir.path()).unwrap();
        assert_eq!(store.current().id.service_account(), "reviews");
        assert!(!store.reload().unwrap());
        issue(&ca, "ratings").write_to(dir.path()).unwrap();
        assert!(store.reload().unwrap());
        assert_eq!(store.current().generation, 2);
        assert_eq!(store.current().id.service_account(), "ratings");
    }
}
