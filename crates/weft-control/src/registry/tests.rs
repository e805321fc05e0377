use std::collections::BTreeMap;
use std::time::Duration;

use weft_api::{Kind, Spec};

use super::*;
use crate::config::Source;

fn workload(name: &str, version: &str, address: &str) -> WorkloadInfo {
    WorkloadInfo {
        name: name.into(),
        namespace: "default".into(),
        service_account: "bookinfo-reviews".into(),
        service: "reviews".into(),
        version: version.into(),
        labels: BTreeMap::from([("team".to_string(), "books".to_string())]),
        ports: vec![PortInfo {
            number: 9080,
            name: "http".into(),
            protocol: "HTTP".into(),
            target_port: 15006,
        }],
        address: address.into(),
        health: None,
    }
}

#[test]
fn synthesized_resources_validate_and_carry_the_workload() {
    let mut registry = Registry::default();
    registry.register(1, workload("reviews-v1-a", "v1", "127.0.0.1"));
    registry.register(2, workload("reviews-v2-b", "v2", "127.0.0.2"));
    let mut checked = workload("reviews-v3-c", "v3", "127.0.0.3");
    checked.health = Some(HealthSpec {
        kind: ProbeKind::Tcp,
        port: 9080,
        period: Duration::from_secs(1),
        failure_threshold: 3,
    });
    registry.register(3, checked);

    let out = synthesize(&registry);
    // One ServiceEntry, and a WorkloadEntry per healthy workload (v3 is not probed yet).
    let kinds: Vec<(Kind, &str)> = out
        .iter()
        .map(|r| (r.key.kind, r.key.name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (Kind::ServiceEntry, "reviews"),
            (Kind::WorkloadEntry, "reviews-v1-a"),
            (Kind::WorkloadEntry, "reviews-v2-b"),
        ]
    );
    assert!(out.iter().all(|r| r.source == Source::Registry));
    let se = &out[0].json;
    assert_eq!(se["spec"]["hosts"][0], "reviews.default.svc.cluster.local");
    assert_eq!(se["spec"]["location"], "MESH_INTERNAL");
    assert_eq!(se["spec"]["resolution"], "STATIC");
    assert_eq!(se["spec"]["ports"][0]["number"], 9080);
    assert_eq!(se["spec"]["ports"][0]["protocol"], "HTTP");
    assert_eq!(se["spec"]["workloadSelector"]["labels"]["app"], "reviews");
    let we = &out[1].json["spec"];
    assert_eq!(we["address"], "127.0.0.1");
    assert_eq!(we["ports"]["http"], 15006);
    assert_eq!(we["labels"]["app"], "reviews");
    assert_eq!(we["labels"]["version"], "v1");
    assert_eq!(we["labels"]["team"], "books");
    assert_eq!(we["labels"]["security.istio.io/tlsMode"], "istio");
    assert_eq!(we["serviceAccount"], "bookinfo-reviews");

    // Every document loads and validates as user config would.
    for r in &out {
        let loaded = weft_api::load_text("synth.json", &r.json.to_string());
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    }
    // And the proxy's compiler turns them into the service's endpoints.
    let resources: Vec<weft_api::Resource> = out.iter().map(|r| r.resource.clone()).collect();
    let mesh = weft_api::mesh::compile(&resources, 1, &Default::default());
    let dump = serde_json::to_string(&mesh).unwrap();
    assert!(
        dump.contains("127.0.0.1") && dump.contains("127.0.0.2"),
        "{dump}"
    );
    assert!(dump.contains("spiffe://cluster.local/ns/default/sa/bookinfo-reviews"));

    // A health verdict brings v3 in.
    assert!(registry.set_health(3, true));
    assert!(!registry.set_health(3, true));
    let out = synthesize(&registry);
    assert_eq!(out.len(), 4);
    assert!(matches!(out[3].resource.spec, Spec::WorkloadEntry(_)));
}

#[test]
fn defaults_ports_names_and_duplicate_workload_names() {
    let mut registry = Registry::default();
    let mut a = workload("ratings", "", "10.0.0.1");
    a.ports = vec![PortInfo {
        number: 8080,
        name: String::new(),
        protocol: "grpc".into(),
        target_port: 0,
    }];
    registry.register(7, a.clone());
    registry.register(8, a);
    let out = synthesize(&registry);
    assert_eq!(out[0].json["spec"]["ports"][0]["name"], "grpc-8080");
    assert_eq!(out[0].json["spec"]["ports"][0]["protocol"], "GRPC");
    assert_eq!(out[1].key.name, "ratings");
    assert_eq!(out[2].key.name, "ratings-8");
    assert_eq!(out[1].json["spec"]["ports"]["grpc-8080"], 8080);
    assert!(out[1].json["spec"]["labels"].get("version").is_none());
    // No service: not registered as an endpoint.
    let mut registry = Registry::default();
    let mut b = workload("x", "v1", "10.0.0.2");
    b.service = String::new();
    registry.register(1, b);
    assert!(synthesize(&registry).is_empty());
}

#[test]
fn sync_status_labels() {
    let mut s = SyncStatus::default();
    assert_eq!(s.label(), "STALE");
    s.sent = Some(3);
    assert_eq!(s.label(), "STALE");
    s.acked = Some(3);
    assert_eq!(s.label(), "SYNCED");
    s.sent = Some(4);
    s.nack = Some((4, "bad route".into()));
    assert_eq!(s.label(), "NACK: bad route");
    s.sent = Some(5);
    assert_eq!(s.label(), "STALE");
}

#[test]
fn health_tracker_needs_consecutive_failures() {
    let mut t = HealthTracker::default();
    assert!(!t.healthy());
    assert!(!t.observe(false, 2));
    assert!(t.observe(true, 2));
    assert!(t.observe(false, 2));
    assert!(!t.observe(false, 2));
    assert!(t.observe(true, 2));
}

#[test]
fn proto_workload_conversion() {
    let w = weft_proto::Workload {
        name: "r1".into(),
        namespace: "default".into(),
        service_account: "sa".into(),
        service: "reviews".into(),
        version: "v1".into(),
        labels: Default::default(),
        ports: vec![weft_proto::ServicePort {
            number: 9080,
            name: "http".into(),
            protocol: "HTTP".into(),
            target_port: 15006,
        }],
        address: "127.0.0.1".into(),
        health: Some(weft_proto::HealthCheck {
            kind: "http".into(),
            path: String::new(),
            port: 0,
            period_ms: 0,
            failure_threshold: 0,
        }),
    };
    let info = WorkloadInfo::from(&w);
    let health = info.health.unwrap();
    assert_eq!(health.kind, ProbeKind::Http { path: "/".into() });
    assert_eq!(health.port, 15006);
    assert_eq!(health.period, health::DEFAULT_PERIOD);
    assert_eq!(health.failure_threshold, health::DEFAULT_FAILURE_THRESHOLD);
}
