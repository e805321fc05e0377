//! Load-balancer settings of a DestinationRule: the simple policy, consistent hashing (ring hash,
//! Maglev), warm-up and locality-aware distribution and failover (`validateLoadBalancer`,
//! `ValidateLocalityLbSetting`).

use std::collections::{BTreeMap, BTreeSet};

use crate::diagnostic::{FieldPath, Findings};
use crate::model::{
    ConsistentHashLb, LoadBalancerSettings, LocalityLbSetting, Maglev, SimpleLb,
    WarmupConfiguration,
};
use crate::validate::common::check_duration;

/// Maglev table sizes must stay below this prime (Envoy's limit).
const MAGLEV_MAX_TABLE_SIZE: i64 = 5_000_011;

/// Topology labels that `failoverPriority` may not use together with `failover`.
const TOPOLOGY_LABELS: [&str; 3] = [
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.istio.io/subzone",
];

/// `validateLoadBalancer`. `has_outlier` says whether the same policy sets outlier detection,
/// which locality failover needs.
pub(super) fn check(
    out: &mut Findings,
    path: &FieldPath,
    lb: &LoadBalancerSettings,
    has_outlier: bool,
) {
    // `simple` and `consistentHash` are a proto oneof (and a CRD `oneOf`): Kubernetes rejects both.
    if lb.simple.is_some() && lb.consistent_hash.is_some() {
        out.error(path, "only one of simple or consistentHash can be set");
    }
    // weft-only warning: Istio accepts the deprecated alias silently.
    if lb.simple == Some(SimpleLb::LeastConn) {
        out.warn(
            path.field("simple"),
            "LEAST_CONN is deprecated, use LEAST_REQUEST instead",
        );
    }
    if let Some(ch) = &lb.consistent_hash {
        check_consistent_hash(out, &path.field("consistentHash"), ch);
    }
    if let Some(locality) = &lb.locality_lb_setting {
        check_locality(out, &path.field("localityLbSetting"), locality, has_outlier);
    }
    if let Some(warmup) = &lb.warmup {
        check_warmup(out, &path.field("warmup"), warmup);
    }
    // Newer Istio no longer range-checks the older `warmupDurationSecs`; it must still parse.
    if let Some(Err(e)) = lb.warmup_duration_secs.as_ref().map(|d| d.parse()) {
        out.error(path.field("warmupDurationSecs"), e.to_string());
    }
}

fn check_consistent_hash(out: &mut Findings, path: &FieldPath, ch: &ConsistentHashLb) {
    // The hash key and the hash algorithm are proto oneofs (and CRD `oneOf`s).
    let keys = [
        ch.http_header_name.is_some(),
        ch.http_cookie.is_some(),
        ch.use_source_ip.is_some(),
        ch.http_query_parameter_name.is_some(),
    ];
    if keys.iter().filter(|k| **k).count() > 1 {
        out.error(path, "only one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName can be set");
    }
    let algorithm = ch.ring_hash.is_some() || ch.maglev.is_some();
    if ch.ring_hash.is_some() && ch.maglev.is_some() {
        out.error(path, "only one of ringHash or maglev can be set");
    }
    if let Some(cookie) = &ch.http_cookie {
        let p = path.field("httpCookie");
        if cookie.name.is_empty() {
            out.error(p.field("name"), "name required for HttpCookie");
        }
        if let Some(Err(e)) = cookie.ttl.as_ref().map(|d| d.parse()) {
            out.error(p.field("ttl"), e.to_string());
        }
    }
    if ch.minimum_ring_size.unwrap_or(0) != 0 {
        let p = path.field("minimumRingSize");
        out.warn(
            &p,
            "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash configuration instead",
        );
        if algorithm {
            out.error(
                &p,
                "only one of MinimumRingSize or Maglev/Ringhash can be specified",
            );
        }
    }
    if let Some(maglev) = &ch.maglev {
        check_maglev(out, &path.field("maglev").field("tableSize"), maglev);
    }
}

