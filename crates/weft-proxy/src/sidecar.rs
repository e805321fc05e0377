//! A running proxy: its config and identity from one of two sources, the outbound, inbound
//! and admin listeners bound, and everything stopped together on shutdown.
//!
//! - Files: the config is loaded (an invalid one stops the start) and watched, and the
//!   identity, if any, is read from its directory and watched. Serves at once.
//! - Control plane: the config starts empty and the identity is absent until the control plane
//!   provides them. The listeners are bound (and announced) at once, but connections wait in
//!   the accept queue until a certificate is installed and the first snapshot applied, so no
//!   request meets an empty config and no TLS handshake happens without an identity; `/ready`
//!   answers 503 until then. The admin server answers from the start.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use weft_api::mesh::{MeshConfig, compile};

use crate::admin::{AdminState, serve_admin};
use crate::control::plane::{
    ControlPlane, ControlPlaneOptions, PlaneError, PlaneMetrics, PlaneStatus,
};
use crate::control::{
    ActiveConfig, ConfigError, ConfigSource, Fingerprint, fingerprint, watch_files,
};
use crate::listener::http::Workload;
use crate::listener::inbound::{InboundPolicies, InboundTarget};
use crate::listener::{ProxyState, serve_inbound, serve_outbound};
use crate::policy::jwt::JwksCache;
use crate::policy::normalize::PathNormalization;
use crate::telemetry::access_log::AccessLog;
use crate::telemetry::metrics::ProxyMetrics;
use crate::telemetry::{Telemetry, format_rfc3339_millis};
use crate::tls::{IdentityError, IdentityStore};
use crate::upstream::Upstreams;

/// How to run a standalone proxy.
pub struct SidecarOptions {
    /// The config files, and how config is compiled (also for control-plane snapshots).
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
    /// Get config and identity from the control plane instead of `source.paths` and
    /// `identity` (which are then ignored). Requires `inbound`.
    pub control_plane: Option<ControlPlaneOptions>,
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
    #[error(
        "a proxy using a control plane needs an inbound listener (--inbound and --app): it registers there"
    )]
    InboundRequired,
    #[error(transparent)]
    ControlPlane(#[from] PlaneError),
}

/// A proxy whose listeners are bound, ready to serve.
pub struct Sidecar {
    pub outbound_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub inbound_addr: Option<SocketAddr>,
    outbound: TcpListener,
    inbound: Option<TcpListener>,
    admin: TcpListener,
    config: Arc<ActiveConfig>,
    parts: StateParts,
    mode: Mode,
    registry: Arc<Registry>,
}

/// Where config and identity come from.
enum Mode {
    Files {
        source: ConfigSource,
        /// The config files' state when the initial config was read.
        loaded: Fingerprint,
        identity: Option<Arc<IdentityStore>>,
    },
    ControlPlane(ControlPlane),
}

impl Mode {
    /// Starts the config and identity sources (in `background`); resolves when the proxy can
    /// serve, with the identity to serve with.
    async fn start(
        self,
        config: &Arc<ActiveConfig>,
        background: &mut Vec<JoinHandle<()>>,
    ) -> Option<Arc<IdentityStore>> {
        match self {
            Mode::Files {
                source,
                loaded,
                identity,
            } => {
                background.push(tokio::spawn(watch_files(source, config.clone(), loaded)));
                if let Some(identity) = &identity {
                    background.push(tokio::spawn(identity.clone().watch()));
                }
                identity
            }
            Mode::ControlPlane(plane) => {
                background.push(tokio::spawn(plane.clone().run()));
                tracing::info!("waiting for a certificate and config from the control plane");
                Some(plane.serving().await)
            }
        }
    }
}

/// What request handling shares, apart from config and identity.
struct StateParts {
    telemetry: Telemetry,
    workload: Workload,
    normalization: PathNormalization,
    /// The application inbound requests go to.
    app: Option<SocketAddr>,
}

impl StateParts {
    fn into_state(
        self,
        config: Arc<ActiveConfig>,
        identity: Option<Arc<IdentityStore>>,
    ) -> Arc<ProxyState> {
        Arc::new(ProxyState {
            config,
            upstreams: Arc::new(Upstreams::with_identity(identity.clone())),
            telemetry: self.telemetry,
            workload: self.workload,
            identity,
            normalization: self.normalization,
            inbound: self.app.map(InboundTarget::new),
            inbound_policies: InboundPolicies::default(),
            jwks: Arc::new(JwksCache::new()),
        })
    }
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    Ok((listener, bound))
}

/// The files' config (an invalid one is an error) and identity.
async fn load_files(
    source: &ConfigSource,
    identity: Option<&PathBuf>,
) -> Result<(MeshConfig, Fingerprint, Option<Arc<IdentityStore>>), StartError> {
    let source = source.clone();
    let (loaded, initial) =
        tokio::task::spawn_blocking(move || (fingerprint(&source), source.load(1)))
            .await
            .map_err(|e| ConfigError {
                message: e.to_string(),
                file: None,
                line: None,
            })?;
    let initial = initial?;
    let identity = match identity {
        Some(dir) => Some(IdentityStore::load(dir)?),
        None => None,
    };
    Ok((initial, loaded, identity))
}

