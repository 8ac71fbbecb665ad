//! The `mpef` suite: block execution with MPEF on 2 threads against serial execution, in the
//! same process, over the same blocks, state in memory. Reported as `T_serial / T_parallel`;
//! for independent transactions also against the block's parts executed serially side by side
//! (see [`run_case`]).
//!
//! Cases (every block is built once by the serial proposer path, then imported by both sides):
//!
//! - **native**: independent balances transfers (each sender once per block, to an account of
//!   its own that sends nothing);
//! - **erc20**: independent ERC20 `transfer` calls of the HyperionToken contract, likewise;
//! - **eth**: independent Ethereum value transfers, likewise;
//! - **heavy**: independent heavy contract calls: 256 rounds of keccak256 over a word seeded by
//!   the caller, the result stored under the caller's own slot;
//! - **to-one**: native transfers that all pay one account (credits are deltas: no conflict);
//! - **eth-one-sender**: Ethereum value transfers all from one sender (an exchange's hot wallet
//!   paying out), each to an account of its own: they assume their sender's nonce and balance
//!   instead of reading it;
//! - **eth-to-one**: Ethereum value transfers from independent senders all to one account
//!   (deposits to one address): its credits are deltas;
//! - **chain**: a dependency chain: transaction `k` spends from the account transaction `k-1`
//!   paid, so each reads what the one before wrote;
//! - **mainnet**: every block of at least 100 transactions of the shared mainnet fixtures
//!   (`HYPERION_MAINNET_BLOCKS`), its transactions alone on the executor (see [`mainnet`]), with
//!   the geometric mean of the ratios.
//!
//! What is timed is `Runtime::execute_extrinsics`: the block hooks and the extrinsics on the
//! executor. The state root and the commit (the same work on both sides, MetisDB's) are done
//! untimed, and check that both sides computed the header's state and receipts.

pub mod mainnet;
mod transfer;

use hyperion_primitives::{Address, Block, Call, Extrinsic, Header, Pair, SignedExtrinsic, UNIT};
use hyperion_runtime::{ExecutedBlock, ExecutionStats, Executor, ExecutorConfig, Runtime};
use hyperion_state::{ordered_root, ChangeSet, MemoryStateDb, MetisConfig, MetisDb, StateDb};
use parity_scale_codec::Encode;
use serde_json::{json, Value};
use std::time::Instant;

use crate::vm::chain::{
    build_next, erc20_transfer, key, runtime, sign, token_creation, CHAIN_ID, GAS_LIMIT, TOKEN_SUPPLY,
};
use crate::{median, Error, Goal, Result, Row};

/// The suite's name in reports.
pub const SUITE: &str = "mpef";
/// The unit of its figures.
pub const UNIT_NAME: &str = "txs/s";

/// What the transactions do.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// Independent native transfers.
    Native,
    /// Independent ERC20 transfers.
    Erc20,
    /// Independent Ethereum value transfers.
    Eth,
    /// Independent heavy contract calls.
    Heavy,
    /// Native transfers all to one account.
    ToOne,
    /// Native transfers, each spending what the previous one paid.
    Chain,
    /// Ethereum value transfers all from one sender.
    EthOneSender,
    /// Ethereum value transfers all to one account.
    EthToOne,
}

impl Kind {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Native => "native",
            Kind::Erc20 => "erc20",
            Kind::Eth => "eth",
            Kind::Heavy => "heavy",
            Kind::ToOne => "to-one",
            Kind::Chain => "chain",
            Kind::EthOneSender => "eth-one-sender",
            Kind::EthToOne => "eth-to-one",
        }
    }

    /// Whether a block's transactions are independent of each other (none reads what another
    /// writes, but for the fees every transaction credits the proposer and the pools): cut into
    /// parts, each part is a valid block on the same parent state.
    fn independent(self) -> bool {
        matches!(self, Kind::Native | Kind::Erc20 | Kind::Eth | Kind::Heavy)
    }

    /// The goal for the ratio at 2 threads.
    fn goal(self) -> f64 {
        match self {
            Kind::Native | Kind::Eth => 1.6,
            Kind::Erc20 => 1.7,
            Kind::Heavy => 1.8,
            // The all-to-one goal, for both hot-account cases of Ethereum transfers.
            Kind::ToOne | Kind::EthOneSender | Kind::EthToOne => 1.2,
            Kind::Chain => 0.95,
        }
    }
}

