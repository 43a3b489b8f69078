//! Byte codecs S3 uses on the wire: hex, base64 (standard and URL-safe), percent/URI encoding and query decoding.

use crate::error::S3Error;

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes` (SigV4 signatures and hashes, ring cache names).
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(HEX_LOWER[usize::from(b >> 4)]));
        s.push(char::from(HEX_LOWER[usize::from(b & 15)]));
    }
    s
}

/// The value of one hex digit (either case); `None` for any other byte.
pub fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A decimal number of 1 to 9 ASCII digits (no sign, no spaces); `None` otherwise.
pub fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// AWS UriEncode: keep `A-Z a-z 0-9 - . _ ~` (and `/` unless `encode_slash`), `%XX` every other UTF-8 byte.
///
/// With `encode_slash = false` this is also the `encoding-type=url` form S3 writes keys in
/// listings: space is `%20` and `+` is `%2B`, so both percent-only and form (`+` = space) decoders
/// get the key back.
pub fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (b == b'/' && !encode_slash)
        {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
            out.push(char::from(HEX_UPPER[usize::from(b & 15)]));
        }
    }
    out
}

/// Undo `%XX` escapes (and `+` as space if `plus_is_space`); `None` on a broken escape.
fn unescape(s: &str, plus_is_space: bool) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'%' => {
                let hi = hex_value(*b.get(i + 1)?)?;
                let lo = hex_value(*b.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

/// Decode `%XX` escapes (`+` stays `+`, as in a path); invalid escapes or non-UTF-8 results are `InvalidArgument`.
pub fn percent_decode(s: &str) -> Result<String, S3Error> {
    let bytes = unescape(s, false)
        .ok_or_else(|| S3Error::invalid_argument(format!("invalid percent-encoding in {s:?}")))?;
    String::from_utf8(bytes)
        .map_err(|_| S3Error::invalid_argument(format!("{s:?} does not decode to UTF-8")))
}

/// Undo `encoding-type=url` in a backend's listing (`%XX`, and `+` for space as S3 and MinIO write
/// it). `None` when the escapes are broken or the bytes are not UTF-8. Unlike [`percent_decode`],
/// `+` means space here (form decoding), as it does in a query string.
pub fn url_decode(s: &str) -> Option<String> {
    String::from_utf8(unescape(s, true)?).ok()
}

/// Split a raw query string into decoded `(name, value)` pairs (`+` means space, as S3 reads it).
pub fn decode_query(raw: &str) -> Result<Vec<(String, String)>, S3Error> {
    let raw = raw.strip_prefix('?').unwrap_or(raw);
    let decode = |s: &str| percent_decode(&s.replace('+', " "));
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64URL_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Standard base64 (RFC 4648 alphabet) with `=` padding (checksums, Content-MD5, PEM).
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b0 = u32::from(c.first().copied().unwrap_or(0));
        let b1 = u32::from(c.get(1).copied().unwrap_or(0));
        let b2 = u32::from(c.get(2).copied().unwrap_or(0));
        let n = (b0 << 16) | (b1 << 8) | b2;
        let sym = |shift: u32| char::from(BASE64_ALPHABET[((n >> shift) & 63) as usize]);
        out.push(sym(18));
        out.push(sym(12));
        out.push(if c.len() > 1 { sym(6) } else { '=' });
        out.push(if c.len() > 2 { sym(0) } else { '=' });
    }
    out
}

/// Each byte's value in the standard alphabet; [`NOT_BASE64`] for any other byte.
const BASE64_VALUES: [u8; 256] = {
    let mut table = [NOT_BASE64; 256];
    let mut i = 0;
    while i < 64 {
        table[BASE64_ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Marks a byte outside the alphabet in [`BASE64_VALUES`] (the high bit, which no value has).
const NOT_BASE64: u8 = 0x80;

/// The three bytes four base64 symbols stand for, or `None` if one is not in the alphabet.
fn base64_quad(q: &[u8]) -> Option<[u8; 3]> {
    let [a, b, c, d] = [q[0], q[1], q[2], q[3]].map(|c| BASE64_VALUES[usize::from(c)]);
    if (a | b | c | d) & NOT_BASE64 != 0 {
        return None;
    }
    let n = u32::from(a) << 18 | u32::from(b) << 12 | u32::from(c) << 6 | u32::from(d);
    Some([(n >> 16) as u8, (n >> 8) as u8, n as u8])
}

/// Decode standard padded base64; `None` on any invalid character, length or padding. (A table
/// lookup per symbol and three bytes per quad; `ring_tables` is read with [`base64_u64_at`].)
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let (whole, last) = bytes.split_at(bytes.len().saturating_sub(4));
    for q in whole.chunks_exact(4) {
        out.extend_from_slice(&base64_quad(q)?);
    }
    if last.is_empty() {
        return Some(out);
    }
    // The last quad may end in one or two `=`, standing for zero bits.
    let pad = last.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return None;
    }
    let mut quad = [b'A'; 4];
    quad[..4 - pad].copy_from_slice(&last[..4 - pad]);
    out.extend_from_slice(&base64_quad(&quad)?[..3 - pad]);
    Some(out)
}

/// The eight bytes at `offset` of the data standard base64 `text` encodes, as a big-endian
/// number, read from the (at most four) symbol quads that hold them, without decoding the rest;
/// `None` when the text ends first or a symbol there is not base64. Padding reads as zero bits.
pub fn base64_u64_at(text: &str, offset: usize) -> Option<u64> {
    let (first, last) = (offset / 3, (offset + 7) / 3);
    let mut bytes = [0u8; 12];
    for (quad, out) in text.as_bytes().get(first * 4..last * 4 + 4)?.as_chunks::<4>().0.iter().zip(bytes.chunks_exact_mut(3)) {
        out.copy_from_slice(&base64_quad(&quad.map(|c| if c == b'=' { b'A' } else { c }))?);
    }
    let start = offset - first * 3;
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[start..start + 8]);
    Some(u64::from_be_bytes(word))
}

/// URL-safe base64 (`-` and `_`) without padding (listing continuation tokens).
pub fn base64url_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(BASE64URL_ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// Decode unpadded URL-safe base64; `None` on any other character or a non-canonical ending.
pub fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = BASE64URL_ALPHABET.iter().position(|&x| x == c)? as u32;
        acc = ((acc << 6) | v) & 0xffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    // Only canonical encodings: no dangling sextet, no stray low bits.
    (bits < 6 && acc & ((1 << bits) - 1) == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn hex_both_ways() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
        assert_eq!(hex_value(b'7'), Some(7));
        assert_eq!(hex_value(b'c'), Some(12));
        assert_eq!(hex_value(b'F'), Some(15));
        assert_eq!(hex_value(b'g'), None);
    }

    #[test]
    fn digits_are_plain_decimal() {
        assert_eq!(digits("0"), Some(0));
        assert_eq!(digits("604800"), Some(604_800));
        assert_eq!(digits("999999999"), Some(999_999_999));
        for bad in ["", "1234567890", "+1", "-1", " 1", "1a", "١"] {
            assert_eq!(digits(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn uri_encode_rules() {
        let unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        assert_eq!(uri_encode(unreserved, true), unreserved);
        assert_eq!(uri_encode("a b/c", true), "a%20b%2Fc");
        assert_eq!(uri_encode("a b/c", false), "a%20b/c");
        assert_eq!(uri_encode("+=&%$?#", true), "%2B%3D%26%25%24%3F%23");
        assert_eq!(uri_encode("\u{1234}", false), "%E1%88%B4");
        assert_eq!(uri_encode("ñ", false), "%C3%B1");
    }

    #[test]
    fn percent_decode_rules() {
        assert_eq!(percent_decode("a%20b+c%2Fd%2f").unwrap(), "a b+c/d/");
        assert_eq!(percent_decode("%E1%88%B4").unwrap(), "\u{1234}");
        for bad in ["%", "%2", "%zz", "a%g0", "%FF", "%C3"] {
            let e = percent_decode(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidArgument, "{bad:?}");
        }
    }

    #[test]
    fn url_encoding_round_trips() {
        let s = "a b+c/d~e%f\u{1}é\u{10FFFF}*";
        let e = uri_encode(s, false);
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
    fn decode_query_rules() {
        assert_eq!(decode_query("").unwrap(), owned(&[]));
        assert_eq!(
            decode_query("?acl&prefix=a+b%2Bc&x=%3D=&&list-type=2").unwrap(),
            owned(&[("acl", ""), ("prefix", "a b+c"), ("x", "=="), ("list-type", "2")])
        );
        assert_eq!(decode_query("a=%zz").unwrap_err().code, ErrorCode::InvalidArgument);
    }

    #[test]
    fn eight_bytes_read_anywhere_in_base64_match_the_whole_decode() {
        let data: Vec<u8> = (0..64u32).map(|i| (i * 37 + 11) as u8).collect();
        for len in [8, 9, 10, 11, 24, 61, 64] {
            let text = base64_encode(&data[..len]);
            for offset in 0..=len - 8 {
                let want = u64::from_be_bytes(data[offset..offset + 8].try_into().unwrap());
                assert_eq!(base64_u64_at(&text, offset), Some(want), "{len} bytes, at {offset}");
            }
            assert_eq!(base64_u64_at(&text, len), None, "past the end of {len} bytes");
        }
        assert_eq!(base64_u64_at("AAAA*AAAAAAA", 0), None, "a symbol outside the alphabet");
    }

    #[test]
    fn base64_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            assert_eq!(base64_decode(encoded).as_deref(), Some(plain.as_bytes()));
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(base64_decode(&base64_encode(&all)), Some(all));
    }

    #[test]
    fn base64_rejects_malformed() {
        for bad in [
            "Zg=", "Zg", "Z===", "Zm9v=", "Zg==Zg==", "Zm9v\n", "Zm 9", "Zm-_", "====", "é123",
        ] {
            assert_eq!(base64_decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn base64url_round_trips() {
        for n in 0..40u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
            let e = base64url_encode(&data);
            assert_eq!(base64url_decode(&e), Some(data));
        }
        assert_eq!(base64url_encode(b"hello?>"), "aGVsbG8_Pg");
        assert_eq!(base64url_decode("A"), None);
        assert_eq!(base64url_decode("AB"), None);
        assert_eq!(base64url_decode("a+b="), None);
    }
}
