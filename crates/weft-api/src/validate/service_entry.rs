//! ServiceEntry and WorkloadEntry validation: hosts, addresses, ports, resolution modes and
//! their endpoints, as Istio's `ValidateServiceEntry` and `ValidateWorkloadEntry` check them.
//!
//! Istio validates neither `location` nor `subjectAltNames` beyond their types, and neither does
//! this module.

use std::collections::BTreeSet;

use super::common::{
    check_alpha_selector, check_export_to, check_labels, check_port, fqdn, ip_subnet, is_ip,
    partial_wildcard, port_name, protocol, protocol_is_http, protocol_is_tcp, protocol_is_tls,
    unix_address, wildcard_domain,
};
use crate::diagnostic::{FieldPath, Findings};
use crate::model::{Resolution, ServiceEntry, WorkloadEntry};

/// `ValidateServiceEntry`.
pub fn check_service_entry(
    se: &ServiceEntry,
    namespace: &str,
    path: &FieldPath,
    out: &mut Findings,
) {
    if !check_selector(out, path, se) {
        return;
    }
    check_hosts(out, &path.field("hosts"), &se.hosts);
    let resolution = se.resolution.unwrap_or(Resolution::None);
    check_addresses(out, &path.field("addresses"), &se.addresses, resolution);
    let port_names = check_ports(out, &path.field("ports"), se, resolution);
    check_resolution(out, path, se, resolution, &port_names);
    // Plain TCP cannot tell hosts apart unless the hosts are ignored (resolution NONE).
    let opaque_port = se.ports.iter().any(|p| {
        let proto = p.protocol.as_deref().unwrap_or("");
        !protocol_is_http(proto) && !protocol_is_tls(proto)
    });
    if resolution != Resolution::None && se.hosts.len() > 1 && opaque_port {
        out.error(
            path.field("ports"),
            "multiple hosts provided with non-HTTP, non-TLS ports",
        );
    }
    check_export_to(
        out,
        &path.field("exportTo"),
        namespace,
        &se.export_to,
        true,
        false,
    );
}

/// The workload selector. Returns `false` when it has errors, after which Istio checks nothing
/// else.
fn check_selector(out: &mut Findings, path: &FieldPath, se: &ServiceEntry) -> bool {
    let Some(sel) = &se.workload_selector else {
        return true;
    };
    let sel_path = path.field("workloadSelector");
    if !check_alpha_selector(out, &sel_path, sel) {
        return false;
    }
    if sel.labels.as_ref().is_none_or(|l| l.is_empty()) {
        out.warn(
            &sel_path,
            "service entry: workload selector specified without labels, will be applied to all services in namespace",
        );
    }
    if !se.endpoints.is_empty() {
        out.error(
            path.field("endpoints"),
            "only one of WorkloadSelector or Endpoints is allowed in Service Entry",
        );
    }
    true
}

/// What each resolution mode requires of endpoints and hosts.
fn check_resolution(
    out: &mut Findings,
    path: &FieldPath,
    se: &ServiceEntry,
    resolution: Resolution,
    port_names: &BTreeSet<&str>,
) {
    match resolution {
        Resolution::None => {
            if !se.endpoints.is_empty() {
                out.error(
                    path.field("endpoints"),
                    "no endpoints should be provided for resolution type none",
                );
            }
            if se.workload_selector.is_some() {
                out.warn(
                    path.field("workloadSelector"),
                    "workloadSelector should not be set when resolution mode is NONE",
                );
            }
        }
        Resolution::Static => {
            let endpoints = path.field("endpoints");
            for (i, ep) in se.endpoints.iter().enumerate() {
                check_entry(out, &endpoints.index(i), ep, Some(port_names), false);
            }
        }
        Resolution::Dns | Resolution::DnsRoundRobin => {
            check_dns(out, path, se, resolution, port_names)
        }
        Resolution::DynamicDns => {
            // Istio's validator has no case for this newer mode and rejects it.
            out.error(
                path.field("resolution"),
                "unsupported resolution type DYNAMIC_DNS",
            );
        }
    }
}

/// `ValidateWorkloadEntry`: the address may be an IP, a unix socket or a host name.
pub fn check_workload_entry(we: &WorkloadEntry, path: &FieldPath, out: &mut Findings) {
    check_entry(out, path, we, None, true);
}

