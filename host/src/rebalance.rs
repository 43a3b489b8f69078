//! `rebalance`: moves every object that is not on its ring owner there (server-side copy, verify, delete), resumably.
//!
//! After a ring change (a bucket added or removed) the proxy reads with fallback to `previous_buckets`,
//! so nothing is lost, but the objects the ring now places elsewhere stay where they were. This tool
//! lists every bucket of the current and the previous ring and, for each object not on its owner:
//!
//! 1. HEADs the object where it is and at its owner. Owner without it: CopyObject (same endpoint,
//!    `x-amz-metadata-directive: COPY`, tags copied by default, `x-amz-copy-source-if-match` pinned to
//!    the ETag just read), or a multipart UploadPartCopy above 5 GiB (CopyObject's limit), then HEADs
//!    the copy and checks its size and ETag.
//! 2. Deletes the misplaced copy only once the owner holds a verified copy.
//!
//! Every step is idempotent, so a run killed at any point is simply run again: an owner already holding
//! an identical object (same size and ETag) means "copied, not yet deleted", and the stray is deleted.
//! An owner holding a *different* object (a newer write through the proxy) is kept; the stray is deleted
//! if it is older by LastModified, otherwise the pair is reported as a conflict and both are left.
//!
//! Run it once every proxy serves the new ring (a proxy still on the old ring writes to old owners).

use anyhow::{anyhow, bail, Context as _};
use bytes::Bytes;
use futures::StreamExt as _;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempo_s3_shard_core::backend;
use tempo_s3_shard_core::clock;
use tempo_s3_shard_core::codec;
use tempo_s3_shard_core::config::{Config, Scheme};
use tempo_s3_shard_core::ring::Ring;
use tempo_s3_shard_core::route::header;
use tempo_s3_shard_core::sigv4::payload::EMPTY_SHA256;
use tempo_s3_shard_core::sigv4::sign::sha256_hex;
use tempo_s3_shard_core::types::{CompletedPart, ObjectEntry};
use tempo_s3_shard_core::xml;

/// CopyObject copies at most 5 GiB; larger objects are copied part by part.
pub const MAX_COPY_OBJECT: u64 = 5 * 1024 * 1024 * 1024;
/// Smallest part of a multipart copy (S3 allows 10,000 parts of 5 MiB to 5 GiB).
const MIN_PART: u64 = 5 * 1024 * 1024;

/// Where the backend buckets are and how to sign for them.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `http(s)://host[:port]` or `host[:port]` (then `use_ssl` decides), as the `endpoint` variable.
    pub endpoint: String,
    pub use_ssl: bool,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Extra trusted CA certificates (DER) for an https endpoint, besides the web PKI roots.
    pub ca_roots: Vec<Vec<u8>>,
}

/// What to do.
#[derive(Clone, Debug)]
pub struct Options {
    /// The ring objects must end up on, in configuration order (as the proxy's `buckets`).
    pub buckets: Vec<String>,
    /// Buckets of the previous ring, scanned too (a removed bucket is emptied into the others).
    pub previous_buckets: Vec<String>,
    /// Only report what would move.
    pub dry_run: bool,
    /// Stop after this many misplaced keys were handled (staged runs; tests of interrupted runs).
    pub max_moves: Option<usize>,
    /// Keys handled at once.
    pub concurrency: usize,
    /// Objects larger than this are copied with UploadPartCopy (at most [`MAX_COPY_OBJECT`]).
    pub multipart_threshold: u64,
    /// Part size of a multipart copy (raised as needed to stay within 10,000 parts).
    pub part_size: u64,
    /// Keys per ListObjectsV2 page (1 to 1000).
    pub page_size: u32,
    /// Print progress (and, in a dry run, every planned move) to stdout.
    pub verbose: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            buckets: vec![],
            previous_buckets: vec![],
            dry_run: false,
            max_moves: None,
            concurrency: 8,
            multipart_threshold: MAX_COPY_OBJECT,
            part_size: 512 * 1024 * 1024,
            page_size: 1000,
            verbose: false,
        }
    }
}

/// Live counters of a run, readable while it goes (progress output, tests that interrupt a run).
#[derive(Debug, Default)]
pub struct Progress {
    /// Misplaced keys handled so far (moved, already at the owner, superseded, conflicts, errors).
    pub handled: AtomicU64,
    /// Objects copied to their owner and deleted from the wrong bucket.
    pub moved: AtomicU64,
    pub moved_bytes: AtomicU64,
}

/// A misplaced object left alone because the owner holds a different object that is not newer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub key: String,
    pub stray_bucket: String,
    pub owner_bucket: String,
    pub reason: String,
}

