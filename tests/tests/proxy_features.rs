//! End-to-end tests of `weft proxy` features beyond route selection: CORS, request mirroring,
//! gRPC trailers over HTTP/2, and streaming of large or broken bodies. Real `weft` processes,
//! plus small in-test hyper servers where a backend must record what it got or misbehave.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use weft_e2e::{TestEcho, TestProxy, reviews_mesh, service_mesh, wait_until_async};

/// How long a condition (a mirrored request arriving, a log line) may take to become true.
const DEADLINE: Duration = Duration::from_secs(10);

/// A body of the given frames, without a size hint: HTTP/1.1 sends it chunked.
struct Frames(VecDeque<Frame<Bytes>>);

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(Ok))
    }
}

/// Serves every connection accepted on `listener` with `serve`, until the test's runtime ends.
fn accept_loop<F, Fut>(listener: TcpListener, serve: F)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    });
}

async fn bind() -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// The recorded values, even if a panicking handler poisoned the lock.
fn recorded<T: Clone>(record: &Mutex<Vec<T>>) -> Vec<T> {
    record
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

fn push<T>(record: &Mutex<Vec<T>>, value: T) {
    record
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(value);
}

// ---------------------------------------------------------------------------------------------
// CORS

const CORS_VS: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
    corsPolicy:
      allowOrigins:
      - exact: https://shop.example.com
      - prefix: https://app.
      allowMethods: [GET, POST]
      allowHeaders: [x-user, content-type]
      exposeHeaders: [x-trace]
      maxAge: 24h
      allowCredentials: true
";

const PREFLIGHT_POST: [(&str, &str); 2] = [
    ("access-control-request-method", "POST"),
    ("access-control-request-headers", "x-user"),
];

async fn preflight(proxy: &TestProxy, origin: &str) -> anyhow::Result<weft_e2e::http::Reply> {
    let mut headers = vec![("origin", origin)];
    headers.extend(PREFLIGHT_POST);
    let mut client = proxy.client(Version::HTTP_11).await?;
    client
        .send(
            Method::OPTIONS,
            "reviews:9080",
            "/api/cart",
            &headers,
            Bytes::new(),
        )
        .await
}

#[tokio::test]
async fn cors_preflight_from_an_allowed_origin_is_answered_by_the_proxy() {
    let echo = TestEcho::start("reviews-v1");
    let proxy = TestProxy::start(&reviews_mesh(&[(&echo, "v1")], CORS_VS), &[]);
    let reply = preflight(&proxy, "https://shop.example.com").await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://shop.example.com")
    );
    // Istio joins the lists with "," and gives Envoy maxAge in seconds.
    assert_eq!(
        reply.header("access-control-allow-methods"),
        Some("GET,POST")
    );
    assert_eq!(
        reply.header("access-control-allow-headers"),
        Some("x-user,content-type")
    );
    assert_eq!(reply.header("access-control-max-age"), Some("86400"));
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        reply.header("x-echo-name"),
        None,
        "answered by the proxy: {reply:?}"
    );
    assert!(reply.body.is_empty());
    assert_eq!(weft_e2e::echo_count(&echo).await.unwrap(), 0);
    let log = proxy.wait_for_log_lines(1).await.unwrap();
    assert_eq!(log[0]["response_code"], 200, "{log:#?}");
    assert_eq!(log[0]["response_code_details"], "cors_response", "{log:#?}");
    assert_eq!(log[0]["method"], "OPTIONS", "{log:#?}");
}

#[tokio::test]
async fn cors_preflight_from_an_unknown_origin_is_forwarded_to_the_backend() {
    let echo = TestEcho::start("reviews-v1");
    let proxy = TestProxy::start(&reviews_mesh(&[(&echo, "v1")], CORS_VS), &[]);
    let reply = preflight(&proxy, "https://evil.example.net").await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-echo-name"), Some("reviews-v1"), "{reply:?}");
    assert_eq!(reply.json().unwrap()["method"], "OPTIONS");
    assert_eq!(
        reply.header("access-control-allow-origin"),
        None,
        "{reply:?}"
    );
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        None,
        "{reply:?}"
    );
    assert_eq!(weft_e2e::echo_count(&echo).await.unwrap(), 1);
}

