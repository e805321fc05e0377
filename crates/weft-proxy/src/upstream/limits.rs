//! Connection pool limits (`connectionPool`) as per-cluster atomic counters: a request over the
//! limit fails at once with `UO`, and a request's slot is held until its response body ends or
//! is dropped, not merely until headers arrive.
//!
//! weft's HTTP client opens connections on demand, so Envoy's connection and pending-request
//! limits are approximated by one limit on concurrent requests:
//! - HTTP/1.1 carries one request per connection, so at most `maxConnections` requests are
//!   active and `http1MaxPendingRequests` more may wait for a connection; with
//!   `http2MaxRequests` (which Envoy applies to HTTP/1.1 too) the limit is
//!   `min(http2MaxRequests, maxConnections + http1MaxPendingRequests)`. Waiting requests are
//!   not queued separately: they wait inside the client for a connection.
//! - HTTP/2 multiplexes, so the limit is `http2MaxRequests`.
//!
//! `http.maxRetries` (concurrent retries across the cluster) is a second counter, taken by the
//! caller with [`super::Upstreams::retry_permit`] for each retry it sends.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use weft_api::mesh::ConnectionPool;

use super::view::HostStats;

/// Requests and retries in flight for one cluster.
#[derive(Debug, Default)]
pub(super) struct Limits {
    active: AtomicU64,
    retries: AtomicU64,
}

/// The most requests `pool` lets be in flight at once (see the module docs).
pub(super) fn request_limit(pool: &ConnectionPool) -> u64 {
    let requests = u64::from(pool.max_requests);
    if pool.http2 {
        return requests;
    }
    let connections = u64::from(pool.max_connections) + u64::from(pool.max_pending_requests);
    requests.min(connections)
}

/// Takes one slot of `counter` unless `limit` slots are taken already.
fn take(counter: &AtomicU64, limit: u64) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < limit).then_some(n + 1)
        })
        .is_ok()
}

/// Gives back one slot (never below zero).
fn give_back(counter: &AtomicU64) {
    let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
}

impl Limits {
    /// Admits one request to `host`, or `None` when the cluster is at its limit.
    pub(super) fn admit(
        self: &Arc<Self>,
        pool: &ConnectionPool,
        host: &Arc<HostStats>,
    ) -> Option<RequestGuard> {
        if !take(&self.active, request_limit(pool)) {
            return None;
        }
        host.active.fetch_add(1, Ordering::AcqRel);
        Some(RequestGuard {
            limits: self.clone(),
            host: host.clone(),
        })
    }

    /// Admits one retry, or `None` when `max_retries` retries are in flight.
    pub(super) fn admit_retry(self: &Arc<Self>, max_retries: u32) -> Option<RetryPermit> {
        take(&self.retries, u64::from(max_retries)).then(|| RetryPermit {
            limits: self.clone(),
        })
    }

    /// Requests in flight (admitted and not yet finished).
    pub(super) fn active(&self) -> u64 {
        self.active.load(Ordering::Acquire)
    }
}

/// One admitted request: releases the cluster slot and the endpoint's active count on drop.
#[derive(Debug)]
pub(super) struct RequestGuard {
    limits: Arc<Limits>,
    host: Arc<HostStats>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        give_back(&self.limits.active);
        give_back(&self.host.active);
    }
}

/// One admitted retry (`http.maxRetries`): hold it while the retry is in flight; dropping it
/// gives the slot back.
#[derive(Debug)]
pub struct RetryPermit {
    limits: Arc<Limits>,
}

impl Drop for RetryPermit {
    fn drop(&mut self) {
        give_back(&self.limits.retries);
    }
}

/// A response body that holds its request's [`RequestGuard`] until the body ends, fails or is
/// dropped. A body error ends only this response.
#[derive(Debug)]
pub(super) struct TrackedBody<B> {
    inner: B,
    guard: Option<RequestGuard>,
}

impl<B> TrackedBody<B> {
    pub(super) fn new(inner: B, guard: RequestGuard) -> Self {
        TrackedBody {
            inner,
            guard: Some(guard),
        }
    }
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        let finished = match &polled {
            Poll::Ready(None | Some(Err(_))) => true,
            Poll::Ready(Some(Ok(_))) => this.inner.is_end_stream(),
            Poll::Pending => false,
        };
        if finished {
            this.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http1_limit_is_connections_plus_pending_capped_by_requests() {
        let mut pool = ConnectionPool {
            max_connections: 1,
            max_pending_requests: 1,
            ..ConnectionPool::default()
        };
        assert_eq!(request_limit(&pool), 2);
        pool.max_requests = 1;
        assert_eq!(request_limit(&pool), 1);
        pool.http2 = true;
        pool.max_requests = 7;
        assert_eq!(request_limit(&pool), 7);
        assert_eq!(
            request_limit(&ConnectionPool::default()),
            u64::from(u32::MAX)
        );
    }

    #[test]
    fn slots_are_taken_and_given_back() {
        let limits = Arc::new(Limits::default());
        let host = Arc::new(HostStats::default());
        let pool = ConnectionPool {
            max_requests: 2,
            ..ConnectionPool::default()
        };
        let a = limits.admit(&pool, &host).unwrap();
        let b = limits.admit(&pool, &host).unwrap();
        assert!(limits.admit(&pool, &host).is_none());
        assert_eq!(host.active.load(Ordering::Acquire), 2);
        drop(a);
        assert_eq!(limits.active(), 1);
        drop(b);
        assert_eq!(limits.active(), 0);
        assert_eq!(host.active.load(Ordering::Acquire), 0);

        let r = limits.admit_retry(1).unwrap();
        assert!(limits.admit_retry(1).is_none());
        drop(r);
        assert!(limits.admit_retry(1).is_some());
        assert!(limits.admit_retry(0).is_none());
    }
}
