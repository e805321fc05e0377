//! Registry → Istio resources: per (namespace, service) with a registered workload, a
//! ServiceEntry `<service>.<ns>.svc.cluster.local` selecting `app: <service>`, and per healthy
//! workload a WorkloadEntry with its address, ports, labels and service account. The documents
//! go through `weft_api::load_text`, so they are exactly as valid as user config.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use weft_api::load_text;

use super::{PortInfo, Registration, Registry, WorkloadInfo};
use crate::config::{Source, StoredResource};

/// The file name synthesized resources are attributed to in messages.
const ORIGIN: &str = "<registry>";

/// The ServiceEntries and WorkloadEntries of every registered workload.
pub fn synthesize(registry: &Registry) -> Vec<StoredResource> {
    let mut services: BTreeMap<(&str, &str), Vec<&Registration>> = BTreeMap::new();
    for r in registry.iter() {
        let w = &r.workload;
        if w.service.is_empty() || w.namespace.is_empty() {
            continue;
        }
        services
            .entry((w.namespace.as_str(), w.service.as_str()))
            .or_default()
            .push(r);
    }
    let mut out = Vec::new();
    for ((namespace, service), regs) in services {
        let ports = service_ports(&regs);
        out.extend(typed(service_entry(namespace, service, &ports)));
        let mut names = BTreeSet::new();
        for r in regs.iter().filter(|r| r.healthy) {
            let Some(doc) = workload_entry(r, &ports, &mut names) else {
                continue;
            };
            out.extend(typed(doc));
        }
    }
    out
}

/// The ports of a service: every port its workloads declare, by number, first one wins.
fn service_ports(regs: &[&Registration]) -> Vec<PortInfo> {
    let mut ports: Vec<PortInfo> = Vec::new();
    for r in regs {
        for p in &r.workload.ports {
            if p.number == 0 || ports.iter().any(|q| q.number == p.number) {
                continue;
            }
            let protocol = if p.protocol.is_empty() {
                "HTTP".to_string()
            } else {
                p.protocol.to_ascii_uppercase()
            };
            let name = if p.name.is_empty() {
                format!("{}-{}", protocol.to_ascii_lowercase(), p.number)
            } else {
                p.name.clone()
            };
            ports.push(PortInfo {
                number: p.number,
                name,
                protocol,
                target_port: p.target_port,
            });
        }
    }
    ports
}

fn service_entry(namespace: &str, service: &str, ports: &[PortInfo]) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|p| json!({"number": p.number, "name": p.name, "protocol": p.protocol}))
        .collect();
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": service, "namespace": namespace},
        "spec": {
            "hosts": [format!("{service}.{namespace}.svc.cluster.local")],
            "location": "MESH_INTERNAL",
            "resolution": "STATIC",
            "ports": ports,
            "workloadSelector": {"labels": {"app": service}},
        },
    })
}

/// A healthy workload's WorkloadEntry; `None` without an address. A workload name already
/// used in the service gets the registration id appended.
fn workload_entry(
    r: &Registration,
    service_ports: &[PortInfo],
    names: &mut BTreeSet<String>,
) -> Option<Value> {
    let w: &WorkloadInfo = &r.workload;
    if w.address.is_empty() {
        return None;
    }
    let mut name = if w.name.is_empty() {
        format!("{}-{}", w.service, r.id)
    } else {
        w.name.clone()
    };
    if !names.insert(name.clone()) {
        name = format!("{name}-{}", r.id);
        names.insert(name.clone());
    }
    let mut ports = serde_json::Map::new();
    for p in &w.ports {
        let Some(sp) = service_ports.iter().find(|sp| sp.number == p.number) else {
            continue;
        };
        let target = if p.target_port == 0 {
            p.number
        } else {
            p.target_port
        };
        ports.insert(sp.name.clone(), json!(target));
    }
    let mut spec = json!({
        "address": w.address,
        "ports": ports,
        "labels": w.endpoint_labels(),
    });
    if !w.service_account.is_empty() {
        spec["serviceAccount"] = json!(w.service_account);
    }
    Some(json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "WorkloadEntry",
        "metadata": {"name": name, "namespace": w.namespace},
        "spec": spec,
    }))
}

/// Loads a synthesized document like user config; one that does not validate is logged and
/// dropped (a proxy announced something Istio would refuse).
fn typed(doc: Value) -> Option<StoredResource> {
    let text = doc.to_string();
    let loaded = load_text(ORIGIN, &text);
    if loaded.has_errors() {
        for d in loaded.diagnostics.iter().filter(|d| d.is_error()) {
            tracing::warn!(diagnostic = %d, "registered workload ignored: invalid synthesized resource");
        }
        return None;
    }
    let resource = loaded.resources.into_iter().next()?;
    Some(StoredResource::new(resource, Source::Registry))
}
