//! Typed storage items, declared by pallets as constants.
//!
//! Key layout (as in Substrate, so its tools' intuitions carry over):
//!
//! ```text
//! value:      twox128(pallet) ++ twox128(item)
//! map:        twox128(pallet) ++ twox128(item) ++ H(SCALE(key))
//! double map: twox128(pallet) ++ twox128(item) ++ H1(SCALE(key1)) ++ H2(SCALE(key2))
//!
//! H = Blake2_128Concat: blake2_128(k) ++ k   for keys a user chooses (addresses, ids):
//!                                           the hash spreads them, the suffix keeps them
//!                                           iterable
//!     Identity:         k                     only for keys no user controls
//! ```
//!
//! Values are SCALE-encoded. A stored value that does not decode means the state is corrupt;
//! that is a broken invariant and panics.

use hyperion_executor::Delta;
pub use hyperion_primitives::storage_key::{
    prefix_of, storage_prefix, Blake2_128Concat, Identity, StorageHasher,
};
use parity_scale_codec::{Decode, Encode};
use std::marker::PhantomData;

use crate::context::{QueryContext, StorageRead, StorageWrite};

fn decode_stored<V: Decode>(key: &[u8], raw: &[u8]) -> V {
    V::decode(&mut &raw[..])
        .unwrap_or_else(|e| panic!("corrupt state: value at 0x{} does not decode: {e}", hex::encode(key)))
}

/// A single value.
pub struct StorageValue<V> {
    /// The pallet's storage name.
    pub pallet: &'static str,
    /// The item's name.
    pub item: &'static str,
    /// `twox128(pallet) ++ twox128(item)`, computed with the constant.
    prefix: [u8; 32],
    _value: PhantomData<fn() -> V>,
}

impl<V: Encode + Decode> StorageValue<V> {
    /// Declares the item `pallet::item`.
    pub const fn new(pallet: &'static str, item: &'static str) -> Self {
        Self { pallet, item, prefix: prefix_of(pallet, item), _value: PhantomData }
    }

    /// The storage key.
    pub fn key(&self) -> Vec<u8> {
        self.prefix.to_vec()
    }

    /// The value, if set.
    pub fn get<S: StorageRead + ?Sized>(&self, s: &mut S) -> Option<V> {
        let key = self.key();
        s.read_raw(&key).map(|raw| decode_stored(&key, &raw))
    }

    /// Sets the value.
    pub fn put<S: StorageWrite + ?Sized>(&self, s: &mut S, value: &V) {
        s.write_raw(self.key(), Some(value.encode()));
    }

    /// Removes the value.
    pub fn kill<S: StorageWrite + ?Sized>(&self, s: &mut S) {
        s.write_raw(self.key(), None);
    }

    /// Adds `delta` to the value without reading it (the kind must match `V`'s encoding).
    pub fn add<S: StorageWrite + ?Sized>(&self, s: &mut S, delta: Delta) {
        s.add_raw(self.key(), delta);
    }
}

impl<V: Encode + Decode + Default> StorageValue<V> {
    /// The value, or its default.
    pub fn get_or_default<S: StorageRead + ?Sized>(&self, s: &mut S) -> V {
        self.get(s).unwrap_or_default()
    }
}

/// A map from `K` to `V`, keys hashed with `H`.
#[allow(clippy::type_complexity)]
pub struct StorageMap<K, V, H> {
    /// The pallet's storage name.
    pub pallet: &'static str,
    /// The item's name.
    pub item: &'static str,
    /// `twox128(pallet) ++ twox128(item)`, computed with the constant.
    prefix: [u8; 32],
    _types: PhantomData<fn() -> (K, V, H)>,
}

impl<K: Encode + Decode, V: Encode + Decode, H: StorageHasher> StorageMap<K, V, H> {
    /// Declares the item `pallet::item`.
    pub const fn new(pallet: &'static str, item: &'static str) -> Self {
        Self { pallet, item, prefix: prefix_of(pallet, item), _types: PhantomData }
    }

