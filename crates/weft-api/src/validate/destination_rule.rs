//! DestinationRule validation: host, subsets, traffic policies (connection pools, outlier
//! detection, client TLS, tunnels, per-port settings), `exportTo` and the workload selector, as
//! Istio's `ValidateDestinationRule` checks them. Load balancing lives in [`load_balancer`].
//!
//! The connection-pool check is shared with Sidecar (`inboundConnectionPool`, ingress pools).

mod load_balancer;

use std::collections::BTreeSet;

use super::common::{
    check_duration, check_export_to, check_labels, check_percent_int, check_workload_selector,
    fqdn, ip_address, is_dns1123_label, wildcard_domain,
};
use crate::diagnostic::{FieldPath, Findings};
use crate::model::{
    ClientTlsMode, ClientTlsSettings, ConnectionPoolSettings, DestinationRule, DurationText,
    H2UpgradePolicy, HttpSettings, LoadBalancerSettings, OutlierDetection, PortTrafficPolicy,
    Subset, TcpSettings, TrafficPolicy, TunnelSettings,
};

/// `ValidateDestinationRule`.
pub fn check(dr: &DestinationRule, namespace: &str, path: &FieldPath, out: &mut Findings) {
    if let Err(e) = wildcard_domain(&dr.host) {
        out.error(path.field("host"), e);
    }
    if let Some(tp) = &dr.traffic_policy {
        check_traffic_policy(out, &path.field("trafficPolicy"), namespace, tp);
    }
    check_subsets(out, &path.field("subsets"), namespace, &dr.subsets);
    let with_selector = dr.workload_selector.is_some();
    check_export_to(
        out,
        &path.field("exportTo"),
        namespace,
        &dr.export_to,
        false,
        with_selector,
    );
    if let Some(sel) = &dr.workload_selector {
        check_workload_selector(out, &path.field("workloadSelector"), sel);
    }
}

/// Subset names must be unique DNS-1123 labels; labels and policies are checked as usual.
fn check_subsets(out: &mut Findings, path: &FieldPath, namespace: &str, subsets: &[Subset]) {
    let mut seen = BTreeSet::new();
    for (i, subset) in subsets.iter().enumerate() {
        let p = path.index(i);
        let name = subset.name.as_str();
        // Istio also reports `duplicate subset names: ` for a second empty name; the
        // "cannot be empty" error already covers that case, so it is not repeated here.
        if !name.is_empty() && !seen.insert(name) {
            out.error(p.field("name"), format!("duplicate subset names: {name}"));
        }
        if name.is_empty() {
            out.error(p.field("name"), "subset name cannot be empty");
        } else if !is_dns1123_label(name) {
            out.error(p.field("name"), format!("subset name is invalid: {name}"));
        }
        check_labels(out, &p.field("labels"), &subset.labels);
        if let Some(tp) = &subset.traffic_policy {
            check_traffic_policy(out, &p.field("trafficPolicy"), namespace, tp);
        }
    }
}

/// The four settings a traffic policy and a port-level policy share.
struct PolicyParts<'a> {
    outlier: Option<&'a OutlierDetection>,
    pool: Option<&'a ConnectionPoolSettings>,
    lb: Option<&'a LoadBalancerSettings>,
    tls: Option<&'a ClientTlsSettings>,
}

impl PolicyParts<'_> {
    fn is_empty(&self) -> bool {
        self.outlier.is_none() && self.pool.is_none() && self.lb.is_none() && self.tls.is_none()
    }

    fn check(&self, out: &mut Findings, path: &FieldPath, namespace: &str) {
        if let Some(od) = self.outlier {
            check_outlier_detection(out, &path.field("outlierDetection"), od);
        }
        if let Some(pool) = self.pool {
            check_connection_pool(out, &path.field("connectionPool"), pool);
        }
        if let Some(lb) = self.lb {
            load_balancer::check(out, &path.field("loadBalancer"), lb, self.outlier.is_some());
        }
        if let Some(tls) = self.tls {
            check_client_tls(out, &path.field("tls"), namespace, tls);
        }
    }
}

