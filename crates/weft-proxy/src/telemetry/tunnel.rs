//! The access-log line of a CONNECT tunnel, written once when the tunnel closes. As Envoy logs a
//! terminated CONNECT, it is one request: method `CONNECT`, no path, the `host:port` authority,
//! the bytes the client sent through the tunnel as `bytes_received` and those sent back to it
//! as `bytes_sent`, the whole tunnel's duration. Refused tunnels (no 200) are ordinary local
//! replies, recorded by [`super::Telemetry::finish`].

use std::time::Duration;

use weft_api::mesh::ClusterKey;

use super::access_log::{AccessLogEntry, millis};
use super::record::{RequestRecord, Telemetry};
use super::response_flags::ResponseFlags;

/// How an accepted tunnel ended.
#[derive(Clone, Debug, Default)]
pub struct TunnelOutcome {
    /// The status the CONNECT was answered with (200 for a tunnel).
    pub response_code: u16,
    pub flags: ResponseFlags,
    /// `via_upstream`, or why no upstream was reached.
    pub details: std::borrow::Cow<'static, str>,
    pub cluster: Option<ClusterKey>,
    /// The endpoint connected to (`ip:port`).
    pub upstream_host: Option<String>,
    /// The route that chose the cluster (`<vs>.tcp.<i>` / `<vs>.tls.<i>`).
    pub route_name: Option<String>,
    /// The SNI of the client's TLS ClientHello, when one was read.
    pub requested_server_name: Option<String>,
    /// Bytes from the client into the tunnel.
    pub bytes_received: u64,
    /// Bytes from the tunnel back to the client.
    pub bytes_sent: u64,
    /// From the CONNECT's arrival to the tunnel's close.
    pub duration: Duration,
}

impl Telemetry {
    /// Writes the access-log line of a closed tunnel.
    pub fn tunnel_closed(&self, record: &RequestRecord, outcome: &TunnelOutcome) {
        if self.access_log.is_enabled() {
            self.access_log.log(&tunnel_entry(record, outcome));
        }
    }
}

fn tunnel_entry(record: &RequestRecord, outcome: &TunnelOutcome) -> AccessLogEntry {
    AccessLogEntry {
        method: Some(record.method.clone()),
        path: None,
        protocol: record.protocol,
        response_code: outcome.response_code,
        response_flags: outcome.flags,
        response_code_details: outcome.details.clone(),
        bytes_received: outcome.bytes_received,
        bytes_sent: outcome.bytes_sent,
        duration: millis(outcome.duration),
        user_agent: record.user_agent.clone(),
        request_id: record.request_id.clone(),
        authority: Some(record.authority.clone()).filter(|a| !a.is_empty()),
        upstream_host: outcome.upstream_host.clone(),
        upstream_cluster: outcome.cluster.as_ref().map(ToString::to_string),
        downstream_local_address: Some(record.downstream_local_address),
        downstream_remote_address: Some(record.downstream_remote_address),
        requested_server_name: outcome.requested_server_name.clone(),
        route_name: outcome.route_name.clone(),
        ..AccessLogEntry::new(record.start_time)
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use http::Request;

    use super::*;
    use crate::telemetry::access_log::AccessLog;
    use crate::telemetry::metrics::ProxyMetrics;
    use crate::telemetry::response_flags::ResponseFlag;

    #[test]
    fn one_line_with_the_tunnel_fields() {
        let (access_log, lines) = AccessLog::memory();
        let mut registry = prometheus_client::registry::Registry::default();
        let telemetry = Telemetry {
            access_log,
            metrics: ProxyMetrics::register(&mut registry),
        };
        let req = Request::connect("db.example.com:5432").body(()).unwrap();
        let any = "127.0.0.1:1".parse().unwrap();
        let record = RequestRecord::begin(SystemTime::UNIX_EPOCH, &req, any, any);
        let outcome = TunnelOutcome {
            response_code: 200,
            flags: ResponseFlag::UpstreamConnectionTermination.into(),
            details: "via_upstream".into(),
            cluster: Some(ClusterKey {
                host: "db.example.com".into(),
                subset: None,
                port: Some(5432),
            }),
            upstream_host: Some("10.0.0.1:5432".into()),
            route_name: Some("db.tcp.0".into()),
            requested_server_name: None,
            bytes_received: 11,
            bytes_sent: 22,
            duration: Duration::from_millis(1500),
        };
        telemetry.tunnel_closed(&record, &outcome);
        let entries = lines.entries();
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        assert_eq!(e["method"], "CONNECT");
        assert!(e["path"].is_null());
        assert_eq!(e["authority"], "db.example.com:5432");
        assert_eq!(e["upstream_cluster"], "outbound|5432||db.example.com");
        assert_eq!(e["upstream_host"], "10.0.0.1:5432");
        assert_eq!(
            (e["bytes_received"].as_u64(), e["bytes_sent"].as_u64()),
            (Some(11), Some(22))
        );
        assert_eq!(e["duration"], 1500);
        assert_eq!(e["response_code"], 200);
        assert_eq!(e["response_flags"], "UC");
        assert_eq!(e["route_name"], "db.tcp.0");
    }
}
