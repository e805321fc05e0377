//! Value checks for AuthorizationPolicy lists and `when` conditions, after Istio's
//! `pkg/config/security`: which values a `when` key takes, and IPs/CIDRs, ports, service
//! accounts and path templates.

use std::net::{IpAddr, Ipv6Addr};

use crate::diagnostic::{FieldPath, Findings};

/// What the values of a list (or of a `when` key) must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Values {
    /// Anything non-empty.
    Plain,
    /// An address or CIDR block (`security.ValidateIPs`).
    Ip,
    /// A port in `0..=65535` (`security.ValidatePorts`).
    Port,
    /// A path, possibly a `{*}`/`{**}` template (`security.CheckValidPathTemplate`).
    Path,
    /// `sa` or `ns/sa`, at most 16 of them (`security.CheckServiceAccount`).
    ServiceAccount,
}

/// `security.ValidateAttribute`'s key switch: which values a `when` key takes, or why the key
/// is rejected.
pub(super) fn attribute_kind(key: &str) -> Result<Values, String> {
    let map = |k: &str| map_key(k).map(|()| Values::Plain);
    if key.starts_with("request.headers") || key.starts_with("request.experimental.inline.headers")
    {
        return map(key);
    }
    match key {
        "source.ip" | "remote.ip" | "destination.ip" => Ok(Values::Ip),
        "destination.port" => Ok(Values::Port),
        "source.serviceAccount" => Ok(Values::ServiceAccount),
        "source.namespace"
        | "source.principal"
        | "request.auth.principal"
        | "request.auth.audiences"
        | "request.auth.presenter"
        | "connection.sni" => Ok(Values::Plain),
        "destination.namespace" => Err(format!(
            "attribute {key} is replaced by the metadata.namespace"
        )),
        "destination.name" | "destination.user" => Err(format!(
            "deprecated attribute {key}: only supported in v1alpha1"
        )),
        _ if key.starts_with("request.auth.claims")
            || key.starts_with("experimental.envoy.filters.") =>
        {
            map(key)
        }
        _ if key.starts_with("destination.labels") => Err(format!(
            "attribute {key} is replaced by the workload selector"
        )),
        _ => Err(format!("unknown attribute: {key}")),
    }
}

/// `validateMapKey`: `name[entry]` with a non-empty entry.
fn map_key(key: &str) -> Result<(), String> {
    match key.find('[') {
        Some(open) if key.ends_with(']') && open > 0 && open + 2 < key.len() => Ok(()),
        _ => Err(format!("bad key ({key}): should have format a[b]")),
    }
}

/// Checks every value of one list. `name` is what "found in %s" messages say (the Go field
/// name, or the `when` key), `prefix` what each message starts with.
pub(super) fn check_values(
    out: &mut Findings,
    path: &FieldPath,
    name: &str,
    kind: Values,
    values: &[String],
    prefix: &str,
) {
    if kind == Values::ServiceAccount && values.len() > 16 {
        out.error(path, format!("{prefix}may not have more than 16 values"));
        return;
    }
    for (j, value) in values.iter().enumerate() {
        let result = if value.is_empty() {
            Err(format!("empty value not allowed, found in {name}"))
        } else {
            match kind {
                Values::Plain => Ok(()),
                Values::Ip => ip_or_cidr(value),
                Values::Port => port(value),
                Values::Path => path_template(value, name),
                Values::ServiceAccount => service_account(value, name),
            }
        };
        if let Err(e) = result {
            out.error(path.index(j), format!("{prefix}{e}"));
        }
    }
}

/// `security.ValidateIPs` for one value: with a `/`, Go's `netip.ParsePrefix`, otherwise
/// `netip.ParseAddr` (which, unlike Rust, accepts an IPv6 zone such as `fe80::1%eth0`).
fn ip_or_cidr(value: &str) -> Result<(), String> {
    if value.contains('/') {
        return prefix(value)
            .map_err(|e| format!("bad CIDR range ({value}): netip.ParsePrefix({value:?}): {e}"));
    }
    let ok = match value.split_once('%') {
        Some((addr, zone)) => !zone.is_empty() && addr.parse::<Ipv6Addr>().is_ok(),
        None => value.parse::<IpAddr>().is_ok(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("bad IP address ({value})"))
    }
}

