//! Body wrappers that count the bytes flowing through them: one adds request bytes into a shared
//! counter, the other runs a completion callback exactly once when the response body ends, fails
//! or is dropped, which is when Envoy writes its access-log line.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::body::{BodyError, ProxyBody};

/// Adds the length of every data frame to a shared counter.
pub(crate) struct CountingBody {
    inner: ProxyBody,
    bytes: Arc<AtomicU64>,
}

impl CountingBody {
    pub(crate) fn new(inner: ProxyBody, bytes: Arc<AtomicU64>) -> Self {
        CountingBody { inner, bytes }
    }
}

impl Body for CountingBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        let data = match &polled {
            Poll::Ready(Some(Ok(frame))) => frame.data_ref(),
            _ => None,
        };
        if let Some(data) = data {
            this.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
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

/// How a response body finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// It reached its end.
    Complete,
    /// The inner body returned an error (the upstream reset mid-body).
    Failed,
    /// It was dropped before its end (the client went away).
    Dropped,
}

/// A finished response body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BodyEnd {
    /// Data bytes that went through.
    pub(crate) bytes: u64,
    /// How it finished.
    pub(crate) ending: Ending,
}

type OnEnd = Box<dyn FnOnce(BodyEnd) + Send>;

/// Counts data bytes and calls `on_end` once: at the end of the stream, on an error, or when
/// dropped before either.
pub(crate) struct RecordedBody {
    inner: ProxyBody,
    bytes: u64,
    on_end: Option<OnEnd>,
}

impl RecordedBody {
    pub(crate) fn new(inner: ProxyBody, on_end: impl FnOnce(BodyEnd) + Send + 'static) -> Self {
        RecordedBody {
            inner,
            bytes: 0,
            on_end: Some(Box::new(on_end)),
        }
    }

    fn end(&mut self, ending: Ending) {
        if let Some(on_end) = self.on_end.take() {
            on_end(BodyEnd {
                bytes: self.bytes,
                ending,
            });
        }
    }
}

impl Body for RecordedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
                if this.inner.is_end_stream() {
                    this.end(Ending::Complete);
                }
            }
            Poll::Ready(Some(Err(_))) => this.end(Ending::Failed),
            Poll::Ready(None) => this.end(Ending::Complete),
            Poll::Pending => {}
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

impl Drop for RecordedBody {
    fn drop(&mut self) {
        // hyper does not poll a body that is already at its end (an empty one): that is complete.
        let ending = if self.inner.is_end_stream() {
            Ending::Complete
        } else {
            Ending::Dropped
        };
        self.end(ending);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use http_body_util::BodyExt as _;

    use super::*;
    use crate::body::{boxed, empty, full};

    fn recorder() -> (
        Arc<Mutex<Vec<BodyEnd>>>,
        impl FnOnce(BodyEnd) + Send + 'static,
    ) {
        let ends = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&ends);
        (ends, move |end| sink.lock().unwrap().push(end))
    }

    #[tokio::test]
    async fn counts_and_ends_once_when_read_to_the_end() {
        let (ends, on_end) = recorder();
        let body = RecordedBody::new(full("hello"), on_end);
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"hello");
        assert_eq!(
            *ends.lock().unwrap(),
            [BodyEnd {
                bytes: 5,
                ending: Ending::Complete
            }]
        );
    }

    #[test]
    fn an_unpolled_empty_body_is_complete_and_a_dropped_one_is_not() {
        let (ends, on_end) = recorder();
        drop(RecordedBody::new(empty(), on_end));
        let (dropped, on_dropped) = recorder();
        drop(RecordedBody::new(full("never read"), on_dropped));
        assert_eq!(
            *ends.lock().unwrap(),
            [BodyEnd {
                bytes: 0,
                ending: Ending::Complete
            }]
        );
        assert_eq!(
            *dropped.lock().unwrap(),
            [BodyEnd {
                bytes: 0,
                ending: Ending::Dropped
            }]
        );
    }

    /// Yields one data frame, then fails.
    struct Failing(bool);

    impl Body for Failing {
        type Data = Bytes;
        type Error = BodyError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
            if std::mem::replace(&mut self.0, true) {
                return Poll::Ready(Some(Err("reset".into())));
            }
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"abc")))))
        }
    }

    #[tokio::test]
    async fn a_failing_body_ends_incomplete() {
        let (ends, on_end) = recorder();
        let body = RecordedBody::new(boxed(Failing(false)), on_end);
        assert!(body.collect().await.is_err());
        assert_eq!(
            *ends.lock().unwrap(),
            [BodyEnd {
                bytes: 3,
                ending: Ending::Failed
            }]
        );
    }

    #[tokio::test]
    async fn counting_body_adds_into_the_counter() {
        let counter = Arc::new(AtomicU64::new(0));
        let body = CountingBody::new(full("twelve bytes"), Arc::clone(&counter));
        body.collect().await.unwrap();
        assert_eq!(counter.load(Ordering::Relaxed), 12);
    }
}
