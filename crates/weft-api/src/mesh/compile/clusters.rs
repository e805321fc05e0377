//! Clusters: one per (host, subset, port) that a route forwards or mirrors to, with the
//! service's endpoints (narrowed to the subset's labels) and the DestinationRule's policy.
//! A subset no DestinationRule defines makes an empty cluster marked `undefined_subset`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::mesh::{Cluster, ClusterKey, Endpoint, RouteAction, VirtualHost};
use crate::model::Subset;

use super::inputs::Inputs;
use super::registry::Registry;
use super::rules;
use super::traffic::Policy;

/// Every cluster the virtual hosts' routes reach.
pub(super) fn build(
    inputs: &Inputs<'_>,
    registry: &Registry,
    virtual_hosts: &[VirtualHost],
) -> BTreeMap<ClusterKey, Arc<Cluster>> {
    referenced(virtual_hosts)
        .into_iter()
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
    let endpoints = match (service, undefined_subset) {
        (Some(service), false) => selected_endpoints(&service.endpoints, subset),
        _ => Vec::new(),
    };
    Cluster {
        key,
        endpoints,
        lb: policy.lb(),
        pool: policy.pool(),
        outlier: policy.outlier(),
        undefined_subset,
        version: subset.and_then(|s| s.labels.get("version").cloned()),
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
