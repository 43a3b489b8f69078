//! S3 request parsing: method, path, query and headers into a typed [`Operation`] on the virtual bucket.

use crate::error::{ErrorCode, S3Error, S3Result};
use crate::codec::{decode_query, percent_decode};

/// The longest object key S3 accepts, in bytes of UTF-8.
pub const MAX_KEY_LEN: usize = 1024;

/// The parts of an HTTP request the router looks at, exactly as received.
#[derive(Debug, Clone)]
pub struct RequestParts {
    pub method: String,
    /// The path as received, still percent-encoded (`/proxy-bucket/a%20b`).
    pub raw_path: String,
    /// The query string as received, without the `?`.
    pub raw_query: String,
    /// Header names in any case, values as received.
    pub headers: Vec<(String, String)>,
}

impl RequestParts {
    /// Split a request target (`/path?query`) into raw path and raw query.
    pub fn new(method: &str, target: &str, headers: Vec<(String, String)>) -> RequestParts {
        let (raw_path, raw_query) = match target.split_once('?') {
            Some((p, q)) => (p, q),
            None => (target, ""),
        };
        RequestParts {
            method: method.to_ascii_uppercase(),
            raw_path: if raw_path.is_empty() { "/".into() } else { raw_path.into() },
            raw_query: raw_query.into(),
            headers,
        }
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// Every `(name, value)` of a header in a list, in order, by case-insensitive name.
///
/// Names are compared as they are: HTTP field names are tokens and cannot hold whitespace (a
/// server rejects `Name :`), so there is nothing to trim.
pub fn header_entries<'a, 'n>(
    headers: &'a [(String, String)],
    name: &'n str,
) -> impl Iterator<Item = &'a (String, String)> + use<'a, 'n> {
    headers.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(name))
}

/// The first value of a header in a list, by case-insensitive name.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    header_entries(headers, name).next().map(|(_, v)| v.as_str())
}

/// What the client asked for, with the parameters the proxy needs to route it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    ListBuckets,
    HeadBucket,
    GetBucketLocation,
    ListObjects { v2: bool },
    ListMultipartUploads,
    DeleteObjects,
    GetObject { key: String },
    HeadObject { key: String },
    PutObject { key: String },
    CopyObject { key: String },
    DeleteObject { key: String },
    GetObjectTagging { key: String },
    PutObjectTagging { key: String },
    DeleteObjectTagging { key: String },
    CreateMultipartUpload { key: String },
    UploadPart { key: String },
    UploadPartCopy { key: String },
    CompleteMultipartUpload { key: String },
    AbortMultipartUpload { key: String },
    ListParts { key: String },
}

impl Operation {
    /// The object key this operation addresses, if it is an object operation.
    pub fn key(&self) -> Option<&str> {
        use Operation::*;
        match self {
            GetObject { key } | HeadObject { key } | PutObject { key } | CopyObject { key }
            | DeleteObject { key } | GetObjectTagging { key } | PutObjectTagging { key }
            | DeleteObjectTagging { key } | CreateMultipartUpload { key } | UploadPart { key }
            | UploadPartCopy { key } | CompleteMultipartUpload { key }
            | AbortMultipartUpload { key } | ListParts { key } => Some(key),
            _ => None,
        }
    }

