//! Bodies whose data frames are joined into larger ones before they are handed on.
//!
//! Each frame of a body crosses into the component as one read; a server that writes small pieces
//! (s3s-fs sends 4 KiB frames) costs one crossing per piece. Joining what has already arrived
//! makes those crossings few and large.

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

/// The most bytes [`Joined::arrived`] joins into one frame.
pub const GATHER_BYTES: usize = 256 * 1024;

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
}

impl<B: Body<Data = Bytes>> Joined<B> {
    /// Frames of at least `min` bytes, waiting for the body to deliver them (a server that sends
    /// large frames, as networked object stores do); `min` 0 passes frames as they are.
    pub fn at_least(inner: B, min: usize) -> Joined<B> {
        Joined::new(inner, min, true)
    }

    /// Frames of whatever has already arrived, up to [`GATHER_BYTES`]; never waits for more than
    /// the first piece.
    pub fn arrived(inner: B) -> Joined<B> {
        Joined::new(inner, GATHER_BYTES, false)
    }

    fn new(inner: B, min: usize, wait: bool) -> Joined<B> {
        Joined { inner: Box::pin(inner), min, wait, first: None, joined: BytesMut::new(), held: None, ended: false }
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

    fn take(&mut self) -> Option<Bytes> {
        if !self.joined.is_empty() {
            return Some(self.joined.split().freeze());
        }
        self.first.take()
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
            match this.inner.as_mut().poll_frame(cx) {
                Poll::Pending if this.wait || this.buffered() == 0 => return Poll::Pending,
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
