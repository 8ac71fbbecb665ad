//! The Ethereum JSON-RPC of a `--dev` node, driven with real signed transactions: transfers
//! and contracts on the shared ledger, receipts, logs, calls and reverts, fees, and every kind
//! of bad transaction refused with the message Ethereum clients expect while the node keeps
//! running.

mod common;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, Signature, TxKind, U256};
use common::{run_cli, Node};
use k256::ecdsa::SigningKey;
use serde_json::{json, Value};

/// The first key of the development mnemonic ("test test ... junk").
const DEV_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const DEV_CHAIN_ID: u64 = 424_242;
/// Stores its first calldata word in slot 0 and logs it as a topic.
const STORE_AND_LOG: &str = "60003560005560003560006000a100";

fn dev_key() -> SigningKey {
    SigningKey::from_slice(&hex::decode(DEV_KEY).unwrap()).unwrap()
}

fn hex_u256(value: &Value) -> U256 {
    let s = value.as_str().unwrap_or_else(|| panic!("not a quantity: {value}"));
    U256::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

fn hex_u64(value: &Value) -> u64 {
    u64::try_from(hex_u256(value)).unwrap()
}

struct Tx {
    nonce: u64,
    to: Option<Address>,
    value: U256,
    input: Vec<u8>,
    gas_limit: u64,
    max_fee: u128,
    tip: u128,
    chain_id: u64,
}

impl Tx {
    fn new(nonce: u64, to: Option<Address>) -> Self {
        Self {
            nonce,
            to,
            value: U256::ZERO,
            input: Vec::new(),
            gas_limit: 300_000,
            max_fee: 10_000_000_000,
            tip: 1_000_000_000,
            chain_id: DEV_CHAIN_ID,
        }
    }

    fn raw(self, key: &SigningKey) -> String {
        let tx = TxEip1559 {
            chain_id: self.chain_id,
            nonce: self.nonce,
            gas_limit: self.gas_limit,
            max_fee_per_gas: self.max_fee,
            max_priority_fee_per_gas: self.tip,
            to: self.to.map_or(TxKind::Create, TxKind::Call),
            value: self.value,
            access_list: Default::default(),
            input: Bytes::from(self.input),
        };
        let signature = sign(key, tx.signature_hash());
        format!("0x{}", hex::encode(TxEnvelope::from(tx.into_signed(signature)).encoded_2718()))
    }
}

fn sign(key: &SigningKey, hash: alloy_primitives::B256) -> Signature {
    let (signature, recovery) = key.sign_prehash_recoverable(hash.as_slice()).unwrap();
    Signature::from((signature, recovery))
}

/// Sends `raw` and waits for its receipt.
fn send(node: &mut Node, raw: String) -> Value {
    let hash = node.expect(node.rpc.call("eth_sendRawTransaction", json!([raw])), "eth_sendRawTransaction");
    node.wait_for("the transaction's receipt", |rpc| {
        let receipt = rpc.call("eth_getTransactionReceipt", json!([hash]))?;
        Ok((!receipt.is_null()).then_some(receipt))
    })
}

/// The error message of a refused `eth_sendRawTransaction`.
fn refusal(node: &Node, raw: String) -> String {
    let response = node.expect(node.rpc.request("eth_sendRawTransaction", json!([raw])), "the request");
    let error = response.get("error").unwrap_or_else(|| panic!("accepted: {response}"));
    assert_eq!(error["code"], json!(-32000), "{error}");
    error["message"].as_str().unwrap().to_string()
}

/// Init code that deploys `runtime`.
fn deploy_code(runtime: &[u8]) -> Vec<u8> {
    let len = u8::try_from(runtime.len()).unwrap();
    let mut init = vec![0x60, len, 0x80, 0x60, 0x0c, 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3, 0x00];
    init.extend_from_slice(runtime);
    init
}

/// Runtime code that reverts with `Error(reason)`.
fn reverter(reason: &str) -> (Vec<u8>, Vec<u8>) {
    let mut data = vec![0x08, 0xc3, 0x79, 0xa0];
    data.extend(U256::from(32).to_be_bytes::<32>());
    data.extend(U256::from(reason.len()).to_be_bytes::<32>());
    let mut text = reason.as_bytes().to_vec();
    text.resize(32, 0);
    data.extend(text);
    let len = u8::try_from(data.len()).unwrap();
    let mut code = vec![0x60, len, 0x60, 0x0c, 0x60, 0x00, 0x39, 0x60, len, 0x60, 0x00, 0xfd];
    code.extend(&data);
    (code, data)
}

#[test]
fn ethereum_tools_see_an_ethereum_chain() {
    let mut node = Node::start_dev(None, 200);
    node.wait_for_best(2);
    let rpc = |node: &Node, method: &str, params: Value| node.expect(node.rpc.call(method, params), method);
    let key = dev_key();
    let me = Address::from_private_key(&key);
    assert_eq!(
        format!("{me:?}"),
        "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
        "the mnemonic's first account"
    );
    assert_eq!(hex_u64(&rpc(&node, "eth_chainId", json!([]))), DEV_CHAIN_ID);
    assert_eq!(rpc(&node, "net_version", json!([])), json!(DEV_CHAIN_ID.to_string()));
    let balance = hex_u256(&rpc(&node, "eth_getBalance", json!([me, "latest"])));
    assert_eq!(balance, U256::from(10u128.pow(22)), "the dev chain funds the mnemonic's accounts");

    // A transfer, and the receipt fields clients read.
    let recipient = Address::repeat_byte(0x42);
    let mut transfer = Tx::new(0, Some(recipient));
    transfer.value = U256::from(10u64.pow(18));
    transfer.gas_limit = 21_000;
    let receipt = send(&mut node, transfer.raw(&key));
    for field in [
        "blockHash",
        "blockNumber",
        "transactionHash",
        "transactionIndex",
        "from",
        "to",
        "cumulativeGasUsed",
        "effectiveGasPrice",
        "logsBloom",
        "type",
        "logs",
    ] {
        assert!(receipt.get(field).is_some(), "receipt without {field}: {receipt}");
    }
    assert_eq!(receipt["status"], json!("0x1"));
    assert_eq!(hex_u64(&receipt["gasUsed"]), 21_000);
    assert_eq!(receipt["contractAddress"], Value::Null);
    assert_eq!(
        hex_u256(&rpc(&node, "eth_getBalance", json!([recipient, "latest"]))),
        U256::from(10u64.pow(18))
    );
    assert_eq!(hex_u64(&rpc(&node, "eth_getTransactionCount", json!([me, "latest"]))), 1);
    // The same account seen natively: one nonce, one balance.
    let native = hyperion_primitives::Address(me.0 .0);
    assert_eq!(node.expect(node.rpc.next_index(native), "system_accountNextIndex"), 1);
    let paid = U256::from(21_000u64) * hex_u256(&receipt["effectiveGasPrice"]);
    let left = hex_u256(&rpc(&node, "eth_getBalance", json!([me, "latest"])));
    assert_eq!(left, balance - U256::from(10u64.pow(18)) - paid);
    assert_eq!(U256::from(node.expect(node.rpc.free_balance(native), "free balance")), left);
    let block = rpc(&node, "eth_getBlockByHash", json!([receipt["blockHash"], true]));
    assert_eq!(block["transactions"][0]["hash"], receipt["transactionHash"]);
    assert!(block.get("baseFeePerGas").is_some(), "{block}");
    let tx = rpc(&node, "eth_getTransactionByHash", json!([receipt["transactionHash"]]));
    assert_eq!(tx["from"], json!(format!("{me:?}")));

    // A contract: deployed, called, its log found by eth_getLogs, its storage read.
    let runtime = hex::decode(STORE_AND_LOG).unwrap();
    let mut create = Tx::new(1, None);
    create.input = deploy_code(&runtime);
    let receipt = send(&mut node, create.raw(&key));
    assert_eq!(receipt["status"], json!("0x1"), "{receipt}");
    let contract = receipt["contractAddress"].as_str().expect("a contract address").to_string();
    assert_eq!(rpc(&node, "eth_getCode", json!([contract, "latest"])), json!(format!("0x{STORE_AND_LOG}")));
    let word = [7u8; 32];
    let mut call = Tx::new(2, Some(contract.parse().unwrap()));
    call.input = word.to_vec();
    let estimate = hex_u64(&rpc(
        &node,
        "eth_estimateGas",
        json!([{ "from": me, "to": contract, "data": format!("0x{}", hex::encode(word)) }]),
    ));
    assert!((21_000..100_000).contains(&estimate), "estimate {estimate}");
    call.gas_limit = estimate;
    let receipt = send(&mut node, call.raw(&key));
    assert_eq!(receipt["status"], json!("0x1"), "the estimate is enough: {receipt}");
    assert_eq!(receipt["logs"][0]["topics"][0], json!(format!("0x{}", hex::encode(word))));
    let logs =
        rpc(&node, "eth_getLogs", json!([{ "address": contract, "fromBlock": "0x0", "toBlock": "latest" }]));
    assert_eq!(logs.as_array().unwrap().len(), 1, "{logs}");
    assert_eq!(logs[0]["transactionHash"], receipt["transactionHash"]);
    // A call may come from a contract's address, as with geth.
    let from_contract = json!([{ "from": contract, "to": recipient, "value": "0x0" }, "latest"]);
    assert_eq!(rpc(&node, "eth_call", from_contract), json!("0x"));
    let other_topic = rpc(
        &node,
        "eth_getLogs",
        json!([{ "topics": [format!("0x{}", "11".repeat(32))], "fromBlock": "0x0" }]),
    );
    assert_eq!(other_topic, json!([]));
    let slot = rpc(&node, "eth_getStorageAt", json!([contract, "0x0", "latest"]));
    assert_eq!(slot, json!(format!("0x{}", hex::encode(word))));

    // A revert: eth_call answers error 3 with the reason and the data.
    let (code, data) = reverter("nope");
    let mut create = Tx::new(3, None);
    create.input = deploy_code(&code);
    let receipt = send(&mut node, create.raw(&key));
    let reverting = receipt["contractAddress"].clone();
    let response = node.expect(
        node.rpc.request("eth_call", json!([{ "to": reverting, "data": "0x" }, "latest"])),
        "eth_call",
    );
    let error = &response["error"];
    assert_eq!(error["code"], json!(3), "{response}");
    assert_eq!(error["message"], json!("execution reverted: nope"));
    assert_eq!(error["data"], json!(format!("0x{}", hex::encode(&data))));
    let mut failing = Tx::new(4, Some(reverting.as_str().unwrap().parse().unwrap()));
    failing.gas_limit = 100_000;
    let receipt = send(&mut node, failing.raw(&key));
    assert_eq!(receipt["status"], json!("0x0"), "a reverted transaction is included and fails");

    // Bad transactions: each refused with its message; the node keeps going.
    let next = 5;
    assert!(refusal(&node, "0x02f801".into()).starts_with("rlp:"));
    assert_eq!(
        refusal(&node, Tx { chain_id: 1, ..Tx::new(next, Some(recipient)) }.raw(&key)),
        "invalid chain id"
    );
    let mut tampered =
        hex::decode(Tx::new(next, Some(recipient)).raw(&key).trim_start_matches("0x")).unwrap();
    let last = tampered.len() - 2;
    tampered[last] ^= 0x55;
    let message = refusal(&node, format!("0x{}", hex::encode(tampered)));
    assert!(message == "invalid sender" || message.starts_with("insufficient funds"), "{message}");
    assert_eq!(
        refusal(&node, Tx { gas_limit: 31_000_000, ..Tx::new(next, Some(recipient)) }.raw(&key)),
        "exceeds block gas limit"
    );
    assert!(refusal(&node, Tx { max_fee: 1, tip: 1, ..Tx::new(next, Some(recipient)) }.raw(&key))
        .starts_with("max fee per gas less than block base fee"));
    assert_eq!(refusal(&node, Tx::new(0, Some(recipient)).raw(&key)), "nonce too low");
    assert_eq!(refusal(&node, Tx::new(next + 1000, Some(recipient)).raw(&key)), "nonce too high");
    let poor = SigningKey::from_slice(&[9u8; 32]).unwrap();
    assert_eq!(
        refusal(&node, Tx { value: U256::from(1), ..Tx::new(0, Some(recipient)) }.raw(&poor)),
        "insufficient funds for gas * price + value"
    );
    assert_eq!(
        refusal(&node, Tx { gas_limit: 20_000, ..Tx::new(next, Some(recipient)) }.raw(&key)),
        "intrinsic gas too low"
    );
    let legacy = TxLegacy {
        chain_id: None,
        nonce: next,
        gas_price: 10_000_000_000,
        gas_limit: 21_000,
        to: TxKind::Call(recipient),
        value: U256::ZERO,
        input: Bytes::new(),
    };
    let signature = sign(&key, legacy.signature_hash());
    let unprotected =
        format!("0x{}", hex::encode(TxEnvelope::from(legacy.into_signed(signature)).encoded_2718()));
    assert!(refusal(&node, unprotected).contains("EIP-155"));
    let receipt = send(&mut node, Tx::new(next, Some(recipient)).raw(&key));
    assert_eq!(receipt["status"], json!("0x1"), "still running and including");

    // Fees: the base fee and fee history are there for wallets.
    let history = rpc(&node, "eth_feeHistory", json!(["0x4", "latest", [50]]));
    assert_eq!(history["baseFeePerGas"].as_array().unwrap().len(), 5, "{history}");
    assert!(hex_u64(&rpc(&node, "eth_gasPrice", json!([]))) >= 1_000_000_000);
}

/// One account's balance and next nonce, read through the Ethereum RPC and natively; panics
/// unless both views agree.
fn both_views(node: &Node, who: Address) -> (U256, u64) {
    let rpc = |method: &str, params: Value| node.expect(node.rpc.call(method, params), method);
    let native = hyperion_primitives::Address(who.0 .0);
    let balance = hex_u256(&rpc("eth_getBalance", json!([who, "latest"])));
    let free = node.expect(node.rpc.free_balance(native), "free balance");
    assert_eq!(balance, U256::from(free), "eth_getBalance and the native free balance differ");
    let nonce = hex_u64(&rpc("eth_getTransactionCount", json!([who, "latest"])));
    let next = node.expect(node.rpc.next_index(native), "system_accountNextIndex");
    assert_eq!(nonce, next, "eth_getTransactionCount and system_accountNextIndex differ");
    (balance, nonce)
}

#[test]
fn one_account_sends_ethereum_and_native_transactions() {
    let mut node = Node::start_dev(None, 200);
    node.wait_for_best(1);
    let key = dev_key();
    let me = Address::from_private_key(&key);
    let recipient = Address::repeat_byte(0x24);
    let (start, nonce) = both_views(&node, me);
    assert_eq!(nonce, 0);

    // Nonce 0: an Ethereum transfer.
    let mut transfer = Tx::new(0, Some(recipient));
    transfer.value = U256::from(1_000u64);
    transfer.gas_limit = 21_000;
    let receipt = send(&mut node, transfer.raw(&key));
    assert_eq!(receipt["status"], json!("0x1"));
    let eth_fee = U256::from(21_000u64) * hex_u256(&receipt["effectiveGasPrice"]);
    let (after_eth, nonce) = both_views(&node, me);
    assert_eq!((after_eth, nonce), (start - U256::from(1_000u64) - eth_fee, 1));

    // Nonce 1: a native balances transfer signed with the same key, through the CLI.
    let url = node.rpc_url();
    let dest = format!("{recipient:?}");
    let secret = format!("0x{DEV_KEY}");
    let args = ["tx", "balances", "transfer", "--dest", &dest, "--value", "2000", "--eth-signer", &secret];
    let out = run_cli(&[&args[..], &["--rpc-url", &url]].concat(), std::time::Duration::from_secs(150));
    assert!(out.status.success(), "hyperion tx --eth-signer failed\n{out}\n{}", node.log_tail());
    assert!(
        out.stdout.contains(&format!("(nonce 1) from {me:?}").to_lowercase()),
        "the native extrinsic takes the account's next nonce, from its Ethereum address\n{out}"
    );
    let printed = &out.stdout[out.stdout.find('{').unwrap_or_else(|| panic!("no receipt printed\n{out}"))..];
    let native_receipt: Value = serde_json::from_str(printed).unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(native_receipt["success"], json!(true), "{native_receipt}");
    let native_fee: u128 = native_receipt["fee"].as_str().unwrap().parse().unwrap();
    assert!(native_fee > 0);
    let (after_native, nonce) = both_views(&node, me);
    assert_eq!((after_native, nonce), (after_eth - U256::from(2_000u128 + native_fee), 2));

    // The nonces the other kind used are gone for both kinds.
    assert_eq!(refusal(&node, Tx::new(1, Some(recipient)).raw(&key)), "nonce too low");
    let stale = ["--nonce", "0", "--no-wait"];
    let out =
        run_cli(&[&args[..], &stale, &["--rpc-url", &url]].concat(), std::time::Duration::from_secs(60));
    assert!(!out.status.success(), "a native extrinsic at a used nonce was accepted\n{out}");

    // Nonce 2: an Ethereum transfer again.
    let mut transfer = Tx::new(2, Some(recipient));
    transfer.value = U256::from(4_000u64);
    transfer.gas_limit = 21_000;
    let receipt = send(&mut node, transfer.raw(&key));
    assert_eq!(receipt["status"], json!("0x1"));
    let eth_fee = U256::from(21_000u64) * hex_u256(&receipt["effectiveGasPrice"]);
    let (after, nonce) = both_views(&node, me);
    assert_eq!((after, nonce), (after_native - U256::from(4_000u64) - eth_fee, 3));
    assert_eq!(both_views(&node, recipient).0, U256::from(7_000u64));

    // Pooled together, the two kinds queue as one sender: Ethereum at 3, native at 4 (waiting
    // for 3), Ethereum at 5 (waiting for 4); all three are included in nonce order.
    let hash_3 = node.expect(
        node.rpc.call("eth_sendRawTransaction", json!([Tx::new(3, Some(recipient)).raw(&key)])),
        "eth_sendRawTransaction at 3",
    );
    let queued = ["--nonce", "4", "--no-wait"];
    let out =
        run_cli(&[&args[..], &queued, &["--rpc-url", &url]].concat(), std::time::Duration::from_secs(60));
    assert!(out.status.success(), "the native extrinsic at 4 was refused\n{out}");
    let hash_5 = node.expect(
        node.rpc.call("eth_sendRawTransaction", json!([Tx::new(5, Some(recipient)).raw(&key)])),
        "eth_sendRawTransaction at 5",
    );
    node.wait_for("all three included", |rpc| {
        let receipt = rpc.call("eth_getTransactionReceipt", json!([hash_5]))?;
        Ok((!receipt.is_null()).then_some(()))
    });
    assert_eq!(both_views(&node, me).1, 6);
    let receipt =
        |hash: &Value| node.expect(node.rpc.call("eth_getTransactionReceipt", json!([hash])), "receipt");
    let (at_3, at_5) = (receipt(&hash_3), receipt(&hash_5));
    assert_eq!((at_3["status"].clone(), at_5["status"].clone()), (json!("0x1"), json!("0x1")));
    assert_eq!(both_views(&node, recipient).0, U256::from(9_000u64));
}

/// Waits for the next notification of `subscription`, at most 30 s.
async fn next(subscription: &mut jsonrpsee::core::client::Subscription<Value>) -> Value {
    let item = tokio::time::timeout(std::time::Duration::from_secs(30), subscription.next()).await;
    item.expect("a notification within 30 s").expect("the subscription is open").expect("a JSON notification")
}

#[test]
fn websocket_subscriptions_deliver_heads_and_logs() {
    use jsonrpsee::core::client::SubscriptionClientT;
    use jsonrpsee::rpc_params;

    let mut node = Node::start_dev(None, 200);
    node.wait_for_best(1);
    let key = dev_key();
    let mut create = Tx::new(0, None);
    create.input = deploy_code(&hex::decode(STORE_AND_LOG).unwrap());
    let receipt = send(&mut node, create.raw(&key));
    let contract = receipt["contractAddress"].as_str().expect("a contract").to_string();

    let url = format!("ws://127.0.0.1:{}", node.rpc.port);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (heads, log) = runtime.block_on(async {
        let client = jsonrpsee::ws_client::WsClientBuilder::default().build(&url).await.expect("connect");
        let mut heads = client
            .subscribe::<Value, _>("eth_subscribe", rpc_params!["newHeads"], "eth_unsubscribe")
            .await
            .expect("subscribe to newHeads");
        let filter = json!({ "address": contract });
        let mut logs = client
            .subscribe::<Value, _>("eth_subscribe", rpc_params!["logs", filter], "eth_unsubscribe")
            .await
            .expect("subscribe to logs");
        let (first, second) = (next(&mut heads).await, next(&mut heads).await);
        let mut call = Tx::new(1, Some(contract.parse().unwrap()));
        call.input = vec![9; 32];
        let hash = node.rpc.call("eth_sendRawTransaction", json!([call.raw(&key)])).expect("send");
        let log = next(&mut logs).await;
        assert_eq!(log["transactionHash"], hash);
        let rejected =
            client.subscribe::<Value, _>("eth_subscribe", rpc_params!["syncing"], "eth_unsubscribe").await;
        assert!(rejected.is_err(), "an unknown subscription kind is refused");
        (vec![first, second], log)
    });
    assert_eq!(hex_u64(&heads[1]["number"]), hex_u64(&heads[0]["number"]) + 1, "{heads:?}");
    assert_eq!(heads[1]["parentHash"], heads[0]["hash"]);
    assert!(heads[0].get("baseFeePerGas").is_some(), "{heads:?}");
    assert_eq!(log["topics"][0], json!(format!("0x{}", "09".repeat(32))));
    assert_eq!(log["address"].as_str().map(str::to_lowercase), Some(contract.to_lowercase()));
}
