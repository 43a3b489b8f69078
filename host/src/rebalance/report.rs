//! What a rebalance run found and did, and how it is printed.

use std::collections::BTreeMap;
use std::fmt;

/// A misplaced object left alone because the owner holds a different object that is not newer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub key: String,
    pub stray_bucket: String,
    pub owner_bucket: String,
    pub reason: String,
}

/// What a run found and did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub dry_run: bool,
    /// Objects and bytes listed per bucket.
    pub listed: BTreeMap<String, (u64, u64)>,
    pub total_objects: u64,
    pub total_bytes: u64,
    /// Objects not on their ring owner when listed.
    pub misplaced_objects: u64,
    pub misplaced_bytes: u64,
    /// (from, to) -> (objects, bytes) of the misplaced objects.
    pub routes: BTreeMap<(String, String), (u64, u64)>,
    /// Copied to the owner, verified, and deleted from the wrong bucket.
    pub moved: u64,
    pub moved_bytes: u64,
    /// The owner already held an identical copy (an earlier run stopped before deleting): stray deleted.
    pub already_at_owner: u64,
    /// The owner held a different, newer object: the older stray was deleted.
    pub superseded: u64,
    /// Gone from the wrong bucket by the time it was handled (another run, a client delete).
    pub vanished: u64,
    pub conflicts: Vec<Conflict>,
    /// Objects that could not be handled (left where they were; run again).
    pub errors: Vec<String>,
    /// `max_moves` stopped the run before every misplaced key was handled.
    pub stopped_early: bool,
}

impl Report {
    /// True when every misplaced object is now on its owner.
    pub fn complete(&self) -> bool {
        !self.dry_run && !self.stopped_early && self.conflicts.is_empty() && self.errors.is_empty()
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Bytes in a human unit.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bucket, (n, bytes)) in &self.listed {
            writeln!(f, "  {bucket}: {n} objects, {}", human_bytes(*bytes))?;
        }
        writeln!(
            f,
            "{} of {} objects ({:.1}%) and {} of {} ({:.1}%) are not on their ring owner{}",
            self.misplaced_objects,
            self.total_objects,
            percent(self.misplaced_objects, self.total_objects),
            human_bytes(self.misplaced_bytes),
            human_bytes(self.total_bytes),
            percent(self.misplaced_bytes, self.total_bytes),
            if self.dry_run { " (dry run: nothing moved)" } else { "" },
        )?;
        for ((from, to), (n, bytes)) in &self.routes {
            writeln!(f, "  {from} -> {to}: {n} objects, {}", human_bytes(*bytes))?;
        }
        if !self.dry_run {
            writeln!(
                f,
                "moved {} objects ({}); {} already at their owner, {} superseded by a newer object at the owner, {} vanished",
                self.moved,
                human_bytes(self.moved_bytes),
                self.already_at_owner,
                self.superseded,
                self.vanished
            )?;
        }
        for c in &self.conflicts {
            writeln!(f, "CONFLICT {}: {} (in {}, owner {}); both copies left", c.key, c.reason, c.stray_bucket, c.owner_bucket)?;
        }
        for e in &self.errors {
            writeln!(f, "ERROR {e}")?;
        }
        if self.stopped_early {
            writeln!(f, "stopped after --max-moves; run again to continue")?;
        }
        Ok(())
    }
}
