//! Native host for the tempo-s3-shard component: runs the real `.wasm` under wasmtime with Spin's
//! variables and wasi:http, next to real S3 backends. It is the local runner, the test harness and
//! the benchmark driver.

pub mod args;
pub mod backends;
pub mod component;
pub mod frames;
pub mod goconfig;
pub mod idle;
pub mod low_water;
pub mod manifest;
pub mod metrics;
pub mod observe;
pub mod outbound;
pub mod tls;
pub mod pool;
pub mod ring_plan;
pub mod rebalance;
pub mod service;
pub mod threads;
pub mod wasm;

pub use backends::{BackendOptions, S3Backend};
pub use component::ComponentHost;
