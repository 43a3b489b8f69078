//! What the proxy does with each request: answer it locally, forward it to the owning shard, or fan out.

use crate::backend::{self, BackendRequest, EMPTY_SHA256, UNSIGNED_PAYLOAD};
use crate::chunked::ChunkedDecoder;
use crate::config::{Anonymous, Config};
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::listing::{ListRequest, Merger};
use crate::ring::Ring;
use crate::route::{self, header, Operation, RequestParts, Route};
use crate::sigv4::{self, PayloadMode};
use crate::xml;

/// The largest object a single PUT may carry, as on S3.
pub const MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Request bodies up to this size are held in memory so a write can be retried transparently
/// after the proxy created a missing backend bucket; larger bodies stream and are never buffered.
pub const RETRY_BUFFER_LIMIT: usize = 1024 * 1024;
/// How much of a backend error body the proxy reads to learn the S3 error code.
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// A response the proxy produces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn xml(status: u16, body: String) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/xml".into())],
            body: body.into_bytes(),
        }
    }

    pub fn empty(status: u16) -> Reply {
        Reply { status, headers: vec![], body: vec![] }
    }

    /// The S3 XML error document for `err`. HEAD responses carry no body, so the adapter drops it.
    pub fn error(err: &S3Error, request_id: &str) -> Reply {
        Reply::xml(err.status(), xml::error(err, request_id))
    }
}

/// How the client's request body reaches the backend.
#[derive(Debug)]
pub enum Body {
    /// No body is sent.
    Empty,
    /// `length` bytes (the backend's Content-Length) stream through `filter`.
    Stream { length: u64, filter: BodyFilter },
}

impl Body {
    /// The Content-Length the backend receives.
    pub fn length(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Stream { length, .. } => *length,
        }
    }
}

/// What the proxy checks on a streamed body before the backend may see all of it. Every filter
/// but `Passthrough` withholds the last byte until [`BodyFilter::finish`] succeeds, so a body that
/// fails its check never reaches the backend complete and is never stored.
#[derive(Debug)]
pub enum BodyFilter {
    /// Bytes go through unchanged.
    Passthrough,
    /// The client signed this SHA-256 of the body (`x-amz-content-sha256`).
    Sha256 { expected: String, hasher: sha2::Sha256, held: Option<u8> },
    /// `aws-chunked` framing: decoded, chunk signatures and trailing checksum verified.
    AwsChunked(Box<ChunkedDecoder>),
}

impl BodyFilter {
    pub fn is_passthrough(&self) -> bool {
        matches!(self, BodyFilter::Passthrough)
    }

