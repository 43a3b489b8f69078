//! Bodies whose data frames are joined into larger ones before they are handed on.
//!
//! Each frame of a body crosses into the component as one read; a server that writes small pieces
//! (s3s-fs sends 4 KiB frames) costs one crossing per piece. Joining what has already arrived
//! makes those crossings few and large; lingering a moment for more makes them so even when the
//! proxy keeps up with the server, which then has never sent more than one piece. While it
//! lingers the body is not read at all: the pieces gather in the socket, and are read together
//! when the linger is over, rather than one read each. A body whose socket's low-water mark it may
//! set (a backend's answer on a pooled connection, a client's request) does better: the linger
//! raises the mark ([`crate::low_water`]), so the pieces gather without a wake-up each (which not
//! reading alone does not spare: every piece still wakes the serving thread), and the body is read
//! as soon as a whole joined frame is there rather than only when the linger is over.

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The most bytes [`Joined::arrived`] joins into one frame.
pub const GATHER_BYTES: usize = 256 * 1024;

/// [`Joined::arrived`] holds fewer bytes than this for up to [`LINGER`], waiting for more.
pub const LINGER_BYTES: usize = 64 * 1024;

/// The longest [`Joined::arrived`] holds a short frame (tokio's timers tick in milliseconds). The
/// end of a body is never held: a body that knows its length ends as its last piece arrives.
pub const LINGER: Duration = Duration::from_millis(1);

/// A body whose data frames are joined until they reach `min` bytes (the last may be shorter).
pub struct Joined<B: Body> {
    inner: Pin<Box<B>>,
    min: usize,
    /// Wait for `min` bytes (true), or hand on whatever has arrived when the inner body has no more
    /// for now (false).
    wait: bool,
    /// The first piece of the next frame, kept as it came (no copy unless more are joined to it).
    first: Option<Bytes>,
    /// Pieces joined to `first` so far (`first` included).
    joined: BytesMut,
    /// A frame (trailers) or error that came while joining, for after the joined data.
    held: Option<Result<Frame<Bytes>, B::Error>>,
    ended: bool,
    /// When a short frame held for more is handed on anyway (one timer per body, reset per frame).
    linger: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Where the frame being joined is in its linger.
    phase: Linger,
    /// The low-water mark of the socket the body arrives on, raised while the linger runs so the
    /// pieces gather without waking anyone; the body is then read as the linger runs (a wake-up
    /// means enough has gathered), not only after it.
    low: Option<crate::low_water::LowWater>,
}

/// The linger of the frame being joined.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Linger {
    /// Not begun (the frame has not yet come up short).
    Idle,
    /// `linger` runs; the inner body is not polled until it is over, unless the socket's mark is
    /// raised (then the body wakes its reader only once a whole joined frame is there).
    Running,
    /// Over: read what has arrived meanwhile, then hand it on.
    Over,
}

impl<B: Body<Data = Bytes>> Joined<B> {
    /// Frames of at least `min` bytes, waiting for the body to deliver them (a server that sends
    /// large frames, as networked object stores do); `min` 0 passes frames as they are.
    pub fn at_least(inner: B, min: usize) -> Joined<B> {
        Joined::new(inner, min, true)
    }

    /// Frames of whatever has already arrived, up to [`GATHER_BYTES`]; a frame of fewer than
    /// [`LINGER_BYTES`] is held up to [`LINGER`] for more, unless it ends the body.
    pub fn arrived(inner: B) -> Joined<B> {
        Joined::new(inner, GATHER_BYTES, false)
    }

    /// [`Joined::arrived`] on the socket whose low-water mark is `low` when `join`; else the frames
    /// as they were read, as Spin hands them on (the runner's Spin sockets).
    pub fn arrived_unless_spin(inner: B, join: bool, low: Option<crate::low_water::LowWater>) -> Joined<B> {
        if join { Joined::arrived(inner).on_socket(low) } else { Joined::at_least(inner, 0) }
    }

