//! How the adapter hands a response over: which backend bodies it reads whole before answering.
//!
//! A response head written apart from a small body leaves the body waiting for the client's delayed
//! ACK on a connection without `TCP_NODELAY` (Spin's, ~40 ms); a body the component holds when it
//! hands the response over leaves with the head, in one write.

use crate::route::header;

/// The largest backend body read whole before the response is handed over (64 KiB).
pub const WHOLE_BODY_LIMIT: u64 = 64 * 1024;

/// Whether the adapter should read a successful backend response's body whole before handing the
/// response to the runtime: the backend declared a `Content-Length` of at most
/// [`WHOLE_BODY_LIMIT`] and the status carries a body. Larger or unsized bodies stream through.
pub fn read_whole_before_responding(status: u16, headers: &[(String, String)]) -> bool {
    if status < 200 || status == 204 || status == 304 {
        return false;
    }
    header(headers, "content-length")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|length| length <= WHOLE_BODY_LIMIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_length(length: &str) -> Vec<(String, String)> {
        vec![("etag".into(), "\"x\"".into()), ("Content-Length".into(), length.into())]
    }

    #[test]
    fn small_sized_bodies_are_read_whole() {
        assert!(read_whole_before_responding(200, &with_length("4096")));
        assert!(read_whole_before_responding(206, &with_length("65536")));
        assert!(read_whole_before_responding(200, &with_length("0")));
    }

    #[test]
    fn large_unsized_or_bodiless_responses_stream() {
        assert!(!read_whole_before_responding(200, &with_length("65537")));
        assert!(!read_whole_before_responding(200, &with_length("many")));
        assert!(!read_whole_before_responding(200, &[("transfer-encoding".into(), "chunked".into())]));
        assert!(!read_whole_before_responding(204, &with_length("10")));
        assert!(!read_whole_before_responding(304, &with_length("10")));
    }
}
