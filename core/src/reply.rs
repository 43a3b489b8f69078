//! A response the proxy builds itself: status, headers and a body held in memory.

use crate::error::S3Error;
use crate::xml;

/// A response the proxy produces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// An XML document.
    pub fn xml(status: u16, body: String) -> Reply {
        Reply::with_type(status, "application/xml", body.into_bytes())
    }

    /// A JSON document (operator endpoints), one line.
    pub fn json(status: u16, value: &serde_json::Value) -> Reply {
        Reply::with_type(status, "application/json", format!("{value}\n").into_bytes())
    }

    /// No body.
    pub fn empty(status: u16) -> Reply {
        Reply { status, headers: vec![], body: vec![] }
    }

    /// The S3 XML error document for `err`.
    pub fn error(err: &S3Error, request_id: &str) -> Reply {
        Reply::xml(err.status(), xml::error(err, request_id))
    }

    fn with_type(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
        Reply { status, headers: vec![("content-type".into(), content_type.into())], body }
    }
}
