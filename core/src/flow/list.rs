//! ListObjects (V1 and V2) and ListMultipartUploads over every shard: each round asks the shards
//! the merge still needs, all at once; one failing fails the listing (never a partial page).

use super::{call, Transport};
use crate::backend_error::{backend_page, MAX_LIST_BODY};
use crate::backend::Call;
use crate::context::Proxy;
use crate::error::S3Result;
use crate::listing::Merger;
use crate::query::ListRequest;
use crate::reply::Reply;
use crate::route::Route;
use crate::list_uploads::UploadsMerger;
use crate::query::UploadsRequest;
use crate::xml;

/// The pages a merge asks for: (shard, decoded query) pairs.
type Wanted = Vec<(usize, Vec<(String, String)>)>;

/// ListObjects / ListObjectsV2 over every shard.
pub async fn objects<T: Transport>(t: &T, proxy: &Proxy, route: &Route, now: u64) -> S3Result<Reply> {
    let req = ListRequest::from_query(&route.query)?;
    let mut merger = Merger::new(req, proxy.all_buckets.len(), &proxy.token_key())?;
    loop {
        let wanted = merger.next_requests();
        if wanted.is_empty() {
            let out = merger.finish(&proxy.cfg.virtual_bucket);
            let body = if out.v2 { xml::list_objects_v2(&out) } else { xml::list_objects_v1(&out) };
            return Ok(Reply::xml(200, body));
        }
        for (shard, status, body) in pages(t, proxy, wanted, now).await? {
            merger.feed(shard, backend_page(status, &body, xml::parse_list_objects, "listing")?)?;
        }
    }
}

/// ListMultipartUploads over every shard, driven like [`objects`].
pub async fn uploads<T: Transport>(t: &T, proxy: &Proxy, route: &Route, now: u64) -> S3Result<Reply> {
    let req = UploadsRequest::from_query(&route.query)?;
    let mut merger = UploadsMerger::new(req, proxy.all_buckets.len())?;
    loop {
        let wanted = merger.next_requests();
        if wanted.is_empty() {
            return Ok(Reply::xml(200, xml::list_multipart_uploads(&merger.finish(&proxy.cfg.virtual_bucket))));
        }
        for (shard, status, body) in pages(t, proxy, wanted, now).await? {
            merger.feed(shard, backend_page(status, &body, xml::parse_list_multipart_uploads, "uploads listing")?)?;
        }
    }
}

/// One listing call per wanted shard, all in flight at once; the first that fails ends them all.
async fn pages<T: Transport>(t: &T, proxy: &Proxy, wanted: Wanted, now: u64) -> S3Result<Vec<(usize, u16, Vec<u8>)>> {
    let calls = wanted
        .into_iter()
        .map(|(shard, query)| async move {
            let request = proxy.request(shard, Call::new("GET").query(&query), now);
            let answer = call::call(t, proxy, shard, &request, Vec::new(), MAX_LIST_BODY).await?;
            Ok((shard, answer.head.status, answer.body))
        })
        .collect();
    call::all(calls).await
}
