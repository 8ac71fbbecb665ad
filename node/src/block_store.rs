//! The durable block store: every imported block, with its receipts and block events, in one
//! append-only log file, `<dir>/blocks.log`.
//!
//! ```text
//! blocks.log  = file header ++ record(block 0) ++ record(block 1) ++ record(block 2) ++ ...
//!
//! file header (16 bytes)
//! +---------------------------------+-----------------------------+
//! | magic "hyperion/blk" (12 bytes) | format version (u32 LE) = 1 |
//! +---------------------------------+-----------------------------+
//!
//! record (12-byte header ++ payload)
//! +------------------------+-----------------+----------------+------------------------+
//! | magic "hblk" (4 bytes) | length (u32 LE) | crc32 (u32 LE) | payload (length bytes) |
//! +------------------------+-----------------+----------------+------------------------+
//! payload     = SCALE(StoredBlock { block: Block, receipts: Vec<Receipt>,
//!                                   block_events: Vec<EventRecord> })
//! length      = payload length in bytes, at most MAX_RECORD_BYTES
//! crc32       = CRC-32/ISO-HDLC (zlib's, `crc32fast`) of the payload
//! ```
//!
//! Records hold blocks 0 (genesis), 1, 2, ... in order, each block's `parent_hash` being the
//! previous block's hash. No payload is larger than [`MAX_RECORD_BYTES`].
//!
//! # Crash safety
//!
//! [`BlockStore::append`] writes a record at the end of the log and `fsync`s it before it
//! returns, so an appended block survives `kill -9` and power loss. A crash during an append
//! can only leave the *last* record incomplete (short, with a wrong checksum, or as trailing
//! bytes too short for a header). [`BlockStore::open`] drops such a torn tail (it truncates the
//! file back to the end of the last complete record, logs a warning and syncs), because the
//! block in it was never acknowledged. (A block whose append had not returned when the
//! process died may also be found complete on reopening: callers check
//! [`BlockStore::best_number`] after opening rather than assume their last acknowledged block.)
//!
//! Anything else is damage that a crash cannot explain, and [`BlockStore::open`] refuses it
//! with [`Error::Corrupt`] (path and byte offset) instead of repairing it: a bad record
//! followed by a valid one, trailing bytes too long to be one torn record, an undecodable
//! payload, or blocks out of sequence.
//!
//! The store does not lock the file: one process, one `BlockStore` per directory.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use hyperion_primitives::{Block, BlockNumber, EventRecord, Hash, Receipt};
use parity_scale_codec::{Decode, DecodeAll, Encode};

const LOG_TARGET: &str = "hyperion::block_store";

/// Name of the log file inside the store's directory.
pub const FILE_NAME: &str = "blocks.log";

/// Largest record payload (a SCALE-encoded [`StoredBlock`]) written or read, in bytes.
pub const MAX_RECORD_BYTES: u32 = 64 << 20;

/// The log format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// First bytes of the log file.
const FILE_MAGIC: [u8; 12] = *b"hyperion/blk";
/// Length of the file header: magic and version.
const FILE_HEADER_LEN: u64 = 16;
/// First bytes of every record.
const RECORD_MAGIC: [u8; 4] = *b"hblk";
/// Length of a record header: magic, payload length and checksum.
const RECORD_HEADER_LEN: u64 = 12;

/// What the store keeps per block: the block and what executing it produced.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct StoredBlock {
    /// The block, certificate included.
    pub block: Block,
    /// One receipt per extrinsic, in the block's order.
    pub receipts: Vec<Receipt>,
    /// Events emitted outside extrinsics (block initialization and finalization hooks).
    pub block_events: Vec<EventRecord>,
}

