//! One call to the shard that owns a key: the request body streamed (or held, when small), the
//! previous owner asked while resharding, a missing bucket created and the write retried, and a
//! read's conditions held to S3's rules whether or not the backend evaluated them.

use super::{call, respond, Answer, Outbound, Transport};
use crate::backend::{self, BackendRequest, Call};
use crate::sigv4::payload::{EMPTY_SHA256, STREAMING_UNSIGNED_TRAILER, UNSIGNED_PAYLOAD};
use crate::backend_error::{self, is_success, no_such_key, on_missing_bucket, MissingBucket};
use crate::checks::{self, Failed};
use crate::context::Proxy;
use crate::error::{ErrorCode, S3Result};
use crate::reply::Reply;
use crate::request_body::{self, Body, BodyFilter, RETRY_BUFFER_LIMIT};
use crate::route::{Operation, RequestParts, Route};
use crate::sigv4::PayloadMode;

/// The calls a forwarded request may need.
#[derive(Debug)]
pub struct Forward {
    pub op: Operation,
    /// Index of the owning bucket in [`Proxy::all_buckets`].
    pub shard: usize,
    pub request: BackendRequest,
    pub body: Body,
    /// While resharding: the same request to the previous owner (shard, request), sent when the
    /// owner answers 404 (the object has not moved yet). Only for operations on an existing object.
    pub fallback: Option<(usize, BackendRequest)>,
    /// While resharding: a DeleteObject also deletes the previous owner's copy, so it cannot
    /// reappear through the fallback.
    pub also: Option<(usize, BackendRequest)>,
}

/// Plan the calls for an object operation.
pub fn plan(proxy: &Proxy, parts: &RequestParts, route: Route, payload: PayloadMode, now: u64) -> S3Result<Forward> {
    let key = route.op.key().unwrap_or_default().to_string();
    let owners = proxy.owners(&key);
    let shard = owners[0];
    let body = streamed_with_trailer(&route.op, request_body::request_body(&route.op, parts, payload)?);
    let payload_hash = match &body {
        Body::Empty => EMPTY_SHA256,
        Body::Stream { filter: BodyFilter::AwsChunked(_), .. } => UNSIGNED_PAYLOAD,
        Body::Stream { filter: BodyFilter::Reframed(_), .. } => STREAMING_UNSIGNED_TRAILER,
        // The digest the proxy checks the body against, lowercase as backends require.
        Body::Stream { filter: BodyFilter::Sha256 { expected, .. }, .. } => expected.as_str(),
        Body::Stream { .. } => backend::reusable_payload_hash(&parts.headers),
    };
    let mut headers = request_headers(parts, (!matches!(body, Body::Empty)).then(|| body.length()));
    if let Body::Stream { length, filter: BodyFilter::Reframed(reframe) } = &body {
        reframe.headers(&mut headers, *length);
    }
    let call = Call::new(&parts.method).key(&key).query(&route.query).headers(headers).payload_hash(payload_hash);
    let to = |shard: usize| (shard, proxy.request(shard, call.clone(), now));
    let (_, request) = to(shard);
    let previous = owners.get(1).copied();
    let fallback = previous.filter(|_| route.op.reads_existing_object()).map(to);
    let also = previous.filter(|_| matches!(route.op, Operation::DeleteObject { .. })).map(to);
    Ok(Forward { op: route.op, shard, request, body, fallback, also })
}

/// An upload too large to hold whose trailer carries a checksum: framed again as aws-chunked for
/// the backend, so the checksum reaches it after the data (a held one goes as a header instead).
fn streamed_with_trailer(op: &Operation, body: Body) -> Body {
    match body {
        Body::Stream { length, filter } if length > RETRY_BUFFER_LIMIT as u64 && matches!(op, Operation::PutObject { .. } | Operation::UploadPart { .. }) => {
            Body::Stream { length, filter: filter.reframed() }
        }
        other => other,
    }
}

/// The client's headers a backend request carries, and the body's (decoded) length when it has one.
fn request_headers(parts: &RequestParts, length: Option<u64>) -> Vec<(String, String)> {
    let mut headers = backend::forward_request_headers(&parts.headers);
    headers.extend(length.map(|n| ("content-length".to_string(), n.to_string())));
    headers
}

