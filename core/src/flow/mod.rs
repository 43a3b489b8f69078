//! The flow of every request: the core decides each step and the adapter only executes them.
//!
//! [`handle`] takes a parsed request and drives it to an [`Answer`] through a [`Transport`], whose
//! methods are the only steps the adapter performs: send a backend request (with a body from
//! nowhere, from memory, from the client through a core filter, or from another backend's
//! response), read a bounded response body, read the client's body, and get or set a key-value
//! entry. Every decision — authentication, routing, the previous-owner fallback, creating a
//! missing bucket and retrying, the one safe retry, fan-out and merge, what the client sees and
//! what is logged — is made here, so all of it is unit-tested natively with a scripted transport.

mod admin;
mod batch_delete;
mod call;
mod copy;
mod forward;
mod list;
mod respond;
mod ring_cache;
#[cfg(test)]
mod tests;

use crate::access_log::AccessLog;
use crate::admin::AdminOp;
use crate::backend::BackendRequest;
use crate::config::Config;
use crate::context::Proxy;
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::reply::Reply;
use crate::request_body::BodyFilter;
use crate::route::{self, Operation, RequestParts, Route};
use crate::{auth, xml};

pub use call::{TransportError, TransportErrorKind};

/// A backend response head.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

/// Where the body of a backend request comes from.
pub enum Outbound<R> {
    /// No body.
    Empty,
    /// Bytes the core holds (small client bodies, bodies it built).
    Bytes(Vec<u8>),
    /// The client's request body, streamed through `filter` (which decodes and checks it and
    /// withholds the last byte until the check passes). With [`BodyFilter::Passthrough`], before
    /// the core read any of it, the bytes go on unchanged: a transport may move them without
    /// reading them (the component splices), as long as a body short of its Content-Length never
    /// completes the backend's request.
    Client(BodyFilter),
    /// Another backend response's body, streamed through unchanged (a copy across shards).
    Backend(R),
}

/// Why a send failed.
#[derive(Debug)]
pub enum SendError {
    /// The backend could not be reached, or broke off, before its response head.
    Transport(TransportError),
    /// The request body failed: the client's body broke off or failed its check (the core's
    /// filter says which S3 error), or the source backend's body broke off.
    Body(S3Error),
    /// The client's request body broke off ([`TransportErrorKind::Closed`]) or paused longer than
    /// the limit the core set ([`TransportErrorKind::Timeout`]); or, writing the response, the
    /// client went away or stopped reading for longer than that limit.
    Client(TransportError),
}

/// A sent request: its response head, the unread response, and the upload still streaming when
/// the head arrived (if the body was streamed), which the core awaits only when it needs to.
pub struct Sent<R, U> {
    pub head: Head,
    pub response: R,
    pub upload: Option<U>,
}

/// The I/O the core asks of the adapter. Nothing here decides anything: each method does exactly
/// one thing with bytes, and reports what happened.
#[allow(async_fn_in_trait)] // one single-threaded implementation per runtime; no Send bounds wanted
pub trait Transport {
    /// A backend response whose body has not been read.
    type Response;
    /// A request body still being written to a backend.
    type Upload;

    /// Send `request` (with its timeouts) and `body`; resolves at the response head, or as soon
    /// as a streamed body fails.
    async fn send(&self, request: &BackendRequest, body: Outbound<Self::Response>) -> Result<Sent<Self::Response, Self::Upload>, SendError>;
    /// Wait until a streamed request body has been written whole.
    async fn finish_upload(&self, upload: Self::Upload) -> Result<(), SendError>;
    /// Read a response body, at most `limit` bytes of it (the rest is dropped). Returns as soon as
    /// `limit` bytes have arrived, without waiting to see the body end: a body of announced length
    /// is then held the moment its last byte arrives.
    async fn read_body(&self, response: Self::Response, limit: usize) -> Result<Vec<u8>, TransportError>;
    /// The next piece of the client's request body; `None` at its end.
    async fn client_chunk(&self) -> Option<Result<Vec<u8>, TransportError>>;
    /// Bound every wait on the client to `ms`: for its body (here and when it streams to a backend),
    /// where a longer pause ends the body with a [`TransportErrorKind::Timeout`] error, and for it
    /// to read the response, which is then cut.
    fn limit_client_idle(&self, ms: u64);
    /// An entry of the key-value store `default` (`Ok(None)`: no such entry; `Err`: no store).
    fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Store an entry in the key-value store `default`.
    fn kv_set(&self, key: &str, value: &[u8]) -> Result<(), String>;
}

