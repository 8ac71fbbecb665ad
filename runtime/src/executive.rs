//! The runtime: an ordered list of pallets, and everything that applies extrinsics with them —
//! validation, fees, dispatch, block building and block execution.

use hyperion_primitives::{
    Address, Balance, Block, DispatchError, EventRecord, Extrinsic, Hash, Header, Receipt,
    SignedExtrinsic, Weight,
};
use hyperion_state::{ordered_root, ChangeSet, Snapshot, StateDb};
use parity_scale_codec::Encode;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use crate::context::{BlockInfo, BlockOverlay, Context, QueryContext, StateView, StorageRead, StorageWrite};
use crate::fees::{holders_pool_account, FeeConfig};
use crate::metadata::{PalletMetadata, RuntimeMetadata};
use crate::pallet::{CallError, GenesisError, Origin, Pallet, QueryError};
use crate::system::{self, BlockLimits, System};
use crate::traits::Currency;
use crate::{Error, InvalidTransaction, Result};

struct Entry {
    index: u8,
    pallet: Arc<dyn Pallet>,
    metadata: PalletMetadata,
}

/// A checked extrinsic: who sends it, at which nonce, what it costs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ValidTransaction {
    /// The sending account.
    pub sender: Address,
    /// The nonce it uses.
    pub nonce: u64,
    /// The sender's next nonce in the state it was checked against.
    pub account_nonce: u64,
    /// The fee it pays, tip excluded.
    pub fee: Balance,
    /// The tip, which orders the pool.
    pub tip: Balance,
    /// Its weight.
    pub weight: Weight,
}

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

/// The runtime of a chain.
pub struct Runtime {
    entries: Vec<Entry>,
    currency: Arc<dyn Currency>,
    genesis_hash: OnceLock<Hash>,
}

impl Runtime {
    /// A runtime with the system pallet at index 0 and `pallets` at their indices (1 and up),
    /// paying fees through `currency`. Indices and names must be unique.
    pub fn new(currency: Arc<dyn Currency>, pallets: Vec<(u8, Arc<dyn Pallet>)>) -> Result<Self> {
        let mut entries = vec![Self::entry(0, Arc::new(System))];
        let mut names = BTreeSet::from(["system"]);
        for (index, pallet) in pallets {
            if index == 0 || entries.iter().any(|e| e.index == index) {
                return Err(Error::Config(format!("pallet index {index} is reserved or taken")));
            }
            if !names.insert(pallet.name()) {
                return Err(Error::Config(format!("pallet name {} is taken", pallet.name())));
            }
            entries.push(Self::entry(index, pallet));
        }
        entries.sort_by_key(|e| e.index);
        Ok(Self { entries, currency, genesis_hash: OnceLock::new() })
    }

    fn entry(index: u8, pallet: Arc<dyn Pallet>) -> Entry {
        let mut metadata = pallet.metadata();
        metadata.index = index;
        Entry { index, pallet, metadata }
    }

    /// The metadata of every pallet.
    pub fn metadata(&self) -> RuntimeMetadata {
        RuntimeMetadata { version: 1, pallets: self.entries.iter().map(|e| e.metadata.clone()).collect() }
    }

    /// Sets the genesis hash that signatures must cover. Called once, after genesis is built.
    pub fn set_genesis_hash(&self, hash: Hash) {
        let stored = *self.genesis_hash.get_or_init(|| hash);
        assert_eq!(stored, hash, "the genesis hash is set once");
    }

    fn genesis_hash(&self) -> Hash {
        *self.genesis_hash.get().expect("genesis hash set before any extrinsic is checked")
    }

    /// Each pallet's default genesis section, keyed by pallet name.
    pub fn default_genesis(&self) -> serde_json::Map<String, Value> {
        self.entries
            .iter()
            .map(|e| (e.pallet.name().to_string(), e.pallet.default_genesis()))
            .filter(|(_, v)| !v.is_null())
            .collect()
    }