    /// Feed received bytes; appends what may be forwarded now to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> S3Result<()> {
        use sha2::Digest;
        match self {
            BodyFilter::Passthrough => out.extend_from_slice(input),
            BodyFilter::Sha256 { hasher, held, .. } => {
                let Some((&last, rest)) = input.split_last() else { return Ok(()) };
                hasher.update(input);
                out.extend(held.take());
                out.extend_from_slice(rest);
                *held = Some(last);
            }
            BodyFilter::AwsChunked(decoder) => decoder.push(input, out)?,
        }
        Ok(())
    }

    /// At the end of the body: check it, then release what was withheld into `out`.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> S3Result<()> {
        use sha2::Digest;
        match self {
            BodyFilter::Passthrough => {}
            BodyFilter::Sha256 { expected, hasher, held } => {
                let actual = hex(&hasher.clone().finalize());
                if !sigv4::constant_time_eq(actual.as_bytes(), expected.to_ascii_lowercase().as_bytes()) {
                    return Err(S3Error::new(
                        ErrorCode::XAmzContentSHA256Mismatch,
                        "The provided 'x-amz-content-sha256' header does not match what was computed.",
                    ));
                }
                out.extend(held.take());
            }
            BodyFilter::AwsChunked(decoder) => {
                decoder.finish(out)?;
            }
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One call to the shard that owns a key.
#[derive(Debug)]
pub struct Forward {
    pub op: Operation,
    /// Index of the owning bucket in [`Proxy::all_buckets`].
    pub shard: usize,
    pub request: BackendRequest,
    pub body: Body,
    /// While resharding: the same request to the previous owner, sent when the owner answers 404
    /// (the object has not moved yet). Only for operations on an existing object.
    pub fallback: Option<BackendRequest>,
    /// While resharding: a DeleteObject also deletes the previous owner's copy, so it cannot
    /// reappear through the fallback.
    pub also: Option<BackendRequest>,
}

/// The proxy's decision for one request.
#[derive(Debug)]
pub enum Plan {
    Reply(Reply),
    Forward(Forward),
    List(Box<Merger>),
    /// ListMultipartUploads over every shard; backend calls go through [`Proxy::list_request`].
    ListUploads(Box<crate::uploads::UploadsMerger>),
    /// DeleteObjects: read the (small) body, then [`crate::delete::plan`] splits it by shard.
    DeleteObjects(Body),
    /// A copy between two shards: read from one, write to the other.
    StreamedCopy(Box<crate::copy::StreamedCopy>),
    /// The operator health check: HEAD every backend bucket ([`Proxy::health_requests`]).
    Health,
}

/// What a request addresses: an operator endpoint, or an S3 operation on the virtual bucket.
pub enum Target {
    Admin(S3Result<crate::admin::AdminOp>),
    S3(S3Result<Route>),
}

impl Target {
    /// Whether answering places an object key on a ring, i.e. whether a cached ring table is worth
    /// fetching for it (bucket-level calls, listings and health checks place nothing).
    pub fn uses_ring(&self) -> bool {
        match self {
            Target::Admin(op) => matches!(op, Ok(crate::admin::AdminOp::Locate { .. })),
            Target::S3(route) => {
                route.as_ref().is_ok_and(|r| r.op.key().is_some() || r.op == Operation::DeleteObjects)
            }
        }
    }
}

/// Everything a request is decided against: configuration, the ring and the clock.
pub struct Proxy {
    pub cfg: Config,
    pub ring: Ring,
    /// The ring of `previous_buckets`, while resharding.
    pub previous: Option<Ring>,
    /// Current buckets, then previous ones no longer current: the index space of every shard number.
    pub all_buckets: Vec<String>,
}

impl Proxy {
    pub fn new(cfg: Config) -> Proxy {
        let ring = Ring::new(&cfg.buckets);
        let previous = (!cfg.previous_buckets.is_empty()).then(|| Ring::new(&cfg.previous_buckets));
        let all_buckets = cfg.all_buckets();
        Proxy { cfg, ring, previous, all_buckets }
    }

    /// The rings requests are placed with: the current one, then the previous one while resharding.
    pub fn rings(&self) -> impl Iterator<Item = &Ring> {
        std::iter::once(&self.ring).chain(self.previous.as_ref())
    }

    /// Every shard that may hold `key`: its owner, then its previous owner if that differs.
    pub fn owners(&self, key: &str) -> Vec<usize> {
        let mut out = vec![self.ring.owner_index(key)];
        if let Some(prev) = &self.previous {
            let name = prev.owner(key);
            if let Some(i) = self.all_buckets.iter().position(|b| b == name) {
                if i != out[0] {
                    out.push(i);
                }
            }
        }
        out
    }

    /// What `parts` addresses, parsed once for everything a request needs decided.
    pub fn target(&self, parts: &RequestParts) -> Target {
        match crate::admin::parse(parts) {
            Some(admin) => Target::Admin(admin),
            None => Target::S3(route::parse(parts, &self.cfg.virtual_bucket)),
        }
    }

    /// Decide what to do with a request whose authentication produced `payload`.
    pub fn plan(&self, parts: &RequestParts, payload: PayloadMode, now_unix: u64) -> S3Result<Plan> {
        self.plan_target(parts, self.target(parts), payload, now_unix)
    }

    /// [`Proxy::plan`] for a request already parsed into `target` (by [`Proxy::target`]).
    pub fn plan_target(&self, parts: &RequestParts, target: Target, payload: PayloadMode, now_unix: u64) -> S3Result<Plan> {
        let route = match target {
            Target::Admin(admin) => {
                return match admin? {
                    crate::admin::AdminOp::Health => Ok(Plan::Health),
                    crate::admin::AdminOp::Locate { key } => Ok(Plan::Reply(self.locate(&key))),
                }
            }
            Target::S3(route) => route?,
        };
        let vb = &self.cfg.virtual_bucket;
        match &route.op {
            Operation::ListBuckets => Ok(Plan::Reply(Reply::xml(
                200,
                xml::list_all_my_buckets(vb, "2024-01-01T00:00:00.000Z", "tempo-s3-shard"),
            ))),
            Operation::HeadBucket => Ok(Plan::Reply(Reply {
                status: 200,
                headers: vec![("x-amz-bucket-region".into(), self.cfg.region.clone())],
                body: vec![],
            })),
            Operation::GetBucketLocation => {
                Ok(Plan::Reply(Reply::xml(200, xml::location_constraint(&self.cfg.region))))
            }
            Operation::ListObjects { .. } => {
                let req = ListRequest::from_query(&route.query)?;
                let merger = Merger::new(req, self.all_buckets.len(), &self.token_key())?;
                Ok(Plan::List(Box::new(merger)))
            }
            Operation::DeleteObjects => {
                let body = request_body(&route.op, parts, payload)?;
                if body.length() > crate::delete::MAX_DELETE_BODY as u64 {
                    return Err(S3Error::new(ErrorCode::MalformedXML, "the Delete request body is too large"));
                }
                Ok(Plan::DeleteObjects(body))
            }
            Operation::ListMultipartUploads => {
                let req = crate::uploads::UploadsRequest::from_query(&route.query)?;
                let merger = crate::uploads::UploadsMerger::new(req, self.all_buckets.len())?;
                Ok(Plan::ListUploads(Box::new(merger)))
            }
            Operation::CopyObject { .. } | Operation::UploadPartCopy { .. } => {
                match self.plan_copy(parts, &route, now_unix)? {
                    crate::copy::CopyPlan::ServerSide { shard, request } => Ok(Plan::Forward(Forward {
                        op: route.op,
                        shard,
                        request,
                        body: Body::Empty,
                        fallback: None,
                        also: None,
                    })),
                    crate::copy::CopyPlan::Streamed(copy) => Ok(Plan::StreamedCopy(Box::new(copy))),
                }
            }
            _ => self.forward(parts, route, payload, now_unix).map(Plan::Forward),
        }
    }

    /// Check the request's SigV4 signature (header or presigned URL) against the client credentials,
    /// or admit it as anonymous where configuration allows; returns how its body must be checked.
    pub fn authenticate(&self, parts: &RequestParts, now_unix: u64) -> S3Result<PayloadMode> {
        let content_sha = header(&parts.headers, "x-amz-content-sha256");
        if self.cfg.client_credentials.is_empty() {
            // Anonymous mode without client keys: any signature (Tempo's empty keys, or a client's
            // own) is accepted as anonymous, so there is nothing to verify against.
            return Ok(sigv4::payload_mode_unauthenticated(content_sha));
        }
        let req = sigv4::InboundRequest {
            method: &parts.method,
            raw_path: &parts.raw_path,
            raw_query: &parts.raw_query,
            headers: &parts.headers,
        };
        match sigv4::verify(&req, now_unix, &|ak| self.cfg.client_secret(ak), &self.cfg.region)? {
            sigv4::Verified::Signed { payload, .. } => Ok(payload),
            sigv4::Verified::Anonymous => {
                let read = matches!(parts.method.as_str(), "GET" | "HEAD");
                match self.cfg.anonymous {
                    Anonymous::Allowed => Ok(sigv4::payload_mode_unauthenticated(content_sha)),
                    Anonymous::ReadOnly if read => Ok(sigv4::payload_mode_unauthenticated(content_sha)),
                    Anonymous::ReadOnly => Err(S3Error::new(
                        ErrorCode::AccessDenied,
                        "Access Denied: anonymous requests may only read; sign the request with client credentials",
                    )),
                    Anonymous::Denied => Err(S3Error::new(
                        ErrorCode::AccessDenied,
                        "Access Denied: sign the request with SigV4 client credentials (anonymous access is disabled)",
                    )),
                }
            }
        }
    }

    /// The key that authenticates our continuation tokens: derived from configuration clients
    /// never see, so a token from elsewhere (or edited) fails verification.
    pub fn token_key(&self) -> Vec<u8> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"tempo-s3-shard list token v1\0");
        h.update(self.cfg.secret_access_key.as_bytes());
        h.update(b"\0");
        h.update(self.cfg.buckets.join("\n").as_bytes());
        h.finalize().to_vec()
    }

    fn forward(
        &self,
        parts: &RequestParts,
        route: Route,
        payload: PayloadMode,
        now_unix: u64,
    ) -> S3Result<Forward> {
        let key = route.op.key().unwrap_or_default().to_string();
        let owners = self.owners(&key);
        let shard = owners[0];
        let body = request_body(&route.op, parts, payload)?;
        let payload_hash = match &body {
            Body::Empty => EMPTY_SHA256,
            Body::Stream { filter: BodyFilter::AwsChunked(_), .. } => UNSIGNED_PAYLOAD,
            // The digest the proxy checks the body against, lowercase as backends require.
            Body::Stream { filter: BodyFilter::Sha256 { expected, .. }, .. } => expected.as_str(),
            Body::Stream { .. } => backend::reusable_payload_hash(&parts.headers),
        };
        let mut headers = backend::forward_request_headers(&parts.headers);
        if !matches!(body, Body::Empty) {
            headers.push(("content-length".into(), body.length().to_string()));
        }
        let method = parts.method.as_str();
        let to = |shard: usize| {
            backend::request(
                &self.cfg,
                method,
                &self.all_buckets[shard],
                Some(&key),
                &route.query,
                headers.clone(),
                payload_hash,
                now_unix,
            )
        };
        let request = to(shard);
        let previous = owners.get(1).copied();
        let fallback = previous.filter(|_| route.op.reads_existing_object()).map(to);
        let also = previous.filter(|_| matches!(route.op, Operation::DeleteObject { .. })).map(to);
        Ok(Forward { op: route.op, shard, request, body, fallback, also })
    }

    /// The request that creates a missing backend bucket, and its body (a location constraint
    /// outside us-east-1).
    pub fn create_bucket_request(&self, shard: usize, now_unix: u64) -> (BackendRequest, Vec<u8>) {
        let body = if self.cfg.region == "us-east-1" {
            Vec::new()
        } else {
            xml::create_bucket_configuration(&self.cfg.region).into_bytes()
        };
        let mut headers = vec![];
        if !body.is_empty() {
            headers.push(("content-length".into(), body.len().to_string()));
        }
        let hash = sigv4::sha256_hex(&body);
        let request = backend::request(&self.cfg, "PUT", &self.all_buckets[shard], None, &[], headers, &hash, now_unix);
        (request, body)
    }
}