#[tokio::test]
async fn cors_ignore_answers_unmatched_preflights_without_allow_origin() {
    let echo = TestEcho::start("reviews-v1");
    let vs = CORS_VS.replace(
        "allowCredentials: true",
        "allowCredentials: true\n      unmatchedPreflights: IGNORE",
    );
    let proxy = TestProxy::start(&reviews_mesh(&[(&echo, "v1")], &vs), &[]);
    let reply = preflight(&proxy, "https://evil.example.net").await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-echo-name"), None, "{reply:?}");
    assert_eq!(
        reply.header("access-control-allow-origin"),
        None,
        "{reply:?}"
    );
    assert_eq!(weft_e2e::echo_count(&echo).await.unwrap(), 0);
    // Allowed origins are still answered in full.
    let reply = preflight(&proxy, "https://app.example.org").await.unwrap();
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://app.example.org")
    );
}

#[tokio::test]
async fn cors_simple_request_from_an_allowed_origin_gets_allow_origin() {
    let echo = TestEcho::start("reviews-v1");
    let proxy = TestProxy::start(&reviews_mesh(&[(&echo, "v1")], CORS_VS), &[]);
    let mut client = proxy.client(Version::HTTP_11).await.unwrap();
    let reply = client
        .get(
            "reviews:9080",
            "/api/cart",
            &[("origin", "https://app.example.org")],
        )
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-echo-name"), Some("reviews-v1"));
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://app.example.org")
    );
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        reply.header("access-control-expose-headers"),
        Some("x-trace")
    );
    assert_eq!(
        reply.header("access-control-allow-methods"),
        None,
        "preflight-only header"
    );
    // No Origin, or one that does not match: the response is left alone.
    for headers in [&[][..], &[("origin", "https://evil.example.net")][..]] {
        let reply = client
            .get("reviews:9080", "/api/cart", headers)
            .await
            .unwrap();
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.header("access-control-allow-origin"),
            None,
            "{headers:?}"
        );
        assert_eq!(
            reply.header("access-control-expose-headers"),
            None,
            "{headers:?}"
        );
    }
    assert_eq!(weft_e2e::echo_count(&echo).await.unwrap(), 3);
}

// ---------------------------------------------------------------------------------------------
// Mirroring

const MIRROR_TO_V1: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v2}
      weight: 100
    mirror: {host: reviews, subset: v1}
    mirrorPercentage: {value: 100}
";

#[tokio::test]
async fn mirror_100_percent_to_v1_while_clients_only_see_v2() {
    let v1 = TestEcho::start("reviews-v1");
    let v2 = TestEcho::start("reviews-v2");
    let proxy = TestProxy::start(
        &reviews_mesh(&[(&v1, "v1"), (&v2, "v2")], MIRROR_TO_V1),
        &[],
    );
    let n = 25;
    let mut client = proxy.client(Version::HTTP_11).await.unwrap();
    for _ in 0..n {
        let reply = client.get("reviews:9080", "/reviews/1", &[]).await.unwrap();
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.header("x-echo-name"),
            Some("reviews-v2"),
            "clients only see v2"
        );
    }
    // Mirrors are fire-and-forget: they may land after the client has its answer.
    wait_until_async(DEADLINE, || async {
        weft_e2e::echo_count(&v1).await.is_ok_and(|c| c >= n)
    })
    .await
    .unwrap();
    assert_eq!(
        weft_e2e::echo_count(&v1).await.unwrap(),
        n,
        "each request mirrored exactly once"
    );
    assert_eq!(weft_e2e::echo_count(&v2).await.unwrap(), n);
    // Only the primary requests are logged.
    let log = proxy.wait_for_log_lines(n as usize).await.unwrap();
    assert!(
        log.iter()
            .all(|l| l["upstream_cluster"] == "outbound||v2|reviews.default.svc.cluster.local"),
        "{log:#?}"
    );
}

/// An HTTP/1.1 backend that answers 200 and records the `Host` and path of each request.
async fn start_recorder() -> anyhow::Result<(SocketAddr, Arc<Mutex<Vec<(String, String)>>>)> {
    let (listener, addr) = bind().await?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    accept_loop(listener, move |stream| {
        let record = record.clone();
        async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let host = req
                    .headers()
                    .get(HOST)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                push(&record, (host, req.uri().path().to_string()));
                async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"recorded"))))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
    });
    Ok((addr, seen))
}

