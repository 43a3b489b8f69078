//! ListMultipartUploads over all shards: every shard's uploads merged into one S3 listing.
//!
//! Uploads sort by key, then by upload id (S3 defines `upload-id-marker` as "upload IDs
//! lexicographically greater"), so a page boundary inside one key's uploads resumes the same way
//! whichever shard holds them. Backends are asked with their own markers, and one that ignores
//! markers, order or delimiter (moto answers everything at once, unsorted) still merges right:
//! the merge filters, rolls up and sorts itself and only trusts a backend's order to know when
//! it may stop asking it.

use std::cmp::Ordering;

use crate::error::S3Error;
use crate::query::{UploadsRequest, MAX_UPLOADS};
use crate::types::{UploadEntry, UploadsOutput, UploadsPage};

/// Pages one backend may return for one client page before the merge gives up on it.
const MAX_REQUESTS_PER_BACKEND: u32 = 100;
/// Sorts after every key that shares the prefix it is appended to (largest Unicode scalar).
const AFTER_ALL: char = '\u{10FFFF}';

/// One listing entry: an upload, or a common prefix standing for all uploads under it.
#[derive(Debug, Clone)]
enum Item {
    Upload(UploadEntry),
    Prefix(String),
}

impl Item {
    fn name(&self) -> &str {
        match self {
            Item::Upload(u) => &u.key,
            Item::Prefix(p) => p,
        }
    }

    /// The listing order: name, then upload id (a common prefix has none).
    fn order(&self) -> (&str, &str) {
        match self {
            Item::Upload(u) => (&u.key, &u.upload_id),
            Item::Prefix(p) => (p, ""),
        }
    }
}

/// Where a backend's next page starts.
#[derive(Debug)]
enum Next {
    Start,
    /// The backend's own NextKeyMarker and NextUploadIdMarker.
    Markers(String, Option<String>),
    Done,
}

#[derive(Debug)]
struct Backend {
    /// Its items after the listing position, in arrival order.
    items: Vec<Item>,
    next: Next,
    /// The largest key or common prefix it returned: its later pages start at or after it.
    bound: Option<String>,
    requests: u32,
}

/// Merges N backends' ListMultipartUploads into one page with the semantics of a single bucket.
///
/// Driven like [`crate::listing::Merger`]: `loop { let reqs = m.next_requests(); if
/// reqs.is_empty() { break } send them all, feed() each answer }`, then `finish()`. A backend
/// failure fails the whole listing (the adapter's job).
#[derive(Debug)]
pub struct UploadsMerger {
    req: UploadsRequest,
    backends: Vec<Backend>,
}

impl UploadsMerger {
    pub fn new(mut req: UploadsRequest, backends: usize) -> Result<UploadsMerger, S3Error> {
        if backends == 0 {
            return Err(S3Error::internal("no backend buckets are configured"));
        }
        req.max_uploads = req.max_uploads.min(MAX_UPLOADS);
        req.delimiter = req.delimiter.filter(|d| !d.is_empty());
        req.key_marker = req.key_marker.filter(|k| !k.is_empty());
        req.upload_id_marker = req.upload_id_marker.filter(|u| !u.is_empty() && req.key_marker.is_some());
        let backend = || Backend { items: Vec::new(), next: Next::Start, bound: None, requests: 0 };
        Ok(UploadsMerger { req, backends: (0..backends).map(|_| backend()).collect() })
    }

    /// The backends to ask next, with their ListMultipartUploads query parameters (decoded).
    /// Empty when the page is known.
    pub fn next_requests(&self) -> Vec<(usize, Vec<(String, String)>)> {
        self.wanted().into_iter().map(|i| (i, self.query(i))).collect()
    }

