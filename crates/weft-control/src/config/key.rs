//! How the control plane names and holds a resource: its key (kind, namespace, name), where it
//! came from, and the JSON document proxies receive.

use std::fmt;

use serde::Serialize;
use weft_api::{Kind, Resource};

/// Resources are unique by kind, namespace and name, as in Kubernetes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ResourceKey {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl ResourceKey {
    pub fn new(kind: Kind, namespace: &str, name: &str) -> ResourceKey {
        ResourceKey {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    pub fn of(resource: &Resource) -> ResourceKey {
        ResourceKey::new(resource.kind, resource.namespace(), resource.name())
    }
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// Where a resource comes from. The watched directory wins over the apply API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A file in the watched `--config-dir`: read-only through the API.
    Watched,
    /// `weft apply` / `POST /api/apply`, persisted under `applied/`.
    Applied,
    /// Synthesized from the proxies registered with the control plane.
    Registry,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Watched => "watched",
            Source::Applied => "applied",
            Source::Registry => "registry",
        }
    }
}

/// A validated resource with its source and its wire form.
#[derive(Debug, Clone)]
pub struct StoredResource {
    pub key: ResourceKey,
    pub resource: Resource,
    /// `{"apiVersion", "kind", "metadata", "spec"}`, the namespace always set.
    pub json: serde_json::Value,
    pub source: Source,
}

impl StoredResource {
    /// Wraps a loaded resource; a missing namespace becomes the resource's effective one.
    pub fn new(mut resource: Resource, source: Source) -> StoredResource {
        if resource.meta.namespace.is_none() {
            resource.meta.namespace = Some(resource.namespace().to_string());
        }
        let json = resource_json(&resource);
        StoredResource {
            key: ResourceKey::of(&resource),
            resource,
            json,
            source,
        }
    }

    /// The file the resource was read from (`applied` resources name their persisted file).
    pub fn file(&self) -> &str {
        &self.resource.origin.file
    }
}

/// The wire form of a resource: what `weft validate` and the proxy read back. Empty lists
/// and maps, which the typed model writes for absent fields, are left out (protobuf gives
/// them no presence, so nothing changes); an empty message the user wrote (`retries: {}`)
/// stays.
pub fn resource_json(resource: &Resource) -> serde_json::Value {
    let mut spec = serde_json::to_value(&resource.spec).unwrap_or_default();
    prune_empty(&mut spec);
    if !spec.is_object() {
        spec = serde_json::Value::Object(Default::default());
    }
    serde_json::json!({
        "apiVersion": resource.api_version,
        "kind": resource.kind.as_str(),
        "metadata": resource.meta,
        "spec": spec,
    })
}

/// Map-typed fields of the Istio kinds (as opposed to message-typed ones).
const MAP_FIELDS: &[&str] = &[
    "headers",
    "queryParams",
    "sourceLabels",
    "withoutHeaders",
    "labels",
    "matchLabels",
    "ports",
    "selector",
    "portLevelMtls",
    "set",
    "add",
    "to",
];

/// Removes empty arrays, and empty maps of [`MAP_FIELDS`], from object fields (recursively).
fn prune_empty(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for v in map.values_mut() {
                prune_empty(v);
            }
            map.retain(|k, v| match v {
                serde_json::Value::Array(a) => !a.is_empty(),
                serde_json::Value::Object(m) => !m.is_empty() || !MAP_FIELDS.contains(&k.as_str()),
                _ => true,
            });
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(prune_empty),
        _ => {}
    }
}
