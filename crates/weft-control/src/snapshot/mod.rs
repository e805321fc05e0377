//! Per-proxy snapshots: the effective config plus the registry's resources, narrowed by the
//! Sidecar that applies to the proxy, as the JSON array `Snapshot.resources_json` carries.
//! Pure: resources in, a document out.

mod scope;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use scope::{EgressHost, applicable_sidecar, scoped};

use crate::config::StoredResource;

/// Istio's root namespace: mesh-wide Sidecar and policies live there.
pub const ROOT_NAMESPACE: &str = "istio-system";

/// Who a snapshot is for.
#[derive(Debug, Clone)]
pub struct ProxyScope<'a> {
    pub namespace: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub root_namespace: &'a str,
}

/// The resources `proxy` needs, as a JSON array of `{"apiVersion","kind","metadata","spec"}`.
pub fn snapshot_json(all: &[Arc<StoredResource>], proxy: &ProxyScope<'_>) -> String {
    let docs: Vec<&serde_json::Value> = scoped(all, proxy).into_iter().map(|r| &r.json).collect();
    serde_json::to_string(&docs).unwrap_or_else(|_| "[]".to_string())
}
