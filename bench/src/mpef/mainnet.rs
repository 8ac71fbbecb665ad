//! Ethereum mainnet blocks (the shared fixtures) on the executor: the adapter that runs a
//! block's transactions through MetisVM on the executor's views, and the `mpef` suite's mainnet
//! cases.

use alloy_eips::eip2718::Encodable2718;
use hyperion_executor::{
    execute_serial, Assumption, Condition, Config, Delta, DeltaKind, Executor, Transactions, View,
};
use hyperion_state::{ChangeSet, Snapshot, StateRead};
use hyperion_vm::fixtures::{block_dirs, block_hashes, load, load_block, pre_state, MainnetBlock};
use hyperion_vm::keys::{account_key, code_hash_key, diff_to_changes, storage_prefix_of, KeyRead};
use hyperion_vm::{
    BlockEnv, BlockState, CodeCache, EthTransaction, EvmLedger, Fork, KeyedState, Log, Vm, B256, U256,
};
use parity_scale_codec::{Decode, Encode};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::{median, Error, Goal, Result, Row};

/// `+add −sub` on an account's balance under [`EvmLedger`]'s record `(balance BE, nonce)`.
static LEDGER_BALANCE: DeltaKind =
    DeltaKind { name: "EvmLedger balance", apply: apply_balance, independent: false };

/// A sender's payment on its [`EvmLedger`] record: `add` more nonce, `sub` less balance.
static LEDGER_PAID: DeltaKind = DeltaKind { name: "EvmLedger payment", apply: apply_paid, independent: true };

/// An [`EvmLedger`] record's nonce is `a` and its balance at least `b`: what a transaction
/// with nonce `a` and maximum cost `b` needs of its sender to run.
static LEDGER_CAN_PAY: Condition = Condition { name: "EvmLedger can pay", holds: can_pay };

fn ledger_record(value: Option<&[u8]>) -> (U256, u64) {
    let (balance, nonce) = value.and_then(|mut v| <([u8; 32], u64)>::decode(&mut v).ok()).unwrap_or_default();
    (U256::from_be_bytes(balance), nonce)
}

fn encode_ledger_record(balance: U256, nonce: u64) -> Vec<u8> {
    (balance.to_be_bytes::<32>(), nonce).encode()
}

fn apply_balance(value: Option<&[u8]>, add: u128, sub: u128) -> Vec<u8> {
    let (balance, nonce) = ledger_record(value);
    encode_ledger_record(balance.saturating_add(U256::from(add)).saturating_sub(U256::from(sub)), nonce)
}

fn apply_paid(value: Option<&[u8]>, add: u128, sub: u128) -> Vec<u8> {
    let (balance, nonce) = ledger_record(value);
    let nonce = nonce.saturating_add(u64::try_from(add).unwrap_or(u64::MAX));
    encode_ledger_record(balance.saturating_sub(U256::from(sub)), nonce)
}

fn can_pay(value: Option<&[u8]>, nonce: u128, cost: u128) -> bool {
    let (balance, own) = ledger_record(value);
    u128::from(own) == nonce && balance >= U256::from(cost)
}

/// The executor's view as the VM's keys, with one key standing in for another value: the
/// sender's record when the transaction only assumed what it needs of it.
struct ViewKeys<'a> {
    view: &'a mut dyn View,
    stand_in: Option<(Vec<u8>, Vec<u8>)>,
}

