//! Incoming bodies (client requests, backend responses) as streams whose items gather what the
//! runtime already holds, up to 256 KiB (spin-sdk reads 16 KiB at a time, and peers often send a
//! few KiB at a time): fewer, larger writes cost the runtime far less. A pause longer than the
//! stream's idle limit (when the core set one) ends it with a timeout; [`within`] bounds a write's
//! wait for the peer to read the same way. [`splice`] moves a body it need not read without reading
//! it, holding a moment after a small frame so that the next ones come joined.

use futures::stream::{FusedStream, StreamExt};
use spin_executor::CancelOnDropToken;
use spin_sdk::wit::wasi::http0_2_0::types::{IncomingBody, OutgoingBody};
use std::{cell::Cell, future::Future, rc::Rc, task::Poll};
use tempo_s3_shard_core::flow::{SendError, TransportError, TransportErrorKind::{Closed, Timeout}};
use wasi::{clocks::monotonic_clock, io::streams::{InputStream, StreamError}};

/// The most one item gathers, and one splice moves.
const READ_BYTES: u64 = 256 * 1024;
/// A splice that moved less than this and then found the source empty waits [`HOLD_MS`] before it
/// waits for more. Spin reads a body from its socket when the component asks for more, one frame per
/// read, so a peer writing 4 KiB at a time (s3s-fs) cost the runtime and the component a wake-up per
/// 4 KiB; held, what arrives meanwhile comes as one frame. Under Spin 3.6.3, a 256 MiB GET from s3s-fs
/// took half the CPU (565-626 against 1,199-1,253 ms) at 130-137 against 115-117 MiB/s; one whose
/// backend sends 64 KiB frames never holds (the runner joins frames before they cross: it rarely does).
const HOLD_BELOW: u64 = 16 * 1024;
/// How long a hold lasts: tokio, behind Spin's timers, counts whole milliseconds.
const HOLD_MS: u64 = 1;

