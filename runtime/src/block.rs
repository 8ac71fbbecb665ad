//! Block building (proposer) and block execution (validator, import, replay).
//!
//! Both run the same steps: `on_initialize` of every pallet in index order, the extrinsics
//! (each checked, charged and dispatched by [`Runtime::apply_extrinsic`]), `on_finalize` of
//! every pallet, then the roots. The extrinsics run on the runtime's [`Executor`] (MPEF): in
//! parallel when that pays, always with the result of running them one after the other.
//!
//! Limits are checked in block order after execution, from each extrinsic's outcome, so that no
//! extrinsic reads a block-wide counter: native extrinsics count their weight against the
//! block's weight limit, and an Ethereum transaction's gas limit must fit in what the
//! transactions before it left of the block's gas (Ethereum's rule). The block builder works in
//! rounds: it takes candidates while their byte size, weight and gas limits fit what is left,
//! executes them together, and starts the next round from what they actually used.

use hyperion_executor::{Stats, Transactions, View};
use hyperion_primitives::{
    Address, Block, EventRecord, Extrinsic, Hash, Header, Receipt, SignedExtrinsic, Weight,
};
use hyperion_state::{ordered_root, ChangeSet, StateDb};
use parity_scale_codec::Encode;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::context::{BlockInfo, BlockOverlay, Context};
use crate::executive::Applied;
use crate::system::{self, BlockLimits};
use crate::traits::PreparedEthereum;
use crate::{Error, InvalidTransaction, Result, Runtime};

/// Where the block builder takes extrinsics from (the mempool), best first.
pub trait TransactionSource {
    /// The next candidate and its encoded length, or `None` when there is none left.
    fn next(&mut self) -> Option<(Arc<Extrinsic>, usize)>;
    /// The candidate with `hash` (offered before) was not included for `reason`; the source
    /// should not offer later extrinsics of the same sender in this block.
    fn reject(&mut self, hash: &Hash, reason: &InvalidTransaction);
}

/// A block built on top of the latest state, not yet committed.
#[derive(Debug)]
pub struct BuiltBlock {
    /// The block (header with the computed roots, no certificate).
    pub block: Block,
    /// Receipts, one per extrinsic.
    pub receipts: Vec<Receipt>,
    /// Events of the block hooks.
    pub block_events: Vec<EventRecord>,
    /// The state changes to commit.
    pub changes: ChangeSet,
    /// Extrinsics left out, with why.
    pub rejected: Vec<(Hash, InvalidTransaction)>,
    /// How the extrinsics were executed (each round's executions added up).
    pub stats: Stats,
}

/// A block executed and checked against its header, not yet committed.
#[derive(Debug)]
pub struct ExecutedBlock {
    /// Receipts, one per extrinsic.
    pub receipts: Vec<Receipt>,
    /// Events of the block hooks.
    pub block_events: Vec<EventRecord>,
    /// The state changes to commit (their root is the header's state root).
    pub changes: ChangeSet,
    /// How the extrinsics were executed.
    pub stats: Stats,
    /// Weight used (hooks and native extrinsics).
    pub weight_used: Weight,
    /// Gas used by Ethereum transactions.
    pub gas_used: u64,
}

/// One round of extrinsics, as the executor runs them.
struct Round<'a> {
    runtime: &'a Runtime,
    info: BlockInfo,
    xts: &'a [(&'a Extrinsic, usize)],
    /// What was worked out for each extrinsic before the round runs.
    prepared: Vec<Prepared>,
    /// The round's sure dependencies (worked out on first use: only parallel execution asks).
    depends_on: OnceLock<Vec<Option<usize>>>,
}

