//! When to read a streamed backend body again: at once, or after a short pause that lets a
//! server's small frames pile up into one large read.
//!
//! Each read and each write of a body crosses between the component and its runtime, and the
//! runtime hands over what one socket read brought: a backend that writes 4 KiB at a time (s3s-fs
//! does) costs two crossings, a runtime wake-up and a client write per 4 KiB while the component
//! keeps up with it. Pausing briefly after a small piece lets the next read take what arrived
//! meanwhile (the socket buffers it, up to its receive window). Only far from the end of a body of
//! known length: a small object, and the last bytes of a large one, are never held up. Only while
//! pausing pays: what piles up during a pause is bounded by the socket's receive window, which the
//! kernel keeps small for a reader that pauses, and by how fast the backend sends; when pauses in a
//! row bring less than [`FRUITFUL_PIECE`], pausing is what limits the body, and the rest of it is
//! read at once.

/// A piece smaller than this is followed by a pause.
pub const SMALL_PIECE: usize = 64 * 1024;

/// No pause when fewer bytes than this are still to come.
pub const NEAR_END: u64 = 256 * 1024;

/// A pause pays when the piece after it is at least this large: at a 1 ms timer tick, the body
/// then still moves at 125 MiB/s or more.
pub const FRUITFUL_PIECE: usize = 128 * 1024;

/// Pauses in a row that did not pay after which a body is no longer paused.
pub const FRUITLESS_PAUSES: u8 = 2;

/// How long the next read waits after a small piece, in ns (a runtime's timers round it up to
/// their tick, Spin's and wasmtime's 1 ms).
pub const PAUSE_NS: u64 = 500_000;

/// The pacing of one body's reads: [`Pace::default`] never pauses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pace {
    /// Bytes of the body still to come, when its length is known and pausing is wanted.
    left: Option<u64>,
    /// Whether the last piece was followed by a pause.
    paused: bool,
    /// Pauses in a row that did not pay.
    fruitless: u8,
}

impl Pace {
    /// The pacing of a backend's response body streamed to the client, whose length its
    /// `content-length` header announces (no header: no pauses).
    pub fn of_response(headers: &[(String, String)]) -> Pace {
        let length = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-length"));
        Pace { left: length.and_then(|(_, v)| v.trim().parse().ok()), ..Pace::default() }
    }

    /// After a piece of `len` bytes: how long to wait before reading again, in ns (0: at once).
    pub fn after(&mut self, len: usize) -> u64 {
        let small = len < SMALL_PIECE;
        if self.paused {
            self.fruitless = if len < FRUITFUL_PIECE { self.fruitless + 1 } else { 0 };
        }
        if self.fruitless >= FRUITLESS_PAUSES {
            self.left = None;
        }
        let Some(left) = self.left.as_mut() else { return 0 };
        *left = left.saturating_sub(len as u64);
        self.paused = small && *left >= NEAR_END;
        if self.paused { PAUSE_NS } else { 0 }
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
    fn pausing_stops_for_the_body_once_pauses_in_a_row_do_not_pay() {
        let mut pace = response("268435456");
        assert_eq!(pace.after(4096), PAUSE_NS);
        assert_eq!(pace.after(FRUITFUL_PIECE), 0, "a pause that paid");
        assert_eq!(pace.after(4096), PAUSE_NS);
        assert_eq!(pace.after(SMALL_PIECE - 1), PAUSE_NS, "one pause that did not pay");
        assert_eq!(pace.after(SMALL_PIECE), 0, "two in a row (a piece large enough not to pause after, but not for a pause to pay)");
        assert_eq!(pace.after(4096), 0, "nor later");
        assert_eq!(pace.after(FRUITFUL_PIECE), 0);
        assert_eq!(pace.after(4096), 0, "nor after a large piece");
    }

    #[test]
    fn a_pause_that_pays_between_ones_that_do_not_keeps_the_pacing() {
        let mut pace = response("268435456");
        assert_eq!(pace.after(4096), PAUSE_NS);
        assert_eq!(pace.after(4096), PAUSE_NS, "one pause that did not pay");
        assert_eq!(pace.after(FRUITFUL_PIECE), 0, "then one that paid");
        assert_eq!(pace.after(4096), PAUSE_NS);
        assert_eq!(pace.after(4096), PAUSE_NS, "one that did not pay, again");
    }

    #[test]
    fn a_body_of_unknown_length_and_the_default_never_pause() {
        assert_eq!(Pace::of_response(&[]).after(1), 0);
        assert_eq!(response("chunked").after(1), 0);
        assert_eq!(Pace::default().after(1), 0);
    }
}
