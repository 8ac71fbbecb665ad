//! Tests through a real runtime (system, balances, evm): Ethereum transfers and contract calls
//! on the shared ledger, fees and their split, refusals with Ethereum's messages, base fee and
//! block gas, genesis checks. Every block is built, then imported by `execute_block` to the
//! same result.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Bytes, Signature, TxKind, U256};
use hyperion_primitives::{Address, Extrinsic, Hash, Header, Receipt, UNIT};
use hyperion_runtime::system::ACCOUNT_NONCE;
use hyperion_runtime::{
    holders_pool_account, Executor, ExecutorConfig, InvalidTransaction, Runtime, StorageRead,
    TransactionSource,
};
use hyperion_state::{MemoryStateDb, Snapshot, StateDb};
use hyperion_vm::keys::{read_storage, KeyRead};
use k256::ecdsa::SigningKey;
use pallet_balances::{Balances, ACCOUNTS, TOTAL_BURNED, TOTAL_ISSUANCE};
use parity_scale_codec::{Decode, Encode};
use serde_json::{json, Value};
use std::sync::Arc;

use crate::{next_base_fee, to_eth, Event, Evm, BASE_FEE, GAS_USED, GWEI};

const BALANCES: u8 = 1;
const EVM: u8 = 2;
const CHAIN_ID: u64 = 4242;
/// Stores its first calldata word in slot 0 and logs it as a topic.
const STORE_AND_LOG: &str = "60003560005560003560006000a100";
/// Always reverts.
const REVERTER: &str = "60006000fd";

fn contract(n: u8) -> Address {
    Address([0xc0, 0xde, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, n])
}

fn key(n: u8) -> SigningKey {
    SigningKey::from_slice(&[n; 32]).unwrap()
}

fn eth_addr(n: u8) -> Address {
    Address(alloy_primitives::Address::from_private_key(&key(n)).0 .0)
}

fn proposer() -> Address {
    Address([0xaa; 20])
}

struct Reader(Snapshot);

impl StorageRead for Reader {
    fn read_raw(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.get(key)
    }
}

impl KeyRead for Reader {
    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.get(key)
    }
}

struct VecSource(std::vec::IntoIter<Extrinsic>, Vec<InvalidTransaction>);

impl TransactionSource for VecSource {
    fn next(&mut self) -> Option<(Arc<Extrinsic>, usize)> {
        self.0.next().map(|x| {
            let len = x.encoded_size();
            (Arc::new(x), len)
        })
    }
    fn reject(&mut self, _hash: &hyperion_primitives::Hash, reason: &InvalidTransaction) {
        self.1.push(reason.clone());
    }
}

struct Env {
    runtime: Runtime,
    state: MemoryStateDb,
    head: Header,
    /// The state changes of the last block.
    changes: hyperion_state::ChangeSet,
}

impl Env {
    fn new() -> Self {
        Self::with_evm(|_| {})
    }

    /// Accounts 1 and 2 hold 100 tokens each; two contracts at genesis.
    fn with_evm(edit: impl FnOnce(&mut Value)) -> Self {
        Self::try_with_evm(edit).unwrap()
    }

    fn try_with_evm(edit: impl FnOnce(&mut Value)) -> Result<Self, String> {
        Self::try_with(edit, ExecutorConfig::with_threads(1))
    }

    /// With the executor running the parallel algorithm on `threads` threads, whatever the
    /// block (1: the serial executor).
    fn with_threads(threads: usize) -> Self {
        let config = ExecutorConfig { force_parallel: threads > 1, ..ExecutorConfig::with_threads(threads) };
        Self::try_with(|_| {}, config).unwrap()
    }

