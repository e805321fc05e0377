//! Validation of the security kinds (PeerAuthentication, AuthorizationPolicy and
//! RequestAuthentication) as Istio's webhook does it, plus the selector and `targetRef` checks
//! that AuthorizationPolicy and RequestAuthentication share.

mod authorization;
mod jwt;
mod peer;
mod values;

pub use authorization::check_authorization_policy;
pub use jwt::check_request_authentication;
pub use peer::check_peer_authentication;

use super::common;
use crate::diagnostic::{FieldPath, Findings};
use crate::model::{PolicyTargetReference, WorkloadSelector};

/// The kinds a policy may target, as `(canonical group, kind)`; an empty group means `core`.
const ALLOWED_TARGETS: [(&str, &str); 4] = [
    ("core", "Service"),
    ("networking.istio.io", "ServiceEntry"),
    ("gateway.networking.k8s.io", "Gateway"),
    ("gateway.networking.k8s.io", "GatewayClass"),
];

/// [`ALLOWED_TARGETS`] as Istio prints its `[]GroupVersionKind` (`%v`).
const ALLOWED_TARGETS_TEXT: &str = "[core/v1/Service networking.istio.io/v1/ServiceEntry \
     gateway.networking.k8s.io/v1beta1/Gateway gateway.networking.k8s.io/v1beta1/GatewayClass]";

/// `validateOneOfSelectorType`, `validateWorkloadSelector` and `validatePolicyTargetReference(s)`:
/// at most one of `selector`, `targetRef` and `targetRefs`, each well formed.
fn check_selector_and_targets(
    out: &mut Findings,
    path: &FieldPath,
    selector: Option<&WorkloadSelector>,
    target_ref: Option<&PolicyTargetReference>,
    target_refs: &[PolicyTargetReference],
) {
    let set = [
        selector.is_some(),
        target_ref.is_some(),
        !target_refs.is_empty(),
    ];
    if set.iter().filter(|s| **s).count() > 1 {
        let field = if target_refs.is_empty() {
            "targetRef"
        } else {
            "targetRefs"
        };
        out.error(
            path.field(field),
            "only one of targetRefs or workloadSelector can be set",
        );
    }
    if let Some(sel) = selector {
        common::check_workload_selector(out, &path.field("selector"), sel);
    }
    if let Some(r) = target_ref {
        check_target_ref(out, &path.field("targetRef"), r);
    }
    let refs = path.field("targetRefs");
    for (i, r) in target_refs.iter().enumerate() {
        check_target_ref(out, &refs.index(i), r);
    }
}

/// `validatePolicyTargetReference`: a name, no namespace, and one of [`ALLOWED_TARGETS`].
fn check_target_ref(out: &mut Findings, path: &FieldPath, r: &PolicyTargetReference) {
    if r.name.as_deref().unwrap_or_default().is_empty() {
        out.error(path.field("name"), "targetRef name must be set");
    }
    if !r.namespace.as_deref().unwrap_or_default().is_empty() {
        out.error(
            path.field("namespace"),
            "targetRef namespace must not be set; cross namespace referencing is not supported",
        );
    }
    let group = r.group.as_deref().unwrap_or_default();
    let kind = r.kind.as_deref().unwrap_or_default();
    let canonical = if group.is_empty() { "core" } else { group };
    if !ALLOWED_TARGETS.contains(&(canonical, kind)) {
        out.error(
            path.field("kind"),
            format!("targetRef must be to one of {ALLOWED_TARGETS_TEXT} but was {group}/{kind}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::AuthorizationPolicy;

    fn run(spec: serde_json::Value) -> Vec<crate::diagnostic::Finding> {
        let ap: AuthorizationPolicy = serde_json::from_value(spec).unwrap();
        let mut out = Findings::default();
        check_selector_and_targets(
            &mut out,
            &FieldPath::new("spec"),
            ap.selector.as_ref(),
            ap.target_ref.as_ref(),
            &ap.target_refs,
        );
        out.into_vec()
    }

    #[test]
    fn accepts_each_allowed_target_kind() {
        for (group, kind) in [
            ("", "Service"),
            ("core", "Service"),
            ("networking.istio.io", "ServiceEntry"),
            ("gateway.networking.k8s.io", "Gateway"),
            ("gateway.networking.k8s.io", "GatewayClass"),
        ] {
            let f = run(json!({"targetRef": {"group": group, "kind": kind, "name": "x"}}));
            assert!(f.is_empty(), "{group}/{kind}: {f:?}");
        }
        assert!(run(json!({"targetRefs": [{"kind": "Service", "name": "a"}, {"kind": "Service", "name": "b"}]})).is_empty());
    }

    #[test]
    fn rejects_selector_with_target_ref() {
        let f = run(
            json!({"selector": {"matchLabels": {"app": "a"}}, "targetRef": {"kind": "Service", "name": "x"}}),
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].field, "spec.targetRef");
        assert!(
            f[0].message
                .contains("only one of targetRefs or workloadSelector")
        );
        let f = run(
            json!({"targetRef": {"kind": "Service", "name": "x"}, "targetRefs": [{"kind": "Service", "name": "y"}]}),
        );
        assert_eq!(f[0].field, "spec.targetRefs");
    }

    #[test]
    fn rejects_bad_target_refs() {
        let f = run(
            json!({"targetRefs": [{"kind": "Service", "name": "ok"}, {"kind": "Deployment", "namespace": "other"}]}),
        );
        let fields: Vec<_> = f.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.targetRefs[1].name",
                "spec.targetRefs[1].namespace",
                "spec.targetRefs[1].kind"
            ]
        );
        assert_eq!(f[0].message, "targetRef name must be set");
        assert!(
            f[1].message
                .contains("cross namespace referencing is not supported")
        );
        assert!(
            f[2].message.ends_with("but was /Deployment"),
            "{}",
            f[2].message
        );
        let f = run(json!({"targetRef": {"group": "apps", "kind": "Service", "name": "x"}}));
        assert!(f[0].message.ends_with("but was apps/Service"));
    }

    #[test]
    fn selector_without_labels_warns() {
        let f = run(json!({"selector": {}}));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, crate::diagnostic::Severity::Warning);
        assert_eq!(f[0].field, "spec.selector");
        let f = run(json!({"selector": {"matchLabels": {"app": "*"}}}));
        assert!(
            f[0].message
                .contains("wildcard is not supported in selector")
        );
    }
}
