//! `hyperion-bench`: Hyperion's comparative benchmarks, one subcommand per suite.
//!
//! ```text
//! hyperion-bench runtime              # full sizes, readable table
//! hyperion-bench --json --quick runtime   # small sizes, one JSON line per case
//! hyperion-bench --quick state            # 1M keys (full: 10M; --smoke: 20k)
//! hyperion-bench vm                       # Ethereum transfers and ERC20 calls per second
//! hyperion-bench node                     # a 4-validator network against one validator
//! hyperion-bench staking                  # an epoch transition, 10,000 delegators against 100
//! ```

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use hyperion_bench::{mpef, node, runtime, staking, state, table, vm, Row};

/// Comparative benchmarks: each case is measured against a baseline in the same run.
#[derive(Parser, Debug)]
#[command(name = "hyperion-bench", version)]
struct Cli {
    /// Print one JSON line per case
    /// (`{"suite","case","baseline","ours","ratio","unit"}`) instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Small sizes, for CI smoke runs.
    #[arg(long, global = true)]
    quick: bool,
    /// Repetitions of each case; the median is reported.
    #[arg(long, global = true, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    repetitions: u32,
    /// The suite to run.
    #[command(subcommand)]
    suite: Suite,
}

#[derive(Subcommand, Debug)]
enum Suite {
    /// Native transfers per second through build + execute + commit, against a minimal
    /// reference ledger (signature, nonce and balance checks, a trie root per block).
    Runtime,
    /// Ethereum transactions per second through block execution (value transfers, ERC20
    /// transfers), sequential, against revm alone over its in-memory database.
    Vm,
    /// Block execution with MPEF against serial execution, same blocks, same process:
    /// independent native, ERC20 and Ethereum transfers, all to one account, a dependency chain,
    /// Ethereum transfers from one sender and to one account, mainnet blocks.
    Mpef {
        /// Worker threads of the parallel side.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(2..=256))]
        threads: u16,
        /// Only the cases whose group is this: a kind of transaction (`native`, `erc20`, `eth`,
        /// `heavy`, `to-one`, `chain`, `eth-one-sender`, `eth-to-one`), `node` (build, import,
        /// commit) or `mainnet`.
        #[arg(long, value_parser = [
            "native", "erc20", "eth", "heavy", "to-one", "chain", "eth-one-sender", "eth-to-one", "node", "mainnet",
        ])]
        only: Option<String>,
    },
    /// A 4-validator network of `hyperion` processes on loopback against one validator alone:
    /// blocks decided per second and proposal-to-decision p50/p99 with empty blocks and under
    /// a steady transfer load, transfers included per second, and the catch-up of a validator
    /// 1,000 blocks behind (200 with `--quick`) against `import-blocks` of the same blocks.
    /// Runs once (`--repetitions` does not apply).
    Node {
        /// The `hyperion` binary (default: the one next to this program).
        #[arg(long, value_name = "PATH")]
        node_bin: Option<std::path::PathBuf>,
        /// Transfers offered per second during the load window.
        #[arg(long)]
        offered_tps: Option<u32>,
        /// `--execution-threads` of every node (default: the node's, one per core).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
        execution_threads: Option<u16>,
    },
    /// The epoch transition of the staking pallet (downtime, Holders Mining distribution,
    /// election) with 10,000 delegators (1,000 with `--quick`) against the same with 100.
    Staking {
        /// Delegators, overriding the mode's.
        #[arg(long, value_parser = clap::value_parser!(u32).range(100..=1_000_000))]
        delegators: Option<u32>,
    },
    /// State reads (latest and 64 blocks old, p50/p99) and durable commits with the state root
    /// (updates/s) of MetisDB, against sp-trie over memory with a warm SharedTrieCache and
    /// sp-trie over parity-db. Runs once (`--repetitions` does not apply).
    State {
        /// Tiny sizes (20k keys) for tests; overrides `--quick`.
        #[arg(long)]
        smoke: bool,
        /// Number of keys, overriding the mode's.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=u64::from(u32::MAX)))]
        keys: Option<u64>,
    },
}

