//! End-to-end tests of `weft proxy`: real `weft echo` backends, a real proxy process, real
//! HTTP/1.1 and HTTP/2 clients. Each seed scenario of the project's tutorials runs here.

// Helpers outside #[test] functions: a failed step is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use http::{StatusCode, Version};
use weft_e2e::{TestEcho, TestProxy, reviews_mesh};

/// Counts which backend answered `n` requests.
async fn split(
    proxy: &TestProxy,
    n: usize,
    headers: &[(&str, &str)],
) -> std::collections::BTreeMap<String, usize> {
    let mut client = proxy.client(Version::HTTP_11).await.unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..n {
        let reply = client
            .get("reviews:9080", "/reviews", headers)
            .await
            .unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let name = reply.header("x-echo-name").unwrap_or("none").to_string();
        *seen.entry(name).or_insert(0) += 1;
    }
    seen
}

/// |observed - expected| within 5 standard deviations of a binomial(n, p).
fn assert_share(observed: usize, n: usize, p: f64) {
    let sigma = (n as f64 * p * (1.0 - p)).sqrt().max(1.0);
    let expected = n as f64 * p;
    assert!(
        (observed as f64 - expected).abs() <= 5.0 * sigma,
        "observed {observed} of {n}, expected {expected:.0} ± {:.0}",
        5.0 * sigma
    );
}

/// Seed 000's canary, verbatim.
const CANARY_80_20: &str =
    include_str!("../../examples/seeds/000-01-virtualservice-reviews-routing.yaml");

#[tokio::test]
async fn canary_80_20_split_follows_the_weights() {
    let v1 = TestEcho::start("reviews-v1");
    let v2 = TestEcho::start("reviews-v2");
    let proxy = TestProxy::start(
        &reviews_mesh(&[(&v1, "v1"), (&v2, "v2")], CANARY_80_20),
        &[],
    );
    let n = 400;
    let seen = split(&proxy, n, &[]).await;
    assert_eq!(seen.values().sum::<usize>(), n);
    assert_share(seen.get("reviews-v1").copied().unwrap_or(0), n, 0.8);
}

#[tokio::test]
async fn header_route_sends_jason_to_v2() {
    let v1 = TestEcho::start("reviews-v1");
    let v2 = TestEcho::start("reviews-v2");
    let vs = "apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews-route
spec:
  hosts:
    - reviews
  http:
    - match:
        - headers:
            end-user:
              exact: jason
      route:
        - destination:
            host: reviews
            subset: v2
    - route:
        - destination:
            host: reviews
            subset: v1
";
    let proxy = TestProxy::start(&reviews_mesh(&[(&v1, "v1"), (&v2, "v2")], vs), &[]);
    let jason = split(&proxy, 20, &[("end-user", "jason")]).await;
    assert_eq!(jason.get("reviews-v2"), Some(&20), "{jason:?}");
    let others = split(&proxy, 20, &[("end-user", "mary")]).await;
    assert_eq!(others.get("reviews-v1"), Some(&20), "{others:?}");
    let nobody = split(&proxy, 5, &[]).await;
    assert_eq!(nobody.get("reviews-v1"), Some(&5), "{nobody:?}");
}

#[tokio::test]
async fn chrome_regex_canary_over_http2() {
    let v1 = TestEcho::start("reviews-v1");
    let v2 = TestEcho::start("reviews-v2");
    let vs = "apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - match:
    - headers:
        user-agent:
          regex: \".*Chrome.*\"
    route:
    - destination:
        host: reviews
        subset: v2
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: 95
    - destination:
        host: reviews
        subset: v2
      weight: 5
";
    let proxy = TestProxy::start(&reviews_mesh(&[(&v1, "v1"), (&v2, "v2")], vs), &[]);
    let mut client = proxy.client(Version::HTTP_2).await.unwrap();
    for _ in 0..10 {
        let reply = client
            .get(
                "reviews",
                "/",
                &[("user-agent", "Mozilla/5.0 Chrome/120.0")],
            )
            .await
            .unwrap();
        assert_eq!(reply.header("x-echo-name"), Some("reviews-v2"));
        assert_eq!(
            reply.json().unwrap()["protocol"],
            "HTTP/1.1",
            "upstream is HTTP/1.1"
        );
    }
}

