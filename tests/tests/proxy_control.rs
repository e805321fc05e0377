//! End-to-end tests of `weft proxy --control-plane`: the real proxy binary against an
//! in-process [`FakeControlPlane`] that speaks the real protocol (TLS with the control plane's
//! SPIFFE identity, `Certificates.Sign`, `Discovery.Subscribe`) and records what the proxy
//! does.
//!
//! Covered: bootstrap with a token, the Hello, a snapshot applied and ACKed (requests reach the
//! backend it names), an invalid snapshot NACKed while the last good config keeps serving, a
//! control plane that is down at start or goes away mid-run, and certificate rotation at half
//! life under continuous mTLS traffic between two proxies.

// Helpers outside #[test] functions: a failed step is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weft_e2e::{FakeControlPlane, PlaneEvent, TestEcho, TestPlaneProxy, wait_until_async};

/// How long a condition (ready, an ACK, a reconnection) may take to become true.
const DEADLINE: Duration = Duration::from_secs(20);
/// Certificates of the fake control plane, unless a test needs short-lived ones.
const DAY: Duration = Duration::from_secs(24 * 3600);

const TOKENS: &[(&str, &str, &str)] = &[
    ("productpage-token", "default", "productpage"),
    ("ratings-token", "default", "ratings"),
];

fn spiffe(sa: &str) -> String {
    format!("spiffe://cluster.local/ns/default/sa/{sa}")
}

/// A ServiceEntry for `NAME.default.svc.cluster.local:9080` with one plaintext endpoint.
fn service_entry(name: &str, endpoint: SocketAddr) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "hosts": [format!("{name}.default.svc.cluster.local")],
            "location": "MESH_INTERNAL",
            "resolution": "STATIC",
            "ports": [{"number": 9080, "name": "http", "protocol": "HTTP"}],
            "endpoints": [{"address": endpoint.ip().to_string(), "ports": {"http": endpoint.port()}}]
        }
    })
}

fn snapshot(resources: &[Value]) -> String {
    Value::Array(resources.to_vec()).to_string()
}

async fn fake(cert_ttl: Duration) -> FakeControlPlane {
    FakeControlPlane::new(cert_ttl, TOKENS).await.unwrap()
}

/// A `productpage` proxy in front of `app`, using `control`.
fn productpage(control: &FakeControlPlane, app: &TestEcho, extra: &[&str]) -> TestPlaneProxy {
    TestPlaneProxy::start(
        control.addr(),
        &control.ca_bundle(),
        "productpage-token",
        "productpage",
        app.addr(),
        extra,
    )
    .unwrap()
}

/// GETs `reviews:9080/` through `proxy` and returns the name of the echo that answered.
async fn reviews_answer(proxy: &TestPlaneProxy) -> String {
    let reply = proxy.get("reviews:9080", "/").await.unwrap();
    assert_eq!(reply.status, 200, "{reply:?} {}", reply.text());
    reply.header("x-echo-name").unwrap_or_default().to_string()
}

