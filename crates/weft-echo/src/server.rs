//! The accept loop: one task per connection, HTTP/1.1 and h2c on the same listener, and a
//! graceful, bounded stop.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::handler::{self, EchoState};
use crate::{CallConfig, EchoConfig};

/// How long in-flight connections may take to finish once shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Pause after an accept error that is not about one connection (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves HTTP/1.1 and HTTP/2 prior-knowledge (h2c) on the same listener
/// (`hyper_util::server::conn::auto`) until `shutdown` resolves; then stops accepting and lets
/// in-flight connections finish (graceful, bounded ~5s).
///
/// Fails at once, before serving, with [`io::ErrorKind::InvalidInput`] when `config.name`
/// cannot be sent as a header value or `config.status` is informational (1xx), and when the
/// listener has no local address.
pub async fn serve(
    listener: TcpListener,
    config: EchoConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    serve_with_calls(listener, config, CallConfig::default(), shutdown).await
}

/// [`serve`], calling `calls` for every echoed request. Also fails at once when a call URL is
/// not an absolute `http://` URL.
pub async fn serve_with_calls(
    listener: TcpListener,
    config: EchoConfig,
    calls: CallConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let state = Arc::new(
        EchoState::new(config.clone(), calls)
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?,
    );
    let local = listener.local_addr()?;
    info!(
        %local,
        name = %config.name,
        status = ?config.status,
        text = ?config.text,
        "echo serving"
    );
    let builder = Arc::new(connection_builder());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                if let Err(err) = joined {
                    warn!(error = %err, "connection task failed");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let stop = stop_rx.clone();
                    let task = connection(stream, peer, builder.clone(), state.clone(), stop);
                    connections.spawn(task);
                }
                Err(err) => accept_failed(err).await,
            },
        }
    }
    drop(listener);
    drain(connections, &stop_tx).await;
    info!(%local, "echo stopped");
    Ok(())
}

fn connection_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    builder
}

/// Serves one connection until it closes, or until `stop` turns true and its in-flight
/// requests are answered.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    builder: Arc<auto::Builder<TokioExecutor>>,
    state: Arc<EchoState>,
    mut stop: watch::Receiver<bool>,
) {
    debug!(%peer, "connection accepted");
    if let Err(err) = stream.set_nodelay(true) {
        debug!(%peer, error = %err, "setting TCP_NODELAY failed");
    }
    let service = service_fn(move |req| handler::handle(state.clone(), req));
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    // Drops the watch guard before the connection is awaited again.
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stopped => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    match result {
        Ok(()) => debug!(%peer, "connection closed"),
        Err(err) => debug!(%peer, error = %err, "connection closed with an error"),
    }
}

async fn accept_failed(err: io::Error) {
    match err.kind() {
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset => {
            debug!(error = %err, "accept failed");
        }
        _ => {
            warn!(error = %err, "accept failed; backing off");
            tokio::time::sleep(ACCEPT_BACKOFF).await;
        }
    }
}

/// Asks every connection to finish, waits up to [`SHUTDOWN_GRACE`], then aborts the rest.
async fn drain(mut connections: JoinSet<()>, stop: &watch::Sender<bool>) {
    // Only fails when no connection is listening, which is fine.
    let _ = stop.send(true);
    let all_done = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, all_done)
        .await
        .is_err()
    {
        warn!(
            remaining = connections.len(),
            "shutdown grace period over; closing connections"
        );
        connections.shutdown().await;
    }
}
