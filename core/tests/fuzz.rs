//! Property tests over everything that reads client input: request routing, SigV4 verification,
//! the aws-chunked decoder and the XML readers never panic, and accept only what they should.

use proptest::prelude::*;
use tempo_s3_shard_core::checksum::{ChecksumAlgorithm, Checksummer};
use tempo_s3_shard_core::chunked::ChunkedDecoder;
use tempo_s3_shard_core::clock;
use tempo_s3_shard_core::codec;
use tempo_s3_shard_core::config::Config;
use tempo_s3_shard_core::context::Proxy;
use tempo_s3_shard_core::testing::script::{ok, Script};
use tempo_s3_shard_core::{auth, flow};
use tempo_s3_shard_core::route::{self, RequestParts, MAX_KEY_LEN};
use tempo_s3_shard_core::sigv4::chunk::ChunkSigner;
use tempo_s3_shard_core::sigv4::sign::SignRequest;
use tempo_s3_shard_core::sigv4::{self, InboundRequest, PayloadMode};
use tempo_s3_shard_core::{types, xml, ErrorCode};

const VB: &str = "proxy-bucket";
const AK: &str = "fuzz-access-key";
const SECRET: &str = "fuzz-secret";
const NOW: u64 = 1_700_000_000;

const VARS: [(&str, &str); 6] = [
    ("buckets", "shard1,shard2,shard3"),
    ("endpoint", "http://127.0.0.1:9000"),
    ("access_key_id", "backend"),
    ("secret_access_key", "backend-secret"),
    ("client_credentials", "fuzz-access-key:fuzz-secret"),
    ("allow_anonymous", "read-only"),
];

fn proxy() -> Proxy {
    let cfg = Config::from_lookup(|name| VARS.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())).expect("the fuzz configuration is valid");
    Proxy::new(cfg)
}

/// `cases` per property (times `FUZZ_SCALE` for a deeper run), no failure files (the regressions
/// worth keeping become unit tests).
fn config(cases: u32) -> ProptestConfig {
    let scale = std::env::var("FUZZ_SCALE").ok().and_then(|s| s.parse::<u32>().ok()).unwrap_or(1);
    ProptestConfig { cases: cases.saturating_mul(scale), failure_persistence: None, ..ProptestConfig::default() }
}

fn lookup(ak: &str) -> Option<String> {
    (ak == AK).then(|| SECRET.to_string())
}

/// Text built from pieces that matter to the parsers, plus arbitrary characters.
fn tricky_text(pieces: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(pieces).prop_map(str::to_string),
            1 => any::<char>().prop_map(|c| c.to_string()),
            1 => "[ -~]{0,4}",
        ],
        0..max,
    )
    .prop_map(|v| v.concat())
}

const PATH_PIECES: &[&str] = &[
    "/", "//", "proxy-bucket", "proxy-bucket/", "shard1", "k", "..", ".", "%", "%2", "%2F", "%00", "%C3", "%c3%a9",
    "%E2%82%AC", "%zz", "+", " ", "?", "#", "\u{0}", "é",
];
const QUERY_PIECES: &[&str] = &[
    "&", "=", "uploads", "uploadId=", "partNumber=", "0", "1", "10000", "10001", "-1", "abc", "list-type=2",
    "max-keys=", "delete", "tagging", "location", "acl", "versioning", "prefix=", "%", "%zz", "+", "X-Amz-Algorithm=",
    "X-Amz-Credential=", "X-Amz-Signature=", "continuation-token=", "encoding-type=url", "max-parts=",
];
const METHODS: &[&str] = &["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "get", "", "G\u{0}T"];
const HEADER_NAMES: &[&str] = &[
    "host", "Host", "authorization", "x-amz-date", "date", "x-amz-content-sha256", "content-length", "content-encoding",
    "x-amz-decoded-content-length", "x-amz-trailer", "x-amz-copy-source", "content-md5", "range", "x-amz-meta-a",
];
const HEADER_VALUE_PIECES: &[&str] = &[
    "AWS4-HMAC-SHA256", " Credential=", "fuzz-access-key", "/20231114/us-east-1/s3/aws4_request", ",", "SignedHeaders=",
    "host;x-amz-date", "Signature=", "0123456789abcdef", "20231114T221320Z", "UNSIGNED-PAYLOAD",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "aws-chunked", "x-amz-checksum-crc32",
    "5368709121", "-1", "abc", "/proxy-bucket/k", "/shard1/k", "proxy-bucket.localhost", ":", " ", "=", "%",
];

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        (prop::sample::select(HEADER_NAMES).prop_map(str::to_string), tricky_text(HEADER_VALUE_PIECES, 8)),
        0..8,
    )
}

