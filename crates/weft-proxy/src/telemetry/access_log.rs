//! Writes one JSON access-log line per request with the keys of Istio's default Envoy JSON access
//! log (`start_time`, `response_flags`, `upstream_host`, ...), to stdout or to memory in tests.

use std::borrow::Cow;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};
use tokio::sync::watch;

use super::response_flags::ResponseFlags;
use super::timestamp::format_rfc3339_millis;

/// The downstream protocol, printed as Envoy's `%PROTOCOL%` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HttpProtocol {
    /// `HTTP/1.0`
    Http10,
    /// `HTTP/1.1`
    Http11,
    /// `HTTP/2`
    Http2,
}

impl HttpProtocol {
    /// The protocol of a request's `http::Version` (`None` for HTTP/0.9 and HTTP/3, which weft
    /// does not serve).
    pub fn from_version(version: http::Version) -> Option<Self> {
        match version {
            http::Version::HTTP_10 => Some(Self::Http10),
            http::Version::HTTP_11 => Some(Self::Http11),
            http::Version::HTTP_2 => Some(Self::Http2),
            _ => None,
        }
    }

    /// The printed name (`HTTP/1.1`, `HTTP/2`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Http10 => "HTTP/1.0",
            Self::Http11 => "HTTP/1.1",
            Self::Http2 => "HTTP/2",
        }
    }
}

impl Serialize for HttpProtocol {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One access-log record. Field names and meanings follow Envoy's command operators as used by
/// Istio's default JSON format; `None` prints as `null`, as Envoy prints a missing value.
#[derive(Clone, Debug, Serialize)]
pub struct AccessLogEntry {
    /// When the first byte of the request arrived (`%START_TIME%`), printed as RFC 3339 UTC ms.
    #[serde(serialize_with = "serialize_time")]
    pub start_time: SystemTime,
    /// `:method`.
    pub method: Option<String>,
    /// `x-envoy-original-path` or `:path`, including the query.
    pub path: Option<String>,
    /// The downstream protocol.
    pub protocol: Option<HttpProtocol>,
    /// The status sent downstream; 0 when no response was sent.
    pub response_code: u16,
    /// Envoy's response flags (`-` when none).
    pub response_flags: ResponseFlags,
    /// Why this status was sent (`via_upstream`, `route_not_found`, ...).
    pub response_code_details: Cow<'static, str>,
    /// Why the connection was closed, when weft closed it.
    pub connection_termination_details: Option<Cow<'static, str>>,
    /// Why the upstream transport (TLS) failed.
    pub upstream_transport_failure_reason: Option<String>,
    /// Request body bytes received from downstream.
    pub bytes_received: u64,
    /// Response body bytes sent downstream.
    pub bytes_sent: u64,
    /// Milliseconds from the first request byte to the last response byte.
    pub duration: u64,
    /// Milliseconds the upstream took to answer (`x-envoy-upstream-service-time`).
    pub upstream_service_time: Option<u64>,
    /// The `x-forwarded-for` request header.
    pub x_forwarded_for: Option<String>,
    /// The `user-agent` request header.
    pub user_agent: Option<String>,
    /// The `x-request-id` request header.
    pub request_id: Option<String>,
    /// `:authority` (or `Host`).
    pub authority: Option<String>,
    /// The endpoint the request was last sent to (`ip:port`).
    pub upstream_host: Option<String>,
    /// The cluster name, e.g. `outbound|80|v1|reviews.default.svc.cluster.local`.
    pub upstream_cluster: Option<String>,
    /// The local address of the upstream connection.
    pub upstream_local_address: Option<SocketAddr>,
    /// The address the downstream connection was accepted on (original destination if redirected).
    pub downstream_local_address: Option<SocketAddr>,
    /// The downstream peer's address.
    pub downstream_remote_address: Option<SocketAddr>,
    /// SNI of the downstream TLS connection.
    pub requested_server_name: Option<String>,
    /// The name of the matched route.
    pub route_name: Option<String>,
}

impl AccessLogEntry {
    /// An entry for a request that started at `start_time`, with every other field empty:
    /// code 0, no flags, details `-`, zero bytes and durations, `null` addresses and headers.
    pub fn new(start_time: SystemTime) -> Self {
        AccessLogEntry {
            start_time,
            method: None,
            path: None,
            protocol: None,
            response_code: 0,
            response_flags: ResponseFlags::NONE,
            response_code_details: Cow::Borrowed("-"),
            connection_termination_details: None,
            upstream_transport_failure_reason: None,
            bytes_received: 0,
            bytes_sent: 0,
            duration: 0,
            upstream_service_time: None,
            x_forwarded_for: None,
            user_agent: None,
            request_id: None,
            authority: None,
            upstream_host: None,
            upstream_cluster: None,
            upstream_local_address: None,
            downstream_local_address: None,
            downstream_remote_address: None,
            requested_server_name: None,
            route_name: None,
        }
    }

