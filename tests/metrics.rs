//! The runner's Prometheus metrics: a known workload through the real component, then `GET /metrics`
//! parsed as the text exposition format and checked per operation, status and shard.

use crate::common;

use aws_sdk_s3::primitives::ByteStream;
use common::{Harness, VIRTUAL_BUCKET};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// One sample: metric name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A Prometheus text-format (0.0.4) parser: every sample line, checking that each belongs to a family
/// announced by `# TYPE` before it.
fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = vec![];
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("bad TYPE line {line:?}"));
            assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind), "{line}");
            assert!(types.insert(name.to_string(), kind.to_string()).is_none(), "family {name} announced twice");
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let sample = parse_sample(line);
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| sample.name.strip_suffix(s).filter(|f| types.get(*f).is_some_and(|k| k == "histogram")))
            .unwrap_or(&sample.name);
        assert!(types.contains_key(family), "sample {line:?} has no # TYPE before it");
        samples.push(sample);
    }
    samples
}

/// `name{a="x",b="y\"z"} 12.5`
fn parse_sample(line: &str) -> Sample {
    let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("bad sample {line:?}"));
    let name = line[..name_end].to_string();
    assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'), "bad metric name in {line:?}");
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            if c == '}' {
                end = Some(i);
                break;
            }
            if c == ',' {
                continue;
            }
            let eq = inner[i..].find('=').unwrap_or_else(|| panic!("bad label in {line:?}")) + i;
            let key = inner[i..eq].to_string();
            while chars.peek().is_some_and(|(j, _)| *j <= eq) {
                chars.next();
            }
            assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "label value must be quoted in {line:?}");
            let mut value = String::new();
            loop {
                match chars.next().unwrap_or_else(|| panic!("unterminated label value in {line:?}")) {
                    (_, '"') => break,
                    (_, '\\') => match chars.next().map(|(_, c)| c) {
                        Some('n') => value.push('\n'),
                        Some(c @ ('\\' | '"')) => value.push(c),
                        other => panic!("bad escape {other:?} in {line:?}"),
                    },
                    (_, c) => value.push(c),
                }
            }
            labels.insert(key, value);
        }
        let end = end.unwrap_or_else(|| panic!("unterminated labels in {line:?}"));
        rest = &inner[end + 1..];
    }
    let value = rest.trim();
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")),
    };
    Sample { name, labels, value }
}

/// The parsed metrics, with lookups by name and labels.
struct Scrape(Vec<Sample>);

impl Scrape {
    /// The sum of the samples named `name` whose labels include all of `want` (0 when none match).
    fn sum(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|s| s.name == name && want.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
            .map(|s| s.value)
            .sum()
    }
}

