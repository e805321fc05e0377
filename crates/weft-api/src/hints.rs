//! Messages for unknown fields, with a "did you mean" hint when a real Istio field is close or
//! when the field is a well-known mistake (`circuitBreaker` is not an Istio field).

/// Fields that tutorials use but Istio never had, with what to use instead.
const KNOWN_MISTAKES: &[(&str, &str)] = &[
    (
        "circuitBreaker",
        "Istio has no circuitBreaker field; circuit breaking is configured with trafficPolicy.outlierDetection (ejection) and trafficPolicy.connectionPool (limits)",
    ),
    ("loadBalancing", "did you mean loadBalancer?"),
    ("retry", "did you mean retries?"),
    ("routes", "did you mean route?"),
    ("matches", "did you mean match?"),
    (
        "destinationRule",
        "subsets are defined in a DestinationRule resource, not inline",
    ),
];

/// Every field name the model knows, for "did you mean" suggestions.
const VOCABULARY: &[&str] = &[
    "abort",
    "action",
    "add",
    "address",
    "addresses",
    "aggression",
    "allowCredentials",
    "allowHeaders",
    "allowMethods",
    "allowOrigin",
    "allowOrigins",
    "attempts",
    "attributes",
    "audiences",
    "authority",
    "backoff",
    "baseEjectionTime",
    "bind",
    "body",
    "bytes",
    "caCertCredentialName",
    "caCertificates",
    "caCrl",
    "captureMode",
    "cipherSuites",
    "claim",
    "clientCertificate",
    "connectTimeout",
    "connectionPool",
    "consecutive5xxErrors",
    "consecutiveErrors",
    "consecutiveGatewayErrors",
    "consecutiveLocalOriginFailures",
    "consistentHash",
    "corsPolicy",
    "credentialName",
    "credentialNames",
    "defaultEndpoint",
    "delay",
    "delegate",
    "derivePort",
    "destination",
    "destinationSubnets",
    "directResponse",
    "distribute",
    "duration",
    "egress",
    "egressProxy",
    "enabled",
    "endpoints",
    "exact",
    "exponentialDelay",
    "exportTo",
    "exposeHeaders",
    "failover",
    "failoverPriority",
    "fault",
    "fixedDelay",
    "forwardOriginalToken",
    "from",
    "fromCookies",
    "fromHeaders",
    "fromParams",
    "gateways",
    "group",
    "grpcStatus",
    "h2UpgradePolicy",
    "header",
    "headers",
    "host",
    "hosts",
    "http",
    "http1MaxPendingRequests",
    "http2Error",
    "http2MaxRequests",
    "httpCookie",
    "httpHeaderName",
    "httpQueryParameterName",
    "httpStatus",
    "httpsRedirect",
    "idleTimeout",
    "ignoreUriCase",
    "inboundConnectionPool",
    "ingress",
    "insecureSkipVerify",
    "interval",
    "ipBlocks",
    "issuer",
    "jwks",
    "jwksUri",
    "jwtRules",
    "key",
    "kind",
    "labels",
    "loadBalancer",
    "locality",
    "localityLbSetting",
    "location",
    "maglev",
    "match",
    "matchLabels",
    "maxAge",
    "maxConcurrentStreams",
    "maxConnectionDuration",
    "maxConnections",
    "maxEjectionPercent",
    "maxProtocolVersion",
    "maxRequestsPerConnection",
    "maxRetries",
    "method",
    "methods",
    "minHealthPercent",
    "minProtocolVersion",
    "minRetryConcurrency",
    "minimumPercent",
    "minimumRingSize",
    "mirror",
    "mirrorPercent",
    "mirrorPercentage",
    "mirrors",
    "mode",
    "mtls",
    "name",
    "namespace",
    "namespaces",
    "network",
    "notHosts",
    "notIpBlocks",
    "notMethods",
    "notNamespaces",
    "notPaths",
    "notPorts",
    "notPrincipals",
    "notRemoteIpBlocks",
    "notRequestPrincipals",
    "notServiceAccounts",
    "notValues",
    "number",
    "operation",
    "outboundTrafficPolicy",
    "outlierDetection",
    "outputClaimToHeaders",
    "outputPayloadToHeader",
    "path",
    "paths",
    "perTryTimeout",
    "percent",
    "percentage",
    "port",
    "portLevelMtls",
    "portLevelSettings",
    "ports",
    "prefix",
    "principals",
    "privateKey",
    "probes",
    "protocol",
    "provider",
    "proxyProtocol",
    "queryParams",
    "redirect",
    "redirectCode",
    "regex",
    "remoteIpBlocks",
    "remove",
    "request",
    "requestPrincipals",
    "resolution",
    "response",
    "retries",
    "retryBudget",
    "retryIgnorePreviousHosts",
    "retryOn",
    "retryRemoteLocalities",
    "rewrite",
    "ringHash",
    "route",
    "rules",
    "scheme",
    "selector",
    "serverCertificate",
    "servers",
    "serviceAccount",
    "serviceAccounts",
    "set",
    "simple",
    "sni",
    "sniHosts",
    "source",
    "sourceLabels",
    "sourceNamespace",
    "sourceSubnet",
    "spaceDelimitedClaims",
    "splitExternalLocalOriginErrors",
    "statPrefix",
    "status",
    "string",
    "subjectAltNames",
    "subset",
    "subsets",
    "tableSize",
    "targetHost",
    "targetPort",
    "targetRef",
    "targetRefs",
    "tcp",
    "tcpKeepalive",
    "time",
    "timeout",
    "tls",
    "tlsCertificates",
    "to",
    "trafficPolicy",
    "ttl",
    "tunnel",
    "unmatchedPreflights",
    "uri",
    "uriRegexRewrite",
    "useClientProtocol",
    "useSourceIp",
    "value",
    "values",
    "verifyCertificateHash",
    "verifyCertificateSpki",
    "version",
    "warmup",
    "warmupDurationSecs",
    "weight",
    "when",
    "withoutHeaders",
    "workloadSelector",
];