    fn try_with(edit: impl FnOnce(&mut Value), executor: ExecutorConfig) -> Result<Self, String> {
        let balances = Arc::new(Balances::new(BALANCES));
        let evm = Arc::new(Evm::new(EVM, balances.clone()));
        let runtime = Runtime::new(balances.clone(), vec![(BALANCES, balances), (EVM, evm.clone())])
            .unwrap()
            .with_ethereum(EVM, evm)
            .unwrap()
            .with_executor(Executor::new(executor).unwrap());
        let mut genesis = runtime.default_genesis();
        let endow = |n: u8| json!([eth_addr(n), (100 * UNIT).to_string()]);
        genesis.insert("balances".into(), json!({ "balances": [endow(1), endow(2)] }));
        let mut evm_genesis = json!({
            "chainId": CHAIN_ID,
            "fork": "Prague",
            "accounts": {
                contract(1).to_string(): { "code": format!("0x{STORE_AND_LOG}") },
                contract(2).to_string(): { "code": format!("0x{REVERTER}") },
            }
        });
        edit(&mut evm_genesis);
        genesis.insert("evm".into(), evm_genesis);
        let changes = runtime.genesis_changes(&genesis).map_err(|e| e.to_string())?;
        let state = MemoryStateDb::new(16);
        let root = state.commit(0, &changes, None).unwrap();
        let head = Runtime::genesis_header(root, 0);
        runtime.set_genesis_hash(head.hash());
        Ok(Self { runtime, state, head, changes: Default::default() })
    }

    fn reader(&self) -> Reader {
        Reader(self.state.snapshot(self.head.number).unwrap())
    }

    /// Builds, imports and commits a block.
    fn block(&mut self, xts: Vec<Extrinsic>) -> (Vec<Receipt>, Vec<InvalidTransaction>) {
        let mut source = VecSource(xts.into_iter(), Vec::new());
        let built = self
            .runtime
            .build_block(&self.state, &self.head, proposer(), (self.head.number + 1) * 1000, &mut source)
            .unwrap();
        let executed = self.runtime.execute_block(&self.state, &self.head, &built.block).unwrap();
        assert_eq!(executed.changes, built.changes, "import executes to what the proposer built");
        self.state
            .commit(built.block.header.number, &built.changes, Some(built.block.header.state_root))
            .unwrap();
        self.head = built.block.header;
        self.changes = built.changes;
        (built.receipts, source.1)
    }

    fn free(&self, who: &Address) -> u128 {
        ACCOUNTS.get_or_default(&mut self.reader(), who).free
    }

    fn nonce(&self, who: &Address) -> u64 {
        ACCOUNT_NONCE.get_or_default(&mut self.reader(), who)
    }

    fn validate(&self, raw: Vec<u8>) -> Result<(), InvalidTransaction> {
        let xt = Extrinsic::Ethereum(raw);
        self.runtime.validate(&mut self.reader(), &xt, xt.encoded_size()).map(|_| ())
    }
}

struct Tx {
    chain_id: u64,
    nonce: u64,
    gas_limit: u64,
    max_fee: u128,
    tip: u128,
    to: Option<Address>,
    value: u128,
    input: Vec<u8>,
}

impl Default for Tx {
    fn default() -> Self {
        Self {
            chain_id: CHAIN_ID,
            nonce: 0,
            gas_limit: 21_000,
            max_fee: 2 * u128::from(GWEI),
            tip: u128::from(GWEI),
            to: Some(eth_addr(9)),
            value: UNIT,
            input: Vec::new(),
        }
    }
}

impl Tx {
    fn sign(self, signer: u8) -> Vec<u8> {
        let tx = TxEip1559 {
            chain_id: self.chain_id,
            nonce: self.nonce,
            gas_limit: self.gas_limit,
            max_fee_per_gas: self.max_fee,
            max_priority_fee_per_gas: self.tip,
            to: self.to.map_or(TxKind::Create, |to| TxKind::Call(to_eth(to))),
            value: U256::from(self.value),
            access_list: Default::default(),
            input: Bytes::from(self.input),
        };
        let signature = sign(&key(signer), tx.signature_hash());
        let envelope: TxEnvelope = tx.into_signed(signature).into();
        envelope.encoded_2718()
    }
}

fn sign(key: &SigningKey, hash: alloy_primitives::B256) -> Signature {
    let (signature, recovery) = key.sign_prehash_recoverable(hash.as_slice()).unwrap();
    Signature::from((signature, recovery))
}

fn eth(raw: Vec<u8>) -> Extrinsic {
    Extrinsic::Ethereum(raw)
}

