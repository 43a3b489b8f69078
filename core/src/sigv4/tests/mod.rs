//! Tests of SigV4 as a whole: AWS's test suite, the S3 documentation's examples and client round trips.

pub(crate) use super::canonical::canonical_uri;
pub(crate) use super::chunk::ChunkSigner;
pub(crate) use super::payload::{
    EMPTY_SHA256, STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER, UNSIGNED_PAYLOAD,
};
pub(crate) use super::sign::{
    canonical_request, sha256_hex, sign_headers, signature, signing_key, string_to_sign,
    SignRequest,
};
pub(crate) use super::verify::{verify, InboundRequest, Verified};
pub(crate) use super::verify::MAX_SKEW_SECS;
pub(crate) use super::{payload_mode_unauthenticated, PayloadMode, ALGORITHM};
pub(crate) use crate::clock::{amz_date, parse_amz_date, parse_http_date};
pub(crate) use crate::codec::{decode_query, uri_encode};
pub(crate) use crate::error::ErrorCode;

mod aws_suite;
mod round_trips;
mod s3_examples;

/// Owned `(name, value)` pairs.
pub(crate) fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// An inbound request over borrowed parts.
pub(crate) fn inbound<'a>(
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: &'a [(String, String)],
) -> InboundRequest<'a> {
    InboundRequest {
        method,
        raw_path: path,
        raw_query: query,
        headers,
    }
}
