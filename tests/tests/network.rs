//! A local testnet of 4 validator processes on loopback, connected by libp2p: they decide the
//! same blocks with verifiable certificates, a transaction sent to one validator is included
//! and seen on all, with one validator killed the other three (more than 2/3 of the stake) go
//! on deciding, the killed one, restarted, catches up by block sync and votes again, and a node
//! without a validator key started late syncs to the tip.

mod common;

use common::{address_of, free_port, run_cli, Node};
use hyperion_consensus::{ChainId, CommitCertificate, Validator, ValidatorSet};
use hyperion_primitives::{Hash, Pair};
use std::str::FromStr;
use std::time::Duration;

const BLOCK_TIME_MS: u64 = 250;
const VALIDATORS: [&str; 4] = ["alice", "bob", "charlie", "dave"];

fn start_testnet(base: &std::path::Path) -> (Vec<Node>, Vec<Vec<String>>) {
    let mut listen = Vec::new();
    let mut nodes = Vec::new();
    let mut all_args = Vec::new();
    for (i, name) in VALIDATORS.iter().enumerate() {
        let address = format!("/ip4/127.0.0.1/tcp/{}", free_port());
        let mut args: Vec<String> = vec![
            "--chain".into(),
            "local".into(),
            format!("--{name}"),
            "--base-path".into(),
            base.join(name).display().to_string(),
            "--listen-addr".into(),
            address.clone(),
            "--block-time-ms".into(),
            BLOCK_TIME_MS.to_string(),
        ];
        if i > 0 {
            args.push("--bootnodes".into());
            args.extend(listen.iter().cloned());
        }
        listen.push(address);
        nodes.push(Node::start(&args));
        all_args.push(args);
    }
    // The last node dialled everyone; the others learn the later ones through it.
    (nodes, all_args)
}

/// The local chain's validators: `//Alice`..`//Dave`, power 1 each.
fn local_set() -> ValidatorSet {
    let validators = ["//Alice", "//Bob", "//Charlie", "//Dave"]
        .iter()
        .map(|uri| Validator { public: Pair::from_string(uri).expect("dev key").public(), power: 1 })
        .collect();
    ValidatorSet::new(validators).expect("a set")
}

fn certificate_of(node: &Node, number: u64) -> (String, CommitCertificate) {
    let hash = node.expect(node.rpc.block_hash(number), "chain_getBlockHash").expect("a block");
    let block = node.expect(node.rpc.call("chain_getBlock", serde_json::json!([hash])), "chain_getBlock");
    let hex = block["certificate"].as_str().unwrap_or_else(|| panic!("block #{number} has no certificate"));
    let bytes = hex::decode(hex.trim_start_matches("0x")).expect("hex");
    (hash, CommitCertificate::decode_bounded(&bytes).expect("a certificate"))
}

#[test]
fn four_validators_decide_the_same_blocks_and_survive_one_crash() {
    let base = tempfile::tempdir().expect("a base path");
    let (mut nodes, args) = start_testnet(base.path());
    for node in nodes.iter_mut() {
        node.wait_for_best(3);
    }
    let genesis = nodes[0].expect(nodes[0].rpc.block_hash(0), "genesis").expect("a genesis block");
    let chain = ChainId(Hash::from_str(&genesis).expect("a hash"));
    let set = local_set();
    for number in 1..=3 {
        let (hash, certificate) = certificate_of(&nodes[0], number);
        certificate.verify(chain, &set).unwrap_or_else(|e| panic!("block #{number}: {e}"));
        assert_eq!((certificate.height, certificate.value.to_hex()), (number, hash.clone()));
        for node in &nodes[1..] {
            let other = node.expect(node.rpc.block_hash(number), "chain_getBlockHash");
            assert_eq!(other.as_deref(), Some(hash.as_str()), "validators disagree at #{number}");
        }
    }

    // A transfer sent to Alice's node is gossiped, included, and seen on Dave's.
    let eve = address_of("//Eve"); // not a validator: no fee share changes her balance
    let before = nodes[3].expect(nodes[3].rpc.free_balance(eve), "Eve balance on Dave node");
    let out = run_cli(
        &[
            "tx",
            "balances",
            "transfer",
            "--dest",
            &eve.to_hex(),
            "--value",
            "777",
            "--signer",
            "//Ferdie",
            "--rpc-url",
            &nodes[0].rpc_url(),
        ],
        Duration::from_secs(90),
    );
    assert!(out.status.success(), "hyperion tx failed\n{out}\n{}", nodes[0].log_tail());
    nodes[3].wait_for("the transfer on Dave's node", |rpc| {
        Ok((rpc.free_balance(eve)? == before + 777).then_some(()))
    });

    // Dave crashes; Alice, Bob and Charlie hold 3 of 4 votes and go on.
    let dave = nodes.pop().expect("four nodes");
    dave.kill();
    let best = nodes[0].expect(nodes[0].rpc.best_header(), "best header").number;
    for node in nodes.iter_mut() {
        node.wait_for_best(best + 3);
    }
    let (hash, certificate) = certificate_of(&nodes[1], best + 3);
    certificate.verify(chain, &set).unwrap_or_else(|e| panic!("block #{}: {e}", best + 3));
    assert_eq!(certificate.value.to_hex(), hash);
    assert!(certificate.signatures.len() >= 3);

    // Dave comes back on the same base path: it syncs the blocks it missed (checking their
    // certificates), then votes again; its signature shows up in a later certificate.
    let mut dave = Node::start(&args[3]);
    let target = nodes[0].expect(nodes[0].rpc.best_header(), "best header").number;
    let caught_up = dave.wait_for_best(target);
    assert_eq!(
        Some(caught_up.hash.clone()),
        nodes[0].expect(nodes[0].rpc.block_hash(caught_up.number), "chain_getBlockHash"),
        "Dave synced another chain"
    );
    let dave_key = Pair::from_string("//Dave").expect("dev key").public();
    let mut number = caught_up.number + 1;
    loop {
        dave.wait_for_best(number);
        let (_, certificate) = certificate_of(&dave, number);
        certificate.verify(chain, &set).unwrap_or_else(|e| panic!("block #{number}: {e}"));
        if certificate.signatures.iter().any(|(public, _)| *public == dave_key) {
            break;
        }
        assert!(number < caught_up.number + 60, "Dave never voted again\n{}", dave.log_tail());
        number += 1;
    }

    // A full node (no validator key) joins late and follows the chain by block sync.
    let mut full_args: Vec<String> = args[3].iter().filter(|a| *a != "--dave").cloned().collect();
    let listen = full_args.iter().position(|a| a == "--listen-addr").expect("a listen address") + 1;
    full_args[listen] = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let base_at = full_args.iter().position(|a| a == "--base-path").expect("a base path") + 1;
    full_args[base_at] = base.path().join("full").display().to_string();
    let mut full = Node::start(&full_args);
    let tip = nodes[0].expect(nodes[0].rpc.best_header(), "best header").number;
    let followed = full.wait_for_best(tip);
    assert_eq!(
        Some(followed.hash.clone()),
        nodes[0].expect(nodes[0].rpc.block_hash(followed.number), "chain_getBlockHash"),
        "the full node followed another chain"
    );
    let health = full.wait_for("system_health to report peers and no sync", |rpc| {
        let health = rpc.call("system_health", serde_json::json!([]))?;
        let ready = health["peers"].as_u64().unwrap_or(0) > 0 && health["isSyncing"] == false;
        Ok(ready.then_some(health))
    });
    assert_eq!(health["shouldHavePeers"], true);
}
