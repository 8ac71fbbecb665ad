//! What a transaction executes against, and the writes it buffers.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::assume::Assumption;
use crate::delta::Delta;

/// The state as one transaction of a block sees it: the block's state before the transaction,
/// plus the transaction's own writes.
///
/// Writes are buffered until the transaction ends; a transaction always reads its own writes.
/// In parallel execution a read may find that an earlier transaction is being re-executed: the
/// view then unwinds the transaction (a panic that the executor catches and that never reaches
/// the panic hook) and runs it again later, so code running against a view must not catch
/// panics itself.
pub trait View {
    /// The value of `key`, `None` when absent.
    fn read(&mut self, key: &[u8]) -> Option<Vec<u8>>;
    /// Writes (`Some`) or deletes (`None`) `key`.
    fn write(&mut self, key: Vec<u8>, value: Option<Vec<u8>>);
    /// Adds `delta` to `key` without reading it.
    fn add(&mut self, key: Vec<u8>, delta: Delta);
    /// The keys under `prefix` that this block wrote (set, deleted or added to) before this
    /// transaction or in it so far, in key order. With the state before the block (which the
    /// caller lists itself), these are every key that may exist under `prefix`: what a caller
    /// needs to delete a whole range, such as a self-destructed contract's storage. In
    /// parallel execution the answer is validated like a read.
    fn written_keys(&mut self, prefix: &[u8]) -> Vec<Vec<u8>>;
    /// Whether `key`'s value, as this transaction would read it, satisfies `assumption`, asked
    /// without making the transaction depend on the exact value. On `true` the caller goes on
    /// as if it had read some value that satisfies the assumption, and must then do exactly
    /// what it would have done with the real one while using no more than the assumption: it
    /// does not read the key, and changes it only through deltas (a transfer's sender: one
    /// more nonce, the cost taken off the balance, whatever the balance). The executor keeps
    /// such an execution only once the assumption holds on the value it would have read. On
    /// `false` the assumption does not hold on the value the caller reads next (the key is
    /// read for the answer, as a read: the answer and the value agree, and a change of the
    /// value makes the execution run again).
    ///
    /// Serial execution reads the key and answers (the default); parallel execution answers
    /// `true` at a transaction's first execution without reading anything, so that a sender's
    /// transactions do not wait for each other, and checks the assumption when it validates the
    /// transaction (see [`crate::Condition`]).
    fn assume(&mut self, key: &[u8], assumption: Assumption) -> bool {
        assumption.holds(self.read(key).as_deref())
    }
}

/// One buffered write of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Local {
    /// The value (`None`: deleted).
    Write(Option<Vec<u8>>),
    /// A delta on whatever the value is before the transaction.
    Delta(Delta),
}

/// Buffered writes and deltas over a [`View`]: a transaction's own writes here, and a storage
/// transaction that can still be rolled back in the runtime.
#[derive(Debug)]
pub struct Writes(HashMap<Vec<u8>, Local, ahash::RandomState>);

impl Default for Writes {
    fn default() -> Self {
        Self(HashMap::with_hasher(hasher()))
    }
}

/// The hasher of a transaction's own maps: random per process, made once. Each
/// `RandomState::new()` adds to one global counter, which workers would otherwise pass between
/// their caches several times per transaction.
pub(crate) fn hasher() -> ahash::RandomState {
    static STATE: OnceLock<ahash::RandomState> = OnceLock::new();
    STATE.get_or_init(ahash::RandomState::new).clone()
}

impl Writes {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// `key` as seen through the buffer: `underlying` gives the value below it, and is called
    /// only when the buffer does not hide it.
    pub fn read(&self, key: &[u8], underlying: impl FnOnce(&[u8]) -> Option<Vec<u8>>) -> Option<Vec<u8>> {
        read_through(self, key, underlying)
    }

    /// Hands every buffered write and delta to `view`.
    pub fn apply_to(self, view: &mut dyn View) {
        for (key, local) in self.0 {
            match local {
                Local::Write(value) => view.write(key, value),
                Local::Delta(delta) => view.add(key, delta),
            }
        }
    }

    /// The transaction's own view of `key`: `Some(value)` when it wrote the key, `Err(delta)`
    /// when it only added to it, `None` when it did neither.
    pub(crate) fn get(&self, key: &[u8]) -> Option<Result<&Option<Vec<u8>>, Delta>> {
        self.0.get(key).map(|local| match local {
            Local::Write(value) => Ok(value),
            Local::Delta(delta) => Err(*delta),
        })
    }

    /// Buffers a write (`None`: delete).
    pub fn write(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.0.insert(key, Local::Write(value));
    }

    /// Buffers a delta: on top of a buffered write of the key if there is one, else combined
    /// with the key's earlier deltas.
    pub fn add(&mut self, key: Vec<u8>, delta: Delta) {
        match self.0.get_mut(&key) {
            Some(Local::Write(value)) => *value = Some(delta.apply(value.as_deref())),
            Some(Local::Delta(earlier)) => *earlier = earlier.then(delta),
            None => {
                self.0.insert(key, Local::Delta(delta));
            }
        }
    }

    /// Whether `key` is buffered (written, deleted or added to).
    pub fn contains(&self, key: &[u8]) -> bool {
        self.0.contains_key(key)
    }

    /// How many keys are buffered.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn into_iter(self) -> impl Iterator<Item = (Vec<u8>, Local)> {
        self.0.into_iter()
    }

    /// The buffered keys under `prefix`.
    pub(crate) fn keys_with_prefix<'a>(&'a self, prefix: &'a [u8]) -> impl Iterator<Item = &'a Vec<u8>> + 'a {
        self.0.keys().filter(move |k| k.starts_with(prefix))
    }
}

/// Reads through a transaction's own writes: `underlying` gives the value before the
/// transaction (called only when needed).
pub(crate) fn read_through(
    writes: &Writes,
    key: &[u8],
    underlying: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
) -> Option<Vec<u8>> {
    match writes.get(key) {
        Some(Ok(value)) => value.clone(),
        Some(Err(delta)) => Some(delta.apply(underlying(key).as_deref())),
        None => underlying(key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::U128;

    fn n(v: u128) -> Option<Vec<u8>> {
        Some(v.to_le_bytes().to_vec())
    }

    #[test]
    fn own_writes_and_deltas_are_read_back() {
        let mut writes = Writes::default();
        let base = |_: &[u8]| n(100);
        writes.add(b"a".to_vec(), Delta::add(&U128, 5));
        writes.add(b"a".to_vec(), Delta::sub(&U128, 1));
        assert_eq!(read_through(&writes, b"a", base), n(104));
        writes.write(b"a".to_vec(), n(7));
        writes.add(b"a".to_vec(), Delta::add(&U128, 1));
        assert_eq!(read_through(&writes, b"a", |_| panic!("a write hides the state")), n(8));
        writes.write(b"b".to_vec(), None);
        assert_eq!(read_through(&writes, b"b", base), None);
        assert_eq!(read_through(&writes, b"c", base), n(100));
    }
}
