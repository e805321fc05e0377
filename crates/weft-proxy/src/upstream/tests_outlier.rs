//! Outlier detection through `send`: ejection after consecutive errors, return after the
//! ejection time, `maxEjectionPercent`, panic mode, and state across config swaps.

use super::*;
use weft_api::mesh::OutlierPolicy;

fn outlier(consecutive_5xx: u32, base: Duration, max_ejection_percent: u32) -> OutlierPolicy {
    OutlierPolicy {
        consecutive_5xx,
        consecutive_gateway: None,
        interval: Duration::from_secs(10),
        base_ejection_time: base,
        max_ejection_percent,
        min_health_percent: 0,
    }
}

fn with_outlier(mut c: Cluster, policy: OutlierPolicy) -> Arc<Cluster> {
    c.outlier = Some(policy);
    Arc::new(c)
}

/// Sends `n` requests, ignoring how they end; returns who answered.
async fn drive(up: &Upstreams, c: &Arc<Cluster>, n: usize) -> Vec<String> {
    let mut answered = Vec::new();
    for _ in 0..n {
        if let Ok(sent) = send(up, c, "/", &ctx()).await {
            answered.push(answered_by(sent).await);
        }
    }
    answered
}

#[tokio::test]
async fn ejects_after_consecutive_5xx_and_returns_after_the_ejection_time() {
    let good = echo("good", None).await;
    let bad = echo("bad", Some(StatusCode::SERVICE_UNAVAILABLE)).await;
    let base = Duration::from_millis(300);
    let c = with_outlier(
        cluster_of(
            "eject",
            vec![endpoint_at(good.addr, 1), endpoint_at(bad.addr, 1)],
            LbPolicy::RoundRobin,
        ),
        outlier(3, base, 50),
    );
    let up = Upstreams::new();
    // Round robin alternates: the sixth request is "bad"'s third 503 in a row.
    let answered = drive(&up, &c, 5).await;
    assert_eq!(answered, ["good", "bad", "good", "bad", "good"]);
    assert!(up.ejected(&c.key).is_empty());
    drive(&up, &c, 1).await;
    assert_eq!(up.ejected(&c.key), [bad.addr.to_string()]);
    // While "bad" is ejected, everything goes to "good".
    let mut while_ejected = 0;
    loop {
        let sent = send(&up, &c, "/", &ctx()).await.unwrap();
        let name = answered_by(sent).await;
        if up.ejected(&c.key).is_empty() {
            break;
        }
        // Ejected before the pick and still after the answer: it was ejected at the pick.
        assert_eq!(name, "good");
        while_ejected += 1;
        assert!(while_ejected < 100_000, "ejection never ended");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(while_ejected > 0);
    // Back in rotation after the ejection time.
    let mut back = false;
    for _ in 0..4 {
        back |= drive(&up, &c, 1).await == ["bad"];
    }
    assert!(back, "the endpoint should serve again after its ejection");
}

#[tokio::test]
async fn gateway_errors_eject_when_configured() {
    let good = echo("good", None).await;
    let bad = echo("bad", Some(StatusCode::BAD_GATEWAY)).await;
    let mut policy = outlier(100, Duration::from_secs(30), 100);
    policy.consecutive_gateway = Some(2);
    let c = with_outlier(
        cluster_of(
            "gateway",
            vec![endpoint_at(good.addr, 1), endpoint_at(bad.addr, 1)],
            LbPolicy::RoundRobin,
        ),
        policy,
    );
    let up = Upstreams::new();
    drive(&up, &c, 4).await;
    assert_eq!(up.ejected(&c.key), [bad.addr.to_string()]);
    assert!(drive(&up, &c, 6).await.iter().all(|n| n == "good"));
}

#[tokio::test]
async fn connect_failures_count_as_errors() {
    let good = echo("good", None).await;
    let closed = closed_port().await;
    let c = with_outlier(
        cluster_of(
            "connect",
            vec![endpoint_at(good.addr, 1), endpoint_at(closed, 1)],
            LbPolicy::RoundRobin,
        ),
        outlier(2, Duration::from_secs(30), 100),
    );
    let up = Upstreams::new();
    let mut failures = 0;
    for _ in 0..4 {
        if let Err(err) = send(&up, &c, "/", &ctx()).await {
            assert_eq!(err.response_flag(), "UF");
            failures += 1;
        }
    }
    assert_eq!(failures, 2);
    assert_eq!(up.ejected(&c.key), [closed.to_string()]);
    for _ in 0..6 {
        assert!(send(&up, &c, "/", &ctx()).await.is_ok());
    }
}

async fn failing(n: usize) -> Vec<Backend> {
    let mut backends = Vec::new();
    for i in 0..n {
        backends.push(echo(&format!("bad{i}"), Some(StatusCode::INTERNAL_SERVER_ERROR)).await);
    }
    backends
}

#[tokio::test]
async fn max_ejection_percent_caps_ejections() {
    let backends = failing(4).await;
    let up = Upstreams::new();
    let half = with_outlier(
        cluster("half", &backends, LbPolicy::RoundRobin),
        outlier(1, Duration::from_secs(30), 50),
    );
    drive(&up, &half, 12).await;
    assert_eq!(up.ejected(&half.key).len(), 2, "50% of 4 endpoints");
    // Istio's default 10%: four endpoints cannot lose even one.
    let ten = with_outlier(
        cluster("ten", &backends, LbPolicy::RoundRobin),
        outlier(1, Duration::from_secs(30), 10),
    );
    drive(&up, &ten, 12).await;
    assert!(up.ejected(&ten.key).is_empty());
}

#[tokio::test]
async fn all_ejected_without_panic_mode_is_no_healthy_upstream() {
    let backends = failing(2).await;
    let c = with_outlier(
        cluster("allout", &backends, LbPolicy::RoundRobin),
        outlier(1, Duration::from_secs(30), 100),
    );
    let up = Upstreams::new();
    drive(&up, &c, 2).await;
    assert_eq!(up.ejected(&c.key).len(), 2);
    let err = send(&up, &c, "/", &ctx()).await.unwrap_err();
    assert_eq!(err.response_flag(), "UH");
}

#[tokio::test]
async fn panic_mode_balances_over_all_endpoints() {
    let good = echo("good", None).await;
    let bad = echo("bad", Some(StatusCode::SERVICE_UNAVAILABLE)).await;
    let mut policy = outlier(1, Duration::from_secs(30), 100);
    policy.min_health_percent = 60;
    let c = with_outlier(
        cluster_of(
            "panic",
            vec![endpoint_at(good.addr, 1), endpoint_at(bad.addr, 1)],
            LbPolicy::RoundRobin,
        ),
        policy,
    );
    let up = Upstreams::new();
    drive(&up, &c, 2).await;
    assert_eq!(up.ejected(&c.key), [bad.addr.to_string()]);
    // 50% healthy < 60%: ejections are ignored, round robin covers both.
    assert_eq!(drive(&up, &c, 4).await, ["good", "bad", "good", "bad"]);

    // Everything ejected with a panic threshold: still served (by failing endpoints).
    let backends = failing(2).await;
    let mut policy = outlier(1, Duration::from_secs(30), 100);
    policy.min_health_percent = 50;
    let all = with_outlier(cluster("panicall", &backends, LbPolicy::RoundRobin), policy);
    drive(&up, &all, 2).await;
    assert_eq!(up.ejected(&all.key).len(), 2);
    assert_eq!(drive(&up, &all, 2).await.len(), 2);
}

#[tokio::test]
async fn ejections_survive_config_swaps_and_retain_forgets_clusters() {
    let good = echo("good", None).await;
    let bad = echo("bad", Some(StatusCode::SERVICE_UNAVAILABLE)).await;
    let other = echo("other", None).await;
    let policy = outlier(1, Duration::from_secs(30), 100);
    let base = cluster_of(
        "swap",
        vec![endpoint_at(good.addr, 1), endpoint_at(bad.addr, 1)],
        LbPolicy::RoundRobin,
    );
    let v1 = with_outlier(base.clone(), policy.clone());
    let up = Upstreams::new();
    drive(&up, &v1, 2).await;
    assert_eq!(up.ejected(&v1.key), [bad.addr.to_string()]);
    // The same cluster in a new snapshot, then with one more endpoint.
    let v2 = with_outlier(base.clone(), policy.clone());
    assert!(drive(&up, &v2, 4).await.iter().all(|n| n == "good"));
    let mut grown = base;
    grown.endpoints.push(endpoint_at(other.addr, 1));
    let v3 = with_outlier(grown, policy);
    let answered = drive(&up, &v3, 6).await;
    assert!(!answered.iter().any(|n| n == "bad"), "{answered:?}");
    assert_eq!(up.ejected(&v3.key), [bad.addr.to_string()]);

    up.retain(&|key| key != &v3.key);
    assert!(up.ejected(&v3.key).is_empty());
    assert_eq!(up.active_requests(&v3.key), 0);
    assert!(
        drive(&up, &v3, 3).await.iter().any(|n| n == "bad"),
        "fresh state after retain"
    );
}