/// One case.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Case {
    /// What the transactions do.
    pub kind: Kind,
    /// Transactions per block (and senders).
    pub txs: u32,
    /// Measured blocks.
    pub blocks: u32,
}

const fn case(kind: Kind, txs: u32, blocks: u32) -> Case {
    Case { kind, txs, blocks }
}

/// A full run.
pub const CASES: [Case; 8] = [
    case(Kind::Native, 1_000, 4),
    case(Kind::Erc20, 1_000, 4),
    case(Kind::Eth, 1_000, 4),
    case(Kind::Heavy, 1_000, 4),
    case(Kind::ToOne, 1_000, 4),
    case(Kind::Chain, 1_000, 4),
    case(Kind::EthOneSender, 1_000, 4),
    case(Kind::EthToOne, 1_000, 4),
];
/// `--quick`.
pub const QUICK_CASES: [Case; 8] = [
    case(Kind::Native, 200, 2),
    case(Kind::Erc20, 200, 2),
    case(Kind::Eth, 200, 2),
    case(Kind::Heavy, 200, 2),
    case(Kind::ToOne, 200, 2),
    case(Kind::Chain, 200, 2),
    case(Kind::EthOneSender, 200, 2),
    case(Kind::EthToOne, 200, 2),
];

/// The node path's cases (native and ERC20 transfers), full run.
pub const NODE_CASES: [Case; 2] = [case(Kind::Native, 1_000, 4), case(Kind::Erc20, 1_000, 4)];
/// ... and `--quick`.
pub const QUICK_NODE_CASES: [Case; 2] = [case(Kind::Native, 200, 2), case(Kind::Erc20, 200, 2)];

/// Where the heavy contract lives (set at genesis).
const HEAVY_AT: [u8; 20] = [0xee; 20];
/// `x = caller; 256 times x = keccak256(x); sstore(caller, x)`.
const HEAVY_CODE: &str = "610100336000525b6020600020600052600190038060075750600051335500";

fn native_key(seed: u32) -> Pair {
    let secret =
        sp_crypto_hashing::keccak_256(&[b"hyperion-bench/mpef/".as_slice(), &seed.to_le_bytes()].concat());
    Pair::from_seed(&secret)
}

fn transfer_call(dest: Address, value: u128) -> Call {
    let encoded = pallet_balances::Call::Transfer { dest, value }.encode();
    Call { pallet: 1, call: encoded[0], args: encoded[1..].to_vec() }
}

/// The blocks of a case, built once.
struct Workload {
    genesis: ChangeSet,
    genesis_header: Header,
    setup: Vec<Block>,
    measured: Vec<Block>,
}

