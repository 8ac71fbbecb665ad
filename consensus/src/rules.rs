//! The engine's rules: each is a condition on what the engine holds and an action. After every
//! input [`Engine::progress`] applies rules until none fires, so the order inputs arrive in
//! does not matter, only what has arrived.

use hyperion_primitives::Hash;
use parity_scale_codec::Encode;

use crate::certificate::CommitCertificate;
use crate::engine::{Decision, Engine, Output, TimeoutKind};
use crate::guard::{permission, Permission, SignRecord, Signed, MAX_EARLIER_SIGNED};
use crate::types::{Message, Proposal, Round, SignPayload, SignedProposal, SignedVote, Step, Vote, VoteKind};

/// "First time" flags of a round.
const PREVOTE_TIMEOUT: u8 = 0;
const POLKA: u8 = 1;
const PRECOMMIT_TIMEOUT: u8 = 2;

impl Engine {
    pub(crate) fn start_round(&mut self, round: Round) {
        self.round = round;
        self.step = Step::Propose;
        let me = self.key.as_ref().map(|k| k.public());
        // A proposal restored from the sign record is only sent again.
        let proposed = self.own.contains_key(&(round, Step::Propose));
        if !proposed && me.is_some_and(|me| self.set.proposer(round).public == me) {
            match self.valid {
                Some((valid_round, value)) if valid_round < round => {
                    self.sign_proposal(value, Some(valid_round))
                }
                _ => self.out.push(Output::BuildBlock { height: self.height, round }),
            }
        }
        self.schedule(TimeoutKind::Propose);
        self.schedule(TimeoutKind::Rebroadcast);
    }

    /// Applies rules until none fires.
    pub(crate) fn progress(&mut self) {
        while self.try_decide() || self.try_skip_round() || self.try_round_rules() {}
    }

    /// Rules of the current round; true when one fired.
    fn try_round_rules(&mut self) -> bool {
        let round = self.round;
        let (prevote_power, precommit_power) =
            self.votes.round(round).map_or((0, 0), |v| (v.prevotes.power(), v.precommits.power()));
        if self.step == Step::Propose && self.try_prevote_proposal() {
            return true;
        }
        if self.step == Step::Prevote && self.set.is_quorum(prevote_power) && self.first(PREVOTE_TIMEOUT) {
            self.schedule(TimeoutKind::Prevote);
            return true;
        }
        if self.step >= Step::Prevote && self.try_polka() {
            return true;
        }
        if self.step == Step::Prevote && self.quorum_for(round, VoteKind::Prevote, None) {
            self.precommit(None);
            return true;
        }
        if self.set.is_quorum(precommit_power) && self.first(PRECOMMIT_TIMEOUT) {
            self.schedule(TimeoutKind::Precommit);
            return true;
        }
        false
    }

    /// A proposal in the propose step: prevote it if it is valid and the lock allows.
    fn try_prevote_proposal(&mut self) -> bool {
        let Some(proposal) = self.proposals.get(&self.round).map(|p| p.proposal) else {
            return false;
        };
        let value = proposal.value;
        let allowed = match proposal.pol_round {
            None => self.locked.is_none_or(|(_, locked)| locked == value),
            Some(vr) => {
                if !self.quorum_for(vr, VoteKind::Prevote, Some(value)) {
                    return false;
                }
                self.locked.is_none_or(|(lr, locked)| lr <= vr || locked == value)
            }
        };
        let Some(&valid) = self.validity.get(&value) else {
            self.ask_validation(value);
            return false;
        };
        self.prevote((valid && allowed).then_some(value));
        true
    }

    /// More than 2/3 prevoted the round's proposal: lock on it and precommit (once a round).
    fn try_polka(&mut self) -> bool {
        let round = self.round;
        let Some(value) = self.proposals.get(&round).map(|p| p.proposal.value) else {
            return false;
        };
        if self.validity.get(&value) != Some(&true)
            || !self.quorum_for(round, VoteKind::Prevote, Some(value))
            || !self.first(POLKA)
        {
            return false;
        }
        if self.step == Step::Prevote {
            self.locked = Some((round, value));
            self.valid = Some((round, value));
            self.precommit(Some(value));
        } else {
            self.valid = Some((round, value));
        }
        true
    }

    /// More than 2/3 precommitted a valid block in some round: decide it.
    fn try_decide(&mut self) -> bool {
        if let Some(certificate) = self.certified.take() {
            if self.validity.get(&certificate.value) == Some(&true) {
                let value = certificate.value;
                self.out.push(Output::Decided(Decision { height: self.height, value, certificate }));
                self.next_height();
                return true;
            }
            self.certified = Some(certificate);
        }
        let quorum = self.votes.rounds().find_map(|(round, votes)| {
            votes
                .precommits
                .values()
                .into_iter()
                .find(|(value, power)| value.is_some() && self.set.is_quorum(*power))
                .map(|(value, _)| (round, value.expect("checked")))
        });
        let Some((round, value)) = quorum else {
            return false;
        };
        match self.validity.get(&value) {
            Some(true) => {
                self.decide(round, value);
                true
            }
            Some(false) => false,
            None => {
                self.ask_validation(value);
                false
            }
        }
    }

