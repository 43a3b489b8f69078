//! Runs the real `.wasm` component the way Spin does: wasmtime + wasi:http, Spin variables, one
//! instance per request, served over HTTP/1.1 with hyper; outbound plain-HTTP connections are pooled
//! across requests, as Spin's outbound HTTP pools them; the Spin key-value store `default` lives in
//! memory for as long as the host runs.

use anyhow::{anyhow, Context as _};
use hyper::server::conn::http1;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

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

/// A compiled component, ready to instantiate per request.
#[derive(Clone)]
pub struct ComponentHost {
    pre: ProxyPre<RequestState>,
    variables: Arc<HashMap<String, String>>,
    key_values: KeyValues,
    stats: Arc<Stats>,
    outbound: Outbound,
    /// Whether the component's stdout (its access log) reaches ours.
    stdout: bool,
}

/// Counters the tests and benchmarks read.
#[derive(Default, Debug)]
pub struct Stats {
    /// The largest linear memory any instance grew to, in bytes.
    pub peak_memory: AtomicUsize,
    /// Requests handled.
    pub requests: AtomicUsize,
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
}

/// How long an outbound request may wait for its connection or its response head when the guest
/// sets no request options (wasmtime-wasi-http's default).
const OUTBOUND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// Outbound wasi:http: plain-HTTP requests share one pooled hyper client (keep-alive connections are
/// reused across requests and instances); HTTPS takes wasmtime-wasi-http's default path (a new TLS
/// connection per request).
#[derive(Clone)]
struct Outbound {
    client: hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, WasiBody>,
    /// HTTPS trusting extra roots (a private CA), when the operator gave some; else the default path.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Outbound {
    fn new() -> Outbound {
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        // Small requests would otherwise wait on delayed ACKs.
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(OUTBOUND_TIMEOUT));
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            // Under the idle timeouts of common S3 servers, so a pooled connection is rarely reused
            // just as the server closes it.
            .pool_idle_timeout(std::time::Duration::from_secs(15))
            .build(connector);
        Outbound { client, tls: None }
    }
}

type SendResult = wasmtime_wasi_http::Result<(
    hyper::Response<WasiBody>,
    Box<dyn std::future::Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn std::future::Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn std::future::Future<Output = SendResult> + Send> {
        use http_body_util::BodyExt;
        if let Some(config) = self.tls.as_ref().filter(|_| request.uri().scheme() == Some(&http::uri::Scheme::HTTPS)) {
            return Box::new(crate::tls::send(config.clone(), request));
        }
        if request.uri().scheme() != Some(&http::uri::Scheme::HTTP) {
            return Box::new(async move {
                let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
                Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn std::future::Future<Output = _> + Send>))
            });
        }
        let client = self.client.clone();
        Box::new(async move {
            let first_byte = options.and_then(|o| o.first_byte_timeout).unwrap_or(OUTBOUND_TIMEOUT);
            let response = tokio::time::timeout(first_byte, client.request(request))
                .await
                .map_err(|_| wasmtime_wasi_http::Error::ConnectionReadTimeout)?
                .map_err(outbound_error)?;
            let response = response.map(|body| body.map_err(wasmtime_wasi_http::Error::from).boxed_unsync());
            // The pool's own task drives the connection: there is no per-request I/O future.
            Ok((response, Box::new(async { Ok(()) }) as Box<dyn std::future::Future<Output = _> + Send>))
        })
    }
}

/// The wasi:http error for a failed pooled request.
fn outbound_error(err: hyper_util::client::legacy::Error) -> wasmtime_wasi_http::Error {
    if err.is_connect() {
        return wasmtime_wasi_http::Error::Connect(std::io::Error::other(format!("{err:?}")));
    }
    wasmtime_wasi_http::Error::HttpProtocolError
}

