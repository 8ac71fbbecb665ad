//! Engine tests with hand-made inputs: locking, unlocking, timeouts, round skips, decisions,
//! restarts under the sign record, evidence, certificates and epochs.

use std::sync::Arc;

use hyperion_primitives::{Hash, Pair};

use crate::*;

const CHAIN: ChainId = ChainId(Hash([1; 32]));
const X: Hash = Hash([0xaa; 32]);
const Y: Hash = Hash([0xbb; 32]);

struct Net {
    keys: Vec<Pair>,
    set: ValidatorSet,
}

impl Net {
    /// Four validators of power 1: a quorum is 3, more than a third is 2.
    fn new() -> Self {
        let keys: Vec<Pair> = (1..=4).map(|i| Pair::from_seed(&[i; 32])).collect();
        let set =
            ValidatorSet::new(keys.iter().map(|k| Validator { public: k.public(), power: 1 }).collect())
                .unwrap();
        Self { keys, set }
    }

    fn key_of(&self, public: Public) -> &Pair {
        self.keys.iter().find(|k| k.public() == public).unwrap()
    }

    /// A validator that proposes neither in round 0 nor in round 1 of height 1.
    fn bystander(&self) -> Pair {
        let busy = [self.set.proposer(0).public, self.set.proposer(1).public];
        self.keys.iter().find(|k| !busy.contains(&k.public())).unwrap().clone()
    }

    fn others(&self, me: &Pair) -> Vec<Pair> {
        self.keys.iter().filter(|k| k.public() != me.public()).cloned().collect()
    }

    fn engine(&self, key: &Pair, last_signed: Option<SignRecord>) -> Engine {
        let config = Config { chain: CHAIN, timeouts: Timeouts::default(), epoch_length: 100 };
        Engine::new(
            config,
            Some(key.clone()),
            self.set.clone(),
            1,
            last_signed,
            Arc::new(SignatureCache::default()),
        )
    }

    fn proposal(&self, round: Round, value: Hash, pol_round: Option<Round>) -> Input {
        let proposer = self.key_of(self.set.proposer(round).public);
        let proposal = Proposal { height: 1, round, value, pol_round };
        Input::Proposal(SignedProposal::sign(CHAIN, proposal, proposer))
    }
}

fn vote(key: &Pair, round: Round, kind: VoteKind, value: Option<Hash>) -> Input {
    Input::Vote(SignedVote::sign(CHAIN, Vote { height: 1, round, kind, value }, key))
}

fn votes_sent(outputs: &[Output]) -> Vec<Vote> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Broadcast(Message::Vote(v)) => Some(v.vote),
            _ => None,
        })
        .collect()
}

fn timeout(outputs: &[Output], kind: TimeoutKind) -> Option<Timeout> {
    outputs.iter().find_map(|o| match o {
        Output::Schedule { timeout, .. } if timeout.kind == kind => Some(*timeout),
        _ => None,
    })
}

/// Drives `engine` to a prevote for a valid `value` proposed in `round`.
fn prevote_proposal(
    net: &Net,
    engine: &mut Engine,
    round: Round,
    value: Hash,
    pol: Option<Round>,
) -> Vec<Output> {
    let out = engine.handle(net.proposal(round, value, pol));
    if out.iter().any(|o| matches!(o, Output::ValidateBlock { .. })) {
        return engine.handle(Input::Validated { height: 1, value, valid: true });
    }
    out
}

/// Locks `me` on X in round 0, then moves it to round 1 on split precommits.
fn locked_on_x_in_round_1(net: &Net, me: &Pair) -> Engine {
    let mut e = net.engine(me, None);
    e.start();
    let out = prevote_proposal(net, &mut e, 0, X, None);
    assert_eq!(votes_sent(&out), vec![Vote { height: 1, round: 0, kind: VoteKind::Prevote, value: Some(X) }]);
    let others = net.others(me);
    e.handle(vote(&others[0], 0, VoteKind::Prevote, Some(X)));
    let out = e.handle(vote(&others[1], 0, VoteKind::Prevote, Some(X)));
    assert_eq!(
        votes_sent(&out),
        vec![Vote { height: 1, round: 0, kind: VoteKind::Precommit, value: Some(X) }]
    );
    assert_eq!(e.locked(), Some((0, X)));
    e.handle(vote(&others[0], 0, VoteKind::Precommit, None));
    let out = e.handle(vote(&others[1], 0, VoteKind::Precommit, None));
    let t = timeout(&out, TimeoutKind::Precommit).expect("more than 2/3 precommits for no single value");
    e.handle(Input::Timeout(t));
    assert_eq!((e.round(), e.step()), (1, Step::Propose));
    e
}

