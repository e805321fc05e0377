//! Micro-benchmarks for the data plane's per-request work (issue 6): path normalization,
//! authorization evaluation, route selection, weighted destination pick and header edits.
//! Run with `cargo bench -p weft-proxy --bench hot_path`. The endpoint load balancer's pick is
//! not here: `upstream::balancer` is private.
#![allow(clippy::expect_used)] // fixture setup outside the measured closures

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use divan::{Bencher, black_box};
use http::{HeaderMap, HeaderValue};
use weft_api::mesh::{CompileOptions, HeaderEdits, MeshConfig, RouteAction, compile};
use weft_api::{Loaded, Severity, load_text};
use weft_proxy::policy::authorization::{Authorizer, RequestAttributes};
use weft_proxy::policy::normalize::{PathNormalization, normalize};
use weft_proxy::route::actions::edit_headers;
use weft_proxy::route::{RequestView, pick_destination, select};

fn main() {
    divan::main();
}

// ---------------------------------------------------------------- path normalization

const PATHS: &[(&str, &str)] = &[
    ("typical", "/api/v1/users/42/orders?limit=10&page=2"),
    ("root", "/"),
    (
        "hostile",
        "/app//..%2F..//%2e%2E/./admin\\..\\%41dmin/%7euser;x//x/../secret?q=%2e%2e",
    ),
];

#[divan::bench(args = PATHS.iter().map(|(name, _)| *name))]
fn normalize_merge_slashes(bencher: Bencher, name: &str) {
    let path = lookup(name);
    bencher.bench(|| normalize(black_box(path), PathNormalization::MergeSlashes));
}

#[divan::bench(args = PATHS.iter().map(|(name, _)| *name))]
fn normalize_decode_and_merge(bencher: Bencher, name: &str) {
    let path = lookup(name);
    bencher.bench(|| normalize(black_box(path), PathNormalization::DecodeAndMergeSlashes));
}

fn lookup(name: &str) -> &'static str {
    PATHS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| *p)
        .expect("known path")
}

// ---------------------------------------------------------------- authorization

fn assert_no_errors(loaded: &Loaded) {
    let errors: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

/// Ten ALLOW/DENY policies for `app: api` in `default`; the request under test is allowed by
/// the last ALLOW policy only, so every policy is evaluated.
fn authorizer() -> Authorizer {
    let mut yaml = String::new();
    for i in 0..8 {
        let _ = write!(
            yaml,
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: allow-{i}\n  namespace: default\nspec:\n  selector:\n    matchLabels:\n      app: api\n  action: ALLOW\n  rules:\n  - from:\n    - source:\n        principals: [\"cluster.local/ns/team-{i}/sa/client\"]\n    to:\n    - operation:\n        methods: [\"GET\", \"POST\"]\n        paths: [\"/api/v{i}/*\"]\n---\n"
        );
    }
    yaml.push_str(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: deny-admin\n  namespace: default\nspec:\n  action: DENY\n  rules:\n  - to:\n    - operation:\n        paths: [\"/admin\", \"/admin/*\"]\n  - when:\n    - key: request.headers[x-debug]\n      values: [\"1\"]\n---\n",
    );
    yaml.push_str(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: allow-gateway\n  namespace: default\nspec:\n  selector:\n    matchLabels:\n      app: api\n  action: ALLOW\n  rules:\n  - from:\n    - source:\n        principals: [\"cluster.local/ns/default/sa/api-gateway\"]\n    to:\n    - operation:\n        methods: [\"GET\"]\n        paths: [\"/api/v1/*\"]\n",
    );
    let loaded = load_text("bench.yaml", &yaml);
    assert_no_errors(&loaded);
    let labels = BTreeMap::from([("app".to_string(), "api".to_string())]);
    let authorizer =
        Authorizer::for_workload(&loaded.resources, "default", &labels, "istio-system");
    assert_eq!(authorizer.policy_ids().count(), 10);
    authorizer
}

#[divan::bench]
fn authorize_10_policies(bencher: Bencher) {
    let authorizer = authorizer();
    let mut headers = HeaderMap::new();
    headers.insert("user-agent", HeaderValue::from_static("bench"));
    headers.insert("accept", HeaderValue::from_static("application/json"));
    let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));
    let req = RequestAttributes {
        source_principal: Some("cluster.local/ns/default/sa/api-gateway"),
        source_namespace: Some("default"),
        source_ip: ip,
        remote_ip: ip,
        request_principal: None,
        jwt_claims: None,
        host: "api.default.svc.cluster.local",
        destination_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)),
        destination_port: 8080,
        method: "GET",
        path: "/api/v1/users/42",
        headers: Some(&headers),
        sni: None,
        http: true,
    };
    assert!(authorizer.evaluate(&req).decision.is_allowed());
    bencher.bench(|| authorizer.evaluate(black_box(&req)));
}

