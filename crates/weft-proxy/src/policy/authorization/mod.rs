//! Evaluates Istio AuthorizationPolicy for one workload: which policies apply, and whether a
//! request (or TCP connection) is allowed, denied, audited or would be denied in dry-run.
//!
//! Order (the proto's, minus CUSTOM): any matching DENY policy denies; otherwise, if ALLOW
//! policies apply, one must match; with no ALLOW policy everything is allowed. AUDIT only marks
//! the request. Decisions to note:
//!
//! * **CUSTOM** (ext-authz) policies are out of scope and ignored, as are policies bound with
//!   `targetRef(s)` (gateways and waypoints), which never apply to a sidecar workload.
//! * **Unavailable attributes** are resolved per action so that both ALLOW and DENY fail closed:
//!   a field whose attribute the request cannot have — HTTP-only fields
//!   (`hosts`, `methods`, `paths`, `requestPrincipals`, `request.headers`, `request.auth.*`) on
//!   plain TCP, peer identity (`principals`, `namespaces`, `serviceAccounts`, their `not*`
//!   forms, `source.principal`, `source.namespace`) without mTLS, and unsupported `when` keys —
//!   never matches in ALLOW and AUDIT rules and always matches in DENY rules. This follows
//!   Istio for TCP, and for plaintext peers deliberately differs from it (ISB-2021-004): an
//!   absent principal never satisfies `notPrincipals`/`notNamespaces` in an ALLOW rule.
//! * Request principal, SNI, headers and claims that are merely absent (HTTP, no JWT) match no
//!   positive value and satisfy every negated one, as in Envoy, so `notRequestPrincipals: ["*"]`
//!   in a DENY policy denies requests without a token.
//! * Header values are matched one by one, each line and each comma-separated element.
//! * Policies annotated `istio.io/dry-run: "true"` are evaluated into [`Verdict::shadow`] and
//!   never enforced.

mod compile;
mod matcher;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::IpAddr;

use http::HeaderMap;
use weft_api::model::{AuthorizationAction, AuthorizationPolicy};
use weft_api::{Resource, Spec};

use compile::CompiledRule;

/// The annotation that turns a policy into a dry run.
pub const DRY_RUN_ANNOTATION: &str = "istio.io/dry-run";

/// What a policy decision is made from. Paths are already normalized and without the query;
/// `host` is the authority without port. For plain TCP set `http: false`; the HTTP fields are
/// then ignored.
#[derive(Debug, Clone, Copy)]
pub struct RequestAttributes<'a> {
    /// The peer's SPIFFE ID without `spiffe://` (`cluster.local/ns/default/sa/sleep`); `None`
    /// without mTLS.
    pub source_principal: Option<&'a str>,
    /// The peer's namespace from its mTLS identity; `None` without mTLS.
    pub source_namespace: Option<&'a str>,
    /// The connection's peer address.
    pub source_ip: IpAddr,
    /// The original client address (X-Forwarded-For / proxy protocol), else the peer address.
    pub remote_ip: IpAddr,
    /// The validated JWT's `iss/sub`.
    pub request_principal: Option<&'a str>,
    /// The validated JWT's payload, for `request.auth.claims[..]`, `audiences`, `presenter`.
    pub jwt_claims: Option<&'a serde_json::Value>,
    pub host: &'a str,
    pub destination_ip: IpAddr,
    pub destination_port: u16,
    pub method: &'a str,
    pub path: &'a str,
    pub headers: Option<&'a HeaderMap>,
    pub sni: Option<&'a str>,
    /// False for plain TCP.
    pub http: bool,
}

impl<'a> RequestAttributes<'a> {
    /// A plain TCP connection without mTLS identity, SNI or HTTP attributes.
    pub fn tcp(source_ip: IpAddr, destination_ip: IpAddr, destination_port: u16) -> Self {
        RequestAttributes {
            source_principal: None,
            source_namespace: None,
            source_ip,
            remote_ip: source_ip,
            request_principal: None,
            jwt_claims: None,
            host: "",
            destination_ip,
            destination_port,
            method: "",
            path: "",
            headers: None,
            sni: None,
            http: false,
        }
    }
}

/// Whether the request may proceed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// `policy` is the matching DENY policy as `ns.name`, or `none` when ALLOW policies exist
    /// and none matched.
    Deny {
        policy: String,
    },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }

    /// Envoy's `response_code_details` for a denial
    /// (`rbac_access_denied_matched_policy[ns.name]`); `None` when allowed.
    pub fn response_code_details(&self) -> Option<String> {
        match self {
            Decision::Allow => None,
            Decision::Deny { policy } => {
                Some(format!("rbac_access_denied_matched_policy[{policy}]"))
            }
        }
    }
}

