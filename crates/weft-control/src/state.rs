//! The control plane's shared state: the config store, the registry, the global version and
//! the view every snapshot is cut from, tokens and certificate expiries. One `std` mutex guards
//! the mutable part and is never held across an await; every change that can alter a snapshot
//! bumps the version and wakes the proxies' streams through a watch channel.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::watch;
use weft_identity::{CertificateAuthority, SpiffeId};

use crate::config::persist::{AppliedDir, PersistError};
use crate::config::{
    ApplyError, ApplyFile, ApplyPlan, ConfigStore, DeleteError, ResourceKey, StoredResource,
};
use crate::registry::{ProxyId, Registry, SyncStatus, WorkloadInfo, synthesize};
use crate::tokens::{TokenError, TokenGrant, TokenStore};

/// Everything a snapshot is cut from, at one version.
#[derive(Debug, Clone)]
pub struct View {
    pub version: u64,
    /// The effective config, then the registry's resources.
    pub resources: Arc<Vec<Arc<StoredResource>>>,
}

/// Why an apply failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyFailure {
    #[error(transparent)]
    Rejected(#[from] ApplyError),
    #[error("storing the applied resources failed: {0}")]
    Persist(#[from] PersistError),
}

/// Why a delete failed.
#[derive(Debug, thiserror::Error)]
pub enum DeleteFailure {
    #[error(transparent)]
    Rejected(#[from] DeleteError),
    #[error("removing the stored resource failed: {0}")]
    Persist(#[from] PersistError),
}

struct Inner {
    store: ConfigStore,
    registry: Registry,
    view: View,
    /// Latest certificate expiry per SPIFFE ID.
    cert_expiry: BTreeMap<String, SystemTime>,
}

/// Settings fixed at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub trust_domain: String,
    pub cert_ttl: Duration,
    pub root_namespace: String,
    /// When this control plane started.
    pub started: std::time::Instant,
    /// How long after start a resuming proxy's first snapshot is held back (registrations are
    /// not persisted: proxies that were connected before a restart need this long to return).
    pub resume_grace: Duration,
}

/// The default [`Settings::resume_grace`]: proxies retry at most every 5 s plus 20% jitter.
pub const RESUME_GRACE: Duration = Duration::from_secs(6);

/// The state shared by the gRPC services, the admin API and the watchers.
pub struct ControlState {
    inner: Mutex<Inner>,
    versions: watch::Sender<u64>,
    tokens: Mutex<TokenStore>,
    applied_dir: AppliedDir,
    next_id: AtomicU64,
    pub ca: CertificateAuthority,
    pub admin_token: String,
    pub settings: Settings,
}

impl std::fmt::Debug for ControlState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlState")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// One row of `GET /api/proxies`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyRow {
    pub name: String,
    pub namespace: String,
    pub service: String,
    pub version: String,
    pub status: String,
    pub config_version: Option<u64>,
    pub acked_version: Option<u64>,
    pub healthy: bool,
    pub address: String,
    pub cert_expiry: Option<String>,
}

impl ControlState {
    pub fn new(
        store: ConfigStore,
        applied_dir: AppliedDir,
        tokens: TokenStore,
        ca: CertificateAuthority,
        admin_token: String,
        settings: Settings,
    ) -> Arc<ControlState> {
        let registry = Registry::default();
        let view = build_view(1, &store, &registry);
        let (versions, _) = watch::channel(1);
        Arc::new(ControlState {
            inner: Mutex::new(Inner {
                store,
                registry,
                view,
                cert_expiry: BTreeMap::new(),
            }),
            versions,
            tokens: Mutex::new(tokens),
            applied_dir,
            next_id: AtomicU64::new(1),
            ca,
            admin_token,
            settings,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Rebuilds the view at a new version and wakes every stream.
    fn bump(&self, inner: &mut Inner) {
        let version = inner.view.version + 1;
        inner.view = build_view(version, &inner.store, &inner.registry);
        self.versions.send_replace(version);
    }

    /// The current view.
    pub fn view(&self) -> View {
        self.lock().view.clone()
    }

    /// Notified with the new version after every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.versions.subscribe()
    }

    /// Replaces the watched directory's resources.
    pub fn replace_watched(&self, resources: Vec<weft_api::Resource>) {
        let mut inner = self.lock();
        if inner.store.replace_watched(resources) {
            self.bump(&mut inner);
        }
    }

    /// The effective config (watched and applied), without registry resources.
    pub fn config(&self) -> Vec<Arc<StoredResource>> {
        self.lock().store.effective()
    }

    /// Validates, persists and commits a batch, all or nothing.
    pub fn apply(&self, files: &[ApplyFile], namespace: &str) -> Result<ApplyPlan, ApplyFailure> {
        let mut inner = self.lock();
        let plan = inner.store.plan_apply(files, namespace)?;
        let changed: Vec<&crate::config::Applied> = plan
            .items
            .iter()
            .filter(|i| i.action != crate::config::Action::Unchanged)
            .collect();
        let mut written: Vec<(&ResourceKey, Option<String>)> = Vec::new();
        for item in &changed {
            let key = &item.resource.key;
            let previous = self.applied_dir.read(key);
            if let Err(err) = self.applied_dir.write(key, &item.resource.json) {
                for (key, previous) in written.iter().rev() {
                    self.applied_dir.restore(key, previous.as_deref());
                }
                return Err(err.into());
            }
            written.push((key, previous));
        }
        if !changed.is_empty() {
            inner
                .store
                .insert_applied(changed.iter().map(|i| i.resource.clone()).collect());
            self.bump(&mut inner);
        }
        Ok(plan)
    }

    /// Deletes an applied resource.
    pub fn delete(&self, key: &ResourceKey) -> Result<(), DeleteFailure> {
        let mut inner = self.lock();
        inner.store.check_delete(key)?;
        self.applied_dir.remove(key)?;
        inner.store.delete(key)?;
        self.bump(&mut inner);
        Ok(())
    }

    /// Registers a connected proxy and returns its id.
    pub fn register(&self, workload: WorkloadInfo) -> ProxyId {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut inner = self.lock();
        inner.registry.register(id, workload);
        self.bump(&mut inner);
        id
    }

    /// Removes a proxy whose stream ended.
    pub fn deregister(&self, id: ProxyId) {
        let mut inner = self.lock();
        if inner.registry.deregister(id).is_some() {
            self.bump(&mut inner);
        }
    }

    /// Records a health verdict for a registered proxy's workload.
    pub fn set_health(&self, id: ProxyId, healthy: bool) {
        let mut inner = self.lock();
        if inner.registry.set_health(id, healthy) {
            tracing::info!(id, healthy, "workload health changed");
            self.bump(&mut inner);
        }
    }

    /// Updates a proxy's sync status.
    pub fn update_status(&self, id: ProxyId, update: impl FnOnce(&mut SyncStatus)) {
        if let Some(status) = self.lock().registry.status_mut(id) {
            update(status);
        }
    }

    /// Records a signed certificate's expiry.
    pub fn record_certificate(&self, id: &SpiffeId, not_after: SystemTime) {
        self.lock().cert_expiry.insert(id.to_string(), not_after);
    }

    /// The registry (for describe).
    pub fn registry(&self) -> Registry {
        self.lock().registry.clone()
    }

    /// Every connected proxy.
    pub fn proxies(&self) -> Vec<ProxyRow> {
        let inner = self.lock();
        inner
            .registry
            .iter()
            .map(|r| {
                let w = &r.workload;
                let expiry = SpiffeId::new(
                    &self.settings.trust_domain,
                    &w.namespace,
                    &w.service_account,
                )
                .ok()
                .and_then(|id| inner.cert_expiry.get(&id.to_string()).copied())
                .and_then(rfc3339);
                ProxyRow {
                    name: w.name.clone(),
                    namespace: w.namespace.clone(),
                    service: w.service.clone(),
                    version: w.version.clone(),
                    status: r.status.label(),
                    config_version: r.status.sent,
                    acked_version: r.status.acked,
                    healthy: r.healthy,
                    address: w.address.clone(),
                    cert_expiry: expiry,
                }
            })
            .collect()
    }

    /// Creates a bootstrap token.
    pub fn create_token(&self, grant: TokenGrant) -> Result<String, TokenError> {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .create(grant)
    }

    /// Who a bootstrap token speaks for.
    pub fn check_token(&self, token: &str) -> Option<TokenGrant> {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .check(token)
            .cloned()
    }
}

fn build_view(version: u64, store: &ConfigStore, registry: &Registry) -> View {
    let mut resources = store.effective();
    let config_keys: std::collections::BTreeSet<ResourceKey> =
        resources.iter().map(|r| r.key.clone()).collect();
    for synthesized in synthesize(registry) {
        if config_keys.contains(&synthesized.key) {
            tracing::debug!(key = %synthesized.key, "config defines this registry resource; keeping the config's");
            continue;
        }
        resources.push(Arc::new(synthesized));
    }
    View {
        version,
        resources: Arc::new(resources),
    }
}

/// `2025-01-31T12:00:00Z`.
pub fn rfc3339(t: SystemTime) -> Option<String> {
    time::OffsetDateTime::from(t)
        .replace_nanosecond(0)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}
