//! How a backend's response body reaches the client: spliced from stream to stream inside the
//! runtime, or read into the component and written out again.
//!
//! Passing a body through the component costs two copies of every byte (into its memory and out
//! again) and, per piece, crossings into the runtime and a flush: about half the proxy's CPU for a
//! large GET. A splice (wasi `output-stream.splice`) moves the bytes inside the runtime. Small
//! bodies still go through the component, which writes what it holds before handing the response
//! over, so head and body leave the runtime together (Spin sets no `TCP_NODELAY`: a head sent apart
//! from a small body waits for the client's delayed ACK).

/// Bodies announcing at least this many bytes are spliced.
pub const SPLICE_MIN: u64 = 256 * 1024;

/// Whether a response body with these headers is spliced: its `content-length` says it is at
/// least [`SPLICE_MIN`] bytes (no length, or a smaller one: through the component).
pub fn splices(headers: &[(String, String)]) -> bool {
    let length = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-length"));
    length.and_then(|(_, v)| v.trim().parse::<u64>().ok()).is_some_and(|n| n >= SPLICE_MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(length: &str) -> Vec<(String, String)> {
        vec![("etag".into(), "\"e\"".into()), ("Content-Length".into(), length.into())]
    }

    #[test]
    fn a_large_body_is_spliced() {
        assert!(splices(&response("268435456")));
        assert!(splices(&response(&SPLICE_MIN.to_string())));
    }

    #[test]
    fn a_small_body_goes_through_the_component_so_its_head_leaves_with_it() {
        assert!(!splices(&response(&(SPLICE_MIN - 1).to_string())));
        assert!(!splices(&response("4096")));
        assert!(!splices(&response("0")));
    }

    #[test]
    fn a_body_of_unknown_length_goes_through_the_component() {
        assert!(!splices(&[]));
        assert!(!splices(&response("chunked")));
    }
}
