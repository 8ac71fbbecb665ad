//! The running node: state, block store, mempool, block production and import.
//!
//! Durability: a block is appended to the block store and synced to disk, then its state is
//! committed to MetisDB (synced too), and only then does anyone (RPC, subscribers) see it. On
//! start the node opens the block store (which drops a torn last record) and the state store
//! (which opens at its last committed block), checks that they belong to this spec's chain, and
//! re-executes the stored blocks that the state has not committed yet (at most the one a crash
//! interrupted), so a node killed at any moment comes back at its last durable block with the
//! same state root, without replaying the chain.

use hyperion_primitives::{Address, Block, Extrinsic, Hash, Header, Receipt};
use hyperion_runtime::{InvalidTransaction, Runtime, StorageRead};
use hyperion_state::{MetisConfig, MetisDb, Snapshot, StateDb};
use parity_scale_codec::DecodeLimit;
use parking_lot::{Mutex, RwLock};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

use crate::block_store::{BlockStore, StoredBlock};
use crate::chain_spec::ChainSpec;
use crate::mempool::{Mempool, PoolConfig, PoolError};
use crate::metrics::Metrics;
use crate::validators::ValidatorSchedule;
use crate::{Error, Result};

/// How many recent states stay readable by default (`--state-pruning`).
pub const STATE_VERSIONS_KEPT: u64 = 256;

/// Settings of a node.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// Mempool limits.
    pub pool: PoolConfig,
    /// The node's name.
    pub name: String,
    /// How many recent states stay readable (`u64::MAX`: all of them).
    pub state_versions: u64,
    /// Bytes of the state store kept in memory to serve reads (`--state-cache-size`).
    pub state_cache_bytes: u64,
    /// Size of the state store's segment files, for a new store (an existing one keeps its
    /// own).
    pub state_segment_bytes: u64,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            pool: PoolConfig::default(),
            name: "hyperion-node".into(),
            state_versions: STATE_VERSIONS_KEPT,
            state_cache_bytes: MetisConfig::default().cache_bytes,
            state_segment_bytes: MetisConfig::default().segment_bytes,
        }
    }
}
/// Nesting depth limit when decoding extrinsics from outside.
const DECODE_DEPTH_LIMIT: u32 = 32;
/// Capacity of the new-head notification channel (slow subscribers skip heads).
const HEADS_CHANNEL: usize = 64;

