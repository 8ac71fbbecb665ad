//! The peer-to-peer network (libp2p): TCP with noise and yamux, identify, ping, gossipsub for
//! consensus messages, proposed blocks and transactions, and a request-response protocol for
//! block sync (blocks with their commit certificates, by height).
//!
//! Every gossiped message is checked by the node before gossipsub relays it
//! ([`NetworkHandle::report`]): a message that does not decode, is over its topic's size bound
//! or carries a bad signature is dropped and costs its sender reputation; a peer that falls
//! below [`BAN_THRESHOLD`] is disconnected and refused for [`BAN_SECONDS`].
//!
//! The node's network identity is an ed25519 key in `<chain dir>/network/secret_ed25519`
//! (created on first start; `--node-key` overrides it).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageId, ValidationMode};
use libp2p::request_response::{self, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, identity, noise, ping, tcp, yamux, Multiaddr, PeerId, Swarm};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::{Error, Result};

/// Largest gossiped consensus message.
pub const MAX_CONSENSUS_BYTES: usize = hyperion_consensus::MAX_MESSAGE_BYTES;
/// Largest gossiped block (a proposal).
pub const MAX_BLOCK_BYTES: usize = 8 << 20;
/// Largest gossiped batch of transactions.
pub const MAX_TRANSACTION_BATCH_BYTES: usize = 1 << 20;
/// Most transactions in one gossiped batch.
pub const MAX_TRANSACTION_BATCH: usize = 4096;
/// How long a transaction waits for others to share its gossip message.
const TRANSACTION_BATCH_MS: u64 = 20;
/// Reputation below which a peer is disconnected and banned.
pub const BAN_THRESHOLD: i32 = -100;
/// How long a banned peer is refused.
pub const BAN_SECONDS: u64 = 600;
/// Reputation a peer loses per invalid message.
const INVALID_MESSAGE_COST: i32 = 25;
/// Most banned peers, and peers with a lowered reputation, remembered.
const MAX_REMEMBERED_PEERS: usize = 10_000;
/// How often boot nodes that are not connected are dialled again.
const REDIAL_SECONDS: u64 = 5;
/// Gossip score below which gossipsub ignores a peer and the node bans it. Only invalid
/// messages lower the score: each costs `INVALID_GOSSIP_WEIGHT × (invalid messages)²`, and the
/// count halves every second, so a few in a row cross it and an honest peer never does.
pub const GRAYLIST_SCORE: f64 = -80.0;
const INVALID_GOSSIP_WEIGHT: f64 = -10.0;
/// Most blocks one sync answer carries.
pub const MAX_SYNC_BLOCKS: u32 = 64;
/// Most bytes of blocks one sync answer carries (hex doubles them on the wire).
pub const MAX_SYNC_BYTES: usize = 16 << 20;
/// Commands and events waiting in their channels.
const CHANNEL: usize = 4096;

/// What a gossiped message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Signed proposals and votes (`hyperion_consensus::Message`, SCALE).
    Consensus,
    /// Proposed blocks (SCALE), sent by their proposer before the proposal.
    Blocks,
    /// Batches of extrinsics (SCALE `Vec<Vec<u8>>` of encoded extrinsics): one message per
    /// node every few milliseconds rather than one per transaction, so that a flood of
    /// transactions neither costs a gossip signature each nor queues ahead of votes.
    Transactions,
}

impl Topic {
    const ALL: [Topic; 3] = [Topic::Consensus, Topic::Blocks, Topic::Transactions];

    fn name(self, protocol_id: &str) -> String {
        let kind = match self {
            Topic::Consensus => "consensus",
            Topic::Blocks => "blocks",
            Topic::Transactions => "transactions",
        };
        format!("/{protocol_id}/{kind}/1")
    }

    /// The largest message of this topic.
    pub fn max_bytes(self) -> usize {
        match self {
            Topic::Consensus => MAX_CONSENSUS_BYTES,
            Topic::Blocks => MAX_BLOCK_BYTES,
            Topic::Transactions => MAX_TRANSACTION_BATCH_BYTES,
        }
    }
}