    /// The genesis state from a chain spec's `genesis` object (one section per pallet name).
    /// Unknown sections are refused; errors name the field, e.g. `balances.balances[1]`.
    pub fn genesis_changes(&self, genesis: &serde_json::Map<String, Value>) -> Result<ChangeSet> {
        if let Some(unknown) = genesis.keys().find(|k| !self.entries.iter().any(|e| e.pallet.name() == k.as_str())) {
            return Err(Error::Genesis(GenesisError::new(unknown.clone(), "no pallet of this name in the runtime")));
        }
        let empty = hyperion_state::MemoryStateDb::new(1);
        empty.commit(0, &ChangeSet::new(), None)?;
        let mut overlay = BlockOverlay::new(empty.snapshot(0)?);
        let info = BlockInfo { number: 0, timestamp_ms: 0, proposer: Address::ZERO, parent_hash: Hash::ZERO };
        let mut ctx = Context::new(&mut overlay, info);
        for entry in &self.entries {
            let name = entry.pallet.name();
            ctx.set_pallet(entry.index);
            entry
                .pallet
                .genesis(&mut ctx, genesis.get(name).unwrap_or(&Value::Null))
                .map_err(|e| {
                    let field = if e.field.is_empty() { name.to_string() } else { format!("{name}.{}", e.field) };
                    Error::Genesis(GenesisError { field, message: e.message })
                })?;
        }
        drop(ctx);
        Ok(overlay.into_changes())
    }

    /// The genesis header for a genesis state root.
    pub fn genesis_header(state_root: Hash, timestamp_ms: u64) -> Header {
        Header {
            state_root,
            timestamp_ms,
            extrinsics_root: ordered_root(Vec::<Vec<u8>>::new()),
            receipts_root: ordered_root(Vec::<Vec<u8>>::new()),
            ..Header::default()
        }
    }

    /// Answers `method` (`pallet_query`, e.g. `balances_account`) against `snapshot`.
    pub fn query(&self, snapshot: Snapshot, method: &str, args: &Value) -> std::result::Result<Value, QueryError> {
        let (pallet, name) = method
            .split_once('_')
            .ok_or_else(|| QueryError::Unknown(format!("{method} (expected pallet_query)")))?;
        let entry = self
            .entries
            .iter()
            .find(|e| e.pallet.name() == pallet)
            .ok_or_else(|| QueryError::Unknown(format!("no pallet {pallet}")))?;
        entry.pallet.query(&mut QueryContext::new(snapshot), name, args)
    }

    /// Checks an extrinsic against `state` for the pool: everything but the exact nonce (a nonce
    /// above the account's is returned as valid for the pool to hold; below it is stale).
    pub fn validate(
        &self,
        state: &mut dyn StorageRead,
        xt: &Extrinsic,
        len: usize,
    ) -> std::result::Result<ValidTransaction, InvalidTransaction> {
        let limits = Self::limits(state);
        let native = self.check_shape(xt, len, &limits)?;
        let valid = self.check_native(state, native, len)?;
        if valid.nonce < valid.account_nonce {
            return Err(InvalidTransaction::StaleNonce { expected: valid.account_nonce, got: valid.nonce });
        }
        Ok(valid)
    }

    fn limits(state: &mut dyn StorageRead) -> BlockLimits {
        system::BLOCK_LIMITS.get(state).expect("block limits are set at genesis")
    }

    fn fee_config(state: &mut dyn StorageRead) -> FeeConfig {
        system::FEE_CONFIG.get(state).expect("fee config is set at genesis")
    }

