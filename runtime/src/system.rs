//! The system pallet (always index 0): account nonces, the fee and block-limit parameters,
//! and the per-extrinsic outcome events.

use hyperion_primitives::{hashing::blake2_256, Address, DispatchError, Hash, Nonce, Weight};
use parity_scale_codec::{Decode, Encode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::context::{Context, QueryContext};
use crate::fees::{FeeConfig, FeeSplit};
use crate::metadata::{
    Field, PalletMetadata, QueryMetadata, StorageKeyMetadata, StorageMetadata, TypeDef, VariantMetadata,
};
use crate::pallet::{CallError, CallResult, GenesisError, Origin, Pallet, QueryError};
use crate::storage::{Blake2_128Concat, StorageHasher, StorageMap, StorageValue};
use crate::Condition;

/// Storage prefix of the system pallet.
pub const PREFIX: &str = "System";

/// Next nonce of each account (shared by native and Ethereum transactions).
pub const ACCOUNT_NONCE: StorageMap<Address, Nonce, Blake2_128Concat> =
    StorageMap::new(PREFIX, "AccountNonce");
/// An account's [`ACCOUNT_NONCE`] is `a` (the second parameter is unused): what a transaction
/// with nonce `a` needs of its sender, assumed instead of read (see
/// [`Context::assume`]); the transaction then adds one with a [`crate::U64`] delta.
pub static NONCE_IS: Condition = Condition { name: "System.AccountNonce is", holds: nonce_is };

fn nonce_is(value: Option<&[u8]>, nonce: u128, _: u128) -> bool {
    let current = value.and_then(|mut v| Nonce::decode(&mut v).ok()).unwrap_or_default();
    u128::from(current) == nonce
}

/// The fee parameters.
pub const FEE_CONFIG: StorageValue<FeeConfig> = StorageValue::new(PREFIX, "FeeConfig");
/// The block limits.
pub const BLOCK_LIMITS: StorageValue<BlockLimits> = StorageValue::new(PREFIX, "BlockLimits");
/// The number of the last executed block.
pub const NUMBER: StorageValue<u64> = StorageValue::new(PREFIX, "Number");

/// Limits on blocks and extrinsics, set by the chain spec (`genesis.system.limits`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockLimits {
    /// Total weight of a block's extrinsics and hooks.
    pub max_block_weight: Weight,
    /// Encoded size of a block's extrinsics.
    pub max_block_bytes: u32,
    /// Encoded size of one extrinsic.
    pub max_extrinsic_bytes: u32,
}

/// The system pallet's genesis section.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SystemGenesis {
    /// Fee parameters.
    pub fees: FeeConfig,
    /// Block limits.
    pub limits: BlockLimits,
}

impl Default for SystemGenesis {
    fn default() -> Self {
        Self {
            fees: FeeConfig {
                base_fee: 1_000_000_000_000_000, // 0.001 token
                per_byte_fee: 1_000_000_000_000, // 10^-6 token
                per_weight_fee: 1_000_000,
                split: FeeSplit { proposer: 40, holders_pool: 40, burn: 20 },
            },
            limits: BlockLimits {
                max_block_weight: 2_000_000_000_000,
                max_block_bytes: 5 * 1024 * 1024,
                max_extrinsic_bytes: 128 * 1024,
            },
        }
    }
}

/// System events.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub enum Event {
    /// An extrinsic's call succeeded.
    #[codec(index = 0)]
    ExtrinsicSuccess {
        /// Weight used.
        weight: Weight,
    },
    /// An extrinsic's call failed; its fee was paid and its nonce used.
    #[codec(index = 1)]
    ExtrinsicFailed {
        /// Weight charged.
        weight: Weight,
    },
    /// An extrinsic's fee was paid.
    #[codec(index = 2)]
    FeePaid {
        /// Who paid.
        who: Address,
        /// The fee, tip excluded.
        fee: u128,
        /// The tip.
        tip: u128,
    },
    /// A remark was made.
    #[codec(index = 3)]
    Remarked {
        /// Who made it.
        who: Address,
        /// blake2_256 of the remark.
        hash: Hash,
    },
}

