//! Parallel execution against the serial reference, on generated blocks of a small transaction
//! language whose conflict rate goes from none (every transaction on its own keys) to total
//! (every transaction on one key).

use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};
use std::collections::HashMap;

use crate::mvmemory::MvMemory;
use crate::parallel::{GiveUp, Run};
use crate::{
    execute_serial, Assumption, Condition, Config, Delta, DeltaKind, Executor, Mode, SerialReason, Storage,
    Transactions, View, U128,
};

#[derive(Clone, Debug)]
enum Op {
    /// Reads a key into the transaction's accumulator (and its output).
    Read(u8),
    /// Writes the accumulator.
    Write(u8),
    Delete(u8),
    Add(u8, u32),
    Sub(u8, u32),
    /// Reads the second key; writes the first if it is even, else adds 1 to it.
    WriteIfEven(u8, u8),
    /// Reads the second key; writes the first only if it is even (a key that a re-execution
    /// may stop writing, under a group that a `Wipe` may have listed).
    WriteOnlyIfEven(u8, u8),
    /// Reads the second key and adds an amount that depends on it to the first (a delta that
    /// changes when a re-execution reads something else).
    AddRead(u8, u8),
    /// Burns some time, so that executions overlap in many ways.
    Work(u16),
    /// Deletes every key of a group (the keys sharing their first byte after `k`).
    Wipe(u8),
    /// A payment from an account: with the nonce given, and a balance of at least the cost,
    /// one more nonce and the cost taken off; refused otherwise. It assumes the condition
    /// instead of reading the account when it can (see [`View::assume`]).
    Spend(u8, u64, u64),
    /// Reads an account and writes it back with more balance.
    Fund(u8, u64),
}

#[derive(Clone, Debug)]
struct Block {
    txs: Vec<Vec<Op>>,
    base: HashMap<Vec<u8>, Vec<u8>>,
    /// `depends_on` hints: right, wrong or absent, they must not change results.
    hints: Vec<Option<usize>>,
    /// `target` hints: likewise.
    targets: Vec<Option<u64>>,
}

fn key(k: u8) -> Vec<u8> {
    vec![b'k', k >> 4, k & 15]
}

fn group(k: u8) -> Vec<u8> {
    vec![b'k', k >> 4]
}

/// An account's key: its value is a nonce and a balance (`u64`s, little-endian).
fn account(a: u8) -> Vec<u8> {
    vec![b'a', a]
}

fn record(value: Option<&[u8]>) -> (u64, u64) {
    let value = value.and_then(|v| <[u8; 16]>::try_from(v).ok()).unwrap_or_default();
    let half = |range: std::ops::Range<usize>| u64::from_le_bytes(value[range].try_into().expect("8 bytes"));
    (half(0..8), half(8..16))
}

fn encode(nonce: u64, balance: u64) -> Vec<u8> {
    [nonce.to_le_bytes(), balance.to_le_bytes()].concat()
}

/// An account's nonce is `a` and its balance at least `b`.
static SPENDABLE: Condition = Condition {
    name: "spendable",
    holds: |value, nonce, cost| {
        let (n, balance) = record(value);
        u128::from(n) == nonce && u128::from(balance) >= cost
    },
};

/// `add` more nonce, `sub` less balance.
static SPENT: DeltaKind = DeltaKind {
    name: "spent",
    apply: |value, add, sub| {
        let (nonce, balance) = record(value);
        let narrow = |x: u128| u64::try_from(x).unwrap_or(u64::MAX);
        encode(nonce.saturating_add(narrow(add)), balance.saturating_sub(narrow(sub)))
    },
    independent: true,
};

fn number(value: Option<&[u8]>) -> u128 {
    value.and_then(|v| <[u8; 16]>::try_from(v).ok()).map_or(0, u128::from_le_bytes)
}

