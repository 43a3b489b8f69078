//! `tempo-s3-shard bench`: every scenario against the backend directly, through the original Go
//! proxy (when given) and through this project, in one run.
//!
//! Real s3s-fs backends (optionally with injected latency) and the real component run in this
//! process, the component on a runtime of its own so its CPU time can be read per operation; the
//! Go proxy (`--seed-bin`) runs as a child process, and so does the real Spin (`--spin-bin`) when it
//! serves ours instead of the runner. A plain hyper client signs each request with
//! SigV4 and times it. The backend joins s3s-fs's 4 KiB body frames into 64 KiB ones
//! ([`BackendOptions::min_frame`]) except where a row says otherwise. The proxy's client
//! credentials equal the backend's, so the same signer serves every target. Results are printed as
//! tables of absolute figures and ratios, and written to `target/bench/report.json`.

mod client;
mod cores;
mod fixed;
mod goals;
mod measure;
mod process;
mod report;
mod scenarios;
mod seed;
mod spin;

use anyhow::Context as _;
use bytes::Bytes;
use client::{exchange, exchange_full, http_client, Dest, HttpClient, Op, Target};
use measure::{Cpu, Sample};
use process::ProxyProcess;
use fixed::Fixed;
use goals::Goal;
use report::{LargeRow, ListRow, Row, SmallRow};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempo_s3_shard_core::ring::Ring;
use tempo_s3_shard_host::backends::{BackendOptions, S3Backend};
use tempo_s3_shard_host::component::{self, Stats};
use tempo_s3_shard_host::threads::{self, Threads};
use tempo_s3_shard_host::{wasm, ComponentHost};
use wasmtime::Engine;

const SMALL: usize = 4 * 1024;
const MIB: f64 = 1024.0 * 1024.0;
/// The frames the backend joins s3s-fs's 4 KiB reads into, as a networked object store sends.
const NETWORK_FRAME: usize = 64 * 1024;
/// The name of the threads the component host serves on (the proxy's CPU).
const PROXY_THREADS: &str = "bench-proxy";

/// What `tempo-s3-shard bench` was asked for.
pub struct Options {
    /// Shorter runs and 256 MiB instead of 1 GiB large objects.
    pub quick: bool,
    /// The scenario groups to run (1-2 small objects, 3 large, 4 list, 5 fixed work, 7 an HTTPS
    /// backend), or all.
    pub only: Option<String>,
    /// Run the component host with Spin's sockets (no `TCP_NODELAY`).
    pub spin_sockets: bool,
    /// Instantiate and tear down on each request's path, as Spin does (no idle work).
    pub spin_instances: bool,
    /// The original Go proxy's binary, to measure as a third target.
    pub seed_bin: Option<PathBuf>,
    /// A `spin` binary: ours is then served by `spin up` (the real Spin) instead of the runner.
    pub spin_bin: Option<PathBuf>,
    /// Under Spin, give the variables through a static provider in the runtime config instead of
    /// `SPIN_VARIABLE_*`.
    pub spin_static_variables: bool,
    /// Alternate the targets this many times per row (each round as long as by default), and
    /// take large transfers as often: on a noisy machine every target then meets the same phases.
    pub rounds: Option<usize>,
    /// Run the backend on half of the cores and the client and proxies on the other half.
    pub backend_cores: bool,
}

/// How long each measurement runs.
#[derive(Clone, Copy)]
struct Budget {
    /// Measured time per target, split over `rounds` alternating runs of the targets.
    secs: f64,
    rounds: usize,
    warmup: f64,
    /// Size of the large object (sent whole, or in 16 parts), and how often each transfer runs.
    large: u64,
    large_reps: usize,
}

impl Budget {
    fn new(quick: bool, rounds: Option<usize>) -> Budget {
        let budget = if quick {
            Budget { secs: 0.6, rounds: 1, warmup: 0.15, large: 256 << 20, large_reps: 2 }
        } else {
            Budget { secs: 2.0, rounds: 2, warmup: 0.3, large: 1 << 30, large_reps: 3 }
        };
        match rounds.filter(|n| *n > 0) {
            Some(n) => Budget { secs: budget.secs / budget.rounds as f64 * n as f64, rounds: n, large_reps: n, ..budget },
            None => budget,
        }
    }
}

