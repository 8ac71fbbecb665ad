//! ed25519 keys for native accounts and validators, with Substrate's secret URIs.
//!
//! A secret URI is `PHRASE_OR_SEED[//hard...][///password]`, as in Substrate: `//Alice` is the
//! development phrase [`DEV_PHRASE`] with the hard junction `Alice`. Derivation follows
//! Substrate's ed25519 exactly, so the same URI gives the same key in both:
//!
//! ```text
//! seed      = PBKDF2-HMAC-SHA512(bip39 entropy, "mnemonic" ++ password, 2048)[0..32]
//! chaincode = SCALE(junction) zero-padded to 32 bytes (blake2_256 of it when longer);
//!             a junction that parses as u64 is encoded as that u64
//! hard(j)   : seed = blake2_256(SCALE("Ed25519HDKD") ++ seed ++ chaincode(j))
//! ```
//!
//! ed25519 has no soft derivation: `/soft` junctions are refused.

use parity_scale_codec::{Decode, Encode, MaxEncodedLen};
use std::fmt;
use zeroize::Zeroizing;

use crate::hashing::{blake2_256, keccak_256};
use crate::{Address, Error, Result};

/// Substrate's development phrase, the root of `//Alice`, `//Bob`, ...
pub const DEV_PHRASE: &str = "bottom drive obey lake curtain smoke basket hold race lonely fit walk";

/// An ed25519 public key (32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode, MaxEncodedLen)]
pub struct Public(pub [u8; 32]);

/// An ed25519 signature (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Encode, Decode, MaxEncodedLen)]
pub struct Signature(pub [u8; 64]);

impl Public {
    /// The native address of this key: the last 20 bytes of `keccak256(public key)`.
    pub fn address(&self) -> Address {
        let digest = keccak_256(&self.0);
        let mut out = [0u8; 20];
        out.copy_from_slice(&digest[12..]);
        Address(out)
    }

    /// Checks `signature` over `message` by ZIP-215's rule, the one rule used everywhere
    /// (extrinsics, consensus votes): cofactored equation, any point encoding that decodes.
    /// [`verify_batch`] agrees with it on every input. Never panics.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        let Ok(key) = ed25519_zebra::VerificationKey::try_from(self.0) else {
            return false;
        };
        key.verify(&ed25519_zebra::Signature::from_bytes(&signature.0), message).is_ok()
    }

    /// `0x`-prefixed hex.
    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.0))
    }
}

impl std::str::FromStr for Public {
    type Err = String;

    /// Parses hex of exactly 32 bytes, with or without `0x`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bytes = hex::decode(s.strip_prefix("0x").unwrap_or(s)).map_err(|e| format!("{s:?}: {e}"))?;
        let key: [u8; 32] =
            bytes.try_into().map_err(|b: Vec<u8>| format!("{s:?}: expected 32 bytes, got {}", b.len()))?;
        Ok(Public(key))
    }
}

impl serde::Serialize for Public {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Public {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for Public {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

/// Checks many signatures at once: true exactly when [`Public::verify`] holds for every
/// `(key, message, signature)`. Cheaper than one by one for more than a few signatures.
///
/// The batch's random coefficients come from a hash of all inputs (derandomised batch
/// verification), so the result is deterministic; a signer cannot choose them because they
/// depend on the signatures themselves.
pub fn verify_batch(items: &[(Public, &[u8], Signature)]) -> bool {
    use rand::SeedableRng;
    if items.len() < 4 {
        return items.iter().all(|(key, message, signature)| key.verify(message, signature));
    }
    let mut transcript = Vec::with_capacity(items.len() * 128);
    let mut batch = ed25519_zebra::batch::Verifier::new();
    for (key, message, signature) in items {
        let Ok(key_bytes) = ed25519_zebra::VerificationKeyBytes::try_from(&key.0[..]) else {
            return false;
        };
        transcript.extend_from_slice(&key.0);
        transcript.extend_from_slice(&signature.0);
        transcript.extend_from_slice(&blake2_256(message));
        batch.queue((key_bytes, ed25519_zebra::Signature::from_bytes(&signature.0), message));
    }
    let rng = rand::rngs::StdRng::from_seed(blake2_256(&transcript));
    batch.verify(rng).is_ok()
}

/// An ed25519 key pair. The secret seed is wiped from memory when dropped.
#[derive(Clone)]
pub struct Pair {
    signing: ed25519_dalek::SigningKey,
}

impl Pair {
    /// The pair of a 32-byte secret seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self { signing: ed25519_dalek::SigningKey::from_bytes(seed) }
    }

