//! Inbound authentication and input hardening through the real component: every forged, stale,
//! tampered or malformed request is refused with its S3 error, and nothing it tried to write reaches a backend.

use crate::common;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use common::{Harness, VIRTUAL_BUCKET};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tempo_s3_shard_core::checksum::{ChecksumAlgorithm, Checksummer};
use tempo_s3_shard_core::clock;
use tempo_s3_shard_core::codec;
use tempo_s3_shard_core::sigv4::chunk::ChunkSigner;
use tempo_s3_shard_core::sigv4::sign::SignRequest;
use tempo_s3_shard_core::sigv4;
use tempo_s3_shard_host::backends::{LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SHARDS: [&str; 3] = ["shard1", "shard2", "shard3"];
const REGION: &str = "us-east-1";
/// Bodies above this take the proxy's streamed path (the component buffers at most 1 MiB).
const LARGE: usize = 1024 * 1024 + 300 * 1024 + 7;

// ---------------------------------------------------------------------------------------------
// Raw HTTP and SigV4 helpers

/// A response read off the wire, body as bytes.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    fn code(&self) -> Option<String> {
        let text = self.text();
        let start = text.find("<Code>")? + 6;
        let end = text[start..].find("</Code>")? + start;
        Some(text[start..end].to_string())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Asserts status and S3 error code (and that the error is S3 XML with a request id).
    #[track_caller]
    fn expect(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.code().as_deref().unwrap_or("")), (status, code), "{}", self.text());
        if !code.is_empty() {
            assert!(self.header("content-type").is_some_and(|c| c.contains("xml")), "{:?}", self.headers);
            assert!(self.header("x-amz-request-id").is_some(), "{:?}", self.headers);
        }
    }
}

fn parse_response(buf: &[u8]) -> Resp {
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let (head, body) = match split {
        Some(p) => (&buf[..p], buf[p + 4..].to_vec()),
        None => (buf, Vec::new()),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Resp { status, headers, body }
}

/// One exchange on a fresh connection: the request head and body are written while the response is
/// read, so a proxy that answers early (and stops reading) never stalls the test. A hang fails it.
async fn exchange(addr: SocketAddr, head: Vec<u8>, body: Vec<u8>) -> Resp {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        if wr.write_all(&head).await.is_err() {
            return;
        }
        for piece in body.chunks(64 * 1024) {
            if wr.write_all(piece).await.is_err() {
                return;
            }
        }
        // Keep the write half open until the reader is done (a FIN could end the exchange early).
        tokio::time::sleep(Duration::from_secs(120)).await;
        drop(wr);
    });
    let mut buf = Vec::new();
    let mut tmp = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(60), rd.read(&mut tmp)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&tmp[..n]),
            Err(_) => panic!("the proxy neither answered nor closed within 60 s; got {:?}", String::from_utf8_lossy(&buf)),
        }
    }
    writer.abort();
    parse_response(&buf)
}

/// The request bytes for `method target` with `headers` (a `Connection: close` is added).
fn request_head(method: &str, target: &str, headers: &[(String, String)]) -> Vec<u8> {
    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    head.into_bytes()
}

/// An unsigned request.
async fn anon(h: &Harness, method: &str, target: &str, extra: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut headers = vec![("Host".to_string(), h.proxy.to_string())];
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    if !body.is_empty() || matches!(method, "PUT" | "POST") {
        headers.push(("Content-Length".into(), body.len().to_string()));
    }
    exchange(h.proxy, request_head(method, target, &headers), body.to_vec()).await
}

/// The wire path of an object key in the virtual bucket, encoded as the SDKs encode it.
fn key_path(key: &str) -> String {
    format!("/{VIRTUAL_BUCKET}/{}", codec::uri_encode(key, false))
}

/// A request signed with SigV4 in the Authorization header, as a client builds it by hand.
struct Signed {
    headers: Vec<(String, String)>,
    target: String,
    /// Chains the chunk (and trailer) signatures of a streaming body from the request's signature.
    signer: ChunkSigner,
}

struct Sign<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a [(&'a str, &'a str)],
    /// Headers covered by the signature (host, x-amz-date and x-amz-content-sha256 are added).
    headers: &'a [(&'a str, &'a str)],
    payload_hash: &'a str,
    access_key: &'a str,
    secret: &'a str,
    /// Seconds added to the clock for x-amz-date.
    skew: i64,
}

impl<'a> Sign<'a> {
    fn new(method: &'a str, path: &'a str, payload_hash: &'a str) -> Sign<'a> {
        Sign {
            method,
            path,
            query: &[],
            headers: &[],
            payload_hash,
            access_key: LOCAL_ACCESS_KEY,
            secret: LOCAL_SECRET_KEY,
            skew: 0,
        }
    }

    fn sign(&self, h: &Harness) -> Signed {
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
        let amz_date = clock::amz_date((now + self.skew) as u64);
        let mut headers: Vec<(String, String)> = vec![
            ("Host".into(), h.proxy.to_string()),
            ("X-Amz-Date".into(), amz_date.clone()),
            ("X-Amz-Content-Sha256".into(), self.payload_hash.into()),
        ];
        headers.extend(self.headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let query: Vec<(String, String)> = self.query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let req = SignRequest {
            method: self.method,
            canonical_uri: &sigv4::canonical::canonical_uri(self.path).unwrap_or_else(|_| self.path.to_string()),
            query: &query,
            headers: &headers,
            payload_hash: self.payload_hash,
            access_key_id: self.access_key,
            secret_access_key: self.secret,
            region: REGION,
            service: "s3",
            amz_date: &amz_date,
        };
        let authorization = sigv4::sign::sign_headers(&req);
        let seed = authorization.rsplit("Signature=").next().unwrap().to_string();
        headers.push(("Authorization".into(), authorization));
        let date = &amz_date[..8];
        let signer = ChunkSigner::new(
            sigv4::sign::signing_key(self.secret, date, REGION, "s3"),
            &amz_date,
            &sigv4::sign::credential_scope(date, REGION, "s3"),
            &seed,
        );
        let raw_query: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", codec::uri_encode(k, true), codec::uri_encode(v, true)))
            .collect();
        let target = if raw_query.is_empty() { self.path.to_string() } else { format!("{}?{}", self.path, raw_query.join("&")) };
        Signed { headers, target, signer }
    }
}

impl Signed {
    /// Send with `unsigned` headers added after signing (e.g. a Content-Length computed afterwards).
    async fn send(&self, h: &Harness, method: &str, unsigned: &[(&str, String)], body: Vec<u8>) -> Resp {
        let mut headers = self.headers.clone();
        headers.extend(unsigned.iter().map(|(k, v)| (k.to_string(), v.clone())));
        exchange(h.proxy, request_head(method, &self.target, &headers), body).await
    }
}

/// A signed request with a body whose SHA-256 is signed (`x-amz-content-sha256`).
async fn signed_put(h: &Harness, key: &str, body: &[u8], claimed_hash: &str) -> Resp {
    let path = key_path(key);
    let s = Sign::new("PUT", &path, claimed_hash).sign(h);
    s.send(h, "PUT", &[("Content-Length", body.len().to_string())], body.to_vec()).await
}

/// A signed bodiless request.
async fn signed(h: &Harness, method: &str, path: &str, query: &[(&str, &str)]) -> Resp {
    let mut s = Sign::new(method, path, sigv4::payload::EMPTY_SHA256);
    s.query = query;
    let signed = s.sign(h);
    let unsigned: Vec<(&str, String)> =
        if matches!(method, "PUT" | "POST") { vec![("Content-Length", "0".into())] } else { vec![] };
    signed.send(h, method, &unsigned, vec![]).await
}

/// Encode `data` as aws-chunked in `chunk`-byte chunks (signed when `signer` is given), then the trailer.
fn aws_chunked(
    data: &[u8],
    chunk: usize,
    signer: Option<&mut ChunkSigner>,
    trailer: &[(&str, &str)],
    sign_trailer: bool,
) -> Vec<u8> {
    tempo_s3_shard_core::chunked::encoder::encode(data, chunk, signer, trailer, sign_trailer)
}

fn crc32_b64(data: &[u8]) -> String {
    let mut c = Checksummer::new(ChecksumAlgorithm::Crc32);
    c.update(data);
    c.finish_base64()
}

fn sha256_hex(data: &[u8]) -> String {
    sigv4::sign::sha256_hex(data)
}

/// Deterministic test data.
fn data(len: usize, seed: u32) -> Vec<u8> {
    (0..len).map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 13) as u8).collect()
}

/// The object's bytes read straight from its ring owner, if it is there.
async fn stored(h: &Harness, key: &str) -> Option<Vec<u8>> {
    let got = h.direct().get_object().bucket(h.owner(key)).key(key).send().await.ok()?;
    Some(got.body.collect().await.unwrap().into_bytes().to_vec())
}

