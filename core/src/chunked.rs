//! Incremental `aws-chunked` body decoder that releases only verified bytes and checks chunk/trailer signatures and trailing checksums.

use crate::checksum::{ChecksumAlgorithm, Checksummer};
use crate::codec::base64_decode;
use crate::error::{ErrorCode, S3Error};
use crate::sigv4::chunk::ChunkSigner;
use crate::sigv4::verify::constant_time_eq;
use crate::sigv4::PayloadMode;
use sha2::{Digest, Sha256};

/// Largest chunk accepted (a signed chunk is buffered whole until its signature checks out).
pub const MAX_CHUNK_SIZE: u64 = 16 * 1024 * 1024;
/// Largest chunk header line (`hex-size;chunk-signature=...`), CRLF included.
pub const MAX_HEADER_LINE: usize = 4096;
/// Largest trailer section (all trailer lines and the final empty line).
pub const MAX_TRAILER: usize = 4096;

/// What the trailer of the body carried, once verified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trailers {
    /// The declared checksum trailer and its base64 value (already compared with the data).
    pub checksum: Option<(ChecksumAlgorithm, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading `hex-size[;ext]\r\n`.
    ChunkHeader,
    /// Reading chunk data.
    Data { remaining: u64 },
    /// Reading the `\r\n` after chunk data (`seen` bytes of it so far).
    DataEnd { seen: u8 },
    /// Reading trailer lines until an empty one.
    Trailer,
    /// The body is complete; `finish` has not run yet.
    Done,
    /// `finish` succeeded.
    Finished,
}

fn invalid(message: impl Into<String>) -> S3Error {
    S3Error::new(ErrorCode::InvalidRequest, message)
}

fn incomplete(message: impl Into<String>) -> S3Error {
    S3Error::new(ErrorCode::IncompleteBody, message)
}

/// Decodes an aws-chunked body pushed in pieces of any size; see `push` and `finish`.
#[derive(Debug)]
pub struct ChunkedDecoder {
    signer: Option<ChunkSigner>,
    signed_trailer: bool,
    declared_trailer: Option<ChecksumAlgorithm>,
    decoded_length: Option<u64>,
    state: State,
    /// The header or trailer line being read.
    line: Vec<u8>,
    /// Bytes of trailer read so far.
    trailer_len: usize,
    /// `chunk-signature` of the current chunk.
    claimed: Option<String>,
    /// The current signed chunk, held until its signature is checked.
    chunk: Vec<u8>,
    chunk_hash: Sha256,
    trailers: Vec<(String, String)>,
    trailer_signature: Option<String>,
    checksum: Option<Checksummer>,
    /// Decoded bytes released so far (including the held byte).
    total: u64,
    /// The last decoded byte, withheld until `finish`.
    held: Option<u8>,
    failed: Option<S3Error>,
}

impl ChunkedDecoder {
    /// `signer`: verify chunk signatures with it (None: signatures are ignored). `signed_trailer`: the
    /// trailer carries `x-amz-trailer-signature`. `declared_trailer`: checksum named by `x-amz-trailer`.
    /// `decoded_length`: `x-amz-decoded-content-length`.
    pub fn new(
        signer: Option<ChunkSigner>,
        signed_trailer: bool,
        declared_trailer: Option<ChecksumAlgorithm>,
        decoded_length: Option<u64>,
    ) -> ChunkedDecoder {
        ChunkedDecoder {
            signer,
            signed_trailer,
            declared_trailer,
            decoded_length,
            state: State::ChunkHeader,
            line: Vec::new(),
            trailer_len: 0,
            claimed: None,
            chunk: Vec::new(),
            chunk_hash: Sha256::new(),
            trailers: Vec::new(),
            trailer_signature: None,
            checksum: declared_trailer.map(Checksummer::new),
            total: 0,
            held: None,
            failed: None,
        }
    }

