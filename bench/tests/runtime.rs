//! The runtime suite in `--quick` mode: it measures positive figures and both sides end with the
//! same ledger. No timing assertions.

use hyperion_bench::runtime::{run_case, QUICK_CASES};
use std::process::Command;

#[test]
fn quick_runtime_suite_measures_equal_work() {
    for case in &QUICK_CASES {
        let outcome = run_case(case, 1).expect("the quick runtime suite runs");
        assert_eq!(outcome.proposer_ledger, outcome.baseline_ledger);
        assert_eq!(outcome.validator_ledger, outcome.baseline_ledger);
        assert_ne!(outcome.baseline_ledger, outcome.genesis_ledger, "the transfers moved funds");
        let sent: u64 = outcome.baseline_ledger.iter().map(|a| a.nonce).sum();
        assert_eq!(sent, case.transfers(), "every transfer used its sender's nonce");
        outcome.check().expect("the sides agree");
        let rows = outcome.rows();
        assert_eq!(rows.len(), 2);
        for row in &rows {
            assert!(row.baseline > 0.0 && row.baseline.is_finite(), "{row:?}");
            assert!(row.ours > 0.0 && row.ours.is_finite(), "{row:?}");
            assert!(row.ratio() > 0.0, "{row:?}");
        }

        // A ledger that differs by one unit fails the check.
        let mut broken = outcome.clone();
        broken.validator_ledger[0].free += 1;
        assert!(broken.check().is_err());
    }
}

#[test]
fn binary_prints_one_json_line_per_case() {
    let output = Command::new(env!("CARGO_BIN_EXE_hyperion-bench"))
        .args(["--json", "--quick", "--repetitions", "1", "runtime"])
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(lines.len(), 2 * QUICK_CASES.len());
    for line in &lines {
        assert_eq!(line["suite"], "runtime");
        assert_eq!(line["unit"], "transfers/s");
        assert!(line["case"]
            .as_str()
            .is_some_and(|c| c.starts_with("propose/") || c.starts_with("validate/")));
        for field in ["baseline", "ours", "ratio"] {
            assert!(line[field].as_f64().is_some_and(|v| v > 0.0), "{field} in {line}");
        }
    }
}
