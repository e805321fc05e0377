//! Sidecar scoping: when a Sidecar applies to a proxy (a selector-matching one of its namespace,
//! else its namespace's default, else the root namespace's default) and lists `egress.hosts`,
//! the proxy receives only the ServiceEntries and VirtualServices (by their own namespace) of
//! those hosts, with the DestinationRules and WorkloadEntries of the services kept; policies and Sidecars of its own and the root namespace; and every Gateway.
//! Without such a Sidecar it receives everything.
//!
//! Hosts are `namespace/dnsName` as in Istio: the namespace is `*` (any), `.` (the proxy's
//! namespace), `~` (none) or a name; the DNS name is exact, `*.suffix` or `*`.

use std::collections::BTreeMap;
use std::sync::Arc;

use weft_api::Spec;
use weft_api::host::{hosts_overlap, qualify};
use weft_api::model::Sidecar;

use super::ProxyScope;
use crate::config::StoredResource;

const DOMAIN: &str = "cluster.local";

/// One `egress.hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressHost {
    /// `None`: any namespace; `Some("~")`: none.
    pub namespace: Option<String>,
    pub host: String,
}

impl EgressHost {
    /// Parses `ns/host`; `.` becomes `proxy_namespace`.
    pub fn parse(text: &str, proxy_namespace: &str) -> Option<EgressHost> {
        let (ns, host) = text.split_once('/')?;
        let namespace = match ns {
            "*" => None,
            "." => Some(proxy_namespace.to_string()),
            other => Some(other.to_string()),
        };
        Some(EgressHost {
            namespace,
            host: host.to_ascii_lowercase(),
        })
    }

    fn allows(&self, namespace: &str, host: &str) -> bool {
        let ns_ok = match &self.namespace {
            None => true,
            Some(ns) => ns == namespace,
        };
        ns_ok && hosts_overlap(&self.host, host)
    }
}

fn labels_match(
    selector: Option<&BTreeMap<String, String>>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector.is_none_or(|s| s.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

/// The Sidecar that applies to `proxy`, if any.
pub fn applicable_sidecar<'a>(
    all: &'a [Arc<StoredResource>],
    proxy: &ProxyScope<'_>,
) -> Option<(&'a StoredResource, &'a Sidecar)> {
    let sidecars: Vec<(&StoredResource, &Sidecar)> = all
        .iter()
        .filter_map(|r| match &r.resource.spec {
            Spec::Sidecar(s) => Some((r.as_ref(), s.as_ref())),
            _ => None,
        })
        .collect();
    let selected = sidecars.iter().find(|(r, s)| {
        r.key.namespace == proxy.namespace
            && s.workload_selector
                .as_ref()
                .is_some_and(|sel| labels_match(sel.labels.as_ref(), proxy.labels))
    });
    let default_of = |ns: &str| {
        sidecars
            .iter()
            .find(|(r, s)| r.key.namespace == ns && s.workload_selector.is_none())
    };
    selected
        .or_else(|| default_of(proxy.namespace))
        .or_else(|| default_of(proxy.root_namespace))
        .copied()
}

/// The resources `proxy` needs from `all`.
pub fn scoped<'a>(
    all: &'a [Arc<StoredResource>],
    proxy: &ProxyScope<'_>,
) -> Vec<&'a Arc<StoredResource>> {
    let egress: Vec<EgressHost> = applicable_sidecar(all, proxy)
        .map(|(_, s)| {
            s.egress
                .iter()
                .flat_map(|l| l.hosts.iter())
                .filter_map(|h| EgressHost::parse(h, proxy.namespace))
                .collect()
        })
        .unwrap_or_default();
    if egress.is_empty() {
        return all.iter().collect();
    }
    let allowed = |ns: &str, host: &str| egress.iter().any(|e| e.allows(ns, host));
    // Services first: DestinationRules and WorkloadEntries follow the services kept.
    let services: Vec<&Arc<StoredResource>> = all
        .iter()
        .filter(|r| match &r.resource.spec {
            Spec::ServiceEntry(se) => se
                .hosts
                .iter()
                .any(|h| allowed(&r.key.namespace, &h.to_ascii_lowercase())),
            _ => false,
        })
        .collect();
    let service_hosts: Vec<String> = services
        .iter()
        .flat_map(|r| match &r.resource.spec {
            Spec::ServiceEntry(se) => se.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            _ => Vec::new(),
        })
        .collect();
    let local = |ns: &str| ns == proxy.namespace || ns == proxy.root_namespace;
    all.iter()
        .filter(|r| {
            let ns = r.key.namespace.as_str();
            match &r.resource.spec {
                Spec::ServiceEntry(_) => services.iter().any(|s| Arc::ptr_eq(s, r)),
                Spec::VirtualService(vs) => vs
                    .hosts
                    .iter()
                    .any(|h| allowed(ns, &qualify(&h.to_ascii_lowercase(), ns, DOMAIN))),
                Spec::DestinationRule(dr) => {
                    let host = qualify(&dr.host.to_ascii_lowercase(), ns, DOMAIN);
                    service_hosts.iter().any(|s| hosts_overlap(s, &host))
                }
                Spec::WorkloadEntry(we) => {
                    let mut labels = we.labels.clone();
                    labels.extend(r.resource.meta.labels.clone());
                    services.iter().any(|s| selects(s, ns, &labels))
                }
                Spec::Gateway(_) => true,
                Spec::Sidecar(_)
                | Spec::PeerAuthentication(_)
                | Spec::AuthorizationPolicy(_)
                | Spec::RequestAuthentication(_) => local(ns),
            }
        })
        .collect()
}

/// Whether the ServiceEntry `se` selects a WorkloadEntry of `ns` with `labels`.
fn selects(se: &StoredResource, ns: &str, labels: &BTreeMap<String, String>) -> bool {
    let Spec::ServiceEntry(spec) = &se.resource.spec else {
        return false;
    };
    se.key.namespace == ns
        && spec
            .workload_selector
            .as_ref()
            .is_some_and(|sel| labels_match(sel.labels.as_ref(), labels))
}