/// jemalloc: execution threads free what others allocated, which glibc's malloc serialises.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut rows = Vec::new();
    match cli.suite {
        Suite::Runtime => {
            let cases: &[runtime::Case] = if cli.quick { &runtime::QUICK_CASES } else { &runtime::CASES };
            for case in cases {
                let outcome = runtime::run_case(case, cli.repetitions)
                    .and_then(|o| o.check().map(|()| o))
                    .with_context(|| format!("runtime suite, {case:?}"))?;
                emit(&outcome.rows(), cli.json, &mut rows);
            }
        }
        Suite::Vm => {
            let cases: &[vm::Case] = if cli.quick { &vm::QUICK_CASES } else { &vm::CASES };
            for case in cases {
                let outcome = vm::run_case(case, cli.repetitions)
                    .and_then(|o| o.check().map(|()| o))
                    .with_context(|| format!("vm suite, {case:?}"))?;
                emit(&outcome.rows(), cli.json, &mut rows);
            }
        }
        Suite::Mpef { threads, only } => {
            let wanted = |group: &str| only.as_deref().is_none_or(|only| only == group);
            let cases: &[mpef::Case] = if cli.quick { &mpef::QUICK_CASES } else { &mpef::CASES };
            for case in cases.iter().filter(|case| wanted(case.kind.name())) {
                let case_rows = mpef::run_case(case, usize::from(threads), cli.repetitions)
                    .with_context(|| format!("mpef suite, {case:?}"))?;
                emit(&case_rows, cli.json, &mut rows);
            }
            let node_cases: &[mpef::Case] =
                if cli.quick { &mpef::QUICK_NODE_CASES } else { &mpef::NODE_CASES };
            for case in node_cases.iter().filter(|_| wanted("node")) {
                let node_rows = mpef::run_node_case(case, usize::from(threads), cli.repetitions)
                    .with_context(|| format!("mpef suite, node path, {case:?}"))?;
                emit(&node_rows, cli.json, &mut rows);
            }
            if wanted("mainnet") {
                let mainnet = mpef::mainnet::run_cases(100, usize::from(threads), cli.repetitions.max(5))
                    .context("mpef suite, mainnet blocks")?;
                emit(&mainnet, cli.json, &mut rows);
            }
        }
        Suite::Node { node_bin, offered_tps, execution_threads } => {
            let node_bin = match node_bin {
                Some(path) => path,
                None => std::env::current_exe()?.with_file_name("hyperion"),
            };
            anyhow::ensure!(
                node_bin.exists(),
                "{} does not exist: build it (cargo build --release -p hyperion-node) or pass --node-bin",
                node_bin.display()
            );
            let mut size = if cli.quick { node::QUICK } else { node::FULL };
            size.offered_tps = offered_tps.unwrap_or(size.offered_tps);
            size.execution_threads = execution_threads;
            let node_rows = node::run(&node_bin, &size).context("node suite")?;
            emit(&node_rows, cli.json, &mut rows);
        }
        Suite::Staking { delegators } => {
            let delegators = delegators.unwrap_or(if cli.quick { 1_000 } else { 10_000 });
            let staking_rows = staking::run(delegators, cli.repetitions.max(5)).context("staking suite")?;
            emit(&staking_rows, cli.json, &mut rows);
        }
        Suite::State { smoke, keys } => {
            let mut size = match (smoke, cli.quick) {
                (true, _) => state::SMOKE,
                (false, true) => state::QUICK,
                (false, false) => state::FULL,
            };
            size.keys = keys.unwrap_or(size.keys);
            let outcome = state::run(&size).with_context(|| format!("state suite, {size:?}"))?;
            emit(&outcome.rows(), cli.json, &mut rows);
        }
    }
    if !cli.json {
        print!("{}", table(&rows));
    }
    Ok(())
}

/// Prints JSON rows as soon as a case is done; keeps table rows for the end.
fn emit(case_rows: &[Row], json: bool, rows: &mut Vec<Row>) {
    if json {
        for row in case_rows {
            println!("{}", row.to_json_line());
        }
    } else {
        rows.extend_from_slice(case_rows);
    }
}
