//! Traffic policy with Istio's defaults applied: load balancing, connection pool limits,
//! outlier detection and retries, as plain values the proxy reads.

use std::time::Duration;

use serde::Serialize;

/// How a cluster picks an endpoint. Istio's default is `LeastRequest`.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub enum LbPolicy {
    RoundRobin,
    Random,
    #[default]
    LeastRequest,
    /// Forward to the address the request was sent to (original destination).
    Passthrough,
    ConsistentHash(ConsistentHashKey),
}

/// What a consistent hash is computed over.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ConsistentHashKey {
    Header(String),
    /// With a `ttl`, the proxy sets the cookie when the request has none.
    Cookie {
        name: String,
        path: Option<String>,
        ttl: Option<Duration>,
    },
    SourceIp,
    QueryParameter(String),
}

/// Connection pool limits (`connectionPool`), Istio's defaults where unset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionPool {
    /// `tcp.maxConnections` (default 2^32-1).
    pub max_connections: u32,
    /// `tcp.connectTimeout` (default 10s).
    pub connect_timeout: Duration,
    /// `http.http1MaxPendingRequests` (default 2^32-1).
    pub max_pending_requests: u32,
    /// `http.http2MaxRequests`: concurrent requests (default 2^32-1).
    pub max_requests: u32,
    /// `http.maxRequestsPerConnection`: 0 is unlimited.
    pub max_requests_per_connection: u32,
    /// `http.idleTimeout` (default 1h).
    pub idle_timeout: Duration,
    /// `http.maxRetries`: concurrent retries across the cluster (default 2^32-1).
    pub max_retries: u32,
    /// `http.h2UpgradePolicy: UPGRADE` or `useClientProtocol` with an HTTP/2 client.
    pub http2: bool,
}

impl Default for ConnectionPool {
    fn default() -> Self {
        ConnectionPool {
            max_connections: u32::MAX,
            connect_timeout: Duration::from_secs(10),
            max_pending_requests: u32::MAX,
            max_requests: u32::MAX,
            max_requests_per_connection: 0,
            idle_timeout: Duration::from_secs(3600),
            max_retries: u32::MAX,
            http2: false,
        }
    }
}

/// Passive health checking (`outlierDetection`), Istio's defaults where unset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutlierPolicy {
    /// `consecutive5xxErrors` (default 5; 0 disables).
    pub consecutive_5xx: u32,
    /// `consecutiveGatewayErrors` (502/503/504; default disabled).
    pub consecutive_gateway: Option<u32>,
    /// Sweep interval (default 10s).
    pub interval: Duration,
    /// Ejection time = base × times ejected (default 30s).
    pub base_ejection_time: Duration,
    /// Percent of endpoints that may be ejected at once (default 10).
    pub max_ejection_percent: u32,
    /// Below this percent of healthy endpoints, ejection is ignored (panic mode; default 0 = off).
    pub min_health_percent: u32,
}

impl Default for OutlierPolicy {
    fn default() -> Self {
        OutlierPolicy {
            consecutive_5xx: 5,
            consecutive_gateway: None,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_percent: 10,
            min_health_percent: 0,
        }
    }
}

/// Which failures a retry policy retries (Envoy's `x-envoy-retry-on` vocabulary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct RetryOn {
    pub five_xx: bool,
    pub gateway_error: bool,
    pub reset: bool,
    pub connect_failure: bool,
    /// 409 only, as Envoy defines it.
    pub retriable_4xx: bool,
    pub refused_stream: bool,
    /// Retry on these exact status codes (bare codes in `retryOn`, or `retriable-status-codes`).
    pub status_codes: Vec<u16>,
    /// gRPC statuses (from `grpc-status`): cancelled, deadline-exceeded, internal,
    /// resource-exhausted, unavailable.
    pub grpc: Vec<u32>,
}

impl RetryOn {
    /// Parses a validated `retryOn` list (`"5xx,reset,503"`).
    pub fn parse(list: &str) -> RetryOn {
        let mut on = RetryOn::default();
        for policy in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match policy {
                "5xx" => on.five_xx = true,
                "gateway-error" => on.gateway_error = true,
                "reset" | "reset-before-request" => on.reset = true,
                "connect-failure" | "http3-post-connect-failure" => on.connect_failure = true,
                "retriable-4xx" => on.retriable_4xx = true,
                "refused-stream" => on.refused_stream = true,
                "cancelled" => on.grpc.push(1),
                "deadline-exceeded" => on.grpc.push(4),
                "resource-exhausted" => on.grpc.push(8),
                "internal" => on.grpc.push(13),
                "unavailable" => on.grpc.push(14),
                other => {
                    if let Ok(code) = other.parse::<u16>() {
                        on.status_codes.push(code);
                    }
                }
            }
        }
        on
    }

    /// Whether an upstream response status is retriable under this policy.
    pub fn retries_status(&self, status: u16) -> bool {
        (self.five_xx && (500..=599).contains(&status))
            || (self.gateway_error && matches!(status, 502..=504))
            || (self.retriable_4xx && status == 409)
            || self.status_codes.contains(&status)
    }
}

/// A route's retry policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetryPolicy {
    /// Retries after the first try (0 disables).
    pub attempts: u32,
    pub per_try_timeout: Option<Duration>,
    pub retry_on: RetryOn,
    /// Base interval of the exponential backoff between tries (Envoy: 25ms).
    pub backoff: Duration,
}

impl RetryPolicy {
    /// Istio's default when a route has no `retries`: 2 retries on
    /// `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes` with no
    /// retriable status codes (so no 5xx retries).
    pub fn istio_default() -> RetryPolicy {
        RetryPolicy {
            attempts: 2,
            per_try_timeout: None,
            retry_on: RetryOn::parse("connect-failure,refused-stream,unavailable,cancelled"),
            backoff: Duration::from_millis(25),
        }
    }

    /// No retries (a route with `fault`, or `attempts: 0`).
    pub fn disabled() -> RetryPolicy {
        RetryPolicy {
            attempts: 0,
            per_try_timeout: None,
            retry_on: RetryOn::default(),
            backoff: Duration::from_millis(25),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_on_vocabulary() {
        let on = RetryOn::parse("5xx,reset,503,retriable-4xx");
        assert!(on.five_xx && on.reset && on.retriable_4xx);
        assert!(on.retries_status(500) && on.retries_status(409));
        assert!(!on.retries_status(404));
        let gw = RetryOn::parse("gateway-error");
        assert!(gw.retries_status(503) && !gw.retries_status(500));
        let default = RetryPolicy::istio_default();
        assert_eq!(default.attempts, 2);
        assert!(default.retry_on.connect_failure && default.retry_on.refused_stream);
        assert!(!default.retry_on.retries_status(503));
    }
}
