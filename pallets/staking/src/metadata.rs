//! The staking pallet's metadata: what `state_getMetadata` tells clients about it.

use hyperion_runtime::metadata::{
    Field, PalletMetadata, QueryMetadata, StorageKeyMetadata, StorageMetadata, TypeDef, VariantMetadata,
};
use hyperion_runtime::storage::StorageHasher;
use hyperion_runtime::{Blake2_128Concat, Identity};

use crate::pallet::{Error, PREFIX};

/// Every error with its name and meaning, by index.
const ERRORS: &[(Error, &str, &str)] = &[
    (Error::BelowMinimumSelfBond, "BelowMinimumSelfBond", "The self-bond is below the chain's minimum."),
    (Error::AlreadyRegistered, "AlreadyRegistered", "The signer already registered a sequencer."),
    (Error::KeyInUse, "KeyInUse", "The consensus key belongs to another sequencer."),
    (Error::NotASequencer, "NotASequencer", "No such sequencer."),
    (Error::InvalidCommission, "InvalidCommission", "A commission above 100%."),
    (
        Error::CommissionChangeTooLarge,
        "CommissionChangeTooLarge",
        "The commission moves by more than allowed.",
    ),
    (Error::CommissionAlreadyChanged, "CommissionAlreadyChanged", "The commission was changed this epoch."),
    (Error::InsufficientBond, "InsufficientBond", "More than is bonded."),
    (Error::NothingToWithdraw, "NothingToWithdraw", "Nothing has finished unbonding."),
    (Error::TooManyUnbonding, "TooManyUnbonding", "Too many unbonding entries; withdraw some first."),
    (Error::TooManyDelegations, "TooManyDelegations", "The holder backs too many sequencers."),
    (Error::NotJailed, "NotJailed", "The sequencer is not jailed."),
    (Error::JailNotOver, "JailNotOver", "The jail time is not over."),
    (Error::StillJailed, "StillJailed", "The sequencer is jailed."),
    (Error::NotActive, "NotActive", "The sequencer is not active."),
    (Error::AlreadyActive, "AlreadyActive", "The sequencer is active already."),
    (Error::AmountTooSmall, "AmountTooSmall", "A zero amount, or one too small to buy a share."),
    (Error::InvalidEvidence, "InvalidEvidence", "The evidence proves nothing."),
    (Error::DuplicateEvidence, "DuplicateEvidence", "Punished already for double signing in that epoch."),
    (Error::ExpiredEvidence, "ExpiredEvidence", "The offence is older than the evidence window."),
    (Error::NotAValidator, "NotAValidator", "The offender was not a validator at that height."),
    (Error::TooManySequencers, "TooManySequencers", "No more sequencers can register."),
    (
        Error::SelfBondBelowMinimum,
        "SelfBondBelowMinimum",
        "An active operator's self-bond cannot drop below the minimum (chill first).",
    ),
    (Error::NoRewards, "NoRewards", "No rewards to claim."),
    (Error::NoDelegation, "NoDelegation", "The holder has no stake in that sequencer."),
    (Error::SameSequencer, "SameSequencer", "Moving stake to the sequencer it is in."),
];

/// The name of error `index`.
pub(crate) fn error_name(index: u8) -> Option<&'static str> {
    ERRORS.iter().find(|(e, ..)| *e as u8 == index).map(|(_, name, _)| *name)
}

