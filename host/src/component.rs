//! Runs the real `.wasm` component the way Spin does: wasmtime + wasi:http, Spin variables, one
//! instance per request, served over HTTP/1.1 with hyper; outbound connections (plain HTTP and
//! HTTPS) are pooled across requests, as Spin's outbound HTTP pools them; the Spin key-value store
//! `default` lives in memory for as long as the host runs.

use crate::frames::Joined;
use anyhow::{anyhow, Context as _};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use crate::observe::Observer;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::outbound::Outbound;
use crate::pool::{self, Pool};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "tempo-s3-shard:component/spin-host",
        with: { "fermyon:spin/key-value.store": super::KvStore },
    });
}

use bindings::fermyon::spin::{key_value, variables};

/// The host's key-value stores: only `default`, in memory, shared by every instance.
pub type KeyValues = Arc<std::sync::Mutex<HashMap<String, Vec<u8>>>>;

/// An open key-value store, as a guest resource.
pub struct KvStore(KeyValues);

/// The most linear memory one component instance may use; far above what streaming needs.
pub const MEMORY_LIMIT: usize = 256 * 1024 * 1024;

/// The bytes of a finished instance's linear memory that Spin 3.6's pooling allocator resets with
/// `memset` (`SPIN_WASMTIME_LINEAR_MEMORY_KEEP_RESIDENT`, 2 MiB); it gives the rest back with
/// `madvise` (a system call and a TLB shootdown per request). The component's initial memory
/// (build.rs) is no larger, so a request that does not grow it is reset by `memset` alone.
pub const SPIN_KEEP_RESIDENT: usize = 2 << 20;

/// A compiled component, ready to instantiate per request.
#[derive(Clone)]
pub struct ComponentHost {
    pre: ProxyPre<RequestState>,
    variables: Arc<HashMap<String, String>>,
    key_values: KeyValues,
    stats: Arc<Stats>,
    outbound: Outbound,
    /// Feeds the metrics; copies the component's stdout (its access log) to ours unless told not to.
    observer: Observer,
    /// Whether `GET /metrics` on the proxy's own port answers with the metrics.
    pub(crate) metrics_on_port: bool,
    /// Whether accepted and outbound connections set `TCP_NODELAY` (off in the Spin-faithful mode).
    pub(crate) nodelay: bool,
    /// Whether response frames are counted in [`Stats::response_frames`] (tests only: it wraps
    /// every response body).
    count_frames: bool,
    /// Free instance slots; a request holds one for its instance's lifetime.
    slots: Arc<tokio::sync::Semaphore>,
    pool: Pool,
    /// Whether serving threads instantiate and tear down while they wait (see [`crate::idle`]).
    pub(crate) idle_work: bool,
}

/// The runner's `ring_cache` unless one is set: its key-value store is a map in this process, which
/// answers faster than any ring hashes (spin.toml's `auto` suits a store over the network).
pub const RUNNER_RING_CACHE: &str = "always";

/// The environment variable that turns on [`ComponentHost::spin_sockets`] (value `1`).
pub const SPIN_SOCKETS_VAR: &str = "TEMPO_S3_SHARD_SPIN_SOCKETS";

/// Whether [`SPIN_SOCKETS_VAR`] asks for Spin's socket behaviour.
pub fn spin_sockets_from_env() -> bool {
    std::env::var(SPIN_SOCKETS_VAR).is_ok_and(|v| v == "1")
}

/// Counters the tests and benchmarks read.
#[derive(Default, Debug)]
pub struct Stats {
    /// The largest linear memory any instance grew to, in bytes.
    pub peak_memory: AtomicUsize,
    /// Requests handled.
    pub requests: AtomicUsize,
    /// Requests answered 503 SlowDown because no instance was free in time.
    pub overloaded: AtomicUsize,
    /// Requests answered 500 by the host because the component failed before it answered.
    pub failed: AtomicUsize,
    /// Calls of Spin's `variables.get`.
    pub variable_reads: AtomicUsize,
    /// Requests served by an instance its thread made before they arrived ([`crate::idle`]).
    pub made_ahead: AtomicUsize,
    /// Times an instance's linear memory grew past its initial size (each costs the pooling
    /// allocator an `mprotect` now and at reuse).
    pub memory_grows: AtomicUsize,
    /// Data frames of the response bodies the component wrote: one write from the component each
    /// (counted only after [`ComponentHost::counting_frames`]).
    pub response_frames: AtomicUsize,
}

