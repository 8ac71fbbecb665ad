//! The multi-version memory of one block: for every key, the value each transaction wrote (or
//! the delta it added), so that transaction `i` reads what the transactions before it left.
//!
//! ```text
//! key (exact bytes) -> { base: the value before the block (read once, cached),
//!                        versions: txn -> Write(incarnation, value) | Delta(incarnation, delta)
//!                                        | Estimate (being re-executed: readers must wait) }
//! ```
//!
//! Keys are the exact state keys, hashed with a random key per block's memory (aHash), so that
//! no choice of keys can make two keys share an entry or pile up in one bucket. The map is split in
//! shards, each behind its own lock; a shard's lock is never held while calling out of this
//! module. Locks are taken in one order: a transaction's footprint, then a shard.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use ahash::RandomState;

use crate::delta::Delta;
use crate::view::{Local, Writes};
use crate::{Storage, TxnIndex};

/// A value as the memory holds it: shared, so that reads and validation do not copy.
pub(crate) type Value = Option<Arc<[u8]>>;

const SHARDS: usize = 64;

type Shard = HashMap<Vec<u8>, Record, RandomState>;

enum Entry {
    Write(Value),
    Delta(Delta),
    Estimate,
}

#[derive(Default)]
struct Record {
    /// The value before the block, once read.
    base: Option<Value>,
    versions: BTreeMap<TxnIndex, Entry>,
}

/// A read's result.
pub(crate) enum Read {
    /// The value, resolved through the deltas below it.
    Value(Value),
    /// Transaction `.0` is being re-executed and wrote the key before: wait for it.
    Blocked(TxnIndex),
}

/// One transaction's last recorded reads and written keys.
#[derive(Default)]
struct Footprint {
    reads: Vec<(Vec<u8>, Value)>,
    /// Prefixes listed with [`MvMemory::keys_before`], and what the listing gave.
    listings: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
    /// The keys written, with the delta when the entry is one.
    written: Vec<(Vec<u8>, Option<Delta>)>,
}

pub(crate) struct MvMemory {
    hasher: RandomState,
    shards: Box<[Mutex<Shard>]>,
    footprints: Box<[Mutex<Footprint>]>,
}

/// Where the walk down a key's versions ended.
enum Walk {
    Blocked(TxnIndex),
    /// A write, with the deltas above it (lowest first).
    Found(Value, Vec<Delta>),
    /// The bottom: the base value if cached, with the deltas above it.
    Bottom(Option<Value>, Vec<Delta>),
}

