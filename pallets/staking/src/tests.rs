//! Tests through a real runtime (balances and staking): calls, epochs, rewards, slashing, and
//! the pallet's invariants over random histories.

use std::collections::HashMap;
use std::sync::Arc;

use hyperion_primitives::{
    Address, Call as RawCall, DispatchError, Extrinsic, Hash, Header, Pair, Public, Receipt, SignedExtrinsic,
    UNIT,
};
use hyperion_runtime::{holders_pool_account, InvalidTransaction, Runtime, StorageRead, TransactionSource};
use hyperion_state::{MemoryStateDb, StateDb};
use pallet_balances::{Balances, ACCOUNTS, TOTAL_ISSUANCE};
use parity_scale_codec::{Decode, Encode};
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};
use serde_json::json;

use crate::pallet::{PROPOSED, REPORTED};
use crate::*;

const BALANCES: u8 = 1;
const STAKING: u8 = 2;
const EPOCH_LENGTH: u64 = 20;
const UNBONDING_BLOCKS: u64 = 15;
const EVIDENCE_MAX_AGE: u64 = 30;

/// Evidence the test verifier accepts: SCALE `(offender, height)`; anything else is refused.
struct TestEvidence;

impl EvidenceVerifier for TestEvidence {
    fn verify(&self, evidence: &[u8], _genesis_hash: Hash) -> Result<Offence, String> {
        let (offender, height) = <(Public, u64)>::decode(&mut &evidence[..]).map_err(|e| e.to_string())?;
        Ok(Offence { offender, height })
    }
}

fn pair(i: u8) -> Pair {
    Pair::from_seed(&[i + 1; 32])
}

fn addr(i: u8) -> Address {
    pair(i).public().address()
}

/// Accounts 0..=2 run the genesis sequencers, 3 can register one, 4.. are holders.
const ACCOUNTS_COUNT: u8 = 12;

struct VecSource(std::vec::IntoIter<Extrinsic>, Vec<InvalidTransaction>);

impl TransactionSource for VecSource {
    fn next(&mut self) -> Option<(Arc<Extrinsic>, usize)> {
        self.0.next().map(|x| {
            let len = x.encoded_size();
            (Arc::new(x), len)
        })
    }
    fn reject(&mut self, _hash: &Hash, reason: &InvalidTransaction) {
        self.1.push(reason.clone());
    }
}

struct Reader(hyperion_state::Snapshot);

impl StorageRead for Reader {
    fn read_raw(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.get(key)
    }
}

struct Env {
    runtime: Runtime,
    state: MemoryStateDb,
    head: Header,
    genesis_hash: Hash,
    nonces: HashMap<u8, u64>,
    /// Validators (by account) that do not propose: their turns go to the next one.
    offline: Vec<Address>,
    /// Proposer priorities of the rotation.
    priorities: HashMap<Address, i128>,
}

fn config() -> StakingConfig {
    StakingConfig {
        epoch_length: EPOCH_LENGTH,
        max_validators: 3,
        max_sequencers: 8,
        min_self_bond: 100 * UNIT,
        unbonding_blocks: UNBONDING_BLOCKS,
        max_commission_change: Perbill(50_000_000),
        block_reward: UNIT,
        double_sign_slash: Perbill(100_000_000),
        downtime_slash: Perbill(10_000_000),
        downtime_threshold: Perbill(500_000_000),
        jail_epochs: 2,
        evidence_max_age: EVIDENCE_MAX_AGE,
        slash_destination: SlashDestination::Pool,
    }
}

impl Env {
    fn new() -> Self {
        Self::with_config(config())
    }