    /// The entry as one line of JSON, without the trailing newline.
    pub fn to_json_line(&self) -> String {
        // Every field serializes infallibly (strings, integers, addresses, a formatted time).
        serde_json::to_string(self).unwrap_or_else(|error| {
            tracing::warn!(%error, "access log entry did not serialize");
            String::from("{}")
        })
    }
}

/// Whole milliseconds in `duration`, as Envoy prints `%DURATION%` (saturating).
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn serialize_time<S: Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_rfc3339_millis(*time))
}

/// Where access-log lines go. Cheap to clone; clones share the sink.
#[derive(Clone, Debug)]
pub struct AccessLog {
    sink: Sink,
}

#[derive(Clone, Debug)]
enum Sink {
    Disabled,
    Stdout,
    Memory(Arc<watch::Sender<Vec<String>>>),
}

impl AccessLog {
    /// Writes each entry as one line on stdout (Istio's default `/dev/stdout` file log).
    pub fn stdout() -> AccessLog {
        AccessLog { sink: Sink::Stdout }
    }

    /// Drops every entry.
    pub fn disabled() -> AccessLog {
        AccessLog {
            sink: Sink::Disabled,
        }
    }

    /// Keeps lines in memory, for tests; the [`MemoryLog`] reads them back.
    pub fn memory() -> (AccessLog, MemoryLog) {
        let sender = Arc::new(watch::Sender::new(Vec::new()));
        let log = AccessLog {
            sink: Sink::Memory(Arc::clone(&sender)),
        };
        (log, MemoryLog { lines: sender })
    }

    /// Whether entries go anywhere (callers may skip building entries when not).
    pub fn is_enabled(&self) -> bool {
        !matches!(self.sink, Sink::Disabled)
    }

    /// Writes `entry` as one JSON line. A line is written with one `write_all` under the stdout
    /// lock, so concurrent requests never interleave; write errors are reported, never raised.
    pub fn log(&self, entry: &AccessLogEntry) {
        match &self.sink {
            Sink::Disabled => {}
            Sink::Stdout => {
                let mut line = entry.to_json_line();
                line.push('\n');
                let mut out = std::io::stdout().lock();
                if let Err(error) = out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
                    tracing::debug!(%error, "access log write failed");
                }
            }
            Sink::Memory(lines) => {
                let line = entry.to_json_line();
                lines.send_modify(|lines| lines.push(line));
            }
        }
    }
}

/// Reads what an [`AccessLog::memory`] log received (lines without their `\n`).
#[derive(Clone, Debug)]
pub struct MemoryLog {
    lines: Arc<watch::Sender<Vec<String>>>,
}

