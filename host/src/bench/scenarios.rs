//! Scenarios 1-4: 4 KiB objects, large objects (both backend frame sizes), and LIST; and 7, an HTTPS
//! backend.

use super::client::{between, exchange, exchange_full, full, pseudo_random, repeat, signed_streaming_put, Dest, Op, Target};
use super::measure::{reset_hwm, vm_hwm_kib};
use super::report::{LargeFigures, LargeRow, ListRow, SmallRow};
use super::{bucket_names, Bench, Setup, Wire, MIB, NETWORK_FRAME, SMALL};
use anyhow::{bail, Context as _};
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempo_s3_shard_core::ring::Ring;

/// The parts of a multipart upload of a large object.
const PARTS: u64 = 16;

/// A large transfer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Large {
    PutSingle,
    /// A single PUT sent as minio-go sends one over plain HTTP with credentials: 64 KiB chunks,
    /// each signed, which the proxy (and the backend, asked directly) checks.
    PutSigned,
    PutMultipart,
    /// A GET of the object the single PUT wrote, the backend sending frames of at least this size.
    Get(usize),
}

impl Large {
    fn name(self, wire: Wire) -> &'static str {
        match (self, wire) {
            (Large::PutSingle, Wire::Http) => "PUT single",
            (Large::PutSingle, Wire::Https) => "PUT single, HTTPS",
            (Large::PutSigned, _) => "PUT single, signed chunks",
            (Large::PutMultipart, Wire::Http) => "PUT multipart",
            (Large::PutMultipart, Wire::Https) => "PUT multipart, HTTPS",
            (Large::Get(NETWORK_FRAME), Wire::Http) => "GET (64 KiB frames)",
            (Large::Get(NETWORK_FRAME), Wire::Https) => "GET, HTTPS (64 KiB)",
            (Large::Get(_), Wire::Http) => "GET (s3s-fs 4 KiB frames)",
            (Large::Get(_), Wire::Https) => "GET, HTTPS (4 KiB)",
        }
    }
}

impl Bench {
    pub(super) async fn small_objects(&mut self) -> anyhow::Result<Vec<SmallRow>> {
        println!("== 1-2. 4 KiB objects (latency per request; ops/s over all workers; 'added' = ours p50 - direct p50; x = ours / direct, xG = ours / go)");
        println!("{}", SmallRow::header(self.seed_bin.is_some()));
        let mut rows = Vec::new();
        for latency_ms in [0u64, 5] {
            for n in [3usize, 16] {
                rows.extend(self.small_rows(latency_ms, n, Wire::Http).await?);
            }
        }
        Ok(rows)
    }

    /// GET and PUT of 4 KiB objects, one and 32 at a time, on `n` buckets of a backend reached
    /// over `wire` that takes `latency_ms` per request.
    pub(super) async fn small_rows(&mut self, latency_ms: u64, n: usize, wire: Wire) -> anyhow::Result<Vec<SmallRow>> {
        let latency = (latency_ms > 0).then(|| Duration::from_millis(latency_ms));
        let setup = self.setup(&bucket_names(n), &[], latency, true, wire).await?;
        let payload = Bytes::from(pseudo_random(SMALL));
        let keys: Vec<String> = (0..64).map(|i| format!("bench/get-{i:03}/obj")).collect();
        self.put_all(&setup.dest(Target::Proxy), &keys, &payload, 16).await?;
        let keys = Arc::new(keys);
        let mut rows = Vec::new();
        for op in [Op::Get(keys.clone()), Op::Put(payload.clone())] {
            for concurrency in [1usize, 32] {
                let row = self.compare(&setup, concurrency, &op, self.budget.secs).await;
                let row = SmallRow { latency_ms, n, https: wire == Wire::Https, op: op.name(), concurrency, row };
                println!("{}", row.line());
                rows.push(row);
            }
        }
        Ok(rows)
    }

    pub(super) async fn large_objects(&mut self) -> anyhow::Result<Vec<LargeRow>> {
        println!(
            "\n== 3. large objects: {} MiB, single PUT, multipart PUT ({PARTS} x {} MiB), GET (median of {} transfers each; cpu = the proxy's CPU time per transfer)",
            self.budget.large >> 20,
            (self.budget.large / PARTS) >> 20,
            self.budget.large_reps
        );
        let mut rows = self.large_rows(&[Large::PutSingle, Large::PutMultipart, Large::Get(NETWORK_FRAME), Large::Get(0)], Wire::Http).await?;
        rows.extend(self.large_rows(&[Large::PutSigned], Wire::Http).await?);
        Ok(rows)
    }

