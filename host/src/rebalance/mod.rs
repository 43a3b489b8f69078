//! `rebalance`: moves every object that is not on its ring owner there (server-side copy, verify, delete), resumably.
//!
//! After a ring change (a bucket added or removed) the proxy reads with fallback to `previous_buckets`,
//! so nothing is lost, but the objects the ring now places elsewhere stay where they were. This tool
//! lists every bucket of the current and the previous ring and, for each object not on its owner:
//!
//! 1. HEADs the object where it is and at its owner. Owner without it: CopyObject (same endpoint,
//!    `x-amz-metadata-directive: COPY`, tags copied by default, `x-amz-copy-source-if-match` pinned to
//!    the ETag just read), or a multipart UploadPartCopy above 5 GiB (CopyObject's limit), then HEADs
//!    the copy and checks its size and ETag.
//! 2. Deletes the misplaced copy only once the owner holds a verified copy.
//!
//! Every step is idempotent, so a run killed at any point is simply run again: an owner already holding
//! an identical object (same size and ETag) means "copied, not yet deleted", and the stray is deleted.
//! An owner holding a *different* object (a newer write through the proxy) is kept; the stray is deleted
//! if it is older by LastModified, otherwise the pair is reported as a conflict and both are left.
//!

mod cli;
mod mover;
mod report;
mod s3;

pub use cli::main;
pub use report::{human_bytes, Conflict, Report};

use anyhow::{anyhow, bail, Context as _};
use futures::StreamExt as _;
use mover::{Mover, Outcome, Stray};
use s3::S3;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tempo_s3_shard_core::config::Config;
use tempo_s3_shard_core::ring::Ring;

/// CopyObject copies at most 5 GiB; larger objects are copied part by part.
pub const MAX_COPY_OBJECT: u64 = 5 * 1024 * 1024 * 1024;

/// Where the backend buckets are and how to sign for them.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `http(s)://host[:port]` or `host[:port]` (then `use_ssl` decides), as the `endpoint` variable.
    pub endpoint: String,
    pub use_ssl: bool,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Extra trusted CA certificates (DER) for an https endpoint, besides the web PKI roots.
    pub ca_roots: Vec<Vec<u8>>,
}

/// What to do.
#[derive(Clone, Debug)]
pub struct Options {
    /// The ring objects must end up on, in configuration order (as the proxy's `buckets`).
    pub buckets: Vec<String>,
    /// Buckets of the previous ring, scanned too (a removed bucket is emptied into the others).
    pub previous_buckets: Vec<String>,
    /// Only report what would move.
    pub dry_run: bool,
    /// Stop after this many misplaced keys were handled (staged runs; tests of interrupted runs).
    pub max_moves: Option<usize>,
    /// Keys handled at once.
    pub concurrency: usize,
    /// Objects larger than this are copied with UploadPartCopy (at most [`MAX_COPY_OBJECT`]).
    pub multipart_threshold: u64,
    /// Part size of a multipart copy (raised as needed to stay within 10,000 parts).
    pub part_size: u64,
    /// Keys per ListObjectsV2 page (1 to 1000).
    pub page_size: u32,
    /// Print progress (and, in a dry run, every planned move) to stdout.
    pub verbose: bool,
    /// The proxy's `key_prefix`, normalised (empty for none): placement must match the proxy's.
    pub key_prefix: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            buckets: vec![],
            previous_buckets: vec![],
            dry_run: false,
            max_moves: None,
            concurrency: 8,
            multipart_threshold: MAX_COPY_OBJECT,
            part_size: 512 * 1024 * 1024,
            page_size: 1000,
            verbose: false,
            key_prefix: String::new(),
        }
    }
}

/// Live counters of a run, readable while it goes (progress output, tests that interrupt a run).
#[derive(Debug, Default)]
pub struct Progress {
    /// Misplaced keys handled so far (moved, already at the owner, superseded, conflicts, errors).
    pub handled: AtomicU64,
    /// Objects copied to their owner and deleted from the wrong bucket.
    pub moved: AtomicU64,
    pub moved_bytes: AtomicU64,
}

/// A bucket list as the proxy reads `buckets`: comma-separated or a JSON array, validated.
pub fn parse_bucket_list(value: &str) -> anyhow::Result<Vec<String>> {
    let cfg = Config::from_lookup(|name| match name {
        "buckets" => Some(value.to_string()),
        "endpoint" => Some("http://127.0.0.1".into()),
        "allow_anonymous" => Some("true".into()),
        _ => None,
    })
    .map_err(|e| anyhow!("{}", e.message))?;
    Ok(cfg.buckets)
}