    fn with_config(config: StakingConfig) -> Self {
        let balances = Arc::new(Balances::new(BALANCES));
        let staking = Arc::new(Staking::new(STAKING, balances.clone(), Arc::new(TestEvidence)));
        let runtime = Runtime::new(balances.clone(), vec![(BALANCES, balances), (STAKING, staking)]).unwrap();
        let endowed: Vec<_> =
            (0..ACCOUNTS_COUNT).map(|i| json!([addr(i), (10_000 * UNIT).to_string()])).collect();
        let sequencers: Vec<_> = (0..3u8)
            .map(|i| {
                json!({
                    "operator": addr(i),
                    "consensusKey": pair(i).public(),
                    "selfBond": (u128::from(i + 2) * 100 * UNIT).to_string(),
                    "commission": 100_000_000,
                })
            })
            .collect();
        let mut genesis = runtime.default_genesis();
        genesis.insert("balances".into(), json!({ "balances": endowed }));
        genesis.insert(
            "staking".into(),
            json!({ "config": serde_json::to_value(config).unwrap(), "sequencers": sequencers }),
        );
        let changes = runtime.genesis_changes(&genesis).unwrap();
        let state = MemoryStateDb::new(64);
        let root = state.commit(0, &changes, None).unwrap();
        let head = Runtime::genesis_header(root, 0);
        runtime.set_genesis_hash(head.hash());
        Self {
            runtime,
            state,
            genesis_hash: head.hash(),
            head,
            nonces: HashMap::new(),
            offline: Vec::new(),
            priorities: HashMap::new(),
        }
    }

    fn xt(&mut self, signer: u8, call: Call) -> Extrinsic {
        let nonce = self.nonces.entry(signer).or_default();
        let encoded = call.encode();
        let raw = RawCall { pallet: STAKING, call: encoded[0], args: encoded[1..].to_vec() };
        let xt = SignedExtrinsic::sign(&pair(signer), self.genesis_hash, *nonce, 0, raw);
        *nonce += 1;
        Extrinsic::Native(xt)
    }

    fn transfer(&mut self, signer: u8, dest: Address, value: u128) -> Extrinsic {
        let nonce = self.nonces.entry(signer).or_default();
        let encoded = pallet_balances::Call::Transfer { dest, value }.encode();
        let raw = RawCall { pallet: BALANCES, call: encoded[0], args: encoded[1..].to_vec() };
        let xt = SignedExtrinsic::sign(&pair(signer), self.genesis_hash, *nonce, 0, raw);
        *nonce += 1;
        Extrinsic::Native(xt)
    }

    fn reader(&self) -> Reader {
        Reader(self.state.snapshot(self.head.number).unwrap())
    }

    /// The proposer of the next block: the online validators of its epoch take turns in
    /// proportion to their power (smooth weighted round robin, as consensus rotates; offline
    /// ones are skipped, as consensus moves to the next round).
    fn next_proposer(&mut self) -> Address {
        let number = self.head.number + 1;
        let epoch = epoch_of(number, EPOCH_LENGTH);
        let set = VALIDATORS.get(&mut self.reader(), &epoch).unwrap_or_default();
        let online: Vec<_> = set.iter().filter(|v| !self.offline.contains(&v.operator)).collect();
        let total: i128 = online.iter().map(|v| i128::from(v.power)).sum();
        let mut best: Option<(i128, Address)> = None;
        for v in &online {
            let priority = self.priorities.entry(v.operator).or_default();
            *priority += i128::from(v.power);
            if best.is_none_or(|(p, _)| *priority > p) {
                best = Some((*priority, v.operator));
            }
        }
        let Some((_, chosen)) = best else { return addr(0) };
        *self.priorities.get_mut(&chosen).expect("just set") -= total;
        set.iter().find(|v| v.operator == chosen).map_or(addr(0), |v| v.key.address())
    }

    /// Builds, checks by re-execution and commits a block.
    fn block(&mut self, xts: Vec<Extrinsic>) -> Vec<Receipt> {
        let mut source = VecSource(xts.into_iter(), Vec::new());
        let proposer = self.next_proposer();
        let built = self
            .runtime
            .build_block(&self.state, &self.head, proposer, self.head.number + 1, &mut source)
            .unwrap();
        assert!(source.1.is_empty(), "rejected: {:?}", source.1);
        let executed = self.runtime.execute_block(&self.state, &self.head, &built.block).unwrap();
        assert_eq!(executed.changes, built.changes);
        self.state
            .commit(built.block.header.number, &built.changes, Some(built.block.header.state_root))
            .unwrap();
        self.head = built.block.header;
        built.receipts
    }

    /// One call in a block of its own; its dispatch error, if any.
    fn call(&mut self, signer: u8, call: Call) -> Option<DispatchError> {
        let xt = self.xt(signer, call);
        self.block(vec![xt]).remove(0).error
    }

    fn until_block(&mut self, number: u64) {
        while self.head.number < number {
            self.block(Vec::new());
        }
    }

    /// Runs to the first block of `epoch`.
    fn until_epoch(&mut self, epoch: u64) {
        self.until_block(epoch * EPOCH_LENGTH + 1);
    }