/// Per-request store data: WASI and wasi:http contexts, and the Spin variables.
pub struct RequestState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    variables: Arc<HashMap<String, String>>,
    key_values: KeyValues,
    limiter: MemoryLimiter,
    outbound: Outbound,
    observer: Observer,
}

struct MemoryLimiter {
    stats: Arc<Stats>,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if desired > MEMORY_LIMIT {
            return Ok(false);
        }
        // Instantiation "grows" a memory from nothing to its initial size.
        if current > 0 {
            self.stats.memory_grows.fetch_add(1, Ordering::Relaxed);
        }
        self.stats.peak_memory.fetch_max(desired, Ordering::Relaxed);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.outbound }
    }
}

impl variables::Host for RequestState {
    fn get(&mut self, name: String) -> Result<String, variables::Error> {
        self.limiter.stats.variable_reads.fetch_add(1, Ordering::Relaxed);
        self.variables.get(&name).cloned().ok_or(variables::Error::Undefined(name))
    }
}

impl key_value::Host for RequestState {}

impl key_value::HostStore for RequestState {
    fn open(&mut self, label: String) -> Result<wasmtime::component::Resource<KvStore>, key_value::Error> {
        if label != "default" {
            return Err(key_value::Error::NoSuchStore);
        }
        self.table.push(KvStore(self.key_values.clone())).map_err(|e| key_value::Error::Other(e.to_string()))
    }

    fn get(
        &mut self,
        store: wasmtime::component::Resource<KvStore>,
        key: String,
    ) -> Result<Option<Vec<u8>>, key_value::Error> {
        let value = self.kv(&store)?.get(&key).cloned();
        self.observer.ring_cache(value.is_some());
        Ok(value)
    }

    fn set(
        &mut self,
        store: wasmtime::component::Resource<KvStore>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), key_value::Error> {
        self.kv(&store)?.insert(key, value);
        Ok(())
    }

    fn delete(&mut self, store: wasmtime::component::Resource<KvStore>, key: String) -> Result<(), key_value::Error> {
        self.kv(&store)?.remove(&key);
        Ok(())
    }

    fn exists(&mut self, store: wasmtime::component::Resource<KvStore>, key: String) -> Result<bool, key_value::Error> {
        Ok(self.kv(&store)?.contains_key(&key))
    }

    fn get_keys(&mut self, store: wasmtime::component::Resource<KvStore>) -> Result<Vec<String>, key_value::Error> {
        Ok(self.kv(&store)?.keys().cloned().collect())
    }

    fn drop(&mut self, store: wasmtime::component::Resource<KvStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

impl RequestState {
    /// The contents of an open store.
    fn kv(
        &self,
        store: &wasmtime::component::Resource<KvStore>,
    ) -> Result<std::sync::MutexGuard<'_, HashMap<String, Vec<u8>>>, key_value::Error> {
        let store = self.table.get(store).map_err(|e| key_value::Error::Other(e.to_string()))?;
        store.0.lock().map_err(|_| key_value::Error::Other("the store is poisoned".into()))
    }
}

/// The wasmtime engine configured as Spin configures it for HTTP: pooling allocator sized for
/// [`Pool::from_env`] (Spin's 1,000 instances by default), async.
pub fn engine() -> anyhow::Result<Engine> {
    engine_for(&Pool::from_env()?)
}

/// As [`engine`], with the pooling allocator sized for `pool`.
pub fn engine_for(pool: &Pool) -> anyhow::Result<Engine> {
    let mut config = wasmtime::Config::new();
    // For profiling: `perf` then names the component's functions (with a non-stripped build).
    if std::env::var_os("TEMPO_S3_SHARD_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let mut pooling = wasmtime::PoolingAllocationConfig::default();
    pool.configure(&mut pooling);
    pooling.max_memory_size(MEMORY_LIMIT);
    // Reset a finished instance's memory with memset (of the pages it touched, where the kernel has
    // PAGEMAP_SCAN; Spin 3.6 leaves it off and sets all of its 2 MiB) instead of madvise: the next
    // instance takes no page faults, and no TLB shootdown interrupts the other cores.
    pooling.linear_memory_keep_resident(SPIN_KEEP_RESIDENT).table_keep_resident(64 << 10);
    pooling.pagemap_scan(wasmtime::Enabled::Auto);
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pooling));
    Engine::new(&config).map_err(|e| anyhow!("{e:?}"))
}

