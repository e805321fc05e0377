//! VirtualService validation cases, driven through the loader so field paths and line numbers
//! are checked too.

use crate::diagnostic::Severity;
use crate::load::load_text;

fn vs(spec: &str) -> String {
    let indented: String = spec.lines().map(|l| format!("  {l}\n")).collect();
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: r\nspec:\n{indented}"
    )
}

/// (field, message, severity) of every diagnostic.
fn findings(spec: &str) -> Vec<(String, String, Severity)> {
    load_text("vs.yaml", &vs(spec))
        .diagnostics
        .into_iter()
        .map(|d| (d.field, d.message, d.severity))
        .collect()
}

fn assert_error(spec: &str, field: &str, message_part: &str) {
    let all = findings(spec);
    assert!(
        all.iter()
            .any(|(f, m, s)| f == field && m.contains(message_part) && *s == Severity::Error),
        "expected error at {field} containing {message_part:?}, got {all:#?}"
    );
}

fn assert_warning(spec: &str, field: &str, message_part: &str) {
    let all = findings(spec);
    assert!(
        all.iter()
            .any(|(f, m, s)| f == field && m.contains(message_part) && *s == Severity::Warning),
        "expected warning at {field} containing {message_part:?}, got {all:#?}"
    );
    assert!(
        all.iter().all(|(_, _, s)| *s != Severity::Error),
        "unexpected errors: {all:#?}"
    );
}

fn assert_valid(spec: &str) {
    let all = findings(spec);
    assert!(all.is_empty(), "expected no findings, got {all:#?}");
}

const CANARY: &str = "hosts: [reviews]
http:
- route:
  - destination: {host: reviews, subset: v1}
    weight: 80
  - destination: {host: reviews, subset: v2}
    weight: 20
";

#[test]
fn canary_split_is_valid() {
    assert_valid(CANARY);
}

#[test]
fn weights_are_relative_and_need_not_sum_to_100() {
    assert_valid(
        "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews, subset: v1}\n    weight: 1\n  - destination: {host: reviews, subset: v2}\n    weight: 3\n",
    );
    assert_valid(
        "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews}\n    weight: 0\n",
    );
}

#[test]
fn negative_weight_is_rejected_with_position() {
    let text = vs(
        "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews, subset: v1}\n    weight: 80\n  - destination: {host: reviews, subset: v2}\n    weight: -20\n",
    );
    let loaded = load_text("vs.yaml", &text);
    let d = loaded
        .diagnostics
        .iter()
        .find(|d| d.field == "spec.http[0].route[1].weight")
        .unwrap();
    assert_eq!(d.message, "weight -20 < 0");
    assert_eq!((d.line, d.column), (12, 7));
    assert_eq!(
        d.to_string(),
        "vs.yaml:12:7: VirtualService default/r: spec.http[0].route[1].weight: weight -20 < 0"
    );
}

#[test]
fn all_zero_weights_are_rejected() {
    assert_error(
        "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews, subset: v1}\n    weight: 0\n  - destination: {host: reviews, subset: v2}\n    weight: 0\n",
        "spec.http[0].route",
        "total destination weight = 0",
    );
}

#[test]
fn hosts_rules() {
    assert_error(
        "hosts: ['']\nhttp:\n- route:\n  - destination: {host: a}\n",
        "spec.hosts[0]",
        "empty domain name",
    );
    assert_error(
        "hosts: ['*']\nhttp:\n- route:\n  - destination: {host: a}\n",
        "spec.hosts[0]",
        "wildcard host * is not allowed",
    );
    assert_valid(
        "hosts: ['*']\ngateways: [ingress]\nhttp:\n- route:\n  - destination: {host: a}\n",
    );
    assert_error(
        "hosts: [a.com, '*.com']\nhttp:\n- route:\n  - destination: {host: a}\n",
        "spec.hosts[1]",
        "duplicate hosts",
    );
    assert_error(
        "hosts: [bad_host]\nhttp:\n- route:\n  - destination: {host: a}\n",
        "spec.hosts[0]",
        "invalid",
    );
}

#[test]
fn routes_need_an_action() {
    assert_error(
        "hosts: [a]\nhttp:\n- match:\n  - uri: {prefix: /}\n",
        "spec.http[0]",
        "HTTP route, redirect or direct_response is required",
    );
    assert_error("hosts: [a]\n", "spec", "http, tcp or tls must be provided");
    assert_error(
        "hosts: [a]\nhttp:\n- redirect: {uri: /x}\n  route:\n  - destination: {host: a}\n",
        "spec.http[0].route",
        "both route and redirect",
    );
    assert_valid(
        "hosts: [a]\nhttp:\n- directResponse:\n    status: 503\n    body: {string: down}\n",
    );
    assert_valid("hosts: [a]\nhttp:\n- delegate: {name: b, namespace: ns}\n");
}

#[test]
fn durations_follow_go_and_istio() {
    assert_error(
        "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n  timeout: 5x\n",
        "spec.http[0].timeout",
        "unknown unit",
    );
    assert_error(
        "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n  timeout: -1s\n",
        "spec.http[0].timeout",
        "negative",
    );
    assert_error(
        "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n  timeout: 0s\n",
        "spec.http[0].timeout",
        "greater than 1ms",
    );
    assert_valid("hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n  timeout: 1.5s\n");
}

#[test]
fn regexes_must_compile_under_re2() {
    assert_error(
        "hosts: [a]\nhttp:\n- match:\n  - headers:\n      user-agent: {regex: '(?=Chrome)'}\n  route:\n  - destination: {host: a}\n",
        "spec.http[0].match[0].headers.user-agent.regex",
        "RE2",
    );
    assert_valid(
        "hosts: [a]\nhttp:\n- match:\n  - headers:\n      user-agent: {regex: '.*Chrome.*'}\n  route:\n  - destination: {host: a}\n",
    );
}

