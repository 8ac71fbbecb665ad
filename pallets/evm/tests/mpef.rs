//! MPEF through the whole runtime (system, balances, evm): generated blocks of native transfers
//! (ed25519 and Ethereum-key signers), Ethereum transfers, ERC20 transfers, contract creation,
//! CREATE2 of children that self-destruct or stay, reverts, reads of the coinbase balance and a
//! shared counter, with invalid transactions mixed in, at conflict rates from none to every
//! transaction on one account. Built and imported with 1, 2, 4 and 8 threads, every block, receipt,
//! rejection and state change must be byte-identical to serial execution.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address as EthAddress, Bytes, Signature, TxKind, U256};
use hyperion_primitives::{Address, Call, Extrinsic, Hash, Header, Pair, SignedExtrinsic, UNIT};
use hyperion_primitives::{EthPair, Receipt};
use hyperion_runtime::{
    BuiltBlock, Executor, ExecutorConfig, InvalidTransaction, Runtime, TransactionSource,
};
use hyperion_state::{ChangeSet, MemoryStateDb, StateDb};
use k256::ecdsa::SigningKey;
use pallet_balances::Balances;
use pallet_evm::Evm;
use parity_scale_codec::{Decode, Encode};
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};

const BALANCES: u8 = 1;
const EVM: u8 = 2;
const CHAIN_ID: u64 = 4242;
const SENDERS: usize = 8;
const TOKEN_JSON: &str = include_str!("../../../tests/eth-clients/contracts/HyperionToken.json");

/// `CREATE2(0, calldata[32..], salt = calldata[0])`, the new address stored in slot 0.
const FACTORY: &str = "36602090038060206000376000359060006000f560005500";
/// Stores `BALANCE(COINBASE)` in slot 0.
const COINBASE_READER: &str = "413160005500";
/// Adds 1 to slot 0.
const COUNTER: &str = "60005460010160005500";
/// Always reverts.
const REVERTER: &str = "60006000fd";
/// Child init code that self-destructs to its creator at once (deleted: created in this
/// transaction, EIP-6780).
const DOOMED_CHILD: [u8; 2] = [0x33, 0xff];
/// Child init code that deploys one STOP byte.
const LASTING_CHILD: [u8; 10] = [0x60, 0x00, 0x60, 0x00, 0x53, 0x60, 0x01, 0x60, 0x00, 0xf3];

fn contract(n: u8) -> EthAddress {
    EthAddress::from([0xc0, 0xde, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, n])
}

const FACTORY_AT: u8 = 1;
const READER_AT: u8 = 2;
const COUNTER_AT: u8 = 3;
const REVERTER_AT: u8 = 4;

fn eth_key(n: usize) -> SigningKey {
    SigningKey::from_slice(&[n as u8 + 1; 32]).unwrap()
}

fn eth_pair(n: usize) -> EthPair {
    EthPair::from_secret(&[n as u8 + 1; 32]).unwrap()
}

fn native_pair(n: usize) -> Pair {
    Pair::from_seed(&[n as u8 + 100; 32])
}

fn native(address: EthAddress) -> Address {
    Address(address.0 .0)
}

fn runtime(executor: Executor) -> Runtime {
    let balances = Arc::new(Balances::new(BALANCES));
    let evm = Arc::new(Evm::new(EVM, balances.clone()));
    Runtime::new(balances.clone(), vec![(BALANCES, balances), (EVM, evm.clone())])
        .and_then(|r| r.with_ethereum(EVM, evm))
        .unwrap()
        .with_executor(executor)
}

/// A runtime that runs every block in parallel on `threads` workers and never gives up.
fn parallel(threads: usize) -> Runtime {
    let config = ExecutorConfig { force_parallel: true, ..ExecutorConfig::with_threads(threads) };
    runtime(Executor::new(config).unwrap())
}

fn sign_eth(
    key: &SigningKey,
    nonce: u64,
    to: Option<EthAddress>,
    value: u128,
    input: Vec<u8>,
    gas: u64,
) -> Extrinsic {
    let tx = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: 20_000_000_000,
        max_priority_fee_per_gas: 2_000_000_000,
        to: to.map_or(TxKind::Create, TxKind::Call),
        value: U256::from(value),
        access_list: Default::default(),
        input: Bytes::from(input),
    };
    let (signature, recovery) = key.sign_prehash_recoverable(tx.signature_hash().as_slice()).unwrap();
    let signed = tx.into_signed(Signature::from((signature, recovery)));
    Extrinsic::Ethereum(TxEnvelope::from(signed).encoded_2718())
}

