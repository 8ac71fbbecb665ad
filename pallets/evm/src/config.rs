//! The pallet's genesis section and the configuration it stores.

use hyperion_primitives::Address;
use hyperion_vm::{Bytes, Fork, B256, FORKS, U256};
use parity_scale_codec::{Decode, Encode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Gas a block may use unless the chain spec says otherwise.
pub const DEFAULT_GAS_LIMIT: u64 = 30_000_000;
/// One gwei: the default initial and minimum base fee.
pub const GWEI: u64 = 1_000_000_000;

/// The genesis section `evm` of a chain spec.
///
/// ```json
/// "evm": {
///   "chainId": 424242,
///   "fork": "Prague",
///   "gasLimit": 30000000,
///   "initialBaseFee": 1000000000,
///   "minBaseFee": 1000000000,
///   "accounts": {
///     "0x…": { "balance": "1000000000000000000", "nonce": 0, "code": "0x…", "storage": { "0x…": "0x…" } }
///   }
/// }
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EvmGenesis {
    /// EIP-155 chain id that Ethereum transactions are signed for (`eth_chainId`).
    pub chain_id: u64,
    /// The Ethereum fork whose rules apply: `Cancun`, `Prague` or `Osaka`.
    #[serde(default = "default_fork")]
    pub fork: String,
    /// Gas all Ethereum transactions of a block may use together.
    #[serde(default = "default_gas_limit")]
    pub gas_limit: u64,
    /// The base fee of block 1, wei per gas.
    #[serde(default = "default_base_fee")]
    pub initial_base_fee: u64,
    /// The base fee never goes below this, wei per gas.
    #[serde(default = "default_base_fee")]
    pub min_base_fee: u64,
    /// Accounts with code, storage, nonce or balance at genesis (balances are added to the
    /// balances pallet's ledger).
    #[serde(default)]
    pub accounts: BTreeMap<Address, GenesisAccount>,
}

fn default_fork() -> String {
    Fork::Prague.name().into()
}

fn default_gas_limit() -> u64 {
    DEFAULT_GAS_LIMIT
}

fn default_base_fee() -> u64 {
    GWEI
}

/// One genesis account.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    /// Balance in wei, a decimal string (or number).
    #[serde(default, with = "hyperion_runtime::serde_u128")]
    pub balance: u128,
    /// Nonce.
    #[serde(default)]
    pub nonce: u64,
    /// Runtime code, hex.
    #[serde(default)]
    pub code: Bytes,
    /// Storage slots, 32-byte hex words.
    #[serde(default)]
    pub storage: BTreeMap<B256, B256>,
}

impl Default for EvmGenesis {
    fn default() -> Self {
        Self {
            chain_id: 424_242,
            fork: default_fork(),
            gas_limit: DEFAULT_GAS_LIMIT,
            initial_base_fee: GWEI,
            min_base_fee: GWEI,
            accounts: BTreeMap::new(),
        }
    }
}

/// The configuration kept in state (`Evm.Config`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode)]
pub struct EvmConfig {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Index of the fork in [`FORKS`].
    pub fork: u8,
    /// Block gas limit.
    pub gas_limit: u64,
    /// Lowest base fee, wei per gas.
    pub min_base_fee: u64,
}

impl EvmConfig {
    /// The fork whose rules apply.
    pub fn fork(&self) -> Fork {
        FORKS[usize::from(self.fork)]
    }
}

/// The oldest fork a chain may choose: from Cancun on, SELFDESTRUCT only deletes contracts
/// created in the same transaction (EIP-6780), which the pallet relies on.
pub const OLDEST_FORK: Fork = Fork::Cancun;

/// Checks a genesis section; returns the stored configuration, or the field at fault and why.
pub fn check(genesis: &EvmGenesis) -> Result<EvmConfig, (String, String)> {
    let err = |field: &str, message: String| Err((field.to_string(), message));
    let Some(fork) = Fork::from_name(&genesis.fork) else {
        return err("fork", format!("unknown fork {:?}", genesis.fork));
    };
    if fork < OLDEST_FORK {
        return err("fork", format!("{} is older than {}", fork.name(), OLDEST_FORK.name()));
    }
    if genesis.chain_id == 0 {
        return err("chainId", "must not be 0".into());
    }
    if genesis.gas_limit < 21_000 {
        return err("gasLimit", "must allow at least one transfer (21000 gas)".into());
    }
    if genesis.min_base_fee > genesis.initial_base_fee {
        return err("minBaseFee", "must not exceed initialBaseFee".into());
    }
    for (address, account) in &genesis.accounts {
        if !account.storage.is_empty() && account.code.is_empty() {
            // EIP-7610: creating a contract there must fail, which revm does not check.
            return err(&format!("accounts.{address}.storage"), "storage needs code".into());
        }
        if account.code.len() > 24_576 {
            return err(&format!("accounts.{address}.code"), "longer than 24576 bytes (EIP-170)".into());
        }
    }
    let fork_index = FORKS.iter().position(|f| *f == fork).expect("a known fork") as u8;
    Ok(EvmConfig {
        chain_id: genesis.chain_id,
        fork: fork_index,
        gas_limit: genesis.gas_limit,
        min_base_fee: genesis.min_base_fee,
    })
}

/// EIP-1559: the base fee of the block after one with `base_fee` that used `gas_used` of
/// `gas_limit` (the target is half the limit; the fee moves by at most 1/8), not below
/// `min_base_fee`.
pub fn next_base_fee(base_fee: u64, gas_used: u64, gas_limit: u64, min_base_fee: u64) -> u64 {
    let target = u128::from((gas_limit / 2).max(1));
    let (base, used) = (u128::from(base_fee), u128::from(gas_used));
    let next = if used > target {
        base + (base * (used - target) / target / 8).max(1)
    } else {
        base - base * (target - used) / target / 8
    };
    u64::try_from(next).unwrap_or(u64::MAX).max(min_base_fee)
}

/// A storage word of a genesis account as a number.
pub(crate) fn word(value: &B256) -> U256 {
    U256::from_be_bytes(value.0)
}
