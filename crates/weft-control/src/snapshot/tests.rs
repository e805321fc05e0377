use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::config::{Source, StoredResource};

fn load(yaml: &str) -> Vec<Arc<StoredResource>> {
    let loaded = weft_api::load_text("test.yaml", yaml);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded
        .resources
        .into_iter()
        .map(|r| Arc::new(StoredResource::new(r, Source::Applied)))
        .collect()
}

const MESH: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-1, namespace: default}
spec: {address: 10.0.0.1, labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: billing, namespace: payments}
spec:
  hosts: [billing.payments.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: billing}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: billing-1, namespace: payments}
spec: {address: 10.0.0.2, labels: {app: billing}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews}}]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: billing, namespace: payments}
spec: {host: billing}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: billing-from-default, namespace: default}
spec: {host: billing.payments.svc.cluster.local}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: payments-only, namespace: payments}
spec: {action: DENY, rules: [{}]}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
"#;

fn names(resources: &[&Arc<StoredResource>]) -> Vec<String> {
    resources
        .iter()
        .map(|r| format!("{}/{}/{}", r.key.kind, r.key.namespace, r.key.name))
        .collect()
}

fn scope<'a>(ns: &'a str, labels: &'a BTreeMap<String, String>) -> ProxyScope<'a> {
    ProxyScope {
        namespace: ns,
        labels,
        root_namespace: ROOT_NAMESPACE,
    }
}

#[test]
fn without_a_sidecar_everything_is_sent() {
    let all = load(MESH);
    let labels = BTreeMap::new();
    assert_eq!(scoped(&all, &scope("default", &labels)).len(), all.len());
    let json: serde_json::Value =
        serde_json::from_str(&snapshot_json(&all, &scope("default", &labels))).unwrap();
    assert_eq!(json.as_array().unwrap().len(), all.len());
    assert_eq!(json[0]["apiVersion"], "networking.istio.io/v1");
    assert!(json[0]["metadata"]["namespace"].is_string());
}

#[test]
fn a_namespace_sidecar_narrows_host_resources_to_its_egress_hosts() {
    let all = load(&format!(
        "{MESH}---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {{name: default, namespace: default}}\nspec:\n  egress:\n  - hosts: [\"./*\", \"istio-system/*\"]\n"
    ));
    let labels = BTreeMap::new();
    let got = names(&scoped(&all, &scope("default", &labels)));
    assert_eq!(
        got,
        vec![
            "ServiceEntry/default/reviews",
            "WorkloadEntry/default/reviews-1",
            "VirtualService/default/reviews",
            "PeerAuthentication/istio-system/default",
            "Sidecar/default/default",
        ]
    );
    // Another namespace's proxy is not affected by default's Sidecar.
    assert_eq!(scoped(&all, &scope("payments", &labels)).len(), all.len());
}

#[test]
fn the_root_sidecar_applies_mesh_wide_and_dot_is_the_proxys_namespace() {
    let all = load(&format!(
        "{MESH}---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {{name: default, namespace: istio-system}}\nspec:\n  egress:\n  - hosts: [\"./*\", \"*/billing.payments.svc.cluster.local\"]\n"
    ));
    let labels = BTreeMap::new();
    let got = names(&scoped(&all, &scope("payments", &labels)));
    assert_eq!(
        got,
        vec![
            "ServiceEntry/payments/billing",
            "WorkloadEntry/payments/billing-1",
            "DestinationRule/payments/billing",
            "DestinationRule/default/billing-from-default",
            "AuthorizationPolicy/payments/payments-only",
            "PeerAuthentication/istio-system/default",
            "Sidecar/istio-system/default",
        ]
    );
    // From default, the same Sidecar keeps default's hosts and billing, not payments' policy.
    let got = names(&scoped(&all, &scope("default", &labels)));
    assert!(got.contains(&"ServiceEntry/default/reviews".to_string()));
    assert!(got.contains(&"ServiceEntry/payments/billing".to_string()));
    assert!(!got.contains(&"AuthorizationPolicy/payments/payments-only".to_string()));
}

#[test]
fn a_selecting_sidecar_wins_over_the_namespace_default() {
    let all = load(&format!(
        "{MESH}---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {{name: default, namespace: default}}\nspec:\n  egress:\n  - hosts: [\"./*\"]\n---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {{name: frontend, namespace: default}}\nspec:\n  workloadSelector: {{labels: {{app: frontend}}}}\n  egress:\n  - hosts: [\"payments/*\"]\n"
    ));
    let frontend = BTreeMap::from([("app".to_string(), "frontend".to_string())]);
    let (sc, _) = applicable_sidecar(&all, &scope("default", &frontend)).unwrap();
    assert_eq!(sc.key.name, "frontend");
    let got = names(&scoped(&all, &scope("default", &frontend)));
    assert!(got.contains(&"ServiceEntry/payments/billing".to_string()));
    assert!(!got.contains(&"ServiceEntry/default/reviews".to_string()));
    let other = BTreeMap::new();
    let (sc, _) = applicable_sidecar(&all, &scope("default", &other)).unwrap();
    assert_eq!(sc.key.name, "default");
}

#[test]
fn egress_hosts_parse() {
    assert_eq!(
        EgressHost::parse("./*", "ns1"),
        Some(EgressHost {
            namespace: Some("ns1".into()),
            host: "*".into()
        })
    );
    assert_eq!(
        EgressHost::parse("*/API.example.com", "ns1"),
        Some(EgressHost {
            namespace: None,
            host: "api.example.com".into()
        })
    );
    assert_eq!(EgressHost::parse("nohost", "ns1"), None);
}
