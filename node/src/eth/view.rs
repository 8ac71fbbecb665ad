//! Ethereum's view of Hyperion blocks: headers, transactions, receipts and logs, built from the
//! stored block, its receipts and the EVM pallet's events.

use alloy_consensus::transaction::Recovered;
use alloy_consensus::{Header as EthHeader, ReceiptEnvelope, ReceiptWithBloom, EMPTY_OMMER_ROOT_HASH};
use alloy_primitives::{Address, Bloom, Bytes, Log as PrimitiveLog, LogData, B256, B64, U256};
use alloy_rpc_types_eth::{Block, BlockTransactions, Header, Log, Transaction, TransactionReceipt};
use hyperion_primitives::{EventRecord, Extrinsic, Receipt};
use hyperion_vm::EthTransaction;
use pallet_evm::Event as EvmEvent;
use parity_scale_codec::{Decode, Encode};

use crate::block_store::StoredBlock;
use crate::EVM_INDEX;

/// One Ethereum transaction of a block with what it did.
#[derive(Clone, Debug)]
pub struct TxView {
    /// The decoded transaction.
    pub tx: EthTransaction,
    /// Its index among the block's Ethereum transactions.
    pub index: u64,
    /// Whether it succeeded.
    pub success: bool,
    /// Gas it used.
    pub gas_used: u64,
    /// Gas used by the block's Ethereum transactions up to it, included.
    pub cumulative_gas_used: u64,
    /// Wei paid per gas.
    pub effective_gas_price: u128,
    /// The contract it created.
    pub contract: Option<Address>,
    /// Its logs, with their index in the block.
    pub logs: Vec<(u64, PrimitiveLog)>,
}

/// A stored block as Ethereum sees it.
#[derive(Clone, Debug)]
pub struct BlockView {
    /// The stored block.
    pub stored: StoredBlock,
    /// Its Ethereum transactions, in order.
    pub txs: Vec<TxView>,
    /// Its base fee.
    pub base_fee: u64,
    /// Its gas limit.
    pub gas_limit: u64,
}

fn evm_event(record: &EventRecord) -> Option<EvmEvent> {
    if record.pallet != EVM_INDEX {
        return None;
    }
    let mut bytes = Vec::with_capacity(1 + record.data.len());
    bytes.push(record.event);
    bytes.extend_from_slice(&record.data);
    EvmEvent::decode(&mut bytes.as_slice()).ok()
}

fn eth_address(address: hyperion_primitives::Address) -> Address {
    Address::from(address.0)
}

impl BlockView {
    /// The Ethereum view of `stored` (its Ethereum transactions decoded again; they were valid
    /// when the block was made, so a failure here means a damaged store and skips the entry).
    pub fn new(stored: StoredBlock) -> Self {
        let (mut base_fee, mut gas_limit) = (0, 0);
        for event in stored.block_events.iter().filter_map(evm_event) {
            if let EvmEvent::BlockStarted { base_fee: fee, gas_limit: limit } = event {
                (base_fee, gas_limit) = (fee, limit);
            }
        }
        let mut txs = Vec::new();
        let (mut cumulative, mut log_index) = (0u64, 0u64);
        for (xt, receipt) in stored.block.extrinsics.iter().zip(&stored.receipts) {
            let Extrinsic::Ethereum(raw) = xt else { continue };
            // The sender was recovered at inclusion and recorded in the Executed event.
            let sender = receipt.events.iter().filter_map(evm_event).find_map(|event| match event {
                EvmEvent::Executed { from, .. } => Some(eth_address(from)),
                _ => None,
            });
            let decoded = match sender {
                Some(sender) => EthTransaction::decode_with_sender(raw, sender),
                None => EthTransaction::decode(raw),
            };
            let Ok(tx) = decoded else { continue };
            let view = tx_view(tx, receipt, txs.len() as u64, &mut cumulative, &mut log_index);
            txs.push(view);
        }
        Self { stored, txs, base_fee, gas_limit }
    }

    /// The block's hash.
    pub fn hash(&self) -> B256 {
        B256::from(self.stored.block.hash().0)
    }

    /// The block's number.
    pub fn number(&self) -> u64 {
        self.stored.block.header.number
    }

    /// The block's timestamp, seconds.
    pub fn timestamp(&self) -> u64 {
        self.stored.block.header.timestamp_ms / 1000
    }

    /// The bloom of every log of the block.
    pub fn bloom(&self) -> Bloom {
        alloy_primitives::logs_bloom(self.txs.iter().flat_map(|t| t.logs.iter().map(|(_, log)| log)))
    }

    /// The Ethereum header.
    pub fn header(&self) -> Header {
        let header = &self.stored.block.header;
        let receipts: Vec<ReceiptEnvelope> = self.txs.iter().map(TxView::envelope).collect();
        let inner = EthHeader {
            parent_hash: B256::from(header.parent_hash.0),
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            beneficiary: eth_address(header.proposer),
            state_root: B256::from(header.state_root.0),
            transactions_root: B256::from(header.extrinsics_root.0),
            receipts_root: alloy_consensus::proofs::calculate_receipt_root(&receipts),
            logs_bloom: self.bloom(),
            difficulty: U256::ZERO,
            number: header.number,
            gas_limit: self.gas_limit,
            gas_used: header.gas_used,
            timestamp: self.timestamp(),
            extra_data: Bytes::new(),
            mix_hash: B256::from(header.parent_hash.0),
            nonce: B64::ZERO,
            base_fee_per_gas: Some(self.base_fee),
            withdrawals_root: None,
            blob_gas_used: None,
            excess_blob_gas: None,
            parent_beacon_block_root: None,
            requests_hash: None,
            ..EthHeader::default()
        };
        let size = self.stored.block.encoded_size() as u64;
        Header { hash: self.hash(), inner, total_difficulty: Some(U256::ZERO), size: Some(U256::from(size)) }
    }

