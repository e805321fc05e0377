//! Forwarding a routed request: pick a weighted destination, edit and rewrite the request,
//! then send it with the route's retry policy and timeouts, mirror it if asked, and edit the
//! response. Every failure comes back as an [`Outcome`] with Envoy's response flag; the
//! listener turns it into a response, an access-log line and metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HOST, HeaderValue};
use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use weft_api::mesh::{
    Cluster, ClusterKey, ConsistentHashKey, HttpRoute, LbPolicy, MeshConfig, Rewrite, RouteMatch,
    WeightedDestination,
};

use super::actions::{edit_headers, rewrite_path};
use super::{chance, header_value, pick_destination};
use crate::body::{ProxyBody, full};
use crate::telemetry::response_flags::{ResponseFlag, ResponseFlags};
use crate::upstream::{PickContext, UpstreamError, Upstreams};

/// Bodies up to this size are buffered so that retries and mirrors can replay them; larger or
/// unsized bodies stream and are sent once.
pub const MAX_REPLAY_BODY: u64 = 1 << 20;

/// How forwarding ended.
pub struct Outcome {
    pub response: Response<ProxyBody>,
    pub flags: ResponseFlags,
    pub details: std::borrow::Cow<'static, str>,
    pub cluster: Option<ClusterKey>,
    pub upstream_host: Option<String>,
    pub upstream_time: Option<Duration>,
}

impl Outcome {
    /// A locally generated answer (no upstream involved).
    pub fn local(
        status: StatusCode,
        body: &'static str,
        flag: Option<ResponseFlag>,
        details: &'static str,
    ) -> Outcome {
        let mut response = Response::new(full(body));
        *response.status_mut() = status;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain"),
        );
        Outcome {
            response,
            flags: flag.map(ResponseFlags::from).unwrap_or_default(),
            details: details.into(),
            cluster: None,
            upstream_host: None,
            upstream_time: None,
        }
    }
}

impl Outcome {
    /// The local reply Envoy sends when no upstream response could be had (`UH`, `UO` with
    /// `x-envoy-overloaded: true`, `UF`, `UC`), all 503.
    pub fn upstream_failure(err: &UpstreamError) -> Outcome {
        let (flag, body, details) = match err {
            UpstreamError::NoHealthyUpstream => (
                ResponseFlag::NoHealthyUpstream,
                "no healthy upstream",
                "no_healthy_upstream",
            ),
            UpstreamError::Overflow => (
                ResponseFlag::UpstreamOverflow,
                "upstream connect error or disconnect/reset before headers. reset reason: overflow",
                "upstream_reset_before_response_started{overflow}",
            ),
            UpstreamError::ConnectFailure { .. } => (
                ResponseFlag::UpstreamConnectionFailure,
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
                "upstream_reset_before_response_started{connection_failure}",
            ),
            UpstreamError::Reset { .. } => (
                ResponseFlag::UpstreamConnectionTermination,
                "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
                "upstream_reset_before_response_started{connection_termination}",
            ),
        };
        let mut o = Outcome::local(StatusCode::SERVICE_UNAVAILABLE, body, Some(flag), details);
        if flag == ResponseFlag::UpstreamOverflow {
            o.response
                .headers_mut()
                .insert("x-envoy-overloaded", HeaderValue::from_static("true"));
        }
        o.upstream_host = err.endpoint().map(str::to_string);
        o
    }
}

/// A request body that may be replayed.
enum Replay {
    Buffered(Bytes),
    Once(Option<ProxyBody>),
}

impl Replay {
    fn take(&mut self) -> ProxyBody {
        match self {
            Replay::Buffered(b) => full(b.clone()),
            Replay::Once(body) => body.take().unwrap_or_else(crate::body::empty),
        }
    }

    fn replayable(&self) -> bool {
        matches!(self, Replay::Buffered(_))
    }
}

async fn prepare_body(
    parts: &Parts,
    body: ProxyBody,
    want_replay: bool,
) -> Result<Replay, Outcome> {
    use http_body::Body as _;
    let size = body.size_hint().exact();
    let small = size.is_some_and(|s| s <= MAX_REPLAY_BODY);
    if !(want_replay && small) {
        return Ok(Replay::Once(Some(body)));
    }
    let _ = parts;
    // The exact size hint comes from `content-length`, which hyper enforces, so this is bounded.
    match body.collect().await {
        Ok(collected) => Ok(Replay::Buffered(collected.to_bytes())),
        Err(_) => Err(Outcome::local(
            StatusCode::BAD_REQUEST,
            "downstream request body error",
            Some(ResponseFlag::DownstreamProtocolError),
            "downstream_body_error",
        )),
    }
}

