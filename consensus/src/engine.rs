//! The engine: one validator's Tendermint state machine, driven by [`Engine::handle`].
//!
//! The engine does no I/O and reads no clock. The node (or the simulation) feeds it
//! [`Input`]s and carries out the [`Output`]s **in order**: an [`Output::Persist`] must be
//! durable before any later output is acted on, because the messages after it carry the
//! signature it records.
//!
//! The rules are those of "The latest gossip on BFT consensus" (Buchman, Kwon, Milosevic),
//! with votes weighted by power: a quorum is more than 2/3 of the power, and more than 1/3
//! moves a lagging validator to a later round. Two additions keep it live on a lossy network:
//! each round re-sends this validator's own messages on a timer ([`TimeoutKind::Rebroadcast`])
//! until the round ends, and a verified [`CommitCertificate`] for the current height
//! ([`Input::Certificate`]) decides it, which is how a validator that missed the votes
//! catches up.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use hyperion_primitives::{Hash, Pair};

use crate::certificate::{CommitCertificate, Evidence};
use crate::guard::SignRecord;
use crate::types::{
    ChainId, Height, Message, Proposal, Round, SignedProposal, SignedVote, Step, Vote, VoteKind,
};
use crate::validators::{Validator, ValidatorSet};
use crate::votes::{Added, HeightVotes};
use crate::SignatureCache;

/// Round timeouts: `base + delta × round`, so that they outgrow any network delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Wait for a proposal.
    pub propose_ms: u64,
    /// Added per round.
    pub propose_delta_ms: u64,
    /// Wait after more than 2/3 of prevotes for no single value.
    pub prevote_ms: u64,
    /// Added per round.
    pub prevote_delta_ms: u64,
    /// Wait after more than 2/3 of precommits for no single value; also the resend period.
    pub precommit_ms: u64,
    /// Added per round.
    pub precommit_delta_ms: u64,
}

impl Default for Timeouts {
    /// CometBFT's defaults.
    fn default() -> Self {
        Self {
            propose_ms: 3000,
            propose_delta_ms: 500,
            prevote_ms: 1000,
            prevote_delta_ms: 500,
            precommit_ms: 1000,
            precommit_delta_ms: 500,
        }
    }
}

impl Timeouts {
    /// The duration of `kind` in `round`.
    pub fn duration_ms(&self, kind: TimeoutKind, round: Round) -> u64 {
        let (base, delta) = match kind {
            TimeoutKind::Propose => (self.propose_ms, self.propose_delta_ms),
            TimeoutKind::Prevote => (self.prevote_ms, self.prevote_delta_ms),
            TimeoutKind::Precommit | TimeoutKind::Rebroadcast => (self.precommit_ms, self.precommit_delta_ms),
        };
        base.saturating_add(delta.saturating_mul(u64::from(round)))
    }
}

/// The engine's configuration, the same on every validator of a chain.
#[derive(Clone, Debug)]
pub struct Config {
    /// The chain (its genesis hash).
    pub chain: ChainId,
    /// Round timeouts.
    pub timeouts: Timeouts,
    /// Heights per epoch: the validator set changes only after a height that is a multiple.
    pub epoch_length: u64,
}

/// What a timeout is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeoutKind {
    /// No proposal in time: prevote nil.
    Propose,
    /// Prevotes split: precommit nil.
    Prevote,
    /// Precommits split: next round.
    Precommit,
    /// Send this round's own messages again.
    Rebroadcast,
}

/// A timeout to fire after a delay, identified by where it was scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timeout {
    /// Height scheduled at.
    pub height: Height,
    /// Round scheduled in.
    pub round: Round,
    /// What for.
    pub kind: TimeoutKind,
}

