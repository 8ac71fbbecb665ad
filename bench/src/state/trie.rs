//! The baselines: a `sp-trie` (`LayoutV1<Blake2Hasher>`) state read and written the way a
//! Substrate node does it, through a [`SharedTrieCache`], over a node store keyed by node hash.
//!
//! - Commit: `delta_trie_root` of the block's changes with a trusted local cache (as block
//!   import does), writes going to an overlay; the local cache is merged into the shared one; the
//!   overlay's new nodes go to the node store in one write ([`Nodes::store`]). Nodes the block
//!   released are kept (no pruning), so every earlier root stays readable.
//! - Read: per key, a `TrieDB` over the node store at the version's root with an untrusted local
//!   cache (as an RPC read does), `TrieDBBuilder::new(db, root).with_cache(cache).build().get_with(key, f)`, the value handed to
//!   `f` as a borrowed slice.

use hash_db::{AsHashDB, HashDB, HashDBRef, Prefix};
use hyperion_state::ChangeSet;
use sp_core::{Blake2Hasher, H256};
use sp_trie::cache::{CacheSize, LocalTrieCache, SharedTrieCache};
use sp_trie::{DBValue, LayoutV1, MemoryDB, Trie, TrieDBBuilder};

use super::store::{Reader, Store};
use crate::{Error, Result};

/// The trie layout of Hyperion's state.
pub type Layout = LayoutV1<Blake2Hasher>;

/// Reads of trie nodes by hash.
pub type NodeRead = dyn HashDBRef<Blake2Hasher, DBValue> + Sync;

/// Keys read per local cache while warming, so that each batch reaches the shared cache.
const WARM_BATCH_KEYS: usize = 65_536;

/// A node store of the trie.
pub trait Nodes: HashDBRef<Blake2Hasher, DBValue> + Sync + 'static {
    /// Stores one block's new nodes in one write, as durably as this store goes.
    fn store(&mut self, nodes: Vec<(H256, DBValue)>) -> Result<()>;

    /// Finishes the work earlier writes left pending (see [`Store::finish`]).
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A `sp-trie` state over a node store `N`, with its shared cache and the root of each block.
pub struct TrieStore<N> {
    nodes: N,
    cache: SharedTrieCache<Blake2Hasher>,
    roots: Vec<H256>,
}

impl<N: Nodes> TrieStore<N> {
    /// An empty state over `nodes` with a shared cache of `cache_bytes`.
    pub fn new(nodes: N, cache_bytes: usize) -> Self {
        Self { nodes, cache: SharedTrieCache::new(CacheSize::new(cache_bytes), None), roots: Vec::new() }
    }

    /// The node store.
    pub fn nodes(&self) -> &N {
        &self.nodes
    }

    /// Replaces the node store by `f(store)`, e.g. to reopen it in another mode. The nodes must
    /// be the same.
    pub fn map_nodes(self, f: impl FnOnce(N) -> Result<N>) -> Result<Self> {
        Ok(Self { nodes: f(self.nodes)?, ..self })
    }

    /// The root of block `number`.
    pub fn root(&self, number: u64) -> Result<H256> {
        self.roots.get(number as usize).copied().ok_or_else(|| Error::Check(format!("no block {number}")))
    }
}

impl<N: Nodes> Store for TrieStore<N> {
    type Reader<'a>
        = TrieReader<'a>
    where
        N: 'a;

    fn commit(&mut self, number: u64, changes: &ChangeSet) -> Result<H256> {
        assert_eq!(number, self.roots.len() as u64, "blocks are committed in order");
        let parent = self.roots.last().copied().unwrap_or_else(sp_trie::empty_trie_root::<Layout>);
        let local = self.cache.local_cache_trusted();
        let mut overlay = Overlay { base: &self.nodes, new: MemoryDB::default() };
        let mut cache = local.as_trie_db_mut_cache();
        let root = sp_trie::delta_trie_root::<Layout, _, _, _, _, _>(
            &mut overlay,
            parent,
            changes.iter().map(|(k, v)| (k.as_slice(), v.as_deref())),
            None,
            Some(&mut cache),
        )
        .map_err(|e| Error::Check(format!("sp-trie commit of block {number}: {e:?}")))?;
        cache.merge_into(&local, root);
        drop(local);
        let new_nodes: Vec<(H256, DBValue)> = overlay
            .new
            .drain()
            .into_iter()
            .filter(|(_, (_, rc))| *rc > 0)
            .map(|(k, (v, _))| (k, v))
            .collect();
        self.nodes.store(new_nodes)?;
        self.roots.push(root);
        Ok(root)
    }