/// The inputs of one forward.
pub struct Forward<'a> {
    pub mesh: &'a MeshConfig,
    pub route: &'a HttpRoute,
    pub matched: Option<&'a RouteMatch>,
    pub destinations: &'a [WeightedDestination],
    pub rewrite: Option<&'a Rewrite>,
    pub authority: &'a str,
    pub port: u16,
    pub peer_ip: Option<std::net::IpAddr>,
}

/// Forwards `req` along `fwd.route`.
pub async fn forward(
    fwd: Forward<'_>,
    upstreams: &Arc<Upstreams>,
    req: Request<ProxyBody>,
) -> Outcome {
    let Some(dest) = pick_destination(fwd.destinations) else {
        return Outcome::local(
            StatusCode::SERVICE_UNAVAILABLE,
            "no cluster",
            Some(ResponseFlag::NoClusterFound),
            "cluster_not_found",
        );
    };
    let cluster = match fwd.mesh.clusters.get(&dest.cluster) {
        Some(c) if !c.undefined_subset => c.clone(),
        _ => {
            let mut o = Outcome::local(
                StatusCode::SERVICE_UNAVAILABLE,
                "no healthy upstream",
                Some(ResponseFlag::NoClusterFound),
                "cluster_not_found",
            );
            o.cluster = Some(dest.cluster.clone());
            return o;
        }
    };
    let (mut parts, body) = req.into_parts();
    let mut authority = fwd.authority.to_string();
    for edits in [&fwd.route.headers.request, &dest.headers.request] {
        if let Some(a) = edit_headers(&mut parts.headers, edits) {
            authority = a;
        }
    }
    if let Some(rw) = fwd.rewrite {
        let path = parts.uri.path().to_string();
        let pq = rewrite_path(rw, fwd.matched, &path, parts.uri.query());
        if let Ok(uri) = pq.parse() {
            parts.uri = uri;
        }
        if let Some(a) = &rw.authority {
            authority = a.clone();
        }
    }
    if let Ok(v) = HeaderValue::try_from(authority.as_str()) {
        parts.headers.insert(HOST, v);
    }
    let want_replay = fwd.route.retry.attempts > 0 || !fwd.route.mirrors.is_empty();
    let mut replay = match prepare_body(&parts, body, want_replay).await {
        Ok(r) => r,
        Err(o) => return o,
    };
    if let Replay::Buffered(bytes) = &replay {
        mirror(&fwd, upstreams, &parts, bytes, &authority);
    }
    let (hash, set_cookie) = hash_key(&cluster, &parts, fwd.peer_ip);
    let pick = PickContext {
        service_port: dest.cluster.port.or(Some(fwd.port)),
        hash,
        exclude: Vec::new(),
    };
    let mut outcome = send_with_retries(&fwd, upstreams, &cluster, parts, &mut replay, pick).await;
    outcome.cluster = Some(dest.cluster.clone());
    if let Some(cookie) = set_cookie {
        outcome
            .response
            .headers_mut()
            .append(http::header::SET_COOKIE, cookie);
    }
    for edits in [&fwd.route.headers.response, &dest.headers.response] {
        edit_headers(outcome.response.headers_mut(), edits);
    }
    outcome
}

/// Why one try failed, for the retry decision.
enum TryError {
    Upstream(UpstreamError),
    PerTryTimeout,
}

fn retriable_error(on: &weft_api::mesh::RetryOn, err: &TryError) -> bool {
    match err {
        TryError::Upstream(UpstreamError::ConnectFailure { .. }) => {
            on.connect_failure || on.reset || on.five_xx || on.gateway_error
        }
        TryError::Upstream(UpstreamError::Reset { source, .. }) => {
            on.reset
                || on.five_xx
                || on.gateway_error
                || (on.refused_stream && is_refused_stream(source.as_ref()))
        }
        TryError::Upstream(_) => false,
        TryError::PerTryTimeout => on.reset || on.five_xx || on.gateway_error,
    }
}

