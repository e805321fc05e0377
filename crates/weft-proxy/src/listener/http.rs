//! The HTTP edge: one call per request. It finds the virtual host and route, applies faults,
//! redirects and direct responses, forwards everything else, and turns the outcome into the
//! response, one access-log line and the request metrics (recorded when the response body
//! ends, so byte counts and durations are whole).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::header::{HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use weft_api::mesh::{
    Abort, Cluster, ClusterKey, HttpRoute, MeshConfig, OutboundPolicy, RouteAction, RouteMatch,
};

use crate::body::{ProxyBody, boxed};
use crate::control::ActiveConfig;
use crate::policy::jwt::JwksCache;
use crate::policy::normalize::{PathNormalization, normalize};
use crate::route::actions::{direct_response, redirect, split_authority};
use crate::route::forward::{Forward, Outcome, forward};
use crate::route::{RequestView, chance, select};
use crate::telemetry::response_flags::{ResponseFlag, ResponseFlags};
use crate::telemetry::{RequestRecord, Telemetry};
use crate::tls::IdentityStore;
use crate::upstream::Upstreams;

use super::inbound::{InboundPolicies, InboundTarget, set_path};

/// Who this proxy is: metrics labels, and what policy selectors are matched against.
#[derive(Debug, Clone, Default)]
pub struct Workload {
    pub name: String,
    pub namespace: String,
    pub service_account: String,
    pub labels: std::collections::BTreeMap<String, String>,
    /// The mesh's root namespace (mesh-wide policies).
    pub root_namespace: String,
}

/// Everything request handling shares.
pub struct ProxyState {
    pub config: Arc<ActiveConfig>,
    pub upstreams: Arc<Upstreams>,
    pub telemetry: Telemetry,
    pub workload: Workload,
    /// The workload's certificate (mesh mTLS); `None` runs without mTLS.
    pub identity: Option<Arc<IdentityStore>>,
    /// How request paths are normalized before routing and policy.
    pub normalization: PathNormalization,
    /// The local application, when the proxy has an inbound listener.
    pub inbound: Option<InboundTarget>,
    /// Inbound policies compiled for the active config.
    pub inbound_policies: InboundPolicies,
    /// JWKS fetched for RequestAuthentication.
    pub jwks: Arc<JwksCache>,
}

/// The two ends of a downstream connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub local: SocketAddr,
}

/// Headers that describe one hop and are never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

pub(crate) fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::try_from(n.trim()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        // `te: trailers` is meaningful for gRPC over HTTP/2 and is kept.
        if *name == "te" && headers.get("te").is_some_and(|v| v == "trailers") {
            continue;
        }
        headers.remove(*name);
    }
}

/// Handles one request; never fails (failures are responses).
pub async fn handle(
    state: Arc<ProxyState>,
    conn: ConnInfo,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    if req.method() == http::Method::CONNECT {
        return Ok(super::tunnel::connect(state, conn, req).await);
    }
    let started = Instant::now();
    let mut record = RequestRecord::begin(SystemTime::now(), &req, conn.peer, conn.local);
    let mut req = req;
    let upgrade =
        super::upgrade::requested(req.headers()).map(|u| (u, hyper::upgrade::on(&mut req)));
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    if let Some((protocol, _)) = &upgrade {
        super::upgrade::restore(&mut parts.headers, protocol);
    }
    ensure_request_id(&mut parts.headers, &mut record);
    let Some(authority) = authority(&parts) else {
        let o = Outcome::local(
            StatusCode::BAD_REQUEST,
            "missing host",
            Some(ResponseFlag::DownstreamProtocolError),
            "missing_host_header",
        );
        return Ok(state
            .telemetry
            .finish(record, o, started, &state.workload, None));
    };
    record.authority = authority.clone();
    if parts.uri.path_and_query().is_some() {
        let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        match normalize(target, state.normalization) {
            Ok(normalized) => set_path(&mut parts, &normalized.path_and_query()),
            Err(err) => {
                tracing::debug!(%err, path = target, "request path rejected");
                let o = Outcome::local(
                    err.status(),
                    "Bad Request",
                    None,
                    "path_normalization_failed",
                );
                return Ok(state
                    .telemetry
                    .finish(record, o, started, &state.workload, None));
            }
        }
    }
    let mesh = state.config.load();
    let req = Request::from_parts(parts, record.count_request_body(boxed(body)));
    let (outcome, vhost_name) =
        route_request(&state, &mesh, &authority, conn, req, &mut record).await;
    let version = outcome
        .cluster
        .as_ref()
        .and_then(|k| mesh.clusters.get(k))
        .and_then(|c| c.version.clone());
    record.destination_version = version;
    let mut outcome = outcome;
    strip_hop_by_hop(outcome.response.headers_mut());
    if let Some((protocol, downstream)) = upgrade {
        super::upgrade::splice(downstream, &mut outcome.response, &protocol);
    }
    Ok(state
        .telemetry
        .finish(record, outcome, started, &state.workload, vhost_name))
}

