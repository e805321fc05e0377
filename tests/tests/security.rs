//! End-to-end tests of mesh security in `weft proxy`: mutual TLS between a client-side and a
//! server-side proxy (auto mTLS, DestinationRule `tls` modes, identities from two CAs,
//! certificate rotation under load), and the inbound policies of the server side
//! (PeerAuthentication, `x-forwarded-client-cert`, path normalization before
//! AuthorizationPolicy, gRPC denials, RequestAuthentication with JWTs).
//!
//! Every test runs real processes on 127.0.0.1: a `weft echo` app, the `weft proxy` sidecar in
//! front of it (`--inbound`, `--app`, `--identity`), and client proxies whose ServiceEntry
//! points at that inbound listener with `security.istio.io/tlsMode: istio`. Identities come
//! from `weft ca`.

// Helpers outside #[test] functions: a failed step is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::HOST;
use http::{Method, Request, StatusCode, Version};
use http_body_util::Full;
use serde_json::{Value, json};
use weft_e2e::http::{Client, Reply};
use weft_e2e::raw::{RawResponse, raw_get};
use weft_e2e::{TestCa, TestEcho, TestProxy, echo_count, sidecar_service, wait_until_async};

/// How long a condition (a reload, a rotation, a log line) may take to become true.
const DEADLINE: Duration = Duration::from_secs(10);

/// The service the client proxies call: the server sidecar's ServiceEntry host and port.
const REVIEWS: &str = "reviews:9080";

const XFCC: &str = "x-forwarded-client-cert";

/// `spiffe://cluster.local/ns/default/sa/SA`.
fn spiffe(sa: &str) -> String {
    format!("spiffe://cluster.local/ns/default/sa/{sa}")
}

// ---------------------------------------------------------------------------------------------
// Workloads

/// An app (`weft echo`) behind its sidecar, which has an inbound listener and an identity.
struct Server {
    echo: TestEcho,
    proxy: TestProxy,
    identity: PathBuf,
    /// The service account it runs as.
    sa: String,
}

impl Server {
    /// Starts the app `app` and its sidecar in namespace `default` with `config`, running as
    /// service account `sa` (certificate from `ca`) with labels `labels` (`k=v,...`).
    fn start(ca: &TestCa, config: &str, app: &str, sa: &str, labels: &str) -> Server {
        let identity = ca.issue(&spiffe(sa));
        let echo = TestEcho::start(app);
        let app_addr = echo.addr().to_string();
        let identity_dir = identity.display().to_string();
        let proxy = TestProxy::start(
            config,
            &[
                "--inbound",
                "127.0.0.1:0",
                "--app",
                &app_addr,
                "--identity",
                &identity_dir,
                "--namespace",
                "default",
                "--service-account",
                sa,
                "--labels",
                labels,
            ],
        );
        Server {
            echo,
            proxy,
            identity,
            sa: sa.to_string(),
        }
    }

    fn inbound(&self) -> SocketAddr {
        self.proxy.inbound()
    }

    /// Requests the app has served.
    async fn app_count(&self) -> u64 {
        echo_count(&self.echo).await.unwrap()
    }

    /// A plaintext connection straight to the inbound listener.
    async fn plaintext(&self, version: Version) -> Client {
        Client::connect(self.inbound(), version).await.unwrap()
    }

    /// Replaces the sidecar's config and waits until it is in effect.
    async fn reconfigure(&self, config: &str, version: u64) {
        reload(&self.proxy, config, version).await;
    }
}

/// Replaces `proxy`'s config and waits until `version` is active.
async fn reload(proxy: &TestProxy, config: &str, version: u64) {
    proxy.write_config(config).unwrap();
    proxy.wait_for_version(version).await.unwrap();
}

/// A client-side proxy running as `sa` with the certificate in `identity`, whose config is
/// `server`'s ServiceEntry (host `reviews`, with the server's service account) plus `extra`.
fn start_client(server: &Server, identity: &Path, sa: &str, extra: &str) -> TestProxy {
    start_client_with(&client_config(server, extra), identity, sa)
}

/// A client-side proxy running as `sa` with the certificate in `identity` and `config`.
fn start_client_with(config: &str, identity: &Path, sa: &str) -> TestProxy {
    TestProxy::start(
        config,
        &[
            "--identity",
            &identity.display().to_string(),
            "--namespace",
            "default",
            "--service-account",
            sa,
            "--labels",
            &format!("app={sa}"),
        ],
    )
}

fn client_config(server: &Server, extra: &str) -> String {
    let se = sidecar_service("reviews", server.inbound(), Some(&server.sa));
    if extra.is_empty() {
        se
    } else {
        format!("{se}---\n{extra}")
    }
}

/// The usual pair: `reviews` (its sidecar configured with `server_config`) called by the
/// `productpage` sidecar (configured with the ServiceEntry plus `client_extra`), both with
/// certificates of one CA.
struct Mesh {
    server: Server,
    client: TestProxy,
    client_identity: PathBuf,
    // Last: the identity directories live in the CA's directory.
    _ca: TestCa,
}

impl Mesh {
    fn start(server_config: &str, client_extra: &str) -> Mesh {
        let ca = TestCa::new("cluster.local");
        let server = Server::start(
            &ca,
            server_config,
            "reviews",
            "reviews",
            "app=reviews,version=v1",
        );
        let client_identity = ca.issue(&spiffe("productpage"));
        let client = start_client(&server, &client_identity, "productpage", client_extra);
        Mesh {
            server,
            client,
            client_identity,
            _ca: ca,
        }
    }
}

/// GET `path` through `proxy` to `reviews` on a fresh HTTP/1.1 connection.
async fn call(proxy: &TestProxy, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut client = proxy.client(Version::HTTP_11).await.unwrap();
    client.get(REVIEWS, path, headers).await.unwrap()
}

/// The request headers the echo app saw.
fn app_headers(reply: &Reply) -> Value {
    assert!(
        reply.header("x-echo-name").is_some(),
        "not answered by the app: {reply:?} {}",
        reply.text()
    );
    reply.json().unwrap()["headers"].clone()
}

