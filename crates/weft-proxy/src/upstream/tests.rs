//! Socket-level tests of `Upstreams::send`: real `weft_echo` backends (and tiny raw TCP
//! servers for broken upstreams) on 127.0.0.1:0. Nothing sleeps for a fixed time: tests wait
//! for a condition, polling under a deadline.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use weft_api::mesh::{
    Cluster, ClusterKey, ConnectionPool, ConsistentHashKey, Endpoint, EndpointAddress, LbPolicy,
};
use weft_echo::EchoConfig;

use super::*;
use crate::body::empty;

/// Bound for things that should happen promptly; only reached when something hangs.
const DEADLINE: Duration = Duration::from_secs(10);

/// An echo server; stops when dropped.
struct Backend {
    addr: SocketAddr,
    name: String,
    _stop: oneshot::Sender<()>,
}

async fn echo(name: &str, status: Option<StatusCode>) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let config = EchoConfig {
        name: name.to_string(),
        status,
        text: None,
    };
    tokio::spawn(weft_echo::serve(listener, config, async move {
        let _ = stopped.await;
    }));
    Backend {
        addr,
        name: name.to_string(),
        _stop: stop,
    }
}

async fn echoes(names: &[&str]) -> Vec<Backend> {
    let mut backends = Vec::new();
    for name in names {
        backends.push(echo(name, None).await);
    }
    backends
}

/// A port nothing listens on.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

fn key(name: &str) -> ClusterKey {
    ClusterKey {
        host: format!("{name}.test.svc.cluster.local"),
        subset: None,
        port: Some(80),
    }
}

fn endpoint_at(addr: SocketAddr, weight: u32) -> Endpoint {
    Endpoint {
        address: EndpointAddress::Ip(addr.ip()),
        ports: [(80, addr.port())].into(),
        labels: BTreeMap::new(),
        weight,
        identity: None,
    }
}

fn cluster_of(name: &str, endpoints: Vec<Endpoint>, lb: LbPolicy) -> Cluster {
    Cluster {
        key: key(name),
        endpoints,
        lb,
        pool: ConnectionPool::default(),
        outlier: None,
        undefined_subset: false,
        version: None,
        tls: None,
        subject_alt_names: Vec::new(),
    }
}

fn cluster(name: &str, backends: &[Backend], lb: LbPolicy) -> Cluster {
    let endpoints = backends.iter().map(|b| endpoint_at(b.addr, 1)).collect();
    cluster_of(name, endpoints, lb)
}

fn ctx() -> PickContext {
    PickContext {
        service_port: Some(80),
        ..PickContext::default()
    }
}

fn request(path: &str) -> Request<ProxyBody> {
    Request::builder()
        .uri(format!("http://reviews.test:80{path}"))
        .header(http::header::HOST, "reviews.test")
        .body(empty())
        .unwrap()
}

async fn send(
    up: &Upstreams,
    c: &Arc<Cluster>,
    path: &str,
    pick: &PickContext,
) -> Result<Sent, UpstreamError> {
    tokio::time::timeout(DEADLINE, up.send(c, request(path), pick))
        .await
        .expect("send hung")
}

/// Which echo answered (the body is read to the end).
async fn answered_by(sent: Sent) -> String {
    let name = sent.response.headers()["x-echo-name"]
        .to_str()
        .unwrap()
        .to_string();
    let _ = sent.response.into_body().collect().await.unwrap();
    name
}

async fn names(up: &Upstreams, c: &Arc<Cluster>, n: usize) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        let sent = send(up, c, "/", &ctx()).await.unwrap();
        *counts.entry(answered_by(sent).await).or_insert(0) += 1;
    }
    counts
}

/// Waits until `cond` holds, polling; panics after [`DEADLINE`].
async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `count` of `n` is within six standard deviations of share `p`.
fn assert_share(count: usize, n: usize, p: f64) {
    let (n, c) = (n as f64, count as f64);
    let tolerance = 6.0 * (n * p * (1.0 - p)).sqrt();
    assert!(
        (c - n * p).abs() <= tolerance,
        "{c} of {n}, expected {} ± {tolerance}",
        n * p
    );
}