/// The core configuration that signs requests for `buckets` on `endpoint`.
fn core_config(ep: &Endpoint, buckets: &[String]) -> anyhow::Result<Config> {
    let list = serde_json::to_string(buckets)?;
    Config::from_lookup(|name| match name {
        "buckets" => Some(list.clone()),
        "endpoint" => Some(ep.endpoint.clone()),
        "use_ssl" => Some(ep.use_ssl.to_string()),
        "region" => Some(ep.region.clone()),
        "access_key_id" => Some(ep.access_key_id.clone()),
        "secret_access_key" => Some(ep.secret_access_key.clone()),
        "allow_anonymous" => Some("true".into()),
        _ => None,
    })
    .map_err(|e| anyhow!("{e}"))
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Scan every bucket of `opts.buckets` ∪ `opts.previous_buckets` on `ep` and move misplaced objects to
/// their ring owner (or, with `dry_run`, only count them). `progress` is updated as the run goes.
pub async fn run(ep: &Endpoint, opts: &Options, progress: &Progress) -> anyhow::Result<Report> {
    if opts.buckets.is_empty() {
        bail!("no buckets: give the ring's buckets (--buckets)");
    }
    let mut scan: Vec<String> = opts.buckets.clone();
    for b in &opts.previous_buckets {
        if !scan.contains(b) {
            scan.push(b.clone());
        }
    }
    let cfg = core_config(ep, &scan)?;
    let ring = Ring::new(&opts.buckets).with_prefix(&opts.key_prefix);
    let s3 = S3::new(cfg, &ep.ca_roots)?;

    let mut report = Report { dry_run: opts.dry_run, ..Report::default() };
    // key -> misplaced copies; BTreeMap so runs handle keys in the same order.
    let mut strays: BTreeMap<String, Vec<Stray>> = BTreeMap::new();
    for bucket in &scan {
        let mut listed = (0u64, 0u64);
        s3.list(bucket, opts.page_size, |entry| {
            listed.0 += 1;
            listed.1 += entry.size;
            let owner = ring.owner(&entry.key);
            if owner != bucket {
                report.misplaced_objects += 1;
                report.misplaced_bytes += entry.size;
                let route = report.routes.entry((bucket.clone(), owner.to_string())).or_default();
                route.0 += 1;
                route.1 += entry.size;
                strays.entry(entry.key.clone()).or_default().push(Stray { bucket: bucket.clone(), entry });
            }
        })
        .await
        .with_context(|| {
            if opts.buckets.contains(bucket) {
                format!("bucket {bucket} of the ring (create it before rebalancing)")
            } else {
                format!("bucket {bucket} of the previous ring")
            }
        })?;
        report.total_objects += listed.0;
        report.total_bytes += listed.1;
        report.listed.insert(bucket.clone(), listed);
        if opts.verbose {
            println!("listed {bucket}: {} objects, {}", listed.0, human_bytes(listed.1));
        }
    }

    if opts.dry_run {
        if opts.verbose {
            for (key, copies) in &strays {
                for s in copies {
                    println!("would move {key}: {} -> {} ({} bytes)", s.bucket, ring.owner(key), s.entry.size);
                }
            }
        }
        return Ok(report);
    }

    let total_keys = strays.len();
    let limit = opts.max_moves.unwrap_or(usize::MAX);
    report.stopped_early = total_keys > limit;
    let mover = Mover { s3, opts: opts.clone() };
    let started = Instant::now();
    let last_print = Mutex::new(Instant::now());
    let (misplaced, misplaced_bytes) = (report.misplaced_objects, report.misplaced_bytes);
    type Handled = (String, Vec<(String, anyhow::Result<Outcome>)>);
    let mut results: Vec<Handled> = futures::stream::iter(strays.into_iter().take(limit))
        .map(|(key, copies)| {
            let owner = ring.owner(&key).to_string();
            let (mover, last_print) = (&mover, &last_print);
            async move {
                let outcomes = mover.handle_key(&key, &owner, copies).await;
                for (_, outcome) in &outcomes {
                    if let Ok(Outcome::Moved(bytes)) = outcome {
                        progress.moved.fetch_add(1, Ordering::Relaxed);
                        progress.moved_bytes.fetch_add(*bytes, Ordering::Relaxed);
                    }
                }
                let handled = progress.handled.fetch_add(1, Ordering::Relaxed) + 1;
                if mover.opts.verbose {
                    let mut last = last_print.lock().unwrap_or_else(|e| e.into_inner());
                    if last.elapsed() >= Duration::from_secs(1) || handled as usize == total_keys.min(limit) {
                        *last = Instant::now();
                        println!(
                            "progress: {handled}/{} keys, moved {}/{misplaced} objects, {}/{} ({:.0}s)",
                            total_keys.min(limit),
                            progress.moved.load(Ordering::Relaxed),
                            human_bytes(progress.moved_bytes.load(Ordering::Relaxed)),
                            human_bytes(misplaced_bytes),
                            started.elapsed().as_secs_f64()
                        );
                    }
                }
                (key, outcomes)
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;

    results.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, outcomes) in results {
        for (bucket, outcome) in outcomes {
            match outcome {
                Ok(Outcome::Moved(bytes)) => {
                    report.moved += 1;
                    report.moved_bytes += bytes;
                }
                Ok(Outcome::AlreadyAtOwner) => report.already_at_owner += 1,
                Ok(Outcome::Superseded) => report.superseded += 1,
                Ok(Outcome::Vanished) => report.vanished += 1,
                Ok(Outcome::Conflict(c)) => report.conflicts.push(c),
                Err(e) => report.errors.push(format!("{bucket}/{key}: {e:#}")),
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    #[test]
    fn copy_source_encodes_the_key() {
        assert_eq!(super::s3::copy_source("shard1", "t/b c/+x"), "/shard1/t/b%20c/%2Bx");
    }
}
