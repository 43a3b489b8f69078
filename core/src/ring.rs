//! Consistent-hash ring placing object keys on backend buckets, bit-for-bit like the original Go proxy.
//!
//! Each bucket gets `replicas` points: the first four bytes (big-endian) of SHA-256(bucket name followed
//! by the decimal replica number, no separator). A key is hashed the same way (see [`hash_key`]) and is
//! owned by the bucket of the first point at or after its hash, wrapping around to the first point. When
//! two buckets produce the same point, the later bucket in configuration order owns it.
//!
//! The component builds its ring on every request (Spin instantiates per request), and 64 buckets
//! are 6,400 SHA-256 hashes, so the work is done only as needed: creating a ring hashes nothing; the
//! first lookup hashes every point once and keeps the best (no table, no sort), and remembers it;
//! only a lookup of another key builds the sorted table. In the component, points of bucket names up to 52 bytes are hashed
//! four at a time with wasm SIMD ([`lanes`]).
//!
//! With a key prefix ([`Ring::with_prefix`], the `key_prefix` variable: Tempo's `prefix`), keys under
//! it hash on the two segments after it, so a prefix does not pile every block of a tenant onto one
//! bucket; without one, placement is the Go proxy's.
//!
//! A ring of [`CACHE_MIN_POINTS`] or more points (or of as many as [`Ring::with_cache_min_points`]
//! says: the `ring_cache` variable) is worth keeping between requests: its sorted table encodes to
//! bytes ([`Ring::table_to_cache`]) under a name derived from the buckets ([`Ring::cache_key`]),
//! and a later request adopts it ([`Ring::load_table`]) instead of hashing. The `ring_tables`
//! variable can give the tables outright ([`Ring::table_entry`] prints one, [`Ring::adopt_given`]
//! takes it), named the same way ([`Ring::table_id`]); such a table is read entry by entry and
//! each answer checked against its neighbours ([`given`]).
//! A loaded table is checked for shape and against its check word when adopted (so a table that
//! lost or changed entries is refused, while one of buckets whose names make identical points, as
//! `shard1` + `10` and `shard11` + `0` do, is not), and every owner it answers is re-hashed (one
//! SHA-256): a point that does not belong to its bucket makes the ring distrust the table and hash.

mod given;
#[cfg(any(test, all(target_arch = "wasm32", target_feature = "simd128")))]
mod lanes;

use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

/// Virtual nodes per bucket used by the original proxy.
pub const DEFAULT_REPLICAS: usize = 100;

/// Rings with fewer points hash faster than a key-value store over the network answers: 800 points
/// (8 buckets) are about 70 µs in wasm.
pub const CACHE_MIN_POINTS: usize = 800;

/// The part of an object key that decides placement: the first two `/`-separated segments when the key
/// has three or more segments (`tenant/block/file` -> `tenant/block`), otherwise the whole key.
///
/// This keeps every file of one Tempo block on the same bucket.
pub fn hash_key(key: &str) -> &str {
    hash_key_with_prefix(key, "")
}

/// [`hash_key`] for keys under a common `prefix` (Tempo's `storage.trace.s3.prefix`, normalised by
/// [`normalize_prefix`]): a key under it hashes on the two segments after it (`PREFIX/tenant/block/file`
/// -> `tenant/block`); any other key, and every key when `prefix` is empty, hashes as [`hash_key`].
pub fn hash_key_with_prefix<'a>(key: &'a str, prefix: &str) -> &'a str {
    let rest = match key.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')) {
        Some(rest) if !prefix.is_empty() => rest,
        _ => key,
    };
    first_two_segments(rest)
}

/// The longest `key_prefix` accepted: an S3 key is at most 1,024 bytes, and room must remain for
/// `tenant/block/file` under it.
pub const MAX_PREFIX_LEN: usize = 512;

/// A key prefix as the ring uses it: surrounding slashes removed (`/traces/`, `traces/` and `traces`
/// are the same prefix), `a/b` kept. The error says what is wrong with it: an empty segment
/// (`a//b`), or more than [`MAX_PREFIX_LEN`] bytes.
pub fn normalize_prefix(raw: &str) -> Result<String, String> {
    let prefix = raw.trim().trim_matches('/');
    if prefix.len() > MAX_PREFIX_LEN {
        return Err(format!("is {} bytes long; keep it to {MAX_PREFIX_LEN} bytes (it must match Tempo's storage.trace.s3.prefix)", prefix.len()));
    }
    if prefix.split('/').any(str::is_empty) && !prefix.is_empty() {
        return Err(format!("{prefix:?} has an empty path segment; write it as Tempo's prefix, e.g. \"traces\" or \"team/traces\""));
    }
    if prefix.chars().any(char::is_control) {
        return Err("contains a control character; write it as Tempo's prefix, e.g. \"traces\"".into());
    }
    Ok(prefix.to_string())
}

/// The first two `/`-separated segments of a key with three or more, else the whole key.
fn first_two_segments(key: &str) -> &str {
    let mut slashes = key.match_indices('/').map(|(i, _)| i);
    match (slashes.next(), slashes.next()) {
        (Some(_), Some(second)) => &key[..second],
        _ => key,
    }
}

/// First four bytes, big-endian, of a finished SHA-256 state.
fn point_of(hasher: Sha256) -> u32 {
    let digest = hasher.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// The ring position of a hash key.
fn key_point(hash_key: &str) -> u32 {
    point_of(Sha256::new_with_prefix(hash_key.as_bytes()))
}

/// Writes `n` in decimal into `buf` and returns the digits.
fn decimal(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[start..];
        }
    }
}

/// The longest message SHA-256 pads into a single 64-byte block.
#[cfg(any(test, all(target_arch = "wasm32", target_feature = "simd128")))]
const ONE_BLOCK: usize = 55;