/// Work out how the request body reaches the backend, enforcing S3's limits on the way in.
fn request_body(op: &Operation, parts: &RequestParts, payload: PayloadMode) -> S3Result<Body> {
    let content_length = match header(&parts.headers, "content-length") {
        Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
            S3Error::invalid_argument(format!("invalid Content-Length header: {v:?}"))
        })?),
        None => None,
    };
    let takes_body = matches!(
        op,
        Operation::PutObject { .. }
            | Operation::UploadPart { .. }
            | Operation::PutObjectTagging { .. }
            | Operation::CompleteMultipartUpload { .. }
            | Operation::DeleteObjects
    );
    if !takes_body {
        return Ok(Body::Empty);
    }
    crate::checks::transfer_encoding(&parts.headers)?;
    let streaming = match &payload {
        PayloadMode::StreamingSigned(_)
        | PayloadMode::StreamingSignedTrailer(_)
        | PayloadMode::StreamingUnsignedTrailer => true,
        _ => header(&parts.headers, "content-encoding")
            .is_some_and(|v| v.split(',').any(|e| e.trim().eq_ignore_ascii_case("aws-chunked"))),
    };
    if streaming && matches!(payload, PayloadMode::Sha256(_)) {
        // Decoding would skip the check of the signed digest, letting anyone who adds the
        // (possibly unsigned) Content-Encoding header swap the body of a signed request.
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "an aws-chunked body needs a STREAMING-* x-amz-content-sha256, not the SHA-256 of the body",
        ));
    }
    let length = if streaming {
        let decoded = header(&parts.headers, "x-amz-decoded-content-length").ok_or_else(|| {
            S3Error::new(
                ErrorCode::MissingContentLength,
                "aws-chunked uploads must send x-amz-decoded-content-length",
            )
        })?;
        decoded.trim().parse::<u64>().map_err(|_| {
            S3Error::invalid_argument(format!("invalid x-amz-decoded-content-length: {decoded:?}"))
        })?
    } else {
        content_length.ok_or_else(|| {
            S3Error::new(ErrorCode::MissingContentLength, "You must provide the Content-Length HTTP header")
        })?
    };
    if length > MAX_PUT_SIZE {
        return Err(S3Error::new(
            ErrorCode::EntityTooLarge,
            format!(
                "Your proposed upload of {length} bytes exceeds the maximum allowed object size of {MAX_PUT_SIZE} bytes; use a multipart upload"
            ),
        ));
    }
    let filter = if streaming {
        let trailer = header(&parts.headers, "x-amz-trailer")
            .map(|t| {
                crate::checksum::ChecksumAlgorithm::from_header_name(t.trim()).ok_or_else(|| {
                    S3Error::invalid_argument(format!("unsupported x-amz-trailer: {t:?}"))
                })
            })
            .transpose()?;
        let decoder = ChunkedDecoder::for_payload(&payload, trailer, Some(length))
            .unwrap_or_else(|| ChunkedDecoder::new(None, false, trailer, Some(length)));
        BodyFilter::AwsChunked(Box::new(decoder))
    } else if let PayloadMode::Sha256(expected) = payload {
        BodyFilter::Sha256 { expected, hasher: Default::default(), held: None }
    } else {
        BodyFilter::Passthrough
    };
    Ok(Body::Stream { length, filter })
}

