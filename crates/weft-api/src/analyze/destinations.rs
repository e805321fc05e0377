//! Destinations that point nowhere: hosts no service defines (IST0101), subsets no
//! DestinationRule defines (IST0101), DestinationRules for unknown hosts (IST0174) and subsets
//! that select no known workload (IST0173).

use crate::diagnostic::{FieldPath, Severity};
use crate::host::qualify;
use crate::model::{Destination, VirtualService};
use crate::resource::Resource;

use super::catalog::Catalog;
use super::{CLUSTER_DOMAIN, Finding, codes};

pub(crate) fn check<'a>(catalog: &Catalog<'a>, out: &mut Vec<Finding<'a>>) {
    for (r, vs) in catalog.virtual_services() {
        for (path, dest) in destinations(vs) {
            check_destination(catalog, r, &path, dest, out);
        }
    }
    for (r, dr) in catalog.destination_rules() {
        let host = qualify(&dr.host, r.namespace(), CLUSTER_DOMAIN);
        let Some(service) = catalog.service(&host) else {
            out.push(Finding {
                resource: r,
                field: "spec.host".to_string(),
                code: codes::UNKNOWN_DR_HOST,
                severity: Severity::Warning,
                message: format!("The host {} defined in the DestinationRule does not match any services in the mesh.", dr.host),
            });
            continue;
        };
        if service.workloads.is_empty() {
            continue;
        }
        for (i, subset) in dr.subsets.iter().enumerate() {
            let selects = service
                .workloads
                .iter()
                .any(|w| subset.labels.iter().all(|(k, v)| w.get(k) == Some(v)));
            if !selects {
                out.push(Finding {
                    resource: r,
                    field: format!("spec.subsets[{i}].labels"),
                    code: codes::DR_SUBSET_NOT_SELECT_PODS,
                    severity: Severity::Warning,
                    message: format!(
                        "The Subset {} defined in the DestinationRule does not select any pods.",
                        subset.name
                    ),
                });
            }
        }
    }
}

fn check_destination<'a>(
    catalog: &Catalog<'a>,
    r: &'a Resource,
    path: &FieldPath,
    dest: &Destination,
    out: &mut Vec<Finding<'a>>,
) {
    let host = qualify(&dest.host, r.namespace(), CLUSTER_DOMAIN);
    if catalog.service(&host).is_none() {
        out.push(Finding {
            resource: r,
            field: path.field("host").to_string(),
            code: codes::REFERENCED_RESOURCE_NOT_FOUND,
            severity: Severity::Error,
            message: format!("Referenced host not found: {:?}", dest.host),
        });
    }
    let Some(subset) = dest.subset.as_deref().filter(|s| !s.is_empty()) else {
        return;
    };
    let defined = catalog
        .rules_for(&host)
        .iter()
        .any(|(_, dr)| dr.subsets.iter().any(|s| s.name == subset));
    if !defined {
        out.push(Finding {
            resource: r,
            field: path.field("subset").to_string(),
            code: codes::REFERENCED_RESOURCE_NOT_FOUND,
            severity: Severity::Error,
            message: format!(
                "Referenced host+subset in destinationrule not found: \"{}+{subset}\"",
                dest.host
            ),
        });
    }
}

/// Every destination a VirtualService sends traffic to, with its field path.
pub(crate) fn destinations(vs: &VirtualService) -> Vec<(FieldPath, &Destination)> {
    let spec = FieldPath::new("spec");
    let mut out = Vec::new();
    for (i, route) in vs.http.iter().enumerate() {
        let p = spec.field("http").index(i);
        for (j, d) in route.route.iter().enumerate() {
            if let Some(dest) = &d.destination {
                out.push((p.field("route").index(j).field("destination"), dest));
            }
        }
        if let Some(m) = &route.mirror {
            out.push((p.field("mirror"), m));
        }
        for (j, m) in route.mirrors.iter().enumerate() {
            if let Some(dest) = &m.destination {
                out.push((p.field("mirrors").index(j).field("destination"), dest));
            }
        }
    }
    for (kind, routes) in [
        ("tcp", vs.tcp.iter().map(|r| &r.route).collect::<Vec<_>>()),
        ("tls", vs.tls.iter().map(|r| &r.route).collect()),
    ] {
        for (i, route) in routes.into_iter().enumerate() {
            for (j, d) in route.iter().enumerate() {
                if let Some(dest) = &d.destination {
                    out.push((
                        spec.field(kind)
                            .index(i)
                            .field("route")
                            .index(j)
                            .field("destination"),
                        dest,
                    ));
                }
            }
        }
    }
    out
}
