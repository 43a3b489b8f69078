//! SHA-256 of four messages of one length at once, each in one 32-bit lane of a 128-bit vector.
//!
//! A signed streaming upload (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, minio-go's and so Tempo's way over
//! plain HTTP) is checked chunk by chunk, and every chunk's data is hashed. wasm has no SHA
//! instruction: compiled by wasmtime's Cranelift, `sha2` hashes about 500 MB/s of a core, and these
//! four lanes, on wasm's 128-bit SIMD, about 720 MB/s (minio-go and the SDKs send 64 KiB chunks, so
//! four of a size are the rule). wasm SIMD has no rotate, so each of SHA-256's rotations takes three
//! instructions, which is why four lanes give 1.4 times one rather than four. Natively, and in a
//! wasm build without `simd128`, [`digest4`] hashes the four one after another with `sha2` (which
//! uses the CPU's SHA instructions where it has them); the lane arithmetic itself is tested natively
//! through [`Portable`] lanes, and the vector lanes end to end (tests/auth.rs).

use sha2::{Digest, Sha256};

/// The round constants (FIPS 180-4, 4.2.2).
pub(crate) const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// The initial hash value (FIPS 180-4, 5.3.3).
pub(crate) const H0: [u32; 8] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/// The SHA-256 digests of four messages of the same length (of any lengths, if they differ: each is
/// then hashed on its own).
pub fn digest4(messages: [&[u8]; 4]) -> [[u8; 32]; 4] {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if messages.iter().all(|m| m.len() == messages[0].len()) {
        return digest4_with::<simd::V128>(messages);
    }
    messages.map(|m| Sha256::digest(m).into())
}

/// Four 32-bit lanes and the operations SHA-256 needs on them, each applied lane by lane.
pub trait Lanes: Copy {
    /// The same word in every lane.
    fn splat(word: u32) -> Self;
    /// Lane `i` holds `words[i]`.
    fn from_words(words: [u32; 4]) -> Self;
    /// The word of each lane.
    fn words(self) -> [u32; 4];
    fn add(self, other: Self) -> Self;
    fn xor(self, other: Self) -> Self;
    fn and(self, other: Self) -> Self;
    /// `self & !other`.
    fn and_not(self, other: Self) -> Self;
    /// Rotated right by `n` (0 < n < 32).
    fn rotr(self, n: u32) -> Self;
    /// Shifted right by `n`.
    fn shr(self, n: u32) -> Self;
    /// SHA-256's Ch: `f` where `self` has a one, else `g`.
    #[inline(always)]
    fn choose(self, f: Self, g: Self) -> Self { self.and(f).xor(g.and_not(self)) }
    /// SHA-256's Maj: each bit as most of `self`, `b` and `c` have it.
    #[inline(always)]
    fn majority(self, b: Self, c: Self) -> Self { self.and(b).xor(c.and(self.xor(b))) }
}

/// Lanes as a plain array: the reference the vector lanes must agree with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Portable([u32; 4]);

impl Lanes for Portable {
    fn splat(word: u32) -> Self { Portable([word; 4]) }
    fn from_words(words: [u32; 4]) -> Self { Portable(words) }
    fn words(self) -> [u32; 4] { self.0 }
    fn add(self, o: Self) -> Self { Portable(std::array::from_fn(|i| self.0[i].wrapping_add(o.0[i]))) }
    fn xor(self, o: Self) -> Self { Portable(std::array::from_fn(|i| self.0[i] ^ o.0[i])) }
    fn and(self, o: Self) -> Self { Portable(std::array::from_fn(|i| self.0[i] & o.0[i])) }
    fn and_not(self, o: Self) -> Self { Portable(std::array::from_fn(|i| self.0[i] & !o.0[i])) }
    fn rotr(self, n: u32) -> Self { Portable(self.0.map(|w| w.rotate_right(n))) }
    fn shr(self, n: u32) -> Self { Portable(self.0.map(|w| w >> n)) }
}

/// The digests of four messages of one length, computed lane by lane in `L`.
pub fn digest4_with<L: Lanes>(messages: [&[u8]; 4]) -> [[u8; 32]; 4] {
    let len = messages[0].len();
    let mut state = H0.map(L::splat);
    let split = messages.map(|m| m.as_chunks::<64>());
    for i in 0..len / 64 {
        compress(&mut state, &schedule_of(split.map(|(blocks, _)| blocks.get(i).unwrap_or(&[0; 64]))));
    }
    // The padding: 0x80, zeros, and the length in bits, in one block or two.
    let tails = split.map(|(_, rest)| padded_tail(rest, len));
    for i in 0..tails[0].1 / 64 {
        compress(&mut state, &schedule_of(tails.each_ref().map(|(tail, _)| tail.as_chunks::<64>().0.get(i).unwrap_or(&[0; 64]))));
    }
    let mut digests = [[0u8; 32]; 4];
    for (i, word) in state.iter().enumerate() {
        for (lane, value) in word.words().into_iter().enumerate() {
            digests[lane][i * 4..i * 4 + 4].copy_from_slice(&value.to_be_bytes());
        }
    }
    digests
}

/// The message's last partial block (`rest`, under 64 bytes) padded, and how many bytes of the
/// buffer that is (64 or 128).
fn padded_tail(rest: &[u8], len: usize) -> ([u8; 128], usize) {
    let mut tail = [0u8; 128];
    tail[..rest.len()].copy_from_slice(rest);
    tail[rest.len()] = 0x80;
    let size = if rest.len() < 56 { 64 } else { 128 };
    tail[size - 8..size].copy_from_slice(&((len as u64) * 8).to_be_bytes());
    (tail, size)
}

