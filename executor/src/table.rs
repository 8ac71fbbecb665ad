//! The block's shared index of entries: an open-addressing table of atomic slots that the
//! workers read and fill without a lock.
//!
//! A slot is empty (0), or holds a tag (32 bits of the key's hash, never 0) and an entry: the
//! entry's number, or `RESERVED` while the worker that claimed the slot creates the entry. A
//! key's slots are probed in order from its hash; the first empty one is claimed with a
//! compare-and-swap, so two workers that meet a new key at once agree on one entry (the second
//! waits the few instructions until the first publishes it). Slots are only ever filled during
//! a block, so a key found absent at an empty slot, or past a full probe sequence, stays so
//! for every worker that probes the same sequence.
//!
//! The table has a fixed size per block, chosen from the block's size and the last block's
//! number of keys. A key whose whole probe sequence ([`MAX_PROBE`] slots) is full is not
//! filed here: [`Table::find_or_claim`] says so, and the caller files it elsewhere (the
//! memory's locked shards); every worker then finds it there, by the same rule.
//!
//! Compared with shards behind locks, a look-up writes no shared memory (a lock's line would
//! move between the workers' cores at every look-up) and a new key costs one atomic operation.

use std::sync::atomic::{AtomicU64, Ordering::AcqRel, Ordering::Acquire, Ordering::Release};

use crate::mvmemory::EntryId;

/// Slots probed for a key before it is filed elsewhere.
pub(crate) const MAX_PROBE: usize = 32;

/// The entry part of a claimed slot whose entry is being created.
const RESERVED: u32 = u32::MAX;

/// Spins on a reserved slot before yielding the thread to the one creating its entry.
const SPINS_BEFORE_YIELD: u32 = 64;

/// See the module docs.
pub(crate) struct Table {
    slots: Box<[AtomicU64]>,
    mask: usize,
}

/// What a probe found.
pub(crate) enum Probe {
    /// The key's entry (created by the probe or found).
    Found(EntryId),
    /// The key's probe sequence is full, and the key is not in it.
    Full,
}

/// A slot reserved for an entry being created: emptied when dropped before the entry is
/// published (the creation panicked), so that no worker waits on it for ever.
struct Claim<'a>(&'a AtomicU64);

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.0.store(0, Release);
    }
}

fn pack(tag: u32, entry: u32) -> u64 {
    (u64::from(tag) << 32) | u64::from(entry)
}

fn tag_of(hash: u64) -> u32 {
    // The high half, where the slot's position (the low bits) does not come from; never 0.
    (hash >> 32) as u32 | 1
}

impl Table {
    /// A table of `slots` slots (rounded up to a power of two, at least [`MAX_PROBE`]).
    pub(crate) fn new(slots: usize) -> Self {
        let slots = slots.max(MAX_PROBE).next_power_of_two();
        Self { slots: (0..slots).map(|_| AtomicU64::new(0)).collect(), mask: slots - 1 }
    }

    /// Its number of slots.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Empties every slot.
    pub(crate) fn clear(&mut self) {
        for slot in self.slots.iter_mut() {
            *slot.get_mut() = 0;
        }
    }

