//! Operator endpoints through the real component: health and locate, protected like the bucket.

use crate::common;

use common::Harness;

const SHARDS: [&str; 3] = ["shard1", "shard2", "shard3"];

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_each_backend_bucket() {
    let h = Harness::start_with(&SHARDS, &[("allow_anonymous", "true")]).await;
    let r = h.raw(b"GET /_tempo-s3-shard/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = json(&r.body);
    assert_eq!(v["healthy"], true);
    assert_eq!(v["backends"].as_array().unwrap().len(), 3);

    h.backend.set_failing(true);
    let r = h.raw(b"GET /_tempo-s3-shard/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(json(&r.body)["healthy"], false);
    assert!(!r.body.contains(&h.backend.addr.port().to_string()), "health names no endpoint: {}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locate_names_the_owner_and_admin_needs_auth_when_auth_is_on() {
    let h = Harness::start_with(&SHARDS, &[("allow_anonymous", "true")]).await;
    let r = h.raw(b"GET /_tempo-s3-shard/locate?key=tenant%2Fblock-7%2Fdata HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = json(&r.body);
    assert_eq!(v["hash_key"], "tenant/block-7");
    assert_eq!(v["bucket"], h.owner("tenant/block-7/data"));

    let locked = Harness::start(&SHARDS).await;
    let r = locked.raw(b"GET /_tempo-s3-shard/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.error_code(), Some("AccessDenied"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_explains_a_configuration_error() {
    let h = Harness::start_with(&SHARDS, &[("endpoint", "ftp://example.com")]).await;
    let r = h.raw(b"GET /_tempo-s3-shard/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(r.status, 500);
    let v = json(&r.body);
    assert!(v["config"].as_str().unwrap().contains("endpoint"), "{}", r.body);
}
