//! The pallet: storage, events, errors, genesis, block hooks, queries.

use hyperion_primitives::{Address, Hash, Weight};
use hyperion_runtime::metadata::{
    Field, PalletMetadata, QueryMetadata, StorageMetadata, TypeDef, VariantMetadata,
};
use hyperion_runtime::storage::StorageHasher;
use hyperion_runtime::system::ACCOUNT_NONCE;
use hyperion_runtime::{
    query_arg, CallError, CallResult, Context, Currency, GenesisError, Identity, Origin, Pallet,
    QueryContext, QueryError, StorageMap, StorageValue, StorageWrite,
};
use hyperion_vm::keys::{code_hash_key, code_key, storage_key};
use hyperion_vm::{keccak256, CodeCache, EvmState, SenderCache, Vm};
use parity_scale_codec::{Decode, Encode};
use serde_json::{json, Value};
use std::sync::Arc;

use crate::config::{self, next_base_fee, word, EvmConfig, EvmGenesis};
use crate::state::{to_eth, ChainState};

pub(crate) const PREFIX: &str = "Evm";

/// The configuration from the chain spec.
pub const CONFIG: StorageValue<EvmConfig> = StorageValue::new(PREFIX, "Config");
/// The current block's base fee, wei per gas (set when the block starts).
pub const BASE_FEE: StorageValue<u64> = StorageValue::new(PREFIX, "BaseFee");
/// Gas used by the current block's Ethereum transactions so far (its total once it ends).
pub const GAS_USED: StorageValue<u64> = StorageValue::new(PREFIX, "GasUsed");
/// Hashes of the last [`BLOCK_HASH_WINDOW`] blocks, for BLOCKHASH.
pub const BLOCK_HASHES: StorageMap<u64, Hash, Identity> = StorageMap::new(PREFIX, "BlockHashes");
/// Blocks whose hashes BLOCKHASH can return.
pub const BLOCK_HASH_WINDOW: u64 = 256;

/// Events.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub enum Event {
    /// An Ethereum transaction was executed.
    #[codec(index = 0)]
    Executed {
        /// Its hash (`keccak256` of its encoding).
        hash: Hash,
        /// Its sender.
        from: Address,
        /// Its recipient; `None` for a contract creation.
        to: Option<Address>,
        /// The contract it created.
        contract: Option<Address>,
        /// Whether it succeeded.
        success: bool,
        /// Gas it used.
        gas_used: u64,
        /// Wei it paid per gas.
        effective_gas_price: u128,
    },
    /// A log emitted by a contract.
    #[codec(index = 1)]
    Log {
        /// The emitting contract.
        address: Address,
        /// Its topics (at most 4).
        topics: Vec<Hash>,
        /// Its data.
        data: Vec<u8>,
    },
    /// A block started: the Ethereum header fields it fixes (a block event, emitted every block).
    #[codec(index = 2)]
    BlockStarted {
        /// Its base fee, wei per gas.
        base_fee: u64,
        /// Its gas limit.
        gas_limit: u64,
    },
}

/// Errors, as receipts report a failed execution (by index).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Error {
    /// The execution reverted (REVERT); the revert data is available through `eth_call`.
    Reverted = 0,
    /// The execution failed: out of gas, an invalid opcode, a stack error...
    Halted = 1,
}

/// The EVM pallet, at index `index` of the runtime, paying and charging through `currency`.
pub struct Evm {
    pub(crate) index: u8,
    pub(crate) currency: Arc<dyn Currency>,
    /// Contract code analysed by earlier transactions, shared by the execution threads.
    pub(crate) code_cache: Arc<CodeCache>,
    /// Senders recovered from transactions seen before (in the pool, in earlier blocks).
    pub(crate) senders: Arc<SenderCache>,
}

impl Evm {
    /// The pallet at `index` of the runtime, over the ledger `currency`.
    pub fn new(index: u8, currency: Arc<dyn Currency>) -> Self {
        Self {
            index,
            currency,
            code_cache: Arc::new(CodeCache::default()),
            senders: Arc::new(SenderCache::default()),
        }
    }