fn evm_events(receipt: &Receipt) -> Vec<Event> {
    receipt
        .events
        .iter()
        .filter(|e| e.pallet == EVM)
        .map(|e| Event::decode(&mut [vec![e.event], e.data.clone()].concat().as_slice()).unwrap())
        .collect()
}

#[test]
fn an_ethereum_transfer_moves_ledger_balances_and_splits_the_fee() {
    let mut env = Env::new();
    let (alice, recipient) = (eth_addr(1), eth_addr(9));
    let issuance = TOTAL_ISSUANCE.get_or_default(&mut env.reader());
    let (receipts, rejected) = env.block(vec![eth(Tx::default().sign(1))]);
    assert!(rejected.is_empty(), "{rejected:?}");
    let receipt = &receipts[0];
    assert!(receipt.success && receipt.weight == 21_000, "{receipt:?}");
    assert_eq!(env.head.gas_used, 21_000);
    assert_eq!(env.head.weight_used, 0, "gas is not weight");

    // Base fee 1 gwei (block 1), tip 1 gwei: 2 gwei per gas.
    let (gas, base, tip) = (21_000u128, u128::from(GWEI), u128::from(GWEI));
    assert_eq!(receipt.fee, gas * (base + tip));
    assert_eq!(env.free(&recipient), UNIT);
    assert_eq!(env.free(&alice), 100 * UNIT - UNIT - gas * (base + tip));
    assert_eq!(env.nonce(&alice), 1, "the EVM nonce is the account nonce");
    for untouched in [ACCOUNT_NONCE.key(&recipient), hyperion_vm::keys::code_hash_key(to_eth(recipient))] {
        assert!(!env.changes.contains_key(&untouched), "only real changes are written");
    }

    let fees = hyperion_runtime::system::FEE_CONFIG.get(&mut env.reader()).unwrap();
    let shares = fees.shares(gas * base, 0);
    assert_eq!(env.free(&proposer()), gas * tip + shares.proposer, "tip and the proposer's share");
    assert_eq!(env.free(&holders_pool_account()), shares.holders_pool);
    assert_eq!(TOTAL_BURNED.get_or_default(&mut env.reader()), shares.burn);
    assert_eq!(
        TOTAL_ISSUANCE.get_or_default(&mut env.reader()),
        issuance - shares.burn,
        "only the burn leaves"
    );
    match &evm_events(receipt)[..] {
        [Event::Executed { from, to, success: true, gas_used: 21_000, effective_gas_price, .. }] => {
            assert_eq!((*from, *to), (alice, Some(recipient)));
            assert_eq!(*effective_gas_price, base + tip);
        }
        other => panic!("{other:?}"),
    }
}

