//! The active config: compiled and swapped atomically, from one of two sources. Files are
//! loaded at start and reloaded by a watcher when they change ([`watch_files`]); or the
//! control plane pushes snapshots ([`plane`]). A config that fails to load keeps the last good
//! snapshot serving and is reported (logs and `/config_dump`).

pub mod plane;
mod watch;

pub use watch::{Fingerprint, fingerprint, watch_files};

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use serde::Serialize;
use weft_api::mesh::{CompileOptions, MeshConfig, compile};
use weft_api::{Diagnostic, load_paths};

/// Why a config could not become active.
#[derive(Debug, Clone, thiserror::Error, Serialize)]
#[error("{message}")]
pub struct ConfigError {
    /// All errors, one per line, in `file:line:col: ...` form.
    pub message: String,
    /// Where the first error is.
    pub file: Option<String>,
    pub line: Option<usize>,
}

impl ConfigError {
    pub(crate) fn from_diagnostics(diags: &[Diagnostic]) -> ConfigError {
        let errors: Vec<&Diagnostic> = diags.iter().filter(|d| d.is_error()).collect();
        ConfigError {
            message: errors
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
            file: errors.first().map(|d| d.file.clone()),
            line: errors.first().map(|d| d.line),
        }
    }

    fn io(err: &weft_api::LoadError) -> ConfigError {
        ConfigError {
            message: err.to_string(),
            file: None,
            line: None,
        }
    }
}

/// Where config comes from and how it is compiled.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    pub paths: Vec<PathBuf>,
    pub options: CompileOptions,
}

impl ConfigSource {
    /// Loads, validates and compiles the files as version `version`.
    pub fn load(&self, version: u64) -> Result<MeshConfig, ConfigError> {
        let loaded = load_paths(&self.paths).map_err(|e| ConfigError::io(&e))?;
        if loaded.has_errors() {
            return Err(ConfigError::from_diagnostics(&loaded.diagnostics));
        }
        for warning in loaded.diagnostics.iter() {
            tracing::warn!(%warning, "config warning");
        }
        Ok(compile(&loaded.resources, version, &self.options))
    }
}

/// The snapshot the data path reads, plus the last load error.
pub struct ActiveConfig {
    mesh: ArcSwap<MeshConfig>,
    last_error: ArcSwapOption<ConfigError>,
}

impl ActiveConfig {
    pub fn new(initial: MeshConfig) -> Arc<ActiveConfig> {
        Arc::new(ActiveConfig {
            mesh: ArcSwap::from_pointee(initial),
            last_error: ArcSwapOption::empty(),
        })
    }

    /// The current snapshot; hold it for the whole request so one request sees one config.
    pub fn load(&self) -> Arc<MeshConfig> {
        self.mesh.load_full()
    }

    pub fn swap(&self, next: MeshConfig) {
        self.mesh.store(Arc::new(next));
        self.last_error.store(None);
    }

    pub fn record_error(&self, err: ConfigError) {
        self.last_error.store(Some(Arc::new(err)));
    }

    pub fn last_error(&self) -> Option<Arc<ConfigError>> {
        self.last_error.load_full()
    }

    /// `/config_dump`: `{"version", "resources": [...], "clusters": [...], "last_error"}`.
    pub fn dump(&self) -> serde_json::Value {
        let mesh = self.load();
        let resources: Vec<serde_json::Value> = mesh
            .resources
            .iter()
            .map(|r| {
                serde_json::json!({
                    "apiVersion": r.api_version,
                    "kind": r.kind.as_str(),
                    "metadata": r.meta,
                    "spec": r.spec,
                })
            })
            .collect();
        serde_json::json!({
            "version": mesh.version,
            "resources": resources,
            "virtual_hosts": mesh.virtual_hosts,
            "clusters": serde_json::to_value(&*mesh).ok().and_then(|m| m.get("clusters").cloned()),
            "outbound_policy": mesh.outbound_policy,
            "last_error": self.last_error().map(|e| serde_json::to_value(&*e).unwrap_or_default()),
        })
    }
}
