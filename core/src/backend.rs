//! Outbound requests to backend buckets: path-style URLs, forwarded headers and SigV4 signatures.

use crate::clock;
use crate::codec;
use crate::config::{Config, Timeouts};
use crate::route::header;
use crate::sigv4::canonical::canonical_query_string;
use crate::sigv4::payload::{is_sha256_hex, EMPTY_SHA256, UNSIGNED_PAYLOAD};
use crate::sigv4::sign::{sign_headers, SignRequest};

/// A request ready to send: everything but the body, which the adapter streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendRequest {
    pub method: String,
    /// `http` or `https`.
    pub scheme: String,
    /// `host[:port]`, the request's authority (the Host header the transport sets).
    pub authority: String,
    /// Path and query, percent-encoded exactly as signed.
    pub path_and_query: String,
    /// Headers to send, without `host` (wasi-http sets it from the authority).
    pub headers: Vec<(String, String)>,
    /// Time limits the adapter passes as wasi-http request options (from the configuration).
    pub timeouts: Timeouts,
}

impl BackendRequest {
    /// The full URL, for logs and for HTTP clients that want one.
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.path_and_query)
    }
}

/// Request headers a client may send that the backend must see unchanged.
const FORWARDED_REQUEST_HEADERS: &[&str] = &[
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "content-md5",
    "content-type",
    "expires",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-unmodified-since",
    "range",
    "x-amz-checksum-algorithm",
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
    "x-amz-copy-source-if-match",
    "x-amz-copy-source-if-modified-since",
    "x-amz-copy-source-if-none-match",
    "x-amz-copy-source-if-unmodified-since",
    "x-amz-copy-source-range",
    "x-amz-metadata-directive",
    "x-amz-mp-object-size",
    "x-amz-sdk-checksum-algorithm",
    "x-amz-server-side-encryption",
    "x-amz-storage-class",
    "x-amz-tagging",
    "x-amz-tagging-directive",
    "x-amz-website-redirect-location",
    // Server-side encryption (Tempo's `sse` settings): SSE-S3 is `x-amz-server-side-encryption`
    // above; SSE-KMS adds its key id, encryption context and bucket key; SSE-C sends the customer key
    // on PUT, GET, HEAD and multipart calls, and a copy the source's key too (only over TLS: see
    // `crate::sse`).
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-context",
    "x-amz-server-side-encryption-bucket-key-enabled",
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-server-side-encryption-customer-key",
    "x-amz-server-side-encryption-customer-key-md5",
    "x-amz-copy-source-server-side-encryption-customer-algorithm",
    "x-amz-copy-source-server-side-encryption-customer-key",
    "x-amz-copy-source-server-side-encryption-customer-key-md5",
    // Conformance (issue 13): full-object checksums on HEAD/GET.
    "x-amz-checksum-mode",
    // Conformance (issue 13): the newer DeleteObject conditions.
    "x-amz-if-match-last-modified-time",
    "x-amz-if-match-size",
];

/// Response headers a backend sends that the client must see unchanged.
const FORWARDED_RESPONSE_HEADERS: &[&str] = &[
    "accept-ranges",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "content-length",
    "content-range",
    "content-type",
    "etag",
    "expires",
    "last-modified",
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
    "x-amz-checksum-type",
    "x-amz-delete-marker",
    "x-amz-missing-meta",
    "x-amz-mp-parts-count",
    "x-amz-server-side-encryption",
    "x-amz-storage-class",
    "x-amz-tagging-count",
    "x-amz-version-id",
    "x-amz-website-redirect-location",
    // Server-side encryption as the backend applied it (never the customer key itself: S3 echoes
    // only its algorithm and MD5).
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-context",
    "x-amz-server-side-encryption-bucket-key-enabled",
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-server-side-encryption-customer-key-md5",
    // Conformance (issue 13): the algorithm a CreateMultipartUpload was started with.
    "x-amz-checksum-algorithm",
];

fn is_user_metadata(name: &str) -> bool {
    name.len() > 11 && name[..11].eq_ignore_ascii_case("x-amz-meta-")
}

