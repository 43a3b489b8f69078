//! Server-side encryption with customer-provided keys (SSE-C): refused over plain HTTP, as S3 refuses it.
//!
//! The proxy forwards every SSE header unchanged (see [`crate::backend`]); what it decides itself is
//! whether the connection the client used may carry a customer key. It counts as secure when the
//! runtime reports the incoming request's scheme as `https` (Spin serving TLS itself, or the native
//! host's `--tls-cert`), or, only when `trust_forwarded_proto` is set, when a TLS terminator in front
//! of the proxy says `X-Forwarded-Proto: https`.

use crate::error::{ErrorCode, S3Error, S3Result};
use crate::context::Proxy;
use crate::route::{header, RequestParts};

/// The customer-key headers of the object itself (PUT, GET, HEAD, multipart, copy destination).
pub const CUSTOMER_KEY_HEADERS: [&str; 3] = [
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-server-side-encryption-customer-key",
    "x-amz-server-side-encryption-customer-key-md5",
];

/// The customer-key headers of a copy's source.
pub const COPY_SOURCE_KEY_HEADERS: [&str; 3] = [
    "x-amz-copy-source-server-side-encryption-customer-algorithm",
    "x-amz-copy-source-server-side-encryption-customer-key",
    "x-amz-copy-source-server-side-encryption-customer-key-md5",
];

/// S3's answer to a customer key sent over plain HTTP (400 InvalidRequest, S3's own words).
pub fn insecure_customer_key() -> S3Error {
    S3Error::new(
        ErrorCode::InvalidRequest,
        "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.",
    )
}

/// Whether `headers` carry a customer key for the object or for a copy source.
pub fn has_customer_key(headers: &[(String, String)]) -> bool {
    CUSTOMER_KEY_HEADERS.iter().chain(&COPY_SOURCE_KEY_HEADERS).any(|name| header(headers, name).is_some())
}

/// Whether the client's connection was TLS: the runtime says so (`runtime_https`), or a trusted
/// terminator's `X-Forwarded-Proto` names `https` first (the client-facing hop).
pub fn is_secure(runtime_https: bool, headers: &[(String, String)], trust_forwarded_proto: bool) -> bool {
    let forwarded = || {
        header(headers, "x-forwarded-proto")
            .and_then(|v| v.split(',').next())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
    };
    runtime_https || (trust_forwarded_proto && forwarded())
}

impl Proxy {
    /// Refuse a request carrying an SSE-C customer key unless it came over TLS ([`is_secure`]).
    /// `runtime_https`: the scheme of the incoming request as the runtime reports it is `https`.
    pub fn check_customer_key_transport(&self, parts: &RequestParts, runtime_https: bool) -> S3Result<()> {
        if has_customer_key(&parts.headers) && !is_secure(runtime_https, &parts.headers, self.cfg.trust_forwarded_proto) {
            return Err(insecure_customer_key());
        }
        Ok(())
    }
}

/// For a copy across shards: the source's customer key as the plain SSE-C headers the GET of the
/// source needs (`x-amz-copy-source-server-side-encryption-customer-*` -> `x-amz-server-side-encryption-customer-*`).
pub fn source_key_for_get(client: &[(String, String)]) -> Vec<(String, String)> {
    COPY_SOURCE_KEY_HEADERS
        .iter()
        .zip(CUSTOMER_KEY_HEADERS)
        .filter_map(|(copy, plain)| header(client, copy).map(|v| (plain.to_string(), v.to_string())))
        .collect()
}

