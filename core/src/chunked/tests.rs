//! Tests of the aws-chunked decoder and encoder: AWS's example, every split, signatures, trailers, bounds and garbage.

use super::*;
use crate::sigv4::payload::STREAMING_SIGNED;
use crate::sigv4::sign::signing_key;
use crate::sigv4::{verify, InboundRequest, Verified};

const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";

fn example_signer() -> ChunkSigner {
    let key = signing_key(
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "20130524",
        "us-east-1",
        "s3",
    );
    ChunkSigner::new(
        key,
        "20130524T000000Z",
        "20130524/us-east-1/s3/aws4_request",
        SEED,
    )
}

/// AWS's published example body: 64 KiB + 1 KiB of 'a' and the final chunk.
fn example_body() -> Vec<u8> {
    let mut body = Vec::new();
    for (size, sig) in [
        (
            65536,
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        ),
        (
            1024,
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        ),
        (
            0,
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
        ),
    ] {
        body.extend_from_slice(format!("{size:x};chunk-signature={sig}\r\n").as_bytes());
        body.extend(std::iter::repeat_n(b'a', size));
        body.extend_from_slice(b"\r\n");
    }
    body
}

/// The encoder with an owned signer, as most tests hold one.
fn encode(
    data: &[u8],
    chunk: usize,
    mut signer: Option<ChunkSigner>,
    trailer: &[(&str, &str)],
    sign_trailer: bool,
) -> Vec<u8> {
    super::encoder::encode(data, chunk, signer.as_mut(), trailer, sign_trailer)
}

fn crc32_b64(data: &[u8]) -> String {
    let mut c = Checksummer::new(ChecksumAlgorithm::Crc32);
    c.update(data);
    c.finish_base64()
}

/// Feed `body` split at the given sizes (cycled); return (output before finish, finish result, full output).
fn run(
    dec: &mut ChunkedDecoder,
    body: &[u8],
    splits: &mut dyn FnMut() -> usize,
) -> Result<(Vec<u8>, Trailers), S3Error> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let n = splits().clamp(1, rest.len());
        let (piece, tail) = rest.split_at(n);
        dec.push(piece, &mut out)?;
        rest = tail;
    }
    let before = out.len();
    let trailers = dec.finish(&mut out)?;
    assert!(
        before < out.len() || out.is_empty(),
        "the last byte is withheld until finish"
    );
    Ok((out, trailers))
}

fn rng(mut seed: u64) -> impl FnMut() -> usize {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 3000) as usize
    }
}

#[test]
fn aws_example_decodes_under_any_split() {
    let body = example_body();
    let want = vec![b'a'; 66560];
    let mut ones = || 1;
    let mut whole = || usize::MAX;
    let mut r1 = rng(1);
    let mut r2 = rng(99);
    let splitters: [&mut dyn FnMut() -> usize; 4] = [&mut ones, &mut whole, &mut r1, &mut r2];
    for split in splitters {
        let mut dec = ChunkedDecoder::new(Some(example_signer()), false, None, Some(66560));
        let (out, trailers) = run(&mut dec, &body, split).unwrap();
        assert_eq!(out, want);
        assert_eq!(trailers, Trailers::default());
    }
}

