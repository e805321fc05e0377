//! Istio's standard HTTP metrics (`istio_requests_total`, `istio_request_duration_milliseconds`,
//! `istio_request_bytes`, `istio_response_bytes`) with Istio's label names, registered into a
//! registry the caller passes in, and the OpenMetrics text encoding served on the admin port.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::response_flags::ResponseFlags;

/// The value Istio puts in a label it cannot fill (e.g. `destination_version` with no subset).
pub const UNKNOWN: &str = "unknown";

/// The Content-Type of [`encode`]'s output.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Envoy's default histogram buckets, which Istio uses for durations (ms) and sizes (bytes).
pub const ISTIO_BUCKETS: [f64; 19] = [
    0.5,
    1.0,
    5.0,
    10.0,
    25.0,
    50.0,
    100.0,
    250.0,
    500.0,
    1_000.0,
    2_500.0,
    5_000.0,
    10_000.0,
    30_000.0,
    60_000.0,
    300_000.0,
    600_000.0,
    1_800_000.0,
    3_600_000.0,
];

/// Which proxy reports the request: the client side (`source`) or the server side (`destination`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reporter {
    /// The client's sidecar (outbound) or a gateway.
    Source,
    /// The server's sidecar (inbound).
    Destination,
}

/// `request_protocol`: `http` or `grpc` (a request with `content-type: application/grpc*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestProtocol {
    /// Plain HTTP/1.x or HTTP/2.
    Http,
    /// gRPC.
    Grpc,
}

impl EncodeLabelValue for Reporter {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        let value = match self {
            Self::Source => "source",
            Self::Destination => "destination",
        };
        EncodeLabelValue::encode(&value, encoder)
    }
}

impl EncodeLabelValue for RequestProtocol {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        let value = match self {
            Self::Http => "http",
            Self::Grpc => "grpc",
        };
        EncodeLabelValue::encode(&value, encoder)
    }
}

/// The labels of one request's metrics: a bounded subset of Istio's standard labels. The string
/// labels come from config (workload, service, subset), never from request data, and are `Arc`s
/// so that building a label set per request does not allocate.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    /// `source` or `destination`.
    pub reporter: Reporter,
    /// The client workload's name (or [`UNKNOWN`]).
    pub source_workload: Arc<str>,
    /// The client workload's namespace (or [`UNKNOWN`]).
    pub source_workload_namespace: Arc<str>,
    /// The destination service's FQDN host, e.g. `reviews.default.svc.cluster.local`.
    pub destination_service: Arc<str>,
    /// The destination service's short name, e.g. `reviews`.
    pub destination_service_name: Arc<str>,
    /// The destination service's namespace.
    pub destination_service_namespace: Arc<str>,
    /// The destination subset's `version` label (or [`UNKNOWN`]).
    pub destination_version: Arc<str>,
    /// `http` or `grpc`.
    pub request_protocol: RequestProtocol,
    /// The status sent downstream; 0 when none was.
    pub response_code: u16,
    /// Envoy's response flags (`-` when none).
    pub response_flags: ResponseFlags,
}

fn istio_histogram() -> Histogram {
    Histogram::new(ISTIO_BUCKETS)
}

type HistogramFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

/// The proxy's request metrics. Cheap to clone: clones share the underlying series.
#[derive(Clone, Debug)]
pub struct ProxyMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: HistogramFamily,
    request_bytes: HistogramFamily,
    response_bytes: HistogramFamily,
}

impl ProxyMetrics {
    /// Creates the metrics and registers them into `registry`.
    pub fn register(registry: &mut Registry) -> ProxyMetrics {
        let metrics = ProxyMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(istio_histogram as fn() -> Histogram),
            request_bytes: Family::new_with_constructor(istio_histogram as fn() -> Histogram),
            response_bytes: Family::new_with_constructor(istio_histogram as fn() -> Histogram),
        };
        // prometheus-client appends `_total` to counters: exposed as `istio_requests_total`.
        registry.register(
            "istio_requests",
            "Requests handled by the proxy",
            metrics.requests.clone(),
        );
        registry.register(
            "istio_request_duration_milliseconds",
            "Request duration in milliseconds",
            metrics.duration.clone(),
        );
        registry.register(
            "istio_request_bytes",
            "Request body sizes in bytes",
            metrics.request_bytes.clone(),
        );
        registry.register(
            "istio_response_bytes",
            "Response body sizes in bytes",
            metrics.response_bytes.clone(),
        );
        metrics
    }

    /// Records one finished request.
    pub fn record(
        &self,
        labels: &RequestLabels,
        duration: Duration,
        request_bytes: u64,
        response_bytes: u64,
    ) {
        self.requests.get_or_create(labels).inc();
        self.duration
            .get_or_create(labels)
            .observe(duration.as_secs_f64() * 1_000.0);
        // Precision loss above 2^53 bytes is irrelevant for bucketing.
        self.request_bytes
            .get_or_create(labels)
            .observe(request_bytes as f64);
        self.response_bytes
            .get_or_create(labels)
            .observe(response_bytes as f64);
    }
}

