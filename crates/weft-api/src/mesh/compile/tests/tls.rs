//! Client TLS: the DestinationRule `tls` merge (subset over port level over top level), the
//! mapping of each mode, ServiceEntry `subjectAltNames` and endpoint identities.

use std::path::PathBuf;

use super::*;
use crate::mesh::{TlsFiles, UpstreamTls};

const API: &str = "api.internal";

/// `api.internal` with two ports and SANs; `v1` has a service account, `v2` none.
const API_SERVICE: &str = "
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api}
spec:
  hosts: [api.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  subjectAltNames: [spiffe://cluster.local/ns/default/sa/api]
  ports:
  - {number: 8080, name: http, protocol: HTTP}
  - {number: 8443, name: https, protocol: HTTPS}
  endpoints:
  - {address: 10.0.0.1, labels: {version: v1}, serviceAccount: api}
  - {address: 10.0.0.2, labels: {version: v2}}
";

/// Every (subset, port) combination of `api.internal`.
fn api_vs() -> String {
    let mut spec = "  hosts: [api.internal]\n  http:\n".to_string();
    for (i, subset) in ["v1", "v2"].iter().enumerate() {
        for port in [8080, 8443] {
            spec.push_str(&format!(
                "  - match: [{{uri: {{prefix: /{i}/{port}}}}}]\n    route: [{{destination: {{host: api.internal, subset: {subset}, port: {{number: {port}}}}}}}]\n"
            ));
        }
    }
    spec.push_str("  - match: [{uri: {prefix: /tls}}]\n    route: [{destination: {host: api.internal, port: {number: 8443}}}]\n");
    spec.push_str("  - route: [{destination: {host: api.internal, port: {number: 8080}}}]\n");
    vs("api", &spec)
}

/// A DestinationRule for `api.internal` with `spec` (indented, without `host`).
fn dr(spec: &str) -> String {
    format!(
        "\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: api}}\nspec:\n  host: api.internal\n{spec}"
    )
}

const PRECEDENCE_DR: &str = "  trafficPolicy:
    tls: {mode: SIMPLE, caCertificates: /etc/ca.pem, sni: api.example.com}
    portLevelSettings:
    - port: {number: 8443}
      tls: {mode: MUTUAL, clientCertificate: /etc/cert.pem, privateKey: /etc/key.pem}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      tls: {mode: ISTIO_MUTUAL, sni: v1.api.internal}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      portLevelSettings:
      - port: {number: 8080}
        tls: {mode: DISABLE}
";

fn tls_of(m: &MeshConfig, subset: Option<&str>, port: Option<u16>) -> Option<UpstreamTls> {
    cluster(m, API, subset, port).tls.clone()
}

fn simple() -> UpstreamTls {
    UpstreamTls::Simple(TlsFiles {
        ca_certificates: Some(PathBuf::from("/etc/ca.pem")),
        sni: Some("api.example.com".to_string()),
        ..TlsFiles::default()
    })
}

fn mutual() -> UpstreamTls {
    UpstreamTls::Mutual(TlsFiles {
        client_certificate: Some(PathBuf::from("/etc/cert.pem")),
        private_key: Some(PathBuf::from("/etc/key.pem")),
        ..TlsFiles::default()
    })
}

fn istio_mutual_v1() -> UpstreamTls {
    UpstreamTls::IstioMutual {
        sni: Some("v1.api.internal".to_string()),
        subject_alt_names: Vec::new(),
    }
}

#[test]
fn precedence_subset_over_port_level_over_top_level() {
    let m = mesh(&format!("{API_SERVICE}{}{}", dr(PRECEDENCE_DR), api_vs()));
    // No subset: the port-level settings for the port, else the top level.
    assert_eq!(tls_of(&m, None, Some(8080)), Some(simple()));
    assert_eq!(tls_of(&m, None, Some(8443)), Some(mutual()));
    assert_eq!(tls_of(&m, None, None), Some(simple()), "default cluster");
    // The subset's top-level tls beats the rule's port level.
    assert_eq!(tls_of(&m, Some("v1"), Some(8080)), Some(istio_mutual_v1()));
    assert_eq!(tls_of(&m, Some("v1"), Some(8443)), Some(istio_mutual_v1()));
    // The subset's port level beats everything; without one the rule's levels apply.
    assert_eq!(
        tls_of(&m, Some("v2"), Some(8080)),
        Some(UpstreamTls::Disable)
    );
    assert_eq!(tls_of(&m, Some("v2"), Some(8443)), Some(mutual()));
}

#[test]
fn subset_port_level_beats_subset_top_level() {
    let spec = "  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      tls: {mode: ISTIO_MUTUAL}
      portLevelSettings:
      - port: {number: 8443}
        tls: {mode: SIMPLE, insecureSkipVerify: true}
";
    let m = mesh(&format!("{API_SERVICE}{}{}", dr(spec), api_vs()));
    assert_eq!(
        tls_of(&m, Some("v1"), Some(8080)),
        Some(UpstreamTls::IstioMutual {
            sni: None,
            subject_alt_names: Vec::new()
        })
    );
    assert_eq!(
        tls_of(&m, Some("v1"), Some(8443)),
        Some(UpstreamTls::Simple(TlsFiles {
            insecure_skip_verify: true,
            ..TlsFiles::default()
        }))
    );
    assert_eq!(tls_of(&m, Some("v2"), Some(8080)), None);
}

/// As Istio documents for `portLevelSettings`: a port's settings replace the destination level
/// wholesale, so a port entry without `tls` means auto mTLS, not the top-level `tls`.
#[test]
fn port_level_settings_without_tls_reset_to_auto() {
    let spec = "  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
    portLevelSettings:
    - port: {number: 8443}
      connectionPool: {tcp: {maxConnections: 10}}
";
    let m = mesh(&format!("{API_SERVICE}{}{}", dr(spec), api_vs()));
    assert!(matches!(
        tls_of(&m, None, Some(8080)),
        Some(UpstreamTls::IstioMutual { .. })
    ));
    assert_eq!(tls_of(&m, None, Some(8443)), None);
}

#[test]
fn no_tls_means_auto_mtls() {
    let without_dr = mesh(&format!("{API_SERVICE}{}", api_vs()));
    assert_eq!(tls_of(&without_dr, None, Some(8080)), None);
    assert_eq!(tls_of(&without_dr, Some("v1"), Some(8080)), None);
    let no_tls = dr(
        "  trafficPolicy:\n    loadBalancer: {simple: RANDOM}\n  subsets:\n  - {name: v1, labels: {version: v1}}\n",
    );
    let m = mesh(&format!("{API_SERVICE}{no_tls}{}", api_vs()));
    assert_eq!(tls_of(&m, None, Some(8443)), None);
    assert_eq!(tls_of(&m, Some("v1"), Some(8443)), None);
    // Other services are untouched.
    let reviews = mesh(SERVICES);
    assert_eq!(cluster(&reviews, REVIEWS, None, None).tls, None);
}

/// A `tls` block without `mode` counts as not set: it neither sets nor overrides anything.
#[test]
fn tls_without_mode_is_not_set() {
    let spec = "  trafficPolicy:
    tls: {mode: SIMPLE, caCertificates: /etc/ca.pem, sni: api.example.com}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      tls: {sni: ignored.example.com}
";
    let m = mesh(&format!("{API_SERVICE}{}{}", dr(spec), api_vs()));
    assert_eq!(tls_of(&m, Some("v1"), Some(8080)), Some(simple()));
    let only_sni = dr("  trafficPolicy:\n    tls: {sni: x.example.com}\n");
    let m = mesh(&format!("{API_SERVICE}{only_sni}{}", api_vs()));
    assert_eq!(tls_of(&m, None, Some(8080)), None);
}

#[test]
fn modes_map_fields() {
    let spec = "  trafficPolicy:
    tls:
      mode: ISTIO_MUTUAL
      sni: api.internal
      subjectAltNames: [spiffe://cluster.local/ns/default/sa/api-v2]
    portLevelSettings:
    - port: {number: 8443}
      tls:
        mode: MUTUAL
        clientCertificate: /etc/cert.pem
        privateKey: /etc/key.pem
        caCertificates: /etc/ca.pem
        subjectAltNames: [api.example.com]
        sni: api.example.com
  subsets:
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      tls: {mode: SIMPLE, credentialName: api-cert}
";
    let m = mesh(&format!("{API_SERVICE}{}{}", dr(spec), api_vs()));
    // `credentialName` is not supported standalone: no files, system roots.
    assert_eq!(
        tls_of(&m, Some("v2"), Some(8080)),
        Some(UpstreamTls::Simple(TlsFiles::default()))
    );
    assert_eq!(
        tls_of(&m, None, Some(8080)),
        Some(UpstreamTls::IstioMutual {
            sni: Some("api.internal".to_string()),
            subject_alt_names: vec!["spiffe://cluster.local/ns/default/sa/api-v2".to_string()],
        })
    );
    assert_eq!(
        tls_of(&m, None, Some(8443)),
        Some(UpstreamTls::Mutual(TlsFiles {
            client_certificate: Some(PathBuf::from("/etc/cert.pem")),
            private_key: Some(PathBuf::from("/etc/key.pem")),
            ca_certificates: Some(PathBuf::from("/etc/ca.pem")),
            sni: Some("api.example.com".to_string()),
            subject_alt_names: vec!["api.example.com".to_string()],
            insecure_skip_verify: false,
        }))
    );
}

#[test]
fn service_entry_subject_alt_names() {
    let m = mesh(&format!("{API_SERVICE}{}", api_vs()));
    for (subset, port) in [
        (None, None),
        (Some("v1"), Some(8080)),
        (Some("v2"), Some(8443)),
    ] {
        assert_eq!(
            cluster(&m, API, subset, port).subject_alt_names,
            ["spiffe://cluster.local/ns/default/sa/api"]
        );
    }
    let reviews = mesh(SERVICES);
    assert!(
        cluster(&reviews, REVIEWS, None, None)
            .subject_alt_names
            .is_empty()
    );
}

const SELECTED_WORKLOADS: &str = "
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vms, namespace: backend}
spec:
  hosts: [vm.backend.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: vm}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1, namespace: backend}
spec: {address: 10.1.0.1, labels: {app: vm}, serviceAccount: vm-sa}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-2, namespace: backend}
spec: {address: 10.1.0.2, labels: {app: vm}}
";

