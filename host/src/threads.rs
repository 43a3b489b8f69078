//! Serving on one thread per core: each thread runs a single-threaded runtime with its own outbound
//! connection pool and accepts from the shared listener, so the tasks of one request (its
//! connection, its instance, its backend connections) never wake another thread.
//!
//! On a multi-threaded runtime each of those tasks may run on a different worker, and every hop
//! between them is a wake-up of another thread (a futex and, in a VM, an inter-processor
//! interrupt). Measured with the bench on 2 cores, that was a tenth to a fifth of the proxy's CPU
//! per request. Behaviour is unchanged: only where tasks run differs.

use crate::component::ComponentHost;
use anyhow::Context as _;
use std::future::Future;
use std::net::SocketAddr;
use tokio::sync::watch;

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
        let mut threads = Vec::new();
        for _ in 0..count.max(1) {
            let (host, listener, mut stopped) = (host.with_own_pool(), listener.try_clone()?, stopped.clone());
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start a serving thread's runtime")?;
            let thread = std::thread::Builder::new().name(name.to_string()).spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                    crate::service::serve(host, listener, async move { drop(stopped.wait_for(|s| *s).await) }).await;
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

/// One serving thread per core this process may use.
pub fn per_core() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
