//! Parallel execution: worker threads run the scheduler's tasks over the multi-version memory.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::time::Duration;

use hyperion_state::ChangeSet;

use crate::assume::Assumption;
use crate::delta::Delta;
use crate::mvmemory::{EntryId, KeyWrite, Local, MvMemory, Read, Seen, Validity};
use crate::padded::Padded;
use crate::scheduler::{Scheduler, Task};
use crate::view::{hasher, read_through, View, Writes};
use crate::{Incarnation, Storage, Transactions, TxnIndex};

/// How far back a first execution looks for aborted transactions before deciding to wait for
/// the transaction just before it.
const CONFLICT_LOOKBACK: TxnIndex = 4;

/// How far back a read of a hot key looks for a transaction yet to execute (see
/// [`MvMemory::hot_floor`]).
const HOT_WINDOW: TxnIndex = 32;

/// Transactions after one that wrote new keys whose footprints are searched for a read of them;
/// beyond, all are validated again.
const AFFECTED_LOOKAHEAD: usize = 256;

/// How long a read of a hot key waits for another worker to finish executing the transaction
/// it depends on before it leaves: leaving unwinds the execution, which costs about as much as
/// a simple transaction (measured: 15 to 20 microseconds out of a payment's 6 to 8).
const HOT_SPIN: Duration = Duration::from_micros(50);

/// The payload a view unwinds with when a read meets a transaction being re-executed.
struct Blocked(TxnIndex);

/// The payload a view unwinds with when a read of a hot key finds a transaction before it that
/// has yet to execute and is likely to write that key: the reader waits for it.
struct Pending(TxnIndex);

struct ParallelView<'a> {
    txn: TxnIndex,
    incarnation: Incarnation,
    memory: &'a MvMemory,
    scheduler: &'a Scheduler,
    waits: HotWaits<'a>,
    storage: &'a dyn Storage,
    reads: Reads<'a>,
    /// Prefixes listed, with what the memory gave (before this transaction's own writes).
    listings: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
    /// What the execution assumed of keys it did not read.
    assumed: Vec<(EntryId, Assumption)>,
    writes: Writes,
}

/// What one execution read from the memory, entry by entry (each read once: a transaction sees
/// one value per key, which is what validation checks).
pub(crate) struct Reads<'a> {
    /// The worker's own state (the keys its execution met, the entries it created).
    local: &'a mut Local,
    seen: Vec<(EntryId, Seen, u32)>,
    /// Where each entry is in `seen`, once it holds more than [`SCANNED_READS`] (below that,
    /// `seen` is searched: most transactions read a handful of keys, and building a map for
    /// each execution cost more than the search).
    positions: HashMap<EntryId, usize, ahash::RandomState>,
    /// Whether a key read was hot.
    hot: bool,
}

/// Reads of one execution that are searched one by one before a map is built.
const SCANNED_READS: usize = 16;

impl<'a> Reads<'a> {
    /// No reads yet, by the worker of `local`.
    pub(crate) fn new(local: &'a mut Local) -> Self {
        local.start_execution();
        Self {
            local,
            seen: Vec::with_capacity(SCANNED_READS),
            positions: HashMap::with_hasher(hasher()),
            hot: false,
        }
    }

    /// How many entries were read.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }

