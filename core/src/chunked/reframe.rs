//! A streamed aws-chunked upload framed again towards its backend: the decoded (verified) data in
//! fixed-size chunks, then the trailing checksum the client sent, so the backend verifies and stores
//! it as S3 does; a streamed body cannot carry it as a header, which goes out before the data.
//!
//! The backend request is `STREAMING-UNSIGNED-PAYLOAD-TRAILER` (the proxy has checked the client's
//! signatures; the chunks need none) and its Content-Length is known up front: every chunk but the
//! last is [`CHUNK`] bytes, and the checksum's base64 has one length per algorithm. Nothing of the
//! last chunk, and neither the final chunk nor the trailer, is released before the client's body
//! has been verified whole, so a body that fails a check never reaches the backend complete.

use super::{ChunkedDecoder, Trailers};
use crate::checksum::ChecksumAlgorithm;
use crate::codec::{base64_decode, base64_encode};
use crate::error::S3Result;

/// Decoded bytes per chunk towards the backend.
pub const CHUNK: usize = 64 * 1024;

/// The decoder of the client's body and the chunk being filled.
#[derive(Debug)]
pub struct Reframe {
    decoder: ChunkedDecoder,
    algorithm: ChecksumAlgorithm,
    pending: Vec<u8>,
}

impl Reframe {
    /// Frame what `decoder` releases, ending with the trailing `algorithm` checksum it verifies.
    pub fn new(decoder: ChunkedDecoder, algorithm: ChecksumAlgorithm) -> Reframe {
        Reframe { decoder, algorithm, pending: Vec::new() }
    }

    /// The headers of the backend request for `decoded` bytes, replacing `Content-Length` and
    /// putting `aws-chunked` first in `Content-Encoding` (the client's other encodings stay).
    pub fn headers(&self, headers: &mut Vec<(String, String)>, decoded: u64) {
        let other = headers.iter().find(|(n, _)| n == "content-encoding").map(|(_, v)| v.clone());
        headers.retain(|(n, _)| n != "content-length" && n != "content-encoding");
        let encoding = other.map_or("aws-chunked".to_string(), |v| format!("aws-chunked,{v}"));
        headers.push(("content-encoding".into(), encoding));
        headers.push(("content-length".into(), framed_length(decoded, self.algorithm).to_string()));
        headers.push(("x-amz-decoded-content-length".into(), decoded.to_string()));
        headers.push(("x-amz-trailer".into(), self.algorithm.header_name().into()));
    }

    /// Feed the client's bytes; appends the whole chunks they complete to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> S3Result<()> {
        self.decoder.push(input, &mut self.pending)?;
        let whole = self.pending.len() / CHUNK * CHUNK;
        for chunk in self.pending[..whole].chunks(CHUNK) {
            frame(chunk, out);
        }
        self.pending.drain(..whole);
        Ok(())
    }

    /// At the end of the client's body: verify it, then append the last chunk, the final one and
    /// the trailer to `out`.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> S3Result<Trailers> {
        let trailers = self.decoder.finish(&mut self.pending)?;
        if !self.pending.is_empty() {
            frame(&self.pending, out);
        }
        self.pending.clear();
        let header = self.algorithm.header_name();
        // The decoder compared the value's bytes with the data; sent in canonical base64, its length
        // is the one `framed_length` counted.
        let value = trailers.checksum.as_ref().and_then(|(_, v)| base64_decode(v)).map(|b| base64_encode(&b)).unwrap_or_default();
        out.extend_from_slice(format!("0\r\n{header}:{value}\r\n\r\n").as_bytes());
        Ok(trailers)
    }
}