/// The pieces of `body` as they arrive; an `Err` item when it breaks off or pauses longer than
/// `idle_ms` (0: no limit), and then the stream ends. `None` (a body already taken) breaks off at once.
pub fn incoming(body: Option<IncomingBody>, idle_ms: Rc<Cell<u64>>) -> impl FusedStream<Item = Result<Vec<u8>, TransportError>> {
    /// The open body; dropping it closes the stream, then the body, in the order WASI requires (a
    /// body is dropped rather than finished: a request's or response's trailers are never read,
    /// and a drop is one call into the runtime where a finish is two).
    struct Reading {
        stream: Option<InputStream>,
        body: Option<IncomingBody>,
        waiting: Option<CancelOnDropToken>,
        /// When the current pause exceeds the idle limit (monotonic ns), and the wake-up for it.
        deadline: Option<(u64, CancelOnDropToken)>,
        failed: Option<TransportError>,
    }

    impl Reading {
        fn close(&mut self) {
            (self.waiting, self.deadline, self.stream) = (None, None, None);
            drop(self.body.take());
        }
    }

    impl Drop for Reading { fn drop(&mut self) { self.close() } }

    let stream = body.as_ref().and_then(|b| b.stream().ok());
    let failed = stream.is_none().then(|| crate::outbound::body_broke(None));
    let mut reading = Reading { stream, body, waiting: None, deadline: None, failed };
    futures::stream::poll_fn(move |cx| {
        if let Some(failed) = reading.failed.take() { reading.close(); return Poll::Ready(Some(Err(failed))) }
        let Some(input) = &reading.stream else { return Poll::Ready(None) };
        match input.read(READ_BYTES) {
            Ok(bytes) if bytes.is_empty() => {
                if expired(&mut reading.deadline, idle_ms.get(), cx) {
                    reading.close();
                    return Poll::Ready(Some(Err(paused())));
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
        futures::future::Either::Left((written, _)) => written.map_err(write_failed),
        _ => Err(TransportError::new(Timeout, "the peer stopped reading for longer than its idle limit")) }
}

/// A write to the peer that failed (it went away).
fn write_failed(err: impl std::fmt::Debug) -> TransportError {
    TransportError::new(Closed, format!("writing the body failed: {err:?}"))
}

/// Whose each side of a [`splice`] is, and how long it may keep the other waiting (0: no limit;
/// a backend's pauses the runtime bounds with the request's between-bytes timeout).
pub struct Ends {
    /// The body read from, and the longest it may pause.
    pub source: (crate::Blame, u64),
    /// The body written to, and the longest it may go without taking more.
    pub peer: (crate::Blame, u64),
}

/// Move one body into another inside the runtime (`splice`: no byte crosses into the component):
/// a backend's to the client, the client's to a backend, or one backend's to another. Returns the
/// bytes moved, or whose side failed; both bodies are finished either way (a short one the runtime
/// aborts).
pub async fn splice(from: Option<IncomingBody>, to: Option<OutgoingBody>, ends: Ends) -> Result<u64, SendError> {
    let Ends { source: (source, source_idle), peer: (peer, peer_idle) } = ends;
    let broke = || source(crate::outbound::body_broke(None));
    let (Some(from), Some(to)) = (from, to) else { return Err(broke()) };
    let (Ok(input), Ok(output)) = (from.stream(), to.write()) else { return Err(broke()) };
    let (mut moved, mut peer_closed, mut small) = (0, false, false);
    let result = loop {
        match output.splice(&input, READ_BYTES) {
            // A small frame, and nothing after it yet (the peer would take more): let more arrive
            // before asking again.
            Ok(0) if small && output.check_write().is_ok_and(|room| room > 0) => {
                small = false;
                hold().await;
            }
            Ok(0) => {
                if let Err(e) = within(peer_idle, ready(|| output.subscribe())).await { break Err(peer(e)) }
                if within(source_idle, ready(|| input.subscribe())).await.is_err() { break Err(source(paused())) }
            }
            Ok(n) => (moved, small) = (moved + n, n < HOLD_BELOW),
            // One side closed: the source ended, or the peer stopped taking (a backend that
            // answered early), which makes a short body the peer's failure.
            Err(StreamError::Closed) => {
                peer_closed = output.check_write().is_err();
                break within(peer_idle, flushed(&output)).await.map(|()| moved).map_err(peer);
            }
            // Either side's failure: the peer's when its stream fails too, else the source's.
            Err(StreamError::LastOperationFailed(e)) => break Err(match output.check_write() {
                Err(_) => peer(write_failed(e)),
                Ok(_) => source(crate::outbound::body_broke(Some(&e))),
            }),
        }
    };
    // The streams go first: WASI refuses to drop or finish a body whose stream is still open.
    drop((input, output, from));
    // A body shorter than its Content-Length fails here: the runtime cuts the request or response.
    let short = |e| TransportError::new(Closed, format!("the body ended short: {e:?}"));
    let finished = OutgoingBody::finish(to, None).map_err(|e| if peer_closed { peer(short(e)) } else { source(short(e)) });
    result.and_then(|moved| finished.map(|()| moved))
}

/// Wait [`HOLD_MS`], timed as [`expired`] times a pause: by the clock, not by a timer's own `ready`,
/// which can say false after the runtime's `poll` found it ready (wasmtime makes a new tokio sleep
/// for each) and would then never end.
async fn hold() {
    let mut deadline = None;
    futures::future::poll_fn(move |cx| if expired(&mut deadline, HOLD_MS, cx) { Poll::Ready(()) } else { Poll::Pending }).await
}

/// A body that paused longer than its idle limit.
fn paused() -> TransportError {
    TransportError::new(Timeout, "the body paused longer than its idle limit")
}

/// Resolves once the pollable `subscribe` gives is ready; asked again at every poll, so a wake-up
/// for another reason (a timer's) never passes for readiness.
fn ready(subscribe: impl Fn() -> wasi::io::poll::Pollable) -> impl Future<Output = Result<(), StreamError>> {
    let mut token = None;
    futures::future::poll_fn(move |cx| {
        let pollable = subscribe();
        if pollable.ready() { drop(token.take()); return Poll::Ready(Ok(())) }
        token = Some(wake(pollable, cx));
        Poll::Pending
    })
}

/// Flush `output`, then wait until the runtime has taken everything. A stream the runtime closed
/// after the last write is done too (wasmtime stops reading a body at its Content-Length and
/// closes it, as spin-sdk's sink allows): the body's finish then tells whether it was whole.
async fn flushed(output: &wasi::io::streams::OutputStream) -> Result<(), StreamError> {
    let taken = async {
        output.flush()?;
        ready(|| output.subscribe()).await?;
        output.check_write().map(drop)
    };
    match taken.await { Err(StreamError::Closed) => Ok(()), other => other }
}
