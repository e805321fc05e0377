//! The inbound listener: where other workloads' proxies (and, where allowed, plaintext
//! clients) reach this workload. Every connection is classified by its first byte — a TLS
//! ClientHello or plaintext — and the workload's PeerAuthentication decides what is accepted
//! on the application port:
//!
//! | mode       | mTLS (client certificate from the trust bundle) | plaintext |
//! |------------|--------------------------------------------------|-----------|
//! | STRICT     | served                                           | closed    |
//! | PERMISSIVE | served                                           | served    |
//! | DISABLE    | closed (weft does not pass TLS through)          | served    |
//!
//! Each request then goes through, in Envoy's filter order for an Istio inbound listener:
//! path normalization (400 on a path that cannot be normalized), `x-forwarded-client-cert`
//! sanitizing (always removed, then set from the verified peer), RequestAuthentication (401
//! for an invalid token), AuthorizationPolicy (403 `RBAC: access denied`, or HTTP 200 with
//! `grpc-status: 7` for gRPC), and finally the application, spoken to with the protocol the
//! calling application used (see [`crate::tls::ORIGINAL_PROTOCOL`]).
//!
//! Requests are recorded with `reporter="destination"` and the cluster `inbound|PORT||`.
//!
//! Connections that do not speak HTTP — plaintext whose first bytes are not an HTTP method or
//! the HTTP/2 preface, or mTLS negotiated with ALPN `weft-tcp` (a client-side tunnel) — are
//! relayed to the application as raw TCP after an AuthorizationPolicy check as a TCP
//! connection; a denied one is closed, with `connection_termination_details` in its log line.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use http::header::HeaderValue;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use weft_api::mesh::MeshConfig;

use super::http::{ProxyState, Workload, ensure_request_id, strip_hop_by_hop};
use super::upgrade;
use crate::body::{ProxyBody, boxed};
use crate::policy::authorization::{Authorizer, Decision, RequestAttributes};
use crate::policy::jwt::{Authenticated, JwtAuthenticator, JwtError};
use crate::policy::normalize::normalize;
use crate::policy::peer::{PeerAuthenticator, PeerMode};
use crate::route::forward::Outcome;
use crate::telemetry::access_log::{AccessLogEntry, millis};
use crate::telemetry::response_flags::{ResponseFlag, ResponseFlags};
use crate::telemetry::{InboundLabels, RequestRecord};
use crate::tls::{ALPN_TCP, ORIGINAL_PROTOCOL, PeerIdentity};

/// The header carrying the verified caller certificate to the application.
pub const XFCC: &str = "x-forwarded-client-cert";

/// How long a new connection may take to send its first byte (protocol detection).
const DETECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where inbound requests go: the local application.
#[derive(Debug)]
pub struct InboundTarget {
    /// The application's address.
    pub app: SocketAddr,
    /// The workload port (PeerAuthentication `portLevelMtls`, `destination.port`, the
    /// `inbound|PORT||` cluster name): the application's port.
    pub port: u16,
    http1: Client<HttpConnector, ProxyBody>,
    http2: Client<HttpConnector, ProxyBody>,
}

impl InboundTarget {
    pub fn new(app: SocketAddr) -> InboundTarget {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new());
        let http1 = builder.build(connector.clone());
        builder.http2_only(true);
        let http2 = builder.build(connector);
        InboundTarget {
            app,
            port: app.port(),
            http1,
            http2,
        }
    }
}

/// The inbound policies of this workload for one config version.
#[derive(Debug)]
pub struct InboundPolicy {
    pub version: u64,
    pub peer: PeerAuthenticator,
    pub authz: Authorizer,
    pub jwt: JwtAuthenticator,
}

/// The inbound policies compiled for the active config, rebuilt when its version changes.
#[derive(Debug, Default)]
pub struct InboundPolicies {
    current: ArcSwapOption<InboundPolicy>,
}

impl InboundPolicies {
    /// The policies for `mesh` (compiled on first use of a new config version).
    pub fn get(&self, mesh: &MeshConfig, workload: &Workload) -> Arc<InboundPolicy> {
        if let Some(p) = self
            .current
            .load_full()
            .filter(|p| p.version == mesh.version)
        {
            return p;
        }
        let resources = &mesh.resources;
        let (ns, labels, root) = (
            workload.namespace.as_str(),
            &workload.labels,
            workload.root_namespace.as_str(),
        );
        let policy = Arc::new(InboundPolicy {
            version: mesh.version,
            peer: PeerAuthenticator::for_workload(resources, ns, labels, root),
            authz: Authorizer::for_workload(resources, ns, labels, root),
            jwt: JwtAuthenticator::for_workload(resources, ns, labels, root),
        });
        self.current.store(Some(policy.clone()));
        policy
    }
}