/// Errors of the block store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading, writing or syncing a file failed.
    #[error(
        "block store {}: I/O error: {source}; check the disk, its free space and the \
         permissions, then restart the node",
        path.display()
    )]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The log holds damage that a crash during an append cannot explain.
    #[error(
        "block store {} is corrupt at byte {offset}: {reason}; restore it from a backup or \
         purge the chain (`hyperion purge-chain`) and sync again",
        path.display()
    )]
    Corrupt {
        /// The log file.
        path: PathBuf,
        /// Byte offset of the damaged record (or 0 for the file header).
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The log was written in a format version this node does not read.
    #[error(
        "block store {} has format version {found}, but this node reads version \
         {FORMAT_VERSION}; run a node release that matches it, or purge the chain",
        path.display()
    )]
    UnsupportedVersion {
        /// The log file.
        path: PathBuf,
        /// The version found in the file header.
        found: u32,
    },
    /// An appended block's number is not the next one.
    #[error("cannot store block {got}: the next block to store is {expected}")]
    NotNext {
        /// The next block number (0 when the store is empty).
        expected: BlockNumber,
        /// The number of the block given.
        got: BlockNumber,
    },
    /// An appended block's parent is not the best stored block.
    #[error(
        "cannot store block {number}: its parent hash {got} is not the best block's hash \
         {expected}"
    )]
    NotChild {
        /// The number of the block given.
        number: BlockNumber,
        /// The best stored block's hash.
        expected: Hash,
        /// The block's parent hash.
        got: Hash,
    },
    /// An appended block encodes to more than [`MAX_RECORD_BYTES`].
    #[error(
        "cannot store block {number}: it encodes to {bytes} bytes, more than the limit of \
         {MAX_RECORD_BYTES}"
    )]
    TooLarge {
        /// The number of the block given.
        number: BlockNumber,
        /// Its encoded size.
        bytes: u64,
    },
    /// An earlier append failed to write or sync, so the end of the log is in an unknown state.
    #[error(
        "block store {}: an earlier write failed, so no more blocks are accepted; restart the \
         node to recover the log to its last complete block",
        path.display()
    )]
    Poisoned {
        /// The log file.
        path: PathBuf,
    },
}

/// This module's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// In-memory indexes over the log, rebuilt by every [`BlockStore::open`].
#[derive(Debug, Default)]
struct Index {
    /// `offsets[n]` is the byte offset of block `n`'s record.
    offsets: Vec<u64>,
    /// Hash of the last block.
    best_hash: Option<Hash>,
    /// Block number by block hash.
    by_hash: HashMap<Hash, BlockNumber>,
    /// Block number and position of each extrinsic, by extrinsic hash (first occurrence).
    txs: HashMap<Hash, (BlockNumber, u32)>,
}

impl Index {
    fn next_number(&self) -> BlockNumber {
        self.offsets.len() as BlockNumber
    }

    /// Checks that `block` may follow the indexed blocks.
    fn check_next(&self, block: &Block) -> Result<()> {
        let (expected, got) = (self.next_number(), block.header.number);
        if got != expected {
            return Err(Error::NotNext { expected, got });
        }
        match self.best_hash {
            Some(best) if block.header.parent_hash != best => {
                Err(Error::NotChild { number: got, expected: best, got: block.header.parent_hash })
            }
            _ => Ok(()),
        }
    }

    /// Indexes `stored`, whose record starts at `offset`; [`Self::check_next`] must have passed.
    fn push(&mut self, offset: u64, stored: &StoredBlock) {
        let number = self.next_number();
        assert_eq!(stored.block.header.number, number, "blocks are indexed in order");
        let hash = stored.block.hash();
        self.offsets.push(offset);
        self.by_hash.insert(hash, number);
        // Records are at most MAX_RECORD_BYTES (< u32::MAX), so positions fit in a u32.
        for (xt, position) in stored.block.extrinsics.iter().zip(0u32..) {
            self.txs.entry(xt.hash()).or_insert((number, position));
        }
        self.best_hash = Some(hash);
    }
}

/// The durable, append-only block store. See the [module docs](self) for the format.
///
/// Reads take `&self` and use positional reads, so a shared store can serve many readers.
#[derive(Debug)]
pub struct BlockStore {
    path: PathBuf,
    file: File,
    index: Index,
    /// Length of the log up to the end of the last complete record.
    end: u64,
    /// Set when an append failed part-way; appends are then refused.
    poisoned: bool,
}

impl BlockStore {
    /// Opens the store in `dir`, creating the directory and the log if they are missing.
    ///
    /// Reads every record, checking its magic, checksum, encoding and sequence, and builds
    /// the indexes. A torn last record is dropped (see the [module docs](self)).
    ///
    /// # Errors
    /// [`Error::Io`] if the files cannot be created, read or synced; [`Error::Corrupt`] or
    /// [`Error::UnsupportedVersion`] if the log holds damage or another format.
    pub fn open(dir: &Path) -> Result<Self> {
        let dir_existed = dir.exists();
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let path = dir.join(FILE_NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error(&path))?;
        if ensure_file_header(&file, &path)? {
            sync_dir(dir)?;
            if let (false, Some(parent)) = (dir_existed, dir.parent()) {
                sync_dir(parent)?;
            }
        }
        let file_len = file.metadata().map_err(io_error(&path))?.len();
        let (index, end) = scan(&file, &path, file_len)?;
        if end < file_len {
            file.set_len(end).and_then(|()| file.sync_all()).map_err(io_error(&path))?;
            tracing::warn!(
                target: LOG_TARGET,
                path = %path.display(),
                dropped_bytes = file_len - end,
                offset = end,
                "dropped a torn record at the end of the block log (a crash during an append)"
            );
        }
        let store = Self { path, file, index, end, poisoned: false };
        tracing::info!(
            target: LOG_TARGET,
            path = %store.path.display(),
            best = ?store.best_number(),
            "opened block store"
        );
        Ok(store)
    }