/// Calls, events, errors, storage and queries of the pallet.
pub(crate) fn metadata() -> PalletMetadata {
    let f = Field::new;
    let call = |index, name: &str, fields, docs: &str| VariantMetadata::new(index, name, fields, docs);
    let by_address =
        || vec![StorageKeyMetadata { ty: TypeDef::Address, hasher: Blake2_128Concat::NAME.into() }];
    let item = |name: &str, keys: Vec<StorageKeyMetadata>, value: TypeDef, docs: &str| StorageMetadata {
        name: name.into(),
        keys,
        value,
        docs: docs.into(),
    };
    let query = |name: &str, args: Vec<Field>, docs: &str| QueryMetadata {
        name: name.into(),
        args,
        docs: docs.into(),
    };
    PalletMetadata {
        name: "staking".into(),
        index: 0,
        storage_prefix: PREFIX.into(),
        docs: "Staked sequencers: the validator set per epoch by stake, Holders Mining rewards to stakers, \
               slashing and jail for double signing and downtime. Fractions are parts per billion."
            .into(),
        calls: vec![
            call(
                0,
                "register_sequencer",
                vec![f("key", "Hash"), f("commission", "u32"), f("self_bond", "Balance")],
                "Registers the signer as a sequencer with consensus key `key`, bonding `self_bond`.",
            ),
            call(1, "bond", vec![f("amount", "Balance")], "Adds to the signer's own sequencer's self-bond."),
            call(
                2,
                "delegate",
                vec![f("sequencer", "Address"), f("amount", "Balance")],
                "Backs a sequencer; the stake earns from the next epoch on.",
            ),
            call(
                3,
                "unbond",
                vec![f("sequencer", "Address"), f("amount", "Balance")],
                "Starts unbonding; the funds can be withdrawn after the unbonding period.",
            ),
            call(4, "withdraw_unbonded", vec![], "Pays out the unbonding entries whose period is over."),
            call(
                5,
                "redelegate",
                vec![f("from", "Address"), f("to", "Address"), f("amount", "Balance")],
                "Moves stake between sequencers at once; it earns at `to` from the next epoch on.",
            ),
            call(
                6,
                "set_commission",
                vec![f("commission", "u32")],
                "Changes the commission, once per epoch, by at most `maxCommissionChange`.",
            ),
            call(7, "chill", vec![], "Stops the signer's sequencer from being elected."),
            call(8, "resume", vec![], "Makes a chilled sequencer a candidate again."),
            call(9, "unjail", vec![], "Ends a jail whose time is over."),
            call(10, "claim_rewards", vec![], "Pays the signer's rewards from every sequencer it backs."),
            call(
                11,
                "report_equivocation",
                vec![f("evidence", "Bytes")],
                "Reports two conflicting consensus messages of one validator; it is slashed and jailed.",
            ),
        ],
        events: vec![
            call(
                0,
                "SequencerRegistered",
                vec![f("operator", "Address"), f("key", "Hash")],
                "A sequencer registered.",
            ),
            call(
                1,
                "Bonded",
                vec![f("holder", "Address"), f("sequencer", "Address"), f("amount", "Balance")],
                "Stake was bonded.",
            ),
            call(
                2,
                "Unbonded",
                vec![
                    f("holder", "Address"),
                    f("sequencer", "Address"),
                    f("amount", "Balance"),
                    f("release_block", "u64"),
                ],
                "Stake started unbonding.",
            ),
            call(3, "Withdrawn", vec![f("holder", "Address"), f("amount", "Balance")], "Unbonded stake was paid out."),
            call(
                4,
                "Redelegated",
                vec![f("holder", "Address"), f("from", "Address"), f("to", "Address"), f("amount", "Balance")],
                "Stake moved between sequencers.",
            ),
            call(
                5,
                "CommissionSet",
                vec![f("sequencer", "Address"), f("commission", "u32")],
                "A commission changed.",
            ),
            call(
                6,
                "StatusChanged",
                vec![f("sequencer", "Address"), f("active", "bool")],
                "A sequencer stopped or became a candidate again.",
            ),
            call(
                7,
                "RewardsClaimed",
                vec![f("holder", "Address"), f("amount", "Balance")],
                "Rewards were paid to a holder.",
            ),
            call(
                8,
                "EpochStarted",
                vec![f("epoch", "u64"), f("rewards", "Balance")],
                "A new epoch began; the rewards of the last one were shared out.",
            ),
            call(
                9,
                "ValidatorsElected",
                vec![f("epoch", "u64"), f("count", "u32")],
                "The validator set of an epoch was elected.",
            ),
            call(
                10,
                "Slashed",
                vec![f("sequencer", "Address"), f("amount", "Balance"), f("reason", "u8")],
                "Stake was slashed (reason 0: double sign, 1: downtime).",
            ),
            call(11, "Jailed", vec![f("sequencer", "Address"), f("until", "u64")], "A sequencer was jailed."),
        ],
        errors: ERRORS.iter().map(|(e, name, docs)| VariantMetadata::new(*e as u8, name, vec![], docs)).collect(),
        storage: vec![
            item("Config", vec![], TypeDef::Bytes, "SCALE(StakingConfig): the parameters."),
            item("Sequencers", by_address(), TypeDef::Bytes, "SCALE(Sequencer) per operator."),
            item("SequencerList", vec![], TypeDef::Vec(Box::new(TypeDef::Address)), "All operators."),
            item(
                "KeyOwners",
                vec![StorageKeyMetadata { ty: TypeDef::Hash, hasher: Blake2_128Concat::NAME.into() }],
                TypeDef::Address,
                "The operator of each consensus key.",
            ),
            item("ProposerOwners", by_address(), TypeDef::Address, "The operator of each consensus key's address."),
            item(
                "Delegations",
                vec![
                    StorageKeyMetadata { ty: TypeDef::Address, hasher: Blake2_128Concat::NAME.into() },
                    StorageKeyMetadata { ty: TypeDef::Address, hasher: Blake2_128Concat::NAME.into() },
                ],
                TypeDef::Bytes,
                "SCALE(Delegation) per (holder, sequencer).",
            ),
            item(
                "HolderSequencers",
                by_address(),
                TypeDef::Vec(Box::new(TypeDef::Address)),
                "The sequencers a holder backs.",
            ),
            item("Unbonding", by_address(), TypeDef::Bytes, "SCALE(Vec<Unbonding>) per holder."),
            item("Epoch", vec![], TypeDef::U64, "The current epoch."),
            item(
                "Validators",
                vec![StorageKeyMetadata { ty: TypeDef::U64, hasher: Identity::NAME.into() }],
                TypeDef::Bytes,
                "SCALE(Vec<Elected { operator, key, power: u64 }>) per recent epoch.",
            ),
            item(
                "Proposed",
                vec![],
                TypeDef::Vec(Box::new(TypeDef::U32)),
                "Blocks proposed this epoch per member of its set.",
            ),
            item(
                "Reported",
                vec![
                    StorageKeyMetadata { ty: TypeDef::Address, hasher: Blake2_128Concat::NAME.into() },
                    StorageKeyMetadata { ty: TypeDef::U64, hasher: Identity::NAME.into() },
                ],
                TypeDef::Bytes,
                "Double signing punished, by (operator, epoch): once per epoch.",
            ),
            item("TotalBonded", vec![], TypeDef::Balance, "Sum of bonded stake."),
            item("TotalUnbonding", vec![], TypeDef::Balance, "Sum of unbonding stake."),
        ],
        queries: vec![
            query("config", vec![], "The parameters."),
            query("sequencers", vec![], "Every sequencer: key, status, commission, stake, self-bond, unbonding."),
            query("sequencer", vec![f("operator", "Address")], "One sequencer, or null."),
            query(
                "holder",
                vec![f("who", "Address")],
                "{ delegations: [{ sequencer, stake, pendingRewards }], unbonding, commissionEarned, claimable }.",
            ),
            query("validators", vec![], "{ epoch, current, next }: the validator sets."),
            query("totals", vec![], "Bonded and unbonding totals and the pots' balances."),
        ],
    }
}
