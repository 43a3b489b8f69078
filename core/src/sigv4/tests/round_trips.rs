//! Round trips: requests signed like a client and verified, with tampering, presigning, dates and garbage.

use super::*;


const RT_AK: &str = "AKRT";
const RT_SECRET: &str = "secret/with+chars=";
const RT_NOW: u64 = 1_795_625_550;

fn rt_lookup(ak: &str) -> Option<String> {
    (ak == RT_AK).then(|| RT_SECRET.to_string())
}

/// Sign like a client would: encode the key into the path, sign, and return the wire form.
fn client_sign(
    method: &str,
    key: &str,
    query: &[(&str, &str)],
    payload: &str,
) -> (String, String, Vec<(String, String)>) {
    let path = format!("/bucket/{}", uri_encode(key, false));
    let query = owned(query);
    let raw_query: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", uri_encode(k, true), uri_encode(v, true)))
        .collect();
    let date = amz_date(RT_NOW);
    let mut headers = owned(&[
        ("Host", "proxy.local:9000"),
        ("x-amz-date", &date),
        ("x-amz-content-sha256", payload),
        ("x-amz-meta-note", "  two   spaces  "),
    ]);
    let req = SignRequest {
        method,
        canonical_uri: &path,
        query: &query,
        headers: &headers,
        payload_hash: payload,
        access_key_id: RT_AK,
        secret_access_key: RT_SECRET,
        region: "auto",
        service: "s3",
        amz_date: &date,
    };
    headers.push(("Authorization".into(), sign_headers(&req)));
    (path, raw_query.join("&"), headers)
}

#[test]
fn round_trip_awkward_keys_and_queries() {
    let keys = [
        "plain.txt",
        "with space",
        "plus+sign",
        "percent%25",
        "per%cent",
        "uni\u{00e9}\u{1234}\u{1F600}",
        "eq=als",
        "tilde~",
        "dou//ble",
        "./dot/../seg",
        "a?b#c&d",
        "trailing/",
        "",
    ];
    for key in keys {
        let (path, query, headers) = client_sign(
            "PUT",
            key,
            &[("prefix", "a b+c/=&%"), ("acl", ""), ("\u{00e9}", "~")],
            UNSIGNED_PAYLOAD,
        );
        let req = inbound("PUT", &path, &query, &headers);
        let v =
            verify(&req, RT_NOW, &rt_lookup, "auto").unwrap_or_else(|e| panic!("{key:?}: {e}"));
        assert_eq!(
            v,
            Verified::Signed {
                access_key_id: RT_AK.into(),
                payload: PayloadMode::Unsigned
            }
        );
        let other = format!("{path}x");
        let e = verify(
            &inbound("PUT", &other, &query, &headers),
            RT_NOW,
            &rt_lookup,
            "auto",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch, "{key:?}");
        let more = format!("{query}&z=1");
        let e = verify(
            &inbound("PUT", &path, &more, &headers),
            RT_NOW,
            &rt_lookup,
            "auto",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch, "{key:?}");
    }
}

