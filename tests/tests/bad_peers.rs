//! Peers that send bad data, against a running node, over the node's own protocols (a libp2p
//! peer written here, independent of the node's network code).
//!
//! - Gossip: garbage and oversize messages on every topic, votes with a bad signature or from
//!   a key that is not a validator, sync requests over the limit. Each such peer is
//!   disconnected and banned (nothing but invalid data leads there), and the node keeps
//!   producing blocks.
//! - Sync: a peer that answers a following node's request with blocks whose certificate is
//!   damaged, missing, or for another block is banned at once, and nothing is imported.

mod common;

use common::{free_port, Node};
use futures::StreamExt;
use hyperion_consensus::{ChainId, CommitCertificate, Message, SignedVote, Vote, VoteKind};
use hyperion_primitives::{Block, Hash, Pair};
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, identity, noise, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm};
use parity_scale_codec::{Decode, Encode};
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use std::time::Duration;

/// How long the rogue waits for anything from the node.
const WAIT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SyncRequest {
    from: u64,
    count: u32,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct SyncResponse {
    blocks: Vec<String>,
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    gossipsub: gossipsub::Behaviour,
    sync: request_response::json::Behaviour<SyncRequest, SyncResponse>,
    identify: identify::Behaviour,
}

/// A peer of the chain that says whatever the test wants.
struct Rogue {
    swarm: Swarm<Behaviour>,
    protocol_id: String,
    /// Blocks to answer sync requests with.
    answer: Vec<Block>,
}

impl Rogue {
    fn new(protocol_id: &str) -> Rogue {
        let key = identity::Keypair::generate_ed25519();
        let sync = format!("/{protocol_id}/sync/1");
        let identify_version = format!("/{protocol_id}/1.0.0");
        let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
            .expect("a transport")
            .with_behaviour(|key| {
                let config = gossipsub::ConfigBuilder::default()
                    .max_transmit_size(1 << 20)
                    .flood_publish(true)
                    .heartbeat_interval(Duration::from_millis(200))
                    .build()
                    .expect("a gossipsub config");
                let gossipsub = gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), config)?;
                let sync = request_response::json::Behaviour::with_codec(
                    request_response::json::codec::Codec::default().set_response_size_maximum(64 << 20),
                    [(StreamProtocol::try_from_owned(sync)?, ProtocolSupport::Full)],
                    request_response::Config::default(),
                );
                let identify =
                    identify::Behaviour::new(identify::Config::new(identify_version, key.public()));
                Ok(Behaviour { gossipsub, sync, identify })
            })
            .expect("a behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        Rogue { swarm, protocol_id: protocol_id.to_string(), answer: Vec::new() }
    }

    fn topic(&self, kind: &str) -> IdentTopic {
        IdentTopic::new(format!("/{}/{kind}/1", self.protocol_id))
    }

    /// Drives the swarm until `done` returns something (answering sync requests on the way);
    /// `None` when [`WAIT`] passes first.
    async fn until<T>(
        &mut self,
        mut done: impl FnMut(&SwarmEvent<BehaviourEvent>) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await.ok()?;
            if let SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                message: request_response::Message::Request { channel, .. },
                ..
            })) = event
            {
                let blocks = self.answer.iter().map(|b| hex::encode(b.encode())).collect();
                let _ = self.swarm.behaviour_mut().sync.send_response(channel, SyncResponse { blocks });
                continue;
            }
            if let Some(value) = done(&event) {
                return Some(value);
            }
        }
    }

    /// Dials `node` and waits until it has joined gossip's topics (so published messages reach
    /// it); returns its peer id.
    async fn connect(&mut self, node: &Multiaddr) -> PeerId {
        for kind in ["consensus", "blocks", "transactions"] {
            let topic = self.topic(kind);
            self.swarm.behaviour_mut().gossipsub.subscribe(&topic).expect("subscribe");
        }
        self.swarm.dial(node.clone()).expect("dial the node");
        let peer = self
            .until(|event| match event {
                SwarmEvent::ConnectionEstablished { peer_id, .. } => Some(*peer_id),
                _ => None,
            })
            .await
            .expect("connected to the node");
        let mut joined = 0;
        self.until(|event| match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { .. })) => {
                joined += 1;
                (joined == 3).then_some(())
            }
            _ => None,
        })
        .await
        .expect("the node joined the topics");
        peer
    }

    /// Publishes `data` on `kind` every 200 ms until the node disconnects this peer; whether it
    /// did within [`WAIT`].
    async fn send_until_banned(&mut self, kind: &str, data: &[u8]) -> bool {
        let topic = self.topic(kind);
        for attempt in 0u32..100 {
            // Gossip drops repeated payloads as duplicates; vary the tail where it is ignored.
            let mut payload = data.to_vec();
            if kind != "consensus" || payload.len() > 512 {
                payload.extend(attempt.to_le_bytes());
            }
            let _ = self.swarm.behaviour_mut().gossipsub.publish(topic.clone(), payload);
            let closed = tokio::time::timeout(Duration::from_millis(200), async {
                loop {
                    if let SwarmEvent::ConnectionClosed { num_established: 0, .. } =
                        self.swarm.select_next_some().await
                    {
                        return;
                    }
                }
            })
            .await;
            if closed.is_ok() {
                return true;
            }
        }
        false
    }

    /// Asks `peer` for blocks `1..=count`.
    async fn fetch_blocks(&mut self, peer: PeerId, count: u32) -> Vec<Block> {
        self.swarm.behaviour_mut().sync.send_request(&peer, SyncRequest { from: 1, count });
        let response = self
            .until(|event| match event {
                SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                    message: request_response::Message::Response { response, .. },
                    ..
                })) => Some(response.clone()),
                _ => None,
            })
            .await
            .expect("the node answers a sync request");
        response
            .blocks
            .iter()
            .map(|hex_block| {
                let bytes = hex::decode(hex_block).expect("hex");
                Block::decode(&mut &bytes[..]).expect("a block")
            })
            .collect()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime")
}

