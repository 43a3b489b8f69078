//! What one client request did, for the metrics: its head and body size as the host saw them, the
//! component's access-log line (captured from its stdout), its backend calls and key-value lookups.

use crate::metrics::{self, go_operation, status_class, Metrics};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use serde::Deserialize;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tempo_s3_shard_core::route::{self, RequestParts};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// The most a component may print to stdout for one request (its access-log line is far smaller).
const STDOUT_CAPACITY: usize = 1 << 20;

/// The host's metrics plus one request's observations; cloned into everything that request touches.
#[derive(Clone)]
pub struct Observer {
    metrics: Arc<Metrics>,
    /// Whether the component's stdout (its access log) reaches the host's.
    echo: bool,
    track: Arc<Track>,
}

/// One request's observations.
struct Track {
    stdout: MemoryOutputPipe,
    bytes_in: AtomicU64,
    backend_lists: AtomicU64,
    head: Mutex<Option<Head>>,
}

/// The request line and sizes, taken as the request arrives.
struct Head {
    started: Instant,
    method: String,
    path: String,
    prefix: Option<String>,
    /// The object size the client declared (`x-amz-decoded-content-length`, else `content-length`).
    declared_size: Option<u64>,
}

/// The fields of the component's access-log line the metrics use.
#[derive(Deserialize, Default)]
struct AccessLine {
    #[serde(default)]
    operation: String,
    bucket: Option<String>,
    #[serde(default)]
    status: u16,
    bytes: Option<u64>,
    /// Why the body was cut (`client-stalled`, `client-gone`, `backend-stalled`, `backend-broke-off`).
    cut: Option<String>,
    error: Option<String>,
}

impl Track {
    fn new() -> Arc<Track> {
        Arc::new(Track {
            stdout: MemoryOutputPipe::new(STDOUT_CAPACITY),
            bytes_in: AtomicU64::new(0),
            backend_lists: AtomicU64::new(0),
            head: Mutex::new(None),
        })
    }
}

impl Observer {
    /// An observer feeding `metrics`; [`Observer::for_request`] makes the per-request ones.
    pub fn new(metrics: Arc<Metrics>) -> Observer {
        // Present (at 0) from the start, so an alert on it has a series to watch.
        metrics.add(&metrics::CONFIG_ERRORS, &[], 0.0);
        Observer { metrics, echo: true, track: Track::new() }
    }

    /// The metrics this observer feeds.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Stop (or keep) copying the component's stdout to the host's.
    pub fn set_echo(&mut self, echo: bool) {
        self.echo = echo;
    }

    /// Whether access-log lines reach stdout.
    pub fn echoes(&self) -> bool {
        self.echo
    }

    /// A fresh observer for one request, feeding the same metrics.
    pub fn for_request(&self) -> Observer {
        Observer { metrics: self.metrics.clone(), echo: self.echo, track: Track::new() }
    }

    /// The stream to give the request's instance as its stdout.
    pub fn stdout(&self) -> MemoryOutputPipe {
        self.track.stdout.clone()
    }

