//! The Hyperion node: the `hyperion` binary's library.
//!
//! - [`chain_spec`]: chain specs (embedded `dev` and `local`, or a JSON file).
//! - [`service`]: the running node: state, block store, mempool, block production and import.
//! - [`consensus`]: the BFT engine driven by the node (timers, proposals, the sign record).
//! - [`network`]: libp2p: gossip of consensus messages, blocks and transactions; block sync.
//! - [`follow`]: a node without a validator key follows the chain by block sync.
//! - [`keystore`]: the validator's key on disk (`key insert`).
//! - [`rpc`]: JSON-RPC over HTTP and WebSocket (Substrate method names), and [`eth`]: the
//!   Ethereum JSON-RPC on the same port.
//! - [`transactions`]: gossiped transactions are pooled on their own thread.
//! - [`mempool`], [`block_store`], [`metrics`]: the parts the service is made of.
//! - [`commands`]: the CLI's subcommands (`key`, `build-spec`, `tx`, ...).

#![warn(missing_docs)]

pub mod block_store;
pub mod chain_spec;
pub mod cli;
pub mod commands;
pub mod consensus;
pub mod eth;
pub mod follow;
pub mod keystore;
pub mod mempool;
pub mod metrics;
pub mod network;
pub mod rpc;
pub mod service;
pub mod transactions;
pub mod validators;

use std::sync::Arc;

use hyperion_runtime::{Executor, ExecutorConfig, Runtime};
use pallet_balances::Balances;
use pallet_evm::Evm;

/// Errors of the node.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A chain spec is malformed; `field` is the path of the offending field.
    #[error("invalid chain spec: {field}: {message}")]
    ChainSpec {
        /// Path of the offending field, e.g. `genesis.runtime.balances.balances[1]`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The block store failed or is damaged.
    #[error(transparent)]
    BlockStore(#[from] block_store::Error),
    /// The state backend failed.
    #[error(transparent)]
    State(#[from] hyperion_state::Error),
    /// The runtime refused something.
    #[error(transparent)]
    Runtime(#[from] hyperion_runtime::Error),
    /// A file or network operation failed.
    #[error("{0}")]
    Io(String),
    /// The stored chain is not the chain of the spec.
    #[error("{0}")]
    WrongChain(String),
}

/// This crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Index of the balances pallet in the default runtime.
pub const BALANCES_INDEX: u8 = 1;
/// Index of the EVM pallet in the default runtime.
pub const EVM_INDEX: u8 = 2;
/// Index of the staking pallet in the default runtime.
pub const STAKING_INDEX: u8 = 3;

/// The default chain's EVM pallet (over the default runtime's balances).
pub fn default_evm() -> Arc<Evm> {
    Arc::new(Evm::new(EVM_INDEX, Arc::new(Balances::new(BALANCES_INDEX))))
}

/// The default chain's runtime: `system` (0), `balances` (1), `evm` (2), which handles
/// Ethereum transactions, and `staking` (3). It executes blocks serially.
pub fn default_runtime() -> Arc<Runtime> {
    Arc::new(runtime_parts())
}

/// The default runtime, executing blocks with MPEF on `threads` worker threads (1: serially).
pub fn default_runtime_with_threads(
    threads: usize,
) -> std::result::Result<Arc<Runtime>, hyperion_runtime::Error> {
    let executor = Executor::new(ExecutorConfig::with_threads(threads))
        .map_err(|e| hyperion_runtime::Error::Config(e.to_string()))?;
    Ok(Arc::new(runtime_parts().with_executor(executor)))
}

/// The threads `--execution-threads` defaults to: one per core.
pub fn default_execution_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn runtime_parts() -> Runtime {
    let balances = Arc::new(Balances::new(BALANCES_INDEX));
    let evm = default_evm();
    let staking = Arc::new(pallet_staking::Staking::new(
        STAKING_INDEX,
        balances.clone(),
        Arc::new(validators::ConsensusEvidence),
    ));
    Runtime::new(
        balances.clone(),
        vec![(BALANCES_INDEX, balances), (EVM_INDEX, evm.clone()), (STAKING_INDEX, staking)],
    )
    .and_then(|runtime| runtime.with_ethereum(EVM_INDEX, evm))
    .expect("the default runtime is well formed")
}

#[cfg(test)]
mod tests;
