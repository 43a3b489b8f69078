//! DeleteObjects over shards: check the batch, split it by owning shard, merge the answers in request order.

use crate::checksum::{ChecksumAlgorithm, Checksummer};
use crate::codec::{base64_decode, base64_encode};
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::route::header;
use crate::types::{DeleteErrorEntry, DeletedEntry, ObjectIdentifier};
use crate::xml;
use md5::{Digest, Md5};

/// The largest DeleteObjects body accepted (1000 keys of 1 KiB, escaped, with room to spare).
pub const MAX_DELETE_BODY: usize = 2 * 1024 * 1024;

/// One backend's share of a batch: its shard, the body to send and the Content-MD5 of that body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardBatch {
    pub shard: usize,
    pub body: Vec<u8>,
    pub content_md5: String,
}

/// A checked DeleteObjects request, split by shard.
#[derive(Debug)]
pub struct DeleteBatch {
    pub quiet: bool,
    objects: Vec<ObjectIdentifier>,
    /// For each object, how many shards were asked to delete it.
    copies: Vec<usize>,
    pub shards: Vec<ShardBatch>,
}

/// What happened to one object.
#[derive(Debug, Clone)]
enum Outcome {
    Deleted(DeletedEntry),
    Failed(DeleteErrorEntry),
}

/// Check the body's integrity header (S3 requires Content-MD5 or an x-amz-checksum-*), parse it
/// and split the objects by their owning shard.
/// `owners(key)` names every shard that may hold the key (while resharding, the previous owner too:
/// the key is deleted on each) among `shards` shards.
pub fn plan(
    headers: &[(String, String)],
    body: &[u8],
    shards: usize,
    owners: impl Fn(&str) -> Vec<usize>,
) -> S3Result<DeleteBatch> {
    check_integrity(headers, body)?;
    let req = xml::parse_delete_objects(body)?;
    let mut by_shard: Vec<Vec<ObjectIdentifier>> = vec![vec![]; shards];
    let mut copies = Vec::with_capacity(req.objects.len());
    for obj in &req.objects {
        if obj.key.is_empty() {
            return Err(S3Error::new(ErrorCode::MalformedXML, "an Object in the Delete request has an empty Key"));
        }
        let owners = owners(&obj.key);
        copies.push(owners.len());
        for shard in owners {
            by_shard[shard].push(obj.clone());
        }
    }
    let shards = by_shard
        .into_iter()
        .enumerate()
        .filter(|(_, objs)| !objs.is_empty())
        .map(|(shard, objs)| {
            let body = xml::delete_objects_body(&objs, false).into_bytes();
            let content_md5 = base64_encode(&Md5::digest(&body));
            ShardBatch { shard, body, content_md5 }
        })
        .collect();
    Ok(DeleteBatch { quiet: req.quiet, objects: req.objects, copies, shards })
}

fn check_integrity(headers: &[(String, String)], body: &[u8]) -> S3Result<()> {
    if let Some(md5) = header(headers, "content-md5") {
        crate::checks::content_md5_form(headers)?;
        let claimed = base64_decode(md5.trim()).unwrap_or_default();
        if claimed != Md5::digest(body).as_slice() {
            return Err(S3Error::new(ErrorCode::BadDigest, "The Content-MD5 you specified did not match what we received."));
        }
        return Ok(());
    }
    for alg in ChecksumAlgorithm::ALL {
        if let Some(value) = header(headers, alg.header_name()) {
            let mut c = Checksummer::new(alg);
            c.update(body);
            if c.finish_base64() != value.trim() {
                return Err(S3Error::new(
                    ErrorCode::BadDigest,
                    format!("The {} you specified did not match the calculated checksum.", alg.header_name()),
                ));
            }
            return Ok(());
        }
    }
    Err(S3Error::new(
        ErrorCode::InvalidRequest,
        "Missing required header for this request: Content-MD5 or x-amz-checksum-*",
    ))
}

impl DeleteBatch {

