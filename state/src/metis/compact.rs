//! Compaction: the log only grows (superseded values and released trie nodes stay in it), so
//! from time to time the state of the oldest readable block `B` is written as a **base**, and
//! the log segments that hold only blocks up to `B` are deleted.
//!
//! ```text
//! <dir>/base-<B>/NNNNNNNN.seg  records: PUT (every key of block B), NODE (every trie node of
//!                              B's root, with its reference count as the change), COMMIT (B)
//! ```
//!
//! 1. `B` is pinned (so its versions and nodes stay readable) and its keys, values and trie
//!    nodes (found by walking the trie from its root, which also counts each node's references)
//!    are written to `base-<B>.tmp/`, synced, and the folder renamed to `base-<B>/`. Commits
//!    and reads go on meanwhile: the read lock is taken for a few thousand keys at a time.
//! 2. Under the writer's lock, every index entry that points into a segment about to go is
//!    pointed at the base's copy, the meta slot is written naming the base and the first log
//!    segment kept, and the old base and log segments are deleted.
//!
//! A crash before the meta slot is written leaves the old meta in force (the new base is
//! removed on open); after it, the new one (leftover old segments are removed on open). Opening
//! loads the base, then replays the log from the block after `B`.

use hash_db::Hasher;
use sp_core::{Blake2Hasher, H256};
use sp_trie::NodeCodec;
use std::path::Path;
use std::sync::Arc;
use trie_db::node::{NodeHandlePlan, NodePlan};
use trie_db::NodeCodec as _;

use super::meta::Meta;
use super::open::base_dir;
use super::record::Kind;
use super::segment::{Segment, BASE};
use super::table::Loc;
use super::writer::Appender;
use super::{io_error, MetisDb, MetisSnapshot, Snap};
use crate::trie::NodeSource;
use crate::{Error, Result};

type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

/// The base's keys, sorted, with their records.
type BaseValues = [(Vec<u8>, Loc)];
/// The base's trie nodes, sorted by hash, with their records.
type BaseNodes = [(H256, Loc)];

/// Keys or nodes handled per read lock.
const CHUNK: usize = 4096;

/// What a compaction did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactStats {
    /// The block whose state the new base holds.
    pub base_version: u64,
    /// Keys in the base.
    pub keys: u64,
    /// Trie nodes in the base.
    pub trie_nodes: u64,
    /// Segment files deleted (log and old base).
    pub segments_removed: u64,
}

impl MetisDb {
    /// Whether [`compact`](Self::compact) would delete at least as many log segments as the
    /// base it writes is likely to take (the previous base's, at least two).
    pub fn should_compact(&self) -> bool {
        let inner = self.shared.inner.read();
        inner.index.oldest_commit().is_some_and(|(_, _, segment)| {
            let reclaimable = segment.saturating_sub(inner.segments.log_start) as usize;
            reclaimable >= inner.segments.base.len().max(2)
        })
    }

