//! The response body type: either a buffer sent at once or filler bytes streamed in chunks.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// Size of one filler chunk; `size=` responses are streamed in pieces this large.
const FILLER_CHUNK: usize = 16 * 1024;
static FILLER: [u8; FILLER_CHUNK] = [b'x'; FILLER_CHUNK];

/// A response body of known length, so both protocols announce it in `content-length`.
///
/// Filler is never buffered whole: a client may ask for any `size=` without making the server
/// allocate it.
#[derive(Debug)]
pub(crate) enum ResponseBody {
    /// A complete buffer, sent as one frame (`None` once sent).
    Bytes(Option<Bytes>),
    /// `remaining` more `x` bytes to send.
    Filler { remaining: u64 },
}

impl ResponseBody {
    pub(crate) fn empty() -> Self {
        Self::Bytes(None)
    }

    pub(crate) fn bytes(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        if data.is_empty() {
            Self::empty()
        } else {
            Self::Bytes(Some(data))
        }
    }

    pub(crate) fn filler(len: u64) -> Self {
        Self::Filler { remaining: len }
    }

    /// The exact number of bytes this body will yield.
    pub(crate) fn len(&self) -> u64 {
        match self {
            Self::Bytes(data) => data.as_ref().map_or(0, |b| b.len() as u64),
            Self::Filler { remaining } => *remaining,
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = match self.get_mut() {
            Self::Bytes(data) => data.take(),
            Self::Filler { remaining } => {
                let chunk =
                    usize::try_from(*remaining).map_or(FILLER_CHUNK, |r| r.min(FILLER_CHUNK));
                *remaining -= chunk as u64;
                (chunk > 0).then(|| Bytes::from_static(&FILLER[..chunk]))
            }
        };
        Poll::Ready(frame.map(|data| Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.len() == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn filler_yields_exactly_the_requested_bytes_in_chunks() {
        let len = FILLER_CHUNK as u64 * 2 + 7;
        let body = ResponseBody::filler(len);
        assert_eq!(body.size_hint().exact(), Some(len));
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(collected.len() as u64, len);
        assert!(collected.iter().all(|&b| b == b'x'));
    }

    #[tokio::test]
    async fn empty_bodies_end_immediately() {
        for body in [
            ResponseBody::filler(0),
            ResponseBody::bytes(""),
            ResponseBody::empty(),
        ] {
            assert!(body.is_end_stream());
            assert_eq!(body.size_hint().exact(), Some(0));
            assert!(body.collect().await.unwrap().to_bytes().is_empty());
        }
    }

    #[tokio::test]
    async fn bytes_are_sent_once() {
        let body = ResponseBody::bytes("hello");
        assert_eq!(body.len(), 5);
        assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
    }
}
