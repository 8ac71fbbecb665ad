//! The pallet itself: storage, calls, events, errors, genesis and queries. The epoch
//! transition (downtime, rewards, election) is in `epoch.rs`.

use std::sync::{Arc, LazyLock};

use hyperion_primitives::{Address, Balance, DispatchError, Hash, Public, Weight};
use hyperion_runtime::{
    decode_call, holders_pool_account, Blake2_128Concat, CallResult, Context, Currency, GenesisError,
    Identity, Origin, Pallet, PalletMetadata, QueryContext, QueryError, StorageDoubleMap, StorageMap,
    StorageRead, StorageValue,
};
use parity_scale_codec::{Decode, Encode};
use serde_json::Value;

use crate::config::{SlashDestination, StakingConfig, StakingGenesis};
use crate::types::{Delegation, Elected, Offence, Perbill, Sequencer, Status, Unbonding};

pub(crate) const PREFIX: &str = "Staking";

/// The parameters.
pub const CONFIG: StorageValue<StakingConfig> = StorageValue::new(PREFIX, "Config");
/// Registered sequencers, by operator.
pub const SEQUENCERS: StorageMap<Address, Sequencer, Blake2_128Concat> =
    StorageMap::new(PREFIX, "Sequencers");
/// Operators of all registered sequencers, in registration order.
pub const SEQUENCER_LIST: StorageValue<Vec<Address>> = StorageValue::new(PREFIX, "SequencerList");
/// The operator of each consensus key.
pub const KEY_OWNERS: StorageMap<Public, Address, Blake2_128Concat> = StorageMap::new(PREFIX, "KeyOwners");
/// The operator of each consensus key's address (the `proposer` of the blocks it builds).
pub const PROPOSER_OWNERS: StorageMap<Address, Address, Blake2_128Concat> =
    StorageMap::new(PREFIX, "ProposerOwners");
/// Stake, by (holder, sequencer).
pub const DELEGATIONS: StorageDoubleMap<Address, Address, Delegation, Blake2_128Concat, Blake2_128Concat> =
    StorageDoubleMap::new(PREFIX, "Delegations");
/// The sequencers each holder backs.
pub const HOLDER_SEQUENCERS: StorageMap<Address, Vec<Address>, Blake2_128Concat> =
    StorageMap::new(PREFIX, "HolderSequencers");
/// Each holder's stake on its way out.
pub const UNBONDING: StorageMap<Address, Vec<Unbonding>, Blake2_128Concat> =
    StorageMap::new(PREFIX, "Unbonding");
/// The current epoch.
pub const EPOCH: StorageValue<u64> = StorageValue::new(PREFIX, "Epoch");
/// Each recent epoch's validator set (the current one, the next one once elected, and those
/// still within the evidence window).
pub const VALIDATORS: StorageMap<u64, Vec<Elected>, Identity> = StorageMap::new(PREFIX, "Validators");
/// Blocks proposed in the current epoch by each member of its set, in the set's order.
pub const PROPOSED: StorageValue<Vec<u32>> = StorageValue::new(PREFIX, "Proposed");
/// Double signing already punished, by (operator, epoch of the offence): once per epoch, as a
/// faulty node signs twice at many heights before it leaves the set.
pub const REPORTED: StorageDoubleMap<Address, u64, (), Blake2_128Concat, Identity> =
    StorageDoubleMap::new(PREFIX, "Reported");
/// Sum of all sequencers' bonded tokens.
pub const TOTAL_BONDED: StorageValue<Balance> = StorageValue::new(PREFIX, "TotalBonded");
/// Sum of all sequencers' unbonding tokens.
pub const TOTAL_UNBONDING: StorageValue<Balance> = StorageValue::new(PREFIX, "TotalUnbonding");

/// Most sequencers one holder may back at once.
pub const MAX_DELEGATIONS_PER_HOLDER: usize = 32;
/// Most unbonding entries one holder may have at once.
pub const MAX_UNBONDING_ENTRIES: usize = 32;

/// The account holding all bonded stake.
pub fn bonded_pot() -> Address {
    static ACCOUNT: LazyLock<Address> = LazyLock::new(|| Address::for_module(b"stkbond!"));
    *ACCOUNT
}

/// The account holding all unbonding stake.
pub fn unbonding_pot() -> Address {
    static ACCOUNT: LazyLock<Address> = LazyLock::new(|| Address::for_module(b"stkunbd!"));
    *ACCOUNT
}

/// The account holding distributed, unclaimed rewards.
pub fn reward_pot() -> Address {
    static ACCOUNT: LazyLock<Address> = LazyLock::new(|| Address::for_module(b"stkrwrd!"));
    *ACCOUNT
}

