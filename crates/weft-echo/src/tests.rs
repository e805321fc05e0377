//! Socket-level tests: a real server on 127.0.0.1:0 and real HTTP/1.1 and h2c clients.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{CallConfig, EchoConfig, ProxyConfig, serve, serve_with_calls};

/// Generous bound for things that should happen at once; only hit when something hangs.
const DEADLINE: Duration = Duration::from_secs(10);

/// A server running in this test's runtime.
struct Echo {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

impl Echo {
    async fn start(config: EchoConfig) -> Self {
        Self::calling(config, CallConfig::default()).await
    }

    async fn calling(config: EchoConfig, calls: CallConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let stopped = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(serve_with_calls(listener, config, calls, stopped));
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn named(name: &str) -> Self {
        Self::start(config(name)).await
    }

    /// Resolves the shutdown future and waits (bounded) for `serve` to return.
    async fn stop_within(mut self, bound: Duration) -> io::Result<()> {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(bound, &mut self.task)
            .await
            .expect("serve did not return after shutdown")
            .unwrap()
    }

    async fn client(&self, version: Version) -> Client {
        Client::connect(self.addr, version).await
    }

    async fn get(&self, version: Version, path: &str) -> Reply {
        self.client(version).await.get(path).await
    }

    async fn stats(&self) -> u64 {
        let reply = self.get(Version::HTTP_11, "/__echo/stats").await;
        assert_eq!(reply.status, StatusCode::OK);
        reply.json()["count"].as_u64().unwrap()
    }
}

fn config(name: &str) -> EchoConfig {
    EchoConfig {
        name: name.to_string(),
        ..EchoConfig::default()
    }
}

/// One client connection: HTTP/1.1, or HTTP/2 with prior knowledge.
enum Client {
    H1(http1::SendRequest<Full<Bytes>>, SocketAddr),
    H2(http2::SendRequest<Full<Bytes>>, SocketAddr),
}

impl Client {
    async fn connect(addr: SocketAddr, version: Version) -> Self {
        let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
        if version == Version::HTTP_2 {
            let (send, conn) = http2::handshake(TokioExecutor::new(), io).await.unwrap();
            tokio::spawn(conn);
            Self::H2(send, addr)
        } else {
            let (send, conn) = http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            Self::H1(send, addr)
        }
    }

    fn request(&self, method: Method, path: &str) -> http::request::Builder {
        match self {
            Self::H1(_, addr) => Request::builder()
                .method(method)
                .uri(path)
                .header("host", addr.to_string()),
            Self::H2(_, addr) => Request::builder()
                .method(method)
                .uri(format!("http://{addr}{path}"))
                .version(Version::HTTP_2),
        }
    }

