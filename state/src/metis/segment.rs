//! Segment files: fixed-size, written with ordinary positional writes, read through a
//! read-only memory map. A segment is created at its full size (zero-filled, sparse), so it is
//! never resized while mapped; the store grows by adding segments.

use memmap2::Mmap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::record;
use super::table::{Keys, Loc};

/// One segment file.
pub(crate) struct Segment {
    pub id: u32,
    pub path: PathBuf,
    file: File,
    map: Mmap,
}

/// The path of segment `id` (log or base) in `dir`.
pub(crate) fn segment_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{:08}.seg", id & !BASE))
}

impl Segment {
    /// Creates segment `id` of `size` bytes, replacing any leftover file of that name (a segment
    /// beyond the committed head holds nothing committed).
    pub fn create(dir: &Path, id: u32, size: u64) -> io::Result<Self> {
        let path = segment_path(dir, id);
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path)?;
        file.set_len(size)?;
        file.sync_all()?;
        File::open(dir)?.sync_all()?;
        Self::map(id, path, file)
    }

    /// Opens an existing segment, which must be `size` bytes.
    pub fn open(dir: &Path, id: u32, size: u64) -> io::Result<Self> {
        let path = segment_path(dir, id);
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let len = file.metadata()?.len();
        if len != size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is {len} bytes, segments are {size} bytes", path.display()),
            ));
        }
        Self::map(id, path, file)
    }

    #[allow(unsafe_code)]
    fn map(id: u32, path: PathBuf, file: File) -> io::Result<Self> {
        // SAFETY: the mapping is read-only and the file is owned by this store, which never
        // truncates or shrinks a segment while it is mapped (segments have a fixed size set at
        // creation) and only writes to ranges that no reader has been given a location in yet.
        // Other processes are kept out by the store's documented single-writer rule.
        let map = unsafe { Mmap::map(&file)? };
        // Only a hint: where the kernel keeps the file's pages in huge folios, reads take one
        // TLB entry per 2 MiB instead of a page walk per 4 KiB (measured: about 10% off a
        // random read).
        let _ = map.advise(memmap2::Advice::HugePage);
        Ok(Self { id, path, file, map })
    }

    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Writes `data` at `offset` (visible through the map once written).
    pub fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, offset)
    }

    /// Makes the written data durable.
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// Ids of base segments (the checkpoint a compaction writes) have this bit set; the rest of
/// the id is the file's number in the base's folder.
pub(crate) const BASE: u32 = 1 << 31;

/// The segments of a store: the base's, then the log's from `log_start` on.
#[derive(Default)]
pub(crate) struct Segments {
    /// Base segment `BASE | n` is at `n - 1`.
    pub base: Vec<Arc<Segment>>,
    /// Log segment `log_start + i` is at `i`.
    pub log: Vec<Arc<Segment>>,
    /// Id of the first log segment kept.
    pub log_start: u32,
}

impl Segments {
    /// The key and value of the record at `loc`.
    #[inline]
    pub fn key_value(&self, loc: Loc) -> (&[u8], &[u8]) {
        record::key_value(self.get(loc.segment).bytes(), loc.offset as usize)
    }

    /// The segment with id `id`, which must be kept.
    #[inline]
    pub fn get(&self, id: u32) -> &Arc<Segment> {
        if id & BASE != 0 {
            &self.base[(id & !BASE) as usize - 1]
        } else {
            &self.log[(id - self.log_start) as usize]
        }
    }
}

impl Keys for Segments {
    #[inline]
    fn key(&self, loc: Loc) -> &[u8] {
        self.key_value(loc).0
    }
}
