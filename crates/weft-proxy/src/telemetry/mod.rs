//! Records what happened to each request the way Istio's Envoy sidecar does: one JSON access-log
//! line with Envoy's keys ([`access_log`]), Istio's standard Prometheus metrics ([`metrics`]),
//! Envoy's response flags shared by both ([`response_flags`]), and the edge's recorder that
//! writes both when a response body ends ([`Telemetry`], [`RequestRecord`]).

pub mod access_log;
mod counted_body;
pub mod metrics;
mod record;
pub mod response_flags;
mod timestamp;

pub use access_log::{AccessLog, AccessLogEntry, HttpProtocol, MemoryLog};
pub use metrics::{ProxyMetrics, Reporter, RequestLabels, RequestProtocol};
pub use record::{RequestRecord, Telemetry};
pub use response_flags::{ResponseFlag, ResponseFlags};
pub use timestamp::format_rfc3339_millis;
