//! The body type that flows through the proxy in both directions: any `http_body::Body` of
//! `Bytes`, boxed, so requests and responses stream without being buffered.

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;

/// Errors a body can fail with while streaming.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A streaming body.
pub type ProxyBody = UnsyncBoxBody<Bytes, BodyError>;

/// A body with the given bytes.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> ProxyBody {
    full(Bytes::new())
}

/// Boxes any body whose error converts into [`BodyError`].
pub fn boxed<B>(body: B) -> ProxyBody
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BodyError>,
{
    fn convert<E: Into<BodyError>>(e: E) -> BodyError {
        e.into()
    }
    body.map_err(convert::<B::Error>).boxed_unsync()
}
