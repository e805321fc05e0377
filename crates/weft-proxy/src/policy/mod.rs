//! Policy on the inbound path: request path normalization, peer authentication (Istio's
//! PeerAuthentication), request authentication (RequestAuthentication, JWT) and
//! authorization (AuthorizationPolicy).

pub mod authorization;
pub mod jwt;
pub mod normalize;
pub mod peer;

use std::collections::BTreeMap;

use weft_api::model::WorkloadSelector;

/// Whether a policy's `selector` picks a workload with `labels`: no selector, or every
/// `matchLabels` entry present with the same value.
pub(crate) fn selects(
    selector: Option<&WorkloadSelector>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector
        .and_then(|s| s.match_labels.as_ref())
        .is_none_or(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)))
}
