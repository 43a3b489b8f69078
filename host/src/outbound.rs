//! Outbound wasi:http as Spin does it: pooled connections, plain HTTP and HTTPS (verified against
//! the web PKI plus any roots the operator trusts, see [`crate::tls`]), and the guest's request
//! options (connect, first-byte and between-bytes timeouts) honoured on both.

use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use crate::low_water::{LowWater, Watched};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// The limit for an option the guest leaves unset (what Spin and wasmtime-wasi-http use).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The time limits of one outbound request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Opening the connection (TCP, and TLS for HTTPS): `ConnectionTimeout` when exceeded.
    pub connect: Duration,
    /// From sending until the response head: `ConnectionReadTimeout` when exceeded.
    pub first_byte: Duration,
    /// The longest pause between two response body frames: `ConnectionReadTimeout` when exceeded.
    pub between_bytes: Duration,
}

impl Limits {
    /// The guest's request options, with [`DEFAULT_TIMEOUT`] for those it left unset.
    pub fn from_options(options: Option<RequestOptions>) -> Limits {
        let or_default = |d: Option<Duration>| d.unwrap_or(DEFAULT_TIMEOUT);
        Limits {
            connect: or_default(options.and_then(|o| o.connect_timeout)),
            first_byte: or_default(options.and_then(|o| o.first_byte_timeout)),
            between_bytes: or_default(options.and_then(|o| o.between_bytes_timeout)),
        }
    }
}

tokio::task_local! {
    /// The connect timeout of the request the pooled client is opening a connection for (the
    /// pooled client has no per-request connect option; Spin passes it the same way).
    static CONNECT_TIMEOUT: Duration;
}

/// The pooled client's connector: hyper-util's, bounded by the current request's connect timeout.
#[derive(Clone)]
struct TimedConnector(HttpConnector);

/// The connect timeout of the request a pooled client is opening a connection for (read inside the
/// request's task: the pool may finish the connect in the background).
pub(crate) fn connect_limit() -> Duration {
    CONNECT_TIMEOUT.try_with(|d| *d).unwrap_or(DEFAULT_TIMEOUT)
}

/// Why a pooled connection could not be opened (each maps to one wasi:http error variant, which
/// the guest receives unchanged: `Error::ConnectionTimeout` is `error-code.connection-timeout`).
#[derive(Debug)]
pub enum ConnectFailure {
    TimedOut,
    Refused(Box<dyn std::error::Error + Send + Sync>),
    /// The TLS handshake failed (an untrusted or mismatched certificate, most often).
    Tls,
}

impl std::fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectFailure::TimedOut => write!(f, "connect timed out"),
            ConnectFailure::Refused(e) => write!(f, "cannot connect: {e}"),
            ConnectFailure::Tls => write!(f, "the TLS handshake failed"),
        }
    }
}

impl std::error::Error for ConnectFailure {}

type Connecting = Pin<Box<dyn Future<Output = Result<Watched, ConnectFailure>> + Send>>;

impl tower_service::Service<http::Uri> for TimedConnector {
    type Response = Watched;
    type Error = ConnectFailure;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnectFailure>> {
        self.0.poll_ready(cx).map_err(|e| ConnectFailure::Refused(Box::new(e)))
    }

    fn call(&mut self, uri: http::Uri) -> Connecting {
        let limit = connect_limit();
        let connecting = self.0.call(uri);
        Box::pin(async move {
            match tokio::time::timeout(limit, connecting).await {
                Err(_) => Err(ConnectFailure::TimedOut),
                Ok(result) => result.map(Watched::new).map_err(|e| ConnectFailure::Refused(Box::new(e))),
            }
        })
    }
}

