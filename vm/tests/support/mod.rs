//! Shared by the fixture tests: the fixture loaders of `hyperion_vm::fixtures`, and reading an
//! account back from a Hyperion state.

#![allow(dead_code)]

pub use hyperion_vm::fixtures::*;

use hyperion_state::Snapshot;
use hyperion_vm::keys::storage_prefix_of;
use hyperion_vm::{Account, Address, EvmLedger, EvmState, FullAccount, KeyedState, U256};

/// `address`'s account with every storage slot, read back from `state` (slots listed by key).
pub fn full_account(state: &Snapshot, address: Address) -> Option<FullAccount> {
    let account: Account = KeyedState::new(&**state, EvmLedger).account(address).unwrap()?;
    let prefix = storage_prefix_of(address);
    let storage = state
        .pairs(&prefix, None, usize::MAX)
        .into_iter()
        .map(|(key, value)| {
            let slot = U256::from_be_slice(&key[key.len() - 32..]);
            (slot, U256::from_be_slice(&value))
        })
        .collect();
    Some(FullAccount { account, storage })
}
