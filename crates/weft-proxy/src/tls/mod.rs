//! TLS in the proxy: the workload's identity (certificate chain, key and trust bundle, re-read
//! when the files change) and the rustls configurations built from it ([`identity`]), and the
//! connector that dials upstream endpoints with mutual TLS or TLS origination ([`connector`]).
//!
//! Between weft proxies the connection is TLS 1.3 with both sides presenting SPIFFE workload
//! certificates and ALPN `h2`: every request from the client side travels as HTTP/2 over one
//! multiplexed connection per endpoint, with the original protocol in [`ORIGINAL_PROTOCOL`].

pub mod connector;
pub mod identity;
pub mod origin;

pub use connector::{TlsConnector, TlsTarget};
pub use identity::{IdentityError, IdentityStore, PeerIdentity};

/// The header the client-side proxy sets on requests it sends over mesh mTLS: the protocol the
/// application spoke (`HTTP/1.0`, `HTTP/1.1`, `HTTP/2`), so the server-side proxy speaks the
/// same to its application. Removed by the server side.
pub const ORIGINAL_PROTOCOL: &str = "x-weft-original-protocol";

/// ALPN protocol ids.
pub const ALPN_H2: &[u8] = b"h2";
pub const ALPN_HTTP11: &[u8] = b"http/1.1";
/// Raw TCP carried over mesh mTLS (a CONNECT tunnel or a `tcp` route on the client side):
/// the server side relays bytes to the application instead of parsing HTTP.
pub const ALPN_TCP: &[u8] = b"weft-tcp";
