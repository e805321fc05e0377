//! `weft validate` and `weft analyze` as a user runs them: the real binary on files.

// Test helpers outside #[test] functions: a failed expectation is the test failing.
#![allow(clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn weft(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("run weft")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Writes `files` into a fresh directory and returns it.
fn scratch(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

fn validate_text(text: &str) -> (i32, String) {
    let dir = scratch(&[("in.yaml", text)]);
    let path = dir.path().join("in.yaml");
    let out = weft(&["validate", path.to_str().expect("utf8")]);
    let shown = stdout(&out).replace(&path.display().to_string(), "in.yaml");
    (out.status.code().unwrap_or(-1), shown)
}

#[test]
fn every_seed_resource_is_valid() {
    let out = weft(&["validate", "examples/seeds"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("OK: 22 resources in 22 files are valid"),
        "{text}"
    );
    assert!(text.contains("(2 non-Istio documents skipped)"), "{text}");
    // LEAST_CONN is deprecated: accepted with a warning.
    assert!(
        text.contains("spec.trafficPolicy.loadBalancer.simple: warning: LEAST_CONN is deprecated"),
        "{text}"
    );
}

#[test]
fn invalid_seed_resources_are_rejected_with_positions() {
    let dir = "crates/weft-cli/tests/fixtures/seeds-invalid";
    let out = weft(&["validate", dir]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for expected in [
        "003-22-destinationrule-user-service.yaml:10:5: DestinationRule default/user-service: spec.trafficPolicy.circuitBreaker: unknown field \"circuitBreaker\"",
        "003-16-destinationrule-user-service.yaml:25:5: DestinationRule default/user-service: spec.trafficPolicy.circuitBreaker",
        "002-12-envoyfilter-filter-ratelimit.yaml:3:1: EnvoyFilter default/filter-ratelimit: kind: unsupported kind EnvoyFilter",
        "003-19-serviceprofile-user-service.yaml:3:1: ServiceProfile default/user-service.default.svc.cluster.local: kind: unsupported kind ServiceProfile",
        "003-27-istiooperator-unnamed.yaml:4:1: IstioOperator",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(
        text.contains("outlierDetection") && text.contains("connectionPool"),
        "hint missing: {text}"
    );
}

/// The canary VirtualService of seed 000, broken one way at a time.
const CANARY: &str = "apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: reviews-routing
spec:
  hosts:
    - reviews
  http:
    - route:
        - destination:
            host: reviews
            subset: v1
          weight: 80
        - destination:
            host: reviews
            subset: v2
          weight: 20
      timeout: 5s
";

#[test]
fn broken_variants_name_line_column_and_field() {
    let cases = [
        (
            "weight: 20",
            "weight: -20",
            "in.yaml:17:11: VirtualService default/reviews-routing: spec.http[0].route[1].weight: weight -20 < 0",
        ),
        (
            "timeout: 5s",
            "timeout: 5x",
            "in.yaml:18:7: VirtualService default/reviews-routing: spec.http[0].timeout: invalid duration \"5x\"",
        ),
        (
            "- reviews\n",
            "- \"\"\n",
            "in.yaml:7:7: VirtualService default/reviews-routing: spec.hosts[0]: empty domain name not allowed",
        ),
        (
            "subset: v1",
            "subset: V_1",
            "spec.http[0].route[0].destination.subset: subset name is invalid: V_1",
        ),
        (
            "weight: 80",
            "wieght: 80",
            "in.yaml:13:11: VirtualService default/reviews-routing: spec.http[0].route[0].wieght: unknown field \"wieght\"; did you mean \"weight\"?",
        ),
    ];
    for (from, to, expected) in cases {
        let (code, text) = validate_text(&CANARY.replacen(from, to, 1));
        assert_eq!(code, 1, "{to}: {text}");
        assert!(text.contains(expected), "expected {expected:?} in\n{text}");
    }
    let (code, text) = validate_text(
        &CANARY
            .replace("weight: 80", "weight: 0")
            .replace("weight: 20", "weight: 0"),
    );
    assert_eq!(code, 1);
    assert!(
        text.contains("spec.http[0].route: total destination weight = 0"),
        "{text}"
    );
}

#[test]
fn all_errors_are_reported_not_only_the_first() {
    let broken = CANARY
        .replace("weight: 20", "weight: -20")
        .replace("timeout: 5s", "timeout: 5x")
        .replace("- reviews\n", "- \"\"\n");
    let (code, text) = validate_text(&broken);
    assert_eq!(code, 1);
    assert!(text.contains("FAILED: 3 errors"), "{text}");
}

#[test]
fn security_policies() {
    let deny_no_rules = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: deny\n  namespace: prod\nspec:\n  action: DENY\n";
    let (code, text) = validate_text(deny_no_rules);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("AuthorizationPolicy prod/deny"), "{text}");
    let allow_all = "apiVersion: security.istio.io/v1beta1\nkind: AuthorizationPolicy\nmetadata:\n  name: allow-all\nspec:\n  action: ALLOW\n  rules:\n  - {}\n";
    assert_eq!(validate_text(allow_all).0, 0);
    let bad_when = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\nspec:\n  rules:\n  - when:\n    - key: request.headers[x-user]\n    - key: bogus.key\n      values: [a]\n";
    let (code, text) = validate_text(bad_when);
    assert_eq!(code, 1);
    assert!(text.contains("spec.rules[0].when[0]"), "{text}");
    assert!(text.contains("spec.rules[0].when[1]"), "{text}");
}

#[test]
fn multi_document_directories_and_json() {
    let dir = scratch(&[
        (
            "a/vs.yaml",
            &format!("{CANARY}---\n# comment only\n---\n{CANARY}").replace(
                "name: reviews-routing\nspec",
                "name: reviews-routing\n  namespace: other\nspec",
            ),
        ),
        (
            "b/c/pa.json",
            r#"{"apiVersion":"security.istio.io/v1","kind":"PeerAuthentication","metadata":{"name":"default"},"spec":{"mtls":{"mode":"STRICT"}}}"#,
        ),
        ("b/readme.txt", "not config"),
    ]);
    let out = weft(&["validate", dir.path().to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("OK: 3 resources in 2 files are valid"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn json_output_for_validate() {
    let dir = scratch(&[("in.yaml", &CANARY.replace("weight: 20", "weight: -20"))]);
    let out = weft(&[
        "validate",
        "--output",
        "json",
        dir.path().to_str().expect("utf8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["valid"], false);
    let e = &v["errors"][0];
    assert_eq!(e["line"], 17);
    assert_eq!(e["column"], 11);
    assert_eq!(e["kind"], "VirtualService");
    assert_eq!(e["namespace"], "default");
    assert_eq!(e["name"], "reviews-routing");
    assert_eq!(e["field"], "spec.http[0].route[1].weight");
    assert_eq!(e["severity"], "Error");
    assert!(e["file"].as_str().expect("file").ends_with("in.yaml"));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(
        weft(&["validate", "/nonexistent/path"]).status.code(),
        Some(2)
    );
    assert_eq!(weft(&["validate"]).status.code(), Some(2));
    assert_eq!(
        weft(&["analyze", "/nonexistent/path"]).status.code(),
        Some(2)
    );
}

#[test]
fn analyze_reports_codes_and_exits_79() {
    let mesh = format!(
        "{}---\n{CANARY}",
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: reviews\nspec:\n  host: reviews\n  subsets:\n  - name: v1\n    labels: {version: v1}\n"
    );
    let dir = scratch(&[("mesh.yaml", &mesh)]);
    let path = dir.path().to_str().expect("utf8");
    let out = weft(&["analyze", path]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(79), "{text}");
    assert!(text.contains("spec.http[0].route[1].destination.subset: Error [IST0101] Referenced host+subset in destinationrule not found: \"reviews+v2\""), "{text}");
    assert!(
        text.contains("Error [IST0101] Referenced host not found: \"reviews\""),
        "{text}"
    );

    let out = weft(&["analyze", "-o", "json", path]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        v["errors"]
            .as_array()
            .expect("array")
            .iter()
            .any(|e| e["code"] == "IST0101")
    );

    // Only warnings: exit 0 by default, 79 with --failure-threshold Warning.
    let ok = weft(&[
        "analyze",
        "examples/seeds/002-00-app.yaml",
        "examples/seeds/002-07-virtualservice-destinationrule-hello.yaml",
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    assert!(stdout(&ok).contains("Warning [IST0173]"), "{}", stdout(&ok));
    let strict = weft(&[
        "analyze",
        "--failure-threshold",
        "Warning",
        "examples/seeds/002-00-app.yaml",
        "examples/seeds/002-07-virtualservice-destinationrule-hello.yaml",
    ]);
    assert_eq!(strict.status.code(), Some(79));
}
