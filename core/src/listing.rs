//! One S3 listing over all shards: a sans-IO k-way merge of the backends' ListObjectsV2 pages.

use std::collections::VecDeque;
use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::codec::{base64url_decode, base64url_encode};
use crate::error::S3Error;
use crate::xml::{BackendPage, ObjectEntry};

/// S3's default and largest page size.
pub const MAX_KEYS: u32 = 1000;
/// Requests one backend may take to fill one page before the merge gives up on it.
const MAX_REQUESTS_PER_BACKEND: u32 = 100;
/// Sorts after every key that shares the prefix it is appended to (largest Unicode scalar).
const AFTER_ALL: char = '\u{10FFFF}';
const TOKEN_VERSION: u8 = 1;
const FINGERPRINT_LEN: usize = 8;
const TAG_LEN: usize = 32;
const BAD_TOKEN: &str = "The continuation token provided is incorrect";

type HmacSha256 = Hmac<Sha256>;

/// A client's ListObjects (V1) or ListObjectsV2 request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    pub v2: bool,
    pub prefix: String,
    /// `None` when absent or empty.
    pub delimiter: Option<String>,
    /// 0..=1000.
    pub max_keys: u32,
    pub start_after: Option<String>,
    pub continuation_token: Option<String>,
    pub marker: Option<String>,
    pub encoding_url: bool,
    pub fetch_owner: bool,
}

/// A `max-keys`/`max-uploads` value: 0..=i32::MAX, capped at `cap`; absent means `cap`.
pub(crate) fn parse_max(value: Option<&str>, cap: u32, error: &str) -> Result<u32, S3Error> {
    match value {
        None => Ok(cap),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(n.min(i64::from(cap)) as u32),
            _ => Err(S3Error::invalid_argument(error)),
        },
    }
}

/// `encoding-type`: absent or empty means none; `url` (any case) is the only encoding S3 knows.
pub(crate) fn parse_encoding(value: Option<&str>) -> Result<bool, S3Error> {
    match value {
        None | Some("") => Ok(false),
        Some(e) if e.eq_ignore_ascii_case("url") => Ok(true),
        Some(_) => Err(S3Error::invalid_argument("Invalid Encoding Method specified in Request")),
    }
}

impl ListRequest {
    /// Read the request from its decoded query parameters (the first occurrence of each counts).
    pub fn from_query(params: &[(String, String)]) -> Result<ListRequest, S3Error> {
        let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let text = |name: &str| get(name).filter(|v| !v.is_empty()).map(str::to_string);
        let v2 = match get("list-type") {
            None | Some("1") => false,
            Some("2") => true,
            Some(_) => return Err(S3Error::invalid_argument("Invalid list-type; use 2 for ListObjectsV2")),
        };
        let max_keys =
            parse_max(get("max-keys"), MAX_KEYS, "Provided max-keys not an integer or within integer range")?;
        let encoding_url = parse_encoding(get("encoding-type"))?;
        Ok(ListRequest {
            v2,
            prefix: get("prefix").unwrap_or("").to_string(),
            delimiter: text("delimiter"),
            max_keys,
            start_after: text("start-after"),
            continuation_token: text("continuation-token"),
            marker: text("marker"),
            encoding_url,
            fetch_owner: get("fetch-owner").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        })
    }
}

/// The merged page, ready for [`crate::xml::list_objects_v2`] / [`crate::xml::list_objects_v1`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOutput {
    pub v2: bool,
    pub name: String,
    pub prefix: String,
    pub delimiter: Option<String>,
    pub max_keys: u32,
    pub encoding_url: bool,
    pub is_truncated: bool,
    /// V1: the marker the client sent (S3 always writes the element).
    pub marker: Option<String>,
    /// V1: set only when truncated and a delimiter was given, as S3 does.
    pub next_marker: Option<String>,
    /// V2: echoes of the request.
    pub start_after: Option<String>,
    pub continuation_token: Option<String>,
    /// V2: our own opaque token, set when truncated.
    pub next_continuation_token: Option<String>,
    pub contents: Vec<ObjectEntry>,
    pub common_prefixes: Vec<String>,
}

impl ListOutput {
    /// Keys and common prefixes in the page (V2 `KeyCount`).
    pub fn key_count(&self) -> usize {
        self.contents.len() + self.common_prefixes.len()
    }

    /// The response body in the client's dialect.
    pub fn to_xml(&self) -> String {
        if self.v2 {
            crate::xml::list_objects_v2(self)
        } else {
            crate::xml::list_objects_v1(self)
        }
    }
}

/// One listing entry: a key, or a common prefix standing for all keys under it.
#[derive(Debug, Clone)]
enum Item {
    Key(ObjectEntry),
    Prefix(String),
}

impl Item {
    fn name(&self) -> &str {
        match self {
            Item::Key(o) => &o.key,
            Item::Prefix(p) => p,
        }
    }
}

/// Where a backend's next page starts.
#[derive(Debug)]
enum Next {
    /// Not asked yet: start after the listing position.
    Start,
    /// The backend's own NextContinuationToken.
    Token(String),
    /// A start-after computed from the last entry it returned (backend gave no token).
    After(String),
    /// The backend has nothing more.
    Done,
}