    /// Each of `transfers` on 3 buckets of a backend reached over `wire`, the targets alternating.
    pub(super) async fn large_rows(&mut self, transfers: &[Large], wire: Wire) -> anyhow::Result<Vec<LargeRow>> {
        let (size, parts) = (self.budget.large, PARTS);
        // Signed uploads need a proxy that checks signatures: the Go proxy checks none, so it sits
        // them out, and ours then serves signed requests only.
        let signed = transfers.contains(&Large::PutSigned);
        let setup = self.setup(&bucket_names(3), &[], None, !signed, wire).await?;
        let chunk = Bytes::from(pseudo_random(1 << 20));
        // The component's memory for small requests, to compare the large transfers against.
        setup.stats.peak_memory.store(0, Ordering::Relaxed);
        let small = Bytes::from(pseudo_random(SMALL));
        let proxy = setup.dest(Target::Proxy);
        self.put_all(&proxy, &["bench/small/obj".to_string()], &small, 1).await?;
        exchange_full(&self.client, proxy.object("GET", "bench/small/obj", &[], None)).await?;
        let baseline = setup.stats.peak_memory.load(Ordering::Relaxed);
        println!("component peak linear memory for 4 KiB PUT+GET: {:.2} MiB", baseline as f64 / MIB);
        println!("(RSS = VmHWM of this process during the transfer: client, backend and component host together; the Go proxy does not implement multipart)");
        println!("{}", LargeRow::header());
        let mut rows = Vec::new();
        for &what in transfers {
            let mut row = LargeRow { op: what.name(wire), baseline_memory: baseline, ..LargeRow::default() };
            if let Large::Get(frame) = what {
                setup.backend.set_min_frame(frame);
            }
            let targets: Vec<Target> = setup.targets().into_iter().filter(|t| *t != Target::Go || what != Large::PutMultipart).collect();
            // Each transfer `reps` times, the targets alternating; the median counts.
            let mut figures: Vec<Vec<LargeFigures>> = targets.iter().map(|_| Vec::new()).collect();
            for _ in 0..self.budget.large_reps {
                for (target, all) in targets.iter().zip(figures.iter_mut()) {
                    all.push(self.large_transfer(&setup, *target, what, size, parts, &chunk).await?);
                }
            }
            for (target, all) in targets.into_iter().zip(figures) {
                let median = LargeFigures::median(all);
                match target {
                    Target::Direct => row.direct = median,
                    Target::Go => row.go = Some(median),
                    Target::Proxy => row.proxy = median,
                }
            }
            println!("{}", row.line());
            rows.push(row);
        }
        setup.backend.set_min_frame(NETWORK_FRAME);
        Ok(rows)
    }

    /// Group 7: 4 KiB objects and large transfers with an HTTPS backend.
    pub(super) async fn https_backend(&mut self) -> anyhow::Result<(Vec<SmallRow>, Vec<LargeRow>)> {
        println!("\n== 7. an HTTPS backend, as AWS S3 is: direct = the client speaks TLS to it; the proxies speak TLS to it and plain HTTP to the client");
        println!("{}", SmallRow::header(self.seed_bin.is_some()));
        let small = self.small_rows(0, 3, Wire::Https).await?;
        println!("\n{} MiB transfers (median of {}):", self.budget.large >> 20, self.budget.large_reps);
        let large = self.large_rows(&[Large::PutSingle, Large::Get(NETWORK_FRAME)], Wire::Https).await?;
        Ok((small, large))
    }