/// A decision plus what does not affect it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    /// An AUDIT policy matched.
    pub audit: bool,
    /// With dry-run policies present: the decision if they were enforced as well.
    pub shadow: Option<Decision>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Allow,
    Deny,
    Audit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CompiledPolicy {
    /// `ns.name`.
    id: String,
    action: Action,
    dry_run: bool,
    rules: Vec<CompiledRule>,
}

impl CompiledPolicy {
    fn matches(&self, req: &RequestAttributes<'_>) -> bool {
        let unavailable = self.action == Action::Deny;
        self.rules.iter().any(|r| r.matches(req, unavailable))
    }
}

/// The AuthorizationPolicies of one workload, compiled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authorizer {
    /// Sorted by id, so the reported policy does not depend on input order.
    policies: Vec<CompiledPolicy>,
}

impl Authorizer {
    /// Compiles the policies that apply to a workload in `namespace` with `labels`: those in
    /// its namespace and in `root_namespace` without a selector or whose selector matches.
    pub fn for_workload(
        resources: &[Resource],
        namespace: &str,
        labels: &BTreeMap<String, String>,
        root_namespace: &str,
    ) -> Authorizer {
        let mut policies: Vec<CompiledPolicy> = resources
            .iter()
            .filter(|r| r.namespace() == namespace || r.namespace() == root_namespace)
            .filter_map(|r| match &r.spec {
                Spec::AuthorizationPolicy(p) => compile_policy(r, p, labels),
                _ => None,
            })
            .collect();
        policies.sort_by(|a, b| a.id.cmp(&b.id));
        policies.dedup_by(|a, b| a.id == b.id);
        Authorizer { policies }
    }

    /// Whether no policy applies (everything is allowed).
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// `ns.name` of every applicable policy, dry-run ones included.
    pub fn policy_ids(&self) -> impl Iterator<Item = &str> {
        self.policies.iter().map(|p| p.id.as_str())
    }

    pub fn evaluate(&self, req: &RequestAttributes<'_>) -> Verdict {
        let enforced = || self.policies.iter().filter(|p| !p.dry_run);
        let audit = enforced().any(|p| p.action == Action::Audit && p.matches(req));
        let shadow = self
            .policies
            .iter()
            .any(|p| p.dry_run)
            .then(|| decide(|| self.policies.iter(), req));
        Verdict {
            decision: decide(enforced, req),
            audit,
            shadow,
        }
    }
}

fn decide<'p, I>(policies: impl Fn() -> I, req: &RequestAttributes<'_>) -> Decision
where
    I: Iterator<Item = &'p CompiledPolicy>,
{
    if let Some(p) = policies().find(|p| p.action == Action::Deny && p.matches(req)) {
        return Decision::Deny {
            policy: p.id.clone(),
        };
    }
    let mut allows = policies().filter(|p| p.action == Action::Allow).peekable();
    if allows.peek().is_none() || allows.any(|p| p.matches(req)) {
        Decision::Allow
    } else {
        Decision::Deny {
            policy: "none".to_string(),
        }
    }
}

fn compile_policy(
    resource: &Resource,
    policy: &AuthorizationPolicy,
    labels: &BTreeMap<String, String>,
) -> Option<CompiledPolicy> {
    if policy.target_ref.is_some() || !policy.target_refs.is_empty() {
        return None;
    }
    if !super::selects(policy.selector.as_ref(), labels) {
        return None;
    }
    let action = match policy.action.unwrap_or(AuthorizationAction::Allow) {
        AuthorizationAction::Allow => Action::Allow,
        AuthorizationAction::Deny => Action::Deny,
        AuthorizationAction::Audit => Action::Audit,
        AuthorizationAction::Custom => return None,
    };
    let namespace = resource.namespace();
    let rules = policy.rules.iter().flatten();
    Some(CompiledPolicy {
        id: format!("{namespace}.{}", resource.name()),
        action,
        dry_run: is_dry_run(resource),
        rules: rules.map(|r| CompiledRule::compile(r, namespace)).collect(),
    })
}

/// The annotation as Go's `strconv.ParseBool` reads it (Istio's parser).
fn is_dry_run(resource: &Resource) -> bool {
    resource
        .meta
        .annotations
        .get(DRY_RUN_ANNOTATION)
        .is_some_and(|v| matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"))
}
