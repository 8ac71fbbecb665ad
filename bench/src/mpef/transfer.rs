//! Plain value transfers of mainnet blocks without reading the two records they change.
//!
//! A transfer with no call data to an account without code runs no code: nothing in it can see
//! more of the sender's record than that its nonce is the transaction's and its balance covers
//! the maximum cost, nor anything of the recipient's record. So the sender's record is assumed
//! ([`View::assume`]) instead of read, and the recipient's is not read at all: the VM runs
//! against stand-ins (the sender with exactly that nonce and balance, the recipient absent),
//! and what it writes to them becomes deltas (one more nonce and the cost taken off, the value
//! added). A sender's run of payments (an exchange's hot wallet, a mining pool paying out) and
//! a run of deposits to one address then run in parallel instead of as one chain.

use hyperion_executor::{Assumption, Condition, Delta, DeltaKind, View};
use hyperion_state::ChangeSet;
use hyperion_vm::keys::{account_key, code_hash_key, KeyRead};
use hyperion_vm::{EthTransaction, U256};
use parity_scale_codec::{Decode, Encode};

/// `+add −sub` on an account's balance under [`hyperion_vm::EvmLedger`]'s record `(balance BE, nonce)`.
pub static LEDGER_BALANCE: DeltaKind =
    DeltaKind { name: "EvmLedger balance", apply: apply_balance, independent: false };

/// A sender's payment on its [`hyperion_vm::EvmLedger`] record: `add` more nonce, `sub` less balance.
static LEDGER_PAID: DeltaKind = DeltaKind { name: "EvmLedger payment", apply: apply_paid, independent: true };

/// An [`hyperion_vm::EvmLedger`] record's nonce is `a` and its balance at least `b`: what a transaction
/// with nonce `a` and maximum cost `b` needs of its sender to run.
static LEDGER_CAN_PAY: Condition = Condition { name: "EvmLedger can pay", holds: can_pay };

fn ledger_record(value: Option<&[u8]>) -> (U256, u64) {
    let (balance, nonce) = value.and_then(|mut v| <([u8; 32], u64)>::decode(&mut v).ok()).unwrap_or_default();
    (U256::from_be_bytes(balance), nonce)
}

fn encode_ledger_record(balance: U256, nonce: u64) -> Vec<u8> {
    (balance.to_be_bytes::<32>(), nonce).encode()
}

fn apply_balance(value: Option<&[u8]>, add: u128, sub: u128) -> Vec<u8> {
    let (balance, nonce) = ledger_record(value);
    encode_ledger_record(balance.saturating_add(U256::from(add)).saturating_sub(U256::from(sub)), nonce)
}

fn apply_paid(value: Option<&[u8]>, add: u128, sub: u128) -> Vec<u8> {
    let (balance, nonce) = ledger_record(value);
    let nonce = nonce.saturating_add(u64::try_from(add).unwrap_or(u64::MAX));
    encode_ledger_record(balance.saturating_sub(U256::from(sub)), nonce)
}

fn can_pay(value: Option<&[u8]>, nonce: u128, cost: u128) -> bool {
    let (balance, own) = ledger_record(value);
    u128::from(own) == nonce && balance >= U256::from(cost)
}

/// The maximum cost of `tx` when it is a plain transfer that may skip reading its records (see
/// [`EthTransaction::plain_transfer_to`]; a cost that fits a `u128`).
pub fn plain_transfer_cost(tx: &EthTransaction) -> Option<u128> {
    tx.plain_transfer_to()?;
    tx.max_cost().and_then(|cost| u128::try_from(cost).ok())
}

/// Deltas on keys, and the beneficiary's reward still to pay: what [`Transfer::settle`] gives.
pub type Settled = (Vec<(Vec<u8>, Delta)>, u128);

/// What a transfer skips reading.
#[derive(Clone, Copy, Debug, Default)]
pub struct Transfer {
    /// The sender's maximum cost, when its record is assumed rather than read.
    sender_cost: Option<u128>,
    /// The value, when the recipient's record is not read: more than zero, so the recipient
    /// exists after the transfer whatever it was before (nothing for EIP-161 to delete).
    credit: Option<u128>,
}