/// At least one host; no `*`; wildcard domains allowed; partial wildcards only warned about.
fn check_hosts(out: &mut Findings, path: &FieldPath, hosts: &[String]) {
    if hosts.is_empty() {
        out.error(path, "service entry must have at least one host");
    }
    for (j, host) in hosts.iter().enumerate() {
        let p = path.index(j);
        if host == "*" {
            out.error(&p, format!("invalid host {host}"));
            continue;
        }
        if let Err(e) = wildcard_domain(host) {
            out.error(&p, e);
        }
        if let Err(e) = partial_wildcard(host) {
            out.warn(&p, e);
        }
    }
}

/// Addresses are IPs or CIDR blocks; CIDR blocks only with NONE or STATIC resolution.
fn check_addresses(
    out: &mut Findings,
    path: &FieldPath,
    addresses: &[String],
    resolution: Resolution,
) {
    for (i, address) in addresses.iter().enumerate() {
        if let Err(e) = ip_subnet(address) {
            out.error(path.index(i), e);
        }
    }
    let cidr = addresses.iter().any(|a| a.contains('/'));
    if cidr && !matches!(resolution, Resolution::None | Resolution::Static) {
        out.error(
            path,
            "CIDR addresses are allowed only for NONE/STATIC resolution types",
        );
    }
}

/// Port names and numbers must be unique and valid. Returns the declared port names.
fn check_ports<'a>(
    out: &mut Findings,
    path: &FieldPath,
    se: &'a ServiceEntry,
    resolution: Resolution,
) -> BTreeSet<&'a str> {
    // Istio allocates addresses itself (PILOT_ENABLE_IP_AUTOALLOCATE, on by default) unless the
    // entry has addresses or resolution NONE, or opts out with the label
    // `networking.istio.io/enable-autoallocate-ip: "false"`, which this check cannot see.
    let auto_allocation = se.addresses.is_empty() && resolution != Resolution::None;
    let mut names = BTreeSet::new();
    let mut numbers = BTreeSet::new();
    for (i, port) in se.ports.iter().enumerate() {
        let p = path.index(i);
        let name = port.name.as_deref().unwrap_or("");
        let proto = port.protocol.as_deref().unwrap_or("");
        // A second empty name is not called a duplicate: "invalid port name" already covers it.
        if !names.insert(name) && !name.is_empty() {
            out.error(
                p.field("name"),
                format!("service entry port name {name:?} already defined"),
            );
        }
        if !numbers.insert(port.number) {
            out.error(
                p.field("number"),
                format!("service entry port {} already defined", port.number),
            );
        }
        if let Some(target) = port.target_port.filter(|t| *t != 0) {
            check_port(out, &p.field("targetPort"), target);
        }
        if se.addresses.is_empty() && !auto_allocation && (proto.is_empty() || proto == "TCP") {
            out.warn(
                &p,
                "addresses are required for ports serving TCP (or unset) protocol when IP Autoallocation is not enabled",
            );
        }
        if let Err(e) = port_name(name) {
            out.error(p.field("name"), e);
        }
        if let Err(e) = protocol(proto) {
            out.error(p.field("protocol"), e);
        }
        check_port(out, &p.field("number"), port.number);
    }
    names
}

/// DNS and DNS_ROUND_ROBIN: hosts must be resolvable without endpoints; endpoints are IPs or names.
fn check_dns(
    out: &mut Findings,
    path: &FieldPath,
    se: &ServiceEntry,
    resolution: Resolution,
    port_names: &BTreeSet<&str>,
) {
    let mode = if resolution == Resolution::Dns {
        "DNS"
    } else {
        "DNS_ROUND_ROBIN"
    };
    if se.endpoints.is_empty() {
        for (j, host) in se.hosts.iter().enumerate() {
            if fqdn(host).is_err() {
                out.error(
                    path.field("hosts").index(j),
                    format!(
                        "hosts must be FQDN if no endpoints are provided for resolution mode {mode}"
                    ),
                );
            }
        }
    }
    if resolution == Resolution::DnsRoundRobin && se.endpoints.len() > 1 {
        out.error(
            path.field("endpoints"),
            format!("there must only be 0 or 1 endpoint for resolution mode {mode}"),
        );
    }
    let endpoints = path.field("endpoints");
    for (i, ep) in se.endpoints.iter().enumerate() {
        check_dns_endpoint(out, &endpoints.index(i), ep, port_names);
    }
    let tcp = se
        .ports
        .iter()
        .any(|p| protocol_is_tcp(p.protocol.as_deref().unwrap_or("")));
    if !se.addresses.is_empty() && se.hosts.len() > 1 && tcp {
        out.warn(
            path.field("hosts"),
            "service entry can not have more than one host specified simultaneously with address and tcp port",
        );
    }
}

