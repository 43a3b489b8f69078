//! The conformance table: one row per request, grouped by area. Keys are templates: `{k}` is the
//! case's own first segment, so `{k}/b/...` and `{k}/{far}/...` live on different shards and
//! `{k}/{near}/...` on the same one; `{bucket}` is the bucket of the side (plain or virtual);
//! `{upload}`, `{etagN}`, `{token}` and `{marker}` come from earlier steps.

use super::case::{checksum_of, Backend, Body, Case, Req};
use super::wire::{http_date, Auth, DateForm};
use tempo_s3_shard_core::checksum::ChecksumAlgorithm;

const OBJ: &str = "{k}/b/o";
const DATA: &str = "hello, conformance";

fn get(key: &str) -> Req {
    Req::new("GET", key)
}
fn head(key: &str) -> Req {
    Req::new("HEAD", key)
}
fn put(key: &str, body: &str) -> Req {
    Req::new("PUT", key).body(body)
}
fn del(key: &str) -> Req {
    Req::new("DELETE", key)
}
fn post(key: &str) -> Req {
    Req::new("POST", key)
}
fn c(name: &str, req: Req) -> Case {
    Case::new(name, req)
}
/// A case on the object `OBJ` holding `DATA`.
fn on_obj(name: &str, req: Req) -> Case {
    c(name, req).setup(put(OBJ, DATA))
}

/// Cases parked until a change outside this table lands: (case-name prefix, the change).
const UNFIXED: &[(&str, &str)] = &[];

/// Every case, in table order.
pub fn all() -> Vec<Case> {
    let mut all = table();
    for case in &mut all {
        if let Some((_, why)) = UNFIXED.iter().find(|(prefix, _)| case.name.starts_with(prefix)) {
            case.pending = Some(why);
        }
    }
    all
}

fn table() -> Vec<Case> {
    let mut all = vec![];
    all.extend(objects());
    all.extend(ranges());
    all.extend(conditionals());
    all.extend(copies());
    all.extend(multipart());
    all.extend(checksums());
    all.extend(tagging());
    all.extend(batch_delete());
    all.extend(listings());
    all.extend(presigned());
    all.extend(signatures());
    all
}

/// A key of `len` bytes once `{k}` is a four-character case id, in 100-byte segments (file names
/// s3s-fs can store).
fn long_key(len: usize) -> String {
    let mut key = String::from("{k}/b");
    let mut actual = 6;
    while actual < len {
        let seg = (len - actual - 1).min(100);
        key.push('/');
        key.push_str(&"x".repeat(seg));
        actual += seg + 1;
    }
    key
}

fn objects() -> Vec<Case> {
    let odd_keys = [
        ("unicode key", "{k}/b/ünï cödé €𝄞.txt"),
        ("key with spaces and plus", "{k}/b/a b+c"),
        ("key with reserved characters", "{k}/b/!$&'()*,;=:@[]"),
        ("key with percent", "{k}/b/100%25 %"),
        ("key with double slash", "{k}/b//x"),
        ("key with tilde and dots", "{k}/b/~.a..b"),
    ];
    let mut v = vec![
        c("put object", put(OBJ, DATA)),
        on_obj("get object", get(OBJ)),
        on_obj("head object", head(OBJ)),
        c("get missing key", get(OBJ)),
        c("head missing key", head(OBJ)),
        c("put empty object", put(OBJ, "")),
        c("get empty object", get(OBJ)).setup(put(OBJ, "")),
        c("head empty object", head(OBJ)).setup(put(OBJ, "")),
        c("overwrite then get", get(OBJ)).setup(put(OBJ, "first")).setup(put(OBJ, "second, longer")),
        c("user metadata", head(OBJ)).setup(put(OBJ, DATA).h("x-amz-meta-color", "blue").h("X-Amz-Meta-CamelCase", "Mixed Value")),
        c("user metadata on get", get(OBJ)).setup(put(OBJ, DATA).h("x-amz-meta-a", "1").h("x-amz-meta-b", "two words")),
        c("content-type stored", head(OBJ)).setup(put(OBJ, DATA).h("Content-Type", "text/x-custom; charset=utf-8")),
        c("cache-control stored", head(OBJ)).setup(put(OBJ, DATA).h("Cache-Control", "max-age=60, public")),
        c("content-disposition stored", head(OBJ)).setup(put(OBJ, DATA).h("Content-Disposition", "attachment; filename=\"a b.txt\"")),
        c("content-language stored", head(OBJ)).setup(put(OBJ, DATA).h("Content-Language", "de-CH")),
        c("expires stored", head(OBJ)).setup(put(OBJ, DATA).h("Expires", "Wed, 21 Oct 2037 07:28:00 GMT")),
        c("content-encoding gzip", head(OBJ)).setup(put(OBJ, DATA).h("Content-Encoding", "gzip")),
        c("content-encoding list on head", head(OBJ)).setup(put(OBJ, DATA).h("Content-Encoding", "deflate, gzip")),
        c("content-encoding list on get", get(OBJ)).setup(put(OBJ, DATA).h("Content-Encoding", "deflate, gzip")),
        c("website redirect stored", head(OBJ)).setup(put(OBJ, DATA).h("x-amz-website-redirect-location", "/elsewhere")),
        on_obj("response-content-type override", get(OBJ).q("response-content-type", "text/plain")),
        on_obj("response-cache-control override", get(OBJ).q("response-cache-control", "no-cache")),
        on_obj("response-content-disposition override", get(OBJ).q("response-content-disposition", "inline")),
        on_obj("delete object", del(OBJ)),
        c("delete missing object", del(OBJ)),
        c("get after delete", get(OBJ)).setup(put(OBJ, DATA)).setup(del(OBJ)),
        c("put with correct content-md5", put(OBJ, DATA).h("Content-MD5", "J1n1ar7PpXUGWx+WKOMGvA==")),
        c("put with wrong content-md5", put(OBJ, DATA).h("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg==")),
        c("put with malformed content-md5", put(OBJ, DATA).h("Content-MD5", "not-base64!"))
            .except(Backend::Moto, "moto stores a body whose Content-MD5 is not an MD5; S3 answers InvalidDigest", 400, "InvalidDigest")
            .except(Backend::S3sFs, "s3s-fs answers InvalidArgument to a Content-MD5 that is not an MD5; S3 answers InvalidDigest", 400, "InvalidDigest"),
        c("put with storage class standard", put(OBJ, DATA).h("x-amz-storage-class", "STANDARD")),
        c("key of 1024 bytes", put(&long_key(1024), DATA)),
        c("key of 1025 bytes", put(&long_key(1025), DATA))
            .except(Backend::Moto, "moto stores keys longer than S3's 1024-byte limit", 400, "KeyTooLongError"),
        on_obj("get part 1 of a simple object", get(OBJ).q("partNumber", "1")).status_only(),
    ];
    for (name, key) in odd_keys {
        v.push(c(&format!("put {name}"), put(key, DATA)));
        v.push(c(&format!("get {name}"), get(key)).setup(put(key, DATA)));
    }
    v
}

