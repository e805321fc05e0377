//! A route's timeout, retry policy and fault injection, with Istio's defaults: no timeout, two
//! retries on connection-level failures, and no retries at all on a route with a `fault` (Istio:
//! "timeouts or retries will not be enabled when faults are enabled"; weft keeps the timeout).

use std::time::Duration;

use crate::mesh::{Abort, Fault, RetryOn, RetryPolicy};
use crate::model::{DurationText, FaultAbort, FaultDelay, HttpFaultInjection, HttpRoute, Percent};

/// Istio's `retryOn` when `retries.attempts` is set without one.
const DEFAULT_RETRY_ON: &str =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";

/// Envoy's base backoff interval.
const DEFAULT_BACKOFF: Duration = Duration::from_millis(25);

fn duration(d: Option<&DurationText>) -> Option<Duration> {
    d.and_then(|d| d.parse().ok())
}

/// The route `timeout`; absent or `0s` means none.
pub(super) fn timeout(route: &HttpRoute) -> Option<Duration> {
    duration(route.timeout.as_ref()).filter(|d| !d.is_zero())
}

/// `fault` disables retries; `retries` absent is Istio's default policy; `attempts` absent or 0
/// disables retries.
pub(super) fn retry_policy(route: &HttpRoute) -> RetryPolicy {
    if route.fault.is_some() {
        return RetryPolicy::disabled();
    }
    let Some(retries) = &route.retries else {
        return RetryPolicy::istio_default();
    };
    let attempts = retries
        .attempts
        .and_then(|a| u32::try_from(a).ok())
        .unwrap_or(0);
    if attempts == 0 {
        return RetryPolicy::disabled();
    }
    let retry_on = retries
        .retry_on
        .as_deref()
        .filter(|r| !r.trim().is_empty())
        .unwrap_or(DEFAULT_RETRY_ON);
    RetryPolicy {
        attempts,
        per_try_timeout: duration(retries.per_try_timeout.as_ref()).filter(|d| !d.is_zero()),
        retry_on: RetryOn::parse(retry_on),
        backoff: duration(retries.backoff.as_ref())
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_BACKOFF),
    }
}

/// `percentage.value`, else the deprecated integer `percent`, else 0 (no request affected).
fn share(percentage: Option<&Percent>, percent: Option<i64>) -> f64 {
    percentage
        .map(|p| p.value)
        .or(percent.map(|p| p as f64))
        .unwrap_or(0.0)
        .clamp(0.0, 100.0)
}

/// The fault, if it has a `fixedDelay` or an HTTP/gRPC abort (`exponentialDelay` and
/// `http2Error` have no data-path equivalent and are ignored).
pub(super) fn fault(f: &HttpFaultInjection) -> Option<Fault> {
    let delay = f.delay.as_ref().and_then(delay);
    let abort = f.abort.as_ref().and_then(abort);
    (delay.is_some() || abort.is_some()).then_some(Fault { delay, abort })
}

fn delay(d: &FaultDelay) -> Option<(Duration, f64)> {
    let fixed = duration(d.fixed_delay.as_ref())?;
    Some((fixed, share(d.percentage.as_ref(), d.percent)))
}

fn abort(a: &FaultAbort) -> Option<(Abort, f64)> {
    let kind = match (a.http_status, a.grpc_status.as_deref()) {
        (Some(status), _) => Abort::Http(u16::try_from(status).ok()?),
        (None, Some(name)) => Abort::Grpc(crate::model::grpc_status_code(name)?),
        (None, None) => return None,
    };
    Some((kind, share(a.percentage.as_ref(), a.percent)))
}