    /// A fresh random pair and the 12-word phrase it comes from.
    pub fn generate() -> (Self, String) {
        let mnemonic = bip39::Mnemonic::generate(12).expect("12 words is a valid bip39 length");
        let phrase = mnemonic.to_string();
        let pair = Self::from_string(&phrase).expect("a generated phrase parses");
        (pair, phrase)
    }

    /// The pair of a secret URI: `//Alice`, `PHRASE//hard///password`, or `0x` + 64 hex seed
    /// (junctions allowed after either).
    pub fn from_string(suri: &str) -> Result<Self> {
        let (root, junctions, password) = split_uri(suri)?;
        let mut seed = Zeroizing::new(if let Some(hex_seed) = root.strip_prefix("0x") {
            let bytes =
                hex::decode(hex_seed).map_err(|e| Error::SecretUri(format!("seed is not hex: {e}")))?;
            <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| Error::SecretUri("a hex seed must be 32 bytes".into()))?
        } else {
            phrase_seed(root, password.unwrap_or(""))?
        });
        for junction in junctions {
            *seed = derive_hard(&seed, &chain_code(junction));
        }
        Ok(Self::from_seed(&seed))
    }

    /// The public key.
    pub fn public(&self) -> Public {
        Public(self.signing.verifying_key().to_bytes())
    }

    /// The secret seed. Handle with care.
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        use ed25519_dalek::Signer;
        Signature(self.signing.sign(message).to_bytes())
    }
}

impl fmt::Debug for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pair({:?})", self.public())
    }
}