    /// Take one backend's answer to the request `next_requests` made of it.
    pub fn feed(&mut self, backend: usize, page: UploadsPage) -> Result<(), S3Error> {
        let Some(b) = self.backends.get(backend) else {
            return Err(S3Error::internal(format!("uploads listing answer from unknown backend {backend}")));
        };
        if b.requests >= MAX_REQUESTS_PER_BACKEND {
            return Err(S3Error::internal(format!(
                "backend {backend} kept answering ListMultipartUploads with truncated pages"
            )));
        }
        let mut bound = b.bound.clone();
        let mut items = Vec::new();
        for u in page.uploads {
            if bound.as_deref().is_none_or(|b| u.key.as_str() > b) {
                bound = Some(u.key.clone());
            }
            if !u.key.starts_with(self.req.prefix.as_str()) {
                continue;
            }
            let item = match self.group_of(&u.key) {
                Some(g) => Item::Prefix(g.to_string()),
                None => Item::Upload(u),
            };
            if self.after_position(&item) {
                items.push(item);
            }
        }
        if self.req.delimiter.is_some() {
            for p in page.common_prefixes {
                if self.group_of(&p) != Some(p.as_str()) {
                    return Err(S3Error::internal(format!(
                        "backend {backend} returned the common prefix {p:?}, which does not end at the first delimiter"
                    )));
                }
                if bound.as_deref().is_none_or(|b| p.as_str() > b) {
                    bound = Some(p.clone());
                }
                let item = Item::Prefix(p);
                if self.after_position(&item) {
                    items.push(item);
                }
            }
        }
        let next = if !page.is_truncated {
            Next::Done
        } else if let Some(k) = page.next_key_marker.filter(|k| !k.is_empty()) {
            Next::Markers(k, page.next_upload_id_marker.filter(|u| !u.is_empty()))
        } else {
            return Err(S3Error::internal(format!(
                "backend {backend} reported a truncated uploads listing without a NextKeyMarker"
            )));
        };
        let b = &mut self.backends[backend];
        b.items.extend(items);
        b.bound = bound;
        b.next = next;
        b.requests += 1;
        Ok(())
    }

    /// The merged page.
    pub fn finish(self, bucket: &str) -> UploadsOutput {
        let max = self.req.max_uploads as usize;
        let candidates = self.candidates();
        let is_truncated = max > 0 && candidates.len() > max;
        let page: Vec<Item> = candidates.into_iter().take(max).cloned().collect();
        let (next_key_marker, next_upload_id_marker) = match page.last() {
            Some(Item::Upload(u)) if is_truncated => (Some(u.key.clone()), Some(u.upload_id.clone())),
            Some(Item::Prefix(p)) if is_truncated => (Some(p.clone()), None),
            _ => (None, None),
        };
        let mut uploads = Vec::new();
        let mut common_prefixes = Vec::new();
        for item in page {
            match item {
                Item::Upload(u) => uploads.push(u),
                Item::Prefix(p) => common_prefixes.push(p),
            }
        }
        let req = self.req;
        UploadsOutput {
            bucket: bucket.to_string(),
            prefix: req.prefix,
            delimiter: req.delimiter,
            max_uploads: req.max_uploads,
            encoding_url: req.encoding_url,
            key_marker: req.key_marker,
            upload_id_marker: req.upload_id_marker,
            is_truncated,
            next_key_marker,
            next_upload_id_marker,
            uploads,
            common_prefixes,
        }
    }

    /// Every backend's items after the position, in listing order, each once.
    fn candidates(&self) -> Vec<&Item> {
        let mut all: Vec<&Item> = self.backends.iter().flat_map(|b| b.items.iter()).collect();
        all.sort_by(|a, b| a.order().cmp(&b.order()));
        all.dedup_by(|a, b| a.order() == b.order());
        all
    }