    /// The value of `key` for transaction `txn`: the one this execution saw before, if it read
    /// the key already. With `waits`, a read of a hot key first waits for a transaction
    /// between the key's last writer and `txn` that has yet to execute and likely writes it
    /// (see [`HotWaits::pending_writer`]): spinning while another worker executes it, else
    /// unwinding with [`Pending`].
    pub(crate) fn read(
        &mut self,
        memory: &MvMemory,
        storage: &dyn Storage,
        waits: Option<HotWaits<'_>>,
        txn: TxnIndex,
        key: &[u8],
    ) -> Option<Vec<u8>> {
        let id = memory.id_met(self.local, key);
        let copy = |seen: &Seen| match seen {
            Seen::Base => memory.base(id, storage).as_deref().map(<[u8]>::to_vec),
            Seen::Value(value) => value.as_deref().map(<[u8]>::to_vec),
        };
        if let Some(position) = self.position(id) {
            return copy(&self.seen[position].1);
        }
        let (seen, version) = loop {
            // Before the value: a change meanwhile then shows as a change of the version.
            let version = memory.version(id);
            let seen = match memory.read(id, txn, storage) {
                Read::Base => Seen::Base,
                Read::Value(value) => Seen::Value(value),
                // Not a panic: `resume_unwind` skips the panic hook; the worker catches it.
                Read::Blocked(writer) => resume_unwind(Box::new(Blocked(writer))),
            };
            // A hot key, with a transaction after its last writer yet to execute that likely
            // writes it too. While another worker executes it, wait (shorter than leaving,
            // which unwinds the whole execution, and running this one again); else leave and
            // wait as its dependent.
            let Some(waits) = waits else { break (seen, version) };
            let Some(floor) = memory.hot_floor(id, txn) else { break (seen, version) };
            self.hot = true;
            let Some(earlier) = waits.pending_writer(txn, floor) else { break (seen, version) };
            if !waits.scheduler.await_execution(earlier, HOT_SPIN, waits.oversubscribed) {
                resume_unwind(Box::new(Pending(earlier)));
            }
        };
        let value = copy(&seen);
        if !self.positions.is_empty() {
            self.positions.insert(id, self.seen.len());
        }
        self.seen.push((id, seen, version));
        value
    }

    /// Where entry `id` is among the reads, if this execution read it.
    fn position(&mut self, id: EntryId) -> Option<usize> {
        if self.seen.len() <= SCANNED_READS {
            self.seen.iter().position(|(seen, _, _)| *seen == id)
        } else {
            if self.positions.is_empty() {
                self.positions
                    .extend(self.seen.iter().enumerate().map(|(position, (id, _, _))| (*id, position)));
            }
            self.positions.get(&id).copied()
        }
    }
}

impl View for ParallelView<'_> {
    fn read(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        let (reads, memory, storage, txn) = (&mut self.reads, self.memory, self.storage, self.txn);
        let waits = Some(self.waits);
        read_through(&self.writes, key, |key| reads.read(memory, storage, waits, txn, key))
    }

    fn write(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.writes.write(key, value);
    }

    fn add(&mut self, key: Vec<u8>, delta: Delta) {
        self.writes.add(key, delta);
    }

    fn written_keys(&mut self, prefix: &[u8]) -> Vec<Vec<u8>> {
        let before = match self.memory.keys_before(prefix, self.txn) {
            Ok(keys) => keys,
            Err(writer) => resume_unwind(Box::new(Blocked(writer))),
        };
        let mut keys: Vec<Vec<u8>> =
            before.iter().chain(self.writes.keys_with_prefix(prefix)).cloned().collect();
        keys.sort();
        keys.dedup();
        self.listings.push((prefix.to_vec(), before));
        keys
    }

    fn assume(&mut self, key: &[u8], assumption: Assumption) -> bool {
        let id = self.memory.id_met(self.reads.local, key);
        if self.writes.contains(key) || self.reads.position(id).is_some() {
            // Its own writes, or a value it read already: the exact answer.
            return assumption.holds(self.read(key).as_deref());
        }
        // A first execution assumes without looking: the sender's earlier transactions may not
        // have executed yet. Later ones look, so that an assumption that does not hold ends in
        // a read, unless a transaction before it, yet to execute, may still make it hold.
        let holds = self.incarnation == 0
            || match self.memory.read(id, self.txn, self.storage) {
                Read::Blocked(writer) => resume_unwind(Box::new(Blocked(writer))),
                Read::Base => assumption.holds(self.memory.base(id, self.storage).as_deref()),
                Read::Value(value) => assumption.holds(value.as_deref()),
            }
            || self.scheduler.pending_before(self.txn);
        if holds {
            self.assumed.push((id, assumption));
            return true;
        }
        // Not holding: the caller reads the key next. It is read here, as a read (validated),
        // and answered from that value, so that the answer and the caller's read agree. Else an
        // earlier transaction redone in between could make the caller read a value on which
        // the assumption holds after being told that it does not: a path that serial execution,
        // which answers from the value, never takes (an Ethereum transfer's events differ).
        assumption.holds(self.read(key).as_deref())
    }
}

/// Where a transaction stands among those of its target (see [`Transactions::target`]).
#[derive(Clone, Copy)]
enum Target {
    /// It has none.
    None,
    /// It is the first of its target.
    First,
    /// The previous transaction of its target.
    After(TxnIndex),
}

