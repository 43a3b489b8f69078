//! How a client's request body reaches a backend: its length, S3's limits, and the filter that checks it.

use crate::chunked::{reframe::Reframe, ChunkedDecoder, Trailers};
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::route::{header, Operation, RequestParts};
use crate::sigv4::{self, PayloadMode};
use crate::xml;

/// The largest object a single PUT may carry, as on S3.
pub const MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Request bodies up to this size are held in memory so a write can be retried transparently
/// (after the proxy created a missing backend bucket, or on a dropped connection); larger bodies
/// stream and are never buffered.
pub const RETRY_BUFFER_LIMIT: usize = 1024 * 1024;

/// How the client's request body reaches the backend.
#[derive(Debug)]
pub enum Body {
    /// No body is sent.
    Empty,
    /// `length` bytes (the backend's Content-Length) stream through `filter`.
    Stream { length: u64, filter: BodyFilter },
}

impl Body {
    /// The Content-Length the backend receives.
    pub fn length(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Stream { length, .. } => *length,
        }
    }
}

/// What the proxy checks on a streamed body before the backend may see all of it. Every filter
/// but `Passthrough` withholds the last byte until [`BodyFilter::finish`] succeeds, so a body that
/// fails its check never reaches the backend complete and is never stored.
#[derive(Debug)]
pub enum BodyFilter {
    /// Bytes go through unchanged.
    Passthrough,
    /// The client signed this SHA-256 of the body (`x-amz-content-sha256`).
    Sha256 { expected: String, hasher: sha2::Sha256, held: Option<u8> },
    /// `aws-chunked` framing: decoded, chunk signatures and trailing checksum verified.
    AwsChunked(Box<ChunkedDecoder>),
    /// As `AwsChunked`, then framed again with the trailing checksum for the backend (a streamed
    /// upload, see [`crate::chunked::reframe`]).
    Reframed(Box<Reframe>),
}

impl BodyFilter {
    pub fn is_passthrough(&self) -> bool {
        matches!(self, BodyFilter::Passthrough)
    }

    /// An aws-chunked body with a trailing checksum, framed again for the backend so the checksum
    /// reaches it; any other filter as it is.
    pub fn reframed(self) -> BodyFilter {
        match self {
            BodyFilter::AwsChunked(decoder) => match decoder.declared_trailer() {
                Some(algorithm) => BodyFilter::Reframed(Box::new(Reframe::new(*decoder, algorithm))),
                None => BodyFilter::AwsChunked(decoder),
            },
            other => other,
        }
    }

    /// Feed received bytes; appends what may be forwarded now to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> S3Result<()> {
        use sha2::Digest;
        match self {
            BodyFilter::Passthrough => out.extend_from_slice(input),
            BodyFilter::Sha256 { hasher, held, .. } => {
                let Some((&last, rest)) = input.split_last() else { return Ok(()) };
                hasher.update(input);
                out.extend(held.take());
                out.extend_from_slice(rest);
                *held = Some(last);
            }
            BodyFilter::AwsChunked(decoder) => decoder.push(input, out)?,
            BodyFilter::Reframed(reframe) => reframe.push(input, out)?,
        }
        Ok(())
    }

    /// Pass one piece through: the piece itself when nothing is checked, else what may be
    /// forwarded of it now.
    pub fn pass(&mut self, piece: Vec<u8>) -> S3Result<Vec<u8>> {
        if self.is_passthrough() {
            return Ok(piece);
        }
        // Sized for the piece up front, so decoding into it never reallocates as it grows.
        let mut out = Vec::with_capacity(piece.len() + 1);
        self.push(&piece, &mut out)?;
        Ok(out)
    }

    /// At the end of the body: check it; what was withheld, to forward last.
    pub fn end(&mut self) -> S3Result<Vec<u8>> {
        let mut out = Vec::new();
        self.finish(&mut out)?;
        Ok(out)
    }

    /// At the end of the body: check it, then release what was withheld into `out`. Returns what
    /// an aws-chunked body's trailer carried (its checksum, already verified).
    pub fn finish(&mut self, out: &mut Vec<u8>) -> S3Result<Trailers> {
        use sha2::Digest;
        match self {
            BodyFilter::Passthrough => Ok(Trailers::default()),
            BodyFilter::Sha256 { expected, hasher, held } => {
                let actual = crate::codec::hex(&hasher.clone().finalize());
                if !sigv4::verify::constant_time_eq(actual.as_bytes(), expected.to_ascii_lowercase().as_bytes()) {
                    return Err(S3Error::new(
                        ErrorCode::XAmzContentSHA256Mismatch,
                        "The provided 'x-amz-content-sha256' header does not match what was computed.",
                    ));
                }
                out.extend(held.take());
                Ok(Trailers::default())
            }
            BodyFilter::AwsChunked(decoder) => decoder.finish(out),
            BodyFilter::Reframed(reframe) => reframe.finish(out),
        }
    }
}