/// One accepted inbound connection.
#[derive(Debug, Clone)]
struct InboundConn {
    peer: SocketAddr,
    local: SocketAddr,
    /// The verified caller, for mTLS connections.
    identity: Option<Arc<PeerIdentity>>,
    sni: Option<Arc<str>>,
}

/// Serves the inbound listener until `shutdown` resolves, then drains open connections.
pub async fn serve_inbound(
    listener: TcpListener,
    state: Arc<ProxyState>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(err) => {
                        tracing::warn!(%err, "inbound accept failed");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let local = stream.local_addr().unwrap_or(peer);
                tokio::spawn(accept(stream, peer, local, state.clone(), graceful.watcher()));
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(5)) => {
            tracing::warn!("inbound connections still open after 5s; closing");
        }
    }
}

/// Detects TLS or plaintext, enforces the peer authentication mode, and serves HTTP.
async fn accept(
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    state: Arc<ProxyState>,
    watcher: Watcher,
) {
    let Some(target) = state.inbound.as_ref() else {
        return;
    };
    let mode = {
        let mesh = state.config.load();
        state
            .inbound_policies
            .get(&mesh, &state.workload)
            .peer
            .mode(target.port)
    };
    let mut first = [0u8; 1];
    let is_tls = match tokio::time::timeout(DETECTION_TIMEOUT, stream.peek(&mut first)).await {
        Ok(Ok(1)) => first[0] == 0x16,
        _ => return,
    };
    let conn = |identity, sni| InboundConn {
        peer,
        local,
        identity,
        sni,
    };
    match (is_tls, mode) {
        (false, PeerMode::Strict) => {
            tracing::debug!(%peer, "plaintext connection refused: PeerAuthentication is STRICT");
        }
        (true, PeerMode::Disable) => {
            tracing::debug!(%peer, "TLS connection refused: PeerAuthentication is DISABLE");
        }
        (false, _) if looks_like_http(&stream).await => {
            serve_http(TokioIo::new(stream), conn(None, None), state, watcher);
        }
        (false, _) => serve_tcp(stream, conn(None, None), state).await,
        (true, _) => {
            let Some(identity) = state.identity.as_ref() else {
                tracing::warn!(%peer, "TLS connection refused: this proxy has no identity (--identity)");
                return;
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(identity.current().server.clone());
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => {
                    tracing::debug!(%peer, %err, "inbound TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "inbound TLS handshake timed out");
                    return;
                }
            };
            let session = tls.get_ref().1;
            let caller = PeerIdentity::of_connection(session).map(Arc::new);
            if caller.is_none() {
                tracing::debug!(%peer, "TLS connection without a SPIFFE client certificate refused");
                return;
            }
            let sni = session.server_name().map(Arc::from);
            let alpn = session.alpn_protocol().map(String::from_utf8_lossy);
            tracing::debug!(%peer, ?alpn, caller = ?caller.as_ref().map(|c| c.id.to_string()), "inbound mTLS connection");
            if session.alpn_protocol() == Some(ALPN_TCP) {
                serve_tcp(tls, conn(caller, sni), state).await;
            } else {
                serve_http(TokioIo::new(tls), conn(caller, sni), state, watcher);
            }
        }
    }
}

/// Whether a plaintext connection speaks HTTP: its first bytes are an HTTP/1 method and a
/// space, or the HTTP/2 preface. A connection that sends nothing within the detection timeout,
/// or a prefix too short to tell, is treated as HTTP (hyper then decides).
async fn looks_like_http(stream: &TcpStream) -> bool {
    const METHODS: &[&[u8]] = &[
        b"GET ",
        b"POST ",
        b"PUT ",
        b"DELETE ",
        b"HEAD ",
        b"OPTIONS ",
        b"PATCH ",
        b"CONNECT ",
        b"TRACE ",
        b"PRI * HTTP/2.0",
    ];
    let mut buf = [0u8; 16];
    let n = match tokio::time::timeout(DETECTION_TIMEOUT, stream.peek(&mut buf)).await {
        Ok(Ok(n)) => n,
        _ => return true,
    };
    let seen = &buf[..n];
    METHODS.iter().any(|m| {
        let len = m.len().min(seen.len());
        seen[..len] == m[..len]
    })
}

/// Raw TCP to the application: the connection is authorized as a TCP connection (HTTP-only
/// policy fields cannot match, so ALLOW rules needing them do not allow and DENY rules needing
/// them deny), then bytes are copied both ways. A denied connection is closed; the access log
/// gets one line per connection.
async fn serve_tcp<S>(mut downstream: S, conn: InboundConn, state: Arc<ProxyState>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Some(target) = state.inbound.as_ref() else {
        return;
    };
    let started = Instant::now();
    let mut entry = AccessLogEntry::new(SystemTime::now());
    entry.downstream_remote_address = Some(conn.peer);
    entry.downstream_local_address = Some(conn.local);
    entry.requested_server_name = conn.sni.as_deref().map(str::to_string);
    entry.upstream_cluster = Some(format!("inbound|{}||", target.port));
    let policy = {
        let mesh = state.config.load();
        state.inbound_policies.get(&mesh, &state.workload)
    };
    let principal = conn.identity.as_ref().map(|p| p.id.principal());
    let mut attributes = RequestAttributes::tcp(conn.peer.ip(), conn.local.ip(), target.port);
    attributes.source_principal = principal.as_deref();
    attributes.source_namespace = conn.identity.as_ref().map(|p| p.id.namespace());
    attributes.sni = conn.sni.as_deref();
    let verdict = policy.authz.evaluate(&attributes);
    let log = |mut entry: AccessLogEntry| {
        entry.duration = millis(started.elapsed());
        if state.telemetry.access_log.is_enabled() {
            state.telemetry.access_log.log(&entry);
        }
    };
    if let Some(details) = verdict.decision.response_code_details() {
        tracing::debug!(peer = %conn.peer, %details, "inbound TCP connection denied");
        entry.connection_termination_details = Some(details.into());
        return log(entry);
    }
    let mut app = match TcpStream::connect(target.app).await {
        Ok(app) => app,
        Err(err) => {
            tracing::debug!(app = %target.app, %err, "application connect failed");
            entry.response_flags = ResponseFlag::UpstreamConnectionFailure.into();
            entry.upstream_host = Some(target.app.to_string());
            return log(entry);
        }
    };
    let _ = app.set_nodelay(true);
    entry.upstream_host = Some(target.app.to_string());
    match tokio::io::copy_bidirectional(&mut downstream, &mut app).await {
        Ok((received, sent)) => {
            entry.bytes_received = received;
            entry.bytes_sent = sent;
        }
        Err(err) => {
            tracing::debug!(peer = %conn.peer, %err, "inbound TCP connection ended with an error");
            entry.response_flags = ResponseFlag::UpstreamConnectionTermination.into();
        }
    }
    log(entry);
}

fn serve_http<I>(io: TokioIo<I>, conn: InboundConn, state: Arc<ProxyState>, watcher: Watcher)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let peer = conn.peer;
    let service = service_fn(move |req| handle_inbound(state.clone(), conn.clone(), req));
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder
        .serve_connection_with_upgrades(io, service)
        .into_owned();
    let watched = watcher.watch(connection);
    tokio::spawn(async move {
        if let Err(err) = watched.await {
            tracing::debug!(%peer, %err, "inbound connection ended with an error");
        }
    });
}

