//! PeerAuthentication: which mTLS mode the inbound listener enforces for one workload, per port.
//!
//! The rules are Istio's (`ComposePeerAuthentication` in `pilot/pkg/security/authn`):
//!
//! * **Scopes.** A policy without a selector (or with an empty `matchLabels`) in the root
//!   namespace is *mesh-wide*; one without a selector in the workload's namespace is
//!   *namespace-wide*; one in the workload's namespace whose `selector.matchLabels` are all among
//!   the workload's labels is *workload-specific*. Policies of other namespaces never apply. A
//!   policy **with** a selector in the root namespace is ignored, even for workloads that run in
//!   the root namespace: Istio only takes workload policies from outside the root namespace
//!   (istio/istio#61023), and its docs list root-namespace selector policies as having no effect.
//! * **One policy per scope.** When several policies share a scope, Istio takes the oldest by
//!   creation timestamp. Resources carry no timestamps here, so the first one in input order
//!   wins (put the intended policy first, or better, keep one per scope).
//! * **Most specific wins, UNSET inherits.** The workload mode starts as PERMISSIVE and is
//!   overridden, in order, by the mesh, namespace and workload policy's `mtls.mode`; a policy
//!   without `mtls`, without `mode` or with `UNSET` leaves the inherited mode as it is.
//! * **Port level.** Only the workload-specific policy's `portLevelMtls` counts (validation
//!   rejects it elsewhere, and Istio ignores it there). Its keys are the workload's (container)
//!   ports, not service ports; an UNSET entry takes the workload's effective mode. Keys that are
//!   not port numbers are skipped (validation rejects them). Port settings are not inherited
//!   across scopes: a workload policy replaces them wholesale.

use std::collections::BTreeMap;

use serde::Serialize;
use weft_api::model::{MtlsMode, MutualTls, PeerAuthentication};
use weft_api::{Resource, Spec};

/// The mode enforced on one inbound port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PeerMode {
    /// mTLS required: plaintext connections are closed.
    Strict,
    /// mTLS and plaintext both accepted on the same port (Istio's default).
    Permissive,
    /// Plaintext only: the listener does not terminate TLS.
    Disable,
}

impl PeerMode {
    /// The mode a `mtls` block sets; `None` when it inherits (absent, no mode, `UNSET`).
    fn from_mtls(mtls: Option<&MutualTls>) -> Option<PeerMode> {
        match mtls.and_then(|m| m.mode)? {
            MtlsMode::Unset => None,
            MtlsMode::Disable => Some(PeerMode::Disable),
            MtlsMode::Permissive => Some(PeerMode::Permissive),
            MtlsMode::Strict => Some(PeerMode::Strict),
        }
    }

    /// Istio's spelling (`STRICT`, `PERMISSIVE`, `DISABLE`).
    pub fn as_str(self) -> &'static str {
        match self {
            PeerMode::Strict => "STRICT",
            PeerMode::Permissive => "PERMISSIVE",
            PeerMode::Disable => "DISABLE",
        }
    }
}

impl std::fmt::Display for PeerMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How widely a PeerAuthentication applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerScope {
    /// Root namespace, no selector.
    Mesh,
    /// The workload's namespace, no selector.
    Namespace,
    /// The workload's namespace, a selector matching the workload's labels.
    Workload,
}

/// A policy selected for the workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppliedPeerPolicy {
    pub scope: PeerScope,
    /// `namespace/name`.
    pub name: String,
    /// The mode it sets; `None` when it inherits (UNSET).
    pub mode: Option<PeerMode>,
}

/// The PeerAuthentication policies of one workload, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerAuthenticator {
    /// The workload's effective mode (ports without a port-level setting).
    default: PeerMode,
    /// Port-level modes of the workload policy, UNSET already resolved.
    ports: BTreeMap<u16, PeerMode>,
    /// The selected policy of each scope, mesh first.
    applied: Vec<AppliedPeerPolicy>,
}