async fn send_with_retries(
    fwd: &Forward<'_>,
    upstreams: &Arc<Upstreams>,
    cluster: &Arc<Cluster>,
    parts: Parts,
    replay: &mut Replay,
    mut pick: PickContext,
) -> Outcome {
    let policy = &fwd.route.retry;
    let started = Instant::now();
    let attempts = if replay.replayable() {
        policy.attempts
    } else {
        0
    };
    let mut attempt = 0;
    // Held while a retry is in flight: `connectionPool.http.maxRetries` bounds concurrent retries.
    let mut _retry_permit = None;
    loop {
        let mut req = Request::from_parts(parts.clone(), replay.take());
        if attempt > 0
            && let Ok(v) = HeaderValue::try_from((attempt + 1).to_string())
        {
            req.headers_mut().insert("x-envoy-attempt-count", v);
        }
        let result = try_once(upstreams, cluster, req, &pick, policy.per_try_timeout).await;
        let retriable = match &result {
            Ok(sent) => retriable_response(&policy.retry_on, &sent.response),
            Err(err) => retriable_error(&policy.retry_on, err),
        };
        let wants_retry = retriable && attempt < attempts;
        let permit = wants_retry
            .then(|| upstreams.retry_permit(cluster))
            .flatten();
        if permit.is_none() {
            // Retries exhausted (URX) only when every allowed retry was used.
            let exhausted = retriable && attempts > 0 && attempt >= attempts;
            let mut outcome = finish_try(result, exhausted, started);
            if wants_retry {
                // `maxRetries` retries in flight: Envoy keeps this try's result and logs `UO`.
                outcome.flags.insert(ResponseFlag::UpstreamOverflow);
            }
            return outcome;
        }
        _retry_permit = permit;
        let tried = match &result {
            Ok(sent) => Some(sent.endpoint.clone()),
            Err(TryError::Upstream(e)) => e.endpoint().map(str::to_string),
            Err(TryError::PerTryTimeout) => None,
        };
        pick.exclude.extend(tried);
        drop(result);
        attempt += 1;
        tokio::time::sleep(backoff(policy.backoff, attempt)).await;
    }
}

async fn try_once(
    upstreams: &Upstreams,
    cluster: &Arc<Cluster>,
    req: Request<ProxyBody>,
    pick: &PickContext,
    per_try_timeout: Option<Duration>,
) -> Result<crate::upstream::Sent, TryError> {
    let send = upstreams.send(cluster, req, pick);
    match per_try_timeout {
        Some(t) => match tokio::time::timeout(t, send).await {
            Ok(r) => r.map_err(TryError::Upstream),
            Err(_) => Err(TryError::PerTryTimeout),
        },
        None => send.await.map_err(TryError::Upstream),
    }
}

fn retriable_response(on: &weft_api::mesh::RetryOn, resp: &Response<ProxyBody>) -> bool {
    on.retries_status(resp.status().as_u16())
        || grpc_status(resp).is_some_and(|g| on.grpc.contains(&g))
}

fn finish_try(
    result: Result<crate::upstream::Sent, TryError>,
    exhausted: bool,
    started: Instant,
) -> Outcome {
    match result {
        Ok(sent) => {
            let mut flags = ResponseFlags::NONE;
            if exhausted {
                flags.insert(ResponseFlag::UpstreamRetryLimitExceeded);
            }
            Outcome {
                response: sent.response,
                flags,
                details: "via_upstream".into(),
                cluster: None,
                upstream_host: Some(sent.endpoint),
                upstream_time: Some(started.elapsed()),
            }
        }
        Err(err) => failure(err, exhausted),
    }
}

