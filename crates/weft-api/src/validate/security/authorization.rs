//! AuthorizationPolicy validation (Istio's `ValidateAuthorizationPolicy`): action and provider,
//! the `rules` list, and each rule's `from` sources, `to` operations and `when` conditions.
//!
//! Every error is prefixed `invalid policy NAME.NAMESPACE: ` as Istio does; warnings are not.
//! Deliberate differences from Istio:
//! * Istio stops at the first bad value of each list (`ipBlocks`, `ports`, `paths`, ...); every
//!   bad value is reported here, at its own index.
//! * An empty value is reported once ("empty value not allowed"), not again as a bad IP or port.
//! * A bad `when` key is reported once, at `key`; Istio reports it for `values` and again for
//!   `notValues`. Bad `when` values are reported one by one instead of as one nested
//!   "1 error occurred" text.
//! * A port above 65535 says why instead of Go's `bad port (70000): <nil>`.
//! * `from: []` and `to: []` are errors. Istio has the check, but it never fires because Go
//!   decodes an empty list as a missing one.

use super::check_selector_and_targets;
use super::values::{Values, attribute_kind, check_values};
use crate::diagnostic::{FieldPath, Findings, Severity};
use crate::model::{
    AuthorizationAction, AuthorizationPolicy, Condition, Operation, Rule, RuleFrom, RuleTo, Source,
};
use crate::resource::ObjectMeta;

const DRY_RUN: &str = "istio.io/dry-run";

const DENY_HTTP_ONLY: &str = "configured AuthorizationPolicy will deny all traffic to TCP ports \
     under its scope due to the use of only HTTP attributes in a DENY rule; it is recommended to \
     explicitly specify the port";

const MEANINGLESS: &str = "without `rules` is meaningless as it will never be triggered, add an \
     empty rule `{}` if you want it be triggered for every request";

/// One list field: its YAML name, its Go name (used in Istio's messages), values and rule.
type Field<'a> = (&'static str, &'static str, &'a [String], Values);

/// Validates an AuthorizationPolicy; `meta` names the policy in messages and carries the
/// dry-run annotation.
pub fn check_authorization_policy(
    ap: &AuthorizationPolicy,
    meta: &ObjectMeta,
    path: &FieldPath,
    out: &mut Findings,
) {
    let action = ap.action.unwrap_or(AuthorizationAction::Allow);
    check_dry_run(action, meta, out);
    let mut found = Findings::default();
    check_selector_and_targets(
        &mut found,
        path,
        ap.selector.as_ref(),
        ap.target_ref.as_ref(),
        &ap.target_refs,
    );
    check_action(ap, action, path, &mut found);
    let rules = path.field("rules");
    for (i, rule) in ap.rules.iter().flatten().enumerate() {
        check_rule(rule, i, action, &rules.index(i), &mut found);
    }
    let prefix = format!("invalid policy {}.{}:", meta.name, meta.namespace());
    for f in found.into_vec() {
        match f.severity {
            Severity::Error => out.error(&f.field, format!("{prefix} {}", f.message)),
            other => out.push(other, &f.field, f.message),
        }
    }
}

fn action_name(action: AuthorizationAction) -> &'static str {
    match action {
        AuthorizationAction::Allow => "ALLOW",
        AuthorizationAction::Deny => "DENY",
        AuthorizationAction::Audit => "AUDIT",
        AuthorizationAction::Custom => "CUSTOM",
    }
}

/// `validateMetadata` for the dry-run annotation: a Go boolean, and only on ALLOW or DENY.
/// (The annotation on other kinds is a generic metadata check, not done here.)
fn check_dry_run(action: AuthorizationAction, meta: &ObjectMeta, out: &mut Findings) {
    let Some(value) = meta.annotations.get(DRY_RUN) else {
        return;
    };
    let path = FieldPath::new("metadata").field("annotations").key(DRY_RUN);
    let who = format!("{}/{}", meta.namespace(), meta.name);
    match action {
        AuthorizationAction::Allow | AuthorizationAction::Deny => {
            let go_bool = ["1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"];
            if !go_bool.contains(&value.as_str()) {
                out.error(
                    &path,
                    format!(
                        "{who} has annotation {DRY_RUN} with invalid value ({value}): strconv.ParseBool: parsing {value:?}: invalid syntax"
                    ),
                );
            }
        }
        other => out.error(
            &path,
            format!(
                "the annotation {DRY_RUN} currently only supports action ALLOW/DENY, found action {} in {who}",
                action_name(other)
            ),
        ),
    }
}