impl Transfer {
    /// What `tx`, whose [`plain_transfer_cost`] is `cost`, can skip reading in `view`: nothing
    /// when its recipient has code.
    pub fn plan(tx: &EthTransaction, cost: Option<u128>, view: &mut dyn View) -> Self {
        let (Some(cost), Some(to)) = (cost, tx.plain_transfer_to()) else { return Self::default() };
        if view.read(&code_hash_key(to)).is_some() {
            return Self::default();
        }
        let sender = tx.sender();
        let assumption = Assumption::new(&LEDGER_CAN_PAY, u128::from(tx.nonce()), cost);
        let sender_cost = view.assume(&account_key(sender), assumption).then_some(cost);
        let value = u128::try_from(tx.value()).ok().filter(|&value| value > 0);
        Self { sender_cost, credit: value.filter(|_| to != sender) }
    }

    /// The view as the VM reads it: `view`, with the stand-ins for the records skipped.
    pub fn keys<'a>(&self, tx: &EthTransaction, view: &'a mut dyn View) -> ViewKeys<'a> {
        ViewKeys {
            view,
            sender: self
                .sender_cost
                .map(|cost| (account_key(tx.sender()), encode_ledger_record(U256::from(cost), tx.nonce()))),
            absent: self.credit.and(tx.to()).map(account_key),
        }
    }

    /// Takes what the VM wrote to the stand-ins out of `changes` and returns it as deltas, with
    /// the beneficiary's `reward` folded into the sender's payment when the sender is the
    /// beneficiary (the fee is part of the cost paid, so it never exceeds the payment). Returns
    /// the deltas and the reward still to pay.
    pub fn settle(
        &self,
        tx: &EthTransaction,
        changes: &mut ChangeSet,
        beneficiary: hyperion_vm::Address,
        reward: u128,
    ) -> Result<Settled, String> {
        let mut deltas = Vec::new();
        let mut reward_left = reward;
        if let Some(cost) = self.sender_cost {
            let key = account_key(tx.sender());
            let after = changes.remove(&key).flatten();
            let (balance, nonce) = ledger_record(after.as_deref());
            let cost = U256::from(cost);
            if after.is_none() || nonce < tx.nonce() || balance > cost {
                return Err(format!("a transfer left its sender's stand-in record at {after:?}"));
            }
            let mut debit = u128::try_from(cost - balance).expect("at most the cost, a u128");
            if tx.sender() == beneficiary {
                debit = debit.checked_sub(reward).ok_or("a reward beyond the sender's payment")?;
                reward_left = 0;
            }
            deltas.push((key, Delta { add: u128::from(nonce - tx.nonce()), sub: debit, kind: &LEDGER_PAID }));
        }
        if let (Some(value), Some(to)) = (self.credit, tx.to()) {
            let key = account_key(to);
            let after = changes.remove(&key).flatten();
            if after != Some(encode_ledger_record(U256::from(value), 0)) {
                return Err(format!("a transfer left its recipient's stand-in record at {after:?}"));
            }
            deltas.push((key, Delta::add(&LEDGER_BALANCE, value)));
        }
        Ok((deltas, reward_left))
    }
}

/// The executor's view as the VM's keys, with stand-ins for the records a [`Transfer`] skips.
pub struct ViewKeys<'a> {
    view: &'a mut dyn View,
    /// The sender's key and its stand-in record.
    sender: Option<(Vec<u8>, Vec<u8>)>,
    /// The recipient's key, read as absent.
    absent: Option<Vec<u8>>,
}

impl KeyRead for ViewKeys<'_> {
    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        match (&self.sender, &self.absent) {
            (Some((sender, record)), _) if sender.as_slice() == key => Some(record.clone()),
            (_, Some(absent)) if absent.as_slice() == key => None,
            _ => self.view.read(key),
        }
    }
}