/// Run the benchmark and write `target/bench/report.json`.
pub async fn run(options: &Options) -> anyhow::Result<()> {
    anyhow::ensure!(options.spin_bin.is_some() || !options.spin_static_variables, "--spin-static-variables applies to Spin: add --spin-bin PATH");
    let wanted = |group: &str| options.only.as_deref().is_none_or(|o| o.split(',').any(|g| g.trim() == group));
    let started = Instant::now();
    let wasm = wasm::ensure_component()?;
    let root = wasm::workspace_dir().join("target/bench");
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    // Backend data on tmpfs when there is one: disk flushes would dominate the small PUTs' variance.
    let shm = Path::new("/dev/shm");
    let data = if shm.is_dir() { shm.join(format!("tempo-s3-shard-bench-{}", std::process::id())) } else { root.join("data") };
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data)?;
    let _cleanup = RemoveOnDrop(data.clone());
    let split = if options.backend_cores { Some(split_cores()?) } else { None };
    let backend_runtime = BackendRuntime::new(cores::backend_runtime(split.as_ref().map(|s| s.backend.as_slice()))?);
    let tls = TestTls::load()?;
    let mut bench = Bench {
        engine: component::engine()?,
        wasm: wasm.clone(),
        data,
        client: http_client(tempo_s3_shard_host::tls::client_config(std::slice::from_ref(&tls.ca))?),
        budget: Budget::new(options.quick, options.rounds),
        seq: 0,
        spin_sockets: options.spin_sockets,
        spin_instances: options.spin_instances,
        seed_bin: options.seed_bin.clone(),
        spin_bin: options.spin_bin.clone(),
        spin_variables: if options.spin_static_variables { spin::Variables::Static } else { spin::Variables::Environment },
        backend_runtime,
        tls,
    };
    print_preamble(&bench, options, split.as_ref());

    let mut report = serde_json::Map::new();
    report.insert("quick".into(), json!(options.quick));
    report.insert("component".into(), json!(wasm.display().to_string()));
    report.insert("cores".into(), json!(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)));
    report.insert("spin_sockets".into(), json!(options.spin_sockets));
    report.insert("spin_instances".into(), json!(options.spin_instances));
    report.insert("go_proxy".into(), json!(options.seed_bin.as_ref().map(|p| p.display().to_string())));
    report.insert("spin".into(), json!(options.spin_bin.as_ref().map(|p| p.display().to_string())));
    report.insert("spin_variables".into(), json!(options.spin_bin.as_ref().map(|_| bench.spin_variables.name())));
    report.insert("anonymous".into(), json!(bench.anonymous()));
    // Under Spin, spin.toml's default.
    let ring_cache = if options.spin_bin.is_some() { "auto" } else { tempo_s3_shard_host::component::RUNNER_RING_CACHE };
    report.insert("ring_cache".into(), json!(ring_cache));
    report.insert("runner_build".into(), json!(RUNNER_BUILD));
    report.insert("backend_cores".into(), json!(split.as_ref().map(|s| &s.backend)));
    report.insert("client_and_proxy_cores".into(), json!(split.as_ref().map(|s| &s.rest)));

    let small = if wanted("1") || wanted("2") { bench.small_objects().await? } else { Vec::new() };
    report.insert("small_objects".into(), Value::Array(small.iter().map(SmallRow::json).collect()));

    let large = if wanted("3") { bench.large_objects().await? } else { Vec::new() };
    report.insert("large_objects".into(), Value::Array(large.iter().map(LargeRow::json).collect()));

    let list = if wanted("4") { bench.listing().await? } else { Vec::new() };
    report.insert("list".into(), Value::Array(list.iter().map(ListRow::json).collect()));

    let fixed = if wanted("5") { bench.fixed_work().await? } else { Fixed::default() };
    if wanted("5") {
        fixed::print_fixed(&fixed);
    }
    report.insert("fixed_work".into(), fixed.json());

    let size = std::fs::metadata(&wasm).map(|m| m.len()).unwrap_or(0);
    println!("\n== 6. component size\n{}: {size} bytes ({:.2} MiB)", wasm.display(), size as f64 / MIB);
    report.insert("wasm_bytes".into(), json!(size));

    let (https_small, https_large) = if wanted("7") { bench.https_backend().await? } else { (Vec::new(), Vec::new()) };
    report.insert(
        "https_backend".into(),
        json!({"small_objects": https_small.iter().map(SmallRow::json).collect::<Vec<_>>(),
               "large_objects": https_large.iter().map(LargeRow::json).collect::<Vec<_>>()}),
    );

    let small: Vec<SmallRow> = small.into_iter().chain(https_small).collect();
    let large: Vec<LargeRow> = large.into_iter().chain(https_large).collect();
    let goals = goals::goals(&small, &large, &list, &fixed, size);
    goals::print_goals(&goals);
    report.insert("goals".into(), Value::Array(goals.iter().map(Goal::json).collect()));
    report.insert("seconds".into(), json!(started.elapsed().as_secs_f64()));

    let path = root.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&Value::Object(report))?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("\nreport: {} ({:.0} s)", path.display(), started.elapsed().as_secs_f64());
    Ok(())
}

