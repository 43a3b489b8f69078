//! The goals the bench's figures are checked against (issue 15's, and the earlier ones).

use super::fixed::Fixed;
use super::measure::ratio;
use super::report::{LargeRow, ListRow, Row, SmallRow};
use super::MIB;
use serde_json::{json, Value};

/// One goal and whether this run met it.
pub struct Goal {
    what: String,
    measured: String,
    met: bool,
}

impl Goal {
    pub fn json(&self) -> Value {
        json!({"goal": self.what, "measured": self.measured, "met": self.met})
    }
}

/// Every goal the figures of this run can be checked against.
pub fn goals(small: &[SmallRow], large: &[LargeRow], list: &[ListRow], fixed: &Fixed, wasm_bytes: u64) -> Vec<Goal> {
    let mut goals = small_goals(small);
    goals.extend(large_goals(large));
    for (shards, limit) in [(8usize, 1.5), (32, 2.0)] {
        if let Some(r) = list.iter().find(|r| r.shards == shards) {
            let x = ratio(r.row.proxy.p50_us, r.row.direct.p50_us);
            goals.push(Goal {
                what: format!("LIST {shards} shards <= {limit}x single bucket (p50)"),
                measured: format!("{x:.2}x"),
                met: x <= limit,
            });
        }
    }
    goals.extend(go_goals(small.iter().map(|r| &r.row).chain(list.iter().map(|r| &r.row)), large));
    if let Some(ring) = fixed.wasm_ring64() {
        goals.push(Goal {
            what: "ring for 64 buckets in wasm <= 100 µs (locate - HeadBucket, N=64)".into(),
            measured: format!("{ring:.0} µs"),
            met: ring <= 100.0,
        });
    }
    goals.push(Goal {
        what: "component <= 2 MiB".into(),
        measured: format!("{:.2} MiB", wasm_bytes as f64 / MIB),
        met: wasm_bytes <= 2 << 20,
    });
    goals
}

fn small_goals(small: &[SmallRow]) -> Vec<Goal> {
    let mut goals = Vec::new();
    let unhurried = small.iter().filter(|r| r.latency_ms == 0 && !r.https && r.op == "GET" && r.concurrency == 1);
    if let Some(added) = unhurried.map(|r| r.row.proxy.p50_us - r.row.direct.p50_us).reduce(f64::max) {
        goals.push(Goal {
            what: "4 KiB GET, concurrency 1: added p50 <= 0.3 ms (worst N)".into(),
            measured: format!("{added:.0} µs"),
            met: added <= 300.0,
        });
    }
    let slow: Vec<&SmallRow> = small.iter().filter(|r| r.latency_ms == 5).collect();
    let x = |r: &SmallRow| ratio(r.row.proxy.p50_us, r.row.direct.p50_us);
    if let Some(worst) = slow.iter().max_by(|a, b| x(a).total_cmp(&x(b))) {
        let conc1 = slow.iter().filter(|r| r.concurrency == 1).map(|r| x(r)).fold(0.0, f64::max);
        goals.push(Goal {
            what: "5 ms backend latency: proxy/direct p50 <= 1.1".into(),
            measured: format!("worst {:.2} ({} N={} conc {}); worst at concurrency 1: {conc1:.2}", x(worst), worst.op, worst.n, worst.concurrency),
            met: x(worst) <= 1.1,
        });
    }
    goals
}

fn large_goals(large: &[LargeRow]) -> Vec<Goal> {
    let mut goals = Vec::new();
    for r in large {
        let x = ratio(r.proxy.mib_per_s, r.direct.mib_per_s);
        goals.push(Goal {
            what: format!("large {}: >= 95% of direct throughput", r.op),
            measured: format!("{:.0}%", x * 100.0),
            met: x >= 0.95,
        });
    }
    // None read (0) when the real Spin served ours: its instances' memory is not visible here.
    if let Some(peak) = large.iter().map(|r| r.proxy.component_peak).max().filter(|peak| *peak > 0) {
        let base = large.first().map(|r| r.baseline_memory).unwrap_or(0);
        goals.push(Goal {
            what: "large objects: flat component memory (peak <= 4 KiB-request peak + 8 MiB)".into(),
            measured: format!("{:.2} MiB vs {:.2} MiB", peak as f64 / MIB, base as f64 / MIB),
            met: peak <= base + (8 << 20),
        });
    }
    goals
}

/// Against the Go proxy, on every row it was measured: latency (p50) and throughput no worse,
/// CPU per operation no more.
fn go_goals<'a>(rows: impl Iterator<Item = &'a Row>, large: &[LargeRow]) -> Vec<Goal> {
    let (mut total, mut latency, mut throughput, mut cpu) = (0, 0, 0, 0);
    for r in rows {
        let Some(g) = &r.go else { continue };
        total += 1;
        latency += usize::from(r.proxy.p50_us <= g.p50_us);
        throughput += usize::from(r.proxy.ops_per_s >= g.ops_per_s);
        cpu += usize::from(r.proxy.cpu_us_per_op.zip(g.cpu_us_per_op).is_some_and(|(p, g)| p <= g));
    }
    for r in large {
        let Some(g) = &r.go else { continue };
        total += 1;
        latency += usize::from(r.proxy.mib_per_s >= g.mib_per_s);
        throughput += usize::from(r.proxy.mib_per_s >= g.mib_per_s);
        cpu += usize::from(r.proxy.cpu_ms.zip(g.cpu_ms).is_some_and(|(p, g)| p <= g));
    }
    if total == 0 {
        return Vec::new();
    }
    [("latency (p50) <= the Go proxy's", latency), ("throughput >= the Go proxy's", throughput), ("proxy CPU per op <= the Go proxy's", cpu)]
        .into_iter()
        .map(|(what, met)| Goal { what: format!("every row: {what}"), measured: format!("{met} of {total} rows"), met: met == total })
        .collect()
}

/// Print the goals, met or missed.
pub fn print_goals(goals: &[Goal]) {
    println!("\n== goals");
    for g in goals {
        println!("  [{}] {:<72} {}", if g.met { " met " } else { "MISSED" }, g.what, g.measured);
    }
}
