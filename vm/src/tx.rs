//! Signed Ethereum transactions: decoding (EIP-2718 envelopes and legacy RLP, through alloy),
//! sender recovery, and revm's transaction environment.

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{Transaction, TxEnvelope};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{keccak256, Address, B256, U256};
use revm::context::TxEnv;
use revm::context_interface::cfg::gas::calculate_initial_tx_gas_for_tx;
use revm::context_interface::either::Either;
use revm::context_interface::Transaction as _;

use crate::spec::Fork;

/// Whether `code` is an EIP-7702 delegation (`0xef0100 ++ address`): the code an externally
/// owned account gets from a set-code transaction, which still lets it send transactions.
pub fn is_delegation(code: &[u8]) -> bool {
    code.len() == 23 && code.starts_with(&[0xef, 0x01, 0x00])
}

/// Largest encoded transaction accepted: 128 KiB, as geth's transaction pool.
pub const MAX_TX_BYTES: usize = 128 * 1024;

/// Why raw bytes are not a valid signed transaction. The messages are those Ethereum clients
/// show (geth's wording).
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum TxError {
    /// Longer than [`MAX_TX_BYTES`].
    #[error("oversized data: transaction size {len}, limit {max}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a well-formed envelope or RLP (including trailing bytes).
    #[error("rlp: {0}")]
    Malformed(String),
    /// The signature does not recover to a sender (or has a high `s`, EIP-2).
    #[error("invalid sender")]
    InvalidSender,
}

/// A decoded signed Ethereum transaction with its recovered sender.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EthTransaction {
    envelope: TxEnvelope,
    sender: Address,
    hash: B256,
    len: usize,
}

/// An address as a label: the same in every process (SipHash with fixed keys), spread over all
/// 64 bits whatever the address (some are mined to start with zeros).
fn address_label(address: Address) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    address.hash(&mut hasher);
    hasher.finish()
}

impl EthTransaction {
    /// Decodes `raw` (an EIP-2718 typed envelope or a legacy RLP list) and recovers its sender,
    /// refusing signatures with a high `s` (EIP-2, every fork since Homestead).
    pub fn decode(raw: &[u8]) -> Result<Self, TxError> {
        Self::decode_with(raw, true)
    }

    /// As [`EthTransaction::decode`], with EIP-2's low-`s` rule only when `low_s` (transactions
    /// of Frontier blocks may have a high `s`).
    pub fn decode_with(raw: &[u8], low_s: bool) -> Result<Self, TxError> {
        if raw.len() > MAX_TX_BYTES {
            return Err(TxError::TooLarge { len: raw.len(), max: MAX_TX_BYTES });
        }
        let envelope = TxEnvelope::decode_2718_exact(raw).map_err(|e| TxError::Malformed(e.to_string()))?;
        let sender = if low_s { envelope.recover_signer() } else { envelope.recover_signer_unchecked() };
        let sender = sender.map_err(|_| TxError::InvalidSender)?;
        // Exact decoding accepts canonical encodings only: the bytes are the encoding the hash
        // is of (hashed here once, instead of encoded again and hashed).
        Ok(Self { envelope, sender, hash: keccak256(raw), len: raw.len() })
    }

    /// The gas limit of `raw`, decoded without recovering the sender (cheap: what a block
    /// builder needs to budget the block's gas before executing).
    pub fn peek_gas_limit(raw: &[u8]) -> Result<u64, TxError> {
        if raw.len() > MAX_TX_BYTES {
            return Err(TxError::TooLarge { len: raw.len(), max: MAX_TX_BYTES });
        }
        let envelope = TxEnvelope::decode_2718_exact(raw).map_err(|e| TxError::Malformed(e.to_string()))?;
        Ok(envelope.gas_limit())
    }

    /// Decodes `raw` with a sender already known (recorded when the transaction was included),
    /// without recovering it from the signature again: for reading stored blocks.
    pub fn decode_with_sender(raw: &[u8], sender: Address) -> Result<Self, TxError> {
        Self::decode_hashed(raw, keccak256(raw), sender)
    }

