//! Clusters: one per (host, subset, port) that a route forwards or mirrors to, with the
//! service's endpoints (narrowed to the subset's labels) and the DestinationRule's policy.
//! Client TLS follows the same merge (see [`traffic`](super::traffic)); the expected server
//! names come from the ServiceEntry's `subjectAltNames`.
//! A subset no DestinationRule defines makes an empty cluster marked `undefined_subset`.
//! TCP/TLS route destinations are clusters too, and every registered service has its default
//! cluster (host, no subset, no port), as Istio builds `outbound|port||host` for every service
//! port: tunnels to a service without a TCP route use it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::mesh::{Cluster, ClusterKey, Endpoint, RouteAction, TcpRouteSet, VirtualHost};
use crate::model::Subset;

use super::inputs::Inputs;
use super::registry::Registry;
use super::rules;
use super::traffic::Policy;

/// Every cluster the virtual hosts' and TCP/TLS routes reach, and each service's default.
pub(super) fn build(
    inputs: &Inputs<'_>,
    registry: &Registry,
    virtual_hosts: &[VirtualHost],
    tcp_routes: &[TcpRouteSet],
) -> BTreeMap<ClusterKey, Arc<Cluster>> {
    let mut keys = referenced(virtual_hosts);
    keys.extend(tcp_referenced(tcp_routes));
    keys.extend(registry.services().iter().map(|s| ClusterKey {
        host: s.host.clone(),
        subset: None,
        port: None,
    }));
    keys.into_iter()
        .map(|key| {
            let cluster = cluster(inputs, registry, key.clone());
            (key, Arc::new(cluster))
        })
        .collect()
}

/// Destinations and mirrors of every route.
fn referenced(virtual_hosts: &[VirtualHost]) -> BTreeSet<ClusterKey> {
    let mut keys = BTreeSet::new();
    for route in virtual_hosts.iter().flat_map(|vh| &vh.routes) {
        if let RouteAction::Forward { destinations, .. } = &route.action {
            keys.extend(destinations.iter().map(|d| d.cluster.clone()));
        }
        keys.extend(route.mirrors.iter().map(|m| m.cluster.clone()));
    }
    keys
}

/// Destinations of every TCP and TLS route.
fn tcp_referenced(sets: &[TcpRouteSet]) -> impl Iterator<Item = ClusterKey> + '_ {
    sets.iter().flat_map(|set| {
        let tls = set.tls.iter().flat_map(|r| &r.destinations);
        let tcp = set.tcp.iter().flat_map(|r| &r.destinations);
        tls.chain(tcp).map(|d| d.cluster.clone())
    })
}

fn cluster(inputs: &Inputs<'_>, registry: &Registry, key: ClusterKey) -> Cluster {
    let service = registry.lookup(&key.host);
    let service_namespace = service
        .map(|s| s.namespace.clone())
        .or_else(|| fqdn_namespace(&key.host, &inputs.opts.domain));
    let rule = rules::find(inputs, registry, &key.host, service_namespace.as_deref());
    // A named subset must be defined by the rule.
    let defined = key
        .subset
        .as_deref()
        .map(|name| rule.as_ref().and_then(|r| r.subset(name)));
    let undefined_subset = matches!(defined, Some(None));
    let subset = defined.flatten();
    // A destination without a port uses the service's only port, if it has one.
    let port = key
        .port
        .or_else(|| match service.map(|s| s.ports.as_slice()) {
            Some([only]) => Some(only.number),
            _ => None,
        });
    let policy = Policy::merged(
        rule.as_ref().and_then(|r| r.traffic_policy),
        subset.and_then(|s| s.traffic_policy.as_ref()),
        port,
    );
    // Istio speaks HTTP/2 upstream on HTTP2/GRPC ports, whatever `h2UpgradePolicy` says.
    let mut pool = policy.pool();
    pool.http2 |= service
        .and_then(|s| s.ports.iter().find(|p| Some(p.number) == port))
        .is_some_and(|p| p.http2);
    let endpoints = match (service, undefined_subset) {
        (Some(service), false) => selected_endpoints(&service.endpoints, subset),
        _ => Vec::new(),
    };
    Cluster {
        key,
        endpoints,
        lb: policy.lb(),
        pool,
        outlier: policy.outlier(),
        undefined_subset,
        version: subset.and_then(|s| s.labels.get("version").cloned()),
        tls: policy.tls(),
        subject_alt_names: service
            .map(|s| s.subject_alt_names.clone())
            .unwrap_or_default(),
    }
}

/// The endpoints carrying every label of the subset (all of them without a subset).
fn selected_endpoints(endpoints: &[Endpoint], subset: Option<&Subset>) -> Vec<Endpoint> {
    let selected = |e: &&Endpoint| {
        subset.is_none_or(|s| s.labels.iter().all(|(k, v)| e.labels.get(k) == Some(v)))
    };
    endpoints.iter().filter(selected).cloned().collect()
}

/// `name.ns.svc.<domain>` → `ns`.
fn fqdn_namespace(host: &str, domain: &str) -> Option<String> {
    let rest = host.strip_suffix(&format!(".svc.{domain}"))?;
    let (_, ns) = rest.split_once('.')?;
    (!ns.is_empty() && !ns.contains('.')).then(|| ns.to_string())
}
