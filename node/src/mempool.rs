//! The transaction pool: extrinsics checked by the runtime and waiting for a block.
//!
//! ```text
//! senders: Address -> SenderQueue { base_nonce, txs: nonce -> PoolTx }
//!
//!   base_nonce = 5        ready run (contiguous from base)    future (held)
//!   txs:               [5] [6] [7]                  _   [9]  [12]
//!                                                   ^ gap: 9 and 12 wait for 8
//! by_hash: Hash -> (sender, nonce)
//! ```
//!
//! - A sender's *ready* extrinsics are the contiguous run of nonces starting at its account
//!   nonce (`base_nonce`); the others are *future*, held until the gap closes, at most
//!   [`PoolConfig::max_future_per_sender`] of them when they are admitted.
//! - Across senders, blocks take the ready extrinsic with the highest tip first (ties: earlier
//!   arrival first), each sender strictly in nonce order ([`Mempool::block_source`]).
//! - Same sender and nonce: the newcomer replaces the pooled one only with a tip at least 10%
//!   higher and at least 1 higher ([`min_replacement_tip`]).
//! - The pool is bounded in count and bytes. When full, a newcomer that would be *ready* may
//!   evict the lowest-tip extrinsics found at the *end* of senders' nonce chains (so no gap is
//!   ever created), provided each victim's tip is strictly lower than its own. A future
//!   newcomer never evicts anything.
//!
//! The pool is deterministic (no clock, no randomness) and never panics on its inputs.
//! Signatures, fees and sizes are checked by the runtime before [`Mempool::submit`].

use hyperion_primitives::{Address, Balance, Extrinsic, Hash};
use hyperion_runtime::{InvalidTransaction, TransactionSource, ValidTransaction};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;

/// Limits of the pool.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PoolConfig {
    /// At most this many extrinsics, ready and future together.
    pub max_count: usize,
    /// At most this many encoded bytes, ready and future together.
    pub max_bytes: usize,
    /// At most this many future extrinsics admitted per sender.
    pub max_future_per_sender: usize,
    /// A nonce at most this far ahead of the sender's next one is admitted (as future).
    pub max_nonce_gap: u64,
}

impl Default for PoolConfig {
    /// 8192 extrinsics, 32 MiB, 64 future extrinsics per sender, nonces up to 64 ahead.
    fn default() -> Self {
        Self { max_count: 8192, max_bytes: 32 * 1024 * 1024, max_future_per_sender: 64, max_nonce_gap: 64 }
    }
}

/// Why the pool refused an extrinsic. The messages are shown to RPC clients.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum PoolError {
    /// The very same extrinsic is already pooled.
    #[error("transaction already in the pool")]
    AlreadyKnown,
    /// The pool is full and the tip is not high enough to evict anything (future extrinsics
    /// never evict).
    #[error("transaction pool is full: raise the tip or retry later")]
    PoolFull,
    /// The extrinsic alone is larger than the whole pool.
    #[error("transaction too large for the pool: {size} bytes, at most {max}")]
    TooLarge {
        /// Its encoded length.
        size: usize,
        /// The pool's byte limit.
        max: usize,
    },
    /// The nonce is further ahead of the sender's next one than the pool holds.
    #[error("nonce too high: next nonce {expected}, got {got} (at most {max} ahead)")]
    NonceGap {
        /// The sender's next nonce.
        expected: u64,
        /// The extrinsic's.
        got: u64,
        /// The furthest ahead admitted.
        max: u64,
    },
    /// The sender already has the maximum of future (nonce-gapped) extrinsics pooled.
    #[error("too many future transactions from this sender (at most {max}): send the missing nonces first")]
    TooManyFuture {
        /// The per-sender limit.
        max: usize,
    },
    /// An extrinsic with the same sender and nonce is pooled with a tip that this one does not
    /// beat by enough.
    #[error("replacement transaction underpriced: tip {got}, needs at least {min}")]
    ReplacementUnderpriced {
        /// The lowest tip that would replace it.
        min: Balance,
        /// This extrinsic's tip.
        got: Balance,
    },
    /// The nonce was already used by the sender.
    #[error("stale nonce: expected at least {expected}, got {got}")]
    StaleNonce {
        /// The sender's next nonce.
        expected: u64,
        /// The extrinsic's nonce.
        got: u64,
    },
}

/// The lowest tip that replaces a pooled extrinsic with tip `old`: `old` plus 10% of it, and
/// at least `old + 1`. `None` when no tip can (`old` is `Balance::MAX`).
pub fn min_replacement_tip(old: Balance) -> Option<Balance> {
    old.checked_add((old / 10).max(1))
}

/// One pooled extrinsic.
#[derive(Clone, Debug)]
struct PoolTx {
    xt: Arc<Extrinsic>,
    hash: Hash,
    len: usize,
    tip: Balance,
    /// Arrival order in this pool, unique; breaks tip ties.
    arrival: u64,
}

