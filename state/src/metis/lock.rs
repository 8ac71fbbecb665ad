//! A reader-writer lock for data that is read far more often than it is written, whose readers
//! take no atomic read-modify-write and no fence.
//!
//! Why: a `RwLock` read takes a locked compare-and-swap and a locked subtraction. On x86 a
//! locked instruction waits for every earlier load to finish, so back-to-back reads of the store
//! (each one or two cache misses) could not overlap in the processor at all, and every reader
//! thread wrote the lock's one cache line. Here a reader only writes its own slot.
//!
//! ```text
//! reader (thread n)                          writer
//!   slot[n] += 1          (plain store)        fallback.write()        (excludes other writers)
//!   light barrier         (compiler only)      writing = true
//!   if writing: undo, take fallback.read()     heavy barrier           (membarrier: every thread
//!   ... read the data ...                                               of the process fences)
//!   slot[n] -= 1          (release store)      wait until every slot is 0
//!                                              ... change the data ...
//!                                              writing = false          (release)
//! ```
//!
//! This is Dekker's mutual exclusion with an asymmetric barrier: the writer's `membarrier`
//! system call makes every running thread of the process execute a full barrier, so either the
//! writer sees a reader's slot (and waits for it) or the reader sees `writing` (and takes the
//! fallback lock, which the writer holds). Where `membarrier` is not available, both sides use a
//! full fence instead: still correct, with readers as costly as a `RwLock`'s.
//!
//! A thread gets one of [`FAST_READERS`] numbers (given back when it ends) that picks its slot in
//! every lock; threads beyond that many read through the fallback lock. A thread may read again
//! while it reads (the slot counts the depth). A writer must not write while it holds a read
//! guard of the same lock: it would wait for itself.

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::sync::atomic::{compiler_fence, fence, AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

/// Threads that read without the fallback lock (each has a slot of two cache lines in every
/// lock, and a writer looks at every slot).
pub(crate) const FAST_READERS: usize = 128;

/// A reader thread's slot in one lock. Written only by its thread.
#[repr(align(128))]
#[derive(Default)]
struct Slot {
    /// How many read guards the thread holds on the lock.
    depth: AtomicU64,
    /// Reads counted by the thread ([`ReadGuard::count_reads`]).
    reads: AtomicU64,
}

/// See the module docs.
pub(crate) struct ReadMostly<T> {
    data: UnsafeCell<T>,
    /// Set while a writer waits for readers or holds the data: new readers take `fallback`.
    writing: AtomicBool,
    /// Held exclusively by writers, shared by readers without a slot or that met a writer.
    fallback: RwLock<()>,
    /// Reads counted by fallback readers.
    fallback_reads: AtomicU64,
    slots: Box<[Slot]>,
    /// Whether the heavy barrier is `membarrier` (fixed for the process).
    asymmetric: bool,
}

// SAFETY: the data is only reached through guards: shared references while no writer holds it,
// one mutable reference while no reader does (see the module docs), as a `RwLock` gives.
#[allow(unsafe_code)]
unsafe impl<T: Send + Sync> Sync for ReadMostly<T> {}
#[allow(unsafe_code)]
unsafe impl<T: Send> Send for ReadMostly<T> {}

impl<T> ReadMostly<T> {
    pub fn new(data: T) -> Self {
        Self {
            data: UnsafeCell::new(data),
            writing: AtomicBool::new(false),
            fallback: RwLock::new(()),
            fallback_reads: AtomicU64::new(0),
            slots: (0..FAST_READERS).map(|_| Slot::default()).collect(),
            asymmetric: barrier::asymmetric(),
        }
    }

    /// Shared access; writers wait until the guard is dropped.
    #[inline]
    pub fn read(&self) -> ReadGuard<'_, T> {
        if let Some(slot) = thread_number().map(|n| &self.slots[n]) {
            // Only this thread writes its slot: a load and a store, no read-modify-write.
            let depth = slot.depth.load(Ordering::Relaxed);
            slot.depth.store(depth + 1, Ordering::Relaxed);
            // Already reading: a writer, if any, is waiting for this thread.
            if depth > 0 {
                return ReadGuard { lock: self, slot: Some(slot), _fallback: None, _not_send: PhantomData };
            }
            barrier::light(self.asymmetric);
            if !self.writing.load(Ordering::Acquire) {
                return ReadGuard { lock: self, slot: Some(slot), _fallback: None, _not_send: PhantomData };
            }
            slot.depth.store(depth, Ordering::Release);
        }
        // Recursive: a thread that already reads through the fallback may read again even if a
        // writer is queued (a plain `read` would wait behind that writer, which waits for it).
        let fallback = self.fallback.read_recursive();
        ReadGuard { lock: self, slot: None, _fallback: Some(fallback), _not_send: PhantomData }
    }

    /// Exclusive access, once every reader that came first has dropped its guard.
    pub fn write(&self) -> WriteGuard<'_, T> {
        let fallback = self.fallback.write();
        self.writing.store(true, Ordering::Relaxed);
        barrier::heavy(self.asymmetric);
        for slot in self.slots.iter() {
            let mut waited = 0u32;
            while slot.depth.load(Ordering::Acquire) != 0 {
                // Readers hold their guard for one read; one that was preempted may take longer.
                waited += 1;
                if waited < 64 {
                    std::hint::spin_loop();
                } else if waited < 1024 {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(std::time::Duration::from_micros(50));
                }
            }
        }
        WriteGuard { lock: self, _fallback: fallback }
    }

    /// Reads counted by every reader ([`ReadGuard::count_reads`]) so far.
    pub fn reads(&self) -> u64 {
        let fast: u64 = self.slots.iter().map(|slot| slot.reads.load(Ordering::Relaxed)).sum();
        fast + self.fallback_reads.load(Ordering::Relaxed)
    }
}

