//! Native extrinsics whose signature verified, by the hash of their encoding. A node checks an
//! extrinsic when its pool admits it and again when a block executes it (its own block, or a
//! proposal it votes on); the second check is a lookup here instead of a signature
//! verification. Only successes are kept, keyed by a collision-resistant hash of the whole
//! encoding (signature and signer included), and the runtime's genesis hash is fixed: the cache
//! makes a check faster and never changes its result. It is bounded; the oldest entries go
//! first.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use hyperion_primitives::{verify_batch, Hash, Public, Signature, SignedExtrinsic, SignedPayload, Signer};
use parity_scale_codec::Encode;

/// Signatures remembered: a full pool (8,192) and several blocks' worth.
pub const CAPACITY: usize = 1 << 16;

/// The cache is split by the first byte of the key: parallel execution looks up every native
/// extrinsic of a block from several threads, which would otherwise all take one lock.
const SHARDS: usize = 16;
const SHARD_CAPACITY: usize = CAPACITY / SHARDS;

/// See the module docs.
#[derive(Default)]
pub struct VerifiedSignatures {
    shards: [Shard; SHARDS],
}

/// One part of the cache, on cache lines of its own.
#[derive(Default)]
#[repr(align(64))]
struct Shard(Mutex<Inner>);

#[derive(Default)]
struct Inner {
    known: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

impl VerifiedSignatures {
    /// Whether `xt`'s signature verifies for the chain with `genesis_hash`.
    pub fn verify(&self, xt: &SignedExtrinsic, genesis_hash: Hash) -> bool {
        let key = sp_crypto_hashing::blake2_256(&xt.encode());
        if self.lock(&key).known.contains(&key) {
            return true;
        }
        let valid = xt.verify(genesis_hash);
        if valid {
            self.lock(&key).remember(key);
        }
        valid
    }

    /// Verifies the ed25519 signatures of `xts` that are not remembered yet together, as one
    /// batch, and remembers those that hold (a batch that fails is halved until the bad
    /// signatures are found). Cheaper than one by one; [`Self::verify`] of each afterwards is a
    /// lookup. Results are the same either way: only what verified is remembered.
    pub fn verify_all<'a>(&self, xts: impl IntoIterator<Item = &'a SignedExtrinsic>, genesis_hash: Hash) {
        let mut pending: Vec<([u8; 32], Public, Vec<u8>, Signature)> = Vec::new();
        for xt in xts {
            let Signer::Ed25519 { public, signature } = &xt.signer else { continue };
            let key = sp_crypto_hashing::blake2_256(&xt.encode());
            if !self.lock(&key).known.contains(&key) {
                let payload = SignedPayload { genesis_hash, nonce: xt.nonce, tip: xt.tip, call: &xt.call };
                pending.push((key, *public, payload.to_bytes(), *signature));
            }
        }
        let mut verified = Vec::with_capacity(pending.len());
        verify_halving(&pending, &mut verified);
        for key in verified {
            self.lock(&key).remember(key);
        }
    }

    /// How many signatures are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.0.lock().unwrap_or_else(|e| e.into_inner()).order.len()).sum()
    }

    /// The shard of `key`, locked.
    fn lock(&self, key: &[u8; 32]) -> std::sync::MutexGuard<'_, Inner> {
        // The sets stay consistent whatever a panicking holder was doing (insert, then push).
        self.shards[usize::from(key[0]) % SHARDS].0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    fn remember(&mut self, key: [u8; 32]) {
        if self.known.insert(key) {
            self.order.push_back(key);
            if self.order.len() > SHARD_CAPACITY {
                if let Some(oldest) = self.order.pop_front() {
                    self.known.remove(&oldest);
                }
            }
        }
    }
}

/// Batch size below which halving a failed batch stops paying: its signatures are checked one
/// by one.
const SMALLEST_BATCH: usize = 8;

/// Pushes onto `verified` the keys of the `items` whose signature holds.
fn verify_halving(items: &[([u8; 32], Public, Vec<u8>, Signature)], verified: &mut Vec<[u8; 32]>) {
    if items.len() < SMALLEST_BATCH {
        verified.extend(
            items
                .iter()
                .filter(|(_, public, message, signature)| public.verify(message, signature))
                .map(|(key, ..)| *key),
        );
        return;
    }
    let batch: Vec<(Public, &[u8], Signature)> = items
        .iter()
        .map(|(_, public, message, signature)| (*public, message.as_slice(), *signature))
        .collect();
    if verify_batch(&batch) {
        verified.extend(items.iter().map(|(key, ..)| *key));
    } else {
        let (left, right) = items.split_at(items.len() / 2);
        verify_halving(left, verified);
        verify_halving(right, verified);
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
    fn a_batch_remembers_exactly_the_signatures_that_verify() {
        for bad in [vec![], vec![5], vec![0, 1, 2, 40, 63], (0..64).collect::<Vec<u64>>()] {
            let cache = VerifiedSignatures::default();
            let xts: Vec<SignedExtrinsic> = (0..64)
                .map(|nonce| {
                    let mut xt = signed(nonce);
                    if bad.contains(&nonce) {
                        xt.tip = 1;
                    }
                    xt
                })
                .collect();
            cache.verify_all(&xts, Hash([1; 32]));
            assert_eq!(cache.len(), 64 - bad.len(), "bad: {bad:?}");
            for (nonce, xt) in xts.iter().enumerate() {
                let key = sp_crypto_hashing::blake2_256(&xt.encode());
                assert_eq!(cache.lock(&key).known.contains(&key), !bad.contains(&(nonce as u64)));
                assert_eq!(cache.verify(xt, Hash([1; 32])), !bad.contains(&(nonce as u64)));
            }
        }
        let cache = VerifiedSignatures::default();
        cache.verify_all(&[signed(0), signed(1)], Hash([2; 32]));
        assert_eq!(cache.len(), 0, "signed for another chain");
    }

    #[test]
    fn the_oldest_entries_go_first() {
        let cache = VerifiedSignatures::default();
        let first = signed(0);
        cache.verify(&first, Hash([1; 32]));
        let key = sp_crypto_hashing::blake2_256(&first.encode());
        // Fill the first extrinsic's shard, with keys that fall in it.
        for nonce in 1..SHARD_CAPACITY as u64 {
            let mut inner = cache.lock(&key);
            let mut filler = sp_crypto_hashing::blake2_256(&nonce.to_le_bytes());
            filler[0] = key[0];
            inner.known.insert(filler);
            inner.order.push_back(filler);
        }
        assert_eq!(cache.len(), SHARD_CAPACITY);
        // The next insertion into that shard evicts its oldest (the first extrinsic).
        let next = (SHARD_CAPACITY as u64 + 1..)
            .map(signed)
            .find(|xt| {
                usize::from(sp_crypto_hashing::blake2_256(&xt.encode())[0]) % SHARDS
                    == usize::from(key[0]) % SHARDS
            })
            .expect("some nonce falls in the shard");
        cache.verify(&next, Hash([1; 32]));
        assert_eq!(cache.len(), SHARD_CAPACITY);
        assert!(!cache.lock(&key).known.contains(&key));
    }
}