/// Splits a secret URI into its root, hard junctions and password.
fn split_uri(suri: &str) -> Result<(&str, Vec<&str>, Option<&str>)> {
    let (rest, password) = match suri.split_once("///") {
        Some((rest, password)) => (rest, Some(password)),
        None => (suri, None),
    };
    let (root, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let root = if root.trim().is_empty() { DEV_PHRASE } else { root.trim() };
    let mut junctions = Vec::new();
    let mut remaining = path;
    while !remaining.is_empty() {
        let Some(after) = remaining.strip_prefix("//") else {
            return Err(Error::SecretUri(
                "ed25519 supports only hard junctions (`//name`), not soft ones (`/name`)".into(),
            ));
        };
        let end = after.find('/').unwrap_or(after.len());
        if end == 0 {
            return Err(Error::SecretUri("empty junction".into()));
        }
        junctions.push(&after[..end]);
        remaining = &after[end..];
    }
    Ok((root, junctions, password))
}

/// The 32-byte mini secret of a bip39 phrase, as `substrate-bip39` computes it.
fn phrase_seed(phrase: &str, password: &str) -> Result<[u8; 32]> {
    let mnemonic = bip39::Mnemonic::parse_in_normalized(bip39::Language::English, phrase)
        .map_err(|e| Error::SecretUri(format!("not a bip39 phrase: {e}")))?;
    let entropy = Zeroizing::new(mnemonic.to_entropy());
    let salt = Zeroizing::new(format!("mnemonic{password}"));
    let mut seed = Zeroizing::new([0u8; 64]);
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(&entropy, salt.as_bytes(), 2048, seed.as_mut());
    let mut out = [0u8; 32];
    out.copy_from_slice(&seed[..32]);
    Ok(out)
}

/// A junction's chain code: its SCALE encoding (as u64 when numeric), padded or hashed to 32.
fn chain_code(junction: &str) -> [u8; 32] {
    let encoded = match junction.parse::<u64>() {
        Ok(n) => n.encode(),
        Err(_) => junction.encode(),
    };
    if encoded.len() > 32 {
        blake2_256(&encoded)
    } else {
        let mut code = [0u8; 32];
        code[..encoded.len()].copy_from_slice(&encoded);
        code
    }
}

/// Substrate's ed25519 hard derivation step.
fn derive_hard(seed: &[u8; 32], chain_code: &[u8; 32]) -> [u8; 32] {
    ("Ed25519HDKD", seed, chain_code).using_encoded(blake2_256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alice_matches_substrate() {
        let alice = Pair::from_string("//Alice").unwrap();
        assert_eq!(
            hex::encode(alice.public().0),
            "88dc3417d5058ec4b4503e0c12ea1a0a89be200fe98922423d4334014fa6b0ee"
        );
        let bob = Pair::from_string("//Bob").unwrap();
        assert_eq!(
            hex::encode(bob.public().0),
            "d17c2d7823ebf260fd138f2d7e27d114c0145d968b5ff5006125f2414fadae69"
        );
    }

    #[test]
    fn uri_forms() {
        let by_phrase = Pair::from_string(&format!("{DEV_PHRASE}//Alice")).unwrap();
        assert_eq!(by_phrase.public(), Pair::from_string("//Alice").unwrap().public());
        let seed = Pair::from_string("//Alice").unwrap().seed();
        let by_seed = Pair::from_string(&format!("0x{}", hex::encode(seed))).unwrap();
        assert_eq!(by_seed.public(), by_phrase.public());
        assert!(Pair::from_string("//Alice/soft").is_err());
        assert!(Pair::from_string("not a phrase").is_err());
        assert!(Pair::from_string("0x1234").is_err());
        assert_ne!(
            Pair::from_string("//Alice///pw").unwrap().public(),
            Pair::from_string("//Alice").unwrap().public()
        );
    }

    #[test]
    fn sign_verify() {
        let pair = Pair::from_string("//Charlie").unwrap();
        let sig = pair.sign(b"hello");
        assert!(pair.public().verify(b"hello", &sig));
        assert!(!pair.public().verify(b"hullo", &sig));
        assert!(!Public([0xff; 32]).verify(b"hello", &sig));
    }

    /// A signature under a key with a small-order component (`A' = aB + T`, `T` of order 8):
    /// valid by the cofactored equation, invalid by the cofactorless one. Such signatures are
    /// where single and batch verification disagree in other ed25519 implementations.
    fn torsion_signature(seed: u8, message: &[u8]) -> (Public, Signature) {
        use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
        use curve25519_dalek::Scalar;
        use sha2::{Digest, Sha512};
        let a = Scalar::from_bytes_mod_order([seed.wrapping_add(7); 32]);
        let r = Scalar::from_bytes_mod_order([seed.wrapping_add(91); 32]);
        let key = (ED25519_BASEPOINT_POINT * a + EIGHT_TORSION[1]).compress().to_bytes();
        let r_point = (ED25519_BASEPOINT_POINT * r).compress().to_bytes();
        let k =
            Scalar::from_hash(Sha512::new().chain_update(r_point).chain_update(key).chain_update(message));
        let s = r + k * a;
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&r_point);
        signature[32..].copy_from_slice(s.as_bytes());
        (Public(key), Signature(signature))
    }

    #[test]
    fn single_and_batch_agree_on_small_order_components() {
        let (key, signature) = torsion_signature(1, b"vote");
        assert!(key.verify(b"vote", &signature), "ZIP-215 accepts the cofactored equation");
        let pair = Pair::from_string("//Alice").unwrap();
        let good = (pair.public(), &b"ok"[..], pair.sign(b"ok"));
        let mut items = vec![good; 4];
        items.push((key, &b"vote"[..], signature));
        assert!(verify_batch(&items));
        items.push((key, &b"other"[..], signature));
        assert!(!verify_batch(&items));
    }

    /// One case of the agreement property: `n` signatures, each possibly damaged.
    #[derive(Clone, Debug)]
    struct Batch(Vec<(u8, u8)>);

    impl quickcheck::Arbitrary for Batch {
        fn arbitrary(g: &mut quickcheck::Gen) -> Self {
            let n = usize::arbitrary(g) % 12;
            Batch((0..n).map(|_| (u8::arbitrary(g), u8::arbitrary(g))).collect())
        }
    }

    quickcheck::quickcheck! {
        /// Batch verification says yes exactly when every single verification does.
        fn batch_agrees_with_single(batch: Batch) -> bool {
            let items: Vec<(Public, Vec<u8>, Signature)> = batch.0.iter().map(|&(seed, damage)| {
                let message = vec![seed; 3];
                let (key, mut signature) = if seed % 3 == 0 {
                    torsion_signature(seed, &message)
                } else {
                    let pair = Pair::from_seed(&[seed; 32]);
                    (pair.public(), pair.sign(&message))
                };
                // One in four signatures is damaged (a flipped bit in R or s).
                if damage % 4 == 0 {
                    signature.0[usize::from(damage / 4) % 64] ^= 1 << (damage % 8);
                }
                (key, message, signature)
            }).collect();
            let borrowed: Vec<(Public, &[u8], Signature)> =
                items.iter().map(|(k, m, s)| (*k, m.as_slice(), *s)).collect();
            let single = borrowed.iter().all(|(k, m, s)| k.verify(m, s));
            verify_batch(&borrowed) == single
        }
    }
}
