//! One S3 listing over all shards: a sans-IO k-way merge of the backends' ListObjectsV2 pages.

use std::collections::VecDeque;
use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::codec::{base64url_decode, base64url_encode};
use crate::error::S3Error;
use crate::query::{ListRequest, MAX_KEYS};
use crate::types::{BackendPage, ListOutput, ObjectEntry};

/// Requests one backend may take to fill one page before the merge gives up on it.
const MAX_REQUESTS_PER_BACKEND: u32 = 100;
/// Sorts after every key that shares the prefix it is appended to (largest Unicode scalar).
const AFTER_ALL: char = '\u{10FFFF}';
const TOKEN_VERSION: u8 = 1;
const FINGERPRINT_LEN: usize = 8;
const TAG_LEN: usize = 32;
const BAD_TOKEN: &str = "The continuation token provided is incorrect";

type HmacSha256 = Hmac<Sha256>;

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
mod tests;
