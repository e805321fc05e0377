//! Sidecar validation: workload selector, ingress and egress listeners, connection pools and the
//! outbound traffic policy, as Istio's `ValidateSidecar` checks them.

use std::collections::{BTreeMap, BTreeSet};

use super::common::{
    check_alpha_selector, check_destination, check_port, fqdn, ip_address, namespace_slash_host,
    port_name, protocol, protocol_is_http, protocol_is_tls, unix_address,
};
use super::destination_rule::check_connection_pool;
use super::gateway::{check_server_tls, server_tls_mode_name};
use crate::diagnostic::{FieldPath, Findings};
use crate::model::{
    CaptureMode, EgressListener, IngressListener, OutboundTrafficMode, OutboundTrafficPolicy, Port,
    ServerTlsMode, ServerTlsSettings, Sidecar,
};

/// Hosts a sidecar ingress `defaultEndpoint` may forward to.
const DEFAULT_ENDPOINT_HOSTS: [&str; 5] = ["", "127.0.0.1", "0.0.0.0", "::1", "::"];

/// `ValidateSidecar`.
pub fn check(sc: &Sidecar, path: &FieldPath, out: &mut Findings) {
    let sel_path = path.field("workloadSelector");
    if sc
        .workload_selector
        .as_ref()
        .is_some_and(|sel| !check_alpha_selector(out, &sel_path, sel))
    {
        return;
    }
    let empty = sc.egress.is_empty()
        && sc.ingress.is_empty()
        && sc.outbound_traffic_policy.is_none()
        && sc.inbound_connection_pool.is_none();
    if empty {
        out.error(path, "sidecar: empty configuration provided");
        return;
    }
    let no_labels = sc
        .workload_selector
        .as_ref()
        .map(|s| s.labels.as_ref().is_none_or(|l| l.is_empty()));
    if no_labels == Some(true) {
        out.warn(
            &sel_path,
            "sidecar: workload selector specified without labels, will be applied to all services in namespace",
        );
    }
    check_ingress(out, &path.field("ingress"), &sc.ingress);
    if let Some(pool) = &sc.inbound_connection_pool {
        check_connection_pool(out, &path.field("inboundConnectionPool"), pool);
    }
    check_egress(out, &path.field("egress"), &sc.egress);
    if let Some(policy) = &sc.outbound_traffic_policy {
        check_outbound(out, &path.field("outboundTrafficPolicy"), policy);
    }
}

fn check_ingress(out: &mut Findings, path: &FieldPath, listeners: &[IngressListener]) {
    let mut numbers = BTreeSet::new();
    for (i, listener) in listeners.iter().enumerate() {
        let p = path.index(i);
        let Some(port) = &listener.port else {
            out.error(
                p.field("port"),
                "sidecar: port is required for ingress listeners",
            );
            continue;
        };
        let port_path = p.field("port");
        check_listener_port(out, &port_path, port);
        check_port(out, &port_path.field("number"), port.number);
        check_ip_bind(out, &p.field("bind"), listener.bind.as_deref());
        if !numbers.insert(port.number) {
            out.error(
                port_path.field("number"),
                "sidecar: ports on IP bound listeners must be unique",
            );
        }
        if let Some(endpoint) = listener
            .default_endpoint
            .as_deref()
            .filter(|e| !e.is_empty())
        {
            check_default_endpoint(out, &p.field("defaultEndpoint"), endpoint);
        }
        let proto = port.protocol.as_deref().unwrap_or("");
        if let Some(tls) = &listener.tls {
            check_ingress_tls(out, &p.field("tls"), tls, proto);
        }
        if let Some(pool) = &listener.connection_pool {
            check_connection_pool(out, &p.field("connectionPool"), pool);
            if pool.http.is_some() && !protocol_is_http(proto) {
                let name = port.name.as_deref().unwrap_or("");
                out.warn(
                    p.field("connectionPool").field("http"),
                    format!(
                        "sidecar: HTTP connection pool settings are configured for port {} ({name:?}) but its protocol is not HTTP ({proto}); only TCP settings will apply",
                        port.number
                    ),
                );
            }
        }
    }
}

