//! End-to-end tests of `weft control` and the CLI commands that talk to it: the apply API
//! (validation, conflicts with the watched directory, persistence across restarts), bootstrap
//! tokens, certificate signing and the Subscribe stream (snapshots, pushes, ACK/NACK status),
//! driven by the real binary and a raw gRPC client.

// Helpers outside #[test] functions: a failed step is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use weft_e2e::{TestControl, wait_until_async};
use weft_proto::certificates_client::CertificatesClient;
use weft_proto::discovery_client::DiscoveryClient;
use weft_proto::proxy_message::Kind;
use weft_proto::{Ack, Hello, Nack, ProxyMessage, ServicePort, SignRequest, Snapshot, Workload};

const WATCHED_DR: &str = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: default
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
";

const VS: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
";

const INVALID: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: broken
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
      weight: -5
";

const RATINGS_DR: &str = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ratings
spec:
  host: ratings
";

#[test]
fn apply_get_and_refusals_then_restart_keeps_state() {
    let control = TestControl::try_start(&[("dr.yaml", WATCHED_DR)]).unwrap();
    let vs = control.scratch("vs.yaml", VS);
    let vs = vs.to_str().unwrap();

    let out = control.cli(&["apply", "-f", vs]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim(), "virtualservice/reviews created");
    let out = control.cli(&["apply", "-f", vs]);
    assert_eq!(out.stdout.trim(), "virtualservice/reviews unchanged");

    let out = control.cli(&["get", "virtualservices"]);
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        vec![vec!["NAME", "NAMESPACE"], vec!["reviews", "default"]]
    );
    // The watched DestinationRule is visible too, by its short name.
    let out = control.cli(&["get", "dr", "reviews", "-n", "default", "-o", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let dr: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(dr["spec"]["subsets"][0]["name"], "v1");
    let out = control.cli(&["get", "VirtualService", "reviews", "-o", "yaml"]);
    assert!(
        out.stdout
            .contains("    - destination:\n        host: reviews\n        subset: v1\n"),
        "{}",
        out.stdout
    );

    // Invalid: refused with file:line:col, nothing applied.
    let bad = control.scratch("bad.yaml", INVALID);
    let out = control.cli(&["apply", "-f", bad.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{out:?}");
    let expected = format!(
        "{}:10:7: VirtualService default/broken: spec.http[0].route[0].weight:",
        bad.display()
    );
    assert!(out.stderr.contains(&expected), "{}", out.stderr);
    assert_eq!(control.cli(&["get", "vs", "broken"]).code, 1);
    assert_eq!(control.cli(&["get", "vs"]).stdout.lines().count(), 2);

    // The watched directory owns its resources.
    let dr = control.scratch("dr-override.yaml", WATCHED_DR);
    let out = control.cli(&["apply", "-f", dr.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("watched config directory"),
        "{}",
        out.stderr
    );
    let out = control.cli(&["delete", "destinationrule", "reviews"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(control.cli(&["delete", "vs", "nope"]).code, 1);

    // Tokens.
    let out = control.cli(&[
        "token",
        "create",
        "--namespace",
        "default",
        "--service-account",
        "reviews",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim().len(), 64);

    // A restart keeps the applied resources and the root.
    let root = control.root_cert_pem();
    let control = control.restart().unwrap();
    assert_eq!(control.root_cert_pem(), root);
    let out = control.cli(&["get", "vs", "reviews", "-o", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = control.cli(&["delete", "vs", "reviews"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim(), "virtualservice/reviews deleted");
    assert_eq!(control.cli(&["get", "vs", "reviews"]).code, 1);

    // Wrong token, unknown kind, unreachable server: usage errors.
    let out = control.cli(&["get", "nonsense"]);
    assert_eq!(out.code, 2, "{out:?}");
    let unreachable = std::process::Command::new(weft_e2e::weft_bin())
        .args(["get", "vs", "--server", "http://127.0.0.1:9"])
        .env_remove("WEFT_SERVER")
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(2));
}

fn reviews_workload() -> Workload {
    Workload {
        name: "reviews-v1-abc".into(),
        namespace: "default".into(),
        service_account: "reviews".into(),
        service: "reviews".into(),
        version: "v1".into(),
        labels: HashMap::new(),
        ports: vec![ServicePort {
            number: 9080,
            name: "http".into(),
            protocol: "HTTP".into(),
            target_port: 15006,
        }],
        address: "127.0.0.1".into(),
        health: None,
    }
}

fn hello(token: &str) -> ProxyMessage {
    ProxyMessage {
        kind: Some(Kind::Hello(Hello {
            workload: Some(reviews_workload()),
            token: token.into(),
            proxy_version: "test".into(),
            resuming: false,
        })),
    }
}

/// Opens a Subscribe stream: the sender for Ack/Nack and the snapshot stream.
async fn subscribe(
    control: &TestControl,
    first: ProxyMessage,
    channel: tonic::transport::Channel,
) -> Result<(mpsc::Sender<ProxyMessage>, tonic::Streaming<Snapshot>), tonic::Status> {
    let (tx, rx) = mpsc::channel(8);
    tx.send(first).await.unwrap();
    let _ = control;
    let response = DiscoveryClient::new(channel)
        .subscribe(ReceiverStream::new(rx))
        .await?;
    Ok((tx, response.into_inner()))
}

async fn next_snapshot(stream: &mut tonic::Streaming<Snapshot>, within: Duration) -> Snapshot {
    tokio::time::timeout(within, stream.message())
        .await
        .expect("no snapshot in time")
        .expect("stream error")
        .expect("stream ended")
}

fn resources(snapshot: &Snapshot) -> Vec<serde_json::Value> {
    serde_json::from_str(&snapshot.resources_json).unwrap()
}

fn has(resources: &[serde_json::Value], kind: &str, name: &str) -> bool {
    resources
        .iter()
        .any(|r| r["kind"] == kind && r["metadata"]["name"] == name)
}

async fn proxy_status(control: &TestControl) -> Vec<serde_json::Value> {
    let out = control.cli_async(&["proxy-status", "-o", "json"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    serde_json::from_str(&out.stdout).unwrap()
}

async fn wait_status(control: &TestControl, want: &str) {
    let reached = wait_until_async(Duration::from_secs(10), || async {
        proxy_status(control)
            .await
            .first()
            .is_some_and(|p| p["status"] == want)
    })
    .await;
    let last = proxy_status(control).await;
    assert!(reached.is_ok(), "status never became {want:?}: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_and_subscribe_over_grpc() {
    let control = TestControl::start();
    let vs = control.scratch("vs.yaml", VS);
    assert_eq!(
        control
            .cli_async(&["apply", "-f", vs.to_str().unwrap()])
            .await
            .code,
        0
    );
    let out = control
        .cli_async(&[
            "token",
            "create",
            "--namespace",
            "default",
            "--service-account",
            "reviews",
        ])
        .await;
    let token = out.stdout.trim().to_string();
    let channel = control.grpc_channel().await.unwrap();

    // Sign: the identity is the token's, whatever the CSR asks for.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.subject_alt_names = vec![rcgen::SanType::URI(
        "spiffe://cluster.local/ns/istio-system/sa/admin"
            .try_into()
            .unwrap(),
    )];
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let mut certs = CertificatesClient::new(channel.clone());
    let signed = certs
        .sign(SignRequest {
            csr_pem: csr.clone(),
            token: token.clone(),
            ttl_seconds: 3600,
        })
        .await
        .unwrap()
        .into_inner();
    let chain = weft_identity::certs_from_pem(&signed.cert_chain_pem).unwrap();
    let id = weft_identity::spiffe_id_of(&chain[0]).unwrap();
    assert_eq!(
        id.to_string(),
        "spiffe://cluster.local/ns/default/sa/reviews"
    );
    assert_eq!(signed.root_cert_pem, control.root_cert_pem());

    let forged = certs
        .sign(SignRequest {
            csr_pem: csr.clone(),
            token: "0".repeat(64),
            ttl_seconds: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(forged.code(), Code::Unauthenticated);
    let anonymous = certs
        .sign(SignRequest {
            csr_pem: csr,
            token: String::new(),
            ttl_seconds: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);

    // Subscribe without a valid token is refused.
    let err = subscribe(&control, hello("forged"), channel.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    let other = control
        .cli_async(&[
            "token",
            "create",
            "--namespace",
            "default",
            "--service-account",
            "ratings",
        ])
        .await;
    let err = subscribe(&control, hello(other.stdout.trim()), channel.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    // Hello: a snapshot with the applied config and this proxy's own registration.
    let (tx, mut stream) = subscribe(&control, hello(&token), channel.clone())
        .await
        .unwrap();
    let first = next_snapshot(&mut stream, Duration::from_secs(5)).await;
    let docs = resources(&first);
    assert!(has(&docs, "VirtualService", "reviews"), "{docs:?}");
    assert!(has(&docs, "ServiceEntry", "reviews"), "{docs:?}");
    assert!(has(&docs, "WorkloadEntry", "reviews-v1-abc"), "{docs:?}");
    let we = docs.iter().find(|r| r["kind"] == "WorkloadEntry").unwrap();
    assert_eq!(we["spec"]["address"], "127.0.0.1");
    assert_eq!(we["spec"]["serviceAccount"], "reviews");

    // ACK: SYNCED, with the certificate's expiry.
    tx.send(ProxyMessage {
        kind: Some(Kind::Ack(Ack {
            version: first.version,
        })),
    })
    .await
    .unwrap();
    wait_status(&control, "SYNCED").await;
    let status = proxy_status(&control).await;
    assert_eq!(status[0]["name"], "reviews-v1-abc");
    assert_eq!(status[0]["configVersion"], first.version);
    assert!(
        status[0]["certExpiry"]
            .as_str()
            .is_some_and(|e| e.ends_with('Z')),
        "{status:?}"
    );
    let table = control.cli_async(&["proxy-status"]).await;
    assert!(table.stdout.starts_with("NAME"), "{table:?}");
    assert!(table.stdout.contains("reviews-v1-abc"), "{table:?}");

    // Another apply: a new snapshot with a higher version, within 2 s.
    let dr = control.scratch("ratings.yaml", RATINGS_DR);
    assert_eq!(
        control
            .cli_async(&["apply", "-f", dr.to_str().unwrap()])
            .await
            .code,
        0
    );
    let second = next_snapshot(&mut stream, Duration::from_secs(2)).await;
    assert!(second.version > first.version);
    assert!(has(&resources(&second), "DestinationRule", "ratings"));
    wait_status(&control, "STALE").await;

    // NACK: reported with its reason.
    tx.send(ProxyMessage {
        kind: Some(Kind::Nack(Nack {
            version: second.version,
            error: "bad route".into(),
        })),
    })
    .await
    .unwrap();
    wait_status(&control, "NACK: bad route").await;

    // describe sees the registered endpoint.
    let out = control
        .cli_async(&["describe", "reviews", "-o", "json"])
        .await;
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["endpoints"][0]["name"], "reviews-v1-abc");
    assert_eq!(report["virtualServices"][0]["name"], "reviews");

    // With its certificate, the proxy subscribes and renews without a token.
    let identity = weft_identity::WorkloadIdentity::from_pem(
        &signed.cert_chain_pem,
        &key.serialize_pem(),
        &signed.root_cert_pem,
    )
    .unwrap();
    let mtls = control.grpc_channel_as(&identity).await.unwrap();
    let renewed = CertificatesClient::new(mtls.clone())
        .sign(SignRequest {
            csr_pem: weft_identity::new_key_and_csr().unwrap().csr_pem,
            token: String::new(),
            ttl_seconds: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let chain = weft_identity::certs_from_pem(&renewed.cert_chain_pem).unwrap();
    assert_eq!(weft_identity::spiffe_id_of(&chain[0]).unwrap(), id);
    let mut second_proxy = hello("");
    if let Some(Kind::Hello(h)) = &mut second_proxy.kind
        && let Some(w) = &mut h.workload
    {
        w.name = "reviews-v1-def".into();
    }
    let (_tx2, mut stream2) = subscribe(&control, second_proxy, mtls).await.unwrap();
    let snapshot = next_snapshot(&mut stream2, Duration::from_secs(5)).await;
    assert!(has(
        &resources(&snapshot),
        "WorkloadEntry",
        "reviews-v1-def"
    ));
    // The first proxy learns about the second endpoint.
    let pushed = next_snapshot(&mut stream, Duration::from_secs(2)).await;
    assert!(has(&resources(&pushed), "WorkloadEntry", "reviews-v1-def"));

    // Closing the first stream removes its registration; the second proxy is told.
    drop(tx);
    drop(stream);
    let pushed = next_snapshot(&mut stream2, Duration::from_secs(5)).await;
    assert!(!has(&resources(&pushed), "WorkloadEntry", "reviews-v1-abc"));
    let status = proxy_status(&control).await;
    assert_eq!(status.len(), 1, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watched_directory_edits_and_health_checks_are_pushed() {
    let control = TestControl::try_start(&[("dr.yaml", WATCHED_DR)]).unwrap();
    let token = control
        .cli_async(&[
            "token",
            "create",
            "--namespace",
            "default",
            "--service-account",
            "reviews",
        ])
        .await
        .stdout
        .trim()
        .to_string();
    // A TCP health check on a port where nothing listens yet.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut message = hello(&token);
    if let Some(Kind::Hello(h)) = &mut message.kind
        && let Some(w) = &mut h.workload
    {
        w.health = Some(weft_proto::HealthCheck {
            kind: "tcp".into(),
            path: String::new(),
            port: u32::from(port),
            period_ms: 100,
            failure_threshold: 1,
        });
    }
    let channel = control.grpc_channel().await.unwrap();
    let (_tx, mut stream) = subscribe(&control, message, channel).await.unwrap();
    let first = next_snapshot(&mut stream, Duration::from_secs(5)).await;
    let docs = resources(&first);
    assert!(has(&docs, "DestinationRule", "reviews"));
    assert!(
        has(&docs, "ServiceEntry", "reviews"),
        "registered: {docs:?}"
    );
    assert!(
        !has(&docs, "WorkloadEntry", "reviews-v1-abc"),
        "not healthy yet: {docs:?}"
    );

    // The check passes: the workload becomes an endpoint.
    let app = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let accept = tokio::spawn(async move {
        loop {
            if app.accept().await.is_err() {
                break;
            }
        }
    });
    let healthy = next_snapshot(&mut stream, Duration::from_secs(5)).await;
    assert!(has(&resources(&healthy), "WorkloadEntry", "reviews-v1-abc"));
    // It fails: removed again.
    accept.abort();
    let _ = accept.await;
    let unhealthy = next_snapshot(&mut stream, Duration::from_secs(5)).await;
    assert!(!has(
        &resources(&unhealthy),
        "WorkloadEntry",
        "reviews-v1-abc"
    ));

    // An edit of the watched directory is pushed.
    let edited = WATCHED_DR.replace(
        "version: v1}",
        "version: v1}\n  - name: v2\n    labels: {version: v2}",
    );
    std::fs::write(control.config_dir().join("dr.yaml"), edited).unwrap();
    let pushed = next_snapshot(&mut stream, Duration::from_secs(5)).await;
    let dr = resources(&pushed)
        .into_iter()
        .find(|r| r["kind"] == "DestinationRule")
        .unwrap();
    assert_eq!(dr["spec"]["subsets"][1]["name"], "v2");

    // An invalid edit is logged and the last good config keeps serving.
    std::fs::write(control.config_dir().join("dr.yaml"), INVALID).unwrap();
    let logged = wait_until_async(Duration::from_secs(5), || async {
        control
            .process()
            .stderr()
            .contains("config directory change rejected")
    })
    .await;
    assert!(logged.is_ok(), "{}", control.process().stderr());
    let out = control
        .cli_async(&["get", "dr", "reviews", "-o", "json"])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        tokio::time::timeout(Duration::from_millis(600), stream.message())
            .await
            .is_err(),
        "no snapshot for a rejected edit"
    );
}