#[tokio::test]
async fn round_robin_is_exact_over_real_backends() {
    let backends = echoes(&["a", "b", "c"]).await;
    let c = Arc::new(cluster("rr", &backends, LbPolicy::RoundRobin));
    let up = Upstreams::new();
    let counts = names(&up, &c, 30).await;
    assert_eq!(counts.values().copied().collect::<Vec<_>>(), [10, 10, 10]);
}

#[tokio::test]
async fn weighted_round_robin_follows_weights() {
    let backends = echoes(&["a", "b", "c"]).await;
    let endpoints = backends
        .iter()
        .zip([1, 2, 3])
        .map(|(b, w)| endpoint_at(b.addr, w))
        .collect();
    let c = Arc::new(cluster_of("wrr", endpoints, LbPolicy::RoundRobin));
    let counts = names(&Upstreams::new(), &c, 60).await;
    assert_eq!(counts["a"], 10);
    assert_eq!(counts["b"], 20);
    assert_eq!(counts["c"], 30);
}

#[tokio::test]
async fn random_and_least_request_spread_evenly_when_idle() {
    let backends = echoes(&["a", "b", "c"]).await;
    for lb in [LbPolicy::Random, LbPolicy::LeastRequest] {
        let c = Arc::new(cluster("spread", &backends, lb.clone()));
        let n = 300;
        let counts = names(&Upstreams::new(), &c, n).await;
        for b in &backends {
            assert_share(counts.get(&b.name).copied().unwrap_or(0), n, 1.0 / 3.0);
        }
    }
}

#[tokio::test]
async fn least_request_avoids_an_endpoint_with_requests_in_flight() {
    let backends = echoes(&["a", "b"]).await;
    let c = Arc::new(cluster("p2c", &backends, LbPolicy::LeastRequest));
    let up = Upstreams::new();
    // Hold one response from "a" (body unread): "a" has one active request.
    let only_a = PickContext {
        exclude: vec![backends[1].addr.to_string()],
        ..ctx()
    };
    let held = send(&up, &c, "/", &only_a).await.unwrap();
    assert_eq!(held.endpoint, backends[0].addr.to_string());
    // Two choices: "a" wins only when both draws are "a", a quarter of the time.
    let n = 400;
    let counts = names(&up, &c, n).await;
    assert_share(counts.get("a").copied().unwrap_or(0), n, 0.25);
    drop(held);
}

#[tokio::test]
async fn consistent_hash_keeps_a_key_on_one_endpoint() {
    let backends = echoes(&["a", "b", "c", "d"]).await;
    let lb = LbPolicy::ConsistentHash(ConsistentHashKey::Header("x-user".into()));
    let c = Arc::new(cluster("hash", &backends, lb));
    let up = Upstreams::new();
    let mut owners = std::collections::BTreeSet::new();
    for key in 0..40u64 {
        let pick = PickContext {
            hash: Some(key),
            ..ctx()
        };
        let first = answered_by(send(&up, &c, "/", &pick).await.unwrap()).await;
        for _ in 0..3 {
            assert_eq!(
                answered_by(send(&up, &c, "/", &pick).await.unwrap()).await,
                first
            );
        }
        owners.insert(first);
    }
    assert!(owners.len() >= 3, "40 keys landed on {owners:?}");
    // Retries keep the key's endpoint (Istio sets no retry_previous_hosts with a hash policy).
    let pick = PickContext {
        hash: Some(7),
        ..ctx()
    };
    let owner = send(&up, &c, "/", &pick).await.unwrap().endpoint;
    let retry = PickContext {
        exclude: vec![owner.clone()],
        ..pick
    };
    assert_eq!(send(&up, &c, "/", &retry).await.unwrap().endpoint, owner);
}

