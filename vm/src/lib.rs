//! MetisVM: Ethereum execution on [revm] over Hyperion's state.
//!
//! - [`EvmState`] is what execution reads: accounts, code by hash, storage slots and block
//!   hashes. [`KeyedState`] implements it over Hyperion's key-value state with the layout of
//!   [`keys`]; balances and nonces come from a [`Ledger`] (a chain's own, or [`EvmLedger`]).
//! - [`BlockState`] holds a block's changes over that state and is revm's database while the
//!   block runs; [`BlockState::into_diff`] gives them as a [`StateDiff`], which
//!   [`keys::diff_to_changes`] turns into key-value writes.
//! - [`EthTransaction`] decodes signed transactions (legacy, EIP-2930, EIP-1559, EIP-4844,
//!   EIP-7702) with alloy and recovers their sender; [`Vm`] executes them under a [`Fork`]'s
//!   rules in a [`BlockEnv`], and [`Receipt`]s and roots are computed as Ethereum does.
//!
//! No other crate of the workspace depends on revm: its types stay behind this interface.

#![warn(missing_docs)]

mod code_cache;
mod execute;
pub mod fixtures;
pub mod keys;
mod overlay;
mod receipt;
mod root;
mod spec;
mod state;
mod tx;

pub use alloy_primitives::{keccak256, Address, Bloom, Bytes, Log, B256, U256};
pub use code_cache::{CodeCache, HashCache, SenderCache};
pub use execute::{BlockEnv, CallRequest, Executed, InvalidTx, Status, Vm};
pub use keys::{EvmLedger, KeyRead, KeyedState, Ledger};
pub use overlay::BlockState;
pub use receipt::{block_bloom, logs_hash, receipts_root, Receipt};
pub use revm::primitives::KECCAK_EMPTY;
pub use root::{ethereum_state_root, FullAccount};
pub use spec::{Fork, FORKS};
pub use state::{Account, AccountDiff, EvmState, StateDiff};
pub use tx::{is_delegation, EthTransaction, TxError, MAX_TX_BYTES};

/// Errors of execution itself (not of a transaction, see [`InvalidTx`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The state holds something that cannot be what the layout says.
    #[error("corrupt EVM state: {0}")]
    Corrupt(String),
    /// The state could not be read.
    #[error("state read failed: {0}")]
    State(String),
    /// The block environment is not valid for the fork (revm's words).
    #[error("invalid block environment: {0}")]
    Block(String),
}

impl revm::database_interface::DBErrorMarker for Error {}

/// This crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
