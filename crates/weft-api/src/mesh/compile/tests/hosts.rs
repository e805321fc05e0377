//! Virtual hosts: aliases, wildcards, default routes, conflicts, visibility, outbound policy.

use super::*;
use crate::mesh::{OutboundPolicy, RetryPolicy};

#[test]
fn service_hosts_answer_to_every_alias_with_or_without_port() {
    let m = mesh(&format!(
        "{SERVICES}{}",
        vs(
            "reviews",
            "  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n"
        )
    ));
    for authority in [
        "reviews",
        "reviews.default",
        "reviews.default.svc",
        REVIEWS,
        "reviews:9080",
        "reviews.default.svc.cluster.local:9080",
        "Reviews.Default",
        "reviews.default.svc.cluster.local.",
    ] {
        let vh = m
            .virtual_host(authority)
            .unwrap_or_else(|| panic!("{authority}"));
        assert_eq!(vh.name, REVIEWS, "{authority}");
        assert_eq!(vh.virtual_service.as_deref(), Some("default/reviews"));
    }
    assert!(m.virtual_host("reviews.other").is_none());
}

#[test]
fn bare_names_only_for_the_proxy_namespace() {
    let m = mesh(SERVICES);
    assert_eq!(
        m.virtual_host("ratings.prod").unwrap().name,
        "ratings.prod.svc.cluster.local"
    );
    assert_eq!(
        m.virtual_host("ratings.prod.svc:9080").unwrap().name,
        "ratings.prod.svc.cluster.local"
    );
    assert!(m.virtual_host("ratings").is_none());
    let prod = mesh_with(SERVICES, &options("prod"));
    assert_eq!(
        prod.virtual_host("ratings").unwrap().name,
        "ratings.prod.svc.cluster.local"
    );
    assert!(prod.virtual_host("reviews").is_none());
    assert!(prod.virtual_host("reviews.default").is_some());
}

#[test]
fn service_entry_hosts_are_literal_and_get_a_default_route() {
    let m = mesh(SERVICES);
    let vh = m.virtual_host("httpbin.org:80").unwrap();
    assert_eq!(vh.name, "httpbin.org");
    assert_eq!(vh.virtual_service, None);
    assert!(m.virtual_host("httpbin").is_none());
    let [route] = vh.routes.as_slice() else {
        panic!("{:?}", vh.routes)
    };
    assert_eq!(route.name, "default");
    assert!(route.matches.is_empty());
    let [d] = destinations(route) else { panic!() };
    assert_eq!(d.cluster, key("httpbin.org", None, None));
    assert_eq!(d.weight, 1);
    assert_eq!(route.retry, RetryPolicy::istio_default());
    assert_eq!(route.timeout, None);
    assert!(route.fault.is_none() && route.mirrors.is_empty() && route.cors.is_none());
    // Every default route has its cluster.
    assert!(m.clusters.contains_key(&key("httpbin.org", None, None)));
    assert!(m.clusters.contains_key(&key(REVIEWS, None, None)));
    assert_eq!(m.virtual_hosts.len(), 3);
}

#[test]
fn wildcard_hosts_longest_suffix_first() {
    let yaml = "
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: example}
spec:
  hosts: ['*.example.com']
  location: MESH_EXTERNAL
  resolution: NONE
  ports: [{number: 80, name: http, protocol: HTTP}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wiki}
spec:
  hosts: ['*.wiki.example.com']
  location: MESH_EXTERNAL
  resolution: NONE
  ports: [{number: 80, name: http, protocol: HTTP}]
";
    let m = mesh(yaml);
    let patterns: Vec<&str> = m.wildcard_hosts.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(patterns, ["*.wiki.example.com", "*.example.com"]);
    assert_eq!(
        m.virtual_host("en.wiki.example.com:80").unwrap().name,
        "*.wiki.example.com"
    );
    assert_eq!(
        m.virtual_host("api.example.com").unwrap().name,
        "*.example.com"
    );
    assert!(m.virtual_host("example.com").is_none());
    let c = cluster(&m, "*.wiki.example.com", None, None);
    assert!(c.endpoints.is_empty());
}

#[test]
fn a_wildcard_virtual_service_routes_matching_service_entry_hosts() {
    let yaml = format!(
        "{SERVICES}{}",
        "---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: orgs}
spec:
  hosts: ['*.org']
  http:
  - route:
    - destination: {host: httpbin.org}
    timeout: 3s
"
    );
    let m = mesh(&yaml);
    let vh = m.virtual_host("httpbin.org").unwrap();
    assert_eq!(vh.name, "*.org");
    assert_eq!(vh.routes[0].name, "orgs.0");
    assert!(!m.exact_hosts.contains_key("httpbin.org"));
}

#[test]
fn first_virtual_service_by_namespace_and_name_wins_a_host() {
    let yaml = format!(
        "{SERVICES}{}{}",
        vs(
            "zeta",
            "  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n"
        ),
        vs(
            "alpha",
            "  hosts: [reviews.default.svc.cluster.local]\n  http:\n  - route:\n    - destination: {host: reviews}\n    timeout: 1s\n"
        ),
    );
    let m = mesh(&yaml);
    let vh = m.virtual_host("reviews").unwrap();
    assert_eq!(vh.virtual_service.as_deref(), Some("default/alpha"));
    assert_eq!(vh.routes[0].name, "alpha.0");
    assert_eq!(
        m.virtual_hosts.iter().filter(|v| v.name == REVIEWS).count(),
        1
    );
}

