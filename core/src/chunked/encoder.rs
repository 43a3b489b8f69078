//! Encoding a body as `aws-chunked` (chunk-signed or not, with trailers): the framing the decoder reads, for clients and tests.

use crate::sigv4::chunk::ChunkSigner;

/// Encode `data` as aws-chunked in `chunk`-byte chunks (chunk-signed when `signer` is given), then
/// the trailer lines (signed when `sign_trailer`): the framing [`super::ChunkedDecoder`] reads, for tests
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
        body.extend_from_slice(&frame(piece, signer.as_deref_mut()));
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

/// One chunk framed: its size, its signature when `signer` is given (advancing the chain), CRLF, the
/// data and, after data, CRLF. The empty final chunk is followed by the trailer, then CRLF.
pub fn frame(piece: &[u8], signer: Option<&mut ChunkSigner>) -> Vec<u8> {
    let mut framed = format!("{:x}", piece.len()).into_bytes();
    if let Some(s) = signer {
        framed.extend_from_slice(format!(";chunk-signature={}", s.sign_chunk(piece)).as_bytes());
    }
    framed.extend_from_slice(b"\r\n");
    framed.extend_from_slice(piece);
    if !piece.is_empty() {
        framed.extend_from_slice(b"\r\n");
    }
    framed
}
