//! The inputs of a case: endowed accounts with keys derived from their index, and blocks of
//! signed transfers between random accounts drawn from a fixed seed.

use hyperion_primitives::{Address, Balance, Call as RawCall, Extrinsic, Hash, Pair, SignedExtrinsic, UNIT};
use pallet_balances::Call;
use parity_scale_codec::Encode;
use std::sync::Arc;

/// Index of the balances pallet in the benchmark runtime.
pub const BALANCES_INDEX: u8 = 1;
/// Each account's genesis endowment: far more than any case spends (at most 1 token and a fee
/// per transfer).
pub const ENDOWMENT: Balance = 1_000_000 * UNIT;
/// Seed of the transfer generator.
const TRANSFER_SEED: u64 = 0x6879_7065_7269_6f6e;

/// A signed extrinsic with its encoded length, as a mempool holds it.
#[derive(Clone, Debug)]
pub struct Tx {
    /// The extrinsic.
    pub xt: Arc<Extrinsic>,
    /// Its encoded length in bytes.
    pub len: usize,
}

/// The key pair of account `index`, from a seed built from the index: deriving from a phrase
/// (`//name`) costs 2048 PBKDF2 rounds per key, too slow for thousands of accounts.
pub fn account_pair(index: u32) -> Pair {
    let mut seed = [0u8; 32];
    seed[..16].copy_from_slice(b"hyperion-bench/#");
    seed[16..20].copy_from_slice(&index.to_le_bytes());
    Pair::from_seed(&seed)
}

/// SplitMix64: a tiny deterministic generator, stable across crate versions.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (the modulo bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Signs `blocks` blocks of `txs_per_block` transfers for the chain with `genesis_hash`. Each
/// transfer goes from a random account to a random other one, 0.001 to 1 token, at the sender's
/// next nonce; a sender may appear several times in a block, with consecutive nonces.
pub fn sign_blocks(
    pairs: &[Pair],
    addresses: &[Address],
    genesis_hash: Hash,
    blocks: u32,
    txs_per_block: u32,
) -> Vec<Vec<Tx>> {
    assert!(pairs.len() >= 2, "transfers need two accounts");
    assert_eq!(pairs.len(), addresses.len());
    let accounts = pairs.len() as u64;
    let mut rng = SplitMix64(TRANSFER_SEED);
    let mut nonces = vec![0u64; pairs.len()];
    let mut transfer = || {
        let from = rng.below(accounts) as usize;
        let to = ((from as u64 + 1 + rng.below(accounts - 1)) % accounts) as usize;
        let value = Balance::from(1 + rng.below(1000)) * (UNIT / 1000);
        let call = Call::Transfer { dest: addresses[to], value }.encode();
        let call = RawCall { pallet: BALANCES_INDEX, call: call[0], args: call[1..].to_vec() };
        let xt = SignedExtrinsic::sign(&pairs[from], genesis_hash, nonces[from], 0, call);
        nonces[from] += 1;
        let xt = Extrinsic::Native(xt);
        Tx { len: xt.encoded_size(), xt: Arc::new(xt) }
    };
    (0..blocks).map(|_| (0..txs_per_block).map(|_| transfer()).collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfers_are_deterministic_and_never_to_self() {
        let pairs: Vec<Pair> = (0..3).map(account_pair).collect();
        let addresses: Vec<Address> = pairs.iter().map(|p| p.public().address()).collect();
        let a = sign_blocks(&pairs, &addresses, Hash([1; 32]), 2, 20);
        let b = sign_blocks(&pairs, &addresses, Hash([1; 32]), 2, 20);
        assert_eq!(a.len(), 2);
        for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
            assert_eq!(x.xt, y.xt);
            let Extrinsic::Native(n) = x.xt.as_ref() else { panic!("native transfers") };
            assert!(n.verify(Hash([1; 32])));
            let Ok(Call::Transfer { dest, .. }) = hyperion_runtime::decode_call(n.call.call, &n.call.args)
            else {
                panic!("a transfer")
            };
            assert_ne!(dest, n.sender());
        }
    }
}