    /// The Ethereum block, with full transactions or their hashes.
    pub fn block(&self, full: bool) -> Block {
        let transactions = if full {
            BlockTransactions::Full(self.txs.iter().map(|t| self.transaction(t)).collect())
        } else {
            BlockTransactions::Hashes(self.txs.iter().map(|t| t.tx.hash()).collect())
        };
        Block { header: self.header(), uncles: Vec::new(), transactions, withdrawals: None }
    }

    /// An included transaction as `eth_getTransactionByHash` returns it.
    pub fn transaction(&self, view: &TxView) -> Transaction {
        Transaction {
            inner: Recovered::new_unchecked(view.tx.envelope().clone(), view.tx.sender()),
            block_hash: Some(self.hash()),
            block_number: Some(self.number()),
            transaction_index: Some(view.index),
            effective_gas_price: Some(view.effective_gas_price),
            block_timestamp: Some(self.timestamp()),
        }
    }

    /// A log with its block and transaction coordinates.
    pub fn rpc_log(&self, view: &TxView, index: u64, log: &PrimitiveLog) -> Log {
        Log {
            inner: log.clone(),
            block_hash: Some(self.hash()),
            block_number: Some(self.number()),
            block_timestamp: Some(self.timestamp()),
            transaction_hash: Some(view.tx.hash()),
            transaction_index: Some(view.index),
            log_index: Some(index),
            removed: false,
        }
    }

    /// The receipt of one of the block's transactions.
    pub fn receipt(&self, view: &TxView) -> TransactionReceipt {
        let logs: Vec<Log> = view.logs.iter().map(|(i, log)| self.rpc_log(view, *i, log)).collect();
        let receipt = alloy_consensus::Receipt {
            status: alloy_consensus::Eip658Value::Eip658(view.success),
            cumulative_gas_used: view.cumulative_gas_used,
            logs,
        };
        let with_bloom = ReceiptWithBloom::new(receipt, view.bloom());
        let inner = match view.tx.tx_type() {
            1 => ReceiptEnvelope::Eip2930(with_bloom),
            2 => ReceiptEnvelope::Eip1559(with_bloom),
            3 => ReceiptEnvelope::Eip4844(with_bloom),
            4 => ReceiptEnvelope::Eip7702(with_bloom),
            _ => ReceiptEnvelope::Legacy(with_bloom),
        };
        TransactionReceipt {
            inner,
            transaction_hash: view.tx.hash(),
            transaction_index: Some(view.index),
            block_hash: Some(self.hash()),
            block_number: Some(self.number()),
            gas_used: view.gas_used,
            effective_gas_price: view.effective_gas_price,
            blob_gas_used: None,
            blob_gas_price: None,
            from: view.tx.sender(),
            to: view.tx.to(),
            contract_address: view.contract,
        }
    }

    /// Every log of the block.
    pub fn logs(&self) -> impl Iterator<Item = Log> + '_ {
        self.txs.iter().flat_map(move |t| t.logs.iter().map(move |(i, log)| self.rpc_log(t, *i, log)))
    }
}

impl TxView {
    fn bloom(&self) -> Bloom {
        alloy_primitives::logs_bloom(self.logs.iter().map(|(_, log)| log))
    }

    fn envelope(&self) -> ReceiptEnvelope {
        let receipt = alloy_consensus::Receipt {
            status: alloy_consensus::Eip658Value::Eip658(self.success),
            cumulative_gas_used: self.cumulative_gas_used,
            logs: self.logs.iter().map(|(_, log)| log.clone()).collect::<Vec<_>>(),
        };
        let receipt = hyperion_vm::Receipt {
            tx_type: self.tx.tx_type(),
            success: receipt.status.coerce_status(),
            cumulative_gas_used: receipt.cumulative_gas_used,
            logs: receipt.logs,
        };
        receipt.envelope()
    }
}

fn tx_view(
    tx: EthTransaction,
    receipt: &Receipt,
    index: u64,
    cumulative: &mut u64,
    log_index: &mut u64,
) -> TxView {
    let mut view = TxView {
        effective_gas_price: tx.max_fee_per_gas(),
        tx,
        index,
        success: receipt.success,
        gas_used: receipt.weight,
        cumulative_gas_used: 0,
        contract: None,
        logs: Vec::new(),
    };
    for event in receipt.events.iter().filter_map(evm_event) {
        match event {
            EvmEvent::Log { address, topics, data } => {
                let topics = topics.into_iter().map(|t| B256::from(t.0)).collect();
                let log = PrimitiveLog {
                    address: eth_address(address),
                    data: LogData::new_unchecked(topics, data.into()),
                };
                view.logs.push((*log_index, log));
                *log_index += 1;
            }
            EvmEvent::Executed { success, gas_used, effective_gas_price, contract, .. } => {
                view.success = success;
                view.gas_used = gas_used;
                view.effective_gas_price = effective_gas_price;
                view.contract = contract.map(eth_address);
            }
            EvmEvent::BlockStarted { .. } => {}
        }
    }
    *cumulative += view.gas_used;
    view.cumulative_gas_used = *cumulative;
    view
}

/// `tx` while it waits in the pool (no block yet).
pub fn pending_transaction(tx: &EthTransaction) -> Transaction {
    Transaction {
        inner: Recovered::new_unchecked(tx.envelope().clone(), tx.sender()),
        block_hash: None,
        block_number: None,
        transaction_index: None,
        effective_gas_price: None,
        block_timestamp: None,
    }
}
