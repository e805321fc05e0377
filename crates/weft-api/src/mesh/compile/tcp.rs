//! The TCP/TLS route table: each mesh VirtualService's `tls` and `tcp` routes, in order, as
//! compiled [`TlsRoute`]s and [`TcpRoute`]s, registered under the VirtualService's hosts (made
//! canonical and aliased exactly as virtual hosts are, see [`super::hosts`]).
//!
//! Destination hosts are resolved relative to the VirtualService's namespace and weights are
//! relative, as for HTTP routes. A match block whose selectors exclude this proxy is dropped; a
//! route whose blocks all exclude it, or that cannot be compiled (a subnet or port validation
//! would have rejected), is dropped rather than widened.

use crate::mesh::{IpNet, L4Match, TcpRoute, TcpRouteSet, TlsMatch, TlsRoute, WeightedDestination};
use crate::model::{self, L4MatchAttributes, RouteDestination, TlsMatchAttributes, VirtualService};

use super::actions::{cluster_key, relative_weight};
use super::hosts::{HostIndex, Index};
use super::inputs::{Inputs, Named};
use super::matchers::applies_to_proxy;
use super::registry::Registry;
use super::routes::Skip;

/// What the table yields: the host index and the route sets it points into.
pub(super) type TcpTable = (Index, Vec<TcpRouteSet>);

/// The TCP/TLS routes of every mesh VirtualService, by host. The first VirtualService (by
/// namespace/name) to claim a host keeps it; one with no applicable TCP or TLS route claims
/// nothing.
pub(super) fn build(inputs: &Inputs<'_>, registry: &Registry) -> TcpTable {
    let mut index = HostIndex::new(inputs.opts);
    let mut sets = Vec::new();
    for vs in inputs.mesh_virtual_services() {
        let tls = tls_routes(inputs, registry, vs);
        let tcp = tcp_routes(inputs, registry, vs);
        if tls.is_empty() && tcp.is_empty() {
            continue;
        }
        let name = vs.resource.qualified_name();
        for host in &vs.spec.hosts {
            let canonical = registry.resolve(host, vs.resource.namespace(), &inputs.opts.domain);
            if index.claim(&canonical, sets.len()) {
                sets.push(TcpRouteSet {
                    name: canonical,
                    virtual_service: name.clone(),
                    tls: tls.clone(),
                    tcp: tcp.clone(),
                });
            }
        }
    }
    (index.finish(), sets)
}

fn tcp_routes(
    inputs: &Inputs<'_>,
    registry: &Registry,
    vs: &Named<'_, VirtualService>,
) -> Vec<TcpRoute> {
    let spec: &VirtualService = vs.spec;
    spec.tcp
        .iter()
        .enumerate()
        .filter_map(|(i, route)| {
            Some(TcpRoute {
                name: format!("{}.tcp.{i}", vs.resource.name()),
                matches: blocks(&route.matches, |m| l4_match(m, inputs)).ok()?,
                destinations: destinations(&route.route, inputs, registry, vs).ok()?,
            })
        })
        .collect()
}

fn tls_routes(
    inputs: &Inputs<'_>,
    registry: &Registry,
    vs: &Named<'_, VirtualService>,
) -> Vec<TlsRoute> {
    let spec: &VirtualService = vs.spec;
    spec.tls
        .iter()
        .enumerate()
        .filter_map(|(i, route)| {
            let matches = blocks(&route.matches, |m| tls_match(m, inputs)).ok()?;
            // A TLS route without SNI conditions cannot match anything.
            if matches.is_empty() {
                return None;
            }
            Some(TlsRoute {
                name: format!("{}.tls.{i}", vs.resource.name()),
                matches,
                destinations: destinations(&route.route, inputs, registry, vs).ok()?,
            })
        })
        .collect()
}

/// The OR of a route's match blocks: `Ok(None)` from `compile` drops a block that does not
/// apply to this proxy. No blocks match everything; blocks that all exclude the proxy exclude
/// the route.
fn blocks<A, M>(
    attrs: &[A],
    compile: impl Fn(&A) -> Result<Option<M>, Skip>,
) -> Result<Vec<M>, Skip> {
    if attrs.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for a in attrs {
        if let Some(m) = compile(a)? {
            out.push(m);
        }
    }
    if out.is_empty() { Err(Skip) } else { Ok(out) }
}

fn l4_match(m: &L4MatchAttributes, inputs: &Inputs<'_>) -> Result<Option<L4Match>, Skip> {
    let selected = applies_to_proxy(
        m.source_namespace.as_deref(),
        &m.source_labels,
        &m.gateways,
        inputs.opts,
    );
    if !selected {
        return Ok(None);
    }
    let source_subnet = match m.source_subnet.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(IpNet::parse(s).ok_or(Skip)?),
        None => None,
    };
    Ok(Some(L4Match {
        port: port(m.port)?,
        destination_subnets: subnets(&m.destination_subnets)?,
        source_subnet,
    }))
}

fn tls_match(m: &TlsMatchAttributes, inputs: &Inputs<'_>) -> Result<Option<TlsMatch>, Skip> {
    let selected = applies_to_proxy(
        m.source_namespace.as_deref(),
        &m.source_labels,
        &m.gateways,
        inputs.opts,
    );
    if !selected {
        return Ok(None);
    }
    if m.sni_hosts.is_empty() {
        return Err(Skip);
    }
    Ok(Some(TlsMatch {
        sni_hosts: m.sni_hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
        port: port(m.port)?,
        destination_subnets: subnets(&m.destination_subnets)?,
    }))
}

/// `0` or absent is any port.
fn port(port: Option<i64>) -> Result<Option<u16>, Skip> {
    match port.filter(|p| *p != 0) {
        Some(p) => u16::try_from(p).map(Some).map_err(|_| Skip),
        None => Ok(None),
    }
}

fn subnets(subnets: &[String]) -> Result<Vec<IpNet>, Skip> {
    subnets
        .iter()
        .map(|s| IpNet::parse(s).ok_or(Skip))
        .collect()
}

/// Weighted destinations with hosts resolved in the VirtualService's namespace. A route with
/// none is dropped.
fn destinations(
    routes: &[RouteDestination],
    inputs: &Inputs<'_>,
    registry: &Registry,
    vs: &Named<'_, VirtualService>,
) -> Result<Vec<WeightedDestination>, Skip> {
    let single = routes.len() == 1;
    let domain = &inputs.opts.domain;
    let out: Vec<WeightedDestination> = routes
        .iter()
        .filter_map(|r| {
            let mut d: model::Destination = r.destination.clone()?;
            d.host = registry.resolve(&d.host, vs.resource.namespace(), domain);
            Some(WeightedDestination {
                cluster: cluster_key(&d),
                weight: relative_weight(r.weight, single),
                headers: Default::default(),
            })
        })
        .collect();
    if out.is_empty() { Err(Skip) } else { Ok(out) }
}
