//! Incoming bodies (client requests, backend responses) as streams whose items gather what the
//! runtime already holds, up to 256 KiB (spin-sdk reads 16 KiB at a time, and peers often send a
//! few KiB at a time): fewer, larger writes cost the runtime far less. A pause longer than the
//! stream's idle limit (when the core set one) ends it with a timeout.

use futures::stream::{FusedStream, StreamExt};
use spin_executor::CancelOnDropToken;
use spin_sdk::wit::wasi::http0_2_0::types::IncomingBody;
use std::{cell::Cell, rc::Rc, task::Poll};
use tempo_s3_shard_core::flow::{TransportError, TransportErrorKind::Timeout};
use wasi::clocks::monotonic_clock;
use wasi::io::streams::{InputStream, StreamError};

/// The most one item gathers.
const READ_BYTES: u64 = 256 * 1024;

/// The pieces of `body` as they arrive; an `Err` item when it breaks off or pauses longer than
/// `idle_ms` (0: no limit), and then the stream ends. `None` (a body already taken) breaks off at once.
pub fn incoming(body: Option<IncomingBody>, idle_ms: Rc<Cell<u64>>) -> impl FusedStream<Item = Result<Vec<u8>, TransportError>> {
    /// The open body; dropping it closes the stream, then finishes the body, as WASI requires.
    struct Reading {
        stream: Option<InputStream>,
        body: Option<IncomingBody>,
        waiting: Option<CancelOnDropToken>,
        /// When the current pause exceeds the idle limit (monotonic ns), and the wake-up for it.
        deadline: Option<(u64, CancelOnDropToken)>,
        failed: bool,
    }

    impl Reading {
        fn close(&mut self) {
            (self.waiting, self.deadline) = (None, None);
            self.stream = None;
            if let Some(body) = self.body.take() {
                drop(IncomingBody::finish(body));
            }
        }
    }

    impl Drop for Reading { fn drop(&mut self) { self.close() } }

    let stream = body.as_ref().and_then(|b| b.stream().ok());
    let failed = stream.is_none();
    let mut reading = Reading { stream, body, waiting: None, deadline: None, failed };
    futures::stream::poll_fn(move |cx| {
        if std::mem::take(&mut reading.failed) {
            reading.close();
            return Poll::Ready(Some(Err(crate::outbound::body_broke())));
        }
        let Some(input) = &reading.stream else { return Poll::Ready(None) };
        let wake = |pollable| CancelOnDropToken::from(spin_executor::push_waker_and_get_token(pollable, cx.waker().clone()));
        match input.read(READ_BYTES) {
            Ok(bytes) if bytes.is_empty() => {
                let (limit, now) = (idle_ms.get().saturating_mul(1_000_000), monotonic_clock::now());
                let at = reading.deadline.take().map_or(now.saturating_add(limit), |(at, _)| at);
                if limit > 0 && now >= at {
                    reading.close();
                    return Poll::Ready(Some(Err(TransportError::new(Timeout, "the body paused longer than its idle limit"))));
                }
                reading.deadline = (limit > 0).then(|| (at, wake(monotonic_clock::subscribe_instant(at))));
                reading.waiting = Some(wake(input.subscribe()));
                Poll::Pending
            }
            Ok(mut bytes) => {
                reading.deadline = None;
                // Append what has arrived meanwhile; never wait for more.
                while (bytes.len() as u64) < READ_BYTES {
                    match input.read(READ_BYTES - bytes.len() as u64) {
                        Ok(more) if !more.is_empty() => bytes.extend_from_slice(&more),
                        // A failure is reported on the next poll, after what did arrive.
                        Err(StreamError::LastOperationFailed(_)) => { reading.failed = true; break }
                        _ => break,
                    }
                }
                Poll::Ready(Some(Ok(bytes)))
            }
            Err(err) => {
                reading.close();
                Poll::Ready(matches!(err, StreamError::LastOperationFailed(_)).then(|| Err(crate::outbound::body_broke())))
            }
        }
    })
    .fuse()
}