/// A sender's run of plain transfers (one of its transactions a contract call, one with a used
/// nonce), and deposits from another sender to one address, in one block: at every thread count the builder and the
/// importer give the balances of running them one by one, with the same receipts and state.
/// The transfers take the path that assumes their sender's nonce and balance instead of reading
/// them: their sender's balance is withdrawn as an amount, not set.
#[test]
fn plain_transfers_assume_their_sender_with_one_result_at_any_thread_count() {
    let recipient = |i: u64| eth_addr(100 + i as u8);
    let run = |threads: usize| {
        let mut env = Env::with_threads(threads);
        let mut xts = Vec::new();
        for nonce in 0..30u64 {
            let tx = match nonce {
                15 => Tx {
                    nonce,
                    to: Some(contract(1)),
                    value: 0,
                    input: vec![7; 32],
                    gas_limit: 100_000,
                    ..Tx::default()
                },
                _ => Tx { nonce, to: Some(recipient(nonce)), value: UNIT / 10, ..Tx::default() },
            };
            xts.push(eth(tx.sign(1)));
            if nonce % 3 == 0 {
                xts.push(eth(Tx { nonce: nonce / 3, value: UNIT / 100, ..Tx::default() }.sign(2)));
            }
        }
        // A transfer whose nonce was used: its assumption does not hold, it is refused.
        xts.push(eth(Tx { nonce: 3, to: Some(recipient(3)), ..Tx::default() }.sign(1)));
        let (receipts, rejected) = env.block(xts);
        assert_eq!(rejected, [InvalidTransaction::StaleNonce { expected: 30, got: 3 }]);
        assert!(receipts.iter().all(|r| r.success), "{receipts:?}");
        (env, receipts)
    };
    let (serial, receipts) = run(1);
    let (alice, bob) = (eth_addr(1), eth_addr(2));
    let fees = |sender: Address| -> u128 {
        receipts.iter().filter(|r| evm_sender(r) == Some(sender)).map(|r| r.fee).sum()
    };
    assert_eq!(serial.nonce(&alice), 30);
    assert_eq!(serial.nonce(&bob), 10);
    assert_eq!(serial.free(&alice), 100 * UNIT - 29 * UNIT / 10 - fees(alice));
    assert_eq!(serial.free(&bob), 100 * UNIT - 10 * UNIT / 100 - fees(bob));
    assert_eq!(serial.free(&eth_addr(9)), 10 * UNIT / 100);
    assert!((0..30).filter(|&n| n != 15).all(|n| serial.free(&recipient(n)) == UNIT / 10));
    // Balances' events 1 and 6: Withdraw, BalanceSet.
    let withdrawn = |receipt: &Receipt| {
        receipt.events.iter().any(|e| e.pallet == BALANCES && e.event == 1)
            && !receipt.events.iter().any(|e| e.pallet == BALANCES && e.event == 6)
    };
    assert!(withdrawn(&receipts[0]), "a plain transfer withdraws from its sender: {:?}", receipts[0].events);
    for threads in [2, 4] {
        let (parallel, parallel_receipts) = run(threads);
        assert_eq!(parallel_receipts, receipts, "{threads} threads");
        assert_eq!(parallel.changes, serial.changes, "{threads} threads");
        assert_eq!(parallel.head.state_root, serial.head.state_root, "{threads} threads");
    }
}

/// The sender of the transaction of `receipt`.
fn evm_sender(receipt: &Receipt) -> Option<Address> {
    evm_events(receipt).iter().find_map(|event| match event {
        Event::Executed { from, .. } => Some(*from),
        _ => None,
    })
}

#[test]
fn contracts_store_log_and_revert() {
    let mut env = Env::new();
    let word = [7u8; 32].to_vec();
    let call = |nonce, to, input: Vec<u8>| {
        eth(Tx { nonce, to: Some(to), value: 0, gas_limit: 100_000, input, ..Tx::default() }.sign(1))
    };
    let (receipts, rejected) =
        env.block(vec![call(0, contract(1), word.clone()), call(1, contract(2), vec![])]);
    assert!(rejected.is_empty(), "{rejected:?}");
    assert!(receipts[0].success);
    let slot = read_storage(&mut env.reader(), to_eth(contract(1)), U256::ZERO).unwrap();
    assert_eq!(slot, U256::from_be_slice(&word));
    match &evm_events(&receipts[0])[..] {
        [Event::Log { address, topics, data }, Event::Executed { success: true, .. }] => {
            assert_eq!(*address, contract(1));
            assert_eq!(topics, &vec![Hash([7; 32])]);
            assert!(data.is_empty());
        }
        other => panic!("{other:?}"),
    }
    let reverted = &receipts[1];
    assert!(!reverted.success);
    assert_eq!(
        reverted.error,
        Some(hyperion_primitives::DispatchError::Module { pallet: EVM, error: crate::Error::Reverted as u8 })
    );
    assert!(reverted.fee > 0, "a reverted transaction still pays for its gas");
    assert_eq!(env.nonce(&eth_addr(1)), 2, "and uses its nonce");
    assert_eq!(env.head.gas_used, receipts[0].weight + receipts[1].weight);
    assert_eq!(GAS_USED.get_or_default(&mut env.reader()), env.head.gas_used);
}

