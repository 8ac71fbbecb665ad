//! A single `--dev` node: it produces blocks, answers RPC, includes a transfer sent with
//! `hyperion tx`, and refuses malformed extrinsics.

mod common;

use common::{address_of, hashes_in, run_cli, Node};
use serde_json::{json, Value};
use std::time::Duration;

/// How long `hyperion tx` may take to submit and see its extrinsic included.
const TX_TIMEOUT: Duration = Duration::from_secs(90);

#[test]
fn dev_chain_produces_blocks_and_includes_a_transfer() {
    let mut node = Node::start_dev(None, 200);
    node.wait_for_best(4);

    let health = node.expect(node.rpc.call("system_health", json!([])), "system_health");
    assert!(health["peers"].is_u64(), "system_health.peers is not a number: {health}");
    assert!(health["isSyncing"].is_boolean(), "system_health.isSyncing is not a bool: {health}");
    assert!(health["shouldHavePeers"].is_boolean(), "system_health.shouldHavePeers: {health}");
    let chain = node.expect(node.rpc.call("system_chain", json!([])), "system_chain");
    assert!(chain.as_str().is_some_and(|name| !name.is_empty()), "system_chain: {chain}");

    let (alice, bob) = (address_of("//Alice"), address_of("//Bob"));
    let bob_before = node.expect(node.rpc.free_balance(bob), "Bob's balance before");
    let alice_nonce = node.expect(node.rpc.next_index(alice), "Alice's nonce");

    let (dest, url) = (bob.to_hex(), node.rpc_url());
    let args = ["tx", "balances", "transfer", "--dest", &dest, "--value", "1000000"];
    let out = run_cli(&[&args[..], &["--signer", "//Alice", "--rpc-url", &url]].concat(), TX_TIMEOUT);
    assert!(out.status.success(), "hyperion tx failed\n{out}\n{}", node.log_tail());
    assert!(out.stdout.contains("Transfer"), "hyperion tx printed no Transfer event\n{out}");

    let bob_after = node.expect(node.rpc.free_balance(bob), "Bob's balance after");
    assert_eq!(bob_after, bob_before + 1_000_000, "Bob's free balance must grow by exactly the value");
    assert_eq!(node.expect(node.rpc.next_index(alice), "Alice's nonce after"), alice_nonce + 1);

    // The receipt, by a hash `hyperion tx` printed, or else by scanning the chain for the
    // extrinsic Alice signed with that nonce.
    let printed = hashes_in(&out.stdout).into_iter().find_map(|hash| {
        let receipt = node.rpc.receipt(&hash).ok().flatten()?;
        Some((hash, receipt))
    });
    let (hash, receipt) = match printed {
        Some(found) => found,
        None => {
            let hash = node.expect(node.rpc.find_extrinsic(alice, alice_nonce), "scan the chain");
            let hash = hash.expect("Alice's transfer is in no block of the best chain");
            let receipt = node.expect(node.rpc.receipt(&hash), "chain_getReceipt");
            (hash.clone(), receipt.unwrap_or_else(|| panic!("no receipt for included {hash}")))
        }
    };
    assert_eq!(receipt["success"], json!(true), "receipt of {hash}: {receipt}");
    let events = receipt["events"].as_array().unwrap_or_else(|| panic!("no events: {receipt}"));
    let is_transfer = |event: &Value| {
        let named = |key: &str, name: &str| event[key].as_str().is_some_and(|s| s.eq_ignore_ascii_case(name));
        named("pallet", "balances") && named("event", "Transfer")
    };
    assert!(events.iter().any(is_transfer), "no balances Transfer event in receipt {receipt}");
    let block_hash = receipt["blockHash"].as_str().unwrap_or_else(|| panic!("no blockHash: {receipt}"));
    let header = node.expect(node.rpc.header(block_hash), "header of the receipt's block");
    let number = receipt["blockNumber"].clone();
    let number_matches = number.as_u64() == Some(header.number)
        || number.as_str().and_then(|n| common::parse_hex_u64(n).ok()) == Some(header.number);
    assert!(number_matches, "receipt blockNumber {number} but its block is #{}", header.number);
}

#[test]
fn malformed_extrinsics_are_rejected_over_rpc() {
    let node = Node::start_dev(None, 200);
    for bad in ["0xdeadbeef", "0x00", "0x", "not hex", "0x01ff"] {
        let response = node.expect(node.rpc.request("author_submitExtrinsic", json!([bad])), bad);
        assert!(
            response.get("error").is_some() && response.get("result").is_none(),
            "author_submitExtrinsic({bad:?}) must answer a JSON-RPC error, got {response}"
        );
    }
    // The node still serves after the garbage.
    node.expect(node.rpc.best_header(), "chain_getHeader after bad submissions");
}

#[test]
fn key_inspect_json_matches_the_primitives() {
    let out = run_cli(&["key", "inspect", "//Alice", "--output-type", "json"], Duration::from_secs(30));
    assert!(out.status.success(), "hyperion key inspect failed\n{out}");
    let info: Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("key inspect --output-type json is not JSON ({e})\n{out}"));
    let pair = hyperion_primitives::Pair::from_string("//Alice").expect("//Alice parses");
    let lower = |key: &str| info[key].as_str().map(str::to_ascii_lowercase);
    assert_eq!(lower("address"), Some(pair.public().address().to_hex()), "{info}");
    assert_eq!(lower("publicKey"), Some(pair.public().to_hex()), "{info}");
    assert_eq!(lower("secretSeed"), Some(format!("0x{}", hex::encode(pair.seed()))), "{info}");
}

/// A validator key put in the keystore with `key insert` is the one `--validator` signs with;
/// without a validator key in the keystore the node refuses to start, saying how to add one.
#[test]
fn a_validator_signs_with_its_keystore_key() {
    let base = tempfile::tempdir().expect("a base path");
    let base_path = base.path().display().to_string();
    let listen = format!("/ip4/127.0.0.1/tcp/{}", common::free_port());
    let node_args = |extra: &[&str]| -> Vec<String> {
        let args = ["--chain", "dev", "--base-path", &base_path, "--listen-addr", &listen];
        args.iter().chain(extra).map(|a| a.to_string()).collect()
    };

    let refused = run_cli(
        &["--chain", "dev", "--base-path", &base_path, "--validator", "--no-prometheus"],
        Duration::from_secs(60),
    );
    assert!(!refused.status.success(), "a validator without a key started\n{refused}");
    assert!(refused.stderr.contains("key insert"), "the error does not say how to add a key\n{refused}");

    // Bob is not a validator of the dev chain: inserted, but noted, and still no key to sign with.
    let out = run_cli(
        &["key", "insert", "--suri", "//Bob", "--chain", "dev", "--base-path", &base_path],
        TX_TIMEOUT,
    );
    assert!(out.status.success() && out.stdout.contains("not in the genesis validator set"), "{out}");
    let out = run_cli(
        &["key", "insert", "--suri", "//Alice", "--chain", "dev", "--base-path", &base_path],
        TX_TIMEOUT,
    );
    assert!(out.status.success(), "key insert failed\n{out}");

    let mut node = Node::start(&node_args(&["--validator", "--block-time-ms", "100"]));
    node.wait_for_best(3);
    let author = node.expect(node.rpc.call("chain_getHeader", json!([])), "chain_getHeader");
    let alice = address_of("//Alice").to_hex();
    assert_eq!(author["proposer"].as_str().map(str::to_lowercase), Some(alice.to_lowercase()), "{author}");
}
