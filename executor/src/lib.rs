//! MPEF: optimistic parallel execution of a block's transactions, with exactly the result of
//! executing them one after the other.
//!
//! A block's transactions run on a fixed pool of worker threads as in Block-STM: each executes
//! against a [`View`] of the block's state as the transactions before it left it, taken from a
//! multi-version memory; its reads are then validated, and a transaction whose reads changed is
//! executed again. These additions matter in practice:
//!
//! - **Commutative deltas** ([`Delta`]): a transaction may add to a key without reading it (fees
//!   to the proposer and the Holders Mining pool, value credits, the total issuance). Deltas do
//!   not conflict with each other; a transaction that reads such a key sees every earlier delta
//!   applied in order. The fee recipient is therefore not a serialization point.
//! - **Assumptions** ([`View::assume`]): a transaction may assume a condition on a key's value
//!   instead of reading it (a payment's sender has its nonce and enough balance) and write its
//!   change as a delta. Validation checks the condition on the value the transaction would
//!   read; while transactions before it have yet to execute, a condition that does not hold
//!   yet is checked again once they have, instead of failing. A sender's run of payments in
//!   one block then runs in parallel instead of as one chain.
//! - **Hot keys and targets**: a key whose read turned out stale (a contract's counter that
//!   every call changes) is hot for the rest of the block. A read of a hot key that a
//!   transaction of the reader's [`Transactions::target`] (the contract it calls) wrote last
//!   first waits for the closest transaction of that target yet to execute: while another
//!   worker runs it, by spinning briefly (leaving would unwind the execution, which costs about
//!   as much as a payment); else by leaving and waiting as its dependent. A re-execution that
//!   read hot keys waits before it starts. And once a transaction of a target is found in
//!   conflict, the next one of that target waits for it before its first execution, so that a
//!   run of calls to one contract goes in order on one worker at a time while the others run
//!   the rest of the block.
//! - **Cheap validation**: every key has a version that each change of its writes or deltas
//!   bumps; a read whose key's version has not moved still holds, with no value resolved or
//!   compared. A transaction whose execution writes a key for the first time has validated
//!   again only the later transactions from the first one that read that key (not all of
//!   them, as Block-STM does), so a transaction that waited and runs late does not have the
//!   rest of the block validated again.
//! - **Exact keys**: the memory is keyed by the state keys themselves, hashed with a random
//!   per-process key, never by a truncated hash.
//! - **Adaptive fallback**: small blocks run serially, and so does the rest of a block whose
//!   abort rate climbs past a limit: the workers stop, the longest prefix of transactions whose
//!   reads still validate is kept, and the others run serially on top of it (no work is thrown
//!   away but the aborted executions). After such a block the next few blocks start serially,
//!   then parallel execution is tried again.
//!
//! Outputs (each transaction's output and the block's writes) come from the final execution of
//! each transaction only, in transaction order, so they are identical for any number of threads
//! and any interleaving, and identical to [`execute_serial`]'s.
//!
//! Contract for [`Transactions::execute`]: a pure function of what it reads through the view
//! (no other shared mutable state, no clock, no randomness), since it may run several times and
//! concurrently; and it must not catch panics, which is how a read that has to wait for another
//! transaction leaves it. An execution may see a state that serial execution never gives (one
//! key from before an earlier transaction's writes, another from after): a panic there is not
//! re-raised but stops the parallel run, whose validated prefix is kept and whose rest executes
//! serially, so that the caller sees a transaction's panic exactly when serial execution panics.

#![warn(missing_docs)]

mod affinity;
mod arena;
mod assume;
mod delta;
mod merge;
mod mvmemory;
mod padded;
mod parallel;
mod scheduler;
mod serial;
mod table;
mod view;

use hyperion_state::ChangeSet;
use parking_lot::Mutex;
use rayon::prelude::*;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed};
use std::sync::Arc;

pub use assume::{Assumption, Condition};
pub use delta::{Delta, DeltaKind, U128, U64};
pub use view::{View, Writes};

use mvmemory::MvMemory;
use parallel::{GiveUp, Run};

/// A transaction's position in its block.
pub type TxnIndex = u32;
/// How many times a transaction was executed before (0 for its first execution).
pub type Incarnation = u32;

/// The state before the block's transactions.
pub trait Storage: Sync {
    /// The value of `key`, `None` when absent.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
}

impl Storage for hyperion_state::Snapshot {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        hyperion_state::StateRead::get(self.as_ref(), key)
    }
}