/// Why s3s-fs's answer to a `Range` that S3 ignores is not the one to match.
const S3S_REFUSES_RANGE: &str = "s3s-fs answers 400 to a Range header that S3 ignores, serving the whole object";

fn ranges() -> Vec<Case> {
    let ten = "0123456789";
    let r = |name: &str, range: &str| c(name, get(OBJ).h("Range", range)).setup(put(OBJ, ten));
    vec![
        r("range first bytes", "bytes=0-4"),
        r("range open ended", "bytes=3-"),
        r("range suffix", "bytes=-3"),
        r("range single byte", "bytes=0-0"),
        r("range suffix longer than object", "bytes=-100"),
        r("range end beyond size", "bytes=5-100"),
        r("range start beyond size", "bytes=100-200"),
        r("range start at size", "bytes=10-"),
        r("range malformed is ignored", "bytes=abc").except_having(Backend::S3sFs, S3S_REFUSES_RANGE, ten),
        r("range other unit is ignored", "items=0-1")
            .except_having(Backend::S3sFs, S3S_REFUSES_RANGE, ten)
            .except_having(Backend::Moto, "moto serves a range of any unit as bytes; S3 ignores units other than bytes", ten),
        r("range reversed is ignored", "bytes=5-2").except_having(Backend::S3sFs, S3S_REFUSES_RANGE, ten),
        r("range of several ranges is ignored", "bytes=0-1,3-4").except_having(Backend::S3sFs, S3S_REFUSES_RANGE, ten),
        c("range on head", head(OBJ).h("Range", "bytes=0-1")).setup(put(OBJ, ten)),
        c("range on empty object", get(OBJ).h("Range", "bytes=0-0")).setup(put(OBJ, "")),
        // s3s-fs drops the connection on a suffix range of an empty object.
        c("suffix range on empty object", get(OBJ).h("Range", "bytes=-1")).setup(put(OBJ, "")).moto(),
        c("range with if-match", get(OBJ).h("Range", "bytes=1-2").h("If-Match", "{etag1}")).setup(put(OBJ, ten)),
    ]
}

/// Why s3s-fs's answer to a conditional read is not the one to match.
const S3S_IGNORES_CONDITIONS: &str = "s3s-fs ignores the conditions of a GET or HEAD and serves the object";

fn conditionals() -> Vec<Case> {
    let future = http_date(86_400);
    let past = "Sat, 01 Jan 2000 00:00:00 GMT";
    let g = |name: &str, h: &str, v: &str| on_obj(name, get(OBJ).h(h, v));
    let hd = |name: &str, h: &str, v: &str| on_obj(name, head(OBJ).h(h, v));
    vec![
        g("get if-match matching", "If-Match", "{etag1}"),
        g("get if-match other", "If-Match", "\"0123456789abcdef0123456789abcdef\"").except(Backend::S3sFs, S3S_IGNORES_CONDITIONS, 412, "PreconditionFailed"),
        g("get if-match star", "If-Match", "*"),
        g("get if-none-match matching", "If-None-Match", "{etag1}").except(Backend::S3sFs, S3S_IGNORES_CONDITIONS, 304, ""),
        g("get if-none-match other", "If-None-Match", "\"0123456789abcdef0123456789abcdef\""),
        g("get if-none-match star", "If-None-Match", "*")
            .except(Backend::S3sFs, S3S_IGNORES_CONDITIONS, 304, "")
            .except(Backend::Moto, "moto serves a read with If-None-Match: * of an object that exists; S3 answers 304", 304, ""),
        g("get if-modified-since future", "If-Modified-Since", &future).except(Backend::S3sFs, S3S_IGNORES_CONDITIONS, 304, ""),
        g("get if-modified-since past", "If-Modified-Since", past),
        g("get if-unmodified-since past", "If-Unmodified-Since", past).except(Backend::S3sFs, S3S_IGNORES_CONDITIONS, 412, "PreconditionFailed"),
        g("get if-unmodified-since future", "If-Unmodified-Since", &future),
        on_obj("get if-match and if-unmodified-since past", get(OBJ).h("If-Match", "{etag1}").h("If-Unmodified-Since", past)),
        hd("head if-match other", "If-Match", "\"0123456789abcdef0123456789abcdef\"").except(Backend::S3sFs, S3S_IGNORES_CONDITIONS, 412, ""),
        hd("head if-none-match matching", "If-None-Match", "{etag1}").except(Backend::S3sFs, S3S_IGNORES_CONDITIONS, 304, ""),
        hd("head if-modified-since future", "If-Modified-Since", &future).except(Backend::S3sFs, S3S_IGNORES_CONDITIONS, 304, ""),
        hd("head if-unmodified-since past", "If-Unmodified-Since", past).except(Backend::S3sFs, S3S_IGNORES_CONDITIONS, 412, ""),
        on_obj("put if-none-match star on existing", put(OBJ, "again").h("If-None-Match", "*")).moto(),
        c("put if-none-match star on new", put(OBJ, DATA).h("If-None-Match", "*")).moto(),
        on_obj("put if-match matching", put(OBJ, "again").h("If-Match", "{etag1}")).moto(),
        on_obj("put if-match other", put(OBJ, "again").h("If-Match", "\"0123456789abcdef0123456789abcdef\"")).moto(),
        on_obj("delete conditional if-match other", del(OBJ).h("If-Match", "\"0123456789abcdef0123456789abcdef\"")).moto(),
        on_obj("delete conditional if-match matching", del(OBJ).h("If-Match", "{etag1}")).moto(),
        on_obj("delete conditional size other", del(OBJ).h("x-amz-if-match-size", "1")).moto(),
        on_obj("delete conditional last-modified past", del(OBJ).h("x-amz-if-match-last-modified-time", past)).moto(),
    ]
}

