//! Double-sign protection: the record of the last message this validator signed.
//!
//! The engine asks the guard before every signature. Signing is allowed only for a position
//! `(height, round, step)` after the last one signed; the same position with the same payload
//! gives back the stored signature (a resend after a restart), anything else is refused. The
//! engine emits [`crate::Output::Persist`] with the new record *before* the message it signed;
//! the node must make the record durable before it sends anything that follows. After a
//! restart the node hands the record back to [`crate::Engine::new`], which also restores the
//! lock, so a restarted validator never signs a conflicting vote. The record also keeps the
//! other messages signed at its height in its round and the round before, so that a restarted
//! validator can send them again: peers that missed them may need them to end the round.
//!
//! ```text
//! on disk: SCALE(SignRecord) ++ crc32(SCALE(SignRecord)) u32 LE
//! ```

use hyperion_primitives::{Hash, Signature};
use parity_scale_codec::{Decode, DecodeAll, Encode};

use crate::types::{ChainId, Height, Round, SignPayload, Step, DOMAIN};
use crate::{Error, Result};

/// One signed message of the record's height: what it covers and its signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Signed {
    /// Round signed in.
    pub round: Round,
    /// Step signed for.
    pub step: Step,
    /// The block signed for (`None`: nil).
    pub value: Option<Hash>,
    /// A proposal's valid round.
    pub pol_round: Option<Round>,
    /// The signature given.
    pub signature: Signature,
}

/// Most messages [`SignRecord::earlier`] keeps.
pub const MAX_EARLIER_SIGNED: usize = 5;

/// Largest durable record accepted.
const MAX_RECORD_BYTES: usize = 1024;

/// What this validator signed last, and its lock at that moment.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SignRecord {
    /// Height signed at.
    pub height: Height,
    /// Round signed in.
    pub round: Round,
    /// Step signed for.
    pub step: Step,
    /// The block signed for (`None`: nil).
    pub value: Option<Hash>,
    /// A proposal's valid round.
    pub pol_round: Option<Round>,
    /// The signature given.
    pub signature: Signature,
    /// The lock (round, block) when signing.
    pub locked: Option<(Round, Hash)>,
    /// The valid block (round, block) when signing.
    pub valid: Option<(Round, Hash)>,
    /// The other messages signed at this height in this round and the previous one, oldest
    /// first (at most [`MAX_EARLIER_SIGNED`]).
    pub earlier: Vec<Signed>,
}

impl SignRecord {
    /// The record's durable form: SCALE followed by its CRC-32.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = self.encode();
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Reads a durable record; a torn or damaged one is an error, never a default.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let damaged = |why: &str| Error::Decode(format!("sign record: {why}"));
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(damaged("too long"));
        }
        let Some(split) = bytes.len().checked_sub(4) else {
            return Err(damaged("too short"));
        };
        let (body, crc) = bytes.split_at(split);
        if crc32fast::hash(body).to_le_bytes() != crc {
            return Err(damaged("checksum mismatch"));
        }
        let record = Self::decode_all(&mut &body[..]).map_err(|e| damaged(&e.to_string()))?;
        if record.earlier.len() > MAX_EARLIER_SIGNED {
            return Err(damaged("too many earlier messages"));
        }
        Ok(record)
    }

    /// The last message signed.
    pub fn last(&self) -> Signed {
        let Self { round, step, value, pol_round, signature, .. } = *self;
        Signed { round, step, value, pol_round, signature }
    }
}

/// The guard's answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Permission {
    /// A new position: sign.
    Sign,
    /// Exactly what was signed last: send the same signature again.
    Repeat(Signature),
    /// At or before the last position with another payload: never.
    Refuse,
}

impl SignRecord {
    /// The payload the record's signature covers.
    pub fn payload(&self, chain: ChainId) -> SignPayload {
        SignPayload {
            domain: DOMAIN,
            chain,
            height: self.height,
            round: self.round,
            step: self.step,
            value: self.value,
            pol_round: self.pol_round,
        }
    }
}

/// May `payload` be signed after `last`?
pub(crate) fn permission(last: Option<&SignRecord>, payload: &SignPayload) -> Permission {
    let Some(last) = last else {
        return Permission::Sign;
    };
    let same = last.value == payload.value && last.pol_round == payload.pol_round;
    match (payload.height, payload.round, payload.step).cmp(&(last.height, last.round, last.step)) {
        std::cmp::Ordering::Greater => Permission::Sign,
        std::cmp::Ordering::Equal if same => Permission::Repeat(last.signature),
        _ => Permission::Refuse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> SignRecord {
        SignRecord {
            height: 10,
            round: 2,
            step: Step::Prevote,
            value: Some(Hash([3; 32])),
            pol_round: None,
            signature: Signature([4; 64]),
            locked: Some((1, Hash([5; 32]))),
            valid: None,
            earlier: vec![Signed {
                round: 2,
                step: Step::Propose,
                value: Some(Hash([6; 32])),
                pol_round: Some(1),
                signature: Signature([7; 64]),
            }],
        }
    }

    #[test]
    fn only_later_positions_are_signed() {
        let last = record();
        let chain = ChainId(Hash::ZERO);
        let p = |h, r, s, value: u8| {
            let payload = SignPayload {
                height: h,
                round: r,
                step: s,
                value: Some(Hash([value; 32])),
                ..last.payload(chain)
            };
            permission(Some(&last), &payload)
        };
        assert_eq!(p(10, 2, Step::Precommit, 9), Permission::Sign);
        assert_eq!(p(10, 3, Step::Propose, 9), Permission::Sign);
        assert_eq!(p(11, 0, Step::Propose, 9), Permission::Sign);
        assert_eq!(p(10, 2, Step::Prevote, 3), Permission::Repeat(Signature([4; 64])));
        assert_eq!(p(10, 2, Step::Prevote, 9), Permission::Refuse);
        assert_eq!(p(10, 2, Step::Propose, 3), Permission::Refuse);
        assert_eq!(p(9, 5, Step::Precommit, 3), Permission::Refuse);
        let nil = SignPayload { value: None, ..last.payload(chain) };
        assert_eq!(permission(Some(&last), &nil), Permission::Refuse);
        assert_eq!(permission(None, &nil), Permission::Sign);
    }

    #[test]
    fn durable_form_detects_damage() {
        let bytes = record().to_bytes();
        assert_eq!(SignRecord::from_bytes(&bytes).unwrap(), record());
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x10;
            assert!(SignRecord::from_bytes(&damaged).is_err(), "flip at {i}");
        }
        assert!(SignRecord::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(SignRecord::from_bytes(&[]).is_err());
    }
}