/// `validateTrafficPolicy`.
fn check_traffic_policy(out: &mut Findings, path: &FieldPath, namespace: &str, tp: &TrafficPolicy) {
    let parts = PolicyParts {
        outlier: tp.outlier_detection.as_ref(),
        pool: tp.connection_pool.as_ref(),
        lb: tp.load_balancer.as_ref(),
        tls: tp.tls.as_ref(),
    };
    // Istio's list predates `retryBudget`; a policy holding only a retry budget is meaningful, so
    // it counts as a field here rather than being rejected.
    let empty = parts.is_empty()
        && tp.port_level_settings.is_empty()
        && tp.tunnel.is_none()
        && tp.proxy_protocol.is_none()
        && tp.retry_budget.is_none();
    if empty {
        out.error(path, "traffic policy must have at least one field");
        return;
    }
    if tp.tunnel.is_some() && tp.proxy_protocol.is_some() {
        out.error(path, "tunnel and proxyProtocol must not be set together");
        return;
    }
    parts.check(out, path, namespace);
    check_port_level_settings(
        out,
        &path.field("portLevelSettings"),
        namespace,
        &tp.port_level_settings,
    );
    if let Some(tunnel) = &tp.tunnel {
        check_tunnel(out, &path.field("tunnel"), tunnel);
    }
    if let Some(pp) = &tp.proxy_protocol {
        let version = pp.version.as_deref().unwrap_or("V1");
        if !matches!(version, "V1" | "V2") {
            let p = path.field("proxyProtocol").field("version");
            out.error(p, format!("proxy protocol version is invalid: {version}"));
        }
    }
}

/// `validatePortTrafficPolicies`, plus a weft warning for a port listed twice (Istio applies the
/// first entry for a port and silently ignores the rest).
fn check_port_level_settings(
    out: &mut Findings,
    path: &FieldPath,
    namespace: &str,
    settings: &[PortTrafficPolicy],
) {
    let mut seen = BTreeSet::new();
    for (i, pls) in settings.iter().enumerate() {
        let p = path.index(i);
        match &pls.port {
            None => out.error(p.field("port"), "portTrafficPolicy must have valid port"),
            Some(port) if !seen.insert(port.number) => out.warn(
                p.field("port").field("number"),
                format!(
                    "duplicate port level settings for port {}; only the first one applies",
                    port.number
                ),
            ),
            Some(_) => {}
        }
        let parts = PolicyParts {
            outlier: pls.outlier_detection.as_ref(),
            pool: pls.connection_pool.as_ref(),
            lb: pls.load_balancer.as_ref(),
            tls: pls.tls.as_ref(),
        };
        if parts.is_empty() {
            out.error(&p, "port traffic policy must have at least one field");
        } else {
            parts.check(out, &p, namespace);
        }
    }
}

/// `validateTunnelSettings`.
fn check_tunnel(out: &mut Findings, path: &FieldPath, tunnel: &TunnelSettings) {
    let protocol = tunnel.protocol.as_deref().unwrap_or("");
    if !matches!(protocol, "" | "CONNECT" | "POST") {
        out.error(
            path.field("protocol"),
            "tunnel protocol must be \"CONNECT\" or \"POST\"",
        );
    }
    let host = tunnel.target_host.as_deref().unwrap_or("");
    if let (Err(fqdn_err), Err(ip_err)) = (fqdn(host), ip_address(host)) {
        out.error(
            path.field("targetHost"),
            format!("tunnel target host must be valid FQDN or IP address: {fqdn_err}; {ip_err}"),
        );
    }
    let port = tunnel.target_port.unwrap_or(0);
    if !(1..=65535).contains(&port) {
        out.error(
            path.field("targetPort"),
            format!(
                "tunnel target port is invalid: port number {port} must be in the range 1..65535"
            ),
        );
    }
}

