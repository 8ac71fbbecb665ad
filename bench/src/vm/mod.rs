//! The `vm` suite: Ethereum transactions per second through block execution, one after the
//! other: the figure the parallel executor (MPEF) has to beat.
//!
//! Two cases, each over `senders` funded accounts, blocks of `txs_per_block` signed EIP-1559
//! transactions (every sender sends once per block, to a random other account):
//!
//! - **transfer**: plain value transfers;
//! - **erc20**: `transfer` calls of the HyperionToken ERC20 (`tests/eth-clients/contracts`,
//!   compiled by solc), after a setup block deploys it and another gives every sender tokens.
//!
//! Measured, from the same genesis each repetition:
//!
//! - **ours**: `Runtime::execute_block` of the blocks (the validator's path: decoding, sender
//!   recovery, the EVM pallet's checks, MetisVM over the chain state, the fee split, events,
//!   the state root) and `StateDb::commit`, on the in-memory state;
//! - **baseline**: revm alone over its in-memory `CacheDB`, the same transactions decoded and
//!   their senders recovered, `transact_commit` one after the other, no state root: the floor of
//!   sequential EVM execution.
//!
//! Both must include every transaction successfully and charge exactly the same gas for each
//! (see [`Outcome::check`]). Figures are transactions per second over the median time.

mod baseline;
pub(crate) mod chain;

use crate::{median, Error, Result, Row};

/// The suite's name in reports.
pub const SUITE: &str = "vm";
/// The unit of its figures.
pub const UNIT: &str = "txs/s";

/// What the transactions do.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// Value transfers between accounts.
    Transfer,
    /// ERC20 `transfer` calls.
    Erc20,
}

/// The size of one case.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Case {
    /// What the transactions do.
    pub kind: Kind,
    /// Funded accounts, each sending once per block.
    pub senders: u32,
    /// Measured blocks.
    pub blocks: u32,
}

/// A full run.
pub const CASES: [Case; 2] = [
    Case { kind: Kind::Transfer, senders: 2_000, blocks: 5 },
    Case { kind: Kind::Erc20, senders: 2_000, blocks: 5 },
];
/// `--quick`.
pub const QUICK_CASES: [Case; 2] = [
    Case { kind: Kind::Transfer, senders: 200, blocks: 3 },
    Case { kind: Kind::Erc20, senders: 200, blocks: 3 },
];

/// What one case measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The case.
    pub case: Case,
    /// Ours, transactions per second.
    pub ours: f64,
    /// The baseline, transactions per second.
    pub baseline: f64,
    /// Gas of every measured transaction, ours.
    pub ours_gas: Vec<u64>,
    /// Gas of every measured transaction, the baseline.
    pub baseline_gas: Vec<u64>,
}

impl Outcome {
    /// Fails unless both sides ran every transaction and charged it the same gas.
    pub fn check(&self) -> Result<()> {
        let expected = (self.case.senders * self.case.blocks) as usize;
        if self.ours_gas.len() != expected || self.baseline_gas.len() != expected {
            return Err(Error::Check(format!(
                "{expected} transactions expected, ours ran {}, the baseline {}",
                self.ours_gas.len(),
                self.baseline_gas.len()
            )));
        }
        if let Some(i) = (0..expected).find(|i| self.ours_gas[*i] != self.baseline_gas[*i]) {
            return Err(Error::Check(format!(
                "transaction {i} used {} gas in ours, {} in the baseline",
                self.ours_gas[i], self.baseline_gas[i]
            )));
        }
        Ok(())
    }

    /// The report row.
    pub fn rows(&self) -> Vec<Row> {
        let name = match self.case.kind {
            Kind::Transfer => "transfer",
            Kind::Erc20 => "erc20",
        };
        let case = format!("{name}/senders={}/vs_revm_cachedb", self.case.senders);
        vec![Row::throughput(SUITE, case, self.baseline, self.ours, UNIT)]
    }
}

/// Runs `case` `repetitions` times on each side.
pub fn run_case(case: &Case, repetitions: u32) -> Result<Outcome> {
    let workload = chain::Workload::new(case)?;
    let (mut ours_times, mut baseline_times) = (Vec::new(), Vec::new());
    let (mut ours_gas, mut baseline_gas) = (Vec::new(), Vec::new());
    for _ in 0..repetitions.max(1) {
        let (seconds, gas) = workload.run_ours()?;
        ours_times.push(seconds);
        ours_gas = gas;
        let (seconds, gas) = baseline::run(&workload)?;
        baseline_times.push(seconds);
        baseline_gas = gas;
    }
    let txs = f64::from(case.senders * case.blocks);
    Ok(Outcome {
        case: *case,
        ours: txs / median(&ours_times).max(f64::MIN_POSITIVE),
        baseline: txs / median(&baseline_times).max(f64::MIN_POSITIVE),
        ours_gas,
        baseline_gas,
    })
}
