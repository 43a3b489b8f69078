//! Outbound HTTP: a core `BackendRequest` as a wasi-http request, sent with its timeouts as
//! request options, and the runtime's errors reported as the core's transport errors.

use std::{future::Future, task::Poll};
use spin_executor::CancelOnDropToken;
use spin_sdk::http::{IncomingResponse, Method, OutgoingRequest, Scheme};
use spin_sdk::wit::wasi::http0_2_0::{outgoing_handler, types::{ErrorCode, FutureIncomingResponse, RequestOptions}};
use tempo_s3_shard_core::{backend::BackendRequest, flow::{TransportError, TransportErrorKind}};

/// The wasi-http request for `request` (its body is written separately).
pub fn request(request: &BackendRequest) -> Result<OutgoingRequest, TransportError> {
    let outgoing = OutgoingRequest::new(super::fields(&request.headers));
    let method = match request.method.as_str() {
        "GET" => Method::Get, "PUT" => Method::Put, "POST" => Method::Post, "DELETE" => Method::Delete, "HEAD" => Method::Head,
        other => Method::Other(other.to_string()),
    };
    let scheme = if request.scheme == "https" { Scheme::Https } else { Scheme::Http };
    let bad = |_| TransportError::new(TransportErrorKind::Other, "the runtime refused the request's method, scheme, authority or path");
    let path = outgoing.set_path_with_query(Some(&request.path_and_query));
    outgoing.set_method(&method).and(outgoing.set_scheme(Some(&scheme))).and(outgoing.set_authority(Some(&request.authority))).and(path).map_err(bad)?;
    Ok(outgoing)
}

/// Send `outgoing` with the timeouts of `request`; resolves at the response head. Dropping it
/// before then cancels the request.
pub fn send(outgoing: OutgoingRequest, request: &BackendRequest) -> impl Future<Output = Result<IncomingResponse, TransportError>> {
    /// The request in flight. Its pollable (held by the executor through `waiting`) is a child of
    /// the response future, so it must go first (fields drop in order): a resource dropped before
    /// its children traps. The closure takes the whole struct, never its fields apart.
    struct InFlight {
        waiting: Option<CancelOnDropToken>,
        response: Option<Result<FutureIncomingResponse, ErrorCode>>,
    }
    let mut state = InFlight { waiting: None, response: Some(outgoing_handler::handle(outgoing, options(request))) };
    futures::future::poll_fn(move |cx| {
        let state = &mut state;
        let response = match state.response.as_ref() {
            None => return Poll::Ready(Err(TransportError::new(TransportErrorKind::Other, "polled after completion"))),
            Some(Err(code)) => return Poll::Ready(Err(transport_error(code))),
            Some(Ok(response)) => response,
        };
        match response.get() {
            Some(result) => {
                state.waiting.take();
                state.response.take();
                Poll::Ready(match result {
                    Ok(Ok(response)) => Ok(response),
                    Ok(Err(code)) => Err(transport_error(&code)),
                    Err(()) => Err(TransportError::new(TransportErrorKind::Other, "response taken twice")),
                })
            }
            None => {
                state.waiting = Some(crate::body::wake(response.subscribe(), cx));
                Poll::Pending
            }
        }
    })
}

/// The request options for `request`'s timeouts (connect, first byte, between body bytes).
fn options(request: &BackendRequest) -> Option<RequestOptions> {
    let (options, t, ns) = (RequestOptions::new(), request.timeouts, |ms: u64| Some(ms.saturating_mul(1_000_000)));
    // A runtime that does not support one of them still gets the others.
    let _ = (options.set_connect_timeout(ns(t.connect_ms)), options.set_first_byte_timeout(ns(t.first_byte_ms)), options.set_between_bytes_timeout(ns(t.idle_ms)));
    Some(options)
}

fn transport_error(code: &ErrorCode) -> TransportError {
    TransportError::from_wasi(&format!("{code:?}"))
}

/// A body stream (the client's or a backend's) broke off, in the runtime's words when it has some.
pub fn body_broke(err: Option<&wasi::io::error::Error>) -> TransportError {
    TransportError::broke_off(err.map(|e| e.to_debug_string()))
}
