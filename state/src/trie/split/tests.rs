//! The split computation against the whole-trie one, on random tries and change sets.

use super::*;
use crate::test_rng::Rng;
use crate::trie::trie_root;
use quickcheck::{QuickCheck, TestResult};
use sp_trie::DBValue;
use std::collections::BTreeMap;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// A trie's nodes and values.
#[derive(Default)]
struct Source {
    nodes: NodeStore,
    values: Model,
}

impl NodeSource for Source {
    fn node(&self, hash: &H256) -> Option<DBValue> {
        HashDB::get(&self.nodes, hash, EMPTY_PREFIX)
    }

    fn value(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.values.get(key).cloned()
    }
}

/// Mostly 32-byte hashed keys; now and then a short one (which ends at the top levels or just
/// below them).
fn random_key(rng: &mut Rng) -> Vec<u8> {
    match rng.below(50) {
        0 => rng.bytes(1),
        1 => rng.bytes(2),
        _ => rng.bytes(32),
    }
}

/// Values around the trie's 33-byte limit for inline values.
fn random_value(rng: &mut Rng) -> Vec<u8> {
    let len = [0, 1, 5, 31, 32, 33, 40, 100][rng.below(8) as usize];
    rng.bytes(len)
}

/// The whole-trie computation.
fn whole(source: &Source, root: H256, changes: &ChangeSet) -> (H256, NodeStore) {
    let changes: Vec<Change<'_>> = changes.iter().map(|(k, v)| (k.as_slice(), v.as_deref())).collect();
    apply_delta(source, root, &changes, &[]).unwrap()
}

/// The node count changes of an overlay, without the zero ones.
fn net(mut overlay: NodeStore) -> Vec<(H256, i32, DBValue)> {
    let mut changes: Vec<_> = overlay
        .drain()
        .into_iter()
        .filter(|(_, (_, rc))| *rc != 0)
        .map(|(hash, (data, rc))| (hash, rc, if rc > 0 { data } else { Vec::new() }))
        .collect();
    changes.sort();
    changes
}

/// A trie of the keys of `base` and a change set on it of `changes` overwrites, inserts (keys
/// from `key`) and deletes of present and absent keys, with what `extra` adds (given the present
/// keys); and the model after the changes.
fn build(
    rng: &mut Rng,
    base: ChangeSet,
    changes: usize,
    mut key: impl FnMut(&mut Rng) -> Vec<u8>,
    extra: impl FnOnce(&mut Rng, &[Vec<u8>], &mut ChangeSet),
) -> (Source, H256, ChangeSet, Model) {
    let mut source = Source::default();
    let (root, overlay) = whole(&source, Codec::hashed_null_node(), &base);
    source.nodes.consolidate(overlay);
    source.values = base.into_iter().map(|(k, v)| (k, v.expect("puts"))).collect();
    let present: Vec<Vec<u8>> = source.values.keys().cloned().collect();
    let mut set = ChangeSet::new();
    for _ in 0..changes {
        let key = match rng.below(3) {
            0 if !present.is_empty() => present[rng.below(present.len() as u64) as usize].clone(),
            _ => key(rng),
        };
        let value = (rng.below(5) != 0).then(|| random_value(rng));
        set.insert(key, value);
    }
    extra(rng, &present, &mut set);
    let mut after = source.values.clone();
    for (key, value) in &set {
        match value {
            Some(value) => after.insert(key.clone(), value.clone()),
            None => after.remove(key),
        };
    }
    (source, root, set, after)
}

/// A random trie of about `keys` keys and a random change set on it: overwrites, inserts,
/// deletes of present and absent keys, and at times every key of one first byte deleted (a
/// subtrie that empties) or one of a first nibble kept (a branch left with one child).
fn case(seed: u64, keys: usize, changes: usize) -> (Source, H256, ChangeSet, Model) {
    let mut rng = Rng(seed);
    let base: ChangeSet = (0..keys).map(|_| (random_key(&mut rng), Some(random_value(&mut rng)))).collect();
    build(&mut rng, base, changes, random_key, |rng, present, set| match rng.below(8) {
        0 => {
            let byte = rng.next() as u8;
            set.extend(present.iter().filter(|k| k[0] == byte).map(|k| (k.clone(), None)));
        }
        1 => {
            let nibble = rng.next() as u8 & 0xf;
            let keep = rng.next() as u8 & 0xf;
            let doomed = present.iter().filter(|k| k[0] >> 4 == nibble && k[0] & 0xf != keep);
            set.extend(doomed.map(|k| (k.clone(), None)));
        }
        _ => {}
    })
}