    /// Backends that may still hold an item of the page, or the one that tells whether it is
    /// truncated (the `max + 1`-th).
    fn wanted(&self) -> Vec<usize> {
        if self.req.max_uploads == 0 {
            return Vec::new();
        }
        let candidates = self.candidates();
        let deciding = candidates.get(self.req.max_uploads as usize);
        let mut out = Vec::new();
        for (i, b) in self.backends.iter().enumerate() {
            let ask = match (&b.next, deciding) {
                (Next::Done, _) => false,
                (_, None) => true,
                (_, Some(item)) => !self.settled(b, item),
            };
            if ask {
                out.push(i);
            }
        }
        out
    }

    /// Whether backend `b`, listing in S3's key order, can hold nothing more that sorts before
    /// `item`: its later pages only hold keys at or after its bound.
    fn settled(&self, b: &Backend, item: &Item) -> bool {
        let Some(bound) = b.bound.as_deref() else { return false };
        let (bound_name, bound_is_prefix) = match self.group_of(bound) {
            Some(g) => (g, true),
            None => (bound, false),
        };
        match item.name().cmp(bound_name) {
            Ordering::Less => true,
            // More keys under the same common prefix add nothing; more uploads of the same key might.
            Ordering::Equal => bound_is_prefix && matches!(item, Item::Prefix(_)),
            Ordering::Greater => false,
        }
    }

    fn query(&self, i: usize) -> Vec<(String, String)> {
        let mut q: Vec<(String, String)> = vec![("uploads".into(), String::new())];
        if !self.req.prefix.is_empty() {
            q.push(("prefix".into(), self.req.prefix.clone()));
        }
        if let Some(d) = &self.req.delimiter {
            q.push(("delimiter".into(), d.clone()));
        }
        q.push(("max-uploads".into(), MAX_UPLOADS.to_string()));
        match &self.backends[i].next {
            Next::Start => {
                if let Some(k) = self.start_marker() {
                    q.push(("key-marker".into(), k));
                }
            }
            Next::Markers(k, u) => {
                q.push(("key-marker".into(), k.clone()));
                if let Some(u) = u {
                    q.push(("upload-id-marker".into(), u.clone()));
                }
            }
            Next::Done => {}
        }
        q
    }

    /// The key-marker that starts a backend at the listing position. With an upload-id-marker
    /// the marker's own key is still wanted, so it starts just before that key (a backend's
    /// order inside one key is its own; the merge filters).
    fn start_marker(&self) -> Option<String> {
        let k = self.req.key_marker.as_deref()?;
        if self.req.upload_id_marker.is_some() {
            let mut before = k.to_string();
            before.pop();
            return Some(before).filter(|b| !b.is_empty());
        }
        Some(match self.group_of(k) {
            Some(g) => format!("{g}{AFTER_ALL}").max(k.to_string()),
            None => k.to_string(),
        })
    }