/// The 16 words of one 64-byte block of each message, word `t` of message `i` in lane `i`.
pub(crate) fn schedule_of<L: Lanes>(blocks: [&[u8; 64]; 4]) -> [L; 16] {
    let word = |b: &[u8; 64], t: usize| u32::from_be_bytes([b[t * 4], b[t * 4 + 1], b[t * 4 + 2], b[t * 4 + 3]]);
    std::array::from_fn(|t| L::from_words(blocks.map(|b| word(b, t))))
}

/// One SHA-256 compression of each lane's block into each lane's state. The 64 rounds are written
/// out (eight at a time, the working variables renamed rather than moved), so every word index is a
/// constant and the schedule's independent work fills the gaps of the rounds' dependent chain.
#[inline(never)]
pub(crate) fn compress<L: Lanes>(state: &mut [L; 8], block: &[L; 16]) {
    let mut w = *block;
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    macro_rules! round {
        ($a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident, $t:expr) => {
            if $t >= 16 {
                let (w15, w2) = (w[($t + 1) % 16], w[($t + 14) % 16]);
                let s0 = w15.rotr(7).xor(w15.rotr(18)).xor(w15.shr(3));
                let s1 = w2.rotr(17).xor(w2.rotr(19)).xor(w2.shr(10));
                w[$t % 16] = w[$t % 16].add(s0).add(w[($t + 9) % 16]).add(s1);
            }
            let big_s1 = $e.rotr(6).xor($e.rotr(11)).xor($e.rotr(25));
            let ch = $e.choose($f, $g);
            let t1 = $h.add(L::splat(K[$t])).add(w[$t % 16]).add(ch).add(big_s1);
            let big_s0 = $a.rotr(2).xor($a.rotr(13)).xor($a.rotr(22));
            let maj = $a.majority($b, $c);
            $d = $d.add(t1);
            $h = t1.add(big_s0.add(maj));
        };
    }
    macro_rules! eight_rounds {
        ($t:expr) => {
            round!(a, b, c, d, e, f, g, h, $t);
            round!(h, a, b, c, d, e, f, g, $t + 1);
            round!(g, h, a, b, c, d, e, f, $t + 2);
            round!(f, g, h, a, b, c, d, e, $t + 3);
            round!(e, f, g, h, a, b, c, d, $t + 4);
            round!(d, e, f, g, h, a, b, c, $t + 5);
            round!(c, d, e, f, g, h, a, b, $t + 6);
            round!(b, c, d, e, f, g, h, a, $t + 7);
        };
    }
    eight_rounds!(0);
    eight_rounds!(8);
    eight_rounds!(16);
    eight_rounds!(24);
    eight_rounds!(32);
    eight_rounds!(40);
    eight_rounds!(48);
    eight_rounds!(56);
    for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *s = s.add(v);
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) use simd::V128;

/// wasm's 128-bit vectors as lanes (the component is built with `simd128`: `.cargo/config.toml`).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use core::arch::wasm32::*;

    /// Four lanes in one `v128`.
    #[derive(Clone, Copy)]
    pub struct V128(v128);

    impl super::Lanes for V128 {
        #[inline(always)]
        fn splat(word: u32) -> Self { V128(u32x4_splat(word)) }
        #[inline(always)]
        fn from_words(w: [u32; 4]) -> Self { V128(u32x4(w[0], w[1], w[2], w[3])) }
        #[inline(always)]
        fn words(self) -> [u32; 4] {
            [u32x4_extract_lane::<0>(self.0), u32x4_extract_lane::<1>(self.0), u32x4_extract_lane::<2>(self.0), u32x4_extract_lane::<3>(self.0)]
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self { V128(i32x4_add(self.0, o.0)) }
        #[inline(always)]
        fn xor(self, o: Self) -> Self { V128(v128_xor(self.0, o.0)) }
        #[inline(always)]
        fn and(self, o: Self) -> Self { V128(v128_and(self.0, o.0)) }
        #[inline(always)]
        fn and_not(self, o: Self) -> Self { V128(v128_andnot(self.0, o.0)) }
        #[inline(always)]
        fn rotr(self, n: u32) -> Self { V128(v128_or(u32x4_shr(self.0, n), i32x4_shl(self.0, 32 - n))) }
        #[inline(always)]
        fn shr(self, n: u32) -> Self { V128(u32x4_shr(self.0, n)) }
        #[inline(always)]
        fn choose(self, f: Self, g: Self) -> Self { V128(v128_bitselect(f.0, g.0, self.0)) }
        #[inline(always)]
        fn majority(self, b: Self, c: Self) -> Self { V128(v128_bitselect(c.0, self.0, v128_xor(self.0, b.0))) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    #[test]
    fn four_messages_of_every_padding_case_hash_as_sha256_does() {
        // 0..=130 covers an empty message, one and two padding blocks and both block boundaries.
        for len in (0..=130).chain([1000, 4096, 65_536, 65_536 + 55]) {
            let messages: Vec<Vec<u8>> = (0..4).map(|i| message(len, i)).collect();
            let refs = [&messages[0][..], &messages[1][..], &messages[2][..], &messages[3][..]];
            let expected = refs.map(|m| <[u8; 32]>::from(Sha256::digest(m)));
            assert_eq!(digest4_with::<Portable>(refs), expected, "length {len}");
            assert_eq!(digest4(refs), expected, "length {len}");
        }
    }

    #[test]
    fn messages_of_different_lengths_are_each_hashed_whole() {
        let messages = [message(10, 1), message(64, 2), message(0, 3), message(200, 4)];
        let refs = [&messages[0][..], &messages[1][..], &messages[2][..], &messages[3][..]];
        assert_eq!(digest4(refs), refs.map(|m| <[u8; 32]>::from(Sha256::digest(m))));
    }
}
