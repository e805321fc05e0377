//! Value matchers for AuthorizationPolicy fields: Istio's string forms (exact, `abc*`, `*abc`,
//! `*`), path templates (`{*}`, `{**}`), CIDR blocks, ports and service accounts.

use std::net::IpAddr;

/// One attribute value taken from a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value<'a> {
    Str(&'a str),
    Owned(String),
    Ip(IpAddr),
    Port(u16),
}

/// A compiled matcher for one policy value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Matcher {
    Str(StringMatch),
    /// Host names: both sides compared in lower case.
    Host(StringMatch),
    Path(PathTemplate),
    Cidr(Cidr),
    Port(u16),
    /// `serviceAccounts` / `source.serviceAccount`, matched against a principal.
    ServiceAccount {
        namespace: String,
        name: String,
    },
    /// A value that cannot match anything (rejected by validation; kept fail-safe here).
    Never,
}

impl Matcher {
    pub(super) fn matches(&self, value: &Value<'_>) -> bool {
        match (self, value) {
            (Matcher::Str(m), v) => v.text().is_some_and(|t| m.matches(t)),
            (Matcher::Host(m), v) => v.text().is_some_and(|t| m.matches(&t.to_ascii_lowercase())),
            (Matcher::Path(m), v) => v.text().is_some_and(|t| m.matches(t)),
            (Matcher::Cidr(c), Value::Ip(ip)) => c.contains(*ip),
            (Matcher::Port(p), Value::Port(q)) => p == q,
            (Matcher::ServiceAccount { namespace, name }, v) => v
                .text()
                .and_then(principal_identity)
                .is_some_and(|(ns, sa)| ns == namespace && sa == name),
            _ => false,
        }
    }
}

impl Value<'_> {
    fn text(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            Value::Owned(s) => Some(s),
            Value::Ip(_) | Value::Port(_) => None,
        }
    }
}

/// Istio's string match forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum StringMatch {
    Exact(String),
    Prefix(String),
    Suffix(String),
    /// `*`: any non-empty value.
    Presence,
}

impl StringMatch {
    pub(super) fn parse(pattern: &str) -> StringMatch {
        if pattern == "*" {
            StringMatch::Presence
        } else if let Some(rest) = pattern.strip_prefix('*') {
            StringMatch::Suffix(rest.to_string())
        } else if let Some(rest) = pattern.strip_suffix('*') {
            StringMatch::Prefix(rest.to_string())
        } else {
            StringMatch::Exact(pattern.to_string())
        }
    }

    pub(super) fn matches(&self, value: &str) -> bool {
        match self {
            StringMatch::Exact(s) => value == s,
            StringMatch::Prefix(s) => value.starts_with(s.as_str()),
            StringMatch::Suffix(s) => value.ends_with(s.as_str()),
            StringMatch::Presence => !value.is_empty(),
        }
    }
}

/// A `paths` value: a plain string match, or an Istio path template where `{*}` is exactly one
/// non-empty segment and a trailing `{**}` is one or more characters (slashes included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PathTemplate {
    Plain(StringMatch),
    Template(Vec<Segment>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Segment {
    Literal(String),
    One,
    Rest,
}

impl PathTemplate {
    pub(super) fn parse(pattern: &str) -> PathTemplate {
        if !pattern.contains("{*}") && !pattern.contains("{**}") {
            return PathTemplate::Plain(StringMatch::parse(pattern));
        }
        let segments = pattern
            .split('/')
            .map(|s| match s {
                "{*}" => Segment::One,
                "{**}" => Segment::Rest,
                other => Segment::Literal(other.to_string()),
            })
            .collect();
        PathTemplate::Template(segments)
    }

    pub(super) fn matches(&self, path: &str) -> bool {
        let segments = match self {
            PathTemplate::Plain(m) => return m.matches(path),
            PathTemplate::Template(segments) => segments,
        };
        let mut parts = path.split('/');
        for (i, segment) in segments.iter().enumerate() {
            match segment {
                Segment::Rest => {
                    // Only valid last; the rest of the path must be non-empty.
                    let rest: Vec<&str> = parts.collect();
                    return i + 1 == segments.len() && !rest.join("/").is_empty();
                }
                Segment::One => match parts.next() {
                    Some(p) if !p.is_empty() => {}
                    _ => return false,
                },
                Segment::Literal(l) => match parts.next() {
                    Some(p) if p == l => {}
                    _ => return false,
                },
            }
        }
        parts.next().is_none()
    }
}

/// An address block: `10.0.0.0/8`, `2001:db8::/32` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cidr {
    addr: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Parses a CIDR or a single address (an IPv6 zone such as `%eth0` is ignored).
    pub(super) fn parse(text: &str) -> Option<Cidr> {
        let (addr, bits) = match text.split_once('/') {
            Some((addr, bits)) => (addr, Some(bits.parse::<u8>().ok()?)),
            None => (text.split_once('%').map_or(text, |(a, _)| a), None),
        };
        let addr = addr.parse::<IpAddr>().ok()?.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        (bits <= max).then_some(Cidr { addr, bits })
    }

    pub(super) fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// `(namespace, service account)` of a principal `<trust-domain>/ns/<ns>/sa/<sa>`.
pub(super) fn principal_identity(principal: &str) -> Option<(&str, &str)> {
    let (_, path) = principal.split_once("/ns/")?;
    let (ns, sa) = path.split_once("/sa/")?;
    (!ns.is_empty() && !sa.is_empty() && !sa.contains('/')).then_some((ns, sa))
}

/// A `serviceAccounts` value: `ns/sa`, or `sa` in the policy's namespace.
pub(super) fn service_account(value: &str, policy_namespace: &str) -> Matcher {
    let (namespace, name) = value.split_once('/').unwrap_or((policy_namespace, value));
    Matcher::ServiceAccount {
        namespace: namespace.to_string(),
        name: name.to_string(),
    }
}
