//! The gRPC port (Istio's 15012): TLS 1.3 with the control plane's SPIFFE certificate (a client
//! certificate is optional and, when presented, becomes the caller's identity), HTTP/2 served by
//! hyper, requests routed by path to the generated `Discovery` and `Certificates` servers.

mod auth;
mod certificates;
mod discovery;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tonic::codegen::Service;
use weft_proto::certificates_server::CertificatesServer;
use weft_proto::discovery_server::DiscoveryServer;

pub use auth::PeerIdentity;
use certificates::CertificatesService;
use discovery::DiscoveryService;

use crate::state::ControlState;

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 pings that detect a proxy that went away without closing its stream.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
const CERTIFICATES_PREFIX: &str = "/weft.mesh.v1.Certificates/";

/// Serves gRPC on `listener` until `shutdown` resolves; open streams are then dropped.
pub async fn serve_grpc(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<ControlState>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let acceptor = TlsAcceptor::from(tls);
    let discovery = DiscoveryServer::new(DiscoveryService::new(state.clone()));
    let certificates = CertificatesServer::new(CertificatesService::new(state));
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::debug!(%peer, "grpc connection");
                    connections.spawn(serve_connection(
                        stream,
                        acceptor.clone(),
                        discovery.clone(),
                        certificates.clone(),
                    ));
                }
                Err(error) => {
                    tracing::warn!(%error, "grpc accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.abort_all();
}

async fn serve_connection(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    discovery: DiscoveryServer<DiscoveryService>,
    certificates: CertificatesServer<CertificatesService>,
) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(%error, "grpc TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!("grpc TLS handshake timed out");
            return;
        }
    };
    let peer = PeerIdentity::of(tls.get_ref().1);
    let service = service_fn(move |mut req: http::Request<Incoming>| {
        req.extensions_mut().insert(peer.clone());
        let mut discovery = discovery.clone();
        let mut certificates = certificates.clone();
        async move {
            let response = if req.uri().path().starts_with(CERTIFICATES_PREFIX) {
                certificates.call(req).await
            } else {
                discovery.call(req).await
            };
            Ok::<_, Infallible>(match response {
                Ok(r) => r,
                Err(never) => match never {},
            })
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new()).http2_only();
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT);
    if let Err(error) = builder.serve_connection(TokioIo::new(tls), service).await {
        tracing::debug!(%error, "grpc connection ended");
    }
}