/// A block's transactions, as the executor runs them.
pub trait Transactions: Sync {
    /// What one execution produces (a receipt, say).
    type Output: Send;
    /// How many there are.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Executes transaction `txn` against `view` (see the crate documentation for the rules).
    fn execute(&self, txn: usize, view: &mut dyn View) -> Self::Output;
    /// An earlier transaction that `txn` surely depends on, such as the previous transaction of
    /// the same sender (which sets the nonce `txn` needs): in parallel execution `txn` first
    /// runs once that one has executed, instead of running early on a state that is sure to be
    /// stale. Only a hint: results never depend on it.
    fn depends_on(&self, txn: usize) -> Option<usize> {
        let _ = txn;
        None
    }
    /// What `txn` targets, as a label (the address of the contract it calls, hashed): a weaker
    /// hint than [`Transactions::depends_on`]. Transactions with one target are not taken to
    /// conflict; but once they turn out to (each reads what the one before wrote, as calls
    /// that all change one counter of a contract do), a transaction first waits for the
    /// previous one of its target instead of running early, and again. A transaction without
    /// a target waits for the one just before it after conflicts among the few before.
    fn target(&self, txn: usize) -> Option<u64> {
        let _ = txn;
        None
    }
}

/// How a block was executed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// In parallel on this many threads.
    Parallel(usize),
    /// Serially, for this reason.
    Serial(SerialReason),
}

/// Why a block ran serially (at least in part).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SerialReason {
    /// The executor has one thread.
    OneThread,
    /// Fewer transactions than [`Config::min_parallel_txns`].
    SmallBlock,
    /// The parallel attempt aborted too often: the transactions it had settled were kept, the
    /// rest ran serially.
    Conflicts,
    /// A recent block had too many conflicts; parallel execution resumes after a few blocks.
    RecentConflicts,
    /// Most of the block is one chain of transactions that surely depend on each other (see
    /// [`Transactions::depends_on`]; a mining pool paying out from one account, say): threads
    /// cannot shorten it.
    DependencyChain,
}

/// What it took to execute a block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Stats {
    /// Parallel or serial.
    pub mode: Mode,
    /// Executions, including re-executions (and those of a dropped parallel attempt).
    pub executions: u64,
    /// Validations.
    pub validations: u64,
    /// Executions aborted, by a failed validation or a dependency.
    pub aborts: u64,
    /// First executions held back until the transaction they surely depend on had executed
    /// (see [`Transactions::depends_on`]), or the one just before them, after conflicts among
    /// the transactions just before.
    pub waits: u64,
}

impl Default for Stats {
    /// Nothing executed (as for a block without transactions).
    fn default() -> Self {
        Self {
            mode: Mode::Serial(SerialReason::SmallBlock),
            executions: 0,
            validations: 0,
            aborts: 0,
            waits: 0,
        }
    }
}

/// A block's execution.
#[derive(Debug)]
pub struct BlockOutput<O> {
    /// Each transaction's output, in order.
    pub outputs: Vec<O>,
    /// Every key the transactions wrote, with its final value.
    pub changes: ChangeSet,
    /// How it went.
    pub stats: Stats,
}

/// Executor settings.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Config {
    /// Worker threads; 1 executes everything serially.
    pub threads: usize,
    /// Blocks with fewer transactions run serially.
    pub min_parallel_txns: usize,
    /// A parallel attempt gives up once more than this many of every 100 executions aborted
    /// (checked after [`Config::min_executions_before_giving_up`] executions).
    pub max_aborts_per_100: u64,
    /// Executions before the abort rate is judged.
    pub min_executions_before_giving_up: u64,
    /// Blocks that run serially after one gave up (doubling while attempts keep giving up).
    pub serial_blocks_after_conflicts: u32,
    /// A block runs serially when its longest chain of sure dependencies holds more than this
    /// many of every 100 transactions: parallel execution cannot beat running that chain one
    /// transaction after the other, and would only add its own costs.
    pub max_chain_per_100: usize,
    /// Run every block with the parallel algorithm, whatever its size, conflicts and the number
    /// of threads (even one), never falling back: for tests of the algorithm itself.
    pub force_parallel: bool,
}

impl Config {
    /// Defaults for `threads` worker threads.
    pub fn with_threads(threads: usize) -> Self {
        Self {
            threads: threads.max(1),
            min_parallel_txns: 8,
            max_aborts_per_100: 25,
            min_executions_before_giving_up: 16,
            serial_blocks_after_conflicts: 2,
            max_chain_per_100: 75,
            force_parallel: false,
        }
    }
}

/// Errors of the executor.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The worker threads could not be started.
    #[error("cannot start {threads} execution threads: {message}")]
    Threads {
        /// How many were asked for.
        threads: usize,
        /// What the system said.
        message: String,
    },
}

