//! The demo's traffic: requests to productpage through the client workload's sidecar, several
//! at once, and what each answer says about the call tree behind it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use serde_json::Value;
use tokio::task::JoinSet;

use crate::commands::local::http::Connection;

/// The entry point every request goes to.
pub const PRODUCTPAGE: &str = "productpage:9080";
/// How long one request may take (the delay scenario adds 5 s to some).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What one request to productpage observed.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// productpage's answer status; 0 when there was none.
    pub status: u16,
    /// The reviews workload that answered productpage's call (`reviews-v2`).
    pub reviews: Option<String>,
    /// The status of productpage's call to reviews (0: no answer).
    pub reviews_status: u16,
    /// The ratings workload that answered reviews' call, if reviews called ratings.
    pub ratings: Option<String>,
    /// `x-forwarded-client-cert` as productpage received it (who called, over mTLS).
    pub client_cert: Option<String>,
    pub elapsed: Duration,
    pub error: Option<String>,
}

impl Sample {
    fn from_answer(status: u16, body: &Value, elapsed: Duration) -> Sample {
        let reviews_call = &body["calls"][0];
        let ratings_call = &reviews_call["body"]["calls"][0];
        let name = |v: &Value| v["body"]["name"].as_str().map(str::to_string);
        Sample {
            status,
            reviews: name(reviews_call),
            reviews_status: reviews_call["status"]
                .as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(0),
            ratings: name(ratings_call),
            client_cert: body["headers"]["x-forwarded-client-cert"]
                .as_str()
                .map(str::to_string),
            elapsed,
            error: None,
        }
    }

    fn failed(error: String, elapsed: Duration) -> Sample {
        Sample {
            error: Some(error),
            elapsed,
            ..Sample::default()
        }
    }
}

/// Sends `n` GETs of `/productpage` to the client sidecar's `outbound` listener with `headers`,
/// `concurrency` at a time, each worker on its own keep-alive connection.
pub async fn send(
    outbound: SocketAddr,
    n: usize,
    headers: &[(&str, &str)],
    concurrency: usize,
) -> Vec<Sample> {
    let next = Arc::new(AtomicUsize::new(0));
    let headers: Arc<Vec<(String, String)>> = Arc::new(
        headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.clamp(1, n.max(1)) {
        let next = next.clone();
        let headers = headers.clone();
        workers.spawn(async move {
            let mut connection = Connection::new(outbound);
            let mut samples = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                samples.push(one(&mut connection, &headers).await);
            }
            samples
        });
    }
    let mut samples = Vec::with_capacity(n);
    while let Some(joined) = workers.join_next().await {
        if let Ok(batch) = joined {
            samples.extend(batch);
        }
    }
    samples
}

async fn one(connection: &mut Connection, headers: &[(String, String)]) -> Sample {
    let started = Instant::now();
    let mut builder = Request::builder()
        .method(Method::GET)
        .uri("/productpage")
        .header(http::header::HOST, PRODUCTPAGE);
    for (k, v) in headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let request = match builder.body(Full::new(Bytes::new())) {
        Ok(r) => r,
        Err(err) => return Sample::failed(err.to_string(), started.elapsed()),
    };
    let reply = match tokio::time::timeout(REQUEST_TIMEOUT, connection.send(request)).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(err)) => return Sample::failed(format!("{err:#}"), started.elapsed()),
        Err(_) => {
            *connection = Connection::new(connection.addr());
            return Sample::failed("timed out".to_string(), started.elapsed());
        }
    };
    let elapsed = started.elapsed();
    let body = reply.json().unwrap_or(Value::Null);
    Sample::from_answer(reply.status.as_u16(), &body, elapsed)
}

/// Sends requests until every reviews version has answered through the whole call tree
/// (productpage, reviews, and ratings for v2 and v3), or fails after `within`.
pub async fn warm_up(outbound: SocketAddr, within: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut seen = std::collections::BTreeSet::new();
    loop {
        for sample in send(outbound, 10, &[], 5).await {
            let whole = sample.status == 200
                && sample.reviews_status == 200
                && (sample.reviews.as_deref() == Some("reviews-v1") || sample.ratings.is_some());
            if let (true, Some(reviews)) = (whole, sample.reviews) {
                seen.insert(reviews);
            }
        }
        if seen.len() == 3 {
            return Ok(());
        }
        if started.elapsed() > within {
            anyhow::bail!(
                "the apps did not all answer within {within:?}; reviews versions seen: {seen:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How often each value occurred.
pub fn count<'a>(values: impl Iterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for v in values {
        *counts.entry(v.to_string()).or_insert(0) += 1;
    }
    counts
}

/// Whether `observed` of `n` is within 5 standard deviations of a binomial(`n`, `p`): the
/// verdict and the "expected E ± T" text.
pub fn binomial(observed: usize, n: usize, p: f64) -> (bool, String) {
    let n_f = n as f64;
    let expected = n_f * p;
    let tolerance = 5.0 * (n_f * p * (1.0 - p)).sqrt();
    let ok = (observed as f64 - expected).abs() <= tolerance;
    let text = if tolerance == 0.0 {
        format!("expected {expected:.0}")
    } else {
        format!("expected {expected:.0} ± {tolerance:.0}")
    };
    (ok, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_tolerance_is_five_sigma() {
        // n = 200, p = 0.8: sigma = 5.66, so 160 ± 28.
        assert_eq!(binomial(160, 200, 0.8), (true, "expected 160 ± 28".into()));
        assert!(binomial(133, 200, 0.8).0);
        assert!(!binomial(131, 200, 0.8).0);
        assert_eq!(binomial(0, 200, 0.0), (true, "expected 0".into()));
        assert!(!binomial(1, 200, 0.0).0);
        assert!(binomial(50, 50, 1.0).0);
    }

    #[test]
    fn samples_read_the_call_tree() {
        let body = serde_json::json!({
            "name": "productpage-v1",
            "headers": {"x-forwarded-client-cert": "By=...;URI=spiffe://cluster.local/ns/default/sa/demo-client"},
            "calls": [{"url": "http://reviews:9080/reviews", "status": 200, "body": {
                "name": "reviews-v2",
                "calls": [{"url": "http://ratings:9080/ratings", "status": 200, "body": {"name": "ratings-v1"}}]
            }}]
        });
        let s = Sample::from_answer(200, &body, Duration::ZERO);
        assert_eq!(s.reviews.as_deref(), Some("reviews-v2"));
        assert_eq!(s.reviews_status, 200);
        assert_eq!(s.ratings.as_deref(), Some("ratings-v1"));
        assert!(s.client_cert.unwrap().contains("sa/demo-client"));
        let failed = serde_json::json!({"calls": [{"status": 0, "body": null}]});
        let s = Sample::from_answer(200, &failed, Duration::ZERO);
        assert_eq!((s.reviews, s.reviews_status), (None, 0));
    }
}
