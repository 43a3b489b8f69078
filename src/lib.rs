//! The Spin HTTP component: a thin adapter that executes the steps the sans-IO core asks for
//! (`tempo_s3_shard_core::flow`) with Spin's HTTP, variables and key-value APIs. It decides nothing.
#![cfg(target_arch = "wasm32")]
// SAFETY: `unsafe` is spin-sdk's `#[http_component]` expansion (wit-bindgen ABI glue), which an
// item-level allow does not reach, and the allocator (`arena.rs`, a `GlobalAlloc`), with a SAFETY
// note per block; the adapter writes none elsewhere.
#![allow(unsafe_code)]

mod arena;
mod body;
mod outbound;
use std::{cell::{Cell, RefCell}, rc::Rc};
use futures::{future::{self, Either, LocalBoxFuture}, FutureExt, Sink, SinkExt, StreamExt};
use wasi::io::streams::StreamError;
use spin_sdk::{http::{Fields, IncomingRequest, IncomingResponse, OutgoingResponse, ResponseOutparam}, http_component, key_value::Store};
use tempo_s3_shard_core::{backend::BackendRequest, request_body::BodyFilter, route::RequestParts};
use tempo_s3_shard_core::flow::{self, Answer, Head, Outbound, Request, SendError, Sent, Transport, TransportError};

/// Body bytes arriving from the client or from a backend.
type ByteStream = std::pin::Pin<Box<dyn futures::stream::FusedStream<Item = Result<Vec<u8>, TransportError>>>>;

/// Small allocations from a bump arena: an instance lives for one request.
#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena::new();

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let started = std::time::Instant::now();
    let (now_unix, request_id) = clock();
    let request = Request { parts: request_parts(&req), https: matches!(req.scheme(), Some(spin_sdk::http::Scheme::Https)), now_unix, request_id };
    let client_idle = Rc::new(Cell::new(0));
    let spin = Spin { client: RefCell::new(Some(Client::Unread(req.consume().ok()))), client_idle, store: RefCell::new(None) };
    let (answer, finish) = flow::handle(&spin, request, |name| spin_sdk::variables::get(name).ok()).await;
    let (status, sent) = respond(out, answer, spin.client_idle.get()).await;
    print_line(finish.done(&spin, status, sent, started.elapsed().as_micros() as u64));
}

/// Write one line of the access log to stdout: straight to the WASI stream (one call per 4 KiB,
/// the most one call takes), which costs the request a third less than `println!`'s way there.
fn print_line(line: String) {
    let (mut line, out) = (line.into_bytes(), wasi::cli::stdout::get_stdout());
    line.push(b'\n');
    for piece in line.chunks(4096) {
        if out.blocking_write_and_flush(piece).is_err() { return }
    }
}

/// The transport: the client's body, outbound HTTP and the key-value store `default`.
struct Spin {
    /// `None` once a backend request took it.
    client: RefCell<Option<Client>>,
    /// The longest pause of the client, sending or reading, in ms (0 until the core sets it).
    client_idle: Rc<Cell<u64>>,
    /// Opened on first use; `Some(None)` when there is none.
    store: RefCell<Option<Option<Store>>>,
}

/// The client's body: not yet opened (a body that goes through unchanged is then spliced), or
/// being read.
enum Client { Unread(Option<spin_sdk::wit::wasi::http0_2_0::types::IncomingBody>), Reading(ByteStream) }

impl Client {
    /// The body as a stream of pieces (opened now if it was not), pausing at most `idle` ms.
    fn into_stream(self, idle: &Rc<Cell<u64>>) -> ByteStream {
        match self { Client::Unread(body) => Box::pin(body::incoming(body, idle.clone())), Client::Reading(stream) => stream }
    }
}

/// Whose failure an error of a body's stream or sink is: the client's or a backend's.
type Blame = fn(TransportError) -> SendError;
/// A request body still being written to a backend.
type Upload = LocalBoxFuture<'static, Result<(), SendError>>;

impl Transport for Spin {
    type Response = IncomingResponse;
    type Upload = Upload;

