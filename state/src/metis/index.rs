//! The in-memory index: where the latest value of every key is, plus one diff layer per retained
//! block (the keys it changed), and for each key changed by a retained block its history: the
//! blocks that changed it, each with where the value was before. The value of `k` at version `v`
//! is the "before" of the first change of `k` after `v`, else the latest value: one hash lookup
//! and a binary search, however old `v` is.

use hyperion_primitives::Hash;
use std::collections::VecDeque;

use super::table::{KeyTable, Keys, Loc};

/// Keys are hashed with aHash (randomly seeded, so keys chosen by users cannot be made to
/// collide): several times faster than SipHash on 32..64-byte storage keys.
type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

/// Keys whose lookups [`Index::get_many`] overlaps.
const GROUP: usize = 16;

/// What block `version` changed.
struct Layer {
    version: u64,
    root: Hash,
    /// The log segment holding the block's commit record.
    commit_segment: u32,
    keys: Vec<Vec<u8>>,
}

/// The index of all keys, the diff layers of retained versions and the keys' histories.
#[derive(Default)]
pub(crate) struct Index {
    latest: KeyTable,
    /// The latest version and its root.
    head: Option<(u64, Hash)>,
    /// Ascending by version, contiguous, ending at the latest version.
    layers: VecDeque<Layer>,
    /// For each key changed by a retained block: (block, location before it), ascending.
    history: HashMap<Vec<u8>, VecDeque<(u64, Option<Loc>)>>,
    /// The version, root and commit segment of the last pruned layer (or of the base): the
    /// oldest readable version.
    floor: Option<(u64, Hash, u32)>,
}

