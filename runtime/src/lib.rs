//! Hyperion's runtime framework, without macros.
//!
//! A chain's runtime is an ordered list of [`Pallet`]s, each at a fixed index. The [`Runtime`]
//! checks native extrinsics (size, signature over a payload that includes the genesis hash,
//! nonce, fee), charges fees (`base + per byte + per weight`, split between the block's
//! proposer, the Holders Mining pool and a burn), dispatches calls inside a storage transaction
//! (a failed call keeps its fee and nonce, loses its writes), builds blocks from a transaction
//! source under weight and size limits, executes and checks imported blocks, builds genesis
//! state from a chain spec, answers queries and describes itself with [`RuntimeMetadata`].
//!
//! Writing a pallet: implement [`Pallet`] on a struct, declare its `Call`, `Event` and `Error`
//! as SCALE enums, its storage as [`StorageValue`]/[`StorageMap`]/[`StorageDoubleMap`]
//! constants, and describe all of them in [`Pallet::metadata`]. `pallet-balances` is the
//! worked example.

#![warn(missing_docs)]

mod block;
mod context;
mod executive;
pub mod fees;
pub mod metadata;
mod pallet;
pub mod storage;
pub mod system;
mod traits;
mod verified;

use hyperion_primitives::Balance;
use parity_scale_codec::{Decode, DecodeAll};
use serde::de::DeserializeOwned;

pub use block::{BuiltBlock, ExecutedBlock, TransactionSource};
pub use context::{BlockInfo, BlockOverlay, Context, QueryContext, StorageRead, StorageWrite};
pub use executive::{Runtime, ValidTransaction};
pub use fees::{holders_pool_account, FeeConfig, FeeSplit};
pub use hyperion_executor::{
    Assumption, Condition, Config as ExecutorConfig, Delta, DeltaKind, Executor, Mode as ExecutionMode,
    SerialReason, Stats as ExecutionStats, View, U128, U64,
};
pub use metadata::{PalletMetadata, RuntimeMetadata};
pub use pallet::{CallError, CallResult, GenesisError, Origin, Pallet, QueryError};
pub use storage::{Blake2_128Concat, Identity, StorageDoubleMap, StorageMap, StorageValue};
pub use system::BlockLimits;
pub use traits::{Currency, EthereumHints, EthereumOutcome, EthereumTransactions, PreparedEthereum};

/// Errors of the runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The state backend failed.
    #[error(transparent)]
    State(#[from] hyperion_state::Error),
    /// A block does not execute to what its header claims.
    #[error("invalid block: {0}")]
    InvalidBlock(String),
    /// The chain spec's genesis is malformed (the message names the field).
    #[error("invalid genesis: genesis.{0}")]
    Genesis(GenesisError),
    /// The runtime was assembled wrongly.
    #[error("runtime configuration: {0}")]
    Config(String),
}

/// This crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Why an extrinsic cannot be included (in the pool or in a block). Nothing is charged.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum InvalidTransaction {
    /// The encoding is malformed.
    #[error("malformed extrinsic: {0}")]
    Malformed(String),
    /// Too large.
    #[error("extrinsic too large: {size} bytes, at most {max}")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The signature does not verify for this chain (wrong key, tampered, or signed for another
    /// chain's genesis).
    #[error("bad signature (or signed for another chain)")]
    BadSignature,
    /// The nonce was already used.
    #[error("stale nonce: expected {expected}, got {got}")]
    StaleNonce {
        /// The account's next nonce.
        expected: u64,
        /// The extrinsic's nonce.
        got: u64,
    },
    /// The nonce is ahead of the account's (valid later).
    #[error("future nonce: expected {expected}, got {got}")]
    FutureNonce {
        /// The account's next nonce.
        expected: u64,
        /// The extrinsic's nonce.
        got: u64,
    },
    /// The sender cannot pay fee plus tip.
    #[error("cannot pay fee: needs {fee}, free balance {balance}")]
    CannotPayFee {
        /// Fee plus tip.
        fee: Balance,
        /// Free balance.
        balance: Balance,
    },
    /// No such pallet or call.
    #[error("unknown call {pallet}/{call}")]
    UnknownCall {
        /// Pallet index.
        pallet: u8,
        /// Call index.
        call: u8,
    },
    /// The call's arguments do not decode.
    #[error("call arguments do not decode")]
    BadArguments,
    /// It does not fit in the rest of the block.
    #[error("does not fit in the block")]
    ExhaustsBlock,
    /// Ethereum transactions need the EVM pallet, which this runtime does not have.
    #[error("Ethereum transactions are not supported by this runtime")]
    EthereumUnsupported,
    /// An Ethereum transaction refused, in the words Ethereum clients expect
    /// (`intrinsic gas too low`, `invalid chain id`, ...).
    #[error("{0}")]
    Ethereum(String),
}

/// Decodes a pallet's `Call` enum from a call index and argument bytes; every byte must be used.
pub fn decode_call<C: Decode>(
    call: u8,
    args: &[u8],
) -> std::result::Result<C, hyperion_primitives::DispatchError> {
    let mut bytes = Vec::with_capacity(1 + args.len());
    bytes.push(call);
    bytes.extend_from_slice(args);
    C::decode_all(&mut &bytes[..]).map_err(|_| hyperion_primitives::DispatchError::Undecodable)
}

/// Reads the argument `name` of a query from its JSON object.
pub fn query_arg<T: DeserializeOwned>(
    args: &serde_json::Value,
    name: &str,
) -> std::result::Result<T, QueryError> {
    let value = args
        .get(name)
        .cloned()
        .ok_or_else(|| QueryError::BadArguments(format!("missing argument {name}")))?;
    serde_json::from_value(value).map_err(|e| QueryError::BadArguments(format!("{name}: {e}")))
}

/// Serde for u128 amounts in JSON: written as decimal strings (JSON numbers lose precision past
/// 2^53), read from strings or numbers.
pub mod serde_u128 {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a decimal string.
    pub fn serialize<S: Serializer>(value: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    /// Reads a decimal string (or `1.5e18` form) or a JSON number.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Amount {
            Number(u64),
            Text(String),
        }
        match Amount::deserialize(d)? {
            Amount::Number(n) => Ok(n.into()),
            Amount::Text(s) => crate::metadata::parse_amount(&s).map_err(serde::de::Error::custom),
        }
    }
}