/// The cores this process may use (looked up once: it reads the system's files).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// Each transaction's target, and the previous transaction with it.
fn targets<T: Transactions + ?Sized>(txs: &T) -> Box<[(Option<u64>, Target)]> {
    let mut last: HashMap<u64, TxnIndex, ahash::RandomState> = HashMap::with_hasher(hasher());
    (0..txs.len())
        .map(|txn| {
            let target = txs.target(txn);
            let previous = match target {
                None => Target::None,
                Some(target) => {
                    let txn = TxnIndex::try_from(txn).expect("block sizes fit u32");
                    last.insert(target, txn).map_or(Target::First, Target::After)
                }
            };
            (target, previous)
        })
        .collect()
}

/// What a read of a hot key needs to decide what to wait for.
#[derive(Clone, Copy)]
pub(crate) struct HotWaits<'a> {
    scheduler: &'a Scheduler,
    targets: &'a [(Option<u64>, Target)],
    /// More workers than cores (see [`Scheduler::await_execution`]).
    oversubscribed: bool,
}

impl HotWaits<'_> {
    /// The transaction that `txn`, reading a hot key whose last writer before it is `floor`,
    /// waits for, if any: one after `floor` that has yet to execute and likely writes the key.
    /// For a transaction with a target, the closest such one of its target, and only when the
    /// key's last writer has that target too: calls to one contract that each change its
    /// storage wait one for the other, while a key that another contract's transaction wrote
    /// (a price an oracle set) does not make a contract's callers wait for each other. Without
    /// a target, the closest transaction that has yet to execute.
    fn pending_writer(&self, txn: TxnIndex, floor: Option<TxnIndex>) -> Option<TxnIndex> {
        let (target, previous) = self.targets[txn as usize];
        if target.is_none() {
            return self.scheduler.nearest_pending(floor, txn, HOT_WINDOW);
        }
        let floor = floor?;
        if self.targets[floor as usize].0 != target {
            return None;
        }
        let mut previous = previous;
        for _ in 0..HOT_WINDOW {
            match previous {
                Target::After(earlier) if earlier > floor => {
                    if !self.scheduler.is_executed(earlier) {
                        return Some(earlier);
                    }
                    previous = self.targets[earlier as usize].1;
                }
                _ => return None,
            }
        }
        None
    }
}

/// Counters of one worker of a parallel run, changed by that worker only (see
/// [`Run::totals`] for the run's).
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) executions: AtomicU64,
    pub(crate) validations: AtomicU64,
    pub(crate) aborts: AtomicU64,
    /// First executions held back until the transaction they depend on executed.
    pub(crate) waits: AtomicU64,
}

/// Adds one to a counter that only the calling worker changes (a load and a store, not a
/// locked add).
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Relaxed) + 1, Relaxed);
}

/// The counts of a parallel run: executions, validations, aborts, waits.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) executions: u64,
    pub(crate) validations: u64,
    pub(crate) aborts: u64,
    pub(crate) waits: u64,
}

/// When a run gives up and leaves the block to the serial executor: after `min_executions`
/// executions, once more than `max_aborts_per_100` of every 100 executions were aborted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GiveUp {
    pub(crate) min_executions: u64,
    pub(crate) max_aborts_per_100: u64,
}

/// A transaction's output, once it executed.
type OutputSlot<O> = Padded<Mutex<Option<O>>>;

pub(crate) struct Run<'a, T: Transactions + ?Sized> {
    txs: &'a T,
    storage: &'a dyn Storage,
    memory: MvMemory,
    scheduler: Scheduler,
    /// Each transaction's output, on a cache line of its own (see [`crate::padded`]).
    outputs: Box<[OutputSlot<T::Output>]>,
    /// Each worker's counters, on cache lines of their own: a shared counter would move between
    /// the workers' caches at every task.
    counters: Box<[Padded<Counters>]>,
    give_up: GiveUp,
    stop: AtomicBool,
    /// The number the next worker to start takes.
    next_worker: AtomicUsize,
    /// For each transaction, its target and the previous transaction with it (see
    /// [`Transactions::target`]).
    targets: Box<[(Option<u64>, Target)]>,
    /// More workers than the process has cores.
    oversubscribed: bool,
    /// Transactions found in conflict: aborted, or whose last execution read a hot key (see
    /// [`MvMemory::hot_floor`]), or waiting for the previous contended transaction of their
    /// target.
    contended: Box<[AtomicBool]>,
}

