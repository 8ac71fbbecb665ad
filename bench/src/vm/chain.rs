//! Ours: the default chain's runtime (system, balances, evm) over the in-memory state; and the
//! workload both sides run, built once by the proposer's path.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{keccak256, Address as EthAddress, Bytes, Signature, TxKind, U256};
use hyperion_primitives::{Address, Block, Extrinsic, Header, UNIT};
use hyperion_runtime::{BuiltBlock, InvalidTransaction, Runtime, TransactionSource};
use hyperion_state::{ChangeSet, MemoryStateDb, StateDb};
use k256::ecdsa::SigningKey;
use pallet_balances::Balances;
use pallet_evm::{Event as EvmEvent, Evm};
use parity_scale_codec::{Decode, Encode};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

use super::{Case, Kind};
use crate::{Error, Result};

const BALANCES_INDEX: u8 = 1;
const EVM_INDEX: u8 = 2;
/// The chain id transactions are signed for.
pub const CHAIN_ID: u64 = 4_242;
/// Block gas limit: large enough for every sender's transaction in one block.
pub(crate) const GAS_LIMIT: u64 = 2_000_000_000;
const BLOCK_TIME_MS: u64 = 1_000;
/// The token, compiled by `tests/eth-clients/contracts/compile.mjs`.
const TOKEN_JSON: &str = include_str!("../../../tests/eth-clients/contracts/HyperionToken.json");
/// Tokens the deployer mints and hands out.
pub(crate) const TOKEN_SUPPLY: u128 = 1_000_000_000 * UNIT;

/// A block both sides execute: its environment and its transactions.
pub struct BenchBlock {
    /// The block as the proposer built it.
    pub block: Block,
    /// Its base fee.
    pub base_fee: u64,
    /// Its raw Ethereum transactions, in order.
    pub txs: Vec<Vec<u8>>,
}

/// The accounts, genesis and blocks of a case.
pub struct Workload {
    runtime: Runtime,
    genesis: ChangeSet,
    genesis_header: Header,
    /// The senders (funded at genesis).
    pub senders: Vec<EthAddress>,
    /// Each sender's genesis balance.
    pub endowment: u128,
    /// Blocks that prepare the case (deploy, hand out tokens); not timed.
    pub setup: Vec<BenchBlock>,
    /// Timed blocks.
    pub measured: Vec<BenchBlock>,
}

/// Offers a block's extrinsics in order, as the mempool would, and keeps the refusals.
pub(crate) struct Source(std::vec::IntoIter<Extrinsic>, Vec<InvalidTransaction>);

impl TransactionSource for Source {
    fn next(&mut self) -> Option<(Arc<Extrinsic>, usize)> {
        self.0.next().map(|xt| {
            let len = xt.encoded_size();
            (Arc::new(xt), len)
        })
    }
    fn reject(&mut self, _hash: &hyperion_primitives::Hash, reason: &InvalidTransaction) {
        self.1.push(reason.clone());
    }
}

/// Who proposes the benchmarks' blocks.
pub(crate) const PROPOSER: Address = Address([0xb0; 20]);

/// The proposer's path for the block after `head`: builds it from `xts` (one block time later)
/// on `runtime` over `state`, without committing it. Fails unless every extrinsic was included
/// and succeeded.
pub(crate) fn build_next(
    runtime: &Runtime,
    state: &dyn StateDb,
    head: &Header,
    xts: Vec<Extrinsic>,
) -> Result<BuiltBlock> {
    let count = xts.len();
    let mut source = Source(xts.into_iter(), Vec::new());
    let built = runtime.build_block(state, head, PROPOSER, (head.number + 1) * BLOCK_TIME_MS, &mut source)?;
    let failed = built.receipts.iter().filter(|r| !r.success).count();
    if built.block.extrinsics.len() != count || failed > 0 {
        return Err(Error::Check(format!(
            "block {}: {} of {count} extrinsics included, {failed} failed, refusals {:?}",
            built.block.header.number,
            built.block.extrinsics.len(),
            source.1.iter().take(3).collect::<Vec<_>>()
        )));
    }
    Ok(built)
}

pub(crate) fn runtime() -> Result<Runtime> {
    let balances = Arc::new(Balances::new(BALANCES_INDEX));
    let evm = Arc::new(Evm::new(EVM_INDEX, balances.clone()));
    Ok(Runtime::new(balances.clone(), vec![(BALANCES_INDEX, balances), (EVM_INDEX, evm.clone())])?
        .with_ethereum(EVM_INDEX, evm)?)
}