fn copy_to(dst: &str, src: &str) -> Req {
    Req::new("PUT", dst).h("x-amz-copy-source", &format!("/{{bucket}}/{src}"))
}

fn copies() -> Vec<Case> {
    let past = "Sat, 01 Jan 2000 00:00:00 GMT";
    let future = http_date(86_400);
    let mut v = vec![];
    for (side, dst) in [("same shard", "{k}/{near}/copy"), ("across shards", "{k}/{far}/copy")] {
        let cp = |name: &str, req: Req| on_obj(&format!("copy {side}: {name}"), req);
        // moto ignores x-amz-copy-source-if-*; within one shard the proxy relays moto's own copy,
        // across shards it evaluates the conditions itself (AWS: 412).
        let cond = |name: &str, req: Req| {
            let case = cp(name, req);
            if side == "across shards" && name != "source if-none-match matching" {
                case.except(Backend::Moto, "moto ignores x-amz-copy-source-if-* conditions", 412, "PreconditionFailed")
            } else {
                case
            }
        };
        v.extend([
            cp("plain", copy_to(dst, OBJ)).status_only(),
            on_obj(&format!("copy {side}: read back"), get(dst)).setup(copy_to(dst, OBJ)),
            c(&format!("copy {side}: metadata copied"), head(dst))
                .setup(put(OBJ, DATA).h("x-amz-meta-m", "v").h("Content-Type", "text/x-src").h("Cache-Control", "no-store"))
                .setup(copy_to(dst, OBJ)),
            c(&format!("copy {side}: metadata replaced"), head(dst))
                .setup(put(OBJ, DATA).h("x-amz-meta-m", "v").h("Content-Type", "text/x-src"))
                .setup(copy_to(dst, OBJ).h("x-amz-metadata-directive", "REPLACE").h("x-amz-meta-n", "w").h("Content-Type", "text/x-dst")),
            cp("unknown metadata directive", copy_to(dst, OBJ).h("x-amz-metadata-directive", "MERGE"))
                .except(Backend::Moto, "moto accepts an unknown metadata directive", 400, "InvalidArgument")
                .except(Backend::S3sFs, "s3s-fs accepts an unknown metadata directive", 400, "InvalidArgument"),
            cp("unknown tagging directive", copy_to(dst, OBJ).h("x-amz-tagging-directive", "MERGE"))
                .except(Backend::Moto, "moto accepts an unknown tagging directive", 400, "InvalidArgument")
                .except(Backend::S3sFs, "s3s-fs accepts an unknown tagging directive", 400, "InvalidArgument"),
            c(&format!("copy {side}: missing source"), copy_to(dst, OBJ)),
            cond("source if-match other", copy_to(dst, OBJ).h("x-amz-copy-source-if-match", "\"0123456789abcdef0123456789abcdef\"")),
            cp("source if-match matching", copy_to(dst, OBJ).h("x-amz-copy-source-if-match", "{etag1}")).status_only(),
            cond("source if-none-match matching", copy_to(dst, OBJ).h("x-amz-copy-source-if-none-match", "{etag1}")),
            cond("source if-modified-since future", copy_to(dst, OBJ).h("x-amz-copy-source-if-modified-since", &future)),
            cond("source if-unmodified-since past", copy_to(dst, OBJ).h("x-amz-copy-source-if-unmodified-since", past)),
            c(&format!("copy {side}: tags copied"), get(dst).q("tagging", ""))
                .setup(put(OBJ, DATA).h("x-amz-tagging", "a=1&b=two"))
                .setup(copy_to(dst, OBJ))
                .moto(),
            c(&format!("copy {side}: tags replaced"), get(dst).q("tagging", ""))
                .setup(put(OBJ, DATA).h("x-amz-tagging", "a=1"))
                .setup(copy_to(dst, OBJ).h("x-amz-tagging-directive", "REPLACE").h("x-amz-tagging", "z=26"))
                .moto(),
            c(&format!("copy {side}: unicode source key"), get(dst))
                .setup(put("{k}/b/ü €", DATA))
                .setup(Req::new("PUT", dst).h("x-amz-copy-source", "/{bucket}/{k}/b/%C3%BC%20%E2%82%AC")),
        ]);
        let part = |name: &str, range: Option<&str>| {
            let mut r = Req::new("PUT", "{k}/b/mp").q("partNumber", "1").q("uploadId", "{upload}").h("x-amz-copy-source", &format!("/{{bucket}}/{}", dst.replace("copy", "src")));
            if let Some(range) = range {
                r = r.h("x-amz-copy-source-range", range);
            }
            c(&format!("copy part range {side}: {name}"), r)
                .setup(put(&dst.replace("copy", "src"), "0123456789"))
                .setup(post("{k}/b/mp").q("uploads", ""))
        };
        v.extend([
            part("whole source", None).ignore("etag").status_only(),
            part("first bytes", Some("bytes=0-4")).status_only(),
            part("to the last byte", Some("bytes=5-9")).status_only(),
            part("beyond the size", Some("bytes=5-10"))
                .except(Backend::Moto, "moto copies the shorter range; S3 refuses a range beyond the source", 400, "InvalidArgument")
                .moto(),
            part("starting beyond the size", Some("bytes=20-30"))
                .except(Backend::Moto, "moto copies an empty range; S3 refuses a range beyond the source", 400, "InvalidArgument")
                .moto(),
            part("malformed", Some("bytes=x-y"))
                .except(Backend::Moto, "moto copies the whole source for a malformed range; S3 refuses it", 400, "InvalidArgument")
                .moto(),
            part("reversed", Some("bytes=5-2"))
                .except(Backend::Moto, "moto copies nothing; S3 refuses a reversed range", 400, "InvalidArgument")
                .moto(),
            part("open ended", Some("bytes=2-"))
                .except(Backend::Moto, "moto accepts an open range; S3 requires bytes=first-last", 400, "InvalidArgument")
                .moto(),
        ]);
    }
    v.extend([
        on_obj("copy onto itself without replace", copy_to(OBJ, OBJ))
            .except(Backend::S3sFs, "s3s-fs copies an object onto itself unchanged", 400, "InvalidRequest"),
        on_obj("copy onto itself with replace", copy_to(OBJ, OBJ).h("x-amz-metadata-directive", "REPLACE").h("x-amz-meta-x", "y")).status_only(),
        on_obj("copy from another bucket", Req::new("PUT", "{k}/b/copy").h("x-amz-copy-source", "/cf-no-such-bucket/{k}/b/o"))
            .except(Backend::S3sFs, "s3s-fs answers NoSuchKey for a missing source bucket", 404, "NoSuchBucket"),
    ]);
    v
}

