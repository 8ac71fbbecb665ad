//! The pallet's records and its arithmetic: fractions, share prices and reward per share.

use hyperion_primitives::{Address, Balance, Public};
use parity_scale_codec::{Decode, Encode};
use primitive_types::U256;
use serde::{Deserialize, Serialize};

/// A fraction in parts per billion (`1_000_000_000` is the whole).
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Default, Encode, Decode, Serialize, Deserialize,
)]
pub struct Perbill(pub u32);

impl Perbill {
    /// The whole: 100%.
    pub const ONE: u32 = 1_000_000_000;

    /// `value × self`, rounded down.
    pub fn of(self, value: Balance) -> Balance {
        mul_div(value, Balance::from(self.0), Balance::from(Self::ONE))
    }

    /// Whether the fraction is at most the whole.
    pub fn is_valid(self) -> bool {
        self.0 <= Self::ONE
    }
}

/// `a × b / c`, rounded down, with a 256-bit intermediate; `u128::MAX` when the quotient does
/// not fit (never for the pallet's quantities, whose products stay within the issuance). `c`
/// must not be zero.
pub fn mul_div(a: u128, b: u128, c: u128) -> u128 {
    let q = U256::from(a) * U256::from(b) / U256::from(c);
    if q.bits() > 128 {
        u128::MAX
    } else {
        q.low_u128()
    }
}

/// `a × b / c`, rounded up (see [`mul_div`]).
pub fn mul_div_ceil(a: u128, b: u128, c: u128) -> u128 {
    let product = U256::from(a) * U256::from(b);
    let divisor = U256::from(c);
    let (q, r) = product.div_mod(divisor);
    let q = if r.is_zero() { q } else { q + U256::one() };
    if q.bits() > 128 {
        u128::MAX
    } else {
        q.low_u128()
    }
}

/// Reward per share is kept scaled by this, so that small rewards over many shares still count.
pub const REWARD_SCALE: u128 = 1_000_000_000_000_000_000;

/// How many past epoch boundaries a sequencer remembers its reward per share for (see
/// [`Delegation::incoming`]).
pub const REMEMBERED_BOUNDARIES: usize = 8;

/// Whether a sequencer may be elected.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode)]
pub enum Status {
    /// A candidate at every election.
    Active,
    /// Stopped by its operator (`chill`); `resume` makes it a candidate again.
    Chilled,
    /// Stopped for misbehaviour until the epoch `until`, then `unjail`.
    Jailed {
        /// The first epoch in which `unjail` is allowed.
        until: u64,
    },
}

impl Status {
    /// The name clients see.
    pub fn name(&self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Chilled => "chilled",
            Status::Jailed { .. } => "jailed",
        }
    }
}

/// A registered sequencer, keyed by its operator's account.
///
/// Stake is held as **shares** of a pool: `tokens` is what the pool is worth, `shares` how many
/// shares exist (`active_shares + incoming_shares`). A slash lowers `tokens` alone, so every
/// backer loses the same fraction at once, whatever their number. Unbonding stake moves to a
/// second pool of the same kind (`unbonding_tokens`, `unbonding_shares`), which is slashed
/// with it until released.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct Sequencer {
    /// Its consensus key.
    pub key: Public,
    /// The operator's cut of the backers' rewards.
    pub commission: Perbill,
    /// The epoch of the last commission change.
    pub commission_changed: Option<u64>,
    /// See [`Status`].
    pub status: Status,
    /// What the bonded pool is worth.
    pub tokens: Balance,
    /// Shares that earn rewards at the next distribution.
    pub active_shares: Balance,
    /// Shares bonded in the current epoch: they earn from the next epoch on.
    pub incoming_shares: Balance,
    /// What the unbonding pool is worth.
    pub unbonding_tokens: Balance,
    /// Shares of the unbonding pool.
    pub unbonding_shares: Balance,
    /// Rewards per active share so far, × [`REWARD_SCALE`].
    pub reward_per_share: u128,
    /// `reward_per_share` right after each of the last epoch boundaries, oldest first.
    pub boundaries: Vec<(u64, u128)>,
    /// Commission earned and not claimed yet.
    pub commission_earned: Balance,
    /// Everything slashed from it so far.
    pub slashed: Balance,
}

impl Sequencer {
    /// All shares of the bonded pool.
    pub fn shares(&self) -> Balance {
        self.active_shares + self.incoming_shares
    }

    /// What `shares` of the bonded pool are worth, rounded down.
    pub fn value_of(&self, shares: Balance) -> Balance {
        if shares == 0 {
            return 0;
        }
        mul_div(shares, self.tokens, self.shares())
    }

    /// Shares that `amount` buys, rounded down (the pool keeps the remainder).
    pub fn shares_for(&self, amount: Balance) -> Balance {
        if self.shares() == 0 || self.tokens == 0 {
            amount
        } else {
            mul_div(amount, self.shares(), self.tokens)
        }
    }

    /// Shares that must go for `amount` to leave, rounded up.
    pub fn shares_to_take(&self, amount: Balance) -> Balance {
        mul_div_ceil(amount, self.shares(), self.tokens.max(1))
    }

