//! Sending a request to a cluster: pick a healthy endpoint with the cluster's load balancer,
//! admit the request under the connection pool limits, send it over a pooled connection, and
//! feed the outcome to outlier detection.
//!
//! The path of one try, and the module that owns each step:
//! [`cluster`] (runtime state per cluster, kept across config swaps) → [`view`] (the cluster's
//! endpoints for the service port) → [`outlier`] (skip ejected endpoints, panic mode) →
//! [`balancer`] / [`hash`] (pick one) → [`limits`] (admit or `UO`) → [`pool`] (send over the
//! cluster's HTTP client) → back, with the response body holding the request's slot until it
//! ends.
//!
//! Raw TCP (tunnels) takes the same pick and limits, then dials the endpoint itself ([`tcp`]).
//!
//! Semantics follow Istio's DestinationRule as Envoy implements it; the module docs of each
//! step say where weft approximates.

mod balancer;
mod cluster;
mod error;
mod hash;
mod limits;
mod outlier;
mod pool;
mod security;
mod tcp;
mod view;

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::time::Instant;
use weft_api::mesh::{Cluster, ClusterKey, ConnectionPool};

pub use error::{BoxError, UpstreamError};
pub use limits::RetryPermit;
pub use tcp::{TcpConnection, UpstreamStream};

use crate::body::ProxyBody;
use crate::tls::IdentityStore;
use cluster::ClusterState;
use limits::TrackedBody;
use outlier::{Millis, TryOutcome};
use security::Sender;

/// Upstream runtime state for every cluster in use: balancers, pools, limits and outlier
/// detection. Share it as `Arc<Upstreams>`; every method takes `&self`.
pub struct Upstreams {
    epoch: Instant,
    clusters: ArcSwap<HashMap<ClusterKey, Arc<ClusterState>>>,
    /// The workload identity for mesh mTLS; without it auto mTLS stays plaintext.
    identity: Option<Arc<IdentityStore>>,
}

/// What the balancer needs to know about one try.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PickContext {
    /// The service port the request is for (selects each endpoint's target port).
    pub service_port: Option<u16>,
    /// The consistent-hash key's hash, for `ConsistentHash` clusters.
    pub hash: Option<u64>,
    /// Endpoints (`ip:port`) already tried by this request: skipped while any other is usable.
    pub exclude: Vec<String>,
}

/// An upstream's response (headers received; the body streams).
#[derive(Debug)]
pub struct Sent {
    pub response: http::Response<ProxyBody>,
    /// The endpoint that answered, `ip:port` (`upstream_host` in access logs).
    pub endpoint: String,
}

impl Default for Upstreams {
    fn default() -> Self {
        Upstreams::new()
    }
}

impl Upstreams {
    pub fn new() -> Upstreams {
        Upstreams {
            epoch: Instant::now(),
            clusters: ArcSwap::from_pointee(HashMap::new()),
            identity: None,
        }
    }

    /// Upstreams that dial mesh mTLS with `identity`.
    pub fn with_identity(identity: Option<Arc<IdentityStore>>) -> Upstreams {
        Upstreams {
            identity,
            ..Upstreams::new()
        }
    }

    /// Sends one try of `req` to an endpoint of `cluster`. The URI may be absolute or
    /// origin-form: its scheme and authority become the endpoint's, its path and query and the
    /// `Host` header stay. The outcome (status, connect failure or reset) is recorded for
    /// outlier detection. The response body holds the request's pool slot until it ends or is
    /// dropped.
    pub async fn send(
        &self,
        cluster: &Arc<Cluster>,
        mut req: http::Request<ProxyBody>,
        pick: &PickContext,
    ) -> Result<Sent, UpstreamError> {
        let Admitted {
            state,
            compiled,
            view,
            idx,
            guard,
        } = self.admit(cluster, pick, &cluster.pool)?;
        let cluster = &compiled.cluster;
        let Some(target) = view.targets.get(idx) else {
            return Err(UpstreamError::NoHealthyUpstream);
        };
        let endpoint = target.authority.clone();
        let upgrade = crate::listener::upgrade::requested(req.headers()).is_some();
        let sender = match compiled.tls.sender(
            cluster,
            &target.authority,
            &target.tls,
            self.identity.as_ref(),
            upgrade,
        ) {
            Ok(sender) => sender,
            Err(err) => {
                state.record(cluster, &view, idx, TryOutcome::LOCAL_FAILURE, self.now());
                return Err(UpstreamError::ConnectFailure {
                    endpoint,
                    source: Box::new(err),
                });
            }
        };
        let (http2, tls) = match &sender {
            Sender::Plain => (cluster.pool.http2, false),
            Sender::Tls(_) if target.tls.is_mesh() => {
                mark_original_protocol(&mut req);
                (!upgrade, true)
            }
            Sender::Tls(_) => (cluster.pool.http2, true),
        };
        if let Err(err) = pool::retarget(&mut req, &target.uri_authority, http2, tls) {
            return Err(UpstreamError::Reset {
                endpoint,
                source: Box::new(err),
            });
        }
        tracing::debug!(cluster = %cluster.key, %endpoint, tls, upgrade, "sending upstream");
        let result = match sender {
            Sender::Plain => compiled.client.request(req).await,
            Sender::Tls(client) => client.request(req).await,
        };
        match result {
            Ok(response) => {
                let outcome = TryOutcome::of_status(response.status());
                state.record(cluster, &view, idx, outcome, self.now());
                let response =
                    response.map(|body| crate::body::boxed(TrackedBody::new(body, guard)));
                Ok(Sent { response, endpoint })
            }
            Err(err) => {
                state.record(cluster, &view, idx, TryOutcome::LOCAL_FAILURE, self.now());
                let err = pool::classify(err, &endpoint);
                tracing::debug!(cluster = %cluster.key, %endpoint, flag = err.response_flag(), error = %err, "upstream try failed");
                Err(err)
            }
        }
    }

