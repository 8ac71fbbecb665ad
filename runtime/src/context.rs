//! What a pallet sees while it runs: state access, block information, events.
//!
//! Reads, writes and deltas go through a [`View`]: the block's overlay over the parent state
//! for block hooks and genesis, the executor's view of one transaction for extrinsics (see
//! `hyperion-executor`). [`Context`] adds one level of storage transaction on top, so that a
//! failed call can be undone while its fee stays paid.

use hyperion_executor::{Assumption, Delta, Storage, View, Writes};
use hyperion_primitives::{Address, BlockNumber, EventRecord, Hash};
use hyperion_state::{ChangeSet, Snapshot};
use parity_scale_codec::Encode;

/// A block's writes over a pinned parent snapshot. Deltas apply at once.
pub struct BlockOverlay {
    base: Snapshot,
    changes: ChangeSet,
}

impl BlockOverlay {
    /// An empty overlay over `base`.
    pub fn new(base: Snapshot) -> Self {
        Self { base, changes: ChangeSet::new() }
    }

    /// Takes in the final values of keys written on top of this overlay (by the executor). The
    /// smaller of the two maps is merged into the larger (the block hooks write a few keys, the
    /// extrinsics thousands); where both hold a key, the new value wins.
    pub fn absorb(&mut self, mut changes: ChangeSet) {
        if changes.len() > self.changes.len() {
            std::mem::swap(&mut self.changes, &mut changes);
            for (key, value) in changes {
                self.changes.entry(key).or_insert(value);
            }
        } else {
            self.changes.extend(changes);
        }
    }

    /// The writes made so far.
    pub fn into_changes(self) -> ChangeSet {
        self.changes
    }
}

impl Storage for BlockOverlay {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.changes.get(key) {
            Some(value) => value.clone(),
            None => self.base.get(key),
        }
    }
}

impl View for BlockOverlay {
    fn read(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        Storage::get(self, key)
    }

    fn write(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.changes.insert(key, value);
    }

    fn add(&mut self, key: Vec<u8>, delta: Delta) {
        let value = delta.apply(Storage::get(self, &key).as_deref());
        self.changes.insert(key, Some(value));
    }

    fn written_keys(&mut self, prefix: &[u8]) -> Vec<Vec<u8>> {
        self.changes
            .range(prefix.to_vec()..)
            .map(|(k, _)| k.clone())
            .take_while(|k| k.starts_with(prefix))
            .collect()
    }
}

/// Read access to typed storage.
pub trait StorageRead {
    /// The raw value of a key.
    fn read_raw(&mut self, key: &[u8]) -> Option<Vec<u8>>;
}

/// Write access to typed storage.
pub trait StorageWrite: StorageRead {
    /// Writes (`Some`) or deletes (`None`) a raw key.
    fn write_raw(&mut self, key: Vec<u8>, value: Option<Vec<u8>>);
    /// Adds `delta` to a raw key without reading it (see [`Delta`]).
    fn add_raw(&mut self, key: Vec<u8>, delta: Delta);
}

/// Facts about the block being built or executed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BlockInfo {
    /// The block's number.
    pub number: BlockNumber,
    /// The block's timestamp, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// The block's proposer, who receives its share of fees.
    pub proposer: Address,
    /// The parent block's hash.
    pub parent_hash: Hash,
    /// The chain's genesis hash (zero while genesis itself is built): what signatures of this
    /// chain commit to.
    pub genesis_hash: Hash,
}

/// The dispatch context of a call or hook.
pub struct Context<'a> {
    view: &'a mut dyn View,
    /// Writes and deltas of the open storage transaction, if any.
    pending: Option<Writes>,
    events: Vec<EventRecord>,
    /// Number of events that belong to the committed part.
    committed_events: usize,
    block: BlockInfo,
    pallet: u8,
}

impl<'a> Context<'a> {
    /// A context over `view` for `block`.
    pub fn new(view: &'a mut dyn View, block: BlockInfo) -> Self {
        Self { view, pending: None, events: Vec::new(), committed_events: 0, block, pallet: 0 }
    }

    /// The block being built or executed.
    pub fn block(&self) -> &BlockInfo {
        &self.block
    }

    /// The index of the pallet currently running (for its events and errors).
    pub fn pallet_index(&self) -> u8 {
        self.pallet
    }

    pub(crate) fn set_pallet(&mut self, index: u8) {
        self.pallet = index;
    }

    /// Emits an event of the running pallet. `event` is the pallet's SCALE `Event` enum: its
    /// first encoded byte is the variant index.
    pub fn deposit_event<E: Encode>(&mut self, event: &E) {
        self.deposit_event_of(self.pallet, event);
    }