/// What the node feeds the engine.
#[derive(Clone, Debug)]
pub enum Input {
    /// A proposal from the network.
    Proposal(SignedProposal),
    /// A vote from the network.
    Vote(SignedVote),
    /// A scheduled timeout fired.
    Timeout(Timeout),
    /// The block asked for by [`Output::BuildBlock`].
    BlockBuilt {
        /// Its height.
        height: Height,
        /// The round it was asked for.
        round: Round,
        /// Its hash.
        value: Hash,
    },
    /// The verdict on a block asked for by [`Output::ValidateBlock`].
    Validated {
        /// Its height.
        height: Height,
        /// Its hash.
        value: Hash,
        /// Whether it executes and its header is right.
        valid: bool,
    },
    /// A commit certificate for the current height, from sync.
    Certificate(CommitCertificate),
}

/// What the engine asks of the node, to be carried out in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Make this record durable before acting on any later output.
    Persist(SignRecord),
    /// Send to every validator.
    Broadcast(Message),
    /// Feed `Input::Timeout(timeout)` back after `after_ms`.
    Schedule {
        /// The timeout.
        timeout: Timeout,
        /// Its delay.
        after_ms: u64,
    },
    /// Build a block for this height and round on top of the last decided block, then feed
    /// back [`Input::BlockBuilt`].
    BuildBlock {
        /// Height.
        height: Height,
        /// Round.
        round: Round,
    },
    /// Fetch if needed and execute the block with this hash, then feed back
    /// [`Input::Validated`].
    ValidateBlock {
        /// Height.
        height: Height,
        /// Block hash.
        value: Hash,
    },
    /// A block is decided; store it with its certificate. The engine has moved to the next
    /// height.
    Decided(Decision),
    /// Proof that a validator signed two conflicting messages, for the staking pallet.
    Evidence(Evidence),
}

/// A decided block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Height.
    pub height: Height,
    /// Block hash.
    pub value: Hash,
    /// More than 2/3 of the power's precommits for it.
    pub certificate: CommitCertificate,
}

/// Counters of what the engine dropped, for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Messages with a signature that does not verify, or from a non-validator.
    pub bad_signature: u64,
    /// Messages for another height or a round out of the window.
    pub out_of_window: u64,
    /// Proposals not from the round's proposer, or with an invalid valid round.
    pub bad_proposal: u64,
    /// Certificates that do not verify.
    pub bad_certificate: u64,
}

fn hex_prefix(hash: &Hash) -> String {
    hash.0[..3].iter().map(|b| format!("{b:02x}")).collect()
}

/// Messages kept for the next height while this one finishes, at most this many per validator.
const FUTURE_MESSAGES_PER_VALIDATOR: usize = 8;

/// One validator's consensus state machine.
pub struct Engine {
    pub(crate) config: Config,
    pub(crate) key: Option<Pair>,
    pub(crate) set: ValidatorSet,
    pub(crate) next_validators: Option<Vec<Validator>>,
    pub(crate) height: Height,
    pub(crate) round: Round,
    pub(crate) step: Step,
    pub(crate) locked: Option<(Round, Hash)>,
    pub(crate) valid: Option<(Round, Hash)>,
    pub(crate) proposals: BTreeMap<Round, SignedProposal>,
    pub(crate) votes: HeightVotes,
    pub(crate) validity: HashMap<Hash, bool>,
    pub(crate) asked: HashSet<Hash>,
    pub(crate) done: HashSet<(Round, u8)>,
    pub(crate) reported: HashSet<Evidence>,
    pub(crate) last_signed: Option<SignRecord>,
    pub(crate) own: BTreeMap<(Round, Step), Message>,
    pub(crate) future: Vec<Message>,
    pub(crate) out: Vec<Output>,
    pub(crate) dropped: Dropped,
    pub(crate) cache: Arc<SignatureCache>,
    pub(crate) started: bool,
    pub(crate) certified: Option<CommitCertificate>,
}