/// What the client receives.
pub enum Answer<R> {
    /// A response held whole: headers final (Content-Length included where there is a body).
    Reply(Reply),
    /// A backend response streamed through: status and headers final, the body streamed as is
    /// (one larger than `respond::READ_WHOLE_LIMIT`, or of unknown length). The adapter splices
    /// it inside the runtime: passing it through the component would cost two copies of every
    /// byte and, per piece, crossings into the runtime and a flush (about half the proxy's CPU
    /// for a large GET).
    Stream { status: u16, headers: Vec<(String, String)>, response: R },
}

/// One request, as the adapter received it.
pub struct Request {
    pub parts: RequestParts,
    /// Whether the runtime received the request over TLS (its scheme is `https`).
    pub https: bool,
    pub now_unix: u64,
    pub request_id: String,
}

/// What is left after the answer has been sent: storing a hashed ring table, and the log line.
pub struct Finish {
    proxy: Option<Proxy>,
    log: AccessLog,
    save_rings: bool,
}

impl Finish {
    /// Once the client has its answer (`status`; the body bytes sent, or the error that cut the
    /// body): store any ring table this request hashed, and return the access-log line.
    pub fn done(mut self, transport: &impl Transport, status: u16, sent: Result<u64, SendError>, duration_us: u64) -> String {
        if let (Some(proxy), true) = (&self.proxy, self.save_rings) {
            ring_cache::save(proxy, transport);
        }
        self.log.status = status;
        self.log.bytes = sent.as_ref().ok().copied();
        self.log.cut = sent.as_ref().err().map(crate::access_log::cut_reason);
        self.log.duration_us = duration_us;
        self.log.to_json()
    }
}

/// Decide and carry out one request: configuration from `variables`, then authentication,
/// routing and every backend step through `transport`.
pub async fn handle<T: Transport>(
    transport: &T,
    request: Request,
    variables: impl Fn(&str) -> Option<String>,
) -> (Answer<T::Response>, Finish) {
    let Request { parts, https, now_unix, request_id } = request;
    let mut log = AccessLog { request_id: request_id.clone(), time: now_unix, method: parts.method.clone(), ..Default::default() };
    let proxy = match Config::from_variables(variables) {
        Ok(cfg) => Proxy::new(cfg),
        Err(e) => {
            let err = S3Error::from(e);
            log.operation = "Invalid".into();
            log.error = Some(err.message.clone());
            let reply = if crate::admin::is_health(&parts) { crate::admin::config_error_health(&err) } else { Reply::error(&err, &request_id) };
            let answer = respond::finish(Answer::Reply(reply), &parts, &request_id);
            return (answer, Finish { proxy: None, log, save_rings: false });
        }
    };
    transport.limit_client_idle(proxy.cfg.timeouts.client_idle_ms);
    let target = Target::parse(&proxy, &parts);
    // Before anything places a key (the log's owning bucket included): a lookup without the
    // cached table hashes every point of the ring.
    let save_rings = target.uses_ring() && ring_cache::load(&proxy, transport);
    (log.operation, log.key, log.bucket) = target.describe(&proxy);
    let answer = match serve(transport, &proxy, &parts, https, target, now_unix).await {
        Ok(answer) => answer,
        Err(err) => {
            let err = match err.code {
                // A body without a length: S3 says 501 to Transfer-Encoding: chunked, 411 to none.
                ErrorCode::MissingContentLength => crate::checks::missing_length(err, body_arrives(transport).await),
                _ => err,
            };
            log.error = Some(err.log_line());
            Answer::Reply(Reply::error(&proxy.scrub_error(err), &request_id))
        }
    };
    let answer = respond::finish(answer, &parts, &request_id);
    (answer, Finish { proxy: Some(proxy), log, save_rings })
}