    /// Writes the state of the oldest readable block as the new base and deletes the segments
    /// it replaces (see the module docs). Runs alongside commits and reads (a compaction
    /// already running is waited for first); returns `None` when there is nothing to delete.
    pub fn compact(&self) -> Result<Option<CompactStats>> {
        let _running = self.compaction.lock();
        let (pin, root, log_start) = {
            let inner = self.shared.inner.read();
            let Some((version, root, segment)) = inner.index.oldest_commit() else { return Ok(None) };
            if segment <= inner.segments.log_start {
                return Ok(None);
            }
            // Pinned under the read lock, as `snapshot` does.
            *self.shared.pins.lock().entry(version).or_insert(0) += 1;
            let pin = MetisSnapshot { shared: self.shared.clone(), version };
            (pin, root, segment)
        };
        let version = pin.version;
        let final_dir = base_dir(&self.dir, version);
        let tmp = final_dir.with_extension("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| io_error(&tmp, e))?;
        }
        std::fs::create_dir_all(&tmp).map_err(|e| io_error(&tmp, e))?;
        let mut out = Appender::new((tmp.clone(), self.budget.clone()), self.segment_bytes, (BASE, 0), None);
        let values = self.write_values(version, &mut out)?;
        let nodes = self.write_nodes(version, H256(root.0), &mut out)?;
        out.push(Kind::Commit, version, &[], &root.0)?;
        let (created, _, touched) = out.finish()?;
        for segment in &touched {
            segment.sync().map_err(|e| io_error(&segment.path, e))?;
        }
        sync_dir(&tmp)?;
        if final_dir.exists() {
            // Left by a compaction of the same block that failed before its meta slot was
            // written: never the current base, which is older.
            std::fs::remove_dir_all(&final_dir).map_err(|e| io_error(&final_dir, e))?;
        }
        std::fs::rename(&tmp, &final_dir).map_err(|e| io_error(&final_dir, e))?;
        sync_dir(&self.dir)?;
        let removed = self.install(version, log_start, created, (&values, &nodes))?;
        drop(pin);
        Ok(Some(CompactStats {
            base_version: version,
            keys: values.len() as u64,
            trie_nodes: nodes.len() as u64,
            segments_removed: removed,
        }))
    }

    /// Writes every key's value at `version` (pinned); returns them sorted with their records.
    fn write_values(&self, version: u64, out: &mut Appender) -> Result<Vec<(Vec<u8>, Loc)>> {
        let keys = {
            let inner = self.shared.inner.read();
            inner.index.all_keys(&inner.segments)
        };
        let mut values = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(CHUNK) {
            let inner = self.shared.inner.read();
            let snap = Snap { inner: &inner, version };
            for key in chunk {
                if let Some(value) = snap.value(key) {
                    values.push((key.clone(), out.push(Kind::Put, version, key, value)?));
                }
            }
        }
        Ok(values)
    }

    /// Writes every trie node of `root` (at `version`, pinned) with its reference count: the
    /// number of places it has in the tree (a node inside a subtree that appears twice has two),
    /// which is how the log counts. Returns them sorted by hash, with their records.
    fn write_nodes(&self, version: u64, root: H256, out: &mut Appender) -> Result<Vec<(H256, Loc)>> {
        if root == H256(crate::empty_root().0) {
            return Ok(Vec::new());
        }
        // Every distinct node, with the number of references its parents make to it.
        let mut references: HashMap<H256, u32> = HashMap::default();
        references.insert(root, 0);
        let mut stack = vec![root];
        while !stack.is_empty() {
            let inner = self.shared.inner.read();
            let snap = Snap { inner: &inner, version };
            for _ in 0..CHUNK {
                let Some(hash) = stack.pop() else { break };
                let node = snap.node(&hash).ok_or_else(|| missing(hash))?;
                for_each_child(&node, &mut |child| {
                    let count = references.entry(child).or_insert(0);
                    *count += 1;
                    if *count == 1 {
                        stack.push(child);
                    }
                })?;
            }
        }
        // Parents before children: a node's count is final once every reference to it is
        // counted, and it passes that count on to each of its own references.
        let mut counts: HashMap<H256, u32> = HashMap::default();
        counts.insert(root, 1);
        let mut ready = vec![root];
        let mut nodes = Vec::with_capacity(references.len());
        while !ready.is_empty() {
            let inner = self.shared.inner.read();
            let snap = Snap { inner: &inner, version };
            for _ in 0..CHUNK {
                let Some(hash) = ready.pop() else { break };
                let node = snap.node(&hash).ok_or_else(|| missing(hash))?;
                debug_assert_eq!(Blake2Hasher::hash(&node), hash);
                let count = counts[&hash];
                let delta = i32::try_from(count).unwrap_or(i32::MAX);
                nodes.push((hash, out.push_node(version, &hash, delta, &node)?));
                for_each_child(&node, &mut |child| {
                    let total = counts.entry(child).or_insert(0);
                    *total = total.saturating_add(count);
                    let left = references.get_mut(&child).expect("found by the first walk");
                    *left -= 1;
                    if *left == 0 {
                        ready.push(child);
                    }
                })?;
            }
        }
        if nodes.len() != references.len() {
            return Err(Error::Corrupt(format!("the trie of block {version} is not a tree of hashes")));
        }
        nodes.sort_unstable_by_key(|(hash, _)| *hash);
        Ok(nodes)
    }