/// Checks every listener port shares: no `targetPort`, an optional valid name, a known protocol.
fn check_listener_port(out: &mut Findings, path: &FieldPath, port: &Port) {
    if port.target_port.unwrap_or(0) > 0 {
        out.error(
            path.field("targetPort"),
            "targetPort has no impact on Sidecars",
        );
    }
    if let Some(e) = port
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .and_then(|n| port_name(n).err())
    {
        out.error(path.field("name"), e);
    }
    if let Err(e) = protocol(port.protocol.as_deref().unwrap_or("")) {
        out.error(path.field("protocol"), e);
    }
}

fn check_ip_bind(out: &mut Findings, path: &FieldPath, bind: Option<&str>) {
    if let Some(e) = bind
        .filter(|b| !b.is_empty())
        .and_then(|b| ip_address(b).err())
    {
        out.error(path, e);
    }
}

/// `127.0.0.1:<port>`, `0.0.0.0:<port>`, `[::1]:<port>`, `[::]:<port>`, `:<port>` or `unix://path`.
fn check_default_endpoint(out: &mut Findings, path: &FieldPath, endpoint: &str) {
    if let Some(socket) = endpoint.strip_prefix("unix://") {
        if let Err(e) = unix_address(socket) {
            out.error(path, e);
        }
        return;
    }
    // When the split fails Istio goes on to report that the (empty) port is not a number; that
    // adds nothing, so only the split error is reported.
    let (host, port) = match split_host_port(endpoint) {
        Ok(parts) => parts,
        Err(e) => {
            out.error(path, e);
            return;
        }
    };
    if !DEFAULT_ENDPOINT_HOSTS.contains(&host) {
        out.error(
            path,
            "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,[::1]:port,[::]:port,unix://filepath or unset",
        );
    }
    match port.parse::<i64>() {
        Ok(n) => check_port(out, path, n),
        Err(e) => {
            let why = match e.kind() {
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                    "value out of range"
                }
                _ => "invalid syntax",
            };
            out.error(
                path,
                format!("sidecar: defaultEndpoint port ({port}) is not a number: strconv.Atoi: parsing {port:?}: {why}"),
            );
        }
    }
}

/// Go's `net.SplitHostPort`, with its error texts.
fn split_host_port(hostport: &str) -> Result<(&str, &str), String> {
    let fail = |why: &str| Err(format!("address {hostport}: {why}"));
    let Some(colon) = hostport.rfind(':') else {
        return fail("missing port in address");
    };
    let (host, inner_start, inner_end) = if hostport.starts_with('[') {
        let Some(end) = hostport.find(']') else {
            return fail("missing ']' in address");
        };
        if end + 1 == hostport.len() {
            return fail("missing port in address");
        }
        if end + 1 != colon {
            return if hostport.as_bytes().get(end + 1) == Some(&b':') {
                fail("too many colons in address")
            } else {
                fail("missing port in address")
            };
        }
        (&hostport[1..end], 1, end + 1)
    } else {
        let host = &hostport[..colon];
        if host.contains(':') {
            return fail("too many colons in address");
        }
        (host, 0, 0)
    };
    if hostport[inner_start..].contains('[') {
        return fail("unexpected '[' in address");
    }
    if hostport[inner_end..].contains(']') {
        return fail("unexpected ']' in address");
    }
    Ok((host, &hostport[colon + 1..]))
}

/// Sidecar ingress TLS: a subset of the Gateway server settings, on HTTPS/TLS ports only.
fn check_ingress_tls(out: &mut Findings, path: &FieldPath, tls: &ServerTlsSettings, proto: &str) {
    check_unsupported_ingress_tls(out, path, tls);
    if matches!(
        tls.mode,
        Some(ServerTlsMode::IstioMutual | ServerTlsMode::AutoPassthrough)
    ) {
        out.error(
            path.field("mode"),
            format!(
                "configuration is invalid: cannot set mode to {} in sidecar ingress tls",
                server_tls_mode_name(tls)
            ),
        );
    }
    if !protocol_is_tls(proto) {
        out.error(
            path,
            "server cannot have TLS settings for non HTTPS/TLS ports",
        );
    }
    check_server_tls(out, path, tls);
}

