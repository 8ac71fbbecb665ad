//! A deterministic simulation of a validator network around real [`Engine`]s.
//!
//! One seed drives everything: the set (size and stakes), message delay, loss, duplication
//! and reordering, partitions, crashes and restarts, and the Byzantine validators' choices.
//! Time is simulated; events run in (time, sequence) order, so a seed replays exactly and the
//! run's trace hash is the same every time.
//!
//! Each node carries out its engine's outputs as the node would: a `Persist` record is durable
//! at once (the write-ahead rule), decided blocks are written to a block store that is synced
//! only now and then (so a power cut loses the unsynced tail), and a node that hears a message
//! of a height it has passed answers with the certificates of that height and the next ones
//! (block sync), which the lagging node feeds to its engine one height at a time.

pub mod byzantine;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use hyperion_consensus::{
    ChainId, CommitCertificate, Config, Engine, Evidence, Height, Input, Message, Output, SignRecord,
    SignatureCache, Step, Timeout, Timeouts, Validator, ValidatorSet,
};
use hyperion_primitives::hashing::blake2_256;
use hyperion_primitives::{Hash, Pair};
use parity_scale_codec::Encode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use byzantine::Behaviour;

/// How crashes happen in a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crashes {
    /// No crashes.
    None,
    /// Crash and restart with everything written kept.
    Restart,
    /// Crash and restart losing what the block store had not synced (a power cut). The sign
    /// record is always synced before a message leaves, by the engine's contract.
    PowerCut,
}

/// One kind of run.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Fewest and most validators.
    pub validators: (usize, usize),
    /// What the Byzantine validators do (`Behaviour::Honest`: none).
    pub behaviour: Behaviour,
    /// How many are Byzantine: `None` for the most the fault bound allows (power < 1/3).
    pub byzantine: Option<usize>,
    /// Per cent of messages lost during the faulty phase (and a tenth of it after).
    pub loss_percent: u32,
    /// Per cent of messages delivered twice.
    pub duplicate_percent: u32,
    /// Partitions that heal during the faulty phase.
    pub partitions: bool,
    /// Crashes during the faulty phase.
    pub crashes: Crashes,
    /// Length of the faulty phase, simulated milliseconds.
    pub faulty_ms: u64,
    /// After the faulty phase every honest validator must decide a new height within this.
    pub liveness_bound_ms: u64,
    /// Beyond the fault bound: forks may happen, and must leave evidence.
    pub beyond_bound: bool,
}

/// What a run measured.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Highest height decided by an honest validator.
    pub heights: u64,
    /// Simulated time of the run.
    pub sim_ms: u64,
    /// Sum over honest decisions of (decision round + 1).
    pub rounds: u64,
    /// Honest decisions.
    pub decisions: u64,
    /// Heights with two different honest decisions (beyond the fault bound only).
    pub forks: u64,
    /// Distinct validators with verified evidence against them.
    pub accused: usize,
    /// Hash of every event, for replay checks.
    pub trace: [u8; 32],
}

pub const CHAIN: ChainId = ChainId(Hash([0x42; 32]));

fn timeouts() -> Timeouts {
    Timeouts {
        propose_ms: 300,
        propose_delta_ms: 100,
        prevote_ms: 150,
        prevote_delta_ms: 75,
        precommit_ms: 150,
        precommit_delta_ms: 75,
    }
}

/// Heights per epoch: the validator set changes every few heights.
const EPOCH_LENGTH: u64 = 3;

/// Most certificates one sync answer carries.
const SYNC_BATCH: u64 = 64;

enum Event {
    Deliver { to: usize, from: usize, bytes: Vec<u8> },
    Certificates { to: usize, certificates: Vec<CommitCertificate> },
    Timer { node: usize, life: u32, timeout: Timeout },
    Built { node: usize, life: u32, height: Height, round: u32, value: Hash },
    Validated { node: usize, life: u32, height: Height, value: Hash },
    Crash { node: usize },
    Restart { node: usize },
    Partition { groups: Vec<u8> },
    Heal,
    Sync { node: usize },
    Status { to: usize, from: usize, height: Height },
}

