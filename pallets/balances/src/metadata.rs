//! The balances pallet's metadata: what `state_getMetadata` tells clients about it.

use hyperion_runtime::metadata::{
    Field, PalletMetadata, QueryMetadata, StorageKeyMetadata, StorageMetadata, TypeDef, VariantMetadata,
};
use hyperion_runtime::storage::StorageHasher;
use hyperion_runtime::Blake2_128Concat;

use crate::pallet::{Error, PREFIX};

/// Calls, events, errors, storage and queries of the pallet.
pub(crate) fn metadata() -> PalletMetadata {
    let who_amount = || vec![Field::new("who", "Address"), Field::new("amount", "Balance")];
    let value = |name: &str, docs: &str| StorageMetadata {
        name: name.into(),
        keys: vec![],
        value: TypeDef::Balance,
        docs: docs.into(),
    };
    PalletMetadata {
        name: "balances".into(),
        index: 0,
        storage_prefix: PREFIX.into(),
        docs: "The native token's ledger: free and held balances, exact issuance, burns.".into(),
        calls: vec![
            VariantMetadata::new(
                0,
                "transfer",
                vec![Field::new("dest", "Address"), Field::new("value", "Balance")],
                "Moves `value` from the signer's free balance to `dest`.",
            ),
            VariantMetadata::new(
                1,
                "transfer_all",
                vec![Field::new("dest", "Address")],
                "Moves the signer's whole free balance (after the fee) to `dest`.",
            ),
        ],
        events: vec![
            VariantMetadata::new(
                0,
                "Transfer",
                vec![
                    Field::new("from", "Address"),
                    Field::new("to", "Address"),
                    Field::new("amount", "Balance"),
                ],
                "Funds moved.",
            ),
            VariantMetadata::new(
                1,
                "Withdraw",
                who_amount(),
                "Funds left the issuance (a fee before redistribution).",
            ),
            VariantMetadata::new(
                2,
                "Deposit",
                who_amount(),
                "Funds entered the issuance (a fee share, a reward).",
            ),
            VariantMetadata::new(3, "Burned", who_amount(), "Funds were destroyed for good."),
            VariantMetadata::new(4, "Held", who_amount(), "Funds moved from free to held."),
            VariantMetadata::new(5, "Released", who_amount(), "Funds moved from held to free."),
            VariantMetadata::new(
                6,
                "BalanceSet",
                vec![Field::new("who", "Address"), Field::new("free", "Balance")],
                "A free balance was set by the EVM (the issuance follows the difference).",
            ),
        ],
        errors: vec![
            VariantMetadata::new(
                Error::InsufficientBalance as u8,
                "InsufficientBalance",
                vec![],
                "The free balance is lower than the amount.",
            ),
            VariantMetadata::new(
                Error::InsufficientHeld as u8,
                "InsufficientHeld",
                vec![],
                "The held balance is lower than the amount.",
            ),
            VariantMetadata::new(
                Error::Overflow as u8,
                "Overflow",
                vec![],
                "A balance or the issuance would overflow.",
            ),
        ],
        storage: vec![
            StorageMetadata {
                name: "Accounts".into(),
                keys: vec![StorageKeyMetadata {
                    ty: TypeDef::Address,
                    hasher: Blake2_128Concat::NAME.into(),
                }],
                value: TypeDef::Bytes,
                docs: "SCALE(AccountData { free: u128, held: u128 }) per address.".into(),
            },
            value("TotalIssuance", "Sum of all free and held balances."),
            value("TotalBurned", "Everything ever burned."),
        ],
        queries: vec![
            QueryMetadata {
                name: "account".into(),
                args: vec![Field::new("who", "Address")],
                docs: "{ free, held } of an address.".into(),
            },
            QueryMetadata {
                name: "totalIssuance".into(),
                args: vec![],
                docs: "{ totalIssuance, totalBurned }.".into(),
            },
        ],
    }
}
