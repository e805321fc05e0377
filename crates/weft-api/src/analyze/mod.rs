//! Cross-resource analysis, as `istioctl analyze` does: problems no single resource shows
//! (a subset no DestinationRule defines, a host nothing serves, conflicting VirtualServices,
//! shadowed routes, TLS settings that contradict PeerAuthentication, subsets that select no
//! workload). Codes reuse Istio's (`IST0101`, ...) where Istio has the check and are
//! `WEFT0xxx` otherwise.
//!
//! Pure and synchronous: resources in, findings out.

mod catalog;
mod destinations;
mod routes;
mod tls;

use crate::diagnostic::{Diagnostic, Severity};
use crate::load::Loaded;
use crate::resource::Resource;

pub use catalog::Catalog;

/// The trust domain's DNS suffix used to qualify short host names.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// Stable analyzer codes.
pub mod codes {
    /// A referenced host, subset or other resource does not exist.
    pub const REFERENCED_RESOURCE_NOT_FOUND: &str = "IST0101";
    /// A validation error (schema), reported by analyze too.
    pub const SCHEMA_VALIDATION_ERROR: &str = "IST0106";
    /// Several mesh-bound VirtualServices claim the same host.
    pub const CONFLICTING_MESH_GATEWAY_VS_HOSTS: &str = "IST0109";
    /// A route can never match because an earlier one catches everything it would.
    pub const VS_UNREACHABLE_RULE: &str = "IST0130";
    /// A match repeats an earlier one and never applies.
    pub const VS_INEFFECTIVE_MATCH: &str = "IST0131";
    /// A validation warning, reported by analyze too.
    pub const SCHEMA_WARNING: &str = "IST0133";
    /// A DestinationRule subset selects no known workload.
    pub const DR_SUBSET_NOT_SELECT_PODS: &str = "IST0173";
    /// A DestinationRule's host is not a known service.
    pub const UNKNOWN_DR_HOST: &str = "IST0174";
    /// A DestinationRule's client TLS mode contradicts the server's PeerAuthentication.
    pub const DR_TLS_CONFLICTS_WITH_PEER_AUTHN: &str = "WEFT0001";
}

/// Runs every analyzer over what was loaded. Validation diagnostics are included, coded
/// IST0106 (errors) and IST0133 (warnings), so `weft analyze` is a superset of `weft validate`.
pub fn analyze(loaded: &Loaded) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = loaded
        .diagnostics
        .iter()
        .cloned()
        .map(|mut d| {
            let code = match d.severity {
                Severity::Error => codes::SCHEMA_VALIDATION_ERROR,
                _ => codes::SCHEMA_WARNING,
            };
            d.code = Some(code.to_string());
            d
        })
        .collect();
    let catalog = Catalog::build(loaded);
    let mut findings = Vec::new();
    destinations::check(&catalog, &mut findings);
    routes::check(&catalog, &mut findings);
    tls::check(&catalog, &mut findings);
    out.extend(findings.into_iter().map(Finding::into_diagnostic));
    out.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    out
}

/// One analyzer finding about a field of a resource.
pub(crate) struct Finding<'a> {
    pub resource: &'a Resource,
    pub field: String,
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
}

impl Finding<'_> {
    fn into_diagnostic(self) -> Diagnostic {
        let pos = self.resource.origin.locate(&self.field);
        Diagnostic {
            file: self.resource.origin.file.clone(),
            line: pos.line,
            column: pos.column,
            kind: self.resource.kind.to_string(),
            namespace: self.resource.namespace().to_string(),
            name: self.resource.name().to_string(),
            field: self.field,
            message: self.message,
            severity: self.severity,
            code: Some(self.code.to_string()),
        }
    }
}

#[cfg(test)]
mod tests;