/// This crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Executes blocks, in parallel on its pool of worker threads when that pays.
pub struct Executor {
    config: Config,
    pool: Option<rayon::ThreadPool>,
    /// The multi-version memory of the last parallel block, emptied in the background and kept
    /// for the next one with its allocations.
    spare: Arc<Mutex<Option<MvMemory>>>,
    /// Work left to the threads after a block (emptying its memory), not finished yet.
    background: Arc<AtomicUsize>,
    /// Blocks left to run serially after conflicts, and the current length of that penalty.
    serial_blocks_left: AtomicU32,
    penalty: AtomicU32,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor").field("config", &self.config).finish()
    }
}

impl Executor {
    /// An executor with `config.threads` worker threads (none when it is 1).
    pub fn new(config: Config) -> Result<Self> {
        let config = Config { threads: config.threads.max(1), ..config };
        let pool = if config.threads > 1 || config.force_parallel {
            let cores = affinity::cores_for(config.threads);
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(config.threads)
                .thread_name(|i| format!("mpef-{i}"))
                .start_handler(move |i| {
                    if let Some(&core) = cores.get(i) {
                        affinity::pin_current_thread(core);
                    }
                })
                .build()
                .map_err(|e| Error::Threads { threads: config.threads, message: e.to_string() })?;
            Some(pool)
        } else {
            None
        };
        Ok(Self {
            config,
            pool,
            spare: Arc::default(),
            background: Arc::default(),
            serial_blocks_left: AtomicU32::new(0),
            penalty: AtomicU32::new(0),
        })
    }

    /// An executor that runs every block serially.
    pub fn serial() -> Self {
        Self::new(Config::with_threads(1)).expect("no threads to start")
    }

    /// Its settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Wakes the worker threads (idle, they sleep), so that they are running when a block's
    /// work reaches them: on a virtual machine a sleeping thread takes from 20 to over 100
    /// microseconds to start, a few percent of a small block. Call it before the work that
    /// precedes a block's execution; a thread that finds nothing to do soon sleeps again.
    pub fn wake(&self) {
        if let Some(pool) = &self.pool {
            for _ in 0..self.config.threads {
                pool.spawn(|| ());
            }
        }
    }

    /// Runs `task` once on each worker thread, all at the same time, given the worker's number
    /// (from 0), and returns what each returned, in that order; without worker threads, once on
    /// the calling thread. Work run this way shares the cores as a block's execution does: a
    /// measurement's reference (a block's independent parts executed serially side by side) runs
    /// on the same pinned threads as the executor it is compared with.
    pub fn on_each_worker<R: Send>(&self, task: impl Fn(usize) -> R + Sync) -> Vec<R> {
        match &self.pool {
            Some(pool) => pool.broadcast(|context| task(context.index())),
            None => vec![task(0)],
        }
    }

    /// Waits until the work the executor left to its threads after the last block (emptying
    /// that block's multi-version memory for the next) is done. A node does not need it (that
    /// work runs while the block commits); a measurement does before it times something else,
    /// which would otherwise share the cores with that work.
    pub fn settle(&self) {
        while self.background.load(Acquire) > 0 {
            std::thread::yield_now();
        }
    }

    /// `f` of every index below `n`, in order, computed on the executor's threads in tasks of
    /// at least `min_len` indices when it has several threads and `n` makes two such tasks (on
    /// the caller's thread otherwise): for work on a block's transactions that reads no state,
    /// such as hashing them and checking their signatures before they execute. A panic of `f`
    /// is re-raised here. Called on one of the executor's own threads (from a transaction, or
    /// a hint asked for in the middle of a block), it runs there alone: waiting for tasks, that
    /// thread could take up another of the block's tasks in the middle of `f`.
    pub fn map<R: Send>(&self, n: usize, min_len: usize, f: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
        let min_len = min_len.max(1);
        match &self.pool {
            Some(pool)
                if self.config.threads > 1 && n >= 2 * min_len && pool.current_thread_index().is_none() =>
            {
                pool.install(|| (0..n).into_par_iter().with_min_len(min_len).map(f).collect())
            }
            _ => (0..n).map(f).collect(),
        }
    }

