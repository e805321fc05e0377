//! Compiled TCP and TLS routes (a VirtualService's `tcp` and `tls` lists) and how one
//! connection is matched against them: `L4MatchAttributes` by port and subnets, and
//! `TLSMatchAttributes` by SNI host as well. Routes are evaluated in order; the first whose match
//! blocks accept the connection wins (no blocks accept everything).

use std::net::IpAddr;

use serde::Serialize;

use super::WeightedDestination;
use crate::host::host_matches;

/// The TCP and TLS routes of one host, from the VirtualService that routes it.
#[derive(Debug, Clone, Serialize)]
pub struct TcpRouteSet {
    /// The canonical host (FQDN for services, literal for ServiceEntry hosts).
    pub name: String,
    /// `namespace/name` of the VirtualService.
    pub virtual_service: String,
    /// `tls` routes, in order: matched on the SNI of the client's TLS ClientHello.
    pub tls: Vec<TlsRoute>,
    /// `tcp` routes, in order.
    pub tcp: Vec<TcpRoute>,
}

/// One compiled `tcp` route.
#[derive(Debug, Clone, Serialize)]
pub struct TcpRoute {
    /// `<vs-name>.tcp.<index>` (TCP routes have no `name` field).
    pub name: String,
    /// OR of match blocks; empty matches every connection.
    pub matches: Vec<L4Match>,
    /// Weighted destinations (relative weights, as for HTTP routes).
    pub destinations: Vec<WeightedDestination>,
}

/// One compiled `tls` route.
#[derive(Debug, Clone, Serialize)]
pub struct TlsRoute {
    /// `<vs-name>.tls.<index>`.
    pub name: String,
    /// OR of match blocks (validation requires at least one).
    pub matches: Vec<TlsMatch>,
    pub destinations: Vec<WeightedDestination>,
}

/// `L4MatchAttributes`: every present field must hold. `sourceLabels`, `gateways` and
/// `sourceNamespace` are config-time selectors, applied when compiling.
#[derive(Debug, Clone, Default, Serialize)]
pub struct L4Match {
    pub port: Option<u16>,
    /// The connection's destination IP must be in one of these (when any are given).
    pub destination_subnets: Vec<IpNet>,
    pub source_subnet: Option<IpNet>,
}

/// `TLSMatchAttributes`: the SNI must match one of `sni_hosts` (exact or `*.suffix`, lowercase),
/// and the port and subnets as for [`L4Match`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct TlsMatch {
    pub sni_hosts: Vec<String>,
    pub port: Option<u16>,
    pub destination_subnets: Vec<IpNet>,
}

/// What L4 matching knows about a connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionFacts {
    /// The destination port the client asked for.
    pub port: u16,
    /// The destination IP, when the client named one (a host name has none).
    pub destination_ip: Option<IpAddr>,
    /// The client's address.
    pub source_ip: Option<IpAddr>,
}

/// An IP network (`10.0.0.0/8`, `2001:db8::/32`; a bare address is a host network).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `addr` or `addr/prefix`; `None` when either part is invalid.
    pub fn parse(text: &str) -> Option<IpNet> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, bits)) => (addr, Some(bits)),
            None => (text, None),
        };
        let addr: IpAddr = addr.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(bits) if bits.bytes().all(|b| b.is_ascii_digit()) => bits.parse().ok()?,
            Some(_) => return None,
            None => max,
        };
        (prefix <= max).then_some(IpNet { addr, prefix })
    }

    /// Whether `ip` is in this network. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for IpNet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A port condition: absent matches every port.
fn port_ok(port: Option<u16>, facts: &ConnectionFacts) -> bool {
    port.is_none_or(|p| p == facts.port)
}

/// Destination subnets: none given matches; otherwise the destination IP must be known and in one.
fn subnets_ok(subnets: &[IpNet], facts: &ConnectionFacts) -> bool {
    subnets.is_empty()
        || facts
            .destination_ip
            .is_some_and(|ip| subnets.iter().any(|n| n.contains(ip)))
}

impl L4Match {
    pub fn matches(&self, facts: &ConnectionFacts) -> bool {
        let source_ok = self
            .source_subnet
            .is_none_or(|net| facts.source_ip.is_some_and(|ip| net.contains(ip)));
        port_ok(self.port, facts) && subnets_ok(&self.destination_subnets, facts) && source_ok
    }
}

impl TlsMatch {
    /// Whether a connection whose ClientHello named `sni` matches (SNI compared lowercase).
    pub fn matches(&self, sni: &str, facts: &ConnectionFacts) -> bool {
        let sni = sni.trim_end_matches('.').to_ascii_lowercase();
        port_ok(self.port, facts)
            && subnets_ok(&self.destination_subnets, facts)
            && self.sni_hosts.iter().any(|h| host_matches(h, &sni))
    }
}

impl TcpRoute {
    /// Whether the route can apply to connections to `port` (some block allows the port).
    pub fn serves_port(&self, port: u16) -> bool {
        self.matches.is_empty()
            || self
                .matches
                .iter()
                .any(|m| m.port.is_none_or(|p| p == port))
    }
}

impl TlsRoute {
    pub fn serves_port(&self, port: u16) -> bool {
        self.matches
            .iter()
            .any(|m| m.port.is_none_or(|p| p == port))
    }
}

