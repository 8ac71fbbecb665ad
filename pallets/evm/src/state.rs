//! The EVM's view of the chain ([`ChainState`]) and the writes that apply a transaction's
//! changes to it.

use hyperion_primitives::{Address, Balance, DispatchError, Hash};
use hyperion_runtime::system::ACCOUNT_NONCE;
use hyperion_runtime::{Context, Currency, StorageRead, StorageWrite};
use hyperion_vm::keys::{
    code_hash_key, code_key, read_code, read_code_hash, read_storage, storage_key, KeyRead,
};
use hyperion_vm::{Account, EvmState, StateDiff, B256, KECCAK_EMPTY, U256};

use crate::pallet::BLOCK_HASHES;

/// An Ethereum address as a Hyperion one (the same 20 bytes).
pub fn to_native(address: hyperion_vm::Address) -> Address {
    Address(address.0 .0)
}

/// A Hyperion address as an Ethereum one.
pub fn to_eth(address: Address) -> hyperion_vm::Address {
    hyperion_vm::Address::from(address.0)
}

struct Keys<'a>(&'a mut dyn StorageRead);

impl KeyRead for Keys<'_> {
    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.read_raw(key)
    }
}

/// The state the EVM reads on a Hyperion chain: balances from the ledger (`Currency`, free
/// balance), nonces from the system pallet, code and storage under the EVM's keys
/// ([`hyperion_vm::keys`]), block hashes kept by this pallet; with [`StandIns`] for what a
/// plain transfer does not read.
pub struct ChainState<'a> {
    storage: &'a mut dyn StorageRead,
    currency: &'a dyn Currency,
    stand_ins: StandIns,
}

/// What a plain transfer runs against instead of reading it (see `transact`): its sender's
/// balance and nonce as it assumed them, and a recipient's balance as zero (credited by a
/// delta, whatever it was).
#[derive(Clone, Copy, Debug, Default)]
pub struct StandIns {
    /// The sender, with the balance and nonce it stands in with.
    pub sender: Option<(hyperion_vm::Address, U256, u64)>,
    /// An account whose balance reads as zero.
    pub zero_balance: Option<hyperion_vm::Address>,
}

impl<'a> ChainState<'a> {
    /// Reads `storage` (a block's context, or a snapshot's query context).
    pub fn new(storage: &'a mut dyn StorageRead, currency: &'a dyn Currency) -> Self {
        Self { storage, currency, stand_ins: StandIns::default() }
    }

    /// With `stand_ins` for what it must not read.
    pub fn with_stand_ins(mut self, stand_ins: StandIns) -> Self {
        self.stand_ins = stand_ins;
        self
    }
}

impl EvmState for ChainState<'_> {
    fn account(&mut self, address: hyperion_vm::Address) -> hyperion_vm::Result<Option<Account>> {
        let who = to_native(address);
        let code_hash = read_code_hash(&mut Keys(self.storage), address)?;
        let (balance, nonce) = match self.stand_ins.sender {
            Some((sender, balance, nonce)) if sender == address => (balance, nonce),
            _ => {
                let balance = match self.stand_ins.zero_balance {
                    Some(zero) if zero == address => 0,
                    _ => self.currency.free_balance(self.storage, &who),
                };
                (U256::from(balance), ACCOUNT_NONCE.get_or_default(self.storage, &who))
            }
        };
        if balance.is_zero() && nonce == 0 && code_hash.is_none() {
            return Ok(None);
        }
        Ok(Some(Account { balance, nonce, code_hash: code_hash.unwrap_or(KECCAK_EMPTY) }))
    }

    fn code(&mut self, code_hash: B256) -> hyperion_vm::Result<Option<hyperion_vm::Bytes>> {
        Ok(read_code(&mut Keys(self.storage), code_hash))
    }

    fn storage(&mut self, address: hyperion_vm::Address, slot: U256) -> hyperion_vm::Result<U256> {
        read_storage(&mut Keys(self.storage), address, slot)
    }

    fn block_hash(&mut self, number: u64) -> hyperion_vm::Result<B256> {
        Ok(BLOCK_HASHES.get(self.storage, &number).map_or(B256::ZERO, |hash: Hash| B256::from(hash.0)))
    }
}

/// Writes `diff` into the block: code, slots, code hashes, nonces, and free balances through
/// `currency` (the issuance follows). `refund` is added to `refund_to`'s balance first: the part
/// of the fee the pallet charges itself, with the chain's split, after this.
///
/// A deleted account's storage is removed slot by slot as the diff lists it. That is all of it:
/// from Cancun on (the oldest fork a chain may run) only a contract created in the same
/// transaction can be deleted, and genesis refuses storage without code (EIP-7610), so storage
/// written before the transaction cannot exist there.
pub fn write_diff(
    ctx: &mut Context<'_>,
    currency: &dyn Currency,
    diff: &StateDiff,
    refund_to: Address,
    refund: Balance,
) -> Result<(), DispatchError> {
    for (hash, code) in &diff.codes {
        ctx.write_raw(code_key(*hash), Some(code.to_vec()));
    }
    for (address, change) in &diff.accounts {
        let who = to_native(*address);
        for (slot, value) in &change.storage {
            let value = (!value.is_zero()).then(|| value.to_be_bytes::<32>().to_vec());
            ctx.write_raw(storage_key(*address, *slot), value);
        }
        if change.header_unchanged && who != refund_to {
            continue;
        }
        let (balance, nonce, code_hash) = match &change.account {
            Some(account) => (account.balance, account.nonce, account.code_hash),
            None => (U256::ZERO, 0, KECCAK_EMPTY),
        };
        // The EVM only moves balances that exist, and the ledger's issuance is a u128.
        let mut free = Balance::try_from(balance).map_err(|_| DispatchError::Arithmetic)?;
        if who == refund_to {
            free = free.checked_add(refund).ok_or(DispatchError::Arithmetic)?;
        }
        currency.set_free(ctx, &who, free)?;
        // Only what changed is written: a touched account (a recipient, the coinbase) keeps
        // its nonce and code keys untouched, so a block's write set is its real changes.
        if ACCOUNT_NONCE.get_or_default(ctx, &who) != nonce {
            if nonce == 0 {
                ACCOUNT_NONCE.remove(ctx, &who);
            } else {
                ACCOUNT_NONCE.insert(ctx, &who, &nonce);
            }
        }
        let code_hash = (code_hash != KECCAK_EMPTY).then(|| code_hash.to_vec());
        let key = code_hash_key(*address);
        if ctx.read_raw(&key) != code_hash {
            ctx.write_raw(key, code_hash);
        }
    }
    Ok(())
}
