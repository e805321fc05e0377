//! The live registry: every proxy connected to the control plane is a workload of its service
//! while its stream is open (and, with an active health check, while the check passes). The
//! registry is synthesized into ServiceEntry and WorkloadEntry resources, so proxies see
//! registered workloads exactly like configured ones.

pub mod health;
mod synth;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

pub use health::{HealthSpec, HealthTracker, ProbeKind};
pub use synth::synthesize;

/// One connection's registration id (unique for the life of the process).
pub type ProxyId = u64;

/// A port of a registered workload's service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    pub number: u32,
    pub name: String,
    pub protocol: String,
    pub target_port: u32,
}

/// Who a proxy says it is (its Hello's workload).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkloadInfo {
    pub name: String,
    pub namespace: String,
    pub service_account: String,
    pub service: String,
    pub version: String,
    pub labels: BTreeMap<String, String>,
    pub ports: Vec<PortInfo>,
    pub address: String,
    pub health: Option<HealthSpec>,
}

impl WorkloadInfo {
    /// The labels the workload's endpoint carries: its own, plus `app`, `version` and
    /// `security.istio.io/tlsMode: istio` (what Istio's injector adds).
    pub fn endpoint_labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.labels.clone();
        labels.insert("app".to_string(), self.service.clone());
        if !self.version.is_empty() {
            labels.insert("version".to_string(), self.version.clone());
        }
        labels.insert("security.istio.io/tlsMode".to_string(), "istio".to_string());
        labels
    }

    /// The service's host, `<service>.<namespace>.svc.cluster.local`.
    pub fn host(&self) -> String {
        format!("{}.{}.svc.cluster.local", self.service, self.namespace)
    }
}

impl From<&weft_proto::Workload> for WorkloadInfo {
    fn from(w: &weft_proto::Workload) -> WorkloadInfo {
        let ports: Vec<PortInfo> = w
            .ports
            .iter()
            .map(|p| PortInfo {
                number: p.number,
                name: p.name.clone(),
                protocol: p.protocol.clone(),
                target_port: p.target_port,
            })
            .collect();
        let health = w.health.as_ref().and_then(|h| {
            let kind = match h.kind.to_ascii_lowercase().as_str() {
                "http" => ProbeKind::Http {
                    path: if h.path.is_empty() {
                        "/".to_string()
                    } else {
                        h.path.clone()
                    },
                },
                "tcp" => ProbeKind::Tcp,
                _ => return None,
            };
            let port = if h.port != 0 {
                h.port
            } else {
                ports.first().map_or(0, |p| p.target_port)
            };
            Some(HealthSpec {
                kind,
                port,
                period: if h.period_ms == 0 {
                    health::DEFAULT_PERIOD
                } else {
                    Duration::from_millis(h.period_ms)
                },
                failure_threshold: if h.failure_threshold == 0 {
                    health::DEFAULT_FAILURE_THRESHOLD
                } else {
                    h.failure_threshold
                },
            })
        });
        WorkloadInfo {
            name: w.name.clone(),
            namespace: w.namespace.clone(),
            service_account: w.service_account.clone(),
            service: w.service.clone(),
            version: w.version.clone(),
            labels: w.labels.clone().into_iter().collect(),
            ports,
            address: w.address.clone(),
            health,
        }
    }
}

/// What the control plane knows about one proxy's config state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStatus {
    /// The last snapshot version sent.
    pub sent: Option<u64>,
    /// The last version the proxy ACKed.
    pub acked: Option<u64>,
    /// The last NACK: version and reason.
    pub nack: Option<(u64, String)>,
}

impl SyncStatus {
    /// `SYNCED` (the last sent version is ACKed), `NACK: <reason>` (it was refused) or `STALE`.
    pub fn label(&self) -> String {
        match (self.sent, self.acked, &self.nack) {
            (Some(s), _, Some((v, reason))) if *v == s => format!("NACK: {reason}"),
            (Some(s), Some(a), _) if a >= s => "SYNCED".to_string(),
            _ => "STALE".to_string(),
        }
    }
}

/// One connected proxy.
#[derive(Debug, Clone)]
pub struct Registration {
    pub id: ProxyId,
    pub workload: WorkloadInfo,
    /// Whether the workload is an endpoint now (always, without an active health check).
    pub healthy: bool,
    pub status: SyncStatus,
    pub connected_at: SystemTime,
}

/// Every connected proxy.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    registrations: BTreeMap<ProxyId, Registration>,
}

impl Registry {
    /// Registers a proxy. With an active health check it is not an endpoint until the first
    /// probe passes.
    pub fn register(&mut self, id: ProxyId, workload: WorkloadInfo) {
        let healthy = workload.health.is_none();
        self.registrations.insert(
            id,
            Registration {
                id,
                workload,
                healthy,
                status: SyncStatus::default(),
                connected_at: SystemTime::now(),
            },
        );
    }

    pub fn deregister(&mut self, id: ProxyId) -> Option<Registration> {
        self.registrations.remove(&id)
    }

    /// Records a health verdict; returns whether it changed.
    pub fn set_health(&mut self, id: ProxyId, healthy: bool) -> bool {
        match self.registrations.get_mut(&id) {
            Some(r) if r.healthy != healthy => {
                r.healthy = healthy;
                true
            }
            _ => false,
        }
    }

    pub fn get(&self, id: ProxyId) -> Option<&Registration> {
        self.registrations.get(&id)
    }

    pub fn status_mut(&mut self, id: ProxyId) -> Option<&mut SyncStatus> {
        self.registrations.get_mut(&id).map(|r| &mut r.status)
    }

    /// Every registration, in connection order.
    pub fn iter(&self) -> impl Iterator<Item = &Registration> {
        self.registrations.values()
    }
}

#[cfg(test)]
mod tests;
