//! `tempo-s3-shard bench`: every scenario against the proxy and directly against the backend, in one run.
//!
//! Real s3s-fs backends (optionally with injected latency) and the real component run in this
//! process; a plain hyper client signs each request with SigV4 and times it. The backend joins
//! s3s-fs's 4 KiB body frames into 64 KiB ones ([`BackendOptions::min_frame`]), so per-frame costs
//! are those of a networked object store, not of s3s-fs's file reads. The proxy's client
//! credentials equal the backend's, so the same signer serves both targets. Results are printed as
//! tables of absolute figures and proxy/direct ratios, and written to `target/bench/report.json`.

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Frame, SizeHint};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tempo_s3_shard_core::clock;
use tempo_s3_shard_core::codec;
use tempo_s3_shard_core::config::Config;
use tempo_s3_shard_core::ring::Ring;
use tempo_s3_shard_core::sigv4::payload::{EMPTY_SHA256, UNSIGNED_PAYLOAD};
use tempo_s3_shard_core::sigv4::sign::SignRequest;
use tempo_s3_shard_core::sigv4;
use tempo_s3_shard_core::testing::Rng;
use tempo_s3_shard_host::backends::{BackendOptions, S3Backend, LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY};
use tempo_s3_shard_host::component::{self, Stats};
use tempo_s3_shard_host::{wasm, ComponentHost};
use wasmtime::Engine;

const VIRTUAL_BUCKET: &str = "proxy-bucket";
const REGION: &str = "us-east-1";
const SMALL: usize = 4 * 1024;
const MIB: f64 = 1024.0 * 1024.0;

type ReqBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;
type HttpClient = Client<HttpConnector, ReqBody>;

/// How long each measurement runs.
#[derive(Clone, Copy)]
struct Budget {
    /// Measured time per target, split over `rounds` alternating direct/proxy runs.
    secs: f64,
    rounds: usize,
    warmup: f64,
    /// Size of the large object (sent whole, or in 16 parts), and how often each transfer runs.
    large: u64,
    large_reps: usize,
}

impl Budget {
    fn new(quick: bool) -> Budget {
        if quick {
            Budget { secs: 0.6, rounds: 1, warmup: 0.15, large: 256 << 20, large_reps: 2 }
        } else {
            Budget { secs: 2.0, rounds: 2, warmup: 0.3, large: 1 << 30, large_reps: 3 }
        }
    }
}

/// Run the benchmark and write `target/bench/report.json`.
/// `only`: the scenario groups to run (1-2 small objects, 3 large, 4 list, 5 fixed work), or all.
pub async fn run(quick: bool, only: Option<&str>) -> anyhow::Result<()> {
    let wanted = |group: &str| only.is_none_or(|o| o.split(',').any(|g| g.trim() == group));
    let budget = Budget::new(quick);
    let started = Instant::now();
    let wasm = wasm::ensure_component()?;
    let engine = component::engine()?;
    let root = wasm::workspace_dir().join("target/bench");
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    // Backend data on tmpfs when there is one: disk flushes would dominate the small PUTs' variance.
    let shm = Path::new("/dev/shm");
    let data = if shm.is_dir() { shm.join(format!("tempo-s3-shard-bench-{}", std::process::id())) } else { root.join("data") };
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data)?;
    let _cleanup = RemoveOnDrop(data.clone());
    let mut bench = Bench { engine, wasm: wasm.clone(), data, client: http_client(), budget, seq: 0 };
    println!(
        "tempo-s3-shard bench ({}): proxy = the component {} in wasmtime; direct = the same s3s-fs backend",
        if quick { "quick" } else { "full" },
        wasm.display()
    );
    println!("every figure is measured in this run, direct and proxy alternating; latencies are per request");
    println!("the backend sends bodies in frames of 64 KiB or more, as a networked store does (s3s-fs alone: 4 KiB)");
    println!("backend data: {}\n", bench.data.display());

    let mut report = serde_json::Map::new();
    report.insert("quick".into(), json!(quick));
    report.insert("component".into(), json!(wasm.display().to_string()));
    report.insert(
        "cores".into(),
        json!(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)),
    );

    let small = if wanted("1") || wanted("2") { bench.small_objects().await? } else { Vec::new() };
    report.insert("small_objects".into(), Value::Array(small.iter().map(SmallRow::json).collect()));

    let large = if wanted("3") { bench.large_objects().await? } else { Vec::new() };
    report.insert("large_objects".into(), Value::Array(large.iter().map(LargeRow::json).collect()));

    let list = if wanted("4") { bench.listing().await? } else { Vec::new() };
    report.insert("list".into(), Value::Array(list.iter().map(ListRow::json).collect()));

    let fixed = if wanted("5") { bench.fixed_work().await? } else { Fixed::default() };
    if wanted("5") {
        print_fixed(&fixed);
    }
    report.insert("fixed_work".into(), fixed.json());

    let size = std::fs::metadata(&wasm).map(|m| m.len()).unwrap_or(0);
    println!("\n== 6. component size\n{}: {size} bytes ({:.2} MiB)", wasm.display(), size as f64 / MIB);
    report.insert("wasm_bytes".into(), json!(size));

    let goals = goals(&small, &large, &list, &fixed, size);
    print_goals(&goals);
    report.insert("goals".into(), Value::Array(goals.iter().map(Goal::json).collect()));
    report.insert("seconds".into(), json!(started.elapsed().as_secs_f64()));

    let path = root.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&Value::Object(report))?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("\nreport: {} ({:.0} s)", path.display(), started.elapsed().as_secs_f64());
    Ok(())
}

/// Removes the backend data however the run ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn http_client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector)
}

/// Shared state of one run.
struct Bench {
    engine: Engine,
    wasm: PathBuf,
    data: PathBuf,
    client: HttpClient,
    budget: Budget,
    seq: usize,
}

