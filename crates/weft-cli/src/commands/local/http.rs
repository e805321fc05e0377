//! A small HTTP/1.1 client for the local mode: the control plane's admin API, a proxy's
//! `/ready`, and the demo's traffic. One keep-alive connection per [`Connection`].

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::header::HOST;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A whole response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "the answer is not JSON: {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 connection, reused for requests in turn; reconnects when the server closed it.
pub struct Connection {
    addr: SocketAddr,
    sender: Option<http1::SendRequest<Full<Bytes>>>,
}

impl Connection {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, sender: None }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    async fn sender(&mut self) -> anyhow::Result<&mut http1::SendRequest<Full<Bytes>>> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(self.addr)
                .await
                .with_context(|| format!("cannot connect to {}", self.addr))?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                if let Err(err) = conn.await {
                    tracing::debug!(error = %err, "client connection ended");
                }
            });
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .context("no connection (this is a bug)")
    }

    /// Sends `request` (a `Host` header is added when missing) and reads the whole answer.
    pub async fn send(&mut self, mut request: Request<Full<Bytes>>) -> anyhow::Result<Reply> {
        if !request.headers().contains_key(HOST) {
            let host = self.addr.to_string().parse()?;
            request.headers_mut().insert(HOST, host);
        }
        let uri = request.uri().clone();
        let sender = self.sender().await?;
        sender.ready().await?;
        let response = match sender.send_request(request).await {
            Ok(response) => response,
            Err(err) => {
                self.sender = None;
                return Err(err).with_context(|| format!("request {uri} to {} failed", self.addr));
            }
        };
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .with_context(|| format!("reading the answer to {uri} failed"))?
            .to_bytes();
        Ok(Reply {
            status: parts.status,
            body,
        })
    }
}

/// One request on a fresh connection, bounded by `timeout`.
pub async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
    timeout: Duration,
) -> anyhow::Result<Reply> {
    let mut builder = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(Full::new(body))?;
    let exchange = async { Connection::new(addr).send(request).await };
    tokio::time::timeout(timeout, exchange)
        .await
        .with_context(|| format!("no answer from {addr}{path} within {timeout:?}"))?
}

/// `GET path` on a fresh connection.
pub async fn get(addr: SocketAddr, path: &str, timeout: Duration) -> anyhow::Result<Reply> {
    request(addr, Method::GET, path, &[], Bytes::new(), timeout).await
}