fn identities(m: &MeshConfig, host: &str) -> Vec<Option<String>> {
    cluster(m, host, None, None)
        .endpoints
        .iter()
        .map(|e| e.identity.clone())
        .collect()
}

#[test]
fn service_accounts_become_identities() {
    let m = mesh(&format!("{API_SERVICE}{SELECTED_WORKLOADS}"));
    // Inline endpoints: the ServiceEntry's namespace.
    assert_eq!(
        identities(&m, API),
        [
            Some("spiffe://cluster.local/ns/default/sa/api".to_string()),
            None
        ]
    );
    // Selected WorkloadEntries: their own namespace.
    assert_eq!(
        identities(&m, "vm.backend.internal"),
        [
            Some("spiffe://cluster.local/ns/backend/sa/vm-sa".to_string()),
            None
        ]
    );
    // DNS endpoints built from the host have no identity.
    let external = mesh(SERVICES);
    assert_eq!(identities(&external, "httpbin.org"), [None]);
}

#[test]
fn trust_domain_option() {
    let opts = CompileOptions {
        trust_domain: "example.org".to_string(),
        ..CompileOptions::default()
    };
    assert_eq!(CompileOptions::default().trust_domain, "cluster.local");
    let m = mesh_with(&format!("{API_SERVICE}{SELECTED_WORKLOADS}"), &opts);
    assert_eq!(
        identities(&m, API)[0].as_deref(),
        Some("spiffe://example.org/ns/default/sa/api")
    );
    assert_eq!(
        identities(&m, "vm.backend.internal")[0].as_deref(),
        Some("spiffe://example.org/ns/backend/sa/vm-sa")
    );
}