/// Shared access to a [`ReadMostly`]'s data. Not `Send`: the slot it holds is its thread's.
pub(crate) struct ReadGuard<'a, T> {
    lock: &'a ReadMostly<T>,
    /// The thread's slot (fast path), or `None` with the fallback lock held.
    slot: Option<&'a Slot>,
    _fallback: Option<RwLockReadGuard<'a, ()>>,
    _not_send: PhantomData<*const ()>,
}

impl<T> ReadGuard<'_, T> {
    /// Adds `n` to the lock's count of reads (a metric).
    #[inline]
    pub fn count_reads(&self, n: u64) {
        match self.slot {
            Some(slot) => {
                slot.reads.store(slot.reads.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
            }
            None => {
                self.lock.fallback_reads.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

impl<T> std::ops::Deref for ReadGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: no writer holds the data while a read guard lives (module docs).
        #[allow(unsafe_code)]
        unsafe {
            &*self.lock.data.get()
        }
    }
}

impl<T> Drop for ReadGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            // Release: the reads above happen before a writer that sees the slot drop.
            slot.depth.store(slot.depth.load(Ordering::Relaxed) - 1, Ordering::Release);
        }
    }
}

/// Exclusive access to a [`ReadMostly`]'s data.
pub(crate) struct WriteGuard<'a, T> {
    lock: &'a ReadMostly<T>,
    _fallback: RwLockWriteGuard<'a, ()>,
}

impl<T> std::ops::Deref for WriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: this guard excludes every reader and writer (module docs).
        #[allow(unsafe_code)]
        unsafe {
            &*self.lock.data.get()
        }
    }
}

impl<T> std::ops::DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and the guard is borrowed mutably.
        #[allow(unsafe_code)]
        unsafe {
            &mut *self.lock.data.get()
        }
    }
}

impl<T> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        // Release: a reader that sees `false` sees every change made under this guard. The
        // fallback lock is released after this (fields drop after `drop`).
        self.lock.writing.store(false, Ordering::Release);
    }
}

/// This thread's number, `None` when all are taken (or the thread is ending).
#[inline]
fn thread_number() -> Option<usize> {
    THREAD_NUMBER.try_with(|number| number.0).ok().flatten()
}

thread_local! {
    static THREAD_NUMBER: ThreadNumber = ThreadNumber::take();
}

/// Numbers never given out yet start at `.0`; `.1` holds those given back.
static NUMBERS: std::sync::Mutex<(usize, Vec<usize>)> = std::sync::Mutex::new((0, Vec::new()));

