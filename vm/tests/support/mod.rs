//! Shared by the fixture tests: hex helpers, the fixture folders, and loading accounts into a
//! Hyperion state through the EVM's key layout.

#![allow(dead_code)]

use hyperion_state::{ChangeSet, MemoryStateDb, Snapshot, StateDb};
use hyperion_vm::keys::{code_hash_key, code_key, storage_key, storage_prefix_of};
use hyperion_vm::{
    Account, Address, Bytes, EvmLedger, EvmState, FullAccount, KeyedState, Ledger, B256, KECCAK_EMPTY, U256,
};
use std::path::PathBuf;

/// The fixture folder named by `var`, else `../shared/fixtures/<default>` beside the project.
pub fn fixture_dir(var: &str, default: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures").join(default),
    }
}

/// An account to load: header, code, storage.
#[derive(Clone, Debug, Default)]
pub struct Genesis {
    pub balance: U256,
    pub nonce: u64,
    pub code: Bytes,
    pub storage: Vec<(U256, U256)>,
}

/// A state holding `accounts` (block 0) and the changes that wrote it.
pub fn load(accounts: &[(Address, Genesis)]) -> (MemoryStateDb, Snapshot) {
    let mut changes = ChangeSet::new();
    for (address, account) in accounts {
        EvmLedger.write(&mut changes, *address, Some((account.balance, account.nonce))).unwrap();
        if !account.code.is_empty() {
            let hash = hyperion_vm::keccak256(&account.code);
            changes.insert(code_key(hash), Some(account.code.to_vec()));
            changes.insert(code_hash_key(*address), Some(hash.to_vec()));
        }
        for (slot, value) in &account.storage {
            if !value.is_zero() {
                changes.insert(storage_key(*address, *slot), Some(value.to_be_bytes::<32>().to_vec()));
            }
        }
    }
    let db = MemoryStateDb::new(8);
    db.commit(0, &changes, None).unwrap();
    let snapshot = db.snapshot(0).unwrap();
    (db, snapshot)
}

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

/// Parses a `0x` hex quantity or data string.
pub fn hex_bytes(s: &str) -> Bytes {
    let s = s.strip_prefix("0x").unwrap_or(s);
    let s = if s.len() % 2 == 1 { format!("0{s}") } else { s.to_string() };
    Bytes::from(
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect::<Vec<_>>(),
    )
}

pub fn hex_u256(s: &str) -> U256 {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.is_empty() {
        return U256::ZERO;
    }
    U256::from_str_radix(s, 16).unwrap()
}

pub fn hex_u64(s: &str) -> u64 {
    u64::try_from(hex_u256(s)).unwrap()
}

pub fn hex_b256(s: &str) -> B256 {
    B256::left_padding_from(&hex_bytes(s))
}

pub fn hex_address(s: &str) -> Address {
    Address::from_slice(&hex_bytes(s))
}

pub const EMPTY_CODE_HASH: B256 = KECCAK_EMPTY;
