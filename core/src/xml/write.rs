//! XML writers: the S3 documents the proxy sends to clients and backends.

use super::escape::escape;
use crate::codec::uri_encode;
use crate::error::S3Error;
use crate::types::{CompletedPart, DeleteErrorEntry, DeletedEntry, ListOutput, ObjectIdentifier, UploadsOutput};

const DECL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;
pub(super) const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Append `<name>text</name>` with `text` escaped.
fn elem(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    out.push_str(&escape(text));
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// The S3 error document.
pub fn error(err: &S3Error, request_id: &str) -> String {
    let mut out = format!("{DECL}<Error>");
    elem(&mut out, "Code", err.code.as_str());
    elem(&mut out, "Message", &err.message);
    if let Some(resource) = &err.resource {
        elem(&mut out, "Resource", resource);
    }
    elem(&mut out, "RequestId", request_id);
    out.push_str("</Error>");
    out
}

/// ListBuckets: the one virtual bucket.
pub fn list_all_my_buckets(bucket: &str, creation_date: &str, owner_id: &str) -> String {
    let mut out = format!("{DECL}<ListAllMyBucketsResult xmlns=\"{NS}\"><Owner>");
    elem(&mut out, "ID", owner_id);
    elem(&mut out, "DisplayName", owner_id);
    out.push_str("</Owner><Buckets><Bucket>");
    elem(&mut out, "Name", bucket);
    elem(&mut out, "CreationDate", creation_date);
    out.push_str("</Bucket></Buckets></ListAllMyBucketsResult>");
    out
}

/// GetBucketLocation: an empty element for us-east-1, as S3 answers.
pub fn location_constraint(region: &str) -> String {
    if region.is_empty() || region == "us-east-1" {
        return format!("{DECL}<LocationConstraint xmlns=\"{NS}\"/>");
    }
    format!("{DECL}<LocationConstraint xmlns=\"{NS}\">{}</LocationConstraint>", escape(region))
}

/// The CreateBucket body naming `region` (S3 wants none for us-east-1; the caller decides).
pub fn create_bucket_configuration(region: &str) -> String {
    let mut out = format!("{DECL}<CreateBucketConfiguration xmlns=\"{NS}\">");
    elem(&mut out, "LocationConstraint", region);
    out.push_str("</CreateBucketConfiguration>");
    out
}

/// ListObjectsV2 response.
pub fn list_objects_v2(r: &ListOutput) -> String {
    list_objects(r, true)
}

/// ListObjects (V1) response.
pub fn list_objects_v1(r: &ListOutput) -> String {
    list_objects(r, false)
}

fn list_objects(r: &ListOutput, v2: bool) -> String {
    // With encoding-type=url S3 encodes Delimiter, Prefix, Key, StartAfter (V2) and
    // Delimiter, Marker, Prefix, NextMarker, Key (V1); common prefixes are prefixes too.
    let enc = |s: &str| if r.encoding_url { uri_encode(s, false) } else { s.to_string() };
    let mut out = format!("{DECL}<ListBucketResult xmlns=\"{NS}\">");
    elem(&mut out, "Name", &r.name);
    elem(&mut out, "Prefix", &enc(&r.prefix));
    if let Some(d) = &r.delimiter {
        elem(&mut out, "Delimiter", &enc(d));
    }
    elem(&mut out, "MaxKeys", &r.max_keys.to_string());
    if r.encoding_url {
        elem(&mut out, "EncodingType", "url");
    }
    if v2 {
        elem(&mut out, "KeyCount", &r.key_count().to_string());
    }
    elem(&mut out, "IsTruncated", if r.is_truncated { "true" } else { "false" });
    if v2 {
        if let Some(t) = &r.continuation_token {
            elem(&mut out, "ContinuationToken", t);
        }
        if let Some(t) = &r.next_continuation_token {
            elem(&mut out, "NextContinuationToken", t);
        }
        if let Some(s) = &r.start_after {
            elem(&mut out, "StartAfter", &enc(s));
        }
    } else {
        elem(&mut out, "Marker", &enc(r.marker.as_deref().unwrap_or("")));
        if let Some(m) = &r.next_marker {
            elem(&mut out, "NextMarker", &enc(m));
        }
    }
    for o in &r.contents {
        out.push_str("<Contents>");
        elem(&mut out, "Key", &enc(&o.key));
        elem(&mut out, "LastModified", &o.last_modified);
        elem(&mut out, "ETag", &o.etag);
        elem(&mut out, "Size", &o.size.to_string());
        if let Some(owner) = &o.owner {
            out.push_str("<Owner>");
            elem(&mut out, "ID", &owner.id);
            elem(&mut out, "DisplayName", &owner.display_name);
            out.push_str("</Owner>");
        }
        elem(&mut out, "StorageClass", &o.storage_class);
        out.push_str("</Contents>");
    }
    for p in &r.common_prefixes {
        out.push_str("<CommonPrefixes>");
        elem(&mut out, "Prefix", &enc(p));
        out.push_str("</CommonPrefixes>");
    }
    out.push_str("</ListBucketResult>");
    out
}

/// ListMultipartUploads response. With encoding-type=url S3 encodes Delimiter, KeyMarker,
/// Prefix, NextKeyMarker and Key (and common prefixes, which are prefixes).
pub fn list_multipart_uploads(r: &UploadsOutput) -> String {
    let enc = |s: &str| if r.encoding_url { uri_encode(s, false) } else { s.to_string() };
    let mut out = format!("{DECL}<ListMultipartUploadsResult xmlns=\"{NS}\">");
    elem(&mut out, "Bucket", &r.bucket);
    elem(&mut out, "KeyMarker", &enc(r.key_marker.as_deref().unwrap_or("")));
    elem(&mut out, "UploadIdMarker", r.upload_id_marker.as_deref().unwrap_or(""));
    if let Some(k) = &r.next_key_marker {
        elem(&mut out, "NextKeyMarker", &enc(k));
    }
    if let Some(u) = &r.next_upload_id_marker {
        elem(&mut out, "NextUploadIdMarker", u);
    }
    elem(&mut out, "Prefix", &enc(&r.prefix));
    if let Some(d) = &r.delimiter {
        elem(&mut out, "Delimiter", &enc(d));
    }
    elem(&mut out, "MaxUploads", &r.max_uploads.to_string());
    if r.encoding_url {
        elem(&mut out, "EncodingType", "url");
    }
    elem(&mut out, "IsTruncated", if r.is_truncated { "true" } else { "false" });
    for u in &r.uploads {
        out.push_str("<Upload>");
        elem(&mut out, "Key", &enc(&u.key));
        elem(&mut out, "UploadId", &u.upload_id);
        for (name, who) in [("Initiator", &u.initiator), ("Owner", &u.owner)] {
            if let Some(o) = who {
                out.push('<');
                out.push_str(name);
                out.push('>');
                elem(&mut out, "ID", &o.id);
                elem(&mut out, "DisplayName", &o.display_name);
                out.push_str("</");
                out.push_str(name);
                out.push('>');
            }
        }
        elem(&mut out, "StorageClass", &u.storage_class);
        elem(&mut out, "Initiated", &u.initiated);
        if let Some(a) = &u.checksum_algorithm {
            elem(&mut out, "ChecksumAlgorithm", a);
        }
        out.push_str("</Upload>");
    }
    for p in &r.common_prefixes {
        out.push_str("<CommonPrefixes>");
        elem(&mut out, "Prefix", &enc(p));
        out.push_str("</CommonPrefixes>");
    }
    out.push_str("</ListMultipartUploadsResult>");
    out
}

/// The DeleteObjects answer; quiet mode lists only the errors.
pub fn delete_result(deleted: &[DeletedEntry], errors: &[DeleteErrorEntry], quiet: bool) -> String {
    let mut out = format!("{DECL}<DeleteResult xmlns=\"{NS}\">");
    if !quiet {
        for d in deleted {
            out.push_str("<Deleted>");
            elem(&mut out, "Key", &d.key);
            if let Some(v) = &d.version_id {
                elem(&mut out, "VersionId", v);
            }
            if d.delete_marker {
                elem(&mut out, "DeleteMarker", "true");
            }
            if let Some(v) = &d.delete_marker_version_id {
                elem(&mut out, "DeleteMarkerVersionId", v);
            }
            out.push_str("</Deleted>");
        }
    }
    for e in errors {
        out.push_str("<Error>");
        elem(&mut out, "Key", &e.key);
        if let Some(v) = &e.version_id {
            elem(&mut out, "VersionId", v);
        }
        elem(&mut out, "Code", &e.code);
        elem(&mut out, "Message", &e.message);
        out.push_str("</Error>");
    }
    out.push_str("</DeleteResult>");
    out
}

/// The DeleteObjects body sent to a backend for its share of the keys.
pub fn delete_objects_body(objects: &[ObjectIdentifier], quiet: bool) -> String {
    let mut out = format!("{DECL}<Delete xmlns=\"{NS}\">");
    if quiet {
        elem(&mut out, "Quiet", "true");
    }
    for o in objects {
        out.push_str("<Object>");
        elem(&mut out, "Key", &o.key);
        for (name, value) in [("VersionId", &o.version_id), ("ETag", &o.etag), ("LastModifiedTime", &o.last_modified_time), ("Size", &o.size)] {
            if let Some(v) = value {
                elem(&mut out, name, v);
            }
        }
        out.push_str("</Object>");
    }
    out.push_str("</Delete>");
    out
}

/// The CompleteMultipartUpload body sent to a backend.
pub fn complete_multipart_body(parts: &[CompletedPart]) -> String {
    let mut out = format!("{DECL}<CompleteMultipartUpload xmlns=\"{NS}\">");
    for p in parts {
        out.push_str("<Part>");
        elem(&mut out, "PartNumber", &p.part_number.to_string());
        elem(&mut out, "ETag", &p.etag);
        let sums = [
            ("ChecksumCRC32", &p.checksum_crc32),
            ("ChecksumCRC32C", &p.checksum_crc32c),
            ("ChecksumCRC64NVME", &p.checksum_crc64nvme),
            ("ChecksumSHA1", &p.checksum_sha1),
            ("ChecksumSHA256", &p.checksum_sha256),
        ];
        for (name, value) in sums {
            if let Some(v) = value {
                elem(&mut out, name, v);
            }
        }
        out.push_str("</Part>");
    }
    out.push_str("</CompleteMultipartUpload>");
    out
}

/// Tags in the `x-amz-tagging` header form: `k1=v1&k2=v2`, URL-encoded.
pub fn tagging_header(tags: &[(String, String)]) -> String {
    tags.iter()
        .map(|(k, v)| format!("{}={}", uri_encode(k, true), uri_encode(v, true)))
        .collect::<Vec<_>>()
        .join("&")
}
