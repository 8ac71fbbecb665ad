//! Network splits between 4 validator processes (equal stake). Every connection between two
//! nodes goes through a relay the test can cut (`common::proxy`), so a split is a real loss of
//! traffic at the transport level while both sides keep running.
//!
//! - 3 | 1: the three (3/4 > 2/3 of the stake) go on deciding; the one alone decides nothing;
//!   healed, it catches up by sync and the chain goes on.
//! - 2 | 2: neither side has a quorum and neither decides; healed, both go on.
//!
//! At the end every node holds the same block at every height: no split produced conflicting
//! decisions.

mod common;

use common::proxy::Link;
use common::{free_port, Node};
use std::time::Duration;

const BLOCK_TIME_MS: u64 = 250;
const VALIDATORS: [&str; 4] = ["alice", "bob", "charlie", "dave"];
/// Long enough for a decision under way at a split to complete (several block times).
const SETTLE: Duration = Duration::from_secs(2);

/// 4 validators; node `i` reaches node `j` only through `links[i][j]`.
struct Testnet {
    nodes: Vec<Node>,
    links: Vec<Vec<Option<Link>>>,
    _base: tempfile::TempDir,
}

impl Testnet {
    fn start() -> Testnet {
        let base = tempfile::tempdir().expect("a base path");
        let ports: Vec<u16> = VALIDATORS.iter().map(|_| free_port()).collect();
        let links: Vec<Vec<Option<Link>>> = (0..VALIDATORS.len())
            .map(|i| (0..VALIDATORS.len()).map(|j| (i != j).then(|| Link::new(ports[j]))).collect())
            .collect();
        let nodes = VALIDATORS
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut args: Vec<String> = vec![
                    "--chain".into(),
                    "local".into(),
                    format!("--{name}"),
                    "--base-path".into(),
                    base.path().join(name).display().to_string(),
                    "--listen-addr".into(),
                    format!("/ip4/127.0.0.1/tcp/{}", ports[i]),
                    "--block-time-ms".into(),
                    BLOCK_TIME_MS.to_string(),
                    "--bootnodes".into(),
                ];
                args.extend(links[i].iter().flatten().map(|l| format!("/ip4/127.0.0.1/tcp/{}", l.port)));
                Node::start(&args)
            })
            .collect();
        Testnet { nodes, links, _base: base }
    }

    /// Cuts every link between a node of `side` and a node outside it.
    fn split(&self, side: &[usize]) {
        for (i, row) in self.links.iter().enumerate() {
            for (j, link) in row.iter().enumerate() {
                if side.contains(&i) != side.contains(&j) {
                    link.as_ref().expect("a link between two nodes").cut();
                }
            }
        }
    }

    fn heal(&self) {
        self.links.iter().flatten().flatten().for_each(Link::heal);
    }

    fn best(&self, i: usize) -> u64 {
        let node = &self.nodes[i];
        node.expect(node.rpc.best_header(), "best header").number
    }

    fn peers(&self, i: usize) -> u64 {
        let node = &self.nodes[i];
        let health = node.expect(node.rpc.call("system_health", serde_json::json!([])), "system_health");
        health["peers"].as_u64().expect("a peer count")
    }

    /// Every node is connected to no one across the split (no connection went around the
    /// relays, say to an address a peer announced).
    fn assert_split(&self, side: &[usize]) {
        for i in 0..self.nodes.len() {
            let same_side =
                (0..self.nodes.len()).filter(|&j| j != i && side.contains(&j) == side.contains(&i));
            let most = same_side.count() as u64;
            let peers = self.peers(i);
            assert!(peers <= most, "node {i} has {peers} peers across a split\n{}", self.nodes[i].log_tail());
        }
    }

    fn wait_all(&mut self, number: u64) {
        for node in self.nodes.iter_mut() {
            node.wait_for_best(number);
        }
    }
}

#[test]
fn a_minority_decides_nothing_and_the_network_recovers_from_splits() {
    let mut net = Testnet::start();
    net.wait_all(3);

    // 3 | 1: Dave alone.
    net.split(&[3]);
    std::thread::sleep(SETTLE);
    net.assert_split(&[3]);
    let dave_at_split = net.best(3);
    let majority = net.best(0);
    for i in 0..3 {
        net.nodes[i].wait_for_best(majority + 5);
    }
    net.assert_split(&[3]);
    assert_eq!(net.best(3), dave_at_split, "Dave decided a block alone\n{}", net.nodes[3].log_tail());

    net.heal();
    let tip = net.best(0);
    net.nodes[3].wait_for_best(tip);
    net.wait_all(tip + 3);

    // 2 | 2: no side has more than 2/3 of the stake.
    net.split(&[0, 1]);
    std::thread::sleep(SETTLE);
    let stalled: Vec<u64> = (0..4).map(|i| net.best(i)).collect();
    std::thread::sleep(Duration::from_millis(12 * BLOCK_TIME_MS));
    let later: Vec<u64> = (0..4).map(|i| net.best(i)).collect();
    net.assert_split(&[0, 1]);
    assert_eq!(stalled, later, "a side without a quorum decided a block");

    net.heal();
    let top = *later.iter().max().expect("four nodes");
    net.wait_all(top + 3);

    // Agreement: the same block at every height on every node.
    let common_tip = (0..4).map(|i| net.best(i)).min().expect("four nodes");
    for number in 1..=common_tip {
        let hashes: Vec<Option<String>> = net
            .nodes
            .iter()
            .map(|node| node.expect(node.rpc.block_hash(number), "chain_getBlockHash"))
            .collect();
        assert!(hashes.windows(2).all(|w| w[0] == w[1]), "conflicting blocks at #{number}: {hashes:?}");
        assert!(hashes[0].is_some(), "no block #{number}");
    }
}
