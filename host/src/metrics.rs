//! Prometheus metrics of the runner: counters and histograms fed by the host (HTTP traffic, backend
//! calls, key-value lookups) and by the component's access-log line, served as text format 0.0.4.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

/// Prometheus' default histogram buckets (seconds), as the Go proxy's `prometheus.DefBuckets`.
const SECONDS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Object sizes, as the Go proxy's `tempo_s3_shard_object_size_bytes` (1 KiB to 1 GiB).
const SIZES: &[f64] = &[1024.0, 10240.0, 102400.0, 1048576.0, 10485760.0, 104857600.0, 1073741824.0];
/// How many backend buckets one listing asked.
const FANOUT: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// What kind of series a family holds.
#[derive(Debug)]
pub enum Kind {
    Counter,
    Gauge,
    /// A histogram with these upper bounds (`+Inf` is implied).
    Histogram(&'static [f64]),
}

/// One metric family: its name, help text and kind.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
}

macro_rules! family {
    ($id:ident, $name:literal, $kind:expr, $help:literal) => {
        #[doc = $help]
        pub const $id: Family = Family { name: $name, help: $help, kind: $kind };
    };
}

// The Go proxy's families (same names, labels and meaning).
family!(HTTP_REQUESTS, "tempo_s3_shard_http_requests_total", Kind::Counter, "Total number of HTTP requests");
family!(HTTP_DURATION, "tempo_s3_shard_http_request_duration_seconds", Kind::Histogram(SECONDS), "HTTP request duration in seconds");
family!(S3_OPERATIONS, "tempo_s3_shard_s3_operations_total", Kind::Counter, "Total number of S3 operations (backend calls per bucket)");
family!(S3_DURATION, "tempo_s3_shard_s3_operation_duration_seconds", Kind::Histogram(SECONDS), "S3 operation duration in seconds (backend call until its response head)");
family!(OBJECT_SIZE, "tempo_s3_shard_object_size_bytes", Kind::Histogram(SIZES), "Size of objects processed in bytes");
family!(HASH_DISTRIBUTION, "tempo_s3_shard_hash_distribution_total", Kind::Counter, "Distribution of objects across buckets based on consistent hash");
family!(ACTIVE_CONNECTIONS, "tempo_s3_shard_active_connections", Kind::Gauge, "Number of active connections");
family!(BUCKET_OPERATIONS, "tempo_s3_shard_bucket_operations_total", Kind::Counter, "Total number of operations per bucket");
family!(LIST_OPERATIONS, "tempo_s3_shard_list_operations_total", Kind::Counter, "Total number of list operations across all buckets");
// Families the Go proxy did not have.
family!(REQUESTS, "tempo_s3_shard_requests_total", Kind::Counter, "Client requests by S3 operation and status class");
family!(REQUEST_DURATION, "tempo_s3_shard_request_duration_seconds", Kind::Histogram(SECONDS), "Client request duration by S3 operation, in seconds");
family!(REQUEST_BYTES, "tempo_s3_shard_request_bytes_total", Kind::Counter, "Request body bytes received from clients, by S3 operation");
family!(RESPONSE_BYTES, "tempo_s3_shard_response_bytes_total", Kind::Counter, "Response body bytes sent to clients, by S3 operation");
family!(BACKEND_TIMEOUTS, "tempo_s3_shard_backend_timeouts_total", Kind::Counter, "Backend calls that timed out, by bucket and operation");
family!(LIST_FANOUT, "tempo_s3_shard_list_fanout_buckets", Kind::Histogram(FANOUT), "Backend buckets asked per client listing");
family!(RING_CACHE, "tempo_s3_shard_ring_cache_lookups_total", Kind::Counter, "Ring-table lookups in the key-value store, by result (hit, miss)");
family!(CONFIG_ERRORS, "tempo_s3_shard_config_errors_total", Kind::Counter, "Requests answered with a configuration error");
family!(RESPONSES_CUT, "tempo_s3_shard_responses_cut_total", Kind::Counter, "Responses whose body was cut after the head went out, by S3 operation and reason");

