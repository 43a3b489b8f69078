//! `rebalance` after adding a fourth bucket to a populated three-bucket ring: every object ends on its
//! ring owner, byte-identical and exactly once, also when a run is interrupted and run again; a dry run
//! changes nothing; an owner's newer object wins over a stray and real conflicts are left alone.

use crate::common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use common::{s3_client, start_proxy, temp_dir, Harness, VIRTUAL_BUCKET};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tempo_s3_shard_core::ring::Ring;
use tempo_s3_shard_core::testing::Rng;
use tempo_s3_shard_host::backends::{BackendOptions, S3Backend, LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY};
use tempo_s3_shard_host::ring_plan::pseudo_uuid;
use tempo_s3_shard_host::rebalance::{self, Endpoint, Options, Progress, Report};

const OLD: [&str; 3] = ["shard1", "shard2", "shard3"];
const NEW: [&str; 4] = ["shard1", "shard2", "shard3", "shard4"];

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn new_ring() -> Ring {
    Ring::new(&names(&NEW))
}

/// Deterministic bytes of a given length (not all alike, so a mix-up between objects shows).
fn bytes_for(seed: &str, len: usize) -> Vec<u8> {
    // FNV-1a of the seed, made odd so the generator never starts at zero.
    let fnv = seed.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let mut rng = Rng(fnv | 1);
    (0..len).map(|_| rng.next() as u8).collect()
}

/// Three backend buckets behind the proxy plus an empty fourth, populated through the proxy with
/// Tempo-shaped blocks. Returns the objects written (key -> bytes).
async fn populated() -> (Harness, BTreeMap<String, Vec<u8>>) {
    let h = Harness::start(&OLD).await;
    h.direct().create_bucket().bucket("shard4").send().await.unwrap();
    let s3 = h.client();
    let mut objects = BTreeMap::new();
    for i in 0..36u64 {
        let block = format!("tenant-{}/{}", i % 3, pseudo_uuid(i));
        for (file, len) in [("meta.json", 200 + i as usize), ("data.parquet", 4096 + 977 * i as usize), ("bloom-0", 64)] {
            objects.insert(format!("{block}/{file}"), bytes_for(&format!("{block}/{file}"), len));
        }
    }
    for t in 0..3 {
        let key = format!("tenant-{t}/index.json.gz");
        objects.insert(key.clone(), bytes_for(&key, 300));
    }
    for (key, data) in &objects {
        s3.put_object()
            .bucket(VIRTUAL_BUCKET)
            .key(key)
            .body(ByteStream::from(data.clone()))
            .content_type("application/octet-stream")
            .metadata("origin", "rebalance-test")
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
    }
    (h, objects)
}

fn endpoint(h: &Harness) -> Endpoint {
    Endpoint {
        endpoint: h.backend_endpoint(),
        use_ssl: false,
        region: "us-east-1".into(),
        access_key_id: LOCAL_ACCESS_KEY.into(),
        secret_access_key: LOCAL_SECRET_KEY.into(),
        ca_roots: vec![],
    }
}

/// Four buckets, the three before as the previous ring; small pages so listing paginates.
fn options() -> Options {
    Options { buckets: names(&NEW), previous_buckets: names(&OLD), page_size: 7, concurrency: 4, ..Options::default() }
}

async fn rebalance(h: &Harness, opts: &Options) -> Report {
    let report = rebalance::run(&endpoint(h), opts, &Progress::default()).await.expect("rebalance runs");
    println!("{report}");
    report
}

/// Every key of every backend bucket, listed directly (paginated): key -> buckets holding it.
async fn backend_state(direct: &Client) -> BTreeMap<String, Vec<String>> {
    let mut state: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for bucket in NEW {
        let mut token = None;
        loop {
            let page = direct.list_objects_v2().bucket(bucket).max_keys(50).set_continuation_token(token).send().await.unwrap();
            for o in page.contents() {
                state.entry(o.key().unwrap().to_string()).or_default().push(bucket.to_string());
            }
            token = page.next_continuation_token().map(String::from);
            if token.is_none() {
                break;
            }
        }
    }
    state
}

async fn get(s3: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let got = s3.get_object().bucket(bucket).key(key).send().await.unwrap_or_else(|e| panic!("get {bucket}/{key}: {e:?}"));
    got.body.collect().await.unwrap().into_bytes().to_vec()
}

