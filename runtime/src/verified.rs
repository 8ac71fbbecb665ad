//! Native extrinsics whose signature verified, by the hash of their encoding. A node checks an
//! extrinsic when its pool admits it and again when a block executes it (its own block, or a
//! proposal it votes on); the second check is a lookup here instead of a signature
//! verification. Only successes are kept, keyed by a collision-resistant hash of the whole
//! encoding (signature and signer included), and the runtime's genesis hash is fixed: the cache
//! makes a check faster and never changes its result. It is bounded; the oldest entries go
//! first. With each signature, the sender it makes (hashed from the signer's key) is kept: a
//! block's preparation takes it from here instead of hashing the key again.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use hyperion_executor::Executor;
use hyperion_primitives::{
    verify_batch, Address, Hash, Public, Signature, SignedExtrinsic, SignedPayload, Signer,
};
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
    /// Each signature that verified, with its extrinsic's sender.
    known: HashMap<[u8; 32], Address>,
    order: VecDeque<[u8; 32]>,
}

impl VerifiedSignatures {
    /// Whether `xt`'s signature verifies for the chain with `genesis_hash`.
    #[cfg(test)]
    pub fn verify(&self, xt: &SignedExtrinsic, genesis_hash: Hash) -> bool {
        self.verified_sender(xt, genesis_hash).is_some()
    }

    /// `xt`'s sender if its signature verifies for the chain with `genesis_hash` (remembered
    /// with the signature, so not hashed from the signer's key again).
    pub(crate) fn verified_sender(&self, xt: &SignedExtrinsic, genesis_hash: Hash) -> Option<Address> {
        let key = key(xt);
        if let Some(sender) = self.lock(&key).known.get(&key) {
            return Some(*sender);
        }
        if !xt.verify(genesis_hash) {
            return None;
        }
        let sender = xt.sender();
        self.lock(&key).remember(key, sender);
        Some(sender)
    }

    /// Whether each of `xts` has a signature that verifies for the chain with `genesis_hash`,
    /// in order, as [`Self::verify`] of each would say, but cheaper: remembered signatures are
    /// looked up and the others verified in batches, the work spread over `executor`'s threads.
    pub fn verify_all(&self, xts: &[&SignedExtrinsic], genesis_hash: Hash, executor: &Executor) -> Vec<bool> {
        let looked_up: Vec<([u8; 32], Option<Address>)> =
            executor.map(xts.len(), HASHES_PER_TASK, |i| self.look_up(xts[i]));
        let pending: Vec<(usize, &SignedExtrinsic, [u8; 32])> = looked_up
            .iter()
            .enumerate()
            .filter(|(_, (_, sender))| sender.is_none())
            .map(|(i, (key, _))| (i, xts[i], *key))
            .collect();
        let mut valid: Vec<bool> = looked_up.iter().map(|(_, sender)| sender.is_some()).collect();
        for i in self.verify_pending(&pending, genesis_hash, executor) {
            valid[i] = true;
        }
        valid
    }

    /// The key `xt`'s signature is remembered under, and `xt`'s sender if it is.
    pub(crate) fn look_up(&self, xt: &SignedExtrinsic) -> ([u8; 32], Option<Address>) {
        let key = key(xt);
        let sender = self.lock(&key).known.get(&key).copied();
        (key, sender)
    }

