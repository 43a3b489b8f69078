//! Who may make a request: SigV4 verification against the client credentials, or anonymous access.

use crate::config::{Anonymous, Config};
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::route::{header, RequestParts};
use crate::sigv4::{self, PayloadMode};

/// Check the request's SigV4 signature (header or presigned URL) against the client credentials,
/// or admit it as anonymous where configuration allows; returns how its body must be checked.
pub fn authenticate(cfg: &Config, parts: &RequestParts, now_unix: u64) -> S3Result<PayloadMode> {
    let content_sha = header(&parts.headers, "x-amz-content-sha256");
    if cfg.client_credentials.is_empty() {
        // Anonymous mode without client keys: any signature (Tempo's empty keys, or a client's
        // own) is accepted as anonymous, so there is nothing to verify against.
        return Ok(sigv4::payload_mode_unauthenticated(content_sha));
    }
    let req = sigv4::InboundRequest {
        method: &parts.method,
        raw_path: &parts.raw_path,
        raw_query: &parts.raw_query,
        headers: &parts.headers,
    };
    match sigv4::verify(&req, now_unix, &|ak| cfg.client_secret(ak), &cfg.region)? {
        sigv4::Verified::Signed { payload, .. } => Ok(payload),
        sigv4::Verified::Anonymous => {
            let read = matches!(parts.method.as_str(), "GET" | "HEAD");
            match cfg.anonymous {
                Anonymous::Allowed => Ok(sigv4::payload_mode_unauthenticated(content_sha)),
                Anonymous::ReadOnly if read => Ok(sigv4::payload_mode_unauthenticated(content_sha)),
                Anonymous::ReadOnly => Err(S3Error::new(
                    ErrorCode::AccessDenied,
                    "Access Denied: anonymous requests may only read; sign the request with client credentials",
                )),
                Anonymous::Denied => Err(S3Error::new(
                    ErrorCode::AccessDenied,
                    "Access Denied: sign the request with SigV4 client credentials (anonymous access is disabled)",
                )),
            }
        }
    }
}
