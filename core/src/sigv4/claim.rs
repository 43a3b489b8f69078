//! The claim both SigV4 mechanisms carry (credential scope, signed headers, signature) and its parsing.

use crate::codec::digits;
use crate::error::{ErrorCode, S3Error};
use std::fmt;

/// Which of the two mechanisms is being checked: decides the error code of malformed input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// The `Authorization` header.
    Header,
    /// Presigned-URL query parameters.
    Query,
}

impl Mechanism {
    /// The mechanism's error for malformed input.
    pub fn malformed(self, message: impl fmt::Display) -> S3Error {
        match self {
            Mechanism::Header => S3Error::new(
                ErrorCode::AuthorizationHeaderMalformed,
                format!("The authorization header is malformed; {message}"),
            ),
            Mechanism::Query => S3Error::new(
                ErrorCode::AuthorizationQueryParametersError,
                format!("Error parsing the query-string authentication parameters; {message}"),
            ),
        }
    }
}

/// The error for SigV2 or another `AWS4-*` algorithm.
pub fn unsupported_auth() -> S3Error {
    S3Error::new(
        ErrorCode::InvalidRequest,
        "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
    )
}

/// The parts common to both mechanisms, once parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim<'a> {
    /// The access key the request claims to be signed with.
    pub access_key_id: &'a str,
    /// `YYYYMMDD` of the credential scope.
    pub date: &'a str,
    /// Region of the credential scope (equal to the proxy's).
    pub region: &'a str,
    /// Lowercase names of the signed headers, in the claimed order.
    pub signed_headers: Vec<String>,
    /// 64 lowercase hex digits.
    pub signature: &'a str,
}

fn is_signature(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `AK/date/region/s3/aws4_request` split into access key, date and region, checked against `region`.
fn parse_credential<'a>(
    mech: Mechanism,
    credential: &'a str,
    region: &str,
) -> Result<(&'a str, &'a str, &'a str), S3Error> {
    let not_a_credential =
        || mech.malformed(format!("the Credential {credential:?} is not AK/date/region/s3/aws4_request"));
    let mut parts = credential.rsplitn(5, '/');
    let (Some(terminal), Some(service), Some(cred_region), Some(date), Some(access_key_id)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(not_a_credential());
    };
    if terminal != "aws4_request" || access_key_id.is_empty() || date.len() != 8 || digits(date).is_none() {
        return Err(not_a_credential());
    }
    if service != "s3" {
        return Err(mech.malformed(format!("the service '{service}' is wrong; expecting 's3'")));
    }
    if cred_region != region {
        return Err(mech.malformed(format!("the region '{cred_region}' is wrong; expecting '{region}'")));
    }
    Ok((access_key_id, date, cred_region))
}

/// Parse and check the claim's parts; `region` is the proxy's.
pub fn parse_claim<'a>(
    mech: Mechanism,
    credential: &'a str,
    signed_headers: &str,
    signature: &'a str,
    region: &str,
) -> Result<Claim<'a>, S3Error> {
    let (access_key_id, date, cred_region) = parse_credential(mech, credential, region)?;
    let names: Vec<String> = signed_headers.split(';').map(|n| n.trim().to_ascii_lowercase()).collect();
    if names.iter().any(|n| n.is_empty()) {
        return Err(mech.malformed(format!("SignedHeaders {signed_headers:?} is not a ;-separated list")));
    }
    if !names.iter().any(|n| n == "host") {
        return Err(mech.malformed("SignedHeaders must include host"));
    }
    if !is_signature(signature) {
        return Err(mech.malformed("the Signature must be 64 lowercase hex digits"));
    }
    Ok(Claim { access_key_id, date, region: cred_region, signed_headers: names, signature })
}