pub(crate) fn ensure_request_id(headers: &mut http::HeaderMap, record: &mut RequestRecord) {
    let id = match headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
        Some(id) => id.to_string(),
        None => {
            let id = new_request_id();
            if let Ok(v) = HeaderValue::try_from(id.as_str()) {
                headers.insert("x-request-id", v);
            }
            id
        }
    };
    record.request_id = Some(id);
}

/// A random UUID v4, as Envoy generates for `x-request-id`.
fn new_request_id() -> String {
    let a = fastrand::u64(..);
    let b = fastrand::u64(..);
    let a = (a & 0xffff_ffff_ffff_0fff) | 0x4000;
    let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// The request's authority: absolute-form URI or `:authority`, else the Host header.
fn authority(parts: &http::request::Parts) -> Option<String> {
    if let Some(a) = parts.uri.authority() {
        return Some(a.as_str().to_string());
    }
    parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty())
        .map(str::to_string)
}

async fn route_request(
    state: &Arc<ProxyState>,
    mesh: &Arc<MeshConfig>,
    authority: &str,
    conn: ConnInfo,
    req: Request<ProxyBody>,
    record: &mut RequestRecord,
) -> (Outcome, Option<String>) {
    let scheme = req.uri().scheme_str().unwrap_or("http").to_string();
    let (_, port) = split_authority(authority);
    let port = port.unwrap_or(if scheme == "https" { 443 } else { 80 });
    let Some(vhost) = mesh.virtual_host(authority) else {
        if is_self(authority, port, conn.local) {
            // Passing it through would connect back to this listener, forever.
            let o = Outcome::local(
                StatusCode::BAD_GATEWAY,
                "the request is addressed to this proxy's own listener",
                None,
                "upstream_is_this_listener",
            );
            return (o, None);
        }
        return (unknown_host(state, mesh, authority, port, req).await, None);
    };
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let view = RequestView {
        method: req.method().as_str(),
        path: &path,
        query: query.as_deref(),
        scheme: &scheme,
        authority,
        port,
        headers: req.headers(),
    };
    let Some((route, matched)) = select(vhost, &view) else {
        let o = Outcome::local(
            StatusCode::NOT_FOUND,
            "",
            Some(ResponseFlag::NoRouteFound),
            "route_not_found",
        );
        return (o, Some(vhost.name.clone()));
    };
    record.route_name = Some(route.name.clone());
    let target = Target {
        route,
        matched,
        authority,
        scheme: &scheme,
        port,
    };
    (
        apply_route(state, mesh, &target, conn, req).await,
        Some(vhost.name.clone()),
    )
}

/// The route a request matched, and where it was addressed.
struct Target<'a> {
    route: &'a HttpRoute,
    matched: Option<&'a RouteMatch>,
    authority: &'a str,
    scheme: &'a str,
    port: u16,
}

/// Runs a matched route: fault injection, CORS, then its action (Istio's filter order).
async fn apply_route(
    state: &Arc<ProxyState>,
    mesh: &Arc<MeshConfig>,
    t: &Target<'_>,
    conn: ConnInfo,
    req: Request<ProxyBody>,
) -> Outcome {
    let route = t.route;
    let mut flags = ResponseFlags::NONE;
    if let Some(fault) = &route.fault {
        if let Some((delay, pct)) = fault.delay
            && chance(pct)
        {
            tokio::time::sleep(delay).await;
            flags.insert(ResponseFlag::DelayInjected);
        }
        if let Some((abort, pct)) = fault.abort
            && chance(pct)
        {
            let mut o = abort_response(abort);
            o.flags = flags.with(ResponseFlag::FaultInjected);
            return o;
        }
    }
    let cors_origin = crate::route::cors::request_origin(req.headers()).map(str::to_string);
    if let Some(resp) = route
        .cors
        .as_ref()
        .and_then(|c| crate::route::cors::preflight(c, req.method(), req.headers()))
    {
        let mut o = local(resp, "cors_response");
        o.flags = flags;
        return o;
    }
    let mut outcome = run_action(state, mesh, t, conn, req).await;
    for f in flags.iter() {
        outcome.flags.insert(f);
    }
    if let Some(cors) = &route.cors {
        crate::route::cors::decorate(cors, cors_origin.as_deref(), outcome.response.headers_mut());
    }
    outcome
}

