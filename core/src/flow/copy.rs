//! CopyObject and UploadPartCopy: the source read from its owner (or, while resharding, its
//! previous owner), server-side on one shard or streamed from one shard into another.

use super::{call, Answer, Outbound, Transport};
use crate::backend_error::{copy_source_error, is_success, retry_after_bucket_created, MAX_ERROR_BODY};
use crate::context::Proxy;
use crate::copy::{self, CopyPlan, CopyRequest, StreamedCopy};
use crate::error::{ErrorCode, S3Result};
use crate::reply::Reply;
use crate::route::{RequestParts, Route};
use crate::xml;

/// Carry out a copy. Its source may sit on the key's owner or, while resharding, on the previous
/// owner: each is tried in turn while the source is missing.
pub async fn run<T: Transport>(t: &T, proxy: &Proxy, parts: &RequestParts, route: &Route, now: u64) -> S3Result<Answer<T::Response>> {
    let req = copy::request(proxy, parts, route)?;
    let sources = proxy.owners(&req.source.key);
    let mut result = Err(crate::backend_error::no_such_key());
    for src_shard in sources {
        result = from_shard(t, proxy, parts, route, &req, src_shard, now).await;
        if !matches!(&result, Err(e) if e.code == ErrorCode::NoSuchKey) {
            break;
        }
    }
    result
}

/// The copy with its source read from `src_shard`.
async fn from_shard<T: Transport>(
    t: &T,
    proxy: &Proxy,
    parts: &RequestParts,
    route: &Route,
    req: &CopyRequest,
    src_shard: usize,
    now: u64,
) -> S3Result<Answer<T::Response>> {
    match copy::plan(proxy, parts, route, req, src_shard, now) {
        CopyPlan::ServerSide { shard, request } => {
            let attempt = super::forward::Attempt::new(t, proxy, &route.op, &parts.method, now);
            attempt.run(shard, request, super::forward::Held::Bytes(Vec::new()), None).await
        }
        CopyPlan::Streamed(plan) => {
            let mut created = false;
            loop {
                match streamed(t, proxy, &plan, now).await? {
                    Streamed::Done(reply) => return Ok(Answer::Reply(reply)),
                    // The destination bucket did not exist: create it and copy again (the source
                    // stream is gone, but the source can be read again).
                    Streamed::NoBucket if !created => {
                        call::create_bucket(t, proxy, plan.dst_shard, now).await?;
                        created = true;
                    }
                    Streamed::NoBucket => return Err(retry_after_bucket_created()),
                }
            }
        }
    }
}

/// How one streamed copy ended.
enum Streamed {
    Done(Reply),
    /// The destination bucket does not exist.
    NoBucket,
}

/// Read the source from its shard and stream it into the write on the other.
async fn streamed<T: Transport>(t: &T, proxy: &Proxy, plan: &StreamedCopy, now: u64) -> S3Result<Streamed> {
    let source = call::send(t, proxy, plan.src_shard, &plan.get, Outbound::Empty).await?;
    plan.check_source(source.head.status, &source.head.headers)?;
    // A source that is not there to copy (a 304 of a failed condition included) fails the copy.
    if !(200..300).contains(&source.head.status) {
        let body = t.read_body(source.response, MAX_ERROR_BODY).await.unwrap_or_default();
        return Err(copy_source_error(source.head.status, &body));
    }
    let tags = match plan.needs_source_tags(&source.head.headers)? {
        true => Some(source_tags(t, proxy, plan, now).await?),
        false => None,
    };
    let (put, _) = plan.put_request(proxy, &source.head.headers, tags.as_deref(), now)?;
    let written = call::send(t, proxy, plan.dst_shard, &put, Outbound::Backend(source.response)).await?;
    if !is_success(written.head.status) {
        let err = call::failure(t, &written.head, written.response).await;
        return match err.code {
            ErrorCode::NoSuchBucket => Ok(Streamed::NoBucket),
            _ => Err(err),
        };
    }
    call::finish_upload(t, proxy, plan.dst_shard, written.upload).await?;
    Ok(Streamed::Done(Reply::xml(200, plan.result_xml(&written.head.headers, now))))
}

/// The source's tags, as an `x-amz-tagging` value.
async fn source_tags<T: Transport>(t: &T, proxy: &Proxy, plan: &StreamedCopy, now: u64) -> S3Result<String> {
    let answer = call::call(t, proxy, plan.src_shard, &plan.tagging_request(proxy, now), Vec::new(), MAX_ERROR_BODY).await?;
    if !is_success(answer.head.status) {
        return Err(crate::backend_error::backend_error(answer.head.status, &answer.body));
    }
    Ok(xml::tagging_header(&xml::parse_tagging(&answer.body)?))
}