/// What a round works out for each of its extrinsics before running them, for all of them at
/// once on the executor's threads: work that reads no state, done there instead of inside
/// execution (where a parallel run would wait for it, and a re-execution would repeat it).
#[derive(Default)]
struct Prepared {
    /// A native extrinsic's sender and whether its signature holds (see [`NativeCheck`]).
    native: Option<NativeCheck>,
    /// An Ethereum transaction as the EVM pallet prepared it: decoded, its sender recovered
    /// (or found among those recovered before), and its hints (see
    /// [`EthereumTransactions::prepare`](crate::EthereumTransactions::prepare)).
    ethereum: Option<PreparedEthereum>,
    /// The account a native extrinsic surely credits (see [`crate::Pallet::credits`]); only
    /// worked out for parallel execution.
    credited: Option<Address>,
    /// A native signature not verified before: its key among those verified (see
    /// [`crate::verified::VerifiedSignatures::look_up`]).
    unverified: Option<[u8; 32]>,
}

impl Prepared {
    /// The sender the round's dependencies count (see [`Round::depends_on`]).
    fn sender(&self) -> Option<Address> {
        self.native
            .map(|native| native.sender)
            .or_else(|| self.ethereum.as_ref().and_then(|ethereum| ethereum.hints.sender))
    }
}

/// A native extrinsic's sender (hashed from the signer's key) and whether its signature
/// verifies, worked out before it executes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct NativeCheck {
    pub(crate) sender: Address,
    pub(crate) signature_valid: bool,
}

/// Extrinsics prepared per task on the executor's threads.
const PREPARED_PER_TASK: usize = 32;

type FastMap<K, V> = HashMap<K, V, ahash::RandomState>;

