//! Which DestinationRule applies to a host, as Istio looks it up: first in the proxy's
//! namespace, then in the service's namespace, then in the root namespace; within a namespace
//! an exact host beats the most specific wildcard. DestinationRules of one namespace for the
//! same host are merged (the first traffic policy set wins, subsets are added by name).
//! Rules with a `workloadSelector` target specific workloads and are not applied here.

use crate::model::{Subset, TrafficPolicy};

use super::inputs::Inputs;
use super::registry::Registry;

/// The effective DestinationRule for one host.
#[derive(Default)]
pub(super) struct Rule<'a> {
    pub traffic_policy: Option<&'a TrafficPolicy>,
    pub subsets: Vec<&'a Subset>,
}

impl<'a> Rule<'a> {
    pub fn subset(&self, name: &str) -> Option<&'a Subset> {
        self.subsets.iter().find(|s| s.name == name).copied()
    }
}

/// The rule for `host`, whose service lives in `service_namespace` (if known).
pub(super) fn find<'a>(
    inputs: &Inputs<'a>,
    registry: &Registry,
    host: &str,
    service_namespace: Option<&str>,
) -> Option<Rule<'a>> {
    let opts = inputs.opts;
    let order = [
        Some(opts.namespace.as_str()),
        service_namespace,
        Some(opts.root_namespace.as_str()),
    ];
    order
        .into_iter()
        .flatten()
        .find_map(|ns| find_in(inputs, registry, host, ns))
}

fn find_in<'a>(
    inputs: &Inputs<'a>,
    registry: &Registry,
    host: &str,
    namespace: &str,
) -> Option<Rule<'a>> {
    let domain = &inputs.opts.domain;
    let candidates: Vec<_> = inputs
        .destination_rules
        .iter()
        .filter(|d| d.resource.namespace() == namespace && d.spec.workload_selector.is_none())
        .map(|d| (registry.resolve(&d.spec.host, namespace, domain), d.spec))
        .filter(|(h, _)| h == host || (h.starts_with('*') && crate::host::host_matches(h, host)))
        .collect();
    let best = candidates
        .iter()
        .map(|(h, _)| h)
        .max_by_key(|h| (h.as_str() == host, h.len()))?;
    let mut rule = Rule::default();
    for (_, dr) in candidates.iter().filter(|(h, _)| h == best) {
        if rule.traffic_policy.is_none() {
            rule.traffic_policy = dr.traffic_policy.as_ref();
        }
        for subset in &dr.subsets {
            if rule.subset(&subset.name).is_none() {
                rule.subsets.push(subset);
            }
        }
    }
    Some(rule)
}
