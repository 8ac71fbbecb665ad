//! Each worker thread on a core of its own.
//!
//! When a block starts, the thread that takes it spawns the other workers' tasks and wakes
//! them. Linux tends to wake a thread on the waker's core, where it waits behind the waker (busy
//! executing) until the scheduler's next balancing moves it, milliseconds later: as long as a
//! small block. Workers pinned to distinct cores are woken where they can run at once. A pool's
//! workers take the cores the process may use, one each, in order, starting after the cores
//! that the pools made before took (so that two executors in one process spread over the
//! machine); with fewer cores than workers, or where the system refuses, nothing is pinned (only
//! the timing changes, never a result).

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Cores handed to pools so far in this process.
static CORES_TAKEN: AtomicUsize = AtomicUsize::new(0);

/// The cores for a pool of `threads` workers, one each (empty: do not pin).
pub(crate) fn cores_for(threads: usize) -> Vec<usize> {
    let cpus = allowed_cpus();
    if threads == 0 || cpus.len() < threads {
        return Vec::new();
    }
    cores_from(&cpus, CORES_TAKEN.fetch_add(threads, Relaxed), threads)
}

/// `threads` of `cpus` (at least that many), from the `first`-th on, wrapping around.
fn cores_from(cpus: &[usize], first: usize, threads: usize) -> Vec<usize> {
    (0..threads).map(|i| cpus[(first + i) % cpus.len()]).collect()
}

/// The cores this process may run on, in order (empty where unknown).
#[cfg(target_os = "linux")]
pub(crate) fn allowed_cpus() -> Vec<usize> {
    use rustix::thread::{sched_getaffinity, CpuSet};
    match sched_getaffinity(None) {
        Ok(set) => (0..CpuSet::MAX_CPU).filter(|&cpu| set.is_set(cpu)).collect(),
        Err(_) => Vec::new(),
    }
}

/// Runs the calling thread on `cpu` only, if the system allows.
#[cfg(target_os = "linux")]
pub(crate) fn pin_current_thread(cpu: usize) {
    use rustix::thread::{sched_setaffinity, CpuSet};
    let mut set = CpuSet::new();
    set.set(cpu);
    // Best effort: a refusal leaves the thread where the scheduler puts it.
    let _ = sched_setaffinity(None, &set);
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn allowed_cpus() -> Vec<usize> {
    Vec::new()
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn pin_current_thread(_cpu: usize) {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_thread_runs_on_its_core_only() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty(), "the process runs somewhere");
        let last = *cpus.last().expect("checked");
        let set = std::thread::spawn(move || {
            pin_current_thread(last);
            rustix::thread::sched_getaffinity(None).expect("own affinity")
        })
        .join()
        .expect("the thread ends");
        assert_eq!(set.count(), 1);
        assert!(set.is_set(last));
        // Other threads keep theirs.
        assert_eq!(allowed_cpus(), cpus);
    }

    #[test]
    fn pools_take_distinct_cores_in_turn() {
        let cpus = [0, 2, 5];
        assert_eq!(cores_from(&cpus, 0, 2), [0, 2]);
        assert_eq!(cores_from(&cpus, 2, 2), [5, 0], "the next pool starts after the last core taken");
        assert_eq!(cores_from(&cpus, 4, 3), [2, 5, 0], "as large as the machine: every core once");
        let all = allowed_cpus().len();
        assert!(cores_for(all + 1).is_empty(), "more workers than cores: none pinned");
        assert_eq!(cores_for(all).len(), all);
    }
}
