//! Outlier detection (`outlierDetection`): Envoy's consecutive-error detector, which ejects an
//! endpoint from load balancing after a run of errors and lets it back after an ejection time.
//!
//! As Envoy does it (`source/common/upstream/outlier_detection_impl.cc`):
//! - Every try's outcome is counted per endpoint. A 5xx response, a connect failure and a reset
//!   are errors (Envoy maps local failures to 503, so they are also gateway errors); anything
//!   else is a success and zeroes both counters.
//! - `consecutive5xxErrors` (0 disables) counts all errors; `consecutiveGatewayErrors` (only if
//!   set) counts 502/503/504 and resets on another 5xx. Reaching a threshold tries an ejection
//!   and restarts that counter.
//! - An ejection is allowed when `100 × (ejected + 1) / endpoints ≤ maxEjectionPercent`. Envoy
//!   ejects at least one host regardless only with `always_eject_one_host`, which Istio does not
//!   set, so with the default 10% a cluster needs 10 endpoints before one can be ejected.
//! - The ejection lasts `baseEjectionTime × n`, capped at Envoy's `max_ejection_time` default
//!   (`max(300s, baseEjectionTime)`); `n` goes up by one per ejection and down by one for every
//!   `interval` the endpoint stays healthy. Ending an ejection zeroes the counters.
//! - `minHealthPercent` is Envoy's `healthy_panic_threshold`: while fewer endpoints than that
//!   percent are healthy, ejections are ignored and all endpoints are balanced over (panic
//!   mode). Istio's default 0 turns panic mode off, so a cluster with every endpoint ejected has
//!   no healthy upstream (`UH`).
//!
//! Differences: Envoy returns endpoints at its next `interval` sweep; weft ends an ejection
//! lazily, the first time it looks at the endpoint after the ejection time, so there is no
//! timer task. Success-rate and failure-percentage ejection (which Istio disables) are absent.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use http::StatusCode;
use weft_api::mesh::OutlierPolicy;

use super::view::Target;

/// Envoy's default `max_ejection_time`; the cap is never below the base ejection time.
const MAX_EJECTION_TIME: Duration = Duration::from_secs(300);

/// How one try ended, as outlier detection sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TryOutcome {
    Success,
    Failure { gateway: bool },
}

impl TryOutcome {
    /// A connect failure or a reset: Envoy counts it as a 503.
    pub(super) const LOCAL_FAILURE: TryOutcome = TryOutcome::Failure { gateway: true };

    /// The outcome of a try answered with `status`.
    pub(super) fn of_status(status: StatusCode) -> TryOutcome {
        if status.is_server_error() {
            TryOutcome::Failure {
                gateway: matches!(status.as_u16(), 502..=504),
            }
        } else {
            TryOutcome::Success
        }
    }
}

/// Milliseconds since the [`super::Upstreams`] clock's epoch, plus one (0 means "never").
pub(super) type Millis = u64;

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One endpoint's outlier state, all atomics so recording an outcome takes no lock.
#[derive(Debug, Default)]
pub(super) struct HostOutlier {
    consecutive_5xx: AtomicU32,
    consecutive_gateway: AtomicU32,
    /// When the current ejection ends; 0 when not ejected.
    ejected_until: AtomicU64,
    /// Envoy's ejection time multiplier.
    backoff: AtomicU32,
    /// When the last ejection ended; 0 when never ejected.
    last_uneject: AtomicU64,
}

impl HostOutlier {
    /// Whether the endpoint is ejected at `now`; ends an ejection whose time is over.
    pub(super) fn is_ejected(&self, now: Millis) -> bool {
        let until = self.ejected_until.load(Ordering::Acquire);
        if until == 0 {
            return false;
        }
        if now < until {
            return true;
        }
        let ended =
            self.ejected_until
                .compare_exchange(until, 0, Ordering::AcqRel, Ordering::Acquire);
        if ended.is_ok() {
            self.last_uneject.store(until, Ordering::Release);
            self.consecutive_5xx.store(0, Ordering::Release);
            self.consecutive_gateway.store(0, Ordering::Release);
        }
        false
    }