fn erc20_transfer(to: EthAddress, amount: u128) -> Vec<u8> {
    let mut input = vec![0xa9, 0x05, 0x9c, 0xbb];
    input.extend([0u8; 12]);
    input.extend(to.as_slice());
    input.extend(U256::from(amount).to_be_bytes::<32>());
    input
}

fn token_creation() -> Vec<u8> {
    let json: Value = serde_json::from_str(TOKEN_JSON).unwrap();
    let mut creation = hex::decode(json["bytecode"].as_str().unwrap().trim_start_matches("0x")).unwrap();
    let string = |text: &str| {
        let mut out = U256::from(text.len()).to_be_bytes::<32>().to_vec();
        out.extend(text.as_bytes());
        out.resize(64, 0);
        out
    };
    creation.extend(U256::from(96).to_be_bytes::<32>());
    creation.extend(U256::from(160).to_be_bytes::<32>());
    creation.extend(U256::from(1_000_000 * UNIT).to_be_bytes::<32>());
    creation.extend(string("Test"));
    creation.extend(string("TST"));
    creation
}

struct VecSource<I>(I);

impl<I: Iterator<Item = Extrinsic>> TransactionSource for VecSource<I> {
    fn next(&mut self) -> Option<(Arc<Extrinsic>, usize)> {
        self.0.next().map(|xt| {
            let len = xt.encoded_size();
            (Arc::new(xt), len)
        })
    }
    fn reject(&mut self, _hash: &Hash, _reason: &InvalidTransaction) {}
}

/// Genesis, then a setup block that deploys the token and gives every Ethereum sender some.
struct Chain {
    state: MemoryStateDb,
    head: Header,
    genesis_hash: Hash,
    token: EthAddress,
}

fn chain() -> &'static Chain {
    static CHAIN: OnceLock<Chain> = OnceLock::new();
    CHAIN.get_or_init(|| {
        let serial = runtime(Executor::serial());
        let mut endowed: Vec<Value> = Vec::new();
        for i in 0..SENDERS {
            endowed
                .push(json!([native(EthAddress::from_private_key(&eth_key(i))), (100 * UNIT).to_string()]));
            endowed.push(json!([native_pair(i).public().address(), (100 * UNIT).to_string()]));
        }
        let code = |hex_code: String| json!({ "code": format!("0x{hex_code}") });
        let accounts = json!({
            contract(FACTORY_AT).to_string(): code(FACTORY.into()),
            contract(READER_AT).to_string(): code(COINBASE_READER.into()),
            contract(COUNTER_AT).to_string(): code(COUNTER.into()),
            contract(REVERTER_AT).to_string(): code(REVERTER.into()),
        });
        let mut genesis = serial.default_genesis();
        genesis.insert("balances".into(), json!({ "balances": endowed }));
        genesis.insert(
            "evm".into(),
            json!({ "chainId": CHAIN_ID, "fork": "Prague", "gasLimit": 30_000_000, "accounts": accounts }),
        );
        let changes = serial.genesis_changes(&genesis).unwrap();
        let state = MemoryStateDb::new(4);
        let root = state.commit(0, &changes, None).unwrap();
        let mut head = Runtime::genesis_header(root, 0);
        let genesis_hash = head.hash();
        serial.set_genesis_hash(genesis_hash);

        let deployer = eth_key(0);
        let token = EthAddress::from_private_key(&deployer).create(0);
        let mut setup = vec![sign_eth(&deployer, 0, None, 0, token_creation(), 3_000_000)];
        for i in 1..SENDERS {
            let to = EthAddress::from_private_key(&eth_key(i));
            setup.push(sign_eth(
                &deployer,
                i as u64,
                Some(token),
                0,
                erc20_transfer(to, 1_000 * UNIT),
                100_000,
            ));
        }
        let built = serial
            .build_block(&state, &head, Address([0xaa; 20]), 1_000, &mut VecSource(setup.into_iter()))
            .unwrap();
        assert!(built.receipts.iter().all(|r| r.success), "setup block");
        assert_eq!(built.block.extrinsics.len(), SENDERS);
        state.commit(1, &built.changes, Some(built.block.header.state_root)).unwrap();
        head = built.block.header;
        Chain { state, head, genesis_hash, token }
    })
}

/// One generated transaction.
#[derive(Clone, Debug)]
enum Op {
    /// Native transfer; `eth_signer` signs it with the sender's Ethereum key instead.
    Native {
        from: usize,
        to: usize,
        amount: u64,
        eth_signer: bool,
    },
    EthTransfer {
        from: usize,
        to: usize,
        amount: u64,
    },
    Erc20 {
        from: usize,
        to: usize,
        amount: u64,
    },
    Create {
        from: usize,
    },
    Create2 {
        from: usize,
        salt: u8,
        doomed: bool,
    },
    ReadCoinbase {
        from: usize,
    },
    Count {
        from: usize,
    },
    Revert {
        from: usize,
    },
    /// A transaction with a nonce far ahead (refused; later ones of the sender too).
    Gap {
        from: usize,
    },
}