/// Settings of the network.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// Where to listen, e.g. `/ip4/127.0.0.1/tcp/30333`.
    pub listen: Multiaddr,
    /// Peers to dial at start.
    pub bootnodes: Vec<Multiaddr>,
    /// The chain's network protocol id (chain spec `protocolId`) and genesis hash: nodes of
    /// other chains do not share topics.
    pub protocol_id: String,
    /// Most connected peers.
    pub max_peers: u32,
    /// Where the network keeps the number of peers it announced as connected (the node's
    /// `system_health`), current whether or not the node has read every event yet.
    pub peers: Arc<AtomicU64>,
}

/// What the network tells the node.
#[derive(Debug)]
pub enum NetworkEvent {
    /// A gossiped message to check, then report with [`NetworkHandle::report`].
    Message {
        /// The peer that relayed it.
        source: PeerId,
        /// Its id, for the report.
        id: MessageId,
        /// Its topic.
        topic: Topic,
        /// Its bytes (within the topic's bound).
        data: Vec<u8>,
    },
    /// A peer connected.
    Connected(PeerId),
    /// A peer disconnected.
    Disconnected(PeerId),
    /// A peer asks for blocks; answer with [`NetworkHandle::respond`].
    SyncRequest {
        /// Who asks.
        peer: PeerId,
        /// What for.
        request: SyncRequest,
        /// Where the answer goes.
        channel: ResponseChannel<SyncResponse>,
    },
    /// Blocks a peer sent for our request (each within the response's bound, not checked).
    SyncResponse {
        /// Who sent them.
        peer: PeerId,
        /// SCALE-encoded blocks.
        blocks: Vec<Vec<u8>>,
    },
}

/// A request for blocks `from`, `from + 1`, ... (at most `count`, itself at most
/// [`MAX_SYNC_BLOCKS`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SyncRequest {
    /// First height wanted.
    pub from: u64,
    /// How many.
    pub count: u32,
}

/// The blocks of a [`SyncRequest`] that the peer has, in order, each as hex of its SCALE
/// encoding with its certificate.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SyncResponse {
    /// The blocks.
    pub blocks: Vec<String>,
}

/// Why a peer is penalized outside gossip validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// It sent something that does not decode or is out of bounds.
    InvalidMessage,
    /// It served a block whose certificate does not prove it decided: a node that does this
    /// is broken or lying, and is banned at once.
    BadBlock,
    /// Gossip's own checks (message size and signature, before the node sees a message)
    /// rejected so many of its messages that its gossip score fell below
    /// [`GRAYLIST_SCORE`]: banned at once.
    Graylisted,
}

impl Misbehaviour {
    fn cost(self) -> i32 {
        match self {
            Misbehaviour::InvalidMessage => INVALID_MESSAGE_COST,
            Misbehaviour::BadBlock | Misbehaviour::Graylisted => -BAN_THRESHOLD,
        }
    }
}

/// The node's verdict on a gossiped message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: relay it.
    Accept,
    /// Not relayed, not held against the sender (a duplicate, a transaction that is stale or
    /// cannot pay, or one the node had no room to look at).
    Ignore,
    /// Invalid: dropped, and it costs the sender reputation.
    Reject,
}

impl From<bool> for Verdict {
    fn from(valid: bool) -> Self {
        if valid {
            Verdict::Accept
        } else {
            Verdict::Reject
        }
    }
}

enum Command {
    Publish(Topic, Vec<u8>),
    Transaction(Vec<u8>),
    Request(PeerId, SyncRequest),
    Respond(ResponseChannel<SyncResponse>, SyncResponse),
    Report { id: MessageId, source: PeerId, verdict: Verdict },
    Penalize(PeerId, Misbehaviour),
}

