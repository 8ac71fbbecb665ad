//! The Ethereum JSON-RPC, on the node's RPC port beside Substrate's methods: what web3.py,
//! ethers, viem, cast and MetaMask use.
//!
//! | method | notes |
//! |---|---|
//! | `eth_chainId`, `net_version`, `web3_clientVersion`, `net_listening`, `net_peerCount` | |
//! | `eth_blockNumber`, `eth_syncing` (`false`), `eth_accounts` (`[]`) | |
//! | `eth_getBalance`, `eth_getTransactionCount`, `eth_getCode`, `eth_getStorageAt` | block tag or hash; `pending` counts the pool |
//! | `eth_gasPrice`, `eth_maxPriorityFeePerGas`, `eth_feeHistory` | next base fee plus the median recent tip |
//! | `eth_call`, `eth_estimateGas` | block tag, state overrides; a revert is error 3 with its data |
//! | `eth_sendRawTransaction` | geth's messages (`nonce too low`, ...), code -32000 |
//! | `eth_getTransactionByHash`, `eth_getTransactionReceipt` | pooled transactions have no block |
//! | `eth_getBlockByNumber`, `eth_getBlockByHash`, `eth_getBlockTransactionCountBy*` | only Ethereum transactions are listed |
//! | `eth_getLogs` | address and topic filters, at most [`MAX_LOG_RANGE`] blocks and [`MAX_LOGS`] logs |
//! | `eth_subscribe` / `eth_unsubscribe` | `newHeads`, `logs` (WebSocket) |
//!
//! A Hyperion block is an Ethereum block whose hash is Hyperion's header hash, whose
//! transactions are its Ethereum transactions (native extrinsics are not listed), whose
//! timestamp is in seconds and whose miner is the proposer.

mod call;
mod view;

use alloy_primitives::{Address, Bytes, B256, U256};
use alloy_rpc_types_eth::state::StateOverride;
use alloy_rpc_types_eth::{
    BlockId, BlockNumberOrTag, FeeHistory, Filter, FilterBlockOption, Log, TransactionRequest,
};
use hyperion_primitives::{Extrinsic, Hash};
use hyperion_runtime::{InvalidTransaction, QueryContext};
use hyperion_vm::keys::{read_code, read_storage, KeyRead};
use hyperion_vm::{EthTransaction, EvmState};
use jsonrpsee::server::RpcModule;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use pallet_evm::{next_base_fee, ChainState, Evm, BASE_FEE, GAS_USED};
use parity_scale_codec::Encode;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};

use crate::mempool::PoolError;
use crate::service::{Node, SubmitError};
pub use call::{revert_reason, CALL_GAS_CAP};
pub use view::{BlockView, TxView};

/// Blocks one `eth_getLogs` may scan.
pub const MAX_LOG_RANGE: u64 = 10_000;
/// Logs one `eth_getLogs` may return.
pub const MAX_LOGS: usize = 10_000;
/// Blocks one `eth_feeHistory` may cover.
pub const MAX_FEE_HISTORY: u64 = 1024;
/// Recent blocks whose tips make the suggested tip.
const TIP_BLOCKS: u64 = 20;
/// The suggested tip when recent blocks have no transactions: 1 gwei.
const DEFAULT_TIP: u128 = 1_000_000_000;

/// Why an Ethereum method failed, as clients expect to see it.
#[derive(Debug)]
pub enum EthError {
    /// Malformed parameters (-32602).
    InvalidParams(String),
    /// A node failure (-32603).
    Internal(String),
    /// The call could not run, or a transaction was refused (-32000, geth's message).
    Execution(String),
    /// The call reverted (3, "execution reverted[: reason]", the revert data).
    Reverted(Bytes),
    /// A query asked for too much (-32005).
    LimitExceeded(String),
}

impl From<EthError> for ErrorObjectOwned {
    fn from(e: EthError) -> Self {
        match e {
            EthError::InvalidParams(m) => ErrorObjectOwned::owned(-32602, m, None::<()>),
            EthError::Internal(m) => ErrorObjectOwned::owned(-32603, m, None::<()>),
            EthError::Execution(m) => ErrorObjectOwned::owned(-32000, m, None::<()>),
            EthError::LimitExceeded(m) => ErrorObjectOwned::owned(-32005, m, None::<()>),
            EthError::Reverted(data) => {
                let message = match revert_reason(&data) {
                    Some(reason) => format!("execution reverted: {reason}"),
                    None => "execution reverted".to_string(),
                };
                ErrorObjectOwned::owned(3, message, Some(data))
            }
        }
    }
}