#[derive(Clone, Debug)]
struct Plan {
    ops: Vec<Op>,
}

impl Arbitrary for Plan {
    fn arbitrary(g: &mut Gen) -> Self {
        // How many senders and recipients: 1 is every transaction on one account.
        let senders = *g.choose(&[1usize, 2, 4, SENDERS]).unwrap();
        let recipients = *g.choose(&[1usize, 3, SENDERS]).unwrap();
        let count = usize::arbitrary(g) % 40;
        let ops = (0..count)
            .map(|_| {
                let from = usize::arbitrary(g) % senders;
                let to = usize::arbitrary(g) % recipients;
                // Amounts sometimes exceed what is there, so that calls fail.
                let amount = *g.choose(&[0u64, 1, 1_000, 1_000, 1_000, 1_000, u64::MAX]).unwrap();
                match u8::arbitrary(g) % 11 {
                    0 | 1 => Op::Native { from, to, amount, eth_signer: bool::arbitrary(g) },
                    2 => Op::EthTransfer { from, to, amount },
                    3 | 4 => Op::Erc20 { from, to, amount },
                    5 => Op::Create { from },
                    6 => Op::Create2 { from, salt: u8::arbitrary(g) % 3, doomed: bool::arbitrary(g) },
                    7 => Op::ReadCoinbase { from },
                    8 => Op::Count { from },
                    9 => Op::Revert { from },
                    _ => Op::Gap { from },
                }
            })
            .collect();
        Plan { ops }
    }
}

/// Signs the plan's transactions with consecutive nonces per account (Ethereum senders share
/// their nonce between Ethereum transactions and native extrinsics signed with their key).
fn extrinsics(plan: &Plan, chain: &Chain) -> Vec<Extrinsic> {
    let mut eth_nonces = [0u64; SENDERS];
    for (i, nonce) in eth_nonces.iter_mut().enumerate() {
        // The deployer used nonces 0..SENDERS in the setup block.
        *nonce = if i == 0 { SENDERS as u64 } else { 0 };
    }
    let mut native_nonces = [0u64; SENDERS];
    let eth_to = |i: usize| EthAddress::from_private_key(&eth_key(i));
    let next = |nonces: &mut [u64; SENDERS], i: usize| {
        nonces[i] += 1;
        nonces[i] - 1
    };
    plan.ops
        .iter()
        .map(|op| match *op {
            Op::Native { from, to, amount, eth_signer } => {
                let dest = native_pair(to).public().address();
                let encoded =
                    pallet_balances::Call::Transfer { dest, value: u128::from(amount) * 1_000 }.encode();
                let call = Call { pallet: BALANCES, call: encoded[0], args: encoded[1..].to_vec() };
                let signed = if eth_signer {
                    let nonce = next(&mut eth_nonces, from);
                    SignedExtrinsic::sign_ethereum(&eth_pair(from), chain.genesis_hash, nonce, 7, call)
                } else {
                    let nonce = next(&mut native_nonces, from);
                    SignedExtrinsic::sign(&native_pair(from), chain.genesis_hash, nonce, 0, call)
                };
                Extrinsic::Native(signed)
            }
            Op::EthTransfer { from, to, amount } => {
                let nonce = next(&mut eth_nonces, from);
                sign_eth(
                    &eth_key(from),
                    nonce,
                    Some(eth_to(to)),
                    u128::from(amount) * 1_000,
                    Vec::new(),
                    21_000,
                )
            }
            Op::Erc20 { from, to, amount } => {
                let nonce = next(&mut eth_nonces, from);
                let input = erc20_transfer(eth_to(to), u128::from(amount) * 1_000);
                sign_eth(&eth_key(from), nonce, Some(chain.token), 0, input, 100_000)
            }
            Op::Create { from } => {
                let nonce = next(&mut eth_nonces, from);
                let init = hex::decode(format!("600a600c600039600a6000f3{COUNTER}")).unwrap();
                sign_eth(&eth_key(from), nonce, None, 0, init, 200_000)
            }
            Op::Create2 { from, salt, doomed } => {
                let nonce = next(&mut eth_nonces, from);
                let mut input = U256::from(salt).to_be_bytes::<32>().to_vec();
                input.extend(if doomed { &DOOMED_CHILD[..] } else { &LASTING_CHILD[..] });
                sign_eth(&eth_key(from), nonce, Some(contract(FACTORY_AT)), 0, input, 200_000)
            }
            Op::ReadCoinbase { from } => {
                let nonce = next(&mut eth_nonces, from);
                sign_eth(&eth_key(from), nonce, Some(contract(READER_AT)), 0, Vec::new(), 60_000)
            }
            Op::Count { from } => {
                let nonce = next(&mut eth_nonces, from);
                sign_eth(&eth_key(from), nonce, Some(contract(COUNTER_AT)), 0, Vec::new(), 60_000)
            }
            Op::Revert { from } => {
                let nonce = next(&mut eth_nonces, from);
                sign_eth(&eth_key(from), nonce, Some(contract(REVERTER_AT)), 0, Vec::new(), 60_000)
            }
            Op::Gap { from } => {
                sign_eth(&eth_key(from), eth_nonces[from] + 5, Some(eth_to(0)), 1, Vec::new(), 21_000)
            }
        })
        .collect()
}

