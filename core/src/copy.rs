//! CopyObject and UploadPartCopy inside the virtual bucket: a server-side copy when source and
//! destination share a shard, otherwise a streamed GET from one shard into a PUT on the other.

use crate::backend::{self, BackendRequest, Call};
use crate::sigv4::payload::UNSIGNED_PAYLOAD;
use crate::checks::CopyRange;
use crate::context::Proxy;
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::route::{header, Operation, RequestParts, Route};
use crate::clock;
use crate::codec::{self, percent_decode};

/// The object a copy reads: key (in the virtual bucket) and optional version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySource {
    pub key: String,
    pub version_id: Option<String>,
}

/// Parse `x-amz-copy-source` (`/bucket/key`, `bucket/key`, percent-encoded, optional `?versionId=`).
pub fn parse_source(value: &str, virtual_bucket: &str) -> S3Result<CopySource> {
    let (path, query) = match value.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (value, None),
    };
    let path = path.strip_prefix('/').unwrap_or(path);
    let (bucket, key) = path
        .split_once('/')
        .ok_or_else(|| S3Error::invalid_argument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey"))?;
    let bucket = percent_decode(bucket)?;
    let key = percent_decode(key)?;
    if bucket != virtual_bucket {
        return Err(S3Error::new(ErrorCode::NoSuchBucket, "The specified copy source bucket does not exist")
            .with_resource(format!("/{bucket}")));
    }
    if key.is_empty() || key.len() > crate::route::MAX_KEY_LEN {
        return Err(S3Error::invalid_argument("the copy source key is empty or longer than 1024 bytes"));
    }
    let version_id = match query {
        Some(q) => codec::decode_query(q)?.into_iter().find(|(k, _)| k == "versionId").map(|(_, v)| v),
        None => None,
    };
    Ok(CopySource { key, version_id })
}

/// How a copy is carried out.
#[derive(Debug)]
pub enum CopyPlan {
    /// Same shard: forward with the copy source rewritten to the backend bucket.
    ServerSide { shard: usize, request: BackendRequest },
    /// Different shards: read the source, then write it.
    Streamed(StreamedCopy),
}

/// A copy across shards: `get` reads the source; [`StreamedCopy::put_request`] writes it.
#[derive(Debug)]
pub struct StreamedCopy {
    pub op: Operation,
    pub get: BackendRequest,
    pub src_shard: usize,
    pub dst_shard: usize,
    dst_key: String,
    /// The source's key and version (for reading its tags).
    source: CopySource,
    query: Vec<(String, String)>,
    /// The client's headers (for REPLACE directives).
    client_headers: Vec<(String, String)>,
    /// The checked `x-amz-copy-source-range` of an UploadPartCopy.
    pub range: Option<CopyRange>,
}

/// Source-object headers carried over by a copy with the COPY metadata directive.
const COPIED_OBJECT_HEADERS: &[&str] =
    &["cache-control", "content-disposition", "content-encoding", "content-language", "content-type", "expires"];

/// A checked copy request: its source, and the key it writes.
#[derive(Debug, Clone)]
pub struct CopyRequest {
    pub source: CopySource,
    pub dst_key: String,
    /// The checked `x-amz-copy-source-range` of an UploadPartCopy.
    pub range: Option<CopyRange>,
}

