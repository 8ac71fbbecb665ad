//! Staking on a live local network of validator processes, with epochs of a few blocks:
//! - a new sequencer (`//Eve`, whose node follows the chain from the start) registers, puts
//!   its key in its node's keystore (`key insert`) and restarts it with `--validator` (a key
//!   of a registered sequencer is accepted), is elected at the next boundary, enters the set
//!   the epoch after, and then proposes blocks and signs certificates;
//! - a validator made to double-sign (`--unsafe-double-sign` on `//Dave`'s node) is reported
//!   by the others, slashed and jailed, and leaves the set;
//! - a holder who delegated to `//Alice` sees the fees paid by transactions as claimable
//!   rewards, and claims them.

mod common;

use common::{address_of, free_port, run_cli, Node};
use hyperion_consensus::CommitCertificate;
use hyperion_primitives::Pair;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const BLOCK_TIME_MS: u64 = 100;
const EPOCH_LENGTH: u64 = 8;
const NODES: [&str; 5] = ["alice", "bob", "charlie", "dave", "eve"];

/// The local spec with short epochs, no downtime jail (nodes start one after another), and
/// room for a fifth validator.
fn write_spec(dir: &Path) -> String {
    let out = run_cli(&["build-spec", "--chain", "local"], Duration::from_secs(60));
    assert!(out.status.success(), "build-spec failed\n{out}");
    let mut spec: Value = serde_json::from_str(&out.stdout).expect("build-spec prints JSON");
    spec["id"] = json!("staking-e2e");
    spec["genesis"]["epochLength"] = json!(EPOCH_LENGTH);
    let config = &mut spec["genesis"]["runtime"]["staking"]["config"];
    config["epochLength"] = json!(EPOCH_LENGTH);
    config["downtimeThreshold"] = json!(1_000_000_000);
    config["jailEpochs"] = json!(1000);
    let path = dir.join("staking.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&spec).expect("JSON")).expect("write the spec");
    path.display().to_string()
}

fn query(node: &Node, method: &str, args: Value) -> Value {
    node.expect(node.rpc.call("state_call", json!([method, args])), method)
}

/// `hyperion tx <pallet> <call> <args> --signer <signer>` against `node`; its output.
fn tx(node: &Node, signer: &str, pallet: &str, call: &str, args: &[&str]) -> String {
    let url = node.rpc_url();
    let mut argv = vec!["tx", pallet, call];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&["--signer", signer, "--rpc-url", &url]);
    let out = run_cli(&argv, Duration::from_secs(150));
    assert!(out.status.success(), "hyperion tx {pallet} {call} failed\n{out}\n{}", node.log_tail());
    out.stdout
}

fn certificate_signers(node: &Node, number: u64) -> Vec<hyperion_primitives::Public> {
    let hash = node.expect(node.rpc.block_hash(number), "chain_getBlockHash").expect("a block");
    let block = node.expect(node.rpc.call("chain_getBlock", json!([hash])), "chain_getBlock");
    let hex = block["certificate"].as_str().unwrap_or_else(|| panic!("block #{number} has no certificate"));
    let bytes = hex::decode(hex.trim_start_matches("0x")).expect("hex");
    let certificate = CommitCertificate::decode_bounded(&bytes).expect("a certificate");
    certificate.signatures.iter().map(|(public, _)| *public).collect()
}

fn proposer_of(node: &Node, number: u64) -> String {
    let hash = node.expect(node.rpc.block_hash(number), "chain_getBlockHash").expect("a block");
    let header = node.expect(node.rpc.call("chain_getHeader", json!([hash])), "chain_getHeader");
    header["proposer"].as_str().expect("a proposer").to_lowercase()
}