    /// The storage key of `k`.
    pub fn key(&self, k: &K) -> Vec<u8> {
        let suffix = H::hash(&k.encode());
        let mut key = Vec::with_capacity(32 + suffix.len());
        key.extend_from_slice(&self.prefix);
        key.extend_from_slice(&suffix);
        key
    }

    /// The value at `k`, if any.
    pub fn get<S: StorageRead + ?Sized>(&self, s: &mut S, k: &K) -> Option<V> {
        let key = self.key(k);
        s.read_raw(&key).map(|raw| decode_stored(&key, &raw))
    }

    /// Sets the value at `k`.
    pub fn insert<S: StorageWrite + ?Sized>(&self, s: &mut S, k: &K, value: &V) {
        s.write_raw(self.key(k), Some(value.encode()));
    }

    /// Removes the value at `k`.
    pub fn remove<S: StorageWrite + ?Sized>(&self, s: &mut S, k: &K) {
        s.write_raw(self.key(k), None);
    }

    /// Adds `delta` to the value at `k` without reading it (the kind must match `V`'s
    /// encoding).
    pub fn add<S: StorageWrite + ?Sized>(&self, s: &mut S, k: &K, delta: Delta) {
        s.add_raw(self.key(k), delta);
    }

    /// Up to `limit` entries in storage-key order, after the entry of `start_after` when given.
    /// Only for hashers that keep the key ([`Blake2_128Concat`], [`Identity`]).
    pub fn iter(&self, q: &QueryContext, start_after: Option<&K>, limit: usize) -> Vec<(K, V)> {
        let prefix = self.prefix.to_vec();
        let after = start_after.map(|k| self.key(k));
        q.snapshot()
            .pairs(&prefix, after.as_deref(), limit)
            .into_iter()
            .map(|(key, raw)| {
                let suffix = H::reverse(&key[prefix.len()..])
                    .unwrap_or_else(|| panic!("corrupt state: short key 0x{}", hex::encode(&key)));
                (decode_stored(&key, suffix), decode_stored(&key, &raw))
            })
            .collect()
    }
}

impl<K: Encode + Decode, V: Encode + Decode + Default, H: StorageHasher> StorageMap<K, V, H> {
    /// The value at `k`, or the default.
    pub fn get_or_default<S: StorageRead + ?Sized>(&self, s: &mut S, k: &K) -> V {
        self.get(s, k).unwrap_or_default()
    }
}

/// A map keyed by two keys, each with its own hasher.
#[allow(clippy::type_complexity)]
pub struct StorageDoubleMap<K1, K2, V, H1, H2> {
    /// The pallet's storage name.
    pub pallet: &'static str,
    /// The item's name.
    pub item: &'static str,
    /// `twox128(pallet) ++ twox128(item)`, computed with the constant.
    prefix: [u8; 32],
    _types: PhantomData<fn() -> (K1, K2, V, H1, H2)>,
}