    async fn send(&self, request: &BackendRequest, body: Outbound<IncomingResponse>) -> Result<Sent<IncomingResponse, Upload>, SendError> {
        let outgoing = outbound::request(request).map_err(SendError::Transport)?;
        let backend = (SendError::Transport as Blame, 0);
        let spliced = |from, ends| -> Upload { let to = outgoing.body().ok(); Box::pin(body::splice(from, to, ends).map(|moved| moved.map(drop))) };
        let mut pump = match body {
            // No body stream at all: the runtime sends an empty body without waiting for one.
            Outbound::Empty => return Ok(sent(outbound::send(outgoing, request).await.map_err(SendError::Transport)?, None)),
            Outbound::Bytes(bytes) => pumped(Box::pin(futures::stream::once(async move { Ok(bytes) })), &outgoing, BodyFilter::Passthrough, SendError::Transport),
            // Bytes that go through unchanged are not read into the component.
            Outbound::Backend(response) => spliced(response.consume().ok(), body::Ends { source: backend, peer: backend }),
            Outbound::Client(filter) => match (self.client.borrow_mut().take(), filter) {
                (Some(Client::Unread(from)), BodyFilter::Passthrough) => spliced(from, body::Ends { source: (SendError::Client, self.client_idle.get()), peer: backend }),
                (Some(client), filter) => pumped(client.into_stream(&self.client_idle), &outgoing, filter, SendError::Client),
                (None, filter) => pumped(Box::pin(futures::stream::once(async { Err(outbound::body_broke(None)) })), &outgoing, filter, SendError::Client),
            },
        };
        // Write what is at hand before the request leaves: a small body then goes out with its head.
        if let Some(pumped) = (&mut pump).now_or_never() { pumped?; return Ok(sent(outbound::send(outgoing, request).await.map_err(SendError::Transport)?, None)) }
        match future::select(Box::pin(outbound::send(outgoing, request)), pump).await {
            Either::Left((response, pump)) => Ok(sent(response.map_err(SendError::Transport)?, Some(pump))),
            // The backend stopped reading: its answer (an error, as it has no whole body) is what
            // the client needs, and the upload counts as failed.
            Either::Right((Err(SendError::Transport(broke)), sending)) => {
                let response = sending.await.map_err(|_| SendError::Transport(broke.clone()))?;
                Ok(sent(response, Some(Box::pin(future::ready(Err(SendError::Transport(broke)))))))
            }
            Either::Right((pumped, sending)) => { pumped?; Ok(sent(sending.await.map_err(SendError::Transport)?, None)) }
        }
    }

    async fn finish_upload(&self, upload: Upload) -> Result<(), SendError> { upload.await }

    async fn read_body(&self, response: IncomingResponse, limit: usize) -> Result<Vec<u8>, TransportError> {
        let (mut stream, mut body) = (body::incoming(response.consume().ok(), Rc::default()), Vec::new());
        while let Some(chunk) = if body.len() < limit { stream.next().await } else { None } {
            body.extend_from_slice(&chunk?);
        }
        body.truncate(limit);
        Ok(body)
    }

    async fn client_chunk(&self) -> Option<Result<Vec<u8>, TransportError>> {
        let mut client = self.client.borrow_mut().take()?.into_stream(&self.client_idle);
        let next = client.next().await;
        *self.client.borrow_mut() = Some(Client::Reading(client));
        next
    }

    fn limit_client_idle(&self, ms: u64) { self.client_idle.set(ms) }

    fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, String> { self.with_store(|store| store.get(key).map_err(|e| format!("{e:?}"))) }

    fn kv_set(&self, key: &str, value: &[u8]) -> Result<(), String> { self.with_store(|store| store.set(key, value).map_err(|e| format!("{e:?}"))) }
}

impl Spin {
    fn with_store<T>(&self, f: impl FnOnce(&Store) -> Result<T, String>) -> Result<T, String> {
        self.store.borrow_mut().get_or_insert_with(|| Store::open_default().ok()).as_ref().ok_or("no key-value store `default`".to_string()).and_then(f)
    }
}

/// `stream` written to `outgoing`'s body through `filter`; `source` is whose the stream is.
fn pumped(stream: ByteStream, outgoing: &spin_sdk::http::OutgoingRequest, filter: BodyFilter, source: Blame) -> Upload {
    Box::pin(pump(stream, outgoing.take_body(), filter, (source, SendError::Transport), 0).map(|written| written.map(drop)))
}

fn sent(response: IncomingResponse, upload: Option<Upload>) -> Sent<IncomingResponse, Upload> {
    Sent { head: Head { status: response.status(), headers: header_list(&response.headers()) }, response, upload }
}

