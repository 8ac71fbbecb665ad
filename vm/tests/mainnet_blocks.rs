//! Real Ethereum mainnet blocks through MetisVM: every block of the folder named by
//! `HYPERION_MAINNET_BLOCKS` (default `../shared/fixtures/mainnet-blocks`), Frontier to Cancun.
//! Each block's pre-state is written into a Hyperion state with the EVM key layout; each
//! transaction is re-encoded from the JSON, decoded by [`EthTransaction`] (whose recovered
//! sender must be the block's `from`) and executed in order under the block's fork. The block's
//! `gasUsed` and `logsBloom`, and from Byzantium on its `receiptsRoot`, must come out equal.
//! Block rewards are not transactions' effects and are not applied.

mod support;

use alloy_eips::eip2718::Encodable2718;
use hyperion_vm::{
    block_bloom, receipts_root, BlockState, EthTransaction, EvmLedger, Fork, KeyedState, Receipt, StateDiff,
    Vm,
};
use std::path::Path;
use support::*;

/// Executes the block in `dir` and checks its header's results. With `defer_reward`, the
/// beneficiary's fees are paid after each transaction (as the EVM pallet pays them); returns the
/// block's state changes either way.
fn run_block(dir: &Path, defer_reward: bool) -> Result<(usize, Fork, StateDiff), String> {
    let MainnetBlock { fork, env, expected, transactions } = load_block(dir)?;
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
    let dirs = block_dirs();
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
