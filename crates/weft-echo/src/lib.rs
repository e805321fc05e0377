//! weft's test and demo backend: an HTTP server that answers every request with a JSON
//! description of what it received, like `hashicorp/http-echo` but richer.
//!
//! One listener serves HTTP/1.1 and HTTP/2 with prior knowledge (h2c). Every response carries
//! `x-echo-name: NAME` so a client behind the mesh can tell which backend answered. The JSON body
//! reports the method, path (with query), host, protocol, headers and the request body's length.
//!
//! Query parameters steer the response, so tests and demos need no extra configuration:
//!
//! | parameter | effect |
//! |---|---|
//! | `status=N` | answer with status `N` (200..=999), overriding [`EchoConfig::status`] |
//! | `delay=DURATION` | wait that long (Go duration, `250ms`, `2s`) before answering |
//! | `size=BYTES` | answer with exactly that many `x` bytes (`text/plain`) instead of JSON |
//!
//! An invalid value is answered with `400` and a JSON `{"error": ...}` body; so is a 1xx
//! status, which cannot end a response (HTTP/1.1 would mistake 101 for a protocol switch).
//!
//! With a [`CallConfig`] ([`serve_with_calls`], `weft echo --call URL,...`) the echo is a tiny microservice, the
//! way bookinfo's services call each other: for every echoed request it GETs each URL (all at
//! once, each bounded by [`CallConfig::timeout`]), forwarding the request's `end-user`,
//! `user-agent`, `cookie`, `authorization`, `x-request-id`, `traceparent`, `tracestate`, `b3` and
//! `x-b3-*` headers, and reports the answers in the reply under `"calls"`:
//! `[{"url", "status", "body"}]`, the body parsed when it is JSON, else text. A call that brings
//! no answer has status 0, a `null` body and an `"error"`; it never changes the echo's own status.
//! Calls go through [`CallConfig::proxy`] (an HTTP proxy such as a sidecar's outbound listener,
//! sent absolute-form requests) unless its `NO_PROXY` list exempts the host. `size=` replies are
//! filler bytes, so they make no calls.
//!
//! Paths under `/__echo/` are the server's own endpoints, exempt from the controls and from the
//! request count: `GET /__echo/stats` returns `{"count": N}`, the number of other requests
//! received so far (counted on arrival, before any delay). HEAD gets GET's headers, no body.

mod body;
mod call;
mod controls;
mod handler;
mod proxy;
mod server;

pub use call::DEFAULT_CALL_TIMEOUT;
pub use proxy::{NoProxy, ProxyConfig, ProxyError};
pub use server::{serve, serve_with_calls};

/// What an echo server says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EchoConfig {
    /// Reported in the `x-echo-name` header and the body's `name` field.
    pub name: String,
    /// The status of every echo response, unless a request asks for another with `status=`.
    /// Must not be informational (1xx): [`serve`] rejects that.
    pub status: Option<http::StatusCode>,
    /// Added to the JSON body as the `text` field.
    pub text: Option<String>,
}

/// What an echo calls while answering each echoed request (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallConfig {
    /// `http://` URLs to GET, reported in this order.
    pub urls: Vec<http::Uri>,
    /// How calls reach their URLs: straight, or through an HTTP proxy.
    pub proxy: ProxyConfig,
    /// How long one call may take; [`DEFAULT_CALL_TIMEOUT`] when `None`.
    pub timeout: Option<std::time::Duration>,
}

#[cfg(test)]
mod tests;