#[tokio::test]
async fn mirrored_requests_carry_the_shadow_host() {
    let (recorder, seen) = start_recorder().await.unwrap();
    let v2 = TestEcho::start("reviews-v2");
    let mesh = service_mesh(
        &[(recorder.port(), "v1"), (v2.addr().port(), "v2")],
        "HTTP",
        MIRROR_TO_V1,
    );
    let proxy = TestProxy::start(&mesh, &[]);
    let reply = proxy.get("reviews:9080", "/mirror-probe").await.unwrap();
    assert_eq!(reply.header("x-echo-name"), Some("reviews-v2"));
    assert_eq!(
        reply.json().unwrap()["host"],
        "reviews:9080",
        "the primary keeps its host"
    );
    wait_until_async(DEADLINE, || async { !recorded(&seen).is_empty() })
        .await
        .unwrap();
    let seen = recorded(&seen);
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (host, path) = &seen[0];
    assert_eq!(path, "/mirror-probe");
    let name = host
        .rsplit_once(':')
        .map_or(host.as_str(), |(name, _)| name);
    assert_eq!(name, "reviews-shadow", "mirrored Host {host:?}");
}

// ---------------------------------------------------------------------------------------------
// gRPC over HTTP/2

/// What the gRPC backend saw: the protocol version, the path and the request body.
type GrpcSeen = Arc<Mutex<Vec<(Version, String, Bytes)>>>;

/// An HTTP/2-only backend that answers like a gRPC server: `application/grpc`, one message,
/// then the trailers `grpc-status: 0` and `grpc-message: ok`.
async fn start_grpc_backend() -> anyhow::Result<(SocketAddr, GrpcSeen)> {
    let (listener, addr) = bind().await?;
    let seen: GrpcSeen = Arc::default();
    let record = seen.clone();
    accept_loop(listener, move |stream| {
        let record = record.clone();
        async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let record = record.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|c| c.to_bytes())
                        .unwrap_or_default();
                    push(&record, (parts.version, parts.uri.path().to_string(), body));
                    let mut trailers = HeaderMap::new();
                    trailers.insert("grpc-status", HeaderValue::from_static("0"));
                    trailers.insert("grpc-message", HeaderValue::from_static("ok"));
                    let frames = Frames(VecDeque::from([
                        Frame::data(Bytes::from_static(b"\0\0\0\0\x05hello")),
                        Frame::trailers(trailers),
                    ]));
                    let mut response = Response::new(frames);
                    response
                        .headers_mut()
                        .insert("content-type", HeaderValue::from_static("application/grpc"));
                    Ok::<_, Infallible>(response)
                }
            });
            let builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
    });
    Ok((addr, seen))
}

#[tokio::test]
async fn grpc_trailers_pass_through_over_http2() {
    let (backend, seen) = start_grpc_backend().await.unwrap();
    // No VirtualService and no DestinationRule policy: the GRPC port alone makes the proxy speak
    // HTTP/2 upstream, as Istio does.
    let proxy = TestProxy::start(&service_mesh(&[(backend.port(), "v1")], "GRPC", ""), &[]);
    let stream = TcpStream::connect(proxy.outbound()).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = Request::builder()
        .method(Method::POST)
        .uri("http://reviews:9080/helloworld.Greeter/SayHello")
        .version(Version::HTTP_2)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(b"\0\0\0\0\x03abc")))
        .unwrap();
    let response = send.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/grpc");
    let collected = response.into_body().collect().await.unwrap();
    let trailers = collected
        .trailers()
        .cloned()
        .expect("trailers must reach the client");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["grpc-message"], "ok");
    assert_eq!(
        collected.to_bytes(),
        Bytes::from_static(b"\0\0\0\0\x05hello")
    );
    let seen = recorded(&seen);
    assert_eq!(
        seen,
        [(
            Version::HTTP_2,
            "/helloworld.Greeter/SayHello".to_string(),
            Bytes::from_static(b"\0\0\0\0\x03abc")
        )]
    );
    let log = proxy.wait_for_log_lines(1).await.unwrap();
    assert_eq!(log[0]["protocol"], "HTTP/2", "{log:#?}");
    assert_eq!(log[0]["response_code"], 200, "{log:#?}");
}

// ---------------------------------------------------------------------------------------------
// Streaming

