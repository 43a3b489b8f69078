//! S3 additional checksums (CRC32, CRC32C, CRC64/NVME, SHA-1, SHA-256), computed incrementally.

use crate::codec::base64_encode;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::fmt;

/// The checksum algorithms S3 accepts in `x-amz-checksum-*` headers and trailers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    pub const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ];

    /// The name used in `x-amz-checksum-algorithm` / `x-amz-sdk-checksum-algorithm` (e.g. `CRC32`).
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    /// The lowercase header (or trailer) name carrying this checksum, e.g. `x-amz-checksum-crc32`.
    pub fn header_name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
            ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
            ChecksumAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
            ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// Parse an algorithm name such as `CRC32` or `crc64nvme` (case-insensitive).
    pub fn from_name(name: &str) -> Option<ChecksumAlgorithm> {
        let name = name.trim();
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// Parse a header name such as `x-amz-checksum-crc32` (case-insensitive).
    pub fn from_header_name(name: &str) -> Option<ChecksumAlgorithm> {
        let name = name.trim();
        Self::ALL
            .into_iter()
            .find(|a| a.header_name().eq_ignore_ascii_case(name))
    }

    /// Length in bytes of the raw digest.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
            ChecksumAlgorithm::Crc64Nvme => 8,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
        }
    }
}

/// Slicing-by-8 tables for a reflected 32-bit CRC.
const fn crc32_tables(poly: u32) -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ poly } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut s = 1;
    while s < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        s += 1;
    }
    t
}

/// Slicing-by-8 tables for a reflected 64-bit CRC.
const fn crc64_tables(poly: u64) -> [[u64; 256]; 8] {
    let mut t = [[0u64; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u64;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ poly } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut s = 1;
    while s < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        s += 1;
    }
    t
}

static CRC32_TABLES: [[u32; 256]; 8] = crc32_tables(0xEDB8_8320);
static CRC32C_TABLES: [[u32; 256]; 8] = crc32_tables(0x82F6_3B78);
static CRC64_NVME_TABLES: [[u64; 256]; 8] = crc64_tables(0x9A6C_9329_AC4B_C9B5);

fn crc32_update(t: &[[u32; 256]; 8], mut crc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let lo = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        crc = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xff) as usize]
            ^ t[2][((hi >> 8) & 0xff) as usize]
            ^ t[1][((hi >> 16) & 0xff) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        crc = (crc >> 8) ^ t[0][((crc ^ u32::from(b)) & 0xff) as usize];
    }
    crc
}

fn crc64_update(t: &[[u64; 256]; 8], mut crc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let x = crc ^ u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        crc = t[7][(x & 0xff) as usize]
            ^ t[6][((x >> 8) & 0xff) as usize]
            ^ t[5][((x >> 16) & 0xff) as usize]
            ^ t[4][((x >> 24) & 0xff) as usize]
            ^ t[3][((x >> 32) & 0xff) as usize]
            ^ t[2][((x >> 40) & 0xff) as usize]
            ^ t[1][((x >> 48) & 0xff) as usize]
            ^ t[0][(x >> 56) as usize];
    }
    for &b in chunks.remainder() {
        crc = (crc >> 8) ^ t[0][((crc ^ u64::from(b)) & 0xff) as usize];
    }
    crc
}

#[derive(Clone)]
enum State {
    Crc32(u32),
    Crc32c(u32),
    Crc64Nvme(u64),
    Sha1(Sha1),
    Sha256(Sha256),
}

/// An incremental checksum: `update` with the bytes in order, then `finish` (big-endian digest).
#[derive(Clone)]
pub struct Checksummer {
    algorithm: ChecksumAlgorithm,
    state: State,
}

