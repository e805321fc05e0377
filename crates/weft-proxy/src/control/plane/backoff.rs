//! Exponential backoff with jitter between attempts to reach the control plane: 200 ms, doubled
//! after every failure up to 5 s, each delay shortened by up to a fifth at random so that proxies
//! restarted together do not retry in lockstep.

use std::time::Duration;

/// The first delay.
pub const INITIAL: Duration = Duration::from_millis(200);
/// The longest delay.
pub const MAX: Duration = Duration::from_secs(5);

/// The delays between attempts; [`reset`](Backoff::reset) after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    initial: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(INITIAL, MAX)
    }
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            next: initial,
            initial,
            max: max.max(initial),
        }
    }

    /// The delay before the next attempt: the current step less up to 20 % jitter.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = step.saturating_mul(2).min(self.max);
        let jitter_nanos = u64::try_from(step.as_nanos() / 5).unwrap_or(u64::MAX);
        step.saturating_sub(Duration::from_nanos(fastrand::u64(0..=jitter_nanos)))
    }

    /// Starts over from the initial delay.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }

    /// Sleeps for [`next_delay`](Self::next_delay).
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(backoff: &mut Backoff, n: usize) -> Vec<Duration> {
        (0..n).map(|_| backoff.next_delay()).collect()
    }

    #[test]
    fn doubles_from_200ms_up_to_5s_with_jitter_below_each_step() {
        let mut backoff = Backoff::default();
        let expected_steps = [200, 400, 800, 1600, 3200, 5000, 5000, 5000];
        for (delay, step) in steps(&mut backoff, 8).into_iter().zip(expected_steps) {
            let step = Duration::from_millis(step);
            assert!(delay <= step, "{delay:?} > {step:?}");
            assert!(delay >= step * 4 / 5, "{delay:?} < 80% of {step:?}");
        }
    }

    #[test]
    fn reset_starts_over() {
        let mut backoff = Backoff::default();
        steps(&mut backoff, 5);
        backoff.reset();
        assert!(backoff.next_delay() <= INITIAL);
    }

    #[test]
    fn jitter_spreads_delays() {
        let delays: std::collections::BTreeSet<Duration> =
            (0..50).map(|_| Backoff::default().next_delay()).collect();
        assert!(delays.len() > 1, "no jitter: {delays:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn wait_sleeps_for_the_delay() {
        let mut backoff = Backoff::new(Duration::from_secs(10), Duration::from_secs(10));
        let started = tokio::time::Instant::now();
        backoff.wait().await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_secs(8) && waited <= Duration::from_secs(10));
    }
}
