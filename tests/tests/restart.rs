//! Crash safety: a `--dev` node SIGKILLed at any moment comes back on the same base path with
//! every block it ever served intact (same hash, same state root), its state (a transfer)
//! intact, and goes on deciding blocks through consensus, each with a commit certificate that
//! verifies.

mod common;

use common::{address_of, run_cli, HeaderInfo, Node};
use rand::Rng;
use std::time::Duration;

const BLOCK_TIME_MS: u64 = 200;
/// Kills at a random moment while blocks are produced, after the first deliberate one.
const RANDOM_KILLS: usize = 3;
const TRANSFER_VALUE: u128 = 1_000_000;

#[test]
fn sigkilled_node_restarts_with_its_chain_intact() {
    let base = tempfile::tempdir().expect("create a base path");
    let bob = address_of("//Bob");

    let mut node = Node::start_dev(Some(base.path()), BLOCK_TIME_MS);
    let bob_before = node.expect(node.rpc.free_balance(bob), "Bob's balance before");
    let (dest, url) = (bob.to_hex(), node.rpc_url());
    let out = run_cli(
        &[
            "tx",
            "balances",
            "transfer",
            "--dest",
            &dest,
            "--value",
            "1000000",
            "--signer",
            "//Alice",
            "--rpc-url",
            &url,
        ],
        Duration::from_secs(90),
    );
    assert!(out.status.success(), "hyperion tx failed\n{out}\n{}", node.log_tail());
    let bob_expected = bob_before + TRANSFER_VALUE;
    assert_eq!(node.expect(node.rpc.free_balance(bob), "Bob's balance"), bob_expected);

    let genesis = node.expect(node.rpc.block_hash(0), "chain_getBlockHash(0)").expect("a genesis block");
    let genesis = node.expect(node.rpc.header(&genesis), "genesis header");
    let best = node.wait_for_best(5);
    node.kill();

    // Every header the node served before a kill; each must survive every later restart.
    let mut served = vec![genesis, best];
    let mut rng = rand::thread_rng();
    for round in 0..=RANDOM_KILLS {
        let mut node = Node::start_dev(Some(base.path()), BLOCK_TIME_MS);
        check_served_blocks(&mut node, &served, round);
        let resumed = node.expect(node.rpc.best_header(), "best header after restart");
        node.wait_for_best(resumed.number + 2);
        let bob_now = node.expect(node.rpc.free_balance(bob), "Bob's balance after restart");
        assert_eq!(bob_now, bob_expected, "round {round}: Bob's balance after restart");
        if round == RANDOM_KILLS {
            check_certificates(&mut node, resumed.number + 2);
            break;
        }
        // Kill at a random moment while blocks are being produced, just after a best header
        // was served (so it must be durable) and likely in the middle of writing the next one.
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..3 * BLOCK_TIME_MS)));
        let observed = node.expect(node.rpc.best_header(), "best header before SIGKILL");
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..BLOCK_TIME_MS)));
        node.kill();
        served.push(observed);
    }
}

/// After a restart: the best block reaches the last served number, and every served block is
/// still on the best chain with the same hash and state root.
fn check_served_blocks(node: &mut Node, served: &[HeaderInfo], round: usize) {
    let last = served.last().expect("at least one served header");
    node.wait_for_best(last.number);
    for before in served {
        let hash = node.expect(node.rpc.block_hash(before.number), "chain_getBlockHash");
        assert_eq!(
            hash.as_deref(),
            Some(before.hash.as_str()),
            "round {round}: block #{} changed hash across SIGKILL + restart\n{}",
            before.number,
            node.log_tail()
        );
        let after = node.expect(node.rpc.header(&before.hash), "chain_getHeader(hash)");
        assert_eq!(&after, before, "round {round}: header #{} changed across restart", before.number);
    }
}

/// Every block up to `last` carries a commit certificate of `//Alice`, the dev chain's only
/// validator, for that block at that height, on this chain.
fn check_certificates(node: &mut Node, last: u64) {
    use hyperion_consensus::{ChainId, CommitCertificate, Validator, ValidatorSet};
    use hyperion_primitives::{Hash, Pair};
    use std::str::FromStr;
    let genesis = node.expect(node.rpc.block_hash(0), "genesis hash").expect("a genesis block");
    let chain = ChainId(Hash::from_str(&genesis).expect("a hash"));
    let alice = Pair::from_string("//Alice").expect("dev key").public();
    let set = ValidatorSet::new(vec![Validator { public: alice, power: 1 }]).expect("a set");
    for number in 1..=last {
        let hash = node.expect(node.rpc.block_hash(number), "chain_getBlockHash").expect("a block");
        let block = node.expect(node.rpc.call("chain_getBlock", serde_json::json!([hash])), "chain_getBlock");
        let hex = block["certificate"]
            .as_str()
            .unwrap_or_else(|| panic!("block #{number} has no certificate: {block}"));
        let bytes = hex::decode(hex.trim_start_matches("0x")).expect("hex");
        let certificate = CommitCertificate::decode_bounded(&bytes).expect("a certificate");
        assert_eq!((certificate.height, certificate.value.to_hex()), (number, hash.clone()));
        certificate.verify(chain, &set).unwrap_or_else(|e| panic!("block #{number}: {e}"));
    }
}
