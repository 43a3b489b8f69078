//! Raw HTTP for the conformance suite: SigV4-signed (or deliberately mis-signed) requests written
//! byte for byte, answers read off the wire, and a small XML leaf reader for comparing bodies.

use std::net::SocketAddr;
use std::time::Duration;
use tempo_s3_shard_core::sigv4::chunk::ChunkSigner;
use tempo_s3_shard_core::sigv4::sign::SignRequest;
use tempo_s3_shard_core::sigv4::{canonical, sign};
use tempo_s3_shard_core::{clock, codec};
use tempo_s3_shard_host::backends::{LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const REGION: &str = "us-east-1";

/// An answer read off the wire.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    /// Status line, headers and body as one text (for leak scans and failure reports).
    pub fn full_text(&self) -> String {
        let mut out = format!("HTTP {}\n", self.status);
        for (k, v) in &self.headers {
            out.push_str(&format!("{k}: {v}\n"));
        }
        out.push('\n');
        out.push_str(&self.body_text());
        out
    }

    /// The `<Code>` of an S3 XML error body.
    pub fn code(&self) -> Option<String> {
        element_values(&self.body_text(), "Code").into_iter().next()
    }
}

/// How a request authenticates.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    /// SigV4 in the Authorization header, X-Amz-Date, with the local credentials.
    Header,
    /// No authentication at all.
    Anonymous,
    /// Signed with a wrong secret.
    WrongSecret,
    /// Signed by an access key nobody configured.
    UnknownKey,
    /// Signed with the clock this many seconds off.
    Skew(i64),
    /// Signed for another region.
    Region(&'static str),
    /// Signed with a `Date` header (in the given form, from the signing time) instead of X-Amz-Date.
    DateHeader(DateForm),
    /// An Authorization header that is not SigV4 at all.
    Garbage,
    /// A presigned URL: valid from `start` seconds relative to now, for `expires` (as sent).
    Presigned { start: i64, expires: &'static str, tamper: bool },
}

/// Forms of the HTTP Date header.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DateForm {
    /// `Tue, 01 Dec 2026 18:36:45 GMT`
    Rfc1123,
    /// `Tue, 01 Dec 2026 18:36:45 -0000` (botocore)
    NumericZone,
    /// Not a date.
    Garbage,
}

/// A request ready to be written: method, path (encoded), decoded query, headers and body.
pub struct Wire<'a> {
    pub method: &'a str,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    /// Sent after the signed headers, unsigned (Content-Length, Transfer-Encoding).
    pub unsigned: Vec<(String, String)>,
    pub payload_hash: String,
    pub auth: Auth,
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn rfc1123(unix: i64, zone: &str) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let d = clock::amz_date(unix as u64); // YYYYMMDDTHHMMSSZ
    let month: usize = d[4..6].parse().unwrap_or(1);
    format!(
        "{}, {} {} {} {}:{}:{} {zone}",
        DAYS[(unix.div_euclid(86_400) % 7) as usize],
        &d[6..8],
        MONTHS[month - 1],
        &d[..4],
        &d[9..11],
        &d[11..13],
        &d[13..15]
    )
}

/// An HTTP date `offset` seconds from now (for conditional headers).
pub fn http_date(offset: i64) -> String {
    rfc1123(unix_now() + offset, "GMT")
}

/// The signed request's target (path and query as written) and headers.
pub fn sign(w: &Wire, authority: &str) -> (String, Vec<(String, String)>, Option<ChunkSigner>) {
    let (mut key, mut secret, mut region, mut skew) = (LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY, REGION, 0);
    match &w.auth {
        Auth::WrongSecret => secret = "not-the-secret",
        Auth::UnknownKey => key = "AKIDUNKNOWN0000000",
        Auth::Skew(s) => skew = *s,
        Auth::Region(r) => region = r,
        _ => {}
    }
    let now = unix_now() + skew;
    let amz_date = clock::amz_date(now as u64);
    if let Auth::Presigned { start, expires, tamper } = &w.auth {
        return presign(w, authority, unix_now() + start, expires, *tamper);
    }
    let mut headers = vec![("Host".to_string(), authority.to_string())];
    match &w.auth {
        Auth::DateHeader(form) => headers.push(("Date".into(), date_header(*form, now))),
        Auth::Anonymous | Auth::Garbage => {}
        _ => headers.push(("X-Amz-Date".into(), amz_date.clone())),
    }
    if w.auth != Auth::Anonymous {
        headers.push(("X-Amz-Content-Sha256".into(), w.payload_hash.clone()));
    }
    headers.extend(w.headers.iter().cloned());
    let target = target(&w.path, &w.query);
    match &w.auth {
        Auth::Anonymous => return (target, headers, None),
        Auth::Garbage => {
            headers.push(("Authorization".into(), "Bearer not-sigv4".into()));
            return (target, headers, None);
        }
        _ => {}
    }
    let canonical_uri = canonical::canonical_uri(&w.path).unwrap_or_else(|_| w.path.clone());
    let req = SignRequest {
        method: w.method,
        canonical_uri: &canonical_uri,
        query: &w.query,
        headers: &headers,
        payload_hash: &w.payload_hash,
        access_key_id: key,
        secret_access_key: secret,
        region,
        service: "s3",
        amz_date: &amz_date,
    };
    let authorization = sign::sign_headers(&req);
    let seed = authorization.rsplit("Signature=").next().unwrap_or_default().to_string();
    headers.push(("Authorization".into(), authorization));
    let date = &amz_date[..8];
    let signer = ChunkSigner::new(
        sign::signing_key(secret, date, region, "s3"),
        &amz_date,
        &sign::credential_scope(date, region, "s3"),
        &seed,
    );
    (target, headers, Some(signer))
}