impl<'a> Round<'a> {
    /// The round of `xts`, prepared: native senders, and signatures looked up among those
    /// already verified, the others verified in batches; Ethereum transactions decoded by the
    /// EVM pallet (see [`EthereumTransactions::prepare`](crate::EthereumTransactions::prepare)).
    fn new(runtime: &'a Runtime, info: BlockInfo, xts: &'a [(&'a Extrinsic, usize)]) -> Self {
        let executor = runtime.executor();
        let parallel = executor.config().threads > 1 || executor.config().force_parallel;
        let ethereum = runtime.ethereum().ok().map(|(_, handler)| handler);
        let mut prepared: Vec<Prepared> = executor.map(xts.len(), PREPARED_PER_TASK, |i| match xts[i].0 {
            Extrinsic::Native(signed) => {
                // A signature verified before comes with its sender, hashed then.
                let (key, known) = runtime.verified.look_up(signed);
                let sender = known.unwrap_or_else(|| signed.sender());
                let native = NativeCheck { sender, signature_valid: known.is_some() };
                let call = &signed.call;
                let credited = parallel
                    .then(|| runtime.entry_of(call.pallet, call.call).ok())
                    .flatten()
                    .and_then(|entry| entry.pallet.credits(call.call, &call.args));
                let unverified = known.is_none().then_some(key);
                Prepared { native: Some(native), ethereum: None, credited, unverified }
            }
            Extrinsic::Ethereum(raw) => {
                let ethereum = ethereum.map(|handler| handler.prepare(raw));
                Prepared { ethereum, ..Prepared::default() }
            }
        });
        // The native signatures not verified before, in batches.
        let pending: Vec<(usize, &SignedExtrinsic, [u8; 32])> = prepared
            .iter()
            .enumerate()
            .filter_map(|(i, prepared)| match (xts[i].0, prepared.unverified) {
                (Extrinsic::Native(signed), Some(key)) => Some((i, signed, key)),
                _ => None,
            })
            .collect();
        let verified = runtime.verified.verify_pending(&pending, runtime.genesis_hash(), executor);
        for i in verified {
            if let Some(check) = &mut prepared[i].native {
                check.signature_valid = true;
            }
        }
        Self { runtime, info, xts, prepared, depends_on: OnceLock::new() }
    }

    /// For each extrinsic, the closest earlier extrinsic it surely depends on: the previous one
    /// of its sender, or the last one that credited its sender.
    fn depends_on(&self) -> Vec<Option<usize>> {
        // Per account, the last extrinsic it sent and the last that credited it, counted from 1
        // (0: none). One map, made large enough at once: this runs on one thread before a
        // parallel block starts, and a map per role grown as it went took twice as long.
        let mut last: FastMap<Address, (u32, u32)> =
            FastMap::with_capacity_and_hasher(2 * self.xts.len(), Default::default());
        let mut depends_on = Vec::with_capacity(self.xts.len());
        for (index, prepared) in self.prepared.iter().enumerate() {
            let number = u32::try_from(index + 1).expect("rounds are far smaller than 4 Gi extrinsics");
            depends_on.push(prepared.sender().and_then(|sender| {
                let (sent, credited) = last.entry(sender).or_default();
                let earlier = (*sent).max(*credited);
                *sent = number;
                (earlier > 0).then(|| earlier as usize - 1)
            }));
            // After the sender's look-up: an extrinsic that credits its own sender does not
            // depend on itself.
            if let Some(credited) = prepared.credited {
                last.entry(credited).or_default().1 = number;
            }
        }
        depends_on
    }
}

impl Transactions for Round<'_> {
    type Output = std::result::Result<Applied, InvalidTransaction>;

    fn len(&self) -> usize {
        self.xts.len()
    }

    fn execute(&self, txn: usize, view: &mut dyn View) -> Self::Output {
        let (xt, len) = self.xts[txn];
        let prepared = &self.prepared[txn];
        self.runtime.apply(
            &mut Context::new(view, self.info),
            xt,
            len,
            prepared.native,
            prepared.ethereum.as_ref(),
        )
    }

    /// The closest of: the previous extrinsic of the same sender (it sets the nonce this one
    /// needs), and the last extrinsic that credited the sender (see [`crate::Pallet::credits`]; this
    /// one pays its fee from that balance). An Ethereum transaction's sender counts when the
    /// EVM pallet's hints name it (not for a plain transfer, which does not read its sender).
    fn depends_on(&self, txn: usize) -> Option<usize> {
        self.depends_on.get_or_init(|| self.depends_on()).get(txn).copied().flatten()
    }

    /// An Ethereum transaction's recipient (the contract it calls); none for native extrinsics.
    fn target(&self, txn: usize) -> Option<u64> {
        self.prepared.get(txn)?.ethereum.as_ref()?.hints.target
    }
}

/// What a block uses (or may use), against its limits.
#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    bytes: usize,
    weight: Weight,
    gas: u64,
}

impl Usage {
    /// This plus `other`.
    fn plus(self, other: Usage) -> Usage {
        Usage {
            bytes: self.bytes + other.bytes,
            weight: self.weight.saturating_add(other.weight),
            gas: self.gas.saturating_add(other.gas),
        }
    }

    /// Whether this fits `limits` and the block gas limit `gas_limit`.
    fn within(&self, limits: &BlockLimits, gas_limit: u64) -> bool {
        self.bytes <= limits.max_block_bytes as usize
            && self.weight <= limits.max_block_weight
            && self.gas <= gas_limit
    }

    /// What an applied extrinsic of `len` bytes used.
    fn of(xt: &Extrinsic, len: usize, applied: &Applied) -> Usage {
        match xt {
            Extrinsic::Native(_) => Usage { bytes: len, weight: applied.receipt.weight, gas: 0 },
            Extrinsic::Ethereum(_) => Usage { bytes: len, weight: 0, gas: applied.receipt.weight },
        }
    }
}

/// What a block under construction holds so far.
struct Collected {
    extrinsics: Vec<Extrinsic>,
    receipts: Vec<Receipt>,
    rejected: Vec<(Hash, InvalidTransaction)>,
    used: Usage,
    stats: Stats,
}

