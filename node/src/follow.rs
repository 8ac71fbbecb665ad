//! A node without a validator key follows the chain: it learns from consensus gossip how far
//! the validators are, asks a peer for the blocks it lacks (request-response), verifies each
//! block's commit certificate against the validator set of its height, executes and imports
//! it. It also pools and relays gossiped transactions and relays checked consensus messages
//! and blocks, and answers other nodes' sync requests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyperion_consensus::{ChainId, CommitCertificate, Height, Message, ValidatorSet};
use hyperion_primitives::Block;
use tokio::sync::mpsc;

use crate::consensus::{answer_sync, note_height, note_peers, validator_set_at, SyncProgress};
use crate::network::{Misbehaviour, NetworkEvent, NetworkHandle, SyncRequest, Topic, MAX_SYNC_BLOCKS};
use crate::service::{decode_block, Node};
use crate::transactions::TransactionFeeder;
use crate::{Error, Result};

/// Follows the chain until the network stops.
pub async fn run(node: Arc<Node>, network: NetworkHandle, mut events: mpsc::Receiver<NetworkEvent>) {
    let chain = ChainId(node.genesis_hash);
    let mut asked: Option<Instant> = None;
    let mut set: Option<(Height, ValidatorSet)> = None;
    let mut progress = SyncProgress::default();
    // Who may sign consensus messages (membership does not change with the height).
    let validators = match node.spec.validator_set() {
        Ok(validators) => validators,
        Err(error) => {
            tracing::error!(target: "hyperion::sync", %error, "the chain spec has no valid validator set; not following");
            return;
        }
    };
    let transactions = TransactionFeeder::start(node.clone(), network.clone());
    while let Some(event) = events.recv().await {
        note_peers(&node, &event);
        match event {
            NetworkEvent::Message { source, id, topic, data } => {
                let valid = match topic {
                    Topic::Transactions => {
                        transactions.offer(source, id, data);
                        continue;
                    }
                    Topic::Blocks => decode_block(&data).is_ok(),
                    Topic::Consensus => match Message::decode_bounded(&data) {
                        Ok(message) if signed_by_a_validator(&message, chain, &validators) => {
                            note_height(&node, message.height().saturating_sub(1));
                            let best = node.best_header().number;
                            let idle = asked.is_none_or(|at| at.elapsed() > Duration::from_secs(1));
                            if message.height() > best + 1 && idle {
                                asked = Some(Instant::now());
                                network.request_blocks(
                                    source,
                                    SyncRequest { from: best + 1, count: MAX_SYNC_BLOCKS },
                                );
                            }
                            true
                        }
                        _ => false,
                    },
                };
                network.report(id, source, valid);
            }
            NetworkEvent::SyncRequest { request, channel, .. } => {
                answer_sync(node.clone(), network.clone(), request, channel)
            }
            NetworkEvent::SyncResponse { peer, blocks } => {
                asked = None;
                let imported = import_synced(&node, chain, &mut set, blocks).await;
                match imported {
                    Ok(count) if count > 0 => {
                        progress.imported(&node, count as u64);
                        let best = node.best_header().number;
                        let target = node.sync.target.load(std::sync::atomic::Ordering::Relaxed);
                        if best + 1 < target {
                            asked = Some(Instant::now());
                            network
                                .request_blocks(peer, SyncRequest { from: best + 1, count: MAX_SYNC_BLOCKS });
                        }
                    }
                    Ok(_) => {}
                    Err((error, why)) => {
                        tracing::warn!(target: "hyperion::sync", %peer, %error, "refused synced blocks");
                        if let Some(why) = why {
                            network.penalize(peer, why);
                        }
                    }
                }
            }
            // A new peer may be ahead: ask it (an empty answer costs little).
            NetworkEvent::Connected(peer) => {
                asked = Some(Instant::now());
                let from = node.best_header().number + 1;
                network.request_blocks(peer, SyncRequest { from, count: MAX_SYNC_BLOCKS });
            }
            NetworkEvent::Disconnected(_) => {}
        }
    }
}

/// Whether a consensus message is signed by one of `validators`.
fn signed_by_a_validator(message: &Message, chain: ChainId, validators: &ValidatorSet) -> bool {
    let signer = message.signer();
    validators.power_of(&signer) > 0 && signer.verify(&message.payload(chain), &message.signature())
}