/// Sends commands to the running network.
#[derive(Clone)]
pub struct NetworkHandle {
    commands: mpsc::Sender<Command>,
    /// This node's peer id.
    pub peer_id: PeerId,
}

impl NetworkHandle {
    /// Gossips `data` on `topic` (dropped with a log line when over the topic's bound or when
    /// the queue is full).
    pub fn publish(&self, topic: Topic, data: Vec<u8>) {
        if data.len() > topic.max_bytes() {
            tracing::warn!(target: "hyperion::network", ?topic, len = data.len(), "not publishing an oversize message");
            return;
        }
        if self.commands.try_send(Command::Publish(topic, data)).is_err() {
            tracing::warn!(target: "hyperion::network", ?topic, "network queue full; message dropped");
        }
    }

    /// Gossips an extrinsic (SCALE) in the next batch (within [`TRANSACTION_BATCH_MS`]).
    pub fn publish_transaction(&self, extrinsic: Vec<u8>) {
        if extrinsic.len() > MAX_TRANSACTION_BATCH_BYTES / 2 {
            tracing::warn!(target: "hyperion::network", len = extrinsic.len(), "not gossiping an oversize extrinsic");
            return;
        }
        if self.commands.try_send(Command::Transaction(extrinsic)).is_err() {
            tracing::warn!(target: "hyperion::network", "network queue full; extrinsic not gossiped");
        }
    }

    /// Reports the node's verdict on a received message (`true` accepts, `false` rejects):
    /// accepted ones are relayed, rejected ones are dropped and cost their sender reputation.
    pub fn report(&self, id: MessageId, source: PeerId, verdict: impl Into<Verdict>) {
        let _ = self.commands.try_send(Command::Report { id, source, verdict: verdict.into() });
    }

    /// Asks `peer` for blocks.
    pub fn request_blocks(&self, peer: PeerId, request: SyncRequest) {
        let _ = self.commands.try_send(Command::Request(peer, request));
    }

    /// Lowers a peer's reputation (disconnecting and banning it below [`BAN_THRESHOLD`]).
    pub fn penalize(&self, peer: PeerId, why: Misbehaviour) {
        let _ = self.commands.try_send(Command::Penalize(peer, why));
    }

    /// Answers a peer's [`NetworkEvent::SyncRequest`].
    pub fn respond(&self, channel: ResponseChannel<SyncResponse>, response: SyncResponse) {
        let _ = self.commands.try_send(Command::Respond(channel, response));
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    gossipsub: gossipsub::Behaviour,
    sync: request_response::json::Behaviour<SyncRequest, SyncResponse>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

/// Loads the node key from `dir/secret_ed25519`, creating it when missing.
pub fn load_or_create_key(dir: &Path) -> Result<identity::Keypair> {
    let path = dir.join("secret_ed25519");
    let io = |e: std::io::Error| Error::Io(format!("node key {}: {e}", path.display()));
    match std::fs::read(&path) {
        Ok(bytes) => {
            let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                Error::Io(format!("node key {} must hold 32 bytes, not {}", path.display(), bytes.len()))
            })?;
            key_from_seed(seed)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io)?;
            let seed: [u8; 32] = rand::random();
            crate::consensus::replace_file(dir, "secret_ed25519", &seed)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
            }
            key_from_seed(seed)
        }
        Err(e) => Err(io(e)),
    }
}

/// The network key of a 32-byte ed25519 seed (`--node-key`).
pub fn key_from_seed(seed: [u8; 32]) -> Result<identity::Keypair> {
    identity::Keypair::ed25519_from_bytes(seed).map_err(|e| Error::Io(format!("node key: {e}")))
}