impl PeerAuthenticator {
    /// Resolves the policies among `resources` that apply to a workload in `namespace` with
    /// `labels`, `root_namespace` holding the mesh-wide one (see the module docs).
    pub fn for_workload(
        resources: &[Resource],
        namespace: &str,
        labels: &BTreeMap<String, String>,
        root_namespace: &str,
    ) -> PeerAuthenticator {
        let mut selected: [Option<(&Resource, &PeerAuthentication)>; 3] = [None, None, None];
        for r in resources {
            let Spec::PeerAuthentication(pa) = &r.spec else {
                continue;
            };
            let Some(scope) = scope_of(r, pa, namespace, labels, root_namespace) else {
                continue;
            };
            let slot = &mut selected[scope_index(scope)];
            if slot.is_none() {
                *slot = Some((r, pa.as_ref()));
            }
        }
        let scopes = [PeerScope::Mesh, PeerScope::Namespace, PeerScope::Workload];
        let mut default = PeerMode::Permissive;
        let mut applied = Vec::new();
        for (scope, found) in scopes.into_iter().zip(selected) {
            let Some((r, pa)) = found else { continue };
            let mode = PeerMode::from_mtls(pa.mtls.as_ref());
            default = mode.unwrap_or(default);
            applied.push(AppliedPeerPolicy {
                scope,
                name: r.qualified_name(),
                mode,
            });
        }
        let [_, _, workload] = selected;
        let ports = workload
            .map(|(_, pa)| port_modes(pa, default))
            .unwrap_or_default();
        PeerAuthenticator {
            default,
            ports,
            applied,
        }
    }

    /// The mode for connections to the workload's `port` (the application's port).
    pub fn mode(&self, port: u16) -> PeerMode {
        self.ports.get(&port).copied().unwrap_or(self.default)
    }

    /// The workload's mode on ports without a port-level setting.
    pub fn default_mode(&self) -> PeerMode {
        self.default
    }

    /// Port-level modes (workload ports), UNSET resolved.
    pub fn port_modes(&self) -> &BTreeMap<u16, PeerMode> {
        &self.ports
    }

    /// The policies that apply, one per scope at most, mesh first.
    pub fn applied(&self) -> &[AppliedPeerPolicy] {
        &self.applied
    }

    /// The most specific policy that sets the workload mode; `None` when no policy sets one
    /// (Istio's PERMISSIVE default).
    pub fn decided_by(&self) -> Option<&AppliedPeerPolicy> {
        self.applied.iter().rev().find(|p| p.mode.is_some())
    }

    /// A summary in the shape of `istioctl x describe`'s "Effective PeerAuthentication".
    pub fn describe(&self) -> String {
        let mut out = format!("Workload mTLS mode: {}", self.default);
        let decided = match self.decided_by() {
            Some(p) => format!(" (from {})", p.name),
            None => " (default)".to_string(),
        };
        out.push_str(&decided);
        if !self.ports.is_empty() {
            out.push_str("\nPort Level mTLS mode:");
            for (port, mode) in &self.ports {
                out.push_str(&format!("\n  {port}: {mode}"));
            }
        }
        if !self.applied.is_empty() {
            let names: Vec<&str> = self.applied.iter().map(|p| p.name.as_str()).collect();
            out.push_str(&format!(
                "\nApplied PeerAuthentication: {}",
                names.join(", ")
            ));
        }
        out
    }
}

fn scope_index(scope: PeerScope) -> usize {
    match scope {
        PeerScope::Mesh => 0,
        PeerScope::Namespace => 1,
        PeerScope::Workload => 2,
    }
}

