//! Segment files: fixed-size, written with ordinary positional writes, read through a
//! read-only memory map. A segment is created at its full size (zero-filled, sparse), so it is
//! never resized while mapped; the store grows by adding segments.

use memmap2::Mmap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use super::record;
use super::table::{Keys, Loc};

/// One segment file, and possibly its copy in memory.
pub(crate) struct Segment {
    pub id: u32,
    pub path: PathBuf,
    file: File,
    map: Mmap,
    /// Reads are served from here when present and not `stale` (see [`Copy`](struct@Copy)).
    copy: Option<Copy>,
    /// Set when a write went below what the copy had published (a commit retried after a
    /// failed one): the copy is no longer written or read.
    stale: AtomicBool,
}

/// The path of segment `id` (log or base) in `dir`.
pub(crate) fn segment_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{:08}.seg", id & !BASE))
}

/// How many bytes of segments may be copied into memory (`--state-cache-size`), and how many
/// are. A segment takes its share when it is created or opened with a copy and gives it back
/// when dropped.
#[derive(Debug)]
pub(crate) struct CacheBudget {
    limit: u64,
    used: AtomicU64,
}

impl CacheBudget {
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self { limit, used: AtomicU64::new(0) })
    }

    /// Takes `bytes` of the budget if they are left.
    fn take(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    /// Bytes in use.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }
}

/// A segment's bytes in anonymous memory that asks for transparent huge pages, so that a read
/// costs one cache miss where the file's 4 KiB pages add a page walk (on this kind of machine a
/// random read in 1 GiB takes about 220 ns with huge pages and 350 ns without). Written by the
/// store's single writer at the end of what is published, read below it.
struct Copy {
    map: memmap2::MmapMut,
    ptr: *mut u8,
    /// Bytes written and visible to readers, from the start.
    published: AtomicUsize,
    budget: Arc<CacheBudget>,
}

// SAFETY: the pointer is into `map`, owned by the copy. Only one thread writes (the store's
// writer, or the compaction writing its own new segments), and only at or beyond `published`;
// readers only form slices below `published`, which the writer advances with release ordering
// after writing. No byte is read and written at the same time.
#[allow(unsafe_code)]
unsafe impl Send for Copy {}
#[allow(unsafe_code)]
unsafe impl Sync for Copy {}

impl Copy {
    /// A copy of `size` bytes (already taken from `budget`, given back on failure) whose
    /// first `fill.len()` bytes are `fill`.
    fn new(size: usize, fill: &[u8], budget: &Arc<CacheBudget>) -> io::Result<Self> {
        let mut map = memmap2::MmapMut::map_anon(size).inspect_err(|_| {
            budget.used.fetch_sub(size as u64, Ordering::AcqRel);
        })?;
        // Only a hint; without huge pages the copy works the same.
        let _ = map.advise(memmap2::Advice::HugePage);
        map[..fill.len()].copy_from_slice(fill);
        let ptr = map.as_mut_ptr();
        Ok(Self { map, ptr, published: AtomicUsize::new(fill.len()), budget: budget.clone() })
    }

    fn bytes(&self) -> &[u8] {
        let len = self.published.load(Ordering::Acquire);
        // SAFETY: `len` bytes are written and published, and are never written again.
        #[allow(unsafe_code)]
        unsafe {
            std::slice::from_raw_parts(self.ptr, len)
        }
    }

    fn write_at(&self, offset: usize, data: &[u8]) {
        let published = self.published.load(Ordering::Acquire);
        assert!(offset >= published && offset + data.len() <= self.map.len(), "a copy is only appended to");
        // SAFETY: in bounds (checked above) and beyond what readers may read (see `Copy`).
        #[allow(unsafe_code)]
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(offset), data.len());
        }
        self.published.store(offset + data.len(), Ordering::Release);
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.map.len() as u64, Ordering::AcqRel);
    }
}

impl Segment {
    /// Creates segment `id` of `size` bytes, replacing any leftover file of that name (a segment
    /// beyond the committed head holds nothing committed); with a copy in memory if `budget`
    /// has room.
    pub fn create(dir: &Path, id: u32, size: u64, budget: &Arc<CacheBudget>) -> io::Result<Self> {
        let path = segment_path(dir, id);
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path)?;
        file.set_len(size)?;
        file.sync_all()?;
        File::open(dir)?.sync_all()?;
        let mut segment = Self::map(id, path, file)?;
        if budget.take(size) {
            segment.copy = Some(Copy::new(size as usize, &[], budget)?);
        }
        Ok(segment)
    }

    /// Opens an existing segment, which must be `size` bytes; with a copy in memory of its
    /// first `copy_len` bytes (the rest is written later) if asked and `budget` has room.
    pub fn open(
        dir: &Path,
        id: u32,
        size: u64,
        copy_len: Option<usize>,
        budget: &Arc<CacheBudget>,
    ) -> io::Result<Self> {
        let path = segment_path(dir, id);
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let len = file.metadata()?.len();
        if len != size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is {len} bytes, segments are {size} bytes", path.display()),
            ));
        }
        let mut segment = Self::map(id, path, file)?;
        if let Some(copy_len) = copy_len.filter(|_| budget.take(size)) {
            // A length past the file (from a damaged meta) copies all of it; the scan then
            // reports the damage.
            let fill = &segment.map[..copy_len.min(segment.map.len())];
            segment.copy = Some(Copy::new(size as usize, fill, budget)?);
        }
        Ok(segment)
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
        Ok(Self { id, path, file, map, copy: None, stale: AtomicBool::new(false) })
    }

    /// The segment's bytes: its copy's written part, or the whole mapped file.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        match &self.copy {
            Some(copy) if !self.stale.load(Ordering::Acquire) => copy.bytes(),
            _ => &self.map,
        }
    }

    /// Writes `data` at `offset` (visible through the map once written, and in the copy).
    pub fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, offset)?;
        if let Some(copy) = self.copy.as_ref().filter(|_| !self.stale.load(Ordering::Acquire)) {
            if (offset as usize) < copy.published.load(Ordering::Acquire) {
                self.stale.store(true, Ordering::Release);
            } else {
                copy.write_at(offset as usize, data);
            }
        }
        Ok(())
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
    #[inline(always)]
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
    #[inline(always)]
    fn record(&self, loc: Loc) -> (&[u8], &[u8]) {
        self.key_value(loc)
    }

    /// The record's first two cache lines: its header, the key, and the value's start.
    #[inline]
    fn prefetch(&self, loc: Loc) {
        if let Some(record) = self.get(loc.segment).bytes().get(loc.offset as usize..) {
            super::table::prefetch(record.as_ptr());
            super::table::prefetch(record.as_ptr().wrapping_add(64));
        }
    }
}