/// Where a request goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    Direct,
    Proxy,
}

/// A request destination: an address, and how keys map to buckets there.
#[derive(Clone)]
struct Dest {
    authority: String,
    target: Target,
    ring: Arc<Ring>,
    /// The backend bucket bucket-level requests (HeadBucket, List) address directly.
    direct_bucket: String,
}

impl Dest {
    /// The bucket a key is addressed to: the virtual bucket, or its ring owner on the backend.
    fn bucket(&self, key: &str) -> String {
        match self.target {
            Target::Direct => self.ring.owner(key).to_string(),
            Target::Proxy => VIRTUAL_BUCKET.to_string(),
        }
    }

    fn bucket_level(&self) -> String {
        match self.target {
            Target::Direct => self.direct_bucket.clone(),
            Target::Proxy => VIRTUAL_BUCKET.to_string(),
        }
    }

    fn object(&self, method: &str, key: &str, query: &[(&str, &str)], body: Option<(u64, ReqBody)>) -> hyper::Request<ReqBody> {
        sign(method, &self.authority, &self.bucket(key), Some(key), query, body)
    }
}

/// A backend and the proxy in front of it.
struct Setup {
    backend: S3Backend,
    proxy: SocketAddr,
    server: tokio::task::JoinHandle<()>,
    ring: Arc<Ring>,
    stats: Arc<Stats>,
    host: ComponentHost,
    direct_bucket: String,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.server.abort();
        self.backend.stop();
    }
}

impl Setup {
    fn dest(&self, target: Target) -> Dest {
        let authority = match target {
            Target::Direct => self.backend.addr.to_string(),
            Target::Proxy => self.proxy.to_string(),
        };
        Dest { authority, target, ring: self.ring.clone(), direct_bucket: self.direct_bucket.clone() }
    }
}

/// Sign a request with the local credentials (the backend's, which the proxy also accepts).
/// Bodies are sent as UNSIGNED-PAYLOAD, as the SDKs do over TLS, so neither side hashes them.
fn sign(
    method: &str,
    authority: &str,
    bucket: &str,
    key: Option<&str>,
    query: &[(&str, &str)],
    body: Option<(u64, ReqBody)>,
) -> hyper::Request<ReqBody> {
    let mut path = format!("/{}", codec::uri_encode(bucket, true));
    if let Some(key) = key {
        path.push('/');
        path.push_str(&codec::uri_encode(key, false));
    }
    let query: Vec<(String, String)> = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let qs = sigv4::canonical::canonical_query_string(&query);
    let path_and_query = if qs.is_empty() { path.clone() } else { format!("{path}?{qs}") };
    let amz_date = clock::amz_date(unix_now());
    let payload = if body.is_some() { UNSIGNED_PAYLOAD } else { EMPTY_SHA256 };
    let headers = vec![
        ("host".to_string(), authority.to_string()),
        ("x-amz-content-sha256".to_string(), payload.to_string()),
        ("x-amz-date".to_string(), amz_date.clone()),
    ];
    let authorization = sigv4::sign::sign_headers(&SignRequest {
        method,
        canonical_uri: &path,
        query: &query,
        headers: &headers,
        payload_hash: payload,
        access_key_id: LOCAL_ACCESS_KEY,
        secret_access_key: LOCAL_SECRET_KEY,
        region: REGION,
        service: "s3",
        amz_date: &amz_date,
    });
    let mut builder = hyper::Request::builder().method(method).uri(format!("http://{authority}{path_and_query}"));
    for (n, v) in &headers {
        builder = builder.header(n, v);
    }
    builder = builder.header("authorization", authorization);
    let body = match body {
        Some((len, body)) => {
            builder = builder.header("content-length", len);
            body
        }
        None => Empty::new().boxed(),
    };
    builder.body(body).expect("a well-formed request")
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn full(bytes: Bytes) -> (u64, ReqBody) {
    (bytes.len() as u64, Full::new(bytes).boxed())
}

/// `len` bytes made of `chunk` repeated, without holding them all in memory.
struct Repeat {
    chunk: Bytes,
    left: u64,
}

impl hyper::body::Body for Repeat {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(self.chunk.len() as u64) as usize;
        self.left -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

fn repeat(chunk: &Bytes, len: u64) -> (u64, ReqBody) {
    (len, Repeat { chunk: chunk.clone(), left: len }.boxed())
}

/// Deterministic incompressible-looking bytes.
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..len).map(|_| rng.next() as u8).collect()
}

/// Send a request and read its body, counting bytes; a non-2xx status is an error.
async fn exchange(client: &HttpClient, req: hyper::Request<ReqBody>) -> Result<u64, String> {
    let resp = client.request(req).await.map_err(|e| format!("{e:?}"))?;
    let status = resp.status();
    let mut body = resp.into_body();
    let mut bytes = 0u64;
    let mut start = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("reading the body: {e}"))?;
        if let Ok(data) = frame.into_data() {
            bytes += data.len() as u64;
            if !status.is_success() && start.len() < 400 {
                start.extend_from_slice(&data);
            }
        }
    }
    if !status.is_success() {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&start)));
    }
    Ok(bytes)
}