    /// The stored configuration (set at genesis).
    pub fn config(s: &mut (impl hyperion_runtime::StorageRead + ?Sized)) -> EvmConfig {
        CONFIG.get(s).expect("the EVM configuration is set at genesis")
    }

    /// The rules of this chain.
    pub fn vm(s: &mut (impl hyperion_runtime::StorageRead + ?Sized)) -> Vm {
        let config = Self::config(s);
        Vm::new(config.fork(), config.chain_id)
    }

    /// The ledger the pallet pays and charges through.
    pub fn currency(&self) -> &dyn Currency {
        self.currency.as_ref()
    }

    fn write_genesis(&self, ctx: &mut Context<'_>, genesis: &EvmGenesis) -> Result<(), GenesisError> {
        let config = config::check(genesis).map_err(|(field, message)| GenesisError::new(field, message))?;
        CONFIG.put(ctx, &config);
        BASE_FEE.put(ctx, &genesis.initial_base_fee);
        GAS_USED.put(ctx, &0);
        for (address, account) in &genesis.accounts {
            let field = |what: &str| format!("accounts.{address}.{what}");
            if account.balance > 0 {
                let free = self.currency.free_balance(ctx, address);
                let total = free
                    .checked_add(account.balance)
                    .ok_or_else(|| GenesisError::new(field("balance"), "overflows"))?;
                self.currency
                    .set_free(ctx, address, total)
                    .map_err(|e| GenesisError::new(field("balance"), format!("{e:?}")))?;
            }
            if account.nonce > 0 {
                ACCOUNT_NONCE.insert(ctx, address, &account.nonce);
            }
            let eth = to_eth(*address);
            if !account.code.is_empty() {
                let hash = keccak256(&account.code);
                ctx.write_raw(code_key(hash), Some(account.code.to_vec()));
                ctx.write_raw(code_hash_key(eth), Some(hash.to_vec()));
            }
            for (slot, value) in &account.storage {
                if !word(value).is_zero() {
                    ctx.write_raw(storage_key(eth, word(slot)), Some(value.to_vec()));
                }
            }
        }
        Ok(())
    }
}

impl Pallet for Evm {
    fn name(&self) -> &'static str {
        "evm"
    }

    fn metadata(&self) -> PalletMetadata {
        metadata()
    }

    fn call_weight(&self, _call: u8, _args: &[u8]) -> Result<Weight, hyperion_primitives::DispatchError> {
        Err(hyperion_primitives::DispatchError::CallNotFound)
    }

    /// Ethereum transactions arrive as their own extrinsics ([`hyperion_runtime::EthereumTransactions`]):
    /// the pallet has no calls.
    fn dispatch(&self, _ctx: &mut Context<'_>, _origin: Origin, _call: u8, _args: &[u8]) -> CallResult {
        Err(CallError::Dispatch(hyperion_primitives::DispatchError::CallNotFound))
    }

    /// Records the parent's hash for BLOCKHASH, sets this block's base fee from the parent's gas
    /// use (EIP-1559), and starts counting gas.
    fn on_initialize(&self, ctx: &mut Context<'_>) -> Weight {
        let info = *ctx.block();
        if info.number >= 1 {
            BLOCK_HASHES.insert(ctx, &(info.number - 1), &info.parent_hash);
            if let Some(expired) = (info.number - 1).checked_sub(BLOCK_HASH_WINDOW) {
                BLOCK_HASHES.remove(ctx, &expired);
            }
        }
        let config = Self::config(ctx);
        if info.number >= 2 {
            let (base_fee, used) = (BASE_FEE.get_or_default(ctx), GAS_USED.get_or_default(ctx));
            BASE_FEE.put(ctx, &next_base_fee(base_fee, used, config.gas_limit, config.min_base_fee));
        }
        GAS_USED.put(ctx, &0);
        let base_fee = BASE_FEE.get_or_default(ctx);
        ctx.deposit_event(&Event::BlockStarted { base_fee, gas_limit: config.gas_limit });
        0
    }

    fn genesis(&self, ctx: &mut Context<'_>, config: &Value) -> Result<(), GenesisError> {
        let genesis: EvmGenesis = if config.is_null() {
            EvmGenesis::default()
        } else {
            serde_json::from_value(config.clone()).map_err(|e| GenesisError::new("", e.to_string()))?
        };
        self.write_genesis(ctx, &genesis)
    }

    fn default_genesis(&self) -> Value {
        serde_json::to_value(EvmGenesis::default()).expect("serialisable")
    }

    fn query(&self, ctx: &mut QueryContext, name: &str, args: &Value) -> Result<Value, QueryError> {
        match name {
            "config" => {
                let config = Self::config(ctx);
                Ok(json!({
                    "chainId": config.chain_id,
                    "fork": config.fork().name(),
                    "gasLimit": config.gas_limit,
                    "minBaseFee": config.min_base_fee,
                    "baseFee": BASE_FEE.get_or_default(ctx),
                    "gasUsed": GAS_USED.get_or_default(ctx),
                }))
            }
            "account" => {
                let who = query_arg::<Address>(args, "who")?;
                let account = ChainState::new(ctx, self.currency.as_ref())
                    .account(to_eth(who))
                    .map_err(|e| QueryError::BadArguments(e.to_string()))?
                    .unwrap_or_default();
                Ok(json!({
                    "balance": account.balance.to_string(),
                    "nonce": account.nonce,
                    "codeHash": account.code_hash.to_string(),
                }))
            }
            other => Err(QueryError::Unknown(format!("evm.{other}"))),
        }
    }
}

