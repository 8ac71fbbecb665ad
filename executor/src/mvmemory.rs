//! The multi-version memory of one block: for every key, the value each transaction wrote (or
//! the delta it added), so that transaction `i` reads what the transactions before it left.
//!
//! ```text
//! key (exact bytes) -> entry { base: the value before the block (read once, kept),
//!                              written: whether any transaction wrote it (read without a lock),
//!                              version: bumped at every change of the writes below; with a
//!                                       counter per deltas' list, the key's version
//!                                       (validation's fast path),
//!                              hot: a read of it turned out stale (readers wait, see parallel),
//!                              versions: txn -> Write(value)
//!                                             | Estimate (being re-executed: readers must wait),
//!                              deltas: one list per worker, txn -> Delta,
//!                                      + a few (txn, value resolved before txn) }
//! ```
//!
//! A read resolves the closest write before the reader, then applies every delta between it and
//! the reader, from every worker's list, in transaction order. An entry keeps a few resolved
//! values (the value before some transaction) and starts the next resolution from the closest
//! one: validating a sender's thousand payments one after the other then applies each delta a
//! few times, not half a million deltas. A change of a write or a delta (under the writes' lock
//! or its worker's list only) is noted, and the values past it are dropped by the next
//! resolution, which holds the writes and every list.
//!
//! Entries live for the whole block in append-only arenas, one per worker (each creates
//! entries in its own), and are named by their worker and position ([`EntryId`]); nothing is
//! ever removed from them, so a reference to an entry stays valid while other threads add more.
//! A shared table of atomic slots finds a key's entry without a lock ([`crate::table`]); a key
//! it cannot file (its probe sequence full) goes to shards behind locks. Reading a key that no
//! transaction before wrote (configuration, contract code, most accounts) is then a probe of
//! that table and one load of `written`: it writes no shared memory, so two workers reading the
//! same hot keys do not pass cache lines back and forth.
//! A transaction's footprint names entries, not keys, so validation re-reads without hashing.
//!
//! Keys are the exact state keys, hashed with a random key per block's memory (aHash), so that
//! no choice of keys can make two keys share an entry or pile up in one bucket. Locks are taken
//! in one order: a transaction's footprint, then an overflow shard or an entry's versions, then
//! an entry's delta lists (in worker order), then its resolved values. None is held while
//! calling out of this module, but for a [`crate::DeltaKind`]'s arithmetic (a pure function)
//! while a key's deltas resolve.

use hashbrown::HashTable;
use parking_lot::Mutex;
use smallvec::SmallVec;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::sync::{Arc, OnceLock};

use ahash::RandomState;

use crate::arena::Arena;
use crate::assume::Assumption;
use crate::delta::Delta;
use crate::merge::merged;
use crate::padded::Padded;
use crate::table::{Probe, Table};
use crate::view::{Local as LocalWrite, Writes};
use crate::{Storage, TxnIndex};

/// A value as the memory holds it: shared, so that reads and validation do not copy.
pub(crate) type Value = Option<Arc<[u8]>>;

/// A key and the value the block leaves it with (`None`: deleted).
pub(crate) type KeyWrite = (Vec<u8>, Option<Vec<u8>>);

/// A key's entry: the worker that created it (high bits, as many as the number of workers
/// needs) and its position in that worker's arena.
pub(crate) type EntryId = u32;

const SHARDS: usize = 64;

/// A hash table of entries: each slot holds the key's hash and its entry (the shards, for keys
/// the shared table could not file).
type Index = HashTable<(u64, EntryId)>;

/// Slots of the shared table per transaction of the block, at least (twice the keys of a block
/// whose transactions each touch 4; past the first block, twice the last block's keys). Not
/// more: a table larger than the block needs spreads its keys over more cache lines (16 per
/// transaction made the parallel side of a native block 9% slower).
const SLOTS_PER_TXN: usize = 8;

/// The fewest slots of the shared table.
#[cfg(not(test))]
const MIN_SLOTS: usize = 1 << 10;

/// The most slots of the shared table (32 MiB): keys past what it files go to the shards.
#[cfg(not(test))]
const MAX_SLOTS: usize = 1 << 22;

// The crate's tests run with a table of 32 to 64 slots: their blocks file keys in the table
// and, past it, in the shards: both ways are exercised.
#[cfg(test)]
const MIN_SLOTS: usize = 32;
#[cfg(test)]
const MAX_SLOTS: usize = 64;

/// A transaction's write of a key.
enum Version {
    Write(Value),
    /// Being re-executed: readers must wait.
    Estimate,
}

/// Entries of one key, sorted by transaction, the first `N` inline: most keys have one write
/// (kept inline: no allocation), a few (the fee recipient's) a delta per transaction, added
/// mostly at the end.
struct Sorted<T, const N: usize>(SmallVec<[(TxnIndex, T); N]>);

impl<T, const N: usize> Default for Sorted<T, N> {
    fn default() -> Self {
        Self(SmallVec::new())
    }
}

/// A key's writes: the first inline.
type WriteList = Sorted<Version, 1>;

/// One worker's deltas on a key: none inline (a delta and its transaction take a cache line,
/// which a list's line then could not hold with its lock).
type DeltaList = Sorted<Delta, 0>;

impl<T, const N: usize> Sorted<T, N> {
    fn insert(&mut self, txn: TxnIndex, item: T) {
        // Mostly at the end: a fee recipient's list of a thousand deltas is not searched (a
        // search reads lines all over it) to append to it.
        if self.0.last().is_none_or(|(last, _)| *last < txn) {
            self.0.push((txn, item));
            return;
        }
        match self.0.binary_search_by_key(&txn, |(t, _)| *t) {
            Ok(i) => self.0[i].1 = item,
            Err(i) => self.0.insert(i, (txn, item)),
        }
    }

    fn remove(&mut self, txn: TxnIndex) {
        if let Ok(i) = self.0.binary_search_by_key(&txn, |(t, _)| *t) {
            self.0.remove(i);
        }
    }

    /// The entries of the transactions before `txn`, the closest first.
    fn before(&self, txn: TxnIndex) -> impl Iterator<Item = (TxnIndex, &T)> {
        let end = self.0.partition_point(|(t, _)| *t < txn);
        self.0[..end].iter().rev().map(|(t, v)| (*t, v))
    }

    /// The entries of the transactions after `floor` (all with `None`) and before `end`.
    fn between(&self, floor: Option<TxnIndex>, end: TxnIndex) -> &[(TxnIndex, T)] {
        let start = floor.map_or(0, |floor| self.0.partition_point(|(t, _)| *t <= floor));
        let end = self.0.partition_point(|(t, _)| *t < end);
        &self.0[start..end.max(start)]
    }
}