/// Nothing at `key` in any backend bucket.
#[track_caller]
fn assert_nothing_stored(holders: Vec<String>, key: &str) {
    assert!(holders.is_empty(), "{key} was stored on {holders:?} although the write was refused");
}

/// Status and S3 error code of a failed SDK call.
fn sdk_error<O: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    r: Result<O, SdkError<E, HttpResponse>>,
) -> (u16, String) {
    let err = r.expect_err("the call should have failed");
    let status = err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    (status, err.code().unwrap_or("").to_string())
}

/// An SDK client for the proxy with other credentials and no retries.
fn client_with(h: &Harness, access_key: &str, secret: &str) -> aws_sdk_s3::Client {
    let base = common::s3_client(&h.proxy_url(), access_key, secret);
    let conf = base.config().to_builder().retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled()).build();
    aws_sdk_s3::Client::from_conf(conf)
}

// ---------------------------------------------------------------------------------------------
// Credentials and anonymous access

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_requests_pass_and_wrong_credentials_are_refused() {
    let h = Harness::start(&SHARDS).await;
    let s3 = h.client();
    s3.put_object().bucket(VIRTUAL_BUCKET).key("t/ok").body(ByteStream::from_static(b"signed")).send().await.unwrap();
    assert_eq!(stored(&h, "t/ok").await.as_deref(), Some(&b"signed"[..]));
    let got = s3.get_object().bucket(VIRTUAL_BUCKET).key("t/ok").send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"signed");

    let stranger = client_with(&h, "no-such-access-key", LOCAL_SECRET_KEY);
    let r = stranger.put_object().bucket(VIRTUAL_BUCKET).key("t/stranger").body(ByteStream::from_static(b"x")).send().await;
    assert_eq!(sdk_error(r), (403, "InvalidAccessKeyId".into()));
    assert_nothing_stored(h.holders("t/stranger").await, "t/stranger");
    let r = stranger.get_object().bucket(VIRTUAL_BUCKET).key("t/ok").send().await;
    assert_eq!(sdk_error(r), (403, "InvalidAccessKeyId".into()));

    let forger = client_with(&h, LOCAL_ACCESS_KEY, "not-the-client-secret");
    let r = forger.put_object().bucket(VIRTUAL_BUCKET).key("t/forged").body(ByteStream::from_static(b"x")).send().await;
    assert_eq!(sdk_error(r), (403, "SignatureDoesNotMatch".into()));
    assert_nothing_stored(h.holders("t/forged").await, "t/forged");
    let r = forger.get_object().bucket(VIRTUAL_BUCKET).key("t/ok").send().await;
    assert_eq!(sdk_error(r), (403, "SignatureDoesNotMatch".into()));
    let r = forger.delete_object().bucket(VIRTUAL_BUCKET).key("t/ok").send().await;
    assert_eq!(sdk_error(r), (403, "SignatureDoesNotMatch".into()));
    let r = forger.list_objects_v2().bucket(VIRTUAL_BUCKET).send().await;
    assert_eq!(sdk_error(r), (403, "SignatureDoesNotMatch".into()));
    assert_eq!(stored(&h, "t/ok").await.as_deref(), Some(&b"signed"[..]), "a forged DELETE must not delete");

    // Unsigned requests while anonymous access is disabled (the default).
    anon(&h, "GET", &key_path("t/ok"), &[], b"").await.expect(403, "AccessDenied");
    assert_eq!(anon(&h, "HEAD", &key_path("t/ok"), &[], b"").await.status, 403, "HEAD is refused");
    anon(&h, "GET", &format!("/{VIRTUAL_BUCKET}?list-type=2"), &[], b"").await.expect(403, "AccessDenied");
    anon(&h, "PUT", &key_path("t/anon"), &[], b"anonymous data").await.expect(403, "AccessDenied");
    assert_nothing_stored(h.holders("t/anon").await, "t/anon");
    anon(&h, "DELETE", &key_path("t/ok"), &[], b"").await.expect(403, "AccessDenied");
    assert_eq!(stored(&h, "t/ok").await.as_deref(), Some(&b"signed"[..]));
    // A signed PUT with an unsigned x-amz-copy-source added (a replayed request turned into a copy).
    let s = Sign::new("PUT", &key_path("t/copy-target"), sigv4::payload::EMPTY_SHA256).sign(&h);
    let r = s.send(&h, "PUT", &[("Content-Length", "0".into()), ("x-amz-copy-source", "/proxy-bucket/t/ok".into())], vec![]).await;
    r.expect(403, "AccessDenied");
    assert_nothing_stored(h.holders("t/copy-target").await, "t/copy-target");
    // A signature over another request (here: another key) does not carry over.
    let s = Sign::new("PUT", &key_path("t/signed-for-this"), sigv4::payload::UNSIGNED_PAYLOAD).sign(&h);
    let moved = Signed { target: key_path("t/used-for-that"), ..s };
    moved.send(&h, "PUT", &[("Content-Length", "1".into())], b"x".to_vec()).await.expect(403, "SignatureDoesNotMatch");
    assert_nothing_stored(h.holders("t/used-for-that").await, "t/used-for-that");
    assert_nothing_stored(h.holders("t/signed-for-this").await, "t/signed-for-this");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_anonymous_access_reads_but_never_writes() {
    let h = Harness::start_with(&SHARDS, &[("allow_anonymous", "read-only")]).await;
    h.client().put_object().bucket(VIRTUAL_BUCKET).key("pub/obj").body(ByteStream::from_static(b"public")).send().await.unwrap();

    let r = anon(&h, "GET", &key_path("pub/obj"), &[], b"").await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"public"[..]), "{}", r.text());
    let r = anon(&h, "HEAD", &key_path("pub/obj"), &[], b"").await;
    assert_eq!((r.status, r.header("content-length")), (200, Some("6")));
    let r = anon(&h, "GET", &format!("/{VIRTUAL_BUCKET}?list-type=2"), &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("<Key>pub/obj</Key>"), "{}", r.text());

    anon(&h, "PUT", &key_path("pub/new"), &[], b"anonymous write").await.expect(403, "AccessDenied");
    assert_nothing_stored(h.holders("pub/new").await, "pub/new");
    anon(&h, "DELETE", &key_path("pub/obj"), &[], b"").await.expect(403, "AccessDenied");
    let delete = b"<Delete><Object><Key>pub/obj</Key></Object></Delete>";
    anon(&h, "POST", &format!("/{VIRTUAL_BUCKET}?delete"), &[], delete).await.expect(403, "AccessDenied");
    anon(&h, "POST", &format!("{}?uploads", key_path("pub/mp")), &[], b"").await.expect(403, "AccessDenied");
    anon(&h, "PUT", &key_path("pub/copy"), &[("x-amz-copy-source", "/proxy-bucket/pub/obj")], b"").await.expect(403, "AccessDenied");
    assert_nothing_stored(h.holders("pub/copy").await, "pub/copy");
    assert_eq!(stored(&h, "pub/obj").await.as_deref(), Some(&b"public"[..]));
    // A bad signature is not downgraded to anonymous: it is refused even for reads.
    let forger = client_with(&h, LOCAL_ACCESS_KEY, "wrong");
    assert_eq!(sdk_error(forger.get_object().bucket(VIRTUAL_BUCKET).key("pub/obj").send().await), (403, "SignatureDoesNotMatch".into()));
    // Signed writes still work.
    h.client().delete_object().bucket(VIRTUAL_BUCKET).key("pub/obj").send().await.unwrap();
    assert!(h.holders("pub/obj").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fully_anonymous_access_allows_everything() {
    let h = Harness::start_with(&SHARDS, &[("allow_anonymous", "true")]).await;
    anon(&h, "PUT", &key_path("anon/obj"), &[], b"anonymous body").await.expect(200, "");
    assert_eq!(stored(&h, "anon/obj").await.as_deref(), Some(&b"anonymous body"[..]));
    assert_eq!(h.holders("anon/obj").await, vec![h.owner("anon/obj")]);
    let r = anon(&h, "GET", &key_path("anon/obj"), &[], b"").await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"anonymous body"[..]));
    anon(&h, "DELETE", &key_path("anon/obj"), &[], b"").await.expect(204, "");
    assert!(h.holders("anon/obj").await.is_empty());
    // Signed clients keep working, and a wrong signature is still refused rather than treated as anonymous.
    h.client().put_object().bucket(VIRTUAL_BUCKET).key("anon/signed").body(ByteStream::from_static(b"s")).send().await.unwrap();
    let forger = client_with(&h, LOCAL_ACCESS_KEY, "wrong");
    let r = forger.put_object().bucket(VIRTUAL_BUCKET).key("anon/forged").body(ByteStream::from_static(b"x")).send().await;
    assert_eq!(sdk_error(r), (403, "SignatureDoesNotMatch".into()));
    assert_nothing_stored(h.holders("anon/forged").await, "anon/forged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_client_credentials_only_full_anonymous_mode_serves() {
    for mode in ["false", "read-only", ""] {
        let h = Harness::start_with(&SHARDS, &[("client_credentials", ""), ("allow_anonymous", mode)]).await;
        let checks = [
            anon(&h, "GET", &key_path("k"), &[], b"").await,
            anon(&h, "PUT", &key_path("k"), &[], b"data").await,
            anon(&h, "GET", "/", &[], b"").await,
            signed_put(&h, "k", b"data", &sha256_hex(b"data")).await,
        ];
        for r in checks {
            r.expect(500, "InternalError");
            assert!(r.text().contains("client_credentials"), "{}", r.text());
            assert!(!r.text().contains(LOCAL_SECRET_KEY), "{}", r.text());
        }
        let r = client_with(&h, LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY).put_object().bucket(VIRTUAL_BUCKET).key("k").body(ByteStream::from_static(b"x")).send().await;
        assert_eq!(sdk_error(r), (500, "InternalError".into()), "allow_anonymous={mode:?}");
        assert_nothing_stored(h.holders("k").await, "k");
    }
    // allow_anonymous=true without client credentials serves everyone (any signature counts as anonymous).
    let h = Harness::start_with(&SHARDS, &[("client_credentials", ""), ("allow_anonymous", "true")]).await;
    anon(&h, "PUT", &key_path("k"), &[], b"data").await.expect(200, "");
    assert_eq!(stored(&h, "k").await.as_deref(), Some(&b"data"[..]));
}