    fn new(inner: B, min: usize, wait: bool) -> Joined<B> {
        Joined { inner: Box::pin(inner), min, wait, first: None, joined: BytesMut::new(), held: None, ended: false, linger: None, phase: Linger::Idle, low: None }
    }

    /// The same body, arriving on the socket whose low-water mark is `low`.
    pub fn on_socket(mut self, low: Option<crate::low_water::LowWater>) -> Joined<B> {
        self.low = low;
        self
    }

    /// While the linger runs: wake no reader until a whole joined frame (or the rest of the body)
    /// is there. The mark aims at [`GATHER_BYTES`], not [`LINGER_BYTES`]: with the linger's timer
    /// bounding the wait either way, frames four times larger halved the runner's CPU for a body
    /// sent in 4 KiB pieces (256 MiB GET from s3s-fs: 236-274 against 95-113 ms).
    fn raise(&self) {
        if let (Some(low), Some(left)) = (&self.low, self.inner.size_hint().exact()) {
            let left = usize::try_from(left).unwrap_or(usize::MAX);
            low.set(GATHER_BYTES.saturating_sub(self.buffered()).min(left));
        }
    }

    fn buffered(&self) -> usize {
        if self.joined.is_empty() {
            self.first.as_ref().map_or(0, Bytes::len)
        } else {
            self.joined.len()
        }
    }

    fn push(&mut self, data: Bytes) {
        match self.first.take() {
            None if self.joined.is_empty() => self.first = Some(data),
            first => {
                if let Some(first) = first {
                    self.joined.reserve(first.len() + data.len());
                    self.joined.extend_from_slice(&first);
                }
                self.joined.extend_from_slice(&data);
            }
        }
    }

    /// Whether the short frame joined so far should wait for more: in `arrived` mode, for
    /// [`LINGER`] from when it began waiting (the timer then wakes `cx`), then no longer.
    fn linger(&mut self, cx: &mut Context<'_>) -> bool {
        if self.phase == Linger::Over || self.buffered() >= LINGER_BYTES || self.inner.is_end_stream() {
            return false;
        }
        // The clock is read only when a linger starts, not at every poll of a frame already waiting.
        let timer = match &mut self.linger {
            Some(timer) if self.phase == Linger::Running => timer,
            Some(timer) => {
                timer.as_mut().reset(tokio::time::Instant::now() + LINGER);
                timer
            }
            None => self.linger.insert(Box::pin(tokio::time::sleep(LINGER))),
        };
        if timer.as_mut().poll(cx).is_pending() {
            if self.phase == Linger::Idle {
                self.raise();
            }
            self.phase = Linger::Running;
            return true;
        }
        self.lower();
        self.phase = Linger::Over;
        false
    }

    fn take(&mut self) -> Option<Bytes> {
        if self.phase == Linger::Running {
            self.lower();
        }
        self.phase = Linger::Idle;
        if !self.joined.is_empty() {
            return Some(self.joined.split().freeze());
        }
        self.first.take()
    }
}

impl<B: Body> Joined<B> {
    /// Outside the linger: wake a reader for any byte.
    fn lower(&self) {
        if let Some(low) = &self.low {
            low.set(1);
        }
    }
}

impl<B: Body> Drop for Joined<B> {
    fn drop(&mut self) {
        // A connection that goes back to its pool must wake its next reader for any byte.
        self.lower();
    }
}

// No field is structurally pinned (the inner body is boxed), so `Joined` may move.
impl<B: Body> Unpin for Joined<B> {}