/// The `x-forwarded-client-cert` the app saw, split into its fields.
fn xfcc(reply: &Reply) -> Option<BTreeMap<String, String>> {
    let headers = app_headers(reply);
    let value = headers[XFCC].as_str()?;
    Some(
        value
            .split(';')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_string(), v.to_string())
            })
            .collect(),
    )
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Asserts the XFCC of a request from `client_sa`'s proxy (certificate in `client_identity`)
/// to the `reviews` sidecar.
fn assert_xfcc(reply: &Reply, client_sa: &str, client_identity: &Path) {
    let fields = xfcc(reply).unwrap_or_else(|| panic!("no {XFCC} at the app: {}", reply.text()));
    assert_eq!(
        fields.get("By").map(String::as_str),
        Some(spiffe("reviews").as_str()),
        "{fields:?}"
    );
    assert_eq!(
        fields.get("URI").map(String::as_str),
        Some(spiffe(client_sa).as_str()),
        "{fields:?}"
    );
    assert_eq!(
        fields.get("Subject").map(String::as_str),
        Some("\"\""),
        "{fields:?}"
    );
    let hash = fields.get("Hash").map(String::as_str).unwrap_or_default();
    assert!(is_sha256_hex(hash), "Hash {hash:?} in {fields:?}");
    assert_eq!(
        hash,
        weft_e2e::tls::cert_hash(client_identity).unwrap(),
        "the hash of the client's certificate"
    );
}

/// The access-log line of the request to `path` (waits for it).
async fn log_line(proxy: &TestProxy, path: &str) -> Value {
    let mut found = None;
    let _ = wait_until_async(DEADLINE, || {
        found = proxy
            .access_log()
            .into_iter()
            .find(|l| l["path"].as_str() == Some(path));
        std::future::ready(found.is_some())
    })
    .await;
    found.unwrap_or_else(|| {
        panic!(
            "no access-log line for {path}; log: {:#?}\nstderr:\n{}",
            proxy.access_log(),
            proxy.process().stderr()
        )
    })
}

fn flags(line: &Value) -> Vec<String> {
    line["response_flags"]
        .as_str()
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Policies

/// Mesh-wide STRICT mTLS (root namespace, no selector).
const MESH_STRICT: &str = "apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
";

/// Seed 000's namespace-wide STRICT PeerAuthentication, verbatim.
const SEED_NAMESPACE_STRICT: &str =
    include_str!("../../examples/seeds/000-02-peerauthentication-default.yaml");

/// Denies every path under `/admin` (and `/admin` itself, `/admin.Admin/...` for gRPC).
const DENY_ADMIN: &str = "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: default}
spec:
  action: DENY
  rules:
  - to:
    - operation: {paths: [\"/admin*\"]}
";

/// A DestinationRule for `reviews` with the given `tls` block (flow YAML).
fn destination_rule_tls(tls: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews, namespace: default}}
spec:
  host: reviews
  trafficPolicy:
    tls: {tls}
"
    )
}

// ---------------------------------------------------------------------------------------------
// 1. mTLS round trip

#[tokio::test]
async fn mtls_round_trip_hands_both_identities_to_the_app() {
    let mesh = Mesh::start("", "");

    let mut http1 = mesh.client.client(Version::HTTP_11).await.unwrap();
    let reply = http1.get(REVIEWS, "/reviews/1", &[]).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("x-echo-name"), Some("reviews"));
    let body = reply.json().unwrap();
    assert_eq!(
        body["protocol"], "HTTP/1.1",
        "the app speaks the caller's protocol"
    );
    assert_eq!(body["host"], REVIEWS, "the app sees the original Host");
    assert!(
        body["headers"].get("x-weft-original-protocol").is_none(),
        "the hop's own header stays between the proxies: {body:#}"
    );
    assert_xfcc(&reply, "productpage", &mesh.client_identity);

    let mut h2c = mesh.client.client(Version::HTTP_2).await.unwrap();
    let reply = h2c.get(REVIEWS, "/reviews/2", &[]).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    // weft echo spells HTTP/2 as "HTTP/2.0".
    assert_eq!(reply.json().unwrap()["protocol"], "HTTP/2.0");
    assert_xfcc(&reply, "productpage", &mesh.client_identity);

    let inbound = mesh.server.inbound().to_string();
    let app_cluster = format!("inbound|{}||", mesh.server.echo.addr().port());
    for path in ["/reviews/1", "/reviews/2"] {
        let server = log_line(&mesh.server.proxy, path).await;
        assert_eq!(server["response_code"], 200, "{server:#}");
        assert_eq!(server["response_flags"], "-", "{server:#}");
        assert_eq!(
            server["response_code_details"], "via_upstream",
            "{server:#}"
        );
        assert_eq!(server["authority"], REVIEWS, "{server:#}");
        assert_eq!(server["upstream_cluster"], app_cluster, "{server:#}");
        assert_eq!(server["downstream_local_address"], inbound, "{server:#}");
        let client = log_line(&mesh.client, path).await;
        assert_eq!(client["response_code"], 200, "{client:#}");
        assert_eq!(client["upstream_host"], inbound, "{client:#}");
    }
    assert_eq!(mesh.server.app_count().await, 2);
}

// ---------------------------------------------------------------------------------------------
// 2. STRICT

/// A plaintext request straight to the inbound listener: `None` when the connection was
/// closed without an HTTP response.
async fn plaintext_get(server: &Server, path: &str, extra: &[&str]) -> Option<RawResponse> {
    raw_get(server.inbound(), path, REVIEWS, extra)
        .await
        .unwrap()
}