impl Workload {
    fn new(case: &Case) -> Result<Self> {
        let builder = runtime()?;
        let n = case.txs;
        let natives: Vec<Pair> = (0..=n).map(native_key).collect();
        let eth_keys: Vec<_> = (0..n).map(key).collect();
        let eth_addresses: Vec<_> =
            eth_keys.iter().map(alloy_primitives::Address::from_private_key).collect();
        let endowment = (1_000 * UNIT).to_string();
        let mut endowed: Vec<Value> =
            natives.iter().map(|p| json!([p.public().address(), endowment])).collect();
        endowed.extend(eth_addresses.iter().map(|a| json!([a, endowment])));
        let mut genesis = builder.default_genesis();
        genesis.insert("balances".into(), json!({ "balances": endowed }));
        let heavy = alloy_primitives::Address::from(HEAVY_AT);
        let accounts = json!({ heavy.to_string(): { "code": format!("0x{HEAVY_CODE}") } });
        genesis.insert(
            "evm".into(),
            json!({ "chainId": CHAIN_ID, "fork": "Prague", "gasLimit": GAS_LIMIT, "accounts": accounts }),
        );
        let genesis = builder.genesis_changes(&genesis)?;
        let state = MemoryStateDb::new(4);
        let root = state.commit(0, &genesis, None)?;
        let genesis_header = Runtime::genesis_header(root, 0);
        builder.set_genesis_hash(genesis_header.hash());
        let genesis_hash = genesis_header.hash();

        let mut nonces = vec![0u64; eth_keys.len()];
        let mut setup_blocks: Vec<Vec<Extrinsic>> = Vec::new();
        let token = eth_addresses[0].create(0);
        if case.kind == Kind::Erc20 {
            let deploy = sign(&eth_keys[0], 0, None, 0, token_creation()?, 5_000_000);
            let share = TOKEN_SUPPLY / 2 / u128::from(n);
            let handouts = (1..n as usize).map(|i| {
                sign(&eth_keys[0], i as u64, Some(token), 0, erc20_transfer(eth_addresses[i], share), 100_000)
            });
            nonces[0] = u64::from(n);
            setup_blocks.push(vec![Extrinsic::Ethereum(deploy)]);
            setup_blocks.push(handouts.map(Extrinsic::Ethereum).collect());
        }
        // Each sender's own recipient, which never sends: the transfers are independent.
        let payee = |i: usize| {
            let digest =
                sp_crypto_hashing::keccak_256(&[b"payee".as_slice(), &(i as u64).to_le_bytes()].concat());
            Address(digest[12..].try_into().expect("20 bytes"))
        };
        let mut measured_blocks = Vec::new();
        for block in 0..case.blocks {
            let nonce = u64::from(block);
            let txs: Vec<Extrinsic> = (0..n as usize)
                .map(|i| {
                    let to = payee(i);
                    let eth_to = alloy_primitives::Address::from(to.0);
                    let native = |from: usize, to: Address| {
                        let call = transfer_call(to, UNIT / 1000);
                        Extrinsic::Native(SignedExtrinsic::sign(&natives[from], genesis_hash, nonce, 0, call))
                    };
                    match case.kind {
                        Kind::Native => native(i, to),
                        Kind::ToOne => native(i, natives[n as usize].public().address()),
                        Kind::Chain => native(i, natives[i + 1].public().address()),
                        Kind::Eth => {
                            let tx = sign(&eth_keys[i], nonces[i], Some(eth_to), 1_000, Vec::new(), 21_000);
                            nonces[i] += 1;
                            Extrinsic::Ethereum(tx)
                        }
                        Kind::EthOneSender => {
                            let tx = sign(&eth_keys[0], nonces[0], Some(eth_to), 1_000, Vec::new(), 21_000);
                            nonces[0] += 1;
                            Extrinsic::Ethereum(tx)
                        }
                        Kind::EthToOne => {
                            let one = alloy_primitives::Address::from(payee(0).0);
                            let tx = sign(&eth_keys[i], nonces[i], Some(one), 1_000, Vec::new(), 21_000);
                            nonces[i] += 1;
                            Extrinsic::Ethereum(tx)
                        }
                        Kind::Heavy => {
                            let tx = sign(&eth_keys[i], nonces[i], Some(heavy), 0, Vec::new(), 200_000);
                            nonces[i] += 1;
                            Extrinsic::Ethereum(tx)
                        }
                        Kind::Erc20 => {
                            let input = erc20_transfer(eth_to, 1_000);
                            let tx = sign(&eth_keys[i], nonces[i], Some(token), 0, input, 100_000);
                            nonces[i] += 1;
                            Extrinsic::Ethereum(tx)
                        }
                    }
                })
                .collect();
            measured_blocks.push(txs);
        }
        let mut head = genesis_header.clone();
        let mut build = |txs: Vec<Extrinsic>| -> Result<Block> {
            let built = build_next(&builder, &state, &head, txs)?;
            state.commit(built.block.header.number, &built.changes, Some(built.block.header.state_root))?;
            head = built.block.header.clone();
            Ok(built.block)
        };
        let setup = setup_blocks.into_iter().map(&mut build).collect::<Result<Vec<_>>>()?;
        let measured = measured_blocks.into_iter().map(&mut build).collect::<Result<Vec<_>>>()?;
        Ok(Self { genesis, genesis_header, setup, measured })
    }

