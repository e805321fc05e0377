//! Active health checks of registered workloads (WorkloadGroup probe semantics): an HTTP GET
//! answered 2xx/3xx or an accepted TCP connection passes; `failure_threshold` consecutive
//! failures take the workload out of its service's endpoints, one success brings it back.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The period used when the proxy sends none.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(5);
/// Consecutive failures that remove a workload when the proxy sends no threshold (Istio's).
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 3;
/// A probe that takes longer than this fails.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeKind {
    Http { path: String },
    Tcp,
}

/// How a workload is probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSpec {
    pub kind: ProbeKind,
    pub port: u32,
    pub period: Duration,
    pub failure_threshold: u32,
}

/// The verdict over consecutive probe results. Starts unhealthy (not yet probed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthTracker {
    healthy: bool,
    failures: u32,
}

impl HealthTracker {
    /// Records one probe result and returns the verdict.
    pub fn observe(&mut self, passed: bool, failure_threshold: u32) -> bool {
        if passed {
            self.failures = 0;
            self.healthy = true;
        } else {
            self.failures = self.failures.saturating_add(1);
            if self.failures >= failure_threshold.max(1) {
                self.healthy = false;
            }
        }
        self.healthy
    }

    pub fn healthy(&self) -> bool {
        self.healthy
    }
}

/// Probes `address:spec.port` once.
pub async fn probe(address: &str, spec: &HealthSpec) -> bool {
    let Ok(ip) = address.parse::<std::net::IpAddr>() else {
        return false;
    };
    let Ok(port) = u16::try_from(spec.port) else {
        return false;
    };
    let addr = SocketAddr::new(ip, port);
    let attempt = async {
        let stream = TcpStream::connect(addr).await.ok()?;
        match &spec.kind {
            ProbeKind::Tcp => Some(true),
            ProbeKind::Http { path } => http_probe(stream, addr, path).await,
        }
    };
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, attempt).await,
        Ok(Some(true))
    )
}

async fn http_probe(stream: TcpStream, addr: SocketAddr, path: &str) -> Option<bool> {
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    let conn = tokio::spawn(conn);
    let request = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .header(http::header::USER_AGENT, "weft-control-health")
        .body(Empty::<bytes::Bytes>::new())
        .ok()?;
    let response = sender.send_request(request).await.ok()?;
    conn.abort();
    let status = response.status();
    Some(status.is_success() || status.is_redirection())
}

/// Probes every `spec.period` forever, calling `report` with each verdict.
pub async fn run_checks(address: String, spec: HealthSpec, report: impl Fn(bool) + Send) {
    let mut tracker = HealthTracker::default();
    let mut ticker = tokio::time::interval(spec.period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let passed = probe(&address, &spec).await;
        tracing::debug!(%address, port = spec.port, passed, "health probe");
        report(tracker.observe(passed, spec.failure_threshold));
    }
}
