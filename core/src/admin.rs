//! Operator endpoints under `/_tempo-s3-shard/` (never an S3 path: bucket names cannot start with `_`),
//! and the one-line JSON access log.

use crate::backend::{self, BackendRequest, EMPTY_SHA256};
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::proxy::{Proxy, Reply, Target};
use crate::route::RequestParts;
use crate::sigv4;
use serde_json::json;

/// Path prefix of the operator endpoints.
pub const PREFIX: &str = "/_tempo-s3-shard/";

/// An operator request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminOp {
    /// Is the configuration valid and is every backend bucket reachable?
    Health,
    /// Where does `key` live: hash key, owning bucket, previous owner.
    Locate { key: String },
}

/// The operator request `parts` makes, if its path is under [`PREFIX`].
pub fn parse(parts: &RequestParts) -> Option<S3Result<AdminOp>> {
    let rest = parts.raw_path.strip_prefix(PREFIX)?;
    if !matches!(parts.method.as_str(), "GET" | "HEAD") {
        return Some(Err(S3Error::new(ErrorCode::MethodNotAllowed, "operator endpoints answer GET only")));
    }
    Some(match rest {
        "health" => Ok(AdminOp::Health),
        "locate" => sigv4::decode_query(&parts.raw_query).and_then(|q| {
            q.into_iter()
                .find(|(k, _)| k == "key")
                .map(|(_, key)| AdminOp::Locate { key })
                .ok_or_else(|| S3Error::invalid_argument("locate needs ?key=OBJECT_KEY"))
        }),
        other => Err(S3Error::new(
            ErrorCode::Other { code: "NotFound".into(), status: 404 },
            format!("no operator endpoint {other:?}; try {PREFIX}health or {PREFIX}locate?key=…"),
        )),
    })
}

fn json_reply(status: u16, value: serde_json::Value) -> Reply {
    Reply {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: format!("{value}\n").into_bytes(),
    }
}

impl Proxy {
    /// `locate`: the hash key, the owner and (while resharding) the previous owner of a key.
    pub fn locate(&self, key: &str) -> Reply {
        json_reply(
            200,
            json!({
                "key": key,
                "hash_key": self.ring.hash_key(key),
                "bucket": self.ring.owner(key),
                "previous_bucket": self.previous.as_ref().map(|r| r.owner(key)),
            }),
        )
    }

    /// One HEAD per backend bucket, for `health`.
    pub fn health_requests(&self, now_unix: u64) -> Vec<BackendRequest> {
        self.all_buckets
            .iter()
            .map(|b| backend::request(&self.cfg, "HEAD", b, None, &[], vec![], EMPTY_SHA256, now_unix))
            .collect()
    }

    /// `health` from each bucket's answer (an HTTP status, or why it could not be reached):
    /// 200 when every bucket answered 200, 503 otherwise. Names no endpoint or credential.
    pub fn health(&self, answers: &[Result<u16, String>]) -> Reply {
        let backends: Vec<_> = self
            .all_buckets
            .iter()
            .zip(answers)
            .map(|(bucket, a)| match a {
                Ok(200) => json!({"bucket": bucket, "ok": true}),
                Ok(404) => json!({"bucket": bucket, "ok": false, "error": "bucket does not exist (it is created on first write)"}),
                Ok(403) => json!({"bucket": bucket, "ok": false, "error": "access denied: check access_key_id / secret_access_key"}),
                Ok(s) => json!({"bucket": bucket, "ok": false, "error": format!("HTTP {s}")}),
                Err(e) => json!({"bucket": bucket, "ok": false, "error": e}),
            })
            .collect();
        let ok = answers.iter().all(|a| matches!(a, Ok(200)));
        json_reply(if ok { 200 } else { 503 }, json!({"config": "ok", "healthy": ok, "backends": backends}))
    }

    /// Operation name, key and owning bucket of a request, for the access log.
    pub fn describe(&self, target: &Target) -> (String, Option<String>, Option<String>) {
        match target {
            Target::Admin(op) => {
                let name = match op {
                    Ok(AdminOp::Health) => "AdminHealth",
                    Ok(AdminOp::Locate { .. }) => "AdminLocate",
                    Err(_) => "Admin",
                };
                (name.into(), None, None)
            }
            Target::S3(Ok(r)) => {
                let key = r.op.key().map(str::to_string);
                let bucket = key.as_deref().map(|k| self.ring.owner(k).to_string());
                (r.op.name().into(), key, bucket)
            }
            Target::S3(Err(_)) => ("Invalid".into(), None, None),
        }
    }
}

