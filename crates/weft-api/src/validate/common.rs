//! Checks shared by every kind: ports, host names, durations, percentages, labels, selectors,
//! header names and values, string matches and regexes, `exportTo` and gateway names.
//! Messages follow Istio's `pkg/config/validation` word for word where Istio has one.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::OnceLock;

use regex::Regex;

use crate::diagnostic::{FieldPath, Findings};
use crate::model::{DurationText, LabelSelector, Percent, StringMatch, WorkloadSelector};

/// Istio's cap on regex length in string matches.
const MAX_REGEX_LEN: usize = 1024;

pub fn check_port(out: &mut Findings, path: &FieldPath, port: i64) {
    if !(1..=65535).contains(&port) {
        out.error(
            path,
            format!("port number {port} must be in the range 1..65535"),
        );
    }
}

fn label_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| compile_static(r"^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$"))
}

/// Compiles one of this module's constant patterns (each is exercised by the unit tests).
#[allow(clippy::expect_used)]
fn compile_static(pattern: &str) -> Regex {
    Regex::new(pattern).expect("constant pattern compiles")
}

/// A DNS-1123 label; Istio allows upper case here.
pub fn is_dns1123_label(s: &str) -> bool {
    s.len() <= 63 && label_re().is_match(s)
}

fn is_wildcard_label(s: &str) -> bool {
    if s == "*" {
        return true;
    }
    let rest = s
        .strip_prefix("*-")
        .or_else(|| s.strip_prefix('*'))
        .unwrap_or(s);
    s.len() <= 63 && label_re().is_match(rest)
}

/// `agent.ValidateFQDN`: short names are fine, the top-level label may not be all digits.
pub fn fqdn(s: &str) -> Result<(), String> {
    if s.len() > 255 {
        return Err(format!("domain name {s:?} too long (max 255)"));
    }
    if s.is_empty() {
        return Err("empty domain name not allowed".to_string());
    }
    check_domain_labels(s, s.split('.').collect())
}

fn check_domain_labels(whole: &str, mut labels: Vec<&str>) -> Result<(), String> {
    if labels.len() > 1 && labels.last() == Some(&"") {
        labels.pop();
    }
    if let Some(top) = labels.last() {
        let digits = top.strip_prefix(['+', '-']).unwrap_or(top);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "domain name {whole:?} invalid (top level domain {top:?} cannot be all-numeric)"
            ));
        }
    }
    for label in labels {
        if !is_dns1123_label(label) {
            return Err(format!(
                "domain name {whole:?} invalid (label {label:?} invalid)"
            ));
        }
    }
    Ok(())
}

/// `agent.ValidateWildcardDomain`: like [`fqdn`] but the first label may be a wildcard.
pub fn wildcard_domain(s: &str) -> Result<(), String> {
    if s.len() > 255 {
        return Err(format!("domain name {s:?} too long (max 255)"));
    }
    if s.is_empty() {
        return Err("empty domain name not allowed".to_string());
    }
    let (first, rest) = match s.split_once('.') {
        Some((f, r)) => (f, Some(r)),
        None => (s, None),
    };
    if !is_wildcard_label(first) {
        return Err(format!(
            "domain name {s:?} invalid (label {first:?} invalid)"
        ));
    }
    match rest {
        Some(rest) => check_domain_labels(s, rest.split('.').collect()),
        None => Ok(()),
    }
}

/// `*` alone or a `*.` prefix; anything else with a `*` is a partial wildcard.
pub fn partial_wildcard(host: &str) -> Result<(), String> {
    if host.contains('*') && host.len() != 1 && !host.starts_with("*.") {
        return Err(format!("partial wildcard {host:?} not allowed"));
    }
    Ok(())
}

pub fn is_ip(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
}

/// `agent.ValidateIPSubnet`: an address or a CIDR block.
pub fn ip_subnet(s: &str) -> Result<(), String> {
    match s.split_once('/') {
        Some((addr, bits)) => {
            let ok = match (addr.parse::<IpAddr>(), bits.parse::<u8>()) {
                (Ok(IpAddr::V4(_)), Ok(b)) => b <= 32 && !bits.starts_with('+'),
                (Ok(IpAddr::V6(_)), Ok(b)) => b <= 128 && !bits.starts_with('+'),
                _ => false,
            };
            if ok {
                Ok(())
            } else {
                Err(format!("{s} is not a valid CIDR block"))
            }
        }
        None if is_ip(s) => Ok(()),
        None => Err(format!("{s} is not a valid IP")),
    }
}

