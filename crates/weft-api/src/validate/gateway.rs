//! Gateway validation: servers, their ports, binds, hosts and TLS settings, as Istio's
//! `ValidateGateway` checks them. The server-TLS check is shared with Sidecar ingress listeners.

use std::collections::BTreeSet;

use super::common::{
    check_port, ip_address, namespace_slash_host, protocol, protocol_is_http, protocol_is_tls,
    unix_address,
};
use crate::diagnostic::{FieldPath, Findings};
use crate::model::{Gateway, Port, Server, ServerTlsMode, ServerTlsSettings, TlsProtocolVersion};

/// Cipher suites Envoy knows by name (`security.ValidCipherSuites`).
const CIPHER_SUITES: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-SHA",
    "AES256-SHA",
    "DES-CBC3-SHA",
];

/// `ValidateGateway`. The object name (a DNS-1123 label, no dots) is checked by Istio too, but
/// this function only sees the spec.
pub fn check(gw: &Gateway, path: &FieldPath, out: &mut Findings) {
    let servers = path.field("servers");
    if gw.servers.is_empty() {
        out.error(&servers, "gateway must have at least one server");
    }
    let mut names = BTreeSet::new();
    for (i, server) in gw.servers.iter().enumerate() {
        let p = servers.index(i);
        check_server(out, &p, server);
        let Some(port) = &server.port else { continue };
        let name = port.name.as_deref().unwrap_or("");
        // An empty name already fails "port name must be set"; Istio would also call a second
        // empty name a duplicate.
        if !name.is_empty() && !names.insert(name) {
            out.error(
                p.field("port").field("name"),
                format!("port names in servers must be unique: duplicate name {name}"),
            );
        }
        let redirect = server
            .tls
            .as_ref()
            .and_then(|t| t.https_redirect)
            .unwrap_or(false);
        if redirect && !protocol_is_http(port.protocol.as_deref().unwrap_or("")) {
            out.warn(
                p.field("tls").field("httpsRedirect"),
                "tls.httpsRedirect should only be used with http servers",
            );
        }
    }
}

/// `validateServer`.
fn check_server(out: &mut Findings, path: &FieldPath, server: &Server) {
    let hosts = path.field("hosts");
    if server.hosts.is_empty() {
        out.error(&hosts, "server config must contain at least one host");
    }
    for (j, host) in server.hosts.iter().enumerate() {
        for e in namespace_slash_host(host, true) {
            out.error(hosts.index(j), e);
        }
    }
    let bind = server.bind.as_deref().unwrap_or("");
    let port_ok = check_server_port(out, &path.field("port"), server.port.as_ref(), bind);
    check_server_bind(out, &path.field("bind"), server.port.as_ref(), bind);
    if let Some(tls) = &server.tls {
        check_server_tls(out, &path.field("tls"), tls);
    }
    let Some(port) = server.port.as_ref().filter(|_| port_ok) else {
        return;
    };
    let proto = port.protocol.as_deref().unwrap_or("");
    match &server.tls {
        None if protocol_is_tls(proto) => {
            out.error(
                path.field("tls"),
                "server must have TLS settings for HTTPS/TLS protocols",
            );
        }
        Some(tls) if !protocol_is_tls(proto) => {
            if !protocol_is_http(proto) {
                out.error(
                    path.field("tls"),
                    "server cannot have TLS settings for non HTTPS/TLS ports",
                );
            } else if !is_passthrough_without_files(tls) {
                // Only a redirect (whose mode defaults to PASSTHROUGH) fits a plain HTTP port.
                out.error(
                    path.field("tls"),
                    "server cannot have TLS settings for plain text HTTP ports",
                );
            }
        }
        _ => {}
    }
}

fn is_passthrough_without_files(tls: &ServerTlsSettings) -> bool {
    let mode = tls.mode.unwrap_or(ServerTlsMode::Passthrough);
    matches!(
        mode,
        ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough
    ) && text(&tls.ca_certificates).is_empty()
        && text(&tls.private_key).is_empty()
        && text(&tls.server_certificate).is_empty()
}