    /// Note the request's head and count its body's bytes as the component reads them.
    pub fn begin<B>(&self, req: hyper::Request<B>) -> hyper::Request<impl hyper::body::Body<Data = Bytes, Error = B::Error> + use<B>>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
    {
        let declared_size = ["x-amz-decoded-content-length", "content-length"]
            .iter()
            .find_map(|h| req.headers().get(*h)?.to_str().ok()?.parse().ok());
        let prefix = req.uri().query().and_then(|q| query_param(q, "prefix"));
        let head = Head { started: Instant::now(), method: req.method().to_string(), path: req.uri().path().to_string(), prefix, declared_size };
        if let Ok(mut slot) = self.track.head.lock() {
            *slot = Some(head);
        }
        let track = self.track.clone();
        req.map(move |body| {
            body.map_frame(move |frame| {
                if let Some(data) = frame.data_ref() {
                    track.bytes_in.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                frame
            })
        })
    }

    /// The request is done: copy its access log to stdout (when echoing) and record its metrics.
    pub fn finish(&self) {
        let out = self.track.stdout.contents();
        if self.echo && !out.is_empty() {
            use std::io::Write as _;
            let _ = std::io::stdout().lock().write_all(&out);
        }
        let line = out
            .split(|b| *b == b'\n')
            .filter_map(|l| serde_json::from_slice::<AccessLine>(l).ok())
            .next_back()
            .unwrap_or_else(|| AccessLine { operation: "Unknown".into(), status: 500, ..AccessLine::default() });
        let Some(head) = self.track.head.lock().ok().and_then(|mut h| h.take()) else { return };
        self.record(&head, &line);
    }

    fn record(&self, head: &Head, line: &AccessLine) {
        let m = &self.metrics;
        let seconds = head.started.elapsed().as_secs_f64();
        let op = line.operation.as_str();
        let path = metrics::go_path(&head.path);
        m.add(&metrics::HTTP_REQUESTS, &[("method", &head.method), ("path", &path), ("status_code", &line.status.to_string())], 1.0);
        m.observe(&metrics::HTTP_DURATION, &[("method", &head.method), ("path", &path)], seconds);
        m.add(&metrics::REQUESTS, &[("operation", op), ("status_class", &status_class(line.status))], 1.0);
        m.observe(&metrics::REQUEST_DURATION, &[("operation", op)], seconds);
        m.add(&metrics::REQUEST_BYTES, &[("operation", op)], self.track.bytes_in.load(Ordering::Relaxed) as f64);
        m.add(&metrics::RESPONSE_BYTES, &[("operation", op)], line.bytes.unwrap_or(0) as f64);
        if let Some(reason) = &line.cut {
            m.add(&metrics::RESPONSES_CUT, &[("operation", op), ("reason", reason)], 1.0);
        }
        if line.error.as_deref().is_some_and(|e| e.starts_with(tempo_s3_shard_core::config::MISCONFIGURED)) {
            m.add(&metrics::CONFIG_ERRORS, &[], 1.0);
        }
        let ok = (200..300).contains(&line.status);
        match op {
            "ListObjects" | "ListObjectsV2" => {
                m.add(&metrics::LIST_OPERATIONS, &[("prefix", head.prefix.as_deref().unwrap_or(""))], 1.0);
                m.observe(&metrics::LIST_FANOUT, &[], self.track.backend_lists.load(Ordering::Relaxed) as f64);
            }
            "PutObject" if ok => m.observe(&metrics::OBJECT_SIZE, &[("operation", "put")], head.declared_size.unwrap_or(0) as f64),
            "GetObject" if ok => m.observe(&metrics::OBJECT_SIZE, &[("operation", "get")], line.bytes.unwrap_or(0) as f64),
            _ => {}
        }
        if let (true, "PutObject" | "CopyObject" | "CompleteMultipartUpload", Some(bucket)) = (ok, op, &line.bucket) {
            m.add(&metrics::HASH_DISTRIBUTION, &[("bucket", bucket)], 1.0);
        }
    }

    /// A ring-table lookup in the key-value store found a table (`hit`) or not.
    pub fn ring_cache(&self, found: bool) {
        self.metrics.add(&metrics::RING_CACHE, &[("result", if found { "hit" } else { "miss" })], 1.0);
    }

    /// Start observing a backend call (its bucket is the path's first segment).
    pub fn backend_call<B>(&self, request: &hyper::Request<B>) -> BackendCall {
        let (bucket, operation) = backend_target(request);
        if operation == "list" {
            self.track.backend_lists.fetch_add(1, Ordering::Relaxed);
        }
        BackendCall { metrics: self.metrics.clone(), bucket, operation }
    }
}

/// One backend call being observed.
pub struct BackendCall {
    metrics: Arc<Metrics>,
    bucket: String,
    operation: String,
}

impl BackendCall {
    /// Run `send` and record its result and duration (until the response head).
    pub async fn observe<B, T>(
        self,
        send: Box<dyn Future<Output = wasmtime_wasi_http::Result<(hyper::Response<B>, T)>> + Send>,
    ) -> wasmtime_wasi_http::Result<(hyper::Response<B>, T)> {
        let started = Instant::now();
        let result = Box::into_pin(send).await;
        let status = match &result {
            Ok((response, _)) if response.status().as_u16() < 400 => "success",
            _ => "error",
        };
        let m = &self.metrics;
        let (op, bucket) = (("operation", self.operation.as_str()), ("bucket", self.bucket.as_str()));
        m.add(&metrics::S3_OPERATIONS, &[op, bucket, ("status", status)], 1.0);
        m.observe(&metrics::S3_DURATION, &[op, bucket], started.elapsed().as_secs_f64());
        if status == "success" {
            m.add(&metrics::BUCKET_OPERATIONS, &[bucket, op], 1.0);
        }
        if result.as_ref().err().is_some_and(is_timeout) {
            m.add(&metrics::BACKEND_TIMEOUTS, &[bucket, op], 1.0);
        }
        result
    }
}

/// Whether a failed backend call ran out of time (DNS, connect, first byte, read or write).
fn is_timeout(err: &wasmtime_wasi_http::Error) -> bool {
    use wasmtime_wasi_http::Error::*;
    matches!(err, DnsTimeout | ConnectionTimeout | ConnectionReadTimeout | ConnectionWriteTimeout | HttpResponseTimeout)
}

/// The backend bucket (the path's first segment) and the Go proxy's operation label of a backend call.
fn backend_target<B>(request: &hyper::Request<B>) -> (String, String) {
    let path = request.uri().path();
    let bucket = path.trim_start_matches('/').split('/').next().unwrap_or("").to_string();
    let copy = request.headers().get("x-amz-copy-source").map(|_| ("x-amz-copy-source".to_string(), "x".to_string()));
    let target = request.uri().path_and_query().map_or(path, |pq| pq.as_str());
    let parts = RequestParts::new(request.method().as_str(), target, copy.into_iter().collect());
    let operation = match route::parse(&parts, &bucket) {
        Ok(route) => go_operation(route.op.name()),
        Err(_) => request.method().as_str().to_ascii_lowercase(),
    };
    (bucket, operation)
}

/// The decoded value of `name` in a raw query string.
fn query_param(query: &str, name: &str) -> Option<String> {
    tempo_s3_shard_core::codec::decode_query(query).ok()?.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, uri: &str) -> hyper::Request<()> {
        hyper::Request::builder().method(method).uri(uri).body(()).unwrap()
    }

    #[test]
    fn names_backend_calls_as_the_go_proxy() {
        assert_eq!(backend_target(&request("GET", "http://h:9000/shard2/t/b/data?partNumber=1")), ("shard2".into(), "get".into()));
        assert_eq!(backend_target(&request("GET", "http://h:9000/shard1?list-type=2&prefix=t%2F")), ("shard1".into(), "list".into()));
        assert_eq!(backend_target(&request("PUT", "http://h/shard3/k?partNumber=2&uploadId=u")).1, "upload_part");
        assert_eq!(backend_target(&request("HEAD", "http://h/shard3")).1, "head_bucket");
    }

    #[test]
    fn finds_the_prefix() {
        assert_eq!(query_param("list-type=2&prefix=a%2Fb%2F&delimiter=", "prefix").as_deref(), Some("a/b/"));
        assert_eq!(query_param("list-type=2", "prefix"), None);
    }
}
