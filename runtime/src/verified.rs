//! Native extrinsics whose signature verified, by the hash of their encoding. A node checks an
//! extrinsic when its pool admits it and again when a block executes it (its own block, or a
//! proposal it votes on); the second check is a lookup here instead of a signature
//! verification. Only successes are kept, keyed by a collision-resistant hash of the whole
//! encoding (signature and signer included), and the runtime's genesis hash is fixed: the cache
//! makes a check faster and never changes its result. It is bounded; the oldest entries go
//! first.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use hyperion_primitives::{Hash, SignedExtrinsic};
use parity_scale_codec::Encode;

/// Signatures remembered: a full pool (8,192) and several blocks' worth.
pub const CAPACITY: usize = 1 << 16;

/// See the module docs.
#[derive(Default)]
pub struct VerifiedSignatures {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    known: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

impl VerifiedSignatures {
    /// Whether `xt`'s signature verifies for the chain with `genesis_hash`.
    pub fn verify(&self, xt: &SignedExtrinsic, genesis_hash: Hash) -> bool {
        let key = sp_crypto_hashing::blake2_256(&xt.encode());
        if self.lock().known.contains(&key) {
            return true;
        }
        let valid = xt.verify(genesis_hash);
        if valid {
            let mut inner = self.lock();
            if inner.known.insert(key) {
                inner.order.push_back(key);
                if inner.order.len() > CAPACITY {
                    if let Some(oldest) = inner.order.pop_front() {
                        inner.known.remove(&oldest);
                    }
                }
            }
        }
        valid
    }

    /// How many signatures are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().order.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The sets stay consistent whatever a panicking holder was doing (insert, then push).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyperion_primitives::{Call, Pair};

    fn signed(nonce: u64) -> SignedExtrinsic {
        let call = Call { pallet: 1, call: 0, args: vec![1, 2, 3] };
        SignedExtrinsic::sign(&Pair::from_seed(&[7; 32]), Hash([1; 32]), nonce, 0, call)
    }

    #[test]
    fn only_verified_signatures_are_remembered_and_the_result_never_changes() {
        let cache = VerifiedSignatures::default();
        let good = signed(0);
        assert!(cache.verify(&good, Hash([1; 32])));
        assert_eq!(cache.len(), 1);
        assert!(cache.verify(&good, Hash([1; 32])), "a lookup");
        assert_eq!(cache.len(), 1);

        let mut tampered = signed(1);
        tampered.nonce = 2;
        assert!(!cache.verify(&tampered, Hash([1; 32])));
        assert!(!cache.verify(&tampered, Hash([1; 32])), "failures are checked every time");
        assert!(!cache.verify(&signed(3), Hash([2; 32])), "signed for another chain");
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_oldest_entries_go_first() {
        let cache = VerifiedSignatures::default();
        let first = signed(0);
        cache.verify(&first, Hash([1; 32]));
        let key = sp_crypto_hashing::blake2_256(&first.encode());
        for nonce in 1..CAPACITY as u64 {
            let mut inner = cache.lock();
            let filler = sp_crypto_hashing::blake2_256(&nonce.to_le_bytes());
            inner.known.insert(filler);
            inner.order.push_back(filler);
        }
        // The next insertion evicts the oldest (the first extrinsic).
        cache.verify(&signed(CAPACITY as u64 + 1), Hash([1; 32]));
        assert_eq!(cache.len(), CAPACITY);
        assert!(!cache.lock().known.contains(&key));
    }
}
