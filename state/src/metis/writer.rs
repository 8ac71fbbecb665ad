//! Writing one block's records at the head of the log, rolling to new segments as they fill.

use hyperion_primitives::Hash;
use sp_core::H256;
use std::path::PathBuf;
use std::sync::Arc;

use super::nodes::NodeChange;
use super::record::{self, Kind};
use super::segment::{self, CacheBudget, Segment};
use super::table::Loc;
use super::{io_error, MAX_VALUE_BYTES};
use crate::{ChangeSet, Error, Result};

/// What writing a block did.
pub(crate) struct Written {
    /// Each changed key with its value's record (`None`: deleted).
    pub values: Vec<(Vec<u8>, Option<Loc>)>,
    /// Each node count change, with the record of the node's encoding when it was written.
    pub nodes: Vec<(H256, i32, Option<Loc>)>,
    /// Segments created, in id order.
    pub created: Vec<Arc<Segment>>,
    /// Where the next block's records go: segment id and offset.
    pub head: (u32, u64),
    /// Segments written, to be synced.
    pub touched: Vec<Arc<Segment>>,
}

/// Writes block `number`: its value changes, its node changes, then its commit record with
/// `root`, starting at `head` of `current` (none for an empty store).
pub(crate) fn write_block(
    mut out: Appender,
    number: u64,
    (changes, nodes, root): (&ChangeSet, &[NodeChange], Hash),
) -> Result<Written> {
    let mut values = Vec::with_capacity(changes.len());
    for (key, value) in changes {
        let value_bytes = value.as_deref().unwrap_or(&[]);
        if value_bytes.len() > MAX_VALUE_BYTES || key.len() > record::MAX_KEY_BYTES {
            return Err(Error::TooLarge { key_bytes: key.len(), value_bytes: value_bytes.len() });
        }
        let kind = if value.is_some() { Kind::Put } else { Kind::Delete };
        let at = out.push(kind, number, key, value_bytes)?;
        values.push((key.clone(), value.as_ref().map(|_| at)));
    }
    let mut node_locs = Vec::with_capacity(nodes.len());
    for change in nodes {
        let data = change.data.as_deref().unwrap_or(&[]);
        let at = out.push_node(number, &change.hash, change.delta, data)?;
        node_locs.push((change.hash, change.delta, change.data.as_ref().map(|_| at)));
    }
    out.push(Kind::Commit, number, &[], &root.0)?;
    let (created, head, touched) = out.finish()?;
    Ok(Written { values, nodes: node_locs, created, head, touched })
}

/// Buffers records and writes them segment by segment (a block's at the head of the log, or a
/// base's).
pub(crate) struct Appender {
    dir: PathBuf,
    budget: Arc<CacheBudget>,
    segment_bytes: u64,
    /// Segment id and offset where the next record goes.
    head: (u32, u64),
    current: Option<Arc<Segment>>,
    buf: Vec<u8>,
    /// Offset in `current` where `buf` starts.
    buf_start: u64,
    created: Vec<Arc<Segment>>,
    touched: Vec<Arc<Segment>>,
}

/// Buffered bytes that trigger a write.
const FLUSH_BYTES: usize = 8 << 20;

impl Appender {
    /// Appends at `head` of `current`; with no current segment, the first record starts
    /// segment `head.0 + 1` in `dir`. New segments get a copy in memory while `budget` allows.
    pub fn new(
        (dir, budget): (PathBuf, Arc<CacheBudget>),
        segment_bytes: u64,
        head: (u32, u64),
        current: Option<Arc<Segment>>,
    ) -> Self {
        Self {
            dir,
            budget,
            segment_bytes,
            head,
            buf_start: head.1,
            current,
            buf: Vec::new(),
            created: Vec::new(),
            touched: Vec::new(),
        }
    }

    /// Appends a record; returns where it is.
    pub fn push(&mut self, kind: Kind, version: u64, key: &[u8], value: &[u8]) -> Result<Loc> {
        let at = self.reserve(record::encoded_size(key, value), key.len(), value.len())?;
        record::encode(&mut self.buf, kind, version, key, value);
        Ok(at)
    }

    /// Appends a NODE record; returns where it is.
    pub fn push_node(&mut self, version: u64, hash: &H256, delta: i32, data: &[u8]) -> Result<Loc> {
        let at = self.reserve(record::encoded_size(hash.as_bytes(), data) + 4, 32, data.len())?;
        record::encode_node(&mut self.buf, version, &hash.0, delta, data);
        Ok(at)
    }

    /// Writes what is buffered; returns the segments created, the new head and the segments
    /// written (each once), which the caller syncs.
    #[allow(clippy::type_complexity)]
    pub fn finish(mut self) -> Result<(Vec<Arc<Segment>>, (u32, u64), Vec<Arc<Segment>>)> {
        self.flush()?;
        Ok((self.created, self.head, self.touched))
    }

    /// Makes room for a record of `size` bytes (starting a new segment when the current one
    /// cannot hold it) and returns where it goes; the caller then appends it to `buf`.
    fn reserve(&mut self, size: usize, key_bytes: usize, value_bytes: usize) -> Result<Loc> {
        let (size, segment_bytes) = (size as u64, self.segment_bytes);
        // Keep room for an end marker after the last record of every segment.
        let fits = |offset: u64| offset + size + record::FRAME_BYTES as u64 <= segment_bytes;
        if !fits(0) {
            return Err(Error::TooLarge { key_bytes, value_bytes });
        }
        if self.current.is_none() || !fits(self.head.1) {
            self.roll()?;
        } else if self.buf.len() >= FLUSH_BYTES {
            self.flush()?;
        }
        let at = Loc { segment: self.head.0, offset: self.head.1 as u32 };
        self.head.1 += size;
        Ok(at)
    }

    /// Writes the buffer to the current segment.
    fn flush(&mut self) -> Result<()> {
        if let Some(segment) = &self.current {
            if !self.buf.is_empty() {
                segment.write_at(self.buf_start, &self.buf).map_err(|e| io_error(&segment.path, e))?;
                if !self.touched.last().is_some_and(|t| Arc::ptr_eq(t, segment)) {
                    self.touched.push(segment.clone());
                }
            }
        }
        self.buf.clear();
        self.buf_start = self.head.1;
        Ok(())
    }

    /// Ends the current segment with a marker and starts the next one.
    fn roll(&mut self) -> Result<()> {
        if self.current.is_some() {
            self.buf.extend_from_slice(&[0u8; record::FRAME_BYTES]);
        }
        self.flush()?;
        let id = self.head.0 + 1;
        let segment = Arc::new(
            Segment::create(&self.dir, id, self.segment_bytes, &self.budget)
                .map_err(|e| io_error(&segment::segment_path(&self.dir, id), e))?,
        );
        self.created.push(segment.clone());
        self.current = Some(segment);
        self.head = (id, 0);
        self.buf_start = 0;
        Ok(())
    }
}
