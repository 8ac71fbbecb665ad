//! Vote tallies of one height: per round, per kind, the first vote of each validator and the
//! power behind each value.

use std::collections::{BTreeMap, HashMap};

use hyperion_primitives::Hash;

use crate::types::{Round, SignedVote, VoteKind};

/// How many rounds beyond `current + 1` one validator may open in a height. Far-future rounds
/// let a lagging validator catch up (their votes carry it forward once more than 1/3 of the
/// power is there); the limit keeps a Byzantine validator from filling memory with rounds.
pub const CATCH_UP_ROUNDS_PER_VALIDATOR: u8 = 2;

/// What adding a vote did.
#[derive(Debug)]
pub enum Added {
    /// The first vote of this validator for this round and kind.
    New,
    /// The same vote again.
    Duplicate,
    /// A different vote for the same round and kind: the first one is returned.
    Conflict(SignedVote),
    /// The round is too far ahead and the validator used up its catch-up rounds.
    OutOfWindow,
}

/// The votes of one kind in one round.
///
/// A validator's first vote counts towards "any value" and its value. A later, conflicting
/// vote of the same validator is evidence; it also counts towards its own value when the
/// caller accepts it (a value that was proposed, or nil), because a Byzantine validator that
/// showed us one vote may have shown others the other, and a polka relayed to us holds that
/// one. Within the fault bound this cannot give two values a quorum each.
#[derive(Default, Debug)]
pub struct Tally {
    votes: HashMap<(usize, Option<Hash>), SignedVote>,
    first: HashMap<usize, Option<Hash>>,
    power_by_value: HashMap<Option<Hash>, u64>,
    power: u64,
}

impl Tally {
    fn add(&mut self, index: usize, power: u64, vote: SignedVote, accept_conflict: bool) -> Added {
        let value = vote.vote.value;
        if self.votes.contains_key(&(index, value)) {
            return Added::Duplicate;
        }
        match self.first.get(&index) {
            Some(first_value) => {
                let first = self.votes[&(index, *first_value)];
                if accept_conflict {
                    self.votes.insert((index, value), vote);
                    *self.power_by_value.entry(value).or_default() += power;
                }
                Added::Conflict(first)
            }
            None => {
                self.votes.insert((index, value), vote);
                self.first.insert(index, value);
                *self.power_by_value.entry(value).or_default() += power;
                self.power += power;
                Added::New
            }
        }
    }

    /// Power of the validators that voted, each once, whatever their value.
    pub fn power(&self) -> u64 {
        self.power
    }

    /// Power of the validators that voted for `value`.
    pub fn power_for(&self, value: Option<Hash>) -> u64 {
        self.power_by_value.get(&value).copied().unwrap_or(0)
    }

    /// Values with any votes and their power, in value order (nil first).
    pub fn values(&self) -> Vec<(Option<Hash>, u64)> {
        let mut values: Vec<(Option<Hash>, u64)> =
            self.power_by_value.iter().map(|(v, p)| (*v, *p)).collect();
        values.sort_unstable();
        values
    }

    /// The votes for `value`, in validator order.
    pub fn votes_for(&self, value: Option<Hash>) -> Vec<SignedVote> {
        let mut votes: Vec<(usize, SignedVote)> =
            self.votes.iter().filter(|((_, v), _)| *v == value).map(|((i, _), v)| (*i, *v)).collect();
        votes.sort_by_key(|(i, _)| *i);
        votes.into_iter().map(|(_, v)| v).collect()
    }

    /// Whether validator `index`'s vote `vote` is held.
    pub fn holds(&self, index: usize, vote: &SignedVote) -> bool {
        self.votes.get(&(index, vote.vote.value)) == Some(vote)
    }
}

/// Both tallies of one round, and the power of the distinct validators heard in it.
#[derive(Default, Debug)]
pub struct RoundVotes {
    /// Prevotes.
    pub prevotes: Tally,
    /// Precommits.
    pub precommits: Tally,
    senders: HashMap<usize, ()>,
    sender_power: u64,
}

impl RoundVotes {
    /// The tally of `kind`.
    pub fn tally(&self, kind: VoteKind) -> &Tally {
        match kind {
            VoteKind::Prevote => &self.prevotes,
            VoteKind::Precommit => &self.precommits,
        }
    }

    /// Power of the distinct validators that voted in this round.
    pub fn sender_power(&self) -> u64 {
        self.sender_power
    }
}

/// Every vote of one height.
#[derive(Default, Debug)]
pub struct HeightVotes {
    rounds: BTreeMap<Round, RoundVotes>,
    catch_up: HashMap<usize, u8>,
}