/// `health` when the configuration itself is wrong: says which variable, names no secret.
pub fn config_error_health(err: &S3Error) -> Reply {
    json_reply(500, json!({"config": err.message, "healthy": false}))
}

/// One access-log line (JSON): what was asked, where it went, how it ended. No secrets: keys and
/// bucket names only.
#[derive(Debug, Default)]
pub struct AccessLog {
    pub request_id: String,
    pub time: u64,
    pub method: String,
    pub operation: String,
    pub key: Option<String>,
    pub bucket: Option<String>,
    pub status: u16,
    pub bytes: Option<u64>,
    pub duration_us: u64,
    pub error: Option<String>,
}

impl AccessLog {
    pub fn to_json(&self) -> String {
        json!({
            "time": sigv4::iso8601(self.time),
            "request_id": self.request_id,
            "method": self.method,
            "operation": self.operation,
            "key": self.key,
            "bucket": self.bucket,
            "status": self.status,
            "bytes": self.bytes,
            "duration_ms": self.duration_us as f64 / 1000.0,
            "error": self.error,
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn proxy(previous: Option<&str>) -> Proxy {
        Proxy::new(
            Config::from_lookup(|n| match n {
                "buckets" => Some("shard1,shard2,shard3,shard4".into()),
                "previous_buckets" => previous.map(String::from),
                "endpoint" => Some("http://127.0.0.1:9000".into()),
                "allow_anonymous" => Some("true".into()),
                "secret_access_key" => Some("very-secret".into()),
                "access_key_id" => Some("ak".into()),
                _ => None,
            })
            .unwrap(),
        )
    }

    fn get(target: &str) -> RequestParts {
        RequestParts::new("GET", target, vec![])
    }

    #[test]
    fn admin_paths_never_collide_with_s3() {
        assert_eq!(parse(&get("/_tempo-s3-shard/health")), Some(Ok(AdminOp::Health)));
        assert_eq!(parse(&get("/_tempo-s3-shard/locate?key=a%2Fb%2Fc")), Some(Ok(AdminOp::Locate { key: "a/b/c".into() })));
        assert!(parse(&get("/proxy-bucket/_tempo-s3-shard/health")).is_none());
        assert!(parse(&get("/_tempo-s3-shard/locate")).unwrap().is_err());
        assert!(parse(&get("/_tempo-s3-shard/nope")).unwrap().is_err());
        assert!(crate::config::validate_bucket_name("_tempo-s3-shard").is_err());
    }

    #[test]
    fn locate_names_owner_and_previous_owner() {
        let p = proxy(Some("shard1,shard2,shard3"));
        let body = String::from_utf8(p.locate("tenant/block/data").body).unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["hash_key"], "tenant/block");
        assert_eq!(v["bucket"], p.ring.owner("tenant/block/data"));
        assert_eq!(v["previous_bucket"], p.previous.as_ref().unwrap().owner("tenant/block/data"));
    }

    #[test]
    fn only_requests_that_place_keys_use_the_ring() {
        let p = proxy(None);
        for target in ["/proxy-bucket/tenant/block/meta.json", "/proxy-bucket/k?tagging", "/_tempo-s3-shard/locate?key=a"] {
            assert!(p.target(&get(target)).uses_ring(), "{target}");
        }
        assert!(p.target(&RequestParts::new("POST", "/proxy-bucket?delete", vec![])).uses_ring(), "DeleteObjects");
        for target in ["/", "/proxy-bucket", "/proxy-bucket?list-type=2&prefix=a/", "/proxy-bucket?uploads", "/_tempo-s3-shard/health", "/other-bucket/k"] {
            assert!(!p.target(&get(target)).uses_ring(), "{target}");
        }
    }

    #[test]
    fn health_is_503_unless_every_bucket_answers() {
        let p = proxy(None);
        assert_eq!(p.health_requests(0).len(), 4);
        assert_eq!(p.health(&[Ok(200), Ok(200), Ok(200), Ok(200)]).status, 200);
        let r = p.health(&[Ok(200), Ok(403), Err("connection refused".into()), Ok(200)]);
        assert_eq!(r.status, 503);
        let body = String::from_utf8(r.body).unwrap();
        assert!(body.contains("connection refused") && !body.contains("very-secret") && !body.contains("9000"));
    }

    #[test]
    fn access_log_is_one_json_line() {
        let line = AccessLog { request_id: "r".into(), operation: "GetObject".into(), status: 200, ..Default::default() }.to_json();
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["operation"], "GetObject");
    }
}
