//! The service registry: every ServiceEntry host is a service with the entry's ports, and its
//! endpoints come from the entry's `resolution` — `STATIC` inline endpoints and selected
//! WorkloadEntries, `DNS`/`DNS_ROUND_ROBIN` names (the host itself when there are none), `NONE`
//! and `DYNAMIC_DNS` none (the proxy forwards to the original destination).
//!
//! Endpoints of WorkloadEntries with a `serviceAccount` carry its SPIFFE identity
//! (`spiffe://<trust domain>/ns/<namespace>/sa/<serviceAccount>`, the namespace being the
//! ServiceEntry's for inline endpoints and the WorkloadEntry's for selected ones); others have
//! none. Kubernetes workloads (Deployments, pods) are not registry sources here.
//!
//! ServiceEntry hosts are literal: they are never qualified. When two entries name the same
//! host, the first one by namespace/name defines it (Istio merges same-namespace entries).

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::host::{host_matches, qualify};
use crate::mesh::{Endpoint, EndpointAddress};
use crate::model::{Resolution, ServiceEntry, WorkloadEntry};

use super::inputs::{Inputs, Named};
use super::tls::spiffe_identity;

/// One port of a service.
#[derive(Clone)]
pub(super) struct ServicePort {
    pub number: u16,
    pub name: Option<String>,
    pub target_port: Option<u16>,
    /// `HTTP2`, `GRPC` or `GRPC-Web` (Istio's `IsHTTP2`): the proxy speaks HTTP/2 upstream.
    pub http2: bool,
}

/// A host the registry knows.
pub(super) struct Service {
    /// Lowercase, literal (`api.example.com`, `*.example.com`).
    pub host: String,
    /// The ServiceEntry's namespace.
    pub namespace: String,
    pub ports: Vec<ServicePort>,
    pub endpoints: Vec<Endpoint>,
    /// The ServiceEntry's `subjectAltNames`.
    pub subject_alt_names: Vec<String>,
}

/// Services by host.
pub(super) struct Registry {
    services: Vec<Service>,
    by_host: BTreeMap<String, usize>,
}

impl Registry {
    pub fn build(inputs: &Inputs<'_>) -> Registry {
        let mut registry = Registry {
            services: Vec::new(),
            by_host: BTreeMap::new(),
        };
        for se in &inputs.service_entries {
            let workloads = workloads(inputs, se);
            let ports = service_ports(se.spec);
            for host in &se.spec.hosts {
                let host = host.to_ascii_lowercase();
                if registry.by_host.contains_key(&host) {
                    continue;
                }
                let endpoints = endpoints(se.spec, &host, &ports, &workloads);
                registry
                    .by_host
                    .insert(host.clone(), registry.services.len());
                registry.services.push(Service {
                    host,
                    namespace: se.resource.namespace().to_string(),
                    ports: ports.clone(),
                    endpoints,
                    subject_alt_names: se.spec.subject_alt_names.clone(),
                });
            }
        }
        registry
    }

    /// Every service, in ServiceEntry order.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// The service registered under exactly `host`.
    pub fn get(&self, host: &str) -> Option<&Service> {
        self.by_host.get(host).and_then(|i| self.services.get(*i))
    }

    /// The service serving `host`: an exact entry, else the most specific wildcard entry.
    pub fn lookup(&self, host: &str) -> Option<&Service> {
        self.get(host).or_else(|| {
            self.services
                .iter()
                .filter(|s| s.host.starts_with('*') && host_matches(&s.host, host))
                .max_by_key(|s| s.host.len())
        })
    }

    /// A host as written in a VirtualService or DestinationRule of `namespace`, made canonical:
    /// lowercase; a ServiceEntry host stays literal; other short names become
    /// `name.<namespace>.svc.<domain>`.
    pub fn resolve(&self, host: &str, namespace: &str, domain: &str) -> String {
        let host = host.to_ascii_lowercase();
        if self.by_host.contains_key(&host) {
            host
        } else {
            qualify(&host, namespace, domain)
        }
    }
}

fn service_ports(se: &ServiceEntry) -> Vec<ServicePort> {
    se.ports
        .iter()
        .filter_map(|p| {
            Some(ServicePort {
                number: u16::try_from(p.number).ok()?,
                name: p.name.clone(),
                target_port: p
                    .target_port
                    .and_then(|t| u16::try_from(t).ok())
                    .filter(|t| *t > 0),
                http2: p.protocol.as_deref().is_some_and(is_http2),
            })
        })
        .collect()
}

/// `protocol.Parse(p).IsHTTP2()`: HTTP2, GRPC and GRPC-Web (any case).
fn is_http2(protocol: &str) -> bool {
    matches!(
        protocol.to_ascii_lowercase().as_str(),
        "http2" | "grpc" | "grpc-web"
    )
}

