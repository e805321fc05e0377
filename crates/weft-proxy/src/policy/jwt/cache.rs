//! Fetches and caches the key sets named by `jwksUri`, one entry per URI, shared by the whole
//! proxy.
//!
//! * The first request that needs a URI fetches it; concurrent requests wait for that one
//!   fetch. A fetched set is used for [`DEFAULT_REFRESH_INTERVAL`] (Istio's
//!   `PILOT_JWT_PUB_KEY_REFRESH_INTERVAL`), then refreshed in the background while the old set
//!   keeps serving.
//! * A failed fetch fails closed: with no earlier set, every token of the issuer is rejected
//!   ("Jwks remote fetch is failed"); there are no fallback keys. The next attempt is made by a
//!   request arriving after [`DEFAULT_RETRY_BACKOFF`]. A failed refresh keeps the last good set.
//! * `http://` URIs are fetched with a plaintext HTTP/1 client; `file:///abs/path` and
//!   absolute paths are read from disk. `https://` is not supported yet and counts as a failed
//!   fetch (logged). Documents are limited to [`MAX_JWKS_BYTES`].
//! * Reads are lock-free (`ArcSwap`); only fetches of one URI are serialized.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

use super::JwtError;
use super::jwks::KeySet;

/// How long a fetched key set is used before it is refreshed (Istio's default, 20 min).
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(20 * 60);
/// How long after a failed fetch the next request may try again.
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(1);
/// The largest JWKS document accepted.
pub const MAX_JWKS_BYTES: usize = 1 << 20;

/// The proxy-wide cache of remote key sets (`jwksUri`); share it as `Arc<JwksCache>`.
pub struct JwksCache {
    client: Client<HttpConnector, Empty<Bytes>>,
    /// Copy-on-write map: entries are only added, one per URI ever configured.
    slots: ArcSwap<HashMap<String, Arc<Slot>>>,
    refresh_interval: Duration,
    retry_backoff: Duration,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slots = self.slots.load();
        let mut uris: Vec<&String> = slots.keys().collect();
        uris.sort();
        f.debug_struct("JwksCache")
            .field("uris", &uris)
            .field("refresh_interval", &self.refresh_interval)
            .field("retry_backoff", &self.retry_backoff)
            .finish()
    }
}

impl Default for JwksCache {
    fn default() -> Self {
        JwksCache::new()
    }
}

/// One URI's key set and fetch state.
#[derive(Default)]
struct Slot {
    state: ArcSwap<SlotState>,
    /// Held while fetching: concurrent first uses wait for one fetch.
    fetching: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Default)]
struct SlotState {
    /// The last good key set and when it was fetched.
    keys: Option<(Arc<KeySet>, Instant)>,
    /// When the last fetch failed, if it did after the last success.
    failed_at: Option<Instant>,
}

impl SlotState {
    fn backing_off(&self, now: Instant, backoff: Duration) -> bool {
        self.failed_at
            .is_some_and(|at| at.checked_add(backoff).is_none_or(|until| now < until))
    }
}

impl JwksCache {
    /// A cache with Istio's refresh interval and a 1 s retry backoff.
    pub fn new() -> JwksCache {
        JwksCache::with_intervals(DEFAULT_REFRESH_INTERVAL, DEFAULT_RETRY_BACKOFF)
    }

    pub fn with_intervals(refresh_interval: Duration, retry_backoff: Duration) -> JwksCache {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        JwksCache {
            client: Client::builder(TokioExecutor::new()).build(connector),
            slots: ArcSwap::default(),
            refresh_interval,
            retry_backoff,
        }
    }

    /// The key set of `uri`, fetching it (within `timeout`) when it is not cached yet.
    pub(super) async fn get(&self, uri: &str, timeout: Duration) -> Result<Arc<KeySet>, JwtError> {
        let slot = self.slot(uri);
        let state = slot.state.load_full();
        let now = Instant::now();
        if let Some((keys, fetched_at)) = &state.keys {
            let due = fetched_at.checked_add(self.refresh_interval);
            if due.is_some_and(|due| now >= due) && !state.backing_off(now, self.retry_backoff) {
                self.refresh_in_background(&slot, uri, timeout).await;
            }
            return Ok(keys.clone());
        }
        if state.backing_off(now, self.retry_backoff) {
            return Err(JwtError::JwksFetchFail);
        }
        let _fetching = slot.fetching.lock().await;
        // Another request may have fetched, or failed to, while this one waited.
        let state = slot.state.load_full();
        if let Some((keys, _)) = &state.keys {
            return Ok(keys.clone());
        }
        if state.backing_off(Instant::now(), self.retry_backoff) {
            return Err(JwtError::JwksFetchFail);
        }
        fetch_and_store(&self.client, &slot, uri, timeout)
            .await
            .ok_or(JwtError::JwksFetchFail)
    }