impl Arbitrary for Block {
    fn arbitrary(g: &mut Gen) -> Self {
        // Keys per block: one (everything conflicts) to many (almost nothing does).
        let keys = *g.choose(&[1u8, 2, 4, 16, 64, 255]).expect("non-empty");
        let pick = |g: &mut Gen| u8::arbitrary(g) % keys;
        let count = usize::arbitrary(g) % 48;
        // Payments from one to a few accounts: mostly with the right nonces, now and then not.
        let accounts = *g.choose(&[1u8, 2, 8]).expect("non-empty");
        let mut nonces = [0u64; 8];
        let mut spend = |g: &mut Gen| {
            let from = u8::arbitrary(g) % accounts;
            let nonce = &mut nonces[usize::from(from)];
            let wrong = u8::arbitrary(g) % 8 == 0;
            let used = if wrong { u64::arbitrary(g) % 4 } else { *nonce };
            *nonce += u64::from(!wrong);
            Op::Spend(from, used, u64::arbitrary(g) % 300)
        };
        let payments = u8::arbitrary(g) % 3 == 0;
        let txs: Vec<Vec<Op>> = (0..count)
            .map(|_| {
                (0..1 + usize::arbitrary(g) % 6)
                    .map(|_| match u8::arbitrary(g) % if payments { 40 } else { 13 } {
                        10 | 13.. => spend(g),
                        11 => Op::Fund(u8::arbitrary(g) % accounts, u64::arbitrary(g) % 500),
                        12 => Op::Work(u16::arbitrary(g) % 2000),
                        9 => Op::AddRead(pick(g), pick(g)),
                        8 => Op::Wipe(pick(g)),
                        0 | 1 => Op::Read(pick(g)),
                        2 => Op::Write(pick(g)),
                        3 => Op::Delete(pick(g)),
                        4 => Op::Add(pick(g), u32::arbitrary(g)),
                        5 => Op::Sub(pick(g), u32::arbitrary(g) % 1000),
                        6 => Op::WriteIfEven(pick(g), pick(g)),
                        7 => Op::WriteOnlyIfEven(pick(g), pick(g)),
                    })
                    .collect()
            })
            .collect();
        let mut base = HashMap::new();
        for k in 0..keys {
            if bool::arbitrary(g) {
                base.insert(key(k), u128::from(u32::arbitrary(g)).to_le_bytes().to_vec());
            }
        }
        for a in 0..accounts {
            if u8::arbitrary(g) % 4 != 0 {
                base.insert(account(a), encode(0, u64::arbitrary(g) % 3000));
            }
        }
        let hints = (0..count)
            .map(|txn| (txn > 0 && u8::arbitrary(g) % 3 == 0).then(|| usize::arbitrary(g) % txn))
            .collect();
        // Targets: the group of the first key a transaction writes (a contract, roughly), or
        // any of a few labels, or none.
        let targets = txs
            .iter()
            .map(|ops| match u8::arbitrary(g) % 3 {
                0 => None,
                1 => Some(u64::arbitrary(g) % 3),
                _ => ops.iter().find_map(|op| match op {
                    Op::Write(k) | Op::WriteIfEven(k, _) | Op::WriteOnlyIfEven(k, _) => {
                        Some(100 + u64::from(k >> 4))
                    }
                    _ => None,
                }),
            })
            .collect();
        Block { txs, base, hints, targets }
    }
}

impl Storage for Block {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.base.get(key).cloned()
    }
}

impl Transactions for Block {
    type Output = Vec<Option<Vec<u8>>>;

    fn len(&self) -> usize {
        self.txs.len()
    }

