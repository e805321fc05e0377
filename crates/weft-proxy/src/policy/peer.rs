//! PeerAuthentication: which mTLS mode the inbound listener enforces for this workload and
//! port. (Stub: the helper implementing it replaces this file.)

use std::collections::BTreeMap;

use weft_api::Resource;

/// The mode enforced on one inbound port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum PeerMode {
    /// mTLS required: plaintext connections are closed.
    Strict,
    /// mTLS and plaintext both accepted on the same port (Istio's default).
    Permissive,
    /// Plaintext only: the listener does not terminate TLS.
    Disable,
}

/// The PeerAuthentication policies of one workload, resolved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PeerAuthenticator {
    default: PeerMode,
    ports: BTreeMap<u16, PeerMode>,
}

impl PeerAuthenticator {
    pub fn for_workload(
        _resources: &[Resource],
        _namespace: &str,
        _labels: &BTreeMap<String, String>,
        _root_namespace: &str,
    ) -> PeerAuthenticator {
        PeerAuthenticator {
            default: PeerMode::Permissive,
            ports: BTreeMap::new(),
        }
    }

    /// The mode for connections to the workload's `port` (the application's port).
    pub fn mode(&self, port: u16) -> PeerMode {
        self.ports.get(&port).copied().unwrap_or(self.default)
    }
}