    /// Appends `stored` and syncs it to disk: once this returns `Ok`, the block survives a
    /// process kill or a power loss.
    ///
    /// # Errors
    /// [`Error::NotNext`] unless the block's number is the best number plus one (0 for an
    /// empty store); [`Error::NotChild`] unless its parent hash is the best block's hash;
    /// [`Error::TooLarge`] if it encodes to more than [`MAX_RECORD_BYTES`]. These leave the
    /// store unchanged. [`Error::Io`] if writing or syncing fails, after which the store
    /// refuses appends with [`Error::Poisoned`] until it is reopened.
    pub fn append(&mut self, stored: &StoredBlock) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned { path: self.path.clone() });
        }
        self.index.check_next(&stored.block)?;
        let number = stored.block.header.number;
        let payload = stored.encode();
        let record =
            encode_record(&payload).ok_or(Error::TooLarge { number, bytes: payload.len() as u64 })?;
        let written = self.file.write_all_at(&record, self.end).and_then(|()| self.file.sync_data());
        if let Err(source) = written {
            self.poisoned = true;
            return Err(Error::Io { path: self.path.clone(), source });
        }
        self.index.push(self.end, stored);
        self.end += record.len() as u64;
        tracing::debug!(target: LOG_TARGET, number, bytes = record.len(), "stored block");
        Ok(())
    }

    /// The number of the last stored block, or `None` if the store is empty.
    pub fn best_number(&self) -> Option<BlockNumber> {
        self.index.next_number().checked_sub(1)
    }

    /// The hash of the last stored block, or `None` if the store is empty.
    pub fn best_hash(&self) -> Option<Hash> {
        self.index.best_hash
    }

    /// Reads block `number` back from the log, or `None` if it is not stored.
    ///
    /// # Errors
    /// [`Error::Io`] if reading fails; [`Error::Corrupt`] if the record was damaged since the
    /// store was opened.
    pub fn get(&self, number: BlockNumber) -> Result<Option<StoredBlock>> {
        let offset = usize::try_from(number).ok().and_then(|n| self.index.offsets.get(n));
        let Some(&offset) = offset else {
            return Ok(None);
        };
        let payload = match read_record(&self.file, offset, self.end) {
            Ok(payload) => payload,
            Err(RecordError::Io(source)) => return Err(Error::Io { path: self.path.clone(), source }),
            Err(RecordError::Invalid(reason)) => return Err(corrupt(&self.path, offset, reason)),
        };
        let stored = decode_payload(&payload).map_err(|reason| corrupt(&self.path, offset, reason))?;
        if stored.block.header.number != number {
            let reason = format!("holds block {} where block {number} was", stored.block.header.number);
            return Err(corrupt(&self.path, offset, reason));
        }
        Ok(Some(stored))
    }

    /// Reads the block with header hash `hash`, or `None` if it is not stored.
    ///
    /// # Errors
    /// As [`Self::get`].
    pub fn get_by_hash(&self, hash: &Hash) -> Result<Option<StoredBlock>> {
        match self.number_of(hash) {
            Some(number) => self.get(number),
            None => Ok(None),
        }
    }

    /// The number of the stored block with header hash `hash`.
    pub fn number_of(&self, hash: &Hash) -> Option<BlockNumber> {
        self.index.by_hash.get(hash).copied()
    }

    /// Where the extrinsic with hash `xt_hash` was included: block number and index within
    /// the block's extrinsics. If the same hash was included twice, the first inclusion.
    pub fn tx_location(&self, xt_hash: &Hash) -> Option<(BlockNumber, u32)> {
        self.index.txs.get(xt_hash).copied()
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Why a record could not be read.
enum RecordError {
    /// The read itself failed.
    Io(io::Error),
    /// The bytes are not a complete, intact record.
    Invalid(String),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_owned(), source }
}

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> Error {
    Error::Corrupt { path: path.to_owned(), offset, reason: reason.into() }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error(dir))
}

