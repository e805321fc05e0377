//! Load balancing: which target of a [`View`] serves a request, by the cluster's `LbPolicy`.
//!
//! - `RoundRobin` (and `Passthrough`, whose endpoints are the original destinations): strict
//!   rotation; with unequal weights a precomputed earliest-deadline-first order, so every
//!   `Σweights` requests each endpoint gets exactly its weight.
//! - `Random`: uniform, or proportional to weight.
//! - `LeastRequest` (Istio's default): Envoy's power of two choices — two random draws, the one
//!   with fewer active requests wins (ties to the first). With unequal weights Envoy runs an
//!   EDF scheduler over `weight / (active + 1)`; weft draws the two candidates by weight and
//!   compares `active / weight`, which gives weighted shares when idle and favours the less
//!   loaded endpoint under load (an approximation of Envoy's scheduler).
//! - `ConsistentHash`: the ring in [`super::hash`]; without a hash (the request lacked the key)
//!   a random point, as Envoy does.
//!
//! `usable` masks out ejected endpoints and those a retry excludes; the caller guarantees it
//! leaves at least one usable endpoint, and passes `None` when every endpoint is usable (the
//! fast path: no allocation, no scan).

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicUsize, Ordering};

use weft_api::mesh::LbPolicy;

use super::view::View;

/// The longest weighted round-robin order; larger weight sums are scaled down to it.
const MAX_SCHEDULE: u64 = 4096;

/// Picks the target for one request, or `None` when no target is usable.
pub(super) fn choose(
    lb: &LbPolicy,
    view: &View,
    rr: &AtomicUsize,
    usable: Option<&[bool]>,
    hash: Option<u64>,
) -> Option<usize> {
    if view.targets.is_empty() {
        return None;
    }
    match lb {
        LbPolicy::RoundRobin | LbPolicy::Passthrough => round_robin(view, rr, usable),
        LbPolicy::Random => random(view, usable),
        LbPolicy::LeastRequest => least_request(view, usable),
        LbPolicy::ConsistentHash(_) => consistent_hash(view, usable, hash),
    }
}

fn round_robin(view: &View, rr: &AtomicUsize, usable: Option<&[bool]>) -> Option<usize> {
    let tick = rr.fetch_add(1, Ordering::Relaxed);
    match usable {
        None if view.schedule.is_empty() => Some(tick % view.targets.len()),
        None => view.schedule.get(tick % view.schedule.len()).copied(),
        Some(mask) => nth_by_weight(view, mask, tick as u64),
    }
}

fn random(view: &View, usable: Option<&[bool]>) -> Option<usize> {
    match usable {
        None if view.equal_weights => Some(fastrand::usize(..view.targets.len())),
        None => {
            let total = view.cumulative.last().copied().unwrap_or(0);
            if total == 0 {
                return None;
            }
            let r = fastrand::u64(..total);
            Some(view.cumulative.partition_point(|c| *c <= r))
        }
        Some(mask) => nth_by_weight(view, mask, fastrand::u64(..)),
    }
}

fn least_request(view: &View, usable: Option<&[bool]>) -> Option<usize> {
    let first = random(view, usable)?;
    let second = random(view, usable)?;
    let (a, b) = (view.targets.get(first)?, view.targets.get(second)?);
    let (load_a, load_b) = (a.host.active(), b.host.active());
    // Fewer active requests per unit of weight wins; a tie keeps the first draw, so idle
    // endpoints get their weighted-random share.
    let second_wins =
        u128::from(load_b) * u128::from(a.weight) < u128::from(load_a) * u128::from(b.weight);
    Some(if second_wins { second } else { first })
}

fn consistent_hash(view: &View, usable: Option<&[bool]>, hash: Option<u64>) -> Option<usize> {
    let Some(ring) = &view.ring else {
        return random(view, usable);
    };
    let hash = hash.unwrap_or_else(|| fastrand::u64(..));
    ring.lookup(hash, |idx| is_usable(usable, idx))
}

fn is_usable(usable: Option<&[bool]>, idx: usize) -> bool {
    usable.is_none_or(|mask| mask.get(idx).copied().unwrap_or(false))
}

/// The usable target that position `r` (mod the usable weight) falls on.
fn nth_by_weight(view: &View, mask: &[bool], r: u64) -> Option<usize> {
    let usable = || {
        view.targets
            .iter()
            .enumerate()
            .filter(|(idx, _)| mask.get(*idx).copied().unwrap_or(false))
    };
    let total: u64 = usable().map(|(_, t)| u64::from(t.weight)).sum();
    if total == 0 {
        return None;
    }
    let mut r = r % total;
    for (idx, target) in usable() {
        let w = u64::from(target.weight);
        if r < w {
            return Some(idx);
        }
        r -= w;
    }
    None
}

/// One endpoint's next turn in the weighted round-robin order: its `turn`-th pick is due at
/// `turn / weight`.
#[derive(Debug, PartialEq, Eq)]
struct Turn {
    turn: u64,
    weight: u64,
    idx: usize,
}

impl Ord for Turn {
    /// Reversed (the heap pops the earliest deadline), ties to the lower index.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        let mine = u128::from(self.turn) * u128::from(other.weight);
        let theirs = u128::from(other.turn) * u128::from(self.weight);
        theirs.cmp(&mine).then_with(|| other.idx.cmp(&self.idx))
    }
}

impl PartialOrd for Turn {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The weighted round-robin order for `weights` (each at least 1): earliest deadline first,
/// over the weights divided by their gcd and, past [`MAX_SCHEDULE`], scaled down.
pub(super) fn weighted_schedule(weights: &[u32]) -> Vec<usize> {
    let weights: Vec<u64> = weights.iter().map(|w| u64::from(*w).max(1)).collect();
    let g = weights.iter().copied().fold(0, gcd).max(1);
    let mut weights: Vec<u64> = weights.iter().map(|w| w / g).collect();
    let total: u64 = weights.iter().sum();
    if total > MAX_SCHEDULE {
        let scale = MAX_SCHEDULE as f64 / total as f64;
        for w in &mut weights {
            *w = ((*w as f64 * scale).round() as u64).max(1);
        }
    }
    let length: u64 = weights.iter().sum();
    let mut heap: BinaryHeap<Turn> = weights
        .iter()
        .enumerate()
        .map(|(idx, weight)| Turn {
            turn: 1,
            weight: *weight,
            idx,
        })
        .collect();
    let mut order = Vec::new();
    for _ in 0..length {
        let Some(mut next) = heap.pop() else { break };
        order.push(next.idx);
        next.turn += 1;
        heap.push(next);
    }
    order
}

#[cfg(test)]
#[path = "balancer_tests.rs"]
mod tests;