async fn scrape(h: &Harness) -> (String, Scrape) {
    let r = h.raw(b"GET /metrics HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("content-type").is_some_and(|t| t.starts_with("text/plain; version=0.0.4")), "{:?}", r.headers);
    let samples = parse_exposition(&r.body);
    (r.body, Scrape(samples))
}

/// Scrape until `requests` client requests are recorded (each is recorded just after its answer).
async fn scrape_after(h: &Harness, requests: f64) -> (String, Scrape) {
    for _ in 0..100 {
        let (text, s) = scrape(h).await;
        if s.sum("tempo_s3_shard_requests_total", &[]) >= requests {
            return (text, s);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (text, _) = scrape(h).await;
    panic!("the metrics never counted {requests} requests:\n{text}");
}

/// 16 shards: large enough a ring for its table to go through the key-value store.
fn shards() -> Vec<String> {
    (1..=16).map(|i| format!("shard{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_known_workload_per_operation_status_and_shard() {
    let names = shards();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let h = Harness::start(&refs).await;
    let s3 = h.client();
    let keys: Vec<String> = (0..8).map(|i| format!("tenant/block-{i}/data")).collect();
    let size = |i: usize| 1000 + i * 517;
    for (i, k) in keys.iter().enumerate() {
        let body = vec![b'x'; size(i)];
        s3.put_object().bucket(VIRTUAL_BUCKET).key(k).body(ByteStream::from(body)).send().await.unwrap();
    }
    for k in &keys[..5] {
        s3.get_object().bucket(VIRTUAL_BUCKET).key(k).send().await.unwrap().body.collect().await.unwrap();
    }
    let missing = ["tenant/nope-1/data", "tenant/nope-2/data"];
    for k in missing {
        assert!(s3.get_object().bucket(VIRTUAL_BUCKET).key(k).send().await.is_err());
    }
    s3.head_object().bucket(VIRTUAL_BUCKET).key(&keys[0]).send().await.unwrap();
    let listed = s3.list_objects_v2().bucket(VIRTUAL_BUCKET).prefix("tenant/").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(8));
    s3.delete_object().bucket(VIRTUAL_BUCKET).key(&keys[7]).send().await.unwrap();
    let other = h.raw(b"GET /other-bucket/k HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n").await;
    assert_eq!(other.status / 100, 4);

    let (text, m) = scrape_after(&h, 19.0).await;
    let requests = |op: &str, class: &str| m.sum("tempo_s3_shard_requests_total", &[("operation", op), ("status_class", class)]);
    assert_eq!(requests("PutObject", "2xx"), 8.0, "{text}");
    assert_eq!(requests("GetObject", "2xx"), 5.0, "{text}");
    assert_eq!(requests("GetObject", "4xx"), 2.0, "{text}");
    assert_eq!(requests("HeadObject", "2xx"), 1.0, "{text}");
    assert_eq!(requests("ListObjectsV2", "2xx"), 1.0, "{text}");
    assert_eq!(requests("DeleteObject", "2xx"), 1.0, "{text}");
    assert_eq!(requests("Invalid", "4xx"), 1.0, "{text}");
    assert_eq!(m.sum("tempo_s3_shard_requests_total", &[]), 19.0, "{text}");
    assert_eq!(m.sum("tempo_s3_shard_request_duration_seconds_count", &[("operation", "PutObject")]), 8.0);
    assert_eq!(m.sum("tempo_s3_shard_http_requests_total", &[("method", "PUT"), ("path", "/proxy-bucket/*"), ("status_code", "200")]), 8.0, "{text}");
    assert_eq!(m.sum("tempo_s3_shard_http_requests_total", &[("method", "GET"), ("status_code", "404")]), 2.0 + f64::from(other.status == 404), "{text}");

    // Bytes: what the client sent and got, at least the bodies (plus framing and error documents).
    let put_bytes: usize = (0..8).map(size).sum();
    let got_bytes: usize = (0..5).map(size).sum();
    let bytes_in = m.sum("tempo_s3_shard_request_bytes_total", &[("operation", "PutObject")]);
    assert!(bytes_in >= put_bytes as f64 && bytes_in < (put_bytes + 8 * 2048) as f64, "{bytes_in} for {put_bytes}\n{text}");
    let bytes_out = m.sum("tempo_s3_shard_response_bytes_total", &[("operation", "GetObject")]);
    assert!(bytes_out >= got_bytes as f64 && bytes_out < (got_bytes + 2 * 2048) as f64, "{bytes_out} for {got_bytes}\n{text}");
    assert_eq!(m.sum("tempo_s3_shard_object_size_bytes_count", &[("operation", "put")]), 8.0);
    assert_eq!(m.sum("tempo_s3_shard_object_size_bytes_sum", &[("operation", "put")]), put_bytes as f64, "{text}");

    // Per shard: writes (the hash distribution) and backend calls, against the ring.
    let mut writes: BTreeMap<String, f64> = BTreeMap::new();
    for k in &keys {
        *writes.entry(h.owner(k)).or_default() += 1.0;
    }
    assert!(writes.len() > 1, "the workload should spread over shards: {writes:?}");
    for shard in &names {
        let want = writes.get(shard).copied().unwrap_or(0.0);
        assert_eq!(m.sum("tempo_s3_shard_hash_distribution_total", &[("bucket", shard)]), want, "{shard}\n{text}");
        let puts = m.sum("tempo_s3_shard_s3_operations_total", &[("operation", "put"), ("bucket", shard), ("status", "success")]);
        assert_eq!(puts, want, "backend puts on {shard}\n{text}");
        let lists = m.sum("tempo_s3_shard_s3_operations_total", &[("operation", "list"), ("bucket", shard), ("status", "success")]);
        assert_eq!(lists, 1.0, "one listing asks every shard once: {shard}\n{text}");
        let gets = keys[..5].iter().filter(|k| h.owner(k) == *shard).count() as f64;
        assert_eq!(m.sum("tempo_s3_shard_s3_operations_total", &[("operation", "get"), ("bucket", shard), ("status", "success")]), gets, "{shard}");
        let misses = missing.iter().filter(|k| h.owner(k) == *shard).count() as f64;
        assert_eq!(m.sum("tempo_s3_shard_s3_operations_total", &[("operation", "get"), ("bucket", shard), ("status", "error")]), misses, "{shard}");
        assert_eq!(m.sum("tempo_s3_shard_bucket_operations_total", &[("bucket", shard), ("operation", "put")]), want, "{shard}");
    }
    assert_eq!(m.sum("tempo_s3_shard_s3_operation_duration_seconds_count", &[("operation", "list")]), 16.0);
    assert_eq!(m.sum("tempo_s3_shard_backend_timeouts_total", &[]), 0.0);

    // Listing fan-out: one listing, 16 shards asked.
    assert_eq!(m.sum("tempo_s3_shard_list_fanout_buckets_count", &[]), 1.0, "{text}");
    assert_eq!(m.sum("tempo_s3_shard_list_fanout_buckets_sum", &[]), 16.0, "{text}");
    assert_eq!(m.sum("tempo_s3_shard_list_operations_total", &[("prefix", "tenant/")]), 1.0, "{text}");

    // The ring table: hashed and stored by the first request that placed a key, read back after.
    let misses = m.sum("tempo_s3_shard_ring_cache_lookups_total", &[("result", "miss")]);
    let hits = m.sum("tempo_s3_shard_ring_cache_lookups_total", &[("result", "hit")]);
    assert!(misses >= 1.0 && hits >= 10.0, "ring cache: {misses} misses, {hits} hits\n{text}");
    assert_eq!(m.sum("tempo_s3_shard_config_errors_total", &[]), 0.0);
    // The scrape itself is answered by the host, not the component: no request counted for it.
    let (_, again) = scrape(&h).await;
    assert_eq!(again.sum("tempo_s3_shard_requests_total", &[]), 19.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_errors_are_counted() {
    let h = Harness::start_with(&["shard1", "shard2"], &[("buckets", "")]).await;
    let r = h.raw(b"GET /proxy-bucket/a/b/c HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n").await;
    assert_eq!(r.status, 500, "{}", r.body);
    let (text, m) = scrape_after(&h, 1.0).await;
    assert_eq!(m.sum("tempo_s3_shard_config_errors_total", &[]), 1.0, "{text}");
    assert_eq!(m.sum("tempo_s3_shard_requests_total", &[("operation", "Invalid"), ("status_class", "5xx")]), 1.0, "{text}");
}

#[test]
fn the_parser_reads_the_text_format() {
    let text = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\",y=\"q\\\"\\\\\\n\"} 3\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.5\nh_count 2\n";
    let s = parse_exposition(text);
    assert_eq!(s.len(), 4);
    assert_eq!(s[0].labels["y"], "q\"\\\n");
    assert_eq!(s[0].value, 3.0);
    assert_eq!(s[1].labels["le"], "+Inf");
    assert!(std::panic::catch_unwind(|| parse_exposition("b_total 1\n")).is_err(), "a sample without TYPE must fail");
}

/// Rings given in `ring_tables` (as `ring-plan --tables` prints them) are looked up in neither the
/// store nor by hashing, and place every key as hashing does; a stale table is reported by the
/// health check and the store takes over again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_tables_spare_the_store_and_place_every_key_on_its_owner() {
    let shards = ["shard1", "shard2", "shard3"];
    let names: Vec<String> = shards.iter().map(|s| s.to_string()).collect();
    let current = tempo_s3_shard_host::ring_plan::ring_tables(&names, None, "");
    let stale = tempo_s3_shard_host::ring_plan::ring_tables(&names[..2], None, "");
    for (tables, adopted) in [(current, 1), (stale, 0)] {
        let h = Harness::start_with(&shards, &[("ring_tables", tables.as_str()), ("allow_anonymous", "true")]).await;
        let s3 = h.client();
        for block in 0..4 {
            let key = format!("tenant/block-{block}/data");
            s3.put_object().bucket(VIRTUAL_BUCKET).key(&key).body(ByteStream::from_static(b"x")).send().await.unwrap();
            assert_eq!(h.holders(&key).await, vec![h.owner(&key)], "{key} must land on its ring owner");
        }
        let health = h.raw(b"GET /_tempo-s3-shard/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
        let health: serde_json::Value = serde_json::from_str(&health.body).unwrap_or_else(|e| panic!("{e}: {} {:?}", health.status, health.body));
        assert_eq!(health["ring_tables"]["adopted"], adopted, "{health}");
        assert_eq!(health["ring_tables"]["stale"].is_string(), adopted == 0, "{health}");
        let (text, m) = scrape_after(&h, 5.0).await;
        let lookups = m.sum("tempo_s3_shard_ring_cache_lookups_total", &[]);
        // The runner keeps every ring in its store (ring_cache=always): only a ring without its
        // table looks there.
        assert_eq!(lookups == 0.0, adopted == 1, "{lookups} store lookups with {adopted} tables adopted\n{text}");
    }
}