/// The file header this code writes.
fn file_header() -> [u8; FILE_HEADER_LEN as usize] {
    let mut header = [0; FILE_HEADER_LEN as usize];
    header[..12].copy_from_slice(&FILE_MAGIC);
    header[12..].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header
}

/// Checks the file header, or writes and syncs it if the file is new: empty, or holding a
/// prefix of the header (a crash during creation). Returns whether it wrote the header.
fn ensure_file_header(file: &File, path: &Path) -> Result<bool> {
    let len = file.metadata().map_err(io_error(path))?.len();
    let expected = file_header();
    let mut found = [0; FILE_HEADER_LEN as usize];
    let present = &mut found[..len.min(FILE_HEADER_LEN) as usize];
    file.read_exact_at(present, 0).map_err(io_error(path))?;
    if len < FILE_HEADER_LEN {
        if *present != expected[..present.len()] {
            return Err(corrupt(path, 0, "the file is not a Hyperion block log (bad file magic)"));
        }
        file.write_all_at(&expected, 0).and_then(|()| file.sync_all()).map_err(io_error(path))?;
        return Ok(true);
    }
    if found[..12] != FILE_MAGIC {
        return Err(corrupt(path, 0, "the file is not a Hyperion block log (bad file magic)"));
    }
    let found = u32::from_le_bytes([found[12], found[13], found[14], found[15]]);
    if found != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion { path: path.to_owned(), found });
    }
    Ok(false)
}

/// Reads every record after the file header, checking each and indexing its block. Returns
/// the index and the end of the last complete record, which is `file_len` unless the log
/// has a torn tail.
fn scan(file: &File, path: &Path, file_len: u64) -> Result<(Index, u64)> {
    let mut index = Index::default();
    let mut offset = FILE_HEADER_LEN;
    while offset < file_len {
        let payload = match read_record(file, offset, file_len) {
            Ok(payload) => payload,
            Err(RecordError::Io(source)) => return Err(Error::Io { path: path.to_owned(), source }),
            Err(RecordError::Invalid(reason)) => {
                check_torn_tail(file, path, offset, file_len, &reason)?;
                break;
            }
        };
        let stored = decode_payload(&payload).map_err(|reason| corrupt(path, offset, reason))?;
        index.check_next(&stored.block).map_err(|e| corrupt(path, offset, out_of_sequence(e)))?;
        index.push(offset, &stored);
        offset += RECORD_HEADER_LEN + payload.len() as u64;
    }
    Ok((index, offset))
}

/// Describes a [`Index::check_next`] failure found in the log.
fn out_of_sequence(error: Error) -> String {
    match error {
        Error::NotNext { expected, got } => {
            format!("block {got} is out of sequence: block {expected} should be here")
        }
        Error::NotChild { number, expected, got } => {
            format!("block {number}'s parent hash {got} is not the previous block's hash {expected}")
        }
        other => other.to_string(),
    }
}

/// Decides whether the invalid record at `offset` is a torn tail, which a crash during an
/// append leaves, or corruption. A torn tail is at most one record long and holds no intact
/// record after its start. (A block whose extrinsics embed a valid record, torn by a crash,
/// is reported as corrupt: a false alarm, never a silent loss.)
fn check_torn_tail(file: &File, path: &Path, offset: u64, file_len: u64, reason: &str) -> Result<()> {
    let tail_len = file_len - offset;
    if tail_len > RECORD_HEADER_LEN + u64::from(MAX_RECORD_BYTES) {
        let reason = format!("{reason}, and the {tail_len} bytes from there are more than one record");
        return Err(corrupt(path, offset, reason));
    }
    let mut tail = vec![0; tail_len as usize];
    file.read_exact_at(&mut tail, offset).map_err(io_error(path))?;
    if contains_record(&tail[1..]) {
        return Err(corrupt(path, offset, format!("{reason}, and an intact record follows it")));
    }
    Ok(())
}

/// Reads the record at `offset`, which must end by `end`, and checks its header and checksum.
fn read_record(file: &File, offset: u64, end: u64) -> std::result::Result<Vec<u8>, RecordError> {
    let mut header = [0; RECORD_HEADER_LEN as usize];
    let available = end.saturating_sub(offset);
    if available < RECORD_HEADER_LEN {
        return Err(RecordError::Invalid(format!("{available} bytes are too short for a record")));
    }
    file.read_exact_at(&mut header, offset).map_err(RecordError::Io)?;
    let (len, crc) = check_record_header(&header, available).map_err(RecordError::Invalid)?;
    let mut payload = vec![0; len as usize];
    file.read_exact_at(&mut payload, offset + RECORD_HEADER_LEN).map_err(RecordError::Io)?;
    if crc32fast::hash(&payload) != crc {
        return Err(RecordError::Invalid("payload checksum mismatch".into()));
    }
    Ok(payload)
}