/// The epoch of block `number` (block 0, genesis, counts as epoch 0).
pub fn epoch_of(number: u64, epoch_length: u64) -> u64 {
    number.saturating_sub(1) / epoch_length
}

/// Checks evidence of a consensus offence: that it decodes, that its two messages conflict,
/// and that both are signed by the offender's key. The node implements it with the consensus
/// crate; the pallet then checks that the offender was a validator at that height, that the
/// evidence is recent and that it was not punished already.
pub trait EvidenceVerifier: Send + Sync {
    /// The offence the evidence proves on the chain with `genesis_hash` (which its
    /// signatures commit to), or why it proves nothing.
    fn verify(&self, evidence: &[u8], genesis_hash: Hash) -> Result<Offence, String>;
}

/// A verifier that accepts nothing (a runtime without consensus).
pub struct NoEvidence;

impl EvidenceVerifier for NoEvidence {
    fn verify(&self, _evidence: &[u8], _genesis_hash: Hash) -> Result<Offence, String> {
        Err("this runtime accepts no evidence".into())
    }
}

/// Calls.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub enum Call {
    /// Registers the signer as a sequencer with `key`, bonding `self_bond` of its own.
    #[codec(index = 0)]
    RegisterSequencer {
        /// The consensus key its node signs with.
        key: Public,
        /// Its cut of its backers' rewards.
        commission: Perbill,
        /// At least the minimum self-bond.
        self_bond: Balance,
    },
    /// Adds `amount` to the signer's own sequencer's self-bond.
    #[codec(index = 1)]
    Bond {
        /// Amount.
        amount: Balance,
    },
    /// Backs `sequencer` with `amount`; it earns rewards from the next epoch on.
    #[codec(index = 2)]
    Delegate {
        /// The sequencer's operator.
        sequencer: Address,
        /// Amount.
        amount: Balance,
    },
    /// Starts unbonding `amount` of the signer's stake in `sequencer`.
    #[codec(index = 3)]
    Unbond {
        /// The sequencer's operator.
        sequencer: Address,
        /// Amount.
        amount: Balance,
    },
    /// Pays out every unbonding entry of the signer whose period is over.
    #[codec(index = 4)]
    WithdrawUnbonded,
    /// Moves `amount` of the signer's stake from one sequencer to another at once.
    #[codec(index = 5)]
    Redelegate {
        /// From this sequencer.
        from: Address,
        /// To this one.
        to: Address,
        /// Amount.
        amount: Balance,
    },
    /// Changes the signer's sequencer's commission (once per epoch, by a bounded step).
    #[codec(index = 6)]
    SetCommission {
        /// The new commission.
        commission: Perbill,
    },
    /// Stops the signer's sequencer from being elected.
    #[codec(index = 7)]
    Chill,
    /// Makes a chilled sequencer a candidate again.
    #[codec(index = 8)]
    Resume,
    /// Ends a jail whose time is over.
    #[codec(index = 9)]
    Unjail,
    /// Pays the signer its rewards from every sequencer it backs, and its commission.
    #[codec(index = 10)]
    ClaimRewards,
    /// Reports two conflicting messages signed by one validator (SCALE-encoded consensus
    /// evidence): the offender is slashed and jailed.
    #[codec(index = 11)]
    ReportEquivocation {
        /// The evidence.
        evidence: Vec<u8>,
    },
}

/// Why stake was slashed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode)]
pub enum Reason {
    /// Two conflicting messages signed.
    DoubleSign,
    /// Too many missed proposals in an epoch.
    Downtime,
}