/// Send a request and return its status, headers and (small) body; a non-2xx status is an error.
async fn exchange_full(client: &HttpClient, req: hyper::Request<ReqBody>) -> anyhow::Result<(http::HeaderMap, Vec<u8>)> {
    let what = format!("{} {}", req.method(), req.uri());
    let resp = client.request(req).await.with_context(|| what.clone())?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.with_context(|| what.clone())?.to_bytes().to_vec();
    if !parts.status.is_success() {
        bail!("{what}: {} {}", parts.status, String::from_utf8_lossy(&body));
    }
    Ok((parts.headers, body))
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

/// The requests of one scenario.
#[derive(Clone)]
enum Op {
    /// GET one of these keys (spread over the workers).
    Get(Arc<Vec<String>>),
    /// PUT this body to a few keys per worker.
    Put(Bytes),
    HeadBucket,
    HeadObject(String),
    /// ListObjectsV2 of the whole bucket.
    List,
    /// The operator endpoint that answers where a key lives (the proxy only): a ring lookup
    /// answered by the component without a backend call.
    Locate(String),
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::Get(_) => "GET",
            Op::Put(_) => "PUT",
            Op::HeadBucket => "HeadBucket",
            Op::HeadObject(_) => "HeadObject",
            Op::List => "LIST",
            Op::Locate(_) => "locate",
        }
    }

    fn build(&self, dest: &Dest, worker: usize, i: usize) -> hyper::Request<ReqBody> {
        match self {
            Op::Get(keys) => dest.object("GET", &keys[(worker * 131 + i) % keys.len()], &[], None),
            Op::Put(body) => dest.object("PUT", &format!("bench/put-{worker}-{}/obj", i % 4), &[], Some(full(body.clone()))),
            Op::HeadBucket => sign("HEAD", &dest.authority, &dest.bucket_level(), None, &[], None),
            Op::HeadObject(key) => dest.object("HEAD", key, &[], None),
            Op::List => sign("GET", &dest.authority, &dest.bucket_level(), None, &[("list-type", "2")], None),
            Op::Locate(key) => sign("GET", &dest.authority, "_tempo-s3-shard", Some("locate"), &[("key", key)], None),
        }
    }
}

/// Latencies and volume of one or more runs.
#[derive(Default)]
struct Sample {
    latencies: Vec<Duration>,
    elapsed: Duration,
    bytes: u64,
    errors: usize,
    first_error: Option<String>,
}

impl Sample {
    fn merge(&mut self, other: Sample) {
        self.latencies.extend(other.latencies);
        self.bytes += other.bytes;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn merge_run(&mut self, other: Sample) {
        self.elapsed += other.elapsed;
        self.merge(other);
    }

    fn stats(mut self) -> Figures {
        self.latencies.sort_unstable();
        let n = self.latencies.len();
        let pct = |p: usize| {
            if n == 0 {
                0.0
            } else {
                self.latencies[(n * p / 100).min(n - 1)].as_secs_f64() * 1e6
            }
        };
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        if let Some(e) = &self.first_error {
            eprintln!("  ! {} of {n} requests failed; first: {e}", self.errors);
        }
        Figures {
            requests: n,
            p50_us: pct(50),
            p99_us: pct(99),
            ops_per_s: n as f64 / secs,
            mib_per_s: self.bytes as f64 / MIB / secs,
            errors: self.errors,
        }
    }
}

/// Summary figures of a sample.
#[derive(Clone, Copy, Debug, Default)]
struct Figures {
    requests: usize,
    p50_us: f64,
    p99_us: f64,
    ops_per_s: f64,
    mib_per_s: f64,
    errors: usize,
}

impl Figures {
    fn json(&self) -> Value {
        json!({
            "requests": self.requests, "p50_us": round(self.p50_us), "p99_us": round(self.p99_us),
            "ops_per_s": round(self.ops_per_s), "mib_per_s": round(self.mib_per_s), "errors": self.errors,
        })
    }
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn ratio(proxy: f64, direct: f64) -> f64 {
    if direct > 0.0 {
        proxy / direct
    } else {
        f64::NAN
    }
}

/// Peak resident set of this process (it hosts the component, the backend and the client).
fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Reset VmHWM to the current RSS (Linux >= 4.0), so the next reading is this phase's peak.
fn reset_hwm() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

impl Bench {
    /// A backend holding `buckets` (plus `extra` buckets the proxy does not know), and the proxy.
    async fn setup(&mut self, buckets: &[String], extra: &[String], latency: Option<Duration>) -> anyhow::Result<Setup> {
        self.seq += 1;
        let dir = self.data.join(format!("backend-{}", self.seq));
        let opts = BackendOptions { latency, min_frame: Some(64 * 1024), ..BackendOptions::default() };
        let all: Vec<String> = buckets.iter().chain(extra).cloned().collect();
        let backend = S3Backend::start(&dir, &all, opts).await?;
        let variables = HashMap::from([
            ("buckets".to_string(), buckets.join(",")),
            ("endpoint".to_string(), backend.endpoint()),
            ("access_key_id".to_string(), LOCAL_ACCESS_KEY.to_string()),
            ("secret_access_key".to_string(), LOCAL_SECRET_KEY.to_string()),
            ("client_credentials".to_string(), format!("{LOCAL_ACCESS_KEY}:{LOCAL_SECRET_KEY}")),
        ]);
        // The per-request access log is dropped rather than printed over the tables.
        let host = ComponentHost::load(&self.engine, &self.wasm, variables)?.without_stdout();
        let stats = host.stats().clone();
        let (proxy, server) = host.clone().bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let direct_bucket = extra.first().or(buckets.first()).cloned().unwrap_or_default();
        Ok(Setup { backend, proxy, server, ring: Arc::new(Ring::new(buckets)), stats, host, direct_bucket })
    }

    /// Run `op` for `secs` at `concurrency` against `dest`.
    async fn drive(&self, concurrency: usize, secs: f64, op: &Op, dest: &Dest) -> Sample {
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(secs);
        let mut tasks = Vec::new();
        for worker in 0..concurrency {
            let (client, op, dest) = (self.client.clone(), op.clone(), dest.clone());
            tasks.push(tokio::spawn(async move {
                let mut sample = Sample::default();
                let mut i = 0;
                while Instant::now() < deadline {
                    // Signed before the clock starts: both targets pay the same client-side cost.
                    let req = op.build(&dest, worker, i);
                    i += 1;
                    let t = Instant::now();
                    let result = exchange(&client, req).await;
                    sample.latencies.push(t.elapsed());
                    match result {
                        Ok(bytes) => sample.bytes += bytes,
                        Err(e) => {
                            sample.errors += 1;
                            sample.first_error.get_or_insert(e);
                        }
                    }
                }
                sample
            }));
        }
        let mut total = Sample::default();
        for t in tasks {
            if let Ok(s) = t.await {
                total.merge(s);
            }
        }
        total.elapsed = started.elapsed();
        total
    }