#[tokio::test]
async fn excluded_endpoints_are_skipped_while_others_remain() {
    let backends = echoes(&["a", "b"]).await;
    let c = Arc::new(cluster("exclude", &backends, LbPolicy::RoundRobin));
    let up = Upstreams::new();
    let a = backends[0].addr.to_string();
    let pick = PickContext {
        exclude: vec![a.clone()],
        ..ctx()
    };
    for _ in 0..6 {
        let sent = send(&up, &c, "/", &pick).await.unwrap();
        assert_eq!(sent.endpoint, backends[1].addr.to_string());
        assert_eq!(answered_by(sent).await, "b");
    }
    // Everything excluded: the request still goes somewhere.
    let all = PickContext {
        exclude: vec![a, backends[1].addr.to_string()],
        ..ctx()
    };
    assert!(send(&up, &c, "/", &all).await.is_ok());
}

#[tokio::test]
async fn no_endpoints_is_no_healthy_upstream() {
    let up = Upstreams::new();
    let empty = Arc::new(cluster_of("none", Vec::new(), LbPolicy::RoundRobin));
    let err = send(&up, &empty, "/", &ctx()).await.unwrap_err();
    assert!(matches!(err, UpstreamError::NoHealthyUpstream));
    assert_eq!((err.response_flag(), err.endpoint()), ("UH", None));
    // Endpoints that serve another port only.
    let backends = echoes(&["a"]).await;
    let c = Arc::new(cluster("otherport", &backends, LbPolicy::RoundRobin));
    let pick = PickContext {
        service_port: Some(443),
        ..ctx()
    };
    let err = send(&up, &c, "/", &pick).await.unwrap_err();
    assert_eq!(err.response_flag(), "UH");
}

#[tokio::test]
async fn a_closed_port_is_a_connect_failure() {
    let addr = closed_port().await;
    let c = Arc::new(cluster_of(
        "closed",
        vec![endpoint_at(addr, 1)],
        LbPolicy::RoundRobin,
    ));
    let up = Upstreams::new();
    let err = send(&up, &c, "/", &ctx()).await.unwrap_err();
    assert!(
        matches!(err, UpstreamError::ConnectFailure { .. }),
        "{err:?}"
    );
    assert_eq!(err.response_flag(), "UF");
    assert_eq!(err.endpoint(), Some(addr.to_string().as_str()));
    assert_eq!(up.active_requests(&c.key), 0);
}

/// A server that reads a request and closes the connection without answering.
async fn hang_up_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            drop(stream);
        }
    });
    addr
}

#[tokio::test]
async fn a_connection_closed_before_a_response_is_a_reset() {
    let addr = hang_up_server().await;
    let c = Arc::new(cluster_of(
        "reset",
        vec![endpoint_at(addr, 1)],
        LbPolicy::RoundRobin,
    ));
    let err = send(&Upstreams::new(), &c, "/", &ctx()).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Reset { .. }), "{err:?}");
    assert_eq!(err.response_flag(), "UC");
    assert_eq!(err.endpoint(), Some(addr.to_string().as_str()));
}

/// A server that promises 100 bytes, sends 5 and closes.
async fn truncating_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            let head = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhello";
            let _ = stream.write_all(head.as_bytes()).await;
            drop(stream);
        }
    });
    addr
}

#[tokio::test]
async fn a_body_error_ends_only_that_response_and_frees_its_slot() {
    let addr = truncating_server().await;
    let c = Arc::new(cluster_of(
        "truncated",
        vec![endpoint_at(addr, 1)],
        LbPolicy::RoundRobin,
    ));
    let up = Upstreams::new();
    for _ in 0..2 {
        let sent = send(&up, &c, "/", &ctx()).await.unwrap();
        let mut body = sent.response.into_body();
        let mut failed = false;
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "the truncated body must fail");
        assert_eq!(
            up.active_requests(&c.key),
            0,
            "released on error, body still alive"
        );
    }
}

