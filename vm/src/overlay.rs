//! [`BlockState`]: a block's changes in memory over the state it started from, read by revm as
//! its `Database` and updated after each transaction.

use alloy_primitives::{Address, Bytes, B256, U256};
use revm::bytecode::Bytecode;
use revm::primitives::KECCAK_EMPTY;
use revm::state::{AccountInfo, EvmState as RevmChanges};
use revm::Database;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::code_cache::CodeCache;

use crate::state::{Account, AccountDiff, EvmState, StateDiff};
use crate::{Error, Result};

/// The state during a block: every transaction's changes so far over the `base` the block
/// started from. Transactions read through it (it is revm's [`Database`]), and
/// [`BlockState::apply`] adds a transaction's changes once it is included.
pub struct BlockState<S> {
    base: S,
    /// Accounts changed in this block; `None`: deleted.
    accounts: HashMap<Address, Option<Account>>,
    /// Accounts as `base` gave them (before the block), for those read.
    loaded: HashMap<Address, Option<Account>>,
    /// Slots written in this block, per account.
    storage: HashMap<Address, HashMap<U256, U256>>,
    /// Accounts whose storage from before the block is gone (self-destructed or created anew).
    wiped: HashSet<Address>,
    /// Code deployed in this block.
    new_codes: HashMap<B256, Bytes>,
    /// Code read or deployed, analysed once per block.
    bytecode: HashMap<B256, Bytecode>,
    /// Code analysed by earlier transactions and blocks, if shared.
    code_cache: Option<Arc<CodeCache>>,
}

impl<S: EvmState> BlockState<S> {
    /// No changes yet over `base`.
    pub fn new(base: S) -> Self {
        Self {
            base,
            accounts: HashMap::new(),
            loaded: HashMap::new(),
            storage: HashMap::new(),
            wiped: HashSet::new(),
            new_codes: HashMap::new(),
            bytecode: HashMap::new(),
            code_cache: None,
        }
    }

    /// Takes contract code from `cache` when it holds it, and adds the code it reads there.
    pub fn with_code_cache(mut self, cache: Arc<CodeCache>) -> Self {
        self.code_cache = Some(cache);
        self
    }

    /// The state the block started from.
    pub fn base(&mut self) -> &mut S {
        &mut self.base
    }

    /// The account at `address` as the block left it so far.
    pub fn account(&mut self, address: Address) -> Result<Option<Account>> {
        if let Some(account) = self.accounts.get(&address).or_else(|| self.loaded.get(&address)) {
            return Ok(*account);
        }
        let account = self.base.account(address)?;
        self.loaded.insert(address, account);
        Ok(account)
    }

    /// The value of a storage slot as the block left it so far.
    pub fn storage(&mut self, address: Address, slot: U256) -> Result<U256> {
        if let Some(value) = self.storage.get(&address).and_then(|slots| slots.get(&slot)) {
            return Ok(*value);
        }
        if self.wiped.contains(&address) {
            return Ok(U256::ZERO);
        }
        self.base.storage(address, slot)
    }

    /// Adds the changes of an included transaction, as revm reports them, with Ethereum's
    /// post-EIP-161 rules (revm has already adjusted older forks' accounts to them): an untouched
    /// account is unchanged; a self-destructed one, or a touched empty one, is deleted with its
    /// storage; a created one starts with empty storage; any other gets its new header and
    /// changed slots.
    pub fn apply(&mut self, changes: RevmChanges) {
        for (address, account) in changes {
            if !account.is_touched() {
                continue;
            }
            if account.is_selfdestructed() || (!account.is_created() && account.is_empty()) {
                self.accounts.insert(address, None);
                self.storage.remove(&address);
                self.wiped.insert(address);
                continue;
            }
            let info = &account.info;
            if let Some(code) = &info.code {
                if info.code_hash != KECCAK_EMPTY && !self.bytecode.contains_key(&info.code_hash) {
                    self.new_codes.insert(info.code_hash, code.original_bytes());
                    self.bytecode.insert(info.code_hash, code.clone());
                }
            }
            let header = Account { balance: info.balance, nonce: info.nonce, code_hash: info.code_hash };
            self.accounts.insert(address, Some(header));
            let slots = self.storage.entry(address).or_default();
            if account.is_created() {
                slots.clear();
                self.wiped.insert(address);
                slots.extend(account.storage.iter().map(|(slot, value)| (*slot, value.present_value)));
            } else {
                slots.extend(
                    account.changed_storage_slots().map(|(slot, value)| (*slot, value.present_value)),
                );
            }
        }
    }

