//! Links the component with enough initial linear memory that a request never grows it.
//!
//! A wasm `memory.grow` makes wasmtime's pooling allocator (Spin's and the runner's) open the new
//! pages with `mprotect`, and close them again when the instance is reused: a TLB shootdown of every
//! core running the runtime, per request. Measured with perf (16 buckets, 4 KiB GETs): 10% of the
//! runner's CPU per request. A request needs about 1.1 MiB (stack and statics included), a large
//! transfer or a 64-bucket ring table under 2 MiB; pages never touched cost nothing.

/// Initial linear memory of the component, in bytes (a multiple of the 64 KiB wasm page).
const INITIAL_MEMORY: u32 = 4 << 20;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=--initial-memory={INITIAL_MEMORY}");
    }
}
