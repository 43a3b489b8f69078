//! The bench's results: rows of figures per target with their ratios, printed as tables and as
//! JSON, and the goals they are checked against.

use super::client::Target;
use super::measure::{ratio, round, Figures};
use super::MIB;
use serde_json::{json, Value};

/// Microseconds, shown as µs or ms.
pub fn us(x: f64) -> String {
    if x >= 10_000.0 {
        format!("{:.1}ms", x / 1000.0)
    } else {
        format!("{:.0}µs", x)
    }
}

/// An optional figure, or "-".
fn opt(x: Option<f64>, show: impl Fn(f64) -> String) -> String {
    x.filter(|x| x.is_finite()).map(show).unwrap_or_else(|| "-".into())
}

/// One scenario's figures for each target.
#[derive(Default, Clone, Copy)]
pub struct Row {
    pub direct: Figures,
    /// The Go proxy's, when it was measured.
    pub go: Option<Figures>,
    pub proxy: Figures,
}

impl Row {
    pub fn set(&mut self, target: Target, figures: Figures) {
        match target {
            Target::Direct => self.direct = figures,
            Target::Go => self.go = Some(figures),
            Target::Proxy => self.proxy = figures,
        }
    }

    fn target_header(name: &str) -> String {
        format!("{:>8} {:>8} {:>8} {:>7}", format!("{name} p50"), "p99", "op/s", "cpu/op")
    }

    fn target_cells(f: &Figures) -> String {
        format!("{:>8} {:>8} {:>8.0} {:>7}", us(f.p50_us), us(f.p99_us), f.ops_per_s, opt(f.cpu_us_per_op, us))
    }

    /// The column titles; `go`: whether the Go proxy was measured.
    pub fn header(go: bool) -> String {
        let mut h = format!("{} | ", Row::target_header("dir"));
        if go {
            h.push_str(&format!("{} | ", Row::target_header("go")));
        }
        h.push_str(&format!("{} | {:>7} {:>5} {:>5} {:>5}", Row::target_header("ours"), "added", "p50x", "p99x", "op/sx"));
        if go {
            h.push_str(&format!(" | {:>5} {:>5} {:>5} {:>5}", "p50xG", "p99xG", "opsxG", "cpuxG"));
        }
        h
    }

    pub fn line(&self) -> String {
        let (d, p) = (&self.direct, &self.proxy);
        let mut l = format!("{} | ", Row::target_cells(d));
        if let Some(g) = &self.go {
            l.push_str(&format!("{} | ", Row::target_cells(g)));
        }
        l.push_str(&format!(
            "{} | {:>7} {:>5.2} {:>5.2} {:>5.2}",
            Row::target_cells(p),
            us(p.p50_us - d.p50_us),
            ratio(p.p50_us, d.p50_us),
            ratio(p.p99_us, d.p99_us),
            ratio(p.ops_per_s, d.ops_per_s)
        ));
        if let Some(g) = &self.go {
            let cpu = opt(p.cpu_us_per_op.zip(g.cpu_us_per_op).map(|(p, g)| ratio(p, g)), |x| format!("{x:.2}"));
            l.push_str(&format!(
                " | {:>5.2} {:>5.2} {:>5.2} {:>5}",
                ratio(p.p50_us, g.p50_us),
                ratio(p.p99_us, g.p99_us),
                ratio(p.ops_per_s, g.ops_per_s),
                cpu
            ));
        }
        let errors = d.errors + p.errors + self.go.map_or(0, |g| g.errors);
        if errors > 0 {
            l.push_str(&format!("  ERRORS {errors}"));
        }
        l
    }

    pub fn json(&self) -> Value {
        let (d, p) = (&self.direct, &self.proxy);
        let mut j = json!({
            "direct": d.json(), "proxy": p.json(),
            "added_p50_us": round(p.p50_us - d.p50_us),
            "ratio_p50": round(ratio(p.p50_us, d.p50_us)),
            "ratio_p99": round(ratio(p.p99_us, d.p99_us)),
            "ratio_throughput": round(ratio(p.ops_per_s, d.ops_per_s)),
        });
        if let Some(g) = &self.go {
            j["go"] = g.json();
            j["ours_over_go"] = json!({
                "p50": round(ratio(p.p50_us, g.p50_us)), "p99": round(ratio(p.p99_us, g.p99_us)),
                "throughput": round(ratio(p.ops_per_s, g.ops_per_s)),
                "cpu_per_op": p.cpu_us_per_op.zip(g.cpu_us_per_op).map(|(p, g)| round(ratio(p, g))),
            });
        }
        j
    }
}

/// A 4 KiB object scenario.
pub struct SmallRow {
    pub latency_ms: u64,
    pub n: usize,
    /// The backend (and the direct target's requests) spoke HTTPS.
    pub https: bool,
    pub op: &'static str,
    pub concurrency: usize,
    pub row: Row,
}