fn complete_body(parts: &[(u32, &str)]) -> String {
    let mut s = String::from("<CompleteMultipartUpload>");
    for (n, etag) in parts {
        s.push_str(&format!("<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"));
    }
    s.push_str("</CompleteMultipartUpload>");
    s
}

const MP: &str = "{k}/b/mp";

fn create() -> Req {
    post(MP).q("uploads", "")
}
fn part(n: u32, body: &str) -> Req {
    Req::new("PUT", MP).q("partNumber", &n.to_string()).q("uploadId", "{upload}").body(body)
}
fn big_part(n: u32, seed: u8) -> Req {
    let data: Vec<u8> = (0..5 * 1024 * 1024).map(|i: u32| b'a' + ((i as u8).wrapping_add(seed) % 26)).collect();
    Req::new("PUT", MP).q("partNumber", &n.to_string()).q("uploadId", "{upload}").body(data)
}
fn complete(body: &str) -> Req {
    post(MP).q("uploadId", "{upload}").body(body)
}

fn multipart() -> Vec<Case> {
    vec![
        c("multipart create", create()),
        c("multipart create with content-type", create().h("Content-Type", "application/x-parquet")),
        c("multipart create with checksum algorithm", create().h("x-amz-checksum-algorithm", "CRC32")),
        c("multipart upload part", part(1, DATA)).setup(create()),
        c("multipart upload part twice", part(1, "second")).setup(create()).setup(part(1, "first")),
        // s3s-fs lists parts in directory order, not by part number.
        c("multipart list parts", get(MP).q("uploadId", "{upload}")).setup(create()).setup(part(1, "one")).setup(part(2, "two")).unordered(),
        c("multipart list parts max-parts", get(MP).q("uploadId", "{upload}").q("max-parts", "1"))
            .unordered()
            .setup(create())
            .setup(part(1, "one"))
            .setup(part(2, "two")),
        c("multipart list parts after marker", get(MP).q("uploadId", "{upload}").q("part-number-marker", "1"))
            // s3s-fs ignores part-number-marker, and the proxy relays ListParts as it comes.
            .moto()
            .setup(create())
            .setup(part(1, "one"))
            .setup(part(2, "two")),
        c("multipart complete one part", complete(&complete_body(&[(1, "{etag2}")]))).setup(create()).setup(part(1, DATA)),
        c("multipart complete two parts", complete(&complete_body(&[(1, "{etag2}"), (2, "{etag3}")])))
            .setup(create())
            .setup(big_part(1, 0))
            .setup(part(2, "tail")),
        c("multipart complete then get", get(MP))
            .setup(create())
            .setup(big_part(1, 3))
            .setup(part(2, "tail"))
            .setup(complete(&complete_body(&[(1, "{etag2}"), (2, "{etag3}")]))),
        c("multipart complete then head", head(MP))
            .setup(create())
            .setup(big_part(1, 4))
            .setup(part(2, "tail"))
            .setup(complete(&complete_body(&[(1, "{etag2}"), (2, "{etag3}")]))),
        c("multipart get part number", get(MP).q("partNumber", "2"))
            .setup(create())
            .setup(big_part(1, 5))
            .setup(part(2, "tail"))
            .setup(complete(&complete_body(&[(1, "{etag2}"), (2, "{etag3}")])))
            .ignore("content-length")
            .ignore("content-range"),
        c("multipart complete resent part", get(MP))
            .setup(create())
            .setup(part(1, "first"))
            .setup(part(1, "second"))
            .setup(complete(&complete_body(&[(1, "{etag3}")]))),
        c("multipart complete with a small first part", complete(&complete_body(&[(1, "{etag2}"), (2, "{etag3}")])))
            .setup(create())
            .setup(part(1, "small"))
            .setup(part(2, "tail")),
        c("multipart complete with wrong etag", complete(&complete_body(&[(1, "\"0123456789abcdef0123456789abcdef\"")])))
            .setup(create())
            .setup(part(1, DATA)),
        c("multipart complete with a missing part", complete(&complete_body(&[(1, "{etag2}"), (2, "{etag2}")])))
            .setup(create())
            .setup(big_part(1, 6)),
        c("multipart complete out of order", complete(&complete_body(&[(2, "{etag3}"), (1, "{etag2}")])))
            .setup(create())
            .setup(big_part(1, 7))
            .setup(part(2, "tail"))
            .except(Backend::Moto, "moto checks part sizes before the order (EntityTooSmall)", 400, "InvalidPartOrder")
            .except(Backend::S3sFs, "s3s-fs answers InvalidRequest for parts out of order", 400, "InvalidPartOrder"),
        c("multipart complete malformed xml", complete("<CompleteMultipartUpload><Part>"))
            .setup(create())
            .except(Backend::Moto, "moto fails with a 500 on malformed XML", 400, "MalformedXML"),
        c("multipart complete without parts", complete("<CompleteMultipartUpload></CompleteMultipartUpload>"))
            .setup(create())
            .except(Backend::S3sFs, "s3s-fs answers InvalidPart for an empty part list", 400, "MalformedXML"),
        c("multipart complete unknown upload", post(MP).q("uploadId", "no-such-upload").body(complete_body(&[(1, "\"0123456789abcdef0123456789abcdef\"")])))
            .backend_fault(Backend::Moto, "moto answers an unknown upload id with an HTML 500 page"),
        c("multipart complete if-none-match on existing", complete(&complete_body(&[(1, "{etag3}")])).h("If-None-Match", "*"))
            .setup(put(MP, "exists"))
            .setup(create())
            .setup(part(1, DATA))
            .moto(),
        c("multipart abort", del(MP).q("uploadId", "{upload}")).setup(create()).setup(part(1, DATA)),
        c("multipart part after abort", part(2, DATA))
            .setup(create())
            .setup(del(MP).q("uploadId", "{upload}"))
            .moto()
            .backend_fault(Backend::Moto, "moto answers an aborted upload id with an HTML 500 page"),
        c("multipart list parts after abort", get(MP).q("uploadId", "{upload}")).setup(create()).setup(del(MP).q("uploadId", "{upload}")).moto(),
        c("multipart abort unknown upload", del(MP).q("uploadId", "no-such-upload")).moto(),
        c("multipart part of unknown upload", Req::new("PUT", MP).q("partNumber", "1").q("uploadId", "no-such-upload").body(DATA))
            .moto()
            .backend_fault(Backend::Moto, "moto answers an unknown upload id with an HTML 500 page"),
        c("multipart part number 0", part(0, DATA))
            .setup(create())
            .moto()
            .except(Backend::Moto, "moto answers part number 0 with 404", 400, "InvalidArgument"),
        c("multipart part number 10001", part(10001, DATA)).setup(create()).moto(),
        c("multipart list uploads", get("").q("uploads", "").q("prefix", "{k}/"))
            .setup(create())
            .setup(post("{k}/{far}/mp").q("uploads", ""))
            .moto(),
        c("multipart list uploads with delimiter", get("").q("uploads", "").q("prefix", "{k}/").q("delimiter", "/"))
            .setup(create())
            .setup(post("{k}/{far}/mp").q("uploads", ""))
            .moto()
            .except_lacking(Backend::Moto, "moto ignores the delimiter of ListMultipartUploads", "<Upload>"),
    ]
}

