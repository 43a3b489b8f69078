//! SHA-256 of four one-block messages at once, lane by lane, for hashing ring points in bulk.
//!
//! Only the first word of each digest is produced (a ring point is the digest's first four bytes).
//! The algorithm is written once over [`Lanes`]; the component uses wasm SIMD (`v128`), natively a
//! plain array stands in so the same code is tested against `sha2`.

/// Four 32-bit lanes and the operations SHA-256 needs on them.
pub(crate) trait Lanes: Copy {
    fn load(v: [u32; 4]) -> Self;
    fn store(self) -> [u32; 4];
    fn splat(v: u32) -> Self;
    fn add(self, o: Self) -> Self;
    fn xor(self, o: Self) -> Self;
    fn and(self, o: Self) -> Self;
    /// `self & !o`.
    fn andnot(self, o: Self) -> Self;
    fn or(self, o: Self) -> Self;
    fn shr(self, n: u32) -> Self;
    fn shl(self, n: u32) -> Self;

    #[inline(always)]
    fn rotr(self, n: u32) -> Self {
        self.shr(n).or(self.shl(32 - n))
    }
}

/// Portable lanes: the reference the SIMD lanes must agree with (tested natively).
#[derive(Clone, Copy)]
#[cfg(test)]
pub(crate) struct Portable([u32; 4]);

#[cfg(test)]
impl Lanes for Portable {
    #[inline(always)]
    fn load(v: [u32; 4]) -> Self {
        Portable(v)
    }
    #[inline(always)]
    fn store(self) -> [u32; 4] {
        self.0
    }
    #[inline(always)]
    fn splat(v: u32) -> Self {
        Portable([v; 4])
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Portable(std::array::from_fn(|i| self.0[i].wrapping_add(o.0[i])))
    }
    #[inline(always)]
    fn xor(self, o: Self) -> Self {
        Portable(std::array::from_fn(|i| self.0[i] ^ o.0[i]))
    }
    #[inline(always)]
    fn and(self, o: Self) -> Self {
        Portable(std::array::from_fn(|i| self.0[i] & o.0[i]))
    }
    #[inline(always)]
    fn andnot(self, o: Self) -> Self {
        Portable(std::array::from_fn(|i| self.0[i] & !o.0[i]))
    }
    #[inline(always)]
    fn or(self, o: Self) -> Self {
        Portable(std::array::from_fn(|i| self.0[i] | o.0[i]))
    }
    #[inline(always)]
    fn shr(self, n: u32) -> Self {
        Portable(self.0.map(|x| x >> n))
    }
    #[inline(always)]
    fn shl(self, n: u32) -> Self {
        Portable(self.0.map(|x| x << n))
    }
}

// The wasm SIMD intrinsics below are `unsafe fn`s on older toolchains (hence the `unsafe` blocks
// and `unused_unsafe`); this module is the only place the core needs `unsafe`.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod simd {
    use super::Lanes;
    use core::arch::wasm32::*;

    /// wasm `v128` lanes; only ever used inside [`first_words_simd`], which enables simd128.
    #[derive(Clone, Copy)]
    pub(crate) struct Simd(v128);

    // The intrinsics are `#[target_feature(enable = "simd128")]`: these wrappers are inlined into
    // `first_words_simd`, which has the feature, before the intrinsics are.
    #[allow(unused_unsafe)]
    impl Lanes for Simd {
        #[inline(always)]
        fn load(v: [u32; 4]) -> Self {
            // SAFETY: simd128 is enabled: this is inlined into `first_words_simd`, which enables it.
            Simd(unsafe { u32x4(v[0], v[1], v[2], v[3]) })
        }
        #[inline(always)]
        fn store(self) -> [u32; 4] {
            // SAFETY: simd128 is enabled: this is inlined into `first_words_simd`, which enables it.
            unsafe {
                [
                    u32x4_extract_lane::<0>(self.0),
                    u32x4_extract_lane::<1>(self.0),
                    u32x4_extract_lane::<2>(self.0),
                    u32x4_extract_lane::<3>(self.0),
                ]
            }
        }
        #[inline(always)]
        fn splat(v: u32) -> Self {
            // SAFETY: simd128 is enabled: this is inlined into `first_words_simd`, which enables it.
            Simd(unsafe { u32x4_splat(v) })
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            // SAFETY: simd128 is enabled: this is inlined into `first_words_simd`, which enables it.
            Simd(unsafe { i32x4_add(self.0, o.0) })
        }
        #[inline(always)]
        fn xor(self, o: Self) -> Self {
            // SAFETY: simd128 is enabled: this is inlined into `first_words_simd`, which enables it.
            Simd(unsafe { v128_xor(self.0, o.0) })
        }
        #[inline(always)]
        fn and(self, o: Self) -> Self {
            // SAFETY: simd128 is enabled: this is inlined into `first_words_simd`, which enables it.
            Simd(unsafe { v128_and(self.0, o.0) })
        }
        #[inline(always)]
        fn andnot(self, o: Self) -> Self {
            // SAFETY: simd128 is enabled: this is inlined into `first_words_simd`, which enables it.
            Simd(unsafe { v128_andnot(self.0, o.0) })
        }
        #[inline(always)]
        fn or(self, o: Self) -> Self {
            // SAFETY: simd128 is enabled: this is inlined into `first_words_simd`, which enables it.
            Simd(unsafe { v128_or(self.0, o.0) })
        }
        #[inline(always)]
        fn shr(self, n: u32) -> Self {
            // SAFETY: simd128 is enabled: this is inlined into `first_words_simd`, which enables it.
            Simd(unsafe { u32x4_shr(self.0, n) })
        }
        #[inline(always)]
        fn shl(self, n: u32) -> Self {
            // SAFETY: simd128 is enabled: this is inlined into `first_words_simd`, which enables it.
            Simd(unsafe { i32x4_shl(self.0, n) })
        }
    }

    /// [`super::first_words`] with wasm SIMD. (Wasm has no undefined behaviour from a missing
    /// feature: a runtime without SIMD refuses the whole module when loading it.)
    #[target_feature(enable = "simd128")]
    pub(crate) fn first_words_simd(blocks: &[[u8; 64]; 4]) -> [u32; 4] {
        super::first_words::<Simd>(blocks)
    }
}

#[cfg(target_arch = "wasm32")]
pub(crate) use simd::first_words_simd;

const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// Message word `i` of each block, big-endian, one block per lane.
#[inline(always)]
fn word<L: Lanes>(blocks: &[[u8; 64]; 4], i: usize) -> L {
    let w = |b: &[u8; 64]| u32::from_be_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
    L::load([w(&blocks[0]), w(&blocks[1]), w(&blocks[2]), w(&blocks[3])])
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
            let ch = $e.and($f).xor($g.andnot($e));
            let t1 = hkw.add(ch).add(s1);
            let s0 = $a.rotr(2).xor($a.rotr(13)).xor($a.rotr(22));
            let maj = $a.and($b).or($c.and($a.or($b)));
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
    a.add(L::splat(IV[0])).store()
}
