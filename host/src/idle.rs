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
use std::sync::{Mutex, OnceLock};
use wasmtime::{Engine, EngineWeak, Store};
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
    /// The instance this thread finished last, not yet torn down.
    static FINISHED: RefCell<Option<Store<RequestState>>> = const { RefCell::new(None) };
    /// The instance made for this thread's next request.
    static SPARE: RefCell<Option<Spare>> = const { RefCell::new(None) };
}

/// For each engine, how many threads hold a claim on it.
static CLAIMS: Mutex<Vec<(EngineWeak, usize)>> = Mutex::new(Vec::new());

/// How many threads may do idle work with one engine: one per core, as many as the runner serves
/// on, and as many as the engine's pooling allocator has room for.
pub fn threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(crate::threads::per_core)
}

/// Whether [`IDLE_WORK_VAR`] leaves idle work on.
pub fn on_from_env() -> bool {
    std::env::var(IDLE_WORK_VAR).map_or(true, |v| v != "0")
}

/// The calling thread's right to do idle work with an engine; dropping it tears down what the
/// thread holds.
pub(crate) struct Claim(Engine);

/// Claim idle work with `engine` for the calling thread, unless [`threads`] threads already have.
pub(crate) fn claim(engine: &Engine) -> Option<Claim> {
    claims_of(engine, |n| (*n < threads()).then(|| *n += 1))?;
    CLAIMED.with(|c| c.set(true));
    Some(Claim(engine.clone()))
}

impl Drop for Claim {
    fn drop(&mut self) {
        CLAIMED.with(|c| c.set(false));
        drop(FINISHED.with(|f| f.borrow_mut().take()));
        drop(SPARE.with(|s| s.borrow_mut().take()));
        claims_of(&self.0, |n| {
            *n = n.saturating_sub(1);
            Some(())
        });
    }
}

/// `f` applied to the count of claims on `engine` (engines gone are forgotten first).
fn claims_of<T>(engine: &Engine, f: impl FnOnce(&mut usize) -> Option<T>) -> Option<T> {
    let mut claims = CLAIMS.lock().ok()?;
    claims.retain(|(weak, _)| weak.upgrade().is_some());
    let at = match claims.iter().position(|(weak, _)| weak.upgrade().is_some_and(|e| Engine::same(&e, engine))) {
        Some(at) => at,
        None => {
            claims.push((engine.weak(), 0));
            claims.len() - 1
        }
    };
    f(&mut claims[at].1)
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