fn checksums() -> Vec<Case> {
    let mut v = vec![];
    for alg in ChecksumAlgorithm::ALL {
        let name = alg.name();
        let value = checksum_of(alg, DATA.as_bytes());
        v.push(c(&format!("checksum {name} put"), put(OBJ, DATA).h(alg.header_name(), &value)).moto());
        v.push(
            c(&format!("checksum {name} put wrong value"), put(OBJ, DATA).h(alg.header_name(), &checksum_of(alg, b"other")))
                .moto(),
        );
        v.push(
            c(&format!("checksum mode {name} head"), head(OBJ).h("x-amz-checksum-mode", "ENABLED"))
                .setup(put(OBJ, DATA).h(alg.header_name(), &value).h("x-amz-sdk-checksum-algorithm", name))
                .moto(),
        );
    }
    let crc = ChecksumAlgorithm::Crc32;
    v.extend([
        c("checksum mode get", get(OBJ).h("x-amz-checksum-mode", "ENABLED"))
            .setup(put(OBJ, DATA).h("x-amz-checksum-crc32", &checksum_of(crc, DATA.as_bytes())).h("x-amz-sdk-checksum-algorithm", "CRC32"))
            .moto(),
        c("checksum mode after multipart", head(MP).h("x-amz-checksum-mode", "ENABLED"))
            .setup(create().h("x-amz-checksum-algorithm", "CRC32"))
            .setup(part(1, DATA).h("x-amz-checksum-crc32", &checksum_of(crc, DATA.as_bytes())))
            .setup(complete(&format!(
                "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{{etag2}}</ETag><ChecksumCRC32>{}</ChecksumCRC32></Part></CompleteMultipartUpload>",
                checksum_of(crc, DATA.as_bytes())
            )))
            .moto(),
        c("checksum without mode on head", head(OBJ)).setup(put(OBJ, DATA).h("x-amz-checksum-crc32", &checksum_of(crc, DATA.as_bytes()))).moto(),
        c("checksum sdk algorithm header", put(OBJ, DATA).h("x-amz-sdk-checksum-algorithm", "CRC32").h("x-amz-checksum-crc32", &checksum_of(crc, DATA.as_bytes()))).moto(),
        c("aws-chunked signed body", put(OBJ, "").with_body(Body::Chunked { data: DATA.repeat(5000).into_bytes(), unsigned: false, trailer: None })),
        // s3s-fs stores `aws-chunked` as the object's Content-Encoding (S3 drops it).
        c("aws-chunked signed body read back", get(OBJ)).ignore("content-encoding").setup(put(OBJ, "").with_body(Body::Chunked { data: DATA.repeat(5000).into_bytes(), unsigned: false, trailer: None })),
        c("aws-chunked unsigned trailer crc32", put(OBJ, "").with_body(Body::Chunked { data: DATA.repeat(100).into_bytes(), unsigned: true, trailer: Some((crc, false)) }))
            .moto(),
        // The proxy verifies the trailer and sends the backend the decoded body with the checksum
        // as a header, so the backend stores and echoes it (bodies up to 1 MiB; a streamed one
        // goes on without it).
        c("aws-chunked signed trailer crc32", put(OBJ, "").with_body(Body::Chunked { data: DATA.repeat(100).into_bytes(), unsigned: false, trailer: Some((crc, false)) })),
        c("aws-chunked trailer read back with checksum mode", head(OBJ).h("x-amz-checksum-mode", "ENABLED"))
            .setup(put(OBJ, "").with_body(Body::Chunked { data: DATA.repeat(100).into_bytes(), unsigned: true, trailer: Some((crc, false)) }))
            .moto(),
        c("aws-chunked wrong trailer", put(OBJ, "").with_body(Body::Chunked { data: DATA.repeat(100).into_bytes(), unsigned: true, trailer: Some((crc, true)) }))
            .moto()
            .except(Backend::Moto, "moto does not verify trailing checksums", 400, "BadDigest"),
        c("multipart checksum part", part(1, DATA).h("x-amz-checksum-crc32", &checksum_of(crc, DATA.as_bytes())))
            .setup(create().h("x-amz-checksum-algorithm", "CRC32"))
            .moto(),
        c("multipart checksum list parts", get(MP).q("uploadId", "{upload}"))
            .setup(create().h("x-amz-checksum-algorithm", "CRC32"))
            .setup(part(1, DATA).h("x-amz-checksum-crc32", &checksum_of(crc, DATA.as_bytes())))
            .moto(),
    ]);
    v
}

