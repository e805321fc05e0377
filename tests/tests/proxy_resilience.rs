//! End-to-end resilience tests of `weft proxy`: DestinationRule connection pools (circuit
//! breaking), outlier detection, load balancing, VirtualService retries and timeouts, HTTP/2
//! upstreams and request metrics. Every test runs real `weft echo` backends and a real proxy
//! process; waits poll with deadlines, and distributions are checked with tolerances derived
//! from the sample size.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use http::{StatusCode, Version};
use tokio::task::JoinSet;
use weft_e2e::http::Reply;
use weft_e2e::{ProxyClient, TestEcho, TestProxy, wait_until_async};

/// The mesh host every test sends to (`reviews.default.svc.cluster.local:9080`).
const HOST: &str = "reviews";

/// A ServiceEntry for `NAME.default.svc.cluster.local:9080` with one STATIC endpoint per port.
fn service_entry(name: &str, ports: &[u16]) -> String {
    let endpoints: String = ports
        .iter()
        .map(|port| format!("  - {{address: 127.0.0.1, ports: {{http: {port}}}}}\n"))
        .collect();
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}}}
spec:
  hosts: [{name}.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9080, name: http, protocol: HTTP}}]
  endpoints:
{endpoints}"
    )
}

/// The `reviews` ServiceEntry over `backends`, followed by the other documents.
fn mesh(backends: &[&TestEcho], docs: &[&str]) -> String {
    let ports: Vec<u16> = backends.iter().map(|echo| echo.addr().port()).collect();
    mesh_on_ports(&ports, docs)
}

fn mesh_on_ports(ports: &[u16], docs: &[&str]) -> String {
    let mut yaml = service_entry(HOST, ports);
    for doc in docs {
        yaml.push_str("---\n");
        yaml.push_str(doc);
    }
    yaml
}

/// A DestinationRule for `reviews` with only a load balancer (flow-style YAML).
fn lb_rule(load_balancer: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews}}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {load_balancer}
"
    )
}

/// A VirtualService sending all of `reviews` to itself, with `retries` (flow-style YAML) when
/// given and without the field otherwise.
fn retry_route(retries: Option<&str>) -> String {
    let retries = retries.map_or(String::new(), |r| format!("    retries: {r}\n"));
    format!(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews}}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {{host: reviews}}
{retries}"
    )
}

/// The backend that answered (`x-echo-name`), or `-` for a proxy-generated reply.
fn answered_by(reply: &Reply) -> String {
    reply.header("x-echo-name").unwrap_or("-").to_string()
}

/// Sends `n` sequential requests on one connection; returns who answered each, in order.
async fn sequence(
    proxy: &TestProxy,
    n: usize,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<Vec<String>> {
    let mut client = proxy.client(Version::HTTP_11).await?;
    let mut seen = Vec::with_capacity(n);
    for _ in 0..n {
        let reply = client.get(HOST, path, headers).await?;
        anyhow::ensure!(reply.status == StatusCode::OK, "{reply:?}");
        seen.push(answered_by(&reply));
    }
    Ok(seen)
}

fn counts(seen: &[String]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for name in seen {
        *counts.entry(name.as_str()).or_insert(0) += 1;
    }
    counts
}

/// `observed` successes of `n` trials with probability `p` each: within 5 standard deviations
/// of the binomial mean (a false failure about once in 1.7 million checks).
fn assert_binomial(what: &str, observed: usize, n: usize, p: f64) {
    let expected = n as f64 * p;
    let tolerance = 5.0 * (n as f64 * p * (1.0 - p)).sqrt();
    assert!(
        (observed as f64 - expected).abs() <= tolerance,
        "{what}: observed {observed} of {n}, expected {expected:.1} ± {tolerance:.1}"
    );
}

/// Three backends `reviews-a`, `reviews-b`, `reviews-c`.
fn three_backends() -> [TestEcho; 3] {
    ["reviews-a", "reviews-b", "reviews-c"].map(TestEcho::start)
}

// ---------------------------------------------------------------------------------------------
// 1. Circuit breaking (connectionPool)
// ---------------------------------------------------------------------------------------------

/// Istio's circuit-breaking task DestinationRule, for `reviews`.
const CIRCUIT_BREAKER_TASK_RULE: &str = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: 1
      http:
        http1MaxPendingRequests: 1
        maxRequestsPerConnection: 1
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 3m
      maxEjectionPercent: 100
";

/// Only the two limits.
const CIRCUIT_BREAKER_LIMITS_RULE: &str = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: 1
      http:
        http1MaxPendingRequests: 1
";

/// Requests fired at once at a backend that takes this long to answer.
const BURST: usize = 10;
const SLOW_PATH: &str = "/?delay=500ms";
const SLOW: Duration = Duration::from_millis(500);

/// Sends one slow request on each of `clients` at once; returns the replies and how long the
/// whole burst took.
async fn burst(
    clients: Vec<ProxyClient>,
    path: &'static str,
) -> anyhow::Result<(Vec<Reply>, Duration)> {
    let started = Instant::now();
    let mut set = JoinSet::new();
    for mut client in clients {
        set.spawn(async move { client.get(HOST, path, &[]).await });
    }
    let mut replies = Vec::new();
    while let Some(joined) = set.join_next().await {
        replies.push(joined??);
    }
    Ok((replies, started.elapsed()))
}

async fn connect_all(proxy: &TestProxy, n: usize) -> anyhow::Result<Vec<ProxyClient>> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(proxy.client(Version::HTTP_11).await?);
    }
    Ok(clients)
}

