//! The pallet's parameters and genesis section (`genesis.runtime.staking` in a chain spec).

use hyperion_primitives::{Address, Balance, Public, UNIT};
use parity_scale_codec::{Decode, Encode};
use serde::{Deserialize, Serialize};

use crate::types::Perbill;

/// Most sequencers that can be registered (bounds the work of an election).
pub const MAX_SEQUENCERS_LIMIT: u32 = 10_000;

/// Most validators an epoch may have (consensus bounds its sets at 1,024).
pub const MAX_VALIDATORS_LIMIT: u32 = 1_024;

/// Where slashed stake goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SlashDestination {
    /// To the Holders Mining pool: paid out to the other stakers.
    Pool,
    /// Burned.
    Burn,
}

/// The chain's staking parameters. Fractions are parts per billion (`50000000` is 5%). A
/// field left out takes its default.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct StakingConfig {
    /// Blocks per epoch; must equal the chain spec's `genesis.epochLength`.
    pub epoch_length: u64,
    /// How many sequencers, the most backed, form an epoch's validator set.
    pub max_validators: u32,
    /// Most sequencers that may register.
    pub max_sequencers: u32,
    /// The least an operator must bond to its own sequencer to be elected.
    #[serde(with = "hyperion_runtime::serde_u128")]
    pub min_self_bond: Balance,
    /// Blocks between `unbond` and the first block `withdraw_unbonded` can take the funds.
    pub unbonding_blocks: u64,
    /// Most a sequencer's commission may move in one change (one change per epoch).
    pub max_commission_change: Perbill,
    /// Minted per block and paid to stakers with the Holders Mining pool; may be zero.
    #[serde(with = "hyperion_runtime::serde_u128")]
    pub block_reward: Balance,
    /// Fraction of stake slashed for signing two conflicting messages.
    pub double_sign_slash: Perbill,
    /// Fraction of stake slashed for downtime.
    pub downtime_slash: Perbill,
    /// A validator is down when it missed more than this fraction of the blocks it was
    /// expected to propose in an epoch (expected: its share of the power × the epoch's blocks).
    pub downtime_threshold: Perbill,
    /// Epochs a jailed sequencer waits before `unjail`.
    pub jail_epochs: u64,
    /// Blocks after an offence during which its evidence is accepted.
    pub evidence_max_age: u64,
    /// Where slashed stake goes.
    pub slash_destination: SlashDestination,
}

impl Default for StakingConfig {
    /// Metis's figures where they exist (a 20,000-token minimum self-bond); 7 days of 1-second
    /// blocks to unbond; no block reward.
    fn default() -> Self {
        Self {
            epoch_length: 600,
            max_validators: 21,
            max_sequencers: 1_000,
            min_self_bond: 20_000 * UNIT,
            unbonding_blocks: 7 * 24 * 3600,
            max_commission_change: Perbill(10_000_000),
            block_reward: 0,
            double_sign_slash: Perbill(50_000_000),
            downtime_slash: Perbill(1_000_000),
            downtime_threshold: Perbill(500_000_000),
            jail_epochs: 2,
            evidence_max_age: 24 * 3600,
            slash_destination: SlashDestination::Pool,
        }
    }
}

impl StakingConfig {
    /// Checks the parameters; the error names the field.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |field: &str, message: String| Err((field.to_string(), message));
        if self.epoch_length == 0 {
            return bad("epochLength", "must be positive".into());
        }
        if self.max_validators == 0 || self.max_validators > MAX_VALIDATORS_LIMIT {
            return bad("maxValidators", format!("must be 1 to {MAX_VALIDATORS_LIMIT}"));
        }
        if self.max_sequencers < self.max_validators || self.max_sequencers > MAX_SEQUENCERS_LIMIT {
            return bad("maxSequencers", format!("must be maxValidators to {MAX_SEQUENCERS_LIMIT}"));
        }
        for (field, fraction) in [
            ("maxCommissionChange", self.max_commission_change),
            ("downtimeThreshold", self.downtime_threshold),
        ] {
            if !fraction.is_valid() {
                return bad(field, format!("{} is over the whole ({})", fraction.0, Perbill::ONE));
            }
        }
        // A slash of everything would leave pools with shares and no tokens.
        for (field, fraction) in
            [("doubleSignSlash", self.double_sign_slash), ("downtimeSlash", self.downtime_slash)]
        {
            if fraction.0 >= Perbill::ONE {
                return bad(field, format!("must be below the whole ({})", Perbill::ONE));
            }
        }
        Ok(())
    }
}

/// A sequencer registered at genesis.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenesisSequencer {
    /// The operator's account; pays the self-bond from its genesis balance.
    pub operator: Address,
    /// Its consensus key.
    pub consensus_key: Public,
    /// Bonded by the operator at genesis.
    #[serde(with = "hyperion_runtime::serde_u128")]
    pub self_bond: Balance,
    /// Its commission.
    pub commission: Perbill,
}

/// A backer's stake at genesis.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenesisDelegation {
    /// The backer; pays from its genesis balance.
    pub holder: Address,
    /// The sequencer (its operator's account).
    pub sequencer: Address,
    /// Amount bonded.
    #[serde(with = "hyperion_runtime::serde_u128")]
    pub amount: Balance,
}

/// The genesis section. The sequencers listed form the validator set of the first epochs (so
/// the chain spec's `genesis.validators` must list the same keys).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StakingGenesis {
    /// Parameters.
    #[serde(default)]
    pub config: StakingConfig,
    /// Sequencers registered at genesis.
    #[serde(default)]
    pub sequencers: Vec<GenesisSequencer>,
    /// Stake delegated at genesis.
    #[serde(default)]
    pub delegations: Vec<GenesisDelegation>,
}
