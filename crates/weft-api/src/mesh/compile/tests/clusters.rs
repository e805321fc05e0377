//! Clusters: endpoints (ports, subsets, DNS, selected workloads), undefined subsets, and the
//! DestinationRule policy merge.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::mesh::{ConnectionPool, ConsistentHashKey, EndpointAddress, LbPolicy, OutlierPolicy};

fn subsets_vs() -> String {
    vs(
        "reviews",
        "  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /v1}}]
    route: [{destination: {host: reviews, subset: v1}}]
  - match: [{uri: {prefix: /v2}}]
    route: [{destination: {host: reviews, subset: v2, port: {number: 9080}}}]
  - match: [{uri: {prefix: /v9}}]
    route: [{destination: {host: reviews, subset: v9}}]
  - route: [{destination: {host: reviews}}]
",
    )
}

#[test]
fn endpoint_ports_by_name_then_target_port() {
    let m = mesh(&format!("{SERVICES}{}", subsets_vs()));
    let all = cluster(&m, REVIEWS, None, None);
    let ports: Vec<(String, Option<u16>, u32)> = all
        .endpoints
        .iter()
        .map(|e| (e.address.to_string(), e.port_for(Some(9080)), e.weight))
        .collect();
    assert_eq!(
        ports,
        [
            ("127.0.0.1".to_string(), Some(19080), 1),
            ("127.0.0.2".to_string(), Some(29080), 1),
            ("127.0.0.3".to_string(), Some(19080), 5),
        ]
    );
    assert_eq!(
        all.endpoints[0].labels.get("app").map(String::as_str),
        Some("reviews")
    );
    let ratings = mesh(SERVICES);
    let c = cluster(&ratings, "ratings.prod.svc.cluster.local", None, None);
    assert_eq!(c.endpoints[0].port_for(None), Some(9080));
}

#[test]
fn subsets_select_endpoints_by_label() {
    let m = mesh(&format!("{SERVICES}{REVIEWS_DR}{}", subsets_vs()));
    let v1 = cluster(&m, REVIEWS, Some("v1"), None);
    assert_eq!(v1.endpoints.len(), 1);
    assert_eq!(
        v1.endpoints[0].address,
        EndpointAddress::Ip([127, 0, 0, 1].into())
    );
    assert_eq!(v1.version.as_deref(), Some("v1"));
    assert!(!v1.undefined_subset);
    let v2 = cluster(&m, REVIEWS, Some("v2"), Some(9080));
    assert_eq!(v2.endpoints.len(), 1);
    assert_eq!(v2.endpoints[0].port_for(Some(9080)), Some(29080));
    assert_eq!(cluster(&m, REVIEWS, None, None).endpoints.len(), 3);
    assert_eq!(cluster(&m, REVIEWS, None, None).version, None);
    assert_eq!(
        m.clusters.len(),
        4 + 2,
        "4 reviews clusters + ratings and httpbin defaults"
    );
}

#[test]
fn undefined_subsets_have_no_endpoints() {
    let with_dr = mesh(&format!("{SERVICES}{REVIEWS_DR}{}", subsets_vs()));
    let v9 = cluster(&with_dr, REVIEWS, Some("v9"), None);
    assert!(v9.undefined_subset && v9.endpoints.is_empty());
    let without_dr = mesh(&format!("{SERVICES}{}", subsets_vs()));
    let v1 = cluster(&without_dr, REVIEWS, Some("v1"), None);
    assert!(v1.undefined_subset && v1.endpoints.is_empty());
    assert!(!cluster(&without_dr, REVIEWS, None, None).undefined_subset);
}

#[test]
fn dns_endpoints_and_selected_workload_entries() {
    let yaml = "
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: origin}
spec:
  hosts: [origin.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: https, protocol: HTTPS}]
  endpoints: [{address: eu.origin.example.com, ports: {https: 8443}}, {address: 192.0.2.7}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vms}
spec:
  hosts: [vm.example.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: vm}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1}