/// Starts the network on the current tokio runtime; returns its handle, its events, and the
/// addresses it listens on.
pub async fn start(
    config: NetworkConfig,
    key: identity::Keypair,
) -> Result<(NetworkHandle, mpsc::Receiver<NetworkEvent>, Vec<Multiaddr>)> {
    let failed = |what: &str, e: &dyn std::fmt::Display| Error::Io(format!("network: {what}: {e}"));
    let mut gossip_config = gossipsub::ConfigBuilder::default();
    gossip_config
        .validation_mode(ValidationMode::Strict)
        .validate_messages()
        .max_transmit_size(MAX_BLOCK_BYTES + 1024)
        .heartbeat_interval(Duration::from_millis(500))
        // Small validator sets: keep everyone in the mesh.
        .mesh_n_low(1)
        .mesh_outbound_min(0)
        .flood_publish(true);
    for topic in Topic::ALL {
        let hash = IdentTopic::new(topic.name(&config.protocol_id)).hash();
        gossip_config.max_transmit_size_for_topic(topic.max_bytes() + 1024, hash);
    }
    let gossip_config = gossip_config.build().map_err(|e| failed("gossipsub config", &e))?;
    let (score_params, score_thresholds) = gossip_scoring(&config.protocol_id);
    let protocol = format!("/{}/1.0.0", config.protocol_id);
    let sync_protocol = format!("/{}/sync/1", config.protocol_id);
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| failed("transport", &e))?
        .with_behaviour(|key| {
            let mut gossipsub = gossipsub::Behaviour::new(
                gossipsub::MessageAuthenticity::Signed(key.clone()),
                gossip_config,
            )?;
            gossipsub.with_peer_score(score_params, score_thresholds)?;
            // No cache of the addresses peers announce: the node dials its boot nodes only, at
            // the addresses it was given (a cached address would let a request to a peer that
            // just went away dial around the route the operator configured).
            let identify = identify::Behaviour::new(
                identify::Config::new(protocol.clone(), key.public()).with_cache_size(0),
            );
            let ping = ping::Behaviour::new(ping::Config::new());
            let sync = request_response::json::Behaviour::with_codec(
                request_response::json::codec::Codec::default()
                    .set_request_size_maximum(1024)
                    .set_response_size_maximum(2 * MAX_SYNC_BYTES as u64 + 4096),
                [(libp2p::StreamProtocol::try_from_owned(sync_protocol.clone())?, ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(20)),
            );
            Ok(Behaviour { gossipsub, sync, identify, ping })
        })
        .map_err(|e| failed("behaviour", &e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    let mut topics = HashMap::new();
    for topic in Topic::ALL {
        let ident = IdentTopic::new(topic.name(&config.protocol_id));
        swarm.behaviour_mut().gossipsub.subscribe(&ident).map_err(|e| failed("subscribe", &e))?;
        topics.insert(ident.hash(), topic);
    }
    swarm.listen_on(config.listen.clone()).map_err(|e| failed("listen", &e))?;
    let mut listening = Vec::new();
    while listening.is_empty() {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } => listening.push(address),
            SwarmEvent::ListenerError { error, .. } => return Err(failed("listen", &error)),
            _ => {}
        }
    }
    let peer_id = *swarm.local_peer_id();
    let (commands, command_receiver) = mpsc::channel(CHANNEL);
    let (event_sender, events) = mpsc::channel(CHANNEL);
    let state = Running {
        swarm,
        topics,
        protocol_id: config.protocol_id,
        max_peers: config.max_peers,
        reputation: HashMap::new(),
        banned: HashMap::new(),
        events: event_sender,
        bootnodes: config.bootnodes,
        connected_addresses: HashMap::new(),
        announced: HashSet::new(),
        peers: config.peers,
        batch: Vec::new(),
        batch_bytes: 0,
    };
    tokio::spawn(state.run(command_receiver));
    Ok((NetworkHandle { commands, peer_id }, events, listening))
}