/// Whether an HTTP/2 upstream refused the stream (`REFUSED_STREAM`): the request was never
/// processed, so `refused-stream` (in Istio's default policy) retries it safely.
fn is_refused_stream(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(h2) = e.downcast_ref::<h2::Error>()
            && h2.reason() == Some(h2::Reason::REFUSED_STREAM)
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// Exponential backoff with full jitter: base × 2^(n-1), capped at 10 × base (Envoy's default).
fn backoff(base: Duration, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(10);
    let cap = base.saturating_mul(10);
    let max = base.saturating_mul(factor).min(cap);
    let ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(fastrand::u64(0..=ms))
}

fn failure(err: TryError, retried: bool) -> Outcome {
    let mut o = match err {
        TryError::PerTryTimeout => Outcome::local(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream request timeout",
            Some(ResponseFlag::UpstreamRequestTimeout),
            "upstream_per_try_timeout",
        ),
        TryError::Upstream(e) => Outcome::upstream_failure(&e),
    };
    if retried {
        o.flags.insert(ResponseFlag::UpstreamRetryLimitExceeded);
    }
    o
}

fn grpc_status(resp: &Response<ProxyBody>) -> Option<u32> {
    resp.headers()
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The consistent-hash key of a request, when the cluster balances by one, and the cookie to
/// set when the key is an `httpCookie` with a `ttl` that the request does not carry yet (Envoy
/// generates one so the client sticks to the endpoint from then on).
fn hash_key(
    cluster: &Cluster,
    parts: &Parts,
    peer: Option<std::net::IpAddr>,
) -> (Option<u64>, Option<HeaderValue>) {
    let LbPolicy::ConsistentHash(key) = &cluster.lb else {
        return (None, None);
    };
    let value = match key {
        ConsistentHashKey::Header(name) => header_value(&parts.headers, &name.to_ascii_lowercase()),
        ConsistentHashKey::SourceIp => peer.map(|ip| ip.to_string()),
        ConsistentHashKey::QueryParameter(name) => {
            weft_api::mesh::query_value(parts.uri.query(), name)
        }
        ConsistentHashKey::Cookie { name, path, ttl } => {
            match (cookie(&parts.headers, name), ttl) {
                (Some(v), _) => Some(v),
                (None, Some(ttl)) => {
                    let value = format!("\"{:016x}\"", fastrand::u64(..));
                    let mut set = format!("{name}={value}; Max-Age={}", ttl.as_secs());
                    if let Some(p) = path {
                        set.push_str(&format!("; Path={p}"));
                    }
                    set.push_str("; HttpOnly");
                    return (
                        Some(fnv1a(value.as_bytes())),
                        HeaderValue::try_from(set).ok(),
                    );
                }
                (None, None) => None,
            }
        }
    };
    (value.map(|v| fnv1a(v.as_bytes())), None)
}

fn cookie(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|line| {
            line.split(';').find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                (k == name).then(|| v.to_string())
            })
        })
}

/// FNV-1a: stable across processes, so every proxy hashes a key to the same endpoint.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Sends copies to the route's mirrors, fire-and-forget, with `-shadow` appended to the host.
fn mirror(
    fwd: &Forward<'_>,
    upstreams: &Arc<Upstreams>,
    parts: &Parts,
    body: &Bytes,
    authority: &str,
) {
    for m in &fwd.route.mirrors {
        if !chance(m.percent) {
            continue;
        }
        let Some(cluster) = fwd.mesh.clusters.get(&m.cluster).cloned() else {
            continue;
        };
        let mut p = parts.clone();
        let (host, port) = super::actions::split_authority(authority);
        let suffix = if fwd.mesh.shadow_suffix {
            "-shadow"
        } else {
            ""
        };
        let shadow = match port {
            Some(port) => format!("{host}{suffix}:{port}"),
            None => format!("{host}{suffix}"),
        };
        if let Ok(v) = HeaderValue::try_from(shadow) {
            p.headers.insert(HOST, v);
        }
        let req = Request::from_parts(p, full(body.clone()));
        let upstreams = upstreams.clone();
        let pick = PickContext {
            service_port: m.cluster.port.or(Some(fwd.port)),
            hash: None,
            exclude: Vec::new(),
        };
        tokio::spawn(async move {
            match upstreams.send(&cluster, req, &pick).await {
                Ok(sent) => {
                    // Drain and discard the mirrored response.
                    let _ = sent.response.into_body().collect().await;
                }
                Err(err) => tracing::debug!(%err, "mirror request failed"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_streams_are_recognised_through_the_error_chain() {
        let refused: BodyErrorBox = Box::new(h2::Error::from(h2::Reason::REFUSED_STREAM));
        assert!(is_refused_stream(refused.as_ref()));
        let other: BodyErrorBox = Box::new(h2::Error::from(h2::Reason::INTERNAL_ERROR));
        assert!(!is_refused_stream(other.as_ref()));
        let io: BodyErrorBox = Box::new(std::io::Error::other("reset"));
        assert!(!is_refused_stream(io.as_ref()));
    }

    #[test]
    fn refused_stream_retry_follows_the_policy() {
        let err = || {
            TryError::Upstream(UpstreamError::Reset {
                endpoint: "127.0.0.1:1".into(),
                source: Box::new(h2::Error::from(h2::Reason::REFUSED_STREAM)),
            })
        };
        let default = weft_api::mesh::RetryPolicy::istio_default().retry_on;
        assert!(retriable_error(&default, &err()));
        let only_5xx_codes = weft_api::mesh::RetryOn::parse("503");
        assert!(!retriable_error(&only_5xx_codes, &err()));
    }

    #[test]
    fn backoff_is_bounded() {
        for attempt in 1..20 {
            assert!(backoff(Duration::from_millis(25), attempt) <= Duration::from_millis(250));
        }
    }

    type BodyErrorBox = Box<dyn std::error::Error + Send + Sync>;
}
