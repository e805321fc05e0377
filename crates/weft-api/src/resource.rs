//! Resources: the Kubernetes-style envelope (`apiVersion`, `kind`, `metadata`) around a typed
//! Istio spec, and the table of which kinds weft understands.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{
    AuthorizationPolicy, DestinationRule, Gateway, PeerAuthentication, RequestAuthentication,
    ServiceEntry, Sidecar, VirtualService, WorkloadEntry,
};
use crate::source::{PathIndex, Pos};

/// The Istio kinds weft implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Kind {
    VirtualService,
    DestinationRule,
    Gateway,
    ServiceEntry,
    WorkloadEntry,
    Sidecar,
    PeerAuthentication,
    AuthorizationPolicy,
    RequestAuthentication,
}

const NETWORKING_VERSIONS: &[&str] = &["v1", "v1beta1", "v1alpha3"];
const SECURITY_VERSIONS: &[&str] = &["v1", "v1beta1"];

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::VirtualService,
        Kind::DestinationRule,
        Kind::Gateway,
        Kind::ServiceEntry,
        Kind::WorkloadEntry,
        Kind::Sidecar,
        Kind::PeerAuthentication,
        Kind::AuthorizationPolicy,
        Kind::RequestAuthentication,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::VirtualService => "VirtualService",
            Kind::DestinationRule => "DestinationRule",
            Kind::Gateway => "Gateway",
            Kind::ServiceEntry => "ServiceEntry",
            Kind::WorkloadEntry => "WorkloadEntry",
            Kind::Sidecar => "Sidecar",
            Kind::PeerAuthentication => "PeerAuthentication",
            Kind::AuthorizationPolicy => "AuthorizationPolicy",
            Kind::RequestAuthentication => "RequestAuthentication",
        }
    }

    pub fn group(self) -> &'static str {
        match self {
            Kind::PeerAuthentication | Kind::AuthorizationPolicy | Kind::RequestAuthentication => {
                "security.istio.io"
            }
            _ => "networking.istio.io",
        }
    }

    /// The API versions under which Istio serves this kind.
    pub fn versions(self) -> &'static [&'static str] {
        match self.group() {
            "security.istio.io" => SECURITY_VERSIONS,
            _ => NETWORKING_VERSIONS,
        }
    }

    /// Looks a kind up by name, case-insensitively (`weft get virtualservice`), also accepting
    /// the plural and the short names kubectl knows (`vs`, `dr`, `gw`, `se`, `we`, `pa`, `ap`, `ra`).
    pub fn from_name(name: &str) -> Option<Kind> {
        let lower = name.to_ascii_lowercase();
        let short = match lower.as_str() {
            "vs" => Some(Kind::VirtualService),
            "dr" => Some(Kind::DestinationRule),
            "gw" => Some(Kind::Gateway),
            "se" => Some(Kind::ServiceEntry),
            "we" => Some(Kind::WorkloadEntry),
            "pa" => Some(Kind::PeerAuthentication),
            "ap" => Some(Kind::AuthorizationPolicy),
            "ra" => Some(Kind::RequestAuthentication),
            _ => None,
        };
        short.or_else(|| {
            Kind::ALL.into_iter().find(|k| {
                let n = k.as_str().to_ascii_lowercase();
                lower == n || lower == format!("{n}s")
            })
        })
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an `apiVersion`/`kind` pair means to weft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KindLookup {
    /// A kind weft implements, under a version Istio serves it at.
    Known(Kind),
    /// A kind weft implements, under a version Istio does not serve.
    BadVersion(Kind),
    /// An Istio (or Linkerd) kind weft does not implement yet.
    Unsupported,
    /// Not a mesh resource at all (Service, Deployment, ...): skipped.
    Foreign,
}

/// Classifies an `apiVersion` and `kind`.
pub fn lookup_kind(api_version: &str, kind: &str) -> KindLookup {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let mesh_group = group == "istio.io"
        || group.ends_with(".istio.io")
        || group == "linkerd.io"
        || group.ends_with(".linkerd.io");
    if !mesh_group {
        return KindLookup::Foreign;
    }
    match Kind::ALL
        .into_iter()
        .find(|k| k.as_str() == kind && k.group() == group)
    {
        Some(k) if k.versions().contains(&version) => KindLookup::Known(k),
        Some(k) => KindLookup::BadVersion(k),
        None => KindLookup::Unsupported,
    }
}

/// Kubernetes object metadata. Only `name`, `namespace`, `labels` and `annotations` mean
/// anything to weft; the other standard fields are accepted so that `kubectl get -o yaml`
/// output loads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing)]
    pub generate_name: Option<String>,
    #[serde(default, skip_serializing)]
    pub uid: Option<String>,
    #[serde(default, skip_serializing)]
    pub resource_version: Option<String>,
    #[serde(default, skip_serializing)]
    pub generation: Option<i64>,
    #[serde(default, skip_serializing)]
    pub creation_timestamp: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub deletion_timestamp: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub owner_references: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub finalizers: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    pub managed_fields: Option<serde_json::Value>,
}