impl TcpRouteSet {
    /// Whether any route of the set can apply to connections to `port`.
    pub fn serves_port(&self, port: u16) -> bool {
        self.tls.iter().any(|r| r.serves_port(port)) || self.tcp.iter().any(|r| r.serves_port(port))
    }

    /// Whether a `tls` route can apply to `port` (so the ClientHello is worth reading).
    pub fn has_tls_for_port(&self, port: u16) -> bool {
        self.tls.iter().any(|r| r.serves_port(port))
    }

    /// The first `tcp` route that matches the connection.
    pub fn tcp_route(&self, facts: &ConnectionFacts) -> Option<&TcpRoute> {
        self.tcp
            .iter()
            .find(|r| r.matches.is_empty() || r.matches.iter().any(|m| m.matches(facts)))
    }

    /// The first `tls` route whose match blocks accept `sni` and the connection.
    pub fn tls_route(&self, sni: &str, facts: &ConnectionFacts) -> Option<&TlsRoute> {
        self.tls
            .iter()
            .find(|r| r.matches.iter().any(|m| m.matches(sni, facts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        IpNet::parse(s).unwrap_or_else(|| panic!("{s}"))
    }

    fn facts(port: u16, dst: Option<&str>) -> ConnectionFacts {
        ConnectionFacts {
            port,
            destination_ip: dst.map(|d| d.parse().unwrap()),
            source_ip: Some("192.168.1.7".parse().unwrap()),
        }
    }

    #[test]
    fn ip_networks_parse_and_contain() {
        assert!(net("10.0.0.0/8").contains("10.200.3.4".parse().unwrap()));
        assert!(!net("10.0.0.0/8").contains("11.0.0.1".parse().unwrap()));
        assert!(net("0.0.0.0/0").contains("8.8.8.8".parse().unwrap()));
        assert!(net("10.1.2.3").contains("10.1.2.3".parse().unwrap()));
        assert!(!net("10.1.2.3").contains("10.1.2.4".parse().unwrap()));
        assert!(net("2001:db8::/32").contains("2001:db8:1::1".parse().unwrap()));
        assert!(net("::/0").contains("::1".parse().unwrap()));
        assert!(net("10.0.0.0/8").contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!net("10.0.0.0/8").contains("2001:db8::1".parse().unwrap()));
        for bad in [
            "10.0.0.0/33",
            "x/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "::/129",
            "",
        ] {
            assert_eq!(IpNet::parse(bad), None, "{bad}");
        }
        assert_eq!(net("10.0.0.0/8").to_string(), "10.0.0.0/8");
    }

    #[test]
    fn l4_blocks_need_every_field() {
        let m = L4Match {
            port: Some(5432),
            destination_subnets: vec![net("10.0.0.0/8")],
            source_subnet: Some(net("192.168.0.0/16")),
        };
        assert!(m.matches(&facts(5432, Some("10.1.1.1"))));
        assert!(!m.matches(&facts(5433, Some("10.1.1.1"))));
        assert!(!m.matches(&facts(5432, Some("11.1.1.1"))));
        assert!(!m.matches(&facts(5432, None)), "a host name has no IP");
        let from_elsewhere = ConnectionFacts {
            source_ip: Some("172.16.0.1".parse().unwrap()),
            ..facts(5432, Some("10.1.1.1"))
        };
        assert!(!m.matches(&from_elsewhere));
        assert!(L4Match::default().matches(&facts(1, None)));
    }

    fn dest(host: &str) -> Vec<WeightedDestination> {
        vec![WeightedDestination {
            cluster: crate::mesh::ClusterKey {
                host: host.into(),
                subset: None,
                port: None,
            },
            weight: 100,
            headers: Default::default(),
        }]
    }

    #[test]
    fn first_matching_route_wins() {
        let set = TcpRouteSet {
            name: "db".into(),
            virtual_service: "default/db".into(),
            tls: vec![TlsRoute {
                name: "db.tls.0".into(),
                matches: vec![TlsMatch {
                    sni_hosts: vec!["*.example.com".into()],
                    port: Some(443),
                    destination_subnets: Vec::new(),
                }],
                destinations: dest("tls"),
            }],
            tcp: vec![
                TcpRoute {
                    name: "db.tcp.0".into(),
                    matches: vec![L4Match {
                        port: Some(5432),
                        ..L4Match::default()
                    }],
                    destinations: dest("pg"),
                },
                TcpRoute {
                    name: "db.tcp.1".into(),
                    matches: Vec::new(),
                    destinations: dest("any"),
                },
            ],
        };
        let name = |r: Option<&TcpRoute>| r.map(|r| r.name.clone());
        assert_eq!(
            name(set.tcp_route(&facts(5432, None))).as_deref(),
            Some("db.tcp.0")
        );
        assert_eq!(
            name(set.tcp_route(&facts(1, None))).as_deref(),
            Some("db.tcp.1")
        );
        assert!(
            set.tls_route("API.example.com.", &facts(443, None))
                .is_some()
        );
        assert!(set.tls_route("example.com", &facts(443, None)).is_none());
        assert!(set.tls_route("a.example.com", &facts(8443, None)).is_none());
        assert!(set.has_tls_for_port(443) && !set.has_tls_for_port(5432));
        assert!(
            set.serves_port(1),
            "the catch-all tcp route serves every port"
        );
    }
}
