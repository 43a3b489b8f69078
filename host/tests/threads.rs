//! Serving on one thread per core (`Threads`, what the runner and the bench use): many connections
//! at once are all answered, the work spreads over every serving thread, stopping waits for the
//! requests in flight, and the threads' idle work (instances made ahead) stays within the pool.

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tempo_s3_shard_host::backends::{BackendOptions, S3Backend};
use tempo_s3_shard_host::pool::Pool;
use tempo_s3_shard_host::threads::Threads;
use tempo_s3_shard_host::{component, wasm, ComponentHost};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const THREADS: &str = "threads-test";
const CONNECTIONS: usize = 32;
const REQUESTS: usize = 10;

fn scratch(name: &str) -> PathBuf {
    let dir = wasm::workspace_dir().join("target/test-data").join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the test directory");
    dir
}

/// The CPU time of each thread of this process named `name`.
fn thread_cpu(name: &str) -> Vec<u64> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return vec![] };
    tasks
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == name))
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .collect()
}

/// `REQUESTS` keep-alive PUT-then-GET exchanges of a small object on one connection.
async fn client(addr: std::net::SocketAddr, n: usize) {
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    for i in 0..REQUESTS {
        let (key, body) = (format!("tenant/block-{n}/file-{i}"), format!("object {n}/{i}"));
        for request in [
            format!("PUT /proxy-bucket/{key} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len()),
            format!("GET /proxy-bucket/{key} HTTP/1.1\r\nHost: x\r\n\r\n"),
        ] {
            conn.write_all(request.as_bytes()).await.expect("send");
            let answer = read_answer(&mut conn).await;
            assert!(answer.starts_with("HTTP/1.1 200"), "{n}/{i}: {answer}");
            if request.starts_with("GET") {
                assert!(answer.ends_with(&body), "{n}/{i}: the GET returned {answer}");
            }
        }
    }
}

/// One response: its head, then as many body bytes as it announces.
async fn read_answer(conn: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut piece = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)));
            if body.len() >= length.unwrap_or(0) {
                return text;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(20), conn.read(&mut piece)).await.expect("an answer within 20 s").expect("read");
        assert!(n > 0, "the connection closed mid-answer: {text}");
        buf.extend_from_slice(&piece[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_connections_spread_over_every_serving_thread_and_stop_waits_for_them() {
    let dir = scratch("threads");
    let buckets = vec!["shard1".to_string(), "shard2".to_string(), "shard3".to_string()];
    let backend = S3Backend::start(&dir.join("backend"), &buckets, BackendOptions::default()).await.expect("start backend");
    let mut variables = backend.proxy_variables(&buckets);
    variables.insert("allow_anonymous".into(), "true".into());
    variables.remove("client_credentials");
    let engine = component::engine().expect("engine");
    let host = ComponentHost::load(&engine, &wasm::ensure_component().expect("build the component"), variables).expect("load").without_stdout();
    let server = Threads::bind(&host, "127.0.0.1:0".parse().unwrap(), 2, THREADS).expect("serve");
    let addr = server.addr();

    let clients: Vec<_> = (0..CONNECTIONS).map(|n| tokio::spawn(client(addr, n))).collect();
    for c in clients {
        c.await.expect("a client failed");
    }
    let cpu = thread_cpu(THREADS);
    assert_eq!(cpu.len(), 2, "two serving threads");
    assert!(cpu.iter().all(|&ns| ns > 1_000_000), "every serving thread served: CPU ns per thread {cpu:?}");

    // A request in flight when stopping is still answered; then the threads end.
    let mut late = TcpStream::connect(addr).await.expect("connect");
    late.write_all(b"PUT /proxy-bucket/tenant/late/file HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nla").await.expect("send half");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopping = tokio::spawn(server.stop(async {}));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!stopping.is_finished(), "stop returned with a request in flight");
    late.write_all(b"te").await.expect("send the rest");
    assert!(read_answer(&mut late).await.starts_with("HTTP/1.1 200"), "the request in flight is answered");
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), stopping).await.expect("stop returns once the request is done").expect("stop");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(thread_cpu(THREADS).is_empty(), "the serving threads ended");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_make_instances_while_they_wait_and_a_one_instance_pool_still_serves_every_request() {
    // While a request waits on the backend, its thread tears down the instance it finished last and
    // makes the next request's: one client's requests, one after the other, all find one made ahead
    // but the first. Those instances are beyond the pool's count: with a pool of one instance,
    // clients at once must still all be answered (none 503 SlowDown for want of a slot).
    let dir = scratch("idle");
    let buckets = vec!["shard1".to_string(), "shard2".to_string()];
    let backend = S3Backend::start(&dir.join("backend"), &buckets, BackendOptions::default()).await.expect("start backend");
    let mut variables = backend.proxy_variables(&buckets);
    variables.insert("allow_anonymous".into(), "true".into());
    variables.remove("client_credentials");
    let pool = Pool { instances: 1, wait: Duration::from_secs(10) };
    let engine = component::engine_for(&pool).expect("engine");
    let wasm = wasm::ensure_component().expect("build the component");
    for idle_work in [true, false] {
        let host = ComponentHost::load(&engine, &wasm, variables.clone()).expect("load").without_stdout().with_pool(pool).idle_work(idle_work);
        let stats = host.stats().clone();
        // As many threads as may do idle work with one engine (one per core), at most two.
        let threads = tempo_s3_shard_host::idle::threads().min(2);
        let server = Threads::bind(&host, "127.0.0.1:0".parse().unwrap(), threads, "idle-test").expect("serve");
        client(server.addr(), 0).await;
        let made_ahead = stats.made_ahead.load(Relaxed);
        eprintln!("idle work {idle_work}: {made_ahead} of {} requests one after the other served by an instance made ahead", 2 * REQUESTS);
        assert_eq!(made_ahead, if idle_work { 2 * REQUESTS - 1 } else { 0 }, "requests one after the other served by an instance made ahead");

        let clients: Vec<_> = (1..=4).map(|n| tokio::spawn(client(server.addr(), n))).collect();
        for c in clients {
            c.await.expect("a client failed");
        }
        server.stop(async {}).await;
        let answered = (stats.requests.load(Relaxed), stats.overloaded.load(Relaxed), stats.failed.load(Relaxed));
        assert_eq!(answered, (5 * 2 * REQUESTS, 0, 0), "(requests, 503 SlowDown, failed): every request answered by the component");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