#[test]
fn a_locked_validator_prevotes_nil_for_another_fresh_block() {
    let net = Net::new();
    let me = net.bystander();
    let mut e = locked_on_x_in_round_1(&net, &me);
    let out = prevote_proposal(&net, &mut e, 1, Y, None);
    assert_eq!(votes_sent(&out), vec![Vote { height: 1, round: 1, kind: VoteKind::Prevote, value: None }]);
    assert_eq!(e.locked(), Some((0, X)), "the lock holds");
}

#[test]
fn a_locked_validator_prevotes_its_locked_block_again() {
    let net = Net::new();
    let me = net.bystander();
    let mut e = locked_on_x_in_round_1(&net, &me);
    let out = prevote_proposal(&net, &mut e, 1, X, None);
    assert_eq!(votes_sent(&out), vec![Vote { height: 1, round: 1, kind: VoteKind::Prevote, value: Some(X) }]);
}

#[test]
fn a_later_polka_unlocks() {
    let net = Net::new();
    let me = net.bystander();
    let mut e = locked_on_x_in_round_1(&net, &me);
    // Y is re-proposed in round 1 with valid round 0 but no polka for Y in round 0: nil.
    let out = prevote_proposal(&net, &mut e, 1, Y, Some(0));
    assert!(votes_sent(&out).is_empty(), "waits for the polka the proposal refers to");
    let out = e.handle(Input::Timeout(Timeout { height: 1, round: 1, kind: TimeoutKind::Propose }));
    assert_eq!(votes_sent(&out)[0].value, None);

    // A fresh engine, locked on X in round 0, sees a polka for Y in round 1 and Y re-proposed
    // in round 2 with valid round 1 (after its lock): it prevotes Y.
    let mut e = locked_on_x_in_round_1(&net, &me);
    for other in net.others(&me).iter().take(3) {
        e.handle(vote(other, 1, VoteKind::Prevote, Some(Y)));
    }
    e.handle(Input::Timeout(Timeout { height: 1, round: 1, kind: TimeoutKind::Propose }));
    for other in net.others(&me).iter().take(2) {
        e.handle(vote(other, 1, VoteKind::Precommit, None));
    }
    e.handle(Input::Timeout(Timeout { height: 1, round: 1, kind: TimeoutKind::Precommit }));
    assert_eq!(e.round(), 2);
    if net.set.proposer(2).public == me.public() {
        return; // It would re-propose itself; covered by the simulation.
    }
    let out = prevote_proposal(&net, &mut e, 2, Y, Some(1));
    assert_eq!(votes_sent(&out), vec![Vote { height: 1, round: 2, kind: VoteKind::Prevote, value: Some(Y) }]);
}

#[test]
fn timeouts_move_a_silent_round_on_and_grow() {
    let net = Net::new();
    let me = net.bystander();
    let mut e = net.engine(&me, None);
    let out = e.start();
    let t = timeout(&out, TimeoutKind::Propose).unwrap();
    let out = e.handle(Input::Timeout(t));
    assert_eq!(votes_sent(&out)[0].value, None, "no proposal in time: prevote nil");
    let others = net.others(&me);
    e.handle(vote(&others[0], 0, VoteKind::Prevote, Some(X)));
    let out = e.handle(vote(&others[1], 0, VoteKind::Prevote, None));
    let t = timeout(&out, TimeoutKind::Prevote).expect("split prevotes schedule the prevote timeout");
    let out = e.handle(Input::Timeout(t));
    assert_eq!(votes_sent(&out)[0], Vote { height: 1, round: 0, kind: VoteKind::Precommit, value: None });
    let d = Timeouts::default();
    assert!(d.duration_ms(TimeoutKind::Propose, 3) > d.duration_ms(TimeoutKind::Propose, 0));
    // A stale timeout does nothing.
    assert!(votes_sent(&e.handle(Input::Timeout(t))).is_empty());
}

#[test]
fn more_than_a_third_in_a_later_round_pulls_a_validator_forward() {
    let net = Net::new();
    let me = net.bystander();
    let mut e = net.engine(&me, None);
    e.start();
    let others = net.others(&me);
    e.handle(vote(&others[0], 5, VoteKind::Prevote, None));
    assert_eq!(e.round(), 0, "a third is not enough");
    e.handle(vote(&others[1], 5, VoteKind::Precommit, None));
    assert_eq!(e.round(), 5);
}

