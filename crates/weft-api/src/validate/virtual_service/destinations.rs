//! Route destinations and weights (relative: none negative, not all zero), and the TCP and TLS
//! routes that carry them.

use super::http::check_headers;
use crate::diagnostic::{FieldPath, Findings};
use crate::host::host_subset_of;
use crate::model::*;
use crate::validate::common::*;

/// Destinations with weights: none negative, and not all zero when there are several.
pub(super) fn check_http_destinations(
    dests: &[HttpRouteDestination],
    gateway_only: bool,
    path: &FieldPath,
    out: &mut Findings,
) {
    let mut total = 0i64;
    for (i, d) in dests.iter().enumerate() {
        let p = path.index(i);
        match &d.destination {
            None => out.error(&p, "destination is required"),
            Some(dest) if !gateway_only => check_destination(out, &p.field("destination"), dest),
            Some(_) => {}
        }
        if let Some(h) = &d.headers {
            check_headers(h, &p.field("headers"), out);
        }
        total += check_weight(d.weight, &p, out);
    }
    if dests.len() > 1 && total == 0 {
        out.error(path, "total destination weight = 0");
    }
}

pub(super) fn check_route_destinations(
    dests: &[RouteDestination],
    path: &FieldPath,
    out: &mut Findings,
) {
    let mut total = 0i64;
    for (i, d) in dests.iter().enumerate() {
        let p = path.index(i);
        match &d.destination {
            None => out.error(&p, "destination is required"),
            Some(dest) => check_destination(out, &p.field("destination"), dest),
        }
        total += check_weight(d.weight, &p, out);
    }
    if dests.len() > 1 && total == 0 {
        out.error(path, "total destination weight = 0");
    }
}

pub(super) fn check_weight(weight: Option<i64>, path: &FieldPath, out: &mut Findings) -> i64 {
    let w = weight.unwrap_or(0);
    if w < 0 {
        out.error(path.field("weight"), format!("weight {w} < 0"));
        return 0;
    }
    if w > i64::from(i32::MAX) {
        out.error(path.field("weight"), format!("weight {w} is out of range"));
        return 0;
    }
    w
}

pub(super) fn check_tls_route(
    route: &TlsRoute,
    vs: &VirtualService,
    path: &FieldPath,
    out: &mut Findings,
) {
    if route.matches.is_empty() {
        out.error(
            path.field("match"),
            "TLS route must have at least one match condition",
        );
    }
    for (i, m) in route.matches.iter().enumerate() {
        check_tls_match(m, vs, &path.field("match").index(i), out);
    }
    if route.route.is_empty() {
        out.error(path.field("route"), "TLS route is required");
    }
    check_route_destinations(&route.route, &path.field("route"), out);
}

pub(super) fn check_tls_match(
    m: &TlsMatchAttributes,
    vs: &VirtualService,
    path: &FieldPath,
    out: &mut Findings,
) {
    if m.sni_hosts.is_empty() {
        out.error(
            path.field("sniHosts"),
            "TLS match must have at least one SNI host",
        );
    }
    for (i, sni) in m.sni_hosts.iter().enumerate() {
        let p = path.field("sniHosts").index(i);
        if let Err(e) = wildcard_domain(sni) {
            if is_ip(sni) {
                out.warn(&p, format!("using an IP address ({sni:?}) goes against SNI spec and most clients do not support this"));
            } else {
                out.error(&p, e);
            }
            continue;
        }
        if !vs.hosts.iter().any(|h| host_subset_of(sni, h)) {
            out.error(
                &p,
                format!("SNI host {sni:?} is not a compatible subset of any of the virtual service hosts: [{}]", vs.hosts.join(", ")),
            );
        }
    }
    check_l4_common(
        &m.destination_subnets,
        m.port,
        &m.source_labels,
        &m.gateways,
        path,
        out,
    );
}

pub(super) fn check_tcp_route(route: &TcpRoute, path: &FieldPath, out: &mut Findings) {
    for (i, m) in route.matches.iter().enumerate() {
        check_l4_match(m, &path.field("match").index(i), out);
    }
    if route.route.is_empty() {
        out.error(path.field("route"), "TCP route is required");
    }
    check_route_destinations(&route.route, &path.field("route"), out);
}

pub(super) fn check_l4_match(m: &L4MatchAttributes, path: &FieldPath, out: &mut Findings) {
    check_l4_common(
        &m.destination_subnets,
        m.port,
        &m.source_labels,
        &m.gateways,
        path,
        out,
    );
    if let Some(s) = m.source_subnet.as_deref().filter(|s| !s.is_empty())
        && let Err(e) = ip_subnet(s)
    {
        out.error(path.field("sourceSubnet"), e);
    }
}

pub(super) fn check_l4_common(
    subnets: &[String],
    port: Option<i64>,
    labels: &std::collections::BTreeMap<String, String>,
    gateways: &[String],
    path: &FieldPath,
    out: &mut Findings,
) {
    for (i, s) in subnets.iter().enumerate() {
        if let Err(e) = ip_subnet(s) {
            out.error(path.field("destinationSubnets").index(i), e);
        }
    }
    if let Some(port) = port.filter(|p| *p != 0) {
        check_port(out, &path.field("port"), port);
    }
    check_labels(out, &path.field("sourceLabels"), labels);
    check_gateway_names(out, &path.field("gateways"), gateways);
}
