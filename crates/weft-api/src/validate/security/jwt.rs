//! RequestAuthentication validation (Istio's `ValidateRequestAuthentication` and
//! `validateJwtRule`): selector and targets, then each JWT rule's issuer, key source, token
//! locations, claim-to-header outputs and fetch timeout.
//!
//! Two findings are weft's own and only warnings, since Istio accepts both configurations:
//! `jwks` together with `jwksUri` (the inline set wins and the URI is never fetched), and two
//! rules with the same issuer.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{check_selector_and_targets, common};
use crate::diagnostic::{FieldPath, Findings};
use crate::model::{JwtRule, RequestAuthentication};

/// Validates a RequestAuthentication: targets, each JWT rule, and repeated issuers.
pub fn check_request_authentication(
    ra: &RequestAuthentication,
    path: &FieldPath,
    out: &mut Findings,
) {
    check_selector_and_targets(
        out,
        path,
        ra.selector.as_ref(),
        ra.target_ref.as_ref(),
        &ra.target_refs,
    );
    let rules = path.field("jwtRules");
    let mut issuers: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, rule) in ra.jwt_rules.iter().enumerate() {
        let p = rules.index(i);
        check_jwt_rule(rule, &p, out);
        if rule.issuer.is_empty() {
            continue;
        }
        match issuers.get(rule.issuer.as_str()) {
            Some(first) => out.warn(
                p.field("issuer"),
                format!(
                    "issuer {} is already used by jwtRules[{first}]",
                    rule.issuer
                ),
            ),
            None => {
                issuers.insert(&rule.issuer, i);
            }
        }
    }
}

/// `validateJwtRule`.
fn check_jwt_rule(rule: &JwtRule, path: &FieldPath, out: &mut Findings) {
    for (i, audience) in rule.audiences.iter().enumerate() {
        if audience.is_empty() {
            out.error(
                path.field("audiences").index(i),
                "audience must be non-empty string",
            );
        }
    }
    let jwks_uri = rule.jwks_uri.as_deref().unwrap_or_default();
    let jwks = rule.jwks.as_deref().unwrap_or_default();
    if rule.issuer.is_empty() && jwks_uri.is_empty() {
        out.error(
            path.field("issuer"),
            "issuer or jwksUri must be non-empty string",
        );
    }
    if let Err(e) = parse_jwks_uri(jwks_uri) {
        out.error(path.field("jwksUri"), e);
    }
    if !jwks.is_empty() {
        if let Err(e) = parse_jwks(jwks) {
            out.error(path.field("jwks"), format!("jwks parse error: {e}"));
        }
        if !jwks_uri.is_empty() {
            out.warn(
                path.field("jwksUri"),
                "jwks and jwksUri are both set: jwks is used and jwksUri is ignored",
            );
        }
    }
    check_token_locations(rule, path, out);
    check_claim_headers(rule, path, out);
    if let Some(timeout) = &rule.timeout {
        common::check_duration(out, &path.field("timeout"), timeout);
    }
}

/// `fromHeaders`, `fromParams` and `fromCookies` entries must be non-empty (header prefixes are
/// not checked, as in Istio).
fn check_token_locations(rule: &JwtRule, path: &FieldPath, out: &mut Findings) {
    for (i, header) in rule.from_headers.iter().enumerate() {
        if header.name.is_empty() {
            out.error(
                path.field("fromHeaders").index(i).field("name"),
                "location header name must be non-empty string",
            );
        }
    }
    for (i, param) in rule.from_params.iter().enumerate() {
        if param.is_empty() {
            out.error(
                path.field("fromParams").index(i),
                "location query must be non-empty string",
            );
        }
    }
    for (i, cookie) in rule.from_cookies.iter().enumerate() {
        if cookie.is_empty() {
            out.error(
                path.field("fromCookies").index(i),
                "cookie name must be non-empty string",
            );
        }
    }
}

/// `outputClaimToHeaders`: both fields set, the header a strict (`[-A-Za-z0-9]+`) name.
fn check_claim_headers(rule: &JwtRule, path: &FieldPath, out: &mut Findings) {
    for (i, c) in rule.output_claim_to_headers.iter().enumerate() {
        let p = path.field("outputClaimToHeaders").index(i);
        if c.header.is_empty() || c.claim.is_empty() {
            let field = if c.header.is_empty() {
                "header"
            } else {
                "claim"
            };
            out.error(
                p.field(field),
                "outputClaimToHeaders header and claim value must be non-empty string",
            );
        } else if let Err(e) = common::strict_header_name(&c.header) {
            out.error(p.field("header"), e);
        }
    }
}

