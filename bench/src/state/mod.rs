//! The `state` suite: MetisDB's reads and commits against `sp-trie` the way Substrate uses it.
//!
//! The same data goes into three stores (see [`workload`] for keys and values), one after the
//! other: each is driven alone through every step below and dropped before the next starts, the
//! data regenerated from the same seed, so a run needs the memory of its biggest store only:
//!
//! - **ours**: [`MetisDb`](hyperion_state::MetisDb) in a temporary folder, default settings
//!   (256 MiB segments, 256 retained versions); every commit is synced before it returns;
//! - **(a) `memory_trie`**: `sp-trie` over an in-memory `MemoryDB` with a [`SharedTrieCache`]
//!   big enough for everything, warmed before reads are measured: Substrate's best case;
//! - **(b) `paritydb_trie`**: `sp-trie` over `parity-db` (trie nodes by hash, no flat index: what
//!   a Substrate node keeps on disk) with a 64 MiB [`SharedTrieCache`]; each block's new nodes are
//!   one parity-db commit made durable before the next block (see `parity.rs`).
//!
//! Steps (sizes in [`Size`]): load every key in blocks of `load_block` changes; commit
//! [`HISTORY_BLOCKS`] blocks of `history_block` overwrites; then measure
//!
//! 1. read latency p50/p99 of random existing keys at the latest block (MetisDB:
//!    `snapshot(latest).get`; sp-trie: a `TrieDB` read through the cache), each store warmed
//!    by reading every key once; reads are timed [`READS_PER_SAMPLE`] at a time and each sample
//!    is their mean, so p99 is over 16-read means and smooths single-read outliers;
//!    then the same reads again with each sample's 16 keys in one request (MetisDB:
//!    `read_many`, one lock for the batch, so the memory accesses of independent keys overlap;
//!    sp-trie: one `TrieDB` for the batch), rows `read_latest_batch16_*`;
//! 2. the same at the block [`HISTORY_BLOCKS`] older (the last load block);
//! 3. updates/s for each of `update_block_sizes`: `update_blocks` blocks of that many overwrites
//!    of random keys, each block committed with its state root and durably; then again with
//!    parity-db in its normal background mode (not durable when `commit` returns) against a
//!    second run of ours on new blocks;
//! 4. the time to open each store again over the final state.
//!
//! Before the stores, the machine's own memory latency is measured and printed: the floor under
//! any read that has to touch an index and then a value.
//!
//! Correctness, so that the figures cannot measure nothing: the three stores' roots must be equal
//! at every block; sampled keys (and absent ones) must read back the expected value from every
//! store at both versions, and again after it reopens; every measured read must find
//! its key and the three stores must read identical values ([`Latency::digest`]).
//!
//! [`SharedTrieCache`]: sp_trie::cache::SharedTrieCache

mod measure;
mod parity;
mod run;
mod store;
mod trie;
pub mod workload;

use sp_core::H256;

use crate::{Error, Goal, Result, Row};
pub use measure::{quantile, read_latency, time_commits, Latency, ReadMode, READS_PER_SAMPLE};
pub use parity::{Mode, ParityNodes};
pub use run::run;
pub use store::{Metis, MetisReader, Reader, Store};
pub use trie::{Layout, MemoryNodes, Nodes, TrieReader, TrieStore};
pub use workload::{Dataset, Rng};

/// The suite's name in reports.
pub const SUITE: &str = "state";
/// Blocks between the latest version and the old one whose reads are measured.
pub const HISTORY_BLOCKS: u64 = 64;
/// Shared trie cache of baseline (a): this much per key holds every node and value.
const MEMORY_CACHE_BYTES_PER_KEY: usize = 4 << 10;
/// Baseline (a)'s cache at most: at 10M keys its `MemoryDB` alone (every version's nodes) takes
/// about half of a 24 GiB machine, and a cache of everything on top was killed for lack of
/// memory; past this size the cache holds what fits and the rest is read from the `MemoryDB`.
const MEMORY_CACHE_MAX_BYTES: usize = 4 << 30;
/// MetisDB's segment copies at most (the rest is read through the page cache): a full run's
/// log must fit in this machine's memory beside them.
const OURS_CACHE_MAX_BYTES: usize = 12 << 30;
/// Shared trie cache of baseline (b), a node's usual size.
const PARITY_CACHE_BYTES: usize = 64 << 20;
/// Versions MetisDB keeps readable (its default).
const RETAIN: u64 = 256;
/// Seed of all generated data.
const SEED: u64 = 0x6d65_7469_7364_6231;
/// The goals.
const READ_P50_GOAL_NS: f64 = 300.0;
const READ_VS_MEMORY_GOAL: f64 = 3.0;
const READ_VS_PARITY_GOAL: f64 = 20.0;
const UPDATE_VS_PARITY_GOAL: f64 = 2.0;

/// The sizes of one run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Size {
    /// Keys loaded.
    pub keys: u64,
    /// Changes per block while loading.
    pub load_block: u64,
    /// Overwrites in each of the [`HISTORY_BLOCKS`].
    pub history_block: u64,
    /// Reads measured per store and version (a multiple of [`READS_PER_SAMPLE`]).
    pub reads: u64,
    /// Blocks per update case.
    pub update_blocks: u64,
    /// Overwrites per block of each update case.
    pub update_block_sizes: [u64; 2],
    /// Keys whose values are compared with the expected ones per store and version.
    pub checked_keys: u64,
    /// Size of the region in which the machine's memory latency is measured: about the size
    /// of MetisDB's data in memory at this many keys, so that the figure shows the floor of a
    /// random read of that store (TLB misses included).
    pub probe_bytes: usize,
}