    /// The decoder for a body in `mode`, or None if the mode is not aws-chunked.
    pub fn for_payload(
        mode: &PayloadMode,
        declared_trailer: Option<ChecksumAlgorithm>,
        decoded_length: Option<u64>,
    ) -> Option<ChunkedDecoder> {
        let (signer, signed_trailer) = match mode {
            PayloadMode::StreamingSigned(s) => (Some(s.clone()), false),
            PayloadMode::StreamingSignedTrailer(s) => (Some(s.clone()), true),
            PayloadMode::StreamingUnsignedTrailer => (None, false),
            PayloadMode::Unsigned | PayloadMode::Sha256(_) => return None,
        };
        Some(ChunkedDecoder::new(
            signer,
            signed_trailer,
            declared_trailer,
            decoded_length,
        ))
    }

    /// Feed the next piece of the body; appends to `out` the decoded bytes that are safe to forward.
    /// The last decoded byte is always withheld until `finish`. After an error every call fails.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), S3Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.push_inner(input, out);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    /// Call at the end of the input: checks that the body is complete, its length, the trailer
    /// signature and the trailing checksum, then releases the withheld byte(s) into `out`.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<Trailers, S3Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.finish_inner(out);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    fn push_inner(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), S3Error> {
        let mut rest = input;
        while !rest.is_empty() {
            match self.state {
                State::ChunkHeader => {
                    if let Some(line) = self.read_line(&mut rest, MAX_HEADER_LINE)? {
                        self.on_chunk_header(&line, out)?;
                    }
                }
                State::Data { remaining } => {
                    let n = usize::try_from(remaining).map_or(rest.len(), |r| r.min(rest.len()));
                    let (data, tail) = rest.split_at(n);
                    rest = tail;
                    if self.signer.is_some() {
                        self.chunk_hash.update(data);
                        self.chunk.extend_from_slice(data);
                    } else {
                        self.release(data, out)?;
                    }
                    let remaining = remaining - n as u64;
                    self.state = State::Data { remaining };
                    if remaining == 0 {
                        self.end_chunk(out)?;
                        self.state = State::DataEnd { seen: 0 };
                    }
                }
                State::DataEnd { seen } => {
                    let expected = if seen == 0 { b'\r' } else { b'\n' };
                    match rest.split_first() {
                        Some((&b, tail)) if b == expected => {
                            rest = tail;
                            self.state = if seen == 0 {
                                State::DataEnd { seen: 1 }
                            } else {
                                State::ChunkHeader
                            };
                        }
                        _ => {
                            return Err(invalid("aws-chunked: chunk data is not followed by CRLF"))
                        }
                    }
                }
                State::Trailer => {
                    let limit = MAX_TRAILER.saturating_sub(self.trailer_len);
                    if let Some(line) = self.read_line(&mut rest, limit)? {
                        self.trailer_len += line.len() + 2;
                        self.on_trailer_line(&line)?;
                    }
                }
                State::Done | State::Finished => {
                    return Err(invalid("aws-chunked: data after the end of the body"));
                }
            }
        }
        Ok(())
    }

    /// Accumulate up to a `\n`; return the line without its CRLF once complete.
    fn read_line(&mut self, rest: &mut &[u8], limit: usize) -> Result<Option<Vec<u8>>, S3Error> {
        let (piece, complete) = match rest.iter().position(|&b| b == b'\n') {
            Some(p) => rest.split_at(p + 1),
            None => (*rest, &[][..]),
        };
        let done = piece.last() == Some(&b'\n');
        if self.line.len() + piece.len() > limit {
            return Err(invalid("aws-chunked: chunk header or trailer too long"));
        }
        self.line.extend_from_slice(piece);
        *rest = complete;
        if !done {
            return Ok(None);
        }
        let mut line = std::mem::take(&mut self.line);
        if !line.ends_with(b"\r\n") {
            return Err(invalid("aws-chunked: line not terminated by CRLF"));
        }
        line.truncate(line.len() - 2);
        Ok(Some(line))
    }

    fn on_chunk_header(&mut self, line: &[u8], out: &mut Vec<u8>) -> Result<(), S3Error> {
        let text = std::str::from_utf8(line)
            .map_err(|_| invalid("aws-chunked: chunk header is not text"))?;
        let mut parts = text.split(';');
        let size = parts.next().unwrap_or("");
        if size.is_empty() || size.len() > 16 || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(format!("aws-chunked: bad chunk size {size:?}")));
        }
        let size =
            u64::from_str_radix(size, 16).map_err(|_| invalid("aws-chunked: bad chunk size"))?;
        if size > MAX_CHUNK_SIZE {
            return Err(invalid(format!(
                "aws-chunked: chunk of {size} bytes exceeds the {MAX_CHUNK_SIZE} byte limit"
            )));
        }
        if let Some(limit) = self.decoded_length {
            if self.total.saturating_add(size) > limit {
                return Err(incomplete(
                    "aws-chunked: body is longer than x-amz-decoded-content-length",
                ));
            }
        }
        self.claimed = parts
            .find_map(|ext| ext.trim().strip_prefix("chunk-signature="))
            .map(str::to_string);
        if self.signer.is_some() && self.claimed.is_none() {
            return Err(invalid("aws-chunked: chunk has no chunk-signature"));
        }
        if size == 0 {
            self.end_chunk(out)?;
            self.state = State::Trailer;
        } else {
            self.state = State::Data { remaining: size };
        }
        Ok(())
    }

    /// A chunk's data is all read: check its signature, then release it.
    fn end_chunk(&mut self, out: &mut Vec<u8>) -> Result<(), S3Error> {
        let Some(signer) = self.signer.as_mut() else {
            return Ok(());
        };
        let hash: [u8; 32] = self.chunk_hash.finalize_reset().into();
        let expected = signer.sign_chunk_hash(&hash);
        let claimed = self.claimed.take().unwrap_or_default();
        if !constant_time_eq(expected.as_bytes(), claimed.as_bytes()) {
            return Err(S3Error::new(
                ErrorCode::SignatureDoesNotMatch,
                "aws-chunked: a chunk signature does not match its data",
            ));
        }
        let chunk = std::mem::take(&mut self.chunk);
        self.release(&chunk, out)?;
        self.chunk = chunk;
        self.chunk.clear();
        Ok(())
    }

    fn on_trailer_line(&mut self, line: &[u8]) -> Result<(), S3Error> {
        if line.is_empty() {
            self.state = State::Done;
            return Ok(());
        }
        let text =
            std::str::from_utf8(line).map_err(|_| invalid("aws-chunked: trailer is not text"))?;
        let (name, value) = text
            .split_once(':')
            .ok_or_else(|| invalid("aws-chunked: trailer line is not name:value"))?;
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
        if name == "x-amz-trailer-signature" {
            self.trailer_signature = Some(value);
        } else {
            self.trailers.push((name, value));
        }
        Ok(())
    }

    /// Count, checksum and forward decoded bytes, keeping the very last byte back.
    fn release(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), S3Error> {
        let Some((&last, init)) = data.split_last() else {
            return Ok(());
        };
        self.total = self.total.saturating_add(data.len() as u64);
        if let Some(limit) = self.decoded_length {
            if self.total > limit {
                return Err(incomplete(
                    "aws-chunked: body is longer than x-amz-decoded-content-length",
                ));
            }
        }
        if let Some(c) = self.checksum.as_mut() {
            c.update(data);
        }
        if let Some(b) = self.held.replace(last) {
            out.push(b);
        }
        out.extend_from_slice(init);
        Ok(())
    }

    fn finish_inner(&mut self, out: &mut Vec<u8>) -> Result<Trailers, S3Error> {
        match self.state {
            State::Done => {}
            State::Finished => return Err(invalid("aws-chunked: finish called twice")),
            _ => {
                return Err(incomplete(
                    "aws-chunked: the body ended before its final chunk and trailer",
                ))
            }
        }
        if let Some(limit) = self.decoded_length {
            if self.total != limit {
                return Err(incomplete(format!(
                    "aws-chunked: decoded {} bytes but x-amz-decoded-content-length is {limit}",
                    self.total
                )));
            }
        }
        if self.signed_trailer {
            if let Some(signer) = self.signer.as_mut() {
                let mut canonical = String::new();
                for (name, value) in &self.trailers {
                    canonical.push_str(&format!("{name}:{value}\n"));
                }
                let expected = signer.sign_trailer(canonical.as_bytes());
                match &self.trailer_signature {
                    Some(claimed) if constant_time_eq(expected.as_bytes(), claimed.as_bytes()) => {}
                    Some(_) => {
                        return Err(S3Error::new(
                            ErrorCode::SignatureDoesNotMatch,
                            "aws-chunked: the trailer signature does not match the trailer",
                        ))
                    }
                    None => {
                        return Err(invalid(
                            "aws-chunked: the trailer has no x-amz-trailer-signature",
                        ))
                    }
                }
            }
        }
        let mut result = Trailers::default();
        for (name, _) in &self.trailers {
            let alg = ChecksumAlgorithm::from_header_name(name);
            if alg.is_some() && alg != self.declared_trailer {
                return Err(invalid(format!(
                    "aws-chunked: trailer {name} was not declared in x-amz-trailer"
                )));
            }
        }
        if let Some(alg) = self.declared_trailer {
            let header = alg.header_name();
            let value = self
                .trailers
                .iter()
                .find(|(n, _)| n == header)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| {
                    invalid(format!(
                        "aws-chunked: x-amz-trailer declares {header} but the trailer lacks it"
                    ))
                })?;
            let claimed = base64_decode(&value)
                .filter(|b| b.len() == alg.digest_len())
                .ok_or_else(|| {
                    invalid(format!("Value for {header} trailing header is invalid."))
                })?;
            let computed = self
                .checksum
                .as_ref()
                .map(Checksummer::finish)
                .unwrap_or_default();
            if claimed != computed {
                return Err(S3Error::new(
                    ErrorCode::BadDigest,
                    format!(
                        "The {} you specified did not match the calculated checksum.",
                        alg.name()
                    ),
                ));
            }
            result.checksum = Some((alg, value));
        }
        if let Some(b) = self.held.take() {
            out.push(b);
        }
        self.state = State::Finished;
        Ok(result)
    }
}

