//! One compiled `jwtRules` entry: its issuer, audiences, key source, token locations and the
//! headers it writes once a token is accepted.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use serde_json::Value;
use weft_api::model::JwtRule;

use super::JwtError;
use super::cache::JwksCache;
use super::jwks::KeySet;
use super::location::Location;
use super::token::Jwt;

/// The JWKS fetch timeout when the rule sets none (Istio's default).
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Claims always split on spaces for authorization (Istio).
const ALWAYS_SPACE_DELIMITED: [&str; 2] = ["scope", "permission"];

#[derive(Debug)]
pub(super) struct Rule {
    /// `ns.name[index]`, for logs.
    pub id: String,
    /// Empty: tokens of any issuer (Envoy's provider without `issuer`).
    issuer: String,
    /// Sanitized (see [`sanitize_audience`]); empty: any audience.
    audiences: Vec<String>,
    keys: KeySource,
    pub forward: bool,
    pub locations: Vec<Location>,
    payload_header: Option<HeaderName>,
    claim_headers: Vec<(HeaderName, String)>,
    space_delimited: Vec<String>,
}

#[derive(Debug)]
enum KeySource {
    /// `jwks`, parsed once; a parse failure rejects every token of the rule.
    Inline(Result<Arc<KeySet>, JwtError>),
    /// `jwksUri`, through the proxy's [`JwksCache`].
    Remote { uri: String, timeout: Duration },
    /// Neither is set (Istio would discover the URI through OpenID discovery, which weft
    /// does not do): every token of the rule is rejected.
    Missing,
}

impl Rule {
    pub fn compile(id: String, rule: &JwtRule) -> Rule {
        let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        let keys = match (non_empty(&rule.jwks), non_empty(&rule.jwks_uri)) {
            (Some(jwks), _) => {
                let parsed = KeySet::parse(&jwks).map(Arc::new);
                if let Err(error) = &parsed {
                    tracing::warn!(rule = %id, %error, "inline jwks unusable; its tokens are rejected");
                }
                KeySource::Inline(parsed)
            }
            (None, Some(uri)) => KeySource::Remote {
                uri,
                timeout: fetch_timeout(&id, rule),
            },
            (None, None) => {
                tracing::warn!(rule = %id, "jwtRule without jwks or jwksUri; its tokens are rejected");
                KeySource::Missing
            }
        };
        Rule {
            issuer: rule.issuer.clone(),
            audiences: rule
                .audiences
                .iter()
                .map(|a| sanitize_audience(a))
                .collect(),
            keys,
            forward: rule.forward_original_token.unwrap_or(false),
            locations: locations(&id, rule),
            payload_header: rule
                .output_payload_to_header
                .as_deref()
                .filter(|h| !h.is_empty())
                .and_then(|h| header_name(&id, h)),
            claim_headers: rule
                .output_claim_to_headers
                .iter()
                .filter_map(|c| Some((header_name(&id, &c.header)?, c.claim.clone())))
                .collect(),
            space_delimited: rule.space_delimited_claims.clone(),
            id,
        }
    }

    pub fn matches_issuer(&self, iss: &str) -> bool {
        self.issuer.is_empty() || self.issuer == iss
    }

    pub async fn keys(&self, cache: &JwksCache) -> Result<Arc<KeySet>, JwtError> {
        match &self.keys {
            KeySource::Inline(keys) => keys.clone(),
            KeySource::Remote { uri, timeout } => cache.get(uri, *timeout).await,
            KeySource::Missing => Err(JwtError::JwksFetchFail),
        }
    }

    pub fn jwks_uri(&self) -> Option<&str> {
        match &self.keys {
            KeySource::Remote { uri, .. } => Some(uri),
            _ => None,
        }
    }

    /// Envoy's audience check: without configured audiences anything passes; otherwise one of
    /// the token's audiences must equal one of them, both sanitized.
    pub fn accepts_audiences(&self, audiences: &[String]) -> bool {
        self.audiences.is_empty()
            || audiences
                .iter()
                .any(|a| self.audiences.contains(&sanitize_audience(a)))
    }

