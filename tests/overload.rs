//! Overload through the host that runs the component: a burst larger than the instance pool is
//! answered — 200, or 503 SlowDown as S3 XML with a request id — and no connection is dropped.

use crate::common;

use common::{parse_response, Harness, VIRTUAL_BUCKET};
use std::time::Duration;
use tempo_s3_shard_host::pool::Pool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One GET over a fresh connection: the status and error code, or why nothing came back.
async fn get(proxy: std::net::SocketAddr, path: String) -> Result<(u16, Option<String>, bool), String> {
    let mut stream = tokio::net::TcpStream::connect(proxy).await.map_err(|e| format!("connect: {e}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    match tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut buf)).await {
        Err(_) => return Err("no answer within 60 s".into()),
        Ok(Err(e)) => return Err(format!("read: {e}")),
        Ok(Ok(_)) if buf.is_empty() => return Err("closed without an answer".into()),
        Ok(Ok(_)) => {}
    }
    let r = parse_response(&buf);
    Ok((r.status, r.error_code().map(str::to_string), r.header("x-amz-request-id").is_some()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_the_pool_is_answered_ok_or_slow_down() {
    // A pool far below the burst, and a short wait, so that many requests find no instance.
    let pool = Pool { instances: 8, wait: Duration::from_millis(20) };
    let h = Harness::start_pooled(&["shard1", "shard2", "shard3"], &[("allow_anonymous", "true")], pool).await;
    let key = "tenant/block-1/data";
    h.direct().put_object().bucket(h.owner(key)).key(key).body(vec![7u8; 4096].into()).send().await.unwrap();

    let burst: Vec<_> = (0..2_000).map(|_| tokio::spawn(get(h.proxy, format!("/{VIRTUAL_BUCKET}/{key}")))).collect();
    let (mut ok, mut slow_down, mut dropped) = (0, 0, vec![]);
    for task in burst {
        match task.await.unwrap() {
            Ok((200, _, true)) => ok += 1,
            Ok((503, Some(code), true)) if code == "SlowDown" => slow_down += 1,
            Ok(other) => dropped.push(format!("{other:?}")),
            Err(why) => dropped.push(why),
        }
    }
    eprintln!("2000 concurrent GETs, pool of 8: {ok} × 200, {slow_down} × 503 SlowDown, {} other", dropped.len());
    assert!(dropped.is_empty(), "{} requests got neither 200 nor 503 SlowDown: {:?}", dropped.len(), &dropped[..dropped.len().min(5)]);
    assert!(ok > 0, "some requests must be served");
    assert!(slow_down > 0, "the burst must overload a pool of 8");
    assert_eq!(h.stats.overloaded.load(std::sync::atomic::Ordering::Relaxed), slow_down, "every SlowDown is counted");
}