/// How this runner was built: Spin is a release build, so its figures are the ones to compare.
const RUNNER_BUILD: &str = if cfg!(debug_assertions) { "dev" } else { "release" };

/// What the preamble adds for a dev build.
const RELEASE_HINT: &str = " (`cargo run --release -p tempo-s3-shard-host -- bench` measures an optimised one, as Spin is)";

/// Split the cores for `--backend-cores` and confine this process's threads to the client's half.
fn split_cores() -> anyhow::Result<cores::Split> {
    let allowed = cores::allowed()?;
    let split = cores::Split::halves(&allowed).with_context(|| format!("--backend-cores needs at least 2 cores; this process may use {allowed:?}"))?;
    cores::pin_process(&split.rest)?;
    Ok(split)
}

fn print_preamble(bench: &Bench, options: &Options, split: Option<&cores::Split>) {
    println!(
        "tempo-s3-shard bench ({}): ours = the component {} in wasmtime; direct = the same s3s-fs backend",
        if options.quick { "quick" } else { "full" },
        bench.wasm.display()
    );
    println!("the runner (wasmtime, hyper, the backends) is a {RUNNER_BUILD} build{}", if cfg!(debug_assertions) { RELEASE_HINT } else { "" });
    if let Some(bin) = &options.seed_bin {
        println!("go = the original Go proxy {} (its own process); go and ours serve anonymous requests", bin.display());
    }
    if let Some(split) = split {
        println!(
            "the backend runs on cores {:?}, the client and the proxies on {:?} (as S3 runs on other machines)",
            split.backend, split.rest
        );
    }
    if options.spin_sockets && options.spin_bin.is_none() {
        println!("ours runs with Spin's sockets: no TCP_NODELAY on its accepted or outbound connections");
    }
    match (&options.spin_bin, options.spin_instances) {
        (Some(bin), _) => println!(
            "ours = the same component under the real Spin: `{} up` on the project's spin.toml (its own process group, whose CPU is ours; the runner serves nothing, and the component's memory is not read), its variables {}",
            bin.display(),
            match bench.spin_variables {
                spin::Variables::Environment => "as SPIN_VARIABLE_* (--spin-static-variables: a static provider in the runtime config)",
                spin::Variables::Static => "from a static provider in the runtime config (runtime-config.toml's example)",
            }
        ),
        (None, true) => println!("ours instantiates as each request arrives and tears down as it ends, as Spin does"),
        (None, false) => println!("ours makes each request's instance, and tears the last one down, while its thread waits on the backend (--spin-instances: on the request's path, as Spin)"),
    }
    println!("every figure is measured in this run, the targets alternating ({} rounds per row, {} transfers per large row); latencies are per request;", bench.budget.rounds, bench.budget.large_reps);
    println!("cpu/op = the proxy's CPU time (its runtime's threads, or the process it runs in and those it started) per request");
    if options.spin_bin.is_some() {
        println!("ours keeps spin.toml's ring_cache (auto): rings under 8 buckets hashed per request, larger ones' tables in Spin's SQLite key-value store");
    } else {
        println!(
            "ours reads every ring's table from the runner's in-process key-value store (ring_cache={}; spin.toml's default, auto, hashes rings under 8 buckets per request)",
            tempo_s3_shard_host::component::RUNNER_RING_CACHE
        );
    }
    println!("the backend sends bodies in frames of 64 KiB or more, as a networked store does, unless a row says otherwise");
    println!("backend data: {}\n", bench.data.display());
}

/// Removes the backend data however the run ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The backends' own runtime, shut down without blocking the bench's.
struct BackendRuntime {
    handle: tokio::runtime::Handle,
    /// Taken when dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl BackendRuntime {
    fn new(runtime: tokio::runtime::Runtime) -> BackendRuntime {
        BackendRuntime { handle: runtime.handle().clone(), runtime: Some(runtime) }
    }
}

impl Drop for BackendRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Shared state of one run.
struct Bench {
    engine: Engine,
    wasm: PathBuf,
    data: PathBuf,
    client: HttpClient,
    budget: Budget,
    seq: usize,
    spin_sockets: bool,
    spin_instances: bool,
    seed_bin: Option<PathBuf>,
    spin_bin: Option<PathBuf>,
    /// How Spin is given the variables.
    spin_variables: spin::Variables,
    /// Where the backends run (on their own cores with `--backend-cores`).
    backend_runtime: BackendRuntime,
    /// What an HTTPS backend serves and its clients trust.
    tls: TestTls,
}

