//! The latest-value index: an open-addressing hash table from keys to record locations that
//! does not store the keys.
//!
//! ```text
//! slot = tag (u64: the key's 64-bit hash, 0 = empty) ++ segment (u32) ++ record offset (u32)
//! ```
//!
//! A slot is 16 bytes, four to a cache line. A lookup walks the slots from the key's home slot
//! (linear probing) and, for each slot whose tag equals the key's, compares the key stored in
//! the record the slot points at; the read then takes the value from that same record. So a
//! read touches the table's cache line and the record, and a store of `n` keys keeps `16 n / load`
//! bytes in memory whatever the keys' sizes. Deletion shifts later slots back (no tombstones);
//! the table doubles when it is 3/4 full.
//!
//! Tags come from aHash with a per-process random seed: keys chosen by users cannot be made to
//! pile up in one probe run, and two keys with the same tag are still told apart by their bytes.

/// Where a record lives: its segment and its offset there.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(C)]
pub(crate) struct Loc {
    /// Segment id (1-based).
    pub segment: u32,
    /// Offset of the record in the segment.
    pub offset: u32,
}

/// Gives the key stored in the record at a location.
pub(crate) trait Keys {
    /// The key and value of the record at `loc`, which must be a put record, read together (a
    /// lookup takes the value from the record whose key it compared, without finding it again).
    fn record(&self, loc: Loc) -> (&[u8], &[u8]);

    /// The key of the record at `loc`.
    #[inline(always)]
    fn key(&self, loc: Loc) -> &[u8] {
        self.record(loc).0
    }

    /// Asks the memory for the start of the record at `loc` ahead of a read (a hint).
    fn prefetch(&self, _loc: Loc) {}
}

