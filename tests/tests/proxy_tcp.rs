//! End-to-end tests of opaque TCP through `weft proxy`: clients send `CONNECT host:port` to the
//! outbound listener (as HTTP_PROXY clients do for `https://`), get `200`, then bytes flow to
//! the upstream the host's `tcp`/`tls` routes choose. Backends are plain TCP servers started
//! in the test on port 0; every wait is a read with a deadline, never a sleep.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test that called them"
)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use weft_e2e::TestProxy;

/// How long any single network step may take.
const STEP: Duration = Duration::from_secs(10);

/// `openssl s_client -servername API.Example.com`: a real ClientHello whose SNI is
/// `api.example.com`.
const CLIENT_HELLO: &[u8] =
    include_bytes!("../../crates/weft-proxy/testdata/client_hello_openssl.bin");

/// A TCP server that echoes every byte back until the client closes its side.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// A TCP server that greets each connection with `name\n`, then reads until the client closes.
async fn name_server(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = stream.write_all(format!("{name}\n").as_bytes()).await;
                let _ = tokio::io::copy(&mut stream, &mut tokio::io::sink()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

/// Sends `CONNECT authority` and reads the response head (and nothing past it). Returns the
/// status code and the connection, which is the tunnel when the status is 200.
async fn connect(
    proxy: &TestProxy,
    authority: &str,
) -> anyhow::Result<(u16, BufReader<TcpStream>)> {
    let mut stream = TcpStream::connect(proxy.outbound()).await?;
    let head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    let mut reader = BufReader::with_capacity(1, stream);
    let mut status_line = String::new();
    tokio::time::timeout(STEP, reader.read_line(&mut status_line)).await??;
    let code = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    loop {
        let mut line = String::new();
        if tokio::time::timeout(STEP, reader.read_line(&mut line)).await?? == 0 {
            bail!("connection closed inside the response head");
        }
        if line == "\r\n" {
            break;
        }
    }
    Ok((code, reader))
}

/// Opens a tunnel, sends `first`, and returns the greeting line of the server it reached.
async fn greeting(proxy: &TestProxy, authority: &str, first: &[u8]) -> anyhow::Result<String> {
    let (code, mut tunnel) = connect(proxy, authority).await?;
    anyhow::ensure!(code == 200, "CONNECT {authority} answered {code}");
    tunnel.get_mut().write_all(first).await?;
    let mut name = String::new();
    tokio::time::timeout(STEP, tunnel.read_line(&mut name)).await??;
    tunnel.get_mut().shutdown().await?;
    let mut rest = Vec::new();
    tokio::time::timeout(STEP, tunnel.read_to_end(&mut rest)).await??;
    Ok(name.trim_end().to_string())
}

/// Waits for `n` access-log lines of CONNECT requests.
async fn connect_log(proxy: &TestProxy, n: usize) -> Vec<Value> {
    let connects = || -> Vec<Value> {
        proxy
            .access_log()
            .into_iter()
            .filter(|e| e["method"] == "CONNECT")
            .collect()
    };
    weft_e2e::wait_until_async(STEP, || async { connects().len() >= n })
        .await
        .unwrap_or_else(|err| panic!("{err}; CONNECT lines: {:#?}", connects()));
    connects()
}

/// A ServiceEntry for a TCP service `host` on `port` with one STATIC endpoint per backend,
/// labelled `version: <name>`.
fn tcp_service(name: &str, host: &str, port: u16, backends: &[(&str, SocketAddr)]) -> String {
    let endpoints: String = backends
        .iter()
        .map(|(version, addr)| {
            format!(
                "  - {{address: 127.0.0.1, ports: {{tcp: {}}}, labels: {{version: {version}}}}}\n",
                addr.port()
            )
        })
        .collect();
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}}}
spec:
  hosts: [{host}]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: {port}, name: tcp, protocol: TCP}}]
  endpoints:
{endpoints}---
"
    )
}

const DB_ROUTE: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db}
spec:
  hosts: [db.example.com]
  tcp:
  - match: [{port: 5432}]
    route:
    - destination: {host: db.example.com, port: {number: 5432}}
";