impl<'a, T: Transactions + ?Sized> Run<'a, T> {
    /// A run of `txs` over `storage` by `workers` calls of [`Run::work`], in `memory` (emptied
    /// first: a memory from an earlier run keeps its allocations).
    pub(crate) fn new(
        storage: &'a dyn Storage,
        txs: &'a T,
        give_up: GiveUp,
        workers: usize,
        mut memory: MvMemory,
    ) -> Self {
        let n = txs.len();
        memory.reset(n, workers);
        Self {
            txs,
            storage,
            memory,
            next_worker: AtomicUsize::new(0),
            scheduler: Scheduler::new(n),
            outputs: (0..n).map(|_| Padded(Mutex::new(None))).collect(),
            counters: (0..workers.max(1)).map(|_| Padded::default()).collect(),
            give_up,
            stop: AtomicBool::new(false),
            contended: (0..n).map(|_| AtomicBool::new(false)).collect(),
            targets: targets(txs),
            oversubscribed: workers > cores(),
        }
    }

    /// One worker's loop: tasks until the block is done (or the run stops). Called by as many
    /// workers as the run was made for, at most.
    pub(crate) fn work(&self) {
        let mut task = None;
        let mut idle = 0u32;
        let mut local = self.memory.local(self.next_worker.fetch_add(1, Relaxed), self.txs.len());
        let counters = &self.counters[local.worker()];
        while !self.stop.load(Relaxed) {
            task = match task.take().or_else(|| self.scheduler.next_task()) {
                Some(Task::Execute(txn, incarnation)) => self.execute(&mut local, counters, txn, incarnation),
                Some(Task::Validate(txn, incarnation)) => self.validate(counters, txn, incarnation),
                None if self.scheduler.done() => break,
                None => {
                    idle = idle.wrapping_add(1);
                    if idle.is_multiple_of(32) {
                        std::thread::yield_now();
                    } else {
                        std::hint::spin_loop();
                    }
                    None
                }
            };
        }
        if self.scheduler.done() {
            // Every transaction's last execution is final: this worker's share of the block's
            // writes is gathered now, while the others gather theirs.
            let n = TxnIndex::try_from(self.txs.len()).expect("block sizes fit u32");
            self.memory.gather(&mut local, n, self.storage);
        }
        self.memory.give_back(local);
    }

