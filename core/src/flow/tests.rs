//! The request flows' policy, branch by branch, against a scripted transport.

use crate::testing::script::{ok, s3_error, Call, Script, Scripted};
use super::{handle, Answer, Request, TransportErrorKind};
use crate::context::Proxy;
use crate::route::{header, RequestParts};
use crate::testing::proxy_with;
use crate::testing::block_on;

const BUCKETS: &str = "shard1,shard2,shard3";

/// The client's view of one request: status, headers, body, and the access-log line.
struct Seen {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    streamed: bool,
    log: serde_json::Value,
}

impl Seen {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn code(&self) -> Option<String> {
        crate::xml::parse_error(&self.body).map(|(c, _)| c)
    }
}

fn vars(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    for (k, v) in [("buckets", BUCKETS), ("endpoint", "http://127.0.0.1:9000"), ("allow_anonymous", "true"), ("secret_access_key", "s"), ("access_key_id", "a")] {
        if !all.iter().any(|(n, _)| n == k) {
            all.push((k.into(), v.into()));
        }
    }
    all
}

fn send<F: Fn(&Call, usize) -> Scripted>(script: &Script<F>, extra: &[(&str, &str)], method: &str, target: &str, headers: &[(&str, &str)]) -> Seen {
    let vars = vars(extra);
    let mut headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    headers.push(("host".into(), "proxy.local".into()));
    let request = Request { parts: RequestParts::new(method, target, headers), https: false, now_unix: 1_700_000_000, request_id: "req-1".into() };
    let (answer, finish) = block_on(handle(script, request, |n| vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())));
    let (status, headers, body, streamed) = match answer {
        Answer::Reply(r) => (r.status, r.headers, r.body, false),
        Answer::Stream { status, headers, response } => (status, headers, response, true),
    };
    let log = finish.done(script, status, Ok(body.len() as u64), 1);
    Seen { status, headers, body, streamed, log: serde_json::from_str(&log).unwrap() }
}

fn proxy(extra: &[(&str, &str)]) -> Proxy {
    let vars = vars(extra);
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    proxy_with(&refs)
}

/// A key of the form `t/b-N/data` whose owner (and, with `previous`, previous owner) is as asked.
fn key_where(p: &Proxy, pred: impl Fn(usize, Option<usize>) -> bool) -> String {
    (0..10_000)
        .map(|i| format!("t/b-{i}/data"))
        .find(|k| {
            let owners = p.owners(k);
            pred(owners[0], owners.get(1).copied())
        })
        .expect("no such key in 10,000 blocks")
}

fn bucket(i: usize) -> String {
    format!("shard{}", i + 1)
}

const RESHARD: &[(&str, &str)] = &[("buckets", "shard1,shard2,shard3,shard4"), ("previous_buckets", "shard1,shard2,shard3")];

#[test]
fn get_goes_to_the_owner_and_a_small_body_leaves_whole() {
    let p = proxy(&[]);
    let key = key_where(&p, |_, _| true);
    let owner = bucket(p.ring.owner_index(&key));
    let script = Script::new(|_, _| ok(b"hello"));
    let seen = send(&script, &[], "GET", &format!("/proxy-bucket/{key}"), &[]);
    assert_eq!((seen.status, seen.text().as_str(), seen.streamed), (200, "hello", false));
    assert_eq!(script.trace(), vec![("GET".to_string(), owner.clone())]);
    assert_eq!(header(&seen.headers, "x-amz-request-id"), Some("req-1"));
    assert_eq!(seen.log["bucket"], owner);
}

#[test]
fn a_read_whose_condition_fails_gets_412_or_304_even_from_a_backend_that_ignores_it() {
    // The backend answers the object whatever the conditions say (as s3s-fs does).
    let object = || Scripted::Answer(200, vec![("etag".into(), "\"abc\"".into()), ("content-length".into(), "5".into())], b"hello".to_vec());
    let script = Script::new(|_, _| object());
    for method in ["GET", "HEAD"] {
        let seen = send(&script, &[], method, "/proxy-bucket/t/b/k", &[("If-Match", "\"other\"")]);
        assert_eq!(seen.status, 412, "{method}");
        if method == "GET" {
            assert_eq!(seen.code().as_deref(), Some("PreconditionFailed"));
        }
        let seen = send(&script, &[], method, "/proxy-bucket/t/b/k", &[("If-None-Match", "\"abc\"")]);
        assert_eq!((seen.status, seen.body.len()), (304, 0), "{method}");
        assert_eq!(header(&seen.headers, "etag"), Some("\"abc\""));
        let seen = send(&script, &[], method, "/proxy-bucket/t/b/k", &[("If-Match", "\"abc\"")]);
        assert_eq!(seen.status, 200, "{method}");
    }
    // A backend's own 304 passes as it is.
    let script = Script::new(|_, _| Scripted::Answer(304, vec![("etag".into(), "\"abc\"".into())], vec![]));
    assert_eq!(send(&script, &[], "GET", "/proxy-bucket/t/b/k", &[("If-None-Match", "\"abc\"")]).status, 304);
}

