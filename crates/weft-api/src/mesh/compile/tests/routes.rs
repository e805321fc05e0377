//! Routes: order and names, matchers, weights, actions, retries, faults, mirrors, CORS,
//! delegation.

use std::time::Duration;

use super::*;
use crate::mesh::{Abort, RedirectPort, RetryOn, RetryPolicy, StringMatcher};

fn reviews_vs(http: &str) -> MeshConfig {
    mesh(&format!(
        "{SERVICES}{REVIEWS_DR}{}",
        vs("reviews", &format!("  hosts: [reviews]\n  http:\n{http}"))
    ))
}

#[test]
fn routes_keep_their_order_and_names() {
    let m = reviews_vs(
        "  - name: jason
    match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - match: [{uri: {prefix: /v3}}]
    route: [{destination: {host: reviews, subset: v3}}]
  - route: [{destination: {host: reviews, subset: v1}}]
",
    );
    let names: Vec<&str> = routes(&m, "reviews")
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, ["jason", "reviews.1", "reviews.2"]);
}

#[test]
fn matchers_are_compiled() {
    let m = reviews_vs(
        "  - match:
    - name: first
      uri: {regex: '/api/v[0-9]+'}
      method: {exact: GET}
      headers:
        X-User: {prefix: ja}
        x-present: {}
        uri: {exact: ignored}
      withoutHeaders: {x-debug: {}}
      queryParams: {page: {regex: '\\d+'}}
      ignoreUriCase: true
      port: 9080
    - authority: {exact: reviews:9080}
      scheme: {exact: http}
    route: [{destination: {host: reviews}}]
",
    );
    let r = &routes(&m, "reviews")[0];
    let [first, second] = r.matches.as_slice() else {
        panic!("{:?}", r.matches)
    };
    assert_eq!(first.name.as_deref(), Some("first"));
    let Some(StringMatcher::Regex(re)) = &first.uri else {
        panic!("{:?}", first.uri)
    };
    assert!(re.is_match("/api/v12") && !re.is_match("/x/api/v1") && !re.is_match("/api/v1/x"));
    assert!(matches!(&first.method, Some(StringMatcher::Exact(m)) if m == "GET"));
    let header = |name: &str| {
        first
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| m.clone())
    };
    assert_eq!(first.headers.len(), 2, "the reserved `uri` key is ignored");
    assert!(matches!(header("x-present"), Some(StringMatcher::Present)));
    assert!(matches!(header("x-user"), Some(StringMatcher::Prefix(p)) if p == "ja"));
    assert!(
        matches!(first.without_headers.as_slice(), [(n, StringMatcher::Present)] if n == "x-debug")
    );
    let [(param, StringMatcher::Regex(page))] = first.query_params.as_slice() else {
        panic!()
    };
    assert_eq!(param, "page");
    assert!(page.is_match("12") && !page.is_match("a12"));
    assert!(first.ignore_uri_case);
    assert_eq!(first.port, Some(9080));
    assert!(matches!(&second.authority, Some(StringMatcher::Exact(a)) if a == "reviews:9080"));
    assert!(matches!(&second.scheme, Some(StringMatcher::Exact(s)) if s == "http"));
    assert!(second.uri.is_none() && !second.ignore_uri_case && second.port.is_none());
}

#[test]
fn blocks_for_other_namespaces_or_gateways_do_not_apply() {
    let m = reviews_vs(
        "  - name: from-prod
    match: [{sourceNamespace: prod}]
    route: [{destination: {host: reviews, subset: v2}}]
  - name: mixed
    match: [{sourceNamespace: prod, uri: {exact: /a}}, {sourceNamespace: default, uri: {exact: /b}}]
    route: [{destination: {host: reviews, subset: v3}}]
  - name: edge
    match: [{gateways: [ingress]}]
    route: [{destination: {host: reviews, subset: v3}}]
  - name: rest
    route: [{destination: {host: reviews, subset: v1}}]
",
    );
    let rs = routes(&m, "reviews");
    let names: Vec<&str> = rs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["mixed", "rest"]);
    assert!(
        matches!(rs[0].matches.as_slice(), [b] if matches!(&b.uri, Some(StringMatcher::Exact(u)) if u == "/b"))
    );
    let prod = mesh_with(
        &format!(
            "{SERVICES}{REVIEWS_DR}{}",
            vs(
                "reviews",
                "  hosts: [reviews]\n  http:\n  - name: from-prod\n    match: [{sourceNamespace: prod}]\n    route: [{destination: {host: reviews}}]\n"
            )
        ),
        &options("prod"),
    );
    assert_eq!(routes(&prod, "reviews.default")[0].name, "from-prod");
}