/// Outbound wasi:http: plain-HTTP and HTTPS requests each share one pooled hyper client (keep-alive
/// connections are reused across requests and instances, as Spin reuses them); any other scheme
/// takes wasmtime-wasi-http's default path.
#[derive(Clone)]
pub struct Outbound {
    client: hyper_util::client::legacy::Client<TimedConnector, WasiBody>,
    https: hyper_util::client::legacy::Client<crate::tls::Connector, WasiBody>,
    /// What HTTPS connections are verified with: the web PKI, plus any roots the operator trusts.
    tls: Arc<rustls::ClientConfig>,
    /// Records each call in the request's metrics.
    pub(crate) observer: crate::observe::Observer,
    /// Join a response's frames that have already arrived (off with Spin's sockets: Spin hands each
    /// on as it was read).
    join_frames: bool,
}

impl Outbound {
    /// Clients with empty pools, HTTPS verified with `tls`, recording their calls with `observer`;
    /// `nodelay`: whether their connections set `TCP_NODELAY` and responses' frames are joined
    /// (Spin does neither).
    pub fn new(observer: crate::observe::Observer, nodelay: bool, tls: Arc<rustls::ClientConfig>) -> Outbound {
        let mut connector = HttpConnector::new();
        // Without it, a request whose head and body leave in separate writes waits on a delayed ACK.
        connector.set_nodelay(nodelay);
        connector.set_connect_timeout(None);
        // Under the idle timeouts of common S3 servers, so a pooled connection is rarely reused
        // just as the server closes it.
        let builder = || {
            let mut builder = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new());
            builder.pool_idle_timeout(Duration::from_secs(15));
            builder
        };
        let client = builder().build(TimedConnector(connector));
        let https = builder().build(crate::tls::Connector::new(tls.clone(), nodelay));
        Outbound { client, https, tls, observer, join_frames: nodelay }
    }

    /// The same clients with empty pools of their own (a serving thread's: a pooled connection is
    /// driven by a task on the runtime that opened it), setting `TCP_NODELAY` or not.
    pub(crate) fn own_pools(&self, nodelay: bool) -> Outbound {
        Outbound::new(self.observer.clone(), nodelay, self.tls.clone())
    }

    /// The same client (and pool), recording its calls with `observer`.
    pub(crate) fn observed_by(&self, observer: crate::observe::Observer) -> Outbound {
        Outbound { observer, ..self.clone() }
    }
}

/// The I/O future of a response whose connection something else drives.
type IoFuture = Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>;

type SendResult = wasmtime_wasi_http::Result<(hyper::Response<WasiBody>, IoFuture)>;

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let call = self.observer.backend_call(&request);
        Box::new(call.observe(self.send(request, options)))
    }
}

impl Outbound {
    /// Send one outbound request: pooled plain HTTP or HTTPS, or the default path.
    fn send(&mut self, request: hyper::Request<WasiBody>, options: Option<RequestOptions>) -> Box<dyn Future<Output = SendResult> + Send> {
        let (limits, join) = (Limits::from_options(options), self.join_frames);
        let scheme = request.uri().scheme();
        let pooled = if scheme == Some(&http::uri::Scheme::HTTP) {
            self.client.request(request)
        } else if scheme == Some(&http::uri::Scheme::HTTPS) {
            self.https.request(request)
        } else {
            // wasmtime-wasi-http's default path applies all three options itself.
            return Box::new(async move {
                let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
                Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as IoFuture))
            });
        };
        Box::new(async move {
            let response = first_byte_within(limits.first_byte, CONNECT_TIMEOUT.scope(limits.connect, pooled))
                .await?
                .map_err(pooled_error)?;
            // Frames that have already arrived cross into the component as one read; on a plain
            // connection, gathering them raises its socket's low-water mark (crate::low_water).
            let low = response.extensions().get::<LowWater>().cloned();
            let response = response.map(|body| crate::frames::Joined::arrived_unless_spin(body, join, low).map_err(Error::from).boxed_unsync());
            // The pool's own task drives the connection: there is no per-request I/O future.
            Ok((idle_limited(response, limits.between_bytes), Box::new(async { Ok(()) }) as IoFuture))
        })
    }
}

