//! The `staking` suite: the cost of an epoch transition (downtime judgement, Holders Mining
//! distribution, election of the next set) with many delegators, against the same transition
//! with few, in the same run.
//!
//! Each chain has [`SEQUENCERS_COUNT`] sequencers and `delegators` holders, each backing one
//! sequencer (at genesis), a block reward and an endowed Holders Mining pool, so that every
//! boundary pays out. The boundary blocks of several epochs are built (`build_block`, which runs
//! the transition in `on_initialize`) and committed; the median time is reported. Rewards go
//! through a reward-per-share accumulator, so the figure should not grow with the number of
//! delegators: the goal is at most twice the cost with 100 delegators. The suite checks that
//! every transition paid rewards (a holder's pending rewards grow).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyperion_primitives::{Address, Header, Pair, UNIT};
use hyperion_runtime::{holders_pool_account, InvalidTransaction, Runtime, TransactionSource};
use hyperion_state::{MemoryStateDb, StateDb};
use pallet_balances::Balances;
use pallet_staking::{NoEvidence, Staking, DELEGATIONS, EPOCH, SEQUENCERS};
use serde_json::json;

use crate::{median, Error, Goal, Result, Row};

/// The suite's name in reports.
pub const SUITE: &str = "staking";
/// Registered sequencers (the set elects 21 of them).
pub const SEQUENCERS_COUNT: u32 = 100;
/// Delegators of the baseline.
pub const BASELINE_DELEGATORS: u32 = 100;
/// Blocks per epoch.
const EPOCH_LENGTH: u64 = 4;
const BALANCES_INDEX: u8 = 1;
const STAKING_INDEX: u8 = 2;

struct NoSource;

impl TransactionSource for NoSource {
    fn next(&mut self) -> Option<(Arc<hyperion_primitives::Extrinsic>, usize)> {
        None
    }
    fn reject(&mut self, _hash: &hyperion_primitives::Hash, _reason: &InvalidTransaction) {}
}

fn account(kind: u8, index: u32) -> Address {
    let mut seed = [kind; 32];
    seed[..4].copy_from_slice(&index.to_le_bytes());
    Pair::from_seed(&seed).public().address()
}

fn key(index: u32) -> hyperion_primitives::Public {
    let mut seed = [1u8; 32];
    seed[..4].copy_from_slice(&index.to_le_bytes());
    Pair::from_seed(&seed).public()
}

/// A chain with `delegators` holders, and its state after genesis.
struct Chain {
    runtime: Runtime,
    state: MemoryStateDb,
    head: Header,
}

impl Chain {
    fn new(delegators: u32) -> Result<Self> {
        let balances = Arc::new(Balances::new(BALANCES_INDEX));
        let staking = Arc::new(Staking::new(STAKING_INDEX, balances.clone(), Arc::new(NoEvidence)));
        let runtime =
            Runtime::new(balances.clone(), vec![(BALANCES_INDEX, balances), (STAKING_INDEX, staking)])?;
        let mut endowed: Vec<_> =
            (0..SEQUENCERS_COUNT).map(|i| json!([account(1, i), (100_000 * UNIT).to_string()])).collect();
        endowed.extend((0..delegators).map(|i| json!([account(2, i), (1_000 * UNIT).to_string()])));
        endowed.push(json!([holders_pool_account(), (1_000_000 * UNIT).to_string()]));
        let sequencers: Vec<_> = (0..SEQUENCERS_COUNT)
            .map(|i| {
                json!({
                    "operator": account(1, i),
                    "consensusKey": key(i),
                    "selfBond": ((20_000 + u128::from(i)) * UNIT).to_string(),
                    "commission": 50_000_000,
                })
            })
            .collect();
        let delegations: Vec<_> = (0..delegators)
            .map(|i| {
                json!({
                    "holder": account(2, i),
                    "sequencer": account(1, i % SEQUENCERS_COUNT),
                    "amount": (100 * UNIT).to_string(),
                })
            })
            .collect();
        let mut genesis = runtime.default_genesis();
        genesis.insert("balances".into(), json!({ "balances": endowed }));
        genesis.insert(
            "staking".into(),
            json!({
                "config": { "epochLength": EPOCH_LENGTH, "blockReward": (10 * UNIT).to_string() },
                "sequencers": sequencers,
                "delegations": delegations,
            }),
        );
        let changes = runtime.genesis_changes(&genesis)?;
        let state = MemoryStateDb::new(4);
        let root = state.commit(0, &changes, None)?;
        let head = Runtime::genesis_header(root, 0);
        runtime.set_genesis_hash(head.hash());
        Ok(Self { runtime, state, head })
    }

    /// Builds and commits the next block; returns the time taken.
    fn block(&mut self) -> Result<Duration> {
        let started = Instant::now();
        let proposer = key(SEQUENCERS_COUNT - 1).address();
        let built = self.runtime.build_block(
            &self.state,
            &self.head,
            proposer,
            self.head.number + 1,
            &mut NoSource,
        )?;
        self.state.commit(built.block.header.number, &built.changes, Some(built.block.header.state_root))?;
        let elapsed = started.elapsed();
        self.head = built.block.header;
        Ok(elapsed)
    }

    /// Pending rewards of a holder of the most backed sequencer (always elected).
    fn pending(&self) -> Result<u128> {
        let mut reader = hyperion_runtime::QueryContext::new(self.state.snapshot(self.head.number)?);
        let epoch = EPOCH.get_or_default(&mut reader);
        let last = SEQUENCERS_COUNT - 1;
        let (holder, operator) = (account(2, last), account(1, last));
        let seq =
            SEQUENCERS.get(&mut reader, &operator).ok_or_else(|| Error::Check("no sequencer".into()))?;
        Ok(DELEGATIONS.get(&mut reader, &holder, &operator).map_or(0, |d| d.pending(&seq, epoch)))
    }
}

/// Times `repetitions` epoch transitions with `delegators` holders (milliseconds, median).
fn transition_ms(delegators: u32, repetitions: u32) -> Result<f64> {
    let mut chain = Chain::new(delegators)?;
    let mut times = Vec::new();
    // The first two boundaries make genesis stake earn; measured from the third on.
    for epoch in 1..=repetitions as u64 + 2 {
        while chain.head.number + 1 < epoch * EPOCH_LENGTH + 1 {
            chain.block()?;
        }
        let before = chain.pending()?;
        let elapsed = chain.block()?;
        if epoch > 2 {
            if chain.pending()? <= before {
                return Err(Error::Check(format!("epoch {epoch}'s transition paid the holder nothing")));
            }
            times.push(elapsed.as_secs_f64() * 1000.0);
        }
    }
    Ok(median(&times))
}

/// Runs the suite: `delegators` against [`BASELINE_DELEGATORS`].
pub fn run(delegators: u32, repetitions: u32) -> Result<Vec<Row>> {
    let baseline = transition_ms(BASELINE_DELEGATORS, repetitions)?;
    let ours = transition_ms(delegators, repetitions)?;
    Ok(vec![Row::latency(
        SUITE,
        format!(
            "epoch_transition/sequencers={SEQUENCERS_COUNT}/delegators={delegators}_vs_{BASELINE_DELEGATORS}"
        ),
        baseline,
        ours,
        "ms",
    )
    .with_goals(&[Goal::RatioAtLeast(0.5)])])
}