/// `security.ParseJwksURI`: Go's `url.Parse` must accept it, the scheme must be `http` or
/// `https` (any case) and a port, if any, must be a number. Only the `url.Parse` failures that
/// matter for an absolute URL are reproduced: control characters, a bad host or a bad port.
/// An empty URI means "not set" and passes.
fn parse_jwks_uri(uri: &str) -> Result<(), String> {
    if uri.is_empty() {
        return Ok(());
    }
    let parse_err = |msg: String| format!("parse {uri:?}: {msg}");
    if uri.chars().any(|c| c.is_ascii_control()) {
        return Err(parse_err(
            "net/url: invalid control character in URL".to_string(),
        ));
    }
    let (scheme, rest) = match split_scheme(uri) {
        Ok(Some((scheme, rest))) => (scheme.to_ascii_lowercase(), rest),
        Ok(None) => (String::new(), uri),
        Err(e) => return Err(parse_err(e.to_string())),
    };
    let before_fragment = rest.split('#').next().unwrap_or_default();
    let before_query = before_fragment.split('?').next().unwrap_or_default();
    if let Some(authority) = before_query.strip_prefix("//") {
        let authority = authority.split('/').next().unwrap_or_default();
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        check_host_port(host).map_err(parse_err)?;
    }
    // weft extension for standalone proxies: a key set on disk, `file:///absolute/path`.
    if scheme == "file" {
        return match rest.strip_prefix("//") {
            Some(path) if path.starts_with('/') => Ok(()),
            _ => Err(format!(
                "parse {uri:?}: a file URI must name an absolute path (file:///path/to/jwks.json)"
            )),
        };
    }
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "URI scheme {scheme:?} is not supported (http, https, or file:///path)"
        ));
    }
    Ok(())
}

/// Go's `getScheme`: letters first, then letters, digits, `+`, `-` or `.` up to a `:`.
fn split_scheme(uri: &str) -> Result<Option<(&str, &str)>, &'static str> {
    for (i, c) in uri.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i == 0 => return Err("missing protocol scheme"),
            ':' => return Ok(Some((&uri[..i], &uri[i + 1..]))),
            _ => return Ok(None),
        }
    }
    Ok(None)
}

