//! Applied resources on disk: one JSON file per resource under `<data-dir>/applied/`,
//! `<Kind>/<namespace>/<name>.json`, written atomically (temp file, then rename), so they
//! survive a restart.

use std::path::{Path, PathBuf};

use weft_api::{Resource, load_text};

use super::key::ResourceKey;

/// Why the applied directory could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct PersistError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// The `applied/` directory.
#[derive(Debug, Clone)]
pub struct AppliedDir {
    dir: PathBuf,
}

impl AppliedDir {
    pub fn new(dir: PathBuf) -> AppliedDir {
        AppliedDir { dir }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Where the resource with `key` is stored.
    pub fn file_for(&self, key: &ResourceKey) -> PathBuf {
        self.dir
            .join(encode_segment(key.kind.as_str()))
            .join(encode_segment(&key.namespace))
            .join(format!("{}.json", encode_segment(&key.name)))
    }

    /// Writes (or replaces) the resource's file.
    pub fn write(&self, key: &ResourceKey, json: &serde_json::Value) -> Result<(), PersistError> {
        let path = self.file_for(key);
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PersistError { path, source }
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(err(parent))?;
        }
        let text =
            serde_json::to_string_pretty(json).map_err(|e| err(&path)(std::io::Error::other(e)))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, format!("{text}\n")).map_err(err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(err(&path))
    }

    /// Reads the resource's current file, if any (to roll back a failed batch).
    pub fn read(&self, key: &ResourceKey) -> Option<String> {
        std::fs::read_to_string(self.file_for(key)).ok()
    }

    /// Restores a file to `previous` (`None`: removes it).
    pub fn restore(&self, key: &ResourceKey, previous: Option<&str>) {
        let path = self.file_for(key);
        let result = match previous {
            Some(text) => std::fs::write(&path, text),
            None => std::fs::remove_file(&path),
        };
        if let Err(error) = result {
            tracing::error!(path = %path.display(), %error, "cannot roll back an applied resource file");
        }
    }

    /// Removes the resource's file.
    pub fn remove(&self, key: &ResourceKey) -> Result<(), PersistError> {
        let path = self.file_for(key);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(PersistError { path, source }),
        }
    }

    /// Every valid stored resource. A file that no longer validates is skipped and logged.
    pub fn load(&self) -> Result<Vec<Resource>, PersistError> {
        if !self.dir.exists() {
            return Ok(Vec::new());
        }
        let files = weft_api::load::config_files(&self.dir).map_err(|e| PersistError {
            path: self.dir.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let mut out = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|source| PersistError {
                path: file.clone(),
                source,
            })?;
            let loaded = load_text(&file.display().to_string(), &text);
            if loaded.has_errors() {
                for d in loaded.diagnostics.iter().filter(|d| d.is_error()) {
                    tracing::error!(diagnostic = %d, "skipping an applied resource that no longer validates");
                }
                continue;
            }
            out.extend(loaded.resources);
        }
        Ok(out)
    }
}

/// A path segment from a name: letters, digits, `-`, `_` and `.` stay; anything else (and a
/// leading dot) becomes `%XX`, so no name can escape the directory.
fn encode_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cannot_escape() {
        assert_eq!(encode_segment("reviews-v1.x"), "reviews-v1.x");
        assert_eq!(encode_segment(".."), "%2E.");
        assert_eq!(encode_segment("a/b"), "a%2Fb");
        assert_eq!(encode_segment(""), "%00");
    }
}