    /// Executes `txs` over `storage`. The result does not depend on the number of threads or
    /// on scheduling; a panic of a transaction in serial execution is re-raised here (see the
    /// crate's contract for panics on speculative states).
    pub fn execute<T: Transactions + ?Sized>(
        &self,
        storage: &dyn Storage,
        txs: &T,
    ) -> BlockOutput<T::Output> {
        let Some(pool) = &self.pool else { return serial(storage, txs, SerialReason::OneThread, 0) };
        let force = self.config.force_parallel;
        if txs.len() < self.config.min_parallel_txns && !force {
            return serial(storage, txs, SerialReason::SmallBlock, 0);
        }
        let left = self.serial_blocks_left.load(Relaxed);
        if left > 0 && !force {
            self.serial_blocks_left.store(left - 1, Relaxed);
            return serial(storage, txs, SerialReason::RecentConflicts, 0);
        }
        if !force && longest_chain(txs) * 100 > txs.len() * self.config.max_chain_per_100 {
            return serial(storage, txs, SerialReason::DependencyChain, 0);
        }
        // All threads start at once while the memory is prepared, instead of each waking the
        // next when it takes its first task. (Not before the block is known to run in parallel:
        // threads woken for nothing spin a while, on the cores a serial block runs on.)
        self.wake();
        let give_up = if force {
            GiveUp { min_executions: u64::MAX, max_aborts_per_100: 100 }
        } else {
            GiveUp {
                min_executions: self.config.min_executions_before_giving_up,
                max_aborts_per_100: self.config.max_aborts_per_100,
            }
        };
        let threads = self.config.threads;
        let memory = self.spare.lock().take().unwrap_or_else(|| MvMemory::new(0, threads));
        let run = Run::new(storage, txs, give_up, threads, memory);
        pool.scope(|scope| {
            for _ in 0..self.config.threads {
                scope.spawn(|_| run.work());
            }
        });
        let parallel::Totals { executions, validations, aborts, waits } = run.totals();
        let (finished, mut memory, scheduler) = run.finish();
        let spare = Arc::clone(&self.spare);
        let pending = Pending::new(&self.background);
        pool.spawn(move || {
            drop(scheduler);
            memory.reset(0, threads);
            spare.lock().get_or_insert(memory);
            drop(pending);
        });
        if finished.complete {
            self.penalty.store(0, Relaxed);
            let stats =
                Stats { mode: Mode::Parallel(self.config.threads), executions, validations, aborts, waits };
            return BlockOutput { outputs: finished.outputs, changes: finished.changes, stats };
        }
        // Too many conflicts: keep the valid prefix, run the rest serially on top of it, and
        // start the next blocks serially.
        let penalty = match self.penalty.load(Relaxed) {
            0 => self.config.serial_blocks_after_conflicts,
            p => p.saturating_mul(2).min(64),
        };
        self.penalty.store(penalty, Relaxed);
        self.serial_blocks_left.store(penalty, Relaxed);
        let mut outputs = finished.outputs;
        let start = outputs.len();
        let (rest, changes) = serial::run(storage, txs, start, finished.changes);
        outputs.extend(rest);
        let executions = executions + (txs.len() - start) as u64;
        let stats =
            Stats { mode: Mode::Serial(SerialReason::Conflicts), executions, validations, aborts, waits };
        BlockOutput { outputs, changes, stats }
    }
}

/// One piece of background work counted in an executor's `background` until it is dropped
/// (done, or unwound).
struct Pending(Arc<AtomicUsize>);

impl Pending {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, AcqRel);
        Self(Arc::clone(count))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, AcqRel);
    }
}

/// The length of the longest chain of [`Transactions::depends_on`] hints.
fn longest_chain<T: Transactions + ?Sized>(txs: &T) -> usize {
    let mut depth = vec![0usize; txs.len()];
    for txn in 0..txs.len() {
        depth[txn] =
            1 + txs.depends_on(txn).filter(|&earlier| earlier < txn).map_or(0, |earlier| depth[earlier]);
    }
    depth.into_iter().max().unwrap_or(0)
}

/// Executes `txs` over `storage` one after the other: the reference result.
pub fn execute_serial<T: Transactions + ?Sized>(storage: &dyn Storage, txs: &T) -> BlockOutput<T::Output> {
    serial(storage, txs, SerialReason::OneThread, 0)
}

fn serial<T: Transactions + ?Sized>(
    storage: &dyn Storage,
    txs: &T,
    reason: SerialReason,
    earlier_executions: u64,
) -> BlockOutput<T::Output> {
    let (outputs, changes) = serial::run(storage, txs, 0, ChangeSet::new());
    let stats = Stats {
        mode: Mode::Serial(reason),
        executions: earlier_executions + txs.len() as u64,
        validations: 0,
        aborts: 0,
        waits: 0,
    };
    BlockOutput { outputs, changes, stats }
}

#[cfg(test)]
mod tests;
