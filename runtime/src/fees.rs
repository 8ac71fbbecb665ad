//! Fees of native extrinsics and their split.
//!
//! ```text
//! fee   = base_fee + per_byte_fee * encoded_len + per_weight_fee * weight   (saturating)
//! total = fee + tip
//! fee  -> proposer_percent to the block's proposer, holders_pool_percent to the Holders Mining
//!         pool account, the rest (burn_percent plus rounding) burned
//! tip  -> the block's proposer
//! ```

use std::sync::LazyLock;

use hyperion_primitives::{Address, Balance, Weight};
use parity_scale_codec::{Decode, Encode};
use serde::{Deserialize, Serialize};

/// The Holders Mining pool: a module account that staking pays out to stakers. (Hashed once:
/// every extrinsic's fee pays into it.)
pub fn holders_pool_account() -> Address {
    static ACCOUNT: LazyLock<Address> = LazyLock::new(|| Address::for_module(b"hmining!"));
    *ACCOUNT
}

/// Fee parameters, set by the chain spec (`genesis.system.fees`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FeeConfig {
    /// Paid by every extrinsic.
    #[serde(with = "crate::serde_u128")]
    pub base_fee: Balance,
    /// Paid per byte of the encoded extrinsic.
    #[serde(with = "crate::serde_u128")]
    pub per_byte_fee: Balance,
    /// Paid per weight unit of the call.
    #[serde(with = "crate::serde_u128")]
    pub per_weight_fee: Balance,
    /// How the fee (not the tip) is shared.
    pub split: FeeSplit,
}

/// Percentages of a fee for the proposer, the Holders Mining pool and the burn; they add to 100.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FeeSplit {
    /// Percent to the block's proposer.
    pub proposer: u8,
    /// Percent to the Holders Mining pool.
    pub holders_pool: u8,
    /// Percent burned.
    pub burn: u8,
}

impl FeeSplit {
    /// Checks that the parts add up to 100.
    pub fn validate(&self) -> Result<(), String> {
        let sum = u16::from(self.proposer) + u16::from(self.holders_pool) + u16::from(self.burn);
        if sum != 100 {
            return Err(format!("proposer + holdersPool + burn must be 100, got {sum}"));
        }
        Ok(())
    }
}

/// How one fee is distributed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FeeShares {
    /// To the proposer (its share of the fee plus the whole tip).
    pub proposer: Balance,
    /// To the Holders Mining pool.
    pub holders_pool: Balance,
    /// Burned.
    pub burn: Balance,
}

impl FeeConfig {
    /// The fee of an extrinsic of `len` bytes and `weight` (tip excluded).
    pub fn fee(&self, len: usize, weight: Weight) -> Balance {
        self.base_fee
            .saturating_add(self.per_byte_fee.saturating_mul(len as Balance))
            .saturating_add(self.per_weight_fee.saturating_mul(Balance::from(weight)))
    }

    /// Splits `fee` and adds `tip` to the proposer; the shares add up to `fee + tip` exactly
    /// (the proposer's share saturates where `fee + tip` exceeds the balance type, which no
    /// payer can afford anyway).
    pub fn shares(&self, fee: Balance, tip: Balance) -> FeeShares {
        let proposer = fee / 100 * Balance::from(self.split.proposer)
            + fee % 100 * Balance::from(self.split.proposer) / 100;
        let holders_pool = fee / 100 * Balance::from(self.split.holders_pool)
            + fee % 100 * Balance::from(self.split.holders_pool) / 100;
        FeeShares {
            proposer: proposer.saturating_add(tip),
            holders_pool,
            burn: fee - proposer - holders_pool,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    fn config(proposer: u8, holders_pool: u8) -> FeeConfig {
        FeeConfig {
            base_fee: 1,
            per_byte_fee: 2,
            per_weight_fee: 3,
            split: FeeSplit { proposer, holders_pool, burn: 100 - proposer - holders_pool },
        }
    }

    #[test]
    fn fee_formula() {
        assert_eq!(config(50, 30).fee(10, 100), 1 + 20 + 300);
        let max = FeeConfig { base_fee: u128::MAX, ..config(50, 30) };
        assert_eq!(max.fee(10, 10), u128::MAX);
    }

    quickcheck! {
        fn shares_add_up(fee: u128, tip: u64, p: u8, h: u8) -> bool {
            let p = p % 101;
            let h = h % (101 - p);
            let untipped = config(p, h).shares(fee, 0);
            let s = config(p, h).shares(fee, u128::from(tip));
            untipped.proposer + untipped.holders_pool + untipped.burn == fee
                && s.proposer == untipped.proposer.saturating_add(u128::from(tip))
                && (s.holders_pool, s.burn) == (untipped.holders_pool, untipped.burn)
                && s.holders_pool <= fee / 100 * u128::from(h) + fee % 100
        }
    }
}
