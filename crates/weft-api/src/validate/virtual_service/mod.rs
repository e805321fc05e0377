//! VirtualService validation: hosts and gateways, then every HTTP, TLS and TCP route. Route
//! actions (matches, retries, faults, mirrors, rewrites, redirects, headers, CORS) are checked in
//! [`http`]; destinations, weights and the TCP/TLS routes in [`destinations`].

mod destinations;
mod http;

use crate::diagnostic::{FieldPath, Findings};
use crate::host::hosts_overlap;
use crate::model::*;
use crate::validate::common::*;

use destinations::{check_http_destinations, check_tcp_route, check_tls_route};
use http::{
    check_authority_rewrite, check_cors, check_direct_response, check_fault, check_headers,
    check_http_match, check_mirrors, check_redirect, check_retries, check_rewrite,
};

/// Where a VirtualService applies, which changes which hosts are allowed.
pub(super) struct Scope {
    /// No hosts: the VirtualService is a delegate of another one.
    delegate: bool,
    /// Bound to gateways only (no `mesh`).
    gateway_only: bool,
}

pub fn check(vs: &VirtualService, namespace: &str, path: &FieldPath, out: &mut Findings) {
    let scope = Scope {
        delegate: vs.hosts.is_empty(),
        gateway_only: !vs.gateways.is_empty() && !vs.gateways.iter().any(|g| g == "mesh"),
    };
    if scope.delegate {
        check_delegate_vs(vs, path, out);
    }
    check_gateway_names(out, &path.field("gateways"), &vs.gateways);
    check_hosts(vs, &scope, path, out);
    if !scope.gateway_only {
        check_no_jwt_claim_routes(vs, path, out);
    }
    if vs.http.is_empty() && vs.tcp.is_empty() && vs.tls.is_empty() {
        out.error(path, "http, tcp or tls must be provided in virtual service");
    }
    for (i, route) in vs.http.iter().enumerate() {
        check_http_route(route, &scope, &path.field("http").index(i), out);
    }
    for (i, route) in vs.tls.iter().enumerate() {
        check_tls_route(route, vs, &path.field("tls").index(i), out);
    }
    for (i, route) in vs.tcp.iter().enumerate() {
        check_tcp_route(route, &path.field("tcp").index(i), out);
    }
    check_export_to(
        out,
        &path.field("exportTo"),
        namespace,
        &vs.export_to,
        false,
        false,
    );
}

fn check_delegate_vs(vs: &VirtualService, path: &FieldPath, out: &mut Findings) {
    if !vs.gateways.is_empty() {
        out.error(
            path.field("gateways"),
            "delegate virtual service must have no gateways specified",
        );
    }
    if !vs.tls.is_empty() {
        out.error(
            path.field("tls"),
            "delegate virtual service must have no tls route specified",
        );
    }
    if !vs.tcp.is_empty() {
        out.error(
            path.field("tcp"),
            "delegate virtual service must have no tcp route specified",
        );
    }
}

fn check_hosts(vs: &VirtualService, scope: &Scope, path: &FieldPath, out: &mut Findings) {
    let mut all_valid = true;
    for (i, host) in vs.hosts.iter().enumerate() {
        let p = path.field("hosts").index(i);
        if let Err(e) = wildcard_domain(host)
            && !is_ip(host)
        {
            out.error(&p, e);
            all_valid = false;
            continue;
        }
        if !scope.gateway_only && host == "*" {
            out.error(
                &p,
                "wildcard host * is not allowed for virtual services bound to the mesh gateway",
            );
        }
    }
    if !all_valid {
        return;
    }
    for (i, a) in vs.hosts.iter().enumerate() {
        for (j, b) in vs.hosts.iter().enumerate().skip(i + 1) {
            if hosts_overlap(a, b) {
                out.error(
                    path.field("hosts").index(j),
                    format!("duplicate hosts in virtual service: {a} & {b}"),
                );
            }
        }
    }
}