/// Go's `parseHost`: a bracketed IPv6 literal or a name, then an optional all-digit port.
fn check_host_port(host: &str) -> Result<(), String> {
    let (name, port) = if let Some(inner) = host.strip_prefix('[') {
        let Some(close) = inner.find(']') else {
            return Err("missing ']' in host".to_string());
        };
        (&inner[..close], &inner[close + 1..])
    } else {
        match host.rfind(':') {
            Some(i) => (&host[..i], &host[i..]),
            None => (host, ""),
        }
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
    if !port_ok {
        return Err(format!("invalid port {port:?} after host"));
    }
    if port.len() > 1 && port[1..].parse::<i64>().is_err() {
        return Err(format!(
            "strconv.Atoi: parsing {:?}: value out of range",
            &port[1..]
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.~!$&'()*+,;=:%<>\"".contains(c);
    if host.starts_with('[') {
        return Ok(());
    }
    match name.chars().find(|c| !allowed(*c)) {
        Some(c) => Err(format!(
            "invalid character {:?} in host name",
            c.to_string()
        )),
        None => Ok(()),
    }
}

/// `jwk.Parse`: one JSON Web Key or a set `{"keys": [...]}`, each key with a known `kty` and
/// the members that key type requires.
fn parse_jwks(text: &str) -> Result<(), String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("failed to unmarshal JSON: {e}"))?;
    let Some(object) = value.as_object() else {
        return Err("expected a JSON object (a key or a key set)".to_string());
    };
    match object.get("keys") {
        None => check_jwk(&value),
        Some(Value::Array(keys)) => keys.iter().enumerate().try_for_each(|(i, k)| {
            check_jwk(k).map_err(|e| format!("failed to parse key #{i}: {e}"))
        }),
        Some(_) => Err("\"keys\" must be an array".to_string()),
    }
}

fn check_jwk(key: &Value) -> Result<(), String> {
    let Some(key) = key.as_object() else {
        return Err("a key must be a JSON object".to_string());
    };
    let kty = key.get("kty").and_then(Value::as_str).unwrap_or_default();
    let required: &[&str] = match kty {
        "RSA" => &["n", "e"],
        "EC" => &["crv", "x", "y"],
        "OKP" => &["crv", "x"],
        "oct" => &["k"],
        _ => return Err(format!("invalid key type from JSON ({kty})")),
    };
    match required
        .iter()
        .find(|f| !key.get(**f).is_some_and(Value::is_string))
    {
        Some(missing) => Err(format!("required field {missing} is missing")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::diagnostic::{Finding, Severity};

    const JWKS: &str = r#"{"keys":[{"kty":"RSA","e":"AQAB","kid":"k1","n":"xAE7eB6qugXyCAG3yhh7pkDkT65pHymX-P7KfIupjf59vsdo91bSP9C8H07pSAGQO1MV_xFj9VswgsCg4R6otmg5PV2He95lZdHtOcU5DXIg_pbhLdKXbi66GlVeK6ABZOUW3WYtnNHD-91gVuoeJT_DwtGGcp4ignkgXfkiEm4sw-4sfb4qdt5oLbyVpmW6x9cfa7vs2WTfURiCrBoUqgBo_-4WTiULmmHSGZHOjzwa8WtrtOQGsAFjIbno85jp6MnGGGZPYZbDAa_b3y5u-YpW7ypZrvD8BgtKVjgtQgZhLAGezMt0ua3DRrWnKqTZ0BJ_EyxOGuHJrLsn00fnMQ"}]}"#;

    fn run(spec: serde_json::Value) -> Vec<Finding> {
        let ra: RequestAuthentication = serde_json::from_value(spec).unwrap();
        let mut out = Findings::default();
        check_request_authentication(&ra, &FieldPath::new("spec"), &mut out);
        out.into_vec()
    }

    fn only(f: &[Finding], severity: Severity) -> Vec<(&str, &str)> {
        f.iter()
            .filter(|f| f.severity == severity)
            .map(|f| (f.field.as_str(), f.message.as_str()))
            .collect()
    }

    fn has(f: &[Finding], field: &str, part: &str) -> bool {
        f.iter()
            .any(|f| f.severity == Severity::Error && f.field == field && f.message.contains(part))
    }

    #[test]
    fn accepts_typical_rules() {
        let f = run(json!({
            "selector": {"matchLabels": {"app": "api"}},
            "jwtRules": [
                {
                    "issuer": "https://accounts.example.com",
                    "jwksUri": "https://accounts.example.com/.well-known/jwks.json",
                    "audiences": ["api"],
                    "fromHeaders": [{"name": "x-jwt", "prefix": "Bearer "}],
                    "fromParams": ["token"],
                    "fromCookies": ["session"],
                    "outputClaimToHeaders": [{"header": "x-user-id", "claim": "sub"}],
                    "forwardOriginalToken": true,
                    "timeout": "5s"
                },
                {"issuer": "testing@secure.istio.io", "jwks": JWKS},
                {"jwksUri": "http://[::1]:8080/jwks"}
            ]
        }));
        assert!(f.is_empty(), "{f:?}");
        assert!(run(json!({})).is_empty());
    }

    #[test]
    fn issuer_or_jwks_uri_required() {
        let f = run(json!({"jwtRules": [{"audiences": ["a"]}]}));
        assert_eq!(
            only(&f, Severity::Error),
            [(
                "spec.jwtRules[0].issuer",
                "issuer or jwksUri must be non-empty string"
            )]
        );
    }

    #[test]
    fn empty_audience_is_rejected() {
        let f = run(json!({"jwtRules": [{"issuer": "i", "audiences": ["a", ""]}]}));
        assert!(has(
            &f,
            "spec.jwtRules[0].audiences[1]",
            "audience must be non-empty string"
        ));
    }

    #[test]
    fn jwks_uri_must_be_http_url() {
        let cases = [
            (
                "ftp://example.com/jwks",
                "URI scheme \"ftp\" is not supported",
            ),
            ("example.com/jwks", "URI scheme \"\" is not supported"),
            ("://example.com", "missing protocol scheme"),
            (
                "https://example.com:abc/jwks",
                "invalid port \":abc\" after host",
            ),
            (
                "https://exa mple.com/jwks",
                "invalid character \" \" in host name",
            ),
            ("https://[::1/jwks", "missing ']' in host"),
            ("https://example.com/\njwks", "invalid control character"),
        ];
        for (uri, part) in cases {
            let f = run(json!({"jwtRules": [{"issuer": "i", "jwksUri": uri}]}));
            assert!(has(&f, "spec.jwtRules[0].jwksUri", part), "{uri}: {f:?}");
        }
        let f = run(json!({"jwtRules": [{"jwksUri": "HTTPS://Example.com:8443/keys?x=1#frag"}]}));
        assert!(f.is_empty(), "{f:?}");
        let f =
            run(json!({"jwtRules": [{"issuer": "i", "jwksUri": "file:///etc/weft/jwks.json"}]}));
        assert!(f.is_empty(), "{f:?}");
        let f = run(json!({"jwtRules": [{"issuer": "i", "jwksUri": "file://relative/jwks.json"}]}));
        assert!(
            has(&f, "spec.jwtRules[0].jwksUri", "absolute path"),
            "{f:?}"
        );
    }

    #[test]
    fn jwks_must_parse() {
        let cases = [
            ("not json", "jwks parse error: failed to unmarshal JSON"),
            ("[]", "expected a JSON object"),
            (r#"{"keys": {}}"#, "\"keys\" must be an array"),
            (
                r#"{"keys": [{"kty": "XYZ"}]}"#,
                "invalid key type from JSON (XYZ)",
            ),
            (
                r#"{"kty": "RSA", "e": "AQAB"}"#,
                "required field n is missing",
            ),
            (
                r#"{"kty": "EC", "crv": "P-256", "x": "a"}"#,
                "required field y is missing",
            ),
        ];
        for (jwks, part) in cases {
            let f = run(json!({"jwtRules": [{"issuer": "i", "jwks": jwks}]}));
            assert!(has(&f, "spec.jwtRules[0].jwks", part), "{jwks}: {f:?}");
        }
        assert!(
            run(json!({"jwtRules": [{"issuer": "i", "jwks": r#"{"kty":"oct","k":"c2VjcmV0"}"#}]}))
                .is_empty()
        );
    }

    #[test]
    fn jwks_with_jwks_uri_warns() {
        let f = run(
            json!({"jwtRules": [{"issuer": "i", "jwks": JWKS, "jwksUri": "https://example.com/jwks"}]}),
        );
        assert!(only(&f, Severity::Error).is_empty());
        let w = only(&f, Severity::Warning);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].0, "spec.jwtRules[0].jwksUri");
        assert!(w[0].1.contains("jwksUri is ignored"));
    }

    #[test]
    fn token_locations_must_be_named() {
        let f = run(json!({"jwtRules": [{
            "issuer": "i",
            "fromHeaders": [{"name": "x-jwt"}, {"prefix": "Bearer "}],
            "fromParams": ["", "token"],
            "fromCookies": ["c", ""]
        }]}));
        assert_eq!(
            only(&f, Severity::Error),
            [
                (
                    "spec.jwtRules[0].fromHeaders[1].name",
                    "location header name must be non-empty string"
                ),
                (
                    "spec.jwtRules[0].fromParams[0]",
                    "location query must be non-empty string"
                ),
                (
                    "spec.jwtRules[0].fromCookies[1]",
                    "cookie name must be non-empty string"
                ),
            ]
        );
    }

    #[test]
    fn claim_to_headers_are_checked() {
        let f = run(json!({"jwtRules": [{
            "issuer": "i",
            "outputClaimToHeaders": [
                {"header": "x-ok", "claim": "sub"},
                {"header": "", "claim": "sub"},
                {"header": "x-user"},
                {"header": "x_user", "claim": "sub"},
                {"header": "x.user", "claim": "sub"}
            ]
        }]}));
        let p = "spec.jwtRules[0].outputClaimToHeaders";
        assert!(has(
            &f,
            &format!("{p}[1].header"),
            "header and claim value must be non-empty string"
        ));
        assert!(has(
            &f,
            &format!("{p}[2].claim"),
            "header and claim value must be non-empty string"
        ));
        assert!(has(
            &f,
            &format!("{p}[3].header"),
            "header name x_user is not a valid header name"
        ));
        assert!(has(
            &f,
            &format!("{p}[4].header"),
            "header name x.user is not a valid header name"
        ));
        assert_eq!(f.len(), 4);
    }

    #[test]
    fn timeout_is_a_duration() {
        let f = run(json!({"jwtRules": [{"issuer": "i", "timeout": "500us"}]}));
        assert!(has(
            &f,
            "spec.jwtRules[0].timeout",
            "duration must be greater than 1ms"
        ));
        let f = run(json!({"jwtRules": [{"issuer": "i", "timeout": "5x"}]}));
        assert!(has(&f, "spec.jwtRules[0].timeout", "invalid duration"));
    }

    #[test]
    fn duplicate_issuer_warns() {
        let f = run(json!({"jwtRules": [
            {"issuer": "a", "jwksUri": "https://a/jwks"},
            {"issuer": "b", "jwksUri": "https://b/jwks"},
            {"issuer": "a", "jwksUri": "https://a/other"}
        ]}));
        assert!(only(&f, Severity::Error).is_empty());
        assert_eq!(
            only(&f, Severity::Warning),
            [(
                "spec.jwtRules[2].issuer",
                "issuer a is already used by jwtRules[0]"
            )]
        );
    }

    #[test]
    fn selector_and_targets_are_checked() {
        let f = run(json!({
            "selector": {"matchLabels": {"app": "a"}},
            "targetRefs": [{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "gw"}]
        }));
        assert!(has(
            &f,
            "spec.targetRefs",
            "only one of targetRefs or workloadSelector can be set"
        ));
    }
}