fn check_maglev(out: &mut Findings, path: &FieldPath, maglev: &Maglev) {
    let size = maglev.table_size.unwrap_or(0);
    // Istio also reports "must be a prime number" for 0 (Envoy's isPrime(0) is false); the
    // "must be set" error says all there is to say, so only that one is reported.
    if size == 0 {
        out.error(path, "tableSize must be set for maglev");
        return;
    }
    if size >= MAGLEV_MAX_TABLE_SIZE {
        out.error(path, "tableSize must be less than 5000011 for maglev");
    }
    if !u64::try_from(size).is_ok_and(is_prime) {
        out.error(path, "tableSize must be a prime number for maglev");
    }
}

/// Envoy's `isPrime`, which Istio copies: 1, 2 and 3 count as prime.
fn is_prime(x: u64) -> bool {
    if x != 0 && x < 4 {
        return true;
    }
    if x.is_multiple_of(2) {
        return false;
    }
    let mut factor = 3u64;
    while factor.saturating_mul(factor) <= x {
        if x.is_multiple_of(factor) {
            return false;
        }
        factor += 2;
    }
    true
}

fn check_warmup(out: &mut Findings, path: &FieldPath, warmup: &WarmupConfiguration) {
    match &warmup.duration {
        None => out.error(path.field("duration"), "duration is required"),
        Some(d) => {
            check_duration(out, &path.field("duration"), d);
        }
    }
    if warmup.minimum_percent.unwrap_or(0.0) > 100.0 {
        out.error(
            path.field("minimumPercent"),
            "minimumPercent value should be less than or equal to 100",
        );
    }
    if warmup.aggression.is_some_and(|a| a < 1.0) {
        out.error(
            path.field("aggression"),
            "aggression should be greater than or equal to 1",
        );
    }
}

/// `ValidateLocalityLbSetting`. Like Istio, several checks stop at their first error.
fn check_locality(out: &mut Findings, path: &FieldPath, lb: &LocalityLbSetting, has_outlier: bool) {
    if !lb.distribute.is_empty() && !lb.failover.is_empty() {
        out.error(
            path,
            "can not simultaneously specify 'distribute' and 'failover'",
        );
        return;
    }
    if !lb.failover.is_empty() {
        let topology = lb
            .failover_priority
            .iter()
            .enumerate()
            .find(|(_, l)| TOPOLOGY_LABELS.contains(&l.as_str()));
        if let Some((j, label)) = topology {
            out.error(
                path.field("failoverPriority").index(j),
                format!("can not simultaneously set 'failover' and topology label '{label}' in 'failover_priority'"),
            );
            return;
        }
    }
    if !check_distribute(out, &path.field("distribute"), lb) {
        return;
    }
    if (!lb.failover.is_empty() || !lb.failover_priority.is_empty()) && !has_outlier {
        out.warn(
            path,
            "outlier detection policy must be provided for failover",
        );
    }
    for (j, f) in lb.failover.iter().enumerate() {
        let p = path.field("failover").index(j);
        if f.from == f.to {
            out.error(
                &p,
                "locality lb failover settings must specify different regions",
            );
        }
        if f.from.contains('/') || f.to.contains('/') {
            out.error(&p, "locality lb failover only specify region");
        }
        if f.from.contains('*') || f.to.contains('*') {
            out.error(
                &p,
                "locality lb failover region should not contain '*' wildcard",
            );
        }
    }
}

/// Weights per `distribute` entry (1..=100, summing to 100) and non-overlapping localities.
/// Returns `false` where Istio stops validating the locality setting.
fn check_distribute(out: &mut Findings, path: &FieldPath, lb: &LocalityLbSetting) -> bool {
    for (i, d) in lb.distribute.iter().enumerate() {
        let to = path.index(i).field("to");
        let mut total: i64 = 0;
        for (locality, weight) in &d.to {
            if *weight <= 0 || *weight > 100 {
                out.error(
                    to.key(locality),
                    "locality weight must be in range [1, 100]",
                );
                return false;
            }
            total += weight;
        }
        if total != 100 {
            out.error(&to, format!("total locality weight {total} != 100"));
            return false;
        }
        if let Err(e) = check_localities(d.to.keys().map(String::as_str)) {
            out.error(&to, e);
        }
    }
    if let Err(e) = check_localities(lb.distribute.iter().map(|d| d.from.as_str())) {
        out.error(path, e);
    }
    true
}