/// One chunk: `hex-size CRLF data CRLF`.
fn frame(data: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The length of `decoded` bytes framed in [`CHUNK`]s with an `algorithm` trailer.
pub fn framed_length(decoded: u64, algorithm: ChecksumAlgorithm) -> u64 {
    let chunk = |size: u64| format!("{size:x}").len() as u64 + 2 + size + 2;
    let (whole, rest) = (decoded / CHUNK as u64, decoded % CHUNK as u64);
    let value = 4 * algorithm.digest_len().div_ceil(3) as u64;
    let trailer = algorithm.header_name().len() as u64 + 1 + value + 2;
    whole * chunk(CHUNK as u64) + if rest > 0 { chunk(rest) } else { 0 } + 3 + trailer + 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::Checksummer;
    use crate::chunked::encoder::encode;

    fn checksum(algorithm: ChecksumAlgorithm, data: &[u8]) -> String {
        let mut c = Checksummer::new(algorithm);
        c.update(data);
        c.finish_base64()
    }

    /// The client's unsigned aws-chunked upload of `data` in `client_chunk`s, fed in `piece`s.
    fn reframed(data: &[u8], algorithm: ChecksumAlgorithm, client_chunk: usize, piece: usize) -> S3Result<Vec<u8>> {
        let value = checksum(algorithm, data);
        let body = encode(data, client_chunk, None, &[(algorithm.header_name(), &value)], false);
        let decoder = ChunkedDecoder::new(None, false, Some(algorithm), Some(data.len() as u64));
        let mut reframe = Reframe::new(decoder, algorithm);
        let mut out = Vec::new();
        for p in body.chunks(piece) {
            reframe.push(p, &mut out)?;
        }
        reframe.finish(&mut out)?;
        Ok(out)
    }

    #[test]
    fn the_backend_gets_fixed_chunks_then_the_verified_trailer() {
        let data: Vec<u8> = (0..CHUNK * 2 + 100).map(|i| (i % 251) as u8).collect();
        let out = reframed(&data, ChecksumAlgorithm::Crc32, 8192, 1000).unwrap();
        let value = checksum(ChecksumAlgorithm::Crc32, &data);
        let expected = encode(&data, CHUNK, None, &[("x-amz-checksum-crc32", &value)], false);
        assert_eq!(out, expected);
    }

    #[test]
    fn the_framed_length_is_what_is_sent_for_every_algorithm_and_size() {
        for algorithm in ChecksumAlgorithm::ALL {
            for size in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 1_100_000] {
                let data = vec![7u8; size];
                let out = reframed(&data, algorithm, 10_000, 4096).unwrap();
                assert_eq!(out.len() as u64, framed_length(size as u64, algorithm), "{algorithm:?}, {size} bytes");
            }
        }
    }

    #[test]
    fn a_wrong_checksum_releases_no_last_chunk_and_no_trailer() {
        let data = vec![1u8; CHUNK + 10];
        let body = encode(&data, 8192, None, &[("x-amz-checksum-crc32", "AAAAAA==")], false);
        let decoder = ChunkedDecoder::new(None, false, Some(ChecksumAlgorithm::Crc32), Some(data.len() as u64));
        let mut reframe = Reframe::new(decoder, ChecksumAlgorithm::Crc32);
        let mut out = Vec::new();
        reframe.push(&body, &mut out).unwrap();
        assert_eq!(out.len(), 5 + 2 + CHUNK + 2, "only the first whole chunk");
        assert!(reframe.finish(&mut out).is_err());
        assert_eq!(out.len(), 5 + 2 + CHUNK + 2);
    }

    #[test]
    fn headers_announce_the_framing_and_keep_other_encodings() {
        let decoder = ChunkedDecoder::new(None, false, Some(ChecksumAlgorithm::Sha256), Some(10));
        let reframe = Reframe::new(decoder, ChecksumAlgorithm::Sha256);
        let mut headers = vec![("content-encoding".to_string(), "gzip".to_string()), ("content-length".into(), "10".into())];
        reframe.headers(&mut headers, 10);
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("content-encoding"), Some("aws-chunked,gzip"));
        assert_eq!(get("content-length"), Some(framed_length(10, ChecksumAlgorithm::Sha256).to_string().as_str()));
        assert_eq!(get("x-amz-decoded-content-length"), Some("10"));
        assert_eq!(get("x-amz-trailer"), Some("x-amz-checksum-sha256"));
        assert_eq!(headers.len(), 4);
    }
}