    fn execute(&self, txn: usize, view: &mut dyn View) -> Self::Output {
        let mut acc = txn as u128;
        let mut seen = Vec::new();
        for op in &self.txs[txn] {
            match *op {
                Op::Read(k) => {
                    let value = view.read(&key(k));
                    acc = acc.wrapping_mul(31).wrapping_add(number(value.as_deref()));
                    seen.push(value);
                }
                Op::Write(k) => view.write(key(k), Some(acc.to_le_bytes().to_vec())),
                Op::Delete(k) => view.write(key(k), None),
                Op::Add(k, amount) => view.add(key(k), Delta::add(&U128, amount.into())),
                Op::Sub(k, amount) => view.add(key(k), Delta::sub(&U128, amount.into())),
                Op::WriteIfEven(k, condition) => {
                    if number(view.read(&key(condition)).as_deref()).is_multiple_of(2) {
                        view.write(key(k), Some(acc.to_le_bytes().to_vec()));
                    } else {
                        view.add(key(k), Delta::add(&U128, 1));
                    }
                }
                Op::WriteOnlyIfEven(k, condition) => {
                    if number(view.read(&key(condition)).as_deref()).is_multiple_of(2) {
                        view.write(key(k), Some(acc.to_le_bytes().to_vec()));
                    }
                }
                Op::AddRead(k, source) => {
                    let amount = number(view.read(&key(source)).as_deref()) % 7 + 1;
                    view.add(key(k), Delta::add(&U128, amount));
                }
                Op::Wipe(k) => {
                    let prefix = group(k);
                    let mut keys = view.written_keys(&prefix);
                    keys.extend(self.base.keys().filter(|key| key.starts_with(&prefix)).cloned());
                    keys.sort();
                    keys.dedup();
                    seen.push(Some((keys.len() as u128).to_le_bytes().to_vec()));
                    for key in keys {
                        view.write(key, None);
                    }
                }
                Op::Work(rounds) => {
                    for i in 0..rounds {
                        acc = std::hint::black_box(acc.rotate_left(7) ^ u128::from(i));
                    }
                }
                Op::Spend(a, nonce, cost) => {
                    let assumption = Assumption::new(&SPENDABLE, nonce.into(), cost.into());
                    let paid = if view.assume(&account(a), assumption) {
                        view.add(account(a), Delta { add: 1, sub: cost.into(), kind: &SPENT });
                        true
                    } else {
                        let value = view.read(&account(a));
                        let (n, balance) = record(value.as_deref());
                        let paid = n == nonce && balance >= cost;
                        if paid {
                            view.write(account(a), Some(encode(n + 1, balance - cost)));
                        }
                        paid
                    };
                    seen.push(Some(vec![u8::from(paid)]));
                }
                Op::Fund(a, amount) => {
                    let value = view.read(&account(a));
                    let (nonce, balance) = record(value.as_deref());
                    view.write(account(a), Some(encode(nonce, balance.saturating_add(amount))));
                    seen.push(value);
                }
            }
        }
        seen
    }

    fn depends_on(&self, txn: usize) -> Option<usize> {
        self.hints.get(txn).copied().flatten()
    }

    fn target(&self, txn: usize) -> Option<u64> {
        self.targets.get(txn).copied().flatten()
    }
}

/// Runs the parallel algorithm itself (no fallback) on `threads` workers.
fn parallel(block: &Block, threads: usize) -> (Vec<Vec<Option<Vec<u8>>>>, hyperion_state::ChangeSet) {
    let give_up = GiveUp { min_executions: u64::MAX, max_aborts_per_100: 100 };
    let run = Run::new(block, block, give_up, threads, MvMemory::new(0, threads));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| run.work());
        }
    });
    let (finished, _, _) = run.finish();
    assert!(finished.complete, "a run that never gives up finishes");
    (finished.outputs, finished.changes)
}

#[test]
fn parallel_equals_serial_for_any_thread_count() {
    fn property(block: Block) -> TestResult {
        let reference = execute_serial(&block, &block);
        for threads in [1, 2, 4, 8] {
            let (outputs, changes) = parallel(&block, threads);
            if outputs != reference.outputs || changes != reference.changes {
                return TestResult::error(format!("{threads} threads differ from serial execution"));
            }
        }
        TestResult::passed()
    }
    QuickCheck::new().tests(1000).quickcheck(property as fn(Block) -> TestResult);
}

#[test]
fn the_executor_matches_serial_and_falls_back_on_conflicts() {
    fn property(block: Block) -> TestResult {
        let reference = execute_serial(&block, &block);
        let config = Config { min_parallel_txns: 0, ..Config::with_threads(3) };
        let executor = Executor::new(config).unwrap();
        for _ in 0..3 {
            let output = executor.execute(&block, &block);
            if output.outputs != reference.outputs || output.changes != reference.changes {
                return TestResult::error(format!("{:?} differs from serial execution", output.stats.mode));
            }
        }
        TestResult::passed()
    }
    QuickCheck::new().tests(100).quickcheck(property as fn(Block) -> TestResult);
}

#[test]
fn giving_up_keeps_the_valid_prefix_and_runs_the_rest_serially() {
    fn property(block: Block) -> TestResult {
        let reference = execute_serial(&block, &block);
        // Gives up at the first abort.
        let config = Config {
            min_parallel_txns: 0,
            max_aborts_per_100: 0,
            min_executions_before_giving_up: 1,
            serial_blocks_after_conflicts: 0,
            ..Config::with_threads(2)
        };
        let executor = Executor::new(config).unwrap();
        let output = executor.execute(&block, &block);
        if output.outputs != reference.outputs || output.changes != reference.changes {
            return TestResult::error(format!("{:?} differs from serial execution", output.stats));
        }
        TestResult::passed()
    }
    QuickCheck::new().tests(300).quickcheck(property as fn(Block) -> TestResult);
}