/// A full run: 10M keys.
pub const FULL: Size = Size {
    keys: 10_000_000,
    load_block: 1_000_000,
    history_block: 1_000,
    reads: 200_000,
    update_blocks: 20,
    update_block_sizes: [1_000, 10_000],
    checked_keys: 10_000,
    probe_bytes: 8 << 30,
};

/// `--quick`: 1M keys.
pub const QUICK: Size = Size { keys: 1_000_000, load_block: 100_000, probe_bytes: 1 << 30, ..FULL };

/// `--smoke`, for tests: 20k keys, everything small.
pub const SMOKE: Size = Size {
    keys: 20_000,
    load_block: 5_000,
    history_block: 50,
    reads: 4_096,
    update_blocks: 2,
    update_block_sizes: [1_000, 10_000],
    checked_keys: 500,
    probe_bytes: 4 << 20,
};

/// Read latencies at one version.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct ReadCase {
    /// `latest` or `old64`.
    pub version: &'static str,
    /// One call per key, or the keys of a sample in one call.
    pub mode: ReadMode,
    /// MetisDB.
    pub ours: Latency,
    /// Baseline (a).
    pub memory: Latency,
    /// Baseline (b).
    pub parity: Latency,
}

/// Commit throughput for one block size, updates/s.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct UpdateCase {
    /// Overwrites per block.
    pub per_block: u64,
    /// MetisDB.
    pub ours: f64,
    /// Baseline (a).
    pub memory: f64,
    /// Baseline (b), durable commits.
    pub parity: f64,
    /// MetisDB on the blocks of the background run.
    pub ours_second: f64,
    /// Baseline (b) in parity-db's background mode.
    pub parity_background: f64,
}

/// Everything one run measured.
#[derive(Clone, PartialEq, Debug)]
pub struct Outcome {
    /// The sizes.
    pub size: Size,
    /// Latest, then old version.
    pub reads: Vec<ReadCase>,
    /// One per update block size.
    pub updates: Vec<UpdateCase>,
    /// Time to open MetisDB over the final state, ms.
    pub open_ours_ms: f64,
    /// Time to open parity-db over the final state, ms.
    pub open_parity_ms: f64,
    /// The final root of MetisDB, (a) and (b).
    pub final_roots: [H256; 3],
}

impl Outcome {
    /// Fails unless the three stores read identical values, end at the same root, and every
    /// figure is a positive number.
    pub fn check(&self) -> Result<()> {
        for read in &self.reads {
            if read.ours.digest != read.memory.digest || read.ours.digest != read.parity.digest {
                return Err(Error::Check(format!("the stores read different values at {}", read.version)));
            }
        }
        let [ours, memory, parity] = self.final_roots;
        if ours != memory || ours != parity {
            return Err(Error::Check(format!("final roots differ: {ours:?}, {memory:?}, {parity:?}")));
        }
        let rows = self.rows();
        match rows.iter().find(|r| !(r.ours > 0.0 && r.baseline > 0.0 && r.ratio().is_finite())) {
            Some(row) => Err(Error::Check(format!("not a positive figure: {row:?}"))),
            None => Ok(()),
        }
    }

    /// The report rows, goals attached.
    pub fn rows(&self) -> Vec<Row> {
        let keys = self.size.keys;
        let mut rows = Vec::new();
        for read in &self.reads {
            let (ours, memory, parity) = (read.ours, read.memory, read.parity);
            for (percentile, ours, memory, parity) in [
                ("p50", ours.p50_ns, memory.p50_ns, parity.p50_ns),
                ("p99", ours.p99_ns, memory.p99_ns, parity.p99_ns),
            ] {
                let mode = match read.mode {
                    ReadMode::Single => "",
                    ReadMode::Batched => "_batch16",
                };
                let case = |vs: &str| format!("read_{}{mode}_{percentile}/keys={keys}/{vs}", read.version);
                let mut vs_memory = Row::latency(SUITE, case("vs_memory_trie"), memory, ours, "ns");
                let mut vs_parity = Row::latency(SUITE, case("vs_paritydb_trie"), parity, ours, "ns");
                if read.version == "latest" && percentile == "p50" {
                    vs_memory = vs_memory.with_goals(&[
                        Goal::OursAtMost(READ_P50_GOAL_NS),
                        Goal::RatioAtLeast(READ_VS_MEMORY_GOAL),
                    ]);
                    vs_parity = vs_parity.with_goals(&[Goal::RatioAtLeast(READ_VS_PARITY_GOAL)]);
                }
                rows.extend([vs_memory, vs_parity]);
            }
        }
        for update in &self.updates {
            let case = |vs: &str| format!("update_{}/keys={keys}/{vs}", update.per_block);
            let row = |vs: &str, baseline: f64, ours: f64| {
                Row::throughput(SUITE, case(vs), baseline, ours, "updates/s")
            };
            rows.push(row("vs_memory_trie", update.memory, update.ours));
            rows.push(
                row("vs_paritydb_trie", update.parity, update.ours)
                    .with_goals(&[Goal::RatioAtLeast(UPDATE_VS_PARITY_GOAL)]),
            );
            rows.push(row("vs_paritydb_trie_background", update.parity_background, update.ours_second));
        }
        let open = format!("open/keys={keys}/vs_paritydb_trie");
        rows.push(Row::latency(SUITE, open, self.open_parity_ms, self.open_ours_ms, "ms"));
        rows
    }
}
