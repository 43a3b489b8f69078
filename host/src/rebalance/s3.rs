//! The rebalance tool's S3 client: requests signed by the core to one endpoint, over plain HTTP or
//! pooled HTTPS connections, with retries; list, head, delete, CopyObject and multipart copy.

use super::now_unix;
use anyhow::{anyhow, bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tempo_s3_shard_core::backend::{self, Call};
use tempo_s3_shard_core::sigv4::payload::EMPTY_SHA256;
use tempo_s3_shard_core::config::{Config, Scheme};
use tempo_s3_shard_core::route::header;
use tempo_s3_shard_core::types::{CompletedPart, ObjectEntry};
use tempo_s3_shard_core::xml;

/// Smallest part of a multipart copy (S3 allows 10,000 parts of 5 MiB to 5 GiB).
const MIN_PART: u64 = 5 * 1024 * 1024;

/// A backend answer, read whole (every answer here is small).
pub(super) struct Answer {
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
pub(super) struct Head {
    pub(super) size: u64,
    pub(super) etag: String,
    pub(super) last_modified: Option<u64>,
    pub(super) headers: Vec<(String, String)>,
}

/// Stored headers of an object that a copy keeps, with its user metadata (`x-amz-meta-*`).
const OBJECT_HEADERS: [&str; 6] = ["cache-control", "content-disposition", "content-encoding", "content-language", "content-type", "expires"];

impl Head {
    /// The object headers and user metadata a copy carries over, names lowercased.
    pub(super) fn carried(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .filter(|(n, _)| n.starts_with("x-amz-meta-") || OBJECT_HEADERS.contains(&n.as_str()))
    }
}

/// Signed requests to the backend endpoint: a plain hyper-util client over HTTP; over HTTPS, pooled
/// HTTP/1 connections over rustls (web PKI roots plus the operator's `ca_roots`).
pub(super) struct S3 {
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
    pub(super) fn new(cfg: Config, ca_roots: &[Vec<u8>]) -> anyhow::Result<S3> {
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

    /// Send `call` to `bucket` signed, with `body`, retrying connection failures, 500 and 503
    /// (SlowDown) with backoff.
    async fn send(&self, bucket: &str, call: Call<'_>, body: Bytes, timeout: Duration) -> anyhow::Result<Answer> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.send_once(bucket, call.clone(), body.clone(), timeout).await {
                Ok(a) if (a.status == 500 || a.status == 503) && attempt < 4 => {}
                Ok(a) => return Ok(a),
                Err(_) if attempt < 4 => {}
                Err(e) => return Err(e),
            }
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
    }

    async fn send_once(&self, bucket: &str, mut call: Call<'_>, body: Bytes, timeout: Duration) -> anyhow::Result<Answer> {
        let hash = if body.is_empty() { EMPTY_SHA256.to_string() } else { tempo_s3_shard_core::sigv4::sign::sha256_hex(&body) };
        if !body.is_empty() {
            call.headers.push(("content-length".into(), body.len().to_string()));
        }
        let req = backend::request(&self.cfg, bucket, call.payload_hash(&hash), now_unix());
        let mut builder = http::Request::builder().method(req.method.as_str()).uri(req.url());
        for (name, value) in &req.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder.body(Full::new(body)).context("cannot build the request")?;
        let what = format!("{} {}", req.method, req.url());
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
    pub(super) async fn list(&self, bucket: &str, page_size: u32, mut each: impl FnMut(ObjectEntry)) -> anyhow::Result<()> {
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
            let a = self.send(bucket, Call::new("GET").query(&query), Bytes::new(), Duration::from_secs(120)).await?;
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

    pub(super) async fn head(&self, bucket: &str, key: &str) -> anyhow::Result<Option<Head>> {
        let a = self.send(bucket, Call::new("HEAD").key(key), Bytes::new(), Duration::from_secs(60)).await?;
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
            last_modified: a.header("last-modified").and_then(tempo_s3_shard_core::clock::parse_http_date),
            headers: a.headers,
        }))
    }

    pub(super) async fn delete(&self, bucket: &str, key: &str) -> anyhow::Result<()> {
        let a = self.send(bucket, Call::new("DELETE").key(key), Bytes::new(), Duration::from_secs(60)).await?;
        if a.status != 404 {
            if let Some(e) = a.error() {
                bail!("DELETE {bucket}/{key}: {e}");
            }
        }
        Ok(())
    }

    /// Server-side CopyObject; the ETag the backend gave the copy.
    pub(super) async fn copy_object(&self, from: &str, to: &str, key: &str, etag: &str) -> anyhow::Result<String> {
        let mut headers = vec![
            ("x-amz-copy-source".to_string(), copy_source(from, key)),
            ("x-amz-metadata-directive".to_string(), "COPY".to_string()),
        ];
        if !etag.is_empty() {
            headers.push(("x-amz-copy-source-if-match".to_string(), etag.to_string()));
        }
        let a = self.send(to, Call::new("PUT").key(key).headers(headers), Bytes::new(), Duration::from_secs(30 * 60)).await?;
        if let Some(e) = a.error() {
            bail!("copy {from}/{key} -> {to}: {e}");
        }
        Ok(xml::parse_result_field(&a.body, "ETag").unwrap_or_default())
    }

    /// Multipart copy (UploadPartCopy) for objects CopyObject cannot copy; the completed ETag.
    /// Object headers, user metadata and tags are carried over as CopyObject would.
    pub(super) async fn multipart_copy(&self, from: &str, to: &str, key: &str, source: &Head, part_size: u64) -> anyhow::Result<String> {
        let mut headers: Vec<(String, String)> = source.carried().collect();
        headers.extend(header(&source.headers, "x-amz-storage-class").map(|v| ("x-amz-storage-class".to_string(), v.to_string())));
        let tag_count = header(&source.headers, "x-amz-tagging-count").and_then(|v| v.trim().parse::<u32>().ok());
        if tag_count.unwrap_or(0) > 0 {
            let q = vec![("tagging".to_string(), String::new())];
            let a = self.send(from, Call::new("GET").key(key).query(&q), Bytes::new(), Duration::from_secs(60)).await?;
            if let Some(e) = a.error() {
                bail!("read tags of {from}/{key}: {e}");
            }
            let tags = xml::parse_tagging(&a.body).map_err(|e| anyhow!("tags of {from}/{key}: {}", e.message))?;
            headers.push(("x-amz-tagging".into(), xml::tagging_header(&tags)));
        }
        let q = vec![("uploads".to_string(), String::new())];
        let a = self.send(to, Call::new("POST").key(key).query(&q).headers(headers), Bytes::new(), Duration::from_secs(60)).await?;
        if let Some(e) = a.error() {
            bail!("start multipart copy of {key} to {to}: {e}");
        }
        let upload_id = xml::parse_result_field(&a.body, "UploadId").with_context(|| format!("start multipart copy of {key}: no UploadId"))?;
        let result = self.copy_parts(from, to, key, source, part_size, &upload_id).await;
        if result.is_err() {
            // Best effort: an abandoned upload only costs storage until a lifecycle rule removes it.
            let q = vec![("uploadId".to_string(), upload_id.clone())];
            let _ = self.send(to, Call::new("DELETE").key(key).query(&q), Bytes::new(), Duration::from_secs(60)).await;
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
            let a = self.send(to, Call::new("PUT").key(key).query(&q).headers(headers), Bytes::new(), Duration::from_secs(30 * 60)).await?;
            if let Some(e) = a.error() {
                bail!("copy part {number} of {from}/{key}: {e}");
            }
            let etag = xml::parse_result_field(&a.body, "ETag").with_context(|| format!("copy part {number} of {key}: no ETag"))?;
            parts.push(CompletedPart { part_number: number, etag, ..CompletedPart::default() });
            start = end;
            if source.size == 0 {
                break;
            }
        }
        let q = vec![("uploadId".to_string(), upload_id.to_string())];
        let body = Bytes::from(xml::complete_multipart_body(&parts));
        let a = self.send(to, Call::new("POST").key(key).query(&q), body, Duration::from_secs(30 * 60)).await?;
        if let Some(e) = a.error() {
            bail!("complete multipart copy of {key} to {to}: {e}");
        }
        Ok(xml::parse_result_field(&a.body, "ETag").unwrap_or_default())
    }
}

/// `x-amz-copy-source` for `bucket`/`key`, URL-encoded.
pub(super) fn copy_source(bucket: &str, key: &str) -> String {
    format!("/{}/{}", bucket, tempo_s3_shard_core::codec::uri_encode(key, false))
}
