//! Verification: choosing the mechanism of an inbound request and checking its claim against the secret, the clock and the request.

use super::canonical::canonical_uri;
use super::chunk::ChunkSigner;
use super::claim::{unsupported_auth, Claim};
use super::payload::PayloadMode;
use super::sign::{credential_scope, signature, signing_key, SignRequest};
use super::{auth_header, presigned};
use crate::codec::decode_query;
use crate::error::{ErrorCode, S3Error};
use crate::route::{header, header_entries};

/// Largest accepted difference between the request time and now, for header authentication.
pub const MAX_SKEW_SECS: u64 = 15 * 60;

/// An inbound request as received.
#[derive(Debug, Clone, Copy)]
pub struct InboundRequest<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// Exactly as received, percent-encoded, without the query.
    pub raw_path: &'a str,
    /// Exactly as received, without the `?`.
    pub raw_query: &'a str,
    /// Header names in any case, values as received.
    pub headers: &'a [(String, String)],
}

/// Outcome of a successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// No authentication at all (the caller decides whether that is allowed).
    Anonymous,
    /// A valid signature by this access key.
    Signed {
        /// The key that signed.
        access_key_id: String,
        /// How the body is protected.
        payload: PayloadMode,
    },
}

/// Compare without an early exit, so timing does not reveal how much of a signature matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Headers that change what a request does (a PUT becomes a copy of another object) and so must be
/// covered by its signature: otherwise anyone holding a signed request or a presigned PUT URL could
/// add them.
fn must_be_signed(lowercase_name: &str) -> bool {
    lowercase_name.starts_with("x-amz-copy-source")
}

/// The request's headers the claim signs, in claimed order; every one must be present, and every
/// header that [`must_be_signed`] must be among them.
fn signed_headers(req: &InboundRequest, claim: &Claim) -> Result<Vec<(String, String)>, S3Error> {
    let mut headers = Vec::new();
    for name in &claim.signed_headers {
        let before = headers.len();
        headers.extend(header_entries(req.headers, name).cloned());
        if headers.len() == before {
            return Err(S3Error::new(
                ErrorCode::SignatureDoesNotMatch,
                format!("the signed header '{name}' is not in the request"),
            ));
        }
    }
    let unsigned = req.headers.iter().map(|(n, _)| n.to_ascii_lowercase()).find(|n| {
        must_be_signed(n) && !claim.signed_headers.contains(n)
    });
    if let Some(name) = unsigned {
        return Err(S3Error::new(
            ErrorCode::AccessDenied,
            format!("There were headers present in the request which were not signed: {name}"),
        ));
    }
    Ok(headers)
}

/// Check the claimed signature over the request; on success return the mode of the body.
fn check_signature(
    req: &InboundRequest,
    claim: &Claim,
    query: &[(String, String)],
    amz_date: &str,
    payload_hash: &str,
    secret: &str,
) -> Result<PayloadMode, S3Error> {
    let headers = signed_headers(req, claim)?;
    let uri = canonical_uri(req.raw_path)?;
    let expected = signature(&SignRequest {
        method: req.method,
        canonical_uri: &uri,
        query,
        headers: &headers,
        payload_hash,
        access_key_id: claim.access_key_id,
        secret_access_key: secret,
        region: claim.region,
        service: "s3",
        amz_date,
    });
    if !constant_time_eq(expected.as_bytes(), claim.signature.as_bytes()) {
        return Err(S3Error::new(
            ErrorCode::SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        ));
    }
    Ok(PayloadMode::of_signed(payload_hash, || {
        ChunkSigner::new(
            signing_key(secret, claim.date, claim.region, "s3"),
            amz_date,
            &credential_scope(claim.date, claim.region, "s3"),
            &expected,
        )
    }))
}

fn lookup(lookup_secret: &dyn Fn(&str) -> Option<String>, access_key_id: &str) -> Result<String, S3Error> {
    lookup_secret(access_key_id).ok_or_else(|| {
        S3Error::new(ErrorCode::InvalidAccessKeyId, "The AWS access key Id you provided does not exist in our records.")
    })
}

fn verify_header(
    req: &InboundRequest,
    query: &[(String, String)],
    authorization: &str,
    now_unix: u64,
    lookup_secret: &dyn Fn(&str) -> Option<String>,
    region: &str,
) -> Result<Verified, S3Error> {
    let parsed = auth_header::parse(req.headers, authorization, region)?;
    let secret = lookup(lookup_secret, parsed.claim.access_key_id)?;
    if now_unix.abs_diff(parsed.time) > MAX_SKEW_SECS {
        return Err(S3Error::new(
            ErrorCode::RequestTimeTooSkewed,
            "The difference between the request time and the current time is too large.",
        ));
    }
    let payload = check_signature(req, &parsed.claim, query, &parsed.amz_date, parsed.payload_hash, &secret)?;
    Ok(Verified::Signed { access_key_id: parsed.claim.access_key_id.to_string(), payload })
}

fn verify_presigned(
    req: &InboundRequest,
    query: &[(String, String)],
    now_unix: u64,
    lookup_secret: &dyn Fn(&str) -> Option<String>,
    region: &str,
) -> Result<Verified, S3Error> {
    let parsed = presigned::parse(req.headers, query, region)?;
    let secret = lookup(lookup_secret, parsed.claim.access_key_id)?;
    if now_unix > parsed.time.saturating_add(parsed.expires) {
        return Err(S3Error::new(ErrorCode::AccessDenied, "Request has expired"));
    }
    if parsed.time > now_unix.saturating_add(MAX_SKEW_SECS) {
        return Err(S3Error::new(ErrorCode::AccessDenied, "Request is not valid yet"));
    }
    let signed_query: Vec<(String, String)> =
        query.iter().filter(|(k, _)| k != "X-Amz-Signature").cloned().collect();
    let payload =
        check_signature(req, &parsed.claim, &signed_query, parsed.amz_date, parsed.payload_hash, &secret)?;
    Ok(Verified::Signed { access_key_id: parsed.claim.access_key_id.to_string(), payload })
}

/// Verify an inbound request's SigV4 authentication (header or presigned URL); no auth is `Anonymous`.
pub fn verify(
    req: &InboundRequest,
    now_unix: u64,
    lookup_secret: &dyn Fn(&str) -> Option<String>,
    region: &str,
) -> Result<Verified, S3Error> {
    let query = decode_query(req.raw_query)?;
    let has = |name: &str| query.iter().any(|(k, _)| k == name);
    let presigned = has("X-Amz-Algorithm") || has("X-Amz-Credential") || has("X-Amz-Signature");
    match header(req.headers, "authorization") {
        Some(_) if presigned => Err(S3Error::invalid_argument(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified",
        )),
        Some(auth) => verify_header(req, &query, auth, now_unix, lookup_secret, region),
        None if presigned => verify_presigned(req, &query, now_unix, lookup_secret, region),
        None if has("AWSAccessKeyId") && has("Signature") => Err(unsupported_auth()),
        None => Ok(Verified::Anonymous),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
