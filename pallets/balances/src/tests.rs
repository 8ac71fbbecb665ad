//! Tests through a real runtime: transfers, fees, failures, issuance.

use hyperion_primitives::{
    Address, Call as RawCall, DispatchError, EthPair, Extrinsic, Hash, Header, Pair, SignedExtrinsic, Signer,
    UNIT,
};
use hyperion_runtime::{holders_pool_account, InvalidTransaction, Runtime, StorageRead, TransactionSource};
use hyperion_state::{MemoryStateDb, StateDb};
use parity_scale_codec::Encode;
use quickcheck::{quickcheck, Arbitrary, Gen, TestResult};
use serde_json::json;
use std::sync::Arc;

use crate::{Balances, Call, ACCOUNTS, TOTAL_BURNED, TOTAL_ISSUANCE};

const INDEX: u8 = 1;

/// A chain with the balances pallet, `//Alice`.. endowed, one block built per `block` call.
struct Env {
    runtime: Runtime,
    state: MemoryStateDb,
    head: Header,
    genesis_hash: Hash,
    initial_issuance: u128,
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

fn raw(call: Call) -> RawCall {
    RawCall { pallet: INDEX, call: call.encode()[0], args: call.encode()[1..].to_vec() }
}

/// Dev keys, derived once (phrase derivation runs 2048 PBKDF2 rounds).
fn pair(name: &str) -> Pair {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, Pair>>> =
        std::sync::OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap();
    cache.entry(name.to_string()).or_insert_with(|| Pair::from_string(&format!("//{name}")).unwrap()).clone()
}

fn addr(name: &str) -> Address {
    pair(name).public().address()
}

const NAMES: [&str; 4] = ["Alice", "Bob", "Charlie", "Dave"];

impl Env {
    fn new() -> Self {
        let balances = Arc::new(Balances::new(INDEX));
        let runtime = Runtime::new(balances.clone(), vec![(INDEX, balances)]).unwrap();
        let endowments: Vec<_> = NAMES.iter().map(|n| json!([addr(n), (1000 * UNIT).to_string()])).collect();
        let mut genesis = runtime.default_genesis();
        genesis.insert("balances".into(), json!({ "balances": endowments }));
        let changes = runtime.genesis_changes(&genesis).unwrap();
        let state = MemoryStateDb::new(16);
        let root = state.commit(0, &changes, None).unwrap();
        let head = Runtime::genesis_header(root, 0);
        runtime.set_genesis_hash(head.hash());
        Self { runtime, state, genesis_hash: head.hash(), head, initial_issuance: 4000 * UNIT }
    }

    fn xt(&self, signer: &str, nonce: u64, call: Call) -> Extrinsic {
        Extrinsic::Native(SignedExtrinsic::sign(&pair(signer), self.genesis_hash, nonce, 0, raw(call)))
    }

    fn eth_xt(&self, key: &EthPair, nonce: u64, call: Call) -> Extrinsic {
        Extrinsic::Native(SignedExtrinsic::sign_ethereum(key, self.genesis_hash, nonce, 0, raw(call)))
    }

    /// Builds and commits a block; returns the receipts and the rejections.
    fn block(&mut self, xts: Vec<Extrinsic>) -> (Vec<hyperion_primitives::Receipt>, Vec<InvalidTransaction>) {
        let mut source = VecSource(xts.into_iter(), Vec::new());
        let built = self
            .runtime
            .build_block(&self.state, &self.head, addr("Dave"), self.head.number + 1, &mut source)
            .unwrap();
        // The block a validator imports executes to the same result.
        let executed = self.runtime.execute_block(&self.state, &self.head, &built.block).unwrap();
        assert_eq!(executed.changes, built.changes);
        self.state
            .commit(built.block.header.number, &built.changes, Some(built.block.header.state_root))
            .unwrap();
        self.head = built.block.header;
        (built.receipts, source.1)
    }

    fn snapshot(&self) -> hyperion_state::Snapshot {
        self.state.snapshot(self.head.number).unwrap()
    }

    fn free(&self, who: &Address) -> u128 {
        ACCOUNTS.get_or_default(&mut Reader(self.snapshot()), who).free
    }

