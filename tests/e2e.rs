//! The end-to-end suite in one test binary, so the wasmtime host, s3s and the AWS SDK are linked once
//! rather than once per file: each module is one behaviour, tested through the real compiled component
//! (`cargo test --test e2e MODULE::` runs one of them).

// A failed expectation in a test helper is a failed test: unwrap there is the point (clippy.toml
// allows it in `#[test]` functions only).
#![allow(clippy::unwrap_used, clippy::type_complexity)]

mod common;

mod auth;
mod clients;
mod component;
mod conformance;
mod faults;
mod latency;
mod listing;
mod manifests;
mod metrics;
mod operations;
mod overload;
mod per_shard;
mod placement;
mod rebalance;
mod resharding;
mod s3_features;
