//! Incoming bodies (client requests, backend responses) as streams whose items gather what the
//! runtime already holds, up to 256 KiB (spin-sdk reads 16 KiB at a time, and peers often send a
//! few KiB at a time), reading again when the core's [`Pace`] says: fewer, larger writes cost the
//! runtime far less. A pause longer than the stream's idle limit (when the core set one) ends it
//! with a timeout; [`within`] bounds a write's wait for the peer to read the same way.

use futures::stream::{FusedStream, StreamExt};
use spin_executor::CancelOnDropToken;
use spin_sdk::wit::wasi::http0_2_0::types::IncomingBody;
use std::{cell::Cell, future::Future, rc::Rc, task::Poll};
use tempo_s3_shard_core::{flow::{TransportError, TransportErrorKind::{Closed, Timeout}}, pace::Pace};
use wasi::{clocks::monotonic_clock, io::streams::{InputStream, StreamError}};

/// The most one item gathers.
const READ_BYTES: u64 = 256 * 1024;

/// The pieces of `body` as they arrive, each read when `pace` says; an `Err` item when it breaks off
/// or pauses longer than `idle_ms` (0: no limit), then the end. `None` (taken already) breaks off.
pub fn incoming(body: Option<IncomingBody>, idle_ms: Rc<Cell<u64>>, mut pace: Pace) -> impl FusedStream<Item = Result<Vec<u8>, TransportError>> {
    /// The open body; dropping it closes the stream, then finishes the body, as WASI requires.
    struct Reading {
        stream: Option<InputStream>,
        body: Option<IncomingBody>,
        waiting: Option<CancelOnDropToken>,
        /// When the current pause exceeds the idle limit (monotonic ns), and the wake-up for it.
        deadline: Option<(u64, CancelOnDropToken)>,
        failed: Option<TransportError>,
        /// No read before this instant (monotonic ns; 0: none): the pause `pace` asked for.
        not_before: u64,
    }

    impl Reading {
        fn close(&mut self) {
            (self.waiting, self.deadline, self.stream) = (None, None, None);
            if let Some(body) = self.body.take() { drop(IncomingBody::finish(body)) }
        }
    }

    impl Drop for Reading { fn drop(&mut self) { self.close() } }

    let stream = body.as_ref().and_then(|b| b.stream().ok());
    let failed = stream.is_none().then(|| crate::outbound::body_broke(None));
    let mut reading = Reading { stream, body, waiting: None, deadline: None, failed, not_before: 0 };
    futures::stream::poll_fn(move |cx| {
        if let Some(failed) = reading.failed.take() { reading.close(); return Poll::Ready(Some(Err(failed))) }
        let Some(input) = &reading.stream else { return Poll::Ready(None) };
        if reading.not_before != 0 && reading.not_before > monotonic_clock::now() { reading.waiting = Some(wake(monotonic_clock::subscribe_instant(reading.not_before), cx)); return Poll::Pending }
        match input.read(READ_BYTES) {
            Ok(bytes) if bytes.is_empty() => {
                if expired(&mut reading.deadline, idle_ms.get(), cx) {
                    reading.close();
                    return Poll::Ready(Some(Err(TransportError::new(Timeout, "the body paused longer than its idle limit"))));
                }
                reading.waiting = Some(wake(input.subscribe(), cx));
                Poll::Pending
            }
            Ok(mut bytes) => {
                reading.deadline = None;
                // Append what has arrived meanwhile; never wait for more.
                while (bytes.len() as u64) < READ_BYTES {
                    match input.read(READ_BYTES - bytes.len() as u64) {
                        Ok(more) if !more.is_empty() => bytes.extend_from_slice(&more),
                        // A failure is reported on the next poll, after what did arrive.
                        Err(StreamError::LastOperationFailed(e)) => { reading.failed = Some(crate::outbound::body_broke(Some(&e))); break }
                        _ => break,
                    }
                }
                reading.not_before = match pace.after(bytes.len()) { 0 => 0, ns => monotonic_clock::now() + ns };
                Poll::Ready(Some(Ok(bytes)))
            }
            Err(err) => {
                reading.close();
                Poll::Ready(match err { StreamError::LastOperationFailed(e) => Some(Err(crate::outbound::body_broke(Some(&e)))), StreamError::Closed => None })
            }
        }
    })
    .fuse()
}

/// Wake the task of `cx` when `pollable` is ready (until the token is dropped).
pub fn wake(pollable: wasi::io::poll::Pollable, cx: &std::task::Context) -> CancelOnDropToken {
    CancelOnDropToken::from(spin_executor::push_waker_and_get_token(pollable, cx.waker().clone()))
}

/// Whether the pause that `deadline` times (started at its first call) has lasted `idle_ms` (0: no
/// limit); if not, `deadline` holds a wake-up for when it will have.
fn expired(deadline: &mut Option<(u64, CancelOnDropToken)>, idle_ms: u64, cx: &std::task::Context) -> bool {
    let (limit, now) = (idle_ms.saturating_mul(1_000_000), monotonic_clock::now());
    let at = deadline.take().map_or(now.saturating_add(limit), |(at, _)| at);
    *deadline = (limit > 0 && now < at).then(|| (at, wake(monotonic_clock::subscribe_instant(at), cx)));
    limit > 0 && now >= at
}

/// `write`, unless it waits longer than `idle_ms` (0: no limit) for the peer to take the bytes: then
/// a `Timeout`, and dropping the sink makes the runtime cut the body. No clock is read for a write
/// that is done at once or has no limit.
pub async fn within(idle_ms: u64, write: impl Future<Output = Result<(), StreamError>>) -> Result<(), TransportError> {
    let mut deadline = None;
    let expired = futures::future::poll_fn(move |cx| if idle_ms > 0 && expired(&mut deadline, idle_ms, cx) { Poll::Ready(()) } else { Poll::Pending });
    match futures::future::select(std::pin::pin!(write), std::pin::pin!(expired)).await {
        futures::future::Either::Left((written, _)) => written.map_err(|e| TransportError::new(Closed, format!("writing the body failed: {e:?}"))),
        _ => Err(TransportError::new(Timeout, "the peer stopped reading for longer than its idle limit")) }
}
