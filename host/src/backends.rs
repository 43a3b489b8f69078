//! Real S3 backends on loopback: `s3s-fs` (files on disk) behind `s3s`, which verifies SigV4.

use crate::frames::Joined;
use anyhow::Context as _;
use hyper::server::conn::http1;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use wasmtime_wasi_http::io::TokioIo;

/// The credentials the local backends accept (not secret: loopback only).
pub const LOCAL_ACCESS_KEY: &str = "tempo-s3-shard-local";
pub const LOCAL_SECRET_KEY: &str = "tempo-s3-shard-local-secret";

/// A running S3 server storing buckets as directories under `root`.
pub struct S3Backend {
    pub addr: SocketAddr,
    pub root: PathBuf,
    failing: Arc<AtomicBool>,
    /// [`BackendOptions::min_frame`], changeable while serving.
    min_frame: Arc<AtomicUsize>,
    tls: bool,
    task: tokio::task::JoinHandle<()>,
}

/// How to start a backend.
#[derive(Clone, Debug)]
pub struct BackendOptions {
    pub access_key: String,
    pub secret_key: String,
    /// Latency added before each request is handled (benchmarks simulate a remote object store).
    pub latency: Option<Duration>,
    /// Address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Serve HTTPS with this certificate chain and PKCS#8 key (DER), instead of plain HTTP.
    pub tls: Option<(Vec<Vec<u8>>, Vec<u8>)>,
    /// Hand response bodies to the connection in frames of at least this many bytes (the last one
    /// may be shorter). s3s-fs reads files 4 KiB at a time and sends each read as a frame, which no
    /// networked object store does; benchmarks set this to measure per-frame costs realistically.
    pub min_frame: Option<usize>,
    /// Keep the head of every request received here, for tests that check what the proxy sent
    /// (e.g. headers s3s-fs accepts but does not act on, like server-side encryption).
    pub recorder: Option<Recorder>,
}

/// The heads of the requests a backend received, in arrival order.
pub type Recorder = Arc<std::sync::Mutex<Vec<RecordedRequest>>>;

/// One request as a backend received it (its body is not kept).
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    fn of<B>(req: &http::Request<B>) -> RecordedRequest {
        RecordedRequest {
            method: req.method().to_string(),
            target: req.uri().path_and_query().map(|pq| pq.to_string()).unwrap_or_default(),
            headers: req
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect(),
        }
    }

    /// The first value of a header (`name` in lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

impl Default for BackendOptions {
    fn default() -> Self {
        BackendOptions {
            access_key: LOCAL_ACCESS_KEY.into(),
            secret_key: LOCAL_SECRET_KEY.into(),
            latency: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: None,
            min_frame: None,
            recorder: None,
        }
    }
}

/// Wait `d`, to within the kernel's timer slack (tens of microseconds). Tokio's timers fire on
/// whole milliseconds: a 5 ms sleep took 5 to 6.5 ms depending on where in a millisecond the
/// request came, so a proxy's added latency also moved when the backend answered.
async fn wait_exactly(d: Duration) {
    let _ = tokio::task::spawn_blocking(move || std::thread::sleep(d)).await;
}

impl S3Backend {
    /// Start serving `root`, creating a directory (bucket) for each of `buckets`.
    pub async fn start(root: &Path, buckets: &[String], opts: BackendOptions) -> anyhow::Result<S3Backend> {
        for b in buckets {
            std::fs::create_dir_all(root.join(b)).with_context(|| format!("cannot create bucket dir {b}"))?;
        }
        let fs = s3s_fs::FileSystem::new(root).map_err(|e| anyhow::anyhow!("s3s-fs: {e:?}"))?;
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(opts.access_key.clone(), opts.secret_key.clone()));
        let service = builder.build();
        let listener = TcpListener::bind(opts.listen).await.with_context(|| format!("cannot listen on {}", opts.listen))?;
        let addr = listener.local_addr()?;
        let latency = opts.latency;
        let min_frame = Arc::new(AtomicUsize::new(opts.min_frame.unwrap_or(0)));
        let frames = min_frame.clone();
        let tls = match &opts.tls {
            Some((chain, key)) => Some(crate::tls::acceptor(chain, key)?),
            None => None,
        };
        let failing = Arc::new(AtomicBool::new(false));
        let fail = failing.clone();
        let recorder = opts.recorder.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else { continue };
                // Without TCP_NODELAY small responses stall on delayed ACKs (~40 ms).
                let _ = socket.set_nodelay(true);
                let service = service.clone();
                let fail = fail.clone();
                let frames = frames.clone();
                let tls = tls.clone();
                let recorder = recorder.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let service = service.clone();
                        let fail = fail.load(Ordering::Relaxed);
                        if let Some(log) = &recorder {
                            log.lock().unwrap_or_else(|p| p.into_inner()).push(RecordedRequest::of(&req));
                        }
                        let min_frame = frames.load(Ordering::Relaxed);
                        async move {
                            if let Some(d) = latency {
                                wait_exactly(d).await;
                            }
                            if fail {
                                return Ok(internal_error());
                            }
                            let response = hyper::service::Service::call(&service, req).await?;
                            Ok::<_, s3s::HttpError>(response.map(|body| Joined::at_least(body, min_frame)))
                        }
                    });
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(socket).await {
                                let _ = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), svc).await;
                            }
                        }
                        None => {
                            let _ = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(socket), svc).await;
                        }
                    }
                });
            }
        });
        Ok(S3Backend { addr, root: root.to_path_buf(), failing, min_frame, tls: opts.tls.is_some(), task })
    }

    /// `http://127.0.0.1:PORT` (`https://` when serving TLS).
    pub fn endpoint(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    /// The Spin variables of a proxy in front of this backend over `buckets`, with the local
    /// credentials for the backend and for its clients.
    pub fn proxy_variables(&self, buckets: &[String]) -> std::collections::HashMap<String, String> {
        std::collections::HashMap::from([
            ("buckets".to_string(), buckets.join(",")),
            ("endpoint".to_string(), self.endpoint()),
            ("access_key_id".to_string(), LOCAL_ACCESS_KEY.to_string()),
            ("secret_access_key".to_string(), LOCAL_SECRET_KEY.to_string()),
            ("client_credentials".to_string(), format!("{LOCAL_ACCESS_KEY}:{LOCAL_SECRET_KEY}")),
        ])
    }

    /// Path of an object's file, for tests that check where the proxy put it.
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(bucket).join(key)
    }

    /// Make every request answer `500 InternalError` (tests of failure handling), or recover.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::Relaxed);
    }

    /// Send the bodies of responses from now on in frames of at least `bytes` (0: as s3s-fs reads
    /// them, 4 KiB at a time); see [`BackendOptions::min_frame`].
    pub fn set_min_frame(&self, bytes: usize) {
        self.min_frame.store(bytes, Ordering::Relaxed);
    }

    /// Stop accepting connections.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for S3Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The answer of a failing backend.
fn internal_error() -> http::Response<Joined<s3s::Body>> {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>injected failure</Message></Error>";
    let mut resp = http::Response::new(Joined::at_least(s3s::Body::from(body.to_string()), 0));
    *resp.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    resp
}
