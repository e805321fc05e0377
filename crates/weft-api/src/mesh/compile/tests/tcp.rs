//! TCP and TLS routes: host aliases, port filtering, match blocks, weighted destinations and the
//! clusters they need.

use super::*;
use crate::mesh::{ConnectionFacts, TcpRouteSet};

/// `db.example.com`: an external TCP service with one static endpoint, next to [`SERVICES`].
const DB: &str = "
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db}
spec:
  hosts: [db.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 5432, name: tcp-pg, protocol: TCP}]
  endpoints: [{address: 10.1.0.1}]
";

fn facts(port: u16) -> ConnectionFacts {
    ConnectionFacts {
        port,
        destination_ip: None,
        source_ip: None,
    }
}

fn set<'a>(m: &'a MeshConfig, host: &str, port: u16) -> &'a TcpRouteSet {
    m.tcp_route(host, port)
        .unwrap_or_else(|| panic!("no tcp routes for {host}:{port}"))
}

fn weights(ds: &[WeightedDestination]) -> Vec<(String, u32)> {
    ds.iter()
        .map(|d| (d.cluster.to_string(), d.weight))
        .collect()
}

#[test]
fn tcp_routes_keep_order_ports_and_weights() {
    let m = mesh(&format!(
        "{SERVICES}{REVIEWS_DR}{DB}{}",
        vs(
            "db",
            "  hosts: [db.example.com]
  tcp:
  - match: [{port: 5432, destinationSubnets: [10.0.0.0/8], sourceSubnet: 192.168.0.0/16}]
    route:
    - {destination: {host: db.example.com, port: {number: 5432}}, weight: 75}
    - {destination: {host: reviews, subset: v2}, weight: 25}
    - {destination: {host: reviews, subset: v3}}
  - route: [{destination: {host: db.example.com}}]
"
        )
    ));
    let s = set(&m, "db.example.com", 5432);
    assert_eq!(
        (s.name.as_str(), s.virtual_service.as_str()),
        ("db.example.com", "default/db")
    );
    let [first, last] = s.tcp.as_slice() else {
        panic!("{:?}", s.tcp)
    };
    assert_eq!(
        (first.name.as_str(), last.name.as_str()),
        ("db.tcp.0", "db.tcp.1")
    );
    assert_eq!(
        weights(&first.destinations),
        [
            ("outbound|5432||db.example.com".to_string(), 75),
            (format!("outbound||v2|{REVIEWS}"), 25),
            (format!("outbound||v3|{REVIEWS}"), 0),
        ]
    );
    assert_eq!(
        weights(&last.destinations),
        [("outbound|||db.example.com".to_string(), 100)]
    );
    let [block] = first.matches.as_slice() else {
        panic!("{:?}", first.matches)
    };
    assert_eq!(block.port, Some(5432));
    assert_eq!(block.destination_subnets[0].to_string(), "10.0.0.0/8");
    assert_eq!(
        block.source_subnet.map(|n| n.to_string()).as_deref(),
        Some("192.168.0.0/16")
    );
    // Without a destination IP the subnet block cannot match: the catch-all route applies.
    assert_eq!(
        s.tcp_route(&facts(5432)).map(|r| r.name.as_str()),
        Some("db.tcp.1")
    );
    for (host, subset, port) in [
        ("db.example.com", None, Some(5432)),
        ("db.example.com", None, None),
        (REVIEWS, Some("v2"), None),
        (REVIEWS, Some("v3"), None),
    ] {
        cluster(&m, host, subset, port);
    }
    assert!(s.tls.is_empty());
    // The host keeps its default HTTP route: the VirtualService has no `http` routes.
    assert_eq!(routes(&m, "db.example.com")[0].name, "default");
}

#[test]
fn hosts_answer_to_their_aliases_and_ports_filter() {
    let m = mesh(&format!(
        "{SERVICES}{}",
        vs(
            "reviews",
            "  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
  tcp:
  - match: [{port: 9080}, {port: 9081}]
    route: [{destination: {host: reviews}}]
"
        )
    ));
    for host in [
        "reviews",
        "reviews.default",
        "reviews.default.svc",
        REVIEWS,
        "Reviews.Default.",
    ] {
        assert_eq!(set(&m, host, 9080).name, REVIEWS, "{host}");
    }
    assert!(set(&m, "reviews", 9081).tcp_route(&facts(9081)).is_some());
    assert!(
        m.tcp_route("reviews", 80).is_none(),
        "no route serves port 80"
    );
    assert!(m.tcp_route("reviews.other", 9080).is_none());
    assert!(m.tcp_route("ratings.prod", 9080).is_none());
    // HTTP routing is unaffected.
    assert_eq!(
        m.virtual_host("reviews")
            .unwrap()
            .virtual_service
            .as_deref(),
        Some("default/reviews")
    );
}