    /// The headers this rule writes, to be cleared from every request first.
    pub fn output_headers(&self) -> impl Iterator<Item = &HeaderName> {
        self.payload_header
            .iter()
            .chain(self.claim_headers.iter().map(|(h, _)| h))
    }

    /// `outputPayloadToHeader` (the payload segment as sent) and `outputClaimToHeaders`
    /// (string, number and boolean claims; nested claims as `a.b`).
    pub fn apply_outputs(&self, jwt: &Jwt<'_>, headers: &mut HeaderMap) {
        if let Some(name) = &self.payload_header
            && let Ok(value) = HeaderValue::from_str(jwt.payload_b64)
        {
            headers.insert(name.clone(), value);
        }
        for (name, claim) in &self.claim_headers {
            let Some(text) = claim_text(&jwt.claims, claim) else {
                continue;
            };
            match HeaderValue::from_str(&text) {
                Ok(value) => {
                    headers.insert(name.clone(), value);
                }
                Err(_) => tracing::debug!(rule = %self.id, claim, "claim is not a header value"),
            }
        }
    }

    /// The claims handed to authorization: the payload with `scope`, `permission` and the
    /// rule's `spaceDelimitedClaims` split into lists when they are space-separated strings.
    pub fn claims(&self, jwt: &Jwt<'_>) -> Value {
        let mut claims = jwt.claims.clone();
        if let Value::Object(map) = &mut claims {
            let names = ALWAYS_SPACE_DELIMITED
                .iter()
                .copied()
                .chain(self.space_delimited.iter().map(String::as_str));
            for name in names {
                if let Some(Value::String(text)) = map.get(name)
                    && text.contains(' ')
                {
                    let list = text
                        .split(' ')
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.to_string()))
                        .collect();
                    map.insert(name.to_string(), Value::Array(list));
                }
            }
        }
        claims
    }
}

fn fetch_timeout(id: &str, rule: &JwtRule) -> Duration {
    match rule.timeout.as_ref().map(|t| t.parse()) {
        None => DEFAULT_FETCH_TIMEOUT,
        Some(Ok(timeout)) if !timeout.is_zero() => timeout,
        Some(_) => {
            tracing::warn!(rule = %id, "invalid jwks fetch timeout; using 5s");
            DEFAULT_FETCH_TIMEOUT
        }
    }
}

fn locations(id: &str, rule: &JwtRule) -> Vec<Location> {
    if rule.from_headers.is_empty() && rule.from_params.is_empty() && rule.from_cookies.is_empty() {
        return Location::defaults().to_vec();
    }
    let headers = rule.from_headers.iter().filter_map(|h| {
        Some(Location::Header {
            name: header_name(id, &h.name)?,
            prefix: h.prefix.clone().unwrap_or_default(),
        })
    });
    let params = rule.from_params.iter().map(|p| Location::Param(p.clone()));
    let cookies = rule
        .from_cookies
        .iter()
        .map(|c| Location::Cookie(c.clone()));
    headers.chain(params).chain(cookies).collect()
}

fn header_name(id: &str, name: &str) -> Option<HeaderName> {
    match HeaderName::from_bytes(name.as_bytes()) {
        Ok(name) => Some(name),
        Err(_) => {
            tracing::warn!(rule = %id, header = name, "invalid header name ignored");
            None
        }
    }
}

/// Envoy's `sanitizeAudience`: without an `http://`/`https://` prefix and a trailing `/`.
fn sanitize_audience(audience: &str) -> String {
    let rest = audience
        .strip_prefix("https://")
        .or_else(|| audience.strip_prefix("http://"))
        .unwrap_or(audience);
    rest.strip_suffix('/').unwrap_or(rest).to_string()
}

/// A claim as header text: top-level name first, else a `.`-separated path.
fn claim_text(claims: &Value, claim: &str) -> Option<String> {
    let value = claims
        .get(claim)
        .or_else(|| claim.split('.').try_fold(claims, |node, key| node.get(key)))?;
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
