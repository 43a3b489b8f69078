//! The typed S3 error every layer returns: an S3 error code, its HTTP status and a message saying what to do.

use std::fmt;

/// S3 error codes this proxy produces (see the S3 API reference, "Error responses").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    BadDigest,
    EntityTooLarge,
    EntityTooSmall,
    IncompleteBody,
    InternalError,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidBucketName,
    InvalidDigest,
    InvalidPart,
    InvalidPartOrder,
    InvalidRange,
    InvalidRequest,
    KeyTooLongError,
    MalformedXML,
    MethodNotAllowed,
    MissingContentLength,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
    NotImplemented,
    PreconditionFailed,
    RequestTimeTooSkewed,
    RequestTimeout,
    ServiceUnavailable,
    SignatureDoesNotMatch,
    SlowDown,
    XAmzContentSHA256Mismatch,
    /// A code and status passed through from a backend (e.g. `NoSuchTagSet`, 404).
    Other { code: String, status: u16 },
}

impl ErrorCode {
    pub fn as_str(&self) -> &str {
        use ErrorCode::*;
        match self {
            AccessDenied => "AccessDenied",
            AuthorizationHeaderMalformed => "AuthorizationHeaderMalformed",
            AuthorizationQueryParametersError => "AuthorizationQueryParametersError",
            BadDigest => "BadDigest",
            EntityTooLarge => "EntityTooLarge",
            EntityTooSmall => "EntityTooSmall",
            IncompleteBody => "IncompleteBody",
            InternalError => "InternalError",
            InvalidAccessKeyId => "InvalidAccessKeyId",
            InvalidArgument => "InvalidArgument",
            InvalidBucketName => "InvalidBucketName",
            InvalidDigest => "InvalidDigest",
            InvalidPart => "InvalidPart",
            InvalidPartOrder => "InvalidPartOrder",
            InvalidRange => "InvalidRange",
            InvalidRequest => "InvalidRequest",
            KeyTooLongError => "KeyTooLongError",
            MalformedXML => "MalformedXML",
            MethodNotAllowed => "MethodNotAllowed",
            MissingContentLength => "MissingContentLength",
            NoSuchBucket => "NoSuchBucket",
            NoSuchKey => "NoSuchKey",
            NoSuchUpload => "NoSuchUpload",
            NotImplemented => "NotImplemented",
            PreconditionFailed => "PreconditionFailed",
            RequestTimeTooSkewed => "RequestTimeTooSkewed",
            RequestTimeout => "RequestTimeout",
            ServiceUnavailable => "ServiceUnavailable",
            SignatureDoesNotMatch => "SignatureDoesNotMatch",
            SlowDown => "SlowDown",
            XAmzContentSHA256Mismatch => "XAmzContentSHA256Mismatch",
            Other { code, .. } => code,
        }
    }

    /// The HTTP status S3 answers this code with.
    pub fn status(&self) -> u16 {
        use ErrorCode::*;
        match self {
            AccessDenied | InvalidAccessKeyId | SignatureDoesNotMatch | RequestTimeTooSkewed => 403,
            AuthorizationHeaderMalformed | AuthorizationQueryParametersError | BadDigest
            | EntityTooLarge | EntityTooSmall | IncompleteBody | InvalidArgument
            | InvalidBucketName | InvalidDigest | InvalidPart | InvalidPartOrder | InvalidRequest
            | KeyTooLongError | MalformedXML | RequestTimeout | XAmzContentSHA256Mismatch => 400,
            MissingContentLength => 411,
            NoSuchBucket | NoSuchKey | NoSuchUpload => 404,
            MethodNotAllowed => 405,
            PreconditionFailed => 412,
            InvalidRange => 416,
            InternalError => 500,
            NotImplemented => 501,
            ServiceUnavailable | SlowDown => 503,
            Other { status, .. } => *status,
        }
    }

    /// Parse a code string (e.g. from a backend's error body); unknown codes keep the given status.
    pub fn from_code(code: &str, status: u16) -> ErrorCode {
        use ErrorCode::*;
        let known = [
            AccessDenied, AuthorizationHeaderMalformed, AuthorizationQueryParametersError, BadDigest,
            EntityTooLarge, EntityTooSmall, IncompleteBody, InternalError, InvalidAccessKeyId,
            InvalidArgument, InvalidBucketName, InvalidDigest, InvalidPart, InvalidPartOrder,
            InvalidRange, InvalidRequest, KeyTooLongError, MalformedXML, MethodNotAllowed,
            MissingContentLength, NoSuchBucket, NoSuchKey, NoSuchUpload, NotImplemented,
            PreconditionFailed, RequestTimeTooSkewed, RequestTimeout, ServiceUnavailable, SignatureDoesNotMatch,
            SlowDown, XAmzContentSHA256Mismatch,
        ];
        known
            .into_iter()
            .find(|k| k.as_str() == code && k.status() == status)
            .unwrap_or(Other { code: code.to_string(), status })
    }
}

/// An S3 error response: code, human message, and the resource it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Error {
    pub code: ErrorCode,
    pub message: String,
    pub resource: Option<String>,
    /// What the access log adds (e.g. which backend bucket failed); never sent to a client.
    pub detail: Option<String>,
}

impl S3Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> S3Error {
        S3Error { code, message: message.into(), resource: None, detail: None }
    }

    pub fn with_resource(mut self, resource: impl Into<String>) -> S3Error {
        self.resource = Some(resource.into());
        self
    }

    /// Add what only the access log may say (a bucket name, a transport detail).
    pub fn with_detail(mut self, detail: impl Into<String>) -> S3Error {
        self.detail = Some(detail.into());
        self
    }

    /// The error as the access log records it: code, message and the private detail.
    pub fn log_line(&self) -> String {
        match &self.detail {
            Some(d) => format!("{}: {} [{d}]", self.code.as_str(), self.message),
            None => format!("{}: {}", self.code.as_str(), self.message),
        }
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    pub fn internal(message: impl Into<String>) -> S3Error {
        S3Error::new(ErrorCode::InternalError, message)
    }

    pub fn invalid_argument(message: impl Into<String>) -> S3Error {
        S3Error::new(ErrorCode::InvalidArgument, message)
    }

    pub fn not_implemented(what: &str) -> S3Error {
        S3Error::new(
            ErrorCode::NotImplemented,
            format!("{what} is not implemented by this proxy"),
        )
    }
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code.as_str(), self.status(), self.message)
    }
}

impl std::error::Error for S3Error {}

pub type S3Result<T> = Result<T, S3Error>;
