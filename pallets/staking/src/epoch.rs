//! What happens at the start of every block and at epoch boundaries.
//!
//! Epoch `e` is blocks `e × L + 1 ..= (e + 1) × L` (L: the epoch length); consensus changes its
//! validator set after every height that is a multiple of L. The first block of epoch `e`:
//!
//! 1. judges epoch `e - 1`: a validator that proposed far fewer blocks than its share of the
//!    power predicts is slashed (`downtimeSlash`) and jailed;
//! 2. shares out the epoch's rewards: `blockReward × L` is minted into the Holders Mining pool,
//!    and the pool is paid to the epoch's validators (jailed ones excepted) in proportion to
//!    their bonded tokens; each sequencer's operator takes its commission and the rest raises
//!    the sequencer's reward per share (claimed later, so the cost does not grow with the
//!    number of holders);
//! 3. makes the stake bonded during epoch `e - 1` earn from now on;
//! 4. elects the validator set of epoch `e + 1`: the `maxValidators` active sequencers with
//!    at least the minimum self-bond, by bonded tokens (ties: the smaller consensus key).
//!
//! The set of `e + 1` is thus fixed a whole epoch before it serves, so every node knows it
//! (from its imported state) long before consensus needs it.

use hyperion_primitives::{Balance, Weight, UNIT};
use hyperion_runtime::{holders_pool_account, Context};

use crate::config::StakingConfig;
use crate::pallet::{
    epoch_of, reward_pot, Event, Reason, Staking, DELEGATIONS, EPOCH, PROPOSED, PROPOSER_OWNERS, SEQUENCERS,
    SEQUENCER_LIST, VALIDATORS,
};
use crate::types::{mul_div, Elected, Perbill, Status, REMEMBERED_BOUNDARIES, REWARD_SCALE};

/// A validator expected to propose fewer blocks than this in an epoch is not judged on it
/// (too few to tell downtime from bad luck).
pub const MIN_EXPECTED_PROPOSALS: u64 = 4;

/// Most voting power one validator gets (keeps a set of 1,024 within consensus's bound).
pub const MAX_POWER: u64 = 1_000_000_000_000_000;

/// Weight of an ordinary block's bookkeeping.
const BLOCK_WEIGHT: Weight = 5_000_000;
/// Weight of an epoch boundary, per registered sequencer.
const BOUNDARY_WEIGHT_PER_SEQUENCER: Weight = 20_000_000;

impl Staking {
    /// Counts the block's proposer; at an epoch's first block, runs the boundary.
    pub(crate) fn begin_block(&self, ctx: &mut Context<'_>) -> Weight {
        let number = ctx.block().number;
        let Some(config) = crate::pallet::CONFIG.get(ctx) else { return 0 };
        if number == 0 {
            return 0;
        }
        let mut weight = BLOCK_WEIGHT;
        let epoch = epoch_of(number, config.epoch_length);
        if (number - 1).is_multiple_of(config.epoch_length) {
            weight += self.boundary(ctx, &config, epoch);
        }
        self.count_proposer(ctx, epoch);
        weight
    }

    fn count_proposer(&self, ctx: &mut Context<'_>, epoch: u64) {
        let proposer = ctx.block().proposer;
        let Some(operator) = PROPOSER_OWNERS.get(ctx, &proposer) else { return };
        let Some(set) = VALIDATORS.get(ctx, &epoch) else { return };
        let Some(position) = set.iter().position(|v| v.operator == operator) else { return };
        let mut proposed = PROPOSED.get_or_default(ctx);
        proposed.resize(set.len(), 0);
        proposed[position] = proposed[position].saturating_add(1);
        PROPOSED.put(ctx, &proposed);
    }

    /// The boundary that starts `epoch`; returns its weight.
    fn boundary(&self, ctx: &mut Context<'_>, config: &StakingConfig, epoch: u64) -> Weight {
        EPOCH.put(ctx, &epoch);
        let mut rewards = 0;
        if epoch > 0 {
            self.judge_downtime(ctx, config, epoch - 1);
            rewards = self.distribute(ctx, config, epoch - 1);
        }
        let operators = SEQUENCER_LIST.get_or_default(ctx);
        for operator in &operators {
            let mut seq = SEQUENCERS.get(ctx, operator).expect("listed sequencers exist");
            seq.active_shares += std::mem::take(&mut seq.incoming_shares);
            seq.boundaries.push((epoch, seq.reward_per_share));
            if seq.boundaries.len() > REMEMBERED_BOUNDARIES {
                seq.boundaries.remove(0);
            }
            SEQUENCERS.insert(ctx, operator, &seq);
        }
        let current = VALIDATORS.get(ctx, &epoch).unwrap_or_default();
        PROPOSED.put(ctx, &vec![0; current.len()]);
        let mut next = self.elect(ctx, config);
        if next.is_empty() {
            // Nobody can be elected: the set stays (consensus needs one).
            next = current;
        }
        if !next.is_empty() {
            ctx.deposit_event(&Event::ValidatorsElected { epoch: epoch + 1, count: next.len() as u32 });
            VALIDATORS.insert(ctx, &(epoch + 1), &next);
        }
        // Sets older than the evidence window are no longer needed.
        let kept = config.evidence_max_age.div_ceil(config.epoch_length) + 1;
        if let Some(old) = epoch.checked_sub(kept + 1) {
            VALIDATORS.remove(ctx, &old);
        }
        ctx.deposit_event(&Event::EpochStarted { epoch, rewards });
        BOUNDARY_WEIGHT_PER_SEQUENCER.saturating_mul(operators.len() as Weight)
    }

