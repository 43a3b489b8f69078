//! The bench's client: targets, signed (or anonymous) S3 requests, the scenarios' operations, and
//! exchanges that count the bytes received.

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Frame, SizeHint};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::TokioExecutor;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tempo_s3_shard_core::ring::Ring;
use tempo_s3_shard_core::chunked::encoder;
use tempo_s3_shard_core::sigv4::chunk::ChunkSigner;
use tempo_s3_shard_core::sigv4::payload::{EMPTY_SHA256, STREAMING_SIGNED, UNSIGNED_PAYLOAD};
use tempo_s3_shard_core::sigv4::sign::{self, SignRequest};
use tempo_s3_shard_core::{clock, codec, sigv4};
use tempo_s3_shard_core::testing::Rng;
use tempo_s3_shard_host::backends::{LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY};
use tempo_s3_shard_host::tls;

pub const VIRTUAL_BUCKET: &str = "proxy-bucket";
pub const REGION: &str = "us-east-1";

pub type ReqBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;
/// The bench's client: pooled, setting `TCP_NODELAY` as minio-go and the AWS SDKs do, speaking
/// HTTPS (trusting the test CA of tests/data/tls) to an `https://` URI and plain HTTP otherwise.
#[derive(Clone)]
pub struct HttpClient {
    plain: Client<HttpConnector, ReqBody>,
    https: Client<tls::Connector, ReqBody>,
}

impl HttpClient {
    /// Send `req` over the pool of its scheme.
    pub fn request(&self, req: hyper::Request<ReqBody>) -> ResponseFuture {
        match req.uri().scheme_str() {
            Some("https") => self.https.request(req),
            _ => self.plain.request(req),
        }
    }
}

/// The bench's client, its HTTPS connections verified with `tls_config`.
pub fn http_client(tls_config: Arc<rustls::ClientConfig>) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let builder = || {
        let mut builder = Client::builder(TokioExecutor::new());
        builder.pool_idle_timeout(Duration::from_secs(30));
        builder
    };
    HttpClient { plain: builder().build(connector), https: builder().build(tls::Connector::new(tls_config, true)) }
}

/// Where a request goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Target {
    /// The backend itself, addressed at the key's ring owner.
    Direct,
    /// The original Go proxy.
    Go,
    /// This project's component.
    Proxy,
}

/// A request destination: an address, and how keys map to buckets there.
#[derive(Clone)]
pub struct Dest {
    pub authority: String,
    pub target: Target,
    pub ring: Arc<Ring>,
    /// The backend bucket bucket-level requests (HeadBucket, List) address directly.
    pub direct_bucket: String,
    /// Send requests unsigned (to proxies serving anonymous clients).
    pub anonymous: bool,
    /// Speak HTTPS (to a backend serving it).
    pub https: bool,
}

impl Dest {
    /// The bucket a key is addressed to: the virtual bucket, or its ring owner on the backend.
    fn bucket(&self, key: &str) -> String {
        match self.target {
            Target::Direct => self.ring.owner(key).to_string(),
            Target::Go | Target::Proxy => VIRTUAL_BUCKET.to_string(),
        }
    }

    /// The scheme and authority requests go to.
    pub fn origin(&self) -> (&str, &str) {
        (if self.https { "https" } else { "http" }, &self.authority)
    }

    fn bucket_level(&self) -> String {
        match self.target {
            Target::Direct => self.direct_bucket.clone(),
            Target::Go | Target::Proxy => VIRTUAL_BUCKET.to_string(),
        }
    }

    /// A request for `key` (signed unless the destination is anonymous).
    pub fn object(&self, method: &str, key: &str, query: &[(&str, &str)], body: Option<(u64, ReqBody)>) -> hyper::Request<ReqBody> {
        self.request(method, &self.bucket(key), Some(key), query, body)
    }

    /// A request for the bucket itself.
    pub fn bucket_request(&self, method: &str, query: &[(&str, &str)]) -> hyper::Request<ReqBody> {
        self.request(method, &self.bucket_level(), None, query, None)
    }

    fn request(&self, method: &str, bucket: &str, key: Option<&str>, query: &[(&str, &str)], body: Option<(u64, ReqBody)>) -> hyper::Request<ReqBody> {
        let mut req = sign(method, self.origin(), bucket, key, query, body);
        if self.anonymous {
            req.headers_mut().remove("authorization");
        }
        req
    }
}

