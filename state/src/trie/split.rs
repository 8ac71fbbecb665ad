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
//!
//! A state whose keys are a storage map's prefix followed by a hash (Hyperion's: 32 bytes of
//! pallet and item, then the hashed key) has no such top: its first levels are the few storage
//! items, and a block's thousands of changes to a map (balances, nonces, a contract's storage)
//! all lie below one node. There the split is made below those nodes instead ([`apply_below`]):
//! the changes are clustered by the prefixes that large runs of them share (`P`, a map's), those
//! outside every cluster (the block hooks' few keys) are applied to the whole trie first, then,
//! cluster by cluster, the node whose partial key ends right after `P` takes the place of the
//! root above, with its children's subtries computed in parallel, and the nodes on the path
//! from it up to the root are encoded again with their one changed child.
//!
//! ```text
//!   root .. (the path to P)   nodes re-encoded with one new child each
//!   node ending at P          re-encoded here (its partial key kept)
//!   16 branches, 256 subtries as at the top above, keys prefixed with P
//! ```

use std::ops::Range;

use hash_db::{HashDB, Hasher, Prefix, EMPTY_PREFIX};
use rayon::prelude::*;
use sp_core::{Blake2Hasher, H256};
use sp_trie::DBValue;
use trie_db::node::{Node, NodeHandle};
use trie_db::{ChildReference, NodeCodec, TrieLayout};

use super::{apply_delta, Change, Layout, NodeSource, NodeStore};
use crate::{ChangeSet, Result};

type Codec = <Layout as TrieLayout>::Codec;
type Children = [Option<ChildReference<H256>>; 16];

/// A group's changes: keys without the byte that groups them (and what precedes it), in key
/// order.
type Group<'c> = Vec<Change<'c>>;

/// `changes` applied to the trie of `root`, as the whole-trie computation would give it; `None`
/// when neither the top nor the nodes of the maps they change split this way (see the module
/// docs).
pub(super) fn apply(
    base: &dyn NodeSource,
    root: H256,
    changes: &ChangeSet,
) -> Result<Option<(H256, NodeStore)>> {
    let at_top = match (group_by_first_byte(changes), top_branch(base, &root)) {
        (Some(groups), Some(top)) => apply_at(base, &[], root, top, groups, EMPTY_PREFIX, None)?,
        _ => None,
    };
    match at_top {
        Some(done) => Ok(Some(done)),
        None => apply_below(base, root, changes),
    }
}

/// The changes `groups` (by the byte after `prefix`, keys without `prefix` and that byte) applied
/// below the branch `node` (no value; its partial key `partial`, as nibbles and their count, ends
/// right at `prefix`; none at the root) whose children are `top`: the subtries two levels down
/// in parallel, then the branches above them and the node itself (at `node_prefix`). Returns
/// the node's new hash and the node changes, or `None` where the changes reshape those levels.
fn apply_at(
    base: &dyn NodeSource,
    prefix: &[u8],
    node: H256,
    mut top: Children,
    groups: Vec<(u8, Group<'_>)>,
    node_prefix: Prefix,
    partial: Option<(&[u8], usize)>,
) -> Result<Option<(H256, NodeStore)>> {
    // The branches one level below, above the changed subtries, by nibble.
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
            let key_prefix = [prefix, &[byte]].concat();
            let (new_root, overlay) = apply_delta(base, subtrie_root, &group, &key_prefix)?;
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
        let hash = replace_node(&mut overlay, old_hash, &children, None, (prefix, Some(nibble << 4)));
        top[usize::from(nibble)] = Some(ChildReference::Hash(hash));
    }
    let new_node = replace_node(&mut overlay, node, &top, partial, node_prefix);
    Ok(Some((new_node, overlay)))
}

/// The split below the nodes where large clusters of changes fan out (see the module docs), or
/// `None` where the changes have no such cluster or the trie is not shaped for it there.
fn apply_below(base: &dyn NodeSource, root: H256, changes: &ChangeSet) -> Result<Option<(H256, NodeStore)>> {
    let all: Vec<(&[u8], Option<&[u8]>)> =
        changes.iter().map(|(k, v)| (k.as_slice(), v.as_deref())).collect();
    // Clusters whose node and the branches below it are there already (not a map this block
    // creates, or whose entries move to new branches): the others' changes join the rest.
    let found: Vec<_> = clusters(&all)
        .into_iter()
        .filter(|(prefix, range)| {
            let nibbles =
                all[range.clone()].iter().filter_map(|(key, _)| key.get(prefix.len()).map(|b| b >> 4));
            fits(base, root, prefix, nibbles)
        })
        .collect();
    if found.is_empty() {
        return Ok(None);
    }
    // The changes outside every cluster (and a cluster's own prefix, which would be a value
    // at the node the split starts from) first, on the whole trie.
    let mut rest: Vec<Change<'_>> = Vec::new();
    let mut next = 0;
    for (prefix, range) in &found {
        rest.extend_from_slice(&all[next..range.start]);
        rest.extend(all[range.clone()].iter().filter(|(key, _)| key.len() == prefix.len()));
        next = range.end;
    }
    rest.extend_from_slice(&all[next..]);
    let (mut root, mut overlay) =
        if rest.is_empty() { (root, NodeStore::default()) } else { apply_delta(base, root, &rest, &[])? };
    for (prefix, range) in found {
        let below = all[range].iter().copied().filter(|(key, _)| key.len() > prefix.len());
        let Some((new_root, changed)) = apply_cluster(&Layered { base, top: &overlay }, root, prefix, below)?
        else {
            return Ok(None);
        };
        overlay.consolidate(changed);
        root = new_root;
    }
    Ok(Some((root, overlay)))
}

