//! Node-level tests: chain specs, submission of bad input, restart and import.

use hyperion_primitives::{Call, Extrinsic, Pair, SignedExtrinsic, UNIT};
use hyperion_runtime::InvalidTransaction;
use pallet_balances::Call as BalancesCall;
use parity_scale_codec::Encode;
use std::sync::Arc;

use crate::chain_spec::{dev_spec, local_spec, ChainSpec, DEV_SPEC, LOCAL_SPEC};
use crate::mempool::PoolError;
use crate::service::{chain_dir, Node, NodeOptions, SubmitError};
use crate::{default_runtime, Error, BALANCES_INDEX};

fn alice() -> Pair {
    Pair::from_string("//Alice").unwrap()
}

fn bob() -> Pair {
    Pair::from_string("//Bob").unwrap()
}

fn open(dir: &std::path::Path) -> Arc<Node> {
    let spec = ChainSpec::from_json(DEV_SPEC).unwrap();
    Node::open(spec.clone(), default_runtime(), &chain_dir(dir, &spec), NodeOptions::default()).unwrap()
}

fn transfer(node: &Node, from: &Pair, nonce: u64, value: u128) -> Vec<u8> {
    let call = BalancesCall::Transfer { dest: bob().public().address(), value }.encode();
    let call = Call { pallet: BALANCES_INDEX, call: call[0], args: call[1..].to_vec() };
    Extrinsic::Native(SignedExtrinsic::sign(from, node.genesis_hash, nonce, 0, call)).encode()
}

fn spec_error(json: &str) -> String {
    match ChainSpec::from_json(json) {
        Err(e @ Error::ChainSpec { .. }) => e.to_string(),
        other => panic!("expected a chain spec error, got {other:?}"),
    }
}

fn edit_dev(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut value: serde_json::Value = serde_json::from_str(DEV_SPEC).unwrap();
    edit(&mut value);
    value.to_string()
}

#[test]
fn embedded_specs_are_what_build_spec_generates() {
    let runtime = default_runtime();
    assert_eq!(ChainSpec::from_json(DEV_SPEC).unwrap(), dev_spec(&runtime));
    assert_eq!(ChainSpec::from_json(LOCAL_SPEC).unwrap(), local_spec(&runtime));
    assert_eq!(ChainSpec::from_json(LOCAL_SPEC).unwrap().validator_keys().len(), 4);
}

#[test]
fn raw_spec_has_the_same_genesis() {
    let runtime = default_runtime();
    let spec = dev_spec(&runtime);
    let raw = ChainSpec::from_json(&spec.to_raw(&runtime).unwrap().to_json()).unwrap();
    assert!(raw.genesis.runtime.is_none());
    assert_eq!(
        crate::chain_spec::genesis_hash(&raw, &runtime).unwrap(),
        crate::chain_spec::genesis_hash(&spec, &runtime).unwrap()
    );
}

#[test]
fn malformed_chain_specs_name_the_field() {
    let cases: Vec<(String, &str)> = vec![
        (edit_dev(|v| drop(v.as_object_mut().unwrap().remove("id"))), "id"),
        (edit_dev(|v| v["id"] = "no spaces".into()), "id"),
        (edit_dev(|v| v["surprise"] = 1.into()), "surprise"),
        (edit_dev(|v| v["genesis"]["blockTimeMs"] = "fast".into()), "genesis.blockTimeMs"),
        (
            edit_dev(|v| v["genesis"]["validators"][0]["publicKey"] = "0x12".into()),
            "genesis.validators[0].publicKey",
        ),
        (edit_dev(|v| v["properties"]["tokenDecimals"] = 6.into()), "properties.tokenDecimals"),
        (edit_dev(|v| v["genesis"]["epochLength"] = 0.into()), "genesis.epochLength"),
        (
            edit_dev(|v| {
                let first = v["genesis"]["validators"][0].clone();
                v["genesis"]["validators"].as_array_mut().unwrap().push(first);
            }),
            "genesis.validators",
        ),
        ("{ not json".into(), "(document)"),
    ];
    for (json, field) in cases {
        let err = spec_error(&json);
        assert!(err.contains(field), "{field:?} not named in: {err}");
    }
    // Genesis sections are checked when the genesis state is built.
    let runtime = default_runtime();
    let genesis_cases: Vec<(String, &str)> = vec![
        (
            edit_dev(|v| v["genesis"]["runtime"]["balances"]["balances"][0][0] = "0x12".into()),
            "genesis.runtime.balances",
        ),
        (
            edit_dev(|v| v["genesis"]["runtime"]["system"]["fees"]["split"]["burn"] = 50.into()),
            "genesis.runtime.system.fees.split",
        ),
        (edit_dev(|v| v["genesis"]["runtime"]["nope"] = serde_json::json!({})), "genesis.runtime.nope"),
    ];
    for (json, field) in genesis_cases {
        let spec = ChainSpec::from_json(&json).unwrap();
        let err = spec.genesis_changes(&runtime).unwrap_err().to_string();
        assert!(err.contains(field), "{field:?} not named in: {err}");
    }
}