impl MvMemory {
    pub(crate) fn new(txns: usize) -> Self {
        Self {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::default())).collect(),
            footprints: (0..txns).map(|_| Mutex::new(Footprint::default())).collect(),
        }
    }

    fn shard(&self, key: &[u8]) -> &Mutex<Shard> {
        &self.shards[self.hasher.hash_one(key) as usize % SHARDS]
    }

    /// Walks down `record`'s versions below `txn` (under its shard's lock).
    fn walk(record: Option<&Record>, txn: TxnIndex) -> Walk {
        let Some(record) = record else { return Walk::Bottom(None, Vec::new()) };
        let mut deltas = Vec::new();
        for (&writer, entry) in record.versions.range(..txn).rev() {
            match entry {
                Entry::Estimate => return Walk::Blocked(writer),
                Entry::Write(value) => {
                    deltas.reverse();
                    return Walk::Found(value.clone(), deltas);
                }
                Entry::Delta(delta) => deltas.push(*delta),
            }
        }
        deltas.reverse();
        Walk::Bottom(record.base.clone(), deltas)
    }

    /// The value of `key` for transaction `txn`: what the last transaction before it wrote,
    /// with the deltas added since, or the base value from `storage` with every delta before.
    pub(crate) fn read(&self, key: &[u8], txn: TxnIndex, storage: &dyn Storage) -> Read {
        let shard = self.shard(key);
        let mut walk = Self::walk(shard.lock().get(key), txn);
        if let Walk::Bottom(None, _) = walk {
            // Read the base without holding the lock, cache it, and walk again under the lock:
            // writes may have arrived meanwhile.
            let base: Value = storage.get(key).map(Arc::from);
            let mut locked = shard.lock();
            let record = locked.entry(key.to_vec()).or_default();
            record.base.get_or_insert(base);
            walk = Self::walk(Some(record), txn);
        }
        let (value, deltas) = match walk {
            Walk::Blocked(writer) => return Read::Blocked(writer),
            Walk::Found(value, deltas) => (value, deltas),
            Walk::Bottom(base, deltas) => (base.expect("the base is cached"), deltas),
        };
        if deltas.is_empty() {
            return Read::Value(value);
        }
        let mut current = value.as_deref().map(<[u8]>::to_vec);
        for delta in deltas {
            current = Some(delta.apply(current.as_deref()));
        }
        Read::Value(current.map(Arc::from))
    }

    /// The keys under `prefix` that transactions before `txn` wrote, in key order (a scan of
    /// every shard: for rare range deletions).
    pub(crate) fn keys_before(&self, prefix: &[u8], txn: TxnIndex) -> Vec<Vec<u8>> {
        let mut keys = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock();
            keys.extend(
                shard
                    .iter()
                    .filter(|(k, r)| k.starts_with(prefix) && r.versions.range(..txn).next().is_some())
                    .map(|(k, _)| k.clone()),
            );
        }
        keys.sort();
        keys
    }

    /// Publishes the writes of an execution of `txn` and remembers its reads and listings for
    /// validation. Returns whether every later transaction must be validated again: when the
    /// execution wrote a key that the previous one did not, or changed a delta that the previous
    /// one added (deltas stay visible while their transaction is re-executed, see
    /// [`MvMemory::mark_estimates`]).
    pub(crate) fn record(
        &self,
        txn: TxnIndex,
        reads: Vec<(Vec<u8>, Value)>,
        listings: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
        writes: Writes,
    ) -> bool {
        let mut written = Vec::with_capacity(writes.len());
        for (key, local) in writes.into_iter() {
            let (entry, delta) = match local {
                Local::Write(value) => (Entry::Write(value.map(Arc::from)), None),
                Local::Delta(delta) => (Entry::Delta(delta), Some(delta)),
            };
            let mut shard = self.shard(&key).lock();
            match shard.get_mut(key.as_slice()) {
                Some(record) => {
                    record.versions.insert(txn, entry);
                }
                None => {
                    let mut record = Record::default();
                    record.versions.insert(txn, entry);
                    shard.insert(key.clone(), record);
                }
            }
            drop(shard);
            written.push((key, delta));
        }
        let mut footprint = self.footprints[txn as usize].lock();
        let revalidate_later = if footprint.written.is_empty() {
            // A first execution: nothing stale to remove.
            !written.is_empty()
        } else {
            let now: HashMap<&[u8], Option<Delta>> =
                written.iter().map(|(k, d)| (k.as_slice(), *d)).collect();
            let mut changed = false;
            for (key, before) in &footprint.written {
                match now.get(key.as_slice()) {
                    Some(delta) => changed |= before.is_some() && delta != before,
                    None => {
                        changed |= before.is_some();
                        if let Some(record) = self.shard(key).lock().get_mut(key.as_slice()) {
                            record.versions.remove(&txn);
                        }
                    }
                }
            }
            let before: HashSet<&[u8]> = footprint.written.iter().map(|(k, _)| k.as_slice()).collect();
            changed || now.keys().any(|key| !before.contains(key))
        };
        *footprint = Footprint { reads, listings, written };
        revalidate_later
    }

    /// Marks every key `txn` last wrote as being re-executed, except its deltas: a re-execution
    /// almost always adds the same delta again, so readers keep resolving the old one, and
    /// [`MvMemory::record`] has them validated again if it changed.
    pub(crate) fn mark_estimates(&self, txn: TxnIndex) {
        let footprint = self.footprints[txn as usize].lock();
        for (key, _) in footprint.written.iter().filter(|(_, delta)| delta.is_none()) {
            if let Some(record) = self.shard(key).lock().get_mut(key.as_slice()) {
                record.versions.insert(txn, Entry::Estimate);
            }
        }
    }

    /// Whether every value `txn` last read is still what it would read now.
    pub(crate) fn validate(&self, txn: TxnIndex, storage: &dyn Storage) -> bool {
        let footprint = self.footprints[txn as usize].lock();
        footprint.reads.iter().all(|(key, seen)| match self.read(key, txn, storage) {
            Read::Blocked(_) => false,
            Read::Value(now) => same(&now, seen),
        }) && footprint.listings.iter().all(|(prefix, seen)| self.keys_before(prefix, txn) == *seen)
    }

    /// How many shards [`MvMemory::shard_writes_before`] covers.
    pub(crate) const SHARDS: usize = SHARDS;

    /// The value of every key of shard `shard` that transactions before `end` wrote, as they
    /// left it (nothing may run any more). One pass over the shard, without hashing or locking
    /// per key.
    pub(crate) fn shard_writes_before(
        &self,
        shard: usize,
        end: TxnIndex,
        storage: &dyn Storage,
    ) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let shard = self.shards[shard].lock();
        let mut out = Vec::new();
        for (key, record) in shard.iter() {
            if record.versions.range(..end).next().is_none() {
                continue;
            }
            let mut deltas = Vec::new();
            let mut value = None;
            for (txn, entry) in record.versions.range(..end).rev() {
                match entry {
                    Entry::Write(written) => {
                        value = Some(written.clone());
                        break;
                    }
                    Entry::Delta(delta) => deltas.push(*delta),
                    Entry::Estimate => {
                        panic!("transaction {txn} is still being re-executed after the block ended")
                    }
                }
            }
            let value = match value {
                Some(value) => value,
                None => record.base.clone().unwrap_or_else(|| storage.get(key).map(Arc::from)),
            };
            let mut current = value.as_deref().map(<[u8]>::to_vec);
            for delta in deltas.iter().rev() {
                current = Some(delta.apply(current.as_deref()));
            }
            out.push((key.clone(), current));
        }
        out
    }
}

/// Whether two reads saw the same value (the same allocation, or equal bytes).
pub(crate) fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a[..] == b[..],
        (None, None) => true,
        _ => false,
    }
}