/// Whether any body bytes arrive (for a request that declared no length; the runtime hides
/// `Transfer-Encoding` from the component).
async fn body_arrives(t: &impl Transport) -> bool {
    while let Some(Ok(piece)) = t.client_chunk().await {
        if !piece.is_empty() {
            return true;
        }
    }
    false
}

/// What a request addresses: an operator endpoint, or an S3 operation on the virtual bucket.
pub enum Target {
    Admin(S3Result<AdminOp>),
    S3(S3Result<Route>),
}

impl Target {
    /// Parse `parts` once, for everything the request needs decided.
    pub fn parse(proxy: &Proxy, parts: &RequestParts) -> Target {
        match crate::admin::parse(parts) {
            Some(admin) => Target::Admin(admin),
            None => Target::S3(route::parse(parts, &proxy.cfg.virtual_bucket)),
        }
    }

    /// Whether answering places an object key on a ring, i.e. whether a cached ring table is worth
    /// fetching for it (bucket-level calls, listings and health checks place nothing).
    pub fn uses_ring(&self) -> bool {
        match self {
            Target::Admin(op) => matches!(op, Ok(AdminOp::Locate { .. })),
            Target::S3(route) => route.as_ref().is_ok_and(|r| r.op.key().is_some() || r.op == Operation::DeleteObjects),
        }
    }

    /// Operation name, key and owning bucket, for the access log.
    pub fn describe(&self, proxy: &Proxy) -> (String, Option<String>, Option<String>) {
        match self {
            Target::Admin(Ok(AdminOp::Health)) => ("AdminHealth".into(), None, None),
            Target::Admin(Ok(AdminOp::Locate { .. })) => ("AdminLocate".into(), None, None),
            Target::Admin(Err(_)) => ("Admin".into(), None, None),
            Target::S3(Ok(r)) => {
                let key = r.op.key().map(str::to_string);
                let bucket = key.as_deref().map(|k| proxy.ring.owner(k).to_string());
                (r.op.name().into(), key, bucket)
            }
            Target::S3(Err(_)) => ("Invalid".into(), None, None),
        }
    }
}

/// Authenticate, then carry out what the request addresses.
async fn serve<T: Transport>(t: &T, proxy: &Proxy, parts: &RequestParts, https: bool, target: Target, now: u64) -> S3Result<Answer<T::Response>> {
    let payload = auth::authenticate(&proxy.cfg, parts, now)?;
    proxy.check_customer_key_transport(parts, https)?;
    let route = match target {
        Target::Admin(op) => return admin::run(t, proxy, op?, now).await.map(Answer::Reply),
        Target::S3(route) => route?,
    };
    crate::body_limit::check(parts, proxy.cfg.max_body_bytes)?;
    let vb = &proxy.cfg.virtual_bucket;
    match &route.op {
        Operation::ListBuckets => Ok(Answer::Reply(Reply::xml(
            200,
            xml::list_all_my_buckets(vb, "2024-01-01T00:00:00.000Z", "tempo-s3-shard"),
        ))),
        Operation::HeadBucket => {
            let mut reply = Reply::empty(200);
            reply.headers.push(("x-amz-bucket-region".into(), proxy.cfg.region.clone()));
            Ok(Answer::Reply(reply))
        }
        Operation::GetBucketLocation => Ok(Answer::Reply(Reply::xml(200, xml::location_constraint(&proxy.cfg.region)))),
        Operation::ListObjects { .. } => list::objects(t, proxy, &route, now).await.map(Answer::Reply),
        Operation::ListMultipartUploads => list::uploads(t, proxy, &route, now).await.map(Answer::Reply),
        Operation::DeleteObjects => batch_delete::run(t, proxy, parts, payload, now).await.map(Answer::Reply),
        Operation::CopyObject { .. } | Operation::UploadPartCopy { .. } => copy::run(t, proxy, parts, &route, now).await,
        _ => forward::run(t, proxy, parts, https, route, payload, now).await,
    }
}