/// Asks the memory for the cache line holding `ptr` ahead of a read. Only a hint: it changes
/// no result, and no address makes it fault.
#[inline(always)]
pub(crate) fn prefetch(ptr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing the program sees and cannot fault, whatever the address.
    #[allow(unsafe_code)]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

/// Whether two keys are equal. Storage keys of 32 bytes (two 16-byte hashes, as the bench's
/// and most maps' keys are) are compared inline instead of through a `memcmp` call: a read is
/// a few hundred instructions, and the fewer there are, the more of the next read's memory
/// accesses the processor starts while this one waits for memory.
#[inline(always)]
fn same_key(a: &[u8], b: &[u8]) -> bool {
    match (<&[u8; 32]>::try_from(a), <&[u8; 32]>::try_from(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Slot {
    tag: u64,
    loc: Loc,
}

const EMPTY: Slot = Slot { tag: 0, loc: Loc { segment: 0, offset: 0 } };
/// Slots of the first allocation.
const MIN_SLOTS: usize = 16;

/// See the module docs.
pub(crate) struct KeyTable {
    slots: Slots,
    len: usize,
    hasher: ahash::RandomState,
    /// Tests narrow tags to force collisions.
    #[cfg(test)]
    tag_mask: u64,
}

impl Default for KeyTable {
    fn default() -> Self {
        Self {
            slots: Slots::new(0),
            len: 0,
            hasher: ahash::RandomState::new(),
            #[cfg(test)]
            tag_mask: u64::MAX,
        }
    }
}

impl KeyTable {
    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn tag(&self, key: &[u8]) -> u64 {
        let hash = self.hasher.hash_one(key);
        #[cfg(test)]
        let hash = hash & self.tag_mask;
        hash.max(1)
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The slot holding `key`, if any.
    #[inline]
    fn find(&self, key: &[u8], keys: &impl Keys) -> Option<usize> {
        self.probe(key, self.tag(key), keys).map(|(at, _)| at)
    }

    /// The slot holding `key` (whose tag is `tag`) and the value of the record it points at.
    #[inline(always)]
    fn probe<'k>(&self, key: &[u8], tag: u64, keys: &'k impl Keys) -> Option<(usize, &'k [u8])> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let mut at = tag as usize & mask;
        loop {
            let slot = self.slots[at];
            if slot.tag == 0 {
                return None;
            }
            if slot.tag == tag {
                let (stored, value) = keys.record(slot.loc);
                if same_key(stored, key) {
                    return Some((at, value));
                }
            }
            at = (at + 1) & mask;
        }
    }

    /// Where `key`'s record is.
    #[inline]
    pub fn get(&self, key: &[u8], keys: &impl Keys) -> Option<Loc> {
        self.find(key, keys).map(|at| self.slots[at].loc)
    }

    /// The value in `key`'s record: [`get`](Self::get) and the record's value, with one read
    /// of the record (the read path).
    #[inline(always)]
    pub fn get_value<'k>(&self, key: &[u8], keys: &'k impl Keys) -> Option<&'k [u8]> {
        self.probe(key, self.tag(key), keys).map(|(_, value)| value)
    }

    /// First step of a lookup whose memory accesses overlap with other lookups': the key's
    /// tag, with the line of its home slot asked from memory.
    #[inline]
    pub fn start_lookup(&self, key: &[u8]) -> u64 {
        let tag = self.tag(key);
        if self.len != 0 {
            prefetch(std::ptr::from_ref(&self.slots[tag as usize & self.mask()]).cast());
        }
        tag
    }

    /// Second step: asks for the record of the first slot with `tag` from its home (most
    /// likely the key's), without reading the record.
    #[inline]
    pub fn prefetch_record(&self, tag: u64, keys: &impl Keys) {
        if self.len == 0 {
            return;
        }
        let mask = self.mask();
        let mut at = tag as usize & mask;
        loop {
            let slot = self.slots[at];
            if slot.tag == 0 {
                return;
            }
            if slot.tag == tag {
                return keys.prefetch(slot.loc);
            }
            at = (at + 1) & mask;
        }
    }

    /// Last step: [`get_value`](Self::get_value) with the tag of the first.
    #[inline]
    pub fn get_tagged_value<'k>(&self, key: &[u8], tag: u64, keys: &'k impl Keys) -> Option<&'k [u8]> {
        self.probe(key, tag, keys).map(|(_, value)| value)
    }

    /// Points `key` at `loc` (a record of that key); returns where it pointed before.
    pub fn insert(&mut self, key: &[u8], loc: Loc, keys: &impl Keys) -> Option<Loc> {
        if let Some(at) = self.find(key, keys) {
            return Some(std::mem::replace(&mut self.slots[at].loc, loc));
        }
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let (tag, mask) = (self.tag(key), self.mask());
        let mut at = tag as usize & mask;
        while self.slots[at].tag != 0 {
            at = (at + 1) & mask;
        }
        self.slots[at] = Slot { tag, loc };
        self.len += 1;
        None
    }

    /// Removes `key`; returns where it pointed.
    pub fn remove(&mut self, key: &[u8], keys: &impl Keys) -> Option<Loc> {
        let at = self.find(key, keys)?;
        let removed = self.slots[at].loc;
        let mask = self.mask();
        // Shift back every later slot of the probe run that may move into the hole: one whose
        // home is not between the hole and itself.
        let (mut hole, mut next) = (at, (at + 1) & mask);
        while self.slots[next].tag != 0 {
            let home = self.slots[next].tag as usize & mask;
            if next.wrapping_sub(home) & mask >= next.wrapping_sub(hole) & mask {
                self.slots[hole] = self.slots[next];
                hole = next;
            }
            next = (next + 1) & mask;
        }
        self.slots[hole] = EMPTY;
        self.len -= 1;
        Some(removed)
    }

    /// Every location, in no particular order.
    pub fn locs(&self) -> impl Iterator<Item = Loc> + '_ {
        self.slots.iter().filter(|s| s.tag != 0).map(|s| s.loc)
    }

    /// Replaces each location for which `f` returns a new one (keys stay where they are).
    pub fn remap(&mut self, mut f: impl FnMut(Loc) -> Option<Loc>) {
        for slot in self.slots.iter_mut().filter(|s| s.tag != 0) {
            if let Some(loc) = f(slot.loc) {
                slot.loc = loc;
            }
        }
    }

    /// Doubles the slots (tags give the new homes: no key is read).
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, Slots::new(size));
        let mask = size - 1;
        for &slot in old.iter().filter(|s| s.tag != 0) {
            let mut at = slot.tag as usize & mask;
            while self.slots[at].tag != 0 {
                at = (at + 1) & mask;
            }
            self.slots[at] = slot;
        }
    }
}

/// The slot array, in anonymous memory that asks for transparent huge pages: a table of
/// millions of slots then costs few TLB entries, and a lookup one cache miss rather than a miss
/// plus a page walk. Fresh memory is zeroed, which is all slots empty.
struct Slots {
    map: memmap2::MmapMut,
    len: usize,
}