/// Sign a request with the local credentials (the backend's, which the proxy also accepts).
/// Bodies are sent as UNSIGNED-PAYLOAD, as the SDKs do over TLS, so neither side hashes them.
pub fn sign(
    method: &str,
    origin: (&str, &str),
    bucket: &str,
    key: Option<&str>,
    query: &[(&str, &str)],
    body: Option<(u64, ReqBody)>,
) -> hyper::Request<ReqBody> {
    let payload = if body.is_some() { UNSIGNED_PAYLOAD } else { EMPTY_SHA256 };
    let (builder, _) = signed_head(method, origin, bucket, key, query, (payload, &clock::amz_date(unix_now())), Vec::new());
    with_body(builder, body)
}

/// A request head signed with the local credentials at `amz_date` for `payload` (the
/// `x-amz-content-sha256` value), `extra` headers signed too; and its signature (a streaming body's
/// chunks chain from it).
fn signed_head(
    method: &str,
    (scheme, authority): (&str, &str),
    bucket: &str,
    key: Option<&str>,
    query: &[(&str, &str)],
    (payload, amz_date): (&str, &str),
    extra: Vec<(String, String)>,
) -> (hyper::http::request::Builder, String) {
    let mut path = format!("/{}", codec::uri_encode(bucket, true));
    if let Some(key) = key {
        path.push('/');
        path.push_str(&codec::uri_encode(key, false));
    }
    let query: Vec<(String, String)> = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let qs = sigv4::canonical::canonical_query_string(&query);
    let path_and_query = if qs.is_empty() { path.clone() } else { format!("{path}?{qs}") };
    let mut headers = vec![
        ("host".to_string(), authority.to_string()),
        ("x-amz-content-sha256".to_string(), payload.to_string()),
        ("x-amz-date".to_string(), amz_date.to_string()),
    ];
    headers.extend(extra);
    let authorization = sign::sign_headers(&SignRequest {
        method,
        canonical_uri: &path,
        query: &query,
        headers: &headers,
        payload_hash: payload,
        access_key_id: LOCAL_ACCESS_KEY,
        secret_access_key: LOCAL_SECRET_KEY,
        region: REGION,
        service: "s3",
        amz_date,
    });
    let signature = authorization.rsplit("Signature=").next().unwrap_or_default().to_string();
    let mut builder = hyper::Request::builder().method(method).uri(format!("{scheme}://{authority}{path_and_query}"));
    for (n, v) in &headers {
        builder = builder.header(n, v);
    }
    (builder.header("authorization", authorization), signature)
}

/// The request of `builder` with `body` (and its length), or none.
fn with_body(builder: hyper::http::request::Builder, body: Option<(u64, ReqBody)>) -> hyper::Request<ReqBody> {
    let (builder, body) = match body {
        Some((len, body)) => (builder.header("content-length", len), body),
        None => (builder, Empty::new().boxed()),
    };
    builder.body(body).expect("a well-formed request")
}

/// The size of each signed chunk of [`signed_streaming_put`]: minio-go's and the AWS SDKs'.
const SIGNED_CHUNK: u64 = 64 * 1024;

/// A PUT of `len` bytes of `chunk` repeated, sent as minio-go (Tempo's client) sends one over plain
/// HTTP with credentials: `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, aws-chunked in 64 KiB chunks, each
/// signed, so whoever checks it hashes every byte. `chunk`'s length must be a multiple of 64 KiB.
pub fn signed_streaming_put(dest: &Dest, key: &str, chunk: &Bytes, len: u64) -> hyper::Request<ReqBody> {
    let extra = vec![("x-amz-decoded-content-length".to_string(), len.to_string())];
    let date = clock::amz_date(unix_now());
    let (builder, seed) = signed_head("PUT", dest.origin(), &dest.bucket(key), Some(key), &[], (STREAMING_SIGNED, &date), extra);
    let signer = ChunkSigner::new(
        sign::signing_key(LOCAL_SECRET_KEY, &date[..8], REGION, "s3"),
        &date,
        &sign::credential_scope(&date[..8], REGION, "s3"),
        &seed,
    );
    let framed = (0..len.div_ceil(SIGNED_CHUNK)).map(|i| framed_len(SIGNED_CHUNK.min(len - i * SIGNED_CHUNK))).sum::<u64>() + framed_len(0);
    let body = SignedChunks { chunk: chunk.clone(), at: 0, left: len, framed, signer: Some(signer) };
    with_body(builder, Some((framed, body.boxed())))
}

/// The bytes an aws-chunked chunk of `n` data bytes takes with its signature (the last, empty one
/// with the empty trailer's CRLF).
fn framed_len(n: u64) -> u64 {
    format!("{n:x}").len() as u64 + ";chunk-signature=".len() as u64 + 64 + 2 + n + 2
}

/// `left` bytes of `chunk` repeated, framed as signed aws-chunked chunks as they are sent.
struct SignedChunks {
    chunk: Bytes,
    at: usize,
    left: u64,
    /// Framed bytes still to send.
    framed: u64,
    /// `None` once the final chunk is sent.
    signer: Option<ChunkSigner>,
}

