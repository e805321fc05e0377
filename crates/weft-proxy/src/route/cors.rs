//! A route's `corsPolicy` at runtime, as Envoy's CORS filter applies it: preflights from an
//! allowed origin are answered here, and responses to other requests from an allowed origin get
//! the `access-control-allow-*` headers.
//!
//! Header values are what Istio hands Envoy: lists joined with `,`, `maxAge` in whole seconds.
//! An allowed origin is echoed back, never `*`. A preflight from an origin that does not match is
//! forwarded upstream (`unmatchedPreflights: FORWARD`, the default) or answered 200 without
//! `access-control-allow-origin` (`IGNORE`), so the browser refuses it.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, HeaderName, HeaderValue, ORIGIN,
};
use http::{HeaderMap, Method, Response, StatusCode};
use weft_api::mesh::Cors;

use crate::body::{ProxyBody, empty};

/// Whether `origin` is allowed. As in Envoy, a matcher that accepts the literal `*` (an exact
/// `*`, an empty prefix, `.*`) allows every origin.
pub fn origin_allowed(cors: &Cors, origin: &str) -> bool {
    cors.allow_origins
        .iter()
        .any(|m| m.matches("*") || m.matches(origin))
}

/// The request's `Origin`, when it has a non-empty one.
pub fn request_origin(headers: &HeaderMap) -> Option<&str> {
    non_empty(headers, &ORIGIN)
}