impl fmt::Debug for Checksummer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checksummer")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Checksummer {
    pub fn new(algorithm: ChecksumAlgorithm) -> Checksummer {
        let state = match algorithm {
            ChecksumAlgorithm::Crc32 => State::Crc32(u32::MAX),
            ChecksumAlgorithm::Crc32c => State::Crc32c(u32::MAX),
            ChecksumAlgorithm::Crc64Nvme => State::Crc64Nvme(u64::MAX),
            ChecksumAlgorithm::Sha1 => State::Sha1(Sha1::new()),
            ChecksumAlgorithm::Sha256 => State::Sha256(Sha256::new()),
        };
        Checksummer { algorithm, state }
    }

    pub fn algorithm(&self) -> ChecksumAlgorithm {
        self.algorithm
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Crc32(c) => *c = crc32_update(&CRC32_TABLES, *c, data),
            State::Crc32c(c) => *c = crc32_update(&CRC32C_TABLES, *c, data),
            State::Crc64Nvme(c) => *c = crc64_update(&CRC64_NVME_TABLES, *c, data),
            State::Sha1(h) => h.update(data),
            State::Sha256(h) => h.update(data),
        }
    }

    /// The digest of everything fed so far, big-endian (does not consume: more updates may follow).
    pub fn finish(&self) -> Vec<u8> {
        match &self.state {
            State::Crc32(c) | State::Crc32c(c) => (!c).to_be_bytes().to_vec(),
            State::Crc64Nvme(c) => (!c).to_be_bytes().to_vec(),
            State::Sha1(h) => h.clone().finalize().to_vec(),
            State::Sha256(h) => h.clone().finalize().to_vec(),
        }
    }

    /// The digest as S3 writes it in `x-amz-checksum-*`: base64 of the big-endian bytes.
    pub fn finish_base64(&self) -> String {
        base64_encode(&self.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(alg: ChecksumAlgorithm, data: &[u8]) -> Vec<u8> {
        let mut c = Checksummer::new(alg);
        c.update(data);
        c.finish()
    }

    #[test]
    fn crc_check_values() {
        let d = b"123456789";
        assert_eq!(
            digest(ChecksumAlgorithm::Crc32, d),
            0xCBF4_3926u32.to_be_bytes()
        );
        assert_eq!(
            digest(ChecksumAlgorithm::Crc32c, d),
            0xE306_9283u32.to_be_bytes()
        );
        assert_eq!(
            digest(ChecksumAlgorithm::Crc64Nvme, d),
            0xAE8B_1486_0A79_9888u64.to_be_bytes()
        );
    }

    #[test]
    fn empty_input_digests() {
        let b64 = |alg| {
            let c = Checksummer::new(alg);
            c.finish_base64()
        };
        assert_eq!(b64(ChecksumAlgorithm::Crc32), "AAAAAA==");
        assert_eq!(b64(ChecksumAlgorithm::Crc32c), "AAAAAA==");
        assert_eq!(b64(ChecksumAlgorithm::Crc64Nvme), "AAAAAAAAAAA=");
        assert_eq!(b64(ChecksumAlgorithm::Sha1), "2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
        assert_eq!(
            b64(ChecksumAlgorithm::Sha256),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn base64_of_known_digests() {
        let mut c = Checksummer::new(ChecksumAlgorithm::Crc32);
        c.update(b"123");
        c.update(b"456789");
        assert_eq!(c.finish_base64(), "y/Q5Jg==");
        let mut s = Checksummer::new(ChecksumAlgorithm::Sha1);
        s.update(b"abc");
        assert_eq!(s.finish_base64(), "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
        assert_eq!(s.algorithm(), ChecksumAlgorithm::Sha1);
    }

    #[test]
    fn incremental_equals_one_shot_for_every_split() {
        let data: Vec<u8> = (0..300u32)
            .map(|i| (i.wrapping_mul(31) ^ (i >> 3)) as u8)
            .collect();
        for alg in ChecksumAlgorithm::ALL {
            let whole = digest(alg, &data);
            assert_eq!(whole.len(), alg.digest_len());
            for split in [0, 1, 7, 8, 9, 63, 64, 150, 299, 300] {
                let (a, b) = data.split_at(split);
                let mut c = Checksummer::new(alg);
                c.update(a);
                c.update(b);
                assert_eq!(c.finish(), whole, "{alg:?} split at {split}");
            }
            let mut c = Checksummer::new(alg);
            for byte in &data {
                c.update(std::slice::from_ref(byte));
            }
            assert_eq!(c.finish(), whole, "{alg:?} byte by byte");
        }
    }

    #[test]
    fn finish_does_not_consume() {
        let mut c = Checksummer::new(ChecksumAlgorithm::Crc32c);
        c.update(b"1234");
        let first = c.finish();
        assert_eq!(c.finish(), first);
        c.update(b"56789");
        assert_eq!(c.finish(), 0xE306_9283u32.to_be_bytes());
    }

    #[test]
    fn names_round_trip() {
        for alg in ChecksumAlgorithm::ALL {
            assert_eq!(ChecksumAlgorithm::from_name(alg.name()), Some(alg));
            assert_eq!(
                ChecksumAlgorithm::from_header_name(alg.header_name()),
                Some(alg)
            );
        }
        assert_eq!(
            ChecksumAlgorithm::from_name("crc32c"),
            Some(ChecksumAlgorithm::Crc32c)
        );
        assert_eq!(
            ChecksumAlgorithm::from_header_name("X-Amz-Checksum-CRC64NVME"),
            Some(ChecksumAlgorithm::Crc64Nvme)
        );
        assert_eq!(ChecksumAlgorithm::from_name("MD5"), None);
        assert_eq!(
            ChecksumAlgorithm::from_header_name("x-amz-checksum-md5"),
            None
        );
        assert_eq!(
            ChecksumAlgorithm::from_header_name("x-amz-checksum-algorithm"),
            None
        );
    }
}
