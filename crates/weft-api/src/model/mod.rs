//! Istio resource specs as serde types that mirror the YAML field for field (camelCase, every
//! field optional, as the protobuf JSON mapping has it).
//!
//! These types accept any shape-correct input; what Istio rejects is decided by
//! [`crate::validate`]. Unknown fields are reported by the loader, not silently dropped.
//! Durations and regexes stay text here and are parsed by validation.

mod destination_rule;
mod gateway;
mod security;
mod service_entry;
mod sidecar;
mod virtual_service;

pub use destination_rule::*;
pub use gateway::*;
pub use security::*;
pub use service_entry::*;
pub use sidecar::*;
pub use virtual_service::*;

use serde::{Deserialize, Serialize};

/// A duration as written (`5s`, `250ms`), in Go's `time.ParseDuration` grammar.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DurationText(pub String);

impl DurationText {
    pub fn parse(&self) -> Result<std::time::Duration, crate::duration::DurationError> {
        crate::duration::parse_duration(&self.0)
    }
}

/// A percentage in `0..=100`, `{value: 12.5}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Percent {
    pub value: f64,
}

/// `{number: 9080}`: which port of a service to use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortSelector {
    pub number: i64,
}

/// Workload selector used by the security kinds: `{matchLabels: {...}}`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WorkloadSelector {
    pub match_labels: Option<std::collections::BTreeMap<String, String>>,
}

/// Workload selector used by the networking kinds: `{labels: {...}}`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LabelSelector {
    pub labels: Option<std::collections::BTreeMap<String, String>>,
}

/// A reference to a policy target (Gateway API style).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PolicyTargetReference {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
}
