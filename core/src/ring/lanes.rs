//! SHA-256 of four one-block messages at once, lane by lane, for hashing ring points in bulk.
//!
//! Only the first word of each digest is produced (a ring point is the digest's first four bytes).
//! It is [`crate::sha256x4`]'s compression over its [`Lanes`]: the component uses wasm SIMD
//! (`v128`), natively a plain array stands in so the same code is tested against `sha2`.

use crate::sha256x4::{compress, schedule_of, Lanes, H0};

/// [`first_words`] on wasm's 128-bit vectors.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) fn first_words_simd(blocks: &[[u8; 64]; 4]) -> [u32; 4] {
    first_words::<crate::sha256x4::V128>(blocks)
}

/// The first word of SHA-256 over four padded single blocks.
pub(crate) fn first_words<L: Lanes>(blocks: &[[u8; 64]; 4]) -> [u32; 4] {
    let mut state = H0.map(L::splat);
    compress(&mut state, &schedule_of(blocks.each_ref()));
    state[0].words()
}
