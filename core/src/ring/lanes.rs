//! SHA-256 of four one-block messages at once, lane by lane, for hashing ring points in bulk.
//!
//! Only the first word of each digest is produced (a ring point is the digest's first four bytes).
//! The algorithm is written once over [`Lanes`] (those of [`crate::sha256x4`]); the component uses
//! wasm SIMD (`v128`), natively a plain array stands in so the same code is tested against `sha2`.

use crate::sha256x4::{Lanes, H0 as IV, K};

/// [`first_words`] on wasm's 128-bit vectors.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) fn first_words_simd(blocks: &[[u8; 64]; 4]) -> [u32; 4] {
    first_words::<crate::sha256x4::V128>(blocks)
}

/// Message word `i` of each block, big-endian, one block per lane.
#[inline(always)]
fn word<L: Lanes>(blocks: &[[u8; 64]; 4], i: usize) -> L {
    let w = |b: &[u8; 64]| u32::from_be_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
    L::from_words([w(&blocks[0]), w(&blocks[1]), w(&blocks[2]), w(&blocks[3])])
}

/// The first word of SHA-256 over four padded single blocks: 64 rounds from the initial state,
/// unrolled so every value stays in a register (or wasm local).
#[inline(always)]
#[rustfmt::skip]
pub(crate) fn first_words<L: Lanes>(blocks: &[[u8; 64]; 4]) -> [u32; 4] {
    let [mut w0, mut w1, mut w2, mut w3, mut w4, mut w5, mut w6, mut w7, mut w8, mut w9, mut w10, mut w11, mut w12, mut w13, mut w14, mut w15]: [L; 16] =
        std::array::from_fn(|i| word::<L>(blocks, i));
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h]: [L; 8] = IV.map(L::splat);

    // One round; the caller rotates the variable names instead of moving eight values.
    macro_rules! r {
        ($a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident, $w:ident, $t:expr) => {
            // h + K + w does not wait for e: only the last two additions are on e's chain.
            let hkw = $h.add(L::splat(K[$t]).add($w));
            let s1 = $e.rotr(6).xor($e.rotr(11)).xor($e.rotr(25));
            let ch = $e.choose($f, $g);
            let t1 = hkw.add(ch).add(s1);
            let s0 = $a.rotr(2).xor($a.rotr(13)).xor($a.rotr(22));
            let maj = $a.majority($b, $c);
            $d = $d.add(t1);
            $h = t1.add(s0.add(maj));
        };
    }
    // Message schedule, in place over a 16-word window: w[t] += s1(w[t-2]) + w[t-7] + s0(w[t-15]).
    macro_rules! s {
        ($w:ident, $w2:ident, $w7:ident, $w15:ident) => {
            let s0 = $w15.rotr(7).xor($w15.rotr(18)).xor($w15.shr(3));
            let s1 = $w2.rotr(17).xor($w2.rotr(19)).xor($w2.shr(10));
            $w = $w.add(s0).add($w7).add(s1);
        };
    }

    r!(a, b, c, d, e, f, g, h, w0, 0); r!(h, a, b, c, d, e, f, g, w1, 1); r!(g, h, a, b, c, d, e, f, w2, 2); r!(f, g, h, a, b, c, d, e, w3, 3);
    r!(e, f, g, h, a, b, c, d, w4, 4); r!(d, e, f, g, h, a, b, c, w5, 5); r!(c, d, e, f, g, h, a, b, w6, 6); r!(b, c, d, e, f, g, h, a, w7, 7);
    r!(a, b, c, d, e, f, g, h, w8, 8); r!(h, a, b, c, d, e, f, g, w9, 9); r!(g, h, a, b, c, d, e, f, w10, 10); r!(f, g, h, a, b, c, d, e, w11, 11);
    r!(e, f, g, h, a, b, c, d, w12, 12); r!(d, e, f, g, h, a, b, c, w13, 13); r!(c, d, e, f, g, h, a, b, w14, 14); r!(b, c, d, e, f, g, h, a, w15, 15);
    s!(w0, w14, w9, w1); s!(w1, w15, w10, w2); s!(w2, w0, w11, w3); s!(w3, w1, w12, w4);
    s!(w4, w2, w13, w5); s!(w5, w3, w14, w6); s!(w6, w4, w15, w7); s!(w7, w5, w0, w8);
    s!(w8, w6, w1, w9); s!(w9, w7, w2, w10); s!(w10, w8, w3, w11); s!(w11, w9, w4, w12);
    s!(w12, w10, w5, w13); s!(w13, w11, w6, w14); s!(w14, w12, w7, w15); s!(w15, w13, w8, w0);
    r!(a, b, c, d, e, f, g, h, w0, 16); r!(h, a, b, c, d, e, f, g, w1, 17); r!(g, h, a, b, c, d, e, f, w2, 18); r!(f, g, h, a, b, c, d, e, w3, 19);
    r!(e, f, g, h, a, b, c, d, w4, 20); r!(d, e, f, g, h, a, b, c, w5, 21); r!(c, d, e, f, g, h, a, b, w6, 22); r!(b, c, d, e, f, g, h, a, w7, 23);
    r!(a, b, c, d, e, f, g, h, w8, 24); r!(h, a, b, c, d, e, f, g, w9, 25); r!(g, h, a, b, c, d, e, f, w10, 26); r!(f, g, h, a, b, c, d, e, w11, 27);
    r!(e, f, g, h, a, b, c, d, w12, 28); r!(d, e, f, g, h, a, b, c, w13, 29); r!(c, d, e, f, g, h, a, b, w14, 30); r!(b, c, d, e, f, g, h, a, w15, 31);
    s!(w0, w14, w9, w1); s!(w1, w15, w10, w2); s!(w2, w0, w11, w3); s!(w3, w1, w12, w4);
    s!(w4, w2, w13, w5); s!(w5, w3, w14, w6); s!(w6, w4, w15, w7); s!(w7, w5, w0, w8);
    s!(w8, w6, w1, w9); s!(w9, w7, w2, w10); s!(w10, w8, w3, w11); s!(w11, w9, w4, w12);
    s!(w12, w10, w5, w13); s!(w13, w11, w6, w14); s!(w14, w12, w7, w15); s!(w15, w13, w8, w0);
    r!(a, b, c, d, e, f, g, h, w0, 32); r!(h, a, b, c, d, e, f, g, w1, 33); r!(g, h, a, b, c, d, e, f, w2, 34); r!(f, g, h, a, b, c, d, e, w3, 35);
    r!(e, f, g, h, a, b, c, d, w4, 36); r!(d, e, f, g, h, a, b, c, w5, 37); r!(c, d, e, f, g, h, a, b, w6, 38); r!(b, c, d, e, f, g, h, a, w7, 39);
    r!(a, b, c, d, e, f, g, h, w8, 40); r!(h, a, b, c, d, e, f, g, w9, 41); r!(g, h, a, b, c, d, e, f, w10, 42); r!(f, g, h, a, b, c, d, e, w11, 43);
    r!(e, f, g, h, a, b, c, d, w12, 44); r!(d, e, f, g, h, a, b, c, w13, 45); r!(c, d, e, f, g, h, a, b, w14, 46); r!(b, c, d, e, f, g, h, a, w15, 47);
    s!(w0, w14, w9, w1); s!(w1, w15, w10, w2); s!(w2, w0, w11, w3); s!(w3, w1, w12, w4);
    s!(w4, w2, w13, w5); s!(w5, w3, w14, w6); s!(w6, w4, w15, w7); s!(w7, w5, w0, w8);
    s!(w8, w6, w1, w9); s!(w9, w7, w2, w10); s!(w10, w8, w3, w11); s!(w11, w9, w4, w12);
    s!(w12, w10, w5, w13); s!(w13, w11, w6, w14); s!(w14, w12, w7, w15); s!(w15, w13, w8, w0);
    r!(a, b, c, d, e, f, g, h, w0, 48); r!(h, a, b, c, d, e, f, g, w1, 49); r!(g, h, a, b, c, d, e, f, w2, 50); r!(f, g, h, a, b, c, d, e, w3, 51);
    r!(e, f, g, h, a, b, c, d, w4, 52); r!(d, e, f, g, h, a, b, c, w5, 53); r!(c, d, e, f, g, h, a, b, w6, 54); r!(b, c, d, e, f, g, h, a, w7, 55);
    r!(a, b, c, d, e, f, g, h, w8, 56); r!(h, a, b, c, d, e, f, g, w9, 57); r!(g, h, a, b, c, d, e, f, w10, 58); r!(f, g, h, a, b, c, d, e, w11, 59);
    r!(e, f, g, h, a, b, c, d, w12, 60); r!(d, e, f, g, h, a, b, c, w13, 61); r!(c, d, e, f, g, h, a, b, w14, 62); r!(b, c, d, e, f, g, h, a, w15, 63);
    let _ = (b, c, d, e, f, g, h);
    a.add(L::splat(IV[0])).words()
}