#[tokio::test]
async fn bootstraps_subscribes_and_serves_the_snapshot() {
    let reviews = TestEcho::start("reviews-v1");
    let app = TestEcho::start("productpage");
    let mut control = fake(DAY).await;
    control.start().await.unwrap();
    control.push(1, &snapshot(&[service_entry("reviews", reviews.addr())]));

    let proxy = productpage(&control, &app, &["--labels", "team=web"]);
    proxy.wait_ready(DEADLINE).await.unwrap();
    control.wait_for(&PlaneEvent::Ack(1), 1).await.unwrap();
    assert_eq!(reviews_answer(&proxy).await, "reviews-v1");

    // The first certificate was asked for with the token and names the token's identity.
    assert_eq!(control.signed(), vec![(spiffe("productpage"), false)]);
    // The Hello says who the proxy is and where its inbound listener is.
    let hellos = control.hellos();
    assert_eq!(hellos.len(), 1, "{hellos:?}");
    let hello = &hellos[0];
    let suffix = hello.name.strip_prefix("productpage-v1-").unwrap();
    assert!(suffix.len() == 4 && suffix.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(
        (
            hello.namespace.as_str(),
            hello.service_account.as_str(),
            hello.service.as_str(),
            hello.version.as_str()
        ),
        ("default", "productpage", "productpage", "v1")
    );
    let labels: Vec<(&str, &str)> = hello
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        labels,
        [("app", "productpage"), ("team", "web"), ("version", "v1")]
    );
    assert_eq!(hello.address, "127.0.0.1");
    assert_eq!(hello.ports.len(), 1);
    let port = &hello.ports[0];
    assert_eq!(u16::try_from(port.number).unwrap(), app.addr().port());
    assert_eq!(
        (port.name.as_str(), port.protocol.as_str()),
        ("http", "HTTP")
    );
    assert_eq!(
        u16::try_from(port.target_port).unwrap(),
        proxy.inbound().port()
    );

    let dump = proxy.config_dump().await.unwrap();
    assert_eq!(dump["version"], 1);
    let plane = &dump["control_plane"];
    assert_eq!(plane["address"], control.addr().to_string());
    assert_eq!(plane["connected"], true);
    assert_eq!(plane["applied_version"], 1);
    assert_eq!(plane["proxy_name"], hello.name.as_str());
    assert_eq!(plane["certificate"]["spiffe_id"], spiffe("productpage"));
    assert!(plane["certificate"]["expires"].is_string(), "{plane}");
    assert!(plane["last_nack"].is_null());
    assert_eq!(dump["identity"]["spiffe_id"], spiffe("productpage"));

    let metrics = weft_e2e::http::get(proxy.admin(), http::Version::HTTP_11, "/metrics")
        .await
        .unwrap()
        .text();
    assert!(
        metrics.contains("weft_control_plane_connected 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"weft_control_plane_snapshots_total{result="ack"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn invalid_snapshots_are_nacked_and_the_last_good_config_keeps_serving() {
    let v1 = TestEcho::start("reviews-v1");
    let v2 = TestEcho::start("reviews-v2");
    let app = TestEcho::start("productpage");
    let mut control = fake(DAY).await;
    control.start().await.unwrap();
    control.push(1, &snapshot(&[service_entry("reviews", v1.addr())]));
    let proxy = productpage(&control, &app, &[]);
    proxy.wait_ready(DEADLINE).await.unwrap();
    control.wait_for(&PlaneEvent::Ack(1), 1).await.unwrap();

    // A negative weight: rejected as Istio's validation rejects it.
    let negative_weight = json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "default"},
        "spec": {"hosts": ["reviews"], "http": [{"route": [
            {"destination": {"host": "reviews"}, "weight": -5}
        ]}]}
    });
    control.push(
        2,
        &snapshot(&[service_entry("reviews", v2.addr()), negative_weight]),
    );
    let error = control.wait_for_nack(2).await.unwrap();
    assert!(error.contains("control-plane[1]"), "{error}");
    assert!(error.contains("weight"), "{error}");
    assert_eq!(reviews_answer(&proxy).await, "reviews-v1");

    // A field this proxy does not know (version skew): never silently dropped.
    let unknown_field = json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "deny-admin", "namespace": "default"},
        "spec": {"action": "DENY", "rules": [{"to": [{"operation": {"pathz": ["/admin"]}}]}]}
    });
    control.push(
        3,
        &snapshot(&[service_entry("reviews", v2.addr()), unknown_field]),
    );
    let error = control.wait_for_nack(3).await.unwrap();
    assert!(error.contains("pathz"), "{error}");
    // Not JSON at all.
    control.push(4, "this is not JSON");
    let error = control.wait_for_nack(4).await.unwrap();
    assert!(error.contains("not a JSON array"), "{error}");

    for _ in 0..5 {
        assert_eq!(reviews_answer(&proxy).await, "reviews-v1");
    }
    let dump = proxy.config_dump().await.unwrap();
    assert_eq!(dump["version"], 1);
    assert_eq!(dump["control_plane"]["applied_version"], 1);
    assert_eq!(dump["control_plane"]["last_snapshot_version"], 4);
    assert_eq!(dump["control_plane"]["last_nack"]["version"], 4);
    assert_eq!(dump["control_plane"]["nacks"], 3);
    assert!(dump["last_error"]["message"].is_string(), "{dump}");
    assert_eq!(proxy.ready_status().await.unwrap(), 200);

    // A good snapshot is applied again.
    control.push(5, &snapshot(&[service_entry("reviews", v2.addr())]));
    control.wait_for(&PlaneEvent::Ack(5), 1).await.unwrap();
    assert_eq!(reviews_answer(&proxy).await, "reviews-v2");
    let dump = proxy.config_dump().await.unwrap();
    // The proxy numbers its configs itself (the control plane's numbering restarts with it).
    assert_eq!(dump["version"], 2);
    assert_eq!(dump["control_plane"]["applied_version"], 5);
    assert!(dump["last_error"].is_null(), "{dump}");
}

