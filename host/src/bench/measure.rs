//! Measurement: latency samples and their percentiles, CPU time of a proxy, memory peaks, ratios.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Latencies and volume of one or more runs.
#[derive(Default)]
pub struct Sample {
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
    pub bytes: u64,
    pub errors: usize,
    pub first_error: Option<String>,
    /// CPU time the proxy spent during the runs, when it was read.
    pub cpu: Option<Duration>,
}

impl Sample {
    /// One request's latency and outcome (bytes received, or the error).
    pub fn record(&mut self, latency: Duration, result: Result<u64, String>) {
        self.latencies.push(latency);
        match result {
            Ok(bytes) => self.bytes += bytes,
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    /// Add another worker's requests of the same run.
    pub fn merge(&mut self, other: Sample) {
        self.latencies.extend(other.latencies);
        self.bytes += other.bytes;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// Add another run (its time and CPU add up).
    pub fn merge_run(&mut self, other: Sample) {
        self.elapsed += other.elapsed;
        self.cpu = match (self.cpu, other.cpu) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.merge(other);
    }

    pub fn stats(mut self) -> Figures {
        self.latencies.sort_unstable();
        let n = self.latencies.len();
        let pct = |p: usize| {
            if n == 0 {
                0.0
            } else {
                self.latencies[(n * p / 100).min(n - 1)].as_secs_f64() * 1e6
            }
        };
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        if let Some(e) = &self.first_error {
            eprintln!("  ! {} of {n} requests failed; first: {e}", self.errors);
        }
        Figures {
            requests: n,
            p50_us: pct(50),
            p99_us: pct(99),
            ops_per_s: n as f64 / secs,
            mib_per_s: self.bytes as f64 / super::MIB / secs,
            errors: self.errors,
            cpu_us_per_op: self.cpu.filter(|_| n > 0).map(|c| c.as_secs_f64() * 1e6 / n as f64),
        }
    }
}

/// Summary figures of a sample.
#[derive(Clone, Copy, Debug, Default)]
pub struct Figures {
    pub requests: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub ops_per_s: f64,
    pub mib_per_s: f64,
    pub errors: usize,
    /// The proxy's CPU time per request.
    pub cpu_us_per_op: Option<f64>,
}

impl Figures {
    pub fn json(&self) -> Value {
        json!({
            "requests": self.requests, "p50_us": round(self.p50_us), "p99_us": round(self.p99_us),
            "ops_per_s": round(self.ops_per_s), "mib_per_s": round(self.mib_per_s), "errors": self.errors,
            "cpu_us_per_op": self.cpu_us_per_op.map(round),
        })
    }
}

/// How a proxy's CPU time is read: every thread of a process and of the processes it started
/// (`/proc/PID/task/*`; `spin up` serves from a child), or the threads of this process with a name
/// (the runtime the component host runs on). Both read each thread's time on CPU from `schedstat`
/// (nanoseconds; the `stat` ticks are 10 ms coarse).
#[derive(Clone, Copy, Debug)]
pub enum Cpu {
    Process(u32),
    Threads(&'static str),
}

/// Each thread's time on CPU so far, by its id.
pub struct CpuReading(HashMap<u32, u64>);

impl Cpu {
    /// The threads' CPU time so far (none when /proc cannot be read).
    pub fn read(self) -> CpuReading {
        let mut threads = HashMap::new();
        match self {
            Cpu::Process(pid) => with_descendants(pid).into_iter().for_each(|pid| read_threads(&format!("/proc/{pid}/task"), None, &mut threads)),
            Cpu::Threads(name) => read_threads("/proc/self/task", Some(name), &mut threads),
        }
        CpuReading(threads)
    }
}

impl CpuReading {
    /// The CPU time spent since `before` by the threads alive now: a thread that ended meanwhile
    /// (Spin's blocking pool lets idle ones go) takes its earlier time with it, which a difference
    /// of sums would subtract.
    pub fn since(&self, before: &CpuReading) -> Duration {
        let nanos = self.0.iter().map(|(tid, now)| now.saturating_sub(before.0.get(tid).copied().unwrap_or(0))).sum();
        Duration::from_nanos(nanos)
    }
}

/// `pid` and every process below it (from each thread's `children`).
fn with_descendants(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while let Some(&parent) = all.get(i) {
        i += 1;
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else { continue };
        for task in tasks.flatten() {
            let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            all.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        }
    }
    all
}

/// Add the time on CPU (ns) of each thread under `dir` (those named `name`, when given) to `into`.
fn read_threads(dir: &str, name: Option<&str>, into: &mut HashMap<u32, u64>) {
    let Ok(tasks) = std::fs::read_dir(dir) else { return };
    for task in tasks.flatten() {
        // Thread names are cut to 15 bytes.
        if name.is_some_and(|n| !std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim_end() == &n[..n.len().min(15)])) {
            continue;
        }
        let tid = task.file_name().to_str().and_then(|t| t.parse::<u32>().ok());
        let nanos = std::fs::read_to_string(task.path().join("schedstat")).ok().and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
        if let (Some(tid), Some(nanos)) = (tid, nanos) {
            into.insert(tid, nanos);
        }
    }
}

pub fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `a / b`, NaN when there is no `b`.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        f64::NAN
    }
}

/// Peak resident set of this process (it hosts the component, the backend and the client).
pub fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Reset VmHWM to the current RSS (Linux >= 4.0), so the next reading is this phase's peak.
pub fn reset_hwm() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Mean microseconds per call of `f` over `count` calls (after one untimed call).
pub fn time_per_call(count: usize, mut f: impl FnMut()) -> f64 {
    f();
    let t = Instant::now();
    for _ in 0..count {
        f();
    }
    t.elapsed().as_secs_f64() * 1e6 / count as f64
}
