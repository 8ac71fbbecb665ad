//! The baseline: revm alone over its in-memory `CacheDB`, the same transactions in the same
//! blocks, decoded and their senders recovered, no state commitment.

use hyperion_vm::EthTransaction;
use revm::context::{BlockEnv, CfgEnv, Context};
use revm::database::{CacheDB, EmptyDB};
use revm::primitives::hardfork::SpecId;
use revm::state::AccountInfo;
use revm::{ExecuteCommitEvm, MainBuilder, MainContext};
use std::time::Instant;

use super::chain::{BenchBlock, Workload, CHAIN_ID};
use crate::{Error, Result};

fn execute(db: &mut CacheDB<EmptyDB>, block: &BenchBlock, gas: &mut Vec<u64>) -> Result<()> {
    let header = &block.block.header;
    let mut cfg = CfgEnv::default();
    cfg.set_spec_and_mainnet_gas_params(SpecId::PRAGUE);
    cfg.chain_id = CHAIN_ID;
    let env = BlockEnv {
        number: revm::primitives::U256::from(header.number),
        beneficiary: revm::primitives::Address::from(header.proposer.0),
        timestamp: revm::primitives::U256::from(header.timestamp_ms / 1000),
        gas_limit: u64::MAX / 2,
        basefee: block.base_fee,
        prevrandao: Some(revm::primitives::B256::from(header.parent_hash.0)),
        ..BlockEnv::default()
    };
    let mut evm = Context::mainnet().with_cfg(cfg).with_block(env).with_db(db).build_mainnet();
    for raw in &block.txs {
        let tx = EthTransaction::decode(raw).map_err(|e| Error::Check(format!("baseline decode: {e}")))?;
        let result =
            evm.transact_commit(tx.tx_env()).map_err(|e| Error::Check(format!("baseline: {e:?}")))?;
        if !result.is_success() {
            return Err(Error::Check(format!("baseline: transaction failed: {result:?}")));
        }
        gas.push(result.tx_gas_used());
    }
    Ok(())
}

/// Runs the setup blocks, then times the measured ones; returns seconds and gas per transaction.
pub fn run(workload: &Workload) -> Result<(f64, Vec<u64>)> {
    let mut db = CacheDB::new(EmptyDB::default());
    for sender in &workload.senders {
        db.insert_account_info(
            *sender,
            AccountInfo::from_balance(revm::primitives::U256::from(workload.endowment)),
        );
    }
    let mut ignored = Vec::new();
    for block in &workload.setup {
        execute(&mut db, block, &mut ignored)?;
    }
    let mut gas = Vec::new();
    let start = Instant::now();
    for block in &workload.measured {
        execute(&mut db, block, &mut gas)?;
    }
    Ok((start.elapsed().as_secs_f64(), gas))
}
