//! The virtual host table: canonical hosts and their aliases → virtual hosts. A service host
//! `name.ns.svc.<domain>` answers to `name.ns.svc`, `name.ns` and, for a proxy in `ns`, the
//! bare `name` (Istio derives the same aliases from the proxy's DNS search domain); any other
//! host answers to itself only. `*.suffix` hosts are matched longest suffix first, `*` last.
//! The first virtual host to claim a host or alias keeps it. The TCP/TLS route table claims
//! hosts the same way, through its own [`HostIndex`].

use std::collections::BTreeMap;

use crate::host::host_matches;
use crate::mesh::{HttpRoute, VirtualHost};

use super::CompileOptions;

/// Hosts and their aliases → the index of the entry serving them. The first claim of a host
/// or alias wins. Shared by the virtual host table and the TCP/TLS route table.
pub(super) struct HostIndex {
    namespace: String,
    domain: String,
    exact: BTreeMap<String, usize>,
    wildcard: Vec<(String, usize)>,
}

/// Exact hosts and wildcard patterns in match order, each → an entry index.
pub(super) type Index = (BTreeMap<String, usize>, Vec<(String, usize)>);

impl HostIndex {
    pub fn new(opts: &CompileOptions) -> HostIndex {
        HostIndex {
            namespace: opts.namespace.to_ascii_lowercase(),
            domain: opts.domain.to_ascii_lowercase(),
            exact: BTreeMap::new(),
            wildcard: Vec::new(),
        }
    }

    /// Claims `canonical` (lowercase) and its aliases for entry `index`; `false` when an
    /// earlier entry already serves `canonical` (the caller then drops the entry).
    pub fn claim(&mut self, canonical: &str, index: usize) -> bool {
        if canonical.starts_with('*') {
            if self.wildcard.iter().any(|(p, _)| p == canonical) {
                return false;
            }
            self.wildcard.push((canonical.to_string(), index));
        } else {
            if self.exact.contains_key(canonical) {
                return false;
            }
            for alias in self.aliases(canonical) {
                self.exact.entry(alias).or_insert(index);
            }
        }
        true
    }

    /// The finished index, wildcard patterns sorted longest first (so `*` is last).
    pub fn finish(mut self) -> Index {
        self.wildcard
            .sort_by_key(|(pattern, _)| std::cmp::Reverse(pattern.len()));
        (self.exact, self.wildcard)
    }

    /// `canonical` and, for `name.ns.svc.<domain>`, its shorter forms.
    fn aliases(&self, canonical: &str) -> Vec<String> {
        let mut out = vec![canonical.to_string()];
        let suffix = format!(".svc.{}", self.domain);
        let Some((name, ns)) = canonical
            .strip_suffix(&suffix)
            .and_then(|rest| rest.split_once('.'))
        else {
            return out;
        };
        if name.is_empty() || ns.is_empty() || ns.contains('.') {
            return out;
        }
        out.push(format!("{name}.{ns}.svc"));
        out.push(format!("{name}.{ns}"));
        if ns == self.namespace {
            out.push(name.to_string());
        }
        out
    }
}

/// Virtual hosts under construction.
pub(super) struct HostTable {
    index: HostIndex,
    virtual_hosts: Vec<VirtualHost>,
}

/// What the table yields: exact hosts, wildcard patterns in match order, virtual hosts.
pub(super) type Table = (
    BTreeMap<String, usize>,
    Vec<(String, usize)>,
    Vec<VirtualHost>,
);

impl HostTable {
    pub fn new(opts: &CompileOptions) -> HostTable {
        HostTable {
            index: HostIndex::new(opts),
            virtual_hosts: Vec::new(),
        }
    }

    /// Adds a virtual host for `canonical` (lowercase) unless an earlier one already serves it.
    pub fn add(
        &mut self,
        canonical: String,
        virtual_service: Option<String>,
        routes: Vec<HttpRoute>,
    ) {
        if !self.index.claim(&canonical, self.virtual_hosts.len()) {
            return;
        }
        self.virtual_hosts.push(VirtualHost {
            name: canonical,
            virtual_service,
            routes,
        });
    }

    /// Whether a virtual host already serves `host` (as its canonical name or by a wildcard).
    pub fn covers(&self, host: &str) -> bool {
        self.virtual_hosts
            .iter()
            .any(|vh| vh.name == host || (vh.name.starts_with('*') && host_matches(&vh.name, host)))
    }

    /// The finished table, wildcard patterns sorted longest first (so `*` is last).
    pub fn finish(self) -> Table {
        let (exact, wildcard) = self.index.finish();
        (exact, wildcard, self.virtual_hosts)
    }
}