#[tokio::test]
async fn strict_closes_plaintext_and_serves_mtls() {
    let mesh = Mesh::start(MESH_STRICT, "");
    let refused = plaintext_get(&mesh.server, "/plain", &[]).await;
    assert!(
        refused.is_none(),
        "STRICT must close plaintext connections, got {refused:?}"
    );
    // An HTTP/2 plaintext client fails too.
    let h2 = Client::connect(mesh.server.inbound(), Version::HTTP_2).await;
    let h2 = match h2 {
        Ok(mut c) => c.get("/plain-h2").await.map(|r| r.status),
        Err(err) => Err(err),
    };
    assert!(h2.is_err(), "h2c plaintext under STRICT: {h2:?}");

    let reply = call(&mesh.client, "/strict", &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_xfcc(&reply, "productpage", &mesh.client_identity);
    assert_eq!(mesh.server.app_count().await, 1, "only the mTLS request");
}

#[tokio::test]
async fn peer_authentication_scopes_and_port_level_modes() {
    let ca = TestCa::new("cluster.local");
    // Seed 000: namespace-wide STRICT.
    let server = Server::start(
        &ca,
        SEED_NAMESPACE_STRICT,
        "reviews",
        "reviews",
        "app=reviews,version=v1",
    );
    assert!(plaintext_get(&server, "/ns-strict", &[]).await.is_none());

    // A workload policy overrides the namespace: PERMISSIVE for app=reviews.
    let workload_permissive = format!(
        "{SEED_NAMESPACE_STRICT}---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: reviews, namespace: default}}
spec:
  selector: {{matchLabels: {{app: reviews}}}}
  mtls: {{mode: PERMISSIVE}}
"
    );
    server.reconfigure(&workload_permissive, 2).await;
    let reply = plaintext_get(&server, "/workload-permissive", &[]).await;
    assert_eq!(reply.map(|r| r.status), Some(200));

    // A workload policy for other labels does not apply.
    server
        .reconfigure(
            &workload_permissive.replace("app: reviews", "app: ratings"),
            3,
        )
        .await;
    assert!(
        plaintext_get(&server, "/other-workload", &[])
            .await
            .is_none()
    );

    // portLevelMtls, keyed by the app's port, wins over the workload mode.
    let port = server.echo.addr().port();
    let port_level = format!(
        "apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: reviews, namespace: default}}
spec:
  selector: {{matchLabels: {{app: reviews}}}}
  mtls: {{mode: STRICT}}
  portLevelMtls:
    {port}: {{mode: PERMISSIVE}}
"
    );
    server.reconfigure(&port_level, 4).await;
    let reply = plaintext_get(&server, "/port-permissive", &[]).await;
    assert_eq!(reply.map(|r| r.status), Some(200));
    // ... and a port that is not the app's changes nothing.
    server
        .reconfigure(&port_level.replace(&format!("{port}:"), "1:"), 5)
        .await;
    assert!(plaintext_get(&server, "/other-port", &[]).await.is_none());
    assert_eq!(server.app_count().await, 2);
}

#[tokio::test]
async fn a_policy_written_right_after_start_takes_effect() {
    // A STRICT policy written the moment the sidecar says it listens must not be lost (the
    // config watcher has to compare against the files the first config was loaded from).
    let ca = TestCa::new("cluster.local");
    let server = Server::start(&ca, "", "reviews", "reviews", "app=reviews");
    server.proxy.write_config(MESH_STRICT).unwrap();
    let reloaded = server.proxy.wait_for_version(2).await;
    assert!(
        reloaded.is_ok(),
        "the config written right after start was never loaded: {reloaded:?}\nstderr:\n{}",
        server.proxy.process().stderr()
    );
    assert!(plaintext_get(&server, "/after-strict", &[]).await.is_none());
}

// ---------------------------------------------------------------------------------------------
// 3. PERMISSIVE and XFCC sanitizing

const FORGED_XFCC: &str = "By=spiffe://cluster.local/ns/default/sa/reviews;\
Hash=0000000000000000000000000000000000000000000000000000000000000000;\
Subject=\"\";URI=spiffe://cluster.local/ns/default/sa/admin";

#[tokio::test]
async fn permissive_serves_plaintext_without_a_client_cert_header() {
    let mesh = Mesh::start("", "");

    let forged = format!("{XFCC}: {FORGED_XFCC}");
    let reply = plaintext_get(&mesh.server, "/plain", &[&forged])
        .await
        .expect("PERMISSIVE serves plaintext");
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["path"], "/plain");
    assert!(
        body["headers"].get(XFCC).is_none(),
        "a plaintext client must not pass an {XFCC}: {body:#}"
    );

    // h2c plaintext, forged header too.
    let mut h2 = mesh.server.plaintext(Version::HTTP_2).await;
    let req = h2
        .request(Method::GET, "/plain-h2")
        .header(XFCC, FORGED_XFCC)
        .body(Full::default())
        .unwrap();
    let reply = h2.send(req).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(xfcc(&reply), None, "{}", reply.text());
    assert_eq!(reply.json().unwrap()["protocol"], "HTTP/2.0");

    // Over mTLS the forged value is replaced by the verified one.
    let reply = call(&mesh.client, "/mtls", &[(XFCC, FORGED_XFCC)]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_xfcc(&reply, "productpage", &mesh.client_identity);
    assert_eq!(mesh.server.app_count().await, 3);
}

// ---------------------------------------------------------------------------------------------
// 4. A certificate from another CA

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_refused() {
    let ca = TestCa::new("cluster.local");
    let server = Server::start(
        &ca,
        MESH_STRICT,
        "reviews",
        "reviews",
        "app=reviews,version=v1",
    );
    let other_ca = TestCa::new("cluster.local");
    let foreign = other_ca.issue(&spiffe("productpage"));
    let client = start_client(&server, &foreign, "productpage", "");

    let reply = call(&client, "/foreign", &[]).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text()
    );
    let line = log_line(&client, "/foreign").await;
    assert_eq!(line["response_code"], 503, "{line:#}");
    assert!(flags(&line).contains(&"UF".to_string()), "{line:#}");
    assert_eq!(
        server.app_count().await,
        0,
        "the app never sees the request"
    );
    assert!(
        server.proxy.access_log().is_empty(),
        "no request got past the handshake: {:#?}",
        server.proxy.access_log()
    );
}

// ---------------------------------------------------------------------------------------------
// 5. DestinationRule tls modes