/// Handles one inbound request; never fails (failures are responses).
async fn handle_inbound(
    state: Arc<ProxyState>,
    conn: InboundConn,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let started = Instant::now();
    let mut record = RequestRecord::begin(SystemTime::now(), &req, conn.peer, conn.local);
    let mut req = req;
    let upgrade = upgrade::requested(req.headers()).map(|u| (u, hyper::upgrade::on(&mut req)));
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    if let Some((protocol, _)) = &upgrade {
        upgrade::restore(&mut parts.headers, protocol);
    }
    ensure_request_id(&mut parts.headers, &mut record);
    let original = parts.headers.remove(ORIGINAL_PROTOCOL);
    parts.headers.remove(XFCC);
    let authority = host_of_request(&parts);
    record.authority = authority.clone();
    record.requested_server_name = conn.sni.as_deref().map(str::to_string);
    let labels = inbound_labels(&state.workload, conn.identity.as_deref());
    let port = state.inbound.as_ref().map_or(0, |t| t.port);
    let cluster = format!("inbound|{port}||");
    let finish = |record, outcome| {
        state
            .telemetry
            .finish_inbound(record, outcome, started, labels.clone(), cluster.clone())
    };
    let outcome = match admit(&state, &conn, &mut parts, &authority).await {
        Ok(()) => {
            let req = Request::from_parts(parts, record.count_request_body(boxed(body)));
            forward_to_app(&state, req, original.as_ref()).await
        }
        Err(outcome) => outcome,
    };
    let mut outcome = outcome;
    strip_hop_by_hop(outcome.response.headers_mut());
    if let Some((protocol, downstream)) = upgrade {
        upgrade::splice(downstream, &mut outcome.response, &protocol);
    }
    Ok(finish(record, outcome))
}

