//! Tests of the listing merge: a model of one bucket against shards answering in every way S3 allows, tokens, and broken backends.

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
        owner: Some(crate::types::Owner { id: "o".into(), display_name: "d".into() }),
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
    let x = xml::list_objects_v1(&out);
    assert!(x.contains("<Marker>a0</Marker>") && x.contains("<NextMarker>a1</NextMarker>"));
    assert!(!x.contains("KeyCount"));
}