#[tokio::test]
async fn overflow_past_the_pool_limits() {
    let backends = echoes(&["a"]).await;
    let mut c = cluster("limits", &backends, LbPolicy::RoundRobin);
    // HTTP/1.1: maxConnections 1 + http1MaxPendingRequests 1 = 2 requests in flight.
    c.pool.max_connections = 1;
    c.pool.max_pending_requests = 1;
    let c = Arc::new(c);
    let up = Arc::new(Upstreams::new());
    // One request waiting for a delayed answer, one answered but with its body unread.
    let delayed = {
        let (up, c) = (up.clone(), c.clone());
        tokio::spawn(async move {
            send(&up, &c, "/?delay=500ms", &ctx())
                .await
                .map(|s| s.endpoint)
        })
    };
    eventually("the delayed request to be admitted", || async {
        up.active_requests(&c.key) == 1
    })
    .await;
    let held = send(&up, &c, "/", &ctx()).await.unwrap();
    assert_eq!(up.active_requests(&c.key), 2);
    let err = send(&up, &c, "/", &ctx()).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Overflow));
    assert_eq!((err.response_flag(), err.endpoint()), ("UO", None));
    drop(held);
    assert_eq!(up.active_requests(&c.key), 1);
    let sent = send(&up, &c, "/", &ctx()).await.unwrap();
    assert_eq!(answered_by(sent).await, "a");
    assert!(delayed.await.unwrap().is_ok());
    assert_eq!(up.active_requests(&c.key), 0);
}

#[tokio::test]
async fn slots_are_held_until_the_body_ends_or_is_dropped() {
    let backends = echoes(&["a"]).await;
    let c = Arc::new(cluster("slots", &backends, LbPolicy::LeastRequest));
    let up = Upstreams::new();
    let sent = send(&up, &c, "/", &ctx()).await.unwrap();
    assert_eq!(
        up.active_requests(&c.key),
        1,
        "headers arrived, body not read"
    );
    drop(sent);
    assert_eq!(up.active_requests(&c.key), 0);

    let mut sent = send(&up, &c, "/", &ctx()).await.unwrap();
    while let Some(frame) = sent.response.body_mut().frame().await {
        frame.unwrap();
    }
    assert_eq!(
        up.active_requests(&c.key),
        0,
        "released at end of body, response still alive"
    );
    drop(sent);
    assert_eq!(up.active_requests(&c.key), 0);
}

#[tokio::test]
async fn retry_permits_follow_max_retries() {
    let mut c = cluster_of("retries", Vec::new(), LbPolicy::RoundRobin);
    c.pool.max_retries = 1;
    let c = Arc::new(c);
    let up = Upstreams::new();
    let permit = up.retry_permit(&c).unwrap();
    assert!(up.retry_permit(&c).is_none());
    drop(permit);
    assert!(up.retry_permit(&c).is_some());
}

#[tokio::test]
async fn http2_prior_knowledge_keeps_the_host() {
    let backends = echoes(&["a"]).await;
    let mut c = cluster("h2", &backends, LbPolicy::RoundRobin);
    c.pool.http2 = true;
    let c = Arc::new(c);
    let sent = send(&Upstreams::new(), &c, "/p?q=1", &ctx()).await.unwrap();
    let body = sent
        .response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["protocol"], "HTTP/2.0");
    assert_eq!(json["host"], "reviews.test");
    assert_eq!(json["path"], "/p?q=1");
}

#[tokio::test]
async fn dns_endpoints_are_resolved_when_connecting() {
    let backend = echo("dns", None).await;
    let endpoint = Endpoint {
        address: EndpointAddress::Dns("localhost".into()),
        ports: [(80, backend.addr.port())].into(),
        labels: BTreeMap::new(),
        weight: 1,
        identity: None,
    };
    let c = Arc::new(cluster_of("dns", vec![endpoint], LbPolicy::RoundRobin));
    let sent = send(&Upstreams::new(), &c, "/", &ctx()).await.unwrap();
    assert_eq!(sent.endpoint, format!("localhost:{}", backend.addr.port()));
    assert_eq!(answered_by(sent).await, "dns");
}

#[path = "tests_outlier.rs"]
mod outlier_tests;
