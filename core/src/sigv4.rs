//! AWS Signature Version 4 for S3: signing outbound requests, verifying inbound ones (header or presigned URL), and chunk signatures.

use crate::error::{ErrorCode, S3Error};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Hex SHA-256 of the empty string.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
pub const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
pub const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
pub const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
/// Largest accepted difference between the request time and now, for header authentication.
pub const MAX_SKEW_SECS: u64 = 15 * 60;
/// Largest `X-Amz-Expires` of a presigned URL (7 days).
pub const MAX_PRESIGN_EXPIRES: u64 = 604_800;

// ---------------------------------------------------------------------------------------------
// Time

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let y = yoe + era * 400;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Seconds since the epoch of a validated civil UTC time; `None` if out of range or before 1970.
fn civil_to_unix(y: u32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<u64> {
    let y = y as i64;
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59
    {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    u64::try_from(days * 86_400 + (h * 3600 + mi * 60 + s) as i64).ok()
}

/// ASCII decimal digits only (1 to 9 of them).
fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// ISO 8601 as S3 writes it in XML (`LastModified`), e.g. `2013-05-24T00:00:00.000Z`.
pub fn iso8601(unix_secs: u64) -> String {
    let (y, m, d) = civil_from_days((unix_secs / 86_400) as i64);
    let s = unix_secs % 86_400;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z", s / 3600, s / 60 % 60, s % 60)
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time, e.g. `20130524T000000Z`.
pub fn amz_date(unix_secs: u64) -> String {
    let (y, m, d) = civil_from_days((unix_secs / 86_400) as i64);
    let s = unix_secs % 86_400;
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Parse `YYYYMMDDTHHMMSSZ` (the `x-amz-date` format).
pub fn parse_amz_date(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    civil_to_unix(
        digits(s.get(0..4)?)?,
        digits(s.get(4..6)?)?,
        digits(s.get(6..8)?)?,
        digits(s.get(9..11)?)?,
        digits(s.get(11..13)?)?,
        digits(s.get(13..15)?)?,
    )
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parse an RFC 1123 `Date:` header, e.g. `Wed, 25 Nov 2026 16:52:30 GMT`.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let mut it = s.split_whitespace();
    let weekday = it.next()?.strip_suffix(',')?;
    let day = it.next()?;
    let month = it.next()?;
    let year = it.next()?;
    let time = it.next()?;
    if !WEEKDAYS.contains(&weekday) || it.next()? != "GMT" || it.next().is_some() {
        return None;
    }
    if day.len() > 2 || year.len() != 4 {
        return None;
    }
    let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
    let mut hms = time.split(':');
    let (h, mi, sec) = (hms.next()?, hms.next()?, hms.next()?);
    if hms.next().is_some() || h.len() != 2 || mi.len() != 2 || sec.len() != 2 {
        return None;
    }
    civil_to_unix(
        digits(year)?,
        month,
        digits(day)?,
        digits(h)?,
        digits(mi)?,
        digits(sec)?,
    )
}

// ---------------------------------------------------------------------------------------------
// Encoding

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(HEX_LOWER[(b >> 4) as usize] as char);
        s.push(HEX_LOWER[(b & 15) as usize] as char);
    }
    s
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// AWS UriEncode: keep `A-Z a-z 0-9 - . _ ~` (and `/` unless `encode_slash`), `%XX` every other UTF-8 byte.
pub fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (b == b'/' && !encode_slash)
        {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX_UPPER[(b >> 4) as usize] as char);
            out.push(HEX_UPPER[(b & 15) as usize] as char);
        }
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decode `%XX` escapes (`+` stays `+`); invalid escapes or non-UTF-8 results are `InvalidArgument`.
pub fn percent_decode(s: &str) -> Result<String, S3Error> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hi = b.get(i + 1).and_then(|&x| hex_value(x));
            let lo = b.get(i + 2).and_then(|&x| hex_value(x));
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                _ => {
                    return Err(S3Error::invalid_argument(format!(
                        "invalid percent-encoding in {s:?}"
                    )))
                }
            }
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| S3Error::invalid_argument(format!("{s:?} does not decode to UTF-8")))
}

/// Split a raw query string into decoded `(name, value)` pairs (`+` means space, as S3 reads it).
pub fn decode_query(raw: &str) -> Result<Vec<(String, String)>, S3Error> {
    let raw = raw.strip_prefix('?').unwrap_or(raw);
    let decode = |s: &str| percent_decode(&s.replace('+', " "));
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// SigV4 canonical query string of decoded parameters: encoded, sorted, `k=v` joined by `&`.
pub fn canonical_query_string(params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (uri_encode(k, true), uri_encode(v, true)))
        .collect();
    encoded.sort();
    let pairs: Vec<String> = encoded
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    pairs.join("&")
}

/// Canonical URI of an inbound S3 request: the raw path decoded once and re-encoded (no `.`/`//` folding).
pub fn canonical_uri(raw_path: &str) -> Result<String, S3Error> {
    if raw_path.is_empty() {
        return Ok("/".to_string());
    }
    Ok(uri_encode(&percent_decode(raw_path)?, false))
}

// ---------------------------------------------------------------------------------------------
// Signing

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
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
    pub method: &'a str,
    /// Already-encoded path as on the wire, e.g. `/bucket/a%20b`.
    pub canonical_uri: &'a str,
    /// Decoded query parameters.
    pub query: &'a [(String, String)],
    /// Headers to sign, names in any case; for S3 include host, x-amz-date and x-amz-content-sha256.
    pub headers: &'a [(String, String)],
    pub payload_hash: &'a str,
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    /// `YYYYMMDDTHHMMSSZ`.
    pub amz_date: &'a str,
}

fn normalize_header_value(v: &str) -> String {
    let words: Vec<&str> = v.trim().split(' ').filter(|w| !w.is_empty()).collect();
    words.join(" ")
}

/// Canonical headers block (each line ending in `\n`) and the `;`-joined signed header names.
fn canonical_headers(headers: &[(String, String)]) -> (String, String) {
    let mut list: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), normalize_header_value(v)))
        .collect();
    list.sort_by(|a, b| a.0.cmp(&b.0)); // stable: repeated headers keep their order
    let mut grouped: Vec<(String, String)> = Vec::new();
    for (name, value) in list {
        match grouped.last_mut() {
            Some((last, joined)) if *last == name => {
                joined.push(',');
                joined.push_str(&value);
            }
            _ => grouped.push((name, value)),
        }
    }
    let mut block = String::new();
    for (name, value) in &grouped {
        block.push_str(name);
        block.push(':');
        block.push_str(value);
        block.push('\n');
    }
    let names: Vec<&str> = grouped.iter().map(|(n, _)| n.as_str()).collect();
    (block, names.join(";"))
}

fn date_of(amz_date: &str) -> &str {
    amz_date.get(..8).unwrap_or(amz_date)
}

/// The SigV4 canonical request.
pub fn canonical_request(req: &SignRequest) -> String {
    let (headers, signed) = canonical_headers(req.headers);
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
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// Hex signature of the request.
pub fn signature(req: &SignRequest) -> String {
    let date = date_of(req.amz_date);
    let scope = credential_scope(date, req.region, req.service);
    let key = signing_key(req.secret_access_key, date, req.region, req.service);
    hex(&hmac(
        &key,
        string_to_sign(req.amz_date, &scope, &canonical_request(req)).as_bytes(),
    ))
}

/// The full `Authorization` header value for the request.
pub fn sign_headers(req: &SignRequest) -> String {
    let (_, signed) = canonical_headers(req.headers);
    let scope = credential_scope(date_of(req.amz_date), req.region, req.service);
    format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed}, Signature={}",
        req.access_key_id,
        signature(req)
    )
}

/// Compare without an early exit, so timing does not reveal how much of a signature matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---------------------------------------------------------------------------------------------
// Chunk signatures (aws-chunked bodies)

