//! Differential conformance: every case of the table in `conformance/cases.rs` is sent, signed over raw
//! HTTP, to a plain bucket on the backend and to the virtual bucket through the proxy (three shards on
//! the same backend), and the two answers must agree on status, error code, the headers that matter
//! and the (normalised) body. Where the backend itself deviates from AWS's documented behaviour, the
//! case carries a documented exception and the proxy must give AWS's answer instead.
//!
//! The table runs once against moto (all cases) and once against s3s-fs (the cases it supports), one
//! harness each; every proxied answer is also scanned for shard bucket names and backend endpoints.

use crate::common;
mod case;
mod cases;
mod wire;

use case::{Backend, Run};
use std::sync::OnceLock;

/// The shard buckets behind the proxy (never to be seen by a client).
pub const SHARDS: [&str; 3] = ["cf-shard-one", "cf-shard-two", "cf-shard-three"];
/// The plain bucket on the same backend the proxy is compared with.
pub const PLAIN: &str = "cf-plain";

/// The whole table run against one backend, once per test binary.
fn run(backend: Backend) -> &'static Run {
    static MOTO: OnceLock<Run> = OnceLock::new();
    static S3S: OnceLock<Run> = OnceLock::new();
    let cell = match backend {
        Backend::Moto => &MOTO,
        Backend::S3sFs => &S3S,
    };
    cell.get_or_init(|| {
        // Each run has its own runtime, so the harness outlives any one test's runtime.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
            let started = std::time::Instant::now();
            let run = rt.block_on(case::run_table(backend, cases::all()));
            eprintln!("{backend:?}: the table took {:.1} s", started.elapsed().as_secs_f64());
            run
        })
        .join()
        .expect("the conformance run panicked")
    })
}

#[track_caller]
fn assert_conforms(backend: Backend) {
    let run = run(backend);
    let failures: Vec<&String> = run.results.iter().filter_map(|r| r.failure.as_ref()).collect();
    eprintln!("{backend:?}: {} cases run, {} skipped, {} failed", run.results.len(), run.skipped.len(), failures.len());
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), run.results.len(), failures.iter().map(|f| f.as_str()).collect::<Vec<_>>().join("\n"));
}

#[test]
fn moto_answers_match_through_the_proxy() {
    assert_conforms(Backend::Moto);
}

#[test]
fn s3s_fs_answers_match_through_the_proxy() {
    assert_conforms(Backend::S3sFs);
}

#[test]
fn the_table_has_at_least_150_cases() {
    let all = cases::all();
    let mut names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
    names.sort();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "case names must be unique");
    assert!(all.len() >= 150, "only {} cases", all.len());
}

#[test]
fn no_proxied_answer_reveals_a_shard_bucket_or_backend_endpoint() {
    for backend in [Backend::Moto, Backend::S3sFs] {
        let run = run(backend);
        let forbidden: Vec<String> = SHARDS.iter().map(|s| s.to_string()).chain([run.backend_authority.clone()]).collect();
        let mut leaks = vec![];
        let mut scanned = 0;
        for r in &run.results {
            for answer in &r.proxied {
                scanned += 1;
                let text = answer.full_text();
                for f in &forbidden {
                    if text.contains(f.as_str()) {
                        leaks.push(format!("{backend:?} {}: reveals {f:?} in\n{text}", r.name));
                    }
                }
                for location in wire::element_values(&answer.body_text(), "Location") {
                    if !location.starts_with(&format!("http://{}/{}/", run.proxy_authority, common::VIRTUAL_BUCKET)) {
                        leaks.push(format!("{backend:?} {}: <Location> {location:?} is not under the proxy", r.name));
                    }
                }
            }
        }
        assert!(scanned > 150, "only {scanned} answers scanned");
        assert!(leaks.is_empty(), "{}", leaks.join("\n\n"));
    }
}

/// Asserts that the named cases ran (on `backend`) and agreed.
#[track_caller]
fn assert_cases_pass(backend: Backend, prefix: &str) {
    let run = run(backend);
    let matching: Vec<&case::CaseResult> = run.results.iter().filter(|r| r.name.starts_with(prefix)).collect();
    assert!(!matching.is_empty(), "no case named {prefix}*");
    let failed: Vec<&String> = matching.iter().filter_map(|r| r.failure.as_ref()).collect();
    assert!(failed.is_empty(), "{}", failed.iter().map(|f| f.as_str()).collect::<Vec<_>>().join("\n"));
}

#[test]
fn defect_2_checksum_mode_returns_full_object_checksums() {
    assert_cases_pass(Backend::Moto, "checksum mode");
}

#[test]
fn defect_3_create_multipart_upload_returns_its_checksum_algorithm() {
    assert_cases_pass(Backend::Moto, "multipart create with checksum algorithm");
}

#[test]
fn defect_4_content_encoding_comes_back_byte_for_byte() {
    assert_cases_pass(Backend::Moto, "content-encoding list");
}

#[test]
fn defect_5_multipart_answers_name_the_virtual_bucket() {
    assert_cases_pass(Backend::Moto, "multipart create");
    assert_cases_pass(Backend::Moto, "multipart list parts");
    assert_cases_pass(Backend::Moto, "multipart complete");
    assert_cases_pass(Backend::S3sFs, "multipart create");
    assert_cases_pass(Backend::S3sFs, "multipart complete");
}

#[test]
fn defect_6_copy_part_ranges_are_validated_as_on_s3() {
    assert_cases_pass(Backend::Moto, "copy part range");
}

/// moto 5.2.1 applies If-Match on DeleteObject but ignores the size and time conditions (and all
/// of them per object in DeleteObjects), so these cases cannot fail without the fix;
/// `backend::tests::forwards_delete_conditions` and `xml::tests::delete_objects_request` do.
#[test]
fn defect_7_delete_conditions_are_forwarded() {
    assert_cases_pass(Backend::Moto, "delete conditional");
    assert_cases_pass(Backend::Moto, "batch delete conditional");
}

#[test]
fn defect_8_chunked_transfer_encoding_is_not_implemented() {
    assert_cases_pass(Backend::Moto, "transfer-encoding chunked");
    assert_cases_pass(Backend::S3sFs, "transfer-encoding chunked");
}
