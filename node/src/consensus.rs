//! Consensus in the node: drives `hyperion-consensus`'s engine with real timers, builds blocks
//! when this validator proposes, executes proposals, imports decided blocks with their commit
//! certificates, and keeps the sign record durable.
//!
//! The engine's outputs are carried out in order. A `Persist` is written and synced before the
//! next output is looked at, so no signed message leaves before its record is on disk. Block
//! building, execution and import run on blocking threads; their results come back to the
//! engine as inputs through one bounded channel.
//!
//! With a network, signed messages are gossiped on the consensus topic and this validator's
//! blocks on the blocks topic (before the proposal that names them); received messages are
//! checked (decoding, a validator's signature) before gossip relays them. Without one (the dev
//! chain) the single validator decides every block by itself, through the same rounds and
//! with the same certificates.
//!
//! This validator's own proposal is also kept on disk until the next one: after a crash
//! between precommitting its block and importing it, the block would otherwise be lost with
//! the only copy, and the validator, locked on it, could not go on.
//!
//! ```text
//! <chain dir>/consensus/sign_record   SCALE(SignRecord) ++ crc32   (replaced atomically)
//! <chain dir>/consensus/proposal      SCALE(Block) of the last block built  (replaced atomically)
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyperion_consensus::{
    ChainId, CommitCertificate, Engine, Height, Input, Message, Output, SignRecord, SignatureCache,
    SignedVote, ValidatorSet, Vote, VoteKind,
};
use hyperion_primitives::{Block, Hash, Pair};
use parity_scale_codec::Encode;
use tokio::sync::mpsc;

use crate::network::{
    Misbehaviour, NetworkEvent, NetworkHandle, SyncRequest, SyncResponse, Topic, MAX_SYNC_BLOCKS,
    MAX_SYNC_BYTES,
};
use crate::service::{now_ms, ExecutedBlock, Node};
use crate::transactions::TransactionFeeder;
use crate::{Error, Result};

/// File name of the sign record in the consensus folder.
const RECORD_FILE: &str = "sign_record";
/// File name of this validator's last proposal in the consensus folder.
const PROPOSAL_FILE: &str = "proposal";
/// Inputs waiting for the engine.
const INPUT_CHANNEL: usize = 1024;
/// Gossiped blocks held per proposer until a proposal names them.
const MAX_BLOCKS_PER_PROPOSER: usize = 8;
/// Candidate blocks of the current height kept for execution and import.
const MAX_CANDIDATES: usize = 64;

/// The durable sign record of this validator (see the module docs).
pub struct SignRecordFile {
    dir: PathBuf,
}

impl SignRecordFile {
    /// Opens the record in `dir` (created when missing); returns the last record, if any. A
    /// damaged record is an error naming the file: this validator may have signed messages it
    /// could no longer recall, so it does not start.
    pub fn open(dir: &Path) -> Result<(Self, Option<SignRecord>)> {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io(format!("creating {}: {e}", dir.display())))?;
        let path = dir.join(RECORD_FILE);
        let record = match std::fs::read(&path) {
            Ok(bytes) => Some(SignRecord::from_bytes(&bytes).map_err(|e| {
                Error::Io(format!(
                    "the consensus sign record {} is damaged ({e}); this validator may have signed \
                     messages it cannot recall, so it will not sign again until the record is \
                     restored from a backup, or removed once the chain is past every height it \
                     may have signed at",
                    path.display()
                ))
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::Io(format!("reading {}: {e}", path.display()))),
        };
        Ok((Self { dir: dir.to_path_buf() }, record))
    }

    /// Replaces the record (see [`replace_file`]).
    pub fn store(&self, record: &SignRecord) -> Result<()> {
        replace_file(&self.dir, RECORD_FILE, &record.to_bytes())
    }
}

/// Replaces `dir/name` with `bytes`: writes a temporary file, syncs it, renames it over the
/// file and syncs the folder. A crash at any point leaves the old contents or the new ones.
pub fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let io =
        |what: &str, path: &Path, e: std::io::Error| Error::Io(format!("{what} {}: {e}", path.display()));
    let temporary = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temporary)
        .map_err(|e| io("creating", &temporary, e))?;
    file.write_all(bytes).map_err(|e| io("writing", &temporary, e))?;
    file.sync_all().map_err(|e| io("syncing", &temporary, e))?;
    std::fs::rename(&temporary, &path).map_err(|e| io("replacing", &path, e))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io("syncing", dir, e))
}