/// The policy-level checks: CUSTOM needs rules and a provider, only CUSTOM may have one, and
/// DENY needs rules. An empty `rules` list counts as missing, as Go decodes it that way.
fn check_action(
    ap: &AuthorizationPolicy,
    action: AuthorizationAction,
    path: &FieldPath,
    out: &mut Findings,
) {
    let no_rules = ap.rules.as_ref().is_none_or(Vec::is_empty);
    let rules = path.field("rules");
    let provider = path.field("provider");
    match action {
        AuthorizationAction::Custom if no_rules => {
            out.error(&rules, format!("CUSTOM action {MEANINGLESS}"))
        }
        AuthorizationAction::Custom => {
            let name = ap
                .provider
                .as_ref()
                .and_then(|p| p.name.as_deref())
                .unwrap_or_default();
            if name.is_empty() {
                let at = if ap.provider.is_some() {
                    provider.field("name")
                } else {
                    provider
                };
                out.error(&at, "`provider.name` must not be empty");
            }
        }
        _ if ap.provider.is_some() => out.error(
            &provider,
            format!(
                "`provider` must not be with non CUSTOM action, found {}",
                action_name(action)
            ),
        ),
        _ => {}
    }
    if action == AuthorizationAction::Deny && no_rules {
        out.error(&rules, format!("DENY action {MEANINGLESS}"));
    }
}

/// One rule; with DENY, also warns when the rule only uses HTTP attributes.
fn check_rule(
    rule: &Rule,
    i: usize,
    action: AuthorizationAction,
    path: &FieldPath,
    out: &mut Findings,
) {
    let (from_exists, tcp_in_from) =
        check_from(rule.from.as_deref(), i, action, &path.field("from"), out);
    let (to_exists, tcp_in_to) = check_to(rule.to.as_deref(), i, &path.field("to"), out);
    let when = path.field("when");
    for (j, condition) in rule.when.iter().flatten().enumerate() {
        check_condition(condition, action, &when.index(j), out);
    }
    let http_only = (from_exists && !to_exists && !tcp_in_from) || (to_exists && !tcp_in_to);
    if action == AuthorizationAction::Deny && http_only {
        out.warn(path, DENY_HTTP_ONLY);
    }
}

fn list(values: &Option<Vec<String>>) -> &[String] {
    values.as_deref().unwrap_or_default()
}

fn field<'a>(
    json: &'static str,
    go: &'static str,
    values: &'a Option<Vec<String>>,
    kind: Values,
) -> Field<'a> {
    (json, go, list(values), kind)
}

/// Returns whether any source is set and whether any uses a TCP (non-HTTP) attribute.
fn check_from(
    from: Option<&[RuleFrom]>,
    i: usize,
    action: AuthorizationAction,
    path: &FieldPath,
    out: &mut Findings,
) -> (bool, bool) {
    let Some(from) = from else {
        return (false, false);
    };
    // Istio cannot see `from: []` (Go decodes it as absent); we reject it, see the module docs.
    if from.is_empty() {
        out.error(path, format!("`from` must not be empty, found at rule {i}"));
    }
    let (mut exists, mut tcp) = (false, false);
    for (k, entry) in from.iter().enumerate() {
        let p = path.index(k).field("source");
        match &entry.source {
            None => out.error(
                &p,
                format!("`from.source` must not be nil, found at rule {i}"),
            ),
            Some(source) => {
                exists = true;
                tcp |= check_source(source, i, action, &p, out);
            }
        }
    }
    (exists, tcp)
}

#[rustfmt::skip]
fn source_fields(s: &Source) -> [Field<'_>; 12] {
    use Values as V;
    [
        field("principals", "Principals", &s.principals, V::Plain),
        field("notPrincipals", "NotPrincipals", &s.not_principals, V::Plain),
        field("requestPrincipals", "RequestPrincipals", &s.request_principals, V::Plain),
        field("notRequestPrincipals", "NotRequestPrincipals", &s.not_request_principals, V::Plain),
        field("namespaces", "Namespaces", &s.namespaces, V::Plain),
        field("notNamespaces", "NotNamespaces", &s.not_namespaces, V::Plain),
        field("ipBlocks", "IpBlocks", &s.ip_blocks, V::Ip),
        field("notIpBlocks", "NotIpBlocks", &s.not_ip_blocks, V::Ip),
        field("remoteIpBlocks", "RemoteIpBlocks", &s.remote_ip_blocks, V::Ip),
        field("notRemoteIpBlocks", "NotRemoteIpBlocks", &s.not_remote_ip_blocks, V::Ip),
        field("serviceAccounts", "ServiceAccounts", &s.service_accounts, V::ServiceAccount),
        field("notServiceAccounts", "NotServiceAccounts", &s.not_service_accounts, V::ServiceAccount),
    ]
}