// ---------------------------------------------------------------------------------------------
// Presigned URLs, clock skew

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_urls_work_until_they_expire_and_cannot_be_tampered_with() {
    let h = Harness::start(&SHARDS).await;
    let s3 = h.client();
    let five_minutes = PresigningConfig::expires_in(Duration::from_secs(300)).unwrap();
    let target = |uri: &str| {
        let after_scheme = uri.split_once("://").unwrap().1;
        after_scheme[after_scheme.find('/').unwrap()..].to_string()
    };
    let send = |method: &'static str, target: String, headers: Vec<(String, String)>, body: Vec<u8>| {
        let mut all = vec![("Host".to_string(), h.proxy.to_string())];
        all.extend(headers);
        all.push(("Content-Length".into(), body.len().to_string()));
        let head = request_head(method, &target, &all);
        exchange(h.proxy, head, body)
    };
    let presigned_headers = |p: &aws_sdk_s3::presigning::PresignedRequest| -> Vec<(String, String)> {
        p.headers().filter(|(k, _)| !k.eq_ignore_ascii_case("host")).map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };

    // PUT through a presigned URL, by a client that holds no credentials.
    let key = "presigned/with space+plus/obj";
    let put = s3.put_object().bucket(VIRTUAL_BUCKET).key(key).presigned(five_minutes.clone()).await.unwrap();
    let r = send("PUT", target(put.uri()), presigned_headers(&put), b"presigned body".to_vec()).await;
    r.expect(200, "");
    assert_eq!(stored(&h, key).await.as_deref(), Some(&b"presigned body"[..]));

    let get = s3.get_object().bucket(VIRTUAL_BUCKET).key(key).presigned(five_minutes.clone()).await.unwrap();
    let r = send("GET", target(get.uri()), presigned_headers(&get), vec![]).await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"presigned body"[..]), "{}", r.text());

    // Tampering: another key, a longer expiry, another method, a flipped signature digit.
    let get_target = target(get.uri());
    let other_key = get_target.replacen("obj?", "other?", 1);
    send("GET", other_key, vec![], vec![]).await.expect(403, "SignatureDoesNotMatch");
    let longer = get_target.replace("X-Amz-Expires=300", "X-Amz-Expires=3600");
    assert_ne!(longer, get_target);
    send("GET", longer, vec![], vec![]).await.expect(403, "SignatureDoesNotMatch");
    send("DELETE", get_target.clone(), vec![], vec![]).await.expect(403, "SignatureDoesNotMatch");
    let sig_at = get_target.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let mut flipped = get_target.clone().into_bytes();
    flipped[sig_at] = if flipped[sig_at] == b'0' { b'1' } else { b'0' };
    send("GET", String::from_utf8(flipped).unwrap(), vec![], vec![]).await.expect(403, "SignatureDoesNotMatch");
    assert_eq!(stored(&h, key).await.as_deref(), Some(&b"presigned body"[..]), "the DELETE must not have run");

    // A presigned PUT reused for another key stores nothing anywhere.
    let put_target = target(put.uri()).replacen("obj?", "evil?", 1);
    send("PUT", put_target, presigned_headers(&put), b"evil".to_vec()).await.expect(403, "SignatureDoesNotMatch");
    assert_nothing_stored(h.holders("presigned/with space+plus/evil").await, "evil");
    // A presigned PUT turned into a copy of another object by an added (unsigned) x-amz-copy-source.
    let r = send("PUT", target(put.uri()), vec![("x-amz-copy-source".into(), format!("/{VIRTUAL_BUCKET}/presigned/secret"))], vec![]).await;
    r.expect(403, "AccessDenied");
    assert_eq!(stored(&h, key).await.as_deref(), Some(&b"presigned body"[..]));
    // Presigned and an Authorization header at once is refused.
    let s = Sign::new("GET", &key_path(key), sigv4::payload::EMPTY_SHA256).sign(&h);
    let both = Signed { target: target(get.uri()), ..s };
    both.send(&h, "GET", &[], vec![]).await.expect(400, "InvalidArgument");

    // Expired: signed two hours ago for one minute.
    let stale = PresigningConfig::builder()
        .start_time(SystemTime::now() - Duration::from_secs(7200))
        .expires_in(Duration::from_secs(60))
        .build()
        .unwrap();
    let old_get = s3.get_object().bucket(VIRTUAL_BUCKET).key(key).presigned(stale.clone()).await.unwrap();
    send("GET", target(old_get.uri()), vec![], vec![]).await.expect(403, "AccessDenied");
    let old_put = s3.put_object().bucket(VIRTUAL_BUCKET).key("presigned/late").presigned(stale).await.unwrap();
    send("PUT", target(old_put.uri()), presigned_headers(&old_put), b"late".to_vec()).await.expect(403, "AccessDenied");
    assert_nothing_stored(h.holders("presigned/late").await, "presigned/late");
    // Signed by a stranger, or with a wrong secret.
    let stranger = common::s3_client(&h.proxy_url(), "stranger", LOCAL_SECRET_KEY);
    let p = stranger.get_object().bucket(VIRTUAL_BUCKET).key(key).presigned(five_minutes.clone()).await.unwrap();
    send("GET", target(p.uri()), vec![], vec![]).await.expect(403, "InvalidAccessKeyId");
    let forger = common::s3_client(&h.proxy_url(), LOCAL_ACCESS_KEY, "wrong-secret");
    let p = forger.put_object().bucket(VIRTUAL_BUCKET).key("presigned/forged").presigned(five_minutes).await.unwrap();
    send("PUT", target(p.uri()), presigned_headers(&p), b"forged".to_vec()).await.expect(403, "SignatureDoesNotMatch");
    assert_nothing_stored(h.holders("presigned/forged").await, "presigned/forged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_signed_with_a_skewed_clock_are_refused() {
    let h = Harness::start(&SHARDS).await;
    let body = b"skewed".to_vec();
    for skew in [-20 * 60, 20 * 60, -30 * 24 * 3600] {
        let path = key_path("skew/k");
        let hash = sha256_hex(&body);
        let mut s = Sign::new("PUT", &path, &hash);
        s.skew = skew;
        let r = s.sign(&h).send(&h, "PUT", &[("Content-Length", body.len().to_string())], body.clone()).await;
        r.expect(403, "RequestTimeTooSkewed");
        let mut s = Sign::new("GET", &path, sigv4::payload::EMPTY_SHA256);
        s.skew = skew;
        s.sign(&h).send(&h, "GET", &[], vec![]).await.expect(403, "RequestTimeTooSkewed");
    }
    assert_nothing_stored(h.holders("skew/k").await, "skew/k");
    // Within the 15 minutes S3 allows, it passes.
    let path = key_path("skew/k");
    let hash = sha256_hex(&body);
    let mut s = Sign::new("PUT", &path, &hash);
    s.skew = -10 * 60;
    s.sign(&h).send(&h, "PUT", &[("Content-Length", body.len().to_string())], body.clone()).await.expect(200, "");
    assert_eq!(stored(&h, "skew/k").await, Some(body));
}