#[test]
fn a_large_body_streams_and_a_head_answer_has_none() {
    let big = vec![7u8; 200 * 1024];
    let script = Script::new(|_, _| ok(&big));
    let seen = send(&script, &[], "GET", "/proxy-bucket/t/b/k", &[]);
    assert!(seen.streamed && seen.body.len() == big.len());
    let seen = send(&script, &[], "HEAD", "/proxy-bucket/t/b/k", &[]);
    assert!(!seen.streamed && seen.body.is_empty());
    assert_eq!(header(&seen.headers, "content-length"), Some("204800"));
}

#[test]
fn reads_fall_back_to_the_previous_owner_while_resharding() {
    let p = proxy(RESHARD);
    let key = key_where(&p, |_, prev| prev.is_some());
    let (owner, previous) = (bucket(p.owners(&key)[0]), bucket(p.owners(&key)[1]));
    let script = Script::new(|c, _| if c.bucket == previous { ok(b"old") } else { s3_error(404, "NoSuchKey") });
    for method in ["GET", "HEAD"] {
        let seen = send(&script, RESHARD, method, &format!("/proxy-bucket/{key}"), &[]);
        assert_eq!(seen.status, 200, "{method}");
    }
    let tagging = send(&script, RESHARD, "GET", &format!("/proxy-bucket/{key}?tagging"), &[]);
    assert_eq!(tagging.text(), "old");
    assert_eq!(script.trace()[..2], [("GET".into(), owner), ("GET".into(), previous)]);
}

#[test]
fn deletes_while_resharding_remove_both_copies() {
    let p = proxy(RESHARD);
    let key = key_where(&p, |_, prev| prev.is_some());
    let script = Script::new(|c, _| if c.method == "DELETE" { Scripted::Answer(204, vec![], vec![]) } else { ok(b"") });
    let seen = send(&script, RESHARD, "DELETE", &format!("/proxy-bucket/{key}"), &[]);
    assert_eq!(seen.status, 204);
    let owners = p.owners(&key);
    assert_eq!(script.trace(), vec![("DELETE".into(), bucket(owners[0])), ("DELETE".into(), bucket(owners[1]))]);
}

#[test]
fn a_trailing_checksum_of_a_small_body_reaches_the_backend_as_a_header() {
    // S3 stores (and echoes) the checksum an aws-chunked body's trailer carries; the proxy sends
    // the backend the decoded body, so it names the checksum in a header, inside the signature.
    use crate::checksum::{ChecksumAlgorithm, Checksummer};
    let mut crc = Checksummer::new(ChecksumAlgorithm::Crc32);
    crc.update(b"hello");
    let value = crc.finish_base64();
    let framed = crate::chunked::encoder::encode(b"hello", 3, None, &[("x-amz-checksum-crc32", &value)], false);
    let script = Script::new(|_, _| ok(b"")).with_client_body(&[&framed[..]]);
    let length = framed.len().to_string();
    let headers = [
        ("content-length", length.as_str()),
        ("content-encoding", "aws-chunked"),
        ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
        ("x-amz-decoded-content-length", "5"),
        ("x-amz-trailer", "x-amz-checksum-crc32"),
    ];
    let seen = send(&script, &[], "PUT", "/proxy-bucket/t/b/k", &headers);
    assert_eq!(seen.status, 200, "{}", seen.text());
    let calls = script.calls.borrow();
    let call = &calls[0];
    assert_eq!(call.body, b"hello");
    assert_eq!(header(&call.headers, "x-amz-checksum-crc32"), Some(value.as_str()));
    assert_eq!(header(&call.headers, "content-length"), Some("5"));
    assert!(header(&call.headers, "authorization").is_some_and(|a| a.contains("x-amz-checksum-crc32")), "the checksum is signed");
    assert_eq!(header(&call.headers, "content-encoding"), None);
}