impl SmallRow {
    pub fn header(go: bool) -> String {
        format!("{:>7} {:>3} {:<4} {:>4} | {}", "backend", "N", "op", "conc", Row::header(go))
    }

    pub fn line(&self) -> String {
        format!("{:>7} {:>3} {:<4} {:>4} | {}", format!("{}+{}ms", if self.https { "tls" } else { "" }, self.latency_ms), self.n, self.op, self.concurrency, self.row.line())
    }

    pub fn json(&self) -> Value {
        let mut j = self.row.json();
        j["backend_latency_ms"] = json!(self.latency_ms);
        j["backend_https"] = json!(self.https);
        j["buckets"] = json!(self.n);
        j["op"] = json!(self.op);
        j["concurrency"] = json!(self.concurrency);
        j
    }
}

/// One large transfer's figures.
#[derive(Default, Clone, Copy)]
pub struct LargeFigures {
    pub secs: f64,
    pub mib_per_s: f64,
    pub host_hwm_kib: u64,
    pub component_peak: usize,
    /// The proxy's CPU time for the transfer, in milliseconds.
    pub cpu_ms: Option<f64>,
}

impl LargeFigures {
    /// The median transfer by time; memory peaks are the highest of all transfers.
    pub fn median(mut all: Vec<LargeFigures>) -> LargeFigures {
        all.sort_by(|a, b| a.secs.total_cmp(&b.secs));
        let mut m = all.get(all.len() / 2).copied().unwrap_or_default();
        m.host_hwm_kib = all.iter().map(|f| f.host_hwm_kib).max().unwrap_or(0);
        m.component_peak = all.iter().map(|f| f.component_peak).max().unwrap_or(0);
        m
    }

    fn json(&self) -> Value {
        json!({"seconds": round(self.secs), "mib_per_s": round(self.mib_per_s), "host_vm_hwm_kib": self.host_hwm_kib,
               "cpu_ms": self.cpu_ms.map(round)})
    }
}

/// A large object scenario.
#[derive(Default)]
pub struct LargeRow {
    pub op: &'static str,
    pub direct: LargeFigures,
    pub go: Option<LargeFigures>,
    pub proxy: LargeFigures,
    pub baseline_memory: usize,
}

impl LargeRow {
    pub fn header() -> String {
        format!(
            "{:<22} | {:>9} {:>7} | {:>9} {:>8} | {:>9} {:>8} | {:>7} {:>7} {:>7} | {:>9} {:>13}",
            "op", "dir MiB/s", "dir RSS", "go MiB/s", "go cpu", "ours MiB/s", "ours cpu", "x dir", "x go", "cpu xG", "ours RSS", "wasm peak mem"
        )
    }

    pub fn line(&self) -> String {
        let (d, p) = (&self.direct, &self.proxy);
        let go_cpu = self.go.and_then(|g| g.cpu_ms);
        format!(
            "{:<22} | {:>9.0} {:>6.0}M | {:>9} {:>8} | {:>9.0} {:>8} | {:>7.2} {:>7} {:>7} | {:>8.0}M {:>12.2}M",
            self.op,
            d.mib_per_s,
            d.host_hwm_kib as f64 / 1024.0,
            opt(self.go.map(|g| g.mib_per_s), |x| format!("{x:.0}")),
            opt(go_cpu, |x| format!("{x:.0}ms")),
            p.mib_per_s,
            opt(p.cpu_ms, |x| format!("{x:.0}ms")),
            ratio(p.mib_per_s, d.mib_per_s),
            opt(self.go.map(|g| ratio(p.mib_per_s, g.mib_per_s)), |x| format!("{x:.2}")),
            opt(p.cpu_ms.zip(go_cpu).map(|(p, g)| ratio(p, g)), |x| format!("{x:.2}")),
            p.host_hwm_kib as f64 / 1024.0,
            p.component_peak as f64 / MIB,
        )
    }

    pub fn json(&self) -> Value {
        json!({
            "op": self.op, "direct": self.direct.json(), "go": self.go.map(|g| g.json()), "proxy": self.proxy.json(),
            "ratio_throughput": round(ratio(self.proxy.mib_per_s, self.direct.mib_per_s)),
            "ratio_throughput_over_go": self.go.map(|g| round(ratio(self.proxy.mib_per_s, g.mib_per_s))),
            "component_peak_memory_bytes": self.proxy.component_peak,
            "component_peak_memory_small_request_bytes": self.baseline_memory,
        })
    }
}

/// A LIST scenario: one backend bucket directly, the proxies merging `shards`.
pub struct ListRow {
    pub shards: usize,
    pub row: Row,
}

impl ListRow {
    pub fn header(go: bool) -> String {
        format!("{:>6} | {}", "shards", Row::header(go))
    }

    pub fn line(&self) -> String {
        format!("{:>6} | {}", self.shards, self.row.line())
    }

    pub fn json(&self) -> Value {
        let mut j = self.row.json();
        j["shards"] = json!(self.shards);
        j
    }
}
