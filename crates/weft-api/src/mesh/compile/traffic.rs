//! A cluster's traffic policy, merged as Istio's `MergeTrafficPolicy` does: the rule's policy,
//! replaced by its port-level settings for the cluster's port, then the subset's policy field
//! by field, replaced again by the subset's port-level settings. Port-level settings replace
//! load balancer, connection pool, outlier detection and client TLS together: what they leave
//! unset gets the defaults (for `tls`: auto mTLS), not the destination-level value. Unset fields
//! get Istio's defaults. A `tls` block without `mode` counts as no `tls` at all.

use std::time::Duration;

use crate::mesh::{ConnectionPool, ConsistentHashKey, LbPolicy, OutlierPolicy, UpstreamTls};
use crate::model::{
    ClientTlsSettings, ConnectionPoolSettings, ConsistentHashLb, DurationText, H2UpgradePolicy,
    LoadBalancerSettings, OutlierDetection, SimpleLb, TrafficPolicy,
};

use super::tls;

/// The policy fields a cluster uses.
#[derive(Default, Clone, Copy)]
pub(super) struct Policy<'a> {
    lb: Option<&'a LoadBalancerSettings>,
    pool: Option<&'a ConnectionPoolSettings>,
    outlier: Option<&'a OutlierDetection>,
    tls: Option<&'a ClientTlsSettings>,
}

impl<'a> Policy<'a> {
    /// The merged policy for a cluster on `port`.
    pub fn merged(
        rule: Option<&'a TrafficPolicy>,
        subset: Option<&'a TrafficPolicy>,
        port: Option<u16>,
    ) -> Policy<'a> {
        let mut policy = Policy::default();
        for tp in [rule, subset].into_iter().flatten() {
            policy = policy.overlay(tp).port_level(tp, port);
        }
        policy
    }

    fn overlay(self, tp: &'a TrafficPolicy) -> Policy<'a> {
        Policy {
            lb: tp.load_balancer.as_ref().or(self.lb),
            pool: tp.connection_pool.as_ref().or(self.pool),
            outlier: tp.outlier_detection.as_ref().or(self.outlier),
            tls: tls::with_mode(tp.tls.as_ref()).or(self.tls),
        }
    }

    fn port_level(self, tp: &'a TrafficPolicy, port: Option<u16>) -> Policy<'a> {
        let Some(port) = port else { return self };
        let found = tp
            .port_level_settings
            .iter()
            .find(|p| p.port.as_ref().is_some_and(|s| s.number == i64::from(port)));
        match found {
            Some(p) => Policy {
                lb: p.load_balancer.as_ref(),
                pool: p.connection_pool.as_ref(),
                outlier: p.outlier_detection.as_ref(),
                tls: tls::with_mode(p.tls.as_ref()),
            },
            None => self,
        }
    }

    pub fn lb(&self) -> LbPolicy {
        self.lb.map(lb_policy).unwrap_or_default()
    }

    pub fn pool(&self) -> ConnectionPool {
        self.pool.map(connection_pool).unwrap_or_default()
    }

    pub fn outlier(&self) -> Option<OutlierPolicy> {
        self.outlier.map(outlier_policy)
    }

    /// `None` when no level sets `tls`: the proxy then decides per endpoint (auto mTLS).
    pub fn tls(&self) -> Option<UpstreamTls> {
        self.tls.and_then(tls::upstream_tls)
    }
}

fn duration(d: Option<&DurationText>) -> Option<Duration> {
    d.and_then(|d| d.parse().ok())
}

fn count(v: Option<i64>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok())
}

/// A limit where Istio cannot tell 0 from unset: 0 means the default (its `> 0` checks in
/// `applyConnectionPool` and `applyOutlierDetection`).
fn limit(v: Option<i64>) -> Option<u32> {
    count(v).filter(|n| *n > 0)
}

