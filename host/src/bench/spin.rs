//! This project under the real Spin as a bench target (`--spin-bin`): `spin up` per backend on the
//! project's own `spin.toml` (its source pointed at the component measured), the variables as
//! `SPIN_VARIABLE_*` or (`--spin-static-variables`) a static provider in the runtime config, in its
//! own process group (whose CPU time is read from /proc).

use super::process::{free_addr, ProxyProcess};
use anyhow::Context as _;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tempo_s3_shard_host::wasm;

/// The component file `spin.toml` names, relative to it.
const MANIFEST_SOURCE: &str = "target/wasm32-wasip2/component/tempo_s3_shard.wasm";

/// How Spin is given the app variables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variables {
    /// `SPIN_VARIABLE_*`, as a SpinApp's `variables` set them: Spin's environment provider hands its
    /// thread over (`block_in_place`) for each variable a request resolves.
    Environment,
    /// A static provider in the runtime config naming every variable (runtime-config.toml's example).
    Static,
}

impl Variables {
    /// The name the bench's report gives it.
    pub fn name(self) -> &'static str {
        match self {
            Variables::Environment => "environment",
            Variables::Static => "static",
        }
    }
}

/// Start `bin up` in `dir` for the component `wasm` with the app `variables`, given as `how`; an
/// `https://` endpoint is trusted through the CA certificates in the PEM file `ca` (Spin's `[[client_tls]]`).
pub async fn up(bin: &Path, dir: &Path, wasm: &Path, variables: &HashMap<String, String>, how: Variables, ca: &Path) -> anyhow::Result<ProxyProcess> {
    let manifest = wasm::workspace_dir().join("spin.toml");
    let text = std::fs::read_to_string(&manifest).with_context(|| format!("cannot read {}", manifest.display()))?;
    let wasm = wasm.canonicalize().with_context(|| format!("cannot find {}", wasm.display()))?;
    anyhow::ensure!(text.contains(MANIFEST_SOURCE), "{} no longer names {MANIFEST_SOURCE}", manifest.display());
    let ours = dir.join("spin.toml");
    std::fs::write(&ours, text.replace(MANIFEST_SOURCE, &wasm.display().to_string())).with_context(|| format!("cannot write {}", ours.display()))?;
    let endpoint = variables.get("endpoint").map(String::as_str).unwrap_or_default();
    let runtime_config = dir.join("runtime-config.toml");
    let provider = match how { Variables::Environment => String::new(), Variables::Static => static_provider(variables)? };
    std::fs::write(&runtime_config, client_tls(endpoint, ca) + &provider).with_context(|| format!("cannot write {}", runtime_config.display()))?;
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
        .envs(variables.iter().filter(|_| how == Variables::Environment).map(|(name, value)| (format!("SPIN_VARIABLE_{}", name.to_uppercase()), value)));
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

/// A static variables provider naming every app variable spin.toml declares (`variables`, else the
/// default), so that none falls through to the environment provider.
fn static_provider(variables: &HashMap<String, String>) -> anyhow::Result<String> {
    let values: toml::Table = tempo_s3_shard_host::manifest::app_variables(variables)?.into_iter().map(|(name, value)| (name, value.into())).collect();
    let provider = toml::Table::from_iter([("type".to_string(), "static".into()), ("values".to_string(), values.into())]);
    let config = toml::Table::from_iter([("variables_provider".to_string(), toml::Value::Array(vec![provider.into()]))]);
    Ok(format!("\n{}", toml::to_string(&config)?))
}
