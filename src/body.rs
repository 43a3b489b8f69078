//! Incoming bodies (client requests, backend responses) as streams whose items gather what the
//! runtime already holds, up to 256 KiB (spin-sdk reads 16 KiB at a time, and peers often send a
//! few KiB at a time): fewer, larger writes cost the runtime far less.

use futures::stream::{FusedStream, StreamExt};
use spin_executor::CancelOnDropToken;
use spin_sdk::wit::wasi::http0_2_0::types::IncomingBody;
use std::task::Poll;
use wasi::io::streams::{InputStream, StreamError};

/// The most one item gathers.
const READ_BYTES: u64 = 256 * 1024;

/// The pieces of `body` as they arrive; an `Err` item when it breaks off (then the stream ends).
/// `None` (a body already taken) is a stream that breaks off at once.
pub fn incoming(body: Option<IncomingBody>) -> impl FusedStream<Item = Result<Vec<u8>, ()>> {
    /// The open body; dropping it closes the stream, then finishes the body, as WASI requires.
    struct Reading {
        stream: Option<InputStream>,
        body: Option<IncomingBody>,
        waiting: Option<CancelOnDropToken>,
        failed: bool,
    }

    impl Reading {
        fn close(&mut self) {
            self.waiting = None;
            self.stream = None;
            if let Some(body) = self.body.take() {
                drop(IncomingBody::finish(body));
            }
        }
    }

    impl Drop for Reading {
        fn drop(&mut self) { self.close() }
    }

    let stream = body.as_ref().and_then(|b| b.stream().ok());
    let failed = stream.is_none();
    let mut reading = Reading { stream, body, waiting: None, failed };
    futures::stream::poll_fn(move |cx| {
        if std::mem::take(&mut reading.failed) {
            reading.close();
            return Poll::Ready(Some(Err(())));
        }
        let Some(input) = &reading.stream else { return Poll::Ready(None) };
        match input.read(READ_BYTES) {
            Ok(bytes) if bytes.is_empty() => {
                let token = spin_executor::push_waker_and_get_token(input.subscribe(), cx.waker().clone());
                reading.waiting = Some(CancelOnDropToken::from(token));
                Poll::Pending
            }
            Ok(mut bytes) => {
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
                Poll::Ready(matches!(err, StreamError::LastOperationFailed(_)).then_some(Err(())))
            }
        }
    })
    .fuse()
}