/// Bumps a version counter after a change, under the lock that orders the changes it counts
/// (so a load and a store, not a locked add): last, once the change and the entry's `written`
/// are visible, so that a reader that sees the new version sees all of it.
fn bump(version: &AtomicU32) {
    version.store(version.load(Relaxed).wrapping_add(1), Release);
}

/// One worker's deltas on a key, on a cache line of its own: the fee recipient gets a delta
/// from every transaction, and a single list would move between the workers' caches at each.
#[repr(align(64))]
#[derive(Default)]
struct DeltaSlot {
    list: Mutex<DeltaList>,
    /// Bumped after every change of the list (see [`Entry::version`], which counts it): a
    /// counter of the entry's own would move between the workers' caches at every delta.
    version: AtomicU32,
}

/// One key of the block (the arena puts each on cache lines of its own, so that entries that
/// different workers write do not share one).
struct Entry {
    /// Inline up to [`INLINE_KEY`] bytes: no allocation for most keys, and comparing a key
    /// with the entry's reads no other line.
    key: SmallVec<[u8; INLINE_KEY]>,
    /// The value before the block, once read.
    base: OnceLock<Value>,
    /// Set when the first write or delta is added, and never cleared: while it is not set
    /// every read resolves to the base without taking a lock. Set once, it does not move a
    /// cache line between workers at every write.
    written: AtomicBool,
    /// Bumped after every change of a write (once the change and `written` are visible); with
    /// the counters of the deltas' lists, bumped the same way, it makes the entry's version
    /// (see [`Entry::version`]): a read that took the version before its value still holds
    /// while the version has not moved, whatever the transaction reading (validation checks
    /// that first).
    version: AtomicU32,
    /// Set when a read of the key turned out stale or met a writer being redone, and never
    /// cleared: a key that transactions of this block write one after the other (a contract's
    /// counter, a popular pool's reserves). A read of it waits for a transaction before that
    /// has yet to execute, instead of reading a value that transaction is likely to change.
    hot: AtomicBool,
    /// Writes (and estimates of writes being redone).
    versions: Mutex<WriteList>,
    /// Deltas (created with the key's first delta).
    deltas: OnceLock<Box<Deltas>>,
}

/// A key's deltas, one list per worker, and a few of its values resolved through them, as the
/// transactions before some point left it: a sender's payments (deltas) are validated one after
/// the other, each against the value through every payment before it; resolved from the start
/// each time, a block of a thousand payments would apply half a million deltas.
///
/// Three cache lines for two workers: this bookkeeping, then each worker's list. Most keys with
/// deltas get one (an account credited once in the block), and a native block credits a
/// thousand: each line here is one more to fetch and write per credited account (with a delta
/// inline in each list and a line of padding after them, it took six).
struct Deltas {
    /// The first two workers' lists (their own lines).
    first: [DeltaSlot; INLINE_SLOTS],
    /// The other workers' lists (none allocated for two workers).
    more: Box<[DeltaSlot]>,
    /// `(end, value)`: the value before transaction `end`, oldest first. Changed only while the
    /// entry's writes and every list are locked.
    resolved: Mutex<Vec<(TxnIndex, Arc<[u8]>)>>,
    /// The latest point before which a value is kept (0: none): a write or delta changed before
    /// it makes that value stale, and is noted in `stale_from`. Both are read and written under
    /// the entry's writes lock or a list's lock, and under all of them to keep a value.
    resolved_up_to: AtomicU32,
    /// The first transaction whose write or delta changed since values were last kept
    /// (`u32::MAX`: none).
    stale_from: AtomicU32,
}

/// Workers whose delta lists a key's [`Deltas`] holds inline.
const INLINE_SLOTS: usize = 2;

#[cfg(target_pointer_width = "64")]
const _: () = assert!(size_of::<DeltaSlot>() == 64 && size_of::<Deltas>() == 64 * (1 + INLINE_SLOTS));

impl Deltas {
    fn new(workers: usize) -> Self {
        Self {
            first: Default::default(),
            more: (INLINE_SLOTS..workers).map(|_| DeltaSlot::default()).collect(),
            resolved: Mutex::new(Vec::new()),
            resolved_up_to: AtomicU32::new(0),
            stale_from: AtomicU32::new(u32::MAX),
        }
    }

    /// Worker `worker`'s list.
    fn slot(&self, worker: usize) -> &DeltaSlot {
        match worker.checked_sub(INLINE_SLOTS) {
            None => &self.first[worker],
            Some(other) => &self.more[other],
        }
    }

    /// Every worker's list, in worker order (with one worker, an empty second one).
    fn slots(&self) -> impl Iterator<Item = &DeltaSlot> {
        self.first.iter().chain(self.more.iter())
    }

    /// Notes that `txn` changed its write or delta (the caller holds a lock of the entry).
    fn changed(&self, txn: TxnIndex) {
        if txn < self.resolved_up_to.load(Relaxed) {
            self.stale_from.fetch_min(txn, Relaxed);
        }
    }
}

/// Key bytes an entry holds without allocating: a storage map's key of a 20-byte account
/// (32 bytes of prefix, 16 of hash, the account) and a little more.
const INLINE_KEY: usize = 72;

/// Resolved values an entry keeps.
const RESOLVED_KEPT: usize = 4;

/// Deltas a resolution applies before it keeps its value: shorter runs cost less to apply again
/// than to keep (an allocation, the bookkeeping).
const RESOLVED_AFTER_DELTAS: usize = 8;

impl Entry {
    fn new(key: &[u8]) -> Self {
        Self {
            key: SmallVec::from_slice(key),
            base: OnceLock::new(),
            written: AtomicBool::new(false),
            version: AtomicU32::new(0),
            hot: AtomicBool::new(false),
            versions: Mutex::new(Sorted::default()),
            deltas: OnceLock::new(),
        }
    }

    fn base(&self, storage: &dyn Storage) -> &Value {
        self.base.get_or_init(|| storage.get(&self.key).map(Arc::from))
    }

    fn mark_hot(&self) {
        if !self.hot.load(Relaxed) {
            self.hot.store(true, Relaxed);
        }
    }

    fn mark_written(&self) {
        if !self.written.load(Acquire) {
            self.written.store(true, Release);
        }
    }