#[test]
fn bad_submissions_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path());
    let good = transfer(&node, &alice(), 0, UNIT);

    // Malformed SCALE: garbage, a truncated extrinsic, trailing bytes, an unknown variant.
    let mut trailing = good.clone();
    trailing.push(0);
    let mut unknown_variant = good.clone();
    unknown_variant[0] = 7;
    for bytes in [vec![0xff; 3], good[..good.len() - 1].to_vec(), trailing, unknown_variant, vec![]] {
        assert!(matches!(node.submit(&bytes), Err(SubmitError::Invalid(InvalidTransaction::Malformed(_)))));
    }
    // Oversize (refused before decoding).
    assert!(matches!(
        node.submit(&vec![0u8; 200_000]),
        Err(SubmitError::Invalid(InvalidTransaction::TooLarge { .. }))
    ));
    // An Ethereum transaction that is not one.
    let eth = Extrinsic::Ethereum(vec![1, 2, 3]).encode();
    match node.submit(&eth) {
        Err(SubmitError::Invalid(InvalidTransaction::Ethereum(message))) => {
            assert!(message.starts_with("rlp:"))
        }
        other => panic!("{other:?}"),
    }
    assert!(node.pool.lock().is_empty());

    // Good, then the same again.
    node.submit(&good).unwrap();
    assert_eq!(node.submit(&good), Err(SubmitError::Pool(PoolError::AlreadyKnown)));
    assert_eq!(node.next_nonce(&alice().public().address()), 1);
    let header = node.author_block(alice().public().address()).unwrap();
    assert_eq!(node.block(header.number).unwrap().unwrap().block.extrinsics.len(), 1);
    assert!(node.pool.lock().is_empty());
    // Now stale.
    assert!(matches!(node.submit(&good), Err(SubmitError::Invalid(InvalidTransaction::StaleNonce { .. }))));
}

#[test]
fn restart_resumes_at_the_same_block_and_root() {
    let dir = tempfile::tempdir().unwrap();
    let (best, bob_balance) = {
        let node = open(dir.path());
        for nonce in 0..3 {
            node.submit(&transfer(&node, &alice(), nonce, UNIT)).unwrap();
            node.author_block(alice().public().address()).unwrap();
        }
        let q = node.runtime.query(
            node.best_snapshot(),
            "balances_account",
            &serde_json::json!({"who": bob().public().address()}),
        );
        (node.best_header(), q.unwrap())
    };
    let node = open(dir.path());
    assert_eq!(node.best_header(), best);
    let q = node.runtime.query(
        node.best_snapshot(),
        "balances_account",
        &serde_json::json!({"who": bob().public().address()}),
    );
    assert_eq!(q.unwrap(), bob_balance);
    // And it goes on.
    node.author_block(alice().public().address()).unwrap();
    assert_eq!(node.best_header().number, best.number + 1);
}

