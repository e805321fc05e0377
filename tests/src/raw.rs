//! Raw HTTP/1.1 over a plain TCP socket: the request target goes on the wire byte for byte
//! (HTTP client libraries normalize or reject targets like `//admin` or `/a\..\b`), and a
//! connection closed without any response is told apart from an HTTP error.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a raw exchange may take before it counts as hung.
const RAW_DEADLINE: Duration = Duration::from_secs(10);

/// A response read from a raw connection.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET <target> HTTP/1.1` with `Host: host`, `Connection: close` and `extra` header lines
/// (`"Name: value"`), sent as written.
pub async fn raw_get(
    addr: SocketAddr,
    target: &str,
    host: &str,
    extra: &[&str],
) -> anyhow::Result<Option<RawResponse>> {
    let mut request = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for line in extra {
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    raw_exchange(addr, request.as_bytes()).await
}

/// Writes `request` on a new connection and reads until the server closes it. `Ok(None)` when
/// the server closed (or reset) the connection without sending a byte.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> anyhow::Result<Option<RawResponse>> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        // A server that closes at once may make the write fail; what it answered still counts.
        let _ = stream.write_all(request).await;
        let mut received = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(err) if received.is_empty() && is_closed(&err) => break,
                Err(err) => return Err(err).context("reading the response"),
            }
        }
        anyhow::Ok(received)
    };
    let received = tokio::time::timeout(RAW_DEADLINE, exchange)
        .await
        .with_context(|| format!("no end of response from {addr} within {RAW_DEADLINE:?}"))??;
    if received.is_empty() {
        return Ok(None);
    }
    parse(&received).map(Some)
}

fn is_closed(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    matches!(err.kind(), ConnectionReset | ConnectionAborted | BrokenPipe)
}

fn parse(received: &[u8]) -> anyhow::Result<RawResponse> {
    let shown = || String::from_utf8_lossy(received).into_owned();
    let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
        bail!("incomplete response head: {:?}", shown());
    };
    let head = String::from_utf8_lossy(&received[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?} in {:?}", shown()))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &received[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest).with_context(|| format!("bad chunked body in {:?}", shown()))?
    } else {
        rest.to_vec()
    };
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("chunk size line")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).context("chunk size")?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest.get(..size).context("truncated chunk")?;
        body.extend_from_slice(chunk);
        rest = rest.get(size + 2..).context("truncated chunk end")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_content_length_response() {
        let r = parse(
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 19\r\nX-A: b\r\n\r\nRBAC: access denied",
        )
        .unwrap();
        assert_eq!(r.status, 403);
        assert_eq!(r.header("x-a"), Some("b"));
        assert_eq!(r.text(), "RBAC: access denied");
    }

    #[test]
    fn parses_a_chunked_response() {
        let r = parse(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "abcde");
    }
}