    /// The S3 API name, for logs.
    pub fn name(&self) -> &'static str {
        use Operation::*;
        match self {
            ListBuckets => "ListBuckets",
            HeadBucket => "HeadBucket",
            GetBucketLocation => "GetBucketLocation",
            ListObjects { v2: true } => "ListObjectsV2",
            ListObjects { v2: false } => "ListObjects",
            ListMultipartUploads => "ListMultipartUploads",
            DeleteObjects => "DeleteObjects",
            GetObject { .. } => "GetObject",
            HeadObject { .. } => "HeadObject",
            PutObject { .. } => "PutObject",
            CopyObject { .. } => "CopyObject",
            DeleteObject { .. } => "DeleteObject",
            GetObjectTagging { .. } => "GetObjectTagging",
            PutObjectTagging { .. } => "PutObjectTagging",
            DeleteObjectTagging { .. } => "DeleteObjectTagging",
            CreateMultipartUpload { .. } => "CreateMultipartUpload",
            UploadPart { .. } => "UploadPart",
            UploadPartCopy { .. } => "UploadPartCopy",
            CompleteMultipartUpload { .. } => "CompleteMultipartUpload",
            AbortMultipartUpload { .. } => "AbortMultipartUpload",
            ListParts { .. } => "ListParts",
        }
    }

    /// Whether the operation works on an object that must already exist (so, while resharding, may
    /// still sit on its previous owner).
    pub fn reads_existing_object(&self) -> bool {
        use Operation::*;
        matches!(
            self,
            GetObject { .. } | HeadObject { .. } | GetObjectTagging { .. } | PutObjectTagging { .. }
                | DeleteObjectTagging { .. }
        )
    }

    /// Whether the operation writes to a backend (and so may need the backend bucket created).
    pub fn is_write(&self) -> bool {
        use Operation::*;
        matches!(
            self,
            PutObject { .. } | CopyObject { .. } | PutObjectTagging { .. }
                | CreateMultipartUpload { .. } | UploadPart { .. } | UploadPartCopy { .. }
                | CompleteMultipartUpload { .. }
        )
    }
}

/// A parsed request: the operation plus its decoded query parameters.
#[derive(Debug, Clone)]
pub struct Route {
    pub op: Operation,
    /// Decoded query parameters in request order.
    pub query: Vec<(String, String)>,
}

