//! `sp-trie` (`LayoutV1`, Blake2-256) roots; how backends keep a trie's nodes (trie nodes by
//! hash, values by key: [`NodeSource`]); and an overlay that lets a root be computed on top of
//! the latest state without changing it.

use hash_db::{AsHashDB, HashDB, HashDBRef, Hasher, Prefix};
use hyperion_primitives::Hash;
use sp_core::{Blake2Hasher, H256};
use sp_trie::{DBValue, LayoutV1, MemoryDB, TrieConfiguration, TrieLayout};

use crate::{ChangeSet, Error, Result};

mod split;

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

/// What a trie needs from a backend: its trie nodes by hash, and the state's values by key.
///
/// In `LayoutV1` a value of 33 bytes or more is a node of its own, referenced by its hash, and
/// trie-db looks it up with the value's full key as prefix. Backends do not store these value
/// nodes: they are the state's values, already stored by key (storing them again would double
/// the state's size). [`NodeDb`] answers a value node's lookup by reading the key and checking
/// the value's hash.
pub(crate) trait NodeSource: Send + Sync {
    /// The stored trie node with this hash.
    fn node(&self, hash: &H256) -> Option<DBValue>;

    /// Whether a trie node with this hash is stored.
    fn has_node(&self, hash: &H256) -> bool {
        self.node(hash).is_some()
    }

    /// The value of `key` in the version being read.
    fn value(&self, key: &[u8]) -> Option<Vec<u8>>;
}

/// Whether `value` is stored as a node of its own (by hash) rather than inline.
fn is_hashed_value(value: &[u8]) -> bool {
    <Layout as TrieLayout>::MAX_INLINE_VALUE.is_some_and(|threshold| value.len() >= threshold as usize)
}

/// The value node `hash` read through its key: `key_prefix` followed by the lookup's `prefix`
/// (a value node's prefix is its key, or what follows `key_prefix` in a subtrie).
fn value_node(source: &dyn NodeSource, hash: &H256, key_prefix: &[u8], prefix: Prefix) -> Option<DBValue> {
    if prefix.1.is_some() {
        return None;
    }
    source
        .value(&full_key(key_prefix, prefix.0))
        .filter(|v| is_hashed_value(v) && Blake2Hasher::hash(v) == *hash)
}

/// `key_prefix` followed by `rest`, borrowed when `key_prefix` is empty.
fn full_key<'a>(key_prefix: &[u8], rest: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
    if key_prefix.is_empty() {
        rest.into()
    } else {
        [key_prefix, rest].concat().into()
    }
}

/// A [`NodeSource`] as the node database trie-db reads.
pub(crate) struct NodeDb<'a>(pub &'a dyn NodeSource);

impl HashDBRef<Blake2Hasher, DBValue> for NodeDb<'_> {
    fn get(&self, key: &H256, prefix: Prefix) -> Option<DBValue> {
        self.0.node(key).or_else(|| value_node(self.0, key, &[], prefix))
    }

    fn contains(&self, key: &H256, prefix: Prefix) -> bool {
        self.0.has_node(key) || value_node(self.0, key, &[], prefix).is_some()
    }
}

/// Change sets from this size on have their root computed subtrie by subtrie in parallel when
/// the trie's top, or the nodes below which large clusters of them lie, allow it (see
/// [`split`]); smaller ones, and smaller clusters, are not worth the tasks.
const MIN_SPLIT_CHANGES: usize = 256;

/// Applies `changes` to the trie of `root` (whose nodes and values `base` reads) in an overlay;
/// returns the new root and the overlay, which holds trie nodes only (no value nodes, see
/// [`NodeSource`]): to be consolidated into the backend's nodes on commit, or dropped.
///
/// Large change sets are applied to the 256 subtries below the top two levels, or below the
/// node of each storage map most of them change, in parallel, on the caller's rayon pool (the
/// global one unless the caller runs in another); the root and the nodes are the same either
/// way.
pub(crate) fn apply_changes(
    base: &dyn NodeSource,
    root: Hash,
    changes: &ChangeSet,
) -> Result<(Hash, NodeStore)> {
    if changes.len() >= MIN_SPLIT_CHANGES && rayon::current_num_threads() > 1 {
        if let Some((root, overlay)) = split::apply(base, H256(root.0), changes)? {
            return Ok((Hash(root.0), overlay));
        }
    }
    let changes: Vec<Change<'_>> = changes.iter().map(|(k, v)| (k.as_slice(), v.as_deref())).collect();
    let (root, overlay) = apply_delta(base, H256(root.0), &changes, &[])?;
    Ok((Hash(root.0), overlay))
}

/// One change as the trie applies it: a key and its new value (`None`: deleted).
type Change<'c> = (&'c [u8], Option<&'c [u8]>);

