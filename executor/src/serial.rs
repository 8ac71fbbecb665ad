//! The serial executor: one transaction after the other over one overlay. It is the reference
//! that parallel execution must match byte for byte, and what small or conflicting blocks run.

use hyperion_state::ChangeSet;

use crate::delta::Delta;
use crate::view::{read_through, Local, View, Writes};
use crate::{Storage, Transactions};

struct SerialView<'a> {
    storage: &'a dyn Storage,
    block: &'a ChangeSet,
    writes: Writes,
}

fn block_value(storage: &dyn Storage, block: &ChangeSet, key: &[u8]) -> Option<Vec<u8>> {
    match block.get(key) {
        Some(value) => value.clone(),
        None => storage.get(key),
    }
}

impl View for SerialView<'_> {
    fn read(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        read_through(&self.writes, key, |key| block_value(self.storage, self.block, key))
    }

    fn write(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.writes.write(key, value);
    }

    fn add(&mut self, key: Vec<u8>, delta: Delta) {
        self.writes.add(key, delta);
    }
}

/// `changes` over `base`.
pub(crate) struct Layered<'a> {
    pub(crate) base: &'a dyn Storage,
    pub(crate) changes: &'a ChangeSet,
}

impl Storage for Layered<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        block_value(self.base, self.changes, key)
    }
}

/// Runs `txs` from `start` on, in order, over `storage`: their outputs and their writes.
pub(crate) fn run<T: Transactions + ?Sized>(
    storage: &dyn Storage,
    txs: &T,
    start: usize,
) -> (Vec<T::Output>, ChangeSet) {
    let mut block = ChangeSet::new();
    let mut outputs = Vec::with_capacity(txs.len().saturating_sub(start));
    for txn in start..txs.len() {
        let mut view = SerialView { storage, block: &block, writes: Writes::default() };
        outputs.push(txs.execute(txn, &mut view));
        let writes = view.writes;
        for (key, local) in writes.into_iter() {
            let value = match local {
                Local::Write(value) => value,
                Local::Delta(delta) => Some(delta.apply(block_value(storage, &block, &key).as_deref())),
            };
            block.insert(key, value);
        }
    }
    (outputs, block)
}
