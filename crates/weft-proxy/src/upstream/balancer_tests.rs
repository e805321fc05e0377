//! Balancer distributions on synthetic views (no sockets). Random policies are checked against
//! their expected share with a tolerance of six standard deviations of the binomial count
//! (a false failure about once in 10^9 runs).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};

use weft_api::mesh::{
    Cluster, ClusterKey, ConnectionPool, ConsistentHashKey, Endpoint, EndpointAddress, LbPolicy,
};

use super::*;
use crate::upstream::view::{HostRegistry, View};

fn cluster(weights: &[u32], lb: LbPolicy) -> Cluster {
    let endpoints = weights
        .iter()
        .enumerate()
        .map(|(i, w)| Endpoint {
            address: EndpointAddress::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1))),
            ports: [(80, 80)].into(),
            labels: BTreeMap::new(),
            weight: *w,
            identity: None,
        })
        .collect();
    Cluster {
        key: ClusterKey {
            host: "svc".into(),
            subset: None,
            port: Some(80),
        },
        endpoints,
        lb,
        pool: ConnectionPool::default(),
        outlier: None,
        undefined_subset: false,
        version: None,
        tls: None,
        subject_alt_names: Vec::new(),
    }
}

fn view(weights: &[u32], lb: &LbPolicy) -> View {
    View::build(
        &cluster(weights, lb.clone()),
        Some(80),
        &HostRegistry::default(),
    )
}

/// Picks `n` times and counts picks per target.
fn counts(lb: &LbPolicy, view: &View, n: usize, usable: Option<&[bool]>) -> Vec<usize> {
    let rr = AtomicUsize::new(0);
    let mut counts = vec![0; view.targets.len()];
    for _ in 0..n {
        let idx = choose(lb, view, &rr, usable, None).unwrap();
        counts[idx] += 1;
    }
    counts
}

/// `count` of `n` draws is within six standard deviations of share `p`.
fn assert_share(count: usize, n: usize, p: f64) {
    let n = n as f64;
    let sigma = (n * p * (1.0 - p)).sqrt();
    let expected = n * p;
    assert!(
        (count as f64 - expected).abs() <= 6.0 * sigma,
        "count {count} of {n}: expected {expected} ± {}",
        6.0 * sigma
    );
}

#[test]
fn round_robin_is_exact() {
    let v = view(&[1, 1, 1], &LbPolicy::RoundRobin);
    let rr = AtomicUsize::new(0);
    let order: Vec<usize> = (0..6)
        .map(|_| choose(&LbPolicy::RoundRobin, &v, &rr, None, None).unwrap())
        .collect();
    assert_eq!(order, [0, 1, 2, 0, 1, 2]);
    assert_eq!(
        counts(&LbPolicy::Passthrough, &v, 300, None),
        [100, 100, 100]
    );
}

#[test]
fn weighted_round_robin_is_exact_and_interleaved() {
    let v = view(&[1, 2, 3], &LbPolicy::RoundRobin);
    assert_eq!(v.schedule, [2, 1, 2, 0, 1, 2]);
    assert_eq!(
        counts(&LbPolicy::RoundRobin, &v, 600, None),
        [100, 200, 300]
    );
    // Common factors do not lengthen the order.
    assert_eq!(view(&[10, 20], &LbPolicy::RoundRobin).schedule.len(), 3);
}

#[test]
fn huge_weights_are_scaled_into_a_bounded_order() {
    let order = weighted_schedule(&[1, 100_000, 7]);
    assert!(order.len() <= 4098, "{}", order.len());
    for idx in 0..3 {
        assert!(order.contains(&idx));
    }
}

#[test]
fn random_is_uniform_or_weighted() {
    let n = 40_000;
    let v = view(&[1, 1, 1, 1], &LbPolicy::Random);
    for c in counts(&LbPolicy::Random, &v, n, None) {
        assert_share(c, n, 0.25);
    }
    let v = view(&[1, 3], &LbPolicy::Random);
    let c = counts(&LbPolicy::Random, &v, n, None);
    assert_share(c[0], n, 0.25);
    assert_share(c[1], n, 0.75);
}

#[test]
fn least_request_prefers_idle_endpoints_by_two_choices() {
    let n = 45_000;
    let v = view(&[1, 1, 1], &LbPolicy::LeastRequest);
    v.targets[2].host.active.store(10, Ordering::Release);
    let c = counts(&LbPolicy::LeastRequest, &v, n, None);
    // The busy endpoint wins only when both draws are it: 1/9.
    assert_share(c[2], n, 1.0 / 9.0);
    assert_share(c[0], n, 4.0 / 9.0);
    assert_share(c[1], n, 4.0 / 9.0);
}

#[test]
fn least_request_idle_shares_follow_weights() {
    let n = 40_000;
    let v = view(&[1, 3], &LbPolicy::LeastRequest);
    let c = counts(&LbPolicy::LeastRequest, &v, n, None);
    assert_share(c[0], n, 0.25);
    assert_share(c[1], n, 0.75);
    // Loaded per unit of weight: 3 active on weight 1 versus 3 on weight 3.
    v.targets[0].host.active.store(3, Ordering::Release);
    v.targets[1].host.active.store(3, Ordering::Release);
    let c = counts(&LbPolicy::LeastRequest, &v, n, None);
    // Endpoint 0 wins only when both draws are it: (1/4)^2.
    assert_share(c[0], n, 1.0 / 16.0);
}

#[test]
fn consistent_hash_is_sticky_and_random_without_a_key() {
    let lb = LbPolicy::ConsistentHash(ConsistentHashKey::SourceIp);
    let v = view(&[1, 1, 1, 1], &lb);
    let rr = AtomicUsize::new(0);
    for key in [1u64, 42, 0xdead_beef, u64::MAX] {
        let first = choose(&lb, &v, &rr, None, Some(key)).unwrap();
        for _ in 0..20 {
            assert_eq!(choose(&lb, &v, &rr, None, Some(key)), Some(first));
        }
    }
    let seen: std::collections::BTreeSet<usize> = (0..200)
        .filter_map(|_| choose(&lb, &v, &rr, None, None))
        .collect();
    assert_eq!(seen.len(), 4);
}

#[test]
fn masked_targets_are_never_picked() {
    let policies = [
        LbPolicy::RoundRobin,
        LbPolicy::Random,
        LbPolicy::LeastRequest,
        LbPolicy::ConsistentHash(ConsistentHashKey::SourceIp),
    ];
    let mask = [true, false, true];
    for lb in &policies {
        for weights in [[1, 1, 1], [1, 5, 2]] {
            let v = view(&weights, lb);
            let c = counts(lb, &v, 600, Some(&mask));
            assert_eq!(c[1], 0, "{lb:?} {weights:?}");
            let rr = AtomicUsize::new(0);
            assert_eq!(
                choose(lb, &v, &rr, Some(&[false, false, false]), Some(3)),
                None
            );
        }
    }
    // Round robin over the usable targets stays exact by weight.
    let v = view(&[1, 5, 2], &LbPolicy::RoundRobin);
    assert_eq!(
        counts(&LbPolicy::RoundRobin, &v, 300, Some(&mask)),
        [100, 0, 200]
    );
}

#[test]
fn no_targets_no_pick() {
    let v = view(&[], &LbPolicy::RoundRobin);
    let rr = AtomicUsize::new(0);
    assert_eq!(choose(&LbPolicy::RoundRobin, &v, &rr, None, None), None);
}
