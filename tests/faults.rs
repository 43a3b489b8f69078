//! Partial failure through the real component: four shards on one s3s-fs server, one of them
//! (`shard3`, via `shard_endpoints`) behind a fault-injecting TCP proxy. For each fault and each
//! kind of request: the status and S3 error code, the time to answer (within the configured
//! timeout plus one second), what the backends hold afterwards, and that the other shards kept
//! serving. Run with `--nocapture` to see the measured time per case.

use crate::common;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use common::fault::{Fault, FaultHandle};
use common::{parse_response, s3_config, Harness, RawResponse, VIRTUAL_BUCKET};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SHARDS: [&str; 4] = ["shard1", "shard2", "shard3", "shard4"];
const FAULTY: &str = "shard3";
/// Every backend timeout in these tests (connect, first byte, idle), in seconds.
const TIMEOUT: Duration = Duration::from_secs(1);
const VARS: [(&str, &str); 4] = [
    ("allow_anonymous", "true"),
    ("backend_connect_timeout", "1"),
    ("backend_first_byte_timeout", "1"),
    ("backend_idle_timeout", "1"),
];
/// Size of the objects the tests read (large enough to be cut mid-body).
const OBJECT_BYTES: usize = 256 * 1024;
/// A streamed PUT (over the 1 MiB the proxy buffers for a retry).
const STREAMED_BYTES: usize = 2 * 1024 * 1024 + 5;

/// The kinds of request each fault is tried with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Get,
    RangedGet,
    Head,
    PutSmall,
    PutStreamed,
    UploadPart,
    ListV2,
    ListV1,
    DeleteObjects,
    Health,
}

const OPS: [Op; 10] = [
    Op::Get,
    Op::RangedGet,
    Op::Head,
    Op::PutSmall,
    Op::PutStreamed,
    Op::UploadPart,
    Op::ListV2,
    Op::ListV1,
    Op::DeleteObjects,
    Op::Health,
];

/// Four shards, `shard3` behind the fault proxy, objects on it and on a healthy shard.
struct Setup {
    h: Harness,
    fault: FaultHandle,
    /// A key `shard3` owns, seeded directly on the backend.
    sick: String,
    /// A key a healthy shard owns, seeded directly on the backend.
    well: String,
    object: Vec<u8>,
    /// An open multipart upload of a `shard3` key (created through the proxy).
    upload: (String, String),
}

/// `n` printable bytes (the raw client reads text).
fn payload(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| b'a' + ((i + seed as usize) % 26) as u8).collect()
}

