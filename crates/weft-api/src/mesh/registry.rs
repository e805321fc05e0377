//! Endpoints as the proxy dials them: an IP or DNS name, the ports they serve per service port,
//! their labels (for subsets) and weight.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

/// Where an endpoint is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum EndpointAddress {
    Ip(IpAddr),
    /// Resolved when connecting (`resolution: DNS`, or an ALLOW_ANY passthrough host).
    Dns(String),
}

impl std::fmt::Display for EndpointAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndpointAddress::Ip(ip) => write!(f, "{ip}"),
            EndpointAddress::Dns(h) => f.write_str(h),
        }
    }
}

/// One endpoint of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub address: EndpointAddress,
    /// Service port → port on this endpoint (a WorkloadEntry's `ports` by name, else the
    /// service port's `targetPort`, else the service port itself).
    pub ports: BTreeMap<u16, u16>,
    pub labels: BTreeMap<String, String>,
    /// Relative weight (default 1).
    pub weight: u32,
    /// The SPIFFE ID of the endpoint's service account
    /// (`spiffe://<trust domain>/ns/<ns>/sa/<serviceAccount>`), when known: the server identity
    /// mTLS expects.
    pub identity: Option<String>,
}

impl Endpoint {
    /// The port to dial for `service_port`; with `None`, the endpoint's first port.
    pub fn port_for(&self, service_port: Option<u16>) -> Option<u16> {
        match service_port {
            Some(p) => self.ports.get(&p).copied(),
            None => self.ports.values().next().copied(),
        }
    }
}
