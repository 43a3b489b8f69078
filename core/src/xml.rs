//! S3 XML bodies: the documents the proxy writes for clients and the backend answers it reads.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::error::{ErrorCode, S3Error};
use crate::listing::ListOutput;

const DECL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;
const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
/// S3's limit on the number of keys in one DeleteObjects request.
pub const MAX_DELETE_OBJECTS: usize = 1000;

/// The owner of an object, as listed with `fetch-owner=true` (V2) or always (V1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub id: String,
    pub display_name: String,
}

/// One `<Contents>` entry of a listing, with the key already URL-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEntry {
    pub key: String,
    pub last_modified: String,
    pub etag: String,
    pub size: u64,
    pub storage_class: String,
    pub owner: Option<Owner>,
}

/// One page of a backend's ListObjects answer, keys and prefixes decoded to raw strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendPage {
    pub objects: Vec<ObjectEntry>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    pub next_continuation_token: Option<String>,
    pub next_marker: Option<String>,
    /// The backend URL-encoded its answer (already undone in the fields above).
    pub encoding_type_url: bool,
}

/// One `<Upload>` of a ListMultipartUploads answer, the key already URL-decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadEntry {
    pub key: String,
    pub upload_id: String,
    pub initiator: Option<Owner>,
    pub owner: Option<Owner>,
    pub storage_class: String,
    pub initiated: String,
    pub checksum_algorithm: Option<String>,
}

/// One page of a backend's ListMultipartUploads answer, keys and prefixes decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadsPage {
    pub uploads: Vec<UploadEntry>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_upload_id_marker: Option<String>,
}

/// One `<Object>` of a DeleteObjects request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectIdentifier {
    pub key: String,
    pub version_id: Option<String>,
}

/// A parsed DeleteObjects request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteRequest {
    pub quiet: bool,
    pub objects: Vec<ObjectIdentifier>,
}

/// A `<Deleted>` entry of a DeleteResult.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletedEntry {
    pub key: String,
    pub version_id: Option<String>,
    pub delete_marker: bool,
    pub delete_marker_version_id: Option<String>,
}

/// An `<Error>` entry of a DeleteResult.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteErrorEntry {
    pub key: String,
    pub version_id: Option<String>,
    pub code: String,
    pub message: String,
}

/// One `<Part>` of a CompleteMultipartUpload request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompletedPart {
    pub part_number: u32,
    pub etag: String,
    pub checksum_crc32: Option<String>,
    pub checksum_crc32c: Option<String>,
    pub checksum_crc64nvme: Option<String>,
    pub checksum_sha1: Option<String>,
    pub checksum_sha256: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Writers

