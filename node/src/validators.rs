//! The validator set of every height, from the chain spec and the staking pallet.
//!
//! Heights `1..=L` (L: the epoch length) use the chain spec's validators. At the first block of
//! epoch `e` the staking pallet elects the set of epoch `e + 1` into its state
//! (`Staking.Validators`); consensus takes it over after height `(e + 1) × L`, keeping the
//! proposer priorities of validators that stay. A node learns each set when it imports the
//! block that elects it, and writes the epochs where the set changed to
//! `<chain>/consensus/validator-sets.json`: old states are pruned, and the set of any height
//! (to check an old certificate, or to start consensus) is replayed from genesis through
//! these changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hyperion_consensus::{ChainId, Evidence, Height, Validator, ValidatorSet};
use hyperion_primitives::{Hash, Public};
use hyperion_state::{ChangeSet, Snapshot};
use parity_scale_codec::DecodeAll;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::chain_spec::ChainSpec;
use crate::service::SnapshotReader;
use crate::{Error, Result};

/// Checks consensus evidence for the staking pallet: the two messages conflict and both are
/// signed by the offender (the pallet checks that it was a validator, and when).
pub struct ConsensusEvidence;

impl pallet_staking::EvidenceVerifier for ConsensusEvidence {
    fn verify(
        &self,
        evidence: &[u8],
        genesis_hash: Hash,
    ) -> std::result::Result<pallet_staking::Offence, String> {
        let evidence =
            Evidence::decode_all(&mut &evidence[..]).map_err(|e| format!("undecodable evidence: {e}"))?;
        evidence.verify_signed(ChainId(genesis_hash)).map_err(|e| e.to_string())?;
        Ok(pallet_staking::Offence { offender: evidence.offender(), height: evidence.height() })
    }
}

/// The epoch of height `height` (heights `e × L + 1 ..= (e + 1) × L` are epoch `e`).
pub fn epoch_of(height: Height, epoch_length: u64) -> u64 {
    pallet_staking::epoch_of(height, epoch_length)
}

/// The file's contents.
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Stored {
    /// Epoch → its validators, for each epoch whose set differs from the one before.
    changes: BTreeMap<u64, Vec<StoredValidator>>,
}

#[derive(Serialize, Deserialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StoredValidator {
    key: Public,
    power: u64,
}

/// See the module docs.
pub struct ValidatorSchedule {
    path: PathBuf,
    epoch_length: u64,
    genesis: Vec<Validator>,
    inner: Mutex<Inner>,
}

struct Inner {
    changes: BTreeMap<u64, Vec<Validator>>,
    /// The last set computed, with its height: sets of later heights start from it.
    cached: Option<(Height, ValidatorSet)>,
}

