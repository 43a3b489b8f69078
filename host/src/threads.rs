//! Serving on one thread per core: each thread runs a single-threaded runtime with its own outbound
//! connection pool, and the first also accepts, handing the connections to the threads in turn, so
//! the tasks of one request (its connection, its instance, its backend connections) never wake
//! another thread.
//!
//! On a multi-threaded runtime each of those tasks may run on a different worker, and every hop
//! between them is a wake-up of another thread (a futex and, in a VM, an inter-processor
//! interrupt). Measured with the bench on 2 cores, that was a tenth to a fifth of the proxy's CPU
//! per request. Threads accepting from a shared listener themselves do not spread the work: the
//! first to wake takes a whole burst of connections. Behaviour is unchanged: only where tasks run
//! differs. While its requests wait on backends, a thread also does their instances' fixed work
//! ([`crate::idle`]).

use crate::component::ComponentHost;
use crate::service::Sockets;
use anyhow::Context as _;
use std::future::Future;
use std::net::SocketAddr;
use tokio::sync::{mpsc, watch};

/// Serving threads; dropping this stops them (each finishes the requests it has in flight).
pub struct Threads {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Threads {
    /// Serve `host` on `listener` with `count` threads named `name` (at least one).
    pub fn serve(host: &ComponentHost, listener: std::net::TcpListener, count: usize, name: &str) -> anyhow::Result<Threads> {
        listener.set_nonblocking(true).context("cannot make the listener non-blocking")?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..count.max(1)).map(|_| mpsc::unbounded_channel()).unzip();
        let mut acceptor = Some((listener, senders, stopped));
        let mut threads = Vec::new();
        for handed in receivers {
            let (host, accepting) = (host.with_own_pool(), acceptor.take());
            let parking = host.clone();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .on_thread_park(move || crate::idle::on_park(&parking))
                .build()
                .context("cannot start a serving thread's runtime")?;
            let idle_work = host.idle_work.then(|| host.engine().clone());
            let thread = std::thread::Builder::new().name(name.to_string()).spawn(move || {
                let _idle = idle_work.and_then(|engine| crate::idle::claim(&engine));
                runtime.block_on(async move {
                    if let Some((listener, senders, stopped)) = accepting {
                        tokio::spawn(accept(listener, senders, stopped));
                    }
                    tokio::spawn(keep_a_timer_due());
                    // Ends once the acceptor stops and drops its senders.
                    crate::service::serve_sockets(host, Sockets::Handed(handed), std::future::pending()).await;
                });
            });
            threads.push(thread.context("cannot start a serving thread")?);
        }
        Ok(Threads { addr, stop, threads })
    }

    /// Bind `addr` and serve on `count` threads named `name`.
    pub fn bind(host: &ComponentHost, addr: SocketAddr, count: usize, name: &str) -> anyhow::Result<Threads> {
        let listener = std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
        Threads::serve(host, listener, count, name)
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting, and return once every thread has finished its requests in flight.
    pub async fn stop(mut self, shutdown: impl Future<Output = ()>) {
        shutdown.await;
        let _ = self.stop.send(true);
        let threads = std::mem::take(&mut self.threads);
        let _ = tokio::task::spawn_blocking(move || threads.into_iter().for_each(|t| drop(t.join()))).await;
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        // Not joined: the threads end on their own once their connections are done.
        let _ = self.stop.send(true);
    }
}

/// Accept connections until `stopped`, handing each to the next serving thread in turn.
async fn accept(listener: std::net::TcpListener, to: Vec<mpsc::UnboundedSender<std::net::TcpStream>>, mut stopped: watch::Receiver<bool>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
    for next in (0..to.len()).cycle() {
        let socket = tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => socket,
                Err(_) => continue,
            },
        };
        if let Ok(socket) = socket.into_std() {
            let _ = to[next].send(socket);
        }
    }
}

/// How often [`keep_a_timer_due`] wakes: under the request time limits as configured by default
/// (seconds); a limit set shorter only costs the wake-up every limit cost before.
const TIMER_BEAT: std::time::Duration = std::time::Duration::from_millis(500);

/// Keep a timer due on this thread's runtime at all times. Tokio's timer wakes the runtime's I/O
/// driver (a write to its eventfd, then one more `epoll_wait`) whenever a timer is set earlier than
/// the earliest it has: with no timer at all between requests, that was every request's first
/// backend time limit. With this one always due within [`TIMER_BEAT`], those limits never are.
async fn keep_a_timer_due() {
    loop {
        tokio::time::sleep(TIMER_BEAT).await;
    }
}

/// One serving thread per core this process may use.
pub fn per_core() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
