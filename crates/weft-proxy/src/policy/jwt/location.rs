//! Where a rule looks for tokens — a header after a prefix, a query parameter, a cookie — and
//! how a verified token is taken out of the request.

use http::header::{AUTHORIZATION, COOKIE, HeaderName, HeaderValue};
use http::request::Parts;
use http::uri::PathAndQuery;

/// One place a token can be read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Location {
    /// Every value of the header that starts with `prefix` (ASCII case-insensitive; empty:
    /// the whole value); the token is the rest, trimmed.
    Header { name: HeaderName, prefix: String },
    /// Every query parameter with this (percent-decoded) name.
    Param(String),
    /// Every cookie with this name, surrounding quotes removed.
    Cookie(String),
}

impl Location {
    /// A rule without `fromHeaders`, `fromParams` and `fromCookies` reads
    /// `Authorization: Bearer <token>` and `?access_token=<token>`, as Envoy does.
    pub fn defaults() -> [Location; 2] {
        [
            Location::Header {
                name: AUTHORIZATION,
                prefix: "Bearer ".to_string(),
            },
            Location::Param("access_token".to_string()),
        ]
    }

    /// The tokens found here, in request order.
    pub fn tokens(&self, parts: &Parts) -> Vec<String> {
        match self {
            Location::Header { name, prefix } => parts
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| header_token(v, prefix))
                .map(str::to_string)
                .collect(),
            Location::Param(name) => query_pairs(parts.uri.query().unwrap_or_default())
                .filter_map(|(_, key, value)| (key == *name).then_some(value))
                .filter(|v| !v.is_empty())
                .collect(),
            Location::Cookie(name) => parts
                .headers
                .get_all(COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(cookie_pairs)
                .filter(|(_, key, _)| key == name)
                .map(|(_, _, value)| value.to_string())
                .filter(|v| !v.is_empty())
                .collect(),
        }
    }

    /// Removes every occurrence of `token` from this location; anything else stays.
    pub fn remove(&self, parts: &mut Parts, token: &str) {
        match self {
            Location::Header { name, prefix } => {
                let keep: Vec<HeaderValue> = parts
                    .headers
                    .get_all(name)
                    .iter()
                    .filter(|v| header_token(v, prefix) != Some(token))
                    .cloned()
                    .collect();
                replace_all(&mut parts.headers, name, keep);
            }
            Location::Param(name) => remove_param(parts, name, token),
            Location::Cookie(name) => {
                let keep: Vec<HeaderValue> = parts
                    .headers
                    .get_all(COOKIE)
                    .iter()
                    .filter_map(|v| match v.to_str() {
                        Ok(text) => {
                            let rest: Vec<&str> = cookie_pairs(text)
                                .filter(|(_, key, value)| !(key == name && *value == token))
                                .map(|(raw, _, _)| raw)
                                .collect();
                            HeaderValue::from_str(&rest.join("; ")).ok()
                        }
                        Err(_) => Some(v.clone()),
                    })
                    .filter(|v| !v.is_empty())
                    .collect();
                replace_all(&mut parts.headers, &COOKIE, keep);
            }
        }
    }
}

fn header_token<'v>(value: &'v HeaderValue, prefix: &str) -> Option<&'v str> {
    let value = value.to_str().ok()?.trim();
    let token = if prefix.is_empty() {
        value
    } else {
        let head = value.get(..prefix.len())?;
        if !head.eq_ignore_ascii_case(prefix) {
            return None;
        }
        value[prefix.len()..].trim()
    };
    (!token.is_empty()).then_some(token)
}

fn replace_all(headers: &mut http::HeaderMap, name: &HeaderName, values: Vec<HeaderValue>) {
    headers.remove(name);
    for value in values {
        headers.append(name.clone(), value);
    }
}

/// `(raw pair, decoded name, decoded value)` of each `&`-separated query pair.
fn query_pairs(query: &str) -> impl Iterator<Item = (&str, String, String)> {
    query.split('&').filter(|p| !p.is_empty()).map(|raw| {
        let (key, value) = raw.split_once('=').unwrap_or((raw, ""));
        (raw, percent_decode(key), percent_decode(value))
    })
}

fn remove_param(parts: &mut Parts, name: &str, token: &str) {
    let Some(query) = parts.uri.query() else {
        return;
    };
    let rest: Vec<&str> = query_pairs(query)
        .filter(|(_, key, value)| !(key == name && value == token))
        .map(|(raw, _, _)| raw)
        .collect();
    let path = parts.uri.path();
    let path_and_query = if rest.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", rest.join("&"))
    };
    let mut uri = parts.uri.clone().into_parts();
    let rebuilt = PathAndQuery::try_from(path_and_query).ok().and_then(|pq| {
        uri.path_and_query = Some(pq);
        http::Uri::from_parts(uri).ok()
    });
    match rebuilt {
        Some(uri) => parts.uri = uri,
        None => tracing::warn!("could not remove the jwt query parameter"),
    }
}

/// `(raw pair, name, value)` of each `;`-separated cookie; quotes around the value dropped.
fn cookie_pairs(header: &str) -> impl Iterator<Item = (&str, &str, &str)> {
    header
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|raw| {
            let (name, value) = raw.split_once('=').unwrap_or((raw, ""));
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            (raw, name.trim(), value)
        })
}

/// Decodes `%XX` escapes; malformed escapes stay as they are, invalid UTF-8 is replaced.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