#[derive(Debug)]
struct Backend {
    buf: VecDeque<Item>,
    next: Next,
    /// The largest name received from this backend; later answers must sort after it.
    last_seen: Option<String>,
    requests: u32,
}

/// The continuation-token key; kept out of `Debug` output.
struct TokenKey(Vec<u8>);

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

/// Merges N backend listings into one page with the semantics of a single S3 bucket holding
/// the union of their keys.
///
/// The adapter drives it: `loop { let reqs = m.next_requests(); if reqs.is_empty() { break }
/// send every request (in parallel), feed() each answer }`, then `finish()`. Every request
/// returned must be answered with `feed` before `next_requests` is called again (a request not
/// yet answered is simply returned again). Backend failures are the adapter's job: on an error
/// status or unreachable backend it abandons the merge and answers the client with that error
/// (a partial listing would silently hide keys).
#[derive(Debug)]
pub struct Merger {
    req: ListRequest,
    /// Emitted items sort strictly after this (start-after, marker or token position).
    after: Option<String>,
    after_is_prefix: bool,
    backends: Vec<Backend>,
    contents: Vec<ObjectEntry>,
    prefixes: Vec<String>,
    /// The last emitted item: name and whether it is a common prefix.
    last: Option<(String, bool)>,
    key: TokenKey,
    done: bool,
    truncated: bool,
}

impl Merger {
    /// Start a merge over `backends` backends. A V2 continuation token must be one of ours for
    /// the same prefix and delimiter, else `InvalidArgument`.
    pub fn new(mut req: ListRequest, backends: usize, token_key: &[u8]) -> Result<Merger, S3Error> {
        if backends == 0 {
            return Err(S3Error::internal("no backend buckets are configured"));
        }
        req.max_keys = req.max_keys.min(MAX_KEYS);
        req.delimiter = req.delimiter.filter(|d| !d.is_empty());
        for v in [&mut req.start_after, &mut req.continuation_token, &mut req.marker] {
            *v = v.take().filter(|s| !s.is_empty());
        }
        let fp = fingerprint(&req);
        let (after, after_is_prefix) = match (req.v2, &req.continuation_token) {
            (true, Some(token)) => {
                let (last, is_prefix) = decode_token(token, token_key, &fp)?;
                (Some(last), is_prefix)
            }
            (true, None) => (req.start_after.clone(), false),
            (false, _) => (req.marker.clone(), false),
        };
        let backend = || Backend { buf: VecDeque::new(), next: Next::Start, last_seen: None, requests: 0 };
        Ok(Merger {
            done: req.max_keys == 0,
            req,
            after,
            after_is_prefix,
            backends: (0..backends).map(|_| backend()).collect(),
            contents: Vec::new(),
            prefixes: Vec::new(),
            last: None,
            key: TokenKey(token_key.to_vec()),
            truncated: false,
        })
    }

    /// Emit what can be emitted, then name the backends to ask next with their ListObjectsV2
    /// query parameters (decoded). Empty when the page is complete.
    pub fn next_requests(&mut self) -> Vec<(usize, Vec<(String, String)>)> {
        self.emit();
        if self.done {
            return Vec::new();
        }
        let need = (self.req.max_keys as usize).saturating_sub(self.emitted());
        // One more than needed, so the page usually learns whether it is truncated.
        let ask = (need + 1).min(MAX_KEYS as usize);
        let mut out = Vec::new();
        for (i, b) in self.backends.iter().enumerate() {
            if !b.buf.is_empty() {
                continue;
            }
            let from = match &b.next {
                Next::Done => continue,
                Next::Start => self.start_after().map(|s| ("start-after", s)),
                Next::Token(t) => Some(("continuation-token", t.clone())),
                Next::After(s) => Some(("start-after", s.clone())),
            };
            let mut q: Vec<(String, String)> = vec![("list-type".into(), "2".into())];
            if !self.req.prefix.is_empty() {
                q.push(("prefix".into(), self.req.prefix.clone()));
            }
            if let Some(d) = &self.req.delimiter {
                q.push(("delimiter".into(), d.clone()));
            }
            q.push(("max-keys".into(), ask.to_string()));
            // No `encoding-type=url`: some S3 servers (s3s-fs among them) echo it without
            // encoding, and a raw `+` or `%` in a key then decodes into another key. Keys reach
            // us XML-escaped, which carries every key S3 can list.
            if !self.req.v2 || self.req.fetch_owner {
                q.push(("fetch-owner".into(), "true".into()));
            }
            if let Some((k, v)) = from {
                q.push((k.into(), v));
            }
            out.push((i, q));
        }
        out
    }