/// What a run found and did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub dry_run: bool,
    /// Objects and bytes listed per bucket.
    pub listed: BTreeMap<String, (u64, u64)>,
    pub total_objects: u64,
    pub total_bytes: u64,
    /// Objects not on their ring owner when listed.
    pub misplaced_objects: u64,
    pub misplaced_bytes: u64,
    /// (from, to) -> (objects, bytes) of the misplaced objects.
    pub routes: BTreeMap<(String, String), (u64, u64)>,
    /// Copied to the owner, verified, and deleted from the wrong bucket.
    pub moved: u64,
    pub moved_bytes: u64,
    /// The owner already held an identical copy (an earlier run stopped before deleting): stray deleted.
    pub already_at_owner: u64,
    /// The owner held a different, newer object: the older stray was deleted.
    pub superseded: u64,
    /// Gone from the wrong bucket by the time it was handled (another run, a client delete).
    pub vanished: u64,
    pub conflicts: Vec<Conflict>,
    /// Objects that could not be handled (left where they were; run again).
    pub errors: Vec<String>,
    /// `max_moves` stopped the run before every misplaced key was handled.
    pub stopped_early: bool,
}

impl Report {
    /// True when every misplaced object is now on its owner.
    pub fn complete(&self) -> bool {
        !self.dry_run && !self.stopped_early && self.conflicts.is_empty() && self.errors.is_empty()
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Bytes in a human unit.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bucket, (n, bytes)) in &self.listed {
            writeln!(f, "  {bucket}: {n} objects, {}", human_bytes(*bytes))?;
        }
        writeln!(
            f,
            "{} of {} objects ({:.1}%) and {} of {} ({:.1}%) are not on their ring owner{}",
            self.misplaced_objects,
            self.total_objects,
            percent(self.misplaced_objects, self.total_objects),
            human_bytes(self.misplaced_bytes),
            human_bytes(self.total_bytes),
            percent(self.misplaced_bytes, self.total_bytes),
            if self.dry_run { " (dry run: nothing moved)" } else { "" },
        )?;
        for ((from, to), (n, bytes)) in &self.routes {
            writeln!(f, "  {from} -> {to}: {n} objects, {}", human_bytes(*bytes))?;
        }
        if !self.dry_run {
            writeln!(
                f,
                "moved {} objects ({}); {} already at their owner, {} superseded by a newer object at the owner, {} vanished",
                self.moved,
                human_bytes(self.moved_bytes),
                self.already_at_owner,
                self.superseded,
                self.vanished
            )?;
        }
        for c in &self.conflicts {
            writeln!(f, "CONFLICT {}: {} (in {}, owner {}); both copies left", c.key, c.reason, c.stray_bucket, c.owner_bucket)?;
        }
        for e in &self.errors {
            writeln!(f, "ERROR {e}")?;
        }
        if self.stopped_early {
            writeln!(f, "stopped after --max-moves; run again to continue")?;
        }
        Ok(())
    }
}

/// A bucket list as the proxy reads `buckets`: comma-separated or a JSON array, validated.
pub fn parse_bucket_list(value: &str) -> anyhow::Result<Vec<String>> {
    let cfg = Config::from_lookup(|name| match name {
        "buckets" => Some(value.to_string()),
        "endpoint" => Some("http://127.0.0.1".into()),
        "allow_anonymous" => Some("true".into()),
        _ => None,
    })
    .map_err(|e| anyhow!("{}", e.message))?;
    Ok(cfg.buckets)
}

/// The core configuration that signs requests for `buckets` on `endpoint`.
fn core_config(ep: &Endpoint, buckets: &[String]) -> anyhow::Result<Config> {
    let list = serde_json::to_string(buckets)?;
    Config::from_lookup(|name| match name {
        "buckets" => Some(list.clone()),
        "endpoint" => Some(ep.endpoint.clone()),
        "use_ssl" => Some(ep.use_ssl.to_string()),
        "region" => Some(ep.region.clone()),
        "access_key_id" => Some(ep.access_key_id.clone()),
        "secret_access_key" => Some(ep.secret_access_key.clone()),
        "allow_anonymous" => Some("true".into()),
        _ => None,
    })
    .map_err(|e| anyhow!("{e}"))
}

/// `2024-05-01T12:34:56.789Z` (S3 listings) as Unix seconds.
fn parse_iso8601(s: &str) -> Option<u64> {
    let head = s.get(..19)?;
    let compact: String = head.chars().filter(|c| *c != '-' && *c != ':').collect();
    clock::parse_amz_date(&format!("{compact}Z"))
}

/// An ETag without quotes or a weak prefix, for comparisons.
fn etag_core(etag: &str) -> &str {
    let e = etag.trim();
    let e = e.strip_prefix("W/").unwrap_or(e);
    e.trim_matches('"')
}

fn is_multipart_etag(etag: &str) -> bool {
    etag_core(etag).contains('-')
}

