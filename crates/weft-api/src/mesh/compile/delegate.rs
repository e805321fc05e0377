//! Delegation: a root route with `delegate` is replaced by the delegate VirtualService's routes,
//! each merged with the root route as Istio merges them (`mergeHTTPRoute`): every delegate match
//! block is ANDed with each root block it does not conflict with (the delegate's conditions win
//! field by field), a delegate block that fits no root block drops the whole delegate route, and
//! route fields the delegate leaves unset (rewrite, timeout, retries, fault, mirrors, CORS,
//! headers) come from the root. Names join as `root-delegate`.

use std::collections::BTreeMap;

use crate::model::{HttpMatchRequest, HttpRoute, StringMatch};

/// The delegate route `leaf` narrowed by the root route, or `None` on a match conflict.
pub(super) fn merge_route(root: &HttpRoute, leaf: &HttpRoute) -> Option<HttpRoute> {
    let mut out = leaf.clone();
    out.matches = merge_matches(&root.matches, &leaf.matches)?;
    out.name = join_names(root.name.as_deref(), leaf.name.as_deref());
    out.delegate = None;
    fill(&mut out.rewrite, &root.rewrite);
    fill(&mut out.direct_response, &root.direct_response);
    fill(&mut out.timeout, &root.timeout);
    fill(&mut out.retries, &root.retries);
    fill(&mut out.fault, &root.fault);
    fill(&mut out.mirror, &root.mirror);
    fill(&mut out.mirror_percent, &root.mirror_percent);
    fill(&mut out.mirror_percentage, &root.mirror_percentage);
    fill(&mut out.cors_policy, &root.cors_policy);
    fill(&mut out.headers, &root.headers);
    if out.mirrors.is_empty() {
        out.mirrors = root.mirrors.clone();
    }
    Some(out)
}

fn fill<T: Clone>(field: &mut Option<T>, root: &Option<T>) {
    if field.is_none() {
        field.clone_from(root);
    }
}

fn join_names(root: Option<&str>, leaf: Option<&str>) -> Option<String> {
    let root = root.filter(|n| !n.is_empty());
    match (root, leaf.filter(|n| !n.is_empty())) {
        (Some(r), Some(l)) => Some(format!("{r}-{l}")),
        (r, l) => l.or(r).map(str::to_string),
    }
}

fn merge_matches(
    root: &[HttpMatchRequest],
    leaf: &[HttpMatchRequest],
) -> Option<Vec<HttpMatchRequest>> {
    if root.is_empty() {
        return Some(leaf.to_vec());
    }
    if leaf.is_empty() {
        return Some(root.to_vec());
    }
    let mut out = Vec::new();
    for l in leaf {
        let before = out.len();
        out.extend(
            root.iter()
                .filter(|r| !conflicts(r, l))
                .map(|r| merge_match(r, l)),
        );
        if out.len() == before {
            return None;
        }
    }
    Some(out)
}

fn merge_match(root: &HttpMatchRequest, leaf: &HttpMatchRequest) -> HttpMatchRequest {
    let mut out = leaf.clone();
    out.name = join_names(root.name.as_deref(), leaf.name.as_deref());
    fill(&mut out.uri, &root.uri);
    fill(&mut out.scheme, &root.scheme);
    fill(&mut out.method, &root.method);
    fill(&mut out.authority, &root.authority);
    fill(&mut out.port, &root.port);
    fill(&mut out.source_namespace, &root.source_namespace);
    fill(&mut out.stat_prefix, &root.stat_prefix);
    out.headers = union(&root.headers, &leaf.headers);
    out.without_headers = union(&root.without_headers, &leaf.without_headers);
    out.query_params = union(&root.query_params, &leaf.query_params);
    out.source_labels = union(&root.source_labels, &leaf.source_labels);
    if out.gateways.is_empty() {
        out.gateways = root.gateways.clone();
    }
    out
}

/// Root entries overridden by the leaf's.
fn union<V: Clone>(root: &BTreeMap<String, V>, leaf: &BTreeMap<String, V>) -> BTreeMap<String, V> {
    let mut out = root.clone();
    out.extend(leaf.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

/// Istio's `hasConflict`: the leaf block must be narrower than the root block.
fn conflicts(root: &HttpMatchRequest, leaf: &HttpMatchRequest) -> bool {
    let pairs = [
        (&root.uri, &leaf.uri),
        (&root.scheme, &leaf.scheme),
        (&root.method, &leaf.method),
        (&root.authority, &leaf.authority),
    ];
    let keyed = |r: &BTreeMap<String, StringMatch>, l: &BTreeMap<String, StringMatch>| {
        l.iter().any(|(k, lm)| string_conflict(r.get(k), Some(lm)))
    };
    let port = matches!((root.port, leaf.port), (Some(r), Some(l)) if r > 0 && l > 0 && r != l);
    let namespace = root
        .source_namespace
        .as_deref()
        .is_some_and(|r| !r.is_empty() && leaf.source_namespace.as_deref() != Some(r));
    let labels = leaf
        .source_labels
        .iter()
        .any(|(k, v)| root.source_labels.get(k).is_some_and(|rv| rv != v));
    let gateways = !root.gateways.is_empty()
        && !leaf.gateways.is_empty()
        && leaf.gateways.iter().any(|g| !root.gateways.contains(g));
    pairs
        .iter()
        .any(|(r, l)| string_conflict(r.as_ref(), l.as_ref()))
        || keyed(&root.headers, &leaf.headers)
        || keyed(&root.without_headers, &leaf.without_headers)
        || keyed(&root.query_params, &leaf.query_params)
        || root.ignore_uri_case.unwrap_or(false) != leaf.ignore_uri_case.unwrap_or(false)
        || port
        || namespace
        || labels
        || gateways
}

/// Istio's `stringMatchConflict`: exact under exact must be equal, prefix/exact under prefix
/// must extend it, regexes cannot be combined with anything.
fn string_conflict(root: Option<&StringMatch>, leaf: Option<&StringMatch>) -> bool {
    let (Some(root), Some(leaf)) = (root, leaf) else {
        return false;
    };
    let set = |s: &Option<String>| s.clone().filter(|v| !v.is_empty());
    let (r_exact, r_prefix, r_regex) = (set(&root.exact), set(&root.prefix), set(&root.regex));
    let (l_exact, l_prefix, l_regex) = (set(&leaf.exact), set(&leaf.prefix), set(&leaf.regex));
    let leaf_any = l_exact.is_some() || l_prefix.is_some() || l_regex.is_some();
    let root_any = r_exact.is_some() || r_prefix.is_some() || r_regex.is_some();
    if (r_regex.is_some() && leaf_any) || (l_regex.is_some() && root_any) {
        return true;
    }
    if let Some(exact) = r_exact {
        return l_prefix.is_some() || l_exact.as_deref() != Some(exact.as_str());
    }
    if let Some(prefix) = r_prefix {
        if let Some(lp) = l_prefix {
            return !lp.starts_with(&prefix);
        }
        if let Some(le) = l_exact {
            return !le.starts_with(&prefix);
        }
    }
    true
}
