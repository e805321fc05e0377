//! The edge's recorder: [`RequestRecord`] collects what the listener learns about a request, and
//! [`Telemetry::finish`] wraps the response body so that, when it ends, exactly one access-log
//! line is written and the request metrics are recorded with whole byte counts and durations.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use http::{Request, Response};

use super::access_log::{AccessLog, AccessLogEntry, HttpProtocol, millis};
use super::counted_body::{BodyEnd, CountingBody, Ending, RecordedBody};
use super::metrics::{ProxyMetrics, Reporter, RequestLabels, RequestProtocol, UNKNOWN};
use super::response_flags::{ResponseFlag, ResponseFlags};
use crate::body::{ProxyBody, boxed};
use crate::listener::http::Workload;
use crate::route::forward::Outcome;

/// Cluster names that are not services (Istio reports them as the destination service name).
const PASSTHROUGH: &str = "PassthroughCluster";
const BLACKHOLE: &str = "BlackHoleCluster";

/// The access log and metrics every request is recorded into. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Telemetry {
    /// Where access-log lines go.
    pub access_log: AccessLog,
    /// The request metrics.
    pub metrics: ProxyMetrics,
}

/// How many request body bytes came in.
#[derive(Clone, Debug)]
enum RequestBytes {
    /// Not counted: the declared `content-length` (0 without one).
    Declared(u64),
    /// Counted as the body streamed through [`RequestRecord::count_request_body`].
    Counted(Arc<AtomicU64>),
}

/// What the edge knows about a request; filled as handling goes and consumed by
/// [`Telemetry::finish`].
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// When the request arrived.
    pub start_time: SystemTime,
    /// `:method`.
    pub method: String,
    /// `x-envoy-original-path`, else the path and query.
    pub path: String,
    /// The downstream protocol.
    pub protocol: Option<HttpProtocol>,
    /// `:authority` or `Host` (the listener may normalize it).
    pub authority: String,
    /// `x-request-id` (the listener generates one when missing).
    pub request_id: Option<String>,
    /// `user-agent`.
    pub user_agent: Option<String>,
    /// `x-forwarded-for`.
    pub x_forwarded_for: Option<String>,
    /// The matched route's name.
    pub route_name: Option<String>,
    /// SNI of the downstream TLS connection (inbound mTLS).
    pub requested_server_name: Option<String>,
    /// The destination subset's `version` label.
    pub destination_version: Option<String>,
    /// `grpc` when the request's content type is `application/grpc*`.
    pub request_protocol: RequestProtocol,
    /// The downstream peer.
    pub downstream_remote_address: SocketAddr,
    /// The address the request was accepted on.
    pub downstream_local_address: SocketAddr,
    request_bytes: RequestBytes,
}