/// The changes `below` (keys longer than `prefix`) applied to the trie of `root` in parallel
/// below the node whose partial key ends right after `prefix`, and the path from that node up
/// to the root encoded again: the new root and the node changes; `None` where the trie is not
/// shaped for it.
fn apply_cluster<'c>(
    source: &dyn NodeSource,
    root: H256,
    prefix: &[u8],
    below: impl Iterator<Item = Change<'c>>,
) -> Result<Option<(H256, NodeStore)>> {
    let Some(path) = path_to(source, root, prefix) else { return Ok(None) };
    let Some((node, data)) = path.last() else { return Ok(None) };
    let Ok(Node::NibbledBranch(partial, children, None)) = Codec::decode(data) else { return Ok(None) };
    let Some(top) = children_of(&children) else { return Ok(None) };
    // (Every key of `below` is longer than `prefix`.)
    let Some(groups) = group_by_byte(below, prefix.len()) else { return Ok(None) };
    let partial_bytes: Vec<u8> = partial.right_iter().collect();
    let mut depth = 2 * prefix.len() - partial.len();
    let node_prefix = nibble_prefix(prefix, depth);
    let split = apply_at(
        source,
        prefix,
        *node,
        top,
        groups,
        (&node_prefix.0, node_prefix.1),
        Some((&partial_bytes, partial.len())),
    )?;
    let Some((mut hash, mut changed)) = split else { return Ok(None) };
    // The path above, from the deepest node up: each with its one child on the path replaced.
    for (old, data) in path.iter().rev().skip(1) {
        let Ok(Node::NibbledBranch(partial, children, value)) = Codec::decode(data) else { return Ok(None) };
        let Some(mut children) = children_of(&children) else { return Ok(None) };
        depth -= 1;
        children[usize::from(nibble_at(prefix, depth))] = Some(ChildReference::Hash(hash));
        depth -= partial.len();
        let partial_bytes: Vec<u8> = partial.right_iter().collect();
        let data =
            Codec::branch_node_nibbled(partial_bytes.iter().copied(), partial.len(), children.iter(), value);
        hash = Blake2Hasher::hash(&data);
        if hash != *old {
            let at = nibble_prefix(prefix, depth);
            changed.emplace(hash, (&at.0, at.1), data);
            changed.remove(old, (&at.0, at.1));
        }
    }
    Ok(Some((hash, changed)))
}