impl Index {
    /// The latest version and root.
    pub fn head(&self) -> Option<(u64, Hash)> {
        self.head
    }

    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.latest.len()
    }

    /// The oldest readable version.
    pub fn oldest(&self) -> Option<u64> {
        let (latest, _) = self.head?;
        Some(self.layers.front().map_or(latest, |l| l.version.saturating_sub(1)))
    }

    /// Whether `version` can be read.
    pub fn readable(&self, version: u64) -> bool {
        matches!((self.oldest(), self.head), (Some(oldest), Some((latest, _))) if version >= oldest && version <= latest)
    }

    /// The root of a readable version (for the oldest one, its root is only known when the layer
    /// of that version itself is still kept).
    pub fn root(&self, version: u64) -> Option<Hash> {
        match self.head {
            Some((latest, root)) if latest == version => Some(root),
            _ => self
                .layers
                .iter()
                .find(|l| l.version == version)
                .map(|l| l.root)
                .or(self.floor.filter(|(v, ..)| *v == version).map(|(_, root, _)| root)),
        }
    }

    /// The oldest readable version, its root, and the log segment of its commit record: the
    /// log before that segment holds only older blocks.
    pub fn oldest_commit(&self) -> Option<(u64, Hash, u32)> {
        let oldest = self.oldest()?;
        let layer = self.layers.iter().find(|l| l.version == oldest);
        layer.map(|l| (l.version, l.root, l.commit_segment)).or(self.floor.filter(|(v, ..)| *v == oldest))
    }

    /// Starts from a base: the state of block `version` (whose keys are then [`Self::load`]ed),
    /// with nothing older readable. `log_start` is the first log segment after it.
    pub fn set_base(&mut self, version: u64, root: Hash, log_start: u32) {
        assert!(self.head.is_none() && self.latest.len() == 0, "a base comes first");
        self.head = Some((version, root));
        self.floor = Some((version, root, log_start));
    }

    /// Adds a key of the base.
    pub fn load(&mut self, key: &[u8], loc: Loc, records: &impl Keys) {
        self.latest.insert(key, loc, records);
    }

    /// Every key that a readable version may have, sorted.
    pub fn all_keys(&self, records: &impl Keys) -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = self.keys_with_prefix(&[], records).map(<[u8]>::to_vec).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// Points every location for which `retired` holds to the base's record of the same key
    /// (`base`: sorted by key): the latest values that date from before the base, and the
    /// values that retained blocks replaced. With `apply` false, only counts the locations
    /// that have no copy in `base` (a bug if any), changing nothing.
    pub fn remap(
        &mut self,
        base: &[(Vec<u8>, Loc)],
        retired: impl Fn(Loc) -> bool,
        records: &impl Keys,
        apply: bool,
    ) -> usize {
        let moved =
            |key: &[u8]| base.binary_search_by(|(k, _)| k.as_slice().cmp(key)).ok().map(|i| base[i].1);
        let mut stranded = 0;
        self.latest.remap(|loc| {
            let to = retired(loc).then(|| moved(records.key(loc)))?;
            stranded += usize::from(to.is_none());
            to.filter(|_| apply)
        });
        for (key, changes) in &mut self.history {
            for (_, before) in changes.iter_mut().filter(|(_, before)| before.is_some_and(&retired)) {
                match moved(key) {
                    Some(to) if apply => *before = Some(to),
                    Some(_) => {}
                    None => stranded += 1,
                }
            }
        }
        stranded
    }

    /// Where `key`'s value is at `version` (which must be readable). Reads use
    /// [`value`](Self::value), which does not look up the record twice.
    #[cfg(test)]
    pub fn get(&self, key: &[u8], version: u64, keys: &impl Keys) -> Option<Loc> {
        match self.before_change(key, version) {
            Some(before) => before,
            None => self.latest.get(key, keys),
        }
    }

    /// The value of `key` at `version` (which must be readable), read from its record. Reads
    /// of the latest version are inlined into the caller: the fewer instructions a read takes,
    /// the more of the next read's cache misses the processor overlaps with this one's.
    #[inline(always)]
    pub fn value<'r>(&self, key: &[u8], version: u64, records: &'r impl Keys) -> Option<&'r [u8]> {
        if self.head.is_some_and(|(latest, _)| latest == version) {
            return self.latest.get_value(key, records);
        }
        self.value_before_latest(key, version, records)
    }

    /// [`value`](Self::value) at an older version.
    #[inline(never)]
    fn value_before_latest<'r>(&self, key: &[u8], version: u64, records: &'r impl Keys) -> Option<&'r [u8]> {
        match self.before_change(key, version) {
            Some(before) => before.map(|loc| records.record(loc).1),
            None => self.latest.get_value(key, records),
        }
    }

    /// Where `key`'s value was at `version` if a later retained block changed it (`None`: the
    /// latest location is the answer).
    #[inline]
    fn before_change(&self, key: &[u8], version: u64) -> Option<Option<Loc>> {
        if self.head.map(|(latest, _)| latest) == Some(version) {
            return None;
        }
        let changes = self.history.get(key)?;
        let next_change = changes.partition_point(|(changed_at, _)| *changed_at <= version);
        changes.get(next_change).map(|(_, before)| *before)
    }

    /// [`value`](Self::value) of each of `keys` at `version`, in order, as `f(i, value)`. The
    /// lookups go [`GROUP`] at a time, in steps (the keys' histories, then a hash and a request
    /// to memory for every home slot, then for every likely record, then the key comparisons),
    /// so that the cache misses of independent keys overlap instead of following one another.
    pub fn get_many<'r>(
        &self,
        keys: &[&[u8]],
        version: u64,
        records: &'r impl Keys,
        mut f: impl FnMut(usize, Option<&'r [u8]>),
    ) {
        /// Where a key's lookup stands.
        #[derive(Clone, Copy)]
        enum Step {
            /// Found in the key's history.
            Known(Option<Loc>),
            /// In the latest table, with this tag.
            Latest(u64),
        }
        for (group, keys) in keys.chunks(GROUP).enumerate() {
            let mut steps = [Step::Known(None); GROUP];
            for (step, key) in steps.iter_mut().zip(keys) {
                *step = match self.before_change(key, version) {
                    Some(before) => {
                        if let Some(loc) = before {
                            records.prefetch(loc);
                        }
                        Step::Known(before)
                    }
                    None => Step::Latest(self.latest.start_lookup(key)),
                };
            }
            for step in &steps[..keys.len()] {
                if let Step::Latest(tag) = *step {
                    self.latest.prefetch_record(tag, records);
                }
            }
            for (i, (key, step)) in keys.iter().zip(steps).enumerate() {
                let value = match step {
                    Step::Known(before) => before.map(|loc| records.record(loc).1),
                    Step::Latest(tag) => self.latest.get_tagged_value(key, tag, records),
                };
                f(group * GROUP + i, value);
            }
        }
    }

    /// Every key with `prefix` that any readable version may have (superset, unsorted).
    pub fn keys_with_prefix<'a>(
        &'a self,
        prefix: &'a [u8],
        keys: &'a impl Keys,
    ) -> impl Iterator<Item = &'a [u8]> + 'a {
        let latest = self.latest.locs().map(|loc| keys.key(loc));
        latest.chain(self.history.keys().map(Vec::as_slice)).filter(move |k| k.starts_with(prefix))
    }

    /// Applies block `version`'s changes (`None`: deleted) with its root.
    pub fn apply(
        &mut self,
        (version, root, commit_segment): (u64, Hash, u32),
        changes: Vec<(Vec<u8>, Option<Loc>)>,
        records: &impl Keys,
    ) {
        if let Some((latest, _)) = self.head {
            assert_eq!(version, latest + 1, "versions are applied in order");
        }
        let mut keys = Vec::with_capacity(changes.len());
        for (key, loc) in changes {
            let before = match loc {
                Some(loc) => self.latest.insert(&key, loc, records),
                None => self.latest.remove(&key, records),
            };
            let changes = self.history.entry(key.clone()).or_default();
            if changes.back().is_none_or(|(at, _)| *at != version) {
                changes.push_back((version, before));
                keys.push(key);
            }
        }
        self.layers.push_back(Layer { version, root, commit_segment, keys });
        self.head = Some((version, root));
    }

    /// Drops the oldest layers so that at most `retain` remain, but never one that a reader
    /// pinned at a version before it still needs.
    pub fn prune(&mut self, retain: u64, oldest_pinned: Option<u64>) {
        while self.layers.len() as u64 > retain {
            let front = self.layers.front().expect("non-empty").version;
            if oldest_pinned.is_some_and(|pin| pin < front) {
                break;
            }
            let dropped = self.layers.pop_front().expect("non-empty");
            for key in dropped.keys {
                let changes = self.history.get_mut(&key).expect("a changed key has a history");
                let (at, _) = changes.pop_front().expect("a change per layer");
                debug_assert_eq!(at, dropped.version);
                if changes.is_empty() {
                    self.history.remove(&key);
                }
            }
            self.floor = Some((dropped.version, dropped.root, dropped.commit_segment));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records as a list of keys: a location's offset is its position.
    struct KeyList(Vec<&'static [u8]>);

    impl Keys for KeyList {
        fn record(&self, loc: Loc) -> (&[u8], &[u8]) {
            (self.0[loc.offset as usize], &[])
        }
    }

    #[test]
    fn reads_at_versions_and_prunes_around_pins() {
        let keys = KeyList(vec![b"a", b"a", b"b"]);
        let loc = |offset: u32| Some(Loc { segment: 1, offset });
        let mut index = Index::default();
        index.apply((0, Hash([0; 32]), 1), vec![(b"a".to_vec(), loc(0))], &keys);
        index.apply((1, Hash([1; 32]), 1), vec![(b"a".to_vec(), loc(1)), (b"b".to_vec(), loc(2))], &keys);
        index.apply((2, Hash([2; 32]), 1), vec![(b"a".to_vec(), None)], &keys);
        assert_eq!(index.get(b"a", 2, &keys), None);
        assert_eq!(index.get(b"a", 1, &keys), loc(1));
        assert_eq!(index.get(b"a", 0, &keys), loc(0));
        assert_eq!(index.get(b"b", 0, &keys), None);
        assert_eq!(index.get(b"b", 2, &keys), loc(2));
        assert_eq!(index.root(1), Some(Hash([1; 32])));
        index.prune(1, Some(0));
        assert!(index.readable(0), "a reader pinned at 0 keeps the layers it needs");
        index.prune(1, None);
        assert!(!index.readable(0) && index.readable(1) && index.readable(2));
        assert_eq!(index.get(b"a", 1, &keys), loc(1));
    }
}
