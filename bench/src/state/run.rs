//! One run of the suite: the three stores driven block by block, and the checks that they agree.

use hyperion_state::ChangeSet;
use sp_core::H256;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::measure::{self, read_latency, time_commits, Latency, READS_PER_SAMPLE};
use super::parity::{Mode, ParityNodes};
use super::store::{Metis, Reader, Store};
use super::trie::{MemoryNodes, TrieStore};
use super::workload::{self, Dataset, Rng};
use super::{
    Outcome, ReadCase, Size, UpdateCase, HISTORY_BLOCKS, MEMORY_CACHE_BYTES_PER_KEY, PARITY_CACHE_BYTES,
    RETAIN, SEED,
};
use crate::{Error, Result};

/// Prints what the suite is doing to stderr (a full run takes a while).
/// Anonymous memory of this process in transparent huge pages, MiB (Linux).
fn huge_pages_mib() -> Option<u64> {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    let line = rollup.lines().find(|l| l.starts_with("AnonHugePages:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? >> 10)
}

fn progress(start: Instant, what: &str) {
    eprintln!("state: {:>7.1}s  {what}", start.elapsed().as_secs_f64());
}

/// Runs the suite at `size` in a temporary folder (under `TMPDIR`) and checks its outcome.
pub fn run(size: &Size) -> Result<Outcome> {
    assert!(size.reads > 0 && size.reads % READS_PER_SAMPLE as u64 == 0, "{size:?}");
    assert!(size.keys > 0 && size.load_block > 0 && size.update_blocks > 0, "{size:?}");
    let start = Instant::now();
    let dir = tempfile::Builder::new().prefix("hyperion-bench-state").tempdir()?;
    let mut data = Dataset::new(size.keys, SEED);
    let mut stores = Stores::open(dir.path(), size.keys)?;

    progress(start, &format!("loading {} keys into the three stores", size.keys));
    for first in (0..size.keys).step_by(size.load_block as usize) {
        stores.commit_all(&data.load_block(first..(first + size.load_block).min(size.keys)))?;
    }
    let old = stores.next - 1;
    let old_generations = data.generations().to_vec();
    for _ in 0..HISTORY_BLOCKS {
        stores.commit_all(&data.update_block(size.history_block))?;
    }
    let latest = stores.next - 1;
    stores.check_reads(latest, data.generations(), size.checked_keys)?;
    stores.check_reads(old, &old_generations, size.checked_keys)?;

    let floor = |huge| measure::dependent_load_ns(size.probe_bytes, huge, size.probe_bytes / 64);
    let (huge_ns, small_ns) = (floor(true)?, floor(false)?);
    progress(
        start,
        &format!(
            "this machine: a dependent random load in {} MiB takes {huge_ns:.0} ns in 2 MiB pages, \
             {small_ns:.0} ns in 4 KiB pages (a read touching index then value: at least twice that)",
            size.probe_bytes >> 20
        ),
    );
    let huge_mib = huge_pages_mib().map_or("unknown".into(), |mib| format!("{mib} MiB"));
    let copied_mib = stores.ours.stats().cache_bytes >> 20;
    progress(
        start,
        &format!("MetisDB has {copied_mib} MiB of segments in memory; huge pages in use: {huge_mib}"),
    );
    let mut reads = Vec::new();
    for (version, number) in [("latest", latest), ("old64", old)] {
        progress(start, &format!("measuring {} reads at block {number} ({version})", size.reads));
        let order = data.read_order(size.reads);
        reads.push(stores.read_case(version, number, &data, &order)?);
    }
    let mut durable = Vec::new();
    for per_block in size.update_block_sizes {
        progress(start, &format!("committing {} blocks of {per_block} updates", size.update_blocks));
        durable.push(stores.time_updates(&mut data, per_block, size.update_blocks)?);
    }
    progress(start, "again, with parity-db in its background mode");
    stores = stores.reopen_parity(Mode::Background)?;
    let mut updates = Vec::new();
    for (per_block, [ours, memory, parity]) in size.update_block_sizes.into_iter().zip(durable) {
        let [ours_second, _, parity_background] =
            stores.time_updates(&mut data, per_block, size.update_blocks)?;
        updates.push(UpdateCase { per_block, ours, memory, parity, ours_second, parity_background });
    }

    progress(start, "reopening MetisDB and parity-db");
    let (stores, open_ours_ms, open_parity_ms) = stores.reopen_timed(dir.path())?;
    stores.check_reads(stores.next - 1, data.generations(), size.checked_keys)?;
    let final_roots = stores.final_roots()?;
    progress(start, "done");
    let outcome = Outcome { size: *size, reads, updates, open_ours_ms, open_parity_ms, final_roots };
    outcome.check()?;
    Ok(outcome)
}

/// The three stores at the same block.
struct Stores {
    ours: Metis,
    memory: TrieStore<MemoryNodes>,
    parity: TrieStore<ParityNodes>,
    /// The next block number.
    next: u64,
}

fn metis_dir(dir: &Path) -> PathBuf {
    dir.join("metis")
}

fn parity_dir(dir: &Path) -> PathBuf {
    dir.join("paritydb")
}

impl Stores {
    fn open(dir: &Path, keys: u64) -> Result<Self> {
        let memory_cache = (keys as usize).saturating_mul(MEMORY_CACHE_BYTES_PER_KEY);
        Ok(Self {
            // The same memory budget as (a)'s cache, for MetisDB's copies of its segments.
            ours: Metis::open(&metis_dir(dir), RETAIN, memory_cache as u64)?,
            memory: TrieStore::new(MemoryNodes::default(), memory_cache),
            parity: TrieStore::new(ParityNodes::open(&parity_dir(dir), Mode::Durable)?, PARITY_CACHE_BYTES),
            next: 0,
        })
    }

    /// Commits `changes` to all three as the next block; fails unless their roots agree.
    fn commit_all(&mut self, changes: &ChangeSet) -> Result<()> {
        let number = self.next;
        let roots = [
            self.ours.commit(number, changes)?,
            self.memory.commit(number, changes)?,
            self.parity.commit(number, changes)?,
        ];
        same_roots(number, &roots.map(|r| vec![r]))?;
        self.next += 1;
        Ok(())
    }

    /// Every store reads the expected values of `count` random keys at `number`, whose key
    /// generations are `generations`, and nothing for keys that were never written.
    fn check_reads(&self, number: u64, generations: &[u32], count: u64) -> Result<()> {
        check_store("MetisDB", &self.ours, number, generations, count)?;
        check_store("sp-trie over memory", &self.memory, number, generations, count)?;
        check_store("sp-trie over parity-db", &self.parity, number, generations, count)
    }

    /// Warms each store for `number`, then times the reads of `order`.
    fn read_case(
        &self,
        version: &'static str,
        number: u64,
        data: &Dataset,
        order: &[u32],
    ) -> Result<ReadCase> {
        let keys = data.keys();
        Ok(ReadCase {
            version,
            ours: warm_and_read(&self.ours, number, keys, order)?,
            memory: warm_and_read(&self.memory, number, keys, order)?,
            parity: warm_and_read(&self.parity, number, keys, order)?,
        })
    }

    /// Commits `blocks` new blocks of `per_block` overwrites to each store in turn; returns the
    /// updates/s of ours, (a) and (b). Fails unless the roots agree after every block.
    fn time_updates(&mut self, data: &mut Dataset, per_block: u64, blocks: u64) -> Result<[f64; 3]> {
        let changes: Vec<ChangeSet> = (0..blocks).map(|_| data.update_block(per_block)).collect();
        let first = self.next;
        let (ours_s, ours) = time_commits(&mut self.ours, first, &changes)?;
        let (memory_s, memory) = time_commits(&mut self.memory, first, &changes)?;
        let (parity_s, parity) = time_commits(&mut self.parity, first, &changes)?;
        same_roots(first, &[ours, memory, parity])?;
        self.next += blocks;
        let updates = (per_block * blocks) as f64;
        Ok([ours_s, memory_s, parity_s].map(|s| updates / s.max(f64::MIN_POSITIVE)))
    }

    fn reopen_parity(self, mode: Mode) -> Result<Self> {
        let parity = self.parity.map_nodes(|nodes| {
            let path = nodes.close();
            ParityNodes::open(&path, mode)
        })?;
        Ok(Self { parity, ..self })
    }

    /// Closes MetisDB and parity-db and opens them again; returns the time each open took, ms.
    fn reopen_timed(self, dir: &Path) -> Result<(Self, f64, f64)> {
        let Self { ours, memory, parity, next } = self;
        let cache_bytes = ours.cache_bytes();
        drop(ours);
        let start = Instant::now();
        let ours = Metis::open(&metis_dir(dir), RETAIN, cache_bytes)?;
        let ours_ms = start.elapsed().as_secs_f64() * 1e3;
        let mut parity_ms = 0.0;
        let parity = parity.map_nodes(|nodes| {
            let path = nodes.close();
            let start = Instant::now();
            let nodes = ParityNodes::open(&path, Mode::Durable);
            parity_ms = start.elapsed().as_secs_f64() * 1e3;
            nodes
        })?;
        Ok((Self { ours, memory, parity, next }, ours_ms, parity_ms))
    }

    /// The latest roots of MetisDB (as it reports it), (a) and (b).
    fn final_roots(&self) -> Result<[H256; 3]> {
        let number = self.next - 1;
        let ours = match self.ours.latest() {
            Some((latest, root)) if latest == number => root,
            other => {
                return Err(Error::Check(format!("MetisDB reopened at {other:?}, expected block {number}")))
            }
        };
        Ok([ours, self.memory.root(number)?, self.parity.root(number)?])
    }
}

fn warm_and_read<S: Store>(store: &S, number: u64, keys: &[[u8; 32]], order: &[u32]) -> Result<Latency> {
    store.warm(number, keys)?;
    read_latency(&mut store.reader(number)?, keys, order)
}

/// Fails unless the three lists of roots from block `first` on are equal.
fn same_roots(first: u64, [ours, memory, parity]: &[Vec<H256>; 3]) -> Result<()> {
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

/// See [`Stores::check_reads`].
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
    fn stores_agree_and_a_wrong_value_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = Dataset::new(300, 7);
        let mut stores = Stores::open(dir.path(), data.len()).unwrap();
        stores.commit_all(&data.load_block(0..200)).unwrap();
        stores.commit_all(&data.load_block(200..300)).unwrap();
        let loaded = data.generations().to_vec();
        stores.commit_all(&data.update_block(100)).unwrap();
        stores.check_reads(2, data.generations(), 50).unwrap();
        stores.check_reads(1, &loaded, 50).unwrap();
        assert!(stores.check_reads(1, data.generations(), 50).is_err(), "block 1 has the older values");
        let order = data.read_order(64);
        let read = stores.read_case("latest", 2, &data, &order).unwrap();
        assert_eq!(read.ours.digest, read.memory.digest);
        assert_eq!(read.ours.digest, read.parity.digest);
        let older = stores.read_case("old", 1, &data, &order).unwrap();
        assert_ne!(older.ours.digest, read.ours.digest, "the digest sees the values");
    }
}