/// Read and check a copy's source (an object of the virtual bucket, not the object itself unless
/// the metadata is replaced).
pub fn request(proxy: &Proxy, parts: &RequestParts, route: &Route) -> S3Result<CopyRequest> {
    let dst_key = route.op.key().unwrap_or_default().to_string();
    let source_header = header(&parts.headers, "x-amz-copy-source").unwrap_or_default();
    let source = parse_source(source_header, &proxy.cfg.virtual_bucket)?;
    // Bad directives are S3's 400 on every path, whatever a backend would make of them.
    directive(&parts.headers, "x-amz-metadata-directive")?;
    directive(&parts.headers, "x-amz-tagging-directive")?;
    let is_part = matches!(route.op, Operation::UploadPartCopy { .. });
    if !is_part && source.key == dst_key && header(&parts.headers, "x-amz-metadata-directive").is_none_or(|d| !d.eq_ignore_ascii_case("REPLACE")) {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    // S3 checks a part copy's range itself: it is checked against the source's size on the
    // streamed path (also within one shard), as backends may copy a shorter range instead.
    let range = match header(&parts.headers, "x-amz-copy-source-range").filter(|_| is_part) {
        Some(value) => Some(CopyRange::parse(value)?),
        None => None,
    };
    Ok(CopyRequest { source, dst_key, range })
}

/// Plan a CopyObject or UploadPartCopy that reads its source from shard `src_shard`.
pub fn plan(proxy: &Proxy, parts: &RequestParts, route: &Route, copy: &CopyRequest, src_shard: usize, now_unix: u64) -> CopyPlan {
    let CopyRequest { source: src, dst_key, range } = copy.clone();
    let dst_shard = proxy.ring.owner_index(&dst_key);
    if src_shard == dst_shard && range.is_none() {
        let mut headers = backend::forward_request_headers(&parts.headers);
        let mut source = format!("/{}/{}", proxy.bucket(src_shard), codec::uri_encode(&src.key, false));
        if let Some(v) = &src.version_id {
            source.push_str(&format!("?versionId={}", codec::uri_encode(v, true)));
        }
        headers.push(("x-amz-copy-source".into(), source));
        let request = proxy.request(dst_shard, Call::new("PUT").key(&dst_key).query(&route.query).headers(headers), now_unix);
        return CopyPlan::ServerSide { shard: dst_shard, request };
    }

    // Source conditions become plain conditions on the GET; the range of a part copy a Range.
    let mut get_headers = vec![];
    for (copy_name, plain) in [
        ("x-amz-copy-source-if-match", "if-match"),
        ("x-amz-copy-source-if-none-match", "if-none-match"),
        ("x-amz-copy-source-if-modified-since", "if-modified-since"),
        ("x-amz-copy-source-if-unmodified-since", "if-unmodified-since"),
    ] {
        if let Some(v) = header(&parts.headers, copy_name) {
            get_headers.push((plain.to_string(), v.to_string()));
        }
    }
    if let Some(range) = &range {
        get_headers.push(("range".into(), range.range_header()));
    }
    get_headers.extend(crate::sse::source_key_for_get(&parts.headers));
    let get_query: Vec<(String, String)> =
        src.version_id.iter().map(|v| ("versionId".to_string(), v.clone())).collect();
    let get = proxy.request(src_shard, Call::new("GET").key(&src.key).query(&get_query).headers(get_headers), now_unix);
    CopyPlan::Streamed(StreamedCopy {
        op: route.op.clone(),
        get,
        src_shard,
        dst_shard,
        dst_key,
        source: src,
        query: route.query.clone(),
        client_headers: parts.headers.clone(),
        range,
    })
}

impl StreamedCopy {
    /// The PUT (or UploadPart) that writes the source's bytes, given the source GET's response
    /// headers. With the COPY directive (the default) the object's headers and user metadata come
    /// from the source; with REPLACE from the request. Tags come from the request's `x-amz-tagging`
    /// when the tagging directive is REPLACE; `source_tagging` (URL-query form) otherwise.
    pub fn put_request(
        &self,
        proxy: &Proxy,
        source_headers: &[(String, String)],
        source_tagging: Option<&str>,
        now_unix: u64,
    ) -> S3Result<(BackendRequest, u64)> {
        let length: u64 = header(source_headers, "content-length")
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| S3Error::internal("the copy source answered without a Content-Length"))?;
        let mut headers = vec![("content-length".to_string(), length.to_string())];
        if matches!(self.op, Operation::CopyObject { .. }) {
            let replace_meta = directive(&self.client_headers, "x-amz-metadata-directive")?;
            let from = if replace_meta { &self.client_headers } else { &source_headers.to_vec() };
            for (name, value) in backend::forward_request_headers(from) {
                if COPIED_OBJECT_HEADERS.contains(&name.as_str()) || name.starts_with("x-amz-meta-") {
                    headers.push((name, value));
                }
            }
            if let Some(v) = header(&self.client_headers, "x-amz-storage-class") {
                headers.push(("x-amz-storage-class".to_string(), v.to_string()));
            }
            let tagging = if directive(&self.client_headers, "x-amz-tagging-directive")? {
                header(&self.client_headers, "x-amz-tagging").map(str::to_string)
            } else {
                source_tagging.map(str::to_string)
            };
            if let Some(t) = tagging.filter(|t| !t.is_empty()) {
                headers.push(("x-amz-tagging".into(), t));
            }
        }
        headers.extend(crate::sse::destination_headers(&self.client_headers, matches!(self.op, Operation::CopyObject { .. })));
        let request = proxy.request(self.dst_shard, Call::new("PUT").key(&self.dst_key).query(&self.query).headers(headers).payload_hash(UNSIGNED_PAYLOAD), now_unix);
        Ok((request, length))
    }

    /// Check the source GET's answer against the part copy's range: a range beyond the source is
    /// S3's 400 InvalidArgument (whatever the backend made of it). Call before looking at the status.
    /// The copy-source conditions are evaluated here too, against the source's ETag and
    /// Last-Modified, for backends that ignore conditions on GET.
    pub fn check_source(&self, status: u16, source_headers: &[(String, String)]) -> S3Result<()> {
        if let Some(range) = self.range {
            range.check_source(status, source_headers)?;
        }
        if (200..300).contains(&status) {
            crate::checks::copy_source_conditions(&self.client_headers, source_headers)?;
        }
        Ok(())
    }

    /// The `?tagging` GET that reads the source's tags (needed when it has some and tags are copied).
    pub fn needs_source_tags(&self, source_headers: &[(String, String)]) -> S3Result<bool> {
        let count = header(source_headers, "x-amz-tagging-count").and_then(|v| v.trim().parse::<u32>().ok());
        Ok(matches!(self.op, Operation::CopyObject { .. })
            && count.unwrap_or(0) > 0
            && !directive(&self.client_headers, "x-amz-tagging-directive")?)
    }

    /// The request reading the source's tags.
    pub fn tagging_request(&self, proxy: &Proxy, now_unix: u64) -> BackendRequest {
        let src = &self.source;
        let mut query = vec![("tagging".to_string(), String::new())];
        query.extend(src.version_id.iter().map(|v| ("versionId".to_string(), v.clone())));
        proxy.request(self.src_shard, Call::new("GET").key(&src.key).query(&query), now_unix)
    }

    /// The XML the client receives, from the write's response headers.
    pub fn result_xml(&self, put_headers: &[(String, String)], now_unix: u64) -> String {
        let etag = header(put_headers, "etag").unwrap_or_default();
        let root = if matches!(self.op, Operation::UploadPartCopy { .. }) { "CopyPartResult" } else { "CopyObjectResult" };
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LastModified>{}</LastModified><ETag>{}</ETag></{root}>",
            clock::iso8601(now_unix),
            crate::xml::escape(etag)
        )
    }
}