// ---------------------------------------------------------------------------------------------
// Payload integrity

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_match_its_signed_hash_is_never_stored() {
    let h = Harness::start(&SHARDS).await;
    for (name, len) in [("small", 1000), ("large", LARGE)] {
        let body = data(len, 1);
        let mut other = body.clone();
        *other.last_mut().unwrap() ^= 1;
        let key = format!("sha/{name}");
        signed_put(&h, &key, &body, &sha256_hex(&other)).await.expect(400, "XAmzContentSHA256Mismatch");
        assert_nothing_stored(h.holders(&key).await, &key);
        // Uppercase hex of the right digest is the same digest.
        signed_put(&h, &key, &body, &sha256_hex(&body).to_ascii_uppercase()).await.expect(200, "");
        assert_eq!(stored(&h, &key).await, Some(body.clone()), "{name}");
        // An overwrite with a mismatching body leaves the old object intact.
        signed_put(&h, &key, &other, &sha256_hex(&body)).await.expect(400, "XAmzContentSHA256Mismatch");
        assert_eq!(stored(&h, &key).await, Some(body), "{name}");
    }
    // A captured signed PUT replayed with an added (unsigned) `Content-Encoding: aws-chunked` and
    // another body in aws-chunked framing: the signed digest still rules, nothing is stored.
    let good = b"the body that was signed".to_vec();
    let evil = b"a body the signer never saw".to_vec();
    let path = key_path("sha/replayed");
    let hash = sha256_hex(&good);
    let s = Sign::new("PUT", &path, &hash).sign(&h);
    let framed = aws_chunked(&evil, 8, None, &[], false);
    let unsigned = [
        ("Content-Length", framed.len().to_string()),
        ("Content-Encoding", "aws-chunked".to_string()),
        ("X-Amz-Decoded-Content-Length", evil.len().to_string()),
    ];
    s.send(&h, "PUT", &unsigned, framed).await.expect(400, "InvalidRequest");
    assert_nothing_stored(h.holders("sha/replayed").await, "sha/replayed");
    s.send(&h, "PUT", &[("Content-Length", good.len().to_string())], good.clone()).await.expect(200, "");
    assert_eq!(stored(&h, "sha/replayed").await, Some(good));

    // Garbage in x-amz-content-sha256 is refused before any body is read.
    signed_put(&h, "sha/garbage", b"x", "not-a-hash").await.expect(400, "InvalidArgument");
    assert_nothing_stored(h.holders("sha/garbage").await, "sha/garbage");
}

