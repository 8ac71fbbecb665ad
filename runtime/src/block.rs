//! Block building (proposer) and block execution (validator, import, replay).
//!
//! Both run the same steps: `on_initialize` of every pallet in index order, the extrinsics in
//! order (each checked, charged and dispatched by [`Runtime::apply_extrinsic`]), `on_finalize`
//! of every pallet, then the roots. Native extrinsics count against the block's weight limit;
//! Ethereum transactions against the EVM pallet's block gas limit, which the pallet enforces
//! (the header records both totals). The loop over extrinsics is sequential; the parallel
//! executor replaces it behind these two functions.

use hyperion_primitives::{Address, Block, EventRecord, Extrinsic, Hash, Header, Receipt, Weight};
use hyperion_state::{ordered_root, ChangeSet, StateDb};
use parity_scale_codec::Encode;
use std::sync::Arc;

use crate::context::{BlockInfo, BlockOverlay, Context};
use crate::system;
use crate::{Error, InvalidTransaction, Result, Runtime};

/// Where the block builder takes extrinsics from (the mempool), best first.
pub trait TransactionSource {
    /// The next candidate and its encoded length, or `None` when there is none left.
    fn next(&mut self) -> Option<(Arc<Extrinsic>, usize)>;
    /// The last candidate was not included for `reason`; the source should not offer later
    /// extrinsics of the same sender in this block.
    fn reject(&mut self, reason: &InvalidTransaction);
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

    /// Builds a block on top of the latest state (`parent` must be its header): hooks, then
    /// extrinsics from `source` while they fit the block's weight and size limits.
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
        };
        let mut overlay = BlockOverlay::new(state.snapshot(parent.number)?);
        let mut ctx = Context::new(&mut overlay, info);
        let limits = Self::limits(&mut ctx);
        let mut weight = self.run_hooks(&mut ctx, true);
        let hook_events = ctx.take_events();
        let (mut extrinsics, mut receipts, mut rejected) = (Vec::new(), Vec::new(), Vec::new());
        let (mut bytes, mut gas) = (0usize, 0u64);
        while let Some((xt, len)) = source.next() {
            if bytes + len > limits.max_block_bytes as usize {
                if limits.max_block_bytes as usize - bytes < 256 {
                    break;
                }
                source.reject(&InvalidTransaction::ExhaustsBlock);
                continue;
            }
            let fits = match xt.as_ref() {
                Extrinsic::Native(n) => self
                    .entry_of(n.call.pallet, n.call.call)
                    .ok()
                    .and_then(|e| e.pallet.call_weight(n.call.call, &n.call.args).ok())
                    .is_none_or(|w| weight.saturating_add(w) <= limits.max_block_weight),
                Extrinsic::Ethereum(_) => true,
            };
            if !fits {
                source.reject(&InvalidTransaction::ExhaustsBlock);
                continue;
            }
            match self.apply_extrinsic(&mut ctx, &xt, len) {
                Ok(receipt) => {
                    match xt.as_ref() {
                        Extrinsic::Native(_) => weight = weight.saturating_add(receipt.weight),
                        Extrinsic::Ethereum(_) => gas = gas.saturating_add(receipt.weight),
                    }
                    bytes += len;
                    receipts.push(receipt);
                    extrinsics.push(Extrinsic::clone(&xt));
                }
                Err(reason) => {
                    rejected.push((xt.hash(), reason.clone()));
                    source.reject(&reason);
                }
            }
        }
        let block_events = self.finish(ctx, hook_events);
        let changes = overlay.into_changes();
        let header = Header {
            parent_hash: info.parent_hash,
            number: info.number,
            timestamp_ms: info.timestamp_ms,
            state_root: state.compute_root(parent.number, &changes)?,
            extrinsics_root: ordered_root(extrinsics.iter().map(Encode::encode)),
            receipts_root: ordered_root(receipts.iter().map(Encode::encode)),
            proposer,
            gas_used: gas,
            weight_used: weight,
        };
        Ok(BuiltBlock {
            block: Block { header, extrinsics, certificate: None },
            receipts,
            block_events,
            changes,
            rejected,
        })
    }

    /// Runs `on_finalize` and records the block number; returns the hook events.
    fn finish(&self, mut ctx: Context<'_>, mut block_events: Vec<EventRecord>) -> Vec<EventRecord> {
        self.run_hooks(&mut ctx, false);
        let number = ctx.block().number;
        system::NUMBER.put(&mut ctx, &number);
        block_events.extend(ctx.take_events());
        block_events
    }

    /// Executes `block` on top of the latest state (`parent` must be its header) and checks
    /// every header field it commits to. Nothing is committed.
    pub fn execute_block(
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
        };
        let mut overlay = BlockOverlay::new(state.snapshot(parent.number)?);
        let mut ctx = Context::new(&mut overlay, info);
        let limits = Self::limits(&mut ctx);
        let mut weight = self.run_hooks(&mut ctx, true);
        let hook_events = ctx.take_events();
        let mut receipts = Vec::with_capacity(block.extrinsics.len());
        let (mut bytes, mut gas) = (0usize, 0u64);
        for (i, xt) in block.extrinsics.iter().enumerate() {
            let len = xt.encoded_size();
            bytes += len;
            let receipt = self
                .apply_extrinsic(&mut ctx, xt, len)
                .map_err(|e| Error::InvalidBlock(format!("extrinsic {i} ({}): {e}", xt.hash())))?;
            match xt {
                Extrinsic::Native(_) => weight = weight.saturating_add(receipt.weight),
                Extrinsic::Ethereum(_) => gas = gas.saturating_add(receipt.weight),
            }
            receipts.push(receipt);
        }
        if bytes > limits.max_block_bytes as usize || weight > limits.max_block_weight {
            return invalid(format!("block exceeds its limits: {bytes} bytes, weight {weight}"));
        }
        let block_events = self.finish(ctx, hook_events);
        let changes = overlay.into_changes();
        let checks = [
            (
                "extrinsics root",
                header.extrinsics_root,
                ordered_root(block.extrinsics.iter().map(Encode::encode)),
            ),
            ("receipts root", header.receipts_root, ordered_root(receipts.iter().map(Encode::encode))),
            ("state root", header.state_root, state.compute_root(parent.number, &changes)?),
        ];
        for (what, claimed, computed) in checks {
            if claimed != computed {
                return invalid(format!("{what} mismatch: header {claimed}, computed {computed}"));
            }
        }
        if header.weight_used != weight || header.gas_used != gas {
            return invalid(format!(
                "weight or gas used mismatch: header {} and {}, computed {weight} and {gas}",
                header.weight_used, header.gas_used
            ));
        }
        Ok(ExecutedBlock { receipts, block_events, changes })
    }
}
