//! secp256k1 keys: Ethereum accounts signing native extrinsics.
//!
//! An Ethereum key's account is its Ethereum address (the last 20 bytes of `keccak256` of the
//! uncompressed public key), the same [`Address`] its Ethereum transactions come from. It signs
//! a native extrinsic the way a wallet signs a message (EIP-191 `personal_sign`) over the 32-byte
//! `keccak256` of the signed payload, so ethers' `signMessage`, web3.py's `sign_message` or
//! MetaMask can sign native extrinsics:
//!
//! ```text
//! digest    = keccak256("\x19Ethereum Signed Message:\n32" ++ keccak256(payload))
//! signature = r (32) ++ s (32) ++ v (1), v = 27 + recovery id; s at most n/2 (EIP-2)
//! ```
//!
//! Only `v` in {27, 28} and low `s` are accepted, so every extrinsic has exactly one valid
//! encoding (and so one hash).

use k256::ecdsa::{RecoveryId, SigningKey, VerifyingKey};
use parity_scale_codec::{Decode, Encode, MaxEncodedLen};
use std::fmt;

use crate::hashing::keccak_256;
use crate::{Address, Error, Result};

/// A recoverable secp256k1 signature: `r ++ s ++ v` with `v` 27 or 28.
#[derive(Clone, Copy, PartialEq, Eq, Encode, Decode, MaxEncodedLen)]
pub struct EcdsaSignature(pub [u8; 65]);

impl fmt::Debug for EcdsaSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl EcdsaSignature {
    /// The address whose key made this signature over `digest`, or `None` when the signature is
    /// malformed, not canonical (high `s`, `v` not 27/28) or recovers no key. Never panics.
    pub fn recover(&self, digest: &[u8; 32]) -> Option<Address> {
        let recovery = match self.0[64] {
            27 => RecoveryId::from_byte(0)?,
            28 => RecoveryId::from_byte(1)?,
            _ => return None,
        };
        let signature = k256::ecdsa::Signature::from_slice(&self.0[..64]).ok()?;
        if signature.normalize_s().is_some() {
            return None; // high s: the malleable twin of a valid signature
        }
        let key = VerifyingKey::recover_from_prehash(digest, &signature, recovery).ok()?;
        Some(eth_address(&key))
    }
}

/// The EIP-191 `personal_sign` digest of a 32-byte message.
pub fn personal_sign_digest(message: &[u8; 32]) -> [u8; 32] {
    let mut prefixed = Vec::with_capacity(28 + 32);
    prefixed.extend_from_slice(b"\x19Ethereum Signed Message:\n32");
    prefixed.extend_from_slice(message);
    keccak_256(&prefixed)
}

/// The Ethereum address of a public key.
fn eth_address(key: &VerifyingKey) -> Address {
    let point = key.to_encoded_point(false);
    let digest = keccak_256(&point.as_bytes()[1..]);
    let mut out = [0u8; 20];
    out.copy_from_slice(&digest[12..]);
    Address(out)
}

/// A secp256k1 (Ethereum) key. The secret is wiped from memory when dropped.
#[derive(Clone)]
pub struct EthPair {
    signing: SigningKey,
}

impl EthPair {
    /// The key of a 32-byte secret, refused when it is zero or not below the curve order.
    pub fn from_secret(secret: &[u8; 32]) -> Result<Self> {
        SigningKey::from_slice(secret)
            .map(|signing| Self { signing })
            .map_err(|_| Error::SecretUri("not a valid secp256k1 secret key".into()))
    }

