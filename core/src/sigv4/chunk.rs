//! Chunk signatures: the signature chain of a `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]` body.

use super::payload::EMPTY_SHA256;
use super::sign::{hmac, sha256_hex};
use crate::codec::hex;
use sha2::{Digest, Sha256};
use std::fmt;

/// Computes the signature chain of a `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]` body.
#[derive(Clone, PartialEq, Eq)]
pub struct ChunkSigner {
    key: [u8; 32],
    amz_date: String,
    scope: String,
    previous: String,
}

impl fmt::Debug for ChunkSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkSigner")
            .field("amz_date", &self.amz_date)
            .field("scope", &self.scope)
            .field("previous", &self.previous)
            .finish_non_exhaustive()
    }
}

impl ChunkSigner {
    /// `seed_signature` is the signature of the request itself.
    pub fn new(key: [u8; 32], amz_date: &str, scope: &str, seed_signature: &str) -> ChunkSigner {
        ChunkSigner {
            key,
            amz_date: amz_date.to_string(),
            scope: scope.to_string(),
            previous: seed_signature.to_string(),
        }
    }

    /// The signature the next chunk chains from.
    pub fn previous_signature(&self) -> &str {
        &self.previous
    }

    fn chain(&mut self, kind: &str, middle: &str, hash_hex: &str) -> String {
        let sts = format!(
            "{kind}\n{}\n{}\n{}\n{middle}{hash_hex}",
            self.amz_date, self.scope, self.previous
        );
        self.previous = hex(&hmac(&self.key, sts.as_bytes()));
        self.previous.clone()
    }

    /// Signature of the next chunk given its data's SHA-256; advances the chain.
    pub fn sign_chunk_hash(&mut self, data_sha256: &[u8; 32]) -> String {
        let middle = format!("{EMPTY_SHA256}\n");
        self.chain("AWS4-HMAC-SHA256-PAYLOAD", &middle, &hex(data_sha256))
    }

    /// Signature of the next chunk; advances the chain.
    pub fn sign_chunk(&mut self, data: &[u8]) -> String {
        self.sign_chunk_hash(&Sha256::digest(data).into())
    }

    /// Signature of the trailer (`name:value\n` per trailing header); advances the chain.
    pub fn sign_trailer(&mut self, trailer: &[u8]) -> String {
        self.chain("AWS4-HMAC-SHA256-TRAILER", "", &sha256_hex(trailer))
    }
}