#[test]
fn a_trailing_checksum_of_a_streamed_body_reaches_the_backend_in_a_trailer_framed_again() {
    // Too large to hold, the body cannot carry its checksum in a header (it goes out before the
    // data): the backend gets aws-chunked again, in fixed chunks, the verified checksum last.
    use crate::checksum::{ChecksumAlgorithm, Checksummer};
    use crate::chunked::reframe::{framed_length, CHUNK};
    let data = vec![b'x'; crate::request_body::RETRY_BUFFER_LIMIT + 1];
    let mut crc = Checksummer::new(ChecksumAlgorithm::Crc32c);
    crc.update(&data);
    let value = crc.finish_base64();
    let framed = crate::chunked::encoder::encode(&data, 100_000, None, &[("x-amz-checksum-crc32c", &value)], false);
    let pieces: Vec<&[u8]> = framed.chunks(50_000).collect();
    let script = Script::new(|_, _| ok(b"")).with_client_body(&pieces);
    let (length, decoded) = (framed.len().to_string(), data.len().to_string());
    let headers = [
        ("content-length", length.as_str()),
        ("content-encoding", "aws-chunked"),
        ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
        ("x-amz-decoded-content-length", decoded.as_str()),
        ("x-amz-trailer", "x-amz-checksum-crc32c"),
    ];
    let seen = send(&script, &[], "PUT", "/proxy-bucket/t/b/k", &headers);
    assert_eq!(seen.status, 200, "{}", seen.text());
    let calls = script.calls.borrow();
    let call = &calls[0];
    assert_eq!(call.body, crate::chunked::encoder::encode(&data, CHUNK, None, &[("x-amz-checksum-crc32c", &value)], false));
    let expected_length = framed_length(data.len() as u64, ChecksumAlgorithm::Crc32c).to_string();
    assert_eq!(header(&call.headers, "content-length"), Some(expected_length.as_str()));
    assert_eq!(header(&call.headers, "x-amz-content-sha256"), Some("STREAMING-UNSIGNED-PAYLOAD-TRAILER"));
    assert_eq!(header(&call.headers, "x-amz-decoded-content-length"), Some(decoded.as_str()));
    assert_eq!(header(&call.headers, "x-amz-trailer"), Some("x-amz-checksum-crc32c"));
    assert_eq!(header(&call.headers, "content-encoding"), Some("aws-chunked"));
    assert!(header(&call.headers, "authorization").is_some_and(|a| a.contains("x-amz-trailer")), "the framing is signed");
}

#[test]
fn a_write_to_a_missing_bucket_creates_it_and_sends_the_body_again() {
    let script = Script::new(|c, n| match (c.method.as_str(), c.key.is_empty(), n) {
        ("PUT", false, 0) => s3_error(404, "NoSuchBucket"),
        ("PUT", true, _) => ok(b""),
        _ => ok(b""),
    })
    .with_client_body(&[&b"he"[..], &b"llo"[..]]);
    let seen = send(&script, &[], "PUT", "/proxy-bucket/t/b/k", &[("content-length", "5")]);
    assert_eq!(seen.status, 200, "{}", seen.text());
    let calls = script.calls.borrow();
    assert_eq!(calls.len(), 3);
    assert!(calls[1].key.is_empty(), "the bucket is created");
    assert_eq!((calls[0].body.as_slice(), calls[2].body.as_slice()), (&b"hello"[..], &b"hello"[..]));
}

#[test]
fn a_small_body_is_whole_once_its_content_length_has_arrived() {
    // Nothing can follow Content-Length bytes; the piece after them stands for the end of the
    // body, which the proxy does not wait to see (a runtime signals it one wake-up later).
    let script = Script::new(|_, _| ok(b"")).with_client_body(&[&b"hello"[..], &b"never read"[..]]);
    let seen = send(&script, &[], "PUT", "/proxy-bucket/t/b/k", &[("content-length", "5")]);
    assert_eq!(seen.status, 200, "{}", seen.text());
    assert_eq!(script.calls.borrow()[0].body, b"hello");
    assert_eq!(script.client.borrow().len(), 1, "the piece after the body stays unread");
}

#[test]
fn a_bucket_created_meanwhile_by_another_request_is_fine() {
    let script = Script::new(|c, n| match (c.key.is_empty(), n) {
        (false, 0) => s3_error(404, "NoSuchBucket"),
        (true, _) => s3_error(409, "BucketAlreadyOwnedByYou"),
        _ => ok(b""),
    })
    .with_client_body(&[b"x"]);
    assert_eq!(send(&script, &[], "PUT", "/proxy-bucket/t/b/k", &[("content-length", "1")]).status, 200);
}

