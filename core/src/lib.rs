//! Sans-IO core of tempo-s3-shard: everything the proxy decides, as plain functions over bytes and strings.
//!
//! No Spin, WASI or network types appear here; the Spin adapter (`src/lib.rs`) and the native host call
//! into these modules and do the I/O.

pub mod admin;
pub mod backend;
pub mod checks;
pub mod checksum;
pub mod chunked;
pub mod config;
pub mod copy;
pub mod delete;
pub mod error;
pub mod listing;
pub mod proxy;
pub mod rewrite;
pub mod ring;
pub mod route;
pub mod sigv4;
pub mod testing;
pub mod uploads;
pub mod xml;

pub use error::{ErrorCode, S3Error, S3Result};
