//! Moving one misplaced object: copy it to its owner, verify the copy (size and ETag), then delete
//! the stray; an owner already holding it, or a newer object, is recognised, so a run can repeat.

use super::s3::{Head, S3};
use super::{Conflict, Options, MAX_COPY_OBJECT};
use anyhow::{bail, Context as _};
use tempo_s3_shard_core::types::ObjectEntry;

/// `2024-05-01T12:34:56.789Z` (S3 listings) as Unix seconds.
fn parse_iso8601(s: &str) -> Option<u64> {
    let head = s.get(..19)?;
    let compact: String = head.chars().filter(|c| *c != '-' && *c != ':').collect();
    tempo_s3_shard_core::clock::parse_amz_date(&format!("{compact}Z"))
}

/// An ETag without quotes or a weak prefix, for comparisons.
fn etag_core(etag: &str) -> &str {
    let e = etag.trim();
    let e = e.strip_prefix("W/").unwrap_or(e);
    e.trim_matches('"')
}

fn is_multipart_etag(etag: &str) -> bool {
    etag_core(etag).contains('-')
}

/// What a copy must carry besides the bytes ([`Head::carried`]), values trimmed and sorted, for
/// comparing two copies.
fn description(head: &Head) -> Vec<(String, String)> {
    let mut kept: Vec<(String, String)> = head.carried().map(|(n, v)| (n, v.trim().to_string())).collect();
    kept.sort();
    kept
}

/// One misplaced copy of a key, as listed.
#[derive(Clone, Debug)]
pub(super) struct Stray {
    pub(super) bucket: String,
    pub(super) entry: ObjectEntry,
}

/// What happened to one stray.
pub(super) enum Outcome {
    Moved(u64),
    AlreadyAtOwner,
    Superseded,
    Vanished,
    Conflict(Conflict),
}

/// Everything a worker needs.
pub(super) struct Mover {
    pub(super) s3: S3,
    pub(super) opts: Options,
}

impl Mover {
    /// Handle every misplaced copy of `key`, newest first (the newest is the one copied when the owner has none).
    pub(super) async fn handle_key(&self, key: &str, owner: &str, mut strays: Vec<Stray>) -> Vec<(String, anyhow::Result<Outcome>)> {
        strays.sort_by_key(|s| std::cmp::Reverse(parse_iso8601(&s.entry.last_modified)));
        let mut out = vec![];
        for stray in strays {
            let outcome = self.handle_stray(key, owner, &stray).await;
            out.push((stray.bucket, outcome));
        }
        out
    }

    async fn handle_stray(&self, key: &str, owner: &str, stray: &Stray) -> anyhow::Result<Outcome> {
        let from = stray.bucket.as_str();
        // The stray as it is now (listings may lack ETags, and it may have changed or gone since).
        let Some(source) = self.s3.head(from, key).await? else { return Ok(Outcome::Vanished) };
        let Some(at_owner) = self.s3.head(owner, key).await? else {
            return self.copy_verify_delete(key, owner, from, &source).await;
        };
        if at_owner.size == source.size && etag_core(&at_owner.etag) == etag_core(&source.etag) {
            if description(&at_owner) != description(&source) {
                // The same bytes without the metadata: a copy cut off part-way (a backend that
                // stores the two apart, as s3s-fs does) or written by hand. Copy again over it.
                return self.copy_verify_delete(key, owner, from, &source).await;
            }
            self.s3.delete(from, key).await?;
            return Ok(Outcome::AlreadyAtOwner);
        }
        // A different object at the owner: keep it; the stray goes only if it is older.
        match (source.last_modified, at_owner.last_modified) {
            (Some(s), Some(o)) if s < o => {
                self.s3.delete(from, key).await?;
                Ok(Outcome::Superseded)
            }
            (s, o) => Ok(Outcome::Conflict(Conflict {
                key: key.to_string(),
                stray_bucket: from.to_string(),
                owner_bucket: owner.to_string(),
                reason: format!(
                    "the owner holds a different object ({} bytes, ETag {}, modified {}) not newer than the misplaced one ({} bytes, ETag {}, modified {})",
                    at_owner.size,
                    at_owner.etag,
                    o.map(tempo_s3_shard_core::clock::iso8601).unwrap_or_else(|| "?".into()),
                    source.size,
                    source.etag,
                    s.map(tempo_s3_shard_core::clock::iso8601).unwrap_or_else(|| "?".into()),
                ),
            })),
        }
    }

    async fn copy_verify_delete(&self, key: &str, owner: &str, from: &str, source: &Head) -> anyhow::Result<Outcome> {
        let multipart = source.size > self.opts.multipart_threshold.min(MAX_COPY_OBJECT);
        let copied_etag = if multipart {
            self.s3.multipart_copy(from, owner, key, source, self.opts.part_size).await?
        } else {
            match self.s3.copy_object(from, owner, key, &source.etag).await {
                Ok(etag) => etag,
                Err(e) => {
                    // Deleted meanwhile (NoSuchKey) is not an error: there is nothing left to move.
                    if self.s3.head(from, key).await?.is_none() {
                        return Ok(Outcome::Vanished);
                    }
                    return Err(e);
                }
            }
        };
        let copy = self.s3.head(owner, key).await?.with_context(|| format!("{owner}/{key} is missing right after the copy"))?;
        let expected = if multipart || is_multipart_etag(&source.etag) {
            // A multipart ETag is not a content hash: a copy gets its own; compare with what the copy returned.
            copied_etag.as_str()
        } else {
            source.etag.as_str()
        };
        if copy.size != source.size || etag_core(&copy.etag) != etag_core(expected) || description(&copy) != description(source) {
            bail!(
                "copy of {from}/{key} to {owner} does not verify: {} bytes, ETag {} (expected {} bytes, ETag {expected}), or other headers or metadata; the original is kept",
                copy.size,
                copy.etag,
                source.size
            );
        }
        self.s3.delete(from, key).await?;
        Ok(Outcome::Moved(source.size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_times_parse_to_seconds() {
        assert_eq!(parse_iso8601("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(parse_iso8601("2013-05-24T00:00:01Z"), Some(1_369_353_601));
        assert_eq!(parse_iso8601("2013-05-24T00:00:01.999Z"), Some(1_369_353_601));
        assert_eq!(parse_iso8601("yesterday"), None);
    }

    #[test]
    fn a_copy_is_the_same_only_with_the_same_type_and_metadata() {
        let head = |headers: &[(&str, &str)]| Head { size: 1, etag: "e".into(), last_modified: None, headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect() };
        let full = head(&[("Content-Type", "text/plain"), ("x-amz-meta-origin", "t"), ("date", "now"), ("x-amz-request-id", "1")]);
        assert_eq!(description(&full), description(&head(&[("x-amz-meta-origin", "t"), ("content-type", "text/plain"), ("date", "later")])));
        assert_ne!(description(&full), description(&head(&[("content-type", "text/plain")])), "metadata lost");
        assert_ne!(description(&full), description(&head(&[("x-amz-meta-origin", "t"), ("content-type", "binary/octet-stream")])));
    }

    #[test]
    fn etags_compare_without_quotes() {
        assert_eq!(etag_core("\"abc\""), "abc");
        assert_eq!(etag_core("W/\"abc\""), "abc");
        assert!(is_multipart_etag("\"abc-3\""));
        assert!(!is_multipart_etag("\"abc\""));
    }
}