/// `agent.ValidateDuration`: Go syntax, at least 1ms, millisecond precision.
pub fn check_duration(
    out: &mut Findings,
    path: &FieldPath,
    d: &DurationText,
) -> Option<std::time::Duration> {
    match d.parse() {
        Err(e) => {
            out.error(path, e.to_string());
            None
        }
        Ok(v) if v < std::time::Duration::from_millis(1) => {
            out.error(path, "duration must be greater than 1ms");
            None
        }
        Ok(v) if v.subsec_nanos() % 1_000_000 != 0 => {
            out.error(path, "only durations to ms precision are supported");
            None
        }
        Ok(v) => Some(v),
    }
}

/// `ValidatePercent` for integer percentages.
pub fn check_percent_int(out: &mut Findings, path: &FieldPath, v: i64) {
    if !(0..=100).contains(&v) {
        out.error(path, format!("percentage {v} is not in range 0..100"));
    }
}

/// `validatePercentage` for `{value: double}` percentages.
pub fn check_percentage(out: &mut Findings, path: &FieldPath, p: &Percent) {
    let v = p.value;
    if !(0.0..=100.0).contains(&v) || (v > 0.0 && v < 0.0001) || v.is_nan() {
        out.error(
            path.field("value"),
            format!("percentage {v} is neither 0.0, nor in range [0.0001, 100.0]"),
        );
    }
}

fn label_key_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        compile_static(
            r"^([a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)*/)?((?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        )
    })
}

fn label_value_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| compile_static(r"^((?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"))
}

/// `labels.Instance.Validate`: Kubernetes label keys and values.
pub fn check_labels(out: &mut Findings, path: &FieldPath, labels: &BTreeMap<String, String>) {
    for (k, v) in labels {
        let p = path.key(k);
        match label_key_re().captures(k) {
            None => out.error(&p, format!("invalid tag key: {k:?}")),
            Some(c) => {
                if c.get(1).is_some_and(|m| m.as_str().len() - 1 > 253) {
                    out.error(
                        &p,
                        format!("invalid tag key: {k:?} (DNS prefix is too long)"),
                    );
                }
                if c.get(2).is_some_and(|m| m.as_str().len() > 63) {
                    out.error(&p, format!("invalid tag key: {k:?} (name is too long)"));
                }
            }
        }
        if !label_value_re().is_match(v) {
            out.error(&p, format!("invalid tag value: {v:?}"));
        }
    }
}

fn check_selector_labels(out: &mut Findings, path: &FieldPath, labels: &BTreeMap<String, String>) {
    for (k, v) in labels {
        if k.is_empty() {
            out.error(
                path,
                format!("empty key is not supported in selector: \"{k}={v}\""),
            );
        } else if k.contains('*') || v.contains('*') {
            out.error(
                path.key(k),
                format!("wildcard is not supported in selector: \"{k}={v}\""),
            );
        }
    }
    check_labels(out, path, labels);
}

/// `selector: {matchLabels: ...}` of the security kinds.
pub fn check_workload_selector(out: &mut Findings, path: &FieldPath, sel: &WorkloadSelector) {
    let labels = sel.match_labels.clone().unwrap_or_default();
    if labels.is_empty() {
        out.warn(path, "workload selector specified without labels");
    }
    check_selector_labels(out, &path.field("matchLabels"), &labels);
}

/// `workloadSelector: {labels: ...}` of the networking kinds.
pub fn check_label_selector(out: &mut Findings, path: &FieldPath, sel: &LabelSelector) {
    let labels = sel.labels.clone().unwrap_or_default();
    if labels.is_empty() {
        out.warn(path, "workload selector specified without labels");
    }
    check_selector_labels(out, &path.field("labels"), &labels);
}

fn tchar_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| compile_static(r"^[!#$%&'*+\-.^_`|~A-Za-z0-9]+$"))
}

/// Header names in `headers`/`withoutHeaders` matches (JWT-claim keys allowed).
pub fn header_name_for_match(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name cannot be empty".to_string());
    }
    if is_jwt_claim_header(name)
        || matches!(
            name,
            ":method" | ":scheme" | ":authority" | ":path" | ":status"
        )
        || tchar_re().is_match(name)
    {
        return Ok(());
    }
    Err(format!("header name {name} is not a valid header name"))
}

