//! The collaborative scheduler of Block-STM (Gelashvili et al., 2022): worker threads take
//! execution and validation tasks from two shared indices, lowest transaction first.
//!
//! - `execution_index`: the next transaction to execute (or re-execute after an abort).
//! - `validation_index`: the next transaction whose reads to validate. A transaction that wrote
//!   a key its previous execution did not write sends it back to itself, since every later
//!   transaction may have missed that write.
//! - A transaction that reads a key another one is re-executing waits, as a dependent of that
//!   transaction, and is scheduled again once it has executed.
//! - The block is done when both indices are past the end, no task is running, and no index
//!   went back while that was checked.
//!
//! Status of a transaction: `ReadyToExecute(i) → Executing(i) → Executed(i) → Aborting(i) →
//! ReadyToExecute(i + 1)`, where `i` is its incarnation; an execution that meets a dependency goes
//! from `Executing(i)` to `Aborting(i)` directly.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use crate::padded::Padded;
use crate::{Incarnation, TxnIndex};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Status {
    ReadyToExecute,
    Executing,
    Executed,
    Aborting,
}

struct TxnState {
    incarnation: Incarnation,
    status: Status,
    /// A later transaction's validation was deferred until this one executes: when it does,
    /// every later transaction is validated again (see [`Scheduler::defer_validation`]).
    revalidate_on_finish: bool,
}

/// Work for a worker thread.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Task {
    /// Execute this incarnation of the transaction.
    Execute(TxnIndex, Incarnation),
    /// Validate the reads of this incarnation.
    Validate(TxnIndex, Incarnation),
}

///
/// Each shared index and each transaction's slot is on cache lines of its own (see
/// [`crate::padded`]): both workers change them at every task.
pub(crate) struct Scheduler {
    txns: usize,
    execution_index: Padded<AtomicUsize>,
    validation_index: Padded<AtomicUsize>,
    /// Bumped whenever an index goes back, so that `check_done` sees concurrent decreases.
    decreases: Padded<AtomicUsize>,
    /// Tasks handed out and not finished.
    active: Padded<AtomicUsize>,
    /// One past the highest transaction that started to execute.
    started: Padded<AtomicUsize>,
    done: Padded<AtomicBool>,
    slots: Box<[Padded<Slot>]>,
}

/// A transaction's state, and the transactions waiting for it to finish executing.
struct Slot {
    state: Mutex<TxnState>,
    dependents: Mutex<Vec<TxnIndex>>,
}

impl Scheduler {
    pub(crate) fn new(txns: usize) -> Self {
        Self {
            txns,
            execution_index: Padded(AtomicUsize::new(0)),
            validation_index: Padded(AtomicUsize::new(0)),
            decreases: Padded(AtomicUsize::new(0)),
            active: Padded(AtomicUsize::new(0)),
            started: Padded(AtomicUsize::new(0)),
            done: Padded(AtomicBool::new(txns == 0)),
            slots: (0..txns)
                .map(|_| {
                    Padded(Slot {
                        state: Mutex::new(TxnState {
                            incarnation: 0,
                            status: Status::ReadyToExecute,
                            revalidate_on_finish: false,
                        }),
                        dependents: Mutex::new(Vec::new()),
                    })
                })
                .collect(),
        }
    }

    /// One past the highest transaction that started to execute: those after it have no
    /// recorded execution.
    pub(crate) fn started(&self) -> usize {
        self.started.load(SeqCst)
    }

    /// Whether `txn`'s last execution finished and was not aborted.
    pub(crate) fn is_executed(&self, txn: TxnIndex) -> bool {
        self.slots[txn as usize].state.lock().status == Status::Executed
    }

    /// Whether a transaction before `txn` has not executed yet (or is being executed again).
    pub(crate) fn pending_before(&self, txn: TxnIndex) -> bool {
        (0..txn).rev().any(|earlier| !self.is_executed(earlier))
    }

