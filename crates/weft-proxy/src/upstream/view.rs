//! A cluster's endpoints as the balancer sees them for one service port: the address to dial,
//! the weight, the endpoint's runtime state (kept across config versions), and the tables the
//! balancer needs, built once per config version.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use http::uri::Authority;
use weft_api::mesh::{Cluster, Endpoint, EndpointAddress, LbPolicy};

use super::balancer;
use super::hash::Ring;
use super::outlier::HostOutlier;
use super::security::{TargetTls, target_tls};

/// One endpoint's runtime state: requests in flight (for least-request) and outlier detection.
#[derive(Debug, Default)]
pub(super) struct HostStats {
    pub(super) active: AtomicU64,
    pub(super) outlier: HostOutlier,
}

impl HostStats {
    pub(super) fn active(&self) -> u64 {
        self.active.load(Ordering::Acquire)
    }
}

/// One endpoint the balancer may pick.
#[derive(Debug)]
pub(super) struct Target {
    /// `ip:port` (`[v6]:port`, or `name:port` for DNS endpoints): logs, exclusions, state key.
    pub(super) authority: String,
    /// The same, parsed, for the request URI.
    pub(super) uri_authority: Authority,
    /// At least 1 (Envoy's minimum endpoint weight).
    pub(super) weight: u32,
    pub(super) host: Arc<HostStats>,
    /// Plaintext, mesh mTLS or TLS origination.
    pub(super) tls: TargetTls,
}

/// The endpoints of one cluster for one service port, with the balancing tables.
#[derive(Debug, Default)]
pub(super) struct View {
    pub(super) targets: Vec<Target>,
    /// Whether every target has the same weight (plain round robin, random and P2C then).
    pub(super) equal_weights: bool,
    /// Running weight totals, for weighted random draws (empty with equal weights).
    pub(super) cumulative: Vec<u64>,
    /// The weighted round-robin order (empty with equal weights).
    pub(super) schedule: Vec<usize>,
    /// The consistent-hash ring (only for `ConsistentHash` clusters).
    pub(super) ring: Option<Ring>,
}

impl View {
    /// Builds the view of `cluster` for `service_port`; endpoint state comes from `registry`.
    pub(super) fn build(
        cluster: &Cluster,
        service_port: Option<u16>,
        registry: &HostRegistry,
    ) -> View {
        let dialable: Vec<(String, Authority, u32, TargetTls)> = cluster
            .endpoints
            .iter()
            .filter_map(|e| dialable(cluster, e, service_port))
            .collect();
        let hosts = registry.hosts(cluster, dialable.iter().map(|(a, _, _, _)| a.as_str()));
        let targets: Vec<Target> = dialable
            .into_iter()
            .zip(hosts)
            .map(|((authority, uri_authority, weight, tls), host)| Target {
                authority,
                uri_authority,
                weight,
                host,
                tls,
            })
            .collect();
        let weights: Vec<u32> = targets.iter().map(|t| t.weight).collect();
        let equal_weights = weights.windows(2).all(|w| w[0] == w[1]);
        let (cumulative, schedule) = if equal_weights {
            (Vec::new(), Vec::new())
        } else {
            let cumulative = weights
                .iter()
                .scan(0u64, |sum, w| {
                    *sum += u64::from(*w);
                    Some(*sum)
                })
                .collect();
            (cumulative, balancer::weighted_schedule(&weights))
        };
        let ring = matches!(cluster.lb, LbPolicy::ConsistentHash(_)).then(|| {
            let points: Vec<(&str, u32)> = targets
                .iter()
                .map(|t| (t.authority.as_str(), t.weight))
                .collect();
            Ring::build(&points)
        });
        View {
            targets,
            equal_weights,
            cumulative,
            schedule,
            ring,
        }
    }
}

/// The authority to dial for `endpoint` and its weight, or `None` when it serves no port for
/// `service_port` (or its address cannot be written as an authority).
///
/// Without an entry for the service port, an endpoint of a cluster that names no port and
/// that serves exactly one port is dialed on that port.
fn dialable(
    cluster: &Cluster,
    endpoint: &Endpoint,
    service_port: Option<u16>,
) -> Option<(String, Authority, u32, TargetTls)> {
    let port = endpoint.port_for(service_port).or_else(|| {
        (cluster.key.port.is_none() && endpoint.ports.len() == 1)
            .then(|| endpoint.port_for(None))
            .flatten()
    })?;
    let authority = authority(&endpoint.address, port);
    match Authority::try_from(authority.as_str()) {
        Ok(uri_authority) => Some((
            authority,
            uri_authority,
            endpoint.weight.max(1),
            target_tls(cluster, endpoint),
        )),
        Err(err) => {
            tracing::warn!(cluster = %cluster.key, %authority, %err, "endpoint skipped: not a valid authority");
            None
        }
    }
}