fn date_header(form: DateForm, now: i64) -> String {
    match form {
        DateForm::Rfc1123 => rfc1123(now, "GMT"),
        DateForm::NumericZone => rfc1123(now, "-0000"),
        DateForm::Garbage => "yesterday at noon".into(),
    }
}

fn presign(w: &Wire, authority: &str, at: i64, expires: &str, tamper: bool) -> (String, Vec<(String, String)>, Option<ChunkSigner>) {
    let amz_date = clock::amz_date(at as u64);
    let date = &amz_date[..8];
    let mut query = w.query.clone();
    query.extend([
        ("X-Amz-Algorithm".to_string(), "AWS4-HMAC-SHA256".to_string()),
        ("X-Amz-Credential".to_string(), format!("{LOCAL_ACCESS_KEY}/{}", sign::credential_scope(date, REGION, "s3"))),
        ("X-Amz-Date".to_string(), amz_date.clone()),
        ("X-Amz-Expires".to_string(), expires.to_string()),
        ("X-Amz-SignedHeaders".to_string(), "host".to_string()),
    ]);
    let headers = vec![("Host".to_string(), authority.to_string())];
    let canonical_uri = canonical::canonical_uri(&w.path).unwrap_or_else(|_| w.path.clone());
    let req = SignRequest {
        method: w.method,
        canonical_uri: &canonical_uri,
        query: &query,
        headers: &headers,
        payload_hash: "UNSIGNED-PAYLOAD",
        access_key_id: LOCAL_ACCESS_KEY,
        secret_access_key: LOCAL_SECRET_KEY,
        region: REGION,
        service: "s3",
        amz_date: &amz_date,
    };
    let mut signature = sign::signature(&req);
    if tamper {
        let flipped = if signature.starts_with('0') { "1" } else { "0" };
        signature.replace_range(..1, flipped);
    }
    query.push(("X-Amz-Signature".to_string(), signature));
    let mut all = headers;
    all.extend(w.headers.iter().cloned());
    (target(&w.path, &query), all, None)
}

/// `path?query` as written on the wire; a parameter without a value is written bare (`?uploads`).
fn target(path: &str, query: &[(String, String)]) -> String {
    let parts: Vec<String> = query
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                codec::uri_encode(k, true)
            } else {
                format!("{}={}", codec::uri_encode(k, true), codec::uri_encode(v, true))
            }
        })
        .collect();
    if parts.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", parts.join("&"))
    }
}

/// One exchange on a fresh connection (`Connection: close`); the body is written while the answer
/// is read, so a server that answers early never stalls the suite.
pub async fn exchange(addr: SocketAddr, method: &str, target: &str, headers: &[(String, String)], body: Vec<u8>) -> Answer {
    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
        return Answer { status: 0, headers: vec![], body: b"connect failed".to_vec() };
    };
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        if wr.write_all(head.as_bytes()).await.is_ok() && wr.write_all(&body).await.is_ok() {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    });
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), rd.read_to_end(&mut buf)).await;
    writer.abort();
    if read.is_err() {
        return Answer { status: 0, headers: vec![], body: b"no answer within 20 s".to_vec() };
    }
    parse(&buf, method == "HEAD")
}

fn parse(buf: &[u8], head_only: bool) -> Answer {
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let (head, rest) = match split {
        Some(p) => (&buf[..p], &buf[p + 4..]),
        None => (buf, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if head_only {
        vec![]
    } else if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Answer { status, headers, body }
}

/// The payload of an HTTP/1.1 chunked body.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        rest = &rest[eol + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or(&[]);
    }
    out
}

/// The text of every `<name>` element of `xml` (no nesting inside it), in document order.
pub fn element_values(xml: &str, name: &str) -> Vec<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut out = vec![];
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        rest = &rest[i + open.len()..];
        let Some(j) = rest.find(&close) else { break };
        out.push(rest[..j].to_string());
        rest = &rest[j + close.len()..];
    }
    out
}

/// The leaves of an XML document as `(path, text)` in document order, e.g.
/// `("ListBucketResult/Contents/Key", "a")`; attributes and the declaration are dropped.
pub fn leaves(xml: &str) -> Vec<(String, String)> {
    let mut out = vec![];
    let mut stack: Vec<String> = vec![];
    let mut rest = xml;
    let mut text = String::new();
    let mut leaf = false;
    while let Some(lt) = rest.find('<') {
        text.push_str(&rest[..lt]);
        rest = &rest[lt..];
        let Some(gt) = rest.find('>') else { break };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            if leaf {
                out.push((stack.join("/"), unescape(&std::mem::take(&mut text))));
            }
            leaf = false;
            if stack.last().map(String::as_str) == Some(name.trim()) {
                stack.pop();
            }
        } else {
            let self_closing = tag.ends_with('/');
            let name = tag.trim_end_matches('/').split_whitespace().next().unwrap_or("").to_string();
            if self_closing {
                out.push((format!("{}/{name}", stack.join("/")), String::new()));
                continue;
            }
            stack.push(name);
            leaf = true;
        }
        text.clear();
    }
    out
}

/// XML character data with its entity and character references resolved.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let c = match entity {
            "quot" => Some('"'),
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}