/// One sender's extrinsics, by nonce.
#[derive(Debug)]
struct SenderQueue {
    /// The sender's account nonce as last known: the first ready nonce.
    base_nonce: u64,
    txs: BTreeMap<u64, PoolTx>,
}

impl SenderQueue {
    /// The ready run: contiguous nonces from `base_nonce`, in order.
    fn ready(&self) -> impl Iterator<Item = &PoolTx> + '_ {
        let mut want = Some(self.base_nonce);
        self.txs.range(self.base_nonce..).map_while(move |(n, tx)| {
            (want == Some(*n)).then(|| {
                want = n.checked_add(1);
                tx
            })
        })
    }

    /// How many extrinsics are ready. Every pooled nonce is at least `base_nonce`, so a nonce
    /// `n` is ready when `n - base_nonce < ready_count()` and extends the run when equal.
    fn ready_count(&self) -> u64 {
        self.ready().count() as u64
    }

    /// The first nonce after the ready run (saturating at `u64::MAX`).
    fn ready_end(&self) -> u64 {
        self.base_nonce.saturating_add(self.ready_count())
    }
}

/// The transaction pool. Not synchronized: the node keeps it behind a lock.
#[derive(Debug)]
pub struct Mempool {
    config: PoolConfig,
    senders: BTreeMap<Address, SenderQueue>,
    by_hash: HashMap<Hash, (Address, u64)>,
    bytes: usize,
    next_arrival: u64,
}

impl Mempool {
    /// An empty pool with `config`'s limits.
    pub fn new(config: PoolConfig) -> Self {
        Self { config, senders: BTreeMap::new(), by_hash: HashMap::new(), bytes: 0, next_arrival: 0 }
    }

    /// The pool's limits.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Admits `xt` (encoded length `len`), already checked by the runtime as `valid`; returns
    /// its hash. May evict lower-tip extrinsics when full (see the module docs).
    ///
    /// The sender's base nonce becomes the higher of the pool's and `valid.account_nonce`;
    /// pooled extrinsics below it are dropped.
    pub fn submit(
        &mut self,
        xt: Arc<Extrinsic>,
        len: usize,
        valid: ValidTransaction,
    ) -> Result<Hash, PoolError> {
        let hash = xt.hash();
        if self.by_hash.contains_key(&hash) {
            return Err(PoolError::AlreadyKnown);
        }
        if len > self.config.max_bytes {
            return Err(PoolError::TooLarge { size: len, max: self.config.max_bytes });
        }
        let (sender, nonce) = (valid.sender, valid.nonce);
        let base = self.senders.get(&sender).map_or(0, |q| q.base_nonce).max(valid.account_nonce);
        self.set_base(&sender, base);
        if nonce < base {
            return Err(PoolError::StaleNonce { expected: base, got: nonce });
        }
        if nonce - base > self.config.max_nonce_gap {
            return Err(PoolError::NonceGap { expected: base, got: nonce, max: self.config.max_nonce_gap });
        }
        let (replaced_len, ready) = self.check_slot(&sender, nonce, base, valid.tip)?;
        let need_count =
            (self.len() + usize::from(replaced_len.is_none())).saturating_sub(self.config.max_count);
        let new_bytes = self.bytes.saturating_sub(replaced_len.unwrap_or(0)).saturating_add(len);
        let need_bytes = new_bytes.saturating_sub(self.config.max_bytes);
        if need_count > 0 || need_bytes > 0 {
            if !ready {
                return Err(PoolError::PoolFull);
            }
            let victims = self
                .plan_eviction(&sender, nonce, valid.tip, need_count, need_bytes)
                .ok_or(PoolError::PoolFull)?;
            tracing::debug!(target: "mempool", %hash, evicted = victims.len(), "evicting to make room");
            self.remove(&victims);
        }
        let arrival = self.next_arrival;
        self.next_arrival = self.next_arrival.saturating_add(1);
        let tx = PoolTx { xt, hash, len, tip: valid.tip, arrival };
        let queue = self
            .senders
            .entry(sender)
            .or_insert_with(|| SenderQueue { base_nonce: base, txs: BTreeMap::new() });
        if let Some(old) = queue.txs.insert(nonce, tx) {
            self.by_hash.remove(&old.hash);
            self.bytes = self.bytes.saturating_sub(old.len);
            tracing::debug!(target: "mempool", old = %old.hash, new = %hash, "replaced");
        }
        self.by_hash.insert(hash, (sender, nonce));
        self.bytes = self.bytes.saturating_add(len);
        tracing::debug!(target: "mempool", %hash, %sender, nonce, ready, "admitted");
        Ok(hash)
    }