/// The client's request headers the backend should receive, names lowercased.
/// `Content-Encoding: aws-chunked` is dropped (the proxy decodes the framing).
pub fn forward_request_headers(client: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, value) in client {
        let lower = name.to_ascii_lowercase();
        if !(FORWARDED_REQUEST_HEADERS.contains(&lower.as_str()) || is_user_metadata(&lower)) {
            continue;
        }
        if lower == "content-encoding" {
            out.extend(without_aws_chunked(value).map(|v| (lower, v)));
            continue;
        }
        if lower == "range" && !crate::checks::is_honoured_range(value) {
            continue;
        }
        out.push((lower, value.clone()));
    }
    out
}

/// A Content-Encoding without its `aws-chunked` token (the proxy decodes that framing), or None when
/// nothing is left. A value without the token is kept byte for byte, as S3 stores it.
fn without_aws_chunked(value: &str) -> Option<String> {
    let tokens = value.split(',').map(str::trim);
    if !tokens.clone().any(|v| v.eq_ignore_ascii_case("aws-chunked")) {
        return Some(value.to_string());
    }
    let rest: Vec<&str> = tokens.filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("aws-chunked")).collect();
    (!rest.is_empty()).then(|| rest.join(","))
}

/// The backend's response headers the client should receive, names lowercased.
/// An object's `Content-Encoding` never names `aws-chunked`, which is only the framing of an upload
/// (S3 stores the rest; the proxy frames large uploads so, and s3s-fs stores the whole value).
pub fn forward_response_headers(backend: &[(String, String)]) -> Vec<(String, String)> {
    backend
        .iter()
        .filter_map(|(n, v)| {
            let lower = n.to_ascii_lowercase();
            if lower == "content-encoding" {
                return without_aws_chunked(v).map(|v| (lower, v));
            }
            (FORWARDED_RESPONSE_HEADERS.contains(&lower.as_str()) || is_user_metadata(&lower)).then(|| (lower, v.clone()))
        })
        .collect()
}

/// Query parameters of a client's presigned URL (never forwarded).
fn is_client_auth_param(name: &str) -> bool {
    const PRESIGN: [&str; 7] = [
        "x-amz-algorithm",
        "x-amz-credential",
        "x-amz-date",
        "x-amz-expires",
        "x-amz-signedheaders",
        "x-amz-signature",
        "x-amz-security-token",
    ];
    PRESIGN.iter().any(|p| p.eq_ignore_ascii_case(name))
}

/// What one backend call asks for, apart from where it goes and when it is signed: the method, the
/// object key (none for a bucket-level call), the decoded query, the headers and the
/// `x-amz-content-sha256` value. [`Call::new`] starts with no key, query or headers and an empty
/// body's hash; the setters add the rest.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    pub method: &'a str,
    pub key: Option<&'a str>,
    pub query: &'a [(String, String)],
    pub headers: Vec<(String, String)>,
    /// [`UNSIGNED_PAYLOAD`] for streamed bodies, or a real hash.
    pub payload_hash: &'a str,
}