#[tokio::test]
async fn fault_delay_and_abort() {
    let v1 = TestEcho::start("reviews-v1");
    let vs = "apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: reviews-fault-injection
spec:
  hosts:
    - reviews
  http:
    - match:
      - uri: {prefix: /abort}
      fault:
        abort:
          httpStatus: 503
          percentage: {value: 100}
      route:
        - destination: {host: reviews}
    - fault:
        delay:
          percentage:
            value: 100
          fixedDelay: 300ms
      route:
        - destination:
            host: reviews
";
    let proxy = TestProxy::start(&reviews_mesh(&[(&v1, "v1")], vs), &[]);
    let started = Instant::now();
    let reply = proxy.get("reviews", "/slow").await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "delay not applied"
    );
    let reply = proxy.get("reviews", "/abort").await.unwrap();
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    let log = proxy.wait_for_log_lines(2).await.unwrap();
    let flags: Vec<&str> = log
        .iter()
        .map(|l| l["response_flags"].as_str().unwrap_or(""))
        .collect();
    assert!(flags.contains(&"DI"), "{log:#?}");
    assert!(flags.contains(&"FI"), "{log:#?}");
}

#[tokio::test]
async fn retries_on_5xx_then_give_up_with_urx() {
    let failing = TestEcho::builder("reviews-v1").status(503).start();
    let vs = "apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: api
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
    retries:
      attempts: 3
      perTryTimeout: 2s
      retryOn: 5xx,reset,connect-failure,refused-stream
";
    let proxy = TestProxy::start(&reviews_mesh(&[(&failing, "v1")], vs), &[]);
    let reply = proxy.get("reviews", "/").await.unwrap();
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    let stats = weft_e2e::http::get(failing.addr(), Version::HTTP_11, "/__echo/stats")
        .await
        .unwrap();
    assert_eq!(stats.json().unwrap()["count"], 4, "1 try + 3 retries");
    let log = proxy.wait_for_log_lines(1).await.unwrap();
    assert_eq!(log[0]["response_flags"], "URX", "{log:#?}");
}