type EthResult<T> = Result<T, EthError>;

fn internal(e: impl ToString) -> EthError {
    EthError::Internal(e.to_string())
}

/// The EVM pallet of the default runtime (stateless: its index and ledger).
fn evm() -> &'static Evm {
    static EVM: OnceLock<Arc<Evm>> = OnceLock::new();
    EVM.get_or_init(crate::default_evm)
}

fn param<T: DeserializeOwned>(params: &[Value], index: usize, what: &str) -> EthResult<Option<T>> {
    match params.get(index) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|e| EthError::InvalidParams(format!("{what}: {e}"))),
    }
}

fn required<T: DeserializeOwned>(params: &[Value], index: usize, what: &str) -> EthResult<T> {
    param(params, index, what)?.ok_or_else(|| EthError::InvalidParams(format!("missing {what}")))
}

/// A quantity in Ethereum's minimal hex (`0x0`, `0x1a`).
fn quantity(n: impl std::fmt::LowerHex) -> Value {
    json!(format!("{n:#x}"))
}

/// The block number `id` names; `None` for an unknown hash or a future number.
fn resolve(node: &Node, id: Option<BlockId>) -> Option<u64> {
    let best = node.best_header().number;
    match id.unwrap_or(BlockId::Number(BlockNumberOrTag::Latest)) {
        BlockId::Hash(hash) => node.number_of(&Hash(hash.block_hash.0)),
        BlockId::Number(tag) => match tag {
            BlockNumberOrTag::Latest | BlockNumberOrTag::Pending => Some(best),
            BlockNumberOrTag::Safe | BlockNumberOrTag::Finalized => Some(node.finalized_header().number),
            BlockNumberOrTag::Earliest => Some(0),
            BlockNumberOrTag::Number(n) => (n <= best).then_some(n),
        },
    }
}

/// The state after the block `id` names, or an error clients understand.
fn state_at(node: &Node, id: Option<BlockId>) -> EthResult<(u64, QueryContext)> {
    let number = resolve(node, id).ok_or_else(|| EthError::InvalidParams("header not found".into()))?;
    let snapshot = node.snapshot(number).map_err(|_| {
        EthError::Execution(format!("state of block {number} is pruned (try an archive node)"))
    })?;
    Ok((number, QueryContext::new(snapshot)))
}

struct Keys<'a>(&'a mut QueryContext);

impl KeyRead for Keys<'_> {
    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        hyperion_runtime::StorageRead::read_raw(self.0, key)
    }
}

fn block_view(node: &Node, number: u64) -> EthResult<Option<BlockView>> {
    Ok(node.block(number).map_err(internal)?.map(BlockView::new))
}

/// Registers every Ethereum method on `m`.
pub fn register(m: &mut RpcModule<Arc<Node>>) {
    register_chain_info(m);
    register_state(m);
    register_fees(m);
    register_calls(m);
    register_transactions(m);
    register_blocks(m);
    register_logs(m);
}

fn positional(params: &Params<'_>) -> Result<Vec<Value>, ErrorObjectOwned> {
    if params.is_object() {
        return Err(EthError::InvalidParams("positional parameters expected".into()).into());
    }
    Ok(params.parse::<Option<Vec<Value>>>()?.unwrap_or_default())
}

/// Registers a method with positional parameters, run on the blocking pool.
fn reg(m: &mut RpcModule<Arc<Node>>, name: &'static str, f: fn(&Node, Vec<Value>) -> EthResult<Value>) {
    m.register_blocking_method(name, move |params, node, _| {
        f(&node, positional(&params)?).map_err(ErrorObjectOwned::from)
    })
    .expect("method names are unique");
}

fn chain_id(node: &Node) -> u64 {
    Evm::config(&mut QueryContext::new(node.best_snapshot())).chain_id
}

