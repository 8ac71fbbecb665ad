//! Consensus messages and the bytes their signatures cover.
//!
//! Every signature covers one canonical encoding, the SCALE encoding of [`SignPayload`]:
//!
//! ```text
//! SignPayload = domain   [u8; 16]   b"hyperion/bft/v1\0"
//!            ++ chain    [u8; 32]   the chain's genesis hash
//!            ++ height   u64 LE
//!            ++ round    u32 LE
//!            ++ step     u8         0 propose, 1 prevote, 2 precommit
//!            ++ value    Option<[u8; 32]>   0x00 = nil, 0x01 ++ block hash
//!            ++ pol_round Option<u32>       proposals only (None for votes)
//! ```
//!
//! A signature for one step can never be replayed as another step, round, height or chain.

use hyperion_primitives::{Hash, Pair, Public, Signature};
use parity_scale_codec::{Decode, DecodeAll, Encode, MaxEncodedLen};

use crate::{Error, Result};

/// A block number.
pub type Height = u64;
/// A round within a height, from 0.
pub type Round = u32;

/// The domain tag at the start of every signed payload.
pub const DOMAIN: [u8; 16] = *b"hyperion/bft/v1\0";

/// Largest encoded [`Message`] accepted from outside.
pub const MAX_MESSAGE_BYTES: usize = 512;

/// Which chain a message belongs to: the genesis hash, so that signatures of one chain (or a
/// fork of its spec with other genesis) are worthless on another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode, MaxEncodedLen)]
pub struct ChainId(pub Hash);

/// The steps of a round, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode, MaxEncodedLen)]
pub enum Step {
    /// Waiting for the round's proposal.
    Propose,
    /// Prevoted; waiting for prevotes.
    Prevote,
    /// Precommitted; waiting for precommits.
    Precommit,
}

/// The two kinds of vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode, MaxEncodedLen)]
pub enum VoteKind {
    /// First-phase vote.
    Prevote,
    /// Second-phase vote; more than 2/3 of the power on one value decides it.
    Precommit,
}

impl VoteKind {
    /// The step this vote is cast in.
    pub fn step(self) -> Step {
        match self {
            VoteKind::Prevote => Step::Prevote,
            VoteKind::Precommit => Step::Precommit,
        }
    }
}

/// A vote for a block hash, or for nil (`value: None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode, MaxEncodedLen)]
pub struct Vote {
    /// Height voted on.
    pub height: Height,
    /// Round voted in.
    pub round: Round,
    /// Prevote or precommit.
    pub kind: VoteKind,
    /// The block hash, or `None` for nil.
    pub value: Option<Hash>,
}

/// A block proposed for a round by that round's proposer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode, MaxEncodedLen)]
pub struct Proposal {
    /// Height proposed for.
    pub height: Height,
    /// Round proposed in.
    pub round: Round,
    /// The block hash.
    pub value: Hash,
    /// The round in which more than 2/3 prevoted this value, when the proposer re-proposes a
    /// block it saw so accepted (Tendermint's "valid round"); `None` for a fresh block.
    pub pol_round: Option<Round>,
}

/// The one encoding every consensus signature covers (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SignPayload {
    /// [`DOMAIN`].
    pub domain: [u8; 16],
    /// The chain.
    pub chain: ChainId,
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// Step.
    pub step: Step,
    /// Block hash or nil.
    pub value: Option<Hash>,
    /// A proposal's valid round; `None` for votes.
    pub pol_round: Option<Round>,
}

impl SignPayload {
    /// The payload of a vote.
    pub fn vote(chain: ChainId, vote: &Vote) -> Self {
        let Vote { height, round, kind, value } = *vote;
        Self { domain: DOMAIN, chain, height, round, step: kind.step(), value, pol_round: None }
    }

    /// The payload of a proposal.
    pub fn proposal(chain: ChainId, proposal: &Proposal) -> Self {
        let Proposal { height, round, value, pol_round } = *proposal;
        Self { domain: DOMAIN, chain, height, round, step: Step::Propose, value: Some(value), pol_round }
    }
}

/// A vote with its validator's signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode, MaxEncodedLen)]
pub struct SignedVote {
    /// The vote.
    pub vote: Vote,
    /// The validator's key.
    pub validator: Public,
    /// Signature over [`SignPayload::vote`].
    pub signature: Signature,
}

impl SignedVote {
    /// Signs `vote` with `pair`.
    pub fn sign(chain: ChainId, vote: Vote, pair: &Pair) -> Self {
        let signature = pair.sign(&SignPayload::vote(chain, &vote).encode());
        Self { vote, validator: pair.public(), signature }
    }

    /// The bytes the signature covers.
    pub fn payload(&self, chain: ChainId) -> Vec<u8> {
        SignPayload::vote(chain, &self.vote).encode()
    }

    /// Whether the signature is the validator's over this vote on `chain`.
    pub fn verify(&self, chain: ChainId) -> bool {
        self.validator.verify(&self.payload(chain), &self.signature)
    }
}

/// A proposal with its proposer's signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode, MaxEncodedLen)]
pub struct SignedProposal {
    /// The proposal.
    pub proposal: Proposal,
    /// The proposer's key.
    pub proposer: Public,
    /// Signature over [`SignPayload::proposal`].
    pub signature: Signature,
}