/// Check a buffered request body the proxy understands before a backend sees it, so clients get
/// S3's own answer (MalformedXML, InvalidPartOrder, …) whatever the backend would have said.
pub fn validate_body(op: &Operation, body: &[u8]) -> S3Result<()> {
    match op {
        Operation::CompleteMultipartUpload { .. } => xml::parse_complete_multipart(body).map(|_| ()),
        Operation::PutObjectTagging { .. } => xml::parse_tagging(body).map(|_| ()),
        _ => Ok(()),
    }
}

/// Whether a backend status is a success the client should see as-is (with the body streamed).
pub fn is_success(status: u16) -> bool {
    (200..300).contains(&status) || status == 304
}

/// The S3 error a failed backend response turns into. `body` is the (bounded) error body, empty
/// for HEAD; when it holds no S3 error the code follows from the status.
pub fn backend_error(status: u16, body: &[u8]) -> S3Error {
    if let Some((code, message)) = xml::parse_error(body) {
        let message = if message.trim().is_empty() { format!("the backend answered {code} (HTTP {status})") } else { message };
        return S3Error::new(ErrorCode::from_code(&code, status), message);
    }
    let code = match status {
        400 => ErrorCode::InvalidRequest,
        403 => ErrorCode::AccessDenied,
        404 => ErrorCode::NoSuchKey,
        405 => ErrorCode::MethodNotAllowed,
        412 => ErrorCode::PreconditionFailed,
        416 => ErrorCode::InvalidRange,
        501 => ErrorCode::NotImplemented,
        503 => ErrorCode::ServiceUnavailable,
        s if s >= 500 => ErrorCode::Other { code: "InternalError".into(), status: s },
        s => ErrorCode::Other { code: "BadRequest".into(), status: s },
    };
    S3Error::new(code, format!("the backend answered HTTP {status}"))
}

