//! The resources one proxy compiles from: each kind's specs, filtered by `exportTo` visibility
//! from the proxy's namespace and sorted by namespace/name, so that every "first one wins" rule
//! downstream is deterministic.

use crate::model::{DestinationRule, ServiceEntry, Sidecar, VirtualService, WorkloadEntry};
use crate::resource::{Resource, Spec};

use super::CompileOptions;

/// A typed spec with the resource it came from (for its namespace, name and labels).
pub(super) struct Named<'a, T> {
    pub resource: &'a Resource,
    pub spec: &'a T,
}

/// Everything compilation reads, indexed by kind.
pub(super) struct Inputs<'a> {
    pub opts: &'a CompileOptions,
    /// Every VirtualService, visible or not: delegates are looked up from the root's namespace.
    pub virtual_services: Vec<Named<'a, VirtualService>>,
    /// DestinationRules visible to the proxy.
    pub destination_rules: Vec<Named<'a, DestinationRule>>,
    /// ServiceEntries visible to the proxy.
    pub service_entries: Vec<Named<'a, ServiceEntry>>,
    /// Standalone WorkloadEntries (endpoints only when a ServiceEntry selects them).
    pub workload_entries: Vec<Named<'a, WorkloadEntry>>,
    pub sidecars: Vec<Named<'a, Sidecar>>,
}

impl<'a> Inputs<'a> {
    pub fn new(resources: &'a [Resource], opts: &'a CompileOptions) -> Inputs<'a> {
        let ns = opts.namespace.as_str();
        let mut destination_rules = collect(resources, |s| match s {
            Spec::DestinationRule(dr) => Some(dr.as_ref()),
            _ => None,
        });
        destination_rules.retain(|d| visible(&d.spec.export_to, d.resource.namespace(), ns));
        let mut service_entries = collect(resources, |s| match s {
            Spec::ServiceEntry(se) => Some(se.as_ref()),
            _ => None,
        });
        service_entries.retain(|s| visible(&s.spec.export_to, s.resource.namespace(), ns));
        Inputs {
            opts,
            virtual_services: collect(resources, |s| match s {
                Spec::VirtualService(vs) => Some(vs.as_ref()),
                _ => None,
            }),
            destination_rules,
            service_entries,
            workload_entries: collect(resources, |s| match s {
                Spec::WorkloadEntry(we) => Some(we.as_ref()),
                _ => None,
            }),
            sidecars: collect(resources, |s| match s {
                Spec::Sidecar(sc) => Some(sc.as_ref()),
                _ => None,
            }),
        }
    }

    /// VirtualServices that route hosts for sidecars (`gateways` empty or naming `mesh`; not
    /// delegates, which have no hosts) and that the proxy's namespace can see, in
    /// namespace/name order.
    pub fn mesh_virtual_services(&self) -> impl Iterator<Item = &Named<'a, VirtualService>> {
        let ns = self.opts.namespace.as_str();
        self.virtual_services.iter().filter(move |vs| {
            let gateways = &vs.spec.gateways;
            !vs.spec.hosts.is_empty()
                && (gateways.is_empty() || gateways.iter().any(|g| g == "mesh"))
                && visible(&vs.spec.export_to, vs.resource.namespace(), ns)
        })
    }

    /// The VirtualService `namespace/name`, if it exists.
    pub fn virtual_service(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<&Named<'a, VirtualService>> {
        self.virtual_services
            .iter()
            .find(|vs| vs.resource.namespace() == namespace && vs.resource.name() == name)
    }
}

/// The specs of one kind, sorted by namespace then name (stable for duplicates).
fn collect<'a, T>(
    resources: &'a [Resource],
    pick: impl Fn(&'a Spec) -> Option<&'a T>,
) -> Vec<Named<'a, T>> {
    let mut out: Vec<Named<'a, T>> = resources
        .iter()
        .filter_map(|resource| pick(&resource.spec).map(|spec| Named { resource, spec }))
        .collect();
    out.sort_by(|a, b| {
        (a.resource.namespace(), a.resource.name())
            .cmp(&(b.resource.namespace(), b.resource.name()))
    });
    out
}

/// `exportTo`: empty or `*` is everywhere, `.` the resource's own namespace, `~` nowhere, any
/// other entry a namespace.
pub(super) fn visible(export_to: &[String], namespace: &str, from: &str) -> bool {
    export_to.is_empty()
        || export_to.iter().any(|e| match e.as_str() {
            "*" => true,
            "." => namespace == from,
            "~" => false,
            other => other == from,
        })
}