    /// Shares of the unbonding pool that `amount` buys, rounded down.
    pub fn unbonding_shares_for(&self, amount: Balance) -> Balance {
        if self.unbonding_shares == 0 || self.unbonding_tokens == 0 {
            amount
        } else {
            mul_div(amount, self.unbonding_shares, self.unbonding_tokens)
        }
    }

    /// What `shares` of the unbonding pool are worth, rounded down.
    pub fn unbonding_value_of(&self, shares: Balance) -> Balance {
        if shares == 0 {
            return 0;
        }
        mul_div(shares, self.unbonding_tokens, self.unbonding_shares)
    }

    /// Reward per share right after the boundary that starts `epoch`; for a boundary older
    /// than those remembered, the oldest remembered (which is at least as high, so shares
    /// activated then are paid less, never more).
    pub fn reward_per_share_at(&self, epoch: u64) -> u128 {
        self.boundaries.iter().find(|(e, _)| *e >= epoch).map_or(self.reward_per_share, |(_, rps)| *rps)
    }
}

/// A backer's stake in one sequencer (the operator's own stake is one too).
#[derive(Clone, PartialEq, Eq, Debug, Default, Encode, Decode)]
pub struct Delegation {
    /// Shares that earn rewards.
    pub shares: Balance,
    /// Shares bonded in epoch `incoming_epoch`; they earn from the epoch after it.
    pub incoming: Balance,
    /// See `incoming`.
    pub incoming_epoch: u64,
    /// Rewards of `shares` accounted for already, rounded up: `shares × reward per share`.
    pub reward_debt: u128,
    /// Rewards earned and not claimed yet.
    pub unclaimed: Balance,
}

impl Delegation {
    /// All shares.
    pub fn total_shares(&self) -> Balance {
        self.shares + self.incoming
    }

    /// Brings the rewards up to date with `seq`'s reward per share in `epoch`: incoming shares
    /// of an earlier epoch become earning shares as of the boundary after it.
    pub fn settle(&mut self, seq: &Sequencer, epoch: u64) {
        let now = seq.reward_per_share;
        let earned = mul_div(self.shares, now, REWARD_SCALE).saturating_sub(self.reward_debt);
        self.unclaimed = self.unclaimed.saturating_add(earned);
        if self.incoming > 0 && self.incoming_epoch < epoch {
            let from = seq.reward_per_share_at(self.incoming_epoch + 1);
            let earned = mul_div(self.incoming, now, REWARD_SCALE).saturating_sub(mul_div_ceil(
                self.incoming,
                from,
                REWARD_SCALE,
            ));
            self.unclaimed = self.unclaimed.saturating_add(earned);
            self.shares += self.incoming;
            self.incoming = 0;
        }
        self.reward_debt = mul_div_ceil(self.shares, now, REWARD_SCALE);
    }

    /// Rewards earned so far, without changing anything.
    pub fn pending(&self, seq: &Sequencer, epoch: u64) -> Balance {
        let mut copy = self.clone();
        copy.settle(seq, epoch);
        copy.unclaimed
    }
}

/// Stake on its way out: shares of a sequencer's unbonding pool, free to withdraw from a block.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct Unbonding {
    /// The sequencer whose unbonding pool holds it.
    pub sequencer: Address,
    /// Shares of that pool.
    pub shares: Balance,
    /// The first block at which it can be withdrawn.
    pub release_block: u64,
}

/// A member of an epoch's validator set.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode)]
pub struct Elected {
    /// The sequencer (its operator's account).
    pub operator: Address,
    /// Its consensus key.
    pub key: Public,
    /// Its voting power (its bonded tokens in whole units, at least 1).
    pub power: u64,
}

/// A consensus offence, as an [`crate::EvidenceVerifier`] found it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Offence {
    /// The key that signed twice.
    pub offender: Public,
    /// The height at which it did.
    pub height: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    quickcheck! {
        fn mul_div_matches_wide_arithmetic(a: u64, b: u64, c: u64) -> bool {
            // Below 2^96 × 2^64 / 2^32: the quotient fits.
            let c = u128::from(c.max(1)) << 32;
            let (a, b) = (u128::from(a) << 32, u128::from(b));
            let exact = U256::from(a) * U256::from(b);
            let down = mul_div(a, b, c);
            let up = mul_div_ceil(a, b, c);
            U256::from(down) * U256::from(c) <= exact
                && exact < (U256::from(down) + 1) * U256::from(c)
                && (up == down || up == down + 1)
                && (U256::from(up) * U256::from(c) >= exact)
        }
    }

    #[test]
    fn fractions() {
        assert_eq!(Perbill(500_000_000).of(1001), 500);
        assert_eq!(Perbill(Perbill::ONE).of(u128::MAX), u128::MAX);
        assert!(!Perbill(Perbill::ONE + 1).is_valid());
        assert_eq!(mul_div(u128::MAX, u128::MAX, 1), u128::MAX, "saturates");
    }
}