/// The error a copy gets when reading its source failed: the source's conditions failing is a 412
/// (S3 answers failed `x-amz-copy-source-if-*` that way), a missing bucket a missing key.
pub fn copy_source_error(status: u16, body: &[u8]) -> S3Error {
    if status == 304 || status == 412 {
        return S3Error::new(ErrorCode::PreconditionFailed, "At least one of the pre-conditions you specified did not hold");
    }
    let err = backend_error(status, body);
    if err.code == ErrorCode::NoSuchBucket {
        return S3Error::new(ErrorCode::NoSuchKey, "The specified copy source key does not exist.");
    }
    err
}

/// What to do when the owning backend bucket does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingBucket {
    /// Create the bucket, then retry the write.
    CreateAndRetry,
    /// Nothing was ever stored there: the object does not exist.
    NoSuchKey,
    /// Deleting from a bucket that does not exist deletes nothing, successfully (S3 deletes are idempotent).
    Deleted,
}

pub fn on_missing_bucket(op: &Operation) -> MissingBucket {
    match op {
        Operation::DeleteObject { .. } => MissingBucket::Deleted,
        op if op.is_write() => MissingBucket::CreateAndRetry,
        _ => MissingBucket::NoSuchKey,
    }
}

/// The error a write gets when its bucket had to be created but the body was too large to replay.
pub fn retry_after_bucket_created() -> S3Error {
    S3Error::new(
        ErrorCode::SlowDown,
        "the backend bucket for this key did not exist and has just been created; retry the request",
    )
}