#[test]
fn weights_are_relative_and_a_single_destination_takes_all() {
    let m = reviews_vs(
        "  - match: [{uri: {prefix: /split}}]
    route:
    - {destination: {host: reviews, subset: v1}, weight: 80}
    - destination: {host: reviews, subset: v2}
      weight: 20
      headers: {request: {set: {X-Version: v2}}}
  - route: [{destination: {host: reviews, subset: v3, port: {number: 9080}}}]
",
    );
    let rs = routes(&m, "reviews");
    let split = destinations(&rs[0]);
    assert_eq!(split.iter().map(|d| d.weight).collect::<Vec<_>>(), [80, 20]);
    assert_eq!(split[0].cluster, key(REVIEWS, Some("v1"), None));
    assert_eq!(
        split[1].headers.request.set,
        [("x-version".to_string(), "v2".to_string())]
    );
    let [single] = destinations(&rs[1]) else {
        panic!()
    };
    assert_eq!(single.weight, 100);
    assert_eq!(single.cluster, key(REVIEWS, Some("v3"), Some(9080)));
}

#[test]
fn unweighted_destination_among_weighted_ones_gets_nothing() {
    let m = reviews_vs(
        "  - route:
    - {destination: {host: reviews, subset: v1}, weight: 100}
    - {destination: {host: reviews, subset: v2}}
",
    );
    let d = destinations(&routes(&m, "reviews")[0]);
    assert_eq!(d.iter().map(|d| d.weight).collect::<Vec<_>>(), [100, 0]);
}

#[test]
fn retries_default_explicit_disabled_and_with_faults() {
    let m = reviews_vs(
        "  - name: default
    match: [{uri: {exact: /default}}]
    route: [{destination: {host: reviews}}]
    timeout: 2s
  - name: explicit
    match: [{uri: {exact: /explicit}}]
    route: [{destination: {host: reviews}}]
    retries: {attempts: 3, perTryTimeout: 500ms, retryOn: '5xx,reset,503', backoff: 100ms}
  - name: no-retry-on
    match: [{uri: {exact: /bare}}]
    route: [{destination: {host: reviews}}]
    retries: {attempts: 4}
  - name: off
    match: [{uri: {exact: /off}}]
    route: [{destination: {host: reviews}}]
    retries: {attempts: 0}
  - name: faulty
    route: [{destination: {host: reviews}}]
    timeout: 1s
    retries: {attempts: 3}
    fault: {abort: {httpStatus: 500, percentage: {value: 10}}}
",
    );
    let default = route(&m, "reviews", "default");
    assert_eq!(default.retry, RetryPolicy::istio_default());
    assert_eq!(default.timeout, Some(Duration::from_secs(2)));
    let explicit = &route(&m, "reviews", "explicit").retry;
    assert_eq!(explicit.attempts, 3);
    assert_eq!(explicit.per_try_timeout, Some(Duration::from_millis(500)));
    assert_eq!(explicit.backoff, Duration::from_millis(100));
    assert!(explicit.retry_on.five_xx && explicit.retry_on.reset);
    assert_eq!(explicit.retry_on.status_codes, [503]);
    assert_eq!(route(&m, "reviews", "explicit").timeout, None);
    let bare = &route(&m, "reviews", "no-retry-on").retry;
    assert_eq!(bare.attempts, 4);
    assert_eq!(
        bare.retry_on,
        RetryOn::parse("connect-failure,refused-stream,unavailable,cancelled")
    );
    assert_eq!(bare.backoff, Duration::from_millis(25));
    assert_eq!(route(&m, "reviews", "off").retry, RetryPolicy::disabled());
    let faulty = route(&m, "reviews", "faulty");
    assert_eq!(faulty.retry, RetryPolicy::disabled());
    assert_eq!(faulty.timeout, Some(Duration::from_secs(1)));
}

#[test]
fn fault_percentages() {
    let m = reviews_vs(
        "  - name: delay
    match: [{uri: {exact: /delay}}]
    route: [{destination: {host: reviews}}]
    fault: {delay: {fixedDelay: 7s, percentage: {value: 12.5}}}
  - name: legacy
    match: [{uri: {exact: /legacy}}]
    route: [{destination: {host: reviews}}]
    fault:
      delay: {fixedDelay: 100ms, percent: 30}
      abort: {httpStatus: 503}
  - name: grpc
    route: [{destination: {host: reviews}}]
    fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}}
",
    );
    let delay = route(&m, "reviews", "delay").fault.as_ref().unwrap();
    assert_eq!(delay.delay, Some((Duration::from_secs(7), 12.5)));
    assert!(delay.abort.is_none());
    let legacy = route(&m, "reviews", "legacy").fault.as_ref().unwrap();
    assert_eq!(legacy.delay, Some((Duration::from_millis(100), 30.0)));
    let Some((Abort::Http(503), share)) = legacy.abort else {
        panic!("{:?}", legacy.abort)
    };
    assert_eq!(share, 0.0);
    let grpc = route(&m, "reviews", "grpc").fault.as_ref().unwrap();
    assert!(matches!(grpc.abort, Some((Abort::Grpc(14), p)) if p == 100.0));
}

