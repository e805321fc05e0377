//! VirtualService validation: hosts and gateways, then every HTTP, TLS and TCP route with its
//! matches, destinations and weights, retries, faults, mirrors, rewrites, redirects, direct
//! responses, header operations and CORS policy.

use crate::diagnostic::{FieldPath, Findings};
use crate::host::{host_subset_of, hosts_overlap};
use crate::model::{
    CorsPolicy, Destination, HeaderOperations, Headers, HttpDirectResponse, HttpFaultInjection,
    HttpMatchRequest, HttpRedirect, HttpRetry, HttpRewrite, HttpRoute, HttpRouteDestination,
    L4MatchAttributes, RouteDestination, TcpRoute, TlsMatchAttributes, TlsRoute, VirtualService,
};

use super::common::{
    check_duration, check_export_to, check_gateway_names, check_labels, check_percentage,
    check_port, check_regex, check_string_match, cors_header_name, header_name_for_match,
    header_name_for_operation, header_name_for_request_set, header_value, ip_subnet,
    is_dns1123_label, is_ip, is_jwt_claim_header, wildcard_domain,
};

/// Named retry policies Envoy and Istio accept in `retryOn` (besides bare status codes).
pub const RETRY_ON_POLICIES: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "envoy-ratelimited",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// gRPC status names accepted by `fault.abort.grpcStatus`.
pub const GRPC_STATUS_NAMES: &[&str] = &[
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

const CORS_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*",
];