    /// Adds `amount` to the balance of `address` after a transaction, as a block's beneficiary
    /// is paid its priority fee: the account is touched, so an empty one is deleted
    /// (EIP-161).
    pub fn credit(&mut self, address: Address, amount: U256) -> Result<()> {
        let mut account = self.account(address)?.unwrap_or_default();
        account.balance = account.balance.saturating_add(amount);
        if account.is_empty() {
            self.accounts.insert(address, None);
            self.storage.remove(&address);
            self.wiped.insert(address);
        } else {
            self.accounts.insert(address, Some(account));
        }
        Ok(())
    }

    /// The block's changes, and the state it started from. An account whose header (balance,
    /// nonce, code hash) ends as it started is marked so; one that is in addition untouched in
    /// its storage is left out.
    pub fn into_diff(self) -> (S, StateDiff) {
        let mut accounts: BTreeMap<Address, AccountDiff> = BTreeMap::new();
        for (address, account) in self.accounts {
            let header_unchanged = self.loaded.get(&address) == Some(&account);
            let slots_written = self.storage.get(&address).is_some_and(|slots| !slots.is_empty());
            if header_unchanged && !slots_written && !self.wiped.contains(&address) {
                continue;
            }
            let diff = accounts.entry(address).or_default();
            diff.account = account;
            diff.header_unchanged = header_unchanged;
        }
        // Every account with slots written or wiped storage is in `accounts` (revm reports
        // slots only with their account's header).
        for (address, slots) in self.storage.into_iter().filter(|(_, slots)| !slots.is_empty()) {
            let diff = accounts.entry(address).or_default();
            diff.storage.extend(slots);
        }
        for address in self.wiped {
            let diff = accounts.entry(address).or_default();
            diff.storage_wiped = true;
            diff.storage.retain(|_, value| !value.is_zero());
        }
        let codes = self.new_codes.into_iter().collect();
        (self.base, StateDiff { accounts, codes })
    }

    fn bytecode(&mut self, code_hash: B256) -> Result<Bytecode> {
        if code_hash == KECCAK_EMPTY || code_hash.is_zero() {
            return Ok(Bytecode::default());
        }
        if let Some(code) = self.bytecode.get(&code_hash) {
            return Ok(code.clone());
        }
        // Code is addressed by its hash: what the cache holds is what the state holds.
        if let Some(code) = self.code_cache.as_ref().and_then(|cache| cache.get(&code_hash)) {
            self.bytecode.insert(code_hash, code.clone());
            return Ok(code);
        }
        let Some(raw) = self.base.code(code_hash)? else {
            return Err(Error::Corrupt(format!("no code for hash {code_hash}")));
        };
        let code = analyse(raw);
        if let Some(cache) = &self.code_cache {
            cache.insert(code_hash, code.clone());
        }
        self.bytecode.insert(code_hash, code.clone());
        Ok(code)
    }
}

/// Bytecode from raw deployed code: an EIP-7702 delegation when it is one, legacy code
/// otherwise (code deployed before EIP-3541 may start with 0xEF and is still legacy code).
pub fn analyse(raw: Bytes) -> Bytecode {
    Bytecode::new_raw_checked(raw.clone()).unwrap_or_else(|_| Bytecode::new_legacy(raw))
}

impl<S: EvmState> Database for BlockState<S> {
    type Error = Error;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>> {
        Ok(self.account(address)?.map(|account| AccountInfo {
            balance: account.balance,
            nonce: account.nonce,
            code_hash: account.code_hash,
            // Loaded by `code_by_hash` when the code runs.
            code: None,
            ..AccountInfo::default()
        }))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode> {
        self.bytecode(code_hash)
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256> {
        BlockState::storage(self, address, index)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256> {
        self.base.block_hash(number)
    }
}
