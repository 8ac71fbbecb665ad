//! Commit certificates and evidence of double signing: both verifiable by anyone who knows the
//! validator set of their height.
//!
//! ```text
//! CommitCertificate = height u64 ++ round u32 ++ value [u8; 32]
//!                  ++ Vec<(public [u8; 32], signature [u8; 64])>   precommits, in key order
//! ```

use hyperion_primitives::{verify_batch, Hash, Public, Signature};
use parity_scale_codec::{Decode, DecodeAll, Encode};

use crate::types::{ChainId, Height, Round, SignedProposal, SignedVote, Vote, VoteKind};
use crate::validators::{ValidatorSet, MAX_VALIDATORS};
use crate::{Error, Result, SignatureCache};

/// Largest encoded certificate accepted from outside.
pub const MAX_CERTIFICATE_BYTES: usize = 64 + 5 + MAX_VALIDATORS * 96;

/// The precommits of more than 2/3 of the power for one block: proof that it was decided.
/// Stored with the block (`Block::certificate`) and served to nodes that sync.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct CommitCertificate {
    /// Height decided.
    pub height: Height,
    /// Round of the precommits.
    pub round: Round,
    /// The decided block's hash.
    pub value: Hash,
    /// The precommitting validators and their signatures, ordered by key.
    pub signatures: Vec<(Public, Signature)>,
}

impl CommitCertificate {
    /// The certificate made of `precommits` (all for `value` in `round` at `height`).
    pub fn from_precommits(height: Height, round: Round, value: Hash, precommits: &[SignedVote]) -> Self {
        let mut signatures: Vec<(Public, Signature)> =
            precommits.iter().map(|v| (v.validator, v.signature)).collect();
        signatures.sort_by_key(|(public, _)| *public);
        Self { height, round, value, signatures }
    }

    /// The precommits it holds, as signed votes.
    pub fn votes(&self) -> impl Iterator<Item = SignedVote> + '_ {
        let vote = Vote {
            height: self.height,
            round: self.round,
            kind: VoteKind::Precommit,
            value: Some(self.value),
        };
        self.signatures.iter().map(move |(validator, signature)| SignedVote {
            vote,
            validator: *validator,
            signature: *signature,
        })
    }

    /// Checks the certificate against the validator set of its height: known validators, each
    /// once, valid signatures (verified as one batch), more than 2/3 of the power.
    pub fn verify(&self, chain: ChainId, set: &ValidatorSet) -> Result<()> {
        self.verify_cached(chain, set, None)
    }

    /// [`CommitCertificate::verify`], skipping signatures `cache` has seen verified and
    /// remembering the ones it verifies.
    pub fn verify_cached(
        &self,
        chain: ChainId,
        set: &ValidatorSet,
        cache: Option<&SignatureCache>,
    ) -> Result<()> {
        let bad = |why: String| Err(Error::Certificate { height: self.height, why });
        if self.signatures.len() > set.len() {
            return bad(format!("{} signatures for {} validators", self.signatures.len(), set.len()));
        }
        let mut power = 0u64;
        for pair in self.signatures.windows(2) {
            if pair[0].0 >= pair[1].0 {
                return bad("signers are not in strict key order".into());
            }
        }
        for (validator, _) in &self.signatures {
            match set.power_of(validator) {
                0 => return bad(format!("{validator:?} is not a validator of this height")),
                p => power += p,
            }
        }
        if !set.is_quorum(power) {
            return bad(format!("power {power} of {} is not more than 2/3", set.total_power()));
        }
        let payload = self.votes().next().map(|v| v.payload(chain)).unwrap_or_default();
        let items: Vec<(Public, &[u8], Signature)> = self
            .signatures
            .iter()
            .filter(|(public, signature)| !cache.is_some_and(|c| c.contains(public, &payload, signature)))
            .map(|(public, signature)| (*public, payload.as_slice(), *signature))
            .collect();
        if !verify_batch(&items) {
            return bad("a signature is invalid".into());
        }
        if let Some(cache) = cache {
            for (public, _, signature) in &items {
                cache.remember(public, &payload, signature);
            }
        }
        Ok(())
    }

    /// Decodes a certificate received from outside: bounded in size, no trailing bytes.
    pub fn decode_bounded(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_CERTIFICATE_BYTES {
            return Err(Error::TooLarge {
                what: "certificate",
                len: bytes.len(),
                max: MAX_CERTIFICATE_BYTES,
            });
        }
        Self::decode_all(&mut &bytes[..]).map_err(|e| Error::Decode(format!("certificate: {e}")))
    }
}

