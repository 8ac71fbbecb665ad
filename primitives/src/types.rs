//! Scalar types: addresses, hashes, balances, block numbers.

use parity_scale_codec::{Decode, Encode, MaxEncodedLen};
use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A balance in the smallest unit; the native token has 18 decimals, like ether.
pub type Balance = u128;
/// One whole token (10^18 smallest units).
pub const UNIT: Balance = 1_000_000_000_000_000_000;
/// A block's height; genesis is 0.
pub type BlockNumber = u64;
/// An account's transaction counter, shared by native and Ethereum transactions.
pub type Nonce = u64;
/// Execution cost of a native call, in weight units (gas for Ethereum transactions).
pub type Weight = u64;

macro_rules! fixed_bytes {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Encode, Decode, MaxEncodedLen)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;
            /// The all-zero value.
            pub const ZERO: Self = Self([0u8; $len]);

            /// The bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Builds from a slice of exactly [`Self::LEN`] bytes.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; $len]>::try_from(bytes).ok().map(Self)
            }

            /// `0x`-prefixed lower-case hex.
            pub fn to_hex(&self) -> String {
                format!("0x{}", hex::encode(self.0))
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl From<[u8; $len]> for $name {
            fn from(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = Error;

            /// Parses hex of exactly [`Self::LEN`] bytes, with or without `0x`.
            fn from_str(s: &str) -> Result<Self, Error> {
                let digits = s.strip_prefix("0x").unwrap_or(s);
                let bytes = hex::decode(digits).map_err(|e| Error::Hex(format!("{s:?}: {e}")))?;
                Self::from_slice(&bytes).ok_or_else(|| {
                    Error::Hex(format!("{s:?}: expected {} bytes, got {}", $len, bytes.len()))
                })
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

fixed_bytes!(
    /// A 20-byte account address, shared by Ethereum (secp256k1) and native (ed25519) signers.
    Address,
    20
);

fixed_bytes!(
    /// A 32-byte hash (Blake2-256 for Hyperion objects, Keccak-256 for Ethereum ones).
    Hash,
    32
);

impl Address {
    /// The address that belongs to a module rather than a key: the last 20 bytes of
    /// `keccak256("hyperion/module" ++ id)`. Nobody holds a key for it.
    pub fn for_module(id: &[u8; 8]) -> Self {
        let mut preimage = b"hyperion/module".to_vec();
        preimage.extend_from_slice(id);
        let digest = crate::hashing::keccak_256(&preimage);
        let mut out = [0u8; 20];
        out.copy_from_slice(&digest[12..]);
        Self(out)
    }
}

#[cfg(test)]
impl quickcheck::Arbitrary for Address {
    fn arbitrary(g: &mut quickcheck::Gen) -> Self {
        let mut out = [0u8; 20];
        out.iter_mut().for_each(|b| *b = u8::arbitrary(g));
        Self(out)
    }
}

#[cfg(test)]
impl quickcheck::Arbitrary for Hash {
    fn arbitrary(g: &mut quickcheck::Gen) -> Self {
        let mut out = [0u8; 32];
        out.iter_mut().for_each(|b| *b = u8::arbitrary(g));
        Self(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let a: Address = "0x00000000000000000000000000000000000000ff".parse().unwrap();
        assert_eq!(a.0[19], 0xff);
        assert_eq!(a.to_string(), "0x00000000000000000000000000000000000000ff");
        assert!("0x00ff".parse::<Address>().is_err());
        assert!("zz".parse::<Hash>().is_err());
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Address>(&json).unwrap(), a);
    }

    #[test]
    fn module_addresses_differ() {
        assert_ne!(Address::for_module(b"hmining!"), Address::for_module(b"treasury"));
    }
}
