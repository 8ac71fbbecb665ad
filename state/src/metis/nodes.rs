//! MetisDB's trie nodes, kept in the segments as NODE records (see `record.rs`) and indexed in
//! memory by hash.
//!
//! A block's commit logs, for every trie node whose reference count it changes, the change, and
//! the node's encoding when the node is not stored yet (a new node, or one that comes back after
//! it was released). Counts follow `memory-db`'s: a node referenced from two places has two.
//! Replaying the NODE records in log order gives the counts back, so opening a store needs no
//! hashing and no rebuild of the trie.
//!
//! In memory: a [`KeyTable`] from hash to the record holding the node's encoding (16 bytes per
//! node, the hash itself stays in the record), the counts above one (rare: identical subtrees),
//! and the released nodes (count zero) that retained versions may still read, each with the
//! block that released it. A released node leaves the table once no readable version is older
//! than that block. Value nodes are not kept here: they are the store's values (see
//! [`NodeSource`](crate::trie::NodeSource)).

use sp_core::H256;
use sp_trie::DBValue;
use std::collections::VecDeque;

use super::record;
use super::segment::Segments;
use super::table::{KeyTable, Loc};
use crate::trie::NodeStore;

type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

/// One node's change in a block, as logged.
pub(crate) struct NodeChange {
    pub hash: H256,
    pub delta: i32,
    /// The encoding, when it must be stored.
    pub data: Option<DBValue>,
}

/// See the module docs.
#[derive(Default)]
pub(crate) struct TrieNodes {
    /// Hash to the record holding the encoding: live and released nodes.
    table: KeyTable,
    /// References beyond the first, for live nodes that have more than one.
    extra_refs: HashMap<H256, u32>,
    /// Released nodes still in `table`, with the block that released them.
    released: HashMap<H256, u64>,
    /// The nodes each block released, in block order.
    death_row: VecDeque<(u64, Vec<H256>)>,
}

impl TrieNodes {
    /// The node `hash`, live or released but still kept.
    pub fn get(&self, hash: &H256, segments: &Segments) -> Option<DBValue> {
        let loc = self.table.get(hash.as_bytes(), segments)?;
        let (_, data) = record::node_value(segments.key_value(loc).1).expect("a stored node's record");
        Some(data.to_vec())
    }

    /// The reference count of `hash` in the latest trie (0: not a node of it).
    fn refs(&self, hash: &H256, segments: &Segments) -> u32 {
        if self.released.contains_key(hash) || self.table.get(hash.as_bytes(), segments).is_none() {
            return 0;
        }
        1 + self.extra_refs.get(hash).copied().unwrap_or(0)
    }

    /// Whether `hash` is a node of the latest trie.
    pub fn is_live(&self, hash: &H256, segments: &Segments) -> bool {
        self.refs(hash, segments) > 0
    }

    /// What a block whose trie changes are `overlay` must log: every count change, with the
    /// encoding of each node that gains references and is not live.
    pub fn plan(&self, mut overlay: NodeStore, segments: &Segments) -> Vec<NodeChange> {
        let mut changes: Vec<NodeChange> = overlay
            .drain()
            .into_iter()
            // trie-db only releases nodes it read from the latest trie; anything else is not
            // a stored node (memory-db's negative counts for unknown keys), so nothing to log.
            .filter(|(hash, (_, delta))| *delta > 0 || (*delta < 0 && self.is_live(hash, segments)))
            .map(|(hash, (data, delta))| {
                let store = delta > 0 && !self.is_live(&hash, segments);
                NodeChange { hash, delta, data: store.then_some(data) }
            })
            .collect();
        // A fixed order, so that the log does not depend on hash-map iteration.
        changes.sort_unstable_by_key(|change| change.hash);
        changes
    }

    /// Applies block `number`'s logged changes: `(hash, delta, where the encoding was written)`.
    /// Fails (with what is wrong) when a change refers to a node that is not stored.
    pub fn apply(
        &mut self,
        number: u64,
        changes: impl IntoIterator<Item = (H256, i32, Option<Loc>)>,
        segments: &Segments,
    ) -> std::result::Result<(), String> {
        let mut buried = Vec::new();
        for (hash, delta, loc) in changes {
            let before = i64::from(self.refs(&hash, segments));
            match loc {
                Some(loc) => {
                    self.table.insert(hash.as_bytes(), loc, segments);
                }
                None if before == 0 => {
                    return Err(format!(
                        "block {number} changes the count of node {hash:?}, which is not stored"
                    ))
                }
                None => {}
            }
            let after = (before + i64::from(delta)).max(0);
            if after == 0 {
                self.extra_refs.remove(&hash);
                self.released.insert(hash, number);
                buried.push(hash);
            } else {
                self.released.remove(&hash);
                match after - 1 {
                    0 => self.extra_refs.remove(&hash),
                    extra => self.extra_refs.insert(hash, u32::try_from(extra).unwrap_or(u32::MAX)),
                };
            }
        }
        self.death_row.push_back((number, buried));
        Ok(())
    }

    /// Drops the released nodes that no version from `oldest` on needs.
    pub fn purge_released(&mut self, oldest: u64, segments: &Segments) {
        while self.death_row.front().is_some_and(|(released_at, _)| *released_at <= oldest) {
            let (released_at, hashes) = self.death_row.pop_front().expect("checked");
            for hash in hashes {
                if self.released.get(&hash) == Some(&released_at) {
                    self.released.remove(&hash);
                    self.table.remove(hash.as_bytes(), segments);
                }
            }
        }
    }

    /// Adds a node of a base with its reference count there.
    pub fn load(&mut self, hash: H256, count: u32, loc: Loc, segments: &Segments) {
        self.table.insert(hash.as_bytes(), loc, segments);
        if count > 1 {
            self.extra_refs.insert(hash, count - 1);
        }
    }

    /// Points every node whose record is `retired` to its record in the new base (`base`:
    /// sorted by hash). With `apply` false, only counts the nodes that have no copy there (a
    /// bug if any), changing nothing.
    pub fn remap(
        &mut self,
        base: &[(H256, Loc)],
        retired: impl Fn(Loc) -> bool,
        segments: &Segments,
        apply: bool,
    ) -> usize {
        let mut stranded = 0;
        self.table.remap(|loc| {
            if !retired(loc) {
                return None;
            }
            let hash = H256::from_slice(segments.key_value(loc).0);
            let to = base.binary_search_by(|(h, _)| h.cmp(&hash)).ok().map(|i| base[i].1);
            stranded += usize::from(to.is_none());
            to.filter(|_| apply)
        });
        stranded
    }

    /// Stored nodes, and how many of them are released ones.
    pub fn counts(&self) -> (usize, usize) {
        (self.table.len(), self.released.len())
    }
}