/// Two conflicting messages signed by one validator: proof of misbehaviour for slashing.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub enum Evidence {
    /// Two different votes of one kind in one round.
    DoubleVote {
        /// The vote that encodes first.
        first: SignedVote,
        /// The other vote.
        second: SignedVote,
    },
    /// Two different proposals for one round.
    DoubleProposal {
        /// The proposal that encodes first.
        first: SignedProposal,
        /// The other proposal.
        second: SignedProposal,
    },
}

impl Evidence {
    /// Evidence of two votes, in canonical order; `None` when they do not conflict.
    pub fn double_vote(a: SignedVote, b: SignedVote) -> Option<Self> {
        let conflict = a.validator == b.validator
            && a.vote.height == b.vote.height
            && a.vote.round == b.vote.round
            && a.vote.kind == b.vote.kind
            && a.vote.value != b.vote.value;
        let (first, second) = if a.encode() <= b.encode() { (a, b) } else { (b, a) };
        conflict.then_some(Evidence::DoubleVote { first, second })
    }

    /// Evidence of two proposals, in canonical order; `None` when they do not conflict.
    pub fn double_proposal(a: SignedProposal, b: SignedProposal) -> Option<Self> {
        let conflict = a.proposer == b.proposer
            && a.proposal.height == b.proposal.height
            && a.proposal.round == b.proposal.round
            && a.proposal != b.proposal;
        let (first, second) = if a.encode() <= b.encode() { (a, b) } else { (b, a) };
        conflict.then_some(Evidence::DoubleProposal { first, second })
    }

    /// The validator that signed both.
    pub fn offender(&self) -> Public {
        match self {
            Evidence::DoubleVote { first, .. } => first.validator,
            Evidence::DoubleProposal { first, .. } => first.proposer,
        }
    }

    /// Height of the offence.
    pub fn height(&self) -> Height {
        match self {
            Evidence::DoubleVote { first, .. } => first.vote.height,
            Evidence::DoubleProposal { first, .. } => first.proposal.height,
        }
    }

    /// Checks the evidence against the validator set of its height: the two messages
    /// conflict, the offender was a validator, and both signatures are its own.
    pub fn verify(&self, chain: ChainId, set: &ValidatorSet) -> Result<()> {
        if set.power_of(&self.offender()) == 0 {
            return Err(Error::Evidence("the offender is not a validator of that height".into()));
        }
        self.verify_signed(chain)
    }

    /// Checks the evidence without the validator set (for whoever keeps the sets, as staking
    /// does): the two messages conflict and both signatures are the offender's.
    pub fn verify_signed(&self, chain: ChainId) -> Result<()> {
        let bad = |why: &str| Err(Error::Evidence(why.into()));
        let (conflicting, signed) = match self {
            Evidence::DoubleVote { first, second } => (
                Evidence::double_vote(*first, *second).as_ref() == Some(self),
                first.verify(chain) && second.verify(chain),
            ),
            Evidence::DoubleProposal { first, second } => (
                Evidence::double_proposal(*first, *second).as_ref() == Some(self),
                first.verify(chain) && second.verify(chain),
            ),
        };
        if !conflicting {
            return bad("the two messages do not conflict (or are not in canonical order)");
        }
        if !signed {
            return bad("a signature is invalid");
        }
        Ok(())
    }

    /// The evidence two certificates for different blocks at one height give: every
    /// validator that precommitted both in one round. (Certificates of different rounds
    /// alone prove nothing against anyone.)
    pub fn from_certificates(a: &CommitCertificate, b: &CommitCertificate) -> Vec<Evidence> {
        if a.height != b.height || a.round != b.round || a.value == b.value {
            return Vec::new();
        }
        let theirs: std::collections::HashMap<Public, SignedVote> =
            b.votes().map(|v| (v.validator, v)).collect();
        a.votes()
            .filter_map(|v| theirs.get(&v.validator).and_then(|w| Evidence::double_vote(v, *w)))
            .collect()
    }
}