/// A dev-chain validator (Alice) on the network, with its multiaddr.
fn start_validator(base: &std::path::Path) -> (Node, Multiaddr) {
    let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let args: Vec<String> = ["--chain", "dev", "--alice", "--block-time-ms", "100", "--listen-addr", &listen]
        .iter()
        .map(|a| a.to_string())
        .chain(["--base-path".to_string(), base.display().to_string()])
        .collect();
    (Node::start(&args), listen.parse().expect("a multiaddr"))
}

/// The dev chain's gossip protocol id and chain id, as the node derives them.
fn protocol_of(node: &Node) -> (String, ChainId) {
    let genesis = node.expect(node.rpc.block_hash(0), "genesis").expect("a genesis block");
    let id = format!("hyp/{}", &genesis[2..10]);
    (id, ChainId(Hash::from_str(&genesis).expect("a hash")))
}

#[test]
fn peers_sending_invalid_gossip_are_banned_and_the_node_goes_on() {
    let base = tempfile::tempdir().expect("a base path");
    let (mut node, address) = start_validator(base.path());
    node.wait_for_best(2);
    let (protocol_id, chain) = protocol_of(&node);
    let height = node.expect(node.rpc.best_header(), "best header").number + 1;
    let alice = Pair::from_string("//Alice").expect("dev key");
    let vote = Vote { height, round: 0, kind: VoteKind::Prevote, value: None };
    let mut forged = SignedVote::sign(chain, vote, &alice);
    forged.signature.0[7] ^= 1;
    let not_a_validator = SignedVote::sign(chain, vote, &Pair::from_string("//Eve").expect("dev key"));

    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("garbage vote", "consensus", vec![0xee; 40]),
        ("oversize consensus message", "consensus", vec![1; 1000]),
        ("far oversize consensus message", "consensus", vec![1; 100_000]),
        ("vote with a bad signature", "consensus", Message::Vote(forged).encode()),
        ("vote of a key that is not a validator", "consensus", Message::Vote(not_a_validator).encode()),
        ("garbage block", "blocks", vec![0xab; 300]),
        ("garbage transaction", "transactions", vec![0xcd; 64]),
    ];
    let rt = runtime();
    for (what, kind, data) in cases {
        let before = node.expect(node.rpc.best_header(), "best header").number;
        let banned = rt.block_on(async {
            let mut rogue = Rogue::new(&protocol_id);
            rogue.connect(&address).await;
            let banned = rogue.send_until_banned(kind, &data).await;
            // Banned peers are refused when they come back.
            let refused = banned && {
                rogue.swarm.dial(address.clone()).expect("dial again");
                let closed = rogue
                    .until(|event| match event {
                        SwarmEvent::ConnectionClosed { .. } | SwarmEvent::OutgoingConnectionError { .. } => {
                            Some(())
                        }
                        _ => None,
                    })
                    .await;
                closed.is_some()
            };
            banned && refused
        });
        assert!(banned, "a peer sending a {what} was not banned\n{}", node.log_tail());
        node.wait_for_best(before + 2);
    }

    // An oversize sync request (more blocks than a request may ask for) also costs reputation.
    let banned = rt.block_on(async {
        let mut rogue = Rogue::new(&protocol_id);
        let peer = rogue.connect(&address).await;
        for _ in 0..10 {
            rogue.swarm.behaviour_mut().sync.send_request(&peer, SyncRequest { from: 1, count: 1_000_000 });
        }
        rogue
            .until(|event| {
                matches!(event, SwarmEvent::ConnectionClosed { num_established: 0, .. }).then_some(())
            })
            .await
            .is_some()
    });
    assert!(banned, "a peer sending oversize sync requests was not banned\n{}", node.log_tail());
    let best = node.expect(node.rpc.best_header(), "best header").number;
    node.wait_for_best(best + 2);
}