/// Imports the blocks of a sync answer that extend the best block, each only with a
/// certificate that verifies; returns how many were imported. On an error, says whether the
/// peer is to blame: for bytes that are not a block, or a block without a valid certificate.
async fn import_synced(
    node: &Arc<Node>,
    chain: ChainId,
    set: &mut Option<(Height, ValidatorSet)>,
    blocks: Vec<Vec<u8>>,
) -> std::result::Result<usize, (Error, Option<Misbehaviour>)> {
    let mut imported = 0;
    for bytes in blocks {
        let block = decode_block(&bytes)
            .map_err(|e| (Error::Io(format!("synced block: {e}")), Some(Misbehaviour::InvalidMessage)))?;
        let number = block.header.number;
        if number != node.best_header().number + 1 {
            continue;
        }
        let validators = set_for(node, set, number).map_err(|e| (e, None))?;
        check_certificate(&block, chain, validators).map_err(|e| (e, Some(Misbehaviour::BadBlock)))?;
        let node = node.clone();
        tokio::task::spawn_blocking(move || node.import_block(block))
            .await
            .map_err(|e| Error::Io(format!("importing a synced block: {e}")))
            .and_then(|imported| imported)
            .map_err(|e| (e, None))?;
        imported += 1;
    }
    Ok(imported)
}

/// The validator set of `height`, advanced from the last one asked for.
fn set_for<'a>(
    node: &Node,
    cached: &'a mut Option<(Height, ValidatorSet)>,
    height: Height,
) -> Result<&'a ValidatorSet> {
    match cached {
        Some((at, set)) if *at <= height => {
            for _ in *at..height {
                set.advance();
            }
            *at = height;
        }
        _ => *cached = Some((height, validator_set_at(node, height)?)),
    }
    Ok(&cached.as_ref().expect("just set").1)
}

/// A synced block must carry a certificate for itself, at its height, that verifies against
/// the validator set of that height.
fn check_certificate(block: &Block, chain: ChainId, set: &ValidatorSet) -> Result<()> {
    let number = block.header.number;
    let bytes = block
        .certificate
        .as_deref()
        .ok_or_else(|| Error::Io(format!("block {number} has no certificate")))?;
    let certificate =
        CommitCertificate::decode_bounded(bytes).map_err(|e| Error::Io(format!("block {number}: {e}")))?;
    if certificate.height != number || certificate.value != block.hash() {
        return Err(Error::Io(format!("block {number}: the certificate is for another block")));
    }
    certificate.verify(chain, set).map_err(|e| Error::Io(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyperion_consensus::{SignedVote, Validator, Vote, VoteKind};
    use hyperion_primitives::{Hash, Header, Pair};
    use parity_scale_codec::Encode;

    fn certified_block(signers: &[Pair], chain: ChainId) -> Block {
        let header = Header { number: 1, parent_hash: Hash([1; 32]), ..Header::default() };
        let value = header.hash();
        let precommits: Vec<SignedVote> = signers
            .iter()
            .map(|k| {
                SignedVote::sign(
                    chain,
                    Vote { height: 1, round: 0, kind: VoteKind::Precommit, value: Some(value) },
                    k,
                )
            })
            .collect();
        let certificate = CommitCertificate::from_precommits(1, 0, value, &precommits);
        Block { header, extrinsics: vec![], certificate: Some(certificate.encode()) }
    }

    #[test]
    fn synced_blocks_need_a_certificate_for_themselves_that_verifies() {
        let chain = ChainId(Hash([5; 32]));
        let keys: Vec<Pair> = (1..=4).map(|i| Pair::from_seed(&[i; 32])).collect();
        let set =
            ValidatorSet::new(keys.iter().map(|k| Validator { public: k.public(), power: 1 }).collect())
                .unwrap();
        let good = certified_block(&keys[..3], chain);
        check_certificate(&good, chain, &set).unwrap();

        let too_few = certified_block(&keys[..2], chain);
        assert!(check_certificate(&too_few, chain, &set).is_err(), "2 of 4 signatures");
        assert!(check_certificate(&good, ChainId(Hash::ZERO), &set).is_err(), "another chain");
        let mut other = good.clone();
        other.header.timestamp_ms = 9;
        assert!(check_certificate(&other, chain, &set).is_err(), "the certificate of another block");
        let mut none = good.clone();
        none.certificate = None;
        assert!(check_certificate(&none, chain, &set).is_err(), "no certificate");
        let mut garbage = good;
        garbage.certificate = Some(vec![0xff; 40]);
        assert!(check_certificate(&garbage, chain, &set).is_err(), "undecodable certificate");
    }
}