#[test]
fn round_trip_space_as_plus_in_query() {
    let (path, _, headers) = client_sign("GET", "k", &[("prefix", "a b")], UNSIGNED_PAYLOAD);
    for raw in ["prefix=a%20b", "prefix=a+b"] {
        assert!(
            verify(
                &inbound("GET", &path, raw, &headers),
                RT_NOW,
                &rt_lookup,
                "auto"
            )
            .is_ok(),
            "{raw}"
        );
    }
    let e = verify(
        &inbound("GET", &path, "prefix=a%2Bb", &headers),
        RT_NOW,
        &rt_lookup,
        "auto",
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
}

#[test]
fn copy_source_must_be_signed() {
    let (path, query, mut headers) = client_sign("PUT", "k", &[], EMPTY_SHA256);
    headers.push(("X-Amz-Copy-Source".into(), "/bucket/secret".into()));
    let e = verify(&inbound("PUT", &path, &query, &headers), RT_NOW, &rt_lookup, "auto").unwrap_err();
    assert_eq!(e.code, ErrorCode::AccessDenied);
    assert!(e.message.contains("x-amz-copy-source"), "{}", e.message);
    headers.pop();
    headers.push(("x-amz-copy-source-range".into(), "bytes=0-1".into()));
    let e = verify(&inbound("PUT", &path, &query, &headers), RT_NOW, &rt_lookup, "auto").unwrap_err();
    assert_eq!(e.code, ErrorCode::AccessDenied);
    // Other unsigned headers are tolerated (clients leave some unsigned).
    headers.pop();
    headers.push(("x-amz-meta-extra".into(), "x".into()));
    assert!(verify(&inbound("PUT", &path, &query, &headers), RT_NOW, &rt_lookup, "auto").is_ok());
}

#[test]
fn round_trip_header_tampering_and_case() {
    let hash = sha256_hex(b"body");
    let (path, query, headers) = client_sign("PUT", "k", &[], &hash);
    let ok = verify(
        &inbound("PUT", &path, &query, &headers),
        RT_NOW,
        &rt_lookup,
        "auto",
    )
    .unwrap();
    assert_eq!(
        ok,
        Verified::Signed {
            access_key_id: RT_AK.into(),
            payload: PayloadMode::Sha256(hash.clone())
        }
    );
    // Header names in another case and re-spaced values still verify.
    let mut recased = headers.clone();
    for (n, v) in recased.iter_mut() {
        if n != "Authorization" {
            *n = n.to_ascii_uppercase();
        }
        if n.eq_ignore_ascii_case("x-amz-meta-note") {
            *v = "two spaces".into();
        }
    }
    assert!(verify(
        &inbound("PUT", &path, &query, &recased),
        RT_NOW,
        &rt_lookup,
        "auto"
    )
    .is_ok());
    // Changing a signed header, dropping it, or changing the claimed payload hash fails.
    let mut changed = headers.clone();
    changed[3].1 = "other".into();
    let e = verify(
        &inbound("PUT", &path, &query, &changed),
        RT_NOW,
        &rt_lookup,
        "auto",
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
    let mut dropped = headers.clone();
    dropped.remove(3);
    let e = verify(
        &inbound("PUT", &path, &query, &dropped),
        RT_NOW,
        &rt_lookup,
        "auto",
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
    let mut rehashed = headers.clone();
    rehashed[2].1 = sha256_hex(b"other body");
    let e = verify(
        &inbound("PUT", &path, &query, &rehashed),
        RT_NOW,
        &rt_lookup,
        "auto",
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
    // An unsigned extra header is fine.
    let mut extra = headers.clone();
    extra.push(("user-agent".into(), "x".into()));
    assert!(verify(
        &inbound("PUT", &path, &query, &extra),
        RT_NOW,
        &rt_lookup,
        "auto"
    )
    .is_ok());
    // Skew both ways.
    for now in [RT_NOW + MAX_SKEW_SECS + 1, RT_NOW - MAX_SKEW_SECS - 1] {
        let e = verify(
            &inbound("PUT", &path, &query, &headers),
            now,
            &rt_lookup,
            "auto",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::RequestTimeTooSkewed);
    }
}

#[test]
fn round_trip_presigned() {
    let date = amz_date(RT_NOW);
    let key = "dir/uni \u{1234}+%=~";
    let path = format!("/bucket/{}", uri_encode(key, false));
    let query = owned(&[
        ("X-Amz-Algorithm", ALGORITHM),
        (
            "X-Amz-Credential",
            &format!("{RT_AK}/{}/auto/s3/aws4_request", &date[..8]),
        ),
        ("X-Amz-Date", &date),
        ("X-Amz-Expires", "60"),
        ("X-Amz-SignedHeaders", "host"),
        ("response-content-type", "text/plain; a=b"),
    ]);
    let headers = owned(&[("host", "proxy.local")]);
    let presign = |payload_hash: &str| {
        let sig = signature(&SignRequest {
            method: "GET",
            canonical_uri: &path,
            query: &query,
            headers: &headers,
            payload_hash,
            access_key_id: RT_AK,
            secret_access_key: RT_SECRET,
            region: "auto",
            service: "s3",
            amz_date: &date,
        });
        let mut all = query.clone();
        all.push(("X-Amz-Signature".into(), sig));
        let raw: Vec<String> = all
            .iter()
            .map(|(k, v)| format!("{}={}", uri_encode(k, true), uri_encode(v, true)))
            .collect();
        raw.join("&")
    };
    let raw = presign(UNSIGNED_PAYLOAD);
    let v = verify(
        &inbound("GET", &path, &raw, &headers),
        RT_NOW + 60,
        &rt_lookup,
        "auto",
    )
    .unwrap();
    assert_eq!(
        v,
        Verified::Signed {
            access_key_id: RT_AK.into(),
            payload: PayloadMode::Unsigned
        }
    );
    let e = verify(
        &inbound("GET", &path, &raw, &headers),
        RT_NOW + 61,
        &rt_lookup,
        "auto",
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::AccessDenied);
    let e = verify(
        &inbound("PUT", &path, &raw, &headers),
        RT_NOW,
        &rt_lookup,
        "auto",
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
    // A claimed payload hash header switches the mode.
    let mut with_hash = headers.clone();
    with_hash.push((
        "x-amz-content-sha256".into(),
        STREAMING_UNSIGNED_TRAILER.into(),
    ));
    let e = verify(
        &inbound("GET", &path, &raw, &with_hash),
        RT_NOW,
        &rt_lookup,
        "auto",
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
    let raw = presign(STREAMING_UNSIGNED_TRAILER);
    let v = verify(
        &inbound("GET", &path, &raw, &with_hash),
        RT_NOW,
        &rt_lookup,
        "auto",
    )
    .unwrap();
    assert_eq!(
        v,
        Verified::Signed {
            access_key_id: RT_AK.into(),
            payload: PayloadMode::StreamingUnsignedTrailer
        }
    );
}

#[test]
fn anonymous_and_unauthenticated_modes() {
    let headers = owned(&[("Host", "h")]);
    assert_eq!(
        verify(
            &inbound("GET", "/b/k", "list-type=2", &headers),
            0,
            &|_| None,
            "r"
        )
        .unwrap(),
        Verified::Anonymous
    );
    assert_eq!(payload_mode_unauthenticated(None), PayloadMode::Unsigned);
    assert_eq!(
        payload_mode_unauthenticated(Some("UNSIGNED-PAYLOAD")),
        PayloadMode::Unsigned
    );
    assert_eq!(
        payload_mode_unauthenticated(Some("garbage")),
        PayloadMode::Unsigned
    );
    for s in [
        STREAMING_SIGNED,
        STREAMING_SIGNED_TRAILER,
        STREAMING_UNSIGNED_TRAILER,
    ] {
        assert_eq!(
            payload_mode_unauthenticated(Some(s)),
            PayloadMode::StreamingUnsignedTrailer
        );
    }
    assert_eq!(
        payload_mode_unauthenticated(Some(&EMPTY_SHA256.to_ascii_uppercase())),
        PayloadMode::Sha256(EMPTY_SHA256.into())
    );
}

#[test]
fn malformed_authorization_headers() {
    let date = amz_date(RT_NOW);
    let good_cred = format!("{RT_AK}/{}/auto/s3/aws4_request", &date[..8]);
    let sig = "0".repeat(64);
    let check = |auth: String| {
        let headers = owned(&[
            ("host", "h"),
            ("x-amz-date", &date),
            ("x-amz-content-sha256", UNSIGNED_PAYLOAD),
            ("authorization", &auth),
        ]);
        verify(
            &inbound("GET", "/", "", &headers),
            RT_NOW,
            &rt_lookup,
            "auto",
        )
        .unwrap_err()
        .code
    };
    use ErrorCode::*;
    let cases = [
        (format!("AWS4-HMAC-SHA256 Credential={good_cred}, SignedHeaders=host, Signature={sig}"), SignatureDoesNotMatch),
        (format!("AWS4-HMAC-SHA256 Credential={good_cred},SignedHeaders=host,Signature={sig}"), SignatureDoesNotMatch),
        (format!("AWS4-HMAC-SHA256 Credential={good_cred}, SignedHeaders=host;x-absent, Signature={sig}"), SignatureDoesNotMatch),
        ("AWS AKRT:abc=".to_string(), InvalidRequest),
        (format!("AWS4-ECDSA-P256-SHA256 Credential={good_cred}, SignedHeaders=host, Signature={sig}"), InvalidRequest),
        ("Bearer x".to_string(), InvalidArgument),
        ("Basic dXNlcjpwYXNz".to_string(), InvalidArgument),
        ("AWS4".to_string(), AuthorizationHeaderMalformed),
        ("AWS4-HMAC-SHA256".to_string(), AuthorizationHeaderMalformed),
        (format!("AWS4-HMAC-SHA256Credential={good_cred}, SignedHeaders=host, Signature={sig}"), AuthorizationHeaderMalformed),
        (format!("AWS4-HMAC-SHA256 Credential={good_cred}, Signature={sig}"), AuthorizationHeaderMalformed),
        (format!("AWS4-HMAC-SHA256 Credential={good_cred}, SignedHeaders=x-amz-date, Signature={sig}"), AuthorizationHeaderMalformed),
        (format!("AWS4-HMAC-SHA256 Credential={good_cred}, SignedHeaders=host;;x, Signature={sig}"), AuthorizationHeaderMalformed),
        (format!("AWS4-HMAC-SHA256 Credential={good_cred}, SignedHeaders=host, Signature=abc"), AuthorizationHeaderMalformed),
        (format!("AWS4-HMAC-SHA256 Credential={good_cred}, SignedHeaders=host, Signature={sig}, junk"), AuthorizationHeaderMalformed),
        (format!("AWS4-HMAC-SHA256 Credential=AKRT/{}/auto/s3, SignedHeaders=host, Signature={sig}", &date[..8]), AuthorizationHeaderMalformed),
        (format!("AWS4-HMAC-SHA256 Credential=AKRT/20000101/auto/s3/aws4_request, SignedHeaders=host, Signature={sig}"), AuthorizationHeaderMalformed),
        (format!("AWS4-HMAC-SHA256 Credential=AKRT/{}/auto/sqs/aws4_request, SignedHeaders=host, Signature={sig}", &date[..8]), AuthorizationHeaderMalformed),
        (format!("AWS4-HMAC-SHA256 Credential=AKRT/{}/us-east-1/s3/aws4_request, SignedHeaders=host, Signature={sig}", &date[..8]), AuthorizationHeaderMalformed),
        (format!("AWS4-HMAC-SHA256 Credential=NOPE/{}/auto/s3/aws4_request, SignedHeaders=host, Signature={sig}", &date[..8]), InvalidAccessKeyId),
    ];
    for (auth, code) in cases {
        assert_eq!(check(auth.clone()), code, "{auth}");
    }
}

#[test]
fn missing_or_bad_dates_and_payload_hashes() {
    let date = amz_date(RT_NOW);
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={RT_AK}/{}/auto/s3/aws4_request, SignedHeaders=host, Signature={}",
        &date[..8],
        "0".repeat(64)
    );
    let run = |extra: &[(&str, &str)]| {
        let mut headers = owned(&[("host", "h"), ("authorization", &auth)]);
        headers.extend(owned(extra));
        verify(
            &inbound("GET", "/", "", &headers),
            RT_NOW,
            &rt_lookup,
            "auto",
        )
        .unwrap_err()
        .code
    };
    assert_eq!(
        run(&[("x-amz-content-sha256", UNSIGNED_PAYLOAD)]),
        ErrorCode::AccessDenied
    );
    assert_eq!(
        run(&[
            ("x-amz-date", "nope"),
            ("x-amz-content-sha256", UNSIGNED_PAYLOAD)
        ]),
        ErrorCode::AccessDenied
    );
    assert_eq!(run(&[("x-amz-date", &date)]), ErrorCode::InvalidRequest);
    assert_eq!(
        run(&[("x-amz-date", &date), ("x-amz-content-sha256", "abc")]),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        run(&[
            ("x-amz-date", &date),
            (
                "x-amz-content-sha256",
                "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
            )
        ]),
        ErrorCode::NotImplemented
    );
    // Date header instead of x-amz-date: parsed, then the signature is checked.
    assert_eq!(
        run(&[
            ("date", "Wed, 25 Nov 2026 16:52:30 GMT"),
            ("x-amz-content-sha256", UNSIGNED_PAYLOAD)
        ]),
        ErrorCode::SignatureDoesNotMatch
    );
    // Bad path encoding in an otherwise valid request.
    let headers = owned(&[
        ("host", "h"),
        ("x-amz-date", &date),
        ("x-amz-content-sha256", UNSIGNED_PAYLOAD),
        ("authorization", &auth),
    ]);
    let e = verify(
        &inbound("GET", "/%zz", "", &headers),
        RT_NOW,
        &rt_lookup,
        "auto",
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
}

#[test]
fn date_header_signing_round_trip() {
    for http_date in [
        "Wed, 25 Nov 2026 16:52:30 GMT",
        "Wed, 25 Nov 2026 16:52:30 -0000",
        "Wed, 25 Nov 2026 17:52:30 +0100",
        "Wed, 25 Nov 2026 16:52:30 UTC",
        "Wednesday, 25-Nov-26 16:52:30 GMT",
        "Wed Nov 25 16:52:30 2026",
        "20261125T165230Z",
    ] {
        date_header_signs(http_date);
    }
}

/// A GET signed at RT_NOW whose time header is this `Date` (no x-amz-date), verified at RT_NOW.
fn verify_signed_with_date(http_date: &str) -> Result<Verified, crate::error::S3Error> {
    let mut headers = owned(&[("host", "h"), ("date", http_date), ("x-amz-content-sha256", UNSIGNED_PAYLOAD)]);
    let auth = sign_headers(&SignRequest {
        method: "GET",
        canonical_uri: "/b",
        query: &[],
        headers: &headers,
        payload_hash: UNSIGNED_PAYLOAD,
        access_key_id: RT_AK,
        secret_access_key: RT_SECRET,
        region: "auto",
        service: "s3",
        amz_date: &amz_date(RT_NOW),
    });
    headers.push(("authorization".into(), auth));
    verify(&inbound("GET", "/b", "", &headers), RT_NOW, &rt_lookup, "auto")
}

fn date_header_signs(http_date: &str) {
    let v = verify_signed_with_date(http_date);
    assert!(matches!(v, Ok(Verified::Signed { .. })), "Date: {http_date}: {v:?}");
}

#[test]
fn date_header_zone_is_honoured_and_garbage_refused() {
    let run = |date: &str| verify_signed_with_date(date).unwrap_err().code;
    // 16:52:30 a minute east of UTC is 16:51:30 UTC: within the skew, but not the time signed.
    assert_eq!(run("Wed, 25 Nov 2026 16:52:30 +0001"), ErrorCode::SignatureDoesNotMatch);
    // An hour east is too far from the clock.
    assert_eq!(run("Wed, 25 Nov 2026 16:52:30 +0100"), ErrorCode::RequestTimeTooSkewed);
    for bad in ["yesterday", "Wed, 25 Nov 2026 16:52:30 EST", "2026-11-25T16:52:30Z", ""] {
        assert_eq!(run(bad), ErrorCode::AccessDenied, "{bad:?}");
    }
}

#[test]
fn verify_never_panics_on_garbage() {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet: Vec<char> = "AWS4-HMAC-SHA256 Credential=/;,=%+&?éXx0aF\u{1234}"
        .chars()
        .collect();
    for _ in 0..2000 {
        let mut s = String::new();
        for _ in 0..(next() % 40) {
            s.push(alphabet[(next() % alphabet.len() as u64) as usize]);
        }
        let headers = owned(&[
            ("authorization", &s),
            ("x-amz-date", &s),
            ("date", &s),
            ("x-amz-content-sha256", &s),
        ]);
        let _ = verify(
            &inbound("GET", &s, &s, &headers),
            next(),
            &rt_lookup,
            "auto",
        );
        let _ = verify(&inbound("GET", &s, &s, &[]), next(), &rt_lookup, "auto");
        let _ = parse_http_date(&s);
        let _ = parse_amz_date(&s);
    }
}