spec: {address: 10.1.0.1, labels: {app: vm, version: v1}, ports: {http: 18080}, weight: 3}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-2, labels: {app: vm}}
spec: {address: 10.1.0.2}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: other}
spec: {address: 10.1.0.3, labels: {app: other}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-elsewhere, namespace: prod}
spec: {address: 10.1.0.4, labels: {app: vm}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: passthrough}
spec:
  hosts: [db.example.com]
  location: MESH_EXTERNAL
  resolution: NONE
  ports: [{number: 80, name: http, protocol: HTTP}]
";
    let m = mesh(&format!("{SERVICES}---{yaml}"));
    let host = cluster(&m, "httpbin.org", None, None);
    let [only] = host.endpoints.as_slice() else {
        panic!("{:?}", host.endpoints)
    };
    assert_eq!(
        only.address,
        EndpointAddress::Dns("httpbin.org".to_string())
    );
    assert_eq!(only.ports, BTreeMap::from([(80, 80), (443, 443)]));
    let origin = cluster(&m, "origin.example.com", None, None);
    assert_eq!(
        origin.endpoints[0].address,
        EndpointAddress::Dns("eu.origin.example.com".to_string())
    );
    assert_eq!(origin.endpoints[0].port_for(Some(443)), Some(8443));
    assert_eq!(
        origin.endpoints[1].address,
        EndpointAddress::Ip([192, 0, 2, 7].into())
    );
    let vms = cluster(&m, "vm.example.internal", None, None);
    let got: Vec<(String, Option<u16>, u32)> = vms
        .endpoints
        .iter()
        .map(|e| (e.address.to_string(), e.port_for(Some(8080)), e.weight))
        .collect();
    assert_eq!(
        got,
        [
            ("10.1.0.1".to_string(), Some(18080), 3),
            ("10.1.0.2".to_string(), Some(8080), 1)
        ]
    );
    assert_eq!(
        vms.endpoints[1].labels.get("app").map(String::as_str),
        Some("vm")
    );
    assert!(
        cluster(&m, "db.example.com", None, None)
            .endpoints
            .is_empty()
    );
}

const POLICY: &str = "
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews.default.svc.cluster.local
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool:
      tcp: {maxConnections: 10, connectTimeout: 2s}
      http: {http1MaxPendingRequests: 5, maxRequestsPerConnection: 1, h2UpgradePolicy: UPGRADE}
    outlierDetection: {consecutive5xxErrors: 3, interval: 5s, maxEjectionPercent: 100}
    portLevelSettings:
    - port: {number: 9080}
      loadBalancer: {simple: RANDOM}
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer: {simple: LEAST_CONN}
      connectionPool: {http: {http2MaxRequests: 7}}
  - name: v3
    labels: {version: v3}
    trafficPolicy:
      loadBalancer: {consistentHash: {httpHeaderName: X-User}}
      portLevelSettings:
      - port: {number: 9080}
        outlierDetection: {consecutiveGatewayErrors: 2}
";

fn policy_mesh() -> MeshConfig {
    let vs = vs(
        "reviews",
        "  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /a}}]
    route:
    - {destination: {host: reviews, subset: v1}, weight: 50}
    - {destination: {host: reviews, subset: v1, port: {number: 9080}}, weight: 50}
  - match: [{uri: {prefix: /b}}]
    route:
    - {destination: {host: reviews, subset: v2}, weight: 50}
    - {destination: {host: reviews, subset: v3, port: {number: 9080}}, weight: 50}
  - route: [{destination: {host: reviews, subset: v3}}]
",
    );
    // A second port makes `port: None` mean "no port" rather than the only port.
    let services = SERVICES.replace(
        "ports: [{number: 9080, name: http, protocol: HTTP, targetPort: 19080}]",
        "ports: [{number: 9080, name: http, protocol: HTTP, targetPort: 19080}, {number: 9443, name: https, protocol: HTTPS}]",
    );
    mesh(&format!("{services}{POLICY}{vs}"))
}

