use std::collections::BTreeMap;
use std::net::IpAddr;

use http::HeaderMap;

use super::*;

const GW: &str = "cluster.local/ns/default/sa/api-gateway";

fn authz(yaml: &str, ns: &str, labels: &[(&str, &str)]) -> Authorizer {
    let loaded = weft_api::load_text("t.yaml", yaml);
    let errors: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == weft_api::Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Authorizer::for_workload(&loaded.resources, ns, &labels, "istio-system")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn http<'a>(principal: Option<&'a str>, method: &'a str, path: &'a str) -> RequestAttributes<'a> {
    RequestAttributes {
        source_principal: principal,
        source_namespace: principal.and_then(|p| matcher::principal_identity(p).map(|(ns, _)| ns)),
        host: "api.example.com",
        method,
        path,
        http: true,
        ..RequestAttributes::tcp(ip("10.1.2.3"), ip("10.0.0.9"), 8080)
    }
}

fn policy(name: &str, ns: &str, spec: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n{spec}\n---\n"
    )
}

fn allowed(a: &Authorizer, req: &RequestAttributes<'_>) -> bool {
    a.evaluate(req).decision.is_allowed()
}

const SEED: &str = "  selector:\n    matchLabels:\n      app: api\n  action: ALLOW\n  rules:\n  - from:\n    - source:\n        principals: [\"cluster.local/ns/default/sa/api-gateway\"]\n    to:\n    - operation:\n        methods: [\"GET\", \"POST\"]";

#[test]
fn seed_policy() {
    let a = authz(
        &policy("api", "default", SEED),
        "default",
        &[("app", "api")],
    );
    assert!(allowed(&a, &http(Some(GW), "GET", "/x")));
    assert!(allowed(&a, &http(Some(GW), "POST", "/x")));
    let v = a.evaluate(&http(Some(GW), "DELETE", "/x"));
    assert_eq!(
        v.decision,
        Decision::Deny {
            policy: "none".into()
        }
    );
    assert!(!allowed(
        &a,
        &http(Some("cluster.local/ns/default/sa/other"), "GET", "/")
    ));
    assert!(!allowed(&a, &http(None, "GET", "/")));
}

#[test]
fn selector_and_namespace_scoping() {
    let a = authz(
        &policy("api", "default", SEED),
        "default",
        &[("app", "web")],
    );
    assert!(a.is_empty());
    let a = authz(&policy("api", "default", SEED), "other", &[("app", "api")]);
    assert!(a.is_empty());
    let a = authz(
        &policy("api", "default", SEED),
        "default",
        &[("app", "api"), ("v", "1")],
    );
    assert_eq!(a.policy_ids().collect::<Vec<_>>(), ["default.api"]);
}

#[test]
fn allow_nothing_and_allow_all() {
    let a = authz(&policy("nothing", "default", "  {}"), "default", &[]);
    let v = a.evaluate(&http(Some(GW), "GET", "/"));
    assert_eq!(
        v.decision.response_code_details().unwrap(),
        "rbac_access_denied_matched_policy[none]"
    );
    let y = policy("nothing", "default", "  {}") + &policy("all", "default", "  rules:\n  - {}");
    assert!(allowed(
        &authz(&y, "default", &[]),
        &http(None, "DELETE", "/")
    ));
}

#[test]
fn deny_precedes_allow() {
    let deny = "  action: DENY\n  rules:\n  - to:\n    - operation:\n        paths: [\"/admin\", \"/admin/*\"]";
    let y = policy("all", "default", "  rules:\n  - {}") + &policy("no-admin", "default", deny);
    let a = authz(&y, "default", &[]);
    assert!(allowed(&a, &http(Some(GW), "GET", "/public")));
    let v = a.evaluate(&http(Some(GW), "GET", "/admin/users"));
    assert_eq!(
        v.decision,
        Decision::Deny {
            policy: "default.no-admin".into()
        }
    );
    assert_eq!(
        v.decision.response_code_details().unwrap(),
        "rbac_access_denied_matched_policy[default.no-admin]"
    );
    assert_eq!(Decision::Allow.response_code_details(), None);
    // Paths are case-sensitive.
    assert!(allowed(&a, &http(Some(GW), "GET", "/ADMIN")));
}

