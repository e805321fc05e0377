//! Policy on the inbound path: request path normalization, peer authentication (Istio's
//! PeerAuthentication), request authentication (RequestAuthentication, JWT) and
//! authorization (AuthorizationPolicy).

pub mod authorization;
pub mod jwt;
pub mod normalize;
pub mod peer;
