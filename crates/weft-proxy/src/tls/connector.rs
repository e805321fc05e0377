//! Dialing upstream endpoints over TLS, as a `hyper-util` connector: TCP (the pool's connect
//! timeout, `TCP_NODELAY`), then a rustls handshake, reporting ALPN `h2` to the client so it
//! speaks HTTP/2 over the connection and multiplexes requests on it.
//!
//! Two kinds of target:
//! - [`TlsTarget::Mesh`]: Istio mutual TLS with the workload's current identity (re-read after
//!   a rotation: the client configuration is rebuilt when the identity's generation changes),
//!   verifying the server's SPIFFE ID against the expected ones (the endpoint's service
//!   account, else the ServiceEntry's `subjectAltNames`, else any ID of the trust domain).
//! - [`TlsTarget::Origin`]: TLS origination (`SIMPLE`/`MUTUAL`) with a fixed configuration
//!   built from the DestinationRule's files.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use weft_identity::SpiffeId;
use weft_identity::verify::ExpectedIdentity;

use super::identity::IdentityStore;
use crate::upstream::BoxError;

/// Where a TLS connection goes and how it is verified.
pub enum TlsTarget {
    Mesh {
        identity: Arc<IdentityStore>,
        /// Accepted server identities; empty means any identity of our trust domain.
        expected: Vec<SpiffeId>,
        /// SNI sent in the ClientHello (Istio: `outbound_.PORT_.SUBSET_.HOST`).
        server_name: ServerName<'static>,
        alpn: &'static [u8],
        /// The client configuration for the identity generation it was built from.
        cache: Mutex<Option<(u64, Arc<ClientConfig>)>>,
    },
    Origin {
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
    },
}

impl std::fmt::Debug for TlsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsTarget::Mesh {
                expected,
                server_name,
                ..
            } => f
                .debug_struct("Mesh")
                .field("expected", expected)
                .field("server_name", server_name)
                .finish_non_exhaustive(),
            TlsTarget::Origin { server_name, .. } => f
                .debug_struct("Origin")
                .field("server_name", server_name)
                .finish_non_exhaustive(),
        }
    }
}

impl TlsTarget {
    /// A mesh mTLS target.
    pub fn mesh(
        identity: Arc<IdentityStore>,
        expected: Vec<SpiffeId>,
        sni: &str,
        alpn: &'static [u8],
    ) -> TlsTarget {
        TlsTarget::Mesh {
            identity,
            expected,
            server_name: server_name(sni),
            alpn,
            cache: Mutex::new(None),
        }
    }

    /// Runs the client handshake over an established TCP connection.
    pub async fn handshake(
        &self,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, BoxError> {
        let (config, name) = self.config()?;
        Ok(tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await?)
    }

    fn config(&self) -> Result<(Arc<ClientConfig>, ServerName<'static>), BoxError> {
        match self {
            TlsTarget::Origin {
                config,
                server_name,
            } => Ok((config.clone(), server_name.clone())),
            TlsTarget::Mesh {
                identity,
                expected,
                server_name,
                alpn,
                cache,
            } => {
                let current = identity.current();
                let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some((generation, config)) = cache.as_ref()
                    && *generation == current.generation
                {
                    return Ok((config.clone(), server_name.clone()));
                }
                let expected = if expected.is_empty() {
                    ExpectedIdentity::TrustDomain(current.trust_domain().to_string())
                } else {
                    ExpectedIdentity::OneOf(expected.clone())
                };
                let config = current.client_config(expected, alpn)?;
                *cache = Some((current.generation, config.clone()));
                Ok((config, server_name.clone()))
            }
        }
    }
}

/// A name for SNI: `sni` when it is a valid DNS name, else a fixed placeholder (the mesh
/// verifier checks SPIFFE IDs, not names).
pub fn server_name(sni: &str) -> ServerName<'static> {
    ServerName::try_from(sni.to_string()).unwrap_or_else(|_| {
        ServerName::try_from("weft.mesh")
            .unwrap_or(ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()))
    })
}

/// The connector of one TLS target.
#[derive(Clone, Debug)]
pub struct TlsConnector {
    http: HttpConnector,
    target: Arc<TlsTarget>,
}

impl TlsConnector {
    /// `http` dials TCP (its timeouts and options apply); it must accept `https` URIs.
    pub fn new(mut http: HttpConnector, target: Arc<TlsTarget>) -> TlsConnector {
        http.enforce_http(false);
        TlsConnector { http, target }
    }
}

impl tower_service::Service<Uri> for TlsConnector {
    type Response = TlsConnection;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<TlsConnection, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.http.call(uri);
        let target = self.target.clone();
        Box::pin(async move {
            let tcp = connecting.await?.into_inner();
            let tls = target.handshake(tcp).await?;
            Ok(TlsConnection {
                io: TokioIo::new(tls),
            })
        })
    }
}

/// An established client TLS connection.
#[derive(Debug)]
pub struct TlsConnection {
    io: TokioIo<tokio_rustls::client::TlsStream<TcpStream>>,
}

impl Connection for TlsConnection {
    fn connected(&self) -> Connected {
        let (tcp, session) = self.io.inner().get_ref();
        let connected = tcp.connected();
        if session.alpn_protocol() == Some(super::ALPN_H2) {
            connected.negotiated_h2()
        } else {
            connected
        }
    }
}

impl hyper::rt::Read for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}