/// Where a VirtualService applies, which changes which hosts are allowed.
struct Scope {
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

fn check_http_match(m: &HttpMatchRequest, path: &FieldPath, out: &mut Findings) {
    for (name, sm) in &m.headers {
        let p = path.field("headers").key(name);
        if let Err(e) = header_name_for_match(name) {
            out.error(&p, e);
        }
        check_string_match(out, &p, sm, "headers", false);
    }
    for (name, sm) in &m.without_headers {
        let p = path.field("withoutHeaders").key(name);
        if let Err(e) = header_name_for_match(name) {
            out.error(&p, e);
        }
        if sm.regex.as_deref() != Some("*") {
            check_string_match(out, &p, sm, "withoutHeaders", false);
        }
    }
    if let Some(uri) = &m.uri {
        check_string_match(out, &path.field("uri"), uri, "uri", true);
    }
    for (field, sm) in [
        ("scheme", &m.scheme),
        ("method", &m.method),
        ("authority", &m.authority),
    ] {
        if let Some(sm) = sm {
            check_string_match(out, &path.field(field), sm, field, false);
        }
    }
    for (key, sm) in &m.query_params {
        check_string_match(
            out,
            &path.field("queryParams").key(key),
            sm,
            "queryParams",
            false,
        );
    }
    if let Some(port) = m.port.filter(|p| *p != 0) {
        check_port(out, &path.field("port"), port);
    }
    check_labels(out, &path.field("sourceLabels"), &m.source_labels);
    check_gateway_names(out, &path.field("gateways"), &m.gateways);
    if let Some(ns) = m.source_namespace.as_deref().filter(|ns| !ns.is_empty())
        && !is_dns1123_label(ns)
    {
        out.error(
            path.field("sourceNamespace"),
            format!("sourceNamespace match {ns} is invalid"),
        );
    }
}

fn check_headers(h: &Headers, path: &FieldPath, out: &mut Findings) {
    if let Some(req) = &h.request {
        check_header_ops(req, true, &path.field("request"), out);
    }
    if let Some(resp) = &h.response {
        check_header_ops(resp, false, &path.field("response"), out);
    }
}

fn check_header_ops(ops: &HeaderOperations, request: bool, path: &FieldPath, out: &mut Findings) {
    for (op, map) in [("set", &ops.set), ("add", &ops.add)] {
        for (name, value) in map {
            let p = path.field(op).key(name);
            let named = if request {
                header_name_for_request_set(name)
            } else {
                header_name_for_operation(name)
            };
            if let Err(e) = named.and_then(|()| header_value(value)) {
                out.error(&p, e);
            }
        }
    }
    for (i, name) in ops.remove.iter().enumerate() {
        if let Err(e) = header_name_for_operation(name) {
            out.error(path.field("remove").index(i), e);
        }
    }
}

/// The authority may be rewritten once: by `rewrite.authority` or one `:authority`/`host` header.
fn check_authority_rewrite(route: &HttpRoute, path: &FieldPath, out: &mut Findings) {
    let mut current = route
        .rewrite
        .as_ref()
        .and_then(|r| r.authority.clone())
        .unwrap_or_default();
    let Some(req) = route.headers.as_ref().and_then(|h| h.request.as_ref()) else {
        return;
    };
    let is_authority =
        |k: &str| k.eq_ignore_ascii_case(":authority") || k.eq_ignore_ascii_case("host");
    for (op, map) in [("set", &req.set), ("add", &req.add)] {
        for (k, v) in map.iter().filter(|(k, _)| is_authority(k)) {
            if !current.is_empty() {
                out.error(
                    path.field("headers").field("request").field(op).key(k),
                    format!("authority header cannot be set multiple times: have {current:?}, attempting to set {v:?}"),
                );
                return;
            }
            current = v.clone();
        }
    }
}

fn check_cors(c: &CorsPolicy, path: &FieldPath, out: &mut Findings) {
    for (i, o) in c.allow_origins.iter().enumerate() {
        let p = path.field("allowOrigins").index(i);
        let value = o
            .exact
            .as_deref()
            .or(o.prefix.as_deref())
            .or(o.regex.as_deref())
            .unwrap_or("");
        if value.is_empty() {
            out.error(&p, "'' is not a valid match type for CORS allow origins");
        } else if let Some(re) = &o.regex {
            check_regex(out, &p.field("regex"), re, "corsPolicy.allowOrigins");
        }
    }
    if !c.allow_origin.is_empty() {
        out.warn(
            path.field("allowOrigin"),
            "using deprecated setting \"allowOrigin\", use \"allowOrigins\" instead",
        );
    }
    for (i, m) in c.allow_methods.iter().enumerate() {
        if !CORS_METHODS.contains(&m.as_str()) {
            out.error(
                path.field("allowMethods").index(i),
                format!("{m:?} is not a supported HTTP method"),
            );
        }
    }
    for (field, list) in [
        ("allowHeaders", &c.allow_headers),
        ("exposeHeaders", &c.expose_headers),
    ] {
        for (i, h) in list.iter().enumerate() {
            if let Err(e) = cors_header_name(h) {
                out.error(path.field(field).index(i), e);
            }
        }
    }
    if let Some(max_age) = &c.max_age {
        let p = path.field("maxAge");
        if let Some(d) = check_duration(out, &p, max_age)
            && d.subsec_nanos() != 0
        {
            out.error(&p, "max_age duration is accurate only to seconds precision");
        }
    }
}

fn check_fault(f: &HttpFaultInjection, path: &FieldPath, out: &mut Findings) {
    if f.abort.is_none() && f.delay.is_none() {
        out.error(
            path,
            "HTTP fault injection must have an abort and/or a delay",
        );
    }
    if let Some(abort) = &f.abort {
        let p = path.field("abort");
        if let Some(pct) = &abort.percentage {
            check_percentage(out, &p.field("percentage"), pct);
        }
        if abort.percent.is_some() {
            out.warn(
                p.field("percent"),
                "using deprecated setting \"percent\", use \"percentage\" instead",
            );
        }
        if let Some(code) = &abort.grpc_status {
            if !GRPC_STATUS_NAMES.contains(&code.as_str()) {
                out.error(
                    p.field("grpcStatus"),
                    format!("gRPC status {code:?} is not supported. See https://github.com/grpc/grpc/blob/master/doc/statuscodes.md for a list of supported codes, for example 'NOT_FOUND'"),
                );
            }
        } else if abort.http2_error.is_some() {
            out.error(
                p.field("http2Error"),
                "HTTP/2 abort fault injection not supported yet",
            );
        } else if let Some(status) = abort.http_status {
            check_http_status(out, &p.field("httpStatus"), status);
        } else {
            out.warn(&p, "abort configured, but error type not set");
        }
    }
    if let Some(delay) = &f.delay {
        let p = path.field("delay");
        if let Some(pct) = &delay.percentage {
            check_percentage(out, &p.field("percentage"), pct);
        }
        if delay.percent.is_some() {
            out.warn(
                p.field("percent"),
                "using deprecated setting \"percent\", use \"percentage\" instead",
            );
        }
        if let Some(d) = &delay.fixed_delay {
            check_duration(out, &p.field("fixedDelay"), d);
        }
        if let Some(d) = &delay.exponential_delay {
            check_duration(out, &p.field("exponentialDelay"), d);
            out.error(
                p.field("exponentialDelay"),
                "exponentialDelay not supported yet",
            );
        }
    }
}

/// Istio's `validateHTTPStatus`: 200..=599 (Istio's own bound check lets 600 through; its
/// message says 200-599, which is what weft enforces).
fn check_http_status(out: &mut Findings, path: &FieldPath, status: i64) {
    if !(200..=599).contains(&status) {
        out.error(
            path,
            format!("HTTP status {status} is not in range 200-599"),
        );
    }
}

fn check_mirrors(route: &HttpRoute, path: &FieldPath, out: &mut Findings) {
    if let Some(pct) = route.mirror_percent {
        let p = path.field("mirrorPercent");
        if pct > 100 {
            out.error(
                &p,
                format!("mirror_percent must have a max value of 100 (it has {pct})"),
            );
        }
        out.warn(
            &p,
            "using deprecated setting \"mirrorPercent\", use \"mirrorPercentage\" instead",
        );
    }
    if let Some(pct) = &route.mirror_percentage {
        check_mirror_percentage(
            out,
            &path.field("mirrorPercentage"),
            pct.value,
            "mirror_percentage",
        );
    }
    if let Some(m) = &route.mirror {
        check_destination(m, &path.field("mirror"), out);
    }
    for (i, m) in route.mirrors.iter().enumerate() {
        let p = path.field("mirrors").index(i);
        match &m.destination {
            None => out.error(&p, "destination is required for mirrors"),
            Some(d) => check_destination(d, &p.field("destination"), out),
        }
        if let Some(pct) = &m.percentage {
            check_mirror_percentage(out, &p.field("percentage"), pct.value, "mirror percentage");
        }
    }
}

fn check_mirror_percentage(out: &mut Findings, path: &FieldPath, v: f64, what: &str) {
    if v > 100.0 {
        out.error(
            path.field("value"),
            format!("{what} must have a max value of 100 (it has {v:.6})"),
        );
    }
    if v < 0.0 {
        out.error(
            path.field("value"),
            format!("{what} must have a min value of 0 (it has {v:.6})"),
        );
    }
}

fn check_redirect(r: &HttpRedirect, path: &FieldPath, out: &mut Findings) {
    let empty = |s: &Option<String>| s.as_deref().unwrap_or("").is_empty();
    if empty(&r.uri)
        && empty(&r.authority)
        && r.port.is_none()
        && r.derive_port.is_none()
        && empty(&r.scheme)
    {
        out.error(
            path,
            "redirect must specify URI, authority, scheme, or port",
        );
        return;
    }
    if let Some(code) = r.redirect_code.filter(|c| *c != 0)
        && !(300..=399).contains(&code)
    {
        out.error(
            path.field("redirectCode"),
            format!("{code} is not a valid redirect code, must be 3xx"),
        );
    }
    if let Some(s) = r.scheme.as_deref().filter(|s| !s.is_empty())
        && s != "http"
        && s != "https"
    {
        out.error(
            path.field("scheme"),
            "invalid redirect scheme, must be \"http\" or \"https\"",
        );
    }
    if let Some(port) = r.port {
        check_port(out, &path.field("port"), port);
    }
    if r.port.is_some() && r.derive_port.is_some() {
        out.error(path, "only one of port or derivePort may be set");
    }
}

fn check_direct_response(d: &HttpDirectResponse, path: &FieldPath, out: &mut Findings) {
    if let Some(body) = &d.body {
        let size = body
            .string
            .as_ref()
            .or(body.bytes.as_ref())
            .map_or(0, String::len);
        if size > 1024 * 1024 {
            out.error(path.field("body"), "large direct_responses may impact control plane performance, must be less than 1MB");
        } else if size > 100 * 1024 {
            out.warn(
                path.field("body"),
                "large direct_responses may impact control plane performance",
            );
        }
        if body.string.is_some() && body.bytes.is_some() {
            out.error(path.field("body"), "only one of string or bytes may be set");
        }
    }
    check_http_status(out, &path.field("status"), d.status.unwrap_or(0));
}

fn check_retries(r: &HttpRetry, path: &FieldPath, out: &mut Findings) {
    let attempts = r.attempts.unwrap_or(0);
    if attempts < 0 {
        out.error(path.field("attempts"), "attempts cannot be negative");
    }
    let configured = r.per_try_timeout.is_some()
        || r.retry_on.as_deref().is_some_and(|s| !s.is_empty())
        || r.retry_remote_localities.is_some();
    if attempts == 0 && configured {
        out.error(
            path.field("attempts"),
            "http retry policy configured when attempts are set to 0 (disabled)",
        );
    }
    if let Some(t) = &r.per_try_timeout {
        check_duration(out, &path.field("perTryTimeout"), t);
    }
    if let Some(on) = r.retry_on.as_deref().filter(|s| !s.is_empty()) {
        for policy in on.split(',') {
            if !is_retry_policy(policy) {
                out.error(
                    path.field("retryOn"),
                    format!("{policy:?} is not a valid retryOn policy"),
                );
            }
        }
    }
    if let Some(b) = &r.backoff {
        check_duration(out, &path.field("backoff"), b);
    }
}

/// A named policy or an HTTP status code Go's `http.StatusText` knows. No trimming: Istio
/// rejects `"5xx, reset"`.
pub fn is_retry_policy(policy: &str) -> bool {
    RETRY_ON_POLICIES.contains(&policy) || policy.parse::<u16>().is_ok_and(is_known_status)
}

fn is_known_status(code: u16) -> bool {
    matches!(code,
        100..=103 | 200..=208 | 226 | 300..=305 | 307 | 308 | 400..=418 | 421..=426 | 428 | 429
        | 431 | 451 | 500..=508 | 510 | 511)
}

fn check_rewrite(r: &HttpRewrite, path: &FieldPath, out: &mut Findings) {
    let uri = r.uri.as_deref().unwrap_or("");
    let authority = r.authority.as_deref().unwrap_or("");
    if !uri.is_empty() && r.uri_regex_rewrite.is_some() {
        out.error(
            path,
            "rewrite may only contain one of URI or UriRegexRewrite",
        );
        return;
    }
    if uri.is_empty() && r.uri_regex_rewrite.is_none() && authority.is_empty() {
        out.error(path, "rewrite must specify at least one of URI, UriRegexRewrite, or authority. Only one of URI or UriRegexRewrite may be specified");
        return;
    }
    if let Some(rr) = &r.uri_regex_rewrite {
        let p = path.field("uriRegexRewrite");
        match (rr.pattern.as_deref().unwrap_or(""), rr.rewrite.as_deref().unwrap_or("")) {
            ("", _) | (_, "") => out.error(&p, "UriRegexRewrite has errors: UriRegexRewrite requires both Rewrite and Match fields to be specified"),
            (pattern, _) => check_regex(out, &p.field("match"), pattern, "HTTPRewrite.UriRegexRewrite.Match"),
        }
    }
}

/// Destinations with weights: none negative, and not all zero when there are several.
fn check_http_destinations(
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
            Some(dest) if !gateway_only => check_destination(dest, &p.field("destination"), out),
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

fn check_route_destinations(dests: &[RouteDestination], path: &FieldPath, out: &mut Findings) {
    let mut total = 0i64;
    for (i, d) in dests.iter().enumerate() {
        let p = path.index(i);
        match &d.destination {
            None => out.error(&p, "destination is required"),
            Some(dest) => check_destination(dest, &p.field("destination"), out),
        }
        total += check_weight(d.weight, &p, out);
    }
    if dests.len() > 1 && total == 0 {
        out.error(path, "total destination weight = 0");
    }
}

fn check_weight(weight: Option<i64>, path: &FieldPath, out: &mut Findings) -> i64 {
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

fn check_destination(d: &Destination, path: &FieldPath, out: &mut Findings) {
    if d.host == "*" {
        out.error(
            path.field("host"),
            format!("invalid destination host {}", d.host),
        );
    } else if let Err(e) = wildcard_domain(&d.host) {
        out.error(path.field("host"), e);
    }
    if let Some(subset) = d.subset.as_deref().filter(|s| !s.is_empty())
        && !is_dns1123_label(subset)
    {
        out.error(
            path.field("subset"),
            format!("subset name is invalid: {subset}"),
        );
    }
    if let Some(port) = &d.port {
        check_port(out, &path.field("port").field("number"), port.number);
    }
}

fn check_tls_route(route: &TlsRoute, vs: &VirtualService, path: &FieldPath, out: &mut Findings) {
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

fn check_tls_match(
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

fn check_tcp_route(route: &TcpRoute, path: &FieldPath, out: &mut Findings) {
    for (i, m) in route.matches.iter().enumerate() {
        check_l4_match(m, &path.field("match").index(i), out);
    }
    if route.route.is_empty() {
        out.error(path.field("route"), "TCP route is required");
    }
    check_route_destinations(&route.route, &path.field("route"), out);
}

fn check_l4_match(m: &L4MatchAttributes, path: &FieldPath, out: &mut Findings) {
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

fn check_l4_common(
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

#[cfg(test)]
mod tests;