    /// Imports every block; each measured block is executed by each side from the same parent
    /// state, one right after the other (in an order that rotates from block to block, so that
    /// every side meets the same machine), and the parallel side's result compared with the
    /// serial one. With `split`, a third side: the block's extrinsics cut into as many
    /// consecutive parts as the executor has threads, each part executed serially on one of
    /// those threads, all at once (see [`Times::split`]). The state root and the commit are done
    /// once, untimed, and check the header's state and receipts roots.
    fn run(&self, serial: &Runtime, parallel: &Runtime, split: bool) -> Result<Times> {
        let state = MemoryStateDb::new(4);
        state.commit(0, &self.genesis, Some(self.genesis_header.state_root))?;
        let mut head = self.genesis_header.clone();
        let mut times = Times::default();
        let executor = parallel.executor();
        let timed = |side: Side, head: &Header, block: &Block| -> Result<(f64, Option<ExecutedBlock>)> {
            // The parallel executor's work after its last block (emptying its memory) is done
            // first: it would otherwise share the cores with what is timed.
            executor.settle();
            match side {
                Side::Serial | Side::Parallel => {
                    let runtime = if side == Side::Serial { serial } else { parallel };
                    let start = Instant::now();
                    let executed = runtime.execute_extrinsics(&state, head, block)?;
                    Ok((start.elapsed().as_secs_f64(), Some(executed)))
                }
                Side::Split => {
                    let part = block.extrinsics.len().div_ceil(executor.config().threads).max(1);
                    let parts: Vec<Block> = block
                        .extrinsics
                        .chunks(part)
                        .map(|xts| Block {
                            header: block.header.clone(),
                            extrinsics: xts.to_vec(),
                            certificate: None,
                        })
                        .collect();
                    let start = Instant::now();
                    let executed = executor.on_each_worker(|worker| {
                        parts.get(worker).map(|part| serial.execute_extrinsics(&state, head, part))
                    });
                    let seconds = start.elapsed().as_secs_f64();
                    executed.into_iter().flatten().collect::<std::result::Result<Vec<_>, _>>()?;
                    Ok((seconds, None))
                }
            }
        };
        for block in &self.setup {
            let executed = serial.execute_extrinsics(&state, &head, block)?;
            state.commit(block.header.number, &executed.changes, Some(block.header.state_root))?;
            head = block.header.clone();
        }
        let sides: &[Side] = if split {
            &[Side::Serial, Side::Parallel, Side::Split]
        } else {
            &[Side::Serial, Side::Parallel]
        };
        for (i, block) in self.measured.iter().enumerate() {
            let (mut ours_serial, mut ours) = (None, None);
            for k in 0..sides.len() {
                let side = sides[(i + k) % sides.len()];
                let (seconds, executed) = timed(side, &head, block)?;
                match side {
                    Side::Serial => {
                        times.serial += seconds;
                        ours_serial = executed;
                    }
                    Side::Parallel => {
                        times.parallel += seconds;
                        ours = executed;
                    }
                    Side::Split => times.split += seconds,
                }
            }
            let (Some(ours_serial), Some(ours)) = (ours_serial, ours) else {
                unreachable!("both sides ran");
            };
            if ours.receipts != ours_serial.receipts || ours.changes != ours_serial.changes {
                return Err(Error::Check(format!(
                    "block {}: parallel and serial results differ",
                    block.header.number
                )));
            }
            let receipts_root = ordered_root(ours.receipts.iter().map(Encode::encode));
            if receipts_root != block.header.receipts_root {
                return Err(Error::Check(format!(
                    "block {}: receipts differ from the header's",
                    block.header.number
                )));
            }
            times.stats.mode = ours.stats.mode;
            times.stats.executions += ours.stats.executions;
            times.stats.validations += ours.stats.validations;
            times.stats.aborts += ours.stats.aborts;
            state.commit(block.header.number, &ours.changes, Some(block.header.state_root))?;
            head = block.header.clone();
        }
        Ok(times)
    }
}

