//! Deterministic simulation of validator networks: safety, liveness and accountability under
//! faulty networks, crashes and Byzantine validators, over many seeds.
//!
//! `HYPERION_SIM_SEEDS` sets the seeds per scenario (default 1,000); a failure prints its seed,
//! and `HYPERION_SIM_SEED=<seed> HYPERION_SIM_SCENARIO=<name>` replays just that run.

mod sim;

use sim::{Behaviour, Crashes, Report, Scenario, Sim};

fn scenario(name: &'static str) -> Scenario {
    let base = Scenario {
        validators: (4, 10),
        behaviour: Behaviour::Honest,
        byzantine: None,
        loss_percent: 10,
        duplicate_percent: 5,
        partitions: false,
        crashes: Crashes::None,
        faulty_ms: 2_500,
        liveness_bound_ms: 30_000,
        beyond_bound: false,
    };
    match name {
        "lossy" => Scenario { loss_percent: 20, duplicate_percent: 10, ..base },
        "partition" => Scenario { partitions: true, ..base },
        "crash-restart" => Scenario { crashes: Crashes::Restart, ..base },
        "power-cut" => Scenario { crashes: Crashes::PowerCut, ..base },
        "equivocating-proposer" => Scenario { behaviour: Behaviour::EquivocatingProposer, ..base },
        "double-voter" => Scenario { behaviour: Behaviour::DoubleVoter, ..base },
        "nil-voter" => Scenario { behaviour: Behaviour::NilVoter, ..base },
        "replayer" => Scenario { behaviour: Behaviour::Replayer, ..base },
        "bad-signatures" => Scenario { behaviour: Behaviour::BadSignatures, ..base },
        "byzantine-partition-crash" => Scenario {
            behaviour: Behaviour::DoubleVoter,
            partitions: true,
            crashes: Crashes::PowerCut,
            ..base
        },
        "2-of-4-coordinated" => Scenario {
            validators: (4, 4),
            behaviour: Behaviour::Coordinated,
            byzantine: Some(2),
            partitions: true,
            beyond_bound: true,
            liveness_bound_ms: 5_000,
            ..base
        },
        other => panic!("unknown scenario {other}"),
    }
}

fn seeds() -> u64 {
    std::env::var("HYPERION_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000)
}

/// Runs every seed of a scenario; panics with the first failing seed. Prints the scenario's
/// row: heights per simulated second and rounds per height.
fn run_scenario(name: &'static str) -> Vec<Report> {
    let scenario = scenario(name);
    let only = std::env::var("HYPERION_SIM_SEED").ok().and_then(|s| s.parse::<u64>().ok());
    if std::env::var("HYPERION_SIM_SCENARIO").is_ok_and(|s| s != name) {
        return Vec::new();
    }
    let seeds: Vec<u64> = match only {
        Some(seed) => vec![seed],
        None => (0..seeds()).collect(),
    };
    let mut reports = Vec::new();
    for seed in seeds {
        match Sim::new(&scenario, seed).run() {
            Ok(report) => reports.push(report),
            Err(why) => panic!("scenario {name}, seed {seed}: {why}\nreplay: HYPERION_SIM_SCENARIO={name} HYPERION_SIM_SEED={seed} cargo test -p hyperion-consensus --test simulation"),
        }
    }
    let heights: u64 = reports.iter().map(|r| r.heights).sum();
    let sim_ms: u64 = reports.iter().map(|r| r.sim_ms).sum();
    let rounds: u64 = reports.iter().map(|r| r.rounds).sum();
    let decisions: u64 = reports.iter().map(|r| r.decisions).sum();
    let forks: u64 = reports.iter().map(|r| r.forks).sum();
    println!(
        "| {name} | {} | {:.1} | {:.2} | {forks} |",
        reports.len(),
        heights as f64 / (sim_ms as f64 / 1000.0),
        rounds as f64 / decisions.max(1) as f64
    );
    reports
}

macro_rules! scenarios {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                run_scenario($name);
            }
        )*
    };
}

scenarios! {
    lossy_network => "lossy",
    partitions_heal => "partition",
    crash_and_restart => "crash-restart",
    power_cuts => "power-cut",
    equivocating_proposer => "equivocating-proposer",
    double_voter => "double-voter",
    nil_voter => "nil-voter",
    replayed_messages => "replayer",
    bad_signatures => "bad-signatures",
    byzantine_with_partitions_and_power_cuts => "byzantine-partition-crash",
}

/// Beyond the fault bound (2 Byzantine of 4) forks can happen; each must leave verifiable
/// evidence against at least 2 validators (checked inside the run), and the search must find
/// some, or the check is empty.
#[test]
fn two_byzantine_of_four_leave_evidence_for_every_fork() {
    let reports = run_scenario("2-of-4-coordinated");
    if !reports.is_empty() && std::env::var("HYPERION_SIM_SEED").is_err() {
        let forked = reports.iter().filter(|r| r.forks > 0).count();
        assert!(forked > 0, "no run forked: the coalition's strategy is not exercised");
        assert!(reports.iter().filter(|r| r.forks > 0).all(|r| r.accused >= 2));
    }
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    for name in ["lossy", "byzantine-partition-crash", "2-of-4-coordinated"] {
        let scenario = scenario(name);
        for seed in 0..20 {
            let a = Sim::new(&scenario, seed).run().expect("run");
            let b = Sim::new(&scenario, seed).run().expect("run");
            assert_eq!(a.trace, b.trace, "{name} seed {seed}");
            assert_eq!(a.heights, b.heights);
        }
        let a = Sim::new(&scenario, 1).run().expect("run");
        let b = Sim::new(&scenario, 2).run().expect("run");
        assert_ne!(a.trace, b.trace, "different seeds differ");
    }
}