    fn free(&self, who: &Address) -> u128 {
        ACCOUNTS.get_or_default(&mut self.reader(), who).free
    }

    fn sequencer(&self, operator: u8) -> Sequencer {
        SEQUENCERS.get(&mut self.reader(), &addr(operator)).unwrap()
    }

    fn set(&self, epoch: u64) -> Vec<Address> {
        VALIDATORS.get(&mut self.reader(), &epoch).unwrap_or_default().iter().map(|v| v.operator).collect()
    }

    fn stake(&self, holder: u8, operator: u8) -> u128 {
        let seq = self.sequencer(operator);
        DELEGATIONS
            .get(&mut self.reader(), &addr(holder), &addr(operator))
            .map_or(0, |d| seq.value_of(d.total_shares()))
    }

    fn pending(&self, holder: u8, operator: u8) -> u128 {
        let mut reader = self.reader();
        let epoch = EPOCH.get_or_default(&mut reader);
        let seq = self.sequencer(operator);
        DELEGATIONS.get(&mut reader, &addr(holder), &addr(operator)).map_or(0, |d| d.pending(&seq, epoch))
    }

    fn query(&self, name: &str, args: serde_json::Value) -> serde_json::Value {
        self.runtime
            .query(self.state.snapshot(self.head.number).unwrap(), &format!("staking_{name}"), &args)
            .unwrap()
    }

    /// Checks the pallet's invariants; a message on the first that fails.
    fn invariants(&self) -> Result<(), String> {
        let mut reader = self.reader();
        let mut accounts: Vec<Address> = (0..ACCOUNTS_COUNT).map(addr).collect();
        accounts.extend([bonded_pot(), unbonding_pot(), reward_pot(), holders_pool_account()]);
        let held_and_free: u128 = accounts
            .iter()
            .map(|a| {
                let d = ACCOUNTS.get_or_default(&mut reader, a);
                d.free + d.held
            })
            .sum();
        let issuance = TOTAL_ISSUANCE.get_or_default(&mut reader);
        if issuance != held_and_free {
            return Err(format!("issuance {issuance} != balances + pots + pool {held_and_free}"));
        }
        let operators = SEQUENCER_LIST.get_or_default(&mut reader);
        let seqs: Vec<(Address, Sequencer)> =
            operators.iter().map(|o| (*o, SEQUENCERS.get(&mut reader, o).unwrap())).collect();
        let tokens: u128 = seqs.iter().map(|(_, s)| s.tokens).sum();
        let unbonding: u128 = seqs.iter().map(|(_, s)| s.unbonding_tokens).sum();
        let free = |r: &mut Reader, a: Address| ACCOUNTS.get_or_default(r, &a).free;
        if (tokens, TOTAL_BONDED.get_or_default(&mut reader)) != (free(&mut reader, bonded_pot()), tokens) {
            return Err("bonded stake, its total and its pot disagree".into());
        }
        if (unbonding, TOTAL_UNBONDING.get_or_default(&mut reader))
            != (free(&mut reader, unbonding_pot()), unbonding)
        {
            return Err("unbonding stake, its total and its pot disagree".into());
        }
        // What is owed never exceeds what the reward pot holds.
        let epoch = EPOCH.get_or_default(&mut reader);
        let mut owed: u128 = seqs.iter().map(|(_, s)| s.commission_earned).sum();
        for holder in 0..ACCOUNTS_COUNT {
            for (operator, seq) in &seqs {
                if let Some(d) = DELEGATIONS.get(&mut reader, &addr(holder), operator) {
                    owed += d.pending(seq, epoch);
                }
            }
        }
        let pot = free(&mut reader, reward_pot());
        if owed > pot {
            return Err(format!("{owed} owed in rewards, {pot} in the reward pot"));
        }
        // Every holder's shares add up to its sequencer's.
        for (operator, seq) in &seqs {
            let shares: u128 = (0..ACCOUNTS_COUNT)
                .filter_map(|h| DELEGATIONS.get(&mut reader, &addr(h), operator))
                .map(|d| d.total_shares())
                .sum();
            if shares != seq.shares() {
                return Err(format!(
                    "{operator}: holders have {shares} shares, the sequencer {}",
                    seq.shares()
                ));
            }
        }
        Ok(())
    }
}