/// Send a streaming (aws-chunked) PUT of `data` with content-sha256 `mode` and `encode` building the body.
async fn chunked_put(
    h: &Harness,
    key: &str,
    mode: &str,
    decoded_len: usize,
    trailer: Option<&str>,
    encode: impl FnOnce(&mut ChunkSigner) -> Vec<u8>,
) -> Resp {
    let path = key_path(key);
    let len = decoded_len.to_string();
    let mut signed_headers = vec![("Content-Encoding", "aws-chunked"), ("X-Amz-Decoded-Content-Length", len.as_str())];
    if let Some(t) = trailer {
        signed_headers.push(("X-Amz-Trailer", t));
    }
    let mut s = Sign::new("PUT", &path, mode);
    s.headers = &signed_headers;
    let mut req = s.sign(h);
    let body = encode(&mut req.signer);
    req.send(h, "PUT", &[("Content-Length", body.len().to_string())], body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_aws_chunked_bodies_are_verified_chunk_by_chunk() {
    let h = Harness::start(&SHARDS).await;
    // "batched": sixteen equal chunks, which the component hashes four at a time (each lane of its
    // SIMD hash checked by a tampered chunk: the second here, the sixth below), then a short one.
    for (name, len, chunk) in [("small", 200_000, 64 * 1024), ("large", 3 * 1024 * 1024 + 11, 1024 * 1024), ("batched", 16 * 64 * 1024 + 5, 64 * 1024)] {
        let body = data(len, 2);
        let key = format!("chunked/{name}");
        let r = chunked_put(&h, &key, sigv4::payload::STREAMING_SIGNED, len, None, |s| aws_chunked(&body, chunk, Some(s), &[], false)).await;
        r.expect(200, "");
        assert_eq!(stored(&h, &key).await, Some(body.clone()), "{name}: stored exactly, without framing");
        assert_eq!(h.holders(&key).await, vec![h.owner(&key)]);

        // One byte of the second chunk changed after signing.
        let bad_key = format!("chunked/{name}-tampered");
        let r = chunked_put(&h, &bad_key, sigv4::payload::STREAMING_SIGNED, len, None, |s| {
            let mut framed = aws_chunked(&body, chunk, Some(s), &[], false);
            let header_len = framed.iter().position(|&b| b == b'\n').unwrap() + 1;
            let at = header_len + chunk + 2 + 90 + 17; // inside the second chunk's data
            framed[at] ^= 0x20;
            framed
        })
        .await;
        r.expect(403, "SignatureDoesNotMatch");
        assert_nothing_stored(h.holders(&bad_key).await, &bad_key);

        // One byte of the sixth chunk changed after signing (the second lane of the second four).
        if len > 6 * chunk {
            let r = chunked_put(&h, &bad_key, sigv4::payload::STREAMING_SIGNED, len, None, |s| {
                let mut framed = aws_chunked(&body, chunk, Some(s), &[], false);
                let header_len = framed.iter().position(|&b| b == b'\n').unwrap() + 1;
                framed[5 * (header_len + chunk + 2) + header_len + 1000] ^= 0x20;
                framed
            })
            .await;
            r.expect(403, "SignatureDoesNotMatch");
            assert_nothing_stored(h.holders(&bad_key).await, &bad_key);
        }

        // The last chunk tampered: everything before it was verified and streamed, still nothing is stored.
        let r = chunked_put(&h, &bad_key, sigv4::payload::STREAMING_SIGNED, len, None, |s| {
            let mut framed = aws_chunked(&body, chunk, Some(s), &[], false);
            // The tail is CRLF after the data, `0;chunk-signature=<64 hex>` CRLF, and the empty trailer's CRLF.
            let end_of_data = framed.len() - (2 + 18 + 64 + 2 + 2);
            framed[end_of_data - 1] ^= 1;
            framed
        })
        .await;
        r.expect(403, "SignatureDoesNotMatch");
        assert_nothing_stored(h.holders(&bad_key).await, &bad_key);

        // Chunks signed with another secret (a forged chain on a valid request signature).
        let r = chunked_put(&h, &bad_key, sigv4::payload::STREAMING_SIGNED, len, None, |s| {
            let date = clock::amz_date(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs());
            let mut forged = ChunkSigner::new(
                sigv4::sign::signing_key("wrong", &date[..8], REGION, "s3"),
                &date,
                &sigv4::sign::credential_scope(&date[..8], REGION, "s3"),
                s.previous_signature(),
            );
            aws_chunked(&body, chunk, Some(&mut forged), &[], false)
        })
        .await;
        r.expect(403, "SignatureDoesNotMatch");
        assert_nothing_stored(h.holders(&bad_key).await, &bad_key);

        // Chunk signatures stripped.
        let r = chunked_put(&h, &bad_key, sigv4::payload::STREAMING_SIGNED, len, None, |_| aws_chunked(&body, chunk, None, &[], false)).await;
        r.expect(400, "InvalidRequest");
        assert_nothing_stored(h.holders(&bad_key).await, &bad_key);

        // A decoded length that does not match the data.
        let r = chunked_put(&h, &bad_key, sigv4::payload::STREAMING_SIGNED, len - 1, None, |s| aws_chunked(&body, chunk, Some(s), &[], false)).await;
        r.expect(400, "IncompleteBody");
        assert_nothing_stored(h.holders(&bad_key).await, &bad_key);
        let r = chunked_put(&h, &bad_key, sigv4::payload::STREAMING_SIGNED, len + 1, None, |s| aws_chunked(&body, chunk, Some(s), &[], false)).await;
        r.expect(400, "IncompleteBody");
        assert_nothing_stored(h.holders(&bad_key).await, &bad_key);

        // The body cut short (final chunk missing).
        let r = chunked_put(&h, &bad_key, sigv4::payload::STREAMING_SIGNED, len, None, |s| {
            let mut framed = aws_chunked(&body, chunk, Some(s), &[], false);
            framed.truncate(framed.len() - 90);
            framed
        })
        .await;
        r.expect(400, "IncompleteBody");
        assert_nothing_stored(h.holders(&bad_key).await, &bad_key);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trailing_checksums_are_verified_before_the_object_completes() {
    let h = Harness::start(&SHARDS).await;
    let trailer = Some("x-amz-checksum-crc32");
    for (name, len, chunk) in [("small", 70_000, 8192), ("large", 2 * 1024 * 1024 + 5, 512 * 1024)] {
        let body = data(len, 3);
        let good = crc32_b64(&body);
        let bad = crc32_b64(b"something else");

        // STREAMING-UNSIGNED-PAYLOAD-TRAILER: unsigned chunks, checksum in the trailer.
        let key = format!("trailer/unsigned-{name}");
        let r = chunked_put(&h, &key, sigv4::payload::STREAMING_UNSIGNED_TRAILER, len, trailer, |_| {
            aws_chunked(&body, chunk, None, &[("x-amz-checksum-crc32", &good)], false)
        })
        .await;
        r.expect(200, "");
        assert_eq!(stored(&h, &key).await, Some(body.clone()), "{name}");
        let bad_key = format!("trailer/unsigned-{name}-bad");
        let r = chunked_put(&h, &bad_key, sigv4::payload::STREAMING_UNSIGNED_TRAILER, len, trailer, |_| {
            aws_chunked(&body, chunk, None, &[("x-amz-checksum-crc32", &bad)], false)
        })
        .await;
        r.expect(400, "BadDigest");
        assert_nothing_stored(h.holders(&bad_key).await, &bad_key);
        // Data changed in flight (checksum of the original).
        let mut changed = body.clone();
        changed[len / 2] ^= 4;
        let r = chunked_put(&h, &bad_key, sigv4::payload::STREAMING_UNSIGNED_TRAILER, len, trailer, |_| {
            aws_chunked(&changed, chunk, None, &[("x-amz-checksum-crc32", &good)], false)
        })
        .await;
        r.expect(400, "BadDigest");
        assert_nothing_stored(h.holders(&bad_key).await, &bad_key);
        // The declared trailer missing from the body.
        let r = chunked_put(&h, &bad_key, sigv4::payload::STREAMING_UNSIGNED_TRAILER, len, trailer, |_| aws_chunked(&body, chunk, None, &[], false)).await;
        r.expect(400, "InvalidRequest");
        assert_nothing_stored(h.holders(&bad_key).await, &bad_key);

        // STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: signed chunks and a signed trailer.
        let key = format!("trailer/signed-{name}");
        let r = chunked_put(&h, &key, sigv4::payload::STREAMING_SIGNED_TRAILER, len, trailer, |s| {
            aws_chunked(&body, chunk, Some(s), &[("x-amz-checksum-crc32", &good)], true)
        })
        .await;
        r.expect(200, "");
        assert_eq!(stored(&h, &key).await, Some(body.clone()), "{name}");
        let bad_key = format!("trailer/signed-{name}-bad");
        // A correctly signed trailer carrying a wrong checksum.
        let r = chunked_put(&h, &bad_key, sigv4::payload::STREAMING_SIGNED_TRAILER, len, trailer, |s| {
            aws_chunked(&body, chunk, Some(s), &[("x-amz-checksum-crc32", &bad)], true)
        })
        .await;
        r.expect(400, "BadDigest");
        assert_nothing_stored(h.holders(&bad_key).await, &bad_key);
        // The trailer changed after signing.
        let r = chunked_put(&h, &bad_key, sigv4::payload::STREAMING_SIGNED_TRAILER, len, trailer, |s| {
            let framed = aws_chunked(&body, chunk, Some(s), &[("x-amz-checksum-crc32", &good)], true);
            let text = String::from_utf8_lossy(&framed).into_owned();
            assert!(text.contains(&good));
            let mut framed = framed;
            let at = framed.windows(good.len()).rposition(|w| w == good.as_bytes()).unwrap();
            framed[at..at + bad.len()].copy_from_slice(bad.as_bytes());
            framed
        })
        .await;
        r.expect(403, "SignatureDoesNotMatch");
        assert_nothing_stored(h.holders(&bad_key).await, &bad_key);
        // The trailer signature left out.
        let r = chunked_put(&h, &bad_key, sigv4::payload::STREAMING_SIGNED_TRAILER, len, trailer, |s| {
            aws_chunked(&body, chunk, Some(s), &[("x-amz-checksum-crc32", &good)], false)
        })
        .await;
        r.expect(400, "InvalidRequest");
        assert_nothing_stored(h.holders(&bad_key).await, &bad_key);
    }
}

/// Records the headers of each request the SDK sends.
#[derive(Debug, Default, Clone)]
struct SeenHeaders(Arc<Mutex<Vec<Vec<(String, String)>>>>);

impl aws_sdk_s3::config::Intercept for SeenHeaders {
    fn name(&self) -> &'static str {
        "SeenHeaders"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_s3::config::RuntimeComponents,
        _: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        let headers = context.request().headers().iter().map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())).collect();
        self.0.lock().unwrap().push(headers);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_streaming_uploads_store_exact_bytes() {
    let h = Harness::start(&SHARDS).await;
    let seen = SeenHeaders::default();
    let conf = h.client().config().to_builder().interceptor(seen.clone()).build();
    let s3 = aws_sdk_s3::Client::from_conf(conf);
    let dir = common::temp_dir("auth-upload");
    for (name, len) in [("small", 123_457), ("large", 3 * 1024 * 1024 + 3)] {
        let body = data(len, 4);
        let file = dir.join(name);
        std::fs::write(&file, &body).unwrap();
        let key = format!("sdk-stream/{name}");
        s3.put_object().bucket(VIRTUAL_BUCKET).key(&key).body(ByteStream::from_path(&file).await.unwrap()).send().await.unwrap();
        let headers = seen.0.lock().unwrap().last().cloned().unwrap();
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert!(get("content-encoding").is_some_and(|v| v.contains("aws-chunked")), "the SDK sent {headers:?}");
        assert!(get("x-amz-trailer").is_some(), "the SDK sent {headers:?}");
        assert_eq!(get("x-amz-decoded-content-length"), Some(len.to_string()));
        assert_eq!(stored(&h, &key).await, Some(body.clone()), "{name}");
        assert_eq!(h.holders(&key).await, vec![h.owner(&key)]);
        let got = s3.get_object().bucket(VIRTUAL_BUCKET).key(&key).send().await.unwrap();
        assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), &body[..]);

        // The trailer's checksum reached the backend, which stored it as S3 does: as a header for
        // a body small enough to hold, in a trailer framed again for one that streams (large).
        let mut crc32 = tempo_s3_shard_core::checksum::Checksummer::new(tempo_s3_shard_core::checksum::ChecksumAlgorithm::Crc32);
        crc32.update(&body);
        let head = s3.head_object().bucket(VIRTUAL_BUCKET).key(&key).checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled).send().await.unwrap();
        assert_eq!(head.checksum_crc32(), Some(crc32.finish_base64().as_str()), "{name}");
        assert_eq!(head.content_encoding(), None, "{name}: aws-chunked is framing, not the object's encoding");
    }
}