fn metadata() -> PalletMetadata {
    let storage = |name: &str, value: TypeDef, docs: &str| StorageMetadata {
        name: name.into(),
        keys: vec![],
        value,
        docs: docs.into(),
    };
    let mut block_hashes = storage("BlockHashes", TypeDef::Hash, "Hashes of the last 256 blocks, by number.");
    block_hashes.keys = vec![hyperion_runtime::metadata::StorageKeyMetadata {
        ty: TypeDef::U64,
        hasher: Identity::NAME.into(),
    }];
    PalletMetadata {
        name: "evm".into(),
        index: 0,
        storage_prefix: PREFIX.into(),
        docs: "Ethereum transactions executed by MetisVM (revm) over the shared ledger; code and \
               storage under the keys of hyperion_vm::keys."
            .into(),
        calls: vec![],
        events: vec![
            VariantMetadata::new(
                0,
                "Executed",
                vec![
                    Field::new("hash", "Hash"),
                    Field::new("from", "Address"),
                    Field::new("to", "Option<Address>"),
                    Field::new("contract", "Option<Address>"),
                    Field::new("success", "bool"),
                    Field::new("gas_used", "u64"),
                    Field::new("effective_gas_price", "u128"),
                ],
                "An Ethereum transaction was executed.",
            ),
            VariantMetadata::new(
                2,
                "BlockStarted",
                vec![Field::new("base_fee", "u64"), Field::new("gas_limit", "u64")],
                "A block started with this base fee and gas limit.",
            ),
            VariantMetadata::new(
                1,
                "Log",
                vec![
                    Field::new("address", "Address"),
                    Field::new("topics", "Vec<Hash>"),
                    Field::new("data", "Bytes"),
                ],
                "A log emitted by a contract.",
            ),
        ],
        errors: vec![
            VariantMetadata::new(Error::Reverted as u8, "Reverted", vec![], "The execution reverted."),
            VariantMetadata::new(
                Error::Halted as u8,
                "Halted",
                vec![],
                "The execution failed and used all its gas.",
            ),
        ],
        storage: vec![
            storage(
                "Config",
                TypeDef::Bytes,
                "SCALE(EvmConfig { chain_id, fork, gas_limit, min_base_fee }).",
            ),
            storage("BaseFee", TypeDef::U64, "The current block's base fee, wei per gas."),
            storage("GasUsed", TypeDef::U64, "Gas used by the current block's Ethereum transactions."),
            block_hashes,
        ],
        queries: vec![
            QueryMetadata {
                name: "config".into(),
                args: vec![],
                docs: "{ chainId, fork, gasLimit, minBaseFee, baseFee, gasUsed }.".into(),
            },
            QueryMetadata {
                name: "account".into(),
                args: vec![Field::new("who", "Address")],
                docs: "{ balance, nonce, codeHash } of an address as the EVM sees it.".into(),
            },
        ],
    }
}