/// `validateLocalities`: at most one trailing `*`, no empty segment, no overlap with an
/// earlier entry. Returns the first problem.
fn check_localities<'a>(localities: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
    let mut seen = LocalityTree::new();
    for locality in localities {
        let stars = locality.matches('*').count();
        if stars > 1 || (stars == 1 && !locality.ends_with('*')) {
            return Err(format!(
                "locality {locality} wildcard '*' number can not exceed 1 and must be in the end"
            ));
        }
        let items: Vec<&str> = locality.splitn(3, '/').collect();
        // Once `*` is recorded everything overlaps, even a malformed locality.
        if !seen.contains_key("*") && items.iter().any(|s| s.is_empty()) {
            return Err(format!(
                "locality {locality} must not contain empty region/zone/subzone info"
            ));
        }
        if !record_locality(&mut seen, &items) {
            return Err(format!(
                "locality {locality} overlap with previous specified ones"
            ));
        }
    }
    Ok(())
}

/// region -> zone -> subzones; `*` marks "everything below".
type LocalityTree<'a> = BTreeMap<&'a str, BTreeMap<&'a str, BTreeSet<&'a str>>>;

/// Adds one `region[/zone[/subzone]]` to `seen`; `false` if it overlaps an earlier entry.
fn record_locality<'a>(seen: &mut LocalityTree<'a>, items: &[&'a str]) -> bool {
    if seen.contains_key("*") {
        return false;
    }
    match *items {
        [region] => {
            if seen.contains_key(region) {
                return false;
            }
            seen.insert(region, BTreeMap::from([("*", BTreeSet::from(["*"]))]));
        }
        [region, zone] => {
            let zones = seen.entry(region).or_default();
            if zones.contains_key("*") || zones.contains_key(zone) {
                return false;
            }
            zones.insert(zone, BTreeSet::from(["*"]));
        }
        [region, zone, subzone] => {
            let zones = seen.entry(region).or_default();
            if zones.contains_key("*") {
                return false;
            }
            let subzones = zones.entry(zone).or_default();
            if subzones.contains("*") || subzones.contains(subzone) {
                return false;
            }
            subzones.insert(subzone);
        }
        _ => {}
    }
    true
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::diagnostic::Severity;
    use crate::validate::test_support::has;

    fn run(lb: serde_json::Value, has_outlier: bool) -> Findings {
        let lb: LoadBalancerSettings = serde_json::from_value(lb).unwrap();
        let mut out = Findings::default();
        check(&mut out, &FieldPath::new("lb"), &lb, has_outlier);
        out
    }

    #[test]
    fn simple_policies_and_deprecated_least_conn() {
        for ok in [
            "ROUND_ROBIN",
            "RANDOM",
            "PASSTHROUGH",
            "LEAST_REQUEST",
            "UNSPECIFIED",
        ] {
            assert!(run(json!({"simple": ok}), false).is_empty(), "{ok}");
        }
        let out = run(json!({"simple": "LEAST_CONN"}), false);
        assert!(!out.has_errors());
        has(
            &out,
            Severity::Warning,
            "lb.simple",
            "LEAST_CONN is deprecated, use LEAST_REQUEST",
        );
        let out = run(
            json!({"simple": "RANDOM", "consistentHash": {"useSourceIp": true}}),
            false,
        );
        has(
            &out,
            Severity::Error,
            "lb",
            "only one of simple or consistentHash",
        );
    }

    #[test]
    fn consistent_hash_keys_and_cookie() {
        assert!(
            run(
                json!({"consistentHash": {"httpHeaderName": "x-user"}}),
                false
            )
            .is_empty()
        );
        let out = run(
            json!({"consistentHash": {"httpHeaderName": "x", "useSourceIp": true}}),
            false,
        );
        has(
            &out,
            Severity::Error,
            "lb.consistentHash",
            "only one of httpHeaderName, httpCookie",
        );
        let out = run(
            json!({"consistentHash": {"httpCookie": {"ttl": "1x"}}}),
            false,
        );
        has(
            &out,
            Severity::Error,
            "lb.consistentHash.httpCookie.name",
            "name required for HttpCookie",
        );
        has(
            &out,
            Severity::Error,
            "lb.consistentHash.httpCookie.ttl",
            "invalid duration",
        );
    }

    #[test]
    fn deprecated_minimum_ring_size() {
        let out = run(
            json!({"consistentHash": {"useSourceIp": true, "minimumRingSize": 1024}}),
            false,
        );
        assert!(!out.has_errors());
        has(
            &out,
            Severity::Warning,
            "lb.consistentHash.minimumRingSize",
            "MinimumRingSize is deprecated",
        );
        let out = run(
            json!({"consistentHash": {"minimumRingSize": 1024, "ringHash": {"minimumRingSize": 2}}}),
            false,
        );
        has(
            &out,
            Severity::Error,
            "lb.consistentHash.minimumRingSize",
            "only one of MinimumRingSize or Maglev/Ringhash",
        );
        let out = run(
            json!({"consistentHash": {"ringHash": {}, "maglev": {"tableSize": 65537}}}),
            false,
        );
        has(
            &out,
            Severity::Error,
            "lb.consistentHash",
            "only one of ringHash or maglev",
        );
    }

    #[test]
    fn maglev_table_size() {
        assert!(
            run(
                json!({"consistentHash": {"maglev": {"tableSize": 65537}}}),
                false
            )
            .is_empty()
        );
        let p = "lb.consistentHash.maglev.tableSize";
        let out = run(json!({"consistentHash": {"maglev": {}}}), false);
        has(&out, Severity::Error, p, "tableSize must be set for maglev");
        assert_eq!(out.iter().count(), 1);
        let out = run(
            json!({"consistentHash": {"maglev": {"tableSize": 65536}}}),
            false,
        );
        has(&out, Severity::Error, p, "tableSize must be a prime number");
        let out = run(
            json!({"consistentHash": {"maglev": {"tableSize": 5000011}}}),
            false,
        );
        has(
            &out,
            Severity::Error,
            p,
            "tableSize must be less than 5000011",
        );
        assert!(is_prime(1) && is_prime(2) && is_prime(3) && is_prime(5) && is_prime(4_999_999));
        assert!(!is_prime(0) && !is_prime(9) && !is_prime(25));
    }

    #[test]
    fn warmup() {
        let out = run(
            json!({"warmup": {"minimumPercent": 101, "aggression": 0.5}}),
            false,
        );
        has(
            &out,
            Severity::Error,
            "lb.warmup.duration",
            "duration is required",
        );
        has(
            &out,
            Severity::Error,
            "lb.warmup.minimumPercent",
            "less than or equal to 100",
        );
        has(
            &out,
            Severity::Error,
            "lb.warmup.aggression",
            "greater than or equal to 1",
        );
        let out = run(json!({"warmup": {"duration": "0s"}}), false);
        has(
            &out,
            Severity::Error,
            "lb.warmup.duration",
            "duration must be greater than 1ms",
        );
        let out = run(json!({"warmupDurationSecs": "ten"}), false);
        has(
            &out,
            Severity::Error,
            "lb.warmupDurationSecs",
            "invalid duration",
        );
        assert!(run(json!({"warmupDurationSecs": "10s"}), false).is_empty());
    }

    #[test]
    fn locality_distribute() {
        let out = run(
            json!({"localityLbSetting": {"distribute": [{"from": "a/*", "to": {"b/*": 50}}]}}),
            false,
        );
        has(
            &out,
            Severity::Error,
            "lb.localityLbSetting.distribute[0].to",
            "total locality weight 50 != 100",
        );
        let out = run(
            json!({"localityLbSetting": {"distribute": [{"from": "a/*", "to": {"b/*": 0, "c": 100}}]}}),
            false,
        );
        has(
            &out,
            Severity::Error,
            "lb.localityLbSetting.distribute[0].to.b/*",
            "locality weight must be in range [1, 100]",
        );
        let out = run(
            json!({"localityLbSetting": {"distribute": [{"from": "a/*", "to": {"b": 50, "b/z": 50}}]}}),
            false,
        );
        has(
            &out,
            Severity::Error,
            "lb.localityLbSetting.distribute[0].to",
            "locality b/z overlap with previous specified ones",
        );
        let out = run(
            json!({"localityLbSetting": {"distribute": [
                {"from": "a/*/x", "to": {"b": 100}}
            ]}}),
            false,
        );
        has(
            &out,
            Severity::Error,
            "lb.localityLbSetting.distribute",
            "wildcard '*' number can not exceed 1 and must be in the end",
        );
        let out = run(
            json!({"localityLbSetting": {"distribute": [{"from": "a//c", "to": {"b": 100}}]}}),
            false,
        );
        has(
            &out,
            Severity::Error,
            "lb.localityLbSetting.distribute",
            "must not contain empty region/zone/subzone info",
        );
    }

    #[test]
    fn localities_overlap_rules() {
        assert!(check_localities(["a/b/c", "a/b/d", "a/e", "f"]).is_ok());
        assert!(check_localities(["*", "a"]).is_err());
        assert!(check_localities(["a", "a/b"]).is_err());
        assert!(check_localities(["a/b", "a/b/c"]).is_err());
        assert!(check_localities(["a/b/c", "a/b/c"]).is_err());
        assert!(check_localities(["a/*", "a/b"]).is_err());
    }

    #[test]
    fn locality_failover() {
        let ok = json!({"localityLbSetting": {"failover": [{"from": "us-east", "to": "eu-west"}]}});
        assert!(run(ok.clone(), true).is_empty());
        let out = run(ok, false);
        assert!(!out.has_errors());
        has(
            &out,
            Severity::Warning,
            "lb.localityLbSetting",
            "outlier detection policy must be provided for failover",
        );
        let out = run(
            json!({"localityLbSetting": {"failover": [{"from": "a/z", "to": "a/z"}, {"from": "*", "to": "b"}]}}),
            true,
        );
        has(
            &out,
            Severity::Error,
            "lb.localityLbSetting.failover[0]",
            "must specify different regions",
        );
        has(
            &out,
            Severity::Error,
            "lb.localityLbSetting.failover[0]",
            "locality lb failover only specify region",
        );
        has(
            &out,
            Severity::Error,
            "lb.localityLbSetting.failover[1]",
            "should not contain '*' wildcard",
        );
        let out = run(
            json!({"localityLbSetting": {
            "failover": [{"from": "a", "to": "b"}], "distribute": [{"from": "a", "to": {"b": 100}}]}}),
            true,
        );
        has(
            &out,
            Severity::Error,
            "lb.localityLbSetting",
            "can not simultaneously specify 'distribute' and 'failover'",
        );
        let out = run(
            json!({"localityLbSetting": {
            "failover": [{"from": "a", "to": "b"}], "failoverPriority": ["x", "topology.kubernetes.io/zone"]}}),
            true,
        );
        has(
            &out,
            Severity::Error,
            "lb.localityLbSetting.failoverPriority[1]",
            "topology label 'topology.kubernetes.io/zone'",
        );
        let out = run(
            json!({"localityLbSetting": {"failoverPriority": ["topology.istio.io/network"]}}),
            false,
        );
        has(
            &out,
            Severity::Warning,
            "lb.localityLbSetting",
            "outlier detection policy must be provided",
        );
    }
}