/// Where the split applies, it gives the whole-trie root and the same node changes; either
/// way the root is the model's.
fn check((source, root, set, after): (Source, H256, ChangeSet, Model)) -> TestResult {
    let (whole_root, whole_overlay) = whole(&source, root, &set);
    if whole_root.0 != trie_root(after.iter()).0 {
        return TestResult::error("the whole-trie root differs from the model's");
    }
    let Some((split_root, split_overlay)) = apply(&source, root, &set).unwrap() else {
        return TestResult::passed();
    };
    if split_root != whole_root {
        return TestResult::error("roots differ");
    }
    if net(split_overlay) != net(whole_overlay) {
        return TestResult::error("node changes differ");
    }
    TestResult::passed()
}

fn same_as_whole_trie(seed: u64, keys: u16, changes: u16) -> TestResult {
    check(case(seed, usize::from(keys % 3000), usize::from(changes % 600)))
}

#[test]
fn split_roots_and_nodes_match_the_whole_trie() {
    QuickCheck::new().tests(80).quickcheck(same_as_whole_trie as fn(u64, u16, u16) -> TestResult);
}

/// Large tries take the split path, also when a subtrie empties; changes that reshape the top,
/// and small tries, do not.
#[test]
fn split_applies_where_the_top_is_full_and_stays_so() {
    let mut taken = 0;
    for seed in 0..40 {
        let (source, root, set, _) = case(seed, 4000, 500);
        if let Some((split_root, overlay)) = apply(&source, root, &set).unwrap() {
            let (whole_root, whole_overlay) = whole(&source, root, &set);
            assert_eq!(split_root, whole_root, "seed {seed}");
            assert_eq!(net(overlay), net(whole_overlay), "seed {seed}");
            taken += 1;
        }
    }
    assert!(taken >= 25, "the split path was taken {taken} times of 40");

    let (source, root, _, _) = case(7, 4000, 0);
    let keys = |f: &dyn Fn(u8) -> bool| -> ChangeSet {
        source.values.keys().filter(|k| f(k[0])).map(|k| (k.clone(), None)).collect()
    };
    // Every key of one first byte deleted: its subtrie empties, the branch above keeps 15.
    let set = keys(&|b| b == 0x42);
    let (split_root, overlay) = apply(&source, root, &set).unwrap().expect("split");
    let (whole_root, whole_overlay) = whole(&source, root, &set);
    assert_eq!((split_root, net(overlay)), (whole_root, net(whole_overlay)));
    // Every key of first nibble 4 but those of byte 0x42 deleted: the branch merges.
    let set = keys(&|b| b >> 4 == 4 && b != 0x42);
    assert!(apply(&source, root, &set).unwrap().is_none());
    // An empty key's value would be the root's.
    let mut set = keys(&|b| b == 0x42);
    set.insert(Vec::new(), Some(vec![1]));
    assert!(apply(&source, root, &set).unwrap().is_none());
    // Three keys: the top is not two levels of branches.
    let (source, root, set, _) = case(7, 3, 40);
    assert!(apply(&source, root, &set).unwrap().is_none());
}

/// The storage items of a state shaped as Hyperion's: 32-byte prefixes, the first two sharing
/// their first 16 bytes (two items of one pallet).
fn items(rng: &mut Rng) -> Vec<Vec<u8>> {
    let first = rng.bytes(32);
    let second = [&first[..16], &rng.bytes(16)[..]].concat();
    let mut items = vec![first, second];
    items.extend((0..5).map(|_| rng.bytes(32)));
    items
}

/// A key of a map (an item's prefix, then a 16-byte hash and a 20-byte account; now and then a
/// shorter suffix), mostly of the first two items (which share their first 16 bytes, as a
/// pallet's balances and nonces would); or, at times, the key of one of the items that are
/// plain values (the last three).
fn map_key(rng: &mut Rng, items: &[Vec<u8>]) -> Vec<u8> {
    let item = match rng.below(20) {
        0..=8 => &items[0],
        9..=15 => &items[1],
        16 | 17 => &items[2 + rng.below(2) as usize],
        _ => return items[4 + rng.below(3) as usize].clone(),
    };
    match rng.below(60) {
        0 => [&item[..], &rng.bytes(1)[..]].concat(),
        _ => [&item[..], &rng.bytes(36)[..]].concat(),
    }
}

