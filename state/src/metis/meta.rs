//! The two meta slots: which block is the last committed one, and where its data ends.
//!
//! ```text
//! slot = magic "METISDB2" (8) ++ seq (u64) ++ version (u64) ++ root (32)
//!        ++ head_segment (u32) ++ head_offset (u64) ++ segment_bytes (u64)
//!        ++ log_start (u32) ++ base_version (u64, all ones: no base) ++ base_segments (u32)
//!        ++ crc32 (u32)
//! ```
//!
//! A commit writes its records, syncs them, then writes the slot that does not hold the newest
//! meta (`seq % 2`) and syncs it. A torn slot fails its checksum, so the other one, the previous
//! commit, is used: a commit is all-or-nothing.

use hyperion_primitives::Hash;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"METISDB2";
/// Stores of the first format (trie nodes were not stored) have this magic.
const OLD_MAGICS: [&[u8; 8]; 1] = [b"METISDB1"];
const SLOT_BYTES: usize = 8 + 8 + 8 + 32 + 4 + 8 + 8 + 4 + 8 + 4 + 4;
/// Slot `i` starts at `i * SLOT_STRIDE`: the two slots are on different disk sectors and
/// pages, so that a write torn by a power cut cannot damage both.
const SLOT_STRIDE: usize = 4096;

/// The content of a meta slot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Meta {
    /// Incremented by every commit; the slot is `seq % 2`.
    pub seq: u64,
    /// The last committed block.
    pub version: u64,
    /// Its state root.
    pub root: Hash,
    /// Segment holding the end of the committed data.
    pub head_segment: u32,
    /// Where the committed data ends in that segment.
    pub head_offset: u64,
    /// Size of every segment file.
    pub segment_bytes: u64,
    /// The first log segment kept (the earlier ones were compacted into the base).
    pub log_start: u32,
    /// The block whose state the base holds, if there is one (`base-<version>/`).
    pub base: Option<u64>,
    /// Number of base segment files.
    pub base_segments: u32,
}

impl Meta {
    fn encode(&self) -> [u8; SLOT_BYTES] {
        let mut out = [0u8; SLOT_BYTES];
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(MAGIC);
        put(&self.seq.to_le_bytes());
        put(&self.version.to_le_bytes());
        put(&self.root.0);
        put(&self.head_segment.to_le_bytes());
        put(&self.head_offset.to_le_bytes());
        put(&self.segment_bytes.to_le_bytes());
        put(&self.log_start.to_le_bytes());
        put(&self.base.unwrap_or(u64::MAX).to_le_bytes());
        put(&self.base_segments.to_le_bytes());
        let crc = crc32fast::hash(&out[..SLOT_BYTES - 4]);
        out[SLOT_BYTES - 4..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < SLOT_BYTES || &bytes[..8] != MAGIC {
            return None;
        }
        let crc = u32::from_le_bytes(bytes[SLOT_BYTES - 4..SLOT_BYTES].try_into().ok()?);
        if crc32fast::hash(&bytes[..SLOT_BYTES - 4]) != crc {
            return None;
        }
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        Some(Self {
            seq: u64_at(8),
            version: u64_at(16),
            root: Hash(bytes[24..56].try_into().expect("32 bytes")),
            head_segment: u32_at(56),
            head_offset: u64_at(60),
            segment_bytes: u64_at(68),
            log_start: u32_at(76),
            base: Some(u64_at(80)).filter(|v| *v != u64::MAX),
            base_segments: u32_at(88),
        })
    }
}

/// The meta file with its two slots.
pub(crate) struct MetaFile {
    file: File,
    pub path: PathBuf,
}

impl MetaFile {
    /// Opens or creates `<dir>/meta`.
    pub fn open(dir: &Path) -> io::Result<Self> {
        let path = dir.join("meta");
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        Ok(Self { file, path })
    }

    /// The newest valid slot; `Ok(None)` for a new (empty) file; an error when the file has
    /// content but no valid slot.
    pub fn load(&self) -> io::Result<Option<Meta>> {
        let len = self.file.metadata()?.len();
        if len == 0 {
            return Ok(None);
        }
        let mut bytes = vec![0u8; SLOT_STRIDE + SLOT_BYTES];
        let read = self.file.read_at(&mut bytes, 0)?;
        bytes.truncate(read);
        let slot0 = &bytes[..read.min(SLOT_BYTES)];
        let slots = [Meta::decode(slot0), bytes.get(SLOT_STRIDE..).and_then(Meta::decode)];
        let newest = slots.into_iter().flatten().max_by_key(|m| m.seq);
        match newest {
            Some(meta) => Ok(Some(meta)),
            // Slot 0 takes the second commit: while it was never written, a bad slot 1 is the
            // first commit torn by a crash, and nothing was committed.
            None if slot0.iter().all(|b| *b == 0) => Ok(None),
            None if OLD_MAGICS.iter().any(|magic| bytes.starts_with(*magic)) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "written by an older MetisDB format; remove the state (purge-chain) and resync",
            )),
            None if bytes.iter().all(|b| *b == 0) => Ok(None),
            None => Err(io::Error::new(io::ErrorKind::InvalidData, "both meta slots are damaged")),
        }
    }

    /// Writes `meta` into its slot and syncs it.
    pub fn store(&self, meta: &Meta) -> io::Result<()> {
        let slot = meta.seq % 2;
        self.file.write_all_at(&meta.encode(), slot * SLOT_STRIDE as u64)?;
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(seq: u64) -> Meta {
        Meta {
            seq,
            version: seq + 10,
            root: Hash([seq as u8; 32]),
            head_segment: 1,
            head_offset: 99,
            segment_bytes: 4096,
            log_start: 1,
            base: seq.is_multiple_of(2).then_some(seq),
            base_segments: 3,
        }
    }

    #[test]
    fn newest_valid_slot_wins() {
        let dir = tempfile::tempdir().unwrap();
        let file = MetaFile::open(dir.path()).unwrap();
        assert_eq!(file.load().unwrap(), None);
        file.store(&meta(1)).unwrap();
        file.store(&meta(2)).unwrap();
        assert_eq!(file.load().unwrap(), Some(meta(2)));
        // A torn write of slot 1 (seq 3) leaves seq 2 in force.
        let mut torn = meta(3).encode();
        torn[30] ^= 1;
        file.file.write_all_at(&torn, SLOT_STRIDE as u64).unwrap();
        assert_eq!(file.load().unwrap(), Some(meta(2)));
        // Both damaged: an error, not an empty store.
        file.file.write_all_at(&[7u8; SLOT_STRIDE + SLOT_BYTES], 0).unwrap();
        assert!(file.load().is_err());
        // A first commit torn by a crash: nothing was committed.
        let fresh = tempfile::tempdir().unwrap();
        let file0 = MetaFile::open(fresh.path()).unwrap();
        file0.file.write_all_at(&torn[..40], SLOT_STRIDE as u64).unwrap();
        assert_eq!(file0.load().unwrap(), None);
        // An older format is named as such.
        file.file.write_all_at(b"METISDB1", 0).unwrap();
        assert!(file.load().unwrap_err().to_string().contains("older MetisDB format"));
    }
}