impl MemoryLog {
    /// The lines logged so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.borrow().clone()
    }

    /// The lines logged so far, parsed as JSON.
    pub fn entries(&self) -> Vec<serde_json::Value> {
        self.lines
            .borrow()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until at least `count` lines were logged and returns all of them. Access-log lines
    /// are written when a response body finishes, which may be after the client saw the response,
    /// so tests await this instead of sleeping.
    pub async fn wait_for(&self, count: usize) -> Vec<String> {
        let mut receiver = self.lines.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        match receiver.wait_for(|lines| lines.len() >= count).await {
            Ok(lines) => lines.clone(),
            Err(_) => self.lines(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::telemetry::ResponseFlag;

    const KEYS: [&str; 24] = [
        "start_time",
        "method",
        "path",
        "protocol",
        "response_code",
        "response_flags",
        "response_code_details",
        "connection_termination_details",
        "upstream_transport_failure_reason",
        "bytes_received",
        "bytes_sent",
        "duration",
        "upstream_service_time",
        "x_forwarded_for",
        "user_agent",
        "request_id",
        "authority",
        "upstream_host",
        "upstream_cluster",
        "upstream_local_address",
        "downstream_local_address",
        "downstream_remote_address",
        "requested_server_name",
        "route_name",
    ];

    fn served() -> AccessLogEntry {
        AccessLogEntry {
            method: Some("GET".into()),
            path: Some("/productpage?u=1".into()),
            protocol: HttpProtocol::from_version(http::Version::HTTP_11),
            response_code: 200,
            response_code_details: "via_upstream".into(),
            bytes_received: 0,
            bytes_sent: 5183,
            duration: 12,
            upstream_service_time: Some(11),
            user_agent: Some("curl/8.5.0".into()),
            request_id: Some("5f5c8b2e-1".into()),
            authority: Some("productpage:9080".into()),
            upstream_host: Some("10.0.0.7:9080".into()),
            upstream_cluster: Some("outbound|9080||productpage.default.svc.cluster.local".into()),
            downstream_local_address: Some("127.0.0.1:15001".parse().unwrap()),
            downstream_remote_address: Some("127.0.0.1:50123".parse().unwrap()),
            route_name: Some("default".into()),
            ..AccessLogEntry::new(UNIX_EPOCH + Duration::from_millis(1_795_446_000_123))
        }
    }

    #[test]
    fn json_has_envoys_keys_and_values() {
        let value: serde_json::Value = serde_json::from_str(&served().to_json_line()).unwrap();
        let object = value.as_object().unwrap();
        let mut actual: Vec<&str> = object.keys().map(String::as_str).collect();
        let mut expected = KEYS.to_vec();
        actual.sort_unstable();
        expected.sort_unstable();
        assert_eq!(actual, expected);

        assert_eq!(value["start_time"], "2026-11-23T15:00:00.123Z");
        assert_eq!(value["method"], "GET");
        assert_eq!(value["protocol"], "HTTP/1.1");
        assert_eq!(value["response_code"], 200);
        assert_eq!(value["response_flags"], "-");
        assert_eq!(value["response_code_details"], "via_upstream");
        assert_eq!(value["upstream_host"], "10.0.0.7:9080");
        assert_eq!(value["upstream_service_time"], 11);
        assert_eq!(value["bytes_sent"], 5183);
        assert_eq!(value["downstream_remote_address"], "127.0.0.1:50123");
        assert!(value["connection_termination_details"].is_null());
        assert!(value["requested_server_name"].is_null());
        assert!(value["upstream_local_address"].is_null());
    }

    #[test]
    fn local_reply_has_flags_and_nulls() {
        let entry = AccessLogEntry {
            response_code: 503,
            response_flags: ResponseFlags::from(ResponseFlag::UpstreamRetryLimitExceeded)
                .with(ResponseFlag::UpstreamConnectionFailure),
            response_code_details: "upstream_reset_before_response_started{connection_failure}"
                .into(),
            protocol: Some(HttpProtocol::Http2),
            ..AccessLogEntry::new(UNIX_EPOCH)
        };
        let value: serde_json::Value = serde_json::from_str(&entry.to_json_line()).unwrap();
        assert_eq!(value["response_flags"], "UF,URX");
        assert_eq!(value["protocol"], "HTTP/2");
        assert!(value["upstream_host"].is_null());
        assert!(value["upstream_cluster"].is_null());
        assert!(value["upstream_service_time"].is_null());
        assert_eq!(value["start_time"], "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn one_line_per_entry() {
        let (log, lines) = AccessLog::memory();
        let mut entry = served();
        entry.path = Some("/with\nnewline".into());
        log.log(&entry);
        log.clone().log(&AccessLogEntry::new(UNIX_EPOCH));
        let got = lines.lines();
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|l| !l.contains('\n')));
        assert_eq!(lines.entries()[0]["path"], "/with\nnewline");
        assert_eq!(lines.entries()[1]["response_code"], 0);
    }

    #[test]
    fn disabled_logs_nothing_and_stdout_does_not_fail() {
        assert!(!AccessLog::disabled().is_enabled());
        AccessLog::disabled().log(&served());
        assert!(AccessLog::stdout().is_enabled());
        AccessLog::stdout().log(&served());
    }

    #[tokio::test]
    async fn wait_for_returns_once_lines_arrive() {
        let (log, lines) = AccessLog::memory();
        let waiter = tokio::spawn({
            let lines = lines.clone();
            async move { lines.wait_for(2).await }
        });
        log.log(&served());
        log.log(&served());
        assert_eq!(waiter.await.unwrap().len(), 2);
    }

    #[test]
    fn millis_truncates() {
        assert_eq!(millis(Duration::from_micros(12_999)), 12);
    }
}
