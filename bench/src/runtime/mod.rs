//! The `runtime` suite: native transfers per second through build + execute + commit.
//!
//! For each [`Case`] (endowed accounts, transfers per block, blocks) the suite pre-signs every
//! block of transfers between random endowed accounts (fixed seed), then, per repetition and
//! from a fresh genesis state each time, measures:
//!
//! - **propose**: `Runtime::build_block` from a transaction source, then `StateDb::commit`;
//! - **validate**: `Runtime::execute_block` of the proposed blocks, then `StateDb::commit`;
//! - **baseline**: the same transfers through a [`reference`] ledger (signature check, nonce and
//!   balance checks and updates in a `BTreeMap`, a trie root over the whole ledger per block).
//!
//! Each path must apply every transfer successfully, and the final nonces and balances of both
//! runtime paths must equal the baseline's (see [`CaseOutcome::check`]). Figures are transfers
//! per second over the median time of the repetitions; `ratio = ours / baseline`.

mod chain;
mod reference;
pub(crate) mod workload;

use hyperion_primitives::{Address, Balance, Nonce, Pair};
use hyperion_runtime::holders_pool_account;
use std::time::Duration;

use crate::{median, Error, Result, Row};
pub use chain::Chain;
pub use reference::ReferenceLedger;
pub use workload::{account_pair, sign_blocks, Tx, BALANCES_INDEX, ENDOWMENT};

/// The suite's name in reports.
pub const SUITE: &str = "runtime";
/// The unit of its figures.
pub const UNIT: &str = "transfers/s";

/// The size of one case.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Case {
    /// Endowed accounts that send and receive.
    pub accounts: u32,
    /// Transfers in each block.
    pub txs_per_block: u32,
    /// Blocks per repetition.
    pub blocks: u32,
}

impl Case {
    /// Transfers per repetition.
    pub fn transfers(&self) -> u64 {
        u64::from(self.txs_per_block) * u64::from(self.blocks)
    }
}

/// The cases of a full run: 10 000 transfers each.
pub const CASES: [Case; 2] = [
    Case { accounts: 1_000, txs_per_block: 1_000, blocks: 10 },
    Case { accounts: 10_000, txs_per_block: 2_000, blocks: 5 },
];

/// Small cases for smoke runs (`--quick`).
pub const QUICK_CASES: [Case; 1] = [Case { accounts: 64, txs_per_block: 32, blocks: 3 }];

/// Who proposes every block: an account nobody sends from.
pub fn proposer() -> Address {
    Address([0xb0; 20])
}

/// An account's nonce and free balance at the end of a run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AccountState {
    /// The account.
    pub address: Address,
    /// Its next nonce.
    pub nonce: Nonce,
    /// Its free balance.
    pub free: Balance,
}

/// What one case measured, and the final ledgers that show both sides did the same work.
#[derive(Clone, Debug)]
pub struct CaseOutcome {
    /// The case.
    pub case: Case,
    /// Baseline throughput, transfers/s.
    pub baseline_tps: f64,
    /// Proposer path throughput (build + commit), transfers/s.
    pub propose_tps: f64,
    /// Validator path throughput (execute + commit), transfers/s.
    pub validate_tps: f64,
    /// The watched accounts at genesis: every endowed one, the proposer, the Holders Mining pool.
    pub genesis_ledger: Vec<AccountState>,
    /// The same accounts after the baseline's last repetition.
    pub baseline_ledger: Vec<AccountState>,
    /// ... after the proposer path's last repetition.
    pub proposer_ledger: Vec<AccountState>,
    /// ... after the validator path's last repetition.
    pub validator_ledger: Vec<AccountState>,
}

