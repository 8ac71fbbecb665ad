//! Hyperion's state: the traits every state backend implements, and their in-memory backend.
//!
//! State is a flat map from byte keys to byte values. Each committed block creates a new
//! **version** (the block number); readers take a pinned [`Snapshot`] of a version that stays
//! valid and unchanged while later blocks commit. A commit takes a [`ChangeSet`] and returns the
//! **state root**: the `sp-trie` `LayoutV1` root (Blake2-256) over every key and value, so that
//! any backend (the in-memory one here, MetisDB later) gives the same root for the same state.
//!
//! Block bodies are committed to with [`ordered_root`], the same trie over SCALE-compact indices.

#![warn(missing_docs)]

mod memory;
mod metis;
mod proof;
#[cfg(test)]
mod test_rng;
mod trie;

use hyperion_primitives::{BlockNumber, Hash};
use std::collections::BTreeMap;
use std::sync::Arc;

pub use memory::MemoryStateDb;
pub use metis::{CompactStats, MetisConfig, MetisDb, MetisStats, MAX_VALUE_BYTES};
pub use proof::{verify_proof, MAX_PROOF_KEYS};
pub use trie::{empty_root, ordered_root, trie_root};

/// Changes of one block: `Some(value)` writes a key, `None` deletes it. Sorted by key.
pub type ChangeSet = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Errors of state backends.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The version was never committed or has been pruned.
    #[error("state of block {0} is not available (not committed yet, or pruned)")]
    UnknownVersion(BlockNumber),
    /// Commits must extend the latest version by exactly one block.
    #[error("cannot commit block {got}: the next block must be {expected}")]
    NotNext {
        /// The number that would have been accepted.
        expected: BlockNumber,
        /// The number given.
        got: BlockNumber,
    },
    /// A root can only be computed on top of the latest version.
    #[error("cannot compute a root on top of block {0}: it is not the latest state")]
    NotLatest(BlockNumber),
    /// The computed root is not the expected one; nothing was committed.
    #[error("state root mismatch: expected {expected}, computed {computed}")]
    RootMismatch {
        /// The root the caller expected (from a block header).
        expected: Hash,
        /// The root of the state after applying the changes.
        computed: Hash,
    },
    /// The trie node store is missing a node: the backend is corrupt.
    #[error("state trie is corrupt: {0}")]
    Corrupt(String),
    /// A file operation failed.
    #[error("state store I/O error at {}: {message}", path.display())]
    Io {
        /// The file or folder.
        path: std::path::PathBuf,
        /// What the system said.
        message: String,
    },
    /// The store on disk is damaged; it is not repaired automatically.
    #[error("state store at {} is damaged: {message}", path.display())]
    Damaged {
        /// The damaged file or folder.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A storage proof does not prove what it is checked for.
    #[error("invalid storage proof: {0}")]
    InvalidProof(String),
    /// A key or value exceeds the store's limits.
    #[error("key of {key_bytes} bytes or value of {value_bytes} bytes exceeds the limits")]
    TooLarge {
        /// Key size.
        key_bytes: usize,
        /// Value size.
        value_bytes: usize,
    },
}

/// This crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Read access to one version of the state.
pub trait StateRead: Send + Sync {
    /// The value of `key`, if any.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;

    /// Calls `f` with the value of `key` (`None`: absent), borrowed from the store where the
    /// backend can: no copy and no allocation. The borrow ends when `f` returns; `f` must not
    /// read this snapshot again (a backend may hold a lock around it).
    fn read(&self, key: &[u8], f: &mut dyn FnMut(Option<&[u8]>)) {
        f(self.get(key).as_deref())
    }

    /// Calls `f(i, value)` for each `keys[i]`, in order, as [`read`](Self::read) would. A
    /// backend may serve many keys under one lock, which lets the memory accesses of
    /// independent reads overlap: batch the keys known together (a multi-key query).
    fn read_many(&self, keys: &[&[u8]], f: &mut dyn FnMut(usize, Option<&[u8]>)) {
        for (i, key) in keys.iter().enumerate() {
            self.read(key, &mut |value| f(i, value));
        }
    }

    /// Up to `limit` pairs whose keys start with `prefix`, in key order, starting strictly after
    /// `start_after` when given.
    fn pairs(&self, prefix: &[u8], start_after: Option<&[u8]>, limit: usize) -> Vec<(Vec<u8>, Vec<u8>)>;
}

/// A pinned, immutable view of one version. Cheap to clone; it stays readable while newer
/// versions commit, and the version is never reclaimed while a snapshot of it is alive.
pub type Snapshot = Arc<dyn StateRead>;

/// A versioned state store with one writer and any number of readers.
///
/// Contract: versions are block numbers, committed in order without gaps starting at 0
/// (genesis). `commit` is atomic: on error nothing changes.
pub trait StateDb: Send + Sync {
    /// The latest committed version and its root, or `None` before genesis.
    fn latest(&self) -> Option<(BlockNumber, Hash)>;

    /// A pinned snapshot of `number`.
    fn snapshot(&self, number: BlockNumber) -> Result<Snapshot>;

    /// The root of `number`.
    fn root(&self, number: BlockNumber) -> Result<Hash>;

    /// The root that committing `changes` on top of `parent` would give, without committing.
    /// `parent` must be the latest version.
    fn compute_root(&self, parent: BlockNumber, changes: &ChangeSet) -> Result<Hash>;

    /// Commits `changes` as version `number` (the latest plus one, or 0 on an empty store) and
    /// returns the new root. With `expected_root`, a different root is an error and nothing is
    /// committed.
    fn commit(&self, number: BlockNumber, changes: &ChangeSet, expected_root: Option<Hash>) -> Result<Hash>;

    /// A proof of the values (or absence) of `keys` at block `number`, checkable with
    /// [`verify_proof`] against that block's state root. At most [`MAX_PROOF_KEYS`] keys.
    fn prove(&self, number: BlockNumber, keys: &[Vec<u8>]) -> Result<Vec<Vec<u8>>>;
}
