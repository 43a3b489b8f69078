//! When to read a streamed backend body again: at once, or after a short pause that lets a
//! server's small frames pile up into one large read.
//!
//! Each read and each write of a body crosses between the component and its runtime, and the
//! runtime hands over what one socket read brought: a backend that writes 4 KiB at a time (s3s-fs
//! does) costs two crossings, a runtime wake-up and a client write per 4 KiB while the component
//! keeps up with it. Pausing briefly after a small piece lets the next read take what arrived
//! meanwhile (the socket buffers it; the backend never waits). Only far from the end of a body of
//! known length: a small object, and the last bytes of a large one, are never held up.

/// A piece smaller than this is followed by a pause.
pub const SMALL_PIECE: usize = 64 * 1024;

/// No pause when fewer bytes than this are still to come.
pub const NEAR_END: u64 = 256 * 1024;

/// How long the next read waits after a small piece, in ns (a runtime's timers round it up to
/// their tick, Spin's and wasmtime's 1 ms).
pub const PAUSE_NS: u64 = 500_000;

/// The pacing of one body's reads: [`Pace::default`] never pauses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pace {
    /// Bytes of the body still to come, when its length is known and pausing is wanted.
    left: Option<u64>,
}

impl Pace {
    /// The pacing of a backend's response body streamed to the client, whose length its
    /// `content-length` header announces (no header: no pauses).
    pub fn of_response(headers: &[(String, String)]) -> Pace {
        let length = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-length"));
        Pace { left: length.and_then(|(_, v)| v.trim().parse().ok()) }
    }

    /// After a piece of `len` bytes: how long to wait before reading again, in ns (0: at once).
    pub fn after(&mut self, len: usize) -> u64 {
        let Some(left) = self.left.as_mut() else { return 0 };
        *left = left.saturating_sub(len as u64);
        if len < SMALL_PIECE && *left >= NEAR_END { PAUSE_NS } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(length: &str) -> Pace {
        Pace::of_response(&[("etag".into(), "\"e\"".into()), ("content-length".into(), length.into())])
    }

    #[test]
    fn small_pieces_of_a_large_body_are_followed_by_a_pause() {
        let mut pace = response("268435456");
        assert_eq!(pace.after(4096), PAUSE_NS);
        assert_eq!(pace.after(SMALL_PIECE - 1), PAUSE_NS);
    }

    #[test]
    fn a_large_piece_is_read_after_at_once() {
        assert_eq!(response("268435456").after(SMALL_PIECE), 0);
        assert_eq!(response("268435456").after(256 * 1024), 0);
    }

    #[test]
    fn a_small_object_and_the_end_of_a_large_one_are_never_held_up() {
        assert_eq!(response("4096").after(4096), 0);
        assert_eq!(response("1048576").after(4096), PAUSE_NS);
        let mut pace = response(&(NEAR_END + 8192).to_string());
        assert_eq!(pace.after(4096), PAUSE_NS, "NEAR_END + 4096 still to come");
        assert_eq!(pace.after(4096), PAUSE_NS, "exactly NEAR_END still to come");
        assert_eq!(pace.after(1), 0, "less than NEAR_END still to come");
    }

    #[test]
    fn a_body_of_unknown_length_and_the_default_never_pause() {
        assert_eq!(Pace::of_response(&[]).after(1), 0);
        assert_eq!(response("chunked").after(1), 0);
        assert_eq!(Pace::default().after(1), 0);
    }
}