    /// Forgets the runtime state of clusters `keep` rejects (call after a config swap with
    /// "is this key in the new config"). State of kept clusters (connections, counters,
    /// ejections) carries over.
    pub fn retain(&self, keep: &dyn Fn(&ClusterKey) -> bool) {
        self.clusters.rcu(|clusters| {
            clusters
                .iter()
                .filter(|(key, _)| keep(key))
                .map(|(key, state)| (key.clone(), state.clone()))
                .collect::<HashMap<_, _>>()
        });
    }

    /// The endpoints (`ip:port`) of a cluster that outlier detection has ejected now, sorted.
    pub fn ejected(&self, key: &ClusterKey) -> Vec<String> {
        match self.clusters.load().get(key) {
            Some(state) => state.ejected(self.now()),
            None => Vec::new(),
        }
    }

    /// Requests of a cluster in flight: admitted and whose response body has not ended.
    pub fn active_requests(&self, key: &ClusterKey) -> u64 {
        self.clusters
            .load()
            .get(key)
            .map_or(0, |state| state.limits.active())
    }

    /// Admits one retry under the cluster's `http.maxRetries` (concurrent retries), or `None`
    /// when that many retries are in flight: Envoy then returns the last response instead of
    /// retrying. Hold the permit while the retry is in flight.
    pub fn retry_permit(&self, cluster: &Arc<Cluster>) -> Option<RetryPermit> {
        self.state(&cluster.key)
            .limits
            .admit_retry(cluster.pool.max_retries)
    }

    /// Picks an endpoint of `cluster` for `pick` and admits one request (or connection) to it
    /// under `limits`: `UH` when nothing can be picked, `UO` when the cluster is at its limit
    /// (Envoy's order: the host is chosen before the circuit breaker is checked).
    fn admit(
        &self,
        cluster: &Arc<Cluster>,
        pick: &PickContext,
        limits: &ConnectionPool,
    ) -> Result<Admitted, UpstreamError> {
        let state = self.state(&cluster.key);
        let compiled = state.compiled(cluster);
        let view = state.view(&compiled, pick.service_port);
        let idx = state
            .pick(
                &compiled.cluster,
                &view,
                &pick.exclude,
                pick.hash,
                self.now(),
            )
            .ok_or(UpstreamError::NoHealthyUpstream)?;
        let target = view
            .targets
            .get(idx)
            .ok_or(UpstreamError::NoHealthyUpstream)?;
        let guard = state
            .limits
            .admit(limits, &target.host)
            .ok_or(UpstreamError::Overflow)?;
        Ok(Admitted {
            state,
            compiled,
            view,
            idx,
            guard,
        })
    }

    /// The state of `key`, created on first use.
    fn state(&self, key: &ClusterKey) -> Arc<ClusterState> {
        if let Some(state) = self.clusters.load().get(key) {
            return state.clone();
        }
        let fresh = Arc::new(ClusterState::default());
        let mut chosen = fresh.clone();
        self.clusters.rcu(|clusters| {
            if let Some(existing) = clusters.get(key) {
                chosen = existing.clone();
                return clusters.clone();
            }
            chosen = fresh.clone();
            let mut next = HashMap::clone(clusters);
            next.insert(key.clone(), fresh.clone());
            Arc::new(next)
        });
        chosen
    }

    /// Milliseconds since this `Upstreams` was made, plus one (0 means "never" in the state).
    fn now(&self) -> Millis {
        u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1)
    }
}

#[cfg(test)]
mod tests;

/// Records the application's protocol for the server-side proxy (requests over mesh mTLS
/// travel as HTTP/2).
fn mark_original_protocol(req: &mut http::Request<ProxyBody>) {
    let protocol = match req.version() {
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2",
        _ => "HTTP/1.1",
    };
    req.headers_mut().insert(
        crate::tls::ORIGINAL_PROTOCOL,
        http::HeaderValue::from_static(protocol),
    );
}

/// An endpoint picked and admitted: everything a try needs to send and record its outcome.
struct Admitted {
    state: Arc<ClusterState>,
    compiled: Arc<cluster::Compiled>,
    view: Arc<view::View>,
    /// Index of the picked endpoint in `view.targets`.
    idx: usize,
    /// The request's (or connection's) slot under the cluster's limits.
    guard: limits::RequestGuard,
}
