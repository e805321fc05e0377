//! Evaluates Istio RequestAuthentication for one workload on the inbound side: finds the JWTs
//! a request carries, verifies them against the workload's `jwtRules` and yields the request
//! principal (`iss/sub`) and claims that AuthorizationPolicy matches on.
//!
//! Which policies apply follows [`super::authorization`]: those in the workload's namespace and
//! the root namespace without a selector or whose `matchLabels` match; policies bound with
//! `targetRef(s)` (gateways, waypoints) never apply to a sidecar. The rules of all applicable
//! policies are combined, ordered by policy (`ns.name`) and then rule index.
//!
//! # Outcome of [`JwtAuthenticator::authenticate`]
//!
//! * **No token** in any configured location: `Ok(None)`; the request goes on without a
//!   request principal. Requiring a token is AuthorizationPolicy's job
//!   (`requestPrincipals: ["*"]`).
//! * **Any invalid token** rejects the request (401, [`JwtError`]): malformed, a signature no
//!   key verifies, an unknown `kid`, expired or not yet valid (60 s clock skew, Envoy's
//!   default; a token without `exp` never expires), or an issuer that no rule reading that
//!   location has ("Jwt issuer is not configured"). Several tokens must all be valid (an
//!   expired second token is not hidden by a valid first one); the first accepted one gives
//!   the principal.
//! * **Wrong audience**: a token that verifies but whose `aud` holds none of the rule's
//!   `audiences` is *ignored* — `Ok(None)` when it is the only token. This is the project's
//!   decision (Envoy would answer 401 "Audiences in Jwt are not allowed"); the request gets no
//!   principal, so a policy requiring one answers 403, as in Istio's `jwt_test.go`. An
//!   ignored token stays in the request and produces no output headers. Audiences compare as
//!   Envoy does, without `http(s)://` and a trailing `/`.
//! * **Accepted**: `outputPayloadToHeader` gets the payload segment (base64url, as Envoy
//!   forwards it), `outputClaimToHeaders` the string, number and boolean claims, and the token
//!   is removed from every place it was found (header value, query parameter or cookie)
//!   unless `forwardOriginalToken` is true.
//!
//! Checks run in this order: token format → issuer → time → keys → signature → audience.
//! Envoy checks the audience before fetching keys; checking it last means a forged token is
//! rejected rather than ignored.
//!
//! # Token locations
//!
//! A rule without `fromHeaders`, `fromParams` and `fromCookies` reads
//! `Authorization: Bearer <token>` and the `access_token` query parameter; with any of them
//! set, only those. A header prefix must start the value (ASCII case-insensitive, so
//! `bearer` works); a header without prefix gives its whole value. Every value of a repeated
//! header and every repeated parameter or cookie is a token. A token is checked only against
//! the rules that read the location it was found in.
//!
//! # Keys
//!
//! `jwks` (inline, parsed here; it wins when `jwksUri` is also set) or `jwksUri` (fetched and
//! cached by [`JwksCache`]: `http://`, `file:///abs/path` or an absolute path). A rule whose
//! keys are unusable — invalid inline JSON, no usable key, a failed fetch, neither field set —
//! fails closed: every token of its issuer is rejected, never verified with fallback keys.
//! RS256/384/512, PS256/384/512, ES256, ES384 and EdDSA (Ed25519) are verified; HMAC
//! (`HS*`) tokens and `oct` keys are refused on purpose. A key is picked by `kid` when both
//! the token and the key have one, and must fit the token's `alg` (the key's own `alg`, if
//! set, must equal it).
//!
//! # Further decisions
//!
//! * The headers named by `outputPayloadToHeader`/`outputClaimToHeaders` are removed from
//!   every request before authentication, so a client cannot supply them itself.
//! * The principal is `iss + "/" + sub`, with an absent claim as the empty string.
//! * [`Authenticated::claims`] is the payload with `scope`, `permission` and the rule's
//!   `spaceDelimitedClaims` split into lists when they hold space-separated strings, as
//!   Istio's authorization expects.

mod cache;
mod error;
mod jwks;
mod location;
mod rule;
#[cfg(test)]
mod tests;
mod token;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::HeaderName;
use http::request::Parts;
use weft_api::model::RequestAuthentication;
use weft_api::{Resource, Spec};