/// The local answer to a CORS preflight (`OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`), or `None` when the request goes on upstream: it is not a
/// preflight, or its origin does not match and unmatched preflights are forwarded.
pub fn preflight(cors: &Cors, method: &Method, headers: &HeaderMap) -> Option<Response<ProxyBody>> {
    if method != Method::OPTIONS {
        return None;
    }
    let origin = request_origin(headers)?;
    let requested_method = non_empty(headers, &ACCESS_CONTROL_REQUEST_METHOD)?;
    let allowed = origin_allowed(cors, origin);
    if !allowed && !cors.ignore_unmatched_preflights {
        return None;
    }
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::OK;
    let out = response.headers_mut();
    if allowed {
        set(out, ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    if cors.allow_credentials {
        out.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    // A configured `*` reflects what the browser asked for, as Envoy does.
    let methods = cors.allow_methods.join(",");
    match methods.as_str() {
        "" => {}
        "*" => set(out, ACCESS_CONTROL_ALLOW_METHODS, requested_method),
        list => set(out, ACCESS_CONTROL_ALLOW_METHODS, list),
    }
    let allow_headers = cors.allow_headers.join(",");
    match allow_headers.as_str() {
        "" => {}
        "*" => {
            if let Some(requested) = non_empty(headers, &ACCESS_CONTROL_REQUEST_HEADERS) {
                set(out, ACCESS_CONTROL_ALLOW_HEADERS, requested);
            }
        }
        list => set(out, ACCESS_CONTROL_ALLOW_HEADERS, list),
    }
    if let Some(max_age) = cors.max_age {
        set(out, ACCESS_CONTROL_MAX_AGE, &max_age.as_secs().to_string());
    }
    Some(response)
}

/// Adds the CORS headers to the response of a request (not an answered preflight) whose
/// `Origin` is allowed: the origin itself, `allow-credentials` and `expose-headers`.
pub fn decorate(cors: &Cors, request_origin: Option<&str>, response: &mut HeaderMap) {
    let Some(origin) = request_origin.filter(|o| !o.is_empty()) else {
        return;
    };
    if !origin_allowed(cors, origin) {
        return;
    }
    set(response, ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    if cors.allow_credentials {
        response.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    let expose = cors.expose_headers.join(",");
    if !expose.is_empty() {
        set(response, ACCESS_CONTROL_EXPOSE_HEADERS, &expose);
    }
}

fn non_empty<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

/// Sets a header, skipping a value that is not a valid header value (config is validated, and
/// request values were valid headers already).
fn set(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::try_from(value) {
        headers.insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use weft_api::mesh::StringMatcher;

    use super::*;

    fn policy() -> Cors {
        Cors {
            allow_origins: vec![
                StringMatcher::Exact("https://example.com".into()),
                StringMatcher::Prefix("https://app.".into()),
            ],
            allow_methods: vec!["GET".into(), "POST".into()],
            allow_headers: vec!["x-a".into(), "content-type".into()],
            expose_headers: vec!["x-b".into(), "x-c".into()],
            max_age: Some(Duration::from_secs(86_400)),
            allow_credentials: true,
            ignore_unmatched_preflights: false,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::try_from(*k).unwrap(),
                HeaderValue::try_from(*v).unwrap(),
            );
        }
        h
    }

    fn preflight_from(cors: &Cors, origin: &str) -> Option<Response<ProxyBody>> {
        let h = headers(&[
            ("origin", origin),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "x-z"),
        ]);
        preflight(cors, &Method::OPTIONS, &h)
    }

    #[test]
    fn allowed_preflight_is_answered_with_every_header() {
        let resp = preflight_from(&policy(), "https://app.shop").unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.shop");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "GET,POST");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_HEADERS], "x-a,content-type");
        assert_eq!(h[ACCESS_CONTROL_MAX_AGE], "86400");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert!(
            h.get(ACCESS_CONTROL_EXPOSE_HEADERS).is_none(),
            "expose-headers is for actual responses"
        );
    }

    #[test]
    fn unmatched_preflights_are_forwarded_by_default_and_refused_with_ignore() {
        assert!(preflight_from(&policy(), "https://evil.com").is_none());
        let ignore = Cors {
            ignore_unmatched_preflights: true,
            ..policy()
        };
        let resp = preflight_from(&ignore, "https://evil.com").unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    }

    #[test]
    fn only_options_with_origin_and_request_method_is_a_preflight() {
        let cors = policy();
        let full = headers(&[
            ("origin", "https://example.com"),
            ("access-control-request-method", "GET"),
        ]);
        assert!(preflight(&cors, &Method::GET, &full).is_none());
        let no_method = headers(&[("origin", "https://example.com")]);
        assert!(preflight(&cors, &Method::OPTIONS, &no_method).is_none());
        let empty_origin = headers(&[("origin", ""), ("access-control-request-method", "GET")]);
        assert!(preflight(&cors, &Method::OPTIONS, &empty_origin).is_none());
        assert!(preflight(&cors, &Method::OPTIONS, &HeaderMap::new()).is_none());
    }

    #[test]
    fn star_allows_any_origin_and_reflects_method_and_headers() {
        let cors = Cors {
            allow_origins: vec![StringMatcher::Exact("*".into())],
            allow_methods: vec!["*".into()],
            allow_headers: vec!["*".into()],
            max_age: None,
            allow_credentials: false,
            ..policy()
        };
        let resp = preflight_from(&cors, "https://anything.test").unwrap();
        let h = resp.headers();
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://anything.test");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "PUT");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_HEADERS], "x-z");
        assert!(h.get(ACCESS_CONTROL_MAX_AGE).is_none());
        assert!(h.get(ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
        let present = Cors {
            allow_origins: vec![StringMatcher::Present],
            ..policy()
        };
        assert!(origin_allowed(&present, "https://x"));
        assert!(!origin_allowed(
            &Cors {
                allow_origins: Vec::new(),
                ..policy()
            },
            "https://x"
        ));
    }

    #[test]
    fn decorate_adds_headers_only_for_allowed_origins() {
        let cors = policy();
        let mut h = headers(&[("access-control-allow-origin", "stale")]);
        decorate(&cors, Some("https://example.com"), &mut h);
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://example.com");
        assert_eq!(h.get_all(ACCESS_CONTROL_ALLOW_ORIGIN).iter().count(), 1);
        assert_eq!(h[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(h[ACCESS_CONTROL_EXPOSE_HEADERS], "x-b,x-c");
        assert!(h.get(ACCESS_CONTROL_ALLOW_METHODS).is_none());

        for origin in [None, Some(""), Some("https://evil.com")] {
            let mut h = HeaderMap::new();
            decorate(&cors, origin, &mut h);
            assert!(h.is_empty(), "{origin:?}: {h:?}");
        }
    }

    #[test]
    fn request_origin_ignores_empty_values() {
        assert_eq!(
            request_origin(&headers(&[("origin", "https://a")])),
            Some("https://a")
        );
        assert_eq!(request_origin(&headers(&[("origin", "")])), None);
    }
}