/// The namespace a resource without `metadata.namespace` lives in, as with `kubectl apply`.
pub const DEFAULT_NAMESPACE: &str = "default";

impl ObjectMeta {
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
    }
}

/// A typed spec.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Spec {
    VirtualService(Box<VirtualService>),
    DestinationRule(Box<DestinationRule>),
    Gateway(Box<Gateway>),
    ServiceEntry(Box<ServiceEntry>),
    WorkloadEntry(Box<WorkloadEntry>),
    Sidecar(Box<Sidecar>),
    PeerAuthentication(Box<PeerAuthentication>),
    AuthorizationPolicy(Box<AuthorizationPolicy>),
    RequestAuthentication(Box<RequestAuthentication>),
}

/// Where a resource was read from: enough to place any finding about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub file: String,
    pub index: Arc<PathIndex>,
}

impl Origin {
    /// The position of `field` (or its nearest existing ancestor).
    pub fn locate(&self, field: &str) -> Pos {
        self.index
            .locate(field)
            .unwrap_or(Pos { line: 1, column: 1 })
    }
}

/// One loaded, typed Istio resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub kind: Kind,
    pub api_version: String,
    pub meta: ObjectMeta,
    pub spec: Spec,
    pub origin: Origin,
}

impl Resource {
    pub fn name(&self) -> &str {
        &self.meta.name
    }

    pub fn namespace(&self) -> &str {
        self.meta.namespace()
    }

    /// `namespace/name`, how istioctl names resources in its messages.
    pub fn qualified_name(&self) -> String {
        format!("{}/{}", self.namespace(), self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_versions() {
        assert_eq!(
            lookup_kind("networking.istio.io/v1alpha3", "VirtualService"),
            KindLookup::Known(Kind::VirtualService)
        );
        assert_eq!(
            lookup_kind("security.istio.io/v1", "AuthorizationPolicy"),
            KindLookup::Known(Kind::AuthorizationPolicy)
        );
        assert_eq!(
            lookup_kind("security.istio.io/v1alpha3", "PeerAuthentication"),
            KindLookup::BadVersion(Kind::PeerAuthentication)
        );
        assert_eq!(
            lookup_kind("networking.istio.io/v1alpha3", "EnvoyFilter"),
            KindLookup::Unsupported
        );
        assert_eq!(
            lookup_kind("install.istio.io/v1alpha1", "IstioOperator"),
            KindLookup::Unsupported
        );
        assert_eq!(
            lookup_kind("linkerd.io/v1alpha2", "ServiceProfile"),
            KindLookup::Unsupported
        );
        assert_eq!(lookup_kind("v1", "Service"), KindLookup::Foreign);
        assert_eq!(lookup_kind("apps/v1", "Deployment"), KindLookup::Foreign);
    }

    #[test]
    fn kind_names() {
        assert_eq!(Kind::from_name("vs"), Some(Kind::VirtualService));
        assert_eq!(
            Kind::from_name("destinationrules"),
            Some(Kind::DestinationRule)
        );
        assert_eq!(Kind::from_name("Gateway"), Some(Kind::Gateway));
        assert_eq!(Kind::from_name("nope"), None);
    }
}
