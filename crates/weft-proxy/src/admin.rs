//! The proxy's admin server (Envoy's 15000 and Istio's 15021 paths): `/ready` and
//! `/healthz/ready`, `/config_dump`, and `/metrics` and `/stats/prometheus`, over HTTP/1.1 or h2c.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::body::{ProxyBody, full};
use crate::telemetry::metrics::{OPENMETRICS_CONTENT_TYPE, encode};

/// How long open admin connections may take to finish after shutdown before they are dropped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Produces the document served at `/config_dump`.
pub type ConfigDumpFn = dyn Fn() -> serde_json::Value + Send + Sync;

/// What the admin server reports. Register every metric into the registry before building this:
/// encoding needs only `&Registry`, so scrapes run concurrently without a lock.
#[derive(Clone)]
pub struct AdminState {
    /// Whether the proxy is ready to serve (`/ready` answers 200 once true, 503 before).
    pub ready: Arc<AtomicBool>,
    /// The effective config, served as JSON at `/config_dump`.
    pub config_dump: Arc<ConfigDumpFn>,
    /// The metrics served at `/metrics` and `/stats/prometheus`.
    pub registry: Arc<Registry>,
}

impl AdminState {
    /// A not-yet-ready state serving `registry` and the document `config_dump` returns.
    pub fn new(
        registry: Arc<Registry>,
        config_dump: impl Fn() -> serde_json::Value + Send + Sync + 'static,
    ) -> AdminState {
        AdminState {
            ready: Arc::new(AtomicBool::new(false)),
            config_dump: Arc::new(config_dump),
            registry,
        }
    }

    /// Marks the proxy ready (or not).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Whether the proxy is ready.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

impl fmt::Debug for AdminState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminState")
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

/// The admin endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Ready,
    ConfigDump,
    Metrics,
}

impl Endpoint {
    fn from_path(path: &str) -> Option<Endpoint> {
        match path {
            "/ready" | "/healthz/ready" => Some(Endpoint::Ready),
            "/config_dump" => Some(Endpoint::ConfigDump),
            "/metrics" | "/stats/prometheus" => Some(Endpoint::Metrics),
            _ => None,
        }
    }
}

/// Serves the admin API on `listener` until `shutdown` resolves, then stops accepting, lets open
/// connections finish their current request (up to a few seconds) and returns.
pub async fn serve_admin(
    listener: TcpListener,
    state: AdminState,
    shutdown: impl Future<Output = ()> + Send,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let conn = serve_connection(stream, peer, state.clone(), stop_rx.clone());
                    connections.spawn(conn);
                }
                Err(error) => {
                    tracing::warn!(%error, "admin accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                if let Err(error) = joined {
                    tracing::warn!(%error, "admin connection task failed");
                }
            }
        }
    }
    drop(listener);
    // Receivers may all be gone (no open connection): nothing to tell then.
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        tracing::debug!(
            open = connections.len(),
            "admin connections dropped at shutdown"
        );
    }
}

/// Serves one connection (HTTP/1.1 or h2c) until it closes or shutdown is signalled.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    state: AdminState,
    mut stop: watch::Receiver<bool>,
) {
    tracing::debug!(%peer, "admin connection");
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A timer makes hyper enforce its default 30 s limit on reading request headers.
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
        let response = respond(&state, &req);
        async move { Ok::<_, Infallible>(response) }
    });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    // The guard `wait_for` returns is not `Send`: drop it before awaiting the connection.
    let stopped = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stopped => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "admin connection error");
    }
}

/// Answers one admin request.
fn respond<B>(state: &AdminState, req: &Request<B>) -> Response<ProxyBody> {
    let Some(endpoint) = Endpoint::from_path(req.uri().path()) else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    if req.method() != Method::GET {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    match endpoint {
        Endpoint::Ready if state.is_ready() => text(StatusCode::OK, "ready"),
        Endpoint::Ready => text(StatusCode::SERVICE_UNAVAILABLE, "not ready"),
        Endpoint::ConfigDump => config_dump(state),
        Endpoint::Metrics => {
            let body = encode(&state.registry);
            with_type(
                StatusCode::OK,
                body,
                HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE),
            )
        }
    }
}