/// The error a client gets when a backend cannot be reached (names no host or credential).
pub fn backend_unreachable(detail: &str) -> S3Error {
    S3Error::new(
        ErrorCode::ServiceUnavailable,
        format!("a backend could not be reached ({detail}); retry later"),
    )
}

/// A backend's listing page: parsed on success, empty for a bucket that does not exist (yet),
/// otherwise the backend's error, which fails the whole listing.
fn backend_page<T: Default>(status: u16, body: &[u8], parse: fn(&[u8]) -> S3Result<T>, what: &str) -> S3Result<T> {
    if is_success(status) {
        return parse(body).map_err(|e| {
            S3Error::new(ErrorCode::ServiceUnavailable, format!("a backend returned an unreadable {what}: {}", e.message))
        });
    }
    let err = backend_error(status, body);
    if err.code == ErrorCode::NoSuchBucket {
        return Ok(T::default());
    }
    Err(err)
}

/// The largest backend listing body the proxy reads (1000 keys of 1 KiB each, with room to spare).
pub const MAX_LIST_BODY: usize = 8 * 1024 * 1024;

impl Proxy {
    /// The ListObjectsV2 call the merge wants from shard `shard`.
    pub fn list_request(&self, shard: usize, query: &[(String, String)], now_unix: u64) -> BackendRequest {
        backend::request(&self.cfg, "GET", &self.all_buckets[shard], None, query, vec![], EMPTY_SHA256, now_unix)
    }

    /// A backend's answer to a list call, as a page for the merge. A bucket that does not exist
    /// holds nothing; any other failure fails the whole listing (never a partial answer).
    pub fn list_page(&self, status: u16, body: &[u8]) -> S3Result<crate::xml::BackendPage> {
        backend_page(status, body, xml::parse_list_objects, "listing")
    }

    /// The merged listing as the client's XML response.
    pub fn list_reply(&self, merger: Merger) -> Reply {
        let out = merger.finish(&self.cfg.virtual_bucket);
        let body = if out.v2 { xml::list_objects_v2(&out) } else { xml::list_objects_v1(&out) };
        Reply::xml(200, body)
    }

    /// A backend's answer to a ListMultipartUploads call; like [`Proxy::list_page`].
    pub fn list_uploads_page(&self, status: u16, body: &[u8]) -> S3Result<crate::xml::UploadsPage> {
        backend_page(status, body, xml::parse_list_multipart_uploads, "uploads listing")
    }

    /// The merged uploads listing as the client's XML response.
    pub fn list_uploads_reply(&self, merger: crate::uploads::UploadsMerger) -> Reply {
        Reply::xml(200, xml::list_multipart_uploads(&merger.finish(&self.cfg.virtual_bucket)))
    }
}

impl Proxy {
    /// The POST ?delete a shard receives for its part of a DeleteObjects batch.
    pub fn delete_request(&self, part: &crate::delete::ShardBatch, now_unix: u64) -> BackendRequest {
        let headers = vec![
            ("content-md5".to_string(), part.content_md5.clone()),
            ("content-length".to_string(), part.body.len().to_string()),
            ("content-type".to_string(), "application/xml".to_string()),
        ];
        let query = [("delete".to_string(), String::new())];
        let hash = sigv4::sha256_hex(&part.body);
        backend::request(&self.cfg, "POST", &self.all_buckets[part.shard], None, &query, headers, &hash, now_unix)
    }
}
