//! Hyperion's sequencer consensus: a Tendermint-style BFT protocol as a pure state machine.
//!
//! A staked set of validators takes turns proposing blocks (rotation weighted by stake,
//! [`ValidatorSet`]); each height decides exactly one block once more than 2/3 of the voting
//! power precommits it, and the precommits form a [`CommitCertificate`] anyone can check. The
//! [`Engine`] has no I/O, clock or randomness: the node (or the simulation in `tests/`) feeds it
//! [`Input`]s and carries out its [`Output`]s, so every run replays exactly.
//!
//! Safety across restarts rests on the [`SignRecord`]: the engine persists it before any
//! message it signs leaves, and refuses to sign anything conflicting with it. Two conflicting
//! messages from one validator become [`Evidence`] for slashing.
//!
//! Signatures are ed25519 by ZIP-215's rule ([`hyperion_primitives::verify_batch`] agrees
//! with single verification), over the canonical [`SignPayload`].

#![warn(missing_docs)]

mod certificate;
mod engine;
mod guard;
mod rules;
#[cfg(test)]
mod tests;
mod types;
mod validators;
mod votes;

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use hyperion_primitives::hashing::blake2_256;
use hyperion_primitives::{Public, Signature};

pub use certificate::{CommitCertificate, Evidence, MAX_CERTIFICATE_BYTES};
pub use engine::{Config, Decision, Dropped, Engine, Input, Output, Timeout, TimeoutKind, Timeouts};
pub use guard::{SignRecord, Signed, MAX_EARLIER_SIGNED};
pub use types::{
    ChainId, Height, Message, Proposal, Round, SignPayload, SignedProposal, SignedVote, Step, Vote, VoteKind,
    DOMAIN, MAX_MESSAGE_BYTES,
};
pub use validators::{Validator, ValidatorSet, MAX_TOTAL_POWER, MAX_VALIDATORS};
pub use votes::CATCH_UP_ROUNDS_PER_VALIDATOR;

/// Errors of this crate: input from outside that does not hold.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// Bytes that do not decode.
    #[error("cannot decode {0}")]
    Decode(String),
    /// Bytes over their bound.
    #[error("{what} of {len} bytes is over the limit of {max}")]
    TooLarge {
        /// What was decoded.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A validator set that cannot be used.
    #[error("invalid validator set: {0}")]
    ValidatorSet(String),
    /// A commit certificate that does not prove its block.
    #[error("invalid commit certificate for height {height}: {why}")]
    Certificate {
        /// The certificate's height.
        height: Height,
        /// What is wrong.
        why: String,
    },
    /// Evidence that does not prove misbehaviour.
    #[error("invalid evidence: {0}")]
    Evidence(String),
}

/// This crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Verified signature ids, and their order of arrival for eviction.
type Seen = (HashSet<[u8; 32]>, VecDeque<[u8; 32]>);

/// Signatures already verified, so that a vote gossiped by several peers, or seen again in a
/// certificate, is verified once. Bounded: the oldest entries go first. Only successful
/// verifications are remembered.
pub struct SignatureCache {
    inner: Mutex<Seen>,
    capacity: usize,
}

impl SignatureCache {
    /// A cache of at most `capacity` signatures.
    pub fn new(capacity: usize) -> Self {
        Self { inner: Mutex::new((HashSet::new(), VecDeque::new())), capacity }
    }

    /// Verifies `signature` by `public` over `payload`, from the cache when it was seen.
    pub fn verify(&self, public: &Public, payload: &[u8], signature: &Signature) -> bool {
        let id = Self::id(public, payload, signature);
        if self.lock().0.contains(&id) {
            return true;
        }
        let valid = public.verify(payload, signature);
        if valid {
            self.insert(id);
        }
        valid
    }

    /// Whether this signature was seen verified.
    pub fn contains(&self, public: &Public, payload: &[u8], signature: &Signature) -> bool {
        self.lock().0.contains(&Self::id(public, payload, signature))
    }

    /// Records a signature verified elsewhere (for example as part of a certificate's batch).
    pub fn remember(&self, public: &Public, payload: &[u8], signature: &Signature) {
        self.insert(Self::id(public, payload, signature));
    }

    fn insert(&self, id: [u8; 32]) {
        let mut inner = self.lock();
        if self.capacity > 0 && inner.0.insert(id) {
            inner.1.push_back(id);
            if inner.1.len() > self.capacity {
                let oldest = inner.1.pop_front().expect("not empty");
                inner.0.remove(&oldest);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn id(public: &Public, payload: &[u8], signature: &Signature) -> [u8; 32] {
        let mut bytes = Vec::with_capacity(96 + payload.len());
        bytes.extend_from_slice(&public.0);
        bytes.extend_from_slice(&signature.0);
        bytes.extend_from_slice(payload);
        blake2_256(&bytes)
    }
}

impl Default for SignatureCache {
    /// Room for the votes of many heights of a large set.
    fn default() -> Self {
        Self::new(1 << 16)
    }
}