// ---------------------------------------------------------------- routing

/// `services` ServiceEntries `svc-N`, each with a VirtualService of five header + prefix
/// routes before a weighted catch-all.
fn mesh(services: usize) -> MeshConfig {
    let mut yaml = String::new();
    for n in 0..services {
        let _ = write!(
            yaml,
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: svc-{n}}}\nspec:\n  hosts: [svc-{n}.default.svc.cluster.local]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports: [{{number: 80, name: http, protocol: HTTP}}]\n  endpoints:\n  - {{address: 10.1.0.1, labels: {{version: v1}}}}\n  - {{address: 10.1.0.2, labels: {{version: v2}}}}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: svc-{n}}}\nspec:\n  host: svc-{n}\n  subsets:\n  - {{name: v1, labels: {{version: v1}}}}\n  - {{name: v2, labels: {{version: v2}}}}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: svc-{n}}}\nspec:\n  hosts: [svc-{n}]\n  http:\n"
        );
        for r in 0..5 {
            let _ = write!(
                yaml,
                "  - match:\n    - headers: {{x-tenant: {{exact: tenant-{r}}}}}\n      uri: {{prefix: /api/v{r}/}}\n    route:\n    - destination: {{host: svc-{n}, subset: v2}}\n"
            );
        }
        yaml.push_str("  - route:\n    - {destination: {host: svc-");
        let _ = write!(
            yaml,
            "{n}, subset: v1}}, weight: 90}}\n    - {{destination: {{host: svc-{n}, subset: v2}}, weight: 10}}\n---\n"
        );
    }
    let loaded = load_text("bench.yaml", &yaml);
    assert_no_errors(&loaded);
    compile(&loaded.resources, 1, &CompileOptions::default())
}

#[divan::bench(args = [1, 50])]
fn route_select(bencher: Bencher, services: usize) {
    let mesh = mesh(services);
    let authority = format!("svc-{}", services - 1);
    let mut headers = HeaderMap::new();
    headers.insert("x-tenant", HeaderValue::from_static("tenant-4"));
    headers.insert("user-agent", HeaderValue::from_static("bench"));
    let view = RequestView {
        method: "GET",
        path: "/api/v4/users/42",
        query: None,
        scheme: "http",
        authority: &authority,
        port: 80,
        headers: &headers,
    };
    let vhost = mesh.virtual_host(&authority).expect("virtual host");
    let (route, _) = select(vhost, &view).expect("route");
    assert_eq!(route.name, format!("svc-{}.4", services - 1));
    // Host lookup, then four non-matching route blocks before the one that matches.
    bencher.bench(|| {
        let vhost = mesh.virtual_host(black_box(&authority))?;
        select(vhost, black_box(&view)).map(|(route, _)| route.name.len())
    });
}

#[divan::bench]
fn weighted_pick_90_10(bencher: Bencher) {
    let mesh = mesh(1);
    let vhost = mesh.virtual_host("svc-0").expect("virtual host");
    let route = vhost.routes.last().expect("catch-all route");
    let RouteAction::Forward { destinations, .. } = &route.action else {
        unreachable!("catch-all forwards");
    };
    assert_eq!(destinations.len(), 2);
    bencher.bench(|| pick_destination(black_box(destinations)).map(|d| d.weight));
}

// ---------------------------------------------------------------- header rewrite

#[divan::bench]
fn edit_headers_set_add_remove(bencher: Bencher) {
    let edits = HeaderEdits {
        set: vec![
            ("x-version".into(), "v2".into()),
            ("x-route".into(), "reviews".into()),
        ],
        add: vec![("x-trace-tag".into(), "bench".into())],
        remove: vec!["x-internal".into(), "cookie".into()],
    };
    let mut headers = HeaderMap::new();
    headers.insert("user-agent", HeaderValue::from_static("bench"));
    headers.insert("accept", HeaderValue::from_static("*/*"));
    headers.insert("x-internal", HeaderValue::from_static("1"));
    headers.insert("cookie", HeaderValue::from_static("session=abc"));
    bencher
        .with_inputs(|| headers.clone())
        .bench_local_refs(|h| edit_headers(h, black_box(&edits)));
}