impl<K1, K2, V, H1, H2> StorageDoubleMap<K1, K2, V, H1, H2>
where
    K1: Encode + Decode,
    K2: Encode + Decode,
    V: Encode + Decode,
    H1: StorageHasher,
    H2: StorageHasher,
{
    /// Declares the item `pallet::item`.
    pub const fn new(pallet: &'static str, item: &'static str) -> Self {
        Self { pallet, item, prefix: prefix_of(pallet, item), _types: PhantomData }
    }

    /// The storage key of `(k1, k2)`.
    pub fn key(&self, k1: &K1, k2: &K2) -> Vec<u8> {
        let mut key = self.prefix.to_vec();
        key.extend_from_slice(&H1::hash(&k1.encode()));
        key.extend_from_slice(&H2::hash(&k2.encode()));
        key
    }

    /// The value at `(k1, k2)`, if any.
    pub fn get<S: StorageRead + ?Sized>(&self, s: &mut S, k1: &K1, k2: &K2) -> Option<V> {
        let key = self.key(k1, k2);
        s.read_raw(&key).map(|raw| decode_stored(&key, &raw))
    }

    /// Sets the value at `(k1, k2)`.
    pub fn insert<S: StorageWrite + ?Sized>(&self, s: &mut S, k1: &K1, k2: &K2, value: &V) {
        s.write_raw(self.key(k1, k2), Some(value.encode()));
    }

    /// Removes the value at `(k1, k2)`.
    pub fn remove<S: StorageWrite + ?Sized>(&self, s: &mut S, k1: &K1, k2: &K2) {
        s.write_raw(self.key(k1, k2), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyperion_state::{ChangeSet, MemoryStateDb, StateDb};
    use std::collections::HashMap;

    #[derive(Default)]
    struct Mem(HashMap<Vec<u8>, Vec<u8>>);
    impl StorageRead for Mem {
        fn read_raw(&mut self, key: &[u8]) -> Option<Vec<u8>> {
            self.0.get(key).cloned()
        }
    }
    impl StorageWrite for Mem {
        fn write_raw(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
            match value {
                Some(v) => self.0.insert(key, v),
                None => self.0.remove(&key),
            };
        }

        fn add_raw(&mut self, key: Vec<u8>, delta: Delta) {
            let value = delta.apply(self.0.get(&key).map(Vec::as_slice));
            self.0.insert(key, value);
        }
    }

    const COUNTER: StorageValue<u32> = StorageValue::new("Test", "Counter");
    const MAP: StorageMap<u64, u32, Blake2_128Concat> = StorageMap::new("Test", "Map");
    const TOTAL: StorageValue<u128> = StorageValue::new("Test", "Total");
    const GAS: StorageMap<u64, u64, Blake2_128Concat> = StorageMap::new("Test", "Gas");
    const DOUBLE: StorageDoubleMap<u8, u8, bool, Identity, Blake2_128Concat> =
        StorageDoubleMap::new("Test", "Double");

    #[test]
    fn key_layout_is_fixed() {
        // twox128("System") ++ twox128("Number"), the same bytes as Substrate's System::Number.
        assert_eq!(
            hex::encode(storage_prefix("System", "Number")),
            "26aa394eea5630e07c48ae0c9558cef702a5c1b19ab7a04f536c519aca4983ac"
        );
        let key = MAP.key(&7);
        assert_eq!(key.len(), 32 + 16 + 8);
        assert_eq!(&key[48..], &7u64.to_le_bytes());
        assert_eq!(DOUBLE.key(&1, &2)[32], 1);
    }

    #[test]
    fn typed_access() {
        let mut s = Mem::default();
        assert_eq!(COUNTER.get(&mut s), None);
        COUNTER.put(&mut s, &5);
        assert_eq!(COUNTER.get_or_default(&mut s), 5);
        MAP.insert(&mut s, &1, &10);
        assert_eq!(MAP.get(&mut s, &1), Some(10));
        MAP.remove(&mut s, &1);
        assert_eq!(MAP.get(&mut s, &1), None);
        DOUBLE.insert(&mut s, &1, &2, &true);
        assert_eq!(DOUBLE.get(&mut s, &1, &2), Some(true));
        TOTAL.add(&mut s, Delta::add(&hyperion_executor::U128, 7));
        TOTAL.add(&mut s, Delta::sub(&hyperion_executor::U128, 2));
        assert_eq!(TOTAL.get(&mut s), Some(5));
        GAS.add(&mut s, &3, Delta::add(&hyperion_executor::U64, 9));
        assert_eq!(GAS.get(&mut s, &3), Some(9));
        assert_eq!(DOUBLE.get(&mut s, &2, &1), None);
    }

    #[test]
    fn map_iteration_pages() {
        let db = MemoryStateDb::new(1);
        let changes: ChangeSet = (0u64..10).map(|i| (MAP.key(&i), Some((i as u32 * 2).encode()))).collect();
        db.commit(0, &changes, None).unwrap();
        let q = QueryContext::new(db.snapshot(0).unwrap());
        let first = MAP.iter(&q, None, 4);
        assert_eq!(first.len(), 4);
        let rest = MAP.iter(&q, Some(&first[3].0), 100);
        assert_eq!(rest.len(), 6);
        let mut all: Vec<_> = first.into_iter().chain(rest).collect();
        all.sort();
        assert_eq!(all, (0u64..10).map(|i| (i, i as u32 * 2)).collect::<Vec<_>>());
    }
}