fn tag_body(tags: &[(&str, &str)]) -> String {
    let mut s = String::from("<Tagging><TagSet>");
    for (k, v) in tags {
        s.push_str(&format!("<Tag><Key>{k}</Key><Value>{v}</Value></Tag>"));
    }
    s.push_str("</TagSet></Tagging>");
    s
}

fn put_tags(tags: &[(&str, &str)]) -> Req {
    Req::new("PUT", OBJ).q("tagging", "").body(tag_body(tags))
}

fn tagging() -> Vec<Case> {
    let eleven: Vec<(String, String)> = (0..11).map(|i| (format!("k{i}"), "v".to_string())).collect();
    let eleven: Vec<(&str, &str)> = eleven.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    vec![
        on_obj("tagging put", put_tags(&[("a", "1"), ("b", "two words")])),
        on_obj("tagging get", get(OBJ).q("tagging", "")).setup(put_tags(&[("a", "1"), ("b", "two words")])),
        c("tagging from header", get(OBJ).q("tagging", "")).setup(put(OBJ, DATA).h("x-amz-tagging", "x=1&y=%C3%BC")),
        c("tagging count on head", head(OBJ)).setup(put(OBJ, DATA).h("x-amz-tagging", "x=1&y=2")),
        on_obj("tagging delete", del(OBJ).q("tagging", "")).setup(put_tags(&[("a", "1")])),
        on_obj("tagging get after delete", get(OBJ).q("tagging", "")).setup(put_tags(&[("a", "1")])).setup(del(OBJ).q("tagging", "")),
        c("tagging get missing key", get(OBJ).q("tagging", "")),
        on_obj("tagging put malformed", Req::new("PUT", OBJ).q("tagging", "").body("<Tagging><TagSet>"))
            .except(Backend::Moto, "moto fails with a 500 on malformed XML", 400, "MalformedXML"),
        on_obj("tagging put too many", put_tags(&eleven)),
        on_obj("tagging put unicode", put_tags(&[("schlüssel", "wert €")])),
    ]
    .into_iter()
    .map(Case::moto)
    .collect()
}

fn delete_body(keys: &[impl AsRef<str>], quiet: bool) -> String {
    let mut s = String::from("<Delete>");
    if quiet {
        s.push_str("<Quiet>true</Quiet>");
    }
    for k in keys {
        s.push_str(&format!("<Object><Key>{}</Key></Object>", k.as_ref()));
    }
    s.push_str("</Delete>");
    s
}

fn batch(body: &str) -> Req {
    post("").q("delete", "").body(body).checksum(ChecksumAlgorithm::Crc32)
}

fn batch_delete() -> Vec<Case> {
    let three = ["{k}/b/o", "{k}/{far}/o", "{k}/{near}/o"];
    let with_three = |name: &str, req: Req| {
        let mut case = c(name, req);
        for k in three {
            case = case.setup(put(k, DATA));
        }
        case
    };
    let thousand: Vec<String> = (0..1000).map(|i| format!("{{k}}/x{i}/o")).collect();
    let thousand_one: Vec<String> = (0..1001).map(|i| format!("{{k}}/x{i}/o")).collect();
    vec![
        with_three("batch delete across shards", batch(&delete_body(&three, false))),
        with_three("batch delete quiet", batch(&delete_body(&three, true)))
            .except_lacking(Backend::Moto, "moto lists deleted keys in quiet mode", "<Deleted>")
            .except_lacking(Backend::S3sFs, "s3s-fs lists deleted keys in quiet mode", "<Deleted>"),
        c("batch delete missing keys", batch(&delete_body(&three, false))),
        c("batch delete mixed", batch(&delete_body(&["{k}/b/o", "{k}/b/missing", "{k}/{far}/missing"], false))).setup(put(OBJ, DATA)),
        with_three("batch delete then list", get("").q("list-type", "2").q("prefix", "{k}/")).setup(batch(&delete_body(&three[..2], false))),
        c("batch delete 1000 keys", batch(&delete_body(&thousand, false))),
        c("batch delete 1001 keys", batch(&delete_body(&thousand_one, true)))
            .except(Backend::Moto, "moto deletes more than S3's 1000 keys per request", 400, "MalformedXML")
            .except(Backend::S3sFs, "s3s-fs deletes more than S3's 1000 keys per request", 400, "MalformedXML"),
        c("batch delete empty", batch("<Delete></Delete>")).except(Backend::Moto, "moto accepts an empty Delete; S3 requires 1 to 1000 objects", 400, "MalformedXML"),
        c("batch delete malformed", batch("<Delete><Object>")).except(Backend::Moto, "moto fails with a 500 on malformed XML", 400, "MalformedXML"),
        c("batch delete without integrity header", post("").q("delete", "").body(delete_body(&three, false)))
            .except(Backend::Moto, "moto does not require Content-MD5 or a checksum; S3 does", 400, "InvalidRequest")
            .except(Backend::S3sFs, "s3s-fs does not require Content-MD5 or a checksum; S3 does", 400, "InvalidRequest"),
        c("batch delete with wrong checksum", post("").q("delete", "").body(delete_body(&three, false)).h("x-amz-checksum-crc32", "AAAAAA=="))
            .except(Backend::Moto, "moto does not check the body's checksum; S3 does", 400, "BadDigest")
            .except(Backend::S3sFs, "s3s-fs does not check the body's checksum; S3 does", 400, "BadDigest"),
        c("batch delete xml special keys", batch(&delete_body(&["{k}/b/a&amp;b&lt;c&gt;", "{k}/b/ü €"], false))).setup(put("{k}/b/a&b<c>", DATA)).setup(put("{k}/b/ü €", DATA)),
        on_obj("batch delete conditional etag other", batch("<Delete><Object><Key>{k}/b/o</Key><ETag>\"0123456789abcdef0123456789abcdef\"</ETag></Object></Delete>")).moto(),
        on_obj("batch delete conditional etag matching", batch("<Delete><Object><Key>{k}/b/o</Key><ETag>{etag1}</ETag></Object></Delete>")).moto(),
        on_obj("batch delete conditional size other", batch("<Delete><Object><Key>{k}/b/o</Key><Size>1</Size></Object></Delete>")).moto(),
        on_obj("batch delete conditional last-modified", batch("<Delete><Object><Key>{k}/b/o</Key><LastModifiedTime>2000-01-01T00:00:00.000Z</LastModifiedTime></Object></Delete>")).moto(),
    ]
}