    /// [`EthTransaction::decode_with_sender`] when the caller has already hashed `raw`: `hash`
    /// must be `keccak256(raw)` (the transaction's hash), as for a look-up in a cache of senders.
    pub fn decode_hashed(raw: &[u8], hash: B256, sender: Address) -> Result<Self, TxError> {
        if raw.len() > MAX_TX_BYTES {
            return Err(TxError::TooLarge { len: raw.len(), max: MAX_TX_BYTES });
        }
        let envelope = TxEnvelope::decode_2718_exact(raw).map_err(|e| TxError::Malformed(e.to_string()))?;
        debug_assert_eq!(hash, keccak256(raw), "decode_hashed: not the hash of the bytes");
        Ok(Self { envelope, sender, hash, len: raw.len() })
    }

    /// The transaction as alloy decoded it.
    pub fn envelope(&self) -> &TxEnvelope {
        &self.envelope
    }

    /// Its signer.
    pub fn sender(&self) -> Address {
        self.sender
    }

    /// `keccak256` of its encoding: the hash Ethereum tools know it by.
    pub fn hash(&self) -> B256 {
        self.hash
    }

    /// Its encoded length, bytes.
    pub fn encoded_len(&self) -> usize {
        self.len
    }

    /// Its EIP-2718 encoding.
    pub fn encoded(&self) -> Vec<u8> {
        self.envelope.encoded_2718()
    }

    /// EIP-2718 type: 0 legacy, 1 access list, 2 dynamic fee, 3 blob, 4 set code.
    pub fn tx_type(&self) -> u8 {
        self.envelope.tx_type() as u8
    }

    /// The recipient; `None` for a contract creation.
    pub fn to(&self) -> Option<Address> {
        self.envelope.to()
    }

    /// Its recipient as a label for the parallel executor's hints
    /// (`hyperion_executor::Transactions::target`); `None` for a contract creation.
    pub fn target_label(&self) -> Option<u64> {
        self.to().map(address_label)
    }

    /// The wei it sends.
    pub fn value(&self) -> U256 {
        self.envelope.value()
    }

    /// The recipient of a plain value transfer: a call with no call data, no blobs and no
    /// authorization list (legacy, EIP-2930 or EIP-1559), to an address outside the precompiles'
    /// range (the first 18 bytes zero). Such a transaction runs no code unless its recipient
    /// has some, which the caller checks in the state. `None` for any other transaction.
    pub fn plain_transfer_to(&self) -> Option<Address> {
        let to = self.to()?;
        let precompile = to.0[..18].iter().all(|&b| b == 0);
        (self.input().is_empty() && self.tx_type() <= 2 && !precompile).then_some(to)
    }

    /// Its call data (a creation's init code).
    pub fn input(&self) -> &[u8] {
        self.envelope.input()
    }

    /// The most it can take from its sender: gas limit × max fee per gas, plus the value and
    /// any blob fee; what the sender's balance must cover for it to run. `None` when that
    /// overflows 256 bits (it can never run).
    pub fn max_cost(&self) -> Option<U256> {
        self.tx_env().max_balance_spending().ok()
    }

    /// The sender's nonce it uses.
    pub fn nonce(&self) -> u64 {
        self.envelope.nonce()
    }

    /// Its gas limit.
    pub fn gas_limit(&self) -> u64 {
        self.envelope.gas_limit()
    }

    /// The chain id it is signed for (`None`: a legacy transaction without EIP-155).
    pub fn chain_id(&self) -> Option<u64> {
        self.envelope.chain_id()
    }

    /// The most it pays per gas: the gas price, or the fee cap (EIP-1559).
    pub fn max_fee_per_gas(&self) -> u128 {
        self.envelope.max_fee_per_gas()
    }

    /// The most it tips per gas: the priority fee cap, or the gas price (legacy).
    pub fn max_priority_fee_per_gas(&self) -> u128 {
        self.envelope.priority_fee_or_price()
    }

    /// What it pays per gas under `base_fee`.
    pub fn effective_gas_price(&self, base_fee: Option<u64>) -> u128 {
        self.envelope.effective_gas_price(base_fee)
    }

    /// The gas it costs before any code runs (base cost, calldata, access list, authorizations,
    /// creation), or the EIP-7623 calldata floor when that is higher: a gas limit below this
    /// can never be included.
    pub fn intrinsic_gas(&self, fork: Fork) -> u64 {
        let gas = calculate_initial_tx_gas_for_tx(self.tx_env(), fork.spec_id(), None);
        (gas.initial_regular_gas + gas.initial_state_gas).max(gas.floor_gas)
    }