#[test]
fn root_namespace_policies() {
    let y = policy("mesh", "istio-system", "  {}");
    assert!(!allowed(
        &authz(&y, "foo", &[]),
        &http(Some(GW), "GET", "/")
    ));
    let sel = "  selector:\n    matchLabels:\n      app: db\n  action: DENY\n  rules:\n  - {}";
    let y = policy("db", "istio-system", sel);
    assert!(!allowed(
        &authz(&y, "foo", &[("app", "db")]),
        &http(Some(GW), "GET", "/")
    ));
    assert!(authz(&y, "foo", &[("app", "web")]).is_empty());
}

#[test]
fn not_fields() {
    let spec = "  rules:\n  - from:\n    - source:\n        notPrincipals: [\"cluster.local/ns/bad/sa/*\"]\n    to:\n    - operation:\n        notMethods: [\"DELETE\"]\n        notPaths: [\"/private*\"]";
    let a = authz(&policy("p", "default", spec), "default", &[]);
    assert!(allowed(&a, &http(Some(GW), "GET", "/x")));
    assert!(!allowed(&a, &http(Some(GW), "DELETE", "/x")));
    assert!(!allowed(&a, &http(Some(GW), "GET", "/private/a")));
    assert!(!allowed(
        &a,
        &http(Some("cluster.local/ns/bad/sa/x"), "GET", "/x")
    ));
    // No mTLS: an absent principal never satisfies notPrincipals in an ALLOW rule.
    assert!(!allowed(&a, &http(None, "GET", "/x")));
}

#[test]
fn string_forms_and_hosts() {
    let spec = "  rules:\n  - to:\n    - operation:\n        hosts: [\"API.example.COM\", \"*.internal\"]\n        paths: [\"/v1/*\", \"*.json\", \"/exact\"]\n  - from:\n    - source:\n        requestPrincipals: [\"*\"]";
    let a = authz(&policy("p", "default", spec), "default", &[]);
    assert!(allowed(&a, &http(None, "GET", "/v1/x")));
    assert!(allowed(&a, &http(None, "GET", "/a/b.json")));
    assert!(allowed(&a, &http(None, "GET", "/exact")));
    assert!(!allowed(&a, &http(None, "GET", "/Exact")));
    assert!(!allowed(&a, &http(None, "GET", "/exact/more")));
    let other = RequestAttributes {
        host: "db.internal",
        ..http(None, "GET", "/v1/")
    };
    assert!(allowed(&a, &other));
    let other = RequestAttributes {
        host: "evil.com",
        ..http(None, "GET", "/v1/")
    };
    assert!(!allowed(&a, &other));
    // Presence: any request principal.
    let jwt = RequestAttributes {
        request_principal: Some("iss/sub"),
        ..other
    };
    assert!(allowed(&a, &jwt));
}

#[test]
fn path_templates() {
    let spec = "  rules:\n  - to:\n    - operation:\n        paths: [\"/allow/admin/{**}\", \"/foo/{*}/bar/{**}\"]";
    let a = authz(&policy("p", "default", spec), "default", &[]);
    assert!(allowed(&a, &http(None, "GET", "/allow/admin/x/y")));
    assert!(!allowed(&a, &http(None, "GET", "/allow/admin")));
    assert!(allowed(&a, &http(None, "GET", "/foo/a/bar/bat.txt")));
    assert!(!allowed(&a, &http(None, "GET", "/foo//bar/bat.txt")));
}

