//! `weft describe SERVICE`: what applies to a service — the VirtualServices that route for it
//! or to it, the DestinationRule subsets for its host, its endpoints with their health, and the
//! AuthorizationPolicies, PeerAuthentications and RequestAuthentications that select them.
//! Pure: resources and the registry in, a JSON report out.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use weft_api::Spec;
use weft_api::host::{hosts_overlap, qualify};
use weft_api::model::{ServiceEntry, WorkloadSelector};

use crate::config::{Source, StoredResource};
use crate::registry::Registry;

const DOMAIN: &str = "cluster.local";

/// The report for `service` (a short name in `namespace`, or a host).
pub fn describe(
    resources: &[Arc<StoredResource>],
    registry: &Registry,
    service: &str,
    namespace: &str,
    root_namespace: &str,
) -> Value {
    let host = qualify(&service.to_ascii_lowercase(), namespace, DOMAIN);
    let endpoints = endpoints(resources, registry, &host, service, namespace);
    let endpoint_labels: Vec<BTreeMap<String, String>> = endpoints
        .iter()
        .map(|e| serde_json::from_value(e["labels"].clone()).unwrap_or_default())
        .collect();
    let mut service_entries = Vec::new();
    let mut virtual_services = Vec::new();
    let mut destination_rules = Vec::new();
    let mut policies = Vec::new();
    for r in resources {
        let ns = r.key.namespace.as_str();
        let name = json!({"name": r.key.name, "namespace": ns, "source": r.source});
        match &r.resource.spec {
            Spec::ServiceEntry(se)
                if se
                    .hosts
                    .iter()
                    .any(|h| hosts_overlap(&h.to_ascii_lowercase(), &host)) =>
            {
                service_entries.push(name);
            }
            Spec::VirtualService(_) => {
                if let Some(report) = virtual_service(r, &host) {
                    virtual_services.push(report);
                }
            }
            Spec::DestinationRule(dr)
                if hosts_overlap(&qualify(&dr.host.to_ascii_lowercase(), ns, DOMAIN), &host) =>
            {
                let subsets: Vec<Value> = dr
                    .subsets
                    .iter()
                    .map(|s| {
                        let matching = endpoint_labels
                            .iter()
                            .filter(|l| s.labels.iter().all(|(k, v)| l.get(k) == Some(v)))
                            .count();
                        json!({"name": s.name, "labels": s.labels, "endpoints": matching})
                    })
                    .collect();
                destination_rules.push(json!({
                    "name": r.key.name, "namespace": ns, "source": r.source,
                    "host": dr.host, "subsets": subsets,
                    "trafficPolicy": r.json["spec"].get("trafficPolicy").cloned().unwrap_or(Value::Null),
                }));
            }
            Spec::AuthorizationPolicy(_)
            | Spec::PeerAuthentication(_)
            | Spec::RequestAuthentication(_)
                if ns == namespace || ns == root_namespace =>
            {
                if let Some(report) = policy(r, &endpoint_labels) {
                    policies.push(report);
                }
            }
            _ => {}
        }
    }
    let by_kind = |kind: &str| -> Vec<Value> {
        policies
            .iter()
            .filter(|p| p["kind"] == kind)
            .cloned()
            .collect()
    };
    json!({
        "service": service,
        "namespace": namespace,
        "host": host,
        "serviceEntries": service_entries,
        "virtualServices": virtual_services,
        "destinationRules": destination_rules,
        "endpoints": endpoints,
        "authorizationPolicies": by_kind("AuthorizationPolicy"),
        "peerAuthentications": by_kind("PeerAuthentication"),
        "requestAuthentications": by_kind("RequestAuthentication"),
    })
}

/// A VirtualService's routes, when it routes for `host` or sends traffic to it.
fn virtual_service(r: &StoredResource, host: &str) -> Option<Value> {
    let Spec::VirtualService(vs) = &r.resource.spec else {
        return None;
    };
    let ns = r.key.namespace.as_str();
    let for_host = vs
        .hosts
        .iter()
        .any(|h| hosts_overlap(&qualify(&h.to_ascii_lowercase(), ns, DOMAIN), host));
    let spec = &r.json["spec"];
    let routes: Vec<Value> = spec["http"]
        .as_array()
        .map(|http| {
            http.iter()
                .enumerate()
                .map(|(i, route)| http_route(i, route, ns))
                .collect()
        })
        .unwrap_or_default();
    let to_host = routes.iter().any(|route| {
        route["destinations"]
            .as_array()
            .is_some_and(|ds| ds.iter().any(|d| d["host"] == host))
    });
    if !for_host && !to_host {
        return None;
    }
    Some(json!({
        "name": r.key.name,
        "namespace": ns,
        "source": r.source,
        "hosts": vs.hosts,
        "gateways": vs.gateways,
        "routesFor": for_host,
        "http": routes,
        "tcp": spec["tcp"].as_array().map_or(0, Vec::len),
        "tls": spec["tls"].as_array().map_or(0, Vec::len),
    }))
}

