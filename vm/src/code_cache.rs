//! [`CodeCache`]: contract code, analysed, by hash, shared by every transaction of many blocks.
//!
//! Each transaction gets its own [`crate::BlockState`] when transactions run in parallel, so
//! without a shared cache every call of a contract would read its code from the state again and
//! redo revm's jump-destination analysis. Code is addressed by its keccak256 hash, so an entry is
//! never stale: a cache hit is the code any state would give for that hash.
//!
//! The cache is bounded by the bytes of code it holds, split over shards that each hold their
//! share; a shard that is full drops entries (in no particular order) to make room.

use alloy_primitives::B256;
use parking_lot::Mutex;
use revm::bytecode::Bytecode;
use std::collections::HashMap;

const SHARDS: usize = 16;
/// What an entry costs besides its code: the map slot, the jump table's header, the `Arc`s.
const ENTRY_OVERHEAD: usize = 128;

#[derive(Default)]
struct Shard {
    codes: HashMap<B256, Bytecode>,
    bytes: usize,
}

/// Analysed contract code by hash, bounded in bytes.
pub struct CodeCache {
    shards: Box<[Mutex<Shard>]>,
    shard_bytes: usize,
}

impl std::fmt::Debug for CodeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeCache").field("max_bytes", &(self.shard_bytes * SHARDS)).finish()
    }
}

/// The size an entry is counted at: the code, its jump table (a bit per byte) and the overhead.
fn cost(code: &Bytecode) -> usize {
    let len = code.original_byte_slice().len();
    len + len / 8 + ENTRY_OVERHEAD
}

impl CodeCache {
    /// The default bound: 64 MiB (a few thousand large contracts).
    pub const DEFAULT_BYTES: usize = 64 << 20;

    /// A cache holding at most about `max_bytes` of code (a code larger than a shard's share is
    /// not kept).
    pub fn new(max_bytes: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            shard_bytes: max_bytes / SHARDS,
        }
    }

    fn shard(&self, hash: &B256) -> &Mutex<Shard> {
        // The hash is keccak256 of the code: its bytes are already uniform.
        &self.shards[usize::from(hash.0[0]) % SHARDS]
    }

    /// The code whose hash is `hash`, if cached.
    pub fn get(&self, hash: &B256) -> Option<Bytecode> {
        self.shard(hash).lock().codes.get(hash).cloned()
    }

    /// Keeps `code` (whose hash is `hash`), dropping others if its shard is full.
    pub fn insert(&self, hash: B256, code: Bytecode) {
        let size = cost(&code);
        if size > self.shard_bytes {
            return;
        }
        let mut shard = self.shard(&hash).lock();
        if shard.codes.contains_key(&hash) {
            return;
        }
        while shard.bytes + size > self.shard_bytes {
            let Some(victim) = shard.codes.keys().next().copied() else { break };
            if let Some(dropped) = shard.codes.remove(&victim) {
                shard.bytes -= cost(&dropped);
            }
        }
        shard.bytes += size;
        shard.codes.insert(hash, code);
    }

    /// Bytes held, as counted against the bound.
    pub fn bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().bytes).sum()
    }

    /// Codes held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().codes.len()).sum()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for CodeCache {
    fn default() -> Self {
        Self::new(Self::DEFAULT_BYTES)
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
        let cache = CodeCache::new(16 * 10_000);
        let codes: Vec<_> = (0..200u8).map(|i| code(2_000, i)).collect();
        for (hash, bytecode) in &codes {
            cache.insert(*hash, bytecode.clone());
            assert!(cache.bytes() <= 16 * 10_000, "{} bytes held", cache.bytes());
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
}