#[tokio::test]
async fn destination_rule_tls_modes_override_auto_mtls() {
    let mesh = Mesh::start(
        MESH_STRICT,
        &destination_rule_tls(&format!(
            "{{mode: ISTIO_MUTUAL, subjectAltNames: [\"{}\"]}}",
            spiffe("reviews")
        )),
    );
    // The expected identity is the server's: mTLS works.
    let reply = call(&mesh.client, "/expected-sa", &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_xfcc(&reply, "productpage", &mesh.client_identity);

    // subjectAltNames naming someone else: the server's certificate is refused.
    let someone_else = destination_rule_tls(&format!(
        "{{mode: ISTIO_MUTUAL, subjectAltNames: [\"{}\"]}}",
        spiffe("someone-else")
    ));
    reload(&mesh.client, &client_config(&mesh.server, &someone_else), 2).await;
    let reply = call(&mesh.client, "/someone-else", &[]).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text()
    );
    let line = log_line(&mesh.client, "/someone-else").await;
    assert!(flags(&line).contains(&"UF".to_string()), "{line:#}");

    // DISABLE sends plaintext, which STRICT closes.
    let disable = destination_rule_tls("{mode: DISABLE}");
    reload(&mesh.client, &client_config(&mesh.server, &disable), 3).await;
    let reply = call(&mesh.client, "/disable-strict", &[]).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text()
    );
    assert_eq!(mesh.server.app_count().await, 1);

    // DISABLE against PERMISSIVE: served, without a client certificate.
    mesh.server.reconfigure("", 2).await;
    let reply = call(&mesh.client, "/disable-permissive", &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(xfcc(&reply), None, "plaintext: no {XFCC}");
    assert_eq!(mesh.server.app_count().await, 2);
}

/// The `reviews` ServiceEntry pointing at `server`, its endpoint run by `sa` (if any), the
/// entry naming `sans` (if any).
fn service_entry_expecting(server: &Server, sa: Option<&str>, sans: &[&str]) -> String {
    let se = sidecar_service("reviews", server.inbound(), sa);
    if sans.is_empty() {
        return se;
    }
    let sans: Vec<String> = sans
        .iter()
        .map(|sa| format!("\"{}\"", spiffe(sa)))
        .collect();
    se.replace(
        "  location: MESH_INTERNAL",
        &format!(
            "  subjectAltNames: [{}]\n  location: MESH_INTERNAL",
            sans.join(", ")
        ),
    )
}

#[tokio::test]
async fn the_expected_server_identity_comes_from_the_service_entry() {
    let ca = TestCa::new("cluster.local");
    let server = Server::start(&ca, "", "reviews", "reviews", "app=reviews");
    let identity = ca.issue(&spiffe("productpage"));
    // (endpoint serviceAccount, ServiceEntry subjectAltNames, expected status)
    let cases: [(Option<&str>, &[&str], StatusCode); 5] = [
        (Some("someone-else"), &[], StatusCode::SERVICE_UNAVAILABLE),
        // The endpoint's service account wins over the entry's names.
        (
            Some("someone-else"),
            &["reviews"],
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        (None, &["someone-else"], StatusCode::SERVICE_UNAVAILABLE),
        (None, &["someone-else", "reviews"], StatusCode::OK),
        // Neither: any identity of the trust domain.
        (None, &[], StatusCode::OK),
    ];
    for (sa, sans, expected) in cases {
        let client = start_client_with(
            &service_entry_expecting(&server, sa, sans),
            &identity,
            "productpage",
        );
        let reply = call(&client, "/expecting", &[]).await;
        assert_eq!(
            reply.status,
            expected,
            "serviceAccount {sa:?}, subjectAltNames {sans:?}: {}",
            reply.text()
        );
        if expected == StatusCode::OK {
            assert_xfcc(&reply, "productpage", &identity);
        } else {
            let line = log_line(&client, "/expecting").await;
            assert!(flags(&line).contains(&"UF".to_string()), "{line:#}");
        }
    }
    assert_eq!(server.app_count().await, 2);
}

/// Calls through a fresh `reviews` mesh (200), reloads the client with `config`, and returns
/// the reply of the next call.
async fn call_after_reload(config: impl Fn(&Server) -> String) -> Reply {
    let mesh = Mesh::start("", "");
    let reply = call(&mesh.client, "/before", &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reload(&mesh.client, &config(&mesh.server), 2).await;
    call(&mesh.client, "/after", &[]).await
}

#[tokio::test]
async fn a_reload_that_renames_the_endpoint_service_account_applies_at_once() {
    // The client has a connection to the server, verified as spiffe://.../sa/reviews. Its
    // endpoint now says someone-else: that connection (and that verification) must not carry
    // requests any more.
    let reply =
        call_after_reload(|server| service_entry_expecting(server, Some("someone-else"), &[]))
            .await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "the server is spiffe://.../sa/reviews, the endpoint now says someone-else: {}",
        reply.text()
    );
}

#[tokio::test]
async fn a_reload_that_changes_subject_alt_names_applies_at_once() {
    let reply =
        call_after_reload(|server| service_entry_expecting(server, None, &["someone-else"])).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "subjectAltNames now name only someone-else: {}",
        reply.text()
    );
}

// ---------------------------------------------------------------------------------------------
// 6. The seeds' AuthorizationPolicies

const SEED_FRONTEND_POLICY: &str =
    include_str!("../../examples/seeds/002-14-authorizationpolicy-frontend-policy.yaml");
const SEED_USER_SERVICE_POLICY: &str =
    include_str!("../../examples/seeds/003-18-authorizationpolicy-user-service-policy.yaml");
const SEED_ALLOW_USER_SERVICE: &str =
    include_str!("../../examples/seeds/003-26-authorizationpolicy-allow-user-service.yaml");
const SEED_PEER_STRICT_003: &str =
    include_str!("../../examples/seeds/003-17-peerauthentication-default.yaml");

/// Starts a client proxy for each service account, all calling `server` as `reviews`.
fn clients(ca: &TestCa, server: &Server, sas: &[&str]) -> BTreeMap<String, TestProxy> {
    sas.iter()
        .map(|sa| {
            let identity = ca.issue(&spiffe(sa));
            (sa.to_string(), start_client(server, &identity, sa, ""))
        })
        .collect()
}

async fn send(proxy: &TestProxy, method: Method, path: &str) -> Reply {
    let mut client = proxy.client(Version::HTTP_11).await.unwrap();
    client
        .send(method, REVIEWS, path, &[], Bytes::new())
        .await
        .unwrap()
}