#[test]
fn subsets_inherit_and_override_the_rule_policy() {
    let m = policy_mesh();
    let v1 = cluster(&m, REVIEWS, Some("v1"), None);
    assert_eq!(v1.lb, LbPolicy::RoundRobin);
    let pool = ConnectionPool {
        max_connections: 10,
        connect_timeout: Duration::from_secs(2),
        max_pending_requests: 5,
        max_requests_per_connection: 1,
        http2: true,
        ..ConnectionPool::default()
    };
    assert_eq!(v1.pool, pool);
    let outlier = OutlierPolicy {
        consecutive_5xx: 3,
        interval: Duration::from_secs(5),
        max_ejection_percent: 100,
        ..OutlierPolicy::default()
    };
    assert_eq!(v1.outlier.as_ref(), Some(&outlier));
    // The subset replaces the load balancer (LEAST_CONN is LEAST_REQUEST) and the whole
    // connection pool, and inherits outlier detection.
    let v2 = cluster(&m, REVIEWS, Some("v2"), None);
    assert_eq!(v2.lb, LbPolicy::LeastRequest);
    assert_eq!(
        v2.pool,
        ConnectionPool {
            max_requests: 7,
            ..ConnectionPool::default()
        }
    );
    assert_eq!(v2.outlier.as_ref(), Some(&outlier));
    let v3 = cluster(&m, REVIEWS, Some("v3"), None);
    assert_eq!(
        v3.lb,
        LbPolicy::ConsistentHash(ConsistentHashKey::Header("x-user".to_string()))
    );
}

#[test]
fn port_level_settings_replace_instead_of_merging() {
    let m = policy_mesh();
    // Rule-level port settings: RANDOM, and everything else back to the defaults.
    let v1 = cluster(&m, REVIEWS, Some("v1"), Some(9080));
    assert_eq!(v1.lb, LbPolicy::Random);
    assert_eq!(v1.pool, ConnectionPool::default());
    assert_eq!(v1.outlier, None);
    // Subset port settings replace the subset's (and the rule's) policy the same way.
    let v3 = cluster(&m, REVIEWS, Some("v3"), Some(9080));
    assert_eq!(v3.lb, LbPolicy::LeastRequest);
    assert_eq!(v3.pool, ConnectionPool::default());
    let outlier = v3.outlier.as_ref().unwrap();
    assert_eq!(outlier.consecutive_gateway, Some(2));
    assert_eq!(outlier.consecutive_5xx, 5);
}

#[test]
fn a_destination_without_port_uses_the_only_service_port() {
    let m = mesh(&format!("{SERVICES}{POLICY}{}", subsets_vs()));
    assert_eq!(cluster(&m, REVIEWS, Some("v1"), None).lb, LbPolicy::Random);
}

#[test]
fn defaults_without_a_rule_policy() {
    let m = mesh(&format!("{SERVICES}{REVIEWS_DR}{}", subsets_vs()));
    let c = cluster(&m, REVIEWS, Some("v1"), None);
    assert_eq!(c.lb, LbPolicy::LeastRequest);
    assert_eq!(c.pool, ConnectionPool::default());
    assert_eq!(c.outlier, None);
}

#[test]
fn rule_lookup_prefers_the_proxy_namespace_then_the_service_then_root() {
    let rule = |ns: &str, lb: &str, host: &str| {
        format!(
            "\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: r, namespace: {ns}}}\nspec:\n  host: {host}\n  trafficPolicy: {{loadBalancer: {{simple: {lb}}}}}\n"
        )
    };
    let ratings = "ratings.prod.svc.cluster.local";
    let root = rule("istio-system", "RANDOM", ratings);
    let service = rule("prod", "ROUND_ROBIN", "ratings");
    let client = rule("default", "PASSTHROUGH", ratings);
    let lb = |yaml: &str| {
        mesh(&format!("{SERVICES}{yaml}")).clusters[&key(ratings, None, None)]
            .lb
            .clone()
    };
    assert_eq!(lb(&root), LbPolicy::Random);
    assert_eq!(lb(&format!("{root}{service}")), LbPolicy::RoundRobin);
    assert_eq!(
        lb(&format!("{root}{service}{client}")),
        LbPolicy::Passthrough
    );
    // Exact hosts beat wildcards in the same namespace.
    let wildcard =
        rule("prod", "RANDOM", "'*.prod.svc.cluster.local'").replace("name: r,", "name: a,");
    assert_eq!(lb(&format!("{wildcard}{service}")), LbPolicy::RoundRobin);
    assert_eq!(lb(&wildcard), LbPolicy::Random);
}