/// `netip.ParsePrefix`: an address without zone, then a prefix length without sign or leading
/// zeros that fits the address family. Host bits may be set.
fn prefix(value: &str) -> Result<(), String> {
    let (addr, bits) = value.rsplit_once('/').unwrap_or((value, ""));
    if addr.contains('%') {
        return Err("IPv6 zones cannot be present in a prefix".to_string());
    }
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return Err(format!("ParseAddr({addr:?}): unable to parse IP"));
    };
    let well_formed = bits == "0"
        || (bits.starts_with(|c: char| ('1'..='9').contains(&c))
            && bits.bytes().all(|b| b.is_ascii_digit()));
    let Some(bits) = bits.parse::<u32>().ok().filter(|_| well_formed) else {
        return Err(format!("bad bits after slash: {bits:?}"));
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if bits > max {
        return Err("prefix length out of range".to_string());
    }
    Ok(())
}

/// `security.ValidatePorts` for one value: `strconv.ParseUint(v, 10, 32)` and at most 65535
/// (0 is accepted, as in Istio).
fn port(value: &str) -> Result<(), String> {
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "bad port ({value}): strconv.ParseUint: parsing {value:?}: invalid syntax"
        ));
    }
    match value.parse::<u32>() {
        Ok(p) if p <= 65535 => Ok(()),
        Ok(_) => Err(format!(
            "bad port ({value}): port must be in the range 0..65535"
        )),
        Err(_) => Err(format!(
            "bad port ({value}): strconv.ParseUint: parsing {value:?}: value out of range"
        )),
    }
}

/// `security.CheckServiceAccount` for one (non-empty) value: `sa` or `ns/sa`, no wildcard.
fn service_account(value: &str, name: &str) -> Result<(), String> {
    let format = "expected format 'serviceAccount' or 'namespace/serviceAccount', found";
    if value.contains('*') {
        return Err(format!("wildcard not allowed, found in {name}"));
    }
    if value.matches('/').count() > 1 {
        return Err(format!("{format} {value:?} in {name}"));
    }
    if value.len() > 320 {
        return Err(format!(
            "value cannot exceed 320 characters, found {value:?} in {name}"
        ));
    }
    match value.split_once('/') {
        Some(("", _)) => Err(format!("{format} empty namespace {value:?} in {name}")),
        Some((_, "")) => Err(format!("{format} empty serviceAccount {value:?} in {name}")),
        _ => Ok(()),
    }
}