/// `consistentHash` (when it names a key), else `simple` (UNSPECIFIED and the deprecated
/// LEAST_CONN are LEAST_REQUEST).
fn lb_policy(lb: &LoadBalancerSettings) -> LbPolicy {
    if let Some(key) = lb.consistent_hash.as_ref().and_then(hash_key) {
        return LbPolicy::ConsistentHash(key);
    }
    match lb.simple {
        Some(SimpleLb::RoundRobin) => LbPolicy::RoundRobin,
        Some(SimpleLb::Random) => LbPolicy::Random,
        Some(SimpleLb::Passthrough) => LbPolicy::Passthrough,
        Some(SimpleLb::LeastRequest | SimpleLb::LeastConn | SimpleLb::Unspecified) | None => {
            LbPolicy::LeastRequest
        }
    }
}

/// Header names are lowercased; a cookie's `ttl` makes the proxy set it.
fn hash_key(ch: &ConsistentHashLb) -> Option<ConsistentHashKey> {
    if let Some(h) = &ch.http_header_name {
        Some(ConsistentHashKey::Header(h.to_ascii_lowercase()))
    } else if let Some(c) = &ch.http_cookie {
        Some(ConsistentHashKey::Cookie {
            name: c.name.clone(),
            path: c.path.clone().filter(|p| !p.is_empty()),
            ttl: duration(c.ttl.as_ref()),
        })
    } else if ch.use_source_ip == Some(true) {
        Some(ConsistentHashKey::SourceIp)
    } else {
        ch.http_query_parameter_name
            .clone()
            .map(ConsistentHashKey::QueryParameter)
    }
}

/// `tcp`/`http` settings over [`ConnectionPool::default`] (a 0 limit is the default, as in
/// Istio); HTTP/2 upstream with `UPGRADE`.
fn connection_pool(s: &ConnectionPoolSettings) -> ConnectionPool {
    let mut pool = ConnectionPool::default();
    if let Some(tcp) = &s.tcp {
        pool.max_connections = limit(tcp.max_connections).unwrap_or(pool.max_connections);
        pool.connect_timeout =
            duration(tcp.connect_timeout.as_ref()).unwrap_or(pool.connect_timeout);
    }
    if let Some(http) = &s.http {
        pool.max_pending_requests =
            limit(http.http1_max_pending_requests).unwrap_or(pool.max_pending_requests);
        pool.max_requests = limit(http.http2_max_requests).unwrap_or(pool.max_requests);
        pool.max_requests_per_connection =
            count(http.max_requests_per_connection).unwrap_or(pool.max_requests_per_connection);
        pool.idle_timeout = duration(http.idle_timeout.as_ref()).unwrap_or(pool.idle_timeout);
        pool.max_retries = limit(http.max_retries).unwrap_or(pool.max_retries);
        pool.http2 = http.h2_upgrade_policy == Some(H2UpgradePolicy::Upgrade);
    }
    pool
}

/// Over [`OutlierPolicy::default`]. The deprecated `consecutiveErrors` counts gateway errors
/// only and turns the 5xx counter off (Istio, istio/api#617), unless `consecutive5xxErrors` is
/// set too. A gateway error count of 0 disables that counter.
fn outlier_policy(o: &OutlierDetection) -> OutlierPolicy {
    let default = OutlierPolicy::default();
    let legacy = count(o.consecutive_errors).filter(|n| *n > 0);
    OutlierPolicy {
        consecutive_5xx: count(o.consecutive_5xx_errors)
            .or(legacy.map(|_| 0))
            .unwrap_or(default.consecutive_5xx),
        consecutive_gateway: count(o.consecutive_gateway_errors)
            .or(legacy)
            .filter(|n| *n > 0),
        interval: duration(o.interval.as_ref()).unwrap_or(default.interval),
        base_ejection_time: duration(o.base_ejection_time.as_ref())
            .unwrap_or(default.base_ejection_time),
        max_ejection_percent: limit(o.max_ejection_percent).unwrap_or(default.max_ejection_percent),
        min_health_percent: count(o.min_health_percent).unwrap_or(default.min_health_percent),
    }
}