/// `validateServerPort`. Returns whether the port is present and free of errors.
fn check_server_port(
    out: &mut Findings,
    path: &FieldPath,
    port: Option<&Port>,
    bind: &str,
) -> bool {
    let Some(port) = port else {
        out.error(path, "port is required");
        return false;
    };
    let mut ok = true;
    let proto = port.protocol.as_deref().unwrap_or("");
    if proto.is_empty() || protocol(proto).is_err() {
        out.error(
            path.field("protocol"),
            format!("invalid protocol {proto:?}, supported protocols are HTTP, HTTP2, GRPC, GRPC-WEB, MONGO, REDIS, MYSQL, TCP"),
        );
        ok = false;
    }
    if (port.number > 0 || !bind.starts_with("unix://")) && !(1..=65535).contains(&port.number) {
        check_port(out, &path.field("number"), port.number);
        ok = false;
    }
    if port.target_port.unwrap_or(0) > 0 {
        out.error(
            path.field("targetPort"),
            "targetPort has no impact on Gateways",
        );
        ok = false;
    }
    if port.name.as_deref().unwrap_or("").is_empty() {
        out.error(
            path.field("name"),
            format!("port name must be set: {}", port_text(port)),
        );
        ok = false;
    }
    ok
}

/// A port in Go's compact proto text form, as Istio prints it in messages (`number:80 protocol:"HTTP"`).
fn port_text(port: &Port) -> String {
    let mut parts = Vec::new();
    if port.number != 0 {
        parts.push(format!("number:{}", port.number));
    }
    if let Some(p) = port.protocol.as_deref().filter(|p| !p.is_empty()) {
        parts.push(format!("protocol:{p:?}"));
    }
    if let Some(n) = port.name.as_deref().filter(|n| !n.is_empty()) {
        parts.push(format!("name:{n:?}"));
    }
    if let Some(t) = port.target_port.filter(|t| *t != 0) {
        parts.push(format!("target_port:{t}"));
    }
    parts.join(" ")
}

/// `validateServerBind`: a unix socket (with port 0) or an IP address.
fn check_server_bind(out: &mut Findings, path: &FieldPath, port: Option<&Port>, bind: &str) {
    if let Some(socket) = bind.strip_prefix("unix://") {
        if let Err(e) = unix_address(socket) {
            out.error(path, e);
        }
        if let Some(port) = port.filter(|p| p.number != 0) {
            out.error(
                path,
                format!(
                    "port number must be 0 for unix domain socket: {}",
                    port_text(port)
                ),
            );
        }
    } else if let Some(e) = Some(bind)
        .filter(|b| !b.is_empty())
        .and_then(|b| ip_address(b).err())
    {
        out.error(path, e);
    }
}

fn text(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

fn mode_name(mode: ServerTlsMode) -> &'static str {
    match mode {
        ServerTlsMode::Passthrough => "PASSTHROUGH",
        ServerTlsMode::Simple => "SIMPLE",
        ServerTlsMode::Mutual => "MUTUAL",
        ServerTlsMode::AutoPassthrough => "AUTO_PASSTHROUGH",
        ServerTlsMode::IstioMutual => "ISTIO_MUTUAL",
        ServerTlsMode::OptionalMutual => "OPTIONAL_MUTUAL",
    }
}

/// The name Istio prints for a server TLS mode (the mode defaults to `PASSTHROUGH`).
pub(super) fn server_tls_mode_name(tls: &ServerTlsSettings) -> &'static str {
    mode_name(tls.mode.unwrap_or(ServerTlsMode::Passthrough))
}

