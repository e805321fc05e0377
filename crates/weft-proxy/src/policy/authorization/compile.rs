//! Compiles AuthorizationPolicy rules into attribute predicates, and evaluates them against a
//! request's attributes with Istio's tri-state handling of unavailable attributes.

use weft_api::model::{Condition, Operation, Rule, Source};

use super::RequestAttributes;
use super::matcher::{Cidr, Matcher, PathTemplate, StringMatch, Value, service_account};

/// A request attribute a predicate reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Attr {
    Principal,
    Namespace,
    SourceIp,
    RemoteIp,
    RequestPrincipal,
    Host,
    Port,
    Method,
    Path,
    /// Lower-case header name.
    Header(String),
    /// Claim path: `request.auth.claims[a][b]` is `["a", "b"]`.
    Claim(Vec<String>),
    DestinationIp,
    Sni,
    /// A key weft cannot evaluate (`experimental.envoy.filters.*`): always unavailable.
    Unsupported,
}

/// One field of a Source/Operation/Condition: some value of `attr` matches some matcher
/// (or, when `negate`, none does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Field {
    attr: Attr,
    matchers: Vec<Matcher>,
    negate: bool,
}

/// A compiled rule: any `from` alternative, any `to` alternative, every `when` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CompiledRule {
    from: Vec<Vec<Field>>,
    to: Vec<Vec<Field>>,
    when: Vec<Field>,
}

impl CompiledRule {
    pub(super) fn compile(rule: &Rule, policy_namespace: &str) -> CompiledRule {
        let from = rule.from.iter().flatten();
        let to = rule.to.iter().flatten();
        CompiledRule {
            from: from
                .map(|f| {
                    f.source
                        .as_ref()
                        .map_or_else(Vec::new, |s| source(s, policy_namespace))
                })
                .collect(),
            to: to
                .map(|t| t.operation.as_ref().map_or_else(Vec::new, operation))
                .collect(),
            when: rule
                .when
                .iter()
                .flatten()
                .flat_map(|c| condition(c, policy_namespace))
                .collect(),
        }
    }

    /// Whether the rule matches; `unavailable` is what a field whose attribute the request
    /// lacks evaluates to (false for ALLOW/AUDIT, true for DENY).
    pub(super) fn matches(&self, req: &RequestAttributes<'_>, unavailable: bool) -> bool {
        let all = |fields: &[Field]| fields.iter().all(|f| f.matches(req).unwrap_or(unavailable));
        let any = |alts: &[Vec<Field>]| alts.is_empty() || alts.iter().any(|a| all(a));
        any(&self.from) && any(&self.to) && all(&self.when)
    }
}

impl Field {
    fn new(attr: Attr, matchers: Vec<Matcher>, negate: bool) -> Field {
        Field {
            attr,
            matchers,
            negate,
        }
    }

    /// `None` when the attribute is unavailable for this request.
    fn matches(&self, req: &RequestAttributes<'_>) -> Option<bool> {
        let values = lookup(&self.attr, req)?;
        let any = values
            .iter()
            .any(|v| self.matchers.iter().any(|m| m.matches(v)));
        Some(any != self.negate)
    }
}

/// The attribute's values, or `None` when it is unavailable: HTTP-only attributes on plain
/// TCP, peer identity without mTLS, and unsupported keys.
fn lookup<'a>(attr: &Attr, req: &RequestAttributes<'a>) -> Option<Vec<Value<'a>>> {
    let http_only = matches!(
        attr,
        Attr::RequestPrincipal
            | Attr::Host
            | Attr::Method
            | Attr::Path
            | Attr::Header(_)
            | Attr::Claim(_)
    );
    if http_only && !req.http {
        return None;
    }
    let one = |s: Option<&'a str>| s.map(Value::Str).into_iter().collect();
    Some(match attr {
        Attr::Principal => vec![Value::Str(req.source_principal?)],
        Attr::Namespace => vec![Value::Str(req.source_namespace?)],
        Attr::SourceIp => vec![Value::Ip(req.source_ip)],
        Attr::RemoteIp => vec![Value::Ip(req.remote_ip)],
        Attr::RequestPrincipal => one(req.request_principal),
        Attr::Host => vec![Value::Str(req.host)],
        Attr::Port => vec![Value::Port(req.destination_port)],
        Attr::Method => vec![Value::Str(req.method)],
        Attr::Path => vec![Value::Str(req.path)],
        Attr::Header(name) => header_values(req, name),
        Attr::Claim(path) => claim_values(req.jwt_claims, path),
        Attr::DestinationIp => vec![Value::Ip(req.destination_ip)],
        Attr::Sni => one(req.sni),
        Attr::Unsupported => return None,
    })
}

/// Every value of a header, each line on its own and each comma-separated element of it, so
/// `x-role: user,admin` and two `x-role` lines both expose `admin` (CVE-2026-26308).
fn header_values<'a>(req: &RequestAttributes<'a>, name: &str) -> Vec<Value<'a>> {
    let Some(headers) = req.headers else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in headers.get_all(name).iter().filter_map(|v| v.to_str().ok()) {
        out.push(Value::Str(line));
        if line.contains(',') {
            out.extend(line.split(',').map(|s| Value::Str(s.trim())));
        }
    }
    out
}

/// A claim's values: a string, or each string of a list (numbers and booleans as text).
fn claim_values<'a>(claims: Option<&'a serde_json::Value>, path: &[String]) -> Vec<Value<'a>> {
    let mut node = claims;
    for key in path {
        node = node.and_then(|n| n.get(key.as_str()));
    }
    let scalar = |v: &'a serde_json::Value| match v {
        serde_json::Value::String(s) => Some(Value::Str(s.as_str())),
        serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {
            Some(Value::Owned(v.to_string()))
        }
        _ => None,
    };
    match node {
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(scalar).collect(),
        Some(v) => scalar(v).into_iter().collect(),
        None => Vec::new(),
    }
}