impl<B: Body<Data = Bytes>> Body for Joined<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        while !this.ended && this.held.is_none() && (this.buffered() == 0 || this.buffered() < this.min) {
            if this.phase == Linger::Running && this.low.is_none() && this.linger(cx) {
                return Poll::Pending;
            }
            match this.inner.as_mut().poll_frame(cx) {
                Poll::Pending if this.wait || this.buffered() == 0 || this.linger(cx) => return Poll::Pending,
                Poll::Pending => break,
                Poll::Ready(None) => this.ended = true,
                Poll::Ready(Some(Err(err))) => this.held = Some(Err(err)),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if this.buffered() == 0 && data.len() >= this.min => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Ok(data) => this.push(data),
                    Err(frame) => this.held = Some(Ok(frame)),
                },
            }
        }
        if let Some(data) = this.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(this.held.take())
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.held.is_none() && self.buffered() == 0
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let buffered = self.buffered() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + buffered);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + buffered);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;
    use std::task::Waker;

    /// A body whose pieces the test hands it; `Pending` when it has none. With `ends_at_last`, it
    /// knows its length, as a body with Content-Length does: it is at its end once its queue is empty.
    struct Pieces {
        queue: Rc<RefCell<VecDeque<Bytes>>>,
        ends_at_last: bool,
    }

    impl Body for Pieces {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            match self.queue.borrow_mut().pop_front() {
                Some(piece) => Poll::Ready(Some(Ok(Frame::data(piece)))),
                None => Poll::Pending,
            }
        }

        fn is_end_stream(&self) -> bool {
            self.ends_at_last && self.queue.borrow().is_empty()
        }
    }

    fn arrived(ends_at_last: bool) -> (Joined<Pieces>, Rc<RefCell<VecDeque<Bytes>>>) {
        let queue = Rc::new(RefCell::new(VecDeque::new()));
        (Joined::arrived(Pieces { queue: queue.clone(), ends_at_last }), queue)
    }

    /// The length of the data frame `body` gives now, or `None` while it waits.
    fn frame_now(body: &mut Joined<Pieces>) -> Option<usize> {
        match Pin::new(body).poll_frame(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Some(Ok(frame))) => Some(frame.into_data().map_or(0, |data| data.len())),
            Poll::Ready(_) => panic!("the body ended"),
            Poll::Pending => None,
        }
    }

    fn piece(len: usize) -> Bytes {
        Bytes::from(vec![7u8; len])
    }

    #[tokio::test]
    async fn a_short_piece_waits_and_what_comes_meanwhile_is_read_after_it_as_one_frame() {
        let (mut body, queue) = arrived(false);
        queue.borrow_mut().push_back(piece(4096));
        assert_eq!(frame_now(&mut body), None, "4 KiB is held for more");
        queue.borrow_mut().push_back(piece(4096));
        queue.borrow_mut().push_back(piece(60 * 1024));
        assert_eq!(frame_now(&mut body), None, "the body is not read while the linger runs");
        assert_eq!(queue.borrow().len(), 2);
        tokio::time::sleep(LINGER * 5).await;
        assert_eq!(frame_now(&mut body), Some(68 * 1024), "one frame of all that came");
    }

    #[tokio::test]
    async fn a_long_first_piece_is_not_held() {
        let (mut body, queue) = arrived(false);
        queue.borrow_mut().push_back(piece(LINGER_BYTES));
        assert_eq!(frame_now(&mut body), Some(LINGER_BYTES));
    }

    #[tokio::test]
    async fn a_short_piece_is_handed_on_when_the_linger_is_over() {
        let (mut body, queue) = arrived(false);
        queue.borrow_mut().push_back(piece(4096));
        assert_eq!(frame_now(&mut body), None);
        tokio::time::sleep(LINGER * 5).await;
        assert_eq!(frame_now(&mut body), Some(4096));
        // The next short piece waits its own linger.
        queue.borrow_mut().push_back(piece(100));
        assert_eq!(frame_now(&mut body), None);
    }

    #[tokio::test]
    async fn the_last_piece_of_a_body_that_knows_its_length_is_never_held() {
        let (mut body, queue) = arrived(true);
        queue.borrow_mut().push_back(piece(4096));
        assert_eq!(frame_now(&mut body), Some(4096));
    }
}
