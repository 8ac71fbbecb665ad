//! The validator set: voting power, thresholds, and stake-weighted proposer rotation.
//!
//! Rotation is CometBFT's proposer-priority algorithm. Each validator has a priority; one step
//! adds every validator's power to its priority, picks the highest (ties to the smaller key) as
//! proposer and takes the total power off its priority. Over any window a validator proposes in
//! proportion to its power, give or take one turn, and the order depends only on the set and the
//! number of steps taken. Before the steps, priorities are rescaled so that they spread over at
//! most twice the total power, and centred on zero.
//!
//! The set advances one step per height; round `r` of a height is `r` more steps on a copy.
//! A set changes only at epoch boundaries ([`ValidatorSet::update`]); a validator that joins
//! starts at `-1.125 × total power`, so that it does not propose at once.

use hyperion_primitives::Public;
use parity_scale_codec::{Decode, Encode};

use crate::types::Round;
use crate::{Error, Result};

/// Most validators a set may hold (bounds certificates and vote tallies).
pub const MAX_VALIDATORS: usize = 1024;

/// Largest total voting power, leaving room for priority arithmetic (as CometBFT does).
pub const MAX_TOTAL_POWER: u64 = (i64::MAX / 8) as u64;

/// A validator and its voting power (its stake, in whatever unit staking chooses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Validator {
    /// The validator's consensus key.
    pub public: Public,
    /// Voting power; never zero in a set.
    pub power: u64,
}

/// The validators of one height with their proposer priorities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    priorities: Vec<i64>,
    proposer: usize,
    total_power: u64,
}

impl ValidatorSet {
    /// A set from genesis (or from staking): at least one validator, no key twice, no zero
    /// power, at most [`MAX_VALIDATORS`] and [`MAX_TOTAL_POWER`]. Ready for its first height.
    pub fn new(mut validators: Vec<Validator>) -> Result<Self> {
        let total_power = check(&mut validators)?;
        let priorities = vec![0; validators.len()];
        let mut set = Self { validators, priorities, proposer: 0, total_power };
        set.increment(1);
        Ok(set)
    }

    /// The validators, ordered by key.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// How many validators.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Whether the set is empty (never, for a set built by [`ValidatorSet::new`]).
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// Sum of all voting power.
    pub fn total_power(&self) -> u64 {
        self.total_power
    }

    /// Position of `public` in [`ValidatorSet::validators`].
    pub fn index_of(&self, public: &Public) -> Option<usize> {
        self.validators.binary_search_by(|v| v.public.cmp(public)).ok()
    }

    /// Voting power of `public`, 0 when not in the set.
    pub fn power_of(&self, public: &Public) -> u64 {
        self.index_of(public).map_or(0, |i| self.validators[i].power)
    }

    /// Whether `power` is more than 2/3 of the total: enough to decide.
    pub fn is_quorum(&self, power: u64) -> bool {
        u128::from(power) * 3 > u128::from(self.total_power) * 2
    }

    /// Whether `power` is more than 1/3 of the total: at least one honest validator within it.
    pub fn exceeds_one_third(&self, power: u64) -> bool {
        u128::from(power) * 3 > u128::from(self.total_power)
    }

    /// The proposer of `round` at this set's height. Costs `round` rotation steps: callers
    /// only ask for rounds that honest validators have reached.
    pub fn proposer(&self, round: Round) -> &Validator {
        if round == 0 {
            return &self.validators[self.proposer];
        }
        let mut copy = self.clone();
        copy.increment(round);
        &self.validators[copy.proposer]
    }

    /// The set of the next height.
    pub fn advance(&mut self) {
        self.increment(1);
    }

    /// The set after an epoch change to `next`: validators that stay keep their priority,
    /// new ones start at `-1.125 × total`, and the proposer of the first height is chosen by
    /// one step, as for any height.
    pub fn update(&self, mut next: Vec<Validator>) -> Result<Self> {
        let total_power = check(&mut next)?;
        let newcomer = -(total_power as i64 + (total_power as i64 >> 3));
        let priorities =
            next.iter().map(|v| self.index_of(&v.public).map_or(newcomer, |i| self.priorities[i])).collect();
        let mut set = Self { validators: next, priorities, proposer: 0, total_power };
        set.increment(1);
        Ok(set)
    }

    fn increment(&mut self, times: Round) {
        self.rescale();
        self.center();
        let total = self.total_power as i64;
        for _ in 0..times {
            let mut best = 0;
            for i in 0..self.validators.len() {
                self.priorities[i] = self.priorities[i].saturating_add(self.validators[i].power as i64);
                if self.priorities[i] > self.priorities[best] {
                    best = i;
                }
            }
            self.priorities[best] = self.priorities[best].saturating_sub(total);
            self.proposer = best;
        }
    }

    /// Divides priorities so that they spread over at most twice the total power.
    fn rescale(&mut self) {
        let (min, max) =
            self.priorities.iter().fold((i64::MAX, i64::MIN), |(lo, hi), &p| (lo.min(p), hi.max(p)));
        let spread = i128::from(max) - i128::from(min);
        let window = 2 * i128::from(self.total_power);
        if spread > window {
            let ratio = (spread + window - 1) / window;
            for p in &mut self.priorities {
                *p = (i128::from(*p) / ratio) as i64;
            }
        }
    }