#[test]
fn sequencers_join_by_stake_double_signers_are_slashed_and_holders_earn_fees() {
    let base = tempfile::tempdir().expect("a base path");
    let spec = write_spec(base.path());
    let mut listen: Vec<String> = Vec::new();
    let mut nodes = Vec::new();
    let mut all_args = Vec::new();
    for name in NODES {
        let address = format!("/ip4/127.0.0.1/tcp/{}", free_port());
        let mut args: Vec<String> = vec![
            "--chain".into(),
            spec.clone(),
            "--base-path".into(),
            base.path().join(name).display().to_string(),
            "--listen-addr".into(),
            address.clone(),
            "--block-time-ms".into(),
            BLOCK_TIME_MS.to_string(),
        ];
        if name != "eve" {
            args.push(format!("--{name}"));
        }
        if name == "dave" {
            args.push("--unsafe-double-sign".into());
        }
        if !listen.is_empty() {
            args.push("--bootnodes".into());
            args.extend(listen.iter().cloned());
        }
        listen.push(address);
        nodes.push(Node::start(&args));
        all_args.push(args);
    }
    // Eve's node follows the chain from the start.
    let mut eve_node = nodes.pop().expect("five nodes");
    let alice = &nodes[0];
    let dave_address = address_of("//Dave").to_hex();

    // Dave's conflicting prevotes are reported, and he is slashed and jailed.
    let jailed = eve_node.wait_for("Dave to be slashed and jailed", |rpc| {
        let seq = rpc.call("state_call", json!(["staking_sequencer", { "operator": dave_address }]))?;
        Ok((seq["status"] == "jailed").then_some(seq))
    });
    assert_ne!(jailed["slashed"], "0", "{jailed}");

    // Eve registers with the minimum self-bond and a 5% commission.
    let eve_key = Pair::from_string("//Eve").expect("dev key").public();
    tx(
        alice,
        "//Eve",
        "staking",
        "register_sequencer",
        &["--key", &eve_key.to_hex(), "--commission", "50000000", "--self_bond", "2e22"],
    );
    // Ferdie backs Alice.
    tx(
        alice,
        "//Ferdie",
        "staking",
        "delegate",
        &["--sequencer", &address_of("//Alice").to_hex(), "--amount", "1e22"],
    );

    // Eve's node restarts as a validator with her key in its keystore: a registered
    // sequencer's key is accepted; it signs once staking elects her.
    eve_node.wait_for("Eve's registration on her node", |rpc| {
        let seq = rpc
            .call("state_call", json!(["staking_sequencer", { "operator": address_of("//Eve").to_hex() }]))?;
        Ok((!seq.is_null()).then_some(()))
    });
    eve_node.kill();
    let eve_args = &all_args[4];
    let out = run_cli(
        &["key", "insert", "--suri", "//Eve", "--chain", &spec, "--base-path", &eve_args[3]],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "key insert failed\n{out}");
    let mut args = eve_args.clone();
    args.push("--validator".into());
    let mut eve_node = Node::start(&args);

    // Eve is elected at the next boundary and serves from the epoch after; Dave, jailed,
    // is no longer elected.
    let current = eve_node.wait_for("Eve in the validator set", |rpc| {
        let sets = rpc.call("state_call", json!(["staking_validators", {}]))?;
        let has = |who: &str| {
            sets["current"].as_array().is_some_and(|set| set.iter().any(|v| v["key"].as_str() == Some(who)))
        };
        Ok((has(&eve_key.to_hex()) && !has(&Pair::from_string("//Dave").unwrap().public().to_hex()))
            .then_some(sets))
    });
    let epoch = current["epoch"].as_u64().expect("an epoch");
    // From the first height of that epoch on, Eve proposes and signs.
    let first = epoch * EPOCH_LENGTH + 1;
    let eve_address = address_of("//Eve").to_hex().to_lowercase();
    let mut number = first;
    let (mut proposed, mut signed) = (false, false);
    while !(proposed && signed) {
        eve_node.wait_for_best(number + 1);
        proposed |= proposer_of(&eve_node, number) == eve_address;
        // A certificate holds enough signatures, not necessarily all; Eve's shows up soon.
        signed |= certificate_signers(&eve_node, number).contains(&eve_key);
        assert!(number < first + 6 * EPOCH_LENGTH, "Eve never proposed or signed\n{}", eve_node.log_tail());
        number += 1;
    }

    // Fees paid now that Ferdie's stake earns (the transfer's fee feeds the Holders Mining
    // pool) are his rewards once the next boundary shares them out.
    let dest = address_of("//Charlie").to_hex();
    tx(&eve_node, "//Bob", "balances", "transfer", &["--dest", &dest, "--value", "1"]);
    let ferdie = address_of("//Ferdie").to_hex();
    let holder = eve_node.wait_for("Ferdie's rewards", |rpc| {
        let holder = rpc.call("state_call", json!(["staking_holder", { "who": ferdie }]))?;
        let claimable: u128 = holder["claimable"].as_str().unwrap_or("0").parse().unwrap_or(0);
        Ok((claimable > 0).then_some(holder))
    });
    assert_eq!(
        holder["delegations"][0]["sequencer"].as_str().map(str::to_lowercase),
        Some(address_of("//Alice").to_hex().to_lowercase())
    );
    let out = tx(&eve_node, "//Ferdie", "staking", "claim_rewards", &[]);
    assert!(out.contains("RewardsClaimed"), "{out}");
    // The pots hold what the ledger says.
    let totals = query(&eve_node, "staking_totals", json!({}));
    assert_eq!(totals["bonded"], totals["bondedPot"], "{totals}");
}
