//! Storage proofs: the trie nodes a reader needs to check keys' values against a state root
//! (Substrate's read proofs: an unordered set of encoded nodes).

use hash_db::{HashDBRef, EMPTY_PREFIX};
use hyperion_primitives::Hash;
use sp_core::{Blake2Hasher, H256};
use sp_trie::{DBValue, Recorder, Trie, TrieDBBuilder};

use crate::trie::{Layout, NodeStore};
use crate::{Error, Result};

/// Most keys one proof may cover.
pub const MAX_PROOF_KEYS: usize = 1024;

/// The nodes proving the values (or absence) of `keys` under `root`.
pub(crate) fn prove(
    nodes: &dyn HashDBRef<Blake2Hasher, DBValue>,
    root: Hash,
    keys: &[Vec<u8>],
) -> Result<Vec<Vec<u8>>> {
    if keys.len() > MAX_PROOF_KEYS {
        return Err(Error::TooLarge { key_bytes: keys.len(), value_bytes: 0 });
    }
    let root = H256(root.0);
    let mut recorder = Recorder::<Layout>::new();
    {
        let trie = TrieDBBuilder::<Layout>::new(nodes, &root).with_recorder(&mut recorder).build();
        for key in keys {
            trie.get(key).map_err(|e| Error::Corrupt(format!("proving: {e:?}")))?;
        }
    }
    let mut proof: Vec<Vec<u8>> = recorder.drain().into_iter().map(|r| r.data).collect();
    proof.sort();
    proof.dedup();
    Ok(proof)
}

/// Checks `proof` against `root` and returns the proven value of each key (`None`: absent).
/// Fails when the proof does not contain what is needed, which is what a tampered value or a
/// wrong root give.
pub fn verify_proof(root: Hash, proof: &[Vec<u8>], keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
    let mut db = NodeStore::default();
    for node in proof {
        hash_db::HashDB::insert(&mut db, EMPTY_PREFIX, node);
    }
    let root = H256(root.0);
    let trie = TrieDBBuilder::<Layout>::new(&db, &root).build();
    keys.iter().map(|key| trie.get(key).map_err(|e| Error::InvalidProof(format!("{e:?}")))).collect()
}
