//! The one-line JSON access log every request writes: what was asked, where it went, how it ended.

use crate::clock;
use crate::flow::{SendError, TransportErrorKind};
use serde::Serialize;

/// One access-log line (JSON): what was asked, where it went, how it ended. No secrets: keys and
/// bucket names only.
#[derive(Debug, Default)]
pub struct AccessLog {
    pub request_id: String,
    pub time: u64,
    pub method: String,
    pub operation: String,
    pub key: Option<String>,
    pub bucket: Option<String>,
    pub status: u16,
    pub bytes: Option<u64>,
    /// Why the response body was cut after its head went out ([`cut_reason`]); `bytes` is null then.
    pub cut: Option<&'static str>,
    pub duration_us: u64,
    pub error: Option<String>,
}

/// Why a response body was cut, from the error that ended writing it: `client-stalled` (it stopped
/// reading for longer than `client_idle_timeout`), `client-gone` (its connection closed),
/// `backend-stalled` (the backend's body paused longer than `backend_idle_timeout`) or
/// `backend-broke-off`.
pub fn cut_reason(err: &SendError) -> &'static str {
    match err {
        SendError::Client(e) if e.kind == TransportErrorKind::Timeout => "client-stalled",
        SendError::Client(_) => "client-gone",
        SendError::Transport(e) if e.kind == TransportErrorKind::Timeout => "backend-stalled",
        SendError::Transport(_) | SendError::Body(_) => "backend-broke-off",
    }
}

impl AccessLog {
    /// The record as one line of JSON, its keys in alphabetical order.
    pub fn to_json(&self) -> String {
        let line = Line {
            bucket: self.bucket.as_deref(),
            bytes: self.bytes,
            cut: self.cut,
            duration_ms: self.duration_us as f64 / 1000.0,
            error: self.error.as_deref(),
            key: self.key.as_deref(),
            method: &self.method,
            operation: &self.operation,
            request_id: &self.request_id,
            status: self.status,
            time: clock::iso8601(self.time),
        };
        serde_json::to_string(&line).unwrap_or_default()
    }
}

/// The line as written: fields in alphabetical order, as the log has always had its keys, and
/// borrowed, so writing it builds no map of owned keys per request.
#[derive(Serialize)]
struct Line<'a> {
    bucket: Option<&'a str>,
    bytes: Option<u64>,
    cut: Option<&'static str>,
    duration_ms: f64,
    error: Option<&'a str>,
    key: Option<&'a str>,
    method: &'a str,
    operation: &'a str,
    request_id: &'a str,
    status: u16,
    time: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_log_is_one_json_line() {
        let line = AccessLog { request_id: "r".into(), operation: "GetObject".into(), status: 200, ..Default::default() }.to_json();
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["operation"], "GetObject");
    }

    #[test]
    fn the_line_has_its_keys_in_alphabetical_order_and_nulls_for_what_is_unknown() {
        let record = AccessLog {
            request_id: "17F0A".into(),
            time: 1_700_000_000,
            method: "PUT".into(),
            operation: "PutObject".into(),
            key: Some("tenant/block/\"data\"".into()),
            status: 503,
            cut: Some("backend-stalled"),
            duration_us: 1_250,
            error: Some("backend timed out".into()),
            ..Default::default()
        };
        assert_eq!(
            record.to_json(),
            r#"{"bucket":null,"bytes":null,"cut":"backend-stalled","duration_ms":1.25,"error":"backend timed out","key":"tenant/block/\"data\"","method":"PUT","operation":"PutObject","request_id":"17F0A","status":503,"time":"2023-11-14T22:13:20.000Z"}"#
        );
    }
}
