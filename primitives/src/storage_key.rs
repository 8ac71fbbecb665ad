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

/// Short keys (accounts: 20 bytes) whose hash each thread remembers: an extrinsic hashes its
/// sender for its balance, its nonce, and again to write them back, and every fee goes to the
/// same two accounts. A BLAKE2 compression costs more than a look-up here.
const REMEMBERED_KEY_LEN: usize = 32;
/// Hashes each thread remembers (direct-mapped: a key's slot follows from its bytes; keys
/// that meet in a slot only replace each other).
const REMEMBERED_SLOTS: usize = 256;

#[derive(Clone, Copy)]
struct Remembered {
    /// The key's length; 0: an empty slot (the empty key is hashed each time).
    len: u8,
    key: [u8; REMEMBERED_KEY_LEN],
    hash: [u8; 16],
}

thread_local! {
    static REMEMBERED: std::cell::RefCell<Box<[Remembered; REMEMBERED_SLOTS]>> = std::cell::RefCell::new(
        Box::new([Remembered { len: 0, key: [0; REMEMBERED_KEY_LEN], hash: [0; 16] }; REMEMBERED_SLOTS]),
    );
}

/// `blake2_128(key)`, from the thread's remembered hashes for a short key.
fn remembered_blake2_128(key: &[u8]) -> [u8; 16] {
    if key.is_empty() || key.len() > REMEMBERED_KEY_LEN {
        return blake2_128(key);
    }
    // The slot from a few of the key's bytes (accounts are hashes: spread evenly).
    let mut word = [0u8; 8];
    let head = key.len().min(8);
    word[..head].copy_from_slice(&key[..head]);
    let mixed = (u64::from_le_bytes(word) ^ key.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let slot = (mixed >> 56) as usize % REMEMBERED_SLOTS;
    REMEMBERED
        .try_with(|remembered| {
            let mut remembered = remembered.borrow_mut();
            let entry = &mut remembered[slot];
            if usize::from(entry.len) == key.len() && entry.key[..key.len()] == *key {
                return entry.hash;
            }
            let hash = blake2_128(key);
            entry.len = key.len() as u8;
            entry.key[..key.len()].copy_from_slice(key);
            entry.hash = hash;
            hash
        })
        // The thread is ending.
        .unwrap_or_else(|_| blake2_128(key))
}

impl StorageHasher for Blake2_128Concat {
    const NAME: &'static str = "Blake2_128Concat";
    fn hash(encoded: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + encoded.len());
        out.extend_from_slice(&remembered_blake2_128(encoded));
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

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    quickcheck! {
        /// Remembered or not, in whatever order keys come (repeated, meeting in a slot, long),
        /// the hash is BLAKE2's.
        fn a_remembered_hash_is_the_hash(keys: Vec<Vec<u8>>, repeats: Vec<u8>) -> bool {
            let keys: Vec<Vec<u8>> = keys.into_iter().map(|mut key| { key.truncate(40); key }).collect();
            let mut order: Vec<&Vec<u8>> = keys.iter().collect();
            for (i, r) in repeats.iter().enumerate() {
                if !keys.is_empty() {
                    order.push(&keys[(i + usize::from(*r)) % keys.len()]);
                }
            }
            order.iter().all(|key| remembered_blake2_128(key) == blake2_128(key))
        }
    }

    #[test]
    fn keys_that_meet_in_a_slot_keep_their_own_hashes() {
        // Same first eight bytes and length: the same slot.
        let a = [[7u8; 8].as_slice(), &[1; 12]].concat();
        let b = [[7u8; 8].as_slice(), &[2; 12]].concat();
        for key in [&a, &b, &a, &a, &b] {
            assert_eq!(remembered_blake2_128(key), blake2_128(key));
        }
        assert_eq!(Blake2_128Concat::hash(&a), [blake2_128(&a).as_slice(), &a].concat());
    }
}