    /// The key of a `0x`-prefixed 64-digit hex secret, as Ethereum tools print private keys.
    pub fn from_hex(secret: &str) -> Result<Self> {
        let digits = secret
            .trim()
            .strip_prefix("0x")
            .ok_or_else(|| Error::SecretUri("an Ethereum private key starts with 0x".into()))?;
        let bytes = zeroize::Zeroizing::new(
            hex::decode(digits).map_err(|e| Error::SecretUri(format!("private key is not hex: {e}")))?,
        );
        let secret = <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| Error::SecretUri("an Ethereum private key is 32 bytes".into()))?;
        Self::from_secret(&secret)
    }

    /// The account: the Ethereum address of this key.
    pub fn address(&self) -> Address {
        eth_address(self.signing.verifying_key())
    }

    /// Signs a 32-byte message as `personal_sign` does (see the module documentation).
    pub fn sign_message(&self, message: &[u8; 32]) -> EcdsaSignature {
        let digest = personal_sign_digest(message);
        let (signature, recovery) =
            self.signing.sign_prehash_recoverable(&digest).expect("a 32-byte prehash is always signable");
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&signature.to_bytes());
        out[64] = 27 + recovery.to_byte();
        EcdsaSignature(out)
    }
}

impl fmt::Debug for EthPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EthPair({})", self.address())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first account of the mnemonic "test test test ... junk", as every Ethereum tool has it.
    const DEV_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    const DEV_ADDRESS: &str = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";

    #[test]
    fn address_matches_ethereum_tools() {
        let pair = EthPair::from_hex(DEV_KEY).unwrap();
        assert_eq!(pair.address().to_string(), DEV_ADDRESS);
    }

    #[test]
    fn personal_sign_matches_ethers() {
        // ethers v6: new Wallet(DEV_KEY).signMessage(getBytes("0x" + "11".repeat(32)))
        let pair = EthPair::from_hex(DEV_KEY).unwrap();
        let signature = pair.sign_message(&[0x11; 32]);
        assert_eq!(
            format!("{signature:?}"),
            "0x0906e5a6b04b9e3c235a2b815a32c91cd224de22cfcb09c22770758a589c41eb\
             5caff8173afab85ff05471466b6628b5c06f6f73018e3fadc6a4dcddfed073c01b"
        );
        assert_eq!(signature.recover(&personal_sign_digest(&[0x11; 32])), Some(pair.address()));
    }

    #[test]
    fn recover_refuses_non_canonical_signatures() {
        let pair = EthPair::from_hex(DEV_KEY).unwrap();
        let digest = personal_sign_digest(&[7; 32]);
        let good = pair.sign_message(&[7; 32]);
        assert_eq!(good.recover(&digest), Some(pair.address()));
        assert_ne!(good.recover(&personal_sign_digest(&[8; 32])), Some(pair.address()));

        // v as a bare recovery id, or out of range.
        for v in [0u8, 1, 2, 26, 29, 35, 255] {
            let mut bad = good;
            bad.0[64] = v;
            assert_eq!(bad.recover(&digest), None, "v = {v}");
        }
        // The high-s twin: s' = n - s with the other parity recovers the same key, and is refused.
        let n = k256::ecdsa::Signature::from_slice(&good.0[..64]).unwrap();
        let high =
            k256::ecdsa::Signature::from_scalars(n.r().to_bytes(), (-*n.s().as_ref()).to_bytes()).unwrap();
        let mut twin = good;
        twin.0[32..64].copy_from_slice(&high.s().to_bytes());
        twin.0[64] = if good.0[64] == 27 { 28 } else { 27 };
        assert_eq!(twin.recover(&digest), None);
        // Garbage never panics.
        assert_eq!(EcdsaSignature([0; 65]).recover(&digest), None);
        assert_eq!(EcdsaSignature([0xff; 65]).recover(&digest), None);
    }

    #[test]
    fn bad_private_keys_are_refused() {
        assert!(
            EthPair::from_hex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80").is_err()
        );
        assert!(EthPair::from_hex("0x1234").is_err());
        assert!(EthPair::from_hex(&format!("0x{}", "00".repeat(32))).is_err());
        assert!(EthPair::from_hex(&format!("0x{}", "ff".repeat(32))).is_err());
        assert!(EthPair::from_hex(&format!("0x{}", "zz".repeat(32))).is_err());
    }
}