fn header<B>(req: &Request<B>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl RequestRecord {
    /// Starts a record from the request's head.
    pub fn begin<B>(
        start_time: SystemTime,
        req: &Request<B>,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> RequestRecord {
        let path = header(req, "x-envoy-original-path").unwrap_or_else(|| {
            req.uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string()
        });
        let authority = req.uri().authority().map(|a| a.as_str().to_string());
        let is_grpc = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc"));
        let declared = header(req, "content-length").and_then(|v| v.parse().ok());
        RequestRecord {
            start_time,
            method: req.method().as_str().to_string(),
            path,
            protocol: HttpProtocol::from_version(req.version()),
            authority: authority
                .or_else(|| header(req, "host"))
                .unwrap_or_default(),
            request_id: header(req, "x-request-id"),
            user_agent: header(req, "user-agent"),
            x_forwarded_for: header(req, "x-forwarded-for"),
            route_name: None,
            requested_server_name: None,
            destination_version: None,
            request_protocol: if is_grpc {
                RequestProtocol::Grpc
            } else {
                RequestProtocol::Http
            },
            downstream_remote_address: peer,
            downstream_local_address: local,
            request_bytes: RequestBytes::Declared(declared.unwrap_or(0)),
        }
    }

    /// Wraps the request body so `bytes_received` is the number of bytes actually read
    /// (without it, the declared `content-length` is reported).
    pub fn count_request_body(&mut self, body: ProxyBody) -> ProxyBody {
        let counter = Arc::new(AtomicU64::new(0));
        self.request_bytes = RequestBytes::Counted(Arc::clone(&counter));
        boxed(CountingBody::new(body, counter))
    }

    fn bytes_received(&self) -> u64 {
        match &self.request_bytes {
            RequestBytes::Declared(n) => *n,
            RequestBytes::Counted(counter) => counter.load(Ordering::Relaxed),
        }
    }
}

/// Everything about the outcome that is recorded, without the response itself.
#[derive(Clone, Debug)]
struct Finished {
    status: u16,
    flags: ResponseFlags,
    details: std::borrow::Cow<'static, str>,
    cluster_name: Option<String>,
    cluster_host: Option<String>,
    vhost: Option<String>,
    upstream_host: Option<String>,
    upstream_time: Option<Duration>,
    source_workload: Arc<str>,
    source_namespace: Arc<str>,
    /// Set for requests the inbound listener served (`reporter="destination"`).
    inbound: Option<InboundLabels>,
}

/// The labels of a request served on the inbound side: who called (from the peer's mTLS
/// identity) and which workload of which service answered.
#[derive(Clone, Debug)]
pub struct InboundLabels {
    pub source_workload: Arc<str>,
    pub source_namespace: Arc<str>,
    /// The service host (`reviews.default.svc.cluster.local`), name and namespace.
    pub destination_service: Arc<str>,
    pub destination_service_name: Arc<str>,
    pub destination_service_namespace: Arc<str>,
    pub destination_version: Arc<str>,
}

fn known(value: &str) -> Arc<str> {
    Arc::from(if value.is_empty() { UNKNOWN } else { value })
}

impl Telemetry {
    /// Turns the outcome into the response sent downstream. When its body ends (or fails, or the
    /// client goes away), one access-log line is written and the request metrics are recorded.
    /// `vhost` is the matched virtual host's canonical name, if any.
    pub fn finish(
        &self,
        record: RequestRecord,
        outcome: Outcome,
        started: Instant,
        workload: &Workload,
        vhost: Option<String>,
    ) -> Response<ProxyBody> {
        let finished = Finished {
            status: outcome.response.status().as_u16(),
            flags: outcome.flags,
            details: outcome.details.clone(),
            cluster_name: outcome.cluster.as_ref().map(ToString::to_string),
            cluster_host: outcome.cluster.as_ref().map(|k| k.host.clone()),
            vhost,
            upstream_host: outcome.upstream_host.clone(),
            upstream_time: outcome.upstream_time,
            source_workload: known(&workload.name),
            source_namespace: known(&workload.namespace),
            inbound: None,
        };
        self.finish_recorded(record, outcome, finished, started)
    }

    /// As [`Self::finish`], for a request the inbound listener served: metrics are reported
    /// with `reporter="destination"` and `labels`; the cluster is `inbound|PORT||`.
    pub fn finish_inbound(
        &self,
        record: RequestRecord,
        outcome: Outcome,
        started: Instant,
        labels: InboundLabels,
        cluster_name: String,
    ) -> Response<ProxyBody> {
        let finished = Finished {
            status: outcome.response.status().as_u16(),
            flags: outcome.flags,
            details: outcome.details.clone(),
            cluster_name: Some(cluster_name),
            cluster_host: None,
            vhost: None,
            upstream_host: outcome.upstream_host.clone(),
            upstream_time: outcome.upstream_time,
            source_workload: labels.source_workload.clone(),
            source_namespace: labels.source_namespace.clone(),
            inbound: Some(labels),
        };
        self.finish_recorded(record, outcome, finished, started)
    }

    fn finish_recorded(
        &self,
        record: RequestRecord,
        outcome: Outcome,
        finished: Finished,
        started: Instant,
    ) -> Response<ProxyBody> {
        let telemetry = self.clone();
        let (parts, body) = outcome.response.into_parts();
        let body = RecordedBody::new(body, move |end| {
            telemetry.record(&record, finished, end, started.elapsed());
        });
        Response::from_parts(parts, boxed(body))
    }

    fn record(&self, record: &RequestRecord, mut finished: Finished, end: BodyEnd, took: Duration) {
        match end.ending {
            Ending::Complete => {}
            Ending::Failed => finished
                .flags
                .insert(ResponseFlag::UpstreamConnectionTermination),
            Ending::Dropped => finished
                .flags
                .insert(ResponseFlag::DownstreamConnectionTermination),
        }
        if self.access_log.is_enabled() {
            self.access_log
                .log(&entry(record, &finished, end.bytes, took));
        }
        let labels = labels(record, &finished);
        self.metrics
            .record(&labels, took, record.bytes_received(), end.bytes);
    }
}

fn entry(record: &RequestRecord, finished: &Finished, sent: u64, took: Duration) -> AccessLogEntry {
    AccessLogEntry {
        method: Some(record.method.clone()),
        path: Some(record.path.clone()),
        protocol: record.protocol,
        response_code: finished.status,
        response_flags: finished.flags,
        response_code_details: finished.details.clone(),
        bytes_received: record.bytes_received(),
        bytes_sent: sent,
        duration: millis(took),
        upstream_service_time: finished.upstream_time.map(millis),
        x_forwarded_for: record.x_forwarded_for.clone(),
        user_agent: record.user_agent.clone(),
        request_id: record.request_id.clone(),
        authority: Some(record.authority.clone()).filter(|a| !a.is_empty()),
        upstream_host: finished.upstream_host.clone(),
        upstream_cluster: finished.cluster_name.clone(),
        downstream_local_address: Some(record.downstream_local_address),
        downstream_remote_address: Some(record.downstream_remote_address),
        route_name: record.route_name.clone(),
        requested_server_name: record.requested_server_name.clone(),
        ..AccessLogEntry::new(record.start_time)
    }
}

fn labels(record: &RequestRecord, finished: &Finished) -> RequestLabels {
    if let Some(inbound) = &finished.inbound {
        return RequestLabels {
            reporter: Reporter::Destination,
            source_workload: inbound.source_workload.clone(),
            source_workload_namespace: inbound.source_namespace.clone(),
            destination_service: inbound.destination_service.clone(),
            destination_service_name: inbound.destination_service_name.clone(),
            destination_service_namespace: inbound.destination_service_namespace.clone(),
            destination_version: inbound.destination_version.clone(),
            request_protocol: record.request_protocol,
            response_code: finished.status,
            response_flags: finished.flags,
        };
    }
    let (service, name, namespace) = destination(record, finished);
    RequestLabels {
        reporter: Reporter::Source,
        source_workload: Arc::clone(&finished.source_workload),
        source_workload_namespace: Arc::clone(&finished.source_namespace),
        destination_service: service,
        destination_service_name: name,
        destination_service_namespace: namespace,
        destination_version: known(record.destination_version.as_deref().unwrap_or("")),
        request_protocol: record.request_protocol,
        response_code: finished.status,
        response_flags: finished.flags,
    }
}

/// `destination_service`, `_name` and `_namespace` as Istio reports them: the routed cluster's
/// service, else the matched virtual host, else the requested host; Kubernetes-style
/// `name.namespace.svc.<domain>` hosts split into name and namespace; passthrough and blackhole
/// traffic named after their cluster.
fn destination(record: &RequestRecord, finished: &Finished) -> (Arc<str>, Arc<str>, Arc<str>) {
    let cluster = finished.cluster_host.as_deref();
    let special = cluster.filter(|h| *h == PASSTHROUGH || *h == BLACKHOLE);
    let requested = host_of(&record.authority);
    let service = match cluster {
        Some(host) if special.is_none() => host,
        _ => finished.vhost.as_deref().unwrap_or(requested),
    };
    let mut labels = service.split('.');
    let (name, namespace) = match (labels.next(), labels.next(), labels.next()) {
        (Some(name), Some(namespace), Some("svc")) => (name, namespace),
        _ => (service, UNKNOWN),
    };
    (
        known(service),
        known(special.unwrap_or(name)),
        known(namespace),
    )
}

/// The host part of an authority (`host`, `host:port`, `[v6]:port`).
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;
    use http_body_util::BodyExt as _;
    use prometheus_client::registry::Registry;
    use weft_api::mesh::ClusterKey;

    use super::*;
    use crate::body::{empty, full};
    use crate::telemetry::access_log::MemoryLog;
    use crate::telemetry::metrics::encode;

    fn telemetry() -> (Telemetry, MemoryLog, Registry) {
        let mut registry = Registry::default();
        let metrics = ProxyMetrics::register(&mut registry);
        let (access_log, lines) = AccessLog::memory();
        (
            Telemetry {
                access_log,
                metrics,
            },
            lines,
            registry,
        )
    }

    fn workload() -> Workload {
        Workload {
            name: "productpage-v1".into(),
            namespace: "default".into(),
            ..Workload::default()
        }
    }

    fn record(authority: &str) -> RequestRecord {
        let req = Request::get("/reviews/1?x=y")
            .header("host", authority)
            .header("user-agent", "curl/8")
            .header("x-request-id", "abc")
            .header("content-length", "4")
            .body(())
            .unwrap();
        let peer = "127.0.0.1:40000".parse().unwrap();
        let local = "127.0.0.1:15001".parse().unwrap();
        RequestRecord::begin(SystemTime::UNIX_EPOCH, &req, peer, local)
    }

    fn forwarded(body: &'static str) -> Outcome {
        Outcome {
            response: Response::new(full(body)),
            flags: ResponseFlags::NONE,
            details: "via_upstream".into(),
            cluster: Some(ClusterKey {
                host: "reviews.default.svc.cluster.local".into(),
                subset: Some("v2".into()),
                port: Some(9080),
            }),
            upstream_host: Some("10.0.0.9:9080".into()),
            upstream_time: Some(Duration::from_millis(3)),
        }
    }

    #[tokio::test]
    async fn logs_and_counts_once_the_body_is_read() {
        let (telemetry, lines, registry) = telemetry();
        let mut record = record("reviews:9080");
        record.route_name = Some("reviews-v2".into());
        record.destination_version = Some("v2".into());
        let response = telemetry.finish(
            record,
            forwarded("hello"),
            Instant::now(),
            &workload(),
            None,
        );
        assert!(lines.lines().is_empty(), "logged before the body ended");
        assert_eq!(response.status(), StatusCode::OK);
        response.into_body().collect().await.unwrap();

        let entries = lines.entries();
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        assert_eq!(e["start_time"], "1970-01-01T00:00:00.000Z");
        assert_eq!(e["method"], "GET");
        assert_eq!(e["path"], "/reviews/1?x=y");
        assert_eq!(e["protocol"], "HTTP/1.1");
        assert_eq!(e["response_code"], 200);
        assert_eq!(e["response_flags"], "-");
        assert_eq!(e["response_code_details"], "via_upstream");
        assert_eq!(e["bytes_received"], 4);
        assert_eq!(e["bytes_sent"], 5);
        assert_eq!(e["upstream_service_time"], 3);
        assert_eq!(e["upstream_host"], "10.0.0.9:9080");
        assert_eq!(
            e["upstream_cluster"],
            "outbound|9080|v2|reviews.default.svc.cluster.local"
        );
        assert_eq!(e["authority"], "reviews:9080");
        assert_eq!(e["request_id"], "abc");
        assert_eq!(e["user_agent"], "curl/8");
        assert_eq!(e["route_name"], "reviews-v2");
        assert_eq!(e["downstream_remote_address"], "127.0.0.1:40000");

        let text = encode(&registry);
        let series = r#"istio_requests_total{reporter="source",source_workload="productpage-v1",source_workload_namespace="default",destination_service="reviews.default.svc.cluster.local",destination_service_name="reviews",destination_service_namespace="default",destination_version="v2",request_protocol="http",response_code="200",response_flags="-"} 1"#;
        assert!(text.contains(series), "{text}");
    }

    #[tokio::test]
    async fn a_client_that_goes_away_is_dc() {
        let (telemetry, lines, registry) = telemetry();
        let response = telemetry.finish(
            record("reviews"),
            forwarded("never read"),
            Instant::now(),
            &Workload::default(),
            None,
        );
        drop(response);
        let entries = lines.entries();
        assert_eq!(entries[0]["response_flags"], "DC");
        assert_eq!(entries[0]["bytes_sent"], 0);
        let text = encode(&registry);
        assert!(text.contains(r#"source_workload="unknown""#), "{text}");
        assert!(text.contains(r#"response_flags="DC"} 1"#), "{text}");
    }

    #[tokio::test]
    async fn local_replies_are_logged_with_their_flags() {
        let (telemetry, lines, registry) = telemetry();
        let mut outcome = forwarded("");
        outcome.response = Response::new(empty());
        *outcome.response.status_mut() = StatusCode::NOT_FOUND;
        outcome.flags = ResponseFlag::NoRouteFound.into();
        outcome.details = "route_not_found".into();
        outcome.cluster = None;
        outcome.upstream_host = None;
        outcome.upstream_time = None;
        let vhost = Some("ratings.default.svc.cluster.local".to_string());
        drop(telemetry.finish(
            record("ratings"),
            outcome,
            Instant::now(),
            &workload(),
            vhost,
        ));
        let e = &lines.entries()[0];
        assert_eq!(
            (e["response_code"].as_u64(), e["response_flags"].as_str()),
            (Some(404), Some("NR"))
        );
        assert_eq!(e["response_code_details"], "route_not_found");
        assert!(e["upstream_cluster"].is_null() && e["upstream_host"].is_null());
        let text = encode(&registry);
        assert!(text.contains(r#"destination_service="ratings.default.svc.cluster.local",destination_service_name="ratings",destination_service_namespace="default",destination_version="unknown""#), "{text}");
    }

    #[tokio::test]
    async fn counted_request_bodies_report_bytes_read() {
        let (telemetry, lines, _registry) = telemetry();
        let mut record = record("reviews");
        let body = record.count_request_body(full("123456789"));
        body.collect().await.unwrap();
        drop(telemetry.finish(record, forwarded(""), Instant::now(), &workload(), None));
        assert_eq!(lines.entries()[0]["bytes_received"], 9);
    }

    #[test]
    fn begin_reads_the_request_head() {
        let req = Request::post("http://cart.shop:8080/cart.Cart/Add")
            .version(http::Version::HTTP_2)
            .header("content-type", "application/grpc+proto")
            .header("x-envoy-original-path", "/original")
            .header("x-forwarded-for", "10.1.1.1")
            .body(())
            .unwrap();
        let any = "127.0.0.1:1".parse().unwrap();
        let record = RequestRecord::begin(SystemTime::UNIX_EPOCH, &req, any, any);
        assert_eq!(record.method, "POST");
        assert_eq!(record.path, "/original");
        assert_eq!(record.authority, "cart.shop:8080");
        assert_eq!(record.protocol, Some(HttpProtocol::Http2));
        assert_eq!(record.request_protocol, RequestProtocol::Grpc);
        assert_eq!(record.x_forwarded_for.as_deref(), Some("10.1.1.1"));
        assert_eq!(record.bytes_received(), 0);
    }

    fn finished(cluster: Option<&str>, vhost: Option<&str>) -> Finished {
        Finished {
            status: 200,
            flags: ResponseFlags::NONE,
            details: "via_upstream".into(),
            cluster_name: None,
            cluster_host: cluster.map(str::to_string),
            vhost: vhost.map(str::to_string),
            upstream_host: None,
            upstream_time: None,
            source_workload: known(""),
            source_namespace: known(""),
            inbound: None,
        }
    }

    fn names(authority: &str, cluster: Option<&str>, vhost: Option<&str>) -> [String; 3] {
        let (s, n, ns) = destination(&record(authority), &finished(cluster, vhost));
        [s.to_string(), n.to_string(), ns.to_string()]
    }

    #[test]
    fn destination_labels_follow_istio() {
        let k8s = "reviews.default.svc.cluster.local";
        assert_eq!(
            names("reviews", Some(k8s), None),
            [k8s, "reviews", "default"]
        );
        assert_eq!(names("x", None, Some(k8s)), [k8s, "reviews", "default"]);
        assert_eq!(
            names("httpbin.org:80", Some("PassthroughCluster"), None),
            ["httpbin.org", "PassthroughCluster", "unknown"]
        );
        assert_eq!(
            names("api.ext", Some("BlackHoleCluster"), None),
            ["api.ext", "BlackHoleCluster", "unknown"]
        );
        assert_eq!(names("[::1]:8080", None, None), ["::1", "::1", "unknown"]);
        assert_eq!(names("", None, None), ["unknown", "unknown", "unknown"]);
    }
}