/// Work out how the request body reaches the backend, enforcing S3's limits on the way in.
pub fn request_body(op: &Operation, parts: &RequestParts, payload: PayloadMode) -> S3Result<Body> {
    let content_length = match header(&parts.headers, "content-length") {
        Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
            S3Error::invalid_argument(format!("invalid Content-Length header: {v:?}"))
        })?),
        None => None,
    };
    let takes_body = matches!(
        op,
        Operation::PutObject { .. }
            | Operation::UploadPart { .. }
            | Operation::PutObjectTagging { .. }
            | Operation::CompleteMultipartUpload { .. }
            | Operation::DeleteObjects
    );
    if !takes_body {
        return Ok(Body::Empty);
    }
    crate::checks::transfer_encoding(&parts.headers)?;
    crate::checks::content_md5_form(&parts.headers)?;
    let streaming = match &payload {
        PayloadMode::StreamingSigned(_)
        | PayloadMode::StreamingSignedTrailer(_)
        | PayloadMode::StreamingUnsignedTrailer => true,
        _ => header(&parts.headers, "content-encoding")
            .is_some_and(|v| v.split(',').any(|e| e.trim().eq_ignore_ascii_case("aws-chunked"))),
    };
    if streaming && matches!(payload, PayloadMode::Sha256(_)) {
        // Decoding would skip the check of the signed digest, letting anyone who adds the
        // (possibly unsigned) Content-Encoding header swap the body of a signed request.
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "an aws-chunked body needs a STREAMING-* x-amz-content-sha256, not the SHA-256 of the body",
        ));
    }
    let length = if streaming {
        let decoded = header(&parts.headers, "x-amz-decoded-content-length").ok_or_else(|| {
            S3Error::new(
                ErrorCode::MissingContentLength,
                "aws-chunked uploads must send x-amz-decoded-content-length",
            )
        })?;
        decoded.trim().parse::<u64>().map_err(|_| {
            S3Error::invalid_argument(format!("invalid x-amz-decoded-content-length: {decoded:?}"))
        })?
    } else {
        content_length.ok_or_else(|| {
            S3Error::new(ErrorCode::MissingContentLength, "You must provide the Content-Length HTTP header")
        })?
    };
    if length > MAX_PUT_SIZE {
        return Err(S3Error::new(
            ErrorCode::EntityTooLarge,
            format!(
                "Your proposed upload of {length} bytes exceeds the maximum allowed object size of {MAX_PUT_SIZE} bytes; use a multipart upload"
            ),
        ));
    }
    let filter = if streaming {
        let trailer = header(&parts.headers, "x-amz-trailer")
            .map(|t| {
                crate::checksum::ChecksumAlgorithm::from_header_name(t.trim()).ok_or_else(|| {
                    S3Error::invalid_argument(format!("unsupported x-amz-trailer: {t:?}"))
                })
            })
            .transpose()?;
        let decoder = ChunkedDecoder::for_payload(&payload, trailer, Some(length))
            .unwrap_or_else(|| ChunkedDecoder::new(None, false, trailer, Some(length)));
        BodyFilter::AwsChunked(Box::new(decoder))
    } else if let PayloadMode::Sha256(expected) = payload {
        BodyFilter::Sha256 { expected, hasher: Default::default(), held: None }
    } else {
        BodyFilter::Passthrough
    };
    Ok(Body::Stream { length, filter })
}

/// Check a buffered request body the proxy understands before a backend sees it, so clients get
/// S3's own answer (MalformedXML, InvalidPartOrder, …) whatever the backend would have said.
pub fn validate_body(op: &Operation, body: &[u8]) -> S3Result<()> {
    match op {
        Operation::CompleteMultipartUpload { .. } => xml::parse_complete_multipart(body).map(|_| ()),
        Operation::PutObjectTagging { .. } => xml::parse_tagging(body).map(|_| ()),
        _ => Ok(()),
    }
}