/// `unknown field "x"`, plus a hint when one applies.
pub fn unknown_field_message(field: &str) -> String {
    if let Some((_, hint)) = KNOWN_MISTAKES.iter().find(|(f, _)| *f == field) {
        return format!("unknown field {field:?}: {hint}");
    }
    match closest(field) {
        Some(best) => format!("unknown field {field:?}; did you mean {best:?}?"),
        None => format!("unknown field {field:?}"),
    }
}

/// The vocabulary word closest to `field`, if it is close enough to be a typo.
fn closest(field: &str) -> Option<&'static str> {
    let lower = field.to_ascii_lowercase();
    let limit = (field.len() / 4).clamp(1, 3);
    VOCABULARY
        .iter()
        .map(|w| (edit_distance(&lower, &w.to_ascii_lowercase()), *w))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, w)| w)
}

/// Optimal-string-alignment distance: Levenshtein plus adjacent transpositions (`wieght`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circuit_breaker_points_at_real_fields() {
        let msg = unknown_field_message("circuitBreaker");
        assert!(
            msg.contains("outlierDetection") && msg.contains("connectionPool"),
            "{msg}"
        );
    }

    #[test]
    fn typos_get_suggestions() {
        assert!(unknown_field_message("wieght").contains("\"weight\""));
        assert!(unknown_field_message("perTryTimout").contains("\"perTryTimeout\""));
        assert_eq!(unknown_field_message("zzzzzz"), "unknown field \"zzzzzz\"");
    }

    /// Every serde field of the model must be in the vocabulary, so hints never go stale.
    #[test]
    fn vocabulary_covers_the_model() {
        let sources = [
            include_str!("model/virtual_service.rs"),
            include_str!("model/destination_rule.rs"),
            include_str!("model/gateway.rs"),
            include_str!("model/service_entry.rs"),
            include_str!("model/sidecar.rs"),
            include_str!("model/security.rs"),
            include_str!("model/mod.rs"),
        ];
        for src in sources {
            for line in src.lines().map(str::trim) {
                let Some(rest) = line.strip_prefix("pub ") else {
                    continue;
                };
                let Some((name, _)) = rest.split_once(':') else {
                    continue;
                };
                if name.contains(' ') || name == "matches" || name == "pattern" {
                    continue;
                }
                let mut parts = name.split('_');
                let mut camel = parts.next().unwrap_or_default().to_string();
                for p in parts {
                    let mut c = p.chars();
                    if let Some(first) = c.next() {
                        camel.push(first.to_ascii_uppercase());
                        camel.push_str(c.as_str());
                    }
                }
                assert!(
                    VOCABULARY.contains(&camel.as_str()),
                    "{camel} missing from VOCABULARY"
                );
            }
        }
    }
}
