//! Gossiped transactions (in batches, see [`crate::network::Topic::Transactions`]) are pooled
//! on a thread of their own, not on the consensus task: a
//! flood of them (each costs a signature check) must not delay votes and proposals. The queue
//! to that thread is bounded; when it is full, further transactions are ignored (neither
//! relayed nor held against their sender), as a full pool would.

use std::sync::Arc;

use libp2p::gossipsub::MessageId;
use libp2p::PeerId;
use tokio::sync::mpsc;

use crate::network::{NetworkHandle, Verdict};
use crate::service::{Node, SubmitError};
use hyperion_runtime::InvalidTransaction;

/// Gossiped transactions waiting to be checked.
const QUEUE: usize = 8192;

/// Hands gossiped transactions to the pooling thread.
#[derive(Clone)]
pub struct TransactionFeeder {
    queue: mpsc::Sender<(PeerId, MessageId, Vec<u8>)>,
    network: NetworkHandle,
}

impl TransactionFeeder {
    /// Starts the pooling thread.
    pub fn start(node: Arc<Node>, network: NetworkHandle) -> Self {
        let (queue, mut receiver) = mpsc::channel::<(PeerId, MessageId, Vec<u8>)>(QUEUE);
        let reporter = network.clone();
        std::thread::Builder::new()
            .name("gossip-transactions".into())
            .spawn(move || {
                while let Some((source, id, data)) = receiver.blocking_recv() {
                    reporter.report(id, source, batch_verdict(&node, &data));
                }
            })
            .expect("spawning the transaction thread");
        Self { queue, network }
    }

    /// Queues a gossiped transaction, or ignores it when the queue is full.
    pub fn offer(&self, source: PeerId, id: MessageId, data: Vec<u8>) {
        if let Err(mpsc::error::TrySendError::Full((source, id, _))) = self.queue.try_send((source, id, data))
        {
            self.network.report(id, source, Verdict::Ignore);
        }
    }
}

/// Pools a gossiped batch; its verdict: rejected when it does not decode or any of its
/// extrinsics is the sender's fault, relayed when any is new, else ignored.
pub fn batch_verdict(node: &Node, data: &[u8]) -> Verdict {
    let Some(batch) = crate::network::decode_transaction_batch(data) else { return Verdict::Reject };
    let mut result = Verdict::Ignore;
    for submitted in node.submit_batch_from_peer(&batch) {
        match verdict(submitted) {
            Verdict::Reject => return Verdict::Reject,
            Verdict::Accept => result = Verdict::Accept,
            Verdict::Ignore => {}
        }
    }
    result
}

/// Gossip's verdict on a transaction a peer relayed: bytes that are not a transaction of this
/// chain (undecodable, too large, badly signed, no such call) are the sender's fault; one that
/// is merely stale, cannot pay, or is pooled already is not relayed further.
pub fn verdict(result: std::result::Result<hyperion_primitives::Hash, SubmitError>) -> Verdict {
    match result {
        Ok(_) => Verdict::Accept,
        Err(SubmitError::Invalid(
            InvalidTransaction::Malformed(_)
            | InvalidTransaction::TooLarge { .. }
            | InvalidTransaction::BadSignature
            | InvalidTransaction::UnknownCall { .. }
            | InvalidTransaction::BadArguments,
        )) => Verdict::Reject,
        Err(_) => Verdict::Ignore,
    }
}