fn strings(values: &[String], f: impl Fn(&str) -> Matcher) -> Vec<Matcher> {
    values.iter().map(|v| f(v)).collect()
}

fn text(v: &str) -> Matcher {
    Matcher::Str(StringMatch::parse(v))
}

fn host(v: &str) -> Matcher {
    Matcher::Host(StringMatch::parse(&v.to_ascii_lowercase()))
}

fn cidr(v: &str) -> Matcher {
    Cidr::parse(v).map_or(Matcher::Never, Matcher::Cidr)
}

fn port(v: &str) -> Matcher {
    v.parse::<u16>().map_or(Matcher::Never, Matcher::Port)
}

fn path(v: &str) -> Matcher {
    Matcher::Path(PathTemplate::parse(v))
}

/// Adds the positive and negated fields of one list pair.
fn pair(
    out: &mut Vec<Field>,
    attr: Attr,
    values: &Option<Vec<String>>,
    not_values: &Option<Vec<String>>,
    f: impl Fn(&str) -> Matcher,
) {
    if let Some(v) = values {
        out.push(Field::new(attr.clone(), strings(v, &f), false));
    }
    if let Some(v) = not_values {
        out.push(Field::new(attr, strings(v, &f), true));
    }
}

fn source(s: &Source, policy_namespace: &str) -> Vec<Field> {
    let mut out = Vec::new();
    pair(
        &mut out,
        Attr::Principal,
        &s.principals,
        &s.not_principals,
        text,
    );
    let sa = |v: &str| service_account(v, policy_namespace);
    pair(
        &mut out,
        Attr::Principal,
        &s.service_accounts,
        &s.not_service_accounts,
        sa,
    );
    let (rp, not_rp) = (&s.request_principals, &s.not_request_principals);
    pair(&mut out, Attr::RequestPrincipal, rp, not_rp, text);
    pair(
        &mut out,
        Attr::Namespace,
        &s.namespaces,
        &s.not_namespaces,
        text,
    );
    pair(
        &mut out,
        Attr::SourceIp,
        &s.ip_blocks,
        &s.not_ip_blocks,
        cidr,
    );
    let (rip, not_rip) = (&s.remote_ip_blocks, &s.not_remote_ip_blocks);
    pair(&mut out, Attr::RemoteIp, rip, not_rip, cidr);
    out
}

fn operation(o: &Operation) -> Vec<Field> {
    let mut out = Vec::new();
    pair(&mut out, Attr::Host, &o.hosts, &o.not_hosts, host);
    pair(&mut out, Attr::Port, &o.ports, &o.not_ports, port);
    pair(&mut out, Attr::Method, &o.methods, &o.not_methods, text);
    pair(&mut out, Attr::Path, &o.paths, &o.not_paths, path);
    out
}

/// One `when` condition: a field for `values` and one for `notValues`.
fn condition(c: &Condition, policy_namespace: &str) -> Vec<Field> {
    let mut out = Vec::new();
    let (attr, f): (Attr, fn(&str) -> Matcher) = match c.key.as_str() {
        "source.ip" => (Attr::SourceIp, cidr),
        "remote.ip" => (Attr::RemoteIp, cidr),
        "destination.ip" => (Attr::DestinationIp, cidr),
        "destination.port" => (Attr::Port, port),
        "source.namespace" => (Attr::Namespace, text),
        "source.principal" => (Attr::Principal, text),
        "request.auth.principal" => (Attr::RequestPrincipal, text),
        "request.auth.audiences" => (Attr::Claim(vec!["aud".into()]), text),
        "request.auth.presenter" => (Attr::Claim(vec!["azp".into()]), text),
        "connection.sni" => (Attr::Sni, text),
        "source.serviceAccount" => {
            let sa = |v: &str| service_account(v, policy_namespace);
            let values = c.values.as_ref().map(|v| strings(v, sa));
            let not_values = c.not_values.as_ref().map(|v| strings(v, sa));
            push_condition(&mut out, Attr::Principal, values, not_values);
            return out;
        }
        key => (keyed_attr(key), text),
    };
    let values = c.values.as_ref().map(|v| strings(v, f));
    let not_values = c.not_values.as_ref().map(|v| strings(v, f));
    push_condition(&mut out, attr, values, not_values);
    out
}

fn push_condition(
    out: &mut Vec<Field>,
    attr: Attr,
    values: Option<Vec<Matcher>>,
    not_values: Option<Vec<Matcher>>,
) {
    if let Some(m) = values {
        out.push(Field::new(attr.clone(), m, false));
    }
    if let Some(m) = not_values {
        out.push(Field::new(attr, m, true));
    }
}

/// `request.headers[Name]` and `request.auth.claims[a][b]`; anything else is unsupported.
fn keyed_attr(key: &str) -> Attr {
    let header = key
        .strip_prefix("request.headers")
        .or_else(|| key.strip_prefix("request.experimental.inline.headers"));
    if let Some([name]) = header.and_then(brackets).as_deref() {
        return Attr::Header(name.to_ascii_lowercase());
    }
    match key.strip_prefix("request.auth.claims").and_then(brackets) {
        Some(path) => Attr::Claim(path),
        None => Attr::Unsupported,
    }
}

/// `[a][b]` → `["a", "b"]`; `None` unless the whole text is non-empty bracket groups.
fn brackets(mut text: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    while !text.is_empty() {
        let (inner, rest) = text.strip_prefix('[')?.split_once(']')?;
        if inner.is_empty() {
            return None;
        }
        out.push(inner.to_string());
        text = rest;
    }
    (!out.is_empty()).then_some(out)
}