    /// The run's counts so far (exact once the workers are done).
    pub(crate) fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for counters in self.counters.iter() {
            totals.executions += counters.executions.load(Relaxed);
            totals.validations += counters.validations.load(Relaxed);
            totals.aborts += counters.aborts.load(Relaxed);
            totals.waits += counters.waits.load(Relaxed);
        }
        totals
    }

    /// Counts an abort of the worker of `counters`, and stops the run when too many of its
    /// executions aborted. (Judged at each abort: only an abort raises the rate.)
    fn count_abort(&self, counters: &Counters) {
        bump(&counters.aborts);
        let Totals { executions, aborts, .. } = self.totals();
        if executions >= self.give_up.min_executions
            && aborts * 100 > executions * self.give_up.max_aborts_per_100
        {
            self.stop.store(true, SeqCst);
        }
    }

    /// What a first execution of `txn` waits for: the transaction it surely depends on; else,
    /// when the previous transaction of its target is contended, that one (and `txn` is then
    /// contended too, so that a run of calls to a contract whose storage each changes waits
    /// one for the other instead of each running early); else, for a transaction without a
    /// target, the one before it when one of the few before was contended.
    fn first_wait(&self, txn: TxnIndex) -> Option<TxnIndex> {
        if let Some(earlier) = self.txs.depends_on(txn as usize) {
            return TxnIndex::try_from(earlier).ok();
        }
        match self.targets[txn as usize].1 {
            Target::After(previous) => {
                let contended = self.contended[previous as usize].load(Relaxed);
                if contended {
                    self.contended[txn as usize].store(true, Relaxed);
                }
                contended.then_some(previous)
            }
            Target::First => None,
            Target::None => {
                let mut earlier = txn.saturating_sub(CONFLICT_LOOKBACK)..txn;
                earlier.any(|earlier| self.contended[earlier as usize].load(Relaxed)).then(|| txn - 1)
            }
        }
    }

    /// What a re-execution of `txn` waits for: when its last execution read hot keys, the
    /// closest transaction before it that has yet to execute and may write one (instead of
    /// starting, and leaving at that read).
    fn hot_wait(&self, txn: TxnIndex) -> Option<TxnIndex> {
        let waits = self.waits();
        let floors = self.memory.hot_reads(txn);
        floors.into_iter().filter_map(|floor| waits.pending_writer(txn, floor)).max()
    }

    fn waits(&self) -> HotWaits<'_> {
        HotWaits { scheduler: &self.scheduler, targets: &self.targets, oversubscribed: self.oversubscribed }
    }

    fn execute(
        &self,
        local: &mut Local,
        counters: &Counters,
        txn: TxnIndex,
        incarnation: Incarnation,
    ) -> Option<Task> {
        let earlier = if incarnation == 0 { self.first_wait(txn) } else { self.hot_wait(txn) };
        if let Some(earlier) = earlier.filter(|&earlier| earlier < txn) {
            if self.scheduler.add_dependency(txn, earlier) {
                bump(&counters.waits);
                return None;
            }
        }
        loop {
            bump(&counters.executions);
            let mut view = ParallelView {
                txn,
                incarnation,
                memory: &self.memory,
                scheduler: &self.scheduler,
                waits: self.waits(),
                storage: self.storage,
                reads: Reads::new(&mut *local),
                listings: Vec::new(),
                assumed: Vec::new(),
                writes: Writes::default(),
            };
            match catch_unwind(AssertUnwindSafe(|| self.txs.execute(txn as usize, &mut view))) {
                Ok(output) => {
                    let ParallelView { reads, listings, assumed, writes, .. } = view;
                    // (Stored only when it changes: the flags of neighbouring transactions
                    // share a cache line that both workers would otherwise write at every one.)
                    if self.contended[txn as usize].load(Relaxed) != reads.hot {
                        self.contended[txn as usize].store(reads.hot, Relaxed);
                    }
                    let affected =
                        self.memory.record(reads.local, txn, reads.seen, listings, assumed, writes);
                    *self.outputs[txn as usize].lock() = Some(output);
                    let started = self.scheduler.started();
                    let revalidate_from =
                        self.memory.first_affected(&affected, txn, started, AFFECTED_LOOKAHEAD);
                    return self.scheduler.finish_execution(txn, incarnation, revalidate_from);
                }
                Err(payload) => {
                    let payload = match payload.downcast::<Blocked>() {
                        Ok(blocked) => {
                            self.count_abort(counters);
                            self.contended[txn as usize].store(true, Relaxed);
                            if self.scheduler.add_dependency(txn, blocked.0) {
                                return None;
                            }
                            continue;
                        }
                        Err(payload) => payload,
                    };
                    match payload.downcast::<Pending>() {
                        Ok(pending) => {
                            bump(&counters.waits);
                            self.contended[txn as usize].store(true, Relaxed);
                            if self.scheduler.add_dependency(txn, pending.0) {
                                return None;
                            }
                        }
                        Err(_) => {
                            // An execution may see a state that serial execution never gives
                            // (one key before an earlier transaction's writes, another after),
                            // and a transaction may panic on it. The run stops: the caller keeps
                            // the prefix that validates and executes the rest serially, where a
                            // transaction that panics on its real state panics again.
                            self.stop.store(true, SeqCst);
                            return None;
                        }
                    }
                }
            }
        }
    }

    fn validate(&self, counters: &Counters, txn: TxnIndex, incarnation: Incarnation) -> Option<Task> {
        bump(&counters.validations);
        // Validation resolves deltas and checks assumptions (the value's owner's code) on values
        // that may be speculative: a panic there stops the run as one in an execution does
        // (left to unwind, it would leave the other workers waiting for this task for ever).
        let validity = catch_unwind(AssertUnwindSafe(|| self.memory.validate(txn, self.storage)));
        let Ok(validity) = validity else {
            self.stop.store(true, SeqCst);
            return None;
        };
        let valid = match validity {
            Validity::Valid => true,
            Validity::Invalid => false,
            // Its sender's earlier transactions, say, not all executed yet: validated again
            // once they are, instead of running it again now, still too early. Likewise while
            // a transaction that wrote the key is re-executed: an assumption does not depend on
            // what exactly it writes.
            Validity::Unproven(None) => self.scheduler.defer_validation(txn),
            Validity::Unproven(Some(writer)) => self.scheduler.defer_until(writer),
        };
        let aborted = !valid && self.scheduler.try_validation_abort(txn, incarnation);
        if aborted {
            self.count_abort(counters);
            self.contended[txn as usize].store(true, Relaxed);
            self.memory.mark_estimates(txn);
        }
        self.scheduler.finish_validation(txn, aborted)
    }

    /// What the run produced: everything, or when it gave up (or stopped at a panic), the
    /// longest prefix of transactions whose last executions are still valid: their
    /// results are what serial execution of that prefix gives. The multi-version memory and
    /// the scheduler are returned, for the caller to empty and drop off the block's path.
    pub(crate) fn finish(self) -> (Finished<T::Output>, MvMemory, Scheduler) {
        let n = TxnIndex::try_from(self.txs.len()).expect("block sizes fit u32");
        let done = self.scheduler.done();
        let end = if done {
            n
        } else {
            // The workers have stopped: validate in order, each against the prefix before it.
            (0..n)
                .find(|&txn| {
                    !self.scheduler.is_executed(txn)
                        || self.memory.validate(txn, self.storage) != Validity::Valid
                })
                .unwrap_or(n)
        };
        let outputs = self
            .outputs
            .into_vec()
            .into_iter()
            .take(end as usize)
            .enumerate()
            .map(|(txn, slot)| {
                slot.0.into_inner().unwrap_or_else(|| panic!("transaction {txn} has no output"))
            })
            .collect();
        // The block's writes: sorted runs, one per worker (see `work`), put end to end (each key
        // is in one); the map's construction merges them (merging them here first would compare
        // and move every write once more). When the run gave up, or a worker stopped before the
        // block was done, the valid prefix's writes are gathered here.
        let mut memory = self.memory;
        let mut locals = memory.take_locals();
        let runs = if done { MvMemory::gathered(&mut locals) } else { None };
        let writes: Vec<KeyWrite> = match runs {
            Some(runs) => {
                let mut runs = runs.into_iter();
                let mut writes = runs.next().unwrap_or_default();
                writes.reserve(runs.as_slice().iter().map(Vec::len).sum());
                runs.for_each(|mut run| writes.append(&mut run));
                writes
            }
            None => {
                let mut writes = Vec::new();
                memory.writes_before(memory.ids(), end, self.storage, &mut writes);
                writes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                writes
            }
        };
        memory.keep_locals(locals);
        // In sorted runs, with each key once: the map is built without comparing its way down.
        let changes: ChangeSet = writes.into_iter().collect();
        (Finished { outputs, changes, complete: done }, memory, self.scheduler)
    }
}

