//! MetisDB: the durable, multi-version state store.
//!
//! ```text
//! <dir>/meta                 two checksummed meta slots (see meta.rs)
//! <dir>/segments/NNNNNNNN.seg fixed-size segment files of records (see record.rs)
//! ```
//!
//! Values live in append-only segment files, written with ordinary positional writes and read
//! through read-only memory maps; the store grows by adding segments, never by resizing a mapped
//! file. An in-memory index maps each key to its latest value's location, with one diff layer
//! per retained block so that the last `retain` versions can be read. One writer commits block
//! by block; any number of readers hold pinned [`Snapshot`]s, and a pinned version is never
//! pruned under its reader.
//!
//! A commit appends the block's records (its puts and deletes, then a commit record carrying the
//! state root), syncs them, then writes and syncs a meta slot. After a crash or power cut the
//! store opens at the last block whose meta slot reached the disk: records after the committed
//! head are ignored and later overwritten. A record inside the committed range that fails its
//! checksum is damage, reported with its path and offset, never silently dropped.
//!
//! The state trie (the `sp-trie` `LayoutV1` commitment) lives in the same log: each block's
//! records include the trie nodes it adds and the reference counts it changes (see `nodes.rs`),
//! so nothing is rebuilt or rehashed on open. Values over 32 bytes, which the trie references
//! by hash, are read from the value records instead of being stored a second time.
//!
//! On open one scan of the segments rebuilds the index and the node table; the node of the
//! committed root must be there and hash to it.

mod compact;
mod index;
mod lock;
mod meta;
mod nodes;
mod open;
mod record;
mod segment;
mod table;
mod writer;

use hyperion_primitives::{BlockNumber, Hash};
use parking_lot::Mutex;
use sp_core::H256;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::trie::{apply_changes, empty_root, NodeDb, NodeSource, PreparedRoot};
use crate::{ChangeSet, Error, Result, Snapshot, StateDb, StateRead};
pub use compact::CompactStats;
use index::Index;
use lock::ReadMostly;
use meta::{Meta, MetaFile};
use nodes::TrieNodes;
use segment::{CacheBudget, Segments};

/// Largest segment size: record offsets are `u32`.
const MAX_SEGMENT_BYTES: u64 = 1 << 32;

/// Largest value accepted by a commit.
pub const MAX_VALUE_BYTES: usize = 16 << 20;

/// Counters and sizes of a [`MetisDb`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetisStats {
    /// Reads served by snapshots since the store was opened.
    pub reads: u64,
    /// Live keys in the latest version.
    pub keys: u64,
    /// Segment files.
    pub segments: u64,
    /// Bytes of the segment files up to the head (live and superseded records; compaction
    /// brings it down).
    pub data_bytes: u64,
    /// Trie nodes stored: live, and released ones that retained versions still read.
    pub trie_nodes: u64,
    /// Bytes of segments copied in memory (at most [`MetisConfig::cache_bytes`]).
    pub cache_bytes: u64,
}

/// MetisDB settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetisConfig {
    /// Size of each segment file (used when the store is created; an existing store keeps its
    /// own), from 4 KiB to 4 GiB. Must hold the largest record.
    pub segment_bytes: u64,
    /// How many recent versions stay readable (at least 1).
    pub retain: u64,
    /// Bytes of segments also kept in memory (huge pages), which then serve reads: the base
    /// first, then the newest log segments. `0`: every read goes through the file's map.
    pub cache_bytes: u64,
}

impl Default for MetisConfig {
    fn default() -> Self {
        Self { segment_bytes: 256 << 20, retain: 256, cache_bytes: 1 << 30 }
    }
}

struct Inner {
    index: Index,
    segments: Segments,
    nodes: TrieNodes,
    /// Where the committed data ends in the head segment.
    head_offset: u64,
}

struct Shared {
    /// Readers take no atomic read-modify-write (see `lock.rs`), so that back-to-back reads of
    /// the store overlap in the processor and reader threads do not share a cache line.
    inner: ReadMostly<Inner>,
    /// Pinned versions and how many snapshots pin each.
    pins: Mutex<BTreeMap<u64, usize>>,
}

struct Writer {
    meta: MetaFile,
    /// The committed meta, `None` before the first commit.
    last: Option<Meta>,
}