/// Carry out a forwarded request.
pub async fn run<T: Transport>(t: &T, proxy: &Proxy, parts: &RequestParts, https: bool, route: Route, payload: PayloadMode, now: u64) -> S3Result<Answer<T::Response>> {
    let query = route.query.clone();
    let mut fwd = plan(proxy, parts, route, payload, now)?;
    let body = match std::mem::replace(&mut fwd.body, Body::Empty) {
        Body::Empty => Held::Bytes(Vec::new()),
        Body::Stream { length, filter } if length <= RETRY_BUFFER_LIMIT as u64 => {
            let (bytes, trailers) = call::read_client_body(t, parts, filter, length).await?;
            request_body::validate_body(&fwd.op, &bytes)?;
            if let Some((algorithm, value)) = trailers.checksum {
                fwd.request = with_checksum(proxy, parts, &fwd, &query, (algorithm.header_name(), value), length, now);
            }
            Held::Bytes(bytes)
        }
        Body::Stream { filter, .. } => Held::Client(filter),
    };
    let Forward { op, shard, request, fallback, also, .. } = fwd;
    let origin = crate::rewrite::proxy_origin(parts.header("host").unwrap_or_default(), https, parts.header("x-forwarded-proto"));
    let mut attempt = Attempt::new(t, proxy, &op, &parts.method, now);
    attempt.also = also.as_ref();
    attempt.origin = &origin;
    let answer = attempt.run(shard, request, body, fallback).await?;
    read_conditions_hold(&op, parts, answer)
}

/// The backend request of `fwd` again, with the checksum an aws-chunked body's trailer carried as
/// a header: the body goes on decoded and whole, so the backend verifies and stores the checksum
/// as S3 does with a trailing one (and echoes it in its answer).
fn with_checksum(proxy: &Proxy, parts: &RequestParts, fwd: &Forward, query: &[(String, String)], checksum: (&str, String), length: u64, now: u64) -> BackendRequest {
    let mut headers = request_headers(parts, Some(length));
    headers.retain(|(n, _)| n != checksum.0);
    headers.push((checksum.0.to_string(), checksum.1));
    let key = fwd.op.key().unwrap_or_default();
    proxy.request(fwd.shard, Call::new(&parts.method).key(key).query(query).headers(headers).payload_hash(UNSIGNED_PAYLOAD), now)
}

/// A GET or HEAD that a backend answered with the object although one of its conditions fails
/// (a backend that ignores them): S3's 412 PreconditionFailed or 304 Not Modified instead, the
/// object's body left unread.
fn read_conditions_hold<R>(op: &Operation, parts: &RequestParts, answer: Answer<R>) -> S3Result<Answer<R>> {
    let (status, headers) = match &answer {
        Answer::Reply(reply) => (reply.status, &reply.headers),
        Answer::Stream { status, headers, .. } => (*status, headers),
    };
    if !matches!(op, Operation::GetObject { .. } | Operation::HeadObject { .. }) || !matches!(status, 200 | 206) {
        return Ok(answer);
    }
    match checks::read_conditions(&parts.headers, headers) {
        Ok(()) => Ok(answer),
        Err(Failed::Precondition) => Err(checks::precondition_failed()),
        Err(Failed::NotModified) => {
            let kept = headers.iter().filter(|(n, _)| matches!(n.as_str(), "etag" | "last-modified")).cloned().collect();
            Ok(Answer::Reply(Reply { status: 304, headers: kept, body: Vec::new() }))
        }
    }
}

/// A request body: held in memory (sent again when needed) or the client's stream (sent once).
pub(super) enum Held {
    Bytes(Vec<u8>),
    Client(BodyFilter),
}

impl Held {
    /// The body to send now, and what is left to send again (none for a stream).
    fn take<R>(self) -> (Outbound<R>, Option<Held>) {
        match self {
            Held::Bytes(b) if b.is_empty() => (Outbound::Empty, Some(Held::Bytes(b))),
            Held::Bytes(b) => (Outbound::Bytes(b.clone()), Some(Held::Bytes(b))),
            Held::Client(filter) => (Outbound::Client(filter), None),
        }
    }
}