/// Events.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub enum Event {
    /// A sequencer registered.
    #[codec(index = 0)]
    SequencerRegistered {
        /// Its operator.
        operator: Address,
        /// Its consensus key.
        key: Public,
    },
    /// Stake was bonded.
    #[codec(index = 1)]
    Bonded {
        /// Who bonded.
        holder: Address,
        /// To which sequencer.
        sequencer: Address,
        /// Amount.
        amount: Balance,
    },
    /// Stake started unbonding.
    #[codec(index = 2)]
    Unbonded {
        /// Whose.
        holder: Address,
        /// From which sequencer.
        sequencer: Address,
        /// Amount.
        amount: Balance,
        /// The first block it can be withdrawn.
        release_block: u64,
    },
    /// Unbonded stake was paid out.
    #[codec(index = 3)]
    Withdrawn {
        /// To whom.
        holder: Address,
        /// Amount.
        amount: Balance,
    },
    /// Stake moved between sequencers.
    #[codec(index = 4)]
    Redelegated {
        /// Whose.
        holder: Address,
        /// From.
        from: Address,
        /// To.
        to: Address,
        /// Amount.
        amount: Balance,
    },
    /// A commission changed.
    #[codec(index = 5)]
    CommissionSet {
        /// The sequencer.
        sequencer: Address,
        /// The new commission (parts per billion).
        commission: u32,
    },
    /// A sequencer stopped (chill), started again (resume, unjail).
    #[codec(index = 6)]
    StatusChanged {
        /// The sequencer.
        sequencer: Address,
        /// Whether it is a candidate now.
        active: bool,
    },
    /// Rewards were paid to a holder.
    #[codec(index = 7)]
    RewardsClaimed {
        /// To whom.
        holder: Address,
        /// Amount.
        amount: Balance,
    },
    /// A new epoch began; its rewards of the previous one were shared out.
    #[codec(index = 8)]
    EpochStarted {
        /// The new epoch.
        epoch: u64,
        /// Distributed for the epoch that ended.
        rewards: Balance,
    },
    /// The validator set of an epoch was elected.
    #[codec(index = 9)]
    ValidatorsElected {
        /// The epoch it serves.
        epoch: u64,
        /// How many.
        count: u32,
    },
    /// Stake was slashed.
    #[codec(index = 10)]
    Slashed {
        /// The sequencer.
        sequencer: Address,
        /// Bonded and unbonding stake taken.
        amount: Balance,
        /// 0: double sign, 1: downtime.
        reason: u8,
    },
    /// A sequencer was jailed.
    #[codec(index = 11)]
    Jailed {
        /// The sequencer.
        sequencer: Address,
        /// The first epoch it may unjail in.
        until: u64,
    },
}

/// Errors, as clients see them (by index).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Error {
    /// The self-bond is below the chain's minimum.
    BelowMinimumSelfBond = 0,
    /// The signer already registered a sequencer.
    AlreadyRegistered = 1,
    /// The consensus key belongs to another sequencer.
    KeyInUse = 2,
    /// No such sequencer.
    NotASequencer = 3,
    /// A commission above 100%.
    InvalidCommission = 4,
    /// The commission moves by more than the chain allows at once.
    CommissionChangeTooLarge = 5,
    /// The commission was changed this epoch already.
    CommissionAlreadyChanged = 6,
    /// More than is bonded.
    InsufficientBond = 7,
    /// Nothing has finished unbonding.
    NothingToWithdraw = 8,
    /// Too many unbonding entries; withdraw some first.
    TooManyUnbonding = 9,
    /// The holder backs too many sequencers.
    TooManyDelegations = 10,
    /// The sequencer is not jailed.
    NotJailed = 11,
    /// The jail time is not over.
    JailNotOver = 12,
    /// The sequencer is jailed.
    StillJailed = 13,
    /// The sequencer is not active.
    NotActive = 14,
    /// The sequencer is active already.
    AlreadyActive = 15,
    /// A zero amount, or one too small to buy a share.
    AmountTooSmall = 16,
    /// The evidence proves nothing.
    InvalidEvidence = 17,
    /// The offender was punished already for double signing in that epoch.
    DuplicateEvidence = 18,
    /// The offence is older than the evidence window.
    ExpiredEvidence = 19,
    /// The offender was not a validator at that height.
    NotAValidator = 20,
    /// No more sequencers can register.
    TooManySequencers = 21,
    /// An active operator's self-bond cannot drop below the minimum (chill first).
    SelfBondBelowMinimum = 22,
    /// No rewards to claim.
    NoRewards = 23,
    /// The holder has no stake in that sequencer.
    NoDelegation = 24,
    /// Moving stake to the sequencer it is in.
    SameSequencer = 25,
}

/// Weight of every call but the ones below.
pub const CALL_WEIGHT: Weight = 200_000_000;
/// Weight of `claim_rewards` (up to [`MAX_DELEGATIONS_PER_HOLDER`] delegations).
pub const CLAIM_WEIGHT: Weight = 1_000_000_000;
/// Weight of `report_equivocation` (two signature checks).
pub const REPORT_WEIGHT: Weight = 500_000_000;
/// Weight of `withdraw_unbonded` (up to [`MAX_UNBONDING_ENTRIES`] entries).
pub const WITHDRAW_WEIGHT: Weight = 600_000_000;

/// Adds `add` to and takes `sub` from a total.
fn change_total(ctx: &mut Context<'_>, item: &StorageValue<Balance>, add: Balance, sub: Balance) {
    let value = item.get_or_default(ctx) + add - sub;
    item.put(ctx, &value);
}

/// The staking pallet. See the crate docs.
pub struct Staking {
    pub(crate) index: u8,
    pub(crate) currency: Arc<dyn Currency>,
    evidence: Arc<dyn EvidenceVerifier>,
}

