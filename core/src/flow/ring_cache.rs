//! Large rings' sorted tables kept in the key-value store between requests (Spin runs a fresh
//! instance per request): read before a key is placed, stored after the answer.

use super::Transport;
use crate::context::Proxy;

/// Adopt the rings' tables from the store, for rings large enough to be worth it that have none
/// from `ring_tables`; a ring the store has no (good) table for is hashed now. Returns whether a
/// table hashed here is to be stored after the answer. Without a store, rings hash lazily.
pub fn load(proxy: &Proxy, t: &impl Transport) -> bool {
    let mut cached = false;
    for ring in proxy.rings().filter(|ring| !ring.has_table()) {
        let Some(key) = ring.cache_key() else { continue };
        match t.kv_get(&key) {
            Err(_) => return false,
            Ok(found) => {
                cached = true;
                if !found.is_some_and(|bytes| ring.load_table(bytes)) {
                    ring.build_table();
                }
            }
        }
    }
    cached
}

/// Store the tables this request had to hash.
pub fn save(proxy: &Proxy, t: &impl Transport) {
    for ring in proxy.rings() {
        // The key (a SHA-256 of the bucket names) only for a table that is to be stored.
        let Some((bytes, key)) = ring.table_to_cache().and_then(|bytes| Some((bytes, ring.cache_key()?))) else { continue };
        if let Err(err) = t.kv_set(&key, &bytes) {
            eprintln!("tempo-s3-shard: could not store the ring table in the key-value store: {err}");
        }
    }
}
