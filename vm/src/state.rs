//! What MetisVM reads ([`EvmState`]) and what a block changes ([`StateDiff`]).

use alloy_primitives::{Address, Bytes, B256, U256};
use revm::primitives::KECCAK_EMPTY;
use std::collections::BTreeMap;

use crate::Result;

/// An Ethereum account's header: balance, nonce and the hash of its code.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Account {
    /// Balance, wei.
    pub balance: U256,
    /// Transactions sent (externally owned) or contracts created (contracts).
    pub nonce: u64,
    /// `keccak256(code)`; [`KECCAK_EMPTY`] for an account without code.
    pub code_hash: B256,
}

impl Default for Account {
    fn default() -> Self {
        Self { balance: U256::ZERO, nonce: 0, code_hash: KECCAK_EMPTY }
    }
}

impl Account {
    /// Whether the account has no balance, no nonce and no code (EIP-161's "empty").
    pub fn is_empty(&self) -> bool {
        self.balance.is_zero() && self.nonce == 0 && self.code_hash == KECCAK_EMPTY
    }
}

/// The state a block executes against.
///
/// Reads take `&mut self` so that an implementation may record them (the parallel executor
/// tracks read sets). An error means the state could not be read (a storage failure or corrupt
/// data), never that something is absent: absence is `None` or zero.
pub trait EvmState {
    /// The account at `address`, `None` if it does not exist.
    fn account(&mut self, address: Address) -> Result<Option<Account>>;

    /// The code whose hash is `code_hash`, `None` if unknown.
    fn code(&mut self, code_hash: B256) -> Result<Option<Bytes>>;

    /// The value of storage slot `slot` of `address` (zero if never written).
    fn storage(&mut self, address: Address, slot: U256) -> Result<U256>;

    /// The hash of block `number`, or zero when the state does not know it (BLOCKHASH only
    /// asks for the 256 blocks before the current one).
    fn block_hash(&mut self, number: u64) -> Result<B256>;
}

impl<S: EvmState + ?Sized> EvmState for &mut S {
    fn account(&mut self, address: Address) -> Result<Option<Account>> {
        (**self).account(address)
    }
    fn code(&mut self, code_hash: B256) -> Result<Option<Bytes>> {
        (**self).code(code_hash)
    }
    fn storage(&mut self, address: Address, slot: U256) -> Result<U256> {
        (**self).storage(address, slot)
    }
    fn block_hash(&mut self, number: u64) -> Result<B256> {
        (**self).block_hash(number)
    }
}

/// How one account changed in a block.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct AccountDiff {
    /// The account after the block; `None`: it was deleted (self-destructed, or touched while
    /// empty under EIP-161).
    pub account: Option<Account>,
    /// Whether `account` is what the account was before the block (its storage changed, or it
    /// was only touched): then its header need not be written.
    pub header_unchanged: bool,
    /// Whether all of its storage from before the block was removed (deleted or created anew);
    /// `storage` then holds everything it has after the block.
    pub storage_wiped: bool,
    /// Slots written in the block, with their final values (zero: the slot is removed).
    pub storage: BTreeMap<U256, U256>,
}

/// Everything a block changed, in a deterministic order.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct StateDiff {
    /// Changed accounts.
    pub accounts: BTreeMap<Address, AccountDiff>,
    /// Code deployed in the block, by hash.
    pub codes: BTreeMap<B256, Bytes>,
}
