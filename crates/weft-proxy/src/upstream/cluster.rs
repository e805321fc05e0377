//! One cluster's runtime state, kept across config versions while its key stays: the
//! round-robin position, the pool limits, ejections, endpoint state, and the client and
//! endpoint views built from the latest config seen for it.
//!
//! A config swap hands `send` a new `Arc<Cluster>`; the derived state is rebuilt only when the
//! cluster's endpoints or policies changed (the client only when `connectionPool` changed), so
//! connections, counters and ejections survive swaps.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use arc_swap::{ArcSwap, ArcSwapOption};
use weft_api::mesh::{Cluster, LbPolicy};

use super::balancer;
use super::limits::Limits;
use super::outlier::{self, Ejections, Millis, TryOutcome};
use super::pool::{self, HttpClient};
use super::security::TlsClients;
use super::view::{HostRegistry, View};

/// Views kept per cluster version; more service ports than this start the list afresh.
const MAX_VIEWS: usize = 8;

/// What is built from one version of a cluster's config.
pub(super) struct Compiled {
    pub(super) cluster: Arc<Cluster>,
    pub(super) client: HttpClient,
    /// TLS clients per endpoint (mesh mTLS and origination).
    pub(super) tls: Arc<TlsClients>,
    /// One view per service port asked for, built on first use.
    views: ArcSwap<Vec<(Option<u16>, Arc<View>)>>,
}

/// The runtime state of one cluster.
#[derive(Default)]
pub(super) struct ClusterState {
    rr: AtomicUsize,
    pub(super) limits: Arc<Limits>,
    ejections: Ejections,
    hosts: HostRegistry,
    compiled: ArcSwapOption<Compiled>,
}

/// Whether two versions of a cluster balance, pool and detect outliers alike.
fn same_config(a: &Cluster, b: &Cluster) -> bool {
    a.endpoints == b.endpoints
        && a.lb == b.lb
        && a.pool == b.pool
        && a.outlier == b.outlier
        && a.tls == b.tls
        && a.subject_alt_names == b.subject_alt_names
}

impl ClusterState {
    /// The state built from `cluster`, rebuilt when its config differs from the last one seen.
    pub(super) fn compiled(&self, cluster: &Arc<Cluster>) -> Arc<Compiled> {
        let current = self.compiled.load_full();
        if let Some(current) = &current {
            if Arc::ptr_eq(&current.cluster, cluster) {
                return current.clone();
            }
            if same_config(&current.cluster, cluster) {
                // Adopt the new Arc so later requests take the pointer check again.
                let next = Arc::new(Compiled {
                    cluster: cluster.clone(),
                    client: current.client.clone(),
                    tls: current.tls.clone(),
                    views: ArcSwap::new(current.views.load_full()),
                });
                self.compiled.store(Some(next.clone()));
                return next;
            }
        }
        let client = match &current {
            Some(c) if c.cluster.pool == cluster.pool => c.client.clone(),
            _ => pool::client(&cluster.pool),
        };
        let tls = match &current {
            Some(c) if c.cluster.pool == cluster.pool && c.cluster.tls == cluster.tls => {
                c.tls.clone()
            }
            _ => Arc::default(),
        };
        let next = Arc::new(Compiled {
            cluster: cluster.clone(),
            client,
            tls,
            views: ArcSwap::from_pointee(Vec::new()),
        });
        self.compiled.store(Some(next.clone()));
        next
    }

    /// The endpoints of `compiled` for `service_port`.
    pub(super) fn view(&self, compiled: &Compiled, service_port: Option<u16>) -> Arc<View> {
        if let Some((_, view)) = compiled
            .views
            .load()
            .iter()
            .find(|(p, _)| *p == service_port)
        {
            return view.clone();
        }
        let view = Arc::new(View::build(&compiled.cluster, service_port, &self.hosts));
        compiled.views.rcu(|views| {
            let mut views = if views.len() >= MAX_VIEWS {
                Vec::new()
            } else {
                (**views).clone()
            };
            if !views.iter().any(|(p, _)| *p == service_port) {
                views.push((service_port, view.clone()));
            }
            views
        });
        view
    }

    /// Picks a target of `view` for a request: outlier ejections (unless in panic mode), then
    /// retry exclusions (unless they exclude everything left), then the balancer.
    ///
    /// Consistent-hash clusters ignore exclusions: Istio leaves out Envoy's
    /// `retry_previous_hosts` predicate for them, so a retry goes to the key's endpoint again.
    pub(super) fn pick(
        &self,
        cluster: &Cluster,
        view: &View,
        exclude: &[String],
        hash: Option<u64>,
        now: Millis,
    ) -> Option<usize> {
        let exclude = match cluster.lb {
            LbPolicy::ConsistentHash(_) => &[],
            _ => exclude,
        };
        let total = view.targets.len();
        if total == 0 {
            return None;
        }
        let mut usable: Option<Vec<bool>> = None;
        let detecting = cluster
            .outlier
            .as_ref()
            .filter(|_| self.ejections.maybe_active(now));
        if let Some(policy) = detecting {
            let (mask, healthy) = outlier::healthy_mask(&view.targets, now);
            if healthy < total && !outlier::in_panic(policy.min_health_percent, healthy, total) {
                if healthy == 0 {
                    return None;
                }
                usable = Some(mask);
            }
        }
        if !exclude.is_empty() {
            let mut mask = usable.clone().unwrap_or_else(|| vec![true; total]);
            let mut excluded = false;
            for (ok, target) in mask.iter_mut().zip(&view.targets) {
                if *ok && exclude.contains(&target.authority) {
                    *ok = false;
                    excluded = true;
                }
            }
            if excluded && mask.contains(&true) {
                usable = Some(mask);
            }
        }
        balancer::choose(&cluster.lb, view, &self.rr, usable.as_deref(), hash)
    }

    /// Counts a try's outcome for outlier detection and ejects the endpoint when it should be.
    pub(super) fn record(
        &self,
        cluster: &Cluster,
        view: &View,
        idx: usize,
        outcome: TryOutcome,
        now: Millis,
    ) {
        let Some(policy) = &cluster.outlier else {
            return;
        };
        let Some(target) = view.targets.get(idx) else {
            return;
        };
        if target.host.outlier.count(policy, outcome, now) {
            self.ejections.try_eject(policy, &view.targets, idx, now);
        }
    }

    /// The endpoints of the current config that are ejected at `now`.
    pub(super) fn ejected(&self, now: Millis) -> Vec<String> {
        let Some(compiled) = self.compiled.load_full() else {
            return Vec::new();
        };
        let mut ejected: Vec<String> = compiled
            .views
            .load()
            .iter()
            .flat_map(|(_, view)| view.targets.iter())
            .filter(|t| t.host.outlier.is_ejected(now))
            .map(|t| t.authority.clone())
            .collect();
        ejected.sort();
        ejected.dedup();
        ejected
    }
}
