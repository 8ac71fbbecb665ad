//! The hash functions used by Hyperion, re-exported from `sp-crypto-hashing` so that every crate
//! hashes the same way.

pub use sp_crypto_hashing::{blake2_128, blake2_256, keccak_256, twox_128, twox_64};

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const P4: u64 = 0x85EB_CA77_C2B2_AE63;
const P5: u64 = 0x27D4_EB2F_1656_67C5;

/// The `n`-byte little-endian number at `data[at..]`.
const fn read_le(data: &[u8], at: usize, n: usize) -> u64 {
    let mut value = 0u64;
    let mut i = 0;
    while i < n {
        value |= (data[at + i] as u64) << (8 * i);
        i += 1;
    }
    value
}

const fn round(acc: u64, input: u64) -> u64 {
    acc.wrapping_add(input.wrapping_mul(P2)).rotate_left(31).wrapping_mul(P1)
}

const fn merge(acc: u64, value: u64) -> u64 {
    (acc ^ round(0, value)).wrapping_mul(P1).wrapping_add(P4)
}

/// XXH64 of `data` with `seed`, usable in constants (the same function as `twox_64`'s).
pub const fn xxh64(data: &[u8], seed: u64) -> u64 {
    let len = data.len();
    let mut at = 0;
    let mut hash = if len >= 32 {
        let mut v =
            [seed.wrapping_add(P1).wrapping_add(P2), seed.wrapping_add(P2), seed, seed.wrapping_sub(P1)];
        while at + 32 <= len {
            let mut lane = 0;
            while lane < 4 {
                v[lane] = round(v[lane], read_le(data, at + lane * 8, 8));
                lane += 1;
            }
            at += 32;
        }
        let mut hash = v[0]
            .rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18));
        let mut lane = 0;
        while lane < 4 {
            hash = merge(hash, v[lane]);
            lane += 1;
        }
        hash
    } else {
        seed.wrapping_add(P5)
    };
    hash = hash.wrapping_add(len as u64);
    while at + 8 <= len {
        hash = (hash ^ round(0, read_le(data, at, 8))).rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
        at += 8;
    }
    if at + 4 <= len {
        hash =
            (hash ^ read_le(data, at, 4).wrapping_mul(P1)).rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
        at += 4;
    }
    while at < len {
        hash = (hash ^ (data[at] as u64).wrapping_mul(P5)).rotate_left(11).wrapping_mul(P1);
        at += 1;
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(P2);
    hash ^= hash >> 29;
    hash = hash.wrapping_mul(P3);
    hash ^ (hash >> 32)
}

/// Copies `bytes` into `out` from `at` (for building constants).
pub const fn put(out: &mut [u8], at: usize, bytes: &[u8]) {
    let mut i = 0;
    while i < bytes.len() {
        out[at + i] = bytes[i];
        i += 1;
    }
}

/// `twox_128` usable in constants: the storage prefixes of typed storage items are computed
/// when the program is compiled, not at every access.
pub const fn twox_128_const(data: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    put(&mut out, 0, &xxh64(data, 0).to_le_bytes());
    put(&mut out, 8, &xxh64(data, 1).to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    quickcheck! {
        fn the_constant_twox_is_twox(data: Vec<u8>) -> bool {
            twox_128_const(&data) == twox_128(&data)
        }
    }

    #[test]
    fn the_constant_twox_covers_every_length() {
        let data: Vec<u8> = (0..200u8).map(|i| i.wrapping_mul(37)).collect();
        for len in 0..data.len() {
            assert_eq!(twox_128_const(&data[..len]), twox_128(&data[..len]), "length {len}");
        }
    }
}