    async fn send(&mut self, req: Request<Full<Bytes>>) -> Reply {
        let response = match self {
            Self::H1(send, _) => send.send_request(req).await.unwrap(),
            Self::H2(send, _) => send.send_request(req).await.unwrap(),
        };
        let (parts, body) = response.into_parts();
        Reply {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    async fn call(&mut self, method: Method, path: &str) -> Reply {
        let req = self.request(method, path).body(Full::default()).unwrap();
        self.send(req).await
    }

    async fn get(&mut self, path: &str) -> Reply {
        self.call(Method::GET, path).await
    }
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        assert_eq!(self.header("content-type"), "application/json");
        serde_json::from_slice(&self.body).unwrap()
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {self:?}"))
            .to_str()
            .unwrap()
    }

    fn error(&self) -> String {
        assert_eq!(self.status, StatusCode::BAD_REQUEST, "{self:?}");
        self.json()["error"].as_str().unwrap().to_string()
    }
}

const BOTH: [Version; 2] = [Version::HTTP_11, Version::HTTP_2];

#[tokio::test]
async fn http1_reply_describes_the_request() {
    let echo = Echo::named("alpha").await;
    let mut client = echo.client(Version::HTTP_11).await;
    let req = client
        .request(Method::POST, "/some/path?a=1&b=two")
        .header("X-Multi", "one")
        .header("x-multi", "two")
        .header("X-Single", "v")
        .body(Full::new(Bytes::from_static(b"hello world")))
        .unwrap();
    let reply = client.send(req).await;

    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-echo-name"), "alpha");
    let body = reply.json();
    assert_eq!(body["name"], "alpha");
    assert_eq!(body["method"], "POST");
    assert_eq!(body["path"], "/some/path?a=1&b=two");
    assert_eq!(body["host"], echo.addr.to_string());
    assert_eq!(body["protocol"], "HTTP/1.1");
    assert_eq!(body["headers"]["x-multi"], "one, two");
    assert_eq!(body["headers"]["x-single"], "v");
    assert_eq!(body["headers"]["host"], echo.addr.to_string());
    assert_eq!(body["body_bytes"], 11);
    assert!(body.get("text").is_none(), "{body}");
}

#[tokio::test]
async fn http2_prior_knowledge_reply_reports_protocol_and_authority() {
    let echo = Echo::named("beta").await;
    let mut client = echo.client(Version::HTTP_2).await;
    let req = client
        .request(Method::PUT, "/h2?x=1")
        .header("x-multi", "one")
        .header("x-multi", "two")
        .body(Full::new(Bytes::from(vec![0u8; 100_000])))
        .unwrap();
    let reply = client.send(req).await;

    assert_eq!(reply.version, Version::HTTP_2);
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-echo-name"), "beta");
    let body = reply.json();
    assert_eq!(body["protocol"], "HTTP/2.0");
    assert_eq!(body["method"], "PUT");
    assert_eq!(body["path"], "/h2?x=1");
    assert_eq!(body["host"], echo.addr.to_string());
    assert_eq!(body["headers"]["x-multi"], "one, two");
    assert_eq!(body["body_bytes"], 100_000);
}

#[tokio::test]
async fn configured_text_is_added_to_the_body() {
    let echo = Echo::start(EchoConfig {
        text: Some("hello from gamma".into()),
        ..config("gamma")
    })
    .await;
    for version in BOTH {
        let body = echo.get(version, "/").await.json();
        assert_eq!(body["text"], "hello from gamma");
        assert_eq!(body["name"], "gamma");
    }
}

#[tokio::test]
async fn status_query_sets_the_status() {
    let echo = Echo::named("s").await;
    for version in BOTH {
        for code in [201u16, 418, 503, 599, 999] {
            let reply = echo.get(version, &format!("/x?status={code}")).await;
            assert_eq!(reply.status.as_u16(), code);
            assert_eq!(reply.header("x-echo-name"), "s");
            assert_eq!(reply.json()["path"], format!("/x?status={code}"));
        }
    }
}

#[tokio::test]
async fn invalid_status_is_a_json_400() {
    let echo = Echo::named("s").await;
    for version in BOTH {
        for bad in ["99", "100", "101", "199", "1000", "abc", "", "2%30%30x"] {
            let reply = echo.get(version, &format!("/?status={bad}")).await;
            assert!(reply.error().contains("invalid status"), "{reply:?}");
            assert_eq!(reply.header("x-echo-name"), "s");
        }
    }
}

#[tokio::test]
async fn configured_status_applies_unless_the_query_overrides_it() {
    let echo = Echo::start(EchoConfig {
        status: Some(StatusCode::SERVICE_UNAVAILABLE),
        ..config("down")
    })
    .await;
    for version in BOTH {
        let reply = echo.get(version, "/").await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.json()["name"], "down");
        assert_eq!(
            echo.get(version, "/?size=3").await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            echo.get(version, "/?status=200").await.status,
            StatusCode::OK
        );
    }
    // The server's own endpoints are not affected.
    assert_eq!(
        echo.get(Version::HTTP_11, "/__echo/stats").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn delay_query_waits_before_answering() {
    let echo = Echo::named("slow").await;
    for version in BOTH {
        let started = Instant::now();
        let reply = echo.get(version, "/?delay=200ms&status=202").await;
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(reply.status, StatusCode::ACCEPTED);
        assert_eq!(reply.json()["path"], "/?delay=200ms&status=202");
    }
}

#[tokio::test]
async fn invalid_delay_is_a_json_400() {
    let echo = Echo::named("slow").await;
    for version in BOTH {
        for bad in ["5", "1d", "-1s", "abc", ""] {
            let reply = echo.get(version, &format!("/?delay={bad}")).await;
            assert!(reply.error().contains("invalid delay"), "{reply:?}");
        }
    }
}

#[tokio::test]
async fn size_query_returns_exactly_that_many_filler_bytes() {
    let echo = Echo::named("big").await;
    for version in BOTH {
        for size in [0usize, 1, 100_000] {
            let reply = echo.get(version, &format!("/?size={size}")).await;
            assert_eq!(reply.status, StatusCode::OK);
            assert_eq!(reply.header("content-type"), "text/plain");
            assert_eq!(reply.header("content-length"), size.to_string());
            assert_eq!(reply.header("x-echo-name"), "big");
            assert_eq!(reply.body.len(), size);
            assert!(reply.body.iter().all(|&b| b == b'x'));
        }
        let reply = echo.get(version, "/?size=12&status=404").await;
        assert_eq!(
            (reply.status, reply.body.len()),
            (StatusCode::NOT_FOUND, 12)
        );
    }
}

#[tokio::test]
async fn invalid_size_is_a_json_400() {
    let echo = Echo::named("big").await;
    for version in BOTH {
        for bad in ["-1", "1k", "", "18446744073709551616"] {
            let reply = echo.get(version, &format!("/?size={bad}")).await;
            assert!(reply.error().contains("invalid size"), "{reply:?}");
        }
    }
}

#[tokio::test]
async fn stats_count_every_other_request() {
    let echo = Echo::named("counted").await;
    assert_eq!(echo.stats().await, 0);
    echo.get(Version::HTTP_11, "/a").await;
    echo.get(Version::HTTP_2, "/b?size=1").await;
    echo.get(Version::HTTP_11, "/c?status=nope").await;
    let mut client = echo.client(Version::HTTP_2).await;
    client.call(Method::HEAD, "/d").await;

    assert_eq!(echo.stats().await, 4);
    assert_eq!(echo.stats().await, 4, "stats requests are not counted");
    let h2_stats = echo.get(Version::HTTP_2, "/__echo/stats").await;
    assert_eq!(h2_stats.json()["count"], 4);
    assert_eq!(h2_stats.header("x-echo-name"), "counted");
}

#[tokio::test]
async fn echo_endpoints_ignore_controls() {
    let echo = Echo::named("admin").await;
    let started = Instant::now();
    let reply = echo
        .get(Version::HTTP_11, "/__echo/stats?status=500&delay=1h&size=5")
        .await;
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), serde_json::json!({ "count": 0 }));
}

#[tokio::test]
async fn unknown_echo_endpoints_are_a_json_404() {
    let echo = Echo::named("admin").await;
    for version in BOTH {
        for path in ["/__echo", "/__echo/", "/__echo/nope?status=200"] {
            let reply = echo.get(version, path).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
            assert!(reply.json()["error"].as_str().unwrap().contains("unknown"));
            assert_eq!(reply.header("x-echo-name"), "admin");
        }
    }
    let mut client = echo.client(Version::HTTP_11).await;
    let reply = client.call(Method::POST, "/__echo/stats").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.header("allow"), "GET, HEAD");
    assert_eq!(echo.stats().await, 0);
}

#[tokio::test]
async fn requests_are_counted_on_arrival_before_their_delay() {
    let echo = Echo::named("early").await;
    let mut client = echo.client(Version::HTTP_11).await;
    let slow = tokio::spawn(async move { client.get("/?delay=2s").await });
    let deadline = Instant::now() + DEADLINE;
    while echo.stats().await == 0 {
        assert!(
            Instant::now() < deadline,
            "the delayed request was never counted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!slow.is_finished(), "counted only after answering");
    assert_eq!(slow.await.unwrap().status, StatusCode::OK);
}

#[tokio::test]
async fn head_has_the_get_headers_and_no_body() {
    let echo = Echo::named("head").await;
    for version in BOTH {
        let mut client = echo.client(version).await;
        for path in ["/same", "/same?size=1234", "/same?status=404"] {
            let get = client.call(Method::GET, path).await;
            let head = client.call(Method::HEAD, path).await;
            assert_eq!(head.status, get.status, "{path}");
            assert!(head.body.is_empty(), "{head:?}");
            for name in ["content-type", "x-echo-name"] {
                assert_eq!(
                    head.header(name),
                    get.header(name),
                    "{version:?} {path} {name}"
                );
            }
            assert_eq!(get.header("content-length"), get.body.len().to_string());
            // The JSON names the method, and "HEAD" is one byte longer than "GET".
            let extra = usize::from(get.header("content-type") == "application/json");
            let head_len: usize = head.header("content-length").parse().unwrap();
            assert_eq!(head_len, get.body.len() + extra, "{version:?} {path}");
        }
    }
}

#[tokio::test]
async fn no_body_statuses_keep_the_connection_usable() {
    let echo = Echo::named("nobody").await;
    for version in BOTH {
        let mut client = echo.client(version).await;
        for code in [204u16, 304] {
            let reply = client.get(&format!("/?status={code}")).await;
            assert_eq!(reply.status.as_u16(), code);
            assert!(reply.body.is_empty());
            assert_eq!(reply.header("x-echo-name"), "nobody");
        }
        assert_eq!(client.get("/after").await.json()["path"], "/after");
    }
}

/// Reads one HTTP/1.1 response with a `content-length` body from a raw connection.
async fn read_raw_response(reader: &mut BufReader<TcpStream>) -> (String, Vec<String>, Vec<u8>) {
    let mut status_line = String::new();
    reader.read_line(&mut status_line).await.unwrap();
    let mut headers = Vec::new();
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        let line = line.trim_end().to_ascii_lowercase();
        if line.is_empty() {
            break;
        }
        if let Some(len) = line.strip_prefix("content-length: ") {
            content_length = len.parse().unwrap();
        }
        headers.push(line);
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body).await.unwrap();
    (status_line.trim_end().to_string(), headers, body)
}

#[tokio::test]
async fn http1_keep_alive_serves_several_requests_including_chunked_bodies() {
    let echo = Echo::named("raw").await;
    let mut conn = BufReader::new(TcpStream::connect(echo.addr).await.unwrap());
    let requests: [&[u8]; 3] = [
        b"GET /one HTTP/1.1\r\nHost: example.test\r\n\r\n",
        b"POST /two HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        b"GET /three?status=204 HTTP/1.1\r\nHost: example.test\r\n\r\n",
    ];
    for request in requests {
        conn.get_mut().write_all(request).await.unwrap();
    }
    let (status, headers, body) = read_raw_response(&mut conn).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        headers.contains(&"x-echo-name: raw".to_string()),
        "{headers:?}"
    );
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (&body["path"], &body["host"]),
        (&"/one".into(), &"example.test".into())
    );