/// Settings a sidecar cannot serve: SANs, redirects and certificates from secrets.
fn check_unsupported_ingress_tls(out: &mut Findings, path: &FieldPath, tls: &ServerTlsSettings) {
    let credential = tls
        .credential_name
        .as_deref()
        .is_some_and(|c| !c.is_empty());
    let unsupported = [
        (
            "subjectAltNames",
            !tls.subject_alt_names.is_empty(),
            "subjectAltNames is not supported in ingress tls",
        ),
        (
            "httpsRedirect",
            tls.https_redirect == Some(true),
            "httpsRedirect is not supported",
        ),
        (
            "credentialName",
            credential,
            "credentialName is not currently supported",
        ),
        (
            "credentialNames",
            !tls.credential_names.is_empty(),
            "credentialNames is not currently supported",
        ),
        (
            "tlsCertificates",
            !tls.tls_certificates.is_empty(),
            "tls_certificates is not currently supported",
        ),
    ];
    for (field, set, message) in unsupported {
        if set {
            out.error(path.field(field), format!("sidecar: {message}"));
        }
    }
}

fn check_egress(out: &mut Findings, path: &FieldPath, listeners: &[EgressListener]) {
    let mut numbers = BTreeSet::new();
    let mut sockets = BTreeSet::new();
    let last = listeners.len().saturating_sub(1);
    for (i, listener) in listeners.iter().enumerate() {
        let p = path.index(i);
        match &listener.port {
            // Istio also has "egress can have only one listener with empty port", but it can
            // never fire: every port-less listener before the last already fails this check.
            None if i != last => out.error(
                &p,
                "sidecar: the egress listener with empty port should be the last listener in the list",
            ),
            None => {}
            Some(port) => {
                check_listener_port(out, &p.field("port"), port);
                if port.number == 0 {
                    check_uds_listener(out, &p, listener, &mut sockets);
                } else {
                    check_port(out, &p.field("port").field("number"), port.number);
                    check_ip_bind(out, &p.field("bind"), listener.bind.as_deref());
                    if !numbers.insert(port.number) {
                        out.error(p.field("port").field("number"), "sidecar: ports on IP bound listeners must be unique");
                    }
                }
            }
        }
        check_egress_hosts(out, &p.field("hosts"), &listener.hosts);
    }
}

/// An egress listener on port 0 listens on a unique unix socket and cannot capture traffic.
fn check_uds_listener<'a>(
    out: &mut Findings,
    path: &FieldPath,
    listener: &'a EgressListener,
    sockets: &mut BTreeSet<&'a str>,
) {
    let bind = listener.bind.as_deref().unwrap_or("");
    let bind_path = path.field("bind");
    match bind.strip_prefix("unix://") {
        None => out.error(
            &bind_path,
            "sidecar: ports with 0 value must have a unix domain socket bind address",
        ),
        Some(socket) => {
            if let Err(e) = unix_address(socket) {
                out.error(&bind_path, e);
            }
        }
    }
    if listener.capture_mode == Some(CaptureMode::Iptables) {
        out.error(
            path.field("captureMode"),
            "sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners",
        );
    }
    if !sockets.insert(bind) {
        out.error(
            &bind_path,
            "sidecar: unix domain socket values for listeners must be unique",
        );
    }
}