/// Calls `out(replica, point)` for each of `bucket`'s `replicas` points, in replica order.
fn bucket_points(bucket: &str, replicas: usize, mut out: impl FnMut(usize, u32)) {
    let mut digits = [0u8; 20];
    // In wasm, four lanes of SIMD; natively `sha2` (with the CPU's SHA extensions) is faster.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if bucket.len() + decimal(replicas.saturating_sub(1), &mut digits).len() <= ONE_BLOCK {
        bucket_points_in_lanes(bucket.as_bytes(), replicas, lanes::first_words_simd, out);
        return;
    }
    let prefix = Sha256::new_with_prefix(bucket.as_bytes());
    for replica in 0..replicas {
        let mut hasher = prefix.clone();
        hasher.update(decimal(replica, &mut digits));
        out(replica, point_of(hasher));
    }
}

/// [`bucket_points`] four replicas at a time with `hash4`, for names short enough that
/// `bucket + replica` fits one block.
#[cfg(any(test, all(target_arch = "wasm32", target_feature = "simd128")))]
fn bucket_points_in_lanes(
    bucket: &[u8],
    replicas: usize,
    hash4: impl Fn(&[[u8; 64]; 4]) -> [u32; 4],
    mut out: impl FnMut(usize, u32),
) {
    let mut template = [0u8; 64];
    template[..bucket.len()].copy_from_slice(bucket);
    let mut blocks = [template; 4];
    let mut digits = [0u8; 20];
    for first in (0..replicas).step_by(4) {
        for (lane, block) in blocks.iter_mut().enumerate() {
            // Lanes past the last replica repeat it; their points are not reported.
            let replica = (first + lane).min(replicas - 1);
            let digits = decimal(replica, &mut digits);
            let len = bucket.len() + digits.len();
            block[bucket.len()..len].copy_from_slice(digits);
            block[len] = 0x80;
            block[len + 1..56].fill(0);
            block[56..].copy_from_slice(&(len as u64 * 8).to_be_bytes());
        }
        let points = hash4(&blocks);
        for (lane, point) in points.into_iter().enumerate().take(replicas - first) {
            out(first + lane, point);
        }
    }
}

/// A consistent-hash ring over an ordered list of backend buckets.
#[derive(Debug)]
pub struct Ring {
    buckets: Vec<String>,
    replicas: usize,
    /// Keys under this prefix hash on the two segments after it ([`hash_key_with_prefix`]); empty
    /// for none.
    prefix: String,
    /// The fewest points for the table to be worth caching; `None`: never cached.
    cache_min_points: Option<usize>,
    /// Sorted, deduplicated points, each [`entry`]`(point, bucket index, replica)`, once a lookup
    /// built them or a cached table was loaded.
    table: OnceLock<Table>,
    /// The table `ring_tables` gave, adopted in its place ([`Ring::adopt_given`]).
    given: OnceLock<given::Given>,
    /// What the scan of the first lookup found, as [`SCANNED`]` | point << 16 | bucket index` (0
    /// before it): the same key again costs nothing, another key builds the table.
    scanned: AtomicU64,
    /// A loaded or given table answered an owner whose point it does not have: hash instead of
    /// trusting it.
    distrusted: AtomicBool,
}

/// The sorted points as big-endian [`entry`] values, 8 bytes each: the same bytes whether hashed
/// here or adopted from a cache, so a cached table is searched where it landed, without decoding.
#[derive(Debug, Clone)]
struct Table {
    bytes: Vec<u8>,
    /// Adopted from a cache rather than hashed here.
    loaded: bool,
}

impl Table {
    fn hashed(entries: &[u64]) -> Table {
        Table { bytes: entries.iter().flat_map(|e| e.to_be_bytes()).collect(), loaded: false }
    }

    fn len(&self) -> usize {
        self.bytes.len() / 8
    }

    fn entry(&self, i: usize) -> u64 {
        be_u64(&self.bytes[i * 8..i * 8 + 8])
    }

    fn entries(&self) -> impl Iterator<Item = u64> + '_ {
        self.bytes.chunks_exact(8).map(be_u64)
    }

    /// The bytes to cache: the entries, then their [`check_word`].
    fn to_cache(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.bytes.len() + 8);
        bytes.extend_from_slice(&self.bytes);
        bytes.extend_from_slice(&check_word(self.entries()).to_be_bytes());
        bytes
    }

    /// The first entry at or after `point`, wrapping around to the first.
    fn successor(&self, point: u32) -> u64 {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if entry_point(self.entry(mid)) < point {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if self.len() == 0 {
            return 0;
        }
        self.entry(if lo == self.len() { 0 } else { lo })
    }
}

/// A fold of a table's entries (and their number) stored after them in a cached table: a table that
/// lost, gained or changed entries in the store no longer matches it. Cheap (one multiply per
/// entry), as it runs on every request that adopts a table.
fn check_word(entries: impl Iterator<Item = u64>) -> u64 {
    let mut count = 0u64;
    let folded = entries.fold(0x243f_6a88_85a3_08d3u64, |h, e| {
        count += 1;
        let h = (h ^ e).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^ h >> 29
    });
    folded ^ count
}

fn be_u64(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(bytes);
    u64::from_be_bytes(word)
}

/// A table entry: sorting entries orders points, and equal points by bucket index.
fn entry(point: u32, index: u16, replica: u16) -> u64 {
    u64::from(point) << 32 | u64::from(index) << 16 | u64::from(replica)
}

fn entry_point(entry: u64) -> u32 {
    (entry >> 32) as u32
}

fn entry_index(entry: u64) -> usize {
    usize::from((entry >> 16) as u16)
}

fn entry_replica(entry: u64) -> usize {
    usize::from(entry as u16)
}

