//! The baseline: a minimal reference ledger doing the least a correct chain must do per
//! transfer, and nothing else.
//!
//! Per transfer: decode the call, verify the ed25519 signature over the signed payload, check
//! the nonce and that the sender can pay value + fee, update sender and recipient and pay the
//! fee shares (proposer, Holders Mining pool; the rest is burned), with the chain's own fee
//! formula. Per block: the `sp-trie` root over the whole ledger
//! (`address -> SCALE(nonce, free)`), recomputed from scratch with `trie_root`. No events,
//! receipts, storage overlays, block hooks or extrinsics roots.

use hyperion_primitives::{Address, Balance, Extrinsic, Hash, Nonce};
use hyperion_runtime::{decode_call, holders_pool_account, FeeConfig};
use hyperion_state::trie_root;
use pallet_balances::{Call, TRANSFER_WEIGHT};
use parity_scale_codec::Encode;
use std::collections::BTreeMap;

use super::workload::{Tx, BALANCES_INDEX};
use super::AccountState;
use crate::{Error, Result};

#[derive(Clone, Copy, Default, Encode)]
struct Account {
    nonce: Nonce,
    free: Balance,
}

/// Accounts in a `BTreeMap`, with the fee parameters and proposer of the chain under test.
pub struct ReferenceLedger {
    genesis_hash: Hash,
    fees: FeeConfig,
    proposer: Address,
    holders_pool: Address,
    accounts: BTreeMap<Address, Account>,
}

impl ReferenceLedger {
    /// The genesis ledger: each of `endowed` holds `endowment`.
    pub fn new(
        genesis_hash: Hash,
        fees: FeeConfig,
        proposer: Address,
        endowed: &[Address],
        endowment: Balance,
    ) -> Self {
        let accounts = endowed.iter().map(|a| (*a, Account { nonce: 0, free: endowment })).collect();
        Self { genesis_hash, fees, proposer, holders_pool: holders_pool_account(), accounts }
    }

    /// Applies a block of transfers, all of which must be valid and succeed; returns the root
    /// of the whole ledger after it.
    pub fn apply_block(&mut self, txs: &[Tx]) -> Result<Hash> {
        for (i, tx) in txs.iter().enumerate() {
            self.apply(tx).map_err(|e| Error::Check(format!("baseline, transfer {i}: {e}")))?;
        }
        Ok(trie_root(self.accounts.iter().map(|(address, account)| (address.0, account.encode()))))
    }

    fn apply(&mut self, tx: &Tx) -> std::result::Result<(), String> {
        let Extrinsic::Native(xt) = tx.xt.as_ref() else {
            return Err("not a native extrinsic".into());
        };
        let Ok(Call::Transfer { dest, value }) = decode_call::<Call>(xt.call.call, &xt.call.args) else {
            return Err("not a balances transfer".into());
        };
        if xt.call.pallet != BALANCES_INDEX || !xt.verify(self.genesis_hash) {
            return Err("bad call or signature".into());
        }
        let fee = self.fees.fee(tx.len, TRANSFER_WEIGHT);
        let shares = self.fees.shares(fee, xt.tip);
        let sender = xt.sender();
        let from = self.accounts.get_mut(&sender).ok_or("unknown sender")?;
        if from.nonce != xt.nonce {
            return Err(format!("nonce {} expected, got {}", from.nonce, xt.nonce));
        }
        let total = fee.checked_add(xt.tip).and_then(|t| t.checked_add(value)).ok_or("overflow")?;
        from.free = from.free.checked_sub(total).ok_or("insufficient balance")?;
        from.nonce += 1;
        self.credit(dest, value)?;
        self.credit(self.proposer, shares.proposer)?;
        self.credit(self.holders_pool, shares.holders_pool)
    }

    fn credit(&mut self, who: Address, amount: Balance) -> std::result::Result<(), String> {
        let account = self.accounts.entry(who).or_default();
        account.free = account.free.checked_add(amount).ok_or("balance overflow")?;
        Ok(())
    }

    /// Nonce and free balance of each of `accounts` (zero for unknown ones).
    pub fn ledger(&self, accounts: &[Address]) -> Vec<AccountState> {
        accounts
            .iter()
            .map(|a| {
                let account = self.accounts.get(a).copied().unwrap_or_default();
                AccountState { address: *a, nonce: account.nonce, free: account.free }
            })
            .collect()
    }
}