impl ComponentHost {
    /// Compile the component at `wasm` (or load it from the compiled cache next to it) and link it
    /// against WASI, wasi:http and Spin's variables: the app variables `variables` (unset ones
    /// take spin.toml's defaults, but `ring_cache` is [`RUNNER_RING_CACHE`]), resolved into the
    /// component's as spin.toml maps them.
    pub fn load(engine: &Engine, wasm: &Path, mut variables: HashMap<String, String>) -> anyhow::Result<ComponentHost> {
        variables.entry("ring_cache".into()).or_insert_with(|| RUNNER_RING_CACHE.into());
        let variables = crate::manifest::component_variables(&variables)?;
        let component = compile_cached(engine, wasm)?;
        let mut linker = Linker::<RequestState>::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow!("{e:?}"))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(|e| anyhow!("{e:?}"))?;
        variables::add_to_linker::<RequestState, HasSelf<RequestState>>(&mut linker, |s| s)
            .map_err(|e| anyhow!("{e:?}"))?;
        key_value::add_to_linker::<RequestState, HasSelf<RequestState>>(&mut linker, |s| s)
            .map_err(|e| anyhow!("{e:?}"))?;
        let pre = ProxyPre::new(linker.instantiate_pre(&component).map_err(|e| anyhow!("{e:?}"))?)
            .map_err(|e| anyhow!("{e:?}"))?;
        let observer = Observer::new(Arc::default());
        let host = ComponentHost {
            pre,
            variables: Arc::new(variables),
            key_values: KeyValues::default(),
            stats: Arc::default(),
            outbound: Outbound::new(observer.clone(), true, crate::tls::client_config(&[])?),
            observer,
            metrics_on_port: true,
            nodelay: true,
            count_frames: false,
            slots: Arc::new(tokio::sync::Semaphore::new(Pool::default().instances as usize)),
            pool: Pool::default(),
            idle_work: crate::idle::on_from_env(),
        };
        Ok(host.spin_sockets(spin_sockets_from_env()))
    }

    /// Spin's socket behaviour (`on`): accepted and outbound connections without `TCP_NODELAY`,
    /// as Spin 3.6 leaves them, so a response or request whose head and body leave in separate
    /// writes stalls on the peer's delayed ACK (~40 ms) here as it does under `spin up`; and bodies
    /// cross into the component frame by frame as they were read, not joined (`crate::frames`).
    /// Off (the default unless [`SPIN_SOCKETS_VAR`] is `1`): every connection sets `TCP_NODELAY`.
    pub fn spin_sockets(mut self, on: bool) -> ComponentHost {
        if self.nodelay != on {
            return self;
        }
        self.nodelay = !on;
        self.with_own_pool()
    }

    /// The same host with an outbound connection pool of its own (a serving thread's: a pooled
    /// connection is driven by a task on the runtime that opened it).
    pub fn with_own_pool(&self) -> ComponentHost {
        ComponentHost { outbound: self.outbound.own_pools(self.nodelay), ..self.clone() }
    }

    /// Run at most `pool.instances` instances at once (give the engine the same pool, see
    /// [`engine_for`]); a request waits up to `pool.wait` for a free one, then is answered 503 SlowDown.
    pub fn with_pool(mut self, pool: Pool) -> ComponentHost {
        self.slots = Arc::new(tokio::sync::Semaphore::new(pool.instances as usize));
        self.pool = pool;
        self
    }

    /// Trust these CA certificates (DER) for HTTPS backends, besides the public web PKI.
    pub fn with_ca_roots(mut self, roots: &[Vec<u8>]) -> anyhow::Result<ComponentHost> {
        self.outbound = Outbound::new(self.observer.clone(), self.nodelay, crate::tls::client_config(roots)?);
        Ok(self)
    }

    /// Drop what the component prints to stdout (its per-request access log), e.g. in benchmarks.
    pub fn without_stdout(mut self) -> ComponentHost {
        self.observer.set_echo(false);
        self
    }

    /// Count the data frames of every response in [`Stats::response_frames`] (for tests: it costs
    /// a wrapper per response and an atomic add per frame, so serving does without it).
    pub fn counting_frames(mut self) -> ComponentHost {
        self.count_frames = true;
        self
    }

    /// Answer `GET /metrics` only elsewhere (`crate::service::serve_metrics`), not on the proxy's port.
    pub fn without_metrics_on_port(mut self) -> ComponentHost {
        self.metrics_on_port = false;
        self
    }

    /// The metrics every request feeds.
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        self.observer.metrics()
    }

    /// The `default` key-value store's contents (shared with the running host).
    pub fn key_values(&self) -> &KeyValues {
        &self.key_values
    }

    /// The host's counters (requests, the component's peak memory).
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// A fresh store for one request.
    fn store(&self) -> Store<RequestState> {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stderr();
        let observer = self.observer.for_request();
        wasi.stdout(observer.stdout());
        let state = RequestState {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            variables: self.variables.clone(),
            key_values: self.key_values.clone(),
            limiter: MemoryLimiter { stats: self.stats.clone() },
            outbound: self.outbound.observed_by(observer.clone()),
            observer,
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.limiter);
        store
    }

    /// Whether serving threads ([`crate::threads::Threads`]) instantiate the next request's instance
    /// and tear down finished ones while they wait on backends (`on`, the default unless
    /// [`crate::idle::IDLE_WORK_VAR`] is `0`), or as each request arrives and ends, as Spin does.
    pub fn idle_work(mut self, on: bool) -> ComponentHost {
        self.idle_work = on;
        self
    }

    /// The engine the component was compiled for.
    pub(crate) fn engine(&self) -> &Engine {
        self.pre.engine()
    }

    /// A fresh instance, made at once (nothing in instantiation waits); `None` if it fails (the
    /// pool is full), in which case the request instantiates as it arrives.
    pub(crate) fn instantiate_now(&self) -> Option<crate::idle::Spare> {
        use futures::FutureExt as _;
        let mut store = self.store();
        let proxy = self.pre.instantiate_async(&mut store).now_or_never()?.ok()?;
        Some((store, proxy))
    }

    /// Create a store and instantiate the component without calling it: the per-request setup
    /// cost, for the benchmark.
    pub async fn instantiate_only(&self) -> anyhow::Result<()> {
        let mut store = self.store();
        self.pre.instantiate_async(&mut store).await.map_err(|e| anyhow!("{e:?}"))?;
        Ok(())
    }

    /// Handle one request in a fresh instance, as Spin does. Every request is answered: when no
    /// instance frees up within the pool's wait, or the pool has no slot, with 503 SlowDown; when
    /// the component fails before answering, with 500 InternalError.
    pub(crate) async fn handle(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, std::convert::Infallible> {
        self.handle_as(req, Scheme::Http).await
    }

    /// [`ComponentHost::handle`] for a request that arrived with `scheme` (HTTPS when served over TLS).
    pub(crate) async fn handle_as(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
        scheme: Scheme,
    ) -> Result<hyper::Response<HyperOutgoingBody>, std::convert::Infallible> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let slot = match tokio::time::timeout(self.pool.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => slot,
            _ => return Ok(self.overloaded(&method, &path)),
        };
        match self.run(req, slot, scheme).await {
            Ok(response) => Ok(response),
            Err(Failure::PoolFull) => Ok(self.overloaded(&method, &path)),
            Err(Failure::Other(detail)) => {
                eprintln!("tempo-s3-shard host: request failed: {detail}");
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                Ok(self.log(pool::internal_error(&method, &path, &detail)))
            }
        }
    }

    /// The 503 SlowDown answer, counted.
    fn overloaded(&self, method: &str, path: &str) -> hyper::Response<HyperOutgoingBody> {
        self.stats.overloaded.fetch_add(1, Ordering::Relaxed);
        self.log(pool::slow_down(method, path, self.pool.wait))
    }

    /// Print a host answer's access-log line where the component's go (unless they are dropped).
    fn log(&self, (response, line): pool::HostAnswer) -> hyper::Response<HyperOutgoingBody> {
        if self.observer.echoes() {
            println!("{line}");
        }
        response
    }

    /// Instantiate the component for `req` and call it; `slot` is held until the instance is done.
    async fn run(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
        slot: tokio::sync::OwnedSemaphorePermit,
        scheme: Scheme,
    ) -> Result<hyper::Response<HyperOutgoingBody>, Failure> {
        let (mut store, made) = match crate::idle::take_spare() {
            Some((store, proxy)) => {
                self.stats.made_ahead.fetch_add(1, Ordering::Relaxed);
                (store, Some(proxy))
            }
            None => (self.store(), None),
        };
        let observer = store.data().observer.clone();
        // Joined first: it needs the body's exact size hint, which the observer's wrapper drops.
        let low = req.extensions().get::<crate::low_water::LowWater>().cloned();
        let req = observer.begin(req.map(|body| Joined::arrived_unless_spin(body, self.nodelay, low)));
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let other = |e: wasmtime::Error| Failure::Other(format!("{e:?}"));
        let req = store.data_mut().http().new_incoming_request(scheme, req).map_err(other)?;
        let out = store.data_mut().http().new_response_outparam(sender).map_err(other)?;
        let pre = self.pre.clone();
        crate::idle::started();
        let task = tokio::spawn(async move {
            let _slot = slot;
            let result = async {
                let proxy = match made {
                    Some(proxy) => proxy,
                    None => pre.instantiate_async(&mut store).await.map_err(Failure::instantiating)?,
                };
                proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await.map_err(|e| Failure::Other(format!("{e:?}")))
            }
            .await;
            observer.finish();
            if let Some(store) = crate::idle::finished(store) {
                // The response is ready: let the connection's task send it before this one tears
                // the instance down (resetting its memory), which on this thread's runtime it
                // would wait for.
                tokio::task::yield_now().await;
                drop(store);
            }
            result
        });
        match receiver.await {
            Ok(Ok(resp)) if self.count_frames => Ok(resp.map(|body| self.counted(body))),
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(Failure::Other(format!("component failed: {e:?}"))),
            Err(_) => Err(match task.await {
                Ok(Ok(())) => Failure::Other("the component returned without setting a response".into()),
                Ok(Err(failure)) => failure,
                Err(e) => Failure::Other(format!("{e:?}")),
            }),
        }
    }
}