/// The durable state store. See the module docs.
pub struct MetisDb {
    dir: PathBuf,
    /// The last `compute_root`'s result.
    prepared: PreparedRoot,
    /// Size of every segment file.
    segment_bytes: u64,
    /// Memory for segment copies.
    budget: Arc<CacheBudget>,
    /// Held by the running compaction.
    compaction: Mutex<()>,
    shared: Arc<Shared>,
    writer: Mutex<Writer>,
    retain: u64,
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Io { path: path.to_path_buf(), message: e.to_string() }
}

fn damaged(path: &Path, message: impl Into<String>) -> Error {
    Error::Damaged { path: path.to_path_buf(), message: message.into() }
}

impl MetisDb {
    /// Opens the store in `dir`, creating it when empty.
    pub fn open(dir: &Path, config: MetisConfig) -> Result<Self> {
        let segments_dir = dir.join("segments");
        std::fs::create_dir_all(&segments_dir).map_err(|e| io_error(&segments_dir, e))?;
        let meta_file = MetaFile::open(dir).map_err(|e| io_error(dir, e))?;
        // The folders and the meta file must survive a power cut once a commit relies on them.
        for folder in [Some(segments_dir.as_path()), Some(dir), dir.parent()].into_iter().flatten() {
            let folder = if folder.as_os_str().is_empty() { Path::new(".") } else { folder };
            std::fs::File::open(folder).and_then(|f| f.sync_all()).map_err(|e| io_error(folder, e))?;
        }
        let last = meta_file.load().map_err(|e| damaged(&meta_file.path, e.to_string()))?;
        assert!(
            (4096..=MAX_SEGMENT_BYTES).contains(&config.segment_bytes),
            "MetisConfig::segment_bytes must be between 4096 and {MAX_SEGMENT_BYTES}"
        );
        let segment_bytes = last.map_or(config.segment_bytes, |m| m.segment_bytes);
        if !(4096..=MAX_SEGMENT_BYTES).contains(&segment_bytes) {
            return Err(damaged(
                &meta_file.path,
                format!("segment size {segment_bytes} is not between 4096 and {MAX_SEGMENT_BYTES}"),
            ));
        }
        let mut inner = Inner {
            index: Index::default(),
            segments: Segments::default(),
            nodes: TrieNodes::default(),
            head_offset: 0,
        };
        let budget = CacheBudget::new(config.cache_bytes);
        if let Some(meta) = last {
            open::replay(&mut inner, (dir, &budget), &meta, config.retain.max(1))?;
            inner.head_offset = meta.head_offset;
        }
        open::remove_leftovers(dir, last.as_ref())?;
        let shared = Arc::new(Shared { inner: ReadMostly::new(inner), pins: Mutex::new(BTreeMap::new()) });
        Ok(Self {
            dir: dir.to_path_buf(),
            prepared: PreparedRoot::default(),
            segment_bytes,
            budget,
            compaction: Mutex::new(()),
            shared,
            writer: Mutex::new(Writer { meta: meta_file, last }),
            retain: config.retain.max(1),
        })
    }

    /// The store's folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Number of live keys in the latest version.
    pub fn len(&self) -> usize {
        self.shared.inner.read().index.len()
    }

    /// Counters and sizes, for metrics.
    pub fn stats(&self) -> MetisStats {
        // Only the read lock: `commit` takes the writer's lock and then the write lock.
        let inner = self.shared.inner.read();
        // Segments counted as full but the head one (an upper bound: the last base segment is not).
        let files = (inner.segments.base.len() + inner.segments.log.len()) as u64;
        let head = files.saturating_sub(1) * self.segment_bytes + inner.head_offset;
        MetisStats {
            reads: self.shared.inner.reads(),
            keys: inner.index.len() as u64,
            segments: (inner.segments.base.len() + inner.segments.log.len()) as u64,
            data_bytes: head,
            trie_nodes: inner.nodes.counts().0 as u64,
            cache_bytes: self.budget.used(),
        }
    }

    /// Whether the latest version has no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    /// Applies a block (written, or read back): its value changes and node changes; then drops
    /// the versions past `retain` (but none that the oldest pinned snapshot needs) and the nodes
    /// only they used.
    fn apply_block(
        &mut self,
        block: open::Block,
        (retain, oldest_pinned): (u64, Option<u64>),
    ) -> std::result::Result<(), String> {
        let open::Block { version, root, commit_segment, values, nodes } = block;
        self.index.apply((version, root, commit_segment), values, &self.segments);
        self.index.prune(retain, oldest_pinned);
        self.nodes.apply(version, nodes, &self.segments)?;
        if let Some(oldest) = self.index.oldest() {
            self.nodes.purge_released(oldest, &self.segments);
        }
        Ok(())
    }

