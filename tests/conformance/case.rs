//! The conformance case type, its builders, and the runner that sends each case to the plain bucket
//! and through the proxy and compares the two answers.

use crate::common::{Harness, VIRTUAL_BUCKET};
use super::wire::{self, Answer, Auth, Wire};
use super::{PLAIN, SHARDS};
use std::collections::HashMap;
use std::net::SocketAddr;
use tempo_s3_shard_core::checksum::{ChecksumAlgorithm, Checksummer};
use tempo_s3_shard_core::codec;

/// The S3 servers the table runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Moto,
    S3sFs,
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    None,
    /// Bytes, with `{var}` templates substituted when they are valid UTF-8.
    Bytes(Vec<u8>),
    /// `aws-chunked` framing of the data in 64 KiB chunks (signed unless `unsigned`), with an
    /// optional trailing checksum (`Some((alg, wrong))`).
    Chunked { data: Vec<u8>, unsigned: bool, trailer: Option<(ChecksumAlgorithm, bool)> },
    /// HTTP/1.1 `Transfer-Encoding: chunked` without a Content-Length.
    TransferChunked(Vec<u8>),
}

/// One request: method, key (a `{var}` template, empty for the bucket), query, headers and body.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: &'static str,
    pub key: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    pub auth: Auth,
    /// Add an `x-amz-checksum-*` of the (final) body, as SDKs do for DeleteObjects.
    pub checksum: Option<ChecksumAlgorithm>,
    /// Sign this payload hash instead of the body's.
    pub claimed_hash: Option<String>,
}

impl Req {
    pub fn new(method: &'static str, key: &str) -> Req {
        Req {
            method,
            key: key.to_string(),
            query: vec![],
            headers: vec![],
            body: Body::None,
            auth: Auth::Header,
            checksum: None,
            claimed_hash: None,
        }
    }

    pub fn q(mut self, k: &str, v: &str) -> Req {
        self.query.push((k.to_string(), v.to_string()));
        self
    }

    pub fn h(mut self, k: &str, v: &str) -> Req {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }

    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Req {
        self.body = Body::Bytes(b.into());
        self
    }

    pub fn with_body(mut self, b: Body) -> Req {
        self.body = b;
        self
    }

    pub fn auth(mut self, a: Auth) -> Req {
        self.auth = a;
        self
    }

    pub fn checksum(mut self, alg: ChecksumAlgorithm) -> Req {
        self.checksum = Some(alg);
        self
    }

    pub fn claim(mut self, hash: &str) -> Req {
        self.claimed_hash = Some(hash.to_string());
        self
    }
}

/// A documented deviation of one backend from AWS: what AWS answers, which the proxy must give.
#[derive(Debug, Clone)]
pub struct Exception {
    pub backend: Backend,
    pub reason: &'static str,
    pub status: u16,
    pub code: &'static str,
    /// Text AWS's (successful) answer has, or lacks, which the backend's does not.
    pub has: Option<&'static str>,
    pub lacks: Option<&'static str>,
    /// The backend's answer is broken (not S3 at all, e.g. moto's HTML 500 page): the proxy must
    /// give the same status as an S3 XML error.
    pub fault: bool,
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub setup: Vec<Req>,
    pub req: Req,
    pub exceptions: Vec<Exception>,
    /// The backends this case runs on.
    pub on: Vec<Backend>,
    /// Headers (lowercase) not compared for this case, with the reason.
    pub ignore_headers: Vec<&'static str>,
    /// Compare status and error code only.
    pub status_only: bool,
    /// Skipped until another change lands (names it).
    pub pending: Option<&'static str>,
    /// Compare XML leaves as a set (for answers whose order a backend does not keep).
    pub unordered: bool,
}

impl Case {
    pub fn new(name: impl Into<String>, req: Req) -> Case {
        Case {
            name: name.into(),
            setup: vec![],
            req,
            exceptions: vec![],
            on: vec![Backend::Moto, Backend::S3sFs],
            ignore_headers: vec![],
            status_only: false,
            pending: None,
            unordered: false,
        }
    }

    pub fn setup(mut self, r: Req) -> Case {
        self.setup.push(r);
        self
    }

    /// Runs on moto only (s3s-fs lacks the feature).
    pub fn moto(mut self) -> Case {
        self.on = vec![Backend::Moto];
        self
    }

    /// `backend` deviates from AWS here (`reason`); the proxy must answer `status` / `code`.
    pub fn except(mut self, backend: Backend, reason: &'static str, status: u16, code: &'static str) -> Case {
        self.exceptions.push(Exception { backend, reason, status, code, has: None, lacks: None, fault: false });
        self
    }

