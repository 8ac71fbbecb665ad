//! Extrinsics (what a block carries), calls, dispatch errors and event records.
//!
//! ```text
//! Extrinsic  = 0x00 ++ SignedExtrinsic | 0x01 ++ compact(len) ++ raw Ethereum tx bytes
//! SignedExtrinsic = Signer ++ nonce (u64 LE) ++ tip (u128 LE) ++ Call
//! Signer     = 0x00 ++ ed25519 public key (32) ++ signature (64)
//!            | 0x01 ++ Ethereum address (20) ++ r (32) ++ s (32) ++ v (1)
//! Call       = pallet index (u8) ++ call index (u8) ++ compact(len) ++ SCALE(arguments)
//! signed payload = "hyperion/extrinsic/v1" (21 raw bytes) ++ genesis hash (32)
//!                  ++ nonce (u64 LE) ++ tip (u128 LE) ++ Call
//! ```
//!
//! An ed25519 key signs the payload itself. An Ethereum key signs `keccak256(payload)` as a
//! wallet signs a message (EIP-191, see [`crate::ecdsa`]), and the extrinsic comes from its
//! Ethereum address: one account sends both Ethereum transactions and native extrinsics, with
//! one balance and one nonce sequence.
//!
//! The signature covers the genesis hash, so a transaction signed for one chain is invalid on
//! every other chain (replay protection).

use parity_scale_codec::{Decode, Encode};

use crate::ecdsa::{personal_sign_digest, EcdsaSignature, EthPair};
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

/// Who signed a native extrinsic, and the signature over its [`SignedPayload`].
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub enum Signer {
    /// An ed25519 key; the account is [`Public::address`].
    #[codec(index = 0)]
    Ed25519 {
        /// The public key.
        public: Public,
        /// Signature over the payload's bytes.
        signature: Signature,
    },
    /// An Ethereum (secp256k1) account: the signature must recover `address`.
    #[codec(index = 1)]
    Ethereum {
        /// The account.
        address: Address,
        /// `personal_sign` signature over `keccak256` of the payload's bytes.
        signature: EcdsaSignature,
    },
}

/// A native extrinsic, signed with an ed25519 or an Ethereum key.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct SignedExtrinsic {
    /// The signer and its signature over [`SignedPayload`].
    pub signer: Signer,
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
    /// Builds an extrinsic and signs it with an ed25519 key.
    pub fn sign(pair: &Pair, genesis_hash: Hash, nonce: Nonce, tip: Balance, call: Call) -> Self {
        let payload = SignedPayload { genesis_hash, nonce, tip, call: &call };
        let signature = pair.sign(&payload.to_bytes());
        Self { signer: Signer::Ed25519 { public: pair.public(), signature }, nonce, tip, call }
    }

    /// Builds an extrinsic and signs it with an Ethereum key.
    pub fn sign_ethereum(pair: &EthPair, genesis_hash: Hash, nonce: Nonce, tip: Balance, call: Call) -> Self {
        let payload = SignedPayload { genesis_hash, nonce, tip, call: &call };
        let signature = pair.sign_message(&keccak_256(&payload.to_bytes()));
        Self { signer: Signer::Ethereum { address: pair.address(), signature }, nonce, tip, call }
    }

    /// Whether the signature is valid for the chain with `genesis_hash`.
    pub fn verify(&self, genesis_hash: Hash) -> bool {
        let payload = SignedPayload { genesis_hash, nonce: self.nonce, tip: self.tip, call: &self.call };
        match &self.signer {
            Signer::Ed25519 { public, signature } => public.verify(&payload.to_bytes(), signature),
            Signer::Ethereum { address, signature } => {
                let digest = personal_sign_digest(&keccak_256(&payload.to_bytes()));
                signature.recover(&digest) == Some(*address)
            }
        }
    }

    /// The sending account (the one the signer claims; [`Self::verify`] checks it).
    pub fn sender(&self) -> Address {
        match &self.signer {
            Signer::Ed25519 { public, .. } => public.address(),
            Signer::Ethereum { address, .. } => *address,
        }
    }
}

/// Anything a block can carry.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub enum Extrinsic {
    /// A native extrinsic.
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
        let mut bytes = [0u8; 65];
        bytes.iter_mut().for_each(|b| *b = u8::arbitrary(g));
        let signer = match u8::arbitrary(g) % 3 {
            0 => return Extrinsic::Ethereum(Vec::arbitrary(g)),
            1 => Signer::Ed25519 {
                public: Public(Hash::arbitrary(g).0),
                signature: Signature(bytes[..64].try_into().expect("64 bytes")),
            },
            _ => {
                let mut address = [0u8; 20];
                address.copy_from_slice(&Hash::arbitrary(g).0[..20]);
                Signer::Ethereum { address: Address(address), signature: EcdsaSignature(bytes) }
            }
        };
        Extrinsic::Native(SignedExtrinsic {
            signer,
            nonce: u64::arbitrary(g),
            tip: u128::arbitrary(g),
            call: Call::arbitrary(g),
        })
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