/// Ethereum's rule: a transaction's gas limit must fit in what is left of the block's gas.
fn check_gas_limit(
    applied: &Applied,
    used_gas: u64,
    block_gas_limit: u64,
) -> std::result::Result<(), InvalidTransaction> {
    match applied.gas_limit {
        Some(limit) if used_gas.saturating_add(limit) > block_gas_limit => {
            Err(InvalidTransaction::ExhaustsBlock)
        }
        _ => Ok(()),
    }
}

impl Runtime {
    fn run_hooks(&self, ctx: &mut Context<'_>, initialize: bool) -> Weight {
        let mut weight: Weight = 0;
        for entry in &self.entries {
            ctx.set_pallet(entry.index);
            if initialize {
                weight = weight.saturating_add(entry.pallet.on_initialize(ctx));
            } else {
                entry.pallet.on_finalize(ctx);
            }
        }
        weight
    }

    /// Runs `on_initialize` of `info`'s block on `overlay`: returns the block's limits, its
    /// Ethereum gas limit (0 without the EVM), the hooks' weight and their events.
    fn initialize(
        &self,
        overlay: &mut BlockOverlay,
        info: BlockInfo,
    ) -> (BlockLimits, u64, Weight, Vec<EventRecord>) {
        let mut ctx = Context::new(overlay, info);
        let limits = Self::limits(&mut ctx);
        let gas_limit = self.ethereum().map_or(0, |(_, eth)| eth.block_gas_limit(&mut ctx));
        let weight = self.run_hooks(&mut ctx, true);
        (limits, gas_limit, weight, ctx.take_events())
    }

    /// Runs `on_finalize` and records the block number; returns all the hook events.
    fn finish(
        &self,
        overlay: &mut BlockOverlay,
        info: BlockInfo,
        mut block_events: Vec<EventRecord>,
    ) -> Vec<EventRecord> {
        let mut ctx = Context::new(overlay, info);
        self.run_hooks(&mut ctx, false);
        system::NUMBER.put(&mut ctx, &info.number);
        block_events.extend(ctx.take_events());
        block_events
    }

    /// The most `xt` of `len` bytes may use, known before it runs, or why it cannot be
    /// included at all.
    fn bound(&self, xt: &Extrinsic, len: usize) -> std::result::Result<Usage, InvalidTransaction> {
        Ok(match xt {
            Extrinsic::Native(n) => {
                let entry = self.entry_of(n.call.pallet, n.call.call)?;
                let weight = entry.pallet.call_weight(n.call.call, &n.call.args).unwrap_or(0);
                Usage { bytes: len, weight, gas: 0 }
            }
            Extrinsic::Ethereum(raw) => {
                Usage { bytes: len, weight: 0, gas: self.ethereum()?.1.gas_limit(raw)? }
            }
        })
    }

    /// Executes `xts` on the runtime's executor over `overlay` and takes in their writes.
    fn run_round(
        &self,
        overlay: &mut BlockOverlay,
        info: BlockInfo,
        xts: &[(&Extrinsic, usize)],
    ) -> (Vec<std::result::Result<Applied, InvalidTransaction>>, Stats) {
        let output = self.executor.execute(overlay, &Round::new(self, info, xts));
        overlay.absorb(output.changes);
        (output.outputs, output.stats)
    }

    /// Executes a gathered round and keeps what was included, in order.
    fn close_round(
        &self,
        overlay: &mut BlockOverlay,
        info: BlockInfo,
        gas_limit: u64,
        round: Vec<(Arc<Extrinsic>, usize)>,
        source: &mut dyn TransactionSource,
        block: &mut Collected,
    ) {
        let refs: Vec<(&Extrinsic, usize)> = round.iter().map(|(xt, len)| (xt.as_ref(), *len)).collect();
        let (outputs, stats) = self.run_round(overlay, info, &refs);
        block.stats.mode = stats.mode;
        block.stats.executions += stats.executions;
        block.stats.validations += stats.validations;
        block.stats.aborts += stats.aborts;
        block.stats.waits += stats.waits;
        for ((xt, len), output) in round.into_iter().zip(outputs) {
            // Every gas limit of the round fit in what was left: this holds by construction.
            let output = output.and_then(|a| check_gas_limit(&a, block.used.gas, gas_limit).map(|()| a));
            match output {
                Ok(applied) => {
                    block.used = block.used.plus(Usage::of(&xt, len, &applied));
                    block.receipts.push(applied.receipt);
                    block.extrinsics.push(Extrinsic::clone(&xt));
                }
                Err(reason) => {
                    source.reject(&xt.hash(), &reason);
                    block.rejected.push((xt.hash(), reason));
                }
            }
        }
    }

