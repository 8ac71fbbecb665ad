//! The in-memory state backend.
//!
//! Each retained version is a persistent ordered map (`imbl::OrdMap`), so a snapshot is an O(1)
//! clone that shares structure with its neighbours. The trie node store holds the nodes of the
//! latest root only; roots are updated incrementally from each block's changes, so a commit costs
//! O(changes · depth), not O(state).

use hyperion_primitives::{BlockNumber, Hash};
use imbl::OrdMap;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use crate::trie::{apply_changes, empty_root, NodeDb, NodeSource, NodeStore, PreparedRoot};
use crate::{ChangeSet, Error, Result, Snapshot, StateDb, StateRead};

type Map = OrdMap<Vec<u8>, Vec<u8>>;

/// One retained version.
#[derive(Clone)]
struct Version {
    root: Hash,
    data: Map,
}

struct Inner {
    versions: BTreeMap<BlockNumber, Version>,
    nodes: NodeStore,
}

/// State kept in memory; versions older than the last `retain` are dropped after each commit.
pub struct MemoryStateDb {
    inner: RwLock<Inner>,
    retain: u64,
    /// The last `compute_root`'s result, for the commit of the same changes.
    prepared: PreparedRoot,
}

impl MemoryStateDb {
    /// An empty store keeping the last `retain` versions readable (at least 1).
    pub fn new(retain: u64) -> Self {
        Self {
            inner: RwLock::new(Inner { versions: BTreeMap::new(), nodes: NodeStore::default() }),
            retain: retain.max(1),
            prepared: PreparedRoot::default(),
        }
    }

    fn latest_version(inner: &Inner) -> Option<(BlockNumber, &Version)> {
        inner.versions.last_key_value().map(|(n, v)| (*n, v))
    }
}

impl StateDb for MemoryStateDb {
    fn latest(&self) -> Option<(BlockNumber, Hash)> {
        let inner = self.inner.read();
        Self::latest_version(&inner).map(|(n, v)| (n, v.root))
    }

    fn snapshot(&self, number: BlockNumber) -> Result<Snapshot> {
        let inner = self.inner.read();
        let version = inner.versions.get(&number).ok_or(Error::UnknownVersion(number))?;
        Ok(Arc::new(MemorySnapshot { data: version.data.clone() }))
    }

    fn root(&self, number: BlockNumber) -> Result<Hash> {
        let inner = self.inner.read();
        inner.versions.get(&number).map(|v| v.root).ok_or(Error::UnknownVersion(number))
    }

    fn compute_root(&self, parent: BlockNumber, changes: &ChangeSet) -> Result<Hash> {
        let inner = self.inner.read();
        match Self::latest_version(&inner) {
            Some((latest, version)) if latest == parent => {
                let source = Source { nodes: &inner.nodes, data: &version.data };
                let (root, overlay) = apply_changes(&source, version.root, changes)?;
                self.prepared.keep(parent, changes, root, overlay);
                Ok(root)
            }
            _ => Err(Error::NotLatest(parent)),
        }
    }

    fn commit(&self, number: BlockNumber, changes: &ChangeSet, expected_root: Option<Hash>) -> Result<Hash> {
        let mut inner = self.inner.write();
        let (expected_number, base_root, mut data) = match Self::latest_version(&inner) {
            Some((latest, version)) => (latest + 1, version.root, version.data.clone()),
            None => (0, empty_root(), Map::new()),
        };
        if number != expected_number {
            return Err(Error::NotNext { expected: expected_number, got: number });
        }
        // Computed by `compute_root` on top of the same latest block: no commit since.
        let prepared = number.checked_sub(1).and_then(|parent| self.prepared.take(parent, changes));
        let (root, overlay) = match prepared {
            Some(prepared) => prepared,
            None => apply_changes(&Source { nodes: &inner.nodes, data: &data }, base_root, changes)?,
        };
        if let Some(expected) = expected_root {
            if expected != root {
                return Err(Error::RootMismatch { expected, computed: root });
            }
        }
        for (key, value) in changes {
            match value {
                Some(value) => data.insert(key.clone(), value.clone()),
                None => data.remove(key),
            };
        }
        inner.nodes.consolidate(overlay);
        inner.nodes.purge();
        inner.versions.insert(number, Version { root, data });
        while inner.versions.len() as u64 > self.retain {
            inner.versions.pop_first();
        }
        Ok(root)
    }

    /// Proofs are served for the latest version only: older nodes are purged.
    fn prove(&self, number: BlockNumber, keys: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
        let inner = self.inner.read();
        match Self::latest_version(&inner) {
            Some((latest, version)) if latest == number => crate::proof::prove(
                &NodeDb(&Source { nodes: &inner.nodes, data: &version.data }),
                version.root,
                keys,
            ),
            _ => Err(Error::UnknownVersion(number)),
        }
    }
}

/// The trie nodes and the values of one version.
struct Source<'a> {
    nodes: &'a NodeStore,
    data: &'a Map,
}

impl NodeSource for Source<'_> {
    fn node(&self, hash: &sp_core::H256) -> Option<sp_trie::DBValue> {
        hash_db::HashDB::get(self.nodes, hash, hash_db::EMPTY_PREFIX)
    }

    fn value(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.data.get(key).cloned()
    }
}

/// A pinned version of [`MemoryStateDb`].
struct MemorySnapshot {
    data: Map,
}