/// A dependency chain: every transaction reads what the previous one wrote.
fn chain(length: usize) -> Block {
    let txs = (0..length).map(|_| vec![Op::Read(0), Op::Work(500), Op::Write(0)]).collect();
    Block { txs, base: HashMap::new(), hints: Vec::new(), targets: Vec::new() }
}

#[test]
fn a_chain_through_one_target_gives_the_serial_result() {
    let mut block = chain(120);
    // One target, or every other transaction elsewhere (and each one in two after 60 reads
    // the counter without writing it).
    block.targets = (0..120).map(|txn| Some(u64::from(txn % 2 == 0 && txn > 30))).collect();
    for txn in (60..120).step_by(2) {
        block.txs[txn] = vec![Op::Read(0), Op::Work(200), Op::Write(1)];
    }
    let reference = execute_serial(&block, &block);
    for threads in [2, 4] {
        for _ in 0..5 {
            assert_eq!(parallel(&block, threads), (reference.outputs.clone(), reference.changes.clone()));
        }
    }
}

#[test]
fn a_block_that_is_mostly_one_hinted_chain_runs_serially() {
    let mut block = chain(100);
    // Transactions 0..80 form one chain of sure dependencies.
    block.hints = (0..100).map(|txn| (1..80).contains(&txn).then(|| txn - 1)).collect();
    let executor = Executor::new(Config::with_threads(2)).unwrap();
    let output = executor.execute(&block, &block);
    assert_eq!(output.stats.mode, Mode::Serial(SerialReason::DependencyChain));
    let reference = execute_serial(&block, &block);
    assert_eq!((&output.outputs, &output.changes), (&reference.outputs, &reference.changes));
    // A shorter chain leaves the block to the parallel algorithm.
    block.hints = (0..100).map(|txn| (1..50).contains(&txn).then(|| txn - 1)).collect();
    let output = executor.execute(&block, &block);
    assert_ne!(output.stats.mode, Mode::Serial(SerialReason::DependencyChain));
    assert_eq!((output.outputs, output.changes), (reference.outputs, reference.changes));
}

#[test]
fn a_dependency_chain_gives_up_and_runs_serially() {
    let block = chain(200);
    let executor = Executor::new(Config::with_threads(2)).unwrap();
    let output = executor.execute(&block, &block);
    let reference = execute_serial(&block, &block);
    assert_eq!((output.outputs, output.changes), (reference.outputs, reference.changes));
    // Whether this block gave up depends on timing; the next blocks' mode follows from it.
    if output.stats.mode == Mode::Serial(SerialReason::Conflicts) {
        let next = executor.execute(&block, &block);
        assert_eq!(next.stats.mode, Mode::Serial(SerialReason::RecentConflicts));
    }
}

#[test]
fn independent_transactions_run_in_parallel_without_aborts() {
    let txs = (0..64u8).map(|k| vec![Op::Read(k), Op::Add(255, 1), Op::Write(k)]).collect();
    let block = Block { txs, base: HashMap::new(), hints: Vec::new(), targets: Vec::new() };
    let executor = Executor::new(Config::with_threads(2)).unwrap();
    let output = executor.execute(&block, &block);
    assert_eq!(output.stats.mode, Mode::Parallel(2));
    assert_eq!(output.stats.aborts, 0, "deltas on one key do not conflict");
    assert_eq!(output.changes.get(key(255).as_slice()), Some(&Some(64u128.to_le_bytes().to_vec())));
    let small =
        Block { txs: block.txs[..3].to_vec(), base: HashMap::new(), hints: Vec::new(), targets: Vec::new() };
    assert_eq!(executor.execute(&small, &small).stats.mode, Mode::Serial(SerialReason::SmallBlock));
}

#[test]
fn a_transaction_panic_reaches_the_caller() {
    struct Panics;
    impl Transactions for Panics {
        type Output = ();
        fn len(&self) -> usize {
            16
        }
        fn execute(&self, txn: usize, view: &mut dyn View) {
            view.write(vec![txn as u8], None);
            assert_ne!(txn, 9, "transaction 9 is broken");
        }
    }
    let executor = Executor::new(Config::with_threads(2)).unwrap();
    let block = Block { txs: Vec::new(), base: HashMap::new(), hints: Vec::new(), targets: Vec::new() };
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| executor.execute(&block, &Panics)));
    let message = caught.expect_err("the panic is re-raised");
    let text = message.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("transaction 9 is broken"), "{text}");
}