/// One `from[].source`; returns whether it uses a TCP attribute (anything but request principals).
fn check_source(
    source: &Source,
    i: usize,
    action: AuthorizationAction,
    path: &FieldPath,
    out: &mut Findings,
) -> bool {
    let fields = source_fields(source);
    let any_set = |names: &[&str]| {
        fields
            .iter()
            .any(|(json, _, v, _)| names.contains(json) && !v.is_empty())
    };
    if any_set(&["principals", "notPrincipals", "namespaces", "notNamespaces"])
        && any_set(&["serviceAccounts", "notServiceAccounts"])
    {
        out.error(
            path,
            format!("cannot set serviceAccounts with namespaces or principals, found at rule {i}"),
        );
    }
    if fields.iter().all(|(_, _, v, _)| v.is_empty()) {
        out.error(
            path,
            format!("`from.source` must not be empty, found at rule {i}"),
        );
    }
    for (json, go, values, kind) in &fields {
        let p = path.field(json);
        // CUSTOM supports only the IP attributes of a source.
        if action == AuthorizationAction::Custom && *kind != Values::Ip && !values.is_empty() {
            out.error(
                &p,
                format!("From.{go} is currently not supported with CUSTOM action"),
            );
        }
        check_values(out, &p, go, *kind, values, "");
    }
    any_set(&[
        "principals",
        "notPrincipals",
        "namespaces",
        "notNamespaces",
        "ipBlocks",
        "notIpBlocks",
        "remoteIpBlocks",
        "notRemoteIpBlocks",
        "serviceAccounts",
        "notServiceAccounts",
    ])
}

fn operation_fields(o: &Operation) -> [Field<'_>; 8] {
    use Values as V;
    [
        field("hosts", "Hosts", &o.hosts, V::Plain),
        field("notHosts", "NotHosts", &o.not_hosts, V::Plain),
        field("ports", "Ports", &o.ports, V::Port),
        field("notPorts", "NotPorts", &o.not_ports, V::Port),
        field("methods", "Methods", &o.methods, V::Plain),
        field("notMethods", "NotMethods", &o.not_methods, V::Plain),
        field("paths", "Paths", &o.paths, V::Path),
        field("notPaths", "NotPaths", &o.not_paths, V::Path),
    ]
}

/// Returns whether any operation is set and whether any names ports (a TCP attribute).
fn check_to(to: Option<&[RuleTo]>, i: usize, path: &FieldPath, out: &mut Findings) -> (bool, bool) {
    let Some(to) = to else {
        return (false, false);
    };
    if to.is_empty() {
        out.error(path, format!("`to` must not be empty, found at rule {i}"));
    }
    let (mut exists, mut tcp) = (false, false);
    for (k, entry) in to.iter().enumerate() {
        let p = path.index(k).field("operation");
        let Some(op) = &entry.operation else {
            out.error(
                &p,
                format!("`to.operation` must not be nil, found at rule {i}"),
            );
            continue;
        };
        exists = true;
        let fields = operation_fields(op);
        if fields.iter().all(|(_, _, v, _)| v.is_empty()) {
            out.error(
                &p,
                format!("`to.operation` must not be empty, found at rule {i}"),
            );
        }
        for (json, go, values, kind) in &fields {
            check_values(out, &p.field(json), go, *kind, values, "");
        }
        tcp |= !list(&op.ports).is_empty() || !list(&op.not_ports).is_empty();
    }
    (exists, tcp)
}

