//! Consistent-hash ring placing object keys on backend buckets, bit-for-bit like the original Go proxy.
//!
//! Each bucket gets `replicas` points: the first four bytes (big-endian) of SHA-256(bucket name followed
//! by the decimal replica number, no separator). A key is hashed the same way (see [`hash_key`]) and is
//! owned by the bucket of the first point at or after its hash, wrapping around to the first point. When
//! two buckets produce the same point, the later bucket in configuration order owns it.

use sha2::{Digest, Sha256};

/// Virtual nodes per bucket used by the original proxy.
pub const DEFAULT_REPLICAS: usize = 100;

/// The part of an object key that decides placement: the first two `/`-separated segments when the key
/// has three or more segments (`tenant/block/file` -> `tenant/block`), otherwise the whole key.
///
/// This keeps every file of one Tempo block on the same bucket.
pub fn hash_key(key: &str) -> &str {
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

/// A consistent-hash ring over an ordered list of backend buckets.
#[derive(Debug, Clone)]
pub struct Ring {
    buckets: Vec<String>,
    /// Sorted, deduplicated (point, bucket index) pairs.
    points: Vec<(u32, u16)>,
}

impl Ring {
    /// Builds the ring with [`DEFAULT_REPLICAS`] points per bucket.
    ///
    /// Panics if `buckets` is empty or has more than 65536 entries (configuration validation rules out
    /// the former).
    pub fn new(buckets: &[String]) -> Ring {
        Ring::with_replicas(buckets, DEFAULT_REPLICAS)
    }

    /// Builds the ring with `replicas` points per bucket (`replicas` must be at least 1).
    ///
    /// Panics if `buckets` is empty, has more than 65536 entries, or `replicas` is 0.
    pub fn with_replicas(buckets: &[String], replicas: usize) -> Ring {
        assert!(!buckets.is_empty(), "a ring needs at least one bucket");
        assert!(replicas > 0, "a ring needs at least one replica per bucket");
        assert!(buckets.len() <= usize::from(u16::MAX) + 1, "too many buckets for a ring");

        let mut points = Vec::with_capacity(buckets.len() * replicas);
        let mut digits = [0u8; 20];
        for (index, bucket) in buckets.iter().enumerate() {
            let prefix = Sha256::new_with_prefix(bucket.as_bytes());
            for replica in 0..replicas {
                let mut hasher = prefix.clone();
                hasher.update(decimal(replica, &mut digits));
                points.push((point_of(hasher), index as u16));
            }
        }
        points.sort_unstable();
        // Equal points sort by bucket index; keep the highest (the later bucket wins).
        points.dedup_by(|later, kept| {
            if later.0 == kept.0 {
                kept.1 = later.1;
                true
            } else {
                false
            }
        });

        Ring { buckets: buckets.to_vec(), points }
    }

    /// The index (into [`Ring::buckets`]) of the bucket that owns `key`.
    pub fn owner_index(&self, key: &str) -> usize {
        let point = key_point(hash_key(key));
        let at = self.points.partition_point(|&(p, _)| p < point);
        let (_, index) = self.points.get(at).unwrap_or(&self.points[0]);
        usize::from(*index)
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

    #[test]
    fn points_match_naive_string_hashing() {
        let buckets = names(&["shard1", "shard2", "shard3"]);
        let ring = Ring::new(&buckets);
        assert_eq!(ring.points.len(), 300);
        assert!(ring.points.windows(2).all(|w| w[0].0 < w[1].0));
        for (b, bucket) in buckets.iter().enumerate() {
            for i in 0..100 {
                let p = key_point(&format!("{bucket}{i}"));
                assert!(ring.points.contains(&(p, b as u16)), "{bucket}{i}");
            }
        }
    }

    #[test]
    fn identical_points_go_to_the_later_bucket() {
        // "shard1" + "10".."19" hash the same strings as "shard11" + "0".."9".
        let ring = Ring::new(&names(&["shard1", "shard11"]));
        assert_eq!(ring.points.len(), 190);
        for i in 0..10 {
            let shared = key_point(&format!("shard11{i}"));
            let owners: Vec<_> = ring.points.iter().filter(|(p, _)| *p == shared).collect();
            assert_eq!(owners, [&(shared, 1)], "shard11{i}");
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
        let (first, last) = (ring.points[0], ring.points[ring.points.len() - 1]);
        // Find a key hashing after the last point; it must land on the first point's bucket.
        let key = (0..100_000)
            .map(|i| format!("k{i}"))
            .find(|k| key_point(k) > last.0)
            .expect("some key hashes past the last point");
        assert_eq!(ring.owner_index(&key), usize::from(first.1));
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
                assert_eq!(ring.owner(key), want_bucket, "owner({key:?}) with {buckets:?}");
                assert_eq!(buckets[ring.owner_index(key)], want_bucket);
                checked += 1;
            }
        }
        assert!(checked > 0, "no placements checked");
    }
}