fn module(error: Error) -> Option<DispatchError> {
    Some(DispatchError::Module { pallet: STAKING, error: error as u8 })
}

#[test]
fn genesis_elects_the_sequencers_by_stake() {
    let env = Env::new();
    assert_eq!(env.set(0), vec![addr(2), addr(1), addr(0)]);
    let validators = VALIDATORS.get(&mut env.reader(), &0).unwrap();
    assert_eq!(validators.iter().map(|v| v.power).collect::<Vec<_>>(), vec![400, 300, 200]);
    assert_eq!(env.stake(1, 1), 300 * UNIT);
    env.invariants().unwrap();
    let totals = env.query("totals", json!({}));
    assert_eq!(totals["bonded"], (900 * UNIT).to_string());
    assert_eq!(totals["bondedPot"], (900 * UNIT).to_string());
}

#[test]
fn genesis_refuses_bad_sections() {
    let balances = Arc::new(Balances::new(BALANCES));
    let staking = Arc::new(Staking::new(STAKING, balances.clone(), Arc::new(NoEvidence)));
    let runtime = Runtime::new(balances.clone(), vec![(BALANCES, balances), (STAKING, staking)]).unwrap();
    let try_genesis = |staking: serde_json::Value| {
        let mut genesis = runtime.default_genesis();
        genesis.insert("balances".into(), json!({ "balances": [[addr(0), "1000"]] }));
        genesis.insert("staking".into(), staking);
        runtime.genesis_changes(&genesis).map(|_| ()).map_err(|e| e.to_string())
    };
    let mut bad = serde_json::to_value(config()).unwrap();
    bad["doubleSignSlash"] = json!(1_000_000_000);
    let error = try_genesis(json!({ "config": bad })).unwrap_err();
    assert!(error.contains("staking.config.doubleSignSlash"), "{error}");
    let unfunded = json!({ "config": config(), "sequencers": [{
        "operator": addr(0), "consensusKey": pair(0).public(), "selfBond": (100 * UNIT).to_string(), "commission": 0
    }]});
    let error = try_genesis(unfunded).unwrap_err();
    assert!(error.contains("staking.sequencers[0]"), "{error}");
    let below = json!({ "config": config(), "sequencers": [{
        "operator": addr(0), "consensusKey": pair(0).public(), "selfBond": "10", "commission": 0
    }]});
    let error = try_genesis(below).unwrap_err();
    assert!(error.contains("BelowMinimumSelfBond"), "{error}");
}

#[test]
fn a_new_sequencer_enters_the_set_elected_at_the_next_boundary() {
    let mut env = Env::new();
    env.block(Vec::new());
    let key = pair(3).public();
    assert_eq!(
        env.call(3, Call::RegisterSequencer { key, commission: Perbill(0), self_bond: 350 * UNIT }),
        None
    );
    assert_eq!(env.set(1), vec![addr(2), addr(1), addr(0)], "epoch 1's set was elected at block 1");
    env.until_epoch(1);
    assert_eq!(env.set(2), vec![addr(2), addr(3), addr(1)], "the least backed leaves");
    let sequencers = env.query("sequencers", json!({}));
    assert_eq!(sequencers.as_array().unwrap().len(), 4);
    assert_eq!(sequencers[3]["stake"], (350 * UNIT).to_string());
    // Backing changes the order at the next election.
    assert_eq!(env.call(5, Call::Delegate { sequencer: addr(0), amount: 1000 * UNIT }), None);
    env.until_epoch(2);
    assert_eq!(env.set(3), vec![addr(0), addr(2), addr(3)]);
    env.invariants().unwrap();
}