/// A DNS endpoint is an IP or a host name; its ports must be declared by the entry.
fn check_dns_endpoint(
    out: &mut Findings,
    path: &FieldPath,
    ep: &WorkloadEntry,
    port_names: &BTreeSet<&str>,
) {
    let address = ep.address.as_deref().unwrap_or("");
    if !is_ip(address) && fqdn(address).is_err() {
        out.error(
            path.field("address"),
            format!("endpoint address {address:?} is not a valid FQDN or an IP address"),
        );
    }
    check_labels(out, &path.field("labels"), &ep.labels);
    check_endpoint_ports(out, &path.field("ports"), ep, Some(port_names));
    check_weight(out, &path.field("weight"), ep.weight);
}

/// `validateWorkloadEntry`. `service_ports` is set for ServiceEntry endpoints (which must use
/// declared port names); `allow_fqdn` is false there, where only IPs and unix sockets are valid.
fn check_entry(
    out: &mut Findings,
    path: &FieldPath,
    we: &WorkloadEntry,
    service_ports: Option<&BTreeSet<&str>>,
    allow_fqdn: bool,
) {
    let address = we.address.as_deref().unwrap_or("");
    let network = we.network.as_deref().unwrap_or("");
    let ap = path.field("address");
    if address.is_empty() {
        if network.is_empty() {
            out.error(&ap, "address is required");
            return;
        }
        out.warn(&ap, format!("address is unset with network {network:?}"));
    }
    let unix = address.starts_with("unix://");
    if let Some(socket) = address.strip_prefix("unix://") {
        if let Err(e) = unix_address(socket) {
            out.error(&ap, e);
        }
        if !we.ports.is_empty() {
            out.error(
                path.field("ports"),
                format!("unix endpoint {address} must not include ports"),
            );
        }
    } else if !address.is_empty() && !is_ip(address) {
        if !allow_fqdn {
            out.error(
                &ap,
                format!("endpoint address {address:?} is not a valid IP address"),
            );
        } else if fqdn(address).is_err() {
            out.error(
                &ap,
                format!("endpoint address {address:?} is not a valid FQDN or an IP address"),
            );
        }
    }
    check_endpoint_ports(out, &path.field("ports"), we, service_ports);
    check_labels(out, &path.field("labels"), &we.labels);
    if unix && service_ports.is_some_and(|ports| ports.len() != 1) {
        out.error(&ap, "exactly 1 service port required for unix endpoints");
    }
    check_weight(out, &path.field("weight"), we.weight);
}

/// Endpoint port names must be valid (and declared by the ServiceEntry, if any); numbers in range.
fn check_endpoint_ports(
    out: &mut Findings,
    path: &FieldPath,
    we: &WorkloadEntry,
    service_ports: Option<&BTreeSet<&str>>,
) {
    for (name, number) in &we.ports {
        let p = path.key(name);
        if service_ports.is_some_and(|ports| !ports.contains(name.as_str())) {
            out.error(
                &p,
                format!("endpoint port {number} is not defined by the service entry"),
            );
        }
        if let Err(e) = port_name(name) {
            out.error(&p, e);
        }
        check_port(out, &p, *number);
    }
}