    /// Builds a block on top of the latest state (`parent` must be its header): hooks, then
    /// extrinsics from `source` while they fit the block's weight, gas and size limits.
    pub fn build_block(
        &self,
        state: &dyn StateDb,
        parent: &Header,
        proposer: Address,
        timestamp_ms: u64,
        source: &mut dyn TransactionSource,
    ) -> Result<BuiltBlock> {
        let info = BlockInfo {
            number: parent.number + 1,
            timestamp_ms: timestamp_ms.max(parent.timestamp_ms),
            proposer,
            parent_hash: parent.hash(),
            genesis_hash: self.genesis_hash(),
        };
        // Its threads start while the block hooks run.
        self.executor.wake();
        let mut overlay = BlockOverlay::new(state.snapshot(parent.number)?);
        let (limits, gas_limit, hook_weight, hook_events) = self.initialize(&mut overlay, info);
        let mut block = Collected {
            extrinsics: Vec::new(),
            receipts: Vec::new(),
            rejected: Vec::new(),
            used: Usage { weight: hook_weight, ..Usage::default() },
            stats: Stats::default(),
        };
        // The round being gathered, and the most the block may use once it has run.
        let mut round: Vec<(Arc<Extrinsic>, usize)> = Vec::new();
        let mut reserved = block.used;
        while let Some((xt, len)) = source.next() {
            let bound = match self.bound(&xt, len) {
                Ok(bound) => bound,
                Err(reason) => {
                    source.reject(&xt.hash(), &reason);
                    block.rejected.push((xt.hash(), reason));
                    continue;
                }
            };
            if !reserved.plus(bound).within(&limits, gas_limit) && !round.is_empty() {
                self.close_round(
                    &mut overlay,
                    info,
                    gas_limit,
                    std::mem::take(&mut round),
                    source,
                    &mut block,
                );
                reserved = block.used;
            }
            if !reserved.plus(bound).within(&limits, gas_limit) {
                source.reject(&xt.hash(), &InvalidTransaction::ExhaustsBlock);
                if (limits.max_block_bytes as usize).saturating_sub(reserved.bytes) < 256 {
                    break;
                }
                continue;
            }
            reserved = reserved.plus(bound);
            round.push((xt, len));
        }
        if !round.is_empty() {
            self.close_round(&mut overlay, info, gas_limit, round, source, &mut block);
        }
        let block_events = self.finish(&mut overlay, info, hook_events);
        let changes = overlay.into_changes();
        let header = Header {
            parent_hash: info.parent_hash,
            number: info.number,
            timestamp_ms: info.timestamp_ms,
            state_root: state.compute_root(parent.number, &changes)?,
            extrinsics_root: ordered_root(block.extrinsics.iter().map(Encode::encode)),
            receipts_root: ordered_root(block.receipts.iter().map(Encode::encode)),
            proposer,
            gas_used: block.used.gas,
            weight_used: block.used.weight,
        };
        Ok(BuiltBlock {
            block: Block { header, extrinsics: block.extrinsics, certificate: None },
            receipts: block.receipts,
            block_events,
            changes,
            rejected: block.rejected,
            stats: block.stats,
        })
    }

