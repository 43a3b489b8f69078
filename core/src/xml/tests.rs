//! Tests of the XML writers and readers: documents, round trips, real S3 answers and garbage.

use super::*;
use crate::error::{ErrorCode, S3Error};
use crate::types::*;
use read::parse_tree;
use write::NS;

fn output(encoding_url: bool) -> ListOutput {
    ListOutput {
        v2: true,
        name: "vb".into(),
        prefix: "a b/".into(),
        delimiter: Some("/".into()),
        max_keys: 2,
        encoding_url,
        is_truncated: true,
        marker: None,
        next_marker: Some("a b/z+/".into()),
        start_after: Some("a b/0".into()),
        continuation_token: Some("tok".into()),
        next_continuation_token: Some("next".into()),
        contents: vec![ObjectEntry {
            key: "a b/x&y+\u{1}é".into(),
            last_modified: "2024-01-01T00:00:00.000Z".into(),
            etag: "\"abc\"".into(),
            size: 7,
            storage_class: "STANDARD".into(),
            owner: Some(Owner { id: "o".into(), display_name: "d".into() }),
        }],
        common_prefixes: vec!["a b/z+/".into()],
    }
}

#[test]
fn error_document() {
    let err = S3Error::new(ErrorCode::NoSuchKey, "no <such> key").with_resource("/vb/a&b");
    let x = error(&err, "r1");
    assert_eq!(
        x,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code><Message>no &lt;such&gt; key</Message><Resource>/vb/a&amp;b</Resource><RequestId>r1</RequestId></Error>"
    );
    assert_eq!(parse_error(x.as_bytes()), Some(("NoSuchKey".into(), "no <such> key".into())));
    let no_resource = error(&S3Error::internal("x"), "r");
    assert!(!no_resource.contains("Resource"));
    assert_eq!(parse_error(b"<ListBucketResult/>"), None);
    assert_eq!(parse_error(b"not xml"), None);
    assert_eq!(parse_error(b""), None);
    assert_eq!(parse_error(b"<Error><Code></Code></Error>"), None);
}

#[test]
fn bucket_documents() {
    let x = list_all_my_buckets("vb", "2024-01-01T00:00:00.000Z", "me");
    assert!(x.contains("<Buckets><Bucket><Name>vb</Name><CreationDate>2024-01-01T00:00:00.000Z</CreationDate></Bucket></Buckets>"));
    assert!(x.contains(NS));
    assert!(location_constraint("us-east-1")
        .ends_with("<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>"));
    assert!(location_constraint("eu-west-1").ends_with(">eu-west-1</LocationConstraint>"));
    assert!(create_bucket_configuration("eu-west-1")
        .contains("<LocationConstraint>eu-west-1</LocationConstraint>"));
    for doc in [x, location_constraint("us-east-1"), create_bucket_configuration("x")] {
        assert!(parse_tree(doc.as_bytes()).is_some());
    }
}

#[test]
fn list_v2_round_trips_through_the_reader() {
    for url in [false, true] {
        let out = output(url);
        let x = list_objects_v2(&out);
        assert!(x.contains("<KeyCount>2</KeyCount>"));
        assert!(x.contains("<NextContinuationToken>next</NextContinuationToken>"));
        assert!(!x.contains("NextMarker"));
        assert_eq!(x.contains("<EncodingType>url</EncodingType>"), url);
        if url {
            assert!(x.contains("<Prefix>a%20b/</Prefix>"));
            assert!(x.contains("<StartAfter>a%20b/0</StartAfter>"));
            assert!(x.contains("<Key>a%20b/x%26y%2B%01%C3%A9</Key>"));
        } else {
            assert!(x.contains("<Key>a b/x&amp;y+&#1;é</Key>"));
        }
        let page = parse_list_objects(x.as_bytes()).unwrap();
        assert_eq!(page.objects, out.contents);
        assert_eq!(page.common_prefixes, out.common_prefixes);
        assert!(page.is_truncated);
        assert_eq!(page.next_continuation_token.as_deref(), Some("next"));
        assert_eq!(page.encoding_type_url, url);
    }
}

#[test]
fn list_v1_shape() {
    let mut out = output(true);
    let x = list_objects_v1(&out);
    assert!(x.contains("<Marker></Marker>"));
    assert!(x.contains("<NextMarker>a%20b/z%2B/</NextMarker>"));
    assert!(!x.contains("KeyCount") && !x.contains("ContinuationToken") && !x.contains("StartAfter"));
    let page = parse_list_objects(x.as_bytes()).unwrap();
    assert_eq!(page.next_marker.as_deref(), Some("a b/z+/"));
    out.encoding_url = false;
    out.marker = Some("m&".into());
    assert!(list_objects_v1(&out).contains("<Marker>m&amp;</Marker>"));
}