/// `weight` is a `uint32` in Istio's API: decoding (not validation) rejects other values.
fn check_weight(out: &mut Findings, path: &FieldPath, weight: Option<i64>) {
    if let Some(w) = weight.filter(|w| u32::try_from(*w).is_err()) {
        out.error(
            path,
            format!("weight {w} must be in the range 0..{}", u32::MAX),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::diagnostic::Severity;
    use crate::validate::test_support::{error, warning};

    fn run(spec: serde_json::Value) -> Findings {
        let se: ServiceEntry = serde_json::from_value(spec).unwrap();
        let mut out = Findings::default();
        check_service_entry(&se, "prod", &FieldPath::new("spec"), &mut out);
        out
    }

    fn run_we(spec: serde_json::Value) -> Findings {
        let we: WorkloadEntry = serde_json::from_value(spec).unwrap();
        let mut out = Findings::default();
        check_workload_entry(&we, &FieldPath::new("spec"), &mut out);
        out
    }

    fn https_port() -> serde_json::Value {
        json!([{"number": 443, "name": "https", "protocol": "HTTPS"}])
    }

    #[test]
    fn full_valid_examples_have_no_findings() {
        let examples = [
            json!({"hosts": ["api.example.com", "*.cdn.example.com"], "location": "MESH_EXTERNAL",
                   "ports": [{"number": 443, "name": "https", "protocol": "TLS"}], "resolution": "NONE",
                   "addresses": ["10.0.0.0/16"], "exportTo": ["~"], "subjectAltNames": ["spiffe://x"]}),
            json!({"hosts": ["db.internal"], "addresses": ["192.168.1.10"], "location": "MESH_INTERNAL",
                   "ports": [{"number": 5432, "name": "pg", "protocol": "TCP", "targetPort": 15432}],
                   "resolution": "STATIC",
                   "endpoints": [{"address": "10.1.1.1", "ports": {"pg": 5433}, "labels": {"v": "1"}, "weight": 3},
                                 {"address": "10.1.1.2", "network": "n1", "locality": "us/z1"}]}),
            json!({"hosts": ["www.example.com"], "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
                   "resolution": "DNS", "endpoints": [{"address": "origin.example.com"}]}),
            json!({"hosts": ["ext.example.com"], "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
                   "resolution": "DNS_ROUND_ROBIN"}),
            json!({"hosts": ["uds.local"], "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
                   "resolution": "STATIC", "endpoints": [{"address": "unix:///var/run/app.sock"}]}),
            json!({"hosts": ["vm.prod.svc"], "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
                   "resolution": "STATIC", "workloadSelector": {"labels": {"app": "vm"}}}),
        ];
        for e in examples {
            let out = run(e.clone());
            assert!(out.is_empty(), "{e}: {:#?}", out.iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn hosts() {
        error(
            &run(json!({"resolution": "STATIC"})),
            "spec.hosts",
            "service entry must have at least one host",
        );
        let out = run(
            json!({"hosts": ["*", "foo.*.com", "*foo.com", "1.2.3.4"], "resolution": "STATIC"}),
        );
        error(&out, "spec.hosts[0]", "invalid host *");
        error(&out, "spec.hosts[1]", "invalid (label \"*\" invalid)");
        warning(
            &out,
            "spec.hosts[2]",
            "partial wildcard \"*foo.com\" not allowed",
        );
        assert!(
            !out.iter()
                .any(|f| f.field == "spec.hosts[2]" && f.severity == Severity::Error)
        );
        error(&out, "spec.hosts[3]", "cannot be all-numeric");
    }

    #[test]
    fn addresses() {
        let out = run(
            json!({"hosts": ["a.com"], "addresses": ["10.0.0.0/33", "nope"], "resolution": "STATIC"}),
        );
        error(
            &out,
            "spec.addresses[0]",
            "10.0.0.0/33 is not a valid CIDR block",
        );
        error(&out, "spec.addresses[1]", "nope is not a valid IP");
        let out = run(
            json!({"hosts": ["a.com"], "addresses": ["10.0.0.0/8"], "resolution": "DNS",
                             "ports": https_port()}),
        );
        error(
            &out,
            "spec.addresses",
            "CIDR addresses are allowed only for NONE/STATIC resolution types",
        );
    }

    #[test]
    fn ports() {
        let out = run(
            json!({"hosts": ["a.com"], "resolution": "STATIC", "ports": [
                {"number": 80, "name": "http", "protocol": "HTTP"},
                {"number": 80, "name": "http", "protocol": "HTTP"},
                {"number": 70000, "name": "bad_name", "protocol": "SMTP", "targetPort": 70001},
                {"number": 81, "protocol": "HTTP"}
            ]}),
        );
        error(
            &out,
            "spec.ports[1].name",
            "service entry port name \"http\" already defined",
        );
        error(
            &out,
            "spec.ports[1].number",
            "service entry port 80 already defined",
        );
        error(
            &out,
            "spec.ports[2].number",
            "port number 70000 must be in the range",
        );
        error(
            &out,
            "spec.ports[2].targetPort",
            "port number 70001 must be in the range",
        );
        error(&out, "spec.ports[2].name", "invalid port name: bad_name");
        error(&out, "spec.ports[2].protocol", "unsupported protocol: SMTP");
        error(&out, "spec.ports[3].name", "invalid port name: ");
    }

    #[test]
    fn tcp_ports_without_addresses_warn_when_not_auto_allocated() {
        let out = run(json!({"hosts": ["a.com"], "ports": [{"number": 9000, "name": "tcp"}]}));
        warning(
            &out,
            "spec.ports[0]",
            "addresses are required for ports serving TCP (or unset) protocol",
        );
        let out = run(
            json!({"hosts": ["a.com"], "resolution": "DNS", "ports": [{"number": 9000, "name": "tcp"}]}),
        );
        assert!(out.is_empty(), "auto-allocated");
    }

    #[test]
    fn workload_selector() {
        let out = run(json!({"hosts": ["*"], "workloadSelector": {"labels": {"app": "*"}}}));
        error(
            &out,
            "spec.workloadSelector.labels.app",
            "wildcard is not supported in selector: \"app=*\"",
        );
        assert_eq!(out.iter().count(), 1, "validation stops at selector errors");
        let out = run(
            json!({"hosts": ["a.com"], "resolution": "STATIC", "workloadSelector": {},
                             "endpoints": [{"address": "1.1.1.1"}], "ports": https_port()}),
        );
        warning(
            &out,
            "spec.workloadSelector",
            "service entry: workload selector specified without labels, will be applied",
        );
        error(
            &out,
            "spec.endpoints",
            "only one of WorkloadSelector or Endpoints is allowed in Service Entry",
        );
    }

    #[test]
    fn resolution_none() {
        let out = run(
            json!({"hosts": ["a.com"], "ports": https_port(), "endpoints": [{"address": "1.1.1.1"}]}),
        );
        error(
            &out,
            "spec.endpoints",
            "no endpoints should be provided for resolution type none",
        );
        let out = run(
            json!({"hosts": ["a.com"], "ports": https_port(), "workloadSelector": {"labels": {"a": "b"}}}),
        );
        warning(
            &out,
            "spec.workloadSelector",
            "workloadSelector should not be set when resolution mode is NONE",
        );
        assert!(!out.has_errors());
    }

    #[test]
    fn resolution_static_endpoints() {
        let out = run(
            json!({"hosts": ["a.com"], "resolution": "STATIC", "ports": https_port(), "endpoints": [
                {"address": "backend.example.com"},
                {"address": "1.1.1.1", "ports": {"http": 8080, "https": 0}},
                {},
                {"network": "remote"},
                {"address": "unix://relative.sock", "ports": {"https": 1}},
                {"address": "1.1.1.2", "labels": {"k": "bad value"}, "weight": -1}
            ]}),
        );
        error(
            &out,
            "spec.endpoints[0].address",
            "endpoint address \"backend.example.com\" is not a valid IP address",
        );
        error(
            &out,
            "spec.endpoints[1].ports.http",
            "endpoint port 8080 is not defined by the service entry",
        );
        error(
            &out,
            "spec.endpoints[1].ports.https",
            "port number 0 must be in the range",
        );
        error(&out, "spec.endpoints[2].address", "address is required");
        warning(
            &out,
            "spec.endpoints[3].address",
            "address is unset with network \"remote\"",
        );
        error(
            &out,
            "spec.endpoints[4].address",
            "relative.sock is not an absolute path to a file",
        );
        error(
            &out,
            "spec.endpoints[4].ports",
            "unix endpoint unix://relative.sock must not include ports",
        );
        error(
            &out,
            "spec.endpoints[5].labels.k",
            "invalid tag value: \"bad value\"",
        );
        error(
            &out,
            "spec.endpoints[5].weight",
            "weight -1 must be in the range 0..4294967295",
        );
    }

    #[test]
    fn unix_endpoints_need_exactly_one_service_port() {
        let out = run(
            json!({"hosts": ["a.com"], "resolution": "STATIC", "endpoints": [{"address": "unix:///s.sock"}],
                             "ports": [{"number": 80, "name": "http", "protocol": "HTTP"},
                                       {"number": 81, "name": "http2", "protocol": "HTTP"}]}),
        );
        error(
            &out,
            "spec.endpoints[0].address",
            "exactly 1 service port required for unix endpoints",
        );
    }

    #[test]
    fn resolution_dns() {
        let out =
            run(json!({"hosts": ["*.example.com"], "resolution": "DNS", "ports": https_port()}));
        error(
            &out,
            "spec.hosts[0]",
            "hosts must be FQDN if no endpoints are provided for resolution mode DNS",
        );
        let out = run(
            json!({"hosts": ["a.com"], "resolution": "DNS_ROUND_ROBIN", "ports": https_port(),
                             "endpoints": [{"address": "1.1.1.1"}, {"address": "bad_host"}]}),
        );
        error(
            &out,
            "spec.endpoints",
            "there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN",
        );
        error(
            &out,
            "spec.endpoints[1].address",
            "endpoint address \"bad_host\" is not a valid FQDN or an IP address",
        );
        let out = run(
            json!({"hosts": ["a.com"], "resolution": "DNS", "ports": https_port(),
                             "endpoints": [{"address": "b.com", "ports": {"grpc": 9000}}]}),
        );
        error(
            &out,
            "spec.endpoints[0].ports.grpc",
            "endpoint port 9000 is not defined by the service entry",
        );
    }

    #[test]
    fn multiple_hosts_need_http_or_tls_ports() {
        let out = run(
            json!({"hosts": ["a.com", "b.com"], "resolution": "DNS", "addresses": ["10.0.0.1"],
                             "ports": [{"number": 9000, "name": "tcp", "protocol": "TCP"}]}),
        );
        error(
            &out,
            "spec.ports",
            "multiple hosts provided with non-HTTP, non-TLS ports",
        );
        warning(
            &out,
            "spec.hosts",
            "can not have more than one host specified simultaneously with address and tcp port",
        );
        let out = run(
            json!({"hosts": ["a.com", "b.com"], "resolution": "NONE", "addresses": ["10.0.0.1"],
                             "ports": [{"number": 9000, "name": "tcp", "protocol": "TCP"}]}),
        );
        assert!(out.is_empty(), "{:#?}", out.iter().collect::<Vec<_>>());
        let out =
            run(json!({"hosts": ["a.com", "b.com"], "resolution": "DNS", "ports": https_port()}));
        assert!(out.is_empty());
    }

    #[test]
    fn dynamic_dns_is_unsupported() {
        let out =
            run(json!({"hosts": ["a.com"], "resolution": "DYNAMIC_DNS", "ports": https_port()}));
        error(
            &out,
            "spec.resolution",
            "unsupported resolution type DYNAMIC_DNS",
        );
    }

    #[test]
    fn export_to_allows_lone_tilde() {
        assert!(
            run(json!({"hosts": ["a.com"], "ports": https_port(), "exportTo": ["~"]})).is_empty()
        );
        let out =
            run(json!({"hosts": ["a.com"], "ports": https_port(), "exportTo": ["~", "prod"]}));
        error(
            &out,
            "spec.exportTo",
            "cannot export service entry to no one (~) and someone",
        );
    }

    #[test]
    fn workload_entries() {
        let ok = run_we(
            json!({"address": "vm1.example.com", "ports": {"http": 8080}, "labels": {"app": "vm"},
                               "serviceAccount": "sa", "network": "n1", "locality": "r/z", "weight": 10}),
        );
        assert!(ok.is_empty());
        assert!(run_we(json!({"address": "2001:db8::1"})).is_empty());
        error(&run_we(json!({})), "spec.address", "address is required");
        let out = run_we(json!({"network": "n2"}));
        warning(&out, "spec.address", "address is unset with network \"n2\"");
        assert!(!out.has_errors());
        let out = run_we(json!({"address": "bad_host", "ports": {"Bad_Name": 70000}}));
        error(
            &out,
            "spec.address",
            "endpoint address \"bad_host\" is not a valid FQDN or an IP address",
        );
        error(&out, "spec.ports.Bad_Name", "invalid port name: Bad_Name");
        error(
            &out,
            "spec.ports.Bad_Name",
            "port number 70000 must be in the range",
        );
        let out = run_we(json!({"address": "unix://@abstract", "ports": {"http": 80}}));
        error(
            &out,
            "spec.ports",
            "unix endpoint unix://@abstract must not include ports",
        );
        error(
            &run_we(json!({"address": "unix://"})),
            "spec.address",
            "unix address must not be empty",
        );
    }
}