    /// Take one backend's answer to the request `next_requests` made of it.
    pub fn feed(&mut self, backend: usize, page: BackendPage) -> Result<(), S3Error> {
        let Some(b) = self.backends.get(backend) else {
            return Err(S3Error::internal(format!("listing answer from unknown backend {backend}")));
        };
        if b.requests >= MAX_REQUESTS_PER_BACKEND {
            return Err(S3Error::internal(format!(
                "backend {backend} kept answering ListObjectsV2 with truncated pages that made no progress"
            )));
        }
        let keep_owner = !self.req.v2 || self.req.fetch_owner;
        let mut items: Vec<Item> = Vec::new();
        for mut o in page.objects {
            match self.group_of(&o.key) {
                // A key that should have rolled up into a common prefix: roll it up here.
                Some(g) => items.push(Item::Prefix(g.to_string())),
                None => {
                    if !keep_owner {
                        o.owner = None;
                    }
                    items.push(Item::Key(o));
                }
            }
        }
        if self.req.delimiter.is_some() {
            for p in page.common_prefixes {
                // A common prefix ends at the first delimiter after the prefix. One that does not
                // (s3s-fs cuts multi-character delimiters short) would list keys that do not
                // exist: fail the listing rather than answer with it.
                if self.group_of(&p) != Some(p.as_str()) {
                    return Err(S3Error::internal(format!(
                        "backend {backend} returned the common prefix {p:?}, which does not end at the first delimiter"
                    )));
                }
                items.push(Item::Prefix(p));
            }
        }
        items.sort_by(|a, b| a.name().cmp(b.name()));
        let resume = items.last().map(|i| self.skip_point(i.name(), matches!(i, Item::Prefix(_))));

        let floor = [self.after.as_deref(), self.last.as_ref().map(|(n, _)| n.as_str())];
        let prefix = self.req.prefix.as_str();
        let Some(b) = self.backends.get_mut(backend) else {
            return Err(S3Error::internal(format!("listing answer from unknown backend {backend}")));
        };
        b.requests += 1;
        for item in items {
            let name = item.name();
            let below = |f: &Option<&str>| f.is_some_and(|f| name <= f);
            if !name.starts_with(prefix) || floor.iter().any(below) || below(&b.last_seen.as_deref()) {
                continue;
            }
            b.last_seen = Some(name.to_string());
            b.buf.push_back(item);
        }
        b.next = if !page.is_truncated {
            Next::Done
        } else if let Some(t) = page.next_continuation_token.filter(|t| !t.is_empty()) {
            Next::Token(t)
        } else if let Some(s) = resume.or(page.next_marker) {
            Next::After(s)
        } else {
            return Err(S3Error::internal(format!(
                "backend {backend} reported a truncated listing without a continuation token"
            )));
        };
        Ok(())
    }

    /// The merged page, with our own NextContinuationToken (V2) or NextMarker (V1).
    pub fn finish(self, bucket_name: &str) -> ListOutput {
        // Finishing early (adapter misuse) reports the page as truncated so the client resumes.
        let is_truncated = if self.done { self.truncated } else { self.last.is_some() };
        let fp = fingerprint(&self.req);
        let last = self.last.filter(|_| is_truncated);
        let req = self.req;
        let (next_continuation_token, next_marker) = match last {
            Some((name, is_prefix)) if req.v2 => {
                (Some(encode_token(&name, is_prefix, &fp, &self.key.0)), None)
            }
            Some((name, _)) if req.delimiter.is_some() => (None, Some(name)),
            _ => (None, None),
        };
        ListOutput {
            v2: req.v2,
            name: bucket_name.to_string(),
            prefix: req.prefix,
            delimiter: req.delimiter,
            max_keys: req.max_keys,
            encoding_url: req.encoding_url,
            is_truncated,
            marker: if req.v2 { None } else { req.marker },
            next_marker,
            start_after: if req.v2 { req.start_after } else { None },
            continuation_token: if req.v2 { req.continuation_token } else { None },
            next_continuation_token,
            contents: self.contents,
            common_prefixes: self.prefixes,
        }
    }

    fn emitted(&self) -> usize {
        self.contents.len() + self.prefixes.len()
    }

    /// Move items to the page while the smallest one is known: every backend that could still
    /// hold a smaller item has items buffered or is done.
    fn emit(&mut self) {
        while !self.done {
            if self.emitted() >= self.req.max_keys as usize {
                if self.backends.iter().any(|b| !b.buf.is_empty()) {
                    self.truncated = true;
                    self.done = true;
                } else if self.backends.iter().all(|b| matches!(b.next, Next::Done)) {
                    self.done = true;
                }
                return;
            }
            if self.backends.iter().any(|b| b.buf.is_empty() && !matches!(b.next, Next::Done)) {
                return;
            }
            let mut min: Option<usize> = None;
            for (i, b) in self.backends.iter().enumerate() {
                let Some(head) = b.buf.front() else { continue };
                let smaller = match min.and_then(|m| self.backends[m].buf.front()) {
                    Some(best) => head.name() < best.name(),
                    None => true,
                };
                if smaller {
                    min = Some(i);
                }
            }
            let Some(mut item) = min.and_then(|m| self.backends[m].buf.pop_front()) else {
                self.done = true;
                return;
            };
            // The same key in two backends (mid-reshard) or the same common prefix: once,
            // keeping the newest copy of a key.
            for b in &mut self.backends {
                while b.buf.front().is_some_and(|h| h.name() == item.name()) {
                    let Some(other) = b.buf.pop_front() else { break };
                    let newer = matches!((&other, &item),
                        (Item::Key(o), Item::Key(k)) if o.last_modified > k.last_modified);
                    if newer {
                        item = other;
                    }
                }
            }
            match item {
                Item::Key(o) => {
                    self.last = Some((o.key.clone(), false));
                    self.contents.push(o);
                }
                Item::Prefix(p) => {
                    self.last = Some((p.clone(), true));
                    self.prefixes.push(p);
                }
            }
        }
    }

