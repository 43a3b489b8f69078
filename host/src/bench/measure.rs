//! Measurement: latency samples and their percentiles, CPU time of a proxy, memory peaks, ratios.

use serde_json::{json, Value};
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

/// How a proxy's CPU time is read: every thread of a process (`/proc/PID/task/*`), or the threads
/// of this process with a name (the runtime the component host runs on). Both sum each thread's
/// time on CPU from `schedstat` (nanoseconds; the `stat` ticks are 10 ms coarse).
#[derive(Clone, Copy, Debug)]
pub enum Cpu {
    Process(u32),
    Threads(&'static str),
}

impl Cpu {
    /// The CPU time so far (0 when /proc cannot be read).
    pub fn read(self) -> Duration {
        let (dir, name) = match self {
            Cpu::Process(pid) => (format!("/proc/{pid}/task"), None),
            Cpu::Threads(name) => ("/proc/self/task".to_string(), Some(name)),
        };
        let Ok(tasks) = std::fs::read_dir(&dir) else { return Duration::ZERO };
        let nanos: u64 = tasks
            .flatten()
            .filter(|task| {
                // Thread names are cut to 15 bytes.
                name.is_none_or(|n| {
                    std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim_end() == &n[..n.len().min(15)])
                })
            })
            .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()))
            .sum();
        Duration::from_nanos(nanos)
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
