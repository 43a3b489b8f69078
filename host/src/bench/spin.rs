//! This project under the real Spin as a bench target (`--spin-bin`): `spin up` per backend on the
//! project's own `spin.toml` (its source pointed at the component measured), the variables as
//! `SPIN_VARIABLE_*`, in its own process group (whose CPU time is read from /proc).

use super::process::{free_addr, ProxyProcess};
use anyhow::Context as _;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tempo_s3_shard_host::wasm;

/// The component file `spin.toml` names, relative to it.
const MANIFEST_SOURCE: &str = "target/wasm32-wasip2/component/tempo_s3_shard.wasm";

/// Start `bin up` in `dir` for the component `wasm` with `variables`; an `https://` endpoint is
/// trusted through the CA certificates in the PEM file `ca` (Spin's `[[client_tls]]`).
pub async fn up(bin: &Path, dir: &Path, wasm: &Path, variables: &HashMap<String, String>, ca: &Path) -> anyhow::Result<ProxyProcess> {
    let manifest = wasm::workspace_dir().join("spin.toml");
    let text = std::fs::read_to_string(&manifest).with_context(|| format!("cannot read {}", manifest.display()))?;
    let wasm = wasm.canonicalize().with_context(|| format!("cannot find {}", wasm.display()))?;
    anyhow::ensure!(text.contains(MANIFEST_SOURCE), "{} no longer names {MANIFEST_SOURCE}", manifest.display());
    let ours = dir.join("spin.toml");
    std::fs::write(&ours, text.replace(MANIFEST_SOURCE, &wasm.display().to_string())).with_context(|| format!("cannot write {}", ours.display()))?;
    let endpoint = variables.get("endpoint").map(String::as_str).unwrap_or_default();
    let runtime_config = dir.join("runtime-config.toml");
    std::fs::write(&runtime_config, client_tls(endpoint, ca)).with_context(|| format!("cannot write {}", runtime_config.display()))?;
    let addr = free_addr()?;
    let mut command = Command::new(bin);
    command
        .arg("up")
        .arg("--from")
        .arg(&ours)
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--runtime-config-file")
        .arg(&runtime_config)
        // Component output is dropped, as the runner's is in the bench.
        .arg("--log-dir")
        .arg("")
        .envs(variables.iter().map(|(name, value)| (format!("SPIN_VARIABLE_{}", name.to_uppercase()), value)));
    // Spin compiles the component at start (about 10 s on 2 cores without its cache).
    ProxyProcess::start(command, addr, &format!("{} up", bin.display()), &dir.join("spin.log"), Duration::from_secs(120)).await
}

/// A runtime config that trusts `ca` for an `https://` endpoint (none for plain HTTP).
fn client_tls(endpoint: &str, ca: &Path) -> String {
    let Some(authority) = endpoint.strip_prefix("https://").map(|a| a.trim_end_matches('/')) else { return String::new() };
    // Spin takes a host without its port here.
    let host = authority.rsplit_once(':').map_or(authority, |(name, _)| name);
    format!("[[client_tls]]\ncomponent_ids = [\"tempo-s3-shard\"]\nhosts = [\"{host}\"]\nca_roots_file = \"{}\"\n", ca.display())
}