/// Computes the signature chain of a `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]` body.
#[derive(Clone, PartialEq, Eq)]
pub struct ChunkSigner {
    key: [u8; 32],
    amz_date: String,
    scope: String,
    previous: String,
}

impl fmt::Debug for ChunkSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkSigner")
            .field("amz_date", &self.amz_date)
            .field("scope", &self.scope)
            .field("previous", &self.previous)
            .finish_non_exhaustive()
    }
}

impl ChunkSigner {
    /// `seed_signature` is the signature of the request itself.
    pub fn new(key: [u8; 32], amz_date: &str, scope: &str, seed_signature: &str) -> ChunkSigner {
        ChunkSigner {
            key,
            amz_date: amz_date.to_string(),
            scope: scope.to_string(),
            previous: seed_signature.to_string(),
        }
    }

    /// The signature the next chunk chains from.
    pub fn previous_signature(&self) -> &str {
        &self.previous
    }

    fn chain(&mut self, kind: &str, middle: &str, hash_hex: &str) -> String {
        let sts = format!(
            "{kind}\n{}\n{}\n{}\n{middle}{hash_hex}",
            self.amz_date, self.scope, self.previous
        );
        self.previous = hex(&hmac(&self.key, sts.as_bytes()));
        self.previous.clone()
    }

    /// Signature of the next chunk given its data's SHA-256; advances the chain.
    pub fn sign_chunk_hash(&mut self, data_sha256: &[u8; 32]) -> String {
        let middle = format!("{EMPTY_SHA256}\n");
        self.chain("AWS4-HMAC-SHA256-PAYLOAD", &middle, &hex(data_sha256))
    }

    /// Signature of the next chunk; advances the chain.
    pub fn sign_chunk(&mut self, data: &[u8]) -> String {
        self.sign_chunk_hash(&Sha256::digest(data).into())
    }

    /// Signature of the trailer (`name:value\n` per trailing header); advances the chain.
    pub fn sign_trailer(&mut self, trailer: &[u8]) -> String {
        self.chain("AWS4-HMAC-SHA256-TRAILER", "", &sha256_hex(trailer))
    }
}

// ---------------------------------------------------------------------------------------------
// Verification

/// An inbound request as received.
#[derive(Debug, Clone, Copy)]
pub struct InboundRequest<'a> {
    pub method: &'a str,
    /// Exactly as received, percent-encoded, without the query.
    pub raw_path: &'a str,
    /// Exactly as received, without the `?`.
    pub raw_query: &'a str,
    pub headers: &'a [(String, String)],
}

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

/// Outcome of a successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    Anonymous,
    Signed {
        access_key_id: String,
        payload: PayloadMode,
    },
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_signature(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
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

fn err(code: ErrorCode, message: impl Into<String>) -> S3Error {
    S3Error::new(code, message)
}

fn unsupported_auth() -> S3Error {
    err(
        ErrorCode::InvalidRequest,
        "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
    )
}

/// Which of the two mechanisms is being checked: decides the error code of malformed input.
#[derive(Clone, Copy)]
enum Mechanism {
    Header,
    Query,
}

impl Mechanism {
    fn malformed(self, message: impl fmt::Display) -> S3Error {
        match self {
            Mechanism::Header => err(
                ErrorCode::AuthorizationHeaderMalformed,
                format!("The authorization header is malformed; {message}"),
            ),
            Mechanism::Query => err(
                ErrorCode::AuthorizationQueryParametersError,
                format!("Error parsing the query-string authentication parameters; {message}"),
            ),
        }
    }
}

/// The parts common to both mechanisms, once parsed.
struct Claim<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    signed_headers: Vec<String>,
    signature: &'a str,
}

fn parse_claim<'a>(
    mech: Mechanism,
    credential: &'a str,
    signed_headers: &str,
    signature: &'a str,
    region: &str,
) -> Result<Claim<'a>, S3Error> {
    let mut parts = credential.rsplitn(5, '/');
    let (terminal, service, cred_region, date, access_key_id) = match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some(t), Some(s), Some(r), Some(d), Some(a)) => (t, s, r, d, a),
        _ => {
            return Err(mech.malformed(format!(
                "the Credential {credential:?} is not AK/date/region/s3/aws4_request"
            )))
        }
    };
    if terminal != "aws4_request"
        || access_key_id.is_empty()
        || date.len() != 8
        || digits(date).is_none()
    {
        return Err(mech.malformed(format!(
            "the Credential {credential:?} is not AK/date/region/s3/aws4_request"
        )));
    }
    if service != "s3" {
        return Err(mech.malformed(format!("the service '{service}' is wrong; expecting 's3'")));
    }
    if cred_region != region {
        return Err(mech.malformed(format!(
            "the region '{cred_region}' is wrong; expecting '{region}'"
        )));
    }
    let names: Vec<String> = signed_headers
        .split(';')
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    if names.iter().any(|n| n.is_empty()) {
        return Err(mech.malformed(format!(
            "SignedHeaders {signed_headers:?} is not a ;-separated list"
        )));
    }
    if !names.iter().any(|n| n == "host") {
        return Err(mech.malformed("SignedHeaders must include host"));
    }
    if !is_signature(signature) {
        return Err(mech.malformed("the Signature must be 64 lowercase hex digits"));
    }
    Ok(Claim {
        access_key_id,
        date,
        region: cred_region,
        signed_headers: names,
        signature,
    })
}

/// Headers that change what a request does (a PUT becomes a copy of another object) and so must be
/// covered by its signature: otherwise anyone holding a signed request or a presigned PUT URL could
/// add them.
fn must_be_signed(lowercase_name: &str) -> bool {
    lowercase_name.starts_with("x-amz-copy-source")
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
    let mut headers = Vec::new();
    for name in &claim.signed_headers {
        let before = headers.len();
        headers.extend(
            req.headers
                .iter()
                .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                .cloned(),
        );
        if headers.len() == before {
            return Err(err(
                ErrorCode::SignatureDoesNotMatch,
                format!("the signed header '{name}' is not in the request"),
            ));
        }
    }
    if let Some((name, _)) = req.headers.iter().find(|(n, _)| {
        let n = n.trim().to_ascii_lowercase();
        must_be_signed(&n) && !claim.signed_headers.contains(&n)
    }) {
        return Err(err(
            ErrorCode::AccessDenied,
            format!("There were headers present in the request which were not signed: {}", name.trim().to_ascii_lowercase()),
        ));
    }
    let uri = canonical_uri(req.raw_path)?;
    let sign = SignRequest {
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
    };
    let expected = signature(&sign);
    if !constant_time_eq(expected.as_bytes(), claim.signature.as_bytes()) {
        return Err(err(
            ErrorCode::SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        ));
    }
    let chunk_signer = || {
        ChunkSigner::new(
            signing_key(secret, claim.date, claim.region, "s3"),
            amz_date,
            &credential_scope(claim.date, claim.region, "s3"),
            &expected,
        )
    };
    Ok(match payload_hash {
        UNSIGNED_PAYLOAD => PayloadMode::Unsigned,
        STREAMING_SIGNED => PayloadMode::StreamingSigned(chunk_signer()),
        STREAMING_SIGNED_TRAILER => PayloadMode::StreamingSignedTrailer(chunk_signer()),
        STREAMING_UNSIGNED_TRAILER => PayloadMode::StreamingUnsignedTrailer,
        h => PayloadMode::Sha256(h.to_ascii_lowercase()),
    })
}

fn check_payload_hash(h: &str) -> Result<(), S3Error> {
    match h {
        UNSIGNED_PAYLOAD | STREAMING_SIGNED | STREAMING_SIGNED_TRAILER | STREAMING_UNSIGNED_TRAILER => Ok(()),
        h if is_sha256_hex(h) => Ok(()),
        h if h.starts_with("STREAMING-") => Err(S3Error::not_implemented(&format!("x-amz-content-sha256 {h}"))),
        _ => Err(S3Error::invalid_argument(
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-* value or a SHA-256 hex digest",
        )),
    }
}

