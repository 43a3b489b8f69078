//! The canonical forms SigV4 signs: canonical URI, canonical query string and canonical headers.

use crate::codec::{percent_decode, uri_encode};
use crate::error::S3Error;

/// SigV4 canonical query string of decoded parameters: encoded, sorted, `k=v` joined by `&`.
pub fn canonical_query_string(params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> =
        params.iter().map(|(k, v)| (uri_encode(k, true), uri_encode(v, true))).collect();
    encoded.sort();
    let pairs: Vec<String> = encoded.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join("&")
}

/// Canonical URI of an inbound S3 request: the raw path decoded once and re-encoded (no `.`/`//` folding).
pub fn canonical_uri(raw_path: &str) -> Result<String, S3Error> {
    if raw_path.is_empty() {
        return Ok("/".to_string());
    }
    Ok(uri_encode(&percent_decode(raw_path)?, false))
}

fn normalize_header_value(v: &str) -> String {
    let words: Vec<&str> = v.trim().split(' ').filter(|w| !w.is_empty()).collect();
    words.join(" ")
}

/// Canonical headers block (each line ending in `\n`) and the `;`-joined signed header names.
pub fn canonical_headers(headers: &[(String, String)]) -> (String, String) {
    let mut list: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), normalize_header_value(v)))
        .collect();
    list.sort_by(|a, b| a.0.cmp(&b.0)); // stable: repeated headers keep their order
    let mut grouped: Vec<(String, String)> = Vec::new();
    for (name, value) in list {
        match grouped.last_mut() {
            Some((last, joined)) if *last == name => {
                joined.push(',');
                joined.push_str(&value);
            }
            _ => grouped.push((name, value)),
        }
    }
    let mut block = String::new();
    for (name, value) in &grouped {
        block.push_str(name);
        block.push(':');
        block.push_str(value);
        block.push('\n');
    }
    let names: Vec<&str> = grouped.iter().map(|(n, _)| n.as_str()).collect();
    (block, names.join(";"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigv4::tests::owned;

    #[test]
    fn canonical_query_sorts_encoded() {
        let q = owned(&[("prefix", "a b"), ("acl", ""), ("a", "/"), ("a", "+ %"), ("Z", "~")]);
        assert_eq!(canonical_query_string(&q), "Z=~&a=%2B%20%25&a=%2F&acl=&prefix=a%20b");
        assert_eq!(canonical_query_string(&[]), "");
    }

    #[test]
    fn canonical_uri_is_not_normalised() {
        assert_eq!(canonical_uri("").unwrap(), "/");
        assert_eq!(
            canonical_uri("/a//.././%25%20%2B/%E1%88%B4").unwrap(),
            "/a//.././%25%20%2B/%E1%88%B4"
        );
        assert_eq!(canonical_uri("/b/a+b/c d/~x$").unwrap(), "/b/a%2Bb/c%20d/~x%24");
        assert_eq!(canonical_uri("/b/%7Ex").unwrap(), "/b/~x");
    }

    #[test]
    fn canonical_headers_group_trim_and_sort() {
        let h = owned(&[("X-B", " two  words "), ("host", "h"), ("x-b", "again")]);
        assert_eq!(canonical_headers(&h), ("host:h\nx-b:two words,again\n".into(), "host;x-b".into()));
    }
}