/// Checks a record header against the `available` bytes from its start; returns the payload
/// length and checksum.
fn check_record_header(header: &[u8; 12], available: u64) -> std::result::Result<(u32, u32), String> {
    let [m0, m1, m2, m3, l0, l1, l2, l3, c0, c1, c2, c3] = *header;
    if [m0, m1, m2, m3] != RECORD_MAGIC {
        return Err("bad record magic".into());
    }
    let len = u32::from_le_bytes([l0, l1, l2, l3]);
    if len > MAX_RECORD_BYTES {
        return Err(format!("record length {len} exceeds the limit of {MAX_RECORD_BYTES}"));
    }
    if u64::from(len) > available.saturating_sub(RECORD_HEADER_LEN) {
        return Err(format!("record length {len} runs past the end of the file"));
    }
    Ok((len, u32::from_le_bytes([c0, c1, c2, c3])))
}

/// Whether `bytes` contain an intact record (magic, length and checksum all valid).
fn contains_record(bytes: &[u8]) -> bool {
    (0..bytes.len()).any(|start| {
        let rest = &bytes[start..];
        let Some(header) = rest.first_chunk::<12>() else {
            return false;
        };
        let Ok((len, crc)) = check_record_header(header, rest.len() as u64) else {
            return false;
        };
        let payload = &rest[RECORD_HEADER_LEN as usize..][..len as usize];
        crc32fast::hash(payload) == crc
    })
}

/// Frames `payload` as a record, or `None` if it is larger than [`MAX_RECORD_BYTES`].
fn encode_record(payload: &[u8]) -> Option<Vec<u8>> {
    let len = u32::try_from(payload.len()).ok().filter(|&len| len <= MAX_RECORD_BYTES)?;
    let mut record = Vec::with_capacity(RECORD_HEADER_LEN as usize + payload.len());
    record.extend_from_slice(&RECORD_MAGIC);
    record.extend_from_slice(&len.to_le_bytes());
    record.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    record.extend_from_slice(payload);
    Some(record)
}