#[test]
fn a_contract_created_by_a_transaction_runs_its_code() {
    let mut env = Env::new();
    // Init code returning STORE_AND_LOG as the runtime code: CODECOPY it from after the init.
    let runtime_code = hex(STORE_AND_LOG);
    let len = runtime_code.len() as u8;
    let mut init = vec![0x60, len, 0x80, 0x60, 0x0c, 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3, 0x00];
    init.extend(&runtime_code);
    let create = Tx { to: None, value: 0, gas_limit: 200_000, input: init, ..Tx::default() }.sign(1);
    let (receipts, _) = env.block(vec![eth(create)]);
    let created = match &evm_events(&receipts[0])[..] {
        [Event::Executed { contract: Some(address), success: true, .. }] => *address,
        other => panic!("{other:?}"),
    };
    let expected = alloy_primitives::Address::from(eth_addr(1).0).create(0);
    assert_eq!(to_eth(created), expected, "CREATE address from sender and nonce");
    let call =
        Tx { nonce: 1, to: Some(created), value: 0, gas_limit: 100_000, input: vec![1; 32], ..Tx::default() };
    let (receipts, _) = env.block(vec![eth(call.sign(1))]);
    assert!(receipts[0].success);
    assert_eq!(
        read_storage(&mut env.reader(), to_eth(created), U256::ZERO).unwrap(),
        U256::from_be_slice(&[1; 32])
    );
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn refusal(result: Result<(), InvalidTransaction>) -> String {
    result.expect_err("refused").to_string()
}

#[test]
fn bad_transactions_are_refused_with_ethereum_messages() {
    let mut env = Env::new();
    let malformed = vec![0x02, 0xf8, 0x01, 0x02];
    assert!(refusal(env.validate(malformed)).starts_with("rlp:"));
    assert_eq!(refusal(env.validate(Tx { chain_id: 1, ..Tx::default() }.sign(1))), "invalid chain id");
    let mut tampered = Tx::default().sign(1);
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let tampered = refusal(env.validate(tampered));
    assert!(
        tampered == "invalid sender" || tampered == "insufficient funds for gas * price + value",
        "{tampered}"
    );
    assert_eq!(
        refusal(env.validate(Tx { gas_limit: 31_000_000, ..Tx::default() }.sign(1))),
        "exceeds block gas limit"
    );
    assert!(refusal(env.validate(Tx { max_fee: 1, tip: 1, ..Tx::default() }.sign(1)))
        .starts_with("max fee per gas less than block base fee"));
    assert_eq!(
        refusal(env.validate(Tx { gas_limit: 20_000, ..Tx::default() }.sign(1))),
        "intrinsic gas too low"
    );
    assert_eq!(
        refusal(env.validate(Tx { value: 1000 * UNIT, ..Tx::default() }.sign(1))),
        "insufficient funds for gas * price + value"
    );
    assert_eq!(
        refusal(env.validate(Tx { tip: 3 * u128::from(GWEI), ..Tx::default() }.sign(1))),
        "max priority fee per gas higher than max fee per gas"
    );
    let legacy = TxLegacy {
        chain_id: None,
        nonce: 0,
        gas_price: u128::from(2 * GWEI),
        gas_limit: 21_000,
        to: TxKind::Call(to_eth(eth_addr(9))),
        value: U256::ZERO,
        input: Bytes::new(),
    };
    let signature = sign(&key(1), legacy.signature_hash());
    let unprotected = TxEnvelope::from(legacy.into_signed(signature)).encoded_2718();
    assert!(refusal(env.validate(unprotected)).contains("EIP-155"));

    env.block(vec![eth(Tx::default().sign(1))]);
    assert!(matches!(
        env.validate(Tx::default().sign(1)),
        Err(InvalidTransaction::StaleNonce { expected: 1, got: 0 })
    ));
    assert!(
        env.validate(Tx { nonce: 5, ..Tx::default() }.sign(1)).is_ok(),
        "a future nonce waits in the pool"
    );
    let (receipts, rejected) = env.block(vec![eth(Tx { nonce: 5, ..Tx::default() }.sign(1))]);
    assert!(receipts.is_empty());
    assert!(matches!(rejected[..], [InvalidTransaction::FutureNonce { expected: 1, got: 5 }]));
}

#[test]
fn the_block_gas_limit_holds_and_the_base_fee_follows_demand() {
    let mut env = Env::with_evm(|evm| evm["gasLimit"] = json!(50_000));
    let tx = |signer, gas_limit| eth(Tx { gas_limit, ..Tx::default() }.sign(signer));
    let (receipts, rejected) = env.block(vec![tx(1, 30_000), tx(2, 30_000)]);
    assert_eq!(receipts.len(), 1);
    assert!(matches!(rejected[..], [InvalidTransaction::ExhaustsBlock]));
    assert_eq!(env.head.gas_used, 21_000);
    // Block 1 used 21000 of a 25000 target: block 2's base fee goes down a little.
    env.block(vec![]);
    let base_fee = BASE_FEE.get_or_default(&mut env.reader());
    assert_eq!(base_fee, next_base_fee(GWEI, 21_000, 50_000, GWEI));
    assert_eq!(base_fee, GWEI, "not below the minimum");

    let mut busy = Env::with_evm(|evm| {
        evm["gasLimit"] = json!(50_000);
        evm["minBaseFee"] = json!(1);
    });
    busy.block(vec![tx(1, 30_000)]);
    busy.block(vec![tx(2, 30_000)]);
    assert_eq!(BASE_FEE.get_or_default(&mut busy.reader()), next_base_fee(GWEI, 21_000, 50_000, 1));
    assert!(BASE_FEE.get_or_default(&mut busy.reader()) < GWEI);
}

#[test]
fn base_fee_moves_by_at_most_an_eighth() {
    assert_eq!(next_base_fee(1_000_000_000, 15_000_000, 30_000_000, 0), 1_000_000_000);
    assert_eq!(next_base_fee(1_000_000_000, 30_000_000, 30_000_000, 0), 1_125_000_000);
    assert_eq!(next_base_fee(1_000_000_000, 0, 30_000_000, 0), 875_000_000);
    assert_eq!(next_base_fee(7, 30_000_000, 30_000_000, 0), 8, "rises by at least 1");
    assert_eq!(next_base_fee(100, 0, 30_000_000, 90), 90, "the floor");
    assert_eq!(next_base_fee(u64::MAX, 30_000_000, 30_000_000, 0), u64::MAX, "saturates");
}

#[test]
fn genesis_is_checked() {
    let err = |edit: fn(&mut Value)| Env::try_with_evm(edit).err().expect("refused");
    assert!(err(|evm| evm["fork"] = json!("London")).contains("evm.fork"));
    assert!(err(|evm| evm["fork"] = json!("Homestead2")).contains("unknown fork"));
    assert!(err(|evm| evm["chainId"] = json!(0)).contains("evm.chainId"));
    let storage_without_code = err(|evm| {
        evm["accounts"]["0x00000000000000000000000000000000000000ab"] =
            json!({ "storage": { format!("0x{}", "00".repeat(32)): format!("0x{}", "11".repeat(32)) } });
    });
    assert!(storage_without_code.contains("storage needs code"), "{storage_without_code}");
    assert!(err(|evm| evm["unknown"] = json!(1)).contains("unknown field"));
}

#[test]
fn genesis_accounts_get_balance_nonce_code_and_storage() {
    let env = Env::with_evm(|evm| {
        evm["accounts"][contract(3).to_string()] = json!({
            "balance": "5000",
            "nonce": 3,
            "code": "0x00",
            "storage": { format!("0x{}", "00".repeat(31) + "01"): format!("0x{}", "00".repeat(31) + "2a") }
        });
    });
    assert_eq!(env.free(&contract(3)), 5000);
    assert_eq!(env.nonce(&contract(3)), 3);
    assert_eq!(read_storage(&mut env.reader(), to_eth(contract(3)), U256::from(1)).unwrap(), U256::from(42));
    assert_eq!(TOTAL_ISSUANCE.get_or_default(&mut env.reader()), 200 * UNIT + 5000);
}

#[test]
fn events_encode_stably() {
    let event = Event::Log { address: Address([1; 20]), topics: vec![Hash([2; 32])], data: vec![3] };
    let encoded = event.encode();
    assert_eq!(encoded[0], 1);
    assert_eq!(Event::decode(&mut encoded.as_slice()).unwrap(), event);
}