#[test]
fn a_large_streamed_write_to_a_missing_bucket_gets_slow_down_after_the_bucket_is_made() {
    let piece = vec![1u8; 512 * 1024];
    let script = Script::new(|c, _| if c.key.is_empty() { ok(b"") } else { s3_error(404, "NoSuchBucket") })
        .with_client_body(&[&piece, &piece, &piece]);
    let len = (3 * piece.len()).to_string();
    let seen = send(&script, &[], "PUT", "/proxy-bucket/t/b/k", &[("content-length", &len)]);
    assert_eq!((seen.status, seen.code().as_deref()), (503, Some("SlowDown")));
    assert_eq!(script.calls.borrow().len(), 2, "one write, one CreateBucket, no replay");
}

#[test]
fn reads_and_deletes_in_a_missing_bucket_find_nothing() {
    let script = Script::new(|_, _| s3_error(404, "NoSuchBucket"));
    assert_eq!(send(&script, &[], "GET", "/proxy-bucket/t/b/k", &[]).code().as_deref(), Some("NoSuchKey"));
    assert_eq!(send(&script, &[], "DELETE", "/proxy-bucket/t/b/k", &[]).status, 204);
}

#[test]
fn a_dropped_connection_is_retried_once_when_the_body_can_be_sent_again() {
    let script = Script::new(|_, n| if n == 0 { Scripted::Fail(TransportErrorKind::Closed) } else { ok(b"ok") });
    assert_eq!(send(&script, &[], "GET", "/proxy-bucket/t/b/k", &[]).status, 200);
    assert_eq!(script.calls.borrow().len(), 2);
    let twice = Script::new(|_, _| Scripted::Fail(TransportErrorKind::Closed));
    assert_eq!(send(&twice, &[], "GET", "/proxy-bucket/t/b/k", &[]).status, 503);
    assert_eq!(twice.calls.borrow().len(), 2, "retried once, not more");
}

#[test]
fn a_streamed_body_and_a_timeout_are_never_retried() {
    let piece = vec![1u8; 600 * 1024];
    let script = Script::new(|_, _| Scripted::Fail(TransportErrorKind::Closed)).with_client_body(&[&piece, &piece]);
    let len = (2 * piece.len()).to_string();
    assert_eq!(send(&script, &[], "PUT", "/proxy-bucket/t/b/k", &[("content-length", &len)]).status, 503);
    assert_eq!(script.calls.borrow().len(), 1);
    let slow = Script::new(|_, _| Scripted::Fail(TransportErrorKind::Timeout));
    let seen = send(&slow, &[], "GET", "/proxy-bucket/t/b/k", &[]);
    assert_eq!((seen.status, slow.calls.borrow().len()), (503, 1));
}

#[test]
fn a_backend_failure_names_the_shard_by_position_and_the_bucket_only_in_the_log() {
    let p = proxy(&[]);
    let key = key_where(&p, |o, _| o == 1);
    let script = Script::new(|_, _| Scripted::Fail(TransportErrorKind::Timeout));
    let seen = send(&script, &[], "GET", &format!("/proxy-bucket/{key}"), &[]);
    let text = seen.text();
    assert!(text.contains("shard 2 of 3 did not answer in time"), "{text}");
    assert!(!text.contains("shard2") && !text.contains("10.9.9.9") && !text.contains("9000"), "{text}");
    assert!(seen.log["error"].as_str().unwrap().contains("bucket shard2"));
}

#[test]
fn a_client_body_that_fails_its_check_never_completes_the_write() {
    let script = Script::new(|_, _| ok(b""))
        .with_client_body(&[b"hello"]);
    let wrong = "0000000000000000000000000000000000000000000000000000000000000000";
    let seen = send(&script, &[], "PUT", "/proxy-bucket/t/b/k", &[("content-length", "5"), ("x-amz-content-sha256", wrong)]);
    assert_eq!(seen.code().as_deref(), Some("XAmzContentSHA256Mismatch"));
    assert!(script.calls.borrow().is_empty(), "a small body is checked before it is sent");
}

