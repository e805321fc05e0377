//! Config builders for tests: a `reviews` service backed by test servers, as Istio YAML.

use std::net::SocketAddr;

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

/// A ServiceEntry for `NAME.default.svc.cluster.local` (port 9080, HTTP) whose one endpoint is
/// a weft sidecar's inbound listener: labelled `security.istio.io/tlsMode: istio`, so client
/// proxies speak mutual TLS to it, and running as `service_account` when given (the identity
/// clients then expect). One YAML document, without a trailing `---`.
pub fn sidecar_service(name: &str, inbound: SocketAddr, service_account: Option<&str>) -> String {
    let sa = service_account.map_or(String::new(), |sa| format!(", serviceAccount: {sa}"));
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: default}}
spec:
  hosts: [{name}.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9080, name: http, protocol: HTTP}}]
  endpoints:
  - {{address: {ip}, ports: {{http: {port}}}, labels: {{app: {name}, security.istio.io/tlsMode: istio}}{sa}}}
",
        ip = inbound.ip(),
        port = inbound.port(),
    )
}