impl ValidatorSchedule {
    /// Opens the schedule of `spec`'s chain kept in `consensus_dir`, checks the staking
    /// pallet's genesis against the spec, and learns the sets that `best` (the state of block
    /// `best_number`) knows and the file does not (the file is written after a block is
    /// committed, so a crash can lose its last change).
    pub fn open(
        consensus_dir: &Path,
        spec: &ChainSpec,
        genesis: &ChangeSet,
        best: Snapshot,
        best_number: u64,
    ) -> Result<Self> {
        let path = consensus_dir.join("validator-sets.json");
        let stored: Stored = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::Io(format!(
                    "{} is damaged ({e}); restore it from a backup, or purge the chain and sync it again",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stored::default(),
            Err(e) => return Err(Error::Io(format!("reading {}: {e}", path.display()))),
        };
        let genesis_set = spec.validator_set()?.validators().to_vec();
        let epoch_length = spec.genesis.epoch_length;
        check_staking_genesis(spec, &genesis_set, genesis)?;
        let changes = stored
            .changes
            .into_iter()
            .map(|(epoch, list)| {
                (epoch, list.into_iter().map(|v| Validator { public: v.key, power: v.power }).collect())
            })
            .collect();
        let schedule = Self {
            path,
            epoch_length,
            genesis: genesis_set,
            inner: Mutex::new(Inner { changes, cached: None }),
        };
        let current = epoch_of(best_number, epoch_length);
        let mut reader = SnapshotReader(best);
        for epoch in current.saturating_sub(4)..=current + 1 {
            if let Some(elected) = pallet_staking::VALIDATORS.get(&mut reader, &epoch) {
                schedule.learn(epoch, consensus_list(&elected))?;
            }
        }
        Ok(schedule)
    }

    /// Learns the set elected by block `number`, whose state is `state`, if it elects one (the
    /// first block of an epoch does).
    pub fn imported(&self, number: u64, state: Snapshot) -> Result<()> {
        if number == 0 || !(number - 1).is_multiple_of(self.epoch_length) {
            return Ok(());
        }
        let next = epoch_of(number, self.epoch_length) + 1;
        match pallet_staking::VALIDATORS.get(&mut SnapshotReader(state), &next) {
            Some(elected) => self.learn(next, consensus_list(&elected)),
            None => Ok(()),
        }
    }

    /// Records that `epoch` has `list`, if that is a change; writes the file when it is.
    fn learn(&self, epoch: u64, list: Vec<Validator>) -> Result<()> {
        let mut inner = self.inner.lock();
        if list_at(&inner.changes, &self.genesis, epoch) == list.as_slice() {
            return Ok(());
        }
        if inner.changes.get(&epoch).is_some_and(|known| *known != list) {
            return Err(Error::Io(format!(
                "{}: epoch {epoch}'s validators differ from what the chain's state elected",
                self.path.display()
            )));
        }
        // A change invalidates sets computed past it.
        if inner.cached.as_ref().is_some_and(|(height, _)| epoch_of(*height, self.epoch_length) >= epoch) {
            inner.cached = None;
        }
        inner.changes.insert(epoch, list);
        self.write(&inner.changes)
    }

    fn write(&self, changes: &BTreeMap<u64, Vec<Validator>>) -> Result<()> {
        let stored = Stored {
            changes: changes
                .iter()
                .map(|(epoch, list)| {
                    (*epoch, list.iter().map(|v| StoredValidator { key: v.public, power: v.power }).collect())
                })
                .collect(),
        };
        let bytes = serde_json::to_vec_pretty(&stored).expect("serializable");
        let io = |e: std::io::Error| Error::Io(format!("writing {}: {e}", self.path.display()));
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let temporary = self.path.with_extension("json.new");
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&temporary).map_err(io)?;
            file.write_all(&bytes).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        std::fs::rename(&temporary, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(())
    }

    /// The validators of epoch `epoch` as far as this node knows (the last known change, or
    /// the chain spec's).
    pub fn list(&self, epoch: u64) -> Vec<Validator> {
        list_at(&self.inner.lock().changes, &self.genesis, epoch).to_vec()
    }

    /// The validator set of `height`, with its proposer priorities.
    pub fn set_at(&self, height: Height) -> Result<ValidatorSet> {
        let height = height.max(1);
        let mut inner = self.inner.lock();
        let (mut at, mut set) = match inner.cached.take() {
            Some((at, set)) if at <= height => (at, set),
            _ => (1, ValidatorSet::new(self.genesis.clone()).map_err(|e| Error::Io(e.to_string()))?),
        };
        while at < height {
            if at.is_multiple_of(self.epoch_length) {
                match inner.changes.get(&(at / self.epoch_length)) {
                    Some(list) => set = set.update(list.clone()).map_err(|e| Error::Io(e.to_string()))?,
                    None => set.advance(),
                }
            } else {
                set.advance();
            }
            at += 1;
        }
        inner.cached = Some((height, set.clone()));
        Ok(set)
    }
}

fn list_at<'a>(
    changes: &'a BTreeMap<u64, Vec<Validator>>,
    genesis: &'a [Validator],
    epoch: u64,
) -> &'a [Validator] {
    changes.range(..=epoch).next_back().map_or(genesis, |(_, list)| list.as_slice())
}

/// Reads the genesis storage.
struct ChangesReader<'a>(&'a ChangeSet);

impl hyperion_runtime::StorageRead for ChangesReader<'_> {
    fn read_raw(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.get(key).cloned().flatten()
    }
}

/// The staking pallet's elected set as consensus validators, ordered by key.
fn consensus_list(elected: &[pallet_staking::Elected]) -> Vec<Validator> {
    let mut list: Vec<Validator> =
        elected.iter().map(|v| Validator { public: v.key, power: v.power }).collect();
    list.sort_by_key(|v| v.public);
    list
}

/// When the staking pallet has genesis sequencers, the chain spec's validators must be the
/// set they elect (same keys, weights equal to their power), and the epoch lengths must agree.
fn check_staking_genesis(spec: &ChainSpec, genesis_set: &[Validator], genesis: &ChangeSet) -> Result<()> {
    let mut reader = ChangesReader(genesis);
    let invalid = |field: &str, message: String| Error::ChainSpec { field: field.into(), message };
    if let Some(config) = pallet_staking::CONFIG.get(&mut reader) {
        if config.epoch_length != spec.genesis.epoch_length {
            return Err(invalid(
                "genesis.runtime.staking.config.epochLength",
                format!(
                    "{} differs from genesis.epochLength ({})",
                    config.epoch_length, spec.genesis.epoch_length
                ),
            ));
        }
        if config.epoch_length < 2 {
            return Err(invalid(
                "genesis.epochLength",
                "with staking, an epoch needs at least 2 blocks (a set is elected a block into the epoch before it serves)".into(),
            ));
        }
    }
    let Some(elected) = pallet_staking::VALIDATORS.get(&mut reader, &0) else { return Ok(()) };
    let expected = consensus_list(&elected);
    if expected != genesis_set {
        let describe = |list: &[Validator]| {
            list.iter().map(|v| format!("{:?} weight {}", v.public, v.power)).collect::<Vec<_>>().join(", ")
        };
        return Err(invalid(
            "genesis.validators",
            format!(
                "must be the set the staking sequencers elect: [{}], not [{}]",
                describe(&expected),
                describe(genesis_set)
            ),
        ));
    }
    Ok(())
}
