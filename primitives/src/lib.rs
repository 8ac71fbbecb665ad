//! Hyperion's core types and their encodings.
//!
//! Everything that crosses a crate, disk or network boundary is defined here and encoded with
//! SCALE (`parity-scale-codec`). Hash functions, per object:
//!
//! | object | hash |
//! |---|---|
//! | [`Header`] (and so a [`Block`]) | `blake2_256(SCALE(header))` |
//! | native [`Extrinsic`] | `blake2_256(SCALE(extrinsic))` |
//! | Ethereum [`Extrinsic`] | `keccak256(raw transaction bytes)`, as Ethereum tools expect |
//! | native [`Address`] | last 20 bytes of `keccak256(ed25519 public key)`, or an Ethereum key's address |
//! | extrinsics / receipts roots | ordered `sp-trie` `LayoutV1` root (Blake2-256), see `hyperion-state` |

#![warn(missing_docs)]

mod block;
mod crypto;
pub mod ecdsa;
mod extrinsic;
pub mod hashing;
pub mod storage_key;
mod types;

pub use block::{Block, Certificate, Header, Receipt, MAX_CERTIFICATE_BYTES};
pub use crypto::{verify_batch, Pair, Public, Signature, DEV_PHRASE};
pub use ecdsa::{EcdsaSignature, EthPair};
pub use extrinsic::{Call, DispatchError, EventRecord, Extrinsic, SignedExtrinsic, SignedPayload, Signer};
pub use types::{Address, Balance, BlockNumber, Hash, Nonce, Weight, UNIT};

/// Errors of this crate: malformed input from outside.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A hex string was malformed or had the wrong length.
    #[error("invalid hex: {0}")]
    Hex(String),
    /// A secret URI (`//Alice`, a phrase, a hex seed) could not be parsed.
    #[error("invalid secret URI: {0}")]
    SecretUri(String),
    /// A public key is not a valid ed25519 point.
    #[error("invalid ed25519 public key")]
    PublicKey,
}

/// This crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