fn register_chain_info(m: &mut RpcModule<Arc<Node>>) {
    reg(m, "eth_chainId", |node, _| Ok(quantity(chain_id(node))));
    reg(m, "net_version", |node, _| Ok(json!(chain_id(node).to_string())));
    reg(m, "web3_clientVersion", |_, _| Ok(json!(format!("hyperion/v{}", env!("CARGO_PKG_VERSION")))));
    reg(m, "net_listening", |_, _| Ok(json!(true)));
    reg(m, "net_peerCount", |_, _| Ok(quantity(0u64)));
    reg(m, "eth_blockNumber", |node, _| Ok(quantity(node.best_header().number)));
    reg(m, "eth_syncing", |_, _| Ok(json!(false)));
    reg(m, "eth_accounts", |_, _| Ok(json!([])));
}

fn register_state(m: &mut RpcModule<Arc<Node>>) {
    reg(m, "eth_getBalance", |node, p| {
        let address: Address = required(&p, 0, "address")?;
        let (_, mut query) = state_at(node, param(&p, 1, "block")?)?;
        let account = ChainState::new(&mut query, evm().currency()).account(address).map_err(internal)?;
        Ok(json!(account.map_or(U256::ZERO, |a| a.balance)))
    });
    reg(m, "eth_getTransactionCount", |node, p| {
        let address: Address = required(&p, 0, "address")?;
        let block: Option<BlockId> = param(&p, 1, "block")?;
        if block == Some(BlockId::Number(BlockNumberOrTag::Pending)) {
            return Ok(quantity(node.next_nonce(&pallet_evm::to_native(address))));
        }
        let (_, mut query) = state_at(node, block)?;
        let account = ChainState::new(&mut query, evm().currency()).account(address).map_err(internal)?;
        Ok(quantity(account.map_or(0, |a| a.nonce)))
    });
    reg(m, "eth_getCode", |node, p| {
        let address: Address = required(&p, 0, "address")?;
        let (_, mut query) = state_at(node, param(&p, 1, "block")?)?;
        let account = ChainState::new(&mut query, evm().currency()).account(address).map_err(internal)?;
        let code = match account {
            Some(account) if account.code_hash != hyperion_vm::KECCAK_EMPTY => {
                read_code(&mut Keys(&mut query), account.code_hash).unwrap_or_default()
            }
            _ => Bytes::new(),
        };
        Ok(json!(code))
    });
    reg(m, "eth_getStorageAt", |node, p| {
        let address: Address = required(&p, 0, "address")?;
        let slot: U256 = required(&p, 1, "storage slot")?;
        let (_, mut query) = state_at(node, param(&p, 2, "block")?)?;
        let value = read_storage(&mut Keys(&mut query), address, slot).map_err(internal)?;
        Ok(json!(B256::from(value)))
    });
}

/// The base fee of the next block, from the best block's.
fn next_block_base_fee(node: &Node) -> u64 {
    let mut query = QueryContext::new(node.best_snapshot());
    let config = Evm::config(&mut query);
    let (base_fee, used) = (BASE_FEE.get_or_default(&mut query), GAS_USED.get_or_default(&mut query));
    next_base_fee(base_fee, used, config.gas_limit, config.min_base_fee)
}

/// The median tip paid in the last [`TIP_BLOCKS`] blocks, or [`DEFAULT_TIP`].
fn suggested_tip(node: &Node) -> EthResult<u128> {
    let best = node.best_header().number;
    let mut tips = Vec::new();
    for number in best.saturating_sub(TIP_BLOCKS - 1)..=best {
        if let Some(view) = block_view(node, number)? {
            let base = u128::from(view.base_fee);
            tips.extend(view.txs.iter().map(|t| t.effective_gas_price.saturating_sub(base)));
        }
    }
    tips.sort_unstable();
    Ok(tips.get(tips.len() / 2).copied().filter(|tip| *tip > 0).unwrap_or(DEFAULT_TIP))
}

fn register_fees(m: &mut RpcModule<Arc<Node>>) {
    reg(m, "eth_gasPrice", |node, _| {
        Ok(quantity(u128::from(next_block_base_fee(node)).saturating_add(suggested_tip(node)?)))
    });
    reg(m, "eth_maxPriorityFeePerGas", |node, _| Ok(quantity(suggested_tip(node)?)));
    reg(m, "eth_feeHistory", |node, p| {
        let count: U256 = required(&p, 0, "block count")?;
        let count = u64::try_from(count).unwrap_or(u64::MAX).min(MAX_FEE_HISTORY);
        let newest: BlockNumberOrTag = required(&p, 1, "newest block")?;
        let percentiles: Option<Vec<f64>> = param(&p, 2, "reward percentiles")?;
        if let Some(p) = &percentiles {
            if p.len() > 100
                || p.iter().any(|x| !(0.0..=100.0).contains(x))
                || p.windows(2).any(|w| w[0] > w[1])
            {
                return Err(EthError::InvalidParams(
                    "reward percentiles: up to 100 rising values in 0..=100".into(),
                ));
            }
        }
        let newest = resolve(node, Some(BlockId::Number(newest)))
            .ok_or_else(|| EthError::InvalidParams("newest block not found".into()))?;
        Ok(json!(fee_history(node, count, newest, percentiles.as_deref())?))
    });
}