#[tokio::test]
async fn default_policy_does_not_retry_5xx() {
    let failing = TestEcho::builder("reviews-v1").status(503).start();
    let vs = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
";
    let proxy = TestProxy::start(&reviews_mesh(&[(&failing, "v1")], vs), &[]);
    assert_eq!(
        proxy.get("reviews", "/").await.unwrap().status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let stats = weft_e2e::http::get(failing.addr(), Version::HTTP_11, "/__echo/stats")
        .await
        .unwrap();
    assert_eq!(stats.json().unwrap()["count"], 1);
}

#[tokio::test]
async fn route_timeout_answers_504_ut() {
    let slow = TestEcho::start("slow");
    let vs = "apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: slow-service
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
    timeout: 300ms
";
    let proxy = TestProxy::start(&reviews_mesh(&[(&slow, "v1")], vs), &[]);
    let reply = proxy.get("reviews", "/?delay=3s").await.unwrap();
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(reply.text(), "upstream request timeout");
    let log = proxy.wait_for_log_lines(1).await.unwrap();
    assert_eq!(log[0]["response_flags"], "UT");
    // Fast requests are unaffected.
    assert_eq!(
        proxy.get("reviews", "/").await.unwrap().status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn no_route_undefined_subset_and_unknown_hosts() {
    let v1 = TestEcho::start("reviews-v1");
    let vs = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r}
spec:
  hosts: [reviews]
  http:
  - match:
    - uri: {prefix: /v3}
    route:
    - destination: {host: reviews, subset: v3}
  - match:
    - uri: {exact: /only}
    route:
    - destination: {host: reviews, subset: v1}
";
    let proxy = TestProxy::start(&reviews_mesh(&[(&v1, "v1")], vs), &[]);
    let reply = proxy.get("reviews", "/elsewhere").await.unwrap();
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = proxy.get("reviews", "/v3").await.unwrap();
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        proxy.get("reviews", "/only").await.unwrap().status,
        StatusCode::OK
    );
    // ALLOW_ANY (default): an unknown host is forwarded as asked.
    let direct = proxy.get(&v1.addr().to_string(), "/direct").await.unwrap();
    assert_eq!(direct.header("x-echo-name"), Some("reviews-v1"));
    let log = proxy.wait_for_log_lines(4).await.unwrap();
    let flags: Vec<&str> = log
        .iter()
        .map(|l| l["response_flags"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(flags, ["NR", "NC", "-", "-"], "{log:#?}");
    let cluster = log[3]["upstream_cluster"].as_str().unwrap_or_default();
    assert!(cluster.contains("PassthroughCluster"), "{log:#?}");
}

#[tokio::test]
async fn registry_only_refuses_unknown_hosts_with_502() {
    let v1 = TestEcho::start("reviews-v1");
    let proxy = TestProxy::start(
        &reviews_mesh(&[(&v1, "v1")], ""),
        &["--outbound-policy", "REGISTRY_ONLY"],
    );
    let reply = proxy.get(&v1.addr().to_string(), "/").await.unwrap();
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    // A known host without a VirtualService goes to all its endpoints.
    assert_eq!(
        proxy
            .get("reviews", "/")
            .await
            .unwrap()
            .header("x-echo-name"),
        Some("reviews-v1")
    );
}

#[tokio::test]
async fn rewrite_redirect_direct_response_and_headers() {
    let v1 = TestEcho::start("reviews-v1");
    let vs = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r}
spec:
  hosts: [reviews]
  http:
  - match:
    - uri: {prefix: /old}
    redirect: {uri: /new}
  - match:
    - uri: {exact: /down}
    directResponse:
      status: 503
      body: {string: maintenance}
  - match:
    - uri: {prefix: /api/v1}
    rewrite: {uri: /v2, authority: ratings}
    headers:
      request:
        set: {x-team: blue}
        remove: [x-secret]
      response:
        add: {x-served-by: weft}
    route:
    - destination: {host: reviews}
";
    let proxy = TestProxy::start(&reviews_mesh(&[(&v1, "v1")], vs), &[]);
    let reply = proxy.get("reviews:9080", "/old/page").await.unwrap();
    assert_eq!(reply.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(reply.header("location"), Some("http://reviews:9080/new"));
    let reply = proxy.get("reviews", "/down").await.unwrap();
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "maintenance")
    );
    let mut client = proxy.client(Version::HTTP_11).await.unwrap();
    let reply = client
        .get("reviews", "/api/v1/users?id=7", &[("x-secret", "s")])
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-served-by"), Some("weft"));
    let body = reply.json().unwrap();
    assert_eq!(body["path"], "/v2/users?id=7");
    assert_eq!(body["host"], "ratings");
    assert_eq!(body["headers"]["x-team"], "blue");
    assert!(body["headers"].get("x-secret").is_none(), "{body}");
}

#[tokio::test]
async fn hot_reload_applies_edits_and_keeps_the_last_good_config() {
    let v1 = TestEcho::start("reviews-v1");
    let v2 = TestEcho::start("reviews-v2");
    let to = |subset: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: r}}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {{host: reviews, subset: {subset}}}\n"
        )
    };
    let backends = [(&v1, "v1"), (&v2, "v2")];
    let proxy = TestProxy::start(&reviews_mesh(&backends, &to("v1")), &[]);
    assert_eq!(
        proxy
            .get("reviews", "/")
            .await
            .unwrap()
            .header("x-echo-name"),
        Some("reviews-v1")
    );
    proxy
        .write_config(&reviews_mesh(&backends, &to("v2")))
        .unwrap();
    proxy.wait_for_version(2).await.unwrap();
    assert_eq!(
        proxy
            .get("reviews", "/")
            .await
            .unwrap()
            .header("x-echo-name"),
        Some("reviews-v2")
    );
    // An invalid edit is reported and the last good config keeps serving.
    proxy
        .write_config(
            &reviews_mesh(&backends, &to("v2"))
                .replace("weight", "w")
                .replace("subset: v2}", "subset: v2}\n      weight: -5"),
        )
        .unwrap();
    weft_e2e::wait_until_async(Duration::from_secs(10), || async {
        proxy
            .config_dump()
            .await
            .map(|d| !d["last_error"].is_null())
            .unwrap_or(false)
    })
    .await
    .unwrap();
    let dump = proxy.config_dump().await.unwrap();
    assert_eq!(dump["version"], 2);
    assert!(
        dump["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("weight -5 < 0"),
        "{dump}"
    );
    assert!(dump["last_error"]["line"].as_u64().is_some());
    assert_eq!(
        proxy
            .get("reviews", "/")
            .await
            .unwrap()
            .header("x-echo-name"),
        Some("reviews-v2")
    );
}

#[test]
fn invalid_config_at_start_exits_non_zero_with_the_position() {
    let bad = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n    timeout: 5x\n";
    let err = TestProxy::try_start(bad, &[])
        .err()
        .expect("must not start");
    let text = format!("{err:#}");
    assert!(text.contains("mesh.yaml:9:5"), "{text}");
    assert!(text.contains("spec.http[0].timeout"), "{text}");
}

