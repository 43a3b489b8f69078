//! Operator endpoints under `/_tempo-s3-shard/` (never an S3 path: bucket names cannot start with
//! `_`): which one a request names, and the JSON each answers with.

use crate::context::Proxy;
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::reply::Reply;
use crate::route::RequestParts;
use crate::codec;
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
        "locate" => codec::decode_query(&parts.raw_query).and_then(|q| {
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

/// Whether `parts` asks for the health check (answered even when the configuration is wrong).
pub fn is_health(parts: &RequestParts) -> bool {
    parts.raw_path.strip_prefix(PREFIX) == Some("health")
}

/// `locate`: the hash key, the owner and (while resharding) the previous owner of a key.
pub fn locate(proxy: &Proxy, key: &str) -> Reply {
    Reply::json(
        200,
        &json!({
            "key": key,
            "hash_key": proxy.ring.hash_key(key),
            "bucket": proxy.ring.owner(key),
            "previous_bucket": proxy.previous.as_ref().map(|r| r.owner(key)),
        }),
    )
}

/// `health` from each bucket's answer (an HTTP status, or why it could not be reached):
/// 200 when every bucket answered 200, 503 otherwise. Names no endpoint or credential. With
/// `ring_tables` set, also how many of its tables a ring adopted whole (each checked point by
/// point), and why when not all.
pub fn health(proxy: &Proxy, answers: &[Result<u16, String>]) -> Reply {
    let backends: Vec<_> = proxy
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
    let ok = answers.len() == proxy.all_buckets.len() && answers.iter().all(|a| matches!(a, Ok(200)));
    let mut body = json!({"config": "ok", "healthy": ok, "backends": backends});
    if let (given @ 1.., _) = proxy.ring_tables {
        // Only a table that is whole counts: a damaged one is distrusted as soon as a lookup
        // meets the damage.
        let adopted = proxy.rings().filter(|ring| ring.given_table_is_whole() == Some(true)).count();
        let stale = (adopted < given).then_some("a table in ring_tables belongs to no ring of this configuration (or is damaged): those rings are hashed or read from the store instead; print the value again with ring-plan --tables");
        body["ring_tables"] = json!({"given": given, "adopted": adopted, "stale": stale});
    }
    Reply::json(if ok { 200 } else { 503 }, &body)
}

/// `health` when the configuration itself is wrong: says which variable, names no secret.
pub fn config_error_health(err: &S3Error) -> Reply {
    Reply::json(500, &json!({"config": err.message, "healthy": false}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::proxy_with;

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
        let p = proxy_with(&[("buckets", "shard1,shard2,shard3,shard4"), ("previous_buckets", "shard1,shard2,shard3")]);
        let body = String::from_utf8(locate(&p, "tenant/block/data").body).unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["hash_key"], "tenant/block");
        assert_eq!(v["bucket"], p.ring.owner("tenant/block/data"));
        assert_eq!(v["previous_bucket"], p.previous.as_ref().unwrap().owner("tenant/block/data"));
    }

    #[test]
    fn health_is_503_unless_every_bucket_answers() {
        let p = proxy_with(&[("buckets", "shard1,shard2,shard3,shard4")]);
        assert_eq!(health(&p, &[Ok(200), Ok(200), Ok(200), Ok(200)]).status, 200);
        let r = health(&p, &[Ok(200), Ok(403), Err("connection refused".into()), Ok(200)]);
        assert_eq!(r.status, 503);
        let body = String::from_utf8(r.body).unwrap();
        assert!(body.contains("connection refused") && !body.contains("very-secret") && !body.contains("9000"));
    }
}