fn config_dump(state: &AdminState) -> Response<ProxyBody> {
    match serde_json::to_vec_pretty(&(state.config_dump)()) {
        Ok(mut json) => {
            json.push(b'\n');
            with_type(
                StatusCode::OK,
                json,
                HeaderValue::from_static("application/json"),
            )
        }
        Err(error) => {
            tracing::warn!(%error, "config dump did not serialize");
            text(StatusCode::INTERNAL_SERVER_ERROR, "config dump failed\n")
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<ProxyBody> {
    with_type(
        status,
        body,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    )
}

fn with_type(
    status: StatusCode,
    body: impl Into<bytes::Bytes>,
    content_type: HeaderValue,
) -> Response<ProxyBody> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    response
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::sync::oneshot;

    use super::*;
    use crate::telemetry::metrics::{ProxyMetrics, Reporter, RequestLabels, RequestProtocol};
    use crate::telemetry::response_flags::ResponseFlags;

    struct Running {
        addr: SocketAddr,
        state: AdminState,
        stop: oneshot::Sender<()>,
        server: tokio::task::JoinHandle<()>,
    }

    async fn start() -> Running {
        let mut registry = Registry::default();
        let metrics = ProxyMetrics::register(&mut registry);
        let labels = RequestLabels {
            reporter: Reporter::Source,
            source_workload: "sleep".into(),
            source_workload_namespace: "default".into(),
            destination_service: "httpbin.default.svc.cluster.local".into(),
            destination_service_name: "httpbin".into(),
            destination_service_namespace: "default".into(),
            destination_version: "v1".into(),
            request_protocol: RequestProtocol::Http,
            response_code: 200,
            response_flags: ResponseFlags::NONE,
        };
        metrics.record(&labels, Duration::from_millis(7), 0, 42);
        let state = AdminState::new(
            Arc::new(registry),
            || serde_json::json!({"configs": [{"name": "reviews", "version": 3}]}),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let server = tokio::spawn(serve_admin(listener, state.clone(), shutdown));
        Running {
            addr,
            state,
            stop,
            server,
        }
    }

    struct Reply {
        status: u16,
        head: String,
        body: String,
    }

    impl Reply {
        fn header(&self, name: &str) -> Option<&str> {
            self.head.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name).then(|| value.trim())
            })
        }
    }

    /// A minimal HTTP/1.1 client: one request per connection, read until close.
    async fn request(addr: SocketAddr, method: &str, path: &str) -> Reply {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let req = format!("{method} {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        Reply {
            status,
            head: head.to_string(),
            body: body.to_string(),
        }
    }

    #[tokio::test]
    async fn ready_flips_from_503_to_200() {
        let admin = start().await;
        for path in ["/ready", "/healthz/ready"] {
            let reply = request(admin.addr, "GET", path).await;
            assert_eq!(
                (reply.status, reply.body.as_str()),
                (503, "not ready"),
                "{path}"
            );
        }
        admin.state.set_ready(true);
        for path in ["/ready", "/healthz/ready"] {
            let reply = request(admin.addr, "GET", path).await;
            assert_eq!(
                (reply.status, reply.body.as_str()),
                (200, "ready"),
                "{path}"
            );
            assert_eq!(
                reply.header("content-type"),
                Some("text/plain; charset=utf-8")
            );
        }
        admin.state.set_ready(false);
        assert_eq!(request(admin.addr, "GET", "/ready").await.status, 503);
    }

    #[tokio::test]
    async fn config_dump_serves_the_providers_json() {
        let admin = start().await;
        let reply = request(admin.addr, "GET", "/config_dump").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let value: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(value["configs"][0]["name"], "reviews");
        assert_eq!(value["configs"][0]["version"], 3);
    }

    #[tokio::test]
    async fn metrics_on_both_paths() {
        let admin = start().await;
        for path in ["/metrics", "/stats/prometheus", "/metrics?format=text"] {
            let reply = request(admin.addr, "GET", path).await;
            assert_eq!(reply.status, 200, "{path}");
            assert_eq!(reply.header("content-type"), Some(OPENMETRICS_CONTENT_TYPE));
            assert!(
                reply
                    .body
                    .contains(r#"istio_requests_total{reporter="source","#)
            );
            assert!(
                reply
                    .body
                    .contains(r#"response_code="200",response_flags="-"} 1"#)
            );
            assert!(
                reply
                    .body
                    .contains("istio_request_duration_milliseconds_bucket{")
            );
            assert!(reply.body.ends_with("# EOF\n"), "{}", reply.body);
        }
    }

    #[tokio::test]
    async fn unknown_paths_404_and_other_methods_405() {
        let admin = start().await;
        assert_eq!(request(admin.addr, "GET", "/nope").await.status, 404);
        assert_eq!(request(admin.addr, "GET", "/").await.status, 404);
        for (method, path) in [
            ("POST", "/ready"),
            ("DELETE", "/metrics"),
            ("PUT", "/config_dump"),
        ] {
            let reply = request(admin.addr, method, path).await;
            assert_eq!(reply.status, 405, "{method} {path}");
            assert_eq!(reply.header("allow"), Some("GET"));
        }
    }

    #[tokio::test]
    async fn shutdown_closes_idle_keep_alive_connections() {
        let admin = start().await;
        let mut stream = TcpStream::connect(admin.addr).await.unwrap();
        stream
            .write_all(b"GET /ready HTTP/1.1\r\nHost: admin\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 503"));
        // The connection stays open (keep-alive) until shutdown.
        admin.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(2), admin.server)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stream.read(&mut buf).await.unwrap(), 0);
        assert!(TcpStream::connect(admin.addr).await.is_err());
    }

    #[tokio::test]
    async fn serves_h2c_prior_knowledge() {
        let admin = start().await;
        admin.state.set_ready(true);
        let stream = TcpStream::connect(admin.addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = Request::get("http://admin/ready")
            .body(crate::body::empty())
            .unwrap();
        let response = sender.send_request(req).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.version(), http::Version::HTTP_2);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ready");
    }

    #[test]
    fn debug_does_not_dump_internals() {
        let state = AdminState::new(Arc::new(Registry::default()), || serde_json::Value::Null);
        assert_eq!(format!("{state:?}"), "AdminState { ready: false, .. }");
    }
}
