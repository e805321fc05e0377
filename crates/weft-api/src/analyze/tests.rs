//! Analyzer cases over small multi-document inputs.

use crate::diagnostic::Severity;
use crate::load::load_text;

use super::analyze;

/// (code, field, kind/name) of every analyzer finding (validation findings excluded).
fn codes(yaml: &str) -> Vec<(String, String, String)> {
    let loaded = load_text("in.yaml", yaml);
    assert!(
        !loaded.has_errors(),
        "fixture must be valid: {:#?}",
        loaded.diagnostics
    );
    analyze(&loaded)
        .into_iter()
        .filter(|d| !matches!(d.code.as_deref(), Some("IST0106" | "IST0133")))
        .map(|d| {
            (
                d.code.unwrap_or_default(),
                d.field,
                format!("{}/{}", d.kind, d.name),
            )
        })
        .collect()
}

const SERVICES: &str = "
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints:
  - {address: 127.0.0.1, labels: {version: v1}}
  - {address: 127.0.0.2, labels: {version: v2}}
";

const DR: &str = "
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
";

fn vs(name: &str, body: &str) -> String {
    format!(
        "\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}}}\nspec:\n{body}"
    )
}

#[test]
fn clean_mesh_has_no_findings() {
    let input = format!(
        "{SERVICES}{DR}{}",
        vs(
            "reviews",
            "  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n      weight: 90\n    - destination: {host: reviews, subset: v2}\n      weight: 10\n"
        )
    );
    assert_eq!(codes(&input), vec![]);
}

#[test]
fn missing_subset_and_host() {
    let input = format!(
        "{SERVICES}{DR}{}",
        vs(
            "reviews",
            "  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v3}\n      weight: 50\n    - destination: {host: ratings}\n      weight: 50\n"
        )
    );
    let found = codes(&input);
    assert!(
        found.contains(&(
            "IST0101".into(),
            "spec.http[0].route[0].destination.subset".into(),
            "VirtualService/reviews".into()
        )),
        "{found:#?}"
    );
    assert!(
        found.contains(&(
            "IST0101".into(),
            "spec.http[0].route[1].destination.host".into(),
            "VirtualService/reviews".into()
        )),
        "{found:#?}"
    );
}

#[test]
fn two_mesh_virtual_services_for_one_host_conflict_but_gateway_ones_merge() {
    let body = "  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n";
    let found = codes(&format!("{SERVICES}{}{}", vs("a", body), vs("b", body)));
    assert_eq!(
        found.iter().filter(|f| f.0 == "IST0109").count(),
        2,
        "{found:#?}"
    );
    let gw = "  hosts: [reviews]\n  gateways: [ingress]\n  http:\n  - route:\n    - destination: {host: reviews}\n";
    let found = codes(&format!("{SERVICES}{}{}", vs("a", gw), vs("b", gw)));
    assert!(found.iter().all(|f| f.0 != "IST0109"), "{found:#?}");
}

#[test]
fn route_after_catch_all_is_unreachable() {
    let body = "  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n  - match:\n    - headers: {end-user: {exact: jason}}\n    route:\n    - destination: {host: reviews}\n";
    let found = codes(&format!("{SERVICES}{}", vs("a", body)));
    assert_eq!(
        found,
        vec![(
            "IST0130".into(),
            "spec.http[1]".into(),
            "VirtualService/a".into()
        )]
    );
}

#[test]
fn duplicate_match_is_ineffective() {
    let body = "  hosts: [reviews]\n  http:\n  - match:\n    - uri: {prefix: /a}\n    route:\n    - destination: {host: reviews}\n  - match:\n    - uri: {prefix: /a}\n    route:\n    - destination: {host: reviews}\n";
    let found = codes(&format!("{SERVICES}{}", vs("a", body)));
    assert_eq!(
        found,
        vec![(
            "IST0131".into(),
            "spec.http[1].match[0]".into(),
            "VirtualService/a".into()
        )]
    );
}

#[test]
fn subset_selecting_nothing_and_unknown_dr_host() {
    let dr = "
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v3, labels: {version: v3}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ghost}
spec:
  host: ghost
";
    let found = codes(&format!("{SERVICES}{dr}"));
    assert!(
        found.contains(&(
            "IST0173".into(),
            "spec.subsets[0].labels".into(),
            "DestinationRule/reviews".into()
        )),
        "{found:#?}"
    );
    assert!(
        found.contains(&(
            "IST0174".into(),
            "spec.host".into(),
            "DestinationRule/ghost".into()
        )),
        "{found:#?}"
    );
}

#[test]
fn kubernetes_services_and_deployments_count_as_known() {
    let input = "
apiVersion: v1
kind: Service
metadata: {name: hello}
spec:
  selector: {app: hello}
  ports: [{port: 8080, name: http}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: hello-v1}
spec:
  template:
    metadata:
      labels: {app: hello, version: v1}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: hello}
spec:
  host: hello
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
";
    let found = codes(input);
    assert_eq!(
        found,
        vec![(
            "IST0173".into(),
            "spec.subsets[1].labels".into(),
            "DestinationRule/hello".into()
        )]
    );
}

#[test]
fn dr_tls_conflicting_with_peer_authentication() {
    let input = format!(
        "{SERVICES}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: default, namespace: istio-system}}
spec:
  mtls: {{mode: STRICT}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews}}
spec:
  host: reviews
  trafficPolicy:
    tls: {{mode: DISABLE}}
"
    );
    let loaded = load_text("in.yaml", &input);
    let found: Vec<_> = analyze(&loaded)
        .into_iter()
        .filter(|d| d.code.as_deref() == Some("WEFT0001"))
        .collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].field, "spec.trafficPolicy.tls.mode");
    assert_eq!(found[0].severity, Severity::Error);
    assert!(found[0].message.contains("istio-system/default"));
}