    fn check_shape<'x>(
        &self,
        xt: &'x Extrinsic,
        len: usize,
        limits: &BlockLimits,
    ) -> std::result::Result<&'x SignedExtrinsic, InvalidTransaction> {
        if len > limits.max_extrinsic_bytes as usize {
            return Err(InvalidTransaction::TooLarge { size: len, max: limits.max_extrinsic_bytes as usize });
        }
        match xt {
            Extrinsic::Native(native) => Ok(native),
            Extrinsic::Ethereum(_) => Err(InvalidTransaction::EthereumUnsupported),
        }
    }

    fn check_native(
        &self,
        state: &mut dyn StorageRead,
        xt: &SignedExtrinsic,
        len: usize,
    ) -> std::result::Result<ValidTransaction, InvalidTransaction> {
        let entry = self.entry_of(xt.call.pallet, xt.call.call)?;
        let weight = entry.pallet.call_weight(xt.call.call, &xt.call.args).map_err(|e| match e {
            DispatchError::CallNotFound => InvalidTransaction::UnknownCall { pallet: xt.call.pallet, call: xt.call.call },
            _ => InvalidTransaction::BadArguments,
        })?;
        if !xt.verify(self.genesis_hash()) {
            return Err(InvalidTransaction::BadSignature);
        }
        let sender = xt.sender();
        let account_nonce = system::ACCOUNT_NONCE.get_or_default(state, &sender);
        let fee = Self::fee_config(state).fee(len, weight);
        let total = fee.saturating_add(xt.tip);
        let balance = self.currency.free_balance(state, &sender);
        if balance < total {
            return Err(InvalidTransaction::CannotPayFee { fee: total, balance });
        }
        Ok(ValidTransaction { sender, nonce: xt.nonce, account_nonce, fee, tip: xt.tip, weight })
    }

    fn entry_of(&self, pallet: u8, call: u8) -> std::result::Result<&Entry, InvalidTransaction> {
        self.entries
            .iter()
            .find(|e| e.index == pallet && e.metadata.calls.iter().any(|c| c.index == call))
            .ok_or(InvalidTransaction::UnknownCall { pallet, call })
    }

    /// Applies one extrinsic in `ctx`: checks it (exact nonce), charges its fee, bumps the nonce,
    /// dispatches the call in a storage transaction. An invalid extrinsic changes nothing.
    pub fn apply_extrinsic(
        &self,
        ctx: &mut Context<'_>,
        xt: &Extrinsic,
        len: usize,
    ) -> std::result::Result<Receipt, InvalidTransaction> {
        let limits = Self::limits(ctx);
        let native = self.check_shape(xt, len, &limits)?;
        let valid = self.check_native(ctx, native, len)?;
        if valid.nonce != valid.account_nonce {
            return Err(if valid.nonce < valid.account_nonce {
                InvalidTransaction::StaleNonce { expected: valid.account_nonce, got: valid.nonce }
            } else {
                InvalidTransaction::FutureNonce { expected: valid.account_nonce, got: valid.nonce }
            });
        }
        ctx.set_pallet(0);
        self.charge_fee(ctx, &valid);
        system::ACCOUNT_NONCE.insert(ctx, &valid.sender, &(valid.nonce + 1));

        let entry = self.entry_of(native.call.pallet, native.call.call)?;
        ctx.set_pallet(entry.index);
        ctx.begin();
        let outcome = entry.pallet.dispatch(ctx, Origin::Signed(valid.sender), native.call.call, &native.call.args);
        let error = match outcome {
            Ok(()) => {
                ctx.commit();
                None
            }
            Err(e) => {
                ctx.rollback();
                Some(match e {
                    CallError::Module(error) => DispatchError::Module { pallet: entry.index, error },
                    CallError::Dispatch(e) => e,
                })
            }
        };
        ctx.set_pallet(0);
        let weight = valid.weight;
        ctx.deposit_event(&match error {
            None => system::Event::ExtrinsicSuccess { weight },
            Some(_) => system::Event::ExtrinsicFailed { weight },
        });
        Ok(Receipt {
            success: error.is_none(),
            error,
            fee: valid.fee.saturating_add(valid.tip),
            weight,
            events: ctx.take_events(),
        })
    }

    /// Withdraws the fee and tip (checked payable) and distributes them.
    fn charge_fee(&self, ctx: &mut Context<'_>, valid: &ValidTransaction) {
        let shares = Self::fee_config(ctx).shares(valid.fee, valid.tip);
        let c = &self.currency;
        let proposer = ctx.block().proposer;
        let paid = c
            .withdraw(ctx, &valid.sender, shares.proposer + shares.holders_pool)
            .and_then(|()| c.burn(ctx, &valid.sender, shares.burn))
            .and_then(|()| c.deposit(ctx, &proposer, shares.proposer))
            .and_then(|()| c.deposit(ctx, &holders_pool_account(), shares.holders_pool));
        assert!(paid.is_ok(), "a fee checked payable must be payable: {paid:?}");
        ctx.deposit_event(&system::Event::FeePaid { who: valid.sender, fee: valid.fee, tip: valid.tip });
    }

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
        let info = BlockInfo { number: parent.number + 1, timestamp_ms: timestamp_ms.max(parent.timestamp_ms), proposer, parent_hash: parent.hash() };
        let mut overlay = BlockOverlay::new(state.snapshot(parent.number)?);
        let mut ctx = Context::new(&mut overlay, info);
        let limits = Self::limits(&mut ctx);
        let mut weight = self.run_hooks(&mut ctx, true);
        let hook_events = ctx.take_events();
        let (mut extrinsics, mut receipts, mut rejected) = (Vec::new(), Vec::new(), Vec::new());
        let mut bytes = 0usize;
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
                    weight = weight.saturating_add(receipt.weight);
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
            gas_used: 0,
            weight_used: weight,
        };
        Ok(BuiltBlock { block: Block { header, extrinsics, certificate: None }, receipts, block_events, changes, rejected })
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
    pub fn execute_block(&self, state: &dyn StateDb, parent: &Header, block: &Block) -> Result<ExecutedBlock> {
        let header = &block.header;
        let invalid = |what: String| Err(Error::InvalidBlock(what));
        if header.parent_hash != parent.hash() || header.number != parent.number + 1 {
            return invalid(format!("block {} does not extend {} ({})", header.number, parent.number, parent.hash()));
        }
        if header.timestamp_ms < parent.timestamp_ms {
            return invalid("timestamp goes backwards".into());
        }
        let info = BlockInfo { number: header.number, timestamp_ms: header.timestamp_ms, proposer: header.proposer, parent_hash: header.parent_hash };
        let mut overlay = BlockOverlay::new(state.snapshot(parent.number)?);
        let mut ctx = Context::new(&mut overlay, info);
        let limits = Self::limits(&mut ctx);
        let mut weight = self.run_hooks(&mut ctx, true);
        let hook_events = ctx.take_events();
        let mut receipts = Vec::with_capacity(block.extrinsics.len());
        let mut bytes = 0usize;
        for (i, xt) in block.extrinsics.iter().enumerate() {
            let len = xt.encoded_size();
            bytes += len;
            let receipt = self
                .apply_extrinsic(&mut ctx, xt, len)
                .map_err(|e| Error::InvalidBlock(format!("extrinsic {i} ({}): {e}", xt.hash())))?;
            weight = weight.saturating_add(receipt.weight);
            receipts.push(receipt);
        }
        if bytes > limits.max_block_bytes as usize || weight > limits.max_block_weight {
            return invalid(format!("block exceeds its limits: {bytes} bytes, weight {weight}"));
        }
        let block_events = self.finish(ctx, hook_events);
        let changes = overlay.into_changes();
        let checks = [
            ("extrinsics root", header.extrinsics_root, ordered_root(block.extrinsics.iter().map(Encode::encode))),
            ("receipts root", header.receipts_root, ordered_root(receipts.iter().map(Encode::encode))),
            ("state root", header.state_root, state.compute_root(parent.number, &changes)?),
        ];
        for (what, claimed, computed) in checks {
            if claimed != computed {
                return invalid(format!("{what} mismatch: header {claimed}, computed {computed}"));
            }
        }
        if header.weight_used != weight || header.gas_used != 0 {
            return invalid(format!("weight used mismatch: header {}, computed {weight}", header.weight_used));
        }
        Ok(ExecutedBlock { receipts, block_events, changes })
    }
}

impl StorageRead for dyn StateView + '_ {
    fn read_raw(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.read(key)
    }
}

impl StorageWrite for dyn StateView + '_ {
    fn write_raw(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.write(key, value)
    }
}