/// What a built block comes to, for comparison.
type Outcome = (Header, Vec<Receipt>, Vec<(Hash, InvalidTransaction)>, ChangeSet);

fn build(runtime: &Runtime, chain: &Chain, xts: &[Extrinsic]) -> Outcome {
    let mut source = VecSource(xts.iter().cloned());
    let built: BuiltBlock =
        runtime.build_block(&chain.state, &chain.head, Address([0xaa; 20]), 2_000, &mut source).unwrap();
    (built.block.header, built.receipts, built.rejected, built.changes)
}

struct Runtimes {
    serial: Runtime,
    parallel: Vec<(usize, Runtime)>,
}

fn runtimes() -> &'static Runtimes {
    static RUNTIMES: OnceLock<Runtimes> = OnceLock::new();
    RUNTIMES.get_or_init(|| {
        let hash = chain().genesis_hash;
        let serial = runtime(Executor::serial());
        serial.set_genesis_hash(hash);
        let parallel = [1, 2, 4, 8]
            .into_iter()
            .map(|threads| {
                let runtime = parallel(threads);
                runtime.set_genesis_hash(hash);
                (threads, runtime)
            })
            .collect();
        Runtimes { serial, parallel }
    })
}

fn check(plan: Plan) -> TestResult {
    let chain = chain();
    let runtimes = runtimes();
    let xts = extrinsics(&plan, chain);
    let reference = build(&runtimes.serial, chain, &xts);
    if std::env::var_os("MPEF_TEST_DEBUG").is_some() {
        let ok = reference.1.iter().filter(|r| r.success).count();
        eprintln!(
            "{} xts: {} included ({ok} succeeded), rejected {:?}",
            xts.len(),
            reference.1.len(),
            reference.2.iter().map(|r| r.1.to_string()).collect::<Vec<_>>()
        );
    }
    let block = hyperion_primitives::Block {
        header: reference.0.clone(),
        extrinsics: {
            let rejected: Vec<Hash> = reference.2.iter().map(|(h, _)| *h).collect();
            xts.iter().filter(|x| !rejected.contains(&x.hash())).cloned().collect()
        },
        certificate: None,
    };
    for (threads, runtime) in &runtimes.parallel {
        let built = build(runtime, chain, &xts);
        if built != reference {
            return TestResult::error(format!("building with {threads} threads differs from serial"));
        }
        let imported = runtime.execute_block(&chain.state, &chain.head, &block);
        match imported {
            Ok(executed) if executed.changes == reference.3 && executed.receipts == reference.1 => {}
            Ok(_) => return TestResult::error(format!("importing with {threads} threads differs")),
            Err(e) => return TestResult::error(format!("importing with {threads} threads: {e}")),
        }
    }
    TestResult::passed()
}

#[test]
fn generated_blocks_give_the_serial_result_on_any_thread_count() {
    QuickCheck::new().tests(60).quickcheck(check as fn(Plan) -> TestResult);
}

/// The executor's own fallback (small blocks, conflicts) keeps results identical too.
#[test]
fn the_default_executor_gives_the_serial_result() {
    let chain = chain();
    let default = runtime(Executor::new(ExecutorConfig::with_threads(2)).unwrap());
    default.set_genesis_hash(chain.genesis_hash);
    let mut g = Gen::new(40);
    for _ in 0..10 {
        let plan = Plan::arbitrary(&mut g);
        let xts = extrinsics(&plan, chain);
        assert_eq!(build(&default, chain, &xts), build(&runtimes().serial, chain, &xts), "{plan:?}");
    }
}