/// `sending`'s result, or `ConnectionReadTimeout` when no response head came within `limit`.
pub async fn first_byte_within<T>(limit: Duration, sending: impl Future<Output = T>) -> Result<T, Error> {
    tokio::time::timeout(limit, sending).await.map_err(|_| Error::ConnectionReadTimeout)
}

/// The wasi:http error for a failed pooled request, as Spin reports it: a connect timeout is
/// `ConnectionTimeout`, any other connect failure `ConnectionRefused`, a hyper timeout
/// `HttpResponseTimeout`, anything else `HttpProtocolError`.
fn pooled_error(err: hyper_util::client::legacy::Error) -> Error {
    use std::error::Error as _;
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(failure) = cause.downcast_ref::<ConnectFailure>() {
            return connect_error(failure);
        }
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
            if hyper.is_timeout() {
                return Error::HttpResponseTimeout;
            }
        }
        source = cause.source();
    }
    if err.is_connect() {
        return Error::ConnectionRefused;
    }
    Error::HttpProtocolError
}

/// The wasi:http error for a connection that could not be opened.
fn connect_error(failure: &ConnectFailure) -> Error {
    match failure {
        ConnectFailure::TimedOut => Error::ConnectionTimeout,
        ConnectFailure::Refused(_) => Error::ConnectionRefused,
        ConnectFailure::Tls => Error::TlsCertificateError,
    }
}

/// `response` whose body fails with `ConnectionReadTimeout` when a frame takes longer than `limit`
/// to come (Spin's between-bytes timeout).
pub fn idle_limited(response: hyper::Response<WasiBody>, limit: Duration) -> hyper::Response<WasiBody> {
    response.map(|body| IdleLimited { body, limit, timer: None, progressed: false, expired: false }.boxed_unsync())
}

/// A body with a between-frames time limit.
struct IdleLimited {
    body: WasiBody,
    limit: Duration,
    /// Started when the body first has nothing to give, then pushed back after each frame: one
    /// timer per body (a body of small frames would otherwise allocate and register one per frame).
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// A frame arrived since the timer was last set.
    progressed: bool,
    expired: bool,
}

