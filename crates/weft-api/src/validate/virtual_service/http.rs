//! HTTP route actions and matches: header matches, header operations, CORS, fault injection,
//! mirrors, redirects, direct responses, retries and rewrites.

use crate::diagnostic::{FieldPath, Findings};
use crate::model::*;
use crate::validate::common::*;

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

const CORS_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*",
];

pub(super) fn check_http_match(m: &HttpMatchRequest, path: &FieldPath, out: &mut Findings) {
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

pub(super) fn check_headers(h: &Headers, path: &FieldPath, out: &mut Findings) {
    if let Some(req) = &h.request {
        check_header_ops(req, true, &path.field("request"), out);
    }
    if let Some(resp) = &h.response {
        check_header_ops(resp, false, &path.field("response"), out);
    }
}

pub(super) fn check_header_ops(
    ops: &HeaderOperations,
    request: bool,
    path: &FieldPath,
    out: &mut Findings,
) {
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
pub(super) fn check_authority_rewrite(route: &HttpRoute, path: &FieldPath, out: &mut Findings) {
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

pub(super) fn check_cors(c: &CorsPolicy, path: &FieldPath, out: &mut Findings) {
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

pub(super) fn check_fault(f: &HttpFaultInjection, path: &FieldPath, out: &mut Findings) {
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
            if !crate::model::GRPC_STATUS_NAMES.contains(&code.as_str()) {
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
pub(super) fn check_http_status(out: &mut Findings, path: &FieldPath, status: i64) {
    if !(200..=599).contains(&status) {
        out.error(
            path,
            format!("HTTP status {status} is not in range 200-599"),
        );
    }
}

pub(super) fn check_mirrors(route: &HttpRoute, path: &FieldPath, out: &mut Findings) {
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
        check_destination(out, &path.field("mirror"), m);
    }
    for (i, m) in route.mirrors.iter().enumerate() {
        let p = path.field("mirrors").index(i);
        match &m.destination {
            None => out.error(&p, "destination is required for mirrors"),
            Some(d) => check_destination(out, &p.field("destination"), d),
        }
        if let Some(pct) = &m.percentage {
            check_mirror_percentage(out, &p.field("percentage"), pct.value, "mirror percentage");
        }
    }
}

pub(super) fn check_mirror_percentage(out: &mut Findings, path: &FieldPath, v: f64, what: &str) {
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

pub(super) fn check_redirect(r: &HttpRedirect, path: &FieldPath, out: &mut Findings) {
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

pub(super) fn check_direct_response(d: &HttpDirectResponse, path: &FieldPath, out: &mut Findings) {
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

pub(super) fn check_retries(r: &HttpRetry, path: &FieldPath, out: &mut Findings) {
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

pub(super) fn is_known_status(code: u16) -> bool {
    matches!(code,
        100..=103 | 200..=208 | 226 | 300..=305 | 307 | 308 | 400..=418 | 421..=426 | 428 | 429
        | 431 | 451 | 500..=508 | 510 | 511)
}

pub(super) fn check_rewrite(r: &HttpRewrite, path: &FieldPath, out: &mut Findings) {
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
