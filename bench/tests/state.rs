//! The state suite at its smoke size: every figure is positive, the three stores agree (the run
//! itself fails on any root or value mismatch), and the binary prints one JSON line per case.
//! No timing assertions.

use hyperion_bench::state::{run, SMOKE};
use std::process::Command;

/// Cases in a run: 2 versions x 2 read modes x 2 percentiles x 2 baselines of reads, 2 block
/// sizes x 3 update comparisons, and the open time.
const CASES: usize = 2 * 2 * 2 * 2 + 2 * 3 + 1;

/// The cases held to the goals.
const GOAL_CASES: [&str; 6] = [
    "read_latest_p50/keys=20000/vs_memory_trie",
    "read_latest_p50/keys=20000/vs_paritydb_trie",
    "read_latest_batch16_p50/keys=20000/vs_memory_trie",
    "read_latest_batch16_p50/keys=20000/vs_paritydb_trie",
    "update_1000/keys=20000/vs_paritydb_trie",
    "update_10000/keys=20000/vs_paritydb_trie",
];

#[test]
fn smoke_state_suite_measures_equal_work() {
    let outcome = run(&SMOKE).expect("the smoke state suite runs");
    outcome.check().expect("the stores agree");
    assert_eq!(outcome.reads.len(), 4);
    assert_eq!(outcome.updates.len(), SMOKE.update_block_sizes.len());
    for read in &outcome.reads {
        assert_eq!(read.ours.digest, read.memory.digest, "{read:?}");
        assert_eq!(read.ours.digest, read.parity.digest, "{read:?}");
        for latency in [read.ours, read.memory, read.parity] {
            assert!(latency.p50_ns > 0.0 && latency.p50_ns <= latency.p99_ns, "{read:?}");
        }
    }
    assert!(outcome.final_roots.iter().all(|r| *r == outcome.final_roots[0]));

    let rows = outcome.rows();
    assert_eq!(rows.len(), CASES);
    for row in &rows {
        assert_eq!(row.suite, "state");
        assert!(row.baseline > 0.0 && row.baseline.is_finite(), "{row:?}");
        assert!(row.ours > 0.0 && row.ours.is_finite(), "{row:?}");
        assert!(row.ratio() > 0.0 && row.ratio().is_finite(), "{row:?}");
    }
    let with_goals: Vec<&str> =
        rows.iter().filter(|r| !r.goals.is_empty()).map(|r| r.case.as_str()).collect();
    assert_eq!(with_goals, GOAL_CASES);

    // An outcome whose stores read different values, end at different roots or measured
    // nothing fails the check.
    let mut broken = outcome.clone();
    broken.reads[1].parity.digest ^= 1;
    assert!(broken.check().is_err());
    let mut broken = outcome.clone();
    broken.final_roots[2].0[0] ^= 1;
    assert!(broken.check().is_err());
    let mut broken = outcome.clone();
    broken.updates[0].parity = 0.0;
    assert!(broken.check().is_err());
}

#[test]
fn binary_prints_one_json_line_per_state_case() {
    let output = Command::new(env!("CARGO_BIN_EXE_hyperion-bench"))
        .args(["--json", "state", "--smoke"])
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(lines.len(), CASES);
    for line in &lines {
        assert_eq!(line["suite"], "state");
        assert!(["ns", "updates/s", "ms"].contains(&line["unit"].as_str().unwrap()), "{line}");
        for field in ["baseline", "ours", "ratio"] {
            assert!(line[field].as_f64().is_some_and(|v| v > 0.0), "{field} in {line}");
        }
        let case = line["case"].as_str().unwrap();
        assert_eq!(GOAL_CASES.contains(&case), line["goal_met"].is_boolean(), "{line}");
        assert_eq!(GOAL_CASES.contains(&case), line["goal"].is_string(), "{line}");
    }
}
