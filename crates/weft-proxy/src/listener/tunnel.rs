//! CONNECT tunnels on the outbound listener: `CONNECT host:port` (what HTTP_PROXY clients send
//! for `https://` and other non-HTTP traffic) becomes an opaque TCP connection routed by the
//! host's `tcp`/`tls` routes; bytes are copied both ways until both sides close, then one
//! access-log line is written.
//!
//! Routing, first that applies:
//! 1. a `tls` route of the host for the port whose `sniHosts` match the SNI of the client's
//!    TLS ClientHello, read from the tunnel's first bytes (only when such routes exist, so the
//!    tunnel is answered `200` before the upstream is chosen);
//! 2. the first matching `tcp` route of the host for the port;
//! 3. a known service (the host has a virtual host): its default cluster;
//! 4. an unknown host: `ALLOW_ANY` connects to `host:port` itself (PassthroughCluster),
//!    `REGISTRY_ONLY` answers `502` (BlackHoleCluster).
//!
//! Otherwise the upstream is connected first and failures are answered like HTTP ones (`503`
//! with `UF`, `UO`, `UH`, or `NC` for a missing subset), through the usual local-reply path.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::{Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt as _;
use weft_api::mesh::{
    Cluster, ClusterKey, ConnectionFacts, MeshConfig, OutboundPolicy, WeightedDestination,
};

use super::http::{ConnInfo, ProxyState};
use super::sni::{self, Peek};
use super::splice::{Counted, splice};
use crate::body::{ProxyBody, empty};
use crate::route::forward::Outcome;
use crate::route::pick_destination;
use crate::telemetry::{RequestRecord, ResponseFlag, ResponseFlags, TunnelOutcome};
use crate::upstream::{PickContext, TcpConnection, UpstreamError};

/// How long a tunnel whose host has `tls` routes waits for the client's ClientHello before
/// routing without SNI (server-speaks-first protocols send nothing).
const SNI_PEEK_TIMEOUT: Duration = Duration::from_secs(5);

/// Handles one CONNECT request; never fails (failures are responses).
pub async fn connect(
    state: Arc<ProxyState>,
    conn: ConnInfo,
    mut req: Request<Incoming>,
) -> Response<ProxyBody> {
    let started = Instant::now();
    let record = RequestRecord::begin(SystemTime::now(), &req, conn.peer, conn.local);
    let Some((host, port)) = connect_target(req.uri()) else {
        let o = Outcome::local(
            StatusCode::BAD_REQUEST,
            "CONNECT needs host:port",
            Some(ResponseFlag::DownstreamProtocolError),
            "downstream_protocol_error",
        );
        return state
            .telemetry
            .finish(record, o, started, &state.workload, None);
    };
    let tunnel = Tunnel {
        mesh: state.config.load(),
        facts: ConnectionFacts {
            port,
            destination_ip: host.parse().ok(),
            source_ip: Some(conn.peer.ip()),
        },
        state,
        record,
        started,
        host,
    };
    let upgrade = hyper::upgrade::on(&mut req);
    if tunnel.wants_sni() {
        tokio::spawn(tunnel.run_with_sni(upgrade));
        return tunnel_established();
    }
    let target = match tunnel.route(None) {
        Route::Connect(target) => target,
        Route::Refuse(outcome) => return tunnel.refuse(*outcome),
    };
    match tunnel.dial(&target).await {
        Ok(upstream) => {
            tokio::spawn(tunnel.run(upgrade, target, upstream));
            tunnel_established()
        }
        Err(err) => {
            let failed = connect_failure(&err, tunnel.log_key(&target));
            tunnel.refuse(failed)
        }
    }
}

/// `host` (lowercase, IPv6 without brackets) and port of an authority-form CONNECT target.
fn connect_target(uri: &Uri) -> Option<(String, u16)> {
    let authority = uri.authority()?;
    let port = authority.port_u16().filter(|p| *p != 0)?;
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (!host.is_empty()).then(|| (host.to_ascii_lowercase(), port))
}

/// `200` with no body: the connection becomes the tunnel once hyper has sent it.
fn tunnel_established() -> Response<ProxyBody> {
    Response::new(empty())
}

/// A cluster to connect to, and the route that chose it.
struct Target {
    cluster: Arc<Cluster>,
    route_name: Option<String>,
}

/// The routing decision for a tunnel.
enum Route {
    Connect(Target),
    /// A local reply instead (502 BlackHoleCluster, 503 NC).
    Refuse(Box<Outcome>),
}

/// One CONNECT being served.
struct Tunnel {
    state: Arc<ProxyState>,
    mesh: Arc<MeshConfig>,
    record: RequestRecord,
    started: Instant,
    /// The CONNECT host, lowercase.
    host: String,
    facts: ConnectionFacts,
}

