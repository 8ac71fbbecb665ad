//! Ethereum mainnet blocks (the shared fixtures) on the executor: the adapter that runs a
//! block's transactions through MetisVM on the executor's views, and the `mpef` suite's mainnet
//! cases.

use alloy_eips::eip2718::Encodable2718;
use hyperion_executor::{execute_serial, Config, Delta, Executor, Transactions, View};
use hyperion_state::{ChangeSet, Snapshot, StateRead};
use hyperion_vm::fixtures::{block_dirs, block_hashes, load, load_block, pre_state, MainnetBlock};
use hyperion_vm::keys::{account_key, code_hash_key, diff_to_changes, storage_prefix_of};
use hyperion_vm::{
    BlockEnv, BlockState, CodeCache, EthTransaction, EvmLedger, Fork, KeyedState, Log, Vm, B256,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::transfer::{plain_transfer_cost, Transfer, LEDGER_BALANCE};
use crate::{median, Error, Goal, Result, Row};

/// A state with nothing in it: `diff_to_changes` lists no slots to wipe (done here instead).
struct Nothing;

impl StateRead for Nothing {
    fn get(&self, _key: &[u8]) -> Option<Vec<u8>> {
        None
    }
    fn pairs(&self, _prefix: &[u8], _after: Option<&[u8]>, _limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        Vec::new()
    }
}

/// A mainnet block's transactions, as the executor runs them: each through MetisVM on the
/// executor's view, the beneficiary's fee as a delta on its ledger record (none when it is
/// zero: an empty coinbase is then not touched), a wiped account's storage deleted key by key
/// (the keys before the block, listed from `base`, and those the block wrote so far).
///
/// A plain transfer to an account without code reads neither its sender's record nor its
/// recipient's (see [`super::transfer`]).
pub struct EthBlock {
    /// The rules.
    pub vm: Vm,
    /// The block.
    pub env: BlockEnv,
    /// Its transactions, decoded.
    pub txs: Vec<EthTransaction>,
    /// What BLOCKHASH sees.
    pub hashes: BTreeMap<u64, B256>,
    /// The state before the block.
    pub base: Snapshot,
    /// For each transaction, the previous one of its sender.
    pub previous_of_sender: Vec<Option<usize>>,
    /// For each plain transfer, its maximum cost (see [`plain_transfer_cost`]).
    pub transfer_cost: Vec<Option<u128>>,
    /// Contract code analysed by earlier transactions (of this block and earlier runs).
    pub code_cache: Arc<CodeCache>,
}

impl EthBlock {
    /// The block's transactions to run with `vm` in `env` over `base`.
    pub fn new(
        vm: Vm,
        env: BlockEnv,
        txs: Vec<EthTransaction>,
        hashes: BTreeMap<u64, B256>,
        base: Snapshot,
    ) -> Self {
        let mut last = std::collections::HashMap::new();
        let previous_of_sender: Vec<Option<usize>> =
            txs.iter().enumerate().map(|(i, tx)| last.insert(tx.sender(), i)).collect();
        let transfer_cost = txs.iter().map(plain_transfer_cost).collect();
        let code_cache = Arc::new(CodeCache::default());
        Self { vm, env, txs, hashes, base, previous_of_sender, transfer_cost, code_cache }
    }
}

/// What a transaction did, for its receipt: success, gas used, logs.
pub type Outcome = std::result::Result<(bool, u64, Vec<Log>), String>;

impl Transactions for EthBlock {
    type Output = Outcome;

    fn len(&self) -> usize {
        self.txs.len()
    }

    fn execute(&self, txn: usize, view: &mut dyn View) -> Outcome {
        let tx = &self.txs[txn];
        let transfer = Transfer::plan(tx, self.transfer_cost[txn], view);
        let keyed =
            KeyedState::new(transfer.keys(tx, view), EvmLedger).with_block_hashes(self.hashes.clone());
        let mut state = BlockState::new(keyed).with_code_cache(self.code_cache.clone());
        let (executed, reward) = self
            .vm
            .execute_deferring_reward(&mut state, &self.env, tx)
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("refused: {e}"))?;
        let (_, diff) = state.into_diff();
        // Storage of accounts wiped (self-destructed, or created anew): every key that may exist,
        // in the state before the block or written by the block so far.
        let mut changes = ChangeSet::new();
        for address in diff.accounts.iter().filter(|(_, a)| a.storage_wiped).map(|(address, _)| *address) {
            let prefix = storage_prefix_of(address);
            let before = self.base.pairs(&prefix, None, usize::MAX).into_iter().map(|(k, _)| k);
            changes.extend(before.chain(view.written_keys(&prefix)).map(|k| (k, None)));
        }
        changes.extend(diff_to_changes(&diff, &EvmLedger, &Nothing).map_err(|e| e.to_string())?);
        drop_unchanged_code_hashes(&mut changes, diff.accounts.keys().copied(), view);
        let reward = u128::try_from(reward).map_err(|_| "a reward beyond u128".to_string())?;
        let (deltas, reward) = transfer.settle(tx, &mut changes, self.env.beneficiary, reward)?;
        for (key, value) in changes {
            view.write(key, value);
        }
        for (key, delta) in deltas {
            view.add(key, delta);
        }
        if reward != 0 {
            view.add(account_key(self.env.beneficiary), Delta::add(&LEDGER_BALANCE, reward));
        }
        Ok((executed.success(), executed.gas_used, executed.logs))
    }

    fn depends_on(&self, txn: usize) -> Option<usize> {
        // A transfer that assumes what it needs of its sender does not wait for the sender's
        // previous transaction.
        match self.transfer_cost.get(txn) {
            Some(Some(_)) => None,
            _ => self.previous_of_sender.get(txn).copied().flatten(),
        }
    }

    /// The address called (or paid).
    fn target(&self, txn: usize) -> Option<u64> {
        self.txs.get(txn)?.target_label()
    }
}

