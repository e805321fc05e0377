//! End-to-end tests of a live mesh: a real `weft control`, `weft run` workloads (`weft echo`
//! apps behind control-plane sidecars) and steady traffic through a client's sidecar while the
//! mesh changes — a VirtualService applied, an endpoint killed, the control plane restarted.
//!
//! Every request is recorded ([`Traffic`]) with when it was sent and which workload answered,
//! so the assertions are about the whole stream of requests, not a sample taken afterwards.

// Helpers outside #[test] functions: a failed step is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::Version;
use weft_e2e::{LiveControl, Sent, Traffic, Workload, wait_until_async};

/// How long a mesh may take to come up or settle (certificates, registration, config, ACKs).
const READY: Duration = Duration::from_secs(20);
/// The host clients call.
const REVIEWS: &str = "reviews:9080";

const SUBSETS: &str = "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
";

const ALL_TO_V2: &str = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v2}
      weight: 100
";

async fn run(control: &LiveControl, service: &str, version: &str, name: &str) -> Workload {
    control.run_echo(service, version, name).await.unwrap()
}

/// Waits until every proxy in `names` (and no other) is registered and SYNCED.
async fn until_synced(control: &LiveControl, names: &[&str]) {
    let synced = wait_until_async(READY, || control.all_synced(names)).await;
    assert!(
        synced.is_ok(),
        "proxies not all SYNCED within {READY:?}: {:?}\ncontrol stderr:\n{}",
        control.proxies().await,
        control.stderr()
    );
}

/// Sends single requests through `outbound` until each of `names` has answered one.
async fn until_answered_by(outbound: SocketAddr, names: &[&str], explain: &[&Workload]) {
    let traffic = Traffic::start(outbound, REVIEWS);
    let seen = wait_until_async(READY, || {
        let sent = traffic.sent();
        std::future::ready(
            names
                .iter()
                .all(|n| sent.iter().any(|s| s.answer.as_deref() == Ok(*n))),
        )
    })
    .await;
    let sent = traffic.stop().await;
    if seen.is_err() {
        let stderr: Vec<String> = explain.iter().map(|w| w.process.stderr()).collect();
        panic!(
            "{names:?} did not all answer within {READY:?}; last answers: {:?}\nstderr:\n{}",
            last(&sent, 5),
            stderr.join("\n----\n")
        );
    }
}

/// Waits until `traffic` has sent `count` more requests from `since` on, and `at_least` has
/// passed since then.
async fn until_sent(traffic: &Traffic, since: Instant, count: usize, at_least: Duration) {
    let sent = wait_until_async(READY + at_least, || {
        let n = traffic.sent().iter().filter(|s| s.at >= since).count();
        std::future::ready(n >= count && since.elapsed() >= at_least)
    })
    .await;
    assert!(
        sent.is_ok(),
        "fewer than {count} requests in {:?}: {:?}",
        READY + at_least,
        last(&traffic.sent(), 5)
    );
}

fn last(sent: &[Sent], n: usize) -> Vec<&Result<String, String>> {
    sent.iter().rev().take(n).rev().map(|s| &s.answer).collect()
}