#[test]
fn ip_blocks() {
    let spec = "  rules:\n  - from:\n    - source:\n        ipBlocks: [\"10.1.0.0/16\", \"2001:db8::/32\", \"192.168.1.1\"]\n        notIpBlocks: [\"10.1.9.0/24\"]";
    let a = authz(&policy("p", "default", spec), "default", &[]);
    let from = |s: &str| RequestAttributes::tcp(ip(s), ip("10.0.0.9"), 80);
    assert!(allowed(&a, &from("10.1.2.3")));
    assert!(!allowed(&a, &from("10.1.9.3")));
    assert!(!allowed(&a, &from("10.2.0.1")));
    assert!(allowed(&a, &from("2001:db8:1::5")));
    assert!(!allowed(&a, &from("2001:db9::5")));
    assert!(allowed(&a, &from("192.168.1.1")));
    assert!(allowed(&a, &from("::ffff:192.168.1.1")));
    assert!(!allowed(&a, &from("192.168.1.2")));
}

#[test]
fn cidr_edges() {
    let all = matcher::Cidr::parse("0.0.0.0/0").unwrap();
    assert!(all.contains(ip("255.1.1.1")));
    assert!(!all.contains(ip("::1")));
    assert!(matcher::Cidr::parse("::/0").unwrap().contains(ip("::1")));
    assert!(
        matcher::Cidr::parse("fe80::1%eth0")
            .unwrap()
            .contains(ip("fe80::1"))
    );
    assert!(matcher::Cidr::parse("10.0.0.0/33").is_none());
}

#[test]
fn when_conditions() {
    let spec = "  rules:\n  - when:\n    - key: request.headers[X-Env]\n      values: [\"prod*\"]\n    - key: request.auth.claims[groups]\n      values: [\"admin\"]\n    - key: request.auth.claims[org][team]\n      notValues: [\"blocked\"]\n    - key: source.ip\n      values: [\"10.0.0.0/8\"]\n    - key: destination.port\n      values: [\"8080\"]";
    let a = authz(&policy("p", "default", spec), "default", &[]);
    let mut headers = HeaderMap::new();
    headers.insert("x-env", "production".parse().unwrap());
    let claims = serde_json::json!({"groups": ["dev", "admin"], "org": {"team": "core"}});
    let ok = RequestAttributes {
        headers: Some(&headers),
        jwt_claims: Some(&claims),
        ..http(None, "GET", "/")
    };
    assert!(allowed(&a, &ok));
    assert!(!allowed(
        &a,
        &RequestAttributes {
            destination_port: 9090,
            ..ok
        }
    ));
    assert!(!allowed(
        &a,
        &RequestAttributes {
            source_ip: ip("11.0.0.1"),
            ..ok
        }
    ));
    assert!(!allowed(
        &a,
        &RequestAttributes {
            headers: None,
            ..ok
        }
    ));
    let blocked = serde_json::json!({"groups": "admin", "org": {"team": "blocked"}});
    assert!(!allowed(
        &a,
        &RequestAttributes {
            jwt_claims: Some(&blocked),
            ..ok
        }
    ));
    let single = serde_json::json!({"groups": "admin"});
    assert!(allowed(
        &a,
        &RequestAttributes {
            jwt_claims: Some(&single),
            ..ok
        }
    ));
}

#[test]
fn multi_value_headers_match_individually() {
    let spec = "  action: DENY\n  rules:\n  - when:\n    - key: request.headers[x-role]\n      values: [\"admin\"]";
    let a = authz(&policy("p", "default", spec), "default", &[]);
    let mut headers = HeaderMap::new();
    headers.append("x-role", "user".parse().unwrap());
    headers.append("x-role", "admin".parse().unwrap());
    let req = RequestAttributes {
        headers: Some(&headers),
        ..http(None, "GET", "/")
    };
    assert!(!allowed(&a, &req));
    let mut joined = HeaderMap::new();
    joined.insert("x-role", "regular-user,admin".parse().unwrap());
    let req = RequestAttributes {
        headers: Some(&joined),
        ..http(None, "GET", "/")
    };
    assert!(!allowed(&a, &req));
}