fn assert_denied(reply: &Reply, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::FORBIDDEN,
        "{what}: {}",
        reply.text()
    );
    assert_eq!(reply.text(), "RBAC: access denied", "{what}");
    assert_eq!(reply.header("x-echo-name"), None, "{what}");
}

#[tokio::test]
async fn seed_frontend_policy_allows_the_api_gateway_to_get_and_post() {
    let ca = TestCa::new("cluster.local");
    let server = Server::start(
        &ca,
        SEED_FRONTEND_POLICY,
        "frontend",
        "frontend",
        "app=frontend,version=v1",
    );
    let clients = clients(&ca, &server, &["api-gateway", "productpage"]);
    let gateway = &clients["api-gateway"];
    for method in [Method::GET, Method::POST] {
        let reply = send(gateway, method.clone(), "/home").await;
        assert_eq!(reply.status, StatusCode::OK, "{method}: {}", reply.text());
        assert_eq!(reply.json().unwrap()["method"], method.as_str());
    }
    assert_denied(
        &send(gateway, Method::DELETE, "/wrong-method").await,
        "DELETE",
    );
    assert_denied(
        &send(&clients["productpage"], Method::GET, "/wrong-principal").await,
        "productpage",
    );
    // Plaintext has no principal at all.
    let plain = plaintext_get(&server, "/no-principal", &[]).await.unwrap();
    assert_eq!(plain.status, 403, "{}", plain.text());
    assert_eq!(server.app_count().await, 2);

    for path in ["/wrong-method", "/wrong-principal", "/no-principal"] {
        let line = log_line(&server.proxy, path).await;
        assert_eq!(line["response_code"], 403, "{line:#}");
        assert_eq!(line["response_flags"], "-", "{line:#}");
        assert_eq!(
            line["response_code_details"], "rbac_access_denied_matched_policy[none]",
            "{line:#}"
        );
    }
}

#[tokio::test]
async fn seed_user_service_policies_allow_either_principal() {
    let ca = TestCa::new("cluster.local");
    let config = format!(
        "{SEED_PEER_STRICT_003}---\n{SEED_USER_SERVICE_POLICY}---\n{SEED_ALLOW_USER_SERVICE}"
    );
    let server = Server::start(
        &ca,
        &config,
        "user-service",
        "user-service",
        "app=user-service",
    );
    let clients = clients(&ca, &server, &["user-client", "admin", "api-gateway"]);
    for sa in ["user-client", "admin"] {
        for method in [Method::GET, Method::POST] {
            let reply = send(&clients[sa], method.clone(), "/users").await;
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{sa} {method}: {}",
                reply.text()
            );
            let fields = xfcc(&reply).unwrap();
            assert_eq!(fields["URI"], spiffe(sa));
        }
        assert_denied(&send(&clients[sa], Method::PUT, "/users").await, sa);
    }
    assert_denied(
        &send(&clients["api-gateway"], Method::GET, "/users").await,
        "api-gateway",
    );
    // Seed 003's STRICT PeerAuthentication closes plaintext.
    assert!(plaintext_get(&server, "/users", &[]).await.is_none());
    assert_eq!(server.app_count().await, 4);

    // The same policies do not apply to a workload with other labels.
    let other = Server::start(&ca, &config, "frontend", "frontend", "app=frontend");
    let proxy = start_client(&other, &ca.issue(&spiffe("api-gateway")), "api-gateway", "");
    let reply = send(&proxy, Method::DELETE, "/users").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

// ---------------------------------------------------------------------------------------------
// 7. Path normalization before policy

/// Request targets that all mean `/admin` to some server.
const ADMIN_TRICKS: [&str; 11] = [
    "//admin",
    "/./admin",
    "/public/../admin",
    "/%2e%2e/admin",
    "/public/%2e%2e/admin",
    "/%61dmin",
    "/admin;x=1",
    "/admin/../admin",
    "/.;/admin",
    "/%2E%2E/admin",
    "/public\\..\\admin",
];

/// Asserts a raw response is a denial (403) or a rejection (400), never the app.
fn assert_blocked(target: &str, reply: Option<&RawResponse>) {
    let Some(reply) = reply else {
        panic!("{target}: connection closed without a response (expected 403 or 400)");
    };
    assert!(
        matches!(reply.status, 400 | 403),
        "{target}: expected 403 or 400, got {} {:?} {}",
        reply.status,
        reply.headers,
        reply.text()
    );
    if reply.status == 403 {
        assert_eq!(reply.text(), "RBAC: access denied", "{target}");
    }
    assert_eq!(
        reply.header("x-echo-name"),
        None,
        "{target} reached the app"
    );
}

#[tokio::test]
async fn path_tricks_cannot_slip_past_a_deny_on_admin() {
    let mesh = Mesh::start(DENY_ADMIN, "");
    let mut plaintext_403 = 0;
    for target in ADMIN_TRICKS {
        let reply = plaintext_get(&mesh.server, target, &[]).await;
        assert_blocked(target, reply.as_ref());
        plaintext_403 += usize::from(reply.is_some_and(|r| r.status == 403));
    }
    for target in ["/ADMIN", "/public"] {
        let reply = plaintext_get(&mesh.server, target, &[]).await.unwrap();
        assert_eq!(reply.status, 200, "{target}: {}", reply.text());
        assert_eq!(reply.header("x-echo-name"), Some("reviews"), "{target}");
    }
    assert_eq!(mesh.server.app_count().await, 2, "only /ADMIN and /public");

    // Each plaintext request has its line; every 403 names the policy and is no failure.
    let log = mesh
        .server
        .proxy
        .wait_for_log_lines(ADMIN_TRICKS.len() + 2)
        .await
        .unwrap();
    let denials: Vec<&Value> = log.iter().filter(|l| l["response_code"] == 403).collect();
    assert_eq!(denials.len(), plaintext_403, "{log:#?}");
    for line in denials {
        assert_eq!(
            line["response_code_details"], "rbac_access_denied_matched_policy[default.deny-admin]",
            "{line:#}"
        );
        assert_eq!(line["response_flags"], "-", "{line:#}");
    }

    // Through the client proxy, over mTLS.
    let outbound = mesh.client.outbound();
    for target in [
        "//admin",
        "/%61dmin",
        "/public/../admin",
        "/admin;x=1",
        "/.;/admin",
    ] {
        let reply = raw_get(outbound, target, REVIEWS, &[]).await.unwrap();
        assert_blocked(target, reply.as_ref());
    }
    let reply = raw_get(outbound, "/public", REVIEWS, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_xfcc_raw(&reply);
    assert_eq!(mesh.server.app_count().await, 3);
}

/// The raw reply came from the app over mTLS.
fn assert_xfcc_raw(reply: &RawResponse) {
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    let xfcc = body["headers"][XFCC].as_str().unwrap_or_default();
    assert!(
        xfcc.contains(&format!("URI={}", spiffe("productpage"))),
        "{body:#}"
    );
}

// ---------------------------------------------------------------------------------------------
// 8. gRPC denial

async fn grpc_call(client: &mut Client, authority: Option<&str>, path: &str) -> Reply {
    let mut builder = client.request(Method::POST, path);
    if let Some(authority) = authority {
        builder = Request::builder()
            .method(Method::POST)
            .uri(format!("http://{authority}{path}"))
            .version(Version::HTTP_2);
    }
    let req = builder
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(b"\0\0\0\0\0")))
        .unwrap();
    client.send(req).await.unwrap()
}

