//! Backend calls as the flows use them: the one safe retry, bounded reads, failed answers turned
//! into S3 errors, fan-outs that fail fast and whole, and creating a missing bucket.

use std::future::Future;

use futures::stream::{FuturesUnordered, StreamExt};

use super::{Head, Outbound, SendError, Sent, Transport};
use crate::backend::BackendRequest;
use crate::chunked::Trailers;
use crate::backend_error::{backend_error, bucket_exists_already, is_success, MAX_ERROR_BODY};
use crate::context::Proxy;
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::request_body::{BodyFilter, RETRY_BUFFER_LIMIT};
use crate::route::RequestParts;

/// How a backend call failed below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportErrorKind {
    /// No connection could be made (refused, unreachable, DNS).
    Connect,
    /// The connection closed or reset before the response head (e.g. a stale pooled connection).
    Closed,
    /// A configured timeout passed (connect, first byte, or between body bytes).
    Timeout,
    /// Anything else (TLS, protocol, a request the runtime refused).
    Other,
}

/// A failure below HTTP, as the adapter saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    pub kind: TransportErrorKind,
    /// What the runtime said, for the access log only (it may name a host).
    pub detail: String,
}

impl TransportError {
    /// A failure of `kind`, with the runtime's words.
    pub fn new(kind: TransportErrorKind, detail: impl Into<String>) -> TransportError {
        TransportError { kind, detail: detail.into() }
    }

    /// A wasi-http `error-code`, by its variant name as the runtime's `Debug` writes it
    /// (`ConnectionRefused`, `ErrorCode::DnsError(…)`): what kind of failure it is.
    pub fn from_wasi(code: &str) -> TransportError {
        let head = code.split(['(', ' ', '{']).next().unwrap_or_default();
        let name = head.rsplit("::").next().unwrap_or(head);
        let kind = match name {
            "ConnectionTimeout" | "ConnectionReadTimeout" | "ConnectionWriteTimeout" | "HttpResponseTimeout" | "DnsTimeout" => TransportErrorKind::Timeout,
            "ConnectionRefused" | "DestinationNotFound" | "DestinationUnavailable" | "DestinationIpUnroutable" | "DnsError" => TransportErrorKind::Connect,
            "ConnectionTerminated" | "HttpResponseIncomplete" => TransportErrorKind::Closed,
            _ => TransportErrorKind::Other,
        };
        TransportError::new(kind, code)
    }

    /// A body that broke off, in the runtime's `words` (wasi's read error: `connection read timeout`
    /// when a backend's body paused longer than its between-bytes timeout).
    pub fn broke_off(words: Option<String>) -> TransportError {
        let words = words.unwrap_or_else(|| "a body broke off".into());
        let kind = if words.to_ascii_lowercase().contains("timeout") { TransportErrorKind::Timeout } else { TransportErrorKind::Closed };
        TransportError::new(kind, words)
    }

    /// The client's error: 503, retryable, naming the shard by position only.
    pub fn to_s3(&self, proxy: &Proxy, shard: usize) -> S3Error {
        let what = match self.kind {
            TransportErrorKind::Timeout => "did not answer in time",
            TransportErrorKind::Connect => "could not be reached",
            TransportErrorKind::Closed => "closed the connection",
            TransportErrorKind::Other => "failed",
        };
        S3Error::new(
            ErrorCode::ServiceUnavailable,
            format!("{} {what}; the request may be retried", proxy.shard_label(shard)),
        )
        .with_detail(format!("bucket {}: {}", proxy.bucket(shard), self.detail))
    }
}

/// Whether a failed send may be repeated: it failed before any byte of an answer, on a fresh or
/// stale connection, and its body (none, or held in memory) can be sent again. Timeouts are not
/// retried: the backend is slow, and asking again would double the wait.
fn retryable(err: &TransportError) -> bool {
    matches!(err.kind, TransportErrorKind::Closed | TransportErrorKind::Connect)
}

/// Send `request` to shard `shard`, retrying once (on a new connection) when that is safe.
pub async fn send<T: Transport>(
    t: &T,
    proxy: &Proxy,
    shard: usize,
    request: &BackendRequest,
    body: Outbound<T::Response>,
) -> S3Result<Sent<T::Response, T::Upload>> {
    let again = match &body {
        Outbound::Empty => Some(Outbound::Empty),
        Outbound::Bytes(bytes) => Some(Outbound::Bytes(bytes.clone())),
        Outbound::Client(_) | Outbound::Backend(_) => None,
    };
    match t.send(request, body).await {
        Err(SendError::Transport(err)) if retryable(&err) => match again {
            Some(body) => t.send(request, body).await.map_err(|e| send_error(proxy, shard, e)),
            None => Err(err.to_s3(proxy, shard)),
        },
        result => result.map_err(|e| send_error(proxy, shard, e)),
    }
}

fn send_error(proxy: &Proxy, shard: usize, err: SendError) -> S3Error {
    match err {
        SendError::Transport(e) => e.to_s3(proxy, shard),
        SendError::Body(e) => e,
        SendError::Client(e) => client_body_failed(&e),
    }
}

/// Wait for a streamed body to be written whole.
pub async fn finish_upload<T: Transport>(t: &T, proxy: &Proxy, shard: usize, upload: Option<T::Upload>) -> S3Result<()> {
    match upload {
        Some(upload) => t.finish_upload(upload).await.map_err(|e| send_error(proxy, shard, e)),
        None => Ok(()),
    }
}