impl hyper::body::Body for IdleLimited {
    type Data = bytes::Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Error>>> {
        let this = &mut *self;
        if this.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            this.progressed = true;
            return Poll::Ready(frame);
        }
        let limit = this.limit;
        let progressed = std::mem::take(&mut this.progressed);
        let timer = match &mut this.timer {
            Some(timer) => {
                if progressed {
                    timer.as_mut().reset(tokio::time::Instant::now() + limit);
                }
                timer
            }
            None => this.timer.insert(Box::pin(tokio::time::sleep(limit))),
        };
        ready!(timer.as_mut().poll(cx));
        this.expired = true;
        Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
    }

    fn is_end_stream(&self) -> bool {
        self.expired || self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn options(connect_ms: u64, first_byte_ms: u64, between_bytes_ms: u64) -> Option<RequestOptions> {
        Some(RequestOptions {
            connect_timeout: Some(Duration::from_millis(connect_ms)),
            first_byte_timeout: Some(Duration::from_millis(first_byte_ms)),
            between_bytes_timeout: Some(Duration::from_millis(between_bytes_ms)),
        })
    }

    fn plain() -> Outbound {
        Outbound::new(crate::observe::Observer::new(Default::default()), true, crate::tls::client_config(&[]).unwrap())
    }

    fn get(addr: std::net::SocketAddr) -> hyper::Request<WasiBody> {
        get_over("http", addr)
    }

    /// A GET of `/x` at `addr` over `scheme`, without a body.
    fn get_over(scheme: &str, addr: std::net::SocketAddr) -> hyper::Request<WasiBody> {
        let body = http_body_util::Empty::new().map_err(|never| match never {}).boxed_unsync();
        hyper::Request::get(format!("{scheme}://{addr}/x")).body(body).unwrap()
    }

    async fn send(addr: std::net::SocketAddr, options: Option<RequestOptions>) -> SendResult {
        let mut outbound = plain();
        Pin::from(outbound.send_request(get(addr), options, Box::new(async { Ok(()) }))).await
    }

    /// A server that reads each request and answers with `answer` (or never, when `None`).
    async fn server(answer: Option<&'static [u8]>) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    if let Some(answer) = answer {
                        let _ = socket.write_all(answer).await;
                    }
                    tokio::time::sleep(Duration::from_secs(30)).await;
                });
            }
        });
        addr
    }

    #[test]
    fn unset_options_take_the_default() {
        assert_eq!(Limits::from_options(None).first_byte, DEFAULT_TIMEOUT);
        let limits = Limits::from_options(options(1, 2, 3));
        assert_eq!(
            limits,
            Limits { connect: Duration::from_millis(1), first_byte: Duration::from_millis(2), between_bytes: Duration::from_millis(3) }
        );
    }

    #[test]
    fn connect_failures_map_as_spin_maps_them() {
        assert!(matches!(connect_error(&ConnectFailure::TimedOut), Error::ConnectionTimeout));
        let refused = ConnectFailure::Refused(Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)));
        assert!(matches!(connect_error(&refused), Error::ConnectionRefused));
        assert!(matches!(connect_error(&ConnectFailure::Tls), Error::TlsCertificateError));
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_a_read_timeout() {
        let addr = server(None).await;
        let started = std::time::Instant::now();
        let err = send(addr, options(1000, 200, 1000)).await.err().unwrap();
        assert!(matches!(err, Error::ConnectionReadTimeout));
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(2), "{took:?}");
    }

    #[tokio::test]
    async fn a_body_that_stalls_is_a_read_timeout() {
        let addr = server(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")).await;
        let (response, _) = send(addr, options(1000, 1000, 200)).await.ok().unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first.as_ref(), b"abc");
        let started = std::time::Instant::now();
        let err = body.frame().await.unwrap().err().unwrap();
        assert!(matches!(err, Error::ConnectionReadTimeout));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(body.frame().await.is_none(), "the body ends after the timeout");
    }

    #[tokio::test]
    async fn a_body_whose_frames_keep_coming_is_never_cut() {
        // Three pieces 120 ms apart under a 200 ms limit: 360 ms in all, but no gap over the limit.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nabc").await.unwrap();
            for piece in [b"def", b"ghi"] {
                tokio::time::sleep(Duration::from_millis(120)).await;
                socket.write_all(piece).await.unwrap();
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let (response, _) = send(addr, options(1000, 1000, 200)).await.ok().unwrap();
        let body = response.into_body().collect().await.unwrap_or_else(|_| panic!("a gap exceeded the limit")).to_bytes();
        assert_eq!(body.as_ref(), b"abcdefghi");
    }

    #[tokio::test]
    async fn a_closed_port_is_connection_refused() {
        let addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let err = send(addr, options(1000, 1000, 1000)).await.err().unwrap();
        assert!(matches!(err, Error::ConnectionRefused));
    }

    /// A listener whose accept queue is full drops further SYNs, so connecting hangs.
    #[tokio::test]
    async fn a_connect_that_hangs_is_a_connection_timeout() {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        // Fill the queue (never accepted).
        let mut fillers = vec![];
        for _ in 0..4 {
            if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_millis(100), tokio::net::TcpStream::connect(addr)).await {
                fillers.push(s);
            }
        }
        let started = std::time::Instant::now();
        let err = send(addr, options(300, 5000, 5000)).await.err().unwrap();
        assert!(matches!(err, Error::ConnectionTimeout));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    /// A server on its own thread that answers the first request with a body of `len` bytes written
    /// 4 KiB at a time, 100 µs apart (as s3s-fs sends a file), and the second with `ok`.
    fn piecemeal_server(len: usize) -> std::net::SocketAddr {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            socket.set_nodelay(true).unwrap();
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).unwrap();
            socket.write_all(format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n").as_bytes()).unwrap();
            let piece = [7u8; 4096];
            let mut left = len;
            while left > 0 {
                let n = left.min(piece.len());
                socket.write_all(&piece[..n]).unwrap();
                left -= n;
                std::thread::sleep(Duration::from_micros(100));
            }
            let _ = socket.read(&mut buf).unwrap();
            socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").unwrap();
            std::thread::sleep(Duration::from_secs(5));
        });
        addr
    }

    #[tokio::test]
    async fn a_body_in_small_pieces_gathers_in_the_socket_and_leaves_its_connection_ready_for_any_byte() {
        let len = 300_000; // not a multiple of 4 KiB: the last piece is short
        let addr = piecemeal_server(len);
        let mut outbound = plain();
        let call = |outbound: &mut Outbound| Pin::from(outbound.send_request(get(addr), options(1000, 2000, 2000), Box::new(async { Ok(()) })));
        let (response, _) = call(&mut outbound).await.ok().unwrap();
        let low = response.extensions().get::<LowWater>().cloned().expect("a pooled plain-HTTP answer carries its socket's mark");
        let reading = tokio::spawn(response.into_body().collect());
        // While the body is read, the mark rises for the lingers (sampled from this task).
        let mut highest = 0;
        while !reading.is_finished() {
            highest = highest.max(low.get().unwrap_or(0));
            tokio::time::sleep(Duration::from_micros(50)).await;
        }
        let body = reading.await.unwrap().ok().unwrap().to_bytes();
        assert_eq!(body.len(), len, "the whole body, the short last piece included");
        assert!(highest > 4096, "the mark was raised while short frames lingered (highest {highest})");
        assert_eq!(low.get(), Some(1), "the connection goes back to the pool waking for any byte");
        // The same pooled connection: a 2-byte answer would stall under a raised mark.
        let started = std::time::Instant::now();
        let (response, _) = call(&mut outbound).await.ok().unwrap();
        assert_eq!(response.into_body().collect().await.ok().unwrap().to_bytes().as_ref(), b"ok");
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    }

    /// A file of the test TLS material in tests/data/tls.
    fn tls_data(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/../tests/data/tls/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    /// An HTTPS server (the test certificate for 127.0.0.1) that answers every request `ok` and
    /// counts the connections it accepted.
    async fn https_server() -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        let acceptor = crate::tls::acceptor(&[tls_data("server.der")], &tls_data("server.key.der")).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(socket).await else { return };
                    let ok = hyper::service::service_fn(|_| async { Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(b"ok")))) });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), ok).await;
                });
            }
        });
        (addr, accepted)
    }

    #[tokio::test]
    async fn https_connections_are_verified_and_reused_across_requests() {
        let (addr, accepted) = https_server().await;
        let mut outbound = Outbound::new(crate::observe::Observer::new(Default::default()), true, crate::tls::client_config(&[tls_data("ca.der")]).unwrap());
        for _ in 0..3 {
            let sent = Pin::from(outbound.send_request(get_over("https", addr), options(1000, 1000, 1000), Box::new(async { Ok(()) }))).await;
            let Ok((response, _)) = sent else { panic!("no verified HTTPS answer") };
            assert_eq!(response.into_body().collect().await.ok().unwrap().to_bytes().as_ref(), b"ok");
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1, "one TLS connection for three requests");
    }

    #[tokio::test]
    async fn an_https_server_with_an_untrusted_certificate_is_a_tls_error() {
        let (addr, _) = https_server().await;
        let mut outbound = plain();
        let sent = Pin::from(outbound.send_request(get_over("https", addr), options(1000, 1000, 1000), Box::new(async { Ok(()) }))).await;
        assert!(matches!(sent.err(), Some(Error::TlsCertificateError)));
    }

    #[tokio::test]
    async fn an_answer_passes_with_its_body() {
        let addr = server(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")).await;
        let (response, _) = send(addr, options(1000, 1000, 1000)).await.ok().unwrap();
        let body = response.into_body().collect().await.ok().unwrap().to_bytes();
        assert_eq!(body.as_ref(), b"ok");
    }
}