#[test]
fn a_quorum_of_precommits_decides_with_a_verifiable_certificate() {
    let net = Net::new();
    let me = net.bystander();
    let mut e = net.engine(&me, None);
    e.start();
    for other in net.others(&me) {
        e.handle(vote(&other, 0, VoteKind::Precommit, Some(X)));
    }
    let out = e.handle(Input::Validated { height: 1, value: X, valid: true });
    let decision = out
        .iter()
        .find_map(|o| match o {
            Output::Decided(d) => Some(d.clone()),
            _ => None,
        })
        .expect("decided");
    assert_eq!((decision.height, decision.value), (1, X));
    decision.certificate.verify(CHAIN, &net.set).unwrap();
    assert_eq!(e.height(), 2);
}

#[test]
fn an_invalid_block_is_never_decided() {
    let net = Net::new();
    let me = net.bystander();
    let mut e = net.engine(&me, None);
    e.start();
    for other in net.others(&me) {
        e.handle(vote(&other, 0, VoteKind::Precommit, Some(X)));
    }
    let out = e.handle(Input::Validated { height: 1, value: X, valid: false });
    assert!(!out.iter().any(|o| matches!(o, Output::Decided(_))));
    assert_eq!(e.height(), 1);
}

#[test]
fn a_restarted_validator_never_signs_a_conflicting_vote() {
    let net = Net::new();
    let me = net.bystander();
    let mut e = net.engine(&me, None);
    e.start();
    prevote_proposal(&net, &mut e, 0, X, None);
    let others = net.others(&me);
    e.handle(vote(&others[0], 0, VoteKind::Prevote, Some(X)));
    let out = e.handle(vote(&others[1], 0, VoteKind::Prevote, Some(X)));
    // The record is to be persisted before the precommit goes out.
    let persist = out.iter().position(|o| matches!(o, Output::Persist(_))).unwrap();
    let broadcast = out.iter().position(|o| matches!(o, Output::Broadcast(_))).unwrap();
    assert!(persist < broadcast);
    let record = e.last_signed().unwrap().clone();
    assert_eq!((record.round, record.step, record.locked), (0, Step::Precommit, Some((0, X))));
    let payload = parity_scale_codec::Encode::encode(&record.payload(CHAIN));
    assert!(me.public().verify(&payload, &record.signature), "the record holds what was signed");
    let sent = out
        .iter()
        .find_map(|o| match o {
            Output::Broadcast(Message::Vote(v)) => Some(*v),
            _ => None,
        })
        .unwrap();

    // Crash; restart from the durable record. The lock comes back with it.
    let mut e = net.engine(&me, Some(SignRecord::from_bytes(&record.to_bytes()).unwrap()));
    e.start();
    assert_eq!(e.locked(), Some((0, X)));
    // What it signed in this round before the crash is sent again, as it was signed.
    assert_eq!(record.earlier.len(), 1, "the prevote");
    let out = e.handle(Input::Timeout(Timeout { height: 1, round: 0, kind: TimeoutKind::Rebroadcast }));
    let resent: Vec<Vote> = votes_sent(&out);
    assert!(resent.contains(&Vote { height: 1, round: 0, kind: VoteKind::Prevote, value: Some(X) }));
    assert!(resent.contains(&sent.vote));
    assert!(out.iter().all(|o| match o {
        Output::Broadcast(Message::Vote(v)) => v.verify(CHAIN),
        _ => true,
    }));
    // An equivocating proposer now shows Y: no prevote may go out for round 0 any more.
    let out = prevote_proposal(&net, &mut e, 0, Y, None);
    assert!(votes_sent(&out).is_empty());
    // A polka for Y in round 0: still no precommit for Y.
    for other in &others {
        e.handle(vote(other, 0, VoteKind::Prevote, Some(Y)));
    }
    // With the polka for X the same precommit is sent again, with the same signature.
    let mut e = net.engine(&me, Some(record.clone()));
    e.start();
    let mut out = prevote_proposal(&net, &mut e, 0, X, None);
    for other in &others {
        out.extend(e.handle(vote(other, 0, VoteKind::Prevote, Some(X))));
    }
    let all: Vec<SignedVote> = out
        .iter()
        .filter_map(|o| match o {
            Output::Broadcast(Message::Vote(v)) if v.validator == me.public() => Some(*v),
            _ => None,
        })
        .collect();
    assert_eq!(all, vec![sent]);
    assert!(!out.iter().any(|o| matches!(o, Output::Persist(_))), "nothing new was signed");
}