/// A WorkloadEntry that serves a ServiceEntry, inline or selected, with its effective labels
/// and the SPIFFE identity of its `serviceAccount`.
struct Workload<'a> {
    entry: &'a WorkloadEntry,
    labels: BTreeMap<String, String>,
    identity: Option<String>,
}

/// The entry's inline endpoints, then the WorkloadEntries it selects. An identity's namespace
/// is the namespace of the resource that declares the workload.
fn workloads<'a>(inputs: &Inputs<'a>, se: &Named<'a, ServiceEntry>) -> Vec<Workload<'a>> {
    let trust_domain = &inputs.opts.trust_domain;
    let namespace = se.resource.namespace();
    let inline = se.spec.endpoints.iter().map(|we| Workload {
        entry: we,
        labels: we.labels.clone(),
        identity: spiffe_identity(trust_domain, namespace, we.service_account.as_deref()),
    });
    inline.chain(selected_workloads(inputs, se)).collect()
}

/// Standalone WorkloadEntries of the entry's namespace whose labels include every label of its
/// `workloadSelector`, with their labels (spec labels, overridden by metadata labels).
fn selected_workloads<'a>(inputs: &Inputs<'a>, se: &Named<'a, ServiceEntry>) -> Vec<Workload<'a>> {
    let Some(selector) = &se.spec.workload_selector else {
        return Vec::new();
    };
    let wanted = selector.labels.clone().unwrap_or_default();
    let trust_domain = &inputs.opts.trust_domain;
    inputs
        .workload_entries
        .iter()
        .filter(|we| we.resource.namespace() == se.resource.namespace())
        .map(|we| {
            let mut labels = we.spec.labels.clone();
            labels.extend(we.resource.meta.labels.clone());
            Workload {
                entry: we.spec,
                labels,
                identity: spiffe_identity(
                    trust_domain,
                    we.resource.namespace(),
                    we.spec.service_account.as_deref(),
                ),
            }
        })
        .filter(|w| wanted.iter().all(|(k, v)| w.labels.get(k) == Some(v)))
        .collect()
}

fn endpoints(
    se: &ServiceEntry,
    host: &str,
    ports: &[ServicePort],
    workloads: &[Workload<'_>],
) -> Vec<Endpoint> {
    let workload_endpoints = || {
        workloads
            .iter()
            .filter_map(|w| workload_endpoint(w, ports))
            .collect::<Vec<_>>()
    };
    match se.resolution.unwrap_or(Resolution::None) {
        Resolution::None | Resolution::DynamicDns => Vec::new(),
        Resolution::Static => workload_endpoints(),
        Resolution::Dns | Resolution::DnsRoundRobin => {
            if workloads.is_empty() {
                host_endpoint(host, ports).into_iter().collect()
            } else {
                workload_endpoints()
            }
        }
    }
}

/// The service port → endpoint port map: the workload's port of the same name, else the
/// service port's `targetPort`, else the service port.
fn port_map(named: &BTreeMap<String, i64>, ports: &[ServicePort]) -> BTreeMap<u16, u16> {
    ports
        .iter()
        .map(|p| {
            let by_name = p
                .name
                .as_ref()
                .and_then(|n| named.get(n))
                .and_then(|n| u16::try_from(*n).ok());
            (p.number, by_name.or(p.target_port).unwrap_or(p.number))
        })
        .collect()
}

/// A WorkloadEntry as an endpoint. Unix socket addresses are not dialable by the proxy and are
/// skipped, as are entries without an address.
fn workload_endpoint(w: &Workload<'_>, ports: &[ServicePort]) -> Option<Endpoint> {
    let we = w.entry;
    let address = we.address.as_deref().filter(|a| !a.is_empty())?;
    if address.starts_with("unix://") {
        return None;
    }
    let address = match address.parse::<IpAddr>() {
        Ok(ip) => EndpointAddress::Ip(ip),
        Err(_) => EndpointAddress::Dns(address.to_ascii_lowercase()),
    };
    Some(Endpoint {
        address,
        ports: port_map(&we.ports, ports),
        labels: w.labels.clone(),
        weight: we
            .weight
            .and_then(|w| u32::try_from(w).ok())
            .filter(|w| *w > 0)
            .unwrap_or(1),
        identity: w.identity.clone(),
    })
}

/// `resolution: DNS` without endpoints: the host itself, resolved when connecting. One endpoint
/// carries every port (`targetPort` or the port itself); wildcard hosts have none.
fn host_endpoint(host: &str, ports: &[ServicePort]) -> Option<Endpoint> {
    if host.contains('*') {
        return None;
    }
    Some(Endpoint {
        address: EndpointAddress::Dns(host.to_string()),
        ports: port_map(&BTreeMap::new(), ports),
        labels: BTreeMap::new(),
        weight: 1,
        identity: None,
    })
}