    /// Checks the slot `(sender, nonce)` for a newcomer with `tip`: returns the length of the
    /// extrinsic it replaces (if any) and whether the newcomer would be ready.
    /// `nonce` is at least the sender's base nonce `base`.
    fn check_slot(
        &self,
        sender: &Address,
        nonce: u64,
        base: u64,
        tip: Balance,
    ) -> Result<(Option<usize>, bool), PoolError> {
        let queue = self.senders.get(sender);
        let ready = queue.map_or(0, SenderQueue::ready_count);
        let offset = nonce.saturating_sub(base);
        if let Some(old) = queue.and_then(|q| q.txs.get(&nonce)) {
            let min = min_replacement_tip(old.tip);
            if min.is_none_or(|min| tip < min) {
                return Err(PoolError::ReplacementUnderpriced { min: min.unwrap_or(Balance::MAX), got: tip });
            }
            return Ok((Some(old.len), offset < ready));
        }
        let future = queue.map_or(0, |q| q.txs.len() - ready as usize);
        if offset > ready && future >= self.config.max_future_per_sender {
            return Err(PoolError::TooManyFuture { max: self.config.max_future_per_sender });
        }
        Ok((None, offset <= ready))
    }

    /// Picks extrinsics to evict so that `need_count` slots and `need_bytes` bytes are freed
    /// for a newcomer `(sender, nonce)` with `tip`: chain ends only, lowest tip first (ties:
    /// latest arrival first), each strictly below `tip`. `None` when that is not possible.
    /// Costs O(senders) to set up; only runs when the pool is full.
    fn plan_eviction(
        &self,
        sender: &Address,
        nonce: u64,
        tip: Balance,
        need_count: usize,
        need_bytes: usize,
    ) -> Option<Vec<Hash>> {
        // A chain end of the newcomer's own sender is a candidate only above its nonce.
        let candidate =
            |addr: &Address, below: Option<u64>| -> Option<(Balance, Reverse<u64>, Address, u64)> {
                let queue = self.senders.get(addr)?;
                let (n, tx) = match below {
                    Some(b) => queue.txs.range(..b).next_back()?,
                    None => queue.txs.last_key_value()?,
                };
                (addr != sender || *n > nonce).then_some((tx.tip, Reverse(tx.arrival), *addr, *n))
            };
        let mut heap: BinaryHeap<Reverse<_>> =
            self.senders.keys().filter_map(|a| candidate(a, None)).map(Reverse).collect();
        let (mut freed_count, mut freed_bytes, mut victims) = (0usize, 0usize, Vec::new());
        while freed_count < need_count || freed_bytes < need_bytes {
            let Reverse((victim_tip, _, addr, n)) = heap.pop()?;
            if victim_tip >= tip {
                return None;
            }
            let tx = self.senders.get(&addr)?.txs.get(&n)?;
            victims.push(tx.hash);
            freed_count += 1;
            freed_bytes = freed_bytes.saturating_add(tx.len);
            if let Some(next) = candidate(&addr, Some(n)) {
                heap.push(Reverse(next));
            }
        }
        Some(victims)
    }

    /// Sets `sender`'s base nonce to `base` and drops its extrinsics below it.
    fn set_base(&mut self, sender: &Address, base: u64) {
        let Some(queue) = self.senders.get_mut(sender) else {
            return;
        };
        queue.base_nonce = base;
        let kept = queue.txs.split_off(&base);
        let stale = std::mem::replace(&mut queue.txs, kept);
        let empty = queue.txs.is_empty();
        for tx in stale.into_values() {
            self.by_hash.remove(&tx.hash);
            self.bytes = self.bytes.saturating_sub(tx.len);
        }
        if empty {
            self.senders.remove(sender);
        }
    }

    /// A source of ready extrinsics for the block builder, best first (see
    /// [`BlockSource`]). A snapshot: the pool may change while it is used.
    pub fn block_source(&self) -> BlockSource {
        let chains: Vec<Vec<PoolTx>> = self
            .senders
            .values()
            .map(|q| q.ready().cloned().collect::<Vec<_>>())
            .filter(|c| !c.is_empty())
            .collect();
        BlockSource::new(chains)
    }

    /// After a block is imported: drops the `included` extrinsics, then sets every pooled
    /// sender's base nonce to `nonce_of(sender)` (its account nonce in the new state), dropping
    /// extrinsics below it; future extrinsics whose gap closed become ready.
    pub fn on_block_imported(&mut self, included: &[Hash], mut nonce_of: impl FnMut(&Address) -> u64) {
        self.remove(included);
        let senders: Vec<Address> = self.senders.keys().copied().collect();
        for sender in senders {
            let base = nonce_of(&sender);
            self.set_base(&sender, base);
        }
    }

    /// Drops the extrinsics with these hashes (unknown ones are ignored). Later extrinsics of
    /// the same sender stay pooled, as future ones, until the gap closes again.
    pub fn remove(&mut self, hashes: &[Hash]) {
        for hash in hashes {
            let Some((sender, nonce)) = self.by_hash.remove(hash) else {
                continue;
            };
            let Some(queue) = self.senders.get_mut(&sender) else {
                continue;
            };
            if let Some(tx) = queue.txs.remove(&nonce) {
                self.bytes = self.bytes.saturating_sub(tx.len);
            }
            if queue.txs.is_empty() {
                self.senders.remove(&sender);
            }
        }
    }

