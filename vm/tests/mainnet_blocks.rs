//! Real Ethereum mainnet blocks through MetisVM: every block of the folder named by
//! `HYPERION_MAINNET_BLOCKS` (default `../shared/fixtures/mainnet-blocks`), Frontier to Cancun.
//! Each block's pre-state is written into a Hyperion state with the EVM key layout; each
//! transaction is re-encoded from the JSON, decoded by [`EthTransaction`] (whose recovered
//! sender must be the block's `from`) and executed in order under the block's fork. The block's
//! `gasUsed` and `logsBloom`, and from Byzantium on its `receiptsRoot`, must come out equal.
//! Block rewards are not transactions' effects and are not applied.

mod support;

use alloy_eips::eip2718::Encodable2718;
use alloy_rpc_types_eth::Transaction;
use hyperion_vm::{
    block_bloom, receipts_root, Address, BlockEnv, BlockState, Bloom, EthTransaction, EvmLedger, Fork,
    KeyedState, Receipt, StateDiff, Vm, B256, U256,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use support::*;

/// A JSON quantity that is either a hex string or a number.
fn quantity(value: &Value) -> U256 {
    match value {
        Value::String(s) => hex_u256(s),
        Value::Number(n) => U256::from(n.as_u64().expect("a small number")),
        Value::Null => U256::ZERO,
        other => panic!("not a quantity: {other}"),
    }
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn pre_state(dir: &Path) -> Vec<(Address, Genesis)> {
    let pre = read_json(&dir.join("pre_state.json"));
    let codes = read_json(&dir.join("bytecodes.json"));
    let mut accounts = Vec::new();
    for (address, account) in pre.as_object().expect("pre_state") {
        let code = match (&account["code"], account["code_hash"].as_str()) {
            (Value::String(code), _) => hex_bytes(code),
            (_, Some(hash)) => {
                let entry = &codes[hash];
                let bytecode = hex_bytes(entry["bytecode"].as_str().expect("bytecode"));
                let len = entry["original_len"].as_str().map_or(bytecode.len(), |n| n.parse().unwrap());
                bytecode.slice(..len)
            }
            _ => Default::default(),
        };
        let storage = account["storage"]
            .as_object()
            .map(|slots| slots.iter().map(|(k, v)| (hex_u256(k), quantity(v))).collect())
            .unwrap_or_default();
        let genesis = Genesis {
            balance: quantity(&account["basic"]["balance"]),
            nonce: u64::try_from(quantity(&account["basic"]["nonce"])).unwrap(),
            code,
            storage,
        };
        accounts.push((hex_address(address), genesis));
    }
    accounts
}

/// A block number written in decimal, or in hex with `0x`.
fn block_number(text: &str) -> u64 {
    match text.strip_prefix("0x") {
        Some(_) => u64::try_from(hex_u256(text)).unwrap(),
        None => text.parse().unwrap_or_else(|e| panic!("block number {text}: {e}")),
    }
}

fn block_hashes(dir: &Path) -> BTreeMap<u64, B256> {
    let path = dir.join("block_hashes.json");
    if !path.exists() {
        return BTreeMap::new();
    }
    let hashes = read_json(&path);
    hashes
        .as_object()
        .expect("block hashes")
        .iter()
        .map(|(number, hash)| (block_number(number), hex_b256(hash.as_str().unwrap())))
        .collect()
}

/// What a block's header says its transactions did.
struct Expected {
    gas_used: u64,
    bloom: Bloom,
    receipts_root: B256,
}

/// Executes the block in `dir` and checks its header's results. With `defer_reward`, the
/// beneficiary's fees are paid after each transaction (as the EVM pallet pays them); returns the
/// block's state changes either way.
fn run_block(dir: &Path, defer_reward: bool) -> Result<(usize, Fork, StateDiff), String> {
    let block = read_json(&dir.join("block.json"));
    let field = |name: &str| block[name].as_str().ok_or_else(|| format!("no {name}"));
    let number = hex_u64(field("number")?);
    let timestamp = hex_u64(field("timestamp")?);
    let fork = Fork::mainnet(number, timestamp);
    let env = BlockEnv {
        number,
        timestamp,
        beneficiary: hex_address(field("miner")?),
        gas_limit: hex_u64(field("gasLimit")?),
        base_fee: block["baseFeePerGas"].as_str().map_or(0, hex_u64),
        difficulty: hex_u256(field("difficulty")?),
        prevrandao: (fork >= Fork::Merge).then(|| hex_b256(field("mixHash").unwrap())),
        excess_blob_gas: block["excessBlobGas"].as_str().map(hex_u64),
    };
    let expected = Expected {
        gas_used: hex_u64(field("gasUsed")?),
        bloom: Bloom::from_slice(&hex_bytes(field("logsBloom")?)),
        receipts_root: hex_b256(field("receiptsRoot")?),
    };
    let transactions: Vec<Transaction> =
        serde_json::from_value(block["transactions"].clone()).map_err(|e| format!("transactions: {e}"))?;

    let (_db, snapshot) = support::load(&pre_state(dir));
    let base = KeyedState::new(&*snapshot, EvmLedger).with_block_hashes(block_hashes(dir));
    let mut state = BlockState::new(base);
    let vm = Vm::new(fork, 1);
    let mut receipts = Vec::with_capacity(transactions.len());
    let mut cumulative_gas_used = 0u64;
    for (index, rpc) in transactions.iter().enumerate() {
        let raw = rpc.inner.inner().encoded_2718();
        let tx = EthTransaction::decode_with(&raw, fork >= Fork::Homestead)
            .map_err(|e| format!("transaction {index}: {e}"))?;
        if tx.sender() != rpc.inner.signer() {
            return Err(format!(
                "transaction {index}: sender {} but the block says {}",
                tx.sender(),
                rpc.inner.signer()
            ));
        }
        if tx.hash() != *rpc.inner.inner().tx_hash() {
            return Err(format!("transaction {index}: hash {}", tx.hash()));
        }
        let executed = if defer_reward {
            let (executed, reward) = vm
                .execute_deferring_reward(&mut state, &env, &tx)
                .map_err(|e| format!("transaction {index}: {e}"))?
                .map_err(|e| format!("transaction {index} refused: {e}"))?;
            state.credit(env.beneficiary, reward).map_err(|e| format!("transaction {index}: {e}"))?;
            executed
        } else {
            vm.execute(&mut state, &env, &tx)
                .map_err(|e| format!("transaction {index}: {e}"))?
                .map_err(|e| format!("transaction {index} refused: {e}"))?
        };
        cumulative_gas_used += executed.gas_used;
        let success = executed.success();
        receipts.push(Receipt { tx_type: tx.tx_type(), success, cumulative_gas_used, logs: executed.logs });
    }
    if cumulative_gas_used != expected.gas_used {
        return Err(format!("gas used {cumulative_gas_used}, header says {}", expected.gas_used));
    }
    if block_bloom(&receipts) != expected.bloom {
        return Err("logs bloom differs from the header's".into());
    }
    if fork.has_receipt_status() && receipts_root(&receipts) != expected.receipts_root {
        return Err(format!(
            "receipts root {}, header says {}",
            receipts_root(&receipts),
            expected.receipts_root
        ));
    }
    Ok((transactions.len(), fork, state.into_diff().1))
}

#[test]
fn mainnet_blocks_give_their_headers_results() {
    let root = fixture_dir("HYPERION_MAINNET_BLOCKS", "mainnet-blocks");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("mainnet blocks folder {}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("block.json").exists())
        .collect();
    dirs.sort_by_key(|d| d.file_name().unwrap().to_string_lossy().parse::<u64>().unwrap_or(u64::MAX));
    assert!(!dirs.is_empty(), "no blocks in {}", root.display());
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let inline = run_block(dir, false);
        let deferred = run_block(dir, true);
        match (inline, deferred) {
            (Ok((txs, fork, inline)), Ok((_, _, deferred))) if inline == deferred => {
                println!("block {name} ({fork:?}): {txs} transactions, header results match")
            }
            (Ok(_), Ok(_)) => failures.push(format!(
                "block {name}: paying the beneficiary after each transaction changes the state"
            )),
            (Err(e), _) | (_, Err(e)) => failures.push(format!("block {name}: {e}")),
        }
    }
    for failure in &failures {
        println!("FAILED {failure}");
    }
    assert!(failures.is_empty(), "{} of {} blocks failed", failures.len(), dirs.len());
}