/// `@request.auth.claims.x` / `@request.auth.claims[x]` routing keys.
pub fn is_jwt_claim_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    match lower.strip_prefix("@request.auth.claims") {
        Some(rest) if rest.starts_with('.') => rest.len() > 1,
        Some(rest) if rest.starts_with('[') => rest.ends_with(']') && rest.len() > 2,
        _ => false,
    }
}

/// Names in request `add`/`set`: `:authority` and `Host` are allowed (they rewrite the authority).
pub fn header_name_for_request_set(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name cannot be empty".to_string());
    }
    let authority = name.eq_ignore_ascii_case(":authority") || name.eq_ignore_ascii_case("host");
    if name.starts_with(':') && !authority {
        return Err(format!(
            "invalid header {name:?}: header cannot have \":\" prefix"
        ));
    }
    Ok(())
}

/// Names in request `remove` and every response operation.
pub fn header_name_for_operation(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name cannot be empty".to_string());
    }
    if name.eq_ignore_ascii_case("host") {
        return Err(format!("invalid header {name:?}: cannot set Host header"));
    }
    if name.starts_with(':') {
        return Err(format!(
            "invalid header {name:?}: header cannot have \":\" prefix"
        ));
    }
    Ok(())
}

/// CORS `allowHeaders`/`exposeHeaders` names: a token or `*`.
pub fn cors_header_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name cannot be empty".to_string());
    }
    if name == "*" || tchar_re().is_match(name) {
        Ok(())
    } else {
        Err(format!("header name {name} is not a valid header name"))
    }
}

/// Strict header names (`[-A-Za-z0-9]+`), e.g. JWT `outputClaimToHeaders`.
pub fn strict_header_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name cannot be empty".to_string());
    }
    if name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Ok(())
    } else {
        Err(format!("header name {name} is not a valid header name"))
    }
}