impl Engine {
    /// An engine at `height` with the validator set of that height (rotation state
    /// included). `key` is this validator's key (`None` for a node that only follows);
    /// `last_signed` is the durable record of the last signature, after a restart.
    pub fn new(
        config: Config,
        key: Option<Pair>,
        set: ValidatorSet,
        height: Height,
        last_signed: Option<SignRecord>,
        cache: Arc<SignatureCache>,
    ) -> Self {
        assert!(config.epoch_length > 0, "an epoch holds at least one height");
        Self {
            config,
            key,
            set,
            next_validators: None,
            height,
            round: 0,
            step: Step::Propose,
            locked: None,
            valid: None,
            proposals: BTreeMap::new(),
            votes: HeightVotes::default(),
            validity: HashMap::new(),
            asked: HashSet::new(),
            done: HashSet::new(),
            reported: HashSet::new(),
            last_signed,
            own: BTreeMap::new(),
            future: Vec::new(),
            out: Vec::new(),
            dropped: Dropped::default(),
            cache,
            started: false,
            certified: None,
        }
    }

    /// Starts the current height: round 0, or after a restart the round and lock recorded
    /// with the last signature at this height.
    pub fn start(&mut self) -> Vec<Output> {
        if !self.started {
            self.started = true;
            self.enter_height();
            self.progress();
        }
        std::mem::take(&mut self.out)
    }

    /// Starts the current height: round 0, or, when this validator signed at this height
    /// before a restart (or before it lost its blocks and synced back to this height), the
    /// recorded round, lock and message.
    pub(crate) fn enter_height(&mut self) {
        match self.last_signed.clone() {
            Some(record) if record.height == self.height => {
                self.locked = record.locked;
                self.valid = record.valid;
                self.restore_signed(&record);
                self.start_round(record.round);
            }
            _ => self.start_round(0),
        }
    }

    /// Takes the messages of the sign record back among this validator's own messages, so that
    /// they are sent again: peers that missed them before the restart may need them to finish
    /// the round.
    fn restore_signed(&mut self, record: &SignRecord) {
        let Some(key) = self.key.as_ref() else {
            return;
        };
        let public = key.public();
        for signed in record.earlier.iter().copied().chain([record.last()]) {
            let message = match (signed.step, signed.value) {
                (Step::Propose, Some(value)) => {
                    let proposal = Proposal {
                        height: record.height,
                        round: signed.round,
                        value,
                        pol_round: signed.pol_round,
                    };
                    Message::Proposal(SignedProposal {
                        proposal,
                        proposer: public,
                        signature: signed.signature,
                    })
                }
                (Step::Propose, None) => continue,
                (step, value) => {
                    let kind = if step == Step::Prevote { VoteKind::Prevote } else { VoteKind::Precommit };
                    let vote = Vote { height: record.height, round: signed.round, kind, value };
                    Message::Vote(SignedVote { vote, validator: public, signature: signed.signature })
                }
            };
            self.own.insert((signed.round, signed.step), message);
            match message {
                Message::Proposal(p) => {
                    self.proposals.insert(signed.round, p);
                    self.ask_validation(p.proposal.value);
                }
                Message::Vote(v) => self.on_vote(v, true),
            }
        }
    }