#[test]
fn a_client_that_stalls_mid_body_gets_request_timeout_and_nothing_is_written() {
    // Held (small) and streamed (large) bodies alike: the core sets the limit from
    // client_idle_timeout, the transport reports the pause, and S3's answer to a stalled upload follows.
    let piece = vec![1u8; 600 * 1024];
    for (pieces, len) in [(vec![&b"hel"[..]], 5), (vec![&piece[..]], 2 * piece.len())] {
        let script = Script::new(|_, _| ok(b"")).with_stalled_client_body(&pieces);
        let seen = send(&script, &[("client_idle_timeout", "2.5")], "PUT", "/proxy-bucket/t/b/k", &[("content-length", &len.to_string())]);
        assert_eq!((seen.status, seen.code().as_deref()), (400, Some("RequestTimeout")), "{len}: {}", seen.text());
        assert_eq!(script.client_idle_ms.get(), Some(2_500));
        assert!(script.calls.borrow().is_empty(), "{len}: no write completes");
    }
}

fn listing(keys: &[&str]) -> Scripted {
    let contents: String = keys.iter().map(|k| format!("<Contents><Key>{k}</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>\"e\"</ETag><Size>1</Size></Contents>")).collect();
    ok(format!("<ListBucketResult><IsTruncated>false</IsTruncated>{contents}</ListBucketResult>").as_bytes())
}

#[test]
fn a_listing_merges_every_shard_and_treats_a_missing_bucket_as_empty() {
    let script = Script::new(|c, _| match c.bucket.as_str() {
        "shard1" => listing(&["a", "d"]),
        "shard2" => listing(&["b"]),
        _ => s3_error(404, "NoSuchBucket"),
    });
    let seen = send(&script, &[], "GET", "/proxy-bucket?list-type=2", &[]);
    let text = seen.text();
    assert_eq!(seen.status, 200);
    let (a, b, d) = (text.find("<Key>a<").unwrap(), text.find("<Key>b<").unwrap(), text.find("<Key>d<").unwrap());
    assert!(a < b && b < d, "{text}");
    assert!(script.calls.borrow().iter().all(|c| c.query.contains("list-type=2")), "backends are asked with V2");
}

#[test]
fn a_listing_fails_whole_and_fast_when_one_shard_fails() {
    // shard3 never answers: only failing fast (dropping it) lets this test finish.
    let script = Script::new(|c, _| match c.bucket.as_str() {
        "shard1" => listing(&["a"]),
        "shard2" => Scripted::Fail(TransportErrorKind::Timeout),
        _ => Scripted::Hang,
    });
    let seen = send(&script, &[], "GET", "/proxy-bucket?list-type=2", &[]);
    assert_eq!((seen.status, seen.code().as_deref()), (503, Some("ServiceUnavailable")));
    assert!(seen.text().contains("shard 2 of 3"));
    let failing = Script::new(|c, _| if c.bucket == "shard2" { s3_error(500, "InternalError") } else { listing(&["a"]) });
    assert_eq!(send(&failing, &[], "GET", "/proxy-bucket", &[]).status, 500);
}

#[test]
fn uploads_listings_fail_whole_too() {
    let script = Script::new(|c, _| match c.bucket.as_str() {
        "shard1" => ok(b"<ListMultipartUploadsResult><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>"),
        _ => Scripted::Fail(TransportErrorKind::Connect),
    });
    assert_eq!(send(&script, &[], "GET", "/proxy-bucket?uploads", &[]).status, 503);
}

fn delete_body(keys: &[&str]) -> (Vec<u8>, String) {
    let objs: Vec<_> = keys.iter().map(|k| crate::types::ObjectIdentifier { key: k.to_string(), ..Default::default() }).collect();
    let body = crate::xml::delete_objects_body(&objs, false).into_bytes();
    use md5::Digest;
    let md5 = crate::codec::base64_encode(&md5::Md5::digest(&body));
    (body, md5)
}

fn deleted(call: &Call) -> Scripted {
    let req = crate::xml::parse_delete_objects(&call.body).unwrap();
    let entries: Vec<_> = req.objects.into_iter().map(|o| crate::types::DeletedEntry { key: o.key, version_id: None, delete_marker: false, delete_marker_version_id: None }).collect();
    ok(crate::xml::delete_result(&entries, &[], false).as_bytes())
}