/// The result of a parallel run: the outputs of its first `outputs.len()` transactions and their
/// writes; `complete` when that is every transaction.
pub(crate) struct Finished<O> {
    pub(crate) outputs: Vec<O>,
    pub(crate) changes: ChangeSet,
    pub(crate) complete: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DeltaKind;

    /// A delta kind whose owner refuses the value 100 (which serial execution never gives it
    /// below).
    static PICKY: DeltaKind = DeltaKind { name: "picky", apply: picky, independent: false };

    fn picky(value: Option<&[u8]>, add: u128, sub: u128) -> Vec<u8> {
        assert_ne!(value, Some([100].as_slice()), "100 is not a value of this key");
        vec![value.map_or(0, |v| v[0]).wrapping_add(add as u8).wrapping_sub(sub as u8)]
    }

    /// `.0` transactions that do nothing (their memory is filled by hand).
    struct Noops(usize);

    impl Transactions for Noops {
        type Output = ();
        fn len(&self) -> usize {
            self.0
        }
        fn execute(&self, _: usize, _: &mut dyn View) {}
    }

    struct Empty;

    impl Storage for Empty {
        fn get(&self, _: &[u8]) -> Option<Vec<u8>> {
            None
        }
    }

    fn never_give_up() -> GiveUp {
        GiveUp { min_executions: u64::MAX, max_aborts_per_100: 100 }
    }

    /// At least `a` in a little-endian byte.
    static AT_LEAST: crate::Condition =
        crate::Condition { name: "at least", holds: |value, a, _| value.map_or(0, |v| v[0]) as u128 >= a };

