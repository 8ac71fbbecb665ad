//! The staking pallet: sequencers selected by stake, Holders Mining rewards, slashing.
//!
//! - **Sequencers** register with a consensus key, a commission and a self-bond of at least the
//!   chain's minimum. Token holders back them (`delegate`); stake leaves through `unbond`, is
//!   locked for the unbonding period, then `withdraw_unbonded` pays it out.
//! - **Epochs** (see `epoch.rs`): at each boundary the most backed active sequencers are
//!   elected as the validator set of the next epoch; consensus reads it from
//!   [`VALIDATORS`].
//! - **Holders Mining**: the pool (its share of every fee, plus what other pallets pay into it)
//!   and the block reward are shared at each boundary among the epoch's validators by stake,
//!   and within each among its backers by shares, after the operator's commission, through a
//!   reward-per-share accumulator: the cost of a boundary grows with the number of sequencers,
//!   not of holders. Stake earns from the epoch after it was bonded. Rewards are claimed
//!   (`claim_rewards`), never pushed.
//! - **Slashing**: evidence of double signing (`report_equivocation`, checked by an
//!   [`EvidenceVerifier`] the node provides) slashes a fraction of the offender's bonded and
//!   unbonding stake, and so of every backer's, and jails it; a validator that missed too many
//!   of its proposals in an epoch is slashed less and jailed. Slashed stake goes to the pool or
//!   is burned. Double signing is punished once per offender and epoch, and only while its
//!   evidence is recent.
//!
//! Funds: bonded stake is in the [`bonded_pot`] account, unbonding stake in the
//! [`unbonding_pot`], shared-out rewards in the [`reward_pot`] until claimed; the pallet moves
//! them through [`hyperion_runtime::Currency`] only. Stake is kept as shares of each
//! sequencer's pool, so a slash is one write whatever the number of backers.
//!
//! Storage (see `hyperion_runtime::storage` for the key layout):
//!
//! ```text
//! Staking.Config:           StakingConfig
//! Staking.Sequencers:       Blake2_128Concat(operator) -> Sequencer
//! Staking.SequencerList:    Vec<Address>
//! Staking.KeyOwners:        Blake2_128Concat(Public) -> operator
//! Staking.ProposerOwners:   Blake2_128Concat(key's address) -> operator
//! Staking.Delegations:      Blake2_128Concat(holder) ++ Blake2_128Concat(operator) -> Delegation
//! Staking.HolderSequencers: Blake2_128Concat(holder) -> Vec<operator>
//! Staking.Unbonding:        Blake2_128Concat(holder) -> Vec<Unbonding>
//! Staking.Epoch:            u64
//! Staking.Validators:       Identity(epoch) -> Vec<Elected>
//! Staking.Proposed:         Vec<u32>
//! Staking.Reported:         Blake2_128Concat(operator) ++ Identity(epoch) -> ()
//! Staking.TotalBonded, Staking.TotalUnbonding: u128
//! ```

#![warn(missing_docs)]

mod config;
mod epoch;
mod metadata;
mod pallet;
mod queries;
#[cfg(test)]
mod tests;
mod types;

pub use config::{GenesisDelegation, GenesisSequencer, SlashDestination, StakingConfig, StakingGenesis};
pub use epoch::{MAX_POWER, MIN_EXPECTED_PROPOSALS};
pub use pallet::{
    bonded_pot, epoch_of, reward_pot, unbonding_pot, Call, Error, Event, EvidenceVerifier, NoEvidence,
    Reason, Staking, CONFIG, DELEGATIONS, EPOCH, HOLDER_SEQUENCERS, KEY_OWNERS, MAX_DELEGATIONS_PER_HOLDER,
    MAX_UNBONDING_ENTRIES, SEQUENCERS, SEQUENCER_LIST, TOTAL_BONDED, TOTAL_UNBONDING, UNBONDING, VALIDATORS,
};
pub use types::{mul_div, Delegation, Elected, Offence, Perbill, Sequencer, Status, Unbonding};