impl Staking {
    /// The pallet, at `index` in the runtime, moving funds through `currency` and checking
    /// evidence with `evidence`.
    pub fn new(index: u8, currency: Arc<dyn Currency>, evidence: Arc<dyn EvidenceVerifier>) -> Self {
        Self { index, currency, evidence }
    }

    pub(crate) fn error(&self, e: Error) -> DispatchError {
        DispatchError::Module { pallet: self.index, error: e as u8 }
    }

    pub(crate) fn config(s: &mut (impl StorageRead + ?Sized)) -> StakingConfig {
        CONFIG.get(s).unwrap_or_default()
    }

    fn sequencer(
        &self,
        s: &mut (impl StorageRead + ?Sized),
        who: &Address,
    ) -> Result<Sequencer, DispatchError> {
        SEQUENCERS.get(s, who).ok_or(self.error(Error::NotASequencer))
    }

    /// What `operator` has bonded to its own sequencer.
    pub(crate) fn self_bond(
        s: &mut (impl StorageRead + ?Sized),
        operator: &Address,
        seq: &Sequencer,
    ) -> Balance {
        DELEGATIONS.get(s, operator, operator).map_or(0, |d| seq.value_of(d.total_shares()))
    }

    fn epoch(s: &mut (impl StorageRead + ?Sized)) -> u64 {
        EPOCH.get_or_default(s)
    }

    fn register(
        &self,
        ctx: &mut Context<'_>,
        operator: Address,
        key: Public,
        commission: Perbill,
        self_bond: Balance,
    ) -> Result<(), DispatchError> {
        let config = Self::config(ctx);
        if SEQUENCERS.get(ctx, &operator).is_some() {
            return Err(self.error(Error::AlreadyRegistered));
        }
        if KEY_OWNERS.get(ctx, &key).is_some() || PROPOSER_OWNERS.get(ctx, &key.address()).is_some() {
            return Err(self.error(Error::KeyInUse));
        }
        if !commission.is_valid() {
            return Err(self.error(Error::InvalidCommission));
        }
        if self_bond < config.min_self_bond {
            return Err(self.error(Error::BelowMinimumSelfBond));
        }
        let mut list = SEQUENCER_LIST.get_or_default(ctx);
        if list.len() >= config.max_sequencers as usize {
            return Err(self.error(Error::TooManySequencers));
        }
        list.push(operator);
        SEQUENCER_LIST.put(ctx, &list);
        let sequencer = Sequencer {
            key,
            commission,
            commission_changed: None,
            status: Status::Active,
            tokens: 0,
            active_shares: 0,
            incoming_shares: 0,
            unbonding_tokens: 0,
            unbonding_shares: 0,
            reward_per_share: 0,
            boundaries: Vec::new(),
            commission_earned: 0,
            slashed: 0,
        };
        SEQUENCERS.insert(ctx, &operator, &sequencer);
        KEY_OWNERS.insert(ctx, &key, &operator);
        PROPOSER_OWNERS.insert(ctx, &key.address(), &operator);
        ctx.deposit_event(&Event::SequencerRegistered { operator, key });
        self.delegate(ctx, operator, operator, self_bond, false)
    }

    /// Bonds `amount` of `holder`'s free balance to `operator`'s sequencer. `at_genesis`: the
    /// shares earn from the first epoch (else from the next one).
    pub(crate) fn delegate(
        &self,
        ctx: &mut Context<'_>,
        holder: Address,
        operator: Address,
        amount: Balance,
        at_genesis: bool,
    ) -> Result<(), DispatchError> {
        self.currency.transfer(ctx, &holder, &bonded_pot(), amount)?;
        self.add_stake(ctx, holder, operator, amount, at_genesis)?;
        ctx.deposit_event(&Event::Bonded { holder, sequencer: operator, amount });
        Ok(())
    }

    /// Adds `amount`, already in the bonded pot, to `holder`'s stake in `operator`'s
    /// sequencer (see [`Self::delegate`]).
    fn add_stake(
        &self,
        ctx: &mut Context<'_>,
        holder: Address,
        operator: Address,
        amount: Balance,
        at_genesis: bool,
    ) -> Result<(), DispatchError> {
        if amount == 0 {
            return Err(self.error(Error::AmountTooSmall));
        }
        let epoch = Self::epoch(ctx);
        let mut seq = self.sequencer(ctx, &operator)?;
        let mut delegation = self.delegation_or_new(ctx, &holder, &operator)?;
        delegation.settle(&seq, epoch);
        let shares = seq.shares_for(amount);
        if shares == 0 {
            return Err(self.error(Error::AmountTooSmall));
        }
        seq.tokens += amount;
        if at_genesis {
            seq.active_shares += shares;
            delegation.shares += shares;
            delegation.reward_debt = 0;
        } else {
            seq.incoming_shares += shares;
            delegation.incoming += shares;
            delegation.incoming_epoch = epoch;
        }
        change_total(ctx, &TOTAL_BONDED, amount, 0);
        SEQUENCERS.insert(ctx, &operator, &seq);
        DELEGATIONS.insert(ctx, &holder, &operator, &delegation);
        Ok(())
    }