// ---------------------------------------------------------------------------------------------
// Hardened input

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_hostile_requests_get_s3_errors() {
    let h = Harness::start(&SHARDS).await;
    let s3 = h.client();
    s3.put_object().bucket(VIRTUAL_BUCKET).key("in/existing").body(ByteStream::from_static(b"keep")).send().await.unwrap();
    // A key that really exists on shard1, to prove no request reaches a shard bucket by name.
    h.direct().put_object().bucket("shard1").key("in/raw").body(ByteStream::from_static(b"shard data")).send().await.unwrap();
    let upload = s3.create_multipart_upload().bucket(VIRTUAL_BUCKET).key("in/mp").send().await.unwrap();
    let upload_id = upload.upload_id().unwrap().to_string();
    let long_key = "k".repeat(1025);
    let long_path = key_path(&long_key);

    let cases: Vec<(&str, String, Vec<(&str, &str)>, u16, &str)> = vec![
        ("GET", long_path.clone(), vec![], 400, "KeyTooLongError"),
        ("PUT", long_path.clone(), vec![], 400, "KeyTooLongError"),
        ("GET", format!("/{VIRTUAL_BUCKET}/bad%zzescape"), vec![], 400, "InvalidArgument"),
        ("GET", format!("/{VIRTUAL_BUCKET}/bad%c3"), vec![], 400, "InvalidArgument"),
        ("GET", format!("/{VIRTUAL_BUCKET}/trailing%"), vec![], 400, "InvalidArgument"),
        ("PUT", format!("/{VIRTUAL_BUCKET}/nul%00key"), vec![], 400, "InvalidArgument"),
        ("GET", format!("/{VIRTUAL_BUCKET}"), vec![("list-type", "2"), ("max-keys", "abc")], 400, "InvalidArgument"),
        ("GET", format!("/{VIRTUAL_BUCKET}"), vec![("list-type", "2"), ("max-keys", "-1")], 400, "InvalidArgument"),
        ("GET", format!("/{VIRTUAL_BUCKET}"), vec![("list-type", "2"), ("max-keys", "99999999999999999999")], 400, "InvalidArgument"),
        ("GET", format!("/{VIRTUAL_BUCKET}"), vec![("list-type", "3")], 400, "InvalidArgument"),
        ("GET", format!("/{VIRTUAL_BUCKET}"), vec![("list-type", "2"), ("continuation-token", "forged-token")], 400, "InvalidArgument"),
        ("PUT", key_path("in/mp"), vec![("partNumber", "0"), ("uploadId", &upload_id)], 400, "InvalidArgument"),
        ("PUT", key_path("in/mp"), vec![("partNumber", "10001"), ("uploadId", &upload_id)], 400, "InvalidArgument"),
        ("PUT", key_path("in/mp"), vec![("partNumber", "abc"), ("uploadId", &upload_id)], 400, "InvalidArgument"),
        ("PUT", key_path("in/mp"), vec![("partNumber", "-1"), ("uploadId", &upload_id)], 400, "InvalidArgument"),
        ("PUT", key_path("in/mp"), vec![("partNumber", "1"), ("partNumber", "2"), ("uploadId", &upload_id)], 400, "InvalidArgument"),
        ("GET", key_path("in/existing"), vec![("partNumber", "0")], 400, "InvalidArgument"),
        ("GET", key_path("in/existing"), vec![("partNumber", "x")], 400, "InvalidArgument"),
        ("GET", key_path("in/mp"), vec![("uploadId", &upload_id), ("max-parts", "lots")], 400, "InvalidArgument"),
        ("GET", format!("/{VIRTUAL_BUCKET}"), vec![("versioning", "")], 501, "NotImplemented"),
        ("GET", key_path("in/existing"), vec![("acl", "")], 501, "NotImplemented"),
        ("PUT", key_path("in/existing"), vec![("acl", "")], 501, "NotImplemented"),
        ("POST", key_path("in/existing"), vec![("select", ""), ("select-type", "2")], 501, "NotImplemented"),
        ("PUT", format!("/{VIRTUAL_BUCKET}"), vec![], 501, "NotImplemented"),
        ("DELETE", format!("/{VIRTUAL_BUCKET}"), vec![], 501, "NotImplemented"),
        ("PUT", format!("/{VIRTUAL_BUCKET}"), vec![("policy", "")], 501, "NotImplemented"),
        ("GET", "/shard1/in/raw".into(), vec![], 404, "NoSuchBucket"),
        ("DELETE", "/shard1/in/raw".into(), vec![], 404, "NoSuchBucket"),
        ("PUT", "/shard2/in/planted".into(), vec![], 404, "NoSuchBucket"),
        ("GET", "/shard1".into(), vec![("list-type", "2")], 404, "NoSuchBucket"),
        ("DELETE", "/shard3".into(), vec![], 404, "NoSuchBucket"),
        ("GET", "/other-bucket/k".into(), vec![], 404, "NoSuchBucket"),
    ];
    for (method, path, query, status, code) in &cases {
        let r = signed(&h, method, path, query).await;
        assert_eq!((r.status, r.code().unwrap_or_default().as_str()), (*status, *code), "{method} {path} {query:?}: {}", r.text());
    }
    assert_eq!(stored(&h, "in/existing").await.as_deref(), Some(&b"keep"[..]));
    let raw = h.direct().get_object().bucket("shard1").key("in/raw").send().await.unwrap();
    assert_eq!(raw.body.collect().await.unwrap().into_bytes().as_ref(), b"shard data");
    for b in SHARDS {
        assert!(h.direct().head_object().bucket(b).key("in/planted").send().await.is_err());
    }
    assert_nothing_stored(h.holders(&long_key).await, "the long key");

    // Copying from a shard bucket by name is refused too.
    let r = s3.copy_object().bucket(VIRTUAL_BUCKET).key("in/copied").copy_source("shard1/in/raw").send().await;
    assert_eq!(sdk_error(r).1, "NoSuchBucket");
    assert_nothing_stored(h.holders("in/copied").await, "in/copied");

    // Malformed XML bodies.
    for body in [&b"<CompleteMultipartUpload><Part>"[..], b"not xml at all", b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber></Part></CompleteMultipartUpload>"] {
        let path = key_path("in/mp");
        let hash = sha256_hex(body);
        let mut s = Sign::new("POST", &path, &hash);
        let q = [("uploadId", upload_id.as_str())];
        s.query = &q;
        let r = s.sign(&h).send(&h, "POST", &[("Content-Length", body.len().to_string())], body.to_vec()).await;
        r.expect(400, "MalformedXML");
    }
    assert_nothing_stored(h.holders("in/mp").await, "in/mp");
    for body in [&b"<Delete><Object><Key>in/existing</Key></Object>"[..], b"\x00\xff garbage", b"<Delete><Object><Key></Key></Object></Delete>", b"<Other/>"] {
        let path = format!("/{VIRTUAL_BUCKET}");
        let hash = sha256_hex(body);
        let mut s = Sign::new("POST", &path, &hash);
        let q = [("delete", "")];
        s.query = &q;
        let sum = ("x-amz-checksum-crc32", crc32_b64(body));
        let r = s.sign(&h).send(&h, "POST", &[("Content-Length", body.len().to_string()), sum], body.to_vec()).await;
        r.expect(400, "MalformedXML");
    }
    assert_eq!(stored(&h, "in/existing").await.as_deref(), Some(&b"keep"[..]));

    // Declared sizes over 5 GiB, plain and aws-chunked, refused before any body is read.
    let path = key_path("in/huge");
    let s = Sign::new("PUT", &path, sigv4::payload::UNSIGNED_PAYLOAD).sign(&h);
    s.send(&h, "PUT", &[("Content-Length", "5368709121".into())], b"a few bytes".to_vec()).await.expect(400, "EntityTooLarge");
    let r = chunked_put(&h, "in/huge", sigv4::payload::STREAMING_SIGNED, 6 << 30, None, |s| aws_chunked(b"abc", 3, Some(s), &[], false)).await;
    r.expect(400, "EntityTooLarge");
    assert_nothing_stored(h.holders("in/huge").await, "in/huge");
    let parts = s3.list_parts().bucket(VIRTUAL_BUCKET).key("in/mp").upload_id(&upload_id).send().await.unwrap();
    assert!(parts.parts().is_empty(), "no invalid part was uploaded");
    s3.abort_multipart_upload().bucket(VIRTUAL_BUCKET).key("in/mp").upload_id(&upload_id).send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_like_keys_are_stored_exactly_on_their_owner() {
    let h = Harness::start(&SHARDS).await;
    let s3 = h.client();
    // (s3s-fs cannot store keys with a leading '/': `recording_backend_sees_keys_verbatim` covers those.)
    let keys = ["a/../b", "x/./y", "dots/..z/...", "double//slash", "trailing-dot.", "...", "a/.../b", "%2E%2E/literal", "sp ace/%/?#[]"];
    for key in keys {
        let body = format!("body of {key}");
        s3.put_object().bucket(VIRTUAL_BUCKET).key(key).body(ByteStream::from(body.clone().into_bytes())).send().await.unwrap_or_else(|e| panic!("{key}: {e:?}"));
        let got = s3.get_object().bucket(VIRTUAL_BUCKET).key(key).send().await.unwrap();
        assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), body.as_bytes(), "{key}");
        assert_eq!(h.holders(key).await, vec![h.owner(key)], "{key}");
        // (s3s-fs stores objects as files, so its listings show such paths normalised: skip those.)
        if !key.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            let listed = s3.list_objects_v2().bucket(VIRTUAL_BUCKET).prefix(key).send().await.unwrap();
            assert!(listed.contents().iter().any(|o| o.key() == Some(key)), "{key} is listed as itself");
        }
    }
    // Keys whose dot segments climb back to the shard bucket or out of it would reach another
    // bucket (or a bucket-level operation) on any backend that normalises paths: refused.
    h.direct().put_object().bucket("shard2").key("victim").body(ByteStream::from_static(b"victim")).send().await.unwrap();
    for key in ["../shard2/planted", "a/../../shard2/victim", "..", "a/..", ".", "/", "x/y/../../"] {
        for method in ["PUT", "GET", "DELETE", "HEAD"] {
            let r = if method == "PUT" {
                signed_put(&h, key, b"planted", &sha256_hex(b"planted")).await
            } else {
                signed(&h, method, &key_path(key), &[]).await
            };
            if method == "HEAD" {
                assert_eq!(r.status, 400, "{method} {key}");
            } else {
                r.expect(400, "InvalidArgument");
            }
        }
    }
    for b in SHARDS {
        assert!(h.direct().head_object().bucket(b).key("planted").send().await.is_err(), "planted in {b}");
    }
    assert!(h.direct().head_object().bucket("shard2").key("victim").send().await.is_ok(), "the victim survives");
    s3.head_bucket().bucket(VIRTUAL_BUCKET).send().await.unwrap();
}

