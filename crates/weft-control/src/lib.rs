//! weft's control plane: config from a watched directory and the apply API, a registry of the
//! connected proxies (with active health checks), per-proxy snapshots scoped by Sidecar with
//! versions and ACK/NACK tracking, the CA's signing service and the admin API.
//!
//! The core ([`config`], [`registry`], [`snapshot`], [`describe`]) is synchronous and pure;
//! [`grpc`], [`admin`] and the directory watcher are adapters around the shared [`state`].
//!
//! Data directory layout: `ca/` (the CA, kept across restarts), `root-cert.pem` (the mesh
//! root, for proxies to trust), `admin.token` (0600), `tokens.json` (bootstrap token digests,
//! 0600) and `applied/` (resources applied through the API).

pub mod admin;
pub mod config;
pub mod describe;
pub mod grpc;
pub mod registry;
pub mod snapshot;
pub mod state;
pub mod tokens;
pub mod yaml;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use weft_identity::{CaError, CertificateAuthority, SpiffeId, TlsError, WorkloadIdentity};

use config::ConfigStore;
use config::persist::{AppliedDir, PersistError};
use config::watch::{DirError, Fingerprint, fingerprint, load_dir, watch_dir};
use state::{ControlState, Settings};
use tokens::{TokenError, TokenStore};

/// File names in the data directory.
pub const CA_DIR: &str = "ca";
pub const ROOT_CERT_FILE: &str = "root-cert.pem";
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
pub const TOKENS_FILE: &str = "tokens.json";
pub const APPLIED_DIR: &str = "applied";

/// How long the control plane's own serving certificate is valid (re-issued at each start).
const SERVER_CERT_TTL: Duration = Duration::from_secs(90 * 24 * 3600);

/// How to run the control plane.
#[derive(Debug, Clone)]
pub struct ControlOptions {
    pub config_dir: PathBuf,
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    pub data_dir: PathBuf,
    /// `None`: the existing CA's, or `cluster.local` for a new one.
    pub trust_domain: Option<String>,
    pub cert_ttl: Duration,
}

