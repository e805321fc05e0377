//! End-to-end tests of the local mode: `weft echo --call` (an app that calls other services
//! through a sidecar's outbound listener, as `weft run` sets it up), `weft run` (a command next
//! to its control-plane sidecar), `weft up` (a whole mesh from one file) and `weft demo`.
//!
//! Processes that start processes run in their own process group ([`GroupProcess`]): after a
//! SIGTERM the test checks that nothing of the tree is left, and a failing test kills it all.

// Helpers outside #[test] functions: a failed step is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Version};
use http_body_util::Full;
use serde_json::Value;
use weft_e2e::http::{Client, Reply};
use weft_e2e::{GroupProcess, TestControl, TestEcho, TestProxy, reviews_mesh, wait_until_async};

/// How long a mesh may take to route a request end to end (certificates, config, ACKs).
const MESH_DEADLINE: Duration = Duration::from_secs(60);
/// How long a supervisor may take to stop its tree after SIGTERM (5 s grace per level).
const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// Seed 001's header route: jason to v2, everyone else to v1.
const JASON_TO_V2: &str =
    include_str!("../../examples/seeds/001-04-virtualservice-reviews-route.yaml");

/// GET `path` with `Host: host` and extra headers on a fresh connection to `addr`.
async fn get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<Reply> {
    let mut client = Client::connect(addr, Version::HTTP_11).await?;
    // Not `client.request`, which sets its own Host.
    let mut req = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(http::header::HOST, host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    client.send(req.body(Full::default())?).await
}

/// Polls `GET path` (Host `host`) through `addr` until the answer is 200.
async fn until_routed(addr: SocketAddr, host: &str, path: &str, explain: &GroupProcess) -> Reply {
    let started = std::time::Instant::now();
    loop {
        let reply = get(addr, host, path, &[]).await;
        if let Ok(reply) = &reply
            && reply.status == StatusCode::OK
        {
            return reply.clone();
        }
        if started.elapsed() > MESH_DEADLINE {
            panic!(
                "{host}{path} via {addr} was not routed within {MESH_DEADLINE:?}: last answer \
                 {reply:?}\nstderr of the supervisor:\n{}",
                explain.stderr()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `weft echo` with `--call` and the environment `weft run` would give it; returns the
/// process and its address.
fn calling_echo(name: &str, calls: &[String], env: &[(&str, &str)]) -> (GroupProcess, SocketAddr) {
    let mut args = vec![
        "echo".to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--name".into(),
        name.into(),
        "--call-timeout".into(),
        "5s".into(),
    ];
    for call in calls {
        args.push("--call".into());
        args.push(call.clone());
    }
    let echo = GroupProcess::start(&args, env).unwrap();
    let addr = echo.listeners(1).unwrap()[0].addr;
    (echo, addr)
}

// ---------------------------------------------------------------------------------------------
// weft echo --call through a file-mode weft proxy

#[tokio::test]
async fn echo_calls_are_routed_by_the_proxy_and_forward_the_user() {
    let v1 = TestEcho::start("reviews-v1");
    let v2 = TestEcho::start("reviews-v2");
    let proxy = TestProxy::start(&reviews_mesh(&[(&v1, "v1"), (&v2, "v2")], JASON_TO_V2), &[]);
    let ratings = TestEcho::start("ratings");
    let outbound = format!("http://{}", proxy.outbound());
    let (_page, page) = calling_echo(
        "productpage",
        &[
            "http://reviews:9080/reviews/1".to_string(),
            // 127.0.0.1 is in NO_PROXY: called directly, not through the proxy.
            format!("http://{}/ratings", ratings.addr()),
        ],
        &[
            ("HTTP_PROXY", &outbound),
            ("NO_PROXY", "localhost,127.0.0.1"),
        ],
    );

    for (user, reviews) in [("jason", "reviews-v2"), ("mary", "reviews-v1")] {
        let reply = get(
            page,
            "productpage",
            "/productpage",
            &[("end-user", user), ("x-request-id", "req-1")],
        )
        .await
        .unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let body = reply.json().unwrap();
        assert_eq!(body["name"], "productpage");
        let calls = body["calls"].as_array().unwrap();
        assert_eq!(calls.len(), 2, "{body}");
        assert_eq!(calls[0]["url"], "http://reviews:9080/reviews/1");
        assert_eq!(calls[0]["status"], 200, "{body}");
        assert_eq!(calls[0]["body"]["name"], reviews, "{user}: {body}");
        assert_eq!(calls[0]["body"]["path"], "/reviews/1");
        assert_eq!(calls[0]["body"]["headers"]["end-user"], user);
        assert_eq!(calls[0]["body"]["headers"]["x-request-id"], "req-1");
        assert_eq!(calls[1]["status"], 200);
        assert_eq!(calls[1]["body"]["name"], "ratings");
        assert_eq!(calls[1]["body"]["headers"]["end-user"], user);
    }
    // The proxy saw the calls to reviews (absolute-form, authority reviews:9080), not the
    // direct ones to ratings.
    let log = proxy.wait_for_log_lines(2).await.unwrap();
    assert_eq!(log.len(), 2, "{log:?}");
    for line in &log {
        assert_eq!(line["authority"], "reviews:9080", "{line}");
    }
}

#[tokio::test]
async fn failed_echo_calls_are_reported_and_the_request_still_succeeds() {
    let v1 = TestEcho::start("reviews-v1");
    let proxy = TestProxy::start(
        &reviews_mesh(&[(&v1, "v1")], ""),
        &["--outbound-policy", "REGISTRY_ONLY"],
    );
    let outbound = format!("http://{}", proxy.outbound());
    let (_page, page) = calling_echo(
        "productpage",
        &[
            "http://reviews:9080/?status=503".to_string(),
            "http://unknown-service:9080/".to_string(),
        ],
        &[("http_proxy", &outbound)],
    );
    let reply = get(page, "productpage", "/", &[]).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json().unwrap();
    let calls = body["calls"].as_array().unwrap();
    assert_eq!(calls[0]["status"], 503, "{body}");
    assert_eq!(calls[0]["body"]["name"], "reviews-v1");
    // REGISTRY_ONLY: the proxy refuses the unknown host itself.
    assert_eq!(calls[1]["status"], 502, "{body}");
}

// ---------------------------------------------------------------------------------------------
// weft run

/// A bootstrap token for `namespace`/`sa` from the control plane's admin API.
async fn token(control: &TestControl, sa: &str) -> String {
    let mut client = Client::connect(control.admin_addr(), Version::HTTP_11)
        .await
        .unwrap();
    let req = client
        .request(Method::POST, "/api/tokens")
        .header("authorization", format!("Bearer {}", control.admin_token()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            serde_json::json!({"namespace": "default", "serviceAccount": sa}).to_string(),
        )))
        .unwrap();
    let reply = client.send(req).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json().unwrap()["token"].as_str().unwrap().to_string()
}

/// `weft run --service SERVICE ... -- COMMAND` against `control`.
async fn weft_run(
    control: &TestControl,
    service: &str,
    extra: &[&str],
    command: &[&str],
) -> GroupProcess {
    let token = token(control, service).await;
    let ca = control.data_dir().join("root-cert.pem");
    let grpc = control.grpc_addr().to_string();
    let mut args = vec![
        "run",
        "--service",
        service,
        "--control-plane",
        &grpc,
        "--ca-bundle",
        ca.to_str().unwrap(),
    ];
    args.extend(extra);
    args.push("--");
    args.extend(command);
    GroupProcess::start(&args, &[("WEFT_TOKEN", &token)]).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn run_registers_the_app_and_routes_its_calls() {
    let control = TestControl::start();
    // The app listens on PORT, which weft echo reads when --listen is not given.
    let mut reviews = weft_run(
        &control,
        "reviews",
        &["--version", "v2"],
        &["weft", "echo", "--name", "reviews-v2"],
    )
    .await;
    let reviews_lines = reviews.listeners(3).unwrap();
    let names: Vec<_> = reviews_lines
        .iter()
        .map(|l| l.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, ["outbound", "inbound", "admin"]);

    let upstream_port = free_port();
    let upstream = format!("reviews:9080:{upstream_port}");
    let client = weft_run(
        &control,
        "client",
        &["--upstream", &upstream],
        &[
            "weft",
            "echo",
            "--listen",
            "127.0.0.1:${PORT}",
            "--name",
            "client",
            "--call",
            "http://reviews:9080/from-client",
        ],
    )
    .await;
    let outbound = client.listener(4, "outbound").unwrap();
    let client_inbound = client.listener(4, "inbound").unwrap();
    assert_eq!(
        client.listener(4, "upstream/reviews:9080").unwrap(),
        SocketAddr::from(([127, 0, 0, 1], upstream_port))
    );

    // Through the client's sidecar, by name: the reviews workload registered itself.
    let reply = until_routed(outbound, "reviews:9080", "/by-name", &client).await;
    assert_eq!(reply.header("x-echo-name"), Some("reviews-v2"));
    let body = reply.json().unwrap();
    // Over mutual TLS: reviews' sidecar passed on the client's identity.
    let xfcc = body["headers"]["x-forwarded-client-cert"]
        .as_str()
        .unwrap_or_default();
    assert!(
        xfcc.contains("spiffe://cluster.local/ns/default/sa/client"),
        "{body}"
    );

    // Through the per-upstream local port.
    let reply = get(
        SocketAddr::from(([127, 0, 0, 1], upstream_port)),
        "localhost",
        "/via-upstream",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json().unwrap()["host"], "reviews:9080");
    assert_eq!(reply.header("x-echo-name"), Some("reviews-v2"));

    // The client's app calls reviews through HTTP_PROXY (its own sidecar). Its inbound is
    // PERMISSIVE, so a plaintext request reaches the app (once it has started: `weft run`
    // announces the sidecar's listeners before the app is up).
    let reply = until_routed(client_inbound, "client:9080", "/", &client).await;
    let body = reply.json().unwrap();
    assert_eq!(body["calls"][0]["status"], 200, "{body}");
    assert_eq!(body["calls"][0]["body"]["name"], "reviews-v2", "{body}");

    // SIGTERM stops the app and the sidecar; weft run exits 0 and leaves nothing behind.
    reviews.send_sigterm().unwrap();
    let status = reviews.wait_exit_async(STOP_DEADLINE).await.unwrap();
    assert!(status.success(), "{status}; stderr:\n{}", reviews.stderr());
    reviews.wait_group_gone(Duration::from_secs(10)).unwrap();
    let stderr = reviews.stderr();
    assert!(stderr.contains("[proxy] "), "{stderr}");
    assert!(stderr.contains("[app] "), "{stderr}");
}

#[tokio::test]
async fn run_exits_with_the_app_code_and_stops_the_sidecar() {
    let control = TestControl::start();
    let mut run = weft_run(
        &control,
        "batch",
        &["--ready-timeout", "10s"],
        &[
            "sh",
            "-c",
            "echo \"port=$PORT proxy=$HTTP_PROXY no=$NO_PROXY token=${WEFT_TOKEN:-none}\"; exit 7",
        ],
    )
    .await;
    run.listeners(3).unwrap();
    let status = run.wait_exit_async(MESH_DEADLINE).await.unwrap();
    assert_eq!(status.code(), Some(7), "stderr:\n{}", run.stderr());
    run.wait_group_gone(Duration::from_secs(10)).unwrap();
    let line = run
        .wait_for_line(Duration::from_secs(5), |l| l.starts_with("[app] port="))
        .unwrap();
    assert!(line.contains("proxy=http://127.0.0.1:"), "{line}");
    assert!(line.contains("no=localhost,127.0.0.1,::1"), "{line}");
    assert!(
        line.ends_with("token=none"),
        "the app does not see the bootstrap token: {line}"
    );
}

// ---------------------------------------------------------------------------------------------
// weft up

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const UP_MESH: &str = "\
apiVersion: weft.mesh/v1alpha1
kind: Mesh
controlPlane: {listen: 127.0.0.1:0, admin: 127.0.0.1:0, dataDir: data}
config: [istio/]
workloads:
- name: reviews-v1
  service: reviews
  command: [weft, echo, --name, reviews-v1]
- name: reviews-v2
  service: reviews
  version: v2
  command: [weft, echo, --listen, '127.0.0.1:${PORT}', --name, reviews-v2]
- name: client
  service: client
  command: [weft, echo, --name, client]
- name: quitter
  service: quitter
  command: [sh, -c, 'exit 3']
";

const UP_ROUTES: &str = "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v2}
";

#[tokio::test]
async fn up_runs_the_mesh_file_and_stops_everything_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "mesh.yaml", UP_MESH);
    write(dir.path(), "istio/reviews.yaml", UP_ROUTES);
    let mesh_file = dir.path().join("mesh.yaml");
    let mut up = GroupProcess::start(["up", "-f", mesh_file.to_str().unwrap()], &[]).unwrap();
    let admin = up
        .listener(2, "grpc")
        .and_then(|_| up.listener(2, "admin"))
        .unwrap();
    let line = up
        .wait_for_line(MESH_DEADLINE, |l| {
            l.starts_with("[client] listening outbound on ")
        })
        .unwrap();
    let outbound: SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();

    // The config was applied: every request goes to v2.
    let reply = until_routed(outbound, "reviews:9080", "/", &up).await;
    assert_eq!(
        reply.header("x-echo-name"),
        Some("reviews-v2"),
        "{}",
        reply.text()
    );

    // A workload that exits is reported; the others keep running.
    up.wait_for_stderr(MESH_DEADLINE, "[quitter] exited (exit code 3)")
        .unwrap();
    let reply = get(outbound, "reviews:9080", "/again", &[]).await.unwrap();
    assert_eq!(reply.header("x-echo-name"), Some("reviews-v2"));

    // The proxies registered with their workload names (quitter's left with it).
    let token = std::fs::read_to_string(dir.path().join("data/admin.token")).unwrap();
    let auth = format!("Bearer {}", token.trim());
    let names = || async {
        let mut client = Client::connect(admin, Version::HTTP_11).await.unwrap();
        let req = client
            .request(Method::GET, "/api/proxies")
            .header("authorization", &auth)
            .body(Full::default())
            .unwrap();
        let proxies: Value = client.send(req).await.unwrap().json().unwrap();
        let mut names: Vec<String> = proxies["proxies"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect();
        names.sort_unstable();
        names
    };
    let expected = ["client", "reviews-v1", "reviews-v2"];
    let listed = wait_until_async(MESH_DEADLINE, || async { names().await == expected }).await;
    assert!(listed.is_ok(), "registered proxies: {:?}", names().await);

    up.send_sigterm().unwrap();
    let status = up.wait_exit_async(STOP_DEADLINE).await.unwrap();
    assert!(status.success(), "{status}; stderr:\n{}", up.stderr());
    up.wait_group_gone(Duration::from_secs(10)).unwrap();
}

#[test]
fn up_reports_mesh_file_errors_with_their_position() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "mesh.yaml",
        "workloads:\n- name: a\n  service: s\n  comand: [x]\n",
    );
    let mesh_file = dir.path().join("mesh.yaml");
    let mut up = GroupProcess::start(["up", "-f", mesh_file.to_str().unwrap()], &[]).unwrap();
    let status = up.wait_exit(Duration::from_secs(10)).unwrap();
    assert_eq!(status.code(), Some(2));
    let stderr = up.stderr();
    assert!(stderr.contains("mesh.yaml:4:3: workloads[0]"), "{stderr}");
    assert!(stderr.contains("comand"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// weft demo

#[tokio::test]
async fn demo_passes_every_scenario() {
    let mut demo = GroupProcess::start(["demo"], &[]).unwrap();
    let status = demo
        .wait_exit_async(Duration::from_secs(300))
        .await
        .unwrap();
    let stdout = demo.stdout_lines().join("\n");
    assert!(
        status.success(),
        "{status}\nstdout:\n{stdout}\nstderr:\n{}",
        demo.stderr()
    );
    assert_eq!(stdout.matches("\n    PASS").count(), 6, "{stdout}");
    assert!(stdout.contains("demo: all 6 scenarios passed"), "{stdout}");
    for seen in [
        "reviews-v1: ",
        "end-user: jason: answered by reviews-v2 ×",
        "after: plaintext request straight to productpage's inbound: refused",
        "productpage saw its caller's identity: spiffe://cluster.local/ns/default/sa/demo-client",
        "requests took 5s or more",
        "503 ×",
    ] {
        assert!(stdout.contains(seen), "{seen:?} missing:\n{stdout}");
    }
    demo.wait_group_gone(Duration::from_secs(10)).unwrap();
}
