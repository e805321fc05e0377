//! Compiled request matchers: `StringMatch` with its regex compiled, and the AND of one
//! `HTTPMatchRequest` block evaluated against a request's facts.

use regex::Regex;
use serde::Serialize;

/// `exact`, `prefix`, `regex` (anchored, RE2) or presence (an empty match).
#[derive(Debug, Clone, Serialize)]
pub enum StringMatcher {
    Exact(String),
    Prefix(String),
    Regex(#[serde(serialize_with = "regex_text")] Regex),
    /// Matches any value, as long as there is one (`{}` in a header match).
    Present,
}

fn regex_text<S: serde::Serializer>(re: &Regex, s: S) -> Result<S::Ok, S::Error> {
    let text = re.as_str();
    let inner = text
        .strip_prefix("^(?:")
        .and_then(|t| t.strip_suffix(")$"))
        .unwrap_or(text);
    s.serialize_str(inner)
}

impl StringMatcher {
    pub fn matches(&self, value: &str) -> bool {
        match self {
            StringMatcher::Exact(e) => value == e,
            StringMatcher::Prefix(p) => value.starts_with(p.as_str()),
            StringMatcher::Regex(re) => re.is_match(value),
            StringMatcher::Present => true,
        }
    }

    /// Case-insensitive for `exact` and `prefix` (`ignoreUriCase`); regexes are unchanged.
    pub fn matches_ignore_case(&self, value: &str) -> bool {
        match self {
            StringMatcher::Exact(e) => value.eq_ignore_ascii_case(e),
            StringMatcher::Prefix(p) => value
                .get(..p.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(p)),
            other => other.matches(value),
        }
    }
}

/// A header condition: the header must be present and its (comma-joined) value must match.
pub type HeaderMatcher = (String, StringMatcher);

/// One `HTTPMatchRequest` block: every set field must match.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RouteMatch {
    pub name: Option<String>,
    pub uri: Option<StringMatcher>,
    pub ignore_uri_case: bool,
    pub scheme: Option<StringMatcher>,
    pub method: Option<StringMatcher>,
    pub authority: Option<StringMatcher>,
    /// Lowercase header names.
    pub headers: Vec<HeaderMatcher>,
    pub without_headers: Vec<HeaderMatcher>,
    pub query_params: Vec<(String, StringMatcher)>,
    pub port: Option<u16>,
}

/// What matchers look at in a request.
pub struct RequestFacts<'a> {
    pub method: &'a str,
    /// Path without the query string.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub scheme: &'a str,
    pub authority: &'a str,
    pub port: u16,
    /// Comma-joined value of a (lowercase) header, if present.
    pub header: &'a dyn Fn(&str) -> Option<String>,
}

impl RouteMatch {
    pub fn matches(&self, req: &RequestFacts<'_>) -> bool {
        self.uri_matches(req)
            && opt(&self.scheme, req.scheme)
            && opt(&self.method, req.method)
            && opt(&self.authority, req.authority)
            && self.port.is_none_or(|p| p == req.port)
            && self
                .headers
                .iter()
                .all(|(name, m)| (req.header)(name).is_some_and(|v| m.matches(&v)))
            && !self
                .without_headers
                .iter()
                .any(|(name, m)| (req.header)(name).is_some_and(|v| m.matches(&v)))
            && self
                .query_params
                .iter()
                .all(|(key, m)| query_value(req.query, key).is_some_and(|v| m.matches(&v)))
    }

    fn uri_matches(&self, req: &RequestFacts<'_>) -> bool {
        let Some(m) = &self.uri else { return true };
        if self.ignore_uri_case {
            m.matches_ignore_case(req.path)
        } else {
            m.matches(req.path)
        }
    }
}

fn opt(m: &Option<StringMatcher>, value: &str) -> bool {
    m.as_ref().is_none_or(|m| m.matches(value))
}

/// The (percent-decoded) value of the first `key` parameter; `?key` alone yields `""`.
pub fn query_value(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(
        path: &'a str,
        query: Option<&'a str>,
        header: &'a dyn Fn(&str) -> Option<String>,
    ) -> RequestFacts<'a> {
        RequestFacts {
            method: "GET",
            path,
            query,
            scheme: "http",
            authority: "reviews:9080",
            port: 9080,
            header,
        }
    }

    #[test]
    fn string_matchers() {
        assert!(StringMatcher::Exact("/a".into()).matches("/a"));
        assert!(!StringMatcher::Exact("/a".into()).matches("/A"));
        assert!(StringMatcher::Exact("/a".into()).matches_ignore_case("/A"));
        assert!(StringMatcher::Prefix("/api".into()).matches_ignore_case("/API/v1"));
        let re = Regex::new("^(?:.*Chrome.*)$").unwrap();
        assert!(StringMatcher::Regex(re.clone()).matches("Mozilla Chrome/1"));
        assert!(!StringMatcher::Regex(Regex::new(r"^(?:\d+)$").unwrap()).matches("a123"));
    }

    #[test]
    fn blocks_and_their_fields() {
        let jason = |n: &str| (n == "end-user").then(|| "jason".to_string());
        let nobody = |_: &str| None;
        let m = RouteMatch {
            headers: vec![("end-user".into(), StringMatcher::Exact("jason".into()))],
            ..Default::default()
        };
        assert!(m.matches(&facts("/", None, &jason)));
        assert!(!m.matches(&facts("/", None, &nobody)));
        let without = RouteMatch {
            without_headers: vec![("end-user".into(), StringMatcher::Present)],
            ..Default::default()
        };
        assert!(!without.matches(&facts("/", None, &jason)));
        assert!(without.matches(&facts("/", None, &nobody)));
        let q = RouteMatch {
            query_params: vec![("debug".into(), StringMatcher::Exact(String::new()))],
            ..Default::default()
        };
        assert!(q.matches(&facts("/", Some("a=1&debug"), &nobody)));
        assert!(!q.matches(&facts("/", Some("a=1"), &nobody)));
        let port = RouteMatch {
            port: Some(8080),
            ..Default::default()
        };
        assert!(!port.matches(&facts("/", None, &nobody)));
    }

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(
            query_value(Some("a=1&b=x%20y"), "b").as_deref(),
            Some("x y")
        );
        assert_eq!(query_value(Some("a=%zz"), "a").as_deref(), Some("%zz"));
        assert_eq!(query_value(None, "a"), None);
    }
}
