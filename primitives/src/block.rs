//! Headers, blocks and receipts.
//!
//! ```text
//! Header  = parent_hash (32) ++ number (u64) ++ timestamp_ms (u64) ++ state_root (32)
//!           ++ extrinsics_root (32) ++ receipts_root (32) ++ proposer (20)
//!           ++ gas_used (u64) ++ weight_used (u64)
//! Block   = Header ++ Vec<Extrinsic> ++ Option<Certificate>
//! Receipt = success (bool) ++ error (Option<DispatchError>) ++ fee (u128) ++ weight (u64)
//!           ++ Vec<EventRecord>
//! ```
//!
//! A block's hash is its header's hash, `blake2_256(SCALE(header))`. The consensus certificate
//! travels with the block but outside the header, so it is not hashed: the same block can be
//! finalized by different sets of signatures.

use parity_scale_codec::{Decode, Encode};

use crate::hashing::blake2_256;
use crate::{Address, Balance, BlockNumber, DispatchError, EventRecord, Extrinsic, Hash, Weight};

/// Largest certificate accepted when decoding a block from outside.
pub const MAX_CERTIFICATE_BYTES: usize = 1 << 20;

/// A block header.
#[derive(Clone, PartialEq, Eq, Debug, Default, Encode, Decode)]
pub struct Header {
    /// Hash of the parent block's header (zero for genesis).
    pub parent_hash: Hash,
    /// Height; genesis is 0.
    pub number: BlockNumber,
    /// When the block was proposed, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// State root after executing the block.
    pub state_root: Hash,
    /// Ordered trie root of the SCALE-encoded extrinsics.
    pub extrinsics_root: Hash,
    /// Ordered trie root of the SCALE-encoded receipts.
    pub receipts_root: Hash,
    /// The sequencer that proposed the block; it receives the proposer's share of fees.
    pub proposer: Address,
    /// Gas used by the block's Ethereum transactions.
    pub gas_used: u64,
    /// Weight used by the block's native extrinsics.
    pub weight_used: Weight,
}

impl Header {
    /// `blake2_256(SCALE(header))`.
    pub fn hash(&self) -> Hash {
        Hash(self.using_encoded(blake2_256))
    }
}

/// Opaque consensus certificate (commit signatures); its format belongs to consensus.
pub type Certificate = Vec<u8>;

/// A block: header, extrinsics, and (outside the hashed part) its certificate.
#[derive(Clone, PartialEq, Eq, Debug, Default, Encode, Decode)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// The extrinsics, in execution order.
    pub extrinsics: Vec<Extrinsic>,
    /// Proof of finality, when consensus produced one.
    pub certificate: Option<Certificate>,
}

impl Block {
    /// The block's hash: its header's hash.
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }
}