#[test]
fn conflicting_votes_become_evidence_that_verifies() {
    let net = Net::new();
    let me = net.bystander();
    let mut e = net.engine(&me, None);
    e.start();
    let cheat = &net.others(&me)[0];
    e.handle(vote(cheat, 0, VoteKind::Prevote, Some(X)));
    let out = e.handle(vote(cheat, 0, VoteKind::Prevote, Some(Y)));
    let evidence = out
        .iter()
        .find_map(|o| match o {
            Output::Evidence(ev) => Some(ev.clone()),
            _ => None,
        })
        .expect("evidence");
    assert_eq!(evidence.offender(), cheat.public());
    evidence.verify(CHAIN, &net.set).unwrap();
    assert!(evidence.verify(ChainId(Hash::ZERO), &net.set).is_err(), "signed for another chain");
    let Evidence::DoubleVote { first, second } = evidence.clone() else { panic!() };
    assert!(Evidence::DoubleVote { first: second, second: first }.verify(CHAIN, &net.set).is_err());
    assert!(Evidence::DoubleVote { first, second: first }.verify(CHAIN, &net.set).is_err());
    let mut forged = second;
    forged.signature.0[0] ^= 1;
    assert!(Evidence::double_vote(first, forged).unwrap().verify(CHAIN, &net.set).is_err());
    let stranger = ValidatorSet::new(vec![Validator { public: me.public(), power: 1 }]).unwrap();
    assert!(evidence.verify(CHAIN, &stranger).is_err(), "not a validator of that set");
    // Reported once.
    assert!(!e
        .handle(vote(cheat, 0, VoteKind::Prevote, Some(Y)))
        .iter()
        .any(|o| matches!(o, Output::Evidence(_))));
}

#[test]
fn certificates_fail_when_tampered() {
    let net = Net::new();
    let precommits: Vec<SignedVote> = net.keys[..3]
        .iter()
        .map(|k| {
            SignedVote::sign(
                CHAIN,
                Vote { height: 1, round: 2, kind: VoteKind::Precommit, value: Some(X) },
                k,
            )
        })
        .collect();
    let good = CommitCertificate::from_precommits(1, 2, X, &precommits);
    good.verify(CHAIN, &net.set).unwrap();
    let decoded = CommitCertificate::decode_bounded(&parity_scale_codec::Encode::encode(&good)).unwrap();
    assert_eq!(decoded, good);

    let mut short = good.clone();
    short.signatures.pop();
    assert!(short.verify(CHAIN, &net.set).is_err(), "2 of 4 is not a quorum");
    let mut doubled = good.clone();
    doubled.signatures[1] = doubled.signatures[0];
    assert!(doubled.verify(CHAIN, &net.set).is_err(), "a signer twice");
    assert!(CommitCertificate { value: Y, ..good.clone() }.verify(CHAIN, &net.set).is_err());
    assert!(CommitCertificate { round: 1, ..good.clone() }.verify(CHAIN, &net.set).is_err());
    assert!(good.verify(ChainId(Hash::ZERO), &net.set).is_err());
    let mut stranger = good.clone();
    stranger.signatures[0].0 = Pair::from_seed(&[99; 32]).public();
    assert!(stranger.verify(CHAIN, &net.set).is_err());
    assert!(CommitCertificate::decode_bounded(&[0xff; 16]).is_err());
    assert!(CommitCertificate::decode_bounded(&vec![0; MAX_CERTIFICATE_BYTES + 1]).is_err());
}

#[test]
fn the_certificate_encoding_is_stable() {
    let certificate = CommitCertificate {
        height: 7,
        round: 1,
        value: Hash([2; 32]),
        signatures: vec![(Pair::from_seed(&[1; 32]).public(), hyperion_primitives::Signature([3; 64]))],
    };
    let bytes = parity_scale_codec::Encode::encode(&certificate);
    let mut expected = 7u64.to_le_bytes().to_vec();
    expected.extend(1u32.to_le_bytes());
    expected.extend([2; 32]);
    expected.push(4); // compact length 1
    expected.extend(Pair::from_seed(&[1; 32]).public().0);
    expected.extend([3; 64]);
    assert_eq!(bytes, expected);
}