    /// The common prefix `name` rolls up into, if a delimiter is set and occurs after the prefix.
    fn group_of<'a>(&self, name: &'a str) -> Option<&'a str> {
        let d = self.req.delimiter.as_deref()?;
        let rest = name.strip_prefix(self.req.prefix.as_str())?;
        let at = rest.find(d)?;
        name.get(..self.req.prefix.len() + at + d.len())
    }

    /// The start-after that resumes a backend after `name`. Keys under a common prefix that is
    /// (or contains) the position would only roll up into an item at or before it, so a backend
    /// skips them all.
    fn skip_point(&self, name: &str, is_prefix: bool) -> String {
        let group = if is_prefix { Some(name) } else { self.group_of(name) };
        match group {
            Some(g) => format!("{g}{AFTER_ALL}").max(name.to_string()),
            None => name.to_string(),
        }
    }

    fn start_after(&self) -> Option<String> {
        self.after.as_deref().map(|a| self.skip_point(a, self.after_is_prefix))
    }
}

/// Binds a token to its listing (prefix and delimiter).
fn fingerprint(req: &ListRequest) -> [u8; FINGERPRINT_LEN] {
    let mut h = Sha256::new();
    h.update(req.prefix.as_bytes());
    h.update([0]);
    match &req.delimiter {
        Some(d) => {
            h.update([1]);
            h.update(d.as_bytes());
        }
        None => h.update([0]),
    }
    let digest = h.finalize();
    let mut fp = [0u8; FINGERPRINT_LEN];
    fp.copy_from_slice(&digest[..FINGERPRINT_LEN]);
    fp
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this never fails.
    <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

/// Token layout: version, is_prefix, fingerprint, last item (UTF-8), then HMAC-SHA256 of all
/// that; base64url without padding.
fn encode_token(last: &str, is_prefix: bool, fp: &[u8; FINGERPRINT_LEN], key: &[u8]) -> String {
    let mut data = vec![TOKEN_VERSION, u8::from(is_prefix)];
    data.extend_from_slice(fp);
    data.extend_from_slice(last.as_bytes());
    let mut m = mac(key);
    m.update(&data);
    data.extend_from_slice(&m.finalize().into_bytes());
    base64url_encode(&data)
}

fn decode_token(token: &str, key: &[u8], fp: &[u8; FINGERPRINT_LEN]) -> Result<(String, bool), S3Error> {
    let bad = || S3Error::invalid_argument(BAD_TOKEN);
    let data = base64url_decode(token).ok_or_else(bad)?;
    let body_len = data.len().checked_sub(TAG_LEN).ok_or_else(bad)?;
    let (body, tag) = data.split_at(body_len);
    let mut m = mac(key);
    m.update(body);
    m.verify_slice(tag).map_err(|_| bad())?;
    let (head, last) = body.split_at_checked(2 + FINGERPRINT_LEN).ok_or_else(bad)?;
    if head[0] != TOKEN_VERSION || head[2..] != fp[..] {
        return Err(bad());
    }
    let is_prefix = match head[1] {
        0 => false,
        1 => true,
        _ => return Err(bad()),
    };
    let last = String::from_utf8(last.to_vec()).map_err(|_| bad())?;
    Ok((last, is_prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;
    use crate::error::ErrorCode;
    use crate::xml;
    use std::collections::BTreeMap;

    const KEY: &[u8] = b"test token key";

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
        query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn req(v2: bool, prefix: &str, delimiter: Option<&str>, max_keys: u32) -> ListRequest {
        ListRequest {
            v2,
            prefix: prefix.into(),
            delimiter: delimiter.map(str::to_string),
            max_keys,
            start_after: None,
            continuation_token: None,
            marker: None,
            encoding_url: false,
            fetch_owner: false,
        }
    }

    /// The listing item a key stands for: itself, or its common prefix.
    fn item_of(key: &str, prefix: &str, delimiter: Option<&str>) -> (String, bool) {
        if let Some(d) = delimiter {
            if let Some(at) = key[prefix.len()..].find(d) {
                return (key[..prefix.len() + at + d.len()].to_string(), true);
            }
        }
        (key.to_string(), false)
    }

    /// Test oracle: the items S3 lists from sorted `keys`, starting after `after`. `skip_group`
    /// drops keys under a prefix (how a real backend resumes from its own token after a common
    /// prefix). `strict` also drops common prefixes at or before `after` (the proxy's
    /// semantics); a backend is simulated without it, as an S3 that may return the common
    /// prefix of keys after a start-after inside that prefix.
    fn s3_items(
        keys: &[String],
        prefix: &str,
        delimiter: Option<&str>,
        after: Option<&str>,
        skip_group: Option<&str>,
        strict: bool,
    ) -> Vec<(String, bool)> {
        let mut out: Vec<(String, bool)> = Vec::new();
        for k in keys {
            if !k.starts_with(prefix)
                || after.is_some_and(|a| k.as_str() <= a)
                || skip_group.is_some_and(|g| k.starts_with(g))
            {
                continue;
            }
            let item = item_of(k, prefix, delimiter);
            if (strict && after.is_some_and(|a| item.0.as_str() <= a)) || out.last() == Some(&item) {
                continue;
            }
            out.push(item);
        }
        out
    }


    /// One backend: sorted keys with their entries.
    struct Shard {
        keys: Vec<String>,
        entries: BTreeMap<String, ObjectEntry>,
    }

    fn entry(key: &str, backend: usize) -> ObjectEntry {
        ObjectEntry {
            key: key.to_string(),
            last_modified: format!("2024-01-0{}T00:00:00.000Z", backend + 1),
            etag: format!("\"{backend}\""),
            size: key.len() as u64,
            storage_class: "STANDARD".into(),
            owner: Some(xml::Owner { id: "o".into(), display_name: "d".into() }),
        }
    }

    /// Answer a ListObjectsV2 query like S3 would, as XML (raw or, unasked, URL-encoded with
    /// `EncodingType` said), so the test also covers the XML writer and reader. `short` answers
    /// pages shorter than asked, as S3 may.
    fn answer(shard: &Shard, query: &[(String, String)], rng: &mut Rng, short: bool) -> Vec<u8> {
        assert_eq!(param(query, "list-type"), Some("2"));
        assert_eq!(param(query, "encoding-type"), None, "backends may echo it without encoding");
        assert_ne!(param(query, "delimiter"), Some(""), "never send an empty delimiter");
        let prefix = param(query, "prefix").unwrap_or("");
        let delimiter = param(query, "delimiter");
        let max: usize = param(query, "max-keys").unwrap().parse().unwrap();
        assert!((1..=1000).contains(&max), "max-keys {max}");
        let (after, group) = match param(query, "continuation-token") {
            Some(t) => {
                let (kind, name) = t.split_at(1);
                (Some(name), (kind == "P").then_some(name))
            }
            None => (param(query, "start-after"), None),
        };
        let items = s3_items(&shard.keys, prefix, delimiter, after, group, false);
        let take = if short { 1 + rng.below(max) } else { max }.min(items.len());
        let truncated = items.len() > take;
        let page = &items[..take];
        let out = ListOutput {
            v2: true,
            name: "backend".into(),
            prefix: prefix.into(),
            delimiter: delimiter.map(str::to_string),
            max_keys: max as u32,
            encoding_url: rng.below(2) == 0,
            is_truncated: truncated,
            next_continuation_token: page
                .last()
                .filter(|_| truncated)
                .map(|(n, p)| format!("{}{n}", if *p { "P" } else { "K" })),
            contents: page.iter().filter(|i| !i.1).map(|i| shard.entries[&i.0].clone()).collect(),
            common_prefixes: page.iter().filter(|i| i.1).map(|i| i.0.clone()).collect(),
            ..ListOutput::default()
        };
        xml::list_objects_v2(&out).into_bytes()
    }

    /// Drive one merge to completion against the shards.
    fn run(shards: &[Shard], req: ListRequest, rng: &mut Rng, short: bool) -> Result<ListOutput, S3Error> {
        let mut m = Merger::new(req, shards.len(), KEY)?;
        for _ in 0..10_000 {
            let reqs = m.next_requests();
            if reqs.is_empty() {
                return Ok(m.finish("vb"));
            }
            for (i, query) in reqs {
                let body = answer(&shards[i], &query, rng, short);
                m.feed(i, xml::parse_list_objects(&body).unwrap()).unwrap();
            }
        }
        panic!("merge did not finish");
    }

    fn items_of(out: &ListOutput) -> Vec<(String, bool)> {
        let mut items: Vec<(String, bool)> = out.contents.iter().map(|o| (o.key.clone(), false)).collect();
        items.extend(out.common_prefixes.iter().map(|p| (p.clone(), true)));
        items.sort();
        items
    }

    fn key_set(rng: &mut Rng) -> Vec<String> {
        let pieces =
            ["a", "b", "/", "-", "+", " ", "é", "日本", "z", "ab", "--", "%", "&<", "\u{10FFFF}", "~", "a/"];
        let mut keys: Vec<String> = ["a", "a/", "a/b", "a-b", "a+b", "a b", "a//c", "b/", "日本/x", "z"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        while keys.len() < 300 {
            let n = 1 + rng.below(5);
            keys.push((0..n).map(|_| pieces[rng.below(pieces.len())]).collect());
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// Split keys over 5 shards by a byte-sum rule; some keys also live in a second shard
    /// (mid-reshard copies, newer in the higher-numbered shard).
    fn shards_for(keys: &[String]) -> (Vec<Shard>, BTreeMap<String, ObjectEntry>) {
        let mut shards: Vec<Shard> =
            (0..5).map(|_| Shard { keys: vec![], entries: BTreeMap::new() }).collect();
        let mut union = BTreeMap::new();
        for (n, k) in keys.iter().enumerate() {
            let home = k.bytes().map(usize::from).sum::<usize>() % 5;
            let mut homes = vec![home];
            if n % 13 == 0 {
                homes.push((home + 1 + n % 4) % 5);
            }
            for h in homes {
                let e = entry(k, h);
                shards[h].keys.push(k.clone());
                shards[h].entries.insert(k.clone(), e.clone());
                let newest = union.get(k).is_none_or(|old: &ObjectEntry| e.last_modified > old.last_modified);
                if newest {
                    union.insert(k.clone(), e);
                }
            }
        }
        (shards, union)
    }

    /// Walk all pages of one listing and compare each page with the oracle over the union.
    #[allow(clippy::too_many_arguments)]
    fn walk(
        shards: &[Shard],
        union_keys: &[String],
        union: &BTreeMap<String, ObjectEntry>,
        base: &ListRequest,
        start: Option<&str>,
        rng: &mut Rng,
        short: bool,
    ) {
        let all = s3_items(union_keys, &base.prefix, base.delimiter.as_deref(), start, None, true);
        let mut position = start.map(str::to_string);
        let mut token: Option<String> = None;
        let mut seen = 0;
        let max = base.max_keys as usize;
        for page_no in 0.. {
            let mut r = base.clone();
            if r.v2 {
                r.start_after = start.map(str::to_string);
                r.continuation_token = token.clone();
            } else {
                r.marker = position.clone();
            }
            let out = run(shards, r, rng, short).unwrap();
            let expected: Vec<(String, bool)> = all[seen..].iter().take(max).cloned().collect();
            let mut sorted_expected = expected.clone();
            sorted_expected.sort();
            let ctx = format!("{base:?} start={start:?} page={page_no}");
            assert_eq!(items_of(&out), sorted_expected, "{ctx}");
            for o in &out.contents {
                assert_eq!(
                    Some(o),
                    union
                        .get(&o.key)
                        .map(|e| {
                            let mut e = e.clone();
                            if base.v2 && !base.fetch_owner {
                                e.owner = None;
                            }
                            e
                        })
                        .as_ref(),
                    "{ctx}"
                );
            }
            seen += expected.len();
            let more = seen < all.len() && max > 0;
            assert_eq!(out.is_truncated, more, "{ctx}");
            assert_eq!(out.max_keys, base.max_keys);
            if !more {
                assert_eq!(out.next_continuation_token, None);
                assert_eq!(out.next_marker, None);
                assert_eq!(seen, if max == 0 { 0 } else { all.len() }, "{ctx}");
                return;
            }
            let last = expected.last().unwrap().0.clone();
            if base.v2 {
                assert_eq!(out.next_marker, None);
                token = Some(out.next_continuation_token.clone().unwrap());
            } else {
                assert_eq!(out.next_continuation_token, None);
                if base.delimiter.is_some() {
                    assert_eq!(out.next_marker.as_deref(), Some(last.as_str()), "{ctx}");
                } else {
                    assert_eq!(out.next_marker, None, "{ctx}");
                }
                // The documented client rule: NextMarker, else the last key.
                position =
                    Some(out.next_marker.clone().unwrap_or_else(|| out.contents.last().unwrap().key.clone()));
            }
        }
    }

    #[test]
    fn model_merge_equals_one_bucket() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let keys = key_set(&mut rng);
        let (shards, union) = shards_for(&keys);
        let union_keys: Vec<String> = union.keys().cloned().collect();
        let mut walks = 0;
        for prefix in ["", "a", "a/", "日本", "nothing"] {
            for delimiter in [None, Some("/"), Some("-"), Some("a/"), Some("日本")] {
                for max_keys in [1, 2, 7, 1000] {
                    for start in [None, Some("a/"), Some("a/b"), Some("b")] {
                        for v2 in [true, false] {
                            // Page size 1 walks every item; keep those to fewer combinations.
                            if max_keys == 1 && (start.is_some() || prefix == "nothing") {
                                continue;
                            }
                            let mut r = req(v2, prefix, delimiter, max_keys);
                            r.fetch_owner = walks % 3 == 0;
                            r.encoding_url = walks % 2 == 0;
                            walk(&shards, &union_keys, &union, &r, start, &mut rng, walks % 4 == 1);
                            walks += 1;
                        }
                    }
                }
            }
        }
        assert!(walks > 500);
    }

    #[test]
    fn max_keys_zero_is_empty_and_not_truncated() {
        let mut rng = Rng(7);
        let (shards, _) = shards_for(&key_set(&mut rng));
        for v2 in [true, false] {
            let mut m = Merger::new(req(v2, "", Some("/"), 0), 5, KEY).unwrap();
            assert!(m.next_requests().is_empty());
            let out = m.finish("vb");
            assert_eq!(out.key_count(), 0);
            assert!(!out.is_truncated);
            assert_eq!((out.next_continuation_token, out.next_marker), (None, None));
            assert_eq!(run(&shards, req(v2, "", None, 0), &mut rng, false).unwrap().key_count(), 0);
        }
    }

    #[test]
    fn first_requests_ask_every_backend_for_what_is_needed() {
        let mut r = req(true, "p/", Some("/"), 10);
        r.start_after = Some("p/a/x".into());
        let mut m = Merger::new(r, 3, KEY).unwrap();
        let reqs = m.next_requests();
        assert_eq!(reqs.iter().map(|r| r.0).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(
            reqs[0].1,
            q(&[
                ("list-type", "2"),
                ("prefix", "p/"),
                ("delimiter", "/"),
                ("max-keys", "11"),
                ("start-after", "p/a/\u{10FFFF}"),
            ])
        );
        // No delimiter, no prefix, V1: owner asked for, nothing empty sent.
        let mut m = Merger::new(req(false, "", None, 1000), 1, KEY).unwrap();
        let reqs = m.next_requests();
        assert_eq!(
            reqs[0].1,
            q(&[("list-type", "2"), ("max-keys", "1000"), ("fetch-owner", "true")])
        );
    }

    fn page(keys: &[&str], prefixes: &[&str], token: Option<&str>, backend: usize) -> BackendPage {
        BackendPage {
            objects: keys.iter().map(|k| entry(k, backend)).collect(),
            common_prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
            is_truncated: token.is_some(),
            next_continuation_token: token.map(str::to_string),
            ..BackendPage::default()
        }
    }

    #[test]
    fn duplicate_key_in_two_backends_is_listed_once_newest_first() {
        let mut m = Merger::new(req(true, "", None, 1000), 2, KEY).unwrap();
        assert_eq!(m.next_requests().len(), 2);
        m.feed(0, page(&["a", "dup", "z"], &[], None, 0)).unwrap();
        m.feed(1, page(&["b", "dup"], &[], None, 1)).unwrap();
        assert!(m.next_requests().is_empty());
        let out = m.finish("vb");
        let keys: Vec<&str> = out.contents.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, vec!["a", "b", "dup", "z"]);
        assert_eq!(out.contents[2].etag, "\"1\"", "the newer copy wins");
        assert!(!out.is_truncated);
    }

    #[test]
    fn waits_for_a_truncated_backend_before_emitting_past_it() {
        let mut m = Merger::new(req(true, "", None, 3), 2, KEY).unwrap();
        m.next_requests();
        m.feed(0, page(&["a", "b", "c", "d"], &[], None, 0)).unwrap();
        m.feed(1, page(&["a0"], &[], Some("t1"), 1)).unwrap();
        let reqs = m.next_requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].0, 1);
        assert_eq!(param(&reqs[0].1, "continuation-token"), Some("t1"));
        // "a" and "a0" are out; one more is needed, plus one to learn whether the page is truncated.
        assert_eq!(param(&reqs[0].1, "max-keys"), Some("2"));
        m.feed(1, page(&["a1"], &[], None, 1)).unwrap();
        assert!(m.next_requests().is_empty());
        let out = m.finish("vb");
        let keys: Vec<&str> = out.contents.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, vec!["a", "a0", "a1"]);
        assert!(out.is_truncated);
        assert!(out.next_continuation_token.is_some());
    }

    #[test]
    fn tokens_are_verified() {
        let mut m = Merger::new(req(true, "p", Some("/"), 1), 1, KEY).unwrap();
        m.next_requests();
        m.feed(0, page(&["p1", "p2"], &[], None, 0)).unwrap();
        assert!(m.next_requests().is_empty());
        let token = m.finish("vb").next_continuation_token.unwrap();
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));

        let with = |prefix: &str, delimiter: Option<&str>, token: &str, key: &[u8]| {
            let mut r = req(true, prefix, delimiter, 1);
            r.continuation_token = Some(token.to_string());
            Merger::new(r, 1, key)
        };
        let mut ok = with("p", Some("/"), &token, KEY).unwrap();
        assert_eq!(param(&ok.next_requests()[0].1, "start-after"), Some("p1"));
        // V1 ignores continuation tokens; V2 ignores start-after when a token is given.
        let mut v1 = req(false, "p", None, 1);
        v1.continuation_token = Some("garbage".into());
        assert!(Merger::new(v1, 1, KEY).is_ok());

        let mut tampered = token.clone().into_bytes();
        let i = tampered.len() / 2;
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        let cases = [
            with("p", Some("/"), &tampered, KEY),
            with("q", Some("/"), &token, KEY),
            with("p", None, &token, KEY),
            with("p", Some("-"), &token, KEY),
            with("p", Some("/"), &token, b"other key"),
            with("p", Some("/"), "garbage!", KEY),
            with("p", Some("/"), "QUJD", KEY),
            with("p", Some("/"), &token[..token.len() - 1], KEY),
        ];
        for case in cases {
            let err = case.unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidArgument);
            assert_eq!(err.message, BAD_TOKEN);
        }
    }

    #[test]
    fn resuming_after_a_common_prefix_skips_its_keys() {
        let mut m = Merger::new(req(true, "", Some("/"), 1), 2, KEY).unwrap();
        m.next_requests();
        m.feed(0, page(&[], &["a/"], Some("t"), 0)).unwrap();
        m.feed(1, page(&["b"], &[], None, 1)).unwrap();
        assert!(m.next_requests().is_empty());
        let out = m.finish("vb");
        assert_eq!(out.common_prefixes, vec!["a/".to_string()]);
        let mut r = req(true, "", Some("/"), 1);
        r.continuation_token = out.next_continuation_token;
        let mut m = Merger::new(r, 2, KEY).unwrap();
        let reqs = m.next_requests();
        assert_eq!(param(&reqs[0].1, "start-after"), Some("a/\u{10FFFF}"));
        // A backend that still returns the prefix (or keys under it) has them dropped.
        m.feed(0, page(&["a/x"], &["a/"], None, 0)).unwrap();
        m.feed(1, page(&["b"], &[], None, 1)).unwrap();
        assert!(m.next_requests().is_empty());
        let out = m.finish("vb");
        assert_eq!(out.common_prefixes, Vec::<String>::new());
        assert_eq!(out.contents.len(), 1);
        assert!(!out.is_truncated);
    }

    #[test]
    fn broken_backend_answers_are_errors_not_loops() {
        let mut m = Merger::new(req(true, "", None, 5), 2, KEY).unwrap();
        m.next_requests();
        let truncated_without_token = BackendPage { is_truncated: true, ..BackendPage::default() };
        assert_eq!(m.feed(0, truncated_without_token).unwrap_err().code, ErrorCode::InternalError);
        assert!(m.feed(7, BackendPage::default()).is_err());
        let mut m = Merger::new(req(true, "", None, 5), 1, KEY).unwrap();
        let mut result = Ok(());
        for _ in 0..=MAX_REQUESTS_PER_BACKEND {
            if m.next_requests().is_empty() {
                break;
            }
            result = m.feed(0, page(&[], &[], Some("same"), 0));
        }
        assert_eq!(result.unwrap_err().code, ErrorCode::InternalError);
        assert!(Merger::new(req(true, "", None, 5), 0, KEY).is_err());
    }

    #[test]
    fn common_prefixes_that_do_not_end_at_the_delimiter_fail_the_listing() {
        // s3s-fs cuts a multi-character delimiter to its first byte: "a--b" comes back as "a-".
        for (prefix, delimiter, bad) in [("", "--", "a-"), ("", "/p", "x/"), ("q", "/", "a/"), ("", "/", "a/b/")] {
            let mut m = Merger::new(req(true, prefix, Some(delimiter), 10), 2, KEY).unwrap();
            m.next_requests();
            let err = m.feed(0, page(&[], &[bad], None, 0)).unwrap_err();
            assert_eq!(err.code, ErrorCode::InternalError, "{bad}");
        }
        let mut m = Merger::new(req(true, "q", Some("--"), 10), 1, KEY).unwrap();
        m.next_requests();
        m.feed(0, page(&["q-x"], &["q--", "qa--"], None, 0)).unwrap();
        assert!(m.next_requests().is_empty());
        assert_eq!(m.finish("vb").common_prefixes, vec!["q--".to_string(), "qa--".to_string()]);
    }

    #[test]
    fn truncated_backend_without_token_resumes_after_its_last_item() {
        let mut m = Merger::new(req(true, "", Some("/"), 3), 1, KEY).unwrap();
        m.next_requests();
        let mut p = page(&["a"], &["b/"], None, 0);
        p.is_truncated = true;
        m.feed(0, p).unwrap();
        let reqs = m.next_requests();
        assert_eq!(param(&reqs[0].1, "start-after"), Some("b/\u{10FFFF}"));
        assert_eq!(param(&reqs[0].1, "continuation-token"), None);
    }

    #[test]
    fn query_parsing() {
        let r = ListRequest::from_query(&[]).unwrap();
        assert_eq!(r, req(false, "", None, 1000));
        let r = ListRequest::from_query(&q(&[
            ("list-type", "2"),
            ("prefix", "a b"),
            ("delimiter", ""),
            ("max-keys", "5000"),
            ("start-after", "x"),
            ("continuation-token", "t"),
            ("encoding-type", "url"),
            ("fetch-owner", "true"),
        ]))
        .unwrap();
        assert!(r.v2 && r.encoding_url && r.fetch_owner);
        assert_eq!((r.prefix.as_str(), r.delimiter.as_deref(), r.max_keys), ("a b", None, 1000));
        assert_eq!((r.start_after.as_deref(), r.continuation_token.as_deref()), (Some("x"), Some("t")));
        let r =
            ListRequest::from_query(&q(&[("marker", "m"), ("max-keys", "0"), ("delimiter", "/")])).unwrap();
        assert_eq!((r.marker.as_deref(), r.max_keys, r.delimiter.as_deref()), (Some("m"), 0, Some("/")));
        for bad in [
            q(&[("max-keys", "-1")]),
            q(&[("max-keys", "ten")]),
            q(&[("max-keys", "")]),
            q(&[("max-keys", "99999999999")]),
            q(&[("encoding-type", "base64")]),
            q(&[("list-type", "3")]),
        ] {
            assert_eq!(
                ListRequest::from_query(&bad).unwrap_err().code,
                ErrorCode::InvalidArgument,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn output_echoes_and_renders() {
        let mut r = req(false, "a", Some("/"), 1);
        r.marker = Some("a0".into());
        r.encoding_url = true;
        let mut m = Merger::new(r, 1, KEY).unwrap();
        assert_eq!(param(&m.next_requests()[0].1, "start-after"), Some("a0"));
        m.feed(0, page(&["a1", "a2"], &[], None, 0)).unwrap();
        m.next_requests();
        let out = m.finish("vb");
        assert_eq!((out.marker.as_deref(), out.next_marker.as_deref()), (Some("a0"), Some("a1")));
        let x = out.to_xml();
        assert!(x.contains("<Marker>a0</Marker>") && x.contains("<NextMarker>a1</NextMarker>"));
        assert!(!x.contains("KeyCount"));
    }
}
