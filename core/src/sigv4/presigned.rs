//! The presigned-URL mechanism: parsing the `X-Amz-*` query parameters into a claim.

use super::claim::{parse_claim, Claim, Mechanism};
use super::payload::{check_payload_hash, UNSIGNED_PAYLOAD};
use super::sign::date_of;
use super::ALGORITHM;
use crate::clock::parse_amz_date;
use crate::codec::digits;
use crate::error::S3Error;
use crate::route::header;

/// Largest `X-Amz-Expires` of a presigned URL (7 days).
pub const MAX_PRESIGN_EXPIRES: u64 = 604_800;

/// What a presigned URL claims, parsed and checked for form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedClaim<'a> {
    /// Credential, signed headers and signature.
    pub claim: Claim<'a>,
    /// `X-Amz-Date` as signed, `YYYYMMDDTHHMMSSZ`.
    pub amz_date: &'a str,
    /// The same time in Unix seconds.
    pub time: u64,
    /// `X-Amz-Expires`: seconds from `time` the URL is valid for (1 to 7 days).
    pub expires: u64,
    /// The `x-amz-content-sha256` header, `UNSIGNED-PAYLOAD` if absent.
    pub payload_hash: &'a str,
}

/// Parse the presigned-URL parameters of a request with these headers and decoded query.
pub fn parse<'a>(
    headers: &'a [(String, String)],
    query: &'a [(String, String)],
    region: &str,
) -> Result<PresignedClaim<'a>, S3Error> {
    let mech = Mechanism::Query;
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| mech.malformed(format!("{name} is required")))
    };
    if param("X-Amz-Algorithm")? != ALGORITHM {
        return Err(mech.malformed("X-Amz-Algorithm only supports AWS4-HMAC-SHA256"));
    }
    let credential = param("X-Amz-Credential")?;
    let amz_date = param("X-Amz-Date")?;
    let expires = param("X-Amz-Expires")?;
    let signed_headers = param("X-Amz-SignedHeaders")?;
    let sig = param("X-Amz-Signature")?;
    let claim = parse_claim(mech, credential, signed_headers, sig, region)?;
    let time = parse_amz_date(amz_date).ok_or_else(|| mech.malformed("X-Amz-Date must be YYYYMMDDTHHMMSSZ"))?;
    if date_of(amz_date) != claim.date {
        return Err(mech.malformed("Invalid credential date. Date is not the same as X-Amz-Date."));
    }
    let expires = digits(expires)
        .map(u64::from)
        .filter(|e| (1..=MAX_PRESIGN_EXPIRES).contains(e))
        .ok_or_else(|| mech.malformed("X-Amz-Expires must be a number of seconds from 1 to 604800"))?;
    let payload_hash = header(headers, "x-amz-content-sha256").map_or(UNSIGNED_PAYLOAD, str::trim);
    check_payload_hash(payload_hash)?;
    Ok(PresignedClaim { claim, amz_date, time, expires, payload_hash })
}
