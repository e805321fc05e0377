//! Turns one request into its response: the JSON echo, filler bytes, or an `/__echo/` endpoint.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::Serialize;
use tracing::debug;

use crate::body::ResponseBody;
use crate::call::{CallReport, Caller};
use crate::controls::Controls;
use crate::{CallConfig, EchoConfig};

/// The header naming the server that answered; on every response.
const X_ECHO_NAME: HeaderName = HeaderName::from_static("x-echo-name");
/// The server's own endpoints live under this path.
const ADMIN_ROOT: &str = "/__echo";

/// What every request handler shares: the configuration and the request count.
#[derive(Debug)]
pub(crate) struct EchoState {
    config: EchoConfig,
    name_header: HeaderValue,
    /// The calls made for each echoed request.
    caller: Arc<Caller>,
    /// Requests received outside `/__echo/`, counted on arrival.
    count: AtomicU64,
}

/// Why a configuration cannot be served.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("echo name {0:?} cannot be sent as a header value")]
    Name(String, #[source] http::header::InvalidHeaderValue),
    #[error("status {0} is informational and cannot end a response")]
    InformationalStatus(StatusCode),
    #[error("call URL {0} must be an absolute http:// URL with a host")]
    CallUrl(Uri),
}

impl EchoState {
    pub(crate) fn new(config: EchoConfig, calls: CallConfig) -> Result<Self, ConfigError> {
        let name_header = HeaderValue::from_str(&config.name)
            .map_err(|err| ConfigError::Name(config.name.clone(), err))?;
        if let Some(status) = config.status.filter(StatusCode::is_informational) {
            return Err(ConfigError::InformationalStatus(status));
        }
        if let Some(url) = calls.urls.iter().find(|u| !is_callable(u)) {
            return Err(ConfigError::CallUrl(url.clone()));
        }
        let caller = Caller::new(calls.urls, calls.proxy, calls.timeout);
        Ok(Self {
            config,
            name_header,
            caller: Arc::new(caller),
            count: AtomicU64::new(0),
        })
    }
}

/// The JSON description of a request, the body of every echo response.
#[derive(Debug, Serialize)]
struct EchoReply<'a> {
    name: &'a str,
    method: &'a str,
    path: &'a str,
    host: String,
    protocol: &'static str,
    headers: BTreeMap<&'a str, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    body_bytes: u64,
    /// The answers of the configured calls (absent when the echo makes none).
    #[serde(skip_serializing_if = "Option::is_none")]
    calls: Option<Vec<CallReport>>,
}

/// A call URL must say `http://HOST...`: TLS is the mesh's job, not the app's.
fn is_callable(url: &Uri) -> bool {
    url.scheme_str() == Some("http") && url.host().is_some_and(|h| !h.is_empty())
}

/// Answers one request. Never fails: every problem becomes a JSON error response.
pub(crate) async fn handle(
    state: Arc<EchoState>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let method = req.method().clone();
    let path = path_and_query(req.uri()).to_owned();
    let protocol = protocol_name(req.version());
    let mut response = if is_admin(req.uri().path()) {
        admin(&state, &req)
    } else {
        echo(&state, req).await
    };
    finish(&state, &method, &mut response);
    debug!(%method, %path, protocol, status = response.status().as_u16(), "request");
    Ok(response)
}

/// Adds `x-echo-name` and `content-length` (on both protocols, even for an empty body), and
/// drops the body where none may be sent: HEAD keeps the length the body would have had.
fn finish(state: &EchoState, method: &Method, response: &mut Response<ResponseBody>) {
    response
        .headers_mut()
        .insert(X_ECHO_NAME, state.name_header.clone());
    let status = response.status();
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        *response.body_mut() = ResponseBody::empty();
        return;
    }
    let len = response.body().len();
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(len));
    if method == Method::HEAD {
        *response.body_mut() = ResponseBody::empty();
    }
}