/// Removes from `changes` the code hashes of `accounts` that stay what they were (a sender's,
/// a recipient's: absent before and after), as the EVM pallet writes only what changed: every
/// transaction of a sender would otherwise write its code hash, and one re-executed would hold
/// up every later one that reads it. (The VM read each of them when it loaded the account.)
fn drop_unchanged_code_hashes(
    changes: &mut ChangeSet,
    accounts: impl Iterator<Item = hyperion_vm::Address>,
    view: &mut dyn View,
) {
    for address in accounts {
        let key = code_hash_key(address);
        if changes.get(&key).is_some_and(|after| *after == view.read(&key)) {
            changes.remove(&key);
        }
    }
}

/// A fixture block ready to run: the adapter, its base state, and its header's results.
pub struct Prepared {
    /// The block's number (its folder's name).
    pub name: String,
    /// The transactions.
    pub block: EthBlock,
    /// The state before it.
    pub base: Snapshot,
    /// Transaction types, for receipts.
    pub types: Vec<u8>,
    /// What the header says.
    pub expected: hyperion_vm::fixtures::Expected,
    /// Its fork.
    pub fork: Fork,
    _db: hyperion_state::MemoryStateDb,
}

/// Loads the block in `dir`.
pub fn prepare(dir: &Path) -> std::result::Result<Prepared, String> {
    let MainnetBlock { fork, env, expected, transactions } = load_block(dir)?;
    let (db, snapshot) = load(&pre_state(dir));
    let txs = transactions
        .iter()
        .map(|rpc| EthTransaction::decode_with(&rpc.inner.inner().encoded_2718(), fork >= Fork::Homestead))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let types = txs.iter().map(EthTransaction::tx_type).collect();
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let block = EthBlock::new(Vm::new(fork, 1), env, txs, block_hashes(dir), snapshot.clone());
    Ok(Prepared { name, block, base: snapshot, types, expected, fork, _db: db })
}