/// System calls.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub enum Call {
    /// Records a remark (its hash is emitted as an event); does nothing else.
    #[codec(index = 0)]
    Remark {
        /// Arbitrary bytes.
        remark: Vec<u8>,
    },
}

/// Weight of `remark`: a base plus a cost per byte.
pub fn remark_weight(len: usize) -> Weight {
    10_000_000u64.saturating_add(1_000u64.saturating_mul(len as u64))
}

/// The system pallet.
#[derive(Default)]
pub struct System;

impl Pallet for System {
    fn name(&self) -> &'static str {
        "system"
    }

    fn metadata(&self) -> PalletMetadata {
        let address = || StorageKeyMetadata { ty: TypeDef::Address, hasher: Blake2_128Concat::NAME.into() };
        PalletMetadata {
            name: "system".into(),
            index: 0,
            storage_prefix: PREFIX.into(),
            docs: "Account nonces, fee and block-limit parameters, extrinsic outcome events.".into(),
            calls: vec![VariantMetadata::new(
                0,
                "remark",
                vec![Field::new("remark", "Bytes")],
                "Records a remark.",
            )],
            events: vec![
                VariantMetadata::new(
                    0,
                    "ExtrinsicSuccess",
                    vec![Field::new("weight", "u64")],
                    "An extrinsic's call succeeded.",
                ),
                VariantMetadata::new(
                    1,
                    "ExtrinsicFailed",
                    vec![Field::new("weight", "u64")],
                    "An extrinsic's call failed; its fee was paid and its nonce used.",
                ),
                VariantMetadata::new(
                    2,
                    "FeePaid",
                    vec![
                        Field::new("who", "Address"),
                        Field::new("fee", "Balance"),
                        Field::new("tip", "Balance"),
                    ],
                    "An extrinsic's fee was paid.",
                ),
                VariantMetadata::new(
                    3,
                    "Remarked",
                    vec![Field::new("who", "Address"), Field::new("hash", "Hash")],
                    "A remark was made.",
                ),
            ],
            errors: vec![],
            storage: vec![
                StorageMetadata {
                    name: "AccountNonce".into(),
                    keys: vec![address()],
                    value: TypeDef::U64,
                    docs: "Next nonce of each account.".into(),
                },
                StorageMetadata {
                    name: "FeeConfig".into(),
                    keys: vec![],
                    value: TypeDef::Bytes,
                    docs: "SCALE(FeeConfig): base, per byte, per weight (u128 each), split (3 × u8).".into(),
                },
                StorageMetadata {
                    name: "BlockLimits".into(),
                    keys: vec![],
                    value: TypeDef::Bytes,
                    docs: "SCALE(BlockLimits): max weight (u64), max block bytes, max extrinsic bytes (u32)."
                        .into(),
                },
                StorageMetadata {
                    name: "Number".into(),
                    keys: vec![],
                    value: TypeDef::U64,
                    docs: "Number of the last executed block.".into(),
                },
            ],
            queries: vec![
                QueryMetadata {
                    name: "account".into(),
                    args: vec![Field::new("who", "Address")],
                    docs: "{ nonce }: the account's next nonce.".into(),
                },
                QueryMetadata {
                    name: "parameters".into(),
                    args: vec![],
                    docs: "{ fees, limits }: the fee and block-limit parameters.".into(),
                },
            ],
        }
    }

    fn call_weight(&self, call: u8, args: &[u8]) -> Result<Weight, DispatchError> {
        match decode_call(call, args)? {
            Call::Remark { remark } => Ok(remark_weight(remark.len())),
        }
    }

    fn dispatch(&self, ctx: &mut Context<'_>, origin: Origin, call: u8, args: &[u8]) -> CallResult {
        match decode_call(call, args)? {
            Call::Remark { remark } => {
                let who = origin.ensure_signed().map_err(CallError::Dispatch)?;
                ctx.deposit_event(&Event::Remarked { who, hash: Hash(blake2_256(&remark)) });
                Ok(())
            }
        }
    }

    fn genesis(&self, ctx: &mut Context<'_>, config: &Value) -> Result<(), GenesisError> {
        let config: SystemGenesis = if config.is_null() {
            SystemGenesis::default()
        } else {
            serde_json::from_value(config.clone()).map_err(|e| GenesisError::new("", e.to_string()))?
        };
        config.fees.split.validate().map_err(|e| GenesisError::new("fees.split", e))?;
        let limits = config.limits;
        if limits.max_extrinsic_bytes == 0 || limits.max_extrinsic_bytes > limits.max_block_bytes {
            return Err(GenesisError::new("limits.maxExtrinsicBytes", "must be between 1 and maxBlockBytes"));
        }
        if limits.max_block_weight == 0 {
            return Err(GenesisError::new("limits.maxBlockWeight", "must be positive"));
        }
        FEE_CONFIG.put(ctx, &config.fees);
        BLOCK_LIMITS.put(ctx, &limits);
        NUMBER.put(ctx, &0);
        Ok(())
    }

    fn default_genesis(&self) -> Value {
        serde_json::to_value(SystemGenesis::default()).expect("serializable")
    }

    fn query(&self, ctx: &mut QueryContext, name: &str, args: &Value) -> Result<Value, QueryError> {
        match name {
            "account" => {
                let who = crate::query_arg::<Address>(args, "who")?;
                Ok(json!({ "nonce": ACCOUNT_NONCE.get_or_default(ctx, &who) }))
            }
            "parameters" => Ok(json!({
                "fees": FEE_CONFIG.get(ctx),
                "limits": BLOCK_LIMITS.get(ctx),
            })),
            other => Err(QueryError::Unknown(format!("system.{other}"))),
        }
    }
}

