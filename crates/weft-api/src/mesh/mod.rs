//! The compiled mesh: what a proxy serves from, built once per config version from validated
//! resources and then only read. Request hosts map to virtual hosts, virtual hosts hold ordered
//! HTTP routes with compiled matchers, routes point at clusters (host + subset + port) that carry
//! their endpoints and traffic policy. TCP and TLS routes (`tcp`, `tls`) are kept per host in
//! their own table ([`TcpRouteSet`], see [`l4`]).
//!
//! Building is pure and synchronous (`compile`), so it is unit-tested without sockets; the proxy
//! swaps whole snapshots atomically.

mod compile;
mod l4;
mod matcher;
mod policy;
mod registry;
mod tls;

pub use compile::{CompileOptions, compile};
pub use l4::{ConnectionFacts, IpNet, L4Match, TcpRoute, TcpRouteSet, TlsMatch, TlsRoute};
pub use matcher::{HeaderMatcher, RequestFacts, RouteMatch, StringMatcher, query_value};
pub use policy::{
    ConnectionPool, ConsistentHashKey, LbPolicy, OutlierPolicy, RetryOn, RetryPolicy,
};
pub use registry::{Endpoint, EndpointAddress};
pub use tls::{TLS_MODE_LABEL, TlsFiles, UpstreamTls};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::resource::Resource;

/// Which upstream a route sends to: a service host, an optional DestinationRule subset and an
/// optional port. Rendered like Envoy's cluster names: `outbound|9080|v1|reviews.default.svc.cluster.local`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ClusterKey {
    pub host: String,
    pub subset: Option<String>,
    pub port: Option<u16>,
}

impl std::fmt::Display for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let port = self.port.map(|p| p.to_string()).unwrap_or_default();
        let subset = self.subset.as_deref().unwrap_or("");
        write!(f, "outbound|{port}|{subset}|{}", self.host)
    }
}

/// An upstream: endpoints plus the DestinationRule policy that applies to them.
#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub key: ClusterKey,
    /// Endpoints selected by the subset's labels (all of the service's without a subset).
    pub endpoints: Vec<Endpoint>,
    pub lb: LbPolicy,
    pub pool: ConnectionPool,
    pub outlier: Option<OutlierPolicy>,
    /// `true` when the subset was named by a route but no DestinationRule defines it: requests
    /// answer 503 with flag NC.
    pub undefined_subset: bool,
    /// Labels that identify the destination in metrics (`version`, `app`).
    pub version: Option<String>,
    /// The DestinationRule's `tls` for this cluster; `None` means auto mTLS (decided per
    /// endpoint by [`TLS_MODE_LABEL`]).
    pub tls: Option<UpstreamTls>,
    /// The ServiceEntry's `subjectAltNames`: expected server identities when an endpoint has
    /// no service account.
    pub subject_alt_names: Vec<String>,
}

impl ClusterKey {
    /// Istio's `BlackHoleCluster`: where REGISTRY_ONLY sends hosts the mesh does not know.
    pub fn blackhole() -> ClusterKey {
        ClusterKey {
            host: "BlackHoleCluster".into(),
            subset: None,
            port: None,
        }
    }
}

impl Cluster {
    /// Istio's `PassthroughCluster` for one destination: ALLOW_ANY forwards a host the mesh does
    /// not know to the host itself (an IP, or a name resolved when connecting) on `port`.
    pub fn passthrough(host: &str, port: u16) -> Cluster {
        let address = match host.parse() {
            Ok(ip) => EndpointAddress::Ip(ip),
            Err(_) => EndpointAddress::Dns(host.to_string()),
        };
        Cluster {
            key: ClusterKey {
                host: "PassthroughCluster".into(),
                subset: None,
                port: Some(port),
            },
            endpoints: vec![Endpoint {
                address,
                ports: [(port, port)].into(),
                labels: Default::default(),
                weight: 1,
                identity: None,
            }],
            lb: LbPolicy::Passthrough,
            pool: ConnectionPool::default(),
            outlier: None,
            undefined_subset: false,
            version: None,
            tls: None,
            subject_alt_names: Vec::new(),
        }
    }
}

/// The compiled config a proxy serves from.
#[derive(Debug, Clone, Serialize)]
pub struct MeshConfig {
    pub version: u64,
    /// Exact request hosts (with every alias: `name`, `name.ns`, `name.ns.svc`, FQDN) → index
    /// into `virtual_hosts`.
    #[serde(skip)]
    pub exact_hosts: BTreeMap<String, usize>,
    /// `*.suffix` patterns, longest first, and a bare `*` last.
    #[serde(skip)]
    pub wildcard_hosts: Vec<(String, usize)>,
    pub virtual_hosts: Vec<VirtualHost>,
    #[serde(serialize_with = "clusters_as_list")]
    pub clusters: BTreeMap<ClusterKey, Arc<Cluster>>,
    pub outbound_policy: OutboundPolicy,
    /// Append `-shadow` to the Host of mirrored requests (weft's default, as Istio did until
    /// 1.22; the mesh setting `--no-shadow-suffix` turns it off).
    pub shadow_suffix: bool,
    /// TCP/TLS hosts (with aliases, as for `exact_hosts`) → index into `tcp_routes`.
    #[serde(skip)]
    pub tcp_exact_hosts: BTreeMap<String, usize>,
    /// `*.suffix` TCP/TLS hosts, longest first, and a bare `*` last.
    #[serde(skip)]
    pub tcp_wildcard_hosts: Vec<(String, usize)>,
    /// The `tcp` and `tls` routes of mesh VirtualServices, one set per host.
    pub tcp_routes: Vec<TcpRouteSet>,
    /// The resources this snapshot was built from (served by `/config_dump`).
    #[serde(skip)]
    pub resources: Vec<Resource>,
}

