//! Per-upstream local ports (Consul's "upstreams" model): `--upstream ratings:9081` listens on
//! 127.0.0.1:9081 and forwards every HTTP request there to the sidecar's outbound listener with
//! `Host: ratings`, so an app that cannot use a proxy calls `http://127.0.0.1:9081/...`.
//!
//! HTTP/1.1 and h2c are served; requests go on to the sidecar over HTTP/1.1. Protocol
//! upgrades (WebSocket) are not forwarded.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONNECTION, HOST, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::{debug, warn};

/// `SVC:LOCALPORT`: the service name (it may carry its own `:port`, `reviews:9080:9081`) and
/// the local port to listen on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub service: String,
    pub local_port: u16,
}

impl FromStr for Upstream {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (service, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("{s:?}: expected SERVICE:LOCAL_PORT (ratings:9081)"))?;
        let local_port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{s:?}: {port:?} is not a port number (1-65535)"))?;
        if service.is_empty() || HeaderValue::from_str(service).is_err() {
            return Err(format!("{s:?}: the service name is empty or not a host"));
        }
        Ok(Self {
            service: service.to_string(),
            local_port,
        })
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.service, self.local_port)
    }
}

impl Upstream {
    /// The listener name announced on stdout: `upstream/SERVICE`.
    pub fn listener_name(&self) -> String {
        format!("upstream/{}", self.service)
    }
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

struct Forwarder {
    host: HeaderValue,
    outbound: Authority,
    client: Client<HttpConnector, Incoming>,
}

/// Serves `listener`, forwarding to the sidecar's `outbound` listener as `service`, until
/// `shutdown` resolves (in-flight requests are cut: the app is stopping too).
pub async fn serve(
    listener: TcpListener,
    service: String,
    outbound: SocketAddr,
    shutdown: impl Future<Output = ()>,
) {
    let forwarder = match (
        HeaderValue::from_str(&service),
        Authority::from_str(&outbound.to_string()),
    ) {
        (Ok(host), Ok(outbound)) => Arc::new(Forwarder {
            host,
            outbound,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }),
        _ => {
            warn!(%service, "cannot forward to this service name");
            return;
        }
    };
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let forwarder = forwarder.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |req| forward(forwarder.clone(), req));
                        let served = auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                        if let Err(err) = served {
                            debug!(%peer, error = %err, "upstream connection ended");
                        }
                    });
                }
                Err(err) => {
                    warn!(error = %err, "upstream accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
    connections.abort_all();
}

async fn forward(
    forwarder: Arc<Forwarder>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, std::convert::Infallible> {
    let (mut parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    // The client connects to the URI's authority (the sidecar); the Host header set below,
    // which the client keeps, names the service.
    let uri = Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(forwarder.outbound.clone())
        .path_and_query(path)
        .build();
    let Ok(uri) = uri else {
        return Ok(local_reply(
            StatusCode::BAD_REQUEST,
            "invalid request target",
        ));
    };
    parts.uri = uri;
    parts.version = http::Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.insert(HOST, forwarder.host.clone());
    match forwarder
        .client
        .request(Request::from_parts(parts, body))
        .await
    {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Ok(Response::from_parts(parts, body.boxed()))
        }
        Err(err) => {
            debug!(error = %err, "forwarding to the sidecar failed");
            Ok(local_reply(
                StatusCode::BAD_GATEWAY,
                &format!("the sidecar's outbound listener is unreachable: {err}"),
            ))
        }
    }
}

/// Headers about one connection, never forwarded (RFC 9110 §7.6.1).
fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_str(n.trim()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "transfer-encoding",
        "upgrade",
    ] {
        headers.remove(name);
    }
}

fn local_reply(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let body = Full::new(Bytes::from(format!("{message}\n")))
        .map_err(|never| match never {})
        .boxed();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_service_and_local_port() {
        let up: Upstream = "ratings:9081".parse().unwrap();
        assert_eq!(up.service, "ratings");
        assert_eq!(up.local_port, 9081);
        assert_eq!(up.listener_name(), "upstream/ratings");
        let with_port: Upstream = "reviews:9080:9082".parse().unwrap();
        assert_eq!(with_port.service, "reviews:9080");
        assert_eq!(with_port.to_string(), "reviews:9080:9082");
        for bad in ["ratings", "ratings:0", "ratings:x", ":9081", "a b\n:1"] {
            assert!(bad.parse::<Upstream>().is_err(), "{bad}");
        }
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let mut headers = http::HeaderMap::new();
        headers.insert("connection", "keep-alive, x-hop".parse().unwrap());
        headers.insert("x-hop", "1".parse().unwrap());
        headers.insert("keep-alive", "timeout=5".parse().unwrap());
        headers.insert("end-user", "jason".parse().unwrap());
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert_eq!(headers["end-user"], "jason");
    }
}
