//! The real component in the wasmtime host, in front of real SigV4-verifying S3 backends, driven by
//! aws-sdk-s3: objects are placed by the ring, stream both ways, and errors are S3 XML.

use crate::common;

use aws_sdk_s3::primitives::ByteStream;
use common::{Harness, VIRTUAL_BUCKET};
use sha2::{Digest, Sha256};
use tempo_s3_shard_core::ring::Ring;
use tempo_s3_shard_host::component::SPIN_KEEP_RESIDENT;

const SHARDS: [&str; 3] = ["shard1", "shard2", "shard3"];

/// Keys that exercise every encoding rule of paths and signatures.
const AWKWARD_KEYS: &[&str] = &[
    "single-tenant/0003b3c9-8689-41a6-835c-1b4ec3bd4a4e/meta.json",
    "single-tenant/0003b3c9-8689-41a6-835c-1b4ec3bd4a4e/data.parquet",
    "single-tenant/index.json.gz",
    "simple-file",
    "with space/and+plus/file name.txt",
    "percent%20literal/100%/x",
    "unicode/é€𝄞/ключ",
    "equals=sign/a=b/c",
    "tilde~/~x/y~",
    "double//slash/file",
    "a/b/c/d/e/f",
    "semi;colon/comma,/and&amp/q?mark",
    "star*/paren(1)/bang!'quote",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_round_trip_and_land_on_their_ring_owner() {
    let h = Harness::start(&SHARDS).await;
    let s3 = h.client();
    for key in AWKWARD_KEYS {
        let body = format!("body of {key}");
        s3.put_object()
            .bucket(VIRTUAL_BUCKET)
            .key(*key)
            .body(ByteStream::from(body.clone().into_bytes()))
            .content_type("text/plain")
            .metadata("origin", "component-test")
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
        let got = s3.get_object().bucket(VIRTUAL_BUCKET).key(*key).send().await.unwrap_or_else(|e| panic!("get {key}: {e:?}"));
        assert_eq!(got.content_type(), Some("text/plain"), "{key}");
        assert_eq!(got.metadata().and_then(|m| m.get("origin")).map(String::as_str), Some("component-test"));
        assert!(got.e_tag().is_some() && got.last_modified().is_some(), "{key}");
        let data = got.body.collect().await.unwrap().into_bytes();
        assert_eq!(data.as_ref(), body.as_bytes(), "{key}");
        assert_eq!(h.holders(key).await, vec![h.owner(key)], "{key} must be stored only on its ring owner");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_files_of_a_block_land_together() {
    let h = Harness::start(&SHARDS).await;
    let s3 = h.client();
    let mut owners_seen = std::collections::BTreeSet::new();
    for block in 0..12 {
        let mut owners = std::collections::BTreeSet::new();
        for file in ["meta.json", "bloom-0", "bloom-1", "index", "data.parquet"] {
            let key = format!("tenant-a/block-{block:04}/{file}");
            s3.put_object().bucket(VIRTUAL_BUCKET).key(&key).body(ByteStream::from_static(b"x")).send().await.unwrap();
            owners.extend(h.holders(&key).await);
        }
        assert_eq!(owners.len(), 1, "block {block} was split over {owners:?}");
        owners_seen.extend(owners);
    }
    assert!(owners_seen.len() > 1, "12 blocks should spread over more than one shard");
}

/// Twelve shards: the ring's 1,200 points are worth keeping in Spin's key-value store between
/// requests (Spin instantiates per request). The cached table must place keys exactly as hashing
/// does, and a wrong or corrupt cache must never misplace a key: it is replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_ring_is_kept_in_the_key_value_store_and_a_bad_one_replaced() {
    let shards: Vec<String> = (1..=12).map(|i| format!("shard{i:02}")).collect();
    let names: Vec<&str> = shards.iter().map(String::as_str).collect();
    let h = Harness::start(&names).await;
    let s3 = h.client();
    let genuine = Ring::new(&shards);
    let cache_key = genuine.cache_key().expect("1,200 points are worth caching");
    genuine.build_table();
    let genuine_table = genuine.table_to_cache().unwrap();
    let cached = || h.key_values.lock().unwrap().get(&cache_key).cloned();

    s3.head_bucket().bucket(VIRTUAL_BUCKET).send().await.unwrap();
    assert_eq!(cached(), None, "a call that places no key fetches and stores no table");

    let mut block = 0;
    let mut put_and_check = |what: &'static str| {
        block += 1;
        let key = format!("tenant/block-{block:03}/meta.json");
        let (s3, h) = (&s3, &h);
        async move {
            s3.put_object().bucket(VIRTUAL_BUCKET).key(&key).body(ByteStream::from_static(b"x")).send().await.unwrap();
            assert_eq!(h.holders(&key).await, vec![h.owner(&key)], "{what}: {key} must land on its ring owner");
        }
    };
    put_and_check("no cache yet").await;
    assert_eq!(cached().as_deref(), Some(genuine_table.as_slice()), "the first placing request stores the table");
    for _ in 0..12 {
        put_and_check("cached table").await;
    }

    // A table of other buckets has the right shape but wrong points; garbage has neither.
    let others: Vec<String> = (1..=12).map(|i| format!("other{i:02}")).collect();
    let foreign = Ring::new(&others);
    foreign.build_table();
    for (what, bad) in [("foreign table", foreign.table_to_cache().unwrap()), ("garbage", b"not a ring table".to_vec())] {
        h.key_values.lock().unwrap().insert(cache_key.clone(), bad);
        put_and_check(what).await;
        assert_eq!(cached().as_deref(), Some(genuine_table.as_slice()), "{what} is replaced by the real table");
        put_and_check(what).await;
    }
}

/// `ring_cache` decides which rings keep their table in the store. The runner's store is memory in
/// its process, so the runner caches every ring (`always`) unless told otherwise; spin.toml's
/// `auto` caches 8 or more buckets (a store over the network answers slower than 300 points hash);
/// `never` caches none. Whatever the choice, keys land on their ring owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_cache_decides_which_rings_are_kept_in_the_store() {
    let twelve: Vec<String> = (1..=12).map(|i| format!("shard{i:02}")).collect();
    let twelve: Vec<&str> = twelve.iter().map(String::as_str).collect();
    for (buckets, ring_cache, kept) in
        [(&SHARDS[..], None, true), (&SHARDS[..], Some("auto"), false), (&twelve[..], Some("auto"), true), (&twelve[..], Some("never"), false)]
    {
        let vars: Vec<(&str, &str)> = ring_cache.map(|v| ("ring_cache", v)).into_iter().collect();
        let h = Harness::start_with(buckets, &vars).await;
        let names: Vec<String> = buckets.iter().map(|b| b.to_string()).collect();
        let cache_key = Ring::new(&names).with_cache_min_points(Some(1)).cache_key().unwrap();
        let s3 = h.client();
        for block in 0..3 {
            let key = format!("tenant/block-{block}/data");
            s3.put_object().bucket(VIRTUAL_BUCKET).key(&key).body(ByteStream::from_static(b"x")).send().await.unwrap();
            assert_eq!(h.holders(&key).await, vec![h.owner(&key)], "{ring_cache:?}: {key} must land on its ring owner");
        }
        let stored = h.key_values.lock().unwrap().contains_key(&cache_key);
        assert_eq!(stored, kept, "{} buckets, ring_cache {ring_cache:?}: table stored", buckets.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_object_head_and_delete() {
    let h = Harness::start(&SHARDS).await;
    let s3 = h.client();
    let key = "tenant/block/empty";
    s3.put_object().bucket(VIRTUAL_BUCKET).key(key).body(ByteStream::from_static(b"")).send().await.unwrap();
    let head = s3.head_object().bucket(VIRTUAL_BUCKET).key(key).send().await.unwrap();
    assert_eq!(head.content_length(), Some(0));
    let got = s3.get_object().bucket(VIRTUAL_BUCKET).key(key).send().await.unwrap();
    assert!(got.body.collect().await.unwrap().into_bytes().is_empty());

    let put = s3.put_object().bucket(VIRTUAL_BUCKET).key("tenant/block/sized").body(ByteStream::from_static(b"12345")).send().await.unwrap();
    let head = s3.head_object().bucket(VIRTUAL_BUCKET).key("tenant/block/sized").send().await.unwrap();
    assert_eq!(head.content_length(), Some(5));
    assert_eq!(head.e_tag(), put.e_tag());

    s3.delete_object().bucket(VIRTUAL_BUCKET).key(key).send().await.unwrap();
    let err = s3.get_object().bucket(VIRTUAL_BUCKET).key(key).send().await.unwrap_err();
    assert_eq!(err.into_service_error().meta().code(), Some("NoSuchKey"));
    let err = s3.head_object().bucket(VIRTUAL_BUCKET).key(key).send().await.unwrap_err();
    assert!(err.into_service_error().is_not_found());
    assert!(h.holders(key).await.is_empty());
    // Deleting what is not there succeeds, as on S3.
    s3.delete_object().bucket(VIRTUAL_BUCKET).key(key).send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_and_bucket_calls_show_only_the_virtual_bucket() {
    let h = Harness::start(&SHARDS).await;
    let s3 = h.client();
    let buckets = s3.list_buckets().send().await.unwrap();
    let names: Vec<_> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, vec![VIRTUAL_BUCKET]);
    s3.head_bucket().bucket(VIRTUAL_BUCKET).send().await.unwrap();
    let loc = s3.get_bucket_location().bucket(VIRTUAL_BUCKET).send().await.unwrap();
    assert!(loc.location_constraint().is_none_or(|c| c.as_str().is_empty()));

    let err = s3.get_object().bucket("shard1").key("x").send().await.unwrap_err();
    assert_eq!(err.into_service_error().meta().code(), Some("NoSuchBucket"));
    let err = s3.head_bucket().bucket("other-bucket").send().await.unwrap_err();
    assert!(err.into_service_error().is_not_found());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_object_streams_with_small_component_memory() {
    let h = Harness::start(&SHARDS).await;
    let s3 = h.client();
    const SIZE: usize = 256 * 1024 * 1024;
    let data: Vec<u8> = (0..SIZE).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let expected = Sha256::digest(&data);
    let key = "tenant/big-block/data";
    s3.put_object().bucket(VIRTUAL_BUCKET).key(key).body(ByteStream::from(data)).send().await.unwrap();
    let got = s3.get_object().bucket(VIRTUAL_BUCKET).key(key).send().await.unwrap();
    assert_eq!(got.content_length(), Some(SIZE as i64));
    let mut body = got.body;
    let mut hasher = Sha256::new();
    let mut n = 0;
    while let Some(chunk) = body.try_next().await.unwrap() {
        n += chunk.len();
        hasher.update(&chunk);
    }
    assert_eq!(n, SIZE);
    assert_eq!(hasher.finalize(), expected);
    let peak = h.stats.peak_memory.load(std::sync::atomic::Ordering::Relaxed);
    assert!(peak > 0 && peak < 64 * 1024 * 1024, "component linear memory peaked at {peak} bytes");
    eprintln!("256 MiB PUT+GET: component linear memory peak {} KiB", peak / 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_backend_secret_is_an_s3_error_not_success() {
    let h = Harness::start_with(&SHARDS, &[("secret_access_key", "not-the-secret")]).await;
    let s3 = h.client();
    let err = s3.put_object().bucket(VIRTUAL_BUCKET).key("t/b/f").body(ByteStream::from_static(b"data")).send().await.unwrap_err();
    let err = err.into_service_error();
    assert_eq!(err.meta().code(), Some("SignatureDoesNotMatch"), "{err:?}");
    assert!(h.holders("t/b/f").await.is_empty());
    let err = s3.get_object().bucket(VIRTUAL_BUCKET).key("t/b/f").send().await.unwrap_err();
    assert_eq!(err.into_service_error().meta().code(), Some("SignatureDoesNotMatch"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_is_a_500_xml_error_naming_the_variable() {
    let h = Harness::start_with(&SHARDS, &[("buckets", "shard1,shard1")]).await;
    let r = h.raw(b"GET /proxy-bucket/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(r.status, 500);
    assert_eq!(r.error_code(), Some("InternalError"));
    assert!(r.body.contains("buckets") && r.body.contains("duplicate"), "{}", r.body);
    assert!(!r.body.contains("tempo-s3-shard-local-secret"));

    let h = Harness::start_with(&SHARDS, &[("use_ssl", "maybe")]).await;
    let r = h.raw(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(r.status, 500);
    assert!(r.body.contains("use_ssl"), "{}", r.body);
}

/// The component starts with linear memory enough for a request (build.rs): growing it costs the
/// pooling allocator an `mprotect` and, when the instance is reused, a TLB shootdown on every core.
/// And no more than Spin resets with `memset`: beyond it, every request pays an `madvise`.
/// 16 buckets read their ring table (12.8 KB) from the key-value store on every request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_never_grow_the_components_memory() {
    use std::sync::atomic::Ordering::Relaxed;
    let buckets: Vec<String> = (0..16).map(|i| format!("shard{i:02}")).collect();
    let names: Vec<&str> = buckets.iter().map(String::as_str).collect();
    let h = Harness::start(&names).await;
    let s3 = h.client();
    for i in 0..4 {
        let key = format!("tenant/block-{i}/data");
        s3.put_object().bucket(VIRTUAL_BUCKET).key(&key).body(ByteStream::from(vec![7u8; 4096])).send().await.unwrap();
        s3.get_object().bucket(VIRTUAL_BUCKET).key(&key).send().await.unwrap().body.collect().await.unwrap();
        s3.head_object().bucket(VIRTUAL_BUCKET).key(&key).send().await.unwrap();
    }
    s3.list_objects_v2().bucket(VIRTUAL_BUCKET).send().await.unwrap();
    assert_eq!(h.stats.requests.load(Relaxed), 13);
    let peak = h.stats.peak_memory.load(Relaxed);
    assert_eq!(h.stats.memory_grows.load(Relaxed), 0, "memory grew past its initial size (peak {peak} bytes)");
    assert!(peak <= SPIN_KEEP_RESIDENT, "{peak} bytes of memory: Spin resets the part past {SPIN_KEEP_RESIDENT} with madvise per request");
}

/// A large object from a backend that writes small frames (s3s-fs writes 4 KiB at a time) arrives
/// whole and in order when the component splices it to the client inside the runtime (every
/// streamed answer is), in no more writes than the backend sent frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_object_sent_in_small_frames_arrives_whole_spliced() {
    let h = Harness::start(&SHARDS).await;
    for writes in large_get_writes(&h, 4).await {
        assert!((1..=LARGE / 4096).contains(&writes), "{writes} writes for {LARGE} bytes sent in 4 KiB frames");
    }
    // Whole, and counted whole: no response is in the metrics as cut (a request is counted just
    // after its answer).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let metrics = h.raw(b"GET /metrics HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n").await.body;
    let cut: Vec<&str> = metrics.lines().filter(|l| l.starts_with("tempo_s3_shard_responses_cut_total") && !l.ends_with(" 0")).collect();
    assert!(cut.is_empty(), "whole responses counted as cut: {cut:?}");
}

/// Under Spin's sockets, where a body crosses into the component frame by frame as it was read
/// (Spin joins none), a large object from a backend that writes 4 KiB frames reaches the client in
/// frames of about 16 KiB or more on average: after a small frame the component's splice waits a
/// moment before asking for more, and what arrived meanwhile comes as one frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spliced_small_frames_come_joined_under_spins_sockets() {
    let h = Harness::start_spin_sockets(&SHARDS, &[]).await;
    for writes in large_get_writes(&h, 3).await {
        assert!((1..=LARGE / (16 << 10)).contains(&writes), "{writes} writes for {LARGE} bytes sent in 4 KiB frames");
    }
}

/// The size of the object [`large_get_writes`] stores.
const LARGE: usize = 16 << 20;

/// Store a [`LARGE`] object through `h`, get it back whole `gets` times, and return how many writes
/// each answer took.
async fn large_get_writes(h: &Harness, gets: usize) -> Vec<usize> {
    use std::sync::atomic::Ordering::Relaxed;
    let s3 = h.client();
    let body: Vec<u8> = (0..LARGE).map(|i| (i % 251) as u8).collect();
    s3.put_object().bucket(VIRTUAL_BUCKET).key("t/large/data").body(ByteStream::from(body.clone())).send().await.unwrap();
    let mut writes = Vec::new();
    for _ in 0..gets {
        let before = h.stats.response_frames.load(Relaxed);
        let got = s3.get_object().bucket(VIRTUAL_BUCKET).key("t/large/data").send().await.unwrap().body.collect().await.unwrap().into_bytes();
        writes.push(h.stats.response_frames.load(Relaxed) - before);
        assert!(got == body, "the object came back changed ({} of {LARGE} bytes)", got.len());
    }
    writes
}

/// An upload that trickles in (4 KiB pieces about a millisecond apart, as over a slow link)
/// arrives whole while the runner gathers its pieces in the socket (raising the connection's
/// receive low-water mark), and the same keep-alive connection's next request, far smaller than
/// any raised mark, is answered at once: the mark went back down with the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_trickles_in_arrives_whole_and_its_connection_answers_the_next_request_at_once() {
    const SIZE: usize = 150_000; // not a multiple of 4 KiB: the last piece is short
    let h = Harness::start_with(&SHARDS, &[("allow_anonymous", "true")]).await;
    let body: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let path = format!("/{VIRTUAL_BUCKET}/t/trickle/data");
    let mut conn = common::Connection::open(h.proxy).await;
    let gap = std::time::Duration::from_micros(300);
    assert_eq!(conn.trickle("PUT", &path, &body, 4096, gap).await.0, 200);
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let (status, got) = conn.exchange("GET", &path, &[]).await;
        assert_eq!(status, 200);
        assert!(got == body, "the object came back changed ({} of {SIZE} bytes)", got.len());
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "the next request waited {:?}", started.elapsed());
        assert_eq!(conn.trickle("PUT", &path, &body, 4096, gap).await.0, 200);
    }
}

/// spin.toml joins every variable into `settings`: a request reads its whole configuration from the
/// runtime with one call (19 before), whatever it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_reads_its_configuration_with_one_variable_read() {
    use std::sync::atomic::Ordering::Relaxed;
    let h = Harness::start_with(&SHARDS, &[("backend_idle_timeout", "25"), ("key_prefix", "traces")]).await;
    let s3 = h.client();
    s3.put_object().bucket(VIRTUAL_BUCKET).key("traces/t/b/f").body(ByteStream::from_static(b"data")).send().await.unwrap();
    s3.get_object().bucket(VIRTUAL_BUCKET).key("traces/t/b/f").send().await.unwrap();
    s3.list_objects_v2().bucket(VIRTUAL_BUCKET).send().await.unwrap();
    let (requests, reads) = (h.stats.requests.load(Relaxed), h.stats.variable_reads.load(Relaxed));
    assert_eq!((requests, reads), (3, 3), "requests and variable reads");

    // A value holding the separator cannot be told apart from the next one: refused, naming settings.
    let h = Harness::start_with(&SHARDS, &[("region", "eu\u{1f}west")]).await;
    let r = h.raw(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(r.status, 500);
    assert!(r.body.contains("variable &apos;settings&apos;") && r.body.contains("U+001F"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_s3_errors_and_never_trap() {
    // Anonymous, so the raw requests reach the parser instead of stopping at authentication.
    let h = Harness::start_with(&SHARDS, &[("allow_anonymous", "true")]).await;
    let long_key = format!("GET /proxy-bucket/{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "k".repeat(1100));
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"GET /proxy-bucket/bad%zzescape HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), 400, "InvalidArgument"),
        (b"GET /proxy-bucket/bad%c3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), 400, "InvalidArgument"),
        (b"GET /proxy-bucket/nul%00key HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), 400, "InvalidArgument"),
        (long_key.into_bytes(), 400, "KeyTooLongError"),
        (b"GET /no-such-bucket/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), 404, "NoSuchBucket"),
        (b"GET /proxy-bucket?versioning HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), 501, "NotImplemented"),
        (b"PATCH /proxy-bucket/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), 405, "MethodNotAllowed"),
        (b"PUT /proxy-bucket/k HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\nConnection: close\r\n\r\n".to_vec(), 400, ""),
        (b"PUT /proxy-bucket/t/b/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n".to_vec(), 501, "NotImplemented"),
        (b"PUT /proxy-bucket/t/b/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), 411, "MissingContentLength"),
        (b"PUT /proxy-bucket/t/b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 6000000000\r\nConnection: close\r\n\r\n".to_vec(), 400, "EntityTooLarge"),
        (b"GET /proxy-bucket/k?list-type=2&prefix=%ZZ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), 400, "InvalidArgument"),
        (b"GET /proxy-bucket/k HTTP/1.1\r\nHost: x\r\nX-Amz-Content-Sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD\r\nConnection: close\r\n\r\n".to_vec(), 0, ""),
    ];
    for (request, status, code) in cases {
        let r = h.raw(&request).await;
        let shown = String::from_utf8_lossy(&request[..request.len().min(80)]).to_string();
        if status != 0 {
            assert_eq!(r.status, status, "{shown}: {}", r.body);
        }
        assert!(r.status != 500 || r.error_code() == Some("InternalError"), "{shown}: {}", r.body);
        if !code.is_empty() {
            assert_eq!(r.error_code(), Some(code), "{shown}: {}", r.body);
            assert!(r.header("content-type").is_some_and(|c| c.contains("xml")), "{shown}");
            assert!(r.header("x-amz-request-id").is_some(), "{shown}");
        }
    }
    // Still serving after all of that.
    h.client().list_buckets().send().await.unwrap();
}
