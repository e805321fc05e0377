//! Listeners: accept connections, speak HTTP/1.1 and HTTP/2 (prior knowledge) on the same
//! port, and hand each request to [`http::handle`], which is the edge where every outcome
//! becomes a status code, a response flag, an access-log line and metrics.

pub mod http;
pub mod outbound;

pub use self::http::ProxyState;
pub use outbound::serve_outbound;