#[test]
fn short_hosts_resolve_in_the_virtual_service_namespace() {
    let yaml = format!(
        "{SERVICES}{}",
        "---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: prod}
spec:
  hosts: [ratings]
  http:
  - route:
    - destination: {host: ratings}
"
    );
    let m = mesh(&yaml);
    let vh = m.virtual_host("ratings.prod").unwrap();
    assert_eq!(vh.virtual_service.as_deref(), Some("prod/ratings"));
    assert_eq!(
        destinations(&vh.routes[0])[0].cluster.host,
        "ratings.prod.svc.cluster.local"
    );
}

#[test]
fn gateway_only_and_hidden_virtual_services_are_ignored() {
    let yaml = format!(
        "{SERVICES}{}{}{}",
        vs(
            "edge",
            "  hosts: [reviews]\n  gateways: [ingress]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n"
        ),
        vs(
            "both",
            "  hosts: [httpbin.org]\n  gateways: [ingress, mesh]\n  http:\n  - route:\n    - destination: {host: httpbin.org}\n"
        ),
        "---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: prod}
spec:
  hosts: [ratings]
  exportTo: [.]
  http:
  - route:
    - destination: {host: ratings}
",
    );
    let m = mesh(&yaml);
    assert_eq!(m.virtual_host("reviews").unwrap().routes[0].name, "default");
    assert_eq!(
        m.virtual_host("httpbin.org").unwrap().routes[0].name,
        "both.0"
    );
    assert_eq!(
        m.virtual_host("ratings.prod").unwrap().virtual_service,
        None
    );
    let prod = mesh_with(&yaml, &options("prod"));
    assert_eq!(
        prod.virtual_host("ratings")
            .unwrap()
            .virtual_service
            .as_deref(),
        Some("prod/ratings")
    );
}

#[test]
fn virtual_service_hosts_without_a_service_still_route() {
    let m = mesh(&vs(
        "api",
        "  hosts: [api.internal.example]\n  http:\n  - route:\n    - destination: {host: backend}\n",
    ));
    let vh = m.virtual_host("api.internal.example").unwrap();
    assert_eq!(
        destinations(&vh.routes[0])[0].cluster.host,
        "backend.default.svc.cluster.local"
    );
    let c = cluster(&m, "backend.default.svc.cluster.local", None, None);
    assert!(c.endpoints.is_empty() && !c.undefined_subset);
}

const SIDECAR_REGISTRY_ONLY: &str = "
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: istio-system}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
";

#[test]
fn outbound_policy_from_sidecars_or_the_flag() {
    assert_eq!(mesh(SERVICES).outbound_policy, OutboundPolicy::AllowAny);
    // The root namespace's default Sidecar applies to every namespace without one.
    assert_eq!(
        mesh(SIDECAR_REGISTRY_ONLY).outbound_policy,
        OutboundPolicy::RegistryOnly
    );
    let flag = CompileOptions {
        outbound_policy: Some(OutboundPolicy::AllowAny),
        ..CompileOptions::default()
    };
    assert_eq!(
        mesh_with(SIDECAR_REGISTRY_ONLY, &flag).outbound_policy,
        OutboundPolicy::AllowAny
    );
    // A namespace Sidecar replaces the root one, even without an outbound policy.
    let own = format!(
        "{SIDECAR_REGISTRY_ONLY}---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: default, namespace: default}}
spec:
  egress: [{{hosts: ['./*']}}]
"
    );
    assert_eq!(mesh(&own).outbound_policy, OutboundPolicy::AllowAny);
    // Sidecars with a workload selector are per workload, not the namespace default.
    let selected = "
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: strict}
spec:
  workloadSelector: {labels: {app: reviews}}
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
";
    assert_eq!(mesh(selected).outbound_policy, OutboundPolicy::AllowAny);
    let namespace_default = selected.replace("  workloadSelector: {labels: {app: reviews}}\n", "");
    assert_eq!(
        mesh(&namespace_default).outbound_policy,
        OutboundPolicy::RegistryOnly
    );
}

#[test]
fn a_virtual_service_without_routes_for_this_proxy_leaves_default_routing() {
    let yaml = format!(
        "{SERVICES}{}{}",
        vs(
            "scoped",
            "  hosts: [reviews]\n  http:\n  - match: [{sourceNamespace: prod}]\n    route:\n    - destination: {host: reviews}\n      weight: 100\n    timeout: 1s\n"
        ),
        vs(
            "tcp",
            "  hosts: [httpbin.org]\n  tcp:\n  - route:\n    - destination: {host: httpbin.org, port: {number: 443}}\n"
        ),
    );
    let m = mesh(&yaml);
    let reviews = m.virtual_host("reviews").unwrap();
    assert_eq!(
        (
            reviews.virtual_service.as_deref(),
            reviews.routes[0].name.as_str()
        ),
        (None, "default")
    );
    assert_eq!(m.virtual_host("httpbin.org").unwrap().virtual_service, None);
    let prod = mesh_with(&yaml, &options("prod"));
    let reviews = prod.virtual_host("reviews.default").unwrap();
    assert_eq!(reviews.virtual_service.as_deref(), Some("default/scoped"));
}