/// The text of the first `<tag>` element, entities decoded (ETag, UploadId).
fn xml_text(body: &[u8], tag: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{tag}>"))? + start;
    Some(
        text[start..end]
            .replace("&quot;", "\"")
            .replace("&#34;", "\"")
            .replace("&apos;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// A backend answer, read whole (every answer here is small).
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// `Code: message` of an S3 error answer, or the status.
    fn describe(&self) -> String {
        match xml::parse_error(&self.body) {
            Some((code, msg)) => format!("{} {code}: {msg}", self.status),
            None => format!("HTTP {}", self.status),
        }
    }

    /// An S3 error document, also inside a 200 (CopyObject and CompleteMultipartUpload may fail late).
    fn error(&self) -> Option<String> {
        if !(200..300).contains(&self.status) {
            return Some(self.describe());
        }
        xml::parse_error(&self.body).map(|(code, msg)| format!("{code}: {msg}"))
    }
}

/// The object a HEAD describes.
#[derive(Clone, Debug)]
struct Head {
    size: u64,
    etag: String,
    last_modified: Option<u64>,
    headers: Vec<(String, String)>,
}

/// Signed requests to the backend endpoint: a plain hyper-util client over HTTP; over HTTPS, pooled
/// HTTP/1 connections over rustls (web PKI roots plus the operator's `ca_roots`).
struct S3 {
    cfg: Config,
    client: Client<HttpConnector, Full<Bytes>>,
    tls: Option<Tls>,
}

/// HTTPS: the client configuration and idle connections.
struct Tls {
    config: Arc<rustls::ClientConfig>,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl Tls {
    /// An idle connection that is still usable, or a new one to `host:port`.
    async fn connection(&self, host: &str, port: u16) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match idle {
                Some(mut sender) => {
                    if sender.ready().await.is_ok() {
                        return Ok(sender);
                    }
                }
                None => break,
            }
        }
        let tcp = tokio::net::TcpStream::connect((host, port)).await.with_context(|| format!("cannot connect to {host}:{port}"))?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from(host.to_string()).with_context(|| format!("{host} is not a valid TLS server name"))?;
        let stream = tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS to {host}:{port} failed (is its CA trusted? see --ca-cert)"))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.context("HTTP/1 handshake")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// One exchange on a pooled connection; the connection returns to the pool once the answer is read.
    async fn exchange(&self, mut request: http::Request<Full<Bytes>>, authority: &str) -> anyhow::Result<Answer> {
        let uri = request.uri().clone();
        let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
        let mut sender = self.connection(&host, uri.port_u16().unwrap_or(443)).await?;
        // Origin-form target and an explicit Host header (hyper's connection API sets neither).
        *request.uri_mut() = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/").parse()?;
        request.headers_mut().insert(http::header::HOST, authority.parse()?);
        let resp = sender.send_request(request).await.context("sending the request")?;
        let answer = read_answer(resp).await?;
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(sender);
        Ok(answer)
    }
}

/// Status, headers and the whole body of a response.
async fn read_answer(resp: http::Response<hyper::body::Incoming>) -> anyhow::Result<Answer> {
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = resp.into_body().collect().await.context("reading the answer")?.to_bytes();
    Ok(Answer { status, headers, body })
}

impl S3 {
    fn new(cfg: Config, ca_roots: &[Vec<u8>]) -> anyhow::Result<S3> {
        let tls = if cfg.endpoint.scheme == Scheme::Https {
            Some(Tls { config: crate::tls::client_config(ca_roots)?, idle: Mutex::new(vec![]) })
        } else {
            None
        };
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        Ok(S3 { cfg, client, tls })
    }

    /// Send one signed request, retrying connection failures, 500 and 503 (SlowDown) with backoff.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        method: &str,
        bucket: &str,
        key: Option<&str>,
        query: &[(String, String)],
        headers: Vec<(String, String)>,
        body: Bytes,
        timeout: Duration,
    ) -> anyhow::Result<Answer> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.send_once(method, bucket, key, query, headers.clone(), body.clone(), timeout).await {
                Ok(a) if (a.status == 500 || a.status == 503) && attempt < 4 => {}
                Ok(a) => return Ok(a),
                Err(_) if attempt < 4 => {}
                Err(e) => return Err(e),
            }
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn send_once(
        &self,
        method: &str,
        bucket: &str,
        key: Option<&str>,
        query: &[(String, String)],
        mut headers: Vec<(String, String)>,
        body: Bytes,
        timeout: Duration,
    ) -> anyhow::Result<Answer> {
        let hash = if body.is_empty() { EMPTY_SHA256.to_string() } else { sha256_hex(&body) };
        if !body.is_empty() {
            headers.push(("content-length".into(), body.len().to_string()));
        }
        let req = backend::request(&self.cfg, method, bucket, key, query, headers, &hash, clock::now_unix());
        let mut builder = http::Request::builder().method(req.method.as_str()).uri(req.url());
        for (name, value) in &req.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder.body(Full::new(body)).context("cannot build the request")?;
        let what = format!("{method} {}", req.url());
        let exchange = async {
            match &self.tls {
                Some(tls) => tls.exchange(request, &req.authority).await,
                None => read_answer(self.client.request(request).await.context("cannot reach the endpoint")?).await,
            }
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(answer) => answer.with_context(|| what.clone()),
            Err(_) => bail!("{what}: no answer within {timeout:?}"),
        }
    }

    /// Every object of `bucket` (ListObjectsV2, paginated, no delimiter).
    async fn list(&self, bucket: &str, page_size: u32, mut each: impl FnMut(ObjectEntry)) -> anyhow::Result<()> {
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![
                ("list-type".to_string(), "2".to_string()),
                ("max-keys".to_string(), page_size.clamp(1, 1000).to_string()),
                ("encoding-type".to_string(), "url".to_string()),
            ];
            if let Some(t) = &token {
                query.push(("continuation-token".to_string(), t.clone()));
            }
            let a = self.send("GET", bucket, None, &query, vec![], Bytes::new(), Duration::from_secs(120)).await?;
            if let Some(e) = a.error() {
                bail!("cannot list bucket {bucket}: {e}");
            }
            let page = xml::parse_list_objects(&a.body).map_err(|e| anyhow!("bucket {bucket}: {}", e.message))?;
            page.objects.into_iter().for_each(&mut each);
            match (page.is_truncated, page.next_continuation_token) {
                (true, Some(t)) if token.as_deref() != Some(t.as_str()) => token = Some(t),
                (true, _) => bail!("bucket {bucket}: a truncated listing without a new continuation token"),
                (false, _) => return Ok(()),
            }
        }
    }

    async fn head(&self, bucket: &str, key: &str) -> anyhow::Result<Option<Head>> {
        let a = self.send("HEAD", bucket, Some(key), &[], vec![], Bytes::new(), Duration::from_secs(60)).await?;
        if a.status == 404 {
            return Ok(None);
        }
        if let Some(e) = a.error() {
            bail!("HEAD {bucket}/{key}: {e}");
        }
        let size = a
            .header("content-length")
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("HEAD {bucket}/{key}: no Content-Length"))?;
        Ok(Some(Head {
            size,
            etag: a.header("etag").unwrap_or_default().to_string(),
            last_modified: a.header("last-modified").and_then(clock::parse_http_date),
            headers: a.headers,
        }))
    }

    async fn delete(&self, bucket: &str, key: &str) -> anyhow::Result<()> {
        let a = self.send("DELETE", bucket, Some(key), &[], vec![], Bytes::new(), Duration::from_secs(60)).await?;
        if a.status != 404 {
            if let Some(e) = a.error() {
                bail!("DELETE {bucket}/{key}: {e}");
            }
        }
        Ok(())
    }

    /// Server-side CopyObject; the ETag the backend gave the copy.
    async fn copy_object(&self, from: &str, to: &str, key: &str, etag: &str) -> anyhow::Result<String> {
        let mut headers = vec![
            ("x-amz-copy-source".to_string(), copy_source(from, key)),
            ("x-amz-metadata-directive".to_string(), "COPY".to_string()),
        ];
        if !etag.is_empty() {
            headers.push(("x-amz-copy-source-if-match".to_string(), etag.to_string()));
        }
        let a = self.send("PUT", to, Some(key), &[], headers, Bytes::new(), Duration::from_secs(30 * 60)).await?;
        if let Some(e) = a.error() {
            bail!("copy {from}/{key} -> {to}: {e}");
        }
        Ok(xml_text(&a.body, "ETag").unwrap_or_default())
    }

    /// Multipart copy (UploadPartCopy) for objects CopyObject cannot copy; the completed ETag.
    /// Object headers, user metadata and tags are carried over as CopyObject would.
    async fn multipart_copy(&self, from: &str, to: &str, key: &str, source: &Head, part_size: u64) -> anyhow::Result<String> {
        let mut headers: Vec<(String, String)> = source
            .headers
            .iter()
            .filter(|(n, _)| {
                let n = n.to_ascii_lowercase();
                n.starts_with("x-amz-meta-")
                    || ["cache-control", "content-disposition", "content-encoding", "content-language", "content-type", "expires", "x-amz-storage-class"]
                        .contains(&n.as_str())
            })
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        let tag_count = header(&source.headers, "x-amz-tagging-count").and_then(|v| v.trim().parse::<u32>().ok());
        if tag_count.unwrap_or(0) > 0 {
            let q = vec![("tagging".to_string(), String::new())];
            let a = self.send("GET", from, Some(key), &q, vec![], Bytes::new(), Duration::from_secs(60)).await?;
            if let Some(e) = a.error() {
                bail!("read tags of {from}/{key}: {e}");
            }
            let tags = xml::parse_tagging(&a.body).map_err(|e| anyhow!("tags of {from}/{key}: {}", e.message))?;
            headers.push(("x-amz-tagging".into(), xml::tagging_header(&tags)));
        }
        let q = vec![("uploads".to_string(), String::new())];
        let a = self.send("POST", to, Some(key), &q, headers, Bytes::new(), Duration::from_secs(60)).await?;
        if let Some(e) = a.error() {
            bail!("start multipart copy of {key} to {to}: {e}");
        }
        let upload_id = xml_text(&a.body, "UploadId").with_context(|| format!("start multipart copy of {key}: no UploadId"))?;
        let result = self.copy_parts(from, to, key, source, part_size, &upload_id).await;
        if result.is_err() {
            // Best effort: an abandoned upload only costs storage until a lifecycle rule removes it.
            let q = vec![("uploadId".to_string(), upload_id.clone())];
            let _ = self.send("DELETE", to, Some(key), &q, vec![], Bytes::new(), Duration::from_secs(60)).await;
        }
        result
    }

    async fn copy_parts(&self, from: &str, to: &str, key: &str, source: &Head, part_size: u64, upload_id: &str) -> anyhow::Result<String> {
        let part_size = part_size.max(MIN_PART).max(source.size.div_ceil(10_000));
        let mut parts = vec![];
        let mut start = 0u64;
        while start < source.size || (source.size == 0 && parts.is_empty()) {
            let end = (start + part_size).min(source.size);
            let number = parts.len() as u32 + 1;
            let q = vec![("partNumber".to_string(), number.to_string()), ("uploadId".to_string(), upload_id.to_string())];
            let mut headers = vec![("x-amz-copy-source".to_string(), copy_source(from, key))];
            if !source.etag.is_empty() {
                headers.push(("x-amz-copy-source-if-match".to_string(), source.etag.clone()));
            }
            if source.size > 0 {
                headers.push(("x-amz-copy-source-range".to_string(), format!("bytes={start}-{}", end - 1)));
            }
            let a = self.send("PUT", to, Some(key), &q, headers, Bytes::new(), Duration::from_secs(30 * 60)).await?;
            if let Some(e) = a.error() {
                bail!("copy part {number} of {from}/{key}: {e}");
            }
            let etag = xml_text(&a.body, "ETag").with_context(|| format!("copy part {number} of {key}: no ETag"))?;
            parts.push(CompletedPart { part_number: number, etag, ..CompletedPart::default() });
            start = end;
            if source.size == 0 {
                break;
            }
        }
        let q = vec![("uploadId".to_string(), upload_id.to_string())];
        let body = Bytes::from(xml::complete_multipart_body(&parts));
        let a = self.send("POST", to, Some(key), &q, vec![], body, Duration::from_secs(30 * 60)).await?;
        if let Some(e) = a.error() {
            bail!("complete multipart copy of {key} to {to}: {e}");
        }
        Ok(xml_text(&a.body, "ETag").unwrap_or_default())
    }
}