    let (_, _, body) = read_raw_response(&mut conn).await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["body_bytes"], 11);
    assert_eq!(body["headers"]["transfer-encoding"], "chunked");

    let (status, _, body) = read_raw_response(&mut conn).await;
    assert_eq!(status, "HTTP/1.1 204 No Content");
    assert!(body.is_empty());
    assert_eq!(echo.stats().await, 3);
}

#[tokio::test]
async fn http1_0_requests_are_reported_as_such() {
    let echo = Echo::named("old").await;
    let mut conn = BufReader::new(TcpStream::connect(echo.addr).await.unwrap());
    conn.get_mut()
        .write_all(b"GET /legacy HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let (status, _, body) = read_raw_response(&mut conn).await;
    assert_eq!(status, "HTTP/1.0 200 OK");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (&body["protocol"], &body["host"]),
        (&"HTTP/1.0".into(), &"".into())
    );
}

#[tokio::test]
async fn non_utf8_header_values_are_reported_lossily() {
    let echo = Echo::named("bytes").await;
    let mut conn = BufReader::new(TcpStream::connect(echo.addr).await.unwrap());
    conn.get_mut()
        .write_all(b"GET /bin HTTP/1.1\r\nHost: h\r\nX-Bin: a\xff\xfeb\r\n\r\n")
        .await
        .unwrap();
    let (status, _, body) = read_raw_response(&mut conn).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["headers"]["x-bin"], "a\u{fffd}\u{fffd}b");
}

