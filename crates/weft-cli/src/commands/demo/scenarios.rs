//! The demo's scenarios, in the order they run: what each applies (the seeds' YAML, verbatim)
//! and what real traffic must show afterwards.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::Method;

use super::traffic::{self, PRODUCTPAGE, Sample, binomial, count};
use crate::commands::local::http as client;

/// One scenario.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub name: &'static str,
    /// What it shows, one sentence.
    pub what: &'static str,
    /// The YAML applied (its path in the repository, and its text), if any.
    pub config: Option<(&'static str, &'static str)>,
    /// Leave the config applied for the scenarios after it.
    pub keep: bool,
    pub check: Check,
}

/// What traffic must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Baseline,
    Canary,
    HeaderRoute,
    Strict,
    Delay,
    Abort,
}

pub fn all() -> [Scenario; 6] {
    [
        Scenario {
            name: "baseline",
            what: "no routing rules: reviews v1, v2 and v3 share the traffic; v2 and v3 call ratings",
            config: None,
            keep: false,
            check: Check::Baseline,
        },
        Scenario {
            name: "canary 80/20",
            what: "a weighted VirtualService sends 80% of reviews traffic to v1, 20% to v2",
            config: Some((
                "examples/seeds/000-01-virtualservice-reviews-routing.yaml",
                include_str!(
                    "../../../../../examples/seeds/000-01-virtualservice-reviews-routing.yaml"
                ),
            )),
            keep: false,
            check: Check::Canary,
        },
        Scenario {
            name: "header routing",
            what: "requests with `end-user: jason` go to reviews v2, all others to v1",
            config: Some((
                "examples/seeds/001-04-virtualservice-reviews-route.yaml",
                include_str!(
                    "../../../../../examples/seeds/001-04-virtualservice-reviews-route.yaml"
                ),
            )),
            keep: false,
            check: Check::HeaderRoute,
        },
        Scenario {
            name: "mTLS STRICT",
            what: "a namespace-wide STRICT PeerAuthentication: sidecars talk mutual TLS, plaintext is refused",
            config: Some((
                "examples/seeds/000-02-peerauthentication-default.yaml",
                include_str!(
                    "../../../../../examples/seeds/000-02-peerauthentication-default.yaml"
                ),
            )),
            keep: true,
            check: Check::Strict,
        },
        Scenario {
            name: "fault injection: delay",
            what: "10% of the calls to reviews are delayed by 5s",
            config: Some((
                "examples/seeds/000-03-virtualservice-reviews-fault-injection.yaml",
                include_str!(
                    "../../../../../examples/seeds/000-03-virtualservice-reviews-fault-injection.yaml"
                ),
            )),
            keep: false,
            check: Check::Delay,
        },
        Scenario {
            name: "fault injection: abort",
            what: "half of the calls to reviews fail with 503; productpage still answers",
            config: Some((
                "examples/demo/fault-abort.yaml",
                include_str!("../../../../../examples/demo/fault-abort.yaml"),
            )),
            keep: false,
            check: Check::Abort,
        },
    ]
}

/// Where traffic goes and how much of it.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The client workload's sidecar outbound listener.
    pub outbound: SocketAddr,
    /// productpage's sidecar inbound listener (for plaintext requests from outside the mesh).
    pub productpage_inbound: SocketAddr,
    /// Requests per measurement.
    pub requests: usize,
}

/// A scenario's verdict and what was observed.
#[derive(Debug, Default)]
pub struct Outcome {
    pub pass: bool,
    pub lines: Vec<String>,
}

impl Outcome {
    pub fn new() -> Self {
        Self {
            pass: true,
            lines: Vec::new(),
        }
    }

    /// Records an observation; `ok == false` fails the scenario.
    fn observe(&mut self, ok: bool, line: String) {
        self.pass &= ok;
        let mark = if ok { "  " } else { "✗ " };
        self.lines.push(format!("{mark}{line}"));
    }
}

/// How much traffic runs at once.
const CONCURRENCY: usize = 16;

impl Check {
    /// What to observe before the config is applied (for a before/after contrast).
    pub async fn before(self, target: &Target, outcome: &mut Outcome) {
        if self == Check::Strict {
            let answer = plaintext(target.productpage_inbound).await;
            outcome.observe(
                answer.is_ok(),
                format!(
                    "before: plaintext request straight to productpage's inbound {}: {}",
                    target.productpage_inbound,
                    describe(&answer)
                ),
            );
        }
    }