/// The S3 error a failed answer stands for, from its (bounded) body.
pub async fn failure<T: Transport>(t: &T, head: &Head, response: T::Response) -> S3Error {
    let body = t.read_body(response, MAX_ERROR_BODY).await.unwrap_or_default();
    backend_error(head.status, &body)
}

/// A call whose whole answer is read: status, headers and at most `limit` bytes of body.
pub struct Answered {
    pub head: Head,
    pub body: Vec<u8>,
}

/// Send a request with a body held in memory (or none) and read its answer whole.
pub async fn call<T: Transport>(t: &T, proxy: &Proxy, shard: usize, request: &BackendRequest, body: Vec<u8>, limit: usize) -> S3Result<Answered> {
    let body = if body.is_empty() { Outbound::Empty } else { Outbound::Bytes(body) };
    let sent = send(t, proxy, shard, request, body).await?;
    let body = t.read_body(sent.response, limit).await.map_err(|e| e.to_s3(proxy, shard))?;
    Ok(Answered { head: sent.head, body })
}

/// Run `calls` at once and collect their results in order. The first failure ends the whole
/// fan-out: the calls still running are dropped (which cancels them) and the error returned, so
/// an answer is never built from part of the shards.
pub async fn all<X>(calls: Vec<impl Future<Output = S3Result<X>>>) -> S3Result<Vec<X>> {
    let n = calls.len();
    let mut running: FuturesUnordered<_> = calls.into_iter().enumerate().map(|(i, c)| async move { (i, c.await) }).collect();
    let mut out: Vec<Option<X>> = (0..n).map(|_| None).collect();
    while let Some((i, result)) = running.next().await {
        out[i] = Some(result?);
    }
    Ok(out.into_iter().flatten().collect())
}

/// Create shard `shard`'s bucket; one that exists already (made by a concurrent request) is fine.
pub async fn create_bucket<T: Transport>(t: &T, proxy: &Proxy, shard: usize, now: u64) -> S3Result<()> {
    let (request, body) = proxy.create_bucket_request(shard, now);
    let answer = call(t, proxy, shard, &request, body, MAX_ERROR_BODY).await?;
    if is_success(answer.head.status) {
        return Ok(());
    }
    let err = backend_error(answer.head.status, &answer.body);
    if bucket_exists_already(&err) {
        return Ok(());
    }
    Err(err)
}

/// Read a whole (small) client body through its filter, which decodes and checks it; `length` is
/// its decoded length. A declared length is trusted only up to the retry buffer's size when
/// reserving memory. Once the request's Content-Length has arrived nothing more can (HTTP framing),
/// so the body is whole without waiting to see it end. Returns the body and what an aws-chunked
/// body's trailer carried.
pub async fn read_client_body<T: Transport>(t: &T, parts: &RequestParts, mut filter: BodyFilter, length: u64) -> S3Result<(Vec<u8>, Trailers)> {
    let sent = parts.header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
    let mut body = Vec::with_capacity(length.min(RETRY_BUFFER_LIMIT as u64) as usize);
    let mut received = 0u64;
    while sent.is_none_or(|n| received < n) {
        let Some(chunk) = t.client_chunk().await else { break };
        let chunk = chunk.map_err(|e| client_body_failed(&e))?;
        received += chunk.len() as u64;
        filter.push(&chunk, &mut body)?;
        if body.len() as u64 > length {
            return Err(S3Error::new(ErrorCode::IncompleteBody, "the body is longer than its declared length"));
        }
    }
    let trailers = filter.finish(&mut body)?;
    if body.len() as u64 != length {
        return Err(client_body_ended());
    }
    Ok((body, trailers))
}

/// The client's body broke off (400 IncompleteBody) or paused longer than `client_idle_timeout`
/// (400 RequestTimeout, as S3 answers an upload that stalls).
pub fn client_body_failed(err: &TransportError) -> S3Error {
    match err.kind {
        TransportErrorKind::Timeout => S3Error::new(
            ErrorCode::RequestTimeout,
            "your socket connection to the server was not read from or written to within the timeout period (client_idle_timeout); send the request again",
        ),
        _ => client_body_ended(),
    }
}

/// The client's body ended (or broke off) before its declared length.
pub fn client_body_ended() -> S3Error {
    S3Error::new(ErrorCode::IncompleteBody, "the request body ended before Content-Length bytes arrived")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasi_errors_are_classified_by_variant_name() {
        let kind = |c: &str| TransportError::from_wasi(c).kind;
        assert_eq!(kind("ConnectionReadTimeout"), TransportErrorKind::Timeout);
        assert_eq!(kind("HttpResponseTimeout"), TransportErrorKind::Timeout);
        assert_eq!(kind("ConnectionRefused"), TransportErrorKind::Connect);
        assert_eq!(kind("ErrorCode::ConnectionRefused"), TransportErrorKind::Connect);
        assert_eq!(kind("DnsError(DnsErrorPayload { rcode: None, info-code: None })"), TransportErrorKind::Connect);
        assert_eq!(kind("ConnectionTerminated"), TransportErrorKind::Closed);
        assert_eq!(kind("TlsCertificateError"), TransportErrorKind::Other);
    }

    #[test]
    fn a_body_that_paused_too_long_is_told_from_one_that_broke_off() {
        assert_eq!(TransportError::broke_off(Some("connection read timeout".into())).kind, TransportErrorKind::Timeout);
        assert_eq!(TransportError::broke_off(Some("connection terminated".into())).kind, TransportErrorKind::Closed);
        assert_eq!(TransportError::broke_off(None).kind, TransportErrorKind::Closed);
    }
}
