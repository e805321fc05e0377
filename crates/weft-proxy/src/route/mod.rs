//! Routing: the first route of the request's virtual host whose match blocks accept the
//! request, the weighted destination it sends to, and the actions it applies on the way
//! (header edits, rewrites, redirects, faults). Forwarding with retries and timeouts is in
//! [`forward`].

pub mod actions;
pub mod cors;
pub mod forward;

use http::HeaderMap;
use weft_api::mesh::{HttpRoute, RequestFacts, RouteMatch, VirtualHost, WeightedDestination};

/// The parts of a request matchers look at, borrowed from it.
pub struct RequestView<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub scheme: &'a str,
    pub authority: &'a str,
    pub port: u16,
    pub headers: &'a HeaderMap,
}

/// The comma-joined value of a header, as Envoy matches multi-valued headers.
pub fn header_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut values = headers.get_all(name).iter().peekable();
    values.peek()?;
    let joined: Vec<&str> = values.filter_map(|v| v.to_str().ok()).collect();
    Some(joined.join(","))
}

/// The first route that matches, in order (Istio: first match wins), with the match block that
/// accepted the request (a prefix rewrite replaces that block's prefix).
pub fn select<'v>(
    vhost: &'v VirtualHost,
    req: &RequestView<'_>,
) -> Option<(&'v HttpRoute, Option<&'v RouteMatch>)> {
    let header = |name: &str| header_value(req.headers, name);
    let facts = RequestFacts {
        method: req.method,
        path: req.path,
        query: req.query,
        scheme: req.scheme,
        authority: req.authority,
        port: req.port,
        header: &header,
    };
    vhost.routes.iter().find_map(|r| {
        if r.matches.is_empty() {
            return Some((r, None));
        }
        r.matches
            .iter()
            .find(|m| m.matches(&facts))
            .map(|m| (r, Some(m)))
    })
}

/// Picks a destination by weight (weights are relative; zero-weight destinations get nothing).
pub fn pick_destination(destinations: &[WeightedDestination]) -> Option<&WeightedDestination> {
    let total: u64 = destinations.iter().map(|d| u64::from(d.weight)).sum();
    if total == 0 {
        return destinations.first();
    }
    let mut ticket = fastrand::u64(0..total);
    for d in destinations {
        let w = u64::from(d.weight);
        if ticket < w {
            return Some(d);
        }
        ticket -= w;
    }
    destinations.last()
}

/// Whether an event with probability `percent` (0..=100) happens this time.
pub fn chance(percent: f64) -> bool {
    percent >= 100.0 || (percent > 0.0 && fastrand::f64() * 100.0 < percent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_api::mesh::ClusterKey;

    fn dest(host: &str, weight: u32) -> WeightedDestination {
        WeightedDestination {
            cluster: ClusterKey {
                host: host.into(),
                subset: None,
                port: None,
            },
            weight,
            headers: Default::default(),
        }
    }

    #[test]
    fn weighted_pick_follows_weights() {
        let ds = [dest("a", 80), dest("b", 20), dest("c", 0)];
        let n = 20_000;
        let mut a = 0;
        for _ in 0..n {
            match pick_destination(&ds).map(|d| d.cluster.host.as_str()) {
                Some("a") => a += 1,
                Some("b") => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        // Binomial(n, 0.8): standard deviation sqrt(n p (1-p)) ≈ 57; allow 5 sigma.
        let sigma = (n as f64 * 0.8 * 0.2).sqrt();
        assert!(
            (f64::from(a) - n as f64 * 0.8).abs() < 5.0 * sigma,
            "a = {a}"
        );
    }

    #[test]
    fn chance_edges() {
        assert!(chance(100.0));
        assert!(!chance(0.0));
    }
}