/// Normalization, authentication and authorization: `Err` is the local reply.
async fn admit(
    state: &ProxyState,
    conn: &InboundConn,
    parts: &mut http::request::Parts,
    authority: &str,
) -> Result<(), Outcome> {
    let grpc = is_grpc(&parts.headers);
    let target = parts.uri.path_and_query().map_or("/", PathAndQuery::as_str);
    let normalized = normalize(target, state.normalization).map_err(|err| {
        tracing::debug!(%err, path = target, "inbound request path rejected");
        local_reply(
            grpc,
            StatusCode::BAD_REQUEST,
            "Bad Request",
            "path_normalization_failed",
        )
    })?;
    set_path(parts, &normalized.path_and_query());
    let mesh = state.config.load();
    let policy = state.inbound_policies.get(&mesh, &state.workload);
    let authenticated: Option<Authenticated> = if policy.jwt.is_empty() {
        None
    } else {
        match policy.jwt.authenticate(parts, &state.jwks).await {
            Ok(a) => a,
            Err(err) => return Err(jwt_denied(grpc, &err, authority, &normalized.path)),
        }
    };
    let principal = conn.identity.as_ref().map(|p| p.id.principal());
    let attributes = RequestAttributes {
        source_principal: principal.as_deref(),
        source_namespace: conn.identity.as_ref().map(|p| p.id.namespace()),
        source_ip: conn.peer.ip(),
        remote_ip: conn.peer.ip(),
        request_principal: authenticated.as_ref().map(|a| a.principal.as_str()),
        jwt_claims: authenticated.as_ref().map(|a| &a.claims),
        host: weft_api::mesh::strip_port(authority),
        destination_ip: conn.local.ip(),
        destination_port: state.inbound.as_ref().map_or(0, |t| t.port),
        method: parts.method.as_str(),
        path: &normalized.path,
        headers: Some(&parts.headers),
        sni: conn.sni.as_deref(),
        http: true,
    };
    let verdict = policy.authz.evaluate(&attributes);
    if let Some(shadow) = verdict.shadow.as_ref().filter(|s| !s.is_allowed()) {
        tracing::info!(decision = ?shadow, "dry-run AuthorizationPolicy would deny the request");
    }
    if let Decision::Deny { .. } = &verdict.decision {
        let details = verdict.decision.response_code_details().unwrap_or_default();
        let mut o = local_reply(grpc, StatusCode::FORBIDDEN, "RBAC: access denied", "");
        o.details = details.into();
        return Err(o);
    }
    if let (Some(identity), Some(own)) = (&conn.identity, &state.identity) {
        let xfcc = format!(
            "By={};Hash={};Subject=\"\";URI={}",
            own.current().id,
            identity.cert_hash,
            identity.id
        );
        if let Ok(v) = HeaderValue::try_from(xfcc) {
            parts.headers.insert(XFCC, v);
        }
    }
    Ok(())
}

/// Sends the request to the application with the caller's protocol.
async fn forward_to_app(
    state: &ProxyState,
    mut req: Request<ProxyBody>,
    original: Option<&HeaderValue>,
) -> Outcome {
    let Some(target) = state.inbound.as_ref() else {
        return Outcome::local(
            StatusCode::SERVICE_UNAVAILABLE,
            "no inbound target",
            Some(ResponseFlag::NoHealthyUpstream),
            "no_healthy_upstream",
        );
    };
    let upgrading = upgrade::requested(req.headers()).is_some();
    let version = match original.and_then(|v| v.to_str().ok()) {
        _ if upgrading => Version::HTTP_11,
        Some("HTTP/2") => Version::HTTP_2,
        Some("HTTP/1.0") => Version::HTTP_10,
        Some(_) => Version::HTTP_11,
        None if req.version() == Version::HTTP_2 => Version::HTTP_2,
        None => req.version(),
    };
    if req.headers().get(http::header::HOST).is_none()
        && let Some(a) = req.uri().authority().cloned()
        && let Ok(v) = HeaderValue::try_from(a.as_str())
    {
        req.headers_mut().insert(http::header::HOST, v);
    }
    let mut uri = http::uri::Parts::default();
    uri.scheme = Some(Scheme::HTTP);
    uri.authority = Authority::try_from(target.app.to_string()).ok();
    uri.path_and_query = req.uri().path_and_query().cloned();
    match Uri::from_parts(uri) {
        Ok(u) => *req.uri_mut() = u,
        Err(_) => {
            return Outcome::local(StatusCode::BAD_REQUEST, "Bad Request", None, "invalid_uri");
        }
    }
    *req.version_mut() = version;
    let sent = Instant::now();
    let endpoint = target.app.to_string();
    let result = if version == Version::HTTP_2 {
        target.http2.request(req).await
    } else {
        target.http1.request(req).await
    };
    match result {
        Ok(response) => Outcome {
            response: response.map(boxed),
            flags: ResponseFlags::NONE,
            details: "via_upstream".into(),
            cluster: None,
            upstream_host: Some(endpoint),
            upstream_time: Some(sent.elapsed()),
        },
        Err(err) => {
            tracing::debug!(%endpoint, %err, "application request failed");
            let mut o = Outcome::upstream_failure(&if err.is_connect() {
                crate::upstream::UpstreamError::ConnectFailure {
                    endpoint: endpoint.clone(),
                    source: Box::new(err),
                }
            } else {
                crate::upstream::UpstreamError::Reset {
                    endpoint: endpoint.clone(),
                    source: Box::new(err),
                }
            });
            o.upstream_host = Some(endpoint);
            o
        }
    }
}