fn request() -> impl Strategy<Value = RequestParts> {
    (
        prop::sample::select(METHODS),
        tricky_text(PATH_PIECES, 12),
        tricky_text(QUERY_PIECES, 10),
        headers(),
        any::<bool>(),
    )
        .prop_map(|(method, path, query, headers, raw)| {
            if raw {
                // Fields set directly: a path that need not start with '/', any method text.
                RequestParts { method: method.to_string(), raw_path: path, raw_query: query, headers }
            } else {
                RequestParts::new(method, &format!("/{path}?{query}"), headers)
            }
        })
}

proptest! {
    #![proptest_config(config(1000))]

    /// Routing any request gives an operation or an S3 error; a routed key is valid and decodes
    /// from the path, and an object operation never addresses another bucket.
    #[test]
    fn route_parse_never_panics(req in request()) {
        match route::parse(&req, VB) {
            Ok(route) => {
                if let Some(key) = route.op.key() {
                    prop_assert!(key.len() <= MAX_KEY_LEN);
                    prop_assert!(!key.contains('\0'));
                    prop_assert!(!key.is_empty());
                }
            }
            Err(e) => prop_assert!((400..600).contains(&e.status()), "{e}"),
        }
    }

    /// Authentication and handling of any request never panic; anything accepted without a valid
    /// signature is a read (the proxy above is read-only for anonymous clients), and every answer
    /// is an HTTP status a client understands.
    #[test]
    fn authenticate_and_handle_never_panic(req in request(), now in prop_oneof![Just(NOW), any::<u64>()]) {
        let proxy = proxy();
        match auth::authenticate(&proxy.cfg, &req, now) {
            Ok(_) => {
                let has_auth = req.header("authorization").is_some() || req.raw_query.contains("X-Amz-");
                if !has_auth {
                    prop_assert!(matches!(req.method.as_str(), "GET" | "HEAD"), "anonymous {} admitted", req.method);
                }
            }
            Err(e) => prop_assert!((400..600).contains(&e.status()), "{e}"),
        }
        let script = Script::new(|_, _| ok(b""));
        let request = flow::Request { parts: req, https: false, now_unix: now, request_id: "fuzz".into() };
        let (answer, _) = tempo_s3_shard_core::testing::block_on(flow::handle(&script, request, |n| VARS.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string())));
        let status = match answer { flow::Answer::Reply(r) => r.status, flow::Answer::Stream { status, .. } => status };
        prop_assert!((200..600).contains(&status));
    }

    /// Random Authorization headers, dates and hashes never verify and never panic.
    #[test]
    fn verify_rejects_random_authorization(
        auth in tricky_text(HEADER_VALUE_PIECES, 16),
        date in tricky_text(HEADER_VALUE_PIECES, 3),
        sha in tricky_text(HEADER_VALUE_PIECES, 2),
        path in tricky_text(PATH_PIECES, 6),
        query in tricky_text(QUERY_PIECES, 6),
        now in any::<u64>(),
    ) {
        let headers = vec![
            ("host".to_string(), "proxy.local".to_string()),
            ("authorization".to_string(), auth.clone()),
            ("x-amz-date".to_string(), date),
            ("x-amz-content-sha256".to_string(), sha),
        ];
        let req = InboundRequest { method: "GET", raw_path: &path, raw_query: &query, headers: &headers };
        let r = sigv4::verify(&req, now, &lookup, "us-east-1");
        prop_assert!(r.is_err(), "random authorization {auth:?} verified: {r:?}");
        let req = InboundRequest { method: "GET", raw_path: &path, raw_query: &query, headers: &headers[..1] };
        let _ = sigv4::verify(&req, now, &lookup, "us-east-1");
    }

    /// A correctly signed request verifies; changing any one byte of its signed parts makes it fail.
    #[test]
    fn verify_detects_any_single_byte_change(key in "[a-zA-Z0-9 /._~+=-]{1,40}", at in any::<prop::sample::Index>(), delta in 1u8..255) {
        let path = format!("/{VB}/{}", codec::uri_encode(&key, false));
        let amz = clock::amz_date(NOW);
        let mut headers = vec![
            ("host".to_string(), "proxy.local".to_string()),
            ("x-amz-date".to_string(), amz.clone()),
            ("x-amz-content-sha256".to_string(), sigv4::payload::EMPTY_SHA256.to_string()),
        ];
        let auth = sigv4::sign::sign_headers(&SignRequest {
            method: "GET", canonical_uri: &path, query: &[], headers: &headers, payload_hash: sigv4::payload::EMPTY_SHA256,
            access_key_id: AK, secret_access_key: SECRET, region: "us-east-1", service: "s3", amz_date: &amz,
        });
        headers.push(("authorization".to_string(), auth.clone()));
        let ok = sigv4::verify(&InboundRequest { method: "GET", raw_path: &path, raw_query: "", headers: &headers }, NOW, &lookup, "us-east-1");
        prop_assert!(matches!(ok, Ok(sigv4::Verified::Signed { .. })), "{ok:?}");

        // Change one byte of the Authorization header's signature or of the path.
        let sig_start = auth.find("Signature=").unwrap() + 10;
        let mut bad_auth = auth.clone().into_bytes();
        let i = sig_start + at.index(64);
        bad_auth[i] = if bad_auth[i] == b'0' { b'1' } else { b'0' };
        let mut h2 = headers.clone();
        h2[3].1 = String::from_utf8(bad_auth).unwrap();
        let r = sigv4::verify(&InboundRequest { method: "GET", raw_path: &path, raw_query: "", headers: &h2 }, NOW, &lookup, "us-east-1");
        prop_assert_eq!(r.unwrap_err().code, ErrorCode::SignatureDoesNotMatch);

        let mut bad_path = path.clone().into_bytes();
        let j = VB.len() + 2 + at.index(bad_path.len() - VB.len() - 2);
        bad_path[j] = bad_path[j].wrapping_add(delta);
        if let Ok(bad_path) = String::from_utf8(bad_path) {
            let same = sigv4::canonical::canonical_uri(&bad_path).ok() == sigv4::canonical::canonical_uri(&path).ok();
            let r = sigv4::verify(&InboundRequest { method: "GET", raw_path: &bad_path, raw_query: "", headers: &headers }, NOW, &lookup, "us-east-1");
            prop_assert!(same || r.is_err(), "{bad_path:?} verified with the signature of {path:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// aws-chunked

fn signer() -> ChunkSigner {
    let key = sigv4::sign::signing_key(SECRET, "20231114", "us-east-1", "s3");
    ChunkSigner::new(key, "20231114T221320Z", "20231114/us-east-1/s3/aws4_request", &"ab".repeat(32))
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Signed,
    SignedTrailer,
    UnsignedTrailer,
}

fn crc32_b64(data: &[u8]) -> String {
    let mut c = Checksummer::new(ChecksumAlgorithm::Crc32);
    c.update(data);
    c.finish_base64()
}

/// A valid aws-chunked body of `data` in chunks of the given sizes (cycled).
fn encode(data: &[u8], sizes: &[usize], kind: Kind) -> Vec<u8> {
    let mut s = signer();
    let signed = !matches!(kind, Kind::UnsignedTrailer);
    let mut body = Vec::new();
    let mut rest = data;
    let mut i = 0;
    loop {
        let n = sizes[i % sizes.len()].clamp(1, rest.len().max(1)).min(rest.len());
        i += 1;
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        body.extend_from_slice(format!("{:x}", piece.len()).as_bytes());
        if signed {
            body.extend_from_slice(format!(";chunk-signature={}", s.sign_chunk(piece)).as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(piece);
        if piece.is_empty() {
            break;
        }
        body.extend_from_slice(b"\r\n");
    }
    if !matches!(kind, Kind::Signed) {
        let line = format!("x-amz-checksum-crc32:{}", crc32_b64(data));
        body.extend_from_slice(format!("{line}\r\n").as_bytes());
        if matches!(kind, Kind::SignedTrailer) {
            let sig = s.sign_trailer(format!("{line}\n").as_bytes());
            body.extend_from_slice(format!("x-amz-trailer-signature:{sig}\r\n").as_bytes());
        }
    }
    body.extend_from_slice(b"\r\n");
    body
}

fn decoder(kind: Kind, len: Option<u64>) -> ChunkedDecoder {
    let mode = match kind {
        Kind::Signed => PayloadMode::StreamingSigned(signer()),
        Kind::SignedTrailer => PayloadMode::StreamingSignedTrailer(signer()),
        Kind::UnsignedTrailer => PayloadMode::StreamingUnsignedTrailer,
    };
    let trailer = (!matches!(kind, Kind::Signed)).then_some(ChecksumAlgorithm::Crc32);
    ChunkedDecoder::for_payload(&mode, trailer, len).expect("a decoder for a known payload mode")
}

/// Feed `body` cut at `cuts`; returns (bytes released before finish, result with all bytes).
fn run(dec: &mut ChunkedDecoder, body: &[u8], cuts: &[usize]) -> (usize, Result<Vec<u8>, tempo_s3_shard_core::S3Error>) {
    let mut out = Vec::new();
    let mut rest = body;
    let mut i = 0;
    while !rest.is_empty() {
        let n = cuts.get(i).copied().unwrap_or(rest.len()).clamp(1, rest.len());
        i += 1;
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        if let Err(e) = dec.push(piece, &mut out) {
            return (out.len(), Err(e));
        }
    }
    let before = out.len();
    (before, dec.finish(&mut out).map(|_| out))
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::Signed), Just(Kind::SignedTrailer), Just(Kind::UnsignedTrailer)]
}

proptest! {
    #![proptest_config(config(400))]

    /// Valid bodies decode to exactly their data under any split, and the last byte is only
    /// released by `finish`.
    #[test]
    fn chunked_valid_bodies_decode_under_any_split(
        data in prop::collection::vec(any::<u8>(), 0..3000),
        sizes in prop::collection::vec(1usize..700, 1..4),
        cuts in prop::collection::vec(1usize..500, 0..40),
        kind in kind(),
        declare_length in any::<bool>(),
    ) {
        let body = encode(&data, &sizes, kind);
        let mut dec = decoder(kind, declare_length.then_some(data.len() as u64));
        let (before, result) = run(&mut dec, &body, &cuts);
        prop_assert_eq!(result.as_deref().ok(), Some(&data[..]), "{:?}", result.as_ref().err());
        prop_assert!(before < data.len() || data.is_empty(), "all {} bytes were released before finish", before);
    }

    /// Any single-byte change to a valid body either fails or still yields exactly the data;
    /// a failed body never has all of its data released.
    #[test]
    fn chunked_mutated_bodies_never_pass_wrong_data(
        data in prop::collection::vec(any::<u8>(), 1..2000),
        sizes in prop::collection::vec(1usize..700, 1..4),
        cuts in prop::collection::vec(1usize..500, 0..20),
        kind in kind(),
        at in any::<prop::sample::Index>(),
        delta in 1u8..=255,
    ) {
        let mut body = encode(&data, &sizes, kind);
        let i = at.index(body.len());
        body[i] = body[i].wrapping_add(delta);
        let mut dec = decoder(kind, Some(data.len() as u64));
        let (before, result) = run(&mut dec, &body, &cuts);
        match result {
            Ok(out) => prop_assert_eq!(out, data, "a mutated body decoded to other data"),
            Err(e) => {
                prop_assert!((400..500).contains(&e.status()), "{e}");
                prop_assert!(before < data.len(), "a failing body released all its data");
                // Once failed, the decoder stays failed.
                prop_assert!(dec.push(b"0\r\n\r\n", &mut Vec::new()).is_err());
                prop_assert!(dec.finish(&mut Vec::new()).is_err());
            }
        }
    }

    /// Random bytes and random framing-like text never panic the decoder, whatever the mode.
    #[test]
    fn chunked_random_input_never_panics(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..600),
            tricky_text(&["0", "1", "a", "ffffffffffffffffff", ";", "chunk-signature=", "\r\n", "\r", "\n", "x-amz-checksum-crc32:", "x-amz-trailer-signature:", "AAAA", ":", "=="], 40).prop_map(String::into_bytes),
        ],
        cuts in prop::collection::vec(1usize..100, 0..20),
        kind in kind(),
        len in prop::option::of(0u64..1000),
    ) {
        let mut dec = decoder(kind, len);
        let _ = run(&mut dec, &body, &cuts);
        let mut plain = ChunkedDecoder::new(None, false, None, len);
        let _ = run(&mut plain, &body, &cuts);
    }
}

// ---------------------------------------------------------------------------------------------
// XML readers

const XML_PIECES: &[&str] = &[
    "<", ">", "</", "/>", "&", ";", "&#", "&#x", "&amp;", "&lt;", "&#0;", "&#xD800;", "&bogus;", "<![CDATA[", "]]>",
    "<!--", "-->", "<?xml version=\"1.0\"?>", "<!DOCTYPE x [<!ENTITY e \"boom\">]>", "Delete", "Object", "Key", "Quiet",
    "true", "VersionId", "CompleteMultipartUpload", "Part", "PartNumber", "ETag", "1", "0", "-1", "99999999999",
    "Tagging", "TagSet", "Tag", "Value", "ListBucketResult", "Contents", "Size", "IsTruncated", "CommonPrefixes",
    "Prefix", "NextContinuationToken", "EncodingType", "url", "%", " xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"",
    " ", "\"", "=", "\u{feff}", "\u{0}", "\u{ff}",
];

fn xml_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        tricky_text(XML_PIECES, 60).prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..400),
    ]
}