/// Why an extrinsic submitted from outside was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SubmitError {
    /// The bytes do not decode as an extrinsic, or exceed the size limit.
    #[error(transparent)]
    Invalid(#[from] InvalidTransaction),
    /// The pool refused it.
    #[error(transparent)]
    Pool(#[from] PoolError),
}

/// A block executed on top of the best block, not yet imported.
pub struct ExecutedBlock {
    /// The block with its receipts and events.
    pub stored: StoredBlock,
    /// Its state changes.
    pub changes: hyperion_state::ChangeSet,
    /// Pool extrinsics the builder refused for good (removed from the pool on import).
    pub dropped: Vec<Hash>,
}

struct Chain {
    store: BlockStore,
    best: Header,
}

/// A running node's shared state.
pub struct Node {
    /// The chain spec.
    pub spec: ChainSpec,
    /// The runtime.
    pub runtime: Arc<Runtime>,
    /// The state.
    pub state: Arc<MetisDb>,
    /// The transaction pool.
    pub pool: Mutex<Mempool>,
    /// The genesis block's hash.
    pub genesis_hash: Hash,
    /// New best headers.
    pub heads: broadcast::Sender<Header>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The node's name (`--name`).
    pub name: String,
    chain: RwLock<Chain>,
    /// Set while a state compaction runs in the background.
    compacting: Arc<AtomicBool>,
    /// Nanoseconds a block's execution and import take per extrinsic, averaged over recent
    /// blocks (0 until measured): how many extrinsics fit a proposal's time budget.
    nanos_per_extrinsic: std::sync::atomic::AtomicU64,
    /// The network, once started.
    network: std::sync::OnceLock<crate::network::NetworkHandle>,
    /// Peers and sync progress, for `system_health` and the logs.
    pub sync: SyncStatus,
    /// The validator set of every height.
    pub validators: ValidatorSchedule,
}

/// What the node knows of its peers and of how far behind it is.
#[derive(Default)]
pub struct SyncStatus {
    /// Connected peers, kept by the network.
    pub peers: Arc<std::sync::atomic::AtomicU64>,
    /// The highest height peers are known to be at (0 until one is heard).
    pub target: std::sync::atomic::AtomicU64,
    /// Whether a network was started.
    pub networked: AtomicBool,
}

impl SyncStatus {
    /// Whether the node is more than one block behind what its peers are at.
    pub fn is_syncing(&self, best: u64) -> bool {
        self.target.load(Ordering::Relaxed) > best + 1
    }

    /// Records a height a peer is at.
    pub fn heard_of(&self, height: u64) {
        self.target.fetch_max(height, Ordering::Relaxed);
    }
}

impl Node {
    /// Starts a compaction of the state store on a background thread when one is due and none
    /// is running. Commits and reads go on meanwhile; a crash part way loses nothing (the store
    /// opens with the old base or the new one).
    fn compact_state_if_due(&self) {
        if !self.state.should_compact() || self.compacting.swap(true, Ordering::AcqRel) {
            return;
        }
        let (state, compacting, metrics) =
            (self.state.clone(), self.compacting.clone(), self.metrics.clone());
        let started = Instant::now();
        let spawned = std::thread::Builder::new().name("state-compaction".into()).spawn(move || {
            match state.compact() {
                Ok(Some(stats)) => {
                    metrics.set_state_stats(&state.stats());
                    tracing::info!(
                        target: "hyperion::state",
                        base = stats.base_version,
                        keys = stats.keys,
                        trie_nodes = stats.trie_nodes,
                        files_removed = stats.segments_removed,
                        time_ms = started.elapsed().as_millis() as u64,
                        "🗜  Compacted the state store"
                    );
                }
                Ok(None) => {}
                Err(error) => tracing::error!(target: "hyperion::state", %error, "State compaction failed"),
            }
            compacting.store(false, Ordering::Release);
        });
        if let Err(error) = spawned {
            tracing::error!(target: "hyperion::state", %error, "Could not start the state compaction");
            self.compacting.store(false, Ordering::Release);
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The data folder of a chain: `<base>/chains/<id>`.
pub fn chain_dir(base: &Path, spec: &ChainSpec) -> PathBuf {
    base.join("chains").join(&spec.id)
}

impl Node {
    /// Opens (or creates) the chain under `chain_dir`: the block store in `blocks/`, the state
    /// (MetisDB) in `state/`. Blocks that are stored but whose state was not committed (a crash
    /// between the two) are re-executed.
    pub fn open(
        spec: ChainSpec,
        runtime: Arc<Runtime>,
        chain_dir: &Path,
        options: NodeOptions,
    ) -> Result<Arc<Self>> {
        let NodeOptions { pool, name, state_versions, state_cache_bytes, state_segment_bytes } = options;
        let genesis_changes = spec.genesis_changes(&runtime)?;
        let genesis_root =
            hyperion_state::trie_root(genesis_changes.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k, v))));
        let genesis = Runtime::genesis_header(genesis_root, spec.genesis.timestamp_ms);
        let genesis_hash = genesis.hash();
        runtime.set_genesis_hash(genesis_hash);

        let mut store = BlockStore::open(&chain_dir.join("blocks"))?;
        match store.get(0)? {
            None => store.append(&StoredBlock {
                block: Block { header: genesis.clone(), extrinsics: vec![], certificate: None },
                receipts: vec![],
                block_events: vec![],
            })?,
            Some(stored) if stored.block.hash() == genesis_hash => {}
            Some(stored) => {
                return Err(Error::WrongChain(format!(
                    "{} holds a chain with genesis {}, but chain spec {:?} has genesis {genesis_hash}; \
                     use another --base-path or `hyperion purge-chain --chain ...`",
                    store.path().display(),
                    stored.block.hash(),
                    spec.id
                )))
            }
        }
        let config = MetisConfig {
            retain: state_versions,
            cache_bytes: state_cache_bytes,
            segment_bytes: state_segment_bytes,
        };
        let state = Arc::new(MetisDb::open(&chain_dir.join("state"), config)?);
        if state.latest().is_none() {
            state.commit(0, &genesis_changes, Some(genesis_root))?;
        }
        let best = catch_up(&runtime, state.as_ref(), &store)?;
        let validators = ValidatorSchedule::open(
            &chain_dir.join("consensus"),
            &spec,
            &genesis_changes,
            state.snapshot(best.number)?,
            best.number,
        )?;
        let metrics = Arc::new(Metrics::new());
        metrics.best_height.set(best.number as i64);
        metrics.finalized_height.set(best.number as i64);
        let (heads, _) = broadcast::channel(HEADS_CHANNEL);
        Ok(Arc::new(Self {
            spec,
            runtime,
            state,
            pool: Mutex::new(Mempool::new(pool)),
            genesis_hash,
            heads,
            compacting: Arc::new(AtomicBool::new(false)),
            nanos_per_extrinsic: std::sync::atomic::AtomicU64::new(0),
            network: std::sync::OnceLock::new(),
            sync: SyncStatus::default(),
            metrics,
            name,
            validators,
            chain: RwLock::new(Chain { store, best }),
        }))
    }

    /// The best block's header.
    pub fn best_header(&self) -> Header {
        self.chain.read().best.clone()
    }

    /// The finalized block's header (a single validator finalizes each block it produces).
    pub fn finalized_header(&self) -> Header {
        self.best_header()
    }

    /// A stored block by number.
    pub fn block(&self, number: u64) -> Result<Option<StoredBlock>> {
        Ok(self.chain.read().store.get(number)?)
    }

    /// The number of a stored block by hash.
    pub fn number_of(&self, hash: &Hash) -> Option<u64> {
        self.chain.read().store.number_of(hash)
    }

    /// Where an extrinsic was included: block number and index.
    pub fn extrinsic_location(&self, hash: &Hash) -> Option<(u64, u32)> {
        self.chain.read().store.tx_location(hash)
    }

    /// A pinned snapshot of the state after block `number`.
    pub fn snapshot(&self, number: u64) -> Result<Snapshot> {
        Ok(self.state.snapshot(number)?)
    }

    /// The state after the best block.
    pub fn best_snapshot(&self) -> Snapshot {
        let number = self.chain.read().best.number;
        self.state.snapshot(number).expect("the best state is always kept")
    }

    /// The next nonce of `who`, counting its extrinsics in the pool.
    pub fn next_nonce(&self, who: &Address) -> u64 {
        // The pool first: an import makes its block best before it prunes the pool, so a
        // pruned extrinsic's nonce is always in the snapshot read after.
        let pooled = self.pool.lock().next_nonce(who);
        let on_chain = hyperion_runtime::system::ACCOUNT_NONCE
            .get_or_default(&mut SnapshotReader(self.best_snapshot()), who);
        pooled.map_or(on_chain, |n| n.max(on_chain))
    }

    /// Decodes, checks and pools an extrinsic from outside (RPC), and gossips it to peers.
    pub fn submit(&self, bytes: &[u8]) -> std::result::Result<Hash, SubmitError> {
        let hash = self.submit_without_gossip(bytes)?;
        tracing::debug!(target: "hyperion::pool", %hash, "extrinsic pooled");
        if let Some(network) = self.network.get() {
            network.publish_transaction(bytes.to_vec());
        }
        Ok(hash)
    }

    /// Pools a batch of extrinsics gossiped by a peer (gossip relays it on by itself), their
    /// signatures verified together first; the result of each, in order.
    pub fn submit_batch_from_peer(&self, batch: &[Vec<u8>]) -> Vec<std::result::Result<Hash, SubmitError>> {
        let mut reader = SnapshotReader(self.best_snapshot());
        let decoded: Vec<_> = batch.iter().map(|bytes| Self::decode_bounded(&mut reader, bytes)).collect();
        self.runtime.verify_signatures(decoded.iter().filter_map(|xt| xt.as_ref().ok()));
        decoded
            .into_iter()
            .zip(batch)
            .map(|(xt, bytes)| self.pool_decoded(&mut reader, xt?, bytes.len()))
            .collect()
    }

    fn submit_without_gossip(&self, bytes: &[u8]) -> std::result::Result<Hash, SubmitError> {
        let mut reader = SnapshotReader(self.best_snapshot());
        let xt = Self::decode_bounded(&mut reader, bytes)?;
        self.pool_decoded(&mut reader, xt, bytes.len())
    }

    /// Decodes an extrinsic from outside, refusing it unread if it is over the size limit.
    fn decode_bounded(
        reader: &mut SnapshotReader,
        bytes: &[u8],
    ) -> std::result::Result<Extrinsic, SubmitError> {
        let limits = hyperion_runtime::system::BLOCK_LIMITS.get(reader).expect("set at genesis");
        if bytes.len() > limits.max_extrinsic_bytes as usize {
            return Err(InvalidTransaction::TooLarge {
                size: bytes.len(),
                max: limits.max_extrinsic_bytes as usize,
            }
            .into());
        }
        Ok(decode_extrinsic(bytes)?)
    }

    fn pool_decoded(
        &self,
        reader: &mut SnapshotReader,
        xt: Extrinsic,
        len: usize,
    ) -> std::result::Result<Hash, SubmitError> {
        let valid = self.runtime.validate(reader, &xt, len)?;
        let mut pool = self.pool.lock();
        let hash = pool.submit(Arc::new(xt), len, valid)?;
        self.metrics.mempool_size.set(pool.len() as i64);
        self.metrics.mempool_bytes.set(pool.bytes() as i64);
        Ok(hash)
    }

    /// Connects the node to the network: extrinsics it accepts from RPC are gossiped.
    pub fn set_network(&self, network: crate::network::NetworkHandle) {
        self.sync.networked.store(true, Ordering::Relaxed);
        let _ = self.network.set(network);
    }

    /// Builds a block from the pool on top of the best block, stores and commits it (a chain
    /// without consensus: tests and tools).
    pub fn author_block(&self, proposer: Address) -> Result<Header> {
        let started = Instant::now();
        let ExecutedBlock { stored, changes, dropped } = self.propose_block(proposer, None)?;
        self.import_executed(stored, &changes, started)?;
        self.pool.lock().remove(&dropped);
        Ok(self.best_header())
    }

    /// Builds a block from the pool on top of the best block for consensus, without importing
    /// it: the proposal of this validator. The execution is kept for [`Node::import_decided`].
    /// With a `budget`, the block holds no more extrinsics than this node executes in that
    /// time (as measured on recent blocks), and none is added once it has passed: the block
    /// must reach the other validators, and be executed by them, before their proposal timeout.
    pub fn propose_block(&self, proposer: Address, budget: Option<Duration>) -> Result<ExecutedBlock> {
        let pooled = self.pool.lock().block_source();
        let deadline = budget.map(|budget| Instant::now() + budget);
        let per_extrinsic = match self.nanos_per_extrinsic.load(Ordering::Relaxed) {
            0 => UNMEASURED_NANOS_PER_EXTRINSIC,
            measured => measured,
        };
        let remaining = budget.map_or(usize::MAX, |budget| {
            ((budget.as_nanos() / u128::from(per_extrinsic)) as usize).max(MIN_BUDGETED_EXTRINSICS)
        });
        let mut source = Budgeted { inner: pooled, deadline, remaining };
        let parent = self.best_header();
        let started = Instant::now();
        let built =
            self.runtime.build_block(self.state.as_ref(), &parent, proposer, now_ms(), &mut source)?;
        self.note_execution(started.elapsed(), built.block.extrinsics.len());
        self.metrics.observe_execution(&built.stats, built.block.extrinsics.len());
        let dropped = built
            .rejected
            .iter()
            .filter(|(_, why)| {
                !matches!(why, InvalidTransaction::ExhaustsBlock | InvalidTransaction::FutureNonce { .. })
            })
            .map(|(hash, _)| *hash)
            .collect();
        Ok(ExecutedBlock {
            stored: StoredBlock {
                block: built.block,
                receipts: built.receipts,
                block_events: built.block_events,
            },
            changes: built.changes,
            dropped,
        })
    }

    /// Executes a proposed block on top of the best block: an error when it is not a valid
    /// next block (wrong parent or height, a refused extrinsic, a header that does not match
    /// its execution).
    pub fn check_block(&self, block: Block) -> Result<ExecutedBlock> {
        let parent = self.best_header();
        let started = Instant::now();
        let executed = self.runtime.execute_block(self.state.as_ref(), &parent, &block)?;
        self.note_execution(started.elapsed(), block.extrinsics.len());
        self.metrics.observe_execution(&executed.stats, block.extrinsics.len());
        let stored = StoredBlock { block, receipts: executed.receipts, block_events: executed.block_events };
        Ok(ExecutedBlock { stored, changes: executed.changes, dropped: Vec::new() })
    }

    /// Imports a block consensus decided, with its commit certificate (SCALE-encoded). The
    /// block is executed again if the best block moved since it was executed.
    pub fn import_decided(&self, executed: ExecutedBlock, certificate: Vec<u8>) -> Result<()> {
        let started = Instant::now();
        let mut executed = executed;
        if executed.stored.block.header.parent_hash != self.best_header().hash() {
            let dropped = std::mem::take(&mut executed.dropped);
            executed = ExecutedBlock { dropped, ..self.check_block(executed.stored.block)? };
        }
        let ExecutedBlock { mut stored, changes, dropped } = executed;
        stored.block.certificate = Some(certificate);
        self.import_executed(stored, &changes, started)?;
        self.pool.lock().remove(&dropped);
        Ok(())
    }

    /// Executes and imports a block from outside (`import-blocks`, sync).
    pub fn import_block(&self, block: Block) -> Result<()> {
        let started = Instant::now();
        let parent = self.best_header();
        let executed = self.runtime.execute_block(self.state.as_ref(), &parent, &block)?;
        self.metrics.observe_execution(&executed.stats, block.extrinsics.len());
        let stored = StoredBlock { block, receipts: executed.receipts, block_events: executed.block_events };
        self.import_executed(stored, &executed.changes, started)
    }

    /// Folds a block's execution time into the average time per extrinsic.
    fn note_execution(&self, elapsed: Duration, extrinsics: usize) {
        if extrinsics < 16 {
            return;
        }
        let sample = (elapsed.as_nanos() / extrinsics as u128).clamp(1, u128::from(u32::MAX)) as u64;
        let average = match self.nanos_per_extrinsic.load(Ordering::Relaxed) {
            0 => sample,
            old => (3 * old + sample) / 4,
        };
        self.nanos_per_extrinsic.store(average, Ordering::Relaxed);
    }

    /// Makes an executed block durable, then commits its state and announces it.
    fn import_executed(
        &self,
        stored: StoredBlock,
        changes: &hyperion_state::ChangeSet,
        started: Instant,
    ) -> Result<()> {
        let header = stored.block.header.clone();
        let hash = header.hash();
        let included: Vec<Hash> = stored.block.extrinsics.iter().map(Extrinsic::hash).collect();
        let commit_seconds;
        {
            let mut chain = self.chain.write();
            chain.store.append(&stored)?;
            // The block is durable: if this fails, the next start re-executes it.
            let commit_started = Instant::now();
            self.state.commit(header.number, changes, Some(header.state_root))?;
            commit_seconds = commit_started.elapsed().as_secs_f64();
            chain.best = header.clone();
        }
        let elapsed = started.elapsed();
        let snapshot = self.best_snapshot();
        self.validators.imported(header.number, snapshot.clone())?;
        {
            let mut pool = self.pool.lock();
            let mut reader = SnapshotReader(snapshot);
            pool.on_block_imported(&included, |who| {
                hyperion_runtime::system::ACCOUNT_NONCE.get_or_default(&mut reader, who)
            });
            self.metrics.mempool_size.set(pool.len() as i64);
            self.metrics.mempool_bytes.set(pool.bytes() as i64);
        }
        self.metrics.best_height.set(header.number as i64);
        self.metrics.finalized_height.set(header.number as i64);
        self.metrics.transactions.inc_by(included.len() as u64);
        self.metrics.block_execution_seconds.observe(elapsed.as_secs_f64());
        self.metrics.observe_state(&self.state.stats(), commit_seconds);
        self.compact_state_if_due();
        tracing::info!(
            target: "hyperion::service",
            number = header.number,
            %hash,
            txs = included.len(),
            time_ms = elapsed.as_millis() as u64,
            "✨ Imported block"
        );
        let _ = self.heads.send(header);
        Ok(())
    }

    /// The receipt of an included extrinsic, with the block's hash, number and its index.
    pub fn receipt(&self, hash: &Hash) -> Result<Option<(Header, u32, Receipt)>> {
        let Some((number, index)) = self.extrinsic_location(hash) else { return Ok(None) };
        let Some(stored) = self.block(number)? else { return Ok(None) };
        Ok(stored.receipts.get(index as usize).cloned().map(|r| (stored.block.header, index, r)))
    }
}

/// The time per extrinsic assumed before any block was measured.
const UNMEASURED_NANOS_PER_EXTRINSIC: u64 = 100_000;
/// A time budget never limits a block to fewer extrinsics than this.
const MIN_BUDGETED_EXTRINSICS: usize = 64;

/// A transaction source that offers at most `remaining` more extrinsics, and none once its
/// deadline has passed.
struct Budgeted<S> {
    inner: S,
    deadline: Option<Instant>,
    remaining: usize,
}

impl<S: hyperion_runtime::TransactionSource> hyperion_runtime::TransactionSource for Budgeted<S> {
    fn next(&mut self) -> Option<(Arc<Extrinsic>, usize)> {
        if self.remaining == 0 || self.deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return None;
        }
        self.remaining -= 1;
        self.inner.next()
    }

    fn reject(&mut self, hash: &Hash, reason: &InvalidTransaction) {
        self.inner.reject(hash, reason)
    }
}

