//! Where the EVM's state lives in Hyperion's key-value state, and [`KeyedState`], the
//! [`EvmState`] over it.
//!
//! ```text
//! code hash   twox128("Evm") ++ twox128("CodeHash") ++ blake2_128(address) ++ address
//!             -> keccak256(code), 32 bytes; absent: the account has no code
//! code        twox128("Evm") ++ twox128("Code") ++ code_hash
//!             -> the code's bytes (kept for good: code is shared by hash)
//! storage     twox128("Evm") ++ twox128("Storage") ++ blake2_128(address) ++ address
//!                            ++ blake2_128(slot) ++ slot (32 bytes, big-endian)
//!             -> the value, 32 bytes big-endian; absent: zero
//! account     twox128("Evm") ++ twox128("Account") ++ blake2_128(address) ++ address
//!             -> SCALE((balance: [u8; 32] big-endian, nonce: u64)), with [`EvmLedger`] only;
//!                a chain keeps balances and nonces in its own ledger (see [`Ledger`])
//! ```
//!
//! The hashed prefixes spread keys over the trie (no one can make a path long by choosing
//! addresses or slots); the plain suffixes keep them readable and iterable per account.

use alloy_primitives::{Address, Bytes, B256, U256};
use hyperion_primitives::storage_key::{prefix_of, Blake2_128Concat, StorageHasher};
use hyperion_state::{ChangeSet, StateRead};
use parity_scale_codec::{Decode, Encode};
use revm::primitives::KECCAK_EMPTY;
use std::collections::BTreeMap;

use crate::state::{Account, EvmState, StateDiff};
use crate::{Error, Result};

/// The pallet name of the EVM's storage items.
pub const PALLET: &str = "Evm";
/// Keys listed per read while removing a deleted account's storage.
const WIPE_PAGE_KEYS: usize = 1024;

// The items' prefixes, computed when the program is compiled.
const CODE_HASH: [u8; 32] = prefix_of(PALLET, "CodeHash");
const CODE: [u8; 32] = prefix_of(PALLET, "Code");
const STORAGE: [u8; 32] = prefix_of(PALLET, "Storage");
const ACCOUNT: [u8; 32] = prefix_of(PALLET, "Account");

fn map_key(prefix: &[u8; 32], suffix: &[u8]) -> Vec<u8> {
    // Room for a storage slot's suffix too (blake2_128 ++ 32 bytes), appended by `storage_key`.
    let mut key = Vec::with_capacity(32 + 16 + suffix.len() + 48);
    key.extend_from_slice(prefix);
    key.extend(Blake2_128Concat::hash(suffix));
    key
}

/// The key of `address`'s code hash.
pub fn code_hash_key(address: Address) -> Vec<u8> {
    map_key(&CODE_HASH, address.as_slice())
}

/// The key of the code whose hash is `code_hash`.
pub fn code_key(code_hash: B256) -> Vec<u8> {
    let mut key = CODE.to_vec();
    key.extend_from_slice(code_hash.as_slice());
    key
}

/// The prefix of every storage slot of `address`.
pub fn storage_prefix_of(address: Address) -> Vec<u8> {
    map_key(&STORAGE, address.as_slice())
}

/// The key of storage slot `slot` of `address`.
pub fn storage_key(address: Address, slot: U256) -> Vec<u8> {
    let mut key = storage_prefix_of(address);
    key.extend(Blake2_128Concat::hash(&slot.to_be_bytes::<32>()));
    key
}

/// The key of `address`'s balance and nonce under [`EvmLedger`].
pub fn account_key(address: Address) -> Vec<u8> {
    map_key(&ACCOUNT, address.as_slice())
}

/// Reads of Hyperion's key-value state (a snapshot, or the runtime's view of a block).
pub trait KeyRead {
    /// The value at `key`.
    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>>;
}

impl<T: StateRead + ?Sized> KeyRead for &T {
    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        StateRead::get(*self, key)
    }
}

/// Where accounts' balances and nonces are kept.
pub trait Ledger {
    /// `address`'s balance and nonce; `None` when the ledger has no entry.
    fn read(&self, state: &mut dyn KeyRead, address: Address) -> Result<Option<(U256, u64)>>;
    /// Records `address`'s new balance and nonce, or removes its entry (`None`).
    fn write(&self, changes: &mut ChangeSet, address: Address, value: Option<(U256, u64)>) -> Result<()>;
}

/// Balances and nonces under the EVM's own `account` key (full 256-bit balances): for a state
/// that is only Ethereum's, as in Ethereum's own tests.
#[derive(Clone, Copy, Default, Debug)]
pub struct EvmLedger;

impl Ledger for EvmLedger {
    fn read(&self, state: &mut dyn KeyRead, address: Address) -> Result<Option<(U256, u64)>> {
        let key = account_key(address);
        let Some(raw) = state.get(&key) else { return Ok(None) };
        let (balance, nonce) = <([u8; 32], u64)>::decode(&mut raw.as_slice())
            .map_err(|e| Error::Corrupt(format!("EVM account at 0x{}: {e}", hex(&key))))?;
        Ok(Some((U256::from_be_bytes(balance), nonce)))
    }

