//! [`CodeCache`]: contract code, analysed, by hash, shared by every transaction of many blocks;
//! [`SenderCache`]: the recovered senders of signed transactions, by transaction hash.
//!
//! Each transaction gets its own [`crate::BlockState`] when transactions run in parallel, so
//! without a shared cache every call of a contract would read its code from the state again and
//! redo revm's jump-destination analysis. Code is addressed by its keccak256 hash, so an entry is
//! never stale: a cache hit is the code any state would give for that hash.
//!
//! Both are a [`HashCache`]: bounded, sharded, keyed by a cryptographic hash.

use alloy_primitives::{Address, B256};
use parking_lot::Mutex;
use revm::bytecode::Bytecode;
use std::collections::HashMap;

const SHARDS: usize = 16;
/// What a code entry costs besides its code: the map slot, the jump table's header, the `Arc`s.
const ENTRY_OVERHEAD: usize = 128;

struct Shard<V> {
    values: HashMap<B256, V>,
    weight: usize,
}

/// Values by a 32-byte hash, bounded in total weight: shards that each hold their share, and a
/// shard that is full drops entries (in no particular order) to make room. The keys are
/// cryptographic hashes, so their bytes are uniform and pick the shard directly.
pub struct HashCache<V> {
    shards: Box<[Mutex<Shard<V>>]>,
    shard_weight: usize,
    weigh: fn(&V) -> usize,
}

impl<V> std::fmt::Debug for HashCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashCache").field("max_weight", &(self.shard_weight * SHARDS)).finish()
    }
}

impl<V: Clone> HashCache<V> {
    /// A cache holding at most about `max_weight` in total, each value weighed by `weigh` (a
    /// value heavier than a shard's share is not kept).
    pub fn new(max_weight: usize, weigh: fn(&V) -> usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard { values: HashMap::new(), weight: 0 })).collect(),
            shard_weight: max_weight / SHARDS,
            weigh,
        }
    }

    fn shard(&self, hash: &B256) -> &Mutex<Shard<V>> {
        &self.shards[usize::from(hash.0[0]) % SHARDS]
    }

    /// The value under `hash`, if cached.
    pub fn get(&self, hash: &B256) -> Option<V> {
        self.shard(hash).lock().values.get(hash).cloned()
    }

    /// Keeps `value` under `hash`, dropping others if its shard is full.
    pub fn insert(&self, hash: B256, value: V) {
        let size = (self.weigh)(&value);
        if size > self.shard_weight {
            return;
        }
        let mut shard = self.shard(&hash).lock();
        if shard.values.contains_key(&hash) {
            return;
        }
        while shard.weight + size > self.shard_weight {
            let Some(victim) = shard.values.keys().next().copied() else { break };
            if let Some(dropped) = shard.values.remove(&victim) {
                shard.weight -= (self.weigh)(&dropped);
            }
        }
        shard.weight += size;
        shard.values.insert(hash, value);
    }

    /// The weight held, as counted against the bound.
    pub fn weight(&self) -> usize {
        self.shards.iter().map(|s| s.lock().weight).sum()
    }

    /// Values held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().values.len()).sum()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Analysed contract code by hash, weighed in bytes.
pub type CodeCache = HashCache<Bytecode>;

/// The size a code entry is counted at: the code, its jump table (a bit per byte) and the
/// overhead.
fn code_bytes(code: &Bytecode) -> usize {
    let len = code.original_byte_slice().len();
    len + len / 8 + ENTRY_OVERHEAD
}

impl CodeCache {
    /// The default bound of a code cache: 64 MiB (a few thousand large contracts).
    pub const DEFAULT_BYTES: usize = 64 << 20;

    /// A code cache holding at most about `max_bytes` of code.
    pub fn with_max_bytes(max_bytes: usize) -> Self {
        Self::new(max_bytes, code_bytes)
    }
}

impl Default for CodeCache {
    fn default() -> Self {
        Self::with_max_bytes(Self::DEFAULT_BYTES)
    }
}

/// Recovered senders by transaction hash (keccak256 of the signed transaction), counted in
/// entries: recovering a sender (ECDSA public key recovery) costs more than executing a simple
/// transaction, and a node meets each transaction at least twice (admission to the pool, then
/// execution in a block).
pub type SenderCache = HashCache<Address>;

impl SenderCache {
    /// The default bound of a sender cache: 256 Ki transactions (about 16 MiB).
    pub const DEFAULT_ENTRIES: usize = 256 << 10;

    /// A sender cache of at most about `max_entries` transactions.
    pub fn with_max_entries(max_entries: usize) -> Self {
        Self::new(max_entries, |_| 1)
    }
}

impl Default for SenderCache {
    fn default() -> Self {
        Self::with_max_entries(Self::DEFAULT_ENTRIES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{keccak256, Bytes};

    fn code(n: usize, fill: u8) -> (B256, Bytecode) {
        let raw = Bytes::from(vec![fill; n]);
        (keccak256(&raw), crate::overlay::analyse(raw))
    }

    #[test]
    fn keeps_codes_within_its_bound() {
        let cache = CodeCache::with_max_bytes(16 * 10_000);
        let codes: Vec<_> = (0..200u8).map(|i| code(2_000, i)).collect();
        for (hash, bytecode) in &codes {
            cache.insert(*hash, bytecode.clone());
            assert!(cache.weight() <= 16 * 10_000, "{} bytes held", cache.weight());
        }
        assert!(!cache.is_empty() && cache.len() < codes.len(), "{} codes held", cache.len());
        // What it holds is what was inserted under that hash.
        for (hash, bytecode) in &codes {
            if let Some(cached) = cache.get(hash) {
                assert_eq!(cached.original_byte_slice(), bytecode.original_byte_slice());
            }
        }
        // A code larger than a shard's share is not kept.
        let (hash, big) = code(20_000, 0xfe);
        cache.insert(hash, big);
        assert!(cache.get(&hash).is_none());
    }

    #[test]
    fn a_sender_cache_counts_entries() {
        let cache = SenderCache::with_max_entries(16 * 4);
        for i in 0..1_000u32 {
            cache.insert(keccak256(i.to_le_bytes()), Address::repeat_byte(i as u8));
        }
        assert!(cache.len() <= 64 && cache.weight() == cache.len(), "{} entries", cache.len());
        let hash = keccak256(999u32.to_le_bytes());
        assert_eq!(cache.get(&hash), Some(Address::repeat_byte(999u32 as u8)), "the last one is kept");
    }
}
