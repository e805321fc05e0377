//! Connections to the control plane: TCP, then TLS with the configuration the caller picks
//! (server verification only for a bootstrap, mTLS with the workload certificate otherwise),
//! then HTTP/2 for tonic. One fresh connection per exchange, so every reconnection presents the
//! current certificate.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tonic::transport::{Channel, Endpoint};

use super::PlaneError;
use crate::tls::connector::server_name;

/// How long TCP connect plus TLS handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 pings on an idle stream, so a control plane that vanished without closing the
/// connection (a partition, a frozen host) is noticed.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Dials the control plane.
#[derive(Debug, Clone)]
pub(super) struct Dialer {
    address: Arc<str>,
    server_name: ServerName<'static>,
    endpoint: Endpoint,
}

/// An HTTP/2 channel to the control plane, and the local address of its TCP connection.
pub(super) struct Connected {
    pub channel: Channel,
    pub local: Option<SocketAddr>,
}

impl Dialer {
    /// A dialer for `address` (`HOST:PORT`).
    pub fn new(address: &str) -> Result<Dialer, PlaneError> {
        let bad = || PlaneError::Address {
            address: address.to_string(),
        };
        let uri: Uri = format!("http://{address}").parse().map_err(|_| bad())?;
        let authority = uri.authority().ok_or_else(bad)?;
        if authority.port_u16().is_none() || authority.as_str() != address || address.contains('@')
        {
            return Err(bad());
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let endpoint = Endpoint::from(uri.clone())
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        Ok(Dialer {
            address: Arc::from(address),
            // The verifier checks the SPIFFE ID, not the name; the name is only SNI.
            server_name: server_name(host),
            endpoint,
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// Connects with `tls` (whose ALPN must offer `h2`).
    pub async fn connect(&self, tls: ClientConfig) -> Result<Connected, PlaneError> {
        let local = Arc::new(Mutex::new(None));
        let connector = TlsDial {
            address: self.address.clone(),
            server_name: self.server_name.clone(),
            tls: Arc::new(tls),
            local: local.clone(),
        };
        let channel = self
            .endpoint
            .connect_with_connector(connector)
            .await
            .map_err(|source| PlaneError::Connect {
                address: self.address.to_string(),
                source,
            })?;
        let local = *local.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(Connected { channel, local })
    }
}

/// The connector tonic calls for each connection it makes.
#[derive(Clone)]
struct TlsDial {
    address: Arc<str>,
    server_name: ServerName<'static>,
    tls: Arc<ClientConfig>,
    /// Where the last connection came from (the proxy's own address towards the control
    /// plane).
    local: Arc<Mutex<Option<SocketAddr>>>,
}

type Dialed = TokioIo<TlsStream<TcpStream>>;

impl tower_service::Service<Uri> for TlsDial {
    type Response = Dialed;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Dialed>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let dial = self.clone();
        Box::pin(async move {
            let tcp = TcpStream::connect(&*dial.address).await?;
            tcp.set_nodelay(true)?;
            if let Ok(addr) = tcp.local_addr() {
                *dial.local.lock().unwrap_or_else(PoisonError::into_inner) = Some(addr);
            }
            let tls = tokio_rustls::TlsConnector::from(dial.tls)
                .connect(dial.server_name, tcp)
                .await?;
            Ok(TokioIo::new(tls))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_need_a_host_and_a_port() {
        for ok in ["127.0.0.1:15012", "control.weft.local:15012", "[::1]:15012"] {
            let dialer = Dialer::new(ok).unwrap();
            assert_eq!(dialer.address(), ok);
        }
        for bad in [
            "",
            "127.0.0.1",
            "http://127.0.0.1:15012",
            "127.0.0.1:15012/x",
            "host:port",
            "user@host:1",
        ] {
            assert!(
                matches!(Dialer::new(bad), Err(PlaneError::Address { .. })),
                "{bad:?}"
            );
        }
    }
}