#[tokio::test]
async fn retries_until_the_control_plane_comes_up() {
    let reviews = TestEcho::start("reviews-v1");
    let app = TestEcho::start("productpage");
    let mut control = fake(DAY).await;
    control.push(1, &snapshot(&[service_entry("reviews", reviews.addr())]));

    // The listeners are announced although the control plane is unreachable.
    let proxy = productpage(&control, &app, &[]);
    wait_until_async(DEADLINE, || async {
        let dump = proxy.config_dump().await.unwrap();
        dump["control_plane"]["last_error"].is_string()
    })
    .await
    .unwrap();
    let dump = proxy.config_dump().await.unwrap();
    assert_eq!(dump["control_plane"]["connected"], false);
    assert_eq!(dump["version"], 0, "the config starts empty");
    assert_eq!(proxy.ready_status().await.unwrap(), 503);

    control.start().await.unwrap();
    proxy.wait_ready(DEADLINE).await.unwrap();
    control.wait_for(&PlaneEvent::Ack(1), 1).await.unwrap();
    assert_eq!(reviews_answer(&proxy).await, "reviews-v1");
    assert_eq!(control.signed(), vec![(spiffe("productpage"), false)]);
}

#[tokio::test]
async fn keeps_serving_without_the_control_plane_and_resubscribes() {
    let v1 = TestEcho::start("reviews-v1");
    let v2 = TestEcho::start("reviews-v2");
    let app = TestEcho::start("productpage");
    let mut control = fake(DAY).await;
    control.start().await.unwrap();
    control.push(1, &snapshot(&[service_entry("reviews", v1.addr())]));
    let proxy = productpage(&control, &app, &[]);
    proxy.wait_ready(DEADLINE).await.unwrap();
    control.wait_for(&PlaneEvent::Ack(1), 1).await.unwrap();

    control.stop().await;
    wait_until_async(DEADLINE, || async {
        proxy.config_dump().await.unwrap()["control_plane"]["connected"] == false
    })
    .await
    .unwrap();
    for _ in 0..5 {
        assert_eq!(reviews_answer(&proxy).await, "reviews-v1");
    }
    assert_eq!(proxy.ready_status().await.unwrap(), 200);

    // Back, with a change made while it was away.
    control.push(2, &snapshot(&[service_entry("reviews", v2.addr())]));
    control.start().await.unwrap();
    control.wait_for(&PlaneEvent::Ack(2), 1).await.unwrap();
    assert_eq!(control.hellos().len(), 2);
    assert_eq!(reviews_answer(&proxy).await, "reviews-v2");
    let dump = proxy.config_dump().await.unwrap();
    assert_eq!(dump["control_plane"]["connected"], true);
    assert_eq!(dump["control_plane"]["applied_version"], 2);
    // The certificate outlived the outage: no second bootstrap.
    assert_eq!(control.signed(), vec![(spiffe("productpage"), false)]);
}

#[tokio::test]
async fn an_expired_certificate_is_replaced_with_the_bootstrap_token() {
    let reviews = TestEcho::start("reviews-v1");
    let app = TestEcho::start("productpage");
    let mut control = fake(Duration::from_secs(3)).await;
    control.start().await.unwrap();
    control.push(1, &snapshot(&[service_entry("reviews", reviews.addr())]));
    let proxy = productpage(&control, &app, &[]);
    proxy.wait_ready(DEADLINE).await.unwrap();

    // Away for longer than the certificate lives: renewals fail until it has expired.
    control.stop().await;
    let expiry = control.last_expiry().unwrap();
    wait_until_async(DEADLINE, || {
        std::future::ready(std::time::SystemTime::now() > expiry + Duration::from_millis(500))
    })
    .await
    .unwrap();
    assert_eq!(reviews_answer(&proxy).await, "reviews-v1");

    // Back: an expired certificate cannot renew itself, so the token is used again.
    control.start().await.unwrap();
    let bootstrap = PlaneEvent::Signed {
        id: spiffe("productpage"),
        renewal: false,
    };
    control.wait_for(&bootstrap, 2).await.unwrap();
    control.wait_for(&PlaneEvent::Ack(1), 2).await.unwrap();
    assert_eq!(reviews_answer(&proxy).await, "reviews-v1");
    let dump = proxy.config_dump().await.unwrap();
    assert_eq!(dump["control_plane"]["connected"], true);
    assert!(
        dump["identity"]["generation"].as_u64().unwrap() >= 2,
        "{dump}"
    );
}

