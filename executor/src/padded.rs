//! A value on cache lines of its own.
//!
//! Two workers that write values sharing a 64-byte line pass that line between their cores at
//! every write, even when neither reads the other's value ("false sharing"). The scheduler's
//! shared indices, the per-transaction slots (written by whichever worker runs or validates the
//! transaction, while its neighbours are another worker's) and the workers' counters are each
//! kept on lines of their own.

use std::ops::{Deref, DerefMut};

/// `T`, aligned (and so padded) to a cache line.
#[repr(align(64))]
#[derive(Default, Debug)]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> Deref for Padded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Padded<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_never_share_a_line() {
        let slots: Vec<Padded<u8>> = (0..4).map(Padded).collect();
        for pair in slots.windows(2) {
            let (a, b) = (&*pair[0] as *const u8 as usize, &*pair[1] as *const u8 as usize);
            assert_eq!(a % 64, 0);
            assert!(b - a >= 64);
        }
    }
}
