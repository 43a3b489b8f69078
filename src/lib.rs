//! The Spin HTTP component: a thin adapter that moves bytes between Spin's HTTP and variables APIs and
//! the sans-IO core (`tempo-s3-shard-core`), which makes every decision.
#![cfg(target_arch = "wasm32")]

use futures::future::{self, Either};
use futures::{SinkExt, StreamExt};
use spin_sdk::http::{
    self, Fields, IncomingRequest, IncomingResponse, Method, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};
use spin_sdk::http_component;
use tempo_s3_shard_core::backend::BackendRequest;
use tempo_s3_shard_core::chunked::ChunkedDecoder;
use tempo_s3_shard_core::config::Config;
use tempo_s3_shard_core::proxy::{self, Body, Forward, MissingBucket, Plan, Proxy, Reply};
use tempo_s3_shard_core::route::RequestParts;
use tempo_s3_shard_core::sigv4;
use tempo_s3_shard_core::{listing::Merger, ErrorCode, S3Error};

/// What the component answers with: a reply it built, or a backend response it streams through.
enum Answer {
    Reply(Reply),
    Stream { status: u16, headers: Vec<(String, String)>, response: IncomingResponse },
}

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let now = unix_now();
    let request_id = request_id();
    let parts = request_parts(&req);
    let head = parts.method == "HEAD";
    let answer = match serve(&parts, req, now).await {
        Ok(answer) => answer,
        Err(err) => {
            if err.status() >= 500 {
                eprintln!("request {request_id}: {} {}: {err}", parts.method, parts.raw_path);
            }
            Answer::Reply(Reply::error(&err, &request_id))
        }
    };
    respond(out, answer, &request_id, head).await;
}

async fn serve(parts: &RequestParts, req: IncomingRequest, now: u64) -> Result<Answer, S3Error> {
    let cfg = Config::from_lookup(|name| spin_sdk::variables::get(name).ok()).map_err(|e| {
        eprintln!("configuration error: {e}");
        S3Error::from(e)
    })?;
    let proxy = Proxy::new(cfg);
    let content_sha = parts.header("x-amz-content-sha256");
    let payload = sigv4::payload_mode_unauthenticated(content_sha);
    match proxy.plan(parts, payload, now)? {
        Plan::Reply(reply) => Ok(Answer::Reply(reply)),
        Plan::Forward(fwd) => forward(&proxy, fwd, req, now).await,
        Plan::List(merger) => list(&proxy, *merger, now).await.map(Answer::Reply),
    }
}

/// One call to the owning shard, with the request body streamed (or replayed once if the backend
/// bucket had to be created first).
async fn forward(proxy: &Proxy, fwd: Forward, req: IncomingRequest, now: u64) -> Result<Answer, S3Error> {
    let Forward { op, shard, request, body } = fwd;
    let mut body = match body {
        Body::Empty => Outbound::Bytes(Vec::new()),
        Body::Stream { length } if length as usize <= proxy::RETRY_BUFFER_LIMIT => {
            Outbound::Bytes(read_all(req, None).await?)
        }
        Body::AwsChunked { decoder, length } if length as usize <= proxy::RETRY_BUFFER_LIMIT => {
            Outbound::Bytes(read_all(req, Some(decoder)).await?)
        }
        Body::Stream { .. } => Outbound::Stream(req, None),
        Body::AwsChunked { decoder, .. } => Outbound::Stream(req, Some(decoder)),
    };
    let mut created = false;
    loop {
        let (response, rest) = send(&request, body).await?;
        let status = response.status();
        if proxy::is_success(status) {
            let headers = proxy::reply_headers(&header_list(&response.headers()), "");
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
            MissingBucket::Deleted => return Ok(Answer::Reply(Reply::empty(204))),
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

/// A request body on its way to a backend.
enum Outbound {
    /// Held in memory (small bodies), so it can be sent again.
    Bytes(Vec<u8>),
    /// Streamed from the client, decoding aws-chunked framing when a decoder is given.
    Stream(IncomingRequest, Option<Box<ChunkedDecoder>>),
}

/// Send a request and its body; returns the response and, for an in-memory body, the body again.
async fn send(
    request: &BackendRequest,
    body: Outbound,
) -> Result<(IncomingResponse, Option<Vec<u8>>), S3Error> {
    let outgoing = outgoing_request(request)?;
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
            pumped?;
            Ok((response.map_err(send_error)?, Some(bytes)))
        }
        Outbound::Stream(req, decoder) => {
            let pump = Box::pin(async move {
                let mut stream = req.into_body_stream();
                let mut decoder = decoder;
                let mut decoded = Vec::new();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|_| client_body_error())?;
                    let data = match decoder.as_mut() {
                        Some(d) => {
                            d.push(&chunk, &mut decoded)?;
                            std::mem::take(&mut decoded)
                        }
                        None => chunk,
                    };
                    if !data.is_empty() {
                        sink.send(data).await.map_err(|e| body_error(&e))?;
                    }
                }
                if let Some(d) = decoder.as_mut() {
                    d.finish(&mut decoded)?;
                    if !decoded.is_empty() {
                        sink.send(decoded).await.map_err(|e| body_error(&e))?;
                    }
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

/// Read a whole (small) request body, decoding and verifying aws-chunked framing.
async fn read_all(req: IncomingRequest, decoder: Option<Box<ChunkedDecoder>>) -> Result<Vec<u8>, S3Error> {
    let mut stream = req.into_body_stream();
    let mut body = Vec::new();
    let mut decoder = decoder;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| client_body_error())?;
        match decoder.as_mut() {
            Some(d) => d.push(&chunk, &mut body)?,
            None => body.extend_from_slice(&chunk),
        }
        if body.len() > proxy::RETRY_BUFFER_LIMIT {
            return Err(S3Error::new(ErrorCode::IncompleteBody, "the body is longer than Content-Length"));
        }
    }
    if let Some(d) = decoder.as_mut() {
        d.finish(&mut body)?;
    }
    Ok(body)
}

async fn create_bucket(proxy: &Proxy, shard: usize, now: u64) -> Result<(), S3Error> {
    let request = proxy.create_bucket_request(shard, now);
    let (response, _) = send(&request, Outbound::Bytes(proxy.create_bucket_body())).await?;
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
        let calls = wanted.into_iter().map(|(shard, query)| {
            let request = proxy.list_request(shard, &query, now);
            async move {
                let (response, _) = send(&request, Outbound::Bytes(Vec::new())).await?;
                let status = response.status();
                let body = read_bounded(&response, proxy::MAX_LIST_BODY).await;
                Ok::<_, S3Error>((shard, proxy.list_page(status, &body)?))
            }
        });
        for result in future::join_all(calls).await {
            let (shard, page) = result?;
            merger.feed(shard, page)?;
        }
    }
}

/// Write an answer to the client, streaming a backend body through.
async fn respond(out: ResponseOutparam, answer: Answer, request_id: &str, head: bool) {
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
        return;
    }
    let mut sink = response.take_body();
    out.set(response);
    match body {
        Either::Left(bytes) => {
            if !bytes.is_empty() {
                let _ = sink.send(bytes).await;
            }
        }
        Either::Right(backend) => {
            let mut stream = backend.take_body_stream();
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(data) if sink.send(data).await.is_ok() => {}
                    // Backend or client went away mid-body: stop; the runtime sees the body is
                    // shorter than its Content-Length and aborts the response rather than truncating it.
                    _ => break,
                }
            }
        }
    }
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
    let mut stream = response.take_body_stream();
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