    /// The same requests directly and through the proxy, alternating rounds, each after a warm-up.
    async fn compare(&self, setup: &Setup, concurrency: usize, op: &Op, secs: f64) -> (Figures, Figures) {
        let rounds = self.budget.rounds;
        let (mut direct, mut proxy) = (Sample::default(), Sample::default());
        for round in 0..rounds {
            for target in [Target::Direct, Target::Proxy] {
                let dest = setup.dest(target);
                if round == 0 {
                    let _ = self.drive(concurrency, self.budget.warmup, op, &dest).await;
                }
                let s = self.drive(concurrency, secs / rounds as f64, op, &dest).await;
                match target {
                    Target::Direct => direct.merge_run(s),
                    Target::Proxy => proxy.merge_run(s),
                }
            }
        }
        (direct.stats(), proxy.stats())
    }

    /// PUT `body` under each key, `concurrency` at a time.
    async fn put_all(&self, dest: &Dest, keys: &[String], body: &Bytes, concurrency: usize) -> anyhow::Result<()> {
        for batch in keys.chunks(concurrency) {
            let puts = batch.iter().map(|key| {
                let req = dest.object("PUT", key, &[], Some(full(body.clone())));
                exchange_full(&self.client, req)
            });
            for r in futures::future::join_all(puts).await {
                r?;
            }
        }
        Ok(())
    }

    // ---- 1 and 2: small objects --------------------------------------------------------------

    async fn small_objects(&mut self) -> anyhow::Result<Vec<SmallRow>> {
        println!("== 1-2. 4 KiB objects (latency per request; ops/s over all workers; 'added' = proxy p50 - direct p50)");
        println!("{}", SmallRow::header());
        let payload = Bytes::from(pseudo_random(SMALL));
        let mut rows = Vec::new();
        for latency_ms in [0u64, 5] {
            for n in [3usize, 16] {
                let latency = (latency_ms > 0).then(|| Duration::from_millis(latency_ms));
                let setup = self.setup(&bucket_names(n), &[], latency).await?;
                let keys: Vec<String> = (0..64).map(|i| format!("bench/get-{i:03}/obj")).collect();
                self.put_all(&setup.dest(Target::Proxy), &keys, &payload, 16).await?;
                let keys = Arc::new(keys);
                for op in [Op::Get(keys.clone()), Op::Put(payload.clone())] {
                    for concurrency in [1usize, 32] {
                        let (direct, proxy) = self.compare(&setup, concurrency, &op, self.budget.secs).await;
                        let row = SmallRow { latency_ms, n, op: op.name(), concurrency, direct, proxy };
                        println!("{}", row.line());
                        rows.push(row);
                    }
                }
            }
        }
        Ok(rows)
    }

    // ---- 3: large objects --------------------------------------------------------------------

    async fn large_objects(&mut self) -> anyhow::Result<Vec<LargeRow>> {
        let size = self.budget.large;
        let parts = 16u64;
        println!(
            "\n== 3. large objects: {} MiB, single PUT, multipart PUT ({parts} x {} MiB), GET (median of {} transfers each)",
            size >> 20,
            (size / parts) >> 20,
            self.budget.large_reps
        );
        let setup = self.setup(&bucket_names(3), &[], None).await?;
        let chunk = Bytes::from(pseudo_random(1 << 20));
        // The component's memory for small requests, to compare the large transfers against.
        setup.stats.peak_memory.store(0, std::sync::atomic::Ordering::Relaxed);
        let small = Bytes::from(pseudo_random(SMALL));
        let proxy = setup.dest(Target::Proxy);
        self.put_all(&proxy, &["bench/small/obj".to_string()], &small, 1).await?;
        exchange_full(&self.client, proxy.object("GET", "bench/small/obj", &[], None)).await?;
        let baseline = setup.stats.peak_memory.load(std::sync::atomic::Ordering::Relaxed);
        println!("component peak linear memory for 4 KiB PUT+GET: {:.2} MiB", baseline as f64 / MIB);
        println!("(RSS = VmHWM of this process during the transfer: client, backend and component host together)");
        println!("{}", LargeRow::header());
        let mut rows = Vec::new();
        for what in ["PUT single", "PUT multipart", "GET"] {
            let mut row = LargeRow { op: what, ..LargeRow::default() };
            row.baseline_memory = baseline;
            // Each transfer `reps` times, direct and proxy alternating; the median counts.
            let (mut direct, mut proxy) = (Vec::new(), Vec::new());
            for _ in 0..self.budget.large_reps {
                for target in [Target::Direct, Target::Proxy] {
                    let figures = self.large_transfer(&setup, target, what, size, parts, &chunk).await?;
                    match target {
                        Target::Direct => direct.push(figures),
                        Target::Proxy => proxy.push(figures),
                    }
                }
            }
            row.direct = LargeFigures::median(direct);
            row.proxy = LargeFigures::median(proxy);
            println!("{}", row.line());
            rows.push(row);
        }
        Ok(rows)
    }

