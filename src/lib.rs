//! The Spin HTTP component: a thin adapter that moves bytes between Spin's HTTP and variables APIs and
//! the sans-IO core (`tempo-s3-shard-core`), which makes every decision.
#![cfg(target_arch = "wasm32")]

mod body;

use futures::future::{self, Either};
use futures::{FutureExt, SinkExt, StreamExt};
use spin_sdk::http::{
    self, Fields, IncomingRequest, IncomingResponse, Method, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};
use spin_sdk::http_component;
use spin_sdk::key_value::Store;
use tempo_s3_shard_core::backend::{self, BackendRequest};
use tempo_s3_shard_core::config::Config;
use tempo_s3_shard_core::proxy::{self, Body, BodyFilter, Forward, MissingBucket, Plan, Proxy, Reply, Target};
use tempo_s3_shard_core::route::RequestParts;
use tempo_s3_shard_core::copy::StreamedCopy;
use tempo_s3_shard_core::admin::{self, AccessLog};
use tempo_s3_shard_core::{delete, listing::Merger, uploads::UploadsMerger, xml, ErrorCode, S3Error};

/// What the component answers with: a reply it built, or a backend response it streams through.
enum Answer {
    Reply(Reply),
    Stream { status: u16, headers: Vec<(String, String)>, response: IncomingResponse },
}

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let started = std::time::Instant::now();
    let now = unix_now();
    let request_id = request_id();
    let parts = request_parts(&req);
    let head = parts.method == "HEAD";
    let mut log = AccessLog { request_id: request_id.clone(), time: now, method: parts.method.clone(), ..Default::default() };
    let proxy = Config::from_lookup(|name| spin_sdk::variables::get(name).ok()).map(Proxy::new);
    let mut ring_cache = None;
    let answer = match &proxy {
        Err(e) => {
            let err = S3Error::from(e.clone());
            log.operation = "Invalid".into();
            log.error = Some(err.message.clone());
            if parts.raw_path == format!("{}health", admin::PREFIX) {
                Answer::Reply(admin::config_error_health(&err))
            } else {
                Answer::Reply(Reply::error(&err, &request_id))
            }
        }
        Ok(proxy) => {
            let target = proxy.target(&parts);
            if target.uses_ring() {
                ring_cache = load_ring_tables(proxy);
            }
            (log.operation, log.key, log.bucket) = proxy.describe(&target);
            match serve(proxy, &parts, target, req, now).await {
                Ok(answer) => answer,
                Err(err) => {
                    log.error = Some(format!("{}: {}", err.code.as_str(), err.message));
                    Answer::Reply(Reply::error(&err, &request_id))
                }
            }
        }
    };
    (log.status, log.bytes) = respond(out, answer, &request_id, head).await;
    log.duration_us = started.elapsed().as_micros() as u64;
    if let (Ok(proxy), Some(store)) = (&proxy, &ring_cache) {
        save_ring_tables(proxy, store);
    }
    println!("{}", log.to_json());
}

/// Adopt the rings' tables from Spin's `default` key-value store, for rings large enough to be worth
/// it; a ring the store has no (good) table for is hashed now, to be stored after the answer. Without
/// a store (none declared, or it fails), rings hash as they go.
fn load_ring_tables(proxy: &Proxy) -> Option<Store> {
    let mut rings = proxy.rings().filter_map(|ring| Some((ring, ring.cache_key()?))).peekable();
    rings.peek()?;
    let store = Store::open_default().ok()?;
    for (ring, key) in rings {
        let cached = store.get(&key).ok().flatten();
        if !cached.is_some_and(|bytes| ring.load_table(bytes)) {
            ring.build_table();
        }
    }
    Some(store)
}

/// Store the tables this request had to hash (after the client has its answer).
fn save_ring_tables(proxy: &Proxy, store: &Store) {
    for ring in proxy.rings() {
        let Some(bytes) = ring.table_to_cache() else { continue };
        let Some(key) = ring.cache_key() else { continue };
        if let Err(err) = store.set(&key, &bytes) {
            eprintln!("tempo-s3-shard: could not store the ring table in the key-value store: {err:?}");
        }
    }
}

