//! The runner as a service: a real SIGTERM to the runner binary during a 256 MiB upload stops it
//! accepting connections, lets the upload finish, and then it exits 0.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempo_s3_shard_host::backends::{BackendOptions, S3Backend, LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY};
use tempo_s3_shard_host::wasm;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const UPLOAD: usize = 256 << 20;
const CHUNK: usize = 1 << 20;
const KEY: &str = "tenant/block-1/data.parquet";

/// The runner binary, killed on drop if the test fails before it exits.
struct Runner(Child);

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = wasm::workspace_dir().join("target/test-data").join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the test directory");
    dir
}

/// Start the runner on the Go proxy's config file; return it and the address it serves on.
fn start_runner(config: &Path) -> (Runner, SocketAddr) {
    let wasm = wasm::ensure_component().expect("build the component");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tempo-s3-shard"))
        .arg("--config")
        .arg(config)
        .arg("--wasm")
        .arg(&wasm)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the runner");
    let stdout = child.stdout.take().expect("the runner's stdout");
    let runner = Runner(child);
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().expect("the runner exited before it served").expect("read the runner's stdout");
        if let Some((_, addr)) = line.split_once("serving bucket 'proxy-bucket' on http://") {
            break addr.trim().parse().expect("the runner's address");
        }
    };
    // Keep reading (the access log), so the runner never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (runner, addr)
}

/// Whether a new connection to `addr` is refused, within `within`.
async fn refuses_connections(addr: SocketAddr, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_256_mib_upload_lets_it_finish_then_exits() {
    let dir = scratch("shutdown");
    let buckets = vec!["shard1".to_string(), "shard2".to_string()];
    let backend = S3Backend::start(&dir.join("backend"), &buckets, BackendOptions::default()).await.expect("start backend");
    let config = dir.join("config.json");
    let json = serde_json::json!({
        "listen_addr": "127.0.0.1:0", "endpoint": backend.endpoint(), "access_key_id": LOCAL_ACCESS_KEY,
        "secret_access_key": LOCAL_SECRET_KEY, "use_ssl": false, "buckets": buckets,
    });
    std::fs::write(&config, json.to_string()).expect("write config.json");
    let (mut runner, addr) = start_runner(&config);

    // The Go proxy's config admits unsigned requests: a plain PUT with a Content-Length body.
    let mut upload = TcpStream::connect(addr).await.expect("connect");
    let head = format!("PUT /proxy-bucket/{KEY} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {UPLOAD}\r\n\r\n");
    upload.write_all(head.as_bytes()).await.expect("send the head");
    let chunk = vec![7u8; CHUNK];
    for _ in 0..16 {
        upload.write_all(&chunk).await.expect("send the first 16 MiB");
    }

    let pid = runner.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("run kill").success());
    assert!(refuses_connections(addr, Duration::from_secs(5)).await, "after SIGTERM the runner must stop accepting");
    assert!(runner.0.try_wait().expect("poll the runner").is_none(), "the runner exited with an upload in flight");

    for _ in 16..UPLOAD / CHUNK {
        upload.write_all(&chunk).await.expect("the upload must go on after SIGTERM");
    }
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), upload.read_to_end(&mut response))
        .await
        .expect("the runner answers the upload")
        .expect("read the answer");
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "the upload must succeed: {response}");

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = runner.0.try_wait().expect("poll the runner") {
            break status;
        }
        assert!(Instant::now() < deadline, "the runner did not exit after the upload finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "the runner exits 0 after a graceful shutdown: {status}");
    let stored: u64 = buckets.iter().filter_map(|b| std::fs::metadata(dir.join("backend").join(b).join(KEY)).ok()).map(|m| m.len()).sum();
    assert_eq!(stored, UPLOAD as u64, "the whole upload is stored on its shard");
}
