//! `HTTPMatchRequest` blocks → [`RouteMatch`]es: `StringMatch` → [`StringMatcher`] (regexes
//! compiled as anchored full matches, `{}` a presence test), header names lowercased. The
//! config-time selectors of a block (`sourceNamespace`, `sourceLabels`, `gateways`) decide
//! whether it applies to this proxy at all.

use std::collections::BTreeMap;

use crate::mesh::{RouteMatch, StringMatcher};
use crate::model::{HttpMatchRequest, StringMatch};
use crate::validate::common::compile_full_match;

use super::CompileOptions;
use super::routes::Skip;

/// Header keys the Istio API reserves: ignored in `headers` matches.
const RESERVED_HEADER_KEYS: [&str; 4] = ["uri", "scheme", "method", "authority"];

/// The OR of a route's match blocks. No blocks matches everything; blocks that all exclude this
/// proxy exclude the route.
pub(super) fn match_blocks(
    blocks: &[HttpMatchRequest],
    opts: &CompileOptions,
) -> Result<Vec<RouteMatch>, Skip> {
    if blocks.is_empty() {
        return Ok(Vec::new());
    }
    let out = blocks
        .iter()
        .filter(|b| applies(b, opts))
        .map(route_match)
        .collect::<Result<Vec<_>, _>>()?;
    if out.is_empty() { Err(Skip) } else { Ok(out) }
}

fn applies(block: &HttpMatchRequest, opts: &CompileOptions) -> bool {
    applies_to_proxy(
        block.source_namespace.as_deref(),
        &block.source_labels,
        &block.gateways,
        opts,
    )
}

/// Whether a match block's config-time selectors include this proxy: `sourceNamespace` must be
/// the proxy's, `sourceLabels` a subset of its labels; block-level `gateways` must include
/// `mesh`. Shared by HTTP, TLS and TCP match blocks.
pub(super) fn applies_to_proxy(
    source_namespace: Option<&str>,
    source_labels: &BTreeMap<String, String>,
    gateways: &[String],
    opts: &CompileOptions,
) -> bool {
    let labels_ok = source_labels
        .iter()
        .all(|(k, v)| opts.labels.get(k) == Some(v));
    let namespace_ok = source_namespace.is_none_or(|ns| ns.is_empty() || ns == opts.namespace);
    let gateway_ok = gateways.is_empty() || gateways.iter().any(|g| g == "mesh");
    namespace_ok && labels_ok && gateway_ok
}

fn route_match(block: &HttpMatchRequest) -> Result<RouteMatch, Skip> {
    let opt = |m: &Option<StringMatch>| m.as_ref().map(string_matcher).transpose();
    Ok(RouteMatch {
        name: block.name.clone().filter(|n| !n.is_empty()),
        uri: opt(&block.uri)?,
        ignore_uri_case: block.ignore_uri_case.unwrap_or(false),
        scheme: opt(&block.scheme)?,
        method: opt(&block.method)?,
        authority: opt(&block.authority)?,
        headers: header_matchers(&block.headers)?,
        without_headers: header_matchers(&block.without_headers)?,
        query_params: block
            .query_params
            .iter()
            .map(|(k, m)| Ok((k.clone(), string_matcher(m)?)))
            .collect::<Result<_, Skip>>()?,
        port: block
            .port
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0),
    })
}

/// Header conditions with lowercase names (JWT claim pseudo-headers, `@request.auth.claims.*`,
/// keep their case); reserved keys are dropped.
fn header_matchers(
    headers: &BTreeMap<String, StringMatch>,
) -> Result<Vec<(String, StringMatcher)>, Skip> {
    headers
        .iter()
        .filter(|(name, _)| !RESERVED_HEADER_KEYS.contains(&name.as_str()))
        .map(|(name, m)| {
            let name = if name.starts_with('@') {
                name.clone()
            } else {
                name.to_ascii_lowercase()
            };
            Ok((name, string_matcher(m)?))
        })
        .collect()
}

/// One `StringMatch`. An empty match is a presence test.
pub(super) fn string_matcher(m: &StringMatch) -> Result<StringMatcher, Skip> {
    if let Some(exact) = &m.exact {
        Ok(StringMatcher::Exact(exact.clone()))
    } else if let Some(prefix) = &m.prefix {
        Ok(StringMatcher::Prefix(prefix.clone()))
    } else if let Some(regex) = &m.regex {
        compile_full_match(regex)
            .map(StringMatcher::Regex)
            .map_err(|_| Skip)
    } else {
        Ok(StringMatcher::Present)
    }
}