/// Marks [`Ring::scanned`] as set.
const SCANNED: u64 = 1 << 48;

impl Clone for Ring {
    fn clone(&self) -> Ring {
        Ring {
            buckets: self.buckets.clone(),
            replicas: self.replicas,
            prefix: self.prefix.clone(),
            cache_min_points: self.cache_min_points,
            table: self.table.clone(),
            given: self.given.clone(),
            scanned: AtomicU64::new(self.scanned.load(Ordering::Relaxed)),
            distrusted: AtomicBool::new(self.distrusted.load(Ordering::Relaxed)),
        }
    }
}

impl Ring {
    /// A ring with [`DEFAULT_REPLICAS`] points per bucket.
    ///
    /// Panics if `buckets` is empty or has more than 65536 entries (configuration validation rules out
    /// the former).
    pub fn new(buckets: &[String]) -> Ring {
        Ring::with_replicas(buckets, DEFAULT_REPLICAS)
    }

    /// A ring with `replicas` points per bucket (`replicas` must be at least 1). Nothing is hashed
    /// until the first lookup.
    ///
    /// Panics if `buckets` is empty, has more than 65536 entries, or `replicas` is 0 or above 65536.
    pub fn with_replicas(buckets: &[String], replicas: usize) -> Ring {
        assert!(!buckets.is_empty(), "a ring needs at least one bucket");
        assert!(replicas > 0, "a ring needs at least one replica per bucket");
        assert!(replicas <= usize::from(u16::MAX) + 1, "too many replicas for a ring");
        assert!(buckets.len() <= usize::from(u16::MAX) + 1, "too many buckets for a ring");
        Ring {
            buckets: buckets.to_vec(),
            replicas,
            prefix: String::new(),
            cache_min_points: Some(CACHE_MIN_POINTS),
            table: OnceLock::new(),
            given: OnceLock::new(),
            scanned: AtomicU64::new(0),
            distrusted: AtomicBool::new(false),
        }
    }

    /// The same ring placing keys under `prefix` by the two segments after it (see
    /// [`hash_key_with_prefix`]); surrounding slashes are ignored, an empty prefix changes nothing.
    /// Validate operator input with [`normalize_prefix`] first.
    pub fn with_prefix(mut self, prefix: &str) -> Ring {
        self.prefix = prefix.trim_matches('/').to_string();
        self
    }

    /// The same ring, its table worth caching from `min_points` points (`None`: never); without
    /// this, from [`CACHE_MIN_POINTS`]. See [`crate::config::RingCache`].
    pub fn with_cache_min_points(mut self, min_points: Option<usize>) -> Ring {
        self.cache_min_points = min_points;
        self
    }