proptest! {
    #![proptest_config(config(1000))]

    /// Every reader returns a Result on any input; client documents fail as MalformedXML.
    #[test]
    fn xml_readers_never_panic(body in xml_body()) {
        if let Err(e) = xml::parse_delete_objects(&body) {
            prop_assert_eq!(e.code, ErrorCode::MalformedXML);
        }
        if let Err(e) = xml::parse_complete_multipart(&body) {
            prop_assert_eq!(e.code, ErrorCode::MalformedXML);
        }
        if let Err(e) = xml::parse_tagging(&body) {
            prop_assert!((400..600).contains(&e.status()), "{e}");
        }
        let _ = xml::parse_list_objects(&body);
        let _ = xml::parse_delete_result(&body);
        let _ = xml::parse_error(&body);
    }

    /// What the proxy writes it reads back: DeleteObjects and CompleteMultipartUpload bodies with any keys.
    #[test]
    fn xml_documents_round_trip(
        keys in prop::collection::vec("[^\u{0}]{1,30}", 1..8),
        quiet in any::<bool>(),
        numbers in prop::collection::btree_set(1u32..=10000, 1..6),
        etag in "\"[0-9a-f]{32}(-[0-9]{1,4})?\"",
    ) {
        let objects: Vec<types::ObjectIdentifier> = keys.iter().map(|k| types::ObjectIdentifier { key: k.clone(), ..Default::default() }).collect();
        let body = xml::delete_objects_body(&objects, quiet);
        let parsed = xml::parse_delete_objects(body.as_bytes());
        prop_assert!(parsed.is_ok(), "{body}: {parsed:?}");
        let parsed = parsed.unwrap();
        prop_assert_eq!(parsed.objects, objects);
        prop_assert_eq!(parsed.quiet, quiet);

        let parts: Vec<types::CompletedPart> = numbers.into_iter().map(|n| types::CompletedPart { part_number: n, etag: etag.clone(), ..Default::default() }).collect();
        let body = xml::complete_multipart_body(&parts);
        let parsed = xml::parse_complete_multipart(body.as_bytes());
        prop_assert!(parsed.is_ok(), "{body}: {parsed:?}");
        prop_assert_eq!(parsed.unwrap(), parts);
    }

    /// Mutations of valid documents never panic the readers.
    #[test]
    fn xml_mutated_documents_never_panic(at in any::<prop::sample::Index>(), with in prop::sample::select(XML_PIECES), cut in any::<bool>()) {
        let docs = [
            xml::delete_objects_body(&[types::ObjectIdentifier { key: "a&b<c>".into(), version_id: Some("v".into()), ..Default::default() }], true),
            xml::complete_multipart_body(&[types::CompletedPart { part_number: 3, etag: "\"e\"".into(), ..Default::default() }]),
            "<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>".to_string(),
            "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>k</Key><Size>1</Size></Contents></ListBucketResult>".to_string(),
        ];
        for doc in docs {
            let mut bytes = doc.into_bytes();
            let i = at.index(bytes.len());
            if cut { bytes.truncate(i) } else { bytes.splice(i..i, with.bytes()); }
            let _ = xml::parse_delete_objects(&bytes);
            let _ = xml::parse_complete_multipart(&bytes);
            let _ = xml::parse_tagging(&bytes);
            let _ = xml::parse_list_objects(&bytes);
        }
    }
}

