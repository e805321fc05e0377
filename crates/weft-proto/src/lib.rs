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