/// Gossip scoring that counts only invalid messages (oversize for their topic, badly signed,
/// or reported invalid by the node): no rewards or penalties for mesh behaviour, delivery
/// rates or shared IP addresses, which would punish honest validators on one machine or a
/// quiet chain.
fn gossip_scoring(protocol_id: &str) -> (gossipsub::PeerScoreParams, gossipsub::PeerScoreThresholds) {
    let topic = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 0.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: INVALID_GOSSIP_WEIGHT,
        invalid_message_deliveries_decay: 0.5,
        ..Default::default()
    };
    let params = gossipsub::PeerScoreParams {
        topics: Topic::ALL
            .iter()
            .map(|t| (IdentTopic::new(t.name(protocol_id)).hash(), topic.clone()))
            .collect(),
        app_specific_weight: 0.0,
        ip_colocation_factor_weight: 0.0,
        behaviour_penalty_weight: -1.0,
        slow_peer_weight: 0.0,
        decay_interval: Duration::from_secs(1),
        ..Default::default()
    };
    let thresholds = gossipsub::PeerScoreThresholds {
        gossip_threshold: GRAYLIST_SCORE / 4.0,
        publish_threshold: GRAYLIST_SCORE / 2.0,
        graylist_threshold: GRAYLIST_SCORE,
        ..Default::default()
    };
    (params, thresholds)
}

struct Running {
    swarm: Swarm<Behaviour>,
    topics: HashMap<gossipsub::TopicHash, Topic>,
    protocol_id: String,
    max_peers: u32,
    reputation: HashMap<PeerId, i32>,
    banned: HashMap<PeerId, Instant>,
    events: mpsc::Sender<NetworkEvent>,
    /// Dialled at start and again whenever they are not connected.
    bootnodes: Vec<Multiaddr>,
    /// Remote addresses of the connections this node dialled, by peer.
    connected_addresses: HashMap<Multiaddr, PeerId>,
    /// Peers the node was told of with [`NetworkEvent::Connected`] (not banned or over the
    /// limit), so that it hears of exactly these disconnecting.
    announced: HashSet<PeerId>,
    /// `announced.len()`, shared with the node.
    peers: Arc<AtomicU64>,
    /// Extrinsics waiting to be gossiped as one batch.
    batch: Vec<Vec<u8>>,
    batch_bytes: usize,
}

/// Decodes a gossiped batch of extrinsics (each still to be decoded and checked).
pub fn decode_transaction_batch(data: &[u8]) -> Option<Vec<Vec<u8>>> {
    use parity_scale_codec::{Compact, Decode, Input};
    let mut input = data;
    let count = Compact::<u32>::decode(&mut input).ok()?.0 as usize;
    if count > MAX_TRANSACTION_BATCH {
        return None;
    }
    let mut batch = Vec::with_capacity(count);
    for _ in 0..count {
        let len = Compact::<u32>::decode(&mut input).ok()?.0 as usize;
        if len > input.remaining_len().ok()??.min(MAX_TRANSACTION_BATCH_BYTES) {
            return None;
        }
        let (item, rest) = input.split_at(len);
        batch.push(item.to_vec());
        input = rest;
    }
    input.is_empty().then_some(batch)
}