    /// revm's environment for executing it.
    pub fn tx_env(&self) -> TxEnv {
        let tx = &self.envelope;
        TxEnv {
            tx_type: self.tx_type(),
            caller: self.sender,
            gas_limit: tx.gas_limit(),
            gas_price: tx.max_fee_per_gas(),
            kind: tx.kind(),
            value: tx.value(),
            data: tx.input().clone(),
            nonce: tx.nonce(),
            chain_id: tx.chain_id(),
            access_list: tx.access_list().cloned().unwrap_or_default(),
            gas_priority_fee: tx.max_priority_fee_per_gas(),
            blob_hashes: tx.blob_versioned_hashes().map(<[B256]>::to_vec).unwrap_or_default(),
            max_fee_per_blob_gas: tx.max_fee_per_blob_gas().unwrap_or_default(),
            authorization_list: tx
                .authorization_list()
                .map(|list| list.iter().cloned().map(Either::Left).collect())
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::{SignableTransaction, TxEip1559};
    use alloy_primitives::{Bytes, Signature, TxKind};

    /// `tx` encoded with an arbitrary signature, decoded with a sender given (no recovery).
    fn decoded(tx: TxEip1559) -> EthTransaction {
        let signature = Signature::from_scalars_and_parity(B256::repeat_byte(1), B256::repeat_byte(2), false);
        let envelope: TxEnvelope = tx.into_signed(signature).into();
        EthTransaction::decode_with_sender(&envelope.encoded_2718(), Address::repeat_byte(0xaa)).unwrap()
    }

    #[test]
    fn the_hash_of_the_bytes_is_the_transaction_hash_of_every_type() {
        use alloy_consensus::{TxEip2930, TxEip7702, TxLegacy};
        let signature = Signature::from_scalars_and_parity(B256::repeat_byte(1), B256::repeat_byte(2), true);
        let to = Address::repeat_byte(0x42);
        let input = Bytes::from(vec![0xa9, 0x05, 0x9c, 0xbb]);
        let envelopes: Vec<TxEnvelope> = vec![
            TxLegacy { to: TxKind::Call(to), input: input.clone(), gas_price: 7, ..Default::default() }
                .into_signed(signature)
                .into(),
            TxLegacy { chain_id: Some(1), to: TxKind::Create, value: U256::from(1), ..Default::default() }
                .into_signed(signature)
                .into(),
            TxEip2930 { chain_id: 1, to: TxKind::Call(to), input: input.clone(), ..Default::default() }
                .into_signed(signature)
                .into(),
            TxEip1559 { chain_id: 1, to: TxKind::Call(to), input: input.clone(), ..Default::default() }
                .into_signed(signature)
                .into(),
            TxEip7702 { chain_id: 1, to, input, ..Default::default() }.into_signed(signature).into(),
        ];
        for envelope in envelopes {
            let raw = envelope.encoded_2718();
            let decoded = EthTransaction::decode_with_sender(&raw, to).unwrap();
            assert_eq!(decoded.hash(), *envelope.tx_hash(), "type {}", envelope.tx_type() as u8);
            assert_eq!(decoded.encoded(), raw);
        }
    }

    #[test]
    fn only_a_call_without_data_to_an_address_past_the_precompiles_is_a_plain_transfer() {
        let to = Address::repeat_byte(0x42);
        let transfer =
            TxEip1559 { to: TxKind::Call(to), value: U256::from(7), gas_limit: 21_000, ..Default::default() };
        assert_eq!(decoded(transfer.clone()).plain_transfer_to(), Some(to));
        let call = TxEip1559 { input: Bytes::from(vec![1]), ..transfer.clone() };
        assert_eq!(decoded(call).plain_transfer_to(), None);
        let creation = TxEip1559 { to: TxKind::Create, ..transfer.clone() };
        assert_eq!(decoded(creation).plain_transfer_to(), None);
        for precompile in [1u64, 0x0a, 0x100] {
            let to = Address::from_word(B256::from(U256::from(precompile)));
            let tx = TxEip1559 { to: TxKind::Call(to), ..transfer.clone() };
            assert_eq!(decoded(tx).plain_transfer_to(), None, "precompile {precompile:#x}");
        }
        let past = Address::from_word(B256::from(U256::from(0x1_0000)));
        let tx = TxEip1559 { to: TxKind::Call(past), ..transfer };
        assert_eq!(decoded(tx).plain_transfer_to(), Some(past));
    }
}
