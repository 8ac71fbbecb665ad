//! The staking suite runs, checks that each timed transition paid rewards, and reports a row
//! with its goal.

#[test]
fn the_epoch_transition_is_measured_against_few_delegators() {
    let rows = hyperion_bench::staking::run(200, 3).expect("the staking suite runs");
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert!(row.case.contains("delegators=200_vs_100"), "{}", row.case);
    assert!(row.baseline > 0.0 && row.ours > 0.0);
    assert!(row.goals_met().is_some(), "the row carries its goal");
}
