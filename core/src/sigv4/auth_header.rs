//! The `Authorization` header mechanism: parsing the header, the request time and the payload hash into a claim.

use super::claim::{parse_claim, unsupported_auth, Claim, Mechanism};
use super::payload::check_payload_hash;
use super::sign::date_of;
use super::ALGORITHM;
use crate::clock::{amz_date, parse_amz_date, parse_http_date};
use crate::error::{ErrorCode, S3Error};
use crate::route::header;

/// What an `Authorization: AWS4-HMAC-SHA256 ...` request claims, parsed and checked for form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderClaim<'a> {
    /// Credential, signed headers and signature.
    pub claim: Claim<'a>,
    /// The request time as signed, `YYYYMMDDTHHMMSSZ`.
    pub amz_date: String,
    /// The same time in Unix seconds.
    pub time: u64,
    /// The `x-amz-content-sha256` value (one S3 knows).
    pub payload_hash: &'a str,
}

/// `Credential=...`, `SignedHeaders=...`, `Signature=...` of the header value.
fn parse_fields(authorization: &str) -> Result<(&str, &str, &str), S3Error> {
    let mech = Mechanism::Header;
    let Some(rest) = authorization.strip_prefix(ALGORITHM).filter(|r| r.starts_with(' ')) else {
        if authorization.starts_with("AWS ")
            || (authorization.starts_with("AWS4-") && !authorization.starts_with(ALGORITHM))
        {
            return Err(unsupported_auth());
        }
        // Not an AWS scheme at all (Bearer, Basic, ...): S3's answer names the header.
        if !authorization.trim().is_empty() && !authorization.starts_with("AWS") {
            return Err(S3Error::invalid_argument("Unsupported Authorization Type"));
        }
        return Err(mech.malformed("it must start with AWS4-HMAC-SHA256"));
    };
    let (mut credential, mut signed_headers, mut sig) = (None, None, None);
    for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some(("Credential", v)) => credential = Some(v.trim()),
            Some(("SignedHeaders", v)) => signed_headers = Some(v.trim()),
            Some(("Signature", v)) => sig = Some(v.trim()),
            Some(_) => {}
            None => return Err(mech.malformed(format!("{part:?} is not key=value"))),
        }
    }
    match (credential, signed_headers, sig) {
        (Some(c), Some(h), Some(s)) => Ok((c, h, s)),
        _ => Err(mech.malformed("it needs Credential, SignedHeaders and Signature")),
    }
}

fn access_denied(message: &str) -> S3Error {
    S3Error::new(ErrorCode::AccessDenied, message)
}

/// The signed request time: `x-amz-date`, else the `Date` header; as signed and in Unix seconds.
///
/// A `Date` may be ISO 8601 basic (`YYYYMMDDTHHMMSSZ`, as AWS documents for signing with it) or
/// any HTTP date S3 reads (RFC 1123 with `GMT`, `UTC` or a numeric zone such as botocore's
/// `-0000`, RFC 850, asctime); the string to sign carries it as `YYYYMMDDTHHMMSSZ` in UTC.
fn request_time(headers: &[(String, String)]) -> Result<(String, u64), S3Error> {
    if let Some(x) = header(headers, "x-amz-date") {
        let x = x.trim();
        let t = parse_amz_date(x).ok_or_else(|| access_denied("x-amz-date must be YYYYMMDDTHHMMSSZ"))?;
        return Ok((x.to_string(), t));
    }
    let Some(d) = header(headers, "date") else {
        return Err(access_denied("AWS authentication requires a valid Date or x-amz-date header"));
    };
    let t = parse_amz_date(d.trim()).or_else(|| parse_http_date(d)).ok_or_else(|| {
        access_denied("the Date header is not an HTTP date (RFC 1123, RFC 850, asctime) nor YYYYMMDDTHHMMSSZ")
    })?;
    Ok((amz_date(t), t))
}

/// Parse the `Authorization` header value of a request with these headers; `region` is the proxy's.
pub fn parse<'a>(
    headers: &'a [(String, String)],
    authorization: &'a str,
    region: &str,
) -> Result<HeaderClaim<'a>, S3Error> {
    let mech = Mechanism::Header;
    let (credential, signed_headers, sig) = parse_fields(authorization.trim())?;
    let claim = parse_claim(mech, credential, signed_headers, sig, region)?;
    let (amz_date, time) = request_time(headers)?;
    if date_of(&amz_date) != claim.date {
        return Err(mech.malformed("Invalid credential date. Date is not the same as X-Amz-Date."));
    }
    let payload_hash = header(headers, "x-amz-content-sha256").map(str::trim).ok_or_else(|| {
        S3Error::new(ErrorCode::InvalidRequest, "Missing required header for this request: x-amz-content-sha256")
    })?;
    check_payload_hash(payload_hash)?;
    Ok(HeaderClaim { claim, amz_date, time, payload_hash })
}
