//! Finds the component's `.wasm`, building it with cargo (target wasm32-wasip2) when run from the repo.

use anyhow::{bail, Context as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace this host was compiled in.
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The cargo profile the component is built with (size-optimised, LTO; see Cargo.toml).
pub const PROFILE: &str = "component";

/// The target dir the host builds the component in: separate from `target/`, whose lock the outer
/// `cargo test` holds while tests run.
pub fn component_target_dir() -> PathBuf {
    workspace_dir().join("target/component-build")
}

/// Where the host's build leaves the component.
pub fn component_path() -> PathBuf {
    component_target_dir().join("wasm32-wasip2").join(PROFILE).join("tempo_s3_shard.wasm")
}

/// Build the component (once per process) and return its path. Cargo makes this a no-op when
/// nothing changed. Set `TEMPO_S3_SHARD_WASM` to use a prebuilt file instead.
pub fn ensure_component() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT.get_or_init(|| build().map_err(|e| format!("{e:#}"))).clone().map_err(anyhow::Error::msg)
}

fn build() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("TEMPO_S3_SHARD_WASM") {
        return Ok(PathBuf::from(path));
    }
    let ws = workspace_dir();
    ensure_wasm_target(&ws)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&ws)
        .args(["build", "--target", "wasm32-wasip2", "--profile", PROFILE, "-p", "tempo-s3-shard"])
        .env("CARGO_TARGET_DIR", component_target_dir())
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .context("cannot run cargo to build the component")?;
    if !status.success() {
        bail!("building the component failed (cargo build --target wasm32-wasip2 --profile {PROFILE})");
    }
    let path = component_path();
    if !path.exists() {
        bail!("the component build did not produce {}", path.display());
    }
    Ok(path)
}

/// rustup installs rust-toolchain.toml's targets only with a fresh toolchain: add the wasm target to
/// an existing one, so a fresh clone needs no manual `rustup` step.
fn ensure_wasm_target(ws: &Path) -> anyhow::Result<()> {
    let sysroot = Command::new("rustc").current_dir(ws).args(["--print", "sysroot"]).output();
    let installed = match sysroot {
        Ok(out) => Path::new(String::from_utf8_lossy(&out.stdout).trim()).join("lib/rustlib/wasm32-wasip2").exists(),
        Err(_) => false,
    };
    if installed {
        return Ok(());
    }
    let status = Command::new("rustup")
        .current_dir(ws)
        .args(["target", "add", "wasm32-wasip2"])
        .status()
        .context("the wasm32-wasip2 target is missing and rustup is not available to add it")?;
    if !status.success() {
        bail!("`rustup target add wasm32-wasip2` failed");
    }
    Ok(())
}
