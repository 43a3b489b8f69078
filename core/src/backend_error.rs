//! What a backend's answer means for the client: success, or the S3 error it turns into.

use crate::error::{ErrorCode, S3Error};
use crate::xml;

/// How much of a backend error body the proxy reads to learn the S3 error code.
pub const MAX_ERROR_BODY: usize = 64 * 1024;
/// The largest backend listing or batch answer the proxy reads (1000 keys of 1 KiB, with room).
pub const MAX_LIST_BODY: usize = 8 * 1024 * 1024;

/// Whether a backend status is a success the client should see as-is (with the body streamed).
pub fn is_success(status: u16) -> bool {
    (200..300).contains(&status) || status == 304
}

/// The S3 error a failed backend response turns into. `body` is the (bounded) error body, empty
/// for HEAD; when it holds no S3 error the code follows from the status.
pub fn backend_error(status: u16, body: &[u8]) -> S3Error {
    if let Some((code, message)) = xml::parse_error(body) {
        let message = if message.trim().is_empty() { format!("the backend answered {code} (HTTP {status})") } else { message };
        return S3Error::new(ErrorCode::from_code(&code, status), message);
    }
    let code = match status {
        400 => ErrorCode::InvalidRequest,
        403 => ErrorCode::AccessDenied,
        404 => ErrorCode::NoSuchKey,
        405 => ErrorCode::MethodNotAllowed,
        412 => ErrorCode::PreconditionFailed,
        416 => ErrorCode::InvalidRange,
        501 => ErrorCode::NotImplemented,
        503 => ErrorCode::ServiceUnavailable,
        s if s >= 500 => ErrorCode::Other { code: "InternalError".into(), status: s },
        s => ErrorCode::Other { code: "BadRequest".into(), status: s },
    };
    S3Error::new(code, format!("the backend answered HTTP {status}"))
}

/// The error a copy gets when reading its source failed: the source's conditions failing is a 412
/// (S3 answers failed `x-amz-copy-source-if-*` that way), a missing bucket a missing key.
pub fn copy_source_error(status: u16, body: &[u8]) -> S3Error {
    if status == 304 || status == 412 {
        return crate::checks::precondition_failed();
    }
    let err = backend_error(status, body);
    if err.code == ErrorCode::NoSuchBucket {
        return no_such_key();
    }
    err
}

/// The object does not exist (S3's own message).
pub fn no_such_key() -> S3Error {
    S3Error::new(ErrorCode::NoSuchKey, "The specified key does not exist.")
}

/// Whether a CreateBucket failure means the bucket is there after all (another request made it).
pub fn bucket_exists_already(err: &S3Error) -> bool {
    matches!(err.code.as_str(), "BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
}

/// What to do when the owning backend bucket does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingBucket {
    /// Create the bucket, then retry the write.
    CreateAndRetry,
    /// Nothing was ever stored there: the object does not exist.
    NoSuchKey,
    /// Deleting from a bucket that does not exist deletes nothing, successfully (S3 deletes are idempotent).
    Deleted,
}

/// How an operation treats a missing backend bucket.
pub fn on_missing_bucket(op: &crate::route::Operation) -> MissingBucket {
    match op {
        crate::route::Operation::DeleteObject { .. } => MissingBucket::Deleted,
        op if op.is_write() => MissingBucket::CreateAndRetry,
        _ => MissingBucket::NoSuchKey,
    }
}

/// The error a write gets when its bucket had to be created but the body was too large to replay.
pub fn retry_after_bucket_created() -> S3Error {
    S3Error::new(
        ErrorCode::SlowDown,
        "the backend bucket for this key did not exist and has just been created; retry the request",
    )
}

/// The error a client gets when a backend cannot be reached (names no host or credential).
pub fn backend_unreachable(detail: &str) -> S3Error {
    S3Error::new(
        ErrorCode::ServiceUnavailable,
        format!("a backend could not be reached ({detail}); retry later"),
    )
}

/// A backend's listing page: parsed on success, empty for a bucket that does not exist (yet),
/// otherwise the backend's error, which fails the whole listing.
pub fn backend_page<T: Default>(status: u16, body: &[u8], parse: fn(&[u8]) -> Result<T, S3Error>, what: &str) -> Result<T, S3Error> {
    if is_success(status) {
        return parse(body).map_err(|e| {
            S3Error::new(ErrorCode::ServiceUnavailable, format!("a backend returned an unreadable {what}: {}", e.message))
        });
    }
    let err = backend_error(status, body);
    if err.code == ErrorCode::NoSuchBucket {
        return Ok(T::default());
    }
    Err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::Operation;

    #[test]
    fn error_bodies_give_their_code_and_bare_statuses_a_fitting_one() {
        let body = b"<Error><Code>NoSuchTagSet</Code><Message>none</Message></Error>";
        let err = backend_error(404, body);
        assert_eq!((err.code.as_str(), err.status()), ("NoSuchTagSet", 404));
        assert_eq!(backend_error(404, b"").code, ErrorCode::NoSuchKey);
        assert_eq!(backend_error(503, b"").code, ErrorCode::ServiceUnavailable);
        assert_eq!(backend_error(502, b"").status(), 502);
    }

    #[test]
    fn copy_sources_that_fail_conditions_are_412_and_missing_buckets_missing_keys() {
        assert_eq!(copy_source_error(304, b"").code, ErrorCode::PreconditionFailed);
        let missing = b"<Error><Code>NoSuchBucket</Code><Message>m</Message></Error>";
        assert_eq!(copy_source_error(404, missing).code, ErrorCode::NoSuchKey);
    }

    #[test]
    fn missing_buckets_are_created_for_writes_only() {
        let key = || "k".to_string();
        assert_eq!(on_missing_bucket(&Operation::PutObject { key: key() }), MissingBucket::CreateAndRetry);
        assert_eq!(on_missing_bucket(&Operation::GetObject { key: key() }), MissingBucket::NoSuchKey);
        assert_eq!(on_missing_bucket(&Operation::DeleteObject { key: key() }), MissingBucket::Deleted);
    }

    #[test]
    fn listing_pages_of_missing_buckets_are_empty() {
        let missing = b"<Error><Code>NoSuchBucket</Code><Message>m</Message></Error>";
        let page = backend_page(404, missing, xml::parse_list_objects, "listing").unwrap();
        assert!(page.objects.is_empty());
        assert!(backend_page(200, b"not xml", xml::parse_list_objects, "listing").is_err());
        assert!(backend_page(500, b"", xml::parse_list_objects, "listing").is_err());
    }
}