fn listings() -> Vec<Case> {
    let keys = ["{k}/a/1", "{k}/b/2", "{k}/b/3", "{k}/c/4", "{k}/d", "{k}/e/f/5", "{k}/sp ace/6", "{k}/ü/7", "{k}/a+b/8", "{k}/x%y/9", "{k}/t&<>/10"];
    let l = |name: &str, req: Req| {
        let mut case = c(name, req);
        for k in keys {
            case = case.setup(put(k, "x"));
        }
        case
    };
    let v2 = || get("").q("list-type", "2").q("prefix", "{k}/");
    let v1 = || get("").q("prefix", "{k}/");
    vec![
        l("list v2 prefix", v2()),
        l("list v2 delimiter", v2().q("delimiter", "/")),
        l("list v2 max-keys 2", v2().q("max-keys", "2")),
        l("list v2 second page", v2().q("max-keys", "2").q("continuation-token", "{token}")).setup(v2().q("max-keys", "2")),
        l("list v2 delimiter pages", v2().q("delimiter", "/").q("max-keys", "3")),
        l("list v2 start-after", v2().q("start-after", "{k}/b/2")),
        l("list v2 start-after beyond", v2().q("start-after", "{k}/zzz")),
        l("list v2 encoding url", v2().q("encoding-type", "url")).except_having(Backend::S3sFs, "s3s-fs does not URL-encode keys for encoding-type=url", "a%2Bb"),
        l("list v2 encoding url with delimiter", v2().q("encoding-type", "url").q("delimiter", "/")).except_having(Backend::S3sFs, "s3s-fs does not URL-encode keys for encoding-type=url", "a%2Bb"),
        l("list v2 fetch-owner", v2().q("fetch-owner", "true")),
        l("list v2 max-keys 0", v2().q("max-keys", "0")),
        l("list v2 negative max-keys", v2().q("max-keys", "-1"))
            .except(Backend::Moto, "moto accepts a negative max-keys", 400, "InvalidArgument")
            .except(Backend::S3sFs, "s3s-fs accepts a negative max-keys", 400, "InvalidArgument"),
        l("list v2 bad continuation token", v2().q("continuation-token", "not-a-token"))
            .except(Backend::Moto, "moto fails with a 500 on a token it did not issue", 400, "InvalidArgument")
            .except(Backend::S3sFs, "s3s-fs accepts any continuation token", 400, "InvalidArgument"),
        l("list v2 other delimiter", v2().q("delimiter", "b")),
        l("list v2 empty delimiter", v2().q("delimiter", ""))
            .except_having(Backend::S3sFs, "s3s-fs drops the connection on an empty delimiter (S3: no delimiter)", "<Key>"),
        l("list v2 prefix without delimiter end", get("").q("list-type", "2").q("prefix", "{k}/b").q("delimiter", "/")),
        l("list v2 prefix matching nothing", get("").q("list-type", "2").q("prefix", "{k}/nothing/")),
        l("list v2 unicode prefix", get("").q("list-type", "2").q("prefix", "{k}/ü")),
        l("list v1 prefix", v1()),
        l("list v1 delimiter", v1().q("delimiter", "/")),
        l("list v1 marker", v1().q("marker", "{k}/b/2")),
        l("list v1 max-keys 3", v1().q("max-keys", "3")).except_lacking(Backend::S3sFs, "s3s-fs sends NextMarker without a delimiter (S3 only with one)", "<NextMarker>")
            .except_lacking(Backend::Moto, "moto sends NextMarker without a delimiter (S3 only with one)", "<NextMarker>"),
        l("list v1 next page", v1().q("max-keys", "3").q("marker", "{k}/b/3")).except_lacking(Backend::S3sFs, "s3s-fs sends NextMarker without a delimiter (S3 only with one)", "<NextMarker>")
            .except_lacking(Backend::Moto, "moto sends NextMarker without a delimiter (S3 only with one)", "<NextMarker>"),
        l("list v1 max-keys with delimiter", v1().q("max-keys", "2").q("delimiter", "/"))
            .except_having(Backend::Moto, "moto ignores max-keys for V1 listings with a delimiter", "<IsTruncated>true</IsTruncated>"),
        l("list v1 encoding url", v1().q("encoding-type", "url")).except_having(Backend::S3sFs, "s3s-fs does not URL-encode keys for encoding-type=url", "a%2Bb"),
        l("list bad encoding type", v2().q("encoding-type", "base64"))
            .except(Backend::Moto, "moto accepts an unknown encoding-type", 400, "InvalidArgument")
            .except(Backend::S3sFs, "s3s-fs accepts an unknown encoding-type", 400, "InvalidArgument"),
        l("list v2 fetch-owner false with delimiter", v2().q("delimiter", "/").q("fetch-owner", "false")),
    ]
}