/// `x-amz-copy-source` for `bucket`/`key`, URL-encoded.
fn copy_source(bucket: &str, key: &str) -> String {
    format!("/{}/{}", bucket, codec::uri_encode(key, false))
}

/// One misplaced copy of a key, as listed.
#[derive(Clone, Debug)]
struct Stray {
    bucket: String,
    entry: ObjectEntry,
}

/// What happened to one stray.
enum Outcome {
    Moved(u64),
    AlreadyAtOwner,
    Superseded,
    Vanished,
    Conflict(Conflict),
}

/// Everything a worker needs.
struct Mover {
    s3: S3,
    opts: Options,
}

impl Mover {
    /// Handle every misplaced copy of `key`, newest first (the newest is the one copied when the owner has none).
    async fn handle_key(&self, key: &str, owner: &str, mut strays: Vec<Stray>) -> Vec<(String, anyhow::Result<Outcome>)> {
        strays.sort_by_key(|s| std::cmp::Reverse(parse_iso8601(&s.entry.last_modified)));
        let mut out = vec![];
        for stray in strays {
            let outcome = self.handle_stray(key, owner, &stray).await;
            out.push((stray.bucket, outcome));
        }
        out
    }

    async fn handle_stray(&self, key: &str, owner: &str, stray: &Stray) -> anyhow::Result<Outcome> {
        let from = stray.bucket.as_str();
        // The stray as it is now (listings may lack ETags, and it may have changed or gone since).
        let Some(source) = self.s3.head(from, key).await? else { return Ok(Outcome::Vanished) };
        let Some(at_owner) = self.s3.head(owner, key).await? else {
            return self.copy_verify_delete(key, owner, from, &source).await;
        };
        if at_owner.size == source.size && etag_core(&at_owner.etag) == etag_core(&source.etag) {
            self.s3.delete(from, key).await?;
            return Ok(Outcome::AlreadyAtOwner);
        }
        // A different object at the owner: keep it; the stray goes only if it is older.
        match (source.last_modified, at_owner.last_modified) {
            (Some(s), Some(o)) if s < o => {
                self.s3.delete(from, key).await?;
                Ok(Outcome::Superseded)
            }
            (s, o) => Ok(Outcome::Conflict(Conflict {
                key: key.to_string(),
                stray_bucket: from.to_string(),
                owner_bucket: owner.to_string(),
                reason: format!(
                    "the owner holds a different object ({} bytes, ETag {}, modified {}) not newer than the misplaced one ({} bytes, ETag {}, modified {})",
                    at_owner.size,
                    at_owner.etag,
                    o.map(clock::iso8601).unwrap_or_else(|| "?".into()),
                    source.size,
                    source.etag,
                    s.map(clock::iso8601).unwrap_or_else(|| "?".into()),
                ),
            })),
        }
    }

