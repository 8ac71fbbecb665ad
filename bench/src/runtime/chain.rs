//! Ours: the runtime with the balances pallet over the in-memory state, and its two timed paths,
//! the proposer's (build + commit) and the validator's (execute + commit).

use hyperion_primitives::{Address, Block, Header, Receipt};
use hyperion_runtime::{
    system, BuiltBlock, FeeConfig, InvalidTransaction, QueryContext, Runtime, TransactionSource,
};
use hyperion_state::{ChangeSet, MemoryStateDb, StateDb};
use pallet_balances::{Balances, ACCOUNTS};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::workload::{Tx, BALANCES_INDEX, ENDOWMENT};
use super::AccountState;
use crate::{Error, Result};

/// Versions the state keeps readable, as a node keeps a few recent ones.
const RETAINED_VERSIONS: u64 = 4;
/// Timestamp step between blocks.
const BLOCK_TIME_MS: u64 = 1_000;

/// The chain under test, from its genesis.
pub struct Chain {
    runtime: Runtime,
    genesis: ChangeSet,
    genesis_header: Header,
    proposer: Address,
}

/// Offers a block's transactions in order, as the mempool would.
struct SliceSource<'a>(std::slice::Iter<'a, Tx>);

impl TransactionSource for SliceSource<'_> {
    fn next(&mut self) -> Option<(Arc<hyperion_primitives::Extrinsic>, usize)> {
        self.0.next().map(|tx| (tx.xt.clone(), tx.len))
    }

    /// Rejections are read from the built block afterwards.
    fn reject(&mut self, _hash: &hyperion_primitives::Hash, _reason: &InvalidTransaction) {}
}

impl Chain {
    /// A chain whose genesis endows each of `endowed` with [`ENDOWMENT`], default fees and
    /// limits, and `proposer` proposing every block.
    pub fn new(endowed: &[Address], proposer: Address) -> Result<Self> {
        let balances = Arc::new(Balances::new(BALANCES_INDEX));
        let runtime = Runtime::new(balances.clone(), vec![(BALANCES_INDEX, balances)])?;
        let endowments: Vec<_> = endowed.iter().map(|a| json!([a, ENDOWMENT.to_string()])).collect();
        let mut genesis = runtime.default_genesis();
        genesis.insert("balances".into(), json!({ "balances": endowments }));
        let genesis = runtime.genesis_changes(&genesis)?;
        let root = MemoryStateDb::new(1).commit(0, &genesis, None)?;
        let genesis_header = Runtime::genesis_header(root, 0);
        runtime.set_genesis_hash(genesis_header.hash());
        Ok(Self { runtime, genesis, genesis_header, proposer })
    }

    /// The genesis hash transactions are signed for.
    pub fn genesis_hash(&self) -> hyperion_primitives::Hash {
        self.genesis_header.hash()
    }

    /// The fee parameters of the genesis state.
    pub fn fees(&self) -> Result<FeeConfig> {
        let state = self.genesis_state()?;
        let mut reader = QueryContext::new(state.snapshot(0)?);
        system::FEE_CONFIG.get(&mut reader).ok_or_else(|| Error::Check("genesis has no fee config".into()))
    }

    /// A fresh state holding only genesis (not timed).
    fn genesis_state(&self) -> Result<MemoryStateDb> {
        let state = MemoryStateDb::new(RETAINED_VERSIONS);
        state.commit(0, &self.genesis, Some(self.genesis_header.state_root))?;
        Ok(state)
    }

    /// The proposer's path from genesis: builds one block per entry of `blocks` from its
    /// transactions and commits it. Returns the blocks, the final state and the time spent
    /// building and committing. Fails unless every transaction was included and succeeded.
    pub fn propose(&self, blocks: &[Vec<Tx>]) -> Result<(Vec<Block>, MemoryStateDb, Duration)> {
        let state = self.genesis_state()?;
        let mut head = self.genesis_header.clone();
        let mut built: Vec<BuiltBlock> = Vec::with_capacity(blocks.len());
        let start = Instant::now();
        for txs in blocks {
            let mut source = SliceSource(txs.iter());
            let timestamp_ms = head.timestamp_ms + BLOCK_TIME_MS;
            let block = self.runtime.build_block(&state, &head, self.proposer, timestamp_ms, &mut source)?;
            let header = &block.block.header;
            state.commit(header.number, &block.changes, Some(header.state_root))?;
            head = header.clone();
            built.push(block);
        }
        let elapsed = start.elapsed();
        for (txs, block) in blocks.iter().zip(&built) {
            if let Some((hash, reason)) = block.rejected.first() {
                return Err(Error::Check(format!("the proposer left out {hash}: {reason}")));
            }
            check_receipts(txs.len(), &block.receipts, "proposer")?;
        }
        Ok((built.into_iter().map(|b| b.block).collect(), state, elapsed))
    }

    /// The validator's path from genesis: executes and checks each block, then commits it.
    /// Returns the final state and the time spent executing and committing.
    pub fn validate(&self, blocks: &[Block]) -> Result<(MemoryStateDb, Duration)> {
        let state = self.genesis_state()?;
        let mut parent = &self.genesis_header;
        let mut receipts = Vec::with_capacity(blocks.len());
        let start = Instant::now();
        for block in blocks {
            let executed = self.runtime.execute_block(&state, parent, block)?;
            let header = &block.header;
            state.commit(header.number, &executed.changes, Some(header.state_root))?;
            parent = header;
            receipts.push(executed.receipts);
        }
        let elapsed = start.elapsed();
        for (block, receipts) in blocks.iter().zip(&receipts) {
            check_receipts(block.extrinsics.len(), receipts, "validator")?;
        }
        Ok((state, elapsed))
    }

    /// Nonce and free balance of each of `accounts` in the latest version of `state`.
    pub fn ledger(&self, state: &MemoryStateDb, accounts: &[Address]) -> Result<Vec<AccountState>> {
        let (latest, _) = state.latest().ok_or_else(|| Error::Check("empty state".into()))?;
        let mut reader = QueryContext::new(state.snapshot(latest)?);
        Ok(accounts
            .iter()
            .map(|a| AccountState {
                address: *a,
                nonce: system::ACCOUNT_NONCE.get_or_default(&mut reader, a),
                free: ACCOUNTS.get_or_default(&mut reader, a).free,
            })
            .collect())
    }
}

/// Fails unless there are `expected` receipts, all successful.
fn check_receipts(expected: usize, receipts: &[Receipt], who: &str) -> Result<()> {
    if receipts.len() != expected {
        return Err(Error::Check(format!("the {who} applied {} of {expected} transfers", receipts.len())));
    }
    match receipts.iter().position(|r| !r.success) {
        Some(i) => Err(Error::Check(format!("{who}: transfer {i} failed: {:?}", receipts[i].error))),
        None => Ok(()),
    }
}