/// For a copy across shards: the destination's encryption headers the write carries (SSE-S3,
/// SSE-KMS with key id, context and bucket key; SSE-C for CopyObject and UploadPartCopy alike).
pub fn destination_headers(client: &[(String, String)], whole_object: bool) -> Vec<(String, String)> {
    const OBJECT_ONLY: [&str; 4] = [
        "x-amz-server-side-encryption",
        "x-amz-server-side-encryption-aws-kms-key-id",
        "x-amz-server-side-encryption-context",
        "x-amz-server-side-encryption-bucket-key-enabled",
    ];
    let names = CUSTOMER_KEY_HEADERS.iter().chain(OBJECT_ONLY.iter().filter(|_| whole_object));
    names.filter_map(|name| header(client, name).map(|v| (name.to_string(), v.to_string()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn headers(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn proxy(trust: bool) -> Proxy {
        let trust = trust.to_string();
        Proxy::new(
            Config::from_lookup(|n| match n {
                "buckets" => Some("shard1,shard2".into()),
                "endpoint" => Some("http://127.0.0.1:9000".into()),
                "allow_anonymous" => Some("true".into()),
                "trust_forwarded_proto" => Some(trust.clone()),
                _ => None,
            })
            .unwrap(),
        )
    }

    fn put(extra: &[(&str, &str)]) -> RequestParts {
        RequestParts::new("PUT", "/proxy-bucket/t/b/f", headers(extra))
    }

    const SSE_C: (&str, &str) = ("X-Amz-Server-Side-Encryption-Customer-Algorithm", "AES256");
    const COPY_SSE_C: (&str, &str) = ("x-amz-copy-source-server-side-encryption-customer-key", "a2V5");

    #[test]
    fn customer_keys_need_tls() {
        let p = proxy(false);
        let err = p.check_customer_key_transport(&put(&[SSE_C]), false).unwrap_err();
        assert_eq!((err.status(), err.code.as_str()), (400, "InvalidRequest"));
        assert!(err.message.contains("secure connection"), "{}", err.message);
        assert!(p.check_customer_key_transport(&put(&[COPY_SSE_C]), false).is_err(), "a copy source's key too");
        assert!(p.check_customer_key_transport(&put(&[SSE_C]), true).is_ok(), "over TLS");
        let sse_s3 = [("x-amz-server-side-encryption", "AES256")];
        assert!(p.check_customer_key_transport(&put(&sse_s3), false).is_ok(), "SSE-S3 needs no TLS");
        assert!(p.check_customer_key_transport(&put(&[]), false).is_ok());
    }

    #[test]
    fn forwarded_proto_counts_only_when_trusted() {
        let via_terminator = put(&[SSE_C, ("X-Forwarded-Proto", "https")]);
        assert!(proxy(false).check_customer_key_transport(&via_terminator, false).is_err(), "untrusted header");
        assert!(proxy(true).check_customer_key_transport(&via_terminator, false).is_ok());
        for proto in ["http", "http, https", ""] {
            let parts = put(&[SSE_C, ("x-forwarded-proto", proto)]);
            assert!(proxy(true).check_customer_key_transport(&parts, false).is_err(), "{proto:?}");
        }
        assert!(is_secure(false, &headers(&[("x-forwarded-proto", "HTTPS, http")]), true));
    }

    #[test]
    fn streamed_copies_carry_both_keys() {
        let client = headers(&[
            ("x-amz-copy-source-server-side-encryption-customer-algorithm", "AES256"),
            ("x-amz-copy-source-server-side-encryption-customer-key", "c3Jj"),
            ("x-amz-copy-source-server-side-encryption-customer-key-md5", "bWQ1"),
            ("x-amz-server-side-encryption-customer-algorithm", "AES256"),
            ("x-amz-server-side-encryption-customer-key", "ZHN0"),
            ("x-amz-server-side-encryption-customer-key-md5", "bWQ2"),
            ("x-amz-server-side-encryption-context", "e30="),
        ]);
        assert_eq!(
            source_key_for_get(&client),
            headers(&[
                ("x-amz-server-side-encryption-customer-algorithm", "AES256"),
                ("x-amz-server-side-encryption-customer-key", "c3Jj"),
                ("x-amz-server-side-encryption-customer-key-md5", "bWQ1"),
            ])
        );
        let object = destination_headers(&client, true);
        assert_eq!(object.len(), 4);
        assert!(object.contains(&("x-amz-server-side-encryption-customer-key".into(), "ZHN0".into())));
        assert!(object.contains(&("x-amz-server-side-encryption-context".into(), "e30=".into())));
        assert_eq!(destination_headers(&client, false).len(), 3, "a part takes only the customer key");
    }
}