/// One `when` condition: a known key, some values, and values of the key's type.
fn check_condition(
    c: &Condition,
    action: AuthorizationAction,
    path: &FieldPath,
    out: &mut Findings,
) {
    let key = c.key.as_str();
    let key_path = path.field("key");
    if key.is_empty() {
        out.error(&key_path, "`key` must not be empty");
        return;
    }
    let custom_unsupported = matches!(
        key,
        "source.namespace" | "source.serviceAccount" | "source.principal"
    ) || key.starts_with("request.auth.");
    if action == AuthorizationAction::Custom && custom_unsupported {
        out.error(
            &key_path,
            format!("{key} is currently not supported with CUSTOM action"),
        );
    }
    let (values, not_values) = (list(&c.values), list(&c.not_values));
    if values.is_empty() && not_values.is_empty() {
        out.error(
            path,
            format!("at least one of `values` or `notValues` must be set for key {key}"),
        );
        return;
    }
    let kind = attribute_kind(key).unwrap_or_else(|e| {
        out.error(&key_path, format!("invalid `value` for `key` {key}: {e}"));
        Values::Plain
    });
    let prefix = format!("invalid `value` for `key` {key}: ");
    check_values(out, &path.field("values"), key, kind, values, &prefix);
    let prefix = format!("invalid `notValue` for `key` {key}: ");
    check_values(
        out,
        &path.field("notValues"),
        key,
        kind,
        not_values,
        &prefix,
    );
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::diagnostic::Finding;

    const PREFIX: &str = "invalid policy p.ns: ";

    fn run_with(spec: serde_json::Value, meta: serde_json::Value) -> Vec<Finding> {
        let ap: AuthorizationPolicy = serde_json::from_value(spec).unwrap();
        let meta: ObjectMeta = serde_json::from_value(meta).unwrap();
        let mut out = Findings::default();
        check_authorization_policy(&ap, &meta, &FieldPath::new("spec"), &mut out);
        out.into_vec()
    }

    fn run(spec: serde_json::Value) -> Vec<Finding> {
        run_with(spec, json!({"name": "p", "namespace": "ns"}))
    }

    fn errors(f: &[Finding]) -> Vec<(&str, &str)> {
        f.iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| (f.field.as_str(), f.message.as_str()))
            .collect()
    }

    fn warnings(f: &[Finding]) -> Vec<(&str, &str)> {
        f.iter()
            .filter(|f| f.severity == Severity::Warning)
            .map(|f| (f.field.as_str(), f.message.as_str()))
            .collect()
    }

    /// Asserts exactly one error, at `field`, whose message (after the policy prefix) contains `part`.
    #[track_caller]
    fn assert_one_error(spec: serde_json::Value, field: &str, part: &str) {
        let f = run(spec);
        let e = errors(&f);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, field);
        assert!(e[0].1.starts_with(PREFIX), "{}", e[0].1);
        assert!(
            e[0].1.contains(part),
            "{:?} does not contain {part:?}",
            e[0].1
        );
    }

    fn rule_from(source: serde_json::Value) -> serde_json::Value {
        json!({"rules": [{"from": [{"source": source}]}]})
    }

    fn rule_to(operation: serde_json::Value) -> serde_json::Value {
        json!({"rules": [{"to": [{"operation": operation}]}]})
    }

    fn rule_when(when: serde_json::Value) -> serde_json::Value {
        json!({"rules": [{"when": [when]}]})
    }

    #[test]
    fn accepts_seed_policies() {
        let seed = json!({
            "selector": {"matchLabels": {"app": "api"}},
            "action": "ALLOW",
            "rules": [{
                "from": [{"source": {"principals": ["cluster.local/ns/default/sa/api-gateway"]}}],
                "to": [{"operation": {"methods": ["GET", "POST"]}}]
            }]
        });
        assert!(run(seed).is_empty());
        assert!(run(json!({})).is_empty(), "allow-nothing");
        assert!(run(json!({"rules": [{}]})).is_empty(), "allow-all");
        assert!(
            run(json!({"action": "DENY", "rules": [{}]})).is_empty(),
            "deny-all"
        );
        assert!(run(json!({"action": "AUDIT"})).is_empty());
        assert!(run(json!({"action": "ALLOW", "rules": []})).is_empty());
    }

    #[test]
    fn accepts_a_full_policy() {
        let f = run(json!({
            "targetRefs": [{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "gw"}],
            "action": "DENY",
            "rules": [{
                "from": [{"source": {
                    "namespaces": ["prod", "*-test"], "notPrincipals": ["*"],
                    "ipBlocks": ["10.0.0.0/8", "192.168.1.1", "2001:db8::/32", "fe80::1%eth0"],
                    "notRemoteIpBlocks": ["10.0.0.1/8"]
                }}],
                "to": [{"operation": {
                    "ports": ["0", "8080"], "notPorts": ["65535"], "hosts": ["*.example.com"],
                    "paths": ["/api/{*}/users/{**}", "/static/*", "*"], "notMethods": ["DELETE"]
                }}],
                "when": [
                    {"key": "request.headers[x-user]", "values": ["alice"]},
                    {"key": "source.ip", "notValues": ["10.1.0.0/16"]},
                    {"key": "remote.ip", "values": ["1.2.3.4"]},
                    {"key": "destination.ip", "values": ["::1"]},
                    {"key": "destination.port", "values": ["443"]},
                    {"key": "source.namespace", "values": ["prod"]},
                    {"key": "source.principal", "values": ["cluster.local/ns/prod/sa/web"]},
                    {"key": "source.serviceAccount", "values": ["prod/web", "web"]},
                    {"key": "request.auth.principal", "values": ["iss/sub"]},
                    {"key": "request.auth.audiences", "values": ["api"]},
                    {"key": "request.auth.presenter", "values": ["app"]},
                    {"key": "request.auth.claims[groups]", "values": ["admin"]},
                    {"key": "request.experimental.inline.headers[x]", "values": ["y"]},
                    {"key": "connection.sni", "values": ["www.example.com"]},
                    {"key": "experimental.envoy.filters.network.mysql_proxy[db.table]", "values": ["[update]"]}
                ]
            }]
        }));
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn deny_without_rules_is_an_error() {
        let msg = "DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request";
        for spec in [
            json!({"action": "DENY"}),
            json!({"action": "DENY", "rules": []}),
        ] {
            let f = run(spec);
            assert_eq!(
                errors(&f),
                [("spec.rules", format!("{PREFIX}{msg}").as_str())]
            );
        }
    }

    #[test]
    fn custom_needs_rules_and_a_provider() {
        assert_one_error(
            json!({"action": "CUSTOM", "provider": {"name": "ext"}}),
            "spec.rules",
            "CUSTOM action without `rules` is meaningless",
        );
        assert_one_error(
            json!({"action": "CUSTOM", "rules": [{}]}),
            "spec.provider",
            "`provider.name` must not be empty",
        );
        assert_one_error(
            json!({"action": "CUSTOM", "provider": {}, "rules": [{}]}),
            "spec.provider.name",
            "`provider.name` must not be empty",
        );
        assert_one_error(
            json!({"action": "CUSTOM", "provider": {"name": ""}, "rules": [{}]}),
            "spec.provider.name",
            "`provider.name` must not be empty",
        );
        assert!(
            run(json!({"action": "CUSTOM", "provider": {"name": "ext"}, "rules": [{}]})).is_empty()
        );
    }

    #[test]
    fn provider_only_with_custom() {
        assert_one_error(
            json!({"provider": {"name": "ext"}}),
            "spec.provider",
            "`provider` must not be with non CUSTOM action, found ALLOW",
        );
        assert_one_error(
            json!({"action": "AUDIT", "provider": {"name": "ext"}}),
            "spec.provider",
            "`provider` must not be with non CUSTOM action, found AUDIT",
        );
    }

    #[test]
    fn custom_rejects_identity_attributes() {
        let f = run(json!({
            "action": "CUSTOM", "provider": {"name": "ext"},
            "rules": [{
                "from": [{"source": {"namespaces": ["a"], "requestPrincipals": ["*"], "ipBlocks": ["1.2.3.4"]}}],
                "when": [
                    {"key": "source.principal", "values": ["x"]},
                    {"key": "request.auth.claims[iss]", "values": ["x"]},
                    {"key": "source.ip", "values": ["1.2.3.4"]}
                ]
            }]
        }));
        let e = errors(&f);
        let src = "spec.rules[0].from[0].source";
        assert!(e.contains(&(
            &format!("{src}.namespaces"),
            &format!("{PREFIX}From.Namespaces is currently not supported with CUSTOM action")
        )));
        assert!(e.contains(&(
            &format!("{src}.requestPrincipals"),
            &format!(
                "{PREFIX}From.RequestPrincipals is currently not supported with CUSTOM action"
            )
        )));
        assert!(e.contains(&(
            "spec.rules[0].when[0].key",
            &format!("{PREFIX}source.principal is currently not supported with CUSTOM action")
        )));
        assert!(e.contains(&(
            "spec.rules[0].when[1].key",
            &format!(
                "{PREFIX}request.auth.claims[iss] is currently not supported with CUSTOM action"
            )
        )));
        assert_eq!(e.len(), 4, "{e:?}");
    }

    #[test]
    fn empty_from_and_to_lists_are_errors() {
        assert_one_error(
            json!({"rules": [{"from": []}]}),
            "spec.rules[0].from",
            "`from` must not be empty, found at rule 0",
        );
        assert_one_error(
            json!({"rules": [{}, {"to": []}]}),
            "spec.rules[1].to",
            "`to` must not be empty, found at rule 1",
        );
    }

    #[test]
    fn from_needs_a_non_empty_source() {
        assert_one_error(
            json!({"rules": [{"from": [{}]}]}),
            "spec.rules[0].from[0].source",
            "`from.source` must not be nil, found at rule 0",
        );
        assert_one_error(
            rule_from(json!({})),
            "spec.rules[0].from[0].source",
            "`from.source` must not be empty, found at rule 0",
        );
        assert_one_error(
            rule_from(json!({"principals": []})),
            "spec.rules[0].from[0].source",
            "`from.source` must not be empty",
        );
    }

    #[test]
    fn to_needs_a_non_empty_operation() {
        assert_one_error(
            json!({"rules": [{"to": [{}]}]}),
            "spec.rules[0].to[0].operation",
            "`to.operation` must not be nil, found at rule 0",
        );
        assert_one_error(
            rule_to(json!({})),
            "spec.rules[0].to[0].operation",
            "`to.operation` must not be empty, found at rule 0",
        );
    }

    #[test]
    fn service_accounts_exclude_namespaces_and_principals() {
        assert_one_error(
            rule_from(json!({"serviceAccounts": ["ns/sa"], "namespaces": ["ns"]})),
            "spec.rules[0].from[0].source",
            "cannot set serviceAccounts with namespaces or principals, found at rule 0",
        );
        assert!(
            run(rule_from(
                json!({"serviceAccounts": ["ns/sa"], "ipBlocks": ["1.2.3.4"]})
            ))
            .is_empty()
        );
    }

    #[test]
    fn service_account_values() {
        let p = "spec.rules[0].from[0].source.serviceAccounts";
        let cases = [
            ("a*", "wildcard not allowed, found in ServiceAccounts"),
            (
                "a/b/c",
                "expected format 'serviceAccount' or 'namespace/serviceAccount', found \"a/b/c\" in ServiceAccounts",
            ),
            ("/sa", "found empty namespace \"/sa\" in ServiceAccounts"),
            (
                "ns/",
                "found empty serviceAccount \"ns/\" in ServiceAccounts",
            ),
            ("", "empty value not allowed, found in ServiceAccounts"),
        ];
        for (value, part) in cases {
            assert_one_error(
                rule_from(json!({"serviceAccounts": ["ok", value]})),
                &format!("{p}[1]"),
                part,
            );
        }
        let long = "s".repeat(321);
        assert_one_error(
            rule_from(json!({"serviceAccounts": [long]})),
            &format!("{p}[0]"),
            "value cannot exceed 320 characters",
        );
        let many: Vec<String> = (0..17).map(|i| format!("sa{i}")).collect();
        assert_one_error(
            rule_from(json!({"notServiceAccounts": many})),
            "spec.rules[0].from[0].source.notServiceAccounts",
            "may not have more than 16 values",
        );
    }

    #[test]
    fn ip_blocks_must_be_ips_or_cidrs() {
        let f = run(rule_from(json!({
            "ipBlocks": ["10.0.0.0/8", "10.0.0.0/33", "nope", "1.2.3.04"],
            "notIpBlocks": ["fe80::1%eth0/64"],
            "remoteIpBlocks": ["2001:db8::/129", "10.0.0.0/08", "10.0.0.0/"],
            "notRemoteIpBlocks": ["x/8"]
        })));
        let src = "spec.rules[0].from[0].source";
        let expect = [
            (
                "ipBlocks[1]",
                "bad CIDR range (10.0.0.0/33): netip.ParsePrefix(\"10.0.0.0/33\"): prefix length out of range",
            ),
            ("ipBlocks[2]", "bad IP address (nope)"),
            ("ipBlocks[3]", "bad IP address (1.2.3.04)"),
            ("notIpBlocks[0]", "IPv6 zones cannot be present in a prefix"),
            ("remoteIpBlocks[0]", "prefix length out of range"),
            ("remoteIpBlocks[1]", "bad bits after slash: \"08\""),
            ("remoteIpBlocks[2]", "bad bits after slash: \"\""),
            (
                "notRemoteIpBlocks[0]",
                "ParseAddr(\"x\"): unable to parse IP",
            ),
        ];
        let e = errors(&f);
        assert_eq!(e.len(), expect.len(), "{e:?}");
        for ((field, msg), (want_field, part)) in e.iter().zip(expect) {
            assert_eq!(*field, format!("{src}.{want_field}"));
            assert!(msg.contains(part), "{msg:?} lacks {part:?}");
        }
    }

    #[test]
    fn empty_source_values_are_errors() {
        let src = "spec.rules[0].from[0].source";
        assert_one_error(
            rule_from(json!({"principals": ["a", ""]})),
            &format!("{src}.principals[1]"),
            "empty value not allowed, found in Principals",
        );
        assert_one_error(
            rule_from(json!({"notNamespaces": [""]})),
            &format!("{src}.notNamespaces[0]"),
            "empty value not allowed, found in NotNamespaces",
        );
        assert_one_error(
            rule_from(json!({"ipBlocks": [""]})),
            &format!("{src}.ipBlocks[0]"),
            "empty value not allowed, found in IpBlocks",
        );
        assert_one_error(
            rule_from(json!({"requestPrincipals": [""]})),
            &format!("{src}.requestPrincipals[0]"),
            "found in RequestPrincipals",
        );
    }

    #[test]
    fn operation_ports_and_values() {
        let op = "spec.rules[0].to[0].operation";
        assert_one_error(
            rule_to(json!({"ports": ["80", "http"]})),
            &format!("{op}.ports[1]"),
            "bad port (http): strconv.ParseUint: parsing \"http\": invalid syntax",
        );
        assert_one_error(
            rule_to(json!({"notPorts": ["70000"]})),
            &format!("{op}.notPorts[0]"),
            "bad port (70000)",
        );
        assert_one_error(
            rule_to(json!({"ports": ["-1"]})),
            &format!("{op}.ports[0]"),
            "bad port (-1)",
        );
        assert_one_error(
            rule_to(json!({"ports": ["99999999999"]})),
            &format!("{op}.ports[0]"),
            "value out of range",
        );
        assert_one_error(
            rule_to(json!({"ports": [""]})),
            &format!("{op}.ports[0]"),
            "empty value not allowed, found in Ports",
        );
        assert_one_error(
            rule_to(json!({"methods": [""]})),
            &format!("{op}.methods[0]"),
            "found in Methods",
        );
        assert_one_error(
            rule_to(json!({"notHosts": [""]})),
            &format!("{op}.notHosts[0]"),
            "found in NotHosts",
        );
    }

    #[test]
    fn path_templates() {
        let op = "spec.rules[0].to[0].operation";
        for ok in [
            "/a/{*}/b",
            "/a/{**}",
            "/a/{**}/",
            "/{*}/{*}",
            "/foo*",
            "*",
            "/a%20b/{*}",
        ] {
            assert!(run(rule_to(json!({"paths": [ok]}))).is_empty(), "{ok}");
        }
        assert_one_error(
            rule_to(json!({"paths": ["/a/{**}/{*}"]})),
            &format!("{op}.paths[0]"),
            "invalid or unsupported path a/{**}/{*}, found in Paths. {**} is not the last operator",
        );
        assert_one_error(
            rule_to(json!({"notPaths": ["/a/{id}"]})),
            &format!("{op}.notPaths[0]"),
            "found in NotPaths. Contains '{' or '}' beyond a supported path template",
        );
        assert_one_error(
            rule_to(json!({"paths": ["/a/b*/{*}"]})),
            &format!("{op}.paths[0]"),
            "Contains segment b* with invalid string literal",
        );
        assert_one_error(
            rule_to(json!({"paths": ["/a//{*}"]})),
            &format!("{op}.paths[0]"),
            "Contains segment  with invalid string literal",
        );
    }

    #[test]
    fn when_needs_key_and_values() {
        assert_one_error(
            rule_when(json!({"values": ["x"]})),
            "spec.rules[0].when[0].key",
            "`key` must not be empty",
        );
        assert_one_error(
            rule_when(json!({"key": "source.ip"})),
            "spec.rules[0].when[0]",
            "at least one of `values` or `notValues` must be set for key source.ip",
        );
        assert_one_error(
            rule_when(json!({"key": "source.ip", "values": [], "notValues": []})),
            "spec.rules[0].when[0]",
            "at least one of",
        );
    }

    #[test]
    fn when_keys_must_be_known() {
        let cases = [
            (
                "request.host",
                "invalid `value` for `key` request.host: unknown attribute: request.host",
            ),
            ("source.user", "unknown attribute: source.user"),
            (
                "request.headers",
                "bad key (request.headers): should have format a[b]",
            ),
            (
                "request.headers[]",
                "bad key (request.headers[]): should have format a[b]",
            ),
            ("request.auth.claims[groups", "should have format a[b]"),
            ("experimental.envoy.filters.x", "should have format a[b]"),
            (
                "destination.namespace",
                "attribute destination.namespace is replaced by the metadata.namespace",
            ),
            (
                "destination.labels[app]",
                "attribute destination.labels[app] is replaced by the workload selector",
            ),
            (
                "destination.name",
                "deprecated attribute destination.name: only supported in v1alpha1",
            ),
            (
                "destination.user",
                "deprecated attribute destination.user: only supported in v1alpha1",
            ),
        ];
        for (key, part) in cases {
            // Reported once even with both lists (Istio reports it per list).
            assert_one_error(
                rule_when(json!({"key": key, "values": ["a"], "notValues": ["b"]})),
                "spec.rules[0].when[0].key",
                part,
            );
        }
    }

    #[test]
    fn when_values_are_typed() {
        let w = "spec.rules[0].when";
        let f = run(json!({"rules": [{"when": [
            {"key": "request.headers[x]", "values": ["ok"]},
            {"key": "source.ip", "values": ["10.0.0.0/8", "bogus"], "notValues": ["10.0.0.0/40"]},
            {"key": "remote.ip", "notValues": ["1.1.1"]},
            {"key": "destination.port", "values": ["80", "65536", "eighty"]},
            {"key": "source.serviceAccount", "values": ["ns/*"]},
            {"key": "source.namespace", "values": ["", "ns"]}
        ]}]}));
        let e = errors(&f);
        let expect = [
            (
                format!("{w}[1].values[1]"),
                "invalid `value` for `key` source.ip: bad IP address (bogus)",
            ),
            (
                format!("{w}[1].notValues[0]"),
                "invalid `notValue` for `key` source.ip: bad CIDR range (10.0.0.0/40)",
            ),
            (
                format!("{w}[2].notValues[0]"),
                "invalid `notValue` for `key` remote.ip: bad IP address (1.1.1)",
            ),
            (
                format!("{w}[3].values[1]"),
                "invalid `value` for `key` destination.port: bad port (65536)",
            ),
            (
                format!("{w}[3].values[2]"),
                "invalid `value` for `key` destination.port: bad port (eighty)",
            ),
            (
                format!("{w}[4].values[0]"),
                "invalid `value` for `key` source.serviceAccount: wildcard not allowed, found in source.serviceAccount",
            ),
            (
                format!("{w}[5].values[0]"),
                "invalid `value` for `key` source.namespace: empty value not allowed, found in source.namespace",
            ),
        ];
        assert_eq!(e.len(), expect.len(), "{e:?}");
        for ((field, msg), (want_field, part)) in e.iter().zip(&expect) {
            assert_eq!(field, want_field);
            assert!(
                msg.starts_with(PREFIX) && msg.contains(part),
                "{msg:?} lacks {part:?}"
            );
        }
    }

    #[test]
    fn deny_with_only_http_attributes_warns() {
        let warn_for = |rule: serde_json::Value| {
            warnings(&run(json!({"action": "DENY", "rules": [rule]}))).len()
        };
        assert_eq!(
            warn_for(json!({"to": [{"operation": {"methods": ["POST"]}}]})),
            1
        );
        assert_eq!(
            warn_for(json!({"from": [{"source": {"requestPrincipals": ["*"]}}]})),
            1
        );
        assert_eq!(
            warn_for(
                json!({"from": [{"source": {"namespaces": ["a"]}}], "to": [{"operation": {"paths": ["/x"]}}]})
            ),
            1
        );
        assert_eq!(
            warn_for(json!({"from": [{"source": {"namespaces": ["a"]}}]})),
            0
        );
        assert_eq!(
            warn_for(json!({"to": [{"operation": {"methods": ["POST"], "ports": ["8080"]}}]})),
            0
        );
        assert_eq!(
            warn_for(json!({"when": [{"key": "request.headers[x]", "values": ["y"]}]})),
            0
        );
        assert_eq!(warn_for(json!({})), 0);
        let f = run(
            json!({"action": "DENY", "rules": [{}, {"to": [{"operation": {"methods": ["POST"]}}]}]}),
        );
        let w = warnings(&f);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].0, "spec.rules[1]");
        assert!(
            w[0].1
                .starts_with("configured AuthorizationPolicy will deny all traffic to TCP ports"),
            "warnings are not prefixed"
        );
        assert!(warnings(&run(json!({"action": "ALLOW", "rules": [{"to": [{"operation": {"methods": ["POST"]}}]}]}))).is_empty());
    }

    #[test]
    fn selector_and_target_errors_are_prefixed() {
        let f = run(
            json!({"selector": {"matchLabels": {"app": "a"}}, "targetRef": {"kind": "Service", "name": "s"}}),
        );
        assert_eq!(
            errors(&f),
            [(
                "spec.targetRef",
                "invalid policy p.ns: only one of targetRefs or workloadSelector can be set"
            )]
        );
        let f = run(json!({"selector": {}}));
        assert_eq!(
            warnings(&f),
            [(
                "spec.selector",
                "workload selector specified without labels"
            )]
        );
    }

    #[test]
    fn prefix_uses_default_namespace() {
        let f = run_with(json!({"action": "DENY"}), json!({"name": "deny-all"}));
        assert!(
            errors(&f)[0]
                .1
                .starts_with("invalid policy deny-all.default: DENY action")
        );
    }

    #[test]
    fn dry_run_annotation() {
        let meta = |v: &str| json!({"name": "p", "namespace": "ns", "annotations": {"istio.io/dry-run": v}});
        assert!(run_with(json!({"action": "DENY", "rules": [{}]}), meta("true")).is_empty());
        assert!(run_with(json!({}), meta("F")).is_empty());
        let f = run_with(json!({}), meta("yes"));
        assert_eq!(
            errors(&f),
            [(
                "metadata.annotations.istio.io/dry-run",
                "ns/p has annotation istio.io/dry-run with invalid value (yes): strconv.ParseBool: parsing \"yes\": invalid syntax"
            )]
        );
        let f = run_with(
            json!({"action": "CUSTOM", "provider": {"name": "x"}, "rules": [{}]}),
            meta("true"),
        );
        assert_eq!(
            errors(&f),
            [(
                "metadata.annotations.istio.io/dry-run",
                "the annotation istio.io/dry-run currently only supports action ALLOW/DENY, found action CUSTOM in ns/p"
            )]
        );
    }
}