/// Encode `data` as aws-chunked in `chunk`-byte chunks (chunk-signed when `signer` is given), then
/// the trailer lines (signed when `sign_trailer`): the framing [`ChunkedDecoder`] reads, for tests
/// and tools that act as clients.
pub fn encode(
    data: &[u8],
    chunk: usize,
    mut signer: Option<&mut ChunkSigner>,
    trailer: &[(&str, &str)],
    sign_trailer: bool,
) -> Vec<u8> {
    let mut body = Vec::new();
    let mut pieces: Vec<&[u8]> = data.chunks(chunk.max(1)).collect();
    pieces.push(b"");
    for piece in pieces {
        body.extend_from_slice(format!("{:x}", piece.len()).as_bytes());
        if let Some(s) = signer.as_mut() {
            body.extend_from_slice(format!(";chunk-signature={}", s.sign_chunk(piece)).as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(piece);
        if !piece.is_empty() {
            body.extend_from_slice(b"\r\n");
        }
    }
    let mut canonical = String::new();
    for (n, v) in trailer {
        body.extend_from_slice(format!("{n}:{v}\r\n").as_bytes());
        canonical.push_str(&format!("{n}:{v}\n"));
    }
    if sign_trailer {
        if let Some(s) = signer.as_mut() {
            let sig = s.sign_trailer(canonical.as_bytes());
            body.extend_from_slice(format!("x-amz-trailer-signature:{sig}\r\n").as_bytes());
        }
    }
    body.extend_from_slice(b"\r\n");
    body
}

#[cfg(test)]
mod tests {
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
        super::encode(data, chunk, signer.as_mut(), trailer, sign_trailer)
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
}
