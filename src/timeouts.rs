//! Backend calls bounded by the configured timeouts, passed to the runtime as wasi-http request
//! options (spin-sdk 5.2's `http::send` sets none, so the runtime's 600 s defaults would apply).

use spin_executor::CancelOnDropToken;
use spin_sdk::http::{ErrorCode, IncomingResponse, OutgoingRequest};
use spin_sdk::wit::wasi::http0_2_0::outgoing_handler;
use spin_sdk::wit::wasi::http0_2_0::types::{FutureIncomingResponse, RequestOptions};
use std::task::Poll;
use tempo_s3_shard_core::config::Timeouts;

/// `timeouts` as wasi-http request options (durations in nanoseconds).
fn request_options(timeouts: &Timeouts) -> RequestOptions {
    let options = RequestOptions::new();
    let ns = |ms: u64| Some(ms.saturating_mul(1_000_000));
    // A runtime that cannot honour an option keeps its default; the call still goes out.
    let _ = options.set_connect_timeout(ns(timeouts.connect_ms));
    let _ = options.set_first_byte_timeout(ns(timeouts.first_byte_ms));
    let _ = options.set_between_bytes_timeout(ns(timeouts.idle_ms));
    options
}

/// Send `request` as `spin_sdk::http::send` does, within `timeouts`: resolves at the response head,
/// or with the runtime's error (`ConnectionTimeout`, `ConnectionReadTimeout`, ...). The response
/// body's pauses are bounded by the idle timeout, reported as a failed read.
pub fn send(request: OutgoingRequest, timeouts: &Timeouts) -> impl std::future::Future<Output = Result<IncomingResponse, ErrorCode>> {
    /// Fields drop in order: the wake-up registration before the future it watches.
    struct Sending {
        waiting: Option<CancelOnDropToken>,
        response: Result<FutureIncomingResponse, ErrorCode>,
    }
    let mut sending = Sending { waiting: None, response: outgoing_handler::handle(request, Some(request_options(timeouts))) };
    futures::future::poll_fn(move |cx| {
        let response = match &sending.response {
            Ok(response) => response,
            Err(code) => return Poll::Ready(Err(code.clone())),
        };
        match response.get() {
            Some(Ok(result)) => Poll::Ready(result),
            Some(Err(())) => Poll::Ready(Err(ErrorCode::InternalError(Some("the response was already taken".into())))),
            None => {
                let token = spin_executor::push_waker_and_get_token(response.subscribe(), cx.waker().clone());
                drop(sending.waiting.replace(CancelOnDropToken::from(token)));
                Poll::Pending
            }
        }
    })
}
