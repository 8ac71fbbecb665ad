//! Each worker thread on a core of its own.
//!
//! When a block starts, the thread that takes it spawns the other workers' tasks and wakes
//! them. Linux tends to wake a thread on the waker's core, where it waits behind the waker (busy
//! executing) until the scheduler's next balancing moves it, milliseconds later: as long as a
//! small block. Workers pinned to distinct cores are woken where they can run at once. The
//! workers take the cores the process may use, one each, in order; with fewer cores than
//! workers, or where the system refuses, nothing is pinned (only the timing changes, never a
//! result).

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
}
