//! Placement under Tempo's storage prefix: with `key_prefix=traces`, keys `traces/tenant/block/file`
//! written through the real component spread over the shards by `tenant/block`, exactly as a ring
//! computed here places them; keys outside the prefix hash as always.

use crate::common;

use aws_sdk_s3::primitives::ByteStream;
use common::{Harness, VIRTUAL_BUCKET};
use std::collections::{BTreeMap, BTreeSet};
use tempo_s3_shard_core::ring::Ring;

const SHARDS: [&str; 4] = ["shard1", "shard2", "shard3", "shard4"];
/// The files of one Tempo block.
const FILES: [&str; 5] = ["data.parquet", "bloom-0", "bloom-1", "index", "meta.json"];

/// Every object on every shard, asked directly: key -> the shards holding it.
async fn stored(h: &Harness) -> BTreeMap<String, Vec<String>> {
    let direct = h.direct();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for shard in &h.buckets {
        let mut pages = direct.list_objects_v2().bucket(shard).into_paginator().send();
        while let Some(page) = pages.next().await {
            for object in page.expect("list a shard directly").contents() {
                out.entry(object.key().unwrap_or_default().to_string()).or_default().push(shard.clone());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tempo_prefix_spreads_blocks_and_keeps_each_block_on_one_shard() {
    let h = Harness::start_with(&SHARDS, &[("key_prefix", "/traces/")]).await;
    let s3 = h.client();
    // 1,000 Tempo-shaped keys: 2 tenants x 100 blocks x 5 files, under Tempo's prefix.
    let blocks: Vec<(String, String)> = (0..200)
        .map(|i| (format!("tenant-{}", i % 2), tempo_s3_shard_host::ring_plan::pseudo_uuid(i)))
        .collect();
    let keys: Vec<String> =
        blocks.iter().flat_map(|(t, b)| FILES.map(|f| format!("traces/{t}/{b}/{f}"))).collect();
    assert_eq!(keys.len(), 1000);
    let mut writes = tokio::task::JoinSet::new();
    for chunk in keys.chunks(125) {
        let (s3, chunk) = (s3.clone(), chunk.to_vec());
        writes.spawn(async move {
            for key in chunk {
                let body = ByteStream::from(key.clone().into_bytes());
                s3.put_object().bucket(VIRTUAL_BUCKET).key(&key).body(body).send().await.unwrap_or_else(|e| panic!("{key}: {e:?}"));
            }
        });
    }
    while let Some(done) = writes.join_next().await {
        done.expect("writer");
    }
    // Keys outside the prefix are placed as without one: by their own first two segments.
    let outside = "other/tenant-0/block/meta.json";
    s3.put_object().bucket(VIRTUAL_BUCKET).key(outside).body(ByteStream::from_static(b"x")).send().await.unwrap();

    let ring = Ring::new(&SHARDS.map(String::from));
    let on_shards = stored(&h).await;
    let mut per_shard: BTreeMap<&str, usize> = BTreeMap::new();
    for (tenant, block) in &blocks {
        let owner = ring.owner(&format!("{tenant}/{block}"));
        for file in FILES {
            let key = format!("traces/{tenant}/{block}/{file}");
            assert_eq!(on_shards.get(&key), Some(&vec![owner.to_string()]), "{key} must be on {owner}, the owner of {tenant}/{block}");
        }
        *per_shard.entry(owner).or_default() += 1;
    }
    assert_eq!(on_shards.get(outside), Some(&vec![ring.owner("other/tenant-0").to_string()]));
    assert_eq!(on_shards.len(), 1001, "nothing else was written");
    // Spread: every shard holds blocks of both tenants, none more than half of them (the ring's
    // unevenness for 200 blocks on 4 shards is far below that). Without the prefix rule every
    // block of a tenant would sit on the one owner of `traces/tenant-N`.
    assert_eq!(per_shard.len(), SHARDS.len(), "{per_shard:?}");
    assert!(per_shard.values().all(|&n| n < 100), "{per_shard:?}");
    let unprefixed: BTreeSet<&str> = blocks.iter().map(|(t, _)| ring.owner(&format!("traces/{t}"))).collect();
    assert!(unprefixed.len() <= 2, "the old rule would have used at most two shards: {unprefixed:?}");

    // The keys read back through the proxy.
    for key in keys.iter().step_by(50) {
        let got = s3.get_object().bucket(VIRTUAL_BUCKET).key(key).send().await.unwrap();
        assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), key.as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locate_shows_the_prefix_aware_hash_key() {
    let h = Harness::start_with(&SHARDS, &[("key_prefix", "traces"), ("client_credentials", ""), ("allow_anonymous", "true")]).await;
    let located = h.raw(b"GET /_tempo-s3-shard/locate?key=traces/t1/b1/data.parquet HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(located.status, 200, "{located:?}");
    let v: serde_json::Value = serde_json::from_str(&located.body).expect("JSON");
    assert_eq!(v["hash_key"], "t1/b1");
    assert_eq!(v["bucket"], Ring::new(&SHARDS.map(String::from)).owner("t1/b1"));

    // A bad prefix is a configuration error naming the variable.
    let bad = Harness::start_with(&SHARDS, &[("key_prefix", "traces//x")]).await;
    let health = bad.raw(b"GET /_tempo-s3-shard/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(health.status, 500, "{health:?}");
    assert!(health.body.contains("key_prefix") && health.body.contains("empty path segment"), "{}", health.body);
}
