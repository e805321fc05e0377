//! PeerAuthentication validation (Istio's `ValidatePeerAuthentication`): port-level mTLS only on
//! workload-scoped policies, with valid port keys, and a well-formed selector.
//!
//! Not checked here: `mtls.mode` values (the model's enum rejects unknown modes when decoding,
//! as Go's protojson does), and Istio's "port level mTLS, if defined, must have at least one
//! element", because the model cannot tell `portLevelMtls: {}` from a missing field.

use std::collections::BTreeMap;

use super::common;
use crate::diagnostic::{FieldPath, Findings};
use crate::model::PeerAuthentication;
use crate::resource::ObjectMeta;

/// Validates a PeerAuthentication (`_meta` is unused: Istio checks nothing name-dependent).
pub fn check_peer_authentication(
    pa: &PeerAuthentication,
    _meta: &ObjectMeta,
    path: &FieldPath,
    out: &mut Findings,
) {
    let port_level = path.field("portLevelMtls");
    let no_labels = pa
        .selector
        .as_ref()
        .and_then(|s| s.match_labels.as_ref())
        .is_none_or(BTreeMap::is_empty);
    if no_labels && !pa.port_level_mtls.is_empty() {
        out.error(
            &port_level,
            "mesh/namespace peer authentication cannot have port level mTLS",
        );
    }
    for key in pa.port_level_mtls.keys() {
        if let Err(e) = port_key(key) {
            out.error(port_level.key(key), e);
        }
    }
    if let Some(sel) = &pa.selector {
        common::check_workload_selector(out, &path.field("selector"), sel);
    }
}

/// A `portLevelMtls` key: Go decodes it as a `uint32` (`strconv.ParseUint(key, 10, 32)`, so
/// leading zeros are fine and signs are not), then Istio requires `1..=65535`.
fn port_key(key: &str) -> Result<(), String> {
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "invalid port {key:?}: port level mTLS keys must be port numbers"
        ));
    }
    match key.parse::<u32>() {
        Ok(port) if (1..=65535).contains(&port) => Ok(()),
        _ => Err("port must be in range 1..65535".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::diagnostic::{Finding, Severity};

    fn run(spec: serde_json::Value) -> Vec<Finding> {
        let pa: PeerAuthentication = serde_json::from_value(spec).unwrap();
        let meta: ObjectMeta =
            serde_json::from_value(json!({"name": "pa", "namespace": "ns"})).unwrap();
        let mut out = Findings::default();
        check_peer_authentication(&pa, &meta, &FieldPath::new("spec"), &mut out);
        out.into_vec()
    }

    fn errors(f: &[Finding]) -> Vec<(&str, &str)> {
        f.iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| (f.field.as_str(), f.message.as_str()))
            .collect()
    }

    #[test]
    fn accepts_strict_and_port_level_with_selector() {
        assert!(run(json!({"mtls": {"mode": "STRICT"}})).is_empty());
        assert!(run(json!({})).is_empty());
        let f = run(json!({
            "selector": {"matchLabels": {"app": "db"}},
            "mtls": {"mode": "STRICT"},
            "portLevelMtls": {"5432": {"mode": "PERMISSIVE"}, "08080": {"mode": "DISABLE"}, "65535": {}}
        }));
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn port_level_needs_a_selector_with_labels() {
        for spec in [
            json!({"portLevelMtls": {"8080": {"mode": "DISABLE"}}}),
            json!({"selector": {}, "portLevelMtls": {"8080": {"mode": "DISABLE"}}}),
        ] {
            let f = run(spec);
            assert_eq!(
                errors(&f),
                [(
                    "spec.portLevelMtls",
                    "mesh/namespace peer authentication cannot have port level mTLS"
                )]
            );
        }
    }

    #[test]
    fn port_keys_must_be_ports() {
        let f = run(json!({
            "selector": {"matchLabels": {"app": "db"}},
            "portLevelMtls": {"0": {}, "65536": {}, "http": {}, "-1": {}, "99999999999": {}}
        }));
        let e = errors(&f);
        assert!(e.contains(&("spec.portLevelMtls.0", "port must be in range 1..65535")));
        assert!(e.contains(&("spec.portLevelMtls.65536", "port must be in range 1..65535")));
        assert!(e.contains(&(
            "spec.portLevelMtls.99999999999",
            "port must be in range 1..65535"
        )));
        assert!(e.iter().any(|(p, m)| *p == "spec.portLevelMtls.http" && m.contains("must be port numbers")));
        assert!(e.iter().any(|(p, _)| *p == "spec.portLevelMtls.-1"));
        assert_eq!(e.len(), 5);
    }

    #[test]
    fn unknown_mode_is_rejected_when_decoding() {
        let bad = serde_json::from_value::<PeerAuthentication>(json!({
            "selector": {"matchLabels": {"app": "db"}},
            "portLevelMtls": {"8080": {"mode": "BOGUS"}}
        }));
        assert!(bad.is_err());
    }

    #[test]
    fn selector_checks_apply() {
        let f = run(json!({"selector": {}}));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(f[0].message, "workload selector specified without labels");
        let f = run(json!({"selector": {"matchLabels": {"app": "web*"}}}));
        assert!(
            errors(&f)
                .iter()
                .any(|(_, m)| m.contains("wildcard is not supported in selector"))
        );
    }
}