/// With small state segments the node compacts its state in the background while it makes
/// blocks; it then restarts from the compacted store at the same block, with the same balances.
#[test]
fn state_is_compacted_in_the_background_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ChainSpec::from_json(DEV_SPEC).unwrap();
    let options = NodeOptions { state_versions: 4, state_segment_bytes: 4096, ..NodeOptions::default() };
    let open = || Node::open(spec.clone(), default_runtime(), &chain_dir(dir.path(), &spec), options.clone());
    let state_dir = chain_dir(dir.path(), &spec).join("state");
    let compacted = || {
        let has_base = std::fs::read_dir(&state_dir).unwrap().flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("base-") && !name.ends_with(".tmp")
        });
        has_base && !state_dir.join("segments").join("00000001.seg").exists()
    };
    let bob_balance = |node: &Node| {
        let who = serde_json::json!({"who": bob().public().address()});
        node.runtime.query(node.best_snapshot(), "balances_account", &who).unwrap()
    };
    let (best, balance) = {
        let node = open().unwrap();
        let mut nonce = 0;
        // Blocks until a compaction has finished (it runs on its own thread), at most 400.
        while !compacted() {
            assert!(nonce < 400, "no compaction after {nonce} blocks");
            node.submit(&transfer(&node, &alice(), nonce, UNIT)).unwrap();
            node.author_block(alice().public().address()).unwrap();
            nonce += 1;
        }
        // Waits for a compaction still running (no new one starts without new blocks).
        while node.state.compact().unwrap().is_some() {}
        (node.best_header(), bob_balance(&node))
    };
    let node = open().unwrap();
    assert_eq!(node.best_header(), best);
    assert_eq!(bob_balance(&node), balance);
    node.author_block(alice().public().address()).unwrap();
}

#[test]
fn imported_blocks_reproduce_the_chain_and_bad_ones_are_refused() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let source = open(a.path());
    source.submit(&transfer(&source, &alice(), 0, UNIT)).unwrap();
    source.author_block(alice().public().address()).unwrap();
    source.author_block(alice().public().address()).unwrap();
    let target = open(b.path());
    let block1 = source.block(1).unwrap().unwrap().block;
    let mut forged = block1.clone();
    forged.header.state_root.0[0] ^= 1;
    assert!(target.import_block(forged).is_err());
    assert_eq!(target.best_header().number, 0);
    for n in 1..=2 {
        target.import_block(source.block(n).unwrap().unwrap().block).unwrap();
    }
    assert_eq!(target.best_header(), source.best_header());
}

