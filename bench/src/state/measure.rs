//! Timing helpers: read latency percentiles and commit throughput.

use hyperion_state::ChangeSet;
use sp_core::H256;
use std::time::Instant;

use super::store::{Reader, Store};
use crate::{Error, Result};

/// Reads timed together: one `Instant` pair per batch keeps the clock's own cost (about 20 ns)
/// out of the figures; each batch gives one per-read sample (its time / this).
pub const READS_PER_SAMPLE: usize = 16;

/// Read latencies of one store, and a digest of everything it read.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Latency {
    /// Median per-read time, ns.
    pub p50_ns: f64,
    /// 99th percentile of the per-read times, ns.
    pub p99_ns: f64,
    /// Digest of the values read, in order: equal digests mean equal values.
    pub digest: u64,
}

/// Order-dependent digest of values (length and first 8 bytes of each; values are random, so
/// two different values differ there).
#[inline]
fn digest_value(digest: u64, value: &[u8]) -> u64 {
    let mut head = [0u8; 8];
    let n = value.len().min(8);
    head[..n].copy_from_slice(&value[..n]);
    (digest.rotate_left(7) ^ u64::from_le_bytes(head)).wrapping_mul(0x100_0000_01b3) ^ value.len() as u64
}

/// The `q`-quantile (0 to 1) of `sorted`, nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    assert!(!sorted.is_empty() && (0.0..=1.0).contains(&q), "quantile {q} of {} samples", sorted.len());
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// How a sample's reads are made.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReadMode {
    /// One `read` call per key.
    Single,
    /// The sample's keys in one `read_many` call.
    Batched,
}

/// Reads `keys[i]` for each `i` of `order` (a multiple of [`READS_PER_SAMPLE`]) through
/// `reader`; every key must exist.
pub fn read_latency<R: Reader>(
    reader: &mut R,
    keys: &[[u8; 32]],
    order: &[u32],
    mode: ReadMode,
) -> Result<Latency> {
    assert!(
        !order.is_empty() && order.len().is_multiple_of(READS_PER_SAMPLE),
        "{} reads are not whole samples",
        order.len()
    );
    let mut samples = Vec::with_capacity(order.len() / READS_PER_SAMPLE);
    let (mut digest, mut missing) = (0u64, 0usize);
    // The keys in read order, so that fetching the next key is not itself a cache miss.
    let ordered: Vec<[u8; 32]> = order.iter().map(|&index| keys[index as usize]).collect();
    for batch in ordered.chunks_exact(READS_PER_SAMPLE) {
        let start = Instant::now();
        match mode {
            ReadMode::Single => {
                for key in batch {
                    if !reader.read(key, &mut |value| digest = digest_value(digest, value))? {
                        missing += 1;
                    }
                }
            }
            ReadMode::Batched => {
                let found = reader.read_many(batch, &mut |value| digest = digest_value(digest, value))?;
                missing += batch.len() - found;
            }
        }
        samples.push(start.elapsed().as_nanos() as f64 / READS_PER_SAMPLE as f64);
    }
    if missing > 0 {
        return Err(Error::Check(format!("{missing} of {} existing keys read as absent", order.len())));
    }
    samples.sort_by(f64::total_cmp);
    Ok(Latency { p50_ns: quantile(&samples, 0.5), p99_ns: quantile(&samples, 0.99), digest })
}

/// The machine's memory latency: nanoseconds per load in a chain of `loads` dependent loads,
/// each from another cache line of a `bytes`-long region taken at random, in 2 MiB pages when
/// `huge_pages` (if the kernel grants them) or 4 KiB ones. A random read that has to touch two
/// places of memory one after the other (an index, then the value) cannot take less than twice
/// this, unless it overlaps with the next read. The larger the region, the more of its loads
/// also miss the TLB (and, in a virtual machine, the host's page tables): measure it at the
/// size of the store being read.
pub fn dependent_load_ns(bytes: usize, huge_pages: bool, loads: usize) -> Result<f64> {
    /// One slot per cache line: no load finds its line already fetched by another.
    const LINE: usize = 64;
    let lines = bytes / LINE;
    assert!(lines > 1 && lines <= u32::MAX as usize, "a probe of {bytes} bytes");
    let mut map = memmap2::MmapMut::map_anon(lines * LINE).map_err(|e| Error::Check(e.to_string()))?;
    let advice = if huge_pages { memmap2::Advice::HugePage } else { memmap2::Advice::NoHugePage };
    let _ = map.advise(advice);
    let mut order: Vec<u32> = (0..lines as u32).collect();
    let mut rng = super::Rng::new(0x6c61_7465_6e63_7921);
    // Sattolo's shuffle: one cycle through every line.
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64) as usize);
    }
    for (i, &line) in order.iter().enumerate() {
        let next = order[(i + 1) % order.len()] as u64;
        map[line as usize * LINE..line as usize * LINE + 8].copy_from_slice(&next.to_le_bytes());
    }
    drop(order);
    let mut at = 0usize;
    let start = Instant::now();
    for _ in 0..loads {
        at = u64::from_le_bytes(map[at * LINE..at * LINE + 8].try_into().expect("8 bytes")) as usize;
    }
    let ns = start.elapsed().as_nanos() as f64 / loads as f64;
    std::hint::black_box(at);
    Ok(ns)
}

/// Commits `blocks` as blocks `first`, `first + 1`, ... then [`Store::finish`]es; returns the
/// seconds this took and the roots.
pub fn time_commits<S: Store>(store: &mut S, first: u64, blocks: &[ChangeSet]) -> Result<(f64, Vec<H256>)> {
    let mut roots = Vec::with_capacity(blocks.len());
    let start = Instant::now();
    for (number, changes) in (first..).zip(blocks) {
        roots.push(store.commit(number, changes)?);
    }
    store.finish()?;
    Ok((start.elapsed().as_secs_f64(), roots))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&sorted, 0.5), 50.0);
        assert_eq!(quantile(&sorted, 0.99), 99.0);
        assert_eq!(quantile(&sorted, 1.0), 100.0);
        assert_eq!(quantile(&[5.0], 0.99), 5.0);
    }

    #[test]
    fn digest_depends_on_values_and_order() {
        let d = |values: &[&[u8]]| values.iter().fold(0, |d, v| digest_value(d, v));
        assert_eq!(d(&[b"abc", b"de"]), d(&[b"abc", b"de"]));
        assert_ne!(d(&[b"abc", b"de"]), d(&[b"de", b"abc"]));
        assert_ne!(d(&[b"abc"]), d(&[b"abd"]));
        assert_ne!(d(&[b"abc"]), d(&[b"abc\0"]));
    }
}
