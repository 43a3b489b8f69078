//! One listing over all shards, through the real component: the merged ListObjects (V1),
//! ListObjectsV2 and ListMultipartUploads of the virtual bucket equal listing one plain bucket
//! holding the same keys; Tempo's own list calls; errors instead of partial listings.
//!
//! The oracle is a plain bucket (`oracle`) on the same s3s-fs server, written directly, plus an
//! in-test model of S3's listing rules (which also catches where s3s-fs itself strays from S3).
//!
//! s3s-fs stores objects as files, which rules out some keys and listings; these are left out of
//! the comparison rather than the proxy being weakened:
//! - a key ending in `/` is a directory to s3s-fs and is never listed, and a key `k` cannot exist
//!   next to keys under `k/` (file vs directory), nor can keys with empty, `.` or `..` segments;
//! - s3s-fs builds a common prefix from the first byte of the delimiter only, so a multi-character
//!   delimiter that occurs in a key yields a wrong common prefix (`a-` for `a--b` with `--`): the
//!   plain bucket is then wrong, and the proxy must refuse the backend's answer (an error, never a
//!   200 with made-up prefixes); a multi-byte UTF-8 delimiter crashes it, so none is sent;
//! - s3s-fs echoes `encoding-type=url` without encoding anything (so the proxy no longer asks
//!   backends for it);
//! - s3s-fs has no ListMultipartUploads: that test runs on moto, which ignores markers,
//!   delimiter and max-uploads and answers in creation order (the merge copes).

use crate::common;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CommonPrefix, EncodingType, Object};
use aws_sdk_s3::Client;
use common::{Harness, VIRTUAL_BUCKET};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;
use tempo_s3_shard_core::testing::Rng;
use tokio::sync::Semaphore;

const SHARDS: [&str; 5] = ["shard1", "shard2", "shard3", "shard4", "shard5"];
const ORACLE: &str = "oracle";
/// Pages walked at most per listing (both sides); small pages over big prefixes stop there.
const MAX_PAGES: usize = 10;
/// Listings walked at once.
const PARALLEL: usize = 6;

// ---------------------------------------------------------------------------------------------
// Key sets

const BLOCK_FILES: [&str; 4] = ["meta.json", "bloom-0", "data.parquet", "index"];

/// Keys of Tempo blocks: `tenant/<uuid>/{meta.json,bloom-0,data.parquet,index}` plus the tenant index.
fn tempo_keys(rng: &mut Rng, tenant: &str, blocks: usize) -> Vec<String> {
    let mut keys = vec![format!("{tenant}/index.json.gz")];
    for _ in 0..blocks {
        let block = rng.uuid();
        keys.extend(BLOCK_FILES.iter().map(|f| format!("{tenant}/{block}/{f}")));
    }
    keys
}

/// Keys that stress ordering, encoding and prefix rules: unicode, `+`, spaces, `%`, delimiters
/// inside names, prefixes of other keys, the largest code point, shared prefixes across shards.
const AWKWARD: &[&str] = &[
    "unicode/é€𝄞/ключ",
    "unicode/é€𝄞/ключ2",
    "unicode/e/plain",
    "unicode/f",
    "日本/語/x",
    "日本-語",
    "日本語",
    "é",
    "ü-x/y",
    "with space/and+plus/file name.txt",
    "with space/x",
    "with space-dash",
    "a b",
    "a+b",
    "a+b-c/d",
    "a%b",
    "a%2Fb",
    "a%20b/c",
    "100%",
    "percent%20literal/100%/x",
    "percent%20literal/plain",
    "a",
    "a-b",
    "a-b-c",
    "a--b",
    "a--b--c",
    "a-/x",
    "ab-c",
    "abc/d",
    "shared/p1/x",
    "shared/p1/y",
    "shared/p2/x",
    "shared/p3/x",
    "shared/p10/x",
    "shared/p1-x",
    "shared-p/y",
    "x\u{10FFFF}",
    "z/\u{10FFFF}/y",
    "tilde~/x~",
    "amp&/lt<gt>/q\"uote'",
    "eq=/semi;/comma,",
    "star*/paren(1)/bang!",
    "--/x",
    "-lead",
    "zz",
];

/// Random keys built from awkward pieces.
fn random_keys(rng: &mut Rng, n: usize) -> Vec<String> {
    let pieces = ["a", "b", "/", "-", "+", " ", "é", "日本", "z", "ab", "--", "%", "~", "%41", "&"];
    (0..n)
        .map(|_| {
            let len = 1 + rng.below(6);
            (0..len).map(|_| pieces[rng.below(pieces.len())]).collect::<String>()
        })
        .collect()
}

