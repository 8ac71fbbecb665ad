//! The EVM pallet: Ethereum transactions on Hyperion, executed by MetisVM (`hyperion-vm`).
//!
//! - **One account, two worlds.** An Ethereum address is a Hyperion [`Address`]: its EVM
//!   balance is its free balance in the balances pallet (18 decimals), its EVM nonce is its
//!   account nonce (shared with native extrinsics). Code and storage live under the keys of
//!   [`hyperion_vm::keys`].
//! - **Transactions** arrive as `Extrinsic::Ethereum` (raw EIP-2718 bytes); the runtime hands
//!   them to [`Evm`] through [`hyperion_runtime::EthereumTransactions`]. The pool's checks and
//!   their messages are Ethereum's (`nonce too low`, `insufficient funds for gas * price +
//!   value`, `invalid chain id`, ...). Blob transactions are refused (no blob data here).
//! - **Gas** is paid at an EIP-1559 base fee, adjusted every block from the previous block's gas
//!   use (target half the limit, at most 1/8 per block, never below the chain's minimum), plus
//!   the tip, which goes to the block's proposer. The base-fee part is split as the chain spec's
//!   fee split says (proposer, Holders Mining pool, burn).
//! - **Plain transfers** (no call data, to an account without code) assume their sender's nonce
//!   and balance instead of reading them and write their changes as deltas (see `transfer`), so
//!   a sender's many payments in one block, or many deposits to one address, run in parallel.
//!   Their sender's balance events are `Withdraw`/`Burned` amounts, not `BalanceSet`.
//! - **Blocks**: Ethereum transactions of a block share its gas limit; the header counts their
//!   gas. BLOCKHASH sees the last 256 blocks; PREVRANDAO is the parent's hash; COINBASE is the
//!   proposer.
//!
//! Storage (besides the EVM's code and storage keys):
//!
//! ```text
//! Evm.Config:      SCALE(EvmConfig { chain_id: u64, fork: u8, gas_limit: u64, min_base_fee: u64 })
//! Evm.BaseFee:     u64, the current block's base fee
//! Evm.GasUsed:     u64, gas used by the current block so far
//! Evm.BlockHashes: Identity(u64 number) -> Hash, the last 256 blocks
//! ```

#![warn(missing_docs)]

mod config;
mod pallet;
mod state;
#[cfg(test)]
mod tests;
mod transact;
mod transfer;

pub use config::{
    next_base_fee, EvmConfig, EvmGenesis, GenesisAccount, DEFAULT_GAS_LIMIT, GWEI, OLDEST_FORK,
};
pub use hyperion_primitives::Address;
pub use pallet::{Error, Event, Evm, BASE_FEE, BLOCK_HASHES, BLOCK_HASH_WINDOW, CONFIG, GAS_USED};
pub use state::{to_eth, to_native, write_diff, ChainState, StandIns};
pub use transact::block_env;