/// Decodes a system call, requiring every byte to be used.
fn decode_call(call: u8, args: &[u8]) -> Result<Call, DispatchError> {
    crate::decode_call::<Call>(call, args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parity_scale_codec::DecodeAll;
    use quickcheck::quickcheck;

    quickcheck! {
        fn parameters_round_trip(fees: (u128, u128, u128), split: (u8, u8, u8), limits: (u64, u32, u32)) -> bool {
            let fees = FeeConfig {
                base_fee: fees.0, per_byte_fee: fees.1, per_weight_fee: fees.2,
                split: FeeSplit { proposer: split.0, holders_pool: split.1, burn: split.2 },
            };
            let limits = BlockLimits { max_block_weight: limits.0, max_block_bytes: limits.1, max_extrinsic_bytes: limits.2 };
            FeeConfig::decode_all(&mut &fees.encode()[..]).ok() == Some(fees)
                && BlockLimits::decode_all(&mut &limits.encode()[..]).ok() == Some(limits)
        }

        fn events_round_trip(weight: u64, fee: u128, tip: u128, who: Vec<u8>) -> bool {
            let mut address = [0u8; 20];
            address.iter_mut().zip(who).for_each(|(a, b)| *a = b);
            let who = Address(address);
            [
                Event::ExtrinsicSuccess { weight },
                Event::ExtrinsicFailed { weight },
                Event::FeePaid { who, fee, tip },
                Event::Remarked { who, hash: Hash([weight as u8; 32]) },
            ]
            .into_iter()
            .all(|e| Event::decode_all(&mut &e.encode()[..]).ok() == Some(e))
        }
    }

    #[test]
    fn golden_parameters_encoding() {
        let genesis = SystemGenesis::default();
        assert_eq!(hex::encode(genesis.limits.encode()), "00204aa9d10100000000500000000200");
    }
}