    /// The entry of the key of `hash` for which `is_key` holds, found among the slots of that
    /// hash; else, in the first empty one, the entry `create` makes (its number must be below
    /// `u32::MAX`), claimed for it first so that no other worker creates one for the same key.
    /// `Full` when neither: every slot of the key's probe sequence holds another key.
    pub(crate) fn find_or_claim(
        &self,
        hash: u64,
        is_key: impl Fn(EntryId) -> bool,
        create: impl FnOnce() -> EntryId,
    ) -> Probe {
        let tag = tag_of(hash);
        let mut position = hash as usize & self.mask;
        for _ in 0..MAX_PROBE.min(self.slots.len()) {
            let slot = &self.slots[position];
            let mut value = slot.load(Acquire);
            let mut spins = 0u32;
            loop {
                if value == 0 {
                    match slot.compare_exchange(0, pack(tag, RESERVED), AcqRel, Acquire) {
                        Ok(_) => {
                            // Emptied again if `create` panics: others wait on a reserved slot.
                            let claim = Claim(slot);
                            let id = create();
                            assert_ne!(id, RESERVED, "fewer than 2^32 - 1 entries per block");
                            std::mem::forget(claim);
                            slot.store(pack(tag, id), Release);
                            return Probe::Found(id);
                        }
                        // Claimed meanwhile: look at what it holds now.
                        Err(now) => {
                            value = now;
                            continue;
                        }
                    }
                }
                if (value >> 32) as u32 != tag {
                    break;
                }
                let entry = value as u32;
                if entry == RESERVED {
                    // Another worker is creating the entry of a key with this tag.
                    spins += 1;
                    if spins.is_multiple_of(SPINS_BEFORE_YIELD) {
                        std::thread::yield_now();
                    } else {
                        std::hint::spin_loop();
                    }
                    value = slot.load(Acquire);
                    continue;
                }
                if is_key(entry) {
                    return Probe::Found(entry);
                }
                break;
            }
            position = (position + 1) & self.mask;
        }
        Probe::Full
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// A creation that panics leaves its slot empty: the key is claimed again, not waited for.
    #[test]
    fn a_creation_that_panics_leaves_the_slot_to_the_next() {
        let table = Table::new(64);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            table.find_or_claim(5, |_| false, || panic!("out of entries"))
        }));
        assert!(panicked.is_err());
        assert!(matches!(table.find_or_claim(5, |_| false, || 7), Probe::Found(7)));
        assert!(matches!(table.find_or_claim(5, |id| id == 7, || unreachable!()), Probe::Found(7)));
    }

    /// Keys (numbers) with chosen hashes, filed from several threads at once: each key gets
    /// exactly one entry, every thread finds that one, and a full probe sequence says so.
    #[test]
    fn every_key_gets_one_entry_whichever_threads_meet_it() {
        for (slots, keys, spread) in [(64, 40, u64::MAX), (64, 200, u64::MAX), (1024, 600, 7)] {
            let table = Table::new(slots);
            // `spread` narrows the hashes: many keys then share probe sequences (and tags).
            let hash = |key: u64| key.wrapping_mul(0x9E37_79B9_7F4A_7C15) & (spread | (spread << 32));
            let created: Mutex<HashMap<u32, u64>> = Mutex::new(HashMap::new());
            let found: Vec<Vec<(u64, Option<u32>)>> = std::thread::scope(|scope| {
                let workers: Vec<_> = (0..4)
                    .map(|worker| {
                        let (table, created) = (&table, &created);
                        scope.spawn(move || {
                            let order: Vec<u64> =
                                if worker % 2 == 0 { (0..keys).collect() } else { (0..keys).rev().collect() };
                            order
                                .into_iter()
                                .map(|key| {
                                    let is_key = |id: u32| created.lock().unwrap().get(&id) == Some(&key);
                                    let create = || {
                                        let mut created = created.lock().unwrap();
                                        let id = created.len() as u32;
                                        created.insert(id, key);
                                        id
                                    };
                                    match table.find_or_claim(hash(key), is_key, create) {
                                        Probe::Found(id) => (key, Some(id)),
                                        Probe::Full => (key, None),
                                    }
                                })
                                .collect()
                        })
                    })
                    .collect();
                workers.into_iter().map(|w| w.join().unwrap()).collect()
            });
            let created = created.into_inner().unwrap();
            let mut entry_of: HashMap<u64, Option<u32>> = HashMap::new();
            for (key, id) in found.into_iter().flatten() {
                if let Some(id) = id {
                    assert_eq!(created[&id], key, "an entry of another key");
                }
                assert_eq!(*entry_of.entry(key).or_insert(id), id, "two answers for key {key}");
            }
            let mut ids: Vec<u32> = entry_of.values().flatten().copied().collect();
            let filed = ids.len();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), filed, "two keys share an entry");
            assert_eq!(created.len(), filed, "an entry created for nothing");
            if keys as usize > slots {
                assert!(entry_of.values().any(Option::is_none), "more keys than slots, all filed");
            }
        }
    }
}
