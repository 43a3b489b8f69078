//! Client query parameters of the listing operations, parsed: ListObjects (V1 and V2) and ListMultipartUploads requests.

use crate::error::S3Error;

/// S3's default and largest page of keys.
pub const MAX_KEYS: u32 = 1000;
/// S3's default and largest page of uploads.
pub const MAX_UPLOADS: u32 = 1000;

/// A client's ListObjects (V1) or ListObjectsV2 request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    pub v2: bool,
    pub prefix: String,
    /// `None` when absent or empty.
    pub delimiter: Option<String>,
    /// 0..=1000.
    pub max_keys: u32,
    pub start_after: Option<String>,
    pub continuation_token: Option<String>,
    pub marker: Option<String>,
    pub encoding_url: bool,
    pub fetch_owner: bool,
}

/// A `max-keys`/`max-uploads` value: 0..=i32::MAX, capped at `cap`; absent means `cap`.
pub(crate) fn parse_max(value: Option<&str>, cap: u32, error: &str) -> Result<u32, S3Error> {
    match value {
        None => Ok(cap),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(n.min(i64::from(cap)) as u32),
            _ => Err(S3Error::invalid_argument(error)),
        },
    }
}

/// `encoding-type`: absent or empty means none; `url` (any case) is the only encoding S3 knows.
pub(crate) fn parse_encoding(value: Option<&str>) -> Result<bool, S3Error> {
    match value {
        None | Some("") => Ok(false),
        Some(e) if e.eq_ignore_ascii_case("url") => Ok(true),
        Some(_) => Err(S3Error::invalid_argument("Invalid Encoding Method specified in Request")),
    }
}

impl ListRequest {
    /// Read the request from its decoded query parameters (the first occurrence of each counts).
    pub fn from_query(params: &[(String, String)]) -> Result<ListRequest, S3Error> {
        let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let text = |name: &str| get(name).filter(|v| !v.is_empty()).map(str::to_string);
        let v2 = match get("list-type") {
            None | Some("1") => false,
            Some("2") => true,
            Some(_) => return Err(S3Error::invalid_argument("Invalid list-type; use 2 for ListObjectsV2")),
        };
        let max_keys =
            parse_max(get("max-keys"), MAX_KEYS, "Provided max-keys not an integer or within integer range")?;
        let encoding_url = parse_encoding(get("encoding-type"))?;
        Ok(ListRequest {
            v2,
            prefix: get("prefix").unwrap_or("").to_string(),
            delimiter: text("delimiter"),
            max_keys,
            start_after: text("start-after"),
            continuation_token: text("continuation-token"),
            marker: text("marker"),
            encoding_url,
            fetch_owner: get("fetch-owner").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        })
    }
}

/// A client's ListMultipartUploads request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadsRequest {
    pub prefix: String,
    /// `None` when absent or empty.
    pub delimiter: Option<String>,
    /// 0..=1000.
    pub max_uploads: u32,
    pub key_marker: Option<String>,
    /// Only used together with `key_marker`, as on S3.
    pub upload_id_marker: Option<String>,
    pub encoding_url: bool,
}

impl UploadsRequest {
    /// Read the request from its decoded query parameters (the first occurrence of each counts).
    pub fn from_query(params: &[(String, String)]) -> Result<UploadsRequest, S3Error> {
        let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let text = |name: &str| get(name).filter(|v| !v.is_empty()).map(str::to_string);
        let max_uploads = parse_max(
            get("max-uploads"),
            MAX_UPLOADS,
            "Argument max-uploads must be an integer between 0 and 2147483647",
        )?;
        let encoding_url = parse_encoding(get("encoding-type"))?;
        let key_marker = text("key-marker");
        Ok(UploadsRequest {
            prefix: get("prefix").unwrap_or("").to_string(),
            delimiter: text("delimiter"),
            max_uploads,
            upload_id_marker: text("upload-id-marker").filter(|_| key_marker.is_some()),
            key_marker,
            encoding_url,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn list_objects_query() {
        let r = ListRequest::from_query(&[]).unwrap();
        assert_eq!((r.v2, r.prefix.as_str(), r.delimiter.as_deref(), r.max_keys), (false, "", None, 1000));
        assert!(!r.encoding_url && !r.fetch_owner && r.start_after.is_none() && r.marker.is_none());
        let r = ListRequest::from_query(&q(&[
            ("list-type", "2"),
            ("prefix", "a b"),
            ("delimiter", ""),
            ("max-keys", "5000"),
            ("start-after", "x"),
            ("continuation-token", "t"),
            ("encoding-type", "url"),
            ("fetch-owner", "true"),
        ]))
        .unwrap();
        assert!(r.v2 && r.encoding_url && r.fetch_owner);
        assert_eq!((r.prefix.as_str(), r.delimiter.as_deref(), r.max_keys), ("a b", None, 1000));
        assert_eq!((r.start_after.as_deref(), r.continuation_token.as_deref()), (Some("x"), Some("t")));
        let r =
            ListRequest::from_query(&q(&[("marker", "m"), ("max-keys", "0"), ("delimiter", "/")])).unwrap();
        assert_eq!((r.marker.as_deref(), r.max_keys, r.delimiter.as_deref()), (Some("m"), 0, Some("/")));
        for bad in [
            q(&[("max-keys", "-1")]),
            q(&[("max-keys", "ten")]),
            q(&[("max-keys", "")]),
            q(&[("max-keys", "99999999999")]),
            q(&[("encoding-type", "base64")]),
            q(&[("list-type", "3")]),
        ] {
            assert_eq!(
                ListRequest::from_query(&bad).unwrap_err().code,
                ErrorCode::InvalidArgument,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn list_uploads_query() {
        let r = UploadsRequest::from_query(&[]).unwrap();
        assert_eq!((r.prefix.as_str(), r.delimiter.as_deref(), r.max_uploads), ("", None, 1000));
        assert!(!r.encoding_url && r.key_marker.is_none() && r.upload_id_marker.is_none());
        let r = UploadsRequest::from_query(&q(&[
            ("uploads", ""),
            ("prefix", "a b"),
            ("delimiter", ""),
            ("max-uploads", "5000"),
            ("key-marker", "k"),
            ("upload-id-marker", "u"),
            ("encoding-type", "url"),
        ]))
        .unwrap();
        assert_eq!((r.prefix.as_str(), r.delimiter.as_deref(), r.max_uploads), ("a b", None, 1000));
        assert_eq!((r.key_marker.as_deref(), r.upload_id_marker.as_deref(), r.encoding_url), (Some("k"), Some("u"), true));
        // upload-id-marker means nothing without key-marker.
        let r = UploadsRequest::from_query(&q(&[("upload-id-marker", "u"), ("max-uploads", "0")])).unwrap();
        assert_eq!((r.upload_id_marker, r.max_uploads), (None, 0));
        for bad in [("max-uploads", "-1"), ("max-uploads", "x"), ("max-uploads", ""), ("encoding-type", "b64")] {
            let err = UploadsRequest::from_query(&q(&[bad])).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidArgument, "{bad:?}");
        }
    }
}