    fn nonce(&self, who: &Address) -> u64 {
        hyperion_runtime::system::ACCOUNT_NONCE.get_or_default(&mut Reader(self.snapshot()), who)
    }

    fn validate(&self, xt: &Extrinsic) -> Result<(), InvalidTransaction> {
        self.runtime.validate(&mut Reader(self.snapshot()), xt, xt.encoded_size()).map(|_| ())
    }

    fn sum_of_balances(&self) -> u128 {
        let mut reader = Reader(self.snapshot());
        let mut all: Vec<Address> = NAMES.iter().map(|n| addr(n)).collect();
        all.push(holders_pool_account());
        all.iter()
            .map(|a| {
                let d = ACCOUNTS.get_or_default(&mut reader, a);
                d.free + d.held
            })
            .sum()
    }
}

struct Reader(hyperion_state::Snapshot);

impl StorageRead for Reader {
    fn read_raw(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.get(key)
    }
}

#[test]
fn transfer_moves_funds_and_pays_fees() {
    let mut env = Env::new();
    let bob = addr("Bob");
    let xt = env.xt("Alice", 0, Call::Transfer { dest: bob, value: 10 * UNIT });
    let (receipts, rejected) = env.block(vec![xt]);
    assert!(rejected.is_empty());
    let receipt = &receipts[0];
    assert!(receipt.success);
    assert_eq!(env.free(&bob), 1010 * UNIT);
    assert_eq!(env.free(&addr("Alice")), 990 * UNIT - receipt.fee);
    assert!(receipt.fee > 0);
    // Events: fee handling, the transfer, then ExtrinsicSuccess last.
    let transfer = receipt.events.iter().find(|e| e.pallet == INDEX && e.event == 0).unwrap();
    assert_eq!(transfer.data, (addr("Alice"), bob, 10 * UNIT).encode());
    assert_eq!(receipt.events.last().unwrap().pallet, 0);
    // The proposer (Dave) and the Holders Mining pool got their shares.
    assert!(env.free(&addr("Dave")) > 1000 * UNIT);
    assert!(env.free(&holders_pool_account()) > 0);
}

#[test]
fn failed_call_pays_fee_and_uses_nonce() {
    let mut env = Env::new();
    let xt = env.xt("Alice", 0, Call::Transfer { dest: addr("Bob"), value: 5000 * UNIT });
    let (receipts, _) = env.block(vec![xt.clone()]);
    let receipt = &receipts[0];
    assert!(!receipt.success);
    assert_eq!(receipt.error, Some(DispatchError::Module { pallet: INDEX, error: 0 }));
    // The fee events stay, the call's events are gone, and ExtrinsicFailed (system event 1) ends.
    let system_events: Vec<u8> = receipt.events.iter().filter(|e| e.pallet == 0).map(|e| e.event).collect();
    assert_eq!(system_events, vec![2, 1]);
    assert!(!receipt.events.iter().any(|e| e.pallet == INDEX && e.event == 0));
    assert_eq!(env.free(&addr("Bob")), 1000 * UNIT);
    assert_eq!(env.free(&addr("Alice")), 1000 * UNIT - receipt.fee);
    // The nonce is used: the same extrinsic is now stale.
    assert_eq!(env.validate(&xt), Err(InvalidTransaction::StaleNonce { expected: 1, got: 0 }));
}

#[test]
fn transfer_all_empties_the_account() {
    let mut env = Env::new();
    let (receipts, _) = env.block(vec![env.xt("Charlie", 0, Call::TransferAll { dest: addr("Bob") })]);
    assert!(receipts[0].success);
    assert_eq!(env.free(&addr("Charlie")), 0);
    assert_eq!(env.free(&addr("Bob")), 2000 * UNIT - receipts[0].fee);
}

#[test]
fn an_ethereum_key_signs_native_transfers() {
    let mut env = Env::new();
    let key =
        EthPair::from_hex("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d").unwrap();
    let eth = key.address();
    let (receipts, _) = env.block(vec![env.xt("Alice", 0, Call::Transfer { dest: eth, value: 10 * UNIT })]);
    assert!(receipts[0].success);

    // A native transfer from the Ethereum address, its nonce sequence starting at 0.
    let (receipts, rejected) = env.block(vec![
        env.eth_xt(&key, 0, Call::Transfer { dest: addr("Bob"), value: UNIT }),
        env.eth_xt(&key, 1, Call::Transfer { dest: addr("Bob"), value: 2 * UNIT }),
    ]);
    assert!(rejected.is_empty(), "{rejected:?}");
    assert!(receipts.iter().all(|r| r.success));
    let fees: u128 = receipts.iter().map(|r| r.fee).sum();
    assert_eq!(env.free(&eth), 7 * UNIT - fees);
    assert_eq!(env.free(&addr("Bob")), 1003 * UNIT);
    assert_eq!(env.nonce(&eth), 2);

    // A signature by this key claimed for another address, or reused on another nonce.
    let Extrinsic::Native(mut claimed) = env.eth_xt(&key, 2, Call::Transfer { dest: addr("Bob"), value: 1 })
    else {
        unreachable!()
    };
    let replayed = Extrinsic::Native(SignedExtrinsic { nonce: 3, ..claimed.clone() });
    assert_eq!(env.validate(&replayed), Err(InvalidTransaction::BadSignature));
    let Signer::Ethereum { address, .. } = &mut claimed.signer else { unreachable!() };
    *address = addr("Alice");
    assert_eq!(env.validate(&Extrinsic::Native(claimed)), Err(InvalidTransaction::BadSignature));
}

#[test]
fn bad_inputs_are_refused_and_change_nothing() {
    let mut env = Env::new();
    let bob = addr("Bob");
    let good = env.xt("Alice", 0, Call::Transfer { dest: bob, value: UNIT });

    // Wrong signature.
    let Extrinsic::Native(mut tampered) = good.clone() else { unreachable!() };
    let Signer::Ed25519 { signature, .. } = &mut tampered.signer else { unreachable!() };
    signature.0[0] ^= 1;
    let tampered = Extrinsic::Native(tampered);
    assert_eq!(env.validate(&tampered), Err(InvalidTransaction::BadSignature));

    // Signed for another chain's genesis.
    let Extrinsic::Native(n) = &good else { unreachable!() };
    let foreign =
        Extrinsic::Native(SignedExtrinsic::sign(&pair("Alice"), Hash([9; 32]), 0, 0, n.call.clone()));
    assert_eq!(env.validate(&foreign), Err(InvalidTransaction::BadSignature));

    // Fee not payable: an account with nothing.
    let poor = env.xt("Eve", 0, Call::Transfer { dest: bob, value: 0 });
    assert!(matches!(env.validate(&poor), Err(InvalidTransaction::CannotPayFee { balance: 0, .. })));

    // Malformed call arguments and unknown calls.
    let Extrinsic::Native(mut bad_args) = good.clone() else { unreachable!() };
    bad_args.call.args.pop();
    let bad_args =
        Extrinsic::Native(SignedExtrinsic::sign(&pair("Alice"), env.genesis_hash, 0, 0, bad_args.call));
    assert_eq!(env.validate(&bad_args), Err(InvalidTransaction::BadArguments));
    let unknown = Extrinsic::Native(SignedExtrinsic::sign(
        &pair("Alice"),
        env.genesis_hash,
        0,
        0,
        RawCall { pallet: 9, call: 0, args: vec![] },
    ));
    assert_eq!(env.validate(&unknown), Err(InvalidTransaction::UnknownCall { pallet: 9, call: 0 }));

    // Oversize.
    let huge = Extrinsic::Native(SignedExtrinsic::sign(
        &pair("Alice"),
        env.genesis_hash,
        0,
        0,
        RawCall { pallet: 0, call: 0, args: vec![0; 200_000] },
    ));
    assert!(matches!(env.validate(&huge), Err(InvalidTransaction::TooLarge { .. })));

    // A block offered all of them includes none, and only the good one when added.
    let before = env.snapshot().pairs(&[], None, usize::MAX);
    let (receipts, rejected) = env.block(vec![tampered, foreign, poor, bad_args, unknown, huge]);
    assert!(receipts.is_empty());
    assert_eq!(rejected.len(), 6);
    let after = env.snapshot().pairs(&[], None, usize::MAX);
    // Only System.Number changes in an empty block.
    let number_key = hyperion_runtime::system::NUMBER.key();
    let strip =
        |v: Vec<(Vec<u8>, Vec<u8>)>| v.into_iter().filter(|(k, _)| *k != number_key).collect::<Vec<_>>();
    assert_eq!(strip(before), strip(after));

    // Stale and repeated nonces.
    let (receipts, _) = env.block(vec![good.clone(), good.clone()]);
    assert_eq!(receipts.len(), 1);
    assert_eq!(env.validate(&good), Err(InvalidTransaction::StaleNonce { expected: 1, got: 0 }));
    let future = env.xt("Alice", 5, Call::Transfer { dest: bob, value: 1 });
    assert!(env.validate(&future).is_ok(), "future nonces are valid for the pool");
    let (receipts, rejected) = env.block(vec![future]);
    assert!(receipts.is_empty());
    assert_eq!(rejected, vec![InvalidTransaction::FutureNonce { expected: 1, got: 5 }]);
}

#[derive(Clone, Debug)]
struct Transfers(Vec<Vec<(u8, u8, u128, bool)>>);

impl Arbitrary for Transfers {
    fn arbitrary(g: &mut Gen) -> Self {
        let blocks = usize::arbitrary(g) % 5 + 1;
        Transfers(
            (0..blocks)
                .map(|_| {
                    let n = usize::arbitrary(g) % 8;
                    (0..n)
                        .map(|_| {
                            (
                                u8::arbitrary(g) % 4,
                                u8::arbitrary(g) % 4,
                                u128::from(u16::arbitrary(g)) * UNIT / 50,
                                bool::arbitrary(g),
                            )
                        })
                        .collect()
                })
                .collect(),
        )
    }
}

quickcheck! {
    /// After any sequence of transfers (some failing, some emptying accounts), the genesis
    /// issuance equals the sum of all balances plus everything burned, and the recorded
    /// issuance equals the sum of all balances.
    fn issuance_is_exact(t: Transfers) -> TestResult {
        let mut env = Env::new();
        let mut nonces = [0u64; 4];
        for block in &t.0 {
            let xts = block.iter().map(|(from, to, value, all)| {
                let call = if *all { Call::TransferAll { dest: addr(NAMES[*to as usize]) } }
                           else { Call::Transfer { dest: addr(NAMES[*to as usize]), value: *value } };
                let nonce = nonces[*from as usize];
                nonces[*from as usize] += 1;
                env.xt(NAMES[*from as usize], nonce, call)
            }).collect();
            let (receipts, rejected) = env.block(xts);
            // Emptied accounts cannot pay the next fee: their later extrinsics are refused, so
            // resynchronise the local nonces with the chain.
            if !rejected.is_empty() || receipts.iter().any(|r| !r.success) {
                let mut reader = Reader(env.snapshot());
                for (i, n) in NAMES.iter().enumerate() {
                    nonces[i] = hyperion_runtime::system::ACCOUNT_NONCE.get_or_default(&mut reader, &addr(n));
                }
            }
        }
        let mut reader = Reader(env.snapshot());
        let issuance = TOTAL_ISSUANCE.get_or_default(&mut reader);
        let burned = TOTAL_BURNED.get_or_default(&mut reader);
        let sum = env.sum_of_balances();
        TestResult::from_bool(sum == issuance && sum + burned == env.initial_issuance)
    }
}

#[test]
fn genesis_errors_name_the_field() {
    let balances = Arc::new(Balances::new(INDEX));
    let runtime = Runtime::new(balances.clone(), vec![(INDEX, balances)]).unwrap();
    let mut genesis = runtime.default_genesis();
    genesis.insert("balances".into(), json!({ "balances": [[addr("Alice"), "1"], [addr("Alice"), "2"]] }));
    let err = runtime.genesis_changes(&genesis).unwrap_err().to_string();
    assert!(err.contains("genesis.balances.balances[1]"), "{err}");
    genesis.insert("balances".into(), json!({ "balances": [["0x12", "1"]] }));
    let err = runtime.genesis_changes(&genesis).unwrap_err().to_string();
    assert!(err.contains("genesis.balances"), "{err}");
    genesis.insert("balances".into(), json!({ "balances": [] }));
    genesis.insert("bogus".into(), json!({}));
    let err = runtime.genesis_changes(&genesis).unwrap_err().to_string();
    assert!(err.contains("genesis.bogus"), "{err}");
}

#[test]
fn queries_and_metadata() {
    let env = Env::new();
    let answer =
        env.runtime.query(env.snapshot(), "balances_account", &json!({ "who": addr("Bob") })).unwrap();
    assert_eq!(answer["free"], json!((1000 * UNIT).to_string()));
    assert!(env.runtime.query(env.snapshot(), "balances_nothing", &json!({})).is_err());
    assert!(env.runtime.query(env.snapshot(), "balances_account", &json!({ "who": 5 })).is_err());
    let meta = env.runtime.metadata();
    let pallet = meta.pallet("balances").unwrap();
    assert_eq!(pallet.index, INDEX);
    // Metadata-driven encoding gives the same bytes as the typed call.
    let transfer = &pallet.calls[0];
    let args = hyperion_runtime::metadata::encode_fields(
        &transfer.fields,
        &json!({ "dest": addr("Bob"), "value": "10" }),
    )
    .unwrap();
    assert_eq!(args, Call::Transfer { dest: addr("Bob"), value: 10 }.encode()[1..]);
}

#[derive(Clone, Debug)]
struct AnyAddress(Address);

impl Arbitrary for AnyAddress {
    fn arbitrary(g: &mut Gen) -> Self {
        let mut bytes = [0u8; 20];
        bytes.iter_mut().for_each(|b| *b = u8::arbitrary(g));
        AnyAddress(Address(bytes))
    }
}

fn round_trips<T: Encode + parity_scale_codec::Decode + PartialEq>(value: T) -> bool {
    <T as parity_scale_codec::DecodeAll>::decode_all(&mut &value.encode()[..]).ok() == Some(value)
}

quickcheck! {
    fn account_data_round_trip(free: u128, held: u128) -> bool {
        round_trips(crate::AccountData { free, held })
    }
    fn call_round_trip(dest: AnyAddress, value: u128, all: bool) -> bool {
        round_trips(if all { Call::TransferAll { dest: dest.0 } } else { Call::Transfer { dest: dest.0, value } })
    }
    fn event_round_trip(a: AnyAddress, b: AnyAddress, amount: u128, kind: u8) -> bool {
        use crate::Event;
        let (who, to) = (a.0, b.0);
        round_trips(match kind % 6 {
            0 => Event::Transfer { from: who, to, amount },
            1 => Event::Withdraw { who, amount },
            2 => Event::Deposit { who, amount },
            3 => Event::Burned { who, amount },
            4 => Event::Held { who, amount },
            _ => Event::Released { who, amount },
        })
    }
}

#[test]
fn golden_call_encoding() {
    let call = Call::Transfer { dest: Address([0x11; 20]), value: 5 };
    assert_eq!(hex::encode(call.encode()), format!("00{}05000000000000000000000000000000", "11".repeat(20)));
}

#[test]
fn a_chain_of_transfers_is_seen_as_one_and_runs_serially() {
    let env = Env::new();
    let executor =
        hyperion_runtime::Executor::new(hyperion_runtime::ExecutorConfig::with_threads(2)).unwrap();
    let parallel =
        Runtime::new(Arc::new(Balances::new(INDEX)), vec![(INDEX, Arc::new(Balances::new(INDEX)))])
            .unwrap()
            .with_executor(executor);
    parallel.set_genesis_hash(env.genesis_hash);
    let transfer = |i: usize| Call::Transfer { dest: addr(NAMES[(i + 1) % 4]), value: UNIT };
    // Each sender was credited by the extrinsic just before: one chain of 12 (the senders
    // differ, so only the credits link them).
    let chain: Vec<Extrinsic> = (0..12).map(|i| env.xt(NAMES[i % 4], (i / 4) as u64, transfer(i))).collect();
    // Four senders that nobody credits: no chain.
    let independent: Vec<Extrinsic> = (0..12)
        .map(|i| {
            env.xt(
                NAMES[i % 4],
                (i / 4) as u64,
                Call::Transfer { dest: addr(&format!("payee {i}")), value: UNIT },
            )
        })
        .collect();
    for (xts, chained) in [(chain, true), (independent, false)] {
        let mut source = VecSource(xts.into_iter(), Vec::new());
        let built = parallel.build_block(&env.state, &env.head, addr("Dave"), 1, &mut source).unwrap();
        assert_eq!(built.receipts.len(), 12, "{:?}", source.1);
        let serial = env.runtime.execute_block(&env.state, &env.head, &built.block).unwrap();
        let executed = parallel.execute_block(&env.state, &env.head, &built.block).unwrap();
        assert_eq!(executed.changes, serial.changes);
        let chain_mode =
            hyperion_runtime::ExecutionMode::Serial(hyperion_runtime::SerialReason::DependencyChain);
        assert_eq!(executed.stats.mode == chain_mode, chained, "{:?}", executed.stats.mode);
    }
}

#[test]
fn bad_signatures_in_a_block_are_refused_by_builder_and_importer_at_any_thread_count() {
    let mut env = Env::new();
    let eth =
        EthPair::from_hex("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80").unwrap();
    let (receipts, _) =
        env.block(vec![env.xt("Alice", 0, Call::Transfer { dest: eth.address(), value: 10 * UNIT })]);
    assert!(receipts[0].success);
    let parallel = |threads| {
        let executor =
            hyperion_runtime::Executor::new(hyperion_runtime::ExecutorConfig::with_threads(threads)).unwrap();
        let runtime =
            Runtime::new(Arc::new(Balances::new(INDEX)), vec![(INDEX, Arc::new(Balances::new(INDEX)))])
                .unwrap()
                .with_executor(executor);
        runtime.set_genesis_hash(env.genesis_hash);
        runtime
    };
    let tamper = |xt: &Extrinsic| {
        let Extrinsic::Native(mut tampered) = xt.clone() else { unreachable!() };
        let Signer::Ed25519 { signature, .. } = &mut tampered.signer else { unreachable!() };
        signature.0[0] ^= 1;
        Extrinsic::Native(tampered)
    };
    // Four senders, three extrinsics each, one of them Ethereum-signed; the sixth is tampered.
    let good: Vec<Extrinsic> = (0..12)
        .map(|i| {
            let call = Call::Transfer { dest: addr(&format!("payee {i}")), value: UNIT };
            match i % 4 {
                3 => env.eth_xt(&eth, (i / 4) as u64, call),
                0 => env.xt("Alice", (i / 4 + 1) as u64, call),
                _ => env.xt(NAMES[i % 4], (i / 4) as u64, call),
            }
        })
        .collect();
    let mut with_bad = good.clone();
    with_bad[5] = tamper(&good[5]);
    for runtime in [parallel(1), parallel(2), parallel(4)] {
        // The builder leaves it out, with the reason (and the later extrinsics of its sender, whose
        // nonces no longer follow).
        let mut source = VecSource(with_bad.clone().into_iter(), Vec::new());
        let built = runtime.build_block(&env.state, &env.head, addr("Dave"), 2, &mut source).unwrap();
        assert_eq!(source.1.first(), Some(&InvalidTransaction::BadSignature), "{:?}", source.1);
        assert!(!built.block.extrinsics.contains(&with_bad[5]));
        assert!(built.block.extrinsics.contains(&good[4]) && built.block.extrinsics.contains(&good[6]));

        // A block that holds it does not import; the same block without the tampering does.
        let mut block = runtime
            .build_block(
                &env.state,
                &env.head,
                addr("Dave"),
                2,
                &mut VecSource(good.clone().into_iter(), vec![]),
            )
            .unwrap()
            .block;
        assert_eq!(block.extrinsics.len(), 12);
        assert!(runtime.execute_block(&env.state, &env.head, &block).is_ok());
        block.extrinsics[5] = tamper(&block.extrinsics[5]);
        let refused = runtime.execute_block(&env.state, &env.head, &block).unwrap_err().to_string();
        assert!(refused.contains("extrinsic 5") && refused.contains("ignature"), "{refused}");
    }
}