    /// One large transfer, with the proxy's CPU time and the peaks of the component's memory and
    /// of this process's RSS.
    async fn large_transfer(
        &self,
        setup: &Setup,
        target: Target,
        what: Large,
        size: u64,
        parts: u64,
        chunk: &Bytes,
    ) -> anyhow::Result<LargeFigures> {
        let dest = setup.dest(target);
        setup.stats.peak_memory.store(0, Ordering::Relaxed);
        reset_hwm();
        let cpu = setup.cpu(target);
        let cpu_before = cpu.map(|c| c.read());
        let t = Instant::now();
        match what {
            Large::PutSingle => {
                let req = dest.object("PUT", "bench/large/single", &[], Some(repeat(chunk, size)));
                exchange_full(&self.client, req).await?;
            }
            Large::PutMultipart => self.multipart(&dest, "bench/large/multi", size, parts, chunk).await?,
            Large::PutSigned => {
                exchange_full(&self.client, signed_streaming_put(&dest, "bench/large/signed", chunk, size)).await?;
            }
            Large::Get(_) => {
                let req = dest.object("GET", "bench/large/single", &[], None);
                let got = exchange(&self.client, req).await.map_err(anyhow::Error::msg)?;
                if got != size {
                    bail!("GET returned {got} bytes, expected {size}");
                }
            }
        }
        let secs = t.elapsed().as_secs_f64();
        Ok(LargeFigures {
            secs,
            mib_per_s: size as f64 / MIB / secs,
            host_hwm_kib: vm_hwm_kib(),
            component_peak: setup.stats.peak_memory.load(Ordering::Relaxed),
            cpu_ms: cpu.zip(cpu_before).map(|(c, before)| c.read().since(&before).as_secs_f64() * 1e3),
        })
    }

    /// A multipart upload of `size` bytes in `parts` equal parts, one after another.
    async fn multipart(&self, dest: &Dest, key: &str, size: u64, parts: u64, chunk: &Bytes) -> anyhow::Result<()> {
        let (_, body) = exchange_full(&self.client, dest.object("POST", key, &[("uploads", "")], None)).await?;
        let body = String::from_utf8_lossy(&body);
        let upload_id = between(&body, "<UploadId>", "</UploadId>").context("no UploadId")?.to_string();
        let mut complete = String::from("<CompleteMultipartUpload>");
        for n in 1..=parts {
            let number = n.to_string();
            let query = [("partNumber", number.as_str()), ("uploadId", upload_id.as_str())];
            let req = dest.object("PUT", key, &query, Some(repeat(chunk, size / parts)));
            let (headers, _) = exchange_full(&self.client, req).await?;
            let etag = headers.get("etag").and_then(|v| v.to_str().ok()).context("part without ETag")?;
            complete.push_str(&format!("<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"));
        }
        complete.push_str("</CompleteMultipartUpload>");
        let req = dest.object("POST", key, &[("uploadId", upload_id.as_str())], Some(full(Bytes::from(complete))));
        let (_, body) = exchange_full(&self.client, req).await?;
        if !String::from_utf8_lossy(&body).contains("CompleteMultipartUploadResult") {
            bail!("CompleteMultipartUpload failed: {}", String::from_utf8_lossy(&body));
        }
        Ok(())
    }

    pub(super) async fn listing(&mut self) -> anyhow::Result<Vec<ListRow>> {
        const OBJECTS: usize = 200;
        const LATENCY_MS: u64 = 20;
        println!(
            "\n== 4. LIST of {OBJECTS} objects with {LATENCY_MS} ms per backend call: the proxies merging N shards vs one backend bucket holding them all"
        );
        println!("{}", ListRow::header(self.seed_bin.is_some()));
        let body = Bytes::from_static(b"x");
        let keys: Vec<String> = (0..OBJECTS).map(|i| format!("tenant/block-{i:04}/meta.json")).collect();
        let mut rows = Vec::new();
        for n in [1usize, 8, 32] {
            let single = vec!["bench-single".to_string()];
            let mut setup = self.setup(&bucket_names(n), &single, Some(Duration::from_millis(LATENCY_MS)), true, Wire::Http).await?;
            let direct = setup.dest(Target::Direct);
            self.put_all(&setup.dest(Target::Proxy), &keys, &body, 32).await?;
            let single_dest = Dest { ring: Arc::new(Ring::new(&single)), ..direct.clone() };
            self.put_all(&single_dest, &keys, &body, 32).await?;
            for target in setup.targets() {
                let (_, listed) = exchange_full(&self.client, Op::List.build(&setup.dest(target), 0, 0)).await?;
                let count = String::from_utf8_lossy(&listed).matches("<Key>").count();
                if count != OBJECTS && target == Target::Go {
                    // Not a like-for-like row then: left out rather than timed.
                    println!("(the Go proxy listed {count} of {OBJECTS} keys at {n} shards: left out of this row)");
                    setup.go = None;
                } else if count != OBJECTS {
                    bail!("{target:?} LIST returned {count} keys, expected {OBJECTS}");
                }
            }
            let row = ListRow { shards: n, row: self.compare(&setup, 1, &Op::List, self.budget.secs).await };
            println!("{}", row.line());
            rows.push(row);
        }
        Ok(rows)
    }
}