#[test]
fn retries() {
    assert_error(
        "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n  retries: {attempts: 0, perTryTimeout: 2s}\n",
        "spec.http[0].retries.attempts",
        "attempts are set to 0",
    );
    assert_error(
        "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n  retries: {attempts: 3, retryOn: '5xx,bogus'}\n",
        "spec.http[0].retries.retryOn",
        "\"bogus\" is not a valid retryOn policy",
    );
    assert_error(
        "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n  retries: {attempts: 3, retryOn: '5xx, reset'}\n",
        "spec.http[0].retries.retryOn",
        "\" reset\"",
    );
    assert_valid(
        "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n  retries: {attempts: 3, perTryTimeout: 2s, retryOn: '5xx,reset,connect-failure,refused-stream,503'}\n",
    );
    assert_valid(
        "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n  retries: {attempts: 0}\n",
    );
}

#[test]
fn faults() {
    assert_error(
        "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n  fault:\n    abort: {httpStatus: 700, percentage: {value: 10}}\n",
        "spec.http[0].fault.abort.httpStatus",
        "not in range 200-599",
    );
    assert_error(
        "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n  fault:\n    delay: {fixedDelay: 5s, percentage: {value: 101}}\n",
        "spec.http[0].fault.delay.percentage.value",
        "percentage 101",
    );
    assert_error(
        "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n  fault: {}\n",
        "spec.http[0].fault",
        "abort and/or a delay",
    );
    assert_warning(
        "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n  fault:\n    delay: {fixedDelay: 5s, percent: 10}\n",
        "spec.http[0].fault.delay.percent",
        "deprecated",
    );
    assert_valid(
        "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n  fault:\n    delay: {fixedDelay: 5s, percentage: {value: 10}}\n    abort: {grpcStatus: UNAVAILABLE, percentage: {value: 0.5}}\n",
    );
}

#[test]
fn mirrors() {
    assert_warning(
        "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n  mirror: {host: b}\n  mirrorPercent: 50\n",
        "spec.http[0].mirrorPercent",
        "deprecated",
    );
    assert_error(
        "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n  mirror: {host: b}\n  mirrorPercentage: {value: 150}\n",
        "spec.http[0].mirrorPercentage.value",
        "max value of 100",
    );
    assert_error(
        "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n  mirror: {host: b}\n  mirrors:\n  - destination: {host: c}\n",
        "spec.http[0].mirrors",
        "both mirror and mirrors",
    );
}

#[test]
fn headers_and_rewrites_and_redirects() {
    assert_error(
        "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n  headers:\n    response:\n      set: {host: x}\n",
        "spec.http[0].headers.response.set.host",
        "cannot set Host header",
    );
    assert_error(
        "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n  rewrite: {}\n",
        "spec.http[0].rewrite",
        "at least one of URI",
    );
    assert_error(
        "hosts: [a]\nhttp:\n- redirect: {uri: /x, redirectCode: 200}\n",
        "spec.http[0].redirect.redirectCode",
        "must be 3xx",
    );
    assert_error(
        "hosts: [a]\nhttp:\n- redirect: {}\n",
        "spec.http[0].redirect",
        "redirect must specify",
    );
    assert_error(
        "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n  rewrite:\n    uriRegexRewrite: {match: '[', rewrite: x}\n",
        "spec.http[0].rewrite.uriRegexRewrite.match",
        "RE2",
    );
    assert_valid(
        "hosts: [a]\nhttp:\n- match:\n  - uri: {prefix: /v1}\n  rewrite: {uri: /v2, authority: b}\n  route:\n  - destination: {host: a, port: {number: 9080}}\n",
    );
}

#[test]
fn cors() {
    assert_error(
        "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n  corsPolicy:\n    allowMethods: [get]\n",
        "spec.http[0].corsPolicy.allowMethods[0]",
        "not a supported HTTP method",
    );
    assert_warning(
        "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n  corsPolicy:\n    allowOrigin: [example.com]\n",
        "spec.http[0].corsPolicy.allowOrigin",
        "deprecated",
    );
}

#[test]
fn tcp_and_tls_routes() {
    assert_valid(
        "hosts: [db]\ntcp:\n- match:\n  - port: 5432\n  route:\n  - destination: {host: db, port: {number: 5432}}\n",
    );
    assert_error(
        "hosts: [db]\ntcp:\n- match:\n  - port: 70000\n  route:\n  - destination: {host: db}\n",
        "spec.tcp[0].match[0].port",
        "1..65535",
    );
    assert_error(
        "hosts: [a.com]\ntls:\n- match:\n  - sniHosts: [b.com]\n  route:\n  - destination: {host: a}\n",
        "spec.tls[0].match[0].sniHosts[0]",
        "not a compatible subset",
    );
    assert_error(
        "hosts: [a.com]\ntls:\n- route:\n  - destination: {host: a}\n",
        "spec.tls[0].match",
        "at least one match",
    );
}

#[test]
fn unknown_fields_are_all_reported_with_hints() {
    let all = findings(
        "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n    wieght: 5\n  timout: 5s\n",
    );
    assert!(
        all.iter()
            .any(|(f, m, _)| f == "spec.http[0].route[0].wieght" && m.contains("\"weight\"")),
        "{all:#?}"
    );
    assert!(
        all.iter()
            .any(|(f, m, _)| f == "spec.http[0].timout" && m.contains("\"timeout\"")),
        "{all:#?}"
    );
}

#[test]
fn several_errors_are_all_reported() {
    let all = findings(
        "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n    weight: -1\n  timeout: 5x\n  retries: {attempts: -1}\n",
    );
    assert!(all.len() >= 3, "{all:#?}");
}