fn presigned() -> Vec<Case> {
    let p = |start: i64, expires: &'static str| Auth::Presigned { start, expires, tamper: false };
    vec![
        on_obj("presigned get", get(OBJ).auth(p(0, "300"))),
        c("presigned put", put(OBJ, DATA).auth(p(0, "300"))),
        on_obj("presigned head", head(OBJ).auth(p(0, "300"))),
        on_obj("presigned get longest expiry", get(OBJ).auth(p(0, "604800"))),
        on_obj("presigned get expired", get(OBJ).auth(p(-7200, "60")))
            .except(Backend::Moto, "moto does not verify signatures or expiry", 403, "AccessDenied"),
        on_obj("presigned get expiry too long", get(OBJ).auth(p(0, "604801")))
            .except(Backend::Moto, "moto does not verify presigned parameters", 400, "AuthorizationQueryParametersError")
            .except(Backend::S3sFs, "s3s-fs accepts an expiry beyond 7 days", 400, "AuthorizationQueryParametersError"),
        on_obj("presigned get expiry zero", get(OBJ).auth(p(0, "0")))
            .except(Backend::Moto, "moto does not verify presigned parameters", 400, "AuthorizationQueryParametersError")
            .except(Backend::S3sFs, "s3s-fs treats a zero expiry as expired (403)", 400, "AuthorizationQueryParametersError"),
        on_obj("presigned get expiry not a number", get(OBJ).auth(p(0, "soon")))
            .except(Backend::Moto, "moto does not verify presigned parameters", 400, "AuthorizationQueryParametersError")
            .except(Backend::S3sFs, "s3s-fs answers InvalidRequest", 400, "AuthorizationQueryParametersError"),
        on_obj("presigned get tampered", get(OBJ).auth(Auth::Presigned { start: 0, expires: "300", tamper: true }))
            .except(Backend::Moto, "moto does not verify signatures", 403, "SignatureDoesNotMatch"),
        on_obj("presigned get in the future", get(OBJ).auth(p(3600, "300")))
            .except(Backend::Moto, "moto does not verify signatures or dates", 403, "AccessDenied")
            .except(Backend::S3sFs, "s3s-fs answers RequestTimeTooSkewed for a URL that is not valid yet", 403, "AccessDenied"),
    ]
}

fn signatures() -> Vec<Case> {
    let no_sig = "moto does not verify signatures";
    vec![
        on_obj("sigv4 valid", get(OBJ)),
        on_obj("sigv4 wrong secret", get(OBJ).auth(Auth::WrongSecret)).except(Backend::Moto, no_sig, 403, "SignatureDoesNotMatch"),
        c("sigv4 wrong secret put", put(OBJ, DATA).auth(Auth::WrongSecret)).except(Backend::Moto, no_sig, 403, "SignatureDoesNotMatch"),
        on_obj("sigv4 unknown key", get(OBJ).auth(Auth::UnknownKey))
            .except(Backend::Moto, no_sig, 403, "InvalidAccessKeyId")
            .except(Backend::S3sFs, "s3s-fs answers NotSignedUp", 403, "InvalidAccessKeyId"),
        on_obj("sigv4 clock 20 minutes ahead", get(OBJ).auth(Auth::Skew(1200))).except(Backend::Moto, no_sig, 403, "RequestTimeTooSkewed"),
        on_obj("sigv4 clock 20 minutes behind", get(OBJ).auth(Auth::Skew(-1200))).except(Backend::Moto, no_sig, 403, "RequestTimeTooSkewed"),
        on_obj("sigv4 clock 10 minutes ahead", get(OBJ).auth(Auth::Skew(600))),
        on_obj("sigv4 other region", get(OBJ).auth(Auth::Region("eu-west-1")))
            .except(Backend::Moto, no_sig, 400, "AuthorizationHeaderMalformed")
            .except(Backend::S3sFs, "s3s-fs accepts a signature for any region", 400, "AuthorizationHeaderMalformed"),
        on_obj("sigv4 date header rfc1123", get(OBJ).auth(Auth::DateHeader(DateForm::Rfc1123)))
            .status_only()
            .except_having(Backend::S3sFs, "s3s-fs needs X-Amz-Date and refuses a Date-signed request", DATA),
        on_obj("sigv4 date header numeric zone", get(OBJ).auth(Auth::DateHeader(DateForm::NumericZone)))
            .status_only()
            .except_having(Backend::S3sFs, "s3s-fs needs X-Amz-Date and refuses a Date-signed request", DATA),
        on_obj("sigv4 date header garbage", get(OBJ).auth(Auth::DateHeader(DateForm::Garbage)))
            .except(Backend::Moto, no_sig, 403, "AccessDenied")
            .except(Backend::S3sFs, "s3s-fs answers 400 for a request without a usable date", 403, "AccessDenied"),
        on_obj("sigv4 anonymous get", get(OBJ).auth(Auth::Anonymous)).except(Backend::Moto, "moto serves anonymous reads of a fresh bucket", 403, "AccessDenied"),
        c("sigv4 anonymous put", put(OBJ, DATA).auth(Auth::Anonymous)).except(Backend::Moto, "moto accepts anonymous writes", 403, "AccessDenied"),
        on_obj("sigv4 not sigv4 at all", get(OBJ).auth(Auth::Garbage))
            .except(Backend::Moto, no_sig, 400, "InvalidArgument")
            .except(Backend::S3sFs, "s3s-fs answers InvalidRequest to a scheme that is not AWS's", 400, "InvalidArgument"),
        c("sigv4 payload hash mismatch", put(OBJ, DATA).claim(&"0".repeat(64)))
            .except(Backend::Moto, "moto does not check x-amz-content-sha256", 400, "XAmzContentSHA256Mismatch")
            .except(Backend::S3sFs, "s3s-fs fails with a 500 on a wrong x-amz-content-sha256", 400, "XAmzContentSHA256Mismatch"),
        c("transfer-encoding chunked put", put(OBJ, "").with_body(Body::TransferChunked(DATA.as_bytes().to_vec())))
            .except(Backend::Moto, "moto stores a chunked upload without a length; S3 does not implement it", 501, "NotImplemented")
            .except(Backend::S3sFs, "s3s-fs stores a chunked upload without a length; S3 does not implement it", 501, "NotImplemented"),
    ]
}