fn lookup(
    lookup_secret: &dyn Fn(&str) -> Option<String>,
    access_key_id: &str,
) -> Result<String, S3Error> {
    lookup_secret(access_key_id).ok_or_else(|| {
        err(
            ErrorCode::InvalidAccessKeyId,
            "The AWS access key Id you provided does not exist in our records.",
        )
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
    let mech = Mechanism::Header;
    let authorization = authorization.trim();
    let Some(rest) = authorization
        .strip_prefix(ALGORITHM)
        .filter(|r| r.starts_with(' '))
    else {
        if authorization.starts_with("AWS ")
            || (authorization.starts_with("AWS4-") && !authorization.starts_with(ALGORITHM))
        {
            return Err(unsupported_auth());
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
    let (Some(credential), Some(signed_headers), Some(sig)) = (credential, signed_headers, sig)
    else {
        return Err(mech.malformed("it needs Credential, SignedHeaders and Signature"));
    };
    let claim = parse_claim(mech, credential, signed_headers, sig, region)?;

    let (amz, t) = if let Some(x) = header(req.headers, "x-amz-date") {
        let x = x.trim();
        let t = parse_amz_date(x).ok_or_else(|| {
            err(
                ErrorCode::AccessDenied,
                "x-amz-date must be YYYYMMDDTHHMMSSZ",
            )
        })?;
        (x.to_string(), t)
    } else if let Some(d) = header(req.headers, "date") {
        let t = parse_http_date(d).ok_or_else(|| {
            err(
                ErrorCode::AccessDenied,
                "the Date header is not an RFC 1123 date",
            )
        })?;
        (amz_date(t), t)
    } else {
        return Err(err(
            ErrorCode::AccessDenied,
            "AWS authentication requires a valid Date or x-amz-date header",
        ));
    };
    if date_of(&amz) != claim.date {
        return Err(mech.malformed("Invalid credential date. Date is not the same as X-Amz-Date."));
    }
    let payload_hash = header(req.headers, "x-amz-content-sha256")
        .map(str::trim)
        .ok_or_else(|| {
            err(
                ErrorCode::InvalidRequest,
                "Missing required header for this request: x-amz-content-sha256",
            )
        })?;
    check_payload_hash(payload_hash)?;
    let secret = lookup(lookup_secret, claim.access_key_id)?;
    if now_unix.abs_diff(t) > MAX_SKEW_SECS {
        return Err(err(
            ErrorCode::RequestTimeTooSkewed,
            "The difference between the request time and the current time is too large.",
        ));
    }
    let payload = check_signature(req, &claim, query, &amz, payload_hash, &secret)?;
    Ok(Verified::Signed {
        access_key_id: claim.access_key_id.to_string(),
        payload,
    })
}

fn verify_presigned(
    req: &InboundRequest,
    query: &[(String, String)],
    now_unix: u64,
    lookup_secret: &dyn Fn(&str) -> Option<String>,
    region: &str,
) -> Result<Verified, S3Error> {
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
    let date = param("X-Amz-Date")?;
    let expires = param("X-Amz-Expires")?;
    let signed_headers = param("X-Amz-SignedHeaders")?;
    let sig = param("X-Amz-Signature")?;
    let claim = parse_claim(mech, credential, signed_headers, sig, region)?;
    let t = parse_amz_date(date)
        .ok_or_else(|| mech.malformed("X-Amz-Date must be YYYYMMDDTHHMMSSZ"))?;
    if date_of(date) != claim.date {
        return Err(mech.malformed("Invalid credential date. Date is not the same as X-Amz-Date."));
    }
    let expires = digits(expires)
        .map(u64::from)
        .filter(|e| (1..=MAX_PRESIGN_EXPIRES).contains(e))
        .ok_or_else(|| {
            mech.malformed("X-Amz-Expires must be a number of seconds from 1 to 604800")
        })?;
    let payload_hash = header(req.headers, "x-amz-content-sha256")
        .map(str::trim)
        .unwrap_or(UNSIGNED_PAYLOAD);
    check_payload_hash(payload_hash)?;
    let secret = lookup(lookup_secret, claim.access_key_id)?;
    if now_unix > t.saturating_add(expires) {
        return Err(err(ErrorCode::AccessDenied, "Request has expired"));
    }
    if t > now_unix.saturating_add(MAX_SKEW_SECS) {
        return Err(err(ErrorCode::AccessDenied, "Request is not valid yet"));
    }
    let signed_query: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| k != "X-Amz-Signature")
        .cloned()
        .collect();
    let payload = check_signature(req, &claim, &signed_query, date, payload_hash, &secret)?;
    Ok(Verified::Signed {
        access_key_id: claim.access_key_id.to_string(),
        payload,
    })
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

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    // ---- time ----

    #[test]
    fn amz_date_formats_and_parses() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_369_353_600), "20130524T000000Z");
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(amz_date(951_782_400), "20000229T000000Z");
        assert_eq!(parse_amz_date("20130524T000000Z"), Some(1_369_353_600));
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        for t in [
            0u64,
            59,
            86_399,
            86_400,
            951_782_399,
            4_102_444_800,
            1_795_625_550,
            253_402_300_799,
        ] {
            assert_eq!(parse_amz_date(&amz_date(t)), Some(t), "{t}");
        }
    }

    #[test]
    fn parse_amz_date_rejects_invalid() {
        for bad in [
            "",
            "20130524T000000",
            "20130524T000000ZZ",
            "20130524 000000Z",
            "2013052AT000000Z",
            "20131324T000000Z",
            "20130532T000000Z",
            "20130229T000000Z",
            "21000229T000000Z",
            "20130524T240000Z",
            "20130524T006000Z",
            "20130524T000060Z",
            "19691231T235959Z",
            "+0130524T000000Z",
            "2013-05-24T00:00Z",
            "20130524T00000éZ",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad:?}");
        }
        assert!(parse_amz_date("20000229T000000Z").is_some());
        assert!(parse_amz_date("20240229T235959Z").is_some());
    }

    #[test]
    fn parse_http_date_rfc1123() {
        assert_eq!(
            parse_http_date("Wed, 25 Nov 2026 16:52:30 GMT"),
            Some(1_795_625_550)
        );
        assert_eq!(
            parse_http_date("Fri, 24 May 2013 00:00:00 GMT"),
            Some(1_369_353_600)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        for bad in [
            "",
            "Wed 25 Nov 2026 16:52:30 GMT",
            "Wed, 25 Nov 2026 16:52:30",
            "Wed, 25 Nov 2026 16:52:30 UTC",
            "Wed, 25 Foo 2026 16:52:30 GMT",
            "Wed, 31 Nov 2026 16:52:30 GMT",
            "Wed, 25 Nov 26 16:52:30 GMT",
            "Wed, 25 Nov 2026 16:52 GMT",
            "Wed, 25 Nov 2026 16:52:30:00 GMT",
            "Wed, 25 Nov 2026 16:52:30 GMT x",
            "Wednesday, 25-Nov-26 16:52:30 GMT",
            "Wed, 25 Nov 2026 1:52:30 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }

    // ---- encoding ----

    #[test]
    fn uri_encode_rules() {
        let unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        assert_eq!(uri_encode(unreserved, true), unreserved);
        assert_eq!(uri_encode("a b/c", true), "a%20b%2Fc");
        assert_eq!(uri_encode("a b/c", false), "a%20b/c");
        assert_eq!(uri_encode("+=&%$?#", true), "%2B%3D%26%25%24%3F%23");
        assert_eq!(uri_encode("\u{1234}", false), "%E1%88%B4");
        assert_eq!(uri_encode("ñ", false), "%C3%B1");
    }

    #[test]
    fn percent_decode_rules() {
        assert_eq!(percent_decode("a%20b+c%2Fd%2f").unwrap(), "a b+c/d/");
        assert_eq!(percent_decode("%E1%88%B4").unwrap(), "\u{1234}");
        for bad in ["%", "%2", "%zz", "a%g0", "%FF", "%C3"] {
            let e = percent_decode(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidArgument, "{bad:?}");
        }
    }

    #[test]
    fn decode_query_rules() {
        assert_eq!(decode_query("").unwrap(), owned(&[]));
        assert_eq!(
            decode_query("?acl&prefix=a+b%2Bc&x=%3D=&&list-type=2").unwrap(),
            owned(&[
                ("acl", ""),
                ("prefix", "a b+c"),
                ("x", "=="),
                ("list-type", "2")
            ])
        );
        assert_eq!(
            decode_query("a=%zz").unwrap_err().code,
            ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn canonical_query_sorts_encoded() {
        let q = owned(&[
            ("prefix", "a b"),
            ("acl", ""),
            ("a", "/"),
            ("a", "+ %"),
            ("Z", "~"),
        ]);
        assert_eq!(
            canonical_query_string(&q),
            "Z=~&a=%2B%20%25&a=%2F&acl=&prefix=a%20b"
        );
        assert_eq!(canonical_query_string(&[]), "");
    }

    #[test]
    fn canonical_uri_is_not_normalised() {
        assert_eq!(canonical_uri("").unwrap(), "/");
        assert_eq!(
            canonical_uri("/a//.././%25%20%2B/%E1%88%B4").unwrap(),
            "/a//.././%25%20%2B/%E1%88%B4"
        );
        assert_eq!(
            canonical_uri("/b/a+b/c d/~x$").unwrap(),
            "/b/a%2Bb/c%20d/~x%24"
        );
        assert_eq!(canonical_uri("/b/%7Ex").unwrap(), "/b/~x");
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

    // ---- AWS SigV4 test suite (service "service", us-east-1, 20150830T123600Z) ----

    const SUITE_AK: &str = "AKIDEXAMPLE";
    const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const SUITE_DATE: &str = "20150830T123600Z";
    const SUITE_SCOPE: &str = "20150830/us-east-1/service/aws4_request";

    struct Vector {
        name: &'static str,
        method: &'static str,
        path: &'static str,
        query: &'static str,
        headers: &'static [(&'static str, &'static str)],
        body: &'static str,
        creq: &'static str,
        sts_hash: &'static str,
        signed_headers: &'static str,
        signature: &'static str,
    }

    const HOST: (&str, &str) = ("Host", "example.amazonaws.com");
    const DATE: (&str, &str) = ("X-Amz-Date", SUITE_DATE);

    #[allow(clippy::too_many_arguments)]
    fn v(
        name: &'static str,
        method: &'static str,
        path: &'static str,
        query: &'static str,
        headers: &'static [(&'static str, &'static str)],
        body: &'static str,
        creq: &'static str,
        sts_hash: &'static str,
        signed_headers: &'static str,
        signature: &'static str,
    ) -> Vector {
        Vector {
            name,
            method,
            path,
            query,
            headers,
            body,
            creq,
            sts_hash,
            signed_headers,
            signature,
        }
    }

    fn vectors() -> Vec<Vector> {
        vec![
            v("get-vanilla", "GET", "/", "", &[HOST, DATE], "",
              "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63", "host;x-amz-date",
              "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
            v("get-vanilla-empty-query-key", "GET", "/", "Param1=value1", &[HOST, DATE], "",
              "GET\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              "1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab", "host;x-amz-date",
              "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"),
            v("get-vanilla-query-order-key", "GET", "/", "Param1=value2&Param1=Value1", &[HOST, DATE], "",
              "GET\n/\nParam1=Value1&Param1=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89", "host;x-amz-date",
              "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"),
            v("get-vanilla-query-order-key-case", "GET", "/", "Param2=value2&Param1=value1", &[HOST, DATE], "",
              "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0", "host;x-amz-date",
              "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
            v("get-vanilla-query-order-value", "GET", "/", "Param1=value2&Param1=value1", &[HOST, DATE], "",
              "GET\n/\nParam1=value1&Param1=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              "c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606", "host;x-amz-date",
              "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"),
            v("get-vanilla-query-unreserved", "GET", "/",
              "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
              &[HOST, DATE], "",
              "GET\n/\n-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177", "host;x-amz-date",
              "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"),
            v("get-vanilla-utf8-query", "GET", "/", "\u{1234}=bar", &[HOST, DATE], "",
              "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073", "host;x-amz-date",
              "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
            v("get-vanilla-query-order-encoded", "GET", "/", "Param-3=Value3&Param=Value2&%E1%88%B4=Value1", &[HOST, DATE], "",
              "GET\n/\n%E1%88%B4=Value1&Param=Value2&Param-3=Value3\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              "868294f5c38bd141c4972a373a76654f1418a8e4fc18b2e7903ae45e8ae0ec71", "host;x-amz-date",
              "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac"),
            v("get-unreserved", "GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", "", &[HOST, DATE], "",
              "GET\n/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9", "host;x-amz-date",
              "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
            v("get-utf8", "GET", "/\u{1234}", "", &[HOST, DATE], "",
              "GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102", "host;x-amz-date",
              "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
            v("get-space", "GET", "/example space/", "", &[HOST, DATE], "",
              "GET\n/example%20space/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86", "host;x-amz-date",
              "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"),
            v("get-header-key-duplicate", "GET", "/", "",
              &[HOST, ("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1"), DATE], "",
              "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c", "host;my-header1;x-amz-date",
              "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"),
            v("get-header-value-order", "GET", "/", "",
              &[HOST, ("My-Header1", "value4"), ("My-Header1", "value1"), ("My-Header1", "value3"), ("My-Header1", "value2"), DATE], "",
              "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value4,value1,value3,value2\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              "31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86", "host;my-header1;x-amz-date",
              "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"),
            v("get-header-value-trim", "GET", "/", "",
              &[HOST, ("My-Header1", " value1"), ("My-Header2", " \"a   b   c\""), DATE], "",
              "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7", "host;my-header1;my-header2;x-amz-date",
              "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
            v("post-header-key-case", "POST", "/", "", &[HOST, DATE], "",
              "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87", "host;x-amz-date",
              "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
            v("post-header-key-sort", "POST", "/", "", &[HOST, ("My-Header1", "value1"), DATE], "",
              "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65", "host;my-header1;x-amz-date",
              "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"),
            v("post-header-value-case", "POST", "/", "", &[HOST, ("My-Header1", "VALUE1"), DATE], "",
              "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:VALUE1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              "d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93", "host;my-header1;x-amz-date",
              "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"),
            v("post-vanilla-query", "POST", "/", "Param1=value1", &[HOST, DATE], "",
              "POST\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd", "host;x-amz-date",
              "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"),
            // The suite's request also carries Content-Length: 13, which it leaves unsigned.
            v("post-x-www-form-urlencoded-parameters", "POST", "/", "",
              &[("Content-Type", "application/x-www-form-urlencoded; charset=utf8"), HOST, DATE],
              "Param1=value1",
              "POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf8\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
              "2e1cf7ed91881a30569e46552437e4156c823447bf1781b921b5d486c568dd1c", "content-type;host;x-amz-date",
              "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"),
            v("post-x-www-form-urlencoded", "POST", "/", "",
              &[("Content-Type", "application/x-www-form-urlencoded"), HOST, DATE],
              "Param1=value1",
              "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
              "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281", "content-type;host;x-amz-date",
              "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
            v("post-sts-header-before", "POST", "/", "",
              &[HOST, DATE, ("X-Amz-Security-Token", "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==")],
              "",
              "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-security-token:AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==\n\nhost;x-amz-date;x-amz-security-token\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6", "host;x-amz-date;x-amz-security-token",
              "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"),
        ]
    }

    #[test]
    fn aws_sigv4_test_suite() {
        for vec in vectors() {
            let query = decode_query(vec.query).unwrap();
            let headers = owned(vec.headers);
            let uri = canonical_uri(vec.path).unwrap();
            let payload = sha256_hex(vec.body.as_bytes());
            let req = SignRequest {
                method: vec.method,
                canonical_uri: &uri,
                query: &query,
                headers: &headers,
                payload_hash: &payload,
                access_key_id: SUITE_AK,
                secret_access_key: SUITE_SECRET,
                region: "us-east-1",
                service: "service",
                amz_date: SUITE_DATE,
            };
            let creq = canonical_request(&req);
            assert_eq!(creq, vec.creq, "{}: canonical request", vec.name);
            assert_eq!(
                string_to_sign(SUITE_DATE, SUITE_SCOPE, &creq),
                format!(
                    "AWS4-HMAC-SHA256\n{SUITE_DATE}\n{SUITE_SCOPE}\n{}",
                    vec.sts_hash
                ),
                "{}: string to sign",
                vec.name
            );
            assert_eq!(
                sign_headers(&req),
                format!(
                    "AWS4-HMAC-SHA256 Credential={SUITE_AK}/{SUITE_SCOPE}, SignedHeaders={}, Signature={}",
                    vec.signed_headers, vec.signature
                ),
                "{}: authorization",
                vec.name
            );
        }
    }

    // ---- S3 documentation examples (AKIAIOSFODNN7EXAMPLE, 20130524, us-east-1) ----

    const S3_AK: &str = "AKIAIOSFODNN7EXAMPLE";
    const S3_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const S3_NOW: u64 = 1_369_353_600; // 20130524T000000Z

    fn s3_lookup(ak: &str) -> Option<String> {
        (ak == S3_AK).then(|| S3_SECRET.to_string())
    }

    fn inbound<'a>(
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

    fn s3_auth(signed_headers: &str, signature: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential={S3_AK}/20130524/us-east-1/s3/aws4_request,SignedHeaders={signed_headers},Signature={signature}"
        )
    }

    #[test]
    fn s3_example_get_object_with_range() {
        let mut headers = owned(&[
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("Range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
        ]);
        let req = SignRequest {
            method: "GET",
            canonical_uri: "/test.txt",
            query: &[],
            headers: &headers,
            payload_hash: EMPTY_SHA256,
            access_key_id: S3_AK,
            secret_access_key: S3_SECRET,
            region: "us-east-1",
            service: "s3",
            amz_date: "20130524T000000Z",
        };
        assert_eq!(
            string_to_sign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request", &canonical_request(&req)),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
        );
        let sig = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
        assert_eq!(signature(&req), sig);
        let auth = s3_auth("host;range;x-amz-content-sha256;x-amz-date", sig);
        headers.push(("Authorization".into(), auth));
        let v = verify(
            &inbound("GET", "/test.txt", "", &headers),
            S3_NOW,
            &s3_lookup,
            "us-east-1",
        )
        .unwrap();
        assert_eq!(
            v,
            Verified::Signed {
                access_key_id: S3_AK.into(),
                payload: PayloadMode::Sha256(EMPTY_SHA256.into())
            }
        );
        // Tampering with any signed part fails.
        let e = verify(
            &inbound("GET", "/test2.txt", "", &headers),
            S3_NOW,
            &s3_lookup,
            "us-east-1",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
        let e = verify(
            &inbound("HEAD", "/test.txt", "", &headers),
            S3_NOW,
            &s3_lookup,
            "us-east-1",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
        let e = verify(
            &inbound("GET", "/test.txt", "x=1", &headers),
            S3_NOW,
            &s3_lookup,
            "us-east-1",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
        let mut tampered = headers.clone();
        tampered[1].1 = "bytes=0-10".into();
        let e = verify(
            &inbound("GET", "/test.txt", "", &tampered),
            S3_NOW,
            &s3_lookup,
            "us-east-1",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
        // Region and skew.
        let e = verify(
            &inbound("GET", "/test.txt", "", &headers),
            S3_NOW,
            &s3_lookup,
            "eu-west-1",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::AuthorizationHeaderMalformed);
        assert!(e.message.contains("expecting 'eu-west-1'"), "{}", e.message);
        let e = verify(
            &inbound("GET", "/test.txt", "", &headers),
            S3_NOW + 901,
            &s3_lookup,
            "us-east-1",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::RequestTimeTooSkewed);
        assert!(verify(
            &inbound("GET", "/test.txt", "", &headers),
            S3_NOW - 900,
            &s3_lookup,
            "us-east-1"
        )
        .is_ok());
        let e = verify(
            &inbound("GET", "/test.txt", "", &headers),
            S3_NOW,
            &|_| None,
            "us-east-1",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidAccessKeyId);
    }

    #[test]
    fn s3_example_put_object_with_date_header() {
        let body_hash = sha256_hex(b"Welcome to Amazon S3.");
        assert_eq!(
            body_hash,
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        );
        let mut headers = owned(&[
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("x-amz-content-sha256", &body_hash),
        ]);
        let sig = "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd";
        headers.push((
            "Authorization".into(),
            s3_auth(
                "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                sig,
            ),
        ));
        for path in ["/test%24file.text", "/test$file.text"] {
            let v = verify(
                &inbound("PUT", path, "", &headers),
                S3_NOW,
                &s3_lookup,
                "us-east-1",
            )
            .unwrap();
            assert_eq!(
                v,
                Verified::Signed {
                    access_key_id: S3_AK.into(),
                    payload: PayloadMode::Sha256(body_hash.clone())
                }
            );
        }
    }

    #[test]
    fn s3_example_bucket_queries() {
        let headers = |sig: &str| {
            let mut h = owned(&[
                ("host", "examplebucket.s3.amazonaws.com"),
                ("x-amz-content-sha256", EMPTY_SHA256),
                ("x-amz-date", "20130524T000000Z"),
            ]);
            h.push((
                "authorization".into(),
                s3_auth("host;x-amz-content-sha256;x-amz-date", sig),
            ));
            h
        };
        let lifecycle = headers("fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
        for q in ["lifecycle", "lifecycle="] {
            assert!(
                verify(
                    &inbound("GET", "/", q, &lifecycle),
                    S3_NOW,
                    &s3_lookup,
                    "us-east-1"
                )
                .is_ok(),
                "{q}"
            );
        }
        let list = headers("34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
        for q in ["max-keys=2&prefix=J", "prefix=J&max-keys=2"] {
            assert!(
                verify(
                    &inbound("GET", "/", q, &list),
                    S3_NOW,
                    &s3_lookup,
                    "us-east-1"
                )
                .is_ok(),
                "{q}"
            );
        }
    }

    const PRESIGNED_QUERY: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

    #[test]
    fn s3_example_presigned_url() {
        let headers = owned(&[("Host", "examplebucket.s3.amazonaws.com")]);
        let ok = |now| {
            verify(
                &inbound("GET", "/test.txt", PRESIGNED_QUERY, &headers),
                now,
                &s3_lookup,
                "us-east-1",
            )
        };
        let want = Verified::Signed {
            access_key_id: S3_AK.into(),
            payload: PayloadMode::Unsigned,
        };
        assert_eq!(ok(S3_NOW).unwrap(), want);
        assert_eq!(ok(S3_NOW + 86_400).unwrap(), want);
        let e = ok(S3_NOW + 86_401).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (ErrorCode::AccessDenied, "Request has expired")
        );
        assert_eq!(ok(S3_NOW - 901).unwrap_err().code, ErrorCode::AccessDenied);
        let e = verify(
            &inbound("GET", "/test.txt", PRESIGNED_QUERY, &headers),
            S3_NOW,
            &s3_lookup,
            "us-west-2",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::AuthorizationQueryParametersError);
        assert!(e.message.contains("expecting 'us-west-2'"));
        let e = verify(
            &inbound("GET", "/test.txt", PRESIGNED_QUERY, &headers),
            S3_NOW,
            &|_| None,
            "us-east-1",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidAccessKeyId);
        let extra = format!("{PRESIGNED_QUERY}&x-id=GetObject");
        let e = verify(
            &inbound("GET", "/test.txt", &extra, &headers),
            S3_NOW,
            &s3_lookup,
            "us-east-1",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
        let other_host = owned(&[("Host", "evil.example.com")]);
        let e = verify(
            &inbound("GET", "/test.txt", PRESIGNED_QUERY, &other_host),
            S3_NOW,
            &s3_lookup,
            "us-east-1",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
    }

    #[test]
    fn presigned_parameter_errors() {
        let headers = owned(&[("Host", "examplebucket.s3.amazonaws.com")]);
        let check = |query: String| {
            verify(
                &inbound("GET", "/test.txt", &query, &headers),
                S3_NOW,
                &s3_lookup,
                "us-east-1",
            )
            .unwrap_err()
            .code
        };
        for (from, to) in [
            ("X-Amz-Expires=86400", "X-Amz-Expires=0"),
            ("X-Amz-Expires=86400", "X-Amz-Expires=604801"),
            ("X-Amz-Expires=86400", "X-Amz-Expires=-1"),
            ("X-Amz-Expires=86400&", ""),
            (
                "X-Amz-Algorithm=AWS4-HMAC-SHA256",
                "X-Amz-Algorithm=AWS4-HMAC-SHA1",
            ),
            ("X-Amz-Algorithm=AWS4-HMAC-SHA256&", ""),
            ("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=x-amz-date"),
            ("X-Amz-Date=20130524T000000Z", "X-Amz-Date=20130524"),
            ("X-Amz-Date=20130524T000000Z", "X-Amz-Date=20130525T000000Z"),
            ("%2Fs3%2F", "%2Fec2%2F"),
            ("%2Faws4_request", "%2Faws5_request"),
            ("X-Amz-Signature=aeeed9bb", "X-Amz-Signature=AEEED9BB"),
        ] {
            assert!(PRESIGNED_QUERY.contains(from));
            assert_eq!(
                check(PRESIGNED_QUERY.replacen(from, to, 1)),
                ErrorCode::AuthorizationQueryParametersError,
                "{to}"
            );
        }
        let both = owned(&[
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("Authorization", "AWS4-HMAC-SHA256 x"),
        ]);
        let e = verify(
            &inbound("GET", "/test.txt", PRESIGNED_QUERY, &both),
            S3_NOW,
            &s3_lookup,
            "us-east-1",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        let v2 = verify(
            &inbound(
                "GET",
                "/t",
                "AWSAccessKeyId=A&Expires=1&Signature=x",
                &headers,
            ),
            0,
            &s3_lookup,
            "us-east-1",
        );
        assert_eq!(v2.unwrap_err().code, ErrorCode::InvalidRequest);
    }

    const CHUNKED_SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";

    fn chunked_example_headers(content_sha256: &str) -> Vec<(String, String)> {
        let mut h = owned(&[
            ("Host", "s3.amazonaws.com"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("x-amz-content-sha256", content_sha256),
            ("Content-Encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"),
            ("Content-Length", "66824"),
        ]);
        h.push((
            "Authorization".into(),
            s3_auth(
                "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
                CHUNKED_SEED,
            ),
        ));
        h
    }

    #[test]
    fn s3_example_chunked_upload_seed_and_chunk_signatures() {
        let headers = chunked_example_headers(STREAMING_SIGNED);
        let v = verify(
            &inbound("PUT", "/examplebucket/chunkObject.txt", "", &headers),
            S3_NOW,
            &s3_lookup,
            "us-east-1",
        )
        .unwrap();
        let Verified::Signed {
            payload: PayloadMode::StreamingSigned(mut signer),
            ..
        } = v
        else {
            panic!("expected a streaming signer, got {v:?}");
        };
        assert_eq!(signer.previous_signature(), CHUNKED_SEED);
        assert_eq!(
            signer.sign_chunk(&[b'a'; 65536]),
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
        );
        assert_eq!(
            signer.sign_chunk(&[b'a'; 1024]),
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
        );
        assert_eq!(
            signer.sign_chunk(b""),
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
        );
        // Signer's Debug output never shows the key.
        assert!(!format!("{signer:?}").contains("key"));
        // The same seed over another payload mode does not verify.
        let headers = chunked_example_headers(STREAMING_SIGNED_TRAILER);
        let e = verify(
            &inbound("PUT", "/examplebucket/chunkObject.txt", "", &headers),
            S3_NOW,
            &s3_lookup,
            "us-east-1",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
    }

    #[test]
    fn trailer_signature_vector() {
        // aws-c-auth / aws-crt chunk signer test: trailer after the example's final chunk.
        let key = signing_key(S3_SECRET, "20130524", "us-east-1", "s3");
        let mut signer = ChunkSigner::new(
            key,
            "20130524T000000Z",
            "20130524/us-east-1/s3/aws4_request",
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
        );
        assert_eq!(
            signer.sign_trailer(b"first:1st\nsecond:2nd\nthird:3rd\n"),
            "df5735bd9f3295cd9386572292562fefc93ba94e80a0a1ddcbd652c4e0a75e6c"
        );
    }

    // ---- round trips ----

    const RT_AK: &str = "AKRT";
    const RT_SECRET: &str = "secret/with+chars=";
    const RT_NOW: u64 = 1_795_625_550;

    fn rt_lookup(ak: &str) -> Option<String> {
        (ak == RT_AK).then(|| RT_SECRET.to_string())
    }

    /// Sign like a client would: encode the key into the path, sign, and return the wire form.
    fn client_sign(
        method: &str,
        key: &str,
        query: &[(&str, &str)],
        payload: &str,
    ) -> (String, String, Vec<(String, String)>) {
        let path = format!("/bucket/{}", uri_encode(key, false));
        let query = owned(query);
        let raw_query: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", uri_encode(k, true), uri_encode(v, true)))
            .collect();
        let date = amz_date(RT_NOW);
        let mut headers = owned(&[
            ("Host", "proxy.local:9000"),
            ("x-amz-date", &date),
            ("x-amz-content-sha256", payload),
            ("x-amz-meta-note", "  two   spaces  "),
        ]);
        let req = SignRequest {
            method,
            canonical_uri: &path,
            query: &query,
            headers: &headers,
            payload_hash: payload,
            access_key_id: RT_AK,
            secret_access_key: RT_SECRET,
            region: "auto",
            service: "s3",
            amz_date: &date,
        };
        headers.push(("Authorization".into(), sign_headers(&req)));
        (path, raw_query.join("&"), headers)
    }

    #[test]
    fn round_trip_awkward_keys_and_queries() {
        let keys = [
            "plain.txt",
            "with space",
            "plus+sign",
            "percent%25",
            "per%cent",
            "uni\u{00e9}\u{1234}\u{1F600}",
            "eq=als",
            "tilde~",
            "dou//ble",
            "./dot/../seg",
            "a?b#c&d",
            "trailing/",
            "",
        ];
        for key in keys {
            let (path, query, headers) = client_sign(
                "PUT",
                key,
                &[("prefix", "a b+c/=&%"), ("acl", ""), ("\u{00e9}", "~")],
                UNSIGNED_PAYLOAD,
            );
            let req = inbound("PUT", &path, &query, &headers);
            let v =
                verify(&req, RT_NOW, &rt_lookup, "auto").unwrap_or_else(|e| panic!("{key:?}: {e}"));
            assert_eq!(
                v,
                Verified::Signed {
                    access_key_id: RT_AK.into(),
                    payload: PayloadMode::Unsigned
                }
            );
            let other = format!("{path}x");
            let e = verify(
                &inbound("PUT", &other, &query, &headers),
                RT_NOW,
                &rt_lookup,
                "auto",
            )
            .unwrap_err();
            assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch, "{key:?}");
            let more = format!("{query}&z=1");
            let e = verify(
                &inbound("PUT", &path, &more, &headers),
                RT_NOW,
                &rt_lookup,
                "auto",
            )
            .unwrap_err();
            assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch, "{key:?}");
        }
    }

    #[test]
    fn round_trip_space_as_plus_in_query() {
        let (path, _, headers) = client_sign("GET", "k", &[("prefix", "a b")], UNSIGNED_PAYLOAD);
        for raw in ["prefix=a%20b", "prefix=a+b"] {
            assert!(
                verify(
                    &inbound("GET", &path, raw, &headers),
                    RT_NOW,
                    &rt_lookup,
                    "auto"
                )
                .is_ok(),
                "{raw}"
            );
        }
        let e = verify(
            &inbound("GET", &path, "prefix=a%2Bb", &headers),
            RT_NOW,
            &rt_lookup,
            "auto",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
    }

    #[test]
    fn copy_source_must_be_signed() {
        let (path, query, mut headers) = client_sign("PUT", "k", &[], EMPTY_SHA256);
        headers.push(("X-Amz-Copy-Source".into(), "/bucket/secret".into()));
        let e = verify(&inbound("PUT", &path, &query, &headers), RT_NOW, &rt_lookup, "auto").unwrap_err();
        assert_eq!(e.code, ErrorCode::AccessDenied);
        assert!(e.message.contains("x-amz-copy-source"), "{}", e.message);
        headers.pop();
        headers.push(("x-amz-copy-source-range".into(), "bytes=0-1".into()));
        let e = verify(&inbound("PUT", &path, &query, &headers), RT_NOW, &rt_lookup, "auto").unwrap_err();
        assert_eq!(e.code, ErrorCode::AccessDenied);
        // Other unsigned headers are tolerated (clients leave some unsigned).
        headers.pop();
        headers.push(("x-amz-meta-extra".into(), "x".into()));
        assert!(verify(&inbound("PUT", &path, &query, &headers), RT_NOW, &rt_lookup, "auto").is_ok());
    }

    #[test]
    fn round_trip_header_tampering_and_case() {
        let hash = sha256_hex(b"body");
        let (path, query, headers) = client_sign("PUT", "k", &[], &hash);
        let ok = verify(
            &inbound("PUT", &path, &query, &headers),
            RT_NOW,
            &rt_lookup,
            "auto",
        )
        .unwrap();
        assert_eq!(
            ok,
            Verified::Signed {
                access_key_id: RT_AK.into(),
                payload: PayloadMode::Sha256(hash.clone())
            }
        );
        // Header names in another case and re-spaced values still verify.
        let mut recased = headers.clone();
        for (n, v) in recased.iter_mut() {
            if n != "Authorization" {
                *n = n.to_ascii_uppercase();
            }
            if n.eq_ignore_ascii_case("x-amz-meta-note") {
                *v = "two spaces".into();
            }
        }
        assert!(verify(
            &inbound("PUT", &path, &query, &recased),
            RT_NOW,
            &rt_lookup,
            "auto"
        )
        .is_ok());
        // Changing a signed header, dropping it, or changing the claimed payload hash fails.
        let mut changed = headers.clone();
        changed[3].1 = "other".into();
        let e = verify(
            &inbound("PUT", &path, &query, &changed),
            RT_NOW,
            &rt_lookup,
            "auto",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
        let mut dropped = headers.clone();
        dropped.remove(3);
        let e = verify(
            &inbound("PUT", &path, &query, &dropped),
            RT_NOW,
            &rt_lookup,
            "auto",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
        let mut rehashed = headers.clone();
        rehashed[2].1 = sha256_hex(b"other body");
        let e = verify(
            &inbound("PUT", &path, &query, &rehashed),
            RT_NOW,
            &rt_lookup,
            "auto",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
        // An unsigned extra header is fine.
        let mut extra = headers.clone();
        extra.push(("user-agent".into(), "x".into()));
        assert!(verify(
            &inbound("PUT", &path, &query, &extra),
            RT_NOW,
            &rt_lookup,
            "auto"
        )
        .is_ok());
        // Skew both ways.
        for now in [RT_NOW + MAX_SKEW_SECS + 1, RT_NOW - MAX_SKEW_SECS - 1] {
            let e = verify(
                &inbound("PUT", &path, &query, &headers),
                now,
                &rt_lookup,
                "auto",
            )
            .unwrap_err();
            assert_eq!(e.code, ErrorCode::RequestTimeTooSkewed);
        }
    }

    #[test]
    fn round_trip_presigned() {
        let date = amz_date(RT_NOW);
        let key = "dir/uni \u{1234}+%=~";
        let path = format!("/bucket/{}", uri_encode(key, false));
        let query = owned(&[
            ("X-Amz-Algorithm", ALGORITHM),
            (
                "X-Amz-Credential",
                &format!("{RT_AK}/{}/auto/s3/aws4_request", &date[..8]),
            ),
            ("X-Amz-Date", &date),
            ("X-Amz-Expires", "60"),
            ("X-Amz-SignedHeaders", "host"),
            ("response-content-type", "text/plain; a=b"),
        ]);
        let headers = owned(&[("host", "proxy.local")]);
        let presign = |payload_hash: &str| {
            let sig = signature(&SignRequest {
                method: "GET",
                canonical_uri: &path,
                query: &query,
                headers: &headers,
                payload_hash,
                access_key_id: RT_AK,
                secret_access_key: RT_SECRET,
                region: "auto",
                service: "s3",
                amz_date: &date,
            });
            let mut all = query.clone();
            all.push(("X-Amz-Signature".into(), sig));
            let raw: Vec<String> = all
                .iter()
                .map(|(k, v)| format!("{}={}", uri_encode(k, true), uri_encode(v, true)))
                .collect();
            raw.join("&")
        };
        let raw = presign(UNSIGNED_PAYLOAD);
        let v = verify(
            &inbound("GET", &path, &raw, &headers),
            RT_NOW + 60,
            &rt_lookup,
            "auto",
        )
        .unwrap();
        assert_eq!(
            v,
            Verified::Signed {
                access_key_id: RT_AK.into(),
                payload: PayloadMode::Unsigned
            }
        );
        let e = verify(
            &inbound("GET", &path, &raw, &headers),
            RT_NOW + 61,
            &rt_lookup,
            "auto",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::AccessDenied);
        let e = verify(
            &inbound("PUT", &path, &raw, &headers),
            RT_NOW,
            &rt_lookup,
            "auto",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
        // A claimed payload hash header switches the mode.
        let mut with_hash = headers.clone();
        with_hash.push((
            "x-amz-content-sha256".into(),
            STREAMING_UNSIGNED_TRAILER.into(),
        ));
        let e = verify(
            &inbound("GET", &path, &raw, &with_hash),
            RT_NOW,
            &rt_lookup,
            "auto",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
        let raw = presign(STREAMING_UNSIGNED_TRAILER);
        let v = verify(
            &inbound("GET", &path, &raw, &with_hash),
            RT_NOW,
            &rt_lookup,
            "auto",
        )
        .unwrap();
        assert_eq!(
            v,
            Verified::Signed {
                access_key_id: RT_AK.into(),
                payload: PayloadMode::StreamingUnsignedTrailer
            }
        );
    }

    #[test]
    fn anonymous_and_unauthenticated_modes() {
        let headers = owned(&[("Host", "h")]);
        assert_eq!(
            verify(
                &inbound("GET", "/b/k", "list-type=2", &headers),
                0,
                &|_| None,
                "r"
            )
            .unwrap(),
            Verified::Anonymous
        );
        assert_eq!(payload_mode_unauthenticated(None), PayloadMode::Unsigned);
        assert_eq!(
            payload_mode_unauthenticated(Some("UNSIGNED-PAYLOAD")),
            PayloadMode::Unsigned
        );
        assert_eq!(
            payload_mode_unauthenticated(Some("garbage")),
            PayloadMode::Unsigned
        );
        for s in [
            STREAMING_SIGNED,
            STREAMING_SIGNED_TRAILER,
            STREAMING_UNSIGNED_TRAILER,
        ] {
            assert_eq!(
                payload_mode_unauthenticated(Some(s)),
                PayloadMode::StreamingUnsignedTrailer
            );
        }
        assert_eq!(
            payload_mode_unauthenticated(Some(&EMPTY_SHA256.to_ascii_uppercase())),
            PayloadMode::Sha256(EMPTY_SHA256.into())
        );
    }

    #[test]
    fn malformed_authorization_headers() {
        let date = amz_date(RT_NOW);
        let good_cred = format!("{RT_AK}/{}/auto/s3/aws4_request", &date[..8]);
        let sig = "0".repeat(64);
        let check = |auth: String| {
            let headers = owned(&[
                ("host", "h"),
                ("x-amz-date", &date),
                ("x-amz-content-sha256", UNSIGNED_PAYLOAD),
                ("authorization", &auth),
            ]);
            verify(
                &inbound("GET", "/", "", &headers),
                RT_NOW,
                &rt_lookup,
                "auto",
            )
            .unwrap_err()
            .code
        };
        use ErrorCode::*;
        let cases = [
            (format!("AWS4-HMAC-SHA256 Credential={good_cred}, SignedHeaders=host, Signature={sig}"), SignatureDoesNotMatch),
            (format!("AWS4-HMAC-SHA256 Credential={good_cred},SignedHeaders=host,Signature={sig}"), SignatureDoesNotMatch),
            (format!("AWS4-HMAC-SHA256 Credential={good_cred}, SignedHeaders=host;x-absent, Signature={sig}"), SignatureDoesNotMatch),
            ("AWS AKRT:abc=".to_string(), InvalidRequest),
            (format!("AWS4-ECDSA-P256-SHA256 Credential={good_cred}, SignedHeaders=host, Signature={sig}"), InvalidRequest),
            ("Bearer x".to_string(), AuthorizationHeaderMalformed),
            ("AWS4-HMAC-SHA256".to_string(), AuthorizationHeaderMalformed),
            (format!("AWS4-HMAC-SHA256Credential={good_cred}, SignedHeaders=host, Signature={sig}"), AuthorizationHeaderMalformed),
            (format!("AWS4-HMAC-SHA256 Credential={good_cred}, Signature={sig}"), AuthorizationHeaderMalformed),
            (format!("AWS4-HMAC-SHA256 Credential={good_cred}, SignedHeaders=x-amz-date, Signature={sig}"), AuthorizationHeaderMalformed),
            (format!("AWS4-HMAC-SHA256 Credential={good_cred}, SignedHeaders=host;;x, Signature={sig}"), AuthorizationHeaderMalformed),
            (format!("AWS4-HMAC-SHA256 Credential={good_cred}, SignedHeaders=host, Signature=abc"), AuthorizationHeaderMalformed),
            (format!("AWS4-HMAC-SHA256 Credential={good_cred}, SignedHeaders=host, Signature={sig}, junk"), AuthorizationHeaderMalformed),
            (format!("AWS4-HMAC-SHA256 Credential=AKRT/{}/auto/s3, SignedHeaders=host, Signature={sig}", &date[..8]), AuthorizationHeaderMalformed),
            (format!("AWS4-HMAC-SHA256 Credential=AKRT/20000101/auto/s3/aws4_request, SignedHeaders=host, Signature={sig}"), AuthorizationHeaderMalformed),
            (format!("AWS4-HMAC-SHA256 Credential=AKRT/{}/auto/sqs/aws4_request, SignedHeaders=host, Signature={sig}", &date[..8]), AuthorizationHeaderMalformed),
            (format!("AWS4-HMAC-SHA256 Credential=AKRT/{}/us-east-1/s3/aws4_request, SignedHeaders=host, Signature={sig}", &date[..8]), AuthorizationHeaderMalformed),
            (format!("AWS4-HMAC-SHA256 Credential=NOPE/{}/auto/s3/aws4_request, SignedHeaders=host, Signature={sig}", &date[..8]), InvalidAccessKeyId),
        ];
        for (auth, code) in cases {
            assert_eq!(check(auth.clone()), code, "{auth}");
        }
    }

    #[test]
    fn missing_or_bad_dates_and_payload_hashes() {
        let date = amz_date(RT_NOW);
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={RT_AK}/{}/auto/s3/aws4_request, SignedHeaders=host, Signature={}",
            &date[..8],
            "0".repeat(64)
        );
        let run = |extra: &[(&str, &str)]| {
            let mut headers = owned(&[("host", "h"), ("authorization", &auth)]);
            headers.extend(owned(extra));
            verify(
                &inbound("GET", "/", "", &headers),
                RT_NOW,
                &rt_lookup,
                "auto",
            )
            .unwrap_err()
            .code
        };
        assert_eq!(
            run(&[("x-amz-content-sha256", UNSIGNED_PAYLOAD)]),
            ErrorCode::AccessDenied
        );
        assert_eq!(
            run(&[
                ("x-amz-date", "nope"),
                ("x-amz-content-sha256", UNSIGNED_PAYLOAD)
            ]),
            ErrorCode::AccessDenied
        );
        assert_eq!(run(&[("x-amz-date", &date)]), ErrorCode::InvalidRequest);
        assert_eq!(
            run(&[("x-amz-date", &date), ("x-amz-content-sha256", "abc")]),
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            run(&[
                ("x-amz-date", &date),
                (
                    "x-amz-content-sha256",
                    "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
                )
            ]),
            ErrorCode::NotImplemented
        );
        // Date header instead of x-amz-date: parsed, then the signature is checked.
        assert_eq!(
            run(&[
                ("date", "Wed, 25 Nov 2026 16:52:30 GMT"),
                ("x-amz-content-sha256", UNSIGNED_PAYLOAD)
            ]),
            ErrorCode::SignatureDoesNotMatch
        );
        // Bad path encoding in an otherwise valid request.
        let headers = owned(&[
            ("host", "h"),
            ("x-amz-date", &date),
            ("x-amz-content-sha256", UNSIGNED_PAYLOAD),
            ("authorization", &auth),
        ]);
        let e = verify(
            &inbound("GET", "/%zz", "", &headers),
            RT_NOW,
            &rt_lookup,
            "auto",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
    }

    #[test]
    fn date_header_signing_round_trip() {
        let http_date = "Wed, 25 Nov 2026 16:52:30 GMT";
        let amz = amz_date(parse_http_date(http_date).unwrap());
        let mut headers = owned(&[
            ("host", "h"),
            ("date", http_date),
            ("x-amz-content-sha256", UNSIGNED_PAYLOAD),
        ]);
        let auth = sign_headers(&SignRequest {
            method: "GET",
            canonical_uri: "/b",
            query: &[],
            headers: &headers,
            payload_hash: UNSIGNED_PAYLOAD,
            access_key_id: RT_AK,
            secret_access_key: RT_SECRET,
            region: "auto",
            service: "s3",
            amz_date: &amz,
        });
        headers.push(("authorization".into(), auth));
        assert!(verify(
            &inbound("GET", "/b", "", &headers),
            RT_NOW,
            &rt_lookup,
            "auto"
        )
        .is_ok());
    }

    #[test]
    fn verify_never_panics_on_garbage() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet: Vec<char> = "AWS4-HMAC-SHA256 Credential=/;,=%+&?éXx0aF\u{1234}"
            .chars()
            .collect();
        for _ in 0..2000 {
            let mut s = String::new();
            for _ in 0..(next() % 40) {
                s.push(alphabet[(next() % alphabet.len() as u64) as usize]);
            }
            let headers = owned(&[
                ("authorization", &s),
                ("x-amz-date", &s),
                ("date", &s),
                ("x-amz-content-sha256", &s),
            ]);
            let _ = verify(
                &inbound("GET", &s, &s, &headers),
                next(),
                &rt_lookup,
                "auto",
            );
            let _ = verify(&inbound("GET", &s, &s, &[]), next(), &rt_lookup, "auto");
            let _ = parse_http_date(&s);
            let _ = parse_amz_date(&s);
        }
    }
}