/// A stand-in S3 backend that records each request's method and path and answers every PUT with 200 and every
/// GET with the body last PUT at the same path.
async fn recording_backend() -> (SocketAddr, Arc<Mutex<Vec<(String, String)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let objects: Arc<Mutex<std::collections::HashMap<String, Vec<u8>>>> = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (log, objects) = (log.clone(), objects.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut tmp = vec![0u8; 16 * 1024];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match socket.read(&mut tmp).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let length: usize = head
                        .lines()
                        .filter_map(|l| l.split_once(':'))
                        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < end + 4 + length {
                        match socket.read(&mut tmp).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    }
                    let body = buf[end + 4..end + 4 + length].to_vec();
                    buf.drain(..end + 4 + length);
                    let mut line = head.lines().next().unwrap_or("").split(' ');
                    let method = line.next().unwrap_or("").to_string();
                    // The path without the query (the SDK's `x-id=PutObject` and the like).
                    let target = line.next().unwrap_or("").split('?').next().unwrap_or("").to_string();
                    log.lock().unwrap().push((method.clone(), target.clone()));
                    let reply = if method == "PUT" {
                        objects.lock().unwrap().insert(target, body);
                        Vec::from(&b"HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 0\r\n\r\n"[..])
                    } else {
                        let data = objects.lock().unwrap().get(&target).cloned().unwrap_or_default();
                        let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", data.len()).into_bytes();
                        r.extend_from_slice(&data);
                        r
                    };
                    if socket.write_all(&reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_backend_sees_keys_verbatim_in_the_owner_bucket() {
    let (backend, seen) = recording_backend().await;
    let buckets: Vec<String> = SHARDS.iter().map(|s| s.to_string()).collect();
    let variables = std::collections::HashMap::from([
        ("buckets".to_string(), buckets.join(",")),
        ("endpoint".to_string(), format!("http://{backend}")),
        ("access_key_id".to_string(), LOCAL_ACCESS_KEY.to_string()),
        ("secret_access_key".to_string(), LOCAL_SECRET_KEY.to_string()),
        ("client_credentials".to_string(), format!("{LOCAL_ACCESS_KEY}:{LOCAL_SECRET_KEY}")),
    ]);
    let (proxy, server, _) = common::start_proxy(variables).await;
    let s3 = common::s3_client(&format!("http://{proxy}"), LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY);
    let ring = tempo_s3_shard_core::ring::Ring::new(&buckets);
    for key in ["/leading", "//two/leading", "a/../b", "x/./y", "double//slash//", "...", "%2E%2E", "sp ace/+plus"] {
        let body = format!("body of {key}");
        s3.put_object().bucket(VIRTUAL_BUCKET).key(key).body(ByteStream::from(body.clone().into_bytes())).send().await.unwrap_or_else(|e| panic!("{key}: {e:?}"));
        let got = s3.get_object().bucket(VIRTUAL_BUCKET).key(key).send().await.unwrap();
        assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), body.as_bytes(), "{key}: {:?}", seen.lock().unwrap());
        let expected = format!("/{}/{}", ring.owner(key), codec::uri_encode(key, false));
        let seen = seen.lock().unwrap().clone();
        let last_two: Vec<(String, String)> = seen[seen.len() - 2..].to_vec();
        assert_eq!(last_two, vec![("PUT".to_string(), expected.clone()), ("GET".to_string(), expected)], "{key}");
    }
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_numerous_headers_never_hang_the_proxy() {
    let h = Harness::start(&SHARDS).await;
    let big = "v".repeat(64 * 1024);
    // A 64 KiB value in an ordinary header and in the Authorization header.
    let r = anon(&h, "GET", &key_path("k"), &[("x-junk", &big)], b"").await;
    eprintln!("64 KiB x-junk header: {} {:?}", r.status, r.code());
    assert!(r.status == 403 || r.status == 431 || r.status == 0, "{} {}", r.status, r.text());
    let auth = format!("AWS4-HMAC-SHA256 Credential={big}");
    let r = anon(&h, "GET", &key_path("k"), &[("Authorization", &auth)], b"").await;
    eprintln!("64 KiB Authorization header: {} {:?}", r.status, r.code());
    assert!(matches!(r.status, 400 | 403 | 431 | 0), "{} {}", r.status, r.text());
    assert!(r.status == 0 || r.status == 431 || r.code().is_some(), "{}", r.text());
    // A signed PUT carrying 64 KiB of user metadata: refused by someone, never stored half-way.
    let path = key_path("hdr/meta");
    let mut s = Sign::new("PUT", &path, sigv4::payload::UNSIGNED_PAYLOAD);
    let meta = [("x-amz-meta-big", big.as_str())];
    s.headers = &meta;
    let r = s.sign(&h).send(&h, "PUT", &[("Content-Length", "1".into())], b"x".to_vec()).await;
    eprintln!("64 KiB signed x-amz-meta-big: {} {:?}", r.status, r.code());
    assert!(r.status >= 400 || r.status == 0 || r.status == 200, "{}", r.text());
    if r.status != 200 {
        assert_nothing_stored(h.holders("hdr/meta").await, "hdr/meta");
    }
    // 1 MiB of headers, and thousands of headers.
    let huge = "h".repeat(1024 * 1024);
    let r = anon(&h, "GET", &key_path("k"), &[("x-huge", &huge)], b"").await;
    eprintln!("1 MiB header: {} {:?}", r.status, r.code());
    assert!(r.status == 0 || r.status >= 400, "{}", r.status);
    let many: Vec<(String, String)> = (0..5000).map(|i| (format!("x-h{i}"), "v".to_string())).collect();
    let many_ref: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = anon(&h, "GET", &key_path("k"), &many_ref, b"").await;
    eprintln!("5000 headers: {} {:?}", r.status, r.code());
    assert!(r.status == 0 || r.status >= 400, "{}", r.status);
    // A request line with a 200 KiB path.
    let r = anon(&h, "GET", &format!("/{VIRTUAL_BUCKET}/{}", "p".repeat(200 * 1024)), &[], b"").await;
    eprintln!("200 KiB path: {} {:?}", r.status, r.code());
    assert!(r.status == 0 || r.status >= 400, "{}", r.status);
    // Still serving.
    h.client().put_object().bucket(VIRTUAL_BUCKET).key("hdr/after").body(ByteStream::from_static(b"fine")).send().await.unwrap();
    assert_eq!(stored(&h, "hdr/after").await.as_deref(), Some(&b"fine"[..]));
}

// ---------------------------------------------------------------------------------------------
// Secrets never leak

const CLIENT_SECRET: &str = "client-secret-7f3a9c2e";
const OTHER_CLIENT_SECRET: &str = "other-client-secret-1d5b";

/// Provokes every kind of error, asserting no response body names a secret. Runs only when
/// [`no_secret_reaches_responses_or_stderr`] starts this test binary again with its stderr captured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leak_scenarios_child() {
    if std::env::var_os("TEMPO_AUTH_LEAK_CHILD").is_none() {
        return;
    }
    let secrets = [LOCAL_SECRET_KEY, CLIENT_SECRET, OTHER_CLIENT_SECRET];
    let check = |what: &str, body: &str| {
        for s in secrets {
            assert!(!body.contains(s), "{what}: the response names a secret: {body}");
        }
    };
    let creds = format!("client-one:{CLIENT_SECRET},client-two:{OTHER_CLIENT_SECRET}");
    let h = Harness::start_with(&SHARDS, &[("client_credentials", &creds)]).await;
    let good = client_with(&h, "client-one", CLIENT_SECRET);
    good.put_object().bucket(VIRTUAL_BUCKET).key("leak/k").body(ByteStream::from_static(b"x")).send().await.unwrap();
    // Authentication failures of every kind.
    for (ak, secret) in [("client-one", OTHER_CLIENT_SECRET), ("client-two", CLIENT_SECRET), ("nobody", CLIENT_SECRET), (LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY)] {
        let c = client_with(&h, ak, secret);
        let r = c.get_object().bucket(VIRTUAL_BUCKET).key("leak/k").send().await.unwrap_err();
        let body = r.raw_response().map(|r| String::from_utf8_lossy(r.body().bytes().unwrap_or_default()).to_string()).unwrap_or_default();
        check(ak, &body);
        check(ak, &format!("{r:?}"));
    }
    let mut responses = vec![
        anon(&h, "GET", &key_path("leak/k"), &[], b"").await,
        anon(&h, "GET", &key_path("leak/k"), &[("Authorization", "AWS4-HMAC-SHA256 Credential=client-one/20200101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00")], b"").await,
        anon(&h, "GET", &key_path("leak/k"), &[("Authorization", "AWS client-one:abc")], b"").await,
    ];
    let path = key_path("leak/skew");
    let mut s = Sign::new("GET", &path, sigv4::payload::EMPTY_SHA256);
    s.access_key = "client-one";
    s.secret = CLIENT_SECRET;
    s.skew = 3600;
    responses.push(s.sign(&h).send(&h, "GET", &[], vec![]).await);
    let mut s = Sign::new("PUT", &path, sigv4::payload::STREAMING_SIGNED);
    s.access_key = "client-one";
    s.secret = CLIENT_SECRET;
    responses.push(s.sign(&h).send(&h, "PUT", &[("Content-Length", "5".into()), ("X-Amz-Decoded-Content-Length", "1".into())], b"hello".to_vec()).await);
    let leak_path = key_path("leak/k");
    // Backend failures: failing backends, then backends that reject the proxy's own signature.
    h.backend.set_failing(true);
    let r = good.get_object().bucket(VIRTUAL_BUCKET).key("leak/k").send().await.unwrap_err();
    check("failing backend", &format!("{r:?}"));
    let mut s = Sign::new("GET", &leak_path, sigv4::payload::EMPTY_SHA256);
    s.access_key = "client-one";
    s.secret = CLIENT_SECRET;
    responses.push(s.sign(&h).send(&h, "GET", &[], vec![]).await);
    h.backend.set_failing(false);
    let wrong_backend = Harness::start_with(&SHARDS, &[("client_credentials", &creds), ("secret_access_key", OTHER_CLIENT_SECRET)]).await;
    let mut s = Sign::new("GET", &leak_path, sigv4::payload::EMPTY_SHA256);
    s.access_key = "client-one";
    s.secret = CLIENT_SECRET;
    let r = s.sign(&wrong_backend).send(&wrong_backend, "GET", &[], vec![]).await;
    assert_eq!(r.code().as_deref(), Some("SignatureDoesNotMatch"), "{}", r.text());
    responses.push(r);
    // Configuration errors next to secrets.
    for vars in [
        vec![("client_credentials", format!("client-one:{CLIENT_SECRET},broken"))],
        vec![("client_credentials", format!("client one:{CLIENT_SECRET}"))],
        vec![("client_credentials", format!("{{\"client-one\": \"{CLIENT_SECRET}\""))],
        vec![("client_credentials", format!("client-one:{CLIENT_SECRET},client-one:{OTHER_CLIENT_SECRET}"))],
        vec![("access_key_id", String::new())],
        vec![("endpoint", format!("http://user:{CLIENT_SECRET}@127.0.0.1:1"))],
    ] {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let bad = Harness::start_with(&SHARDS, &vars).await;
        let r = anon(&bad, "GET", &key_path("k"), &[], b"").await;
        assert_eq!(r.status, 500, "{vars:?}: {}", r.text());
        responses.push(r);
    }
    for r in &responses {
        check("response", &r.text());
        for (k, v) in &r.headers {
            check(k, v);
        }
    }
    eprintln!("leak scenarios done: {} responses checked", responses.len());
}

#[test]
fn no_secret_reaches_responses_or_stderr() {
    if std::env::var_os("TEMPO_AUTH_LEAK_CHILD").is_some() {
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "auth::leak_scenarios_child", "--nocapture", "--test-threads=1"])
        .env("TEMPO_AUTH_LEAK_CHILD", "1")
        .env("TEMPO_S3_SHARD_TEST_LOG", "1")
        .output()
        .expect("run the leak scenarios");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "leak scenarios failed:\n{stdout}\n{stderr}");
    assert!(stderr.contains("leak scenarios done"), "the scenarios did not run:\n{stdout}\n{stderr}");
    assert!(stdout.contains("\"operation\":\"Invalid\""), "the component's output was not captured:\n{stdout}");
    for secret in [LOCAL_SECRET_KEY, CLIENT_SECRET, OTHER_CLIENT_SECRET] {
        assert!(!stderr.contains(secret), "stderr names a secret:\n{stderr}");
        assert!(!stdout.contains(secret), "stdout names a secret:\n{stdout}");
    }
}