    /// Emits an event on behalf of the pallet at `pallet` (for pallets that are called through
    /// a trait by another pallet, e.g. balances' transfers).
    pub fn deposit_event_of<E: Encode>(&mut self, pallet: u8, event: &E) {
        let encoded = event.encode();
        assert!(!encoded.is_empty(), "an event enum always encodes its variant");
        self.events.push(EventRecord { pallet, event: encoded[0], data: encoded[1..].to_vec() });
        if self.pending.is_none() {
            self.committed_events = self.events.len();
        }
    }

    /// Whether `key`'s value satisfies `assumption`, asked without making the transaction
    /// depend on the exact value (see [`View::assume`]): on `true`, the caller must not read the
    /// key, must change it only through deltas, and must do what it would have done with any
    /// value that satisfies the assumption. A key the open storage transaction changed is read.
    pub fn assume(&mut self, key: &[u8], assumption: Assumption) -> bool {
        match &self.pending {
            Some(pending) if pending.contains(key) => assumption.holds(self.read_raw(key).as_deref()),
            _ => self.view.assume(key, assumption),
        }
    }

    /// Opens a storage transaction. Panics if one is already open.
    pub(crate) fn begin(&mut self) {
        assert!(self.pending.is_none(), "storage transactions do not nest");
        self.pending = Some(Writes::new());
    }

    /// Applies the open transaction's writes and events.
    pub(crate) fn commit(&mut self) {
        let pending = self.pending.take().expect("commit without a transaction");
        pending.apply_to(self.view);
        self.committed_events = self.events.len();
    }

    /// Discards the open transaction's writes and events.
    pub(crate) fn rollback(&mut self) {
        self.pending.take().expect("rollback without a transaction");
        self.events.truncate(self.committed_events);
    }

    /// Takes the events emitted so far (all committed).
    pub(crate) fn take_events(&mut self) -> Vec<EventRecord> {
        assert!(self.pending.is_none(), "events taken inside a transaction");
        self.committed_events = 0;
        std::mem::take(&mut self.events)
    }
}

impl StorageRead for Context<'_> {
    fn read_raw(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        match &self.pending {
            Some(pending) => pending.read(key, |key| self.view.read(key)),
            None => self.view.read(key),
        }
    }
}

impl StorageWrite for Context<'_> {
    fn write_raw(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        match self.pending.as_mut() {
            Some(pending) => {
                pending.write(key, value);
            }
            None => self.view.write(key, value),
        }
    }

    fn add_raw(&mut self, key: Vec<u8>, delta: Delta) {
        match self.pending.as_mut() {
            Some(pending) => pending.add(key, delta),
            None => self.view.add(key, delta),
        }
    }
}

/// Read-only access to a pinned state, for queries.
pub struct QueryContext {
    snapshot: Snapshot,
}

impl QueryContext {
    /// Queries `snapshot`.
    pub fn new(snapshot: Snapshot) -> Self {
        Self { snapshot }
    }

    /// The pinned state, for prefix iteration.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }
}

impl StorageRead for QueryContext {
    fn read_raw(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.snapshot.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyperion_state::{MemoryStateDb, StateDb};

    fn info() -> BlockInfo {
        BlockInfo {
            number: 1,
            timestamp_ms: 0,
            proposer: Address::ZERO,
            parent_hash: Hash::ZERO,
            genesis_hash: Hash::ZERO,
        }
    }

    #[test]
    fn rollback_discards_writes_and_events() {
        let db = MemoryStateDb::new(1);
        db.commit(0, &ChangeSet::from([(b"k".to_vec(), Some(b"0".to_vec()))]), None).unwrap();
        let mut overlay = BlockOverlay::new(db.snapshot(0).unwrap());
        let mut ctx = Context::new(&mut overlay, info());
        ctx.write_raw(b"fee".to_vec(), Some(b"paid".to_vec()));
        ctx.deposit_event(&(0u8, 1u32));
        ctx.begin();
        ctx.write_raw(b"k".to_vec(), Some(b"1".to_vec()));
        assert_eq!(ctx.read_raw(b"k"), Some(b"1".to_vec()));
        ctx.deposit_event(&(1u8,));
        ctx.rollback();
        assert_eq!(ctx.read_raw(b"k"), Some(b"0".to_vec()));
        assert_eq!(ctx.take_events().len(), 1);
        let changes = overlay.into_changes();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes.get(b"fee".as_slice()), Some(&Some(b"paid".to_vec())));
    }
}