fn fee_history(node: &Node, count: u64, newest: u64, percentiles: Option<&[f64]>) -> EthResult<FeeHistory> {
    let oldest = newest.saturating_sub(count.max(1) - 1);
    let (mut base_fees, mut ratios, mut rewards) = (Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    for number in oldest..=newest {
        let view = block_view(node, number)?.ok_or_else(|| internal(format!("block {number} missing")))?;
        let limit = view.gas_limit.max(1);
        base_fees.push(u128::from(view.base_fee));
        ratios.push(view.stored.block.header.gas_used as f64 / limit as f64);
        if let Some(percentiles) = percentiles {
            rewards.push(block_rewards(&view, percentiles));
        }
        last = Some(view);
    }
    if let Some(view) = last {
        let min = Evm::config(&mut QueryContext::new(node.best_snapshot())).min_base_fee;
        base_fees.push(u128::from(next_base_fee(
            view.base_fee,
            view.stored.block.header.gas_used,
            view.gas_limit,
            min,
        )));
    }
    Ok(FeeHistory {
        oldest_block: oldest,
        base_fee_per_gas: base_fees,
        gas_used_ratio: ratios,
        base_fee_per_blob_gas: Vec::new(),
        blob_gas_used_ratio: Vec::new(),
        reward: percentiles.map(|_| rewards),
    })
}

/// The tip at each percentile of the block's gas (transactions sorted by tip).
fn block_rewards(view: &BlockView, percentiles: &[f64]) -> Vec<u128> {
    let base = u128::from(view.base_fee);
    let mut txs: Vec<(u128, u64)> =
        view.txs.iter().map(|t| (t.effective_gas_price.saturating_sub(base), t.gas_used)).collect();
    if txs.is_empty() {
        return vec![0; percentiles.len()];
    }
    txs.sort_unstable();
    let total: u64 = txs.iter().map(|(_, gas)| gas).sum();
    percentiles
        .iter()
        .map(|p| {
            let threshold = (total as f64 * p / 100.0) as u64;
            let mut sum = 0u64;
            for (tip, gas) in &txs {
                sum += gas;
                if sum >= threshold {
                    return *tip;
                }
            }
            txs.last().map_or(0, |(tip, _)| *tip)
        })
        .collect()
}

fn call_site(node: &Node, id: Option<BlockId>) -> EthResult<call::CallSite> {
    let (number, mut query) = state_at(node, id)?;
    let header = node.block(number).map_err(internal)?.ok_or_else(|| internal("block missing"))?.block.header;
    let config = Evm::config(&mut query);
    let base_fee = BASE_FEE.get_or_default(&mut query);
    let env = pallet_evm::block_env(
        number,
        header.timestamp_ms,
        header.proposer,
        header.parent_hash,
        config.gas_limit,
        base_fee,
    );
    Ok(call::CallSite { query, env, vm: Evm::vm(&mut QueryContext::new(node.best_snapshot())) })
}

fn register_calls(m: &mut RpcModule<Arc<Node>>) {
    reg(m, "eth_call", |node, p| {
        let request: TransactionRequest = required(&p, 0, "call")?;
        let mut site = call_site(node, param(&p, 1, "block")?)?;
        let overrides: Option<StateOverride> = param(&p, 2, "state overrides")?;
        let cap = site.env.gas_limit.min(CALL_GAS_CAP);
        let executed = call::run(evm(), &mut site, &call::call_request(&request, cap), overrides.as_ref())?;
        Ok(json!(call::output(executed)?))
    });
    reg(m, "eth_estimateGas", |node, p| {
        let request: TransactionRequest = required(&p, 0, "call")?;
        let mut site = call_site(node, param(&p, 1, "block")?)?;
        let overrides: Option<StateOverride> = param(&p, 2, "state overrides")?;
        let cap = site.env.gas_limit.min(CALL_GAS_CAP);
        Ok(quantity(call::estimate(
            evm(),
            &mut site,
            &call::call_request(&request, cap),
            overrides.as_ref(),
        )?))
    });
}

/// The message geth gives for a refused transaction.
fn refusal(e: SubmitError) -> EthError {
    let message = match e {
        SubmitError::Invalid(InvalidTransaction::Ethereum(message)) => message,
        SubmitError::Invalid(InvalidTransaction::StaleNonce { .. })
        | SubmitError::Pool(PoolError::StaleNonce { .. }) => "nonce too low".into(),
        SubmitError::Invalid(InvalidTransaction::FutureNonce { .. })
        | SubmitError::Pool(PoolError::TooManyFuture { .. } | PoolError::NonceGap { .. }) => {
            "nonce too high".into()
        }
        SubmitError::Invalid(InvalidTransaction::TooLarge { .. })
        | SubmitError::Pool(PoolError::TooLarge { .. }) => "oversized data".into(),
        SubmitError::Invalid(InvalidTransaction::ExhaustsBlock) => "exceeds block gas limit".into(),
        SubmitError::Invalid(InvalidTransaction::CannotPayFee { .. }) => {
            "insufficient funds for gas * price + value".into()
        }
        SubmitError::Pool(PoolError::AlreadyKnown) => "already known".into(),
        SubmitError::Pool(PoolError::ReplacementUnderpriced { .. }) => {
            "replacement transaction underpriced".into()
        }
        SubmitError::Pool(PoolError::PoolFull) => "txpool is full".into(),
        other => other.to_string(),
    };
    EthError::Execution(message)
}

/// Where a transaction was included: the block's view and its index there.
fn find_transaction(node: &Node, hash: B256) -> EthResult<Option<(BlockView, usize)>> {
    let Some((number, _)) = node.extrinsic_location(&Hash(hash.0)) else { return Ok(None) };
    let Some(view) = block_view(node, number)? else { return Ok(None) };
    let index = view.txs.iter().position(|t| t.tx.hash() == hash);
    Ok(index.map(|i| (view, i)))
}

fn register_transactions(m: &mut RpcModule<Arc<Node>>) {
    reg(m, "eth_sendRawTransaction", |node, p| {
        let raw: Bytes = required(&p, 0, "raw transaction")?;
        let encoded = Extrinsic::Ethereum(raw.to_vec()).encode();
        let hash = node.submit(&encoded).map_err(refusal)?;
        Ok(json!(B256::from(hash.0)))
    });
    reg(m, "eth_getTransactionByHash", |node, p| {
        let hash: B256 = required(&p, 0, "transaction hash")?;
        if let Some((view, index)) = find_transaction(node, hash)? {
            return Ok(json!(view.transaction(&view.txs[index])));
        }
        let pooled = node.pool.lock().get(&Hash(hash.0));
        match pooled.as_deref() {
            Some(Extrinsic::Ethereum(raw)) => {
                let tx = EthTransaction::decode(raw).map_err(internal)?;
                Ok(json!(view::pending_transaction(&tx)))
            }
            _ => Ok(Value::Null),
        }
    });
    reg(m, "eth_getTransactionReceipt", |node, p| {
        let hash: B256 = required(&p, 0, "transaction hash")?;
        Ok(match find_transaction(node, hash)? {
            Some((view, index)) => json!(view.receipt(&view.txs[index])),
            None => Value::Null,
        })
    });
}

fn block_by(node: &Node, id: BlockId, full: bool) -> EthResult<Value> {
    let Some(number) = resolve(node, Some(id)) else { return Ok(Value::Null) };
    Ok(block_view(node, number)?.map_or(Value::Null, |view| json!(view.block(full))))
}

fn register_blocks(m: &mut RpcModule<Arc<Node>>) {
    reg(m, "eth_getBlockByNumber", |node, p| {
        let tag: BlockNumberOrTag = required(&p, 0, "block number")?;
        block_by(node, BlockId::Number(tag), param(&p, 1, "full transactions")?.unwrap_or(false))
    });
    reg(m, "eth_getBlockByHash", |node, p| {
        let hash: B256 = required(&p, 0, "block hash")?;
        block_by(node, BlockId::from(hash), param(&p, 1, "full transactions")?.unwrap_or(false))
    });
    reg(m, "eth_getBlockTransactionCountByNumber", |node, p| {
        let tag: BlockNumberOrTag = required(&p, 0, "block number")?;
        let Some(number) = resolve(node, Some(BlockId::Number(tag))) else { return Ok(Value::Null) };
        Ok(block_view(node, number)?.map_or(Value::Null, |v| quantity(v.txs.len() as u64)))
    });
    reg(m, "eth_getBlockTransactionCountByHash", |node, p| {
        let hash: B256 = required(&p, 0, "block hash")?;
        let Some(number) = resolve(node, Some(BlockId::from(hash))) else { return Ok(Value::Null) };
        Ok(block_view(node, number)?.map_or(Value::Null, |v| quantity(v.txs.len() as u64)))
    });
}

/// The logs of `filter`, within the limits.
pub fn logs(node: &Node, filter: &Filter) -> EthResult<Vec<Log>> {
    let best = node.best_header().number;
    let (from, to) = match &filter.block_option {
        FilterBlockOption::AtBlockHash(hash) => {
            let number = node
                .number_of(&Hash(hash.0))
                .ok_or_else(|| EthError::InvalidParams("unknown block hash".into()))?;
            (number, number)
        }
        FilterBlockOption::Range { from_block, to_block } => {
            let at = |tag: &Option<BlockNumberOrTag>| {
                resolve(node, Some(BlockId::Number(tag.unwrap_or_default()))).unwrap_or(best)
            };
            (at(from_block), at(to_block))
        }
    };
    if from > to {
        return Ok(Vec::new());
    }
    if to - from >= MAX_LOG_RANGE {
        return Err(EthError::LimitExceeded(format!(
            "block range too large: at most {MAX_LOG_RANGE} blocks"
        )));
    }
    let mut found = Vec::new();
    for number in from..=to {
        let Some(view) = block_view(node, number)? else { break };
        if !filter.matches_bloom(view.bloom()) {
            continue;
        }
        for log in view.logs().filter(|log| filter.matches(&log.inner)) {
            if found.len() == MAX_LOGS {
                return Err(EthError::LimitExceeded(format!("query returned more than {MAX_LOGS} results")));
            }
            found.push(log);
        }
    }
    Ok(found)
}

fn register_logs(m: &mut RpcModule<Arc<Node>>) {
    reg(m, "eth_getLogs", |node, p| {
        let filter: Filter = required(&p, 0, "filter")?;
        Ok(json!(logs(node, &filter)?))
    });
    m.register_subscription(
        "eth_subscribe",
        "eth_subscription",
        "eth_unsubscribe",
        |params, pending, node, _| async move {
            let values: Vec<Value> = params.parse().unwrap_or_default();
            let kind = values.first().and_then(Value::as_str).unwrap_or_default().to_string();
            let filter: Option<Filter> = match values.get(1) {
                Some(value) => match serde_json::from_value(value.clone()) {
                    Ok(filter) => Some(filter),
                    Err(e) => {
                        pending
                            .reject(ErrorObjectOwned::from(EthError::InvalidParams(format!("filter: {e}"))))
                            .await;
                        return Ok(());
                    }
                },
                None => None,
            };
            if kind != "newHeads" && kind != "logs" {
                pending
                    .reject(ErrorObjectOwned::from(EthError::InvalidParams(format!(
                        "unsupported subscription {kind:?}"
                    ))))
                    .await;
                return Ok(());
            }
            let mut heads = node.heads.subscribe();
            let sink = pending.accept().await?;
            loop {
                let header = tokio::select! {
                    _ = sink.closed() => return Ok(()),
                    head = heads.recv() => match head {
                        Ok(header) => header,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
                    },
                };
                let node = node.clone();
                let (kind, filter) = (kind.clone(), filter.clone());
                let messages = tokio::task::spawn_blocking(move || -> EthResult<Vec<Value>> {
                    let Some(view) = block_view(&node, header.number)? else { return Ok(Vec::new()) };
                    if kind == "newHeads" {
                        return Ok(vec![json!(view.header())]);
                    }
                    let filter = filter.unwrap_or_default();
                    Ok(view.logs().filter(|log| filter.matches(&log.inner)).map(|log| json!(log)).collect())
                })
                .await;
                for message in messages.ok().and_then(Result::ok).unwrap_or_default() {
                    sink.send(serde_json::value::to_raw_value(&message)?).await?;
                }
            }
        },
    )
    .expect("subscription names are unique");
}