struct Node {
    key: Pair,
    behaviour: Behaviour,
    engine: Option<Engine>,
    life: u32,
    record: Option<SignRecord>,
    chain: Vec<(Hash, CommitCertificate)>,
    synced: usize,
    pending: BTreeMap<Height, CommitCertificate>,
    answered: HashMap<(usize, Height), u64>,
    signed: HashMap<(Height, u32, Step), Message>,
    first_held: HashMap<(Height, u32, u8, [u8; 32]), Message>,
    evidence: HashSet<Evidence>,
    history: Vec<Message>,
    decided_at: BTreeMap<Height, u32>,
}

fn signature_valid(message: &Message) -> bool {
    match message {
        Message::Vote(v) => v.verify(CHAIN),
        Message::Proposal(p) => p.verify(CHAIN),
    }
}

/// The simulation of one seed.
pub struct Sim {
    scenario: Scenario,
    rng: StdRng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: HashMap<usize, Event>,
    next_event: usize,
    nodes: Vec<Node>,
    genesis: ValidatorSet,
    groups: Option<Vec<u8>>,
    blocks: HashMap<Hash, Height>,
    decided: BTreeMap<Height, Vec<(Hash, CommitCertificate)>>,
    cache: Arc<SignatureCache>,
    trace: [u8; 32],
    report: Report,
    faulty: bool,
}

