//! The one-line JSON access log every request writes: what was asked, where it went, how it ended.

use crate::clock;
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
    pub duration_us: u64,
    pub error: Option<String>,
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
