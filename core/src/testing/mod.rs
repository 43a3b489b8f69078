//! Test support shared by the core's tests, the property tests and the benchmarks: a deterministic
//! random generator, a proxy context, and a scripted transport for the request flows.

pub mod script;


/// A small deterministic random generator (xorshift64): reproducible key sets and interleavings
/// without a dependency. Not for anything secret. Seed with any non-zero value.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits. (Not `Iterator::next`: the stream never ends, and an `Option`
    /// would only add unwraps to every caller.)
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A random version-4-shaped UUID string, like Tempo's block ids.
    pub fn uuid(&mut self) -> String {
        let h = format!("{:016x}{:016x}", self.next(), self.next());
        format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    }
}

/// A proxy context over `http://127.0.0.1:9000` with anonymous access and backend keys `ak` /
/// `very-secret`; `vars` override or add variables (`buckets` defaults to `shard1,shard2,shard3`).
pub fn proxy_with(vars: &[(&str, &str)]) -> crate::context::Proxy {
    let defaults = [
        ("buckets", "shard1,shard2,shard3"),
        ("endpoint", "http://127.0.0.1:9000"),
        ("allow_anonymous", "true"),
        ("access_key_id", "ak"),
        ("secret_access_key", "very-secret"),
    ];
    let lookup = |name: &str| {
        vars.iter().chain(defaults.iter()).find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    };
    match crate::config::Config::from_lookup(lookup) {
        Ok(cfg) => crate::context::Proxy::new(cfg),
        Err(e) => panic!("test configuration is invalid: {e}"),
    }
}

/// Run a future to completion on this thread (the flows' tests need no executor crate, so the
/// workspace's `futures` keeps one feature set and nothing heavy rebuilds for it).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => std::thread::park(),
        }
    }
}
