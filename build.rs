//! Links the component with enough initial linear memory that a request never grows it, and no
//! more than the runtime resets without `madvise`.
//!
//! A wasm `memory.grow` makes wasmtime's pooling allocator (Spin's and the runner's) open the new
//! pages with `mprotect`, and close them again when the instance is reused: a TLB shootdown of every
//! core running the runtime, per request. Measured with perf (16 buckets, 4 KiB GETs): 10% of the
//! runner's CPU per request. A request needs about 1.1 MiB (stack and statics included), a large
//! transfer or a 64-bucket ring table under 2 MiB.
//!
//! Spin 3.6 resets the first 2 MiB of a finished instance's memory with `memset` and gives the rest
//! back with `madvise`, touched or not: with 4 MiB every request under `spin up`
//! paid one `madvise` of 2 MiB and a page fault more (perf: 3% of Spin's CPU per 4 KiB GET, plus the
//! shootdown on the other cores). 2 MiB is both: no growth, and `memset` alone.

/// Initial linear memory of the component, in bytes (a multiple of the 64 KiB wasm page), equal
/// to Spin's `linear_memory_keep_resident` (the runner's `SPIN_KEEP_RESIDENT`).
const INITIAL_MEMORY: u32 = 2 << 20;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=--initial-memory={INITIAL_MEMORY}");
    }
}