fn is_admin(path: &str) -> bool {
    path.strip_prefix(ADMIN_ROOT)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The `/__echo/` endpoints: exempt from controls and from the count.
fn admin(state: &EchoState, req: &Request<Incoming>) -> Response<ResponseBody> {
    match req.uri().path() {
        "/__echo/stats" if matches!(*req.method(), Method::GET | Method::HEAD) => {
            let count = state.count.load(Ordering::Relaxed);
            json_response(StatusCode::OK, &serde_json::json!({ "count": count }))
        }
        "/__echo/stats" => {
            let mut response = error_response(StatusCode::METHOD_NOT_ALLOWED, "use GET or HEAD");
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        }
        other => error_response(
            StatusCode::NOT_FOUND,
            &format!("unknown echo endpoint {other}"),
        ),
    }
}

/// Counts the request, applies its controls and describes it.
async fn echo(state: &EchoState, req: Request<Incoming>) -> Response<ResponseBody> {
    state.count.fetch_add(1, Ordering::Relaxed);
    let controls = match Controls::from_query(req.uri().query()) {
        Ok(controls) => controls,
        Err(err) => return error_response(StatusCode::BAD_REQUEST, &err.to_string()),
    };
    let (parts, body) = req.into_parts();
    let body_bytes = match body_len(body).await {
        Ok(len) => len,
        Err(err) => {
            debug!(error = %err, "reading request body failed");
            return error_response(StatusCode::BAD_REQUEST, "failed to read the request body");
        }
    };
    if let Some(delay) = controls.delay {
        tokio::time::sleep(delay).await;
    }
    let status = controls
        .status
        .or(state.config.status)
        .unwrap_or(StatusCode::OK);
    match controls.size {
        Some(size) => filler_response(status, size),
        None => {
            let calls = if state.caller.is_empty() {
                None
            } else {
                Some(state.caller.call_all(&parts.headers).await)
            };
            let mut reply = describe(&state.config, &parts, body_bytes);
            reply.calls = calls;
            json_response(status, &reply)
        }
    }
}

/// Reads the request body to its end, keeping only its length.
async fn body_len(mut body: Incoming) -> Result<u64, hyper::Error> {
    let mut len = 0u64;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            len = len.saturating_add(data.len() as u64);
        }
    }
    Ok(len)
}

fn describe<'a>(config: &'a EchoConfig, parts: &'a Parts, body_bytes: u64) -> EchoReply<'a> {
    let host = match (parts.headers.get(HOST), parts.uri.authority()) {
        (Some(host), _) => String::from_utf8_lossy(host.as_bytes()).into_owned(),
        (None, Some(authority)) => authority.to_string(),
        (None, None) => String::new(),
    };
    let headers = parts
        .headers
        .keys()
        .map(|name| {
            let values: Vec<_> = parts
                .headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()))
                .collect();
            (name.as_str(), values.join(", "))
        })
        .collect();
    EchoReply {
        name: &config.name,
        method: parts.method.as_str(),
        path: path_and_query(&parts.uri),
        host,
        protocol: protocol_name(parts.version),
        headers,
        text: config.text.as_deref(),
        body_bytes,
        calls: None,
    }
}

fn path_and_query(uri: &Uri) -> &str {
    uri.path_and_query().map_or("/", |pq| pq.as_str())
}

fn protocol_name(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "unknown",
    }
}

fn filler_response(status: StatusCode, size: u64) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::filler(size));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

fn json_response(status: StatusCode, value: &impl Serialize) -> Response<ResponseBody> {
    let (status, body, content_type) = match serde_json::to_vec(value) {
        Ok(json) => (status, json, "application/json"),
        Err(err) => {
            debug!(error = %err, "serializing the response failed");
            let message = b"failed to serialize the response".to_vec();
            (StatusCode::INTERNAL_SERVER_ERROR, message, "text/plain")
        }
    };
    let mut response = Response::new(ResponseBody::bytes(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn error_response(status: StatusCode, message: &str) -> Response<ResponseBody> {
    json_response(status, &serde_json::json!({ "error": message }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_paths_are_the_root_and_below() {
        assert!(is_admin("/__echo"));
        assert!(is_admin("/__echo/stats"));
        assert!(is_admin("/__echo/"));
        assert!(!is_admin("/__echoes"));
        assert!(!is_admin("/x/__echo/stats"));
    }

    #[test]
    fn names_with_control_characters_are_rejected() {
        let config = EchoConfig {
            name: "a\nb".into(),
            ..EchoConfig::default()
        };
        assert!(matches!(
            EchoState::new(config, CallConfig::default()),
            Err(ConfigError::Name(..))
        ));
    }

    #[test]
    fn informational_configured_statuses_are_rejected() {
        let config = EchoConfig {
            status: Some(StatusCode::CONTINUE),
            ..EchoConfig::default()
        };
        assert!(matches!(
            EchoState::new(config, CallConfig::default()),
            Err(ConfigError::InformationalStatus(_))
        ));
    }
}