    /// Merge the backends' DeleteResult bodies (one per entry of `shards`, same order) into the
    /// client's answer, in request order. A backend that failed must not be passed here: the caller
    /// fails the whole request instead, so no answer is ever silently partial.
    pub fn merge(&self, results: &[Vec<u8>]) -> S3Result<String> {
        let mut outcomes: Vec<(String, Option<String>, Outcome)> = vec![];
        for body in results {
            let (deleted, errors) = xml::parse_delete_result(body).map_err(|e| {
                S3Error::new(ErrorCode::ServiceUnavailable, format!("a backend returned an unreadable DeleteResult: {}", e.message))
            })?;
            outcomes.extend(deleted.into_iter().map(|d| (d.key.clone(), d.version_id.clone(), Outcome::Deleted(d))));
            outcomes.extend(errors.into_iter().map(|e| (e.key.clone(), e.version_id.clone(), Outcome::Failed(e))));
        }
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
        for (obj, &copies) in self.objects.iter().zip(&self.copies) {
            // Every shard the key was sent to reports on it; one failure makes the key's outcome a failure.
            let mut outcome: Option<Outcome> = None;
            let mut reports = 0;
            while let Some(i) = outcomes.iter().position(|(k, v, _)| *k == obj.key && (obj.version_id.is_none() || *v == obj.version_id)) {
                reports += 1;
                let this = outcomes.swap_remove(i).2;
                outcome = match (outcome, this) {
                    (Some(Outcome::Failed(e)), _) | (_, Outcome::Failed(e)) => Some(Outcome::Failed(e)),
                    (_, deleted) => Some(deleted),
                };
                if reports >= copies {
                    break;
                }
            }
            let Some(outcome) = outcome.filter(|_| reports == copies) else {
                return Err(S3Error::new(
                    ErrorCode::ServiceUnavailable,
                    format!("a backend did not report on key {:?}; the batch may be incomplete, retry it", obj.key),
                ));
            };
            match outcome {
                Outcome::Deleted(d) if !self.quiet => out.push_str(&entry_xml(&xml::delete_result(&[d], &[], false))),
                Outcome::Deleted(_) => {}
                Outcome::Failed(e) => out.push_str(&entry_xml(&xml::delete_result(&[], &[e], false))),
            }
        }
        out.push_str("</DeleteResult>");
        Ok(out)
    }
}

impl ShardBatch {
    /// The DeleteResult a shard whose bucket does not exist would give: nothing there, all deleted.
    pub fn all_deleted(&self) -> S3Result<Vec<u8>> {
        let req = xml::parse_delete_objects(&self.body)?;
        let deleted: Vec<DeletedEntry> = req
            .objects
            .into_iter()
            .map(|o| DeletedEntry { key: o.key, version_id: o.version_id, delete_marker: false, delete_marker_version_id: None })
            .collect();
        Ok(xml::delete_result(&deleted, &[], false).into_bytes())
    }
}