/// Why the control plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("config directory {}: {source}", dir.display())]
    Config { dir: PathBuf, source: DirError },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate authority: {0}")]
    Ca(#[from] CaError),
    #[error(
        "the CA in {} is for trust domain {existing:?}, not {wanted:?}",
        dir.display()
    )]
    TrustDomain {
        dir: PathBuf,
        existing: String,
        wanted: String,
    },
    #[error("server identity: {0}")]
    Identity(#[from] TlsError),
    #[error("tokens: {0}")]
    Tokens(#[from] TokenError),
    #[error("applied resources: {0}")]
    Applied(#[from] PersistError),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A control plane whose listeners are bound and whose state is loaded.
pub struct ControlPlane {
    pub grpc_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    grpc: TcpListener,
    admin: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<ControlState>,
    config_dir: PathBuf,
    loaded: Fingerprint,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("grpc_addr", &self.grpc_addr)
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// Prepares the data directory, loads the config (an invalid config directory is an
    /// error: nothing starts) and binds both listeners.
    pub async fn bind(opts: ControlOptions) -> Result<ControlPlane, StartError> {
        let prepared = {
            let opts = opts.clone();
            tokio::task::spawn_blocking(move || prepare(&opts))
                .await
                .map_err(|e| StartError::Io {
                    path: PathBuf::from("."),
                    source: std::io::Error::other(e),
                })??
        };
        let grpc = bind(opts.listen).await?;
        let admin = bind(opts.admin).await?;
        let local = |l: &TcpListener, addr| {
            l.local_addr()
                .map_err(|source| StartError::Bind { addr, source })
        };
        Ok(ControlPlane {
            grpc_addr: local(&grpc, opts.listen)?,
            admin_addr: local(&admin, opts.admin)?,
            grpc,
            admin,
            tls: prepared.tls,
            state: prepared.state,
            config_dir: opts.config_dir,
            loaded: prepared.loaded,
        })
    }

    /// The shared state (tests and embedding).
    pub fn state(&self) -> &Arc<ControlState> {
        &self.state
    }

    /// Serves until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let state = self.state.clone();
        let watcher = tokio::spawn(watch_dir(self.config_dir, self.loaded, move |resources| {
            state.replace_watched(resources);
        }));
        let grpc = tokio::spawn(grpc::serve_grpc(
            self.grpc,
            self.tls,
            self.state.clone(),
            stopped(stop_rx.clone()),
        ));
        let admin = tokio::spawn(admin::serve_admin(
            self.admin,
            self.state.clone(),
            stopped(stop_rx),
        ));
        shutdown.await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
        watcher.abort();
        let _ = grpc.await;
        let _ = admin.await;
    }
}

struct Prepared {
    tls: Arc<rustls::ServerConfig>,
    state: Arc<ControlState>,
    loaded: Fingerprint,
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StartError + '_ {
    move |source| StartError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Everything that touches the disk at start: config, CA, root, tokens, applied resources.
fn prepare(opts: &ControlOptions) -> Result<Prepared, StartError> {
    let loaded = fingerprint(&opts.config_dir);
    if !opts.config_dir.is_dir() {
        return Err(StartError::Io {
            path: opts.config_dir.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
        });
    }
    let watched = load_dir(&opts.config_dir).map_err(|source| StartError::Config {
        dir: opts.config_dir.clone(),
        source,
    })?;
    let data = &opts.data_dir;
    std::fs::create_dir_all(data).map_err(io_err(data))?;
    let ca = load_or_init_ca(&data.join(CA_DIR), opts.trust_domain.as_deref())?;
    let root_path = data.join(ROOT_CERT_FILE);
    std::fs::write(&root_path, ca.cert_pem()).map_err(io_err(&root_path))?;
    let control_id = SpiffeId::new(
        ca.trust_domain(),
        weft_proto::CONTROL_PLANE_NAMESPACE,
        weft_proto::CONTROL_PLANE_SERVICE_ACCOUNT,
    )
    .map_err(CaError::from)?;
    let issued = ca.issue(&control_id, SERVER_CERT_TTL)?;
    let identity = WorkloadIdentity::try_from(&issued)?;
    let tls = Arc::new(weft_identity::control_server_config(&identity)?);
    let admin_token = tokens::admin_token(&data.join(ADMIN_TOKEN_FILE))?;
    let token_store = TokenStore::load(data.join(TOKENS_FILE))?;
    let applied_dir = AppliedDir::new(data.join(APPLIED_DIR));
    let mut store = ConfigStore::default();
    store.restore_applied(applied_dir.load()?);
    store.replace_watched(watched);
    let settings = Settings {
        trust_domain: ca.trust_domain().to_string(),
        cert_ttl: opts.cert_ttl,
        root_namespace: snapshot::ROOT_NAMESPACE.to_string(),
        started: std::time::Instant::now(),
        resume_grace: state::RESUME_GRACE,
    };
    tracing::info!(
        config_dir = %opts.config_dir.display(),
        data_dir = %data.display(),
        trust_domain = %settings.trust_domain,
        cert_ttl_s = settings.cert_ttl.as_secs(),
        resources = store.effective().len(),
        "control plane config"
    );
    let state = ControlState::new(store, applied_dir, token_store, ca, admin_token, settings);
    Ok(Prepared { tls, state, loaded })
}

fn load_or_init_ca(
    dir: &Path,
    trust_domain: Option<&str>,
) -> Result<CertificateAuthority, StartError> {
    if dir.join(weft_identity::ca::CA_META_FILE).exists() {
        let ca = CertificateAuthority::load(dir)?;
        if let Some(wanted) = trust_domain
            && wanted != ca.trust_domain()
        {
            return Err(StartError::TrustDomain {
                dir: dir.to_path_buf(),
                existing: ca.trust_domain().to_string(),
                wanted: wanted.to_string(),
            });
        }
        tracing::info!(dir = %dir.display(), "using the existing CA");
        return Ok(ca);
    }
    let ca = CertificateAuthority::init(dir, trust_domain.unwrap_or("cluster.local"))?;
    tracing::info!(dir = %dir.display(), "created a new CA");
    Ok(ca)
}
