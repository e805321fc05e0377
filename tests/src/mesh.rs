//! Config builders for tests: a `reviews` service backed by test servers, as Istio YAML.

use crate::TestEcho;

/// A ServiceEntry for `reviews` (port 9080 speaking `protocol`) with one endpoint per
/// `(port, version)`, and a DestinationRule with the subsets.
pub fn service_mesh(backends: &[(u16, &str)], protocol: &str, extra: &str) -> String {
    let endpoints: String = backends
        .iter()
        .map(|(port, version)| format!("  - {{address: 127.0.0.1, ports: {{http: {port}}}, labels: {{app: reviews, version: {version}}}}}\n"))
        .collect();
    let subsets: String = backends
        .iter()
        .map(|(_, version)| format!("  - {{name: {version}, labels: {{version: {version}}}}}\n"))
        .collect();
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: reviews}}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9080, name: http, protocol: {protocol}}}]
  endpoints:
{endpoints}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews}}
spec:
  host: reviews
  subsets:
{subsets}---
{extra}"
    )
}

/// [`service_mesh`] over `weft echo` backends on an HTTP port.
pub fn reviews_mesh(backends: &[(&TestEcho, &str)], extra: &str) -> String {
    let ports: Vec<(u16, &str)> = backends
        .iter()
        .map(|(echo, v)| (echo.addr().port(), *v))
        .collect();
    service_mesh(&ports, "HTTP", extra)
}