/// The request's host: the `Host` header (the proxy-to-proxy hop sends the endpoint as
/// `:authority` and the original host as `Host`), else the URI authority.
fn host_of_request(parts: &http::request::Parts) -> String {
    parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|a| a.as_str().to_string()))
        .unwrap_or_default()
}

/// Replaces the request's path and query, keeping scheme and authority.
pub(crate) fn set_path(parts: &mut http::request::Parts, path_and_query: &str) {
    // Most paths are already normal: keep the URI as it is.
    if parts.uri.path_and_query().map(PathAndQuery::as_str) == Some(path_and_query) {
        return;
    }
    let Ok(pq) = PathAndQuery::try_from(path_and_query) else {
        return;
    };
    let mut uri = std::mem::take(&mut parts.uri).into_parts();
    uri.path_and_query = Some(pq);
    if let Ok(u) = Uri::from_parts(uri) {
        parts.uri = u;
    }
}

fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}

/// A local reply, as Envoy sends it: text, or for gRPC requests HTTP 200 with the matching
/// `grpc-status` (Envoy's HTTP→gRPC mapping) and the text as `grpc-message`.
fn local_reply(
    grpc: bool,
    status: StatusCode,
    body: &'static str,
    details: &'static str,
) -> Outcome {
    if !grpc {
        return Outcome::local(status, body, None, details);
    }
    let code = match status.as_u16() {
        400 => "13",
        401 => "16",
        403 => "7",
        404 => "12",
        429 | 502..=504 => "14",
        _ => "2",
    };
    let mut o = Outcome::local(StatusCode::OK, "", None, details);
    let headers = o.response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", HeaderValue::from_static(code));
    headers.insert("grpc-message", HeaderValue::from_static(body));
    o
}

/// 401 for a token that failed validation, with Envoy's `www-authenticate`.
fn jwt_denied(grpc: bool, err: &JwtError, authority: &str, path: &str) -> Outcome {
    let mut o = local_reply(
        grpc,
        StatusCode::UNAUTHORIZED,
        "",
        err.response_code_details(),
    );
    if !grpc {
        *o.response.body_mut() = crate::body::full(err.to_string());
    } else if let Ok(v) = HeaderValue::try_from(err.to_string()) {
        o.response.headers_mut().insert("grpc-message", v);
    }
    let challenge = format!("Bearer realm=\"http://{authority}{path}\", error=\"invalid_token\"");
    if let Ok(v) = HeaderValue::try_from(challenge) {
        o.response
            .headers_mut()
            .insert(http::header::WWW_AUTHENTICATE, v);
    }
    o
}

/// The metric labels of a request served here.
fn inbound_labels(workload: &Workload, caller: Option<&PeerIdentity>) -> InboundLabels {
    let known = |s: &str| -> Arc<str> { Arc::from(if s.is_empty() { "unknown" } else { s }) };
    let service = workload
        .labels
        .get("app")
        .cloned()
        .unwrap_or_else(|| workload.name.clone());
    let namespace = &workload.namespace;
    InboundLabels {
        source_workload: known(""),
        source_namespace: known(caller.map_or("", |c| c.id.namespace())),
        destination_service: known(&format!("{service}.{namespace}.svc.cluster.local")),
        destination_service_name: known(&service),
        destination_service_namespace: known(namespace),
        destination_version: known(workload.labels.get("version").map_or("", String::as_str)),
    }
}