/// Egress hosts are `namespace/host`; repeated or shadowed hosts are only warned about.
fn check_egress_hosts(out: &mut Findings, path: &FieldPath, hosts: &[String]) {
    if hosts.is_empty() {
        out.error(
            path,
            "sidecar: egress listener must contain at least one host",
        );
        return;
    }
    // Istio maps `.` to the Sidecar's own namespace here; that namespace is not passed to this
    // check, so `./x` and `<own-namespace>/x` are not recognised as the same host.
    let mut by_namespace: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (j, host) in hosts.iter().enumerate() {
        let p = path.index(j);
        if let Some((ns, name)) = host.split_once('/') {
            let seen = by_namespace.entry(ns).or_default();
            let duplicate = if name == "*" {
                !seen.is_empty()
            } else {
                seen.contains(name) || seen.contains("*")
            };
            if duplicate {
                out.warn(&p, format!("duplicated egress host: {host}"));
            }
            seen.insert(name);
        }
        for e in namespace_slash_host(host, false) {
            out.error(&p, e);
        }
    }
    let all = by_namespace.get("*").is_some_and(|s| s.contains("*"));
    if all && by_namespace.len() != 1 {
        out.warn(
            path,
            "`*/*` host select all resources, no other hosts can be added",
        );
    }
}