impl<'a> Call<'a> {
    /// A bodiless `method` call on the bucket itself.
    pub fn new(method: &'a str) -> Call<'a> {
        Call { method, key: None, query: &[], headers: Vec::new(), payload_hash: EMPTY_SHA256 }
    }

    /// The call is for object `key`.
    pub fn key(self, key: &'a str) -> Call<'a> {
        Call { key: Some(key), ..self }
    }

    /// The call's decoded query parameters.
    pub fn query(self, query: &'a [(String, String)]) -> Call<'a> {
        Call { query, ..self }
    }

    /// The call's headers (the signing ones are replaced by [`request`]).
    pub fn headers(self, headers: Vec<(String, String)>) -> Call<'a> {
        Call { headers, ..self }
    }

    /// The body's `x-amz-content-sha256` value.
    pub fn payload_hash(self, payload_hash: &'a str) -> Call<'a> {
        Call { payload_hash, ..self }
    }
}

/// Build and sign `call` for `bucket` on the configured endpoint.
///
/// The query is encoded canonically, so the URL sent is the URL signed.
pub fn request(cfg: &Config, bucket: &str, call: Call, now_unix: u64) -> BackendRequest {
    let Call { method, key, query, mut headers, payload_hash } = call;
    let mut path = format!("/{}", codec::uri_encode(bucket, true));
    if let Some(key) = key {
        path.push('/');
        path.push_str(&codec::uri_encode(key, false));
    }
    // The client's own presigned-URL parameters authenticated it to us; the backend gets ours.
    let query: Vec<(String, String)> =
        query.iter().filter(|(k, _)| !is_client_auth_param(k)).cloned().collect();
    let query = query.as_slice();
    let query_string = canonical_query_string(query);
    let path_and_query =
        if query_string.is_empty() { path.clone() } else { format!("{path}?{query_string}") };

    let backend = cfg.backend(bucket);
    let authority = backend.endpoint.host.clone();
    let amz_date = clock::amz_date(now_unix);
    headers.retain(|(n, _)| {
        !matches!(n.as_str(), "host" | "x-amz-date" | "x-amz-content-sha256" | "authorization")
    });
    if !matches!(method, "GET" | "HEAD") && header(&headers, "content-length").is_none() {
        // Some S3 servers insist on a length even for bodiless writes and deletes.
        headers.push(("content-length".into(), "0".into()));
    }
    headers.push(("x-amz-date".into(), amz_date.clone()));
    headers.push(("x-amz-content-sha256".into(), payload_hash.into()));

    if !backend.access_key_id.is_empty() && !backend.secret_access_key.is_empty() {
        let mut signed = headers.clone();
        signed.push(("host".into(), authority.clone()));
        let authorization = sign_headers(&SignRequest {
            method,
            canonical_uri: &path,
            query,
            headers: &signed,
            payload_hash,
            access_key_id: &backend.access_key_id,
            secret_access_key: &backend.secret_access_key,
            region: &backend.region,
            service: "s3",
            amz_date: &amz_date,
        });
        headers.push(("authorization".into(), authorization));
    }
    BackendRequest {
        method: method.to_string(),
        scheme: backend.endpoint.scheme.as_str().to_string(),
        authority,
        path_and_query,
        headers,
        timeouts: cfg.timeouts,
    }
}

/// The value a client's `x-amz-content-sha256` lets the proxy reuse: a real hex SHA-256 (the backend
/// then verifies the body too), else UNSIGNED-PAYLOAD.
pub fn reusable_payload_hash(client_headers: &[(String, String)]) -> &str {
    match header(client_headers, "x-amz-content-sha256") {
        Some(h) if is_sha256_hex(h) => h,
        _ => UNSIGNED_PAYLOAD,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(with_keys: bool) -> Config {
        Config::from_lookup(|name| match name {
            "buckets" => Some("shard1,shard2".into()),
            "endpoint" => Some("http://127.0.0.1:9000".into()),
            "access_key_id" if with_keys => Some("AKID".into()),
            "secret_access_key" if with_keys => Some("SECRET".into()),
            "allow_anonymous" => Some("true".into()),
            _ => None,
        })
        .unwrap()
    }

    #[test]
    fn path_style_url_encodes_awkward_keys() {
        let r = request(&cfg(true), "shard1", Call::new("GET").key("a b/+%/€=~//x"), 0);
        assert_eq!(r.url(), "http://127.0.0.1:9000/shard1/a%20b/%2B%25/%E2%82%AC%3D~//x");
    }

    #[test]
    fn carries_the_configured_timeouts() {
        let r = request(&cfg(true), "shard1", Call::new("GET").key("k"), 0);
        assert_eq!(r.timeouts, Timeouts::default());
        let mut c = cfg(false);
        c.timeouts.first_byte_ms = 1_500;
        assert_eq!(request(&c, "shard2", Call::new("PUT").key("k").payload_hash(UNSIGNED_PAYLOAD), 0).timeouts.first_byte_ms, 1_500);
    }

    #[test]
    fn query_is_sent_in_canonical_order() {
        let q = vec![("prefix".to_string(), "a b".to_string()), ("list-type".to_string(), "2".to_string())];
        let r = request(&cfg(true), "shard1", Call::new("GET").query(&q), 0);
        assert_eq!(r.path_and_query, "/shard1?list-type=2&prefix=a%20b");
    }

    #[test]
    fn client_presign_parameters_are_not_forwarded() {
        let q: Vec<(String, String)> = [("X-Amz-Signature", "abc"), ("X-Amz-Credential", "c"), ("x-id", "GetObject")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let r = request(&cfg(true), "shard1", Call::new("GET").key("k").query(&q), 0);
        assert_eq!(r.path_and_query, "/shard1/k?x-id=GetObject");
    }

    #[test]
    fn signs_only_with_credentials() {
        let signed = request(&cfg(true), "shard1", Call::new("GET").key("k"), 0);
        let auth = header(&signed.headers, "authorization").unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKID/19700101/us-east-1/s3/aws4_request"));
        assert!(!auth.contains("SECRET"));
        let anonymous = request(&cfg(false), "shard1", Call::new("GET").key("k"), 0);
        assert!(header(&anonymous.headers, "authorization").is_none());
    }

    #[test]
    fn forwards_object_headers_and_drops_chunk_encoding() {
        let client = vec![
            ("Content-Type".to_string(), "text/plain".to_string()),
            ("X-Amz-Meta-Owner".to_string(), "me".to_string()),
            ("Content-Encoding".to_string(), "aws-chunked,gzip".to_string()),
            ("Authorization".to_string(), "AWS4-HMAC-SHA256 ...".to_string()),
            ("x-amz-decoded-content-length".to_string(), "5".to_string()),
        ];
        assert_eq!(
            forward_request_headers(&client),
            vec![
                ("content-type".to_string(), "text/plain".to_string()),
                ("x-amz-meta-owner".to_string(), "me".to_string()),
                ("content-encoding".to_string(), "gzip".to_string()),
            ]
        );
    }

    #[test]
    fn content_encoding_without_aws_chunked_is_kept_byte_for_byte() {
        assert_eq!(without_aws_chunked("deflate, gzip").as_deref(), Some("deflate, gzip"));
        assert_eq!(without_aws_chunked("aws-chunked, deflate, gzip").as_deref(), Some("deflate,gzip"));
        assert_eq!(without_aws_chunked("aws-chunked"), None);
    }

    fn client(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn forwards_only_ranges_s3_serves() {
        assert_eq!(forward_request_headers(&client(&[("Range", "bytes=1-2")])), client(&[("range", "bytes=1-2")]));
        assert_eq!(forward_request_headers(&client(&[("Range", "bytes=2-1")])), vec![]);
    }

    #[test]
    fn forwards_checksum_mode() {
        let h = client(&[("x-amz-checksum-mode", "ENABLED")]);
        assert_eq!(forward_request_headers(&h), h);
    }

    #[test]
    fn an_objects_encoding_never_names_the_upload_framing() {
        let backend = |v: &str| client(&[("Content-Encoding", v)]);
        assert_eq!(forward_response_headers(&backend("aws-chunked")), vec![]);
        assert_eq!(forward_response_headers(&backend("aws-chunked,gzip")), client(&[("content-encoding", "gzip")]));
        assert_eq!(forward_response_headers(&backend("gzip, br")), client(&[("content-encoding", "gzip, br")]));
    }

    #[test]
    fn returns_the_checksum_algorithm() {
        let backend = client(&[("x-amz-checksum-algorithm", "CRC32")]);
        assert_eq!(forward_response_headers(&backend), backend);
    }

    #[test]
    fn forwards_delete_conditions() {
        let h = client(&[
            ("if-match", "\"e\""),
            ("x-amz-if-match-last-modified-time", "Tue, 01 Dec 2026 18:36:45 GMT"),
            ("x-amz-if-match-size", "5"),
        ]);
        assert_eq!(forward_request_headers(&h), h);
    }
}