    /// `holder`'s delegation to `operator`, or a new one (listed among the holder's).
    fn delegation_or_new(
        &self,
        ctx: &mut Context<'_>,
        holder: &Address,
        operator: &Address,
    ) -> Result<Delegation, DispatchError> {
        if let Some(existing) = DELEGATIONS.get(ctx, holder, operator) {
            return Ok(existing);
        }
        let mut list = HOLDER_SEQUENCERS.get_or_default(ctx, holder);
        if list.len() >= MAX_DELEGATIONS_PER_HOLDER {
            return Err(self.error(Error::TooManyDelegations));
        }
        list.push(*operator);
        HOLDER_SEQUENCERS.insert(ctx, holder, &list);
        Ok(Delegation::default())
    }

    /// Stores `delegation`, or forgets it when it holds nothing any more.
    fn store_delegation(
        ctx: &mut Context<'_>,
        holder: &Address,
        operator: &Address,
        delegation: &Delegation,
    ) {
        if delegation.total_shares() > 0 || delegation.unclaimed > 0 {
            DELEGATIONS.insert(ctx, holder, operator, delegation);
            return;
        }
        DELEGATIONS.remove(ctx, holder, operator);
        let mut list = HOLDER_SEQUENCERS.get_or_default(ctx, holder);
        list.retain(|o| o != operator);
        if list.is_empty() {
            HOLDER_SEQUENCERS.remove(ctx, holder);
        } else {
            HOLDER_SEQUENCERS.insert(ctx, holder, &list);
        }
    }

    /// Takes `amount` of `holder`'s stake out of `operator`'s bonded pool (the caller puts it
    /// somewhere). The sequencer and the delegation are stored.
    fn take_stake(
        &self,
        ctx: &mut Context<'_>,
        holder: &Address,
        operator: &Address,
        amount: Balance,
    ) -> Result<Sequencer, DispatchError> {
        if amount == 0 {
            return Err(self.error(Error::AmountTooSmall));
        }
        let epoch = Self::epoch(ctx);
        let config = Self::config(ctx);
        let mut seq = self.sequencer(ctx, operator)?;
        let mut delegation = DELEGATIONS.get(ctx, holder, operator).ok_or(self.error(Error::NoDelegation))?;
        delegation.settle(&seq, epoch);
        let value = seq.value_of(delegation.total_shares());
        if amount > value {
            return Err(self.error(Error::InsufficientBond));
        }
        if holder == operator && seq.status == Status::Active && value - amount < config.min_self_bond {
            return Err(self.error(Error::SelfBondBelowMinimum));
        }
        let shares = if amount == value {
            delegation.total_shares()
        } else {
            seq.shares_to_take(amount).min(delegation.total_shares())
        };
        // Incoming shares (of this epoch, after the settle) go first: they have earned nothing.
        let from_incoming = shares.min(delegation.incoming);
        delegation.incoming -= from_incoming;
        seq.incoming_shares -= from_incoming;
        delegation.shares -= shares - from_incoming;
        seq.active_shares -= shares - from_incoming;
        delegation.reward_debt =
            crate::types::mul_div_ceil(delegation.shares, seq.reward_per_share, crate::types::REWARD_SCALE);
        seq.tokens -= amount;
        change_total(ctx, &TOTAL_BONDED, 0, amount);
        Self::store_delegation(ctx, holder, operator, &delegation);
        SEQUENCERS.insert(ctx, operator, &seq);
        Ok(seq)
    }

    fn unbond(
        &self,
        ctx: &mut Context<'_>,
        holder: Address,
        operator: Address,
        amount: Balance,
    ) -> CallResult {
        let mut entries = UNBONDING.get_or_default(ctx, &holder);
        if entries.len() >= MAX_UNBONDING_ENTRIES {
            return Err(self.error(Error::TooManyUnbonding).into());
        }
        let mut seq = self.take_stake(ctx, &holder, &operator, amount)?;
        let shares = seq.unbonding_shares_for(amount);
        seq.unbonding_tokens += amount;
        seq.unbonding_shares += shares;
        SEQUENCERS.insert(ctx, &operator, &seq);
        change_total(ctx, &TOTAL_UNBONDING, amount, 0);
        self.currency.transfer(ctx, &bonded_pot(), &unbonding_pot(), amount)?;
        let release_block = ctx.block().number + Self::config(ctx).unbonding_blocks;
        entries.push(Unbonding { sequencer: operator, shares, release_block });
        UNBONDING.insert(ctx, &holder, &entries);
        ctx.deposit_event(&Event::Unbonded { holder, sequencer: operator, amount, release_block });
        Ok(())
    }

