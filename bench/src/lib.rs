//! Hyperion's comparative benchmarks.
//!
//! Each suite measures one path of the chain and, in the same run and on the same inputs, a
//! **baseline**: the least a correct implementation must do for the same result, or the
//! established implementation we mean to beat. It reports both figures and their ratio, so that a
//! number means something on any machine: above 1 we beat the baseline, below 1 the ratio is our
//! overhead. Every suite checks that both sides did
//! the same work and reached the same result, so it cannot silently measure nothing.
//!
//! Suites (one subcommand each of the `hyperion-bench` binary):
//!
//! - [`runtime`]: native transfers per second through block building, execution and commit.
//! - [`node`]: a 4-validator network of `hyperion` processes on loopback against one validator:
//!   blocks decided per second, proposal-to-decision latency, transfers included per second,
//!   and a validator's catch-up by sync against `import-blocks` of the same blocks.
//! - [`state`]: state reads (latest and 64 blocks old) and durable commits of MetisDB against
//!   `sp-trie` over a warm in-memory cache and over `parity-db`.
//!
//! Throughputs are better higher (`ratio = ours / baseline`), latencies lower
//! (`ratio = baseline / ours`): above 1 we are faster either way. Cases held to a goal print it
//! next to the figures, and JSON lines then add `"goal"` and `"goal_met"`.
//!
//! Output: a table, or with `--json` one line per case (shown wrapped here), for example:
//!
//! ```text
//! {"suite":"runtime","case":"propose/accounts=1000/txs_per_block=1000",
//!  "baseline":13011.2,"ours":7284.5,"ratio":0.56,"unit":"transfers/s"}
//! ```
//!
//! Inputs are generated from fixed seeds and nothing depends on timing, so two runs measure the
//! same work. Timings use [`std::time::Instant`]; each figure is the median of the repetitions.

#![warn(missing_docs)]

pub mod mpef;
pub mod node;
mod report;
pub mod runtime;
pub mod staking;
pub mod state;
pub mod vm;

pub use report::{median, table, Goal, Row};

/// Errors of a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The runtime refused to build, execute or set up a chain.
    #[error(transparent)]
    Runtime(#[from] hyperion_runtime::Error),
    /// The state backend failed.
    #[error(transparent)]
    State(#[from] hyperion_state::Error),
    /// A benchmark file operation failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A side did not do the expected work, or the two sides disagree: the figures would be
    /// meaningless.
    #[error("benchmark check failed: {0}")]
    Check(String),
}

/// This crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// A scratch directory for a suite's databases, removed when dropped, named
/// `{prefix}{pid}-{random}` in the system's temporary directory. Directories of earlier runs
/// with this prefix whose process is gone (killed: nothing removed them) are removed first, so
/// that interrupted runs of the state suite, which writes gigabytes, do not fill the disk.
pub fn scratch_dir(prefix: &str) -> std::io::Result<tempfile::TempDir> {
    remove_abandoned(&std::env::temp_dir(), prefix);
    tempfile::Builder::new().prefix(&format!("{prefix}{}-", std::process::id())).tempdir()
}

/// Removes the directories `{prefix}{pid}-...` under `parent` whose process no longer runs
/// (Linux: no `/proc/{pid}`; elsewhere nothing is removed).
fn remove_abandoned(parent: &std::path::Path, prefix: &str) {
    if !std::path::Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(prefix))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let gone = !std::path::Path::new(&format!("/proc/{pid}")).exists();
        if gone && entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            // Best effort: another run may be removing it too.
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_dirs_of_dead_processes_are_removed_and_live_ones_kept() {
        let parent = tempfile::tempdir().unwrap();
        let prefix = "hyperion-bench-test-";
        // A pid above the kernel's largest (4,194,304) never runs.
        let dead = parent.path().join(format!("{prefix}4294967000-abc"));
        let live = parent.path().join(format!("{prefix}{}-def", std::process::id()));
        let other = parent.path().join("hyperion-bench-other-4294967000-ghi");
        for dir in [&dead, &live, &other] {
            std::fs::create_dir_all(dir.join("metis")).unwrap();
        }
        remove_abandoned(parent.path(), prefix);
        if std::path::Path::new("/proc/self").exists() {
            assert!(!dead.exists(), "a dead process's directory is removed");
        }
        assert!(live.exists() && other.exists(), "a live process's and another prefix's stay");
    }
}