    /// Every pooled extrinsic: the ready ones in block order, then the future ones by sender
    /// and nonce.
    pub fn pending(&self) -> Vec<Arc<Extrinsic>> {
        let mut out = Vec::with_capacity(self.len());
        let mut source = self.block_source();
        while let Some((xt, _)) = source.next() {
            out.push(xt);
        }
        for queue in self.senders.values() {
            let ready = queue.ready().count();
            out.extend(queue.txs.values().skip(ready).map(|tx| Arc::clone(&tx.xt)));
        }
        out
    }

    /// The pooled extrinsic with this hash.
    pub fn get(&self, hash: &Hash) -> Option<Arc<Extrinsic>> {
        let (sender, nonce) = self.by_hash.get(hash)?;
        self.senders.get(sender)?.txs.get(nonce).map(|tx| Arc::clone(&tx.xt))
    }

    /// Whether an extrinsic with this hash is pooled.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// How many extrinsics are pooled, ready and future.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Total encoded bytes pooled.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// How many extrinsics are ready (for metrics; O(ready + senders)).
    pub fn ready_len(&self) -> usize {
        self.senders.values().map(|q| q.ready().count()).sum()
    }

    /// How many extrinsics are future (for metrics).
    pub fn future_len(&self) -> usize {
        self.len() - self.ready_len()
    }

    /// `sender`'s next nonce counting its ready extrinsics, if it has any pooled (what a
    /// wallet should use for its next transaction).
    pub fn next_nonce(&self, sender: &Address) -> Option<u64> {
        self.senders.get(sender).map(SenderQueue::ready_end)
    }
}

/// The ready extrinsics of a [`Mempool`] snapshot, for one block: highest tip first across
/// senders (ties: earlier arrival), each sender in nonce order from its account nonce. After
/// [`TransactionSource::reject`] of one of its extrinsics, nothing more of that sender is offered.
#[derive(Debug)]
pub struct BlockSource {
    /// Each sender's ready run, in nonce order.
    chains: Vec<Vec<PoolTx>>,
    /// Index of each chain's next extrinsic.
    cursors: Vec<usize>,
    /// Chains no longer offered (one of their extrinsics was rejected).
    stopped: Vec<bool>,
    /// Heads of the chains still offered: (tip, earlier arrival first, chain).
    heap: BinaryHeap<(Balance, Reverse<u64>, usize)>,
    /// The chain of the last offered extrinsic; its successor is queued on the next call.
    last: Option<usize>,
    /// The chain of every extrinsic offered so far.
    offered: HashMap<Hash, usize>,
}

impl BlockSource {
    fn new(chains: Vec<Vec<PoolTx>>) -> Self {
        let heap = chains.iter().enumerate().map(|(i, c)| (c[0].tip, Reverse(c[0].arrival), i)).collect();
        let n = chains.len();
        Self {
            cursors: vec![0; n],
            stopped: vec![false; n],
            chains,
            heap,
            last: None,
            offered: HashMap::new(),
        }
    }
}

impl TransactionSource for BlockSource {
    fn next(&mut self) -> Option<(Arc<Extrinsic>, usize)> {
        if let Some(chain) = self.last.take() {
            let cursor = &mut self.cursors[chain];
            *cursor += 1;
            if let Some(tx) = self.chains[chain].get(*cursor) {
                self.heap.push((tx.tip, Reverse(tx.arrival), chain));
            }
        }
        let chain = loop {
            let (_, _, chain) = self.heap.pop()?;
            if !self.stopped[chain] {
                break chain;
            }
        };
        self.last = Some(chain);
        let tx = &self.chains[chain][self.cursors[chain]];
        self.offered.insert(tx.hash, chain);
        Some((Arc::clone(&tx.xt), tx.len))
    }

