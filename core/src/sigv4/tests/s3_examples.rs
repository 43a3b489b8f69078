//! The signing examples of the S3 documentation (AKIAIOSFODNN7EXAMPLE, 20130524, us-east-1), verified end to end.

use super::*;


const S3_AK: &str = "AKIAIOSFODNN7EXAMPLE";
const S3_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const S3_NOW: u64 = 1_369_353_600; // 20130524T000000Z

fn s3_lookup(ak: &str) -> Option<String> {
    (ak == S3_AK).then(|| S3_SECRET.to_string())
}

fn s3_auth(signed_headers: &str, signature: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={S3_AK}/20130524/us-east-1/s3/aws4_request,SignedHeaders={signed_headers},Signature={signature}"
    )
}

#[test]
fn s3_example_get_object_with_range() {
    let mut headers = owned(&[
        ("Host", "examplebucket.s3.amazonaws.com"),
        ("Range", "bytes=0-9"),
        ("x-amz-content-sha256", EMPTY_SHA256),
        ("x-amz-date", "20130524T000000Z"),
    ]);
    let req = SignRequest {
        method: "GET",
        canonical_uri: "/test.txt",
        query: &[],
        headers: &headers,
        payload_hash: EMPTY_SHA256,
        access_key_id: S3_AK,
        secret_access_key: S3_SECRET,
        region: "us-east-1",
        service: "s3",
        amz_date: "20130524T000000Z",
    };
    assert_eq!(
        string_to_sign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request", &canonical_request(&req)),
        "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
    );
    let sig = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
    assert_eq!(signature(&req), sig);
    let auth = s3_auth("host;range;x-amz-content-sha256;x-amz-date", sig);
    headers.push(("Authorization".into(), auth));
    let v = verify(
        &inbound("GET", "/test.txt", "", &headers),
        S3_NOW,
        &s3_lookup,
        "us-east-1",
    )
    .unwrap();
    assert_eq!(
        v,
        Verified::Signed {
            access_key_id: S3_AK.into(),
            payload: PayloadMode::Sha256(EMPTY_SHA256.into())
        }
    );
    // Tampering with any signed part fails.
    let e = verify(
        &inbound("GET", "/test2.txt", "", &headers),
        S3_NOW,
        &s3_lookup,
        "us-east-1",
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
    let e = verify(
        &inbound("HEAD", "/test.txt", "", &headers),
        S3_NOW,
        &s3_lookup,
        "us-east-1",
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
    let e = verify(
        &inbound("GET", "/test.txt", "x=1", &headers),
        S3_NOW,
        &s3_lookup,
        "us-east-1",
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
    let mut tampered = headers.clone();
    tampered[1].1 = "bytes=0-10".into();
    let e = verify(
        &inbound("GET", "/test.txt", "", &tampered),
        S3_NOW,
        &s3_lookup,
        "us-east-1",
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
    // Region and skew.
    let e = verify(
        &inbound("GET", "/test.txt", "", &headers),
        S3_NOW,
        &s3_lookup,
        "eu-west-1",
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::AuthorizationHeaderMalformed);
    assert!(e.message.contains("expecting 'eu-west-1'"), "{}", e.message);
    let e = verify(
        &inbound("GET", "/test.txt", "", &headers),
        S3_NOW + 901,
        &s3_lookup,
        "us-east-1",
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::RequestTimeTooSkewed);
    assert!(verify(
        &inbound("GET", "/test.txt", "", &headers),
        S3_NOW - 900,
        &s3_lookup,
        "us-east-1"
    )
    .is_ok());
    let e = verify(
        &inbound("GET", "/test.txt", "", &headers),
        S3_NOW,
        &|_| None,
        "us-east-1",
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidAccessKeyId);
}

#[test]
fn s3_example_put_object_with_date_header() {
    let body_hash = sha256_hex(b"Welcome to Amazon S3.");
    assert_eq!(
        body_hash,
        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
    );
    let mut headers = owned(&[
        ("Host", "examplebucket.s3.amazonaws.com"),
        ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("x-amz-content-sha256", &body_hash),
    ]);
    let sig = "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd";
    headers.push((
        "Authorization".into(),
        s3_auth(
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
            sig,
        ),
    ));
    for path in ["/test%24file.text", "/test$file.text"] {
        let v = verify(
            &inbound("PUT", path, "", &headers),
            S3_NOW,
            &s3_lookup,
            "us-east-1",
        )
        .unwrap();
        assert_eq!(
            v,
            Verified::Signed {
                access_key_id: S3_AK.into(),
                payload: PayloadMode::Sha256(body_hash.clone())
            }
        );
    }
}

#[test]
fn s3_example_bucket_queries() {
    let headers = |sig: &str| {
        let mut h = owned(&[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
        ]);
        h.push((
            "authorization".into(),
            s3_auth("host;x-amz-content-sha256;x-amz-date", sig),
        ));
        h
    };
    let lifecycle = headers("fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
    for q in ["lifecycle", "lifecycle="] {
        assert!(
            verify(
                &inbound("GET", "/", q, &lifecycle),
                S3_NOW,
                &s3_lookup,
                "us-east-1"
            )
            .is_ok(),
            "{q}"
        );
    }
    let list = headers("34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
    for q in ["max-keys=2&prefix=J", "prefix=J&max-keys=2"] {
        assert!(
            verify(
                &inbound("GET", "/", q, &list),
                S3_NOW,
                &s3_lookup,
                "us-east-1"
            )
            .is_ok(),
            "{q}"
        );
    }
}

const PRESIGNED_QUERY: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

#[test]
fn s3_example_presigned_url() {
    let headers = owned(&[("Host", "examplebucket.s3.amazonaws.com")]);
    let ok = |now| {
        verify(
            &inbound("GET", "/test.txt", PRESIGNED_QUERY, &headers),
            now,
            &s3_lookup,
            "us-east-1",
        )
    };
    let want = Verified::Signed {
        access_key_id: S3_AK.into(),
        payload: PayloadMode::Unsigned,
    };
    assert_eq!(ok(S3_NOW).unwrap(), want);
    assert_eq!(ok(S3_NOW + 86_400).unwrap(), want);
    let e = ok(S3_NOW + 86_401).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (ErrorCode::AccessDenied, "Request has expired")
    );
    assert_eq!(ok(S3_NOW - 901).unwrap_err().code, ErrorCode::AccessDenied);
    let e = verify(
        &inbound("GET", "/test.txt", PRESIGNED_QUERY, &headers),
        S3_NOW,
        &s3_lookup,
        "us-west-2",
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::AuthorizationQueryParametersError);
    assert!(e.message.contains("expecting 'us-west-2'"));
    let e = verify(
        &inbound("GET", "/test.txt", PRESIGNED_QUERY, &headers),
        S3_NOW,
        &|_| None,
        "us-east-1",
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidAccessKeyId);
    let extra = format!("{PRESIGNED_QUERY}&x-id=GetObject");
    let e = verify(
        &inbound("GET", "/test.txt", &extra, &headers),
        S3_NOW,
        &s3_lookup,
        "us-east-1",
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
    let other_host = owned(&[("Host", "evil.example.com")]);
    let e = verify(
        &inbound("GET", "/test.txt", PRESIGNED_QUERY, &other_host),
        S3_NOW,
        &s3_lookup,
        "us-east-1",
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
}

#[test]
fn presigned_parameter_errors() {
    let headers = owned(&[("Host", "examplebucket.s3.amazonaws.com")]);
    let check = |query: String| {
        verify(
            &inbound("GET", "/test.txt", &query, &headers),
            S3_NOW,
            &s3_lookup,
            "us-east-1",
        )
        .unwrap_err()
        .code
    };
    for (from, to) in [
        ("X-Amz-Expires=86400", "X-Amz-Expires=0"),
        ("X-Amz-Expires=86400", "X-Amz-Expires=604801"),
        ("X-Amz-Expires=86400", "X-Amz-Expires=-1"),
        ("X-Amz-Expires=86400&", ""),
        (
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Algorithm=AWS4-HMAC-SHA1",
        ),
        ("X-Amz-Algorithm=AWS4-HMAC-SHA256&", ""),
        ("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=x-amz-date"),
        ("X-Amz-Date=20130524T000000Z", "X-Amz-Date=20130524"),
        ("X-Amz-Date=20130524T000000Z", "X-Amz-Date=20130525T000000Z"),
        ("%2Fs3%2F", "%2Fec2%2F"),
        ("%2Faws4_request", "%2Faws5_request"),
        ("X-Amz-Signature=aeeed9bb", "X-Amz-Signature=AEEED9BB"),
    ] {
        assert!(PRESIGNED_QUERY.contains(from));
        assert_eq!(
            check(PRESIGNED_QUERY.replacen(from, to, 1)),
            ErrorCode::AuthorizationQueryParametersError,
            "{to}"
        );
    }
    let both = owned(&[
        ("Host", "examplebucket.s3.amazonaws.com"),
        ("Authorization", "AWS4-HMAC-SHA256 x"),
    ]);
    let e = verify(
        &inbound("GET", "/test.txt", PRESIGNED_QUERY, &both),
        S3_NOW,
        &s3_lookup,
        "us-east-1",
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    let v2 = verify(
        &inbound(
            "GET",
            "/t",
            "AWSAccessKeyId=A&Expires=1&Signature=x",
            &headers,
        ),
        0,
        &s3_lookup,
        "us-east-1",
    );
    assert_eq!(v2.unwrap_err().code, ErrorCode::InvalidRequest);
}

const CHUNKED_SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";

fn chunked_example_headers(content_sha256: &str) -> Vec<(String, String)> {
    let mut h = owned(&[
        ("Host", "s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("x-amz-content-sha256", content_sha256),
        ("Content-Encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
        ("Content-Length", "66824"),
    ]);
    h.push((
        "Authorization".into(),
        s3_auth(
            "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
            CHUNKED_SEED,
        ),
    ));
    h
}

#[test]
fn s3_example_chunked_upload_seed_and_chunk_signatures() {
    let headers = chunked_example_headers(STREAMING_SIGNED);
    let v = verify(
        &inbound("PUT", "/examplebucket/chunkObject.txt", "", &headers),
        S3_NOW,
        &s3_lookup,
        "us-east-1",
    )
    .unwrap();
    let Verified::Signed {
        payload: PayloadMode::StreamingSigned(mut signer),
        ..
    } = v
    else {
        panic!("expected a streaming signer, got {v:?}");
    };
    assert_eq!(signer.previous_signature(), CHUNKED_SEED);
    assert_eq!(
        signer.sign_chunk(&[b'a'; 65536]),
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
    );
    assert_eq!(
        signer.sign_chunk(&[b'a'; 1024]),
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
    );
    assert_eq!(
        signer.sign_chunk(b""),
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
    );
    // Signer's Debug output never shows the key.
    assert!(!format!("{signer:?}").contains("key"));
    // The same seed over another payload mode does not verify.
    let headers = chunked_example_headers(STREAMING_SIGNED_TRAILER);
    let e = verify(
        &inbound("PUT", "/examplebucket/chunkObject.txt", "", &headers),
        S3_NOW,
        &s3_lookup,
        "us-east-1",
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
}

#[test]
fn trailer_signature_vector() {
    // aws-c-auth / aws-crt chunk signer test: trailer after the example's final chunk.
    let key = signing_key(S3_SECRET, "20130524", "us-east-1", "s3");
    let mut signer = ChunkSigner::new(
        key,
        "20130524T000000Z",
        "20130524/us-east-1/s3/aws4_request",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    );
    assert_eq!(
        signer.sign_trailer(b"first:1st\nsecond:2nd\nthird:3rd\n"),
        "df5735bd9f3295cd9386572292562fefc93ba94e80a0a1ddcbd652c4e0a75e6c"
    );
}