    /// Counts one outcome; `true` when it completes a run of errors that should eject the
    /// endpoint (which is not ejected already).
    pub(super) fn count(&self, policy: &OutlierPolicy, outcome: TryOutcome, now: Millis) -> bool {
        let ejected = self.is_ejected(now);
        let TryOutcome::Failure { gateway } = outcome else {
            self.consecutive_5xx.store(0, Ordering::Release);
            self.consecutive_gateway.store(0, Ordering::Release);
            return false;
        };
        let mut reached = false;
        if gateway {
            let threshold = policy.consecutive_gateway.unwrap_or(0);
            reached |= bump(&self.consecutive_gateway, threshold);
        } else {
            self.consecutive_gateway.store(0, Ordering::Release);
        }
        reached |= bump(&self.consecutive_5xx, policy.consecutive_5xx);
        reached && !ejected
    }

    /// Ejects the endpoint at `now`; returns when the ejection ends.
    fn eject(&self, policy: &OutlierPolicy, now: Millis) -> Millis {
        let base = millis(policy.base_ejection_time).max(1);
        let max = base.max(millis(MAX_EJECTION_TIME));
        let interval = millis(policy.interval);
        let mut backoff = u64::from(self.backoff.load(Ordering::Acquire));
        let last = self.last_uneject.load(Ordering::Acquire);
        if last != 0 && interval > 0 {
            // One decrement per sweep the endpoint spent healthy since its last ejection.
            backoff = backoff.saturating_sub(now.saturating_sub(last) / interval);
        }
        if backoff.saturating_mul(base) < max.saturating_add(base) {
            backoff += 1;
        }
        self.backoff.store(
            u32::try_from(backoff).unwrap_or(u32::MAX),
            Ordering::Release,
        );
        let until = now.saturating_add(backoff.saturating_mul(base).min(max));
        self.ejected_until.store(until, Ordering::Release);
        until
    }
}

/// Adds one to a consecutive-error counter; `true` (and the counter restarts) when it reaches
/// a non-zero `threshold`.
fn bump(counter: &AtomicU32, threshold: u32) -> bool {
    let n = counter.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
    if threshold > 0 && n == threshold {
        counter.store(0, Ordering::Release);
        return true;
    }
    false
}

/// Envoy's rule: one more ejection is allowed when `100 × (ejected + 1) / total` does not
/// exceed `max_percent` (itself capped at 100).
pub(super) fn ejection_allowed(ejected: usize, total: usize, max_percent: u32) -> bool {
    let ejected = u128::try_from(ejected).unwrap_or(u128::MAX);
    let total = u128::try_from(total).unwrap_or(u128::MAX);
    total > 0 && (ejected + 1) * 100 <= u128::from(max_percent.min(100)) * total
}

/// Panic mode: fewer than `min_health_percent` of the endpoints are healthy.
pub(super) fn in_panic(min_health_percent: u32, healthy: usize, total: usize) -> bool {
    let healthy = u128::try_from(healthy).unwrap_or(u128::MAX);
    let total = u128::try_from(total).unwrap_or(u128::MAX);
    min_health_percent > 0 && healthy * 100 < u128::from(min_health_percent) * total
}

/// A cluster's ejection bookkeeping: ejections are decided one at a time (they are rare), and
/// `horizon` says when the last ejection ends, so picking skips all outlier checks after it.
#[derive(Debug, Default)]
pub(super) struct Ejections {
    horizon: AtomicU64,
    deciding: Mutex<()>,
}

impl Ejections {
    /// Whether some endpoint may be ejected at `now`.
    pub(super) fn maybe_active(&self, now: Millis) -> bool {
        now < self.horizon.load(Ordering::Acquire)
    }

    /// Ejects `targets[idx]` unless it is ejected already or `maxEjectionPercent` forbids it.
    pub(super) fn try_eject(
        &self,
        policy: &OutlierPolicy,
        targets: &[Target],
        idx: usize,
        now: Millis,
    ) -> bool {
        let _deciding = self.deciding.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(target) = targets.get(idx) else {
            return false;
        };
        if target.host.outlier.is_ejected(now) {
            return false;
        }
        let ejected = targets
            .iter()
            .filter(|t| t.host.outlier.is_ejected(now))
            .count();
        if !ejection_allowed(ejected, targets.len(), policy.max_ejection_percent) {
            tracing::debug!(endpoint = %target.authority, ejected, "ejection over maxEjectionPercent");
            return false;
        }
        let until = target.host.outlier.eject(policy, now);
        self.horizon.fetch_max(until, Ordering::AcqRel);
        tracing::info!(endpoint = %target.authority, eject_ms = until.saturating_sub(now), "endpoint ejected");
        true
    }
}