pub(crate) fn key(seed: u32) -> SigningKey {
    let secret = keccak256([b"hyperion-bench/vm/".as_slice(), &seed.to_le_bytes()].concat());
    SigningKey::from_slice(secret.as_slice()).expect("a keccak output is a valid key")
}

pub(crate) fn sign(
    key: &SigningKey,
    nonce: u64,
    to: Option<EthAddress>,
    value: u128,
    input: Vec<u8>,
    gas_limit: u64,
) -> Vec<u8> {
    let tx = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: to.map_or(TxKind::Create, TxKind::Call),
        value: U256::from(value),
        access_list: Default::default(),
        input: Bytes::from(input),
    };
    let (signature, recovery) = key.sign_prehash_recoverable(tx.signature_hash().as_slice()).expect("signs");
    TxEnvelope::from(tx.into_signed(Signature::from((signature, recovery)))).encoded_2718()
}

pub(crate) fn erc20_transfer(to: EthAddress, amount: u128) -> Vec<u8> {
    let mut input = vec![0xa9, 0x05, 0x9c, 0xbb];
    input.extend([0u8; 12]);
    input.extend(to.as_slice());
    input.extend(U256::from(amount).to_be_bytes::<32>());
    input
}

/// ABI encoding of a string as a dynamic tail: length, then the bytes padded to 32.
fn abi_string(text: &str) -> Vec<u8> {
    let mut out = U256::from(text.len()).to_be_bytes::<32>().to_vec();
    out.extend(text.as_bytes());
    out.resize(32 + text.len().div_ceil(32) * 32, 0);
    out
}

/// The token's creation code with its constructor's arguments: `(name, symbol, initialSupply)`.
pub(crate) fn token_creation() -> Result<Vec<u8>> {
    let json: Value =
        serde_json::from_str(TOKEN_JSON).map_err(|e| Error::Check(format!("token JSON: {e}")))?;
    let code = json["bytecode"].as_str().ok_or_else(|| Error::Check("token JSON has no bytecode".into()))?;
    let mut creation = hex::decode(code.trim_start_matches("0x"))
        .map_err(|e| Error::Check(format!("token bytecode: {e}")))?;
    let constructor =
        json["abi"].as_array().and_then(|abi| abi.iter().find(|item| item["type"] == "constructor"));
    let types: Vec<&str> = constructor
        .and_then(|c| c["inputs"].as_array())
        .map(|inputs| inputs.iter().filter_map(|i| i["type"].as_str()).collect())
        .unwrap_or_default();
    if types != ["string", "string", "uint256"] {
        return Err(Error::Check(format!("the token's constructor takes {types:?}")));
    }
    let (name, symbol) = (abi_string("Bench Token"), abi_string("BENCH"));
    creation.extend(U256::from(96).to_be_bytes::<32>());
    creation.extend(U256::from(96 + name.len()).to_be_bytes::<32>());
    creation.extend(U256::from(TOKEN_SUPPLY).to_be_bytes::<32>());
    creation.extend(name);
    creation.extend(symbol);
    Ok(creation)
}

/// A deterministic stream of indices.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % u64::from(n)) as u32
    }
}