/// The last block this validator built, when it is a candidate for the next height.
fn load_proposal(node: &Node, dir: &Path) -> Option<ExecutedBlock> {
    let bytes = std::fs::read(dir.join(PROPOSAL_FILE)).ok()?;
    let block = crate::service::decode_block(&bytes).ok()?;
    if block.header.parent_hash != node.best_header().hash() {
        return None;
    }
    node.check_block(block).ok()
}

/// Whether `height` is decided and imported already.
fn node_moved_past(node: &Node, height: Height) -> bool {
    node.best_header().number >= height
}

/// What reaches the consensus task.
enum Event {
    /// An input for the engine.
    Input(Input),
    /// This validator's block for (height, round), executed.
    Built(Height, u32, ExecutedBlock),
    /// A candidate block executed: `None` when it is invalid.
    Checked(Height, Hash, Option<ExecutedBlock>),
    /// Something from the network.
    Network(NetworkEvent),
}

/// Copies the network's peer count (kept for `system_health`) into the metrics.
pub fn note_peers(node: &Node, event: &NetworkEvent) {
    if matches!(event, NetworkEvent::Connected(_) | NetworkEvent::Disconnected(_)) {
        node.metrics.peers.set(node.sync.peers.load(std::sync::atomic::Ordering::Relaxed) as i64);
    }
}

/// The stored blocks a peer asks for (with their certificates), within the response bounds.
pub fn blocks_for(node: &Node, request: &SyncRequest) -> SyncResponse {
    let mut response = SyncResponse::default();
    let mut bytes = 0;
    let best = node.best_header().number;
    let count = u64::from(request.count.min(MAX_SYNC_BLOCKS));
    for number in request.from.max(1)..request.from.saturating_add(count).min(best + 1) {
        let Ok(Some(stored)) = node.block(number) else { break };
        let encoded = stored.block.encode();
        bytes += encoded.len();
        if bytes > MAX_SYNC_BYTES && !response.blocks.is_empty() {
            break;
        }
        response.blocks.push(hex::encode(encoded));
    }
    response
}

/// Answers a peer's sync request from the block store, on a blocking thread (the reads may
/// reach [`MAX_SYNC_BYTES`]).
pub fn answer_sync(
    node: Arc<Node>,
    network: NetworkHandle,
    request: SyncRequest,
    channel: libp2p::request_response::ResponseChannel<SyncResponse>,
) {
    tokio::spawn(async move {
        if let Ok(response) = tokio::task::spawn_blocking(move || blocks_for(&node, &request)).await {
            network.respond(channel, response);
        }
    });
}

/// Records that a peer has decided up to `height`.
pub fn note_height(node: &Node, height: Height) {
    node.sync.heard_of(height);
    node.metrics.sync_target.set(node.sync.target.load(std::sync::atomic::Ordering::Relaxed) as i64);
}

/// The validator set of `height` (see [`crate::validators`]).
pub fn validator_set_at(node: &Node, height: Height) -> Result<ValidatorSet> {
    node.validators.set_at(height)
}

/// Faults a validator can be told to commit, to test how the network punishes them. Never for
/// a real chain.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Sign a conflicting nil prevote alongside each of its own prevotes for a block.
    pub double_sign: bool,
}

