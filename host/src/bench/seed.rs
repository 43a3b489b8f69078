//! The original Go proxy as a bench target: started from its binary (`--seed-bin`) per backend,
//! with a generated `config.json`, in its own process (whose CPU time is read from /proc).

use anyhow::{bail, Context as _};
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tempo_s3_shard_host::backends::{LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY};

/// A running Go proxy, killed on drop.
pub struct GoProxy {
    pub addr: SocketAddr,
    child: Child,
}

impl GoProxy {
    /// Start `bin` in front of the backend at `endpoint` holding `buckets`, trusting the CA
    /// certificates in the PEM file `ca` (Go reads them from `SSL_CERT_FILE`) for an `https://` one;
    /// its config goes to `dir`.
    pub async fn start(bin: &Path, dir: &Path, endpoint: &str, buckets: &[String], ca: &Path) -> anyhow::Result<GoProxy> {
        // A free port: bound, read, released for the Go proxy to take.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let config = json!({
            "listen_addr": addr.to_string(),
            "endpoint": endpoint,
            "access_key_id": LOCAL_ACCESS_KEY,
            "secret_access_key": LOCAL_SECRET_KEY,
            "use_ssl": false,
            "region": super::client::REGION,
            "buckets": buckets,
            "log_level": "error",
        });
        let path = dir.join("go-proxy-config.json");
        std::fs::write(&path, serde_json::to_string_pretty(&config)?).with_context(|| format!("cannot write {}", path.display()))?;
        // Its per-request log lines would cost it a write each; they go nowhere, as ours do.
        let child = Command::new(bin)
            .arg("-config")
            .arg(&path)
            .env("SSL_CERT_FILE", ca)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start the Go proxy {} (build it with shared/seed-baseline/build.sh)", bin.display()))?;
        let mut proxy = GoProxy { addr, child };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(proxy);
            }
            if let Ok(Some(status)) = proxy.child.try_wait() {
                bail!("the Go proxy {} exited at start ({status})", bin.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the Go proxy {} did not listen on {addr} within 5 s", bin.display())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for GoProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
