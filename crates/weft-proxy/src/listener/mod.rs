//! Listeners: accept connections, speak HTTP/1.1 and HTTP/2 (prior knowledge) on the same
//! port, and hand each request to [`http::handle`], which is the edge where every outcome
//! becomes a status code, a response flag, an access-log line and metrics. `CONNECT` requests
//! become opaque TCP tunnels instead ([`tunnel`], with [`sni`] and [`splice`]).

pub mod http;
pub mod inbound;
pub mod outbound;
mod sni;
mod splice;
pub mod tunnel;
pub(crate) mod upgrade;

pub use self::http::ProxyState;
pub use inbound::serve_inbound;
pub use outbound::serve_outbound;