impl Running {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut redial = tokio::time::interval(Duration::from_secs(REDIAL_SECONDS));
        let mut scores = tokio::time::interval(Duration::from_secs(1));
        let mut batches = tokio::time::interval(Duration::from_millis(TRANSACTION_BATCH_MS));
        loop {
            tokio::select! {
                _ = redial.tick() => self.dial_bootnodes(),
                _ = scores.tick() => self.review_peers(),
                _ = batches.tick() => self.flush_transactions(),
                command = commands.recv() => match command {
                    Some(command) => self.command(command),
                    None => return,
                },
                event = self.swarm.select_next_some() => self.event(event),
            }
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Publish(topic, data) => {
                let ident = IdentTopic::new(topic.name(&self.protocol_id));
                if let Err(error) = self.swarm.behaviour_mut().gossipsub.publish(ident, data) {
                    tracing::debug!(target: "hyperion::network", ?topic, %error, "publish failed");
                }
            }
            Command::Transaction(extrinsic) => {
                if self.batch_bytes + extrinsic.len() + 8 > MAX_TRANSACTION_BATCH_BYTES
                    || self.batch.len() == MAX_TRANSACTION_BATCH
                {
                    self.flush_transactions();
                }
                self.batch_bytes += extrinsic.len() + 8;
                self.batch.push(extrinsic);
            }
            Command::Report { id, source, verdict } => {
                let acceptance = match verdict {
                    Verdict::Accept => MessageAcceptance::Accept,
                    Verdict::Ignore => MessageAcceptance::Ignore,
                    Verdict::Reject => MessageAcceptance::Reject,
                };
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &source, acceptance);
                if verdict == Verdict::Reject {
                    self.penalize(source, Misbehaviour::InvalidMessage);
                }
            }
            Command::Penalize(peer, why) => self.penalize(peer, why),
            // Only to a connected peer: a request to one that went away would dial it, and
            // the asker tries another peer after its retry delay anyway.
            Command::Request(peer, request) if self.swarm.is_connected(&peer) => {
                self.swarm.behaviour_mut().sync.send_request(&peer, request);
            }
            Command::Request(peer, _) => {
                tracing::debug!(target: "hyperion::network", %peer, "sync request to a peer no longer connected dropped");
            }
            Command::Respond(channel, response) => {
                let _ = self.swarm.behaviour_mut().sync.send_response(channel, response);
            }
        }
    }

    /// Dials the boot nodes this node is not connected to (the first time, and after a
    /// disconnection or a network split); banned ones are left alone.
    fn dial_bootnodes(&mut self) {
        for address in self.bootnodes.clone() {
            let peer = match address.iter().last() {
                Some(libp2p::multiaddr::Protocol::P2p(peer)) => Some(peer),
                _ => None,
            };
            let connected = match peer {
                Some(peer) => self.swarm.is_connected(&peer) || self.is_banned(&peer),
                None => self.connected_addresses.contains_key(&address),
            };
            if connected {
                continue;
            }
            let options = match peer {
                Some(peer) => libp2p::swarm::dial_opts::DialOpts::peer_id(peer)
                    .addresses(vec![address.clone()])
                    .condition(libp2p::swarm::dial_opts::PeerCondition::DisconnectedAndNotDialing)
                    .build(),
                None => address.clone().into(),
            };
            if let Err(error) = self.swarm.dial(options) {
                tracing::debug!(target: "hyperion::network", %address, %error, "cannot dial boot node");
            }
        }
    }

    /// Gossips the waiting extrinsics as one message.
    fn flush_transactions(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        self.command(Command::Publish(Topic::Transactions, parity_scale_codec::Encode::encode(&batch)));
    }

    /// Bans the peers whose gossip score fell below [`GRAYLIST_SCORE`], forgets expired bans,
    /// and keeps the reputation of at most [`MAX_REMEMBERED_PEERS`] peers (disconnected ones
    /// are forgotten first), so that peers coming with fresh identities cannot grow either map
    /// without bound.
    fn review_peers(&mut self) {
        self.banned.retain(|_, since| since.elapsed() < Duration::from_secs(BAN_SECONDS));
        if self.banned.len() > MAX_REMEMBERED_PEERS {
            let mut oldest: Vec<(PeerId, Instant)> = self.banned.iter().map(|(p, t)| (*p, *t)).collect();
            oldest.sort_by_key(|(_, since)| *since);
            for (peer, _) in oldest.iter().take(self.banned.len() - MAX_REMEMBERED_PEERS) {
                self.banned.remove(peer);
            }
        }
        if self.reputation.len() > MAX_REMEMBERED_PEERS {
            let swarm = &self.swarm;
            self.reputation.retain(|peer, _| swarm.is_connected(peer));
        }
        let gossip = &self.swarm.behaviour().gossipsub;
        let graylisted: Vec<PeerId> = self
            .swarm
            .connected_peers()
            .filter(|peer| gossip.peer_score(peer).is_some_and(|score| score < GRAYLIST_SCORE))
            .copied()
            .collect();
        for peer in graylisted {
            self.penalize(peer, Misbehaviour::Graylisted);
        }
    }

    fn penalize(&mut self, peer: PeerId, why: Misbehaviour) {
        let score = self.reputation.entry(peer).or_default();
        *score -= why.cost();
        tracing::debug!(target: "hyperion::network", %peer, score = *score, ?why, "peer penalized");
        if *score <= BAN_THRESHOLD {
            tracing::info!(target: "hyperion::network", %peer, "banning a peer that sent invalid data");
            self.banned.insert(peer, Instant::now());
            self.reputation.remove(&peer);
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    fn is_banned(&mut self, peer: &PeerId) -> bool {
        match self.banned.get(peer) {
            Some(since) if since.elapsed() < Duration::from_secs(BAN_SECONDS) => true,
            Some(_) => {
                self.banned.remove(peer);
                false
            }
            None => false,
        }
    }

    fn event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
                if endpoint.is_dialer() {
                    self.connected_addresses.insert(endpoint.get_remote_address().clone(), peer_id);
                }
                let peers = self.swarm.connected_peers().count() as u32;
                if self.is_banned(&peer_id) || peers > self.max_peers {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                if self.announced.insert(peer_id) {
                    self.peers.store(self.announced.len() as u64, Ordering::Relaxed);
                    tracing::debug!(target: "hyperion::network", %peer_id, "peer connected");
                    let _ = self.events.try_send(NetworkEvent::Connected(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established, endpoint, .. } => {
                if endpoint.is_dialer() {
                    self.connected_addresses.remove(endpoint.get_remote_address());
                }
                if num_established == 0 && self.announced.remove(&peer_id) {
                    self.peers.store(self.announced.len() as u64, Ordering::Relaxed);
                    let _ = self.events.try_send(NetworkEvent::Disconnected(peer_id));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let topic = self.topics.get(&message.topic).copied();
                match topic {
                    Some(topic) if message.data.len() <= topic.max_bytes() => {
                        let event = NetworkEvent::Message {
                            source: propagation_source,
                            id: message_id,
                            topic,
                            data: message.data,
                        };
                        if self.events.try_send(event).is_err() {
                            tracing::warn!(target: "hyperion::network", "node busy; gossip message dropped");
                        }
                    }
                    _ => {
                        let gossip = &mut self.swarm.behaviour_mut().gossipsub;
                        gossip.report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            MessageAcceptance::Reject,
                        );
                        self.penalize(propagation_source, Misbehaviour::InvalidMessage);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                peer,
                message,
                ..
            })) => match message {
                request_response::Message::Request { request, channel, .. } => {
                    if request.count > MAX_SYNC_BLOCKS {
                        self.penalize(peer, Misbehaviour::InvalidMessage);
                        return;
                    }
                    let _ = self.events.try_send(NetworkEvent::SyncRequest { peer, request, channel });
                }
                request_response::Message::Response { response, .. } => {
                    let blocks: Option<Vec<Vec<u8>>> = (response.blocks.len() <= MAX_SYNC_BLOCKS as usize)
                        .then(|| response.blocks.iter().map(|b| hex::decode(b).ok()).collect())
                        .flatten();
                    match blocks {
                        Some(blocks) => {
                            let _ = self.events.try_send(NetworkEvent::SyncResponse { peer, blocks });
                        }
                        None => self.penalize(peer, Misbehaviour::InvalidMessage),
                    }
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if !info.protocol_version.starts_with(&format!("/{}/", self.protocol_id)) => {
                tracing::debug!(target: "hyperion::network", %peer_id, "peer of another chain");
                let _ = self.swarm.disconnect_peer_id(peer_id);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(bootnodes: Vec<Multiaddr>) -> NetworkConfig {
        NetworkConfig {
            listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            bootnodes,
            protocol_id: "hyp-test".into(),
            max_peers: 16,
            peers: Arc::default(),
        }
    }

    /// Publishes until the other side has joined the topic (gossipsub needs a subscription
    /// exchange first).
    async fn publish_until_received(
        handle: &NetworkHandle,
        events: &mut mpsc::Receiver<NetworkEvent>,
        topic: Topic,
        data: Vec<u8>,
    ) -> (PeerId, MessageId, Topic, Vec<u8>) {
        for attempt in 0..100u32 {
            let mut payload = data.clone();
            payload.extend(attempt.to_le_bytes());
            handle.publish(topic, payload);
            if let Ok(Some(NetworkEvent::Message { source, id, topic, data })) =
                tokio::time::timeout(Duration::from_millis(200), events.recv()).await
            {
                return (source, id, topic, data);
            }
        }
        panic!("nothing arrived");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn peers_gossip_and_a_peer_sending_garbage_is_banned() {
        let (a, mut a_events, a_addresses) =
            start(config(vec![]), identity::Keypair::generate_ed25519()).await.unwrap();
        let (b, mut b_events, _) =
            start(config(a_addresses.clone()), identity::Keypair::generate_ed25519()).await.unwrap();
        let (source, id, topic, data) =
            publish_until_received(&b, &mut a_events, Topic::Consensus, b"vote".to_vec()).await;
        assert_eq!((source, topic), (b.peer_id, Topic::Consensus));
        assert!(data.starts_with(b"vote"));
        a.report(id, source, true);

        // Oversize messages are not even sent.
        b.publish(Topic::Consensus, vec![0; MAX_CONSENSUS_BYTES + 1]);
        // Garbage, reported invalid by A, costs B its reputation (and its gossip score) until A
        // bans it.
        let disconnected = tokio::time::timeout(Duration::from_secs(20), async {
            for i in 0u32.. {
                b.publish(Topic::Transactions, [&[0xee][..], &i.to_le_bytes()].concat());
                let wait = tokio::time::sleep(Duration::from_millis(200));
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        _ = &mut wait => break,
                        Some(event) = a_events.recv() => {
                            if let NetworkEvent::Message { source, id, data, .. } = event {
                                assert_ne!(data.len(), MAX_CONSENSUS_BYTES + 1);
                                a.report(id, source, false);
                            }
                        }
                        Some(event) = b_events.recv() => {
                            if let NetworkEvent::Disconnected(peer) = event {
                                return peer;
                            }
                        }
                    }
                }
            }
            unreachable!()
        })
        .await
        .expect("B is disconnected");
        assert_eq!(disconnected, a.peer_id);
    }

    #[test]
    fn transaction_batches_decode_exactly() {
        use parity_scale_codec::{Compact, Encode};
        let batch = vec![vec![1u8, 2, 3], vec![], vec![9; 300]];
        assert_eq!(decode_transaction_batch(&batch.encode()), Some(batch.clone()));
        let mut trailing = batch.encode();
        trailing.push(0);
        assert_eq!(decode_transaction_batch(&trailing), None, "trailing bytes");
        let encoded = batch.encode();
        assert_eq!(decode_transaction_batch(&encoded[..encoded.len() - 1]), None, "truncated");
        let mut too_many = Compact((MAX_TRANSACTION_BATCH + 1) as u32).encode();
        too_many.extend(std::iter::repeat_n(0u8, MAX_TRANSACTION_BATCH + 1));
        assert_eq!(decode_transaction_batch(&too_many), None, "too many");
        let mut huge = Compact(1u32).encode();
        huge.extend(Compact(u32::MAX).encode());
        assert_eq!(decode_transaction_batch(&huge), None, "a length beyond the data");
    }

    #[test]
    fn the_node_key_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_key(dir.path()).unwrap();
        let again = load_or_create_key(dir.path()).unwrap();
        assert_eq!(first.public().to_peer_id(), again.public().to_peer_id());
        std::fs::write(dir.path().join("secret_ed25519"), b"short").unwrap();
        assert!(load_or_create_key(dir.path()).is_err());
    }
}