    fn withdraw_unbonded(&self, ctx: &mut Context<'_>, holder: Address) -> CallResult {
        let now = ctx.block().number;
        let (released, waiting): (Vec<Unbonding>, Vec<Unbonding>) =
            UNBONDING.get_or_default(ctx, &holder).into_iter().partition(|e| e.release_block <= now);
        if released.is_empty() {
            return Err(self.error(Error::NothingToWithdraw).into());
        }
        let mut total: Balance = 0;
        for entry in &released {
            let mut seq = self.sequencer(ctx, &entry.sequencer)?;
            let value = seq.unbonding_value_of(entry.shares);
            seq.unbonding_tokens -= value;
            seq.unbonding_shares -= entry.shares;
            SEQUENCERS.insert(ctx, &entry.sequencer, &seq);
            total += value;
        }
        change_total(ctx, &TOTAL_UNBONDING, 0, total);
        if waiting.is_empty() {
            UNBONDING.remove(ctx, &holder);
        } else {
            UNBONDING.insert(ctx, &holder, &waiting);
        }
        if total > 0 {
            self.currency.transfer(ctx, &unbonding_pot(), &holder, total)?;
        }
        ctx.deposit_event(&Event::Withdrawn { holder, amount: total });
        Ok(())
    }

    fn redelegate(
        &self,
        ctx: &mut Context<'_>,
        holder: Address,
        from: Address,
        to: Address,
        amount: Balance,
    ) -> CallResult {
        if from == to {
            return Err(self.error(Error::SameSequencer).into());
        }
        self.sequencer(ctx, &to)?;
        // The funds stay in the bonded pot: they only change sequencer.
        self.take_stake(ctx, &holder, &from, amount)?;
        self.add_stake(ctx, holder, to, amount, false)?;
        ctx.deposit_event(&Event::Redelegated { holder, from, to, amount });
        Ok(())
    }

    fn set_commission(&self, ctx: &mut Context<'_>, operator: Address, commission: Perbill) -> CallResult {
        let config = Self::config(ctx);
        let epoch = Self::epoch(ctx);
        let mut seq = self.sequencer(ctx, &operator)?;
        if !commission.is_valid() {
            return Err(self.error(Error::InvalidCommission).into());
        }
        if commission.0.abs_diff(seq.commission.0) > config.max_commission_change.0 {
            return Err(self.error(Error::CommissionChangeTooLarge).into());
        }
        if seq.commission_changed == Some(epoch) {
            return Err(self.error(Error::CommissionAlreadyChanged).into());
        }
        seq.commission = commission;
        seq.commission_changed = Some(epoch);
        SEQUENCERS.insert(ctx, &operator, &seq);
        ctx.deposit_event(&Event::CommissionSet { sequencer: operator, commission: commission.0 });
        Ok(())
    }

    fn set_status(&self, ctx: &mut Context<'_>, operator: Address, call: &Call) -> CallResult {
        let config = Self::config(ctx);
        let epoch = Self::epoch(ctx);
        let mut seq = self.sequencer(ctx, &operator)?;
        let next = match (call, seq.status) {
            (Call::Chill, Status::Active) => Status::Chilled,
            (Call::Chill, _) => return Err(self.error(Error::NotActive).into()),
            (Call::Resume, Status::Chilled) => Status::Active,
            (Call::Resume, Status::Active) => return Err(self.error(Error::AlreadyActive).into()),
            (Call::Resume, Status::Jailed { .. }) => return Err(self.error(Error::StillJailed).into()),
            (Call::Unjail, Status::Jailed { until }) if epoch < until => {
                return Err(self.error(Error::JailNotOver).into())
            }
            (Call::Unjail, Status::Jailed { .. }) => Status::Active,
            (Call::Unjail, _) => return Err(self.error(Error::NotJailed).into()),
            _ => unreachable!("only chill, resume and unjail change the status"),
        };
        if next == Status::Active && Self::self_bond(ctx, &operator, &seq) < config.min_self_bond {
            return Err(self.error(Error::BelowMinimumSelfBond).into());
        }
        seq.status = next;
        SEQUENCERS.insert(ctx, &operator, &seq);
        ctx.deposit_event(&Event::StatusChanged { sequencer: operator, active: next == Status::Active });
        Ok(())
    }