impl KeyRead for ViewKeys<'_> {
    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        match &self.stand_in {
            Some((stood_for, value)) if stood_for.as_slice() == key => Some(value.clone()),
            _ => self.view.read(key),
        }
    }
}

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
/// A plain transfer (no call data) to an account without code does not read its sender's
/// record: it assumes the record has the
/// transaction's nonce and a balance that covers its maximum cost (see [`View::assume`]), runs
/// against a stand-in record that has exactly that, and writes the payment (one more nonce,
/// the cost taken off) as a delta. Nothing in such a transaction can see more of the balance
/// than the assumption: no code runs. A sender's run of payments (an exchange's hot wallet, a
/// mining pool paying out) then runs in parallel instead of as one chain.
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
    /// For each transaction that may assume what it needs of its sender instead of reading it
    /// (a plain transfer), its maximum cost.
    pub assumable_cost: Vec<Option<u128>>,
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
        let assumable_cost = txs
            .iter()
            .map(|tx| {
                // Not blob or set-code transactions: they carry more than a transfer.
                let plain = tx.to().is_some() && tx.input().is_empty() && tx.tx_type() <= 2;
                let cost = tx.max_cost().and_then(|cost| u128::try_from(cost).ok());
                cost.filter(|_| plain)
            })
            .collect();
        let code_cache = Arc::new(CodeCache::default());
        Self { vm, env, txs, hashes, base, previous_of_sender, assumable_cost, code_cache }
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
        let assumed = self.assume_sender(txn, view);
        let sender_key = account_key(tx.sender());
        let stand_in =
            assumed.map(|cost| (sender_key.clone(), encode_ledger_record(U256::from(cost), tx.nonce())));
        let keyed = KeyedState::new(ViewKeys { view: &mut *view, stand_in }, EvmLedger)
            .with_block_hashes(self.hashes.clone());
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
        let mut reward_to_pay = reward;
        let payment = match assumed {
            Some(cost) => {
                let after = changes.remove(&sender_key).flatten();
                let (balance, nonce) = ledger_record(after.as_deref());
                let cost = U256::from(cost);
                if after.is_none() || nonce < tx.nonce() || balance > cost {
                    return Err(format!("a transfer left its sender's stand-in record at {after:?}"));
                }
                let debit = u128::try_from(cost - balance).expect("at most the cost, a u128");
                // A coinbase sender's fee comes back to it in the same transaction: one delta.
                // (The fee is part of the cost paid, so it never exceeds the debit.)
                let debit = if tx.sender() == self.env.beneficiary {
                    reward_to_pay = 0;
                    debit.checked_sub(reward).ok_or("a reward beyond the sender's payment")?
                } else {
                    debit
                };
                Some(Delta { add: u128::from(nonce - tx.nonce()), sub: debit, kind: &LEDGER_PAID })
            }
            None => None,
        };
        for (key, value) in changes {
            view.write(key, value);
        }
        if let Some(payment) = payment {
            view.add(sender_key, payment);
        }
        if reward_to_pay != 0 {
            view.add(account_key(self.env.beneficiary), Delta::add(&LEDGER_BALANCE, reward_to_pay));
        }
        Ok((executed.success(), executed.gas_used, executed.logs))
    }

    fn depends_on(&self, txn: usize) -> Option<usize> {
        // A transfer that assumes what it needs of its sender does not wait for the sender's
        // previous transaction.
        match self.assumable_cost.get(txn) {
            Some(Some(_)) => None,
            _ => self.previous_of_sender.get(txn).copied().flatten(),
        }
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

impl EthBlock {
    /// The maximum cost of transaction `txn` when it runs on an assumption about its sender's
    /// record instead of reading it: when it may (see [`EthBlock`]), its recipient has no code,
    /// and the view grants the assumption.
    fn assume_sender(&self, txn: usize, view: &mut dyn View) -> Option<u128> {
        let cost = self.assumable_cost[txn]?;
        let tx = &self.txs[txn];
        let to = tx.to()?;
        if view.read(&code_hash_key(to)).is_some() {
            return None;
        }
        let assumption = Assumption::new(&LEDGER_CAN_PAY, u128::from(tx.nonce()), cost);
        view.assume(&account_key(tx.sender()), assumption).then_some(cost)
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
            let start = Instant::now();
            let serial = execute_serial(&prepared.base, &prepared.block);
            serial_times.push(start.elapsed().as_secs_f64());
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
