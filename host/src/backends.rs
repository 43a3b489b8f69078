//! Real S3 backends on loopback: `s3s-fs` (files on disk) behind `s3s`, which verifies SigV4.

use anyhow::Context as _;
use hyper::server::conn::http1;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
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
        let min_frame = opts.min_frame.unwrap_or(0);
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
                let tls = tls.clone();
                let recorder = recorder.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let service = service.clone();
                        let fail = fail.load(Ordering::Relaxed);
                        if let Some(log) = &recorder {
                            log.lock().unwrap_or_else(|p| p.into_inner()).push(RecordedRequest::of(&req));
                        }
                        async move {
                            if let Some(d) = latency {
                                tokio::time::sleep(d).await;
                            }
                            if fail {
                                return Ok(internal_error());
                            }
                            let response = hyper::service::Service::call(&service, req).await?;
                            Ok::<_, s3s::HttpError>(response.map(|body| Framed::new(body, min_frame)))
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
        Ok(S3Backend { addr, root: root.to_path_buf(), failing, tls: opts.tls.is_some(), task })
    }

    /// `http://127.0.0.1:PORT` (`https://` when serving TLS).
    pub fn endpoint(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    /// Path of an object's file, for tests that check where the proxy put it.
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(bucket).join(key)
    }

    /// Make every request answer `500 InternalError` (tests of failure handling), or recover.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::Relaxed);
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
fn internal_error() -> http::Response<Framed> {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>injected failure</Message></Error>";
    let mut resp = http::Response::new(Framed::new(s3s::Body::from(body.to_string()), 0));
    *resp.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    resp
}

/// A response body whose data frames are joined until they reach `min` bytes
/// ([`BackendOptions::min_frame`]); with `min` 0 the frames pass as they are.
struct Framed {
    inner: std::pin::Pin<Box<s3s::Body>>,
    min: usize,
    /// Data joined so far for the next frame.
    joined: bytes::BytesMut,
    /// A frame (trailers) or error that came while joining, for after the joined data.
    held: Option<Result<hyper::body::Frame<bytes::Bytes>, s3s::StdError>>,
    ended: bool,
}

impl Framed {
    fn new(inner: s3s::Body, min: usize) -> Framed {
        Framed { inner: Box::pin(inner), min, joined: bytes::BytesMut::new(), held: None, ended: false }
    }
}

impl hyper::body::Body for Framed {
    type Data = bytes::Bytes;
    type Error = s3s::StdError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Self::Error>>> {
        use std::task::Poll;
        let this = &mut *self;
        while !this.ended && this.held.is_none() && (this.joined.is_empty() || this.joined.len() < this.min) {
            match this.inner.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => this.ended = true,
                Poll::Ready(Some(Err(err))) => this.held = Some(Err(err)),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if this.joined.is_empty() && data.len() >= this.min => {
                        return Poll::Ready(Some(Ok(hyper::body::Frame::data(data))))
                    }
                    Ok(data) => this.joined.extend_from_slice(&data),
                    Err(frame) => this.held = Some(Ok(frame)),
                },
            }
        }
        if !this.joined.is_empty() {
            return Poll::Ready(Some(Ok(hyper::body::Frame::data(this.joined.split().freeze()))));
        }
        Poll::Ready(this.held.take())
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.held.is_none() && self.joined.is_empty()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        let inner = self.inner.size_hint();
        let joined = self.joined.len() as u64;
        let mut hint = hyper::body::SizeHint::new();
        hint.set_lower(inner.lower() + joined);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + joined);
        }
        hint
    }
}
