//! The mpef suite's quick cases: the rows each case reports, with positive figures (the run
//! itself checks that MPEF gives the serial result and the header's receipts). No timing
//! assertions.

use hyperion_bench::mpef::{run_case, Case, Kind, QUICK_CASES};

fn rows_of(case: &Case) -> Vec<String> {
    let rows = run_case(case, 2, 1).expect("the quick case runs");
    for row in &rows {
        assert!(row.baseline > 0.0 && row.baseline.is_finite(), "{row:?}");
        assert!(row.ours > 0.0 && row.ours.is_finite(), "{row:?}");
    }
    rows.into_iter().map(|row| row.case).collect()
}

#[test]
fn independent_transfers_are_also_measured_against_their_parts_side_by_side() {
    let native = QUICK_CASES.iter().find(|case| case.kind == Kind::Native).expect("a native case");
    assert_eq!(
        rows_of(native),
        [
            "native/txs=200/threads=2/vs_serial",
            "native/txs=200/threads=2/split_vs_serial",
            "native/txs=200/threads=2/vs_split"
        ]
    );
}

#[test]
fn dependent_transfers_are_measured_against_serial_execution_alone() {
    let chain = QUICK_CASES.iter().find(|case| case.kind == Kind::Chain).expect("a chain case");
    assert_eq!(rows_of(chain), ["chain/txs=200/threads=2/vs_serial"]);
}