#[test]
fn messages_of_the_next_height_wait_and_others_are_dropped() {
    let net = Net::new();
    let me = net.bystander();
    let mut e = net.engine(&me, None);
    e.start();
    let others = net.others(&me);
    let early = Vote { height: 2, round: 0, kind: VoteKind::Prevote, value: None };
    for other in &others {
        e.handle(Input::Vote(SignedVote::sign(CHAIN, early, other)));
    }
    let stale = Vote { height: 9, ..early };
    e.handle(Input::Vote(SignedVote::sign(CHAIN, stale, &others[0])));
    assert_eq!(e.dropped().out_of_window, 1);
    for other in &others {
        e.handle(vote(other, 0, VoteKind::Precommit, Some(X)));
    }
    e.handle(Input::Validated { height: 1, value: X, valid: true });
    assert_eq!(e.height(), 2);
    // The kept prevotes of height 2 (more than 2/3 of nil) were counted on arrival there.
    let t = Timeout { height: 2, round: 0, kind: TimeoutKind::Propose };
    let out = e.handle(Input::Timeout(t));
    assert!(votes_sent(&out).iter().any(|v| v.kind == VoteKind::Precommit && v.value.is_none()));
}

#[test]
fn bad_signatures_and_strangers_are_dropped() {
    let net = Net::new();
    let me = net.bystander();
    let mut e = net.engine(&me, None);
    e.start();
    let Input::Vote(mut forged) = vote(&net.others(&me)[0], 0, VoteKind::Prevote, Some(X)) else {
        unreachable!()
    };
    forged.signature.0[5] ^= 1;
    e.handle(Input::Vote(forged));
    e.handle(vote(&Pair::from_seed(&[77; 32]), 0, VoteKind::Prevote, Some(X)));
    assert_eq!(e.dropped().bad_signature, 2);
    assert!(!e.holds_vote(&forged));
    // A proposal from someone who is not the round's proposer.
    let not_proposer = net.keys.iter().find(|k| k.public() != net.set.proposer(0).public).unwrap();
    let p = SignedProposal::sign(
        CHAIN,
        Proposal { height: 1, round: 0, value: X, pol_round: None },
        not_proposer,
    );
    e.handle(Input::Proposal(p));
    assert_eq!(e.dropped().bad_proposal, 1);
}

#[test]
fn the_set_changes_only_at_an_epoch_boundary() {
    let net = Net::new();
    let me = net.keys[0].clone();
    let config = Config { chain: CHAIN, timeouts: Timeouts::default(), epoch_length: 2 };
    let mut e =
        Engine::new(config, Some(me.clone()), net.set.clone(), 1, None, Arc::new(SignatureCache::default()));
    e.start();
    let next = vec![Validator { public: me.public(), power: 5 }];
    e.set_next_validators(next.clone()).unwrap();
    assert!(e.set_next_validators(vec![]).is_err());
    let decide = |e: &mut Engine, height: Height| {
        for k in &net.keys {
            let v = Vote { height, round: 0, kind: VoteKind::Precommit, value: Some(X) };
            e.handle(Input::Vote(SignedVote::sign(CHAIN, v, k)));
        }
        e.handle(Input::Validated { height, value: X, valid: true });
        assert_eq!(e.height(), height + 1);
    };
    decide(&mut e, 1);
    assert_eq!(e.validators().len(), 4, "height 2 is in the same epoch");
    decide(&mut e, 2);
    assert_eq!(e.validators().validators(), &next[..], "height 3 starts the next epoch");
}

#[test]
fn a_certificate_travels_with_its_block() {
    use hyperion_primitives::{Address, Block, Header};
    use parity_scale_codec::{Decode, Encode};
    let net = Net::new();
    let header = Header {
        parent_hash: Hash([3; 32]),
        number: 1,
        timestamp_ms: 1_000,
        state_root: Hash([4; 32]),
        extrinsics_root: Hash([5; 32]),
        receipts_root: Hash([6; 32]),
        proposer: Address([7; 20]),
        gas_used: 0,
        weight_used: 0,
    };
    let value = header.hash();
    let precommits: Vec<SignedVote> = net
        .keys
        .iter()
        .map(|k| {
            SignedVote::sign(
                CHAIN,
                Vote { height: 1, round: 0, kind: VoteKind::Precommit, value: Some(value) },
                k,
            )
        })
        .collect();
    let certificate = CommitCertificate::from_precommits(1, 0, value, &precommits);
    let block = Block { header, extrinsics: vec![], certificate: Some(certificate.encode()) };
    let received = Block::decode(&mut &block.encode()[..]).unwrap();
    let carried = CommitCertificate::decode_bounded(received.certificate.as_deref().unwrap()).unwrap();
    carried.verify(CHAIN, &net.set).unwrap();
    assert_eq!((carried.height, carried.value), (received.header.number, received.hash()));
}