/// Which targets are not ejected at `now`, and how many.
pub(super) fn healthy_mask(targets: &[Target], now: Millis) -> (Vec<bool>, usize) {
    let mask: Vec<bool> = targets
        .iter()
        .map(|t| !t.host.outlier.is_ejected(now))
        .collect();
    let healthy = mask.iter().filter(|h| **h).count();
    (mask, healthy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(consecutive_5xx: u32) -> OutlierPolicy {
        OutlierPolicy {
            consecutive_5xx,
            base_ejection_time: Duration::from_millis(100),
            interval: Duration::from_millis(1000),
            max_ejection_percent: 100,
            ..OutlierPolicy::default()
        }
    }

    const ERR: TryOutcome = TryOutcome::Failure { gateway: false };
    const GW: TryOutcome = TryOutcome::Failure { gateway: true };

    #[test]
    fn outcomes_from_status() {
        assert_eq!(TryOutcome::of_status(StatusCode::OK), TryOutcome::Success);
        assert_eq!(
            TryOutcome::of_status(StatusCode::NOT_FOUND),
            TryOutcome::Success
        );
        assert_eq!(
            TryOutcome::of_status(StatusCode::INTERNAL_SERVER_ERROR),
            ERR
        );
        assert_eq!(TryOutcome::of_status(StatusCode::SERVICE_UNAVAILABLE), GW);
    }

    #[test]
    fn consecutive_errors_reach_the_threshold_once_and_success_resets() {
        let host = HostOutlier::default();
        let p = policy(3);
        assert!(!host.count(&p, ERR, 1));
        assert!(!host.count(&p, ERR, 1));
        assert!(!host.count(&p, TryOutcome::Success, 1));
        assert!(!host.count(&p, ERR, 1));
        assert!(!host.count(&p, GW, 1));
        assert!(host.count(&p, ERR, 1));
        assert!(
            !host.count(&p, ERR, 1),
            "the counter restarts after a trigger"
        );
        let off = HostOutlier::default();
        assert!(
            (0..10).all(|_| !off.count(&policy(0), ERR, 1)),
            "0 disables"
        );
    }

    #[test]
    fn gateway_errors_count_separately() {
        let host = HostOutlier::default();
        let p = OutlierPolicy {
            consecutive_gateway: Some(2),
            ..policy(10)
        };
        assert!(!host.count(&p, GW, 1));
        assert!(
            !host.count(&p, ERR, 1),
            "a plain 500 breaks a run of gateway errors"
        );
        assert!(!host.count(&p, GW, 1));
        assert!(host.count(&p, GW, 1));
    }

    #[test]
    fn ejection_time_grows_with_each_ejection_and_decays_when_healthy() {
        let host = HostOutlier::default();
        let p = policy(1);
        assert_eq!(host.eject(&p, 1), 101);
        assert!(host.is_ejected(100));
        assert!(!host.is_ejected(101));
        assert_eq!(host.eject(&p, 200), 400, "second ejection lasts 2 × base");
        assert!(!host.is_ejected(400));
        // Healthy for two sweeps (2 × 1000ms): the multiplier drops from 2 to 0, then 1.
        assert_eq!(host.eject(&p, 2400), 2500);
    }

    #[test]
    fn ejection_time_is_capped() {
        let host = HostOutlier::default();
        let p = OutlierPolicy {
            base_ejection_time: Duration::from_secs(200),
            ..policy(1)
        };
        assert_eq!(host.eject(&p, 1), 1 + 200_000);
        assert!(!host.is_ejected(200_001));
        assert_eq!(host.eject(&p, 200_001), 200_001 + 300_000);
    }

    #[test]
    fn max_ejection_percent_follows_envoy() {
        // 10% of 5 endpoints: not even one (Istio does not set always_eject_one_host).
        assert!(!ejection_allowed(0, 5, 10));
        assert!(ejection_allowed(0, 10, 10));
        assert!(!ejection_allowed(1, 10, 10));
        assert!(ejection_allowed(1, 4, 50));
        assert!(!ejection_allowed(2, 4, 50));
        assert!(ejection_allowed(3, 4, 100));
        assert!(ejection_allowed(3, 4, 250));
        assert!(!ejection_allowed(0, 0, 100));
    }

    #[test]
    fn panic_threshold() {
        assert!(!in_panic(0, 0, 4));
        assert!(in_panic(50, 1, 4));
        assert!(!in_panic(50, 2, 4));
        assert!(in_panic(100, 3, 4));
    }
}