    /// Waits while another worker executes `txn`, at most `limit`: whether it has executed then
    /// (false when it was not being executed, or its execution met a dependency, or is still
    /// running). `oversubscribed`: there are more workers than cores, so the one awaited may be
    /// waiting for this core: the wait yields it now and then (with a core per worker, yielding
    /// only costs: a system call every few microseconds).
    pub(crate) fn await_execution(&self, txn: TxnIndex, limit: Duration, oversubscribed: bool) -> bool {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            match self.slots[txn as usize].state.lock().status {
                Status::Executed => return true,
                Status::Executing => {}
                Status::ReadyToExecute | Status::Aborting => return false,
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) {
                if start.elapsed() > limit {
                    return false;
                }
                if oversubscribed {
                    std::thread::yield_now();
                }
            }
            std::hint::spin_loop();
        }
    }

    /// The closest transaction after `floor` (from the start with `None`) and before `txn`, at
    /// most `window` back, that has not executed yet (or is being executed again).
    pub(crate) fn nearest_pending(
        &self,
        floor: Option<TxnIndex>,
        txn: TxnIndex,
        window: TxnIndex,
    ) -> Option<TxnIndex> {
        let low = floor.map_or(0, |floor| floor + 1).max(txn.saturating_sub(window));
        (low..txn).rev().find(|&earlier| !self.is_executed(earlier))
    }

    /// Defers the validation of `txn` until the closest transaction before it that has not
    /// executed yet has (see [`Scheduler::defer_until`]). Returns false when all of them have
    /// executed: nothing to wait for, the validation stands. For a condition that the
    /// transactions before `txn` are still making true (its sender's earlier transactions,
    /// executed after it), failing the validation would only run `txn` again too early.
    pub(crate) fn defer_validation(&self, txn: TxnIndex) -> bool {
        (0..txn).rev().any(|earlier| self.defer_until(earlier))
    }

    /// Defers a validation until `earlier` has executed: once it has, every transaction after
    /// it is validated again, as when an execution writes a key its previous one did not.
    /// Returns false when `earlier` has executed already.
    pub(crate) fn defer_until(&self, earlier: TxnIndex) -> bool {
        let mut state = self.slots[earlier as usize].state.lock();
        if state.status == Status::Executed {
            return false;
        }
        state.revalidate_on_finish = true;
        true
    }

    /// Whether every transaction is executed and validated.
    pub(crate) fn done(&self) -> bool {
        self.done.load(SeqCst)
    }

    fn check_done(&self) {
        let observed = self.decreases.load(SeqCst);
        let lowest = self.execution_index.load(SeqCst).min(self.validation_index.load(SeqCst));
        if lowest >= self.txns && self.active.load(SeqCst) == 0 && observed == self.decreases.load(SeqCst) {
            self.done.store(true, SeqCst);
        }
    }

    /// The next task, or `None` when there is none right now (the caller retries until
    /// [`Self::done`]).
    pub(crate) fn next_task(&self) -> Option<Task> {
        if self.validation_index.load(SeqCst) < self.execution_index.load(SeqCst) {
            self.next_validation().map(|(txn, inc)| Task::Validate(txn, inc))
        } else {
            self.next_execution().map(|(txn, inc)| Task::Execute(txn, inc))
        }
    }

    fn next_validation(&self) -> Option<(TxnIndex, Incarnation)> {
        if self.validation_index.load(SeqCst) >= self.txns {
            self.check_done();
            return None;
        }
        self.active.fetch_add(1, SeqCst);
        let index = self.validation_index.fetch_add(1, SeqCst);
        if index < self.txns {
            let state = self.slots[index].state.lock();
            if state.status == Status::Executed {
                return Some((index as TxnIndex, state.incarnation));
            }
        }
        self.active.fetch_sub(1, SeqCst);
        None
    }

    fn next_execution(&self) -> Option<(TxnIndex, Incarnation)> {
        if self.execution_index.load(SeqCst) >= self.txns {
            self.check_done();
            return None;
        }
        self.active.fetch_add(1, SeqCst);
        let index = self.execution_index.fetch_add(1, SeqCst);
        let claimed = self.try_incarnate(index);
        if claimed.is_none() {
            self.active.fetch_sub(1, SeqCst);
        }
        claimed
    }

    /// Claims `index` for execution if it is ready.
    fn try_incarnate(&self, index: usize) -> Option<(TxnIndex, Incarnation)> {
        let mut state = self.slots.get(index)?.state.lock();
        if state.status != Status::ReadyToExecute {
            return None;
        }
        state.status = Status::Executing;
        if self.started.load(SeqCst) <= index {
            self.started.fetch_max(index + 1, SeqCst);
        }
        Some((index as TxnIndex, state.incarnation))
    }

    fn decrease_execution_index(&self, target: usize) {
        self.execution_index.fetch_min(target, SeqCst);
        self.decreases.fetch_add(1, SeqCst);
    }

    fn decrease_validation_index(&self, target: usize) {
        self.validation_index.fetch_min(target, SeqCst);
        self.decreases.fetch_add(1, SeqCst);
    }

    /// The running execution of `txn` read a key that `blocking` is re-executing: `txn` waits
    /// for `blocking`. Returns false when `blocking` has executed meanwhile (then `txn` simply
    /// runs again). On true, the execution task has ended.
    pub(crate) fn add_dependency(&self, txn: TxnIndex, blocking: TxnIndex) -> bool {
        {
            let mut dependents = self.slots[blocking as usize].dependents.lock();
            if self.slots[blocking as usize].state.lock().status == Status::Executed {
                return false;
            }
            let mut state = self.slots[txn as usize].state.lock();
            assert_eq!(state.status, Status::Executing, "only a running execution meets a dependency");
            state.status = Status::Aborting;
            dependents.push(txn);
        }
        self.active.fetch_sub(1, SeqCst);
        true
    }

    fn set_ready(&self, txn: TxnIndex) {
        let mut state = self.slots[txn as usize].state.lock();
        assert_eq!(state.status, Status::Aborting, "only an aborted incarnation is re-executed");
        state.incarnation += 1;
        state.status = Status::ReadyToExecute;
    }

    /// An execution of `txn` finished; `revalidate_from` is the first later transaction that
    /// must be validated again (with every one after it), if any: one that may have read a key
    /// before this execution wrote it (they all are when a later validation was deferred until
    /// this execution). Returns the follow-up task for the same worker, if any.
    pub(crate) fn finish_execution(
        &self,
        txn: TxnIndex,
        incarnation: Incarnation,
        revalidate_from: Option<TxnIndex>,
    ) -> Option<Task> {
        let revalidate_from = {
            let mut state = self.slots[txn as usize].state.lock();
            assert_eq!((state.status, state.incarnation), (Status::Executing, incarnation));
            state.status = Status::Executed;
            if std::mem::take(&mut state.revalidate_on_finish) {
                Some(txn + 1)
            } else {
                revalidate_from
            }
        };
        let dependents = std::mem::take(&mut *self.slots[txn as usize].dependents.lock());
        if let Some(&lowest) = dependents.iter().min() {
            for &dependent in &dependents {
                self.set_ready(dependent);
            }
            self.decrease_execution_index(lowest as usize);
        }
        if self.validation_index.load(SeqCst) > txn as usize {
            if let Some(from) = revalidate_from {
                self.decrease_validation_index(from as usize);
            }
            return Some(Task::Validate(txn, incarnation));
        }
        self.active.fetch_sub(1, SeqCst);
        None
    }

    /// Validation of `txn`'s `incarnation` failed: marks it aborting unless it already was (or
    /// a later incarnation runs). Returns whether this call aborted it.
    pub(crate) fn try_validation_abort(&self, txn: TxnIndex, incarnation: Incarnation) -> bool {
        let mut state = self.slots[txn as usize].state.lock();
        if state.incarnation == incarnation && state.status == Status::Executed {
            state.status = Status::Aborting;
            return true;
        }
        false
    }

    /// A validation of `txn` finished (`aborted`: it failed and aborted the transaction).
    /// Returns the follow-up task for the same worker, if any.
    pub(crate) fn finish_validation(&self, txn: TxnIndex, aborted: bool) -> Option<Task> {
        if aborted {
            self.set_ready(txn);
            self.decrease_validation_index(txn as usize + 1);
            if self.execution_index.load(SeqCst) > txn as usize {
                if let Some((txn, incarnation)) = self.try_incarnate(txn as usize) {
                    return Some(Task::Execute(txn, incarnation));
                }
            }
        }
        self.active.fetch_sub(1, SeqCst);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_thread_executes_then_validates_in_order() {
        let s = Scheduler::new(2);
        assert_eq!(s.next_task(), Some(Task::Execute(0, 0)));
        assert_eq!(s.finish_execution(0, 0, Some(1)), None);
        assert_eq!(s.next_task(), Some(Task::Validate(0, 0)));
        assert_eq!(s.finish_validation(0, false), None);
        assert_eq!(s.next_task(), Some(Task::Execute(1, 0)));
        assert_eq!(s.finish_execution(1, 0, Some(2)), None);
        assert_eq!(s.next_task(), Some(Task::Validate(1, 0)));
        assert_eq!(s.finish_validation(1, false), None);
        assert!(!s.done());
        assert_eq!(s.next_task(), None);
        assert!(s.done());
    }

    #[test]
    fn an_abort_re_executes_and_revalidates_later_transactions() {
        let s = Scheduler::new(3);
        assert_eq!(s.next_task(), Some(Task::Execute(0, 0)));
        // A second worker: the validation index passes 0, which validates itself when done.
        assert_eq!(s.next_task(), None);
        assert_eq!(s.next_task(), Some(Task::Execute(1, 0)));
        assert_eq!(s.finish_execution(1, 0, Some(2)), None);
        // Validation is past 0: it validates itself next.
        assert_eq!(s.finish_execution(0, 0, Some(1)), Some(Task::Validate(0, 0)));
        assert_eq!(s.next_task(), Some(Task::Validate(1, 0)));
        assert_eq!(s.finish_validation(0, false), None);
        assert!(s.try_validation_abort(1, 0));
        assert!(!s.try_validation_abort(1, 0), "aborted once");
        // The worker goes straight on to re-execute it.
        assert_eq!(s.finish_validation(1, true), Some(Task::Execute(1, 1)));
        // Same keys as before: it validates itself next.
        assert_eq!(s.finish_execution(1, 1, None), Some(Task::Validate(1, 1)));
        assert_eq!(s.finish_validation(1, false), None);
        assert_eq!(s.next_task(), Some(Task::Execute(2, 0)));
        // A new key: validation goes back to it.
        assert_eq!(s.finish_execution(2, 0, Some(3)), None);
        assert_eq!(s.next_task(), Some(Task::Validate(2, 0)));
        assert_eq!(s.finish_validation(2, false), None);
        assert_eq!(s.next_task(), None);
        assert!(s.done());
    }

    #[test]
    fn a_dependency_waits_for_its_blocker() {
        let s = Scheduler::new(2);
        assert_eq!(s.next_task(), Some(Task::Execute(0, 0)));
        assert_eq!(s.next_task(), None);
        assert_eq!(s.next_task(), Some(Task::Execute(1, 0)));
        assert!(s.add_dependency(1, 0));
        assert_eq!(s.next_task(), None);
        assert_eq!(s.next_task(), None, "nothing to do until 0 has executed");
        assert!(!s.done());
        assert_eq!(s.finish_execution(0, 0, Some(1)), Some(Task::Validate(0, 0)));
        assert_eq!(s.finish_validation(0, false), None);
        assert_eq!(s.next_task(), Some(Task::Execute(1, 1)));
        assert!(!s.add_dependency(1, 0), "0 has executed: no waiting");
        assert_eq!(s.finish_execution(1, 1, Some(2)), None);
        assert_eq!(s.next_task(), Some(Task::Validate(1, 1)));
        assert_eq!(s.finish_validation(1, false), None);
        assert_eq!(s.next_task(), None);
        assert!(s.done());
    }

    #[test]
    fn a_deferred_validation_is_done_again_once_the_transaction_before_has_executed() {
        let s = Scheduler::new(3);
        assert_eq!(s.next_task(), Some(Task::Execute(0, 0)));
        assert_eq!(s.next_task(), None);
        assert_eq!(s.next_task(), Some(Task::Execute(1, 0)));
        assert!(!s.pending_before(0));
        assert!(s.pending_before(1), "0 is still executing");
        assert_eq!(s.finish_execution(1, 0, Some(2)), None);
        assert_eq!(s.next_task(), Some(Task::Validate(1, 0)));
        assert!(s.defer_validation(1));
        assert_eq!(s.finish_validation(1, false), None);
        assert_eq!(s.next_task(), Some(Task::Execute(2, 0)));
        assert_eq!(s.finish_execution(2, 0, None), None);
        assert_eq!(s.next_task(), Some(Task::Validate(2, 0)));
        assert_eq!(s.finish_validation(2, false), None);
        // 0 writes nothing new, yet 1 and 2 are validated again after it.
        assert_eq!(s.finish_execution(0, 0, None), Some(Task::Validate(0, 0)));
        assert_eq!(s.next_task(), Some(Task::Validate(1, 0)));
        assert_eq!(s.next_task(), Some(Task::Validate(2, 0)));
        assert!(!s.defer_validation(2), "everything before 2 has executed");
        for txn in 0..3 {
            assert_eq!(s.finish_validation(txn, false), None);
        }
        assert_eq!(s.next_task(), None);
        assert!(s.done());
        // Without a deferral, an execution that writes nothing new validates itself alone.
        let s = Scheduler::new(2);
        assert_eq!(s.next_task(), Some(Task::Execute(0, 0)));
        assert_eq!(s.next_task(), None);
        assert_eq!(s.next_task(), Some(Task::Execute(1, 0)));
        assert_eq!(s.finish_execution(1, 0, Some(2)), None);
        assert_eq!(s.next_task(), Some(Task::Validate(1, 0)));
        assert_eq!(s.finish_validation(1, false), None);
        assert_eq!(s.finish_execution(0, 0, None), Some(Task::Validate(0, 0)));
    }

    #[test]
    fn a_hot_read_finds_the_closest_transaction_yet_to_execute() {
        let s = Scheduler::new(6);
        for txn in 0..4 {
            // (A validation task is looked for first, and there is none.)
            assert_eq!(s.next_task().or_else(|| s.next_task()), Some(Task::Execute(txn, 0)));
            assert_eq!(s.started(), txn as usize + 1);
        }
        // (Validation passed them while they executed: each validates itself.)
        assert_eq!(s.finish_execution(1, 0, None), Some(Task::Validate(1, 0)));
        assert_eq!(s.finish_execution(2, 0, None), Some(Task::Validate(2, 0)));
        // 3 and 0 are executing: from 4, the closest after the key's last writer.
        assert_eq!(s.nearest_pending(None, 4, 32), Some(3));
        assert_eq!(s.nearest_pending(Some(0), 3, 32), None, "1 and 2 have executed");
        assert_eq!(s.nearest_pending(None, 3, 32), Some(0));
        assert_eq!(s.nearest_pending(None, 3, 2), None, "0 is out of the window");
        // Waiting for an execution: done, not started, or still running past the limit.
        assert!(s.await_execution(1, Duration::ZERO, false));
        assert!(!s.await_execution(5, Duration::from_secs(60), false));
        assert!(!s.await_execution(3, Duration::ZERO, true));
    }

    #[test]
    fn an_empty_block_is_done_at_once() {
        let s = Scheduler::new(0);
        assert!(s.done());
        assert_eq!(s.next_task(), None);
    }
}