    /// Sends traffic and judges it.
    pub async fn after(self, target: &Target, outcome: &mut Outcome) {
        match self {
            Check::Baseline => baseline(target, outcome).await,
            Check::Canary => canary(target, outcome).await,
            Check::HeaderRoute => header_route(target, outcome).await,
            Check::Strict => strict(target, outcome).await,
            Check::Delay => delay(target, outcome).await,
            Check::Abort => abort(target, outcome).await,
        }
    }
}

async fn baseline(target: &Target, outcome: &mut Outcome) {
    let samples = traffic::send(target.outbound, target.requests, &[], CONCURRENCY).await;
    all_ok(&samples, outcome);
    shared(
        &samples,
        &["reviews-v1", "reviews-v2", "reviews-v3"],
        outcome,
    );
    ratings_calls(&samples, outcome);
}

async fn canary(target: &Target, outcome: &mut Outcome) {
    let samples = traffic::send(target.outbound, target.requests, &[], CONCURRENCY).await;
    all_ok(&samples, outcome);
    let shares = [
        ("reviews-v1", 0.8),
        ("reviews-v2", 0.2),
        ("reviews-v3", 0.0),
    ];
    split(&samples, &shares, outcome);
}

async fn header_route(target: &Target, outcome: &mut Outcome) {
    let half = (target.requests / 2).max(1);
    let jason = [("end-user", "jason")];
    let samples = traffic::send(target.outbound, half, &jason, CONCURRENCY).await;
    all_ok(&samples, outcome);
    only(&samples, "reviews-v2", "end-user: jason", outcome);
    let others = [("end-user", "mary")];
    let samples = traffic::send(target.outbound, half, &others, CONCURRENCY).await;
    all_ok(&samples, outcome);
    only(&samples, "reviews-v1", "end-user: mary", outcome);
    let samples = traffic::send(target.outbound, half, &[], CONCURRENCY).await;
    only(&samples, "reviews-v1", "no end-user", outcome);
}

async fn strict(target: &Target, outcome: &mut Outcome) {
    let answer = plaintext(target.productpage_inbound).await;
    outcome.observe(
        answer.is_err(),
        format!(
            "after: plaintext request straight to productpage's inbound: {}",
            describe(&answer)
        ),
    );
    let n = (target.requests / 4).max(1);
    let samples = traffic::send(target.outbound, n, &[], CONCURRENCY).await;
    all_ok(&samples, outcome);
    let answered = samples.iter().filter(|s| s.reviews.is_some()).count();
    outcome.observe(
        answered == samples.len(),
        format!(
            "through the sidecars (mTLS): {answered} of {} requests reached reviews",
            samples.len()
        ),
    );
    // The inbound sidecar tells the app who called in `x-forwarded-client-cert`.
    let cert = samples.iter().find_map(|s| s.client_cert.as_deref());
    let identity = cert.and_then(|c| c.split(';').find_map(|p| p.strip_prefix("URI=")));
    outcome.observe(
        identity.is_some_and(|id| id.ends_with("/sa/demo-client")),
        format!(
            "productpage saw its caller's identity: {}",
            identity.unwrap_or("none")
        ),
    );
}

async fn delay(target: &Target, outcome: &mut Outcome) {
    // Many at once: the delayed requests wait side by side, not one after another.
    let n = target.requests;
    let samples = traffic::send(target.outbound, n, &[], n.min(50)).await;
    all_ok(&samples, outcome);
    let delayed = samples
        .iter()
        .filter(|s| s.elapsed >= Duration::from_millis(4900))
        .count();
    let (ok, expected) = binomial(delayed, samples.len(), 0.1);
    let slowest = samples.iter().map(|s| s.elapsed).max().unwrap_or_default();
    outcome.observe(
        ok && delayed > 0,
        format!(
            "{delayed} of {} requests took 5s or more ({expected}); slowest {:.1}s",
            samples.len(),
            slowest.as_secs_f64()
        ),
    );
}

async fn abort(target: &Target, outcome: &mut Outcome) {
    let samples = traffic::send(target.outbound, target.requests, &[], CONCURRENCY).await;
    all_ok(&samples, outcome);
    let statuses = count(samples.iter().map(|s| status_name(s.reviews_status)));
    let aborted = statuses.get("503").copied().unwrap_or(0);
    let answered = statuses.get("200").copied().unwrap_or(0);
    let (ok, expected) = binomial(aborted, samples.len(), 0.5);
    let shown: Vec<String> = statuses.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
    outcome.observe(
        ok && aborted + answered == samples.len(),
        format!(
            "productpage's calls to reviews: {} (503: {expected})",
            shown.join(", ")
        ),
    );
}

