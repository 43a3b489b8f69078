//! Request checks S3 makes whatever the backend would do: conditions of reads and copies,
//! copy-source ranges, the `Range` headers it ignores, and HTTP transfer encodings S3 does not
//! implement.

use crate::error::{ErrorCode, S3Error, S3Result};
use crate::route::header;

/// A checked `x-amz-copy-source-range`: the zero-based offsets of the first and last byte to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyRange {
    pub first: u64,
    pub last: u64,
}

impl CopyRange {
    /// Parse `bytes=first-last` exactly as S3 accepts it (one range, both offsets, first <= last);
    /// anything else is S3's 400 InvalidArgument.
    pub fn parse(value: &str) -> S3Result<CopyRange> {
        let malformed = || {
            S3Error::invalid_argument(
                "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
            )
        };
        let spec = value.trim().strip_prefix("bytes=").ok_or_else(malformed)?;
        let (first, last) = spec.split_once('-').ok_or_else(malformed)?;
        let number = |s: &str| {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u64>().ok()).flatten().ok_or_else(malformed)
        };
        let (first, last) = (number(first)?, number(last)?);
        if first > last {
            return Err(malformed());
        }
        Ok(CopyRange { first, last })
    }

    /// The `Range` header that reads this range from the source.
    pub fn range_header(&self) -> String {
        format!("bytes={}-{}", self.first, self.last)
    }

    /// S3's answer when the range does not fit a source of `size` bytes (400 InvalidArgument, as
    /// S3 itself answers UploadPartCopy).
    pub fn check_size(&self, size: u64) -> S3Result<()> {
        if self.last < size {
            return Ok(());
        }
        Err(S3Error::invalid_argument(format!("Range specified is not valid for source object of size: {size}")))
    }

    /// Check the range against the source GET's answer (`status`, headers): the size comes from its
    /// `Content-Range` (`bytes a-b/size` or, for a 416, `bytes */size`), or its length for a 200.
    /// Other statuses are not about the range and pass.
    pub fn check_source(&self, status: u16, headers: &[(String, String)]) -> S3Result<()> {
        let total = header(headers, "content-range").and_then(|v| v.rsplit('/').next()).and_then(|t| t.trim().parse::<u64>().ok());
        let size = match status {
            206 | 416 => total,
            200 => header(headers, "content-length").and_then(|v| v.trim().parse::<u64>().ok()),
            _ => return Ok(()),
        };
        match size {
            Some(size) => self.check_size(size),
            // A 416 without a size: the range starts beyond the source, whatever its size.
            None if status == 416 => Err(S3Error::invalid_argument("Range specified is not valid for the source object's size")),
            None => Ok(()),
        }
    }
}

/// Which kind of condition failed: an if-match or if-unmodified-since (S3 answers a GET 412
/// PreconditionFailed), or an if-none-match or if-modified-since (a GET gets 304 Not Modified).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    Precondition,
    NotModified,
}

/// Evaluate the conditions named `names` (if-match, if-unmodified-since, if-none-match,
/// if-modified-since) of `client` against an object's `ETag` and `Last-Modified` (from a backend's
/// answer), as S3 does: a passing if-match (if-none-match) overrides a failing
/// if-unmodified-since (if-modified-since); dates that do not parse are ignored.
fn conditions(client: &[(String, String)], object: &[(String, String)], names: [&str; 4]) -> Result<(), Failed> {
    let [if_match, if_unmodified_since, if_none_match, if_modified_since] = names;
    let etag = header(object, "etag").unwrap_or_default();
    let modified = header(object, "last-modified").and_then(crate::clock::parse_http_date);
    let date = |name: &str| header(client, name).and_then(crate::clock::parse_http_date);
    let matches = |name: &str| header(client, name).and_then(|list| etag_in(list, etag));
    match matches(if_match) {
        Some(false) => return Err(Failed::Precondition),
        Some(true) => {}
        None => {
            if let (Some(limit), Some(m)) = (date(if_unmodified_since), modified) {
                if m > limit {
                    return Err(Failed::Precondition);
                }
            }
        }
    }
    match matches(if_none_match) {
        Some(true) => Err(Failed::NotModified),
        Some(false) => Ok(()),
        None => match (date(if_modified_since), modified) {
            (Some(since), Some(m)) if m <= since => Err(Failed::NotModified),
            _ => Ok(()),
        },
    }
}