impl Slots {
    fn new(len: usize) -> Self {
        // An empty table maps one byte (anonymous maps cannot be empty) and has no slots.
        let map = memmap2::MmapMut::map_anon((len * std::mem::size_of::<Slot>()).max(1))
            .expect("out of memory for the MetisDB key table");
        if len * std::mem::size_of::<Slot>() >= 2 << 20 {
            // Only a hint: without huge pages the table works the same, a little slower.
            let _ = map.advise(memmap2::Advice::HugePage);
        }
        Self { map, len }
    }
}

impl std::ops::Deref for Slots {
    type Target = [Slot];

    #[allow(unsafe_code)]
    fn deref(&self) -> &[Slot] {
        // SAFETY: the map is page-aligned (more than `Slot`'s alignment of 8) and `len` slots
        // long; `Slot` is `repr(C)` of integers only, so every byte pattern (zeros included)
        // is a valid slot.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().cast::<Slot>(), self.len) }
    }
}

impl std::ops::DerefMut for Slots {
    #[allow(unsafe_code)]
    fn deref_mut(&mut self) -> &mut [Slot] {
        // SAFETY: as in `deref`, and the map is borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr().cast::<Slot>(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;
    use std::collections::HashMap;

    /// Records as a list of keys: a location's offset is its position.
    struct KeyList(Vec<Vec<u8>>);

    impl Keys for KeyList {
        /// A record's value is its key's last byte: what `get_value` must return.
        fn record(&self, loc: Loc) -> (&[u8], &[u8]) {
            let key = &self.0[loc.offset as usize];
            (key, &key[key.len() - 1..])
        }
    }

    fn check(ops: Vec<(u8, bool)>, tag_mask: u64) -> bool {
        let mut table = KeyTable { tag_mask, ..KeyTable::default() };
        let mut records = KeyList(Vec::new());
        let mut model: HashMap<Vec<u8>, Loc> = HashMap::new();
        for (key, put) in ops {
            let key = vec![key; 1 + key as usize % 40];
            if put {
                let loc = Loc { segment: 1, offset: records.0.len() as u32 };
                records.0.push(key.clone());
                if table.insert(&key, loc, &records) != model.insert(key, loc) {
                    return false;
                }
            } else if table.remove(&key, &records) != model.remove(&key) {
                return false;
            }
            if table.len() != model.len() || table.locs().count() != model.len() {
                return false;
            }
        }
        model.iter().all(|(key, loc)| table.get(key, &records) == Some(*loc))
            && (0..=255u8).all(|k| {
                let key = vec![k; 1 + k as usize % 40];
                // The stepped lookup of `get_many` finds what `get` finds.
                let tag = table.start_lookup(&key);
                table.prefetch_record(tag, &records);
                let found = table.get(&key, &records);
                let value = found.map(|loc| records.record(loc).1);
                found == model.get(&key).copied()
                    && table.get_value(&key, &records) == value
                    && table.get_tagged_value(&key, tag, &records) == value
            })
    }

    quickcheck! {
        /// Inserts and removes give the reads of a `HashMap`, with real tags and with tags
        /// narrowed to four values (every probe run full of collisions).
        fn behaves_like_a_map(ops: Vec<(u8, bool)>) -> bool {
            check(ops.clone(), u64::MAX) && check(ops, 0b11)
        }
    }

    #[test]
    fn keys_compare_by_every_byte() {
        let key = [7u8; 32];
        assert!(same_key(&key, &key.clone()));
        for i in 0..32 {
            let mut other = key;
            other[i] ^= 1;
            assert!(!same_key(&key, &other), "a difference at byte {i}");
        }
        assert!(!same_key(&key, &key[..31]) && !same_key(&key[..31], &key));
        assert!(same_key(&key[..5], &[7u8; 5]) && !same_key(&[7u8; 33], &[7u8; 32]));
    }

    #[test]
    fn grows_and_shrinks_across_wraparound() {
        let mut ops: Vec<(u8, bool)> = (0..=255u8).map(|k| (k, true)).collect();
        ops.extend((0..=255u8).step_by(3).map(|k| (k, false)));
        ops.extend((0..=255u8).map(|k| (k, true)));
        ops.extend((0..=255u8).map(|k| (k, false)));
        assert!(check(ops.clone(), u64::MAX));
        assert!(check(ops, 0b111));
    }
}
