//! XML readers: client request bodies and backend answers parsed into S3 data types, never panicking on bad input.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::codec::url_decode;
use crate::error::{ErrorCode, S3Error};
use crate::types::{
    BackendPage, CompletedPart, DeleteErrorEntry, DeleteRequest, DeletedEntry, ObjectEntry, ObjectIdentifier, Owner,
    UploadEntry, UploadsPage,
};

/// S3's limit on the number of keys in one DeleteObjects request.
pub const MAX_DELETE_OBJECTS: usize = 1000;

/// Deepest element nesting accepted; S3 documents need five levels.
const MAX_DEPTH: usize = 32;

/// A parsed element: local name (namespace prefix dropped), its own text, its child elements.
#[derive(Debug, Default)]
pub(super) struct Node {
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
pub(super) fn parse_tree(body: &[u8]) -> Option<Node> {
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

/// A backend listing's root element, and how its names read (URL-decoded when it says
/// `EncodingType=url`): what ListObjects and ListMultipartUploads answers share.
struct Listing {
    root: Node,
    url: bool,
    name: &'static str,
}

impl Listing {
    /// The root of `body`, which must be named `name`.
    fn parse(body: &[u8], name: &'static str) -> Result<Listing, S3Error> {
        let root = parse_tree(body).filter(|r| r.name == name).ok_or_else(|| bad_backend_xml(name))?;
        let url = root.text_of("EncodingType").is_some_and(|t| t.trim().eq_ignore_ascii_case("url"));
        Ok(Listing { root, url, name })
    }

    fn bad(&self) -> S3Error {
        bad_backend_xml(self.name)
    }

    /// A key or prefix as listed, URL-decoded when the listing is encoded.
    fn decode(&self, s: &str) -> Result<String, S3Error> {
        if !self.url {
            return Ok(s.to_string());
        }
        url_decode(s).ok_or_else(|| self.bad())
    }

    /// The text of the root's child `field` (a marker), decoded as a name.
    fn decoded(&self, field: &str) -> Result<Option<String>, S3Error> {
        self.root.opt(field).map(|m| self.decode(&m)).transpose()
    }

    /// The `Key` child of `n`, decoded; a listing entry without one is malformed.
    fn key_of(&self, n: &Node) -> Result<String, S3Error> {
        self.decode(n.text_of("Key").ok_or_else(|| self.bad())?)
    }

    fn common_prefixes(&self) -> Result<Vec<String>, S3Error> {
        self.root.all("CommonPrefixes").flat_map(|cp| cp.all("Prefix")).map(|p| self.decode(&p.text)).collect()
    }

    fn is_truncated(&self) -> Result<bool, S3Error> {
        self.root.text_of("IsTruncated").map_or(Ok(false), |t| parse_bool(t).ok_or_else(|| self.bad()))
    }
}

/// The `name` child of `n` (an `Owner` or `Initiator`) as an owner.
fn owner(n: &Node, name: &str) -> Option<Owner> {
    n.child(name).map(|o| Owner {
        id: o.text_of("ID").unwrap_or("").to_string(),
        display_name: o.text_of("DisplayName").unwrap_or("").to_string(),
    })
}

/// A backend's ListBucketResult (V1 or V2), URL-decoding keys and prefixes when it encoded them.
pub fn parse_list_objects(body: &[u8]) -> Result<BackendPage, S3Error> {
    let listing = Listing::parse(body, "ListBucketResult")?;
    let mut page = BackendPage { encoding_type_url: listing.url, ..BackendPage::default() };
    for c in listing.root.all("Contents") {
        let size = match c.text_of("Size") {
            Some(s) => s.trim().parse::<u64>().map_err(|_| listing.bad())?,
            None => 0,
        };
        page.objects.push(ObjectEntry {
            key: listing.key_of(c)?,
            last_modified: c.text_of("LastModified").unwrap_or("").trim().to_string(),
            etag: c.text_of("ETag").unwrap_or("").trim().to_string(),
            size,
            storage_class: c.opt("StorageClass").unwrap_or_else(|| "STANDARD".to_string()),
            owner: owner(c, "Owner"),
        });
    }
    page.common_prefixes = listing.common_prefixes()?;
    page.is_truncated = listing.is_truncated()?;
    page.next_continuation_token = listing.root.opt("NextContinuationToken");
    page.next_marker = listing.decoded("NextMarker")?;
    Ok(page)
}

/// A backend's ListMultipartUploadsResult, URL-decoding keys and prefixes when it encoded them.
pub fn parse_list_multipart_uploads(body: &[u8]) -> Result<UploadsPage, S3Error> {
    let listing = Listing::parse(body, "ListMultipartUploadsResult")?;
    let mut page = UploadsPage::default();
    for u in listing.root.all("Upload") {
        page.uploads.push(UploadEntry {
            key: listing.key_of(u)?,
            upload_id: u.opt("UploadId").ok_or_else(|| listing.bad())?.trim().to_string(),
            initiator: owner(u, "Initiator"),
            owner: owner(u, "Owner"),
            storage_class: u.opt("StorageClass").unwrap_or_else(|| "STANDARD".to_string()),
            initiated: u.text_of("Initiated").unwrap_or("").trim().to_string(),
            checksum_algorithm: u.opt("ChecksumAlgorithm"),
        });
    }
    page.common_prefixes = listing.common_prefixes()?;
    page.is_truncated = listing.is_truncated()?;
    page.next_key_marker = listing.decoded("NextKeyMarker")?;
    page.next_upload_id_marker = listing.root.opt("NextUploadIdMarker");
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
        objects.push(ObjectIdentifier {
            key,
            version_id: o.opt("VersionId"),
            etag: o.opt("ETag"),
            last_modified_time: o.opt("LastModifiedTime"),
            size: o.opt("Size"),
        });
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