/// Runs consensus as validator `key` until the task is dropped; blocks are built no sooner
/// than `block_time_ms` after their parent. Returns only on a failure the node cannot go on
/// from (the sign record cannot be written, a decided block cannot be imported).
pub async fn run(
    node: Arc<Node>,
    key: Pair,
    consensus_dir: PathBuf,
    block_time_ms: u64,
    network: Option<(NetworkHandle, mpsc::Receiver<NetworkEvent>)>,
    faults: Faults,
) -> Result<()> {
    let (record_file, record) = SignRecordFile::open(&consensus_dir)?;
    let height = node.best_header().number + 1;
    let set = validator_set_at(&node, height)?;
    let config = node.spec.consensus_config(node.genesis_hash, block_time_ms);
    let proposer = key.public().address();
    let cache = Arc::new(SignatureCache::default());
    let mut engine = Engine::new(config.clone(), Some(key.clone()), set, height, record, cache.clone());
    let (sender, mut events) = mpsc::channel::<Event>(INPUT_CHANNEL);
    let network = network.map(|(handle, mut network_events)| {
        let forward = sender.clone();
        let transactions = TransactionFeeder::start(node.clone(), handle.clone());
        tokio::spawn(async move {
            while let Some(event) = network_events.recv().await {
                let event = match event {
                    NetworkEvent::Message { source, id, topic: Topic::Transactions, data } => {
                        transactions.offer(source, id, data);
                        continue;
                    }
                    event => event,
                };
                if forward.send(Event::Network(event)).await.is_err() {
                    return;
                }
            }
        });
        handle
    });
    let mut candidates = HashMap::new();
    if let Some(executed) = load_proposal(&node, &consensus_dir) {
        candidates.insert(executed.stored.block.hash(), executed);
    }
    let mut driver = Driver {
        node,
        record_file,
        sender,
        candidates,
        received: HashMap::new(),
        wanted: HashMap::new(),
        proposer,
        block_time_ms,
        network,
        chain: config.chain,
        cache,
        synced: BTreeMap::new(),
        certified: HashMap::new(),
        sync_asked: None,
        sync_peer: None,
        progress: SyncProgress::default(),
        proposal_at: None,
        timeouts: config.timeouts,
        key,
        faults,
        handed: None,
        epoch_length: config.epoch_length,
    };
    driver.hand_over(&mut engine)?;
    let outputs = engine.start();
    driver.carry_out(outputs).await?;
    while let Some(event) = events.recv().await {
        let input = match event {
            Event::Input(input) => input,
            Event::Built(height, round, executed) => {
                let value = executed.stored.block.hash();
                let (dir, bytes) = (driver.record_file.dir.clone(), executed.stored.block.encode());
                let stored = bytes.clone();
                tokio::task::spawn_blocking(move || replace_file(&dir, PROPOSAL_FILE, &stored))
                    .await
                    .map_err(|e| Error::Io(format!("storing the proposal: {e}")))??;
                // The block goes out before the proposal that names it.
                if let Some(network) = &driver.network {
                    network.publish(Topic::Blocks, bytes);
                }
                driver.keep(value, executed);
                driver.saw_proposal(height);
                Input::BlockBuilt { height, round, value }
            }
            Event::Checked(height, value, executed) => {
                let valid = executed.is_some();
                let certified = driver.certified.remove(&value).filter(|_| valid);
                if let Some(executed) = executed {
                    if certified.is_some() {
                        // The block about to be decided is kept whatever else is held.
                        driver.candidates.insert(value, executed);
                    } else {
                        driver.keep(value, executed);
                    }
                }
                // A synced block, executed: its certificate decides it. The engine asks to
                // validate the certified value (or asked already, before it was synced); the
                // verdict follows at once, so that neither an earlier request still waiting for
                // the block nor an earlier verdict stands in the way.
                if let Some(certificate) = certified {
                    driver.progress.imported(&driver.node, 1);
                    driver.hand_over(&mut engine)?;
                    let outputs = engine.handle(Input::Certificate(certificate));
                    driver.carry_out(outputs).await?;
                    driver.check_set(&engine)?;
                }
                Input::Validated { height, value, valid }
            }
            Event::Network(event) => match driver.on_network(event, &engine) {
                Some(input) => {
                    if let Input::Proposal(proposal) = &input {
                        driver.saw_proposal(proposal.proposal.height);
                    }
                    input
                }
                None => {
                    driver.feed_synced(&engine);
                    continue;
                }
            },
        };
        let (height, round) = (engine.height(), engine.round());
        driver.hand_over(&mut engine)?;
        let outputs = engine.handle(input);
        driver.carry_out(outputs).await?;
        driver.check_set(&engine)?;
        driver.feed_synced(&engine);
        if engine.height() == height && engine.round() > round {
            // A round failed: say what it saw (operators' first question when blocks stall).
            tracing::info!(target: "hyperion::consensus", height, "round {round} failed: {}; now round {}", engine.describe_round(round), engine.round());
        }
        let metrics = &driver.node.metrics;
        metrics.consensus_height.set(engine.height() as i64);
        metrics.consensus_round.set(i64::from(engine.round()));
    }
    Ok(())
}