/// `maxConnections: 1` + `http1MaxPendingRequests: 1`: a burst of slow requests gets some
/// through and the rest 503 `UO` with `x-envoy-overloaded`; the limits are released after.
async fn circuit_breaker_trips_and_recovers(rule: &str) -> anyhow::Result<()> {
    let backend = TestEcho::start("reviews-v1");
    let proxy = TestProxy::start(&mesh(&[&backend], &[rule]), &[]);
    let clients = connect_all(&proxy, BURST).await?;
    let (replies, took) = burst(clients, SLOW_PATH).await?;

    let ok = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    let overflowed: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert_eq!(
        ok + overflowed.len(),
        BURST,
        "only 200 or 503 expected: {replies:#?}"
    );
    assert!(ok >= 1, "no request got through: {replies:#?}");
    assert!(
        !overflowed.is_empty(),
        "the circuit breaker never opened: {replies:#?}"
    );
    for reply in &overflowed {
        assert_eq!(
            reply.header("x-envoy-overloaded"),
            Some("true"),
            "{reply:?}"
        );
        assert!(
            reply.header("x-echo-name").is_none(),
            "an overflow never reaches the backend"
        );
        assert!(reply.text().contains("overflow"), "{}", reply.text());
    }
    // Admitted requests hold their slot for the backend's whole delay. When the burst ended
    // within two delays, every admitted request was admitted before the first one finished, so
    // they all overlapped: no more than the limit (1 connection + 1 pending) can have passed.
    if took < 2 * SLOW {
        assert!(
            ok <= 2,
            "{ok} requests passed a limit of 2 (burst took {took:?})"
        );
    }
    assert_eq!(
        weft_e2e::echo_count(&backend).await?,
        ok as u64,
        "overflowed requests must not reach the backend"
    );

    let log = proxy.wait_for_log_lines(BURST).await?;
    let uo = log.iter().filter(|l| l["response_flags"] == "UO").count();
    assert_eq!(uo, overflowed.len(), "{log:#?}");
    for line in &log {
        let expected_flags = match line["response_code"].as_u64() {
            Some(200) => "-",
            _ => "UO",
        };
        assert_eq!(line["response_flags"], expected_flags, "{line}");
    }

    // Every slot was given back: up to the limit of concurrent requests pass again.
    let (again, _) = burst(connect_all(&proxy, 2).await?, "/?delay=50ms").await?;
    for reply in &again {
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "limits not released: {reply:?}"
        );
    }
    assert_eq!(proxy.get(HOST, "/").await?.status, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn circuit_breaker_task_rule_overflows_with_uo() -> anyhow::Result<()> {
    circuit_breaker_trips_and_recovers(CIRCUIT_BREAKER_TASK_RULE).await
}

#[tokio::test]
async fn circuit_breaker_connections_and_pending_limits_overflow_with_uo() -> anyhow::Result<()> {
    circuit_breaker_trips_and_recovers(CIRCUIT_BREAKER_LIMITS_RULE).await
}

/// Istio cannot tell an explicit 0 from an unset field, so a 0 limit means Envoy's default
/// (2^32-1): `if settings.Http.Http2MaxRequests > 0 { threshold.MaxRequests = ... }` in
/// istio/istio `pilot/pkg/networking/core/cluster_traffic_policy.go` (`applyConnectionPool`),
/// and likewise for `http1MaxPendingRequests`, `maxRetries` and `tcp.maxConnections`.
#[tokio::test]
async fn zero_connection_pool_limits_mean_istio_defaults() -> anyhow::Result<()> {
    let backend = TestEcho::start("reviews-v1");
    let rule = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 0}
      http: {http1MaxPendingRequests: 0, http2MaxRequests: 0, maxRetries: 0}
";
    let route = retry_route(Some("{attempts: 2, retryOn: gateway-error}"));
    let proxy = TestProxy::start(&mesh(&[&backend], &[rule, &route]), &[]);
    // No limit: a burst all passes.
    let (replies, _) = burst(connect_all(&proxy, 4).await?, "/?delay=50ms").await?;
    for reply in &replies {
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "a zero limit must not overflow: {reply:?}"
        );
    }
    // No retry budget limit: the two retries are sent.
    assert_eq!(
        tries(&proxy, &backend, "/?status=503").await?,
        (StatusCode::SERVICE_UNAVAILABLE, 3),
        "maxRetries: 0 must not disable retries"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2. Outlier detection
// ---------------------------------------------------------------------------------------------

const EJECTION_TIME: Duration = Duration::from_secs(2);

const OUTLIER_RULE: &str = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
    outlierDetection:
      consecutive5xxErrors: 3
      interval: 1s
      baseEjectionTime: 2s
      maxEjectionPercent: 100
";

#[tokio::test]
async fn outlier_detection_ejects_a_failing_endpoint_then_lets_it_back() -> anyhow::Result<()> {
    let healthy = TestEcho::start("reviews-ok");
    let failing = TestEcho::builder("reviews-bad").status(503).start();
    let proxy = TestProxy::start(&mesh(&[&healthy, &failing], &[OUTLIER_RULE]), &[]);
    let mut client = proxy.client(Version::HTTP_11).await?;

    // Round robin alternates, and the default retry policy does not retry 503: the failing
    // endpoint's third consecutive 503 comes back within six requests.
    let mut errors = 0;
    let mut sent = 0;
    while errors < 3 && sent < 6 {
        let reply = client.get(HOST, "/", &[]).await?;
        sent += 1;
        match reply.status {
            StatusCode::OK => assert_eq!(answered_by(&reply), "reviews-ok"),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(answered_by(&reply), "reviews-bad");
                errors += 1;
            }
            other => panic!("unexpected {other}: {reply:?}"),
        }
    }
    assert_eq!(
        errors, 3,
        "round robin did not reach the failing endpoint 3 times in 6 requests"
    );
    let ejected_at = Instant::now();

    // Ejected: everything goes to the healthy endpoint.
    for i in 0..20 {
        let reply = client.get(HOST, "/", &[]).await?;
        assert_eq!(
            (reply.status, answered_by(&reply).as_str()),
            (StatusCode::OK, "reviews-ok"),
            "request {i} after the ejection"
        );
    }
    assert!(
        ejected_at.elapsed() < EJECTION_TIME,
        "20 requests took longer than the ejection ({:?}); the check above proves nothing",
        ejected_at.elapsed()
    );
    assert_eq!(
        weft_e2e::echo_count(&failing).await?,
        3,
        "the ejected endpoint got traffic"
    );

    // After baseEjectionTime it is balanced over again (and fails again).
    let client = tokio::sync::Mutex::new(client);
    wait_until_async(Duration::from_secs(10), || async {
        let reply = client.lock().await.get(HOST, "/", &[]).await;
        matches!(reply, Ok(r) if r.status == StatusCode::SERVICE_UNAVAILABLE)
    })
    .await?;
    let back_after = ejected_at.elapsed();
    assert!(
        back_after >= EJECTION_TIME - Duration::from_millis(100),
        "the endpoint came back after {back_after:?}, before the ejection time"
    );
    assert_eq!(weft_e2e::echo_count(&failing).await?, 4);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3. Load balancing
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn round_robin_rotates_strictly() -> anyhow::Result<()> {
    let backends = three_backends();
    let refs: Vec<&TestEcho> = backends.iter().collect();
    let proxy = TestProxy::start(&mesh(&refs, &[&lb_rule("{simple: ROUND_ROBIN}")]), &[]);
    let seen = sequence(&proxy, 30, "/", &[]).await?;
    let per = counts(&seen);
    assert_eq!(per.len(), 3, "{per:?}");
    for (name, n) in &per {
        assert!((9..=11).contains(n), "{name}: {n} of 30: {per:?}");
    }
    for (i, window) in seen.windows(4).enumerate() {
        assert_eq!(
            window[0], window[3],
            "rotation broken at request {i}: {seen:?}"
        );
        assert_ne!(
            window[0], window[1],
            "rotation broken at request {i}: {seen:?}"
        );
    }
    Ok(())
}

const SPREAD_REQUESTS: usize = 300;

/// Each of the three backends gets a binomial(n, 1/3) share.
fn assert_uniform_over_three(seen: &[String]) {
    let per = counts(seen);
    assert_eq!(per.len(), 3, "{per:?}");
    for (name, n) in &per {
        assert_binomial(name, *n, seen.len(), 1.0 / 3.0);
    }
}

#[tokio::test]
async fn random_spreads_uniformly_and_independently() -> anyhow::Result<()> {
    let backends = three_backends();
    let refs: Vec<&TestEcho> = backends.iter().collect();
    let proxy = TestProxy::start(&mesh(&refs, &[&lb_rule("{simple: RANDOM}")]), &[]);
    let seen = sequence(&proxy, SPREAD_REQUESTS, "/", &[]).await?;
    assert_uniform_over_three(&seen);
    // Independent uniform draws repeat the previous endpoint with probability 1/3 (the
    // indicators are pairwise independent, so the count is binomial); a rotation never does.
    let repeats = seen.windows(2).filter(|w| w[0] == w[1]).count();
    assert_binomial("repeats", repeats, seen.len() - 1, 1.0 / 3.0);
    Ok(())
}

#[tokio::test]
async fn default_least_request_spreads_idle_traffic_uniformly() -> anyhow::Result<()> {
    let backends = three_backends();
    let refs: Vec<&TestEcho> = backends.iter().collect();
    // No DestinationRule: Istio's default load balancer, LEAST_REQUEST. Sequential requests
    // leave every endpoint idle, so the two choices tie and the first random draw wins.
    let proxy = TestProxy::start(&mesh(&refs, &[]), &[]);
    let seen = sequence(&proxy, SPREAD_REQUESTS, "/", &[]).await?;
    assert_uniform_over_three(&seen);
    Ok(())
}

/// Sends 5 requests for each of 20 keys; every key must stick to one backend, and the keys
/// must spread over at least two backends. Returns the backend of each key.
async fn assert_sticky<F>(proxy: &TestProxy, request: F) -> anyhow::Result<BTreeMap<String, String>>
where
    F: Fn(&str) -> (String, Vec<(String, String)>),
{
    let mut client = proxy.client(Version::HTTP_11).await?;
    let mut owner = BTreeMap::new();
    for k in 0..20 {
        let key = format!("user-{k}");
        let (path, headers) = request(&key);
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let mut seen = BTreeSet::new();
        for _ in 0..5 {
            let reply = client.get(HOST, &path, &headers).await?;
            assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
            seen.insert(answered_by(&reply));
        }
        assert_eq!(seen.len(), 1, "{key} was not sticky: {seen:?}");
        owner.insert(key, seen.into_iter().next().unwrap_or_default());
    }
    let distinct: BTreeSet<&String> = owner.values().collect();
    assert!(
        distinct.len() >= 2,
        "20 keys all hashed to one backend: {owner:?}"
    );
    Ok(owner)
}

#[tokio::test]
async fn consistent_hash_on_a_header_is_sticky_per_value() -> anyhow::Result<()> {
    let backends = three_backends();
    let refs: Vec<&TestEcho> = backends.iter().collect();
    let rule = lb_rule("{consistentHash: {httpHeaderName: x-user}}");
    let proxy = TestProxy::start(&mesh(&refs, &[&rule]), &[]);
    let owner = assert_sticky(&proxy, |key| {
        ("/".into(), vec![("x-user".into(), key.into())])
    })
    .await?;
    // Header names are case-insensitive: the same value sent as `X-User` hashes alike.
    let again = assert_sticky(&proxy, |key| {
        ("/".into(), vec![("X-User".into(), key.into())])
    })
    .await?;
    assert_eq!(owner, again);
    Ok(())
}

#[tokio::test]
async fn consistent_hash_on_a_query_parameter_is_sticky_per_value() -> anyhow::Result<()> {
    let backends = three_backends();
    let refs: Vec<&TestEcho> = backends.iter().collect();
    let rule = lb_rule("{consistentHash: {httpQueryParameterName: user}}");
    let proxy = TestProxy::start(&mesh(&refs, &[&rule]), &[]);
    let owner = assert_sticky(&proxy, |key| (format!("/?user={key}"), vec![])).await?;
    // Only the named parameter counts.
    let again = assert_sticky(&proxy, |key| {
        (format!("/items?page=3&user={key}&x=1"), vec![])
    })
    .await?;
    assert_eq!(owner, again);
    Ok(())
}

const COOKIE_RULE: &str = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpCookie:
          name: session
          path: /
          ttl: 60s
";

#[tokio::test]
async fn consistent_hash_on_a_client_cookie_is_sticky_per_value() -> anyhow::Result<()> {
    let backends = three_backends();
    let refs: Vec<&TestEcho> = backends.iter().collect();
    let proxy = TestProxy::start(&mesh(&refs, &[COOKIE_RULE]), &[]);
    let owner = assert_sticky(&proxy, |key| {
        (
            "/".into(),
            vec![(
                "cookie".into(),
                format!("theme=dark; session={key}; lang=en"),
            )],
        )
    })
    .await?;
    // The cookie is found wherever it sits in the header.
    let again = assert_sticky(&proxy, |key| {
        (
            "/".into(),
            vec![("cookie".into(), format!("session={key}"))],
        )
    })
    .await?;
    assert_eq!(owner, again);
    Ok(())
}

/// Istio: "ttl given ⇒ proxy generates cookie". Envoy answers a request without the cookie
/// with `set-cookie: session="<hash>"; Max-Age=60; Path=/; HttpOnly` and routes by that value,
/// so a client replaying the cookie stays on the same endpoint.
#[tokio::test]
async fn consistent_hash_cookie_with_ttl_is_generated_by_the_proxy() -> anyhow::Result<()> {
    let backends = three_backends();
    let refs: Vec<&TestEcho> = backends.iter().collect();
    let proxy = TestProxy::start(&mesh(&refs, &[COOKIE_RULE]), &[]);
    let mut client = proxy.client(Version::HTTP_11).await?;
    // Each session's first endpoint must be the one its cookie maps to: a chance match for all
    // 8 sessions is (1/3)^8 when the cookie is unrelated to the first pick.
    for session in 0..8 {
        let first = client.get(HOST, "/", &[]).await?;
        let set_cookie = first
            .header("set-cookie")
            .ok_or_else(|| anyhow::anyhow!("no set-cookie on a request without one: {first:?}"))?;
        assert!(set_cookie.starts_with("session="), "{set_cookie}");
        for attribute in ["; Max-Age=60", "; Path=/", "; HttpOnly"] {
            assert!(
                set_cookie.contains(attribute),
                "{attribute} missing: {set_cookie}"
            );
        }
        let pair = set_cookie.split(';').next().unwrap_or_default().to_string();
        for _ in 0..3 {
            let reply = client.get(HOST, "/", &[("cookie", &pair)]).await?;
            assert_eq!(
                answered_by(&reply),
                answered_by(&first),
                "session {session}: {pair}"
            );
            let set = reply.header("set-cookie");
            assert!(
                set.is_none(),
                "the cookie is set only when missing: {set:?}"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn consistent_hash_on_source_ip_keeps_one_client_on_one_endpoint() -> anyhow::Result<()> {
    let backends = three_backends();
    let refs: Vec<&TestEcho> = backends.iter().collect();
    let rule = lb_rule("{consistentHash: {useSourceIp: true}}");
    let proxy = TestProxy::start(&mesh(&refs, &[&rule]), &[]);
    // A new connection (new source port) every time: only the IP, 127.0.0.1, counts.
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        let reply = proxy.get(HOST, "/").await?;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        seen.insert(answered_by(&reply));
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 4. Retries
// ---------------------------------------------------------------------------------------------

/// Sends `path` once and returns the status and how many tries reached the backend.
async fn tries(
    proxy: &TestProxy,
    backend: &TestEcho,
    path: &str,
) -> anyhow::Result<(StatusCode, u64)> {
    let before = weft_e2e::echo_count(backend).await?;
    let reply = proxy.get(HOST, path).await?;
    // Tries are sequential and the echo counts a request on arrival: when the reply is here,
    // every try has been counted.
    Ok((reply.status, weft_e2e::echo_count(backend).await? - before))
}

#[tokio::test]
async fn gateway_error_retries_503_but_not_500() -> anyhow::Result<()> {
    let backend = TestEcho::start("reviews-v1");
    let route = retry_route(Some("{attempts: 2, retryOn: gateway-error}"));
    let proxy = TestProxy::start(&mesh(&[&backend], &[&route]), &[]);
    assert_eq!(
        tries(&proxy, &backend, "/?status=503").await?,
        (StatusCode::SERVICE_UNAVAILABLE, 3)
    );
    assert_eq!(
        tries(&proxy, &backend, "/?status=504").await?,
        (StatusCode::GATEWAY_TIMEOUT, 3)
    );
    assert_eq!(
        tries(&proxy, &backend, "/?status=500").await?,
        (StatusCode::INTERNAL_SERVER_ERROR, 1)
    );
    assert_eq!(tries(&proxy, &backend, "/").await?, (StatusCode::OK, 1));
    let log = proxy.wait_for_log_lines(4).await?;
    let flags: Vec<&str> = log
        .iter()
        .map(|l| l["response_flags"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(flags, ["URX", "URX", "-", "-"], "{log:#?}");
    Ok(())
}

#[tokio::test]
async fn retriable_4xx_retries_409_only() -> anyhow::Result<()> {
    let backend = TestEcho::start("reviews-v1");
    let route = retry_route(Some("{attempts: 2, retryOn: retriable-4xx}"));
    let proxy = TestProxy::start(&mesh(&[&backend], &[&route]), &[]);
    assert_eq!(
        tries(&proxy, &backend, "/?status=409").await?,
        (StatusCode::CONFLICT, 3)
    );
    assert_eq!(
        tries(&proxy, &backend, "/?status=404").await?,
        (StatusCode::NOT_FOUND, 1)
    );
    assert_eq!(
        tries(&proxy, &backend, "/?status=429").await?,
        (StatusCode::TOO_MANY_REQUESTS, 1)
    );
    assert_eq!(
        tries(&proxy, &backend, "/?status=503").await?,
        (StatusCode::SERVICE_UNAVAILABLE, 1)
    );
    Ok(())
}

#[tokio::test]
async fn bare_status_code_in_retry_on_is_retried() -> anyhow::Result<()> {
    let backend = TestEcho::start("reviews-v1");
    let route = retry_route(Some("{attempts: 2, retryOn: \"503\"}"));
    let proxy = TestProxy::start(&mesh(&[&backend], &[&route]), &[]);
    assert_eq!(
        tries(&proxy, &backend, "/?status=503").await?,
        (StatusCode::SERVICE_UNAVAILABLE, 3)
    );
    assert_eq!(
        tries(&proxy, &backend, "/?status=502").await?,
        (StatusCode::BAD_GATEWAY, 1)
    );
    assert_eq!(
        tries(&proxy, &backend, "/?status=500").await?,
        (StatusCode::INTERNAL_SERVER_ERROR, 1)
    );
    Ok(())
}

/// `connectionPool.http.maxRetries` bounds the retries in flight across the cluster. Envoy
/// sends the response it has when a retry would exceed it, and logs `UO` (router.cc:
/// `retry_status == RetryStatus::NoOverflow` → `setResponseFlag(UpstreamOverflow)`).
#[tokio::test]
async fn retry_over_max_retries_returns_the_response_flagged_uo() -> anyhow::Result<()> {
    let backend = TestEcho::start("reviews-v1");
    let rule = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      http: {maxRetries: 1}
";
    let route = retry_route(Some("{attempts: 1, retryOn: gateway-error}"));
    let proxy = TestProxy::start(&mesh(&[&backend], &[rule, &route]), &[]);
    // Both first tries end together after 300ms; one retry takes the only permit and holds it
    // for another 300ms, so the other request cannot retry.
    let (replies, _) = burst(connect_all(&proxy, 2).await?, "/?status=503&delay=300ms").await?;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
        assert_eq!(
            answered_by(reply),
            "reviews-v1",
            "the upstream's response is returned"
        );
    }
    assert_eq!(
        weft_e2e::echo_count(&backend).await?,
        3,
        "one request retried once, the other not at all"
    );
    let log = proxy.wait_for_log_lines(2).await?;
    let mut flags: Vec<&str> = log
        .iter()
        .map(|l| l["response_flags"].as_str().unwrap_or("?"))
        .collect();
    flags.sort_unstable();
    assert_eq!(flags, ["UO", "URX"], "{log:#?}");
    Ok(())
}

/// A port on 127.0.0.1 that nothing listens on (bound, noted, released).
fn closed_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Round robin over a closed port and a healthy backend: every request succeeds, the ones
/// that tried the closed port first on their second attempt.
async fn connect_failures_move_to_the_healthy_host(retries: Option<&str>) -> anyhow::Result<()> {
    let healthy = TestEcho::start("reviews-ok");
    let closed = closed_port()?;
    let rule = lb_rule("{simple: ROUND_ROBIN}");
    let route = retry_route(retries);
    let proxy = TestProxy::start(
        &mesh_on_ports(&[closed, healthy.addr().port()], &[&rule, &route]),
        &[],
    );
    let mut client = proxy.client(Version::HTTP_11).await?;
    let mut retried = 0;
    for i in 0..10 {
        let reply = client.get(HOST, "/", &[]).await?;
        assert_eq!(reply.status, StatusCode::OK, "request {i}: {reply:?}");
        assert_eq!(answered_by(&reply), "reviews-ok");
        if reply.json()?["headers"]["x-envoy-attempt-count"] == "2" {
            retried += 1;
        }
    }
    assert!(
        retried >= 5,
        "round robin sent only {retried} of 10 requests to the closed port first"
    );
    assert_eq!(weft_e2e::echo_count(&healthy).await?, 10);
    let log = proxy.wait_for_log_lines(10).await?;
    for line in &log {
        assert_eq!(line["response_code"], 200, "{line}");
        assert_eq!(line["upstream_host"], healthy.addr().to_string(), "{line}");
    }
    Ok(())
}

#[tokio::test]
async fn connect_failure_retry_moves_to_another_host() -> anyhow::Result<()> {
    connect_failures_move_to_the_healthy_host(Some("{attempts: 2, retryOn: connect-failure}")).await
}

#[tokio::test]
async fn default_retry_policy_recovers_from_connect_failures() -> anyhow::Result<()> {
    connect_failures_move_to_the_healthy_host(None).await
}

#[tokio::test]
async fn per_try_timeout_retries_then_answers_504_ut_urx() -> anyhow::Result<()> {
    let backend = TestEcho::start("reviews-v1");
    let route = retry_route(Some("{attempts: 2, perTryTimeout: 200ms, retryOn: 5xx}"));
    let proxy = TestProxy::start(&mesh(&[&backend], &[&route]), &[]);
    let started = Instant::now();
    let reply = proxy.get(HOST, "/?delay=2s").await?;
    let took = started.elapsed();
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT, "{reply:?}");
    assert_eq!(reply.text(), "upstream request timeout");
    assert!(
        took >= Duration::from_millis(600),
        "3 tries of 200ms took only {took:?}"
    );
    assert!(
        took < Duration::from_secs(2),
        "the per-try timeout did not cut the 2s delay: {took:?}"
    );
    // A timed-out try may reach the backend just after the proxy gave up on it: poll.
    wait_until_async(Duration::from_secs(5), || async {
        weft_e2e::echo_count(&backend).await.ok() == Some(3)
    })
    .await?;
    let log = proxy.wait_for_log_lines(1).await?;
    let flags = log[0]["response_flags"].as_str().unwrap_or_default();
    let flags: BTreeSet<&str> = flags.split(',').collect();
    assert!(flags.contains("UT") && flags.contains("URX"), "{log:#?}");
    assert_eq!(log[0]["response_code"], 504);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 5. HTTP/2 upstream
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn h2_upgrade_policy_speaks_http2_upstream() -> anyhow::Result<()> {
    let backend = TestEcho::start("echo");
    let port = backend.addr().port();
    let upgrade = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      http:
        h2UpgradePolicy: UPGRADE
";
    let ratings = service_entry("ratings", &[port]);
    let proxy = TestProxy::start(&mesh(&[&backend], &[upgrade, &ratings]), &[]);
    for version in [Version::HTTP_11, Version::HTTP_2] {
        let mut client = proxy.client(version).await?;
        for _ in 0..3 {
            let upgraded = client.get(HOST, "/h2", &[]).await?;
            assert_eq!(upgraded.status, StatusCode::OK, "{upgraded:?}");
            let body = upgraded.json()?;
            assert_eq!(body["protocol"], "HTTP/2.0", "{body}");
            assert_eq!(
                body["host"], HOST,
                "the upstream must see the requested host: {body}"
            );
            let plain = client.get("ratings", "/h1", &[]).await?.json()?;
            assert_eq!(plain["protocol"], "HTTP/1.1", "{plain}");
            assert_eq!(plain["host"], "ratings", "{plain}");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 6. Metrics under load
// ---------------------------------------------------------------------------------------------

/// The samples of metric `name` in OpenMetrics text: labels and value.
fn samples(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix('{')?;
            let (labels, value) = rest.rsplit_once("} ")?;
            let labels = labels
                .split("\",")
                .filter_map(|pair| {
                    let (k, v) = pair.split_once("=\"")?;
                    Some((k.to_string(), v.trim_end_matches('"').to_string()))
                })
                .collect();
            Some((labels, value.trim().parse().ok()?))
        })
        .collect()
}

/// Sums metric `name` for `reviews`, by response code.
fn by_code(text: &str, name: &str) -> BTreeMap<String, u64> {
    let mut sums = BTreeMap::new();
    for (labels, value) in samples(text, name) {
        if labels.get("destination_service_name").map(String::as_str) != Some(HOST) {
            continue;
        }
        let code = labels.get("response_code").cloned().unwrap_or_default();
        *sums.entry(code).or_insert(0) += value as u64;
    }
    sums
}

#[tokio::test]
async fn requests_total_counts_each_response_code_under_load() -> anyhow::Result<()> {
    const CLIENTS: usize = 4;
    const PER_CLIENT: usize = 15;
    let backend = TestEcho::start("reviews-v1");
    let proxy = TestProxy::start(&mesh(&[&backend], &[]), &[]);
    let mut set = JoinSet::new();
    for _ in 0..CLIENTS {
        let mut client = proxy.client(Version::HTTP_11).await?;
        set.spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..PER_CLIENT {
                // Two of every five fail.
                let path = if i % 5 < 2 {
                    "/?status=503"
                } else {
                    "/?delay=5ms"
                };
                statuses.push(client.get(HOST, path, &[]).await?.status);
            }
            anyhow::Ok(statuses)
        });
    }
    let mut sent: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        for status in joined?? {
            *sent.entry(status.as_str().to_string()).or_insert(0) += 1;
        }
    }
    let total = (CLIENTS * PER_CLIENT) as u64;
    assert_eq!(sent.get("200"), Some(&(total * 3 / 5)), "{sent:?}");
    assert_eq!(sent.get("503"), Some(&(total * 2 / 5)), "{sent:?}");

    // Metrics are recorded when each response body ends, which can be just after the client
    // has it: poll until every request is counted, then compare per code.
    let counted = || async {
        let metrics = proxy.metrics().await.unwrap_or_default();
        by_code(&metrics, "istio_requests_total")
            .values()
            .sum::<u64>()
    };
    wait_until_async(Duration::from_secs(10), || async {
        counted().await >= total
    })
    .await?;
    let metrics = proxy.metrics().await?;
    assert_eq!(by_code(&metrics, "istio_requests_total"), sent, "{metrics}");
    assert_eq!(
        by_code(&metrics, "istio_request_duration_milliseconds_count"),
        sent,
        "{metrics}"
    );
    for (labels, _) in samples(&metrics, "istio_requests_total") {
        assert_eq!(
            labels.get("response_flags").map(String::as_str),
            Some("-"),
            "{labels:?}"
        );
        assert_eq!(
            labels.get("reporter").map(String::as_str),
            Some("source"),
            "{labels:?}"
        );
    }
    Ok(())
}