impl hyper::body::Body for SignedChunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let n = self.left.min(SIGNED_CHUNK) as usize;
        let data = self.chunk.slice(self.at..self.at + n);
        let Some(signer) = self.signer.as_mut() else { return Poll::Ready(None) };
        let mut frame = encoder::frame(&data, Some(signer));
        if n == 0 {
            // The final chunk, and the empty trailer's CRLF.
            frame.extend_from_slice(b"\r\n");
            self.signer = None;
        }
        self.at = (self.at + n) % self.chunk.len();
        self.left -= n as u64;
        self.framed -= frame.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(frame)))))
    }

    fn is_end_stream(&self) -> bool {
        self.signer.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.framed)
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A body of these bytes.
pub fn full(bytes: Bytes) -> (u64, ReqBody) {
    (bytes.len() as u64, Full::new(bytes).boxed())
}

/// `len` bytes made of `chunk` repeated, without holding them all in memory.
struct Repeat {
    chunk: Bytes,
    left: u64,
}

impl hyper::body::Body for Repeat {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(self.chunk.len() as u64) as usize;
        self.left -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

/// A body of `len` bytes of `chunk` repeated.
pub fn repeat(chunk: &Bytes, len: u64) -> (u64, ReqBody) {
    (len, Repeat { chunk: chunk.clone(), left: len }.boxed())
}

/// Deterministic incompressible-looking bytes.
pub fn pseudo_random(len: usize) -> Vec<u8> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..len).map(|_| rng.next() as u8).collect()
}

/// Send a request and read its body, counting bytes; a non-2xx status is an error.
pub async fn exchange(client: &HttpClient, req: hyper::Request<ReqBody>) -> Result<u64, String> {
    let resp = client.request(req).await.map_err(|e| format!("{e:?}"))?;
    let status = resp.status();
    let mut body = resp.into_body();
    let mut bytes = 0u64;
    let mut start = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("reading the body: {e}"))?;
        if let Ok(data) = frame.into_data() {
            bytes += data.len() as u64;
            if !status.is_success() && start.len() < 400 {
                start.extend_from_slice(&data);
            }
        }
    }
    if !status.is_success() {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&start)));
    }
    Ok(bytes)
}

/// Send a request and return its headers and (small) body; a non-2xx status is an error.
pub async fn exchange_full(client: &HttpClient, req: hyper::Request<ReqBody>) -> anyhow::Result<(http::HeaderMap, Vec<u8>)> {
    let what = format!("{} {}", req.method(), req.uri());
    let resp = client.request(req).await.with_context(|| what.clone())?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.with_context(|| what.clone())?.to_bytes().to_vec();
    if !parts.status.is_success() {
        bail!("{what}: {} {}", parts.status, String::from_utf8_lossy(&body));
    }
    Ok((parts.headers, body))
}

/// The text between `open` and `close`.
pub fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

/// The requests of one scenario.
#[derive(Clone)]
pub enum Op {
    /// GET one of these keys (spread over the workers).
    Get(Arc<Vec<String>>),
    /// PUT this body to a few keys per worker.
    Put(Bytes),
    HeadBucket,
    HeadObject(String),
    /// ListObjectsV2 of the whole bucket.
    List,
    /// The operator endpoint that answers where a key lives (the proxy only): a ring lookup
    /// answered by the component without a backend call.
    Locate(String),
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Get(_) => "GET",
            Op::Put(_) => "PUT",
            Op::HeadBucket => "HeadBucket",
            Op::HeadObject(_) => "HeadObject",
            Op::List => "LIST",
            Op::Locate(_) => "locate",
        }
    }

    /// The `i`-th request of `worker`.
    pub fn build(&self, dest: &Dest, worker: usize, i: usize) -> hyper::Request<ReqBody> {
        match self {
            Op::Get(keys) => dest.object("GET", &keys[(worker * 131 + i) % keys.len()], &[], None),
            Op::Put(body) => dest.object("PUT", &format!("bench/put-{worker}-{}/obj", i % 4), &[], Some(full(body.clone()))),
            Op::HeadBucket => dest.bucket_request("HEAD", &[]),
            Op::HeadObject(key) => dest.object("HEAD", key, &[], None),
            // The Go proxy implements only V1 listings.
            Op::List if dest.target == Target::Go => dest.bucket_request("GET", &[]),
            Op::List => dest.bucket_request("GET", &[("list-type", "2")]),
            // An operator endpoint: always signed.
            Op::Locate(key) => sign("GET", dest.origin(), "_tempo-s3-shard", Some("locate"), &[("key", key)], None),
        }
    }
}