    /// Handles one input; returns what to do, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        assert!(self.started, "Engine::start comes before any input");
        match input {
            Input::Proposal(proposal) => self.on_proposal(proposal),
            Input::Vote(vote) => self.on_vote(vote, false),
            Input::Timeout(timeout) => self.on_timeout(timeout),
            Input::BlockBuilt { height, round, value } => self.on_built(height, round, value),
            Input::Validated { height, value, valid } => {
                if height == self.height && self.asked.contains(&value) {
                    self.validity.insert(value, valid);
                }
            }
            Input::Certificate(certificate) => self.on_certificate(certificate),
        }
        self.progress();
        std::mem::take(&mut self.out)
    }

    /// The validator set that takes over at the next epoch boundary (from staking).
    pub fn set_next_validators(&mut self, validators: Vec<Validator>) -> crate::Result<()> {
        self.set.update(validators.clone())?;
        self.next_validators = Some(validators);
        Ok(())
    }

    /// Current height.
    pub fn height(&self) -> Height {
        self.height
    }

    /// Current round.
    pub fn round(&self) -> Round {
        self.round
    }

    /// Current step.
    pub fn step(&self) -> Step {
        self.step
    }

    /// The validator set of the current height.
    pub fn validators(&self) -> &ValidatorSet {
        &self.set
    }

    /// The block this validator is locked on, and the round it locked in.
    pub fn locked(&self) -> Option<(Round, Hash)> {
        self.locked
    }

    /// The latest block seen with more than 2/3 of prevotes, and its round.
    pub fn valid(&self) -> Option<(Round, Hash)> {
        self.valid
    }

    /// A one-line summary of a round for logs: proposal (value and valid round) and the
    /// power behind each prevoted and precommitted value.
    pub fn describe_round(&self, round: Round) -> String {
        let short = |v: Option<Hash>| v.map_or("nil".to_string(), |h| hex_prefix(&h));
        let proposal =
            self.proposals.get(&round).map(|p| (hex_prefix(&p.proposal.value), p.proposal.pol_round));
        let tallies = self.votes.round(round).map(|v| {
            let mut prevotes: Vec<String> =
                v.prevotes.values().into_iter().map(|(x, p)| format!("{}:{p}", short(x))).collect();
            let mut precommits: Vec<String> =
                v.precommits.values().into_iter().map(|(x, p)| format!("{}:{p}", short(x))).collect();
            prevotes.sort();
            precommits.sort();
            (prevotes, precommits)
        });
        format!("r{round} proposal {proposal:?} votes {tallies:?}")
    }

    /// The durable record of the last signature.
    pub fn last_signed(&self) -> Option<&SignRecord> {
        self.last_signed.as_ref()
    }

    /// What was dropped so far.
    pub fn dropped(&self) -> Dropped {
        self.dropped
    }

    /// Whether this vote (not another of its validator for the same round and kind) is
    /// counted at the current height.
    pub fn holds_vote(&self, vote: &SignedVote) -> bool {
        vote.vote.height == self.height
            && self.set.index_of(&vote.validator).is_some_and(|i| self.votes.holds(i, vote))
    }

    /// Whether this proposal is the one held for its round at the current height.
    pub fn holds_proposal(&self, proposal: &SignedProposal) -> bool {
        proposal.proposal.height == self.height
            && self.proposals.get(&proposal.proposal.round) == Some(proposal)
    }

    pub(crate) fn on_proposal(&mut self, signed: SignedProposal) {
        let p = signed.proposal;
        if p.height != self.height {
            return self.keep_for_later(Message::Proposal(signed));
        }
        if p.round > self.round.saturating_add(1) {
            self.dropped.out_of_window += 1;
            return;
        }
        if !self.cache.verify(&signed.proposer, &signed.payload(self.config.chain), &signed.signature) {
            self.dropped.bad_signature += 1;
            return;
        }
        if self.set.proposer(p.round).public != signed.proposer || p.pol_round.is_some_and(|vr| vr >= p.round)
        {
            self.dropped.bad_proposal += 1;
            return;
        }
        match self.proposals.get(&p.round) {
            Some(first) if *first == signed => {}
            Some(first) => {
                let evidence = Evidence::double_proposal(*first, signed);
                self.report(evidence);
            }
            None => {
                self.proposals.insert(p.round, signed);
                self.ask_validation(p.value);
            }
        }
    }

    pub(crate) fn on_vote(&mut self, signed: SignedVote, trusted: bool) {
        if signed.vote.height != self.height {
            return self.keep_for_later(Message::Vote(signed));
        }
        let Some(index) = self.set.index_of(&signed.validator) else {
            self.dropped.bad_signature += 1;
            return;
        };
        if !trusted
            && !self.cache.verify(&signed.validator, &signed.payload(self.config.chain), &signed.signature)
        {
            self.dropped.bad_signature += 1;
            return;
        }
        let power = self.set.validators()[index].power;
        let relevant =
            signed.vote.value.is_none_or(|v| self.proposals.values().any(|p| p.proposal.value == v));
        match self.votes.add(index, power, signed, self.round, trusted, trusted || relevant) {
            Added::New | Added::Duplicate => {}
            Added::OutOfWindow => self.dropped.out_of_window += 1,
            Added::Conflict(first) => self.report(Evidence::double_vote(first, signed)),
        }
    }

    fn on_certificate(&mut self, certificate: CommitCertificate) {
        if certificate.height != self.height {
            self.dropped.out_of_window += 1;
            return;
        }
        if certificate.verify_cached(self.config.chain, &self.set, Some(&self.cache)).is_err() {
            self.dropped.bad_certificate += 1;
            return;
        }
        // The votes join the tallies (a vote that conflicts with one held is evidence), but
        // the certificate decides by itself: a validator may have shown us another vote.
        for vote in certificate.votes() {
            self.on_vote(vote, true);
        }
        self.ask_validation(certificate.value);
        self.certified.get_or_insert(certificate);
    }

    fn on_built(&mut self, height: Height, round: Round, value: Hash) {
        let mine = self.key.as_ref().is_some_and(|k| self.set.proposer(round).public == k.public());
        if height == self.height && round == self.round && self.step == Step::Propose && mine {
            self.validity.insert(value, true);
            self.asked.insert(value);
            self.sign_proposal(value, None);
        }
    }

    fn on_timeout(&mut self, timeout: Timeout) {
        if timeout.height != self.height {
            return;
        }
        let current = timeout.round == self.round;
        match timeout.kind {
            TimeoutKind::Propose if current && self.step == Step::Propose => self.prevote(None),
            TimeoutKind::Prevote if current && self.step == Step::Prevote => self.precommit(None),
            TimeoutKind::Precommit if current => self.start_round(self.round + 1),
            TimeoutKind::Rebroadcast if current => {
                self.rebroadcast();
                self.schedule(TimeoutKind::Rebroadcast);
            }
            _ => {}
        }
    }

    /// Sends again this round's and the previous round's own messages, and the prevotes that make a block acceptable
    /// now: the polka (all its prevotes, not only this validator's) of the current proposal's
    /// valid round, of this validator's lock and of its valid block. On a lossy network, or
    /// after restarts, peers that missed them could otherwise never accept a re-proposed block.
    fn rebroadcast(&mut self) {
        // The previous round's too: validators still in it need this validator's precommit to
        // time out of it (a round ends only on more than 2/3 of precommits).
        let from = (self.round.saturating_sub(1), Step::Propose);
        let mut messages: Vec<Message> = self.own.range(from..).map(|(_, m)| *m).collect();
        let pol = self
            .proposals
            .get(&self.round)
            .and_then(|p| p.proposal.pol_round.map(|vr| (vr, p.proposal.value)));
        let mut polkas: Vec<(Round, Hash)> = [pol, self.locked, self.valid].into_iter().flatten().collect();
        polkas.sort_unstable();
        polkas.dedup();
        for (round, value) in polkas.into_iter().filter(|(r, _)| *r < self.round) {
            if let Some(votes) = self.votes.round(round) {
                messages.extend(votes.prevotes.votes_for(Some(value)).into_iter().map(Message::Vote));
            }
        }
        self.out.extend(messages.into_iter().map(Output::Broadcast));
    }

    /// Keeps a message of the next height (bounded); drops others.
    fn keep_for_later(&mut self, message: Message) {
        let bound = FUTURE_MESSAGES_PER_VALIDATOR * self.set.len();
        if message.height() == self.height + 1 && self.future.len() < bound {
            self.future.push(message);
        } else {
            self.dropped.out_of_window += 1;
        }
    }

    pub(crate) fn report(&mut self, evidence: Option<Evidence>) {
        if let Some(evidence) = evidence {
            if self.reported.insert(evidence.clone()) {
                self.out.push(Output::Evidence(evidence));
            }
        }
    }

    pub(crate) fn ask_validation(&mut self, value: Hash) {
        if !self.validity.contains_key(&value) && self.asked.insert(value) {
            self.out.push(Output::ValidateBlock { height: self.height, value });
        }
    }

    pub(crate) fn schedule(&mut self, kind: TimeoutKind) {
        let timeout = Timeout { height: self.height, round: self.round, kind };
        let after_ms = self.config.timeouts.duration_ms(kind, self.round);
        self.out.push(Output::Schedule { timeout, after_ms });
    }
}