    fn write(&self, changes: &mut ChangeSet, address: Address, value: Option<(U256, u64)>) -> Result<()> {
        let encoded = value.map(|(balance, nonce)| (balance.to_be_bytes::<32>(), nonce).encode());
        changes.insert(account_key(address), encoded);
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The [`EvmState`] over Hyperion's key-value state: code and storage under the keys above,
/// balances and nonces in the ledger `L`, block hashes as given.
pub struct KeyedState<R, L> {
    state: R,
    ledger: L,
    block_hashes: BTreeMap<u64, B256>,
}

impl<R: KeyRead, L: Ledger> KeyedState<R, L> {
    /// The EVM state in `state`, with balances and nonces in `ledger`.
    pub fn new(state: R, ledger: L) -> Self {
        Self { state, ledger, block_hashes: BTreeMap::new() }
    }

    /// With the hashes BLOCKHASH can return (the 256 blocks before the current one).
    pub fn with_block_hashes(mut self, hashes: BTreeMap<u64, B256>) -> Self {
        self.block_hashes = hashes;
        self
    }
}

impl<R: KeyRead, L: Ledger> EvmState for KeyedState<R, L> {
    fn account(&mut self, address: Address) -> Result<Option<Account>> {
        let ledger = self.ledger.read(&mut self.state, address)?;
        let code_hash = read_code_hash(&mut self.state, address)?;
        if ledger.is_none() && code_hash.is_none() {
            return Ok(None);
        }
        let (balance, nonce) = ledger.unwrap_or_default();
        Ok(Some(Account { balance, nonce, code_hash: code_hash.unwrap_or(KECCAK_EMPTY) }))
    }

    fn code(&mut self, code_hash: B256) -> Result<Option<Bytes>> {
        Ok(self.state.get(&code_key(code_hash)).map(Bytes::from))
    }

    fn storage(&mut self, address: Address, slot: U256) -> Result<U256> {
        let key = storage_key(address, slot);
        match self.state.get(&key) {
            None => Ok(U256::ZERO),
            Some(raw) if raw.len() == 32 => Ok(U256::from_be_slice(&raw)),
            Some(raw) => {
                Err(Error::Corrupt(format!("storage value of {} bytes at 0x{}", raw.len(), hex(&key))))
            }
        }
    }

    fn block_hash(&mut self, number: u64) -> Result<B256> {
        Ok(self.block_hashes.get(&number).copied().unwrap_or_default())
    }
}

/// `address`'s code hash, `None` if it has no code.
pub fn read_code_hash(state: &mut dyn KeyRead, address: Address) -> Result<Option<B256>> {
    let key = code_hash_key(address);
    match state.get(&key) {
        None => Ok(None),
        Some(raw) => B256::try_from(raw.as_slice())
            .map(Some)
            .map_err(|_| Error::Corrupt(format!("code hash of {} bytes at 0x{}", raw.len(), hex(&key)))),
    }
}

/// The code whose hash is `code_hash`.
pub fn read_code(state: &mut dyn KeyRead, code_hash: B256) -> Option<Bytes> {
    state.get(&code_key(code_hash)).map(Bytes::from)
}

/// Storage slot `slot` of `address` (zero if absent).
pub fn read_storage(state: &mut dyn KeyRead, address: Address, slot: U256) -> Result<U256> {
    let key = storage_key(address, slot);
    match state.get(&key) {
        None => Ok(U256::ZERO),
        Some(raw) if raw.len() == 32 => Ok(U256::from_be_slice(&raw)),
        Some(raw) => Err(Error::Corrupt(format!("storage value of {} bytes at 0x{}", raw.len(), hex(&key)))),
    }
}

/// The writes that make `diff` happen in the key-value state whose current contents `state`
/// reads: headers through `ledger`, code and slots under the keys above. A wiped account's
/// slots are listed from `state` and removed.
pub fn diff_to_changes<L: Ledger>(diff: &StateDiff, ledger: &L, state: &dyn StateRead) -> Result<ChangeSet> {
    let mut changes = ChangeSet::new();
    for (hash, code) in &diff.codes {
        changes.insert(code_key(*hash), Some(code.to_vec()));
    }
    for (address, account) in &diff.accounts {
        let address = *address;
        if account.storage_wiped {
            let prefix = storage_prefix_of(address);
            let mut after: Option<Vec<u8>> = None;
            loop {
                let page = state.pairs(&prefix, after.as_deref(), WIPE_PAGE_KEYS);
                let full = page.len() == WIPE_PAGE_KEYS;
                after = page.last().map(|(key, _)| key.clone());
                changes.extend(page.into_iter().map(|(key, _)| (key, None)));
                if !full {
                    break;
                }
            }
        }
        for (slot, value) in &account.storage {
            let value = (!value.is_zero()).then(|| value.to_be_bytes::<32>().to_vec());
            changes.insert(storage_key(address, *slot), value);
        }
        if account.header_unchanged {
            continue;
        }
        match &account.account {
            Some(header) => {
                ledger.write(&mut changes, address, Some((header.balance, header.nonce)))?;
                let code_hash = (header.code_hash != KECCAK_EMPTY).then(|| header.code_hash.to_vec());
                changes.insert(code_hash_key(address), code_hash);
            }
            None => {
                ledger.write(&mut changes, address, None)?;
                changes.insert(code_hash_key(address), None);
            }
        }
    }
    Ok(changes)
}