#[test]
fn tls_routes_match_sni() {
    let m = mesh(&format!(
        "{SERVICES}{}",
        vs(
            "ext",
            "  hosts: ['*.example.com']
  tls:
  - match: [{sniHosts: [api.example.com], port: 443}]
    route: [{destination: {host: httpbin.org, port: {number: 443}}}]
  - match: [{sniHosts: ['*.example.com']}]
    route: [{destination: {host: httpbin.org}}]
"
        )
    ));
    let s = set(&m, "www.example.com", 443);
    assert_eq!(s.name, "*.example.com");
    assert!(s.has_tls_for_port(443) && s.tcp.is_empty());
    let name = |sni: &str, port: u16| s.tls_route(sni, &facts(port)).map(|r| r.name.clone());
    assert_eq!(name("api.example.com", 443).as_deref(), Some("ext.tls.0"));
    assert_eq!(name("api.example.com", 8443).as_deref(), Some("ext.tls.1"));
    assert_eq!(name("www.example.com", 443).as_deref(), Some("ext.tls.1"));
    assert_eq!(name("example.org", 443), None);
    assert_eq!(s.tls[0].matches[0].sni_hosts, ["api.example.com"]);
    cluster(&m, "httpbin.org", None, Some(443));
    cluster(&m, "httpbin.org", None, None);
    assert!(m.tcp_route("example.com", 443).is_none());
}

#[test]
fn selectors_for_other_proxies_drop_blocks_routes_and_hosts() {
    let yaml = format!(
        "{SERVICES}{DB}{}{}",
        vs(
            "db",
            "  hosts: [db.example.com]
  tcp:
  - match: [{sourceNamespace: prod}]
    route: [{destination: {host: db.example.com, subset: prod-only}}]
  - match: [{sourceNamespace: prod, port: 1}, {gateways: [mesh], port: 5432}]
    route: [{destination: {host: db.example.com}}]
"
        ),
        vs(
            "gw",
            "  hosts: [httpbin.org]
  gateways: [ingress]
  tcp:
  - route: [{destination: {host: httpbin.org}}]
"
        )
    );
    let m = mesh(&yaml);
    let s = set(&m, "db.example.com", 5432);
    let [only] = s.tcp.as_slice() else {
        panic!("{:?}", s.tcp)
    };
    assert_eq!(only.name, "db.tcp.1");
    assert_eq!(only.matches.len(), 1);
    assert!(m.tcp_route("db.example.com", 1).is_none());
    assert!(
        m.tcp_route("httpbin.org", 80).is_none(),
        "gateway-only VirtualService"
    );
    assert!(
        !m.clusters
            .keys()
            .any(|k| k.subset.as_deref() == Some("prod-only")),
        "a dropped route needs no cluster"
    );
    let prod = mesh_with(&yaml, &options("prod"));
    let s = set(&prod, "db.example.com", 1);
    assert_eq!(s.tcp[0].name, "db.tcp.0");
    assert_eq!(s.tcp[1].matches.len(), 2);
}

#[test]
fn the_first_virtual_service_keeps_a_host() {
    let m = mesh(&format!(
        "{DB}{}{}",
        vs(
            "a",
            "  hosts: [db.example.com]\n  tcp:\n  - route: [{destination: {host: db.example.com}}]\n"
        ),
        vs(
            "b",
            "  hosts: [db.example.com]\n  tcp:\n  - route: [{destination: {host: other.example.com}}]\n"
        ),
    ));
    assert_eq!(m.tcp_routes.len(), 1);
    assert_eq!(set(&m, "db.example.com", 5432).virtual_service, "default/a");
}

#[test]
fn every_service_has_a_default_cluster() {
    let m = mesh(&format!("{SERVICES}{DB}"));
    for host in [
        REVIEWS,
        "ratings.prod.svc.cluster.local",
        "httpbin.org",
        "db.example.com",
    ] {
        assert!(!cluster(&m, host, None, None).undefined_subset, "{host}");
    }
    assert!(m.tcp_routes.is_empty());
}