/// Evaluate a copy's `x-amz-copy-source-if-*` conditions against the source's `ETag` and
/// `Last-Modified` (from the source GET's answer): any failed condition is 412 PreconditionFailed.
/// Backends that ignore conditions on GET are covered.
pub fn copy_source_conditions(client: &[(String, String)], source: &[(String, String)]) -> S3Result<()> {
    let names = ["x-amz-copy-source-if-match", "x-amz-copy-source-if-unmodified-since", "x-amz-copy-source-if-none-match", "x-amz-copy-source-if-modified-since"];
    conditions(client, source, names).map_err(|_| precondition_failed())
}

/// Evaluate a GET's or HEAD's `If-Match`, `If-Unmodified-Since`, `If-None-Match` and
/// `If-Modified-Since` against the object's headers as a backend answered them. A backend that
/// evaluates them has already answered 412 or 304; one that ignores them (s3s-fs) answers 200, and
/// this is what makes the client's answer S3's anyway.
pub fn read_conditions(client: &[(String, String)], object: &[(String, String)]) -> Result<(), Failed> {
    conditions(client, object, ["if-match", "if-unmodified-since", "if-none-match", "if-modified-since"])
}

/// S3's answer to a failed if-match or if-unmodified-since.
pub fn precondition_failed() -> S3Error {
    S3Error::new(ErrorCode::PreconditionFailed, "At least one of the pre-conditions you specified did not hold")
}

/// Whether `etag` is in a conditional header's list (`*` matches any; weak tags compare equal);
/// `None` for a list without any tag (`""`), which names nothing to compare and is ignored: a
/// client copies such a value from a listing of a backend that lists no ETags (s3s-fs).
fn etag_in(list: &str, etag: &str) -> Option<bool> {
    let bare = |t: &str| t.trim().trim_start_matches("W/").trim_matches('"').to_string();
    let tags: Vec<String> = list.split(',').map(bare).filter(|t| !t.is_empty()).collect();
    (!tags.is_empty()).then(|| tags.iter().any(|t| t == "*" || *t == bare(etag)))
}

/// Whether S3 acts on a `Range` header: one `bytes=` range (`first-last` with first <= last,
/// `first-`, or `-suffix`). S3 ignores any other (another unit, several ranges, a reversed or
/// malformed range) and answers with the whole object, so such a header is not forwarded: some
/// backends (s3s-fs) refuse it instead.
pub fn is_honoured_range(value: &str) -> bool {
    let Some((first, last)) = value.trim().strip_prefix("bytes=").and_then(|spec| spec.split_once('-')) else { return false };
    let (first, last) = (first.trim(), last.trim());
    let offset = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    // Offsets of any length compare as numbers once leading zeros are gone.
    let number = |s: &str| { let s = s.trim_start_matches('0'); (s.len(), s.to_string()) };
    match (first.is_empty(), last.is_empty()) {
        (true, _) => offset(last),
        (false, true) => offset(first),
        (false, false) => offset(first) && offset(last) && number(first) <= number(last),
    }
}

/// A `Content-MD5` that is not the base64 of 16 bytes is S3's 400 InvalidDigest, whatever the body
/// (a well-formed one that does not match is the backend's BadDigest to give).
pub fn content_md5_form(headers: &[(String, String)]) -> S3Result<()> {
    match header(headers, "content-md5") {
        Some(md5) if crate::codec::base64_decode(md5.trim()).is_none_or(|d| d.len() != 16) => {
            Err(S3Error::new(ErrorCode::InvalidDigest, "The Content-MD5 you specified is not valid."))
        }
        _ => Ok(()),
    }
}

/// S3 answers a body sent with `Transfer-Encoding: chunked` and no Content-Length with 501
/// NotImplemented (it needs every length up front); refuse it the same way before any backend is asked.
pub fn transfer_encoding(headers: &[(String, String)]) -> S3Result<()> {
    let chunked = header(headers, "transfer-encoding").is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("chunked")));
    if chunked && header(headers, "content-length").is_none() {
        return Err(missing_length(S3Error::new(ErrorCode::MissingContentLength, ""), true));
    }
    Ok(())
}