async fn run_action(
    state: &Arc<ProxyState>,
    mesh: &Arc<MeshConfig>,
    t: &Target<'_>,
    conn: ConnInfo,
    req: Request<ProxyBody>,
) -> Outcome {
    let (destinations, rewrite) = match &t.route.action {
        RouteAction::Redirect(r) => {
            let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
            return local(redirect(r, t.scheme, t.authority, pq), "direct_response");
        }
        RouteAction::DirectResponse { status, body } => {
            return local(direct_response(*status, body.as_deref()), "direct_response");
        }
        RouteAction::Forward {
            destinations,
            rewrite,
        } => (destinations, rewrite),
    };
    let fwd = Forward {
        mesh,
        route: t.route,
        matched: t.matched,
        destinations,
        rewrite: rewrite.as_ref(),
        authority: t.authority,
        port: t.port,
        peer_ip: Some(conn.peer.ip()),
    };
    let send = forward(fwd, &state.upstreams, req);
    let Some(timeout) = t.route.timeout else {
        return send.await;
    };
    match tokio::time::timeout(timeout, send).await {
        Ok(o) => o,
        Err(_) => Outcome::local(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream request timeout",
            Some(ResponseFlag::UpstreamRequestTimeout),
            "upstream_response_timeout",
        ),
    }
}

fn local(response: Response<ProxyBody>, details: &'static str) -> Outcome {
    Outcome {
        response,
        flags: ResponseFlags::NONE,
        details: details.into(),
        cluster: None,
        upstream_host: None,
        upstream_time: None,
    }
}

/// The response of an injected abort: the HTTP status, or HTTP 200 with `grpc-status`.
fn abort_response(abort: Abort) -> Outcome {
    match abort {
        Abort::Http(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            Outcome::local(status, "fault filter abort", None, "fault_filter_abort")
        }
        Abort::Grpc(code) => {
            let mut o = Outcome::local(StatusCode::OK, "", None, "fault_filter_abort");
            o.response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            if let Ok(v) = HeaderValue::try_from(code.to_string()) {
                o.response.headers_mut().insert("grpc-status", v);
            }
            o
        }
    }
}

/// Whether `authority` (a host the mesh does not know) names the listener the request came in
/// on: the same port on the same address, a loopback address or `localhost`.
fn is_self(authority: &str, port: u16, local: SocketAddr) -> bool {
    if port != local.port() {
        return false;
    }
    let (host, _) = split_authority(authority);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return local.ip().is_loopback() || local.ip().is_unspecified();
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip == local.ip() || (ip.is_loopback() && local.ip().is_unspecified()),
        Err(_) => false,
    }
}

/// A host the mesh does not know: forwarded as asked (ALLOW_ANY) or refused (REGISTRY_ONLY).
async fn unknown_host(
    state: &Arc<ProxyState>,
    mesh: &MeshConfig,
    authority: &str,
    port: u16,
    req: Request<ProxyBody>,
) -> Outcome {
    if mesh.outbound_policy == OutboundPolicy::RegistryOnly {
        let mut o = Outcome::local(StatusCode::BAD_GATEWAY, "", None, "blackhole");
        o.cluster = Some(ClusterKey::blackhole());
        return o;
    }
    let (host, _) = split_authority(authority);
    let cluster = Arc::new(Cluster::passthrough(&host, port));
    let key = cluster.key.clone();
    let pick = crate::upstream::PickContext {
        service_port: Some(port),
        hash: None,
        exclude: Vec::new(),
    };
    let started = Instant::now();
    match state.upstreams.send(&cluster, req, &pick).await {
        Ok(sent) => Outcome {
            response: sent.response,
            flags: ResponseFlags::NONE,
            details: "via_upstream".into(),
            cluster: Some(key),
            upstream_host: Some(sent.endpoint),
            upstream_time: Some(started.elapsed()),
        },
        Err(err) => {
            let mut o = Outcome::upstream_failure(&err);
            o.cluster = Some(key);
            o
        }
    }
}