#[test]
fn fees_become_rewards_that_delegators_claim() {
    let mut env = Env::new();
    // A holder backs sequencer 1 in epoch 0: it earns from epoch 1.
    assert_eq!(env.call(4, Call::Delegate { sequencer: addr(1), amount: 300 * UNIT }), None);
    env.until_epoch(1);
    assert_eq!(env.pending(4, 1), 0, "bonded in epoch 0, nothing earned for it");
    // Fees in epoch 1 go partly to the pool.
    let mut transfers = Vec::new();
    for _ in 0..5 {
        transfers.push(env.transfer(6, addr(7), UNIT));
    }
    env.block(transfers);
    let pool = env.free(&holders_pool_account());
    assert!(pool > 0);
    env.until_epoch(2);
    let pending = env.pending(4, 1);
    assert!(pending > 0);
    let holder = env.query("holder", json!({ "who": addr(4) }));
    assert_eq!(holder["claimable"], pending.to_string());
    // Half of sequencer 1's stake is the holder's: it gets half of what is left after the
    // commission (10%), of sequencer 1's part (600 of the 1200 tokens bonded to the epoch's
    // validators) of the pool and the block rewards.
    let rewards = pool + EPOCH_LENGTH as u128 * UNIT;
    let expected = (rewards * 600 / 1200) * 9 / 10 / 2;
    assert!(pending <= expected && expected - pending < 10, "{pending} vs {expected}");
    let before = env.free(&addr(4));
    assert_eq!(env.call(4, Call::ClaimRewards), None);
    let fee = UNIT / 10; // generous bound on the fee
    assert!(env.free(&addr(4)) + fee > before + pending);
    assert_eq!(env.pending(4, 1), 0);
    assert_eq!(env.call(4, Call::ClaimRewards), module(Error::NoRewards));
    // The operator's commission is claimable too.
    assert!(env.sequencer(1).commission_earned > 0);
    assert_eq!(env.call(1, Call::ClaimRewards), None);
    assert_eq!(env.sequencer(1).commission_earned, 0);
    env.invariants().unwrap();
}

#[test]
fn unbonded_stake_is_withdrawn_after_the_period() {
    let mut env = Env::new();
    assert_eq!(env.call(4, Call::Delegate { sequencer: addr(0), amount: 50 * UNIT }), None);
    assert_eq!(
        env.call(4, Call::Unbond { sequencer: addr(0), amount: 80 * UNIT }),
        module(Error::InsufficientBond)
    );
    assert_eq!(env.call(4, Call::Unbond { sequencer: addr(0), amount: 20 * UNIT }), None);
    let release = env.head.number + UNBONDING_BLOCKS;
    assert_eq!(env.call(4, Call::WithdrawUnbonded), module(Error::NothingToWithdraw), "too early");
    assert_eq!(env.stake(4, 0), 30 * UNIT);
    env.until_block(release - 1);
    let before = env.free(&addr(4));
    let withdraw = env.xt(4, Call::WithdrawUnbonded);
    let receipts = env.block(vec![withdraw]);
    assert!(receipts[0].success);
    assert_eq!(env.free(&addr(4)), before + 20 * UNIT - receipts[0].fee);
    assert_eq!(env.call(4, Call::Unbond { sequencer: addr(5), amount: UNIT }), module(Error::NotASequencer));
    assert_eq!(env.call(4, Call::Unbond { sequencer: addr(1), amount: UNIT }), module(Error::NoDelegation));
    env.invariants().unwrap();
}

#[test]
fn operators_keep_their_minimum_and_commission_moves_slowly() {
    let mut env = Env::new();
    let key = pair(3).public();
    assert_eq!(
        env.call(3, Call::RegisterSequencer { key, commission: Perbill(0), self_bond: 99 * UNIT }),
        module(Error::BelowMinimumSelfBond)
    );
    assert_eq!(
        env.call(
            3,
            Call::RegisterSequencer { key: pair(0).public(), commission: Perbill(0), self_bond: 100 * UNIT }
        ),
        module(Error::KeyInUse)
    );
    assert_eq!(
        env.call(0, Call::RegisterSequencer { key, commission: Perbill(0), self_bond: 100 * UNIT }),
        module(Error::AlreadyRegistered)
    );
    assert_eq!(
        env.call(
            3,
            Call::RegisterSequencer { key, commission: Perbill(2_000_000_000), self_bond: 100 * UNIT }
        ),
        module(Error::InvalidCommission)
    );
    // Operator 0 has 200 bonded, the minimum is 100.
    assert_eq!(
        env.call(0, Call::Unbond { sequencer: addr(0), amount: 150 * UNIT }),
        module(Error::SelfBondBelowMinimum)
    );
    assert_eq!(env.call(0, Call::Unbond { sequencer: addr(0), amount: 100 * UNIT }), None);
    assert_eq!(
        env.call(0, Call::SetCommission { commission: Perbill(200_000_000) }),
        module(Error::CommissionChangeTooLarge)
    );
    assert_eq!(env.call(0, Call::SetCommission { commission: Perbill(140_000_000) }), None);
    assert_eq!(
        env.call(0, Call::SetCommission { commission: Perbill(150_000_000) }),
        module(Error::CommissionAlreadyChanged)
    );
    env.until_epoch(1);
    assert_eq!(env.call(0, Call::SetCommission { commission: Perbill(150_000_000) }), None);
    // Chilled, it leaves the next election and may then unbond everything.
    assert_eq!(env.call(0, Call::Resume), module(Error::AlreadyActive));
    assert_eq!(env.call(0, Call::Chill), None);
    assert_eq!(env.call(0, Call::Chill), module(Error::NotActive));
    assert_eq!(env.call(0, Call::Unjail), module(Error::NotJailed));
    env.until_epoch(2);
    assert!(!env.set(3).contains(&addr(0)));
    assert_eq!(env.call(0, Call::Unbond { sequencer: addr(0), amount: 100 * UNIT }), None);
    assert_eq!(env.call(0, Call::Resume), module(Error::BelowMinimumSelfBond));
    assert_eq!(env.call(0, Call::Bond { amount: 100 * UNIT }), None);
    assert_eq!(env.call(0, Call::Resume), None);
    assert_eq!(env.call(5, Call::Bond { amount: UNIT }), module(Error::NotASequencer));
    assert_eq!(env.call(5, Call::Delegate { sequencer: addr(0), amount: 0 }), module(Error::AmountTooSmall));
    assert_eq!(
        env.call(5, Call::Redelegate { from: addr(0), to: addr(0), amount: UNIT }),
        module(Error::SameSequencer)
    );
    env.invariants().unwrap();
}