impl SignedProposal {
    /// Signs `proposal` with `pair`.
    pub fn sign(chain: ChainId, proposal: Proposal, pair: &Pair) -> Self {
        let signature = pair.sign(&SignPayload::proposal(chain, &proposal).encode());
        Self { proposal, proposer: pair.public(), signature }
    }

    /// The bytes the signature covers.
    pub fn payload(&self, chain: ChainId) -> Vec<u8> {
        SignPayload::proposal(chain, &self.proposal).encode()
    }

    /// Whether the signature is the proposer's over this proposal on `chain`.
    pub fn verify(&self, chain: ChainId) -> bool {
        self.proposer.verify(&self.payload(chain), &self.signature)
    }
}

/// What validators send each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode, MaxEncodedLen)]
pub enum Message {
    /// A signed proposal.
    Proposal(SignedProposal),
    /// A signed vote.
    Vote(SignedVote),
}

impl Message {
    /// Height of the message.
    pub fn height(&self) -> Height {
        match self {
            Message::Proposal(p) => p.proposal.height,
            Message::Vote(v) => v.vote.height,
        }
    }

    /// Round of the message.
    pub fn round(&self) -> Round {
        match self {
            Message::Proposal(p) => p.proposal.round,
            Message::Vote(v) => v.vote.round,
        }
    }

    /// The signer.
    pub fn signer(&self) -> Public {
        match self {
            Message::Proposal(p) => p.proposer,
            Message::Vote(v) => v.validator,
        }
    }

    /// The bytes its signer signed, for the chain `chain`.
    pub fn payload(&self, chain: ChainId) -> Vec<u8> {
        match self {
            Message::Proposal(p) => p.payload(chain),
            Message::Vote(v) => v.payload(chain),
        }
    }

    /// Its signature.
    pub fn signature(&self) -> Signature {
        match self {
            Message::Proposal(p) => p.signature,
            Message::Vote(v) => v.signature,
        }
    }

    /// Decodes a message received from outside: bounded in size, no trailing bytes.
    pub fn decode_bounded(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(Error::TooLarge { what: "message", len: bytes.len(), max: MAX_MESSAGE_BYTES });
        }
        Message::decode_all(&mut &bytes[..]).map_err(|e| Error::Decode(format!("message: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> ChainId {
        ChainId(Hash([7; 32]))
    }

    #[test]
    fn sign_payload_layout_is_stable() {
        let vote = Vote { height: 5, round: 2, kind: VoteKind::Precommit, value: Some(Hash([9; 32])) };
        let bytes = SignPayload::vote(chain(), &vote).encode();
        let mut expected = b"hyperion/bft/v1\0".to_vec();
        expected.extend([7; 32]);
        expected.extend(5u64.to_le_bytes());
        expected.extend(2u32.to_le_bytes());
        expected.push(2);
        expected.push(1);
        expected.extend([9; 32]);
        expected.push(0);
        assert_eq!(bytes, expected);
        let nil = Vote { value: None, kind: VoteKind::Prevote, ..vote };
        assert_eq!(SignPayload::vote(chain(), &nil).encode().len(), 16 + 32 + 8 + 4 + 1 + 1 + 1);
    }

    #[test]
    fn signatures_bind_every_field() {
        let pair = Pair::from_string("//Alice").unwrap();
        let vote = Vote { height: 1, round: 0, kind: VoteKind::Prevote, value: Some(Hash([1; 32])) };
        let signed = SignedVote::sign(chain(), vote, &pair);
        assert!(signed.verify(chain()));
        assert!(!signed.verify(ChainId(Hash([8; 32]))));
        for other in [
            Vote { height: 2, ..vote },
            Vote { round: 1, ..vote },
            Vote { kind: VoteKind::Precommit, ..vote },
            Vote { value: None, ..vote },
        ] {
            assert!(!SignedVote { vote: other, ..signed }.verify(chain()));
        }
        let proposal = Proposal { height: 1, round: 0, value: Hash([1; 32]), pol_round: None };
        let signed = SignedProposal::sign(chain(), proposal, &pair);
        assert!(signed.verify(chain()));
        let replayed = SignedProposal { proposal: Proposal { pol_round: Some(0), ..proposal }, ..signed };
        assert!(!replayed.verify(chain()));
    }

    #[test]
    fn outside_bytes_are_bounded() {
        let pair = Pair::from_string("//Bob").unwrap();
        let vote = Vote { height: 1, round: 0, kind: VoteKind::Prevote, value: None };
        let message = Message::Vote(SignedVote::sign(chain(), vote, &pair));
        let mut bytes = message.encode();
        assert!(bytes.len() <= MAX_MESSAGE_BYTES && Message::max_encoded_len() <= MAX_MESSAGE_BYTES);
        assert_eq!(Message::decode_bounded(&bytes).unwrap(), message);
        bytes.push(0);
        assert!(Message::decode_bounded(&bytes).is_err());
        assert!(Message::decode_bounded(&[0xff; 3]).is_err());
        assert!(Message::decode_bounded(&vec![0; MAX_MESSAGE_BYTES + 1]).is_err());
    }
}
