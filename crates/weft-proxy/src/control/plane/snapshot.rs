//! A snapshot's resources, from the JSON array the control plane sends to a compiled
//! [`MeshConfig`]: every resource goes through the same loader and validation as a config file
//! (`weft validate`), and any error rejects the whole snapshot with all the messages.

use weft_api::mesh::{CompileOptions, MeshConfig, compile};
use weft_api::{Loaded, Resource, load_text};

use crate::control::ConfigError;

/// The name snapshot resources are reported under: `control-plane[INDEX]:LINE:COL: ...`.
const ORIGIN: &str = "control-plane";

/// Parses and validates `resources_json` (a JSON array of `{apiVersion, kind, metadata,
/// spec}` objects). Each resource is validated on its own, so positions in messages are within
/// that resource: `control-plane[3]:7:9: resource VirtualService/default/reviews: ...`.
pub(super) fn load_snapshot(resources_json: &str) -> Result<Vec<Resource>, ConfigError> {
    let documents: Vec<serde_json::Value> =
        serde_json::from_str(resources_json).map_err(|err| ConfigError {
            message: format!(
                "{ORIGIN}:{}:{}: resources_json is not a JSON array of resources: {err}",
                err.line(),
                err.column()
            ),
            file: Some(ORIGIN.to_string()),
            line: Some(err.line()),
        })?;
    let mut loaded = Loaded::default();
    for (index, document) in documents.iter().enumerate() {
        let file = format!("{ORIGIN}[{index}]");
        // Pretty JSON is YAML the loader reads, with a line per field for the positions.
        let text = serde_json::to_string_pretty(document).unwrap_or_default();
        loaded.merge(load_text(&file, &text));
    }
    if loaded.has_errors() {
        return Err(ConfigError::from_diagnostics(&loaded.diagnostics));
    }
    for warning in &loaded.diagnostics {
        tracing::debug!(%warning, "snapshot warning");
    }
    Ok(loaded.resources)
}

/// [`load_snapshot`], then compiles the resources as `version`.
pub(super) fn compile_snapshot(
    resources_json: &str,
    version: u64,
    options: &CompileOptions,
) -> Result<MeshConfig, ConfigError> {
    let resources = load_snapshot(resources_json)?;
    Ok(compile(&resources, version, options))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE_ENTRY: &str = r#"{
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "reviews", "namespace": "default"},
        "spec": {
            "hosts": ["reviews.default.svc.cluster.local"],
            "location": "MESH_INTERNAL",
            "resolution": "STATIC",
            "ports": [{"number": 9080, "name": "http", "protocol": "HTTP"}],
            "endpoints": [{"address": "127.0.0.1", "ports": {"http": 41000}}]
        }
    }"#;

    #[test]
    fn an_array_of_resources_compiles() {
        let json = format!("[{SERVICE_ENTRY}]");
        let mesh = compile_snapshot(&json, 7, &CompileOptions::default()).unwrap();
        assert_eq!(mesh.version, 7);
        assert_eq!(mesh.resources.len(), 1);
        assert!(mesh.virtual_host("reviews:9080").is_some());
        assert!(
            mesh.virtual_host("reviews.default.svc.cluster.local")
                .is_some()
        );
    }

    #[test]
    fn an_empty_array_is_an_empty_config() {
        let mesh = compile_snapshot("[]", 1, &CompileOptions::default()).unwrap();
        assert!(mesh.resources.is_empty());
        assert!(mesh.virtual_hosts.is_empty());
    }

    #[test]
    fn invalid_resources_reject_the_snapshot_with_every_message() {
        let bad_weight = r#"{
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "reviews"},
            "spec": {"hosts": ["reviews"], "http": [{"route": [
                {"destination": {"host": "reviews"}, "weight": -1}
            ]}]}
        }"#;
        let unknown_field = r#"{
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": "reviews"},
            "spec": {"host": "reviews", "trafficPolicyy": {}}
        }"#;
        let json = format!("[{SERVICE_ENTRY}, {bad_weight}, {unknown_field}]");
        let err = load_snapshot(&json).unwrap_err();
        assert!(err.message.contains("control-plane[1]:"), "{}", err.message);
        assert!(err.message.contains("weight"), "{}", err.message);
        assert!(err.message.contains("control-plane[2]:"), "{}", err.message);
        assert!(err.message.contains("trafficPolicyy"), "{}", err.message);
        assert!(!err.message.contains("control-plane[0]"), "{}", err.message);
        assert_eq!(err.file.as_deref(), Some("control-plane[1]"));
    }

    #[test]
    fn non_arrays_are_rejected() {
        for json in ["", "{}", "not json", r#"{"kind": "ServiceEntry"}"#, "[1]"] {
            let err = load_snapshot(json).unwrap_err();
            assert!(
                err.message.starts_with("control-plane"),
                "{json:?}: {}",
                err.message
            );
        }
    }
}