#[test]
fn mirrors_default_to_every_request() {
    let m = reviews_vs(
        "  - name: legacy
    match: [{uri: {exact: /legacy}}]
    route: [{destination: {host: reviews, subset: v1}}]
    mirror: {host: reviews, subset: v2}
  - name: share
    match: [{uri: {exact: /share}}]
    route: [{destination: {host: reviews, subset: v1}}]
    mirror: {host: httpbin.org}
    mirrorPercentage: {value: 25}
  - name: many
    route: [{destination: {host: reviews, subset: v1}}]
    mirrors:
    - destination: {host: reviews, subset: v3}
    - destination: {host: ratings.prod.svc.cluster.local}
      percentage: {value: 5}
",
    );
    let legacy = &route(&m, "reviews", "legacy").mirrors;
    assert_eq!(legacy.len(), 1);
    assert_eq!(legacy[0].cluster, key(REVIEWS, Some("v2"), None));
    assert_eq!(legacy[0].percent, 100.0);
    let share = &route(&m, "reviews", "share").mirrors;
    assert_eq!(
        (share[0].cluster.host.as_str(), share[0].percent),
        ("httpbin.org", 25.0)
    );
    let many = &route(&m, "reviews", "many").mirrors;
    assert_eq!(
        many.iter().map(|x| x.percent).collect::<Vec<_>>(),
        [100.0, 5.0]
    );
    // Mirror targets get clusters too.
    assert!(cluster(&m, REVIEWS, Some("v2"), None).endpoints.len() == 1);
    cluster(&m, "httpbin.org", None, None);
    cluster(&m, "ratings.prod.svc.cluster.local", None, None);
}

