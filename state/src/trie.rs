//! `sp-trie` (`LayoutV1`, Blake2-256) roots, and an overlay node store that lets a root be
//! computed on top of the latest state without changing it.

use hash_db::{AsHashDB, HashDB, Prefix};
use hyperion_primitives::Hash;
use sp_core::{Blake2Hasher, H256};
use sp_trie::{DBValue, LayoutV1, MemoryDB, TrieConfiguration};

use crate::{ChangeSet, Error, Result};

/// The trie layout of all Hyperion commitments.
pub(crate) type Layout = LayoutV1<Blake2Hasher>;
/// The in-memory trie node store.
pub(crate) type NodeStore = MemoryDB<Blake2Hasher>;

/// The root of an empty state.
pub fn empty_root() -> Hash {
    Hash(sp_trie::empty_trie_root::<Layout>().0)
}

/// The root over a whole set of key/value pairs (keys need not be sorted or unique: the last
/// value of a key wins). Reference implementation for tests and genesis.
pub fn trie_root<I, K, V>(pairs: I) -> Hash
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<[u8]> + Ord,
    V: AsRef<[u8]>,
{
    Hash(Layout::trie_root(pairs).0)
}

/// The root of an ordered list (extrinsics, receipts): keys are the SCALE-compact indices.
pub fn ordered_root<I, V>(items: I) -> Hash
where
    I: IntoIterator<Item = V>,
    V: AsRef<[u8]>,
{
    Hash(Layout::ordered_trie_root(items).0)
}

/// Applies `changes` to the trie of `root` in an overlay over `nodes`; returns the new root and
/// the overlay (to be consolidated into `nodes` on commit, or dropped).
pub(crate) fn apply_changes(nodes: &NodeStore, root: Hash, changes: &ChangeSet) -> Result<(Hash, NodeStore)> {
    let mut db = OverlayDb { base: nodes, overlay: NodeStore::default() };
    let root = sp_trie::delta_trie_root::<Layout, _, _, _, _, _>(
        &mut db,
        H256(root.0),
        changes.iter().map(|(k, v)| (k.as_slice(), v.as_deref())),
        None,
        None,
    )
    .map_err(|e| Error::Corrupt(format!("{e:?}")))?;
    Ok((Hash(root.0), db.overlay))
}

/// Writes go to `overlay`; reads see `overlay` first, then `base`. Dropping it discards the
/// writes; `MemoryDB::consolidate` applies them.
pub(crate) struct OverlayDb<'a> {
    pub base: &'a NodeStore,
    pub overlay: NodeStore,
}

impl HashDB<Blake2Hasher, DBValue> for OverlayDb<'_> {
    fn get(&self, key: &H256, prefix: Prefix) -> Option<DBValue> {
        match self.overlay.raw(key, prefix) {
            Some((value, rc)) if rc > 0 => Some(value.clone()),
            _ => self.base.get(key, prefix),
        }
    }

    fn contains(&self, key: &H256, prefix: Prefix) -> bool {
        self.get(key, prefix).is_some()
    }

    fn insert(&mut self, prefix: Prefix, value: &[u8]) -> H256 {
        self.overlay.insert(prefix, value)
    }

    fn emplace(&mut self, key: H256, prefix: Prefix, value: DBValue) {
        self.overlay.emplace(key, prefix, value)
    }

    fn remove(&mut self, key: &H256, prefix: Prefix) {
        self.overlay.remove(key, prefix)
    }
}

impl AsHashDB<Blake2Hasher, DBValue> for OverlayDb<'_> {
    fn as_hash_db(&self) -> &dyn HashDB<Blake2Hasher, DBValue> {
        self
    }

    fn as_hash_db_mut<'b>(&'b mut self) -> &'b mut (dyn HashDB<Blake2Hasher, DBValue> + 'b) {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_roots_agree() {
        assert_eq!(empty_root(), trie_root(Vec::<(Vec<u8>, Vec<u8>)>::new()));
        assert_eq!(empty_root(), ordered_root(Vec::<Vec<u8>>::new()));
    }
}
