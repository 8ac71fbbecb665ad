//! The runtime: an ordered list of pallets, and everything that applies extrinsics with them —
//! validation, fees, dispatch, block building and block execution.

use hyperion_executor::Executor;
use hyperion_primitives::{
    Address, Balance, DispatchError, Extrinsic, Hash, Header, Receipt, SignedExtrinsic, Weight,
};
use hyperion_state::{ordered_root, ChangeSet, Snapshot, StateDb};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use crate::block::NativeCheck;
use crate::context::{BlockInfo, BlockOverlay, Context, QueryContext, StorageRead};
use crate::fees::{holders_pool_account, FeeConfig};
use crate::metadata::{PalletMetadata, RuntimeMetadata};
use crate::pallet::{CallError, GenesisError, Origin, Pallet, QueryError};
use crate::system::{self, BlockLimits, System};
use crate::traits::{Currency, EthereumTransactions, PreparedEthereum};
use crate::{Error, InvalidTransaction, Result};

pub(crate) struct Entry {
    pub(crate) index: u8,
    pub(crate) pallet: Arc<dyn Pallet>,
    pub(crate) metadata: PalletMetadata,
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

/// An applied extrinsic: its receipt, and an Ethereum transaction's gas limit.
#[derive(Debug)]
pub(crate) struct Applied {
    pub(crate) receipt: Receipt,
    pub(crate) gas_limit: Option<u64>,
}

/// The runtime of a chain.
pub struct Runtime {
    pub(crate) entries: Vec<Entry>,
    currency: Arc<dyn Currency>,
    /// The EVM pallet's index and its handler of Ethereum transactions.
    ethereum: Option<(u8, Arc<dyn EthereumTransactions>)>,
    genesis_hash: OnceLock<Hash>,
    /// Runs a block's extrinsics (serially unless given threads).
    pub(crate) executor: Executor,
    /// Native signatures already verified (by the pool, or an earlier execution).
    pub(crate) verified: crate::verified::VerifiedSignatures,
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
        Ok(Self {
            entries,
            currency,
            ethereum: None,
            genesis_hash: OnceLock::new(),
            executor: Executor::serial(),
            verified: Default::default(),
        })
    }

    /// The same runtime, executing blocks with `executor` (MPEF on its threads).
    pub fn with_executor(mut self, executor: Executor) -> Self {
        self.executor = executor;
        self
    }

    /// The executor blocks run on.
    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    /// The same runtime, handing Ethereum transactions to `handler`: the EVM pallet, which is
    /// its pallet at `index` (its events are recorded under that index).
    pub fn with_ethereum(mut self, index: u8, handler: Arc<dyn EthereumTransactions>) -> Result<Self> {
        if !self.entries.iter().any(|e| e.index == index) {
            return Err(Error::Config(format!("no pallet at index {index} to handle Ethereum transactions")));
        }
        self.ethereum = Some((index, handler));
        Ok(self)
    }