fn clusters_as_list<S: serde::Serializer>(
    clusters: &BTreeMap<ClusterKey, Arc<Cluster>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(clusters.values())
}

/// What happens to requests for hosts the mesh does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum OutboundPolicy {
    /// Forward to the host as the request names it (Istio's default).
    #[default]
    AllowAny,
    /// Answer 502 (Istio: BlackHoleCluster).
    RegistryOnly,
}

impl MeshConfig {
    /// The virtual host serving a request authority (`host` or `host:port`).
    pub fn virtual_host(&self, authority: &str) -> Option<&VirtualHost> {
        let i = host_index(
            &self.exact_hosts,
            &self.wildcard_hosts,
            strip_port(authority),
        )?;
        self.virtual_hosts.get(i)
    }

    /// The TCP/TLS routes for connections to `host` (no port) on `port`: the set of the
    /// VirtualService routing the host (exact names and aliases first, then wildcards), if any
    /// of its routes can apply to `port`.
    pub fn tcp_route(&self, host: &str, port: u16) -> Option<&TcpRouteSet> {
        let i = host_index(&self.tcp_exact_hosts, &self.tcp_wildcard_hosts, host)?;
        self.tcp_routes.get(i).filter(|set| set.serves_port(port))
    }
}

/// The index `host` maps to: an exact entry, else the first (longest) matching wildcard.
/// Lookups ignore case and a trailing dot.
fn host_index(
    exact: &BTreeMap<String, usize>,
    wildcard: &[(String, usize)],
    host: &str,
) -> Option<usize> {
    let host = host.to_ascii_lowercase();
    let host = host.trim_end_matches('.');
    if let Some(i) = exact.get(host) {
        return Some(*i);
    }
    wildcard
        .iter()
        .find(|(pattern, _)| crate::host::host_matches(pattern, host))
        .map(|(_, i)| *i)
}

/// `host:port` → `host` (IPv6 literals in brackets keep their brackets off).
pub fn strip_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => authority,
    }
}

/// All routes for one host, in order.
#[derive(Debug, Clone, Serialize)]
pub struct VirtualHost {
    /// The canonical host (FQDN for services, literal for ServiceEntry hosts).
    pub name: String,
    /// `namespace/name` of the VirtualService, if one routes this host.
    pub virtual_service: Option<String>,
    pub routes: Vec<HttpRoute>,
}

/// One compiled HTTP route.
#[derive(Debug, Clone, Serialize)]
pub struct HttpRoute {
    /// Route name for logs (`route_name`): the route's `name`, else `<vs-name>.<index>` or
    /// `default` for the implicit route of a service without a VirtualService.
    pub name: String,
    /// OR of match blocks; empty matches everything.
    pub matches: Vec<RouteMatch>,
    pub action: RouteAction,
    pub timeout: Option<Duration>,
    pub retry: RetryPolicy,
    pub fault: Option<Fault>,
    pub headers: HeaderOps,
    pub mirrors: Vec<Mirror>,
    pub cors: Option<Cors>,
}

/// What a matched route does.
#[derive(Debug, Clone, Serialize)]
pub enum RouteAction {
    Forward {
        destinations: Vec<WeightedDestination>,
        rewrite: Option<Rewrite>,
    },
    Redirect(Redirect),
    DirectResponse {
        status: u16,
        body: Option<Vec<u8>>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct WeightedDestination {
    pub cluster: ClusterKey,
    pub weight: u32,
    pub headers: HeaderOps,
}

/// Request and response header operations.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HeaderOps {
    pub request: HeaderEdits,
    pub response: HeaderEdits,
}

/// `set` overwrites, `add` appends, `remove` deletes (names lowercase).
#[derive(Debug, Clone, Default, Serialize)]
pub struct HeaderEdits {
    pub set: Vec<(String, String)>,
    pub add: Vec<(String, String)>,
    pub remove: Vec<String>,
}

impl HeaderEdits {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Rewrite {
    /// Replaces the matched prefix (prefix matches) or the whole path.
    pub uri: Option<String>,
    #[serde(skip)]
    pub uri_regex: Option<(regex::Regex, String)>,
    pub authority: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Redirect {
    pub uri: Option<String>,
    pub authority: Option<String>,
    pub port: Option<RedirectPort>,
    pub scheme: Option<String>,
    /// Default 301.
    pub code: u16,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub enum RedirectPort {
    Fixed(u16),
    FromProtocolDefault,
    FromRequestPort,
}

/// Fault injection: an optional delay and an optional abort, each for a share of requests.
#[derive(Debug, Clone, Serialize)]
pub struct Fault {
    pub delay: Option<(Duration, f64)>,
    pub abort: Option<(Abort, f64)>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub enum Abort {
    Http(u16),
    /// gRPC status code number.
    Grpc(u32),
}

#[derive(Debug, Clone, Serialize)]
pub struct Mirror {
    pub cluster: ClusterKey,
    /// Share of requests mirrored, 0..=100.
    pub percent: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cors {
    #[serde(skip)]
    pub allow_origins: Vec<StringMatcher>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<Duration>,
    pub allow_credentials: bool,
    /// `false`: unmatched preflights go upstream (FORWARD, the default).
    pub ignore_unmatched_preflights: bool,
}
