//! Baseline (b)'s node store: `parity-db`, Substrate's own database, one column of trie nodes
//! keyed by node hash (`preimage` and `uniform`: the key is the value's Blake2 hash; no
//! reference counting, since nothing is pruned).
//!
//! Durability. `parity_db::Db::commit` only queues a transaction in memory: with its background
//! threads (its normal mode, [`Mode::Background`]) the write-ahead log is written later and
//! fsynced only once 64 MiB of log have accumulated, so a crash can lose many committed blocks,
//! and no public call waits for durability. [`Mode::Durable`] therefore opens it without
//! background threads and drives the log by hand after each commit (the `instrumentation`
//! feature exposes these calls): `process_commits` writes the transaction to the log,
//! `flush_logs` fsyncs the log (the block is durable from here: reopening replays it), and
//! `enact_logs` applies it to the index and value tables. Each block so gets its own log file, and
//! in its synced mode parity-db allows at most 4 applied logs before it fsyncs the tables and
//! deletes them (`clean_logs`; `enact_logs` waits for that beyond 4, and would wait forever here):
//! so the tables are fsynced every 4 blocks, and at [`Nodes::finish`].

use hash_db::{HashDBRef, Prefix};
use parity_db::{ColumnOptions, Db, Options};
use sp_core::{Blake2Hasher, H256};
use sp_trie::DBValue;
use std::path::{Path, PathBuf};

use super::trie::Nodes;
use crate::{Error, Result};

/// The column of trie nodes.
const NODES: u8 = 0;
/// Applied log files after which the tables are synced and the logs deleted (parity-db's own
/// limit in synced mode, `MAX_LOG_FILES`).
const MAX_LOG_FILES: u32 = 4;

/// How commits reach the disk.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Durable when `store` returns: the log is written and fsynced on the caller's thread.
    Durable,
    /// parity-db's normal mode: `store` returns once the commit is queued; background threads
    /// write and sync the log later.
    Background,
}

/// A parity-db trie node store.
pub struct ParityNodes {
    db: Db,
    path: PathBuf,
    mode: Mode,
    /// Applied log files since the last clean (`Mode::Durable`).
    unclean_logs: u32,
}

fn db_error(path: &Path, e: parity_db::Error) -> Error {
    Error::Check(format!("parity-db at {}: {e}", path.display()))
}

impl ParityNodes {
    /// Opens (or creates) the store in `path`.
    pub fn open(path: &Path, mode: Mode) -> Result<Self> {
        let mut options = Options::with_columns(path, 1);
        options.stats = false;
        options.with_background_thread = mode == Mode::Background;
        options.columns[usize::from(NODES)] =
            ColumnOptions { preimage: true, uniform: true, ref_counted: false, ..ColumnOptions::default() };
        let db = Db::open_or_create(&options).map_err(|e| db_error(path, e))?;
        Ok(Self { db, path: path.to_path_buf(), mode, unclean_logs: 0 })
    }

    /// Closes the store (parity-db writes and syncs everything pending on close); returns its
    /// folder.
    pub fn close(self) -> PathBuf {
        self.path
    }

    /// The commit mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    fn clean(&mut self) -> Result<()> {
        self.db.clean_logs().map_err(|e| db_error(&self.path, e))?;
        self.unclean_logs = 0;
        Ok(())
    }
}

impl HashDBRef<Blake2Hasher, DBValue> for ParityNodes {
    /// A read error reads as a missing node, which the trie reports as an incomplete database.
    fn get(&self, key: &H256, _prefix: Prefix) -> Option<DBValue> {
        self.db.get(NODES, key.as_bytes()).ok().flatten()
    }

    fn contains(&self, key: &H256, prefix: Prefix) -> bool {
        self.get(key, prefix).is_some()
    }
}

impl Nodes for ParityNodes {
    fn store(&mut self, nodes: Vec<(H256, DBValue)>) -> Result<()> {
        let path = &self.path;
        self.db.commit(nodes.into_iter().map(|(k, v)| (NODES, k, Some(v)))).map_err(|e| db_error(path, e))?;
        if self.mode == Mode::Background {
            return Ok(());
        }
        self.db.process_commits().map_err(|e| db_error(path, e))?;
        self.db.flush_logs().map_err(|e| db_error(path, e))?;
        self.db.enact_logs().map_err(|e| db_error(path, e))?;
        self.unclean_logs += 1;
        if self.unclean_logs >= MAX_LOG_FILES {
            self.clean()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if self.mode == Mode::Durable && self.unclean_logs > 0 {
            self.clean()?;
        }
        Ok(())
    }
}