/// `validateOutlierDetection`.
fn check_outlier_detection(out: &mut Findings, path: &FieldPath, od: &OutlierDetection) {
    if let Some(d) = &od.base_ejection_time {
        check_duration(out, &path.field("baseEjectionTime"), d);
    }
    if od.consecutive_errors.unwrap_or(0) != 0 {
        out.warn(
            path.field("consecutiveErrors"),
            "outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead",
        );
    }
    if !od.split_external_local_origin_errors.unwrap_or(false)
        && od.consecutive_local_origin_failures.unwrap_or(0) > 0
    {
        out.error(
            path.field("consecutiveLocalOriginFailures"),
            "outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false",
        );
    }
    if let Some(d) = &od.interval {
        check_duration(out, &path.field("interval"), d);
    }
    check_percent_int(
        out,
        &path.field("maxEjectionPercent"),
        od.max_ejection_percent.unwrap_or(0),
    );
    check_percent_int(
        out,
        &path.field("minHealthPercent"),
        od.min_health_percent.unwrap_or(0),
    );
}

/// `validateConnectionPool`, shared with Sidecar.
pub(super) fn check_connection_pool(
    out: &mut Findings,
    path: &FieldPath,
    pool: &ConnectionPoolSettings,
) {
    if pool.http.is_none() && pool.tcp.is_none() {
        out.error(path, "connection pool must have at least one field");
        return;
    }
    if let Some(http) = &pool.http {
        check_http_pool(out, &path.field("http"), http);
    }
    if let Some(tcp) = &pool.tcp {
        check_tcp_pool(out, &path.field("tcp"), tcp);
    }
}

fn non_negative(out: &mut Findings, path: &FieldPath, value: Option<i64>, message: &str) {
    if value.unwrap_or(0) < 0 {
        out.error(path, message);
    }
}

fn check_http_pool(out: &mut Findings, path: &FieldPath, http: &HttpSettings) {
    let checks = [
        (
            "http1MaxPendingRequests",
            http.http1_max_pending_requests,
            "http1 max pending requests must be non-negative",
        ),
        (
            "http2MaxRequests",
            http.http2_max_requests,
            "http2 max requests must be non-negative",
        ),
        (
            "maxRequestsPerConnection",
            http.max_requests_per_connection,
            "max requests per connection must be non-negative",
        ),
        (
            "maxRetries",
            http.max_retries,
            "max retries must be non-negative",
        ),
        (
            "maxConcurrentStreams",
            http.max_concurrent_streams,
            "max concurrent streams must be non-negative",
        ),
    ];
    for (field, value, message) in checks {
        non_negative(out, &path.field(field), value, message);
    }
    if let Some(d) = &http.idle_timeout {
        check_duration(out, &path.field("idleTimeout"), d);
    }
    if http.h2_upgrade_policy == Some(H2UpgradePolicy::Upgrade)
        && http.use_client_protocol == Some(true)
    {
        out.error(
            path.field("useClientProtocol"),
            "use client protocol must not be true when H2UpgradePolicy is UPGRADE",
        );
    }
}

fn check_tcp_pool(out: &mut Findings, path: &FieldPath, tcp: &TcpSettings) {
    non_negative(
        out,
        &path.field("maxConnections"),
        tcp.max_connections,
        "max connections must be non-negative",
    );
    if let Some(d) = &tcp.connect_timeout {
        check_duration(out, &path.field("connectTimeout"), d);
    }
    if let Some(d) = &tcp.max_connection_duration {
        check_duration(out, &path.field("maxConnectionDuration"), d);
    }
    if let Some(d) = &tcp.idle_timeout {
        check_idle_timeout(out, &path.field("idleTimeout"), d);
    }
    if let Some(ka) = &tcp.tcp_keepalive {
        let p = path.field("tcpKeepalive");
        if let Some(d) = &ka.time {
            check_duration(out, &p.field("time"), d);
        }
        if let Some(d) = &ka.interval {
            check_duration(out, &p.field("interval"), d);
        }
    }
}