#[tokio::test]
async fn connect_tunnel_round_trips_bytes_over_a_tcp_route() {
    let echo = echo_server().await;
    let config = format!(
        "{}{DB_ROUTE}",
        tcp_service("db", "db.example.com", 5432, &[("v1", echo)])
    );
    let proxy = TestProxy::start(&config, &[]);
    let (code, mut tunnel) = connect(&proxy, "db.example.com:5432").await.unwrap();
    assert_eq!(code, 200);
    let payload = b"\x00\x00\x00\x08\x04\xd2\x16\x2f binary and text";
    tunnel.get_mut().write_all(payload).await.unwrap();
    tunnel.get_mut().shutdown().await.unwrap();
    let mut back = Vec::new();
    tokio::time::timeout(STEP, tunnel.read_to_end(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, payload);

    let log = connect_log(&proxy, 1).await;
    let e = &log[0];
    assert_eq!(e["authority"], "db.example.com:5432");
    assert_eq!(e["response_code"], 200);
    assert_eq!(e["response_flags"], "-");
    assert_eq!(e["upstream_cluster"], "outbound|5432||db.example.com");
    assert_eq!(e["upstream_host"], format!("127.0.0.1:{}", echo.port()));
    assert_eq!(e["route_name"], "db.tcp.0");
    let n = payload.len() as u64;
    assert_eq!(
        (e["bytes_received"].as_u64(), e["bytes_sent"].as_u64()),
        (Some(n), Some(n))
    );
    assert!(e["path"].is_null(), "{e}");
}

#[tokio::test]
async fn weighted_tcp_split_follows_the_weights() {
    let v1 = name_server("v1").await;
    let v2 = name_server("v2").await;
    let config = format!(
        "{}apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: db}}
spec:
  host: db.example.com
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: db}}
spec:
  hosts: [db.example.com]
  tcp:
  - route:
    - {{destination: {{host: db.example.com, subset: v1}}, weight: 80}}
    - {{destination: {{host: db.example.com, subset: v2}}, weight: 20}}
",
        tcp_service("db", "db.example.com", 5432, &[("v1", v1), ("v2", v2)])
    );
    let proxy = TestProxy::start(&config, &[]);
    let n = 200;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..n {
        let name = greeting(&proxy, "db.example.com:5432", b"").await.unwrap();
        *seen.entry(name).or_default() += 1;
    }
    assert_eq!(seen.values().sum::<usize>(), n, "{seen:?}");
    let v1_count = seen.get("v1").copied().unwrap_or(0);
    // |observed - expected| within 5 standard deviations of binomial(n, 0.8).
    let sigma = (n as f64 * 0.8 * 0.2).sqrt();
    assert!(
        (v1_count as f64 - n as f64 * 0.8).abs() <= 5.0 * sigma,
        "v1 got {v1_count} of {n}: {seen:?}"
    );
    let log = connect_log(&proxy, n).await;
    let clusters: std::collections::BTreeSet<&str> = log
        .iter()
        .filter_map(|e| e["upstream_cluster"].as_str())
        .collect();
    assert_eq!(
        clusters,
        [
            "outbound|5432|v1|db.example.com",
            "outbound|5432|v2|db.example.com"
        ]
        .into()
    );
}