    /// Loads a base: the state of one block, its values and its nodes with their counts.
    fn load_base(&mut self, block: open::Block, log_start: u32) -> std::result::Result<(), String> {
        self.index.set_base(block.version, block.root, log_start);
        for (key, loc) in block.values {
            let loc = loc.ok_or("a base holds no deletions")?;
            self.index.load(&key, loc, &self.segments);
        }
        for (hash, count, loc) in block.nodes {
            let (Some(loc), Ok(count @ 1..)) = (loc, u32::try_from(count)) else {
                return Err(format!("base node {hash:?} has count {count} or no encoding"));
            };
            self.nodes.load(hash, count, loc, &self.segments);
        }
        Ok(())
    }
}

/// Keys [`StateRead::read_many`] serves under one hold of the store's lock.
const READS_PER_LOCK: usize = 256;

/// Reads of one version under a held lock.
struct Snap<'a> {
    inner: &'a Inner,
    version: u64,
}

impl Snap<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.value(key).map(<[u8]>::to_vec)
    }

    #[inline]
    fn value(&self, key: &[u8]) -> Option<&[u8]> {
        self.inner.index.value(key, self.version, &self.inner.segments)
    }

    fn all_pairs(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut keys: Vec<&[u8]> = self.inner.index.keys_with_prefix(prefix, &self.inner.segments).collect();
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter().filter_map(|k| self.get(k).map(|v| (k.to_vec(), v))).collect()
    }
}

impl NodeSource for Snap<'_> {
    fn node(&self, hash: &H256) -> Option<sp_trie::DBValue> {
        self.inner.nodes.get(hash, &self.inner.segments)
    }

    fn has_node(&self, hash: &H256) -> bool {
        self.inner.nodes.is_live(hash, &self.inner.segments)
    }

    fn value(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.get(key)
    }
}

/// A pinned version of a [`MetisDb`].
struct MetisSnapshot {
    shared: Arc<Shared>,
    version: u64,
}

impl StateRead for MetisSnapshot {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let inner = self.shared.inner.read();
        inner.count_reads(1);
        Snap { inner: &inner, version: self.version }.get(key)
    }

    #[inline]
    fn read(&self, key: &[u8], f: &mut dyn FnMut(Option<&[u8]>)) {
        let inner = self.shared.inner.read();
        inner.count_reads(1);
        f(Snap { inner: &inner, version: self.version }.value(key))
    }

    /// One lock per [`READS_PER_LOCK`] keys: a waiting commit is held up by at most that
    /// many reads.
    fn read_many(&self, keys: &[&[u8]], f: &mut dyn FnMut(usize, Option<&[u8]>)) {
        for (chunk, keys) in keys.chunks(READS_PER_LOCK).enumerate() {
            let inner = self.shared.inner.read();
            inner.count_reads(keys.len() as u64);
            inner.index.get_many(keys, self.version, &inner.segments, |i, value| {
                f(chunk * READS_PER_LOCK + i, value);
            });
        }
    }

    fn pairs(&self, prefix: &[u8], start_after: Option<&[u8]>, limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let inner = self.shared.inner.read();
        let all = Snap { inner: &inner, version: self.version }.all_pairs(prefix);
        all.into_iter()
            .filter(|(k, _)| start_after.is_none_or(|after| k.as_slice() > after))
            .take(limit)
            .collect()
    }
}

impl Drop for MetisSnapshot {
    fn drop(&mut self) {
        let mut pins = self.shared.pins.lock();
        let count = pins.get_mut(&self.version).expect("a snapshot's version is pinned");
        *count -= 1;
        if *count == 0 {
            pins.remove(&self.version);
        }
    }
}

impl StateDb for MetisDb {
    fn latest(&self) -> Option<(BlockNumber, Hash)> {
        self.shared.inner.read().index.head()
    }

