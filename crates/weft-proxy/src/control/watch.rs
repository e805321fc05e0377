//! Reloads config files when they change: a cheap poll of modification times and sizes (works
//! for editors that replace files, for git checkouts and for bind mounts, where inotify does not).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{ActiveConfig, ConfigSource};

/// How often files are checked. Changes apply within this interval plus the load time.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// The modification time and size of every config file.
pub type Fingerprint = BTreeMap<PathBuf, (Option<SystemTime>, u64)>;

/// The files' state now: take it before loading, and hand it to [`watch_files`], so that an
/// edit made while the proxy starts is not mistaken for one already loaded.
pub fn fingerprint(source: &ConfigSource) -> Fingerprint {
    let mut out = Fingerprint::new();
    for path in &source.paths {
        let files = weft_api::load::config_files(path).unwrap_or_else(|_| vec![path.clone()]);
        for file in files {
            let meta = std::fs::metadata(&file).ok();
            let stamp = (
                meta.as_ref().and_then(|m| m.modified().ok()),
                meta.as_ref().map_or(0, |m| m.len()),
            );
            out.insert(file, stamp);
        }
    }
    out
}

/// Watches `source` forever, swapping `active` on every successful reload and recording the
/// error (keeping the last good config) on a failed one.
pub async fn watch_files(source: ConfigSource, active: Arc<ActiveConfig>, loaded: Fingerprint) {
    let mut seen = loaded;
    let mut ticker = tokio::time::interval(POLL_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let source2 = source.clone();
        let Ok(now) = tokio::task::spawn_blocking(move || fingerprint(&source2)).await else {
            continue;
        };
        if now == seen {
            continue;
        }
        seen = now;
        let version = active.load().version + 1;
        let source2 = source.clone();
        match tokio::task::spawn_blocking(move || source2.load(version)).await {
            Ok(Ok(mesh)) => {
                tracing::info!(version, "config reloaded");
                active.swap(mesh);
            }
            Ok(Err(err)) => {
                tracing::error!(error = %err.message, "config rejected; keeping the last good config");
                active.record_error(err);
            }
            Err(join) => tracing::error!(%join, "config reload task failed"),
        }
    }
}