/// Wait (up to 5 s: a request is counted just after its answer) until the runner's metrics count
/// `n` GetObject responses cut for `reason`; fails naming what they count instead.
async fn counts_cut(h: &Harness, reason: &str, n: u32) {
    let want = format!("tempo_s3_shard_responses_cut_total{{operation=\"GetObject\",reason=\"{reason}\"}} {n}\n");
    let mut text = String::new();
    for _ in 0..50 {
        text = h.raw(b"GET /metrics HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n").await.body;
        if text.contains(&want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cut: Vec<&str> = text.lines().filter(|l| l.starts_with("tempo_s3_shard_responses_cut_total")).collect();
    panic!("want {want:?}; the metrics count {cut:?}");
}

fn key_on(h: &Harness, bucket: &str, tag: &str) -> String {
    (0..10_000).map(|i| format!("tenant/{tag}-{i}/data")).find(|k| h.owner(k) == bucket).expect("a key on the bucket")
}

async fn setup() -> Setup {
    let (h, fault) = Harness::start_with_fault(&SHARDS, FAULTY, &VARS).await;
    let sick = key_on(&h, FAULTY, "sick");
    let well = key_on(&h, "shard1", "well");
    let object = payload(OBJECT_BYTES, 0);
    for (bucket, key) in [(FAULTY, &sick), ("shard1", &well)] {
        h.direct().put_object().bucket(bucket).key(key).body(ByteStream::from(object.clone())).send().await.unwrap();
    }
    let upload_key = key_on(&h, FAULTY, "upload");
    let created = sdk(&h).create_multipart_upload().bucket(VIRTUAL_BUCKET).key(&upload_key).send().await.unwrap();
    let upload = (upload_key, created.upload_id().unwrap().to_string());
    Setup { h, fault, sick, well, object, upload }
}

/// An aws-sdk-s3 client for the proxy that neither retries nor waits long (a hang fails the test).
fn sdk(h: &Harness) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{retry::RetryConfig, timeout::TimeoutConfig, StalledStreamProtectionConfig};
    use tempo_s3_shard_host::backends::{LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY};
    let config = s3_config(&h.proxy_url(), LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY)
        .retry_config(RetryConfig::disabled())
        .timeout_config(TimeoutConfig::builder().operation_timeout(Duration::from_secs(20)).build())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// How one request ended.
#[derive(Debug)]
struct Outcome {
    status: u16,
    code: Option<String>,
    elapsed: Duration,
    response: Option<RawResponse>,
}

/// One HTTP/1.1 exchange; the body is written alongside reading, so an early answer is read even
/// when the proxy stops reading the body. Fails after 20 s (a hang).
async fn exchange(h: &Harness, head: String, body: Vec<u8>) -> RawResponse {
    let stream = tokio::net::TcpStream::connect(h.proxy).await.expect("connect to the proxy");
    let (mut read, mut write) = stream.into_split();
    let writing = tokio::spawn(async move {
        let _ = write.write_all(head.as_bytes()).await;
        let _ = write.write_all(&body).await;
        write
    });
    let mut buf = Vec::new();
    let answered = tokio::time::timeout(Duration::from_secs(20), read.read_to_end(&mut buf)).await;
    writing.abort();
    assert!(answered.is_ok(), "no answer within 20 s");
    parse_response(&buf)
}

fn get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n")
}

async fn run(s: &Setup, op: Op, tag: &str) -> Outcome {
    let started = Instant::now();
    let raw = |r: RawResponse| Outcome {
        status: r.status,
        code: r.error_code().map(str::to_string),
        elapsed: started.elapsed(),
        response: Some(r),
    };
    let object = format!("/{VIRTUAL_BUCKET}/{}", s.sick);
    match op {
        Op::Get => raw(exchange(&s.h, get(&object, ""), vec![]).await),
        Op::RangedGet => raw(exchange(&s.h, get(&object, "Range: bytes=0-131071\r\n"), vec![]).await),
        Op::Head => raw(exchange(&s.h, get(&object, "").replacen("GET", "HEAD", 1), vec![]).await),
        Op::PutSmall | Op::PutStreamed => {
            let (key, body) = put_target(s, op, tag);
            let head = format!("PUT /{VIRTUAL_BUCKET}/{key} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            raw(exchange(&s.h, head, body).await)
        }
        Op::ListV2 => raw(exchange(&s.h, get(&format!("/{VIRTUAL_BUCKET}?list-type=2&prefix=tenant/"), ""), vec![]).await),
        Op::ListV1 => raw(exchange(&s.h, get(&format!("/{VIRTUAL_BUCKET}?prefix=tenant/"), ""), vec![]).await),
        Op::Health => raw(exchange(&s.h, get("/_tempo-s3-shard/health", ""), vec![]).await),
        Op::UploadPart => {
            let (key, id) = &s.upload;
            let sent = sdk(&s.h).upload_part().bucket(VIRTUAL_BUCKET).key(key).upload_id(id).part_number(1).body(ByteStream::from(payload(64 * 1024, 1))).send().await;
            sdk_outcome(sent.map(|_| ()), started)
        }
        Op::DeleteObjects => delete_objects(s, tag).await,
    }
}

/// DeleteObjects of a `shard3` key and a healthy shard's key (created first, directly).
async fn delete_objects(s: &Setup, tag: &str) -> Outcome {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let keys = delete_targets(s, tag);
    for (bucket, key) in &keys {
        s.h.direct().put_object().bucket(*bucket).key(key).body(ByteStream::from_static(b"d")).send().await.unwrap();
    }
    let started = Instant::now();
    let ids = keys.iter().map(|(_, k)| ObjectIdentifier::builder().key(k).build().unwrap()).collect();
    let delete = Delete::builder().set_objects(Some(ids)).build().unwrap();
    let sent = sdk(&s.h).delete_objects().bucket(VIRTUAL_BUCKET).delete(delete).send().await;
    // A 200 that reports per-key errors carries their first code (and so fails every check).
    let partial = sent.as_ref().ok().and_then(|out| out.errors().first()).map(|e| e.code().unwrap_or("?").to_string());
    let mut outcome = sdk_outcome(sent.map(|_| ()), started);
    outcome.code = outcome.code.or(partial);
    outcome
}

/// An SDK call's outcome: its HTTP status and error code.
fn sdk_outcome<E: ProvideErrorMetadata + std::fmt::Debug>(
    sent: Result<(), aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
    started: Instant,
) -> Outcome {
    let elapsed = started.elapsed();
    match sent {
        Ok(()) => Outcome { status: 200, code: None, elapsed, response: None },
        Err(err) => {
            let status = err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
            let code = err.as_service_error().and_then(|e| e.code()).map(str::to_string);
            Outcome { status, code, elapsed, response: None }
        }
    }
}

/// The key and body a PUT case writes (a fresh `shard3` key per case).
fn put_target(s: &Setup, op: Op, tag: &str) -> (String, Vec<u8>) {
    let size = if op == Op::PutSmall { 1024 } else { STREAMED_BYTES };
    (key_on(&s.h, FAULTY, &format!("put-{tag}-{op:?}")), payload(size, 2))
}

/// Keys a DeleteObjects case removes: one on `shard3`, one on a healthy shard.
fn delete_targets(s: &Setup, tag: &str) -> Vec<(&'static str, String)> {
    vec![(FAULTY, key_on(&s.h, FAULTY, &format!("del-{tag}"))), ("shard1", key_on(&s.h, "shard1", &format!("del-{tag}")))]
}

/// What the backend holds under `key` in `bucket`, read directly.
async fn held(s: &Setup, bucket: &str, key: &str) -> Option<Vec<u8>> {
    let got = s.h.direct().get_object().bucket(bucket).key(key).send().await.ok()?;
    Some(got.body.collect().await.unwrap().into_bytes().to_vec())
}

/// The healthy shard answers through the proxy at once, whatever `shard3` does.
async fn others_serve(s: &Setup) {
    let started = Instant::now();
    let r = exchange(&s.h, get(&format!("/{VIRTUAL_BUCKET}/{}", s.well), ""), vec![]).await;
    assert_eq!(r.status, 200, "a healthy shard's GET: {}", r.body);
    assert_eq!(r.body.len(), OBJECT_BYTES);
    assert!(started.elapsed() < Duration::from_millis(900), "a healthy shard's GET took {:?}", started.elapsed());
}

/// Nothing half-written, nothing lost: the seeded objects are intact, a PUT's object is whole or
/// absent, an uploaded part whole or absent.
async fn backends_consistent(s: &Setup, op: Op, tag: &str) {
    assert_eq!(held(s, FAULTY, &s.sick).await.as_deref(), Some(s.object.as_slice()), "the faulty shard's object");
    assert_eq!(held(s, "shard1", &s.well).await.as_deref(), Some(s.object.as_slice()), "a healthy shard's object");
    if matches!(op, Op::PutSmall | Op::PutStreamed) {
        let (key, body) = put_target(s, op, tag);
        if let Some(there) = held(s, FAULTY, &key).await {
            assert!(there == body, "{op:?} left {} of {} bytes", there.len(), body.len());
        }
    }
    if op == Op::UploadPart {
        let (key, id) = &s.upload;
        let parts = s.h.direct().list_parts().bucket(FAULTY).key(key).upload_id(id).send().await.unwrap();
        for p in parts.parts() {
            assert_eq!(p.size(), Some(64 * 1024), "a part is whole or absent");
        }
    }
}

/// What a case must answer.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Success (200, 206 for the range, 204 is not used).
    Ok,
    /// A 503 S3 error with one of these codes, within the timeout plus one second.
    Unavailable(&'static [&'static str]),
}

