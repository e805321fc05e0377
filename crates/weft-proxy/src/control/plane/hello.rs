//! Who the proxy says it is in its Hello: the workload's name, namespace, service account,
//! service and version, labels, the service port it serves and where other proxies reach it.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use super::ControlPlaneOptions;
use crate::listener::http::Workload;

/// The protocol of the service port a workload registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServiceProtocol {
    #[default]
    Http,
    Http2,
    Grpc,
    Tcp,
}

impl ServiceProtocol {
    /// Istio's protocol name (`HTTP`, `HTTP2`, `GRPC`, `TCP`).
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceProtocol::Http => "HTTP",
            ServiceProtocol::Http2 => "HTTP2",
            ServiceProtocol::Grpc => "GRPC",
            ServiceProtocol::Tcp => "TCP",
        }
    }

    /// The port name Istio derives the protocol from (`http`, `http2`, `grpc`, `tcp`).
    pub fn port_name(self) -> &'static str {
        match self {
            ServiceProtocol::Http => "http",
            ServiceProtocol::Http2 => "http2",
            ServiceProtocol::Grpc => "grpc",
            ServiceProtocol::Tcp => "tcp",
        }
    }
}

impl FromStr for ServiceProtocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "HTTP" => Ok(ServiceProtocol::Http),
            "HTTP2" => Ok(ServiceProtocol::Http2),
            "GRPC" => Ok(ServiceProtocol::Grpc),
            "TCP" => Ok(ServiceProtocol::Tcp),
            _ => Err(format!("{s:?}: expected HTTP, HTTP2, GRPC or TCP")),
        }
    }
}

/// An active health check of the application, run by the control plane: a workload whose check
/// fails stops being an endpoint of its service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthProbe {
    pub kind: ProbeKind,
    /// The application port to probe.
    pub port: u16,
    /// Time between probes (`None`: the control plane's default).
    pub period: Option<Duration>,
    /// Failed probes in a row before the workload counts as unhealthy.
    pub failure_threshold: u32,
}

/// What a health probe does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeKind {
    /// `GET path` answered 2xx or 3xx.
    Http { path: String },
    /// An accepted TCP connection.
    Tcp,
}

impl FromStr for ProbeKind {
    type Err = String;

    /// `http:/PATH` or `tcp`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            None if s.eq_ignore_ascii_case("tcp") => Ok(ProbeKind::Tcp),
            Some((kind, path)) if kind.eq_ignore_ascii_case("http") && path.starts_with('/') => {
                Ok(ProbeKind::Http {
                    path: path.to_string(),
                })
            }
            _ => Err(format!("{s:?}: expected http:/PATH or tcp")),
        }
    }
}

impl HealthProbe {
    fn to_proto(&self) -> weft_proto::HealthCheck {
        let (kind, path) = match &self.kind {
            ProbeKind::Http { path } => ("http", path.clone()),
            ProbeKind::Tcp => ("tcp", String::new()),
        };
        weft_proto::HealthCheck {
            kind: kind.to_string(),
            path,
            port: u32::from(self.port),
            period_ms: self
                .period
                .map_or(0, |p| u64::try_from(p.as_millis()).unwrap_or(u64::MAX)),
            failure_threshold: self.failure_threshold,
        }
    }
}

/// `<service>-<version>-<4 random hex digits>`: unique enough among the replicas of a version.
fn proxy_name(service: &str, version: &str) -> String {
    format!("{service}-{version}-{:04x}", fastrand::u16(..))
}

/// The Workload of the Hello. `inbound` is the bound inbound listener; when it is bound to an
/// unspecified address (`0.0.0.0`), the address is left empty and filled in per connection
/// with [`with_address`].
pub(super) fn registration(
    opts: &ControlPlaneOptions,
    workload: &Workload,
    inbound: SocketAddr,
) -> weft_proto::Workload {
    let address = if inbound.ip().is_unspecified() {
        String::new()
    } else {
        inbound.ip().to_string()
    };
    weft_proto::Workload {
        name: opts
            .name
            .clone()
            .unwrap_or_else(|| proxy_name(&opts.service, &opts.version)),
        namespace: workload.namespace.clone(),
        service_account: workload.service_account.clone(),
        service: opts.service.clone(),
        version: opts.version.clone(),
        labels: workload
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        ports: vec![weft_proto::ServicePort {
            number: u32::from(opts.service_port),
            name: opts.protocol.port_name().to_string(),
            protocol: opts.protocol.as_str().to_string(),
            target_port: u32::from(inbound.port()),
        }],
        address,
        health: opts.health.as_ref().map(HealthProbe::to_proto),
    }
}

