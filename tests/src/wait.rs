//! Polling with a deadline: how tests wait for something to become true, instead of sleeping.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is checked again.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// A condition that did not become true in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeout {
    pub waited: Duration,
}

impl std::fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "condition still false after {:?}", self.waited)
    }
}

impl std::error::Error for WaitTimeout {}

/// Checks `condition` until it returns true, or fails once `within` has passed. The condition is
/// always checked at least once, and once more at the deadline.
pub fn wait_until(
    within: Duration,
    mut condition: impl FnMut() -> bool,
) -> Result<(), WaitTimeout> {
    let started = Instant::now();
    let deadline = started + within;
    loop {
        if condition() {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(WaitTimeout {
                waited: now - started,
            });
        }
        std::thread::sleep(POLL_INTERVAL.min(deadline - now));
    }
}

/// [`wait_until`] for conditions that need to await (an HTTP request, a file read).
pub async fn wait_until_async<F, Fut>(within: Duration, mut condition: F) -> Result<(), WaitTimeout>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    let deadline = started + within;
    loop {
        if condition().await {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(WaitTimeout {
                waited: now - started,
            });
        }
        tokio::time::sleep(POLL_INTERVAL.min(deadline - now)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_as_soon_as_the_condition_holds() {
        let mut calls = 0;
        wait_until(Duration::from_secs(10), || {
            calls += 1;
            calls == 3
        })
        .unwrap();
        assert_eq!(calls, 3);
    }

    #[test]
    fn times_out_when_the_condition_never_holds() {
        let err = wait_until(Duration::from_millis(30), || false).unwrap_err();
        assert!(err.waited >= Duration::from_millis(30));
    }

    #[tokio::test]
    async fn async_variant_polls_too() {
        let mut calls = 0;
        wait_until_async(Duration::from_secs(10), || {
            calls += 1;
            let done = calls == 2;
            async move { done }
        })
        .await
        .unwrap();
        assert!(
            wait_until_async(Duration::ZERO, || async { false })
                .await
                .is_err()
        );
    }
}