struct Driver {
    node: Arc<Node>,
    record_file: SignRecordFile,
    sender: mpsc::Sender<Event>,
    /// Executed blocks of the current height, by hash.
    candidates: HashMap<Hash, ExecutedBlock>,
    /// Blocks received from peers, not executed yet.
    received: HashMap<Hash, Block>,
    /// Blocks the engine asked to check that have not arrived, with their height.
    wanted: HashMap<Hash, Height>,
    proposer: hyperion_primitives::Address,
    block_time_ms: u64,
    network: Option<NetworkHandle>,
    chain: ChainId,
    cache: Arc<SignatureCache>,
    /// Decided blocks from sync, by height, with the peer that sent them, waiting for the
    /// engine to reach them.
    synced: BTreeMap<Height, (libp2p::PeerId, Block)>,
    /// Certificates of synced blocks being executed.
    certified: HashMap<Hash, CommitCertificate>,
    /// When the last sync request went out.
    sync_asked: Option<Instant>,
    /// The last peer that sent blocks: asked for more while sync goes on.
    sync_peer: Option<libp2p::PeerId>,
    /// Logs how sync goes.
    progress: SyncProgress,
    /// When this node first saw (or built) a proposal of a height.
    proposal_at: Option<(Height, Instant)>,
    /// The engine's round timeouts.
    timeouts: hyperion_consensus::Timeouts,
    /// The validator key (also signs this node's reports of misbehaviour).
    key: Pair,
    faults: Faults,
    /// The epoch whose validators were handed to the engine last.
    handed: Option<u64>,
    epoch_length: u64,
}

/// Logs sync progress (height, target, blocks per second) at most once per second.
pub struct SyncProgress {
    since: Instant,
    blocks: u64,
}

impl Default for SyncProgress {
    fn default() -> Self {
        Self { since: Instant::now(), blocks: 0 }
    }
}

impl SyncProgress {
    /// Counts `imported` synced blocks; logs once a second has passed since the last line.
    pub fn imported(&mut self, node: &Node, imported: u64) {
        self.blocks += imported;
        let elapsed = self.since.elapsed();
        if elapsed < Duration::from_secs(1) {
            return;
        }
        let best = node.best_header().number;
        let target = node.sync.target.load(std::sync::atomic::Ordering::Relaxed).max(best);
        let rate = self.blocks as f64 / elapsed.as_secs_f64();
        tracing::info!(target: "hyperion::sync", best, target, "⏩ syncing #{best} of #{target}, {rate:.1} blocks/s");
        *self = Self::default();
    }
}

impl Driver {
    /// Hands the engine the validators of the epoch after its own once this node has imported
    /// the block that elects them (the first of the engine's epoch), before the engine
    /// decides the epoch's last height.
    fn hand_over(&mut self, engine: &mut Engine) -> Result<()> {
        let epoch = crate::validators::epoch_of(engine.height(), self.epoch_length);
        if self.handed == Some(epoch + 1) || self.node.best_header().number < epoch * self.epoch_length + 1 {
            return Ok(());
        }
        let next = self.node.validators.list(epoch + 1);
        engine
            .set_next_validators(next)
            .map_err(|e| Error::Io(format!("epoch {}'s validators: {e}", epoch + 1)))?;
        self.handed = Some(epoch + 1);
        Ok(())
    }