impl Tunnel {
    /// Whether the host has `tls` routes for the port, so the ClientHello decides the route.
    fn wants_sni(&self) -> bool {
        self.mesh
            .tcp_route(&self.host, self.facts.port)
            .is_some_and(|set| set.has_tls_for_port(self.facts.port))
    }

    /// Routes the tunnel, by `sni` when the client sent one (see the module docs).
    fn route(&self, sni: Option<&str>) -> Route {
        let (host, port, facts) = (self.host.as_str(), self.facts.port, &self.facts);
        let set = self.mesh.tcp_route(host, port);
        if let Some(r) = sni.and_then(|sni| set?.tls_route(sni, facts)) {
            return self.to_cluster(&r.name, &r.destinations);
        }
        if let Some(r) = set.and_then(|set| set.tcp_route(facts)) {
            return self.to_cluster(&r.name, &r.destinations);
        }
        self.default_route()
    }

    /// A route's weighted destination, if its cluster (and subset) exists.
    fn to_cluster(&self, route: &str, destinations: &[WeightedDestination]) -> Route {
        let Some(dest) = pick_destination(destinations) else {
            return Route::Refuse(Box::new(no_cluster(None)));
        };
        match self.mesh.clusters.get(&dest.cluster) {
            Some(cluster) if !cluster.undefined_subset => Route::Connect(Target {
                cluster: cluster.clone(),
                route_name: Some(route.to_string()),
            }),
            _ => Route::Refuse(Box::new(no_cluster(Some(dest.cluster.clone())))),
        }
    }

    /// No TCP route applies: a known service's default cluster, else the outbound policy.
    fn default_route(&self) -> Route {
        if let Some(vhost) = self.mesh.virtual_host(&self.host) {
            let key = ClusterKey {
                host: vhost.name.clone(),
                subset: None,
                port: None,
            };
            if let Some(cluster) = self.mesh.clusters.get(&key) {
                return Route::Connect(Target {
                    cluster: cluster.clone(),
                    route_name: None,
                });
            }
        }
        match self.mesh.outbound_policy {
            OutboundPolicy::RegistryOnly => Route::Refuse(Box::new(blackhole())),
            OutboundPolicy::AllowAny => Route::Connect(Target {
                cluster: Arc::new(Cluster::passthrough(&self.host, self.facts.port)),
                route_name: None,
            }),
        }
    }

    /// Connects to an endpoint of the target's cluster, on the destination's port if it names
    /// one, else the CONNECT port.
    async fn dial(&self, target: &Target) -> Result<TcpConnection, UpstreamError> {
        let pick = PickContext {
            service_port: target.cluster.key.port.or(Some(self.facts.port)),
            hash: None,
            exclude: Vec::new(),
        };
        self.state
            .upstreams
            .connect_tcp(&target.cluster, &pick)
            .await
    }

    /// The cluster name to log: Istio names service clusters with their port.
    fn log_key(&self, target: &Target) -> ClusterKey {
        let mut key = target.cluster.key.clone();
        key.port = key.port.or(Some(self.facts.port));
        key
    }

    /// Answers the CONNECT with a local reply (logged when its body ends).
    fn refuse(self, outcome: Outcome) -> Response<ProxyBody> {
        let vhost = self.mesh.virtual_host(&self.host).map(|v| v.name.clone());
        self.state.telemetry.finish(
            self.record,
            outcome,
            self.started,
            &self.state.workload,
            vhost,
        )
    }

    /// The tunnel of a routed, connected CONNECT: copies until both sides close.
    async fn run(self, upgrade: OnUpgrade, target: Target, upstream: TcpConnection) {
        let Some(mut downstream) = self.upgraded(upgrade, Some(&target)).await else {
            return;
        };
        let outcome = self.splice(&mut downstream, &[], &target, upstream).await;
        self.close(outcome);
    }

    /// The tunnel of a host with `tls` routes: reads the ClientHello, routes by its SNI, then
    /// connects and copies (the bytes read first go upstream first).
    async fn run_with_sni(self, upgrade: OnUpgrade) {
        let Some(mut downstream) = self.upgraded(upgrade, None).await else {
            return;
        };
        let (hello, sni) = read_client_hello(&mut downstream).await;
        let mut outcome = match self.route(sni.as_deref()) {
            Route::Refuse(refused) => self.refused_after_200(&downstream, *refused),
            Route::Connect(target) => match self.dial(&target).await {
                Ok(upstream) => {
                    self.splice(&mut downstream, &hello, &target, upstream)
                        .await
                }
                Err(err) => {
                    let failed = connect_failure(&err, self.log_key(&target));
                    self.refused_after_200(&downstream, failed)
                }
            },
        };
        outcome.requested_server_name = sni;
        self.close(outcome);
    }