    /// Changes `txn`'s write under the writes' lock (the values resolved past it go stale).
    fn update(&self, txn: TxnIndex, change: impl FnOnce(&mut WriteList)) {
        let mut versions = self.versions.lock();
        change(&mut versions);
        if let Some(deltas) = self.deltas.get() {
            deltas.changed(txn);
        }
        self.mark_written();
        bump(&self.version);
        drop(versions);
    }

    /// The counter of the writes plus those of the deltas' lists, each only ever bumped: the
    /// sum moves when any of them does (short of 2^32 changes between a read and its
    /// validation). Each counter is taken before the value is read, so a reader that sees a
    /// change's bump sees the change.
    fn version(&self) -> u32 {
        let writes = self.version.load(Acquire);
        match self.deltas.get() {
            None => writes,
            Some(deltas) => {
                deltas.slots().fold(writes, |sum, slot| sum.wrapping_add(slot.version.load(Acquire)))
            }
        }
    }

    /// Changes `txn`'s delta in worker `slot`'s list under its lock.
    fn update_deltas(&self, workers: usize, slot: usize, txn: TxnIndex, change: impl FnOnce(&mut DeltaList)) {
        let deltas = self.deltas.get_or_init(|| Box::new(Deltas::new(workers)));
        let slot = deltas.slot(slot);
        let mut list = slot.list.lock();
        change(&mut list);
        deltas.changed(txn);
        self.mark_written();
        bump(&slot.version);
        drop(list);
    }

    /// What the transactions before `end` wrote of the key, copied out (`None`: none of them
    /// wrote it): for the block's end, when no transaction runs any more. A key without deltas
    /// (most) is copied under the lock, without taking a share of its value (an atomic add and
    /// subtract on a line the gathering thread mostly does not hold).
    fn final_value(&self, end: TxnIndex, storage: &dyn Storage) -> Result<Option<Option<Vec<u8>>>, TxnIndex> {
        if !self.written.load(Acquire) {
            return Ok(None);
        }
        if self.deltas.get().is_none() {
            return match self.versions.lock().before(end).next() {
                None => Ok(None),
                Some((writer, Version::Estimate)) => Err(writer),
                Some((_, Version::Write(value))) => Ok(Some(value.as_deref().map(<[u8]>::to_vec))),
            };
        }
        Ok(match self.before(end, storage, false)? {
            Before::Untouched => None,
            Before::Written(value) => Some(value.as_deref().map(<[u8]>::to_vec)),
            Before::Resolved(value) => Some(Some(value)),
            Before::Kept(value) => Some(Some(value.to_vec())),
        })
    }

    /// The key as the transactions before `end` left it: `Err` with a writer being redone.
    /// `keep`: a value resolved through many deltas is kept for the next resolution (not at
    /// the block's end, when there is none).
    fn before(&self, end: TxnIndex, storage: &dyn Storage, keep: bool) -> Result<Before, TxnIndex> {
        if !self.written.load(Acquire) {
            return Ok(Before::Untouched);
        }
        // Read before anything is locked (it may call the storage). At the block's end (`keep`
        // false: no later read), a base not read yet is read for this once and not kept.
        let deltas = self.deltas.get();
        let once = deltas.is_some() && !keep && self.base.get().is_none();
        let fetched = if once { storage.get(&self.key) } else { None };
        let base: Option<&[u8]> = match deltas {
            None => None,
            Some(_) if once => fetched.as_deref(),
            Some(_) => self.base(storage).as_deref(),
        };
        // Locked until the value is resolved, so that no write changes meanwhile.
        let versions = self.versions.lock();
        let write = match versions.before(end).next() {
            None => None,
            Some((writer, Version::Estimate)) => return Err(writer),
            Some((writer, Version::Write(value))) => Some((writer, value.clone())),
        };
        let unresolved = |write: Option<(TxnIndex, Value)>| match write {
            None => Before::Untouched,
            Some((_, value)) => Before::Written(value),
        };
        let Some(deltas) = deltas else { return Ok(unresolved(write)) };
        // The deltas after the write and before `end`, merged in transaction order from the
        // workers' lists, which stay locked meanwhile (in slot order, the only place that holds
        // more than one): no copy of a hot key's thousand deltas, no sort.
        let lists: SmallVec<[_; 4]> = deltas.slots().map(|slot| slot.list.lock()).collect();
        let mut resolved = deltas.resolved.lock();
        if deltas.stale_from.load(Relaxed) != u32::MAX {
            let stale_from = deltas.stale_from.swap(u32::MAX, Relaxed);
            resolved.retain(|(resolved_end, _)| *resolved_end <= stale_from);
        }
        // Start from the latest value kept after the write, if any.
        let floor = write.as_ref().map(|(writer, _)| *writer);
        let kept = resolved
            .iter()
            .enumerate()
            .filter(|(_, (resolved_end, _))| *resolved_end <= end && floor.is_none_or(|f| *resolved_end > f))
            .max_by_key(|(_, (resolved_end, _))| *resolved_end)
            .map(|(position, (resolved_end, value))| (position, *resolved_end, Arc::clone(value)));
        // (A transaction's delta is in one list, except while it moves to another worker's:
        // then both count, see `record`.)
        let after = match &kept {
            Some((_, resolved_end, _)) => resolved_end.checked_sub(1),
            None => floor,
        };
        let runs = lists.iter().map(|list| list.between(after, end).iter());
        let mut pending = merged(runs, |a, b| a.0 < b.0).map(|(_, delta)| *delta);
        let Some(first) = pending.next() else {
            return Ok(match kept {
                Some((_, _, value)) => Before::Kept(value),
                None => unresolved(write),
            });
        };
        let start = match (&kept, &write) {
            (Some((_, _, value)), _) => Some(&value[..]),
            (None, Some((_, value))) => value.as_deref(),
            (None, None) => base,
        };
        let mut applied = 1;
        let value = resolve(start, first, pending.inspect(|_| applied += 1));
        if !keep || applied < RESOLVED_AFTER_DELTAS {
            return Ok(Before::Resolved(value));
        }
        let value: Arc<[u8]> = Arc::from(value);
        // Kept for the next resolution: in place of the one it started from (resolutions move
        // forward), else in place of the oldest.
        match kept {
            Some((position, _, _)) => resolved[position] = (end, Arc::clone(&value)),
            None => {
                if resolved.len() == RESOLVED_KEPT {
                    resolved.remove(0);
                }
                resolved.push((end, Arc::clone(&value)));
            }
        }
        let up_to = resolved.iter().map(|(resolved_end, _)| *resolved_end).max().unwrap_or(0);
        deltas.resolved_up_to.store(up_to, Relaxed);
        drop((resolved, lists, versions));
        Ok(Before::Kept(value))
    }

