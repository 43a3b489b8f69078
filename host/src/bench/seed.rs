//! The original Go proxy as a bench target: started from its binary (`--seed-bin`) per backend,
//! with a generated `config.json`, in its own process (whose CPU time is read from /proc).

use super::process::{free_addr, ProxyProcess};
use anyhow::Context as _;
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tempo_s3_shard_host::backends::{LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY};

/// Start `bin` in front of the backend at `endpoint` holding `buckets`, trusting the CA
/// certificates in the PEM file `ca` (Go reads them from `SSL_CERT_FILE`) for an `https://` one;
/// its config and output go to `dir`.
pub async fn start(bin: &Path, dir: &Path, endpoint: &str, buckets: &[String], ca: &Path) -> anyhow::Result<ProxyProcess> {
    let addr = free_addr()?;
    let config = json!({
        "listen_addr": addr.to_string(),
        "endpoint": endpoint,
        "access_key_id": LOCAL_ACCESS_KEY,
        "secret_access_key": LOCAL_SECRET_KEY,
        "use_ssl": false,
        "region": super::client::REGION,
        "buckets": buckets,
        // Its per-request log lines would cost it a write each; ours are dropped too.
        "log_level": "error",
    });
    let path = dir.join("go-proxy-config.json");
    std::fs::write(&path, serde_json::to_string_pretty(&config)?).with_context(|| format!("cannot write {}", path.display()))?;
    let mut command = Command::new(bin);
    command.arg("-config").arg(&path).env("SSL_CERT_FILE", ca);
    let what = format!("the Go proxy {} (build it with shared/seed-baseline/build.sh)", bin.display());
    ProxyProcess::start(command, addr, &what, &dir.join("go-proxy.log"), Duration::from_secs(5)).await
}
