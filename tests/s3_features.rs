//! What Tempo and ordinary S3 tools do beyond put/get, through the real component: multipart uploads,
//! ranged and conditional reads, copies within and across shards, and batch deletes.

use crate::common;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use common::{Harness, VIRTUAL_BUCKET};

const SHARDS: [&str; 3] = ["shard1", "shard2", "shard3"];

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn code(e: impl ProvideErrorMetadata) -> String {
    e.code().unwrap_or("").to_string()
}

/// Two block keys the ring puts on different shards.
fn keys_on_two_shards(h: &Harness) -> (String, String) {
    let a = "tenant/block-0/data".to_string();
    let b = (1..100).map(|i| format!("tenant/block-{i}/data")).find(|k| h.owner(k) != h.owner(&a)).unwrap();
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_upload_lands_whole_on_the_owning_shard() {
    let h = Harness::start(&SHARDS).await;
    let s3 = h.client();
    let key = "tenant/0003b3c9-8689-41a6-835c-1b4ec3bd4a4e/data.parquet";
    let created = s3.create_multipart_upload().bucket(VIRTUAL_BUCKET).key(key).content_type("application/x-parquet").send().await.unwrap();
    let upload_id = created.upload_id().unwrap();
    let parts_data = [data(5 * 1024 * 1024, 1), data(5 * 1024 * 1024, 2), data(1234, 3)];
    let mut parts = vec![];
    for (i, part) in parts_data.iter().enumerate() {
        let n = i as i32 + 1;
        let up = s3.upload_part().bucket(VIRTUAL_BUCKET).key(key).upload_id(upload_id).part_number(n).body(ByteStream::from(part.clone())).send().await.unwrap();
        parts.push(CompletedPart::builder().part_number(n).e_tag(up.e_tag().unwrap()).build());
    }
    let listed = s3.list_parts().bucket(VIRTUAL_BUCKET).key(key).upload_id(upload_id).send().await.unwrap();
    assert_eq!(listed.parts().len(), 3);
    s3.complete_multipart_upload()
        .bucket(VIRTUAL_BUCKET)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .unwrap();
    let got = s3.get_object().bucket(VIRTUAL_BUCKET).key(key).send().await.unwrap();
    let body = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(body.as_ref(), parts_data.concat().as_slice());
    assert_eq!(h.holders(key).await, vec![h.owner(key)]);

    // An aborted upload leaves nothing behind and can no longer take parts.
    let other = "tenant/block-x/data";
    let created = s3.create_multipart_upload().bucket(VIRTUAL_BUCKET).key(other).send().await.unwrap();
    let id = created.upload_id().unwrap();
    s3.upload_part().bucket(VIRTUAL_BUCKET).key(other).upload_id(id).part_number(1).body(ByteStream::from_static(b"x")).send().await.unwrap();
    s3.abort_multipart_upload().bucket(VIRTUAL_BUCKET).key(other).upload_id(id).send().await.unwrap();
    let err = s3.upload_part().bucket(VIRTUAL_BUCKET).key(other).upload_id(id).part_number(2).body(ByteStream::from_static(b"y")).send().await.unwrap_err();
    // S3 says NoSuchUpload; s3s-fs answers AccessDenied for an unknown upload id. Either way: refused.
    assert!(["NoSuchUpload", "AccessDenied"].contains(&code(err).as_str()));
    assert!(h.holders(other).await.is_empty());

    // Completing with parts out of order is refused, as on S3.
    let created = s3.create_multipart_upload().bucket(VIRTUAL_BUCKET).key(other).send().await.unwrap();
    let id = created.upload_id().unwrap();
    let mut parts = vec![];
    for n in [1, 2] {
        let up = s3.upload_part().bucket(VIRTUAL_BUCKET).key(other).upload_id(id).part_number(n).body(ByteStream::from(data(5 * 1024 * 1024, n as u8))).send().await.unwrap();
        parts.push(CompletedPart::builder().part_number(n).e_tag(up.e_tag().unwrap()).build());
    }
    parts.reverse();
    let err = s3
        .complete_multipart_upload()
        .bucket(VIRTUAL_BUCKET)
        .key(other)
        .upload_id(id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(err), "InvalidPartOrder");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranged_and_conditional_reads() {
    let h = Harness::start(&SHARDS).await;
    let s3 = h.client();
    let key = "tenant/block/index";
    let body = data(100_000, 7);
    let put = s3.put_object().bucket(VIRTUAL_BUCKET).key(key).body(ByteStream::from(body.clone())).send().await.unwrap();
    let etag = put.e_tag().unwrap().to_string();

    let got = s3.get_object().bucket(VIRTUAL_BUCKET).key(key).range("bytes=100-199").send().await.unwrap();
    assert_eq!(got.content_range(), Some("bytes 100-199/100000"));
    assert_eq!(got.content_length(), Some(100));
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), &body[100..200]);
    let got = s3.get_object().bucket(VIRTUAL_BUCKET).key(key).range("bytes=-10").send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), &body[body.len() - 10..]);
    let err = s3.get_object().bucket(VIRTUAL_BUCKET).key(key).range("bytes=200000-").send().await.unwrap_err();
    assert_eq!(code(err), "InvalidRange");

    let ok = s3.head_object().bucket(VIRTUAL_BUCKET).key(key).if_match(&etag).send().await.unwrap();
    assert_eq!(ok.content_length(), Some(100_000));
    // s3s-fs ignores read conditions; the proxy answers as S3 does.
    let err = s3.get_object().bucket(VIRTUAL_BUCKET).key(key).if_match("\"0123456789abcdef0123456789abcdef\"").send().await.unwrap_err();
    assert_eq!(code(err), "PreconditionFailed");
    let err = s3.get_object().bucket(VIRTUAL_BUCKET).key(key).if_none_match(&etag).send().await.unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(304));
    let got = s3.get_object().bucket(VIRTUAL_BUCKET).key(key).if_none_match("\"other\"").range("bytes=0-9").send().await.unwrap();
    assert_eq!(got.content_length(), Some(10));

    let got = s3
        .get_object()
        .bucket(VIRTUAL_BUCKET)
        .key(key)
        .response_content_type("text/x-override")
        .response_content_disposition("attachment; filename=\"i.bin\"")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("text/x-override"));
    assert_eq!(got.content_disposition(), Some("attachment; filename=\"i.bin\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_upload_keeps_its_checksum_and_a_read_checks_it() {
    // The SDK sends a CRC32 with every PutObject (in a trailer or a header); the backend must
    // store it, as S3 does, so a read with checksum mode gets it back and verifies the body.
    let h = Harness::start(&SHARDS).await;
    let s3 = h.client();
    let key = "tenant/block/checksummed";
    let body = data(200_000, 3);
    let put = s3.put_object().bucket(VIRTUAL_BUCKET).key(key).body(ByteStream::from(body.clone())).send().await.unwrap();
    let sent = put.checksum_crc32().expect("the PUT's answer echoes the CRC32").to_string();
    let head = s3.head_object().bucket(VIRTUAL_BUCKET).key(key).checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled).send().await.unwrap();
    assert_eq!(head.checksum_crc32(), Some(sent.as_str()));
    let got = s3.get_object().bucket(VIRTUAL_BUCKET).key(key).checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled).send().await.unwrap();
    assert_eq!(got.checksum_crc32(), Some(sent.as_str()));
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), &body[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_within_and_across_shards() {
    let h = Harness::start(&SHARDS).await;
    let s3 = h.client();
    let (src, far) = keys_on_two_shards(&h);
    let body = data(3 * 1024 * 1024 + 5, 9);
    s3.put_object()
        .bucket(VIRTUAL_BUCKET)
        .key(&src)
        .content_type("application/x-test")
        .metadata("k", "v")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let near = src.replace("/data", "/copy");
    assert_eq!(h.owner(&near), h.owner(&src));
    for dst in [&near, &far] {
        let out = s3.copy_object().bucket(VIRTUAL_BUCKET).key(dst.as_str()).copy_source(format!("{VIRTUAL_BUCKET}/{src}")).send().await.unwrap();
        assert!(out.copy_object_result().and_then(|r| r.e_tag()).is_some(), "{dst}");
        let got = s3.get_object().bucket(VIRTUAL_BUCKET).key(dst.as_str()).send().await.unwrap();
        assert_eq!(got.content_type(), Some("application/x-test"), "{dst}");
        assert_eq!(got.metadata().and_then(|m| m.get("k")).map(String::as_str), Some("v"), "{dst}");
        assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), body.as_slice(), "{dst}");
        assert_eq!(h.holders(dst).await, vec![h.owner(dst)], "{dst}");
    }
    // REPLACE takes the request's metadata.
    s3.copy_object()
        .bucket(VIRTUAL_BUCKET)
        .key(&far)
        .copy_source(format!("{VIRTUAL_BUCKET}/{src}"))
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .content_type("text/plain")
        .send()
        .await
        .unwrap();
    let head = s3.head_object().bucket(VIRTUAL_BUCKET).key(&far).send().await.unwrap();
    assert_eq!(head.content_type(), Some("text/plain"));
    assert!(head.metadata().is_none_or(|m| m.is_empty()));
    // A missing source is a NoSuchKey; another bucket a NoSuchBucket.
    let err = s3.copy_object().bucket(VIRTUAL_BUCKET).key(&far).copy_source(format!("{VIRTUAL_BUCKET}/tenant/none/x")).send().await.unwrap_err();
    assert_eq!(code(err), "NoSuchKey");
    let err = s3.copy_object().bucket(VIRTUAL_BUCKET).key(&far).copy_source("other-bucket/x").send().await.unwrap_err();
    assert_eq!(code(err), "NoSuchBucket");

    // UploadPartCopy from another shard, with a range.
    let created = s3.create_multipart_upload().bucket(VIRTUAL_BUCKET).key(&far).send().await.unwrap();
    let id = created.upload_id().unwrap();
    let part = s3
        .upload_part_copy()
        .bucket(VIRTUAL_BUCKET)
        .key(&far)
        .upload_id(id)
        .part_number(1)
        .copy_source(format!("{VIRTUAL_BUCKET}/{src}"))
        .copy_source_range("bytes=0-99")
        .send()
        .await
        .unwrap();
    let etag = part.copy_part_result().and_then(|r| r.e_tag()).unwrap().to_string();
    s3.complete_multipart_upload()
        .bucket(VIRTUAL_BUCKET)
        .key(&far)
        .upload_id(id)
        .multipart_upload(CompletedMultipartUpload::builder().parts(CompletedPart::builder().part_number(1).e_tag(etag).build()).build())
        .send()
        .await
        .unwrap();
    let got = s3.get_object().bucket(VIRTUAL_BUCKET).key(&far).send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), &body[..100]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_delete_splits_by_shard_and_reports_in_order() {
    let h = Harness::start(&SHARDS).await;
    let s3 = h.client();
    let keys: Vec<String> = (0..40).map(|i| format!("tenant/block-{i}/meta.json")).collect();
    for k in &keys {
        s3.put_object().bucket(VIRTUAL_BUCKET).key(k).body(ByteStream::from_static(b"{}")).send().await.unwrap();
    }
    let shards: std::collections::BTreeSet<_> = keys.iter().map(|k| h.owner(k)).collect();
    assert_eq!(shards.len(), 3, "the batch should span every shard");
    let mut objects: Vec<_> = keys.iter().map(|k| ObjectIdentifier::builder().key(k).build().unwrap()).collect();
    objects.push(ObjectIdentifier::builder().key("tenant/never/existed").build().unwrap());
    let out = s3.delete_objects().bucket(VIRTUAL_BUCKET).delete(Delete::builder().set_objects(Some(objects)).build().unwrap()).send().await.unwrap();
    let deleted: Vec<_> = out.deleted().iter().filter_map(|d| d.key()).collect();
    let mut expected: Vec<&str> = keys.iter().map(String::as_str).collect();
    expected.push("tenant/never/existed");
    assert_eq!(deleted, expected, "Deleted entries follow request order");
    assert!(out.errors().is_empty());
    for k in &keys {
        assert!(h.holders(k).await.is_empty(), "{k} still stored");
    }
    // Quiet mode reports only errors.
    let quiet = s3
        .delete_objects()
        .bucket(VIRTUAL_BUCKET)
        .delete(Delete::builder().quiet(true).objects(ObjectIdentifier::builder().key("a/b/c").build().unwrap()).build().unwrap())
        .send()
        .await
        .unwrap();
    assert!(quiet.deleted().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_backend_fails_batch_deletes_and_writes() {
    let h = Harness::start(&SHARDS).await;
    let s3 = h.client();
    s3.put_object().bucket(VIRTUAL_BUCKET).key("t/b/k").body(ByteStream::from_static(b"v")).send().await.unwrap();
    h.backend.set_failing(true);
    let err = s3
        .delete_objects()
        .bucket(VIRTUAL_BUCKET)
        .delete(Delete::builder().objects(ObjectIdentifier::builder().key("t/b/k").build().unwrap()).build().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(err), "InternalError");
    let err = s3.put_object().bucket(VIRTUAL_BUCKET).key("t/b/new").body(ByteStream::from_static(b"v")).send().await.unwrap_err();
    assert_eq!(code(err), "InternalError");
    h.backend.set_failing(false);
    assert_eq!(h.holders("t/b/k").await.len(), 1);
    assert!(h.holders("t/b/new").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_multipart_and_ranged_reads_stream_with_flat_component_memory() {
    let h = Harness::start(&SHARDS).await;
    let s3 = h.client();
    let key = "tenant/huge-block/data";
    const PART: usize = 64 * 1024 * 1024;
    const PARTS: usize = 16;
    let created = s3.create_multipart_upload().bucket(VIRTUAL_BUCKET).key(key).send().await.unwrap();
    let id = created.upload_id().unwrap();
    let mut parts = vec![];
    for n in 1..=PARTS {
        let up = s3.upload_part().bucket(VIRTUAL_BUCKET).key(key).upload_id(id).part_number(n as i32).body(ByteStream::from(vec![n as u8; PART])).send().await.unwrap();
        parts.push(CompletedPart::builder().part_number(n as i32).e_tag(up.e_tag().unwrap()).build());
    }
    s3.complete_multipart_upload().bucket(VIRTUAL_BUCKET).key(key).upload_id(id).multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build()).send().await.unwrap();
    let head = s3.head_object().bucket(VIRTUAL_BUCKET).key(key).send().await.unwrap();
    assert_eq!(head.content_length(), Some((PART * PARTS) as i64));
    for n in [1usize, 7, 16] {
        let start = (n - 1) * PART + PART / 2;
        let got = s3.get_object().bucket(VIRTUAL_BUCKET).key(key).range(format!("bytes={start}-{}", start + 1_048_575)).send().await.unwrap();
        let bytes = got.body.collect().await.unwrap().into_bytes();
        assert_eq!(bytes.len(), 1_048_576);
        assert!(bytes.iter().all(|b| *b == n as u8), "part {n}");
    }
    let peak = h.stats.peak_memory.load(std::sync::atomic::Ordering::Relaxed);
    assert!(peak < 64 * 1024 * 1024, "component linear memory peaked at {peak} bytes");
    eprintln!("1 GiB multipart: component linear memory peak {} KiB", peak / 1024);
}

/// A multipart upload started with a checksum algorithm: S3 refuses a part without its checksum
/// ("Checksum Type mismatch") and a completion without each part's. The SDK sends a streamed part's
/// CRC32 in a trailer; the proxy frames the part again so the trailer reaches the backend. Checked
/// on the wire at s3s-fs (which ignores part checksums) and end to end on moto (which records
/// them, though it would compute a missing one itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checksummed_multipart_upload_keeps_every_parts_trailing_checksum() {
    let h = Harness::start(&SHARDS).await;
    checksummed_multipart(&h, "tenant/block/checksummed-multipart").await;
    let recorded = h.backend_requests.lock().unwrap().clone();
    let parts: Vec<_> = recorded.iter().filter(|r| r.method == "PUT" && r.header("x-amz-decoded-content-length").is_some()).collect();
    assert_eq!(parts.len(), 2, "both parts went out framed again: {recorded:?}");
    for part in parts {
        assert_eq!(part.header("x-amz-content-sha256"), Some("STREAMING-UNSIGNED-PAYLOAD-TRAILER"));
        assert_eq!(part.header("x-amz-trailer"), Some("x-amz-checksum-crc32"));
    }
    let moto = Harness::start_moto(&SHARDS, &[]).await;
    checksummed_multipart(&moto, "tenant/block/checksummed-multipart").await;
}

/// Upload `key` in two streamed parts with CRC32 checksums and complete it with them.
async fn checksummed_multipart(h: &Harness, key: &str) {
    use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
    let s3 = h.client();
    let dir = common::temp_dir("checksummed-multipart");
    let created = s3.create_multipart_upload().bucket(VIRTUAL_BUCKET).key(key).checksum_algorithm(ChecksumAlgorithm::Crc32).send().await.unwrap();
    let upload = created.upload_id().unwrap();
    let (mut parts, mut whole) = (Vec::new(), Vec::new());
    for (number, size) in [(1, 5 << 20), (2, 2 << 20)] {
        let file = dir.join(format!("part-{number}"));
        let bytes = data(size, number as u8);
        std::fs::write(&file, &bytes).unwrap();
        whole.extend_from_slice(&bytes);
        let body = ByteStream::from_path(&file).await.unwrap();
        let part = s3.upload_part().bucket(VIRTUAL_BUCKET).key(key).upload_id(upload).part_number(number).checksum_algorithm(ChecksumAlgorithm::Crc32).body(body).send().await.unwrap();
        let mut crc = tempo_s3_shard_core::checksum::Checksummer::new(tempo_s3_shard_core::checksum::ChecksumAlgorithm::Crc32);
        crc.update(&bytes);
        parts.push(CompletedPart::builder().part_number(number).e_tag(part.e_tag().unwrap()).checksum_crc32(crc.finish_base64()).build());
    }
    let completed = CompletedMultipartUpload::builder().set_parts(Some(parts)).build();
    s3.complete_multipart_upload().bucket(VIRTUAL_BUCKET).key(key).upload_id(upload).multipart_upload(completed).send().await.unwrap();
    let got = s3.get_object().bucket(VIRTUAL_BUCKET).key(key).checksum_mode(ChecksumMode::Enabled).send().await.unwrap();
    assert_eq!(got.content_encoding(), None, "aws-chunked is framing, not the object's encoding");
    assert!(got.body.collect().await.unwrap().into_bytes().as_ref() == &whole[..], "the object is its parts");
}

/// Conditional requests and tagging, which s3s-fs does not implement, against a moto backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditionals_and_tagging_pass_through() {
    let h = Harness::start_moto(&SHARDS, &[]).await;
    let s3 = h.client();
    let (key, far) = keys_on_two_shards(&h);
    let put = s3
        .put_object()
        .bucket(VIRTUAL_BUCKET)
        .key(&key)
        .tagging("team=traces&tier=hot")
        .body(ByteStream::from(data(1000, 1)))
        .send()
        .await
        .unwrap();
    let etag = put.e_tag().unwrap().to_string();

    let err = s3.get_object().bucket(VIRTUAL_BUCKET).key(&key).if_none_match(&etag).send().await.unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(304));
    let err = s3.get_object().bucket(VIRTUAL_BUCKET).key(&key).if_match("\"0000\"").send().await.unwrap_err();
    assert_eq!(code(err), "PreconditionFailed");
    s3.get_object().bucket(VIRTUAL_BUCKET).key(&key).if_match(&etag).send().await.unwrap();

    // Conditional write: If-None-Match: * refuses to overwrite.
    let err = s3.put_object().bucket(VIRTUAL_BUCKET).key(&key).if_none_match("*").body(ByteStream::from_static(b"x")).send().await.unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(412));

    let tags = s3.get_object_tagging().bucket(VIRTUAL_BUCKET).key(&key).send().await.unwrap();
    let mut got: Vec<_> = tags.tag_set().iter().map(|t| format!("{}={}", t.key(), t.value())).collect();
    got.sort();
    assert_eq!(got, vec!["team=traces", "tier=hot"]);
    let tagging = aws_sdk_s3::types::Tagging::builder()
        .tag_set(aws_sdk_s3::types::Tag::builder().key("a b").value("c=d e").build().unwrap())
        .build()
        .unwrap();
    s3.put_object_tagging().bucket(VIRTUAL_BUCKET).key(&key).tagging(tagging).send().await.unwrap();
    let tags = s3.get_object_tagging().bucket(VIRTUAL_BUCKET).key(&key).send().await.unwrap();
    assert_eq!(tags.tag_set().len(), 1);
    assert_eq!((tags.tag_set()[0].key(), tags.tag_set()[0].value()), ("a b", "c=d e"));
    // Tags are stored on the owning shard only.
    let direct = h.direct().get_object_tagging().bucket(h.owner(&key)).key(&key).send().await.unwrap();
    assert_eq!(direct.tag_set().len(), 1);

    // A cross-shard copy keeps the source's tags (tagging directive COPY) and honours source conditions.
    s3.copy_object().bucket(VIRTUAL_BUCKET).key(&far).copy_source(format!("{VIRTUAL_BUCKET}/{key}")).send().await.unwrap();
    let tags = s3.get_object_tagging().bucket(VIRTUAL_BUCKET).key(&far).send().await.unwrap();
    assert_eq!(tags.tag_set().len(), 1, "tags copied across shards");
    let err = s3.copy_object().bucket(VIRTUAL_BUCKET).key(&far).copy_source(format!("{VIRTUAL_BUCKET}/{key}")).copy_source_if_match("\"nope\"").send().await.unwrap_err();
    assert_eq!(code(err), "PreconditionFailed");

    s3.delete_object_tagging().bucket(VIRTUAL_BUCKET).key(&key).send().await.unwrap();
    let tags = s3.get_object_tagging().bucket(VIRTUAL_BUCKET).key(&key).send().await.unwrap();
    assert!(tags.tag_set().is_empty());
}