    fn claim_rewards(&self, ctx: &mut Context<'_>, holder: Address) -> CallResult {
        let epoch = Self::epoch(ctx);
        let mut total: Balance = 0;
        for operator in HOLDER_SEQUENCERS.get_or_default(ctx, &holder) {
            let seq = self.sequencer(ctx, &operator)?;
            let Some(mut delegation) = DELEGATIONS.get(ctx, &holder, &operator) else { continue };
            delegation.settle(&seq, epoch);
            total += std::mem::take(&mut delegation.unclaimed);
            Self::store_delegation(ctx, &holder, &operator, &delegation);
        }
        if let Some(mut seq) = SEQUENCERS.get(ctx, &holder) {
            total += std::mem::take(&mut seq.commission_earned);
            SEQUENCERS.insert(ctx, &holder, &seq);
        }
        if total == 0 {
            return Err(self.error(Error::NoRewards).into());
        }
        self.currency.transfer(ctx, &reward_pot(), &holder, total)?;
        ctx.deposit_event(&Event::RewardsClaimed { holder, amount: total });
        Ok(())
    }

    fn report_equivocation(&self, ctx: &mut Context<'_>, evidence: &[u8]) -> CallResult {
        let config = Self::config(ctx);
        let now = ctx.block().number;
        let offence = self
            .evidence
            .verify(evidence, ctx.block().genesis_hash)
            .map_err(|_| self.error(Error::InvalidEvidence))?;
        if offence.height == 0 || offence.height >= now {
            return Err(self.error(Error::InvalidEvidence).into());
        }
        if now - offence.height > config.evidence_max_age {
            return Err(self.error(Error::ExpiredEvidence).into());
        }
        let epoch = epoch_of(offence.height, config.epoch_length);
        let set = VALIDATORS.get(ctx, &epoch).ok_or(self.error(Error::ExpiredEvidence))?;
        let operator = KEY_OWNERS.get(ctx, &offence.offender).ok_or(self.error(Error::NotAValidator))?;
        if !set.iter().any(|v| v.operator == operator && v.key == offence.offender) {
            return Err(self.error(Error::NotAValidator).into());
        }
        if REPORTED.get(ctx, &operator, &epoch).is_some() {
            return Err(self.error(Error::DuplicateEvidence).into());
        }
        REPORTED.insert(ctx, &operator, &epoch, &());
        self.slash(ctx, &operator, config.double_sign_slash, Reason::DoubleSign)?;
        self.jail(ctx, &operator)?;
        Ok(())
    }

    /// Takes `fraction` of `operator`'s bonded and unbonding stake, to the pool or burned.
    pub(crate) fn slash(
        &self,
        ctx: &mut Context<'_>,
        operator: &Address,
        fraction: Perbill,
        reason: Reason,
    ) -> Result<(), DispatchError> {
        let config = Self::config(ctx);
        let mut seq = self.sequencer(ctx, operator)?;
        let bonded = fraction.of(seq.tokens);
        let unbonding = fraction.of(seq.unbonding_tokens);
        seq.tokens -= bonded;
        seq.unbonding_tokens -= unbonding;
        seq.slashed += bonded + unbonding;
        SEQUENCERS.insert(ctx, operator, &seq);
        change_total(ctx, &TOTAL_BONDED, 0, bonded);
        change_total(ctx, &TOTAL_UNBONDING, 0, unbonding);
        for (pot, amount) in [(bonded_pot(), bonded), (unbonding_pot(), unbonding)] {
            if amount == 0 {
                continue;
            }
            match config.slash_destination {
                SlashDestination::Pool => {
                    self.currency.transfer(ctx, &pot, &holders_pool_account(), amount)?
                }
                SlashDestination::Burn => self.currency.burn(ctx, &pot, amount)?,
            }
        }
        ctx.deposit_event(&Event::Slashed {
            sequencer: *operator,
            amount: bonded + unbonding,
            reason: reason as u8,
        });
        Ok(())
    }

    /// Jails `operator` for the chain's jail time from now.
    pub(crate) fn jail(&self, ctx: &mut Context<'_>, operator: &Address) -> Result<(), DispatchError> {
        let until = Self::epoch(ctx) + Self::config(ctx).jail_epochs;
        let mut seq = self.sequencer(ctx, operator)?;
        seq.status = Status::Jailed { until };
        SEQUENCERS.insert(ctx, operator, &seq);
        ctx.deposit_event(&Event::Jailed { sequencer: *operator, until });
        Ok(())
    }

    fn decode(call: u8, args: &[u8]) -> Result<Call, DispatchError> {
        decode_call::<Call>(call, args)
    }