#[tokio::test]
async fn large_chunked_request_body_arrives_whole() {
    const CHUNK: usize = 64 * 1024;
    const TOTAL: usize = 20 * 1024 * 1024;
    let echo = TestEcho::start("reviews-v1");
    let proxy = TestProxy::start(&reviews_mesh(&[(&echo, "v1")], ""), &[]);
    let stream = TcpStream::connect(proxy.outbound()).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let chunk = Bytes::from(vec![b'x'; CHUNK]);
    let frames = Frames(
        (0..TOTAL / CHUNK)
            .map(|_| Frame::data(chunk.clone()))
            .collect(),
    );
    assert_eq!(frames.size_hint().exact(), None, "sent chunked");
    let request = Request::post("/upload")
        .header(HOST, "reviews:9080")
        .body(frames)
        .unwrap();
    let response = send.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["body_bytes"], TOTAL as u64, "{json}");
    let log = proxy.wait_for_log_lines(1).await.unwrap();
    assert_eq!(log[0]["response_code"], 200, "{log:#?}");
}

#[tokio::test]
async fn large_response_streams_back_whole() {
    const SIZE: usize = 20_000_000;
    let echo = TestEcho::start("reviews-v1");
    let proxy = TestProxy::start(&reviews_mesh(&[(&echo, "v1")], ""), &[]);
    let reply = proxy
        .get("reviews:9080", &format!("/?size={SIZE}"))
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body.len(), SIZE);
    assert!(reply.body.iter().all(|b| *b == b'x'));
    let log = proxy.wait_for_log_lines(1).await.unwrap();
    assert_eq!(log[0]["bytes_sent"], SIZE as u64, "{log:#?}");
}

/// A raw HTTP/1.1 backend: `/die` gets headers promising 1000 bytes, 100 of them, and a closed
/// connection; any other path gets `ok` (and `connection: close`).
async fn start_dying_backend() -> anyhow::Result<SocketAddr> {
    let (listener, addr) = bind().await?;
    accept_loop(listener, |mut stream| async move {
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let head = String::from_utf8_lossy(&head);
        let path = head.split_whitespace().nth(1).unwrap_or("/");
        let reply = if path == "/die" {
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 1000\r\n\r\n{}",
                "x".repeat(100)
            )
        } else {
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok".to_string()
        };
        let _ = stream.write_all(reply.as_bytes()).await;
        let _ = stream.shutdown().await;
    });
    Ok(addr)
}

#[tokio::test]
async fn backend_dying_mid_response_fails_only_that_request() {
    let backend = start_dying_backend().await.unwrap();
    let proxy = TestProxy::start(&service_mesh(&[(backend.port(), "v1")], "HTTP", ""), &[]);
    let mut client = proxy.client(Version::HTTP_11).await.unwrap();
    match client.get("reviews:9080", "/die", &[]).await {
        Err(_) => {}
        Ok(reply) => assert!(
            reply.body.len() < 1000,
            "a truncated body must not look whole: {reply:?}"
        ),
    }
    for _ in 0..3 {
        let reply = proxy.get("reviews:9080", "/ok").await.unwrap();
        assert_eq!(
            (reply.status, reply.text().as_str()),
            (StatusCode::OK, "ok")
        );
    }
    wait_until_async(DEADLINE, || async {
        proxy
            .access_log()
            .iter()
            .filter(|l| l["path"] == "/ok" && l["response_code"] == 200)
            .count()
            == 3
    })
    .await
    .unwrap();
    // The broken response is logged as an upstream connection termination.
    let log = proxy.access_log();
    let died = log
        .iter()
        .find(|l| l["path"] == "/die")
        .unwrap_or_else(|| panic!("no /die line in {log:#?}"));
    assert_eq!(died["response_flags"], "UC", "{died:#}");
}

/// A request for the proxy's own outbound address is refused instead of being passed through
/// to the listener it came in on (which would loop until descriptors run out).
#[tokio::test]
async fn a_request_addressed_to_the_proxy_itself_does_not_loop() {
    let proxy = TestProxy::start("", &[]);
    let own = proxy.outbound().to_string();
    let reply = proxy.get(&own, "/loop").await.unwrap();
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    let localhost = format!("localhost:{}", proxy.outbound().port());
    let reply = proxy.get(&localhost, "/loop").await.unwrap();
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
}