/// `validateTLSOptions`, for Gateway servers and Sidecar ingress listeners.
pub(super) fn check_server_tls(out: &mut Findings, path: &FieldPath, tls: &ServerTlsSettings) {
    check_ciphers(out, path, tls);
    let mode = tls.mode.unwrap_or(ServerTlsMode::Passthrough);
    if mode == ServerTlsMode::IstioMutual {
        check_istio_mutual(out, path, tls);
        return;
    }
    check_certificate_sources(out, path, tls, mode);
    let credential = text(&tls.credential_name);
    let any_credential = !credential.is_empty() || !tls.credential_names.is_empty();
    let terminating = matches!(
        mode,
        ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual
    );
    if terminating && any_credential {
        return;
    }
    if terminating {
        check_terminating_files(out, path, tls, mode);
    }
    if !text(&tls.ca_crl).is_empty() {
        if !credential.is_empty() {
            out.error(
                path.field("caCrl"),
                "CRL is not supported with credentialName. CRL has to be specified in the credential",
            );
        }
        if mode == ServerTlsMode::Simple {
            out.error(path.field("caCrl"), "CRL is not supported with SIMPLE TLS");
        }
    }
}

/// Passthrough modes ignore certificates (a warning); other modes take at most one source.
fn check_certificate_sources(
    out: &mut Findings,
    path: &FieldPath,
    tls: &ServerTlsSettings,
    mode: ServerTlsMode,
) {
    let cert = text(&tls.server_certificate);
    let key = text(&tls.private_key);
    let credential = text(&tls.credential_name);
    if matches!(
        mode,
        ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough
    ) {
        let files = [
            text(&tls.ca_crl),
            cert,
            key,
            text(&tls.ca_certificates),
            credential,
        ]
        .iter()
        .any(|s| !s.is_empty());
        if files || !tls.tls_certificates.is_empty() || !tls.credential_names.is_empty() {
            out.warn(
                path,
                format!(
                    "{} mode does not use certificates, they will be ignored",
                    mode_name(mode)
                ),
            );
        }
    }
    let sources = [
        !cert.is_empty() && !key.is_empty(),
        !credential.is_empty(),
        !tls.credential_names.is_empty(),
        !tls.tls_certificates.is_empty(),
    ];
    if sources.iter().filter(|s| **s).count() > 1 {
        out.error(
            path,
            "only one of credential_name, credential_names, server_certificate/private_key, tls_certificates should be specified",
        );
    }
}

/// TLS below 1.2 needs explicit ciphers; unknown or repeated cipher names are ignored (warnings).
fn check_ciphers(out: &mut Findings, path: &FieldPath, tls: &ServerTlsSettings) {
    let old = matches!(
        tls.min_protocol_version,
        Some(TlsProtocolVersion::V1_0 | TlsProtocolVersion::V1_1)
    );
    if old && tls.cipher_suites.is_empty() {
        out.warn(
            path.field("minProtocolVersion"),
            "TLS version below TLSV1_2 require setting compatible ciphers as by default they no longer include compatible ciphers.",
        );
    }
    let mut invalid = BTreeSet::new();
    let mut valid = BTreeSet::new();
    let mut duplicate = BTreeSet::new();
    for cs in &tls.cipher_suites {
        if !is_valid_cipher_suite(cs) {
            invalid.insert(cs.as_str());
        } else if !valid.insert(cs.as_str()) {
            duplicate.insert(cs.as_str());
        }
    }
    let go_list =
        |set: &BTreeSet<&str>| format!("[{}]", set.iter().copied().collect::<Vec<_>>().join(" "));
    if !invalid.is_empty() {
        out.warn(
            path.field("cipherSuites"),
            format!("ignoring invalid cipher suites: {}", go_list(&invalid)),
        );
    }
    if !duplicate.is_empty() {
        out.warn(
            path.field("cipherSuites"),
            format!("ignoring duplicate cipher suites: {}", go_list(&duplicate)),
        );
    }
}