/// A TCP idle timeout of less than 1ms (`0s`) disables the timeout and is not validated further.
fn check_idle_timeout(out: &mut Findings, path: &FieldPath, d: &DurationText) {
    match d.parse() {
        Err(e) => out.error(path, e.to_string()),
        Ok(v) if v.as_millis() == 0 => {}
        Ok(_) => {
            check_duration(out, path, d);
        }
    }
}

fn text(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

/// `agent.ValidateTLS` for a DestinationRule's client TLS settings.
fn check_client_tls(
    out: &mut Findings,
    path: &FieldPath,
    namespace: &str,
    tls: &ClientTlsSettings,
) {
    let credential = text(&tls.credential_name);
    if let Some(rest) = credential.strip_prefix("configmap://") {
        check_configmap_credential(
            out,
            &path.field("credentialName"),
            namespace,
            credential,
            rest,
        );
    }
    let mode = tls.mode.unwrap_or(ClientTlsMode::Disable);
    let ca = text(&tls.ca_certificates);
    if tls.insecure_skip_verify == Some(true) {
        check_insecure_skip_verify(out, &path.field("insecureSkipVerify"), tls, mode);
    }
    let cert = text(&tls.client_certificate);
    let key = text(&tls.private_key);
    let crl = text(&tls.ca_crl);
    let simple_or_mutual = matches!(mode, ClientTlsMode::Simple | ClientTlsMode::Mutual);
    if simple_or_mutual && !credential.is_empty() {
        if !cert.is_empty() || !ca.is_empty() || !key.is_empty() || !crl.is_empty() {
            out.error(path, "cannot specify client certificates or CA certificate or CA CRL If credentialName is set");
        }
        return;
    }
    if mode == ClientTlsMode::Mutual {
        if cert.is_empty() {
            out.error(
                path.field("clientCertificate"),
                "client certificate required for mutual tls",
            );
        }
        if key.is_empty() {
            out.error(
                path.field("privateKey"),
                "private key required for mutual tls",
            );
        }
    }
    if mode == ClientTlsMode::IstioMutual {
        warn_istio_mutual_files(out, path, tls);
    }
}

/// With `insecureSkipVerify` nothing may configure server verification.
fn check_insecure_skip_verify(
    out: &mut Findings,
    path: &FieldPath,
    tls: &ClientTlsSettings,
    mode: ClientTlsMode,
) {
    let ca = !text(&tls.ca_certificates).is_empty();
    let credential = !text(&tls.credential_name).is_empty();
    let sans = !tls.subject_alt_names.is_empty();
    if mode == ClientTlsMode::Simple && (ca || credential || sans) {
        out.error(
            path,
            "cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true",
        );
    }
    if mode == ClientTlsMode::Mutual && (ca || sans) {
        out.error(
            path,
            "cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true",
        );
    }
}

/// weft-only: Istio accepts certificate fields with `ISTIO_MUTUAL` and silently uses the mesh's
/// own workload certificates instead; say so rather than let the operator believe them applied.
fn warn_istio_mutual_files(out: &mut Findings, path: &FieldPath, tls: &ClientTlsSettings) {
    let fields = [
        ("clientCertificate", &tls.client_certificate),
        ("privateKey", &tls.private_key),
        ("caCertificates", &tls.ca_certificates),
        ("credentialName", &tls.credential_name),
        ("caCrl", &tls.ca_crl),
    ];
    for (field, value) in fields {
        if !text(value).is_empty() {
            out.warn(
                path.field(field),
                format!("ISTIO_MUTUAL uses the mesh's workload certificates; {field} is ignored"),
            );
        }
    }
}

/// `configmap://<namespace>/<name>` must name a ConfigMap in the rule's own namespace.
fn check_configmap_credential(
    out: &mut Findings,
    path: &FieldPath,
    namespace: &str,
    whole: &str,
    rest: &str,
) {
    let mut parts = rest.split('/');
    let ns = parts.next().unwrap_or("");
    let name = parts.next();
    let parse_err = match name {
        None => Some(format!(
            "invalid resource name {whole:?}. Expected namespace and name"
        )),
        Some(_) if ns.is_empty() => Some(format!(
            "invalid resource name {whole:?}. Expected namespace"
        )),
        Some("") => Some(format!("invalid resource name {whole:?}. Expected name")),
        Some(_) => None,
    };
    if let Some(e) = parse_err {
        out.error(path, format!("invalid configmap:// credentialName: {e}"));
    } else if ns != namespace || namespace.is_empty() {
        out.error(
            path,
            format!("invalid configmap:// credentialName: namespace must match the configuration namespace {namespace:?}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::validate::test_support::{error, warning};

    fn run(spec: serde_json::Value) -> Findings {
        let dr: DestinationRule = serde_json::from_value(spec).unwrap();
        let mut out = Findings::default();
        check(&dr, "prod", &FieldPath::new("spec"), &mut out);
        out
    }

    fn policy(tp: serde_json::Value) -> Findings {
        run(json!({"host": "reviews", "trafficPolicy": tp}))
    }

    #[test]
    fn full_valid_example_has_no_findings() {
        let out = run(json!({
            "host": "reviews.prod.svc.cluster.local",
            "trafficPolicy": {
                "loadBalancer": {
                    "consistentHash": {"httpCookie": {"name": "user", "ttl": "0s"}, "ringHash": {"minimumRingSize": 1024}},
                    "localityLbSetting": {
                        "distribute": [{"from": "us-west/zone1/*", "to": {"us-west/zone1/*": 80, "us-west/zone2/*": 20}}]
                    },
                    "warmup": {"duration": "30s", "minimumPercent": 10, "aggression": 1.5}
                },
                "connectionPool": {
                    "tcp": {"maxConnections": 100, "connectTimeout": "30ms", "idleTimeout": "0s",
                            "tcpKeepalive": {"time": "7200s", "interval": "75s", "probes": 9}},
                    "http": {"http2MaxRequests": 1000, "maxRequestsPerConnection": 10, "idleTimeout": "1h",
                             "h2UpgradePolicy": "UPGRADE"}
                },
                "outlierDetection": {"consecutive5xxErrors": 7, "interval": "5m", "baseEjectionTime": "15m",
                                     "maxEjectionPercent": 50, "minHealthPercent": 10},
                "tls": {"mode": "MUTUAL", "clientCertificate": "/etc/c.pem", "privateKey": "/etc/k.pem",
                        "caCertificates": "/etc/ca.pem", "sni": "reviews.example.com"},
                "portLevelSettings": [
                    {"port": {"number": 80}, "loadBalancer": {"simple": "LEAST_REQUEST"}},
                    {"port": {"number": 9080}, "tls": {"mode": "ISTIO_MUTUAL"}}
                ]
            },
            "subsets": [
                {"name": "v1", "labels": {"version": "v1"}},
                {"name": "v2", "labels": {"version": "v2"},
                 "trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"}}}
            ],
            "exportTo": ["."]
        }));
        assert!(out.is_empty(), "{:#?}", out.iter().collect::<Vec<_>>());
    }

    #[test]
    fn host_is_required_and_may_be_wildcard() {
        error(
            &run(json!({})),
            "spec.host",
            "empty domain name not allowed",
        );
        error(
            &run(json!({"host": "foo.*.com"})),
            "spec.host",
            "invalid (label \"*\" invalid)",
        );
        for ok in ["*", "*.example.com", "reviews"] {
            assert!(run(json!({"host": ok})).is_empty(), "{ok}");
        }
    }

    #[test]
    fn subsets_need_unique_dns_names_and_valid_labels() {
        let out = run(json!({"host": "r", "subsets": [
            {"name": "v1"}, {"name": "v1"}, {"name": ""}, {"name": "v_2"}, {"name": "v3", "labels": {"-bad": "x"}}
        ]}));
        error(&out, "spec.subsets[1].name", "duplicate subset names: v1");
        error(&out, "spec.subsets[2].name", "subset name cannot be empty");
        error(&out, "spec.subsets[3].name", "subset name is invalid: v_2");
        error(&out, "spec.subsets[4].labels.-bad", "invalid tag key");
        assert_eq!(
            out.iter()
                .filter(|f| f.message.contains("duplicate"))
                .count(),
            1
        );
    }

    #[test]
    fn subset_traffic_policy_is_validated() {
        let out = run(json!({"host": "r", "subsets": [{"name": "v1", "trafficPolicy": {}}]}));
        error(
            &out,
            "spec.subsets[0].trafficPolicy",
            "traffic policy must have at least one field",
        );
    }

    #[test]
    fn traffic_policy_needs_a_field_and_no_tunnel_with_proxy_protocol() {
        error(
            &policy(json!({})),
            "spec.trafficPolicy",
            "must have at least one field",
        );
        assert!(policy(json!({"retryBudget": {"minRetryConcurrency": 3}})).is_empty());
        let out = policy(
            json!({"tunnel": {"targetHost": "x.com", "targetPort": 8080}, "proxyProtocol": {}}),
        );
        error(
            &out,
            "spec.trafficPolicy",
            "tunnel and proxyProtocol must not be set together",
        );
    }

    #[test]
    fn tunnel_and_proxy_protocol_fields() {
        assert!(policy(json!({"tunnel": {"protocol": "POST", "targetHost": "10.0.0.1", "targetPort": 8443}})).is_empty());
        let out = policy(json!({"tunnel": {"protocol": "GET", "targetHost": "", "targetPort": 0}}));
        error(
            &out,
            "spec.trafficPolicy.tunnel.protocol",
            "tunnel protocol must be \"CONNECT\" or \"POST\"",
        );
        error(
            &out,
            "spec.trafficPolicy.tunnel.targetHost",
            "tunnel target host must be valid FQDN or IP address: empty domain name not allowed;  is not a valid IP",
        );
        error(
            &out,
            "spec.trafficPolicy.tunnel.targetPort",
            "tunnel target port is invalid: port number 0",
        );
        assert!(policy(json!({"proxyProtocol": {"version": "V2"}})).is_empty());
        let out = policy(json!({"proxyProtocol": {"version": "V3"}}));
        error(
            &out,
            "spec.trafficPolicy.proxyProtocol.version",
            "proxy protocol version is invalid: V3",
        );
    }

    #[test]
    fn port_level_settings() {
        let out = policy(json!({"portLevelSettings": [
            {"loadBalancer": {"simple": "RANDOM"}},
            {"port": {"number": 80}},
            {"port": {"number": 80}, "tls": {"mode": "DISABLE"}},
            {"port": {"number": 81}, "outlierDetection": {"interval": "0s"}}
        ]}));
        error(
            &out,
            "spec.trafficPolicy.portLevelSettings[0].port",
            "portTrafficPolicy must have valid port",
        );
        error(
            &out,
            "spec.trafficPolicy.portLevelSettings[1]",
            "port traffic policy must have at least one field",
        );
        warning(
            &out,
            "spec.trafficPolicy.portLevelSettings[2].port.number",
            "duplicate port level settings for port 80",
        );
        error(
            &out,
            "spec.trafficPolicy.portLevelSettings[3].outlierDetection.interval",
            "duration must be greater than 1ms",
        );
    }

    #[test]
    fn outlier_detection() {
        let out = policy(json!({"outlierDetection": {
            "consecutiveErrors": 5, "consecutiveLocalOriginFailures": 3, "interval": "1.5ms",
            "baseEjectionTime": "soon", "maxEjectionPercent": 101, "minHealthPercent": -1
        }}));
        let od = "spec.trafficPolicy.outlierDetection";
        warning(
            &out,
            &format!("{od}.consecutiveErrors"),
            "consecutive errors is deprecated, use consecutiveGatewayErrors",
        );
        error(
            &out,
            &format!("{od}.consecutiveLocalOriginFailures"),
            "split external local origin errors is set to false",
        );
        error(
            &out,
            &format!("{od}.interval"),
            "only durations to ms precision are supported",
        );
        error(&out, &format!("{od}.baseEjectionTime"), "invalid duration");
        error(
            &out,
            &format!("{od}.maxEjectionPercent"),
            "percentage 101 is not in range 0..100",
        );
        error(
            &out,
            &format!("{od}.minHealthPercent"),
            "percentage -1 is not in range 0..100",
        );
        let ok = policy(
            json!({"outlierDetection": {"splitExternalLocalOriginErrors": true, "consecutiveLocalOriginFailures": 3}}),
        );
        assert!(ok.is_empty());
        assert!(!policy(json!({"outlierDetection": {"consecutiveErrors": 5}})).has_errors());
    }

    #[test]
    fn connection_pool() {
        error(
            &policy(json!({"connectionPool": {}})),
            "spec.trafficPolicy.connectionPool",
            "must have at least one field",
        );
        let out = policy(json!({"connectionPool": {
            "http": {"http1MaxPendingRequests": -1, "http2MaxRequests": -1, "maxRequestsPerConnection": -1,
                     "maxRetries": -1, "maxConcurrentStreams": -1, "idleTimeout": "0s",
                     "h2UpgradePolicy": "UPGRADE", "useClientProtocol": true},
            "tcp": {"maxConnections": -1, "connectTimeout": "0.5ms", "maxConnectionDuration": "x",
                    "idleTimeout": "1.5ms", "tcpKeepalive": {"time": "0s", "interval": "0s"}}
        }}));
        let h = "spec.trafficPolicy.connectionPool.http";
        let t = "spec.trafficPolicy.connectionPool.tcp";
        error(
            &out,
            &format!("{h}.http1MaxPendingRequests"),
            "http1 max pending requests must be non-negative",
        );
        error(
            &out,
            &format!("{h}.http2MaxRequests"),
            "http2 max requests must be non-negative",
        );
        error(
            &out,
            &format!("{h}.maxRequestsPerConnection"),
            "max requests per connection must be non-negative",
        );
        error(
            &out,
            &format!("{h}.maxRetries"),
            "max retries must be non-negative",
        );
        error(
            &out,
            &format!("{h}.maxConcurrentStreams"),
            "max concurrent streams must be non-negative",
        );
        error(
            &out,
            &format!("{h}.idleTimeout"),
            "duration must be greater than 1ms",
        );
        error(
            &out,
            &format!("{h}.useClientProtocol"),
            "use client protocol must not be true when H2UpgradePolicy is UPGRADE",
        );
        error(
            &out,
            &format!("{t}.maxConnections"),
            "max connections must be non-negative",
        );
        error(
            &out,
            &format!("{t}.connectTimeout"),
            "duration must be greater than 1ms",
        );
        error(
            &out,
            &format!("{t}.maxConnectionDuration"),
            "invalid duration",
        );
        error(
            &out,
            &format!("{t}.idleTimeout"),
            "only durations to ms precision are supported",
        );
        error(
            &out,
            &format!("{t}.tcpKeepalive.time"),
            "duration must be greater than 1ms",
        );
        error(
            &out,
            &format!("{t}.tcpKeepalive.interval"),
            "duration must be greater than 1ms",
        );
        assert!(policy(json!({"connectionPool": {"tcp": {"idleTimeout": "0s"}}})).is_empty());
    }

    #[test]
    fn client_tls_mutual_needs_files_unless_credential_name() {
        let out = policy(json!({"tls": {"mode": "MUTUAL"}}));
        error(
            &out,
            "spec.trafficPolicy.tls.clientCertificate",
            "client certificate required for mutual tls",
        );
        error(
            &out,
            "spec.trafficPolicy.tls.privateKey",
            "private key required for mutual tls",
        );
        assert!(
            policy(json!({"tls": {"mode": "MUTUAL", "credentialName": "client-creds"}})).is_empty()
        );
        let out = policy(
            json!({"tls": {"mode": "SIMPLE", "credentialName": "c", "caCertificates": "/ca.pem"}}),
        );
        error(
            &out,
            "spec.trafficPolicy.tls",
            "cannot specify client certificates or CA certificate or CA CRL If credentialName is set",
        );
    }

    #[test]
    fn client_tls_insecure_skip_verify() {
        let out = policy(
            json!({"tls": {"mode": "SIMPLE", "insecureSkipVerify": true, "subjectAltNames": ["a"]}}),
        );
        error(
            &out,
            "spec.trafficPolicy.tls.insecureSkipVerify",
            "cannot specify CaCertificates or CredentialName or SubjectAltNames",
        );
        let out = policy(
            json!({"tls": {"mode": "MUTUAL", "insecureSkipVerify": true, "caCertificates": "/ca",
                                        "clientCertificate": "/c", "privateKey": "/k"}}),
        );
        error(
            &out,
            "spec.trafficPolicy.tls.insecureSkipVerify",
            "cannot specify CaCertificates or SubjectAltNames when",
        );
        assert!(policy(json!({"tls": {"mode": "SIMPLE", "insecureSkipVerify": true}})).is_empty());
    }

    #[test]
    fn client_tls_configmap_credential_must_be_local() {
        assert!(
            policy(json!({"tls": {"mode": "SIMPLE", "credentialName": "configmap://prod/ca"}}))
                .is_empty()
        );
        let out =
            policy(json!({"tls": {"mode": "SIMPLE", "credentialName": "configmap://other/ca"}}));
        error(
            &out,
            "spec.trafficPolicy.tls.credentialName",
            "namespace must match the configuration namespace \"prod\"",
        );
        let out = policy(json!({"tls": {"mode": "SIMPLE", "credentialName": "configmap://ca"}}));
        error(
            &out,
            "spec.trafficPolicy.tls.credentialName",
            "Expected namespace and name",
        );
        let out = policy(json!({"tls": {"mode": "SIMPLE", "credentialName": "configmap://prod/"}}));
        error(
            &out,
            "spec.trafficPolicy.tls.credentialName",
            "Expected name",
        );
    }

    #[test]
    fn client_tls_istio_mutual_with_files_warns() {
        let out = policy(
            json!({"tls": {"mode": "ISTIO_MUTUAL", "clientCertificate": "/c", "privateKey": "/k",
                                        "sni": "x.example.com", "subjectAltNames": ["spiffe://a"]}}),
        );
        assert!(!out.has_errors());
        warning(
            &out,
            "spec.trafficPolicy.tls.clientCertificate",
            "ISTIO_MUTUAL uses the mesh's workload certificates",
        );
        warning(
            &out,
            "spec.trafficPolicy.tls.privateKey",
            "privateKey is ignored",
        );
        assert_eq!(out.iter().count(), 2);
    }

    #[test]
    fn export_to_and_workload_selector() {
        let out = run(json!({"host": "r", "exportTo": ["prod", "."]}));
        error(
            &out,
            "spec.exportTo[1]",
            "duplicate entries in exportTo: . and current namespace prod",
        );
        let out = run(
            json!({"host": "r", "workloadSelector": {"matchLabels": {"app": "r"}}, "exportTo": ["other"]}),
        );
        error(
            &out,
            "spec.exportTo",
            "cannot have exportTo beyond current namespace",
        );
        let out = run(json!({"host": "r", "workloadSelector": {}}));
        warning(
            &out,
            "spec.workloadSelector",
            "workload selector specified without labels",
        );
        let out = run(json!({"host": "r", "workloadSelector": {"matchLabels": {"app": "*"}}}));
        error(
            &out,
            "spec.workloadSelector.matchLabels.app",
            "wildcard is not supported in selector",
        );
    }
}