#[tokio::test]
async fn admin_ready_metrics_and_access_log() {
    let v1 = TestEcho::start("reviews-v1");
    let proxy = TestProxy::start(
        &reviews_mesh(
            &[(&v1, "v1")],
            CANARY_80_20
                .replace("weight: 80", "weight: 100")
                .replace("weight: 20", "weight: 0")
                .as_str(),
        ),
        &[],
    );
    let ready = weft_e2e::http::get(proxy.admin(), Version::HTTP_11, "/ready")
        .await
        .unwrap();
    assert_eq!(ready.status, StatusCode::OK);
    for _ in 0..3 {
        assert_eq!(
            proxy.get("reviews", "/x").await.unwrap().status,
            StatusCode::OK
        );
    }
    let log = proxy.wait_for_log_lines(3).await.unwrap();
    let line = &log[0];
    for key in [
        "start_time",
        "method",
        "path",
        "protocol",
        "response_code",
        "response_flags",
        "duration",
        "upstream_cluster",
        "upstream_host",
        "authority",
        "request_id",
        "route_name",
    ] {
        assert!(line.get(key).is_some(), "missing {key} in {line}");
    }
    assert_eq!(line["response_code"], 200);
    assert_eq!(
        line["upstream_cluster"],
        "outbound||v1|reviews.default.svc.cluster.local"
    );
    assert_eq!(line["route_name"], "reviews-routing.0");
    let metrics = proxy.metrics().await.unwrap();
    let total = metrics
        .lines()
        .find(|l| {
            l.starts_with("istio_requests_total{")
                && l.contains("response_code=\"200\"")
                && l.contains("destination_version=\"v1\"")
        })
        .unwrap_or_else(|| panic!("no istio_requests_total line in\n{metrics}"));
    assert!(total.ends_with(" 3"), "{total}");
    assert!(
        metrics.contains("istio_request_duration_milliseconds_bucket"),
        "{metrics}"
    );
}

#[tokio::test]
async fn dns_resolution_and_port_selection() {
    let web = TestEcho::start("web");
    let admin = TestEcho::start("admin");
    let config = format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: external}}
spec:
  hosts: [api.example.test]
  location: MESH_EXTERNAL
  resolution: DNS
  ports:
  - {{number: 80, name: http, protocol: HTTP}}
  - {{number: 8080, name: http-admin, protocol: HTTP}}
  endpoints:
  - address: localhost
    ports: {{http: {}, http-admin: {}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: api}}
spec:
  hosts: [api.example.test]
  http:
  - match:
    - uri: {{prefix: /admin}}
    route:
    - destination: {{host: api.example.test, port: {{number: 8080}}}}
  - route:
    - destination: {{host: api.example.test, port: {{number: 80}}}}
",
        web.addr().port(),
        admin.addr().port()
    );
    let proxy = TestProxy::start(&config, &[]);
    let reply = proxy.get("api.example.test", "/").await.unwrap();
    assert_eq!(reply.header("x-echo-name"), Some("web"), "{}", reply.text());
    let reply = proxy.get("api.example.test", "/admin/users").await.unwrap();
    assert_eq!(
        reply.header("x-echo-name"),
        Some("admin"),
        "{}",
        reply.text()
    );
}

#[tokio::test]
async fn hostile_requests_get_4xx_and_the_proxy_keeps_serving() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let v1 = TestEcho::start("reviews-v1");
    let proxy = TestProxy::start(&reviews_mesh(&[(&v1, "v1")], ""), &[]);
    let garbage: [&[u8]; 4] = [
        b"GET / HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
        b"GET /\x00 HTTP/1.1\r\nHost: reviews\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: reviews\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ];
    for bytes in garbage {
        let mut s = tokio::net::TcpStream::connect(proxy.outbound())
            .await
            .unwrap();
        s.write_all(bytes).await.unwrap();
        let _ = s.shutdown().await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        let text = String::from_utf8_lossy(&out);
        assert!(out.is_empty() || text.starts_with("HTTP/1.1 4"), "{text}");
    }
    assert_eq!(
        proxy.get("reviews", "/").await.unwrap().status,
        StatusCode::OK
    );
}

/// Every match field of `HTTPMatchRequest`, one route each, checked through the real proxy.
#[tokio::test]
async fn every_match_field_routes_as_istio_does() {
    let backends: Vec<TestEcho> = (1..=9).map(|i| TestEcho::start(&format!("r{i}"))).collect();
    let pairs: Vec<(&TestEcho, String)> = backends
        .iter()
        .enumerate()
        .map(|(i, e)| (e, format!("r{}", i + 1)))
        .collect();
    let refs: Vec<(&TestEcho, &str)> = pairs.iter().map(|(e, v)| (*e, v.as_str())).collect();
    let to = |v: &str| format!("    route:\n    - destination: {{host: reviews, subset: {v}}}\n");
    let vs = format!(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: matchers}}
