//! Policy on the inbound path: request path normalization and authorization (Istio's
//! AuthorizationPolicy). Peer authentication and JWT will join here.

pub mod authorization;
pub mod normalize;