    /// The client's side of the tunnel once hyper has sent the `200`, or `None` (logged) when
    /// the client went away first.
    async fn upgraded(
        &self,
        upgrade: OnUpgrade,
        target: Option<&Target>,
    ) -> Option<Counted<TokioIo<hyper::upgrade::Upgraded>>> {
        match upgrade.await {
            Ok(io) => Some(Counted::new(TokioIo::new(io))),
            Err(err) => {
                tracing::debug!(peer = %self.record.downstream_remote_address, %err, "tunnel upgrade failed");
                let outcome = TunnelOutcome {
                    flags: ResponseFlag::DownstreamConnectionTermination.into(),
                    details: "downstream_remote_disconnect".into(),
                    cluster: target.map(|t| self.log_key(t)),
                    route_name: target.and_then(|t| t.route_name.clone()),
                    ..TunnelOutcome::default()
                };
                self.close(outcome);
                None
            }
        }
    }

    /// Copies between the client and `upstream` (after sending `first` upstream).
    async fn splice(
        &self,
        downstream: &mut Counted<TokioIo<hyper::upgrade::Upgraded>>,
        first: &[u8],
        target: &Target,
        upstream: TcpConnection,
    ) -> TunnelOutcome {
        let TcpConnection {
            mut stream,
            endpoint,
            ..
        } = upstream;
        let flags = splice(downstream, first, &mut stream).await;
        TunnelOutcome {
            flags,
            details: "via_upstream".into(),
            cluster: Some(self.log_key(target)),
            upstream_host: Some(endpoint),
            route_name: target.route_name.clone(),
            bytes_received: downstream.received(),
            bytes_sent: downstream.sent(),
            ..TunnelOutcome::default()
        }
    }

    /// A tunnel already answered `200` that cannot go anywhere: closed at once, logged with the
    /// local reply's flags, cluster and details.
    fn refused_after_200<T>(&self, downstream: &Counted<T>, refused: Outcome) -> TunnelOutcome {
        tracing::debug!(peer = %self.record.downstream_remote_address, details = %refused.details, "tunnel closed without an upstream");
        TunnelOutcome {
            flags: refused.flags,
            details: refused.details,
            cluster: refused.cluster,
            upstream_host: refused.upstream_host,
            bytes_received: downstream.received(),
            ..TunnelOutcome::default()
        }
    }

    /// Writes the tunnel's access-log line.
    fn close(&self, mut outcome: TunnelOutcome) {
        outcome.response_code = StatusCode::OK.as_u16();
        outcome.duration = self.started.elapsed();
        self.state.telemetry.tunnel_closed(&self.record, &outcome);
    }
}

/// Reads from the client until its first bytes are a whole ClientHello, are not TLS, exceed
/// [`sni::MAX_PEEK`], or [`SNI_PEEK_TIMEOUT`] passes. Returns the bytes read and the SNI.
async fn read_client_hello<T>(downstream: &mut Counted<T>) -> (Vec<u8>, Option<String>)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buf = Vec::with_capacity(2048);
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            match sni::peek(&buf) {
                Peek::ClientHello { sni } => return sni,
                Peek::NotTls => return None,
                Peek::Incomplete if buf.len() >= sni::MAX_PEEK => return None,
                Peek::Incomplete => {}
            }
            match downstream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            }
        }
    };
    let sni = tokio::time::timeout(SNI_PEEK_TIMEOUT, read)
        .await
        .ok()
        .flatten();
    (buf, sni)
}

/// An upstream that could not be connected, as the local reply Envoy sends.
fn connect_failure(err: &UpstreamError, cluster: ClusterKey) -> Outcome {
    let mut o = Outcome::upstream_failure(err);
    o.cluster = Some(cluster);
    o
}

/// A route whose cluster or subset does not exist: `503 NC`.
fn no_cluster(key: Option<ClusterKey>) -> Outcome {
    let mut o = Outcome::local(
        StatusCode::SERVICE_UNAVAILABLE,
        "no healthy upstream",
        Some(ResponseFlag::NoClusterFound),
        "cluster_not_found",
    );
    o.cluster = key;
    o
}

/// `REGISTRY_ONLY` and an unknown host: `502`, BlackHoleCluster.
fn blackhole() -> Outcome {
    let mut o = Outcome::local(StatusCode::BAD_GATEWAY, "", None, "blackhole");
    o.flags = ResponseFlags::NONE;
    o.cluster = Some(ClusterKey::blackhole());
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(uri: &str) -> Option<(String, u16)> {
        connect_target(&uri.parse().unwrap())
    }

    #[test]
    fn connect_targets_need_a_host_and_port() {
        assert_eq!(
            target("DB.example.com:5432"),
            Some(("db.example.com".into(), 5432))
        );
        assert_eq!(target("[::1]:443"), Some(("::1".into(), 443)));
        assert_eq!(target("10.0.0.1:80"), Some(("10.0.0.1".into(), 80)));
        assert_eq!(target("db.example.com"), None);
        assert_eq!(target("db.example.com:0"), None);
        assert_eq!(target("/path"), None);
    }
}
