//! MetisDB's trie nodes: the nodes of the latest trie (reference counted, as `memory-db`
//! counts them), plus the nodes that retained versions still need after later blocks released
//! them. Value nodes are not kept here: they are the store's values (see
//! [`NodeSource`](crate::trie::NodeSource)).

use hash_db::EMPTY_PREFIX;
use sp_core::H256;
use sp_trie::DBValue;
use std::collections::{HashMap, VecDeque};

use crate::trie::NodeStore;

/// See the module docs.
#[derive(Default)]
pub(crate) struct TrieNodes {
    /// Nodes of the latest trie.
    live: NodeStore,
    /// Nodes that later blocks released, each with the block that released it.
    graveyard: HashMap<H256, (DBValue, u64)>,
    /// The nodes each block released, dropped once no readable version needs them.
    death_row: VecDeque<(u64, Vec<H256>)>,
}

impl TrieNodes {
    /// The node `hash`, live or still kept for a retained version.
    pub fn get(&self, hash: &H256) -> Option<DBValue> {
        match self.live.raw(hash, EMPTY_PREFIX) {
            Some((value, rc)) if rc > 0 => Some(value.clone()),
            _ => self.graveyard.get(hash).map(|(value, _)| value.clone()),
        }
    }

    /// Whether `hash` is a node of the latest trie.
    pub fn is_live(&self, hash: &H256) -> bool {
        matches!(self.live.raw(hash, EMPTY_PREFIX), Some((_, rc)) if rc > 0)
    }

    /// Live nodes and released ones still kept.
    #[cfg(test)]
    pub fn counts(&self) -> (usize, usize) {
        (self.live.keys().len(), self.graveyard.len())
    }

    /// Applies block `number`'s overlay (its new nodes and released ones).
    pub fn commit(&mut self, number: u64, overlay: NodeStore) {
        let released: Vec<H256> =
            overlay.keys().into_iter().filter(|(_, rc)| *rc < 0).map(|(k, _)| k).collect();
        self.live.consolidate(overlay);
        self.bury(number, released);
    }

    /// Moves the nodes that block `number` released (and that nothing references any more) from
    /// the live store to the graveyard.
    fn bury(&mut self, number: u64, released: Vec<H256>) {
        let mut buried = Vec::with_capacity(released.len());
        for key in released {
            let Some((value, rc)) = self.live.raw(&key, EMPTY_PREFIX) else { continue };
            if rc > 0 {
                continue;
            }
            let value = value.clone();
            // Drop just this entry (a full `purge` would walk every node of the trie): raise its
            // count to one, then remove it.
            for _ in rc..1 {
                hash_db::HashDB::emplace(&mut self.live, key, EMPTY_PREFIX, value.clone());
            }
            self.live.remove_and_purge(&key, EMPTY_PREFIX);
            if !value.is_empty() {
                self.graveyard.insert(key, (value, number));
                buried.push(key);
            }
        }
        self.death_row.push_back((number, buried));
    }

    /// Drops the released nodes that no version from `oldest` on needs.
    pub fn purge_released(&mut self, oldest: u64) {
        while self.death_row.front().is_some_and(|(released_at, _)| *released_at <= oldest) {
            let (released_at, keys) = self.death_row.pop_front().expect("checked");
            for key in keys {
                if self.graveyard.get(&key).is_some_and(|(_, at)| *at == released_at) {
                    self.graveyard.remove(&key);
                }
            }
        }
    }
}