/// Header values: no control characters (TAB allowed) and well-formed `%VAR%` expressions
/// (`%%` is a literal percent).
pub fn header_value(value: &str) -> Result<(), String> {
    if value
        .chars()
        .any(|c| (c.is_control() && c != '\t' && (c as u32) < 0x80) || c == '\u{7f}')
    {
        return Err(format!("header value configuration {value} is invalid"));
    }
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        match chars.peek() {
            None => {
                return Err(
                    "header value configuration: invalid header configuration. Un-escaped %"
                        .to_string(),
                );
            }
            Some('%') => {
                chars.next();
            }
            Some(_) => {
                // A variable runs to the next '%'.
                if !chars.any(|c| c == '%') {
                    return Err(format!(
                        "header value configuration: invalid header configuration. Un-terminated variable expression '{value}'"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Compiles a regex as the proxy will use it (RE2 semantics, anchored full match).
pub fn compile_full_match(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

/// `validateStringRegexp`: non-empty, at most 1024 bytes, compiles under RE2 rules.
pub fn check_regex(out: &mut Findings, path: &FieldPath, pattern: &str, context: &str) {
    if pattern.is_empty() {
        out.error(
            path,
            format!("{context:?}: regex string match should not be empty"),
        );
    } else if pattern.len() > MAX_REGEX_LEN {
        out.error(
            path,
            format!("{context:?}: regex is too large, max length allowed is {MAX_REGEX_LEN}"),
        );
    } else if let Err(e) = compile_full_match(pattern) {
        let detail = e
            .to_string()
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string();
        out.error(
            path,
            format!(
                "{context:?}: error parsing regexp {pattern:?}: {detail}; Istio uses RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)"
            ),
        );
    }
}

/// `validateStringMatch`: an empty prefix is rejected, regexes must compile. With
/// `allow_empty_prefix` (the `uri` match) only the regex is checked.
pub fn check_string_match(
    out: &mut Findings,
    path: &FieldPath,
    m: &StringMatch,
    context: &str,
    allow_empty_prefix: bool,
) {
    let set = [m.exact.is_some(), m.prefix.is_some(), m.regex.is_some()];
    if set.iter().filter(|s| **s).count() > 1 {
        out.error(
            path,
            format!("{context:?}: only one of exact, prefix or regex may be set"),
        );
    }
    if m.prefix.as_deref() == Some("") && !allow_empty_prefix {
        out.error(
            path.field("prefix"),
            format!("{context:?}: prefix string match should not be empty"),
        );
    }
    if let Some(re) = &m.regex {
        check_regex(out, &path.field("regex"), re, context);
    }
}

/// `ValidatePortName`.
pub fn port_name(name: &str) -> Result<(), String> {
    if is_dns1123_label(name) {
        Ok(())
    } else {
        Err(format!("invalid port name: {name}"))
    }
}

/// Protocols Istio knows on ports (case-insensitive).
pub const PROTOCOLS: &[&str] = &[
    "tcp",
    "udp",
    "grpc",
    "grpc-web",
    "http",
    "http_proxy",
    "http2",
    "https",
    "tls",
    "mongo",
    "redis",
    "mysql",
];

/// `ValidateProtocol`: empty is fine (detected), otherwise one of [`PROTOCOLS`].
pub fn protocol(p: &str) -> Result<(), String> {
    if p.is_empty() || PROTOCOLS.contains(&p.to_ascii_lowercase().as_str()) {
        Ok(())
    } else {
        Err(format!("unsupported protocol: {p}"))
    }
}

/// `validateExportTo`.
pub fn check_export_to(
    out: &mut Findings,
    path: &FieldPath,
    namespace: &str,
    export_to: &[String],
    is_service_entry: bool,
    dr_with_selector: bool,
) {
    let mut seen: Vec<String> = Vec::new();
    for (i, e) in export_to.iter().enumerate() {
        let p = path.index(i);
        let key = if e == "." {
            namespace.to_string()
        } else {
            e.clone()
        };
        if seen.contains(&key) {
            if &key != e {
                out.error(
                    &p,
                    format!("duplicate entries in exportTo: . and current namespace {namespace}"),
                );
            } else {
                out.error(&p, format!("duplicate entries in exportTo for entry {e}"));
            }
            continue;
        }
        seen.push(key.clone());
        if is_service_entry && e == "~" {
            continue;
        }
        if key == "~" {
            out.error(
                &p,
                "exportTo ~ (none) is not allowed for Istio configuration objects",
            );
        } else if key != "." && key != "*" && !is_dns1123_label(&key) {
            out.error(
                &p,
                "only .,*,~, or a valid DNS 1123 label is allowed as exportTo entry",
            );
        }
    }
    if dr_with_selector && !seen.is_empty() {
        if seen.iter().any(|s| s == namespace) {
            if seen.len() > 1 {
                out.error(path, "destination rule with workload selector cannot have multiple entries in exportTo");
            }
        } else {
            out.error(path, "destination rule with workload selector cannot have exportTo beyond current namespace");
        }
    }
    if seen.iter().any(|s| s == "*") && export_to.len() > 1 {
        out.error(
            path,
            "cannot have both public (*) and non-public exportTo values for a resource",
        );
    }
    if seen.iter().any(|s| s == "~") && export_to.len() > 1 {
        out.error(
            path,
            "cannot export service entry to no one (~) and someone",
        );
    }
}

/// `validateGatewayNames`: `mesh`, `name`, or `namespace/name`.
pub fn check_gateway_names(out: &mut Findings, path: &FieldPath, names: &[String]) {
    for (i, name) in names.iter().enumerate() {
        let p = path.index(i);
        match name.split_once('/') {
            None => {
                if let Some((gw, ns)) = name.split_once('.') {
                    out.warn(
                        &p,
                        format!("using legacy gatewayName format {name:?}; prefer the <namespace>/<name> format: \"{ns}/{gw}\""),
                    );
                }
                if let Err(e) = fqdn(name) {
                    out.error(&p, e);
                }
            }
            Some((ns, gw)) => {
                if ns.is_empty() || gw.is_empty() {
                    out.error(&p, "config namespace and gateway name cannot be empty");
                    continue;
                }
                if !is_dns1123_label(ns) {
                    out.error(&p, format!("invalid value for namespace: {ns:?}"));
                }
                if !is_dns1123_label(gw) {
                    out.error(&p, format!("invalid value for gateway name: {gw:?}"));
                }
            }
        }
    }
}

/// `ValidateNamespaceSlashWildcardHostname` for Gateway server hosts and Sidecar egress hosts.
pub fn namespace_slash_host(host: &str, is_gateway: bool) -> Vec<String> {
    let mut errs = Vec::new();
    let hostname = match host.split_once('/') {
        None if is_gateway => host,
        None => return vec!["host must be of form namespace/dnsName".to_string()],
        Some((ns, name)) => {
            if ns.is_empty() || name.is_empty() {
                return vec![
                    "config namespace and dnsName in host entry cannot be empty".to_string(),
                ];
            }
            let ns_ok =
                ns == "*" || ns == "." || is_dns1123_label(ns) || (!is_gateway && ns == "~");
            if !ns_ok {
                let what = if is_gateway { "gateway" } else { "sidecar" };
                errs.push(format!("invalid namespace value {ns:?} in {what}"));
            }
            name
        }
    };
    if hostname != "*" && !hostname.contains('.') {
        errs.push("short names (non FQDN) are not allowed".to_string());
    }
    if let Err(e) = wildcard_domain(hostname)
        && !(is_gateway && is_ip(hostname))
    {
        errs.push(e);
    }
    if let Err(e) = partial_wildcard(hostname) {
        errs.push(e);
    }
    errs
}

/// `protocol.Parse(p).IsHTTP()`: HTTP, HTTP2, HTTP_PROXY, GRPC and GRPC-Web (any case).
pub fn protocol_is_http(p: &str) -> bool {
    matches!(
        p.to_ascii_lowercase().as_str(),
        "http" | "http2" | "http_proxy" | "grpc" | "grpc-web"
    )
}

/// `protocol.Parse(p).IsTLS()`: HTTPS and TLS (any case).
pub fn protocol_is_tls(p: &str) -> bool {
    matches!(p.to_ascii_lowercase().as_str(), "https" | "tls")
}

/// `protocol.Parse(p).IsTCP()`: TCP, HTTPS, TLS, Mongo, Redis and MySQL (any case; not UDP, not "").
pub fn protocol_is_tcp(p: &str) -> bool {
    matches!(
        p.to_ascii_lowercase().as_str(),
        "tcp" | "https" | "tls" | "mongo" | "redis" | "mysql"
    )
}

/// `agent.ValidateIPAddress`.
pub fn ip_address(s: &str) -> Result<(), String> {
    if is_ip(s) {
        Ok(())
    } else {
        Err(format!("{s} is not a valid IP"))
    }
}

/// `ValidateUnixAddress`, for the part after `unix://`: an abstract name (`@x`) or an absolute
/// path to a file.
pub fn unix_address(addr: &str) -> Result<(), String> {
    if addr.is_empty() {
        return Err("unix address must not be empty".to_string());
    }
    if addr.starts_with('@') {
        return Ok(());
    }
    if !addr.starts_with('/') || addr.ends_with('/') {
        return Err(format!("{addr} is not an absolute path to a file"));
    }
    Ok(())
}

/// `ValidateAlphaWorkloadSelector` (the `workloadSelector: {labels}` of Sidecar and
/// ServiceEntry): empty keys and wildcards are errors. Returns `false` when it reported one, in
/// which case Istio validates nothing else of the resource. Each caller words its own warning for
/// a selector without labels.
pub fn check_alpha_selector(out: &mut Findings, path: &FieldPath, sel: &LabelSelector) -> bool {
    let mut ok = true;
    let labels_path = path.field("labels");
    for (k, v) in sel.labels.iter().flatten() {
        let pair = format!("{k}={v}");
        if k.is_empty() {
            out.error(
                &labels_path,
                format!("empty key is not supported in selector: {pair:?}"),
            );
            ok = false;
        }
        if k.contains('*') || v.contains('*') {
            out.error(
                labels_path.key(k),
                format!("wildcard is not supported in selector: {pair:?}"),
            );
            ok = false;
        }
    }
    ok
}

/// `validateDestination`: a host other than `*`, a DNS-1123 subset name and a valid port.
pub fn check_destination(out: &mut Findings, path: &FieldPath, d: &crate::model::Destination) {
    let host = path.field("host");
    if d.host == "*" {
        out.error(&host, format!("invalid destination host {}", d.host));
    } else if let Err(e) = wildcard_domain(&d.host) {
        out.error(&host, e);
    }
    if let Some(subset) = d
        .subset
        .as_deref()
        .filter(|s| !s.is_empty() && !is_dns1123_label(s))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        assert!(fqdn("reviews").is_ok());
        assert!(fqdn("reviews.default.svc.cluster.local").is_ok());
        assert!(fqdn("istio.io.").is_ok());
        assert!(fqdn("1.2.3.4").is_err());
        assert!(fqdn("a..b").is_err());
        assert_eq!(fqdn("").unwrap_err(), "empty domain name not allowed");
        assert!(wildcard_domain("*").is_ok());
        assert!(wildcard_domain("*.foo.com").is_ok());
        assert!(wildcard_domain("foo.*.com").is_err());
        assert!(wildcard_domain("bad_host").is_err());
        assert!(partial_wildcard("*foo.com").is_err());
        assert!(partial_wildcard("*.foo.com").is_ok());
    }

    #[test]
    fn subnets() {
        assert!(ip_subnet("10.0.0.0/8").is_ok());
        assert!(ip_subnet("10.0.0.1").is_ok());
        assert!(ip_subnet("::1/128").is_ok());
        assert!(ip_subnet("10.0.0.0/33").is_err());
        assert!(ip_subnet("nope").is_err());
    }

    #[test]
    fn durations() {
        let mut out = Findings::default();
        let p = FieldPath::new("t");
        assert!(check_duration(&mut out, &p, &DurationText("5s".into())).is_some());
        assert!(check_duration(&mut out, &p, &DurationText("1ms".into())).is_some());
        assert!(!out.has_errors());
        for bad in ["5x", "0s", "500us", "1.5ms", "-1s", "5"] {
            let mut out = Findings::default();
            check_duration(&mut out, &p, &DurationText(bad.into()));
            assert!(out.has_errors(), "{bad}");
        }
    }

    #[test]
    fn header_names_and_values() {
        assert!(header_name_for_match("end-user").is_ok());
        assert!(header_name_for_match("@request.auth.claims.group").is_ok());
        assert!(header_name_for_match("bad header").is_err());
        assert!(header_name_for_request_set(":authority").is_ok());
        assert!(header_name_for_request_set(":path").is_err());
        assert!(header_name_for_operation("Host").is_err());
        assert!(header_value("100%%").is_ok());
        assert!(header_value("%HOSTNAME%").is_ok());
        assert!(header_value("abc%123").is_err());
        assert!(header_value("a\nb").is_err());
    }

    #[test]
    fn regexes() {
        let p = FieldPath::new("r");
        let mut out = Findings::default();
        check_regex(&mut out, &p, ".*Chrome.*", "headers");
        assert!(!out.has_errors());
        for bad in ["[a", "(?=x)", r"(a)\1", ""] {
            let mut out = Findings::default();
            check_regex(&mut out, &p, bad, "uri");
            assert!(out.has_errors(), "{bad}");
        }
    }

    #[test]
    fn labels_and_export_to() {
        let mut out = Findings::default();
        let p = FieldPath::new("l");
        let good: BTreeMap<_, _> = [
            ("app".to_string(), "v1".to_string()),
            ("k8s.io/name".into(), "".into()),
        ]
        .into();
        check_labels(&mut out, &p, &good);
        assert!(!out.has_errors());
        let bad: BTreeMap<_, _> = [("-bad".to_string(), "v".to_string())].into();
        check_labels(&mut out, &p, &bad);
        assert!(out.has_errors());
        let mut out = Findings::default();
        check_export_to(&mut out, &p, "ns", &[".".into(), "ns".into()], false, false);
        assert!(out.has_errors());
        let mut out = Findings::default();
        check_export_to(
            &mut out,
            &p,
            "ns",
            &["*".into(), "other".into()],
            false,
            false,
        );
        assert!(out.has_errors());
    }

    #[test]
    fn gateway_and_sidecar_hosts() {
        assert!(namespace_slash_host("*/foo.example.com", true).is_empty());
        assert!(namespace_slash_host("foo.example.com", true).is_empty());
        assert!(!namespace_slash_host("foo", true).is_empty());
        assert!(namespace_slash_host("./*", false).is_empty());
        assert!(namespace_slash_host("istio-system/*", false).is_empty());
        assert!(!namespace_slash_host("foo.com", false).is_empty());
    }
}
