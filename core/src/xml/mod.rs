//! S3 XML bodies: the documents the proxy writes for clients and the backend answers it reads.
//!
//! [`write`] holds the writers, [`read`] the readers and [`escape`] the text escaping; the functions
//! are re-exported here, so callers write `xml::parse_tagging` and `xml::error`.

pub mod escape;
pub mod read;
pub mod write;

pub use escape::escape;
pub use read::{
    parse_result_field,
    parse_complete_multipart, parse_delete_objects, parse_delete_result, parse_error, parse_list_multipart_uploads,
    parse_list_objects, parse_tagging, MAX_DELETE_OBJECTS,
};
pub use write::{
    complete_multipart_body, create_bucket_configuration, delete_objects_body, delete_result, error,
    list_all_my_buckets, list_multipart_uploads, list_objects_v1, list_objects_v2, location_constraint, tagging_header,
};

#[cfg(test)]
mod tests;