#[test]
fn a_batch_delete_splits_by_shard_and_merges_in_request_order() {
    let p = proxy(&[]);
    let keys: Vec<String> = (0..3).map(|s| key_where(&p, |o, _| o == s)).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let (body, md5) = delete_body(&refs);
    let script = Script::new(|c, _| if c.bucket == "shard3" { s3_error(404, "NoSuchBucket") } else { deleted(c) }).with_client_body(&[&body]);
    let len = body.len().to_string();
    let seen = send(&script, &[], "POST", "/proxy-bucket?delete", &[("content-length", &len), ("content-md5", &md5)]);
    assert_eq!(seen.status, 200, "{}", seen.text());
    let text = seen.text();
    let at: Vec<usize> = keys.iter().map(|k| text.find(&format!("<Key>{k}</Key>")).unwrap()).collect();
    assert!(at[0] < at[1] && at[1] < at[2], "{text}");
    assert_eq!(script.calls.borrow().len(), 3);
}

#[test]
fn a_batch_delete_fails_whole_when_one_shard_fails() {
    let p = proxy(&[]);
    let keys: Vec<String> = (0..3).map(|s| key_where(&p, |o, _| o == s)).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let (body, md5) = delete_body(&refs);
    let script = Script::new(|c, _| match c.bucket.as_str() {
        "shard1" => deleted(c),
        "shard2" => s3_error(503, "SlowDown"),
        _ => Scripted::Hang,
    })
    .with_client_body(&[&body]);
    let len = body.len().to_string();
    let seen = send(&script, &[], "POST", "/proxy-bucket?delete", &[("content-length", &len), ("content-md5", &md5)]);
    assert_eq!((seen.status, seen.code().as_deref()), (503, Some("SlowDown")));
}

/// A source and destination key on different shards (and, while resharding, a source whose
/// previous owner differs from its owner).
fn copy_keys(p: &Proxy, resharding: bool) -> (String, String) {
    let src = key_where(p, |_, prev| prev.is_some() == resharding);
    let src_owner = p.owners(&src)[0];
    let dst = key_where(p, |o, _| o != src_owner && (!resharding || Some(o) != p.owners(&src).get(1).copied()));
    (src, dst)
}

#[test]
fn a_copy_across_shards_streams_the_source_into_the_destination() {
    let p = proxy(&[]);
    let (src, dst) = copy_keys(&p, false);
    let (src_bucket, dst_bucket) = (bucket(p.owners(&src)[0]), bucket(p.owners(&dst)[0]));
    let script = Script::new(|c, _| match c.method.as_str() {
        "GET" => ok(b"payload"),
        _ => Scripted::Answer(200, vec![("etag".into(), "\"e1\"".into())], vec![]),
    });
    let seen = send(&script, &[], "PUT", &format!("/proxy-bucket/{dst}"), &[("x-amz-copy-source", &format!("/proxy-bucket/{src}"))]);
    assert_eq!(seen.status, 200, "{}", seen.text());
    assert!(seen.text().contains("<CopyObjectResult") && seen.text().contains("&quot;e1&quot;"));
    let calls = script.calls.borrow();
    assert!(calls[0].is("GET", &src_bucket) && calls[1].is("PUT", &dst_bucket));
    assert_eq!(calls[1].body, b"payload");
}

#[test]
fn a_copy_whose_source_condition_fails_is_412_and_writes_nothing() {
    let p = proxy(&[]);
    let (src, dst) = copy_keys(&p, false);
    let script = Script::new(|c, _| match c.method.as_str() {
        "GET" => Scripted::Answer(304, vec![], vec![]),
        _ => ok(b""),
    });
    let headers = [("x-amz-copy-source", format!("/proxy-bucket/{src}")), ("x-amz-copy-source-if-none-match", "\"e\"".to_string())];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let seen = send(&script, &[], "PUT", &format!("/proxy-bucket/{dst}"), &headers);
    assert_eq!((seen.status, seen.code().as_deref()), (412, Some("PreconditionFailed")), "{}", seen.text());
    assert_eq!(script.calls.borrow().len(), 1, "the source GET only");
}

#[test]
fn a_copy_to_a_missing_destination_bucket_creates_it_and_copies_again() {
    let p = proxy(&[]);
    let (src, dst) = copy_keys(&p, false);
    let script = Script::new(|c, n| match (c.method.as_str(), c.key.is_empty(), n) {
        ("GET", _, _) => ok(b"payload"),
        ("PUT", false, 0) => s3_error(404, "NoSuchBucket"),
        _ => ok(b""),
    });
    let seen = send(&script, &[], "PUT", &format!("/proxy-bucket/{dst}"), &[("x-amz-copy-source", &format!("/proxy-bucket/{src}"))]);
    assert_eq!(seen.status, 200, "{}", seen.text());
    assert_eq!(script.calls.borrow().len(), 5, "GET, PUT, CreateBucket, GET, PUT");
}