    /// After the engine entered a new epoch: its set must be the one the chain elected
    /// (it is, unless the engine crossed the boundary before this node imported the electing
    /// block). A validator never signs with the wrong set: the node stops instead, and starts
    /// again with the right one.
    fn check_set(&self, engine: &Engine) -> Result<()> {
        let height = engine.height();
        if height <= 1 || !(height - 1).is_multiple_of(self.epoch_length) {
            return Ok(());
        }
        let expected = validator_set_at(&self.node, height)?;
        if *engine.validators() != expected {
            return Err(Error::Io(format!(
                "consensus entered height {height} with a validator set other than the one the chain elected"
            )));
        }
        Ok(())
    }

    /// Reports a validator's double signing to the staking pallet, in an extrinsic signed
    /// with this validator's key (its account pays the fee). Only members of the offence's
    /// set report (each of them sees it; more reports would only be refused as duplicates).
    fn report(&self, evidence: &hyperion_consensus::Evidence) {
        let epoch = crate::validators::epoch_of(evidence.height(), self.epoch_length);
        if !self.node.validators.list(epoch).iter().any(|v| v.public == self.key.public()) {
            return;
        }
        let call = pallet_staking::Call::ReportEquivocation { evidence: evidence.encode() }.encode();
        let call = hyperion_primitives::Call {
            pallet: crate::STAKING_INDEX,
            call: call[0],
            args: call[1..].to_vec(),
        };
        let reporter = self.key.public().address();
        let nonce = self.node.next_nonce(&reporter);
        let xt =
            hyperion_primitives::SignedExtrinsic::sign(&self.key, self.node.genesis_hash, nonce, 0, call);
        match self.node.submit(&hyperion_primitives::Extrinsic::Native(xt).encode()) {
            Ok(hash) => tracing::info!(target: "hyperion::consensus", %hash, "reported the double signing"),
            Err(error) => {
                tracing::warn!(target: "hyperion::consensus", %error, "could not report the double signing")
            }
        }
    }

    /// Notes the first proposal of `height` (for the proposal-to-decision metric).
    fn saw_proposal(&mut self, height: Height) {
        if self.proposal_at.is_none_or(|(seen, _)| seen < height) {
            self.proposal_at = Some((height, Instant::now()));
        }
    }

    fn keep(&mut self, value: Hash, executed: ExecutedBlock) {
        if self.candidates.len() < MAX_CANDIDATES {
            self.candidates.insert(value, executed);
        }
    }