    /// `backend` deviates (`reason`); AWS's successful answer contains `text`, the proxy's must too.
    pub fn except_having(mut self, backend: Backend, reason: &'static str, text: &'static str) -> Case {
        self.exceptions.push(Exception { backend, reason, status: 200, code: "", has: Some(text), lacks: None, fault: false });
        self
    }

    /// `backend` deviates (`reason`); AWS's successful answer lacks `text`, the proxy's must too.
    pub fn except_lacking(mut self, backend: Backend, reason: &'static str, text: &'static str) -> Case {
        self.exceptions.push(Exception { backend, reason, status: 200, code: "", has: None, lacks: Some(text), fault: false });
        self
    }

    /// `backend` answers this with something that is not S3 (`reason`): the proxy must relay the
    /// status as an S3 XML error.
    pub fn backend_fault(mut self, backend: Backend, reason: &'static str) -> Case {
        self.exceptions.push(Exception { backend, reason, status: 0, code: "", has: None, lacks: None, fault: true });
        self
    }

    pub fn ignore(mut self, header: &'static str) -> Case {
        self.ignore_headers.push(header);
        self
    }

    pub fn status_only(mut self) -> Case {
        self.status_only = true;
        self
    }

    pub fn unordered(mut self) -> Case {
        self.unordered = true;
        self
    }
}

/// The outcome of one case on one backend.
#[derive(Debug)]
pub struct CaseResult {
    pub name: String,
    /// Every answer the proxy gave (setup and the case itself).
    pub proxied: Vec<Answer>,
    pub failure: Option<String>,
}

/// The whole table on one backend.
#[derive(Debug)]
pub struct Run {
    pub results: Vec<CaseResult>,
    pub skipped: Vec<String>,
    pub backend_authority: String,
    pub proxy_authority: String,
}

/// One side of the comparison: where requests go, and the bucket they name.
struct Side {
    addr: SocketAddr,
    authority: String,
    bucket: &'static str,
}

/// Run every case of `cases` that `backend` supports, one after the other.
pub async fn run_table(backend: Backend, cases: Vec<Case>) -> Run {
    let h = match backend {
        Backend::Moto => Harness::start_moto(&SHARDS, &[]).await,
        Backend::S3sFs => Harness::start(&SHARDS).await,
    };
    h.direct().create_bucket().bucket(PLAIN).send().await.expect("create the plain bucket");
    let backend_authority = h.backend_endpoint().trim_start_matches("http://").to_string();
    let direct = Side { addr: backend_authority.parse().expect("backend address"), authority: backend_authority.clone(), bucket: PLAIN };
    let proxy = Side { addr: h.proxy, authority: h.proxy.to_string(), bucket: VIRTUAL_BUCKET };
    let mut results = vec![];
    let mut skipped = vec![];
    for (i, case) in cases.into_iter().enumerate() {
        if !case.on.contains(&backend) {
            continue;
        }
        if let Some(why) = case.pending {
            skipped.push(format!("{}: {why}", case.name));
            continue;
        }
        let vars = base_vars(&h, i);
        let (d, _) = run_case(&case, &direct, vars.clone()).await;
        let (p, proxied) = run_case(&case, &proxy, vars).await;
        let failure = judge(&case, backend, &d, &p).map(|why| {
            format!("--- {} [{backend:?}]: {why}\n    direct: {}\n    proxy:  {}", case.name, brief(&d.0), brief(&p.0))
        });
        results.push(CaseResult { name: case.name.clone(), proxied, failure });
    }
    Run { results, skipped, backend_authority, proxy_authority: proxy.authority.clone() }
}

fn brief(a: &Answer) -> String {
    let text = a.body_text();
    let text: String = text.chars().take(600).collect();
    format!("{} {:?} {}", a.status, a.headers, text)
}

/// Template variables of case `i`: `{k}` its own first key segment, `{far}` a block of `{k}` on
/// another shard than block `b`, `{near}` another block on the same shard.
fn base_vars(h: &Harness, i: usize) -> HashMap<String, String> {
    let k = format!("c{i:03}");
    let home = h.owner(&format!("{k}/b/x"));
    let far = (0..200).map(|j| format!("f{j}")).find(|f| h.owner(&format!("{k}/{f}/x")) != home).unwrap_or_default();
    let near = (0..200).map(|j| format!("n{j}")).find(|f| h.owner(&format!("{k}/{f}/x")) == home).unwrap_or_default();
    HashMap::from([("k".into(), k), ("far".into(), far), ("near".into(), near)])
}