    /// One large transfer, with the peaks of the component's memory and of this process's RSS.
    async fn large_transfer(
        &self,
        setup: &Setup,
        target: Target,
        what: &str,
        size: u64,
        parts: u64,
        chunk: &Bytes,
    ) -> anyhow::Result<LargeFigures> {
        let dest = setup.dest(target);
        setup.stats.peak_memory.store(0, std::sync::atomic::Ordering::Relaxed);
        reset_hwm();
        let t = Instant::now();
        match what {
            "PUT single" => {
                let req = dest.object("PUT", "bench/large/single", &[], Some(repeat(chunk, size)));
                exchange_full(&self.client, req).await?;
            }
            "PUT multipart" => self.multipart(&dest, "bench/large/multi", size, parts, chunk).await?,
            _ => {
                let req = dest.object("GET", "bench/large/single", &[], None);
                let got = exchange(&self.client, req).await.map_err(anyhow::Error::msg)?;
                if got != size {
                    bail!("GET returned {got} bytes, expected {size}");
                }
            }
        }
        let secs = t.elapsed().as_secs_f64();
        Ok(LargeFigures {
            secs,
            mib_per_s: size as f64 / MIB / secs,
            host_hwm_kib: vm_hwm_kib(),
            component_peak: setup.stats.peak_memory.load(std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// A multipart upload of `size` bytes in `parts` equal parts, one after another.
    async fn multipart(&self, dest: &Dest, key: &str, size: u64, parts: u64, chunk: &Bytes) -> anyhow::Result<()> {
        let (_, body) = exchange_full(&self.client, dest.object("POST", key, &[("uploads", "")], None)).await?;
        let body = String::from_utf8_lossy(&body);
        let upload_id = between(&body, "<UploadId>", "</UploadId>").context("no UploadId")?.to_string();
        let mut complete = String::from("<CompleteMultipartUpload>");
        for n in 1..=parts {
            let number = n.to_string();
            let query = [("partNumber", number.as_str()), ("uploadId", upload_id.as_str())];
            let req = dest.object("PUT", key, &query, Some(repeat(chunk, size / parts)));
            let (headers, _) = exchange_full(&self.client, req).await?;
            let etag = headers.get("etag").and_then(|v| v.to_str().ok()).context("part without ETag")?;
            complete.push_str(&format!("<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"));
        }
        complete.push_str("</CompleteMultipartUpload>");
        let req = dest.object("POST", key, &[("uploadId", upload_id.as_str())], Some(full(Bytes::from(complete))));
        let (_, body) = exchange_full(&self.client, req).await?;
        if !String::from_utf8_lossy(&body).contains("CompleteMultipartUploadResult") {
            bail!("CompleteMultipartUpload failed: {}", String::from_utf8_lossy(&body));
        }
        Ok(())
    }

    // ---- 4: LIST ------------------------------------------------------------------------------

    async fn listing(&mut self) -> anyhow::Result<Vec<ListRow>> {
        const OBJECTS: usize = 200;
        const LATENCY_MS: u64 = 20;
        println!(
            "\n== 4. LIST of {OBJECTS} objects with {LATENCY_MS} ms per backend call: proxy merging N shards vs one backend bucket holding them all"
        );
        println!("{}", ListRow::header());
        let body = Bytes::from_static(b"x");
        let keys: Vec<String> = (0..OBJECTS).map(|i| format!("tenant/block-{i:04}/meta.json")).collect();
        let mut rows = Vec::new();
        for n in [1usize, 8, 32] {
            let single = vec!["bench-single".to_string()];
            let setup = self.setup(&bucket_names(n), &single, Some(Duration::from_millis(LATENCY_MS))).await?;
            let (direct, proxy) = (setup.dest(Target::Direct), setup.dest(Target::Proxy));
            self.put_all(&proxy, &keys, &body, 32).await?;
            let single_dest = Dest { ring: Arc::new(Ring::new(&single)), ..direct.clone() };
            self.put_all(&single_dest, &keys, &body, 32).await?;
            for dest in [&direct, &proxy] {
                let (_, listed) = exchange_full(&self.client, Op::List.build(dest, 0, 0)).await?;
                let count = String::from_utf8_lossy(&listed).matches("<Key>").count();
                if count != OBJECTS {
                    bail!("{:?} LIST returned {count} keys, expected {OBJECTS}", dest.target);
                }
            }
            let (d, p) = self.compare(&setup, 1, &Op::List, self.budget.secs).await;
            let row = ListRow { shards: n, direct: d, proxy: p };
            println!("{}", row.line());
            rows.push(row);
        }
        Ok(rows)
    }

    // ---- 5: fixed per-request work --------------------------------------------------------------

    async fn fixed_work(&mut self) -> anyhow::Result<Fixed> {
        println!("\n== 5. fixed per-request work");
        let mut fixed = Fixed::default();
        let endpoint = "http://127.0.0.1:9000";
        for n in [3usize, 16, 64] {
            let buckets = bucket_names(n);
            let vars = HashMap::from([
                ("buckets", buckets.join(",")),
                ("endpoint", endpoint.to_string()),
                ("access_key_id", LOCAL_ACCESS_KEY.to_string()),
                ("secret_access_key", LOCAL_SECRET_KEY.to_string()),
                ("client_credentials", format!("{LOCAL_ACCESS_KEY}:{LOCAL_SECRET_KEY}")),
            ]);
            let parse = time_per_call(2000, || {
                std::hint::black_box(Config::from_lookup(|name| vars.get(name).cloned()).is_ok());
            });
            let key = "single-tenant/0003b3c9-8689-41a6-835c-1b4ec3bd4a4e/data.parquet";
            let iters = if n > 16 { 100 } else { 500 };
            // What one request pays: a new ring and one lookup (the ring hashes every point once).
            let first = time_per_call(iters, || {
                std::hint::black_box(Ring::new(&buckets).owner_index(key));
            });
            // Two lookups: the second builds the sorted table (batch deletes, copies, resharding).
            let table = time_per_call(iters, || {
                let ring = Ring::new(&buckets);
                ring.owner_index(key);
                std::hint::black_box(ring.owner_index(key));
            });
            let built = Ring::new(&buckets);
            built.owner_index(key);
            built.owner_index(key);
            let lookup = time_per_call(20_000, || {
                std::hint::black_box(built.owner_index(key));
            });
            // What the component does with a table from the key-value store (rings of 800+ points).
            let cached = built.table_to_cache().unwrap_or_default();
            let adopt = time_per_call(iters, || {
                let ring = Ring::new(&buckets);
                let loaded = ring.load_table(cached.clone());
                std::hint::black_box(loaded.then(|| ring.owner_index(key)));
            });
            fixed.native.push(("config parse".into(), n, parse));
            fixed.native.push(("ring: new + 1 lookup".into(), n, first));
            fixed.native.push(("ring: new + 2 lookups".into(), n, table));
            fixed.native.push(("ring: lookup in table".into(), n, lookup));
            if built.cache_key().is_some() {
                fixed.native.push(("ring: cached table + lookup".into(), n, adopt));
            }
        }
        // Signing a backend request, and verifying a client's, as the proxy does once each per request.
        let req = sign("GET", "127.0.0.1:9000", "bench-shard-01", Some("single-tenant/block/data.parquet"), &[], None);
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect();
        let signing = time_per_call(5000, || {
            std::hint::black_box(sign("GET", "127.0.0.1:9000", "bench-shard-01", Some("single-tenant/block/data.parquet"), &[], None));
        });
        let inbound = sigv4::InboundRequest {
            method: "GET",
            raw_path: req.uri().path(),
            raw_query: "",
            headers: &headers,
        };
        let now = unix_now();
        let secret = |ak: &str| (ak == LOCAL_ACCESS_KEY).then(|| LOCAL_SECRET_KEY.to_string());
        if !matches!(sigv4::verify(&inbound, now, &secret, REGION), Ok(sigv4::Verified::Signed { .. })) {
            bail!("the benchmark's own signature does not verify");
        }
        let verify = time_per_call(5000, || {
            std::hint::black_box(sigv4::verify(&inbound, now, &secret, REGION).is_ok());
        });
        fixed.native.push(("SigV4 sign (request)".into(), 0, signing));
        fixed.native.push(("SigV4 verify".into(), 0, verify));

        // Wasm: the same work inside the component, seen end to end.
        let mut instantiate = 0.0;
        for n in [3usize, 16, 64] {
            let setup = self.setup(&bucket_names(n), &[], None).await?;
            if n == 3 {
                let host = setup.host.clone();
                host.instantiate_only().await?;
                let t = Instant::now();
                let count = 300;
                for _ in 0..count {
                    host.instantiate_only().await?;
                }
                instantiate = t.elapsed().as_secs_f64() * 1e6 / count as f64;
            }
            let key = "bench/head-target/obj".to_string();
            self.put_all(&setup.dest(Target::Proxy), &[key.clone()], &Bytes::from_static(b"x"), 1).await?;
            let secs = self.budget.secs / 2.0;
            let (hb_d, hb_p) = self.compare(&setup, 1, &Op::HeadBucket, secs).await;
            let (ho_d, ho_p) = self.compare(&setup, 1, &Op::HeadObject(key.clone()), secs).await;
            let proxy = setup.dest(Target::Proxy);
            let op = Op::Locate(key.clone());
            let _ = self.drive(1, self.budget.warmup, &op, &proxy).await;
            let locate = self.drive(1, secs, &op, &proxy).await.stats();
            fixed.wasm.push(WasmRow {
                n,
                head_bucket: (hb_d, hb_p),
                head_object: (ho_d, ho_p),
                locate,
                ring_us: locate.p50_us - hb_p.p50_us,
            });
        }
        fixed.native.insert(0, ("component instantiation".into(), 0, instantiate));
        Ok(fixed)
    }
}

/// Mean microseconds per call of `f` over `count` calls (after one untimed call).
fn time_per_call(count: usize, mut f: impl FnMut()) -> f64 {
    f();
    let t = Instant::now();
    for _ in 0..count {
        f();
    }
    t.elapsed().as_secs_f64() * 1e6 / count as f64
}

fn bucket_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("bench-shard-{i:02}")).collect()
}

// ---- results ------------------------------------------------------------------------------------

struct SmallRow {
    latency_ms: u64,
    n: usize,
    op: &'static str,
    concurrency: usize,
    direct: Figures,
    proxy: Figures,
}

fn us(x: f64) -> String {
    if x >= 10_000.0 {
        format!("{:.1}ms", x / 1000.0)
    } else {
        format!("{:.0}µs", x)
    }
}

impl SmallRow {
    fn header() -> String {
        format!(
            "{:>7} {:>3} {:<4} {:>4} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} | {:>8} {:>6} {:>6} {:>6}",
            "backend", "N", "op", "conc", "dir p50", "dir p99", "dir op/s", "pxy p50", "pxy p99", "pxy op/s", "added", "p50 x", "p99 x", "op/s x"
        )
    }

    fn line(&self) -> String {
        let (d, p) = (&self.direct, &self.proxy);
        format!(
            "{:>7} {:>3} {:<4} {:>4} | {:>8} {:>8} {:>8.0} | {:>8} {:>8} {:>8.0} | {:>8} {:>6.2} {:>6.2} {:>6.2}{}",
            format!("+{}ms", self.latency_ms),
            self.n,
            self.op,
            self.concurrency,
            us(d.p50_us),
            us(d.p99_us),
            d.ops_per_s,
            us(p.p50_us),
            us(p.p99_us),
            p.ops_per_s,
            us(p.p50_us - d.p50_us),
            ratio(p.p50_us, d.p50_us),
            ratio(p.p99_us, d.p99_us),
            ratio(p.ops_per_s, d.ops_per_s),
            if d.errors + p.errors > 0 { format!("  ERRORS {}/{}", d.errors, p.errors) } else { String::new() }
        )
    }

    fn json(&self) -> Value {
        json!({
            "backend_latency_ms": self.latency_ms, "buckets": self.n, "op": self.op, "concurrency": self.concurrency,
            "direct": self.direct.json(), "proxy": self.proxy.json(),
            "added_p50_us": round(self.proxy.p50_us - self.direct.p50_us),
            "ratio_p50": round(ratio(self.proxy.p50_us, self.direct.p50_us)),
            "ratio_p99": round(ratio(self.proxy.p99_us, self.direct.p99_us)),
            "ratio_throughput": round(ratio(self.proxy.ops_per_s, self.direct.ops_per_s)),
        })
    }
}

#[derive(Default, Clone, Copy)]
struct LargeFigures {
    secs: f64,
    mib_per_s: f64,
    host_hwm_kib: u64,
    component_peak: usize,
}

impl LargeFigures {
    /// The median transfer by time; memory peaks are the highest of all transfers.
    fn median(mut all: Vec<LargeFigures>) -> LargeFigures {
        all.sort_by(|a, b| a.secs.total_cmp(&b.secs));
        let mut m = all.get(all.len() / 2).copied().unwrap_or_default();
        m.host_hwm_kib = all.iter().map(|f| f.host_hwm_kib).max().unwrap_or(0);
        m.component_peak = all.iter().map(|f| f.component_peak).max().unwrap_or(0);
        m
    }
}

#[derive(Default)]
struct LargeRow {
    op: &'static str,
    direct: LargeFigures,
    proxy: LargeFigures,
    baseline_memory: usize,
}

impl LargeRow {
    fn header() -> String {
        format!(
            "{:<13} | {:>7} {:>9} {:>9} | {:>7} {:>9} {:>9} | {:>7} | {:>13}",
            "op", "dir s", "dir MiB/s", "dir RSS", "pxy s", "pxy MiB/s", "pxy RSS", "thrpt x", "wasm peak mem"
        )
    }

    fn line(&self) -> String {
        let (d, p) = (&self.direct, &self.proxy);
        format!(
            "{:<13} | {:>7.2} {:>9.0} {:>8.0}M | {:>7.2} {:>9.0} {:>8.0}M | {:>7.2} | {:>12.2}M",
            self.op,
            d.secs,
            d.mib_per_s,
            d.host_hwm_kib as f64 / 1024.0,
            p.secs,
            p.mib_per_s,
            p.host_hwm_kib as f64 / 1024.0,
            ratio(p.mib_per_s, d.mib_per_s),
            p.component_peak as f64 / MIB,
        )
    }

    fn json(&self) -> Value {
        let f = |x: &LargeFigures| {
            json!({"seconds": round(x.secs), "mib_per_s": round(x.mib_per_s), "host_vm_hwm_kib": x.host_hwm_kib})
        };
        json!({
            "op": self.op, "direct": f(&self.direct), "proxy": f(&self.proxy),
            "ratio_throughput": round(ratio(self.proxy.mib_per_s, self.direct.mib_per_s)),
            "component_peak_memory_bytes": self.proxy.component_peak,
            "component_peak_memory_small_request_bytes": self.baseline_memory,
        })
    }
}

struct ListRow {
    shards: usize,
    direct: Figures,
    proxy: Figures,
}

impl ListRow {
    fn header() -> String {
        format!(
            "{:>6} | {:>10} {:>10} | {:>10} {:>10} | {:>8} {:>8}",
            "shards", "single p50", "single p99", "merged p50", "merged p99", "p50 x", "p99 x"
        )
    }

    fn line(&self) -> String {
        let (d, p) = (&self.direct, &self.proxy);
        format!(
            "{:>6} | {:>10} {:>10} | {:>10} {:>10} | {:>8.2} {:>8.2}{}",
            self.shards,
            us(d.p50_us),
            us(d.p99_us),
            us(p.p50_us),
            us(p.p99_us),
            ratio(p.p50_us, d.p50_us),
            ratio(p.p99_us, d.p99_us),
            if d.errors + p.errors > 0 { format!("  ERRORS {}/{}", d.errors, p.errors) } else { String::new() }
        )
    }

    fn json(&self) -> Value {
        json!({
            "shards": self.shards, "single_bucket_direct": self.direct.json(), "merged_proxy": self.proxy.json(),
            "ratio_p50": round(ratio(self.proxy.p50_us, self.direct.p50_us)),
            "ratio_p99": round(ratio(self.proxy.p99_us, self.direct.p99_us)),
        })
    }
}

struct WasmRow {
    n: usize,
    head_bucket: (Figures, Figures),
    head_object: (Figures, Figures),
    /// The proxy's locate endpoint.
    locate: Figures,
    /// Locate p50 at N minus HeadBucket p50 at N=3: the ring's cost for one lookup.
    ring_us: f64,
}

#[derive(Default)]
struct Fixed {
    /// (what, buckets or 0, µs per call) measured natively in this process.
    native: Vec<(String, usize, f64)>,
    wasm: Vec<WasmRow>,
}

impl Fixed {
    /// The ring's cost in wasm at 64 buckets: locate minus HeadBucket (N=3), both answered by the component.
    fn wasm_ring64(&self) -> Option<f64> {
        self.wasm.iter().find(|r| r.n == 64).map(|r| r.ring_us)
    }

    fn json(&self) -> Value {
        json!({
            "native_us": self.native.iter().map(|(w, n, us)| json!({"work": w, "buckets": n, "us": round(*us)})).collect::<Vec<_>>(),
            "wasm_end_to_end": self.wasm.iter().map(|r| json!({
                "buckets": r.n,
                "head_bucket": {"direct": r.head_bucket.0.json(), "proxy": r.head_bucket.1.json(),
                                "added_p50_us": round(r.head_bucket.1.p50_us - r.head_bucket.0.p50_us)},
                "head_object": {"direct": r.head_object.0.json(), "proxy": r.head_object.1.json(),
                                "added_p50_us": round(r.head_object.1.p50_us - r.head_object.0.p50_us)},
                "locate": r.locate.json(),
                "ring_lookup_us": round(r.ring_us),
            })).collect::<Vec<_>>(),
            "wasm_ring_64_us": self.wasm_ring64().map(round),
        })
    }
}

fn print_fixed(fixed: &Fixed) {
    println!("native, in this process (mean per call):");
    for (what, n, us) in &fixed.native {
        let n = if *n > 0 { format!("N={n}") } else { String::new() };
        println!("  {what:<24} {n:>5} {us:>10.2} µs");
    }
    println!("in wasm, end to end at concurrency 1, p50 (HeadBucket and locate are answered by the component,");
    println!("HeadObject is forwarded; ring = locate(N) - HeadBucket(N): one lookup, with the ring's table");
    println!("read from the key-value store for N >= 8 (HeadBucket places no key, so it reads no table)):");
    println!(
        "  {:>3} | {:>10} {:>10} {:>8} | {:>10} {:>10} {:>8} | {:>10} {:>8}",
        "N", "HB direct", "HB proxy", "added", "HO direct", "HO proxy", "added", "locate", "ring"
    );
    for r in &fixed.wasm {
        println!(
            "  {:>3} | {:>10} {:>10} {:>8} | {:>10} {:>10} {:>8} | {:>10} {:>8}",
            r.n,
            us(r.head_bucket.0.p50_us),
            us(r.head_bucket.1.p50_us),
            us(r.head_bucket.1.p50_us - r.head_bucket.0.p50_us),
            us(r.head_object.0.p50_us),
            us(r.head_object.1.p50_us),
            us(r.head_object.1.p50_us - r.head_object.0.p50_us),
            us(r.locate.p50_us),
            us(r.ring_us),
        );
    }
}

struct Goal {
    what: String,
    measured: String,
    met: bool,
}

impl Goal {
    fn json(&self) -> Value {
        json!({"goal": self.what, "measured": self.measured, "met": self.met})
    }
}

fn goals(small: &[SmallRow], large: &[LargeRow], list: &[ListRow], fixed: &Fixed, wasm_bytes: u64) -> Vec<Goal> {
    let mut goals = Vec::new();
    if let Some(r) = small.iter().find(|r| r.latency_ms == 0 && r.n == 16 && r.op == "GET" && r.concurrency == 1) {
        let added = r.proxy.p50_us - r.direct.p50_us;
        goals.push(Goal {
            what: "4 KiB GET, concurrency 1, N=16: added p50 <= 0.5 ms".into(),
            measured: format!("{added:.0} µs"),
            met: added <= 500.0,
        });
    }
    let slow: Vec<&SmallRow> = small.iter().filter(|r| r.latency_ms == 5).collect();
    if let Some(worst) = slow.iter().max_by(|a, b| {
        ratio(a.proxy.p50_us, a.direct.p50_us).total_cmp(&ratio(b.proxy.p50_us, b.direct.p50_us))
    }) {
        let x = ratio(worst.proxy.p50_us, worst.direct.p50_us);
        let conc1 = slow
            .iter()
            .filter(|r| r.concurrency == 1)
            .map(|r| ratio(r.proxy.p50_us, r.direct.p50_us))
            .fold(0.0, f64::max);
        goals.push(Goal {
            what: "5 ms backend latency: proxy/direct p50 <= 1.1".into(),
            measured: format!(
                "worst {x:.2} ({} N={} conc {}); worst at concurrency 1: {conc1:.2}",
                worst.op, worst.n, worst.concurrency
            ),
            met: x <= 1.1,
        });
    }
    for r in large {
        let x = ratio(r.proxy.mib_per_s, r.direct.mib_per_s);
        goals.push(Goal {
            what: format!("large {}: >= 90% of direct throughput", r.op),
            measured: format!("{:.0}%", x * 100.0),
            met: x >= 0.9,
        });
    }
    if let Some(peak) = large.iter().map(|r| r.proxy.component_peak).max() {
        let base = large.first().map(|r| r.baseline_memory).unwrap_or(0);
        goals.push(Goal {
            what: "large objects: flat component memory (peak <= 4 KiB-request peak + 8 MiB)".into(),
            measured: format!("{:.2} MiB vs {:.2} MiB", peak as f64 / MIB, base as f64 / MIB),
            met: peak <= base + (8 << 20),
        });
    }
    for (shards, limit) in [(8usize, 1.5), (32, 2.0)] {
        if let Some(r) = list.iter().find(|r| r.shards == shards) {
            let x = ratio(r.proxy.p50_us, r.direct.p50_us);
            goals.push(Goal {
                what: format!("LIST {shards} shards <= {limit}x single bucket (p50)"),
                measured: format!("{x:.2}x"),
                met: x <= limit,
            });
        }
    }
    if let Some(ring) = fixed.wasm_ring64() {
        goals.push(Goal {
            what: "ring for 64 buckets in wasm <= 100 µs (locate - HeadBucket, N=64)".into(),
            measured: format!("{ring:.0} µs"),
            met: ring <= 100.0,
        });
    }
    goals.push(Goal {
        what: "component <= 2 MiB".into(),
        measured: format!("{:.2} MiB", wasm_bytes as f64 / MIB),
        met: wasm_bytes <= 2 << 20,
    });
    goals
}

fn print_goals(goals: &[Goal]) {
    println!("\n== goals");
    for g in goals {
        println!("  [{}] {:<72} {}", if g.met { " met " } else { "MISSED" }, g.what, g.measured);
    }
}