fn check_no_jwt_claim_routes(vs: &VirtualService, path: &FieldPath, out: &mut Findings) {
    for (i, route) in vs.http.iter().enumerate() {
        for (j, m) in route.matches.iter().enumerate() {
            let mp = path.field("http").index(i).field("match").index(j);
            for (field, map) in [
                ("headers", &m.headers),
                ("withoutHeaders", &m.without_headers),
            ] {
                for key in map.keys().filter(|k| is_jwt_claim_header(k)) {
                    out.error(
                        mp.field(field).key(key),
                        format!(
                            "JWT claim based routing (key: {key}) is only supported for gateway, found no gateways: [{}]",
                            vs.gateways.join(" ")
                        ),
                    );
                }
            }
        }
    }
}

fn check_http_route(route: &HttpRoute, scope: &Scope, path: &FieldPath, out: &mut Findings) {
    check_route_kind(route, scope, path, out);
    for (i, m) in route.matches.iter().enumerate() {
        check_http_match(m, &path.field("match").index(i), out);
    }
    if let Some(h) = &route.headers {
        check_headers(h, &path.field("headers"), out);
    }
    check_authority_rewrite(route, path, out);
    if let Some(c) = &route.cors_policy {
        check_cors(c, &path.field("corsPolicy"), out);
    }
    if let Some(f) = &route.fault {
        check_fault(f, &path.field("fault"), out);
    }
    check_mirrors(route, path, out);
    if let Some(r) = &route.redirect {
        check_redirect(r, &path.field("redirect"), out);
    }
    if let Some(d) = &route.direct_response {
        check_direct_response(d, &path.field("directResponse"), out);
    }
    if let Some(r) = &route.retries {
        check_retries(r, &path.field("retries"), out);
    }
    if let Some(r) = &route.rewrite {
        check_rewrite(r, &path.field("rewrite"), out);
    }
    check_http_destinations(&route.route, scope.gateway_only, &path.field("route"), out);
    if let Some(t) = &route.timeout {
        check_duration(out, &path.field("timeout"), t);
    }
}

/// Exactly one of route, redirect, directResponse or delegate, and what each excludes.
fn check_route_kind(route: &HttpRoute, scope: &Scope, path: &FieldPath, out: &mut Findings) {
    let name = route.name.as_deref().unwrap_or("");
    if !scope.delegate && route.delegate.is_some() {
        if route.redirect.is_some() {
            out.error(
                path.field("redirect"),
                format!("root HTTP route {name} must not specify redirect"),
            );
        }
        if !route.route.is_empty() {
            out.error(
                path.field("route"),
                format!("root HTTP route {name} must not specify route"),
            );
        }
        return;
    }
    if scope.delegate && route.delegate.is_some() {
        out.error(
            path.field("delegate"),
            "delegate HTTP route cannot contain delegate",
        );
    }
    if route.redirect.is_some() {
        exclusive(route, "redirect", path, out);
    } else if route.direct_response.is_some() {
        exclusive(route, "direct_response", path, out);
    } else if route.route.is_empty() {
        out.error(path, "HTTP route, redirect or direct_response is required");
    }
    if route.mirror.is_some() && !route.mirrors.is_empty() {
        out.error(
            path.field("mirrors"),
            "HTTP route cannot contain both mirror and mirrors",
        );
    }
}

fn exclusive(route: &HttpRoute, what: &str, path: &FieldPath, out: &mut Findings) {
    if !route.route.is_empty() {
        out.error(
            path.field("route"),
            format!("HTTP route cannot contain both route and {what}"),
        );
    }
    if route.fault.is_some() {
        out.error(
            path.field("fault"),
            format!("HTTP route cannot contain both fault and {what}"),
        );
    }
    if route.rewrite.is_some() {
        out.error(
            path.field("rewrite"),
            format!("HTTP route rule cannot contain both rewrite and {what}"),
        );
    }
    if what == "redirect" && route.direct_response.is_some() {
        out.error(
            path.field("directResponse"),
            "HTTP route rule cannot contain both direct_response and redirect",
        );
    }
}

#[cfg(test)]
mod tests;