    fn reject(&mut self, hash: &Hash, reason: &InvalidTransaction) {
        let Some(&chain) = self.offered.get(hash) else { return };
        tracing::debug!(target: "mempool", %hash, %reason, "skipping the rest of this sender");
        self.stopped[chain] = true;
        if self.last == Some(chain) {
            self.last = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyperion_primitives::{Call, Pair, SignedExtrinsic};

    fn pair(name: &str) -> Pair {
        thread_local! {
            static KEYS: std::cell::RefCell<HashMap<String, Pair>> = Default::default();
        }
        KEYS.with(|keys| {
            let mut keys = keys.borrow_mut();
            let pair = keys
                .entry(name.to_owned())
                .or_insert_with(|| Pair::from_string(&format!("//{name}")).expect("dev key"));
            pair.clone()
        })
    }

    fn addr(name: &str) -> Address {
        pair(name).public().address()
    }

    /// A signed extrinsic of `name` at `nonce` with `tip`; `salt` varies the hash.
    fn xt(name: &str, nonce: u64, tip: Balance, salt: u8) -> Arc<Extrinsic> {
        let call = Call { pallet: 0, call: 0, args: vec![salt] };
        Arc::new(Extrinsic::Native(SignedExtrinsic::sign(&pair(name), Hash::ZERO, nonce, tip, call)))
    }

    fn valid(name: &str, nonce: u64, account_nonce: u64, tip: Balance) -> ValidTransaction {
        ValidTransaction { sender: addr(name), nonce, account_nonce, fee: 1, tip, weight: 1 }
    }

    /// Submits with account nonce 0 and length 100.
    fn add(pool: &mut Mempool, name: &str, nonce: u64, tip: Balance) -> Result<Hash, PoolError> {
        pool.submit(xt(name, nonce, tip, 0), 100, valid(name, nonce, 0, tip))
    }

    /// (sender, nonce) of an extrinsic.
    fn key(xt: &Extrinsic) -> (Address, u64) {
        match xt {
            Extrinsic::Native(s) => (s.sender(), s.nonce),
            Extrinsic::Ethereum(_) => panic!("tests only pool native extrinsics"),
        }
    }

    fn drain(mut source: BlockSource) -> Vec<(Address, u64)> {
        std::iter::from_fn(|| source.next()).map(|(xt, _)| key(&xt)).collect()
    }

    fn small(max_count: usize, max_bytes: usize) -> Mempool {
        Mempool::new(PoolConfig { max_count, max_bytes, max_future_per_sender: 4, max_nonce_gap: 64 })
    }

    #[test]
    fn orders_by_tip_across_senders_and_by_nonce_within() {
        let mut pool = Mempool::new(PoolConfig::default());
        add(&mut pool, "Alice", 1, 100).unwrap(); // future until nonce 0 arrives
        add(&mut pool, "Bob", 0, 50).unwrap();
        add(&mut pool, "Alice", 0, 10).unwrap();
        add(&mut pool, "Bob", 1, 5).unwrap();
        add(&mut pool, "Charlie", 0, 50).unwrap(); // same tip as Bob's, arrived later
        let (a, b, c) = (addr("Alice"), addr("Bob"), addr("Charlie"));
        let order = drain(pool.block_source());
        assert_eq!(order, vec![(b, 0), (c, 0), (a, 0), (a, 1), (b, 1)]);
        let pending: Vec<_> = pool.pending().iter().map(|x| key(x)).collect();
        assert_eq!(pending, order);
        assert_eq!((pool.len(), pool.ready_len(), pool.future_len(), pool.bytes()), (5, 5, 0, 500));
    }

    #[test]
    fn future_held_then_promoted_by_block_import() {
        let mut pool = Mempool::new(PoolConfig::default());
        add(&mut pool, "Alice", 2, 1).unwrap();
        add(&mut pool, "Alice", 3, 1).unwrap();
        assert_eq!((pool.ready_len(), pool.future_len()), (0, 2));
        assert!(drain(pool.block_source()).is_empty());
        // Nonces 0 and 1 were included through another node's pool.
        pool.on_block_imported(&[], |_| 2);
        let a = addr("Alice");
        assert_eq!(drain(pool.block_source()), vec![(a, 2), (a, 3)]);
        assert_eq!((pool.ready_len(), pool.future_len(), pool.next_nonce(&a)), (2, 0, Some(4)));
    }

    #[test]
    fn gap_filled_by_submit_promotes_future() {
        let mut pool = Mempool::new(PoolConfig::default());
        add(&mut pool, "Alice", 0, 1).unwrap();
        add(&mut pool, "Alice", 2, 1).unwrap();
        assert_eq!((pool.ready_len(), pool.future_len()), (1, 1));
        let future = pool.pending();
        assert_eq!(key(&future[1]), (addr("Alice"), 2));
        add(&mut pool, "Alice", 1, 1).unwrap();
        assert_eq!((pool.ready_len(), pool.future_len()), (3, 0));
    }

    #[test]
    fn refuses_stale_nonce_and_duplicates() {
        let mut pool = Mempool::new(PoolConfig::default());
        let err = pool.submit(xt("Alice", 4, 1, 0), 100, valid("Alice", 4, 5, 1));
        assert_eq!(err, Err(PoolError::StaleNonce { expected: 5, got: 4 }));
        let hash = add(&mut pool, "Alice", 5, 1).unwrap();
        assert!(pool.contains(&hash));
        assert_eq!(add(&mut pool, "Alice", 5, 1), Err(PoolError::AlreadyKnown));
        add(&mut pool, "Alice", 6, 1).unwrap();
        // The pool knows a newer base than a validation against lagging state.
        pool.on_block_imported(&[hash], |_| 6);
        let err = pool.submit(xt("Alice", 5, 2, 1), 100, valid("Alice", 5, 0, 2));
        assert_eq!(err, Err(PoolError::StaleNonce { expected: 6, got: 5 }));
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn newer_account_nonce_on_submit_drops_stale_txs() {
        let mut pool = Mempool::new(PoolConfig::default());
        add(&mut pool, "Alice", 0, 1).unwrap();
        add(&mut pool, "Alice", 1, 1).unwrap();
        pool.submit(xt("Alice", 2, 1, 0), 100, valid("Alice", 2, 2, 1)).unwrap();
        assert_eq!((pool.len(), pool.ready_len(), pool.bytes()), (1, 1, 100));
    }

    #[test]
    fn replacement_needs_ten_percent_more_tip() {
        let mut pool = Mempool::new(PoolConfig::default());
        let old = add(&mut pool, "Alice", 0, 100).unwrap();
        let low = pool.submit(xt("Alice", 0, 109, 1), 100, valid("Alice", 0, 0, 109));
        assert_eq!(low, Err(PoolError::ReplacementUnderpriced { min: 110, got: 109 }));
        let new = pool.submit(xt("Alice", 0, 110, 1), 150, valid("Alice", 0, 0, 110)).unwrap();
        assert!(!pool.contains(&old) && pool.contains(&new));
        assert_eq!((pool.len(), pool.bytes()), (1, 150));
        assert_eq!(pool.get(&new).map(|x| key(&x)), Some((addr("Alice"), 0)));
        assert_eq!(min_replacement_tip(0), Some(1));
        assert_eq!(min_replacement_tip(5), Some(6));
        assert_eq!(min_replacement_tip(Balance::MAX), None);
    }

    #[test]
    fn max_tip_cannot_be_replaced() {
        let mut pool = Mempool::new(PoolConfig::default());
        add(&mut pool, "Alice", 0, Balance::MAX).unwrap();
        let err = pool.submit(xt("Alice", 0, Balance::MAX, 1), 100, valid("Alice", 0, 0, Balance::MAX));
        assert_eq!(err, Err(PoolError::ReplacementUnderpriced { min: Balance::MAX, got: Balance::MAX }));
    }

    #[test]
    fn limits_future_per_sender() {
        let mut none = Mempool::new(PoolConfig { max_future_per_sender: 0, ..PoolConfig::default() });
        assert_eq!(add(&mut none, "Alice", 1, 1), Err(PoolError::TooManyFuture { max: 0 }));
        let mut gap = Mempool::new(PoolConfig { max_nonce_gap: 3, ..PoolConfig::default() });
        add(&mut gap, "Alice", 3, 1).unwrap();
        assert_eq!(add(&mut gap, "Alice", 4, 1), Err(PoolError::NonceGap { expected: 0, got: 4, max: 3 }));
        let mut pool = Mempool::new(PoolConfig { max_future_per_sender: 2, ..PoolConfig::default() });
        add(&mut pool, "Alice", 2, 1).unwrap();
        add(&mut pool, "Alice", 3, 1).unwrap();
        assert_eq!(add(&mut pool, "Alice", 5, 1), Err(PoolError::TooManyFuture { max: 2 }));
        // Replacing a future one and adding ready ones is still fine.
        pool.submit(xt("Alice", 3, 2, 1), 100, valid("Alice", 3, 0, 2)).unwrap();
        add(&mut pool, "Alice", 0, 1).unwrap();
        add(&mut pool, "Alice", 1, 1).unwrap();
        add(&mut pool, "Alice", 5, 1).unwrap();
        assert_eq!((pool.ready_len(), pool.future_len()), (4, 1));
    }

    #[test]
    fn count_limit_evicts_lowest_tip_chain_end() {
        let mut pool = small(3, usize::MAX);
        add(&mut pool, "Alice", 0, 10).unwrap();
        let alice1 = add(&mut pool, "Alice", 1, 1).unwrap();
        add(&mut pool, "Bob", 0, 5).unwrap();
        add(&mut pool, "Charlie", 0, 3).unwrap();
        assert!(!pool.contains(&alice1));
        assert_eq!(pool.len(), 3);
        assert_eq!(add(&mut pool, "Dave", 0, 2), Err(PoolError::PoolFull));
        // A future newcomer never evicts, however high its tip.
        assert_eq!(add(&mut pool, "Dave", 7, 1_000), Err(PoolError::PoolFull));
        assert_eq!(pool.len(), 3);
    }

    #[test]
    fn eviction_never_creates_a_nonce_gap() {
        let mut pool = small(3, usize::MAX);
        add(&mut pool, "Alice", 0, 10).unwrap();
        add(&mut pool, "Alice", 1, 20).unwrap();
        add(&mut pool, "Bob", 0, 15).unwrap();
        // Alice's nonce 0 has the lowest tip, but it is not at the end of her chain.
        assert_eq!(add(&mut pool, "Charlie", 0, 12), Err(PoolError::PoolFull));
        // The newcomer's own sender: only chain ends above its nonce may go.
        let bob_err = pool.submit(xt("Bob", 1, 30, 0), 100, valid("Bob", 1, 0, 30));
        assert_eq!(bob_err.map(|_| ()), Ok(()));
        assert_eq!(pool.len(), 3);
        assert_eq!(pool.ready_len(), 3);
    }

    #[test]
    fn byte_limit_evicts_several_and_refuses_oversized() {
        let mut pool = small(100, 300);
        add(&mut pool, "Alice", 0, 1).unwrap();
        add(&mut pool, "Alice", 1, 2).unwrap();
        let bob = add(&mut pool, "Bob", 0, 3).unwrap();
        let err = pool.submit(xt("Charlie", 0, 9, 0), 301, valid("Charlie", 0, 0, 9));
        assert_eq!(err, Err(PoolError::TooLarge { size: 301, max: 300 }));
        // Needs 200 bytes: Alice's 1 (end), then Alice's 0 (new end); Bob's tip is higher.
        let charlie = pool.submit(xt("Charlie", 0, 9, 0), 200, valid("Charlie", 0, 0, 9)).unwrap();
        assert_eq!((pool.len(), pool.bytes()), (2, 300));
        assert!(pool.contains(&bob) && pool.contains(&charlie));
        let err = pool.submit(xt("Dave", 0, 2, 0), 50, valid("Dave", 0, 0, 2));
        assert_eq!(err, Err(PoolError::PoolFull));
    }

    #[test]
    fn reject_skips_the_rest_of_the_sender() {
        let mut pool = Mempool::new(PoolConfig::default());
        for nonce in 0..3 {
            add(&mut pool, "Alice", nonce, 100).unwrap();
            add(&mut pool, "Bob", nonce, 10).unwrap();
        }
        let (a, b) = (addr("Alice"), addr("Bob"));
        let mut source = pool.block_source();
        assert_eq!(source.next().map(|(x, len)| (key(&x), len)), Some(((a, 0), 100)));
        let (alice_1, _) = source.next().unwrap();
        assert_eq!(key(&alice_1), (a, 1));
        source.reject(&alice_1.hash(), &InvalidTransaction::ExhaustsBlock);
        source.reject(&alice_1.hash(), &InvalidTransaction::ExhaustsBlock); // a second is harmless
        source.reject(&Hash([7; 32]), &InvalidTransaction::ExhaustsBlock); // never offered: ignored
        assert_eq!(drain(source), vec![(b, 0), (b, 1), (b, 2)]);
    }

    #[test]
    fn a_rejection_after_later_offers_stops_that_sender() {
        let mut pool = Mempool::new(PoolConfig::default());
        for nonce in 0..3 {
            add(&mut pool, "Alice", nonce, 100).unwrap();
            add(&mut pool, "Bob", nonce, 10).unwrap();
        }
        let (a, b) = (addr("Alice"), addr("Bob"));
        let mut source = pool.block_source();
        // A block builder gathers several candidates, runs them, then rejects one.
        let (alice_0, _) = source.next().unwrap();
        assert_eq!(key(&alice_0), (a, 0));
        assert_eq!(source.next().map(|(x, _)| key(&x)), Some((a, 1)));
        assert_eq!(source.next().map(|(x, _)| key(&x)), Some((a, 2)));
        assert_eq!(source.next().map(|(x, _)| key(&x)), Some((b, 0)));
        source.reject(&alice_0.hash(), &InvalidTransaction::BadSignature);
        assert_eq!(drain(source), vec![(b, 1), (b, 2)]);
    }

    #[test]
    fn block_import_prunes_included_and_stale() {
        let mut pool = Mempool::new(PoolConfig::default());
        let h0 = add(&mut pool, "Alice", 0, 1).unwrap();
        let h1 = add(&mut pool, "Alice", 1, 1).unwrap();
        let h2 = add(&mut pool, "Alice", 2, 1).unwrap();
        let b0 = add(&mut pool, "Bob", 0, 1).unwrap();
        let bob = addr("Bob");
        // Alice's 0 and 1 are included; Bob's nonce moved on by other means.
        pool.on_block_imported(&[h0, h1], |who| if *who == bob { 1 } else { 2 });
        assert!(!pool.contains(&h0) && !pool.contains(&h1) && !pool.contains(&b0));
        assert!(pool.contains(&h2));
        assert_eq!((pool.len(), pool.ready_len(), pool.bytes()), (1, 1, 100));
        assert_eq!(pool.next_nonce(&bob), None);
    }

    #[test]
    fn remove_leaves_later_nonces_future() {
        let mut pool = Mempool::new(PoolConfig::default());
        add(&mut pool, "Alice", 0, 1).unwrap();
        let h1 = add(&mut pool, "Alice", 1, 1).unwrap();
        add(&mut pool, "Alice", 2, 1).unwrap();
        pool.remove(&[h1, Hash::ZERO]);
        assert_eq!((pool.len(), pool.ready_len(), pool.future_len(), pool.bytes()), (2, 1, 1, 200));
        assert_eq!(drain(pool.block_source()), vec![(addr("Alice"), 0)]);
    }

    #[test]
    fn extreme_nonces_do_not_panic() {
        let mut pool = Mempool::new(PoolConfig { max_nonce_gap: u64::MAX, ..small(10, 10_000).config });
        let max = u64::MAX;
        let gap = small(10, 10_000).config.max_nonce_gap;
        assert_eq!(
            add(&mut small(10, 10_000), "Bob", max, 1),
            Err(PoolError::NonceGap { expected: 0, got: max, max: gap })
        );
        pool.submit(xt("Alice", max, 1, 0), 100, valid("Alice", max, max, 1)).unwrap();
        assert_eq!((pool.ready_len(), pool.future_len()), (1, 0));
        assert_eq!(pool.pending().len(), 1);
        pool.submit(xt("Alice", max, 2, 1), 100, valid("Alice", max, max, 2)).unwrap();
        add(&mut pool, "Bob", max, 1).unwrap();
        assert_eq!((pool.ready_len(), pool.future_len()), (1, 1));
        let mut zero = small(0, 0);
        assert_eq!(add(&mut zero, "Alice", 0, 1), Err(PoolError::TooLarge { size: 100, max: 0 }));
        assert_eq!(zero.submit(xt("Alice", 0, 1, 0), 0, valid("Alice", 0, 0, 1)), Err(PoolError::PoolFull));
    }

    /// Checks the pool's internal invariants and the block order.
    fn check_invariants(pool: &Mempool) {
        let mut count = 0;
        let mut bytes = 0;
        for (sender, queue) in &pool.senders {
            assert!(!queue.txs.is_empty(), "empty queue kept");
            for (nonce, tx) in &queue.txs {
                assert!(*nonce >= queue.base_nonce);
                assert_eq!(pool.by_hash.get(&tx.hash), Some(&(*sender, *nonce)));
                count += 1;
                bytes += tx.len;
            }
        }
        assert_eq!((pool.len(), pool.bytes()), (count, bytes));
        assert!(pool.len() <= pool.config.max_count && pool.bytes() <= pool.config.max_bytes);
        let mut next: HashMap<Address, u64> = pool.senders.iter().map(|(a, q)| (*a, q.base_nonce)).collect();
        let mut source = pool.block_source();
        let order: Vec<(Address, u64)> =
            std::iter::from_fn(|| source.next()).map(|(xt, _)| pool.by_hash[&xt.hash()]).collect();
        for (sender, nonce) in &order {
            let want = next.get_mut(sender).expect("pooled sender");
            assert_eq!(nonce, want, "out of nonce order");
            *want += 1;
        }
        assert_eq!(order.len(), pool.ready_len());
        assert_eq!(pool.pending().len(), pool.len());
    }

    fn nonces(pool: &Mempool) -> BTreeMap<Address, Vec<u64>> {
        pool.senders.iter().map(|(a, q)| (*a, q.txs.keys().copied().collect())).collect()
    }

    /// Random submits, removals and imports (ops: kind, sender, nonce, tip, length) keep the
    /// invariants, and a submit only ever evicts chain ends.
    #[test]
    fn random_operations_keep_invariants() {
        fn prop(ops: Vec<(u8, u8, u8, u8, u8)>) -> bool {
            let mut pool = Mempool::new(PoolConfig {
                max_count: 6,
                max_bytes: 600,
                max_future_per_sender: 2,
                max_nonce_gap: 64,
            });
            let sender = |s: u8| Address::from_slice(&[s % 4; 20]).expect("20 bytes");
            let mut hashes = Vec::new();
            for (i, (kind, s, nonce, tip, len)) in ops.into_iter().enumerate() {
                let (who, nonce) = (sender(s), u64::from(nonce % 8));
                match kind % 8 {
                    0 => pool.remove(
                        &hashes[i % hashes.len().max(1)..].iter().take(1).copied().collect::<Vec<_>>(),
                    ),
                    1 => pool.on_block_imported(&[], |a| pool_base_hint(a, nonce)),
                    _ => {
                        let before = nonces(&pool);
                        let xt = Arc::new(Extrinsic::Ethereum(vec![s % 4, nonce as u8, tip, len, i as u8]));
                        let valid = ValidTransaction {
                            sender: who,
                            nonce,
                            account_nonce: u64::from(kind % 2),
                            fee: 0,
                            tip: tip.into(),
                            weight: 0,
                        };
                        if let Ok(hash) = pool.submit(xt, usize::from(len) * 2, valid) {
                            hashes.push(hash);
                            only_chain_ends_evicted(&before, &nonces(&pool), who, nonce);
                        }
                    }
                }
                check_invariants(&pool);
            }
            true
        }
        fn pool_base_hint(a: &Address, n: u64) -> u64 {
            (u64::from(a.0[0]) + n) % 3
        }
        quickcheck::QuickCheck::new().tests(300).quickcheck(prop as fn(Vec<(u8, u8, u8, u8, u8)>) -> bool);
    }

    /// Every sender other than `who` kept a prefix of its nonces; `who` lost only nonces below
    /// its new base or above `nonce`.
    fn only_chain_ends_evicted(
        before: &BTreeMap<Address, Vec<u64>>,
        after: &BTreeMap<Address, Vec<u64>>,
        who: Address,
        nonce: u64,
    ) {
        for (sender, old) in before {
            let new = after.get(sender).cloned().unwrap_or_default();
            if *sender == who {
                let base = new.first().copied().unwrap_or(0);
                assert!(
                    old.iter().all(|n| new.contains(n) || *n < base || *n >= nonce),
                    "{old:?} -> {new:?}"
                );
            } else {
                assert!(old.starts_with(&new), "gap created: {old:?} -> {new:?}");
            }
        }
    }
}