/// How the backend is reached: as most benchmarks run, or as AWS S3 is (its clients, the direct
/// target included, then speak TLS to it; the proxies' own clients still speak plain HTTP).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wire {
    Http,
    Https,
}

/// The test CA and the certificate for 127.0.0.1 it signed (tests/data/tls, test-only material).
struct TestTls {
    /// The CA certificate (DER), and its PEM file (the Go proxy reads it through `SSL_CERT_FILE`).
    ca: Vec<u8>,
    ca_pem: PathBuf,
    /// The server certificate and its PKCS#8 key (DER).
    server: Vec<u8>,
    key: Vec<u8>,
}

impl TestTls {
    fn load() -> anyhow::Result<TestTls> {
        let dir = wasm::workspace_dir().join("tests/data/tls");
        let read = |name: &str| std::fs::read(dir.join(name)).with_context(|| format!("cannot read {}", dir.join(name).display()));
        Ok(TestTls { ca: read("ca.der")?, ca_pem: dir.join("ca.pem"), server: read("server.der")?, key: read("server.key.der")? })
    }
}

/// A backend, this project's proxy in front of it (on a runtime of its own), and the Go proxy.
struct Setup {
    backend: S3Backend,
    proxy: SocketAddr,
    /// The threads the component host serves on (one per core, as the Go proxy may use every
    /// core); their CPU time is the proxy's. Held: dropping it stops them. None under Spin.
    _server: Option<Threads>,
    go: Option<ProxyProcess>,
    /// `spin up` serving ours, with `--spin-bin`.
    spin: Option<ProxyProcess>,
    ring: Arc<Ring>,
    stats: Arc<Stats>,
    host: ComponentHost,
    direct_bucket: String,
    anonymous: bool,
    wire: Wire,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.backend.stop();
    }
}

impl Setup {
    fn dest(&self, target: Target) -> Dest {
        let authority = match target {
            Target::Direct => self.backend.addr.to_string(),
            Target::Go => self.go.as_ref().map(|g| g.addr.to_string()).unwrap_or_default(),
            Target::Proxy => self.proxy.to_string(),
        };
        let anonymous = self.anonymous && target != Target::Direct;
        let https = self.wire == Wire::Https && target == Target::Direct;
        Dest { authority, target, ring: self.ring.clone(), direct_bucket: self.direct_bucket.clone(), anonymous, https }
    }

    /// The targets of a comparison: direct, the Go proxy when there is one, ours.
    fn targets(&self) -> Vec<Target> {
        let go = self.go.as_ref().map(|_| Target::Go);
        [Some(Target::Direct), go, Some(Target::Proxy)].into_iter().flatten().collect()
    }

    /// How the CPU time of `target` is read.
    fn cpu(&self, target: Target) -> Option<Cpu> {
        match target {
            Target::Direct => None,
            Target::Go => self.go.as_ref().map(|g| Cpu::Process(g.pid())),
            Target::Proxy => Some(self.spin.as_ref().map_or(Cpu::Threads(PROXY_THREADS), |s| Cpu::Process(s.pid()))),
        }
    }
}

impl Bench {
    /// Whether the proxies serve anonymous requests (to compare with the Go proxy, which has no
    /// client authentication).
    fn anonymous(&self) -> bool {
        self.seed_bin.is_some()
    }

    /// A backend holding `buckets` (plus `extra` buckets the proxies do not know), reached over
    /// `wire`, and the proxies (the Go proxy only with `go`, and when the run has one).
    async fn setup(&mut self, buckets: &[String], extra: &[String], latency: Option<Duration>, go: bool, wire: Wire) -> anyhow::Result<Setup> {
        self.setup_with(buckets, extra, latency, go, wire, &[]).await
    }