/// The generation of a proxy's certificate, from `/config_dump`.
async fn generation(proxy: &TestPlaneProxy) -> u64 {
    proxy.config_dump().await.unwrap()["identity"]["generation"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test]
async fn rotates_certificates_at_half_life_under_load() {
    // Certificates live 4 s: renewed about every 2 s.
    let mut control = fake(Duration::from_secs(4)).await;
    control.start().await.unwrap();
    let ratings_app = TestEcho::start("ratings");
    let ratings = TestPlaneProxy::start(
        control.addr(),
        &control.ca_bundle(),
        "ratings-token",
        "ratings",
        ratings_app.addr(),
        &["--service-port", "9080"],
    )
    .unwrap();
    let app = TestEcho::start("productpage");
    let client = productpage(&control, &app, &[]);
    // `ratings` through its sidecar's inbound listener, with mutual TLS (STRICT), and a new
    // connection (so a new handshake with the current certificates) for every request.
    let inbound = ratings.inbound();
    let resources = [
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "ServiceEntry",
            "metadata": {"name": "ratings", "namespace": "default"},
            "spec": {
                "hosts": ["ratings.default.svc.cluster.local"],
                "location": "MESH_INTERNAL",
                "resolution": "STATIC",
                "ports": [{"number": 9080, "name": "http", "protocol": "HTTP"}],
                "endpoints": [{
                    "address": inbound.ip().to_string(),
                    "ports": {"http": inbound.port()},
                    "labels": {"app": "ratings", "security.istio.io/tlsMode": "istio"},
                    "serviceAccount": "ratings"
                }]
            }
        }),
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": "ratings", "namespace": "default"},
            "spec": {
                "host": "ratings",
                "trafficPolicy": {"connectionPool": {"http": {"maxRequestsPerConnection": 1}}}
            }
        }),
        json!({
            "apiVersion": "security.istio.io/v1",
            "kind": "PeerAuthentication",
            "metadata": {"name": "default", "namespace": "default"},
            "spec": {"mtls": {"mode": "STRICT"}}
        }),
    ];
    control.push(1, &snapshot(&resources));
    ratings.wait_ready(DEADLINE).await.unwrap();
    client.wait_ready(DEADLINE).await.unwrap();

    // Continuous requests until both proxies have rotated twice.
    let started = Instant::now();
    let mut hashes = BTreeSet::new();
    let mut requests = 0;
    loop {
        let reply = client.get("ratings:9080", "/").await.unwrap();
        requests += 1;
        assert_eq!(
            reply.status,
            200,
            "request {requests} after {:?}: {reply:?} {}",
            started.elapsed(),
            reply.text()
        );
        let body = reply.json().unwrap();
        let xfcc = body["headers"]["x-forwarded-client-cert"]
            .as_str()
            .unwrap_or_else(|| panic!("no XFCC: {body}"))
            .to_string();
        assert!(
            xfcc.contains(&format!("URI={}", spiffe("productpage"))),
            "{xfcc}"
        );
        let hash = xfcc
            .split(';')
            .find_map(|kv| kv.strip_prefix("Hash="))
            .unwrap()
            .to_string();
        hashes.insert(hash);
        // Done once both have rotated twice and the server side has seen the client's
        // successive certificates (new handshakes present the renewed one).
        if requests % 20 == 0
            && hashes.len() >= 3
            && generation(&client).await >= 3
            && generation(&ratings).await >= 3
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no two rotations seen in 30 s ({} client certificates seen, {requests} requests): {:?}",
            hashes.len(),
            control.signed()
        );
    }
    let signed = control.signed();
    for sa in ["productpage", "ratings"] {
        let renewals = signed
            .iter()
            .filter(|(id, renewal)| *id == spiffe(sa) && *renewal)
            .count();
        assert!(renewals >= 2, "{sa}: {signed:?}");
        let bootstraps = signed
            .iter()
            .filter(|(id, renewal)| *id == spiffe(sa) && !*renewal)
            .count();
        assert_eq!(
            bootstraps, 1,
            "{sa} renewed over mTLS, not with its token: {signed:?}"
        );
    }
    // The config stream stayed up through the rotations.
    assert_eq!(control.hellos().len(), 2, "{:?}", control.events());
}
