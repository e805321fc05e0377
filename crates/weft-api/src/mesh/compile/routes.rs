//! A VirtualService's `http` routes, in order, as compiled [`HttpRoute`]s: names, delegates
//! spliced in place, hosts resolved relative to the namespace that wrote them, then matchers,
//! action and per-route policies. Also the implicit route of a service without a
//! VirtualService.

use crate::mesh::{
    ClusterKey, HeaderOps, HttpRoute, RetryPolicy, RouteAction, WeightedDestination,
};
use crate::model::{self, VirtualService};

use super::inputs::{Inputs, Named, visible};
use super::registry::Registry;
use super::{actions, cors, delegate, matchers, resilience};

/// Why a route is left out: it does not apply to this proxy (`sourceNamespace`, `gateways`) or
/// it cannot be compiled (only for input validation would have rejected).
#[derive(Debug)]
pub(super) struct Skip;

/// The compiled routes of one VirtualService.
pub(super) fn virtual_service_routes(
    inputs: &Inputs<'_>,
    registry: &Registry,
    vs: &Named<'_, VirtualService>,
) -> Vec<HttpRoute> {
    let namespace = vs.resource.namespace();
    let mut out = Vec::new();
    for (i, route) in vs.spec.http.iter().enumerate() {
        let route = resolve_hosts(route, registry, namespace, &inputs.opts.domain);
        let default_name = || format!("{}.{i}", vs.resource.name());
        match &route.delegate {
            Some(target) => out.extend(delegated_routes(
                inputs, registry, namespace, &route, target,
            )),
            None => {
                let name = route.name.clone().unwrap_or_else(default_name);
                out.extend(compile_route(&route, name, inputs).ok());
            }
        }
    }
    out
}

/// The routes of the delegate VirtualService a root route names, merged with the root route
/// (Istio's delegate semantics, see [`delegate`]). A missing or invisible delegate, or a
/// delegate's own `delegate` routes (one level only), yield nothing.
fn delegated_routes(
    inputs: &Inputs<'_>,
    registry: &Registry,
    root_namespace: &str,
    root: &model::HttpRoute,
    target: &model::Delegate,
) -> Vec<HttpRoute> {
    let namespace = target.namespace.as_deref().unwrap_or(root_namespace);
    let Some(name) = target.name.as_deref() else {
        return Vec::new();
    };
    let Some(dvs) = inputs.virtual_service(namespace, name) else {
        return Vec::new();
    };
    if !visible(&dvs.spec.export_to, namespace, root_namespace) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (j, leaf) in dvs.spec.http.iter().enumerate() {
        if leaf.delegate.is_some() {
            continue;
        }
        let leaf = resolve_hosts(leaf, registry, namespace, &inputs.opts.domain);
        let Some(merged) = delegate::merge_route(root, &leaf) else {
            continue;
        };
        let route_name = merged.name.clone().unwrap_or_else(|| format!("{name}.{j}"));
        out.extend(compile_route(&merged, route_name, inputs).ok());
    }
    out
}

/// A copy of `route` whose destination and mirror hosts are canonical (see
/// [`Registry::resolve`]), as Istio resolves short names before merging delegates.
fn resolve_hosts(
    route: &model::HttpRoute,
    registry: &Registry,
    namespace: &str,
    domain: &str,
) -> model::HttpRoute {
    let mut route = route.clone();
    let resolve =
        |d: &mut model::Destination| d.host = registry.resolve(&d.host, namespace, domain);
    route
        .route
        .iter_mut()
        .filter_map(|r| r.destination.as_mut())
        .for_each(resolve);
    route.mirror.iter_mut().for_each(resolve);
    route
        .mirrors
        .iter_mut()
        .filter_map(|m| m.destination.as_mut())
        .for_each(resolve);
    route
}

/// Compiles one route whose hosts are already canonical.
fn compile_route(
    route: &model::HttpRoute,
    name: String,
    inputs: &Inputs<'_>,
) -> Result<HttpRoute, Skip> {
    Ok(HttpRoute {
        name,
        matches: matchers::match_blocks(&route.matches, inputs.opts)?,
        action: actions::action(route)?,
        timeout: resilience::timeout(route),
        retry: resilience::retry_policy(route),
        fault: route.fault.as_ref().and_then(resilience::fault),
        headers: actions::header_ops(route.headers.as_ref()),
        mirrors: actions::mirrors(route),
        cors: route.cors_policy.as_ref().map(cors::cors),
    })
}

/// The implicit route of a service without a VirtualService: everything to the service, with
/// Istio's default retries and no timeout.
pub(super) fn default_route(host: &str) -> HttpRoute {
    HttpRoute {
        name: "default".to_string(),
        matches: Vec::new(),
        action: RouteAction::Forward {
            destinations: vec![WeightedDestination {
                cluster: ClusterKey {
                    host: host.to_string(),
                    subset: None,
                    port: None,
                },
                weight: 1,
                headers: HeaderOps::default(),
            }],
            rewrite: None,
        },
        timeout: None,
        retry: RetryPolicy::istio_default(),
        fault: None,
        headers: HeaderOps::default(),
        mirrors: Vec::new(),
        cors: None,
    }
}