/// Decodes a record payload, which must be exactly one [`StoredBlock`].
fn decode_payload(payload: &[u8]) -> std::result::Result<StoredBlock, String> {
    StoredBlock::decode_all(&mut &payload[..]).map_err(|e| format!("undecodable block: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyperion_primitives::{Extrinsic, Header};
    use quickcheck::{quickcheck, TestResult};

    /// A chain of `n` blocks; block `k` carries extrinsics unique to it.
    fn chain(n: u64) -> Vec<StoredBlock> {
        let mut blocks: Vec<StoredBlock> = Vec::new();
        for number in 0..n {
            let parent_hash = blocks.last().map(|b| b.block.hash()).unwrap_or_default();
            let extrinsics = (0..=number % 3)
                .map(|i| Extrinsic::Ethereum([number.to_le_bytes(), i.to_le_bytes()].concat()))
                .collect::<Vec<_>>();
            let receipts = extrinsics
                .iter()
                .map(|_| Receipt { success: true, error: None, fee: 7, weight: 1, events: vec![] })
                .collect();
            let block = Block {
                header: Header { number, parent_hash, timestamp_ms: 1000 * number, ..Default::default() },
                extrinsics,
                certificate: (number % 2 == 1).then(|| vec![number as u8; 5]),
            };
            let block_events = vec![EventRecord { pallet: 1, event: 2, data: number.encode() }];
            blocks.push(StoredBlock { block, receipts, block_events });
        }
        blocks
    }

    /// Appends `blocks` to a store in `dir`; returns the log length after each append.
    fn write_chain(dir: &Path, blocks: &[StoredBlock]) -> Vec<u64> {
        let mut store = BlockStore::open(dir).unwrap();
        blocks
            .iter()
            .map(|b| {
                store.append(b).unwrap();
                std::fs::metadata(store.path()).unwrap().len()
            })
            .collect()
    }

    fn log_path(dir: &Path) -> PathBuf {
        dir.join(FILE_NAME)
    }

    fn file_len(dir: &Path) -> u64 {
        std::fs::metadata(log_path(dir)).unwrap().len()
    }

    fn truncate(dir: &Path, len: u64) {
        OpenOptions::new().write(true).open(log_path(dir)).unwrap().set_len(len).unwrap();
    }

    fn append_bytes(dir: &Path, bytes: &[u8]) {
        let file = OpenOptions::new().write(true).open(log_path(dir)).unwrap();
        file.write_all_at(bytes, file.metadata().unwrap().len()).unwrap();
    }

    fn flip_byte(dir: &Path, offset: u64) {
        let file = OpenOptions::new().read(true).write(true).open(log_path(dir)).unwrap();
        let mut byte = [0];
        file.read_exact_at(&mut byte, offset).unwrap();
        file.write_all_at(&[byte[0] ^ 0x40], offset).unwrap();
    }

    /// Asserts that the store in `dir` holds exactly `blocks`, indexes included.
    fn assert_holds(store: &BlockStore, blocks: &[StoredBlock]) {
        assert_eq!(store.best_number(), (blocks.len() as u64).checked_sub(1));
        assert_eq!(store.best_hash(), blocks.last().map(|b| b.block.hash()));
        for (number, stored) in (0u64..).zip(blocks) {
            assert_eq!(store.get(number).unwrap().as_ref(), Some(stored));
            assert_eq!(store.number_of(&stored.block.hash()), Some(number));
            assert_eq!(store.get_by_hash(&stored.block.hash()).unwrap().as_ref(), Some(stored));
            for (xt, position) in stored.block.extrinsics.iter().zip(0u32..) {
                assert_eq!(store.tx_location(&xt.hash()), Some((number, position)));
            }
        }
        assert_eq!(store.get(blocks.len() as u64).unwrap(), None);
        assert_eq!(store.get(u64::MAX).unwrap(), None);
    }

    fn assert_corrupt_at(result: Result<BlockStore>, dir: &Path, expected_offset: u64) {
        let err = result.unwrap_err();
        let message = err.to_string();
        match err {
            Error::Corrupt { path, offset, .. } => {
                assert_eq!(path, log_path(dir));
                assert_eq!(offset, expected_offset, "{message}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        assert!(message.contains(&log_path(dir).display().to_string()), "{message}");
        assert!(message.contains("purge-chain"), "{message}");
    }

    #[test]
    fn empty_store() {
        let dir = tempfile::tempdir().unwrap();
        let store_dir = dir.path().join("a/b");
        let store = BlockStore::open(&store_dir).unwrap();
        assert_eq!(store.path(), log_path(&store_dir));
        assert_holds(&store, &[]);
        assert_eq!(file_len(&store_dir), FILE_HEADER_LEN);
        drop(store);
        assert_holds(&BlockStore::open(&store_dir).unwrap(), &[]);
    }

    #[test]
    fn append_and_reopen_rebuild_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = chain(6);
        let mut store = BlockStore::open(dir.path()).unwrap();
        for (i, stored) in blocks.iter().enumerate() {
            store.append(stored).unwrap();
            assert_holds(&store, &blocks[..=i]);
        }
        assert_eq!(store.number_of(&Hash([9; 32])), None);
        assert_eq!(store.tx_location(&Hash([9; 32])), None);
        drop(store);
        let mut store = BlockStore::open(dir.path()).unwrap();
        assert_holds(&store, &blocks);
        let more = chain(8);
        store.append(&more[6]).unwrap();
        store.append(&more[7]).unwrap();
        drop(store);
        assert_holds(&BlockStore::open(dir.path()).unwrap(), &more);
    }

    #[test]
    fn out_of_order_appends_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = chain(3);
        let mut store = BlockStore::open(dir.path()).unwrap();
        let err = store.append(&blocks[1]).unwrap_err();
        assert!(matches!(err, Error::NotNext { expected: 0, got: 1 }), "{err}");
        store.append(&blocks[0]).unwrap();
        assert!(matches!(store.append(&blocks[0]), Err(Error::NotNext { expected: 1, got: 0 })));
        assert!(matches!(store.append(&blocks[2]), Err(Error::NotNext { expected: 1, got: 2 })));
        let mut orphan = blocks[1].clone();
        orphan.block.header.parent_hash = Hash([3; 32]);
        let err = store.append(&orphan).unwrap_err();
        assert!(matches!(err, Error::NotChild { number: 1, got, .. } if got == Hash([3; 32])), "{err}");
        // Refusals change nothing.
        let len = file_len(dir.path());
        store.append(&blocks[1]).unwrap();
        assert!(file_len(dir.path()) > len);
        drop(store);
        assert_holds(&BlockStore::open(dir.path()).unwrap(), &blocks[..2]);
    }

    #[test]
    fn too_large_block_is_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = chain(2);
        let mut store = BlockStore::open(dir.path()).unwrap();
        store.append(&blocks[0]).unwrap();
        let mut big = blocks[1].clone();
        big.block.extrinsics = vec![Extrinsic::Ethereum(vec![0; MAX_RECORD_BYTES as usize])];
        let err = store.append(&big).unwrap_err();
        assert!(matches!(err, Error::TooLarge { number: 1, bytes } if bytes > MAX_RECORD_BYTES.into()));
        store.append(&blocks[1]).unwrap();
        assert_holds(&store, &blocks);
    }

    #[test]
    fn torn_last_record_is_dropped_and_appends_resume() {
        let blocks = chain(4);
        let dir = tempfile::tempdir().unwrap();
        let ends = write_chain(dir.path(), &blocks);
        let (start, end) = (ends[2], ends[3]);
        for cut in [start + 1, start + 4, start + 11, start + 12, start + 13, end - 1] {
            truncate(dir.path(), cut);
            let mut store = BlockStore::open(dir.path()).unwrap();
            assert_holds(&store, &blocks[..3]);
            assert_eq!(file_len(dir.path()), start, "the torn tail is cut off");
            store.append(&blocks[3]).unwrap();
            drop(store);
            assert_holds(&BlockStore::open(dir.path()).unwrap(), &blocks);
            assert_eq!(file_len(dir.path()), end);
        }
    }

    #[test]
    fn torn_record_with_bad_checksum_is_dropped() {
        let blocks = chain(3);
        let dir = tempfile::tempdir().unwrap();
        let ends = write_chain(dir.path(), &blocks);
        flip_byte(dir.path(), ends[2] - 1);
        assert_holds(&BlockStore::open(dir.path()).unwrap(), &blocks[..2]);
        assert_eq!(file_len(dir.path()), ends[1]);
    }

    #[test]
    fn trailing_garbage_is_dropped() {
        let blocks = chain(3);
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut random = |len: usize| -> Vec<u8> {
            (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect()
        };
        let zeros = vec![0; 4096];
        let mut magic_then_zeros = RECORD_MAGIC.to_vec();
        magic_then_zeros.extend_from_slice(&[0xff; 8]);
        for garbage in
            [random(1), random(11), random(12), random(100), random(70_000), zeros, magic_then_zeros]
        {
            let dir = tempfile::tempdir().unwrap();
            let ends = write_chain(dir.path(), &blocks[..2]);
            append_bytes(dir.path(), &garbage);
            let mut store = BlockStore::open(dir.path()).unwrap();
            assert_holds(&store, &blocks[..2]);
            assert_eq!(file_len(dir.path()), ends[1]);
            store.append(&blocks[2]).unwrap();
            drop(store);
            assert_holds(&BlockStore::open(dir.path()).unwrap(), &blocks);
        }
    }

    #[test]
    fn damage_before_an_intact_record_is_corruption() {
        let blocks = chain(4);
        let dir = tempfile::tempdir().unwrap();
        let ends = write_chain(dir.path(), &blocks);
        let start = ends[1];
        // Magic, length (low and high byte), checksum, payload of block 2.
        for at in [start, start + 4, start + 7, start + 8, start + 20, ends[2] - 1] {
            flip_byte(dir.path(), at);
            assert_corrupt_at(BlockStore::open(dir.path()), dir.path(), start);
            flip_byte(dir.path(), at);
            assert_holds(&BlockStore::open(dir.path()).unwrap(), &blocks);
        }
        assert_eq!(file_len(dir.path()), ends[3], "nothing was truncated");
    }

    #[test]
    fn garbage_longer_than_a_record_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let ends = write_chain(dir.path(), &chain(1));
        append_bytes(dir.path(), &vec![0; MAX_RECORD_BYTES as usize + 13]);
        assert_corrupt_at(BlockStore::open(dir.path()), dir.path(), ends[0]);
    }

    /// Writes a log holding `blocks` as they are, in that order.
    fn write_raw_log(dir: &Path, blocks: &[StoredBlock]) -> Vec<u64> {
        let mut bytes = file_header().to_vec();
        let mut offsets = Vec::new();
        for stored in blocks {
            offsets.push(bytes.len() as u64);
            bytes.extend(encode_record(&stored.encode()).unwrap());
        }
        std::fs::write(log_path(dir), bytes).unwrap();
        offsets
    }

    #[test]
    fn blocks_out_of_sequence_are_corruption() {
        let blocks = chain(4);
        let dir = tempfile::tempdir().unwrap();
        let offsets = write_raw_log(dir.path(), &[blocks[0].clone(), blocks[2].clone()]);
        assert_corrupt_at(BlockStore::open(dir.path()), dir.path(), offsets[1]);

        let mut orphan = blocks[1].clone();
        orphan.block.header.parent_hash = Hash([1; 32]);
        let offsets = write_raw_log(dir.path(), &[blocks[0].clone(), orphan]);
        assert_corrupt_at(BlockStore::open(dir.path()), dir.path(), offsets[1]);

        let offsets = write_raw_log(dir.path(), &[blocks[1].clone()]);
        assert_corrupt_at(BlockStore::open(dir.path()), dir.path(), offsets[0]);
    }

    #[test]
    fn undecodable_intact_record_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = file_header().to_vec();
        bytes.extend(encode_record(&[1, 2, 3]).unwrap());
        std::fs::write(log_path(dir.path()), bytes).unwrap();
        assert_corrupt_at(BlockStore::open(dir.path()), dir.path(), FILE_HEADER_LEN);
    }

    #[test]
    fn foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(log_path(dir.path()), b"this is not a block log at all").unwrap();
        assert_corrupt_at(BlockStore::open(dir.path()), dir.path(), 0);
        std::fs::write(log_path(dir.path()), b"not a log").unwrap();
        assert_corrupt_at(BlockStore::open(dir.path()), dir.path(), 0);

        let mut header = file_header();
        header[12] = 2;
        std::fs::write(log_path(dir.path()), header).unwrap();
        let err = BlockStore::open(dir.path()).unwrap_err();
        assert!(matches!(err, Error::UnsupportedVersion { found: 2, .. }), "{err}");
        assert!(err.to_string().contains(&log_path(dir.path()).display().to_string()));
    }

    #[test]
    fn torn_file_header_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(log_path(dir.path()), &file_header()[..5]).unwrap();
        let mut store = BlockStore::open(dir.path()).unwrap();
        store.append(&chain(1)[0]).unwrap();
        drop(store);
        assert_holds(&BlockStore::open(dir.path()).unwrap(), &chain(1));
    }

    #[test]
    fn get_detects_damage_after_open() {
        let blocks = chain(3);
        let dir = tempfile::tempdir().unwrap();
        let ends = write_chain(dir.path(), &blocks);
        let store = BlockStore::open(dir.path()).unwrap();
        flip_byte(dir.path(), ends[1] - 2);
        let err = store.get(1).unwrap_err();
        assert!(matches!(err, Error::Corrupt { offset, .. } if offset == ends[0]), "{err}");
        assert_eq!(store.get(2).unwrap().as_ref(), Some(&blocks[2]));
    }

    #[test]
    fn store_is_shareable_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<BlockStore>();
    }

    /// Fixed encodings: a change here makes every existing block log unreadable.
    #[test]
    fn golden_encodings() {
        assert_eq!(hex::encode(file_header()), "6879706572696f6e2f626c6b01000000");
        assert_eq!(hex::encode(encode_record(&[1, 2, 3]).unwrap()), "68626c6b030000001d80bc55010203");
        assert_eq!(encode_record(&vec![0; MAX_RECORD_BYTES as usize + 1]), None);
    }

    quickcheck! {
        /// Cutting a log anywhere leaves exactly the blocks whose records end before the cut.
        fn truncation_keeps_complete_blocks(n: u8, cut: u64) -> TestResult {
            let blocks = chain(u64::from(n % 6) + 1);
            let dir = tempfile::tempdir().unwrap();
            let ends = write_chain(dir.path(), &blocks);
            let cut = cut % (ends[ends.len() - 1] + 1);
            truncate(dir.path(), cut);
            let kept = ends.iter().filter(|&&end| end <= cut).count();
            let mut store = BlockStore::open(dir.path()).unwrap();
            assert_holds(&store, &blocks[..kept]);
            if let Some(next) = blocks.get(kept) {
                store.append(next).unwrap();
            }
            TestResult::passed()
        }

        /// Random bytes after the last record never cost a complete block.
        fn garbage_never_costs_a_block(n: u8, garbage: Vec<u8>) -> bool {
            let blocks = chain(u64::from(n % 4) + 1);
            let dir = tempfile::tempdir().unwrap();
            write_chain(dir.path(), &blocks);
            append_bytes(dir.path(), &garbage);
            let store = BlockStore::open(dir.path()).unwrap();
            assert_holds(&store, &blocks);
            true
        }
    }
}
