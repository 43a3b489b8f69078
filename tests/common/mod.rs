//! Test harness: real S3 backends (s3s-fs, SigV4-verifying) and the real component in the wasmtime
//! host on loopback, plus clients pointed at either.
#![allow(dead_code)]

pub mod fault;

use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::Client;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tempo_s3_shard_host::backends::{BackendOptions, Recorder, S3Backend, LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY};
use tempo_s3_shard_host::component::{self, KeyValues, Stats};
use tempo_s3_shard_host::pool::Pool;
use tempo_s3_shard_host::threads::Threads;
use tempo_s3_shard_host::{wasm, ComponentHost};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const VIRTUAL_BUCKET: &str = "proxy-bucket";

/// A fresh, empty directory under target/ for one test's backend data.
pub fn temp_dir(name: &str) -> PathBuf {
    fresh_dir(&wasm::workspace_dir().join("target/test-data"), name)
}

/// A fresh, empty directory `name-PID-N` under `base`, unique within this test run.
fn fresh_dir(base: &std::path::Path, name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = base.join(format!("{name}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Backends plus the proxy component serving the virtual bucket over them.
pub struct Harness {
    pub backend: S3Backend,
    /// A moto server the proxy uses instead of `backend`, for S3 features s3s-fs lacks.
    pub moto: Option<MotoServer>,
    pub proxy: SocketAddr,
    pub buckets: Vec<String>,
    pub stats: Arc<Stats>,
    /// The host's Spin key-value store `default`.
    pub key_values: KeyValues,
    /// The head of every request the s3s-fs backend received (not moto's).
    pub backend_requests: Recorder,
    /// The proxy is served over HTTPS (the test CA in tests/data/tls signs its certificate).
    pub https: bool,
    /// The `key_prefix` variable the proxy runs with (empty: none).
    pub key_prefix: String,
    server: Server,
}

/// Serving threads of the proxy over plain HTTP, as the runner serves (each with its own runtime,
/// making instances and tearing them down while it waits); over HTTPS, a task on the test's runtime.
pub enum Server {
    Threads(Threads),
    Task(tokio::task::JoinHandle<()>),
}

/// Serving threads per proxy.
const SERVING_THREADS: usize = 2;

/// Dropping it stops accepting connections (a task also drops the ones it serves).
impl Drop for Server {
    fn drop(&mut self) {
        if let Server::Task(task) = self {
            task.abort();
        }
    }
}

impl Harness {
    /// Backends holding `buckets` and the proxy configured for them, with the local credentials.
    pub async fn start(buckets: &[&str]) -> Harness {
        Harness::start_with(buckets, &[]).await
    }

    /// As [`Harness::start`], with Spin variables overridden or added.
    pub async fn start_with(buckets: &[&str], vars: &[(&str, &str)]) -> Harness {
        Harness::start_trusting(buckets, vars, &[]).await
    }

    /// As [`Harness::start_with`], with the host trusting these extra CA roots (DER) for HTTPS backends.
    pub async fn start_trusting(buckets: &[&str], vars: &[(&str, &str)], roots: &[Vec<u8>]) -> Harness {
        Harness::launch(buckets, vars, temp_dir("backend"), trusting(roots)).await
    }

    /// As [`Harness::start_with`], with the host's sockets behaving as Spin's: no `TCP_NODELAY` on
    /// accepted or outbound connections ([`ComponentHost::spin_sockets`]). The backend keeps its
    /// data in memory where it can (/dev/shm), so disk flushes do not blur request timings.
    pub async fn start_spin_sockets(buckets: &[&str], vars: &[(&str, &str)]) -> Harness {
        let shm = std::path::Path::new("/dev/shm");
        let data = if shm.is_dir() { fresh_dir(shm, "tempo-s3-shard-test") } else { temp_dir("backend") };
        Harness::launch(buckets, vars, data, |host| host.spin_sockets(true)).await
    }

    /// Backends for `buckets` keeping their data in `data`, and the proxy over them, its host
    /// adjusted by `adjust`.
    async fn launch(
        buckets: &[&str],
        vars: &[(&str, &str)],
        data: PathBuf,
        adjust: impl FnOnce(ComponentHost) -> ComponentHost,
    ) -> Harness {
        let buckets: Vec<String> = buckets.iter().map(|b| b.to_string()).collect();
        let recorder = Recorder::default();
        let backend = S3Backend::start(&data, &buckets, recording(&recorder)).await.expect("start backend");
        Harness::start_on((backend, recorder), buckets, vars, adjust, Pool::default(), false).await
    }

    /// As [`Harness::start_with`], with the proxy served over HTTPS (certificate for 127.0.0.1 from
    /// tests/data/tls, whose `ca.pem` clients must trust).
    pub async fn start_https(buckets: &[&str], vars: &[(&str, &str)]) -> Harness {
        let buckets: Vec<String> = buckets.iter().map(|b| b.to_string()).collect();
        let recorder = Recorder::default();
        let backend = S3Backend::start(&temp_dir("backend"), &buckets, recording(&recorder)).await.expect("start backend");
        Harness::start_on((backend, recorder), buckets, vars, |host| host, Pool::default(), true).await
    }

    /// As [`Harness::start_with`], with the host's instance pool sized `pool`.
    pub async fn start_pooled(buckets: &[&str], vars: &[(&str, &str)], pool: Pool) -> Harness {
        let buckets: Vec<String> = buckets.iter().map(|b| b.to_string()).collect();
        let backend = start_backend(&buckets).await;
        Harness::start_on((backend, Recorder::default()), buckets, vars, |host| host, pool, false).await
    }

    /// As [`Harness::start_with`], with the shard `faulty` reached through a fault-injecting proxy
    /// (via `shard_endpoints`; same backend, same credentials) whose behaviour the handle switches.
    pub async fn start_with_fault(buckets: &[&str], faulty: &str, vars: &[(&str, &str)]) -> (Harness, fault::FaultHandle) {
        let buckets: Vec<String> = buckets.iter().map(|b| b.to_string()).collect();
        assert!(buckets.iter().any(|b| b == faulty), "{faulty} is not one of {buckets:?}");
        let backend = start_backend(&buckets).await;
        let fault = fault::FaultHandle::start(backend.addr).await;
        let endpoints = format!(r#"{{"{faulty}": "{}"}}"#, fault.endpoint());
        let mut all: Vec<(&str, &str)> = vec![("shard_endpoints", endpoints.as_str())];
        all.extend_from_slice(vars);
        (Harness::start_on((backend, Recorder::default()), buckets, &all, |host| host, Pool::default(), false).await, fault)
    }

    /// The proxy over `backend` (whose requests `backend_requests` records, if it does), configured for `buckets` with the local credentials and `vars`,
    /// its host adjusted by `adjust`, its instance pool sized `pool`, served over HTTPS when `https`.
    async fn start_on(
        (backend, backend_requests): (S3Backend, Recorder),
        buckets: Vec<String>,
        vars: &[(&str, &str)],
        adjust: impl FnOnce(ComponentHost) -> ComponentHost,
        pool: Pool,
        https: bool,
    ) -> Harness {
        let mut variables = backend.proxy_variables(&buckets);
        for (k, v) in vars {
            variables.insert(k.to_string(), v.to_string());
        }
        let key_prefix = variables.get("key_prefix").cloned().unwrap_or_default();
        let (proxy, server, stats, key_values) = start_host(variables, adjust, pool, https).await;
        Harness { backend, moto: None, proxy, buckets, stats, key_values, backend_requests, https, key_prefix, server }
    }

    /// As [`Harness::start_with`], but the backend is a `moto` S3 server (tagging, conditional
    /// requests, ListMultipartUploads; note moto does not verify signatures).
    pub async fn start_moto(buckets: &[&str], vars: &[(&str, &str)]) -> Harness {
        let moto = MotoServer::start().await;
        let endpoint = moto.endpoint();
        let mut all: Vec<(&str, &str)> = vec![("endpoint", endpoint.as_str())];
        all.extend_from_slice(vars);
        let mut h = Harness::start_with(buckets, &all).await;
        for b in &h.buckets {
            s3_client(&endpoint, LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY).create_bucket().bucket(b).send().await.expect("create moto bucket");
        }
        h.moto = Some(moto);
        h
    }

    /// Where the backend buckets live.
    pub fn backend_endpoint(&self) -> String {
        match &self.moto {
            Some(m) => m.endpoint(),
            None => self.backend.endpoint(),
        }
    }

    pub fn proxy_url(&self) -> String {
        format!("{}://{}", if self.https { "https" } else { "http" }, self.proxy)
    }

    /// An aws-sdk-s3 client talking to the proxy.
    pub fn client(&self) -> Client {
        s3_client(&self.proxy_url(), LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY)
    }

    /// An aws-sdk-s3 client talking to the backends directly.
    pub fn direct(&self) -> Client {
        s3_client(&self.backend_endpoint(), LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY)
    }

    /// The bucket the ring assigns `key` to.
    pub fn owner(&self, key: &str) -> String {
        tempo_s3_shard_core::ring::Ring::new(&self.buckets).with_prefix(&self.key_prefix).owner(key).to_string()
    }

    /// Which backend buckets hold `key`, asked directly.
    pub async fn holders(&self, key: &str) -> Vec<String> {
        let direct = self.direct();
        let mut out = vec![];
        for b in &self.buckets {
            if direct.head_object().bucket(b).key(key).send().await.is_ok() {
                out.push(b.clone());
            }
        }
        out
    }

    /// Send raw bytes to the proxy and read the whole response.
    pub async fn raw(&self, request: &[u8]) -> RawResponse {
        raw(self.proxy, request).await
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // The server stops as its field drops. The backend's data (under target/test-data, or in
        // /dev/shm): a full run would otherwise leave gigabytes behind.
        let _ = std::fs::remove_dir_all(&self.backend.root);
    }
}

/// Load the (built) component with `variables` and serve it on a free loopback port.
pub async fn start_proxy(variables: HashMap<String, String>) -> (SocketAddr, Server, Arc<Stats>) {
    let (addr, server, stats, _) = start_proxy_trusting(variables, &[]).await;
    (addr, server, stats)
}

/// Backend options that keep the head of every request received (`Harness::backend_requests`).
fn recording(recorder: &Recorder) -> BackendOptions {
    BackendOptions { recorder: Some(recorder.clone()), ..BackendOptions::default() }
}

/// A file of the test-only TLS material in tests/data/tls.
pub fn tls_file(name: &str) -> Vec<u8> {
    std::fs::read(wasm::workspace_dir().join("tests/data/tls").join(name)).expect("tests/data/tls")
}

/// A fresh s3s-fs backend holding `buckets`.
async fn start_backend(buckets: &[String]) -> S3Backend {
    S3Backend::start(&temp_dir("backend"), buckets, BackendOptions::default()).await.expect("start backend")
}

/// As [`start_proxy`], trusting extra CA roots (DER) for HTTPS backends.
pub async fn start_proxy_trusting(
    variables: HashMap<String, String>,
    roots: &[Vec<u8>],
) -> (SocketAddr, Server, Arc<Stats>, KeyValues) {
    start_host(variables, trusting(roots), Pool::default(), false).await
}

/// A host adjustment: trust these extra CA roots (DER) for HTTPS backends, if any.
fn trusting(roots: &[Vec<u8>]) -> impl FnOnce(ComponentHost) -> ComponentHost + '_ {
    move |host| if roots.is_empty() { host } else { host.with_ca_roots(roots).expect("CA roots") }
}

/// Load the (built) component with `variables`, adjust its host, size its instance pool `pool`,
/// and serve it on a free loopback port (over HTTPS when `https`, the certificate in tests/data/tls).
async fn start_host(
    variables: HashMap<String, String>,
    adjust: impl FnOnce(ComponentHost) -> ComponentHost,
    pool: Pool,
    https: bool,
) -> (SocketAddr, Server, Arc<Stats>, KeyValues) {
    let wasm = wasm::ensure_component().expect("build the component");
    let engine = component::engine_for(&pool).expect("engine");
    let mut host = ComponentHost::load(&engine, &wasm, variables).expect("load component").with_pool(pool).counting_frames();
    // The component's access log (one JSON line per request) would flood the test output; tests
    // that read it set TEMPO_S3_SHARD_TEST_LOG.
    if std::env::var_os("TEMPO_S3_SHARD_TEST_LOG").is_none() {
        host = host.without_stdout();
    }
    let host = adjust(host);
    let stats = host.stats().clone();
    let key_values = host.key_values().clone();
    let local = SocketAddr::from(([127, 0, 0, 1], 0));
    let (addr, server) = if https {
        let acceptor = tempo_s3_shard_host::tls::acceptor(&[tls_file("server.der")], &tls_file("server.key.der")).expect("TLS");
        let (addr, task) = host.bind_tls(local, acceptor).await.expect("bind");
        (addr, Server::Task(task))
    } else {
        let threads = Threads::bind(&host, local, SERVING_THREADS, "proxy").expect("serve");
        (threads.addr(), Server::Threads(threads))
    };
    (addr, server, stats, key_values)
}

pub fn s3_client(endpoint: &str, access_key: &str, secret_key: &str) -> Client {
    Client::from_conf(s3_config(endpoint, access_key, secret_key).build())
}

/// The configuration of [`s3_client`], for tests that change more (retries, timeouts).
pub fn s3_config(endpoint: &str, access_key: &str, secret_key: &str) -> aws_sdk_s3::config::Builder {
    let creds = Credentials::new(access_key, secret_key, None, None, "tests");
    aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .force_path_style(true)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
}

/// One keep-alive HTTP/1.1 connection of a client that sets `TCP_NODELAY` and writes each request
/// in one piece, as minio-go and the AWS SDKs do (anonymous: the proxy must allow it).
pub struct Connection {
    stream: tokio::io::BufReader<tokio::net::TcpStream>,
    authority: String,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> Connection {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect to the proxy");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        Connection { stream: tokio::io::BufReader::new(stream), authority: addr.to_string() }
    }

    /// The head of a request with a body of `length` bytes.
    fn head(&self, method: &str, path: &str, length: usize) -> Vec<u8> {
        format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {length}\r\n\r\n", self.authority).into_bytes()
    }

    /// Send one request and read its response; returns the status and body.
    pub async fn exchange(&mut self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let mut request = self.head(method, path, body.len());
        request.extend_from_slice(body);
        self.stream.get_mut().write_all(&request).await.expect("write the request");
        self.response(method).await
    }

    /// Send one request whose body trickles in: `piece` bytes at a time, `gap` apart (tokio's
    /// timers round it up to a millisecond); then read the response.
    pub async fn trickle(&mut self, method: &str, path: &str, body: &[u8], piece: usize, gap: std::time::Duration) -> (u16, Vec<u8>) {
        let head = self.head(method, path, body.len());
        self.stream.get_mut().write_all(&head).await.expect("write the request head");
        for piece in body.chunks(piece) {
            self.stream.get_mut().write_all(piece).await.expect("write a piece of the body");
            tokio::time::sleep(gap).await;
        }
        self.response(method).await
    }

    /// The response to a request `method` sent: status and body, within 10 s.
    async fn response(&mut self, method: &str) -> (u16, Vec<u8>) {
        use tokio::io::AsyncBufReadExt;
        let exchange = async {
            let mut line = String::new();
            self.stream.read_line(&mut line).await.expect("read the status line");
            let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
            let mut length = 0usize;
            loop {
                line.clear();
                self.stream.read_line(&mut line).await.expect("read a header");
                if line.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().expect("a numeric Content-Length");
                    }
                }
            }
            let mut body = vec![0; if method == "HEAD" { 0 } else { length }];
            self.stream.read_exact(&mut body).await.expect("read the body");
            (status, body)
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), exchange).await.expect("the proxy answers within 10 s")
    }
}

