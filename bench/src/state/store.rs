//! What the suite needs of a state store, and ours: MetisDB in a temporary folder.

use hyperion_state::{ChangeSet, MetisConfig, MetisDb, Snapshot, StateDb};
use sp_core::H256;
use std::path::{Path, PathBuf};

use super::READS_PER_SAMPLE;
use crate::Result;

/// A versioned key-value store with a state root per block, as the suite drives it.
pub trait Store {
    /// Reads of one version.
    type Reader<'a>: Reader
    where
        Self: 'a;

    /// Commits `changes` as block `number` (the next one) and returns its state root; when this
    /// returns, the block is as durable as the store makes it.
    fn commit(&mut self, number: u64, changes: &ChangeSet) -> Result<H256>;

    /// A reader of block `number`, which must still be readable.
    fn reader(&self, number: u64) -> Result<Self::Reader<'_>>;

    /// Finishes the work that earlier commits left pending (called at the end of each timed
    /// series of commits, inside the timing).
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }

    /// Prepares reads of `number` before they are measured: reads every key of `keys` once.
    fn warm(&self, number: u64, keys: &[[u8; 32]]) -> Result<()> {
        let mut reader = self.reader(number)?;
        for key in keys {
            std::hint::black_box(reader.get(key)?);
        }
        Ok(())
    }
}

/// Reads of one version of a [`Store`].
pub trait Reader {
    /// The value of `key`, if any.
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Calls `f` with the value of `key` borrowed from the store, without copying it out;
    /// returns whether the key exists. What the read latencies measure.
    fn read(&mut self, key: &[u8], f: &mut dyn FnMut(&[u8])) -> Result<bool>;

    /// [`read`](Self::read) of each of `keys` in order, as one request where the store has
    /// one (MetisDB's `read_many`); returns how many exist.
    fn read_many(&mut self, keys: &[[u8; 32]], f: &mut dyn FnMut(&[u8])) -> Result<usize> {
        let mut found = 0;
        for key in keys {
            found += usize::from(self.read(key, f)?);
        }
        Ok(found)
    }
}

/// Ours: MetisDB in a folder it does not own.
pub struct Metis {
    db: MetisDb,
    path: PathBuf,
    cache_bytes: u64,
}

impl Metis {
    /// Opens (or creates) MetisDB in `dir`, keeping `retain` versions readable and up to
    /// `cache_bytes` of its segments in memory.
    pub fn open(dir: &Path, retain: u64, cache_bytes: u64) -> Result<Self> {
        let config = MetisConfig { retain, cache_bytes, ..MetisConfig::default() };
        Ok(Self { db: MetisDb::open(dir, config)?, path: dir.to_path_buf(), cache_bytes })
    }

    /// MetisDB's counters and sizes.
    pub fn stats(&self) -> hyperion_state::MetisStats {
        self.db.stats()
    }

    /// Its folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The memory budget it was opened with.
    pub fn cache_bytes(&self) -> u64 {
        self.cache_bytes
    }

    /// The latest block and its root.
    pub fn latest(&self) -> Option<(u64, H256)> {
        self.db.latest().map(|(number, root)| (number, H256(root.0)))
    }
}

impl Store for Metis {
    type Reader<'a> = MetisReader;

    fn commit(&mut self, number: u64, changes: &ChangeSet) -> Result<H256> {
        Ok(H256(self.db.commit(number, changes, None)?.0))
    }

    fn reader(&self, number: u64) -> Result<MetisReader> {
        Ok(MetisReader(self.db.snapshot(number)?))
    }
}

/// A pinned MetisDB snapshot.
pub struct MetisReader(Snapshot);

impl Reader for MetisReader {
    #[inline]
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.0.get(key))
    }

    #[inline]
    fn read(&mut self, key: &[u8], f: &mut dyn FnMut(&[u8])) -> Result<bool> {
        let mut found = false;
        self.0.read(key, &mut |value| {
            if let Some(value) = value {
                found = true;
                f(value);
            }
        });
        Ok(found)
    }

    #[inline]
    fn read_many(&mut self, keys: &[[u8; 32]], f: &mut dyn FnMut(&[u8])) -> Result<usize> {
        let mut found = 0;
        for chunk in keys.chunks(READS_PER_SAMPLE) {
            let mut refs: [&[u8]; READS_PER_SAMPLE] = [&[]; READS_PER_SAMPLE];
            refs.iter_mut().zip(chunk).for_each(|(to, key)| *to = key);
            self.0.read_many(&refs[..chunk.len()], &mut |_, value| {
                if let Some(value) = value {
                    found += 1;
                    f(value);
                }
            });
        }
        Ok(found)
    }
}