#[test]
fn double_signing_is_slashed_once_and_jails() {
    let mut env = Env::new();
    assert_eq!(env.call(4, Call::Delegate { sequencer: addr(2), amount: 400 * UNIT }), None);
    env.until_block(5);
    let evidence = |height: u64| (pair(2).public(), height).encode();
    let pool = env.free(&holders_pool_account());
    assert_eq!(
        env.call(5, Call::ReportEquivocation { evidence: vec![1, 2, 3] }),
        module(Error::InvalidEvidence)
    );
    assert_eq!(
        env.call(5, Call::ReportEquivocation { evidence: evidence(100) }),
        module(Error::InvalidEvidence)
    );
    assert_eq!(
        env.call(5, Call::ReportEquivocation { evidence: (pair(6).public(), 3u64).encode() }),
        module(Error::NotAValidator)
    );
    assert_eq!(env.call(5, Call::ReportEquivocation { evidence: evidence(3) }), None);
    assert_eq!(
        env.call(5, Call::ReportEquivocation { evidence: evidence(3) }),
        module(Error::DuplicateEvidence)
    );
    let seq = env.sequencer(2);
    assert_eq!(seq.tokens, 720 * UNIT, "10% of 800");
    assert_eq!(seq.status, Status::Jailed { until: 2 });
    assert_eq!(env.stake(4, 2), 360 * UNIT, "the backer loses 10% too");
    assert!(env.free(&holders_pool_account()) >= pool + 80 * UNIT);
    assert_eq!(env.call(2, Call::Unjail), module(Error::JailNotOver));
    assert_eq!(env.call(2, Call::Resume), module(Error::StillJailed));
    env.until_epoch(1);
    assert!(!env.set(2).contains(&addr(2)), "left the set elected after the offence");
    // Old offences are refused once out of the window.
    env.until_block(3 + EVIDENCE_MAX_AGE + 1);
    assert_eq!(
        env.call(5, Call::ReportEquivocation { evidence: evidence(4) }),
        module(Error::ExpiredEvidence)
    );
    env.until_epoch(4);
    assert_eq!(env.call(2, Call::Unjail), None);
    env.until_epoch(5);
    assert!(env.set(6).contains(&addr(2)));
    assert!(REPORTED.get(&mut env.reader(), &addr(2), &0).is_some(), "punished for epoch 0");
    env.invariants().unwrap();
}

#[test]
fn a_validator_that_stops_proposing_is_jailed() {
    let mut env = Env::new();
    env.offline.push(addr(1));
    env.until_epoch(1);
    let seq = env.sequencer(1);
    assert_eq!(seq.status, Status::Jailed { until: 3 });
    assert_eq!(seq.slashed, 3 * UNIT, "1% of 300");
    assert_eq!(env.sequencer(0).status, Status::Active);
    assert!(!env.set(2).contains(&addr(1)));
    assert_eq!(PROPOSED.get(&mut env.reader()).unwrap().len(), 3);
    env.invariants().unwrap();
}