/// Whether s3s-fs (a file tree) can store and list `key` as an object.
fn storable(key: &str) -> bool {
    !key.is_empty()
        && !key.ends_with('/')
        && key.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

/// Drop keys s3s-fs cannot hold, and keys `k` that other keys live under (`k/...`).
fn filesystem_safe(keys: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    let all: BTreeSet<String> = keys.into_iter().filter(|k| storable(k)).collect();
    let dirs: BTreeSet<String> = all
        .iter()
        .flat_map(|k| k.match_indices('/').map(|(i, _)| k[..i].to_string()).collect::<Vec<_>>())
        .collect();
    all.into_iter().filter(|k| !dirs.contains(k)).collect()
}

fn body_of(key: &str) -> Vec<u8> {
    // Sizes differ by key so the listing's sizes are checked too.
    format!("{key}|{}", key.len() % 7).into_bytes()
}

/// Write every key through `client` into `bucket`, `PARALLEL * 3` at a time.
async fn put_all(client: &Client, bucket: &str, keys: &BTreeSet<String>) {
    let sem = Arc::new(Semaphore::new(PARALLEL * 3));
    let mut tasks = tokio::task::JoinSet::new();
    for key in keys {
        let (client, bucket, key) = (client.clone(), bucket.to_string(), key.clone());
        let permit = sem.clone().acquire_owned().await.unwrap();
        tasks.spawn(async move {
            client
                .put_object()
                .bucket(&bucket)
                .key(&key)
                .body(ByteStream::from(body_of(&key)))
                .send()
                .await
                .unwrap_or_else(|e| panic!("put {key:?} into {bucket}: {e:?}"));
            drop(permit);
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// The model of S3 listing rules

/// A listing item: `(name, is_common_prefix)`.
type Item = (String, bool);

/// Every item S3 lists for `prefix`/`delimiter` after `after`, in order. An item at or before
/// `after` is not listed, common prefixes included (a start-after inside a common prefix does not
/// list that prefix again): the semantics of s3s-fs and the proxy.
fn model(keys: &BTreeSet<String>, prefix: &str, delimiter: Option<&str>, after: Option<&str>) -> Vec<Item> {
    let mut out: Vec<Item> = Vec::new();
    for k in keys.range::<str, _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded)) {
        if !k.starts_with(prefix) {
            break;
        }
        let item = match delimiter.and_then(|d| k[prefix.len()..].find(d).map(|at| (d, at))) {
            Some((d, at)) => (k[..prefix.len() + at + d.len()].to_string(), true),
            None => (k.clone(), false),
        };
        if after.is_some_and(|a| item.0.as_str() <= a) || out.last() == Some(&item) {
            continue;
        }
        out.push(item);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Walking listings

#[derive(Debug, Clone, PartialEq, Eq)]
struct Page {
    /// `(key, size, etag)`.
    keys: Vec<(String, i64, String)>,
    prefixes: Vec<String>,
    truncated: bool,
}

impl Page {
    /// A page of a V1 or V2 listing answer.
    fn of(objects: &[Object], prefixes: &[CommonPrefix], truncated: Option<bool>) -> Page {
        Page {
            keys: objects
                .iter()
                .map(|o| (o.key().unwrap().to_string(), o.size().unwrap_or(-1), o.e_tag().unwrap_or("").to_string()))
                .collect(),
            prefixes: prefixes.iter().map(|p| p.prefix().unwrap().to_string()).collect(),
            truncated: truncated.unwrap_or(false),
        }
    }

    fn items(&self) -> Vec<Item> {
        let mut items: Vec<Item> = self.keys.iter().map(|k| (k.0.clone(), false)).collect();
        items.extend(self.prefixes.iter().map(|p| (p.clone(), true)));
        items.sort();
        items
    }
}

#[derive(Debug, Clone)]
struct Listing {
    v2: bool,
    prefix: String,
    delimiter: Option<String>,
    max_keys: i32,
    start: Option<String>,
}

/// Pages of a walk, and the error that ended it early, if any.
struct Walk {
    pages: Vec<Page>,
    error: Option<String>,
}

/// Walk up to `MAX_PAGES` pages of `l` on `bucket`, as a client would: V2 resumes with the
/// continuation token, V1 with NextMarker, else the last key. Checks the proxy's own rules on the
/// way (`proxy`): KeyCount, MaxKeys echo, token present exactly when truncated, V1 NextMarker.
async fn walk(client: &Client, bucket: &str, l: &Listing, proxy: bool) -> Walk {
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    let mut marker = l.start.clone();
    let ctx = format!("{bucket} {l:?}");
    while pages.len() < MAX_PAGES {
        let page = if l.v2 {
            let mut r = client.list_objects_v2().bucket(bucket).max_keys(l.max_keys);
            if !l.prefix.is_empty() {
                r = r.prefix(&l.prefix);
            }
            if let Some(d) = &l.delimiter {
                r = r.delimiter(d);
            }
            if let Some(s) = &l.start {
                r = r.start_after(s);
            }
            if let Some(t) = &token {
                r = r.continuation_token(t);
            }
            let out = match r.send().await {
                Ok(out) => out,
                Err(e) => return Walk { pages, error: Some(format!("{e:?}")) },
            };
            let page = Page::of(out.contents(), out.common_prefixes(), out.is_truncated());
            if proxy {
                assert_eq!(out.key_count(), Some((page.keys.len() + page.prefixes.len()) as i32), "{ctx}");
                assert_eq!(out.max_keys(), Some(l.max_keys), "{ctx}");
                assert_eq!(out.prefix().unwrap_or(""), l.prefix, "{ctx}");
                assert_eq!(out.delimiter(), l.delimiter.as_deref(), "{ctx}");
                assert_eq!(out.start_after(), l.start.as_deref(), "{ctx}");
                assert_eq!(out.continuation_token(), token.as_deref(), "{ctx}");
                assert_eq!(out.next_continuation_token().is_some(), page.truncated, "{ctx}");
            }
            token = out.next_continuation_token().map(str::to_string);
            page
        } else {
            let mut r = client.list_objects().bucket(bucket).max_keys(l.max_keys);
            if !l.prefix.is_empty() {
                r = r.prefix(&l.prefix);
            }
            if let Some(d) = &l.delimiter {
                r = r.delimiter(d);
            }
            if let Some(m) = &marker {
                r = r.marker(m);
            }
            let out = match r.send().await {
                Ok(out) => out,
                Err(e) => return Walk { pages, error: Some(format!("{e:?}")) },
            };
            let page = Page::of(out.contents(), out.common_prefixes(), out.is_truncated());
            if proxy {
                assert_eq!(out.max_keys(), Some(l.max_keys), "{ctx}");
                assert_eq!(out.marker().unwrap_or(""), marker.as_deref().unwrap_or(""), "{ctx}");
                // S3 writes NextMarker only for a truncated listing with a delimiter: the last item.
                let last = page.items().last().map(|i| i.0.clone());
                let expected = if page.truncated && l.delimiter.is_some() { last } else { None };
                assert_eq!(out.next_marker().map(str::to_string), expected, "{ctx}");
            }
            marker = out
                .next_marker()
                .map(str::to_string)
                .or_else(|| page.keys.last().map(|k| k.0.clone()));
            page
        };
        let done = !page.truncated;
        pages.push(page);
        if done {
            break;
        }
    }
    Walk { pages, error: None }
}

/// The pages `model` items make at `max_keys` a page (at most `MAX_PAGES`).
fn model_pages(items: &[Item], max_keys: usize) -> Vec<Vec<Item>> {
    if max_keys == 0 {
        return vec![vec![]];
    }
    let mut pages: Vec<Vec<Item>> = items.chunks(max_keys).map(|c| c.to_vec()).collect();
    if pages.is_empty() {
        pages.push(vec![]);
    }
    pages.truncate(MAX_PAGES);
    pages
}

/// A client of the proxy that does not retry, so an error answer is seen at once.
fn no_retry(client: &Client) -> Client {
    Client::from_conf(client.config().to_builder().retry_config(RetryConfig::disabled()).build())
}

// ---------------------------------------------------------------------------------------------
// 1. The oracle: the proxy over 5 shards lists exactly what one plain bucket lists.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_listing_equals_one_plain_bucket() {
    let started = Instant::now();
    let h = Harness::start(&SHARDS).await;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut raw_keys: Vec<String> = AWKWARD.iter().map(|s| s.to_string()).collect();
    for (tenant, blocks) in [("tenant-1", 120), ("tenant-2", 120), ("tenant-10", 100), ("single-tenant", 80)] {
        raw_keys.extend(tempo_keys(&mut rng, tenant, blocks));
    }
    raw_keys.extend(random_keys(&mut rng, 300));
    let keys = filesystem_safe(raw_keys);
    assert!(keys.len() > 1800, "{}", keys.len());

    let proxy = h.client();
    let direct = h.direct();
    direct.create_bucket().bucket(ORACLE).send().await.unwrap();
    tokio::join!(put_all(&proxy, VIRTUAL_BUCKET, &keys), put_all(&direct, ORACLE, &keys));
    eprintln!("wrote {} keys twice in {:?}", keys.len(), started.elapsed());

    // The shards really split the keys, and hold nothing but them.
    let mut on_shards = BTreeSet::new();
    for shard in SHARDS {
        let mut n = 0;
        let mut token = None;
        loop {
            let out = direct.list_objects_v2().bucket(shard).set_continuation_token(token).send().await.unwrap();
            n += out.contents().len();
            on_shards.extend(out.contents().iter().map(|o| o.key().unwrap().to_string()));
            token = out.next_continuation_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        assert!(n > keys.len() / 10, "{shard} holds only {n} keys");
    }
    assert_eq!(on_shards, keys);

    // The listings to compare.
    let block = keys.iter().find(|k| k.starts_with("tenant-2/") && k.ends_with("/index")).unwrap();
    let block_dir = block.trim_end_matches("index").to_string();
    let prefixes = [
        "",
        "tenant-1",
        "tenant-1/",
        "tenant-2/",
        block_dir.as_str(),
        "a",
        "a-",
        "a-b",
        "unicode/",
        "with space/",
        "日本",
        "percent%20literal/",
        "shared/",
        "a%",
        "nothing-here/",
    ];
    let delimiters: [Option<&str>; 5] = [None, Some("/"), Some("-"), Some("--"), Some("/p")];
    // Every prefix, delimiter and page size; V1/V2 and the start position rotate through them.
    let mut listings = Vec::new();
    for prefix in prefixes {
        let under: Vec<&String> = keys.iter().filter(|k| k.starts_with(prefix)).collect();
        let mut starts = vec![None];
        if let Some(mid) = under.get(under.len() / 2) {
            // A key in the middle, and a position inside its first segment after the prefix.
            let seg_end = mid[prefix.len()..].find('/').map(|i| prefix.len() + i).unwrap_or(mid.len());
            starts.push(Some(mid.to_string()));
            starts.push(Some(mid[..seg_end].to_string()));
        }
        starts.push(Some("a".to_string()));
        for delimiter in delimiters {
            for max_keys in [1, 2, 7, 1000] {
                let n = listings.len();
                listings.push(Listing {
                    v2: (n % 2 == 0) != (n / 4 % 2 == 0),
                    prefix: prefix.to_string(),
                    delimiter: delimiter.map(str::to_string),
                    max_keys,
                    start: starts[(n / 2) % starts.len()].clone(),
                });
            }
        }
    }

    let keys = Arc::new(keys);
    let proxy = no_retry(&proxy);
    let sem = Arc::new(Semaphore::new(PARALLEL));
    let mut tasks = tokio::task::JoinSet::new();
    for l in listings {
        let (keys, proxy, direct) = (keys.clone(), proxy.clone(), direct.clone());
        let permit = sem.clone().acquire_owned().await.unwrap();
        tasks.spawn(async move {
            let r = compare(&keys, &proxy, &direct, &l).await;
            drop(permit);
            r
        });
    }
    let mut stats = BTreeMap::<&str, usize>::new();
    while let Some(r) = tasks.join_next().await {
        let (outcome, pages) = r.unwrap();
        *stats.entry(outcome).or_default() += 1;
        *stats.entry("pages").or_default() += pages;
    }
    eprintln!("listings: {stats:?} at {:?}", started.elapsed());
    assert!(stats["equal"] > 200, "{stats:?}");
    assert!(stats.get("refused s3s-fs multi-char delimiter prefixes").copied().unwrap_or(0) > 10, "{stats:?}");

    max_keys_and_url_encoding(&proxy, &keys).await;
    eprintln!("done in {:?}", started.elapsed());
}

/// Walk one listing through the proxy and on the plain bucket; returns what happened and the
/// pages walked.
async fn compare(keys: &BTreeSet<String>, proxy: &Client, direct: &Client, l: &Listing) -> (&'static str, usize) {
    let items = model(keys, &l.prefix, l.delimiter.as_deref(), l.start.as_deref());
    let expected = model_pages(&items, l.max_keys as usize);
    let ctx = format!("{l:?}");
    let oracle = walk(direct, ORACLE, l, false).await;
    assert_eq!(oracle.error, None, "{ctx}");
    let oracle_items: Vec<Vec<Item>> = oracle.pages.iter().map(Page::items).collect();
    let got = walk(proxy, VIRTUAL_BUCKET, l, true).await;
    let got_items: Vec<Vec<Item>> = got.pages.iter().map(Page::items).collect();

    // s3s-fs's one known deviation: a multi-character delimiter that occurs under the prefix gets
    // cut to its first byte in the common prefixes it makes.
    let d = l.delimiter.as_deref().unwrap_or("");
    let deviant = d.len() > 1 && keys.iter().any(|k| k.starts_with(&l.prefix) && k[l.prefix.len()..].contains(d));
    if deviant {
        // The proxy must not pass broken common prefixes on. It may see one in a backend's answer
        // before the plain bucket lists it (it reads ahead on every shard); pages before its
        // error are right.
        assert!(got_items.len() <= expected.len(), "{ctx}");
        assert_eq!(got_items[..], expected[..got_items.len()], "{ctx}");
        let Some(err) = got.error else {
            assert_eq!(got_items, expected, "{ctx}");
            assert_eq!(oracle_items, expected, "{ctx}");
            return ("equal", got.pages.len());
        };
        assert!(err.contains("InternalError") && err.contains("first delimiter"), "{ctx}: {err}");
        return ("refused s3s-fs multi-char delimiter prefixes", got.pages.len());
    }
    assert_eq!(oracle_items, expected, "s3s-fs deviates from the model: {ctx}");
    assert_eq!(got.error, None, "{ctx}");
    assert_eq!(got_items, expected, "{ctx}");
    for (i, page) in got.pages.iter().enumerate() {
        let more = l.max_keys > 0 && (i + 1) * (l.max_keys as usize) < items.len();
        assert_eq!(page.truncated, more, "{ctx} page {i}");
    }
    // Sizes and ETags as the plain bucket lists them; truncation flags agree page by page.
    for (mine, theirs) in got.pages.iter().zip(&oracle.pages) {
        let mut a = mine.keys.clone();
        let mut b = theirs.keys.clone();
        a.sort();
        b.sort();
        assert_eq!(a, b, "{ctx}");
        assert_eq!(mine.truncated, theirs.truncated, "{ctx}");
    }
    let complete = expected.len() < MAX_PAGES || items.len() <= MAX_PAGES * l.max_keys as usize;
    if complete {
        assert!(!got.pages.last().unwrap().truncated, "{ctx}");
    }
    ("equal", got.pages.len())
}

/// Percent-decoding as an S3 client undoes `encoding-type=url`.
fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// What an encoded name may hold: RFC 3986 unreserved characters, `/` and escapes.
fn is_url_encoded(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~/%".contains(&b))
}

/// max-keys bounds and `encoding-type=url`, on the big key set.
async fn max_keys_and_url_encoding(proxy: &Client, keys: &BTreeSet<String>) {
    // max-keys=0: an empty page that is not truncated.
    let out = proxy.list_objects_v2().bucket(VIRTUAL_BUCKET).max_keys(0).send().await.unwrap();
    assert_eq!((out.contents().len(), out.common_prefixes().len()), (0, 0));
    assert_eq!((out.is_truncated(), out.key_count(), out.max_keys()), (Some(false), Some(0), Some(0)));
    assert_eq!(out.next_continuation_token(), None);
    let out = proxy.list_objects().bucket(VIRTUAL_BUCKET).max_keys(0).delimiter("/").send().await.unwrap();
    assert_eq!((out.contents().len(), out.common_prefixes().len()), (0, 0));
    assert_eq!((out.is_truncated(), out.max_keys(), out.next_marker()), (Some(false), Some(0), None));

    // More than 1000 is capped to S3's page size of 1000 (and MaxKeys says so).
    let out = proxy.list_objects_v2().bucket(VIRTUAL_BUCKET).max_keys(1001).send().await.unwrap();
    assert_eq!((out.contents().len(), out.is_truncated(), out.max_keys()), (1000, Some(true), Some(1000)));
    let first: Vec<&str> = keys.iter().take(1000).map(String::as_str).collect();
    assert_eq!(out.contents().iter().map(|o| o.key().unwrap()).collect::<Vec<_>>(), first);
    let out = proxy.list_objects().bucket(VIRTUAL_BUCKET).max_keys(5000).send().await.unwrap();
    assert_eq!((out.contents().len(), out.is_truncated(), out.max_keys()), (1000, Some(true), Some(1000)));

    // Negative max-keys: InvalidArgument (the SDK sends `max-keys=-1`).
    for v2 in [true, false] {
        let (status, err) = if v2 {
            let e = proxy.list_objects_v2().bucket(VIRTUAL_BUCKET).max_keys(-1).send().await.unwrap_err();
            (e.raw_response().map(|r| r.status().as_u16()), format!("{e:?}"))
        } else {
            let e = proxy.list_objects().bucket(VIRTUAL_BUCKET).max_keys(-1).send().await.unwrap_err();
            (e.raw_response().map(|r| r.status().as_u16()), format!("{e:?}"))
        };
        assert_eq!(status, Some(400), "{err}");
        assert!(err.contains("InvalidArgument"), "{err}");
    }

    // encoding-type=url, V2, all keys: every name comes encoded and decodes to the key.
    let mut listed = Vec::new();
    let mut token = None;
    loop {
        let out = proxy
            .list_objects_v2()
            .bucket(VIRTUAL_BUCKET)
            .encoding_type(EncodingType::Url)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        assert_eq!(out.encoding_type(), Some(&EncodingType::Url));
        for o in out.contents() {
            let k = o.key().unwrap();
            assert!(is_url_encoded(k), "{k:?}");
            listed.push(url_decode(k));
        }
        token = out.next_continuation_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(listed, keys.iter().cloned().collect::<Vec<_>>());

    // With a prefix and a delimiter that need encoding: Prefix, Delimiter, common prefixes.
    let out = proxy
        .list_objects_v2()
        .bucket(VIRTUAL_BUCKET)
        .encoding_type(EncodingType::Url)
        .prefix("with space/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(out.prefix(), Some("with%20space/"));
    assert_eq!(out.delimiter(), Some("/"));
    let cps: Vec<&str> = out.common_prefixes().iter().map(|p| p.prefix().unwrap()).collect();
    assert_eq!(cps, vec!["with%20space/and%2Bplus/"]);
    assert_eq!(out.contents().iter().map(|o| o.key().unwrap()).collect::<Vec<_>>(), vec!["with%20space/x"]);

    // V1, one key a page, resuming from the decoded NextMarker (with a delimiter, S3 sends one).
    // (No multi-byte delimiter: s3s-fs panics on one.)
    for (prefix, delimiter) in [("unicode/", "-"), ("a", "/"), ("a", "+"), ("with", " ")] {
        let expected = model(keys, prefix, Some(delimiter), None);
        let mut got = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..=expected.len() {
            let out = proxy
                .list_objects()
                .bucket(VIRTUAL_BUCKET)
                .encoding_type(EncodingType::Url)
                .prefix(prefix)
                .delimiter(delimiter)
                .max_keys(2)
                .set_marker(marker.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(out.delimiter(), Some(xml_url_encode(delimiter).as_str()));
            assert_eq!(out.marker().unwrap_or(""), xml_url_encode(marker.as_deref().unwrap_or("")));
            let mut page: Vec<Item> = out.contents().iter().map(|o| (url_decode(o.key().unwrap()), false)).collect();
            page.extend(out.common_prefixes().iter().map(|p| (url_decode(p.prefix().unwrap()), true)));
            page.sort();
            got.extend(page);
            if out.is_truncated() != Some(true) {
                break;
            }
            let next = out.next_marker().expect("NextMarker with a delimiter");
            assert!(is_url_encoded(next), "{next:?}");
            marker = Some(url_decode(next));
        }
        assert_eq!(got, expected, "{prefix:?} {delimiter:?}");
    }
}

/// The encoding the proxy writes (every byte but unreserved characters and `/` as `%XX`).
fn xml_url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 2. Tempo's own list calls.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tempo_list_calls() {
    let h = Harness::start(&SHARDS).await;
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut keys = tempo_keys(&mut rng, "tenant", 80);
    // Neighbouring tenants sort just before ("tenant-2" < "tenant/") and after ("tenantz").
    keys.extend(tempo_keys(&mut rng, "tenant-2", 15));
    keys.extend(tempo_keys(&mut rng, "tenantz", 15));
    let keys = Arc::new(filesystem_safe(keys));
    let s3 = no_retry(&h.client());
    put_all(&s3, VIRTUAL_BUCKET, &keys).await;

    // The poller's V1 listing: prefix=tenant/, delimiter=/, paging by NextMarker (minio-go's
    // V1 rule: NextMarker, else the last key).
    let blocks = model(&keys, "tenant/", Some("/"), None);
    assert_eq!(blocks.len(), 81);
    assert!(blocks.contains(&("tenant/index.json.gz".to_string(), false)));
    for max_keys in [1000, 9] {
        let l = Listing { v2: false, prefix: "tenant/".into(), delimiter: Some("/".into()), max_keys, start: None };
        let w = walk(&s3, VIRTUAL_BUCKET, &l, true).await;
        assert_eq!(w.error, None);
        assert_eq!(w.pages.len(), 81usize.div_ceil(max_keys as usize));
        let got: Vec<Item> = w.pages.iter().flat_map(Page::items).collect();
        assert_eq!(got, blocks);
    }

    // V2: start-after=tenant/<block id> with no delimiter, continuation tokens, several at once.
    let ids: Vec<String> = blocks.iter().filter(|b| b.1).map(|b| b.0.trim_end_matches('/').to_string()).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for i in [0, 13, 40, 41, 79] {
        let (s3, keys, start) = (s3.clone(), keys.clone(), ids[i].clone());
        tasks.spawn(async move {
            let l = Listing { v2: true, prefix: "tenant/".into(), delimiter: None, max_keys: 40, start: Some(start.clone()) };
            let w = walk(&s3, VIRTUAL_BUCKET, &l, true).await;
            assert_eq!(w.error, None);
            let got: Vec<String> = w.pages.iter().flat_map(|p| p.keys.iter().map(|k| k.0.clone())).collect();
            assert!(got.iter().all(|k| k.as_str() > start.as_str()), "{start}");
            let expected: Vec<String> = model(&keys, "tenant/", None, Some(&start)).into_iter().map(|i| i.0).collect();
            assert_eq!(got, expected, "{start}");
            // The block itself is listed (its files sort after "tenant/<id>"), the ones before are not.
            assert!(got[0].starts_with(&format!("{start}/")), "{start}: {:?}", got.first());
            w.pages.len()
        });
    }
    let mut pages = 0;
    while let Some(r) = tasks.join_next().await {
        pages += r.unwrap();
    }
    assert!(pages > 20, "{pages}");
}

// ---------------------------------------------------------------------------------------------
// 3. Raw requests: minio-go's empty delimiter, bad parameters, tokens, a failing backend.

/// `(name, is_common_prefix)` of a raw ListBucketResult, names XML-unescaped.
fn raw_items(body: &str) -> Vec<Item> {
    let unescape = |s: &str| {
        s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
    };
    let mut items = Vec::new();
    for (open, close, is_prefix) in [("<Key>", "</Key>", false), ("<CommonPrefixes><Prefix>", "</Prefix>", true)] {
        let mut rest = body;
        while let Some(at) = rest.find(open) {
            let from = &rest[at + open.len()..];
            let end = from.find(close).unwrap();
            items.push((unescape(&from[..end]), is_prefix));
            rest = &from[end..];
        }
    }
    items.sort();
    items
}

fn raw_tag<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    Some(&body[start..end])
}

async fn get(h: &Harness, target: &str) -> common::RawResponse {
    h.raw(format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minio_go_empty_delimiter_bad_parameters_and_tokens() {
    // Anonymous, so raw unsigned requests reach the listing.
    let h = Harness::start_with(&SHARDS, &[("allow_anonymous", "true")]).await;
    let mut rng = Rng(99);
    let mut keys = tempo_keys(&mut rng, "tenant", 12);
    keys.extend(["with space/a+b%c&d", "ü/x", "z"].map(String::from));
    let keys = filesystem_safe(keys);
    put_all(&h.client(), VIRTUAL_BUCKET, &keys).await;
    let all: Vec<Item> = keys.iter().map(|k| (k.clone(), false)).collect();

    // minio-go always sends `delimiter=` (and `prefix=`): empty means no delimiter, so every key.
    for target in [
        "/proxy-bucket?list-type=2&prefix=&delimiter=&max-keys=1000",
        "/proxy-bucket?prefix=&delimiter=&max-keys=1000",
        "/proxy-bucket/?delimiter=&encoding-type=&list-type=2&prefix=",
    ] {
        let r = get(&h, target).await;
        assert_eq!(r.status, 200, "{target}: {}", r.body);
        assert_eq!(raw_items(&r.body), all, "{target}");
        assert_eq!(raw_tag(&r.body, "IsTruncated"), Some("false"));
        assert!(!r.body.contains("<Delimiter>"), "{}", r.body);
    }
    // ...whereas `delimiter=/` rolls keys up.
    let r = get(&h, "/proxy-bucket?list-type=2&prefix=&delimiter=%2F").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        raw_items(&r.body),
        vec![("tenant/".into(), true), ("with space/".into(), true), ("z".into(), false), ("ü/".into(), true)]
    );

    // Bad max-keys, encoding-type, list-type: InvalidArgument.
    for query in ["max-keys=abc", "max-keys=-1", "max-keys=", "max-keys=1.5", "encoding-type=base64", "list-type=3"] {
        for v2 in ["list-type=2&", ""] {
            if query.starts_with("list-type") && !v2.is_empty() {
                continue;
            }
            let r = get(&h, &format!("/proxy-bucket?{v2}{query}")).await;
            assert_eq!((r.status, r.error_code()), (400, Some("InvalidArgument")), "{v2}{query}: {}", r.body);
        }
    }

    // Continuation tokens: page 2 follows; an edited token, or one used for another listing, is refused.
    let r = get(&h, "/proxy-bucket?list-type=2&prefix=tenant%2F&max-keys=5").await;
    let token = raw_tag(&r.body, "NextContinuationToken").unwrap().to_string();
    let r2 = get(&h, &format!("/proxy-bucket?list-type=2&prefix=tenant%2F&max-keys=5&continuation-token={token}")).await;
    assert_eq!(r2.status, 200);
    let expected = model(&keys, "tenant/", None, None);
    assert_eq!(raw_items(&r2.body), expected[5..10].to_vec());
    let mut tampered = token.clone().into_bytes();
    for i in [0, tampered.len() / 2, tampered.len() - 1] {
        let mut t = tampered.clone();
        t[i] = if t[i] == b'A' { b'B' } else { b'A' };
        let t = String::from_utf8(t).unwrap();
        let r = get(&h, &format!("/proxy-bucket?list-type=2&prefix=tenant%2F&max-keys=5&continuation-token={t}")).await;
        assert_eq!((r.status, r.error_code()), (400, Some("InvalidArgument")), "{t}: {}", r.body);
    }
    tampered.truncate(tampered.len() - 4);
    let short = String::from_utf8(tampered).unwrap();
    for target in [
        format!("/proxy-bucket?list-type=2&prefix=tenant%2F&continuation-token={short}"),
        format!("/proxy-bucket?list-type=2&prefix=other&continuation-token={token}"),
        format!("/proxy-bucket?list-type=2&prefix=tenant%2F&delimiter=%2F&continuation-token={token}"),
        "/proxy-bucket?list-type=2&continuation-token=not%20a%20token".to_string(),
    ] {
        let r = get(&h, &target).await;
        assert_eq!((r.status, r.error_code()), (400, Some("InvalidArgument")), "{target}: {}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_backend_fails_every_listing() {
    let h = Harness::start_with(&SHARDS, &[("allow_anonymous", "true")]).await;
    let mut rng = Rng(7);
    let keys = filesystem_safe(tempo_keys(&mut rng, "tenant", 10));
    put_all(&h.client(), VIRTUAL_BUCKET, &keys).await;
    let r = get(&h, "/proxy-bucket?list-type=2&max-keys=3").await;
    let token = raw_tag(&r.body, "NextContinuationToken").unwrap().to_string();
    let r = get(&h, "/proxy-bucket?list-type=2&max-keys=3&delimiter=%2F&prefix=tenant%2F").await;
    let token_delim = raw_tag(&r.body, "NextContinuationToken").unwrap().to_string();
    let second = keys.iter().nth(3).unwrap().replace('/', "%2F");

    h.backend.set_failing(true);
    let targets = [
        "/proxy-bucket".to_string(),
        "/proxy-bucket?list-type=2".to_string(),
        "/proxy-bucket?delimiter=%2F&prefix=tenant%2F".to_string(),
        "/proxy-bucket?list-type=2&delimiter=%2F".to_string(),
        "/proxy-bucket?list-type=2&max-keys=1".to_string(),
        format!("/proxy-bucket?list-type=2&max-keys=3&continuation-token={token}"),
        format!("/proxy-bucket?list-type=2&max-keys=3&delimiter=%2F&prefix=tenant%2F&continuation-token={token_delim}"),
        format!("/proxy-bucket?max-keys=3&marker={second}"),
    ];
    for target in &targets {
        let r = get(&h, target).await;
        assert!(r.status >= 500, "{target}: {} {}", r.status, r.body);
        assert_eq!(r.error_code(), Some("InternalError"), "{target}: {}", r.body);
        assert!(!r.body.contains("ListBucketResult") && !r.body.contains("<Key>"), "{target}: {}", r.body);
    }
    // The SDK sees an error too (after its retries), never a partial listing.
    let err = no_retry(&h.client()).list_objects_v2().bucket(VIRTUAL_BUCKET).send().await.unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500), "{err:?}");

    h.backend.set_failing(false);
    for target in &targets {
        let r = get(&h, target).await;
        assert_eq!(r.status, 200, "{target}: {}", r.body);
    }
}

// ---------------------------------------------------------------------------------------------
// 5. ListMultipartUploads merged over the shards (moto backend: s3s-fs has no such listing).

/// One bucket's ListMultipartUploads, as `(name, upload id)` items ("" for a common prefix):
/// key order, then upload id, after the markers.
fn uploads_model(
    all: &BTreeSet<(String, String)>,
    prefix: &str,
    delimiter: Option<&str>,
    key_marker: Option<&str>,
    upload_id_marker: Option<&str>,
) -> Vec<(String, String)> {
    let mut items: Vec<(String, String)> = all
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, id)| match delimiter.and_then(|d| k[prefix.len()..].find(d).map(|at| (d, at))) {
            Some((d, at)) => (k[..prefix.len() + at + d.len()].to_string(), String::new()),
            None => (k.clone(), id.clone()),
        })
        .filter(|(n, id)| match key_marker {
            None => true,
            Some(k) => n.as_str() > k || (n == k && !id.is_empty() && upload_id_marker.is_some_and(|m| id.as_str() > m)),
        })
        .collect();
    items.sort();
    items.dedup();
    items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_uploads_listed_over_all_shards() {
    let h = Harness::start_moto(&SHARDS, &[]).await;
    let s3 = no_retry(&h.client());
    let mut rng = Rng(0xfeed);
    let mut keys: Vec<String> = (0..12).map(|_| format!("tenant/{}/data.parquet", rng.uuid())).collect();
    keys.extend(["with space/a+b", "ü/x", "a-b", "a/b/c", "a/b-c", "a", "zz/top"].map(String::from));
    let mut all = BTreeSet::new();
    for (i, key) in keys.iter().enumerate() {
        // Some keys have several uploads in progress.
        for _ in 0..1 + i % 3 {
            let out = s3.create_multipart_upload().bucket(VIRTUAL_BUCKET).key(key).send().await.unwrap();
            all.insert((key.clone(), out.upload_id().unwrap().to_string()));
        }
    }

    // Each upload lives on its key's ring owner, and the uploads are spread over the shards.
    let direct = h.direct();
    let mut on_shards = BTreeSet::new();
    let mut used = 0;
    for shard in SHARDS {
        let out = direct.list_multipart_uploads().bucket(shard).send().await.unwrap();
        used += usize::from(!out.uploads().is_empty());
        for u in out.uploads() {
            let key = u.key().unwrap().to_string();
            assert_eq!(h.owner(&key), shard, "{key}");
            on_shards.insert((key, u.upload_id().unwrap().to_string()));
        }
    }
    assert_eq!(on_shards, all);
    assert!(used >= 3, "{used}");

    // Walk with NextKeyMarker / NextUploadIdMarker and compare with one bucket's listing.
    let middle = all.iter().find(|(k, _)| k == "a-b").unwrap().clone();
    let mut walks = 0;
    for prefix in ["", "a", "tenant/", "with space/"] {
        for delimiter in [None, Some("/"), Some("-")] {
            for max in [1, 3, 1000] {
                for start in [None, Some((middle.0.clone(), None)), Some((middle.0.clone(), Some(middle.1.clone())))] {
                    // A page of one walks every upload: only over the smaller prefixes.
                    if max == 1 && (prefix.is_empty() || prefix == "tenant/") {
                        continue;
                    }
                    let (km, um) = match &start {
                        Some((k, u)) => (Some(k.clone()), u.clone()),
                        None => (None, None),
                    };
                    let expected = uploads_model(&all, prefix, delimiter, km.as_deref(), um.as_deref());
                    let ctx = format!("{prefix:?} {delimiter:?} {max} {start:?}");
                    let (mut key_marker, mut upload_id_marker) = (km, um);
                    
                    for page in 0..=expected.len() {
                        let out = s3
                            .list_multipart_uploads()
                            .bucket(VIRTUAL_BUCKET)
                            .prefix(prefix)
                            .set_delimiter(delimiter.map(str::to_string))
                            .max_uploads(max)
                            .set_key_marker(key_marker.clone())
                            .set_upload_id_marker(upload_id_marker.clone())
                            .send()
                            .await
                            .unwrap_or_else(|e| panic!("{ctx}: {e:?}"));
                        assert_eq!(out.max_uploads(), Some(max), "{ctx}");
                        assert_eq!(out.key_marker().unwrap_or(""), key_marker.as_deref().unwrap_or(""), "{ctx}");
                        let mut items: Vec<(String, String)> = out
                            .uploads()
                            .iter()
                            .map(|u| (u.key().unwrap().to_string(), u.upload_id().unwrap().to_string()))
                            .collect();
                        items.extend(out.common_prefixes().iter().map(|p| (p.prefix().unwrap().to_string(), String::new())));
                        items.sort();
                        let from = page * max as usize;
                        let want = expected[from.min(expected.len())..(from + max as usize).min(expected.len())].to_vec();
                        assert_eq!(items, want, "{ctx} page {page}");
                        let more = from + (max as usize) < expected.len();
                        assert_eq!(out.is_truncated(), Some(more), "{ctx} page {page}");
                        if !more {
                            break;
                        }
                        let last = want.last().unwrap();
                        assert_eq!(out.next_key_marker(), Some(last.0.as_str()), "{ctx}");
                        let id = Some(last.1.as_str()).filter(|i| !i.is_empty());
                        assert_eq!(out.next_upload_id_marker(), id, "{ctx}");
                        key_marker = out.next_key_marker().map(str::to_string);
                        upload_id_marker = out.next_upload_id_marker().map(str::to_string);
                    }
                    walks += 1;
                }
            }
        }
    }
    assert_eq!(walks, 90);

    // encoding-type=url, and bad max-uploads.
    let out = s3
        .list_multipart_uploads()
        .bucket(VIRTUAL_BUCKET)
        .prefix("with space/")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(out.prefix(), Some("with%20space/"));
    let listed: Vec<(&str, &str)> = out.uploads().iter().map(|u| (u.key().unwrap(), u.upload_id().unwrap())).collect();
    let expected: Vec<(&str, &str)> =
        all.iter().filter(|(k, _)| k == "with space/a+b").map(|(_, id)| ("with%20space/a%2Bb", id.as_str())).collect();
    assert!(!expected.is_empty());
    assert_eq!(listed, expected);
    let out = s3.list_multipart_uploads().bucket(VIRTUAL_BUCKET).max_uploads(0).send().await.unwrap();
    assert_eq!((out.uploads().len(), out.is_truncated()), (0, Some(false)));
    let err = s3.list_multipart_uploads().bucket(VIRTUAL_BUCKET).max_uploads(-1).send().await.unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400), "{err:?}");
    assert!(format!("{err:?}").contains("InvalidArgument"), "{err:?}");

    // Aborted uploads leave the listing.
    for (key, id) in all.iter().filter(|(k, _)| k.starts_with("a")) {
        s3.abort_multipart_upload().bucket(VIRTUAL_BUCKET).key(key).upload_id(id).send().await.unwrap();
    }
    let out = s3.list_multipart_uploads().bucket(VIRTUAL_BUCKET).prefix("a").send().await.unwrap();
    assert!(out.uploads().is_empty() && out.common_prefixes().is_empty(), "{out:?}");
}
