//! What Byzantine validators do with the messages their own (honest) engine produces.

use hyperion_consensus::{Message, SignedProposal, SignedVote, Vote};
use hyperion_primitives::hashing::blake2_256;
use hyperion_primitives::{Hash, Signature};
use parity_scale_codec::Encode;
use rand::Rng;

use super::{Sim, CHAIN};

/// A validator's behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Follows the protocol.
    Honest,
    /// Proposes two different blocks in its rounds, one to each half of its peers.
    EquivocatingProposer,
    /// Signs a second, different vote for every vote, one to each half of its peers.
    DoubleVoter,
    /// Votes nil whatever it sees.
    NilVoter,
    /// Sends old messages (of earlier rounds and heights) along with its own.
    Replayer,
    /// Sends its messages with broken signatures to some peers, and forges votes in the names
    /// of others.
    BadSignatures,
    /// With the other Byzantine validators, shows one half of the honest validators one
    /// chain and the other half another (for runs beyond the fault bound).
    Coordinated,
}

impl Sim {
    /// Sends what node `from`'s engine broadcast, the way its behaviour dictates.
    pub(super) fn send_as(&mut self, from: usize, message: Message) {
        // Votes of others it relays go out as they are.
        let behaviour = match message.signer() == self.nodes[from].key.public() {
            true => self.nodes[from].behaviour,
            false => Behaviour::Honest,
        };
        let peers: Vec<usize> = (0..self.nodes.len()).filter(|&p| p != from).collect();
        match (behaviour, message) {
            (Behaviour::EquivocatingProposer, Message::Proposal(p)) => {
                let mut other = p.proposal;
                other.value = self.new_block(other.height, b"equivocation");
                let twin = Message::Proposal(SignedProposal::sign(CHAIN, other, &self.nodes[from].key));
                self.split(from, &peers, message, twin);
            }
            (Behaviour::DoubleVoter, Message::Vote(v)) => {
                let value = match v.vote.value {
                    Some(_) if self.rng.gen_bool(0.5) => None,
                    _ => Some(self.new_block(v.vote.height, b"double vote")),
                };
                let twin = self.resign(from, Vote { value, ..v.vote });
                self.split(from, &peers, message, twin);
            }
            (Behaviour::NilVoter, Message::Vote(v)) => {
                let nil = self.resign(from, Vote { value: None, ..v.vote });
                for to in peers {
                    self.send(from, to, &nil, false);
                }
            }
            (Behaviour::Replayer, _) => {
                for &to in &peers {
                    self.send(from, to, &message, false);
                }
                self.nodes[from].history.push(message);
                for _ in 0..3 {
                    let history = &self.nodes[from].history;
                    let old = history[self.rng.gen_range(0..history.len())];
                    let to = peers[self.rng.gen_range(0..peers.len())];
                    self.send(from, to, &old, false);
                }
                let len = self.nodes[from].history.len();
                if len > 512 {
                    self.nodes[from].history.drain(..len - 512);
                }
            }
            (Behaviour::BadSignatures, _) => {
                for &to in &peers {
                    let corrupt = self.rng.gen_bool(0.3);
                    self.send(from, to, &message, corrupt);
                }
                // A vote in an honest validator's name, for a block nobody proposed.
                let victim = peers[self.rng.gen_range(0..peers.len())];
                let vote = Vote {
                    height: message.height(),
                    round: message.round(),
                    kind: hyperion_consensus::VoteKind::Precommit,
                    value: Some(Hash(blake2_256(&self.rng.gen::<u64>().encode()))),
                };
                let forged = Message::Vote(SignedVote {
                    vote,
                    validator: self.nodes[victim].key.public(),
                    signature: Signature([0x5a; 64]),
                });
                for &to in &peers {
                    self.send(from, to, &forged, false);
                }
            }
            (Behaviour::Coordinated, _) => {
                let shadow = self.shadow(message);
                let honest_sides: Vec<usize> =
                    peers.iter().copied().filter(|&p| self.nodes[p].behaviour == Behaviour::Honest).collect();
                for &to in &peers {
                    let side = honest_sides.iter().position(|&p| p == to).map(|k| k % 2);
                    let m = if side == Some(1) { shadow } else { message };
                    self.send(from, to, &m, false);
                }
            }
            _ => {
                for to in peers {
                    self.send(from, to, &message, false);
                }
            }
        }
    }

    /// `first` to peers of even position, `second` to the others.
    fn split(&mut self, from: usize, peers: &[usize], first: Message, second: Message) {
        for (k, &to) in peers.iter().enumerate() {
            let m = if k % 2 == 0 { first } else { second };
            self.send(from, to, &m, false);
        }
    }

    fn resign(&self, from: usize, vote: Vote) -> Message {
        Message::Vote(SignedVote::sign(CHAIN, vote, &self.nodes[from].key))
    }

    /// The coalition's other chain: at each (height, round) one shadow block, which the
    /// coalition proposes and votes for towards the second half of the honest validators.
    fn shadow(&mut self, message: Message) -> Message {
        let (height, round) = (message.height(), message.round());
        let value = Hash(blake2_256(&(b"shadow", height, round).encode()));
        self.blocks.insert(value, height);
        let from = self.nodes.iter().position(|n| n.key.public() == message.signer()).expect("own message");
        match message {
            Message::Proposal(p) => {
                let proposal = hyperion_consensus::Proposal { value, pol_round: None, ..p.proposal };
                Message::Proposal(SignedProposal::sign(CHAIN, proposal, &self.nodes[from].key))
            }
            Message::Vote(v) => {
                let value = v.vote.value.map(|_| value);
                self.resign(from, Vote { value, ..v.vote })
            }
        }
    }
}