    pub(crate) fn ethereum(
        &self,
    ) -> std::result::Result<(u8, &dyn EthereumTransactions), InvalidTransaction> {
        let (index, handler) = self.ethereum.as_ref().ok_or(InvalidTransaction::EthereumUnsupported)?;
        Ok((*index, handler.as_ref()))
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

    pub(crate) fn genesis_hash(&self) -> Hash {
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
        if let Some(unknown) =
            genesis.keys().find(|k| !self.entries.iter().any(|e| e.pallet.name() == k.as_str()))
        {
            return Err(Error::Genesis(GenesisError::new(
                unknown.clone(),
                "no pallet of this name in the runtime",
            )));
        }
        let empty = hyperion_state::MemoryStateDb::new(1);
        empty.commit(0, &ChangeSet::new(), None)?;
        let mut overlay = BlockOverlay::new(empty.snapshot(0)?);
        let info = BlockInfo {
            number: 0,
            timestamp_ms: 0,
            proposer: Address::ZERO,
            parent_hash: Hash::ZERO,
            genesis_hash: Hash::ZERO,
        };
        let mut ctx = Context::new(&mut overlay, info);
        for entry in &self.entries {
            let name = entry.pallet.name();
            ctx.set_pallet(entry.index);
            entry.pallet.genesis(&mut ctx, genesis.get(name).unwrap_or(&Value::Null)).map_err(|e| {
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
    pub fn query(
        &self,
        snapshot: Snapshot,
        method: &str,
        args: &Value,
    ) -> std::result::Result<Value, QueryError> {
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

    /// Verifies the native signatures among `xts` that this node has not verified yet, together
    /// (ed25519 batch verification, several times cheaper than one by one); the checks of
    /// [`Runtime::validate`] and of block execution that follow are then lookups. Call it
    /// before validating many extrinsics at once (a gossiped batch, a block to import). It
    /// never changes a result: only signatures that hold are remembered.
    pub fn verify_signatures<'a>(&self, xts: impl IntoIterator<Item = &'a Extrinsic>) {
        let native: Vec<&SignedExtrinsic> = xts
            .into_iter()
            .filter_map(|xt| match xt {
                Extrinsic::Native(signed) => Some(signed),
                Extrinsic::Ethereum(_) => None,
            })
            .collect();
        self.verified.verify_all(&native, self.genesis_hash(), &self.executor);
    }

    /// Checks an extrinsic against `state` for the pool: everything but the exact nonce (a nonce
    /// above the account's is returned as valid for the pool to hold; below it is stale).
    pub fn validate(
        &self,
        state: &mut dyn StorageRead,
        xt: &Extrinsic,
        len: usize,
    ) -> std::result::Result<ValidTransaction, InvalidTransaction> {
        Self::check_len(len, &Self::limits(state))?;
        let valid = match xt {
            Extrinsic::Native(native) => self.check_native(state, native, len, None)?,
            Extrinsic::Ethereum(raw) => self.ethereum()?.1.validate(state, raw)?,
        };
        if valid.nonce < valid.account_nonce {
            return Err(InvalidTransaction::StaleNonce { expected: valid.account_nonce, got: valid.nonce });
        }
        Ok(valid)
    }

    pub(crate) fn limits(state: &mut dyn StorageRead) -> BlockLimits {
        system::BLOCK_LIMITS.get(state).expect("block limits are set at genesis")
    }

    fn fee_config(state: &mut dyn StorageRead) -> FeeConfig {
        system::FEE_CONFIG.get(state).expect("fee config is set at genesis")
    }

    fn check_len(len: usize, limits: &BlockLimits) -> std::result::Result<(), InvalidTransaction> {
        if len > limits.max_extrinsic_bytes as usize {
            return Err(InvalidTransaction::TooLarge { size: len, max: limits.max_extrinsic_bytes as usize });
        }
        Ok(())
    }

    /// Checks a native extrinsic against `state`; `sender`, when given, is `xt.sender()` worked
    /// out before (it hashes the signer's key).
    fn check_native(
        &self,
        state: &mut dyn StorageRead,
        xt: &SignedExtrinsic,
        len: usize,
        checked: Option<NativeCheck>,
    ) -> std::result::Result<ValidTransaction, InvalidTransaction> {
        let entry = self.entry_of(xt.call.pallet, xt.call.call)?;
        let weight = entry.pallet.call_weight(xt.call.call, &xt.call.args).map_err(|e| match e {
            DispatchError::CallNotFound => {
                InvalidTransaction::UnknownCall { pallet: xt.call.pallet, call: xt.call.call }
            }
            _ => InvalidTransaction::BadArguments,
        })?;
        let sender = match checked {
            Some(checked) => {
                debug_assert_eq!(
                    checked.sender,
                    xt.sender(),
                    "a sender worked out before is the extrinsic's"
                );
                checked.signature_valid.then_some(checked.sender)
            }
            // The sender comes with the verdict (hashed once, remembered with the signature).
            None => self.verified.verified_sender(xt, self.genesis_hash()),
        };
        let sender = sender.ok_or(InvalidTransaction::BadSignature)?;
        let account_nonce = system::ACCOUNT_NONCE.get_or_default(state, &sender);
        let fee = Self::fee_config(state).fee(len, weight);
        let total = fee.saturating_add(xt.tip);
        let balance = self.currency.free_balance(state, &sender);
        if balance < total {
            return Err(InvalidTransaction::CannotPayFee { fee: total, balance });
        }
        Ok(ValidTransaction { sender, nonce: xt.nonce, account_nonce, fee, tip: xt.tip, weight })
    }

    pub(crate) fn entry_of(&self, pallet: u8, call: u8) -> std::result::Result<&Entry, InvalidTransaction> {
        self.entries
            .iter()
            .find(|e| e.index == pallet && e.metadata.calls.iter().any(|c| c.index == call))
            .ok_or(InvalidTransaction::UnknownCall { pallet, call })
    }

    /// Applies one extrinsic in `ctx`: checks it (exact nonce), charges its fee, bumps the nonce,
    /// dispatches the call in a storage transaction (Ethereum transactions: hands them to the
    /// EVM pallet, which does the same). An invalid extrinsic changes nothing.
    pub fn apply_extrinsic(
        &self,
        ctx: &mut Context<'_>,
        xt: &Extrinsic,
        len: usize,
    ) -> std::result::Result<Receipt, InvalidTransaction> {
        self.apply(ctx, xt, len, None, None).map(|applied| applied.receipt)
    }

    /// [`Runtime::apply_extrinsic`], also returning an Ethereum transaction's gas limit.
    /// `checked`, when given, is the sender of a native `xt` and the verdict on its signature,
    /// worked out before; `prepared`, an Ethereum `xt` as the EVM pallet prepared it.
    pub(crate) fn apply(
        &self,
        ctx: &mut Context<'_>,
        xt: &Extrinsic,
        len: usize,
        checked: Option<NativeCheck>,
        prepared: Option<&PreparedEthereum>,
    ) -> std::result::Result<Applied, InvalidTransaction> {
        Self::check_len(len, &Self::limits(ctx))?;
        let native = match xt {
            Extrinsic::Native(native) => native,
            Extrinsic::Ethereum(raw) => {
                let (index, handler) = self.ethereum()?;
                ctx.set_pallet(index);
                ctx.begin();
                let outcome = handler.apply(ctx, raw, prepared);
                match &outcome {
                    Ok(_) => ctx.commit(),
                    Err(_) => ctx.rollback(),
                }
                ctx.set_pallet(0);
                let outcome = outcome?;
                let receipt = Receipt {
                    success: outcome.success,
                    error: outcome.error,
                    fee: outcome.fee,
                    weight: outcome.gas_used,
                    events: ctx.take_events(),
                };
                return Ok(Applied { receipt, gas_limit: Some(outcome.gas_limit) });
            }
        };
        let valid = self.check_native(ctx, native, len, checked)?;
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
        let outcome =
            entry.pallet.dispatch(ctx, Origin::Signed(valid.sender), native.call.call, &native.call.args);
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
        let receipt = Receipt {
            success: error.is_none(),
            error,
            fee: valid.fee.saturating_add(valid.tip),
            weight,
            events: ctx.take_events(),
        };
        Ok(Applied { receipt, gas_limit: None })
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
}