impl StateRead for MemorySnapshot {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.data.get(key).cloned()
    }

    fn read(&self, key: &[u8], f: &mut dyn FnMut(Option<&[u8]>)) {
        f(self.data.get(key).map(Vec::as_slice))
    }

    fn pairs(&self, prefix: &[u8], start_after: Option<&[u8]>, limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let lower = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(after.to_vec()),
            _ => Bound::Included(prefix.to_vec()),
        };
        self.data
            .range((lower, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trie_root;
    use quickcheck::{quickcheck, Arbitrary, Gen, TestResult};

    /// A block of writes over a small key space, so that keys collide and get deleted.
    #[derive(Clone, Debug)]
    struct Block(Vec<(u8, Option<Vec<u8>>)>);

    impl Arbitrary for Block {
        fn arbitrary(g: &mut Gen) -> Self {
            let len = usize::arbitrary(g) % 20;
            Block(
                (0..len)
                    .map(|_| {
                        let key = u8::arbitrary(g) % 32;
                        let value = bool::arbitrary(g).then(|| {
                            // Values both below and above the 32-byte inline limit of LayoutV1.
                            let len = usize::arbitrary(g) % 70;
                            vec![u8::arbitrary(g); len]
                        });
                        (key, value)
                    })
                    .collect(),
            )
        }
    }

    fn change_set(block: &Block) -> ChangeSet {
        block.0.iter().map(|(k, v)| (vec![*k, 0xaa], v.clone())).collect()
    }

    quickcheck! {
        /// Every retained version reads like a BTreeMap model and has the model's trie root.
        fn matches_reference_model(blocks: Vec<Block>) -> TestResult {
            let db = MemoryStateDb::new(4);
            let mut model = BTreeMap::<Vec<u8>, Vec<u8>>::new();
            let mut models = Vec::new();
            for (number, block) in blocks.iter().enumerate() {
                let changes = change_set(block);
                let predicted = if number == 0 { None } else {
                    Some(db.compute_root(number as u64 - 1, &changes).unwrap())
                };
                let root = db.commit(number as u64, &changes, predicted).unwrap();
                for (k, v) in &changes {
                    match v { Some(v) => { model.insert(k.clone(), v.clone()); } None => { model.remove(k); } }
                }
                if root != trie_root(model.iter()) { return TestResult::failed(); }
                models.push(model.clone());
            }
            for (number, model) in models.iter().enumerate().rev().take(4) {
                let snap = db.snapshot(number as u64).unwrap();
                let all = snap.pairs(&[], None, usize::MAX);
                if all != model.clone().into_iter().collect::<Vec<_>>() { return TestResult::failed(); }
            }
            if models.len() > 4 && db.snapshot(models.len() as u64 - 5).is_ok() {
                return TestResult::failed();
            }
            TestResult::passed()
        }

        /// The root does not depend on the order of writes: the same final state reached by
        /// writing key by key (one commit each, in the given order) or by one block of writes in
        /// the reverse order gives the same root.
        fn root_independent_of_write_order(pairs: Vec<(u8, Vec<u8>)>) -> bool {
            let one_by_one = MemoryStateDb::new(1);
            one_by_one.commit(0, &ChangeSet::new(), None).unwrap();
            let mut last = one_by_one.latest().unwrap().1;
            for (i, (k, v)) in pairs.iter().enumerate() {
                let change = ChangeSet::from([(vec![*k], Some(v.clone()))]);
                last = one_by_one.commit(i as u64 + 1, &change, None).unwrap();
            }
            let mut reversed = ChangeSet::new();
            for (k, v) in pairs.iter().rev() {
                reversed.entry(vec![*k]).or_insert_with(|| Some(v.clone()));
            }
            let batch = MemoryStateDb::new(1);
            last == batch.commit(0, &reversed, None).unwrap()
        }
    }

    #[test]
    fn snapshot_is_stable_across_commits() {
        let db = MemoryStateDb::new(8);
        db.commit(0, &ChangeSet::from([(b"a".to_vec(), Some(b"1".to_vec()))]), None).unwrap();
        let snap = db.snapshot(0).unwrap();
        db.commit(1, &ChangeSet::from([(b"a".to_vec(), Some(b"2".to_vec()))]), None).unwrap();
        assert_eq!(snap.get(b"a"), Some(b"1".to_vec()));
        assert_eq!(db.snapshot(1).unwrap().get(b"a"), Some(b"2".to_vec()));
    }

    #[test]
    fn mismatch_and_gaps_change_nothing() {
        let db = MemoryStateDb::new(8);
        let root0 = db.commit(0, &ChangeSet::new(), None).unwrap();
        let changes = ChangeSet::from([(b"k".to_vec(), Some(b"v".to_vec()))]);
        let err = db.commit(1, &changes, Some(Hash([9; 32]))).unwrap_err();
        assert!(matches!(err, Error::RootMismatch { .. }));
        assert_eq!(db.latest(), Some((0, root0)));
        assert_eq!(db.commit(5, &changes, None), Err(Error::NotNext { expected: 1, got: 5 }));
        assert_eq!(db.snapshot(0).unwrap().get(b"k"), None);
        // And the trie still works after the refused commits.
        let root1 = db.commit(1, &changes, None).unwrap();
        assert_eq!(root1, trie_root([(b"k".to_vec(), b"v".to_vec())]));
    }

    #[test]
    fn prefix_pairs() {
        let db = MemoryStateDb::new(1);
        let changes: ChangeSet =
            [b"aa", b"ab", b"ac", b"b0"].iter().map(|k| (k.to_vec(), Some(vec![1]))).collect();
        db.commit(0, &changes, None).unwrap();
        let snap = db.snapshot(0).unwrap();
        let keys = |v: Vec<(Vec<u8>, Vec<u8>)>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(keys(snap.pairs(b"a", None, 10)), vec![b"aa".to_vec(), b"ab".to_vec(), b"ac".to_vec()]);
        assert_eq!(keys(snap.pairs(b"a", Some(b"aa"), 1)), vec![b"ab".to_vec()]);
    }
}