/// `security.CheckValidPathTemplate` for one path: `{*}` and a final `{**}` are the only
/// templates, and a templated path's literal segments must be URI path characters.
fn path_template(path: &str, name: &str) -> Result<(), String> {
    let templated = path.contains("{*}") || path.contains("{**}");
    let trimmed = path.trim_matches('/');
    let bad = |why: String| {
        Err(format!(
            "invalid or unsupported path {trimmed}, found in {name}. {why}"
        ))
    };
    let mut match_any_seen = false;
    for glob in trimmed.split('/') {
        match glob {
            "{*}" | "{**}" if match_any_seen => {
                return bad("{**} is not the last operator".to_string());
            }
            "{*}" => continue,
            "{**}" => {
                match_any_seen = true;
                continue;
            }
            _ => {}
        }
        if glob.contains(['{', '}']) {
            return bad("Contains '{' or '}' beyond a supported path template".to_string());
        }
        let literal = |b: u8| b.is_ascii_alphanumeric() || b"-._~%!$&'()+,;:@=".contains(&b);
        if templated && (glob.is_empty() || !glob.bytes().all(literal)) {
            return bad(format!(
                "Contains segment {glob} with invalid string literal"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_keys() {
        for key in [
            "request.headers[x-id]",
            "request.experimental.inline.headers[x]",
            "source.namespace",
            "source.principal",
            "request.auth.principal",
            "request.auth.audiences",
            "request.auth.presenter",
            "request.auth.claims[groups]",
            "request.auth.claims[nested][key]",
            "connection.sni",
            "experimental.envoy.filters.a.b[c]",
        ] {
            assert_eq!(attribute_kind(key), Ok(Values::Plain), "{key}");
        }
        assert_eq!(attribute_kind("source.ip"), Ok(Values::Ip));
        assert_eq!(attribute_kind("remote.ip"), Ok(Values::Ip));
        assert_eq!(attribute_kind("destination.ip"), Ok(Values::Ip));
        assert_eq!(attribute_kind("destination.port"), Ok(Values::Port));
        assert_eq!(
            attribute_kind("source.serviceAccount"),
            Ok(Values::ServiceAccount)
        );
        for key in [
            "source.ips",
            "request.method",
            "destination.labels[app]",
            "[x]",
            "request.headers[x]y",
        ] {
            assert!(attribute_kind(key).is_err(), "{key}");
        }
    }

    #[test]
    fn map_keys() {
        assert!(map_key("a[b]").is_ok());
        assert!(map_key("a[]").is_err());
        assert!(map_key("[b]").is_err());
        assert!(map_key("a").is_err());
        assert!(map_key("a[b").is_err());
    }

    #[test]
    fn ips_and_prefixes() {
        for ok in [
            "1.2.3.4",
            "::1",
            "::ffff:1.2.3.4",
            "fe80::1%eth0",
            "0.0.0.0/0",
            "10.0.0.1/8",
            "::/0",
            "2001:db8::/128",
        ] {
            assert!(ip_or_cidr(ok).is_ok(), "{ok}");
        }
        for bad in [
            "1.2.3",
            "01.2.3.4",
            "1.2.3.4%eth0",
            "fe80::1%",
            "1.2.3.4/",
            "1.2.3.4/+8",
            "1.2.3.4/-1",
            "::/129",
            "a/8",
            "1.2.3.4/8/8",
        ] {
            assert!(ip_or_cidr(bad).is_err(), "{bad}");
        }
        assert_eq!(ip_or_cidr("x").unwrap_err(), "bad IP address (x)");
    }

    #[test]
    fn ports() {
        for ok in ["0", "80", "65535", "008080"] {
            assert!(port(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            port("65536").unwrap_err(),
            "bad port (65536): port must be in the range 0..65535"
        );
        assert_eq!(
            port("+80").unwrap_err(),
            "bad port (+80): strconv.ParseUint: parsing \"+80\": invalid syntax"
        );
        assert!(
            port("4294967296")
                .unwrap_err()
                .ends_with("value out of range")
        );
    }

    #[test]
    fn service_accounts() {
        assert!(service_account("sa", "K").is_ok());
        assert!(service_account("ns/sa", "K").is_ok());
        assert_eq!(
            service_account("*", "K").unwrap_err(),
            "wildcard not allowed, found in K"
        );
        assert!(service_account("a/b/c", "K").is_err());
        assert!(
            service_account("/", "K")
                .unwrap_err()
                .contains("empty namespace")
        );
    }

    #[test]
    fn path_templates() {
        assert!(path_template("/a/{*}/{**}", "Paths").is_ok());
        assert!(path_template("/a/b{c}", "Paths").is_err());
        assert!(path_template("/{**}/{**}", "Paths").is_err());
        assert!(path_template("/a b/{*}", "Paths").is_err());
        assert!(
            path_template("/a b/c", "Paths").is_ok(),
            "literals are free without a template"
        );
    }

    #[test]
    fn value_lists() {
        let mut out = Findings::default();
        let values = vec!["1.2.3.4".to_string(), String::new(), "x".to_string()];
        check_values(
            &mut out,
            &FieldPath::new("l"),
            "IpBlocks",
            Values::Ip,
            &values,
            "p: ",
        );
        let found: Vec<_> = out
            .iter()
            .map(|f| (f.field.as_str(), f.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("l[1]", "p: empty value not allowed, found in IpBlocks"),
                ("l[2]", "p: bad IP address (x)")
            ]
        );
    }
}