/// `security.IsValidCipherSuite`: empty, `ALL`, an operator-prefixed group (`-X`, `!X`, `+X`) or
/// a known name.
fn is_valid_cipher_suite(cs: &str) -> bool {
    match cs.chars().next() {
        None => true,
        Some(c) if !c.is_alphanumeric() => true,
        Some(_) => cs == "ALL" || CIPHER_SUITES.contains(&cs),
    }
}

/// `ISTIO_MUTUAL` uses the mesh's certificates, so no certificate source may be given.
fn check_istio_mutual(out: &mut Findings, path: &FieldPath, tls: &ServerTlsSettings) {
    let checks = [
        (
            "serverCertificate",
            !text(&tls.server_certificate).is_empty(),
            "server certificate",
        ),
        (
            "privateKey",
            !text(&tls.private_key).is_empty(),
            "private key",
        ),
        (
            "caCertificates",
            !text(&tls.ca_certificates).is_empty(),
            "CA bundle",
        ),
        (
            "tlsCertificates",
            !tls.tls_certificates.is_empty(),
            "tlsCertificates",
        ),
        (
            "credentialName",
            !text(&tls.credential_name).is_empty(),
            "credentialName",
        ),
        (
            "credentialNames",
            !tls.credential_names.is_empty(),
            "credentialNames",
        ),
    ];
    for (field, set, what) in checks {
        if set {
            out.error(
                path.field(field),
                format!("ISTIO_MUTUAL TLS cannot have associated {what}"),
            );
        }
    }
}

/// SIMPLE / MUTUAL / OPTIONAL_MUTUAL without a credential name need files on disk.
fn check_terminating_files(
    out: &mut Findings,
    path: &FieldPath,
    tls: &ServerTlsSettings,
    mode: ServerTlsMode,
) {
    let prefix = if mode == ServerTlsMode::Simple {
        "SIMPLE TLS"
    } else {
        "MUTUAL TLS"
    };
    if mode != ServerTlsMode::Simple && text(&tls.ca_certificates).is_empty() {
        out.error(
            path.field("caCertificates"),
            format!("{prefix} requires a client CA bundle"),
        );
    }
    if tls.tls_certificates.len() > 2 {
        out.warn(
            path.field("tlsCertificates"),
            format!("{prefix} can support up to 2 server certificates"),
        );
    }
    for (p, cert, key) in server_certificates(path, tls) {
        if cert.is_empty() {
            out.error(
                p.field("serverCertificate"),
                format!("{prefix} requires a server certificate"),
            );
        }
        if key.is_empty() {
            out.error(
                p.field("privateKey"),
                format!("{prefix} requires a private key"),
            );
        }
    }
}

