//! S3 data types: listing entries and pages, uploads, batch-delete entries and completed parts, as the readers, writers and merges share them.

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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectIdentifier {
    pub key: String,
    pub version_id: Option<String>,
    /// Delete only if the object still has this ETag, LastModifiedTime or Size (the conditional
    /// elements of `<Object>`), passed on to the backend as written.
    pub etag: Option<String>,
    pub last_modified_time: Option<String>,
    pub size: Option<String>,
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

/// A merged ListObjects(V2) page, ready for [`crate::xml::list_objects_v2`] / [`crate::xml::list_objects_v1`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOutput {
    pub v2: bool,
    pub name: String,
    pub prefix: String,
    pub delimiter: Option<String>,
    pub max_keys: u32,
    pub encoding_url: bool,
    pub is_truncated: bool,
    /// V1: the marker the client sent (S3 always writes the element).
    pub marker: Option<String>,
    /// V1: set only when truncated and a delimiter was given, as S3 does.
    pub next_marker: Option<String>,
    /// V2: echoes of the request.
    pub start_after: Option<String>,
    pub continuation_token: Option<String>,
    /// V2: our own opaque token, set when truncated.
    pub next_continuation_token: Option<String>,
    pub contents: Vec<ObjectEntry>,
    pub common_prefixes: Vec<String>,
}

impl ListOutput {
    /// Keys and common prefixes in the page (V2 `KeyCount`).
    pub fn key_count(&self) -> usize {
        self.contents.len() + self.common_prefixes.len()
    }
}

/// A merged ListMultipartUploads page, ready for [`crate::xml::list_multipart_uploads`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadsOutput {
    pub bucket: String,
    pub prefix: String,
    pub delimiter: Option<String>,
    pub max_uploads: u32,
    pub encoding_url: bool,
    pub key_marker: Option<String>,
    pub upload_id_marker: Option<String>,
    pub is_truncated: bool,
    /// Set when truncated: the last key or common prefix of the page.
    pub next_key_marker: Option<String>,
    /// Set when truncated and the page ends with an upload.
    pub next_upload_id_marker: Option<String>,
    pub uploads: Vec<UploadEntry>,
    pub common_prefixes: Vec<String>,
}