#[test]
fn a_store_of_another_chain_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let runtime = default_runtime();
    let mut other = dev_spec(&runtime);
    other.genesis.timestamp_ms = 1;
    let err =
        Node::open(other.clone(), default_runtime(), &chain_dir(dir.path(), &other), NodeOptions::default())
            .err()
            .expect("a different genesis must be refused");
    assert!(matches!(err, Error::WrongChain(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_serves_http_batches_errors_and_websocket_heads() {
    use jsonrpsee::core::client::{ClientT, SubscriptionClientT};
    use jsonrpsee::core::params::BatchRequestBuilder;
    use jsonrpsee::http_client::HttpClientBuilder;
    use jsonrpsee::rpc_params;
    use jsonrpsee::ws_client::WsClientBuilder;
    use serde_json::{json, Value};

    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path());
    let (handle, addr) = crate::rpc::start(node.clone(), "127.0.0.1:0".parse().unwrap(), None).await.unwrap();
    let http = HttpClientBuilder::default().build(format!("http://{addr}")).unwrap();

    let mut batch = BatchRequestBuilder::new();
    batch.insert("system_chain", rpc_params![]).unwrap();
    batch.insert("chain_getBlockHash", rpc_params![0]).unwrap();
    batch.insert("chain_getBlockHash", rpc_params![99]).unwrap();
    let answers = http.batch_request::<Value>(batch).await.unwrap();
    let answers: Vec<Value> = answers.into_iter().map(|a| a.unwrap()).collect();
    assert_eq!(answers[0], Value::String("Hyperion Development".into()));
    assert_eq!(answers[1], serde_json::json!(node.genesis_hash));
    assert_eq!(answers[2], Value::Null);

    // A refused extrinsic is an error with the reason.
    let err =
        http.request::<Value, _>("author_submitExtrinsic", rpc_params!["0xdeadbeef"]).await.unwrap_err();
    assert!(err.to_string().contains("malformed"), "{err}");
    let bad_args =
        http.request::<Value, _>("state_call", rpc_params!["balances_account", {}]).await.unwrap_err();
    assert!(bad_args.to_string().contains("who"), "{bad_args}");

    // Heads arrive over WebSocket on the same port.
    let ws = WsClientBuilder::default().build(format!("ws://{addr}")).await.unwrap();
    let mut heads = ws
        .subscribe::<Value, _>("chain_subscribeNewHeads", rpc_params![], "chain_unsubscribeNewHeads")
        .await
        .unwrap();
    let hex = format!("0x{}", hex::encode(transfer(&node, &alice(), 0, UNIT)));
    let hash: Value = ws.request("author_submitExtrinsic", rpc_params![hex]).await.unwrap();
    let author = node.clone();
    tokio::task::spawn_blocking(move || author.author_block(alice().public().address()))
        .await
        .unwrap()
        .unwrap();
    let head = heads.next().await.unwrap().unwrap();
    assert_eq!(head["number"], "0x1");
    let receipt: Value = http.request("chain_getReceipt", rpc_params![hash]).await.unwrap();
    assert_eq!(receipt["success"], true);
    assert!(receipt["events"].as_array().unwrap().iter().any(|e| e["event"] == "Transfer"));

    // A read proof of Bob's balance verifies against the block's state root.
    let key = pallet_balances::ACCOUNTS.key(&bob().public().address());
    let answer: Value = http
        .request("state_getReadProof", rpc_params![vec![format!("0x{}", hex::encode(&key))]])
        .await
        .unwrap();
    let proof: Vec<Vec<u8>> = answer["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| hex::decode(n.as_str().unwrap().trim_start_matches("0x")).unwrap())
        .collect();
    let root = node.best_header().state_root;
    let proven = hyperion_state::verify_proof(root, &proof, std::slice::from_ref(&key)).unwrap();
    assert_eq!(proven[0], node.best_snapshot().get(&key));
    assert!(proven[0].is_some());

    // Several keys at once, an absent one among them; too many are refused.
    let keys =
        [key.clone(), b"no such key".to_vec(), pallet_balances::ACCOUNTS.key(&alice().public().address())];
    let hex_keys: Vec<String> = keys.iter().map(|k| format!("0x{}", hex::encode(k))).collect();
    let answer: Value = http.request("state_queryStorageAt", rpc_params![hex_keys.clone()]).await.unwrap();
    assert_eq!(answer[0]["block"], json!(node.best_header().hash()));
    let changes = answer[0]["changes"].as_array().unwrap();
    for (change, key) in changes.iter().zip(&keys) {
        let value = node.best_snapshot().get(key).map(|v| format!("0x{}", hex::encode(v)));
        assert_eq!(change, &json!([format!("0x{}", hex::encode(key)), value]));
    }
    assert_eq!((changes.len(), &changes[1][1]), (3, &Value::Null));
    let too_many = vec![hex_keys[0].clone(); 1025];
    let refused = http.request::<Value, _>("state_queryStorageAt", rpc_params![too_many]).await.unwrap_err();
    assert!(refused.to_string().contains("at most 1024 keys"), "{refused}");
    handle.stop().unwrap();
}

#[test]
fn the_local_spec_gives_the_consensus_set_and_config() {
    let spec = ChainSpec::from_json(LOCAL_SPEC).unwrap();
    let set = spec.validator_set().unwrap();
    assert_eq!((set.len(), set.total_power()), (4, 4 * 20_000));
    let alice = hyperion_primitives::Pair::from_string("//Alice").unwrap().public();
    assert_eq!(set.power_of(&alice), 20_000, "its self-bond in whole tokens");
    let config = spec.consensus_config(hyperion_primitives::Hash([9; 32]), spec.genesis.block_time_ms);
    assert_eq!(config.epoch_length, crate::chain_spec::DEFAULT_EPOCH_LENGTH);
    assert_eq!(
        (config.timeouts.propose_ms, config.timeouts.prevote_ms),
        (3000, 1000),
        "from the 1 s block time"
    );
    assert_eq!(config.chain, hyperion_consensus::ChainId(hyperion_primitives::Hash([9; 32])));
}