    #[test]
    fn a_re_execution_told_that_its_assumption_does_not_hold_has_read_the_value() {
        let run = Run::new(&Empty, &Noops(2), never_give_up(), 1, MvMemory::new(0, 1));
        let mut local = run.memory.local(0, 2);
        // Transaction 0 has executed and left 3 in `k`.
        assert_eq!(run.scheduler.next_task(), Some(Task::Execute(0, 0)));
        let mut writes = Writes::default();
        writes.write(b"k".to_vec(), Some(vec![3]));
        run.memory.record(&mut local, 0, Vec::new(), Vec::new(), Vec::new(), writes);
        run.scheduler.finish_execution(0, 0, None);
        // Transaction 1, executed again, assumes at least 5: it does not hold.
        let mut view = ParallelView {
            txn: 1,
            incarnation: 1,
            memory: &run.memory,
            scheduler: &run.scheduler,
            waits: run.waits(),
            storage: run.storage,
            reads: Reads::new(&mut local),
            listings: Vec::new(),
            assumed: Vec::new(),
            writes: Writes::default(),
        };
        assert!(!view.assume(b"k", Assumption::new(&AT_LEAST, 5, 0)));
        let ParallelView { reads, listings, assumed, writes, .. } = view;
        assert!(assumed.is_empty());
        run.memory.record(reads.local, 1, reads.seen, listings, assumed, writes);
        assert_eq!(run.memory.validate(1, run.storage), Validity::Valid);
        // Transaction 0, redone, leaves 7: the answer no longer stands.
        let mut writes = Writes::default();
        writes.write(b"k".to_vec(), Some(vec![7]));
        run.memory.record(&mut local, 0, Vec::new(), Vec::new(), Vec::new(), writes);
        assert_eq!(run.memory.validate(1, run.storage), Validity::Invalid);
    }

    #[test]
    fn a_panic_in_a_validation_stops_the_run_instead_of_leaving_it_waiting() {
        let run = Run::new(&Empty, &Noops(3), never_give_up(), 1, MvMemory::new(0, 1));
        let mut local = run.memory.local(0, 3);
        // Transaction 0 left 100 in `k` (an execution to be redone), transaction 1 adds to it.
        let mut writes = Writes::default();
        writes.write(b"k".to_vec(), Some(vec![100]));
        run.memory.record(&mut local, 0, Vec::new(), Vec::new(), Vec::new(), writes);
        let mut writes = Writes::default();
        writes.add(b"k".to_vec(), Delta::add(&PICKY, 1));
        run.memory.record(&mut local, 1, Vec::new(), Vec::new(), Vec::new(), writes);
        // Transaction 2 read `k` before both: validating it resolves the delta on 100.
        let k = run.memory.id_met(&mut local, b"k");
        run.memory.record(&mut local, 2, vec![(k, Seen::Base, 0)], Vec::new(), Vec::new(), Writes::default());
        assert_eq!(run.validate(&Counters::default(), 2, 0), None);
        assert!(run.stop.load(SeqCst), "the run stops, for its caller to finish serially");
    }

    #[test]
    fn a_hot_read_waits_for_a_pending_call_of_its_target_after_a_writer_of_that_target() {
        let (a, b) = (Some(1), Some(2));
        let targets = [
            (a, Target::First),
            (b, Target::First),
            (a, Target::After(0)),
            (a, Target::After(2)),
            (None, Target::None),
            (a, Target::After(3)),
        ];
        let scheduler = Scheduler::new(targets.len());
        for txn in 0..targets.len() as TxnIndex {
            assert_eq!(scheduler.next_task().or_else(|| scheduler.next_task()), Some(Task::Execute(txn, 0)));
        }
        scheduler.finish_execution(2, 0, None);
        let waits = HotWaits { scheduler: &scheduler, targets: &targets, oversubscribed: false };
        // 3 is still running: 5 waits for it (not for 4, of no target).
        assert_eq!(waits.pending_writer(5, Some(0)), Some(3));
        // The key's last writer has another target, or there is none: no reason to wait.
        assert_eq!(waits.pending_writer(5, Some(1)), None);
        assert_eq!(waits.pending_writer(5, None), None);
        // Without a target: the closest transaction yet to execute.
        assert_eq!(waits.pending_writer(4, Some(0)), Some(3));
        scheduler.finish_execution(3, 0, None);
        assert_eq!(waits.pending_writer(5, Some(0)), None, "2 and 3 have executed");
        assert_eq!(waits.pending_writer(4, Some(0)), Some(1));
    }
}
