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

    fn written_keys(&mut self, prefix: &[u8]) -> Vec<Vec<u8>> {
        let block = self.block.range(prefix.to_vec()..).map(|(k, _)| k).take_while(|k| k.starts_with(prefix));
        let mut keys: Vec<Vec<u8>> = block.chain(self.writes.keys_with_prefix(prefix)).cloned().collect();
        keys.sort();
        keys.dedup();
        keys
    }
}

/// Runs `txs` from `start` on, in order, over `storage` and `block`, the writes of the
/// transactions before `start`: their outputs, and the block's writes with theirs.
pub(crate) fn run<T: Transactions + ?Sized>(
    storage: &dyn Storage,
    txs: &T,
    start: usize,
    mut block: ChangeSet,
) -> (Vec<T::Output>, ChangeSet) {
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