/// The outcome of one extrinsic.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub struct Receipt {
    /// Whether the call succeeded. A failed call's state changes are reverted, but its fee is
    /// paid and its nonce used.
    pub success: bool,
    /// Why it failed, if it did.
    pub error: Option<DispatchError>,
    /// Total fee paid, tip included.
    pub fee: Balance,
    /// Weight (native) or gas (Ethereum) used.
    pub weight: Weight,
    /// Events emitted, in order.
    pub events: Vec<EventRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Call, EthPair, Pair, SignedExtrinsic, Signer};
    use parity_scale_codec::DecodeAll;
    use quickcheck::{quickcheck, Arbitrary, Gen};

    impl Arbitrary for Header {
        fn arbitrary(g: &mut Gen) -> Self {
            Self {
                parent_hash: Hash::arbitrary(g),
                number: u64::arbitrary(g),
                timestamp_ms: u64::arbitrary(g),
                state_root: Hash::arbitrary(g),
                extrinsics_root: Hash::arbitrary(g),
                receipts_root: Hash::arbitrary(g),
                proposer: Address::arbitrary(g),
                gas_used: u64::arbitrary(g),
                weight_used: u64::arbitrary(g),
            }
        }
    }

    impl Arbitrary for Block {
        fn arbitrary(g: &mut Gen) -> Self {
            Self {
                header: Header::arbitrary(g),
                extrinsics: Vec::arbitrary(g),
                certificate: Option::arbitrary(g),
            }
        }
    }

    impl Arbitrary for Receipt {
        fn arbitrary(g: &mut Gen) -> Self {
            Self {
                success: bool::arbitrary(g),
                error: Option::arbitrary(g),
                fee: u128::arbitrary(g),
                weight: u64::arbitrary(g),
                events: Vec::arbitrary(g),
            }
        }
    }

    fn round_trips<T: Encode + Decode + PartialEq>(value: T) -> bool {
        T::decode_all(&mut &value.encode()[..]).ok() == Some(value)
    }

    quickcheck! {
        fn header_round_trip(h: Header) -> bool { round_trips(h) }
        fn block_round_trip(b: Block) -> bool { round_trips(b) }
        fn receipt_round_trip(r: Receipt) -> bool { round_trips(r) }
        fn extrinsic_round_trip(x: Extrinsic) -> bool { round_trips(x) }
        fn event_round_trip(e: EventRecord) -> bool { round_trips(e) }
        fn address_round_trip(a: Address) -> bool { round_trips(a) }
        fn certificate_outside_hash(b: Block, c: Vec<u8>) -> bool {
            let mut other = b.clone();
            other.certificate = Some(c);
            other.hash() == b.hash()
        }
    }

    fn golden_extrinsic() -> Extrinsic {
        let alice = Pair::from_string("//Alice").unwrap();
        let call = Call { pallet: 1, call: 0, args: vec![7; 4] };
        Extrinsic::Native(SignedExtrinsic::sign(&alice, Hash([1; 32]), 5, 2, call))
    }

    fn golden_ethereum_signed() -> Extrinsic {
        let key =
            EthPair::from_hex("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80").unwrap();
        let call = Call { pallet: 1, call: 0, args: vec![7; 4] };
        Extrinsic::Native(SignedExtrinsic::sign_ethereum(&key, Hash([1; 32]), 5, 2, call))
    }

    /// Fixed encodings: a change here breaks every stored block and every client.
    #[test]
    fn golden_encodings() {
        let header = Header {
            parent_hash: Hash([1; 32]),
            number: 2,
            timestamp_ms: 3,
            state_root: Hash([4; 32]),
            extrinsics_root: Hash([5; 32]),
            receipts_root: Hash([6; 32]),
            proposer: Address([7; 20]),
            gas_used: 8,
            weight_used: 9,
        };
        let expected_header = format!(
            "{}{}{}{}{}{}{}{}{}",
            "01".repeat(32),
            "0200000000000000",
            "0300000000000000",
            "04".repeat(32),
            "05".repeat(32),
            "06".repeat(32),
            "07".repeat(20),
            "0800000000000000",
            "0900000000000000",
        );
        assert_eq!(hex::encode(header.encode()), expected_header);

        let eth = Extrinsic::Ethereum(vec![0xaa, 0xbb]);
        assert_eq!(hex::encode(eth.encode()), "0108aabb");

        let native = golden_extrinsic();
        let encoded = hex::encode(native.encode());
        // variant, signer kind and key, then the signature (deterministic for ed25519), nonce,
        // tip, call.
        assert!(encoded.starts_with("000088dc3417d5058ec4b4503e0c12ea1a0a89be200fe98922423d4334014fa6b0ee"));
        assert!(encoded.ends_with(&format!(
            "{}{}{}",
            "0500000000000000", "02000000000000000000000000000000", "01001007070707"
        )));
        assert_eq!(encoded.len(), 2 * (1 + 1 + 32 + 64 + 8 + 16 + 7));

        // An Ethereum signer: address, then r ++ s ++ v (RFC 6979, so deterministic too). The
        // signature is what ethers' `signMessage(getBytes(keccak256(payload)))` gives.
        let eth_signed = golden_ethereum_signed();
        assert_eq!(
            hex::encode(eth_signed.encode()),
            format!(
                "{}{}{}{}{}{}",
                "0001",
                "f39fd6e51aad88f6f4ce6ab8827279cfffb92266",
                "3ead9ae30c8c36ffcb5158ffe1a9b4c3ffa34f04e998f505d3134049ab63f634\
                 4b30e893f1424bd88a261fa0939e57d3fd333c609eb07b184689427c960051ef1b",
                "0500000000000000",
                "02000000000000000000000000000000",
                "01001007070707"
            )
        );

        let block = Block { header: header.clone(), extrinsics: vec![eth], certificate: None };
        assert_eq!(hex::encode(block.encode()), format!("{expected_header}04010 8aabb00").replace(' ', ""));

        let receipt = Receipt {
            success: false,
            error: Some(DispatchError::Module { pallet: 1, error: 2 }),
            fee: 3,
            weight: 4,
            events: vec![EventRecord { pallet: 1, event: 0, data: vec![9] }],
        };
        assert_eq!(
            hex::encode(receipt.encode()),
            "00010401020300000000000000000000000000000004000000000000000401000409"
        );
    }

    #[test]
    fn signature_binds_genesis() {
        for xt in [golden_extrinsic(), golden_ethereum_signed()] {
            let Extrinsic::Native(x) = xt else { unreachable!() };
            assert!(x.verify(Hash([1; 32])));
            assert!(!x.verify(Hash([2; 32])));
            let mut tampered = x.clone();
            tampered.nonce += 1;
            assert!(!tampered.verify(Hash([1; 32])));
            let mut tampered = x.clone();
            tampered.call.args.push(0);
            assert!(!tampered.verify(Hash([1; 32])));
        }
    }

    #[test]
    fn ethereum_signer_must_be_the_recovered_address() {
        let Extrinsic::Native(x) = golden_ethereum_signed() else { unreachable!() };
        assert_eq!(x.sender().to_string(), "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266");
        let mut claimed = x.clone();
        let Signer::Ethereum { address, .. } = &mut claimed.signer else { unreachable!() };
        address.0[0] ^= 1;
        assert!(!claimed.verify(Hash([1; 32])), "a signature by one key claimed for another address");
    }
}
