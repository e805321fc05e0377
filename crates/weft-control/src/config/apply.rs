//! The apply API's core: validate a batch of documents exactly as `weft validate` does, then
//! decide per resource whether it is created, configured or unchanged. All or nothing: one
//! invalid document or one resource owned by the watched directory refuses the whole batch.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use weft_api::{Diagnostic, Loaded, Severity, load_text};

use super::key::{ResourceKey, Source, StoredResource};
use super::store::ConfigStore;

/// One input file: its name (for `file:line:col` messages) and its text.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ApplyFile {
    pub name: String,
    pub content: String,
}

/// What applying a resource does to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Created,
    Configured,
    Unchanged,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Configured => "configured",
            Action::Unchanged => "unchanged",
        }
    }
}

/// Why a batch was refused; nothing of it was applied.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApplyError {
    /// Validation failed: every error, as `weft validate` prints them.
    #[error("invalid config: {} error(s)", .0.iter().filter(|d| d.is_error()).count())]
    Invalid(Vec<Diagnostic>),
    /// The batch names a resource the watched directory defines.
    #[error(
        "{key} is defined by the watched config directory ({file}); change it there, not through the API"
    )]
    Watched { key: ResourceKey, file: String },
    #[error("no Istio resources in the input")]
    Empty,
}

/// One resource of a validated batch and what applying it does.
#[derive(Debug, Clone)]
pub struct Applied {
    pub resource: Arc<StoredResource>,
    pub action: Action,
}

/// A validated batch, ready to be persisted and committed.
#[derive(Debug, Clone)]
pub struct ApplyPlan {
    pub items: Vec<Applied>,
    /// Warnings found while validating (the batch is applied anyway).
    pub warnings: Vec<Diagnostic>,
}

impl ApplyPlan {
    /// Whether applying changes anything.
    pub fn changes(&self) -> bool {
        self.items.iter().any(|i| i.action != Action::Unchanged)
    }
}

impl ConfigStore {
    /// Validates `files` and plans applying them; resources without a namespace get
    /// `namespace`. Pure: the store is not changed.
    pub fn plan_apply(
        &self,
        files: &[ApplyFile],
        namespace: &str,
    ) -> Result<ApplyPlan, ApplyError> {
        let mut loaded = Loaded::default();
        for file in files {
            loaded.merge(load_text(&file.name, &file.content));
        }
        if loaded.has_errors() {
            return Err(ApplyError::Invalid(loaded.diagnostics));
        }
        if loaded.resources.is_empty() {
            return Err(ApplyError::Empty);
        }
        let mut seen: BTreeMap<ResourceKey, ()> = BTreeMap::new();
        let mut duplicates = Vec::new();
        let mut items = Vec::new();
        for mut resource in loaded.resources {
            if resource.meta.namespace.is_none() {
                resource.meta.namespace = Some(namespace.to_string());
            }
            let stored = StoredResource::new(resource, Source::Applied);
            if seen.insert(stored.key.clone(), ()).is_some() {
                duplicates.push(duplicate_diagnostic(&stored));
                continue;
            }
            if let Some(w) = self.watched(&stored.key) {
                return Err(ApplyError::Watched {
                    key: stored.key.clone(),
                    file: w.file().to_string(),
                });
            }
            let action = match self.applied(&stored.key) {
                None => Action::Created,
                Some(old) if old.json == stored.json => Action::Unchanged,
                Some(_) => Action::Configured,
            };
            items.push(Applied {
                resource: Arc::new(stored),
                action,
            });
        }
        if !duplicates.is_empty() {
            return Err(ApplyError::Invalid(duplicates));
        }
        Ok(ApplyPlan {
            items,
            warnings: loaded.diagnostics,
        })
    }
}

fn duplicate_diagnostic(stored: &StoredResource) -> Diagnostic {
    let origin = &stored.resource.origin;
    let pos = origin.locate("metadata.name");
    Diagnostic {
        file: origin.file.clone(),
        line: pos.line,
        column: pos.column,
        kind: stored.key.kind.to_string(),
        namespace: stored.key.namespace.clone(),
        name: stored.key.name.clone(),
        field: "metadata.name".to_string(),
        message: "this resource appears more than once in the input".to_string(),
        severity: Severity::Error,
        code: None,
    }
}