    /// Whether a transaction before `end` wrote the key or added to it; `Err` with a writer
    /// being redone when that writer's write is the only one, since the redone execution may
    /// not write the key again (a listing, like a read, waits for it).
    fn written_before(&self, end: TxnIndex) -> Result<bool, TxnIndex> {
        if !self.written.load(Acquire) {
            return Ok(false);
        }
        let versions = self.versions.lock();
        let mut redone = None;
        for (writer, version) in versions.before(end) {
            match version {
                Version::Write(_) => return Ok(true),
                Version::Estimate => {
                    redone.get_or_insert(writer);
                }
            }
        }
        let added = self
            .deltas
            .get()
            .is_some_and(|deltas| deltas.slots().any(|slot| slot.list.lock().before(end).next().is_some()));
        drop(versions);
        match redone {
            _ if added => Ok(true),
            Some(writer) => Err(writer),
            None => Ok(false),
        }
    }
}

/// What the transactions before a point left of a key.
enum Before {
    /// Nothing: the value is the base.
    Untouched,
    /// A write, with no delta after it.
    Written(Value),
    /// A write or the base, with the deltas after it applied.
    Resolved(Vec<u8>),
    /// Likewise, a value the entry keeps (see [`Deltas`]).
    Kept(Arc<[u8]>),
}

/// A read's result.
pub(crate) enum Read {
    /// No transaction before wrote the key: its value before the block.
    Base,
    /// The value the transactions before left, resolved through their deltas.
    Value(Value),
    /// Transaction `.0` is being re-executed and wrote the key before: wait for it.
    Blocked(TxnIndex),
}

/// What an execution read of a key, kept for validation.
pub(crate) enum Seen {
    /// The value before the block.
    Base,
    /// A value the transactions before left.
    Value(Value),
}

/// How a transaction wrote a key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Written {
    Write,
    /// A delta, in this worker's list.
    Delta(Delta, usize),
}

/// One transaction's last recorded reads and written keys.
#[derive(Default)]
struct Footprint {
    reads: Vec<(EntryId, Seen, u32)>,
    /// Prefixes listed with [`MvMemory::keys_before`], and what the listing gave.
    listings: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
    /// What it assumed of keys it did not read (see [`crate::View::assume`]).
    assumed: Vec<(EntryId, Assumption)>,
    written: Vec<(EntryId, Written)>,
}

/// What a validation found.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Validity {
    /// Every read is what the transaction would read now, every assumption holds.
    Valid,
    /// A read changed (or waits for a transaction being re-executed).
    Invalid,
    /// Every read stands, but an assumption does not hold (yet), or its key waits for this
    /// transaction, being re-executed.
    Unproven(Option<TxnIndex>),
}

/// One worker's own state during the block: its number among the workers, the entries it
/// created, the keys its current execution met, and once the block is done, the writes of its
/// entries.
pub(crate) struct Local {
    worker: usize,
    created: Vec<EntryId>,
    /// The first keys the current execution met, with their hashes (see [`MvMemory::id_met`]).
    met: Vec<(u64, EntryId)>,
    /// The writes of the entries it created, sorted by key (see [`MvMemory::gather`]).
    gathered: Option<Vec<KeyWrite>>,
}

/// Keys an execution remembers meeting (past these, they are looked up in the shared table).
const MET_KEYS: usize = 32;

impl Local {
    /// The worker's number.
    pub(crate) fn worker(&self) -> usize {
        self.worker
    }

    /// Forgets the keys the last execution met.
    pub(crate) fn start_execution(&mut self) {
        self.met.clear();
    }
}

pub(crate) struct MvMemory {
    hasher: RandomState,
    /// The entries, in one arena per worker: a worker creates entries in its own, so no shared
    /// counter moves between the workers' cores at every new key.
    entries: Box<[Arena<Entry>]>,
    /// Bits of an [`EntryId`] that number the entry in its arena (the rest name the worker).
    position_bits: u32,
    /// Finds a key's entry (see [`crate::table`]).
    table: Table,
    /// The keys `table` could not file. (Each shard, and each transaction's footprint, on cache
    /// lines of their own: see [`crate::padded`].)
    shards: Box<[Padded<Mutex<Index>>]>,
    /// The number of entries of the last block that had any (to size `table`).
    last_entries: usize,
    footprints: Vec<Padded<Mutex<Footprint>>>,
    workers: usize,
    /// The workers' own state, given back when they are done (for the block's end), and kept
    /// from earlier runs with its tables.
    given_back: Mutex<Vec<Local>>,
    spare_locals: Mutex<Vec<Local>>,
}

impl MvMemory {
    /// The memory of a block of `txns` transactions, executed by `workers` workers.
    pub(crate) fn new(txns: usize, workers: usize) -> Self {
        let mut memory = Self {
            hasher: RandomState::new(),
            entries: Box::new([]),
            position_bits: 32,
            table: Table::new(MIN_SLOTS),
            shards: (0..SHARDS).map(|_| Padded(Mutex::new(Index::new()))).collect(),
            last_entries: 0,
            footprints: Vec::new(),
            workers: 1,
            given_back: Mutex::new(Vec::new()),
            spare_locals: Mutex::new(Vec::new()),
        };
        memory.reset(txns, workers);
        memory
    }

    /// Empties the memory for another block of `txns` transactions on `workers` workers,
    /// keeping what it allocated: the arena's segments, the index tables, the footprints' lists.
    /// A block's first allocations are large, zeroed ones, which the allocator gets from the
    /// system by remapping pages (a TLB flush on every core); after the first block, none is
    /// needed.
    pub(crate) fn reset(&mut self, txns: usize, workers: usize) {
        let entries = self.len();
        if entries > 0 {
            // (Every key filed made an entry: without entries, the table is still empty.)
            self.last_entries = entries;
            for arena in self.entries.iter_mut() {
                arena.clear();
            }
            self.table.clear();
            for shard in self.shards.iter_mut() {
                shard.get_mut().clear();
            }
        }
        // Twice the keys expected, so that probes stay short; a table far too large for the
        // block is replaced too, as emptying it is work in proportion to its size.
        let wanted = (txns * SLOTS_PER_TXN).max(2 * self.last_entries).clamp(MIN_SLOTS, MAX_SLOTS);
        if txns > 0 && (self.table.capacity() < wanted || self.table.capacity() > 8 * wanted) {
            self.table = Table::new(wanted);
        }
        self.footprints.truncate(txns);
        for footprint in &mut self.footprints {
            let footprint = footprint.get_mut();
            footprint.reads.clear();
            footprint.listings.clear();
            footprint.assumed.clear();
            footprint.written.clear();
        }
        self.footprints.resize_with(txns, Default::default);
        self.workers = workers.max(1);
        if self.entries.len() < self.workers {
            let mut arenas = std::mem::take(&mut self.entries).into_vec();
            arenas.resize_with(self.workers, Arena::new);
            self.entries = arenas.into_boxed_slice();
        }
        // Worker numbers below `workers` in the high bits (none for one worker).
        self.position_bits = 32 - (self.workers - 1).checked_ilog2().map_or(0, |top| top + 1);
        self.spare_locals.get_mut().append(self.given_back.get_mut());
    }