// ---------------------------------------------------------------------------------------------
// Date header forms (issue 13, defect 1)

const WEEKDAYS: [&str; 7] = ["Thursday", "Friday", "Saturday", "Sunday", "Monday", "Tuesday", "Wednesday"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// `t` in the HTTP date forms S3 reads: RFC 1123 with `zone` (GMT, or `+hhmm` east of UTC, whose
/// local time is written), RFC 850 and asctime.
fn http_dates(t: u64) -> Vec<String> {
    let parts = |t: u64| {
        let amz = clock::amz_date(t);
        let (y, m, d) = (&amz[0..4], amz[4..6].parse::<usize>().unwrap(), &amz[6..8]);
        let hms = format!("{}:{}:{}", &amz[9..11], &amz[11..13], &amz[13..15]);
        (WEEKDAYS[(t / 86_400 % 7) as usize], y.to_string(), MONTHS[m - 1], d.to_string(), hms)
    };
    let rfc1123 = |t: u64, zone: &str| {
        let (wd, y, mon, d, hms) = parts(t);
        format!("{}, {d} {mon} {y} {hms} {zone}", &wd[..3])
    };
    let (wd, y, mon, d, hms) = parts(t);
    vec![
        rfc1123(t, "-0000"), // botocore's email.utils.formatdate
        rfc1123(t, "GMT"),
        rfc1123(t, "UTC"),
        rfc1123(t + 3600, "+0100"),
        rfc1123(t - 5 * 3600 - 1800, "-0530"),
        format!("{wd}, {d}-{mon}-{} {hms} GMT", &y[2..]),
        format!("{} {mon} {:>2} {hms} {y}", &wd[..3], d.trim_start_matches('0')),
        clock::amz_date(t),
    ]
}

/// A request signed with SigV4 whose time comes from the `Date` header (no X-Amz-Date), as
/// botocore signs when a Date header is set; the string to sign carries `signing_time`.
async fn date_signed(h: &Harness, method: &str, path: &str, date: &str, signing_time: u64, body: &[u8]) -> Resp {
    let payload_hash = sha256_hex(body);
    let amz_date = clock::amz_date(signing_time);
    let mut headers: Vec<(String, String)> = vec![
        ("Host".into(), h.proxy.to_string()),
        ("Date".into(), date.to_string()),
        ("X-Amz-Content-Sha256".into(), payload_hash.clone()),
    ];
    let authorization = sigv4::sign::sign_headers(&SignRequest {
        method,
        canonical_uri: path,
        query: &[],
        headers: &headers,
        payload_hash: &payload_hash,
        access_key_id: LOCAL_ACCESS_KEY,
        secret_access_key: LOCAL_SECRET_KEY,
        region: REGION,
        service: "s3",
        amz_date: &amz_date,
    });
    headers.push(("Authorization".into(), authorization));
    headers.push(("Content-Length".into(), body.len().to_string()));
    exchange(h.proxy, request_head(method, path, &headers), body.to_vec()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_signed_with_a_date_header_in_any_http_date_form_are_accepted() {
    let h = Harness::start(&SHARDS).await;
    let now = clock::now_unix();
    for (i, date) in http_dates(now).iter().enumerate() {
        let path = key_path(&format!("date-forms/{i}"));
        let r = date_signed(&h, "PUT", &path, date, now, b"dated").await;
        assert_eq!(r.status, 200, "PUT signed with Date: {date}: {}", r.text());
        let r = date_signed(&h, "GET", &path, date, now, b"").await;
        assert_eq!((r.status, r.body.as_slice()), (200, &b"dated"[..]), "GET signed with Date: {date}");
    }
    // The zone is honoured: the same wall-clock time one minute east of UTC is another instant,
    // so it no longer matches what was signed (or, just after midnight, the credential's day).
    let (_, wall) = http_dates(now)[1].rsplit_once(' ').map(|(t, z)| (z, t.to_string())).unwrap();
    let r = date_signed(&h, "GET", &key_path("date-forms/0"), &format!("{wall} +0001"), now, b"").await;
    assert!(
        matches!(r.code().as_deref(), Some("SignatureDoesNotMatch" | "AuthorizationHeaderMalformed")),
        "{}",
        r.text()
    );
    // Something that is no date at all is still refused, with S3's code.
    date_signed(&h, "GET", &key_path("date-forms/0"), "yesterday", now, b"").await.expect(403, "AccessDenied");
}
