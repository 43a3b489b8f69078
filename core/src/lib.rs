//! Sans-IO core of tempo-s3-shard: everything the proxy decides, as plain functions over bytes and strings.
//!
//! No Spin, WASI or network types appear here. [`flow::handle`] drives each request to its answer
//! through a [`flow::Transport`] the adapter implements (the Spin component in `src/`, a scripted
//! one in the tests); the adapter only executes the steps it is asked for.

pub mod access_log;
pub mod admin;
pub mod auth;
pub mod backend;
pub mod backend_error;
pub mod batch_delete;
pub mod body_limit;
pub mod checks;
pub mod checksum;
pub mod chunked;
pub mod clock;
pub mod codec;
pub mod config;
pub mod context;
pub mod copy;
pub mod error;
pub mod flow;
pub mod list_uploads;
pub mod listing;
pub mod query;
pub mod reply;
pub mod request_body;
pub mod rewrite;
pub mod ring;
pub mod route;
pub mod sha256x4;
pub mod sigv4;
pub mod sse;
pub mod testing;
pub mod types;
pub mod xml;

pub use error::{ErrorCode, S3Error, S3Result};