/// `delta_trie_root` of `changes` (sorted by key) on the trie of `root`, in an overlay;
/// `key_prefix` is what precedes every key of that trie in the state (empty for the state's
/// trie, a first byte for a subtrie), through which value nodes are read.
fn apply_delta(
    base: &dyn NodeSource,
    root: H256,
    changes: &[Change<'_>],
    key_prefix: &[u8],
) -> Result<(H256, NodeStore)> {
    debug_assert!(changes.windows(2).all(|w| w[0].0 < w[1].0), "changes sorted by key, each once");
    let mut db = OverlayDb { base, changes, key_prefix, overlay: NodeStore::default() };
    let root =
        sp_trie::delta_trie_root::<Layout, _, _, _, _, _>(&mut db, root, changes.iter().copied(), None, None)
            .map_err(|e| Error::Corrupt(format!("{e:?}")))?;
    Ok((root, db.overlay))
}

/// The trie changes of the last root computed on top of the latest block, kept for the commit
/// of the same changes that usually follows (a proposer computes the root for its header, an
/// importer to check it; both then commit), so that it does not compute them again.
#[derive(Default)]
pub(crate) struct PreparedRoot(parking_lot::Mutex<Option<(u64, ChangeSet, Hash, NodeStore)>>);

impl PreparedRoot {
    /// Keeps `changes` computed on top of block `parent`.
    pub fn keep(&self, parent: u64, changes: &ChangeSet, root: Hash, overlay: NodeStore) {
        *self.0.lock() = Some((parent, changes.clone(), root, overlay));
    }

    /// The root and overlay of exactly `changes` on top of `parent`, if they are the ones kept;
    /// whatever was kept is dropped either way.
    pub fn take(&self, parent: u64, changes: &ChangeSet) -> Option<(Hash, NodeStore)> {
        let (at, kept, root, overlay) = self.0.lock().take()?;
        (at == parent && kept == *changes).then_some((root, overlay))
    }
}

/// Writes of trie nodes go to `overlay`; reads see `overlay` first, then `base`. Writes of value
/// nodes are not kept: trie-db inserts a value node with its key as prefix, which is how they
/// are told apart (a trie node's encoding cannot equal the value at its own path: it would
/// contain that value's hash).
struct OverlayDb<'a> {
    base: &'a dyn NodeSource,
    /// The changes being applied, sorted by key (keys without `key_prefix`).
    changes: &'a [Change<'a>],
    /// What precedes every key of this trie in the state.
    key_prefix: &'a [u8],
    overlay: NodeStore,
}

impl OverlayDb<'_> {
    /// Whether `prefix` is the key of a changed value equal to `value`: `value` is being
    /// inserted as that key's value node.
    fn is_new_value(&self, prefix: Prefix, value: &[u8]) -> bool {
        prefix.1.is_none()
            && is_hashed_value(value)
            && self
                .changes
                .binary_search_by(|(key, _)| (*key).cmp(prefix.0))
                .is_ok_and(|i| self.changes[i].1 == Some(value))
    }

    /// Whether removing `hash` at `prefix` removes a value node (which was never stored), not
    /// a trie node. Only a stored trie node needs the old value's hash to tell: a user may
    /// store a value equal to some other trie node's encoding.
    fn is_old_value(&self, hash: &H256, prefix: Prefix) -> bool {
        let stored =
            matches!(self.overlay.raw(hash, prefix), Some((_, rc)) if rc > 0) || self.base.has_node(hash);
        !stored || value_node(self.base, hash, self.key_prefix, prefix).is_some()
    }
}

impl HashDB<Blake2Hasher, DBValue> for OverlayDb<'_> {
    fn get(&self, key: &H256, prefix: Prefix) -> Option<DBValue> {
        match self.overlay.raw(key, prefix) {
            Some((value, rc)) if rc > 0 => Some(value.clone()),
            _ => self.base.node(key).or_else(|| value_node(self.base, key, self.key_prefix, prefix)),
        }
    }

    fn contains(&self, key: &H256, prefix: Prefix) -> bool {
        HashDB::get(self, key, prefix).is_some()
    }

    fn insert(&mut self, prefix: Prefix, value: &[u8]) -> H256 {
        if self.is_new_value(prefix, value) {
            return Blake2Hasher::hash(value);
        }
        self.overlay.insert(prefix, value)
    }

    fn emplace(&mut self, key: H256, prefix: Prefix, value: DBValue) {
        if !self.is_new_value(prefix, &value) {
            self.overlay.emplace(key, prefix, value)
        }
    }

    fn remove(&mut self, key: &H256, prefix: Prefix) {
        if !self.is_old_value(key, prefix) {
            self.overlay.remove(key, prefix)
        }
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