impl Sim {
    /// Sets up the network of `seed`.
    pub fn new(scenario: &Scenario, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = rng.gen_range(scenario.validators.0..=scenario.validators.1);
        let keys: Vec<Pair> = (0..n).map(|_| Pair::from_seed(&rng.gen())).collect();
        let powers: Vec<u64> =
            if scenario.beyond_bound { vec![1; n] } else { (0..n).map(|_| rng.gen_range(1..=4)).collect() };
        let total: u64 = powers.iter().sum();
        // Byzantine validators: the first ones, as many as the bound (or the scenario) allows.
        let mut byzantine = 0;
        let mut byzantine_power = 0;
        if scenario.behaviour != Behaviour::Honest {
            let wanted = scenario.byzantine.unwrap_or(n);
            while byzantine < wanted.min(n) {
                let power = byzantine_power + powers[byzantine];
                if scenario.byzantine.is_none() && 3 * power >= total {
                    break;
                }
                byzantine_power = power;
                byzantine += 1;
            }
        }
        let validators: Vec<Validator> =
            keys.iter().zip(&powers).map(|(k, &power)| Validator { public: k.public(), power }).collect();
        let genesis = ValidatorSet::new(validators).expect("valid set");
        let nodes = keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| Node {
                key,
                behaviour: if i < byzantine { scenario.behaviour } else { Behaviour::Honest },
                engine: None,
                life: 0,
                record: None,
                chain: Vec::new(),
                synced: 0,
                pending: BTreeMap::new(),
                answered: HashMap::new(),
                signed: HashMap::new(),
                first_held: HashMap::new(),
                evidence: HashSet::new(),
                history: Vec::new(),
                decided_at: BTreeMap::new(),
            })
            .collect();
        let mut sim = Self {
            scenario: scenario.clone(),
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            next_event: 0,
            nodes,
            genesis,
            groups: None,
            blocks: HashMap::new(),
            decided: BTreeMap::new(),
            cache: Arc::new(SignatureCache::new(1 << 14)),
            trace: [0; 32],
            report: Report::default(),
            faulty: true,
        };
        sim.plan_faults();
        sim
    }

    /// Runs the seed to its end; `Err` names the invariant that broke.
    pub fn run(mut self) -> Result<Report, String> {
        for i in 0..self.nodes.len() {
            self.boot(i)?;
        }
        let end_of_faults = self.scenario.faulty_ms;
        let mut liveness_floor = None;
        while let Some(Reverse((at, _, id))) = self.queue.pop() {
            if self.faulty && at >= end_of_faults {
                self.faulty = false;
                liveness_floor = Some(self.honest_max_height());
            }
            if let Some(floor) = liveness_floor {
                if self.honest_nodes().all(|i| self.height_of(i) > floor + 1) {
                    break;
                }
                if at > end_of_faults + self.scenario.liveness_bound_ms {
                    if self.scenario.beyond_bound {
                        break;
                    }
                    let heights: Vec<String> = self
                        .honest_nodes()
                        .map(|i| match &self.nodes[i].engine {
                            Some(e) => format!(
                                "\n  node {i} (set as expected: {}) at {}/{}/{:?} locked {:?} valid {:?} {:?}\n    {}",
                                *e.validators() == self.set_at(e.height()),
                                e.height(),
                                e.round(),
                                e.step(),
                                e.locked().map(|l| l.0),
                                e.valid().map(|v| v.0),
                                e.dropped(),
                                (e.round().saturating_sub(3)..=e.round())
                                    .map(|r| e.describe_round(r))
                                    .collect::<Vec<_>>()
                                    .join("\n    ")
                            ),
                            None => "down".into(),
                        })
                        .collect();
                    return Err(format!(
                        "liveness: no new height within {} ms after the faults ended (floor {floor}, heights {heights:?})",
                        self.scenario.liveness_bound_ms
                    ));
                }
            }
            self.now = at;
            let event = self.events.remove(&id).expect("queued event");
            self.step(event)?;
        }
        self.finish()
    }

    fn finish(mut self) -> Result<Report, String> {
        self.report.sim_ms = self.now;
        self.report.heights = self.honest_max_height();
        let mut accused = HashSet::new();
        for (height, decisions) in &self.decided {
            let set = self.set_at(*height);
            for (_, certificate) in decisions {
                certificate
                    .verify(CHAIN, &set)
                    .map_err(|e| format!("decided with a bad certificate: {e}"))?;
            }
            if decisions.len() > 1 {
                if !self.scenario.beyond_bound {
                    return Err(format!(
                        "agreement: honest validators decided {} blocks at height {height}",
                        decisions.len()
                    ));
                }
                self.report.forks += 1;
                for a in decisions {
                    for b in decisions {
                        for evidence in Evidence::from_certificates(&a.1, &b.1) {
                            evidence
                                .verify(CHAIN, &set)
                                .map_err(|e| format!("evidence from certificates: {e}"))?;
                            accused.insert(evidence.offender());
                        }
                    }
                }
            }
        }
        for node in self.nodes.iter().filter(|n| n.behaviour == Behaviour::Honest) {
            for evidence in &node.evidence {
                evidence
                    .verify(CHAIN, &self.set_at(evidence.height()))
                    .map_err(|e| format!("reported evidence: {e}"))?;
                accused.insert(evidence.offender());
            }
        }
        for node in self.nodes.iter().filter(|n| n.behaviour == Behaviour::Honest) {
            if accused.contains(&node.key.public()) {
                return Err(format!("evidence against honest validator {:?}", node.key.public()));
            }
        }
        self.report.accused = accused.len();
        if self.report.forks > 0 && accused.len() < 2 {
            return Err(format!("a fork with evidence against only {} validators", accused.len()));
        }
        self.report.trace = self.trace;
        Ok(self.report)
    }

    /// The validator set of `height`: from genesis, one rotation step per height, and at each
    /// epoch boundary the set of the next epoch.
    fn set_at(&self, height: Height) -> ValidatorSet {
        let mut set = self.genesis.clone();
        for k in 1..height {
            if k % EPOCH_LENGTH == 0 {
                set = set.update(self.epoch_set(k / EPOCH_LENGTH)).expect("valid set");
            } else {
                set.advance();
            }
        }
        set
    }

    /// The validators of epoch `epoch` (genesis is epoch 0), as staking would hand them over:
    /// the honest validators' stakes move round among them, the Byzantine ones keep theirs, so
    /// the fault bound holds in every epoch.
    fn epoch_set(&self, epoch: u64) -> Vec<Validator> {
        let validators = self.genesis.validators();
        let honest: Vec<usize> = (0..validators.len())
            .filter(|&i| {
                self.nodes
                    .iter()
                    .any(|n| n.key.public() == validators[i].public && n.behaviour == Behaviour::Honest)
            })
            .collect();
        let mut next = validators.to_vec();
        for (k, &i) in honest.iter().enumerate() {
            let from = honest[(k + epoch as usize) % honest.len()];
            next[i].power = validators[from].power;
        }
        next
    }

    /// Hands the engine of node `i` the set of the epoch after its current one.
    fn tell_next_set(&mut self, i: usize) {
        let Some(height) = self.nodes[i].engine.as_ref().map(|e| e.height()) else {
            return;
        };
        let next = self.epoch_set(height.div_ceil(EPOCH_LENGTH));
        if let Some(engine) = self.nodes[i].engine.as_mut() {
            engine.set_next_validators(next).expect("valid set");
        }
    }

    fn honest_nodes(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].behaviour == Behaviour::Honest)
    }

    fn height_of(&self, node: usize) -> Height {
        self.nodes[node].chain.len() as Height + 1
    }

    fn honest_max_height(&self) -> Height {
        self.honest_nodes().map(|i| self.nodes[i].chain.len() as Height).max().unwrap_or(0)
    }

    fn plan_faults(&mut self) {
        let n = self.nodes.len();
        let faulty_ms = self.scenario.faulty_ms;
        if self.scenario.partitions {
            let mut at = self.rng.gen_range(0..faulty_ms / 4);
            while at < faulty_ms * 3 / 4 {
                let groups: Vec<u8> = (0..n).map(|_| self.rng.gen_range(0..2)).collect();
                self.push(at, Event::Partition { groups });
                at += self.rng.gen_range(faulty_ms / 8..faulty_ms / 3);
                self.push(at.min(faulty_ms), Event::Heal);
                at += self.rng.gen_range(100..faulty_ms / 4);
            }
        }
        if self.scenario.crashes != Crashes::None {
            // Crash up to f validators by power at a time; each restarts before the end.
            let total = self.genesis.total_power();
            let mut order: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                order.swap(i, self.rng.gen_range(0..=i));
            }
            let mut power = 0;
            for node in order {
                let p = self.genesis.power_of(&self.nodes[node].key.public());
                if 3 * (power + p) >= total {
                    continue;
                }
                power += p;
                let crash = self.rng.gen_range(0..faulty_ms * 2 / 3);
                let restart = self.rng.gen_range(crash + 10..faulty_ms);
                self.push(crash, Event::Crash { node });
                self.push(restart, Event::Restart { node });
            }
        }
        for node in 0..n {
            let at = self.rng.gen_range(100..400);
            self.push(at, Event::Sync { node });
        }
    }

    fn push(&mut self, at: u64, event: Event) {
        let id = self.next_event;
        self.next_event += 1;
        self.seq += 1;
        self.events.insert(id, event);
        self.queue.push(Reverse((at, self.seq, id)));
    }

    fn boot(&mut self, i: usize) -> Result<(), String> {
        let node = &mut self.nodes[i];
        node.life += 1;
        node.pending.clear();
        node.first_held.clear();
        let height = node.chain.len() as Height + 1;
        let config = Config { chain: CHAIN, timeouts: timeouts(), epoch_length: EPOCH_LENGTH };
        let set = self.set_at(height);
        let node = &mut self.nodes[i];
        let engine =
            Engine::new(config, Some(node.key.clone()), set, height, node.record.clone(), self.cache.clone());
        node.engine = Some(engine);
        self.tell_next_set(i);
        let outputs = self.nodes[i].engine.as_mut().expect("just set").start();
        self.carry_out(i, outputs)
    }

    fn step(&mut self, event: Event) -> Result<(), String> {
        match event {
            Event::Deliver { to, from, bytes } => self.deliver(to, from, bytes)?,
            Event::Certificates { to, certificates } => {
                let node = &mut self.nodes[to];
                for c in certificates {
                    if c.height > node.chain.len() as Height && node.pending.len() < SYNC_BATCH as usize {
                        node.pending.insert(c.height, c);
                    }
                }
                self.feed_pending(to)?;
            }
            Event::Timer { node, life, timeout } => {
                self.trace_event(&[0, node as u8], &timeout.height.to_le_bytes());
                self.input(node, life, Input::Timeout(timeout))?;
            }
            Event::Built { node, life, height, round, value } => {
                self.input(node, life, Input::BlockBuilt { height, round, value })?;
            }
            Event::Validated { node, life, height, value } => {
                let valid = self.blocks.get(&value) == Some(&height);
                self.input(node, life, Input::Validated { height, value, valid })?;
            }
            Event::Crash { node } => {
                self.trace_event(&[1, node as u8], &[]);
                let n = &mut self.nodes[node];
                n.engine = None;
                if self.scenario.crashes == Crashes::PowerCut {
                    n.chain.truncate(n.synced);
                }
            }
            Event::Restart { node } => {
                self.trace_event(&[2, node as u8], &[]);
                self.boot(node)?;
            }
            Event::Partition { groups } => self.groups = Some(groups),
            Event::Heal => self.groups = None,
            Event::Status { to, from, height } => {
                if self.nodes[to].engine.is_some() {
                    self.answer_with_certificates(to, from, height);
                }
            }
            Event::Sync { node } => {
                let n = &mut self.nodes[node];
                n.synced = n.chain.len();
                // Block sync's status exchange: peers ahead answer with certificates.
                if n.engine.is_some() {
                    let height = n.chain.len() as Height + 1;
                    for to in (0..self.nodes.len()).filter(|&p| p != node) {
                        if self.link_up(node, to) && self.rng.gen_range(0..100) >= self.loss() {
                            let delay = self.delay();
                            self.push(self.now + delay, Event::Status { to, from: node, height });
                        }
                    }
                }
                let next = self.rng.gen_range(200..600);
                self.push(self.now + next, Event::Sync { node });
            }
        }
        Ok(())
    }

    fn deliver(&mut self, to: usize, from: usize, bytes: Vec<u8>) -> Result<(), String> {
        self.trace_event(&[3, to as u8, from as u8], &bytes);
        let Ok(message) = Message::decode_bounded(&bytes) else {
            return Ok(());
        };
        let Some(engine) = self.nodes[to].engine.as_ref() else {
            return Ok(());
        };
        let height = engine.height();
        if message.height() < height {
            self.answer_with_certificates(to, from, message.height());
        }
        if self.nodes[to].behaviour == Behaviour::Replayer && self.nodes[to].history.len() < 512 {
            self.nodes[to].history.push(message);
        }
        let life = self.nodes[to].life;
        let input = match message {
            Message::Proposal(p) => Input::Proposal(p),
            Message::Vote(v) => Input::Vote(v),
        };
        self.input(to, life, input)?;
        if message.height() == height && self.nodes[to].behaviour == Behaviour::Honest {
            self.check_equivocation_seen(to, message)?;
        }
        Ok(())
    }

    /// If the engine holds `message` it is the first of its slot; a later different message
    /// for that slot must have produced evidence.
    fn check_equivocation_seen(&mut self, to: usize, message: Message) -> Result<(), String> {
        let node = &mut self.nodes[to];
        let engine = node.engine.as_ref().expect("checked");
        if engine.height() != message.height() {
            return Ok(());
        }
        let (slot, held) = match message {
            Message::Vote(v) => {
                ((v.vote.height, v.vote.round, v.vote.kind as u8 + 1, v.validator.0), engine.holds_vote(&v))
            }
            Message::Proposal(p) => {
                ((p.proposal.height, p.proposal.round, 0, p.proposer.0), engine.holds_proposal(&p))
            }
        };
        match node.first_held.get(&slot) {
            None if held => {
                node.first_held.insert(slot, message);
            }
            Some(first) if *first != message && signature_valid(&message) => {
                let evidence = match (first, message) {
                    (Message::Vote(a), Message::Vote(b)) => Evidence::double_vote(*a, b),
                    (Message::Proposal(a), Message::Proposal(b)) => Evidence::double_proposal(*a, b),
                    _ => None,
                };
                // Any evidence against the signer for this slot will do: the engine pairs the
                // new message with the first it holds, which may differ from ours.
                if let Some(evidence) = evidence {
                    let slot_of = |e: &Evidence| match e {
                        Evidence::DoubleVote { first, .. } => (
                            first.vote.height,
                            first.vote.round,
                            first.vote.kind as u8 + 1,
                            first.validator.0,
                        ),
                        Evidence::DoubleProposal { first, .. } => {
                            (first.proposal.height, first.proposal.round, 0, first.proposer.0)
                        }
                    };
                    if !node.evidence.iter().any(|e| slot_of(e) == slot) {
                        return Err(format!("equivocation seen without evidence at node {to}: {evidence:?}"));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn answer_with_certificates(&mut self, to: usize, asker: usize, height: Height) {
        let node = &mut self.nodes[to];
        let last = node.answered.get(&(asker, height)).copied();
        if last.is_some_and(|at| self.now < at + 100) || height == 0 || height > node.chain.len() as Height {
            return;
        }
        node.answered.insert((asker, height), self.now);
        let end = (height + SYNC_BATCH).min(node.chain.len() as Height + 1);
        let certificates: Vec<CommitCertificate> =
            (height..end).map(|h| node.chain[(h - 1) as usize].1.clone()).collect();
        if self.link_up(to, asker) {
            let delay = self.delay();
            self.push(self.now + delay, Event::Certificates { to: asker, certificates });
        }
    }

    /// Feeds the engine the synced certificate of its height, as long as it moves on.
    fn feed_pending(&mut self, i: usize) -> Result<(), String> {
        loop {
            let node = &mut self.nodes[i];
            let Some(engine) = node.engine.as_mut() else {
                return Ok(());
            };
            let height = engine.height();
            node.pending.retain(|h, _| *h >= height);
            let Some(certificate) = node.pending.remove(&height) else {
                return Ok(());
            };
            let outputs = engine.handle(Input::Certificate(certificate));
            self.carry_out(i, outputs)?;
            if self.nodes[i].engine.as_ref().is_none_or(|e| e.height() == height) {
                return Ok(());
            }
        }
    }

    fn input(&mut self, i: usize, life: u32, input: Input) -> Result<(), String> {
        let node = &mut self.nodes[i];
        if node.life != life {
            return Ok(());
        }
        let Some(engine) = node.engine.as_mut() else {
            return Ok(());
        };
        let outputs = engine.handle(input);
        self.carry_out(i, outputs)?;
        self.feed_pending(i)
    }

    /// Does what the node does with its engine's outputs, in order.
    fn carry_out(&mut self, i: usize, outputs: Vec<Output>) -> Result<(), String> {
        let mut decided = false;
        for output in outputs {
            match output {
                Output::Persist(record) => self.nodes[i].record = Some(record),
                Output::Broadcast(message) => {
                    if self.nodes[i].behaviour == Behaviour::Honest
                        && message.signer() == self.nodes[i].key.public()
                    {
                        self.check_no_double_sign(i, message)?;
                    }
                    self.send_as(i, message);
                }
                Output::Schedule { timeout, after_ms } => {
                    let life = self.nodes[i].life;
                    self.push(self.now + after_ms, Event::Timer { node: i, life, timeout });
                }
                Output::BuildBlock { height, round } => {
                    let value = self.new_block(height, &(i as u32, round, self.nodes[i].life).encode());
                    let life = self.nodes[i].life;
                    let after = self.rng.gen_range(1..10);
                    self.push(self.now + after, Event::Built { node: i, life, height, round, value });
                }
                Output::ValidateBlock { height, value } => {
                    let life = self.nodes[i].life;
                    let after = self.rng.gen_range(1..10);
                    self.push(self.now + after, Event::Validated { node: i, life, height, value });
                }
                Output::Decided(decision) => {
                    self.trace_event(&[4, i as u8], &decision.value.0);
                    let node = &mut self.nodes[i];
                    if decision.height != node.chain.len() as Height + 1 {
                        return Err(format!(
                            "node {i} decided height {} after {}",
                            decision.height,
                            node.chain.len()
                        ));
                    }
                    node.chain.push((decision.value, decision.certificate.clone()));
                    decided = true;
                    if node.behaviour == Behaviour::Honest {
                        node.decided_at.insert(decision.height, decision.certificate.round);
                        self.report.decisions += 1;
                        self.report.rounds += u64::from(decision.certificate.round) + 1;
                        let decided = self.decided.entry(decision.height).or_default();
                        if !decided.iter().any(|(v, _)| *v == decision.value) {
                            decided.push((decision.value, decision.certificate));
                        }
                    }
                }
                Output::Evidence(evidence) => {
                    self.nodes[i].evidence.insert(evidence);
                }
            }
        }
        if decided {
            self.tell_next_set(i);
        }
        Ok(())
    }

    /// An honest validator never signs two different messages for one (height, round, step),
    /// across restarts included.
    fn check_no_double_sign(&mut self, i: usize, message: Message) -> Result<(), String> {
        let (position, content) = match message {
            Message::Vote(v) => ((v.vote.height, v.vote.round, v.vote.kind.step()), v.vote.encode()),
            Message::Proposal(p) => {
                ((p.proposal.height, p.proposal.round, Step::Propose), p.proposal.encode())
            }
        };
        let node = &mut self.nodes[i];
        match node.signed.get(&position) {
            Some(earlier) => {
                let earlier_content = match earlier {
                    Message::Vote(v) => v.vote.encode(),
                    Message::Proposal(p) => p.proposal.encode(),
                };
                if earlier_content != content {
                    return Err(format!(
                        "honest node {i} signed two messages at {position:?}: {earlier:?} and {message:?}"
                    ));
                }
            }
            None => {
                node.signed.insert(position, message);
            }
        }
        Ok(())
    }

    /// A new valid block of `height`.
    fn new_block(&mut self, height: Height, salt: &[u8]) -> Hash {
        let value = Hash(blake2_256(&(height, salt, self.rng.gen::<u64>()).encode()));
        self.blocks.insert(value, height);
        value
    }

    /// Sends `message` from `from` to `to` through the simulated network.
    fn send(&mut self, from: usize, to: usize, message: &Message, corrupt: bool) {
        let mut bytes = message.encode();
        if corrupt {
            let last = bytes.len() - 1;
            bytes[last] ^= 0x01;
        }
        if !self.link_up(from, to) {
            return;
        }
        if self.rng.gen_range(0..100) < self.loss() {
            return;
        }
        let copies = if self.rng.gen_range(0..100) < self.scenario.duplicate_percent { 2 } else { 1 };
        for _ in 0..copies {
            let delay = self.delay();
            self.push(self.now + delay, Event::Deliver { to, from, bytes: bytes.clone() });
        }
    }

    fn loss(&self) -> u32 {
        if self.faulty {
            self.scenario.loss_percent
        } else {
            self.scenario.loss_percent / 10
        }
    }

    fn link_up(&self, a: usize, b: usize) -> bool {
        self.groups.as_ref().is_none_or(|g| g[a] == g[b])
    }

    fn delay(&mut self) -> u64 {
        if self.faulty && self.rng.gen_range(0..20) == 0 {
            self.rng.gen_range(60..250)
        } else {
            self.rng.gen_range(2..40)
        }
    }

    fn trace_event(&mut self, tag: &[u8], data: &[u8]) {
        let mut bytes = Vec::with_capacity(48 + data.len());
        bytes.extend_from_slice(&self.trace);
        bytes.extend_from_slice(tag);
        bytes.extend_from_slice(&self.now.to_le_bytes());
        bytes.extend_from_slice(data);
        self.trace = blake2_256(&bytes);
    }
}