#[test]
fn a_copy_reads_a_source_that_is_still_on_its_previous_owner() {
    let p = proxy(RESHARD);
    for part in [false, true] {
        let (src, dst) = copy_keys(&p, true);
        let previous = bucket(p.owners(&src)[1]);
        let script = Script::new(|c, _| match c.method.as_str() {
            "GET" if c.bucket == previous => ok(b"moved-not-yet"),
            "GET" => s3_error(404, "NoSuchKey"),
            _ => Scripted::Answer(200, vec![("etag".into(), "\"e\"".into())], vec![]),
        });
        let target = if part { format!("/proxy-bucket/{dst}?partNumber=1&uploadId=u") } else { format!("/proxy-bucket/{dst}") };
        let seen = send(&script, RESHARD, "PUT", &target, &[("x-amz-copy-source", &format!("/proxy-bucket/{src}"))]);
        assert_eq!(seen.status, 200, "part={part}: {}", seen.text());
        let calls = script.calls.borrow();
        assert_eq!(calls.last().unwrap().body, b"moved-not-yet");
    }
}

#[test]
fn a_same_shard_copy_is_server_side_and_falls_back_too() {
    let p = proxy(RESHARD);
    let src = key_where(&p, |_, prev| prev.is_some());
    let owner = p.owners(&src)[0];
    let dst = (0..10_000).map(|i| format!("u/c-{i}/data")).find(|k| p.owners(k)[0] == owner).unwrap();
    let script = Script::new(|c, _| {
        let from = header(&c.headers, "x-amz-copy-source").unwrap_or_default().to_string();
        if c.method == "PUT" && from.starts_with(&format!("/{}/", bucket(owner))) { s3_error(404, "NoSuchKey") } else { ok(b"<CopyObjectResult/>") }
    });
    let seen = send(&script, RESHARD, "PUT", &format!("/proxy-bucket/{dst}"), &[("x-amz-copy-source", &format!("/proxy-bucket/{src}"))]);
    assert_eq!(seen.status, 200, "{}", seen.text());
    assert!(header(&script.calls.borrow()[0].headers, "x-amz-copy-source").unwrap().starts_with(&format!("/{}/", bucket(owner))));
}

#[test]
fn health_reports_every_shard_and_fails_when_one_is_down() {
    let script = Script::new(|c, _| if c.bucket == "shard2" { Scripted::Fail(TransportErrorKind::Connect) } else { ok(b"") });
    let seen = send(&script, &[], "GET", "/_tempo-s3-shard/health", &[]);
    assert_eq!(seen.status, 503);
    let v: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(v["backends"].as_array().unwrap().len(), 3);
    assert_eq!(v["backends"][0]["ok"], true);
    assert!(!seen.text().contains("9000"));
}

#[test]
fn a_bad_configuration_is_an_error_naming_the_variable() {
    let script = Script::new(|_, _| ok(b""));
    let seen = send(&script, &[("buckets", "")], "GET", "/proxy-bucket/k", &[]);
    assert_eq!(seen.status, 500);
    assert!(seen.text().contains("buckets"), "{}", seen.text());
    assert!(script.calls.borrow().is_empty());
}

#[test]
fn a_large_ring_table_is_stored_once_and_read_back() {
    let eight = &[("buckets", "shard1,shard2,shard3,shard4,shard5,shard6,shard7,shard8")];
    let script = Script::new(|_, _| ok(b"x")).with_store();
    assert_eq!(send(&script, eight, "GET", "/proxy-bucket/t/b/k", &[]).status, 200);
    let stored = script.kv.borrow().as_ref().unwrap().len();
    assert_eq!(stored, 1, "the hashed table is stored");
    assert_eq!(send(&script, eight, "GET", "/proxy-bucket/t/b2/k", &[]).status, 200);
    assert_eq!(script.kv.borrow().as_ref().unwrap().len(), 1);
    let no_store = Script::new(|_, _| ok(b"x"));
    assert_eq!(send(&no_store, eight, "GET", "/proxy-bucket/t/b/k", &[]).status, 200);
}