pub use cache::{DEFAULT_REFRESH_INTERVAL, DEFAULT_RETRY_BACKOFF, JwksCache, MAX_JWKS_BYTES};
pub use error::JwtError;
pub use rule::DEFAULT_FETCH_TIMEOUT;

use location::Location;
use rule::Rule;
use token::Jwt;

/// A request's verified JWT.
#[derive(Debug, Clone, PartialEq)]
pub struct Authenticated {
    /// `iss/sub`, AuthorizationPolicy's `requestPrincipals` / `request.auth.principal`.
    pub principal: String,
    /// The payload, for `request.auth.claims[..]`, `audiences` (`aud`) and `presenter`
    /// (`azp`).
    pub claims: serde_json::Value,
}

/// The RequestAuthentication rules of one workload, compiled. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct JwtAuthenticator {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// `ns.name` of the applicable policies, sorted.
    policies: Vec<String>,
    rules: Vec<Rule>,
    /// Every distinct location, with the indexes of the rules reading it.
    locations: Vec<(Location, Vec<usize>)>,
    /// Headers some rule writes.
    output_headers: Vec<HeaderName>,
}

/// A distinct token and the indexes (into `Inner::locations`) of where it was found.
struct Found {
    token: String,
    locations: Vec<usize>,
}

impl JwtAuthenticator {
    /// Compiles the policies that apply to a workload in `namespace` with `labels`: those in
    /// its namespace and in `root_namespace` without a selector or whose selector matches.
    pub fn for_workload(
        resources: &[Resource],
        namespace: &str,
        labels: &BTreeMap<String, String>,
        root_namespace: &str,
    ) -> JwtAuthenticator {
        let mut policies: Vec<(String, &RequestAuthentication)> = resources
            .iter()
            .filter(|r| r.namespace() == namespace || r.namespace() == root_namespace)
            .filter_map(|r| match &r.spec {
                Spec::RequestAuthentication(p) if applies(p, labels) => {
                    Some((format!("{}.{}", r.namespace(), r.name()), p.as_ref()))
                }
                _ => None,
            })
            .collect();
        policies.sort_by(|a, b| a.0.cmp(&b.0));
        policies.dedup_by(|a, b| a.0 == b.0);

        let rules: Vec<Rule> = policies
            .iter()
            .flat_map(|(id, p)| {
                p.jwt_rules
                    .iter()
                    .enumerate()
                    .map(move |(i, r)| Rule::compile(format!("{id}[{i}]"), r))
            })
            .collect();
        let mut locations: Vec<(Location, Vec<usize>)> = Vec::new();
        let mut output_headers: Vec<HeaderName> = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            for location in &rule.locations {
                match locations.iter_mut().find(|(l, _)| l == location) {
                    Some((_, readers)) => readers.push(index),
                    None => locations.push((location.clone(), vec![index])),
                }
            }
            for header in rule.output_headers() {
                if !output_headers.contains(header) {
                    output_headers.push(header.clone());
                }
            }
        }
        JwtAuthenticator {
            inner: Arc::new(Inner {
                policies: policies.into_iter().map(|(id, _)| id).collect(),
                rules,
                locations,
                output_headers,
            }),
        }
    }

    /// Whether no rule applies (requests pass untouched, without principal).
    pub fn is_empty(&self) -> bool {
        self.inner.rules.is_empty()
    }

    /// `ns.name` of every applicable policy.
    pub fn policy_ids(&self) -> impl Iterator<Item = &str> {
        self.inner.policies.iter().map(String::as_str)
    }

    /// The distinct `jwksUri`s the rules fetch (for warming the cache).
    pub fn jwks_uris(&self) -> Vec<&str> {
        let mut uris: Vec<&str> = self.inner.rules.iter().filter_map(Rule::jwks_uri).collect();
        uris.sort_unstable();
        uris.dedup();
        uris
    }

    /// Finds and validates tokens in the request. `Ok(None)`: no token (or only tokens whose
    /// audience is not accepted, see the module docs) — the request goes on without a request
    /// principal. `Err`: answer 401 with the error's text.
    ///
    /// On success applies the rule's outputs to `parts.headers` (`outputPayloadToHeader`,
    /// `outputClaimToHeaders`) and removes the token from the request unless
    /// `forwardOriginalToken` is true.
    pub async fn authenticate(
        &self,
        parts: &mut Parts,
        jwks: &JwksCache,
    ) -> Result<Option<Authenticated>, JwtError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.authenticate_at(parts, jwks, now).await
    }

    /// [`Self::authenticate`] at `now` (Unix seconds).
    async fn authenticate_at(
        &self,
        parts: &mut Parts,
        jwks: &JwksCache,
        now: u64,
    ) -> Result<Option<Authenticated>, JwtError> {
        if self.is_empty() {
            return Ok(None);
        }
        let found = self.find_tokens(parts);
        for name in &self.inner.output_headers {
            parts.headers.remove(name);
        }
        let mut accepted = Vec::new();
        for token in &found {
            match self.verify(token, jwks, now).await {
                Ok(Some((rule, jwt))) => accepted.push((token, rule, jwt)),
                Ok(None) => tracing::debug!("jwt ignored: audience not allowed"),
                Err(error) => {
                    tracing::debug!(%error, "jwt rejected");
                    return Err(error);
                }
            }
        }
        let mut result = None;
        for (found, rule, jwt) in accepted {
            rule.apply_outputs(&jwt, &mut parts.headers);
            if !rule.forward {
                for location in found
                    .locations
                    .iter()
                    .filter_map(|l| self.inner.locations.get(*l))
                {
                    location.0.remove(parts, &found.token);
                }
            }
            let principal = format!("{}/{}", jwt.iss, jwt.sub);
            tracing::debug!(rule = %rule.id, %principal, "jwt accepted");
            result.get_or_insert_with(|| Authenticated {
                principal,
                claims: rule.claims(&jwt),
            });
        }
        Ok(result)
    }

    /// Every distinct token in the configured locations, in location order.
    fn find_tokens(&self, parts: &Parts) -> Vec<Found> {
        let mut found: Vec<Found> = Vec::new();
        for (index, (location, _)) in self.inner.locations.iter().enumerate() {
            for token in location.tokens(parts) {
                match found.iter_mut().find(|f| f.token == token) {
                    Some(f) => f.locations.push(index),
                    None => found.push(Found {
                        token,
                        locations: vec![index],
                    }),
                }
            }
        }
        found
    }

    /// Verifies one token against the rules reading its locations with its issuer. The first
    /// rule whose keys verify it and whose audiences accept it wins; `Ok(None)` when keys
    /// verified it but no such rule accepts its audience; otherwise the first rule's error.
    async fn verify<'f>(
        &self,
        found: &'f Found,
        jwks: &JwksCache,
        now: u64,
    ) -> Result<Option<(&Rule, Jwt<'f>)>, JwtError> {
        let jwt = Jwt::parse(&found.token)?;
        let mut candidates: Vec<usize> = found
            .locations
            .iter()
            .filter_map(|l| self.inner.locations.get(*l))
            .flat_map(|(_, readers)| readers.iter().copied())
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        let rules: Vec<&Rule> = candidates
            .iter()
            .filter_map(|i| self.inner.rules.get(*i))
            .filter(|r| r.matches_issuer(&jwt.iss))
            .collect();
        if rules.is_empty() {
            return Err(JwtError::UnknownIssuer);
        }
        jwt.check_time(now)?;
        let mut first_error = None;
        let mut audience_rejected = false;
        for rule in rules {
            let verified = match rule.keys(jwks).await {
                Ok(keys) => keys.verify(&jwt),
                Err(error) => Err(error),
            };
            match verified {
                Ok(()) if rule.accepts_audiences(&jwt.audiences) => return Ok(Some((rule, jwt))),
                Ok(()) => audience_rejected = true,
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) if !audience_rejected => Err(error),
            _ => Ok(None),
        }
    }
}

fn applies(policy: &RequestAuthentication, labels: &BTreeMap<String, String>) -> bool {
    policy.target_ref.is_none()
        && policy.target_refs.is_empty()
        && super::selects(policy.selector.as_ref(), labels)
}