#[test]
fn reads_real_s3_listing() {
    let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix></Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>
  <EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents><Key>my+key%0D%0A</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>
<ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size>
<StorageClass>STANDARD</StorageClass></Contents>
  <CommonPrefixes><Prefix>photos%2F2006/</Prefix></CommonPrefixes>
</ListBucketResult>"#;
    let page = parse_list_objects(body).unwrap();
    assert_eq!(page.objects.len(), 1);
    assert_eq!(page.objects[0].key, "my key\r\n");
    assert_eq!(page.objects[0].etag, "\"fba9dede5f27731c9771645a39863328\"");
    assert_eq!(page.objects[0].size, 434234);
    assert_eq!(page.objects[0].owner, None);
    assert_eq!(page.common_prefixes, vec!["photos/2006/".to_string()]);
    assert_eq!(
        page.next_continuation_token.as_deref(),
        Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
    );
    // Without encoding: entities and character references, CDATA, prefixed names.
    let body = b"<s3:ListBucketResult xmlns:s3='x'><s3:Contents><s3:Key>a&amp;&#x9;&#13;<![CDATA[<b>]]></s3:Key></s3:Contents><s3:IsTruncated>false</s3:IsTruncated></s3:ListBucketResult>";
    let page = parse_list_objects(body).unwrap();
    assert_eq!(page.objects[0].key, "a&\t\r<b>");
    assert_eq!(page.objects[0].storage_class, "STANDARD");
    assert!(!page.is_truncated);
}

#[test]
fn malformed_listings_are_internal_errors() {
    let bad: &[&[u8]] = &[
        b"",
        b"<ListBucketResult>",
        b"<ListBucketResult></Other>",
        b"<Error><Code>x</Code></Error>",
        b"<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
        b"<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
        b"<ListBucketResult><IsTruncated>maybe</IsTruncated></ListBucketResult>",
        b"<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>%zz</Key></Contents></ListBucketResult>",
        b"<ListBucketResult><Contents><Key>&bogus;</Key></Contents></ListBucketResult>",
        b"<ListBucketResult><Contents><Key>&#0;</Key></Contents></ListBucketResult>",
        b"<ListBucketResult/><ListBucketResult/>",
        b"<ListBucketResult>\xff</ListBucketResult>",
    ];
    for body in bad {
        let err = parse_list_objects(body).unwrap_err();
        assert_eq!(err.code, ErrorCode::InternalError, "{:?}", String::from_utf8_lossy(body));
    }
    let deep = "<a>".repeat(100_000);
    assert!(parse_list_objects(deep.as_bytes()).is_err());
    let deep = format!("{}{}", "<a>".repeat(40), "</a>".repeat(40));
    assert!(parse_list_objects(deep.as_bytes()).is_err());
}

#[test]
fn delete_objects_request() {
    let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Quiet>true</Quiet>
  <Object><Key> spaced key </Key></Object>
  <Object><Key>v</Key><VersionId>123</VersionId></Object>
</Delete>"#;
    let req = parse_delete_objects(body).unwrap();
    assert!(req.quiet);
    assert_eq!(
        req.objects,
        vec![
            ObjectIdentifier { key: " spaced key ".into(), ..Default::default() },
            ObjectIdentifier { key: "v".into(), version_id: Some("123".into()), ..Default::default() },
        ]
    );
    let sent = delete_objects_body(&req.objects, true);
    assert_eq!(parse_delete_objects(sent.as_bytes()).unwrap(), req);
    let not_quiet = parse_delete_objects(delete_objects_body(&req.objects, false).as_bytes()).unwrap();
    assert!(!not_quiet.quiet);

    let many: String = (0..1001).map(|i| format!("<Object><Key>{i}</Key></Object>")).collect();
    let ok: String = (0..1000).map(|i| format!("<Object><Key>{i}</Key></Object>")).collect();
    assert_eq!(
        parse_delete_objects(format!("<Delete>{ok}</Delete>").as_bytes()).unwrap().objects.len(),
        1000
    );
    let bad = [
        "".to_string(),
        "<Delete></Delete>".into(),
        "<Delete><Quiet>true</Quiet></Delete>".into(),
        format!("<Delete>{many}</Delete>"),
        "<Delete><Object><VersionId>1</VersionId></Object></Delete>".into(),
        "<Delete><Quiet>yes</Quiet><Object><Key>a</Key></Object></Delete>".into(),
        "<Remove><Object><Key>a</Key></Object></Remove>".into(),
        "<Delete><Object><Key>a</Key></Object>".into(),
    ];
    for body in bad {
        assert_eq!(
            parse_delete_objects(body.as_bytes()).unwrap_err().code,
            ErrorCode::MalformedXML,
            "{body}"
        );
    }
}