#[test]
fn a_peer_serving_blocks_without_a_valid_certificate_is_banned() {
    let base = tempfile::tempdir().expect("a base path");
    let (mut validator, validator_address) = start_validator(&base.path().join("validator"));
    validator.wait_for_best(4);
    let (protocol_id, _) = protocol_of(&validator);
    let rt = runtime();
    let genuine = rt.block_on(async {
        let mut rogue = Rogue::new(&protocol_id);
        let peer = rogue.connect(&validator_address).await;
        rogue.fetch_blocks(peer, 4).await
    });
    assert_eq!(genuine.len(), 4, "the validator served 4 blocks");

    // A follower (no key) that the rogues dial; it asks every new peer for blocks.
    let follower_address = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let follower_args: Vec<String> = ["--chain", "dev", "--listen-addr", &follower_address]
        .iter()
        .map(|a| a.to_string())
        .chain(["--base-path".to_string(), base.path().join("follower").display().to_string()])
        .collect();
    let follower = Node::start(&follower_args);
    let follower_address: Multiaddr = follower_address.parse().expect("a multiaddr");

    let damaged_signature = {
        let mut blocks = genuine.clone();
        let bytes = blocks[0].certificate.clone().expect("a certificate");
        let mut certificate = CommitCertificate::decode_bounded(&bytes).expect("a certificate");
        certificate.signatures[0].1 .0[5] ^= 1;
        blocks[0].certificate = Some(certificate.encode());
        blocks
    };
    let without_certificate = {
        let mut blocks = genuine.clone();
        blocks[0].certificate = None;
        blocks
    };
    let certificate_of_another_block = {
        let mut blocks = genuine.clone();
        blocks[0].header.timestamp_ms += 1;
        blocks
    };
    for (what, answer) in [
        ("a damaged signature", damaged_signature),
        ("no certificate", without_certificate),
        ("the certificate of another block", certificate_of_another_block),
    ] {
        let banned = rt.block_on(async {
            let mut rogue = Rogue::new(&protocol_id);
            rogue.answer = answer;
            rogue.swarm.dial(follower_address.clone()).expect("dial the follower");
            rogue
                .until(|event| {
                    matches!(event, SwarmEvent::ConnectionClosed { num_established: 0, .. }).then_some(())
                })
                .await
                .is_some()
        });
        assert!(banned, "a peer serving blocks with {what} was not banned\n{}", follower.log_tail());
        let best = follower.expect(follower.rpc.best_header(), "follower best").number;
        assert_eq!(best, 0, "the follower imported a block with {what}");
    }
}