/// Who executes a measured block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Serial,
    Parallel,
    Split,
}

/// The seconds each side took over a run's measured blocks, and the parallel side's statistics.
#[derive(Default)]
struct Times {
    serial: f64,
    parallel: f64,
    /// The block's parts executed serially side by side (zero when not measured): what two
    /// threads do with no coordination at all, when a block's transactions are known to be
    /// independent and already split. No executor does better on the same threads; how close
    /// MPEF comes shows its own cost apart from the machine's (on a shared virtual machine, two
    /// busy threads gain less some minutes than others).
    split: f64,
    stats: ExecutionStats,
}

/// The node's path for one executor, from genesis (with the setup blocks imported, untimed)
/// in a fresh MetisDB each: the proposer builds each measured block from its transactions and
/// commits it; a validator imports (executes and checks against the header) and commits the
/// blocks. Returns the seconds of each path; fails unless the proposer built exactly the
/// measured blocks.
fn node_path(workload: &Workload, runtime: &Runtime) -> Result<(f64, f64)> {
    let dir = tempfile::tempdir()?;
    let open = |name: &str| -> Result<MetisDb> {
        let state = MetisDb::open(&dir.path().join(name), MetisConfig::default())?;
        state.commit(0, &workload.genesis, Some(workload.genesis_header.state_root))?;
        for block in &workload.setup {
            let executed = runtime.execute_block(&state, &parent_of(workload, block), block)?;
            state.commit(block.header.number, &executed.changes, Some(block.header.state_root))?;
        }
        Ok(state)
    };
    let first_parent =
        workload.setup.last().map_or_else(|| workload.genesis_header.clone(), |b| b.header.clone());

    let proposer = open("proposer")?;
    let mut head = first_parent.clone();
    let start = Instant::now();
    for block in &workload.measured {
        let built = build_next(runtime, &proposer, &head, block.extrinsics.clone())?;
        proposer.commit(built.block.header.number, &built.changes, Some(built.block.header.state_root))?;
        if built.block.header != block.header {
            return Err(Error::Check(format!("the proposer built another block {}", block.header.number)));
        }
        head = built.block.header;
    }
    let propose = start.elapsed().as_secs_f64();

    let validator = open("validator")?;
    let mut parent = first_parent;
    let start = Instant::now();
    for block in &workload.measured {
        let executed = runtime.execute_block(&validator, &parent, block)?;
        validator.commit(block.header.number, &executed.changes, Some(block.header.state_root))?;
        parent = block.header.clone();
    }
    Ok((propose, start.elapsed().as_secs_f64()))
}

/// The header before `block`'s among the workload's blocks.
fn parent_of(workload: &Workload, block: &Block) -> Header {
    workload
        .setup
        .iter()
        .chain(&workload.measured)
        .find(|b| b.header.number + 1 == block.header.number)
        .map_or_else(|| workload.genesis_header.clone(), |b| b.header.clone())
}

