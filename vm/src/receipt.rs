//! Ethereum receipts of executed transactions, and the roots and hashes over them.

use alloy_consensus::{Eip658Value, Receipt as AlloyReceipt, ReceiptEnvelope, ReceiptWithBloom};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{keccak256, logs_bloom, Bloom, Log, B256};

/// The receipt of an included Ethereum transaction.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Receipt {
    /// The transaction's EIP-2718 type.
    pub tx_type: u8,
    /// Whether it succeeded (EIP-658 status).
    pub success: bool,
    /// Gas used by the block up to and including it.
    pub cumulative_gas_used: u64,
    /// The logs it emitted.
    pub logs: Vec<Log>,
}

impl Receipt {
    /// The bloom filter of its logs.
    pub fn bloom(&self) -> Bloom {
        logs_bloom(&self.logs)
    }

    /// As alloy's typed receipt envelope.
    pub fn envelope(&self) -> ReceiptEnvelope {
        let receipt = AlloyReceipt {
            status: Eip658Value::Eip658(self.success),
            cumulative_gas_used: self.cumulative_gas_used,
            logs: self.logs.clone(),
        };
        let with_bloom = ReceiptWithBloom::new(receipt, self.bloom());
        match self.tx_type {
            1 => ReceiptEnvelope::Eip2930(with_bloom),
            2 => ReceiptEnvelope::Eip1559(with_bloom),
            3 => ReceiptEnvelope::Eip4844(with_bloom),
            4 => ReceiptEnvelope::Eip7702(with_bloom),
            _ => ReceiptEnvelope::Legacy(with_bloom),
        }
    }

    /// Its consensus encoding (EIP-2718: type byte, then the RLP of status, cumulative gas,
    /// bloom and logs), as `receiptsRoot` commits to it.
    pub fn encoded_2718(&self) -> Vec<u8> {
        self.envelope().encoded_2718()
    }
}

/// The `receiptsRoot` of a block with these receipts (from Byzantium on, when receipts carry a
/// status).
pub fn receipts_root(receipts: &[Receipt]) -> B256 {
    let envelopes: Vec<ReceiptEnvelope> = receipts.iter().map(Receipt::envelope).collect();
    alloy_consensus::proofs::calculate_receipt_root(&envelopes)
}

/// The `logsBloom` of a block with these receipts.
pub fn block_bloom(receipts: &[Receipt]) -> Bloom {
    logs_bloom(receipts.iter().flat_map(|r| &r.logs))
}

/// `keccak256(rlp(logs))`: the logs hash of the Ethereum state tests.
pub fn logs_hash(logs: &[Log]) -> B256 {
    let mut out = Vec::new();
    alloy_rlp::encode_list::<Log, Log>(logs, &mut out);
    keccak256(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{address, b256, bytes};

    #[test]
    fn empty_logs_hash_and_root() {
        // keccak256(rlp([])) and the empty trie root, as Ethereum defines them.
        assert_eq!(logs_hash(&[]), b256!("1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347"));
        assert_eq!(
            receipts_root(&[]),
            b256!("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421")
        );
    }

    #[test]
    fn typed_receipts_encode_with_their_type_byte() {
        let log = Log::new_unchecked(
            address!("0000000000000000000000000000000000000001"),
            vec![B256::ZERO],
            bytes!("01"),
        );
        let legacy = Receipt { tx_type: 0, success: true, cumulative_gas_used: 21_000, logs: vec![log] };
        let typed = Receipt { tx_type: 2, ..legacy.clone() };
        assert_eq!(typed.encoded_2718()[0], 2);
        assert_eq!(&typed.encoded_2718()[1..], legacy.encoded_2718().as_slice());
        assert!(legacy.bloom().contains_input(alloy_primitives::BloomInput::Raw(&[0u8; 32])));
    }
}