    /// Executes `block` on top of the latest state (`parent` must be its header) and checks
    /// every header field it commits to. Nothing is committed.
    pub fn execute_block(
        &self,
        state: &dyn StateDb,
        parent: &Header,
        block: &Block,
    ) -> Result<ExecutedBlock> {
        let executed = self.execute_extrinsics(state, parent, block)?;
        let header = &block.header;
        let checks = [
            (
                "extrinsics root",
                header.extrinsics_root,
                ordered_root(block.extrinsics.iter().map(Encode::encode)),
            ),
            (
                "receipts root",
                header.receipts_root,
                ordered_root(executed.receipts.iter().map(Encode::encode)),
            ),
            ("state root", header.state_root, state.compute_root(parent.number, &executed.changes)?),
        ];
        for (what, claimed, computed) in checks {
            if claimed != computed {
                return Err(Error::InvalidBlock(format!(
                    "{what} mismatch: header {claimed}, computed {computed}"
                )));
            }
        }
        if header.weight_used != executed.weight_used || header.gas_used != executed.gas_used {
            return Err(Error::InvalidBlock(format!(
                "weight or gas used mismatch: header {} and {}, computed {} and {}",
                header.weight_used, header.gas_used, executed.weight_used, executed.gas_used
            )));
        }
        Ok(executed)
    }

    /// Executes `block`'s hooks and extrinsics on top of the latest state (`parent` must be its
    /// header), checking that it extends `parent` and that every extrinsic is valid and within
    /// the block's limits, but not the roots, weight and gas its header claims (see
    /// [`Runtime::execute_block`]). Nothing is committed.
    pub fn execute_extrinsics(
        &self,
        state: &dyn StateDb,
        parent: &Header,
        block: &Block,
    ) -> Result<ExecutedBlock> {
        let header = &block.header;
        let invalid = |what: String| Err(Error::InvalidBlock(what));
        if header.parent_hash != parent.hash() || header.number != parent.number + 1 {
            return invalid(format!(
                "block {} does not extend {} ({})",
                header.number,
                parent.number,
                parent.hash()
            ));
        }
        if header.timestamp_ms < parent.timestamp_ms {
            return invalid("timestamp goes backwards".into());
        }
        let info = BlockInfo {
            number: header.number,
            timestamp_ms: header.timestamp_ms,
            proposer: header.proposer,
            parent_hash: header.parent_hash,
            genesis_hash: self.genesis_hash(),
        };
        // Its threads start while the block hooks run.
        self.executor.wake();
        let mut overlay = BlockOverlay::new(state.snapshot(parent.number)?);
        let (limits, gas_limit, hook_weight, hook_events) = self.initialize(&mut overlay, info);
        let xts: Vec<(&Extrinsic, usize)> =
            block.extrinsics.iter().map(|xt| (xt, xt.encoded_size())).collect();
        let (outputs, stats) = self.run_round(&mut overlay, info, &xts);
        let mut used = Usage { weight: hook_weight, ..Usage::default() };
        let mut receipts = Vec::with_capacity(xts.len());
        for (i, ((xt, len), output)) in xts.iter().zip(outputs).enumerate() {
            let applied = output
                .and_then(|a| check_gas_limit(&a, used.gas, gas_limit).map(|()| a))
                .map_err(|e| Error::InvalidBlock(format!("extrinsic {i} ({}): {e}", xt.hash())))?;
            used = used.plus(Usage::of(xt, *len, &applied));
            receipts.push(applied.receipt);
        }
        if !used.within(&limits, u64::MAX) {
            return invalid(format!(
                "block exceeds its limits: {} bytes, weight {}",
                used.bytes, used.weight
            ));
        }
        let block_events = self.finish(&mut overlay, info, hook_events);
        let changes = overlay.into_changes();
        Ok(ExecutedBlock {
            receipts,
            block_events,
            changes,
            stats,
            weight_used: used.weight,
            gas_used: used.gas,
        })
    }
}
