//! `x-amz-content-sha256`: the payload-hash values S3 knows and the body protection each selects.

use super::chunk::ChunkSigner;
use crate::error::S3Error;

/// Hex SHA-256 of the empty string, for requests without a body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// A body that is sent without hashing.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// An aws-chunked body whose chunks are signed.
pub const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
/// An aws-chunked body whose chunks and trailer are signed.
pub const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
/// An aws-chunked body with an unsigned trailer.
pub const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

/// How the request body is protected (from `x-amz-content-sha256`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadMode {
    /// `UNSIGNED-PAYLOAD` (or no header on an anonymous request).
    Unsigned,
    /// Lowercase hex the client claimed; the caller hashes the body and compares (XAmzContentSHA256Mismatch).
    Sha256(String),
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`.
    StreamingSigned(ChunkSigner),
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`.
    StreamingSignedTrailer(ChunkSigner),
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER` (and any aws-chunked body of an anonymous request).
    StreamingUnsignedTrailer,
}

impl PayloadMode {
    /// The mode a verified request's payload hash selects; `chunk_signer` seeds signed chunk chains.
    pub fn of_signed(payload_hash: &str, chunk_signer: impl FnOnce() -> ChunkSigner) -> PayloadMode {
        match payload_hash {
            UNSIGNED_PAYLOAD => PayloadMode::Unsigned,
            STREAMING_SIGNED => PayloadMode::StreamingSigned(chunk_signer()),
            STREAMING_SIGNED_TRAILER => PayloadMode::StreamingSignedTrailer(chunk_signer()),
            STREAMING_UNSIGNED_TRAILER => PayloadMode::StreamingUnsignedTrailer,
            h => PayloadMode::Sha256(h.to_ascii_lowercase()),
        }
    }
}

/// 64 hex digits, either case: a real SHA-256 claim.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Payload mode of an anonymous request: chunk signatures are not checked, framing is still decoded.
pub fn payload_mode_unauthenticated(x_amz_content_sha256: Option<&str>) -> PayloadMode {
    match x_amz_content_sha256.map(str::trim) {
        Some(STREAMING_SIGNED | STREAMING_SIGNED_TRAILER | STREAMING_UNSIGNED_TRAILER) => {
            PayloadMode::StreamingUnsignedTrailer
        }
        Some(h) if is_sha256_hex(h) => PayloadMode::Sha256(h.to_ascii_lowercase()),
        _ => PayloadMode::Unsigned,
    }
}

/// A signed request's `x-amz-content-sha256` must be one S3 knows (`NotImplemented` for other `STREAMING-*`).
pub fn check_payload_hash(h: &str) -> Result<(), S3Error> {
    match h {
        UNSIGNED_PAYLOAD | STREAMING_SIGNED | STREAMING_SIGNED_TRAILER | STREAMING_UNSIGNED_TRAILER => Ok(()),
        h if is_sha256_hex(h) => Ok(()),
        h if h.starts_with("STREAMING-") => Err(S3Error::not_implemented(&format!("x-amz-content-sha256 {h}"))),
        _ => Err(S3Error::invalid_argument(
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-* value or a SHA-256 hex digest",
        )),
    }
}
