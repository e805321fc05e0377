//! `corsPolicy` → [`Cors`]. Allowed origins are string matchers; like Envoy, an exact `*`
//! allows any origin. Deprecated `allowOrigin` entries are exact matches.

use crate::mesh::{Cors, StringMatcher};
use crate::model::{CorsPolicy, DurationText, UnmatchedPreflights};

use super::matchers::string_matcher;

pub(super) fn cors(c: &CorsPolicy) -> Cors {
    let star = |m: StringMatcher| match m {
        StringMatcher::Exact(e) if e == "*" => StringMatcher::Present,
        other => other,
    };
    let legacy = c
        .allow_origin
        .iter()
        .map(|o| StringMatcher::Exact(o.clone()));
    let origins = c
        .allow_origins
        .iter()
        .filter_map(|m| string_matcher(m).ok());
    Cors {
        allow_origins: origins.chain(legacy).map(star).collect(),
        allow_methods: c.allow_methods.clone(),
        allow_headers: c.allow_headers.clone(),
        expose_headers: c.expose_headers.clone(),
        max_age: c
            .max_age
            .as_ref()
            .and_then(|d: &DurationText| d.parse().ok()),
        allow_credentials: c.allow_credentials.unwrap_or(false),
        ignore_unmatched_preflights: c.unmatched_preflights == Some(UnmatchedPreflights::Ignore),
    }
}
