//! The platform's cap on request bodies (`max_body_bytes`): an over-cap body gets S3's EntityTooLarge.
//!
//! Akamai Functions refuses request bodies over 10 MiB with a platform error the client cannot read as
//! S3; with `max_body_bytes` set, the proxy answers first with an error that names the limit, so a
//! client (or its operator) knows to lower the single-PUT size or the multipart part size.

use crate::error::{ErrorCode, S3Error, S3Result};
use crate::route::{header, RequestParts};

/// Refuse a request whose body is longer than `cap` bytes: the bytes on the wire (Content-Length,
/// aws-chunked framing included), or, without a Content-Length, the declared decoded length.
pub fn check(parts: &RequestParts, cap: Option<u64>) -> S3Result<()> {
    let Some(cap) = cap else { return Ok(()) };
    let length = |name: &str| header(&parts.headers, name).and_then(|v| v.trim().parse::<u64>().ok());
    let Some(length) = length("content-length").or_else(|| length("x-amz-decoded-content-length")) else {
        return Ok(());
    };
    if length <= cap {
        return Ok(());
    }
    Err(S3Error::new(
        ErrorCode::EntityTooLarge,
        format!(
            "Your request body of {length} bytes exceeds the {cap} bytes this deployment accepts (max_body_bytes); \
             send objects larger than that as multipart uploads with parts of at most {cap} bytes"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(headers: &[(&str, &str)]) -> RequestParts {
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        RequestParts::new("PUT", "/proxy-bucket/t/b/data", headers)
    }

    #[test]
    fn bodies_over_the_cap_are_entity_too_large() {
        let cap = Some(10 << 20);
        let err = check(&put(&[("Content-Length", "10485761")]), cap).unwrap_err();
        assert_eq!((err.status(), err.code.as_str()), (400, "EntityTooLarge"));
        assert!(err.message.contains("10485760 bytes") && err.message.contains("max_body_bytes"), "{}", err.message);
        assert!(check(&put(&[("content-length", "10485760")]), cap).is_ok(), "exactly the cap");
        assert!(check(&put(&[("x-amz-decoded-content-length", "10485761")]), cap).is_err(), "no Content-Length");
        let chunked = [("content-length", "10485900"), ("x-amz-decoded-content-length", "10485700")];
        assert!(check(&put(&chunked), cap).is_err(), "the wire length counts, framing included");
        assert!(check(&put(&[("content-length", "999999999999")]), None).is_ok(), "no cap");
        assert!(check(&put(&[]), cap).is_ok(), "no body");
    }
}