/// A response read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The `<Code>` of an S3 XML error body.
    pub fn error_code(&self) -> Option<&str> {
        let start = self.body.find("<Code>")? + 6;
        let end = self.body[start..].find("</Code>")? + start;
        Some(&self.body[start..end])
    }
}

/// One HTTP/1.1 exchange over a fresh connection (`Connection: close` is added by the caller).
pub async fn raw(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut buf = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(30), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the proxy did not answer within 30 s");
    parse_response(&buf)
}

/// An HTTP/1.1 response as read off the wire (the body as text, lossily).
pub fn parse_response(buf: &[u8]) -> RawResponse {
    let text = String::from_utf8_lossy(buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or("");
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    RawResponse { status, headers, body: body.to_string() }
}

/// The virtualenv the test command (`./test`) installs boto3, awscli and moto into.
pub fn venv_bin() -> PathBuf {
    std::env::var_os("TEMPO_S3_SHARD_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| wasm::workspace_dir().join("target/venv"))
        .join("bin")
}

/// PATH for the client tools and moto: the virtualenv's `bin` first when it exists, so a plain
/// `cargo test` uses what `./test` installed.
pub fn tools_path() -> std::ffi::OsString {
    let venv = venv_bin();
    let mut dirs: Vec<PathBuf> = venv.is_dir().then_some(venv).into_iter().collect();
    dirs.extend(std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default());
    std::env::join_paths(dirs).unwrap_or_default()
}

/// A command for a client tool (`python3`, `aws`, `bash` running a script that calls them), found on
/// [`tools_path`].
pub fn tool(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    cmd.env("PATH", tools_path());
    cmd
}

/// A `moto_server` process (PyPI `moto[server]`) on a free loopback port, killed on drop.
pub struct MotoServer {
    child: std::process::Child,
    port: u16,
}

impl MotoServer {
    pub async fn start() -> MotoServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = tool("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto[server] is needed for these tests: pip install 'moto[server]'");
        // Owned from here on, so that a server that never answers is killed by the panic below.
        let server = MotoServer { child, port };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return server;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("moto_server did not start on port {port} (pip install 'moto[server]')");
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