/// Nothing lost, nothing duplicated: every object exactly once, on its four-bucket owner, byte-identical,
/// with its metadata.
async fn assert_all_on_owner(h: &Harness, objects: &BTreeMap<String, Vec<u8>>) {
    let direct = h.direct();
    let ring = new_ring();
    let state = backend_state(&direct).await;
    let expected: BTreeMap<String, Vec<String>> = objects.keys().map(|k| (k.clone(), vec![ring.owner(k).to_string()])).collect();
    assert_eq!(state, expected, "every key exactly once, on its ring owner");
    for (key, data) in objects {
        let owner = ring.owner(key);
        let got = direct.get_object().bucket(owner).key(key).send().await.unwrap();
        assert_eq!(got.metadata().and_then(|m| m.get("origin")).map(String::as_str), Some("rebalance-test"), "{key}");
        assert_eq!(got.content_type(), Some("application/octet-stream"), "{key}");
        assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), data.as_slice(), "{key} bytes");
    }
}

/// The proxy on the four-bucket ring, with or without the three-bucket ring as `previous_buckets`.
async fn new_proxy(h: &Harness, previous: bool) -> (Client, common::Server) {
    let mut vars = HashMap::from([
        ("buckets".to_string(), NEW.join(",")),
        ("endpoint".to_string(), h.backend_endpoint()),
        ("access_key_id".to_string(), LOCAL_ACCESS_KEY.to_string()),
        ("secret_access_key".to_string(), LOCAL_SECRET_KEY.to_string()),
        ("client_credentials".to_string(), format!("{LOCAL_ACCESS_KEY}:{LOCAL_SECRET_KEY}")),
    ]);
    if previous {
        vars.insert("previous_buckets".to_string(), OLD.join(","));
    }
    let (addr, server, _) = start_proxy(vars).await;
    (s3_client(&format!("http://{addr}"), LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY), server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_after_adding_a_bucket_moves_every_misplaced_object_once() {
    let (h, objects) = populated().await;
    let ring = new_ring();
    let misplaced: Vec<&String> = objects.keys().filter(|k| ring.owner(k) != h.owner(k)).collect();
    let misplaced_bytes: u64 = misplaced.iter().map(|k| objects[*k].len() as u64).sum();
    assert!(!misplaced.is_empty() && misplaced.len() < objects.len() / 2, "about a quarter moves ({})", misplaced.len());

    // Before rebalancing, the new ring reads everything through its fallback to the previous ring.
    let (proxy, _server) = new_proxy(&h, true).await;
    for (key, data) in &objects {
        assert_eq!(&get(&proxy, VIRTUAL_BUCKET, key).await, data, "{key} through the four-bucket proxy before rebalance");
    }

    // A dry run reports exactly the misplaced objects and changes nothing.
    let before = backend_state(&h.direct()).await;
    let dry = rebalance(&h, &Options { dry_run: true, ..options() }).await;
    assert_eq!(dry.total_objects, objects.len() as u64);
    assert_eq!(dry.misplaced_objects, misplaced.len() as u64);
    assert_eq!(dry.misplaced_bytes, misplaced_bytes);
    assert_eq!(dry.moved, 0);
    assert!(dry.routes.keys().all(|(_, to)| to == "shard4"), "adding a bucket only moves objects to it: {:?}", dry.routes);
    assert_eq!(dry.routes.values().map(|r| r.0).sum::<u64>(), misplaced.len() as u64);
    assert_eq!(backend_state(&h.direct()).await, before, "a dry run moves nothing");

    // The CLI's dry run with the Go proxy's config.json (its buckets are the previous ring) agrees.
    let dir = temp_dir("rebalance-config");
    let config = dir.join("config.json");
    let go = serde_json::json!({
        "endpoint": h.backend_endpoint(), "access_key_id": LOCAL_ACCESS_KEY, "secret_access_key": LOCAL_SECRET_KEY,
        "use_ssl": false, "buckets": OLD,
    });
    std::fs::write(&config, go.to_string()).unwrap();
    let args = ["--config", config.to_str().unwrap(), "--buckets", &NEW.join(","), "--dry-run", "--quiet"];
    rebalance::main(args.iter().map(|s| s.to_string()).collect()).await.expect("CLI dry run");
    assert_eq!(backend_state(&h.direct()).await, before, "the CLI's dry run moves nothing");

    let report = rebalance(&h, &options()).await;
    assert!(report.complete(), "{report}");
    assert_eq!(report.moved, misplaced.len() as u64);
    assert_eq!(report.moved_bytes, misplaced_bytes);
    assert_eq!(report.already_at_owner + report.superseded + report.vanished, 0);
    assert_all_on_owner(&h, &objects).await;

    // Readable through the proxy with the fallback, and through one without it (everything is on its owner).
    let (plain, _server2) = new_proxy(&h, false).await;
    for (key, data) in &objects {
        assert_eq!(&get(&proxy, VIRTUAL_BUCKET, key).await, data, "{key} through the proxy with previous_buckets");
        assert_eq!(&get(&plain, VIRTUAL_BUCKET, key).await, data, "{key} through the proxy without previous_buckets");
    }

    // Running it again finds nothing to do.
    let again = rebalance(&h, &options()).await;
    assert!(again.complete(), "{again}");
    assert_eq!((again.misplaced_objects, again.moved), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_rebalance_resumes_to_the_same_state() {
    let (h, objects) = populated().await;
    let ring = new_ring();
    let misplaced: Vec<String> = objects.keys().filter(|k| ring.owner(k) != h.owner(k)).cloned().collect();
    assert!(misplaced.len() >= 12, "enough misplaced objects to interrupt ({})", misplaced.len());

    // A staged run stops after five keys: those are moved, the rest untouched.
    let staged = rebalance(&h, &Options { max_moves: Some(5), ..options() }).await;
    assert!(staged.stopped_early && !staged.complete());
    assert_eq!(staged.moved, 5);
    let state = backend_state(&h.direct()).await;
    let on_owner = misplaced.iter().filter(|k| state[*k] == vec![ring.owner(k).to_string()]).count();
    let on_old = misplaced.iter().filter(|k| state[*k] == vec![h.owner(k)]).count();
    assert_eq!((on_owner, on_old), (5, misplaced.len() - 5), "exactly five moved, none duplicated");

    // A run killed while it works (the task is aborted mid-request).
    let progress = Arc::new(Progress::default());
    let ep = endpoint(&h);
    let task = {
        let (progress, ep) = (progress.clone(), ep.clone());
        let opts = Options { concurrency: 1, ..options() };
        tokio::spawn(async move { rebalance::run(&ep, &opts, &progress).await })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while progress.handled.load(Ordering::Relaxed) < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    task.abort();
    let _ = task.await;
    let handled = progress.handled.load(Ordering::Relaxed);
    assert!((3..misplaced.len() as u64 - 5).contains(&handled), "killed part-way ({handled} handled)");

    // A crash between copy and delete: the owner already holds the copy, the stray is still there.
    let state = backend_state(&h.direct()).await;
    let pending: Vec<&String> = misplaced.iter().filter(|k| state[*k] == vec![h.owner(k)]).collect();
    assert!(!pending.is_empty(), "the killed run left work to do");
    let half_done = pending[0];
    h.direct()
        .copy_object()
        .bucket(ring.owner(half_done))
        .key(half_done)
        .copy_source(format!("{}/{}", h.owner(half_done), half_done))
        .send()
        .await
        .unwrap();

    // A copy cut off part-way on a backend that stores bytes and metadata apart (s3s-fs): the owner
    // holds the same bytes without the metadata. It is copied again, not taken as done.
    assert!(pending.len() >= 2, "two half-done objects to stage");
    let bare = pending[1];
    put(&h.direct(), ring.owner(bare), bare, &objects[bare]).await;

    let resumed = rebalance(&h, &options()).await;
    assert!(resumed.complete(), "{resumed}");
    assert!(resumed.already_at_owner >= 1, "the half-done object is recognised at its owner: {resumed}");
    assert_eq!(resumed.moved + resumed.already_at_owner, resumed.misplaced_objects, "{resumed}");
    assert_all_on_owner(&h, &objects).await;
}

/// A key whose four-bucket owner is `owner` and which the test places by hand.
fn key_owned_by(owner: &str, name: &str) -> String {
    let ring = new_ring();
    (0..)
        .map(|i| format!("tenant-x/{}/{name}", pseudo_uuid(1000 + i)))
        .find(|k| ring.owner(k) == owner)
        .unwrap()
}

async fn put(s3: &Client, bucket: &str, key: &str, body: &[u8]) {
    s3.put_object().bucket(bucket).key(key).body(ByteStream::from(body.to_vec())).send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_owner_copies_win_and_conflicts_are_left_alone() {
    let h = Harness::start(&OLD).await;
    let s3 = h.direct();
    s3.create_bucket().bucket("shard4").send().await.unwrap();
    let superseded = key_owned_by("shard4", "superseded");
    let conflict = key_owned_by("shard4", "conflict");
    let identical = key_owned_by("shard2", "identical");
    let two_strays = key_owned_by("shard4", "two-strays");

    // Older: the stray of `superseded`, the owner's `conflict`, one stray of `two_strays`.
    put(&s3, "shard1", &superseded, b"old stray").await;
    put(&s3, "shard4", &conflict, b"old owner").await;
    put(&s3, "shard1", &two_strays, b"older stray").await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // LastModified has a resolution of one second
    put(&s3, "shard4", &superseded, b"newer owner").await;
    put(&s3, "shard2", &conflict, b"newer stray").await;
    put(&s3, "shard3", &two_strays, b"newest stray").await;
    put(&s3, "shard2", &identical, b"same").await;
    put(&s3, "shard3", &identical, b"same").await;

    let report = rebalance(&h, &options()).await;
    assert_eq!(report.misplaced_objects, 5, "{report}");
    assert_eq!(report.moved, 1, "the newest of two strays is copied: {report}");
    assert_eq!(report.superseded, 2, "older strays under a newer owner object are deleted: {report}");
    assert_eq!(report.already_at_owner, 1, "{report}");
    assert_eq!(report.conflicts.len(), 1, "{report}");
    assert_eq!(report.conflicts[0].key, conflict);
    assert!(report.errors.is_empty(), "{report}");
    assert!(!report.complete());

    let state = backend_state(&s3).await;
    assert_eq!(state[&superseded], ["shard4"]);
    assert_eq!(get(&s3, "shard4", &superseded).await, b"newer owner");
    assert_eq!(state[&identical], ["shard2"]);
    assert_eq!(state[&two_strays], ["shard4"]);
    assert_eq!(get(&s3, "shard4", &two_strays).await, b"newest stray");
    assert_eq!(state[&conflict], ["shard2", "shard4"], "a conflict keeps both copies");
    assert_eq!(get(&s3, "shard4", &conflict).await, b"old owner");
    assert_eq!(get(&s3, "shard2", &conflict).await, b"newer stray");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_objects_are_copied_part_by_part_with_their_metadata() {
    let h = Harness::start(&OLD).await;
    let s3 = h.direct();
    s3.create_bucket().bucket("shard4").send().await.unwrap();
    let big = key_owned_by("shard4", "data.parquet");
    let small = key_owned_by("shard4", "meta.json");
    let data = bytes_for("big", 11 * 1024 * 1024 + 3);
    s3.put_object()
        .bucket("shard1")
        .key(&big)
        .body(ByteStream::from(data.clone()))
        .content_type("application/vnd.apache.parquet")
        .metadata("origin", "big")
        .send()
        .await
        .unwrap();
    put(&s3, "shard2", &small, b"{}").await;

    let opts = Options { multipart_threshold: 1024 * 1024, part_size: 1, ..options() };
    let report = rebalance(&h, &opts).await;
    assert!(report.complete(), "{report}");
    assert_eq!(report.moved, 2);
    let state = backend_state(&s3).await;
    assert_eq!((state[&big].as_slice(), state[&small].as_slice()), (&["shard4".to_string()][..], &["shard4".to_string()][..]));
    let got = s3.get_object().bucket("shard4").key(&big).send().await.unwrap();
    assert!(got.e_tag().unwrap().ends_with("-3\""), "three 5 MiB parts: {:?}", got.e_tag());
    assert_eq!(got.content_type(), Some("application/vnd.apache.parquet"));
    assert_eq!(got.metadata().and_then(|m| m.get("origin")).map(String::as_str), Some("big"));
    assert!(got.body.collect().await.unwrap().into_bytes().as_ref() == data.as_slice(), "big object bytes");
    assert_eq!(get(&s3, "shard4", &small).await, b"{}");
}

/// Tags travel with the object on both copy paths (moto: s3s-fs keeps no tags).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_are_kept_on_both_copy_paths() {
    let h = Harness::start_moto(&NEW, &[]).await;
    let s3 = h.direct();
    let big = key_owned_by("shard4", "data.parquet");
    let small = key_owned_by("shard4", "meta.json");
    let big_data = bytes_for("big", 6 * 1024 * 1024);
    for (key, data) in [(&big, big_data.clone()), (&small, b"{}".to_vec())] {
        s3.put_object()
            .bucket("shard1")
            .key(key)
            .body(ByteStream::from(data))
            .tagging("retention=short&tenant=x")
            .metadata("origin", "tagged")
            .send()
            .await
            .unwrap();
    }
    let opts = Options { multipart_threshold: 1024 * 1024, part_size: 1, ..options() };
    let report = rebalance(&h, &opts).await;
    assert!(report.complete(), "{report}");
    assert_eq!(report.moved, 2, "{report}");
    for key in [&big, &small] {
        assert!(s3.head_object().bucket("shard1").key(key).send().await.is_err(), "{key} left on shard1");
        let tags = s3.get_object_tagging().bucket("shard4").key(key).send().await.unwrap();
        let mut tags: Vec<(String, String)> = tags.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
        tags.sort();
        assert_eq!(tags, [("retention".to_string(), "short".to_string()), ("tenant".to_string(), "x".to_string())], "{key}");
        let head = s3.head_object().bucket("shard4").key(key).send().await.unwrap();
        assert_eq!(head.metadata().and_then(|m| m.get("origin")).map(String::as_str), Some("tagged"), "{key}");
    }
    assert_eq!(get(&s3, "shard4", &big).await, big_data);
}

/// Over HTTPS the backend's certificate is verified: trusted through `ca_roots` it works, else nothing moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_speaks_https_and_verifies_the_certificate() {
    let tls = |f: &str| std::fs::read(format!("{}/tests/data/tls/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let root = temp_dir("rebalance-tls");
    let opts = BackendOptions { tls: Some((vec![tls("server.der")], tls("server.key.der"))), ..BackendOptions::default() };
    let backend = S3Backend::start(&root, &names(&NEW), opts).await.unwrap();
    assert!(backend.endpoint().starts_with("https://"));
    // Objects placed as files (s3s-fs serves a bucket directory's files as its objects).
    let keys: Vec<String> = ["shard1", "shard2", "shard3", "shard4"].iter().map(|b| key_owned_by(b, "data.parquet")).collect();
    for (i, key) in keys.iter().enumerate() {
        let path = backend.object_path(OLD[(i + 1) % 3], key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes_for(key, 5000)).unwrap();
    }
    let mut ep = Endpoint {
        endpoint: backend.endpoint(),
        use_ssl: true,
        region: "us-east-1".into(),
        access_key_id: LOCAL_ACCESS_KEY.into(),
        secret_access_key: LOCAL_SECRET_KEY.into(),
        ca_roots: vec![],
    };
    let untrusted = rebalance::run(&ep, &options(), &Progress::default()).await;
    let err = format!("{:#}", untrusted.expect_err("a certificate from an unknown CA must be refused"));
    assert!(err.contains("TLS"), "{err}");
    for (i, key) in keys.iter().enumerate() {
        assert!(backend.object_path(OLD[(i + 1) % 3], key).exists(), "nothing moved without trust");
    }

    ep.ca_roots = vec![tls("ca.der")];
    let report = rebalance::run(&ep, &options(), &Progress::default()).await.expect("rebalance over https");
    println!("{report}");
    assert!(report.complete(), "{report}");
    let ring = new_ring();
    let misplaced = keys.iter().enumerate().filter(|(i, k)| OLD[(i + 1) % 3] != ring.owner(k)).count() as u64;
    assert_eq!((report.total_objects, report.moved), (4, misplaced));
    for key in &keys {
        for b in NEW {
            let path = backend.object_path(b, key);
            if b == ring.owner(key) {
                assert_eq!(std::fs::read(&path).unwrap(), bytes_for(key, 5000), "{key} on {b}");
            } else {
                assert!(!path.exists(), "{key} left on {b}");
            }
        }
    }
}