    fn reader(&self, number: u64) -> Result<TrieReader<'_>> {
        Ok(TrieReader {
            nodes: &self.nodes,
            root: self.root(number)?,
            local: self.cache.local_cache_untrusted(),
        })
    }

    fn finish(&mut self) -> Result<()> {
        self.nodes.finish()
    }

    /// Reads every key once with trusted local caches (everything they hold is promoted to the
    /// shared cache), a fresh one every 65,536 keys.
    fn warm(&self, number: u64, keys: &[[u8; 32]]) -> Result<()> {
        let root = self.root(number)?;
        for batch in keys.chunks(WARM_BATCH_KEYS) {
            let mut reader = TrieReader { nodes: &self.nodes, root, local: self.cache.local_cache_trusted() };
            for key in batch {
                std::hint::black_box(reader.get(key)?);
            }
        }
        Ok(())
    }
}

/// Reads of one root through a local cache of the shared cache.
pub struct TrieReader<'a> {
    nodes: &'a NodeRead,
    root: H256,
    local: LocalTrieCache<Blake2Hasher>,
}

impl Reader for TrieReader<'_> {
    #[inline]
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut cache = self.local.as_trie_db_cache(self.root);
        let trie = TrieDBBuilder::<Layout>::new(self.nodes, &self.root).with_cache(&mut cache).build();
        trie.get(key).map_err(|e| Error::Check(format!("sp-trie read: {e:?}")))
    }

    fn read(&mut self, key: &[u8], f: &mut dyn FnMut(&[u8])) -> Result<bool> {
        let mut cache = self.local.as_trie_db_cache(self.root);
        let trie = TrieDBBuilder::<Layout>::new(self.nodes, &self.root).with_cache(&mut cache).build();
        let found = trie.get_with(key, |value: &[u8]| f(value));
        Ok(found.map_err(|e| Error::Check(format!("sp-trie read: {e:?}")))?.is_some())
    }

    /// One `TrieDB` for all the keys.
    fn read_many(&mut self, keys: &[[u8; 32]], f: &mut dyn FnMut(&[u8])) -> Result<usize> {
        let mut cache = self.local.as_trie_db_cache(self.root);
        let trie = TrieDBBuilder::<Layout>::new(self.nodes, &self.root).with_cache(&mut cache).build();
        let mut found = 0;
        for key in keys {
            let value = trie.get_with(key, |value: &[u8]| f(value));
            found += usize::from(value.map_err(|e| Error::Check(format!("sp-trie read: {e:?}")))?.is_some());
        }
        Ok(found)
    }
}

/// Baseline (a)'s node store: all nodes in memory (`MemoryDB`); a write is not durable.
#[derive(Default)]
pub struct MemoryNodes(MemoryDB<Blake2Hasher>);

impl HashDBRef<Blake2Hasher, DBValue> for MemoryNodes {
    fn get(&self, key: &H256, prefix: Prefix) -> Option<DBValue> {
        HashDB::get(&self.0, key, prefix)
    }

    fn contains(&self, key: &H256, prefix: Prefix) -> bool {
        HashDB::contains(&self.0, key, prefix)
    }
}

impl Nodes for MemoryNodes {
    fn store(&mut self, nodes: Vec<(H256, DBValue)>) -> Result<()> {
        for (key, value) in nodes {
            self.0.emplace(key, hash_db::EMPTY_PREFIX, value);
        }
        Ok(())
    }
}

/// Writes go to `new`; reads see `new` first, then `base`.
struct Overlay<'a> {
    base: &'a NodeRead,
    new: MemoryDB<Blake2Hasher>,
}

impl HashDB<Blake2Hasher, DBValue> for Overlay<'_> {
    fn get(&self, key: &H256, prefix: Prefix) -> Option<DBValue> {
        match self.new.raw(key, prefix) {
            Some((value, rc)) if rc > 0 => Some(value.clone()),
            _ => self.base.get(key, prefix),
        }
    }

    fn contains(&self, key: &H256, prefix: Prefix) -> bool {
        HashDB::get(self, key, prefix).is_some()
    }

    fn insert(&mut self, prefix: Prefix, value: &[u8]) -> H256 {
        self.new.insert(prefix, value)
    }

    fn emplace(&mut self, key: H256, prefix: Prefix, value: DBValue) {
        self.new.emplace(key, prefix, value)
    }

    fn remove(&mut self, key: &H256, prefix: Prefix) {
        self.new.remove(key, prefix)
    }
}

impl AsHashDB<Blake2Hasher, DBValue> for Overlay<'_> {
    fn as_hash_db(&self) -> &dyn HashDB<Blake2Hasher, DBValue> {
        self
    }

    fn as_hash_db_mut<'b>(&'b mut self) -> &'b mut (dyn HashDB<Blake2Hasher, DBValue> + 'b) {
        self
    }
}