async fn serve(proxy: &Proxy, parts: &RequestParts, target: Target, req: IncomingRequest, now: u64) -> Result<Answer, S3Error> {
    let payload = proxy.authenticate(parts, now)?;
    proxy.check_customer_key_transport(parts, matches!(req.scheme(), Some(Scheme::Https)))?;
    match proxy.plan_target(parts, target, payload, now)? {
        Plan::Reply(reply) => Ok(Answer::Reply(reply)),
        Plan::Forward(fwd) => forward(proxy, fwd, req, now).await,
        Plan::List(merger) => list(proxy, *merger, now).await.map(Answer::Reply),
        Plan::ListUploads(merger) => list_uploads(proxy, *merger, now).await.map(Answer::Reply),
        Plan::DeleteObjects(body) => delete_objects(proxy, parts, body, req, now).await.map(Answer::Reply),
        Plan::StreamedCopy(copy) => streamed_copy(proxy, &copy, now).await.map(Answer::Reply),
        Plan::Health => Ok(Answer::Reply(health(proxy, now).await)),
    }
}

/// The operator health check: every backend bucket asked at once.
async fn health(proxy: &Proxy, now: u64) -> Reply {
    let calls = proxy.health_requests(now).into_iter().map(|request| async move {
        match send(&request, Outbound::Bytes(Vec::new())).await {
            Ok((response, _)) => Ok(response.status()),
            Err(err) => Err(err.message),
        }
    });
    let answers = future::join_all(calls).await;
    proxy.health(&answers)
}

/// A copy between shards: the source's body streams from its shard into a write on the other.
async fn streamed_copy(proxy: &Proxy, copy: &StreamedCopy, now: u64) -> Result<Reply, S3Error> {
    let (source, _) = send(&copy.get, Outbound::Bytes(Vec::new())).await?;
    let status = source.status();
    if !(200..300).contains(&status) {
        let body = read_bounded(&source, proxy::MAX_ERROR_BODY).await;
        return Err(proxy::copy_source_error(status, &body));
    }
    let source_headers = header_list(&source.headers());
    let tags = if copy.needs_source_tags(&source_headers)? {
        let (response, _) = send(&copy.tagging_request(proxy, now), Outbound::Bytes(Vec::new())).await?;
        let body = read_bounded(&response, proxy::MAX_ERROR_BODY).await;
        if !proxy::is_success(response.status()) {
            return Err(proxy::backend_error(response.status(), &body));
        }
        Some(xml::tagging_header(&xml::parse_tagging(&body)?))
    } else {
        None
    };
    let (put, _) = copy.put_request(proxy, &source_headers, tags.as_deref(), now)?;
    let stream = Box::pin(body::incoming(source.consume().ok()));
    let (response, _) = send(&put, Outbound::Stream(stream, BodyFilter::Passthrough)).await?;
    drop(source);
    let status = response.status();
    let body = read_bounded(&response, proxy::MAX_ERROR_BODY).await;
    if !proxy::is_success(status) {
        let err = proxy::backend_error(status, &body);
        if err.code == ErrorCode::NoSuchBucket {
            create_bucket(proxy, copy.dst_shard, now).await?;
            return Err(proxy::retry_after_bucket_created());
        }
        return Err(err);
    }
    Ok(Reply::xml(200, copy.result_xml(&header_list(&response.headers()), now)))
}

