//! A running proxy: the config loaded and watched, the outbound and admin listeners bound, and
//! everything stopped together on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::admin::{AdminState, serve_admin};
use crate::control::{
    ActiveConfig, ConfigError, ConfigSource, Fingerprint, fingerprint, watch_files,
};
use crate::listener::http::Workload;
use crate::listener::inbound::{InboundPolicies, InboundTarget};
use crate::listener::{ProxyState, serve_inbound, serve_outbound};
use crate::policy::jwt::JwksCache;
use crate::policy::normalize::PathNormalization;
use crate::telemetry::Telemetry;
use crate::telemetry::access_log::AccessLog;
use crate::telemetry::metrics::ProxyMetrics;
use crate::tls::{IdentityError, IdentityStore};
use crate::upstream::Upstreams;

/// How to run a standalone proxy.
pub struct SidecarOptions {
    pub source: ConfigSource,
    pub outbound: SocketAddr,
    pub admin: SocketAddr,
    pub workload: Workload,
    pub access_log: AccessLog,
    /// The inbound listener's address and the application it forwards to.
    pub inbound: Option<(SocketAddr, SocketAddr)>,
    /// The directory holding `cert-chain.pem`, `key.pem` and `root-cert.pem`.
    pub identity: Option<PathBuf>,
    pub normalization: PathNormalization,
}

/// Why a proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid config:\n{0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A proxy whose listeners are bound, ready to serve.
pub struct Sidecar {
    pub outbound_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub inbound_addr: Option<SocketAddr>,
    outbound: TcpListener,
    inbound: Option<TcpListener>,
    admin: TcpListener,
    state: Arc<ProxyState>,
    source: ConfigSource,
    /// The config files' state when the initial config was read.
    loaded: Fingerprint,
    registry: Arc<Registry>,
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

impl Sidecar {
    /// Loads the config (an invalid one is an error: nothing starts) and binds the listeners.
    pub async fn bind(opts: SidecarOptions) -> Result<Sidecar, StartError> {
        let source = opts.source.clone();
        let (loaded, initial) =
            tokio::task::spawn_blocking(move || (fingerprint(&source), source.load(1)))
                .await
                .map_err(|e| ConfigError {
                    message: e.to_string(),
                    file: None,
                    line: None,
                })?;
        let initial = initial?;
        let identity = match &opts.identity {
            Some(dir) => Some(IdentityStore::load(dir)?),
            None => None,
        };
        let outbound = bind(opts.outbound).await?;
        let (inbound, inbound_addr) = match opts.inbound {
            Some((addr, _)) => {
                let listener = bind(addr).await?;
                let bound = listener
                    .local_addr()
                    .map_err(|source| StartError::Bind { addr, source })?;
                (Some(listener), Some(bound))
            }
            None => (None, None),
        };
        let admin = bind(opts.admin).await?;
        let outbound_addr = outbound.local_addr().map_err(|source| StartError::Bind {
            addr: opts.outbound,
            source,
        })?;
        let admin_addr = admin.local_addr().map_err(|source| StartError::Bind {
            addr: opts.admin,
            source,
        })?;
        let mut registry = Registry::default();
        let metrics = ProxyMetrics::register(&mut registry);
        let state = Arc::new(ProxyState {
            config: ActiveConfig::new(initial),
            upstreams: Arc::new(Upstreams::with_identity(identity.clone())),
            telemetry: Telemetry {
                access_log: opts.access_log,
                metrics,
            },
            workload: opts.workload,
            identity,
            normalization: opts.normalization,
            inbound: opts.inbound.map(|(_, app)| InboundTarget::new(app)),
            inbound_policies: InboundPolicies::default(),
            jwks: Arc::new(JwksCache::new()),
        });
        Ok(Sidecar {
            outbound_addr,
            admin_addr,
            inbound_addr,
            outbound,
            inbound,
            admin,
            state,
            source: opts.source,
            loaded,
            registry: Arc::new(registry),
        })
    }

    /// Serves until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let ready = Arc::new(AtomicBool::new(true));
        let state = self.state.clone();
        let admin_state = AdminState {
            ready,
            config_dump: Arc::new(move || config_dump(&state)),
            registry: self.registry.clone(),
        };
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let admin = tokio::spawn(serve_admin(
            self.admin,
            admin_state,
            stopped(stop_rx.clone()),
        ));
        let watcher = tokio::spawn(watch_files(
            self.source.clone(),
            self.state.config.clone(),
            self.loaded,
        ));
        let identity_watcher = self
            .state
            .identity
            .clone()
            .map(|identity| tokio::spawn(identity.watch()));
        let inbound = self.inbound.map(|listener| {
            tokio::spawn(serve_inbound(
                listener,
                self.state.clone(),
                stopped(stop_rx.clone()),
            ))
        });
        let outbound = tokio::spawn(serve_outbound(
            self.outbound,
            self.state.clone(),
            stopped(stop_rx),
        ));
        shutdown.await;
        let _ = stop_tx.send(true);
        watcher.abort();
        if let Some(w) = identity_watcher {
            w.abort();
        }
        let _ = outbound.await;
        if let Some(inbound) = inbound {
            let _ = inbound.await;
        }
        let _ = admin.await;
    }
}

/// `/config_dump`: the active config, plus who this proxy is (its SPIFFE ID and certificate
/// generation) and, with an inbound listener, the policies that apply to it.
fn config_dump(state: &ProxyState) -> serde_json::Value {
    let mut dump = state.config.dump();
    let identity = state.identity.as_ref().map(|store| {
        let current = store.current();
        serde_json::json!({
            "spiffe_id": current.id.to_string(),
            "generation": current.generation,
        })
    });
    let inbound = state.inbound.as_ref().map(|target| {
        let mesh = state.config.load();
        let policy = state.inbound_policies.get(&mesh, &state.workload);
        serde_json::json!({
            "app": target.app.to_string(),
            "port": target.port,
            "peer_authentication": policy.peer.mode(target.port),
            "authorization_policies": policy.authz.policy_ids().collect::<Vec<_>>(),
            "path_normalization": state.normalization.as_str(),
        })
    });
    if let Some(obj) = dump.as_object_mut() {
        obj.insert("identity".into(), identity.unwrap_or_default());
        obj.insert("inbound".into(), inbound.unwrap_or_default());
    }
    dump
}
