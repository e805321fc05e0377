//! The outbound listener: where applications send their requests (as an HTTP proxy with
//! absolute-form URIs, or with a Host header naming the service).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use super::http::{ConnInfo, ProxyState, handle};

/// Serves the outbound listener until `shutdown` resolves, then drains open connections.
pub async fn serve_outbound(
    listener: TcpListener,
    state: Arc<ProxyState>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let local = listener.local_addr().ok();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(err) => {
                        tracing::warn!(%err, "accept failed");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let conn = ConnInfo { peer, local: local.unwrap_or(peer) };
                serve_connection(stream, conn, state.clone(), &graceful);
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {
            tracing::warn!("connections still open after 5s; closing");
        }
    }
}

fn serve_connection(
    stream: tokio::net::TcpStream,
    conn: ConnInfo,
    state: Arc<ProxyState>,
    graceful: &GracefulShutdown,
) {
    let service = service_fn(move |req| handle(state.clone(), conn, req));
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), service)
        .into_owned();
    let watched = graceful.watch(connection);
    tokio::spawn(async move {
        if let Err(err) = watched.await {
            tracing::debug!(peer = %conn.peer, %err, "connection ended with an error");
        }
    });
}

/// The address a listener is bound to, for the `listening <name> on IP:PORT` line.
pub fn describe(name: &str, addr: SocketAddr) -> String {
    format!("listening {name} on {addr}")
}