    /// The key prefix this ring places under (empty for none).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The part of `key` that decides its owner on this ring: [`hash_key_with_prefix`] with the
    /// ring's prefix.
    pub fn hash_key<'a>(&self, key: &'a str) -> &'a str {
        hash_key_with_prefix(key, &self.prefix)
    }

    /// Calls `out(point, bucket index, replica)` for every point, bucket by bucket in configuration order.
    fn each_point(&self, mut out: impl FnMut(u32, u16, u16)) {
        for (index, bucket) in self.buckets.iter().enumerate() {
            bucket_points(bucket, self.replicas, |replica, point| out(point, index as u16, replica as u16));
        }
    }

    /// Hash every point: their entries, sorted (equal points by bucket index).
    fn sorted_points(&self) -> Vec<u64> {
        let mut points = Vec::with_capacity(self.buckets.len() * self.replicas);
        self.each_point(|point, index, replica| points.push(entry(point, index, replica)));
        points.sort_unstable();
        points
    }

    /// Hash every point into a sorted, deduplicated table.
    fn compute_table(&self) -> Vec<u64> {
        let points = self.sorted_points();
        // Equal points sort by bucket index; keep the highest (the later bucket wins).
        let mut table: Vec<u64> = Vec::with_capacity(points.len());
        for entry in points {
            match table.last_mut() {
                Some(last) if entry_point(*last) == entry_point(entry) => *last = entry,
                _ => table.push(entry),
            }
        }
        table
    }

    /// The sorted table of points, built on first use.
    fn table(&self) -> &Table {
        self.table.get_or_init(|| Table::hashed(&self.compute_table()))
    }

    /// Build the table now (e.g. when a cache had none to offer, so that it can be stored after).
    pub fn build_table(&self) {
        self.table();
    }

    /// The name a cached table of this ring is stored under, if the ring is large enough to be
    /// worth caching ([`Ring::with_cache_min_points`]): `tempo-s3-shard/ring/v2/` and [`Ring::table_id`].
    pub fn cache_key(&self) -> Option<String> {
        if self.cache_min_points.is_none_or(|min| self.buckets.len() * self.replicas < min) {
            return None;
        }
        Some(format!("tempo-s3-shard/ring/v2/{}", self.table_id()))
    }

    /// What this ring's table is known by, in the key-value store and in the `ring_tables` variable:
    /// 64 hex digits of a SHA-256 of the replicas, the buckets in order and the key prefix, so a
    /// configuration change never finds an old table.
    pub fn table_id(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update((self.replicas as u64).to_be_bytes());
        for bucket in &self.buckets {
            hasher.update((bucket.len() as u64).to_be_bytes());
            hasher.update(bucket.as_bytes());
        }
        if !self.prefix.is_empty() {
            // No bucket name is u64::MAX bytes long: this cannot read as one more bucket. Without
            // a prefix the name stays what it always was.
            hasher.update(u64::MAX.to_be_bytes());
            hasher.update((self.prefix.len() as u64).to_be_bytes());
            hasher.update(self.prefix.as_bytes());
        }
        crate::codec::hex(&hasher.finalize())
    }

    /// Whether the ring already has its table (hashed, or adopted with [`Ring::load_table`] or
    /// [`Ring::adopt_given`]).
    pub fn has_table(&self) -> bool {
        self.table.get().is_some() || self.given.get().is_some()
    }

    /// The table as the `ring_tables` variable carries it: [`Ring::table_id`], `:`, and every
    /// point's entry, sorted, in base64 (hashed now): the text [`Ring::adopt_given`] takes.
    pub fn table_entry(&self) -> String {
        format!("{}:{}", self.table_id(), given::Given::encode(&self.sorted_points()))
    }

    /// Adopt the text of a [`Ring::table_entry`] as this ring's table, read entry by entry as
    /// lookups need it ([`given`]). Returns false, changing nothing, when it is not exactly as long
    /// as this ring's points take or the ring has a table already.
    pub fn adopt_given(&self, text: String) -> bool {
        let table = given::Given::new(text, self.buckets.len() * self.replicas);
        !self.has_table() && table.is_some_and(|table| self.given.set(table).is_ok())
    }

    /// For a ring with a given table: whether the whole of it is this ring's (every entry one of
    /// its points, in order, none twice: with the length checked, every point). Hashes every
    /// point, so only the health check asks.
    pub fn given_table_is_whole(&self) -> Option<bool> {
        let table = self.given.get()?;
        let mut previous: Option<u64> = None;
        Some(table.entries().all(|entry| {
            let in_order = entry.is_some_and(|e| previous.is_none_or(|p| p < e) && self.is_genuine(e));
            previous = entry;
            in_order
        }))
    }

    /// Adopt a table from [`Ring::table_to_cache`] of a ring over the same buckets. Returns false,
    /// changing nothing, when the bytes are not such a table (wrong length, more points than the
    /// ring has, unsorted, out-of-range bucket or replica, a check word that does not match) or a
    /// table is already in use.
    pub fn load_table(&self, mut bytes: Vec<u8>) -> bool {
        let total = self.buckets.len() * self.replicas;
        if bytes.len() < 16 || !bytes.len().is_multiple_of(8) || bytes.len() / 8 - 1 > total {
            return false;
        }
        let check = be_u64(&bytes[bytes.len() - 8..]);
        bytes.truncate(bytes.len() - 8);
        let table = Table { bytes, loaded: true };
        // One pass over the entries: their shape, and the check word they fold to.
        let (mut previous, mut well_formed): (Option<u32>, bool) = (None, true);
        let word = check_word(table.entries().inspect(|&e| {
            well_formed &= previous.is_none_or(|p| p < entry_point(e));
            well_formed &= self.in_range(e);
            previous = Some(entry_point(e));
        }));
        well_formed && word == check && self.table.set(table).is_ok()
    }

    /// The table to store in a cache after this request, if this ring hashed it (rather than loading
    /// a good one): the bytes [`Ring::load_table`] takes.
    pub fn table_to_cache(&self) -> Option<Vec<u8>> {
        let table = self.table.get()?;
        if self.distrusted.load(Ordering::Relaxed) {
            Some(Table::hashed(&self.compute_table()).to_cache())
        } else if table.loaded {
            None
        } else {
            Some(table.to_cache())
        }
    }

    /// Whether `entry` names one of this ring's buckets and replicas.
    fn in_range(&self, entry: u64) -> bool {
        entry_index(entry) < self.buckets.len() && entry_replica(entry) < self.replicas
    }

    /// Whether `entry` is really `(point, bucket, replica)` of this ring.
    fn is_genuine(&self, entry: u64) -> bool {
        if !self.in_range(entry) {
            return false;
        }
        let mut digits = [0u8; 20];
        let mut hasher = Sha256::new_with_prefix(self.buckets[entry_index(entry)].as_bytes());
        hasher.update(decimal(entry_replica(entry), &mut digits));
        point_of(hasher) == entry_point(entry)
    }

    /// The owner of ring position `point` found while hashing the points, without a table: the point
    /// at the smallest clockwise distance (ties to the later bucket).
    fn scan(&self, point: u32) -> usize {
        let mut best: Option<(u32, u16)> = None;
        self.each_point(|p, index, _| {
            let distance = p.wrapping_sub(point);
            if best.is_none_or(|(d, _)| distance <= d) {
                best = Some((distance, index));
            }
        });
        best.map_or(0, |(_, index)| usize::from(index))
    }

    /// The index (into [`Ring::buckets`]) of the bucket that owns `key`.
    pub fn owner_index(&self, key: &str) -> usize {
        self.owner_at(key_point(self.hash_key(key)))
    }

    /// The index of the bucket that owns ring position `point`.
    fn owner_at(&self, point: u32) -> usize {
        if let Some(index) = self.given_owner(point) {
            return index;
        }
        if self.table.get().is_none() {
            let scanned = self.scanned.load(Ordering::Relaxed);
            if scanned == 0 {
                let index = self.scan(point);
                self.scanned.store(SCANNED | u64::from(point) << 16 | index as u64, Ordering::Relaxed);
                return index;
            }
            if (scanned >> 16) as u32 == point {
                return (scanned & 0xffff) as usize;
            }
        }
        if self.distrusted.load(Ordering::Relaxed) {
            return self.scan(point);
        }
        let table = self.table();
        let entry = table.successor(point);
        if table.loaded && !self.is_genuine(entry) {
            self.distrusted.store(true, Ordering::Relaxed);
            return self.scan(point);
        }
        entry_index(entry)
    }

    /// The owner of `point` in the given table, when the ring has one it trusts and every entry
    /// the answer rests on is one of the ring's points (else the ring distrusts the table).
    fn given_owner(&self, point: u32) -> Option<usize> {
        let table = self.given.get().filter(|_| !self.distrusted.load(Ordering::Relaxed))?;
        match table.lookup(point) {
            Some(found) if found.deciding.iter().all(|&e| self.is_genuine(e)) => Some(entry_index(found.owner)),
            _ => {
                self.distrusted.store(true, Ordering::Relaxed);
                None
            }
        }
    }

    /// Whether this ring hashed its points (a lookup's scan or a table built here) rather than
    /// finding every owner in a loaded table: what a cached table is there to spare.
    pub fn hashed_here(&self) -> bool {
        self.scanned.load(Ordering::Relaxed) != 0 || self.table.get().is_some_and(|t| !t.loaded)
    }

    /// The name of the bucket that owns `key`.
    pub fn owner(&self, key: &str) -> &str {
        &self.buckets[self.owner_index(key)]
    }

    /// The backend buckets, in configuration order.
    pub fn buckets(&self) -> &[String] {
        &self.buckets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn hash_key_cases() {
        let cases = [
            ("a/b/c/d", "a/b"),
            ("a/b/c", "a/b"),
            ("a//b", "a/"),
            ("/a/b", "/a"),
            ("//", "/"),
            ("a/b", "a/b"),
            ("a/", "a/"),
            ("a", "a"),
            ("", ""),
            ("tenant/block/data.parquet", "tenant/block"),
        ];
        for (key, want) in cases {
            assert_eq!(hash_key(key), want, "hash_key({key:?})");
        }
    }

    #[test]
    fn decimal_digits() {
        let mut buf = [0u8; 20];
        assert_eq!(decimal(0, &mut buf), b"0");
        assert_eq!(decimal(7, &mut buf), b"7");
        assert_eq!(decimal(99, &mut buf), b"99");
        assert_eq!(decimal(100, &mut buf), b"100");
        assert_eq!(decimal(usize::MAX, &mut buf), usize::MAX.to_string().as_bytes());
    }

    /// The built table as (point, bucket index) pairs.
    fn points(ring: &Ring) -> Vec<(u32, u16)> {
        ring.table().entries().map(|e| (entry_point(e), entry_index(e) as u16)).collect()
    }

    #[test]
    fn points_match_naive_string_hashing() {
        let buckets = names(&["shard1", "shard2", "shard3"]);
        let ring = Ring::new(&buckets);
        let points = points(&ring);
        assert_eq!(points.len(), 300);
        assert!(points.windows(2).all(|w| w[0].0 < w[1].0));
        for (b, bucket) in buckets.iter().enumerate() {
            for i in 0..100 {
                let p = key_point(&format!("{bucket}{i}"));
                assert!(points.contains(&(p, b as u16)), "{bucket}{i}");
            }
        }
    }

    #[test]
    fn lanes_agree_with_sha2_for_every_one_block_length() {
        // Every name length whose points fit one block, across the 1-, 2- and 3-digit replicas and
        // a replica count that leaves lanes unused.
        for len in 0..=ONE_BLOCK - 3 {
            let bucket: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            for replicas in [1, 3, 5, 103] {
                let mut seen = vec![];
                let mut check = |replica: usize, point: u32| {
                    assert_eq!(point, key_point(&format!("{bucket}{replica}")), "{bucket:?} replica {replica}");
                    seen.push(replica);
                };
                bucket_points_in_lanes(bucket.as_bytes(), replicas, lanes::first_words::<crate::sha256x4::Portable>, &mut check);
                assert_eq!(seen, (0..replicas).collect::<Vec<_>>());
                bucket_points(&bucket, replicas, |replica, point| {
                    assert_eq!(point, key_point(&format!("{bucket}{replica}")), "{bucket:?} replica {replica}");
                });
            }
        }
    }

    #[test]
    fn long_bucket_names_hash_like_short_ones() {
        let long = "b".repeat(63);
        let almost = "c".repeat(ONE_BLOCK - 2); // "99" still fits one block, "100" does not
        for bucket in [long, almost] {
            let mut n = 0;
            bucket_points(&bucket, 120, |replica, point| {
                assert_eq!(point, key_point(&format!("{bucket}{replica}")), "{bucket:?} replica {replica}");
                n += 1;
            });
            assert_eq!(n, 120);
        }
    }

    #[test]
    fn first_lookup_scan_agrees_with_the_table() {
        let buckets: Vec<String> = (0..16).map(|i| format!("tempo-traces-{i:02}")).collect();
        let table = Ring::new(&buckets);
        let _ = table.owner_index("build the table");
        let _ = table.owner_index("now it is built");
        assert!(table.table.get().is_some());
        for i in 0..2000 {
            let key = format!("tenant/block-{i}/data.parquet");
            let fresh = Ring::new(&buckets);
            assert_eq!(fresh.owner_index(&key), table.owner_index(&key), "{key}");
            assert!(fresh.table.get().is_none(), "a single lookup must not build the table");
        }
    }

    #[test]
    fn the_same_key_again_builds_no_table() {
        let buckets: Vec<String> = (0..8).map(|i| format!("shard{i}")).collect();
        let ring = Ring::new(&buckets);
        let key = "tenant/block-7/meta.json";
        let owner = ring.owner_index(key);
        assert_eq!(ring.owner_index("tenant/block-7/data.parquet"), owner, "same hash key");
        assert_eq!(ring.owner(key), buckets[owner]);
        assert!(ring.table.get().is_none(), "looking up one key twice must not build the table");
        let other = (0..100).map(|i| format!("other/block-{i}/x")).find(|k| ring.owner_index(k) != owner);
        assert!(other.is_some() && ring.table.get().is_some(), "another key builds the table");
        assert_eq!(ring.owner_index(key), owner);
    }

    fn sixteen() -> Vec<String> {
        (0..16).map(|i| format!("tempo-traces-{i:02}")).collect()
    }

    #[test]
    fn a_cached_table_places_keys_exactly_like_hashing() {
        let buckets = sixteen();
        let hashed = Ring::new(&buckets);
        hashed.build_table();
        let bytes = hashed.table_to_cache().expect("a hashed table is worth storing");
        assert_eq!(bytes.len(), 8 * hashed.table().len() + 8, "the entries and their check word");
        let cached = Ring::new(&buckets);
        assert!(cached.load_table(bytes.clone()));
        for i in 0..2000 {
            let key = format!("tenant/block-{i}/data.parquet");
            assert_eq!(cached.owner_index(&key), hashed.owner_index(&key), "{key}");
        }
        assert!(!cached.distrusted.load(Ordering::Relaxed));
        assert_eq!(cached.table_to_cache(), None, "a good loaded table needs no storing again");
        assert!(!cached.load_table(bytes), "a ring adopts one table");
    }

    #[test]
    fn cache_keys_name_the_buckets_in_order_and_small_rings_have_none() {
        assert_eq!(Ring::new(&names(&["a", "b", "c"])).cache_key(), None);
        let buckets = sixteen();
        let key = Ring::new(&buckets).cache_key().expect("1600 points are worth caching");
        assert!(key.starts_with("tempo-s3-shard/ring/v2/"), "{key}");
        assert_eq!(Ring::new(&buckets).cache_key().as_deref(), Some(key.as_str()));
        let mut reordered = buckets.clone();
        reordered.swap(0, 1);
        assert_ne!(Ring::new(&reordered).cache_key().as_deref(), Some(key.as_str()));
        assert_ne!(Ring::with_replicas(&buckets, 101).cache_key().as_deref(), Some(key.as_str()));
        // Names are length-prefixed: ["ab", "c"] and ["a", "bc"] differ.
        let two = |a: &str, b: &str| Ring::with_replicas(&names(&[a, b]), 500).cache_key();
        assert_ne!(two("ab", "c"), two("a", "bc"));
    }

    #[test]
    fn the_cache_threshold_decides_which_rings_have_a_cache_key() {
        let small = names(&["a", "b", "c"]);
        let always = Ring::new(&small).with_cache_min_points(Some(1)).cache_key().expect("always: every ring");
        assert!(always.starts_with("tempo-s3-shard/ring/v2/"), "{always}");
        // The threshold only decides whether to cache, never the name: the table is the same.
        let forced = Ring::new(&sixteen()).with_cache_min_points(Some(1)).cache_key();
        assert_eq!(forced, Ring::new(&sixteen()).cache_key());
        assert_eq!(Ring::new(&sixteen()).with_cache_min_points(None).cache_key(), None, "never");
        assert_eq!(Ring::new(&small).with_cache_min_points(Some(301)).cache_key(), None, "300 points < 301");
        assert!(Ring::new(&small).with_cache_min_points(Some(300)).cache_key().is_some(), "300 points >= 300");
    }

    #[test]
    fn malformed_cached_tables_are_refused() {
        let buckets = sixteen();
        let hashed = Ring::new(&buckets);
        hashed.build_table();
        let good = hashed.table_to_cache().unwrap();
        let entries: Vec<u64> = hashed.table().entries().collect();
        // Well checked, so that each case is refused for its own fault.
        let encode = |entries: &[u64]| Table::hashed(entries).to_cache();
        let mut unsorted = entries.clone();
        unsorted.swap(10, 11);
        let mut bad_bucket = entries.clone();
        bad_bucket[5] = entry(entry_point(bad_bucket[5]), 16, 0);
        let mut bad_replica = entries.clone();
        bad_replica[5] = entry(entry_point(bad_replica[5]), 0, 100);
        let mut changed = good.clone();
        changed[5 * 8 + 1] ^= 1;
        let mut one_lost = good.clone();
        one_lost.drain(40..48);
        let cases: [(&str, Vec<u8>); 10] = [
            ("empty", Vec::new()),
            ("only a check word", good[good.len() - 8..].to_vec()),
            ("an entry changed", changed),
            ("an entry lost", one_lost),
            ("not whole entries", good[..good.len() - 3].to_vec()),
            ("half the points", good[..good.len() / 2].to_vec()),
            ("unsorted", encode(&unsorted)),
            ("bucket out of range", encode(&bad_bucket)),
            ("replica out of range", encode(&bad_replica)),
            ("too many points", [good.clone(), good[..8].to_vec()].concat()),
        ];
        for (what, bytes) in cases {
            let ring = Ring::new(&buckets);
            assert!(!ring.load_table(bytes), "{what}");
            assert!(ring.table.get().is_none(), "{what}: nothing adopted");
        }
    }

    #[test]
    fn a_table_of_other_buckets_is_distrusted_and_replaced() {
        let buckets = sixteen();
        let others: Vec<String> = (0..16).map(|i| format!("other-bucket-{i:02}")).collect();
        let foreign = Ring::new(&others);
        foreign.build_table();
        let ring = Ring::new(&buckets);
        // Same shape, so it loads; its points are not this ring's.
        assert!(ring.load_table(foreign.table_to_cache().unwrap()));
        let truth = Ring::new(&buckets);
        for i in 0..200 {
            let key = format!("tenant/block-{i}/meta.json");
            assert_eq!(ring.owner_index(&key), truth.owner_index(&key), "{key}");
        }
        assert!(ring.distrusted.load(Ordering::Relaxed));
        truth.build_table();
        assert_eq!(ring.table_to_cache(), truth.table_to_cache(), "the replacement is the real table");
    }

    #[test]
    fn a_table_with_identical_points_is_cached_too() {
        // shard1..shard15: "shard1" + "10" is "shard11" + "0", and so on: 50 of 1600 points merge.
        let buckets: Vec<String> = (0..16).map(|i| format!("shard{i}")).collect();
        let hashed = Ring::new(&buckets);
        hashed.build_table();
        assert!(hashed.table().len() < 1600 - 1600 / 64, "the names collide");
        let cached = Ring::new(&buckets);
        assert!(cached.load_table(hashed.table_to_cache().unwrap()));
        for i in 0..500 {
            let key = format!("tenant/block-{i}/data.parquet");
            assert_eq!(cached.owner_index(&key), hashed.owner_index(&key), "{key}");
        }
        assert!(!cached.hashed_here());
    }

    /// Four buckets, two of whose names make ten identical points ("shard1" + "10" is "shard11" + "0").
    fn colliding() -> Vec<String> {
        names(&["shard1", "shard11", "shard2", "shard3"])
    }

    /// Ring positions at, just below and just above every point of `ring`, and both ends.
    fn around_every_point(ring: &Ring) -> Vec<u32> {
        let around = ring.sorted_points().into_iter().flat_map(|e| [entry_point(e).wrapping_sub(1), entry_point(e), entry_point(e).wrapping_add(1)]);
        around.chain([0, u32::MAX]).collect()
    }

    #[test]
    fn a_given_table_places_every_position_exactly_like_hashing_and_hashes_nothing() {
        for buckets in [colliding(), sixteen()] {
            let hashed = Ring::new(&buckets);
            let entry = hashed.table_entry();
            let (id, text) = entry.split_once(':').unwrap();
            assert_eq!(id, hashed.table_id());
            let given = Ring::new(&buckets);
            assert!(given.adopt_given(text.to_string()));
            for point in around_every_point(&hashed) {
                assert_eq!(given.owner_at(point), hashed.owner_at(point), "{point}");
            }
            for i in 0..500 {
                let key = format!("tenant/block-{i}/data.parquet");
                assert_eq!(given.owner_index(&key), hashed.owner_index(&key), "{key}");
            }
            assert!(!given.hashed_here() && !given.distrusted.load(Ordering::Relaxed));
            assert_eq!(given.table_to_cache(), None, "nothing to store");
            assert_eq!(given.given_table_is_whole(), Some(true));
            assert!(!given.adopt_given(text.to_string()), "a ring adopts one table");
        }
    }

    #[test]
    fn a_given_table_of_the_wrong_length_is_not_adopted() {
        let buckets = colliding();
        let entry = Ring::new(&buckets).table_entry();
        let text = entry.split_once(':').unwrap().1;
        let fewer = Ring::new(&buckets[..3]).table_entry().split_once(':').unwrap().1.to_string();
        for (what, bad) in [("cut short", text[..text.len() - 4].to_string()), ("longer", format!("{text}AAAA")), ("of three buckets", fewer), ("empty", String::new())] {
            let ring = Ring::new(&buckets);
            assert!(!ring.adopt_given(bad), "{what}");
            assert!(!ring.has_table() && ring.given_table_is_whole().is_none(), "{what}");
        }
    }

    #[test]
    fn a_damaged_given_table_never_misplaces_a_position() {
        let buckets = colliding();
        let truth = Ring::new(&buckets);
        let entry = truth.table_entry();
        let text = entry.split_once(':').unwrap().1;
        let positions = around_every_point(&truth);
        // Every symbol but the padding, changed to another symbol and to a byte outside base64.
        let symbols = text.trim_end_matches('=').len();
        for at in (0..symbols).step_by(3) {
            for with in [if text.as_bytes()[at] == b'A' { b'B' } else { b'A' }, b'*'] {
                let mut damaged = text.as_bytes().to_vec();
                damaged[at] = with;
                let ring = Ring::new(&buckets);
                assert!(ring.adopt_given(String::from_utf8(damaged).unwrap()), "same length: adopted");
                // The entries the changed symbol is part of, and their neighbours.
                let entry = at / 4 * 3 / 8;
                let near = &positions[(entry * 3).saturating_sub(6)..(entry * 3 + 9).min(positions.len())];
                for &point in near.iter().chain(&positions[positions.len() - 2..]) {
                    assert_eq!(ring.owner_at(point), truth.owner_at(point), "symbol {at} as {}, position {point}", with as char);
                }
                assert_eq!(ring.given_table_is_whole(), Some(false), "symbol {at} as {}", with as char);
            }
        }
    }

    #[test]
    fn identical_points_go_to_the_later_bucket() {
        // "shard1" + "10".."19" hash the same strings as "shard11" + "0".."9".
        let ring = Ring::new(&names(&["shard1", "shard11"]));
        let points = points(&ring);
        assert_eq!(points.len(), 190);
        for i in 0..10 {
            let shared = key_point(&format!("shard11{i}"));
            let owners: Vec<_> = points.iter().filter(|(p, _)| *p == shared).collect();
            assert_eq!(owners, [&(shared, 1)], "shard11{i}");
            // A key landing exactly on the shared point: the scan must agree.
            let fresh = Ring::new(&names(&["shard1", "shard11"]));
            assert_eq!(fresh.scan(shared), 1, "scan at shard11{i}");
        }
    }

    #[test]
    fn single_bucket_owns_everything() {
        let ring = Ring::new(&names(&["only-one"]));
        for key in ["", "a", "a/b/c", "zzzz/yyyy/xxxx"] {
            assert_eq!(ring.owner_index(key), 0);
            assert_eq!(ring.owner(key), "only-one");
        }
    }

    #[test]
    fn keys_past_the_last_point_wrap_to_the_first() {
        let ring = Ring::with_replicas(&names(&["x", "y"]), 1);
        let points = points(&ring);
        let (first, last) = (points[0], points[points.len() - 1]);
        // Find a key hashing after the last point; it must land on the first point's bucket.
        let key = (0..100_000)
            .map(|i| format!("k{i}"))
            .find(|k| key_point(k) > last.0)
            .expect("some key hashes past the last point");
        assert_eq!(ring.owner_index(&key), usize::from(first.1));
        let fresh = Ring::with_replicas(&names(&["x", "y"]), 1);
        assert_eq!(fresh.owner_index(&key), usize::from(first.1), "first lookup (scan) wraps too");
    }

    #[test]
    fn files_of_one_block_share_an_owner() {
        let buckets: Vec<String> = (1..=8).map(|i| format!("shard{i}")).collect();
        let ring = Ring::new(&buckets);
        let mut owners = std::collections::HashSet::new();
        for block in 0..50 {
            let block_owner = ring.owner(&format!("tenant/block-{block}/meta.json"));
            owners.insert(block_owner.to_string());
            for file in ["data.parquet", "bloom-0", "bloom-1", "index", "nested/deeper/file"] {
                assert_eq!(ring.owner(&format!("tenant/block-{block}/{file}")), block_owner);
            }
        }
        assert!(owners.len() > 1, "50 blocks should spread over more than one bucket");
        assert_eq!(ring.buckets(), buckets.as_slice());
    }

    #[test]
    fn hash_keys_under_a_prefix_skip_it() {
        let cases = [
            ("traces/tenant/block/data.parquet", "tenant/block"),
            ("traces/tenant/block/nested/file", "tenant/block"),
            ("traces/tenant/index.json.gz", "tenant/index.json.gz"),
            ("traces/work.json", "work.json"),
            ("traces/tenant", "tenant"),
            ("traces/", ""),
            ("traces", "traces"),
            ("tracesX/tenant/block/f", "tracesX/tenant"),
            ("other/tenant/block/f", "other/tenant"),
            ("tenant/block/f", "tenant/block"),
        ];
        for (key, want) in cases {
            assert_eq!(hash_key_with_prefix(key, "traces"), want, "{key:?}");
        }
        assert_eq!(hash_key_with_prefix("a/b/c/d/e", "a/b"), "c/d");
        assert_eq!(hash_key_with_prefix("a/b/c/d", ""), hash_key("a/b/c/d"));
    }

    #[test]
    fn prefixes_are_normalised_and_checked() {
        for raw in ["traces", "/traces", "traces/", "/traces/", " traces "] {
            assert_eq!(normalize_prefix(raw).as_deref(), Ok("traces"), "{raw:?}");
        }
        assert_eq!(normalize_prefix("team/traces/").as_deref(), Ok("team/traces"));
        assert_eq!(normalize_prefix("").as_deref(), Ok(""));
        assert_eq!(normalize_prefix("/").as_deref(), Ok(""));
        assert!(normalize_prefix("a//b").unwrap_err().contains("empty path segment"));
        assert!(normalize_prefix(&"p".repeat(MAX_PREFIX_LEN + 1)).unwrap_err().contains("512 bytes"));
        assert!(normalize_prefix("a\nb").unwrap_err().contains("control character"));
    }

    #[test]
    fn a_prefixed_ring_places_keys_as_if_the_prefix_were_absent() {
        let buckets = sixteen();
        let plain = Ring::new(&buckets);
        let prefixed = Ring::new(&buckets).with_prefix("/traces/");
        assert_eq!(prefixed.prefix(), "traces");
        for i in 0..500 {
            let key = format!("tenant-{}/block-{i}/data.parquet", i % 3);
            assert_eq!(prefixed.owner(&format!("traces/{key}")), plain.owner(&key), "{key}");
            assert_eq!(prefixed.owner(&key), plain.owner(&key), "keys outside the prefix hash as before: {key}");
        }
        let spread: std::collections::HashSet<_> =
            (0..200).map(|i| prefixed.owner(&format!("traces/single-tenant/block-{i}/meta.json"))).collect();
        assert!(spread.len() > 8, "one tenant's blocks spread over the ring, not one bucket: {}", spread.len());
    }

    #[test]
    fn a_prefix_gets_its_own_cache_key_and_none_keeps_the_old_one() {
        let buckets = sixteen();
        let plain = Ring::new(&buckets).cache_key();
        assert_eq!(Ring::new(&buckets).with_prefix("").cache_key(), plain);
        let traces = Ring::new(&buckets).with_prefix("traces").cache_key();
        assert!(traces.is_some());
        assert_ne!(traces, plain);
        assert_ne!(Ring::new(&buckets).with_prefix("other").cache_key(), traces);
        assert_eq!(Ring::new(&buckets).with_prefix("/traces/").cache_key(), traces);
    }

    #[test]
    fn conformance_vectors() {
        let data: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/data/ring-vectors.json")).unwrap();
        let mut checked = 0;
        for config in data["configs"].as_array().unwrap() {
            let buckets: Vec<String> = config["buckets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_str().unwrap().to_string())
                .collect();
            let replicas = config["replicas"].as_u64().unwrap() as usize;
            let ring = Ring::with_replicas(&buckets, replicas);
            for placement in config["placements"].as_array().unwrap() {
                let key = placement["key"].as_str().unwrap();
                let want_hash_key = placement["hash_key"].as_str().unwrap();
                let want_bucket = placement["bucket"].as_str().unwrap();
                assert_eq!(hash_key(key), want_hash_key, "hash_key({key:?})");
                assert_eq!(Ring::with_replicas(&buckets, replicas).with_prefix("").owner(key), want_bucket, "empty key_prefix: {key:?}");
                assert_eq!(Ring::with_replicas(&buckets, replicas).owner(key), want_bucket, "first lookup of {key:?}");
                assert_eq!(ring.owner(key), want_bucket, "owner({key:?}) with {buckets:?}");
                assert_eq!(buckets[ring.owner_index(key)], want_bucket);
                checked += 1;
            }
        }
        assert!(checked > 0, "no placements checked");
    }
}
