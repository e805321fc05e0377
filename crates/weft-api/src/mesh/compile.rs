//! Compiles validated resources into a [`MeshConfig`]: the service registry (ServiceEntry and
//! WorkloadEntry), one virtual host per routed or registered host with its aliases, ordered HTTP
//! routes with compiled matchers and actions, the clusters those routes reach with their
//! DestinationRule policy, and the outbound policy from the Sidecar. See the module docs of
//! [`super`].
//!
//! The pipeline, one submodule per step:
//! - [`inputs`]: the resources this proxy sees (`exportTo`), sorted by namespace/name so that
//!   every "first one wins" rule is deterministic;
//! - [`registry`]: services and endpoints;
//! - [`routes`] (with [`delegate`], [`matchers`], [`actions`], [`resilience`], [`cors`]): each
//!   VirtualService's `http` routes;
//! - [`hosts`]: the virtual host table and its aliases;
//! - [`tcp`]: each VirtualService's `tls` and `tcp` routes, in their own host table;
//! - [`clusters`] (with [`rules`], [`traffic`] and [`tls`]): clusters and their traffic
//!   policy, client TLS included.
//!
//! Input must be valid: anything validation rejects is skipped here rather than guessed at (a
//! route whose regex does not compile is dropped, never widened), and nothing panics.

mod actions;
mod base64;
mod clusters;
mod cors;
mod delegate;
mod hosts;
mod inputs;
mod matchers;
mod registry;
mod resilience;
mod routes;
mod rules;
mod tcp;
mod tls;
mod traffic;

#[cfg(test)]
mod tests;

use super::{MeshConfig, OutboundPolicy};
use crate::model::OutboundTrafficMode;
use crate::resource::Resource;

use hosts::HostTable;
use inputs::Inputs;
use registry::Registry;

/// Who the proxy is and the mesh-wide settings compilation needs.
#[derive(Debug, Clone)]
pub struct CompileOptions {
    /// The proxy's own namespace.
    pub namespace: String,
    /// Istio's root namespace (`istio-system`): mesh-wide Sidecar and policies live there.
    pub root_namespace: String,
    /// DNS suffix for short names (`cluster.local`).
    pub domain: String,
    /// The mesh's SPIFFE trust domain (MeshConfig `trustDomain`, default `cluster.local`):
    /// endpoint identities are `spiffe://<trust_domain>/ns/<ns>/sa/<serviceAccount>`.
    pub trust_domain: String,
    /// Overrides the Sidecar resource's outbound policy (the `--outbound-policy` flag).
    pub outbound_policy: Option<OutboundPolicy>,
    /// Append `-shadow` to mirrored requests' Host (default true).
    pub shadow_suffix: bool,
    /// The proxy's workload labels: `sourceLabels` selectors are evaluated against them.
    pub labels: std::collections::BTreeMap<String, String>,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            namespace: crate::resource::DEFAULT_NAMESPACE.to_string(),
            root_namespace: "istio-system".to_string(),
            domain: "cluster.local".to_string(),
            trust_domain: "cluster.local".to_string(),
            outbound_policy: None,
            shadow_suffix: true,
            labels: Default::default(),
        }
    }
}

/// Builds the snapshot a proxy serves from. Input must be valid (see [`crate::validate`]).
pub fn compile(resources: &[Resource], version: u64, opts: &CompileOptions) -> MeshConfig {
    let inputs = Inputs::new(resources, opts);
    let registry = Registry::build(&inputs);
    let mut table = HostTable::new(opts);
    for vs in inputs.mesh_virtual_services() {
        let routes = routes::virtual_service_routes(&inputs, &registry, vs);
        if routes.is_empty() {
            // No HTTP route applies to this proxy (TCP/TLS only, or every route scoped to
            // other clients): the hosts keep their default routing, as in Istio.
            continue;
        }
        let name = vs.resource.qualified_name();
        for host in &vs.spec.hosts {
            let canonical = registry.resolve(host, vs.resource.namespace(), &opts.domain);
            table.add(canonical, Some(name.clone()), routes.clone());
        }
    }
    let unrouted: Vec<&str> = registry
        .services()
        .iter()
        .map(|s| s.host.as_str())
        .filter(|host| !table.covers(host))
        .collect();
    for host in unrouted {
        table.add(host.to_string(), None, vec![routes::default_route(host)]);
    }
    let (exact_hosts, wildcard_hosts, virtual_hosts) = table.finish();
    let ((tcp_exact_hosts, tcp_wildcard_hosts), tcp_routes) = tcp::build(&inputs, &registry);
    let clusters = clusters::build(&inputs, &registry, &virtual_hosts, &tcp_routes);
    MeshConfig {
        version,
        exact_hosts,
        wildcard_hosts,
        virtual_hosts,
        clusters,
        outbound_policy: opts
            .outbound_policy
            .unwrap_or_else(|| sidecar_outbound_policy(&inputs)),
        shadow_suffix: opts.shadow_suffix,
        tcp_exact_hosts,
        tcp_wildcard_hosts,
        tcp_routes,
        resources: resources.to_vec(),
    }
}

/// The outbound policy of the namespace's default Sidecar (no `workloadSelector`), else of the
/// root namespace's; Istio's mesh default `ALLOW_ANY` otherwise. The namespace Sidecar replaces
/// the root one entirely: if it has no `outboundTrafficPolicy`, the mesh default applies.
fn sidecar_outbound_policy(inputs: &Inputs<'_>) -> OutboundPolicy {
    let opts = inputs.opts;
    let default_sidecar = |ns: &str| {
        inputs
            .sidecars
            .iter()
            .find(|s| s.resource.namespace() == ns && s.spec.workload_selector.is_none())
    };
    let sidecar =
        default_sidecar(&opts.namespace).or_else(|| default_sidecar(&opts.root_namespace));
    let mode = sidecar
        .and_then(|s| s.spec.outbound_traffic_policy.as_ref())
        .and_then(|p| p.mode);
    match mode {
        Some(OutboundTrafficMode::RegistryOnly) => OutboundPolicy::RegistryOnly,
        Some(OutboundTrafficMode::AllowAny) | None => OutboundPolicy::AllowAny,
    }
}
