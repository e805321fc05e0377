//! The admin API (Istio's 15014), HTTP/1.1: `GET /ready` is open; everything under `/api/`
//! needs `Authorization: Bearer <admin.token>`.
//!
//! | method and path | what |
//! |---|---|
//! | `POST /api/apply?namespace=NS` | apply YAML/JSON documents, or `{"files": [{"name", "content"}]}` with content type `application/vnd.weft.files+json`; all or nothing |
//! | `GET /api/resources?kind=&namespace=&name=` | the effective config |
//! | `DELETE /api/resources/<Kind>/<namespace>/<name>` | delete an applied resource |
//! | `GET /api/proxies` | connected proxies and their sync state |
//! | `POST /api/tokens` | `{"namespace", "serviceAccount"}` → `{"token"}` |
//! | `GET /api/describe?service=&namespace=` | what applies to a service |

mod handlers;
mod query;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::state::ControlState;
use crate::tokens::secrets_equal;

/// The largest request body accepted (an apply of many files).
const MAX_BODY: usize = 16 * 1024 * 1024;
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// The media type of a multi-file apply.
pub const FILES_CONTENT_TYPE: &str = "application/vnd.weft.files+json";

/// Serves the admin API until `shutdown` resolves.
pub async fn serve_admin(
    listener: TcpListener,
    state: Arc<ControlState>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(stream, peer, state.clone()));
                }
                Err(error) => {
                    tracing::warn!(%error, "admin accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        connections.abort_all();
    }
}

async fn serve_connection(stream: TcpStream, peer: SocketAddr, state: Arc<ControlState>) {
    tracing::debug!(%peer, "admin connection");
    let service = service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(state, req).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    if let Err(error) = builder
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(%peer, %error, "admin connection ended");
    }
}

/// A request's parts the handlers use.
pub(crate) struct ApiRequest {
    pub method: Method,
    pub path: String,
    pub query: query::Query,
    pub content_type: String,
    pub body: Bytes,
}

async fn handle(state: Arc<ControlState>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    if path == "/ready" || path == "/healthz/ready" {
        return text(StatusCode::OK, "ready\n");
    }
    if !authorized(&state, &req) {
        return handlers::error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong admin token (Authorization: Bearer <data-dir>/admin.token)",
        );
    }
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return handlers::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body unreadable or too large",
            );
        }
    };
    let request = ApiRequest {
        method: parts.method,
        query: query::Query::parse(parts.uri.query().unwrap_or("")),
        path,
        content_type: parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        body,
    };
    // Applying writes files under the state lock: keep it off the async workers.
    tokio::task::spawn_blocking(move || handlers::route(&state, request))
        .await
        .unwrap_or_else(|_| {
            handlers::error(StatusCode::INTERNAL_SERVER_ERROR, "request handler failed")
        })
}

fn authorized(state: &ControlState, req: &Request<Incoming>) -> bool {
    req.headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| secrets_equal(token.trim(), &state.admin_token))
}

pub(crate) fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