/// The inner elements of a one-entry DeleteResult document.
fn entry_xml(doc: &str) -> String {
    let start = doc.find("<DeleteResult").and_then(|i| doc[i..].find('>').map(|j| i + j + 1)).unwrap_or(0);
    let end = doc.rfind("</DeleteResult>").unwrap_or(doc.len());
    doc[start..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::Ring;

    fn ring() -> Ring {
        Ring::new(&["shard1".to_string(), "shard2".to_string(), "shard3".to_string()])
    }

    fn body(keys: &[&str], quiet: bool) -> Vec<u8> {
        let objs: Vec<_> = keys.iter().map(|k| ObjectIdentifier { key: k.to_string(), ..Default::default() }).collect();
        xml::delete_objects_body(&objs, quiet).into_bytes()
    }

    fn md5_header(b: &[u8]) -> Vec<(String, String)> {
        vec![("Content-MD5".into(), base64_encode(&Md5::digest(b)))]
    }

    #[test]
    fn splits_by_owner_and_merges_in_request_order() {
        let keys: Vec<String> = (0..30).map(|i| format!("tenant/block-{i}/data")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let b = body(&refs, false);
        let batch = plan(&md5_header(&b), &b, 3, |k| vec![ring().owner_index(k)]).unwrap();
        assert!(batch.shards.len() > 1);
        let mut results = vec![];
        for s in &batch.shards {
            let req = xml::parse_delete_objects(&s.body).unwrap();
            assert_eq!(s.content_md5, base64_encode(&Md5::digest(&s.body)));
            for o in &req.objects {
                assert_eq!(ring().owner_index(&o.key), s.shard);
            }
            // The backend reports deletions and one error, in its own order (reversed here).
            let mut deleted: Vec<_> = req.objects.iter().map(|o| DeletedEntry { key: o.key.clone(), version_id: None, delete_marker: false, delete_marker_version_id: None }).collect();
            deleted.reverse();
            let errors = if s.shard == batch.shards[0].shard {
                let e = deleted.remove(0);
                vec![DeleteErrorEntry { key: e.key, version_id: None, code: "AccessDenied".into(), message: "no".into() }]
            } else {
                vec![]
            };
            results.push(xml::delete_result(&deleted, &errors, false).into_bytes());
        }
        let merged = batch.merge(&results).unwrap();
        let positions: Vec<usize> = keys.iter().map(|k| merged.find(&format!("<Key>{k}</Key>")).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "entries must follow request order");
        assert_eq!(merged.matches("<Error>").count(), 1);
    }

    #[test]
    fn while_resharding_a_key_is_deleted_on_both_owners() {
        let b = body(&["a/b/c"], false);
        let batch = plan(&md5_header(&b), &b, 3, |_| vec![0, 2]).unwrap();
        assert_eq!(batch.shards.iter().map(|s| s.shard).collect::<Vec<_>>(), vec![0, 2]);
        let ok = |k: &str| xml::delete_result(&[DeletedEntry { key: k.into(), version_id: None, delete_marker: false, delete_marker_version_id: None }], &[], false).into_bytes();
        let failed = xml::delete_result(&[], &[DeleteErrorEntry { key: "a/b/c".into(), version_id: None, code: "AccessDenied".into(), message: "m".into() }], false).into_bytes();
        assert!(batch.merge(&[ok("a/b/c"), ok("a/b/c")]).unwrap().contains("<Deleted>"));
        assert!(batch.merge(&[ok("a/b/c"), failed]).unwrap().contains("<Code>AccessDenied</Code>"));
        let empty = xml::delete_result(&[], &[], false).into_bytes();
        assert!(batch.merge(&[ok("a/b/c"), empty]).is_err(), "one shard not reporting fails the batch");
    }

    #[test]
    fn quiet_reports_only_errors() {
        let b = body(&["a/b/c"], true);
        let batch = plan(&md5_header(&b), &b, 3, |k| vec![ring().owner_index(k)]).unwrap();
        let ok = xml::delete_result(&[DeletedEntry { key: "a/b/c".into(), version_id: None, delete_marker: false, delete_marker_version_id: None }], &[], false);
        let merged = batch.merge(&[ok.into_bytes()]).unwrap();
        assert!(!merged.contains("<Deleted>"));
    }

    #[test]
    fn a_missing_report_fails_the_batch() {
        let b = body(&["a/b/c", "x/y/z"], false);
        let batch = plan(&md5_header(&b), &b, 3, |k| vec![ring().owner_index(k)]).unwrap();
        let empty = xml::delete_result(&[], &[], false).into_bytes();
        let results = vec![empty; batch.shards.len()];
        assert_eq!(batch.merge(&results).unwrap_err().code, ErrorCode::ServiceUnavailable);
    }

    #[test]
    fn integrity_is_required_and_checked() {
        let b = body(&["k"], false);
        assert_eq!(plan(&[], &b, 3, |_| vec![0]).unwrap_err().code, ErrorCode::InvalidRequest);
        assert_eq!(plan(&md5_header(b"other"), &b, 3, |_| vec![0]).unwrap_err().code, ErrorCode::BadDigest);
        let bad = vec![("content-md5".to_string(), "!!".to_string())];
        assert_eq!(plan(&bad, &b, 3, |_| vec![0]).unwrap_err().code, ErrorCode::InvalidDigest);
        let mut c = Checksummer::new(ChecksumAlgorithm::Crc32);
        c.update(&b);
        let crc = vec![("x-amz-checksum-crc32".to_string(), c.finish_base64())];
        assert!(plan(&crc, &b, 3, |_| vec![0]).is_ok());
        assert_eq!(plan(&md5_header(b"<x"), b"<x", 3, |_| vec![0]).unwrap_err().code, ErrorCode::MalformedXML);
    }
}