    fn snapshot(&self, number: BlockNumber) -> Result<Snapshot> {
        let inner = self.shared.inner.read();
        if !inner.index.readable(number) {
            return Err(Error::UnknownVersion(number));
        }
        // Pinned while the read lock keeps the writer from pruning.
        *self.shared.pins.lock().entry(number).or_insert(0) += 1;
        Ok(Arc::new(MetisSnapshot { shared: self.shared.clone(), version: number }))
    }

    fn root(&self, number: BlockNumber) -> Result<Hash> {
        self.shared.inner.read().index.root(number).ok_or(Error::UnknownVersion(number))
    }

    /// Also keeps the trie changes, so that committing the same changes next (what a
    /// proposer and an importer do) does not compute them again.
    fn compute_root(&self, parent: BlockNumber, changes: &ChangeSet) -> Result<Hash> {
        let inner = self.shared.inner.read();
        match inner.index.head() {
            Some((latest, root)) if latest == parent => {
                let (root, overlay) = apply_changes(&Snap { inner: &inner, version: latest }, root, changes)?;
                self.prepared.keep(parent, changes, root, overlay);
                Ok(root)
            }
            _ => Err(Error::NotLatest(parent)),
        }
    }

    fn commit(&self, number: BlockNumber, changes: &ChangeSet, expected_root: Option<Hash>) -> Result<Hash> {
        let mut writer = self.writer.lock();
        let (expected_number, base_root) = match self.latest() {
            Some((latest, root)) => (latest + 1, root),
            None => (0, empty_root()),
        };
        if number != expected_number {
            return Err(Error::NotNext { expected: expected_number, got: number });
        }
        let (root, nodes, current) = {
            let inner = self.shared.inner.read();
            let parent = Snap { inner: &inner, version: expected_number.saturating_sub(1) };
            // Computed by `compute_root` on top of the same latest block: no commit since.
            let prepared = number.checked_sub(1).and_then(|parent| self.prepared.take(parent, changes));
            let (root, overlay) = match prepared {
                Some(prepared) => prepared,
                None => apply_changes(&parent, base_root, changes)?,
            };
            let current = writer.last.map(|last| inner.segments.get(last.head_segment).clone());
            (root, inner.nodes.plan(overlay, &inner.segments), current)
        };
        if let Some(expected) = expected_root.filter(|e| *e != root) {
            return Err(Error::RootMismatch { expected, computed: root });
        }
        let head = writer.last.map_or((0, 0), |m| (m.head_segment, m.head_offset));
        let out = writer::Appender::new(
            (self.dir.join("segments"), self.budget.clone()),
            self.segment_bytes,
            head,
            current,
        );
        let written = writer::write_block(out, number, (changes, &nodes, root))?;
        for segment in &written.touched {
            segment.sync().map_err(|e| io_error(&segment.path, e))?;
        }
        let meta = Meta {
            seq: writer.last.map_or(1, |m| m.seq + 1),
            version: number,
            root,
            head_segment: written.head.0,
            head_offset: written.head.1,
            segment_bytes: self.segment_bytes,
            log_start: writer.last.map_or(1, |m| m.log_start),
            base: writer.last.and_then(|m| m.base),
            base_segments: writer.last.map_or(0, |m| m.base_segments),
        };
        writer.meta.store(&meta).map_err(|e| io_error(&writer.meta.path, e))?;
        writer.last = Some(meta);
        let mut inner = self.shared.inner.write();
        // Read the pins under the write lock: `snapshot` pins under the read lock, so no pin of
        // a version about to be pruned can be in flight.
        let oldest_pinned = self.shared.pins.lock().keys().next().copied();
        if inner.segments.log.is_empty() {
            inner.segments.log_start = 1;
        }
        inner.segments.log.extend(written.created);
        inner.head_offset = written.head.1;
        inner
            .apply_block(
                open::Block {
                    version: number,
                    root,
                    commit_segment: written.head.0,
                    values: written.values,
                    nodes: written.nodes,
                },
                (self.retain, oldest_pinned),
            )
            .expect("a block's planned node changes apply");
        Ok(root)
    }

    fn prove(&self, number: BlockNumber, keys: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
        let inner = self.shared.inner.read();
        let root = inner.index.root(number).ok_or(Error::UnknownVersion(number))?;
        crate::proof::prove(&NodeDb(&Snap { inner: &inner, version: number }), root, keys)
    }
}

#[cfg(test)]
mod power_cut;
#[cfg(test)]
mod tests;
