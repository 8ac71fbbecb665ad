//! A large change set's root, computed subtrie by subtrie in parallel.
//!
//! In a trie of many hashed keys, the root and its 16 children are branch nodes with no partial
//! key and no value. Every node at depth 2 (after two nibbles: one whole byte) is then the root
//! of a subtrie holding the keys that start with one byte, and that subtrie is a valid trie of
//! those keys without their first byte: a node's encoding holds its partial key relative to its
//! parent, never its position. So the changes are grouped by first byte, each group is applied
//! by `delta_trie_root` to its own subtrie on the caller's rayon pool, and only the top nodes
//! (the root and the depth-1 branches above changed subtries) are encoded here.
//!
//! ```text
//!   depth 0            root branch            re-encoded here
//!   depth 1      16 branches (first nibble)   re-encoded here when a child changed
//!   depth 2     256 subtries (first byte)     delta_trie_root each, in parallel
//! ```
//!
//! Where the top does not have that shape, or the changes would reshape it (a depth-1 branch
//! left with one child, a subtrie small enough to be inlined in its parent, a depth-1 branch
//! that is missing), [`apply`] returns `None` and the caller computes the root in one pass: the
//! result is always the one `delta_trie_root` gives over the whole trie, nodes and reference
//! counts included. (The last two reshapes are only seen after the subtries are computed, whose
//! work is then lost; with many keys they are rare.)

use hash_db::{HashDB, Hasher, Prefix, EMPTY_PREFIX};
use rayon::prelude::*;
use sp_core::{Blake2Hasher, H256};
use trie_db::node::{Node, NodeHandle};
use trie_db::{ChildReference, NodeCodec, TrieLayout};

use super::{apply_delta, Change, Layout, NodeSource, NodeStore};
use crate::{ChangeSet, Result};

type Codec = <Layout as TrieLayout>::Codec;
type Children = [Option<ChildReference<H256>>; 16];

/// A group's changes: keys without their first byte, in key order.
type Group<'c> = Vec<Change<'c>>;

/// `changes` applied to the trie of `root`, as the whole-trie computation would give it; `None`
/// when the trie's top is not split this way (see the module docs).
pub(super) fn apply(
    base: &dyn NodeSource,
    root: H256,
    changes: &ChangeSet,
) -> Result<Option<(H256, NodeStore)>> {
    let Some(groups) = group_by_first_byte(changes) else { return Ok(None) };
    let Some(mut top) = top_branch(base, &root) else { return Ok(None) };
    // The depth-1 branches above the changed subtries, by first nibble.
    let mut middles: Vec<(u8, H256, Children)> = Vec::new();
    for (byte, _) in &groups {
        let nibble = byte >> 4;
        if middles.last().is_some_and(|(n, _, _)| *n == nibble) {
            continue;
        }
        let Some(ChildReference::Hash(hash)) = top[usize::from(nibble)] else { return Ok(None) };
        let Some(children) = top_branch(base, &hash) else { return Ok(None) };
        middles.push((nibble, hash, children));
    }
    // Each group's subtrie: its root before (the empty root for an empty slot).
    let mut tasks = Vec::with_capacity(groups.len());
    for (byte, group) in groups {
        let (_, _, children) = middles.iter().find(|(n, _, _)| *n == byte >> 4).expect("collected above");
        let subtrie_root = match children[usize::from(byte & 0xf)] {
            Some(ChildReference::Hash(hash)) => hash,
            None => Codec::hashed_null_node(),
            Some(ChildReference::Inline(..)) => return Ok(None),
        };
        tasks.push((byte, subtrie_root, group));
    }
    let subtries = tasks
        .into_par_iter()
        .map(|(byte, subtrie_root, group)| {
            let (new_root, overlay) = apply_delta(base, subtrie_root, &group, &[byte])?;
            Ok((byte, subtrie_root, new_root, overlay))
        })
        .collect::<Result<Vec<_>>>()?;

    let mut overlay = NodeStore::default();
    for (byte, old_root, new_root, subtrie) in subtries {
        let Some(child) = subtrie_child(old_root, new_root, &subtrie) else { return Ok(None) };
        let (_, _, children) = middles.iter_mut().find(|(n, _, _)| *n == byte >> 4).expect("collected above");
        children[usize::from(byte & 0xf)] = child;
        overlay.consolidate(subtrie);
    }
    for (nibble, old_hash, children) in middles {
        if children.iter().flatten().count() < 2 {
            // A branch without a value needs two children; with one it merges into its child.
            return Ok(None);
        }
        let prefix = [nibble << 4];
        let hash = replace_branch(&mut overlay, old_hash, &children, (&[], Some(prefix[0])));
        top[usize::from(nibble)] = Some(ChildReference::Hash(hash));
    }
    let new_root = replace_branch(&mut overlay, root, &top, EMPTY_PREFIX);
    Ok(Some((new_root, overlay)))
}