fn subst(s: &str, vars: &HashMap<String, String>) -> String {
    let mut out = s.to_string();
    // Longest names first, so `{etag10}` is not read as `{etag1}` + `0`.
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for n in names {
        out = out.replace(&format!("{{{n}}}"), &vars[n]);
    }
    out
}

/// The answer to a case's request, with its variables; and every answer of the side (for leak scans).
async fn run_case(case: &Case, side: &Side, mut vars: HashMap<String, String>) -> ((Answer, HashMap<String, String>), Vec<Answer>) {
    vars.insert("bucket".into(), side.bucket.to_string());
    let mut all = vec![];
    for (n, step) in case.setup.iter().enumerate() {
        let a = send(step, side, &vars).await;
        capture(&a, n + 1, &mut vars);
        all.push(a);
    }
    let a = send(&case.req, side, &vars).await;
    all.push(a.clone());
    ((a, vars), all)
}

/// Remember what later steps refer to: `{upload}`, `{etagN}` (step N's ETag), `{token}`, `{marker}`.
fn capture(a: &Answer, step: usize, vars: &mut HashMap<String, String>) {
    let text = a.body_text();
    if let Some(id) = wire::element_values(&text, "UploadId").into_iter().next() {
        vars.insert("upload".into(), id);
    }
    let etag = a.header("etag").map(str::to_string).or_else(|| wire::element_values(&text, "ETag").into_iter().next());
    if let Some(e) = etag {
        vars.insert(format!("etag{step}"), e.replace("&quot;", "\""));
    }
    if let Some(t) = wire::element_values(&text, "NextContinuationToken").into_iter().next() {
        vars.insert("token".into(), t);
    }
    if let Some(m) = wire::element_values(&text, "NextMarker").into_iter().next() {
        vars.insert("marker".into(), m);
    }
}

async fn send(req: &Req, side: &Side, vars: &HashMap<String, String>) -> Answer {
    let key = subst(&req.key, vars);
    let path = if key.is_empty() {
        format!("/{}", side.bucket)
    } else {
        format!("/{}/{}", side.bucket, codec::uri_encode(&key, false))
    };
    let query = req.query.iter().map(|(k, v)| (subst(k, vars), subst(v, vars))).collect();
    let mut headers: Vec<(String, String)> = req.headers.iter().map(|(k, v)| (k.clone(), subst(v, vars))).collect();
    let data = match &req.body {
        Body::None => vec![],
        Body::Bytes(b) | Body::TransferChunked(b) => match std::str::from_utf8(b) {
            Ok(t) => subst(t, vars).into_bytes(),
            Err(_) => b.clone(),
        },
        Body::Chunked { data, .. } => data.clone(),
    };
    if let Some(alg) = req.checksum {
        let mut c = Checksummer::new(alg);
        c.update(&data);
        headers.push((alg.header_name().to_string(), c.finish_base64()));
    }
    let payload_hash = match (&req.claimed_hash, &req.body) {
        (Some(h), _) => h.clone(),
        (None, Body::Chunked { unsigned: true, .. }) => "STREAMING-UNSIGNED-PAYLOAD-TRAILER".into(),
        (None, Body::Chunked { trailer: Some(_), .. }) => "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER".into(),
        (None, Body::Chunked { .. }) => "STREAMING-AWS4-HMAC-SHA256-PAYLOAD".into(),
        (None, Body::TransferChunked(_)) => "UNSIGNED-PAYLOAD".into(),
        (None, _) => tempo_s3_shard_core::sigv4::sign::sha256_hex(&data),
    };
    if let Body::Chunked { data, trailer, .. } = &req.body {
        headers.push(("Content-Encoding".into(), "aws-chunked".into()));
        headers.push(("x-amz-decoded-content-length".into(), data.len().to_string()));
        if let Some((alg, _)) = trailer {
            headers.push(("x-amz-trailer".into(), alg.header_name().into()));
        }
    }
    let wire = Wire { method: req.method, path, query, headers, unsigned: vec![], payload_hash, auth: req.auth.clone() };
    let (target, mut headers, signer) = wire::sign(&wire, &side.authority);
    headers.extend(wire.unsigned);
    let body = match &req.body {
        Body::Chunked { data, unsigned, trailer } => {
            let trailer_value = trailer.map(|(alg, wrong)| {
                let mut c = Checksummer::new(alg);
                c.update(data);
                if wrong {
                    c.update(b"!");
                }
                (alg.header_name(), c.finish_base64())
            });
            let trailers: Vec<(&str, &str)> = trailer_value.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let mut signer = signer;
            let signer = if *unsigned { None } else { signer.as_mut() };
            tempo_s3_shard_core::chunked::encoder::encode(data, 64 * 1024, signer, &trailers, !unsigned && trailer.is_some())
        }
        Body::TransferChunked(_) => {
            headers.push(("Transfer-Encoding".into(), "chunked".into()));
            let mut b = format!("{:x}\r\n", data.len()).into_bytes();
            b.extend_from_slice(&data);
            b.extend_from_slice(b"\r\n0\r\n\r\n");
            b
        }
        _ => data,
    };
    if !matches!(req.body, Body::TransferChunked(_)) && (!body.is_empty() || matches!(req.method, "PUT" | "POST")) {
        headers.push(("Content-Length".into(), body.len().to_string()));
    }
    wire::exchange(side.addr, req.method, &target, &headers, body).await
}

