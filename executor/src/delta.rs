//! Commutative deltas: adding to (or taking from) a value without reading it.
//!
//! A fee paid to the block's proposer, a share paid into the Holders Mining pool, a change of the
//! total issuance: every transaction of a block does these to the same few keys. Written as
//! read-modify-write, they would make every transaction depend on the one before it. As deltas
//! they do not conflict: a transaction records `+add −sub` against the key, and only a
//! transaction that *reads* the key needs the deltas before it resolved (in order).
//!
//! The arithmetic belongs to the value's owner: a [`DeltaKind`] says how `+add −sub` applies to
//! an encoded value (a `u128`, the `free` field of an account record, ...). Serial and parallel
//! execution apply each transaction's delta in transaction order, so the result is the same even
//! where the arithmetic saturates.

use std::fmt;

/// How a delta applies to the encoded value of a key.
pub struct DeltaKind {
    /// A name for logs and errors.
    pub name: &'static str,
    /// The value after adding `add`, then subtracting `sub` (`None`: the key is absent). Must be
    /// a pure function: the executor may call it several times for the same inputs. Additions
    /// must add up and so must subtractions: adding `a` then `b` gives what adding `a + b` gives,
    /// and likewise for subtracting (true of saturating and of wrapping arithmetic), so that the
    /// executor may apply a run of deltas as one (see [`Delta::merged`]).
    pub apply: fn(value: Option<&[u8]>, add: u128, sub: u128) -> Vec<u8>,
    /// Whether `add` and `sub` change separate parts of the value (a nonce counted up and a
    /// balance counted down, say), so that a delta's subtraction never changes what a later
    /// addition does: any two deltas then merge into one, `(a1, s1)` then `(a2, s2)` being
    /// `(a1 + a2, s1 + s2)`. When false, only additions in a row or subtractions in a row merge.
    pub independent: bool,
}

impl fmt::Debug for DeltaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// `+add −sub` on a key's value, applied by its [`DeltaKind`].
#[derive(Clone, Copy, Debug)]
pub struct Delta {
    /// Amount added.
    pub add: u128,
    /// Amount subtracted.
    pub sub: u128,
    /// How it applies.
    pub kind: &'static DeltaKind,
}

impl PartialEq for Delta {
    fn eq(&self, other: &Self) -> bool {
        self.add == other.add && self.sub == other.sub && std::ptr::eq(self.kind, other.kind)
    }
}

impl Eq for Delta {}

impl Delta {
    /// Adds `amount`.
    pub fn add(kind: &'static DeltaKind, amount: u128) -> Self {
        Self { add: amount, sub: 0, kind }
    }

    /// Subtracts `amount`.
    pub fn sub(kind: &'static DeltaKind, amount: u128) -> Self {
        Self { add: 0, sub: amount, kind }
    }

    /// This delta followed by `next` (on the same key, so of the same kind), as one delta: the
    /// additions and the subtractions each added up. Exact where [`Delta::merged`] is; else
    /// (a subtraction, then an addition, on a kind whose additions and subtractions are not
    /// independent) the addition comes first, which differs only where the subtraction alone
    /// would have saturated (at zero). Serial and parallel execution combine a transaction's
    /// deltas on a key alike, so they agree either way.
    pub fn then(self, next: Delta) -> Delta {
        assert!(
            std::ptr::eq(self.kind, next.kind),
            "deltas of kinds {:?} and {:?} on one key",
            self.kind,
            next.kind
        );
        Delta {
            add: self.add.saturating_add(next.add),
            sub: self.sub.saturating_add(next.sub),
            kind: self.kind,
        }
    }

    /// The value after this delta.
    pub fn apply(&self, value: Option<&[u8]>) -> Vec<u8> {
        (self.kind.apply)(value, self.add, self.sub)
    }

    /// One delta with the effect of this one followed by `next`, where the rules of
    /// [`DeltaKind::apply`] make that exact: when this one subtracts nothing (additions in a row
    /// add up), or `next` adds nothing (subtractions in a row add up), or the kind's additions
    /// and subtractions are [independent](DeltaKind::independent), and the sums fit. `None`
    /// otherwise: the two must be applied one after the other.
    pub fn merged(self, next: Delta) -> Option<Delta> {
        if !std::ptr::eq(self.kind, next.kind) {
            return None;
        }
        if self.kind.independent {
            Some(Delta {
                add: self.add.checked_add(next.add)?,
                sub: self.sub.checked_add(next.sub)?,
                kind: self.kind,
            })
        } else if self.sub == 0 {
            Some(Delta { add: self.add.checked_add(next.add)?, sub: next.sub, kind: self.kind })
        } else if next.add == 0 {
            Some(Delta { add: self.add, sub: self.sub.checked_add(next.sub)?, kind: self.kind })
        } else {
            None
        }
    }
}

/// A little-endian `u128` (SCALE's encoding), absent meaning zero; saturating.
pub static U128: DeltaKind = DeltaKind { name: "u128", apply: apply_u128, independent: false };

fn apply_u128(value: Option<&[u8]>, add: u128, sub: u128) -> Vec<u8> {
    let current = value.and_then(|v| <[u8; 16]>::try_from(v).ok()).map_or(0, u128::from_le_bytes);
    current.saturating_add(add).saturating_sub(sub).to_le_bytes().to_vec()
}

/// A little-endian `u64` (SCALE's encoding), absent meaning zero; saturating.
pub static U64: DeltaKind = DeltaKind { name: "u64", apply: apply_u64, independent: false };

fn apply_u64(value: Option<&[u8]>, add: u128, sub: u128) -> Vec<u8> {
    let current = value.and_then(|v| <[u8; 8]>::try_from(v).ok()).map_or(0, u64::from_le_bytes);
    let add = u64::try_from(add).unwrap_or(u64::MAX);
    let sub = u64::try_from(sub).unwrap_or(u64::MAX);
    current.saturating_add(add).saturating_sub(sub).to_le_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_combine_and_apply() {
        let d = Delta::add(&U128, 5).then(Delta::sub(&U128, 3));
        assert_eq!(d, Delta { add: 5, sub: 3, kind: &U128 });
        assert_eq!(d.apply(None), 2u128.to_le_bytes().to_vec());
        assert_eq!(d.apply(Some(&10u128.to_le_bytes())), 12u128.to_le_bytes().to_vec());
        assert_eq!(Delta::sub(&U128, 3).apply(Some(&1u128.to_le_bytes())), 0u128.to_le_bytes().to_vec());
        assert_eq!(
            Delta::add(&U64, u128::MAX).apply(Some(&7u64.to_le_bytes())),
            u64::MAX.to_le_bytes().to_vec()
        );
    }

    #[test]
    #[should_panic(expected = "deltas of kinds")]
    fn kinds_do_not_mix() {
        let _ = Delta::add(&U128, 1).then(Delta::add(&U64, 1));
    }
}