/// `max_body_bytes` (a platform's body cap, e.g. Akamai Functions' 10 MiB): an over-cap PUT gets
/// S3's EntityTooLarge naming the limit, before any backend sees it; parts under the cap go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_max_body_bytes_are_entity_too_large() {
    let h = Harness::start_with(&SHARDS, &[("max_body_bytes", "1048576")]).await;
    let s3 = h.client();
    let key = "tenant/block-cap/data.parquet";
    let err = s3.put_object().bucket(VIRTUAL_BUCKET).key(key).body(ByteStream::from(data(1024 * 1024 + 1, 1))).send().await.unwrap_err();
    let service = err.into_service_error();
    assert_eq!(service.code(), Some("EntityTooLarge"));
    assert!(service.message().is_some_and(|m| m.contains("1048576 bytes") && m.contains("max_body_bytes")), "{service:?}");
    assert!(h.holders(key).await.is_empty(), "nothing stored");
    s3.put_object().bucket(VIRTUAL_BUCKET).key(key).body(ByteStream::from(data(1024 * 1024, 2))).send().await.expect("exactly the cap");
}

/// SSE-C over plain HTTP is refused as S3 refuses it; behind a TLS terminator it is admitted only
/// when `trust_forwarded_proto` says the terminator's `X-Forwarded-Proto` counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_keys_need_tls_or_a_trusted_terminator() {
    let anonymous = [("client_credentials", ""), ("allow_anonymous", "true")];
    let put = |forwarded: &str| {
        format!(
            "PUT /{VIRTUAL_BUCKET}/tenant/block-c/meta.json HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n{forwarded}\
             x-amz-server-side-encryption-customer-algorithm: AES256\r\n\
             x-amz-server-side-encryption-customer-key: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\r\n\
             x-amz-server-side-encryption-customer-key-md5: zrDjHNM1A2KRvNy0CGuDBg==\r\nConnection: close\r\n\r\n{{}}"
        )
    };
    let untrusted = Harness::start_with(&SHARDS, &anonymous).await;
    for forwarded in ["", "X-Forwarded-Proto: https\r\n"] {
        let r = untrusted.raw(put(forwarded).as_bytes()).await;
        assert_eq!((r.status, r.error_code()), (400, Some("InvalidRequest")), "{forwarded:?}: {r:?}");
        assert!(r.body.contains("must be made over a secure connection"), "{}", r.body);
    }
    assert!(untrusted.backend_requests.lock().unwrap().iter().all(|r| r.header("x-amz-server-side-encryption-customer-key").is_none()));

    let mut vars = anonymous.to_vec();
    vars.push(("trust_forwarded_proto", "true"));
    let trusted = Harness::start_with(&SHARDS, &vars).await;
    assert_eq!(trusted.raw(put("").as_bytes()).await.status, 400, "no header: plain HTTP");
    let r = trusted.raw(put("X-Forwarded-Proto: https\r\n").as_bytes()).await;
    assert_eq!(r.status, 200, "{r:?}");
    let sent = trusted.backend_requests.lock().unwrap().iter().any(|r| r.method == "PUT" && r.header("x-amz-server-side-encryption-customer-key").is_some());
    assert!(sent, "the backend received the customer key");
}
