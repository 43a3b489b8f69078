//! AWS Signature Version 4 for S3: signing outbound requests and verifying inbound ones, one concern per submodule.
//!
//! - [`canonical`]: the canonical URI, query string and headers of a request;
//! - [`sign`]: signing keys, the string to sign and signatures of outbound requests;
//! - [`chunk`]: the signature chain of an aws-chunked body;
//! - [`payload`]: the `x-amz-content-sha256` values and the body protection they select;
//! - [`claim`], [`auth_header`], [`presigned`]: parsing what a request claims (Authorization header or
//!   presigned-URL parameters);
//! - [`verify`]: checking a claim against the secret, the clock and the request.

pub mod auth_header;
pub mod canonical;
pub mod chunk;
pub mod claim;
pub mod payload;
pub mod presigned;
pub mod sign;
pub mod verify;

pub use payload::{payload_mode_unauthenticated, PayloadMode};
pub use verify::{verify, InboundRequest, Verified};

/// The only signing algorithm S3 accepts for SigV4.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

#[cfg(test)]
mod tests;