/// Write a body through the core's filter; returns how many bytes it wrote. Dropping the sink before
/// the end (any error) makes the runtime abort the request or response rather than send a short body.
/// `(source, peer)` say whose body failed when the stream or the sink does (the client's or a
/// backend's); a write that waits longer than `idle_ms` for the peer to read fails.
async fn pump(mut stream: ByteStream, mut sink: impl Sink<Vec<u8>, Error = StreamError> + Unpin, mut filter: BodyFilter, (source, peer): (Blame, Blame), idle_ms: u64) -> Result<u64, SendError> {
    let (mut written, mut ended) = (0, false);
    while !ended {
        let data = match stream.next().await {
            Some(piece) => filter.pass(piece.map_err(source)?),
            None => { ended = true; filter.end() }
        };
        let data = data.map_err(SendError::Body)?;
        written += data.len() as u64;
        if !data.is_empty() { body::within(idle_ms, sink.send(data)).await.map_err(peer)? }
    }
    Ok(written)
}

/// Write the answer to the client. What is at hand of the body is written before the response is
/// handed to the runtime, so head and body (a held body whole) leave together. Returns the status
/// and the body bytes sent, or why it was cut (the backend's body broke off, the client went or
/// stopped reading for longer than `idle_ms`: the runtime then aborts the response).
async fn respond(out: ResponseOutparam, answer: Answer<IncomingResponse>, idle_ms: u64) -> (u16, Result<u64, SendError>) {
    let (status, headers, body): (u16, _, Option<Relayed>) = match answer {
        Answer::Reply(reply) if reply.body.is_empty() => (reply.status, reply.headers, None),
        Answer::Reply(reply) => (reply.status, reply.headers, Some(Relayed::Through(Box::pin(futures::stream::once(async move { Ok(reply.body) }))))),
        Answer::Stream { status, headers, response } => (status, headers, Some(Relayed::Spliced(response.consume().ok()))),
    };
    let response = OutgoingResponse::new(fields(&headers));
    let _ = response.set_status_code(status);
    let body = match body {
        // No body (HEAD, 204, 304, empty): none is opened, so no length is checked against it.
        None => { out.set(response); return (status, Ok(0)) }
        Some(Relayed::Spliced(from)) => {
            let (to, ends) = (response.body().ok(), body::Ends { source: (SendError::Transport, 0), peer: (SendError::Client, idle_ms) });
            out.set(response);
            return (status, body::splice(from, to, ends).await);
        }
        Some(Relayed::Through(body)) => body,
    };
    let mut writing = Box::pin(pump(body, response.take_body(), BodyFilter::Passthrough, (SendError::Transport, SendError::Client), idle_ms));
    let early = (&mut writing).now_or_never();
    out.set(response);
    let written = if let Some(written) = early { written } else { writing.await };
    (status, written)
}

/// A response body: a backend's (streamed: larger than the core reads whole), spliced to the client
/// inside the runtime, or the body the core holds, which the component writes.
enum Relayed { Spliced(Option<spin_sdk::wit::wasi::http0_2_0::types::IncomingBody>), Through(ByteStream) }

fn fields(headers: &[(String, String)]) -> Fields {
    let list: Vec<(String, Vec<u8>)> = headers.iter().map(|(n, v)| (n.clone(), v.clone().into_bytes())).collect();
    Fields::from_list(&list).unwrap_or_else(|_| Fields::new())
}

fn header_list(fields: &Fields) -> Vec<(String, String)> {
    fields.entries().into_iter().filter_map(|(n, v)| String::from_utf8(v).ok().map(|v| (n, v))).collect()
}

/// The request as the core sees it; the Host header comes from the request's authority.
fn request_parts(req: &IncomingRequest) -> RequestParts {
    let mut headers = header_list(&req.headers());
    if let Some(authority) = req.authority() {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case("host"));
        headers.push(("host".into(), authority));
    }
    let target = req.path_with_query().unwrap_or_else(|| "/".into());
    RequestParts::new(&req.method().to_string(), &target, headers)
}

/// The time in unix seconds, and a request id unique enough for correlating logs (its nanoseconds).
fn clock() -> (u64, String) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (now.as_secs(), format!("{:016X}", now.as_nanos() as u64))
}