    /// [`Bench::setup`] with `vars` set on our proxy besides the backend's.
    async fn setup_with(
        &mut self,
        buckets: &[String],
        extra: &[String],
        latency: Option<Duration>,
        go: bool,
        wire: Wire,
        vars: &[(&str, &str)],
    ) -> anyhow::Result<Setup> {
        let go_bin = self.seed_bin.clone().filter(|_| go);
        self.seq += 1;
        let dir = self.data.join(format!("backend-{}", self.seq));
        let tls = (wire == Wire::Https).then(|| (vec![self.tls.server.clone()], self.tls.key.clone()));
        let opts = BackendOptions { latency, min_frame: Some(NETWORK_FRAME), tls, ..BackendOptions::default() };
        let all: Vec<String> = buckets.iter().chain(extra).cloned().collect();
        let backend_dir = dir.clone();
        let backend = self.backend_runtime.handle.spawn(async move { S3Backend::start(&backend_dir, &all, opts).await }).await??;
        let mut variables = backend.proxy_variables(buckets);
        variables.extend(vars.iter().map(|(name, value)| (name.to_string(), value.to_string())));
        if go_bin.is_some() {
            // As the Go proxy (which has no client authentication), and Tempo's setup with empty keys.
            variables.remove("client_credentials");
            variables.insert("allow_anonymous".into(), "true".into());
        }
        // The per-request access log is dropped rather than printed over the tables.
        let mut host = ComponentHost::load(&self.engine, &self.wasm, variables.clone())?
            .without_stdout()
            .spin_sockets(self.spin_sockets)
            .with_ca_roots(std::slice::from_ref(&self.tls.ca))?;
        // `load` took idle work from the environment; --spin-instances turns it off, as in the runner.
        if self.spin_instances {
            host = host.idle_work(false);
        }
        let stats = host.stats().clone();
        let (server, spin) = match &self.spin_bin {
            Some(bin) => (None, Some(spin::up(bin, &dir, &self.wasm, &variables, self.spin_variables, &self.tls.ca_pem).await?)),
            None => (Some(Threads::bind(&host, SocketAddr::from(([127, 0, 0, 1], 0)), threads::per_core(), PROXY_THREADS)?), None),
        };
        let proxy = match (&server, &spin) {
            (Some(server), _) => server.addr(),
            (None, spin) => spin.as_ref().map(|s| s.addr).context("neither the runner nor Spin serves ours")?,
        };
        let go = match &go_bin {
            Some(bin) => Some(seed::start(bin, &dir, &backend.endpoint(), buckets, &self.tls.ca_pem).await?),
            None => None,
        };
        let direct_bucket = extra.first().or(buckets.first()).cloned().unwrap_or_default();
        let ring = Arc::new(Ring::new(buckets));
        let anonymous = go.is_some();
        Ok(Setup { backend, proxy, _server: server, go, spin, ring, stats, host, direct_bucket, anonymous, wire })
    }

    /// Run `op` for `secs` at `concurrency` against `dest`, reading `cpu` around it.
    async fn drive(&self, concurrency: usize, secs: f64, op: &Op, dest: &Dest, cpu: Option<Cpu>) -> Sample {
        let started = Instant::now();
        let cpu_before = cpu.map(|c| c.read());
        let deadline = started + Duration::from_secs_f64(secs);
        let mut tasks = Vec::new();
        for worker in 0..concurrency {
            let (client, op, dest) = (self.client.clone(), op.clone(), dest.clone());
            tasks.push(tokio::spawn(async move {
                let mut sample = Sample::default();
                let mut i = 0;
                while Instant::now() < deadline {
                    // Signed before the clock starts: every target pays the same client-side cost.
                    let req = op.build(&dest, worker, i);
                    i += 1;
                    let t = Instant::now();
                    let result = exchange(&client, req).await;
                    sample.record(t.elapsed(), result);
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
        if let (Some(cpu), Some(before)) = (cpu, cpu_before) {
            total.cpu = Some(cpu.read().since(&before));
        }
        total
    }

    /// The same requests against every target, alternating rounds, each after a warm-up.
    async fn compare(&self, setup: &Setup, concurrency: usize, op: &Op, secs: f64) -> Row {
        let targets = setup.targets();
        let mut samples: Vec<Sample> = targets.iter().map(|_| Sample::default()).collect();
        for round in 0..self.budget.rounds {
            for (target, total) in targets.iter().zip(samples.iter_mut()) {
                let dest = setup.dest(*target);
                if round == 0 {
                    let _ = self.drive(concurrency, self.budget.warmup, op, &dest, None).await;
                }
                let s = self.drive(concurrency, secs / self.budget.rounds as f64, op, &dest, setup.cpu(*target)).await;
                total.merge_run(s);
            }
        }
        let mut row = Row::default();
        for (target, sample) in targets.into_iter().zip(samples) {
            row.set(target, sample.stats());
        }
        row
    }

    /// PUT `body` under each key, `concurrency` at a time.
    async fn put_all(&self, dest: &Dest, keys: &[String], body: &Bytes, concurrency: usize) -> anyhow::Result<()> {
        for batch in keys.chunks(concurrency) {
            let puts = batch.iter().map(|key| {
                let req = dest.object("PUT", key, &[], Some(client::full(body.clone())));
                exchange_full(&self.client, req)
            });
            for r in futures::future::join_all(puts).await {
                r?;
            }
        }
        Ok(())
    }
}

fn bucket_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("bench-shard-{i:02}")).collect()
}
