//! A scripted transport for the flows' tests: backend answers come from a closure, every call
//! is recorded, and a call can be made to fail or to never answer.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};

use crate::flow::{Head, Outbound, SendError, Sent, Transport, TransportError, TransportErrorKind};
use crate::backend::BackendRequest;

/// One backend call as the script saw it.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// The backend bucket (first path segment).
    pub bucket: String,
    /// The rest of the path (still encoded), without the query.
    pub key: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Call {
    /// Whether the call is `method` on `bucket`.
    pub fn is(&self, method: &str, bucket: &str) -> bool {
        self.method == method && self.bucket == bucket
    }
}

/// What a scripted backend does with a call.
pub enum Scripted {
    /// Answer with status, headers and body.
    Answer(u16, Vec<(String, String)>, Vec<u8>),
    /// Fail below HTTP, before the head.
    Fail(TransportErrorKind),
    /// Never answer.
    Hang,
}

/// A 200 with `body` (and its Content-Length).
pub fn ok(body: &[u8]) -> Scripted {
    Scripted::Answer(200, vec![("content-length".into(), body.len().to_string())], body.to_vec())
}

/// An S3 error answer.
pub fn s3_error(status: u16, code: &str) -> Scripted {
    let body = format!("<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>scripted</Message></Error>");
    Scripted::Answer(status, vec![("content-type".into(), "application/xml".into())], body.into_bytes())
}

/// The transport: backends scripted by `answer`, the client's body in pieces, a key-value store.
pub struct Script<F> {
    answer: F,
    pub calls: RefCell<Vec<Call>>,
    /// The client body pieces not read yet.
    pub client: RefCell<VecDeque<Vec<u8>>>,
    pub kv: RefCell<Option<HashMap<String, Vec<u8>>>>,
    /// Whether the client stops sending after its pieces (a stall past the limit), rather than ending.
    pub client_stalls: Cell<bool>,
    /// The limit the core set on pauses in the client's body.
    pub client_idle_ms: Cell<Option<u64>>,
    /// How many times the key-value store was read.
    pub kv_reads: Cell<usize>,
}

impl<F: Fn(&Call, usize) -> Scripted> Script<F> {
    /// Backends answer with `answer(call, n)`, `n` counting earlier calls of the same method and path.
    pub fn new(answer: F) -> Script<F> {
        Script { answer, calls: RefCell::new(vec![]), client: RefCell::new(VecDeque::new()), kv: RefCell::new(None), client_stalls: Cell::new(false), client_idle_ms: Cell::new(None), kv_reads: Cell::new(0) }
    }

    /// The client's request body, arriving in `pieces`.
    pub fn with_client_body(self, pieces: &[&[u8]]) -> Script<F> {
        *self.client.borrow_mut() = pieces.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// The client's request body: `pieces`, then nothing more until the idle limit passes.
    pub fn with_stalled_client_body(self, pieces: &[&[u8]]) -> Script<F> {
        self.client_stalls.set(true);
        self.with_client_body(pieces)
    }

    /// With a (empty) key-value store.
    pub fn with_store(self) -> Script<F> {
        *self.kv.borrow_mut() = Some(HashMap::new());
        self
    }

    /// The calls made, as (method, bucket) pairs.
    pub fn trace(&self) -> Vec<(String, String)> {
        self.calls.borrow().iter().map(|c| (c.method.clone(), c.bucket.clone())).collect()
    }

    fn record(&self, request: &BackendRequest, body: Vec<u8>) -> (Call, usize) {
        let (path, query) = request.path_and_query.split_once('?').unwrap_or((&request.path_and_query, ""));
        let path = path.trim_start_matches('/');
        let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
        let call = Call {
            method: request.method.clone(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            query: query.to_string(),
            headers: request.headers.clone(),
            body,
        };
        let mut calls = self.calls.borrow_mut();
        let earlier = calls.iter().filter(|c| c.method == call.method && c.bucket == call.bucket && c.key == call.key).count();
        calls.push(call.clone());
        (call, earlier)
    }

    async fn body_of(&self, body: Outbound<Vec<u8>>) -> Result<Vec<u8>, SendError> {
        Ok(match body {
            Outbound::Empty => Vec::new(),
            Outbound::Bytes(b) | Outbound::Backend(b) => b,
            Outbound::Client(mut filter) => {
                let mut out = Vec::new();
                while let Some(chunk) = self.client_chunk().await {
                    let chunk = chunk.map_err(SendError::Client)?;
                    filter.push(&chunk, &mut out).map_err(SendError::Body)?;
                }
                filter.finish(&mut out).map_err(SendError::Body)?;
                out
            }
        })
    }
}

impl<F: Fn(&Call, usize) -> Scripted> Transport for Script<F> {
    type Response = Vec<u8>;
    type Upload = ();

    async fn send(&self, request: &BackendRequest, body: Outbound<Vec<u8>>) -> Result<Sent<Vec<u8>, ()>, SendError> {
        let body = self.body_of(body).await?;
        let (call, earlier) = self.record(request, body);
        match (self.answer)(&call, earlier) {
            Scripted::Answer(status, headers, body) => Ok(Sent { head: Head { status, headers }, response: body, upload: Some(()) }),
            Scripted::Fail(kind) => Err(SendError::Transport(TransportError::new(kind, "scripted failure at 10.9.9.9:9000"))),
            Scripted::Hang => futures::future::pending().await,
        }
    }

    async fn finish_upload(&self, _upload: ()) -> Result<(), SendError> {
        Ok(())
    }

    async fn read_body(&self, mut response: Vec<u8>, limit: usize) -> Result<Vec<u8>, TransportError> {
        response.truncate(limit);
        Ok(response)
    }

    async fn client_chunk(&self) -> Option<Result<Vec<u8>, TransportError>> {
        let piece = self.client.borrow_mut().pop_front();
        match piece {
            Some(piece) => Some(Ok(piece)),
            None if self.client_stalls.replace(false) => Some(Err(TransportError::new(TransportErrorKind::Timeout, "scripted stall"))),
            None => None,
        }
    }

    fn limit_client_idle(&self, ms: u64) {
        self.client_idle_ms.set(Some(ms));
    }

    fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.kv_reads.set(self.kv_reads.get() + 1);
        match &*self.kv.borrow() {
            Some(store) => Ok(store.get(key).cloned()),
            None => Err("no store".into()),
        }
    }

    fn kv_set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        match &mut *self.kv.borrow_mut() {
            Some(store) => {
                store.insert(key.to_string(), value.to_vec());
                Ok(())
            }
            None => Err("no store".into()),
        }
    }
}