#[test]
fn legacy_consecutive_errors_count_gateway_errors_only() {
    let yaml = "
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin.org
  trafficPolicy:
    outlierDetection: {consecutiveErrors: 7, baseEjectionTime: 1m, minHealthPercent: 50}
";
    let m = mesh(&format!("{SERVICES}{yaml}"));
    let o = cluster(&m, "httpbin.org", None, None)
        .outlier
        .clone()
        .unwrap();
    assert_eq!((o.consecutive_5xx, o.consecutive_gateway), (0, Some(7)));
    assert_eq!(o.base_ejection_time, Duration::from_secs(60));
    assert_eq!(o.min_health_percent, 50);
    assert_eq!(o.interval, Duration::from_secs(10));
}

#[test]
fn consistent_hash_keys() {
    let rule = |lb: &str| {
        format!(
            "{SERVICES}---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: httpbin}}\nspec:\n  host: httpbin.org\n  trafficPolicy: {{loadBalancer: {lb}}}\n"
        )
    };
    let lb = |lb: &str| {
        cluster(&mesh(&rule(lb)), "httpbin.org", None, None)
            .lb
            .clone()
    };
    assert_eq!(
        lb("{consistentHash: {httpCookie: {name: user, path: /, ttl: 10s}}}"),
        LbPolicy::ConsistentHash(ConsistentHashKey::Cookie {
            name: "user".to_string(),
            path: Some("/".to_string()),
            ttl: Some(Duration::from_secs(10)),
        })
    );
    assert_eq!(
        lb("{consistentHash: {useSourceIp: true}}"),
        LbPolicy::ConsistentHash(ConsistentHashKey::SourceIp)
    );
    assert_eq!(
        lb("{consistentHash: {httpQueryParameterName: session}}"),
        LbPolicy::ConsistentHash(ConsistentHashKey::QueryParameter("session".to_string()))
    );
    assert_eq!(lb("{simple: PASSTHROUGH}"), LbPolicy::Passthrough);
    assert_eq!(lb("{simple: UNSPECIFIED}"), LbPolicy::LeastRequest);
    assert_eq!(lb("{simple: LEAST_CONN}"), LbPolicy::LeastRequest);
}

#[test]
fn http2_and_grpc_ports_speak_http2_upstream() {
    let http2 = |protocol: &str, rule: &str| {
        let services = SERVICES.replace(
            "name: http, protocol: HTTP, targetPort: 19080",
            &format!("name: http, protocol: {protocol}, targetPort: 19080"),
        );
        cluster(&mesh(&format!("{services}{rule}")), REVIEWS, None, None)
            .pool
            .http2
    };
    assert!(!http2("HTTP", ""));
    assert!(http2("GRPC", ""));
    assert!(http2("http2", ""));
    assert!(http2("GRPC-Web", ""));
    // `h2UpgradePolicy` only upgrades HTTP/1.1 ports; it cannot downgrade gRPC.
    let rule = |policy: &str| {
        format!(
            "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: reviews}}\nspec:\n  host: reviews\n  trafficPolicy: {{connectionPool: {{http: {{h2UpgradePolicy: {policy}}}}}}}\n"
        )
    };
    assert!(http2("GRPC", &rule("DO_NOT_UPGRADE")));
    assert!(http2("HTTP", &rule("UPGRADE")));
    // The other port of httpbin.org is HTTPS; a destination without a port picks neither.
    assert!(
        !cluster(&mesh(SERVICES), "httpbin.org", None, None)
            .pool
            .http2
    );
}