impl HeightVotes {
    /// Adds the vote of validator `index` with `power`. Rounds above `current + 1` not yet
    /// open count against the validator's catch-up allowance unless `trusted` (votes of a
    /// verified commit certificate).
    pub fn add(
        &mut self,
        index: usize,
        power: u64,
        vote: SignedVote,
        current: Round,
        trusted: bool,
        accept_conflict: bool,
    ) -> Added {
        let round = vote.vote.round;
        if !trusted && round > current.saturating_add(1) && !self.rounds.contains_key(&round) {
            let used = self.catch_up.entry(index).or_default();
            if *used >= CATCH_UP_ROUNDS_PER_VALIDATOR {
                return Added::OutOfWindow;
            }
            *used += 1;
        }
        let votes = self.rounds.entry(round).or_default();
        let added = match vote.vote.kind {
            VoteKind::Prevote => votes.prevotes.add(index, power, vote, accept_conflict),
            VoteKind::Precommit => votes.precommits.add(index, power, vote, accept_conflict),
        };
        if matches!(added, Added::New) && votes.senders.insert(index, ()).is_none() {
            votes.sender_power += power;
        }
        added
    }

    /// The votes of `round`, if any arrived.
    pub fn round(&self, round: Round) -> Option<&RoundVotes> {
        self.rounds.get(&round)
    }

    /// All rounds with votes, in order.
    pub fn rounds(&self) -> impl Iterator<Item = (Round, &RoundVotes)> {
        self.rounds.iter().map(|(r, v)| (*r, v))
    }

    /// Whether `vote` itself (not another vote of its validator) is held.
    pub fn holds(&self, index: usize, vote: &SignedVote) -> bool {
        self.rounds.get(&vote.vote.round).is_some_and(|r| r.tally(vote.vote.kind).holds(index, vote))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ChainId, Vote};
    use hyperion_primitives::Pair;

    fn vote(seed: u8, round: Round, kind: VoteKind, value: Option<Hash>) -> SignedVote {
        let pair = Pair::from_seed(&[seed; 32]);
        SignedVote::sign(ChainId(Hash::ZERO), Vote { height: 1, round, kind, value }, &pair)
    }

    #[test]
    fn counts_each_validator_once_and_reports_conflicts() {
        let mut votes = HeightVotes::default();
        let a = Some(Hash([1; 32]));
        let b = Some(Hash([2; 32]));
        assert!(matches!(votes.add(0, 10, vote(1, 0, VoteKind::Prevote, a), 0, false, false), Added::New));
        assert!(matches!(
            votes.add(0, 10, vote(1, 0, VoteKind::Prevote, a), 0, false, false),
            Added::Duplicate
        ));
        let first = vote(1, 0, VoteKind::Prevote, a);
        match votes.add(0, 10, vote(1, 0, VoteKind::Prevote, b), 0, false, false) {
            Added::Conflict(held) => assert_eq!(held, first),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            votes.round(0).unwrap().prevotes.power_for(b),
            0,
            "a conflicting vote not accepted does not count"
        );
        assert!(matches!(
            votes.add(0, 10, vote(1, 0, VoteKind::Precommit, None), 0, false, false),
            Added::New
        ));
        assert!(matches!(votes.add(1, 5, vote(2, 0, VoteKind::Prevote, a), 0, false, false), Added::New));
        let round = votes.round(0).unwrap();
        assert_eq!(round.prevotes.power_for(a), 15);
        assert_eq!(round.prevotes.power_for(b), 0);
        assert_eq!(round.prevotes.power(), 15);
        assert_eq!(round.precommits.power_for(None), 10);
        assert_eq!(round.sender_power(), 15, "a validator voting twice counts once");
        assert!(votes.holds(0, &first));
        assert!(!votes.holds(0, &vote(1, 0, VoteKind::Prevote, b)));
        // Accepted, the conflicting vote counts for its value but not twice for "any".
        assert!(matches!(
            votes.add(0, 10, vote(1, 0, VoteKind::Prevote, b), 0, false, true),
            Added::Conflict(_)
        ));
        let round = votes.round(0).unwrap();
        assert_eq!(
            (round.prevotes.power_for(a), round.prevotes.power_for(b), round.prevotes.power()),
            (15, 10, 15)
        );
        assert!(votes.holds(0, &vote(1, 0, VoteKind::Prevote, b)));
    }

    #[test]
    fn far_rounds_are_limited_per_validator() {
        let mut votes = HeightVotes::default();
        for round in [5, 9] {
            assert!(matches!(
                votes.add(0, 1, vote(1, round, VoteKind::Prevote, None), 0, false, false),
                Added::New
            ));
        }
        assert!(matches!(
            votes.add(0, 1, vote(1, 20, VoteKind::Prevote, None), 0, false, false),
            Added::OutOfWindow
        ));
        // A round already open, the next round, and trusted votes are always accepted.
        assert!(matches!(
            votes.add(0, 1, vote(1, 9, VoteKind::Precommit, None), 0, false, false),
            Added::New
        ));
        assert!(matches!(votes.add(0, 1, vote(1, 1, VoteKind::Prevote, None), 0, false, false), Added::New));
        assert!(matches!(
            votes.add(0, 1, vote(1, 30, VoteKind::Precommit, None), 0, true, false),
            Added::New
        ));
    }
}