/// One HTTP route: its matches (flattened `field.path=value`), destinations and other actions.
fn http_route(index: usize, route: &Value, ns: &str) -> Value {
    let matches: Vec<String> = route["match"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    let mut parts = Vec::new();
                    flatten("", m, &mut parts);
                    parts.join(", ")
                })
                .collect()
        })
        .unwrap_or_default();
    let destinations: Vec<Value> = route["route"]
        .as_array()
        .map(|ds| {
            ds.iter()
                .map(|d| {
                    let dest = &d["destination"];
                    let host = dest["host"]
                        .as_str()
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    json!({
                        "host": qualify(&host, ns, DOMAIN),
                        "subset": dest.get("subset").cloned().unwrap_or(Value::Null),
                        "port": dest["port"].get("number").cloned().unwrap_or(Value::Null),
                        "weight": d.get("weight").cloned().unwrap_or(Value::Null),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let actions: Vec<&String> = route
        .as_object()
        .map(|o| {
            o.keys()
                .filter(|k| !matches!(k.as_str(), "name" | "match" | "route"))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "index": index,
        "name": route.get("name").cloned().unwrap_or(Value::Null),
        "match": matches,
        "destinations": destinations,
        "actions": actions,
    })
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&path, v, out);
            }
        }
        Value::String(s) => out.push(format!("{prefix}={s}")),
        other => out.push(format!("{prefix}={other}")),
    }
}

/// The service's endpoints: registered proxies (with health), then configured WorkloadEntries
/// and inline endpoints of the ServiceEntries for the host.
fn endpoints(
    resources: &[Arc<StoredResource>],
    registry: &Registry,
    host: &str,
    service: &str,
    namespace: &str,
) -> Vec<Value> {
    let mut out: Vec<Value> = registry
        .iter()
        .filter(|r| r.workload.service == service && r.workload.namespace == namespace)
        .map(|r| {
            let w = &r.workload;
            let ports: BTreeMap<String, u32> = w
                .ports
                .iter()
                .map(|p| {
                    (
                        p.number.to_string(),
                        if p.target_port == 0 {
                            p.number
                        } else {
                            p.target_port
                        },
                    )
                })
                .collect();
            json!({
                "name": w.name, "address": w.address, "ports": ports,
                "labels": w.endpoint_labels(), "serviceAccount": w.service_account,
                "healthy": r.healthy, "source": Source::Registry,
                "status": r.status.label(),
            })
        })
        .collect();
    let entries: Vec<(&StoredResource, &ServiceEntry)> = resources
        .iter()
        .filter(|r| r.source != Source::Registry)
        .filter_map(|r| match &r.resource.spec {
            Spec::ServiceEntry(se) if se.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) => {
                Some((r.as_ref(), se.as_ref()))
            }
            _ => None,
        })
        .collect();
    for (se_res, se) in &entries {
        for (i, we) in se.endpoints.iter().enumerate() {
            out.push(json!({
                "name": format!("{}[{i}]", se_res.key.name), "address": we.address,
                "ports": we.ports, "labels": we.labels, "serviceAccount": we.service_account,
                "healthy": true, "source": se_res.source,
            }));
        }
        let Some(selector) = se
            .workload_selector
            .as_ref()
            .and_then(|s| s.labels.as_ref())
        else {
            continue;
        };
        for r in resources.iter().filter(|r| r.source != Source::Registry) {
            let Spec::WorkloadEntry(we) = &r.resource.spec else {
                continue;
            };
            let mut labels = we.labels.clone();
            labels.extend(r.resource.meta.labels.clone());
            let selected = r.key.namespace == se_res.key.namespace
                && selector.iter().all(|(k, v)| labels.get(k) == Some(v));
            if selected {
                out.push(json!({
                    "name": r.key.name, "address": we.address, "ports": we.ports,
                    "labels": labels, "serviceAccount": we.service_account,
                    "healthy": true, "source": r.source,
                }));
            }
        }
    }
    out
}

/// A security policy that selects at least one of the endpoints (or has no selector).
fn policy(r: &StoredResource, endpoint_labels: &[BTreeMap<String, String>]) -> Option<Value> {
    let selector: Option<&WorkloadSelector> = match &r.resource.spec {
        Spec::AuthorizationPolicy(p) => p.selector.as_ref(),
        Spec::PeerAuthentication(p) => p.selector.as_ref(),
        Spec::RequestAuthentication(p) => p.selector.as_ref(),
        _ => return None,
    };
    let wanted = selector.and_then(|s| s.match_labels.as_ref());
    let applies = match wanted {
        None => true,
        Some(w) => endpoint_labels
            .iter()
            .any(|l| w.iter().all(|(k, v)| l.get(k) == Some(v))),
    };
    if !applies {
        return None;
    }
    let spec = &r.json["spec"];
    let summary = match &r.resource.spec {
        Spec::AuthorizationPolicy(_) => {
            json!({"action": spec.get("action").cloned().unwrap_or(json!("ALLOW")), "rules": spec["rules"].as_array().map_or(0, Vec::len)})
        }
        Spec::PeerAuthentication(_) => {
            json!({"mode": spec["mtls"].get("mode").cloned().unwrap_or(Value::Null), "portLevelMtls": spec.get("portLevelMtls").cloned().unwrap_or(Value::Null)})
        }
        _ => json!({"jwtRules": spec["jwtRules"].as_array().map_or(0, Vec::len)}),
    };
    Some(json!({
        "kind": r.key.kind,
        "name": r.key.name,
        "namespace": r.key.namespace,
        "source": r.source,
        "selector": wanted,
        "summary": summary,
    }))
}