#[test]
fn aws_example_through_verify() {
    let mut headers: Vec<(String, String)> = [
        ("Host", "s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("x-amz-content-sha256", STREAMING_SIGNED),
        ("Content-Encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
        ("Content-Length", "66824"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    headers.push((
        "Authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature={SEED}"
        ),
    ));
    let req = InboundRequest {
        method: "PUT",
        raw_path: "/examplebucket/chunkObject.txt",
        raw_query: "",
        headers: &headers,
    };
    let lookup = |ak: &str| {
        (ak == "AKIAIOSFODNN7EXAMPLE")
            .then(|| "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_string())
    };
    let Verified::Signed { payload, .. } =
        verify(&req, 1_369_353_600, &lookup, "us-east-1").unwrap()
    else {
        panic!("signed expected");
    };
    let mut dec = ChunkedDecoder::for_payload(&payload, None, Some(66560)).unwrap();
    let body = example_body();
    assert_eq!(body.len(), 66824);
    let mut out = Vec::new();
    dec.push(&body, &mut out).unwrap();
    assert_eq!(out.len(), 66559);
    dec.finish(&mut out).unwrap();
    assert_eq!(out, vec![b'a'; 66560]);
    assert!(ChunkedDecoder::for_payload(&PayloadMode::Unsigned, None, None).is_none());
}

#[test]
fn corrupt_chunk_is_never_released() {
    let mut body = example_body();
    let second_chunk_data = body.len() - 88 - 10; // inside the 1 KiB chunk (final header + CRLFs are 88 bytes)
    assert_eq!(body[second_chunk_data], b'a');
    body[second_chunk_data] = b'b';
    let mut dec = ChunkedDecoder::new(Some(example_signer()), false, None, Some(66560));
    let mut out = Vec::new();
    let e = dec.push(&body, &mut out).unwrap_err();
    assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
    assert_eq!(
        out.len(),
        65535,
        "only the verified first chunk, minus the held byte"
    );
    assert!(!out.contains(&b'b'));
    // The decoder stays failed.
    assert_eq!(
        dec.push(b"", &mut out).unwrap_err().code,
        ErrorCode::SignatureDoesNotMatch
    );
    assert_eq!(
        dec.finish(&mut out).unwrap_err().code,
        ErrorCode::SignatureDoesNotMatch
    );
    assert_eq!(out.len(), 65535);
}

#[test]
fn wrong_seed_or_missing_signature() {
    let body = example_body();
    let key = signing_key(
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "20130524",
        "us-east-1",
        "s3",
    );
    let other = ChunkSigner::new(
        key,
        "20130524T000000Z",
        "20130524/us-east-1/s3/aws4_request",
        &"0".repeat(64),
    );
    let mut dec = ChunkedDecoder::new(Some(other), false, None, None);
    let mut out = Vec::new();
    assert_eq!(
        dec.push(&body, &mut out).unwrap_err().code,
        ErrorCode::SignatureDoesNotMatch
    );
    assert!(out.is_empty());
    let unsigned = encode(b"hello", 2, None, &[], false);
    let mut dec = ChunkedDecoder::new(Some(example_signer()), false, None, None);
    assert_eq!(
        dec.push(&unsigned, &mut out).unwrap_err().code,
        ErrorCode::InvalidRequest
    );
    // Without a signer, signatures are ignored.
    let mut dec = ChunkedDecoder::new(None, false, None, None);
    let (out, _) = run(&mut dec, &body, &mut rng(5)).unwrap();
    assert_eq!(out.len(), 66560);
}

#[test]
fn unsigned_trailer_checksum() {
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let good = crc32_b64(&data);
    let body = encode(&data, 4000, None, &[("x-amz-checksum-crc32", &good)], false);
    for seed in 1..20 {
        let mut dec =
            ChunkedDecoder::new(None, false, Some(ChecksumAlgorithm::Crc32), Some(10_000));
        let (out, trailers) = run(&mut dec, &body, &mut rng(seed)).unwrap();
        assert_eq!(out, data);
        assert_eq!(
            trailers.checksum,
            Some((ChecksumAlgorithm::Crc32, good.clone()))
        );
    }
    let mut dec = ChunkedDecoder::new(None, false, Some(ChecksumAlgorithm::Crc32), None);
    let (_, _) = run(&mut dec, &body, &mut || 1).unwrap();

    let finish_err = |body: &[u8], declared: Option<ChecksumAlgorithm>| {
        let mut dec = ChunkedDecoder::new(None, false, declared, None);
        let mut out = Vec::new();
        dec.push(body, &mut out).unwrap();
        let before = out.len();
        let e = dec.finish(&mut out).unwrap_err();
        assert_eq!(out.len(), before, "nothing more released on failure");
        e.code
    };
    let bad = encode(
        &data,
        4000,
        None,
        &[("x-amz-checksum-crc32", "AAAAAA==")],
        false,
    );
    assert_eq!(
        finish_err(&bad, Some(ChecksumAlgorithm::Crc32)),
        ErrorCode::BadDigest
    );
    let none = encode(&data, 4000, None, &[], false);
    assert_eq!(
        finish_err(&none, Some(ChecksumAlgorithm::Crc32)),
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        finish_err(&body, None),
        ErrorCode::InvalidRequest,
        "undeclared checksum trailer"
    );
    assert_eq!(
        finish_err(&body, Some(ChecksumAlgorithm::Crc32c)),
        ErrorCode::InvalidRequest
    );
    let garbage = encode(
        &data,
        4000,
        None,
        &[("x-amz-checksum-crc32", "!!!!")],
        false,
    );
    assert_eq!(
        finish_err(&garbage, Some(ChecksumAlgorithm::Crc32)),
        ErrorCode::InvalidRequest
    );
    let long = encode(
        &data,
        4000,
        None,
        &[("x-amz-checksum-crc32", "AAAAAAAA")],
        false,
    );
    assert_eq!(
        finish_err(&long, Some(ChecksumAlgorithm::Crc32)),
        ErrorCode::InvalidRequest
    );
    // Other trailers are allowed alongside; names are case-insensitive.
    let mixed = encode(
        &data,
        999,
        None,
        &[("x-other", "1"), ("X-Amz-Checksum-CRC32", &good)],
        false,
    );
    let mut dec = ChunkedDecoder::new(None, false, Some(ChecksumAlgorithm::Crc32), None);
    let (out, t) = run(&mut dec, &mixed, &mut rng(3)).unwrap();
    assert_eq!(
        (out, t.checksum),
        (data.clone(), Some((ChecksumAlgorithm::Crc32, good)))
    );
}

#[test]
fn every_algorithm_as_trailer() {
    let data = b"The quick brown fox jumps over the lazy dog";
    for alg in ChecksumAlgorithm::ALL {
        let mut c = Checksummer::new(alg);
        c.update(data);
        let value = c.finish_base64();
        let body = encode(data, 10, None, &[(alg.header_name(), &value)], false);
        let mut dec = ChunkedDecoder::new(None, false, Some(alg), Some(data.len() as u64));
        let (out, t) = run(&mut dec, &body, &mut rng(alg as u64 + 1)).unwrap();
        assert_eq!(out, data);
        assert_eq!(t.checksum, Some((alg, value)));
    }
}

#[test]
fn signed_trailer() {
    let data = vec![7u8; 200_000];
    let crc = crc32_b64(&data);
    let body = encode(
        &data,
        65536,
        Some(example_signer()),
        &[("x-amz-checksum-crc32", &crc)],
        true,
    );
    for seed in 1..6 {
        let mut dec = ChunkedDecoder::new(
            Some(example_signer()),
            true,
            Some(ChecksumAlgorithm::Crc32),
            Some(200_000),
        );
        let (out, t) = run(&mut dec, &body, &mut rng(seed)).unwrap();
        assert_eq!(out, data);
        assert_eq!(t.checksum, Some((ChecksumAlgorithm::Crc32, crc.clone())));
    }
    let mut ones = ChunkedDecoder::new(
        Some(example_signer()),
        true,
        Some(ChecksumAlgorithm::Crc32),
        None,
    );
    run(&mut ones, &body, &mut || 1).unwrap();

    // A trailer changed in transit: the signature check catches it first.
    let text = String::from_utf8_lossy(&body).into_owned();
    let tampered = text.replacen(&crc, "AAAAAA==", 1).into_bytes();
    let mut dec = ChunkedDecoder::new(
        Some(example_signer()),
        true,
        Some(ChecksumAlgorithm::Crc32),
        None,
    );
    let mut out = Vec::new();
    dec.push(&tampered, &mut out).unwrap();
    assert_eq!(
        dec.finish(&mut out).unwrap_err().code,
        ErrorCode::SignatureDoesNotMatch
    );
    assert_eq!(out.len(), data.len() - 1);

    // Missing trailer signature.
    let unsigned_trailer = encode(
        &data,
        65536,
        Some(example_signer()),
        &[("x-amz-checksum-crc32", &crc)],
        false,
    );
    let mut dec = ChunkedDecoder::new(
        Some(example_signer()),
        true,
        Some(ChecksumAlgorithm::Crc32),
        None,
    );
    let mut out = Vec::new();
    dec.push(&unsigned_trailer, &mut out).unwrap();
    assert_eq!(
        dec.finish(&mut out).unwrap_err().code,
        ErrorCode::InvalidRequest
    );

    // Signed data but a wrong checksum (correctly signed by the client): BadDigest.
    let wrong = encode(
        &data,
        65536,
        Some(example_signer()),
        &[("x-amz-checksum-crc32", "AAAAAA==")],
        true,
    );
    let mut dec = ChunkedDecoder::new(
        Some(example_signer()),
        true,
        Some(ChecksumAlgorithm::Crc32),
        None,
    );
    let mut out = Vec::new();
    dec.push(&wrong, &mut out).unwrap();
    assert_eq!(dec.finish(&mut out).unwrap_err().code, ErrorCode::BadDigest);
}

#[test]
fn empty_body() {
    let body = encode(b"", 10, Some(example_signer()), &[], false);
    let mut dec = ChunkedDecoder::new(Some(example_signer()), false, None, Some(0));
    let (out, _) = run(&mut dec, &body, &mut || 1).unwrap();
    assert!(out.is_empty());
    let mut dec = ChunkedDecoder::new(None, false, None, None);
    let mut out = Vec::new();
    dec.push(b"0\r\n\r\n", &mut out).unwrap();
    dec.finish(&mut out).unwrap();
    assert!(out.is_empty());
    assert_eq!(
        dec.finish(&mut out).unwrap_err().code,
        ErrorCode::InvalidRequest
    );
}

#[test]
fn truncated_bodies_are_incomplete() {
    let data = b"0123456789abcdef";
    let crc = crc32_b64(data);
    let body = encode(
        data,
        5,
        Some(example_signer()),
        &[("x-amz-checksum-crc32", &crc)],
        true,
    );
    for cut in 0..body.len() {
        let mut dec = ChunkedDecoder::new(
            Some(example_signer()),
            true,
            Some(ChecksumAlgorithm::Crc32),
            None,
        );
        let mut out = Vec::new();
        dec.push(&body[..cut], &mut out).unwrap();
        assert!(out.len() < data.len());
        assert_eq!(
            dec.finish(&mut out).unwrap_err().code,
            ErrorCode::IncompleteBody,
            "cut at {cut}"
        );
        assert!(out.len() < data.len(), "cut at {cut}");
    }
}

#[test]
fn decoded_length_is_enforced() {
    let body = encode(b"hello world", 4, None, &[], false);
    let run_with = |len| {
        let mut dec = ChunkedDecoder::new(None, false, None, Some(len));
        let mut out = Vec::new();
        dec.push(&body, &mut out)
            .and_then(|_| dec.finish(&mut out))
            .map(|_| out)
    };
    assert_eq!(run_with(11).unwrap(), b"hello world");
    assert_eq!(run_with(12).unwrap_err().code, ErrorCode::IncompleteBody);
    assert_eq!(run_with(10).unwrap_err().code, ErrorCode::IncompleteBody);
    // A chunk header announcing more than declared is refused before any data.
    let mut dec = ChunkedDecoder::new(Some(example_signer()), false, None, Some(10));
    let mut out = Vec::new();
    assert_eq!(
        dec.push(b"b;chunk-signature=x\r\n", &mut out)
            .unwrap_err()
            .code,
        ErrorCode::IncompleteBody
    );
}

#[test]
fn malformed_framing() {
    let cases: &[&[u8]] = &[
        b"zz\r\n",
        b"\r\n",
        b";chunk-signature=abc\r\n",
        b"+5\r\nhello\r\n",
        b" 5\r\nhello\r\n",
        b"5\nhello\r\n",
        b"5\r\nhelloXY",
        b"5\r\nhello\rX",
        b"1000001\r\n",
        b"11111111111111111\r\n",
        b"5\r\nhello\r\n0\r\nno-colon\r\n",
        b"5\r\nhello\r\n0\r\n\r\nextra",
        b"5\r\nhello\r\n0\r\n\n",
        b"\xff\r\n",
    ];
    for &case in cases {
        let mut dec = ChunkedDecoder::new(None, false, None, None);
        let mut out = Vec::new();
        let e = dec.push(case, &mut out).unwrap_err();
        assert_eq!(
            e.code,
            ErrorCode::InvalidRequest,
            "{:?}",
            String::from_utf8_lossy(case)
        );
    }
    // Exactly 16 MiB is allowed as a size.
    let mut dec = ChunkedDecoder::new(None, false, None, None);
    dec.push(b"1000000\r\n", &mut Vec::new()).unwrap();
}

#[test]
fn header_and_trailer_are_bounded() {
    let mut dec = ChunkedDecoder::new(None, false, None, None);
    let mut out = Vec::new();
    let mut line = b"5;".to_vec();
    line.extend(std::iter::repeat_n(b'x', MAX_HEADER_LINE));
    let mut result = Ok(());
    for b in &line {
        result = dec.push(std::slice::from_ref(b), &mut out);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result.unwrap_err().code, ErrorCode::InvalidRequest);

    let mut dec = ChunkedDecoder::new(None, false, None, None);
    dec.push(b"0\r\n", &mut out).unwrap();
    let mut err = None;
    for _ in 0..1000 {
        if let Err(e) = dec.push(b"x-a:b\r\n", &mut out) {
            err = Some(e);
            break;
        }
    }
    assert_eq!(err.unwrap().code, ErrorCode::InvalidRequest);
}

#[test]
fn garbage_never_panics() {
    let mut next = rng(42);
    let pieces: [&[u8]; 8] = [
        b"\r\n",
        b"0",
        b"5",
        b";chunk-signature=",
        b"x-amz-checksum-crc32:",
        b"abc",
        b"\n",
        b"ffffff",
    ];
    for _ in 0..3000 {
        let mut body = Vec::new();
        for _ in 0..(next() % 12) {
            body.extend_from_slice(pieces[next() % pieces.len()]);
        }
        for signer in [None, Some(example_signer())] {
            let mut dec = ChunkedDecoder::new(
                signer,
                next().is_multiple_of(2),
                Some(ChecksumAlgorithm::Crc32),
                Some(5),
            );
            let mut out = Vec::new();
            let _ = dec.push(&body, &mut out);
            let _ = dec.finish(&mut out);
        }
    }
}

/// Nine 1 KiB chunks and a short one: two batches of four hashed together, then one alone, then the short one.
fn batched_body(signer: ChunkSigner) -> (Vec<u8>, Vec<u8>) {
    let data: Vec<u8> = (0..9 * 1024 + 100).map(|i| (i * 7 % 251) as u8).collect();
    let body = encode(&data, 1024, Some(signer), &[], false);
    (data, body)
}

#[test]
fn chunks_checked_four_at_a_time_decode_under_any_split() {
    let (data, body) = batched_body(example_signer());
    let mut ones = || 1;
    let mut whole = || usize::MAX;
    let mut r1 = rng(7);
    let splitters: [&mut dyn FnMut() -> usize; 3] = [&mut ones, &mut whole, &mut r1];
    for split in splitters {
        let mut dec = ChunkedDecoder::new(Some(example_signer()), false, None, Some(data.len() as u64));
        assert_eq!(run(&mut dec, &body, split).unwrap().0, data);
    }
}

#[test]
fn a_tampered_chunk_in_any_lane_of_a_batch_is_never_released() {
    let (data, body) = batched_body(example_signer());
    let header = body.iter().position(|&b| b == b'\n').unwrap() + 1;
    for chunk in 0..10 {
        let mut bad = body.clone();
        // Every full chunk's frame is the same length: header, 1 KiB, CRLF.
        bad[chunk * (header + 1024 + 2) + header + 5] ^= 0x40;
        let mut dec = ChunkedDecoder::new(Some(example_signer()), false, None, Some(data.len() as u64));
        let mut out = Vec::new();
        let e = dec.push(&bad, &mut out).unwrap_err();
        assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch, "chunk {chunk}");
        assert_eq!(out.len(), (chunk * 1024).saturating_sub(1), "chunk {chunk}: only the chunks before it, minus the held byte");
        assert_eq!(out[..], data[..out.len()], "chunk {chunk}");
    }
}

#[test]
fn chunks_held_for_a_batch_count_against_the_decoded_length() {
    let (data, body) = batched_body(example_signer());
    // Three full chunks pending (none released yet); the fourth header already exceeds the length.
    let mut dec = ChunkedDecoder::new(Some(example_signer()), false, None, Some(3 * 1024 + 10));
    let mut out = Vec::new();
    assert_eq!(dec.push(&body, &mut out).unwrap_err().code, ErrorCode::IncompleteBody);
    assert!(out.is_empty() && data.len() > 3 * 1024);
}