/// The certificate/key pairs to check: each `tlsCertificates` entry, or the top-level pair.
fn server_certificates<'a>(
    path: &FieldPath,
    tls: &'a ServerTlsSettings,
) -> Vec<(FieldPath, &'a str, &'a str)> {
    if tls.tls_certificates.is_empty() {
        return vec![(
            path.clone(),
            text(&tls.server_certificate),
            text(&tls.private_key),
        )];
    }
    let list = path.field("tlsCertificates");
    tls.tls_certificates
        .iter()
        .enumerate()
        .map(|(k, c)| {
            (
                list.index(k),
                text(&c.server_certificate),
                text(&c.private_key),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::validate::test_support::{error, warning};

    fn run(spec: serde_json::Value) -> Findings {
        let gw: Gateway = serde_json::from_value(spec).unwrap();
        let mut out = Findings::default();
        check(&gw, &FieldPath::new("spec"), &mut out);
        out
    }

    fn server(s: serde_json::Value) -> Findings {
        run(json!({"selector": {"istio": "ingressgateway"}, "servers": [s]}))
    }

    fn tls_server(tls: serde_json::Value) -> Findings {
        server(
            json!({"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["a.example.com"], "tls": tls}),
        )
    }

    #[test]
    fn full_valid_example_has_no_findings() {
        let out = run(json!({
            "selector": {"istio": "ingressgateway"},
            "servers": [
                {"port": {"number": 80, "name": "http", "protocol": "HTTP"},
                 "hosts": ["prod/bookinfo.example.com", "*.example.com"], "tls": {"httpsRedirect": true}},
                {"port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                 "hosts": ["./reviews.example.com"],
                 "tls": {"mode": "SIMPLE", "credentialName": "bookinfo-cert", "minProtocolVersion": "TLSV1_2",
                         "cipherSuites": ["ECDHE-RSA-AES128-GCM-SHA256", "-AES128-SHA"]}},
                {"port": {"number": 8443, "name": "mtls", "protocol": "HTTPS"}, "hosts": ["*"],
                 "tls": {"mode": "MUTUAL", "serverCertificate": "/c.pem", "privateKey": "/k.pem", "caCertificates": "/ca.pem"}},
                {"port": {"number": 15443, "name": "tls", "protocol": "TLS"}, "hosts": ["*.local"],
                 "tls": {"mode": "AUTO_PASSTHROUGH"}},
                {"port": {"number": 0, "name": "uds", "protocol": "TCP"}, "bind": "unix:///var/run/gw.sock", "hosts": ["*"]},
                {"port": {"number": 31400, "name": "tcp", "protocol": "TCP"}, "bind": "10.0.0.1", "hosts": ["*"]}
            ]
        }));
        assert!(out.is_empty(), "{:#?}", out.iter().collect::<Vec<_>>());
    }

    #[test]
    fn servers_are_required() {
        error(
            &run(json!({})),
            "spec.servers",
            "gateway must have at least one server",
        );
    }

    #[test]
    fn hosts() {
        let out = server(json!({"port": {"number": 80, "name": "http", "protocol": "HTTP"}}));
        error(
            &out,
            "spec.servers[0].hosts",
            "server config must contain at least one host",
        );
        let out = server(
            json!({"port": {"number": 80, "name": "http", "protocol": "HTTP"},
                                "hosts": ["reviews", "bad_ns!/a.com", "*foo.com", "/a.com", "10.1.2.3"]}),
        );
        error(
            &out,
            "spec.servers[0].hosts[0]",
            "short names (non FQDN) are not allowed",
        );
        error(
            &out,
            "spec.servers[0].hosts[1]",
            "invalid namespace value \"bad_ns!\" in gateway",
        );
        error(
            &out,
            "spec.servers[0].hosts[2]",
            "partial wildcard \"*foo.com\" not allowed",
        );
        error(
            &out,
            "spec.servers[0].hosts[3]",
            "config namespace and dnsName in host entry cannot be empty",
        );
        assert!(
            !out.iter().any(|f| f.field == "spec.servers[0].hosts[4]"),
            "IP hosts are allowed"
        );
    }

    #[test]
    fn port_checks() {
        error(
            &server(json!({"hosts": ["*"]})),
            "spec.servers[0].port",
            "port is required",
        );
        let out = server(json!({"port": {"number": 70000, "targetPort": 8080}, "hosts": ["*"]}));
        let p = "spec.servers[0].port";
        error(
            &out,
            &format!("{p}.protocol"),
            "invalid protocol \"\", supported protocols are HTTP",
        );
        error(
            &out,
            &format!("{p}.number"),
            "port number 70000 must be in the range 1..65535",
        );
        error(
            &out,
            &format!("{p}.targetPort"),
            "targetPort has no impact on Gateways",
        );
        error(
            &out,
            &format!("{p}.name"),
            "port name must be set: number:70000 target_port:8080",
        );
        let out = server(
            json!({"port": {"number": 80, "name": "x", "protocol": "SMTP"}, "hosts": ["*"]}),
        );
        error(&out, &format!("{p}.protocol"), "invalid protocol \"SMTP\"");
        let out =
            server(json!({"port": {"number": 0, "name": "x", "protocol": "TCP"}, "hosts": ["*"]}));
        error(
            &out,
            &format!("{p}.number"),
            "port number 0 must be in the range",
        );
    }

    #[test]
    fn bind_checks() {
        let out = server(
            json!({"port": {"number": 80, "name": "h", "protocol": "HTTP"}, "hosts": ["*"], "bind": "unix://rel"}),
        );
        error(
            &out,
            "spec.servers[0].bind",
            "rel is not an absolute path to a file",
        );
        error(
            &out,
            "spec.servers[0].bind",
            "port number must be 0 for unix domain socket: number:80 protocol:\"HTTP\" name:\"h\"",
        );
        let out = server(
            json!({"port": {"number": 80, "name": "h", "protocol": "HTTP"}, "hosts": ["*"], "bind": "localhost"}),
        );
        error(&out, "spec.servers[0].bind", "localhost is not a valid IP");
    }

    #[test]
    fn duplicate_port_names_and_https_redirect() {
        let out = run(json!({"servers": [
            {"port": {"number": 80, "name": "web", "protocol": "HTTP"}, "hosts": ["*"]},
            {"port": {"number": 81, "name": "web", "protocol": "TCP"}, "hosts": ["*"], "tls": {"httpsRedirect": true}}
        ]}));
        error(
            &out,
            "spec.servers[1].port.name",
            "port names in servers must be unique: duplicate name web",
        );
        warning(
            &out,
            "spec.servers[1].tls.httpsRedirect",
            "tls.httpsRedirect should only be used with http servers",
        );
        error(
            &out,
            "spec.servers[1].tls",
            "server cannot have TLS settings for non HTTPS/TLS ports",
        );
    }

    #[test]
    fn protocol_and_tls_must_agree() {
        let out = server(
            json!({"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["*"]}),
        );
        error(
            &out,
            "spec.servers[0].tls",
            "server must have TLS settings for HTTPS/TLS protocols",
        );
        let out = server(
            json!({"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"],
                                "tls": {"mode": "SIMPLE", "credentialName": "c"}}),
        );
        error(
            &out,
            "spec.servers[0].tls",
            "server cannot have TLS settings for plain text HTTP ports",
        );
        let out = server(
            json!({"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"],
                                "tls": {"httpsRedirect": true, "serverCertificate": "/c"}}),
        );
        error(&out, "spec.servers[0].tls", "plain text HTTP ports");
        warning(
            &out,
            "spec.servers[0].tls",
            "PASSTHROUGH mode does not use certificates, they will be ignored",
        );
        // A port that already failed is not compared with the TLS settings.
        let out = server(json!({"port": {"number": 443, "protocol": "HTTPS"}, "hosts": ["*"]}));
        assert!(
            !out.iter()
                .any(|f| f.message.contains("must have TLS settings"))
        );
    }

    #[test]
    fn simple_and_mutual_need_files() {
        let out = tls_server(json!({"mode": "SIMPLE"}));
        error(
            &out,
            "spec.servers[0].tls.serverCertificate",
            "SIMPLE TLS requires a server certificate",
        );
        error(
            &out,
            "spec.servers[0].tls.privateKey",
            "SIMPLE TLS requires a private key",
        );
        let out = tls_server(
            json!({"mode": "OPTIONAL_MUTUAL", "serverCertificate": "/c", "privateKey": "/k"}),
        );
        error(
            &out,
            "spec.servers[0].tls.caCertificates",
            "MUTUAL TLS requires a client CA bundle",
        );
        let out = tls_server(json!({"mode": "SIMPLE", "tlsCertificates": [
            {"serverCertificate": "/a", "privateKey": "/a"}, {"serverCertificate": "/b"}, {"privateKey": "/c"}]}));
        warning(
            &out,
            "spec.servers[0].tls.tlsCertificates",
            "SIMPLE TLS can support up to 2 server certificates",
        );
        error(
            &out,
            "spec.servers[0].tls.tlsCertificates[1].privateKey",
            "SIMPLE TLS requires a private key",
        );
        error(
            &out,
            "spec.servers[0].tls.tlsCertificates[2].serverCertificate",
            "requires a server certificate",
        );
        assert!(tls_server(json!({"mode": "MUTUAL", "credentialNames": ["a", "b"]})).is_empty());
    }

    #[test]
    fn certificate_sources_are_exclusive() {
        let out = tls_server(
            json!({"mode": "SIMPLE", "credentialName": "c", "serverCertificate": "/c", "privateKey": "/k"}),
        );
        error(
            &out,
            "spec.servers[0].tls",
            "only one of credential_name, credential_names, server_certificate/private_key",
        );
    }

    #[test]
    fn istio_mutual_takes_no_files() {
        let out = tls_server(
            json!({"mode": "ISTIO_MUTUAL", "serverCertificate": "/c", "privateKey": "/k",
                                    "caCertificates": "/ca", "credentialName": "x", "credentialNames": ["y"],
                                    "tlsCertificates": [{"serverCertificate": "/c"}]}),
        );
        let p = "spec.servers[0].tls";
        error(
            &out,
            &format!("{p}.serverCertificate"),
            "ISTIO_MUTUAL TLS cannot have associated server certificate",
        );
        error(
            &out,
            &format!("{p}.privateKey"),
            "cannot have associated private key",
        );
        error(
            &out,
            &format!("{p}.caCertificates"),
            "cannot have associated CA bundle",
        );
        error(
            &out,
            &format!("{p}.credentialName"),
            "cannot have associated credentialName",
        );
        error(
            &out,
            &format!("{p}.credentialNames"),
            "cannot have associated credentialNames",
        );
        error(
            &out,
            &format!("{p}.tlsCertificates"),
            "cannot have associated tlsCertificates",
        );
        assert!(tls_server(json!({"mode": "ISTIO_MUTUAL"})).is_empty());
    }

    #[test]
    fn crl_rules() {
        let out = tls_server(
            json!({"mode": "SIMPLE", "serverCertificate": "/c", "privateKey": "/k", "caCrl": "/crl"}),
        );
        error(
            &out,
            "spec.servers[0].tls.caCrl",
            "CRL is not supported with SIMPLE TLS",
        );
        let out = tls_server(
            json!({"mode": "MUTUAL", "serverCertificate": "/c", "privateKey": "/k",
                                    "caCertificates": "/ca", "caCrl": "/crl"}),
        );
        assert!(out.is_empty());
    }

    #[test]
    fn ciphers_and_old_versions_warn() {
        let out = tls_server(
            json!({"mode": "SIMPLE", "credentialName": "c", "minProtocolVersion": "TLSV1_1"}),
        );
        warning(
            &out,
            "spec.servers[0].tls.minProtocolVersion",
            "TLS version below TLSV1_2 require setting compatible ciphers",
        );
        let out = tls_server(json!({"mode": "SIMPLE", "credentialName": "c",
            "cipherSuites": ["ZZZ", "AES128-SHA", "AES128-SHA", "YYY", "!aNULL", "ALL"]}));
        assert!(!out.has_errors());
        warning(
            &out,
            "spec.servers[0].tls.cipherSuites",
            "ignoring invalid cipher suites: [YYY ZZZ]",
        );
        warning(
            &out,
            "spec.servers[0].tls.cipherSuites",
            "ignoring duplicate cipher suites: [AES128-SHA]",
        );
    }

    #[test]
    fn passthrough_with_certificates_warns() {
        let out = tls_server(json!({"mode": "AUTO_PASSTHROUGH", "credentialName": "x"}));
        assert!(!out.has_errors());
        warning(
            &out,
            "spec.servers[0].tls",
            "AUTO_PASSTHROUGH mode does not use certificates",
        );
    }
}