#[test]
fn rewards_follow_stake_times_time() {
    let mut env = Env::new();
    // Holder 4 bonds 100 in epoch 0, holder 5 bonds 300 in epoch 0, holder 6 bonds 100 in
    // epoch 2. Over epochs 1..=4, 4 and 5 earn for 4 epochs, 6 for 2.
    for (holder, amount) in [(4, 100), (5, 300)] {
        assert_eq!(env.call(holder, Call::Delegate { sequencer: addr(0), amount: amount * UNIT }), None);
    }
    env.until_epoch(2);
    assert_eq!(env.call(6, Call::Delegate { sequencer: addr(0), amount: 100 * UNIT }), None);
    env.until_epoch(5);
    let (a, b, c) = (env.pending(4, 0), env.pending(5, 0), env.pending(6, 0));
    assert!(a > 0 && c > 0);
    // Same time, three times the stake: three times the reward, within rounding (which
    // favours the chain, by a few units of the smallest denomination).
    assert!(b <= 3 * a + 3 && 3 * a <= b + 3, "{a} {b}");
    // Same stake, half the time: in epochs 3 and 4 holder 4 earned what 6 earned, and more
    // in epochs 1 and 2 (when the sequencer's stake was smaller).
    assert!(c < a && a < 3 * c, "{a} {c}");
    env.invariants().unwrap();
}

/// One step of a random history.
#[derive(Clone, Debug)]
enum Op {
    Delegate(u8, u8, u16),
    Unbond(u8, u8, u16),
    Redelegate(u8, u8, u8, u16),
    Withdraw(u8),
    Claim(u8),
    Fees(u8),
    Slash(u8),
    Register(u16),
    Chill(u8),
    Resume(u8),
    Unjail(u8),
    Blocks(u8),
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Self {
        let holder = |g: &mut Gen| 3 + u8::arbitrary(g) % (ACCOUNTS_COUNT - 3);
        let seq = |g: &mut Gen| u8::arbitrary(g) % 4;
        match u8::arbitrary(g) % 12 {
            0 | 1 => Op::Delegate(holder(g), seq(g), u16::arbitrary(g)),
            2 => Op::Unbond(holder(g), seq(g), u16::arbitrary(g)),
            3 => Op::Redelegate(holder(g), seq(g), seq(g), u16::arbitrary(g)),
            4 => Op::Withdraw(holder(g)),
            5 => Op::Claim(u8::arbitrary(g) % ACCOUNTS_COUNT),
            6 => Op::Fees(holder(g)),
            7 => Op::Slash(seq(g)),
            8 => Op::Register(u16::arbitrary(g)),
            9 => Op::Chill(seq(g)),
            10 => {
                if bool::arbitrary(g) {
                    Op::Resume(seq(g))
                } else {
                    Op::Unjail(seq(g))
                }
            }
            _ => Op::Blocks(u8::arbitrary(g) % 12),
        }
    }
}

fn run_history(ops: Vec<Op>) -> TestResult {
    let mut env = Env::new();
    for op in ops {
        let mut xts = Vec::new();
        match op {
            Op::Delegate(h, s, amount) => xts.push(
                env.xt(h, Call::Delegate { sequencer: addr(s), amount: u128::from(amount) * UNIT / 16 }),
            ),
            Op::Unbond(h, s, amount) => xts
                .push(env.xt(h, Call::Unbond { sequencer: addr(s), amount: u128::from(amount) * UNIT / 64 })),
            Op::Redelegate(h, from, to, amount) => xts.push(env.xt(
                h,
                Call::Redelegate { from: addr(from), to: addr(to), amount: u128::from(amount) * UNIT / 64 },
            )),
            Op::Withdraw(h) => xts.push(env.xt(h, Call::WithdrawUnbonded)),
            Op::Claim(h) => xts.push(env.xt(h, Call::ClaimRewards)),
            Op::Fees(h) => {
                for _ in 0..3 {
                    let xt = env.transfer(h, addr(0), UNIT / 100);
                    xts.push(xt);
                }
            }
            Op::Slash(s) => {
                let height = env.head.number.max(1);
                if height < env.head.number + 1 {
                    xts.push(
                        env.xt(4, Call::ReportEquivocation { evidence: (pair(s).public(), height).encode() }),
                    );
                }
            }
            Op::Register(bond) => xts.push(env.xt(
                3,
                Call::RegisterSequencer {
                    key: pair(3).public(),
                    commission: Perbill(0),
                    self_bond: (100 + u128::from(bond)) * UNIT / 4,
                },
            )),
            Op::Chill(s) => xts.push(env.xt(s, Call::Chill)),
            Op::Resume(s) => xts.push(env.xt(s, Call::Resume)),
            Op::Unjail(s) => xts.push(env.xt(s, Call::Unjail)),
            Op::Blocks(n) => {
                for _ in 0..n {
                    env.block(Vec::new());
                    if let Err(e) = env.invariants() {
                        return TestResult::error(e);
                    }
                }
                continue;
            }
        }
        env.block(xts);
        if let Err(e) = env.invariants() {
            return TestResult::error(e);
        }
    }
    TestResult::passed()
}