fn failures(sent: &[Sent]) -> Vec<&String> {
    sent.iter()
        .filter_map(|s| s.answer.as_ref().err())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_virtual_service_changes_the_live_split_within_two_seconds() {
    let control = LiveControl::start().unwrap();
    let out = control.apply("subsets.yaml", SUBSETS).await.unwrap();
    assert_eq!(out.code, 0, "{out:?}");
    let v1 = run(&control, "reviews", "v1", "reviews-v1").await;
    let v2 = run(&control, "reviews", "v2", "reviews-v2").await;
    let client = run(&control, "client", "v1", "client").await;
    until_synced(&control, &["client", "reviews-v1", "reviews-v2"]).await;
    // Without a VirtualService, both versions take traffic.
    until_answered_by(
        client.outbound,
        &["reviews-v1", "reviews-v2"],
        &[&v1, &v2, &client],
    )
    .await;

    let traffic = Traffic::start(client.outbound, REVIEWS);
    until_sent(&traffic, Instant::now(), 20, Duration::ZERO).await;
    let out = control.apply("all-to-v2.yaml", ALL_TO_V2).await.unwrap();
    let applied = Instant::now();
    assert_eq!(out.code, 0, "{out:?}");
    let deadline = applied + Duration::from_secs(2);
    // Keep the traffic going for a while past the deadline.
    until_sent(&traffic, deadline, 30, Duration::from_secs(1)).await;
    let sent = traffic.stop().await;

    assert!(failures(&sent).is_empty(), "{:?}", failures(&sent));
    let late: Vec<&Sent> = sent.iter().filter(|s| s.at >= deadline).collect();
    let to_v1: Vec<Duration> = late
        .iter()
        .filter(|s| s.answer.as_deref() != Ok("reviews-v2"))
        .map(|s| s.at - applied)
        .collect();
    assert!(
        to_v1.is_empty(),
        "{} of {} requests sent 2 s or more after the apply returned were not answered by \
         reviews-v2 (sent this long after it: {to_v1:?})",
        to_v1.len(),
        late.len()
    );
    // Before the apply, v1 was still answering: the switch is what the test saw.
    assert!(
        sent.iter()
            .any(|s| s.at < applied && s.answer.as_deref() == Ok("reviews-v1")),
        "v1 never answered before the apply"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_endpoint_stops_receiving_traffic() {
    /// How long after the kill the traffic must have moved to the survivor.
    const MOVED: Duration = Duration::from_secs(10);
    let control = LiveControl::start().unwrap();
    let doomed = run(&control, "reviews", "v1", "reviews-doomed").await;
    let survivor = run(&control, "reviews", "v1", "reviews-survivor").await;
    let client = run(&control, "client", "v1", "client").await;
    until_synced(&control, &["client", "reviews-doomed", "reviews-survivor"]).await;
    until_answered_by(
        client.outbound,
        &["reviews-doomed", "reviews-survivor"],
        &[&doomed, &survivor, &client],
    )
    .await;

    let traffic = Traffic::start(client.outbound, REVIEWS);
    until_sent(&traffic, Instant::now(), 20, Duration::ZERO).await;
    // SIGKILL to the whole `weft run` group: app, sidecar and supervisor.
    drop(doomed);
    let killed = Instant::now();

    // The registration goes with the sidecar's stream.
    until_synced(&control, &["client", "reviews-survivor"]).await;
    // Wait for 2 s of clean traffic (answered by the survivor) after the last bad request.
    let last_bad = |sent: &[Sent]| {
        sent.iter()
            .filter(|s| s.at >= killed && s.answer.as_deref() != Ok("reviews-survivor"))
            .map(|s| s.at)
            .max()
            .unwrap_or(killed)
    };
    let settled = wait_until_async(MOVED + READY, || {
        let sent = traffic.sent();
        let bad = last_bad(&sent);
        let clean = sent.iter().filter(|s| s.at > bad).count();
        std::future::ready(clean >= 30 && bad.elapsed() >= Duration::from_secs(2))
    })
    .await;
    let sent = traffic.stop().await;
    let after: Vec<&Sent> = sent.iter().filter(|s| s.at >= killed).collect();
    let bad: Vec<(Duration, &Result<String, String>)> = after
        .iter()
        .filter(|s| s.answer.as_deref() != Ok("reviews-survivor"))
        .map(|s| (s.at - killed, &s.answer))
        .collect();
    assert!(
        settled.is_ok(),
        "traffic never settled on the survivor; not answered by it after the kill: {bad:?}"
    );
    let moved_after = last_bad(&sent) - killed;
    assert!(
        moved_after < MOVED,
        "requests sent up to {moved_after:?} after the kill were failed or went to the killed \
         endpoint (deadline {MOVED:?}): {bad:?}"
    );
    // Before the kill nothing failed.
    let before: Vec<&Sent> = sent.iter().filter(|s| s.at < killed).collect();
    assert!(
        before.iter().all(|s| s.answer.is_ok()),
        "{:?}",
        failures(&sent)
    );
    eprintln!(
        "{} of {} requests after the kill were not answered by the survivor; the last one was \
         sent {moved_after:?} after the kill",
        bad.len(),
        after.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_plane_restart_loses_no_request() {
    let mut control = LiveControl::start().unwrap();
    let reviews = run(&control, "reviews", "v1", "reviews-v1").await;
    let client = run(&control, "client", "v1", "client").await;
    until_synced(&control, &["client", "reviews-v1"]).await;
    until_answered_by(client.outbound, &["reviews-v1"], &[&reviews, &client]).await;

    let traffic = Traffic::start(client.outbound, REVIEWS);
    until_sent(&traffic, Instant::now(), 20, Duration::ZERO).await;
    control.kill().unwrap();
    let killed = Instant::now();
    // Both sidecars notice the outage, and traffic keeps flowing through it.
    let disconnected = |admin: SocketAddr| async move {
        let dump = weft_e2e::http::get(admin, Version::HTTP_11, "/config_dump").await;
        dump.and_then(|r| r.json())
            .is_ok_and(|d| d["control_plane"]["connected"] == false)
    };
    for w in [&reviews, &client] {
        let noticed = wait_until_async(READY, || disconnected(w.admin)).await;
        assert!(noticed.is_ok(), "{}", w.process.stderr());
    }
    until_sent(&traffic, killed, 30, Duration::ZERO).await;

    control.restart().unwrap();
    let restarted = Instant::now();
    // The sidecars resubscribe (with their certificates) and ACK the new control plane's config.
    until_synced(&control, &["client", "reviews-v1"]).await;
    let synced = Instant::now();
    until_sent(&traffic, synced, 30, Duration::from_secs(1)).await;
    let sent = traffic.stop().await;

    let failed: Vec<(Duration, &String)> = sent
        .iter()
        .filter_map(|s| s.answer.as_ref().err().map(|e| (s.at - killed, e)))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed (sent this long after the kill; restarted after {:?}): \
         {failed:?}\nclient stderr:\n{}\nreviews stderr:\n{}\ncontrol stderr:\n{}",
        failed.len(),
        sent.len(),
        restarted - killed,
        client.process.stderr(),
        reviews.process.stderr(),
        control.stderr()
    );
    assert!(
        sent.iter().all(|s| s.answer.as_deref() == Ok("reviews-v1")),
        "{:?}",
        sent.iter().map(|s| &s.answer).collect::<Vec<_>>()
    );
    let during = sent
        .iter()
        .filter(|s| s.at >= killed && s.at < restarted)
        .count();
    assert!(during >= 30, "only {during} requests during the outage");
}