    fn genesis_inner(&self, ctx: &mut Context<'_>, config: &Value) -> Result<(), GenesisError> {
        let genesis: StakingGenesis = if config.is_null() {
            StakingGenesis::default()
        } else {
            serde_json::from_value(config.clone()).map_err(|e| GenesisError::new("staking", e.to_string()))?
        };
        genesis
            .config
            .validate()
            .map_err(|(field, message)| GenesisError::new(format!("staking.config.{field}"), message))?;
        CONFIG.put(ctx, &genesis.config);
        EPOCH.put(ctx, &0);
        TOTAL_BONDED.put(ctx, &0);
        TOTAL_UNBONDING.put(ctx, &0);
        let describe = |e: DispatchError| match e {
            DispatchError::Module { pallet, error } if pallet == self.index => {
                crate::metadata::error_name(error).unwrap_or("unknown error").to_string()
            }
            other => format!("{other:?} (is the account endowed in balances?)"),
        };
        for (i, s) in genesis.sequencers.iter().enumerate() {
            self.register(ctx, s.operator, s.consensus_key, s.commission, s.self_bond)
                .map_err(|e| GenesisError::new(format!("staking.sequencers[{i}]"), describe(e)))?;
        }
        for (i, d) in genesis.delegations.iter().enumerate() {
            self.delegate(ctx, d.holder, d.sequencer, d.amount, true)
                .map_err(|e| GenesisError::new(format!("staking.delegations[{i}]"), describe(e)))?;
        }
        // Genesis stake earns from the first epoch.
        for operator in SEQUENCER_LIST.get_or_default(ctx) {
            let mut seq = SEQUENCERS.get(ctx, &operator).expect("listed");
            seq.active_shares += std::mem::take(&mut seq.incoming_shares);
            SEQUENCERS.insert(ctx, &operator, &seq);
            let mut own = DELEGATIONS.get(ctx, &operator, &operator).expect("registered with a self-bond");
            own.shares += std::mem::take(&mut own.incoming);
            DELEGATIONS.insert(ctx, &operator, &operator, &own);
        }
        let set = self.elect(ctx, &genesis.config);
        if !set.is_empty() {
            PROPOSED.put(ctx, &vec![0; set.len()]);
            VALIDATORS.insert(ctx, &0, &set);
        }
        Ok(())
    }
}

impl Pallet for Staking {
    fn name(&self) -> &'static str {
        "staking"
    }

    fn metadata(&self) -> PalletMetadata {
        crate::metadata::metadata()
    }

    fn call_weight(&self, call: u8, args: &[u8]) -> Result<Weight, DispatchError> {
        Ok(match Self::decode(call, args)? {
            Call::ClaimRewards => CLAIM_WEIGHT,
            Call::ReportEquivocation { .. } => REPORT_WEIGHT,
            Call::WithdrawUnbonded => WITHDRAW_WEIGHT,
            _ => CALL_WEIGHT,
        })
    }

    fn dispatch(&self, ctx: &mut Context<'_>, origin: Origin, call: u8, args: &[u8]) -> CallResult {
        let who = origin.ensure_signed()?;
        match Self::decode(call, args)? {
            Call::RegisterSequencer { key, commission, self_bond } => {
                self.register(ctx, who, key, commission, self_bond)?
            }
            Call::Bond { amount } => {
                self.sequencer(ctx, &who)?;
                self.delegate(ctx, who, who, amount, false)?
            }
            Call::Delegate { sequencer, amount } => self.delegate(ctx, who, sequencer, amount, false)?,
            Call::Unbond { sequencer, amount } => self.unbond(ctx, who, sequencer, amount)?,
            Call::WithdrawUnbonded => self.withdraw_unbonded(ctx, who)?,
            Call::Redelegate { from, to, amount } => self.redelegate(ctx, who, from, to, amount)?,
            Call::SetCommission { commission } => self.set_commission(ctx, who, commission)?,
            call @ (Call::Chill | Call::Resume | Call::Unjail) => self.set_status(ctx, who, &call)?,
            Call::ClaimRewards => self.claim_rewards(ctx, who)?,
            Call::ReportEquivocation { evidence } => self.report_equivocation(ctx, &evidence)?,
        }
        Ok(())
    }

    fn on_initialize(&self, ctx: &mut Context<'_>) -> Weight {
        self.begin_block(ctx)
    }

    fn genesis(&self, ctx: &mut Context<'_>, config: &Value) -> Result<(), GenesisError> {
        self.genesis_inner(ctx, config)
    }

    fn default_genesis(&self) -> Value {
        serde_json::to_value(StakingGenesis::default()).expect("serializable")
    }

    fn query(&self, ctx: &mut QueryContext, name: &str, args: &Value) -> Result<Value, QueryError> {
        crate::queries::query(self, ctx, name, args)
    }
}