/// Escape text for element content. Control characters become character references so that
/// `\r` and `\t` survive XML end-of-line and whitespace handling.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("&#{};", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `encoding-type=url` encoding as S3 clients decode it: every byte except the RFC 3986
/// unreserved characters and `/` becomes `%XX` (space is `%20`, `+` is `%2B`), so both
/// percent-only and form (`+` = space) decoders get the key back.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Undo `encoding-type=url` (`%XX`, and `+` for space as S3 and MinIO write it). `None` when the
/// escapes are broken or the bytes are not UTF-8.
pub fn url_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

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
    let enc = |s: &str| if r.encoding_url { url_encode(s) } else { s.to_string() };
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
pub fn list_multipart_uploads(r: &crate::uploads::UploadsOutput) -> String {
    let enc = |s: &str| if r.encoding_url { url_encode(s) } else { s.to_string() };
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
        if let Some(v) = &o.version_id {
            elem(&mut out, "VersionId", v);
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

// ---------------------------------------------------------------------------------------------
// Readers

/// Deepest element nesting accepted; S3 documents need five levels.
const MAX_DEPTH: usize = 32;

/// A parsed element: local name (namespace prefix dropped), its own text, its child elements.
#[derive(Debug, Default)]
struct Node {
    name: String,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of child `name`, as written (keys keep their spaces).
    fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// The text of child `name`, `None` when absent or empty.
    fn opt(&self, name: &str) -> Option<String> {
        self.text_of(name).filter(|t| !t.is_empty()).map(str::to_string)
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Parse a document into its root element; `None` for anything that is not well-formed XML.
fn parse_tree(body: &[u8]) -> Option<Node> {
    let mut reader = Reader::from_reader(body);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    loop {
        let event = reader.read_event().ok()?;
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => return None,
            Event::Start(e) => {
                if stack.len() >= MAX_DEPTH {
                    return None;
                }
                let name = std::str::from_utf8(e.local_name().as_ref()).ok()?.to_string();
                stack.push(Node { name, ..Node::default() });
            }
            Event::Empty(e) => {
                let name = std::str::from_utf8(e.local_name().as_ref()).ok()?.to_string();
                let node = Node { name, ..Node::default() };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::End(_) => {
                let node = stack.pop()?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::Text(t) => {
                let text = t.xml10_content().ok()?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text);
                } else if !text.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}').is_empty() {
                    return None;
                }
            }
            Event::CData(t) => {
                let text = t.xml10_content().ok()?;
                stack.last_mut()?.text.push_str(&text);
            }
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().ok()? {
                    Some(c) => c,
                    None => match r.decode().ok()?.as_ref() {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        _ => return None,
                    },
                };
                stack.last_mut()?.text.push(c);
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return None;
    }
    root
}

fn malformed_xml() -> S3Error {
    S3Error::new(
        ErrorCode::MalformedXML,
        "The XML you provided was not well-formed or did not validate against our published schema",
    )
}

fn bad_backend_xml(what: &str) -> S3Error {
    S3Error::internal(format!("the backend returned a malformed {what} document"))
}

/// The Code and Message of a backend's S3 error document, if `body` is one.
pub fn parse_error(body: &[u8]) -> Option<(String, String)> {
    let root = parse_tree(body)?;
    if root.name != "Error" {
        return None;
    }
    let code = root.text_of("Code")?.trim().to_string();
    if code.is_empty() {
        return None;
    }
    let message = root.text_of("Message").unwrap_or("").to_string();
    Some((code, message))
}

/// The text of element `field` of a result document (a child of its root), e.g. the `ETag` of a
/// `CopyObjectResult`, `CopyPartResult` or `CompleteMultipartUploadResult`, or the `UploadId` of an
/// `InitiateMultipartUploadResult` (any root name: S3 servers differ there). `None` for an error
/// document, anything that is not XML, or an empty field.
pub fn parse_result_field(body: &[u8], field: &str) -> Option<String> {
    let doc = parse_tree(body)?;
    if doc.name == "Error" {
        return None;
    }
    doc.opt(field)
}

/// A backend's ListBucketResult (V1 or V2), URL-decoding keys and prefixes when it encoded them.
pub fn parse_list_objects(body: &[u8]) -> Result<BackendPage, S3Error> {
    let bad = || bad_backend_xml("ListBucketResult");
    let root = parse_tree(body).ok_or_else(bad)?;
    if root.name != "ListBucketResult" {
        return Err(bad());
    }
    let url = root.text_of("EncodingType").is_some_and(|t| t.trim().eq_ignore_ascii_case("url"));
    let decode = |s: &str| -> Result<String, S3Error> {
        if url {
            url_decode(s).ok_or_else(bad)
        } else {
            Ok(s.to_string())
        }
    };
    let mut page = BackendPage { encoding_type_url: url, ..BackendPage::default() };
    for c in root.all("Contents") {
        let key = decode(c.text_of("Key").ok_or_else(bad)?)?;
        let size = match c.text_of("Size") {
            Some(s) => s.trim().parse::<u64>().map_err(|_| bad())?,
            None => 0,
        };
        let owner = c.child("Owner").map(|o| Owner {
            id: o.text_of("ID").unwrap_or("").to_string(),
            display_name: o.text_of("DisplayName").unwrap_or("").to_string(),
        });
        page.objects.push(ObjectEntry {
            key,
            last_modified: c.text_of("LastModified").unwrap_or("").trim().to_string(),
            etag: c.text_of("ETag").unwrap_or("").trim().to_string(),
            size,
            storage_class: c.opt("StorageClass").unwrap_or_else(|| "STANDARD".to_string()),
            owner,
        });
    }
    for cp in root.all("CommonPrefixes") {
        for p in cp.all("Prefix") {
            page.common_prefixes.push(decode(&p.text)?);
        }
    }
    page.is_truncated = match root.text_of("IsTruncated") {
        Some(t) => parse_bool(t).ok_or_else(bad)?,
        None => false,
    };
    page.next_continuation_token = root.opt("NextContinuationToken");
    page.next_marker = match root.opt("NextMarker") {
        Some(m) => Some(decode(&m)?),
        None => None,
    };
    Ok(page)
}

/// A backend's ListMultipartUploadsResult, URL-decoding keys and prefixes when it encoded them.
pub fn parse_list_multipart_uploads(body: &[u8]) -> Result<UploadsPage, S3Error> {
    let bad = || bad_backend_xml("ListMultipartUploadsResult");
    let root = parse_tree(body).ok_or_else(bad)?;
    if root.name != "ListMultipartUploadsResult" {
        return Err(bad());
    }
    let url = root.text_of("EncodingType").is_some_and(|t| t.trim().eq_ignore_ascii_case("url"));
    let decode = |s: &str| -> Result<String, S3Error> {
        if url {
            url_decode(s).ok_or_else(bad)
        } else {
            Ok(s.to_string())
        }
    };
    let who = |n: &Node, name: &str| {
        n.child(name).map(|o| Owner {
            id: o.text_of("ID").unwrap_or("").to_string(),
            display_name: o.text_of("DisplayName").unwrap_or("").to_string(),
        })
    };
    let mut page = UploadsPage::default();
    for u in root.all("Upload") {
        page.uploads.push(UploadEntry {
            key: decode(u.text_of("Key").ok_or_else(bad)?)?,
            upload_id: u.opt("UploadId").ok_or_else(bad)?.trim().to_string(),
            initiator: who(u, "Initiator"),
            owner: who(u, "Owner"),
            storage_class: u.opt("StorageClass").unwrap_or_else(|| "STANDARD".to_string()),
            initiated: u.text_of("Initiated").unwrap_or("").trim().to_string(),
            checksum_algorithm: u.opt("ChecksumAlgorithm"),
        });
    }
    for cp in root.all("CommonPrefixes") {
        for p in cp.all("Prefix") {
            page.common_prefixes.push(decode(&p.text)?);
        }
    }
    page.is_truncated = match root.text_of("IsTruncated") {
        Some(t) => parse_bool(t).ok_or_else(bad)?,
        None => false,
    };
    page.next_key_marker = match root.opt("NextKeyMarker") {
        Some(m) => Some(decode(&m)?),
        None => None,
    };
    page.next_upload_id_marker = root.opt("NextUploadIdMarker");
    Ok(page)
}

/// A client's DeleteObjects body: 1 to 1000 objects, each with a key.
pub fn parse_delete_objects(body: &[u8]) -> Result<DeleteRequest, S3Error> {
    let root = parse_tree(body).ok_or_else(malformed_xml)?;
    if root.name != "Delete" {
        return Err(malformed_xml());
    }
    let quiet = match root.text_of("Quiet") {
        Some(q) => parse_bool(q).ok_or_else(malformed_xml)?,
        None => false,
    };
    let mut objects = Vec::new();
    for o in root.all("Object") {
        let key = o.text_of("Key").ok_or_else(malformed_xml)?.to_string();
        objects.push(ObjectIdentifier { key, version_id: o.opt("VersionId") });
    }
    if objects.is_empty() || objects.len() > MAX_DELETE_OBJECTS {
        return Err(malformed_xml());
    }
    Ok(DeleteRequest { quiet, objects })
}

/// A backend's DeleteResult.
pub fn parse_delete_result(body: &[u8]) -> Result<(Vec<DeletedEntry>, Vec<DeleteErrorEntry>), S3Error> {
    let bad = || bad_backend_xml("DeleteResult");
    let root = parse_tree(body).ok_or_else(bad)?;
    if root.name != "DeleteResult" {
        return Err(bad());
    }
    let mut deleted = Vec::new();
    for d in root.all("Deleted") {
        deleted.push(DeletedEntry {
            key: d.text_of("Key").ok_or_else(bad)?.to_string(),
            version_id: d.opt("VersionId"),
            delete_marker: d.text_of("DeleteMarker").and_then(parse_bool).unwrap_or(false),
            delete_marker_version_id: d.opt("DeleteMarkerVersionId"),
        });
    }
    let mut errors = Vec::new();
    for e in root.all("Error") {
        errors.push(DeleteErrorEntry {
            key: e.text_of("Key").ok_or_else(bad)?.to_string(),
            version_id: e.opt("VersionId"),
            code: e.text_of("Code").unwrap_or("InternalError").trim().to_string(),
            message: e.text_of("Message").unwrap_or("").to_string(),
        });
    }
    Ok((deleted, errors))
}

/// A `<Tagging><TagSet><Tag><Key/><Value/></Tag>…` document (at most 50 tags, as S3) as pairs.
pub fn parse_tagging(body: &[u8]) -> Result<Vec<(String, String)>, S3Error> {
    let root = parse_tree(body).ok_or_else(malformed_xml)?;
    let set = if root.name == "Tagging" { root.child("TagSet").ok_or_else(malformed_xml)? } else { return Err(malformed_xml()) };
    let tags: Vec<(String, String)> = set
        .all("Tag")
        .map(|t| Ok((t.text_of("Key").ok_or_else(malformed_xml)?.to_string(), t.text_of("Value").unwrap_or("").to_string())))
        .collect::<Result<_, S3Error>>()?;
    if tags.len() > 50 {
        return Err(S3Error::new(ErrorCode::InvalidArgument, "Object tags cannot be greater than 50"));
    }
    Ok(tags)
}

/// Tags in the `x-amz-tagging` header form: `k1=v1&k2=v2`, URL-encoded.
pub fn tagging_header(tags: &[(String, String)]) -> String {
    tags.iter()
        .map(|(k, v)| format!("{}={}", crate::sigv4::uri_encode(k, true), crate::sigv4::uri_encode(v, true)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A client's CompleteMultipartUpload body: at least one part, part numbers 1..=10000 in
/// ascending order (`InvalidPartOrder` otherwise, as S3).
pub fn parse_complete_multipart(body: &[u8]) -> Result<Vec<CompletedPart>, S3Error> {
    let root = parse_tree(body).ok_or_else(malformed_xml)?;
    if root.name != "CompleteMultipartUpload" {
        return Err(malformed_xml());
    }
    let mut parts: Vec<CompletedPart> = Vec::new();
    for p in root.all("Part") {
        let number = p.text_of("PartNumber").ok_or_else(malformed_xml)?.trim();
        let part_number = number.parse::<u32>().map_err(|_| malformed_xml())?;
        if !(1..=10000).contains(&part_number) {
            return Err(S3Error::invalid_argument(
                "Part number must be an integer between 1 and 10000, inclusive",
            ));
        }
        if parts.last().is_some_and(|last| last.part_number >= part_number) {
            return Err(S3Error::new(
                ErrorCode::InvalidPartOrder,
                "The list of parts was not in ascending order. The parts list must be specified in order by part number.",
            ));
        }
        parts.push(CompletedPart {
            part_number,
            etag: p.text_of("ETag").ok_or_else(malformed_xml)?.trim().to_string(),
            checksum_crc32: p.opt("ChecksumCRC32"),
            checksum_crc32c: p.opt("ChecksumCRC32C"),
            checksum_crc64nvme: p.opt("ChecksumCRC64NVME"),
            checksum_sha1: p.opt("ChecksumSHA1"),
            checksum_sha256: p.opt("ChecksumSHA256"),
        });
    }
    if parts.is_empty() {
        return Err(malformed_xml());
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(encoding_url: bool) -> ListOutput {
        ListOutput {
            v2: true,
            name: "vb".into(),
            prefix: "a b/".into(),
            delimiter: Some("/".into()),
            max_keys: 2,
            encoding_url,
            is_truncated: true,
            marker: None,
            next_marker: Some("a b/z+/".into()),
            start_after: Some("a b/0".into()),
            continuation_token: Some("tok".into()),
            next_continuation_token: Some("next".into()),
            contents: vec![ObjectEntry {
                key: "a b/x&y+\u{1}é".into(),
                last_modified: "2024-01-01T00:00:00.000Z".into(),
                etag: "\"abc\"".into(),
                size: 7,
                storage_class: "STANDARD".into(),
                owner: Some(Owner { id: "o".into(), display_name: "d".into() }),
            }],
            common_prefixes: vec!["a b/z+/".into()],
        }
    }

    #[test]
    fn url_encoding_round_trips() {
        let s = "a b+c/d~e%f\u{1}é\u{10FFFF}*";
        let e = url_encode(s);
        assert_eq!(e, "a%20b%2Bc/d~e%25f%01%C3%A9%F4%8F%BF%BF%2A");
        assert_eq!(url_decode(&e).as_deref(), Some(s));
        assert_eq!(url_decode("a+b%2B").as_deref(), Some("a b+"));
        assert_eq!(url_decode("%"), None);
        assert_eq!(url_decode("%4"), None);
        assert_eq!(url_decode("%zz"), None);
        assert_eq!(url_decode("%C3"), None);
        assert_eq!(url_decode("%+1"), None);
    }

    #[test]
    fn error_document() {
        let err = S3Error::new(ErrorCode::NoSuchKey, "no <such> key").with_resource("/vb/a&b");
        let x = error(&err, "r1");
        assert_eq!(
            x,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code><Message>no &lt;such&gt; key</Message><Resource>/vb/a&amp;b</Resource><RequestId>r1</RequestId></Error>"
        );
        assert_eq!(parse_error(x.as_bytes()), Some(("NoSuchKey".into(), "no <such> key".into())));
        let no_resource = error(&S3Error::internal("x"), "r");
        assert!(!no_resource.contains("Resource"));
        assert_eq!(parse_error(b"<ListBucketResult/>"), None);
        assert_eq!(parse_error(b"not xml"), None);
        assert_eq!(parse_error(b""), None);
        assert_eq!(parse_error(b"<Error><Code></Code></Error>"), None);
    }

    #[test]
    fn bucket_documents() {
        let x = list_all_my_buckets("vb", "2024-01-01T00:00:00.000Z", "me");
        assert!(x.contains("<Buckets><Bucket><Name>vb</Name><CreationDate>2024-01-01T00:00:00.000Z</CreationDate></Bucket></Buckets>"));
        assert!(x.contains(NS));
        assert!(location_constraint("us-east-1")
            .ends_with("<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>"));
        assert!(location_constraint("eu-west-1").ends_with(">eu-west-1</LocationConstraint>"));
        assert!(create_bucket_configuration("eu-west-1")
            .contains("<LocationConstraint>eu-west-1</LocationConstraint>"));
        for doc in [x, location_constraint("us-east-1"), create_bucket_configuration("x")] {
            assert!(parse_tree(doc.as_bytes()).is_some());
        }
    }

    #[test]
    fn list_v2_round_trips_through_the_reader() {
        for url in [false, true] {
            let out = output(url);
            let x = list_objects_v2(&out);
            assert!(x.contains("<KeyCount>2</KeyCount>"));
            assert!(x.contains("<NextContinuationToken>next</NextContinuationToken>"));
            assert!(!x.contains("NextMarker"));
            assert_eq!(x.contains("<EncodingType>url</EncodingType>"), url);
            if url {
                assert!(x.contains("<Prefix>a%20b/</Prefix>"));
                assert!(x.contains("<StartAfter>a%20b/0</StartAfter>"));
                assert!(x.contains("<Key>a%20b/x%26y%2B%01%C3%A9</Key>"));
            } else {
                assert!(x.contains("<Key>a b/x&amp;y+&#1;é</Key>"));
            }
            let page = parse_list_objects(x.as_bytes()).unwrap();
            assert_eq!(page.objects, out.contents);
            assert_eq!(page.common_prefixes, out.common_prefixes);
            assert!(page.is_truncated);
            assert_eq!(page.next_continuation_token.as_deref(), Some("next"));
            assert_eq!(page.encoding_type_url, url);
        }
    }

    #[test]
    fn list_v1_shape() {
        let mut out = output(true);
        let x = list_objects_v1(&out);
        assert!(x.contains("<Marker></Marker>"));
        assert!(x.contains("<NextMarker>a%20b/z%2B/</NextMarker>"));
        assert!(!x.contains("KeyCount") && !x.contains("ContinuationToken") && !x.contains("StartAfter"));
        let page = parse_list_objects(x.as_bytes()).unwrap();
        assert_eq!(page.next_marker.as_deref(), Some("a b/z+/"));
        out.encoding_url = false;
        out.marker = Some("m&".into());
        assert!(list_objects_v1(&out).contains("<Marker>m&amp;</Marker>"));
    }

    #[test]
    fn reads_real_s3_listing() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix></Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>
  <EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents><Key>my+key%0D%0A</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>
    <ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size>
    <StorageClass>STANDARD</StorageClass></Contents>
  <CommonPrefixes><Prefix>photos%2F2006/</Prefix></CommonPrefixes>
</ListBucketResult>"#;
        let page = parse_list_objects(body).unwrap();
        assert_eq!(page.objects.len(), 1);
        assert_eq!(page.objects[0].key, "my key\r\n");
        assert_eq!(page.objects[0].etag, "\"fba9dede5f27731c9771645a39863328\"");
        assert_eq!(page.objects[0].size, 434234);
        assert_eq!(page.objects[0].owner, None);
        assert_eq!(page.common_prefixes, vec!["photos/2006/".to_string()]);
        assert_eq!(
            page.next_continuation_token.as_deref(),
            Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
        );
        // Without encoding: entities and character references, CDATA, prefixed names.
        let body = b"<s3:ListBucketResult xmlns:s3='x'><s3:Contents><s3:Key>a&amp;&#x9;&#13;<![CDATA[<b>]]></s3:Key></s3:Contents><s3:IsTruncated>false</s3:IsTruncated></s3:ListBucketResult>";
        let page = parse_list_objects(body).unwrap();
        assert_eq!(page.objects[0].key, "a&\t\r<b>");
        assert_eq!(page.objects[0].storage_class, "STANDARD");
        assert!(!page.is_truncated);
    }

    #[test]
    fn malformed_listings_are_internal_errors() {
        let bad: &[&[u8]] = &[
            b"",
            b"<ListBucketResult>",
            b"<ListBucketResult></Other>",
            b"<Error><Code>x</Code></Error>",
            b"<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
            b"<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
            b"<ListBucketResult><IsTruncated>maybe</IsTruncated></ListBucketResult>",
            b"<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>%zz</Key></Contents></ListBucketResult>",
            b"<ListBucketResult><Contents><Key>&bogus;</Key></Contents></ListBucketResult>",
            b"<ListBucketResult><Contents><Key>&#0;</Key></Contents></ListBucketResult>",
            b"<ListBucketResult/><ListBucketResult/>",
            b"<ListBucketResult>\xff</ListBucketResult>",
        ];
        for body in bad {
            let err = parse_list_objects(body).unwrap_err();
            assert_eq!(err.code, ErrorCode::InternalError, "{:?}", String::from_utf8_lossy(body));
        }
        let deep = "<a>".repeat(100_000);
        assert!(parse_list_objects(deep.as_bytes()).is_err());
        let deep = format!("{}{}", "<a>".repeat(40), "</a>".repeat(40));
        assert!(parse_list_objects(deep.as_bytes()).is_err());
    }

    #[test]
    fn delete_objects_request() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Quiet>true</Quiet>
  <Object><Key> spaced key </Key></Object>
  <Object><Key>v</Key><VersionId>123</VersionId></Object>
</Delete>"#;
        let req = parse_delete_objects(body).unwrap();
        assert!(req.quiet);
        assert_eq!(
            req.objects,
            vec![
                ObjectIdentifier { key: " spaced key ".into(), version_id: None },
                ObjectIdentifier { key: "v".into(), version_id: Some("123".into()) },
            ]
        );
        let sent = delete_objects_body(&req.objects, true);
        assert_eq!(parse_delete_objects(sent.as_bytes()).unwrap(), req);
        let not_quiet = parse_delete_objects(delete_objects_body(&req.objects, false).as_bytes()).unwrap();
        assert!(!not_quiet.quiet);

        let many: String = (0..1001).map(|i| format!("<Object><Key>{i}</Key></Object>")).collect();
        let ok: String = (0..1000).map(|i| format!("<Object><Key>{i}</Key></Object>")).collect();
        assert_eq!(
            parse_delete_objects(format!("<Delete>{ok}</Delete>").as_bytes()).unwrap().objects.len(),
            1000
        );
        let bad = [
            "".to_string(),
            "<Delete></Delete>".into(),
            "<Delete><Quiet>true</Quiet></Delete>".into(),
            format!("<Delete>{many}</Delete>"),
            "<Delete><Object><VersionId>1</VersionId></Object></Delete>".into(),
            "<Delete><Quiet>yes</Quiet><Object><Key>a</Key></Object></Delete>".into(),
            "<Remove><Object><Key>a</Key></Object></Remove>".into(),
            "<Delete><Object><Key>a</Key></Object>".into(),
        ];
        for body in bad {
            assert_eq!(
                parse_delete_objects(body.as_bytes()).unwrap_err().code,
                ErrorCode::MalformedXML,
                "{body}"
            );
        }
    }

    #[test]
    fn delete_result_round_trips() {
        let deleted = vec![
            DeletedEntry { key: "a<".into(), ..Default::default() },
            DeletedEntry {
                key: "b".into(),
                version_id: Some("v".into()),
                delete_marker: true,
                delete_marker_version_id: Some("m".into()),
            },
        ];
        let errors = vec![DeleteErrorEntry {
            key: "c".into(),
            version_id: None,
            code: "AccessDenied".into(),
            message: "Access Denied".into(),
        }];
        let x = delete_result(&deleted, &errors, false);
        assert_eq!(parse_delete_result(x.as_bytes()).unwrap(), (deleted.clone(), errors.clone()));
        let q = delete_result(&deleted, &errors, true);
        assert!(!q.contains("<Deleted>"));
        assert_eq!(parse_delete_result(q.as_bytes()).unwrap(), (vec![], errors));
        assert!(parse_delete_result(b"<Error/>").is_err());
        assert!(parse_delete_result(b"<DeleteResult><Deleted/></DeleteResult>").is_err());
    }

    #[test]
    fn result_fields() {
        let copy = b"<?xml version=\"1.0\"?><CopyObjectResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LastModified>x</LastModified><ETag>&quot;9b2c&quot;</ETag></CopyObjectResult>";
        assert_eq!(parse_result_field(copy, "ETag").as_deref(), Some("\"9b2c\""));
        assert_eq!(parse_result_field(copy, "UploadId"), None);
        let init = b"<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>abc/def</UploadId></InitiateMultipartUploadResult>";
        assert_eq!(parse_result_field(init, "UploadId").as_deref(), Some("abc/def"));
        assert_eq!(parse_result_field(b"<Error><Code>X</Code><ETag>e</ETag></Error>", "ETag"), None);
        assert_eq!(parse_result_field(b"not xml", "ETag"), None);
    }

    #[test]
    fn tagging_documents() {
        let doc = br#"<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet><Tag><Key>a b</Key><Value>1&amp;2</Value></Tag><Tag><Key>c</Key><Value></Value></Tag></TagSet></Tagging>"#;
        let tags = parse_tagging(doc).unwrap();
        assert_eq!(tags, vec![("a b".to_string(), "1&2".to_string()), ("c".to_string(), String::new())]);
        assert_eq!(tagging_header(&tags), "a%20b=1%262&c=");
        assert_eq!(parse_tagging(b"<Tagging>").unwrap_err().code, ErrorCode::MalformedXML);
    }

    #[test]
    fn complete_multipart() {
        let body = br#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Part><PartNumber>1</PartNumber><ETag>"a"</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>
  <Part><ETag>&quot;b&quot;</ETag><PartNumber> 3 </PartNumber></Part>
</CompleteMultipartUpload>"#;
        let parts = parse_complete_multipart(body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].etag, "\"a\"");
        assert_eq!(parts[0].checksum_crc32.as_deref(), Some("AAAAAA=="));
        assert_eq!(parts[1].part_number, 3);
        assert_eq!(parse_complete_multipart(complete_multipart_body(&parts).as_bytes()).unwrap(), parts);
        let order = b"<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>a</ETag></Part><Part><PartNumber>1</PartNumber><ETag>b</ETag></Part></CompleteMultipartUpload>";
        assert_eq!(parse_complete_multipart(order).unwrap_err().code, ErrorCode::InvalidPartOrder);
        let range = b"<CompleteMultipartUpload><Part><PartNumber>0</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>";
        assert_eq!(parse_complete_multipart(range).unwrap_err().code, ErrorCode::InvalidArgument);
        for bad in [
            &b"<CompleteMultipartUpload/>"[..],
            b"<CompleteMultipartUpload><Part><ETag>a</ETag></Part></CompleteMultipartUpload>",
            b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>",
            b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>",
            b"<Other/>",
        ] {
            assert_eq!(parse_complete_multipart(bad).unwrap_err().code, ErrorCode::MalformedXML);
        }
    }

    #[test]
    fn readers_never_panic_on_garbage() {
        let mut seed = 0x9e3779b97f4a7c15u64;
        let pieces: &[&[u8]] = &[
            b"<",
            b">",
            b"</",
            b"/>",
            b"&",
            b";",
            b"#",
            b"x",
            b"Key",
            b"Delete",
            b"Object",
            b"ListBucketResult",
            b"Contents",
            b"<![CDATA[",
            b"]]>",
            b"<!--",
            b"-->",
            b"<?",
            b"?>",
            b"\xff",
            b"%",
            b"\"",
            b"=",
            b" ",
            b"&#",
            b"&amp;",
            b"<!DOCTYPE",
            b"Error",
            b"Code",
        ];
        for _ in 0..5000 {
            let mut body = Vec::new();
            for _ in 0..(seed % 20) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                body.extend_from_slice(pieces[(seed % pieces.len() as u64) as usize]);
            }
            let _ = parse_error(&body);
            let _ = parse_list_objects(&body);
            let _ = parse_delete_objects(&body);
            let _ = parse_delete_result(&body);
            let _ = parse_complete_multipart(&body);
        }
    }
}