    /// The own state of worker `worker` (numbered from 0, below the number of workers), sized
    /// for `txns` transactions.
    pub(crate) fn local(&self, worker: usize, txns: usize) -> Local {
        assert!(worker < self.workers, "worker {worker} of {}", self.workers);
        let spare = self.spare_locals.lock().pop();
        match spare {
            Some(mut local) => {
                local.created.clear();
                local.met.clear();
                local.gathered = None;
                Local { worker, ..local }
            }
            None => Local {
                worker,
                created: Vec::with_capacity(txns * 4 / self.workers),
                met: Vec::with_capacity(MET_KEYS),
                gathered: None,
            },
        }
    }

    /// Takes back a worker's own state when it is done: the writes it gathered make the block's
    /// changes (see [`MvMemory::gather`]), and its tables are reused next run.
    pub(crate) fn give_back(&self, local: Local) {
        self.given_back.lock().push(local);
    }

    fn entry(&self, id: EntryId) -> &Entry {
        let (worker, position) = self.locate(id);
        &self.entries[worker][position]
    }

    /// The worker whose arena holds entry `id`, and its position there.
    fn locate(&self, id: EntryId) -> (usize, usize) {
        let id = u64::from(id);
        ((id >> self.position_bits) as usize, (id & ((1 << self.position_bits) - 1)) as usize)
    }

