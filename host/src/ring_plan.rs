//! `ring-plan`: how a ring spreads hash keys over its buckets, and what a proposed ring change would move.

use anyhow::{bail, Context as _};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use tempo_s3_shard_core::ring::{hash_key_with_prefix, normalize_prefix, Ring};

/// How many hash keys (and objects) each bucket of a ring receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Distribution {
    pub buckets: Vec<String>,
    /// Distinct hash keys (Tempo blocks) per bucket, in `buckets` order.
    pub hash_keys: Vec<u64>,
    /// Objects per bucket, in `buckets` order.
    pub objects: Vec<u64>,
}

/// What a proposed ring would change.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub proposed: Distribution,
    /// Hash keys whose owner changes, and the objects under them.
    pub moved_hash_keys: u64,
    pub moved_objects: u64,
    /// (from, to) -> hash keys.
    pub routes: BTreeMap<(String, String), u64>,
    /// What an even split would move: the shares the common buckets must give up or take over.
    pub minimum_share: f64,
}

/// The analysis of one ring (and optionally a proposed one) over a set of keys.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub source: String,
    pub total_hash_keys: u64,
    pub total_objects: u64,
    pub current: Distribution,
    pub change: Option<Change>,
}

/// Tempo-shaped keys for `blocks` blocks: `tenant-{i%10}/<uuid>/data.parquet` (one hash key per block).
pub fn synthetic_keys(blocks: u64) -> impl Iterator<Item = String> {
    (0..blocks).map(|i| format!("tenant-{}/{}/data.parquet", i % 10, pseudo_uuid(i)))
}

/// A version-4-shaped UUID derived from `n` (deterministic, so plans are reproducible).
pub fn pseudo_uuid(n: u64) -> String {
    let mut state = n;
    let mut next = || {
        // splitmix64
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let (a, b) = (next(), next());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// Place `keys` on `current` (and `proposed`), with the proxy's `key_prefix` (normalised; empty for none).
pub fn analyze(
    source: &str,
    current: &[String],
    proposed: Option<&[String]>,
    key_prefix: &str,
    keys: impl IntoIterator<Item = String>,
) -> Plan {
    let mut objects_per_hash_key: HashMap<String, u64> = HashMap::new();
    for key in keys {
        *objects_per_hash_key.entry(hash_key_with_prefix(&key, key_prefix).to_string()).or_default() += 1;
    }
    // The rings below place hash keys, which hash as themselves: no prefix to skip there.
    let ring = Ring::new(current);
    let new_ring = proposed.map(Ring::new);
    let mut dist = Distribution { buckets: current.to_vec(), hash_keys: vec![0; current.len()], objects: vec![0; current.len()] };
    let mut change = proposed.map(|p| Change {
        proposed: Distribution { buckets: p.to_vec(), hash_keys: vec![0; p.len()], objects: vec![0; p.len()] },
        moved_hash_keys: 0,
        moved_objects: 0,
        routes: BTreeMap::new(),
        minimum_share: minimum_share(current, p),
    });
    let mut total_objects = 0;
    for (hk, objects) in &objects_per_hash_key {
        total_objects += objects;
        let old = ring.owner_index(hk);
        dist.hash_keys[old] += 1;
        dist.objects[old] += objects;
        if let (Some(new_ring), Some(change)) = (&new_ring, change.as_mut()) {
            let new = new_ring.owner_index(hk);
            change.proposed.hash_keys[new] += 1;
            change.proposed.objects[new] += objects;
            let (from, to) = (&current[old], &new_ring.buckets()[new]);
            if from != to {
                change.moved_hash_keys += 1;
                change.moved_objects += objects;
                *change.routes.entry((from.clone(), to.clone())).or_default() += 1;
            }
        }
    }
    Plan { source: source.to_string(), total_hash_keys: objects_per_hash_key.len() as u64, total_objects, current: dist, change }
}

/// With evenly shared rings, the least share of keys any placement must move from `old` to `new`.
fn minimum_share(old: &[String], new: &[String]) -> f64 {
    let common = old.iter().filter(|b| new.contains(b)).count() as f64;
    let per_bucket = (1.0 / old.len() as f64).min(1.0 / new.len() as f64);
    (1.0 - common * per_bucket).max(0.0)
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn write_distribution(f: &mut fmt::Formatter<'_>, d: &Distribution, total_hk: u64, total_obj: u64) -> fmt::Result {
    let width = d.buckets.iter().map(String::len).max().unwrap_or(0);
    let ideal = 100.0 / d.buckets.len().max(1) as f64;
    for (i, b) in d.buckets.iter().enumerate() {
        writeln!(
            f,
            "  {b:<width$}  {:>9} hash keys {:>6.2}%   {:>9} objects {:>6.2}%   (even share {ideal:.2}%)",
            d.hash_keys[i],
            share(d.hash_keys[i], total_hk),
            d.objects[i],
            share(d.objects[i], total_obj)
        )?;
    }
    Ok(())
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} hash keys ({} objects) from {}",
            self.total_hash_keys, self.total_objects, self.source
        )?;
        writeln!(f, "ring {}:", self.current.buckets.join(","))?;
        write_distribution(f, &self.current, self.total_hash_keys, self.total_objects)?;
        if let Some(c) = &self.change {
            writeln!(f, "proposed ring {}:", c.proposed.buckets.join(","))?;
            write_distribution(f, &c.proposed, self.total_hash_keys, self.total_objects)?;
            writeln!(
                f,
                "moving: {} of {} hash keys ({:.2}%), {} of {} objects ({:.2}%); an even split would move {:.2}%",
                c.moved_hash_keys,
                self.total_hash_keys,
                share(c.moved_hash_keys, self.total_hash_keys),
                c.moved_objects,
                self.total_objects,
                share(c.moved_objects, self.total_objects),
                c.minimum_share * 100.0
            )?;
            for ((from, to), n) in &c.routes {
                writeln!(f, "  {from} -> {to}: {n} hash keys ({:.2}%)", share(*n, self.total_hash_keys))?;
            }
        }
        Ok(())
    }
}

