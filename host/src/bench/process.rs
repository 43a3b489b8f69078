//! A proxy in a process of its own (the original Go proxy, or this project under the real Spin):
//! given a free port, waited for until it listens, its process group killed on drop.

use anyhow::{bail, Context as _};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running proxy process (and whatever it started), killed on drop.
pub struct ProxyProcess {
    pub addr: SocketAddr,
    child: Child,
}

/// A free loopback address: bound, read, released for a child process to take.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

impl ProxyProcess {
    /// Run `command` (`what` names it in errors) in a process group of its own, its output to
    /// `log`, and wait up to `within` until something listens on `addr`.
    pub async fn start(mut command: Command, addr: SocketAddr, what: &str, log: &Path, within: Duration) -> anyhow::Result<ProxyProcess> {
        let out = std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("cannot start {what}"))?;
        let mut proxy = ProxyProcess { addr, child };
        let started = Instant::now();
        while started.elapsed() < within {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(proxy);
            }
            if let Ok(Some(status)) = proxy.child.try_wait() {
                bail!("{what} exited at start ({status}): {}", tail(log));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("{what} did not listen on {addr} within {} s: {}", within.as_secs(), tail(log))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// The last lines a child wrote, for an error message.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let shown = lines[lines.len().saturating_sub(5)..].join(" | ");
    format!("{shown} (all of it in {})", log.display())
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        // The whole group: `spin up` runs its trigger as a child process of its own.
        if let Ok(group) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) with a negative pid signals that process group; no memory is involved.
            #[allow(unsafe_code)]
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
        let _ = self.child.wait();
    }
}
