//! What the client receives: a backend answer passed on (small bodies read whole first, so head
//! and body leave together), and the headers every answer gets.

use super::{Answer, Head, Transport};
use crate::backend;
use crate::context::Proxy;
use crate::error::S3Result;
use crate::reply::Reply;
use crate::route::{header, RequestParts};

/// Backend bodies up to this size are read whole before the answer starts: the client then gets
/// head and body in one write, which a runtime without TCP_NODELAY would otherwise send apart
/// (and the second write waits for the client's delayed ACK).
pub const READ_WHOLE_LIMIT: u64 = 64 * 1024;

/// Pass a successful backend answer on to the client.
pub async fn pass_on<T: Transport>(t: &T, proxy: &Proxy, shard: usize, head: Head, response: T::Response, method: &str) -> S3Result<Answer<T::Response>> {
    let headers = backend::forward_response_headers(&head.headers);
    let length = header(&headers, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
    if method == "HEAD" || matches!(head.status, 204 | 304) || length == Some(0) {
        return Ok(Answer::Reply(Reply { status: head.status, headers, body: Vec::new() }));
    }
    match length {
        Some(n) if n <= READ_WHOLE_LIMIT => {
            // HTTP framing ends the body at its announced length; only a shorter one is possible.
            let body = t.read_body(response, n as usize).await.map_err(|e| e.to_s3(proxy, shard))?;
            if body.len() as u64 != n {
                let broke = super::TransportError::new(super::TransportErrorKind::Closed, format!("body of {} bytes, {n} announced", body.len()));
                return Err(broke.to_s3(proxy, shard));
            }
            Ok(Answer::Reply(Reply { status: head.status, headers, body }))
        }
        _ => Ok(Answer::Stream { status: head.status, headers, response }),
    }
}

/// The headers every answer carries, and the body rules of HTTP: a HEAD answer has none, a held
/// body states its length.
pub fn finish<R>(answer: Answer<R>, parts: &RequestParts, request_id: &str) -> Answer<R> {
    let head = parts.method == "HEAD";
    match answer {
        Answer::Reply(mut reply) => {
            set(&mut reply.headers, "x-amz-request-id", request_id);
            if head {
                reply.body.clear();
            } else if !reply.body.is_empty() || !matches!(reply.status, 204 | 304) && header(&reply.headers, "content-length").is_none() {
                set(&mut reply.headers, "content-length", &reply.body.len().to_string());
            }
            Answer::Reply(reply)
        }
        Answer::Stream { status, mut headers, response } => {
            set(&mut headers, "x-amz-request-id", request_id);
            Answer::Stream { status, headers, response }
        }
    }
}

fn set(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    headers.push((name.to_string(), value.to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_state_their_length_and_head_answers_carry_no_body() {
        let get = RequestParts::new("GET", "/b/k", vec![]);
        let Answer::<()>::Reply(r) = finish(Answer::Reply(Reply::xml(200, "<a/>".into())), &get, "id") else { panic!() };
        assert_eq!(header(&r.headers, "content-length"), Some("4"));
        assert_eq!(header(&r.headers, "x-amz-request-id"), Some("id"));
        let head = RequestParts::new("HEAD", "/b/k", vec![]);
        let Answer::<()>::Reply(r) = finish(Answer::Reply(Reply::xml(404, "<Error/>".into())), &head, "id") else { panic!() };
        assert!(r.body.is_empty());
    }
}