/// Decodes an extrinsic, refusing trailing bytes and deep nesting.
pub fn decode_extrinsic(bytes: &[u8]) -> std::result::Result<Extrinsic, InvalidTransaction> {
    let mut input = bytes;
    let xt = Extrinsic::decode_with_depth_limit(DECODE_DEPTH_LIMIT, &mut input)
        .map_err(|e| InvalidTransaction::Malformed(e.to_string()))?;
    if !input.is_empty() {
        return Err(InvalidTransaction::Malformed(format!("{} trailing bytes", input.len())));
    }
    Ok(xt)
}

/// Decodes a whole block from outside (bounded by the caller's read size).
pub fn decode_block(bytes: &[u8]) -> std::result::Result<Block, String> {
    Block::decode_all_with_depth_limit(DECODE_DEPTH_LIMIT, &mut &bytes[..]).map_err(|e| e.to_string())
}

/// Checks that the state belongs to the stored chain and re-executes the stored blocks it does
/// not have yet; returns the best header.
fn catch_up(runtime: &Runtime, state: &MetisDb, store: &BlockStore) -> Result<Header> {
    let (state_number, state_root) = state.latest().expect("genesis is committed");
    let best = store.best_number().expect("genesis is stored");
    let at_state = store.get(state_number)?.ok_or_else(|| {
        Error::WrongChain(format!(
            "the state at {} is at block {state_number}, past the last stored block {best} in {}; \
             purge the chain (`hyperion purge-chain`) and sync again",
            state.path().display(),
            store.path().display()
        ))
    })?;
    if at_state.block.header.state_root != state_root {
        return Err(Error::WrongChain(format!(
            "the state at {} (block {state_number}, root {state_root}) does not belong to the chain in {}",
            state.path().display(),
            store.path().display()
        )));
    }
    if best > state_number {
        tracing::info!(target: "hyperion::service", from = state_number + 1, to = best, "re-executing stored blocks");
    }
    let mut parent = at_state.block.header;
    for number in state_number + 1..=best {
        let stored =
            store.get(number)?.ok_or_else(|| Error::Io(format!("block {number} vanished from the store")))?;
        let executed = runtime.execute_block(state, &parent, &stored.block).map_err(|e| {
            Error::Io(format!(
                "stored block {number} does not re-execute ({e}); the block store at {} is damaged or from another node version",
                store.path().display()
            ))
        })?;
        state.commit(number, &executed.changes, Some(stored.block.header.state_root))?;
        parent = stored.block.header;
    }
    Ok(parent)
}

/// [`StorageRead`] over a snapshot.
pub struct SnapshotReader(pub Snapshot);

impl StorageRead for SnapshotReader {
    fn read_raw(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.get(key)
    }
}
