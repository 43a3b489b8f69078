//! The one-line JSON access log every request writes: what was asked, where it went, how it ended.

use crate::clock;
use crate::flow::{SendError, TransportErrorKind};
use serde_json::json;

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
    /// The record as one line of JSON.
    pub fn to_json(&self) -> String {
        json!({
            "time": clock::iso8601(self.time),
            "request_id": self.request_id,
            "method": self.method,
            "operation": self.operation,
            "key": self.key,
            "bucket": self.bucket,
            "status": self.status,
            "bytes": self.bytes,
            "cut": self.cut,
            "duration_ms": self.duration_us as f64 / 1000.0,
            "error": self.error,
        })
        .to_string()
    }
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
}