    async fn copy_verify_delete(&self, key: &str, owner: &str, from: &str, source: &Head) -> anyhow::Result<Outcome> {
        let multipart = source.size > self.opts.multipart_threshold.min(MAX_COPY_OBJECT);
        let copied_etag = if multipart {
            self.s3.multipart_copy(from, owner, key, source, self.opts.part_size).await?
        } else {
            match self.s3.copy_object(from, owner, key, &source.etag).await {
                Ok(etag) => etag,
                Err(e) => {
                    // Deleted meanwhile (NoSuchKey) is not an error: there is nothing left to move.
                    if self.s3.head(from, key).await?.is_none() {
                        return Ok(Outcome::Vanished);
                    }
                    return Err(e);
                }
            }
        };
        let copy = self.s3.head(owner, key).await?.with_context(|| format!("{owner}/{key} is missing right after the copy"))?;
        let expected = if multipart || is_multipart_etag(&source.etag) {
            // A multipart ETag is not a content hash: a copy gets its own; compare with what the copy returned.
            copied_etag.as_str()
        } else {
            source.etag.as_str()
        };
        if copy.size != source.size || etag_core(&copy.etag) != etag_core(expected) {
            bail!(
                "copy of {from}/{key} to {owner} does not verify: {} bytes, ETag {} (expected {} bytes, ETag {expected}); the original is kept",
                copy.size,
                copy.etag,
                source.size
            );
        }
        self.s3.delete(from, key).await?;
        Ok(Outcome::Moved(source.size))
    }
}