#[test]
fn a_request_that_finds_the_ring_table_hashes_no_point() {
    let sixteen: Vec<String> = (0..16).map(|i| format!("shard{i}")).collect();
    let vars = vars(&[("buckets", &sixteen.join(","))]);
    let script = Script::new(|_, _| ok(b"x")).with_store();
    let hashed = |target: &str| placed(&script, &vars, target).0;
    assert!(hashed("/proxy-bucket/t/b1/k"), "the first request hashes the ring and stores its table");
    for key in ["t/b2/k", "t/b3/data", "other/tenant/x"] {
        assert!(!hashed(&format!("/proxy-bucket/{key}")), "{key}: placed (and logged) from the stored table");
    }
}

/// Whether a GET of `target` hashed any ring (rather than finding every owner in a given or stored
/// table), and the backend bucket it went to.
fn placed(script: &Script<impl Fn(&Call, usize) -> Scripted>, vars: &[(String, String)], target: &str) -> (bool, String) {
    let parts = RequestParts::new("GET", target, vec![("host".into(), "proxy.local".into())]);
    let request = Request { parts, https: false, now_unix: 1_700_000_000, request_id: "r".into() };
    let (_, finish) = block_on(handle(script, request, |n| vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())));
    let hashed = finish.proxy.as_ref().is_some_and(|p| p.rings().any(|r| r.hashed_here()));
    finish.done(script, 200, Ok(1), 1);
    let bucket = script.calls.borrow().last().map(|c| c.bucket.clone()).unwrap_or_default();
    (hashed, bucket)
}

#[test]
fn rings_given_in_ring_tables_are_neither_hashed_nor_read_from_the_store_and_place_as_hashed() {
    let sixteen: Vec<String> = (0..16).map(|i| format!("shard{i}")).collect();
    let config = [("buckets", sixteen.join(",")), ("previous_buckets", sixteen[..15].join(",")), ("key_prefix", "traces".to_string())];
    let config: Vec<(&str, &str)> = config.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let hashed = proxy(&config);
    let tables = hashed.rings().map(|r| r.table_entry()).collect::<Vec<_>>().join(",");
    let given = proxy(&[config.as_slice(), &[("ring_tables", tables.as_str())]].concat());
    assert_eq!(given.ring_tables, (2, 2));
    for i in 0..2_000 {
        let key = format!("traces/tenant-{}/block-{i}/data.parquet", i % 7);
        assert_eq!(given.owners(&key), hashed.owners(&key), "{key}");
    }
    assert!(given.rings().all(|r| !r.hashed_here()));
    // Through a request: the store (every ring cached) is neither read for them nor written.
    let vars = vars(&[config.as_slice(), &[("ring_tables", tables.as_str()), ("ring_cache", "always")]].concat());
    let script = Script::new(|_, _| ok(b"x")).with_store();
    for i in 0..20 {
        let key = format!("traces/t/b{i}/k");
        let (hashed_here, bucket) = placed(&script, &vars, &format!("/proxy-bucket/{key}"));
        assert!(!hashed_here, "{key}");
        assert_eq!(bucket, hashed.ring.owner(&key), "{key}");
    }
    assert_eq!(script.kv_reads.get(), 0);
    assert!(script.kv.borrow().as_ref().is_some_and(|kv| kv.is_empty()));
}

#[test]
fn a_stale_ring_table_is_left_unused_and_the_health_check_says_so() {
    let other = proxy(&[("buckets", "shard1,shard2")]);
    let stale = other.ring.table_entry();
    let p = proxy(&[("ring_tables", stale.as_str())]);
    assert_eq!(p.ring_tables, (1, 0));
    let vars = vars(&[("ring_tables", stale.as_str()), ("ring_cache", "never")]);
    let script = Script::new(|_, _| ok(b"x"));
    let (hashed_here, bucket) = placed(&script, &vars, "/proxy-bucket/t/b/k");
    assert!(hashed_here, "a ring without its table hashes");
    assert_eq!(bucket, proxy(&[]).ring.owner("t/b/k"));
    let health: serde_json::Value = serde_json::from_slice(&crate::admin::health(&p, &[Ok(200), Ok(200), Ok(200)]).body).unwrap();
    assert_eq!((health["ring_tables"]["given"].as_u64(), health["ring_tables"]["adopted"].as_u64()), (Some(1), Some(0)));
    assert!(health["ring_tables"]["stale"].as_str().is_some_and(|why| why.contains("ring-plan --tables")), "{health}");
    assert_eq!(health["healthy"], true, "a stale table costs time, not correctness");
    let current: serde_json::Value = serde_json::from_slice(&crate::admin::health(&proxy(&[]), &[Ok(200), Ok(200), Ok(200)]).body).unwrap();
    assert!(current.get("ring_tables").is_none(), "{current}");
}