/// Headers compared on successful answers (plus every `x-amz-meta-*`). Written out here, not taken
/// from the proxy's forwarded-header lists: the suite must notice a header the proxy stops passing on.
const COMPARED_HEADERS: &[&str] = &[
    "accept-ranges",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "content-range",
    "etag",
    "expires",
    "x-amz-checksum-algorithm",
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
    "x-amz-checksum-type",
    "x-amz-delete-marker",
    "x-amz-missing-meta",
    "x-amz-mp-parts-count",
    "x-amz-tagging-count",
    "x-amz-website-redirect-location",
];

/// Headers also compared on object reads (GET/HEAD of a key without a sub-resource).
const OBJECT_READ_HEADERS: &[&str] = &["content-type", "content-length"];

/// XML leaves never compared: times, owners, request ids and messages legitimately differ.
const IGNORED_LEAVES: &[&str] = &[
    "LastModified",
    "Initiated",
    "ID",
    "DisplayName",
    "RequestId",
    "HostId",
    "Message",
    "Resource",
    "BucketName",
    "Location",
    "StorageClass",
    "ContinuationToken",
];

/// Why the proxy's answer is wrong for `case`, if it is.
fn judge(case: &Case, backend: Backend, d: &(Answer, HashMap<String, String>), p: &(Answer, HashMap<String, String>)) -> Option<String> {
    let (da, dv) = d;
    let (pa, pv) = p;
    if let Some(e) = case.exceptions.iter().find(|e| e.backend == backend) {
        return judge_exception(e, da, pa);
    }
    if da.status != pa.status {
        return Some(format!("status {} direct, {} through the proxy", da.status, pa.status));
    }
    if da.code() != pa.code() {
        return Some(format!("error code {:?} direct, {:?} through the proxy", da.code(), pa.code()));
    }
    if case.status_only || da.status >= 300 {
        return None;
    }
    compare_headers(case, da, pa).or_else(|| compare_bodies(case, da, dv, pa, pv))
}

/// Whether the proxy gives AWS's answer where the backend documentedly does not (and whether the
/// backend still deviates: an exception it no longer needs is reported, so the table stays honest).
fn judge_exception(e: &Exception, d: &Answer, p: &Answer) -> Option<String> {
    if e.fault {
        let relayed = p.status == d.status && p.code().is_some();
        let broken = d.code().is_none();
        return match (broken, relayed) {
            (false, _) => Some(format!("the backend answers S3 here: drop the exception ({})", e.reason)),
            (true, false) => Some(format!("the broken answer is not relayed as an S3 error (exception: {})", e.reason)),
            (true, true) => None,
        };
    }
    let meets = |a: &Answer| {
        let text = a.body_text();
        (a.status, a.code().unwrap_or_default()) == (e.status, e.code.to_string())
            && e.has.is_none_or(|t| text.contains(t))
            && e.lacks.is_none_or(|t| !text.contains(t))
    };
    if meets(d) {
        return Some(format!("the backend gives AWS's answer itself: drop the exception ({})", e.reason));
    }
    (!meets(p)).then(|| {
        let wanted = match (e.has, e.lacks) {
            (Some(t), _) => format!(" containing {t:?}"),
            (_, Some(t)) => format!(" without {t:?}"),
            _ => String::new(),
        };
        format!("expected AWS's {} {}{wanted} (exception: {}), got {} {:?}", e.status, e.code, e.reason, p.status, p.code())
    })
}