/// Encodes every metric in `registry` in the OpenMetrics text format (ending with `# EOF`),
/// to be served with [`OPENMETRICS_CONTENT_TYPE`].
pub fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail; an error would come from a metric's own encoder.
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, registry) {
        tracing::warn!(%error, "metrics encoding failed");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::ResponseFlag;

    fn labels(code: u16, flags: ResponseFlags) -> RequestLabels {
        RequestLabels {
            reporter: Reporter::Source,
            source_workload: "productpage-v1".into(),
            source_workload_namespace: "default".into(),
            destination_service: "reviews.default.svc.cluster.local".into(),
            destination_service_name: "reviews".into(),
            destination_service_namespace: "default".into(),
            destination_version: UNKNOWN.into(),
            request_protocol: RequestProtocol::Http,
            response_code: code,
            response_flags: flags,
        }
    }

    const LABELS_200: &str = r#"reporter="source",source_workload="productpage-v1",source_workload_namespace="default",destination_service="reviews.default.svc.cluster.local",destination_service_name="reviews",destination_service_namespace="default",destination_version="unknown",request_protocol="http",response_code="200",response_flags="-""#;

    #[test]
    fn counter_is_exposed_as_istio_requests_total() {
        let mut registry = Registry::default();
        let metrics = ProxyMetrics::register(&mut registry);
        metrics.record(
            &labels(200, ResponseFlags::NONE),
            Duration::from_millis(3),
            10,
            20,
        );
        let text = encode(&registry);
        assert!(text.contains("# TYPE istio_requests counter\n"), "{text}");
        assert!(
            text.contains(&format!("istio_requests_total{{{LABELS_200}}} 1\n")),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn histograms_fill_istio_buckets() {
        let mut registry = Registry::default();
        let metrics = ProxyMetrics::register(&mut registry);
        metrics.record(
            &labels(200, ResponseFlags::NONE),
            Duration::from_millis(3),
            10,
            2_000,
        );
        let text = encode(&registry);
        let bucket = |name: &str, le: &str| format!("{name}_bucket{{le=\"{le}\",{LABELS_200}}}");
        let duration = "istio_request_duration_milliseconds";
        assert!(text.contains("# TYPE istio_request_duration_milliseconds histogram\n"));
        assert!(
            text.contains(&format!("{} 0\n", bucket(duration, "1.0"))),
            "{text}"
        );
        assert!(
            text.contains(&format!("{} 1\n", bucket(duration, "5.0"))),
            "{text}"
        );
        assert!(
            text.contains(&format!("{} 1\n", bucket(duration, "3600000.0"))),
            "{text}"
        );
        assert!(
            text.contains(&format!("{} 1\n", bucket(duration, "+Inf"))),
            "{text}"
        );
        assert!(
            text.contains(&format!("{duration}_count{{{LABELS_200}}} 1\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("{duration}_sum{{{LABELS_200}}} 3.0\n")),
            "{text}"
        );
        assert!(text.contains(&format!("{} 1\n", bucket("istio_request_bytes", "10.0"))));
        assert!(text.contains(&format!("{} 0\n", bucket("istio_response_bytes", "1000.0"))));
        assert!(text.contains(&format!("{} 1\n", bucket("istio_response_bytes", "2500.0"))));
    }

    #[test]
    fn series_are_split_by_code_and_flags() {
        let mut registry = Registry::default();
        let metrics = ProxyMetrics::register(&mut registry);
        let flags = ResponseFlags::from(ResponseFlag::UpstreamConnectionFailure)
            .with(ResponseFlag::UpstreamRetryLimitExceeded);
        let clone = metrics.clone();
        for _ in 0..2 {
            clone.record(&labels(503, flags), Duration::ZERO, 0, 0);
        }
        metrics.record(&labels(200, ResponseFlags::NONE), Duration::ZERO, 0, 0);
        let text = encode(&registry);
        let failed = r#"response_code="503",response_flags="UF,URX"} 2"#;
        assert!(text.contains(failed), "{text}");
        assert!(
            text.contains(&format!("istio_requests_total{{{LABELS_200}}} 1\n")),
            "{text}"
        );
    }

    #[test]
    fn grpc_and_destination_reporter_labels() {
        let mut registry = Registry::default();
        let metrics = ProxyMetrics::register(&mut registry);
        let mut grpc = labels(200, ResponseFlags::NONE);
        grpc.reporter = Reporter::Destination;
        grpc.request_protocol = RequestProtocol::Grpc;
        metrics.record(&grpc, Duration::ZERO, 0, 0);
        let text = encode(&registry);
        assert!(
            text.contains(r#"istio_requests_total{reporter="destination","#),
            "{text}"
        );
        assert!(text.contains(r#"request_protocol="grpc""#), "{text}");
    }
}
