//! Why one try could not get a response from an upstream, with the Envoy response flag each
//! failure is logged with.

/// An underlying transport error (from the HTTP client or the connector).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A try that ended without upstream response headers.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// `UH`: the cluster has no endpoints for the port, or every endpoint is ejected by outlier
    /// detection and panic mode is off.
    #[error("no healthy upstream")]
    NoHealthyUpstream,
    /// `UF`: the TCP connection to the endpoint could not be made (refused, unreachable, DNS
    /// failure or `connectTimeout`).
    #[error("upstream connect error to {endpoint}")]
    ConnectFailure {
        endpoint: String,
        #[source]
        source: BoxError,
    },
    /// `UO`: the cluster's connection pool limits are reached (circuit breaker open); the caller
    /// answers 503 with `x-envoy-overloaded: true`.
    #[error("upstream overflow: connection pool limits reached")]
    Overflow,
    /// `UC`: the connection was closed or reset before response headers arrived.
    #[error("upstream {endpoint} closed the connection before responding")]
    Reset {
        endpoint: String,
        #[source]
        source: BoxError,
    },
}

impl UpstreamError {
    /// Envoy's short response flag for this failure.
    pub fn response_flag(&self) -> &'static str {
        match self {
            UpstreamError::NoHealthyUpstream => "UH",
            UpstreamError::ConnectFailure { .. } => "UF",
            UpstreamError::Overflow => "UO",
            UpstreamError::Reset { .. } => "UC",
        }
    }

    /// The endpoint (`ip:port`) the try went to, when one was picked (for `upstream_host` and
    /// for excluding it on a retry).
    pub fn endpoint(&self) -> Option<&str> {
        match self {
            UpstreamError::ConnectFailure { endpoint, .. }
            | UpstreamError::Reset { endpoint, .. } => Some(endpoint),
            UpstreamError::NoHealthyUpstream | UpstreamError::Overflow => None,
        }
    }
}