impl ComponentHost {
    /// `body`, its data frames counted in [`Stats::response_frames`].
    fn counted(&self, body: HyperOutgoingBody) -> HyperOutgoingBody {
        let stats = self.stats().clone();
        http_body_util::BodyExt::boxed_unsync(http_body_util::BodyExt::map_frame(body, move |frame| {
            if frame.is_data() {
                stats.response_frames.fetch_add(1, Ordering::Relaxed);
            }
            frame
        }))
    }
}

/// Why a request got no answer from the component.
enum Failure {
    /// The pooling allocator had no free slot (more tables or core instances in use than sized for).
    PoolFull,
    /// The component trapped or returned without answering.
    Other(String),
}

impl Failure {
    fn instantiating(err: wasmtime::Error) -> Failure {
        if pool::is_pool_full(&err) {
            return Failure::PoolFull;
        }
        Failure::Other(format!("cannot instantiate the component: {err:?}"))
    }
}

/// Compile a component, reusing a compiled artefact next to it (`.cwasm`) when the `.wasm` is unchanged.
fn compile_cached(engine: &Engine, wasm: &Path) -> anyhow::Result<Component> {
    let bytes = std::fs::read(wasm).with_context(|| format!("cannot read component {}", wasm.display()))?;
    let digest = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut h);
        env!("CARGO_PKG_VERSION").hash(&mut h);
        h.finish()
    };
    let cache = wasm.with_extension(format!("{digest:016x}.cwasm"));
    // SAFETY: the file is one this function serialized with this engine's configuration, named by
    // a digest of the exact component bytes and host version; it is written aside and renamed into
    // place, so a reader never sees it half-written. Wasmtime checks its header and configuration.
    #[allow(unsafe_code)]
    let cached = unsafe { Component::deserialize_file(engine, &cache) };
    if let Ok(component) = cached {
        return Ok(component);
    }
    let component = Component::from_binary(engine, &bytes).map_err(|e| anyhow!("{e:?}"))?;
    if let Ok(serialized) = component.serialize() {
        // Write aside, then rename: another process (or test thread) may have the old file mapped,
        // and truncating a mapped file kills it with SIGBUS.
        let tmp = cache.with_extension(format!("{}.{:?}.tmp", std::process::id(), std::thread::current().id()));
        if std::fs::write(&tmp, serialized).is_ok() && std::fs::rename(&tmp, &cache).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok(component)
}