/// DeleteObjects: each shard deletes its keys, all shards at once; any shard failing fails the batch.
async fn delete_objects(
    proxy: &Proxy,
    parts: &RequestParts,
    body: Body,
    req: IncomingRequest,
    now: u64,
) -> Result<Reply, S3Error> {
    let bytes = match body {
        Body::Stream { length, filter } => read_all(req, filter, length).await?,
        Body::Empty => Vec::new(),
    };
    let batch = delete::plan(&parts.headers, &bytes, proxy.all_buckets.len(), |k| proxy.owners(k))?;
    let calls = batch.shards.iter().map(|part| async move {
        let request = proxy.delete_request(part, now);
        let (response, _) = send(&request, Outbound::Bytes(part.body.clone())).await?;
        let status = response.status();
        let body = read_bounded(&response, proxy::MAX_LIST_BODY).await;
        if proxy::is_success(status) {
            return Ok(body);
        }
        let err = proxy::backend_error(status, &body);
        if err.code == ErrorCode::NoSuchBucket {
            return part.all_deleted();
        }
        Err(err)
    });
    let results: Vec<Vec<u8>> = future::join_all(calls).await.into_iter().collect::<Result<_, S3Error>>()?;
    Ok(Reply::xml(200, batch.merge(&results)?))
}

/// One call to the owning shard, with the request body streamed (or replayed once if the backend
/// bucket had to be created first).
async fn forward(proxy: &Proxy, fwd: Forward, req: IncomingRequest, now: u64) -> Result<Answer, S3Error> {
    let Forward { op, shard, request, body, mut fallback, also } = fwd;
    let mut body = match body {
        Body::Empty => Outbound::Bytes(Vec::new()),
        Body::Stream { length, filter } if length <= proxy::RETRY_BUFFER_LIMIT as u64 => {
            let bytes = read_all(req, filter, length).await?;
            proxy::validate_body(&op, &bytes)?;
            Outbound::Bytes(bytes)
        }
        Body::Stream { filter, .. } => {
            Outbound::Stream(Box::pin(body::incoming(req.consume().ok())), filter)
        }
    };
    let mut created = false;
    let mut target = request;
    loop {
        let (response, rest) = send(&target, body).await?;
        let status = response.status();
        if status == 404 {
            // Resharding: the object may not have moved to its new owner yet.
            if let Some(previous) = fallback.take() {
                drop(response);
                target = previous;
                body = Outbound::Bytes(rest.unwrap_or_default());
                continue;
            }
        }
        if proxy::is_success(status) {
            if let Some(also) = &also {
                delete_also(also).await?;
            }
            let headers = backend::forward_response_headers(&header_list(&response.headers()));
            return Ok(Answer::Stream { status, headers, response });
        }
        let err = proxy::backend_error(status, &read_bounded(&response, proxy::MAX_ERROR_BODY).await);
        if err.code != ErrorCode::NoSuchBucket || created {
            return Err(err);
        }
        match proxy::on_missing_bucket(&op) {
            MissingBucket::NoSuchKey => {
                return Err(S3Error::new(ErrorCode::NoSuchKey, "The specified key does not exist."))
            }
            MissingBucket::Deleted => {
                if let Some(also) = &also {
                    delete_also(also).await?;
                }
                return Ok(Answer::Reply(Reply::empty(204)));
            }
            MissingBucket::CreateAndRetry => {
                create_bucket(proxy, shard, now).await?;
                created = true;
                match rest {
                    Some(bytes) => body = Outbound::Bytes(bytes),
                    None => return Err(proxy::retry_after_bucket_created()),
                }
            }
        }
    }
}

/// While resharding, delete the previous owner's copy too; a missing bucket or key there is fine.
async fn delete_also(request: &BackendRequest) -> Result<(), S3Error> {
    let (response, _) = send(request, Outbound::Bytes(Vec::new())).await?;
    let status = response.status();
    if proxy::is_success(status) || status == 404 {
        return Ok(());
    }
    Err(proxy::backend_error(status, &read_bounded(&response, proxy::MAX_ERROR_BODY).await))
}

/// Body bytes arriving from the client or from a backend.
type ByteStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<Vec<u8>, ()>>>>;

/// A request body on its way to a backend.
enum Outbound {
    /// Held in memory (small bodies), so it can be sent again.
    Bytes(Vec<u8>),
    /// Streamed (from the client, or another backend) through a filter that decodes and checks it.
    Stream(ByteStream, BodyFilter),
}

