//! Rewriting relayed backend answers so they name the virtual bucket and the proxy, never a shard
//! bucket or a backend endpoint.

use crate::error::S3Error;
use crate::context::Proxy;
use crate::route::Operation;
use crate::codec;
use crate::xml;

/// The largest relayed answer body that is read and rewritten (a ListParts page of 1000 parts
/// with checksums is well under this).
pub const MAX_REWRITTEN_BODY: usize = 1024 * 1024;

/// Whether a successful answer to `op` is an XML body that names the backend bucket (and so must
/// be read, up to [`MAX_REWRITTEN_BODY`], and passed through [`multipart_answer`] rather than streamed).
pub fn names_the_bucket(op: &Operation) -> bool {
    matches!(
        op,
        Operation::CreateMultipartUpload { .. } | Operation::ListParts { .. } | Operation::CompleteMultipartUpload { .. }
    )
}

/// A CreateMultipartUpload, ListParts or CompleteMultipartUpload answer as the client must see it:
/// every `<Bucket>` names `virtual_bucket`, every `<Location>` is the object's path-style URL under
/// `proxy_origin` (`scheme://host[:port]` the client reached the proxy at). A body that is not
/// UTF-8 is returned unchanged.
pub fn multipart_answer(body: &[u8], virtual_bucket: &str, key: &str, proxy_origin: &str) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(body) else { return body.to_vec() };
    let location = format!("{}/{}/{}", proxy_origin.trim_end_matches('/'), codec::uri_encode(virtual_bucket, true), codec::uri_encode(key, false));
    let text = replace_elements(text, "Bucket", &xml::escape(virtual_bucket));
    replace_elements(&text, "Location", &xml::escape(&location)).into_bytes()
}

/// The origin (`scheme://authority`) a client reached the proxy at, from its Host header; `https`
/// when the request came over TLS (or a front end says so with `X-Forwarded-Proto: https`).
pub fn proxy_origin(host: &str, tls: bool, forwarded_proto: Option<&str>) -> String {
    let https = tls || forwarded_proto.is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    format!("{}://{}", if https { "https" } else { "http" }, host.trim())
}

/// `text` with the content of every `<name>…</name>` element replaced by `value` (already escaped).
fn replace_elements(text: &str, name: &str, value: &str) -> String {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(&open) {
        let after = i + open.len();
        let Some(j) = rest[after..].find(&close) else { break };
        out.push_str(&rest[..after]);
        out.push_str(value);
        rest = &rest[after + j..];
    }
    out.push_str(rest);
    out
}

/// A backend's error message with shard bucket names replaced by the virtual bucket and backend
/// endpoints (`host[:port]`) by "the backend", so a relayed message reveals neither.
pub fn error_message(message: &str, shard_buckets: &[String], endpoints: &[&str], virtual_bucket: &str) -> String {
    let mut out = message.to_string();
    for endpoint in endpoints.iter().filter(|e| !e.is_empty()) {
        out = out.replace(endpoint, "the backend");
    }
    // Longest names first, so a bucket whose name contains another's is replaced whole.
    let mut names: Vec<&String> = shard_buckets.iter().filter(|b| !b.is_empty()).collect();
    names.sort_by_key(|b| std::cmp::Reverse(b.len()));
    for b in names {
        out = out.replace(b.as_str(), virtual_bucket);
    }
    out
}

impl Proxy {
    /// A relayed CreateMultipartUpload / ListParts / CompleteMultipartUpload answer (see
    /// [`names_the_bucket`]) as the client at `origin` ([`proxy_origin`]) must see it.
    pub fn multipart_answer(&self, op: &Operation, body: &[u8], origin: &str) -> Vec<u8> {
        multipart_answer(body, &self.cfg.virtual_bucket, op.key().unwrap_or_default(), origin)
    }

