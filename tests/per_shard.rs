//! One ring over two S3 services: a shard named in `shard_endpoints` lives on its own server, with
//! its own credentials, while the others stay on the default endpoint.

use crate::common;

use aws_sdk_s3::primitives::ByteStream;
use common::{s3_client, temp_dir, Harness, VIRTUAL_BUCKET};
use tempo_s3_shard_host::wasm::workspace_dir;
use tempo_s3_shard_host::backends::{BackendOptions, S3Backend};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_on_another_service_with_its_own_credentials() {
    let other = S3Backend::start(
        &temp_dir("other-service"),
        &["shard3".to_string()],
        BackendOptions { access_key: "other-ak".into(), secret_key: "other-secret".into(), ..Default::default() },
    )
    .await
    .unwrap();
    let endpoints = format!(r#"{{"shard3": {{"endpoint": "{}", "region": "us-east-1"}}}}"#, other.endpoint());
    let h = Harness::start_with(
        &["shard1", "shard2", "shard3"],
        &[("shard_endpoints", &endpoints), ("shard_credentials", r#"{"shard3": "other-ak:other-secret"}"#)],
    )
    .await;
    let s3 = h.client();
    let other_client = s3_client(&other.endpoint(), "other-ak", "other-secret");
    let keys: Vec<String> = (0..30).map(|i| format!("tenant/block-{i}/data")).collect();
    for k in &keys {
        s3.put_object().bucket(VIRTUAL_BUCKET).key(k).body(ByteStream::from(k.clone().into_bytes())).send().await.unwrap();
    }
    let mut on_other = 0;
    for k in &keys {
        let owner = h.owner(k);
        let there = other_client.head_object().bucket("shard3").key(k).send().await.is_ok();
        assert_eq!(there, owner == "shard3", "{k} (owner {owner})");
        if owner == "shard3" {
            on_other += 1;
            // Not on the default service's shard3.
            assert!(h.direct().head_object().bucket("shard3").key(k).send().await.is_err());
        } else {
            assert_eq!(h.holders(k).await, vec![owner]);
        }
        let got = s3.get_object().bucket(VIRTUAL_BUCKET).key(k).send().await.unwrap();
        assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), k.as_bytes());
    }
    assert!(on_other > 0 && on_other < keys.len());
    // Listings span both services.
    let listed = s3.list_objects_v2().bucket(VIRTUAL_BUCKET).prefix("tenant/").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(keys.len() as i32));
}

fn tls_file(name: &str) -> Vec<u8> {
    std::fs::read(workspace_dir().join("tests/data/tls").join(name)).unwrap()
}

/// A shard behind TLS: with the operator's CA trusted, it works; without, writes fail visibly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_over_https_with_a_private_ca() {
    let tls_backend = S3Backend::start(
        &temp_dir("tls-service"),
        &["shard3".to_string()],
        BackendOptions { tls: Some((vec![tls_file("server.der")], tls_file("server.key.der"))), ..Default::default() },
    )
    .await
    .unwrap();
    assert!(tls_backend.endpoint().starts_with("https://"));
    let endpoints = format!(r#"{{"shard3": "{}"}}"#, tls_backend.endpoint());
    let vars = [("shard_endpoints", endpoints.as_str())];
    let h = Harness::start_trusting(&["shard1", "shard2", "shard3"], &vars, &[tls_file("ca.der")]).await;
    let key = (0..100).map(|i| format!("tenant/block-{i}/data")).find(|k| h.owner(k) == "shard3").unwrap();
    let s3 = h.client();
    s3.put_object().bucket(VIRTUAL_BUCKET).key(&key).body(ByteStream::from_static(b"over tls")).send().await.unwrap();
    let got = s3.get_object().bucket(VIRTUAL_BUCKET).key(&key).send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"over tls");
    assert!(h.direct().head_object().bucket("shard3").key(&key).send().await.is_err(), "not on the plain-HTTP service");

    // The same ring without the CA trusted: the certificate is refused and the client gets an error.
    let untrusted = Harness::start_with(&["shard1", "shard2", "shard3"], &vars).await;
    let err = untrusted.client().put_object().bucket(VIRTUAL_BUCKET).key(&key).body(ByteStream::from_static(b"x")).send().await.unwrap_err();
    let status = err.raw_response().map(|r| r.status().as_u16());
    assert_eq!(status, Some(503), "{err:?}");
}
