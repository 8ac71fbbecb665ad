//! Opening a store: the base (if a compaction wrote one), then the log after it, replayed
//! record by record into the index and the node table; and removing the files that a crash
//! left behind.

use hash_db::Hasher;
use hyperion_primitives::Hash;
use sp_core::{Blake2Hasher, H256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::meta::Meta;
use super::record::{self, Kind, Read};
use super::segment::{self, CacheBudget, Segment, BASE};
use super::table::Loc;
use super::{damaged, io_error, Inner};
use crate::trie::empty_root;
use crate::Result;

/// The folder of the base of block `version`.
pub(crate) fn base_dir(dir: &Path, version: u64) -> PathBuf {
    dir.join(format!("base-{version:020}"))
}

/// Opens the segments `meta` names and replays them into `inner`.
/// Segments get copies in memory while `budget` allows: the base's first (they hold most of
/// the state), then the log's from the newest.
pub(crate) fn replay(
    inner: &mut Inner,
    (dir, budget): (&Path, &Arc<CacheBudget>),
    meta: &Meta,
    retain: u64,
) -> Result<()> {
    let open = |dir: &Path, id: u32, copy_len: usize| -> Result<Arc<Segment>> {
        Segment::open(dir, id, meta.segment_bytes, Some(copy_len), budget)
            .map(Arc::new)
            .map_err(|e| damaged(&segment::segment_path(dir, id), e.to_string()))
    };
    let full = meta.segment_bytes as usize;
    let log_dir = dir.join("segments");
    inner.segments.log_start = meta.log_start;
    if let Some(base) = meta.base {
        let base_dir = base_dir(dir, base);
        for n in 1..=meta.base_segments {
            inner.segments.base.push(open(&base_dir, BASE | n, full)?);
        }
        let mut pending = Pending::default();
        for segment in inner.segments.base.clone() {
            scan(inner, &mut pending, &segment, None, |inner, block| inner.load_base(block, meta.log_start))?;
        }
        if inner.index.head().map(|(v, _)| v) != Some(base) {
            return Err(damaged(&base_dir, format!("the base does not end with block {base}")));
        }
    }
    for id in (meta.log_start..=meta.head_segment).rev() {
        let copy_len = if id == meta.head_segment { meta.head_offset as usize } else { full };
        inner.segments.log.push(open(&log_dir, id, copy_len)?);
    }
    inner.segments.log.reverse();
    let mut pending = Pending::default();
    for segment in inner.segments.log.clone() {
        let end = (segment.id == meta.head_segment).then_some(meta.head_offset as usize);
        scan(inner, &mut pending, &segment, end, |inner, block| {
            // The first log segment may begin with blocks that the base holds.
            if meta.base.is_some_and(|base| block.version <= base) {
                return Ok(());
            }
            inner.apply_block(block, (retain, None))
        })?;
    }
    let complete = pending.values.is_empty() && pending.nodes.is_empty();
    if !complete || inner.index.head() != Some((meta.version, meta.root)) {
        return Err(damaged(
            &log_dir,
            format!("the segments do not end with committed block {}", meta.version),
        ));
    }
    let root = H256(meta.root.0);
    let root_node = inner.nodes.get(&root, &inner.segments);
    if meta.root != empty_root() && root_node.is_none_or(|node| Blake2Hasher::hash(&node) != root) {
        return Err(damaged(dir, format!("the trie node of state root {} is missing or wrong", meta.root)));
    }
    Ok(())
}

/// One block's records as read back.
pub(crate) struct Block {
    pub version: u64,
    pub root: Hash,
    /// The log segment of its commit record.
    pub commit_segment: u32,
    pub values: Vec<(Vec<u8>, Option<Loc>)>,
    pub nodes: Vec<(H256, i32, Option<Loc>)>,
}

/// The records of a block whose commit record is not read yet.
#[derive(Default)]
struct Pending {
    values: Vec<(Vec<u8>, Option<Loc>)>,
    nodes: Vec<(H256, i32, Option<Loc>)>,
}

/// Reads the records of `segment` up to `end` (the committed head; `None`: to its end marker)
/// and hands each block to `apply` at its commit record. A block's records may span segments:
/// the part read so far is carried in `pending`.
fn scan(
    inner: &mut Inner,
    pending: &mut Pending,
    segment: &Arc<Segment>,
    end: Option<usize>,
    mut apply: impl FnMut(&mut Inner, Block) -> std::result::Result<(), String>,
) -> Result<()> {
    let bytes = segment.bytes();
    let limit = end.unwrap_or(bytes.len());
    let bad = |what: &str, offset: usize| damaged(&segment.path, format!("{what} at offset {offset}"));
    let mut offset = 0usize;
    while offset < limit {
        let r = match record::read(&bytes[offset..limit]) {
            Read::Record(r) => r,
            Read::End if end.is_none() => break,
            Read::End => return Err(bad("committed data ends early", offset)),
            Read::Invalid(why) => {
                return Err(bad(&format!("{why}; restore from a backup or resync"), offset))
            }
        };
        let loc = Loc { segment: segment.id, offset: offset as u32 };
        match r.kind {
            Kind::Put => pending.values.push((r.key.to_vec(), Some(loc))),
            Kind::Delete => pending.values.push((r.key.to_vec(), None)),
            Kind::Node => {
                let (delta, data) = record::node_value(r.value)
                    .filter(|_| r.key.len() == 32)
                    .ok_or_else(|| bad("bad trie node record", offset))?;
                pending.nodes.push((H256::from_slice(r.key), delta, (!data.is_empty()).then_some(loc)));
            }
            Kind::Commit => {
                let root = Hash::from_slice(r.value).ok_or_else(|| bad("bad commit record", offset))?;
                let block = Block {
                    version: r.version,
                    root,
                    commit_segment: segment.id,
                    values: std::mem::take(&mut pending.values),
                    nodes: std::mem::take(&mut pending.nodes),
                };
                apply(inner, block).map_err(|e| bad(&e, offset))?;
            }
        }
        offset += r.size;
    }
    Ok(())
}

/// Removes what a crash may leave: a base being written (`*.tmp`), bases and log segments that
/// the committed meta no longer names (a compaction that ended before removing them).
pub(crate) fn remove_leftovers(dir: &Path, meta: Option<&Meta>) -> Result<()> {
    let keep_base = meta.and_then(|m| m.base).map(|base| base_dir(dir, base));
    let entries = std::fs::read_dir(dir).map_err(|e| io_error(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| io_error(dir, e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with("base-") && Some(&path) != keep_base.as_ref() {
            std::fs::remove_dir_all(&path).map_err(|e| io_error(&path, e))?;
        }
    }
    let log_start = meta.map_or(1, |m| m.log_start);
    let segments_dir = dir.join("segments");
    let entries = std::fs::read_dir(&segments_dir).map_err(|e| io_error(&segments_dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| io_error(&segments_dir, e))?.path();
        let id = path.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse::<u32>().ok());
        if id.is_some_and(|id| id < log_start) && path.extension().is_some_and(|e| e == "seg") {
            std::fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
        }
    }
    Ok(())
}
