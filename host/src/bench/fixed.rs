//! Scenario 5, the fixed per-request work: config parsing, the ring, SigV4 and instantiation
//! natively, and the same work seen end to end inside the component.

use super::client::{self, Dest, Op, Target, REGION};
use tempo_s3_shard_host::backends::{LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY};
use super::measure::{round, time_per_call, Figures};
use super::report::{us, Row};
use super::{bucket_names, Bench, Wire};
use anyhow::bail;
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Instant;
use tempo_s3_shard_core::config::Config;
use tempo_s3_shard_core::ring::Ring;
use tempo_s3_shard_core::sigv4;

impl Bench {
    pub(super) async fn fixed_work(&mut self) -> anyhow::Result<Fixed> {
        println!("\n== 5. fixed per-request work");
        let mut fixed = Fixed::default();
        let endpoint = "http://127.0.0.1:9000";
        for n in [3usize, 16, 64] {
            let buckets = bucket_names(n);
            let vars = HashMap::from([
                ("buckets", buckets.join(",")),
                ("endpoint", endpoint.to_string()),
                ("access_key_id", LOCAL_ACCESS_KEY.to_string()),
                ("secret_access_key", LOCAL_SECRET_KEY.to_string()),
                ("client_credentials", format!("{LOCAL_ACCESS_KEY}:{LOCAL_SECRET_KEY}")),
            ]);
            let parse = time_per_call(2000, || {
                std::hint::black_box(Config::from_lookup(|name| vars.get(name).cloned()).is_ok());
            });
            let key = "single-tenant/0003b3c9-8689-41a6-835c-1b4ec3bd4a4e/data.parquet";
            let iters = if n > 16 { 100 } else { 500 };
            // What one request pays: a new ring and one lookup (the ring hashes every point once).
            let first = time_per_call(iters, || {
                std::hint::black_box(Ring::new(&buckets).owner_index(key));
            });
            // Two lookups: the second builds the sorted table (batch deletes, copies, resharding).
            let table = time_per_call(iters, || {
                let ring = Ring::new(&buckets);
                ring.owner_index(key);
                std::hint::black_box(ring.owner_index(key));
            });
            let built = Ring::new(&buckets);
            built.owner_index(key);
            built.owner_index(key);
            let lookup = time_per_call(20_000, || {
                std::hint::black_box(built.owner_index(key));
            });
            // What the component does with a table from the key-value store (rings of 800+ points).
            let cached = built.table_to_cache().unwrap_or_default();
            let adopt = time_per_call(iters, || {
                let ring = Ring::new(&buckets);
                let loaded = ring.load_table(cached.clone());
                std::hint::black_box(loaded.then(|| ring.owner_index(key)));
            });
            fixed.native.push(("config parse".into(), n, parse));
            fixed.native.push(("ring: new + 1 lookup".into(), n, first));
            fixed.native.push(("ring: new + 2 lookups".into(), n, table));
            fixed.native.push(("ring: lookup in table".into(), n, lookup));
            if built.cache_key().is_some() {
                fixed.native.push(("ring: cached table + lookup".into(), n, adopt));
            }
        }
        // Signing a backend request, and verifying a client's, as the proxy does once each per request.
        let req = client::sign("GET", ("http", "127.0.0.1:9000"), "bench-shard-01", Some("single-tenant/block/data.parquet"), &[], None);
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect();
        let signing = time_per_call(5000, || {
            std::hint::black_box(client::sign("GET", ("http", "127.0.0.1:9000"), "bench-shard-01", Some("single-tenant/block/data.parquet"), &[], None));
        });
        let inbound = sigv4::InboundRequest {
            method: "GET",
            raw_path: req.uri().path(),
            raw_query: "",
            headers: &headers,
        };
        let now = client::unix_now();
        let secret = |ak: &str| (ak == LOCAL_ACCESS_KEY).then(|| LOCAL_SECRET_KEY.to_string());
        if !matches!(sigv4::verify(&inbound, now, &secret, REGION), Ok(sigv4::Verified::Signed { .. })) {
            bail!("the benchmark's own signature does not verify");
        }
        let verify = time_per_call(5000, || {
            std::hint::black_box(sigv4::verify(&inbound, now, &secret, REGION).is_ok());
        });
        fixed.native.push(("SigV4 sign (request)".into(), 0, signing));
        fixed.native.push(("SigV4 verify".into(), 0, verify));

        // Wasm: the same work inside the component, seen end to end.
        let mut instantiate = 0.0;
        for n in [3usize, 16, 64] {
            let setup = self.setup(&bucket_names(n), &[], None, false, Wire::Http).await?;
            if n == 3 {
                let host = setup.host.clone();
                host.instantiate_only().await?;
                let t = Instant::now();
                let count = 300;
                for _ in 0..count {
                    host.instantiate_only().await?;
                }
                instantiate = t.elapsed().as_secs_f64() * 1e6 / f64::from(count);
            }
            let key = "bench/head-target/obj".to_string();
            self.put_all(&setup.dest(Target::Proxy), std::slice::from_ref(&key), &Bytes::from_static(b"x"), 1).await?;
            let secs = self.budget.secs / 2.0;
            let head_bucket = self.compare(&setup, 1, &Op::HeadBucket, secs).await;
            let head_object = self.compare(&setup, 1, &Op::HeadObject(key.clone()), secs).await;
            let op = Op::Locate(key.clone());
            let locate = self.one_at_a_time(&op, &setup.dest(Target::Proxy), secs).await;
            let base = head_bucket.proxy.p50_us;
            let ring_us = locate.p50_us - base;
            // The same lookup with the ring hashed per request, as under Spin's default (`auto`)
            // for rings under 8 buckets, or with `never`.
            let hashed_us = self.lookup_us(n, &op, &[("ring_cache", "never")], base, secs).await?;
            // And with the table given in `ring_tables` (no store: a table that did not fit would hash).
            let tables = tempo_s3_shard_host::ring_plan::ring_tables(&bucket_names(n), None, "");
            let given_us = self.lookup_us(n, &op, &[("ring_cache", "never"), ("ring_tables", tables.as_str())], base, secs).await?;
            fixed.wasm.push(WasmRow { n, head_bucket, head_object, locate, ring_us, hashed_us, given_us });
        }
        fixed.native.insert(0, ("component instantiation".into(), 0, instantiate));
        Ok(fixed)
    }

