//! Adding a bucket to a populated ring loses nothing: with `previous_buckets`, reads (copy sources
//! included) fall back to the previous owner, listings show every object once, and deletes remove
//! every copy.

use crate::common;

use aws_sdk_s3::primitives::ByteStream;
use common::{s3_client, start_proxy, Harness, VIRTUAL_BUCKET};
use std::collections::HashMap;
use tempo_s3_shard_host::backends::{LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_bucket_keeps_every_object_readable_listed_once_and_deletable() {
    let keys: Vec<String> = (0..60).map(|i| format!("tenant-{}/block-{i:03}/meta.json", i % 3)).collect();
    // The same backends behind a four-bucket ring that remembers the three-bucket one.
    let (old, new, moved, _server) = resharded(&keys).await;
    let moved: Vec<&String> = moved.iter().collect();
    assert!(!moved.is_empty() && moved.len() < keys.len(), "some, not all, blocks change owner ({})", moved.len());

    for k in &keys {
        let got = new.get_object().bucket(VIRTUAL_BUCKET).key(k).send().await.unwrap_or_else(|e| panic!("{k}: {e:?}"));
        assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), k.as_bytes());
        new.head_object().bucket(VIRTUAL_BUCKET).key(k).send().await.unwrap();
    }

    // An object rewritten through the new ring now lives on both owners; reads and lists see the new one once.
    let rewritten = moved[0];
    new.put_object().bucket(VIRTUAL_BUCKET).key(rewritten).body(ByteStream::from_static(b"new")).send().await.unwrap();
    let got = new.get_object().bucket(VIRTUAL_BUCKET).key(rewritten).send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"new");
    let mut listed = vec![];
    let mut token = None;
    loop {
        let page = new.list_objects_v2().bucket(VIRTUAL_BUCKET).max_keys(7).set_continuation_token(token).send().await.unwrap();
        listed.extend(page.contents().iter().map(|o| (o.key().unwrap().to_string(), o.size().unwrap())));
        token = page.next_continuation_token().map(String::from);
        if token.is_none() {
            break;
        }
    }
    let mut expected: Vec<_> = keys.iter().map(|k| (k.clone(), if k == rewritten { 3 } else { k.len() as i64 })).collect();
    expected.sort();
    assert_eq!(listed, expected, "every object listed exactly once, the rewritten one with its new size");

    // Deleting a moved object removes both copies: it must not come back through the fallback.
    new.delete_object().bucket(VIRTUAL_BUCKET).key(rewritten).send().await.unwrap();
    assert!(new.head_object().bucket(VIRTUAL_BUCKET).key(rewritten).send().await.is_err());
    for b in ["shard1", "shard2", "shard3", "shard4"] {
        assert!(old.direct().head_object().bucket(b).key(rewritten).send().await.is_err(), "{rewritten} left on {b}");
    }
    let batch: Vec<_> = moved[1..4].iter().map(|k| aws_sdk_s3::types::ObjectIdentifier::builder().key(k.as_str()).build().unwrap()).collect();
    new.delete_objects()
        .bucket(VIRTUAL_BUCKET)
        .delete(aws_sdk_s3::types::Delete::builder().set_objects(Some(batch)).build().unwrap())
        .send()
        .await
        .unwrap();
    for k in &moved[1..4] {
        assert!(new.head_object().bucket(VIRTUAL_BUCKET).key(k.as_str()).send().await.is_err(), "{k}");
    }
}