fn compare_headers(case: &Case, d: &Answer, p: &Answer) -> Option<String> {
    let object_read = matches!(case.req.method, "GET" | "HEAD")
        && !case.req.key.is_empty()
        && case.req.query.iter().all(|(k, _)| k.starts_with("response-") || k == "partNumber" || k.starts_with("X-Amz-"));
    let mut names: Vec<String> = COMPARED_HEADERS.iter().map(|s| s.to_string()).collect();
    if object_read {
        names.extend(OBJECT_READ_HEADERS.iter().map(|s| s.to_string()));
    }
    for (k, _) in d.headers.iter().chain(&p.headers) {
        if k.starts_with("x-amz-meta-") && !names.contains(k) {
            names.push(k.clone());
        }
    }
    for name in names.iter().filter(|n| !case.ignore_headers.contains(&n.as_str())) {
        let (dh, ph) = (d.header(name), p.header(name));
        if dh != ph {
            return Some(format!("header {name}: {dh:?} direct, {ph:?} through the proxy"));
        }
    }
    None
}

fn compare_bodies(case: &Case, d: &Answer, dv: &HashMap<String, String>, p: &Answer, pv: &HashMap<String, String>) -> Option<String> {
    let (dt, pt) = (d.body_text(), p.body_text());
    let xml = |t: &str| t.trim_start().starts_with('<');
    if !(xml(&dt) && xml(&pt)) {
        return (d.body != p.body).then(|| format!("bodies differ ({} and {} bytes)", d.body.len(), p.body.len()));
    }
    let (mut dl, mut pl) = normalise_pair(&dt, dv, &pt, pv);
    if case.unordered {
        dl.sort();
        pl.sort();
    }
    if dl != pl {
        let at = dl.iter().zip(&pl).position(|(a, b)| a != b).unwrap_or(dl.len().min(pl.len()));
        return Some(format!(
            "XML differs at leaf {at}: {:?} direct, {:?} through the proxy",
            dl.get(at),
            pl.get(at)
        ));
    }
    None
}

/// Elements that echo the request: compared only when both sides have them (backends omit some).
const ECHOED_LEAVES: &[&str] = &[
    "Delimiter",
    "EncodingType",
    "Marker",
    "StartAfter",
    "Prefix",
    "MaxKeys",
    "KeyCount",
    "MaxUploads",
    "KeyMarker",
    "UploadIdMarker",
    "MaxParts",
    "PartNumberMarker",
];

/// The compared leaves of both bodies, in a canonical order (grouped by path, document order within
/// a path): empty leaves dropped, request echoes only where both have them.
fn normalise_pair(d: &str, dv: &HashMap<String, String>, p: &str, pv: &HashMap<String, String>) -> (Vec<(String, String)>, Vec<(String, String)>) {
    let (mut dl, mut pl) = (normalise(d, dv), normalise(p, pv));
    let echoed = |path: &str| ECHOED_LEAVES.contains(&path.rsplit('/').next().unwrap_or(""));
    let dpaths: Vec<String> = dl.iter().map(|(path, _)| path.clone()).collect();
    let ppaths: Vec<String> = pl.iter().map(|(path, _)| path.clone()).collect();
    dl.retain(|(path, _)| !echoed(path) || ppaths.contains(path));
    pl.retain(|(path, _)| !echoed(path) || dpaths.contains(path));
    dl.sort_by(|a, b| a.0.cmp(&b.0));
    pl.sort_by(|a, b| a.0.cmp(&b.0));
    (dl, pl)
}

/// The compared leaves of an XML body: bucket names and upload ids replaced by placeholders.
fn normalise(xml: &str, vars: &HashMap<String, String>) -> Vec<(String, String)> {
    wire::leaves(xml)
        .into_iter()
        .filter(|(_, text)| !text.is_empty())
        .filter(|(path, _)| {
            let leaf = path.rsplit('/').next().unwrap_or("");
            !IGNORED_LEAVES.contains(&leaf) && !path.contains("/Owner/") && !path.contains("/Initiator/")
        })
        .map(|(path, text)| {
            let mut text = text;
            if let Some(b) = vars.get("bucket") {
                if text == *b {
                    text = "{bucket}".into();
                }
            }
            if let Some(u) = vars.get("upload") {
                text = text.replace(u.as_str(), "{upload}");
            }
            if path.ends_with("UploadId") || path.ends_with("UploadIdMarker") {
                text = "{upload}".into();
            }
            if path.ends_with("NextContinuationToken") {
                text = "{token}".into();
            }
            (path, text)
        })
        .collect()
}

/// The checksum of `data` as the `x-amz-checksum-*` header carries it.
pub fn checksum_of(alg: ChecksumAlgorithm, data: &[u8]) -> String {
    let mut c = Checksummer::new(alg);
    c.update(data);
    c.finish_base64()
}