/// One forwarded request being carried out.
pub(super) struct Attempt<'a, T> {
    t: &'a T,
    proxy: &'a Proxy,
    op: &'a Operation,
    method: &'a str,
    now: u64,
    also: Option<&'a (usize, BackendRequest)>,
    /// The proxy's own address as the client reached it (for rewritten `<Location>`s).
    origin: &'a str,
}

impl<'a, T: Transport> Attempt<'a, T> {
    /// A request for `op` (sent with `method`), with nothing else to delete.
    pub(super) fn new(t: &'a T, proxy: &'a Proxy, op: &'a Operation, method: &'a str, now: u64) -> Attempt<'a, T> {
        Attempt { t, proxy, op, method, now, also: None, origin: "" }
    }

    /// Send to `shard` (then to `fallback` on a 404), creating a missing bucket once.
    pub(super) async fn run(&self, mut shard: usize, mut request: BackendRequest, body: Held, mut fallback: Option<(usize, BackendRequest)>) -> S3Result<Answer<T::Response>> {
        let (mut outbound, mut again) = body.take();
        let mut created = false;
        loop {
            let sent = call::send(self.t, self.proxy, shard, &request, outbound).await?;
            let status = sent.head.status;
            if status == 404 && fallback.is_some() && again.is_some() {
                // Resharding: the object may not have moved to its new owner yet.
                if let (Some((previous, to)), Some(body)) = (fallback.take(), again.take()) {
                    (shard, request) = (previous, to);
                    (outbound, again) = body.take();
                    continue;
                }
            }
            if is_success(status) {
                call::finish_upload(self.t, self.proxy, shard, sent.upload).await?;
                self.delete_also().await?;
                if crate::rewrite::names_the_bucket(self.op) {
                    return self.rewritten(shard, sent.head, sent.response).await;
                }
                return respond::pass_on(self.t, self.proxy, shard, sent.head, sent.response, self.method).await;
            }
            let err = call::failure(self.t, &sent.head, sent.response).await;
            if err.code != ErrorCode::NoSuchBucket || created {
                return Err(err);
            }
            match on_missing_bucket(self.op) {
                MissingBucket::NoSuchKey => return Err(no_such_key()),
                MissingBucket::Deleted => {
                    self.delete_also().await?;
                    return Ok(Answer::Reply(Reply::empty(204)));
                }
                MissingBucket::CreateAndRetry => {
                    call::create_bucket(self.t, self.proxy, shard, self.now).await?;
                    created = true;
                    let Some(body) = again.take() else { return Err(backend_error::retry_after_bucket_created()) };
                    (outbound, again) = body.take();
                }
            }
        }
    }

    /// A multipart answer that names the bucket and its location, read whole and rewritten to name
    /// the virtual bucket under the proxy's own address.
    async fn rewritten(&self, shard: usize, head: super::Head, response: T::Response) -> S3Result<Answer<T::Response>> {
        let body = self.t.read_body(response, crate::rewrite::MAX_REWRITTEN_BODY).await.map_err(|e| e.to_s3(self.proxy, shard))?;
        let body = self.proxy.multipart_answer(self.op, &body, self.origin);
        let mut headers = crate::backend::forward_response_headers(&head.headers);
        headers.retain(|(n, _)| n != "content-length");
        Ok(Answer::Reply(Reply { status: head.status, headers, body }))
    }

    /// While resharding, delete the previous owner's copy too; a missing bucket or key there is fine.
    async fn delete_also(&self) -> S3Result<()> {
        let Some((shard, request)) = self.also else { return Ok(()) };
        let answer = call::call(self.t, self.proxy, *shard, request, Vec::new(), backend_error::MAX_ERROR_BODY).await?;
        if is_success(answer.head.status) || answer.head.status == 404 {
            return Ok(());
        }
        Err(backend_error::backend_error(answer.head.status, &answer.body))
    }
}