impl Workload {
    /// Signs the case's blocks and builds them once with the proposer's path.
    pub fn new(case: &Case) -> Result<Self> {
        let runtime = runtime()?;
        let keys: Vec<SigningKey> = (0..case.senders).map(key).collect();
        let senders: Vec<EthAddress> = keys.iter().map(EthAddress::from_private_key).collect();
        let endowment = 1_000 * UNIT;
        let mut genesis = runtime.default_genesis();
        let endowed: Vec<Value> = senders.iter().map(|a| json!([a, endowment.to_string()])).collect();
        genesis.insert("balances".into(), json!({ "balances": endowed }));
        genesis.insert("evm".into(), json!({ "chainId": CHAIN_ID, "fork": "Prague", "gasLimit": GAS_LIMIT }));
        let genesis = runtime.genesis_changes(&genesis)?;
        let root = MemoryStateDb::new(1).commit(0, &genesis, None)?;
        let genesis_header = Runtime::genesis_header(root, 0);
        runtime.set_genesis_hash(genesis_header.hash());

        let mut nonces = vec![0u64; keys.len()];
        let mut next = |i: usize| {
            nonces[i] += 1;
            nonces[i] - 1
        };
        let mut setup_txs: Vec<Vec<Vec<u8>>> = Vec::new();
        let mut token = None;
        if case.kind == Kind::Erc20 {
            setup_txs.push(vec![sign(&keys[0], next(0), None, 0, token_creation()?, 5_000_000)]);
            let address = senders[0].create(0);
            token = Some(address);
            let share = TOKEN_SUPPLY / 2 / u128::from(case.senders);
            let handouts = (1..keys.len()).map(|i| {
                sign(&keys[0], next(0), Some(address), 0, erc20_transfer(senders[i], share), 100_000)
            });
            setup_txs.push(handouts.collect());
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut measured_txs = Vec::new();
        for _ in 0..case.blocks {
            let block: Vec<Vec<u8>> = (0..keys.len())
                .map(|i| {
                    let to = senders[((i as u32 + 1 + rng.below(case.senders - 1)) % case.senders) as usize];
                    match token {
                        None => sign(&keys[i], next(i), Some(to), 1_000, Vec::new(), 21_000),
                        Some(token) => {
                            sign(&keys[i], next(i), Some(token), 0, erc20_transfer(to, 1_000), 100_000)
                        }
                    }
                })
                .collect();
            measured_txs.push(block);
        }
        let mut workload = Self {
            runtime,
            genesis,
            genesis_header,
            senders,
            endowment,
            setup: Vec::new(),
            measured: Vec::new(),
        };
        let state = workload.genesis_state()?;
        let mut head = workload.genesis_header.clone();
        for txs in setup_txs {
            let block = workload.build(&state, &mut head, txs)?;
            workload.setup.push(block);
        }
        for txs in measured_txs {
            let block = workload.build(&state, &mut head, txs)?;
            workload.measured.push(block);
        }
        Ok(workload)
    }

    fn genesis_state(&self) -> Result<MemoryStateDb> {
        let state = MemoryStateDb::new(4);
        state.commit(0, &self.genesis, Some(self.genesis_header.state_root))?;
        Ok(state)
    }

    /// Builds the next block from `txs` with the proposer's path; every one must succeed.
    fn build(&self, state: &MemoryStateDb, head: &mut Header, txs: Vec<Vec<u8>>) -> Result<BenchBlock> {
        let xts = txs.iter().cloned().map(Extrinsic::Ethereum).collect();
        let built = build_next(&self.runtime, state, head, xts)?;
        let base_fee = built
            .block_events
            .iter()
            .filter(|e| e.pallet == EVM_INDEX)
            .find_map(|e| match EvmEvent::decode(&mut [vec![e.event], e.data.clone()].concat().as_slice()) {
                Ok(EvmEvent::BlockStarted { base_fee, .. }) => Some(base_fee),
                _ => None,
            })
            .ok_or_else(|| Error::Check("no BlockStarted event".into()))?;
        state.commit(built.block.header.number, &built.changes, Some(built.block.header.state_root))?;
        *head = built.block.header.clone();
        Ok(BenchBlock { block: built.block, base_fee, txs })
    }

    /// Executes and commits `block` on top of `head` on `runtime` (the validator's path);
    /// returns its receipts.
    fn import(
        runtime: &Runtime,
        state: &MemoryStateDb,
        head: &mut Header,
        block: &BenchBlock,
    ) -> Result<Vec<u64>> {
        let executed = runtime.execute_block(state, head, &block.block)?;
        let header = &block.block.header;
        state.commit(header.number, &executed.changes, Some(header.state_root))?;
        *head = header.clone();
        Ok(executed.receipts.iter().map(|r| r.weight).collect())
    }

    /// Ours: executes the setup blocks, then times `execute_block` and `commit` of the measured
    /// ones; returns the seconds and the gas of every measured transaction.
    pub fn run_ours(&self) -> Result<(f64, Vec<u64>)> {
        // A validator that has not seen the transactions (its EVM pallet's caches are empty):
        // it recovers every sender, as the baseline does.
        let validator = runtime()?;
        validator.set_genesis_hash(self.genesis_header.hash());
        let state = self.genesis_state()?;
        let mut head = self.genesis_header.clone();
        for block in &self.setup {
            Self::import(&validator, &state, &mut head, block)?;
        }
        let mut gas = Vec::new();
        let start = Instant::now();
        for block in &self.measured {
            gas.extend(Self::import(&validator, &state, &mut head, block)?);
        }
        Ok((start.elapsed().as_secs_f64(), gas))
    }
}