    /// Starts a refresh unless one is running; without a Tokio runtime to spawn on it runs
    /// inline.
    async fn refresh_in_background(&self, slot: &Arc<Slot>, uri: &str, timeout: Duration) {
        let Ok(guard) = slot.fetching.clone().try_lock_owned() else {
            return;
        };
        let (client, slot, uri) = (self.client.clone(), slot.clone(), uri.to_string());
        let refresh = async move {
            fetch_and_store(&client, &slot, &uri, timeout).await;
            drop(guard);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn(refresh)),
            Err(_) => refresh.await,
        }
    }

    fn slot(&self, uri: &str) -> Arc<Slot> {
        if let Some(slot) = self.slots.load().get(uri) {
            return slot.clone();
        }
        let created = Arc::new(Slot::default());
        self.slots.rcu(|slots| {
            let mut slots = HashMap::clone(slots);
            slots
                .entry(uri.to_string())
                .or_insert_with(|| created.clone());
            slots
        });
        self.slots.load().get(uri).cloned().unwrap_or(created)
    }
}

/// Fetches `uri` and records the outcome: a new key set, or the failure (keeping old keys).
async fn fetch_and_store(
    client: &Client<HttpConnector, Empty<Bytes>>,
    slot: &Slot,
    uri: &str,
    timeout: Duration,
) -> Option<Arc<KeySet>> {
    let result = match tokio::time::timeout(timeout, fetch(client, uri)).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::Timeout(timeout)),
    };
    let old = slot.state.load_full();
    match result {
        Ok(keys) => {
            tracing::debug!(uri, keys = keys.len(), "jwks fetched");
            let keys = Arc::new(keys);
            slot.state.store(Arc::new(SlotState {
                keys: Some((keys.clone(), Instant::now())),
                failed_at: None,
            }));
            Some(keys)
        }
        Err(error) => {
            let stale = old.keys.is_some();
            tracing::warn!(uri, %error, serving_stale_keys = stale, "jwks fetch failed");
            slot.state.store(Arc::new(SlotState {
                keys: old.keys.clone(),
                failed_at: Some(Instant::now()),
            }));
            None
        }
    }
}

/// Why a `jwksUri` could not be turned into keys (logged, never sent to clients).
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("https jwksUri is not supported yet (use http://, file:// or an absolute path)")]
    HttpsUnsupported,
    #[error("jwksUri must be http://, file:///absolute/path or an absolute path")]
    UnsupportedUri,
    #[error("invalid jwksUri: {0}")]
    InvalidUri(#[from] http::uri::InvalidUri),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("request failed: {0}")]
    Request(#[from] hyper_util::client::legacy::Error),
    #[error("response status {0}")]
    Status(http::StatusCode),
    #[error("reading the response failed: {0}")]
    Body(Box<dyn std::error::Error + Send + Sync>),
    #[error("reading the file failed: {0}")]
    File(#[from] std::io::Error),
    #[error("the document is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("the document is not usable: {0}")]
    Keys(JwtError),
}

async fn fetch(
    client: &Client<HttpConnector, Empty<Bytes>>,
    uri: &str,
) -> Result<KeySet, FetchError> {
    let bytes = if let Some(path) = local_path(uri) {
        read_file(path.to_string()).await?
    } else if has_scheme(uri, "http") {
        fetch_http(client, uri.parse()?).await?
    } else if has_scheme(uri, "https") {
        return Err(FetchError::HttpsUnsupported);
    } else {
        return Err(FetchError::UnsupportedUri);
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| FetchError::Keys(JwtError::JwksParse))?;
    KeySet::parse(text).map_err(FetchError::Keys)
}

fn has_scheme(uri: &str, scheme: &str) -> bool {
    uri.get(..scheme.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
        && uri
            .get(scheme.len()..)
            .is_some_and(|rest| rest.starts_with("://"))
}

/// `file:///abs/path` or `/abs/path`.
fn local_path(uri: &str) -> Option<&str> {
    let path = if has_scheme(uri, "file") {
        uri.get("file://".len()..)?
    } else {
        uri
    };
    path.starts_with('/').then_some(path)
}

async fn fetch_http(
    client: &Client<HttpConnector, Empty<Bytes>>,
    uri: Uri,
) -> Result<Bytes, FetchError> {
    let response = client.get(uri).await?;
    if !response.status().is_success() {
        return Err(FetchError::Status(response.status()));
    }
    let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
        .collect()
        .await
        .map_err(|e| match e.downcast::<http_body_util::LengthLimitError>() {
            Ok(_) => FetchError::TooLarge,
            Err(e) => FetchError::Body(e),
        })?;
    Ok(body.to_bytes())
}

/// Reads a local file on the blocking pool (inline without a runtime).
async fn read_file(path: String) -> Result<Bytes, FetchError> {
    let read = move || -> Result<Bytes, FetchError> {
        let mut bytes = Vec::new();
        std::fs::File::open(&path)?
            .take(MAX_JWKS_BYTES as u64 + 1)
            .read_to_end(&mut bytes)?;
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(FetchError::TooLarge);
        }
        Ok(Bytes::from(bytes))
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle
            .spawn_blocking(read)
            .await
            .map_err(|e| FetchError::File(std::io::Error::other(e)))?,
        Err(_) => read(),
    }
}
