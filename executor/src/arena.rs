//! An append-only arena that several threads push into at once: each value gets the next
//! position, and a reference to it stays valid while others push (nothing moves).
//!
//! Values live in segments of doubling size (64 slots, then 128, 256, ...), each allocated the
//! first time a push reaches it and kept when the arena is cleared: after its first block, the
//! multi-version memory pushes its entries without allocating. Each slot is a cache line of its
//! own (or several), so that values that different threads write do not share one.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::OnceLock;

use crate::padded::Padded;

/// Slots of the first segment; segment `k` holds `FIRST << k`.
const FIRST: usize = 64;
/// Enough segments for every `u32` position.
const SEGMENTS: usize = 27;

/// One value, on cache lines of its own.
#[repr(align(64))]
struct Slot<T>(OnceLock<T>);

/// A segment's slots, allocated when first reached.
type Segment<T> = OnceLock<Box<[Slot<T>]>>;

pub(crate) struct Arena<T> {
    segments: Box<[Segment<T>]>,
    /// Positions handed out (a pushed value is readable once its push returned). On a cache
    /// line of its own: every push changes it, and what shares a line with the arena (its
    /// segments, read at every access) would otherwise move between the workers' caches.
    len: Padded<AtomicUsize>,
}

/// The segment of position `index`, and its place there.
fn locate(index: usize) -> (usize, usize) {
    let units = index / FIRST + 1;
    let segment = (usize::BITS - 1 - units.leading_zeros()) as usize;
    (segment, index - FIRST * ((1 << segment) - 1))
}

impl<T> Arena<T> {
    pub(crate) fn new() -> Self {
        Self { segments: (0..SEGMENTS).map(|_| OnceLock::new()).collect(), len: Padded(AtomicUsize::new(0)) }
    }

    /// Adds `value` at the next position, and returns that position.
    pub(crate) fn push(&self, value: T) -> usize {
        let index = self.len.fetch_add(1, Relaxed);
        let (segment, offset) = locate(index);
        let slots = self
            .segments
            .get(segment)
            .unwrap_or_else(|| panic!("arena position {index} out of range"))
            .get_or_init(|| (0..FIRST << segment).map(|_| Slot(OnceLock::new())).collect());
        if slots[offset].0.set(value).is_err() {
            unreachable!("arena position {index} handed out twice");
        }
        index
    }

    /// The value at `index`, if its push returned.
    pub(crate) fn get(&self, index: usize) -> Option<&T> {
        let (segment, offset) = locate(index);
        self.segments.get(segment)?.get()?.get(offset)?.0.get()
    }

    /// Positions handed out: with no push under way, the number of values.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    /// The values whose push returned, with their positions, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        (0..self.len()).filter_map(|index| Some((index, self.get(index)?)))
    }

    /// Drops every value, keeping the segments for the next pushes.
    pub(crate) fn clear(&mut self) {
        let len = std::mem::take(self.len.get_mut());
        for index in 0..len {
            let (segment, offset) = locate(index);
            if let Some(slot) = self.segments[segment].get_mut().and_then(|slots| slots.get_mut(offset)) {
                slot.0.take();
            }
        }
    }
}

impl<T> std::ops::Index<usize> for Arena<T> {
    type Output = T;

    fn index(&self, index: usize) -> &T {
        self.get(index).unwrap_or_else(|| panic!("no value at arena position {index}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_map_onto_doubling_segments() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(63), (0, 63));
        assert_eq!(locate(64), (1, 0));
        assert_eq!(locate(191), (1, 127));
        assert_eq!(locate(192), (2, 0));
        let mut expected = (0, 0);
        for index in 0..100_000 {
            assert_eq!(locate(index), expected, "{index}");
            expected.1 += 1;
            if expected.1 == FIRST << expected.0 {
                expected = (expected.0 + 1, 0);
            }
        }
        let (last, _) = locate(u32::MAX as usize);
        assert!(last < SEGMENTS);
    }

    #[test]
    fn concurrent_pushes_get_distinct_positions_and_clear_keeps_segments() {
        let mut arena: Arena<(usize, usize)> = Arena::new();
        for round in 0..3 {
            let positions: Vec<Vec<usize>> = std::thread::scope(|scope| {
                let workers: Vec<_> = (0..4)
                    .map(|thread| {
                        let arena = &arena;
                        scope.spawn(move || (0..5_000).map(|i| arena.push((thread, i))).collect::<Vec<_>>())
                    })
                    .collect();
                workers.into_iter().map(|w| w.join().unwrap()).collect()
            });
            assert_eq!(arena.len(), 20_000);
            for (thread, positions) in positions.iter().enumerate() {
                for (i, &position) in positions.iter().enumerate() {
                    assert_eq!(arena[position], (thread, i), "round {round}");
                }
            }
            assert_eq!(arena.iter().count(), 20_000);
            let allocated = arena.segments.iter().filter(|s| s.get().is_some()).count();
            arena.clear();
            assert_eq!((arena.len(), arena.iter().count()), (0, 0));
            assert!(arena.get(0).is_none());
            assert_eq!(arena.segments.iter().filter(|s| s.get().is_some()).count(), allocated);
        }
    }
}