    /// Whether `item` sorts after the client's key-marker / upload-id-marker.
    fn after_position(&self, item: &Item) -> bool {
        let Some(k) = self.req.key_marker.as_deref() else { return true };
        match item.name().cmp(k) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => match (item, self.req.upload_id_marker.as_deref()) {
                (Item::Upload(u), Some(m)) => u.upload_id.as_str() > m,
                _ => false,
            },
        }
    }

    /// The common prefix `name` rolls up into, if a delimiter is set and occurs after the prefix.
    fn group_of<'a>(&self, name: &'a str) -> Option<&'a str> {
        let d = self.req.delimiter.as_deref()?;
        let rest = name.strip_prefix(self.req.prefix.as_str())?;
        let at = rest.find(d)?;
        name.get(..self.req.prefix.len() + at + d.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;
    use crate::error::ErrorCode;
    use crate::xml;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
        query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn upload(key: &str, id: &str) -> UploadEntry {
        UploadEntry {
            key: key.into(),
            upload_id: id.into(),
            initiator: Some(crate::types::Owner { id: "i".into(), display_name: "d".into() }),
            owner: None,
            storage_class: "STANDARD".into(),
            initiated: "2024-01-01T00:00:00.000Z".into(),
            checksum_algorithm: None,
        }
    }

    fn req(prefix: &str, delimiter: Option<&str>, max: u32) -> UploadsRequest {
        UploadsRequest {
            prefix: prefix.into(),
            delimiter: delimiter.map(str::to_string),
            max_uploads: max,
            key_marker: None,
            upload_id_marker: None,
            encoding_url: false,
        }
    }


    /// The item (name, upload id) an upload lists as under `prefix`/`delimiter`.
    fn item_of(u: &UploadEntry, prefix: &str, delimiter: Option<&str>) -> (String, String) {
        if let Some(d) = delimiter {
            if let Some(at) = u.key[prefix.len()..].find(d) {
                return (u.key[..prefix.len() + at + d.len()].to_string(), String::new());
            }
        }
        (u.key.clone(), u.upload_id.clone())
    }

    /// Test oracle: one bucket's listing, every item after the markers, in order.
    fn model(all: &[UploadEntry], r: &UploadsRequest) -> Vec<(String, String)> {
        let mut items: Vec<(String, String)> = all
            .iter()
            .filter(|u| u.key.starts_with(&r.prefix))
            .map(|u| item_of(u, &r.prefix, r.delimiter.as_deref()))
            .filter(|(n, id)| match r.key_marker.as_deref() {
                None => true,
                Some(k) => {
                    n.as_str() > k
                        || (n == k && !id.is_empty() && r.upload_id_marker.as_deref().is_some_and(|m| id.as_str() > m))
                }
            })
            .collect();
        items.sort();
        items.dedup();
        items
    }

    /// A backend. `sorted`: S3-like (key order, inside a key newest id first, markers, delimiter,
    /// pages of at most `page` entries); otherwise moto-like (everything, in creation order,
    /// only the prefix applied).
    fn answer(shard: &[UploadEntry], query: &[(String, String)], sorted: bool, page: usize) -> Vec<u8> {
        assert_eq!(param(query, "uploads"), Some(""));
        assert_ne!(param(query, "delimiter"), Some(""));
        let prefix = param(query, "prefix").unwrap_or("");
        let mut ups: Vec<&UploadEntry> = shard.iter().filter(|u| u.key.starts_with(prefix)).collect();
        let mut out = UploadsOutput { bucket: "b".into(), max_uploads: 1000, ..UploadsOutput::default() };
        if sorted {
            let delimiter = param(query, "delimiter");
            // Own order: key ascending, upload id descending (as if by initiation time).
            ups.sort_by(|a, b| a.key.cmp(&b.key).then(b.upload_id.cmp(&a.upload_id)));
            let km = param(query, "key-marker");
            let um = param(query, "upload-id-marker");
            let mut entries: Vec<(String, Option<&UploadEntry>)> = Vec::new();
            for u in ups {
                let after = match km {
                    None => true,
                    Some(k) => u.key.as_str() > k || (u.key == k && um.is_some_and(|m| u.upload_id.as_str() < m)),
                };
                if !after {
                    continue;
                }
                let (name, id) = item_of(u, prefix, delimiter);
                if id.is_empty() {
                    if km.is_some_and(|k| name.as_str() <= k) || entries.last().is_some_and(|e| e.0 == name) {
                        continue;
                    }
                    entries.push((name, None));
                } else {
                    entries.push((name, Some(u)));
                }
            }
            out.is_truncated = entries.len() > page;
            entries.truncate(page);
            if out.is_truncated {
                let last = entries.last().unwrap();
                out.next_key_marker = Some(last.0.clone());
                out.next_upload_id_marker = last.1.map(|u| u.upload_id.clone());
            }
            for (name, u) in entries {
                match u {
                    Some(u) => out.uploads.push(u.clone()),
                    None => out.common_prefixes.push(name),
                }
            }
        } else {
            out.uploads = ups.into_iter().cloned().collect();
        }
        out.encoding_url = page.is_multiple_of(2);
        xml::list_multipart_uploads(&out).into_bytes()
    }

    fn run(shards: &[Vec<UploadEntry>], r: UploadsRequest, sorted: bool, page: usize) -> UploadsOutput {
        let mut m = UploadsMerger::new(r, shards.len()).unwrap();
        for _ in 0..10_000 {
            let reqs = m.next_requests();
            if reqs.is_empty() {
                return m.finish("vb");
            }
            for (i, query) in reqs {
                let body = answer(&shards[i], &query, sorted, page);
                m.feed(i, xml::parse_list_multipart_uploads(&body).unwrap()).unwrap();
            }
        }
        panic!("merge did not finish");
    }

    #[test]
    fn model_merge_equals_one_bucket() {
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        let pieces = ["a", "b", "/", "-", "é", "z", "ab"];
        let mut all = Vec::new();
        for n in 0..80 {
            let len = 1 + rng.below(4);
            let key: String = (0..len).map(|_| pieces[rng.below(pieces.len())]).collect();
            // Some keys get several uploads, spread over shards.
            for _ in 0..1 + rng.below(3) {
                all.push(upload(&key, &format!("{:08x}-{n}", rng.next() as u32)));
            }
        }
        let mut shards: Vec<Vec<UploadEntry>> = vec![Vec::new(); 4];
        for u in &all {
            shards[rng.below(4)].push(u.clone());
        }
        let mut walks = 0;
        for prefix in ["", "a", "a/", "nothing"] {
            for delimiter in [None, Some("/"), Some("-"), Some("ab")] {
                for max in [1, 3, 1000] {
                    for sorted in [true, false] {
                        for start in [None, Some(("a/", None)), Some(("ab", Some("8")))] {
                            // A page of one walks every upload: keep those few.
                            if max == 1 && (start.is_some() || prefix.is_empty()) {
                                continue;
                            }
                            let mut base = req(prefix, delimiter, max);
                            if let Some((k, u)) = start {
                                base.key_marker = Some(k.to_string());
                                base.upload_id_marker = u.map(str::to_string);
                            }
                            let expected = model(&all, &base);
                            let mut got = Vec::new();
                            let mut r = base.clone();
                            // Bounded: a merge that never ends its walk fails below instead of hanging.
                            for page_no in 0..=expected.len() + 1 {
                                let out = run(&shards, r.clone(), sorted, 1 + walks % 5);
                                let ctx = format!("{base:?} sorted={sorted} page={page_no}");
                                assert!(out.uploads.len() + out.common_prefixes.len() <= max as usize, "{ctx}");
                                let mut items: Vec<(String, String)> =
                                    out.uploads.iter().map(|u| (u.key.clone(), u.upload_id.clone())).collect();
                                items.extend(out.common_prefixes.iter().map(|p| (p.clone(), String::new())));
                                items.sort();
                                got.extend(items);
                                if !out.is_truncated {
                                    break;
                                }
                                r.key_marker = out.next_key_marker.clone();
                                r.upload_id_marker = out.next_upload_id_marker.clone();
                                assert!(r.key_marker.is_some(), "{ctx}");
                            }
                            assert_eq!(got, expected, "{base:?} sorted={sorted}");
                            walks += 1;
                        }
                    }
                }
            }
        }
        assert!(walks > 100);
    }

    #[test]
    fn first_requests_and_markers() {
        let mut r = req("p/", Some("/"), 10);
        r.key_marker = Some("p/a/x".into());
        let m = UploadsMerger::new(r.clone(), 2).unwrap();
        let reqs = m.next_requests();
        assert_eq!(reqs.len(), 2);
        assert_eq!(
            reqs[0].1,
            q(&[("uploads", ""), ("prefix", "p/"), ("delimiter", "/"), ("max-uploads", "1000"), ("key-marker", "p/a/\u{10FFFF}")])
        );
        // With an upload-id-marker, backends start just before the key.
        r.upload_id_marker = Some("u1".into());
        let m = UploadsMerger::new(r, 1).unwrap();
        assert_eq!(param(&m.next_requests()[0].1, "key-marker"), Some("p/a/"));
        assert_eq!(param(&m.next_requests()[0].1, "upload-id-marker"), None);
        // max-uploads=0: nothing to ask, an empty page that is not truncated.
        let m = UploadsMerger::new(req("", None, 0), 3).unwrap();
        assert!(m.next_requests().is_empty());
        let out = m.finish("vb");
        assert!(!out.is_truncated && out.uploads.is_empty());
    }

    #[test]
    fn broken_backend_answers_are_errors() {
        let mut m = UploadsMerger::new(req("", Some("--"), 10), 2).unwrap();
        let bad = UploadsPage { common_prefixes: vec!["a-".into()], ..UploadsPage::default() };
        assert_eq!(m.feed(0, bad).unwrap_err().code, ErrorCode::InternalError);
        let no_marker = UploadsPage { is_truncated: true, ..UploadsPage::default() };
        assert_eq!(m.feed(1, no_marker).unwrap_err().code, ErrorCode::InternalError);
        assert!(m.feed(5, UploadsPage::default()).is_err());
        let mut m = UploadsMerger::new(req("", None, 10), 1).unwrap();
        let mut result = Ok(());
        for _ in 0..=MAX_REQUESTS_PER_BACKEND {
            if m.next_requests().is_empty() {
                break;
            }
            let same = UploadsPage { is_truncated: true, next_key_marker: Some("k".into()), ..UploadsPage::default() };
            result = m.feed(0, same);
        }
        assert_eq!(result.unwrap_err().code, ErrorCode::InternalError);
        assert!(UploadsMerger::new(req("", None, 1), 0).is_err());
    }

    #[test]
    fn output_renders_and_parses_back() {
        let out = UploadsOutput {
            bucket: "vb".into(),
            prefix: "a b/".into(),
            delimiter: Some("/".into()),
            max_uploads: 2,
            encoding_url: true,
            key_marker: Some("a b/0".into()),
            upload_id_marker: Some("u0".into()),
            is_truncated: true,
            next_key_marker: Some("a b/k+1".into()),
            next_upload_id_marker: Some("u1".into()),
            uploads: vec![upload("a b/k+1", "u1")],
            common_prefixes: vec!["a b/c d/".into()],
        };
        let x = xml::list_multipart_uploads(&out);
        assert!(x.contains("<KeyMarker>a%20b/0</KeyMarker>") && x.contains("<NextKeyMarker>a%20b/k%2B1</NextKeyMarker>"));
        assert!(x.contains("<Key>a%20b/k%2B1</Key>") && x.contains("<Prefix>a%20b/c%20d/</Prefix>"));
        let page = xml::parse_list_multipart_uploads(x.as_bytes()).unwrap();
        assert_eq!(page.uploads, out.uploads);
        assert_eq!(page.common_prefixes, out.common_prefixes);
        assert_eq!((page.next_key_marker.as_deref(), page.next_upload_id_marker.as_deref()), (Some("a b/k+1"), Some("u1")));
        assert!(page.is_truncated);
        // moto's answer.
        let body = br#"<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated><Upload><Key>k</Key><UploadId>abc</UploadId><Initiator><ID>arn</ID><DisplayName>user1</DisplayName></Initiator><Owner><ID>75aa</ID><DisplayName>webfile</DisplayName></Owner><StorageClass>STANDARD</StorageClass><Initiated>2010-11-10T20:48:33.000Z</Initiated></Upload></ListMultipartUploadsResult>"#;
        let page = xml::parse_list_multipart_uploads(body).unwrap();
        assert_eq!(page.uploads[0].owner.as_ref().unwrap().display_name, "webfile");
        assert_eq!(page.uploads[0].initiated, "2010-11-10T20:48:33.000Z");
        assert!(xml::parse_list_multipart_uploads(b"<ListBucketResult/>").is_err());
    }
}
