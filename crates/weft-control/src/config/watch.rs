//! The watched `--config-dir`: polled every 500 ms (modification times and sizes, which works
//! for editors that replace files, git checkouts and bind mounts). A change that validates
//! replaces the directory's resources; an invalid one is logged and the last good set stays.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use weft_api::{Diagnostic, Resource, load_paths};

/// How often the directory is checked.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// The modification time and size of every config file.
pub type Fingerprint = BTreeMap<PathBuf, (Option<SystemTime>, u64)>;

/// Why the directory's content cannot be served.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DirError {
    #[error("{0}")]
    Io(String),
    #[error("{}", .0.iter().filter(|d| d.is_error()).map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostic>),
}

/// The files' state now: take it before loading, so an edit made during the load is seen.
pub fn fingerprint(dir: &Path) -> Fingerprint {
    let files = weft_api::load::config_files(dir).unwrap_or_default();
    files
        .into_iter()
        .map(|file| {
            let meta = std::fs::metadata(&file).ok();
            let stamp = (
                meta.as_ref().and_then(|m| m.modified().ok()),
                meta.as_ref().map_or(0, |m| m.len()),
            );
            (file, stamp)
        })
        .collect()
}

/// Loads and validates every file under `dir`.
pub fn load_dir(dir: &Path) -> Result<Vec<Resource>, DirError> {
    let loaded = load_paths(&[dir]).map_err(|e| DirError::Io(e.to_string()))?;
    if loaded.has_errors() {
        return Err(DirError::Invalid(loaded.diagnostics));
    }
    for warning in &loaded.diagnostics {
        tracing::warn!(%warning, "config warning");
    }
    Ok(loaded.resources)
}

/// Polls `dir` forever; calls `on_change` with the new resources after each valid change.
pub async fn watch_dir(
    dir: PathBuf,
    mut seen: Fingerprint,
    on_change: impl Fn(Vec<Resource>) + Send + 'static,
) {
    let mut ticker = tokio::time::interval(POLL_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let d = dir.clone();
        let Ok(now) = tokio::task::spawn_blocking(move || fingerprint(&d)).await else {
            continue;
        };
        if now == seen {
            continue;
        }
        seen = now;
        let d = dir.clone();
        match tokio::task::spawn_blocking(move || load_dir(&d)).await {
            Ok(Ok(resources)) => {
                tracing::info!(resources = resources.len(), "config directory reloaded");
                on_change(resources);
            }
            Ok(Err(error)) => {
                tracing::error!(%error, "config directory change rejected; keeping the last good config");
            }
            Err(error) => tracing::error!(%error, "config reload task failed"),
        }
    }
}
