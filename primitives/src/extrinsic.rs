//! Extrinsics (what a block carries), calls, dispatch errors and event records.
//!
//! ```text
//! Extrinsic  = 0x00 ++ SignedExtrinsic | 0x01 ++ compact(len) ++ raw Ethereum tx bytes
//! SignedExtrinsic = signer (32) ++ signature (64) ++ nonce (u64 LE) ++ tip (u128 LE) ++ Call
//! Call       = pallet index (u8) ++ call index (u8) ++ compact(len) ++ SCALE(arguments)
//! signed payload = "hyperion/extrinsic/v1" (21 raw bytes) ++ genesis hash (32)
//!                  ++ nonce (u64 LE) ++ tip (u128 LE) ++ Call
//! ```
//!
//! The signature covers the genesis hash, so a transaction signed for one chain is invalid on
//! every other chain (replay protection).

use parity_scale_codec::{Decode, Encode};

use crate::hashing::{blake2_256, keccak_256};
use crate::{Address, Balance, Hash, Nonce, Pair, Public, Signature};

/// A call into a pallet: which pallet, which of its calls, and the SCALE-encoded arguments.
///
/// The arguments stay opaque here; the runtime decodes them with the pallet's own `Call` type.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct Call {
    /// The pallet's index in the runtime.
    pub pallet: u8,
    /// The call's index within the pallet.
    pub call: u8,
    /// SCALE encoding of the call's arguments.
    pub args: Vec<u8>,
}

/// A native extrinsic, signed with ed25519.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct SignedExtrinsic {
    /// The signer's public key; the account is [`Public::address`].
    pub signer: Public,
    /// Signature over [`SignedPayload`].
    pub signature: Signature,
    /// The signer's account nonce this extrinsic consumes.
    pub nonce: Nonce,
    /// An extra fee paid to the block's proposer, for priority.
    pub tip: Balance,
    /// What to do.
    pub call: Call,
}

/// What a native signer signs.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignedPayload<'a> {
    /// Hash of the genesis block of the chain this extrinsic is meant for.
    pub genesis_hash: Hash,
    /// See [`SignedExtrinsic::nonce`].
    pub nonce: Nonce,
    /// See [`SignedExtrinsic::tip`].
    pub tip: Balance,
    /// See [`SignedExtrinsic::call`].
    pub call: &'a Call,
}

/// Domain tag in front of every signed payload, so that no other signed message of Hyperion
/// (votes, for example) can be replayed as an extrinsic.
const PAYLOAD_TAG: &[u8; 21] = b"hyperion/extrinsic/v1";

impl SignedPayload<'_> {
    /// The bytes that are signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PAYLOAD_TAG.len() + 32 + 8 + 16 + self.call.size_hint());
        out.extend_from_slice(PAYLOAD_TAG);
        self.genesis_hash.encode_to(&mut out);
        self.nonce.encode_to(&mut out);
        self.tip.encode_to(&mut out);
        self.call.encode_to(&mut out);
        out
    }
}

impl SignedExtrinsic {
    /// Builds and signs an extrinsic.
    pub fn sign(pair: &Pair, genesis_hash: Hash, nonce: Nonce, tip: Balance, call: Call) -> Self {
        let payload = SignedPayload { genesis_hash, nonce, tip, call: &call };
        let signature = pair.sign(&payload.to_bytes());
        Self { signer: pair.public(), signature, nonce, tip, call }
    }

    /// Whether the signature is valid for the chain with `genesis_hash`.
    pub fn verify(&self, genesis_hash: Hash) -> bool {
        let payload = SignedPayload { genesis_hash, nonce: self.nonce, tip: self.tip, call: &self.call };
        self.signer.verify(&payload.to_bytes(), &self.signature)
    }

    /// The sending account.
    pub fn sender(&self) -> Address {
        self.signer.address()
    }
}

/// Anything a block can carry.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub enum Extrinsic {
    /// A native, ed25519-signed extrinsic.
    #[codec(index = 0)]
    Native(SignedExtrinsic),
    /// A raw Ethereum transaction (EIP-2718 envelope or legacy RLP), decoded by the EVM pallet.
    #[codec(index = 1)]
    Ethereum(Vec<u8>),
}

impl Extrinsic {
    /// The extrinsic's hash: `blake2_256(SCALE)` for native ones, `keccak256(raw)` for Ethereum
    /// transactions (their Ethereum transaction hash).
    pub fn hash(&self) -> Hash {
        match self {
            Extrinsic::Native(_) => Hash(self.using_encoded(blake2_256)),
            Extrinsic::Ethereum(raw) => Hash(keccak_256(raw)),
        }
    }
}

/// Why a dispatched call failed. The fee is paid and the nonce used all the same.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode)]
pub enum DispatchError {
    /// The origin may not make this call.
    #[codec(index = 0)]
    BadOrigin,
    /// The call index does not exist in the pallet.
    #[codec(index = 1)]
    CallNotFound,
    /// The call's arguments could not be decoded.
    #[codec(index = 2)]
    Undecodable,
    /// An arithmetic overflow or underflow.
    #[codec(index = 3)]
    Arithmetic,
    /// A pallet's own documented error: pallet index and the error's index in its `Error` enum.
    #[codec(index = 4)]
    Module {
        /// The pallet's index in the runtime.
        pallet: u8,
        /// The error's index in the pallet's metadata.
        error: u8,
    },
}

/// An event emitted while applying an extrinsic or running a block hook.
///
/// `data` is the SCALE encoding of the event's fields, described by the pallet's metadata.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct EventRecord {
    /// The emitting pallet's index.
    pub pallet: u8,
    /// The event's index in the pallet's metadata.
    pub event: u8,
    /// SCALE-encoded fields.
    pub data: Vec<u8>,
}

#[cfg(test)]
impl quickcheck::Arbitrary for Call {
    fn arbitrary(g: &mut quickcheck::Gen) -> Self {
        Self { pallet: u8::arbitrary(g), call: u8::arbitrary(g), args: Vec::arbitrary(g) }
    }
}

#[cfg(test)]
impl quickcheck::Arbitrary for Extrinsic {
    fn arbitrary(g: &mut quickcheck::Gen) -> Self {
        if bool::arbitrary(g) {
            let mut sig = [0u8; 64];
            sig.iter_mut().for_each(|b| *b = u8::arbitrary(g));
            Extrinsic::Native(SignedExtrinsic {
                signer: Public(Hash::arbitrary(g).0),
                signature: Signature(sig),
                nonce: u64::arbitrary(g),
                tip: u128::arbitrary(g),
                call: Call::arbitrary(g),
            })
        } else {
            Extrinsic::Ethereum(Vec::arbitrary(g))
        }
    }
}

#[cfg(test)]
impl quickcheck::Arbitrary for DispatchError {
    fn arbitrary(g: &mut quickcheck::Gen) -> Self {
        match u8::arbitrary(g) % 5 {
            0 => Self::BadOrigin,
            1 => Self::CallNotFound,
            2 => Self::Undecodable,
            3 => Self::Arithmetic,
            _ => Self::Module { pallet: u8::arbitrary(g), error: u8::arbitrary(g) },
        }
    }
}

#[cfg(test)]
impl quickcheck::Arbitrary for EventRecord {
    fn arbitrary(g: &mut quickcheck::Gen) -> Self {
        Self { pallet: u8::arbitrary(g), event: u8::arbitrary(g), data: Vec::arbitrary(g) }
    }
}
