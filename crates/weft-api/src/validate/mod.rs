//! Validation: accepts and rejects exactly what Istio's validation webhook does, collecting
//! every finding with its field path instead of stopping at the first.
//!
//! One function per kind, over the serde model; shared checks live in [`common`]. Messages
//! reuse Istio's wording so operators can search for them.

pub mod common;
mod destination_rule;
mod gateway;
mod security;
mod service_entry;
mod sidecar;
#[cfg(test)]
mod test_support;
mod virtual_service;

use crate::diagnostic::{FieldPath, Findings};
use crate::resource::{ObjectMeta, Spec};

/// Validates one resource's metadata and spec, adding every finding to `out`.
pub fn validate_spec(spec: &Spec, meta: &ObjectMeta, out: &mut Findings) {
    check_metadata(meta, out);
    let path = FieldPath::new("spec");
    let ns = meta.namespace();
    match spec {
        Spec::VirtualService(s) => virtual_service::check(s, ns, &path, out),
        Spec::DestinationRule(s) => destination_rule::check(s, ns, &path, out),
        Spec::Gateway(s) => gateway::check(s, &path, out),
        Spec::ServiceEntry(s) => service_entry::check_service_entry(s, ns, &path, out),
        Spec::WorkloadEntry(s) => service_entry::check_workload_entry(s, &path, out),
        Spec::Sidecar(s) => sidecar::check(s, &path, out),
        Spec::PeerAuthentication(s) => security::check_peer_authentication(s, meta, &path, out),
        Spec::AuthorizationPolicy(s) => security::check_authorization_policy(s, meta, &path, out),
        Spec::RequestAuthentication(s) => security::check_request_authentication(s, &path, out),
    }
}

/// Names and namespaces must be DNS-1123 as Kubernetes requires.
fn check_metadata(meta: &ObjectMeta, out: &mut Findings) {
    let subdomain = |s: &str| {
        s.len() <= 253
            && s.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            })
    };
    if !meta.name.is_empty() && !subdomain(&meta.name) {
        out.error(
            "metadata.name",
            format!(
                "invalid name {:?}: must be a lowercase RFC 1123 subdomain (a-z, 0-9, '-', '.')",
                meta.name
            ),
        );
    }
    if let Some(ns) = &meta.namespace {
        let label_ok = ns.len() <= 63 && subdomain(ns) && !ns.contains('.');
        if !label_ok {
            out.error(
                "metadata.namespace",
                format!("invalid namespace {ns:?}: must be a lowercase RFC 1123 label"),
            );
        }
    }
    common::check_labels(out, &FieldPath::new("metadata.labels"), &meta.labels);
}
