//! The hash functions used by Hyperion, re-exported from `sp-crypto-hashing` so that every crate
//! hashes the same way.

pub use sp_crypto_hashing::{blake2_128, blake2_256, keccak_256, twox_128, twox_64};