/// Every family, in the order they are rendered.
pub const FAMILIES: &[&Family] = &[
    &HTTP_REQUESTS, &HTTP_DURATION, &S3_OPERATIONS, &S3_DURATION, &OBJECT_SIZE, &HASH_DISTRIBUTION,
    &ACTIVE_CONNECTIONS, &BUCKET_OPERATIONS, &LIST_OPERATIONS, &REQUESTS, &REQUEST_DURATION,
    &REQUEST_BYTES, &RESPONSE_BYTES, &BACKEND_TIMEOUTS, &LIST_FANOUT, &RING_CACHE, &CONFIG_ERRORS,
    &RESPONSES_CUT,
];

/// Label pairs of one series, in the order given.
type Labels = Vec<(&'static str, String)>;

/// One histogram series: counts per bucket (not cumulative), sum and count.
#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

/// The runner's metrics: every series by family name and labels.
#[derive(Debug, Default)]
pub struct Metrics {
    values: Mutex<BTreeMap<(&'static str, Labels), f64>>,
    histograms: Mutex<BTreeMap<(&'static str, Labels), Histogram>>,
    connections: AtomicI64,
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

impl Metrics {
    /// Add `by` to a counter series.
    pub fn add(&self, family: &'static Family, pairs: &[(&'static str, &str)], by: f64) {
        if let Ok(mut values) = self.values.lock() {
            *values.entry((family.name, labels(pairs))).or_default() += by;
        }
    }

    /// Record one observation in a histogram series.
    pub fn observe(&self, family: &'static Family, pairs: &[(&'static str, &str)], value: f64) {
        let Kind::Histogram(bounds) = family.kind else { return };
        let Ok(mut histograms) = self.histograms.lock() else { return };
        let h = histograms.entry((family.name, labels(pairs))).or_default();
        h.buckets.resize(bounds.len() + 1, 0);
        let slot = bounds.iter().position(|b| value <= *b).unwrap_or(bounds.len());
        h.buckets[slot] += 1;
        h.sum += value;
        h.count += 1;
    }

    /// A connection opened (`+1`) or closed (`-1`).
    pub fn connections(&self, delta: i64) {
        self.connections.fetch_add(delta, Ordering::Relaxed);
    }

    /// Every family in the Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let values = self.values.lock().map(|v| v.clone()).unwrap_or_default();
        let histograms = self.histograms.lock().map(|h| h.clone()).unwrap_or_default();
        let mut out = String::new();
        for family in FAMILIES {
            let kind = match family.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram(_) => "histogram",
            };
            let _ = writeln!(out, "# HELP {} {}\n# TYPE {} {kind}", family.name, family.help, family.name);
            if family.name == ACTIVE_CONNECTIONS.name {
                let _ = writeln!(out, "{} {}", family.name, self.connections.load(Ordering::Relaxed));
            }
            for ((_, labels), value) in values.range((family.name, Labels::new())..).take_while(|((n, _), _)| *n == family.name) {
                let _ = writeln!(out, "{}{} {}", family.name, render_labels(labels, None), number(*value));
            }
            if let Kind::Histogram(bounds) = family.kind {
                for ((_, labels), h) in histograms.range((family.name, Labels::new())..).take_while(|((n, _), _)| *n == family.name) {
                    render_histogram(&mut out, family.name, bounds, labels, h);
                }
            }
        }
        out
    }
}

fn render_histogram(out: &mut String, name: &str, bounds: &[f64], labels: &Labels, h: &Histogram) {
    let mut cumulative = 0;
    for (i, count) in h.buckets.iter().enumerate() {
        cumulative += count;
        let le = bounds.get(i).map_or_else(|| "+Inf".to_string(), |b| number(*b));
        let _ = writeln!(out, "{name}_bucket{} {cumulative}", render_labels(labels, Some(&le)));
    }
    let _ = writeln!(out, "{name}_sum{} {}", render_labels(labels, None), number(h.sum));
    let _ = writeln!(out, "{name}_count{} {}", render_labels(labels, None), h.count);
}

