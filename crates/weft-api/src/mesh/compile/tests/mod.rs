//! Compilation cases over small multi-document inputs: the registry and host table
//! ([`hosts`]), routes and their actions ([`routes`]), clusters and traffic policy
//! ([`clusters`]), TCP and TLS routes ([`tcp`]), client TLS and endpoint identities ([`tls`]).

mod clusters;
mod hosts;
mod routes;
mod tcp;
mod tls;

use crate::load::load_text;
use crate::mesh::{
    Cluster, ClusterKey, CompileOptions, HttpRoute, MeshConfig, RouteAction, WeightedDestination,
    compile,
};

/// Services shared by most cases: `reviews` (three versions, one port with a `targetPort`),
/// `ratings` in namespace `prod`, and the external `httpbin.org` (DNS, no endpoints).
const SERVICES: &str = "
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP, targetPort: 19080}]
  endpoints:
  - {address: 127.0.0.1, labels: {app: reviews, version: v1}}
  - {address: 127.0.0.2, labels: {app: reviews, version: v2}, ports: {http: 29080}}
  - {address: 127.0.0.3, labels: {app: reviews, version: v3}, weight: 5}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: prod}
spec:
  hosts: [ratings.prod.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints:
  - {address: 10.0.0.1, labels: {version: v1}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin}
spec:
  hosts: [httpbin.org]
  location: MESH_EXTERNAL
  resolution: DNS
  ports:
  - {number: 80, name: http, protocol: HTTP}
  - {number: 443, name: https, protocol: HTTPS}
";

/// `reviews` subsets v1, v2, v3 by `version`.
const REVIEWS_DR: &str = "
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
";

/// A VirtualService document named `name` in the default namespace with `spec` (indented).
fn vs(name: &str, spec: &str) -> String {
    format!(
        "\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}}}\nspec:\n{spec}"
    )
}

fn mesh(yaml: &str) -> MeshConfig {
    mesh_with(yaml, &CompileOptions::default())
}

fn mesh_with(yaml: &str, opts: &CompileOptions) -> MeshConfig {
    let loaded = load_text("t.yaml", yaml);
    assert!(
        !loaded.has_errors(),
        "fixture must be valid: {:#?}",
        loaded.diagnostics
    );
    compile(&loaded.resources, 7, opts)
}

fn options(namespace: &str) -> CompileOptions {
    CompileOptions {
        namespace: namespace.to_string(),
        ..CompileOptions::default()
    }
}

/// The routes serving `authority`.
fn routes<'a>(m: &'a MeshConfig, authority: &str) -> &'a [HttpRoute] {
    &m.virtual_host(authority)
        .unwrap_or_else(|| panic!("no virtual host for {authority}"))
        .routes
}

fn route<'a>(m: &'a MeshConfig, authority: &str, name: &str) -> &'a HttpRoute {
    routes(m, authority)
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no route {name} for {authority}"))
}

fn destinations(route: &HttpRoute) -> &[WeightedDestination] {
    match &route.action {
        RouteAction::Forward { destinations, .. } => destinations,
        other => panic!("not a forward: {other:?}"),
    }
}

fn key(host: &str, subset: Option<&str>, port: Option<u16>) -> ClusterKey {
    ClusterKey {
        host: host.to_string(),
        subset: subset.map(str::to_string),
        port,
    }
}

fn cluster<'a>(
    m: &'a MeshConfig,
    host: &str,
    subset: Option<&str>,
    port: Option<u16>,
) -> &'a Cluster {
    let k = key(host, subset, port);
    m.clusters.get(&k).unwrap_or_else(|| {
        panic!(
            "no cluster {k}; have {:?}",
            m.clusters.keys().collect::<Vec<_>>()
        )
    })
}

const REVIEWS: &str = "reviews.default.svc.cluster.local";

#[test]
fn keeps_version_and_resources() {
    let m = mesh(SERVICES);
    assert_eq!(m.version, 7);
    assert_eq!(m.resources.len(), 3);
}