/// `validateSidecarOutboundTrafficPolicy`: an egress proxy only with `ALLOW_ANY`.
fn check_outbound(out: &mut Findings, path: &FieldPath, policy: &OutboundTrafficPolicy) {
    let Some(proxy) = &policy.egress_proxy else {
        return;
    };
    let p = path.field("egressProxy");
    if policy.mode != Some(OutboundTrafficMode::AllowAny) {
        out.error(
            &p,
            "sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode",
        );
        return;
    }
    let host_path = p.field("host");
    let host_bad = match fqdn(&proxy.host) {
        Ok(()) => false,
        Err(e) => {
            out.error(&host_path, e);
            true
        }
    };
    if proxy.port.is_none() {
        out.error(
            p.field("port"),
            "sidecar: egress_proxy port must be non-nil",
        );
        return;
    }
    // `validateDestination` checks the host again; Istio would report an empty host twice.
    let mut rest = Findings::default();
    check_destination(&mut rest, &p, proxy);
    for f in rest.into_vec() {
        if !(host_bad && f.field == host_path.as_str()) {
            out.push(f.severity, f.field, f.message);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::validate::test_support::{error, warning};

    fn run(spec: serde_json::Value) -> Findings {
        let sc: Sidecar = serde_json::from_value(spec).unwrap();
        let mut out = Findings::default();
        check(&sc, &FieldPath::new("spec"), &mut out);
        out
    }

    fn ingress(listener: serde_json::Value) -> Findings {
        run(json!({"ingress": [listener]}))
    }

    fn egress(listeners: serde_json::Value) -> Findings {
        run(json!({"egress": listeners}))
    }

    #[test]
    fn full_valid_example_has_no_findings() {
        let out = run(json!({
            "workloadSelector": {"labels": {"app": "ratings"}},
            "ingress": [
                {"port": {"number": 9080, "protocol": "HTTP", "name": "http"}, "defaultEndpoint": "127.0.0.1:8080",
                 "connectionPool": {"http": {"http1MaxPendingRequests": 10}}},
                {"port": {"number": 9443, "protocol": "HTTPS", "name": "https"}, "defaultEndpoint": "unix:///var/run/app.sock",
                 "tls": {"mode": "SIMPLE", "serverCertificate": "/c.pem", "privateKey": "/k.pem"}},
                {"port": {"number": 9090, "protocol": "TCP"}, "bind": "0.0.0.0", "defaultEndpoint": "[::1]:9090"}
            ],
            "inboundConnectionPool": {"tcp": {"maxConnections": 100}},
            "egress": [
                {"port": {"number": 0, "protocol": "HTTP", "name": "uds"}, "bind": "unix:///var/run/egress.sock",
                 "captureMode": "NONE", "hosts": ["*/api.example.com"]},
                {"port": {"number": 3306, "protocol": "MYSQL", "name": "mysql"}, "bind": "127.0.0.1",
                 "hosts": ["*/mysql.example.com"]},
                {"hosts": ["./*", "istio-system/*", "~/*.example.org"]}
            ],
            "outboundTrafficPolicy": {"mode": "ALLOW_ANY",
                                      "egressProxy": {"host": "proxy.example.com", "subset": "v1", "port": {"number": 3128}}}
        }));
        assert!(out.is_empty(), "{:#?}", out.iter().collect::<Vec<_>>());
    }

    #[test]
    fn empty_configuration_and_selector() {
        error(
            &run(json!({})),
            "spec",
            "sidecar: empty configuration provided",
        );
        let out = run(json!({"workloadSelector": {}}));
        assert_eq!(
            out.iter().count(),
            1,
            "the empty error drops the selector warning"
        );
        let out = run(json!({"workloadSelector": {}, "egress": [{"hosts": ["*/*"]}]}));
        warning(
            &out,
            "spec.workloadSelector",
            "sidecar: workload selector specified without labels, will be applied",
        );
        let out =
            run(json!({"workloadSelector": {"labels": {"": "x"}}, "egress": [{"hosts": ["bad"]}]}));
        error(
            &out,
            "spec.workloadSelector.labels",
            "empty key is not supported in selector: \"=x\"",
        );
        assert_eq!(out.iter().count(), 1, "validation stops at selector errors");
    }

    #[test]
    fn ingress_ports_and_binds() {
        error(
            &ingress(json!({})),
            "spec.ingress[0].port",
            "sidecar: port is required for ingress listeners",
        );
        let out = ingress(
            json!({"port": {"number": 0, "name": "bad_name", "protocol": "SMTP", "targetPort": 80},
                                 "bind": "nope"}),
        );
        let p = "spec.ingress[0]";
        error(
            &out,
            &format!("{p}.port.targetPort"),
            "targetPort has no impact on Sidecars",
        );
        error(
            &out,
            &format!("{p}.port.name"),
            "invalid port name: bad_name",
        );
        error(
            &out,
            &format!("{p}.port.protocol"),
            "unsupported protocol: SMTP",
        );
        error(
            &out,
            &format!("{p}.port.number"),
            "port number 0 must be in the range",
        );
        error(&out, &format!("{p}.bind"), "nope is not a valid IP");
        let out = run(json!({"ingress": [{"port": {"number": 80}}, {"port": {"number": 80}}]}));
        error(
            &out,
            "spec.ingress[1].port.number",
            "sidecar: ports on IP bound listeners must be unique",
        );
    }

    #[test]
    fn ingress_default_endpoint() {
        let ep = |e: &str| ingress(json!({"port": {"number": 80}, "defaultEndpoint": e}));
        for ok in [":8080", "0.0.0.0:1", "[::]:80", "unix://@abstract"] {
            assert!(ep(ok).is_empty(), "{ok}");
        }
        let p = "spec.ingress[0].defaultEndpoint";
        error(
            &ep("10.0.0.1:80"),
            p,
            "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>",
        );
        error(
            &ep("127.0.0.1:http"),
            p,
            "sidecar: defaultEndpoint port (http) is not a number: strconv.Atoi: parsing \"http\": invalid syntax",
        );
        error(&ep("127.0.0.1:0"), p, "port number 0 must be in the range");
        let out = ep("localhost");
        error(&out, p, "address localhost: missing port in address");
        assert_eq!(out.iter().count(), 1);
        error(
            &ep("::1:80"),
            p,
            "address ::1:80: too many colons in address",
        );
        error(&ep("[::1]80"), p, "missing port in address");
        error(&ep("[::1:80"), p, "missing ']' in address");
        error(
            &ep("unix://tmp/x"),
            p,
            "tmp/x is not an absolute path to a file",
        );
    }

    #[test]
    fn split_host_port_matches_go() {
        assert_eq!(split_host_port("[::1]:80"), Ok(("::1", "80")));
        assert_eq!(split_host_port(":80"), Ok(("", "80")));
        assert_eq!(split_host_port("a:"), Ok(("a", "")));
        assert!(split_host_port("[a]:b]:1").is_err());
        assert!(split_host_port("a[b:1").is_err());
    }

    #[test]
    fn ingress_tls() {
        let out = ingress(json!({"port": {"number": 80, "protocol": "HTTP"}, "tls": {
            "mode": "ISTIO_MUTUAL", "subjectAltNames": ["a"], "httpsRedirect": true, "credentialName": "c",
            "credentialNames": ["d"], "tlsCertificates": [{"serverCertificate": "/c"}]}}));
        let p = "spec.ingress[0].tls";
        error(
            &out,
            &format!("{p}.subjectAltNames"),
            "sidecar: subjectAltNames is not supported in ingress tls",
        );
        error(
            &out,
            &format!("{p}.httpsRedirect"),
            "sidecar: httpsRedirect is not supported",
        );
        error(
            &out,
            &format!("{p}.credentialName"),
            "sidecar: credentialName is not currently supported",
        );
        error(
            &out,
            &format!("{p}.credentialNames"),
            "sidecar: credentialNames is not currently supported",
        );
        error(
            &out,
            &format!("{p}.tlsCertificates"),
            "sidecar: tls_certificates is not currently supported",
        );
        error(
            &out,
            &format!("{p}.mode"),
            "configuration is invalid: cannot set mode to ISTIO_MUTUAL in sidecar ingress tls",
        );
        error(
            &out,
            p,
            "server cannot have TLS settings for non HTTPS/TLS ports",
        );
        error(
            &out,
            &format!("{p}.credentialName"),
            "ISTIO_MUTUAL TLS cannot have associated credentialName",
        );
        let out = ingress(
            json!({"port": {"number": 443, "protocol": "HTTPS"}, "tls": {"mode": "SIMPLE"}}),
        );
        error(
            &out,
            &format!("{p}.serverCertificate"),
            "SIMPLE TLS requires a server certificate",
        );
    }

    #[test]
    fn ingress_connection_pool() {
        let out = ingress(
            json!({"port": {"number": 5432, "name": "pg", "protocol": "TCP"},
                                 "connectionPool": {"http": {"maxRetries": 1}}}),
        );
        warning(
            &out,
            "spec.ingress[0].connectionPool.http",
            "sidecar: HTTP connection pool settings are configured for port 5432 (\"pg\") but its protocol is not HTTP (TCP); only TCP settings will apply",
        );
        let out =
            ingress(json!({"port": {"number": 80, "protocol": "HTTP"}, "connectionPool": {}}));
        error(
            &out,
            "spec.ingress[0].connectionPool",
            "connection pool must have at least one field",
        );
        let out = run(json!({"inboundConnectionPool": {"tcp": {"maxConnections": -1}}}));
        error(
            &out,
            "spec.inboundConnectionPool.tcp.maxConnections",
            "max connections must be non-negative",
        );
    }

    #[test]
    fn egress_catch_all_must_be_last() {
        let out = egress(json!([{"hosts": ["*/*"]}, {"port": {"number": 80}, "hosts": ["*/*"]}]));
        error(
            &out,
            "spec.egress[0]",
            "the egress listener with empty port should be the last listener in the list",
        );
        assert!(
            egress(json!([{"port": {"number": 80}, "hosts": ["*/*"]}, {"hosts": ["*/*"]}]))
                .is_empty()
        );
    }

    #[test]
    fn egress_ports_and_sockets() {
        let out = egress(json!([
            {"port": {"number": 0, "targetPort": 1}, "bind": "10.0.0.1", "captureMode": "IPTABLES", "hosts": ["*/*"]},
            {"port": {"number": 0}, "bind": "unix://x", "hosts": ["*/*"]},
            {"port": {"number": 0}, "bind": "unix://x", "hosts": ["*/*"]},
            {"port": {"number": 8080}, "bind": "bad", "hosts": ["*/*"]},
            {"port": {"number": 8080, "protocol": "FTP"}, "hosts": ["*/*"]}
        ]));
        error(
            &out,
            "spec.egress[0].port.targetPort",
            "targetPort has no impact on Sidecars",
        );
        error(
            &out,
            "spec.egress[0].bind",
            "sidecar: ports with 0 value must have a unix domain socket bind address",
        );
        error(
            &out,
            "spec.egress[0].captureMode",
            "sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners",
        );
        error(
            &out,
            "spec.egress[1].bind",
            "x is not an absolute path to a file",
        );
        error(
            &out,
            "spec.egress[2].bind",
            "sidecar: unix domain socket values for listeners must be unique",
        );
        error(&out, "spec.egress[3].bind", "bad is not a valid IP");
        error(
            &out,
            "spec.egress[4].port.number",
            "sidecar: ports on IP bound listeners must be unique",
        );
        error(
            &out,
            "spec.egress[4].port.protocol",
            "unsupported protocol: FTP",
        );
    }

    #[test]
    fn egress_hosts() {
        error(
            &egress(json!([{}])),
            "spec.egress[0].hosts",
            "sidecar: egress listener must contain at least one host",
        );
        let out = egress(
            json!([{"hosts": ["foo.com", "ns/foo", "bad!/a.com", "ns/*foo.com", "ns/", "ns/bad_host.com"]}]),
        );
        let p = "spec.egress[0].hosts";
        error(
            &out,
            &format!("{p}[0]"),
            "host must be of form namespace/dnsName",
        );
        error(
            &out,
            &format!("{p}[1]"),
            "short names (non FQDN) are not allowed",
        );
        error(
            &out,
            &format!("{p}[2]"),
            "invalid namespace value \"bad!\" in sidecar",
        );
        error(
            &out,
            &format!("{p}[3]"),
            "partial wildcard \"*foo.com\" not allowed",
        );
        error(
            &out,
            &format!("{p}[4]"),
            "config namespace and dnsName in host entry cannot be empty",
        );
        let bad_host: Vec<_> = out
            .iter()
            .filter(|f| f.field == format!("{p}[5]"))
            .collect();
        assert_eq!(
            bad_host.len(),
            1,
            "reported once, not twice as upstream does: {bad_host:#?}"
        );
    }

    #[test]
    fn egress_duplicate_hosts_warn() {
        let out = egress(
            json!([{"hosts": ["ns/a.com", "ns/a.com", "ns/*", "other/*", "other/b.com", "*/*"]}]),
        );
        let p = "spec.egress[0].hosts";
        assert!(!out.has_errors());
        warning(&out, &format!("{p}[1]"), "duplicated egress host: ns/a.com");
        warning(&out, &format!("{p}[2]"), "duplicated egress host: ns/*");
        warning(
            &out,
            &format!("{p}[4]"),
            "duplicated egress host: other/b.com",
        );
        warning(
            &out,
            p,
            "`*/*` host select all resources, no other hosts can be added",
        );
        assert!(egress(json!([{"hosts": ["*/*"]}])).is_empty());
    }

    #[test]
    fn egress_proxy() {
        let out = run(
            json!({"outboundTrafficPolicy": {"egressProxy": {"host": "p.example.com", "port": {"number": 80}}}}),
        );
        error(
            &out,
            "spec.outboundTrafficPolicy.egressProxy",
            "egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode",
        );
        let out = run(
            json!({"outboundTrafficPolicy": {"mode": "ALLOW_ANY", "egressProxy": {"host": "p.example.com"}}}),
        );
        error(
            &out,
            "spec.outboundTrafficPolicy.egressProxy.port",
            "sidecar: egress_proxy port must be non-nil",
        );
        let out = run(json!({"outboundTrafficPolicy": {"mode": "ALLOW_ANY",
            "egressProxy": {"host": "", "subset": "bad_subset", "port": {"number": 0}}}}));
        let p = "spec.outboundTrafficPolicy.egressProxy";
        error(&out, &format!("{p}.host"), "empty domain name not allowed");
        assert_eq!(
            out.iter()
                .filter(|f| f.field == format!("{p}.host"))
                .count(),
            1
        );
        error(
            &out,
            &format!("{p}.subset"),
            "subset name is invalid: bad_subset",
        );
        error(
            &out,
            &format!("{p}.port.number"),
            "port number 0 must be in the range",
        );
        assert!(run(json!({"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}})).is_empty());
    }
}