    /// `err` with every shard bucket and backend endpoint in its message and resource replaced.
    pub fn scrub_error(&self, mut err: S3Error) -> S3Error {
        let hosts: Vec<String> = self.all_buckets.iter().map(|b| self.cfg.backend(b).endpoint.host).collect();
        let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let scrub = |text: &str| error_message(text, &self.all_buckets, &hosts, &self.cfg.virtual_bucket);
        err.resource = err.resource.as_deref().map(scrub);
        err.message = scrub(&err.message);
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>s-four</Bucket><Key>t/b/k</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>";

    #[test]
    fn multipart_answers_name_the_virtual_bucket_and_the_proxy() {
        let out = multipart_answer(CREATED.as_bytes(), "proxy-bucket", "t/b/k", "http://127.0.0.1:8080");
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("<Bucket>proxy-bucket</Bucket><Key>t/b/k</Key><UploadId>u1</UploadId>"), "{out}");
        assert!(!out.contains("s-four"));

        let done = "<CompleteMultipartUploadResult><Location>http://10.0.0.5:9000/s-four/t/b/a%20b</Location><Bucket>s-four</Bucket><Key>t/b/a b</Key><ETag>&quot;e-2&quot;</ETag></CompleteMultipartUploadResult>";
        let out = String::from_utf8(multipart_answer(done.as_bytes(), "proxy-bucket", "t/b/a b", "https://proxy.example/")).unwrap();
        assert_eq!(
            out,
            "<CompleteMultipartUploadResult><Location>https://proxy.example/proxy-bucket/t/b/a%20b</Location><Bucket>proxy-bucket</Bucket><Key>t/b/a b</Key><ETag>&quot;e-2&quot;</ETag></CompleteMultipartUploadResult>"
        );
    }

    #[test]
    fn bodies_without_the_elements_are_unchanged() {
        let body = b"<ListPartsResult><Part><PartNumber>1</PartNumber></Part></ListPartsResult>";
        assert_eq!(multipart_answer(body, "vb", "k", "http://p"), body.to_vec());
        assert_eq!(multipart_answer(&[0xff, 0xfe], "vb", "k", "http://p"), vec![0xff, 0xfe]);
        let unclosed = b"<Bucket>s-four";
        assert_eq!(multipart_answer(unclosed, "vb", "k", "http://p"), unclosed.to_vec());
    }

    #[test]
    fn only_multipart_answers_are_rewritten() {
        assert!(names_the_bucket(&Operation::ListParts { key: "k".into() }));
        assert!(!names_the_bucket(&Operation::GetObject { key: "k".into() }));
    }

    #[test]
    fn origins_follow_the_client() {
        assert_eq!(proxy_origin("127.0.0.1:8080", false, None), "http://127.0.0.1:8080");
        assert_eq!(proxy_origin("p.example", false, Some("HTTPS")), "https://p.example");
        assert_eq!(proxy_origin("p.example", true, None), "https://p.example");
    }

    #[test]
    fn proxy_errors_are_scrubbed() {
        let cfg = crate::config::Config::from_lookup(|n| match n {
            "buckets" => Some("s-one,s-two".into()),
            "endpoint" => Some("http://10.1.2.3:9000".into()),
            "allow_anonymous" => Some("true".into()),
            _ => None,
        })
        .unwrap();
        let p = Proxy::new(cfg);
        let err = S3Error::new(crate::ErrorCode::NoSuchUpload, "no upload in s-two on 10.1.2.3:9000").with_resource("/s-one/k");
        let err = p.scrub_error(err);
        assert_eq!(err.message, "no upload in proxy-bucket on the backend");
        assert_eq!(err.resource.as_deref(), Some("/proxy-bucket/k"));
        let body = p.multipart_answer(&Operation::CreateMultipartUpload { key: "a b".into() }, b"<Bucket>s-one</Bucket>", "http://p:1");
        assert_eq!(body, b"<Bucket>proxy-bucket</Bucket>".to_vec());
    }

    #[test]
    fn error_messages_name_neither_shards_nor_endpoints() {
        let shards = vec!["s-four".to_string(), "s-four-b".to_string()];
        let msg = error_message("bucket s-four-b at 127.0.0.1:9000 and s-four", &shards, &["127.0.0.1:9000"], "vb");
        assert_eq!(msg, "bucket vb at the backend and vb");
    }
}
