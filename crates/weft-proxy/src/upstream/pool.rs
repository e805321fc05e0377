//! Pooled upstream connections: one HTTP client per cluster, configured from the cluster's
//! `connectionPool`, and the request rewrite that points a request at the chosen endpoint.
//!
//! - `tcp.connectTimeout` is the connector's connect timeout (a timeout is a connect failure,
//!   `UF`); `TCP_NODELAY` is on. DNS endpoints (`name:port`) are resolved by the connector at
//!   connect time.
//! - `http.idleTimeout` closes pooled connections idle that long (0 disables it).
//! - `cluster.pool.http2` (`h2UpgradePolicy: UPGRADE`, or an HTTP2/GRPC service port) speaks
//!   HTTP/2 with prior knowledge (h2c); otherwise HTTP/1.1.
//! - `http.maxRequestsPerConnection: 1` disables keep-alive (no idle connection is kept). Other
//!   values are approximated: connections are reused without a per-connection request count.
//! - `tcp.maxConnections` and `http1MaxPendingRequests` are enforced as a concurrent-request
//!   limit (see [`super::limits`]), not as a connection count.
//!
//! The request keeps its path, query and `Host` header; only the URI's scheme and authority
//! change. Over HTTP/2 the client sends the URI authority (the endpoint) as `:authority` and the
//! `Host` header as a regular header, so the upstream reads the original host from `Host`.

use std::time::Duration;

use http::header::{HOST, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use weft_api::mesh::ConnectionPool;

use super::error::UpstreamError;
use crate::body::ProxyBody;
use crate::tls::TlsConnector;

/// The HTTP client of one cluster.
pub(super) type HttpClient = Client<HttpConnector, ProxyBody>;

/// The HTTP client of one TLS endpoint (HTTP/2 when ALPN says so).
pub(super) type TlsHttpClient = Client<TlsConnector, ProxyBody>;

/// The TCP connector for a cluster's connection pool settings.
pub(super) fn connector(pool: &ConnectionPool) -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(nonzero(pool.connect_timeout));
    connector
}

/// Builds the client for a cluster's connection pool settings.
pub(super) fn client(pool: &ConnectionPool) -> HttpClient {
    let mut builder = builder(pool);
    if pool.http2 {
        builder.http2_only(true);
    }
    builder.build(connector(pool))
}

/// Builds the client of one TLS endpoint: the protocol follows ALPN.
pub(super) fn tls_client(pool: &ConnectionPool, connector: TlsConnector) -> TlsHttpClient {
    builder(pool).build(connector)
}

fn builder(pool: &ConnectionPool) -> hyper_util::client::legacy::Builder {
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(nonzero(pool.idle_timeout));
    if pool.max_requests_per_connection == 1 {
        builder.pool_max_idle_per_host(0);
    }
    builder
}

fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

/// Points `req` at `endpoint`: `http://endpoint` plus the request's path and query, with the
/// version the pool speaks. A request without `Host` gets its original URI authority as `Host`,
/// so the upstream still sees the host the client asked for.
pub(super) fn retarget(
    req: &mut Request<ProxyBody>,
    endpoint: &Authority,
    http2: bool,
    tls: bool,
) -> Result<(), http::uri::InvalidUriParts> {
    let original = std::mem::take(req.uri_mut()).into_parts();
    if !req.headers().contains_key(HOST) {
        let host = original
            .authority
            .as_ref()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
        if let Some(host) = host {
            req.headers_mut().insert(HOST, host);
        }
    }
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(if tls { Scheme::HTTPS } else { Scheme::HTTP });
    parts.authority = Some(endpoint.clone());
    parts.path_and_query = Some(
        original
            .path_and_query
            .unwrap_or_else(|| PathAndQuery::from_static("/")),
    );
    *req.uri_mut() = Uri::from_parts(parts)?;
    *req.version_mut() = if http2 {
        Version::HTTP_2
    } else {
        Version::HTTP_11
    };
    Ok(())
}

/// Classifies a client error: failing to connect is `UF`, anything after is `UC`.
pub(super) fn classify(err: hyper_util::client::legacy::Error, endpoint: &str) -> UpstreamError {
    let endpoint = endpoint.to_string();
    if err.is_connect() {
        UpstreamError::ConnectFailure {
            endpoint,
            source: Box::new(err),
        }
    } else {
        UpstreamError::Reset {
            endpoint,
            source: Box::new(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::empty;

    fn request(uri: &str, host: Option<&str>) -> Request<ProxyBody> {
        let mut builder = Request::builder().uri(uri).version(Version::HTTP_2);
        if let Some(host) = host {
            builder = builder.header(HOST, host);
        }
        builder.body(empty()).unwrap()
    }

    #[test]
    fn keeps_path_query_and_host() {
        let endpoint = Authority::from_static("10.0.0.1:8080");
        let mut req = request("http://reviews:9080/a/b?x=1", Some("reviews.default:9080"));
        retarget(&mut req, &endpoint, false, false).unwrap();
        assert_eq!(req.uri(), "http://10.0.0.1:8080/a/b?x=1");
        assert_eq!(req.headers()[HOST], "reviews.default:9080");
        assert_eq!(req.version(), Version::HTTP_11);
    }

    #[test]
    fn origin_form_and_missing_host() {
        let endpoint = Authority::from_static("[::1]:80");
        let mut req = request("/only/path", None);
        retarget(&mut req, &endpoint, true, false).unwrap();
        assert_eq!(req.uri(), "http://[::1]:80/only/path");
        assert!(!req.headers().contains_key(HOST));
        assert_eq!(req.version(), Version::HTTP_2);

        let mut req = request("http://ratings:9080", None);
        retarget(&mut req, &endpoint, false, false).unwrap();
        assert_eq!(req.uri(), "http://[::1]:80/");
        assert_eq!(req.headers()[HOST], "ratings:9080");
    }
}
