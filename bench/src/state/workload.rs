//! The data of the state suite, all from fixed seeds: 32-byte hashed keys, values of 32 to 1,024
//! bytes, and blocks that load or overwrite them.
//!
//! Key `i` is `blake2_256(i as u64, little endian)`. Each key's value is a pure function of the
//! key's index and its **generation** (0 when loaded, bumped by every overwrite), so the expected
//! value of any key at any version can be recomputed from the generations at that version.

use hyperion_state::ChangeSet;
use sp_crypto_hashing::blake2_256;
use std::ops::Range;

/// Smallest generated value.
pub const MIN_VALUE_BYTES: usize = 32;
/// Largest generated value.
pub const MAX_VALUE_BYTES: usize = 1_024;

/// The SplitMix64 output function: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64: a small, fast, seedable generator (deterministic across platforms and versions).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// A number in `0..bound` (`bound > 0`), without modulo bias worth measuring.
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "an empty range");
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}

/// The key of index `index`.
pub fn key(index: u64) -> [u8; 32] {
    blake2_256(&index.to_le_bytes())
}

/// The value of key `index` at `generation`: 32 to 1,024 pseudo-random bytes.
pub fn value(index: u64, generation: u32) -> Vec<u8> {
    let mut rng = Rng::new(mix(index) ^ u64::from(generation).rotate_left(40));
    let span = (MAX_VALUE_BYTES - MIN_VALUE_BYTES + 1) as u64;
    let len = MIN_VALUE_BYTES + rng.below(span) as usize;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        bytes.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// The keys and the generation of each key's latest value.
pub struct Dataset {
    keys: Vec<[u8; 32]>,
    generations: Vec<u32>,
    rng: Rng,
}

impl Dataset {
    /// `count` keys, all at generation 0 (not loaded anywhere yet).
    pub fn new(count: u64, seed: u64) -> Self {
        assert!(count > 0 && count <= u64::from(u32::MAX), "{count} keys");
        Self {
            keys: (0..count).map(key).collect(),
            generations: vec![0; count as usize],
            rng: Rng::new(seed),
        }
    }

    /// Number of keys.
    pub fn len(&self) -> u64 {
        self.keys.len() as u64
    }

    /// Whether there are no keys (never: `new` asserts at least one).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// All keys, by index.
    pub fn keys(&self) -> &[[u8; 32]] {
        &self.keys
    }

    /// The generation of every key now; keep it to check reads of this version later.
    pub fn generations(&self) -> &[u32] {
        &self.generations
    }

    /// The value of key `index` at the version whose generations are `generations`.
    pub fn expected(generations: &[u32], index: u32) -> Vec<u8> {
        value(u64::from(index), generations[index as usize])
    }

    /// A block writing the initial values of the keys in `range`.
    pub fn load_block(&self, range: Range<u64>) -> ChangeSet {
        assert!(range.end <= self.len(), "{range:?} of {} keys", self.len());
        range.map(|i| (self.keys[i as usize].to_vec(), Some(value(i, 0)))).collect()
    }

    /// A block overwriting `count` distinct random keys with new values (their next generation).
    pub fn update_block(&mut self, count: u64) -> ChangeSet {
        assert!(count <= self.len(), "{count} updates of {} keys", self.len());
        let mut changes = ChangeSet::new();
        while (changes.len() as u64) < count {
            let index = self.rng.below(self.len()) as u32;
            let key = self.keys[index as usize].to_vec();
            if changes.contains_key(&key) {
                continue;
            }
            let generation = &mut self.generations[index as usize];
            *generation += 1;
            changes.insert(key, Some(value(u64::from(index), *generation)));
        }
        changes
    }

    /// `count` random key indices (repeats allowed), the order in which reads are measured.
    pub fn read_order(&mut self, count: u64) -> Vec<u32> {
        (0..count).map(|_| self.rng.below(self.len()) as u32).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_deterministic_and_within_bounds() {
        let lengths: Vec<usize> = (0..2_000).map(|i| value(i, 0).len()).collect();
        assert!(lengths.iter().all(|l| (MIN_VALUE_BYTES..=MAX_VALUE_BYTES).contains(l)));
        assert!(lengths.iter().any(|l| *l < 100) && lengths.iter().any(|l| *l > 900), "sizes spread");
        assert_eq!(value(7, 3), value(7, 3));
        assert_ne!(value(7, 3), value(7, 4));
        assert_ne!(value(7, 3), value(8, 3));
        assert_eq!(key(1), blake2_256(&1u64.to_le_bytes()));
    }

    #[test]
    fn updates_bump_generations_of_distinct_keys() {
        let mut data = Dataset::new(50, 1);
        let before = data.generations().to_vec();
        let block = data.update_block(40);
        assert_eq!(block.len(), 40);
        let bumped: u32 = data.generations().iter().zip(&before).map(|(a, b)| a - b).sum();
        assert_eq!(bumped, 40);
        for (i, key) in data.keys.iter().enumerate() {
            let i = i as u32;
            match block.get(key.as_slice()) {
                Some(new) => {
                    assert_eq!(new.as_deref(), Some(Dataset::expected(data.generations(), i).as_slice()))
                }
                None => assert_eq!(data.generations()[i as usize], before[i as usize]),
            }
        }
        assert!(data.read_order(1_000).iter().all(|i| *i < 50));
    }
}