#[tokio::test]
async fn malformed_input_never_stops_the_server() {
    let echo = Echo::named("tough").await;
    let inputs: [&[u8]; 7] = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\xff\xff\xff\xff\xff\xff",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        &[0xff; 4096],
    ];
    for input in inputs {
        let mut conn = TcpStream::connect(echo.addr).await.unwrap();
        // The peer may already have closed; only the server's survival matters.
        let _ = conn.write_all(input).await;
        let _ = conn.shutdown().await;
        let mut rest = Vec::new();
        let read = tokio::time::timeout(DEADLINE, conn.read_to_end(&mut rest)).await;
        assert!(
            read.is_ok(),
            "server kept a malformed connection open: {input:?}"
        );
    }
    for version in BOTH {
        assert_eq!(echo.get(version, "/still-up").await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn serve_returns_after_shutdown_and_stops_accepting() {
    let echo = Echo::named("bye").await;
    assert_eq!(echo.get(Version::HTTP_11, "/").await.status, StatusCode::OK);
    let addr = echo.addr;
    echo.stop_within(DEADLINE).await.unwrap();
    let refused = TcpStream::connect(addr).await;
    assert!(refused.is_err(), "still accepting after shutdown");
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let echo = Echo::named("graceful").await;
    let mut clients = Vec::new();
    for version in BOTH {
        let mut client = echo.client(version).await;
        clients.push(tokio::spawn(
            async move { client.get("/?delay=300ms").await },
        ));
    }
    let deadline = Instant::now() + DEADLINE;
    while echo.stats().await < 2 {
        assert!(Instant::now() < deadline, "requests never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    echo.stop_within(DEADLINE).await.unwrap();
    for client in clients {
        let reply = client.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json()["name"], "graceful");
    }
}

#[tokio::test]
async fn idle_keep_alive_connections_do_not_hold_up_shutdown() {
    let echo = Echo::named("idle").await;
    let mut h1 = echo.client(Version::HTTP_11).await;
    let mut h2 = echo.client(Version::HTTP_2).await;
    h1.get("/").await;
    h2.get("/").await;
    // Well under the 5 s grace period: idle connections are closed, not waited out.
    echo.stop_within(Duration::from_secs(3)).await.unwrap();
}

#[tokio::test]
async fn an_unusable_config_is_rejected_before_serving() {
    let informational = EchoConfig {
        status: Some(StatusCode::SWITCHING_PROTOCOLS),
        ..config("x")
    };
    for config in [config("bad\nname"), informational] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let err = serve(listener, config, std::future::pending())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
    for url in ["https://reviews/", "/reviews"] {
        let calls = CallConfig {
            urls: vec![url.parse().unwrap()],
            ..CallConfig::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let err = serve_with_calls(listener, config("x"), calls, std::future::pending())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{url}");
    }
}

// ---------------------------------------------------------------------------------------------
// --call

fn calls(urls: &[String], proxy: ProxyConfig) -> CallConfig {
    CallConfig {
        urls: urls.iter().map(|u| u.parse().unwrap()).collect(),
        proxy,
        timeout: Some(Duration::from_secs(3)),
    }
}

#[tokio::test]
async fn calls_are_reported_in_order_with_forwarded_headers() {
    let reviews = Echo::named("reviews").await;
    let ratings = Echo::named("ratings").await;
    let urls = [
        format!("http://{}/reviews/1", reviews.addr),
        format!("http://{}/ratings?size=5", ratings.addr),
    ];
    let page = Echo::calling(config("productpage"), calls(&urls, ProxyConfig::default())).await;
    let mut client = page.client(Version::HTTP_11).await;
    let req = client
        .request(Method::GET, "/productpage")
        .header("end-user", "jason")
        .header("x-b3-traceid", "abc")
        .header("x-private", "not forwarded")
        .body(Full::default())
        .unwrap();
    let reply = client.send(req).await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["name"], "productpage");
    let calls = body["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2, "{body}");
    assert_eq!(calls[0]["url"], urls[0]);
    assert_eq!(calls[0]["status"], 200);
    assert_eq!(calls[0]["body"]["name"], "reviews");
    assert_eq!(calls[0]["body"]["path"], "/reviews/1");
    assert_eq!(calls[0]["body"]["host"], reviews.addr.to_string());
    assert_eq!(calls[0]["body"]["headers"]["end-user"], "jason");
    assert_eq!(calls[0]["body"]["headers"]["x-b3-traceid"], "abc");
    assert!(calls[0]["body"]["headers"].get("x-private").is_none());
    assert!(calls[0].get("error").is_none());
    // A text answer is reported as text.
    assert_eq!(calls[1]["status"], 200);
    assert_eq!(calls[1]["body"], "xxxxx");
}

#[tokio::test]
async fn calls_go_to_the_proxy_in_absolute_form_unless_no_proxy_exempts_the_host() {
    let proxy = Echo::named("the-proxy").await;
    let direct = Echo::named("direct").await;
    let proxy_config = ProxyConfig::from_env_values(
        Some(&format!("http://{}", proxy.addr)),
        Some("localhost,127.0.0.1"),
    )
    .unwrap();
    let urls = [
        "http://reviews:9080/reviews?x=1".to_string(),
        format!("http://{}/direct", direct.addr),
    ];
    let page = Echo::calling(config("productpage"), calls(&urls, proxy_config)).await;
    let body = page.get(Version::HTTP_11, "/").await.json();
    let calls = body["calls"].as_array().unwrap();
    // The proxy saw the service's name in the Host header and the path of the URL.
    assert_eq!(calls[0]["status"], 200, "{body}");
    assert_eq!(calls[0]["body"]["name"], "the-proxy");
    assert_eq!(calls[0]["body"]["host"], "reviews:9080");
    assert_eq!(calls[0]["body"]["path"], "/reviews?x=1");
    // 127.0.0.1 is in NO_PROXY: straight to the server.
    assert_eq!(calls[1]["body"]["name"], "direct");
    assert_eq!(proxy.stats().await, 1);
}

#[tokio::test]
async fn failed_calls_are_reported_without_failing_the_request() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let failing = Echo::start(EchoConfig {
        status: Some(StatusCode::SERVICE_UNAVAILABLE),
        ..config("failing")
    })
    .await;
    // Accepts and never answers: the call times out.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let urls = [
        format!("http://{closed_addr}/"),
        format!("http://{}/", failing.addr),
        format!("http://{}/", silent.local_addr().unwrap()),
    ];
    let mut call_config = calls(&urls, ProxyConfig::default());
    call_config.timeout = Some(Duration::from_millis(300));
    let page = Echo::calling(config("productpage"), call_config).await;
    let started = Instant::now();
    let reply = page.get(Version::HTTP_11, "/").await;
    assert!(started.elapsed() < DEADLINE);
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    let calls = body["calls"].as_array().unwrap();
    assert_eq!(calls[0]["status"], 0, "{body}");
    assert!(calls[0]["body"].is_null());
    assert!(
        calls[0]["error"].as_str().unwrap().contains("connecting"),
        "{body}"
    );
    assert_eq!(calls[1]["status"], 503);
    assert_eq!(calls[1]["body"]["name"], "failing");
    assert_eq!(calls[2]["status"], 0);
    assert!(
        calls[2]["error"].as_str().unwrap().contains("no answer"),
        "{body}"
    );
    drop(silent);
}

#[tokio::test]
async fn replies_without_calls_have_no_calls_field() {
    let echo = Echo::named("plain").await;
    let body = echo.get(Version::HTTP_11, "/").await.json();
    assert!(body.get("calls").is_none(), "{body}");
}