/// Transactions over thousands of keys, enough that a block's end is gathered on every thread
/// of the pool: each writes three keys of its own, adds to a shared one, and reads a key that
/// an earlier transaction wrote (some of them while that one may still run).
struct Wide(usize);

impl Transactions for Wide {
    type Output = Option<Vec<u8>>;

    fn len(&self) -> usize {
        self.0
    }

    fn execute(&self, txn: usize, view: &mut dyn View) -> Self::Output {
        let own = |txn: usize, j: u8| [b"w".as_slice(), &(txn as u32).to_be_bytes(), &[j]].concat();
        let read = view.read(&own(txn.saturating_sub(1 + txn % 13), txn as u8 % 3));
        for j in 0..3 {
            let value = [read.clone().unwrap_or_default(), vec![j, txn as u8]].concat();
            view.write(own(txn, j), Some(value[value.len().saturating_sub(24)..].to_vec()));
        }
        view.add(b"shared".to_vec(), Delta::add(&U128, txn as u128));
        read
    }
}

impl Storage for Wide {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        key.starts_with(b"w").then(|| key[1..].to_vec())
    }
}

#[test]
fn settling_waits_for_the_memory_emptied_after_a_block() {
    let block = Wide(300);
    let executor = Executor::new(Config { max_aborts_per_100: 100, ..Config::with_threads(2) }).unwrap();
    for _ in 0..3 {
        let output = executor.execute(&block, &block);
        assert_eq!(output.stats.mode, Mode::Parallel(2));
        executor.settle();
        assert_eq!(executor.background.load(std::sync::atomic::Ordering::Acquire), 0);
        let spare = executor.spare.lock();
        assert!(
            spare.as_ref().is_some_and(|memory| memory.len() == 0),
            "emptied and kept for the next block"
        );
    }
}

#[test]
fn blocks_of_thousands_of_keys_are_gathered_by_every_worker_with_the_serial_result() {
    let block = Wide(700);
    let reference = execute_serial(&block, &block);
    assert!(reference.changes.len() > 2000);
    for threads in [2, 3] {
        let config = Config {
            serial_blocks_after_conflicts: 0,
            max_aborts_per_100: 100,
            ..Config::with_threads(threads)
        };
        let executor = Executor::new(config).unwrap();
        for _ in 0..4 {
            let output = executor.execute(&block, &block);
            assert_eq!(output.stats.mode, Mode::Parallel(threads));
            assert_eq!((&output.outputs, &output.changes), (&reference.outputs, &reference.changes));
        }
    }
}

#[test]
fn an_execution_sees_one_value_per_key_however_many_it_reads() {
    use crate::parallel::Reads;
    let block = Block { txs: Vec::new(), base: HashMap::new(), hints: Vec::new(), targets: Vec::new() };
    for reads in [5u8, 16, 17, 60] {
        let memory = MvMemory::new(2, 1);
        let mut local = memory.local(0, 2);
        let write = |local: &mut crate::mvmemory::Local, value: u8| {
            let mut writes = crate::Writes::default();
            writes.write(key(3), Some(vec![value]));
            memory.record(local, 0, Vec::new(), Vec::new(), Vec::new(), writes);
        };
        write(&mut local, 1);
        let mut seen = Reads::new(&mut local);
        for k in 0..reads {
            let value = seen.read(&memory, &block, None, 1, &key(k));
            assert_eq!(value, (k == 3).then(|| vec![1]), "{reads} reads");
        }
        // Transaction 0 runs again and writes another value: this execution still sees its first.
        let mut other = memory.local(0, 2);
        write(&mut other, 2);
        assert_eq!(seen.read(&memory, &block, None, 1, &key(3)), Some(vec![1]), "{reads} reads");
        assert_eq!(seen.len(), usize::from(reads), "each key is recorded once");
    }
}

