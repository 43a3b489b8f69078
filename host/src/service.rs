//! Serving over HTTP/1.1: the accept loop, `GET /metrics`, and graceful shutdown (stop accepting,
//! let every request in flight finish, then return).

use crate::component::ComponentHost;
use crate::metrics::Metrics;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use std::future::Future;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use crate::low_water::Watched;
use hyper_util::rt::TokioIo;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// The path the metrics are served at.
pub const METRICS_PATH: &str = "/metrics";

/// Where a server's connections come from: its own listener, or sockets another thread accepted.
pub enum Sockets {
    Listener(TcpListener),
    Handed(tokio::sync::mpsc::UnboundedReceiver<std::net::TcpStream>),
}

impl Sockets {
    /// The next connection; `None` when there will be none (the sender is gone).
    async fn next(&mut self) -> Option<TcpStream> {
        loop {
            match self {
                Sockets::Listener(listener) => match listener.accept().await {
                    Ok((socket, _)) => return Some(socket),
                    Err(_) => continue,
                },
                Sockets::Handed(handed) => {
                    let socket = handed.recv().await?;
                    if let Ok(socket) = socket.set_nonblocking(true).and_then(|()| TcpStream::from_std(socket)) {
                        return Some(socket);
                    }
                }
            }
        }
    }
}

/// Serve `host` on the connections from `sockets` until `shutdown` resolves; then stop accepting,
/// let the connections' requests in flight finish (idle keep-alive connections close at once) and
/// return.
pub async fn serve_sockets(host: ComponentHost, sockets: Sockets, shutdown: impl Future<Output = ()>) {
    let nodelay = host.nodelay;
    accept_until(sockets, shutdown, nodelay, move |socket, stop| {
        let host = host.clone();
        async move {
            let metrics = host.metrics().clone();
            metrics.connections(1);
            let socket = Watched::new(TokioIo::new(socket));
            let low = socket.low_water();
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                let host = host.clone();
                // The request's body raises its socket's mark while it gathers small pieces.
                req.extensions_mut().insert(low.clone());
                async move {
                    if host.metrics_on_port && is_metrics_request(&req) {
                        return Ok(metrics_response(host.metrics()));
                    }
                    host.handle(req).await
                }
            });
            connection(socket, service, stop).await;
            metrics.connections(-1);
        }
    })
    .await
}

/// Serve only `GET /metrics` on `listener` (the runner's `--metrics-listen`) until the task is aborted.
pub async fn serve_metrics(metrics: Arc<Metrics>, listener: TcpListener) {
    accept_until(Sockets::Listener(listener), std::future::pending(), true, move |socket, stop| {
        let metrics = metrics.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let metrics = metrics.clone();
            async move {
                if is_metrics_request(&req) {
                    return Ok::<_, std::convert::Infallible>(metrics_response(&metrics));
                }
                Ok(text_response(404, "text/plain; charset=utf-8", format!("only GET {METRICS_PATH} is served here\n")))
            }
        });
        connection(TokioIo::new(socket), service, stop)
    })
    .await
}

/// Accept connections and run `serve` on each until `shutdown`; then tell them to stop and wait.
async fn accept_until<S, F>(mut sockets: Sockets, shutdown: impl Future<Output = ()>, nodelay: bool, serve: S)
where
    S: Fn(TcpStream, watch::Receiver<bool>) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = sockets.next() => {
                let Some(socket) = accepted else { break };
                // Spin's own server never sets it (the Spin-faithful mode leaves it off too).
                if nodelay {
                    let _ = socket.set_nodelay(true);
                }
                connections.spawn(serve(socket, stopped.clone()));
            }
        }
        while connections.try_join_next().is_some() {}
    }
    drop(sockets);
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
}

/// One HTTP/1.1 connection; on `stop` it finishes the request in flight and closes.
async fn connection<I, S>(io: I, service: S, mut stop: watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<HyperOutgoingBody>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = http1::Builder::new().keep_alive(true).serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

fn is_metrics_request<B>(req: &hyper::Request<B>) -> bool {
    req.method() == hyper::Method::GET && req.uri().path() == METRICS_PATH
}

/// The metrics in the Prometheus text format.
fn metrics_response(metrics: &Metrics) -> hyper::Response<HyperOutgoingBody> {
    text_response(200, "text/plain; version=0.0.4; charset=utf-8", metrics.render())
}

fn text_response(status: u16, content_type: &str, body: String) -> hyper::Response<HyperOutgoingBody> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

/// A future that resolves on SIGTERM or Ctrl-C (SIGINT) and says the runner is shutting down. The
/// handlers are installed now, so a signal that comes before the future is first polled still counts.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        println!("tempo-s3-shard: shutting down: no new connections; finishing the requests in flight");
    })
}