fn check(fault: Fault, op: Op, outcome: &Outcome, expect: Expect, budget: Duration) {
    eprintln!("{fault:?} {op:?}: {} {:?} in {} ms", outcome.status, outcome.code, outcome.elapsed.as_millis());
    let detail = outcome.response.as_ref().map(|r| r.body.chars().take(300).collect::<String>()).unwrap_or_default();
    match expect {
        Expect::Ok => {
            let want = if op == Op::RangedGet { 206 } else { 200 };
            assert_eq!(outcome.status, want, "{fault:?} {op:?}: {detail}");
            assert_eq!(outcome.code, None, "{fault:?} {op:?}: {detail}");
        }
        Expect::Unavailable(codes) => {
            assert_eq!(outcome.status, 503, "{fault:?} {op:?}: {detail}");
            // Health answers JSON; HEAD has no body; the others say why in S3 XML.
            if !matches!(op, Op::Health | Op::Head) {
                let code = outcome.code.as_deref().unwrap_or("");
                assert!(codes.contains(&code), "{fault:?} {op:?}: code {code:?}, want one of {codes:?}: {detail}");
            }
            if let Some(r) = &outcome.response {
                assert!(!r.body.contains("127.0.0.1"), "{fault:?} {op:?} names an endpoint: {}", r.body);
            }
        }
    }
    assert!(outcome.elapsed <= budget, "{fault:?} {op:?} took {:?}, budget {budget:?}", outcome.elapsed);
}