/// Send a request and its body; returns the response and, for an in-memory body, the body again.
async fn send(
    request: &BackendRequest,
    body: Outbound,
) -> Result<(IncomingResponse, Option<Vec<u8>>), S3Error> {
    let outgoing = outgoing_request(request)?;
    if matches!(&body, Outbound::Bytes(bytes) if bytes.is_empty()) {
        // No body stream at all: the runtime sends an empty body without waiting for one to finish.
        let response = http::send::<_, IncomingResponse>(outgoing).await.map_err(send_error)?;
        return Ok((response, Some(Vec::new())));
    }
    let mut sink = outgoing.take_body();
    let sending = Box::pin(http::send::<_, IncomingResponse>(outgoing));
    match body {
        Outbound::Bytes(bytes) => {
            let pump = async {
                if !bytes.is_empty() {
                    sink.send(bytes.clone()).await.map_err(|e| body_error(&e))?;
                }
                drop(sink);
                Ok::<_, S3Error>(())
            };
            let (response, pumped) = futures::join!(sending, pump);
            match response {
                // A backend that refused the request may stop reading the body: its answer is what
                // the client needs, not the broken write.
                Ok(response) if !proxy::is_success(response.status()) => Ok((response, Some(bytes))),
                Ok(response) => pumped.map(|()| (response, Some(bytes))),
                Err(err) => {
                    pumped?;
                    Err(send_error(err))
                }
            }
        }
        Outbound::Stream(stream, mut filter) => {
            let pump = Box::pin(async move {
                let mut stream = stream.fuse();
                let mut decoded = Vec::new();
                while let Some(chunk) = next_gathered(&mut stream).await {
                    let chunk = chunk.map_err(|_| client_body_error())?;
                    let data = if filter.is_passthrough() {
                        chunk
                    } else {
                        // Sized for the chunk up front, so decoding into it never reallocates
                        // (and copies) as it grows.
                        decoded.reserve(chunk.len() + 1);
                        filter.push(&chunk, &mut decoded)?;
                        std::mem::take(&mut decoded)
                    };
                    if !data.is_empty() {
                        sink.send(data).await.map_err(|e| body_error(&e))?;
                    }
                }
                filter.finish(&mut decoded)?;
                if !decoded.is_empty() {
                    sink.send(decoded).await.map_err(|e| body_error(&e))?;
                }
                // Dropping the sink finishes the body; had fewer bytes than Content-Length been
                // written (any error above), the runtime aborts the request instead.
                drop(sink);
                Ok::<_, S3Error>(())
            });
            match future::select(sending, pump).await {
                Either::Left((response, pump)) => {
                    let response = response.map_err(send_error)?;
                    if proxy::is_success(response.status()) {
                        pump.await?;
                    }
                    Ok((response, None))
                }
                Either::Right((pumped, sending)) => {
                    pumped?;
                    Ok((sending.await.map_err(send_error)?, None))
                }
            }
        }
    }
}

/// Read a whole (small) request body through its filter, which decodes and checks it.
async fn read_all(req: IncomingRequest, mut filter: BodyFilter, length: u64) -> Result<Vec<u8>, S3Error> {
    let mut stream = body::incoming(req.consume().ok());
    // The whole body at once, without regrowing (and copying) it; a declared length is at most
    // trusted up to the retry buffer's size.
    let mut body = Vec::with_capacity(length.min(proxy::RETRY_BUFFER_LIMIT as u64) as usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| client_body_error())?;
        filter.push(&chunk, &mut body)?;
        if body.len() as u64 > length {
            return Err(S3Error::new(ErrorCode::IncompleteBody, "the body is longer than its declared length"));
        }
    }
    filter.finish(&mut body)?;
    if body.len() as u64 != length {
        return Err(client_body_error());
    }
    Ok(body)
}

