//! The calls an echo makes while answering (`--call`): a GET to each configured URL, the
//! incoming request's identity and tracing headers forwarded as Istio's bookinfo services do,
//! the answers reported in the reply. A failed call is reported, never fatal.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderName, Method, Request, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tracing::debug;

use crate::proxy::ProxyConfig;

/// How long one call may take when no timeout is configured.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Answers larger than this are reported as failed calls.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Request headers copied to every call: who the user is, and the trace the request belongs to.
const FORWARDED: &[&str] = &[
    "end-user",
    "user-agent",
    "cookie",
    "authorization",
    "x-request-id",
    "traceparent",
    "tracestate",
    "b3",
];
/// Header name prefixes copied to every call (Zipkin's B3 headers).
const FORWARDED_PREFIXES: &[&str] = &["x-b3-"];

/// What the echo calls and how.
#[derive(Debug)]
pub(crate) struct Caller {
    urls: Vec<Uri>,
    proxy: ProxyConfig,
    timeout: Duration,
}

/// One call's outcome, as reported under `"calls"` in the reply.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CallReport {
    url: String,
    /// The answer's status, or 0 when no answer came.
    status: u16,
    /// The answer's body: parsed JSON when it is JSON, else text; `null` without an answer.
    body: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Why a call brought no usable answer.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("connecting to {target} failed: {source}")]
    Connect {
        target: String,
        source: std::io::Error,
    },
    #[error("HTTP exchange failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("building the request failed: {0}")]
    Request(#[from] http::Error),
    #[error("reading the answer failed: {0}")]
    Body(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the URL has no host")]
    NoHost,
}

impl Caller {
    pub(crate) fn new(urls: Vec<Uri>, proxy: ProxyConfig, timeout: Option<Duration>) -> Self {
        Self {
            urls,
            proxy,
            timeout: timeout.unwrap_or(DEFAULT_CALL_TIMEOUT),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// Calls every URL at once and reports the outcomes in the configured order.
    pub(crate) async fn call_all(self: &Arc<Self>, incoming: &HeaderMap) -> Vec<CallReport> {
        let headers = Arc::new(forwarded_headers(incoming));
        let mut calls = JoinSet::new();
        for (i, url) in self.urls.iter().enumerate() {
            let caller = self.clone();
            let url = url.clone();
            let headers = headers.clone();
            calls.spawn(async move { (i, caller.report(url, &headers).await) });
        }
        let mut reports: Vec<(usize, CallReport)> = Vec::with_capacity(self.urls.len());
        while let Some(joined) = calls.join_next().await {
            match joined {
                Ok(report) => reports.push(report),
                Err(err) => debug!(error = %err, "call task failed"),
            }
        }
        reports.sort_by_key(|(i, _)| *i);
        reports.into_iter().map(|(_, r)| r).collect()
    }

    async fn report(&self, url: Uri, headers: &HeaderMap) -> CallReport {
        let outcome = tokio::time::timeout(self.timeout, self.call(&url, headers))
            .await
            .unwrap_or(Err(CallError::Timeout(self.timeout)));
        match outcome {
            Ok((status, body)) => CallReport {
                url: url.to_string(),
                status,
                body,
                error: None,
            },
            Err(err) => {
                debug!(%url, error = %err, "call failed");
                CallReport {
                    url: url.to_string(),
                    status: 0,
                    body: serde_json::Value::Null,
                    error: Some(err.to_string()),
                }
            }
        }
    }

    /// One GET on a fresh HTTP/1.1 connection: to the proxy with the absolute URL, or to the
    /// URL's host with its path.
    async fn call(
        &self,
        url: &Uri,
        headers: &HeaderMap,
    ) -> Result<(u16, serde_json::Value), CallError> {
        let authority = url.authority().ok_or(CallError::NoHost)?;
        let (target, target_uri) = match self.proxy.proxy_for(url) {
            Some(proxy) => (
                format!("{}:{}", proxy.host(), proxy.port_u16().unwrap_or(80)),
                url.clone(),
            ),
            None => (
                format!(
                    "{}:{}",
                    authority.host(),
                    authority.port_u16().unwrap_or(80)
                ),
                url.path_and_query()
                    .map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone())),
            ),
        };
        let stream = TcpStream::connect(&target)
            .await
            .map_err(|source| CallError::Connect { target, source })?;
        let (mut send, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                debug!(error = %err, "call connection failed");
            }
        });
        let mut request = Request::builder()
            .method(Method::GET)
            .uri(target_uri)
            .header(HOST, authority.as_str())
            .body(Empty::<Bytes>::new())?;
        request.headers_mut().extend(headers.clone());
        let response = send.send_request(request).await?;
        let status = response.status().as_u16();
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|err| CallError::Body(err.to_string()))?
            .to_bytes();
        Ok((status, answer_body(&body, is_json)))
    }
}

/// Parsed JSON when the answer is JSON, else its text.
fn answer_body(body: &[u8], is_json: bool) -> serde_json::Value {
    let looks_json = is_json || body.first().is_some_and(|b| matches!(b, b'{' | b'['));
    if looks_json && let Ok(value) = serde_json::from_slice(body) {
        return value;
    }
    serde_json::Value::String(String::from_utf8_lossy(body).into_owned())
}

/// The incoming headers a call carries on.
fn forwarded_headers(incoming: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in incoming {
        if is_forwarded(name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

fn is_forwarded(name: &HeaderName) -> bool {
    let name = name.as_str();
    FORWARDED.contains(&name) || FORWARDED_PREFIXES.iter().any(|p| name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_identity_and_trace_headers_only() {
        let mut incoming = HeaderMap::new();
        for (k, v) in [
            ("end-user", "jason"),
            ("user-agent", "curl/8"),
            ("cookie", "a=b"),
            ("authorization", "Bearer x"),
            ("x-request-id", "id-1"),
            ("traceparent", "00-abc-def-01"),
            ("tracestate", "k=v"),
            ("x-b3-traceid", "t"),
            ("x-b3-spanid", "s"),
            ("x-b3-sampled", "1"),
            ("host", "productpage"),
            ("content-length", "3"),
            ("x-other", "no"),
        ] {
            incoming.append(HeaderName::from_static(k), v.parse().unwrap());
        }
        let out = forwarded_headers(&incoming);
        assert_eq!(out.len(), 10, "{out:?}");
        assert_eq!(out["end-user"], "jason");
        assert_eq!(out["x-b3-sampled"], "1");
        for dropped in ["host", "content-length", "x-other"] {
            assert!(!out.contains_key(dropped), "{dropped}");
        }
    }

    #[test]
    fn answers_are_json_when_they_parse_else_text() {
        assert_eq!(
            answer_body(br#"{"name":"r"}"#, true),
            serde_json::json!({"name": "r"})
        );
        assert_eq!(answer_body(b"[1]", false), serde_json::json!([1]));
        assert_eq!(answer_body(b"{oops", true), serde_json::json!("{oops"));
        assert_eq!(answer_body(b"plain", false), serde_json::json!("plain"));
        assert_eq!(answer_body(b"", false), serde_json::json!(""));
    }
}