/// `ip:port`, `[v6]:port` or `name:port`.
fn authority(address: &EndpointAddress, port: u16) -> String {
    match address {
        EndpointAddress::Ip(ip) => SocketAddr::new(*ip, port).to_string(),
        EndpointAddress::Dns(name) => format!("{name}:{port}"),
    }
}

/// Endpoint state by authority, shared by every view of a cluster so that it survives config
/// versions while the endpoint stays. Locked only while a view is built.
#[derive(Debug, Default)]
pub(super) struct HostRegistry {
    hosts: Mutex<HashMap<String, Arc<HostStats>>>,
}

impl HostRegistry {
    /// The state of each authority (created when new). Forgets the state of endpoints that
    /// `cluster` no longer has (on any port) and that no view or request refers to any more.
    fn hosts<'a>(
        &self,
        cluster: &Cluster,
        authorities: impl Iterator<Item = &'a str>,
    ) -> Vec<Arc<HostStats>> {
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        let picked: Vec<Arc<HostStats>> = authorities
            .map(|a| hosts.entry(a.to_string()).or_default().clone())
            .collect();
        let current: HashSet<String> = cluster
            .endpoints
            .iter()
            .flat_map(|e| e.ports.values().map(|port| authority(&e.address, *port)))
            .collect();
        hosts.retain(|a, host| current.contains(a) || Arc::strong_count(host) > 1);
        picked
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use weft_api::mesh::{ClusterKey, ConnectionPool};

    use super::*;

    fn endpoint(address: EndpointAddress, ports: &[(u16, u16)], weight: u32) -> Endpoint {
        Endpoint {
            address,
            ports: ports.iter().copied().collect(),
            labels: BTreeMap::new(),
            weight,
            identity: None,
        }
    }

    fn cluster(port: Option<u16>, endpoints: Vec<Endpoint>) -> Cluster {
        Cluster {
            key: ClusterKey {
                host: "svc".into(),
                subset: None,
                port,
            },
            endpoints,
            lb: LbPolicy::RoundRobin,
            pool: ConnectionPool::default(),
            outlier: None,
            undefined_subset: false,
            version: None,
            tls: None,
            subject_alt_names: Vec::new(),
        }
    }

    #[test]
    fn authorities_ports_and_weights() {
        let v4 = EndpointAddress::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        let v6 = EndpointAddress::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST));
        let c = cluster(
            Some(80),
            vec![
                endpoint(v4, &[(80, 8080)], 0),
                endpoint(v6, &[(80, 9090)], 3),
                endpoint(EndpointAddress::Dns("db.example".into()), &[(80, 80)], 1),
                endpoint(EndpointAddress::Dns("other".into()), &[(443, 443)], 1),
            ],
        );
        let view = View::build(&c, Some(80), &HostRegistry::default());
        let got: Vec<(&str, u32)> = view
            .targets
            .iter()
            .map(|t| (t.authority.as_str(), t.weight))
            .collect();
        assert_eq!(
            got,
            [
                ("10.0.0.1:8080", 1),
                ("[::1]:9090", 3),
                ("db.example:80", 1)
            ]
        );
        assert!(!view.equal_weights);
        assert_eq!(view.cumulative, [1, 4, 5]);
        assert_eq!(view.schedule.len(), 5);
    }

    #[test]
    fn single_port_endpoints_of_portless_clusters() {
        let ip = EndpointAddress::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let c = cluster(None, vec![endpoint(ip, &[(80, 8080)], 1)]);
        let view = View::build(&c, Some(15001), &HostRegistry::default());
        assert_eq!(view.targets[0].authority, "127.0.0.1:8080");
        let mut c = c;
        c.key.port = Some(80);
        assert!(
            View::build(&c, Some(15001), &HostRegistry::default())
                .targets
                .is_empty()
        );
    }

    #[test]
    fn state_is_shared_by_authority_and_forgotten_when_unused() {
        let registry = HostRegistry::default();
        let ip = EndpointAddress::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let c = cluster(Some(80), vec![endpoint(ip, &[(80, 8080)], 1)]);
        let first = View::build(&c, Some(80), &registry);
        let second = View::build(&c, Some(80), &registry);
        assert!(Arc::ptr_eq(&first.targets[0].host, &second.targets[0].host));
        drop((first, second));
        let empty = cluster(Some(80), Vec::new());
        let _ = View::build(&empty, Some(80), &registry);
        assert!(registry.hosts.lock().unwrap().is_empty());
    }
}