#[test]
fn delete_result_round_trips() {
    let deleted = vec![
        DeletedEntry { key: "a<".into(), ..Default::default() },
        DeletedEntry {
            key: "b".into(),
            version_id: Some("v".into()),
            delete_marker: true,
            delete_marker_version_id: Some("m".into()),
        },
    ];
    let errors = vec![DeleteErrorEntry {
        key: "c".into(),
        version_id: None,
        code: "AccessDenied".into(),
        message: "Access Denied".into(),
    }];
    let x = delete_result(&deleted, &errors, false);
    assert_eq!(parse_delete_result(x.as_bytes()).unwrap(), (deleted.clone(), errors.clone()));
    let q = delete_result(&deleted, &errors, true);
    assert!(!q.contains("<Deleted>"));
    assert_eq!(parse_delete_result(q.as_bytes()).unwrap(), (vec![], errors));
    assert!(parse_delete_result(b"<Error/>").is_err());
    assert!(parse_delete_result(b"<DeleteResult><Deleted/></DeleteResult>").is_err());
}

#[test]
fn tagging_documents() {
    let doc = br#"<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet><Tag><Key>a b</Key><Value>1&amp;2</Value></Tag><Tag><Key>c</Key><Value></Value></Tag></TagSet></Tagging>"#;
    let tags = parse_tagging(doc).unwrap();
    assert_eq!(tags, vec![("a b".to_string(), "1&2".to_string()), ("c".to_string(), String::new())]);
    assert_eq!(tagging_header(&tags), "a%20b=1%262&c=");
    assert_eq!(parse_tagging(b"<Tagging>").unwrap_err().code, ErrorCode::MalformedXML);
}

#[test]
fn complete_multipart() {
    let body = br#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Part><PartNumber>1</PartNumber><ETag>"a"</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>
  <Part><ETag>&quot;b&quot;</ETag><PartNumber> 3 </PartNumber></Part>
</CompleteMultipartUpload>"#;
    let parts = parse_complete_multipart(body).unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].etag, "\"a\"");
    assert_eq!(parts[0].checksum_crc32.as_deref(), Some("AAAAAA=="));
    assert_eq!(parts[1].part_number, 3);
    assert_eq!(parse_complete_multipart(complete_multipart_body(&parts).as_bytes()).unwrap(), parts);
    let order = b"<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>a</ETag></Part><Part><PartNumber>1</PartNumber><ETag>b</ETag></Part></CompleteMultipartUpload>";
    assert_eq!(parse_complete_multipart(order).unwrap_err().code, ErrorCode::InvalidPartOrder);
    let range = b"<CompleteMultipartUpload><Part><PartNumber>0</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>";
    assert_eq!(parse_complete_multipart(range).unwrap_err().code, ErrorCode::InvalidArgument);
    for bad in [
        &b"<CompleteMultipartUpload/>"[..],
        b"<CompleteMultipartUpload><Part><ETag>a</ETag></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>",
        b"<Other/>",
    ] {
        assert_eq!(parse_complete_multipart(bad).unwrap_err().code, ErrorCode::MalformedXML);
    }
}

#[test]
fn readers_never_panic_on_garbage() {
    let mut seed = 0x9e3779b97f4a7c15u64;
    let pieces: &[&[u8]] = &[
        b"<",
        b">",
        b"</",
        b"/>",
        b"&",
        b";",
        b"#",
        b"x",
        b"Key",
        b"Delete",
        b"Object",
        b"ListBucketResult",
        b"Contents",
        b"<![CDATA[",
        b"]]>",
        b"<!--",
        b"-->",
        b"<?",
        b"?>",
        b"\xff",
        b"%",
        b"\"",
        b"=",
        b" ",
        b"&#",
        b"&amp;",
        b"<!DOCTYPE",
        b"Error",
        b"Code",
    ];
    for _ in 0..5000 {
        let mut body = Vec::new();
        for _ in 0..(seed % 20) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            body.extend_from_slice(pieces[(seed % pieces.len() as u64) as usize]);
        }
        let _ = parse_error(&body);
        let _ = parse_list_objects(&body);
        let _ = parse_delete_objects(&body);
        let _ = parse_delete_result(&body);
        let _ = parse_complete_multipart(&body);
    }
}