#[test]
fn a_task_runs_once_on_each_worker_at_the_same_time() {
    for threads in [1, 2, 3] {
        let executor = Executor::new(Config::with_threads(threads)).expect("threads start");
        // Every worker waits at the barrier until all have arrived: they run at the same time.
        let barrier = std::sync::Barrier::new(threads);
        let ran = executor.on_each_worker(|worker| {
            barrier.wait();
            (worker, std::thread::current().id())
        });
        let workers: Vec<usize> = ran.iter().map(|(worker, _)| *worker).collect();
        assert_eq!(workers, (0..threads).collect::<Vec<_>>());
        let distinct: std::collections::HashSet<_> = ran.iter().map(|(_, id)| *id).collect();
        assert_eq!(distinct.len(), threads, "one thread per worker");
    }
}

#[test]
fn a_listing_waits_for_a_redone_write_and_is_validated_again_when_it_goes() {
    use crate::mvmemory::Validity;
    let block = Block { txs: Vec::new(), base: HashMap::new(), hints: Vec::new(), targets: Vec::new() };
    let memory = MvMemory::new(3, 1);
    let mut local = memory.local(0, 3);
    let writing = |key: Option<&[u8]>| {
        let mut writes = crate::Writes::default();
        if let Some(key) = key {
            writes.write(key.to_vec(), Some(vec![1]));
        }
        writes
    };
    // Transaction 1 writes a key under `p`; transaction 2 lists `p` (to delete what is there).
    memory.record(&mut local, 1, Vec::new(), Vec::new(), Vec::new(), writing(Some(b"p1")));
    let listed = memory.keys_before(b"p", 2).expect("nothing is being redone");
    assert_eq!(listed, [b"p1".to_vec()]);
    memory.record(&mut local, 2, Vec::new(), vec![(b"p".to_vec(), listed)], Vec::new(), writing(None));
    assert_eq!(memory.validate(2, &block), Validity::Valid);
    // Transaction 1 is redone: whether it writes `p1` again is not known.
    memory.mark_estimates(1);
    assert_eq!(memory.keys_before(b"p", 2), Err(1), "a listing waits for the redone writer");
    assert_eq!(memory.validate(2, &block), Validity::Invalid);
    // Its new execution writes nothing: the listing after it is looked at again.
    let affected = memory.record(&mut local, 1, Vec::new(), Vec::new(), Vec::new(), writing(None));
    assert_eq!(memory.first_affected(&affected, 1, 3, 8), Some(2));
    assert_eq!(memory.validate(2, &block), Validity::Invalid);
    assert_eq!(memory.keys_before(b"p", 2), Ok(Vec::new()));
    // A key written by another transaction too is listed whatever the redone one does.
    memory.record(&mut local, 0, Vec::new(), Vec::new(), Vec::new(), writing(Some(b"p0")));
    memory.record(&mut local, 1, Vec::new(), Vec::new(), Vec::new(), writing(Some(b"p0")));
    memory.mark_estimates(1);
    assert_eq!(memory.keys_before(b"p", 2), Ok(vec![b"p0".to_vec()]));
}

#[test]
fn a_panic_on_a_state_that_serial_execution_never_gives_is_not_raised() {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    /// Transaction 1 reads `a` and asserts that transaction 0 wrote it; transaction 0 writes it
    /// only once transaction 1's first execution has read it: that execution panics.
    struct Early {
        read: AtomicBool,
    }
    impl Transactions for Early {
        type Output = Option<Vec<u8>>;
        fn len(&self) -> usize {
            2
        }
        fn execute(&self, txn: usize, view: &mut dyn View) -> Self::Output {
            if txn == 0 {
                while !self.read.load(SeqCst) {
                    std::hint::spin_loop();
                }
                view.write(b"a".to_vec(), Some(vec![1]));
                return None;
            }
            let a = view.read(b"a");
            self.read.store(true, SeqCst);
            assert_eq!(a, Some(vec![1]), "transaction 0 wrote `a`");
            a
        }
    }
    let block = Block { txs: Vec::new(), base: HashMap::new(), hints: Vec::new(), targets: Vec::new() };
    let reference = execute_serial(&block, &Early { read: AtomicBool::new(true) });
    let executor = Executor::new(Config { force_parallel: true, ..Config::with_threads(2) }).unwrap();
    let output = executor.execute(&block, &Early { read: AtomicBool::new(false) });
    assert_eq!((&output.outputs, &output.changes), (&reference.outputs, &reference.changes));
    assert_eq!(output.stats.mode, Mode::Serial(SerialReason::Conflicts), "the rest ran serially");
}
