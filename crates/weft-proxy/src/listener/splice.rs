//! Copying a tunnel's bytes: both directions at once until each side has closed its half
//! (`copy_bidirectional` passes a half-close on as a write shutdown), counting the client's
//! bytes each way and telling which side failed when one does.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf};

use crate::telemetry::{ResponseFlag, ResponseFlags};

/// The client's side of a tunnel: counts the bytes read from it (`bytes_received`) and
/// written to it (`bytes_sent`), and notes whether any operation on it failed.
#[derive(Debug)]
pub struct Counted<T> {
    inner: T,
    received: u64,
    sent: u64,
    failed: bool,
}

impl<T> Counted<T> {
    pub fn new(inner: T) -> Self {
        Counted {
            inner,
            received: 0,
            sent: 0,
            failed: false,
        }
    }

    /// Bytes read from the client so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Bytes written to the client so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    fn note<R>(&mut self, poll: &Poll<io::Result<R>>) {
        if matches!(poll, Poll::Ready(Err(_))) {
            self.failed = true;
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            let n = buf.filled().len().saturating_sub(before);
            this.received = this.received.saturating_add(n as u64);
        }
        this.note(&poll);
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            this.sent = this.sent.saturating_add(n as u64);
        }
        this.note(&poll);
        poll
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.note(&poll);
        poll
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.note(&poll);
        poll
    }
}

/// Sends `first` (bytes already read from the client) upstream, then copies both ways until
/// both sides are done. The flags say who ended it abnormally: `DC` when the client's side
/// failed, `UC` when the upstream's did; none for a clean close.
pub async fn splice<D, U>(
    downstream: &mut Counted<D>,
    first: &[u8],
    upstream: &mut U,
) -> ResponseFlags
where
    D: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let copied = async {
        upstream.write_all(first).await?;
        tokio::io::copy_bidirectional(downstream, upstream).await
    }
    .await;
    match copied {
        Ok(_) => ResponseFlags::NONE,
        Err(err) => {
            tracing::debug!(%err, client_failed = downstream.failed, "tunnel ended with an error");
            if downstream.failed {
                ResponseFlag::DownstreamConnectionTermination.into()
            } else {
                ResponseFlag::UpstreamConnectionTermination.into()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, duplex};

    use super::*;

    #[tokio::test]
    async fn copies_both_ways_and_counts_the_client_side() {
        let (client, proxy_down) = duplex(64);
        let (proxy_up, server) = duplex(64);
        let (mut client, mut server) = (client, server);
        let proxy = tokio::spawn(async move {
            let mut down = Counted::new(proxy_down);
            let mut up = proxy_up;
            let flags = splice(&mut down, b"hello ", &mut up).await;
            (flags, down.received(), down.sent())
        });
        client.write_all(b"world").await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hello world");
        server.write_all(b"0123456789").await.unwrap();
        server.shutdown().await.unwrap();
        let mut back = Vec::new();
        client.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"0123456789");
        let (flags, received, sent) = proxy.await.unwrap();
        assert_eq!(flags, ResponseFlags::NONE);
        assert_eq!(
            (received, sent),
            (5, 10),
            "`first` was counted when it was read"
        );
    }

    #[tokio::test]
    async fn an_upstream_that_goes_away_mid_write_is_uc() {
        let (client, proxy_down) = duplex(8);
        let (proxy_up, server) = duplex(8);
        drop(server);
        let mut down = Counted::new(proxy_down);
        let mut up = proxy_up;
        let writer = tokio::spawn(async move {
            let mut client = client;
            let _ = client.write_all(&[7u8; 64]).await;
            client
        });
        let flags = splice(&mut down, b"", &mut up).await;
        assert_eq!(flags, ResponseFlag::UpstreamConnectionTermination.into());
        drop(down);
        drop(writer.await.unwrap());
    }
}