/// Scan every bucket of `opts.buckets` ∪ `opts.previous_buckets` on `ep` and move misplaced objects to
/// their ring owner (or, with `dry_run`, only count them). `progress` is updated as the run goes.
pub async fn run(ep: &Endpoint, opts: &Options, progress: &Progress) -> anyhow::Result<Report> {
    if opts.buckets.is_empty() {
        bail!("no buckets: give the ring's buckets (--buckets)");
    }
    let mut scan: Vec<String> = opts.buckets.clone();
    for b in &opts.previous_buckets {
        if !scan.contains(b) {
            scan.push(b.clone());
        }
    }
    let cfg = core_config(ep, &scan)?;
    let ring = Ring::new(&opts.buckets);
    let s3 = S3::new(cfg, &ep.ca_roots)?;

    let mut report = Report { dry_run: opts.dry_run, ..Report::default() };
    // key -> misplaced copies; BTreeMap so runs handle keys in the same order.
    let mut strays: BTreeMap<String, Vec<Stray>> = BTreeMap::new();
    for bucket in &scan {
        let mut listed = (0u64, 0u64);
        s3.list(bucket, opts.page_size, |entry| {
            listed.0 += 1;
            listed.1 += entry.size;
            let owner = ring.owner(&entry.key);
            if owner != bucket {
                report.misplaced_objects += 1;
                report.misplaced_bytes += entry.size;
                let route = report.routes.entry((bucket.clone(), owner.to_string())).or_default();
                route.0 += 1;
                route.1 += entry.size;
                strays.entry(entry.key.clone()).or_default().push(Stray { bucket: bucket.clone(), entry });
            }
        })
        .await
        .with_context(|| {
            if opts.buckets.contains(bucket) {
                format!("bucket {bucket} of the ring (create it before rebalancing)")
            } else {
                format!("bucket {bucket} of the previous ring")
            }
        })?;
        report.total_objects += listed.0;
        report.total_bytes += listed.1;
        report.listed.insert(bucket.clone(), listed);
        if opts.verbose {
            println!("listed {bucket}: {} objects, {}", listed.0, human_bytes(listed.1));
        }
    }

    if opts.dry_run {
        if opts.verbose {
            for (key, copies) in &strays {
                for s in copies {
                    println!("would move {key}: {} -> {} ({} bytes)", s.bucket, ring.owner(key), s.entry.size);
                }
            }
        }
        return Ok(report);
    }

    let total_keys = strays.len();
    let limit = opts.max_moves.unwrap_or(usize::MAX);
    report.stopped_early = total_keys > limit;
    let mover = Mover { s3, opts: opts.clone() };
    let started = Instant::now();
    let last_print = Mutex::new(Instant::now());
    let (misplaced, misplaced_bytes) = (report.misplaced_objects, report.misplaced_bytes);
    type Handled = (String, Vec<(String, anyhow::Result<Outcome>)>);
    let mut results: Vec<Handled> = futures::stream::iter(strays.into_iter().take(limit))
        .map(|(key, copies)| {
            let owner = ring.owner(&key).to_string();
            let (mover, last_print) = (&mover, &last_print);
            async move {
                let outcomes = mover.handle_key(&key, &owner, copies).await;
                for (_, outcome) in &outcomes {
                    if let Ok(Outcome::Moved(bytes)) = outcome {
                        progress.moved.fetch_add(1, Ordering::Relaxed);
                        progress.moved_bytes.fetch_add(*bytes, Ordering::Relaxed);
                    }
                }
                let handled = progress.handled.fetch_add(1, Ordering::Relaxed) + 1;
                if mover.opts.verbose {
                    let mut last = last_print.lock().unwrap_or_else(|e| e.into_inner());
                    if last.elapsed() >= Duration::from_secs(1) || handled as usize == total_keys.min(limit) {
                        *last = Instant::now();
                        println!(
                            "progress: {handled}/{} keys, moved {}/{misplaced} objects, {}/{} ({:.0}s)",
                            total_keys.min(limit),
                            progress.moved.load(Ordering::Relaxed),
                            human_bytes(progress.moved_bytes.load(Ordering::Relaxed)),
                            human_bytes(misplaced_bytes),
                            started.elapsed().as_secs_f64()
                        );
                    }
                }
                (key, outcomes)
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;

    results.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, outcomes) in results {
        for (bucket, outcome) in outcomes {
            match outcome {
                Ok(Outcome::Moved(bytes)) => {
                    report.moved += 1;
                    report.moved_bytes += bytes;
                }
                Ok(Outcome::AlreadyAtOwner) => report.already_at_owner += 1,
                Ok(Outcome::Superseded) => report.superseded += 1,
                Ok(Outcome::Vanished) => report.vanished += 1,
                Ok(Outcome::Conflict(c)) => report.conflicts.push(c),
                Err(e) => report.errors.push(format!("{bucket}/{key}: {e:#}")),
            }
        }
    }
    Ok(report)
}

const USAGE: &str = "\
usage: tempo-s3-shard rebalance --endpoint URL --access-key AK --secret-key SK [--region R] [--use-ssl] [--ca-cert PEM]
                                --buckets a,b,c,d [--previous-buckets a,b,c] [--dry-run]
       tempo-s3-shard rebalance --config config.json [--buckets a,b,c,d] [--previous-buckets ...] [--dry-run]

Moves every object that is not on its ring owner (for --buckets, in that order) to it: server-side
copy, verify (size and ETag), then delete the misplaced copy. Safe to interrupt and run again.
Run it after every proxy serves the new ring with previous_buckets set to the old one.

options:
  --config FILE            the Go proxy's config.json (endpoint, credentials, region, use_ssl, buckets);
                           with --buckets, its buckets are the previous ring unless --previous-buckets is given
  --endpoint URL           http(s)://host[:port], or host[:port] with --use-ssl deciding the scheme
  --ca-cert FILE           also trust this CA (PEM or DER) for an https endpoint (repeatable)
  --buckets LIST           the ring (comma-separated or a JSON array, as the `buckets` variable)
  --previous-buckets LIST  the previous ring's buckets, scanned too (as `previous_buckets`)
  --dry-run                print what would move and the share of objects and bytes; change nothing
  --max-moves N            stop after N misplaced keys (a staged run); run again to continue
  --concurrency N          keys handled at once (default 8)
  --quiet                  print only the final report
";

/// `tempo-s3-shard rebalance ARGS`.
pub async fn main(args: Vec<String>) -> anyhow::Result<()> {
    let mut ep = Endpoint {
        endpoint: String::new(),
        use_ssl: false,
        region: tempo_s3_shard_core::config::DEFAULT_REGION.into(),
        access_key_id: String::new(),
        secret_access_key: String::new(),
        ca_roots: vec![],
    };
    let mut opts = Options { verbose: true, ..Options::default() };
    let (mut buckets, mut previous, mut config) = (None, None, None);
    let (mut endpoint, mut ak, mut sk, mut region, mut use_ssl) = (None, None, None, None, false);
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value\n\n{USAGE}"));
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(());
            }
            "--endpoint" => endpoint = Some(value("--endpoint")?),
            "--access-key" => ak = Some(value("--access-key")?),
            "--secret-key" => sk = Some(value("--secret-key")?),
            "--region" => region = Some(value("--region")?),
            "--use-ssl" => use_ssl = true,
            "--ca-cert" => ep.ca_roots.extend(crate::tls::load_roots(std::path::Path::new(&value("--ca-cert")?))?),
            "--buckets" => buckets = Some(parse_bucket_list(&value("--buckets")?).context("--buckets")?),
            "--previous-buckets" => previous = Some(parse_bucket_list(&value("--previous-buckets")?).context("--previous-buckets")?),
            "--config" => config = Some(crate::goconfig::GoConfig::load(std::path::Path::new(&value("--config")?))?),
            "--dry-run" => opts.dry_run = true,
            "--max-moves" => opts.max_moves = Some(value("--max-moves")?.parse().context("--max-moves takes a number")?),
            "--concurrency" => opts.concurrency = value("--concurrency")?.parse().context("--concurrency takes a number")?,
            "--quiet" => opts.verbose = false,
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    if let Some(cfg) = config {
        ep.endpoint = cfg.endpoint.clone();
        ep.use_ssl = cfg.use_ssl;
        ep.access_key_id = cfg.access_key_id.clone();
        ep.secret_access_key = cfg.secret_access_key.clone();
        if let Some(r) = cfg.region.filter(|r| !r.is_empty()) {
            ep.region = r;
        }
        let from_config = parse_bucket_list(&serde_json::to_string(&cfg.buckets)?).context("buckets of --config")?;
        if buckets.is_some() && previous.is_none() {
            previous = Some(from_config);
        } else if buckets.is_none() {
            buckets = Some(from_config);
        }
    }
    if let Some(e) = endpoint {
        ep.endpoint = e;
    }
    ep.use_ssl |= use_ssl;
    if let Some(v) = ak {
        ep.access_key_id = v;
    }
    if let Some(v) = sk {
        ep.secret_access_key = v;
    }
    if let Some(v) = region {
        ep.region = v;
    }
    if ep.endpoint.is_empty() {
        bail!("--endpoint (or --config) is required\n\n{USAGE}");
    }
    opts.buckets = buckets.with_context(|| format!("--buckets (or --config) is required\n\n{USAGE}"))?;
    opts.previous_buckets = previous.unwrap_or_default();

    let progress = Progress::default();
    let report = run(&ep, &opts, &progress).await?;
    print!("{report}");
    if !report.errors.is_empty() {
        bail!("{} objects could not be moved (they were left where they were); run again", report.errors.len());
    }
    if !report.conflicts.is_empty() {
        bail!("{} conflicts need a decision (both copies were kept)", report.conflicts.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_times_parse_to_seconds() {
        assert_eq!(parse_iso8601("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(parse_iso8601("2013-05-24T00:00:01Z"), Some(1_369_353_601));
        assert_eq!(parse_iso8601("2013-05-24T00:00:01.999Z"), Some(1_369_353_601));
        assert_eq!(parse_iso8601("yesterday"), None);
    }

    #[test]
    fn etags_compare_without_quotes() {
        assert_eq!(etag_core("\"abc\""), "abc");
        assert_eq!(etag_core("W/\"abc\""), "abc");
        assert!(is_multipart_etag("\"abc-3\""));
        assert!(!is_multipart_etag("\"abc\""));
    }

    #[test]
    fn xml_text_decodes_entities() {
        let body = b"<CopyObjectResult><ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag></CopyObjectResult>";
        assert_eq!(xml_text(body, "ETag").as_deref(), Some("\"9b2cf535f27731c974343645a3985328\""));
        assert_eq!(xml_text(body, "UploadId"), None);
    }

    #[test]
    fn bucket_lists_parse_like_the_proxy() {
        assert_eq!(parse_bucket_list("a-1, b-2 ,c-3").unwrap(), ["a-1", "b-2", "c-3"]);
        assert_eq!(parse_bucket_list(r#"["a-1","b-2"]"#).unwrap(), ["a-1", "b-2"]);
        assert!(parse_bucket_list("a-1,,b-2").is_err());
        assert!(parse_bucket_list("Bad_Name").is_err());
    }

    #[test]
    fn copy_source_encodes_the_key() {
        assert_eq!(copy_source("shard1", "t/b c/+x"), "/shard1/t/b%20c/%2Bx");
    }
}