/// The changes grouped by their key's first byte, in key order; `None` if a key is empty (its
/// value would be the root's).
fn group_by_first_byte(changes: &ChangeSet) -> Option<Vec<(u8, Group<'_>)>> {
    let mut groups: Vec<(u8, Group<'_>)> = Vec::new();
    for (key, value) in changes {
        let (&first, rest) = key.split_first()?;
        let change = (rest, value.as_deref());
        match groups.last_mut() {
            Some((byte, group)) if *byte == first => group.push(change),
            _ => groups.push((first, vec![change])),
        }
    }
    Some(groups)
}

/// The children of node `hash` if it is a branch with no partial key and no value.
fn top_branch(base: &dyn NodeSource, hash: &H256) -> Option<Children> {
    let data = base.node(hash)?;
    let Ok(Node::NibbledBranch(partial, children, None)) = Codec::decode(&data) else { return None };
    if !partial.is_empty() {
        return None;
    }
    let mut out: Children = Default::default();
    for (slot, child) in out.iter_mut().zip(children) {
        *slot = match child {
            None => None,
            Some(NodeHandle::Hash(hash)) => Some(ChildReference::Hash(H256(hash.try_into().ok()?))),
            Some(NodeHandle::Inline(data)) => {
                let mut inline = H256::zero();
                inline.as_bytes_mut().get_mut(..data.len())?.copy_from_slice(data);
                Some(ChildReference::Inline(inline, data.len()))
            }
        };
    }
    Some(out)
}

/// The reference a depth-1 branch holds to a subtrie whose root went from `old_root` to
/// `new_root` (its new nodes in `subtrie`): none for an empty subtrie. `None` when the root
/// became small enough to be inlined in its parent (a standalone trie stores its root by hash
/// regardless), which the whole-trie computation would have done.
#[allow(clippy::option_option)]
fn subtrie_child(
    old_root: H256,
    new_root: H256,
    subtrie: &NodeStore,
) -> Option<Option<ChildReference<H256>>> {
    if new_root == Codec::hashed_null_node() {
        return Some(None);
    }
    if new_root != old_root {
        let (data, _) = subtrie.raw(&new_root, EMPTY_PREFIX)?;
        if data.len() < Blake2Hasher::LENGTH {
            return None;
        }
    }
    Some(Some(ChildReference::Hash(new_root)))
}

/// Encodes a branch with no partial key and no value over `children`, replacing node `old` at
/// `prefix` in `overlay` when it differs; returns its hash.
fn replace_branch(overlay: &mut NodeStore, old: H256, children: &Children, prefix: Prefix) -> H256 {
    let data = Codec::branch_node_nibbled(std::iter::empty(), 0, children.iter(), None);
    let hash = Blake2Hasher::hash(&data);
    if hash != old {
        overlay.emplace(hash, prefix, data);
        overlay.remove(&old, prefix);
    }
    hash
}

#[cfg(test)]
mod tests;