impl Sidecar {
    /// Loads the config (files mode: an invalid one is an error, nothing starts) and binds the
    /// listeners. Nothing is served until [`run`](Self::run).
    pub async fn bind(opts: SidecarOptions) -> Result<Sidecar, StartError> {
        let files = match &opts.control_plane {
            None => Some(load_files(&opts.source, opts.identity.as_ref()).await?),
            Some(_) if opts.inbound.is_none() => return Err(StartError::InboundRequired),
            Some(_) => None,
        };
        let (outbound, outbound_addr) = bind(opts.outbound).await?;
        let (inbound, inbound_addr) = match opts.inbound {
            Some((addr, _)) => {
                let (listener, bound) = bind(addr).await?;
                (Some(listener), Some(bound))
            }
            None => (None, None),
        };
        let (admin, admin_addr) = bind(opts.admin).await?;
        let mut registry = Registry::default();
        let metrics = ProxyMetrics::register(&mut registry);
        let (config, mode) = match (files, opts.control_plane, inbound_addr) {
            (Some((initial, loaded, identity)), _, _) => (
                ActiveConfig::new(initial),
                Mode::Files {
                    source: opts.source,
                    loaded,
                    identity,
                },
            ),
            (None, Some(plane), Some(inbound)) => {
                let options = &opts.source.options;
                let config = ActiveConfig::new(compile(&[], 0, options));
                let plane = ControlPlane::new(
                    &plane,
                    &opts.workload,
                    inbound,
                    options.clone(),
                    config.clone(),
                    PlaneMetrics::register(&mut registry),
                )?;
                (config, Mode::ControlPlane(plane))
            }
            (None, _, _) => return Err(StartError::InboundRequired),
        };
        Ok(Sidecar {
            outbound_addr,
            admin_addr,
            inbound_addr,
            outbound,
            inbound,
            admin,
            config,
            parts: StateParts {
                telemetry: Telemetry {
                    access_log: opts.access_log,
                    metrics,
                },
                workload: opts.workload,
                normalization: opts.normalization,
                app: opts.inbound.map(|(_, app)| app),
            },
            mode,
            registry: Arc::new(registry),
        })
    }

    /// Serves until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let serving: Arc<OnceLock<Arc<ProxyState>>> = Arc::default();
        let plane_status = match &self.mode {
            Mode::ControlPlane(plane) => Some(plane.status()),
            Mode::Files { .. } => None,
        };
        let admin_state = AdminState::new(self.registry.clone(), {
            let (config, serving) = (self.config.clone(), serving.clone());
            move || config_dump(&config, serving.get(), plane_status.as_deref())
        });
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let admin = tokio::spawn(serve_admin(
            self.admin,
            admin_state.clone(),
            stopped(stop_rx.clone()),
        ));
        let mut shutdown: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(shutdown);
        let mut background: Vec<JoinHandle<()>> = Vec::new();
        let identity = tokio::select! {
            () = &mut shutdown => None,
            identity = self.mode.start(&self.config, &mut background) => Some(identity),
        };
        let mut listeners = Vec::new();
        if let Some(identity) = identity {
            let state = self.parts.into_state(self.config.clone(), identity);
            let _ = serving.set(state.clone());
            if let Some(listener) = self.inbound {
                listeners.push(tokio::spawn(serve_inbound(
                    listener,
                    state.clone(),
                    stopped(stop_rx.clone()),
                )));
            }
            listeners.push(tokio::spawn(serve_outbound(
                self.outbound,
                state,
                stopped(stop_rx),
            )));
            admin_state.set_ready(true);
            tracing::info!(version = self.config.load().version, "serving");
            shutdown.await;
        }
        admin_state.set_ready(false);
        let _ = stop_tx.send(true);
        for task in background {
            task.abort();
        }
        for listener in listeners {
            let _ = listener.await;
        }
        let _ = admin.await;
    }
}

/// `/config_dump`: the active config, plus who this proxy is (its SPIFFE ID, certificate
/// generation and expiry) and, with an inbound listener, the policies that apply to it; in
/// control-plane mode, the state of the control-plane connection.
fn config_dump(
    config: &ActiveConfig,
    state: Option<&Arc<ProxyState>>,
    plane: Option<&PlaneStatus>,
) -> serde_json::Value {
    let mut dump = config.dump();
    let identity = state.and_then(|s| s.identity.as_ref()).map(|store| {
        let current = store.current();
        serde_json::json!({
            "spiffe_id": current.id.to_string(),
            "generation": current.generation,
            "expires": format_rfc3339_millis(current.not_after),
        })
    });
    let inbound = state.and_then(|state| {
        let target = state.inbound.as_ref()?;
        let mesh = state.config.load();
        let policy = state.inbound_policies.get(&mesh, &state.workload);
        Some(serde_json::json!({
            "app": target.app.to_string(),
            "port": target.port,
            "peer_authentication": policy.peer.mode(target.port),
            "authorization_policies": policy.authz.policy_ids().collect::<Vec<_>>(),
            "path_normalization": state.normalization.as_str(),
        }))
    });
    if let Some(obj) = dump.as_object_mut() {
        obj.insert("identity".into(), identity.unwrap_or_default());
        obj.insert("inbound".into(), inbound.unwrap_or_default());
        if let Some(plane) = plane {
            obj.insert("control_plane".into(), plane.dump());
        }
    }
    dump
}