    /// Subtracts the average priority (rounded down) from every priority.
    fn center(&mut self) {
        let sum: i128 = self.priorities.iter().map(|&p| i128::from(p)).sum();
        let average = sum.div_euclid(self.priorities.len() as i128) as i64;
        for p in &mut self.priorities {
            *p = p.saturating_sub(average);
        }
    }
}

/// Validates and sorts a list of validators; returns the total power.
fn check(validators: &mut [Validator]) -> Result<u64> {
    if validators.is_empty() || validators.len() > MAX_VALIDATORS {
        return Err(Error::ValidatorSet(format!(
            "a set holds 1 to {MAX_VALIDATORS} validators, not {}",
            validators.len()
        )));
    }
    validators.sort_by_key(|v| v.public);
    let mut total: u64 = 0;
    for pair in validators.windows(2) {
        if pair[0].public == pair[1].public {
            return Err(Error::ValidatorSet(format!("{:?} is listed twice", pair[0].public)));
        }
    }
    for v in validators.iter() {
        if v.power == 0 {
            return Err(Error::ValidatorSet(format!("{:?} has no voting power", v.public)));
        }
        total = total.saturating_add(v.power);
    }
    if total > MAX_TOTAL_POWER {
        return Err(Error::ValidatorSet(format!("total power {total} is above {MAX_TOTAL_POWER}")));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyperion_primitives::Pair;

    fn set(powers: &[u64]) -> ValidatorSet {
        ValidatorSet::new(
            powers
                .iter()
                .enumerate()
                .map(|(i, &power)| Validator { public: Pair::from_seed(&[i as u8 + 1; 32]).public(), power })
                .collect(),
        )
        .unwrap()
    }

    fn count_proposers(mut set: ValidatorSet, heights: usize) -> Vec<u64> {
        let mut counts = vec![0u64; set.len()];
        for _ in 0..heights {
            let proposer = set.proposer(0).public;
            counts[set.index_of(&proposer).unwrap()] += 1;
            set.advance();
        }
        counts
    }

    #[test]
    fn thresholds_are_strict() {
        let s = set(&[1, 1, 1, 1]);
        assert!(!s.is_quorum(2) && s.is_quorum(3));
        assert!(!s.exceeds_one_third(1) && s.exceeds_one_third(2));
        let s = set(&[3, 3, 3]);
        assert!(!s.is_quorum(6) && s.is_quorum(7));
        assert!(!s.exceeds_one_third(3) && s.exceeds_one_third(4));
    }

    #[test]
    fn equal_power_takes_turns() {
        let counts = count_proposers(set(&[5, 5, 5, 5]), 400);
        assert_eq!(counts, vec![100; 4]);
    }

    #[test]
    fn later_rounds_rotate_within_a_height() {
        let s = set(&[1, 1, 1, 1]);
        let round_proposers: Vec<Public> = (0..4).map(|r| s.proposer(r).public).collect();
        let mut sorted = round_proposers.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 4, "four rounds of four equal validators have four proposers");
        let mut next = s.clone();
        next.advance();
        assert_eq!(next.proposer(0).public, s.proposer(1).public);
    }

    #[test]
    fn bad_sets_are_refused() {
        let a = Pair::from_seed(&[1; 32]).public();
        assert!(ValidatorSet::new(vec![]).is_err());
        assert!(ValidatorSet::new(vec![Validator { public: a, power: 0 }]).is_err());
        assert!(ValidatorSet::new(vec![Validator { public: a, power: 1 }; 2]).is_err());
        assert!(ValidatorSet::new(vec![Validator { public: a, power: MAX_TOTAL_POWER + 1 }]).is_err());
    }

    #[test]
    fn newcomers_wait_and_leavers_go() {
        let old = set(&[10, 10, 10]);
        let mut validators = old.validators().to_vec();
        let gone = validators.remove(0).public;
        let newcomer = Pair::from_seed(&[50; 32]).public();
        validators.push(Validator { public: newcomer, power: 10 });
        let mut next = old.update(validators).unwrap();
        assert_eq!(next.index_of(&gone), None);
        assert_ne!(next.proposer(0).public, newcomer, "a newcomer does not propose first");
        let mut seen = false;
        for _ in 0..2 * next.len() {
            next.advance();
            seen |= next.proposer(0).public == newcomer;
        }
        assert!(seen, "a newcomer proposes within two turns of the set");
    }

    /// Powers of a small set for the frequency property.
    #[derive(Clone, Debug)]
    struct Powers(Vec<u64>);

    impl quickcheck::Arbitrary for Powers {
        fn arbitrary(g: &mut quickcheck::Gen) -> Self {
            let n = 1 + usize::arbitrary(g) % 10;
            Powers((0..n).map(|_| 1 + u64::arbitrary(g) % 100).collect())
        }
    }

    quickcheck::quickcheck! {
        /// Over `k × total` heights a validator proposes `k × power` times, within a small
        /// bound, whatever the powers.
        fn proposer_frequency_follows_power(powers: Powers) -> bool {
            let s = set(&powers.0);
            let total: u64 = powers.0.iter().sum();
            let k = 20;
            let counts = count_proposers(s.clone(), (k * total) as usize);
            s.validators().iter().zip(&counts).all(|(v, &count)| {
                let expected = k * v.power;
                count.abs_diff(expected) <= powers.0.len() as u64
            })
        }
    }
}