/// Buckets two of whose names make ten identical points (`shard1` + `10` is `shard11` + `0`).
const RING_BUCKETS: [&str; 4] = ["shard1", "shard11", "shard2", "shard3"];

proptest! {
    #![proptest_config(config(48))]

    /// A `ring_tables` table with one symbol changed, removed or added never places a key
    /// anywhere but on its owner (and never panics): the damage is refused, or distrusted where a
    /// lookup meets it.
    #[test]
    fn a_damaged_ring_table_never_misplaces_a_key(
        at in any::<prop::sample::Index>(),
        with in prop::sample::select(b"AZaz09+/=*-".to_vec()),
        how in 0..3u8,
        keys in prop::collection::vec("[a-z0-9]{1,8}/[a-z0-9-]{1,12}/[a-z.]{1,10}", 1..12),
    ) {
        use tempo_s3_shard_core::ring::Ring;
        let buckets: Vec<String> = RING_BUCKETS.iter().map(|b| b.to_string()).collect();
        let truth = Ring::new(&buckets);
        let entry = truth.table_entry();
        let mut text = entry.split_once(':').map(|(_, t)| t.as_bytes().to_vec()).unwrap_or_default();
        let i = at.index(text.len());
        match how {
            0 => text[i] = with,
            1 => { text.remove(i); }
            _ => text.insert(i, with),
        }
        let ring = Ring::new(&buckets);
        let adopted = ring.adopt_given(String::from_utf8_lossy(&text).into_owned());
        prop_assert_eq!(adopted, how == 0, "only a change that keeps the length is adopted");
        for key in &keys {
            prop_assert_eq!(ring.owner(key), truth.owner(key), "{}", key);
        }
    }
}