    /// Switches to the new base: checks that every index entry into a segment it replaces has
    /// a copy in it, commits the meta slot naming it, points the entries at the copies, and
    /// deletes what it replaces. Returns the number of segment files deleted.
    fn install(
        &self,
        version: u64,
        log_start: u32,
        created: Vec<Arc<Segment>>,
        (values, nodes): (&BaseValues, &BaseNodes),
    ) -> Result<u64> {
        // Commits wait from here on; only this compaction changes the index meanwhile.
        let mut writer = self.writer.lock();
        let last = writer.last.expect("a store with a readable block has a meta");
        let retired = |loc: Loc| loc.segment & BASE != 0 || loc.segment < log_start;
        {
            // A dry run: nothing changes.
            let mut inner = self.shared.inner.write();
            let inner = &mut *inner;
            let stranded = inner.index.remap(values, retired, &inner.segments, false)
                + inner.nodes.remap(nodes, retired, &inner.segments, false);
            if stranded > 0 {
                return Err(Error::Corrupt(format!(
                    "{stranded} entries have no copy in the base of block {version}"
                )));
            }
        }
        let meta = Meta {
            seq: last.seq + 1,
            log_start,
            base: Some(version),
            base_segments: created.len() as u32,
            ..last
        };
        writer.meta.store(&meta).map_err(|e| io_error(&writer.meta.path, e))?;
        writer.last = Some(meta);
        let (old_base, old_log) = {
            let mut inner = self.shared.inner.write();
            let inner = &mut *inner;
            inner.index.remap(values, retired, &inner.segments, true);
            inner.nodes.remap(nodes, retired, &inner.segments, true);
            let old_base = std::mem::replace(&mut inner.segments.base, created);
            let old_log: Vec<Arc<Segment>> =
                inner.segments.log.drain(..(log_start - inner.segments.log_start) as usize).collect();
            inner.segments.log_start = log_start;
            (old_base, old_log)
        };
        drop(writer);
        // Nothing points into these any more; a crash before they are all gone leaves files
        // that the next open removes.
        let removed = (old_base.len() + old_log.len()) as u64;
        for segment in old_log {
            std::fs::remove_file(&segment.path).map_err(|e| io_error(&segment.path, e))?;
        }
        if let Some(old) = last.base {
            let dir = base_dir(&self.dir, old);
            std::fs::remove_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        }
        Ok(removed)
    }
}

/// Calls `f` with the hash of every node that `node` references (not its value nodes).
fn for_each_child(node: &[u8], f: &mut impl FnMut(H256)) -> Result<()> {
    let plan = NodeCodec::<Blake2Hasher>::decode_plan(node).map_err(|e| Error::Corrupt(format!("{e:?}")))?;
    let children: Vec<&NodeHandlePlan> = match &plan {
        NodePlan::Branch { children, .. } | NodePlan::NibbledBranch { children, .. } => {
            children.iter().flatten().collect()
        }
        NodePlan::Extension { child, .. } => vec![child],
        NodePlan::Empty | NodePlan::Leaf { .. } => return Ok(()),
    };
    for child in children {
        match child {
            NodeHandlePlan::Hash(range) => f(H256::from_slice(&node[range.clone()])),
            NodeHandlePlan::Inline(range) => for_each_child(&node[range.clone()], f)?,
        }
    }
    Ok(())
}

fn missing(hash: H256) -> Error {
    Error::Corrupt(format!("trie node {hash:?} of a pinned version is missing"))
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_error(dir, e))
}
