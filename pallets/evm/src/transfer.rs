//! Plain transfers that do not read the records they change.
//!
//! A transaction with no call data to an account without code runs no code: nothing in it can
//! see more of its sender than that the nonce is the transaction's and the free balance covers
//! the maximum cost, nor anything of its recipient's balance. So it assumes that of its sender
//! ([`Context::assume`], [`Currency::assume_free_at_least`]) instead of reading it, runs the EVM
//! against stand-ins ([`StandIns`]: the sender with exactly that nonce and balance, the
//! recipient with no balance), and writes what the EVM did to them as deltas: one more nonce,
//! the amount taken off the sender, the value added to the recipient. A sender's run of
//! payments (an exchange's hot wallet paying out) and a run of deposits to one address then run
//! in parallel instead of one after the other; the balances they leave are the same.

use hyperion_primitives::{Balance, DispatchError};
use hyperion_runtime::system::{ACCOUNT_NONCE, NONCE_IS};
use hyperion_runtime::{Assumption, Context, Currency, Delta, StorageRead, U64};
use hyperion_vm::keys::code_hash_key;
use hyperion_vm::{EthTransaction, StateDiff, U256};

use crate::state::{to_native, StandIns};

/// A plain transfer running on assumptions about its sender.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Transfer {
    /// The most the transaction can take from its sender (what the sender's balance must cover).
    cost: Balance,
    /// The value, when the recipient is credited by a delta: more than zero, so the recipient
    /// exists after the transfer whatever it was (nothing for EIP-161 to delete).
    credit: Option<Balance>,
}

impl Transfer {
    /// `tx` as a plain transfer on assumptions, if it is one (no call data, not a creation, no
    /// blob or authorization list, to an account without code that is not a precompile, from a
    /// sender without code) and its sender's nonce and balance are granted as assumptions.
    pub(crate) fn assume(
        ctx: &mut Context<'_>,
        currency: &dyn Currency,
        tx: &EthTransaction,
    ) -> Option<Self> {
        let to = tx.plain_transfer_to()?;
        let cost = Balance::try_from(tx.max_cost()?).ok()?;
        let sender = tx.sender();
        if ctx.read_raw(&code_hash_key(to)).is_some() || ctx.read_raw(&code_hash_key(sender)).is_some() {
            return None;
        }
        let who = to_native(sender);
        let nonce = Assumption::new(&NONCE_IS, u128::from(tx.nonce()), 0);
        if !ctx.assume(&ACCOUNT_NONCE.key(&who), nonce) || !currency.assume_free_at_least(ctx, &who, cost) {
            return None;
        }
        let value = Balance::try_from(tx.value()).ok().filter(|&value| value > 0);
        Some(Self { cost, credit: value.filter(|_| to != sender) })
    }

    /// What the EVM runs against instead of the records the transfer does not read.
    pub(crate) fn stand_ins(&self, tx: &EthTransaction) -> StandIns {
        StandIns {
            sender: Some((tx.sender(), U256::from(self.cost), tx.nonce())),
            zero_balance: self.credit.and(tx.to()),
        }
    }

    /// Writes what the EVM did to the stand-ins as deltas, and takes them out of `diff`: the
    /// sender's nonce step, the amount the EVM took from it less `refund` (the base-fee part the
    /// pallet charges itself afterwards), the recipient's credit.
    pub(crate) fn settle(
        &self,
        ctx: &mut Context<'_>,
        currency: &dyn Currency,
        tx: &EthTransaction,
        diff: &mut StateDiff,
        refund: Balance,
    ) -> Result<(), DispatchError> {
        // With stand-ins that cover the cost and no code running, the EVM can only have taken
        // at most the cost and stepped the nonce once; anything else is refused, not guessed.
        let sender = tx.sender();
        let after = diff.accounts.remove(&sender).and_then(|changed| changed.account);
        let after = after
            .filter(|a| Some(a.nonce) == tx.nonce().checked_add(1) && a.balance <= U256::from(self.cost));
        let after = after.ok_or(DispatchError::Arithmetic)?;
        let taken = self.cost - Balance::try_from(after.balance).map_err(|_| DispatchError::Arithmetic)?;
        let who = to_native(sender);
        ACCOUNT_NONCE.add(ctx, &who, Delta::add(&U64, 1));
        currency.withdraw_assumed(ctx, &who, taken.checked_sub(refund).ok_or(DispatchError::Arithmetic)?)?;
        if let (Some(value), Some(to)) = (self.credit, tx.to()) {
            let after = diff.accounts.remove(&to).and_then(|changed| changed.account);
            if after.is_none_or(|a| a.balance != U256::from(value)) {
                return Err(DispatchError::Arithmetic);
            }
            currency.deposit(ctx, &to_native(to), value)?;
        }
        Ok(())
    }
}