/// A thread's number, given back when the thread ends.
struct ThreadNumber(Option<usize>);

impl ThreadNumber {
    fn take() -> Self {
        let mut numbers = NUMBERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (next, free) = &mut *numbers;
        let number =
            free.pop().or_else(|| (*next < FAST_READERS).then(|| std::mem::replace(next, *next + 1)));
        Self(number)
    }
}

impl Drop for ThreadNumber {
    fn drop(&mut self) {
        // The thread holds no guard any more: guards are not `Send` and end with their scope.
        if let Some(number) = self.0 {
            NUMBERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).1.push(number);
        }
    }
}

/// The two barriers of the module docs.
mod barrier {
    use super::{compiler_fence, fence, OnceLock, Ordering};

    /// Whether the heavy barrier is `membarrier` (decided once, before any lock exists).
    pub fn asymmetric() -> bool {
        static ASYMMETRIC: OnceLock<bool> = OnceLock::new();
        *ASYMMETRIC.get_or_init(register)
    }

    #[cfg(target_os = "linux")]
    fn register() -> bool {
        use rustix::thread::{membarrier, membarrier_query, MembarrierCommand};
        membarrier_query().contains_command(MembarrierCommand::PrivateExpedited)
            && membarrier(MembarrierCommand::RegisterPrivateExpedited).is_ok()
    }

    #[cfg(not(target_os = "linux"))]
    fn register() -> bool {
        false
    }

    /// The readers' side: keeps the compiler from moving the slot's store after the load of
    /// `writing`; the processor is made to order them by the writer's heavy barrier.
    #[inline(always)]
    pub fn light(asymmetric: bool) {
        if asymmetric {
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
    }

    /// The writer's side.
    pub fn heavy(asymmetric: bool) {
        if !asymmetric {
            return fence(Ordering::SeqCst);
        }
        #[cfg(target_os = "linux")]
        rustix::thread::membarrier(rustix::thread::MembarrierCommand::PrivateExpedited)
            .expect("membarrier, registered by this process, failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn readers_never_see_a_write_half_done() {
        // The writer keeps both halves equal under the lock; readers on other threads must
        // always see them equal.
        let lock = Arc::new(ReadMostly::new((0u64, 0u64)));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (lock, stop) = (lock.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut seen = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let guard = lock.read();
                        let (a, b) = *guard;
                        // Read again inside the same guard, and nested.
                        let nested = lock.read();
                        assert_eq!(a, b, "a read saw half a write");
                        assert_eq!(*nested, (a, b), "the data changed under a read guard");
                        guard.count_reads(1);
                        seen += 1;
                    }
                    seen
                })
            })
            .collect();
        for i in 1..=2_000u64 {
            let mut guard = lock.write();
            guard.0 = i;
            std::hint::black_box(&mut *guard);
            guard.1 = i;
        }
        stop.store(true, Ordering::Relaxed);
        let seen: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
        assert_eq!(*lock.read(), (2_000, 2_000));
        assert_eq!(lock.reads(), seen, "every counted read is in the total");
    }

    #[test]
    fn threads_beyond_the_slots_read_through_the_fallback_and_numbers_are_given_back() {
        let lock = Arc::new(ReadMostly::new(7u32));
        let barrier = Arc::new(std::sync::Barrier::new(FAST_READERS + 11));
        let threads: Vec<_> = (0..FAST_READERS + 10)
            .map(|_| {
                let (lock, barrier) = (lock.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let guard = lock.read();
                    guard.count_reads(1);
                    let value = *guard;
                    drop(guard);
                    // Every thread is alive at once here: some have no number.
                    barrier.wait();
                    value
                })
            })
            .collect();
        barrier.wait();
        *lock.write() += 1;
        assert!(threads.into_iter().all(|t| t.join().unwrap() == 7));
        assert_eq!(*lock.read(), 8);
        assert_eq!(lock.reads(), FAST_READERS as u64 + 10);
        // Those threads ended: more threads over time than there are numbers all get one
        // (one test, so that no other test of this module holds numbers meanwhile).
        for _ in 0..FAST_READERS + 8 {
            std::thread::spawn(|| assert!(thread_number().is_some(), "a number was not given back"))
                .join()
                .unwrap();
        }
    }
}