async fn create_bucket(proxy: &Proxy, shard: usize, now: u64) -> Result<(), S3Error> {
    let (request, body) = proxy.create_bucket_request(shard, now);
    let (response, _) = send(&request, Outbound::Bytes(body)).await?;
    let status = response.status();
    if proxy::is_success(status) {
        return Ok(());
    }
    let err = proxy::backend_error(status, &read_bounded(&response, proxy::MAX_ERROR_BODY).await);
    match err.code.as_str() {
        "BucketAlreadyOwnedByYou" | "BucketAlreadyExists" => Ok(()),
        _ => Err(err),
    }
}

/// ListObjects over every shard: each round asks the backends the merge still needs, all at once.
async fn list(proxy: &Proxy, mut merger: Merger, now: u64) -> Result<Reply, S3Error> {
    loop {
        let wanted = merger.next_requests();
        if wanted.is_empty() {
            return Ok(proxy.list_reply(merger));
        }
        for (shard, status, body) in fetch_pages(proxy, wanted, now).await? {
            merger.feed(shard, proxy.list_page(status, &body)?)?;
        }
    }
}

/// ListMultipartUploads over every shard, driven like [`list`].
async fn list_uploads(proxy: &Proxy, mut merger: UploadsMerger, now: u64) -> Result<Reply, S3Error> {
    loop {
        let wanted = merger.next_requests();
        if wanted.is_empty() {
            return Ok(proxy.list_uploads_reply(merger));
        }
        for (shard, status, body) in fetch_pages(proxy, wanted, now).await? {
            merger.feed(shard, proxy.list_uploads_page(status, &body)?)?;
        }
    }
}

/// One listing call per wanted shard, all in flight at once; any unreachable backend fails the
/// whole listing (a merge never answers with part of the shards).
async fn fetch_pages(
    proxy: &Proxy,
    wanted: Vec<(usize, Vec<(String, String)>)>,
    now: u64,
) -> Result<Vec<(usize, u16, Vec<u8>)>, S3Error> {
    let calls = wanted.into_iter().map(|(shard, query)| {
        let request = proxy.list_request(shard, &query, now);
        async move {
            let (response, _) = send(&request, Outbound::Bytes(Vec::new())).await?;
            let status = response.status();
            Ok::<_, S3Error>((shard, status, read_bounded(&response, proxy::MAX_LIST_BODY).await))
        }
    });
    future::join_all(calls).await.into_iter().collect()
}

/// How much already-arrived body is gathered into one write.
const GATHER_BYTES: usize = 256 * 1024;

/// The next piece of a body with whatever further pieces have already arrived appended, up to
/// [`GATHER_BYTES`]: clients and backends often hand bodies over a few KiB at a time, and fewer,
/// larger writes cost the runtime far less. Never waits for more than the first piece.
async fn next_gathered<E>(
    stream: &mut (impl futures::stream::FusedStream<Item = Result<Vec<u8>, E>> + Unpin),
) -> Option<Result<Vec<u8>, E>> {
    let mut data = match stream.next().await? {
        Ok(data) => data,
        Err(err) => return Some(Err(err)),
    };
    while data.len() < GATHER_BYTES {
        match stream.next().now_or_never() {
            Some(Some(Ok(more))) => data.extend_from_slice(&more),
            Some(Some(Err(err))) => return Some(Err(err)),
            Some(None) | None => break,
        }
    }
    Some(Ok(data))
}

