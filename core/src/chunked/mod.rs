//! Incremental `aws-chunked` body decoder that releases only verified bytes and checks chunk/trailer signatures and trailing checksums.
//!
//! [`encoder`] writes the same framing, for clients and tests; [`reframe`] frames a decoded body
//! again towards a backend.

pub mod encoder;
pub mod reframe;

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
/// Largest signed chunk whose hash waits for three more of its size, to hash four at once
/// ([`sha256x4`](crate::sha256x4)); larger ones are hashed as they arrive. At most four are held.
pub const BATCHED_CHUNK_SIZE: u64 = 256 * 1024;

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
    /// The signed chunks read whole but not yet checked (`pending`), then the current one: each
    /// held until its signature is checked.
    chunk: Vec<u8>,
    /// The claimed signatures of the chunks at the start of `chunk`, all of one size, in order.
    pending: Vec<String>,
    /// Whether the current chunk is hashed with the pending ones, rather than as it arrives.
    batched: bool,
    /// The hash of the current chunk so far, when it is not batched.
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
            pending: Vec::new(),
            batched: false,
            chunk_hash: Sha256::new(),
            trailers: Vec::new(),
            trailer_signature: None,
            checksum: declared_trailer.map(Checksummer::new),
            total: 0,
            held: None,
            failed: None,
        }
    }

    /// The checksum `x-amz-trailer` declared, which the trailer must carry.
    pub fn declared_trailer(&self) -> Option<ChecksumAlgorithm> {
        self.declared_trailer
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
                        if !self.batched {
                            self.chunk_hash.update(data);
                        }
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
            let held = self.chunk.len() as u64;
            if self.total.saturating_add(held).saturating_add(size) > limit {
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
        self.batched = self.signer.is_some() && size > 0 && size <= BATCHED_CHUNK_SIZE;
        let pending_size = self.chunk.len().checked_div(self.pending.len()).unwrap_or_default();
        if !self.pending.is_empty() && (!self.batched || size != pending_size as u64) {
            self.check_pending(out)?;
        }
        if size == 0 {
            self.end_chunk(out)?;
            self.state = State::Trailer;
        } else {
            self.state = State::Data { remaining: size };
        }
        Ok(())
    }

    /// A chunk's data is all read: check its signature, then release it (a batched chunk: once
    /// four are pending).
    fn end_chunk(&mut self, out: &mut Vec<u8>) -> Result<(), S3Error> {
        if self.signer.is_none() {
            return Ok(());
        }
        let claimed = self.claimed.take().unwrap_or_default();
        if self.batched {
            self.pending.push(claimed);
            return if self.pending.len() == 4 { self.check_pending(out) } else { Ok(()) };
        }
        let hash: [u8; 32] = self.chunk_hash.finalize_reset().into();
        let chunk = std::mem::take(&mut self.chunk);
        self.check(&hash, &claimed, &chunk, out)?;
        self.chunk = chunk;
        self.chunk.clear();
        Ok(())
    }

    /// Check the pending chunks' signatures in order, hashing them four at a time, and release them.
    fn check_pending(&mut self, out: &mut Vec<u8>) -> Result<(), S3Error> {
        let (chunk, pending) = (std::mem::take(&mut self.chunk), std::mem::take(&mut self.pending));
        let size = chunk.len().checked_div(pending.len()).unwrap_or_default().max(1);
        let datas: Vec<&[u8]> = chunk.chunks(size).collect();
        for (claims, group) in pending.chunks(4).zip(datas.chunks(4)) {
            let hashes = match *group {
                [one] => vec![Sha256::digest(one).into()],
                // Two or three: the idle lanes hash a copy.
                [a, b] => crate::sha256x4::digest4([a, b, b, b])[..2].to_vec(),
                [a, b, c] => crate::sha256x4::digest4([a, b, c, c])[..3].to_vec(),
                [a, b, c, d] => crate::sha256x4::digest4([a, b, c, d]).to_vec(),
                _ => Vec::new(),
            };
            for ((hash, claimed), data) in hashes.iter().zip(claims).zip(group) {
                self.check(hash, claimed, data, out)?;
            }
        }
        (self.chunk, self.pending) = (chunk, pending);
        self.chunk.clear();
        self.pending.clear();
        Ok(())
    }

    /// Check the next chunk's signature against the hash of its data, then release the data.
    fn check(&mut self, hash: &[u8; 32], claimed: &str, data: &[u8], out: &mut Vec<u8>) -> Result<(), S3Error> {
        let expected = self.signer.as_mut().map(|signer| signer.sign_chunk_hash(hash)).unwrap_or_default();
        if !constant_time_eq(expected.as_bytes(), claimed.as_bytes()) {
            return Err(S3Error::new(
                ErrorCode::SignatureDoesNotMatch,
                "aws-chunked: a chunk signature does not match its data",
            ));
        }
        self.release(data, out)
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

#[cfg(test)]
mod tests;