impl Prepared {
    /// Fails unless `outcomes` give the header's gas used, logs bloom and (from Byzantium)
    /// receipts root.
    pub fn check(&self, outcomes: &[Outcome]) -> std::result::Result<(), String> {
        let mut receipts = Vec::with_capacity(outcomes.len());
        let mut cumulative_gas_used = 0;
        for (index, (outcome, tx_type)) in outcomes.iter().zip(&self.types).enumerate() {
            let (success, gas, logs) = outcome.clone().map_err(|e| format!("transaction {index}: {e}"))?;
            cumulative_gas_used += gas;
            receipts.push(hyperion_vm::Receipt { tx_type: *tx_type, success, cumulative_gas_used, logs });
        }
        if cumulative_gas_used != self.expected.gas_used {
            return Err(format!("gas used {cumulative_gas_used}, header says {}", self.expected.gas_used));
        }
        if hyperion_vm::block_bloom(&receipts) != self.expected.bloom {
            return Err("logs bloom differs from the header's".into());
        }
        if self.fork.has_receipt_status()
            && hyperion_vm::receipts_root(&receipts) != self.expected.receipts_root
        {
            return Err("receipts root differs from the header's".into());
        }
        Ok(())
    }
}

/// The suite's mainnet cases: every fixture block of at least `min_txs` transactions, serial
/// against MPEF on `threads`, each timed `repetitions` times back to back; one row per block
/// and a last row with the geometric mean of the ratios.
pub fn run_cases(min_txs: usize, threads: usize, repetitions: u32) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut log_ratio_sum = 0.0;
    // One executor (its threads started once, outside the timed runs). The fixture blocks are
    // unrelated samples, not a chain: no block runs serially because another had conflicts.
    let config = Config { serial_blocks_after_conflicts: 0, ..Config::with_threads(threads) };
    let executor = Executor::new(config).map_err(|e| Error::Check(e.to_string()))?;
    for dir in block_dirs() {
        let prepared = prepare(&dir).map_err(Error::Check)?;
        if prepared.block.txs.len() < min_txs {
            continue;
        }
        let reference = execute_serial(&prepared.base, &prepared.block);
        prepared
            .check(&reference.outputs)
            .map_err(|e| Error::Check(format!("block {}: {e}", prepared.name)))?;
        let (mut serial_times, mut parallel_times) = (Vec::new(), Vec::new());
        for _ in 0..repetitions.max(1) {
            // The executor's work after its last block is done before either side is timed
            // (see `Executor::settle`).
            executor.settle();
            let start = Instant::now();
            let serial = execute_serial(&prepared.base, &prepared.block);
            serial_times.push(start.elapsed().as_secs_f64());
            executor.settle();
            let start = Instant::now();
            let parallel = executor.execute(&prepared.base, &prepared.block);
            parallel_times.push(start.elapsed().as_secs_f64());
            eprintln!("mpef mainnet {}: {:?}", prepared.name, parallel.stats);
            if parallel.outputs != serial.outputs || parallel.changes != serial.changes {
                return Err(Error::Check(format!(
                    "block {}: MPEF differs from serial execution",
                    prepared.name
                )));
            }
        }
        let txs = prepared.block.txs.len() as f64;
        let row = Row::throughput(
            super::SUITE,
            format!("mainnet/{}/txs={}/threads={threads}/vs_serial", prepared.name, prepared.block.txs.len()),
            txs / median(&serial_times).max(f64::MIN_POSITIVE),
            txs / median(&parallel_times).max(f64::MIN_POSITIVE),
            super::UNIT_NAME,
        )
        .with_goals(&[Goal::RatioAtLeast(0.95)]);
        log_ratio_sum += row.ratio().ln();
        rows.push(row);
    }
    if !rows.is_empty() {
        let mean = (log_ratio_sum / rows.len() as f64).exp();
        let row =
            Row::throughput(super::SUITE, "mainnet/geometric-mean/vs_serial".into(), 1.0, mean, "ratio")
                .with_goals(&[Goal::RatioAtLeast(1.3)]);
        rows.push(row);
    }
    Ok(rows)
}