#[test]
fn tcp_allow_vs_deny_with_http_fields() {
    let allow = "  rules:\n  - to:\n    - operation:\n        ports: [\"5432\"]\n        methods: [\"GET\"]\n  - to:\n    - operation:\n        ports: [\"6379\"]";
    let a = authz(&policy("p", "default", allow), "default", &[]);
    let tcp = |port| RequestAttributes::tcp(ip("10.1.1.1"), ip("10.0.0.9"), port);
    assert!(!allowed(&a, &tcp(5432)));
    assert!(allowed(&a, &tcp(6379)));
    let deny = "  action: DENY\n  rules:\n  - to:\n    - operation:\n        ports: [\"5432\"]\n        paths: [\"/admin\"]";
    let a = authz(&policy("d", "default", deny), "default", &[]);
    assert!(!allowed(&a, &tcp(5432)));
    assert!(allowed(&a, &tcp(6379)));
}

#[test]
fn plaintext_identity_deny_fails_closed() {
    let deny = "  action: DENY\n  rules:\n  - from:\n    - source:\n        namespaces: [\"foo\"]";
    let a = authz(&policy("d", "default", deny), "default", &[]);
    assert!(!allowed(&a, &http(None, "GET", "/")));
    assert!(allowed(&a, &http(Some(GW), "GET", "/")));
    assert!(!allowed(
        &a,
        &http(Some("cluster.local/ns/foo/sa/x"), "GET", "/")
    ));
}

#[test]
fn deny_without_token() {
    let deny =
        "  action: DENY\n  rules:\n  - from:\n    - source:\n        notRequestPrincipals: [\"*\"]";
    let a = authz(&policy("d", "default", deny), "default", &[]);
    assert!(!allowed(&a, &http(None, "GET", "/")));
    let jwt = RequestAttributes {
        request_principal: Some("iss/sub"),
        ..http(None, "GET", "/")
    };
    assert!(allowed(&a, &jwt));
}

#[test]
fn service_accounts() {
    let spec = "  rules:\n  - from:\n    - source:\n        serviceAccounts: [\"api-gateway\", \"ops/admin\"]";
    let a = authz(&policy("p", "default", spec), "default", &[]);
    assert!(allowed(&a, &http(Some(GW), "GET", "/")));
    assert!(allowed(&a, &http(Some("td/ns/ops/sa/admin"), "GET", "/")));
    assert!(!allowed(&a, &http(Some("td/ns/ops/sa/other"), "GET", "/")));
}

#[test]
fn dry_run_and_audit() {
    let deny = "  action: DENY\n  rules:\n  - {}";
    let dry = policy("d", "default", deny).replace(
        "  namespace: default\n",
        "  namespace: default\n  annotations:\n    istio.io/dry-run: \"true\"\n",
    );
    let audit = policy(
        "a",
        "default",
        "  action: AUDIT\n  rules:\n  - to:\n    - operation:\n        methods: [\"POST\"]",
    );
    let a = authz(&(dry + &audit), "default", &[]);
    let v = a.evaluate(&http(Some(GW), "POST", "/"));
    assert!(v.decision.is_allowed());
    assert!(v.audit);
    assert_eq!(
        v.shadow,
        Some(Decision::Deny {
            policy: "default.d".into()
        })
    );
    let v = a.evaluate(&http(Some(GW), "GET", "/"));
    assert!(!v.audit);
    let plain = authz(
        &policy("all", "default", "  rules:\n  - {}"),
        "default",
        &[],
    );
    assert_eq!(plain.evaluate(&http(None, "GET", "/")).shadow, None);
}

#[test]
fn custom_and_target_ref_ignored() {
    let custom = "  action: CUSTOM\n  provider:\n    name: ext\n  rules:\n  - {}";
    let target = "  targetRefs:\n  - kind: Gateway\n    group: gateway.networking.k8s.io\n    name: gw\n  rules:\n  - {}";
    let y = policy("c", "default", custom) + &policy("t", "default", target);
    let loaded = weft_api::load_text("t.yaml", &y);
    let a = Authorizer::for_workload(
        &loaded.resources,
        "default",
        &BTreeMap::new(),
        "istio-system",
    );
    assert!(a.is_empty());
}