/// Whether a `*-directive` header says REPLACE (false for COPY or absent; other values are errors).
fn directive(headers: &[(String, String)], name: &str) -> S3Result<bool> {
    match header(headers, name).map(str::trim) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("COPY") => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("REPLACE") => Ok(true),
        Some(v) => Err(S3Error::invalid_argument(format!("Unknown {name}: {v:?}; use COPY or REPLACE"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy() -> Proxy {
        crate::testing::proxy_with(&[])
    }

    fn copy(dst: &str, src: &str, extra: &[(&str, &str)]) -> S3Result<CopyPlan> {
        let p = proxy();
        let mut headers = vec![("host".to_string(), "x".to_string()), ("x-amz-copy-source".to_string(), src.to_string())];
        headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let parts = RequestParts::new("PUT", &format!("/proxy-bucket/{dst}"), headers);
        let route = crate::route::parse(&parts, "proxy-bucket")?;
        let req = request(&p, &parts, &route)?;
        let src_shard = p.ring.owner_index(&req.source.key);
        Ok(plan(&p, &parts, &route, &req, src_shard, 0))
    }

    /// Two keys of distinct blocks that the 3-shard ring puts on different shards.
    fn keys_on_different_shards() -> (String, String) {
        let p = proxy();
        let a = "t/block-0/data".to_string();
        let b = (1..100).map(|i| format!("t/block-{i}/data")).find(|k| p.ring.owner_index(k) != p.ring.owner_index(&a)).unwrap();
        (a, b)
    }

    #[test]
    fn parses_copy_sources() {
        assert_eq!(parse_source("/proxy-bucket/a%20b/c", "proxy-bucket").unwrap().key, "a b/c");
        assert_eq!(parse_source("proxy-bucket/k?versionId=v1", "proxy-bucket").unwrap().version_id.as_deref(), Some("v1"));
        assert_eq!(parse_source("/other/k", "proxy-bucket").unwrap_err().code, ErrorCode::NoSuchBucket);
        assert_eq!(parse_source("/proxy-bucket", "proxy-bucket").unwrap_err().code, ErrorCode::InvalidArgument);
    }

    #[test]
    fn same_block_copies_server_side_with_the_backend_source() {
        let plan = copy("t/b/new", "/proxy-bucket/t/b/old%20name", &[]).unwrap();
        let CopyPlan::ServerSide { shard, request } = plan else { panic!("expected a server-side copy") };
        let bucket = &proxy().cfg.buckets[shard];
        assert_eq!(header(&request.headers, "x-amz-copy-source"), Some(format!("/{bucket}/t/b/old%20name").as_str()));
    }

    #[test]
    fn cross_shard_copy_streams_with_metadata_directives() {
        let (src, dst) = keys_on_different_shards();
        let p = proxy();
        let plan = copy(&dst, &format!("/proxy-bucket/{src}"), &[("x-amz-copy-source-if-match", "\"e\"")]).unwrap();
        let CopyPlan::Streamed(c) = plan else { panic!("expected a streamed copy") };
        assert_eq!(header(&c.get.headers, "if-match"), Some("\"e\""));
        let source = vec![
            ("Content-Length".to_string(), "5".to_string()),
            ("Content-Type".to_string(), "text/x".to_string()),
            ("x-amz-meta-a".to_string(), "1".to_string()),
            ("ETag".to_string(), "\"e\"".to_string()),
        ];
        let (put, len) = c.put_request(&p, &source, None, 0).unwrap();
        assert_eq!(len, 5);
        assert_eq!(header(&put.headers, "content-type"), Some("text/x"));
        assert_eq!(header(&put.headers, "x-amz-meta-a"), Some("1"));

        let plan = copy(&dst, &format!("/proxy-bucket/{src}"), &[("x-amz-metadata-directive", "REPLACE"), ("content-type", "app/y")]).unwrap();
        let CopyPlan::Streamed(c) = plan else { panic!() };
        let (put, _) = c.put_request(&p, &source, None, 0).unwrap();
        assert_eq!(header(&put.headers, "content-type"), Some("app/y"));
        assert_eq!(header(&put.headers, "x-amz-meta-a"), None);
        assert!(c.result_xml(&[("etag".into(), "\"x\"".into())], 0).contains("<ETag>&quot;x&quot;</ETag>"));
    }

    #[test]
    fn part_copy_ranges_are_checked_and_always_streamed() {
        let part = "t/b/new?partNumber=1&uploadId=u";
        assert_eq!(copy(part, "/proxy-bucket/t/b/old", &[("x-amz-copy-source-range", "bytes=x-y")]).unwrap_err().code, ErrorCode::InvalidArgument);
        let plan = copy(part, "/proxy-bucket/t/b/old", &[("x-amz-copy-source-range", "bytes=2-5")]).unwrap();
        let CopyPlan::Streamed(c) = plan else { panic!("a ranged part copy streams, to check the range") };
        assert_eq!(header(&c.get.headers, "range"), Some("bytes=2-5"));
        assert!(c.check_source(206, &[("content-range".into(), "bytes 2-3/4".into())]).is_err());
        assert!(c.check_source(206, &[("content-range".into(), "bytes 2-5/9".into())]).is_ok());
        assert!(matches!(copy(part, "/proxy-bucket/t/b/old", &[]).unwrap(), CopyPlan::ServerSide { .. }));
    }

    #[test]
    fn copy_onto_itself_needs_replace() {
        assert_eq!(copy("t/b/k", "/proxy-bucket/t/b/k", &[]).unwrap_err().code, ErrorCode::InvalidRequest);
        assert!(copy("t/b/k", "/proxy-bucket/t/b/k", &[("x-amz-metadata-directive", "REPLACE")]).is_ok());
        assert_eq!(iso8601_check(), "1970-01-02T00:00:01.000Z");
    }

    fn iso8601_check() -> String {
        clock::iso8601(86_401)
    }
}
