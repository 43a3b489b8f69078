//! The context every request is decided against: configuration, the rings and the shard index space.

use crate::backend::{self, BackendRequest};
use crate::config::Config;
use crate::ring::Ring;
use crate::{sigv4, xml};

/// Configuration plus the rings built from it.
pub struct Proxy {
    pub cfg: Config,
    pub ring: Ring,
    /// The ring of `previous_buckets`, while resharding.
    pub previous: Option<Ring>,
    /// Current buckets, then previous ones no longer current: the index space of every shard number.
    pub all_buckets: Vec<String>,
    /// Of the tables `ring_tables` gave, how many and how many a ring adopted (fewer: some are stale).
    pub ring_tables: (usize, usize),
}

impl Proxy {
    /// The rings of `cfg`, each with its table from `ring_tables` when one there fits it.
    pub fn new(mut cfg: Config) -> Proxy {
        let mut tables = std::mem::take(&mut cfg.ring_tables);
        let ring_of = |buckets: &[String]| {
            Ring::new(buckets).with_prefix(&cfg.key_prefix).with_cache_min_points(cfg.ring_cache.min_points())
        };
        let ring = ring_of(&cfg.buckets);
        let previous = (!cfg.previous_buckets.is_empty()).then(|| ring_of(&cfg.previous_buckets));
        let all_buckets = cfg.all_buckets();
        let given = tables.len();
        let mut proxy = Proxy { cfg, ring, previous, all_buckets, ring_tables: (given, 0) };
        if given > 0 {
            let adopted = proxy.rings().filter(|ring| {
                let id = ring.table_id();
                let found = tables.iter().position(|t| t.id == id);
                found.is_some_and(|i| ring.adopt_given(tables.swap_remove(i).text))
            });
            proxy.ring_tables.1 = adopted.count();
        }
        proxy
    }

    /// The rings requests are placed with: the current one, then the previous one while resharding.
    pub fn rings(&self) -> impl Iterator<Item = &Ring> {
        std::iter::once(&self.ring).chain(self.previous.as_ref())
    }

    /// Every shard that may hold `key`: its owner, then its previous owner if that differs.
    pub fn owners(&self, key: &str) -> Vec<usize> {
        let mut out = vec![self.ring.owner_index(key)];
        if let Some(prev) = &self.previous {
            let name = prev.owner(key);
            if let Some(i) = self.all_buckets.iter().position(|b| b == name) {
                if i != out[0] {
                    out.push(i);
                }
            }
        }
        out
    }

    /// The backend bucket of shard `shard` (for logs and backend requests only: never for clients).
    pub fn bucket(&self, shard: usize) -> &str {
        self.all_buckets.get(shard).map(String::as_str).unwrap_or_default()
    }

    /// "shard 2 of 4": how a client is told which shard failed without learning its bucket name.
    pub fn shard_label(&self, shard: usize) -> String {
        format!("shard {} of {}", shard + 1, self.all_buckets.len())
    }

    /// `call` signed for shard `shard`.
    pub fn request(&self, shard: usize, call: backend::Call, now_unix: u64) -> BackendRequest {
        backend::request(&self.cfg, self.bucket(shard), call, now_unix)
    }

    /// The request that creates a missing backend bucket, and its body (a location constraint
    /// outside us-east-1).
    pub fn create_bucket_request(&self, shard: usize, now_unix: u64) -> (BackendRequest, Vec<u8>) {
        let body = if self.cfg.region == "us-east-1" {
            Vec::new()
        } else {
            xml::create_bucket_configuration(&self.cfg.region).into_bytes()
        };
        let mut headers = vec![];
        if !body.is_empty() {
            headers.push(("content-length".into(), body.len().to_string()));
        }
        let hash = sigv4::sign::sha256_hex(&body);
        (self.request(shard, backend::Call::new("PUT").headers(headers).payload_hash(&hash), now_unix), body)
    }

    /// The key that authenticates our continuation tokens: derived from configuration clients
    /// never see, so a token from elsewhere (or edited) fails verification.
    pub fn token_key(&self) -> Vec<u8> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"tempo-s3-shard list token v1\0");
        h.update(self.cfg.secret_access_key.as_bytes());
        h.update(b"\0");
        h.update(self.cfg.buckets.join("\n").as_bytes());
        h.finalize().to_vec()
    }
}
