//! What a route does — forward to weighted destinations (with a rewrite), redirect, or answer
//! directly — plus the header edits and mirrors that go with forwarding.

use regex::Regex;

use crate::mesh::{
    ClusterKey, HeaderEdits, HeaderOps, Mirror, Redirect, RedirectPort, Rewrite, RouteAction,
    WeightedDestination,
};
use crate::model::{
    self, Destination, HeaderOperations, Headers, HttpDirectResponse, HttpRedirect, HttpRewrite,
    RedirectPortSelection,
};

use super::base64;
use super::routes::Skip;

/// The route's action; `delegate` routes are spliced before this point.
pub(super) fn action(route: &model::HttpRoute) -> Result<RouteAction, Skip> {
    if let Some(redirect) = &route.redirect {
        return Ok(RouteAction::Redirect(redirect_action(redirect)));
    }
    if let Some(direct) = &route.direct_response {
        return direct_response(direct);
    }
    if route.route.is_empty() {
        return Err(Skip);
    }
    Ok(RouteAction::Forward {
        destinations: destinations(&route.route),
        rewrite: route.rewrite.as_ref().map(rewrite).transpose()?,
    })
}

fn destinations(routes: &[model::HttpRouteDestination]) -> Vec<WeightedDestination> {
    let single = routes.len() == 1;
    routes
        .iter()
        .filter_map(|r| {
            Some(WeightedDestination {
                cluster: cluster_key(r.destination.as_ref()?),
                weight: relative_weight(r.weight, single),
                headers: header_ops(r.headers.as_ref()),
            })
        })
        .collect()
}

/// Weights are relative: a lone destination takes everything (100), a destination without a
/// weight among weighted ones takes nothing.
pub(super) fn relative_weight(weight: Option<i64>, single: bool) -> u32 {
    match weight.and_then(|w| u32::try_from(w).ok()) {
        Some(w) if w > 0 => w,
        _ if single => 100,
        _ => 0,
    }
}

/// The cluster a (host-resolved) destination names.
pub(super) fn cluster_key(d: &Destination) -> ClusterKey {
    ClusterKey {
        host: d.host.clone(),
        subset: d.subset.clone().filter(|s| !s.is_empty()),
        port: d
            .port
            .as_ref()
            .and_then(|p| u16::try_from(p.number).ok())
            .filter(|p| *p > 0),
    }
}

/// `uriRegexRewrite` substitutions use RE2's `\1`; the proxy applies them with
/// `Regex::replace_all`, so they are translated to `${1}` (and a literal `$` to `$$`).
fn rewrite(rw: &HttpRewrite) -> Result<Rewrite, Skip> {
    let uri_regex = match &rw.uri_regex_rewrite {
        Some(r) => {
            let pattern = r.pattern.as_deref().unwrap_or_default();
            let re = Regex::new(pattern).map_err(|_| Skip)?;
            Some((
                re,
                regex_replacement(r.rewrite.as_deref().unwrap_or_default()),
            ))
        }
        None => None,
    };
    Ok(Rewrite {
        uri: rw.uri.clone(),
        uri_regex,
        authority: rw.authority.clone().filter(|a| !a.is_empty()),
    })
}

fn regex_replacement(re2: &str) -> String {
    let mut out = String::with_capacity(re2.len());
    let mut chars = re2.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    chars.next();
                    out.push_str(&format!("${{{d}}}"));
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            other => out.push(other),
        }
    }
    out
}

/// `redirectCode` defaults to 301; a fixed `port` wins over `derivePort`.
fn redirect_action(r: &HttpRedirect) -> Redirect {
    let port = match (r.port.and_then(|p| u16::try_from(p).ok()), r.derive_port) {
        (Some(p), _) if p > 0 => Some(RedirectPort::Fixed(p)),
        (_, Some(RedirectPortSelection::FromProtocolDefault)) => {
            Some(RedirectPort::FromProtocolDefault)
        }
        (_, Some(RedirectPortSelection::FromRequestPort)) => Some(RedirectPort::FromRequestPort),
        _ => None,
    };
    Redirect {
        uri: r.uri.clone(),
        authority: r.authority.clone(),
        port,
        scheme: r.scheme.clone(),
        code: r
            .redirect_code
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| *c > 0)
            .unwrap_or(301),
    }
}

/// `body.string` as is, `body.bytes` base64-decoded (kept literally if it does not decode).
fn direct_response(d: &HttpDirectResponse) -> Result<RouteAction, Skip> {
    let status = d.status.and_then(|s| u16::try_from(s).ok()).ok_or(Skip)?;
    let body = d.body.as_ref().and_then(|b| match (&b.string, &b.bytes) {
        (Some(s), _) => Some(s.as_bytes().to_vec()),
        (None, Some(encoded)) => {
            Some(base64::decode(encoded).unwrap_or_else(|| encoded.as_bytes().to_vec()))
        }
        (None, None) => None,
    });
    Ok(RouteAction::DirectResponse { status, body })
}

/// Request and response header edits, names lowercased.
pub(super) fn header_ops(h: Option<&Headers>) -> HeaderOps {
    HeaderOps {
        request: edits(h.and_then(|h| h.request.as_ref())),
        response: edits(h.and_then(|h| h.response.as_ref())),
    }
}

fn edits(ops: Option<&HeaderOperations>) -> HeaderEdits {
    let Some(ops) = ops else {
        return HeaderEdits::default();
    };
    let pairs = |m: &std::collections::BTreeMap<String, String>| {
        m.iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect()
    };
    HeaderEdits {
        set: pairs(&ops.set),
        add: pairs(&ops.add),
        remove: ops.remove.iter().map(|n| n.to_ascii_lowercase()).collect(),
    }
}

/// `mirror` with `mirrorPercentage` (else the deprecated `mirrorPercent`, else 100%), then each
/// of `mirrors` with its `percentage` (else 100%).
pub(super) fn mirrors(route: &model::HttpRoute) -> Vec<Mirror> {
    let clamp = |p: f64| p.clamp(0.0, 100.0);
    let legacy = route.mirror.as_ref().map(|d| Mirror {
        cluster: cluster_key(d),
        percent: clamp(
            route
                .mirror_percentage
                .as_ref()
                .map(|p| p.value)
                .or(route.mirror_percent.map(|p| p as f64))
                .unwrap_or(100.0),
        ),
    });
    let listed = route.mirrors.iter().filter_map(|m| {
        Some(Mirror {
            cluster: cluster_key(m.destination.as_ref()?),
            percent: clamp(m.percentage.as_ref().map_or(100.0, |p| p.value)),
        })
    });
    legacy.into_iter().chain(listed).collect()
}