fn status_name(status: u16) -> &'static str {
    match status {
        200 => "200",
        503 => "503",
        0 => "no answer",
        _ => "other",
    }
}

/// Every request answered 200 by productpage.
fn all_ok(samples: &[Sample], outcome: &mut Outcome) {
    let ok = samples.iter().filter(|s| s.status == 200).count();
    let mut line = format!(
        "{ok} of {} requests answered 200 by productpage",
        samples.len()
    );
    if let Some(error) = samples.iter().find_map(|s| s.error.as_deref()) {
        line.push_str(&format!(" (first error: {error})"));
    }
    outcome.observe(ok == samples.len() && ok > 0, line);
}

/// Which reviews version answered, against the expected shares.
fn split(samples: &[Sample], shares: &[(&str, f64)], outcome: &mut Outcome) {
    let counts = count(
        samples
            .iter()
            .map(|s| s.reviews.as_deref().unwrap_or("none")),
    );
    for (name, share) in shares {
        let observed = counts.get(*name).copied().unwrap_or(0);
        let (ok, expected) = binomial(observed, samples.len(), *share);
        outcome.observe(ok, format!("{name}: {observed} ({expected})"));
    }
    let others = samples.len()
        - shares
            .iter()
            .map(|(n, _)| counts.get(*n).copied().unwrap_or(0))
            .sum::<usize>();
    if others > 0 {
        outcome.observe(
            false,
            format!("{others} requests reached no reviews version"),
        );
    }
}

/// Every one of `versions` answered a fair part (a tenth or more) of `samples`. Not a binomial
/// test: the default load balancer (least request, as Istio's) favours the fastest endpoint,
/// here v1, which calls nobody.
fn shared(samples: &[Sample], versions: &[&str], outcome: &mut Outcome) {
    let counts = count(
        samples
            .iter()
            .map(|s| s.reviews.as_deref().unwrap_or("none")),
    );
    let floor = samples.len() / 10;
    let shown: Vec<String> = counts.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
    let ok = versions
        .iter()
        .all(|v| counts.get(*v).copied().unwrap_or(0) >= floor.max(1))
        && counts.keys().all(|k| versions.contains(&k.as_str()));
    outcome.observe(
        ok,
        format!("answered by {} (each at least {floor})", shown.join(", ")),
    );
}

/// All of `samples` answered by `reviews`.
fn only(samples: &[Sample], reviews: &str, who: &str, outcome: &mut Outcome) {
    let counts = count(
        samples
            .iter()
            .map(|s| s.reviews.as_deref().unwrap_or("none")),
    );
    let shown: Vec<String> = counts.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
    let hits = counts.get(reviews).copied().unwrap_or(0);
    outcome.observe(
        hits == samples.len() && hits > 0,
        format!("{who}: answered by {}", shown.join(", ")),
    );
}

/// v1 never calls ratings; v2 and v3 always do.
fn ratings_calls(samples: &[Sample], outcome: &mut Outcome) {
    for version in ["reviews-v1", "reviews-v2", "reviews-v3"] {
        let of_version: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.reviews.as_deref() == Some(version))
            .collect();
        let called = of_version.iter().filter(|s| s.ratings.is_some()).count();
        let should = version != "reviews-v1";
        let ok = if should {
            called == of_version.len()
        } else {
            called == 0
        };
        outcome.observe(
            ok,
            format!(
                "{version} called ratings in {called} of {} answers",
                of_version.len()
            ),
        );
    }
}

/// A plaintext HTTP/1.1 request straight to a sidecar's inbound listener, as a client outside
/// the mesh would send: `Ok(status)` of a success answer, `Err` when refused.
async fn plaintext(inbound: SocketAddr) -> Result<u16, String> {
    let headers = [("host", PRODUCTPAGE)];
    let answer = client::request(
        inbound,
        Method::GET,
        "/productpage",
        &headers,
        Bytes::new(),
        Duration::from_secs(5),
    )
    .await;
    match answer {
        Ok(reply) if reply.status.is_success() => Ok(reply.status.as_u16()),
        Ok(reply) => Err(format!("answered {}", reply.status)),
        Err(err) => Err(format!("{:#}", err.root_cause())),
    }
}

fn describe(answer: &Result<u16, String>) -> String {
    match answer {
        Ok(status) => format!("accepted ({status})"),
        Err(why) => format!("refused ({why})"),
    }
}