/// Every op under `fault`: its answer, then that the other shards serve and the backends are whole.
async fn every_op_under(fault: Fault, expect: impl Fn(Op) -> Expect, budget: Duration) {
    these_ops_under(&OPS, fault, expect, budget).await;
}

/// As [`every_op_under`], for `ops` only.
async fn these_ops_under(ops: &[Op], fault: Fault, expect: impl Fn(Op) -> Expect, budget: Duration) {
    let s = setup().await;
    let tag = format!("{fault:?}").replace(|c: char| !c.is_ascii_alphanumeric(), "");
    for &op in ops {
        // Closes pooled connections, so each case meets the fault afresh.
        s.fault.set(fault).await;
        let outcome = run(&s, op, &tag).await;
        check(fault, op, &outcome, expect(op), budget);
        others_serve(&s).await;
        s.fault.set(Fault::Pass).await;
        backends_consistent(&s, op, &tag).await;
    }
}

/// The error codes a failed backend call may surface as.
const UNREACHABLE: &[&str] = &["ServiceUnavailable"];
const SLOWED: &[&str] = &["SlowDown"];
/// Within the timeout plus one second.
fn budget() -> Duration {
    TIMEOUT + Duration::from_secs(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_fault_every_request_succeeds() {
    every_op_under(Fault::Pass, |_| Expect::Ok, Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_that_refuses_connections_is_503_at_once() {
    every_op_under(Fault::Refuse, |_| Expect::Unavailable(UNREACHABLE), budget()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_that_resets_connections_is_503_at_once() {
    every_op_under(Fault::Reset, |_| Expect::Unavailable(UNREACHABLE), budget()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_answering_slow_down_passes_it_on() {
    // Fan-out requests may also say which shard failed as ServiceUnavailable.
    let expect = |op| match op {
        Op::ListV2 | Op::ListV1 | Op::DeleteObjects => Expect::Unavailable(&["SlowDown", "ServiceUnavailable"]),
        _ => Expect::Unavailable(SLOWED),
    };
    let ops: Vec<Op> = OPS.into_iter().filter(|op| *op != Op::PutStreamed).collect();
    these_ops_under(&ops, Fault::SlowDown, expect, budget()).await;
}

/// A backend that answers a streamed PUT early (503 SlowDown) and stops reading: its answer must
/// reach the client, not the broken body write (today: 503 ServiceUnavailable "writing the body
/// failed").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_put_answered_slow_down_early_passes_it_on() {
    these_ops_under(&[Op::PutStreamed], Fault::SlowDown, |_| Expect::Unavailable(SLOWED), budget()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_before_the_answer_is_503_and_writes_stay_whole() {
    every_op_under(Fault::CutAfter(20), |_| Expect::Unavailable(UNREACHABLE), budget()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_first_byte_within_the_timeout_is_served() {
    let delay = Duration::from_millis(300);
    every_op_under(Fault::SlowFirstByte(delay), |_| Expect::Ok, budget()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_byte_later_than_the_timeout_is_503_within_it() {
    every_op_under(Fault::SlowFirstByte(Duration::from_secs(3)), |_| Expect::Unavailable(UNREACHABLE), budget()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_shard_is_503_within_the_first_byte_timeout() {
    every_op_under(Fault::Stall, |_| Expect::Unavailable(UNREACHABLE), budget()).await;
}

/// A GET whose body is cut off mid-way: the client gets the head and sees the body end early
/// (Content-Length says more), never a silently short 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_mid_way_is_cut_for_the_client() {
    let s = setup().await;
    for (op, want) in [(Op::Get, OBJECT_BYTES), (Op::RangedGet, 128 * 1024)] {
        s.fault.set(Fault::CutAfter(64 * 1024)).await;
        let outcome = run(&s, op, "cut").await;
        eprintln!("CutAfter(65536) {op:?}: {} in {} ms", outcome.status, outcome.elapsed.as_millis());
        let r = outcome.response.unwrap();
        assert!(matches!(r.status, 200 | 206), "{}", r.body);
        assert_eq!(r.header("content-length"), Some(want.to_string().as_str()));
        assert!(r.body.len() < want, "the client must see the body end early: {} of {want}", r.body.len());
        assert!(outcome.elapsed <= budget());
        others_serve(&s).await;
    }
    counts_cut(&s.h, "backend-broke-off", 2).await;
}

/// A body that stops mid-way without closing: the client's response is cut within the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_mid_way_is_cut_within_the_idle_timeout() {
    let s = setup().await;
    s.fault.set(Fault::StallAfter(64 * 1024)).await;
    let outcome = run(&s, Op::Get, "stall-body").await;
    eprintln!("StallAfter(65536) Get: {} in {} ms", outcome.status, outcome.elapsed.as_millis());
    let r = outcome.response.unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.len() < OBJECT_BYTES);
    assert!(outcome.elapsed <= budget(), "{:?}", outcome.elapsed);
    counts_cut(&s.h, "backend-stalled", 1).await;
}

/// While one request waits on the stalled shard, the other shards answer at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_shards_serve_while_one_stalls() {
    let s = std::sync::Arc::new(setup().await);
    s.fault.set(Fault::Stall).await;
    let stalled = {
        let s = s.clone();
        tokio::spawn(async move { run(&s, Op::Get, "concurrent").await })
    };
    for _ in 0..5 {
        others_serve(&s).await;
    }
    let outcome = stalled.await.unwrap();
    check(Fault::Stall, Op::Get, &outcome, Expect::Unavailable(UNREACHABLE), budget());
}

/// Send a PUT's head and its body in `pieces` (bytes, then the pause after them), leaving the
/// connection open; read the answer, which must come within 10 s of the last piece.
async fn upload_in_pieces(h: &Harness, key: &str, length: usize, pieces: &[(usize, Duration)]) -> (RawResponse, Duration) {
    upload(h, key, length, pieces, false).await
}

/// [`upload_in_pieces`], then (when `hang_up`) the connection's sending half closed: the body
/// ends there, however short of its length.
async fn upload(h: &Harness, key: &str, length: usize, pieces: &[(usize, Duration)], hang_up: bool) -> (RawResponse, Duration) {
    let mut stream = tokio::net::TcpStream::connect(h.proxy).await.expect("connect to the proxy");
    let head = format!("PUT /{VIRTUAL_BUCKET}/{key} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("send the head");
    for (bytes, pause) in pieces {
        stream.write_all(&payload(*bytes, 7)).await.expect("send a piece of the body");
        tokio::time::sleep(*pause).await;
    }
    if hang_up {
        stream.shutdown().await.expect("close the sending half");
    }
    let started = Instant::now();
    let mut buf = Vec::new();
    let answered = tokio::time::timeout(Duration::from_secs(10), async {
        let mut piece = [0u8; 4096];
        // The head, then as many body bytes as it announces.
        loop {
            let n = stream.read(&mut piece).await.unwrap_or(0);
            buf.extend_from_slice(&piece[..n]);
            let whole = parse_response(&buf);
            let want = whole.header("content-length").and_then(|v| v.parse::<usize>().ok());
            if n == 0 || want.is_some_and(|w| whole.body.len() >= w) {
                return;
            }
        }
    })
    .await;
    assert!(answered.is_ok(), "{key}: no answer within 10 s");
    (parse_response(&buf), started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stalls_mid_upload_gets_request_timeout_and_nothing_is_stored() {
    // S3 answers an upload that pauses too long with 400 RequestTimeout; so does the proxy, after
    // client_idle_timeout (1 s here), for a held (small) body and a streamed one alike, and
    // stores nothing.
    let h = Harness::start_with(&["shard1", "shard2"], &[("allow_anonymous", "true"), ("client_idle_timeout", "1")]).await;
    for (key, length, sent) in [("tenant/stall-small/data", 10_000, 1_000), ("tenant/stall-large/data", STREAMED_BYTES, STREAMED_BYTES / 2)] {
        let (answer, waited) = upload_in_pieces(&h, key, length, &[(sent, Duration::ZERO)]).await;
        eprintln!("{key}: {} {:?} {waited:?} after the last byte", answer.status, answer.error_code());
        assert_eq!((answer.status, answer.error_code()), (400, Some("RequestTimeout")), "{key}: {}", answer.body);
        assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(4), "{key}: answered {waited:?} after the last byte");
        assert!(h.holders(key).await.is_empty(), "{key}: a stalled upload stored an object");
    }
    // Pauses under the limit, however many, never cut an upload: three 600 ms pauses are 1.8 s.
    let key = "tenant/steady/data";
    let (answer, _) = upload_in_pieces(&h, key, 4_000, &[(1_000, Duration::from_millis(600)); 4]).await;
    assert_eq!(answer.status, 200, "a steady upload: {}", answer.body);
    assert_eq!(h.holders(key).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_mid_upload_stores_nothing() {
    // The body ends short of its Content-Length: S3 stores nothing, and so must the proxy, for a
    // held (small) body and a streamed one (moved to the backend without being read) alike. An
    // answer, when the client can still read one, is 400 IncompleteBody.
    let h = Harness::start_with(&["shard1", "shard2"], &[("allow_anonymous", "true")]).await;
    for (key, length, sent) in [("tenant/gone-small/data", 10_000, 1_000), ("tenant/gone-large/data", STREAMED_BYTES, STREAMED_BYTES / 2)] {
        let (answer, _) = upload(&h, key, length, &[(sent, Duration::ZERO)], true).await;
        eprintln!("{key}: {} {:?}", answer.status, answer.error_code());
        if answer.status != 0 {
            assert_eq!((answer.status, answer.error_code()), (400, Some("IncompleteBody")), "{key}: {}", answer.body);
        }
        assert!(h.holders(key).await.is_empty(), "{key}: a short upload stored an object");
    }
    // The proxy still serves, and every whole streamed upload is stored: the runtime closing the
    // backend's body once it has Content-Length bytes is not the backend going away.
    for i in 0..8 {
        let key = format!("tenant/whole-{i}/data");
        let (answer, _) = upload(&h, &key, STREAMED_BYTES, &[(STREAMED_BYTES, Duration::ZERO)], false).await;
        assert_eq!(answer.status, 200, "whole upload {i}: {}", answer.body);
        assert_eq!(h.holders(&key).await.len(), 1);
    }
}

/// The object a slow reader asks for: far more than the socket buffers between it and the proxy hold.
const SLOW_READ_BYTES: usize = 16 * 1024 * 1024;

/// A GET of `key` on a connection with a small receive window, read until the connection ends (an
/// end or a reset both count), pausing as `pauses` say (once so many bytes arrived, how long).
/// Returns the body bytes that arrived.
async fn read_slowly(proxy: std::net::SocketAddr, key: &str, pauses: Vec<(usize, Duration)>) -> usize {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.set_recv_buffer_size(16 * 1024).expect("a small receive buffer");
    let mut stream = socket.connect(proxy).await.expect("connect to the proxy");
    stream.write_all(get(&format!("/{VIRTUAL_BUCKET}/{key}"), "").as_bytes()).await.expect("send the GET");
    let (mut head, mut received, mut piece) = (Vec::new(), 0usize, vec![0u8; 64 * 1024]);
    let (mut pauses, mut body_at) = (pauses.into_iter().peekable(), None);
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let n = match stream.read(&mut piece).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            received += n;
            if body_at.is_none() {
                head.extend_from_slice(&piece[..n]);
                body_at = head.windows(4).position(|w| w == b"\r\n\r\n").map(|at| at + 4);
            }
            if let Some((_, pause)) = pauses.next_if(|(after, _)| received >= *after) {
                tokio::time::sleep(pause).await;
            }
        }
    });
    assert!(read.await.is_ok(), "{key}: the response neither ended nor was cut within 20 s");
    received - body_at.expect("a response head")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_off_and_frees_its_instance() {
    // The response's head is out, so the only answer to a client that stops reading for longer
    // than client_idle_timeout (1 s here) is to cut the body, and the instance it held is freed.
    // With a single instance, another request is served while the stalled client reads nothing.
    let pool = tempo_s3_shard_host::pool::Pool { instances: 1, wait: Duration::from_secs(3) };
    let h = Harness::start_pooled(&["shard1", "shard2"], &[("allow_anonymous", "true"), ("client_idle_timeout", "1")], pool).await;
    let key = "tenant/slow-reader/data";
    h.direct().put_object().bucket(h.owner(key)).key(key).body(ByteStream::from(payload(SLOW_READ_BYTES, 3))).send().await.unwrap();

    let stalled = tokio::spawn(read_slowly(h.proxy, key, vec![(1, Duration::from_secs(6))]));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    let other = h.raw(get(&format!("/{VIRTUAL_BUCKET}/tenant/other/data"), "").as_bytes()).await;
    assert_eq!(other.status, 404, "another request while the stalled client holds the only instance: {}", other.body);
    assert!(started.elapsed() < Duration::from_secs(2), "another request waited {:?} for the instance", started.elapsed());
    let received = stalled.await.unwrap();
    eprintln!("the stalled client got {received} of {SLOW_READ_BYTES} bytes");
    assert!(received < SLOW_READ_BYTES, "a client that stopped reading for 6 s still got the whole body");
    counts_cut(&h, "client-stalled", 1).await;

    // Pauses under the limit never cut a response.
    let pauses = vec![(1 << 20, Duration::from_millis(600)), (4 << 20, Duration::from_millis(600)), (8 << 20, Duration::from_millis(600))];
    assert_eq!(read_slowly(h.proxy, key, pauses).await, SLOW_READ_BYTES, "a client pausing 0.6 s at a time lost part of the body");
}