spec:
  hosts: [reviews]
  http:
  - match:
    - uri: {{exact: /exact}}
{}  - match:
    - uri: {{regex: '/items/[0-9]+'}}
{}  - match:
    - uri: {{prefix: /CaSe}}
      ignoreUriCase: true
{}  - match:
    - method: {{exact: DELETE}}
{}  - match:
    - queryParams:
        debug: {{exact: ''}}
        v: {{regex: '[0-9]+'}}
{}  - match:
    - authority: {{prefix: reviews.default}}
{}  - match:
    - uri: {{prefix: /guarded}}
      withoutHeaders:
        x-block: {{}}
{}  - match:
    - port: 9080
      uri: {{prefix: /port}}
{}  - route:
    - destination: {{host: reviews, subset: r9}}
",
        to("r1"),
        to("r2"),
        to("r3"),
        to("r4"),
        to("r5"),
        to("r6"),
        to("r7"),
        to("r8")
    );
    let proxy = TestProxy::start(&reviews_mesh(&refs, &vs), &[]);
    let mut c = proxy.client(Version::HTTP_11).await.unwrap();
    let mut who = async |method: http::Method, host: &str, path: &str, headers: &[(&str, &str)]| {
        let reply = c
            .send(method, host, path, headers, bytes::Bytes::new())
            .await
            .unwrap();
        reply.header("x-echo-name").unwrap_or("none").to_string()
    };
    use http::Method as M;
    assert_eq!(who(M::GET, "reviews", "/exact", &[]).await, "r1");
    assert_eq!(
        who(M::GET, "reviews", "/exact/more", &[]).await,
        "r9",
        "exact is exact"
    );
    assert_eq!(who(M::GET, "reviews", "/items/42", &[]).await, "r2");
    assert_eq!(
        who(M::GET, "reviews", "/items/42x", &[]).await,
        "r9",
        "regex is a full match"
    );
    assert_eq!(who(M::GET, "reviews", "/case/lower", &[]).await, "r3");
    assert_eq!(who(M::DELETE, "reviews", "/anything", &[]).await, "r4");
    assert_eq!(who(M::GET, "reviews", "/q?debug&v=12", &[]).await, "r5");
    assert_eq!(
        who(M::GET, "reviews", "/q?debug&v=12a", &[]).await,
        "r9",
        "query regex is a full match"
    );
    assert_eq!(who(M::GET, "reviews.default:9080", "/a", &[]).await, "r6");
    assert_eq!(who(M::GET, "reviews", "/guarded", &[]).await, "r7");
    assert_eq!(
        who(M::GET, "reviews", "/guarded", &[("x-block", "1")]).await,
        "r9"
    );
    assert_eq!(who(M::GET, "reviews:9080", "/port", &[]).await, "r8");
    assert_eq!(
        who(M::GET, "reviews:8080", "/port", &[]).await,
        "r9",
        "port must match"
    );
}

#[tokio::test]
async fn requests_in_flight_during_a_reload_complete() {
    let v1 = TestEcho::start("reviews-v1");
    let v2 = TestEcho::start("reviews-v2");
    let to = |subset: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: r}}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {{host: reviews, subset: {subset}}}\n"
        )
    };
    let backends = [(&v1, "v1"), (&v2, "v2")];
    let proxy = TestProxy::start(&reviews_mesh(&backends, &to("v1")), &[]);
    let mut slow = proxy.client(Version::HTTP_11).await.unwrap();
    let in_flight = tokio::spawn(async move { slow.get("reviews", "/?delay=1500ms", &[]).await });
    // The slow request has reached v1 before the config changes.
    weft_e2e::wait_until_async(Duration::from_secs(10), || async {
        weft_e2e::echo_count(&v1).await.unwrap_or(0) >= 1
    })
    .await
    .unwrap();
    proxy
        .write_config(&reviews_mesh(&backends, &to("v2")))
        .unwrap();
    proxy.wait_for_version(2).await.unwrap();
    assert_eq!(
        proxy
            .get("reviews", "/")
            .await
            .unwrap()
            .header("x-echo-name"),
        Some("reviews-v2")
    );
    let reply = in_flight.await.unwrap().unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-echo-name"), Some("reviews-v1"));
}
