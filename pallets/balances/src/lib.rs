//! The balances pallet: one ledger for the native token (18 decimals), shared with the EVM.
//!
//! Each account has a **free** balance (spendable) and a **held** balance (locked by other
//! pallets: bonds, deposits). The pallet keeps the total issuance exact (always the sum of all
//! free and held balances) and counts what was burned, so that the genesis issuance plus what
//! was minted equals the issuance plus what was burned. Accounts are never reaped: an address
//! keeps its nonce even at zero balance, as on Ethereum.
//!
//! Storage (see `hyperion_runtime::storage` for the key layout):
//!
//! ```text
//! Balances.Accounts:      Blake2_128Concat(Address) -> AccountData { free: u128, held: u128 }
//! Balances.TotalIssuance: u128
//! Balances.TotalBurned:   u128
//! ```
//!
//! Other pallets use it through [`hyperion_runtime::Currency`], which [`Balances`] implements.

#![warn(missing_docs)]

mod metadata;
mod pallet;
#[cfg(test)]
mod tests;

pub use pallet::{
    AccountData, Balances, BalancesGenesis, Call, Error, Event, ACCOUNTS, TOTAL_BURNED, TOTAL_ISSUANCE,
};

/// Weight of `transfer`.
pub const TRANSFER_WEIGHT: u64 = 50_000_000;
/// Weight of `transfer_all`.
pub const TRANSFER_ALL_WEIGHT: u64 = 55_000_000;
