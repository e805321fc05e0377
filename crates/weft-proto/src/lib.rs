//! The control-plane ↔ proxy protocol (`proto/weft/mesh/v1/mesh.proto`): the `Discovery`
//! service (one `Subscribe` stream per proxy: Hello, then a Snapshot and an Ack/Nack per
//! version) and the `Certificates` service (CSR signing). Generated with tonic/prost; the
//! transport (TLS, HTTP/2) is the caller's.

#![allow(clippy::all, missing_docs)]

/// `weft.mesh.v1`.
pub mod v1 {
    tonic::include_proto!("weft.mesh.v1");
}

pub use v1::*;

/// The namespace of the control plane's SPIFFE identity
/// (`spiffe://<trust domain>/ns/istio-system/sa/weft-control`): proxies accept only this
/// server identity on the control-plane connection.
pub const CONTROL_PLANE_NAMESPACE: &str = "istio-system";
/// The service account of the control plane's SPIFFE identity.
pub const CONTROL_PLANE_SERVICE_ACCOUNT: &str = "weft-control";