    async fn carry_out(&mut self, outputs: Vec<Output>) -> Result<()> {
        for output in outputs {
            match output {
                Output::Persist(record) => {
                    let dir = self.record_file.dir.clone();
                    tokio::task::spawn_blocking(move || SignRecordFile { dir }.store(&record))
                        .await
                        .map_err(|e| Error::Io(format!("storing the sign record: {e}")))??;
                }
                Output::Broadcast(message) => {
                    if let Some(network) = &self.network {
                        network.publish(Topic::Consensus, message.encode());
                        if let (true, Message::Vote(own)) = (self.faults.double_sign, &message) {
                            if own.vote.kind == VoteKind::Prevote && own.vote.value.is_some() {
                                let conflicting = Vote { value: None, ..own.vote };
                                let signed = SignedVote::sign(self.chain, conflicting, &self.key);
                                tracing::warn!(target: "hyperion::consensus", height = own.vote.height, "fault switch: signing a conflicting prevote");
                                network.publish(Topic::Consensus, Message::Vote(signed).encode());
                            }
                        }
                    }
                }
                Output::Schedule { timeout, after_ms } => {
                    let sender = self.sender.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(after_ms)).await;
                        let _ = sender.send(Event::Input(Input::Timeout(timeout))).await;
                    });
                }
                Output::BuildBlock { height, round } => self.build(height, round),
                Output::ValidateBlock { height, value } => self.check(height, value),
                Output::Decided(decision) => {
                    let proposal_to_decision =
                        self.proposal_at.filter(|(h, _)| *h == decision.height).map(|(_, at)| at.elapsed());
                    let executed = match self.candidates.remove(&decision.value) {
                        Some(executed) => executed,
                        None => {
                            return Err(Error::Io(format!(
                                "block {} was decided at height {} but this node does not have it \
                                 (block sync comes with the network layer)",
                                decision.value, decision.height
                            )))
                        }
                    };
                    self.candidates.clear();
                    self.received.retain(|_, block| block.header.number > decision.height);
                    self.wanted.clear();
                    let node = self.node.clone();
                    let certificate = decision.certificate.encode();
                    tokio::task::spawn_blocking(move || node.import_decided(executed, certificate))
                        .await
                        .map_err(|e| Error::Io(format!("importing a decided block: {e}")))??;
                    tracing::debug!(target: "hyperion::consensus", height = decision.height, round = decision.certificate.round, "decided");
                    let metrics = &self.node.metrics;
                    metrics.consensus_rounds_per_height.observe(f64::from(decision.certificate.round) + 1.0);
                    if let Some(elapsed) = proposal_to_decision {
                        metrics.consensus_proposal_to_decision.observe(elapsed.as_secs_f64());
                    }
                }
                Output::Evidence(evidence) => {
                    tracing::warn!(target: "hyperion::consensus", offender = ?evidence.offender(), height = evidence.height(), "a validator signed two conflicting messages");
                    self.report(&evidence);
                }
            }
        }
        Ok(())
    }

    /// Builds this validator's block once `block_time_ms` has passed since its parent, adding
    /// extrinsics for at most a quarter of the round's proposal timeout: the others must still
    /// receive and execute it in time.
    fn build(&self, height: Height, round: u32) {
        let (node, sender, proposer) = (self.node.clone(), self.sender.clone(), self.proposer);
        let timeout = self.timeouts.duration_ms(hyperion_consensus::TimeoutKind::Propose, round);
        let budget = Some(Duration::from_millis(timeout / 4));
        let not_before = node.best_header().timestamp_ms.saturating_add(self.block_time_ms);
        tokio::spawn(async move {
            let wait = not_before.saturating_sub(now_ms());
            tokio::time::sleep(Duration::from_millis(wait)).await;
            let built = tokio::task::spawn_blocking(move || node.propose_block(proposer, budget)).await;
            match built {
                Ok(Ok(executed)) => {
                    let _ = sender.send(Event::Built(height, round, executed)).await;
                }
                Ok(Err(error)) => {
                    tracing::error!(target: "hyperion::consensus", %error, height, "could not build a block")
                }
                Err(error) => {
                    tracing::error!(target: "hyperion::consensus", %error, height, "block building panicked")
                }
            }
        });
    }

    /// Executes a candidate block: at once when this node holds it, else when it arrives.
    fn check(&mut self, height: Height, value: Hash) {
        if self.candidates.contains_key(&value) {
            // Executed already, and kept for the decision. The verdict goes through the channel
            // like every verdict, waiting for room rather than being lost.
            let sender = self.sender.clone();
            tokio::spawn(async move {
                let _ = sender.send(Event::Input(Input::Validated { height, value, valid: true })).await;
            });
        } else if let Some(block) = self.received.remove(&value) {
            self.execute(height, value, block);
        } else if self.wanted.len() < MAX_CANDIDATES {
            self.wanted.insert(value, height);
        }
    }

    /// Executes a received block on a blocking thread; the verdict comes back as an event.
    fn execute(&self, height: Height, value: Hash, block: Block) {
        let (node, sender) = (self.node.clone(), self.sender.clone());
        let sender_node = self.node.clone();
        tokio::spawn(async move {
            let executed = tokio::task::spawn_blocking(move || node.check_block(block)).await;
            let executed = match executed {
                Ok(Ok(executed)) => Some(executed),
                // The chain moved on while it executed (its height was decided): no verdict.
                Ok(Err(_)) if node_moved_past(&sender_node, height) => return,
                Ok(Err(error)) => {
                    tracing::info!(target: "hyperion::consensus", %value, height, %error, "proposed block is invalid");
                    None
                }
                Err(_) => None,
            };
            let _ = sender.send(Event::Checked(height, value, executed)).await;
        });
    }

    /// Checks a gossiped message, reports it to the network (relay or penalize), and turns it
    /// into an engine input when it is one.
    fn on_network(&mut self, event: NetworkEvent, engine: &Engine) -> Option<Input> {
        note_peers(&self.node, &event);
        let (source, id, topic, data) = match event {
            NetworkEvent::Message { source, id, topic, data } => (source, id, topic, data),
            NetworkEvent::SyncRequest { request, channel, .. } => {
                answer_sync(self.node.clone(), self.network.clone()?, request, channel);
                return None;
            }
            NetworkEvent::SyncResponse { peer, blocks } => {
                self.sync_asked = None;
                self.take_synced(peer, blocks, engine);
                return None;
            }
            // A new peer may be ahead: ask it (an empty answer costs little).
            NetworkEvent::Connected(peer) => {
                self.ask_for_blocks(peer, engine.height());
                return None;
            }
            NetworkEvent::Disconnected(_) => return None,
        };
        let network = self.network.as_ref()?;
        match topic {
            Topic::Consensus => {
                let message = Message::decode_bounded(&data).ok();
                let valid = message.is_some_and(|m| self.signed_by_a_validator(&m, engine));
                network.report(id, source, valid);
                // A validator at a later height: this node is behind and syncs from the peer.
                if let Some(m) = message.filter(|_| valid) {
                    note_height(&self.node, m.height().saturating_sub(1));
                    if m.height() > engine.height() {
                        self.ask_for_blocks(source, engine.height());
                    }
                }
                message.filter(|_| valid).map(|m| match m {
                    Message::Proposal(p) => Input::Proposal(p),
                    Message::Vote(v) => Input::Vote(v),
                })
            }
            Topic::Blocks => {
                let block = crate::service::decode_block(&data).ok();
                network.report(id, source, block.is_some());
                let block = block?;
                let value = block.hash();
                if let Some(height) = self.wanted.remove(&value) {
                    self.execute(height, value, block);
                } else if self.may_hold(&block, engine) {
                    self.received.insert(value, block);
                }
                None
            }
            // Pooled on their own thread (see `run`).
            Topic::Transactions => {
                network.report(id, source, crate::transactions::batch_verdict(&self.node, &data));
                None
            }
        }
    }

    /// Whether a gossiped block not asked for yet may wait for its proposal: it is not for a
    /// past height, its proposer is a validator, and that validator has fewer than
    /// [`MAX_BLOCKS_PER_PROPOSER`] blocks held. So peers that are not validators cannot crowd
    /// out the proposer's block, and a validator can only fill its own share.
    fn may_hold(&self, block: &Block, engine: &Engine) -> bool {
        let proposer = block.header.proposer;
        let is_validator = engine.validators().validators().iter().any(|v| v.public.address() == proposer);
        let held = self.received.values().filter(|b| b.header.proposer == proposer).count();
        block.header.number >= engine.height()
            && is_validator
            && held < MAX_BLOCKS_PER_PROPOSER
            && self.received.len() < MAX_CANDIDATES
    }

    /// Asks `peer` for the blocks after those already held (from `from` on), unless a request
    /// is out (for a second) or a full answer's worth is held.
    fn ask_for_blocks(&mut self, peer: libp2p::PeerId, from: Height) {
        if self.sync_asked.is_some_and(|at| at.elapsed() < Duration::from_secs(1))
            || self.synced.len() >= MAX_SYNC_BLOCKS as usize
        {
            return;
        }
        // The first height from `from` on that is not held (a held block may have been taken
        // for execution and failed, leaving a gap to fill first).
        let mut from = from;
        while self.synced.contains_key(&from) {
            from += 1;
        }
        if let Some(network) = &self.network {
            self.sync_asked = Some(Instant::now());
            tracing::debug!(target: "hyperion::consensus", %peer, from, "behind: asking for blocks");
            network.request_blocks(peer, SyncRequest { from, count: MAX_SYNC_BLOCKS });
        }
    }

    /// Keeps the decodable blocks of a sync answer that lie ahead; a peer that sends
    /// undecodable ones is reported.
    fn take_synced(&mut self, peer: libp2p::PeerId, blocks: Vec<Vec<u8>>, engine: &Engine) {
        for bytes in blocks {
            match crate::service::decode_block(&bytes) {
                Ok(block)
                    if block.header.number >= engine.height()
                        && self.synced.len() < 2 * MAX_SYNC_BLOCKS as usize =>
                {
                    self.synced.insert(block.header.number, (peer, block));
                    self.sync_peer = Some(peer);
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(target: "hyperion::consensus", %peer, %error, "undecodable synced block");
                    if let Some(network) = &self.network {
                        network.penalize(peer, Misbehaviour::InvalidMessage);
                    }
                    return;
                }
            }
        }
    }

    /// Starts executing the synced block of the engine's height, if there is one and its
    /// certificate verifies (checked before the costly execution): once it is executed, the
    /// certificate goes to the engine, which decides. A peer that sent a block whose
    /// certificate does not verify is banned, and its other blocks are dropped.
    fn feed_synced(&mut self, engine: &Engine) {
        let height = engine.height();
        self.synced.retain(|h, _| *h >= height);
        if !self.certified.is_empty() {
            return;
        }
        // Keep the next answer coming while these blocks execute.
        let target = self.node.sync.target.load(std::sync::atomic::Ordering::Relaxed);
        let held = self.synced.keys().next_back().copied().unwrap_or(height.saturating_sub(1));
        if let Some(peer) = self.sync_peer.filter(|_| target > held) {
            self.ask_for_blocks(peer, height);
        }
        let Some((peer, block)) = self.synced.remove(&height) else { return };
        let value = block.hash();
        let certificate = block
            .certificate
            .as_deref()
            .and_then(|c| CommitCertificate::decode_bounded(c).ok())
            .filter(|c| c.height == height && c.value == value)
            .filter(|c| c.verify_cached(self.chain, engine.validators(), Some(&self.cache)).is_ok());
        match certificate {
            Some(certificate) => {
                self.certified.insert(value, certificate);
                self.execute(height, value, block);
            }
            None => {
                tracing::info!(target: "hyperion::sync", %peer, height, "a peer sent a block without a valid certificate; banning it");
                self.synced.retain(|_, (from, _)| *from != peer);
                if let Some(network) = &self.network {
                    network.penalize(peer, Misbehaviour::BadBlock);
                }
            }
        }
    }

    /// Whether `message` is signed by a validator of the engine's height (verified once; the
    /// engine finds it in the shared cache).
    fn signed_by_a_validator(&self, message: &Message, engine: &Engine) -> bool {
        let signer = message.signer();
        engine.validators().power_of(&signer) > 0
            && self.cache.verify(&signer, &message.payload(self.chain), &message.signature())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyperion_consensus::Step;
    use hyperion_primitives::Signature;

    fn record(height: Height) -> SignRecord {
        SignRecord {
            height,
            round: 1,
            step: Step::Precommit,
            value: Some(Hash([height as u8; 32])),
            pol_round: None,
            signature: Signature([9; 64]),
            locked: None,
            valid: None,
            earlier: Vec::new(),
        }
    }

    #[test]
    fn the_sign_record_survives_reopening_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (file, none) = SignRecordFile::open(dir.path()).unwrap();
        assert!(none.is_none());
        file.store(&record(3)).unwrap();
        file.store(&record(4)).unwrap();
        let (_, last) = SignRecordFile::open(dir.path()).unwrap();
        assert_eq!(last, Some(record(4)));

        // A crash after writing the temporary file, before the rename: the old record holds.
        std::fs::write(dir.path().join("sign_record.tmp"), b"half a rec").unwrap();
        let (file, last) = SignRecordFile::open(dir.path()).unwrap();
        assert_eq!(last, Some(record(4)));
        file.store(&record(5)).unwrap();
        assert_eq!(SignRecordFile::open(dir.path()).unwrap().1, Some(record(5)));

        let path = dir.path().join("sign_record");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[3] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let error = SignRecordFile::open(dir.path()).err().expect("damaged").to_string();
        assert!(error.contains(&path.display().to_string()) && error.contains("damaged"), "{error}");
    }
}