/// Write an answer to the client, streaming a backend body through.
/// Returns the status sent and how many body bytes were written (None when the body broke off).
async fn respond(out: ResponseOutparam, answer: Answer, request_id: &str, head: bool) -> (u16, Option<u64>) {
    let (status, mut headers, body) = match answer {
        Answer::Reply(reply) => (reply.status, reply.headers, Either::Left(reply.body)),
        Answer::Stream { status, headers, response } => (status, headers, Either::Right(response)),
    };
    headers.retain(|(n, _)| n != "x-amz-request-id");
    headers.push(("x-amz-request-id".into(), request_id.into()));
    if let Either::Left(body) = &body {
        if !head {
            headers.retain(|(n, _)| n != "content-length");
            headers.push(("content-length".into(), body.len().to_string()));
        }
    }
    let fields = fields(&headers);
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(status);
    if head || status == 304 || status == 204 {
        out.set(response);
        return (status, Some(0));
    }
    let mut sink = response.take_body();
    out.set(response);
    let mut sent = 0u64;
    match body {
        Either::Left(bytes) => {
            sent = bytes.len() as u64;
            if !bytes.is_empty() && sink.send(bytes).await.is_err() {
                return (status, None);
            }
        }
        Either::Right(backend) => {
            let mut stream = body::incoming(backend.consume().ok());
            // If the backend or the client goes away mid-body, stop: the runtime sees the body is
            // shorter than its Content-Length and aborts the response rather than truncating it.
            while let Some(data) = next_gathered(&mut stream).await {
                let Ok(data) = data else { return (status, None) };
                sent += data.len() as u64;
                if sink.send(data).await.is_err() {
                    return (status, None);
                }
            }
        }
    }
    (status, Some(sent))
}

fn outgoing_request(request: &BackendRequest) -> Result<OutgoingRequest, S3Error> {
    let outgoing = OutgoingRequest::new(fields(&request.headers));
    let method = match request.method.as_str() {
        "GET" => Method::Get,
        "PUT" => Method::Put,
        "POST" => Method::Post,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        other => Method::Other(other.to_string()),
    };
    let scheme = if request.scheme == "https" { Scheme::Https } else { Scheme::Http };
    let bad = |_| S3Error::internal("could not build the backend request");
    outgoing.set_method(&method).map_err(bad)?;
    outgoing.set_scheme(Some(&scheme)).map_err(bad)?;
    outgoing.set_authority(Some(&request.authority)).map_err(bad)?;
    outgoing.set_path_with_query(Some(&request.path_and_query)).map_err(bad)?;
    Ok(outgoing)
}

fn fields(headers: &[(String, String)]) -> Fields {
    let list: Vec<(String, Vec<u8>)> =
        headers.iter().map(|(n, v)| (n.clone(), v.clone().into_bytes())).collect();
    Fields::from_list(&list).unwrap_or_else(|_| Fields::new())
}

fn header_list(fields: &Fields) -> Vec<(String, String)> {
    fields
        .entries()
        .into_iter()
        .filter_map(|(n, v)| String::from_utf8(v).ok().map(|v| (n, v)))
        .collect()
}

/// The request as the core sees it; the Host header comes from the request's authority.
fn request_parts(req: &IncomingRequest) -> RequestParts {
    let mut headers = header_list(&req.headers());
    if let Some(authority) = req.authority() {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case("host"));
        headers.push(("host".into(), authority));
    }
    let method = req.method().to_string();
    let target = req.path_with_query().unwrap_or_else(|| "/".into());
    RequestParts::new(&method, &target, headers)
}

/// Read at most `limit` bytes of a backend response body.
async fn read_bounded(response: &IncomingResponse, limit: usize) -> Vec<u8> {
    let mut stream = body::incoming(response.consume().ok());
    let mut body = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk);
        if body.len() > limit {
            body.truncate(limit);
            break;
        }
    }
    body
}

fn send_error(err: http::SendError) -> S3Error {
    proxy::backend_unreachable(&match err {
        http::SendError::Http(code) => format!("{code:?}"),
        _ => "transport error".to_string(),
    })
}

fn body_error(err: &impl std::fmt::Debug) -> S3Error {
    proxy::backend_unreachable(&format!("writing the body failed: {err:?}"))
}

fn client_body_error() -> S3Error {
    S3Error::new(ErrorCode::IncompleteBody, "the request body ended before Content-Length bytes arrived")
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A request id unique enough for correlating logs: the clock's nanoseconds.
fn request_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:016X}", nanos as u64)
}
