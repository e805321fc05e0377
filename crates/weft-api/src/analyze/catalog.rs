//! The catalog: what the analyzed inputs define, indexed for the analyzers — services (by
//! fully qualified host), their workloads' labels, DestinationRules by host, PeerAuthentications.

use std::collections::BTreeMap;

use crate::host::{host_matches, qualify};
use crate::load::Loaded;
use crate::model::{DestinationRule, PeerAuthentication, ServiceEntry, VirtualService};
use crate::resource::{Resource, Spec};

use super::CLUSTER_DOMAIN;

/// Labels of one known workload.
pub type Labels = BTreeMap<String, String>;

/// A service the inputs define, with the workloads known to back it.
#[derive(Debug, Clone)]
pub struct KnownService {
    /// Fully qualified host, or a `*.suffix` pattern for wildcard ServiceEntries.
    pub host: String,
    /// Namespace the service lives in (where its workloads' PeerAuthentication applies).
    pub namespace: String,
    pub workloads: Vec<Labels>,
}

/// Everything the analyzers look things up in.
pub struct Catalog<'a> {
    pub resources: &'a [Resource],
    pub services: Vec<KnownService>,
}

impl<'a> Catalog<'a> {
    pub fn build(loaded: &'a Loaded) -> Catalog<'a> {
        let mut services = Vec::new();
        for r in &loaded.resources {
            match &r.spec {
                Spec::ServiceEntry(se) => {
                    services.extend(service_entry_services(se, r.namespace()))
                }
                Spec::WorkloadEntry(we) => {
                    if let Some(app) = we
                        .labels
                        .get("app")
                        .or_else(|| we.labels.get("service.istio.io/canonical-name"))
                    {
                        add_workload(
                            &mut services,
                            &qualify(app, r.namespace(), CLUSTER_DOMAIN),
                            r.namespace(),
                            we.labels.clone(),
                        );
                    }
                }
                _ => {}
            }
        }
        for svc in loaded.platform.iter().filter(|p| p.kind == "Service") {
            let host = qualify(&svc.name, &svc.namespace, CLUSTER_DOMAIN);
            add_service(&mut services, &host, &svc.namespace);
            let selected = loaded.platform.iter().filter(|w| {
                w.kind != "Service"
                    && w.namespace == svc.namespace
                    && !svc.selector.is_empty()
                    && svc
                        .selector
                        .iter()
                        .all(|(k, v)| w.pod_labels.get(k) == Some(v))
            });
            for w in selected {
                add_workload(&mut services, &host, &svc.namespace, w.pod_labels.clone());
            }
        }
        // Selectors of ServiceEntries pick WorkloadEntries and pods in their namespace.
        for r in &loaded.resources {
            if let Spec::ServiceEntry(se) = &r.spec {
                let Some(sel) = se
                    .workload_selector
                    .as_ref()
                    .and_then(|s| s.labels.as_ref())
                else {
                    continue;
                };
                let picked = workload_labels_in(loaded, r.namespace())
                    .into_iter()
                    .filter(|l| sel.iter().all(|(k, v)| l.get(k) == Some(v)));
                let picked: Vec<Labels> = picked.collect();
                for host in &se.hosts {
                    for labels in &picked {
                        add_workload(
                            &mut services,
                            &qualify(host, r.namespace(), CLUSTER_DOMAIN),
                            r.namespace(),
                            labels.clone(),
                        );
                    }
                }
            }
        }
        Catalog {
            resources: &loaded.resources,
            services,
        }
    }

    /// The known service a (qualified) host names, if any.
    pub fn service(&self, host: &str) -> Option<&KnownService> {
        self.services
            .iter()
            .find(|s| s.host == host)
            .or_else(|| self.services.iter().find(|s| host_matches(&s.host, host)))
    }

    pub fn virtual_services(&self) -> impl Iterator<Item = (&'a Resource, &'a VirtualService)> {
        self.resources.iter().filter_map(|r| match &r.spec {
            Spec::VirtualService(vs) => Some((r, vs.as_ref())),
            _ => None,
        })
    }

    pub fn destination_rules(&self) -> impl Iterator<Item = (&'a Resource, &'a DestinationRule)> {
        self.resources.iter().filter_map(|r| match &r.spec {
            Spec::DestinationRule(dr) => Some((r, dr.as_ref())),
            _ => None,
        })
    }

    pub fn peer_authentications(
        &self,
    ) -> impl Iterator<Item = (&'a Resource, &'a PeerAuthentication)> {
        self.resources.iter().filter_map(|r| match &r.spec {
            Spec::PeerAuthentication(pa) => Some((r, pa.as_ref())),
            _ => None,
        })
    }

    /// DestinationRules whose host covers the qualified `host`.
    pub fn rules_for(&self, host: &str) -> Vec<(&'a Resource, &'a DestinationRule)> {
        self.destination_rules()
            .filter(|(r, dr)| host_matches(&qualify(&dr.host, r.namespace(), CLUSTER_DOMAIN), host))
            .collect()
    }
}

fn workload_labels_in(loaded: &Loaded, namespace: &str) -> Vec<Labels> {
    let entries = loaded
        .resources
        .iter()
        .filter(|r| r.namespace() == namespace)
        .filter_map(|r| match &r.spec {
            Spec::WorkloadEntry(we) => Some(we.labels.clone()),
            _ => None,
        });
    let pods = loaded
        .platform
        .iter()
        .filter(|p| p.kind != "Service" && p.namespace == namespace)
        .map(|p| p.pod_labels.clone());
    entries.chain(pods).collect()
}

fn service_entry_services(se: &ServiceEntry, namespace: &str) -> Vec<KnownService> {
    se.hosts
        .iter()
        .map(|h| KnownService {
            host: qualify(h, namespace, CLUSTER_DOMAIN),
            namespace: namespace.to_string(),
            workloads: se.endpoints.iter().map(|e| e.labels.clone()).collect(),
        })
        .collect()
}

fn add_service(services: &mut Vec<KnownService>, host: &str, namespace: &str) -> usize {
    if let Some(i) = services.iter().position(|s| s.host == host) {
        return i;
    }
    services.push(KnownService {
        host: host.to_string(),
        namespace: namespace.to_string(),
        workloads: Vec::new(),
    });
    services.len() - 1
}

fn add_workload(services: &mut Vec<KnownService>, host: &str, namespace: &str, labels: Labels) {
    let i = add_service(services, host, namespace);
    if let Some(svc) = services.get_mut(i) {
        svc.workloads.push(labels);
    }
}