/// The changes grouped by their key's byte at `at`, in key order, keys cut after that byte;
/// `None` if a key ends before it (its value would be at the node the groups hang from).
fn group_by_byte<'c>(changes: impl Iterator<Item = Change<'c>>, at: usize) -> Option<Vec<(u8, Group<'c>)>> {
    let mut groups: Vec<(u8, Group<'c>)> = Vec::new();
    for (key, value) in changes {
        let (&byte, rest) = key.get(at..)?.split_first()?;
        match groups.last_mut() {
            Some((b, group)) if *b == byte => group.push((rest, value)),
            _ => groups.push((byte, vec![(rest, value)])),
        }
    }
    Some(groups)
}

/// [`group_by_byte`] of the first byte of every change.
fn group_by_first_byte(changes: &ChangeSet) -> Option<Vec<(u8, Group<'_>)>> {
    group_by_byte(changes.iter().map(|(key, value)| (key.as_slice(), value.as_deref())), 0)
}

/// The children of node `hash` if it is a branch with no partial key and no value.
fn top_branch(base: &dyn NodeSource, hash: &H256) -> Option<Children> {
    let data = base.node(hash)?;
    let Ok(Node::NibbledBranch(partial, children, None)) = Codec::decode(&data) else { return None };
    if !partial.is_empty() {
        return None;
    }
    children_of(&children)
}

/// A decoded branch's children as references.
fn children_of(children: &[Option<NodeHandle<'_>>; 16]) -> Option<Children> {
    let mut out: Children = Default::default();
    for (slot, child) in out.iter_mut().zip(children) {
        *slot = match *child {
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

/// The clusters of changes (`changes` sorted by key) worth a split of their own: runs of at
/// least [`super::MIN_SPLIT_CHANGES`] keys sharing a prefix (`P`) and fanning out right after
/// it (no run of them sharing a longer prefix is that large: the bytes after a map's prefix are a
/// hash), with their positions; in key order, disjoint.
fn clusters<'c>(changes: &[Change<'c>]) -> Vec<(&'c [u8], Range<usize>)> {
    let shared: Vec<usize> =
        changes.windows(2).map(|w| w[0].0.iter().zip(w[1].0).take_while(|(a, b)| a == b).count()).collect();
    let mut found = Vec::new();
    let mut pending: Vec<Range<usize>> = Vec::new();
    pending.push(0..changes.len());
    while let Some(range) = pending.pop() {
        if range.len() < super::MIN_SPLIT_CHANGES.max(2) {
            continue;
        }
        // What the whole range shares, and its runs sharing more.
        let pairs = &shared[range.start..range.end - 1];
        let common = pairs.iter().copied().min().unwrap_or(0);
        let mut runs = Vec::new();
        let mut start = range.start;
        for (i, &length) in pairs.iter().enumerate() {
            if length == common {
                runs.push(start..range.start + i + 1);
                start = range.start + i + 1;
            }
        }
        runs.push(start..range.end);
        if runs.iter().any(|run| run.len() >= super::MIN_SPLIT_CHANGES) {
            pending.extend(runs);
        } else if common > 0 {
            found.push((&changes[range.start].0[..common], range));
        }
    }
    found.sort_by_key(|(_, range)| range.start);
    found
}

/// The nodes from `root` down to the one whose partial key ends right after `prefix` (with
/// their encodings), if the trie has such a node, reached through branches only.
fn path_to(source: &dyn NodeSource, root: H256, prefix: &[u8]) -> Option<Vec<(H256, DBValue)>> {
    let target = 2 * prefix.len();
    let mut path = Vec::new();
    let (mut hash, mut depth) = (root, 0);
    loop {
        let data = source.node(&hash)?;
        let next = {
            let Ok(Node::NibbledBranch(partial, children, _)) = Codec::decode(&data) else { return None };
            if depth + partial.len() > target
                || (0..partial.len()).any(|i| partial.at(i) != nibble_at(prefix, depth + i))
            {
                return None;
            }
            depth += partial.len();
            if depth == target {
                None
            } else {
                let Some(NodeHandle::Hash(child)) = children[usize::from(nibble_at(prefix, depth))] else {
                    return None;
                };
                Some(H256(child.try_into().ok()?))
            }
        };
        path.push((hash, data));
        match next {
            None => return Some(path),
            Some(child) => {
                hash = child;
                depth += 1;
            }
        }
    }
}

/// Whether the trie of `root` has a branch without a value whose partial key ends right after
/// `prefix`, with a branch without partial key or value as its child at each of `nibbles`.
fn fits(source: &dyn NodeSource, root: H256, prefix: &[u8], mut nibbles: impl Iterator<Item = u8>) -> bool {
    let Some(path) = path_to(source, root, prefix) else { return false };
    let Some((_, data)) = path.last() else { return false };
    let Ok(Node::NibbledBranch(_, children, None)) = Codec::decode(data) else { return false };
    let Some(children) = children_of(&children) else { return false };
    let mut seen = [false; 16];
    nibbles.all(|nibble| {
        let nibble = usize::from(nibble);
        std::mem::replace(&mut seen[nibble], true)
            || matches!(children[nibble], Some(ChildReference::Hash(hash)) if top_branch(source, &hash).is_some())
    })
}

/// Nibble `i` of `key`.
fn nibble_at(key: &[u8], i: usize) -> u8 {
    let byte = key[i / 2];
    if i.is_multiple_of(2) {
        byte >> 4
    } else {
        byte & 0xf
    }
}

/// The trie prefix of the first `nibbles` nibbles of `key`: whole bytes, then an odd last
/// nibble in the high bits.
fn nibble_prefix(key: &[u8], nibbles: usize) -> (Vec<u8>, Option<u8>) {
    (key[..nibbles / 2].to_vec(), (nibbles % 2 == 1).then(|| key[nibbles / 2] & 0xf0))
}

/// A trie's nodes: those `top` adds (a positive count) over `base`'s; values are `base`'s.
struct Layered<'a> {
    base: &'a dyn NodeSource,
    top: &'a NodeStore,
}

impl NodeSource for Layered<'_> {
    fn node(&self, hash: &H256) -> Option<DBValue> {
        match self.top.raw(hash, EMPTY_PREFIX) {
            Some((data, count)) if count > 0 => Some(data.clone()),
            _ => self.base.node(hash),
        }
    }

    fn value(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.base.value(key)
    }
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

/// Encodes a branch with no value over `children` and the partial key `partial` (its nibbles
/// and their count; none: empty), replacing node `old` at `prefix` in `overlay` when it
/// differs; returns its hash.
fn replace_node(
    overlay: &mut NodeStore,
    old: H256,
    children: &Children,
    partial: Option<(&[u8], usize)>,
    prefix: Prefix,
) -> H256 {
    let (nibbles, count) = partial.unwrap_or((&[], 0));
    let data = Codec::branch_node_nibbled(nibbles.iter().copied(), count, children.iter(), None);
    let hash = Blake2Hasher::hash(&data);
    if hash != old {
        overlay.emplace(hash, prefix, data);
        overlay.remove(&old, prefix);
    }
    hash
}

#[cfg(test)]
mod tests;
