//! Signing: the signing key, credential scope, canonical request, string to sign and `Authorization` value of a request.

use super::canonical::{canonical_headers, canonical_query_string};
use super::ALGORITHM;
use crate::codec::hex;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so this never fails.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The SigV4 signing key for `date` (`YYYYMMDD`), region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// `date/region/service/aws4_request`.
pub fn credential_scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/aws4_request")
}

/// Everything needed to sign one request.
#[derive(Debug, Clone, Copy)]
pub struct SignRequest<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// Already-encoded path as on the wire, e.g. `/bucket/a%20b`.
    pub canonical_uri: &'a str,
    /// Decoded query parameters.
    pub query: &'a [(String, String)],
    /// Headers to sign, names in any case; for S3 include host, x-amz-date and x-amz-content-sha256.
    pub headers: &'a [(String, String)],
    /// The `x-amz-content-sha256` value.
    pub payload_hash: &'a str,
    /// Access key the signature is made for.
    pub access_key_id: &'a str,
    /// Its secret.
    pub secret_access_key: &'a str,
    /// Region of the credential scope.
    pub region: &'a str,
    /// Service of the credential scope (`s3`).
    pub service: &'a str,
    /// `YYYYMMDDTHHMMSSZ`.
    pub amz_date: &'a str,
}

/// The `YYYYMMDD` part of an `x-amz-date`.
pub fn date_of(amz_date: &str) -> &str {
    amz_date.get(..8).unwrap_or(amz_date)
}

/// The SigV4 canonical request.
pub fn canonical_request(req: &SignRequest) -> String {
    canonical_request_of(req, &canonical_headers(req.headers))
}

/// The canonical request, its headers already made canonical (block and signed names).
fn canonical_request_of(req: &SignRequest, (headers, signed): &(String, String)) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        req.canonical_uri,
        canonical_query_string(req.query),
        headers,
        signed,
        req.payload_hash
    )
}

/// The SigV4 string to sign for a canonical request.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", sha256_hex(canonical_request.as_bytes()))
}

/// Hex signature of the request.
pub fn signature(req: &SignRequest) -> String {
    signature_of(req, &canonical_headers(req.headers))
}

/// The signature, the request's headers already made canonical.
fn signature_of(req: &SignRequest, canonical: &(String, String)) -> String {
    let date = date_of(req.amz_date);
    let scope = credential_scope(date, req.region, req.service);
    let key = signing_key(req.secret_access_key, date, req.region, req.service);
    hex(&hmac(&key, string_to_sign(req.amz_date, &scope, &canonical_request_of(req, canonical)).as_bytes()))
}

/// The full `Authorization` header value for the request.
pub fn sign_headers(req: &SignRequest) -> String {
    let canonical = canonical_headers(req.headers);
    let scope = credential_scope(date_of(req.amz_date), req.region, req.service);
    format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={}",
        req.access_key_id,
        canonical.1,
        signature_of(req, &canonical)
    )
}
