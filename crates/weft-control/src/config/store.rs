//! The merged config: resources from the watched directory and from the apply API, keyed by
//! (kind, namespace, name). A key defined by the watched directory cannot be changed or deleted
//! through the API; it shadows an applied resource of the same key.

use std::collections::BTreeMap;
use std::sync::Arc;

use weft_api::Resource;

use super::key::{ResourceKey, Source, StoredResource};

/// The resources the control plane serves, by source.
#[derive(Debug, Default, Clone)]
pub struct ConfigStore {
    watched: BTreeMap<ResourceKey, Arc<StoredResource>>,
    applied: BTreeMap<ResourceKey, Arc<StoredResource>>,
}

/// Why a resource could not be deleted through the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeleteError {
    #[error("{0} not found")]
    NotFound(ResourceKey),
    #[error("{key} is defined by the watched config directory ({file}); change or remove it there")]
    Watched { key: ResourceKey, file: String },
}

impl ConfigStore {
    /// Replaces the watched directory's resources; returns whether anything changed. When two
    /// files define the same key, the first file (in path order) wins.
    pub fn replace_watched(&mut self, resources: Vec<Resource>) -> bool {
        let mut next = BTreeMap::new();
        for resource in resources {
            let stored = StoredResource::new(resource, Source::Watched);
            if let Some(first) = next.get(&stored.key) {
                let first: &Arc<StoredResource> = first;
                tracing::warn!(
                    key = %stored.key,
                    kept = first.file(),
                    ignored = stored.file(),
                    "resource defined twice in the config directory; keeping the first"
                );
                continue;
            }
            next.insert(stored.key.clone(), Arc::new(stored));
        }
        let changed = !same_content(&self.watched, &next);
        self.watched = next;
        changed
    }

    /// Loads previously applied resources (at start, from `applied/`).
    pub fn restore_applied(&mut self, resources: Vec<Resource>) {
        for resource in resources {
            let stored = StoredResource::new(resource, Source::Applied);
            self.applied.insert(stored.key.clone(), Arc::new(stored));
        }
    }

    /// The watched resource with this key, if any.
    pub fn watched(&self, key: &ResourceKey) -> Option<&Arc<StoredResource>> {
        self.watched.get(key)
    }

    /// The applied resource with this key, if any (even when a watched one shadows it).
    pub fn applied(&self, key: &ResourceKey) -> Option<&Arc<StoredResource>> {
        self.applied.get(key)
    }

    /// Stores applied resources (already validated and persisted).
    pub fn insert_applied(&mut self, stored: Vec<Arc<StoredResource>>) {
        for s in stored {
            self.applied.insert(s.key.clone(), s);
        }
    }

    /// Checks that `key` may be deleted through the API.
    pub fn check_delete(&self, key: &ResourceKey) -> Result<(), DeleteError> {
        if let Some(w) = self.watched.get(key) {
            return Err(DeleteError::Watched {
                key: key.clone(),
                file: w.file().to_string(),
            });
        }
        if self.applied.contains_key(key) {
            Ok(())
        } else {
            Err(DeleteError::NotFound(key.clone()))
        }
    }

    /// Deletes an applied resource.
    pub fn delete(&mut self, key: &ResourceKey) -> Result<Arc<StoredResource>, DeleteError> {
        self.check_delete(key)?;
        self.applied
            .remove(key)
            .ok_or_else(|| DeleteError::NotFound(key.clone()))
    }

    /// The effective config: every watched resource, then every applied one no watched
    /// resource shadows, in key order.
    pub fn effective(&self) -> Vec<Arc<StoredResource>> {
        let mut out: BTreeMap<&ResourceKey, &Arc<StoredResource>> = self.applied.iter().collect();
        out.extend(self.watched.iter());
        out.into_values().cloned().collect()
    }
}

fn same_content(
    a: &BTreeMap<ResourceKey, Arc<StoredResource>>,
    b: &BTreeMap<ResourceKey, Arc<StoredResource>>,
) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((ka, va), (kb, vb))| ka == kb && va.json == vb.json)
}
