//! Storage key derivation, shared by the runtime's typed storage items and by crates that read
//! the same state without the runtime (the EVM's state adapter, RPC).
//!
//! ```text
//! item prefix: twox128(pallet) ++ twox128(item)
//! map key:     prefix ++ H(SCALE(key))
//! H = Blake2_128Concat: blake2_128(k) ++ k   for keys a user chooses (addresses, ids)
//!     Identity:         k                    only for keys no user controls
//! ```

use crate::hashing::{blake2_128, put, twox_128_const};

/// How a map key is turned into the storage key suffix.
pub trait StorageHasher {
    /// Name shown in metadata.
    const NAME: &'static str;
    /// The suffix for an encoded key.
    fn hash(encoded: &[u8]) -> Vec<u8>;
    /// The encoded key back from a suffix, when the hasher keeps it (`None` otherwise).
    fn reverse(suffix: &[u8]) -> Option<&[u8]>;
}

/// `blake2_128(k) ++ k`: for keys that users choose.
pub struct Blake2_128Concat;
/// `k` as is: only for keys no user controls.
pub struct Identity;

impl StorageHasher for Blake2_128Concat {
    const NAME: &'static str = "Blake2_128Concat";
    fn hash(encoded: &[u8]) -> Vec<u8> {
        let mut out = blake2_128(encoded).to_vec();
        out.extend_from_slice(encoded);
        out
    }
    fn reverse(suffix: &[u8]) -> Option<&[u8]> {
        suffix.get(16..)
    }
}

impl StorageHasher for Identity {
    const NAME: &'static str = "Identity";
    fn hash(encoded: &[u8]) -> Vec<u8> {
        encoded.to_vec()
    }
    fn reverse(suffix: &[u8]) -> Option<&[u8]> {
        Some(suffix)
    }
}

/// `twox128(pallet) ++ twox128(item)`.
pub fn storage_prefix(pallet: &str, item: &str) -> Vec<u8> {
    prefix_of(pallet, item).to_vec()
}

/// `twox128(pallet) ++ twox128(item)`, usable in constants (typed storage items compute theirs
/// when the program is compiled).
pub const fn prefix_of(pallet: &str, item: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    put(&mut out, 0, &twox_128_const(pallet.as_bytes()));
    put(&mut out, 16, &twox_128_const(item.as_bytes()));
    out
}
