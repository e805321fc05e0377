//! Route-table problems: several mesh-bound VirtualServices for one host (IST0109), routes
//! made unreachable by an earlier catch-all (IST0130) and matches repeated from an earlier
//! route (IST0131).

use std::collections::BTreeMap;

use crate::diagnostic::Severity;
use crate::host::qualify;
use crate::model::{HttpMatchRequest, HttpRoute, VirtualService};
use crate::resource::Resource;

use super::catalog::Catalog;
use super::{CLUSTER_DOMAIN, Finding, codes};

pub(crate) fn check<'a>(catalog: &Catalog<'a>, out: &mut Vec<Finding<'a>>) {
    conflicting_hosts(catalog, out);
    for (r, vs) in catalog.virtual_services() {
        unreachable_rules(r, vs, out);
    }
}

fn binds_mesh(vs: &VirtualService) -> bool {
    vs.gateways.is_empty() || vs.gateways.iter().any(|g| g == "mesh")
}

/// Gateway-bound VirtualServices for one host merge; mesh-bound ones conflict.
fn conflicting_hosts<'a>(catalog: &Catalog<'a>, out: &mut Vec<Finding<'a>>) {
    let mut by_host: BTreeMap<String, Vec<(&'a Resource, usize)>> = BTreeMap::new();
    for (r, vs) in catalog.virtual_services().filter(|(_, vs)| binds_mesh(vs)) {
        for (i, h) in vs.hosts.iter().enumerate() {
            by_host
                .entry(qualify(h, r.namespace(), CLUSTER_DOMAIN))
                .or_default()
                .push((r, i));
        }
    }
    for (host, owners) in by_host.into_iter().filter(|(_, o)| o.len() > 1) {
        let names: Vec<String> = owners.iter().map(|(r, _)| r.qualified_name()).collect();
        for (r, i) in owners {
            out.push(Finding {
                resource: r,
                field: format!("spec.hosts[{i}]"),
                code: codes::CONFLICTING_MESH_GATEWAY_VS_HOSTS,
                severity: Severity::Error,
                message: format!(
                    "The VirtualServices {} associated with mesh gateway define the same host {host} which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.",
                    names.join(",")
                ),
            });
        }
    }
}

/// A match block that matches every request (no condition, or only `uri` prefix `/`).
fn matches_everything(m: &HttpMatchRequest) -> bool {
    let bare = HttpMatchRequest {
        name: None,
        uri: None,
        ..m.clone()
    };
    let uri_all = m.uri.as_ref().is_none_or(|u| {
        u.prefix.as_deref() == Some("/")
            || u.prefix.as_deref() == Some("")
            || u.regex.as_deref() == Some(".*")
    });
    uri_all && bare == HttpMatchRequest::default()
}

fn is_catch_all(route: &HttpRoute) -> bool {
    route.matches.is_empty() || route.matches.iter().any(matches_everything)
}

fn rule_name(route: &HttpRoute, i: usize) -> String {
    match &route.name {
        Some(n) => format!("{n:?}"),
        None => format!("#{i}"),
    }
}

fn unreachable_rules<'a>(r: &'a Resource, vs: &VirtualService, out: &mut Vec<Finding<'a>>) {
    let mut catch_all: Option<usize> = None;
    for (i, route) in vs.http.iter().enumerate() {
        if let Some(earlier) = catch_all {
            out.push(Finding {
                resource: r,
                field: format!("spec.http[{i}]"),
                code: codes::VS_UNREACHABLE_RULE,
                severity: Severity::Warning,
                message: format!(
                    "VirtualService rule {} not used (rule {} before it matches every request).",
                    rule_name(route, i),
                    rule_name(&vs.http[earlier], earlier)
                ),
            });
            continue;
        }
        duplicate_matches(r, vs, i, out);
        if is_catch_all(route) {
            catch_all = Some(i);
        }
    }
}

/// Matches of route `i` that an earlier route already has, ignoring match names.
fn duplicate_matches<'a>(
    r: &'a Resource,
    vs: &VirtualService,
    i: usize,
    out: &mut Vec<Finding<'a>>,
) {
    let unnamed = |m: &HttpMatchRequest| HttpMatchRequest {
        name: None,
        ..m.clone()
    };
    let route = &vs.http[i];
    for (k, m) in route.matches.iter().enumerate() {
        let m = unnamed(m);
        let earlier = vs.http[..i]
            .iter()
            .enumerate()
            .find(|(_, prev)| prev.matches.iter().any(|p| unnamed(p) == m));
        if let Some((j, prev)) = earlier {
            out.push(Finding {
                resource: r,
                field: format!("spec.http[{i}].match[{k}]"),
                code: codes::VS_INEFFECTIVE_MATCH,
                severity: Severity::Info,
                message: format!(
                    "VirtualService rule {} match #{k} is not used (duplicate/overlapping match in rule {}).",
                    rule_name(route, i),
                    rule_name(prev, j)
                ),
            });
        }
    }
}