/// The node's throughput through build, execute and commit (MetisDB), serial against MPEF on
/// `threads`, for the proposer and the validator path: `repetitions` runs of each side,
/// alternating, and the medians' ratio. Rows `node/<path>/<kind>/...`.
pub fn run_node_case(case: &Case, threads: usize, repetitions: u32) -> Result<Vec<Row>> {
    let workload = Workload::new(case)?;
    let serial = runtime()?;
    serial.set_genesis_hash(workload.genesis_header.hash());
    let executor = Executor::new(ExecutorConfig::with_threads(threads))
        .map_err(|e| Error::Check(format!("executor: {e}")))?;
    let parallel = runtime()?.with_executor(executor);
    parallel.set_genesis_hash(workload.genesis_header.hash());
    let mut times: [Vec<f64>; 4] = Default::default();
    for repetition in 0..repetitions.max(1) {
        let (s, p) = if repetition % 2 == 0 {
            let s = node_path(&workload, &serial)?;
            (s, node_path(&workload, &parallel)?)
        } else {
            let p = node_path(&workload, &parallel)?;
            (node_path(&workload, &serial)?, p)
        };
        for (samples, seconds) in times.iter_mut().zip([s.0, p.0, s.1, p.1]) {
            samples.push(seconds);
        }
    }
    let txs = f64::from(case.txs * case.blocks);
    let tps = |samples: &[f64]| txs / median(samples).max(f64::MIN_POSITIVE);
    let row = |path: &str, serial: &[f64], parallel: &[f64]| {
        let name = format!("node/{path}/{}/txs={}/threads={threads}/vs_serial", case.kind.name(), case.txs);
        Row::throughput(SUITE, name, tps(serial), tps(parallel), UNIT_NAME)
    };
    Ok(vec![row("propose", &times[0], &times[1]), row("import", &times[2], &times[3])])
}

/// Runs `case` `repetitions` times on each side, alternating; the medians' ratio (the row
/// `<kind>/.../vs_serial`, with the goal). For independent transactions (see
/// `Kind::independent`), two rows more from the same runs: the block's parts executed
/// serially side by side against serial execution (`split_vs_serial`: what the threads give
/// with no coordination), and MPEF against those parts (`vs_split`: how close it comes).
pub fn run_case(case: &Case, threads: usize, repetitions: u32) -> Result<Vec<Row>> {
    let workload = Workload::new(case)?;
    let serial = runtime()?;
    serial.set_genesis_hash(workload.genesis_header.hash());
    let executor = Executor::new(ExecutorConfig::with_threads(threads))
        .map_err(|e| Error::Check(format!("executor: {e}")))?;
    let parallel = runtime()?.with_executor(executor);
    parallel.set_genesis_hash(workload.genesis_header.hash());
    let split = case.kind.independent();
    let mut samples: [Vec<f64>; 3] = Default::default();
    let mut stats = ExecutionStats::default();
    for _ in 0..repetitions.max(1) {
        let times = workload.run(&serial, &parallel, split)?;
        for (samples, seconds) in samples.iter_mut().zip([times.serial, times.parallel, times.split]) {
            samples.push(seconds);
        }
        stats = times.stats;
    }
    eprintln!(
        "mpef {}: {:?}, {} executions, {} validations, {} aborts for {} transactions",
        case.kind.name(),
        stats.mode,
        stats.executions,
        stats.validations,
        stats.aborts,
        case.txs * case.blocks
    );
    let txs = f64::from(case.txs * case.blocks);
    let tps = |samples: &[f64]| txs / median(samples).max(f64::MIN_POSITIVE);
    let [serial_times, parallel_times, split_times] = &samples;
    let row = |what: &str, baseline: &[f64], ours: &[f64]| {
        let name = format!("{}/txs={}/threads={threads}/{what}", case.kind.name(), case.txs);
        Row::throughput(SUITE, name, tps(baseline), tps(ours), UNIT_NAME)
    };
    let mut rows =
        vec![row("vs_serial", serial_times, parallel_times)
            .with_goals(&[Goal::RatioAtLeast(case.kind.goal())])];
    if split {
        rows.push(row("split_vs_serial", serial_times, split_times));
        rows.push(row("vs_split", split_times, parallel_times));
    }
    Ok(rows)
}