#[test]
fn redirects_direct_responses_and_rewrites() {
    let m = reviews_vs(
        "  - name: moved
    match: [{uri: {exact: /old}}]
    redirect: {uri: /new}
  - name: found
    match: [{uri: {exact: /found}}]
    redirect: {authority: example.com, redirectCode: 302, derivePort: FROM_REQUEST_PORT}
  - name: fixed
    match: [{uri: {exact: /fixed}}]
    redirect: {scheme: https, port: 8443}
  - name: text
    match: [{uri: {exact: /text}}]
    directResponse: {status: 418, body: {string: teapot}}
  - name: bytes
    match: [{uri: {exact: /bytes}}]
    directResponse: {status: 200, body: {bytes: aGVsbG8=}}
  - name: empty
    match: [{uri: {exact: /empty}}]
    directResponse: {status: 204}
  - name: rewrite
    match: [{uri: {prefix: /svc}}]
    rewrite: {uri: /, authority: internal}
    headers:
      request: {set: {X-A: '1'}, add: {X-B: '2'}, remove: [X-C]}
      response: {remove: [Server]}
    route: [{destination: {host: reviews}}]
  - name: regex
    rewrite: {uriRegexRewrite: {match: '^/service/([^/]+)(/.*)$', rewrite: '\\2/instance/\\1'}}
    route: [{destination: {host: reviews}}]
",
    );
    let redirect = |name: &str| match &route(&m, "reviews", name).action {
        RouteAction::Redirect(r) => r.clone(),
        other => panic!("{other:?}"),
    };
    let moved = redirect("moved");
    assert_eq!((moved.code, moved.uri.as_deref()), (301, Some("/new")));
    assert!(moved.port.is_none());
    let found = redirect("found");
    assert_eq!(
        (found.code, found.authority.as_deref()),
        (302, Some("example.com"))
    );
    assert!(matches!(found.port, Some(RedirectPort::FromRequestPort)));
    let fixed = redirect("fixed");
    assert!(matches!(fixed.port, Some(RedirectPort::Fixed(8443))));
    assert_eq!(fixed.scheme.as_deref(), Some("https"));
    let direct = |name: &str| match &route(&m, "reviews", name).action {
        RouteAction::DirectResponse { status, body } => (*status, body.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(direct("text"), (418, Some(b"teapot".to_vec())));
    assert_eq!(direct("bytes"), (200, Some(b"hello".to_vec())));
    assert_eq!(direct("empty"), (204, None));
    let rw = route(&m, "reviews", "rewrite");
    let RouteAction::Forward {
        rewrite: Some(rewrite),
        ..
    } = &rw.action
    else {
        panic!()
    };
    assert_eq!(
        (rewrite.uri.as_deref(), rewrite.authority.as_deref()),
        (Some("/"), Some("internal"))
    );
    assert_eq!(
        rw.headers.request.set,
        [("x-a".to_string(), "1".to_string())]
    );
    assert_eq!(
        rw.headers.request.add,
        [("x-b".to_string(), "2".to_string())]
    );
    assert_eq!(rw.headers.request.remove, ["x-c"]);
    assert_eq!(rw.headers.response.remove, ["server"]);
    let RouteAction::Forward {
        rewrite: Some(regex),
        ..
    } = &route(&m, "reviews", "regex").action
    else {
        panic!()
    };
    let (re, replacement) = regex.uri_regex.as_ref().unwrap();
    assert_eq!(
        re.replace_all("/service/foo/v1/api", replacement.as_str()),
        "/v1/api/instance/foo"
    );
}

#[test]
fn cors_policy() {
    let m = reviews_vs(
        "  - route: [{destination: {host: reviews}}]
    corsPolicy:
      allowOrigins: [{exact: 'https://a.example'}, {regex: 'https://.*\\.b\\.example'}]
      allowMethods: [GET, POST]
      allowHeaders: [x-token]
      exposeHeaders: [x-trace]
      maxAge: 24h
      allowCredentials: true
      unmatchedPreflights: IGNORE
",
    );
    let cors = routes(&m, "reviews")[0].cors.as_ref().unwrap();
    assert!(cors.allow_origins[0].matches("https://a.example"));
    assert!(cors.allow_origins[1].matches("https://x.b.example"));
    assert!(
        !cors
            .allow_origins
            .iter()
            .any(|o| o.matches("https://evil.example"))
    );
    assert_eq!(cors.allow_methods, ["GET", "POST"]);
    assert_eq!(
        (
            cors.allow_headers.as_slice(),
            cors.expose_headers.as_slice()
        ),
        (&["x-token".to_string()][..], &["x-trace".to_string()][..])
    );
    assert_eq!(cors.max_age, Some(Duration::from_secs(86400)));
    assert!(cors.allow_credentials && cors.ignore_unmatched_preflights);
    let star = reviews_vs(
        "  - route: [{destination: {host: reviews}}]\n    corsPolicy: {allowOrigins: [{exact: '*'}]}\n",
    );
    let cors = routes(&star, "reviews")[0].cors.as_ref().unwrap();
    assert!(cors.allow_origins[0].matches("https://anything.example"));
    assert!(!cors.allow_credentials && !cors.ignore_unmatched_preflights);
}

const DELEGATE: &str = "
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-api, namespace: team}
spec:
  http:
  - name: v2
    match: [{uri: {prefix: /api/v2}}]
    route: [{destination: {host: reviews.default.svc.cluster.local, subset: v2}}]
  - name: outside
    match: [{uri: {prefix: /other}}]
    route: [{destination: {host: reviews.default.svc.cluster.local, subset: v3}}]
  - route: [{destination: {host: reviews.default.svc.cluster.local, subset: v1}}]
    timeout: 9s
";

#[test]
fn delegates_are_spliced_in_place_and_narrowed_by_the_root() {
    let yaml = format!(
        "{SERVICES}{REVIEWS_DR}{DELEGATE}{}",
        vs(
            "reviews",
            "  hosts: [reviews]
  http:
  - name: api
    match: [{uri: {prefix: /api}, headers: {x-team: {exact: a}}}]
    delegate: {name: reviews-api, namespace: team}
    timeout: 3s
  - name: missing
    delegate: {name: nope}
  - name: rest
    route: [{destination: {host: reviews, subset: v1}}]
"
        )
    );
    let m = mesh(&yaml);
    let rs = routes(&m, "reviews");
    let names: Vec<&str> = rs.iter().map(|r| r.name.as_str()).collect();
    // `outside` conflicts with the root's `/api` prefix and is dropped; the unnamed delegate
    // route takes the root route's name.
    assert_eq!(names, ["api-v2", "api", "rest"]);
    let [v2] = rs[0].matches.as_slice() else {
        panic!("{:?}", rs[0].matches)
    };
    assert!(matches!(&v2.uri, Some(StringMatcher::Prefix(p)) if p == "/api/v2"));
    assert!(
        matches!(v2.headers.as_slice(), [(n, StringMatcher::Exact(v))] if n == "x-team" && v == "a")
    );
    assert_eq!(rs[0].timeout, Some(Duration::from_secs(3)));
    assert_eq!(
        destinations(&rs[0])[0].cluster,
        key(REVIEWS, Some("v2"), None)
    );
    let [catch] = rs[1].matches.as_slice() else {
        panic!()
    };
    assert!(matches!(&catch.uri, Some(StringMatcher::Prefix(p)) if p == "/api"));
    assert_eq!(rs[1].timeout, Some(Duration::from_secs(9)));
}