/// The registration with its address set: the inbound listener's IP, or, when that is
/// unspecified, the address this proxy reaches the control plane from.
pub(super) fn with_address(
    registration: &weft_proto::Workload,
    local: Option<SocketAddr>,
) -> weft_proto::Workload {
    let mut workload = registration.clone();
    if workload.address.is_empty() {
        let ip = local.map_or(IpAddr::from([127, 0, 0, 1]), |addr| addr.ip());
        workload.address = ip.to_string();
    }
    workload
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::control::plane::BootstrapToken;

    fn opts(name: Option<&str>) -> ControlPlaneOptions {
        ControlPlaneOptions {
            address: "127.0.0.1:15012".into(),
            token: BootstrapToken::new("t"),
            ca_bundle: PathBuf::from("/dev/null"),
            service: "reviews".into(),
            version: "v2".into(),
            service_port: 9080,
            protocol: ServiceProtocol::Http,
            trust_domain: "cluster.local".into(),
            name: name.map(String::from),
            health: None,
        }
    }

    fn workload() -> Workload {
        Workload {
            name: "reviews-v2".into(),
            namespace: "bookinfo".into(),
            service_account: "bookinfo-reviews".into(),
            labels: [("app", "reviews"), ("version", "v2"), ("tier", "backend")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            root_namespace: "istio-system".into(),
        }
    }

    #[test]
    fn registers_the_service_port_on_the_inbound_listener() {
        let hello = registration(
            &opts(Some("reviews-a")),
            &workload(),
            "127.0.0.1:40123".parse().unwrap(),
        );
        assert_eq!(hello.name, "reviews-a");
        assert_eq!(hello.namespace, "bookinfo");
        assert_eq!(hello.service_account, "bookinfo-reviews");
        assert_eq!(
            (hello.service.as_str(), hello.version.as_str()),
            ("reviews", "v2")
        );
        assert_eq!(
            hello.labels.get("tier").map(String::as_str),
            Some("backend")
        );
        assert_eq!(hello.labels.get("app").map(String::as_str), Some("reviews"));
        assert_eq!(
            hello.ports,
            vec![weft_proto::ServicePort {
                number: 9080,
                name: "http".into(),
                protocol: "HTTP".into(),
                target_port: 40123,
            }]
        );
        assert_eq!(hello.address, "127.0.0.1");
        assert_eq!(with_address(&hello, None).address, "127.0.0.1");
        assert_eq!(hello.health, None);
    }

    #[test]
    fn health_probes_are_registered() {
        let mut opts = opts(None);
        opts.health = Some(HealthProbe {
            kind: "http:/healthz".parse().unwrap(),
            port: 8080,
            period: Some(Duration::from_millis(1500)),
            failure_threshold: 3,
        });
        let hello = registration(&opts, &workload(), "127.0.0.1:1".parse().unwrap());
        assert_eq!(
            hello.health,
            Some(weft_proto::HealthCheck {
                kind: "http".into(),
                path: "/healthz".into(),
                port: 8080,
                period_ms: 1500,
                failure_threshold: 3,
            })
        );
        assert_eq!("TCP".parse::<ProbeKind>(), Ok(ProbeKind::Tcp));
        for bad in ["http", "http:healthz", "udp", "tcp:/x", ""] {
            assert!(bad.parse::<ProbeKind>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn default_names_are_service_version_and_four_hex_digits() {
        let hello = registration(&opts(None), &workload(), "127.0.0.1:1".parse().unwrap());
        let suffix = hello.name.strip_prefix("reviews-v2-").unwrap();
        assert_eq!(suffix.len(), 4);
        assert!(
            suffix.chars().all(|c| c.is_ascii_hexdigit()),
            "{}",
            hello.name
        );
    }

    #[test]
    fn an_unspecified_inbound_address_uses_the_control_plane_connection() {
        let hello = registration(&opts(None), &workload(), "0.0.0.0:15006".parse().unwrap());
        assert_eq!(hello.address, "");
        let local = "10.1.2.3:53211".parse().ok();
        assert_eq!(with_address(&hello, local).address, "10.1.2.3");
    }

    #[test]
    fn protocols_parse_and_name_their_ports() {
        for (text, protocol, name) in [
            ("HTTP", ServiceProtocol::Http, "http"),
            ("http2", ServiceProtocol::Http2, "http2"),
            ("GRPC", ServiceProtocol::Grpc, "grpc"),
            ("tcp", ServiceProtocol::Tcp, "tcp"),
        ] {
            let parsed: ServiceProtocol = text.parse().unwrap();
            assert_eq!(parsed, protocol);
            assert_eq!(parsed.port_name(), name);
        }
        assert!("UDP".parse::<ServiceProtocol>().is_err());
    }
}