struct MemoryLimiter {
    stats: Arc<Stats>,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if desired > MEMORY_LIMIT {
            return Ok(false);
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
        Ok(self.kv(&store)?.get(&key).cloned())
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

/// The wasmtime engine configured as Spin configures it for HTTP: pooling allocator, async.
pub fn engine() -> anyhow::Result<Engine> {
    let mut config = wasmtime::Config::new();
    // For profiling: `perf` then names the component's functions (with a non-stripped build).
    if std::env::var_os("TEMPO_S3_SHARD_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let mut pooling = wasmtime::PoolingAllocationConfig::default();
    pooling.total_memories(256).total_tables(256).total_component_instances(256);
    pooling.max_memory_size(MEMORY_LIMIT);
    // Reset a finished instance's memory with memset (of the pages it touched, where the kernel has
    // PAGEMAP_SCAN) instead of madvise: the next instance takes no page faults, and no TLB shootdown
    // interrupts the other cores. The component stays near 1.1 MiB, so 2 MiB covers it.
    pooling.linear_memory_keep_resident(2 << 20).table_keep_resident(64 << 10);
    pooling.pagemap_scan(wasmtime::Enabled::Auto);
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pooling));
    Engine::new(&config).map_err(|e| anyhow!("{e:?}"))
}

impl ComponentHost {
    /// Compile the component at `wasm` (or load it from the compiled cache next to it) and link it
    /// against WASI, wasi:http and the Spin variables `variables`.
    pub fn load(engine: &Engine, wasm: &Path, variables: HashMap<String, String>) -> anyhow::Result<ComponentHost> {
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
        Ok(ComponentHost {
            pre,
            variables: Arc::new(variables),
            key_values: KeyValues::default(),
            stats: Arc::default(),
            outbound: Outbound::new(),
            stdout: true,
        })
    }

    /// Trust these CA certificates (DER) for HTTPS backends, besides the public web PKI.
    pub fn with_ca_roots(mut self, roots: &[Vec<u8>]) -> anyhow::Result<ComponentHost> {
        self.outbound.tls = Some(crate::tls::client_config(roots)?);
        Ok(self)
    }

    /// Drop what the component prints to stdout (its per-request access log), e.g. in benchmarks.
    pub fn without_stdout(mut self) -> ComponentHost {
        self.stdout = false;
        self
    }

    /// The `default` key-value store's contents (shared with the running host).
    pub fn key_values(&self) -> &KeyValues {
        &self.key_values
    }

    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Serve the component on `listener` until the returned task is aborted.
    pub fn serve(self, listener: TcpListener) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else { continue };
                let _ = socket.set_nodelay(true);
                let host = self.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let host = host.clone();
                        async move { host.handle(req).await }
                    });
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        })
    }

    /// Bind `addr` and serve; returns the bound address and the server task.
    pub async fn bind(self, addr: SocketAddr) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        Ok((local, self.serve(listener)))
    }

    /// A fresh store for one request.
    fn store(&self) -> Store<RequestState> {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stderr();
        if self.stdout {
            wasi.inherit_stdout();
        }
        let state = RequestState {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            variables: self.variables.clone(),
            key_values: self.key_values.clone(),
            limiter: MemoryLimiter { stats: self.stats.clone() },
            outbound: self.outbound.clone(),
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.limiter);
        store
    }

    /// Create a store and instantiate the component without calling it: the per-request setup
    /// cost, for the benchmark.
    pub async fn instantiate_only(&self) -> anyhow::Result<()> {
        let mut store = self.store();
        self.pre.instantiate_async(&mut store).await.map_err(|e| anyhow!("{e:?}"))?;
        Ok(())
    }

    /// Handle one request in a fresh instance, as Spin does.
    async fn handle(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> anyhow::Result<hyper::Response<HyperOutgoingBody>> {
        self.handle_as(req, Scheme::Http).await
    }

    /// [`ComponentHost::handle`] for a request that arrived with `scheme` (HTTPS when served over TLS).
    pub(crate) async fn handle_as(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
        scheme: Scheme,
    ) -> anyhow::Result<hyper::Response<HyperOutgoingBody>> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let mut store = self.store();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store.data_mut().http().new_incoming_request(scheme, req).map_err(|e| anyhow!("{e:?}"))?;
        let out = store.data_mut().http().new_response_outparam(sender).map_err(|e| anyhow!("{e:?}"))?;
        let pre = self.pre.clone();
        let task = tokio::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await
        });
        match receiver.await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(anyhow!("component failed: {e:?}")),
            Err(_) => {
                let detail = match task.await {
                    Ok(Ok(())) => "the component returned without setting a response".to_string(),
                    Ok(Err(e)) => format!("{e:?}"),
                    Err(e) => format!("{e:?}"),
                };
                eprintln!("tempo-s3-shard host: request failed: {detail}");
                Err(anyhow!("component trapped: {detail}"))
            }
        }
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
    if let Ok(component) = unsafe { Component::deserialize_file(engine, &cache) } {
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
