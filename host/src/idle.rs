//! A serving thread's idle work: while its requests wait on backends, it tears down the instance of
//! the request it finished last and instantiates one for the request it will take next, so neither
//! costs a request its time. Every request still runs in a fresh instance of its own; only when the
//! runtime's fixed work is done differs (Spin instantiates as a request arrives and tears down as
//! it ends).
//!
//! A thread does this work only while an instance of its own is in flight: it then waits on a
//! backend (or a client's body), typically for far longer than the work takes. With no request in
//! flight it does none, as the next client request may come at any moment. The instances a thread
//! holds this way (at most one made ahead and one finished) are beyond the pool's count:
//! [`crate::pool::Pool::configure`] sizes the pooling allocator with room for them.

use crate::component::{ComponentHost, RequestState};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::Proxy;

/// An instance made before its request arrived.
pub(crate) type Spare = (Store<RequestState>, Proxy);

/// Instances one thread holds beyond the pool: the one made ahead and the one finished last.
pub const INSTANCES_PER_THREAD: u32 = 2;

/// Set to `0` to instantiate as each request arrives and tear down as it ends, as Spin does.
pub const IDLE_WORK_VAR: &str = "TEMPO_S3_SHARD_IDLE_WORK";

thread_local! {
    /// Whether this thread holds a [`Claim`].
    static CLAIMED: Cell<bool> = const { Cell::new(false) };
    /// This thread's instances between their start and their end.
    static IN_FLIGHT: Cell<usize> = const { Cell::new(0) };
    static FINISHED: RefCell<Option<Store<RequestState>>> = const { RefCell::new(None) };
    static SPARE: RefCell<Option<Spare>> = const { RefCell::new(None) };
}

/// Threads of this process holding a claim.
static CLAIMS: AtomicUsize = AtomicUsize::new(0);

/// How many threads of this process may do idle work: one per core, as many as the runner serves
/// on, and as many as the pooling allocator has room for.
pub fn threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(crate::threads::per_core)
}

/// Whether [`IDLE_WORK_VAR`] leaves idle work on.
pub fn on_from_env() -> bool {
    std::env::var(IDLE_WORK_VAR).map_or(true, |v| v != "0")
}

/// The calling thread's right to do idle work; dropping it tears down what the thread holds.
pub(crate) struct Claim(());

/// Claim idle work for the calling thread, unless [`threads`] threads already have.
pub(crate) fn claim() -> Option<Claim> {
    CLAIMS.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < threads()).then_some(n + 1)).ok()?;
    CLAIMED.with(|c| c.set(true));
    Some(Claim(()))
}

impl Drop for Claim {
    fn drop(&mut self) {
        CLAIMED.with(|c| c.set(false));
        drop(FINISHED.with(|f| f.borrow_mut().take()));
        drop(SPARE.with(|s| s.borrow_mut().take()));
        CLAIMS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The thread is about to wait for events (tokio's park hook): with an instance in flight, tear
/// down the finished one and make the next request's.
pub(crate) fn on_park(host: &ComponentHost) {
    if !CLAIMED.with(Cell::get) || IN_FLIGHT.with(Cell::get) == 0 {
        return;
    }
    drop(FINISHED.with(|f| f.borrow_mut().take()));
    if SPARE.with(|s| s.borrow().is_none()) {
        let spare = host.instantiate_now();
        SPARE.with(|s| *s.borrow_mut() = spare);
    }
}

/// The instance made ahead for this thread's next request, if there is one.
pub(crate) fn take_spare() -> Option<Spare> {
    SPARE.with(|s| s.borrow_mut().take())
}

/// An instance of this thread starts serving a request.
pub(crate) fn started() {
    IN_FLIGHT.with(|n| n.set(n.get() + 1));
}

/// An instance of this thread is done: kept to be torn down while the thread next waits (the one
/// kept before is torn down now), or given back when this thread does no idle work.
pub(crate) fn finished(store: Store<RequestState>) -> Option<Store<RequestState>> {
    IN_FLIGHT.with(|n| n.set(n.get().saturating_sub(1)));
    if !CLAIMED.with(Cell::get) {
        return Some(store);
    }
    drop(FINISHED.with(|f| f.borrow_mut().replace(store)));
    None
}