#[test]
fn invariants_hold_over_random_histories() {
    QuickCheck::new().tests(40).quickcheck(run_history as fn(Vec<Op>) -> TestResult);
}

#[test]
fn metadata_encodes_calls_as_the_pallet_decodes_them() {
    use hyperion_runtime::metadata::{decode_fields, encode_fields};
    let metadata = crate::metadata::metadata();
    let key = pair(3).public();
    let cases = [
        (
            Call::RegisterSequencer { key, commission: Perbill(5), self_bond: 7 },
            json!({ "key": key, "commission": 5, "self_bond": "7" }),
        ),
        (
            Call::Redelegate { from: addr(1), to: addr(2), amount: 9 },
            json!({ "from": addr(1), "to": addr(2), "amount": "9" }),
        ),
        (Call::ClaimRewards, json!({})),
        (Call::ReportEquivocation { evidence: vec![1, 2] }, json!({ "evidence": "0x0102" })),
    ];
    for (call, args) in cases {
        let encoded = call.encode();
        let described = metadata.calls.iter().find(|c| c.index == encoded[0]).unwrap();
        assert_eq!(encode_fields(&described.fields, &args).unwrap(), encoded[1..], "{}", described.name);
        decode_fields(&described.fields, &encoded[1..]).unwrap();
    }
    let errors: Vec<u8> = metadata.errors.iter().map(|e| e.index).collect();
    assert_eq!(errors, (0..=Error::SameSequencer as u8).collect::<Vec<_>>());
}

/// Two holders back one sequencer with random stakes from the same epoch: their rewards are in
/// the ratio of their stakes, within a few units of rounding; a third, bonding `late` epochs
/// later with the first one's stake, earns less, and what all earned fits in the reward pot.
fn rewards_are_proportional_to_stake(a: u16, b: u16, late: u8) -> TestResult {
    let (a, b) = (u128::from(a % 2000) + 1, u128::from(b % 2000) + 1);
    let late = u64::from(late % 3) + 1;
    let mut env = Env::new();
    for (holder, amount) in [(4, a), (5, b)] {
        if env.call(holder, Call::Delegate { sequencer: addr(2), amount: amount * UNIT }).is_some() {
            return TestResult::error("delegation refused");
        }
    }
    env.until_epoch(late);
    if env.call(6, Call::Delegate { sequencer: addr(2), amount: a * UNIT }).is_some() {
        return TestResult::error("delegation refused");
    }
    env.until_epoch(late + 3);
    let (pa, pb, pc) = (env.pending(4, 2), env.pending(5, 2), env.pending(6, 2));
    if pa == 0 || pb == 0 || pc == 0 {
        return TestResult::error(format!("no rewards: {pa} {pb} {pc}"));
    }
    // pa / a == pb / b, up to one unit of rounding per distribution and holder.
    let skew = (pa * b).abs_diff(pb * a);
    if skew > 8 * (a + b) {
        return TestResult::error(format!("{pa} for {a} against {pb} for {b}"));
    }
    if pc >= pa {
        return TestResult::error(format!("bonded later with the same stake, yet {pc} >= {pa}"));
    }
    match env.invariants() {
        Ok(()) => TestResult::passed(),
        Err(e) => TestResult::error(e),
    }
}

#[test]
fn rewards_are_proportional_to_stake_and_time() {
    QuickCheck::new()
        .tests(12)
        .quickcheck(rewards_are_proportional_to_stake as fn(u16, u16, u8) -> TestResult);
}