    /// Verifies the signatures of `pending` (extrinsics not remembered, each with its position
    /// and its key from [`Self::look_up`]) in batches on `executor`'s threads (a batch that
    /// fails is halved until its bad signatures are found), remembers those that hold, and
    /// returns their positions.
    pub(crate) fn verify_pending(
        &self,
        pending: &[(usize, &SignedExtrinsic, [u8; 32])],
        genesis_hash: Hash,
        executor: &Executor,
    ) -> Vec<usize> {
        if pending.is_empty() {
            return Vec::new();
        }
        // Enough batches to keep every thread busy, none smaller than halving needs.
        let threads = executor.config().threads;
        let batch = pending.len().div_ceil(threads).clamp(SMALLEST_BATCH, LARGEST_BATCH);
        // Items are named by their place in `pending`.
        let batches = pending.len().div_ceil(batch);
        let verified: Vec<Vec<usize>> = executor.map(batches, 1, |b| {
            let places = b * batch..((b + 1) * batch).min(pending.len());
            let mut verified = Vec::with_capacity(places.len());
            let mut items: Vec<Item> = Vec::with_capacity(places.len());
            for i in places {
                let xt = pending[i].1;
                match &xt.signer {
                    Signer::Ed25519 { public, signature } => {
                        let payload =
                            SignedPayload { genesis_hash, nonce: xt.nonce, tip: xt.tip, call: &xt.call };
                        items.push((i, *public, payload.to_bytes(), *signature));
                    }
                    // Recovered one by one: secp256k1 signatures have no batch check.
                    Signer::Ethereum { .. } => {
                        if xt.verify(genesis_hash) {
                            verified.push(i);
                        }
                    }
                }
            }
            verify_halving(&items, &mut verified);
            verified
        });
        verified
            .into_iter()
            .flatten()
            .map(|place| {
                let (position, xt, key) = pending[place];
                self.lock(&key).remember(key, xt.sender());
                position
            })
            .collect()
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
    fn remember(&mut self, key: [u8; 32], sender: Address) {
        if self.known.insert(key, sender).is_none() {
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

/// The largest batch verified at once (a block's worth is split over the threads in batches of
/// at most this many).
const LARGEST_BATCH: usize = 256;

/// Extrinsics hashed per task when looking them up.
const HASHES_PER_TASK: usize = 32;

/// A signature to verify: its place in the pending list, the signer, the signed bytes, the
/// signature.
type Item = (usize, Public, Vec<u8>, Signature);

/// The key `xt`'s verified signature is remembered under: the hash of its whole encoding.
fn key(xt: &SignedExtrinsic) -> [u8; 32] {
    sp_crypto_hashing::blake2_256(&xt.encode())
}

/// Pushes onto `verified` the places of the `items` whose signature holds.
fn verify_halving(items: &[Item], verified: &mut Vec<usize>) {
    if items.len() < SMALLEST_BATCH {
        verified.extend(
            items
                .iter()
                .filter(|(_, public, message, signature)| public.verify(message, signature))
                .map(|(i, ..)| *i),
        );
        return;
    }
    let batch: Vec<(Public, &[u8], Signature)> = items
        .iter()
        .map(|(_, public, message, signature)| (*public, message.as_slice(), *signature))
        .collect();
    if verify_batch(&batch) {
        verified.extend(items.iter().map(|(i, ..)| *i));
    } else {
        let (left, right) = items.split_at(items.len() / 2);
        verify_halving(left, verified);
        verify_halving(right, verified);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyperion_executor::Config as ExecutorConfig;
    use hyperion_primitives::{Call, EthPair, Pair};

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
        assert_eq!(cache.look_up(&good).1, Some(good.sender()), "remembered with its sender");
        assert_eq!(cache.verified_sender(&good, Hash([1; 32])), Some(good.sender()));

        let mut tampered = signed(1);
        tampered.nonce = 2;
        assert!(!cache.verify(&tampered, Hash([1; 32])));
        assert!(!cache.verify(&tampered, Hash([1; 32])), "failures are checked every time");
        assert!(!cache.verify(&signed(3), Hash([2; 32])), "signed for another chain");
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_batch_remembers_exactly_the_signatures_that_verify() {
        let executors =
            [Executor::serial(), Executor::new(ExecutorConfig::with_threads(3)).expect("threads")];
        for executor in &executors {
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
                let refs: Vec<&SignedExtrinsic> = xts.iter().collect();
                let valid = cache.verify_all(&refs, Hash([1; 32]), executor);
                assert_eq!(cache.len(), 64 - bad.len(), "bad: {bad:?}");
                for (nonce, xt) in xts.iter().enumerate() {
                    let good = !bad.contains(&(nonce as u64));
                    assert_eq!(valid[nonce], good);
                    let key = key(xt);
                    assert_eq!(cache.lock(&key).known.contains_key(&key), good);
                    assert_eq!(cache.look_up(xt), (key, good.then(|| xt.sender())));
                    assert_eq!(cache.verify(xt, Hash([1; 32])), good);
                }
                // Now looked up, with the same verdicts.
                assert_eq!(cache.verify_all(&refs, Hash([1; 32]), executor), valid);
            }
            // Ethereum-signed extrinsics among them are checked one by one, with the same result.
            let cache = VerifiedSignatures::default();
            let eth = EthPair::from_hex("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
                .expect("a key");
            let mixed: Vec<SignedExtrinsic> = (0..24u64)
                .map(|nonce| {
                    let call = Call { pallet: 1, call: 0, args: vec![4] };
                    let mut xt = match nonce % 3 {
                        0 => SignedExtrinsic::sign_ethereum(&eth, Hash([1; 32]), nonce, 0, call),
                        _ => signed(nonce),
                    };
                    if nonce % 4 == 0 {
                        xt.tip = 9;
                    }
                    xt
                })
                .collect();
            let refs: Vec<&SignedExtrinsic> = mixed.iter().collect();
            let expected: Vec<bool> = mixed.iter().map(|xt| xt.verify(Hash([1; 32]))).collect();
            assert!(expected.iter().any(|v| *v) && expected.iter().any(|v| !*v));
            assert_eq!(cache.verify_all(&refs, Hash([1; 32]), executor), expected);
            assert_eq!(cache.len(), expected.iter().filter(|v| **v).count());

            let cache = VerifiedSignatures::default();
            let other_chain = [signed(0), signed(1)];
            let refs: Vec<&SignedExtrinsic> = other_chain.iter().collect();
            assert_eq!(cache.verify_all(&refs, Hash([2; 32]), executor), [false, false]);
            assert_eq!(cache.len(), 0, "signed for another chain");
        }
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
            inner.known.insert(filler, Address([0; 20]));
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
        assert!(!cache.lock(&key).known.contains_key(&key));
    }
}
