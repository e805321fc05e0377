use super::persist::AppliedDir;
use super::*;

const VS: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
";

fn file(name: &str, content: &str) -> ApplyFile {
    ApplyFile {
        name: name.into(),
        content: content.into(),
    }
}

fn watched(store: &mut ConfigStore, yaml: &str) {
    let loaded = weft_api::load_text("watched/dr.yaml", yaml);
    assert!(!loaded.has_errors());
    store.replace_watched(loaded.resources);
}

const DR: &str = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec: {host: reviews}
";

#[test]
fn apply_plans_created_configured_unchanged_with_the_default_namespace() {
    let mut store = ConfigStore::default();
    let plan = store.plan_apply(&[file("vs.yaml", VS)], "prod").unwrap();
    assert_eq!(plan.items.len(), 1);
    assert_eq!(plan.items[0].action, Action::Created);
    assert_eq!(plan.items[0].resource.key.namespace, "prod");
    assert_eq!(plan.items[0].resource.json["metadata"]["namespace"], "prod");
    // The typed model's empty fields are not written out.
    assert!(
        plan.items[0].resource.json["spec"]
            .get("gateways")
            .is_none()
    );
    store.insert_applied(plan.items.iter().map(|i| i.resource.clone()).collect());

    let again = store.plan_apply(&[file("vs.yaml", VS)], "prod").unwrap();
    assert_eq!(again.items[0].action, Action::Unchanged);
    assert!(!again.changes());
    let changed = VS.replace("host: reviews}", "host: reviews, subset: v1}");
    let plan = store
        .plan_apply(&[file("vs.yaml", &changed)], "prod")
        .unwrap();
    assert_eq!(plan.items[0].action, Action::Configured);
}

#[test]
fn invalid_input_is_refused_whole_with_positions() {
    let store = ConfigStore::default();
    let bad = VS.replace("host: reviews}", "host: reviews}\n      weight: -1");
    let err = store
        .plan_apply(&[file("ok.yaml", DR), file("bad.yaml", &bad)], "default")
        .unwrap_err();
    let ApplyError::Invalid(diags) = err else {
        panic!("{err:?}")
    };
    let text: Vec<String> = diags.iter().map(ToString::to_string).collect();
    assert!(
        text.iter().any(|t| t.starts_with("bad.yaml:10:")),
        "{text:?}"
    );
    // Twice the same resource: refused too.
    let err = store
        .plan_apply(&[file("a.yaml", VS), file("b.yaml", VS)], "default")
        .unwrap_err();
    assert!(matches!(err, ApplyError::Invalid(d) if d[0].file == "b.yaml"));
    assert!(matches!(
        store.plan_apply(&[file("empty.yaml", "")], "default"),
        Err(ApplyError::Empty)
    ));
}

#[test]
fn the_watched_directory_wins_and_cannot_be_changed_through_the_api() {
    let mut store = ConfigStore::default();
    // An applied resource that the watched directory later defines too.
    let plan = store.plan_apply(&[file("dr.yaml", DR)], "default").unwrap();
    store.insert_applied(plan.items.iter().map(|i| i.resource.clone()).collect());
    watched(
        &mut store,
        &DR.replace(
            "spec: {host: reviews}",
            "spec: {host: reviews.default.svc.cluster.local}",
        ),
    );
    let effective = store.effective();
    assert_eq!(effective.len(), 1);
    assert_eq!(effective[0].source, Source::Watched);
    assert_eq!(
        effective[0].json["spec"]["host"],
        "reviews.default.svc.cluster.local"
    );

    let err = store
        .plan_apply(&[file("dr.yaml", DR)], "default")
        .unwrap_err();
    assert!(
        matches!(&err, ApplyError::Watched { file, .. } if file == "watched/dr.yaml"),
        "{err:?}"
    );
    let key = ResourceKey::new(weft_api::Kind::DestinationRule, "default", "reviews");
    assert!(matches!(
        store.delete(&key),
        Err(DeleteError::Watched { .. })
    ));
    let missing = ResourceKey::new(weft_api::Kind::DestinationRule, "default", "nope");
    assert_eq!(
        store.delete(&missing).unwrap_err(),
        DeleteError::NotFound(missing.clone())
    );

    // Unchanged watched content is not a change; removing the file unshadows the applied one.
    assert!(
        !store.replace_watched(
            weft_api::load_text(
                "watched/dr.yaml",
                &DR.replace(
                    "spec: {host: reviews}",
                    "spec: {host: reviews.default.svc.cluster.local}"
                )
            )
            .resources
        )
    );
    assert!(store.replace_watched(Vec::new()));
    assert_eq!(store.effective()[0].source, Source::Applied);
}

#[test]
fn applied_resources_persist_and_load_back() {
    let dir = tempfile::tempdir().unwrap();
    let applied = AppliedDir::new(dir.path().join("applied"));
    let store = ConfigStore::default();
    let plan = store
        .plan_apply(&[file("vs.yaml", VS), file("dr.yaml", DR)], "default")
        .unwrap();
    for item in &plan.items {
        applied
            .write(&item.resource.key, &item.resource.json)
            .unwrap();
    }
    let mut restored = ConfigStore::default();
    restored.restore_applied(applied.load().unwrap());
    let keys: Vec<String> = restored
        .effective()
        .iter()
        .map(|r| r.key.to_string())
        .collect();
    assert_eq!(
        keys,
        vec![
            "VirtualService default/reviews",
            "DestinationRule default/reviews"
        ]
    );
    for (a, b) in restored.effective().iter().zip(plan.items.iter()) {
        assert_eq!(a.json, b.resource.json);
    }
    applied.remove(&plan.items[0].resource.key).unwrap();
    assert_eq!(applied.load().unwrap().len(), 1);
}
