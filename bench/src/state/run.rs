//! One run of the suite: each store driven alone through the same blocks (the data is
//! regenerated from the seed for each), then dropped before the next one starts, so that a full
//! run needs the memory of its biggest store rather than of all three; then the checks that they
//! agree.

use hyperion_state::ChangeSet;
use sp_core::H256;
use std::time::Instant;

use super::measure::{self, read_latency, time_commits, Latency, ReadMode, READS_PER_SAMPLE};
use super::parity::{Mode, ParityNodes};
use super::store::{Metis, Reader, Store};
use super::trie::{MemoryNodes, TrieStore};
use super::workload::{self, Dataset, Rng};
use super::{
    Outcome, ReadCase, Size, UpdateCase, HISTORY_BLOCKS, MEMORY_CACHE_BYTES_PER_KEY, MEMORY_CACHE_MAX_BYTES,
    OURS_CACHE_MAX_BYTES, PARITY_CACHE_BYTES, RETAIN, SEED,
};
use crate::{Error, Result};

/// Dependent loads timed to measure the machine's memory latency.
const PROBE_LOADS: usize = 1 << 20;

/// Anonymous memory of this process in transparent huge pages, MiB (Linux).
fn huge_pages_mib() -> Option<u64> {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    let line = rollup.lines().find(|l| l.starts_with("AnonHugePages:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? >> 10)
}

/// Prints what the suite is doing to stderr (a full run takes a while).
fn progress(start: Instant, what: &str) {
    eprintln!("state: {:>7.1}s  {what}", start.elapsed().as_secs_f64());
}

/// Runs the suite at `size` in a temporary folder (under `TMPDIR`) and checks its outcome.
pub fn run(size: &Size) -> Result<Outcome> {
    assert!(size.reads > 0 && size.reads.is_multiple_of(READS_PER_SAMPLE as u64), "{size:?}");
    assert!(size.keys > 0 && size.load_block > 0 && size.update_blocks > 0, "{size:?}");
    let start = Instant::now();
    let floor = |huge| measure::dependent_load_ns(size.probe_bytes, huge, PROBE_LOADS);
    let (huge_ns, small_ns) = (floor(true)?, floor(false)?);
    progress(
        start,
        &format!(
            "this machine: a dependent random load in {} MiB takes {huge_ns:.0} ns in 2 MiB pages, \
             {small_ns:.0} ns in 4 KiB pages (a read that touches an index, then a value, and waits for each: \
             twice that)",
            size.probe_bytes >> 20
        ),
    );
    let memory_cache = (size.keys as usize).saturating_mul(MEMORY_CACHE_BYTES_PER_KEY);

    let dir = crate::scratch_dir("hyperion-bench-state-")?;
    let path = dir.path().join("metis");
    // The same memory budget as (a)'s cache, for MetisDB's copies of its segments, up to what
    // the machine holds.
    let ours = Metis::open(&path, RETAIN, memory_cache.min(OURS_CACHE_MAX_BYTES) as u64)?;
    let ours = drive("MetisDB", ours, size, start)?;
    drop(dir);

    let memory = TrieStore::new(MemoryNodes::default(), memory_cache.min(MEMORY_CACHE_MAX_BYTES));
    let memory = drive("sp-trie over memory", memory, size, start)?;

    let dir = crate::scratch_dir("hyperion-bench-state-")?;
    let parity =
        TrieStore::new(ParityNodes::open(&dir.path().join("paritydb"), Mode::Durable)?, PARITY_CACHE_BYTES);
    let parity = drive("sp-trie over parity-db", parity, size, start)?;
    drop(dir);

    same_roots(0, &[ours.roots.clone(), memory.roots.clone(), parity.roots.clone()])?;
    let cases = [("latest", ReadMode::Single), ("latest", ReadMode::Batched), ("old64", ReadMode::Single)];
    let cases = cases.into_iter().chain([("old64", ReadMode::Batched)]);
    let reads = cases
        .enumerate()
        .map(|(i, (version, mode))| ReadCase {
            version,
            mode,
            ours: ours.reads[i],
            memory: memory.reads[i],
            parity: parity.reads[i],
        })
        .collect();
    let updates = size
        .update_block_sizes
        .into_iter()
        .enumerate()
        .map(|(i, per_block)| UpdateCase {
            per_block,
            ours: ours.durable[i],
            memory: memory.durable[i],
            parity: parity.durable[i],
            ours_second: ours.second[i],
            parity_background: parity.second[i],
        })
        .collect();
    let reopened = |name: &str, run: &StoreRun| {
        run.open_ms.ok_or_else(|| Error::Check(format!("{name} was not reopened")))
    };
    let outcome = Outcome {
        size: *size,
        reads,
        updates,
        open_ours_ms: reopened("MetisDB", &ours)?,
        open_parity_ms: reopened("parity-db", &parity)?,
        final_roots: [ours.final_root, memory.final_root, parity.final_root],
    };
    progress(start, "done");
    outcome.check()?;
    Ok(outcome)
}

/// What one store did in a run.
#[derive(Clone, Debug)]
struct StoreRun {
    /// The root of every block, from block 0.
    roots: Vec<H256>,
    /// Read latencies at the latest block (single reads, then batched), then at the old one.
    reads: [Latency; 4],
    /// Updates/s of the first series of each update block size.
    durable: Vec<f64>,
    /// Updates/s of the second series (parity-db in its background mode).
    second: Vec<f64>,
    /// Time to open it again over the final state, ms (`None`: nothing to reopen).
    open_ms: Option<f64>,
    /// The root it reports for the last block after reopening.
    final_root: H256,
}

/// A store as the run drives it: what differs between them.
trait Subject: Store + Sized {
    /// Called before the second series of updates (parity-db switches to its background mode).
    fn second_series(self) -> Result<Self> {
        Ok(self)
    }

    /// Closes the store and opens it again over the same files; returns it with the time the
    /// open took, ms, or `None` if it keeps nothing outside memory.
    fn reopen(self) -> Result<(Self, Option<f64>)> {
        Ok((self, None))
    }

    /// The root of the latest block, `number`, as the store reports it.
    fn latest_root(&self, number: u64) -> Result<H256>;

    /// Reports what it holds in memory before reads are measured.
    fn describe(&self) -> Option<String> {
        None
    }
}

impl Subject for Metis {
    fn reopen(self) -> Result<(Self, Option<f64>)> {
        let (path, retain, cache_bytes) = (self.path().to_path_buf(), RETAIN, self.cache_bytes());
        drop(self);
        let start = Instant::now();
        let ours = Metis::open(&path, retain, cache_bytes)?;
        Ok((ours, Some(start.elapsed().as_secs_f64() * 1e3)))
    }

    fn latest_root(&self, number: u64) -> Result<H256> {
        match self.latest() {
            Some((latest, root)) if latest == number => Ok(root),
            other => Err(Error::Check(format!("MetisDB reopened at {other:?}, expected block {number}"))),
        }
    }

    fn describe(&self) -> Option<String> {
        let huge = huge_pages_mib().map_or("unknown".into(), |mib| format!("{mib} MiB"));
        let copied = self.stats().cache_bytes >> 20;
        Some(format!("MetisDB has {copied} MiB of segments in memory; huge pages in use: {huge}"))
    }
}

impl Subject for TrieStore<MemoryNodes> {
    fn latest_root(&self, number: u64) -> Result<H256> {
        self.root(number)
    }
}

impl Subject for TrieStore<ParityNodes> {
    fn second_series(self) -> Result<Self> {
        self.map_nodes(|nodes| ParityNodes::open(&nodes.close(), Mode::Background))
    }

    fn reopen(self) -> Result<(Self, Option<f64>)> {
        let mut open_ms = 0.0;
        let store = self.map_nodes(|nodes| {
            let path = nodes.close();
            let start = Instant::now();
            let nodes = ParityNodes::open(&path, Mode::Durable);
            open_ms = start.elapsed().as_secs_f64() * 1e3;
            nodes
        })?;
        Ok((store, Some(open_ms)))
    }

    fn latest_root(&self, number: u64) -> Result<H256> {
        self.root(number)
    }
}

/// Drives `store` through the whole run: loads every key, commits the history blocks, checks
/// and measures reads at the latest and the old block, times the update series, and reopens it.
/// Every store sees the same blocks and reads: the data comes from the same seed.
fn drive<S: Subject>(name: &str, mut store: S, size: &Size, start: Instant) -> Result<StoreRun> {
    let mut data = Dataset::new(size.keys, SEED);
    let mut roots = Vec::new();
    progress(start, &format!("{name}: loading {} keys", size.keys));
    for first in (0..size.keys).step_by(size.load_block as usize) {
        let block = data.load_block(first..(first + size.load_block).min(size.keys));
        roots.push(store.commit(roots.len() as u64, &block)?);
    }
    let old = roots.len() as u64 - 1;
    let old_generations = data.generations().to_vec();
    for _ in 0..HISTORY_BLOCKS {
        let block = data.update_block(size.history_block);
        roots.push(store.commit(roots.len() as u64, &block)?);
    }
    let latest = roots.len() as u64 - 1;
    check_store(name, &store, latest, data.generations(), size.checked_keys)?;
    check_store(name, &store, old, &old_generations, size.checked_keys)?;
    if let Some(description) = store.describe() {
        progress(start, &description);
    }
    let mut reads = Vec::new();
    for (version, number) in [("latest", latest), ("old64", old)] {
        progress(start, &format!("{name}: measuring {} reads at block {number} ({version})", size.reads));
        let order = data.read_order(size.reads);
        store.warm(number, data.keys())?;
        for mode in [ReadMode::Single, ReadMode::Batched] {
            reads.push(read_latency(&mut store.reader(number)?, data.keys(), &order, mode)?);
        }
    }
    let mut durable = Vec::new();
    for per_block in size.update_block_sizes {
        progress(start, &format!("{name}: committing {} blocks of {per_block} updates", size.update_blocks));
        durable.push(time_updates(&mut store, &mut roots, &mut data, per_block, size.update_blocks)?);
    }
    store = store.second_series()?;
    let mut second = Vec::new();
    for per_block in size.update_block_sizes {
        second.push(time_updates(&mut store, &mut roots, &mut data, per_block, size.update_blocks)?);
    }
    progress(start, &format!("{name}: reopening"));
    let (store, open_ms) = store.reopen()?;
    let last = roots.len() as u64 - 1;
    check_store(name, &store, last, data.generations(), size.checked_keys)?;
    let final_root = store.latest_root(last)?;
    let reads: [Latency; 4] = reads.try_into().expect("two versions, two modes");
    progress(
        start,
        &format!(
            "{name}: reads p50/p99 latest {:.0}/{:.0} ns ({:.0}/{:.0} batched), old64 {:.0}/{:.0} ns \
             ({:.0}/{:.0} batched); updates/s {durable:.0?}, second series {second:.0?}; reopened in \
             {open_ms:.0?} ms",
            reads[0].p50_ns,
            reads[0].p99_ns,
            reads[1].p50_ns,
            reads[1].p99_ns,
            reads[2].p50_ns,
            reads[2].p99_ns,
            reads[3].p50_ns,
            reads[3].p99_ns
        ),
    );
    Ok(StoreRun { roots, reads, durable, second, open_ms, final_root })
}

/// Commits `blocks` new blocks of `per_block` overwrites; returns updates/s.
fn time_updates<S: Store>(
    store: &mut S,
    roots: &mut Vec<H256>,
    data: &mut Dataset,
    per_block: u64,
    blocks: u64,
) -> Result<f64> {
    let changes: Vec<ChangeSet> = (0..blocks).map(|_| data.update_block(per_block)).collect();
    let (seconds, new_roots) = time_commits(store, roots.len() as u64, &changes)?;
    roots.extend(new_roots);
    Ok((per_block * blocks) as f64 / seconds.max(f64::MIN_POSITIVE))
}

/// Fails unless the three lists of roots from block `first` on are equal.
fn same_roots(first: u64, [ours, memory, parity]: &[Vec<H256>; 3]) -> Result<()> {
    if ours.len() != memory.len() || ours.len() != parity.len() {
        return Err(Error::Check(format!(
            "the stores committed {}, {} and {} blocks",
            ours.len(),
            memory.len(),
            parity.len()
        )));
    }
    for (i, root) in ours.iter().enumerate() {
        if memory.get(i) != Some(root) || parity.get(i) != Some(root) {
            return Err(Error::Check(format!(
                "roots of block {} differ: MetisDB {root:?}, sp-trie over memory {:?}, over parity-db {:?}",
                first + i as u64,
                memory.get(i),
                parity.get(i),
            )));
        }
    }
    Ok(())
}

/// Fails unless `store` reads the expected values of `count` random keys at `number`, whose
/// key generations are `generations`, and nothing for keys that were never written.
fn check_store<S: Store>(name: &str, store: &S, number: u64, generations: &[u32], count: u64) -> Result<()> {
    let mut reader = store.reader(number)?;
    let mut rng = Rng::new(SEED ^ number);
    for _ in 0..count {
        let index = rng.below(generations.len() as u64) as u32;
        let expected = Dataset::expected(generations, index);
        if reader.get(&workload::key(u64::from(index)))?.as_deref() != Some(expected.as_slice()) {
            return Err(Error::Check(format!(
                "{name} reads a wrong value for key {index} at block {number}"
            )));
        }
        let absent = workload::key(generations.len() as u64 + u64::from(index));
        if let Some(value) = reader.get(&absent)? {
            return Err(Error::Check(format!("{name} reads {} bytes for an absent key", value.len())));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn different_roots_fail() {
        let (a, b) = (H256::repeat_byte(1), H256::repeat_byte(2));
        assert!(same_roots(0, &[vec![a, b], vec![a, b], vec![a, b]]).is_ok());
        assert!(same_roots(0, &[vec![a, b], vec![a, a], vec![a, b]]).is_err());
        assert!(same_roots(0, &[vec![a, b], vec![a, b], vec![a]]).is_err(), "a missing root");
    }

    #[test]
    fn a_wrong_value_is_caught() {
        let mut data = Dataset::new(300, 7);
        let mut store = TrieStore::new(MemoryNodes::default(), 1 << 20);
        store.commit(0, &data.load_block(0..200)).unwrap();
        store.commit(1, &data.load_block(200..300)).unwrap();
        let loaded = data.generations().to_vec();
        store.commit(2, &data.update_block(100)).unwrap();
        check_store("memory", &store, 2, data.generations(), 50).unwrap();
        check_store("memory", &store, 1, &loaded, 50).unwrap();
        assert!(check_store("memory", &store, 1, data.generations(), 50).is_err(), "block 1 is older");
    }

    #[test]
    fn every_store_sees_the_same_blocks_and_reads() {
        let size = Size {
            keys: 400,
            load_block: 150,
            history_block: 20,
            reads: 64,
            update_blocks: 2,
            update_block_sizes: [10, 30],
            checked_keys: 40,
            probe_bytes: 1 << 16,
        };
        let start = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let ours =
            drive("MetisDB", Metis::open(&dir.path().join("m"), RETAIN, 1 << 20).unwrap(), &size, start);
        let memory = drive("memory", TrieStore::new(MemoryNodes::default(), 1 << 20), &size, start);
        let (ours, memory) = (ours.unwrap(), memory.unwrap());
        assert_eq!(ours.roots, memory.roots);
        assert_eq!(ours.roots.len() as u64, 3 + HISTORY_BLOCKS + 2 * 2 * size.update_blocks);
        for i in 0..4 {
            assert_eq!(ours.reads[i].digest, memory.reads[i].digest, "read case {i}");
        }
        assert_eq!(ours.reads[0].digest, ours.reads[1].digest, "batched reads read the same");
        assert_ne!(ours.reads[0].digest, ours.reads[2].digest, "the digest sees the values");
        assert_eq!(ours.final_root, *memory.roots.last().unwrap());
        assert!(ours.open_ms.is_some() && memory.open_ms.is_none());
    }
}
