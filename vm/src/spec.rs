//! Ethereum forks: which rules a block executes under.

use revm::primitives::hardfork::SpecId;

/// The Ethereum forks MetisVM executes, oldest first. Each names the rules (opcodes, gas costs,
/// precompiles, transaction types) of the revm [`SpecId`] behind it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub enum Fork {
    /// July 2015.
    Frontier,
    /// EIP-2, EIP-7, EIP-8.
    Homestead,
    /// EIP-150 gas repricing.
    Tangerine,
    /// EIP-155 chain ids, EIP-161 state clearing, EIP-170 code size limit.
    SpuriousDragon,
    /// REVERT, RETURNDATA, STATICCALL, EIP-658 receipt status.
    Byzantium,
    /// CREATE2, shifts, EXTCODEHASH (Constantinople without EIP-1283).
    Petersburg,
    /// CHAINID, SELFBALANCE, EIP-2200 SSTORE metering.
    Istanbul,
    /// EIP-2929 access lists and warm/cold costs, typed transactions.
    Berlin,
    /// EIP-1559 base fee, BASEFEE, EIP-3529 refunds, EIP-3541.
    London,
    /// The Merge: PREVRANDAO.
    Merge,
    /// PUSH0, warm coinbase, initcode limits.
    Shanghai,
    /// Transient storage, MCOPY, blobs, EIP-6780 SELFDESTRUCT.
    Cancun,
    /// EIP-7702 set-code transactions, BLS12-381 precompiles, calldata floor cost.
    Prague,
    /// CLZ, MODEXP repricing, the transaction gas limit cap.
    Osaka,
}

/// Every fork, oldest first.
pub const FORKS: [Fork; 14] = [
    Fork::Frontier,
    Fork::Homestead,
    Fork::Tangerine,
    Fork::SpuriousDragon,
    Fork::Byzantium,
    Fork::Petersburg,
    Fork::Istanbul,
    Fork::Berlin,
    Fork::London,
    Fork::Merge,
    Fork::Shanghai,
    Fork::Cancun,
    Fork::Prague,
    Fork::Osaka,
];

/// Ethereum mainnet's block-numbered forks: (first block, fork).
const MAINNET_BY_NUMBER: [(u64, Fork); 10] = [
    (0, Fork::Frontier),
    (1_150_000, Fork::Homestead),
    (2_463_000, Fork::Tangerine),
    (2_675_000, Fork::SpuriousDragon),
    (4_370_000, Fork::Byzantium),
    (7_280_000, Fork::Petersburg),
    (9_069_000, Fork::Istanbul),
    (12_244_000, Fork::Berlin),
    (12_965_000, Fork::London),
    (15_537_394, Fork::Merge),
];

/// Ethereum mainnet's timestamp-activated forks: (first timestamp, fork).
const MAINNET_BY_TIME: [(u64, Fork); 4] = [
    (1_681_338_455, Fork::Shanghai),
    (1_710_338_135, Fork::Cancun),
    (1_746_612_311, Fork::Prague),
    (1_764_798_551, Fork::Osaka),
];

impl Fork {
    /// revm's name for these rules.
    pub fn spec_id(self) -> SpecId {
        match self {
            Fork::Frontier => SpecId::FRONTIER,
            Fork::Homestead => SpecId::HOMESTEAD,
            Fork::Tangerine => SpecId::TANGERINE,
            Fork::SpuriousDragon => SpecId::SPURIOUS_DRAGON,
            Fork::Byzantium => SpecId::BYZANTIUM,
            Fork::Petersburg => SpecId::PETERSBURG,
            Fork::Istanbul => SpecId::ISTANBUL,
            Fork::Berlin => SpecId::BERLIN,
            Fork::London => SpecId::LONDON,
            Fork::Merge => SpecId::MERGE,
            Fork::Shanghai => SpecId::SHANGHAI,
            Fork::Cancun => SpecId::CANCUN,
            Fork::Prague => SpecId::PRAGUE,
            Fork::Osaka => SpecId::OSAKA,
        }
    }

    /// The fork's name as the Ethereum tests and chain specs spell it (`"Cancun"`).
    pub fn name(self) -> &'static str {
        match self {
            Fork::Frontier => "Frontier",
            Fork::Homestead => "Homestead",
            Fork::Tangerine => "EIP150",
            Fork::SpuriousDragon => "EIP158",
            Fork::Byzantium => "Byzantium",
            Fork::Petersburg => "ConstantinopleFix",
            Fork::Istanbul => "Istanbul",
            Fork::Berlin => "Berlin",
            Fork::London => "London",
            Fork::Merge => "Paris",
            Fork::Shanghai => "Shanghai",
            Fork::Cancun => "Cancun",
            Fork::Prague => "Prague",
            Fork::Osaka => "Osaka",
        }
    }

    /// The fork named `name` ([`Fork::name`], also `"Merge"` and `"Petersburg"`).
    pub fn from_name(name: &str) -> Option<Fork> {
        match name {
            "Merge" => Some(Fork::Merge),
            "Petersburg" => Some(Fork::Petersburg),
            _ => FORKS.into_iter().find(|fork| fork.name() == name),
        }
    }

    /// The fork of Ethereum mainnet's block `number` made at `timestamp`.
    pub fn mainnet(number: u64, timestamp: u64) -> Fork {
        if let Some((_, fork)) = MAINNET_BY_TIME.iter().rev().find(|(start, _)| timestamp >= *start) {
            return *fork;
        }
        let (_, fork) = MAINNET_BY_NUMBER.iter().rev().find(|(start, _)| number >= *start).expect("block 0");
        *fork
    }

    /// Whether blocks under this fork have a base fee (EIP-1559).
    pub fn has_base_fee(self) -> bool {
        self >= Fork::London
    }

    /// Whether receipts carry a status rather than an intermediate state root (EIP-658).
    pub fn has_receipt_status(self) -> bool {
        self >= Fork::Byzantium
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainnet_schedule() {
        assert_eq!(Fork::mainnet(0, 0), Fork::Frontier);
        assert_eq!(Fork::mainnet(1_149_999, 0), Fork::Frontier);
        assert_eq!(Fork::mainnet(4_370_000, 0), Fork::Byzantium);
        assert_eq!(Fork::mainnet(15_537_394, 1_663_224_162), Fork::Merge);
        assert_eq!(Fork::mainnet(17_034_870, 1_681_338_455), Fork::Shanghai);
        assert_eq!(Fork::mainnet(19_426_587, 1_710_338_135), Fork::Cancun);
    }

    #[test]
    fn names_round_trip_and_forks_are_ordered() {
        for fork in FORKS {
            assert_eq!(Fork::from_name(fork.name()), Some(fork));
        }
        assert!(FORKS.windows(2).all(|w| w[0] < w[1] && w[0].spec_id() < w[1].spec_id()));
        assert_eq!(Fork::from_name("Merge"), Some(Fork::Merge));
        assert_eq!(Fork::from_name("Byzantine"), None);
    }
}