impl Route {
    /// The decoded value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Query parameters that select a subresource S3 supports but this proxy does not.
const UNSUPPORTED_SUBRESOURCES: &[&str] = &[
    "acl", "accelerate", "analytics", "attributes", "cors", "encryption", "intelligent-tiering",
    "inventory", "legal-hold", "lifecycle", "logging", "metrics", "notification",
    "object-lock", "ownershipControls", "policy", "policyStatus", "publicAccessBlock",
    "replication", "requestPayment", "restore", "retention", "select", "torrent", "versioning",
    "versions", "website",
];

/// Parse a request into an operation on `virtual_bucket`. Requests for any other bucket get
/// `NoSuchBucket`; subresources and methods the proxy does not implement get `NotImplemented`.
pub fn parse(req: &RequestParts, virtual_bucket: &str) -> S3Result<Route> {
    let query = decode_query(&req.raw_query)?;
    let has = |name: &str| query.iter().any(|(k, _)| k == name);
    if !req.raw_path.starts_with('/') {
        return Err(S3Error::new(ErrorCode::InvalidRequest, "the request path must start with '/'"));
    }

    let (bucket, key) = split_bucket_and_key(req, virtual_bucket)?;
    let route = |op| Ok(Route { op, query: query.clone() });
    let method = req.method.as_str();

    let Some(bucket) = bucket else {
        return match method {
            "GET" => route(Operation::ListBuckets),
            _ => Err(method_not_allowed(method, "the service endpoint")),
        };
    };
    if bucket != virtual_bucket {
        return Err(S3Error::new(
            ErrorCode::NoSuchBucket,
            format!("The specified bucket does not exist; this proxy serves only '{virtual_bucket}'"),
        )
        .with_resource(format!("/{bucket}")));
    }
    if let Some(sub) = UNSUPPORTED_SUBRESOURCES.iter().find(|s| has(s)) {
        return Err(S3Error::not_implemented(&format!("the '{sub}' subresource")));
    }

    let Some(key) = key else {
        return match method {
            "GET" if has("location") => route(Operation::GetBucketLocation),
            "GET" if has("uploads") => route(Operation::ListMultipartUploads),
            "GET" if has("tagging") => Err(S3Error::not_implemented("bucket tagging")),
            "GET" => route(Operation::ListObjects {
                v2: query.iter().any(|(k, v)| k == "list-type" && v == "2"),
            }),
            "HEAD" => route(Operation::HeadBucket),
            "POST" if has("delete") => route(Operation::DeleteObjects),
            "PUT" | "DELETE" | "POST" => Err(S3Error::not_implemented(&format!(
                "{method} on the virtual bucket (bucket management)"
            ))),
            _ => Err(method_not_allowed(method, "a bucket")),
        };
    };

    check_numeric_params(&query)?;
    let copy = req.header("x-amz-copy-source").is_some();
    let op = match method {
        "GET" if has("tagging") => Operation::GetObjectTagging { key },
        "GET" if has("uploadId") => Operation::ListParts { key },
        "GET" => Operation::GetObject { key },
        "HEAD" => Operation::HeadObject { key },
        "PUT" if has("tagging") => Operation::PutObjectTagging { key },
        "PUT" if has("uploadId") || has("partNumber") => {
            if !(has("uploadId") && has("partNumber")) {
                return Err(S3Error::invalid_argument(
                    "UploadPart needs both partNumber and uploadId",
                ));
            }
            if copy { Operation::UploadPartCopy { key } } else { Operation::UploadPart { key } }
        }
        "PUT" if copy => Operation::CopyObject { key },
        "PUT" => Operation::PutObject { key },
        "POST" if has("uploads") => Operation::CreateMultipartUpload { key },
        "POST" if has("uploadId") => Operation::CompleteMultipartUpload { key },
        "POST" => return Err(S3Error::not_implemented("this POST operation on an object")),
        "DELETE" if has("tagging") => Operation::DeleteObjectTagging { key },
        "DELETE" if has("uploadId") => Operation::AbortMultipartUpload { key },
        "DELETE" => Operation::DeleteObject { key },
        _ => return Err(method_not_allowed(method, "an object")),
    };
    route(op)
}

/// The largest part number S3 accepts.
pub const MAX_PART_NUMBER: u32 = 10_000;

/// Object-request parameters that must be numbers are checked here, so a backend never has to
/// interpret a malformed or repeated one (and its reading can never differ from the proxy's).
fn check_numeric_params(query: &[(String, String)]) -> S3Result<()> {
    for name in ["partNumber", "uploadId", "max-parts", "part-number-marker"] {
        if query.iter().filter(|(k, _)| k == name).count() > 1 {
            return Err(S3Error::invalid_argument(format!("the {name} parameter is given more than once")));
        }
    }
    for (name, value) in query {
        let number = || value.parse::<u32>().ok().filter(|_| value.bytes().all(|b| b.is_ascii_digit()));
        match name.as_str() {
            "partNumber" if !number().is_some_and(|n| (1..=MAX_PART_NUMBER).contains(&n)) => {
                return Err(S3Error::invalid_argument(format!(
                    "Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive"
                )));
            }
            "max-parts" | "part-number-marker" if number().is_none_or(|n| n > i32::MAX as u32) => {
                return Err(S3Error::invalid_argument(format!("{name} must be a non-negative integer")));
            }
            _ => {}
        }
    }
    Ok(())
}

fn method_not_allowed(method: &str, target: &str) -> S3Error {
    S3Error::new(
        ErrorCode::MethodNotAllowed,
        format!("The specified method ({method}) is not allowed against {target}"),
    )
}

/// Bucket and key from a path-style (`/bucket/key`) or virtual-hosted-style (`Host: bucket.…`) request.
fn split_bucket_and_key(
    req: &RequestParts,
    virtual_bucket: &str,
) -> S3Result<(Option<String>, Option<String>)> {
    let path = &req.raw_path[1..];
    let host = req.header("host").unwrap_or("");
    let host_name = host.split(':').next().unwrap_or("");
    let virtual_hosted = host_name.len() > virtual_bucket.len()
        && host_name.starts_with(virtual_bucket)
        && host_name.as_bytes()[virtual_bucket.len()] == b'.';
    let (raw_bucket, raw_key) = if virtual_hosted {
        (Some(virtual_bucket), Some(path))
    } else if path.is_empty() {
        (None, None)
    } else {
        match path.split_once('/') {
            Some((b, k)) => (Some(b), Some(k)),
            None => (Some(path), None),
        }
    };
    let bucket = match raw_bucket {
        Some(b) => Some(percent_decode(b)?),
        None => None,
    };
    let key = match raw_key {
        Some("") | None => None,
        Some(k) => Some(validate_key(percent_decode(k)?)?),
    };
    Ok((bucket, key))
}

/// Reject keys S3 would reject: over 1024 bytes, or containing NUL and other control characters
/// that no S3 client can round-trip in XML listings.
fn validate_key(key: String) -> S3Result<String> {
    if key.len() > MAX_KEY_LEN {
        return Err(S3Error::new(
            ErrorCode::KeyTooLongError,
            format!("Your key is too long: {} bytes; the maximum is {MAX_KEY_LEN}", key.len()),
        ));
    }
    if key.chars().any(|c| c == '\0') {
        return Err(S3Error::invalid_argument("object keys must not contain NUL characters"));
    }
    if resolves_outside_its_bucket(&key) {
        return Err(S3Error::invalid_argument(
            "object keys whose '.' and '..' segments lead back to the bucket or out of it are not supported",
        ));
    }
    Ok(key)
}

/// Whether `key`, read as a path below its bucket the way a path-normalising server or proxy reads
/// it (dot segments resolved, repeated slashes merged), names the bucket itself or leaves it. The
/// backend URL is `/{shard}/{key}`, so such a key could reach another bucket or a bucket-level
/// operation (listing, creating or deleting a shard) instead of an object.
fn resolves_outside_its_bucket(key: &str) -> bool {
    let mut depth = 0usize;
    for segment in key.split('/') {
        match segment {
            "" | "." => {}
            ".." => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return true,
            },
            _ => depth += 1,
        }
    }
    depth == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, target: &str) -> RequestParts {
        RequestParts::new(method, target, vec![("Host".into(), "127.0.0.1:8080".into())])
    }

    fn op(method: &str, target: &str) -> S3Result<Operation> {
        parse(&req(method, target), "proxy-bucket").map(|r| r.op)
    }

    fn code(r: S3Result<Operation>) -> String {
        r.unwrap_err().code.as_str().to_string()
    }

    #[test]
    fn service_and_bucket_operations() {
        assert_eq!(op("GET", "/").unwrap(), Operation::ListBuckets);
        assert_eq!(op("HEAD", "/proxy-bucket").unwrap(), Operation::HeadBucket);
        assert_eq!(op("GET", "/proxy-bucket?location").unwrap(), Operation::GetBucketLocation);
        assert_eq!(op("GET", "/proxy-bucket/?list-type=2&prefix=a").unwrap(), Operation::ListObjects { v2: true });
        assert_eq!(op("GET", "/proxy-bucket?prefix=a&delimiter=").unwrap(), Operation::ListObjects { v2: false });
        assert_eq!(op("POST", "/proxy-bucket?delete").unwrap(), Operation::DeleteObjects);
        assert_eq!(op("GET", "/proxy-bucket?uploads").unwrap(), Operation::ListMultipartUploads);
    }

    #[test]
    fn object_operations_decode_the_key() {
        assert_eq!(op("GET", "/proxy-bucket/a%20b/c+d").unwrap(), Operation::GetObject { key: "a b/c+d".into() });
        assert_eq!(op("PUT", "/proxy-bucket//lead").unwrap(), Operation::PutObject { key: "/lead".into() });
        assert_eq!(op("PUT", "/proxy-bucket/a//b/../c").unwrap(), Operation::PutObject { key: "a//b/../c".into() });
        assert_eq!(op("GET", "/proxy-bucket/%E2%82%AC?tagging").unwrap(), Operation::GetObjectTagging { key: "€".into() });
        assert_eq!(op("PUT", "/proxy-bucket/k?partNumber=1&uploadId=x").unwrap(), Operation::UploadPart { key: "k".into() });
        assert_eq!(op("POST", "/proxy-bucket/k?uploads").unwrap(), Operation::CreateMultipartUpload { key: "k".into() });
        assert_eq!(op("POST", "/proxy-bucket/k?uploadId=x").unwrap(), Operation::CompleteMultipartUpload { key: "k".into() });
        assert_eq!(op("DELETE", "/proxy-bucket/k?uploadId=x").unwrap(), Operation::AbortMultipartUpload { key: "k".into() });
        assert_eq!(op("DELETE", "/proxy-bucket/k").unwrap(), Operation::DeleteObject { key: "k".into() });
    }

    #[test]
    fn copy_source_header_makes_a_copy() {
        let mut r = req("PUT", "/proxy-bucket/dst");
        r.headers.push(("x-amz-copy-source".into(), "/proxy-bucket/src".into()));
        assert_eq!(parse(&r, "proxy-bucket").unwrap().op, Operation::CopyObject { key: "dst".into() });
    }

    #[test]
    fn virtual_hosted_style_addresses_the_virtual_bucket() {
        let r = RequestParts::new("GET", "/proxy-bucket/k", vec![("host".into(), "proxy-bucket.localhost:8080".into())]);
        assert_eq!(parse(&r, "proxy-bucket").unwrap().op, Operation::GetObject { key: "proxy-bucket/k".into() });
    }

    #[test]
    fn bad_requests_get_s3_errors() {
        assert_eq!(code(op("GET", "/other-bucket/k")), "NoSuchBucket");
        assert_eq!(code(op("GET", "/other-bucket")), "NoSuchBucket");
        assert_eq!(code(op("GET", "/proxy-bucket/k%ZZ")), "InvalidArgument");
        assert_eq!(code(op("GET", "/proxy-bucket/k%C3")), "InvalidArgument");
        assert_eq!(code(op("GET", "/proxy-bucket/k%00")), "InvalidArgument");
        assert_eq!(code(op("GET", &format!("/proxy-bucket/{}", "a".repeat(1025)))), "KeyTooLongError");
        assert!(op("GET", &format!("/proxy-bucket/{}", "a".repeat(1024))).is_ok());
        assert_eq!(code(op("GET", "/proxy-bucket?versioning")), "NotImplemented");
        assert_eq!(code(op("GET", "/proxy-bucket/k?acl")), "NotImplemented");
        assert_eq!(code(op("PUT", "/proxy-bucket")), "NotImplemented");
        assert_eq!(code(op("PATCH", "/proxy-bucket/k")), "MethodNotAllowed");
        assert_eq!(code(op("PUT", "/proxy-bucket/k?partNumber=1")), "InvalidArgument");
        assert_eq!(code(op("DELETE", "/")), "MethodNotAllowed");
        for bad in ["0", "10001", "abc", "-1", "+1", "", "4294967297", "1.0"] {
            let target = format!("/proxy-bucket/k?partNumber={bad}&uploadId=x");
            assert_eq!(code(op("PUT", &target)), "InvalidArgument", "{target}");
            assert_eq!(code(op("GET", &format!("/proxy-bucket/k?partNumber={bad}"))), "InvalidArgument", "{bad}");
        }
        for escaping in ["..", "../k", "a/../..", "a/../../b", "%2E%2E/shard2/k", "a/..", ".", "./", "/", "//", "a/b/../../"] {
            assert_eq!(code(op("PUT", &format!("/proxy-bucket/{escaping}"))), "InvalidArgument", "{escaping}");
        }
        for inside in ["a/../b", "./a", "a/./b", "..a", "a..", "...", "a/...", "/lead", "a//b", "a/b/../c/.."] {
            assert!(op("PUT", &format!("/proxy-bucket/{inside}")).is_ok(), "{inside}");
        }
        assert_eq!(code(op("PUT", "/proxy-bucket/k?partNumber=1&partNumber=2&uploadId=x")), "InvalidArgument");
        assert_eq!(code(op("PUT", "/proxy-bucket/k?partNumber=1&uploadId=x&uploadId=y")), "InvalidArgument");
        assert_eq!(code(op("GET", "/proxy-bucket/k?uploadId=x&max-parts=lots")), "InvalidArgument");
        assert_eq!(code(op("GET", "/proxy-bucket/k?uploadId=x&part-number-marker=-3")), "InvalidArgument");
        assert!(op("PUT", "/proxy-bucket/k?partNumber=10000&uploadId=x").is_ok());
        assert!(op("GET", "/proxy-bucket/k?partNumber=1").is_ok());
        assert!(op("GET", "/proxy-bucket/k?uploadId=x&max-parts=1000&part-number-marker=0").is_ok());
    }
}
