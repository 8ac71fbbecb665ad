//! Small traits through which pallets use each other.

use hyperion_primitives::{Address, Balance, DispatchError};

use crate::context::{Context, StorageRead};

/// A fungible ledger with holds, implemented by the balances pallet.
///
/// Every account has a `free` balance (spendable) and a `held` balance (locked for a purpose:
/// staking bonds, deposits). Total issuance is the sum of all free and held balances; `withdraw`
/// and `burn` reduce it, `deposit` increases it. Every mutating method is all-or-nothing: on
/// error nothing changed.
pub trait Currency: Send + Sync {
    /// Spendable balance of `who`.
    fn free_balance(&self, s: &mut dyn StorageRead, who: &Address) -> Balance;

    /// Held balance of `who`.
    fn held_balance(&self, s: &mut dyn StorageRead, who: &Address) -> Balance;

    /// Sum of all free and held balances.
    fn total_issuance(&self, s: &mut dyn StorageRead) -> Balance;

    /// Moves `amount` of free balance from `from` to `to`.
    fn transfer(
        &self,
        ctx: &mut Context<'_>,
        from: &Address,
        to: &Address,
        amount: Balance,
    ) -> Result<(), DispatchError>;

    /// Removes `amount` from `who`'s free balance and from the issuance (fees that are then
    /// redistributed with [`Currency::deposit`]).
    fn withdraw(&self, ctx: &mut Context<'_>, who: &Address, amount: Balance) -> Result<(), DispatchError>;

    /// Adds `amount` to `who`'s free balance and to the issuance.
    fn deposit(&self, ctx: &mut Context<'_>, who: &Address, amount: Balance) -> Result<(), DispatchError>;

    /// Destroys `amount` of `who`'s free balance for good and records it as burned.
    fn burn(&self, ctx: &mut Context<'_>, who: &Address, amount: Balance) -> Result<(), DispatchError>;

    /// Moves `amount` from free to held.
    fn hold(&self, ctx: &mut Context<'_>, who: &Address, amount: Balance) -> Result<(), DispatchError>;

    /// Moves `amount` from held back to free.
    fn release(&self, ctx: &mut Context<'_>, who: &Address, amount: Balance) -> Result<(), DispatchError>;
}