const USAGE: &str = "\
usage: tempo-s3-shard ring-plan --buckets a,b,c [--proposed a,b,c,d] [--key-prefix P] [--keys FILE | --synthetic N]
       tempo-s3-shard ring-plan --tables --buckets a,b,c [--proposed a,b,c,d] [--key-prefix P]

Prints the share of hash keys (Tempo blocks: `tenant/block`) and objects each bucket of the ring
receives and, with --proposed, the share that would move to another bucket and from where to where.

  --tables         print instead the value of the proxy's `ring_tables` variable for these rings
                   (--buckets, and --proposed if given: while resharding the proxy uses both), with
                   the same --key-prefix as its key_prefix: requests then neither hash the rings
                   nor read them from the key-value store

  --keys FILE      object keys, one per line (e.g. `aws s3 ls --recursive` output reduced to keys)
  --synthetic N    N Tempo-shaped blocks `tenant-{i%10}/<uuid>/...` (default: 100000)
  --key-prefix P   the proxy's key_prefix (Tempo's prefix): keys under it are placed by the two
                   segments after it; synthetic keys are written under it
";

/// `tempo-s3-shard ring-plan ARGS`.
pub fn main(args: Vec<String>) -> anyhow::Result<()> {
    let (mut buckets, mut proposed, mut keys_file, mut synthetic, mut prefix) = (None, None, None, None, String::new());
    let mut tables = false;
    let parsed = crate::args::parse(args, USAGE, |arg, v| {
        match arg {
            "--buckets" => buckets = Some(crate::rebalance::parse_bucket_list(&v.value(arg)?).context("--buckets")?),
            "--proposed" => proposed = Some(crate::rebalance::parse_bucket_list(&v.value(arg)?).context("--proposed")?),
            "--keys" => keys_file = Some(v.value(arg)?),
            "--synthetic" => synthetic = Some(v.parsed::<u64>(arg, "a number")?),
            "--key-prefix" => prefix = normalize_prefix(&v.value(arg)?).map_err(|why| anyhow::anyhow!("--key-prefix {why}"))?,
            "--tables" => tables = true,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if parsed == crate::args::Parsed::Help {
        return Ok(());
    }
    let buckets = buckets.with_context(|| format!("--buckets is required\n\n{USAGE}"))?;
    if tables {
        println!("{}", ring_tables(&buckets, proposed.as_deref(), &prefix));
        return Ok(());
    }
    let plan = match (keys_file, synthetic) {
        (Some(_), Some(_)) => bail!("give --keys or --synthetic, not both"),
        (Some(path), None) => {
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
            let keys = text.lines().map(|l| l.trim_end_matches('\r')).filter(|l| !l.is_empty()).map(str::to_string);
            analyze(&path, &buckets, proposed.as_deref(), &prefix, keys)
        }
        (None, n) => {
            let n = n.unwrap_or(100_000);
            let under = |k: String| if prefix.is_empty() { k } else { format!("{prefix}/{k}") };
            analyze(&format!("{n} synthetic Tempo blocks"), &buckets, proposed.as_deref(), &prefix, synthetic_keys(n).map(under))
        }
    };
    print!("{plan}");
    Ok(())
}

/// The `ring_tables` value for the ring of `buckets` and, if given, of `proposed`.
pub fn ring_tables(buckets: &[String], proposed: Option<&[String]>, prefix: &str) -> String {
    let entry = |buckets: &[String]| Ring::new(buckets).with_prefix(prefix).table_entry();
    std::iter::once(buckets).chain(proposed).map(entry).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &str) -> Vec<String> {
        s.split(',').map(str::to_string).collect()
    }

    #[test]
    fn synthetic_keys_are_tempo_shaped_and_distinct() {
        let keys: Vec<String> = synthetic_keys(1000).collect();
        assert_eq!(keys[3].split('/').count(), 3);
        assert!(keys[3].starts_with("tenant-3/"));
        let uuid = keys[3].split('/').nth(1).unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(uuid.as_bytes()[14], b'4');
        let distinct: std::collections::HashSet<_> = keys.iter().map(|k| hash_key_with_prefix(k, "")).collect();
        assert_eq!(distinct.len(), 1000);
    }

    #[test]
    fn files_of_a_block_count_as_one_hash_key() {
        let keys = ["t/b1/meta.json", "t/b1/data.parquet", "t/b2/meta.json", "t/index.json.gz"].map(String::from);
        let plan = analyze("test", &names("shard1,shard2"), None, "", keys);
        assert_eq!(plan.total_hash_keys, 3);
        assert_eq!(plan.total_objects, 4);
        assert_eq!(plan.current.hash_keys.iter().sum::<u64>(), 3);
        assert_eq!(plan.current.objects.iter().sum::<u64>(), 4);
    }

    #[test]
    fn adding_a_fourth_bucket_moves_about_a_quarter_and_only_to_it() {
        let plan = analyze("test", &names("shard1,shard2,shard3"), Some(&names("shard1,shard2,shard3,shard4")), "", synthetic_keys(20_000));
        let c = plan.change.as_ref().unwrap();
        let moved = c.moved_hash_keys as f64 / plan.total_hash_keys as f64;
        assert!((0.15..0.35).contains(&moved), "moved share {moved}");
        assert!((c.minimum_share - 0.25).abs() < 1e-9);
        assert!(c.routes.keys().all(|(_, to)| to == "shard4"), "{:?}", c.routes);
        assert_eq!(c.routes.values().sum::<u64>(), c.moved_hash_keys);
        assert_eq!(c.proposed.hash_keys[3], c.moved_hash_keys, "shard4 holds exactly what moved");
        // Every ring is checked against the real placement.
        let ring = Ring::new(&names("shard1,shard2,shard3"));
        let on_first = synthetic_keys(20_000).filter(|k| ring.owner(k) == "shard1").count() as u64;
        assert_eq!(plan.current.hash_keys[0], on_first);
        let text = plan.to_string();
        assert!(text.contains("shard1 -> shard4"), "{text}");
        assert!(text.contains("an even split would move 25.00%"), "{text}");
    }

    #[test]
    fn a_key_prefix_places_by_the_segments_after_it() {
        let buckets = names("shard1,shard2,shard3,shard4");
        let keys: Vec<String> = synthetic_keys(2_000).map(|k| format!("traces/{k}")).collect();
        let plan = analyze("test", &buckets, None, "traces", keys.clone());
        assert_eq!(plan.total_hash_keys, 2_000, "one hash key per block, not per tenant");
        let ring = Ring::new(&buckets).with_prefix("traces");
        let on_first = keys.iter().filter(|k| ring.owner(k) == "shard1").count() as u64;
        assert_eq!(plan.current.hash_keys[0], on_first);
        let without = analyze("test", &buckets, None, "", keys);
        assert_eq!(without.total_hash_keys, 10, "without the prefix rule: one hash key per tenant");
    }

    #[test]
    fn tables_are_what_the_proxy_adopts_for_its_current_and_previous_ring() {
        let vars = [("buckets", "bkt1,bkt2,bkt3,bkt4"), ("previous_buckets", "bkt1,bkt2,bkt3"), ("key_prefix", "traces"), ("endpoint", "http://s3:9000"), ("allow_anonymous", "true")];
        let value = ring_tables(&names("bkt1,bkt2,bkt3,bkt4"), Some(&names("bkt1,bkt2,bkt3")), "traces");
        let lookup = |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()).or_else(|| (name == "ring_tables").then(|| value.clone()));
        let proxy = tempo_s3_shard_core::context::Proxy::new(tempo_s3_shard_core::config::Config::from_lookup(lookup).unwrap());
        assert_eq!(proxy.ring_tables, (2, 2), "{value}");
        assert!(proxy.rings().all(|r| !r.hashed_here()));
        let without_prefix = ring_tables(&names("bkt1,bkt2,bkt3,bkt4"), None, "");
        assert_ne!(without_prefix.split(':').next(), value.split(':').next(), "the prefix is part of a ring's id");
    }

    #[test]
    fn removing_a_bucket_moves_only_its_keys() {
        let plan = analyze("test", &names("shard1,shard2,shard3,shard4"), Some(&names("shard1,shard2,shard3")), "", synthetic_keys(5_000));
        let c = plan.change.unwrap();
        assert!(c.routes.keys().all(|(from, _)| from == "shard4"), "{:?}", c.routes);
        assert_eq!(c.moved_hash_keys, plan.current.hash_keys[3]);
    }
}
