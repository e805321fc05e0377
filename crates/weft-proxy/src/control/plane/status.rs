//! What the control-plane client knows about its control plane, for `/config_dump` (the
//! `control_plane` section) and `/metrics`: the address, whether the stream is up, the last
//! snapshot received and applied, the last NACK, and the certificate's expiry.

use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::telemetry::format_rfc3339_millis;
use crate::tls::identity::Identity;

/// How a snapshot was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum SnapshotResult {
    Ack,
    Nack,
}

impl EncodeLabelValue for SnapshotResult {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        let value = match self {
            SnapshotResult::Ack => "ack",
            SnapshotResult::Nack => "nack",
        };
        EncodeLabelValue::encode(&value, encoder)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SnapshotLabels {
    result: SnapshotResult,
}

/// The control-plane client's metrics.
#[derive(Clone, Debug, Default)]
pub struct PlaneMetrics {
    connected: Gauge,
    snapshots: Family<SnapshotLabels, Counter>,
    certificate_expiry: Gauge,
}

impl PlaneMetrics {
    /// Registers `weft_control_plane_connected`, `weft_control_plane_snapshots_total{result}`
    /// and `weft_control_plane_certificate_expiry_timestamp_seconds` into `registry`.
    pub fn register(registry: &mut Registry) -> PlaneMetrics {
        let metrics = PlaneMetrics::default();
        registry.register(
            "weft_control_plane_connected",
            "Whether the config stream to the control plane is up (1) or not (0)",
            metrics.connected.clone(),
        );
        registry.register(
            "weft_control_plane_snapshots",
            "Snapshots received from the control plane, by answer (ack or nack)",
            metrics.snapshots.clone(),
        );
        registry.register(
            "weft_control_plane_certificate_expiry_timestamp_seconds",
            "When the workload certificate from the control plane expires (Unix time)",
            metrics.certificate_expiry.clone(),
        );
        metrics
    }
}

/// A refused snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct Nack {
    pub version: u64,
    pub error: String,
    pub at: String,
}

/// The installed certificate.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateStatus {
    pub spiffe_id: String,
    pub generation: u64,
    pub not_before: String,
    pub expires: String,
    /// When it will be renewed.
    pub renews_at: String,
}

#[derive(Debug, Clone, Default, Serialize)]
struct State {
    connected: bool,
    /// The last snapshot received, applied or not.
    last_snapshot_version: Option<u64>,
    /// The snapshot serving now.
    applied_version: Option<u64>,
    acks: u64,
    nacks: u64,
    last_nack: Option<Nack>,
    /// The last failure to reach the control plane or get a certificate, until the next
    /// success.
    last_error: Option<String>,
    certificate: Option<CertificateStatus>,
}

/// Shared between the client's loops and the admin server.
#[derive(Debug)]
pub struct PlaneStatus {
    address: String,
    proxy_name: String,
    state: Mutex<State>,
    metrics: PlaneMetrics,
}

fn epoch_seconds(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl PlaneStatus {
    pub fn new(address: &str, proxy_name: &str, metrics: PlaneMetrics) -> PlaneStatus {
        PlaneStatus {
            address: address.to_string(),
            proxy_name: proxy_name.to_string(),
            state: Mutex::new(State::default()),
            metrics,
        }
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner));
    }

    pub(super) fn set_connected(&self, connected: bool) {
        self.update(|s| {
            s.connected = connected;
            if connected {
                s.last_error = None;
            }
        });
        self.metrics.connected.set(i64::from(connected));
    }

    pub(super) fn received(&self, version: u64) {
        self.update(|s| s.last_snapshot_version = Some(version));
    }

    pub(super) fn acked(&self, version: u64) {
        self.update(|s| {
            s.applied_version = Some(version);
            s.acks += 1;
        });
        self.metrics
            .snapshots
            .get_or_create(&SnapshotLabels {
                result: SnapshotResult::Ack,
            })
            .inc();
    }

    pub(super) fn nacked(&self, version: u64, error: &str) {
        let nack = Nack {
            version,
            error: error.to_string(),
            at: format_rfc3339_millis(SystemTime::now()),
        };
        self.update(|s| {
            s.last_nack = Some(nack);
            s.nacks += 1;
        });
        self.metrics
            .snapshots
            .get_or_create(&SnapshotLabels {
                result: SnapshotResult::Nack,
            })
            .inc();
    }

    pub(super) fn failed(&self, error: &str) {
        self.update(|s| s.last_error = Some(error.to_string()));
    }

    pub(super) fn certificate(&self, identity: &Identity, renews_at: SystemTime) {
        let certificate = CertificateStatus {
            spiffe_id: identity.id.to_string(),
            generation: identity.generation,
            not_before: format_rfc3339_millis(identity.not_before),
            expires: format_rfc3339_millis(identity.not_after),
            renews_at: format_rfc3339_millis(renews_at),
        };
        self.update(|s| {
            s.certificate = Some(certificate);
            s.last_error = None;
        });
        self.metrics
            .certificate_expiry
            .set(epoch_seconds(identity.not_after));
    }

    /// The `control_plane` section of `/config_dump`.
    pub fn dump(&self) -> serde_json::Value {
        let state = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut value = serde_json::to_value(&state).unwrap_or_default();
        if let Some(obj) = value.as_object_mut() {
            obj.insert("address".into(), self.address.clone().into());
            obj.insert("proxy_name".into(), self.proxy_name.clone().into());
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_reports_versions_nacks_and_errors() {
        let mut registry = Registry::default();
        let status = PlaneStatus::new(
            "127.0.0.1:15012",
            "reviews-v1-abcd",
            PlaneMetrics::register(&mut registry),
        );
        let dump = status.dump();
        assert_eq!(dump["address"], "127.0.0.1:15012");
        assert_eq!(dump["proxy_name"], "reviews-v1-abcd");
        assert_eq!(dump["connected"], false);
        assert!(dump["applied_version"].is_null());

        status.failed("connection refused");
        assert_eq!(status.dump()["last_error"], "connection refused");
        status.set_connected(true);
        status.received(1);
        status.acked(1);
        status.received(2);
        status.nacked(2, "control-plane[0]:1:1: bad");
        let dump = status.dump();
        assert_eq!(dump["connected"], true);
        assert!(dump["last_error"].is_null());
        assert_eq!(dump["last_snapshot_version"], 2);
        assert_eq!(dump["applied_version"], 1);
        assert_eq!(
            (dump["acks"].as_u64(), dump["nacks"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(dump["last_nack"]["version"], 2);
        assert_eq!(dump["last_nack"]["error"], "control-plane[0]:1:1: bad");

        let text = crate::telemetry::metrics::encode(&registry);
        assert!(text.contains("weft_control_plane_connected 1"), "{text}");
        assert!(
            text.contains(r#"weft_control_plane_snapshots_total{result="ack"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"weft_control_plane_snapshots_total{result="nack"} 1"#),
            "{text}"
        );
    }
}