#[tokio::test]
async fn allow_any_connects_unknown_hosts_directly() {
    let echo = echo_server().await;
    let proxy = TestProxy::start(
        &tcp_service("db", "db.example.com", 5432, &[("v1", echo)]),
        &[],
    );
    let authority = format!("127.0.0.1:{}", echo.port());
    let (code, mut tunnel) = connect(&proxy, &authority).await.unwrap();
    assert_eq!(code, 200);
    tunnel.get_mut().write_all(b"direct").await.unwrap();
    tunnel.get_mut().shutdown().await.unwrap();
    let mut back = Vec::new();
    tokio::time::timeout(STEP, tunnel.read_to_end(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, b"direct");
    let e = &connect_log(&proxy, 1).await[0];
    assert_eq!(
        e["upstream_cluster"],
        format!("outbound|{}||PassthroughCluster", echo.port())
    );
    assert_eq!(e["upstream_host"], authority);
}

#[tokio::test]
async fn registry_only_refuses_unknown_hosts_and_serves_known_services() {
    let echo = echo_server().await;
    let unknown = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let unknown_addr = unknown.local_addr().unwrap();
    let proxy = TestProxy::start(
        &tcp_service("db", "db.example.com", 5432, &[("v1", echo)]),
        &["--outbound-policy", "REGISTRY_ONLY"],
    );
    let (code, _) = connect(&proxy, &unknown_addr.to_string()).await.unwrap();
    assert_eq!(code, 502);
    // A service without a VirtualService: its default cluster.
    let (code, mut tunnel) = connect(&proxy, "db.example.com:5432").await.unwrap();
    assert_eq!(code, 200);
    tunnel.get_mut().write_all(b"known").await.unwrap();
    tunnel.get_mut().shutdown().await.unwrap();
    let mut back = Vec::new();
    tokio::time::timeout(STEP, tunnel.read_to_end(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, b"known");

    let log = connect_log(&proxy, 2).await;
    let refused = log
        .iter()
        .find(|e| e["response_code"] == 502)
        .expect("a 502 line");
    assert_eq!(refused["upstream_cluster"], "outbound|||BlackHoleCluster");
    assert_eq!(refused["authority"], unknown_addr.to_string());
    let served = log
        .iter()
        .find(|e| e["response_code"] == 200)
        .expect("a 200 line");
    assert_eq!(served["upstream_cluster"], "outbound|5432||db.example.com");
    assert!(served["route_name"].is_null(), "{served}");
    // The blackholed backend was never dialed.
    let accepted = tokio::time::timeout(Duration::ZERO, unknown.accept()).await;
    assert!(accepted.is_err(), "the proxy connected to an unknown host");
}

#[tokio::test]
async fn connect_failure_is_503_uf() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let config = format!(
        "{}{DB_ROUTE}",
        tcp_service("db", "db.example.com", 5432, &[("v1", addr)])
    );
    let proxy = TestProxy::start(&config, &[]);
    let (code, _) = connect(&proxy, "db.example.com:5432").await.unwrap();
    assert_eq!(code, 503);
    let e = &connect_log(&proxy, 1).await[0];
    assert_eq!(e["response_code"], 503);
    assert_eq!(e["response_flags"], "UF");
    assert_eq!(e["upstream_host"], addr.to_string());
}

#[tokio::test]
async fn tls_routes_pick_by_sni_and_fall_back_to_tcp_routes() {
    let tls_backend = name_server("tls-backend").await;
    let tcp_backend = name_server("tcp-backend").await;
    let config = format!(
        "{}{}apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: api}}
spec:
  hosts: [api.example.com]
  tls:
  - match: [{{sniHosts: [api.example.com], port: 443}}]
    route: [{{destination: {{host: api-tls.internal}}}}]
  tcp:
  - route: [{{destination: {{host: api.example.com}}}}]
",
        tcp_service("api", "api.example.com", 443, &[("v1", tcp_backend)]),
        tcp_service("api-tls", "api-tls.internal", 443, &[("v1", tls_backend)]),
    );
    let proxy = TestProxy::start(&config, &[]);
    let by_sni = greeting(&proxy, "api.example.com:443", CLIENT_HELLO)
        .await
        .unwrap();
    assert_eq!(by_sni, "tls-backend");
    let not_tls = greeting(&proxy, "api.example.com:443", b"PING\r\n")
        .await
        .unwrap();
    assert_eq!(not_tls, "tcp-backend");

    let log = connect_log(&proxy, 2).await;
    let tls = log
        .iter()
        .find(|e| e["route_name"] == "api.tls.0")
        .expect("a tls line");
    assert_eq!(tls["requested_server_name"], "api.example.com");
    assert_eq!(tls["upstream_cluster"], "outbound|443||api-tls.internal");
    assert_eq!(
        tls["bytes_received"].as_u64(),
        Some(CLIENT_HELLO.len() as u64)
    );
    let tcp = log
        .iter()
        .find(|e| e["route_name"] == "api.tcp.0")
        .expect("a tcp line");
    assert!(tcp["requested_server_name"].is_null(), "{tcp}");
    assert_eq!(tcp["upstream_cluster"], "outbound|443||api.example.com");
}