/// The state after the reference block: its changes over the chain's head.
struct After<'a> {
    chain: &'a Chain,
    changes: &'a ChangeSet,
}

impl hyperion_vm::keys::KeyRead for After<'_> {
    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        match self.changes.get(key) {
            Some(value) => value.clone(),
            None => self.chain.state.snapshot(self.chain.head.number).unwrap().get(key),
        }
    }
}

fn slot0(outcome: &Outcome, address: EthAddress) -> U256 {
    let mut after = After { chain: chain(), changes: &outcome.3 };
    hyperion_vm::keys::read_storage(&mut after, address, U256::ZERO).unwrap()
}

fn code_hash(outcome: &Outcome, address: EthAddress) -> Option<alloy_primitives::B256> {
    let mut after = After { chain: chain(), changes: &outcome.3 };
    hyperion_vm::keys::read_code_hash(&mut after, address).unwrap()
}

/// Builds `ops` serially and on every thread count; all must agree. Returns the serial outcome.
fn agreed(ops: Vec<Op>) -> Outcome {
    let chain = chain();
    let xts = extrinsics(&Plan { ops }, chain);
    let reference = build(&runtimes().serial, chain, &xts);
    assert!(reference.2.is_empty(), "nothing is refused: {:?}", reference.2);
    for (threads, runtime) in &runtimes().parallel {
        assert!(build(runtime, chain, &xts) == reference, "{threads} threads differ from serial execution");
    }
    reference
}

#[test]
fn a_transaction_reads_the_coinbase_balance_with_every_earlier_fee_paid() {
    let mut ops: Vec<Op> = (1..SENDERS).map(|from| Op::EthTransfer { from, to: 0, amount: 1 }).collect();
    ops.push(Op::ReadCoinbase { from: 0 });
    ops.extend((1..SENDERS).map(|from| Op::Native { from, to: 0, amount: 1, eth_signer: true }));
    let outcome = agreed(ops);
    assert!(outcome.1.iter().all(|r| r.success));
    // What the reader stored is the proposer's balance after the transfers' fees: every fee
    // paid before it, none after it.
    let proposer = Address([0xaa; 20]);
    let mut reader = Reader(chain().state.snapshot(chain().head.number).unwrap());
    let start = pallet_balances::ACCOUNTS.get_or_default(&mut reader, &proposer).free;
    let paid = |receipts: &[Receipt]| -> u128 {
        receipts
            .iter()
            .flat_map(|r| &r.events)
            .filter(|e| e.pallet == BALANCES && e.event == 2)
            .filter_map(|e| <(Address, u128)>::decode(&mut e.data.as_slice()).ok())
            .filter(|(who, _)| *who == proposer)
            .map(|(_, amount)| amount)
            .sum()
    };
    let before = paid(&outcome.1[..SENDERS - 1]);
    assert!(before > 0 && paid(&outcome.1[SENDERS..]) > 0, "fees are paid before and after the read");
    assert_eq!(slot0(&outcome, contract(READER_AT)), U256::from(start + before));
}

struct Reader(hyperion_state::Snapshot);

impl hyperion_runtime::StorageRead for Reader {
    fn read_raw(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.get(key)
    }
}

#[test]
fn create2_reuses_an_address_only_after_a_self_destruct() {
    let outcome = agreed(vec![
        // Created and destroyed in one transaction: the address is free again.
        Op::Create2 { from: 1, salt: 7, doomed: true },
        Op::Create2 { from: 2, salt: 7, doomed: false },
        // Now it holds code: the same CREATE2 fails.
        Op::Create2 { from: 3, salt: 7, doomed: false },
    ]);
    let child = contract(FACTORY_AT).create2_from_code(U256::from(7u8).to_be_bytes::<32>(), LASTING_CHILD);
    assert!(outcome.1[0].success && outcome.1[1].success, "{:?}", outcome.1);
    // A collision burns the gas given to CREATE2 (all but 1/64): the factory then runs out of
    // gas storing the result, and the third transaction fails as a whole.
    assert!(!outcome.1[2].success, "the third CREATE2 collides");
    assert_eq!(code_hash(&outcome, child), Some(alloy_primitives::keccak256([0u8])));
    assert_eq!(slot0(&outcome, contract(FACTORY_AT)), U256::from_be_slice(child.as_slice()));
}

#[test]
fn a_chain_of_dependent_transactions_counts_in_order() {
    let ops: Vec<Op> = (0..24).map(|i| Op::Count { from: i % SENDERS }).collect();
    let outcome = agreed(ops);
    assert_eq!(slot0(&outcome, contract(COUNTER_AT)), U256::from(24));
}