/// Objects written through a three-bucket ring, then the proxy restarted with a fourth bucket and
/// the old list as `previous_buckets`: (the old harness, a client of the new proxy, the keys whose
/// owner changed).
async fn resharded(keys: &[String]) -> (Harness, aws_sdk_s3::Client, Vec<String>, common::Server) {
    let old = Harness::start(&["shard1", "shard2", "shard3"]).await;
    old.direct().create_bucket().bucket("shard4").send().await.unwrap();
    for k in keys {
        old.client().put_object().bucket(VIRTUAL_BUCKET).key(k).body(ByteStream::from(k.clone().into_bytes())).send().await.unwrap();
    }
    let vars = HashMap::from([
        ("buckets".to_string(), "shard1,shard2,shard3,shard4".to_string()),
        ("previous_buckets".to_string(), "shard1,shard2,shard3".to_string()),
        ("endpoint".to_string(), old.backend.endpoint()),
        ("access_key_id".to_string(), LOCAL_ACCESS_KEY.to_string()),
        ("secret_access_key".to_string(), LOCAL_SECRET_KEY.to_string()),
        ("client_credentials".to_string(), format!("{LOCAL_ACCESS_KEY}:{LOCAL_SECRET_KEY}")),
    ]);
    let (addr, server, _) = start_proxy(vars).await;
    let new = s3_client(&format!("http://{addr}"), LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY);
    let ring = tempo_s3_shard_core::ring::Ring::new(&["shard1", "shard2", "shard3", "shard4"].map(String::from));
    let moved = keys.iter().filter(|k| ring.owner(k) != old.owner(k)).cloned().collect();
    (old, new, moved, server)
}

async fn body_of(s3: &aws_sdk_s3::Client, key: &str) -> Vec<u8> {
    let got = s3.get_object().bucket(VIRTUAL_BUCKET).key(key).send().await.unwrap_or_else(|e| panic!("{key}: {e:?}"));
    got.body.collect().await.unwrap().into_bytes().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_read_sources_that_are_still_on_their_previous_owner() {
    let keys: Vec<String> = (0..40).map(|i| format!("tenant/block-{i:03}/meta.json")).collect();
    let (old, new, moved, _server) = resharded(&keys).await;
    assert!(moved.len() >= 2, "some blocks change owner");

    // Tempo's compactor marks a block compacted by copying meta.json within the block.
    let src = &moved[0];
    let compacted = src.replace("meta.json", "meta.compacted.json");
    new.copy_object().bucket(VIRTUAL_BUCKET).key(&compacted).copy_source(format!("{VIRTUAL_BUCKET}/{src}")).send().await
        .unwrap_or_else(|e| panic!("CopyObject from a not-yet-moved source: {e:?}"));
    assert_eq!(body_of(&new, &compacted).await, src.as_bytes());

    // A copy into another block (another shard), and a part copy, from a not-yet-moved source.
    let src = &moved[1];
    let dst = "other-tenant/new-block/copied";
    new.copy_object().bucket(VIRTUAL_BUCKET).key(dst).copy_source(format!("{VIRTUAL_BUCKET}/{src}")).send().await.unwrap();
    assert_eq!(body_of(&new, dst).await, src.as_bytes());
    let upload = new.create_multipart_upload().bucket(VIRTUAL_BUCKET).key("other-tenant/parted/data").send().await.unwrap();
    let id = upload.upload_id().unwrap();
    let part = new
        .upload_part_copy()
        .bucket(VIRTUAL_BUCKET)
        .key("other-tenant/parted/data")
        .upload_id(id)
        .part_number(1)
        .copy_source(format!("{VIRTUAL_BUCKET}/{src}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("UploadPartCopy from a not-yet-moved source: {e:?}"));
    let etag = part.copy_part_result().and_then(|r| r.e_tag()).unwrap().to_string();
    let done = aws_sdk_s3::types::CompletedMultipartUpload::builder()
        .parts(aws_sdk_s3::types::CompletedPart::builder().part_number(1).e_tag(etag).build())
        .build();
    new.complete_multipart_upload().bucket(VIRTUAL_BUCKET).key("other-tenant/parted/data").upload_id(id).multipart_upload(done).send().await.unwrap();
    assert_eq!(body_of(&new, "other-tenant/parted/data").await, src.as_bytes());
    drop(old);
}