/// The error for a write that came without any length. WASI hosts (Spin, wasmtime) hide the
/// `Transfer-Encoding` header from the component, so the adapter tells whether body bytes arrived
/// anyway: over HTTP/1.1 that is only possible with `Transfer-Encoding: chunked`, which S3 answers
/// with 501 NotImplemented (see [`transfer_encoding`]); no body at all is 411 MissingContentLength.
pub fn missing_length(err: S3Error, body_arrived: bool) -> S3Error {
    if err.code != ErrorCode::MissingContentLength || !body_arrived {
        return err;
    }
    S3Error::new(
        ErrorCode::NotImplemented,
        "A header you provided implies functionality that is not implemented: Transfer-Encoding: chunked; send a Content-Length (or an aws-chunked body with x-amz-decoded-content-length)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn ranges_s3_ignores_are_told_apart_from_those_it_serves() {
        for served in ["bytes=0-4", "bytes=3-", "bytes=-3", "bytes=0-0", "bytes=5-100", "bytes=100-200", "bytes=9-10", "bytes=007-12", "bytes=1-99999999999999999999999"] {
            assert!(is_honoured_range(served), "{served}");
        }
        for ignored in ["bytes=abc", "items=0-1", "bytes=5-2", "bytes=10-9", "bytes=0-1,3-4", "bytes=-", "bytes=", "bytes=1", "0-4", "bytes=99999999999999999999999-1", "bytes=-x"] {
            assert!(!is_honoured_range(ignored), "{ignored}");
        }
    }

    #[test]
    fn copy_ranges_parse_as_on_s3() {
        assert_eq!(CopyRange::parse("bytes=0-4").unwrap(), CopyRange { first: 0, last: 4 });
        assert_eq!(CopyRange::parse("bytes=7-7").unwrap().range_header(), "bytes=7-7");
        for bad in ["bytes=x-y", "bytes=5-2", "bytes=2-", "bytes=-3", "0-4", "bytes=0-1,3-4", "bytes=+1-2", "bytes=0-99999999999999999999", ""] {
            assert_eq!(CopyRange::parse(bad).unwrap_err().code, ErrorCode::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn copy_ranges_must_fit_the_source() {
        let r = CopyRange::parse("bytes=5-10").unwrap();
        assert!(r.check_size(11).is_ok());
        let err = r.check_size(10).unwrap_err();
        assert_eq!((err.code.clone(), err.status()), (ErrorCode::InvalidArgument, 400));
        assert!(err.message.contains("size: 10"));
        assert!(r.check_source(206, &h(&[("Content-Range", "bytes 5-9/10")])).is_err());
        assert!(r.check_source(206, &h(&[("Content-Range", "bytes 5-10/20")])).is_ok());
        assert!(r.check_source(416, &h(&[("Content-Range", "bytes */3")])).is_err());
        assert!(r.check_source(416, &[]).is_err());
        assert!(r.check_source(200, &h(&[("Content-Length", "8")])).is_err());
        assert!(r.check_source(404, &[]).is_ok());
    }

    #[test]
    fn copy_source_conditions_hold_as_on_s3() {
        let source = h(&[("ETag", "\"abc\""), ("Last-Modified", "Wed, 01 Jan 2025 00:00:00 GMT")]);
        let check = |pairs: &[(&str, &str)]| copy_source_conditions(&h(pairs), &source).map_err(|e| e.code);
        let failed = Err(ErrorCode::PreconditionFailed);
        assert_eq!(check(&[]), Ok(()));
        assert_eq!(check(&[("x-amz-copy-source-if-match", "\"abc\"")]), Ok(()));
        assert_eq!(check(&[("x-amz-copy-source-if-match", "\"x\", *")]), Ok(()));
        assert_eq!(check(&[("x-amz-copy-source-if-match", "\"x\"")]), failed);
        assert_eq!(check(&[("x-amz-copy-source-if-none-match", "abc")]), failed);
        assert_eq!(check(&[("x-amz-copy-source-if-none-match", "\"x\"")]), Ok(()));
        assert_eq!(check(&[("x-amz-copy-source-if-unmodified-since", "Sat, 01 Jan 2000 00:00:00 GMT")]), failed);
        assert_eq!(check(&[("x-amz-copy-source-if-modified-since", "Fri, 01 Jan 2100 00:00:00 GMT")]), failed);
        assert_eq!(check(&[("x-amz-copy-source-if-modified-since", "Sat, 01 Jan 2000 00:00:00 GMT")]), Ok(()));
        // A matching if-match wins over a failing if-unmodified-since; likewise for none-match.
        assert_eq!(check(&[("x-amz-copy-source-if-match", "\"abc\""), ("x-amz-copy-source-if-unmodified-since", "Sat, 01 Jan 2000 00:00:00 GMT")]), Ok(()));
        assert_eq!(check(&[("x-amz-copy-source-if-none-match", "\"x\""), ("x-amz-copy-source-if-modified-since", "Fri, 01 Jan 2100 00:00:00 GMT")]), Ok(()));
    }

    #[test]
    fn read_conditions_fail_as_on_s3_with_412_or_304() {
        let object = h(&[("etag", "\"abc\""), ("last-modified", "Wed, 01 Jan 2025 00:00:00 GMT")]);
        let check = |pairs: &[(&str, &str)]| read_conditions(&h(pairs), &object);
        let (past, future) = ("Sat, 01 Jan 2000 00:00:00 GMT", "Fri, 01 Jan 2100 00:00:00 GMT");
        assert_eq!(check(&[]), Ok(()));
        assert_eq!(check(&[("If-Match", "\"abc\"")]), Ok(()));
        assert_eq!(check(&[("If-Match", "*")]), Ok(()));
        assert_eq!(check(&[("If-Match", "\"other\"")]), Err(Failed::Precondition));
        assert_eq!(check(&[("If-Unmodified-Since", past)]), Err(Failed::Precondition));
        assert_eq!(check(&[("If-Unmodified-Since", future)]), Ok(()));
        assert_eq!(check(&[("If-None-Match", "\"abc\"")]), Err(Failed::NotModified));
        assert_eq!(check(&[("If-None-Match", "W/\"abc\"")]), Err(Failed::NotModified));
        assert_eq!(check(&[("If-None-Match", "*")]), Err(Failed::NotModified));
        assert_eq!(check(&[("If-None-Match", "\"other\"")]), Ok(()));
        assert_eq!(check(&[("If-Modified-Since", future)]), Err(Failed::NotModified));
        assert_eq!(check(&[("If-Modified-Since", past)]), Ok(()));
        assert_eq!(check(&[("If-Modified-Since", "not a date")]), Ok(()));
        // S3: if-match true and if-unmodified-since false is 200; if-none-match false (a match)
        // is 304 whatever if-modified-since says; a failed if-match is 412 before any 304.
        assert_eq!(check(&[("If-Match", "\"abc\""), ("If-Unmodified-Since", past)]), Ok(()));
        assert_eq!(check(&[("If-None-Match", "\"abc\""), ("If-Modified-Since", past)]), Err(Failed::NotModified));
        assert_eq!(check(&[("If-None-Match", "\"other\""), ("If-Modified-Since", future)]), Ok(()));
        assert_eq!(check(&[("If-Match", "\"other\""), ("If-None-Match", "\"abc\"")]), Err(Failed::Precondition));
        // A list without a tag names nothing to compare (a listing without ETags gives clients one).
        assert_eq!(check(&[("If-Match", "\"\"")]), Ok(()));
        assert_eq!(check(&[("If-Match", "")]), Ok(()));
        assert_eq!(check(&[("If-None-Match", "\"\"")]), Ok(()));
    }

    #[test]
    fn a_content_md5_that_is_not_an_md5_is_invalid_digest() {
        assert!(content_md5_form(&h(&[])).is_ok());
        assert!(content_md5_form(&h(&[("Content-MD5", "J1n1ar7PpXUGWx+WKOMGvA==")])).is_ok());
        for bad in ["not-base64!", "", "AAAA", "J1n1ar7PpXUGWx+WKOMGvA"] {
            assert_eq!(content_md5_form(&h(&[("Content-MD5", bad)])).unwrap_err().code, ErrorCode::InvalidDigest, "{bad:?}");
        }
    }

    #[test]
    fn chunked_transfer_without_length_is_not_implemented() {
        let err = transfer_encoding(&h(&[("Transfer-Encoding", "chunked")])).unwrap_err();
        assert_eq!((err.code.clone(), err.status()), (ErrorCode::NotImplemented, 501));
        assert!(transfer_encoding(&h(&[("Transfer-Encoding", "chunked"), ("Content-Length", "5")])).is_ok());
        assert!(transfer_encoding(&h(&[("Content-Length", "5")])).is_ok());
        let missing = || S3Error::new(ErrorCode::MissingContentLength, "m");
        assert_eq!(missing_length(missing(), true).code, ErrorCode::NotImplemented);
        assert_eq!(missing_length(missing(), false).code, ErrorCode::MissingContentLength);
        assert_eq!(missing_length(S3Error::internal("x"), true).code, ErrorCode::InternalError);
    }
}