    /// More than 1/3 of the power is in a later round: go there.
    fn try_skip_round(&mut self) -> bool {
        let later = self
            .votes
            .rounds()
            .filter(|(round, votes)| *round > self.round && self.set.exceeds_one_third(votes.sender_power()))
            .map(|(round, _)| round)
            .last();
        match later {
            Some(round) => {
                self.start_round(round);
                true
            }
            None => false,
        }
    }

    fn decide(&mut self, round: Round, value: Hash) {
        let precommits =
            self.votes.round(round).expect("decided round has votes").precommits.votes_for(Some(value));
        let certificate = CommitCertificate::from_precommits(self.height, round, value, &precommits);
        self.out.push(Output::Decided(Decision { height: self.height, value, certificate }));
        self.next_height();
    }

    fn next_height(&mut self) {
        let epoch_ends = self.height.is_multiple_of(self.config.epoch_length);
        match self.next_validators.take_if(|_| epoch_ends) {
            Some(next) => self.set = self.set.update(next).expect("checked when it was set"),
            None => self.set.advance(),
        }
        self.height += 1;
        self.locked = None;
        self.valid = None;
        self.proposals.clear();
        self.votes = Default::default();
        self.validity.clear();
        self.asked.clear();
        self.done.clear();
        self.reported.clear();
        self.own.clear();
        self.certified = None;
        self.enter_height();
        for message in std::mem::take(&mut self.future) {
            match message {
                Message::Proposal(p) => self.on_proposal(p),
                Message::Vote(v) => self.on_vote(v, false),
            }
        }
    }

    pub(crate) fn prevote(&mut self, value: Option<Hash>) {
        self.step = Step::Prevote;
        self.sign_vote(VoteKind::Prevote, value);
    }

    pub(crate) fn precommit(&mut self, value: Option<Hash>) {
        self.step = Step::Precommit;
        self.sign_vote(VoteKind::Precommit, value);
    }

    fn sign_vote(&mut self, kind: VoteKind, value: Option<Hash>) {
        let vote = Vote { height: self.height, round: self.round, kind, value };
        let payload = SignPayload::vote(self.config.chain, &vote);
        if let Some((validator, signature)) = self.sign(&payload) {
            let signed = SignedVote { vote, validator, signature };
            self.own.insert((self.round, kind.step()), Message::Vote(signed));
            self.out.push(Output::Broadcast(Message::Vote(signed)));
            self.on_vote(signed, true);
        }
    }

    pub(crate) fn sign_proposal(&mut self, value: Hash, pol_round: Option<Round>) {
        let proposal = Proposal { height: self.height, round: self.round, value, pol_round };
        let payload = SignPayload::proposal(self.config.chain, &proposal);
        if let Some((proposer, signature)) = self.sign(&payload) {
            let signed = SignedProposal { proposal, proposer, signature };
            self.own.insert((self.round, Step::Propose), Message::Proposal(signed));
            self.out.push(Output::Broadcast(Message::Proposal(signed)));
            self.proposals.entry(self.round).or_insert(signed);
        }
    }

    /// Signs `payload` if the guard allows it and this node is a validator of the height;
    /// records the signature first.
    fn sign(
        &mut self,
        payload: &SignPayload,
    ) -> Option<(hyperion_primitives::Public, hyperion_primitives::Signature)> {
        let key = self.key.as_ref()?;
        let public = key.public();
        self.set.index_of(&public)?;
        let signature = match permission(self.last_signed.as_ref(), payload) {
            Permission::Refuse => return None,
            Permission::Repeat(signature) => signature,
            Permission::Sign => {
                let signature = key.sign(&payload.encode());
                let mut earlier: Vec<Signed> = match &self.last_signed {
                    Some(last) if last.height == payload.height => {
                        last.earlier.iter().copied().chain([last.last()]).collect()
                    }
                    _ => Vec::new(),
                };
                earlier.retain(|s| s.round + 1 >= payload.round);
                let excess = earlier.len().saturating_sub(MAX_EARLIER_SIGNED);
                earlier.drain(..excess);
                let record = SignRecord {
                    height: payload.height,
                    round: payload.round,
                    step: payload.step,
                    value: payload.value,
                    pol_round: payload.pol_round,
                    signature,
                    locked: self.locked,
                    valid: self.valid,
                    earlier,
                };
                self.last_signed = Some(record.clone());
                self.out.push(Output::Persist(record));
                signature
            }
        };
        Some((public, signature))
    }

    fn quorum_for(&self, round: Round, kind: VoteKind, value: Option<Hash>) -> bool {
        self.votes.round(round).is_some_and(|v| self.set.is_quorum(v.tally(kind).power_for(value)))
    }

    fn first(&mut self, flag: u8) -> bool {
        self.done.insert((self.round, flag))
    }
}