    /// Every entry of the block.
    pub(crate) fn ids(&self) -> impl Iterator<Item = EntryId> + '_ {
        self.entries.iter().enumerate().flat_map(move |(worker, arena)| {
            let first = (worker as u64) << self.position_bits;
            (0..arena.len() as u64).map(move |position| (first | position) as EntryId)
        })
    }

    /// The entry of `key`, created if the block has none yet (and then counted among those of
    /// `local`, the calling worker's).
    #[cfg(test)]
    pub(crate) fn id(&self, local: &mut Local, key: &[u8]) -> EntryId {
        self.id_hashed(local, key, self.hash(key))
    }

    /// The hash the memory's indexes file `key` under.
    pub(crate) fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The entry of `key`, created if the block has none yet (and then counted among those of
    /// `local`, the calling worker's), first among the keys the worker's current execution met
    /// (see [`Local::start_execution`]), which it then counts `key` among: a key an execution
    /// reads and then writes (a balance, a nonce) is looked up in the shared table once.
    pub(crate) fn id_met(&self, local: &mut Local, key: &[u8]) -> EntryId {
        let hash = self.hash(key);
        if let Some(&(_, id)) = local.met.iter().find(|&&(h, id)| h == hash && *self.entry(id).key == *key) {
            return id;
        }
        let id = self.id_hashed(local, key, hash);
        if local.met.len() < MET_KEYS {
            local.met.push((hash, id));
        }
        id
    }

    /// The entry of `key`, whose hash is `hash`, created if the block has none yet (see
    /// [`MvMemory::id_met`]).
    fn id_hashed(&self, local: &mut Local, key: &[u8], hash: u64) -> EntryId {
        let is_key = |id: EntryId| *self.entry(id).key == *key;
        let mut created = false;
        let worker = local.worker;
        let create = || {
            created = true;
            self.create(worker, key)
        };
        let id = match self.table.find_or_claim(hash, is_key, create) {
            Probe::Found(id) => id,
            Probe::Full => {
                // The shard from bits the tables do not start their probes from: within a
                // shard, the low bits of the hashes still spread over the table.
                let mut shard = self.shards[(hash >> 32) as usize % SHARDS].lock();
                let is_key = |&(h, id): &(u64, EntryId)| h == hash && is_key(id);
                match shard.find(hash, is_key) {
                    Some(&(_, id)) => id,
                    None => {
                        let id = self.create(worker, key);
                        shard.insert_unique(hash, (hash, id), |&(h, _)| h);
                        created = true;
                        id
                    }
                }
            }
        };
        if created {
            local.created.push(id);
        }
        id
    }

    /// A new entry for `key`, in `worker`'s arena.
    fn create(&self, worker: usize, key: &[u8]) -> EntryId {
        let position = self.entries[worker].push(Entry::new(key)) as u64;
        let id = ((worker as u64) << self.position_bits) | position;
        assert!(
            position < 1 << self.position_bits && id < u64::from(EntryId::MAX),
            "too many keys in one block for {} workers",
            self.workers
        );
        id as EntryId
    }

    /// The version of entry `id` (see [`Entry::version`]): taken before a read of its value.
    pub(crate) fn version(&self, id: EntryId) -> u32 {
        self.entry(id).version()
    }

    /// The value of entry `id` before the block (read from `storage` the first time).
    pub(crate) fn base(&self, id: EntryId, storage: &dyn Storage) -> &Value {
        self.entry(id).base(storage)
    }

    /// The value of entry `id` for transaction `txn`: what the last transaction before it wrote,
    /// with the deltas added since, or the base value with every delta before.
    pub(crate) fn read(&self, id: EntryId, txn: TxnIndex, storage: &dyn Storage) -> Read {
        let entry = self.entry(id);
        match entry.before(txn, storage, true) {
            Err(writer) => {
                entry.mark_hot();
                Read::Blocked(writer)
            }
            Ok(Before::Untouched) => Read::Base,
            Ok(Before::Written(value)) => Read::Value(value),
            Ok(Before::Resolved(value)) => Read::Value(Some(Arc::from(value))),
            Ok(Before::Kept(value)) => Read::Value(Some(value)),
        }
    }

    /// For a hot key (see [`Entry::hot`]), the last transaction before `txn` that wrote it
    /// (`Some(None)`: none did); `None` for a key that is not hot.
    pub(crate) fn hot_floor(&self, id: EntryId, txn: TxnIndex) -> Option<Option<TxnIndex>> {
        let entry = self.entry(id);
        if !entry.hot.load(Relaxed) {
            return None;
        }
        Some(entry.versions.lock().before(txn).next().map(|(writer, _)| writer))
    }

    /// For each hot key that `txn`'s last execution read, the last transaction before `txn`
    /// that wrote it (`None`: none did).
    pub(crate) fn hot_reads(&self, txn: TxnIndex) -> Vec<Option<TxnIndex>> {
        let footprint = self.footprints[txn as usize].lock();
        footprint.reads.iter().filter_map(|(id, _, _)| self.hot_floor(*id, txn)).collect()
    }

    /// The keys under `prefix` that transactions before `txn` wrote, in key order (a scan of
    /// every entry: for rare range deletions); `Err` with a writer being redone whose write of
    /// a key there is that key's only one (see `Entry::written_before`).
    pub(crate) fn keys_before(&self, prefix: &[u8], txn: TxnIndex) -> Result<Vec<Vec<u8>>, TxnIndex> {
        let mut keys = Vec::new();
        for (_, entry) in self.entries.iter().flat_map(Arena::iter) {
            if entry.key.starts_with(prefix) && entry.written_before(txn)? {
                keys.push(entry.key.to_vec());
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// Publishes the writes of an execution of `txn` by the worker of `local`, and remembers
    /// its reads, listings and assumptions for validation. Returns the entries that later
    /// transactions may have read without this execution's change (see
    /// [`MvMemory::first_affected`]): the keys it wrote that the previous one did not, and the
    /// deltas it changed or moved from those the previous one added (deltas stay visible while
    /// their transaction is re-executed, see [`MvMemory::mark_estimates`]), sorted.
    ///
    /// New writes are published before stale ones are removed, so that no reader meanwhile
    /// finds neither.
    pub(crate) fn record(
        &self,
        local: &mut Local,
        txn: TxnIndex,
        reads: Vec<(EntryId, Seen, u32)>,
        listings: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
        assumed: Vec<(EntryId, Assumption)>,
        writes: Writes,
    ) -> Vec<EntryId> {
        let worker = local.worker;
        let mut written = Vec::with_capacity(writes.len());
        for (key, write) in writes.into_iter() {
            let id = self.id_met(local, &key);
            let entry = self.entry(id);
            match write {
                LocalWrite::Write(value) => {
                    entry.update(txn, |versions| versions.insert(txn, Version::Write(value.map(Arc::from))));
                    written.push((id, Written::Write));
                }
                LocalWrite::Delta(delta) => {
                    entry.update_deltas(self.workers, worker, txn, |deltas| deltas.insert(txn, delta));
                    written.push((id, Written::Delta(delta, worker)));
                }
            }
        }
        let mut footprint = self.footprints[txn as usize].lock();
        let mut affected: Vec<EntryId> = if footprint.written.is_empty() {
            // A first execution: nothing stale to remove.
            written.iter().map(|(id, _)| *id).collect()
        } else {
            let now: HashMap<EntryId, Written> = written.iter().copied().collect();
            let mut affected = Vec::new();
            for &(id, before) in &footprint.written {
                let after = now.get(&id).copied();
                let entry = self.entry(id);
                match (before, after) {
                    (Written::Write, Some(Written::Write)) => {}
                    (Written::Write, after) => {
                        entry.update(txn, |versions| versions.remove(txn));
                        // No longer written at all: a later listing of its prefix changes.
                        if after.is_none() {
                            affected.push(id);
                        }
                    }
                    (Written::Delta(_, slot), after) => {
                        // Changed, or moved to another worker's list: a reader meanwhile may
                        // have counted it twice.
                        if after != Some(before) {
                            affected.push(id);
                        }
                        if !matches!(after, Some(Written::Delta(_, s)) if s == slot) {
                            entry.update_deltas(self.workers, slot, txn, |deltas| deltas.remove(txn));
                        }
                    }
                }
            }
            let before: HashSet<EntryId> = footprint.written.iter().map(|(id, _)| *id).collect();
            affected.extend(now.keys().filter(|id| !before.contains(id)));
            affected
        };
        affected.sort_unstable();
        affected.dedup();
        *footprint = Footprint { reads, listings, assumed, written };
        affected
    }

    /// The first transaction after `txn` and before `started` (those that ever started to
    /// execute), at most `limit` of them, whose last recorded execution read, assumed something
    /// of, or listed a prefix of one of the `affected` entries (sorted): one that may have
    /// missed a change of `txn` and must be validated again, with every one after it. Past
    /// `limit`, the answer is the first one not looked at. (An execution recorded after this
    /// look is validated after it anyway.)
    pub(crate) fn first_affected(
        &self,
        affected: &[EntryId],
        txn: TxnIndex,
        started: usize,
        limit: usize,
    ) -> Option<TxnIndex> {
        if affected.is_empty() {
            return None;
        }
        let hit = |id: &EntryId| affected.binary_search(id).is_ok();
        let listed = |prefix: &[u8]| affected.iter().any(|&id| self.entry(id).key.starts_with(prefix));
        let started = started.min(self.footprints.len());
        let end = started.min(txn as usize + 1 + limit);
        for later in txn as usize + 1..end {
            let footprint = self.footprints[later].lock();
            if footprint.reads.iter().any(|(id, _, _)| hit(id))
                || footprint.assumed.iter().any(|(id, _)| hit(id))
                || footprint.listings.iter().any(|(prefix, _)| listed(prefix))
            {
                return TxnIndex::try_from(later).ok();
            }
        }
        (end < started).then(|| TxnIndex::try_from(end).expect("block sizes fit u32"))
    }

    /// Marks every key `txn` last wrote as being re-executed, except its deltas: a re-execution
    /// almost always adds the same delta again, so readers keep resolving the old one, and
    /// [`MvMemory::record`] has them validated again if it changed.
    pub(crate) fn mark_estimates(&self, txn: TxnIndex) {
        let footprint = self.footprints[txn as usize].lock();
        for (id, _) in footprint.written.iter().filter(|(_, how)| *how == Written::Write) {
            self.entry(*id).update(txn, |versions| versions.insert(txn, Version::Estimate));
        }
    }

    /// Whether every value `txn` last read is still what it would read now, and whether what
    /// it assumed holds.
    pub(crate) fn validate(&self, txn: TxnIndex, storage: &dyn Storage) -> Validity {
        let footprint = self.footprints[txn as usize].lock();
        let reads_stand = footprint.reads.iter().all(|(id, seen, version)| {
            // Nothing about the key changed since the read: it reads the same.
            if self.version(*id) == *version {
                return true;
            }
            let stands = match self.read(*id, txn, storage) {
                Read::Blocked(_) => false,
                Read::Base => match seen {
                    Seen::Base => true,
                    Seen::Value(seen) => same(self.base(*id, storage), seen),
                },
                Read::Value(now) => match seen {
                    Seen::Base => same(&now, self.base(*id, storage)),
                    Seen::Value(seen) => same(&now, seen),
                },
            };
            if !stands {
                self.entry(*id).mark_hot();
            }
            stands
        }) && footprint.listings.iter().all(|(prefix, seen)| {
            // A key whose only write is being redone: not known yet, so not the same.
            self.keys_before(prefix, txn).is_ok_and(|keys| keys == *seen)
        });
        if !reads_stand {
            return Validity::Invalid;
        }
        let mut validity = Validity::Valid;
        for (id, assumption) in &footprint.assumed {
            let holds = match self.read(*id, txn, storage) {
                Read::Blocked(writer) => return Validity::Unproven(Some(writer)),
                Read::Base => assumption.holds(self.base(*id, storage).as_deref()),
                Read::Value(value) => assumption.holds(value.as_deref()),
            };
            if !holds {
                validity = Validity::Unproven(None);
            }
        }
        validity
    }

    /// How many entries the block has.
    pub(crate) fn len(&self) -> usize {
        self.entries.iter().map(Arena::len).sum()
    }

    /// The value of every key among entries `ids` that transactions before `end` wrote, as they
    /// left it, added to `out` (nothing may run any more).
    pub(crate) fn writes_before(
        &self,
        ids: impl Iterator<Item = EntryId>,
        end: TxnIndex,
        storage: &dyn Storage,
        out: &mut Vec<KeyWrite>,
    ) {
        for id in ids {
            let entry = self.entry(id);
            let value = entry.final_value(end, storage).unwrap_or_else(|txn| {
                panic!("transaction {txn} is still being re-executed after the block ended")
            });
            // `None`: only later transactions wrote it, or none.
            if let Some(value) = value {
                out.push((entry.key.to_vec(), value));
            }
        }
    }

    /// The workers' own states, given back at the end of the run (see
    /// [`MvMemory::gather`]); hand them back with [`MvMemory::keep_locals`].
    pub(crate) fn take_locals(&mut self) -> Vec<Local> {
        std::mem::take(self.given_back.get_mut())
    }

    /// Keeps `locals` for the next run's workers.
    pub(crate) fn keep_locals(&mut self, mut locals: Vec<Local>) {
        self.spare_locals.get_mut().append(&mut locals);
    }

    /// Gathers into `local` the writes of the entries its worker created, sorted by key, once
    /// the block is done (`end` is its number of transactions): each worker does it for itself
    /// as it stops, at the same time as the others and with those entries mostly still in its
    /// own cache. Every entry was created by one worker: together, the runs cover the block.
    pub(crate) fn gather(&self, local: &mut Local, end: TxnIndex, storage: &dyn Storage) {
        let mut run = Vec::with_capacity(local.created.len());
        self.writes_before(local.created.iter().copied(), end, storage, &mut run);
        run.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        local.gathered = Some(run);
    }

    /// The runs that [`MvMemory::gather`] left in `locals`, if every one of them gathered.
    pub(crate) fn gathered(locals: &mut [Local]) -> Option<Vec<Vec<KeyWrite>>> {
        if locals.iter().any(|local| local.gathered.is_none()) {
            return None;
        }
        Some(locals.iter_mut().filter_map(|local| local.gathered.take()).collect())
    }
}

/// `start` with `first` and then `rest` applied in order. Runs of deltas that merge (see
/// [`Delta::merged`]) are applied as one: the fee recipient's thousand credits of a block decode
/// and encode its value once, not a thousand times.
fn resolve(start: Option<&[u8]>, first: Delta, rest: impl Iterator<Item = Delta>) -> Vec<u8> {
    let mut current: Option<Vec<u8>> = None;
    let mut run = first;
    for delta in rest {
        run = match run.merged(delta) {
            Some(merged) => merged,
            None => {
                current = Some(run.apply(current.as_deref().or(start)));
                delta
            }
        };
    }
    run.apply(current.as_deref().or(start))
}

/// Whether two reads saw the same value (the same allocation, or equal bytes).
pub(crate) fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a[..] == b[..],
        (None, None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::U128;

    struct Empty;

    impl Storage for Empty {
        fn get(&self, _: &[u8]) -> Option<Vec<u8>> {
            None
        }
    }

    fn delta(key: &[u8], amount: u128) -> Writes {
        let mut writes = Writes::default();
        writes.add(key.to_vec(), Delta::add(&U128, amount));
        writes
    }

    /// A `u16` held at most 1,000 (saturating at both ends), for deltas that often saturate.
    static CAPPED: crate::DeltaKind = crate::DeltaKind {
        name: "capped",
        apply: |value, add, sub| {
            let current = value.and_then(|v| <[u8; 2]>::try_from(v).ok()).map_or(0, u16::from_le_bytes);
            let added = u128::from(current).saturating_add(add).min(1_000);
            let value = u16::try_from(added.saturating_sub(sub)).expect("at most 1,000");
            value.to_le_bytes().to_vec()
        },
        independent: false,
    };

    /// A count that additions raise and a level that subtractions lower (both `u64`,
    /// saturating): independent parts, so that any two deltas merge.
    static COUNT_AND_LEVEL: crate::DeltaKind = crate::DeltaKind {
        name: "count and level",
        apply: |value, add, sub| {
            let (count, level) =
                value.and_then(|v| <[u8; 16]>::try_from(v).ok()).map_or((0, u64::MAX), |v| {
                    (
                        u64::from_le_bytes(v[..8].try_into().unwrap()),
                        u64::from_le_bytes(v[8..].try_into().unwrap()),
                    )
                });
            let count = count.saturating_add(u64::try_from(add).unwrap_or(u64::MAX));
            let level = level.saturating_sub(u64::try_from(sub).unwrap_or(u64::MAX));
            [count.to_le_bytes(), level.to_le_bytes()].concat()
        },
        independent: true,
    };

    #[test]
    fn runs_of_deltas_resolve_as_applying_them_one_by_one() {
        let kinds: [&'static crate::DeltaKind; 4] = [&U128, &crate::U64, &CAPPED, &COUNT_AND_LEVEL];
        let amounts = [0, 1, 7, 400, 999, 1_000, u128::from(u64::MAX), u128::MAX - 1, u128::MAX];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |below: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % below as u64) as usize
        };
        for _ in 0..3_000 {
            let kind = kinds[next(kinds.len())];
            let deltas: Vec<(TxnIndex, Delta)> = (0..1 + next(12))
                .map(|txn| {
                    let amount = amounts[next(amounts.len())];
                    let delta = match next(3) {
                        0 => Delta::add(kind, amount),
                        1 => Delta::sub(kind, amount),
                        _ => Delta { add: amount, sub: amounts[next(amounts.len())], kind },
                    };
                    (txn as TxnIndex, delta)
                })
                .collect();
            let start = match next(3) {
                0 => None,
                _ => Some(Delta::add(kind, amounts[next(amounts.len())]).apply(None)),
            };
            let one_by_one =
                deltas.iter().fold(start.clone(), |value, (_, delta)| Some(delta.apply(value.as_deref())));
            let resolved =
                resolve(start.as_deref(), deltas[0].1, deltas[1..].iter().map(|(_, delta)| *delta));
            assert_eq!(Some(resolved), one_by_one, "{start:?} {deltas:?}");
        }
    }

    fn value(read: Read, memory: &MvMemory, id: EntryId) -> Option<Vec<u8>> {
        match read {
            Read::Base => memory.base(id, &Empty).as_deref().map(<[u8]>::to_vec),
            Read::Value(value) => value.as_deref().map(<[u8]>::to_vec),
            Read::Blocked(txn) => panic!("blocked by {txn}"),
        }
    }

    #[test]
    fn a_stale_read_makes_its_key_hot_and_a_new_write_names_its_first_reader() {
        let memory = MvMemory::new(4, 1);
        let mut local = memory.local(0, 4);
        let (k, other) = (memory.id(&mut local, b"k"), memory.id(&mut local, b"other"));
        let read = |id| vec![(id, Seen::Base, memory.version(id))];
        memory.record(&mut local, 2, read(other), Vec::new(), Vec::new(), Writes::default());
        memory.record(&mut local, 3, read(k), Vec::new(), Vec::new(), Writes::default());
        assert_eq!(memory.hot_floor(k, 3), None, "not hot");
        assert_eq!(memory.validate(3, &Empty), Validity::Valid);
        // Transaction 0 writes k, which 3 read before (2 did not).
        let write = || {
            let mut write = Writes::default();
            write.write(b"k".to_vec(), Some(vec![1]));
            write
        };
        let affected = memory.record(&mut local, 0, Vec::new(), Vec::new(), Vec::new(), write());
        assert_eq!(affected, vec![k]);
        assert_eq!(memory.first_affected(&affected, 0, 4, 256), Some(3));
        assert_eq!(memory.first_affected(&affected, 0, 3, 256), None, "3 never started");
        assert_eq!(memory.first_affected(&affected, 0, 4, 1), Some(2), "the first not looked at");
        // The same write again: nothing new.
        assert!(memory.record(&mut local, 0, Vec::new(), Vec::new(), Vec::new(), write()).is_empty());
        // 2's read did not change (its key's version did not move); 3's did, and k is hot.
        assert_eq!(memory.validate(2, &Empty), Validity::Valid);
        assert_eq!(memory.validate(3, &Empty), Validity::Invalid);
        assert_eq!(memory.hot_floor(k, 3), Some(Some(0)));
        assert_eq!(memory.hot_floor(k, 0), Some(None));
        assert_eq!(memory.hot_floor(other, 3), None);
    }

    #[test]
    fn a_delta_redone_by_another_worker_moves_and_counts_once() {
        let memory = MvMemory::new(3, 2);
        let (mut first, mut second) = (memory.local(0, 3), memory.local(1, 3));
        assert_eq!(
            memory.record(&mut first, 0, Vec::new(), Vec::new(), Vec::new(), delta(b"fees", 5)).len(),
            1
        );
        assert_eq!(
            memory.record(&mut first, 1, Vec::new(), Vec::new(), Vec::new(), delta(b"fees", 7)).len(),
            1
        );
        let id = memory.id(&mut second, b"fees");
        assert_eq!(value(memory.read(id, 2, &Empty), &memory, id), Some(12u128.to_le_bytes().to_vec()));
        // Transaction 1 again, on the other worker, with the same delta: it moved, so the later
        // transactions that read the key are validated again; it is counted once.
        assert_eq!(
            memory.record(&mut second, 1, Vec::new(), Vec::new(), Vec::new(), delta(b"fees", 7)),
            vec![id]
        );
        assert_eq!(value(memory.read(id, 2, &Empty), &memory, id), Some(12u128.to_le_bytes().to_vec()));
        // Again on the same worker, unchanged: nothing to validate again.
        assert!(memory
            .record(&mut second, 1, Vec::new(), Vec::new(), Vec::new(), delta(b"fees", 7))
            .is_empty());
        // Changed: validated again.
        assert_eq!(
            memory.record(&mut second, 1, Vec::new(), Vec::new(), Vec::new(), delta(b"fees", 8)),
            vec![id]
        );
        assert_eq!(value(memory.read(id, 1, &Empty), &memory, id), Some(5u128.to_le_bytes().to_vec()));
        let mut writes = Vec::new();
        memory.writes_before(memory.ids(), 3, &Empty, &mut writes);
        assert_eq!(writes, vec![(b"fees".to_vec(), Some(13u128.to_le_bytes().to_vec()))]);
    }

    #[test]
    fn a_write_hides_the_deltas_below_it_and_an_estimate_blocks() {
        let memory = MvMemory::new(4, 1);
        let mut local = memory.local(0, 4);
        memory.record(&mut local, 0, Vec::new(), Vec::new(), Vec::new(), delta(b"k", 5));
        let mut write = Writes::default();
        write.write(b"k".to_vec(), Some(100u128.to_le_bytes().to_vec()));
        memory.record(&mut local, 1, Vec::new(), Vec::new(), Vec::new(), write);
        memory.record(&mut local, 2, Vec::new(), Vec::new(), Vec::new(), delta(b"k", 1));
        let id = memory.id(&mut local, b"k");
        assert!(matches!(memory.read(id, 0, &Empty), Read::Base));
        assert_eq!(value(memory.read(id, 3, &Empty), &memory, id), Some(101u128.to_le_bytes().to_vec()));
        memory.mark_estimates(1);
        assert!(matches!(memory.read(id, 3, &Empty), Read::Blocked(1)));
        // Transaction 0's delta is below the estimate: still readable.
        assert_eq!(value(memory.read(id, 1, &Empty), &memory, id), Some(5u128.to_le_bytes().to_vec()));
    }
}