#[tokio::test]
async fn denied_grpc_calls_get_permission_denied() {
    let mesh = Mesh::start(DENY_ADMIN, "");
    let mut h2 = mesh.server.plaintext(Version::HTTP_2).await;
    let reply = grpc_call(&mut h2, None, "/admin.Admin/DropTables").await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.header("grpc-status"), Some("7"), "{reply:?}");
    assert_eq!(reply.header("x-echo-name"), None);

    // An allowed call reaches the app.
    let reply = grpc_call(&mut h2, None, "/reviews.Reviews/Get").await;
    assert_eq!(reply.header("x-echo-name"), Some("reviews"), "{reply:?}");

    // Through the client proxy over mTLS.
    let mut through = Client::connect(mesh.client.outbound(), Version::HTTP_2)
        .await
        .unwrap();
    let reply = grpc_call(&mut through, Some(REVIEWS), "/admin.Admin/Wipe").await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.header("grpc-status"), Some("7"), "{reply:?}");
    assert_eq!(mesh.server.app_count().await, 1);

    let line = log_line(&mesh.server.proxy, "/admin.Admin/DropTables").await;
    assert_eq!(
        line["response_code_details"], "rbac_access_denied_matched_policy[default.deny-admin]",
        "{line:#}"
    );
    assert_eq!(line["response_flags"], "-", "{line:#}");
}

// ---------------------------------------------------------------------------------------------
// 9. RequestAuthentication

const ISSUER: &str = "https://issuer.example.com";

/// An ES256 signing key and its public JWK.
struct JwtKey {
    kid: String,
    encoding: jsonwebtoken::EncodingKey,
    jwk: Value,
}

fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

impl JwtKey {
    fn generate(kid: &str) -> JwtKey {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let raw = pair.public_key_raw();
        assert_eq!((raw.len(), raw[0]), (65, 4), "uncompressed P-256 point");
        let encoding =
            jsonwebtoken::EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap();
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": b64url(&raw[1..33]), "y": b64url(&raw[33..]),
        });
        JwtKey {
            kid: kid.to_string(),
            encoding,
            jwk,
        }
    }

    /// A token with `claims`, signed by this key but announcing `kid`.
    fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid.to_string());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_as(&self.kid, claims)
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(sub: &str, aud: &str, exp: u64) -> Value {
    json!({"iss": ISSUER, "sub": sub, "aud": aud, "iat": now() - 60, "exp": exp})
}