    /// Jails (and slashes) the validators of `epoch` that missed too many of their proposals.
    fn judge_downtime(&self, ctx: &mut Context<'_>, config: &StakingConfig, epoch: u64) {
        let Some(set) = VALIDATORS.get(ctx, &epoch) else { return };
        let proposed = PROPOSED.get_or_default(ctx);
        let total_power: u64 = set.iter().map(|v| v.power).sum();
        for (i, validator) in set.iter().enumerate() {
            let expected = mul_div(
                u128::from(config.epoch_length),
                u128::from(validator.power),
                u128::from(total_power.max(1)),
            ) as u64;
            if expected < MIN_EXPECTED_PROPOSALS {
                continue;
            }
            let made = u64::from(proposed.get(i).copied().unwrap_or(0));
            let missed = expected.saturating_sub(made);
            // Down: missed / expected above the threshold.
            if u128::from(missed) * u128::from(Perbill::ONE)
                <= u128::from(expected) * u128::from(config.downtime_threshold.0)
            {
                continue;
            }
            let Some(seq) = SEQUENCERS.get(ctx, &validator.operator) else { continue };
            if matches!(seq.status, Status::Jailed { .. }) {
                continue;
            }
            // Both only fail on a broken invariant (the sequencer exists, the pots hold its stake).
            let _ = self.slash(ctx, &validator.operator, config.downtime_slash, Reason::Downtime);
            let _ = self.jail(ctx, &validator.operator);
        }
    }

    /// Mints the epoch's block rewards into the pool and pays the pool out to `epoch`'s
    /// validators; returns what was paid.
    fn distribute(&self, ctx: &mut Context<'_>, config: &StakingConfig, epoch: u64) -> Balance {
        let pool = holders_pool_account();
        let minted = config.block_reward.saturating_mul(u128::from(config.epoch_length));
        if minted > 0 {
            let _ = self.currency.deposit(ctx, &pool, minted);
        }
        let available = self.currency.free_balance(ctx, &pool);
        let Some(set) = VALIDATORS.get(ctx, &epoch) else { return 0 };
        let mut earners = Vec::with_capacity(set.len());
        for validator in &set {
            let Some(seq) = SEQUENCERS.get(ctx, &validator.operator) else { continue };
            if seq.tokens > 0 && !matches!(seq.status, Status::Jailed { .. }) {
                earners.push((validator.operator, seq));
            }
        }
        let staked: Balance = earners.iter().map(|(_, seq)| seq.tokens).sum();
        if available == 0 || staked == 0 {
            return 0;
        }
        let mut paid: Balance = 0;
        for (operator, mut seq) in earners {
            let share = mul_div(available, seq.tokens, staked);
            let commission = seq.commission.of(share);
            let rest = share - commission;
            seq.commission_earned += commission;
            if seq.active_shares == 0 {
                seq.commission_earned += rest;
            } else {
                seq.reward_per_share += mul_div(rest, REWARD_SCALE, seq.active_shares);
            }
            SEQUENCERS.insert(ctx, &operator, &seq);
            paid += share;
        }
        if paid > 0 && self.currency.transfer(ctx, &pool, &reward_pot(), paid).is_err() {
            unreachable!("the pool holds what it pays: {paid} of {available}");
        }
        paid
    }

    /// The validator set the sequencers' stake elects now (empty when nobody qualifies).
    pub(crate) fn elect(&self, ctx: &mut Context<'_>, config: &StakingConfig) -> Vec<Elected> {
        let mut candidates = Vec::new();
        for operator in SEQUENCER_LIST.get_or_default(ctx) {
            let seq = SEQUENCERS.get(ctx, &operator).expect("listed sequencers exist");
            if seq.status != Status::Active || seq.tokens == 0 {
                continue;
            }
            let own =
                DELEGATIONS.get(ctx, &operator, &operator).map_or(0, |d| seq.value_of(d.total_shares()));
            if own < config.min_self_bond {
                continue;
            }
            candidates.push((seq.tokens, seq.key, operator));
        }
        candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        candidates.truncate(config.max_validators as usize);
        candidates
            .into_iter()
            .map(|(tokens, key, operator)| Elected {
                operator,
                key,
                power: ((tokens / UNIT).min(u128::from(MAX_POWER)) as u64).max(1),
            })
            .collect()
    }
}
