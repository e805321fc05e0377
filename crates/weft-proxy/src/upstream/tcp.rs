//! Raw TCP to a cluster, for tunnels (`CONNECT`) routed by `tcp`/`tls` routes: the endpoint is
//! picked exactly as for an HTTP try ([`super::cluster`] → [`super::balancer`], outlier
//! ejections and exclusions included), admitted under the cluster's `tcp.maxConnections`
//! (`UO` when reached), then dialed with the pool's `connectTimeout` (`UF` on failure or
//! timeout). The connection holds its slot until it is dropped. Connect outcomes feed outlier
//! detection as local-origin results, as Envoy's TCP proxy reports them.

use std::sync::Arc;
use std::time::Duration;

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::tls::TlsTarget;
use weft_api::mesh::{Cluster, ConnectionPool};

use super::error::UpstreamError;
use super::limits::RequestGuard;
use super::outlier::TryOutcome;
use super::{Admitted, PickContext, Upstreams};

/// An open upstream TCP connection.
#[derive(Debug)]
pub struct TcpConnection {
    pub stream: UpstreamStream,
    /// The endpoint connected to, `ip:port` (`upstream_host` in access logs).
    pub endpoint: String,
    /// The cluster connection slot, given back on drop.
    _slot: RequestGuard,
}

impl Upstreams {
    /// Opens a TCP connection to an endpoint of `cluster`, picked for `pick` as [`Self::send`]
    /// picks one for a request.
    pub async fn connect_tcp(
        &self,
        cluster: &Arc<Cluster>,
        pick: &PickContext,
    ) -> Result<TcpConnection, UpstreamError> {
        let admitted = self.admit(cluster, pick, &connection_limit(&cluster.pool))?;
        let Admitted {
            state,
            compiled,
            view,
            idx,
            guard: slot,
        } = admitted;
        let cluster = &compiled.cluster;
        let Some(target) = view.targets.get(idx) else {
            return Err(UpstreamError::NoHealthyUpstream);
        };
        let endpoint = target.authority.clone();
        tracing::debug!(cluster = %cluster.key, %endpoint, "connecting tcp upstream");
        let tls = compiled
            .tls
            .tcp_target(cluster, &endpoint, &target.tls, self.identity.as_ref());
        let connected = match tls {
            Ok(tls) => dial(&endpoint, cluster.pool.connect_timeout, tls).await,
            Err(err) => Err(Box::new(err) as super::BoxError),
        };
        match connected {
            Ok(stream) => {
                state.record(cluster, &view, idx, TryOutcome::Success, self.now());
                Ok(TcpConnection {
                    stream,
                    endpoint,
                    _slot: slot,
                })
            }
            Err(source) => {
                state.record(cluster, &view, idx, TryOutcome::LOCAL_FAILURE, self.now());
                tracing::debug!(cluster = %cluster.key, %endpoint, error = %source, "tcp connect failed");
                Err(UpstreamError::ConnectFailure { endpoint, source })
            }
        }
    }
}

/// The pool as the request limit sees it for a TCP connection: only `tcp.maxConnections`
/// bounds it (the HTTP limits do not apply to raw TCP).
fn connection_limit(pool: &ConnectionPool) -> ConnectionPool {
    ConnectionPool {
        max_pending_requests: 0,
        max_requests: u32::MAX,
        http2: false,
        ..pool.clone()
    }
}

/// Connects to `ip:port` or `name:port` (resolved now) and, for a TLS target, runs the
/// handshake, all within `timeout` (zero: no limit).
async fn dial(
    endpoint: &str,
    timeout: Duration,
    tls: Option<Arc<TlsTarget>>,
) -> Result<UpstreamStream, super::BoxError> {
    let connect = async {
        let stream = TcpStream::connect(endpoint).await?;
        stream.set_nodelay(true)?;
        Ok::<_, super::BoxError>(match tls {
            None => UpstreamStream::Plain(stream),
            Some(target) => UpstreamStream::Tls(Box::new(target.handshake(stream).await?)),
        })
    };
    if timeout.is_zero() {
        connect.await
    } else {
        tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| format!("connect timeout after {timeout:?}"))?
    }
}

/// An upstream byte stream: plain TCP, or mesh mTLS (ALPN `weft-tcp`) to a sidecar.
#[derive(Debug)]
pub enum UpstreamStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for UpstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_flush(cx),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tokio::net::TcpListener;
    use weft_api::mesh::{ClusterKey, Endpoint, EndpointAddress, LbPolicy};

    use super::*;

    fn cluster(ports: &[u16], pool: ConnectionPool) -> Arc<Cluster> {
        let endpoints = ports
            .iter()
            .map(|p| Endpoint {
                address: EndpointAddress::Ip([127, 0, 0, 1].into()),
                ports: [(5432, *p)].into(),
                labels: BTreeMap::new(),
                weight: 1,
                identity: None,
            })
            .collect();
        Arc::new(Cluster {
            key: ClusterKey {
                host: "db.example.com".into(),
                subset: None,
                port: None,
            },
            endpoints,
            lb: LbPolicy::RoundRobin,
            pool,
            outlier: None,
            undefined_subset: false,
            version: None,
            tls: None,
            subject_alt_names: Vec::new(),
        })
    }

    fn pick() -> PickContext {
        PickContext {
            service_port: Some(5432),
            ..PickContext::default()
        }
    }

    #[tokio::test]
    async fn connects_to_a_picked_endpoint_and_holds_a_slot() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let pool = ConnectionPool {
            max_connections: 1,
            max_pending_requests: 5,
            ..ConnectionPool::default()
        };
        let c = cluster(&[port], pool);
        let upstreams = Upstreams::new();
        let conn = upstreams.connect_tcp(&c, &pick()).await.unwrap();
        assert_eq!(conn.endpoint, format!("127.0.0.1:{port}"));
        assert_eq!(upstreams.active_requests(&c.key), 1);
        let second = upstreams.connect_tcp(&c, &pick()).await.unwrap_err();
        assert_eq!(
            second.response_flag(),
            "UO",
            "maxConnections: 1, pending ignored"
        );
        drop(conn);
        assert_eq!(upstreams.active_requests(&c.key), 0);
    }

    #[tokio::test]
    async fn refused_is_uf_and_no_endpoint_is_uh() {
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let upstreams = Upstreams::new();
        let err = upstreams
            .connect_tcp(&cluster(&[port], ConnectionPool::default()), &pick())
            .await
            .unwrap_err();
        assert_eq!(err.response_flag(), "UF");
        assert_eq!(err.endpoint(), Some(format!("127.0.0.1:{port}").as_str()));
        let empty = cluster(&[], ConnectionPool::default());
        let err = upstreams.connect_tcp(&empty, &pick()).await.unwrap_err();
        assert_eq!(err.response_flag(), "UH");
    }
}