/// RequestAuthentication for the `reviews` workload trusting `key`, audience `reviews`, and a
/// DENY for mallory's principal (which shows the principal is `iss/sub`).
fn jwt_config(key: &JwtKey) -> String {
    let jwks = json!({"keys": [key.jwk]}).to_string();
    format!(
        "apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: jwt, namespace: default}}
spec:
  selector: {{matchLabels: {{app: reviews}}}}
  jwtRules:
  - issuer: {ISSUER}
    audiences: [reviews]
    jwks: '{jwks}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: deny-mallory, namespace: default}}
spec:
  action: DENY
  rules:
  - from:
    - source: {{requestPrincipals: [\"{ISSUER}/mallory\"]}}
"
    )
}

const REQUIRE_JWT: &str = "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: require-jwt, namespace: default}
spec:
  action: ALLOW
  rules:
  - from:
    - source: {requestPrincipals: [\"*\"]}
";

/// The statuses of GET `path` with each token (`None`: no Authorization header), plaintext
/// straight to the inbound listener on one connection.
async fn statuses(server: &Server, tokens: &[(&str, Option<&str>)]) -> Vec<(String, u16)> {
    let mut client = server.plaintext(Version::HTTP_11).await;
    let mut out = Vec::new();
    for (name, token) in tokens {
        let mut builder = Request::builder()
            .uri(format!("/jwt/{name}"))
            .header(HOST, REVIEWS);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let reply = client
            .send(builder.body(Full::default()).unwrap())
            .await
            .unwrap();
        out.push((name.to_string(), reply.status.as_u16()));
    }
    out
}

#[tokio::test]
async fn request_authentication_validates_tokens_and_policy_requires_them() {
    let key = JwtKey::generate("key-1");
    let impostor = JwtKey::generate("key-1");
    let ca = TestCa::new("cluster.local");
    let server = Server::start(
        &ca,
        &jwt_config(&key),
        "reviews",
        "reviews",
        "app=reviews,version=v1",
    );
    let hour = now() + 3600;
    let valid = key.sign(&claims("alice", "reviews", hour));
    let mallory = key.sign(&claims("mallory", "reviews", hour));
    let bad_signature = impostor.sign(&claims("alice", "reviews", hour));
    let expired = key.sign(&claims("alice", "reviews", now() - 600));
    let unknown_kid = key.sign_as("key-2", &claims("alice", "reviews", hour));
    let other_audience = key.sign(&claims("alice", "ratings", hour));
    let tokens = [
        ("valid", Some(valid.as_str())),
        ("mallory", Some(mallory.as_str())),
        ("bad-signature", Some(bad_signature.as_str())),
        ("expired", Some(expired.as_str())),
        ("unknown-kid", Some(unknown_kid.as_str())),
        ("missing", None),
        ("other-audience", Some(other_audience.as_str())),
    ];
    let expect = |pairs: &[(&str, u16)]| -> Vec<(String, u16)> {
        pairs.iter().map(|(n, s)| (n.to_string(), *s)).collect()
    };

    assert_eq!(
        statuses(&server, &tokens).await,
        expect(&[
            ("valid", 200),
            ("mallory", 403),
            ("bad-signature", 401),
            ("expired", 401),
            ("unknown-kid", 401),
            ("missing", 200),
            ("other-audience", 200),
        ]),
        "without a policy requiring a principal; server stderr:\n{}",
        server.proxy.process().stderr()
    );

    server
        .reconfigure(&format!("{}---\n{REQUIRE_JWT}", jwt_config(&key)), 2)
        .await;
    assert_eq!(
        statuses(&server, &tokens).await,
        expect(&[
            ("valid", 200),
            ("mallory", 403),
            ("bad-signature", 401),
            ("expired", 401),
            ("unknown-kid", 401),
            ("missing", 403),
            ("other-audience", 403),
        ]),
        "with requestPrincipals [\"*\"]; server stderr:\n{}",
        server.proxy.process().stderr()
    );
    assert_eq!(server.app_count().await, 4);
    let line = log_line(&server.proxy, "/jwt/expired").await;
    assert_eq!(line["response_code"], 401, "{line:#}");
}

// ---------------------------------------------------------------------------------------------
// 10. Certificate rotation under load

/// Requests through the client proxy until stopped: keep-alive HTTP/1.1 connections to
/// `reviews` and `ratings`, replaced by new ones every 10 requests. Returns how many requests
/// were sent and a description of each one that did not get a 200.
async fn load(outbound: SocketAddr, stop: Arc<AtomicBool>) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let mut clients: Vec<Option<Client>> = vec![None, None];
    let mut sent = 0;
    while !stop.load(Ordering::Relaxed) {
        let slot = sent % 2;
        let host = ["reviews:9080", "ratings:9080"][slot];
        if sent % 10 < 2 {
            clients[slot] = None;
        }
        if clients[slot].is_none() {
            match Client::connect(outbound, Version::HTTP_11).await {
                Ok(c) => clients[slot] = Some(c),
                Err(err) => {
                    failures.push(format!("#{sent} connect: {err:#}"));
                    sent += 1;
                    continue;
                }
            }
        }
        let Some(client) = clients[slot].as_mut() else {
            continue;
        };
        let req = Request::builder()
            .uri(format!("/load/{sent}"))
            .header(HOST, host)
            .body(Full::default())
            .unwrap();
        match client.send(req).await {
            Ok(reply) if reply.status == StatusCode::OK => {}
            Ok(reply) => {
                failures.push(format!("#{sent} {host}: {} {}", reply.status, reply.text()))
            }
            Err(err) => {
                failures.push(format!("#{sent} {host}: {err:#}"));
                clients[slot] = None;
            }
        }
        sent += 1;
    }
    (sent, failures)
}

/// Client config for the rotation test: `reviews` (connections pooled) and `ratings` (one
/// request per connection, so each request is a new handshake), both the server sidecar.
fn rotation_client_config(server: &Server) -> String {
    let ratings = sidecar_service("ratings", server.inbound(), Some("reviews"));
    format!(
        "{}---\n{ratings}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: ratings, namespace: default}}
spec:
  host: ratings
  trafficPolicy:
    connectionPool:
      http: {{maxRequestsPerConnection: 1}}
",
        client_config(server, "")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_rotation_under_load_drops_nothing() {
    let ca = TestCa::new("cluster.local");
    let server = Server::start(&ca, "", "reviews", "reviews", "app=reviews,version=v1");
    let client_identity = ca.issue(&spiffe("productpage"));
    let client = TestProxy::start(
        &rotation_client_config(&server),
        &[
            "--identity",
            &client_identity.display().to_string(),
            "--service-account",
            "productpage",
            "--labels",
            "app=productpage",
        ],
    );
    let warm = call(&client, "/warm", &[]).await;
    assert_eq!(warm.status, StatusCode::OK, "{}", warm.text());

    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load(client.outbound(), stop.clone()));

    let mut client_hashes = vec![weft_e2e::tls::cert_hash(&client_identity).unwrap()];
    let mut server_hashes = vec![weft_e2e::tls::cert_hash(&server.identity).unwrap()];
    for round in 1..=3 {
        ca.rotate(&spiffe("productpage"), &client_identity).unwrap();
        ca.rotate(&spiffe("reviews"), &server.identity).unwrap();
        let client_hash = weft_e2e::tls::cert_hash(&client_identity).unwrap();
        let server_hash = weft_e2e::tls::cert_hash(&server.identity).unwrap();
        // A new connection (ratings) presents the new client certificate...
        let seen = std::sync::Mutex::new(String::new());
        let client_rotated = wait_until_async(DEADLINE, || async {
            let mut c = client.client(Version::HTTP_11).await.unwrap();
            let reply = c.get("ratings:9080", "/probe", &[]).await.unwrap();
            let hash = xfcc(&reply)
                .and_then(|f| f.get("Hash").cloned())
                .unwrap_or_default();
            let rotated = hash == client_hash;
            *seen.lock().unwrap() = hash;
            rotated
        })
        .await;
        assert!(
            client_rotated.is_ok(),
            "round {round}: client certificate {client_hash} not in use, XFCC Hash is {}",
            seen.lock().unwrap()
        );
        // ... and the server presents its new one.
        let server_rotated = wait_until_async(DEADLINE, || async {
            let hash = weft_e2e::tls::server_cert_hash(server.inbound(), &client_identity)
                .await
                .unwrap_or_else(|e| format!("{e:#}"));
            let rotated = hash == server_hash;
            *seen.lock().unwrap() = hash;
            rotated
        })
        .await;
        assert!(
            server_rotated.is_ok(),
            "round {round}: server certificate {server_hash} not in use, got {}",
            seen.lock().unwrap()
        );
        client_hashes.push(client_hash);
        server_hashes.push(server_hash);
    }

    stop.store(true, Ordering::Relaxed);
    let (sent, failures) = loader.await.unwrap();
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed during rotation: {failures:#?}\nclient stderr:\n{}\nserver stderr:\n{}",
        failures.len(),
        client.process().stderr(),
        server.proxy.process().stderr()
    );
    assert!(sent >= 20, "only {sent} requests during the rotations");
    let distinct = |v: &[String]| v.iter().collect::<std::collections::BTreeSet<_>>().len();
    assert_eq!(distinct(&client_hashes), 4, "{client_hashes:?}");
    assert_eq!(distinct(&server_hashes), 4, "{server_hashes:?}");
    // The pooled connection made before the rotations still works.
    let reply = call(&client, "/after", &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

// ---------------------------------------------------------------------------------------------
// 11. Raw TCP, protocol upgrades and HTTP/1.0 across the mesh

/// Opens a CONNECT tunnel through `proxy` to `authority` and sends `payload` through it.
/// Returns the CONNECT status and what came back through the tunnel until it closed.
async fn tunnel(proxy: &TestProxy, authority: &str, payload: &[u8]) -> (String, Vec<u8>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(proxy.outbound())
        .await
        .unwrap();
    let connect = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    stream.write_all(connect.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(DEADLINE, stream.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 1, "tunnel closed before the CONNECT answer: {head:?}");
        head.push(byte[0]);
    }
    let status = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    stream.write_all(payload).await.unwrap();
    let mut back = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut back)).await;
    (status, back)
}

const DENY_PRODUCTPAGE: &str = "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-productpage, namespace: default}
spec:
  action: DENY
  rules:
  - from:
    - source: {principals: [cluster.local/ns/default/sa/productpage]}
";

#[tokio::test]
async fn tunnels_ride_mtls_and_tcp_connections_are_authorized() {
    let mesh = Mesh::start(MESH_STRICT, "");
    let request = b"GET /in-tunnel HTTP/1.1\r\nHost: reviews\r\nConnection: close\r\n\r\n";
    let (status, back) = tunnel(&mesh.client, REVIEWS, request).await;
    assert!(status.contains(" 200"), "{status}");
    let text = String::from_utf8_lossy(&back);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("/in-tunnel"), "{text}");
    // The bytes crossed STRICT mTLS as raw TCP: one connection line, no HTTP fields.
    let tcp_line = || {
        mesh.server
            .proxy
            .access_log()
            .into_iter()
            .find(|l| l["method"].is_null() && l["bytes_received"].as_u64() > Some(0))
    };
    wait_until_async(DEADLINE, || async { tcp_line().is_some() })
        .await
        .unwrap();
    let line = tcp_line().unwrap();
    assert_eq!(
        line["upstream_host"],
        mesh.server.echo.addr().to_string(),
        "{line:#}"
    );

    // A DENY on the caller's principal closes the connection before the app sees a byte.
    let before = mesh.server.app_count().await;
    mesh.server
        .reconfigure(&format!("{MESH_STRICT}---\n{DENY_PRODUCTPAGE}"), 2)
        .await;
    let (status, back) = tunnel(&mesh.client, REVIEWS, request).await;
    assert!(status.contains(" 200"), "{status}");
    assert!(back.is_empty(), "{}", String::from_utf8_lossy(&back));
    assert_eq!(mesh.server.app_count().await, before);
    let denied = || {
        mesh.server.proxy.access_log().into_iter().find(|l| {
            l["connection_termination_details"]
                == "rbac_access_denied_matched_policy[default.deny-productpage]"
        })
    };
    wait_until_async(DEADLINE, || async { denied().is_some() })
        .await
        .unwrap();
}

#[tokio::test]
async fn http10_keeps_its_version_end_to_end() {
    let mesh = Mesh::start(MESH_STRICT, "");
    let reply = weft_e2e::raw::raw_exchange(
        mesh.client.outbound(),
        b"GET /old HTTP/1.0\r\nHost: reviews:9080\r\n\r\n",
    )
    .await
    .unwrap()
    .expect("a response");
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["protocol"], "HTTP/1.0", "{body:#}");
    assert!(body["headers"].get(XFCC).is_some(), "{body:#}");
}

/// An app that accepts any request with `101 Switching Protocols` and then echoes the bytes it
/// receives in upper case.
async fn start_upgrade_app() -> SocketAddr {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let reply = b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: shout\r\n\r\n";
                if conn.write_all(reply).await.is_err() {
                    return;
                }
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0
                        || conn
                            .write_all(&buf[..n].to_ascii_uppercase())
                            .await
                            .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn upgrades_cross_the_mesh_on_their_own_connection() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let ca = TestCa::new("cluster.local");
    let app = start_upgrade_app().await;
    let server_identity = ca.issue(&spiffe("reviews"));
    let server = TestProxy::start(
        MESH_STRICT,
        &[
            "--inbound",
            "127.0.0.1:0",
            "--app",
            &app.to_string(),
            "--identity",
            &server_identity.display().to_string(),
            "--service-account",
            "reviews",
            "--labels",
            "app=reviews",
        ],
    );
    let client_identity = ca.issue(&spiffe("productpage"));
    let client = start_client_with(
        &sidecar_service("reviews", server.inbound(), Some("reviews")),
        &client_identity,
        "productpage",
    );
    let mut stream = tokio::net::TcpStream::connect(client.outbound())
        .await
        .unwrap();
    stream
        .write_all(b"GET /chat HTTP/1.1\r\nHost: reviews:9080\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(DEADLINE, stream.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 1, "closed before the 101: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: shout"), "{head}");
    stream.write_all(b"hello mesh").await.unwrap();
    let mut back = [0u8; 10];
    tokio::time::timeout(DEADLINE, stream.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&back, b"HELLO MESH");
    let line = log_line(&server, "/chat").await;
    assert_eq!(line["response_code"], 101, "{line:#}");
}
