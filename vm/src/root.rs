//! Ethereum's state root: the Merkle-Patricia trie of `keccak256(address)` to
//! `rlp([nonce, balance, storage_root, code_hash])`, each storage root the trie of
//! `keccak256(slot)` to `rlp(value)` over non-zero slots. Hyperion commits to its state with its
//! own trie; this root is what Ethereum's tests and tools compare against.

use alloy_primitives::{Address, B256, U256};
use alloy_trie::root::{state_root_unhashed, storage_root_unhashed};
use alloy_trie::TrieAccount;

use crate::state::Account;

/// An account with all of its storage.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct FullAccount {
    /// Balance, nonce, code hash.
    pub account: Account,
    /// Every slot; zero values are ignored.
    pub storage: Vec<(U256, U256)>,
}

/// The Ethereum state root over `accounts` (each address once).
pub fn ethereum_state_root(accounts: impl IntoIterator<Item = (Address, FullAccount)>) -> B256 {
    state_root_unhashed(accounts.into_iter().map(|(address, full)| {
        let storage = full.storage.into_iter().filter(|(_, value)| !value.is_zero());
        let storage_root = storage_root_unhashed(storage.map(|(slot, value)| (B256::from(slot), value)));
        let account = TrieAccount {
            nonce: full.account.nonce,
            balance: full.account.balance,
            storage_root,
            code_hash: full.account.code_hash,
        };
        (address, account)
    }))
}
