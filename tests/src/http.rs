//! A minimal HTTP client for tests: one connection, HTTP/1.1 or HTTP/2 with prior knowledge
//! (h2c), several requests in turn, whole responses back.

use std::net::SocketAddr;

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

/// One client connection. Requests on it reuse the connection (keep-alive or one h2 session).
pub struct Client {
    addr: SocketAddr,
    sender: Sender,
}

enum Sender {
    Http1(http1::SendRequest<Full<Bytes>>),
    Http2(http2::SendRequest<Full<Bytes>>),
}

impl Client {
    /// Connects to `addr` speaking `version`: [`Version::HTTP_2`] means h2c with prior
    /// knowledge, anything else HTTP/1.1.
    pub async fn connect(addr: SocketAddr, version: Version) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        let io = TokioIo::new(stream);
        let sender = if version == Version::HTTP_2 {
            let (send, conn) = http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(conn);
            Sender::Http2(send)
        } else {
            let (send, conn) = http1::handshake(io).await?;
            tokio::spawn(conn);
            Sender::Http1(send)
        };
        Ok(Self { addr, sender })
    }

    /// A request to `path_and_query` on this server, with the `Host` (HTTP/1.1) or
    /// `:authority` (HTTP/2) set to its address; add headers and a body, then [`send`](Self::send).
    pub fn request(&self, method: Method, path_and_query: &str) -> http::request::Builder {
        let builder = Request::builder().method(method);
        match self.sender {
            Sender::Http1(_) => builder
                .uri(path_and_query)
                .header(http::header::HOST, self.addr.to_string()),
            Sender::Http2(_) => builder
                .uri(format!("http://{}{path_and_query}", self.addr))
                .version(Version::HTTP_2),
        }
    }

    /// Sends a request and reads the whole response.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> anyhow::Result<Reply> {
        let uri = req.uri().clone();
        let response = match &mut self.sender {
            Sender::Http1(send) => send.send_request(req).await,
            Sender::Http2(send) => send.send_request(req).await,
        }
        .with_context(|| format!("request to {uri} failed"))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .with_context(|| format!("reading the body from {uri} failed"))?
            .to_bytes();
        Ok(Reply {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body,
        })
    }

    /// A request without a body.
    pub async fn call(&mut self, method: Method, path_and_query: &str) -> anyhow::Result<Reply> {
        let req = self.request(method, path_and_query).body(Full::default())?;
        self.send(req).await
    }

    pub async fn get(&mut self, path_and_query: &str) -> anyhow::Result<Reply> {
        self.call(Method::GET, path_and_query).await
    }
}

/// One-shot GET on a fresh connection.
pub async fn get(
    addr: SocketAddr,
    version: Version,
    path_and_query: &str,
) -> anyhow::Result<Reply> {
    Client::connect(addr, version)
        .await?
        .get(path_and_query)
        .await
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// A header's value as text; `None` when absent or not visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "body is not JSON: {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}