/// `{a="x",b="y"}` (with `le` last, for histogram buckets), or nothing without labels.
fn render_labels(labels: &Labels, le: Option<&str>) -> String {
    let mut pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
    if let Some(le) = le {
        pairs.push(format!("le=\"{le}\""));
    }
    if pairs.is_empty() {
        return String::new();
    }
    format!("{{{}}}", pairs.join(","))
}

/// A label value escaped as the text format requires (backslash, double quote, newline).
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A sample value: integers without a fraction, others as Rust prints them.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// The status class label of an HTTP status: `2xx`, `4xx`, …
pub fn status_class(status: u16) -> String {
    format!("{}xx", status / 100)
}

/// The Go proxy's operation label for an S3 operation (`get`, `put`, `delete`, `list`, `head`), and
/// snake case of the S3 name for operations it did not have (`upload_part`, …).
pub fn go_operation(name: &str) -> String {
    match name {
        "GetObject" => "get".into(),
        "PutObject" => "put".into(),
        "DeleteObject" => "delete".into(),
        "ListObjects" | "ListObjectsV2" => "list".into(),
        "HeadObject" => "head".into(),
        other => snake_case(other),
    }
}

fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The Go proxy's `path` label: `/metrics`, `/`, `/bucket` or `/bucket/*`.
pub fn go_path(path: &str) -> String {
    if path == "/metrics" {
        return path.into();
    }
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return "/".into();
    }
    match trimmed.split_once('/') {
        Some((bucket, _)) => format!("/{bucket}/*"),
        None => format!("/{trimmed}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_histograms() {
        let m = Metrics::default();
        m.add(&REQUESTS, &[("operation", "GetObject"), ("status_class", "2xx")], 1.0);
        m.add(&REQUESTS, &[("operation", "GetObject"), ("status_class", "2xx")], 2.0);
        m.observe(&REQUEST_DURATION, &[("operation", "GetObject")], 0.007);
        m.observe(&REQUEST_DURATION, &[("operation", "GetObject")], 20.0);
        let text = m.render();
        assert!(text.contains("tempo_s3_shard_requests_total{operation=\"GetObject\",status_class=\"2xx\"} 3\n"), "{text}");
        assert!(text.contains("tempo_s3_shard_request_duration_seconds_bucket{operation=\"GetObject\",le=\"0.005\"} 0\n"));
        assert!(text.contains("tempo_s3_shard_request_duration_seconds_bucket{operation=\"GetObject\",le=\"0.01\"} 1\n"));
        assert!(text.contains("tempo_s3_shard_request_duration_seconds_bucket{operation=\"GetObject\",le=\"+Inf\"} 2\n"));
        assert!(text.contains("tempo_s3_shard_request_duration_seconds_count{operation=\"GetObject\"} 2\n"));
        assert!(text.contains("# TYPE tempo_s3_shard_active_connections gauge\ntempo_s3_shard_active_connections 0\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::default();
        m.add(&LIST_OPERATIONS, &[("prefix", "a\"b\\c\nd")], 1.0);
        assert!(m.render().contains(r#"tempo_s3_shard_list_operations_total{prefix="a\"b\\c\nd"} 1"#));
    }

    #[test]
    fn go_labels() {
        assert_eq!(go_operation("ListObjectsV2"), "list");
        assert_eq!(go_operation("CompleteMultipartUpload"), "complete_multipart_upload");
        assert_eq!(go_path("/proxy-bucket/tenant/block/meta.json"), "/proxy-bucket/*");
        assert_eq!(go_path("/proxy-bucket/"), "/proxy-bucket");
        assert_eq!(go_path("/"), "/");
        assert_eq!(status_class(404), "4xx");
    }
}
