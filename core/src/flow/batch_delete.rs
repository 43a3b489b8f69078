//! DeleteObjects: the batch read and checked, each shard's part sent at once, the answers merged;
//! any shard failing fails the whole batch (a retry is harmless: deletes are idempotent).

use super::{call, Transport};
use crate::backend_error::{backend_error, is_success, MAX_LIST_BODY};
use crate::batch_delete::{self, ShardBatch, MAX_DELETE_BODY};
use crate::backend::Call;
use crate::context::Proxy;
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::reply::Reply;
use crate::request_body::{self, Body};
use crate::route::{Operation, RequestParts};
use crate::sigv4::{self, PayloadMode};

/// Carry out a DeleteObjects request.
pub async fn run<T: Transport>(t: &T, proxy: &Proxy, parts: &RequestParts, payload: PayloadMode, now: u64) -> S3Result<Reply> {
    let bytes = match request_body::request_body(&Operation::DeleteObjects, parts, payload)? {
        Body::Stream { length, .. } if length > MAX_DELETE_BODY as u64 => {
            return Err(S3Error::new(ErrorCode::MalformedXML, "the Delete request body is too large"))
        }
        Body::Stream { length, filter } => call::read_client_body(t, parts, filter, length).await?.0,
        Body::Empty => Vec::new(),
    };
    let batch = batch_delete::plan(&parts.headers, &bytes, proxy.all_buckets.len(), |k| proxy.owners(k))?;
    let calls = batch.shards.iter().map(|part| shard_part(t, proxy, part, now)).collect();
    let results = call::all(calls).await?;
    Ok(Reply::xml(200, batch.merge(&results)?))
}

/// One shard's part of the batch: its DeleteResult (all deleted, for a bucket that does not exist).
async fn shard_part<T: Transport>(t: &T, proxy: &Proxy, part: &ShardBatch, now: u64) -> S3Result<Vec<u8>> {
    let headers = vec![
        ("content-md5".to_string(), part.content_md5.clone()),
        ("content-length".to_string(), part.body.len().to_string()),
        ("content-type".to_string(), "application/xml".to_string()),
    ];
    let query = [("delete".to_string(), String::new())];
    let request = proxy.request(part.shard, Call::new("POST").query(&query).headers(headers).payload_hash(&sigv4::sign::sha256_hex(&part.body)), now);
    let answer = call::call(t, proxy, part.shard, &request, part.body.clone(), MAX_LIST_BODY).await?;
    if is_success(answer.head.status) {
        return Ok(answer.body);
    }
    let err = backend_error(answer.head.status, &answer.body);
    if err.code == ErrorCode::NoSuchBucket {
        return part.all_deleted();
    }
    Err(err)
}