/// A state of about `keys` map-shaped keys and a change set on it: mostly changes of the first
/// map, a few elsewhere (as a block's hooks make), at times every key of one item deleted, or
/// the first item's own key set (a value at the node the split starts from).
fn map_case(seed: u64, keys: usize, changes: usize) -> (Source, H256, ChangeSet, Model) {
    let mut rng = Rng(seed);
    let items = items(&mut rng);
    let mut base: ChangeSet =
        (0..keys).map(|_| (map_key(&mut rng, &items), Some(random_value(&mut rng)))).collect();
    // At times a value at the first two items' shared bytes: on the path to both maps' nodes.
    if rng.below(3) == 0 {
        base.insert(items[0][..16].to_vec(), Some(random_value(&mut rng)));
    }
    let key = |rng: &mut Rng| map_key(rng, &items);
    build(&mut rng, base, changes, key, |rng, present, set| match rng.below(8) {
        0 => {
            let item = &items[2 + rng.below(5) as usize];
            set.extend(present.iter().filter(|k| k.starts_with(item)).map(|k| (k.clone(), None)));
        }
        1 => {
            set.insert(items[0].clone(), Some(random_value(rng)));
        }
        2 => {
            let value = (rng.below(2) == 0).then(|| random_value(rng));
            set.insert(items[0][..16].to_vec(), value);
        }
        _ => {}
    })
}

/// On map-shaped states, the split below the maps' prefixes gives the whole-trie root and the
/// same node changes, wherever it applies.
fn below_same_as_whole_trie(seed: u64, keys: u16, changes: u16) -> TestResult {
    check(map_case(seed, usize::from(keys % 4000), usize::from(changes % 1500)))
}

#[test]
fn split_below_a_shared_prefix_matches_the_whole_trie() {
    QuickCheck::new().tests(80).quickcheck(below_same_as_whole_trie as fn(u64, u16, u16) -> TestResult);
}

/// A block's worth of changes to one map of a large state takes the split below the map's
/// prefix (the top is not split there), also with the hooks' changes elsewhere; a value set at
/// the map's own key, or too few changes, do not.
#[test]
fn split_below_applies_to_a_map_and_not_where_it_reshapes() {
    let mut taken = 0;
    for seed in 0..30 {
        let (source, root, set, _) = map_case(seed, 6000, 1500);
        let (whole_root, whole_overlay) = whole(&source, root, &set);
        let at_top = group_by_first_byte(&set)
            .zip(top_branch(&source, &root))
            .and_then(|(groups, top)| apply_at(&source, &[], root, top, groups, EMPTY_PREFIX, None).unwrap());
        assert!(at_top.is_none(), "seed {seed}: the top split applies");
        if let Some((split_root, overlay)) = apply_below(&source, root, &set).unwrap() {
            assert_eq!(split_root, whole_root, "seed {seed}");
            assert_eq!(net(overlay), net(whole_overlay), "seed {seed}");
            taken += 1;
        }
    }
    assert!(taken >= 20, "the split below was taken {taken} times of 30");

    let mut rng = Rng(11);
    let items = items(&mut rng);
    let (source, root, _, _) = map_case(11, 6000, 0);
    let mut set: ChangeSet = (0..1000)
        .map(|_| ([&items[0][..], &rng.bytes(36)[..]].concat(), Some(random_value(&mut rng))))
        .collect();
    set.insert(items[3].clone(), Some(vec![7; 40]));
    let (whole_root, whole_overlay) = whole(&source, root, &set);
    let (split_root, overlay) = apply_below(&source, root, &set).unwrap().expect("split below");
    assert_eq!((split_root, net(overlay)), (whole_root, net(whole_overlay)));
    // Two maps, each with a cluster of its own, below one pallet's shared bytes.
    let mut two = set.clone();
    two.extend(
        (0..800).map(|_| ([&items[1][..], &rng.bytes(36)[..]].concat(), Some(random_value(&mut rng)))),
    );
    let (whole_root, whole_overlay) = whole(&source, root, &two);
    let (split_root, overlay) = apply_below(&source, root, &two).unwrap().expect("split below two maps");
    assert_eq!((split_root, net(overlay)), (whole_root, net(whole_overlay)));
    let all: Vec<Change<'_>> = two.iter().map(|(k, v)| (k.as_slice(), v.as_deref())).collect();
    let found: Vec<&[u8]> = clusters(&all).into_iter().map(|(prefix, _)| prefix).collect();
    let mut maps = vec![&items[0][..], &items[1][..]];
    maps.sort();
    assert_eq!(found, maps, "in key order");
    // The map's own key: a value at the node the split starts from.
    set.insert(items[0].clone(), Some(vec![1]));
    assert!(apply_below(&source, root, &set).unwrap().is_none());
    // Too few changes below the prefix.
    let few: ChangeSet = set.into_iter().take(100).collect();
    assert!(apply_below(&source, root, &few).unwrap().is_none());
}
