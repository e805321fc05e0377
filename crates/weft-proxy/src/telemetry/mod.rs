//! Records what happened to each request the way Istio's Envoy sidecar does: one JSON access-log
//! line with Envoy's keys ([`access_log`]), Istio's standard Prometheus metrics ([`metrics`]),
//! Envoy's response flags shared by both ([`response_flags`]), and the edge's recorder that
//! writes both when a response body ends ([`Telemetry`], [`RequestRecord`]), and the line of a
//! CONNECT tunnel when it closes ([`TunnelOutcome`]).

pub mod access_log;
mod counted_body;
pub mod metrics;
mod record;
pub mod response_flags;
mod timestamp;
mod tunnel;

pub use access_log::{AccessLog, AccessLogEntry, HttpProtocol, MemoryLog};
pub use metrics::{ProxyMetrics, Reporter, RequestLabels, RequestProtocol};
pub use record::{InboundLabels, RequestRecord, Telemetry};
pub use response_flags::{ResponseFlag, ResponseFlags};
pub use timestamp::format_rfc3339_millis;
pub use tunnel::TunnelOutcome;
