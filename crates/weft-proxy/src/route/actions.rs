//! Route actions that change the request or answer it directly: header edits, URI and
//! authority rewrites, redirects and direct responses.

use http::header::{HeaderName, HeaderValue, LOCATION};
use http::{HeaderMap, Response, StatusCode};
use weft_api::mesh::{HeaderEdits, Redirect, RedirectPort, Rewrite, RouteMatch, StringMatcher};

use crate::body::{ProxyBody, empty, full};

/// Applies `set`, `add` and `remove` (in Envoy's order: remove, then set/add). `:authority`
/// and `host` edits are returned as the new authority instead of being set as headers.
pub fn edit_headers(headers: &mut HeaderMap, edits: &HeaderEdits) -> Option<String> {
    let mut authority = None;
    for name in &edits.remove {
        headers.remove(name.as_str());
    }
    for (name, value) in &edits.set {
        if is_authority(name) {
            authority = Some(value.clone());
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            headers.insert(n, v);
        }
    }
    for (name, value) in &edits.add {
        if is_authority(name) {
            authority = Some(value.clone());
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            headers.append(n, v);
        }
    }
    authority
}

fn is_authority(name: &str) -> bool {
    name.eq_ignore_ascii_case(":authority") || name.eq_ignore_ascii_case("host")
}

/// The rewritten path-and-query. A `uri` rewrite replaces the matched prefix (for a prefix
/// match) or the whole path; the query string is kept.
pub fn rewrite_path(
    rewrite: &Rewrite,
    matched: Option<&RouteMatch>,
    path: &str,
    query: Option<&str>,
) -> String {
    let new_path = if let Some((re, replacement)) = &rewrite.uri_regex {
        re.replace_all(path, replacement.as_str()).into_owned()
    } else if let Some(uri) = &rewrite.uri {
        match matched.and_then(|m| m.uri.as_ref()) {
            Some(StringMatcher::Prefix(prefix)) if path.len() >= prefix.len() => {
                let rest = &path[prefix.len()..];
                if uri.ends_with('/') && rest.starts_with('/') {
                    format!("{uri}{}", &rest[1..])
                } else {
                    format!("{uri}{rest}")
                }
            }
            _ => uri.clone(),
        }
    } else {
        path.to_string()
    };
    match query {
        Some(q) => format!("{new_path}?{q}"),
        None => new_path,
    }
}

/// The redirect response for a request to `scheme://authority/path?query`.
pub fn redirect(
    r: &Redirect,
    scheme: &str,
    authority: &str,
    path_and_query: &str,
) -> Response<ProxyBody> {
    let (host, port) = split_authority(authority);
    let scheme = r.scheme.clone().unwrap_or_else(|| scheme.to_string());
    let host = r.authority.clone().unwrap_or(host);
    let port = match r.port {
        Some(RedirectPort::Fixed(p)) => Some(p),
        Some(RedirectPort::FromRequestPort) => port,
        Some(RedirectPort::FromProtocolDefault) => None,
        None if r.authority.is_some() || r.scheme.is_some() => None,
        None => port,
    };
    let path = r.uri.clone().unwrap_or_else(|| path_and_query.to_string());
    let location = match port {
        Some(p) if !is_default_port(&scheme, p) => format!("{scheme}://{host}:{p}{path}"),
        _ => format!("{scheme}://{host}{path}"),
    };
    let status = StatusCode::from_u16(r.code).unwrap_or(StatusCode::MOVED_PERMANENTLY);
    let mut resp = Response::new(empty());
    *resp.status_mut() = status;
    if let Ok(v) = HeaderValue::try_from(location) {
        resp.headers_mut().insert(LOCATION, v);
    }
    resp
}

fn is_default_port(scheme: &str, port: u16) -> bool {
    (scheme == "http" && port == 80) || (scheme == "https" && port == 443)
}

/// `host:port` → (`host`, Some(port)).
pub fn split_authority(authority: &str) -> (String, Option<u16>) {
    let host = weft_api::mesh::strip_port(authority);
    let port = authority
        .strip_prefix(host)
        .or_else(|| authority.strip_prefix(&format!("[{host}]")))
        .and_then(|rest| rest.strip_prefix(':'))
        .and_then(|p| p.parse().ok());
    (host.to_string(), port)
}

/// A `directResponse`.
pub fn direct_response(status: u16, body: Option<&[u8]>) -> Response<ProxyBody> {
    let mut resp = Response::new(match body {
        Some(b) => full(b.to_vec()),
        None => empty(),
    });
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    if body.is_some() {
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain"),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_rewrite_replaces_the_matched_prefix() {
        let rw = Rewrite {
            uri: Some("/v2".into()),
            uri_regex: None,
            authority: None,
        };
        let m = RouteMatch {
            uri: Some(StringMatcher::Prefix("/v1".into())),
            ..Default::default()
        };
        assert_eq!(
            rewrite_path(&rw, Some(&m), "/v1/users", Some("a=1")),
            "/v2/users?a=1"
        );
        assert_eq!(rewrite_path(&rw, None, "/v1/users", None), "/v2");
        let slash = Rewrite {
            uri: Some("/".into()),
            uri_regex: None,
            authority: None,
        };
        let m = RouteMatch {
            uri: Some(StringMatcher::Prefix("/api/".into())),
            ..Default::default()
        };
        assert_eq!(rewrite_path(&slash, Some(&m), "/api/x", None), "/x");
    }

    #[test]
    fn redirects_build_locations() {
        let r = Redirect {
            uri: Some("/new".into()),
            authority: None,
            port: None,
            scheme: None,
            code: 301,
        };
        let resp = redirect(&r, "http", "shop:8080", "/old?x=1");
        assert_eq!(resp.status(), 301);
        assert_eq!(resp.headers()[LOCATION], "http://shop:8080/new");
        let r = Redirect {
            uri: None,
            authority: Some("b.com".into()),
            port: None,
            scheme: Some("https".into()),
            code: 302,
        };
        assert_eq!(
            redirect(&r, "http", "a.com", "/p").headers()[LOCATION],
            "https://b.com/p"
        );
    }

    #[test]
    fn header_edits() {
        let mut h = HeaderMap::new();
        h.insert("x-a", HeaderValue::from_static("1"));
        h.insert("x-drop", HeaderValue::from_static("1"));
        let edits = HeaderEdits {
            set: vec![
                ("x-a".into(), "2".into()),
                (":authority".into(), "b".into()),
            ],
            add: vec![("x-a".into(), "3".into())],
            remove: vec!["x-drop".into()],
        };
        assert_eq!(edit_headers(&mut h, &edits).as_deref(), Some("b"));
        let values: Vec<_> = h.get_all("x-a").iter().collect();
        assert_eq!(values, ["2", "3"]);
        assert!(h.get("x-drop").is_none());
    }

    #[test]
    fn authorities() {
        assert_eq!(split_authority("a:80"), ("a".into(), Some(80)));
        assert_eq!(split_authority("a"), ("a".into(), None));
        assert_eq!(split_authority("[::1]:9"), ("::1".into(), Some(9)));
    }
}
