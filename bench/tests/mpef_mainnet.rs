//! Real mainnet blocks through MPEF: each fixture block's transactions run on the parallel
//! executor over the Hyperion state holding its pre-state (see `hyperion_bench::mpef::mainnet`).
//! Repeated 10 times with 2 threads and twice with 4, every run must give the serial executor's
//! outcomes and state changes byte for byte, and the header's `gasUsed`, `logsBloom` and (from
//! Byzantium) `receiptsRoot`.

use hyperion_bench::mpef::mainnet::prepare;
use hyperion_executor::{execute_serial, Config, Executor};
use hyperion_vm::fixtures::block_dirs;

#[test]
fn mainnet_blocks_under_mpef_give_the_serial_result_and_the_headers() {
    let executors: Vec<(usize, usize, Executor)> = [(2, 10), (4, 2)]
        .into_iter()
        .map(|(threads, runs)| {
            (
                threads,
                runs,
                Executor::new(Config { force_parallel: true, ..Config::with_threads(threads) }).unwrap(),
            )
        })
        .collect();
    let mut failures = Vec::new();
    for dir in block_dirs() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let outcome = prepare(&dir).and_then(|prepared| {
            let serial = execute_serial(&prepared.base, &prepared.block);
            prepared.check(&serial.outputs)?;
            for (threads, runs, executor) in &executors {
                for run in 0..*runs {
                    let parallel = executor.execute(&prepared.base, &prepared.block);
                    if parallel.outputs != serial.outputs || parallel.changes != serial.changes {
                        return Err(format!("{threads} threads, run {run}: differs from serial execution"));
                    }
                }
            }
            Ok((prepared.block.txs.len(), prepared.fork))
        });
        match outcome {
            Ok((txs, fork)) => println!("block {name} ({fork:?}): {txs} transactions, MPEF matches"),
            Err(e) => failures.push(format!("block {name}: {e}")),
        }
    }
    for failure in &failures {
        println!("FAILED {failure}");
    }
    assert!(failures.is_empty(), "{} blocks failed", failures.len());
}