impl CaseOutcome {
    /// Fails unless both runtime paths end with the baseline's ledger and the transfers moved
    /// funds, that is unless the figures compare equal work.
    pub fn check(&self) -> Result<()> {
        for (path, ledger) in [("proposer", &self.proposer_ledger), ("validator", &self.validator_ledger)] {
            if let Some((ours, theirs)) = ledger.iter().zip(&self.baseline_ledger).find(|(a, b)| a != b) {
                return Err(Error::Check(format!(
                    "the {path} path and the baseline disagree: {ours:?} vs {theirs:?}"
                )));
            }
            if ledger.len() != self.baseline_ledger.len() {
                return Err(Error::Check(format!("the {path} ledger has the wrong length")));
            }
        }
        let sent: u64 = self.baseline_ledger.iter().map(|a| a.nonce).sum();
        if sent != self.case.transfers() || self.baseline_ledger == self.genesis_ledger {
            return Err(Error::Check(format!(
                "{sent} of {} transfers reached the ledger",
                self.case.transfers()
            )));
        }
        Ok(())
    }

    /// The report rows: the proposer and the validator path, each against the baseline.
    pub fn rows(&self) -> Vec<Row> {
        let Case { accounts, txs_per_block, .. } = self.case;
        let row = |path: &str, ours: f64| {
            let case = format!("{path}/accounts={accounts}/txs_per_block={txs_per_block}");
            Row::throughput(SUITE, case, self.baseline_tps, ours, UNIT)
        };
        vec![row("propose", self.propose_tps), row("validate", self.validate_tps)]
    }
}

/// Runs `case` `repetitions` times (at least once) and returns the median figures and the final
/// ledgers. Setup (keys, signing, genesis states) is not timed. Errors if any path fails to apply
/// a transfer or block building is not deterministic; [`CaseOutcome::check`] compares the sides.
pub fn run_case(case: &Case, repetitions: u32) -> Result<CaseOutcome> {
    assert!(repetitions >= 1, "at least one repetition");
    assert!(case.accounts >= 2 && case.txs_per_block >= 1 && case.blocks >= 1, "{case:?}");
    let pairs: Vec<Pair> = (0..case.accounts).map(account_pair).collect();
    let endowed: Vec<Address> = pairs.iter().map(|p| p.public().address()).collect();
    let chain = Chain::new(&endowed, proposer())?;
    let fees = chain.fees()?;
    let blocks = sign_blocks(&pairs, &endowed, chain.genesis_hash(), case.blocks, case.txs_per_block);
    let new_reference = || ReferenceLedger::new(chain.genesis_hash(), fees, proposer(), &endowed, ENDOWMENT);

    let mut times: [Vec<f64>; 3] = Default::default();
    let mut last = None;
    let mut first_head = None;
    for _ in 0..repetitions {
        let (reference, baseline_time) = run_baseline(new_reference(), &blocks)?;
        let (built, proposer_state, propose_time) = chain.propose(&blocks)?;
        let (validator_state, validate_time) = chain.validate(&built)?;
        let head = built.last().map(|b| b.header.hash());
        if *first_head.get_or_insert(head) != head {
            return Err(Error::Check("block building is not deterministic".into()));
        }
        for (samples, time) in times.iter_mut().zip([baseline_time, propose_time, validate_time]) {
            samples.push(time.as_secs_f64());
        }
        last = Some((reference, proposer_state, validator_state));
    }
    let (reference, proposer_state, validator_state) = last.expect("at least one repetition");

    let mut watched = endowed.clone();
    watched.extend([proposer(), holders_pool_account()]);
    let tps = |samples: &[f64]| case.transfers() as f64 / median(samples).max(f64::MIN_POSITIVE);
    Ok(CaseOutcome {
        case: *case,
        baseline_tps: tps(&times[0]),
        propose_tps: tps(&times[1]),
        validate_tps: tps(&times[2]),
        genesis_ledger: new_reference().ledger(&watched),
        baseline_ledger: reference.ledger(&watched),
        proposer_ledger: chain.ledger(&proposer_state, &watched)?,
        validator_ledger: chain.ledger(&validator_state, &watched)?,
    })
}

/// The baseline's timed run over all blocks.
fn run_baseline(mut ledger: ReferenceLedger, blocks: &[Vec<Tx>]) -> Result<(ReferenceLedger, Duration)> {
    let mut roots = Vec::with_capacity(blocks.len());
    let start = std::time::Instant::now();
    for txs in blocks {
        roots.push(ledger.apply_block(txs)?);
    }
    let elapsed = start.elapsed();
    std::hint::black_box(roots);
    Ok((ledger, elapsed))
}