    /// `op`'s p50 one at a time through a fresh proxy of `n` buckets with `vars`, less `base`.
    async fn lookup_us(&mut self, n: usize, op: &Op, vars: &[(&str, &str)], base: f64, secs: f64) -> anyhow::Result<f64> {
        let setup = self.setup_with(&bucket_names(n), &[], None, false, Wire::Http, vars).await?;
        Ok(self.one_at_a_time(op, &setup.dest(Target::Proxy), secs).await.p50_us - base)
    }

    /// `op` one request at a time against `dest` for `secs`, after a warm-up.
    async fn one_at_a_time(&self, op: &Op, dest: &Dest, secs: f64) -> Figures {
        let _ = self.drive(1, self.budget.warmup, op, dest, None).await;
        self.drive(1, secs, op, dest, None).await.stats()
    }
}

/// The fixed work seen end to end in wasm, for a ring of `n` buckets.
pub struct WasmRow {
    n: usize,
    head_bucket: Row,
    head_object: Row,
    /// The proxy's locate endpoint.
    locate: Figures,
    /// Locate p50 at N minus HeadBucket p50 at N: the ring's cost for one lookup, its table read
    /// from the runner's key-value store.
    ring_us: f64,
    /// The same with `ring_cache=never`: the ring hashed in the request.
    hashed_us: f64,
    /// The same with the table given in the `ring_tables` variable.
    given_us: f64,
}

/// Scenario 5's results.
#[derive(Default)]
pub struct Fixed {
    /// (what, buckets or 0, µs per call) measured natively in this process.
    native: Vec<(String, usize, f64)>,
    wasm: Vec<WasmRow>,
}

impl Fixed {
    /// The ring's cost in wasm at 64 buckets: locate minus HeadBucket (N=3), both answered by the component.
    pub fn wasm_ring64(&self) -> Option<f64> {
        self.wasm.iter().find(|r| r.n == 64).map(|r| r.ring_us)
    }

    pub fn json(&self) -> Value {
        json!({
            "native_us": self.native.iter().map(|(w, n, us)| json!({"work": w, "buckets": n, "us": round(*us)})).collect::<Vec<_>>(),
            "wasm_end_to_end": self.wasm.iter().map(|r| json!({
                "buckets": r.n,
                "head_bucket": {"direct": r.head_bucket.direct.json(), "proxy": r.head_bucket.proxy.json(),
                                "added_p50_us": round(r.head_bucket.proxy.p50_us - r.head_bucket.direct.p50_us)},
                "head_object": {"direct": r.head_object.direct.json(), "proxy": r.head_object.proxy.json(),
                                "added_p50_us": round(r.head_object.proxy.p50_us - r.head_object.direct.p50_us)},
                "locate": r.locate.json(),
                "ring_lookup_us": round(r.ring_us),
                "ring_hashed_us": round(r.hashed_us),
                "ring_given_us": round(r.given_us),
            })).collect::<Vec<_>>(),
            "wasm_ring_64_us": self.wasm_ring64().map(round),
        })
    }
}

/// Print scenario 5's tables.
pub fn print_fixed(fixed: &Fixed) {
    println!("native, in this process (mean per call):");
    for (what, n, us) in &fixed.native {
        let n = if *n > 0 { format!("N={n}") } else { String::new() };
        println!("  {what:<24} {n:>5} {us:>10.2} µs");
    }
    println!("in wasm, end to end at concurrency 1, p50 (HeadBucket and locate are answered by the component,");
    println!("HeadObject is forwarded; ring = locate(N) - HeadBucket(N): one lookup, with the ring's table");
    println!("read from the runner's key-value store (HeadBucket places no key, so it reads no table); hashed =");
    println!("the same with ring_cache=never, the ring hashed in the request, as Spin's default does under 8 buckets;");
    println!("given = the table given in the ring_tables variable, no store):");
    println!(
        "  {:>3} | {:>10} {:>10} {:>8} | {:>10} {:>10} {:>8} | {:>10} {:>8} {:>8} {:>8}",
        "N", "HB direct", "HB proxy", "added", "HO direct", "HO proxy", "added", "locate", "ring", "hashed", "given"
    );
    for r in &fixed.wasm {
        println!(
            "  {:>3} | {:>10} {:>10} {:>8} | {:>10} {:>10} {:>8} | {:>10} {:>8} {:>8} {:>8}",
            r.n,
            us(r.head_bucket.direct.p50_us),
            us(r.head_bucket.proxy.p50_us),
            us(r.head_bucket.proxy.p50_us - r.head_bucket.direct.p50_us),
            us(r.head_object.direct.p50_us),
            us(r.head_object.proxy.p50_us),
            us(r.head_object.proxy.p50_us - r.head_object.direct.p50_us),
            us(r.locate.p50_us),
            us(r.ring_us),
            us(r.hashed_us),
            us(r.given_us),
        );
    }
}