/// The scope in which `pa` applies to the workload, or `None` when it does not apply.
fn scope_of(
    r: &Resource,
    pa: &PeerAuthentication,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    root_namespace: &str,
) -> Option<PeerScope> {
    let policy_ns = r.namespace();
    let selector = pa
        .selector
        .as_ref()
        .and_then(|s| s.match_labels.as_ref())
        .filter(|m| !m.is_empty());
    match selector {
        None if policy_ns == root_namespace => Some(PeerScope::Mesh),
        None if policy_ns == namespace => Some(PeerScope::Namespace),
        Some(wanted)
            if policy_ns == namespace
                && policy_ns != root_namespace
                && wanted.iter().all(|(k, v)| labels.get(k) == Some(v)) =>
        {
            Some(PeerScope::Workload)
        }
        _ => None,
    }
}

/// The workload policy's `portLevelMtls`, UNSET entries taking `workload_mode`.
fn port_modes(pa: &PeerAuthentication, workload_mode: PeerMode) -> BTreeMap<u16, PeerMode> {
    pa.port_level_mtls
        .iter()
        .filter_map(|(key, mtls)| {
            let port = key.parse::<u16>().ok().filter(|p| *p > 0)?;
            Some((
                port,
                PeerMode::from_mtls(Some(mtls)).unwrap_or(workload_mode),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "istio-system";

    fn resources(yaml: &str) -> Vec<Resource> {
        let loaded = weft_api::load_text("t.yaml", yaml);
        let errors: Vec<_> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.severity == weft_api::Severity::Error)
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        loaded.resources
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A PeerAuthentication document; `spec` is indented by two spaces.
    fn pa(name: &str, ns: &str, spec: &str) -> String {
        format!(
            "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n{spec}\n---\n"
        )
    }

    fn mode_spec(mode: &str) -> String {
        format!("  mtls:\n    mode: {mode}")
    }

    fn resolve(yaml: &str, ns: &str, l: &[(&str, &str)]) -> PeerAuthenticator {
        PeerAuthenticator::for_workload(&resources(yaml), ns, &labels(l), ROOT)
    }

    const APP: &[(&str, &str)] = &[("app", "api"), ("version", "v1")];

    #[test]
    fn default_is_permissive() {
        let p = resolve("", "default", APP);
        assert_eq!(p.mode(8080), PeerMode::Permissive);
        assert!(p.applied().is_empty());
        assert_eq!(p.decided_by(), None);
        assert_eq!(p.describe(), "Workload mTLS mode: PERMISSIVE (default)");
    }

    #[test]
    fn mesh_strict_applies_everywhere() {
        let yaml = pa("default", ROOT, &mode_spec("STRICT"));
        for ns in ["default", "prod", ROOT] {
            let p = resolve(&yaml, ns, APP);
            assert_eq!(p.mode(80), PeerMode::Strict, "{ns}");
            assert_eq!(p.applied()[0].scope, PeerScope::Mesh);
        }
    }

    #[test]
    fn namespace_overrides_mesh() {
        let yaml = format!(
            "{}{}",
            pa("default", ROOT, &mode_spec("STRICT")),
            pa("default", "legacy", &mode_spec("PERMISSIVE"))
        );
        assert_eq!(resolve(&yaml, "legacy", APP).mode(80), PeerMode::Permissive);
        assert_eq!(resolve(&yaml, "other", APP).mode(80), PeerMode::Strict);
        let p = resolve(&yaml, "legacy", APP);
        assert_eq!(
            p.decided_by().map(|d| d.name.as_str()),
            Some("legacy/default")
        );
    }

    #[test]
    fn workload_overrides_namespace() {
        let yaml = format!(
            "{}{}",
            pa("default", "prod", &mode_spec("STRICT")),
            pa(
                "api",
                "prod",
                "  selector:\n    matchLabels:\n      app: api\n  mtls:\n    mode: DISABLE"
            )
        );
        assert_eq!(resolve(&yaml, "prod", APP).mode(80), PeerMode::Disable);
        let other = resolve(&yaml, "prod", &[("app", "web")]);
        assert_eq!(other.mode(80), PeerMode::Strict);
        let scopes: Vec<PeerScope> = resolve(&yaml, "prod", APP)
            .applied()
            .iter()
            .map(|a| a.scope)
            .collect();
        assert_eq!(scopes, [PeerScope::Namespace, PeerScope::Workload]);
    }

    #[test]
    fn unset_inherits_from_parent() {
        let yaml = format!(
            "{}{}{}",
            pa("default", ROOT, &mode_spec("STRICT")),
            pa("default", "prod", &mode_spec("UNSET")),
            pa(
                "api",
                "prod",
                "  selector:\n    matchLabels:\n      app: api"
            )
        );
        let p = resolve(&yaml, "prod", APP);
        assert_eq!(p.mode(80), PeerMode::Strict);
        assert_eq!(p.applied().len(), 3);
        assert_eq!(
            p.decided_by().map(|d| d.name.as_str()),
            Some("istio-system/default")
        );
        // Nothing set anywhere: PERMISSIVE.
        let unset = pa("default", "prod", "  mtls: {}");
        assert_eq!(resolve(&unset, "prod", APP).mode(80), PeerMode::Permissive);
        // DISABLE at the namespace, workload UNSET: DISABLE.
        let disabled = format!(
            "{}{}",
            pa("default", "prod", &mode_spec("DISABLE")),
            pa(
                "api",
                "prod",
                "  selector:\n    matchLabels:\n      app: api\n  mtls:\n    mode: UNSET"
            )
        );
        assert_eq!(resolve(&disabled, "prod", APP).mode(80), PeerMode::Disable);
    }

    #[test]
    fn non_matching_selectors_and_other_namespaces_are_ignored() {
        let yaml = format!(
            "{}{}{}",
            pa(
                "web",
                "prod",
                "  selector:\n    matchLabels:\n      app: api\n      version: v2\n  mtls:\n    mode: STRICT"
            ),
            pa("default", "other", &mode_spec("STRICT")),
            pa(
                "api",
                "other",
                "  selector:\n    matchLabels:\n      app: api\n  mtls:\n    mode: STRICT"
            )
        );
        let p = resolve(&yaml, "prod", APP);
        assert_eq!(p.mode(80), PeerMode::Permissive);
        assert!(p.applied().is_empty());
    }

    #[test]
    fn empty_match_labels_is_namespace_wide() {
        let yaml = pa(
            "default",
            "prod",
            "  selector:\n    matchLabels: {}\n  mtls:\n    mode: STRICT",
        );
        let p = resolve(&yaml, "prod", &[]);
        assert_eq!(p.mode(80), PeerMode::Strict);
        assert_eq!(p.applied()[0].scope, PeerScope::Namespace);
    }

    #[test]
    fn root_namespace_selector_policies_are_ignored() {
        let yaml = pa(
            "istiod",
            ROOT,
            "  selector:\n    matchLabels:\n      app: api\n  mtls:\n    mode: STRICT",
        );
        for ns in ["prod", ROOT] {
            let p = resolve(&yaml, ns, APP);
            assert_eq!(p.mode(80), PeerMode::Permissive, "{ns}");
            assert!(p.applied().is_empty());
        }
    }

    #[test]
    fn first_policy_of_a_scope_wins() {
        let yaml = format!(
            "{}{}",
            pa("b-first", "prod", &mode_spec("DISABLE")),
            pa("a-second", "prod", &mode_spec("STRICT"))
        );
        let p = resolve(&yaml, "prod", APP);
        assert_eq!(p.mode(80), PeerMode::Disable);
        assert_eq!(p.applied().len(), 1);
        assert_eq!(p.applied()[0].name, "prod/b-first");
    }

    #[test]
    fn port_level_overrides_and_unset_inherits_workload_mode() {
        let yaml = format!(
            "{}{}",
            pa("default", ROOT, &mode_spec("PERMISSIVE")),
            pa(
                "api",
                "prod",
                "  selector:\n    matchLabels:\n      app: api\n  mtls:\n    mode: STRICT\n  portLevelMtls:\n    \"8080\":\n      mode: DISABLE\n    9090:\n      mode: PERMISSIVE\n    9443:\n      mode: UNSET"
            )
        );
        let p = resolve(&yaml, "prod", APP);
        assert_eq!(p.mode(8080), PeerMode::Disable);
        assert_eq!(p.mode(9090), PeerMode::Permissive);
        assert_eq!(p.mode(9443), PeerMode::Strict);
        assert_eq!(p.mode(80), PeerMode::Strict);
        assert_eq!(
            p.describe(),
            "Workload mTLS mode: STRICT (from prod/api)\nPort Level mTLS mode:\n  \
             8080: DISABLE\n  9090: PERMISSIVE\n  9443: STRICT\n\
             Applied PeerAuthentication: istio-system/default, prod/api"
        );
    }

    #[test]
    fn port_level_unset_inherits_through_an_unset_workload_mode() {
        let yaml = format!(
            "{}{}",
            pa("default", "prod", &mode_spec("DISABLE")),
            pa(
                "api",
                "prod",
                "  selector:\n    matchLabels:\n      app: api\n  portLevelMtls:\n    8080:\n      mode: STRICT\n    8081:\n      mode: UNSET"
            )
        );
        let p = resolve(&yaml, "prod", APP);
        assert_eq!(p.mode(8080), PeerMode::Strict);
        assert_eq!(p.mode(8081), PeerMode::Disable);
        assert_eq!(p.mode(80), PeerMode::Disable);
    }

    #[test]
    fn port_level_is_not_inherited_from_a_losing_workload_policy() {
        // Two workload policies: the first wins wholesale, the second's ports do not apply.
        let yaml = format!(
            "{}{}",
            pa(
                "first",
                "prod",
                "  selector:\n    matchLabels:\n      app: api\n  mtls:\n    mode: STRICT"
            ),
            pa(
                "second",
                "prod",
                "  selector:\n    matchLabels:\n      version: v1\n  portLevelMtls:\n    8080:\n      mode: DISABLE"
            )
        );
        let p = resolve(&yaml, "prod", APP);
        assert_eq!(p.mode(8080), PeerMode::Strict);
        assert!(p.port_modes().is_empty());
    }

    /// `examples/seeds`: each seed is a namespace-wide STRICT policy (Istio's "enable mTLS
    /// STRICT for a namespace"); the seed without a namespace lands in `default`.
    #[test]
    fn seed_examples() {
        let seeds = [
            (
                include_str!("../../../../examples/seeds/000-02-peerauthentication-default.yaml"),
                "default",
            ),
            (
                include_str!("../../../../examples/seeds/001-05-peerauthentication-default.yaml"),
                "default",
            ),
            (
                include_str!("../../../../examples/seeds/002-13-peerauthentication-default.yaml"),
                "production",
            ),
            (
                include_str!("../../../../examples/seeds/003-17-peerauthentication-default.yaml"),
                "default",
            ),
        ];
        for (yaml, ns) in seeds {
            let p = resolve(yaml, ns, &[("app", "reviews")]);
            assert_eq!(p.mode(9080), PeerMode::Strict, "{ns}");
            assert_eq!(p.default_mode(), PeerMode::Strict);
            assert_eq!(p.applied()[0].scope, PeerScope::Namespace);
            assert_eq!(p.applied()[0].name, format!("{ns}/default"));
            let elsewhere = resolve(yaml, "elsewhere", &[("app", "reviews")]);
            assert_eq!(elsewhere.mode(9080), PeerMode::Permissive, "{ns}");
        }
        // As the mesh-wide policy when applied in the root namespace.
        let p = PeerAuthenticator::for_workload(
            &resources(include_str!(
                "../../../../examples/seeds/003-17-peerauthentication-default.yaml"
            )),
            "prod",
            &labels(&[]),
            "default",
        );
        assert_eq!(p.mode(9080), PeerMode::Strict);
        assert_eq!(p.applied()[0].scope, PeerScope::Mesh);
    }
}
